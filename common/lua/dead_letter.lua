-- dead_letter.lua - a message a scheduler cannot apply goes to the DLQ
-- with every field it had, and leaves its stream (docs/protocol.md, "Dead
-- letters").
-- (No prelude.) KEYS[1]: the stream the message is on (weft:events or
-- weft:tasks); KEYS[2]: the DLQ. ARGV: entry id, consumer group, reason,
-- who (the scheduler's consumer name), when (ms), most fields copied.
-- Copy, XACK and XDEL in one script: a scheduler that dies half-way
-- leaves the message pending for another one, never copied twice. An
-- entry already deleted gets a dead letter with the bookkeeping only.
local args = {'XADD', KEYS[2], '*', 'dlq_origin', KEYS[1], 'dlq_entry',
              ARGV[1], 'dlq_reason', ARGV[3], 'dlq_by', ARGV[4], 'dlq_at',
              ARGV[5]}
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1]
if e then
    local f, max = e[2], 2 * tonumber(ARGV[6])
    for i = 1, math.min(#f, max) do args[#args + 1] = f[i] end
    if #f > max then
        args[#args + 1] = 'dlq_truncated'
        args[#args + 1] = '1'
    end
end
redis.call(unpack(args))
redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
