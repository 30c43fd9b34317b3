-- dead_letter.lua - a message a scheduler cannot apply goes to the DLQ
-- with every field it had, and leaves its stream (docs/protocol.md, "Dead
-- letters").
-- KEYS[1]: the stream the message is on (weft:events or weft:tasks);
-- KEYS[2]: the DLQ. ARGV: entry id, consumer group, reason, who (the
-- scheduler's consumer name), when (ms), most fields copied.
-- Copy, XACK and XDEL in one call: a scheduler that dies half-way leaves
-- the message pending for another one, never copied twice.
dlq_copy(KEYS[2], KEYS[1], ARGV[1], ARGV[3], ARGV[4], ARGV[5],
         tonumber(ARGV[6]))
redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
