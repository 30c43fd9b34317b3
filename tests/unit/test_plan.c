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

Test(plan, finish_leaves_fields_at_their_defaults_out, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load("steps:\n"
                         "  - {id: a, type: noop}\n"
                         "  - {id: b-1, type: noop, on_failure: continue}\n");
    struct runinfo ri = runinfo_of(wf);
    struct wire_result res = {.status = WIRE_SUCCESS};
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_finish(&env, &ri, wf_find_step(wf, "a", 1), 1, "5-0",
                             &res, NULL, &p, NULL),
                 0);
    cr_assert_eq(plan_finish(&env, &ri, wf_find_step(wf, "b-1", 3), 1, "5-1",
                             &res, NULL, &p, NULL),
                 0);
    json_t *a = plan_get(&p, 0), *b = plan_get(&p, 1);
    /* No dependents, no group, a stem equal to the id, on_failure fail. */
    const char *absent[] = {"deps", "anc", "skey", "on_failure"};
    for (size_t i = 0; i < 4; i++)
        cr_assert_null(json_object_get(a, absent[i]), "%s", absent[i]);
    cr_assert_str_eq(json_string_value(json_object_get(b, "skey")), "b_1");
    cr_assert_str_eq(json_string_value(json_object_get(b, "on_failure")),
                     "continue");
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

/* A parallel group g of `kids` noop children k0..., after `first` (a
 * child listed before them) and before `after` (a top-level step). */
static const char *group_yaml(int kids, const char *first, const char *after)
{
    static char yaml[16384];
    size_t n = (size_t)snprintf(yaml, sizeof(yaml),
                                "steps:\n"
                                "  - id: g\n"
                                "    type: parallel\n"
                                "    steps:\n"
                                "%s",
                                first);
    for (int i = 0; i < kids; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
                              "      - {id: k%d, type: noop}\n", i);
    snprintf(yaml + n, sizeof(yaml) - n, "%s", after);
    return yaml;
}

/* A child of a big group does not render the join's job in advance:
 * only the last child's finish would use it. */
Test(plan, a_big_group_leaves_its_dependents_to_the_ready_mark, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    const char *yaml =
        group_yaml(9, "", "  - {id: join, type: noop, dependencies: [g]}\n");
    struct wf *wf = load(yaml);
    struct runinfo ri = runinfo_of(wf);
    struct wire_result res = {.status = WIRE_SUCCESS};
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_finish(&env, &ri, wf_find_step(wf, "k0", 2), 1, "", &res,
                             NULL, &p, NULL),
                 0);
    json_t *g = json_array_get(json_object_get(plan_get(&p, 0), "anc"), 0);
    json_t *join = json_array_get(json_object_get(g, "deps"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(join, "id")), "join");
    cr_assert_null(json_object_get(join, "job"));
    cr_assert_eq(p.nbodies, 0, "no job body rendered");
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
}

/* The ids of a plan's kids, "k64 k65 ...". */
static void kid_ids(json_t *t, char *out, size_t size)
{
    size_t i, n = 0;
    json_t *kid;
    out[0] = '\0';
    json_array_foreach(json_object_get(t, "kids"), i, kid)
    {
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? " " : "",
                              json_string_value(json_object_get(kid, "id")));
        cr_assert_not_null(json_object_get(kid, "job"), "jobs rendered");
    }
}

/* A parallel group of 150 children (the first, d, with a dependency)
 * opens in parts of PLAN_ACTIVATE_PART: 64, 64, then the last 21 of its
 * 149 roots. A part starts at a position in the list (k64 is at 65). */
Test(plan, a_big_parallel_group_opens_in_parts, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    const char *yaml = group_yaml(
        149, "      - {id: d, type: noop, dependencies: [k0]}\n", "");
    struct wf *wf = load(yaml);
    struct runinfo ri = runinfo_of(wf);
    const struct wf_step *g = wf_find_step(wf, "g", 1);
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_activate(&env, &ri, g, 1, "", 0, &p, NULL), 0);
    cr_assert_eq(plan_activate_more(&env, &ri, g, 1, "m1", 65, &p, NULL), 0);
    cr_assert_eq(plan_activate_more(&env, &ri, g, 1, "m2", 129, &p, NULL), 0);
    char ids[2048];
    json_t *t = plan_get(&p, 0);
    cr_assert_eq(json_integer_value(json_object_get(t, "nkids")), 150);
    cr_assert_eq(json_array_size(json_object_get(t, "kids")), 64);
    kid_ids(t, ids, sizeof(ids));
    cr_assert(strncmp(ids, "k0 k1 k2 ", 9) == 0, "%s", ids);
    cr_assert_eq(json_integer_value(json_object_get(t, "next")), 65);
    cr_assert_null(json_object_get(t, "from"));
    t = plan_get(&p, 1);
    kid_ids(t, ids, sizeof(ids));
    cr_assert_eq(json_array_size(json_object_get(t, "kids")), 64);
    cr_assert(strncmp(ids, "k64 k65 ", 8) == 0, "%s", ids);
    cr_assert_eq(json_integer_value(json_object_get(t, "from")), 65);
    cr_assert_eq(json_integer_value(json_object_get(t, "next")), 129);
    cr_assert_str_eq(json_string_value(json_object_get(t, "mark")), "m1");
    t = plan_get(&p, 2);
    kid_ids(t, ids, sizeof(ids));
    cr_assert_eq(json_array_size(json_object_get(t, "kids")), 21);
    cr_assert(strncmp(ids, "k128 ", 5) == 0 &&
                  strcmp(ids + strlen(ids) - 5, " k148") == 0,
              "%s", ids);
    cr_assert_null(json_object_get(t, "next"), "the last part");
    cr_assert_eq(p.nbodies, 149, "each root's job rendered once");
    /* Only a parallel group (or a run's top level) opens in parts. */
    struct weft_error err = {0};
    cr_assert_eq(plan_activate_more(&env, &ri, wf_find_step(wf, "k0", 2), 1, "",
                                    64, &p, &err),
                 WEFT_EINVAL);
    cr_assert_eq(plan_size(&p), 3);
    /* A part past the end (a forged mark) has no children and no next. */
    cr_assert_eq(
        plan_activate_more(&env, &ri, g, 1, "m3", UINT32_MAX - 8, &p, NULL), 0);
    t = plan_get(&p, 3);
    cr_assert_eq(json_array_size(json_object_get(t, "kids")), 0);
    cr_assert_null(json_object_get(t, "next"));
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

/* ---- people in the loop: park, resolve, retry ---- */

/* The transition a builder appended (the only one in p). */
static json_t *only(struct plan *p)
{
    cr_assert_eq(plan_size(p), 1);
    return plan_get(p, 0);
}

static const char *str_of(json_t *t, const char *k)
{
    const char *v = json_string_value(json_object_get(t, k));
    return v ? v : "(none)";
}

/* The reset list as "id=st/deps[/left=N][/bump] ..." and the ready list
 * as "id ...", in plan order. */
static char *reset_text(json_t *t)
{
    static char out[1024];
    size_t n = 0, i;
    json_t *r;
    out[0] = '\0';
    json_array_foreach(json_object_get(t, "reset"), i, r)
    {
        n += (size_t)snprintf(
            out + n, sizeof(out) - n, "%s%s=%s/%lld", n ? " " : "",
            str_of(r, "id"), str_of(r, "st"),
            (long long)json_integer_value(json_object_get(r, "deps")));
        if (json_object_get(r, "left"))
            n += (size_t)snprintf(
                out + n, sizeof(out) - n, "/left=%lld",
                (long long)json_integer_value(json_object_get(r, "left")));
        if (json_is_true(json_object_get(r, "bump")))
            n += (size_t)snprintf(out + n, sizeof(out) - n, "/bump");
    }
    return out;
}

static char *ready_text(json_t *t)
{
    static char out[512];
    size_t n = 0, i;
    json_t *r;
    out[0] = '\0';
    json_array_foreach(json_object_get(t, "ready"), i, r) n += (size_t)snprintf(
        out + n, sizeof(out) - n, "%s%s", n ? " " : "", str_of(r, "id"));
    return out;
}

/* Plans a retry of wf over the steps hash given as JSON text. */
static json_t *retry_plan(struct plan *p, const struct wf *wf,
                          const char *steps_json, const char *from)
{
    env.keys = &keys;
    env.hmac = &key;
    struct runinfo ri = runinfo_of(wf);
    json_t *steps = json_loads(steps_json, 0, NULL);
    cr_assert_not_null(steps, "bad test snapshot");
    struct plan_retry_req rq = {.from = from,
                                .by = "alice",
                                .comment = "flaky disk",
                                .seq = 0,
                                .mark = "9-0"};
    plan_init(p);
    cr_assert_eq(plan_retry(&env, &ri, steps, "1700", 0, &rq, p), 0);
    json_decref(steps);
    runinfo_done(&ri);
    return only(p);
}

Test(plan, retry_reruns_the_failed_step_and_after_keeping_successes,
     .init = setup)
{
    struct wf *wf = load(chain);
    struct plan p;
    json_t *t = retry_plan(&p, wf,
                           "{\"a\": \"success\", \"a:attempt\": \"1\","
                           " \"b\": \"failed\", \"b:attempt\": \"1\","
                           " \"c\": \"cancelled\"}",
                           NULL);
    cr_assert_str_eq(reset_text(t), "b=pending/0 c=pending/1/bump");
    cr_assert_str_eq(ready_text(t), "b");
    cr_assert_eq(json_integer_value(json_object_get(t, "top")), 2);
    cr_assert_null(json_object_get(t, "refuse"));
    /* What the transition checks and records. */
    cr_assert_str_eq(str_of(t, "finished"), "1700");
    cr_assert_eq(json_integer_value(json_object_get(t, "seen")), 0);
    cr_assert_eq(json_integer_value(json_object_get(t, "seq")), 0);
    cr_assert_str_eq(str_of(t, "by"), "alice");
    cr_assert_str_eq(str_of(t, "comment"), "flaky disk");
    cr_assert_str_eq(str_of(t, "mark"), "9-0");
    cr_assert_str_eq(str_of(t, "from"), "");
    json_t *b = json_array_get(json_object_get(t, "reset"), 0);
    cr_assert_str_eq(str_of(b, "skey"), "b");
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, retry_re_arms_the_workflow_timeout, .init = setup)
{
    struct wf *wf = load("timeout: 90\nsteps: [{id: a, type: noop}]\n");
    struct plan p;
    json_t *t = retry_plan(&p, wf, "{\"a\": \"cancelled\"}", NULL);
    cr_assert_eq(json_integer_value(json_object_get(t, "timeout")), 90000);
    plan_deinit(&p);
    wf_free(wf);
    wf = load(chain);
    t = retry_plan(&p, wf, "{\"a\": \"failed\"}", NULL);
    cr_assert_null(json_object_get(t, "timeout"), "no timeout, no timer");
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, retry_from_a_step_reruns_it_and_its_transitive_dependents,
     .init = setup)
{
    struct wf *wf = load("steps:\n"
                         "  - {id: a, type: noop}\n"
                         "  - {id: b-1, type: noop, dependencies: [a]}\n"
                         "  - {id: c, type: noop, dependencies: [b-1]}\n"
                         "  - {id: side, type: noop, dependencies: [a]}\n");
    struct plan p;
    json_t *t = retry_plan(&p, wf,
                           "{\"a\": \"success\", \"b-1\": \"success\","
                           " \"c\": \"success\", \"side\": \"success\"}",
                           "b-1");
    cr_assert_str_eq(reset_text(t), "b-1=pending/0 c=pending/1");
    cr_assert_str_eq(ready_text(t), "b-1");
    cr_assert_eq(json_integer_value(json_object_get(t, "top")), 2);
    cr_assert_str_eq(str_of(t, "from"), "b-1");
    json_t *b = json_array_get(json_object_get(t, "reset"), 0);
    cr_assert_str_eq(str_of(b, "skey"), "b_1", "state stem: - as _");
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, retry_refuses_an_unknown_step_and_a_run_with_nothing_to_retry,
     .init = setup)
{
    struct wf *wf = load(chain);
    struct plan p;
    json_t *t = retry_plan(&p, wf, "{\"a\": \"success\"}", "nope");
    cr_assert_str_eq(str_of(t, "refuse"), "the run has no step 'nope'");
    cr_assert_null(json_object_get(t, "reset"));
    plan_deinit(&p);
    t = retry_plan(&p, wf,
                   "{\"a\": \"success\", \"b\": \"success\","
                   " \"c\": \"skipped\"}",
                   NULL);
    cr_assert(strstr(str_of(t, "refuse"), "nothing to retry") != NULL, "%s",
              str_of(t, "refuse"));
    plan_deinit(&p);
    wf_free(wf);
}

static const char *grouped = "steps:\n"
                             "  - {id: setup, type: noop}\n"
                             "  - id: g\n"
                             "    type: parallel\n"
                             "    dependencies: [setup]\n"
                             "    steps:\n"
                             "      - {id: x, type: noop}\n"
                             "      - {id: y, type: noop}\n"
                             "      - {id: z, type: noop, dependencies: [y]}\n"
                             "  - {id: after, type: noop, dependencies: [g]}\n";

Test(plan, retry_reopens_a_failed_group_around_its_failed_steps, .init = setup)
{
    struct wf *wf = load(grouped);
    struct plan p;
    json_t *t = retry_plan(&p, wf,
                           "{\"setup\": \"success\", \"g\": \"failed\","
                           " \"g:started\": \"5\", \"g:branch\": \"\","
                           " \"x\": \"success\", \"y\": \"failed\","
                           " \"z\": \"cancelled\", \"after\": \"cancelled\"}",
                           NULL);
    /* g runs again around y and z (x keeps its result), after waits. */
    cr_assert_str_eq(reset_text(t), "g=running/0/left=2 y=pending/0 "
                                    "z=pending/1/bump after=pending/1/bump");
    cr_assert_str_eq(ready_text(t), "y");
    cr_assert_eq(json_integer_value(json_object_get(t, "top")), 2);
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, retry_from_inside_a_group_that_succeeded_reopens_it, .init = setup)
{
    struct wf *wf = load(grouped);
    struct plan p;
    json_t *t = retry_plan(&p, wf,
                           "{\"setup\": \"success\", \"g\": \"success\","
                           " \"g:started\": \"5\", \"g:branch\": \"\","
                           " \"x\": \"success\", \"y\": \"success\","
                           " \"z\": \"success\", \"after\": \"success\"}",
                           "y");
    cr_assert_str_eq(reset_text(t), "g=running/0/left=2 y=pending/0 "
                                    "z=pending/1 after=pending/1");
    cr_assert_str_eq(ready_text(t), "y");
    cr_assert_eq(json_integer_value(json_object_get(t, "top")), 2);
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, retry_from_a_group_reruns_all_of_it, .init = setup)
{
    struct wf *wf = load(grouped);
    struct plan p;
    json_t *t = retry_plan(&p, wf,
                           "{\"setup\": \"success\", \"g\": \"success\","
                           " \"g:started\": \"5\", \"x\": \"success\","
                           " \"y\": \"success\", \"z\": \"success\","
                           " \"after\": \"success\"}",
                           "g");
    cr_assert_str_eq(reset_text(t), "g=pending/0 x=pending/0 y=pending/0 "
                                    "z=pending/1 after=pending/1");
    cr_assert_str_eq(ready_text(t), "g", "the group opens as at first");
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, retry_runs_a_group_that_never_opened_from_the_start, .init = setup)
{
    struct wf *wf = load(grouped);
    struct plan p;
    /* Cancelled before g opened: no :started, no :branch. */
    json_t *t = retry_plan(&p, wf,
                           "{\"setup\": \"success\", \"g\": \"cancelled\","
                           " \"x\": \"cancelled\", \"y\": \"cancelled\","
                           " \"z\": \"cancelled\", \"after\": \"cancelled\"}",
                           NULL);
    cr_assert_str_eq(reset_text(t),
                     "g=pending/0 x=pending/0/bump y=pending/0/bump "
                     "z=pending/1/bump after=pending/1/bump");
    cr_assert_str_eq(ready_text(t), "g");
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, retry_runs_a_reopened_group_with_nothing_left_whole, .init = setup)
{
    struct wf *wf = load(grouped);
    struct plan p;
    /* A group failed though its steps all succeeded (say, a step with
     * on_failure: continue was retried by hand): re-opening it around
     * nothing would never finish, so it runs again whole. */
    json_t *t = retry_plan(&p, wf,
                           "{\"setup\": \"success\", \"g\": \"failed\","
                           " \"g:started\": \"5\", \"x\": \"success\","
                           " \"y\": \"success\", \"z\": \"success\","
                           " \"after\": \"cancelled\"}",
                           NULL);
    cr_assert_str_eq(reset_text(t), "g=pending/0 x=pending/0 y=pending/0 "
                                    "z=pending/1 after=pending/1/bump");
    plan_deinit(&p);
    wf_free(wf);
}

static const char *gate = "steps:\n"
                          "  - id: c\n"
                          "    type: conditional\n"
                          "    condition: \"task.type === 'feature'\"\n"
                          "    then_steps:\n"
                          "      - {id: t1, type: noop}\n"
                          "    else_steps:\n"
                          "      - {id: e1, type: noop}\n"
                          "  - {id: after, type: noop, dependencies: [c]}\n"
                          "  - {id: last, type: noop, dependencies: [after]}\n";

Test(plan, retry_from_a_branch_not_taken_reevaluates_the_conditional,
     .init = setup)
{
    struct wf *wf = load(gate);
    struct plan p;
    json_t *t = retry_plan(&p, wf,
                           "{\"c\": \"success\", \"c:started\": \"5\","
                           " \"c:branch\": \"then\", \"t1\": \"success\","
                           " \"e1\": \"skipped\", \"after\": \"success\","
                           " \"last\": \"success\"}",
                           "e1");
    cr_assert_str_eq(reset_text(t), "c=pending/0 t1=pending/0 e1=pending/0 "
                                    "after=pending/1 last=pending/1");
    cr_assert_str_eq(ready_text(t), "c");
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, retry_from_the_taken_branch_reopens_the_conditional, .init = setup)
{
    struct wf *wf = load(gate);
    struct plan p;
    /* An old run without :branch: the taken branch is the one whose
     * steps were not skipped. */
    json_t *t = retry_plan(&p, wf,
                           "{\"c\": \"success\", \"c:started\": \"5\","
                           " \"t1\": \"skipped\", \"e1\": \"success\","
                           " \"after\": \"success\", \"last\": \"failed\"}",
                           "e1");
    cr_assert_str_eq(reset_text(t), "c=running/0/left=1 e1=pending/0 "
                                    "after=pending/1 last=pending/1");
    cr_assert_str_eq(ready_text(t), "e1");
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, retry_keeps_a_succeeded_any_group_and_its_cancelled_losers,
     .init = setup)
{
    struct wf *wf = load("steps:\n"
                         "  - id: race\n"
                         "    type: parallel\n"
                         "    wait_for: any\n"
                         "    steps:\n"
                         "      - {id: fast, type: noop}\n"
                         "      - {id: slow, type: noop}\n"
                         "  - {id: ship, type: noop, dependencies: [race]}\n");
    struct plan p;
    json_t *t = retry_plan(&p, wf,
                           "{\"race\": \"success\", \"race:started\": \"5\","
                           " \"fast\": \"success\", \"slow\": \"cancelled\","
                           " \"ship\": \"failed\"}",
                           NULL);
    cr_assert_str_eq(reset_text(t), "ship=pending/0");
    cr_assert_str_eq(ready_text(t), "ship");
    cr_assert_eq(json_integer_value(json_object_get(t, "top")), 1);
    plan_deinit(&p);
    wf_free(wf);
}

static const char *gated = "steps:\n"
                           "  - id: build\n"
                           "    type: noop\n"
                           "    on_failure: escalate\n"
                           "  - id: ok\n"
                           "    type: approval\n"
                           "    dependencies: [build]\n"
                           "    approvers: [alice, \"{{task.slug}}\"]\n"
                           "    message: \"Ship {{task.type}}?\"\n"
                           "    timeout: 90\n"
                           "  - id: ship\n"
                           "    type: noop\n"
                           "    dependencies: [ok]\n";

Test(plan, approval_steps_are_never_prerendered_jobs, .init = setup)
{
    struct wf *wf = load(gated);
    cr_assert(!plan_step_is_static(wf_find_step(wf, "ok", 2)));
    cr_assert(plan_step_is_static(wf_find_step(wf, "ship", 4)));
    struct runinfo ri = runinfo_of(wf);
    struct plan p;
    plan_init(&p);
    env.keys = &keys;
    env.hmac = &key;
    const struct wf_step *b = wf_find_step(wf, "build", 5);
    struct wire_result res = {.status = WIRE_SUCCESS};
    cr_assert_eq(plan_finish(&env, &ri, b, 1, "5-0", &res, NULL, &p, NULL), 0);
    json_t *deps = json_object_get(only(&p), "deps");
    cr_assert_null(json_object_get(json_array_get(deps, 0), "job"));
    cr_assert_eq(p.nbodies, 0);
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
}

Test(plan, park_renders_message_approvers_and_the_deadline, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load(gated);
    struct runinfo ri = runinfo_of(wf);
    json_t *scope = plan_scope(&ri, NULL, NULL);
    struct plan p;
    plan_init(&p);
    struct weft_error err;
    cr_assert_eq(plan_park(&env, &ri, wf_find_step(wf, "ok", 2), 1, "7-0",
                           scope, &p, &err),
                 0, "%s", err.msg);
    json_t *t = only(&p);
    cr_assert_str_eq(str_of(t, "step"), "ok");
    cr_assert_str_eq(str_of(t, "mark"), "7-0");
    cr_assert_str_eq(str_of(t, "message"), "Ship feature?");
    cr_assert_str_eq(str_of(t, "approvers"), "[\"alice\",\"x\"]");
    cr_assert_eq(json_integer_value(json_object_get(t, "attempt")), 1);
    cr_assert_eq(json_integer_value(json_object_get(t, "deadline")),
                 env.now_ms + 90 * 1000);
    cr_assert_eq(p.nbodies, 0, "no job");
    plan_deinit(&p);
    json_decref(scope);
    runinfo_done(&ri);
    wf_free(wf);
}

Test(plan, park_without_timeout_waits_for_ever, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load("steps: [{id: ok, type: approval}]\n");
    struct runinfo ri = runinfo_of(wf);
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_park(&env, &ri, wf_find_step(wf, "ok", 2), 1, "7-0", NULL,
                           &p, NULL),
                 0);
    json_t *t = only(&p);
    cr_assert_eq(json_integer_value(json_object_get(t, "deadline")), 0);
    cr_assert_null(json_object_get(t, "message"));
    cr_assert_null(json_object_get(t, "approvers"));
    plan_deinit(&p);
    runinfo_done(&ri);
    wf_free(wf);
}

Test(plan, park_rejects_what_does_not_render_to_its_type, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf =
        load("steps:\n"
             "  - {id: t, type: approval, timeout: \"{{task.slug}}\"}\n"
             "  - {id: a, type: approval, approvers: [\"{{task.n}}\"]}\n");
    struct runinfo ri = runinfo_of(wf);
    json_object_set_new(ri.task, "n", json_integer(3));
    json_t *scope = plan_scope(&ri, NULL, NULL);
    struct plan p;
    plan_init(&p);
    struct weft_error err;
    weft_error_clear(&err);
    cr_assert_eq(plan_park(&env, &ri, wf_find_step(wf, "t", 1), 1, "7-0", scope,
                           &p, &err),
                 WEFT_ETYPE);
    cr_assert(strstr(err.msg, "timeout") != NULL, "%s", err.msg);
    cr_assert_eq(plan_park(&env, &ri, wf_find_step(wf, "a", 1), 1, "7-0", scope,
                           &p, &err),
                 WEFT_ETYPE);
    cr_assert(strstr(err.msg, "approver 1") != NULL, "%s", err.msg);
    cr_assert_eq(plan_size(&p), 0, "a failed builder leaves nothing");
    plan_deinit(&p);
    json_decref(scope);
    runinfo_done(&ri);
    wf_free(wf);
}

/* Plans a resolve/approve/timeout of step in wf. */
static json_t *resolve_plan(struct plan *p, const struct wf *wf,
                            const char *step, const struct plan_control *c)
{
    env.keys = &keys;
    env.hmac = &key;
    struct runinfo ri = runinfo_of(wf);
    plan_init(p);
    cr_assert_eq(plan_resolve(&env, &ri, step, c, p, NULL), 0);
    runinfo_done(&ri);
    return only(p);
}

Test(plan, resolve_skip_releases_dependents_and_sets_state_first, .init = setup)
{
    struct wf *wf = load(gated);
    struct plan_control c = {.kind = PLAN_CONTROL_RESOLVE,
                             .action = "skip",
                             .by = "bob",
                             .set = "{\"fixed\": true, \"note\": \"by hand\"}",
                             .attempt = 2,
                             .mark = "8-0"};
    struct plan p;
    json_t *t = resolve_plan(&p, wf, "build", &c);
    cr_assert_null(json_object_get(t, "refuse"));
    cr_assert_str_eq(str_of(t, "event"), "resolve");
    cr_assert_str_eq(str_of(t, "action"), "skip");
    cr_assert_str_eq(str_of(t, "outcome"), "skipped");
    cr_assert_str_eq(str_of(t, "by"), "bob");
    cr_assert_eq(json_integer_value(json_object_get(t, "attempt")), 2);
    json_t *set = json_object_get(t, "set");
    cr_assert_str_eq(str_of(set, "fixed"), "true", "values as JSON text");
    cr_assert_str_eq(str_of(set, "note"), "\"by hand\"");
    json_t *deps = json_object_get(t, "deps");
    cr_assert_eq(json_array_size(deps), 1);
    cr_assert_str_eq(str_of(json_array_get(deps, 0), "id"), "ok");
    cr_assert_null(json_object_get(t, "result_json"));
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, resolve_retry_only_makes_a_new_attempt, .init = setup)
{
    struct wf *wf = load(gated);
    struct plan_control c = {.kind = PLAN_CONTROL_RESOLVE, .action = "retry"};
    struct plan p;
    json_t *t = resolve_plan(&p, wf, "build", &c);
    cr_assert_str_eq(str_of(t, "outcome"), "pending");
    cr_assert_null(json_object_get(t, "deps"));
    cr_assert_eq(json_integer_value(json_object_get(t, "attempt")), 0);
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, resolve_fail_fails_the_run_and_stops_the_group, .init = setup)
{
    struct wf *wf = load("steps:\n"
                         "  - id: g\n"
                         "    type: parallel\n"
                         "    steps:\n"
                         "      - {id: a, type: noop, on_failure: escalate}\n"
                         "      - {id: b, type: noop}\n");
    struct plan_control c = {.kind = PLAN_CONTROL_RESOLVE,
                             .action = "fail",
                             .by = "carol",
                             .comment = "cannot be fixed"};
    struct plan p;
    json_t *t = resolve_plan(&p, wf, "a", &c);
    cr_assert_str_eq(str_of(t, "outcome"), "failed");
    cr_assert_str_eq(str_of(t, "message"), "failed by carol: cannot be fixed");
    cr_assert_str_eq(str_of(t, "run_error"),
                     "step 'a' failed: failed by carol: cannot be fixed");
    json_t *g = json_array_get(json_object_get(t, "anc"), 0);
    cr_assert_str_eq(str_of(g, "id"), "g");
    cr_assert_eq(json_array_size(json_object_get(g, "desc")), 2,
                 "the group's other steps are stopped");
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, approve_records_who_approved_as_the_result, .init = setup)
{
    struct wf *wf = load(gated);
    struct plan_control c = {
        .kind = PLAN_CONTROL_APPROVE, .by = "alice", .comment = "looks good"};
    struct plan p;
    json_t *t = resolve_plan(&p, wf, "ok", &c);
    cr_assert_str_eq(str_of(t, "action"), "approve");
    cr_assert_str_eq(str_of(t, "outcome"), "success");
    json_t *res = json_loads(str_of(t, "result_json"), 0, NULL);
    cr_assert(json_is_true(json_object_get(res, "approved")));
    cr_assert_str_eq(str_of(res, "by"), "alice");
    cr_assert_str_eq(str_of(res, "comment"), "looks good");
    json_decref(res);
    cr_assert_str_eq(
        str_of(json_array_get(json_object_get(t, "deps"), 0), "id"), "ship");
    plan_deinit(&p);
    wf_free(wf);
}

Test(plan, reject_and_timeout_fail_the_approval, .init = setup)
{
    struct wf *wf = load(gated);
    struct plan_control c = {.kind = PLAN_CONTROL_APPROVE,
                             .action = "reject",
                             .by = "alice",
                             .comment = "not now"};
    struct plan p;
    json_t *t = resolve_plan(&p, wf, "ok", &c);
    cr_assert_str_eq(str_of(t, "outcome"), "failed");
    cr_assert_str_eq(str_of(t, "message"), "rejected by alice: not now");
    json_t *res = json_loads(str_of(t, "result_json"), 0, NULL);
    cr_assert(json_is_false(json_object_get(res, "approved")));
    json_decref(res);
    plan_deinit(&p);
    struct plan_control to = {.kind = PLAN_CONTROL_TIMEOUT, .attempt = 1};
    t = resolve_plan(&p, wf, "ok", &to);
    cr_assert_str_eq(str_of(t, "event"), "timeout");
    cr_assert_str_eq(str_of(t, "action"), "timeout");
    cr_assert_str_eq(str_of(t, "outcome"), "failed");
    cr_assert_str_eq(str_of(t, "message"), "no approval before the deadline");
    cr_assert_eq(json_integer_value(json_object_get(t, "attempt")), 1);
    plan_deinit(&p);
    wf_free(wf);
}

/* The refusal a control event gets, or "(none)". */
static const char *refusal(const struct wf *wf, const char *step,
                           struct plan_control c)
{
    static char out[512];
    struct plan p;
    json_t *t = resolve_plan(&p, wf, step, &c);
    snprintf(out, sizeof(out), "%s", str_of(t, "refuse"));
    if (json_object_get(t, "refuse"))
        cr_assert_null(json_object_get(t, "outcome"), "a refusal does nothing");
    plan_deinit(&p);
    return out;
}

Test(plan, control_events_that_cannot_apply_are_refused, .init = setup)
{
    struct wf *wf = load(gated);
    struct plan_control r = {.kind = PLAN_CONTROL_RESOLVE, .action = "skip"};
    struct plan_control a = {.kind = PLAN_CONTROL_APPROVE};
    cr_assert_str_eq(refusal(wf, "nope", r), "the run has no step 'nope'");
    r.action = "redo";
    cr_assert_str_eq(refusal(wf, "build", r),
                     "a resolve needs action retry, skip or fail, got 'redo'");
    r.action = NULL;
    cr_assert_str_eq(refusal(wf, "build", r),
                     "a resolve needs action retry, skip or fail, got ''");
    cr_assert_str_eq(refusal(wf, "build", a),
                     "step 'build' is a noop step, not an approval; use "
                     "resolve");
    a.action = "maybe";
    cr_assert_str_eq(refusal(wf, "ok", a),
                     "an approve needs action approve or reject, got 'maybe'");
    r.action = "skip";
    r.set = "[1]";
    cr_assert_str_eq(refusal(wf, "build", r),
                     "'set' must be a JSON object of state keys");
    r.set = "{\"bad key\": 1}";
    cr_assert(strstr(refusal(wf, "build", r), "'set' key 'bad key'") != NULL);
    r.set = NULL;
    r.by = "\xff\xfe";
    cr_assert(strstr(refusal(wf, "build", r), "UTF-8") != NULL);
    wf_free(wf);
}

Test(plan, set_takes_keys_up_to_the_limit, .init = setup)
{
    char text[PLAN_SET_KEYS_MAX * 16 + 32];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof(text) - n, "{");
    for (int i = 0; i < PLAN_SET_KEYS_MAX; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"k%d\": %d",
                              i ? ", " : "", i, i);
    snprintf(text + n, sizeof(text) - n, "}");
    json_t *set = NULL;
    char why[256];
    cr_assert_eq(plan_check_set(text, &set, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(json_object_size(set), PLAN_SET_KEYS_MAX);
    json_decref(set);
    snprintf(text + n, sizeof(text) - n, ", \"one_more\": 1}");
    cr_assert_eq(plan_check_set(text, &set, why, sizeof(why)), WEFT_ELIMIT);
    cr_assert_null(set);
    cr_assert(strstr(why, "limit") != NULL, "%s", why);
}

/* ---- rollback ---- */

static const char *gitflow = "name: g\n"
                             "rollback: true\n"
                             "steps:\n"
                             "  - id: br\n"
                             "    type: git-operation\n"
                             "    operation: branch\n"
                             "    branch: x\n"
                             "    queue: repo-a\n"
                             "    retries: 2\n";

Test(plan, rollback_flag_rides_on_every_transition_of_its_runs, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load(gitflow), *plain = load(chain);
    struct runinfo ri = runinfo_of(wf), rp = runinfo_of(plain);
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_cancel(&env, &ri, "1-0", "x", &p), 0);
    cr_assert_eq(plan_cancel(&env, &rp, "1-1", "x", &p), 0);
    cr_assert(json_is_true(json_object_get(plan_get(&p, 0), "rollback")));
    cr_assert_null(json_object_get(plan_get(&p, 1), "rollback"));
    plan_deinit(&p);
    runinfo_done(&ri);
    runinfo_done(&rp);
    wf_free(wf);
    wf_free(plain);
}

Test(plan, a_retried_git_attempt_still_reports_what_it_changed, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load(gitflow);
    struct runinfo ri = runinfo_of(wf);
    json_t *result = json_pack("{s:s, s:{s:s, s:b}}", "operation", "branch",
                               "previous", "ref", "x", "created", 1);
    struct wire_result res = {.status = WIRE_ERROR, .result = result};
    struct plan p;
    plan_init(&p);
    const struct wf_step *br = wf_find_step(wf, "br", 2);
    cr_assert_eq(plan_finish(&env, &ri, br, 1, "5-0", &res, NULL, &p, NULL), 0);
    json_t *t = plan_get(&p, 0);
    cr_assert_gt(json_integer_value(json_object_get(t, "retry_at")), 0);
    cr_assert(json_equal(json_object_get(t, "git"), result));
    plan_deinit(&p);
    json_decref(result);
    runinfo_done(&ri);
    wf_free(wf);
}

Test(plan, rollback_job_goes_to_the_first_changed_steps_queue, .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load(gitflow);
    struct runinfo ri = runinfo_of(wf);
    json_t *changes =
        json_pack("[{s:s, s:s, s:b}]", "step", "br", "ref", "x", "created", 1);
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_rollback_dispatch(&env, &ri, 1, "7-0", changes, &p, NULL),
                 0);
    json_t *t = plan_get(&p, 0);
    cr_assert_str_eq(json_string_value(json_object_get(t, "phase")),
                     "dispatch");
    cr_assert_str_eq(json_string_value(json_object_get(t, "step")),
                     PLAN_ROLLBACK_STEP);
    json_t *job = json_object_get(t, "job");
    uint32_t q = (uint32_t)json_integer_value(json_object_get(job, "q"));
    cr_assert_str_eq(p.keys[q - 1], "weft:q:repo-a");
    /* The signed body: a git job, operation rollback, the changes. */
    struct wire_job j;
    cr_assert_eq(wire_job_decode(p.bodies[0], p.blens[0], &j, NULL), 0);
    cr_assert_str_eq(j.step, PLAN_ROLLBACK_STEP);
    cr_assert_str_eq(j.type, "git-operation");
    cr_assert_eq(j.timeout_ms, (uint64_t)PLAN_ROLLBACK_TIMEOUT_S * 1000);
    cr_assert_str_eq(json_string_value(json_object_get(j.git, "operation")),
                     "rollback");
    cr_assert(json_equal(json_object_get(j.git, "changes"), changes));
    cr_assert_eq(strncmp(j.trace, "00-0af7651916cd43dd8448eb211c80319c-", 36),
                 0);
    wire_job_deinit(&j);
    /* Nothing to roll back is refused. */
    json_t *none = json_array();
    struct weft_error err;
    cr_assert_eq(plan_rollback_dispatch(&env, &ri, 1, "7-1", none, &p, &err),
                 WEFT_EINVAL);
    cr_assert_eq(plan_size(&p), 1, "a failed builder adds nothing");
    json_decref(none);
    plan_deinit(&p);
    json_decref(changes);
    runinfo_done(&ri);
    wf_free(wf);
}

Test(plan, rollback_result_summarises_and_retries_only_passing_failures,
     .init = setup)
{
    env.keys = &keys;
    env.hmac = &key;
    struct wf *wf = load(gitflow);
    struct runinfo ri = runinfo_of(wf);
    json_t *result =
        json_pack("{s:[{s:s, s:n, s:s, s:n, s:n}, {s:s, s:s, s:s, s:s, s:s}, "
                  "{s:s, s:n, s:s, s:n, s:n}]}",
                  "restored", "ref", "feature", "remote", "action", "deleted",
                  "from", "to", "ref", "main", "remote", "origin", "action",
                  "reset", "from", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                  "to", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ref", "x",
                  "remote", "action", "absent", "from", "to");
    struct wire_result ok = {.status = WIRE_SUCCESS, .result = result};
    struct wire_result down = {.status = WIRE_ERROR};
    struct wire_result bad = {.status = WIRE_FATAL};
    struct plan p;
    plan_init(&p);
    cr_assert_eq(plan_rollback_result(&env, &ri, 1, "8-0", &ok, &p), 0);
    cr_assert_eq(plan_rollback_result(&env, &ri, 1, "8-1", &down, &p), 0);
    cr_assert_eq(plan_rollback_result(&env, &ri, 1, "8-2", &bad, &p), 0);
    json_t *t = plan_get(&p, 0);
    cr_assert_str_eq(json_string_value(json_object_get(t, "outcome")),
                     "success");
    cr_assert_str_eq(json_string_value(json_object_get(t, "restored")),
                     "deleted feature, reset origin/main to aaaaaaaa");
    cr_assert_null(json_object_get(t, "retry_at"));
    t = plan_get(&p, 1);
    cr_assert_str_eq(json_string_value(json_object_get(t, "outcome")),
                     "failed");
    cr_assert_eq(json_integer_value(json_object_get(t, "retry_at")),
                 env.now_ms + 5000);
    cr_assert_eq(json_integer_value(json_object_get(t, "attempts")),
                 PLAN_ROLLBACK_ATTEMPTS);
    cr_assert_null(json_object_get(plan_get(&p, 2), "retry_at"));
    plan_deinit(&p);
    json_decref(result);
    runinfo_done(&ri);
    wf_free(wf);
}
