-- retry.lua - a run that ended without success (or, retried from a step,
-- any finished run) runs again from where it failed, keeping what
-- succeeded. The scheduler read the run's steps and planned the reset
-- (scheduler/plan.c, plan_retry): the steps to run again go back to
-- pending, the groups around them that had finished are re-opened
-- (running, with their `:left` counters recounted), dependency counters
-- are recounted from the definition minus the dependencies that stay
-- finished, and the steps with nothing left to wait for are made ready.
-- Attempt counters are kept, so a new attempt gets a new number and a
-- late result of an old attempt stays stale.
-- Compare-and-set: the run's status is failed or cancelled (or success
-- when retried from a step), and its `finished` time and retry count are
-- those the plan was built from (and the count the request saw, when it
-- says): a duplicated or late retry event is acknowledged, recorded as a
-- `control` entry, and changes nothing.
-- Plan: run, mark, by, comment, from ('' = the failed steps), refuse (why
--   the scheduler refused the event), finished (the run's `finished` as
--   read, '' = none), seen (its `retries` as read), seq (`retries` the
--   request saw; -1 = any), top (top-level steps left to finish), reset
--   [{id, st ('pending' | 'running'), deps (n), left (n, for groups
--   re-opened), skey (state key stem), bump (the step was cancelled
--   while it may have been made ready: count that attempt, so a stale
--   ready mark for it finds the attempt moved on)}], ready [{id}],
--   timeout (ms: the workflow's timeout, re-armed from now).
local function note(status, why)
    hist('control', P.from or '', status,
         {'event', 'retry', 'by', P.by or '', 'reason', why})
    ack(K_EVENTS, 'schedulers', P.mark)
    out.stale = true
    return out
end

if P.refuse then return note('refused', P.refuse) end
local v = redis.call('HMGET', K_RUN, 'status', 'finished', 'retries')
local rs, fin, n = v[1], v[2] or '', tonumber(v[3]) or 0
if not (rs == 'failed' or rs == 'cancelled' or
        (rs == 'success' and (P.from or '') ~= '')) then
    return note('stale', 'the run is ' .. (rs or 'gone'))
end
local seq = tonumber(P.seq) or -1
if fin ~= P.finished or n ~= tonumber(P.seen) or (seq >= 0 and n ~= seq) then
    return note('stale', 'the run changed since the retry was asked for')
end

n = n + 1
for _, r in ipairs(P.reset) do
    local id = r.id
    local a = attempt_of(id)
    -- Timers of the old attempts must not fire into the new ones.
    redis.call('ZREM', K_DELAYED, member(id, a + 1))
    redis.call('ZREM', K_DEADLINES, member(id, a))
    if r.bump and redis.call('HGET', K_STEPS, id) == 'cancelled' and
        (tonumber(redis.call('HGET', K_DEPS, id)) or 0) <= 0 then
        redis.call('HSET', K_STEPS, id .. ':attempt', a + 1)
    end
    redis.call('HSET', K_STEPS, id, r.st)
    redis.call('HDEL', K_STEPS, id .. ':queued', id .. ':finished',
               id .. ':worker', id .. ':error', id .. ':wait',
               id .. ':deadline', id .. ':by', id .. ':message',
               id .. ':approvers')
    if r.st == 'pending' then
        redis.call('HDEL', K_STEPS, id .. ':started', id .. ':branch')
    end
    if (tonumber(r.deps) or 0) > 0 then
        redis.call('HSET', K_DEPS, id, r.deps)
    else
        redis.call('HDEL', K_DEPS, id)
    end
    -- A part of a big group still to come belongs to the old opening.
    redis.call('HDEL', K_DEPS, id .. ':left', id .. ':failed', id .. ':next')
    if r.left then redis.call('HSET', K_DEPS, id .. ':left', r.left) end
    redis.call('HDEL', K_STATE, r.skey .. '_status', r.skey .. '_result')
    hist('step', id, r.st, {'retry', n})
end
redis.call('HDEL', K_DEPS, TOP_STEP .. ':next')
redis.call('HSET', K_RUN, 'status', 'running', 'top_left', P.top, 'retries', n)
redis.call('HDEL', K_RUN, 'finished', 'error', 'waiting')
-- The run is live again: it no longer expires with the retention.
for _, k in ipairs({K_RUN, K_STEPS, K_DEPS, K_STATE, K_HIST}) do
    redis.call('PERSIST', k)
end
-- The workflow's timeout counts again from the retry.
if (tonumber(P.timeout) or 0) > 0 then
    redis.call('ZADD', K_DEADLINES, S(NOW + P.timeout), RUN .. '|run')
end
hist('run', '', 'running', {'retry', n, 'by', P.by or '',
                            'comment', P.comment or '', 'from', P.from or ''})
redis.call('HINCRBY', K_STATS, 'run_retries', '1')
for _, item in ipairs(P.ready) do make_ready(item) end
ack(K_EVENTS, 'schedulers', P.mark)
out.retried = n
return out
