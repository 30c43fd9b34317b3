-- activate.lua - a ready composite step starts: a conditional chose its
-- branch, or a parallel group opens. Compare-and-set: the step is pending
-- with attempt A - 1.
-- Plan: run, step, attempt, mark, nkids (children in the chosen list),
--   kids [{id, job?}] (those without dependencies), skip [ids] (every
--   step of the list not taken), branch ('then'|'else'|''), plus the
--   finish plan fields used when nkids is 0 (the group completes now).
-- A big parallel group opens in parts (docs/protocol.md, "Big groups"):
-- next is the position in the list of the first child without
-- dependencies this part leaves out (see next_part). The transition that
-- answers the part's mark (P.from, and kids from there on) compare-and-
-- sets the group running with attempt A and S:next = from. The parts of
-- a run's top level (create_run.lua) come here too, as step TOP_STEP:
-- their compare-and-set is the run still active.
if P.from then
    local over, ok
    if P.step == TOP_STEP then
        over = not run_active()
        ok = not over
    else
        local v = redis.call('HMGET', K_STEPS, P.step, P.step .. ':attempt')
        over = v[1] ~= 'running'
        ok = not over and tonumber(v[2]) == P.attempt
    end
    if not ok or
        tonumber(redis.call('HGET', K_DEPS, P.step .. ':next')) ~= P.from then
        -- A list that ended (wait_for: any, a run that failed) opens no
        -- more parts.
        if over then redis.call('HDEL', K_DEPS, P.step .. ':next') end
        ack(K_EVENTS, 'schedulers', P.mark)
        out.stale = true
        return out
    end
else
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
        redis.call('HSET', K_STEPS, P.step, 'success', P.step .. ':finished',
                   NOW_S)
        hist('step', P.step, 'success')
        if P.skey then
            redis.call('HSET', K_STATE, P.skey .. '_status',
                       cjson.encode('success'))
        end
        propagate('success', true, P.deps)
        ack(K_EVENTS, 'schedulers', P.mark)
        return out
    end
    redis.call('HSET', K_DEPS, P.step .. ':left', P.nkids)
end
-- A first activation (or a new run) finds its children never dispatched.
for _, item in ipairs(P.kids) do make_ready(item, P.attempt == 1) end
next_part(P.step, P.attempt)
ack(K_EVENTS, 'schedulers', P.mark)
return out
