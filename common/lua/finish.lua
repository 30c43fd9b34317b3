-- finish.lua - a step's attempt ended (a worker's result, a false
-- condition, a timeout), or a composite completed on activation.
-- Compare-and-set: the step is active with this attempt (queued/running
-- with attempt A; or pending with attempt A - 1 when `expect` is
-- 'pending', for a step skipped before dispatch).
-- Plan: run, step, attempt, mark (event to ack), outcome
--   (success|failed|skipped), verdict, result_json (JSON text),
--   state_json {key: JSON text}, artifacts, persona,
--   git, message, skey (state key stem; absent: the step id), retry_at
--   (ms; 0 = no retry), done_us (when the worker reported, its clock in
--   us), on_failure (absent: fail), run_error, deps [{id, job?}], anc
--   [{id, kind, deps, desc, skey, on_failure}] (both absent when empty),
--   skip [ids] (descendants of a skipped composite); brk, fbrk (the
--   breakers of the step's persona and of its fallback persona, see
--   lib.lua), bres (how the attempt counts on them: fail|ok|none), fb
--   (the step has a fallback persona), qt (the step has a queue
--   timeout). expect 'queued': only a job no worker has started ends (a
--   queue timeout).
-- The step's status is the whole check, as in start.lua: a run that
-- ends stops every step it has not finished (end_run).
local function cas()
    local v = redis.call('HMGET', K_STEPS, P.step, P.step .. ':attempt')
    local st, att = v[1], tonumber(v[2]) or 0
    if P.expect == 'pending' then
        return st == 'pending' and att == P.attempt - 1
    end
    if P.expect == 'queued' then
        return st == 'queued' and att == P.attempt
    end
    return (st == 'queued' or st == 'running') and att == P.attempt
end

if not cas() then
    ack(K_EVENTS, 'schedulers', P.mark)
    out.stale = true
    return out
end
if P.deadline then
    redis.call('ZREM', K_DEADLINES, member(P.step, P.attempt))
end
if P.qt then
    redis.call('ZREM', K_DEADLINES, member(P.step, P.attempt) .. '|queue')
end
-- A diverted attempt ran on the fallback persona: its breaker counts it,
-- and its result is that persona's.
local via = P.fb and redis.call('HGET', K_STEPS, P.step .. ':via')
if via then P.persona = via end
local brk = P.brk
if via then brk = P.fbrk end
if brk and P.bres then
    brk_record(brk, member(P.step, P.attempt), P.bres, P.step, P.message)
end
if P.outcome == 'failed' and (tonumber(P.retry_at) or 0) > 0 then
    note_git_change(P.step, P.attempt)
    redis.call('HSET', K_STEPS, P.step, 'pending', P.step .. ':error',
               P.message or '')
    redis.call('ZADD', K_DELAYED, P.retry_at,
               member(P.step, P.attempt + 1))
    hist('step', P.step, 'retrying',
         {'attempt', P.attempt, 'due', P.retry_at,
          'error', P.message or ''})
    ack(K_EVENTS, 'schedulers', P.mark)
    out.retry = true
    return out
end
local status = P.outcome
if P.expect == 'pending' then
    redis.call('HSET', K_STEPS, P.step .. ':attempt', P.attempt)
end
redis.call('HSET', K_STEPS, P.step, status, P.step .. ':finished', NOW_S)
if P.message then
    redis.call('HSET', K_STEPS, P.step .. ':error', P.message)
end
record_outcome(P.step, status)
for _, id in ipairs(P.skip or {}) do stop_step(id, 'skipped') end
if status == 'failed' and P.on_failure == 'escalate' then
    wait_begin(P.step, 'escalation')
    hist('step', P.step, 'waiting_for_human',
         {'attempt', P.attempt, 'wait', 'escalation',
          'error', P.message or ''})
    ack(K_EVENTS, 'schedulers', P.mark)
    return out
end
hist('step', P.step, status, 'attempt', S(P.attempt), 'error', P.message or '',
     'done_us', P.done_us or '')
propagate(status, status ~= 'failed' or P.on_failure == 'continue', P.deps)
ack(K_EVENTS, 'schedulers', P.mark)
return out
