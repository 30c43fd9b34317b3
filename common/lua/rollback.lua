-- rollback.lua - a run's git rollback (docs/git.md "Rollback"), tracked
-- in the steps hash as weft's own step ROLLBACK_STEP (lib.lua), after the
-- run ended: the run's status is never touched. Two phases, each a
-- compare-and-set on that step like a step's own transitions:
--   dispatch  (its ready mark; end_run made the first): the step is
--             pending with attempt A - 1; the rollback job (rendered by
--             the scheduler with the recorded changes) goes to its queue.
--   result    (a worker's result, or its deadline passed): the step is
--             queued or running with attempt A; a retryable failure is
--             tried again later (weft:delayed) while attempts remain,
--             else the outcome is final.
-- Every phase writes a `rollback` history entry.
-- Plan: run, step, attempt, mark, phase; dispatch: job; result: outcome
--   (success|failed), retry_at (ms; 0 = none), attempts (most, counted
--   from the step's :first attempt), message, restored (text), result
--   (JSON text of the worker's result).
local v = redis.call('HMGET', K_STEPS, P.step, P.step .. ':attempt',
                     P.step .. ':first')
local st, att = v[1], tonumber(v[2]) or 0
if P.phase == 'dispatch' then
    if st == 'pending' and att == P.attempt - 1 then
        local job = P.job
        redis.call('XADD', KEYS[job.q], '*', 'run', RUN, 'step', P.step,
                   'attempt', P.attempt, 'type', job.type, 'persona', '',
                   'body', ARGV[job.a], 'sig', job.sig)
        redis.call('HSET', K_STEPS, P.step, 'queued', P.step .. ':attempt',
                   P.attempt, P.step .. ':queued', NOW_S)
        hist('rollback', '', 'queued', {'attempt', P.attempt})
        out.ok = true
    else
        out.stale = true
    end
    ack(K_EVENTS, 'schedulers', P.mark)
    return out
end
if not ((st == 'queued' or st == 'running') and att == P.attempt) then
    ack(K_EVENTS, 'schedulers', P.mark)
    out.stale = true
    return out
end
redis.call('ZREM', K_DEADLINES, member(P.step, P.attempt))
local first = tonumber(v[3]) or 1
if P.outcome == 'failed' and (tonumber(P.retry_at) or 0) > 0 and
    P.attempt - first + 1 < (tonumber(P.attempts) or 1) then
    redis.call('HSET', K_STEPS, P.step, 'pending', P.step .. ':error',
               P.message or '')
    redis.call('ZADD', K_DELAYED, P.retry_at, member(P.step, P.attempt + 1))
    hist('rollback', '', 'retrying', {'attempt', P.attempt, 'due', P.retry_at,
                                      'error', P.message or ''})
    ack(K_EVENTS, 'schedulers', P.mark)
    out.retry = true
    return out
end
redis.call('HSET', K_STEPS, P.step, P.outcome, P.step .. ':finished', NOW_S)
if P.message then
    redis.call('HSET', K_STEPS, P.step .. ':error', P.message)
end
hist('rollback', '', P.outcome, {'attempt', P.attempt, 'restored',
                                 P.restored or '', 'error', P.message or '',
                                 'result', P.result or ''})
ack(K_EVENTS, 'schedulers', P.mark)
return out
