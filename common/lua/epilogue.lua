-- epilogue.lua - apply(main, keys, args): applies main to each transition
-- of the batch (see lib.lua; embed.c wraps this file in the function).
-- A batch is {shared fields..., plans: [...]} (see BATCH in lib.lua).
BATCH = cjson.decode(ARGV[2])
local batch = BATCH.plans or {}
local results = {}
for i, t in ipairs(batch) do
    local k = t.k
    K_RUN, K_STEPS, K_DEPS, K_STATE, K_HIST = KEYS[k], KEYS[k + 1],
        KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
    P, RUN = t, t.run
    out = {}
    results[i] = main()
end
-- The acknowledgements ack() collected (unpack is bounded by the stack).
for _, a in ipairs(ACKS) do
    for i = 1, #a.ids, 1000 do
        redis.call('XACK', a.stream, a.group,
                   unpack(a.ids, i, math.min(i + 999, #a.ids)))
    end
    for i = 1, #a.del, 1000 do
        redis.call('XDEL', a.stream, unpack(a.del, i, math.min(i + 999, #a.del)))
    end
end
-- Each history written to is capped once (approximately, as MAXLEN ~
-- does: whole stream nodes go).
for k in pairs(TRIM) do
    redis.call('XTRIM', k, 'MAXLEN', '~', S(BATCH.hist_max))
end
return cjson.encode(results)
