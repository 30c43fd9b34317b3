-- dlq_move.lua - a dead letter's message goes back to the stream it came
-- from (`weft dlq requeue`, POST /v1/dlq/{id}/requeue; docs/protocol.md).
-- (No prelude.) KEYS[1]: the DLQ; KEYS[2]: the origin stream, which the
-- caller checked is one of weft's own (common/dlq.c). ARGV[1]: the dead
-- letter's id; ARGV[2..]: the message's field/value pairs, read by the
-- caller from the entry (stream entries never change, so what it read is
-- what is there).
-- The XDEL and the XADD happen together, and only while the dead letter
-- is still there: two requeues of one entry put its message back once.
-- Returns the new entry's id, or false when the dead letter is gone.
if #ARGV < 3 or #ARGV % 2 == 0 then
    return redis.error_reply('dlq_move: no field/value pairs to add')
end
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
