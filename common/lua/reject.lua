-- reject.lua - a task cannot start (no route matches, its workflow is
-- missing or invalid, the task is malformed): it is recorded as a failed
-- run with the reason, so `weft status` and the history say why.
-- Compare-and-set: the run does not exist yet.
-- Plan: run, entry (task entry to ack), tk (index of weft:tasks), error,
--   task (JSON text), workflow.
if redis.call('EXISTS', K_RUN) == 0 then
    redis.call('HSET', K_RUN, 'status', 'failed', 'created', NOW, 'finished',
               NOW, 'error', P.error, 'task', P.task or '{}', 'workflow',
               P.workflow or '')
    redis.call('ZADD', K_RUNS, NOW, RUN)
    hist('run', '', 'failed', {'error', P.error})
    redis.call('HINCRBY', K_STATS, 'runs_failed', 1)
    set_retention()
    out.run = 'failed'
end
ack(KEYS[P.tk], 'schedulers', P.entry)
return out
