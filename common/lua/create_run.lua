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
-- Lua's unpack is bounded by the C stack: write large runs in chunks.
local CHUNK = 500
local args = {}
for i, id in ipairs(P.steps) do
    args[#args + 1] = id
    args[#args + 1] = 'pending'
    if #args >= 2 * CHUNK or i == #P.steps then
        redis.call('HSET', K_STEPS, unpack(args))
        args = {}
    end
end
for i, d in ipairs(P.deps) do
    args[#args + 1] = d[1]
    args[#args + 1] = S(d[2])
    if #args >= 2 * CHUNK or i == #P.deps then
        redis.call('HSET', K_DEPS, unpack(args))
        args = {}
    end
end
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
ack(K_TASKS, 'schedulers', P.entry)
out.created = true
return out
