-- start.lua - a worker claimed a job and is about to run it.
-- Compare-and-set: the step is queued (or running after a reclaim) with
-- the job's attempt; otherwise the job is stale (skipped, cancelled,
-- superseded) and the worker drops it without running it.
-- Plan: run, step, attempt, deadline (ms; absent or 0 = none), qt (the
-- job has a queue timeout, whose deadline this start clears); the batch
-- names the worker (BATCH.worker).
-- The deadline is the attempt's: a reclaim (the step already running)
-- keeps the one its first start set, so a job taken over from a dead
-- worker does not get its timeout anew, however many times it is.
-- Returns 'ok' or the reason the job must not run.
-- The step's status is the whole check: a step of a run that ended is
-- never queued or running (end_run stops them all), and the rollback,
-- which runs after its run ended, has its own.
local v = redis.call('HMGET', K_STEPS, P.step, P.step .. ':attempt')
local st = v[1]
if (tonumber(v[2]) or 0) ~= P.attempt then return 'superseded' end
if st ~= 'queued' and st ~= 'running' then return st or 'missing' end
redis.call('HSET', K_STEPS, P.step, 'running', P.step .. ':worker',
           BATCH.worker, P.step .. ':started', NOW_S)
-- Started: the step's queue timeout no longer applies.
if P.qt then
    redis.call('ZREM', K_DEADLINES, member(P.step, P.attempt) .. '|queue')
end
if (tonumber(P.deadline) or 0) > 0 then
    if st == 'running' then
        redis.call('ZADD', K_DEADLINES, 'NX', S(P.deadline),
                   member(P.step, P.attempt))
    else
        redis.call('ZADD', K_DEADLINES, S(P.deadline),
                   member(P.step, P.attempt))
    end
end
hist('step', P.step, 'running', 'attempt', S(P.attempt), 'worker',
     BATCH.worker)
return 'ok'
