-- trim.lua - deletes the entries of a stream that its consumer group is
-- done with: everything before the oldest pending entry, or before the
-- first undelivered one when nothing is pending. Acknowledged messages
-- are removed here in bulk instead of by one XDEL each on the hot path;
-- pending and undelivered work is never touched (never MAXLEN).
-- (No prelude.) KEYS[1]: the stream. ARGV[1]: the group.
-- Returns the number of entries removed.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
for _, g in ipairs(groups) do
    local name, lastid
    for i = 1, #g, 2 do
        if g[i] == 'name' then name = g[i + 1] end
        if g[i] == 'last-delivered-id' then lastid = g[i + 1] end
    end
    if name == ARGV[1] then last = lastid end
end
if not last then return 0 end
local minid
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if pending[1] > 0 then
    minid = pending[2]
else
    local ms, seq = string.match(last, '^(%d+)-(%d+)$')
    if not ms then return 0 end
    minid = ms .. '-' .. (tonumber(seq) + 1)
end
return redis.call('XTRIM', KEYS[1], 'MINID', minid)
