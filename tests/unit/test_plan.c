/* test_plan.c - the transition plans the scheduler hands to the scripts:
 * edges, pre-rendered jobs, groups, retries. Pure: no Redis. */
#include <criterion/criterion.h>
#include <string.h>

#include "alloc.h"
#include "plan.h"
#include "wfdef.h"

static struct keys keys;
static struct hmac_key key;

static struct wf *load(const char *yaml)
{
    struct diag d;
    diag_init(&d, "test.yml");
    struct wf *wf = NULL;
    int rc = wf_load_buffer(yaml, strlen(yaml), "test", &wf, &d);
    if (rc)
        diag_print(&d, stderr);
    diag_deinit(&d);
    cr_assert_eq(rc, 0, "workflow must load");
    return wf;
}

static void setup(void)
{
    weft_alloc_init();
    keys_init(&keys, NULL);
    hmac_key_set(&key, "0123456789abcdef0123", 20, NULL);
}

static struct runinfo runinfo_of(const struct wf *wf)
{
    struct runinfo ri = {
        .run = (char *)"r1",
        .digest = (char *)wf->digest,
        .wf = wf,
        .task = json_pack("{s:s, s:s}", "type", "feature", "slug", "x"),
        .vars = json_object(),
        .ctx = json_pack("{s:s, s:s, s:s}", "workflowId", "r1", "branchName",
                         "weft/r1", "baseBranch", "main"),
        .trace = (char *)"0af7651916cd43dd8448eb211c80319c",
    };
    return ri;
}

static void runinfo_done(struct runinfo *ri)
{
    json_decref(ri->task);
    json_decref(ri->vars);
    json_decref(ri->ctx);
}

static struct plan_env env = {.now_ms = 1000, .hist_max = 100, .ttl_s = 60};

static const char *chain = "name: c\n"
                           "steps:\n"
                           "  - id: a\n"
                           "    type: noop\n"
                           "  - id: b\n"
                           "    type: noop\n"
                           "    dependencies: [a]\n"
                           "  - id: c\n"
                           "    type: noop\n"
                           "    dependencies: [b]\n"
                           "    condition: \"task.type === 'hotfix'\"\n";

Test(plan, create_run_readies_only_roots_with_jobs_for_static_steps,
     .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load(chain);
    struct runinfo ri = runinfo_of(wf);
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_create_run(&env, &ri, "1-0", &p, NULL), 0);
    cr_assert_eq(plan_size(&p), 1);
    json_t *t = plan_get(&p, 0);
    json_t *ready = json_object_get(t, "ready");
    cr_assert_eq(json_array_size(ready), 1);
    json_t *a = json_array_get(ready, 0);
    cr_assert_str_eq(json_string_value(json_object_get(a, "id")), "a");
    cr_assert_not_null(json_object_get(a, "job"), "a is static: job inline");
    cr_assert_eq(json_integer_value(json_object_get(t, "top")), 3);
    json_t *deps = json_object_get(t, "deps");
    cr_assert_eq(json_array_size(deps), 2);
    /* KEYS: five shared keys, the run's five, the tasks stream, the
     * queue; the transition points at its run keys. */
    cr_assert_eq(p.nkeys, 12);
    cr_assert_str_eq(p.keys[0], "weft:events");
    cr_assert_str_eq(p.keys[5], "weft:run:r1");
    cr_assert_eq(json_integer_value(json_object_get(t, "k")), 6);
    cr_assert_str_eq(p.keys[10], "weft:tasks");
    cr_assert_eq(json_integer_value(json_object_get(t, "tk")), 11);
    cr_assert_str_eq(p.keys[11], "weft:q:default");
    cr_assert_eq(p.nbodies, 1);
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
}

Test(plan, finish_does_not_prerender_a_conditioned_dependent, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load(chain);
    struct runinfo ri = runinfo_of(wf);
    struct wire_result res = {.status = WIRE_SUCCESS};
    struct plan p;
    plan_init(&p);
    const struct wf_step *b = wf_find_step(wf, "b", 1);
    cr_assert_eq(plan_finish(&env, &ri, b, 1, "5-0", &res, NULL, &p, NULL), 0);
    json_t *deps = json_object_get(plan_get(&p, 0), "deps");
    cr_assert_eq(json_array_size(deps), 1);
    cr_assert_null(json_object_get(json_array_get(deps, 0), "job"));
    cr_assert_str_eq(
        json_string_value(json_object_get(plan_get(&p, 0), "outcome")),
        "success");
    cr_assert_eq(p.nbodies, 0);
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
}

Test(plan, retryable_failure_schedules_a_retry_until_the_policy_is_spent,
     .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load("steps:\n"
                         "  - id: a\n"
                         "    type: noop\n"
                         "    retry: {max: 2, backoff: exponential, delay: 1,"
                         " max_delay: 3}\n");
    struct runinfo ri = runinfo_of(wf);
    const struct wf_step *a = wf_find_step(wf, "a", 1);
    struct wire_result res = {.status = WIRE_ERROR, .message = (char *)"boom"};
    for (uint32_t attempt = 1; attempt <= 3; attempt++) {
        struct plan p;
        plan_init(&p);
        cr_assert_eq(
            plan_finish(&env, &ri, a, attempt, "", &res, NULL, &p, NULL), 0);
        json_t *due = json_object_get(plan_get(&p, 0), "retry_at");
        if (attempt <= 2)
            cr_assert_not_null(due, "attempt %u must be retried", attempt);
        else
            cr_assert_null(due, "the third attempt is the last");
        plan_deinit(&p);
    }
    res.status = WIRE_FATAL;
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_finish(&env, &ri, a, 1, "", &res, NULL, &p, NULL), 0);
    cr_assert_null(json_object_get(plan_get(&p, 0), "retry_at"),
                   "fatal never retries");
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
}

Test(plan, exponential_backoff_doubles_and_caps)
{
    struct wf_retry r = {.max = 5,
                         .backoff = WF_BACKOFF_EXPONENTIAL,
                         .delay_ms = 100,
                         .max_delay_ms = 350};
    cr_assert_eq(plan_backoff_ms(&r, 2, 0.5), 100);
    cr_assert_eq(plan_backoff_ms(&r, 3, 0.5), 200);
    cr_assert_eq(plan_backoff_ms(&r, 4, 0.5), 350);
    r.backoff = WF_BACKOFF_FIXED;
    cr_assert_eq(plan_backoff_ms(&r, 4, 0.5), 100);
    r.jitter = 0.5;
    cr_assert_eq(plan_backoff_ms(&r, 2, 0.0), 50);
    cr_assert_eq(plan_backoff_ms(&r, 2, 0.999999), 149);
}

static const char *groups = "steps:\n"
                            "  - id: g\n"
                            "    type: parallel\n"
                            "    wait_for: any\n"
                            "    steps:\n"
                            "      - id: x\n"
                            "        type: noop\n"
                            "      - id: c\n"
                            "        type: conditional\n"
                            "        condition: \"task.type === 'x'\"\n"
                            "        then_steps:\n"
                            "          - id: t1\n"
                            "            type: noop\n"
                            "        else_steps:\n"
                            "          - id: e1\n"
                            "            type: noop\n"
                            "          - id: e2\n"
                            "            type: noop\n"
                            "            dependencies: [e1]\n"
                            "  - id: after\n"
                            "    type: noop\n"
                            "    dependencies: [g]\n";

Test(plan, success_inside_any_group_carries_the_losers_to_stop, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load(groups);
    struct runinfo ri = runinfo_of(wf);
    const struct wf_step *x = wf_find_step(wf, "x", 1);
    struct wire_result res = {.status = WIRE_SUCCESS};
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_finish(&env, &ri, x, 1, "", &res, NULL, &p, NULL), 0);
    json_t *anc = json_object_get(plan_get(&p, 0), "anc");
    cr_assert_eq(json_array_size(anc), 1);
    json_t *g = json_array_get(anc, 0);
    cr_assert_str_eq(json_string_value(json_object_get(g, "kind")), "any");
    /* Every descendant of g: x, c, t1, e1, e2. */
    cr_assert_eq(json_array_size(json_object_get(g, "desc")), 5);
    json_t *gdeps = json_object_get(g, "deps");
    cr_assert_eq(json_array_size(gdeps), 1);
    cr_assert_not_null(json_object_get(json_array_get(gdeps, 0), "job"));
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
}

Test(plan, activating_else_branch_skips_then_and_readies_its_roots,
     .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load(groups);
    struct runinfo ri = runinfo_of(wf);
    const struct wf_step *c = wf_find_step(wf, "c", 1);
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_activate(&env, &ri, c, 1, "", 1, &p, NULL), 0);
    json_t *t = plan_get(&p, 0);
    cr_assert_eq(json_integer_value(json_object_get(t, "nkids")), 2);
    json_t *kids = json_object_get(t, "kids");
    cr_assert_eq(json_array_size(kids), 1, "only e1 has no dependencies");
    json_t *skip = json_object_get(t, "skip");
    cr_assert_eq(json_array_size(skip), 1);
    cr_assert_str_eq(json_string_value(json_array_get(skip, 0)), "t1");
    cr_assert_str_eq(json_string_value(json_object_get(t, "branch")), "else");
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
}

Test(plan, scope_exposes_step_results_and_context_state, .init = setup)
{
    struct wf *wf = load(chain);
    struct runinfo ri = runinfo_of(wf);
    json_t *state =
        json_pack("{s:s, s:{s:i}}", "a_status", "pass", "a_result", "n", 3);
    json_t *scope = plan_scope(&ri, state, NULL);
    cr_assert_not_null(scope);
    json_t *a = json_object_get(json_object_get(scope, "steps"), "a");
    cr_assert_str_eq(json_string_value(json_object_get(a, "status")), "pass");
    json_t *ctx = json_object_get(scope, "context");
    cr_assert_eq(json_object_get(ctx, "state"),
                 json_object_get(scope, "state"));
    cr_assert_str_eq(json_string_value(json_object_get(ctx, "branchName")),
                     "weft/r1");
    cr_assert(json_is_array(json_object_get(ctx, "artifacts")));
    json_decref(scope);
    json_decref(state);
    runinfo_done(&ri);
    wf_free(wf);
}

Test(plan, state_stem_writes_dashes_as_underscores)
{
    char out[WF_MAX_ID_LEN + 1];
    plan_state_stem("plan-evaluation", out);
    cr_assert_str_eq(out, "plan_evaluation");
}

Test(plan, a_batch_shares_run_keys_and_a_failed_builder_leaves_it_unchanged,
     .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load(chain);
    struct runinfo ri = runinfo_of(wf);
    struct wire_result res = {.status = WIRE_SUCCESS};
    struct plan p;
    plan_init(&p);
    const struct wf_step *a = wf_find_step(wf, "a", 1);
    const struct wf_step *b = wf_find_step(wf, "b", 1);
    cr_assert_eq(plan_finish(&env, &ri, a, 1, "1-0", &res, NULL, &p, NULL), 0);
    uint32_t nkeys = p.nkeys;
    cr_assert_eq(plan_finish(&env, &ri, b, 1, "2-0", &res, NULL, &p, NULL), 0);
    cr_assert_eq(plan_size(&p), 2);
    cr_assert_eq(p.nkeys, nkeys, "the same run adds no keys");
    cr_assert_eq(json_integer_value(json_object_get(plan_get(&p, 1), "k")),
                 json_integer_value(json_object_get(plan_get(&p, 0), "k")));
    weft_alloc_fail_after(1);
    int rc = plan_cancel(&env, &ri, "3-0", "x", &p);
    weft_alloc_fail_reset();
    cr_assert_neq(rc, 0);
    cr_assert_eq(plan_size(&p), 2, "a failed builder appends nothing");
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
}

/* ---- circuit breakers and timeouts ---- */

static struct personas *registry(void)
{
    const char *text = "personas:\n"
                       "  qa:\n"
                       "    exec: [x]\n"
                       "    breaker: {failures: 4, window: 30, cooldown: 2}\n"
                       "  backup:\n"
                       "    exec: [y]\n"
                       "    queue: spare\n"
                       "    breaker: {failures: 2}\n"
                       "  plain: {exec: [z]}\n"
                       "remotes:\n"
                       "  upstream: {breaker: {cooldown: 9}}\n";
    struct personas *r = NULL;
    struct diag d;
    diag_init(&d, "reg.yml");
    int rc = personas_load_buffer(text, strlen(text), "/", &r, &d);
    diag_deinit(&d);
    cr_assert_eq(rc, 0);
    return r;
}

static const char *guarded = "timeout: 90\n"
                             "steps:\n"
                             "  - id: ask\n"
                             "    type: persona-request\n"
                             "    persona: qa\n"
                             "    fallback_persona: backup\n"
                             "    queue_timeout: 5\n"
                             "  - id: tuned\n"
                             "    type: persona-request\n"
                             "    persona: qa\n"
                             "    breaker: {failures: 2}\n"
                             "    on_breaker_open: fail\n"
                             "  - id: free\n"
                             "    type: persona-request\n"
                             "    persona: plain\n"
                             "  - id: off\n"
                             "    type: persona-request\n"
                             "    persona: qa\n"
                             "    breaker: false\n"
                             "  - id: push\n"
                             "    type: git-operation\n"
                             "    operation: push\n"
                             "    remote: upstream\n"
                             "  - id: fetch\n"
                             "    type: git-operation\n"
                             "    operation: fetch\n"
                             "    breaker: {failures: 3}\n"
                             "  - id: pull\n"
                             "    type: git-operation\n"
                             "    operation: pull\n"
                             "    remote: \"{{task.slug}}\"\n"
                             "  - id: commit\n"
                             "    type: git-operation\n"
                             "    operation: commit\n"
                             "    message: m\n";

static json_t *dispatched_job(struct plan *p, struct wf *wf, struct runinfo *ri,
                              const char *id)
{
    plan_init(p);
    const struct wf_step *s = wf_find_step(wf, id, strlen(id));
    json_t *scope = plan_scope(ri, NULL, NULL);
    cr_assert_eq(plan_dispatch(&env, ri, s, 1, "9-0", scope, p, NULL), 0);
    json_decref(scope);
    return json_object_get(plan_get(p, 0), "job");
}

static void expect_breaker(const struct plan *p, json_t *b, const char *name,
                           json_int_t n, json_int_t win, json_int_t cool)
{
    char bkey[KEYS_MAX], wkey[KEYS_MAX];
    cr_assert_not_null(b, "no breaker, expected %s", name);
    cr_assert_str_eq(json_string_value(json_object_get(b, "name")), name);
    cr_assert_eq(json_integer_value(json_object_get(b, "n")), n);
    cr_assert_eq(json_integer_value(json_object_get(b, "win")), win);
    cr_assert_eq(json_integer_value(json_object_get(b, "cool")), cool);
    snprintf(bkey, sizeof(bkey), "weft:breaker:%s", name);
    snprintf(wkey, sizeof(wkey), "weft:breakerwait:%s", name);
    json_int_t k = json_integer_value(json_object_get(b, "k"));
    json_int_t wk = json_integer_value(json_object_get(b, "wk"));
    cr_assert(k > 0 && (uint32_t)k <= p->nkeys);
    cr_assert(wk > 0 && (uint32_t)wk <= p->nkeys);
    cr_assert_str_eq(p->keys[k - 1], bkey);
    cr_assert_str_eq(p->keys[wk - 1], wkey);
}

Test(plan, persona_job_carries_its_breaker_policy_fallback_and_queue_timeout,
     .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    env.personas = registry();
    struct wf *wf = load(guarded);
    struct runinfo ri = runinfo_of(wf);
    struct plan p;
    json_t *job = dispatched_job(&p, wf, &ri, "ask");
    expect_breaker(&p, json_object_get(job, "brk"), "qa", 4, 30000, 2000);
    cr_assert_str_eq(json_string_value(json_object_get(job, "on_open")),
                     "fallback");
    cr_assert_eq(json_integer_value(json_object_get(job, "qt")), 5000);
    cr_assert_null(json_object_get(job, "via"));
    json_t *fb = json_object_get(job, "fb");
    cr_assert_not_null(fb, "the fallback job is rendered alongside");
    cr_assert_str_eq(json_string_value(json_object_get(fb, "persona")),
                     "backup");
    cr_assert(json_is_true(json_object_get(fb, "via")));
    cr_assert_eq(json_integer_value(json_object_get(fb, "qt")), 5000);
    cr_assert_str_eq(p.keys[json_integer_value(json_object_get(fb, "q")) - 1],
                     "weft:q:spare", "the fallback persona's own queue");
    expect_breaker(&p, json_object_get(fb, "brk"), "backup", 2,
                   BREAKER_DEFAULT_WINDOW_MS, BREAKER_DEFAULT_COOLDOWN_MS);
    cr_assert_eq(p.nbodies, 2);
    cr_assert_neq(json_integer_value(json_object_get(fb, "a")),
                  json_integer_value(json_object_get(job, "a")));
    plan_deinit(&p);

    /* The step's own fields win over the registry's. */
    job = dispatched_job(&p, wf, &ri, "tuned");
    expect_breaker(&p, json_object_get(job, "brk"), "qa", 2, 30000, 2000);
    cr_assert_str_eq(json_string_value(json_object_get(job, "on_open")),
                     "fail");
    cr_assert_null(json_object_get(job, "fb"));
    cr_assert_null(json_object_get(job, "qt"));
    plan_deinit(&p);

    /* No breaker anywhere, or turned off: a bare job. */
    const char *bare[] = {"free", "off", "pull", "commit"};
    for (size_t i = 0; i < 4; i++) {
        job = dispatched_job(&p, wf, &ri, bare[i]);
        cr_assert_null(json_object_get(job, "brk"), "%s", bare[i]);
        cr_assert_null(json_object_get(job, "on_open"), "%s", bare[i]);
        plan_deinit(&p);
    }
    runinfo_done(&ri);
    wf_free(wf);
    personas_free((struct personas *)env.personas);
    env.personas = NULL;
}

Test(plan, git_remote_breakers_are_named_after_the_remote, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    env.personas = registry();
    struct wf *wf = load(guarded);
    struct runinfo ri = runinfo_of(wf);
    struct plan p;
    json_t *job = dispatched_job(&p, wf, &ri, "push");
    expect_breaker(&p, json_object_get(job, "brk"), "git:upstream",
                   BREAKER_DEFAULT_FAILURES, BREAKER_DEFAULT_WINDOW_MS, 9000);
    cr_assert_str_eq(json_string_value(json_object_get(job, "on_open")),
                     "wait");
    plan_deinit(&p);
    job = dispatched_job(&p, wf, &ri, "fetch");
    expect_breaker(&p, json_object_get(job, "brk"), "git:origin", 3,
                   BREAKER_DEFAULT_WINDOW_MS, BREAKER_DEFAULT_COOLDOWN_MS);
    plan_deinit(&p);
    struct plan_breaker b;
    cr_assert_not(plan_breaker_of(&env, wf_find_step(wf, "pull", 4), false, &b),
                  "a templated remote has no breaker");
    cr_assert_str_eq(b.name, "");
    runinfo_done(&ri);
    wf_free(wf);
    personas_free((struct personas *)env.personas);
    env.personas = NULL;
}

Test(plan, finish_counts_the_attempt_on_the_breakers_it_may_have_used,
     .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    env.personas = registry();
    struct wf *wf = load(guarded);
    struct runinfo ri = runinfo_of(wf);
    const struct wf_step *ask = wf_find_step(wf, "ask", 3);
    static const struct {
        enum wire_status st;
        const char *bres;
    } cases[] = {{WIRE_ERROR, "fail"},     {WIRE_TIMEOUT, "fail"},
                 {WIRE_SUCCESS, "ok"},     {WIRE_FATAL, "ok"},
                 {WIRE_CANCELLED, "none"}, {WIRE_INVALID, "none"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wire_result res = {.status = cases[i].st};
        struct plan p;
        plan_init(&p);
        cr_assert_eq(
            plan_finish(&env, &ri, ask, 1, "5-0", &res, NULL, &p, NULL), 0);
        json_t *t = plan_get(&p, 0);
        cr_assert_str_eq(json_string_value(json_object_get(t, "bres")),
                         cases[i].bres, "status %d", cases[i].st);
        expect_breaker(&p, json_object_get(t, "brk"), "qa", 4, 30000, 2000);
        expect_breaker(&p, json_object_get(t, "fbrk"), "backup", 2,
                       BREAKER_DEFAULT_WINDOW_MS, BREAKER_DEFAULT_COOLDOWN_MS);
        cr_assert(json_is_true(json_object_get(t, "fb")));
        cr_assert(json_is_true(json_object_get(t, "qt")));
        plan_deinit(&p);
    }
    /* Failed before dispatch (a breaker that fails fast, a bad template):
     * no service was asked. */
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_finish(&env, &ri, ask, 1, "5-0", NULL, "open", &p, NULL),
                 0);
    cr_assert_null(json_object_get(plan_get(&p, 0), "bres"));
    cr_assert_null(json_object_get(plan_get(&p, 0), "brk"));
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
    personas_free((struct personas *)env.personas);
    env.personas = NULL;
}

Test(plan, queue_timeout_fails_only_a_job_still_queued, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    env.personas = registry();
    struct wf *wf = load(guarded);
    struct runinfo ri = runinfo_of(wf);
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_queue_timeout(&env, &ri, wf_find_step(wf, "ask", 3), 1,
                                    "7-0", &p, NULL),
                 0);
    json_t *t = plan_get(&p, 0);
    cr_assert_str_eq(json_string_value(json_object_get(t, "expect")), "queued");
    cr_assert_str_eq(json_string_value(json_object_get(t, "outcome")),
                     "failed");
    cr_assert_str_eq(json_string_value(json_object_get(t, "bres")), "none",
                     "a queue timeout counts nothing on the breaker");
    cr_assert_not_null(strstr(json_string_value(json_object_get(t, "message")),
                              "queue_timeout (5 s)"),
                       "%s", json_string_value(json_object_get(t, "message")));
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
    personas_free((struct personas *)env.personas);
    env.personas = NULL;
}

Test(plan, run_timeout_is_set_at_creation_and_expires_as_a_failure,
     .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load(guarded);
    struct runinfo ri = runinfo_of(wf);
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_create_run(&env, &ri, "1-0", &p, NULL), 0);
    cr_assert_eq(
        json_integer_value(json_object_get(plan_get(&p, 0), "timeout")), 90000);
    cr_assert_eq(plan_expire(&env, &ri, "2-0", &p), 0);
    json_t *t = plan_get(&p, 1);
    cr_assert_str_eq(json_string_value(json_object_get(t, "status")), "failed");
    cr_assert_str_eq(json_string_value(json_object_get(t, "reason")),
                     "the run timed out (timeout: 90 s)");
    cr_assert_str_eq(json_string_value(json_object_get(t, "mark")), "2-0");
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
    struct wf *plain = load(chain);
    ri = runinfo_of(plain);
    plan_init(&p);
    cr_assert_eq(plan_create_run(&env, &ri, "1-0", &p, NULL), 0);
    cr_assert_null(json_object_get(plan_get(&p, 0), "timeout"));
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(plain);
}
