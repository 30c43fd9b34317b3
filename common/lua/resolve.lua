-- resolve.lua - a step waiting for a person gets its answer: `weft
-- resolve` (retry, skip or fail a step), `weft approve` (an approval
-- approved or rejected), or an approval's deadline passing.
-- Compare-and-set: the run is active, the step is waiting_for_human (for
-- approve and timeout: waiting for an approval; for approve, `by` is one
-- of the approvers when the step names them) and, when the event names
-- one, with that attempt. An event that finds the step moved (a
-- duplicate, a late or refused request) is acknowledged and recorded in
-- the history as a `control` entry, and changes nothing else.
-- Plan: run, step, mark, attempt (0 = whichever waits), event (resolve|
--   approve|timeout), action (retry|skip|fail|approve|reject|timeout),
--   by, comment, refuse (why the scheduler refused the event), set {key:
--   JSON text} (written to the state first), outcome (pending|success|
--   skipped|failed), result_json, message, skey, on_failure, run_error,
--   deps, anc, skip: as for finish.lua.
local function note(status, why)
    if P.event ~= 'timeout' then
        hist('control', P.step, status,
             {'event', P.event, 'action', P.action or '', 'by', P.by or '',
              'reason', why})
    end
    ack(K_EVENTS, 'schedulers', P.mark)
    out.stale = true
    return out
end

if P.refuse then return note('refused', P.refuse) end
if not run_active() then
    return note('stale', 'the run is ' ..
                (redis.call('HGET', K_RUN, 'status') or 'gone'))
end
local s = P.step
local v = redis.call('HMGET', K_STEPS, s, s .. ':attempt', s .. ':wait',
                     s .. ':approvers')
local st, att, kind = v[1], tonumber(v[2]) or 0, v[3]
if st ~= 'waiting_for_human' then
    return note('stale', 'the step is ' .. (st or 'unknown'))
end
local want = tonumber(P.attempt) or 0
if want > 0 and att ~= want then
    return note('stale', 'attempt ' .. att .. ' waits, not ' .. want)
end
if P.event ~= 'resolve' and kind ~= 'approval' then
    return note('refused', 'the step waits for a resolution (weft resolve), ' ..
                'not an approval')
end
if P.event == 'approve' and v[4] then
    local ok, names = pcall(cjson.decode, v[4])
    local allowed = false
    if ok and type(names) == 'table' then
        for _, n in ipairs(names) do
            if n == P.by then allowed = true end
        end
    end
    if not allowed then
        return note('refused', "'" .. (P.by or '') ..
                    "' is not one of the step's approvers")
    end
end

-- The answer applies.
for k, val in pairs(P.set or {}) do redis.call('HSET', K_STATE, k, val) end
redis.call('ZREM', K_DEADLINES, member(s, att))
local extra = {'attempt', att, 'action', P.action, 'by', P.by or '',
               'comment', P.comment or ''}
if P.by and P.by ~= '' then redis.call('HSET', K_STEPS, s .. ':by', P.by) end
local outcome = P.outcome
if outcome == 'pending' then
    -- A new attempt: through the ready path, as after a retry delay.
    redis.call('HSET', K_STEPS, s, 'pending')
    redis.call('HDEL', K_STEPS, s .. ':finished')
    hist('step', s, 'pending', extra)
    make_ready({id = s})
    wait_end(s)
    ack(K_EVENTS, 'schedulers', P.mark)
    return out
end
redis.call('HSET', K_STEPS, s, outcome, s .. ':finished', NOW_S)
if P.message then
    redis.call('HSET', K_STEPS, s .. ':error', P.message)
    extra[#extra + 1] = 'error'
    extra[#extra + 1] = P.message
end
record_outcome(s, outcome)
if outcome == 'failed' and P.on_failure == 'escalate' and
    P.event ~= 'resolve' then
    -- A rejected or timed-out approval that escalates waits again, now
    -- for `weft resolve`.
    redis.call('HSET', K_STEPS, s, 'waiting_for_human', s .. ':wait',
               'escalation')
    redis.call('HDEL', K_STEPS, s .. ':deadline')
    extra[#extra + 1] = 'wait'
    extra[#extra + 1] = 'escalation'
    hist('step', s, 'waiting_for_human', extra)
    ack(K_EVENTS, 'schedulers', P.mark)
    return out
end
for _, id in ipairs(P.skip or {}) do stop_step(id, 'skipped') end
hist('step', s, outcome, extra)
propagate(outcome, outcome ~= 'failed' or P.on_failure == 'continue', P.deps)
wait_end(s)
ack(K_EVENTS, 'schedulers', P.mark)
return out
