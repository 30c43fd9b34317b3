-- cancel.lua - a run is cancelled: compare-and-set on the run not being
-- finished. Unfinished steps become cancelled; running jobs are returned
-- for the caller to publish on the cancel channel. A run whose workflow
-- timeout passed ends the same way, as failed (status).
-- Plan: run, mark, reason, status (default cancelled).
if run_active() or redis.call('HGET', K_RUN, 'status') == 'pending' then
    end_run(P.status or 'cancelled', P.reason or 'cancelled')
end
ack(K_EVENTS, 'schedulers', P.mark)
return out
