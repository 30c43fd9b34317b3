-- park.lua - an approval step became ready: instead of a job it waits for
-- a person (`weft approve`), and the run waits with it. Compare-and-set:
-- the run is active and the step is pending with attempt A - 1, as for
-- dispatch; a duplicate ready mark finds it moved and only acks.
-- Plan: run, step, attempt (A), mark (ready event id), message (rendered
--   text, optional), approvers (JSON array text, optional), deadline (ms
--   since the epoch; 0 = wait for ever).
if not ready_cas() then
    ack(K_EVENTS, 'schedulers', P.mark)
    out.stale = true
    return out
end
local s = P.step
redis.call('HSET', K_STEPS, s .. ':attempt', P.attempt, s .. ':started', NOW_S)
redis.call('HDEL', K_STEPS, s .. ':message', s .. ':approvers', s .. ':error',
           s .. ':finished', s .. ':by')
local extra = {'attempt', P.attempt, 'wait', 'approval'}
if P.message then
    redis.call('HSET', K_STEPS, s .. ':message', P.message)
    extra[#extra + 1] = 'message'
    extra[#extra + 1] = P.message
end
if P.approvers then
    redis.call('HSET', K_STEPS, s .. ':approvers', P.approvers)
    extra[#extra + 1] = 'approvers'
    extra[#extra + 1] = P.approvers
end
wait_begin(s, 'approval')
local deadline = tonumber(P.deadline) or 0
if deadline > 0 then
    -- The deadline machinery of running jobs: fire_delayed turns it into
    -- a `timeout` event for this attempt.
    redis.call('HSET', K_STEPS, s .. ':deadline', deadline)
    redis.call('ZADD', K_DEADLINES, deadline, member(s, P.attempt))
    extra[#extra + 1] = 'deadline'
    extra[#extra + 1] = deadline
end
hist('step', s, 'waiting_for_human', extra)
ack(K_EVENTS, 'schedulers', P.mark)
return out
