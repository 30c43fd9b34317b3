/* test_persona.c - persona steps end to end: the real weft-worker runs
 * the real persona program (tests/data/personas/scripted.py, scripted by
 * each job's params) against a real redis-server.
 *
 * The test plays the scheduler as test_worker.c does: it writes a run's
 * header, state and steps hash, XADDs signed persona-request jobs and
 * follows weft:events with a blocking XREAD (no sleeps to synchronise).
 * Results may come in any order, so they are collected by step id.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "alloc.h"
#include "hmac.h"
#include "procs.h"
#include "rconn.h"
#include "redis_fixture.h"
#include "redisurl.h"
#include "wire.h"

#define KEY         "test-signing-key-0123456789"
#define WORKER_NAME "pw1"
#define REGISTRY    WEFT_SOURCE_ROOT "/tests/data/personas/registry.yml"
#define TRACE       "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
/* How long a result may take: a python start is ~30 ms, a kill after
 * an ignored SIGTERM 5 s. */
#define WAIT_MS 20000
/* Results held while waiting for another one. */
#define HELD_MAX 16

static struct redis_fixture fx;
static redisContext *rc;
static struct hmac_key hkey;
static pid_t wpid;
static char events_last[64];
static char tmp[64];     /* per-test directory: workspaces, pid files */
static char ws_root[96]; /* the worker's --workspaces */

struct result {
    char step[160];
    char status[32];
    char trace[64]; /* the event's `trace` field */
    struct wire_result res;
};
static struct result held[HELD_MAX];
static size_t nheld;

/* ---- helpers (the scheduler's side, after test_worker.c) --------------- */

static void setup(void)
{
    weft_alloc_init();
    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
    struct redis_url u;
    cr_assert_eq(redis_url_parse(fx.url, &u, NULL), 0);
    rc = rconn_connect_sync(&u, 2000, NULL);
    redis_url_deinit(&u);
    cr_assert_not_null(rc);
    cr_assert_eq(hmac_key_set(&hkey, KEY, strlen(KEY), NULL), 0);
    snprintf(events_last, sizeof(events_last), "0-0");
    snprintf(tmp, sizeof(tmp), "/tmp/weft-persona-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(ws_root, sizeof(ws_root), "%s/ws", tmp);
    wpid = 0;
    nheld = 0;
}

static void teardown(void)
{
    if (wpid > 0)
        procs_stop(wpid, SIGKILL, 1000);
    wpid = 0;
    for (size_t i = 0; i < nheld; i++)
        wire_result_deinit(&held[i].res);
    nheld = 0;
    if (rc != NULL)
        redisFree(rc);
    rc = NULL;
    redis_fixture_stop(&fx);
    const char *argv[] = {"/bin/rm", "-rf", tmp, NULL};
    procs_run(argv, NULL, NULL, NULL);
}

TestSuite(persona, .init = setup, .fini = teardown, .timeout = 120);

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "redis command failed: %s", rc->errstr);
    cr_assert_neq(r->type, REDIS_REPLY_ERROR, "redis: %s", r->str);
    return r;
}

/* Starts weft-worker with a registry and the queues it serves. */
static void start_worker_with(const char *registry, const char *queues)
{
    char path[512], log[256], url[200], ws[128], reg[512], q[256];
    snprintf(ws, sizeof(ws), "--workspaces=%s", ws_root);
    snprintf(reg, sizeof(reg), "--personas=%s", registry);
    snprintf(q, sizeof(q), "--queues=%s", queues);
    const char *argv[] = {
        procs_binary("worker/weft-worker", path, sizeof(path)),
        "--name=" WORKER_NAME,
        "--http=off",
        q,
        reg,
        ws,
        NULL};
    snprintf(log, sizeof(log), "%s/worker.log", fx.dir);
    snprintf(url, sizeof(url), "REDIS_URL=%s", fx.url);
    const char *env[] = {url, "WEFT_HMAC_KEY=" KEY,
                         "WEFT_TEST_SECRET=from-the-worker", NULL};
    wpid = procs_spawn(argv, env, log);
    cr_assert_gt(wpid, 0);
}

static void start_worker(void)
{
    start_worker_with(REGISTRY, "scripted,slow,nobody");
}

static void stop_worker(void)
{
    int st = procs_stop(wpid, SIGTERM, 10000);
    wpid = 0;
    cr_assert(WIFEXITED(st), "worker did not exit (status %d)", st);
    cr_assert_eq(WEXITSTATUS(st), 0);
}

/* A queued persona step of run and its signed job. params: JSON text.
 * repo_root: NULL for none. */
static void add_persona_job(const char *run, const char *step,
                            const char *persona, uint64_t timeout_ms,
                            const char *params, const char *repo_root)
{
    struct wire_job j;
    char *body;
    size_t len;
    char sig[HMAC_HEX_LEN + 1];

    freeReplyObject(cmd("HSET weft:run:%s status running", run));
    freeReplyObject(
        cmd("HSET weft:run:%s:steps %s queued %s:attempt 1", run, step, step));
    memset(&j, 0, sizeof(j));
    j.run = (char *)run;
    j.step = (char *)step;
    j.name = (char *)"Scripted step";
    j.type = (char *)"persona-request";
    j.persona = (char *)persona;
    j.queue = (char *)persona;
    j.attempt = 1;
    j.timeout_ms = timeout_ms;
    j.trace = (char *)TRACE;
    j.params = json_loads(params, 0, NULL);
    cr_assert_not_null(j.params, "bad test params %s", params);
    j.context = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "workflowId", run,
                          "branchName", "weft/b", "baseBranch", "main", "task",
                          "type", "feature", "title", "Add greeting");
    if (repo_root != NULL)
        json_object_set_new(j.context, "repoRoot", json_string(repo_root));
    cr_assert_eq(wire_job_encode(&j, &body, &len), 0);
    json_decref(j.params);
    json_decref(j.context);
    hmac_sign_hex(&hkey, body, len, sig);
    freeReplyObject(cmd("XADD weft:q:%s * run %s step %s attempt 1 type %s "
                        "persona %s body %b sig %s",
                        persona, run, step, "persona-request", persona, body,
                        len, sig));
    weft_free(body);
}

/* Reads the next result event into r; false after ms without one. */
static bool read_event(int ms, struct result *r)
{
    memset(r, 0, sizeof(*r));
    redisReply *x =
        cmd("XREAD COUNT 1 BLOCK %d STREAMS weft:events %s", ms, events_last);
    if (x->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(x);
        return false;
    }
    const redisReply *e = x->element[0]->element[1]->element[0];
    snprintf(events_last, sizeof(events_last), "%s", e->element[0]->str);
    const redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str;
        const redisReply *v = f->element[i + 1];
        if (strcmp(k, "step") == 0)
            snprintf(r->step, sizeof(r->step), "%s", v->str);
        else if (strcmp(k, "status") == 0)
            snprintf(r->status, sizeof(r->status), "%s", v->str);
        else if (strcmp(k, "trace") == 0)
            snprintf(r->trace, sizeof(r->trace), "%s", v->str);
        else if (strcmp(k, "body") == 0)
            cr_assert_eq(wire_result_decode(v->str, v->len, &r->res, NULL), 0);
    }
    freeReplyObject(x);
    return true;
}

/* The result of step (any run), waiting up to WAIT_MS; other results
 * that come first are held for later calls. Checks its status. The
 * caller owns r->res. */
static void expect(const char *step, const char *status, struct result *r)
{
    for (size_t i = 0; i < nheld; i++) {
        if (strcmp(held[i].step, step) == 0) {
            *r = held[i];
            held[i] = held[--nheld];
            goto check;
        }
    }
    for (;;) {
        cr_assert(read_event(WAIT_MS, r), "no result for %s", step);
        if (strcmp(r->step, step) == 0)
            break;
        cr_assert_lt(nheld, HELD_MAX);
        held[nheld++] = *r;
    }
check:
    cr_assert_str_eq(r->status, status, "%s: %s (%s)", step, r->status,
                     r->res.message ? r->res.message : "no message");
}

static char *dumps(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static void expect_json(const json_t *v, const char *want)
{
    char *got = dumps(v);
    cr_assert_str_eq(got, want);
    free(got);
}

static void expect_in_message(const struct result *r, const char *want)
{
    cr_assert_not_null(r->res.message, "no message");
    cr_assert_not_null(strstr(r->res.message, want), "'%s' not in '%s'", want,
                       r->res.message);
}

/* The two pids a hanging persona wrote (itself, its child). */
static void read_pids(const char *path, pid_t pids[2])
{
    cr_assert_eq(procs_read_pids(path, pids, 2), 2, "pid file %s not written",
                 path);
    cr_assert_gt(pids[0], 0);
    cr_assert_gt(pids[1], 0);
}

/* Resident memory of pid in KiB: field "VmRSS" or "VmHWM" (peak). */
static long mem_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t fl = strlen(field);
    long v = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            v = strtol(line + fl + 1, NULL, 10);
    }
    fclose(f);
    return v;
}

/* ---- answers ----------------------------------------------------------- */

Test(persona, verdicts_are_successes_with_the_word_kept)
{
    start_worker();
    add_persona_job("r1", "qa", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"status\": "
                    "\"pass\", \"result\": {\"tests\": 3}, \"state\": "
                    "{\"qa_status\": \"pass\"}, \"artifacts\": [\"log.txt\"], "
                    "\"message\": \"all good\", \"extra\": 1}}",
                    NULL);
    add_persona_job("r1", "review", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"status\": "
                    "\"approved\"}}",
                    NULL);
    add_persona_job("r1", "qa2", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"status\": "
                    "\"fail\", \"state\": null, \"result\": [1]}}",
                    NULL);
    struct result r;
    expect("qa", "success", &r);
    cr_assert_str_eq(r.res.verdict, "pass");
    expect_json(r.res.result, "{\"tests\":3}");
    expect_json(r.res.state, "{\"qa_status\":\"pass\"}");
    expect_json(r.res.artifacts, "[\"log.txt\"]");
    cr_assert_str_eq(r.res.message, "all good");
    wire_result_deinit(&r.res);
    expect("review", "success", &r);
    cr_assert_str_eq(r.res.verdict, "approved");
    cr_assert_null(r.res.result);
    wire_result_deinit(&r.res);
    /* QA's fail is a verdict on work done, not a failed step. */
    expect("qa2", "success", &r);
    cr_assert_str_eq(r.res.verdict, "fail");
    expect_json(r.res.result, "[1]");
    cr_assert_null(r.res.state);
    wire_result_deinit(&r.res);
    stop_worker();
}

Test(persona, error_is_retryable_and_fatal_is_not)
{
    start_worker();
    add_persona_job("r1", "e", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"status\": "
                    "\"error\", \"message\": \"model overloaded\"}}",
                    NULL);
    add_persona_job("r1", "f", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"status\": "
                    "\"fatal\", \"message\": \"task makes no sense\"}}",
                    NULL);
    add_persona_job("r1", "e2", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"status\": "
                    "\"error\"}}",
                    NULL);
    struct result r;
    expect("e", "error", &r);
    cr_assert_str_eq(r.res.message, "model overloaded");
    cr_assert_null(r.res.verdict);
    wire_result_deinit(&r.res);
    expect("f", "fatal", &r);
    cr_assert_str_eq(r.res.message, "task makes no sense");
    wire_result_deinit(&r.res);
    expect("e2", "error", &r);
    expect_in_message(&r, "persona 'scripted' reported error");
    wire_result_deinit(&r.res);
    stop_worker();
}

Test(persona, malformed_responses_are_errors)
{
    start_worker();
    add_persona_job("r1", "nostatus", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"result\": 1}}",
                    NULL);
    add_persona_job("r1", "array", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": [1, 2]}", NULL);
    add_persona_job("r1", "numstatus", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"status\": 1}}",
                    NULL);
    add_persona_job("r1", "sentence", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"status\": "
                    "\"looks good to me\"}}",
                    NULL);
    add_persona_job("r1", "badstate", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"status\": "
                    "\"pass\", \"state\": [1]}}",
                    NULL);
    add_persona_job("r1", "badart", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"status\": "
                    "\"pass\", \"artifacts\": \"a\"}}",
                    NULL);
    add_persona_job("r1", "garbage", "scripted", 0, "{\"mode\": \"garbage\"}",
                    NULL);
    struct result r;
    expect("nostatus", "error", &r);
    expect_in_message(&r, "no 'status'");
    wire_result_deinit(&r.res);
    expect("array", "error", &r);
    expect_in_message(&r, "must be a JSON object");
    wire_result_deinit(&r.res);
    expect("numstatus", "error", &r);
    expect_in_message(&r, "no 'status' string");
    wire_result_deinit(&r.res);
    expect("sentence", "error", &r);
    expect_in_message(&r, "must be a word");
    wire_result_deinit(&r.res);
    expect("badstate", "error", &r);
    expect_in_message(&r, "'state' must be an object");
    wire_result_deinit(&r.res);
    expect("badart", "error", &r);
    expect_in_message(&r, "'artifacts' must be a list");
    wire_result_deinit(&r.res);
    expect("garbage", "error", &r);
    expect_in_message(&r, "response is not JSON");
    expect_in_message(&r, "stderr: garbage on stderr");
    wire_result_deinit(&r.res);
    stop_worker();
}

Test(persona, nonzero_exit_is_an_error_with_the_stderr_tail)
{
    start_worker();
    add_persona_job("r1", "x", "scripted", 0,
                    "{\"mode\": \"exit\", \"code\": 3, \"stderr\": "
                    "\"Traceback: boom\\n\"}",
                    NULL);
    /* Bytes that are not UTF-8 (a tail cut inside a character, binary
     * junk) still make a message the wire can carry. */
    add_persona_job("r1", "y", "scripted", 0,
                    "{\"mode\": \"exit\", \"code\": 1, \"stderr\": "
                    "\"bad: \", \"stderr_hex\": \"ff80e282\"}",
                    NULL);
    struct result r;
    expect("x", "error", &r);
    expect_in_message(&r, "persona 'scripted' exited with status 3");
    expect_in_message(&r, "stderr: Traceback: boom");
    wire_result_deinit(&r.res);
    expect("y", "error", &r);
    expect_in_message(&r, "stderr: bad: ????");
    wire_result_deinit(&r.res);
    stop_worker();
}

Test(persona, response_size_limit_at_the_boundary)
{
    start_worker();
    add_persona_job("r1", "at", "scripted", 0,
                    "{\"mode\": \"sized\", \"size\": 4194304}", NULL);
    add_persona_job("r1", "past", "scripted", 0,
                    "{\"mode\": \"sized\", \"size\": 4194305}", NULL);
    struct result r;
    expect("at", "success", &r);
    cr_assert_str_eq(r.res.verdict, "pass");
    cr_assert_eq(json_string_length(r.res.result), 4194304 - 32);
    wire_result_deinit(&r.res);
    expect("past", "error", &r);
    expect_in_message(&r, "response larger than 4194304 bytes");
    wire_result_deinit(&r.res);
    stop_worker();
}

Test(persona, verdict_length_at_the_boundary)
{
    char params[256];
    start_worker();
    snprintf(params, sizeof(params),
             "{\"mode\": \"answer\", \"response\": {\"status\": "
             "\"%0*d\"}}",
             64, 0);
    add_persona_job("r1", "v64", "scripted", 0, params, NULL);
    snprintf(params, sizeof(params),
             "{\"mode\": \"answer\", \"response\": {\"status\": "
             "\"%0*d\"}}",
             65, 0);
    add_persona_job("r1", "v65", "scripted", 0, params, NULL);
    struct result r;
    expect("v64", "success", &r);
    cr_assert_eq(strlen(r.res.verdict), 64);
    wire_result_deinit(&r.res);
    expect("v65", "error", &r);
    expect_in_message(&r, "must be a word of 1-64");
    wire_result_deinit(&r.res);
    stop_worker();
}

Test(persona, unknown_persona_is_fatal)
{
    start_worker();
    add_persona_job("r1", "x", "nobody", 0, "{}", NULL);
    struct result r;
    expect("x", "fatal", &r);
    expect_in_message(&r, "unknown persona 'nobody'");
    expect_in_message(&r, "registry.yml");
    wire_result_deinit(&r.res);
    stop_worker();
}

/* ---- limits ------------------------------------------------------------ */

Test(persona, fifty_megabytes_of_output_is_an_error_and_memory_stays_small)
{
    start_worker();
    /* Let the worker settle before taking its resident size. */
    add_persona_job("r0", "warm", "scripted", 0,
                    "{\"mode\": \"answer\", \"response\": {\"status\": "
                    "\"pass\"}}",
                    NULL);
    struct result r;
    expect("warm", "success", &r);
    wire_result_deinit(&r.res);
    long before = mem_kib(wpid, "VmRSS");
    add_persona_job("r1", "flood", "scripted", 0,
                    "{\"mode\": \"flood\", \"bytes\": 52428800}", NULL);
    expect("flood", "error", &r);
    expect_in_message(&r, "response larger than 4194304 bytes");
    wire_result_deinit(&r.res);
    long peak = mem_kib(wpid, "VmHWM");
    /* The response buffer stops at 4 MiB; 50 MB never sits in memory. */
    cr_assert_lt(peak - before, 24 * 1024, "worker grew from %ld to %ld KiB",
                 before, peak);
    stop_worker();
}

/* ---- timeouts and kills ------------------------------------------------ */

Test(persona, hang_past_the_job_timeout_kills_the_group)
{
    char pidfile[128], params[256];
    snprintf(pidfile, sizeof(pidfile), "%s/hang.pids", tmp);
    snprintf(params, sizeof(params),
             "{\"mode\": \"hang\", \"pidfile\": \"%s\"}", pidfile);
    start_worker();
    add_persona_job("r1", "h", "scripted", 2000, params, NULL);
    struct result r;
    expect("h", "timeout", &r);
    expect_in_message(&r, "timed out after 2000 ms");
    wire_result_deinit(&r.res);
    pid_t pids[2];
    read_pids(pidfile, pids);
    cr_assert(procs_gone(pids[0], 5000), "persona %d still alive",
              (int)pids[0]);
    cr_assert(procs_gone(pids[1], 5000), "its child %d still alive",
              (int)pids[1]);
    stop_worker();
}

Test(persona, persona_default_timeout_applies_without_a_step_timeout)
{
    char pidfile[128], params[256];
    snprintf(pidfile, sizeof(pidfile), "%s/slow.pids", tmp);
    snprintf(params, sizeof(params),
             "{\"mode\": \"hang\", \"pidfile\": \"%s\"}", pidfile);
    start_worker();
    add_persona_job("r1", "s", "slow", 0, params, NULL);
    struct result r;
    expect("s", "timeout", &r);
    expect_in_message(&r, "its default timeout");
    /* The worker's wall clock in whole ms against its monotonic timer:
     * allow a few ms of rounding. */
    cr_assert_geq(r.res.finished_ms - r.res.started_ms, 1990);
    wire_result_deinit(&r.res);
    pid_t pids[2];
    read_pids(pidfile, pids);
    cr_assert(procs_gone(pids[0], 5000));
    cr_assert(procs_gone(pids[1], 5000));
    stop_worker();
}

Test(persona, sigterm_ignored_is_followed_by_sigkill)
{
    char pidfile[128], params[256];
    snprintf(pidfile, sizeof(pidfile), "%s/stubborn.pids", tmp);
    snprintf(params, sizeof(params),
             "{\"mode\": \"hang\", \"ignore_term\": true, \"pidfile\": "
             "\"%s\"}",
             pidfile);
    start_worker();
    /* 2 s: time for python to start and ignore SIGTERM on a busy
     * machine. */
    add_persona_job("r1", "t", "scripted", 2000, params, NULL);
    struct result r;
    expect("t", "timeout", &r);
    /* The timeout, then the 5 s between SIGTERM and SIGKILL. */
    cr_assert_geq(r.res.finished_ms - r.res.started_ms, 6900, "%s",
                  r.res.message);
    expect_in_message(&r, "killed by signal 9");
    wire_result_deinit(&r.res);
    pid_t pids[2];
    read_pids(pidfile, pids);
    cr_assert(procs_gone(pids[0], 5000), "persona %d survived", (int)pids[0]);
    cr_assert(procs_gone(pids[1], 5000), "its child %d survived", (int)pids[1]);
    stop_worker();
}

Test(persona, worker_killed_with_sigkill_takes_the_persona_group_along)
{
    char pidfile[128], params[256];
    snprintf(pidfile, sizeof(pidfile), "%s/orphan.pids", tmp);
    /* The persona ignores SIGTERM too: only a SIGKILL ends it. */
    snprintf(params, sizeof(params),
             "{\"mode\": \"hang\", \"ignore_term\": true, \"pidfile\": "
             "\"%s\"}",
             pidfile);
    start_worker();
    add_persona_job("r1", "o", "scripted", 0, params, NULL);
    cr_assert(procs_wait_file(pidfile, WAIT_MS), "%s was not written", pidfile);
    pid_t pids[2];
    read_pids(pidfile, pids);
    /* No drain, no timer: the worker is gone at once, and nothing of it
     * may keep running the step (the job is reclaimed and run again
     * elsewhere). The persona's own child is in its group. */
    cr_assert_eq(procs_stop(wpid, SIGKILL, 1000) & 0x7f, SIGKILL);
    wpid = 0;
    cr_assert(procs_gone(pids[0], 5000), "persona %d survived its worker",
              (int)pids[0]);
    cr_assert(procs_gone(pids[1], 5000), "its child %d survived the worker",
              (int)pids[1]);
}

/* ---- the request and the environment ----------------------------------- */

Test(persona, request_carries_state_artifacts_and_git_state_from_redis)
{
    freeReplyObject(cmd("HSET weft:run:r1:state planning_result %s "
                        "qa_status %s count %s",
                        "{\"plan\":\"PLAN.md\"}", "\"pass\"", "3"));
    freeReplyObject(cmd("HSET weft:run:r1 artifacts %s gitState %s",
                        "[\"PLAN.md\"]", "{\"branch\":\"weft/r1\"}"));
    start_worker();
    add_persona_job("r1", "echo", "scripted", 30000,
                    "{\"mode\": \"echo\", \"k\": [1, \"two\"]}", NULL);
    struct result r;
    expect("echo", "success", &r);
    const json_t *req = json_object_get(r.res.result, "request");
    cr_assert_not_null(req);
    expect_json(json_object_get(req, "run"), "\"r1\"");
    expect_json(json_object_get(req, "step"),
                "{\"attempt\":1,\"id\":\"echo\",\"name\":\"Scripted step\","
                "\"params\":{\"k\":[1,\"two\"],\"mode\":\"echo\"},"
                "\"persona\":\"scripted\"}");
    expect_json(json_object_get(req, "task"),
                "{\"title\":\"Add greeting\",\"type\":\"feature\"}");
    expect_json(json_object_get(req, "context"),
                "{\"artifacts\":[\"PLAN.md\"],\"baseBranch\":\"main\","
                "\"branchName\":\"weft/b\",\"gitState\":{\"branch\":"
                "\"weft/r1\"},\"repoRoot\":null,\"state\":{\"count\":3,"
                "\"planning_result\":{\"plan\":\"PLAN.md\"},\"qa_status\":"
                "\"pass\"},\"workflowId\":\"r1\"}");
    const json_t *deadline = json_object_get(req, "deadline");
    cr_assert(json_is_integer(deadline));
    cr_assert_geq(json_integer_value(deadline), r.res.started_ms + 29000);
    cr_assert_leq(json_integer_value(deadline), r.res.finished_ms + 30000);
    wire_result_deinit(&r.res);
    stop_worker();
}

Test(persona, runs_in_the_workspace_with_its_environment)
{
    char repo[128];
    snprintf(repo, sizeof(repo), "%s/repo", tmp);
    cr_assert_eq(mkdir(repo, 0755), 0);
    start_worker();
    add_persona_job("r1", "e1", "scripted", 0, "{\"mode\": \"echo\"}", NULL);
    add_persona_job("r2", "e2", "scripted", 0, "{\"mode\": \"echo\"}", repo);
    struct result r;
    expect("e1", "success", &r);
    expect_json(json_object_get(r.res.result, "env"),
                "{\"PERSONA_FLAVOUR\":\"vanilla\",\"TRACEPARENT\":\"" TRACE
                "\",\"WEFT_RUN_ID\":\"r1\",\"WEFT_STEP_ID\":\"e1\","
                "\"WEFT_TEST_SECRET\":\"from-the-worker\"}");
    /* The result goes back in the job's trace: job -> persona -> result. */
    cr_assert_str_eq(r.trace, TRACE);
    char want[160];
    snprintf(want, sizeof(want), "%s/r1", ws_root);
    cr_assert_str_eq(json_string_value(json_object_get(r.res.result, "cwd")),
                     want, "no repoRoot: the run's workspace");
    /* No step timeout: the deadline is the persona's own (60 s). */
    const json_t *req = json_object_get(r.res.result, "request");
    cr_assert(json_is_integer(json_object_get(req, "deadline")));
    wire_result_deinit(&r.res);
    expect("e2", "success", &r);
    cr_assert_str_eq(json_string_value(json_object_get(r.res.result, "cwd")),
                     repo, "a local repoRoot is the workspace");
    wire_result_deinit(&r.res);
    stop_worker();
}

/* ---- the shipped example personas ------------------------------------- */

/* Runs argv in dir (through git -C or the like: argv is complete). */
static void run_ok(const char *const argv[])
{
    char *err = NULL;
    int code = procs_run(argv, NULL, NULL, &err);
    cr_assert_eq(code, 0, "%s failed: %s", argv[0], err ? err : "");
    free(err);
}

static bool file_has(const char *path, const char *text)
{
    char buf[8192];
    return procs_read_file(path, buf, sizeof(buf)) && strstr(buf, text) != NULL;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* workflows/personas.yml through the real worker, on a real repository:
 * the project loop's personas one after the other, as the scheduler
 * would dispatch them. */
Test(persona, shipped_personas_plan_build_test_and_review_a_repository,
     .timeout = 240)
{
    char repo[128], path[256];
    snprintf(repo, sizeof(repo), "%s/repo", tmp);
    cr_assert_eq(mkdir(repo, 0755), 0);
    snprintf(path, sizeof(path), "%s/README.md", repo);
    write_file(path, "# demo\n");
    run_ok((const char *const[]){"/usr/bin/git", "-C", repo, "init", "-q", "-b",
                                 "main", NULL});
    run_ok((const char *const[]){
        "/usr/bin/git", "-C", repo, "-c", "user.name=t", "-c",
        "user.email=t@example.com", "add", "README.md", NULL});
    run_ok((const char *const[]){
        "/usr/bin/git", "-C", repo, "-c", "user.name=t", "-c",
        "user.email=t@example.com", "commit", "-q", "-m", "init", NULL});
    run_ok((const char *const[]){"/usr/bin/git", "-C", repo, "checkout", "-q",
                                 "-b", "weft/r1", NULL});
    start_worker_with(WEFT_SOURCE_ROOT "/workflows/personas.yml",
                      "implementation-planner,plan-evaluator,lead-engineer,"
                      "qa-engineer,code-reviewer,security-review,"
                      "hotfix-specialist");
    struct result r;

    add_persona_job("r1", "planning", "implementation-planner", 0,
                    "{\"stage\": \"initial\"}", repo);
    expect("planning", "success", &r);
    cr_assert_str_eq(r.res.verdict, "success");
    expect_json(json_object_get(r.res.result, "plan_file"), "\"PLAN.md\"");
    snprintf(path, sizeof(path), "%s/PLAN.md", repo);
    cr_assert(file_has(path, "# Plan: Add greeting"));
    wire_result_deinit(&r.res);

    add_persona_job("r1", "plan-evaluation", "plan-evaluator", 0, "{}", repo);
    expect("plan-evaluation", "success", &r);
    cr_assert_str_eq(r.res.verdict, "approved");
    expect_json(r.res.state, "{\"plan_approved\":true}");
    wire_result_deinit(&r.res);

    add_persona_job("r1", "implementation", "lead-engineer", 0, "{}", repo);
    expect("implementation", "success", &r);
    snprintf(path, sizeof(path), "%s/feature.py", repo);
    cr_assert(file_has(path, "def add_greeting():"));
    wire_result_deinit(&r.res);

    add_persona_job("r1", "qa", "qa-engineer", 0, "{}", repo);
    expect("qa", "success", &r);
    cr_assert_str_eq(r.res.verdict, "pass", "%s", r.res.message);
    expect_json(r.res.state, "{\"qa_status\":\"pass\"}");
    wire_result_deinit(&r.res);

    add_persona_job("r1", "code-review", "code-reviewer", 0, "{}", repo);
    add_persona_job("r1", "security-review", "security-review", 0, "{}", repo);
    expect("code-review", "success", &r);
    cr_assert_str_eq(r.res.verdict, "approved", "%s", r.res.message);
    wire_result_deinit(&r.res);
    expect("security-review", "success", &r);
    cr_assert_str_eq(r.res.verdict, "approved", "%s", r.res.message);
    wire_result_deinit(&r.res);

    /* A broken implementation: QA's verdict is fail, the step succeeds. */
    add_persona_job("r1", "implementation-2", "lead-engineer", 0,
                    "{\"title\": \"Add farewell\", \"bug\": true}", repo);
    expect("implementation-2", "success", &r);
    wire_result_deinit(&r.res);
    add_persona_job("r1", "qa-2", "qa-engineer", 0, "{}", repo);
    expect("qa-2", "success", &r);
    cr_assert_str_eq(r.res.verdict, "fail");
    expect_json(r.res.state, "{\"qa_status\":\"fail\"}");
    wire_result_deinit(&r.res);

    /* A secret in the diff. */
    snprintf(path, sizeof(path), "%s/settings.py", repo);
    write_file(path, "password = \"hunter2hunter2\"\n");
    add_persona_job("r1", "security-review-2", "security-review", 0, "{}",
                    repo);
    expect("security-review-2", "success", &r);
    cr_assert_str_eq(r.res.verdict, "changes_requested");
    wire_result_deinit(&r.res);

    /* The hotfix replaces the text it is told to. */
    add_persona_job("r1", "fix", "hotfix-specialist", 0,
                    "{\"file\": \"settings.py\", \"find\": "
                    "\"hunter2hunter2\", \"replace\": \"from-env\"}",
                    repo);
    expect("fix", "success", &r);
    cr_assert(file_has(path, "from-env"));
    wire_result_deinit(&r.res);
    add_persona_job("r1", "fix-2", "hotfix-specialist", 0,
                    "{\"file\": \"settings.py\", \"find\": "
                    "\"absent text\"}",
                    repo);
    expect("fix-2", "fatal", &r);
    wire_result_deinit(&r.res);
    stop_worker();
}
