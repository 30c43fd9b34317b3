-- activate.lua - a ready composite step starts: a conditional chose its
-- branch, or a parallel group opens. Compare-and-set: the step is pending
-- with attempt A - 1.
-- Plan: run, step, attempt, mark, nkids (children in the chosen list),
--   kids [{id, job?}] (those without dependencies), skip [ids] (every
--   step of the list not taken), branch ('then'|'else'|''), plus the
--   finish plan fields used when nkids is 0 (the group completes now).
if not ready_cas() then
    ack(K_EVENTS, 'schedulers', P.mark)
    out.stale = true
    return out
end
redis.call('HSET', K_STEPS, P.step, 'running', P.step .. ':attempt',
           P.attempt, P.step .. ':started', NOW_S, P.step .. ':branch',
           P.branch or '')
hist('step', P.step, 'running', {'branch', P.branch or ''})
for _, id in ipairs(P.skip or {}) do stop_step(id, 'skipped') end
if P.nkids == 0 then
    redis.call('HSET', K_STEPS, P.step, 'success', P.step .. ':finished', NOW_S)
    hist('step', P.step, 'success')
    if P.skey then
        redis.call('HSET', K_STATE, P.skey .. '_status', cjson.encode('success'))
    end
    propagate('success', true, P.deps)
else
    redis.call('HSET', K_DEPS, P.step .. ':left', P.nkids)
    -- A first activation finds its children never dispatched.
    for _, item in ipairs(P.kids) do make_ready(item, P.attempt == 1) end
end
ack(K_EVENTS, 'schedulers', P.mark)
return out
