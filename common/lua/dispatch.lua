-- dispatch.lua - a ready step's job goes onto its queue.
-- Compare-and-set: the run is active and the step is pending with
-- attempt = A - 1; a duplicate ready mark finds it moved and only acks.
-- Plan: run, step, attempt (A), mark (ready event id), job (with its
-- circuit breaker and policy, see dispatch_job in lib.lua).
if ready_cas() then
    dispatch_job(P.step, P.attempt, P.job)
    out.ok = true
end
ack(K_EVENTS, 'schedulers', P.mark)
return out
