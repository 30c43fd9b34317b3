-- create_run.lua - a task becomes a run (compare-and-set: the run header
-- does not exist yet, so a redelivered task creates nothing twice).
-- KEYS[P.tk] is weft:tasks.
-- Plan: run, entry (task entry id to ack), header {field: value},
--   steps [ids], deps [[id, n]...], top (top-level count),
--   ready [{id, job?}] (top-level steps with no dependencies; a big top
--   level opens in parts: next, as in activate.lua), timeout (the
--   workflow's, ms; absent = none).
local K_TASKS = KEYS[P.tk]
if redis.call('EXISTS', K_RUN) == 1 then
    ack(K_TASKS, 'schedulers', P.entry)
    out.created = false
    return out
end
local h = {'HSET', K_RUN, 'status', 'running', 'created', NOW_S, 'started', NOW_S,
           'top_left', S(P.top)}
for k, v in pairs(P.header) do
    h[#h + 1] = k
    h[#h + 1] = v
end
redis.call(unpack(h))
-- Writes the flat field, value list to hash key. Lua's unpack is bounded
-- by the C stack: large runs are written in chunks. Redis starts a hash
-- as a listpack, whose every insert scans it, until it holds
-- hash-max-listpack-entries fields (512 on Debian's Redis 7.0): 4.4 ms
-- for a run of 1,002 steps. A value longer than hash-max-listpack-value
-- (64) in the first HSET makes it a hashtable at once (1.5 ms); the
-- placeholder goes again. Ids never start with '.'.
local CHUNK, WIDE = 500, 100
local function hset_all(key, args)
    local wide = #args > 2 * WIDE
    if wide then
        table.insert(args, 1, '.wide')
        table.insert(args, 2, string.rep('-', 256))
    end
    for i = 1, #args, 2 * CHUNK do
        local last = math.min(i + 2 * CHUNK - 1, #args)
        redis.call('HSET', key, unpack(args, i, last))
    end
    if wide then redis.call('HDEL', key, '.wide') end
end
local args = {}
for _, id in ipairs(P.steps) do
    args[#args + 1] = id
    args[#args + 1] = 'pending'
end
hset_all(K_STEPS, args)
args = {}
for _, d in ipairs(P.deps) do
    args[#args + 1] = d[1]
    args[#args + 1] = S(d[2])
end
hset_all(K_DEPS, args)
redis.call('ZADD', K_RUNS, NOW_S, RUN)
-- The workflow's timeout (ms): fire_delayed turns it into a `timeout`
-- event of kind `run`; end_run removes it.
if (tonumber(P.timeout) or 0) > 0 then
    redis.call('ZADD', K_DEADLINES, NOW + P.timeout, RUN .. '|run')
end
hist('run', '', 'running', {'workflow', P.header.workflow or ''})
if P.top == 0 then
    end_run('success')
else
    for _, item in ipairs(P.ready) do make_ready(item, true) end
    next_part(TOP_STEP, 1)
end
-- A new run's history holds a part's entries at most: nothing to trim.
TRIM[K_HIST] = nil
ack(K_TASKS, 'schedulers', P.entry)
out.created = true
return out
