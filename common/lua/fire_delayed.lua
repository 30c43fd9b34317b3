-- fire_delayed.lua - timers that are due become events: retry delays
-- (weft:delayed -> `ready`) and step deadlines (weft:deadlines ->
-- `timeout`, for a step whose worker went silent past its timeout).
-- (No prelude.) KEYS: the timer zset, the events stream.
-- ARGV: now (ms), limit, event type.
-- ZRANGEBYSCORE and ZREM run in one script, so each timer fires exactly
-- once whichever scheduler replica gets here first.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0,
                       tonumber(ARGV[2]))
-- Members: RUN|STEP|ATTEMPT (a retry or breaker wait, a step deadline),
-- RUN|STEP|ATTEMPT|queue (a queue timeout) and RUN|run (the workflow's
-- timeout); the last two fire with a `kind` field.
for _, m in ipairs(due) do
    redis.call('ZREM', KEYS[1], m)
    local run, step, attempt = string.match(m, '^([^|]+)|([^|]+)|(%d+)$')
    local kind
    if not run then
        run, step, attempt = string.match(m, '^([^|]+)|([^|]+)|(%d+)|queue$')
        kind = 'queue'
    end
    if run then
        local args = {'XADD', KEYS[2], '*', 'type', ARGV[3], 'run', run,
                      'step', step, 'attempt', attempt}
        if kind then
            args[#args + 1] = 'kind'
            args[#args + 1] = kind
        end
        redis.call(unpack(args))
    else
        run = string.match(m, '^([^|]+)|run$')
        if run then
            redis.call('XADD', KEYS[2], '*', 'type', ARGV[3], 'run', run,
                       'kind', 'run')
        end
    end
end
return #due
