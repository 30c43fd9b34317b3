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
