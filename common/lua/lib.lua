-- lib.lua - shared prelude of the transition functions (docs/protocol.md).
--
-- The build (embed.c) makes one Redis function library of this prelude,
-- epilogue.lua (as apply()) and every transition script's body (as
-- `local function main_<name>()`), with a function per script that
-- applies its body to a batch of transitions: apply() loops over them,
-- pointing the variables below at each transition's keys and plan before
-- calling the body. Batching spreads the cost of a call over every
-- transition a scheduler or worker has ready at once. Redis runs this
-- top level once, when it loads the library: what a call needs afresh,
-- begin() (at the end of this file) sets.
-- Conventions (keys and args are FCALL's):
--   KEYS[1..5]  events, runs, delayed, deadlines, stats (shared);
--               then each transition's run, steps, deps, state and
--               history keys from index t.k, then extra keys (queues,
--               tasks) referenced by absolute index.
--   ARGV[1]     now, microseconds since the epoch (the caller's clock).
--   ARGV[2]     the batch: a JSON array of plans, each built by the
--               scheduler from the definition (the step's own edges,
--               pre-rendered jobs).
--   ARGV[3..]   job bodies (binary msgpack), referenced by index.
-- A script never reads the definition: what it needs of the graph is in
-- the plan, so its cost follows the step's own edges.

-- The call's keys and args, its shared keys, and its time (ms, and as
-- text).
local KEYS, ARGV
local K_EVENTS, K_RUNS, K_DELAYED, K_DEADLINES, K_STATS
local US, NOW, NOW_S
-- Numbers handed to redis.call are formatted with "%.17g", about 1 us
-- each: the hot paths pass integers as text, formatted once per call (S).
local NUMS
local function S(n)
    local s = NUMS[n]
    if s == nil then
        s = string.format('%d', n)
        NUMS[n] = s
    end
    return s
end
-- Set by apply(): the batch's shared fields (a scheduler's: hist_max,
-- the history cap; ttl, the retention of runs that end in s, 0 = forever;
-- chan, the cancel channel. A worker's start: worker), then each
-- transition's.
local BATCH
local K_RUN, K_STEPS, K_DEPS, K_STATE, K_HIST
local P, RUN, out

-- Appends x to the list t[k], made on first use: most transitions make
-- no ready marks and stop no jobs.
local function push(t, k, x)
    local l = t[k]
    if not l then
        l = {}
        t[k] = l
    end
    l[#l + 1] = x
end

local TERMINAL = {success = true, failed = true, skipped = true,
                  cancelled = true}

-- weft's own step that rolls a run's git changes back (rollback.lua,
-- docs/git.md "Rollback"); workflows cannot use ids starting with '.'.
local ROLLBACK_STEP = '.rollback'
-- The step a run's top level goes by when it opens in parts.
local TOP_STEP = '.top'
-- Records kept in gitState.changes (worker/gitops.h GITOPS_CHANGES_MAX):
-- one per git step result, so only a pathological run gets near it.
local GIT_CHANGES_MAX = 1000
-- When the end of a run stops running jobs, its rollback waits this long
-- (ms) so that a git step being killed (SIGTERM, SIGKILL 2 s later) is
-- gone before the rollback touches the repository.
local ROLLBACK_GRACE_MS = 5000

-- The histories a scheduler's batch wrote to (a set): the epilogue trims
-- each once to BATCH.hist_max. A MAXLEN on every XADD cost about 1 us
-- per entry. A worker's start batch has no cap and trims nothing: each
-- step it starts ends in a scheduler's transition, which trims.
local TRIM

-- Appends an entry to the run's history: the fixed fields, then the
-- extra ones, given as field, value, ... or as one table of them (or
-- nil; a table's numbers become text in place). The hot paths pass them
-- as arguments: in Redis's Lua a table costs about as much as the XADD's
-- own work.
local function hist(kind, step, status, ...)
    local extra = ...
    if type(extra) ~= 'string' and select('#', ...) > 0 then
        extra = extra or {}
        for i = 1, #extra do
            if type(extra[i]) == 'number' then extra[i] = S(extra[i]) end
        end
        return hist(kind, step, status, unpack(extra))
    end
    redis.call('XADD', K_HIST, '*', 'type', kind, 'step', step or '',
               'status', status or '', 'ts', NOW_S, 'us', US, ...)
    if BATCH.hist_max then TRIM[K_HIST] = true end
end

-- Acknowledges the message that caused this transition. Acknowledged
-- entries are trimmed in bulk later (trim.lua), except a ready mark this
-- scheduler made itself (P.del): it may not have been delivered yet, and
-- deleting it keeps it from being read and evaluated again. The epilogue
-- sends the batch's acknowledgements, one XACK (and XDEL) per stream, once
-- every transition is applied: a call per message cost more than the ack.
local ACKS, ACK_AT
local function ack(stream, group, id)
    if not id or id == '' then return end
    local g = ACK_AT[stream]
    if not g then
        g = {}
        ACK_AT[stream] = g
    end
    local a = g[group]
    if not a then
        a = {stream = stream, group = group, ids = {}, del = {}}
        g[group] = a
        ACKS[#ACKS + 1] = a
    end
    a.ids[#a.ids + 1] = id
    if P.del then a.del[#a.del + 1] = id end
end

local function attempt_of(step)
    return tonumber(redis.call('HGET', K_STEPS, step .. ':attempt')) or 0
end

local function member(step, attempt)
    return RUN .. '|' .. step .. '|' .. S(attempt)
end

-- Leaves the durable mark that step's attempt is ready (a `ready` event,
-- with field = value when given: `breaker` or `from`) and returns it to
-- the scheduler in out[list] as {step, attempt, mark id, value}.
local function mark_ready(list, step, attempt, field, value)
    local id
    if field then
        id = redis.call('XADD', K_EVENTS, '*', 'type', 'ready', 'run', RUN,
                        'step', step, 'attempt', S(attempt), field, value)
    else
        id = redis.call('XADD', K_EVENTS, '*', 'type', 'ready', 'run', RUN,
                        'step', step, 'attempt', S(attempt))
    end
    push(out, list, {step, attempt, id, value})
end

-- Puts a pre-rendered job on its queue and marks the step queued. A job
-- with a queue timeout (job.qt, ms) gets a deadline that start.lua clears.
local function emit_job(step, attempt, job)
    redis.call('XADD', KEYS[job.q], '*', 'run', RUN, 'step', step,
               'attempt', S(attempt), 'type', job.type, 'persona',
               job.persona or '', 'body', ARGV[job.a], 'sig', job.sig)
    redis.call('HSET', K_STEPS, step, 'queued', step .. ':attempt', S(attempt),
               step .. ':queued', NOW_S)
    if job.brk or job.via then
        redis.call('HDEL', K_STEPS, step .. ':waiting')
        if job.via then
            redis.call('HSET', K_STEPS, step .. ':via', job.persona)
        else
            redis.call('HDEL', K_STEPS, step .. ':via')
        end
    end
    if (tonumber(job.qt) or 0) > 0 then
        redis.call('ZADD', K_DEADLINES, NOW + job.qt,
                   member(step, attempt) .. '|queue')
    end
    hist('step', step, 'queued', 'attempt', S(attempt))
end

-- Circuit breakers (docs/protocol.md, "Circuit breakers"). A breaker b
-- is {k, wk, name, n, win, cool}: KEYS[b.k] its state hash, KEYS[b.wk]
-- the zset of steps waiting for it (member -> when they look again), n
-- failures within win ms open it, for cool ms. States: closed (absent),
-- open (until: when a probe may go), half_open (probe: the one attempt
-- let through, probe_at: when; another may go cool ms later if it is
-- lost). Each state change is written to the history of the run whose
-- transition made it.
local function brk_hist(b, step, state, extra)
    local e = {'breaker', b.name}
    for _, x in ipairs(extra or {}) do e[#e + 1] = x end
    hist('breaker', step, state, e)
end

-- Steps waiting for b look again now (b closed, or its probe was lost).
-- Members whose timer already fired are left alone (XX).
local function brk_wake(b)
    local wk = KEYS[b.wk]
    local ms = redis.call('ZRANGE', wk, 0, -1)
    local args = {}
    for i, m in ipairs(ms) do
        args[#args + 1] = NOW_S
        args[#args + 1] = m
        if #args >= 1000 or i == #ms then
            redis.call('ZADD', K_DELAYED, 'XX', 'LT', unpack(args))
            args = {}
        end
    end
    redis.call('ZREMRANGEBYSCORE', wk, '-inf', '+inf')
end

local function brk_open(b, step, failures)
    local key = KEYS[b.k]
    redis.call('HSET', key, 'state', 'open', 'opened', NOW_S, 'until',
               NOW + b.cool, 'changed', NOW, 'failures', failures,
               'threshold', b.n, 'window_ms', b.win, 'cooldown_ms', b.cool)
    redis.call('HDEL', key, 'probe', 'probe_at')
    redis.call('HINCRBY', key, 'trips', '1')
    brk_hist(b, step, 'open', {'failures', failures, 'until', NOW + b.cool})
end

-- May an attempt (member m of step) go to b's service now? true; or
-- false and when to look again (ms). An open breaker whose cool-down is
-- over turns half-open and lets this attempt through as its probe.
local function brk_admit(b, m, step)
    local key = KEYS[b.k]
    local h = redis.call('HMGET', key, 'state', 'until', 'probe', 'probe_at')
    if h[1] == 'open' then
        local due = tonumber(h[2]) or 0
        if NOW < due then return false, due end
        redis.call('HSET', key, 'state', 'half_open', 'probe', m,
                   'probe_at', NOW_S, 'changed', NOW_S)
        brk_hist(b, step, 'half_open', {'probe', m})
        return true
    elseif h[1] == 'half_open' then
        local due = (tonumber(h[4]) or 0) + b.cool
        if h[3] and h[3] ~= m and NOW < due then return false, due end
        redis.call('HSET', key, 'probe', m, 'probe_at', NOW_S)
        return true
    end
    return true
end

-- Counts an ended attempt (member m) on b: res 'fail' (an error or a
-- timeout), 'ok' (the service answered) or 'none' (nothing was asked of
-- it). n failures within win ms open a closed breaker; a failure while
-- half-open opens it again, an answer closes it.
local function brk_record(b, m, res, step, err)
    local key = KEYS[b.k]
    local h = redis.call('HMGET', key, 'state', 'failures', 'window_start',
                         'probe')
    local st = h[1] or 'closed'
    if res == 'fail' then
        redis.call('HSET', key, 'last_failure', NOW_S, 'last_error',
                   string.sub(err or '', 1, 256))
        if st == 'half_open' then
            brk_open(b, step, tonumber(h[2]) or 0)
        elseif st == 'closed' then
            local n, ws = tonumber(h[2]) or 0, tonumber(h[3]) or 0
            if NOW - ws >= b.win then n, ws = 0, NOW end
            n = n + 1
            if n >= b.n then
                redis.call('HSET', key, 'window_start', ws)
                brk_open(b, step, n)
            else
                redis.call('HSET', key, 'state', 'closed', 'failures', n,
                           'window_start', ws, 'threshold', b.n,
                           'window_ms', b.win, 'cooldown_ms', b.cool)
            end
        end
    elseif res == 'ok' then
        if st == 'half_open' then
            redis.call('HSET', key, 'state', 'closed', 'failures', 0,
                       'window_start', NOW_S, 'changed', NOW_S)
            redis.call('HDEL', key, 'probe', 'probe_at', 'until')
            brk_hist(b, step, 'closed')
            brk_wake(b)
        end
    elseif st == 'half_open' and h[4] == m then
        redis.call('HDEL', key, 'probe', 'probe_at')
        brk_wake(b)
    end
end

-- A step waits for breaker b (and b2, its fallback's, when both are
-- open): it stays pending, its ready timer is set for `due` and it is
-- listed among each breaker's waiters to be woken when one closes.
local function brk_wait(step, attempt, due, b, b2)
    local m = member(step, attempt)
    redis.call('ZADD', K_DELAYED, due, m)
    for _, x in ipairs({b, b2}) do
        -- Members due before now have fired or are about to.
        redis.call('ZREMRANGEBYSCORE', KEYS[x.wk], '-inf', '(' .. NOW)
        redis.call('ZADD', KEYS[x.wk], due, m)
    end
    if redis.call('HGET', K_STEPS, step .. ':waiting') ~= b.name then
        redis.call('HSET', K_STEPS, step .. ':waiting', b.name)
        brk_hist(b, step, 'waiting', {'attempt', attempt, 'due', due})
    end
end

-- Dispatches a ready step's job through its breaker (job.brk): while the
-- breaker is open the step's policy (job.on_open) decides: wait, go to
-- the fallback persona's job (job.fb, through that persona's breaker),
-- or fail, which leaves a ready mark naming the breaker for a scheduler
-- to fail the step with (it needs the step's edges, which only the
-- scheduler has).
local function dispatch_job(step, attempt, job)
    local b = job.brk
    if not b then
        emit_job(step, attempt, job)
        return
    end
    local m = member(step, attempt)
    local ok, due = brk_admit(b, m, step)
    if ok then
        emit_job(step, attempt, job)
        return
    end
    local fb = job.fb
    if job.on_open == 'fallback' and fb then
        local ok2, due2 = true, nil
        if fb.brk then ok2, due2 = brk_admit(fb.brk, m, step) end
        if ok2 then
            emit_job(step, attempt, fb)
            brk_hist(b, step, 'diverted', {'attempt', attempt,
                                           'persona', fb.persona})
            return
        end
        brk_wait(step, attempt, math.min(due, due2), b, fb.brk)
    elseif job.on_open == 'fail' then
        mark_ready('ready', step, attempt, 'breaker', b.name)
        brk_hist(b, step, 'rejected', {'attempt', attempt})
    else
        brk_wait(step, attempt, due, b)
    end
end

-- A step became ready: dispatch it now if its job needs no evaluation,
-- else leave the durable mark (a ready event) for a scheduler to evaluate.
-- fresh: the step has never been dispatched (a new run, or a group's
-- first activation), so this is its attempt 1.
local function make_ready(item, fresh)
    local step = item.id
    local attempt = fresh and 1 or attempt_of(step) + 1
    if item.job and attempt == 1 then
        dispatch_job(step, attempt, item.job)
        return
    end
    mark_ready('ready', step, attempt)
end

-- A big list opens in parts (docs/protocol.md, "Big groups"): after the
-- part this transition queued, a ready mark (`from`) for the next one, and
-- S:next saying which part may come; after the last, S:next goes.
local function next_part(step, attempt)
    if P.next then
        redis.call('HSET', K_DEPS, step .. ':next', S(P.next))
        mark_ready('more', step, attempt, 'from', P.next)
    elseif P.from then
        redis.call('HDEL', K_DEPS, step .. ':next')
    end
end

local function release(list)
    for _, item in ipairs(list or {}) do
        if redis.call('HINCRBY', K_DEPS, item.id, '-1') == 0 then
            make_ready(item)
        end
    end
end

-- A step starts waiting for a person: kind 'approval' (an approval step)
-- or 'escalation' (a failure with on_failure: escalate). The run waits
-- too; the header's `waiting` counts the steps that wait.
local function wait_begin(step, kind)
    redis.call('HSET', K_STEPS, step, 'waiting_for_human', step .. ':wait',
               kind)
    redis.call('HINCRBY', K_RUN, 'waiting', '1')
    redis.call('HSET', K_RUN, 'status', 'waiting_for_human')
    out.run = 'waiting_for_human'
end

-- A step no longer waits (answered, or stopped); the run runs again once
-- no step waits. A run that ended meanwhile keeps its status.
local function wait_end(step)
    redis.call('HDEL', K_STEPS, step .. ':wait', step .. ':deadline')
    if redis.call('HINCRBY', K_RUN, 'waiting', '-1') > 0 then return end
    redis.call('HDEL', K_RUN, 'waiting')
    if redis.call('HGET', K_RUN, 'status') == 'waiting_for_human' then
        redis.call('HSET', K_RUN, 'status', 'running')
        hist('run', '', 'running', {'resumed', step})
    end
end

-- Stops a step that has not finished: running jobs are told over pub/sub,
-- queued and pending ones are marked without running.
local function stop_step(step, status)
    local st = redis.call('HGET', K_STEPS, step)
    if not st or TERMINAL[st] then return end
    if st == 'waiting_for_human' then wait_end(step) end
    local attempt = attempt_of(step)
    if st == 'running' then
        local m = member(step, attempt)
        push(out, 'cancel', m)
        if BATCH.chan then redis.call('PUBLISH', BATCH.chan, m) end
        status = 'cancelled'
    end
    redis.call('HSET', K_STEPS, step, status, step .. ':finished', NOW_S)
    redis.call('ZREM', K_DEADLINES, member(step, attempt),
               member(step, attempt) .. '|queue')
    hist('step', step, status)
end

local function set_retention()
    local ttl = BATCH.ttl or 0
    if ttl > 0 then
        for _, k in ipairs({K_RUN, K_STEPS, K_DEPS, K_STATE, K_HIST}) do
            redis.call('EXPIRE', k, S(ttl))
        end
    end
end

local function json_field(key, field)
    local v = redis.call('HGET', key, field)
    if v then return cjson.decode(v) end
    return nil
end

-- A run with `rollback: true` (P.rollback) ended failed or cancelled:
-- the git changes its steps recorded are to be undone. The durable mark
-- is a ready event for weft's own step ROLLBACK_STEP, like any step's:
-- a scheduler turns it into the rollback job (rollback.lua) at once or
-- after a crash. The run's status stays what it is.
local function request_rollback()
    local g = json_field(K_RUN, 'gitState')
    local ch = type(g) == 'table' and g.changes or nil
    if type(ch) ~= 'table' or #ch == 0 then
        hist('rollback', '', 'skipped', {'reason', 'no git changes recorded'})
        return
    end
    local attempt = attempt_of(ROLLBACK_STEP) + 1
    redis.call('HSET', K_STEPS, ROLLBACK_STEP, 'pending',
               ROLLBACK_STEP .. ':first', attempt)
    if out.cancel then
        -- Jobs are being stopped: the timer's ready event comes later.
        local due = NOW + ROLLBACK_GRACE_MS
        redis.call('ZADD', K_DELAYED, due, member(ROLLBACK_STEP, attempt))
        hist('rollback', '', 'pending', {'changes', #ch, 'due', due})
        return
    end
    mark_ready('ready', ROLLBACK_STEP, attempt)
    hist('rollback', '', 'pending', {'changes', #ch})
end

local function end_run(status, err)
    redis.call('HSET', K_RUN, 'status', status, 'finished', NOW_S)
    redis.call('ZREM', K_DEADLINES, RUN .. '|run')
    if err then redis.call('HSET', K_RUN, 'error', err) end
    if status ~= 'success' then
        local all = redis.call('HGETALL', K_STEPS)
        for i = 1, #all, 2 do
            local f = all[i]
            if not string.find(f, ':', 1, true) then
                stop_step(f, 'cancelled')
            end
        end
    end
    hist('run', '', status, err and {'error', err} or nil)
    if status ~= 'success' and P.rollback then request_rollback() end
    redis.call('HINCRBY', K_STATS, 'runs_' .. status, '1')
    set_retention()
    out.run = status
end

-- Appends to gitState g what the git step's result (P.git) says it
-- created or moved, so a rollback can undo it: gitState's other keys
-- describe the last git step only (each result replaces them), this list
-- keeps every step's. Returns whether g changed.
local function add_git_change(g, step, attempt)
    local git = P.git
    if type(git) ~= 'table' or type(git.previous) ~= 'table' then
        return false
    end
    local pv = git.previous
    if type(pv.ref) ~= 'string' or
        not (git.changed == true or pv.created == true) then
        return false
    end
    local c = {step = step, attempt = attempt, op = git.operation,
               ref = pv.ref, created = pv.created == true}
    if type(pv.commit) == 'string' then c.before = pv.commit end
    if type(pv.head) == 'string' then c.head = pv.head end
    if git.operation == 'push' and type(git.remote) == 'string' then
        c.remote = git.remote
        if type(git.pushed) == 'string' then c.pushed = git.pushed end
    end
    local ch = g.changes
    if type(ch) ~= 'table' then ch = {} end
    if #ch >= GIT_CHANGES_MAX then
        g.changes_truncated = true
    else
        ch[#ch + 1] = c
    end
    g.changes = ch
    return true
end

-- A git step's attempt failed and will be retried: what it changed all
-- the same (a branch created before the failure) is kept for a rollback.
local function note_git_change(step, attempt)
    if type(P.git) ~= 'table' then return end
    local g = json_field(K_RUN, 'gitState') or {}
    if add_git_change(g, step, attempt) then
        redis.call('HSET', K_RUN, 'gitState', cjson.encode(g))
    end
end

-- Records what a finished step produced in the run's context.
local function record_outcome(step, status)
    local skey = P.skey or step
    local status_json = cjson.encode(P.verdict or status)
    if P.result_json then
        redis.call('HSET', K_STATE, skey .. '_result', P.result_json,
                   skey .. '_status', status_json)
    else
        redis.call('HSET', K_STATE, skey .. '_status', status_json)
    end
    if type(P.state_json) == 'table' then
        for k, v in pairs(P.state_json) do
            redis.call('HSET', K_STATE, k, v)
        end
    end
    if type(P.artifacts) == 'table' and #P.artifacts > 0 then
        local a = json_field(K_RUN, 'artifacts') or {}
        for _, x in ipairs(P.artifacts) do a[#a + 1] = x end
        redis.call('HSET', K_RUN, 'artifacts', cjson.encode(a))
    end
    if P.persona and P.result_json then
        local pr = json_field(K_RUN, 'personaResults') or {}
        pr[P.persona] = cjson.decode(P.result_json)
        redis.call('HSET', K_RUN, 'personaResults', cjson.encode(pr))
    end
    if type(P.git) == 'table' then
        local g = json_field(K_RUN, 'gitState') or {}
        for k, v in pairs(P.git) do
            if k ~= 'changes' and k ~= 'changes_truncated' then g[k] = v end
        end
        add_git_change(g, step, P.attempt)
        redis.call('HSET', K_RUN, 'gitState', cjson.encode(g))
    end
end

-- A step (or group) finished with status; ok says whether its dependents
-- may run (success, skipped, or failed with on_failure: continue). Walks
-- up the enclosing groups (P.anc, innermost first) completing each whose
-- last child this was, and completes the run at the top.
local function propagate(status, ok, deps)
    if ok then release(deps) end
    for _, g in ipairs(P.anc or {}) do
        local gs = redis.call('HGET', K_STEPS, g.id)
        if TERMINAL[gs] then return end
        local gstatus
        if g.kind == 'any' then
            if status == 'success' then
                for _, d in ipairs(g.desc or {}) do
                    stop_step(d, 'skipped')
                end
                gstatus = 'success'
            else
                if status == 'failed' then
                    redis.call('HINCRBY', K_DEPS, g.id .. ':failed', '1')
                end
                if redis.call('HINCRBY', K_DEPS, g.id .. ':left', '-1') > 0 then
                    return
                end
                if redis.call('HEXISTS', K_DEPS, g.id .. ':failed') == 1 then
                    gstatus = 'failed'
                else
                    gstatus = 'skipped'
                end
            end
        elseif not ok then
            for _, d in ipairs(g.desc or {}) do stop_step(d, 'cancelled') end
            gstatus = 'failed'
        elseif redis.call('HINCRBY', K_DEPS, g.id .. ':left', '-1') > 0 then
            return
        else
            gstatus = 'success'
        end
        redis.call('HSET', K_STEPS, g.id, gstatus, g.id .. ':finished', NOW_S)
        hist('step', g.id, gstatus)
        if g.skey then
            redis.call('HSET', K_STATE, g.skey .. '_status',
                       cjson.encode(gstatus))
        end
        status = gstatus
        ok = gstatus ~= 'failed' or g.on_failure == 'continue'
        if ok then release(g.deps) end
    end
    -- Reached the top level.
    if not ok then
        end_run('failed', P.run_error or 'a step failed')
        return
    end
    if redis.call('HINCRBY', K_RUN, 'top_left', '-1') <= 0 then
        end_run('success')
    end
end

local function run_active()
    local rs = redis.call('HGET', K_RUN, 'status')
    return rs == 'running' or rs == 'waiting_for_human'
end

-- The compare-and-set of a ready mark (dispatch, activate, park): the
-- run is active and P.step is pending with attempt P.attempt - 1.
local function ready_cas()
    return run_active() and redis.call('HGET', K_STEPS, P.step) == 'pending'
        and attempt_of(P.step) == P.attempt - 1
end

-- Copies the stream entry `entry` of `origin` to the DLQ `dlq` with the
-- bookkeeping fields (docs/protocol.md, "Dead letters") and at most `max`
-- of its fields (the rest marked dlq_truncated); an entry already deleted
-- gets the bookkeeping only.
local function dlq_copy(dlq, origin, entry, reason, by, at, max)
    local args = {'XADD', dlq, '*', 'dlq_origin', origin, 'dlq_entry', entry,
                  'dlq_reason', reason, 'dlq_by', by, 'dlq_at', at}
    local e = redis.call('XRANGE', origin, entry, entry)[1]
    if e then
        local f = e[2]
        for i = 1, math.min(#f, 2 * max) do args[#args + 1] = f[i] end
        if #f > 2 * max then
            args[#args + 1] = 'dlq_truncated'
            args[#args + 1] = '1'
        end
    end
    redis.call(unpack(args))
end

-- Starts a call: its keys and args, its time, and nothing accumulated
-- yet (formatted numbers, histories to trim, acknowledgements).
local function begin(keys, args)
    KEYS, ARGV = keys, args
    K_EVENTS, K_RUNS, K_DELAYED, K_DEADLINES, K_STATS = keys[1], keys[2],
        keys[3], keys[4], keys[5]
    US = args[1]
    NOW = math.floor(tonumber(US) / 1000)
    NUMS, TRIM, ACKS, ACK_AT = {}, {}, {}, {}
    NOW_S = S(NOW)
end
