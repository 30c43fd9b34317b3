/* test_control.c - people in the loop, end to end: `weft retry` (of a
 * failed run, of a cancelled one, from a step), `weft resolve` of an
 * escalated step (--retry, --skip, --fail, with --set), approval steps
 * (`weft approve`, --reject, and the timeout), duplicated control events,
 * and the CLI's refusals.
 *
 * Each test starts its own redis-server, a real weft-scheduler and
 * weft-worker, submits runs of noop steps (params fail_until, delay_ms:
 * worker/handler_noop.c) and drives them with the real `weft` binary.
 * Waiting is done on the run's history stream (blocking XREAD), never by
 * sleeping.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "alloc.h"
#include "procs.h"
#include "rconn.h"
#include "redis_fixture.h"
#include "redisurl.h"
#include "runs.h"

#define KEY       "test-signing-key-0123456789"
#define MAX_PROCS 4
/* Generous: a slow machine under sanitizers still finishes in time. */
#define WAIT_S 60

static struct redis_fixture fx;
static redisContext *rc;
static pid_t procs[MAX_PROCS];
static int nprocs;
static char env_url[160], env_key[64] = "WEFT_HMAC_KEY=" KEY;
static char env_user[] = "USER=tester";

static void start_proc(const char *bin, const char *arg)
{
    char path[512], log[256];
    const char *argv[] = {procs_binary(bin, path, sizeof(path)), arg, NULL};
    snprintf(log, sizeof(log), "%s/proc-%d.log", fx.dir, nprocs);
    const char *env[] = {env_url, env_key, NULL};
    pid_t pid = procs_spawn(argv, env, log);
    cr_assert_gt(pid, 0);
    procs[nprocs++] = pid;
}

static void start_system(void)
{
    weft_alloc_init();
    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
    snprintf(env_url, sizeof(env_url), "REDIS_URL=%s", fx.url);
    struct redis_url u;
    cr_assert_eq(redis_url_parse(fx.url, &u, NULL), 0);
    rc = rconn_connect_sync(&u, 2000, NULL);
    redis_url_deinit(&u);
    cr_assert_not_null(rc);
    start_proc("scheduler/weft-scheduler", "--name=sched-0");
    start_proc("worker/weft-worker", "--queues=default");
}

static void stop_system(void)
{
    for (int i = 0; i < nprocs; i++) {
        int st = procs_stop(procs[i], SIGTERM, 5000);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "process %d did not exit cleanly (status %d)", i, st);
    }
    nprocs = 0;
    if (rc)
        redisFree(rc);
    rc = NULL;
    redis_fixture_stop(&fx);
}

TestSuite(control, .init = start_system, .fini = stop_system, .timeout = 180);

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "redis command failed: %s", rc->errstr);
    return r;
}

/* ---- the weft binary ------------------------------------------------- */

struct res {
    int rc;
    char *out, *err;
};

static struct res weft(const char *const *args)
{
    char bin[512];
    const char *argv[32] = {procs_binary("cli/weft", bin, sizeof(bin))};
    size_t n = 1;
    for (size_t i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    const char *env[] = {env_url, env_user, NULL};
    struct res r = {0};
    r.rc = procs_run(argv, env, &r.out, &r.err);
    cr_assert_not_null(r.out);
    cr_assert_not_null(r.err);
    return r;
}

#define WEFT(...) weft((const char *const[]){__VA_ARGS__, NULL})

static void res_free(struct res *r)
{
    free(r->out);
    free(r->err);
}

/* Runs weft and expects exit 0. */
#define WEFT_OK(...)                                                           \
    do {                                                                       \
        struct res r_ = WEFT(__VA_ARGS__);                                     \
        cr_assert_eq(r_.rc, 0, "weft exited %d: %s%s", r_.rc, r_.out, r_.err); \
        res_free(&r_);                                                         \
    } while (0)

/* ---- following a run's history --------------------------------------- */

static const char *field_of(const redisReply *f, const char *name)
{
    for (size_t k = 0; k + 1 < f->elements; k += 2)
        if (f->element[k]->type == REDIS_REPLY_STRING &&
            strcmp(f->element[k]->str, name) == 0 &&
            f->element[k + 1]->type == REDIS_REPLY_STRING)
            return f->element[k + 1]->str;
    return NULL;
}

static bool is(const char *a, const char *b)
{
    return b == NULL || (a != NULL && strcmp(a, b) == 0);
}

/* Follows run's history from the entry after `from` ("0": the start)
 * until an entry with this type, step and status (NULL: any) appears;
 * writes its id into from (64 bytes) and returns true, or false after
 * WAIT_S seconds. When waiting for a run entry, one with another final
 * status ends the wait (false) unless any_end. */
static bool hist_follow(const char *run, char *from, const char *type,
                        const char *step, const char *status, bool any_end)
{
    time_t end = time(NULL) + WAIT_S;
    while (time(NULL) < end) {
        redisReply *r = cmd("XREAD COUNT 100 BLOCK 1000 STREAMS "
                            "weft:run:%s:history %s",
                            run, from);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 1) {
            freeReplyObject(r);
            continue;
        }
        redisReply *es = r->element[0]->element[1];
        for (size_t i = 0; i < es->elements; i++) {
            redisReply *e = es->element[i];
            snprintf(from, 64, "%s", e->element[0]->str);
            const char *t = field_of(e->element[1], "type");
            const char *s = field_of(e->element[1], "step");
            const char *st = field_of(e->element[1], "status");
            if (is(t, type) && is(s, step) && is(st, status)) {
                freeReplyObject(r);
                return true;
            }
            if (!any_end && is(t, "run") && type != NULL &&
                strcmp(type, "run") == 0 && st != NULL &&
                (strcmp(st, "success") == 0 || strcmp(st, "failed") == 0 ||
                 strcmp(st, "cancelled") == 0)) {
                fprintf(stderr, "run %s ended %s while waiting for %s\n", run,
                        st, status ? status : "?");
                freeReplyObject(r);
                return false;
            }
        }
        freeReplyObject(r);
    }
    return false;
}

static bool hist_wait(const char *run, char *from, const char *type,
                      const char *step, const char *status)
{
    return hist_follow(run, from, type, step, status, false);
}

/* Waits for the next run entry with status want after `from`. */
static void wait_run(const char *run, char *from, const char *want)
{
    cr_assert(hist_wait(run, from, "run", "", want), "run %s did not become %s",
              run, want);
}

/* Waits for step's next entry with status want after `from`. */
static void wait_step(const char *run, char *from, const char *step,
                      const char *want)
{
    cr_assert(hist_wait(run, from, "step", step, want),
              "step %s of run %s did not become %s", step, run, want);
}

/* Entries of run's history with this type, step and status (NULL: any)
 * and, when fk is given, field fk equal to fv. */
static int hist_count(const char *run, const char *type, const char *step,
                      const char *status, const char *fk, const char *fv)
{
    redisReply *r = cmd("XRANGE weft:run:%s:history - +", run);
    int n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        if (is(field_of(f, "type"), type) && is(field_of(f, "step"), step) &&
            is(field_of(f, "status"), status) &&
            (fk == NULL || is(field_of(f, fk), fv)))
            n++;
    }
    freeReplyObject(r);
    return n;
}

static const char *hget(const char *key, const char *field)
{
    static char buf[4][1024];
    static int slot;
    redisReply *r = cmd("HGET %s %s", key, field);
    char *out = buf[slot++ % 4];
    snprintf(out, 1024, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return out;
}

static const char *step_of(const char *run, const char *field)
{
    char key[256];
    snprintf(key, sizeof(key), "weft:run:%s:steps", run);
    return hget(key, field);
}

static const char *state_of(const char *run, const char *field)
{
    char key[256];
    snprintf(key, sizeof(key), "weft:run:%s:state", run);
    return hget(key, field);
}

static const char *run_of(const char *run, const char *field)
{
    char key[256];
    snprintf(key, sizeof(key), "weft:run:%s", run);
    return hget(key, field);
}

static void submit(const char *yaml, const char *run)
{
    cr_assert_eq(runs_submit(rc, yaml, "{}", run), 0);
}

/* ---- retry -------------------------------------------------------------- */

static const char *flaky = "name: flaky\n"
                           "steps:\n"
                           "  - {id: a, type: noop}\n"
                           "  - {id: side, type: noop}\n"
                           "  - id: b\n"
                           "    type: noop\n"
                           "    dependencies: [a, side]\n"
                           "    params: {fail_until: 2, result: {n: 2}}\n"
                           "  - {id: c, type: noop, dependencies: [b]}\n";

Test(control, retry_of_a_failed_run_reruns_only_the_failed_part)
{
    submit(flaky, "f1");
    char at[64] = "0";
    wait_run("f1", at, "failed");
    cr_assert_str_eq(step_of("f1", "c"), "cancelled");
    const char *a_done = step_of("f1", "a:finished");
    char a_finished[64];
    snprintf(a_finished, sizeof(a_finished), "%s", a_done);

    WEFT_OK("retry", "f1", "--by", "alice", "--comment", "disk was full");
    wait_run("f1", at, "running");
    wait_run("f1", at, "success");
    /* a and side kept their results: run once, finished as before. */
    cr_assert_eq(hist_count("f1", "step", "a", "queued", NULL, NULL), 1);
    cr_assert_eq(hist_count("f1", "step", "side", "queued", NULL, NULL), 1);
    cr_assert_str_eq(step_of("f1", "a:finished"), a_finished);
    cr_assert_str_eq(step_of("f1", "a:attempt"), "1");
    /* b ran again as attempt 2 (numbers continue), c for the first time. */
    cr_assert_str_eq(step_of("f1", "b:attempt"), "2");
    cr_assert_str_eq(step_of("f1", "c:attempt"), "1");
    cr_assert_str_eq(state_of("f1", "b_result"), "{\"n\":2}");
    /* The history says who retried and why. */
    cr_assert_eq(hist_count("f1", "run", "", "running", "by", "alice"), 1);
    cr_assert_eq(
        hist_count("f1", "run", "", "running", "comment", "disk was full"), 1);
    cr_assert_str_eq(run_of("f1", "retries"), "1");
    cr_assert_str_eq(run_of("f1", "error"), "");
}

Test(control, retry_from_a_step_reruns_it_and_what_follows)
{
    submit("name: chain\n"
           "steps:\n"
           "  - {id: a, type: noop}\n"
           "  - {id: b, type: noop, dependencies: [a]}\n"
           "  - {id: c, type: noop, dependencies: [b]}\n"
           "  - {id: d, type: noop, dependencies: [a]}\n",
           "c1");
    char at[64] = "0";
    wait_run("c1", at, "success");
    /* A run that succeeded is retried only from a step. */
    struct res r = WEFT("retry", "c1");
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "use --from STEP") != NULL, "%s", r.err);
    res_free(&r);
    WEFT_OK("retry", "c1", "--from", "b");
    wait_run("c1", at, "running");
    wait_run("c1", at, "success");
    cr_assert_str_eq(step_of("c1", "a:attempt"), "1");
    cr_assert_str_eq(step_of("c1", "b:attempt"), "2");
    cr_assert_str_eq(step_of("c1", "c:attempt"), "2");
    cr_assert_str_eq(step_of("c1", "d:attempt"), "1");
    cr_assert_eq(hist_count("c1", "run", "", "running", "from", "b"), 1);
}

Test(control, retry_of_a_cancelled_run_runs_the_interrupted_steps)
{
    submit("name: slow\n"
           "steps:\n"
           "  - {id: a, type: noop, params: {delay_ms: 1500}}\n"
           "  - {id: b, type: noop, dependencies: [a]}\n",
           "x1");
    char at[64] = "0";
    wait_step("x1", at, "a", "running");
    WEFT_OK("cancel", "x1");
    wait_run("x1", at, "cancelled");
    WEFT_OK("retry", "x1", "--json");
    wait_run("x1", at, "running");
    wait_run("x1", at, "success");
    cr_assert_str_eq(step_of("x1", "a"), "success");
    cr_assert_str_eq(step_of("x1", "a:attempt"), "2");
    cr_assert_str_eq(step_of("x1", "b:attempt"), "1");
}

/* Cancelling a run tells its running jobs on the cancel channel (the
 * batch's `chan`), and the run's keys then expire after the scheduler's
 * retention (its `ttl`, 7 days by default). */
Test(control, cancel_publishes_to_running_jobs_and_the_run_expires)
{
    struct redis_url u;
    cr_assert_eq(redis_url_parse(fx.url, &u, NULL), 0);
    redisContext *sub = rconn_connect_sync(&u, 2000, NULL);
    redis_url_deinit(&u);
    cr_assert_not_null(sub);
    struct timeval tv = {WAIT_S, 0};
    redisSetTimeout(sub, tv);
    redisReply *r = redisCommand(sub, "SUBSCRIBE weft:cancel");
    cr_assert_not_null(r);
    freeReplyObject(r);
    submit("name: slow\n"
           "steps:\n"
           "  - {id: a, type: noop, params: {delay_ms: 20000}}\n",
           "x9");
    char at[64] = "0";
    wait_step("x9", at, "a", "running");
    WEFT_OK("cancel", "x9");
    cr_assert_eq(redisGetReply(sub, (void **)&r), REDIS_OK);
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
    cr_assert_str_eq(r->element[2]->str, "x9|a|1");
    freeReplyObject(r);
    redisFree(sub);
    wait_run("x9", at, "cancelled");
    const char *keys[] = {"", ":steps", ":history"};
    for (int i = 0; i < 3; i++) {
        r = cmd("TTL weft:run:x9%s", keys[i]);
        cr_assert(r->integer > 7 * 86400 - 600 && r->integer <= 7 * 86400,
                  "TTL of weft:run:x9%s: %lld", keys[i], r->integer);
        freeReplyObject(r);
    }
}

Test(control, retry_inside_a_group_reopens_it)
{
    submit("name: grouped\n"
           "steps:\n"
           "  - id: g\n"
           "    type: parallel\n"
           "    steps:\n"
           "      - {id: x, type: noop}\n"
           "      - {id: y, type: noop, params: {fail_until: 2}}\n"
           "  - {id: after, type: noop, dependencies: [g]}\n",
           "g1");
    char at[64] = "0";
    wait_run("g1", at, "failed");
    WEFT_OK("retry", "g1");
    wait_run("g1", at, "success");
    cr_assert_str_eq(step_of("g1", "g"), "success");
    cr_assert_str_eq(step_of("g1", "x:attempt"), "1");
    cr_assert_str_eq(step_of("g1", "y:attempt"), "2");
    cr_assert_str_eq(step_of("g1", "after"), "success");
    cr_assert_eq(hist_count("g1", "step", "g", "running", "retry", "1"), 1,
                 "the group re-opened");
}

/* ---- escalation and resolve -------------------------------------------- */

static const char *escalating =
    "name: escalating\n"
    "steps:\n"
    "  - id: fix\n"
    "    type: noop\n"
    "    on_failure: escalate\n"
    "    params: {fail_until: 2}\n"
    "  - id: use\n"
    "    type: noop\n"
    "    dependencies: [fix]\n"
    "    condition: \"state.fixed === true\"\n"
    "  - {id: end, type: noop, dependencies: [use]}\n";

Test(control, escalate_then_resolve_retry_with_set)
{
    submit(escalating, "e1");
    char at[64] = "0";
    wait_step("e1", at, "fix", "waiting_for_human");
    cr_assert_str_eq(run_of("e1", "status"), "waiting_for_human");
    cr_assert_str_eq(step_of("e1", "fix:wait"), "escalation");
    /* weft status says what it waits for. */
    struct res r = WEFT("status", "e1");
    cr_assert_eq(r.rc, 0);
    cr_assert(strstr(r.out, "waiting: escalated; answer with weft resolve e1 "
                            "fix") != NULL,
              "%s", r.out);
    res_free(&r);
    r = WEFT("status", "e1", "--json");
    json_t *doc = json_loads(r.out, 0, NULL);
    json_t *w = json_object_get(
        json_object_get(json_object_get(doc, "steps"), "fix"), "wait");
    cr_assert_str_eq(json_string_value(json_object_get(w, "kind")),
                     "escalation");
    json_decref(doc);
    res_free(&r);

    WEFT_OK("resolve", "e1", "fix", "--retry", "--set", "fixed=true", "--set",
            "note=by hand", "--by", "bob");
    wait_run("e1", at, "success");
    cr_assert_str_eq(step_of("e1", "fix:attempt"), "2");
    cr_assert_str_eq(state_of("e1", "fixed"), "true");
    cr_assert_str_eq(state_of("e1", "note"), "\"by hand\"");
    cr_assert_str_eq(step_of("e1", "use"), "success",
                     "the condition read the state the resolve set");
    cr_assert_eq(hist_count("e1", "step", "fix", "pending", "by", "bob"), 1);
    cr_assert_eq(hist_count("e1", "run", "", "running", "resumed", "fix"), 1);
    cr_assert_str_eq(run_of("e1", "waiting"), "");
}

Test(control, escalate_then_resolve_skip_releases_dependents)
{
    submit("name: esc\n"
           "steps:\n"
           "  - id: fix\n"
           "    type: noop\n"
           "    on_failure: escalate\n"
           "    params: {fail_until: 99}\n"
           "  - {id: after, type: noop, dependencies: [fix]}\n",
           "e2");
    char at[64] = "0";
    wait_step("e2", at, "fix", "waiting_for_human");
    WEFT_OK("resolve", "e2", "fix", "--skip", "--comment", "not needed");
    wait_run("e2", at, "success");
    cr_assert_str_eq(step_of("e2", "fix"), "skipped");
    cr_assert_str_eq(state_of("e2", "fix_status"), "\"skipped\"");
    cr_assert_str_eq(step_of("e2", "after"), "success");
    cr_assert_str_eq(step_of("e2", "fix:by"), "tester", "--by is $USER");
}

Test(control, escalate_then_resolve_fail_fails_the_run)
{
    submit("name: esc\n"
           "steps:\n"
           "  - id: fix\n"
           "    type: noop\n"
           "    on_failure: escalate\n"
           "    params: {fail_until: 99}\n"
           "  - {id: after, type: noop, dependencies: [fix]}\n",
           "e3");
    char at[64] = "0";
    wait_step("e3", at, "fix", "waiting_for_human");
    WEFT_OK("resolve", "e3", "fix", "--fail", "--by", "carol");
    cr_assert(hist_wait("e3", at, "run", "", "failed"));
    cr_assert_str_eq(step_of("e3", "fix"), "failed");
    cr_assert_str_eq(step_of("e3", "after"), "cancelled");
    cr_assert(strstr(run_of("e3", "error"), "failed by carol") != NULL, "%s",
              run_of("e3", "error"));
}

/* ---- approvals ---------------------------------------------------------- */

static const char *approval =
    "name: release\n"
    "steps:\n"
    "  - {id: build, type: noop}\n"
    "  - id: gate\n"
    "    type: approval\n"
    "    dependencies: [build]\n"
    "    approvers: [alice, bob]\n"
    "    message: \"Release {{workflowId}}?\"\n"
    "  - {id: ship, type: noop, dependencies: [gate]}\n";

Test(control, approval_waits_then_approve_completes_it)
{
    submit(approval, "ap1");
    char at[64] = "0";
    wait_step("ap1", at, "gate", "waiting_for_human");
    cr_assert_str_eq(run_of("ap1", "status"), "waiting_for_human");
    cr_assert_str_eq(step_of("ap1", "gate:wait"), "approval");
    cr_assert_str_eq(step_of("ap1", "gate:message"), "Release ap1?");
    /* No worker job was made for it. */
    cr_assert_eq(hist_count("ap1", "step", "gate", "queued", NULL, NULL), 0);
    struct res r = WEFT("status", "ap1");
    cr_assert(strstr(r.out, "waiting: approval by alice, bob: Release ap1?") !=
                  NULL,
              "%s", r.out);
    res_free(&r);
    /* Someone not among the approvers is told so; nothing is sent. */
    r = WEFT("approve", "ap1", "gate", "--by", "mallory");
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "'mallory' is not one of the approvers") != NULL,
              "%s", r.err);
    res_free(&r);
    r = WEFT("approve", "ap1", "gate", "--by", "alice", "--comment", "ship it",
             "--json");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    json_t *doc = json_loads(r.out, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "type")),
                     "approve");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "action")),
                     "approve");
    cr_assert_not_null(json_object_get(doc, "event"));
    json_decref(doc);
    res_free(&r);
    wait_run("ap1", at, "success");
    cr_assert_str_eq(state_of("ap1", "gate_result"),
                     "{\"approved\":true,\"by\":\"alice\",\"comment\":"
                     "\"ship it\"}");
    cr_assert_str_eq(step_of("ap1", "ship"), "success");
    cr_assert_eq(hist_count("ap1", "step", "gate", "success", "by", "alice"), 1,
                 "who approved is in the history");
}

Test(control, rejected_approval_fails_the_run)
{
    submit(approval, "ap2");
    char at[64] = "0";
    wait_step("ap2", at, "gate", "waiting_for_human");
    WEFT_OK("approve", "ap2", "gate", "--reject", "--by", "bob", "--comment",
            "not today");
    cr_assert(hist_wait("ap2", at, "run", "", "failed"));
    cr_assert_str_eq(step_of("ap2", "gate"), "failed");
    cr_assert_str_eq(step_of("ap2", "ship"), "cancelled");
    cr_assert_str_eq(state_of("ap2", "gate_result"),
                     "{\"approved\":false,\"by\":\"bob\",\"comment\":"
                     "\"not today\"}");
    cr_assert(strstr(run_of("ap2", "error"), "rejected by bob: not today") !=
                  NULL,
              "%s", run_of("ap2", "error"));
}

Test(control, unapproved_step_times_out_at_its_deadline)
{
    submit("name: timed\n"
           "steps:\n"
           "  - id: gate\n"
           "    type: approval\n"
           "    timeout: 1\n"
           "    on_failure: continue\n"
           "  - {id: after, type: noop, dependencies: [gate]}\n",
           "ap3");
    char at[64] = "0";
    wait_step("ap3", at, "gate", "waiting_for_human");
    cr_assert_neq(step_of("ap3", "gate:deadline")[0], '\0');
    /* on_failure: continue lets the dependents run after the timeout. */
    wait_run("ap3", at, "success");
    cr_assert_str_eq(step_of("ap3", "gate"), "failed");
    cr_assert_str_eq(step_of("ap3", "gate:error"),
                     "no approval before the deadline");
    cr_assert_str_eq(step_of("ap3", "after"), "success");
    redisReply *d = cmd("ZCARD weft:deadlines");
    cr_assert_eq(d->integer, 0, "the deadline is gone");
    freeReplyObject(d);
}

/* ---- duplicated events ----------------------------------------------------
 */

/* Adds the same control event twice, atomically, as a client that sent
 * its request twice would: the arguments are an XADD command for cmd(). */
#define ADD_TWICE(...)                                                         \
    do {                                                                       \
        freeReplyObject(cmd("MULTI"));                                         \
        freeReplyObject(cmd(__VA_ARGS__));                                     \
        freeReplyObject(cmd(__VA_ARGS__));                                     \
        redisReply *x_ = cmd("EXEC");                                          \
        cr_assert_eq(x_->type, REDIS_REPLY_ARRAY);                             \
        cr_assert_eq(x_->elements, 2);                                         \
        cr_assert_eq(x_->element[1]->type, REDIS_REPLY_STRING, "XADD: %s",     \
                     x_->element[1]->str);                                     \
        freeReplyObject(x_);                                                   \
    } while (0)

Test(control, duplicated_control_events_apply_once)
{
    /* resolve */
    submit(escalating, "d1");
    char at[64] = "0";
    wait_step("d1", at, "fix", "waiting_for_human");
    ADD_TWICE("XADD weft:events * type resolve run d1 step fix action retry "
              "attempt 1 by dup set %s",
              "{\"fixed\":true}");
    cr_assert(hist_wait("d1", at, "control", "fix", "stale"));
    strcpy(at, "0");
    wait_step("d1", at, "end", "success");
    cr_assert_eq(hist_count("d1", "step", "fix", "queued", "attempt", "2"), 1);
    cr_assert_str_eq(step_of("d1", "fix:attempt"), "2");

    /* retry: the same request (seq 0) twice */
    submit(flaky, "d2");
    strcpy(at, "0");
    wait_run("d2", at, "failed");
    ADD_TWICE("XADD weft:events * type retry run d2 seq 0 by dup");
    cr_assert(hist_wait("d2", at, "control", "", "stale"));
    strcpy(at, "0");
    cr_assert(hist_follow("d2", at, "run", "", "success", true));
    cr_assert_eq(hist_count("d2", "run", "", "running", "retry", "1"), 1);
    cr_assert_eq(hist_count("d2", "run", "", "running", "retry", "2"), 0);
    cr_assert_str_eq(run_of("d2", "retries"), "1");
    cr_assert_str_eq(step_of("d2", "b:attempt"), "2");

    /* approve */
    submit(approval, "d3");
    strcpy(at, "0");
    wait_step("d3", at, "gate", "waiting_for_human");
    ADD_TWICE("XADD weft:events * type approve run d3 step gate action "
              "approve attempt 1 by bob");
    cr_assert(hist_wait("d3", at, "control", "gate", "stale"));
    strcpy(at, "0");
    cr_assert(hist_wait("d3", at, "run", "", "success"));
    cr_assert_eq(hist_count("d3", "step", "gate", "success", NULL, NULL), 1);
    cr_assert_eq(hist_count("d3", "step", "ship", "success", NULL, NULL), 1);
}

Test(control, events_that_cannot_apply_are_recorded_not_applied)
{
    submit(approval, "bad");
    char at[64] = "0";
    wait_step("bad", at, "gate", "waiting_for_human");
    /* Sent by hand, past the CLI's checks. */
    freeReplyObject(cmd("XADD weft:events * type approve run bad step gate "
                        "by mallory"));
    cr_assert(hist_wait("bad", at, "control", "gate", "refused"));
    freeReplyObject(cmd("XADD weft:events * type resolve run bad step gate "
                        "action redo"));
    cr_assert(hist_wait("bad", at, "control", "gate", "refused"));
    freeReplyObject(cmd("XADD weft:events * type resolve run bad step gate "
                        "action skip set [1]"));
    cr_assert(hist_wait("bad", at, "control", "gate", "refused"));
    freeReplyObject(cmd("XADD weft:events * type approve run bad step build "
                        "by bob"));
    cr_assert(hist_wait("bad", at, "control", "build", "refused"));
    /* A malformed event goes to the dead-letter stream. */
    freeReplyObject(cmd("XADD weft:events * type resolve run bad"));
    time_t end = time(NULL) + WAIT_S;
    long long dlq = 0;
    while (dlq == 0 && time(NULL) < end) {
        redisReply *x = cmd("XLEN weft:dlq");
        dlq = x->integer;
        freeReplyObject(x);
        if (dlq == 0) {
            /* The DLQ is a stream: block on it rather than sleep. */
            freeReplyObject(cmd("XREAD BLOCK 500 STREAMS weft:dlq 0"));
        }
    }
    cr_assert_eq(dlq, 1);
    /* The step still waits, untouched, and the scheduler is alive. */
    cr_assert_str_eq(step_of("bad", "gate"), "waiting_for_human");
    WEFT_OK("approve", "bad", "gate", "--by", "bob");
    wait_run("bad", at, "success");
}

/* ---- CLI refusals ---------------------------------------------------------
 */

/* Runs weft, expects exit status want and `needle` in its stderr. */
static void refused(int want, const char *needle, const char *const *args)
{
    struct res r = weft(args);
    cr_assert_eq(r.rc, want, "exit %d, want %d: %s", r.rc, want, r.err);
    cr_assert(strstr(r.err, needle) != NULL, "'%s' not in: %s", needle, r.err);
    res_free(&r);
}

#define REFUSED(want, needle, ...)                                             \
    refused(want, needle, (const char *const[]){__VA_ARGS__, NULL})

Test(control, cli_refuses_what_cannot_apply_before_writing_anything)
{
    submit(approval, "cli1");
    char at[64] = "0";
    wait_step("cli1", at, "gate", "waiting_for_human");
    REFUSED(1, "run nope not found", "retry", "nope");
    REFUSED(1, "run nope not found", "resolve", "nope", "gate", "--skip");
    REFUSED(1, "is waiting_for_human: only a run that failed", "retry", "cli1");
    REFUSED(1, "has no step 'zz'", "resolve", "cli1", "zz", "--skip");
    REFUSED(1,
            "step build of run cli1 is not waiting for a human (it is "
            "success)",
            "resolve", "cli1", "build", "--retry");
    REFUSED(1, "step build of run cli1 is not waiting", "approve", "cli1",
            "build");
    REFUSED(2, "give one of --retry, --skip and --fail", "resolve", "cli1",
            "gate");
    REFUSED(2, "not --retry and --skip", "resolve", "cli1", "gate", "--retry",
            "--skip");
    REFUSED(2, "expected KEY=VALUE", "resolve", "cli1", "gate", "--skip",
            "--set", "novalue");
    REFUSED(2, "unknown option '--reject'", "resolve", "cli1", "gate", "--skip",
            "--reject");
    REFUSED(2, "unknown option '--from'", "approve", "cli1", "gate", "--from",
            "x");
    REFUSED(2, "is not a valid step id", "approve", "cli1", "a|b");
    REFUSED(2, "usage: weft approve", "approve", "cli1");
    /* Nothing reached the scheduler. */
    cr_assert_eq(hist_count("cli1", "control", NULL, NULL, NULL, NULL), 0);
    cr_assert_str_eq(step_of("cli1", "gate"), "waiting_for_human");
    /* An escalated step is resolved, not approved. */
    submit(escalating, "cli2");
    strcpy(at, "0");
    wait_step("cli2", at, "fix", "waiting_for_human");
    REFUSED(1, "waits for a resolution, not an approval", "approve", "cli2",
            "fix");
    cr_assert_eq(hist_count("cli2", "control", NULL, NULL, NULL, NULL), 0);
    /* A failed run: retried from steps it has only. */
    submit(flaky, "cli3");
    strcpy(at, "0");
    wait_run("cli3", at, "failed");
    REFUSED(1, "run cli3 has no step 'nope'", "retry", "cli3", "--from",
            "nope");
    REFUSED(2, "--by: expected a name", "retry", "cli3", "--by", "");
    /* A task that could not start is a failed run with nothing to run. */
    freeReplyObject(cmd("HSET weft:run:never status failed error nope"));
    REFUSED(1, "run never never started", "retry", "never");
    cr_assert_eq(hist_count("cli3", "control", NULL, NULL, NULL, NULL), 0);
    cr_assert_str_eq(run_of("cli3", "status"), "failed");
}
