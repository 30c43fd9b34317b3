-- fire_delayed.lua - timers that are due become events: retry delays
-- (weft:delayed -> `ready`) and step deadlines (weft:deadlines ->
-- `timeout`, for a step whose worker went silent past its timeout).
-- (No prelude.) KEYS: the timer zset, the events stream.
-- ARGV: now (ms), limit, event type.
-- ZRANGEBYSCORE and ZREM run in one script, so each timer fires exactly
-- once whichever scheduler replica gets here first.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0,
                       tonumber(ARGV[2]))
for _, m in ipairs(due) do
    redis.call('ZREM', KEYS[1], m)
    local run, step, attempt = string.match(m, '^([^|]+)|([^|]+)|(%d+)$')
    if run then
        redis.call('XADD', KEYS[2], '*', 'type', ARGV[3], 'run', run, 'step',
                   step, 'attempt', attempt)
    end
end
return #due
