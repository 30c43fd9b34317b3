-- reject.lua - a task cannot start (no route matches, its workflow is
-- missing or invalid, the task is malformed): it is recorded as a failed
-- run with the reason, so `weft status` and the history say why, and the
-- task entry is copied to the DLQ for operators (docs/protocol.md, "Dead
-- letters"), both in this one transition.
-- Compare-and-set: the run does not exist yet.
-- Plan: run, entry (task entry to ack), tk (index of weft:tasks), dk
--   (index of weft:dlq), by (the scheduler's name), dlq_max (most fields
--   copied), error, task (JSON text), workflow.
if redis.call('EXISTS', K_RUN) == 0 then
    redis.call('HSET', K_RUN, 'status', 'failed', 'created', NOW_S, 'finished',
               NOW_S, 'error', P.error, 'task', P.task or '{}', 'workflow',
               P.workflow or '')
    redis.call('ZADD', K_RUNS, NOW_S, RUN)
    hist('run', '', 'failed', {'error', P.error})
    redis.call('HINCRBY', K_STATS, 'runs_failed', '1')
    set_retention()
    out.run = 'failed'
    if P.dk and P.entry and P.entry ~= '' then
        dlq_copy(KEYS[P.dk], KEYS[P.tk], P.entry, P.error, P.by or '', NOW_S,
                 tonumber(P.dlq_max) or 64)
    end
end
ack(KEYS[P.tk], 'schedulers', P.entry)
return out
