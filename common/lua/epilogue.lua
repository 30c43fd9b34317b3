-- epilogue.lua - applies each transition of the batch (see lib.lua).
local batch = cjson.decode(ARGV[2])
local results = {}
for i, t in ipairs(batch) do
    local k = t.k
    K_RUN, K_STEPS, K_DEPS, K_STATE, K_HIST = KEYS[k], KEYS[k + 1],
        KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
    P, RUN = t, t.run
    HIST_MAX = tonumber(t.hist_max) or 100000
    out = {ready = {}, cancel = {}}
    results[i] = main()
end
return cjson.encode(results)
