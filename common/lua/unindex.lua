-- unindex.lua - drops a run from the run index once its header has
-- expired (retention), so weft:runs stays bounded. (No prelude.)
-- KEYS[1]: weft:runs. KEYS[2]: the run header. ARGV[1]: the run id.
if redis.call('EXISTS', KEYS[2]) == 0 then
    return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
