/* test_faults.c - circuit breakers, queue timeouts and run timeouts end to
 * end: a real redis-server, weft-scheduler and weft-worker processes, and
 * real persona programs (tests/data/personas/scripted.py, mode "gate")
 * that a test takes down and brings back by creating and removing a file.
 *
 * Every persona request appends a line to a log file, so a test counts
 * exactly which requests reached a service. Runs are followed on their
 * history streams (blocking XREAD); what the breaker did is read back from
 * the history and from its Redis hash.
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

#include "alloc.h"
#include "procs.h"
#include "rconn.h"
#include "redis_fixture.h"
#include "redisurl.h"
#include "runs.h"

#define KEY       "test-signing-key-0123456789"
#define REGISTRY  WEFT_SOURCE_ROOT "/tests/data/personas/faults.yml"
#define MAX_PROCS 4
/* A run of a few python persona calls takes well under a second; this
 * is for a slow, loaded machine. */
#define RUN_WAIT_S 60

static struct redis_fixture fx;
static redisContext *rc;
static pid_t procs[MAX_PROCS];
static int nprocs;
static char env_url[160], env_key[64] = "WEFT_HMAC_KEY=" KEY;
static char tmp[64];       /* per-test directory */
static char log_path[128]; /* persona request log */
static char down_path[128];
static long long dlq_expected; /* entries a test puts there on purpose */

/* A pause between two polls of Redis state (never a synchronisation by
 * itself: each poll loop has a deadline and checks what it waits for). */
static void poll_pause(void)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static pid_t start_proc(const char *bin, const char *const extra[])
{
    char path[512], log[256];
    const char *argv[16];
    int n = 0;
    argv[n++] = procs_binary(bin, path, sizeof(path));
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    snprintf(log, sizeof(log), "%s/proc-%d.log", fx.dir, nprocs);
    const char *env[] = {env_url, env_key, NULL};
    pid_t pid = procs_spawn(argv, env, log);
    cr_assert_gt(pid, 0);
    procs[nprocs++] = pid;
    return pid;
}

/* Redis, one scheduler and one worker serving queues (both read the
 * registry: the scheduler for breakers and queues, the worker to run the
 * personas). */
static void start_system(const char *queues)
{
    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
    snprintf(env_url, sizeof(env_url), "REDIS_URL=%s", fx.url);
    struct redis_url u;
    cr_assert_eq(redis_url_parse(fx.url, &u, NULL), 0);
    rc = rconn_connect_sync(&u, 2000, NULL);
    redis_url_deinit(&u);
    cr_assert_not_null(rc);
    const char *sargs[] = {"--name=sched-0", "--personas=" REGISTRY, NULL};
    start_proc("scheduler/weft-scheduler", sargs);
    char q[128], ws[128];
    snprintf(q, sizeof(q), "--queues=%s", queues);
    snprintf(ws, sizeof(ws), "--workspaces=%s/ws", tmp);
    const char *wargs[] = {
        "--name=worker-0", "--http=off", "--personas=" REGISTRY, q, ws, NULL};
    start_proc("worker/weft-worker", wargs);
}

static void setup(void)
{
    weft_alloc_init();
    snprintf(tmp, sizeof(tmp), "/tmp/weft-faults-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(log_path, sizeof(log_path), "%s/requests.log", tmp);
    snprintf(down_path, sizeof(down_path), "%s/down", tmp);
    nprocs = 0;
    dlq_expected = 0;
}

static void teardown(void)
{
    if (rc != NULL) {
        /* A transition script that failed would have dead-lettered its
         * message: none may have. */
        redisReply *r = redisCommand(rc, "XLEN weft:dlq");
        cr_expect(r != NULL && r->type == REDIS_REPLY_INTEGER &&
                      r->integer == dlq_expected,
                  "weft:dlq holds other entries than the test's");
        freeReplyObject(r);
    }
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
    const char *argv[] = {"/bin/rm", "-rf", tmp, NULL};
    procs_run(argv, NULL, NULL, NULL);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 300);

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

/* The string at key/field, or "" (static buffers, a few at a time). */
static const char *hget(const char *key, const char *field)
{
    static char buf[8][512];
    static int slot;
    char *out = buf[slot++ % 8];
    redisReply *r = cmd("HGET %s %s", key, field);
    snprintf(out, 512, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return out;
}

static const char *step_field(const char *run, const char *field)
{
    char key[128];
    snprintf(key, sizeof(key), "weft:run:%s:steps", run);
    return hget(key, field);
}

static const char *run_field(const char *run, const char *field)
{
    char key[128];
    snprintf(key, sizeof(key), "weft:run:%s", run);
    return hget(key, field);
}

/* Takes a persona's service down (true) or brings it back. */
static void set_down(const char *who, bool down)
{
    char path[192];
    snprintf(path, sizeof(path), "%s-%s", down_path, who);
    if (down) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fclose(f);
    } else {
        cr_assert_eq(unlink(path), 0);
    }
}

/* Requests that reached persona who (lines of the request log). */
static int requests(const char *who)
{
    FILE *f = fopen(log_path, "r");
    if (f == NULL)
        return 0;
    char line[512];
    int n = 0;
    size_t wl = strlen(who);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, who, wl) == 0 && line[wl] == ' ')
            n++;
    fclose(f);
    return n;
}

/* History entries of run with this type and status (and step, when not
 * NULL); when field is not NULL, the value of that field of the last
 * match is copied to out. */
static int hist_count(const char *run, const char *type, const char *status,
                      const char *step, const char *field, char *out,
                      size_t outsize)
{
    redisReply *r = cmd("XRANGE weft:run:%s:history - +", run);
    int n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        const char *t = NULL, *st = NULL, *sp = NULL, *fv = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            const char *name = f->element[k]->str;
            const char *v = f->element[k + 1]->str;
            if (strcmp(name, "type") == 0)
                t = v;
            else if (strcmp(name, "status") == 0)
                st = v;
            else if (strcmp(name, "step") == 0)
                sp = v;
            if (field && strcmp(name, field) == 0)
                fv = v;
        }
        if (t && st && strcmp(t, type) == 0 && strcmp(st, status) == 0 &&
            (step == NULL || (sp && strcmp(sp, step) == 0))) {
            n++;
            if (out && fv)
                snprintf(out, outsize, "%s", fv);
        }
    }
    freeReplyObject(r);
    return n;
}

/* A workflow of one step asking persona, with extra step keys. */
static char *one_step(const char *persona, const char *extra)
{
    static char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "name: one\n"
             "steps:\n"
             "  - id: ask\n"
             "    type: persona-request\n"
             "    persona: %s\n"
             "%s"
             "    params: {mode: gate, log: \"%s\", down: \"%s\"}\n",
             persona, extra, log_path, down_path);
    return yaml;
}

/* Submits yaml as run and waits for it to end; returns its status. */
static const char *run_to_end(const char *yaml, const char *run)
{
    static char status[32];
    cr_assert_eq(runs_submit(rc, yaml, "{\"type\": \"feature\"}", run), 0);
    return runs_wait(rc, run, RUN_WAIT_S, status, sizeof(status));
}

/* Runs `n` one-step runs of persona while its service is down, one after
 * the other, each failing with an error that its breaker counts. */
static void fail_runs(const char *persona, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char run[64];
        snprintf(run, sizeof(run), "%s-%d", prefix, i);
        cr_assert_str_eq(run_to_end(one_step(persona, ""), run), "failed",
                         "run %s", run);
        cr_assert_str_eq(step_field(run, "ask"), "failed");
        cr_assert_not_null(strstr(step_field(run, "ask:error"), "is down"),
                           "%s", step_field(run, "ask:error"));
    }
}

/* ---- breakers ----------------------------------------------------------- */

Test(faults, failing_persona_opens_its_breaker_and_stops_receiving_requests)
{
    start_system("flaky,backup,default");
    set_down("flaky", true);
    /* Three failures within the window open flaky's breaker (faults.yml:
     * failures 3); the third run's transition records it. */
    fail_runs("flaky", "trip", 3);
    cr_assert_eq(requests("flaky"), 3);
    cr_assert_str_eq(hget("weft:breaker:flaky", "state"), "open");
    cr_assert_str_eq(hget("weft:breaker:flaky", "failures"), "3");
    cr_assert_str_eq(hget("weft:breaker:flaky", "trips"), "1");
    cr_assert_str_eq(hget("weft:breaker:flaky", "last_error"), "flaky is down");
    cr_assert_eq(hist_count("trip-1", "breaker", "open", NULL, NULL, NULL, 0),
                 0);
    char until[32] = "";
    cr_assert_eq(hist_count("trip-2", "breaker", "open", "ask", "until", until,
                            sizeof(until)),
                 1, "the transition that opened it is in the run's history");
    cr_assert_str_eq(until, hget("weft:breaker:flaky", "until"));

    /* While it is open, steps that fail fast never reach the service. */
    const char *ff = one_step("flaky", "    on_breaker_open: fail\n");
    for (int i = 0; i < 4; i++) {
        char run[32];
        snprintf(run, sizeof(run), "fast-%d", i);
        cr_assert_str_eq(run_to_end(ff, run), "failed");
        cr_assert_str_eq(step_field(run, "ask"), "failed");
        cr_assert_str_eq(step_field(run, "ask:error"),
                         "circuit breaker 'flaky' is open "
                         "(on_breaker_open: fail)");
        cr_assert_eq(
            hist_count(run, "breaker", "rejected", "ask", NULL, NULL, 0), 1);
        cr_assert_eq(hist_count(run, "step", "queued", "ask", NULL, NULL, 0), 0,
                     "never queued");
    }
    cr_assert_eq(requests("flaky"), 3, "no request while the breaker is open");
    cr_assert_str_eq(hget("weft:breaker:flaky", "state"), "open");

    /* A step that waits stays pending, its timer set for the end of the
     * cool-down, and is listed among the breaker's waiters. */
    cr_assert_eq(runs_submit(rc, one_step("flaky", ""), "{}", "patient"), 0);
    time_t end = time(NULL) + RUN_WAIT_S;
    while (strcmp(step_field("patient", "ask:waiting"), "flaky") != 0 &&
           time(NULL) < end)
        poll_pause();
    cr_assert_str_eq(step_field("patient", "ask:waiting"), "flaky");
    cr_assert_str_eq(step_field("patient", "ask"), "pending");
    redisReply *r = cmd("ZSCORE weft:delayed patient|ask|1");
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "a timer is armed");
    cr_assert_str_eq(r->str, hget("weft:breaker:flaky", "until"));
    freeReplyObject(r);
    r = cmd("ZSCORE weft:breakerwait:flaky patient|ask|1");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    cr_assert_eq(
        hist_count("patient", "breaker", "waiting", "ask", NULL, NULL, 0), 1);
    cr_assert_eq(requests("flaky"), 3);
}

Test(faults, half_open_probe_closes_the_breaker_after_recovery)
{
    start_system("mending,default");
    set_down("mending", true);
    fail_runs("mending", "trip", 2); /* faults.yml: failures 2, cooldown 1 */
    cr_assert_str_eq(hget("weft:breaker:mending", "state"), "open");
    set_down("mending", false);
    /* Three steps become ready at once while the breaker is open or
     * probing: one probe goes first, the other two wait for its answer. */
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "name: three\n"
             "steps:\n"
             "  - id: all\n"
             "    type: parallel\n"
             "    steps:\n"
             "      - {id: a, type: persona-request, persona: mending,\n"
             "         params: {mode: gate, log: \"%s\", down: \"%s\"}}\n"
             "      - {id: b, type: persona-request, persona: mending,\n"
             "         params: {mode: gate, log: \"%s\", down: \"%s\"}}\n"
             "      - {id: c, type: persona-request, persona: mending,\n"
             "         params: {mode: gate, log: \"%s\", down: \"%s\"}}\n",
             log_path, down_path, log_path, down_path, log_path, down_path);
    cr_assert_str_eq(run_to_end(yaml, "three"), "success");
    cr_assert_eq(requests("mending"), 5,
                 "2 failures, then each step exactly once");
    cr_assert_str_eq(hget("weft:breaker:mending", "state"), "closed");
    cr_assert_str_eq(hget("weft:breaker:mending", "failures"), "0");
    cr_assert_eq(
        hist_count("three", "breaker", "half_open", NULL, NULL, NULL, 0), 1);
    cr_assert_eq(hist_count("three", "breaker", "closed", NULL, NULL, NULL, 0),
                 1);
    cr_assert_geq(
        hist_count("three", "breaker", "waiting", NULL, NULL, NULL, 0), 2,
        "only one probe at a time");
    redisReply *r = cmd("EXISTS weft:breakerwait:mending");
    cr_assert_eq(r->integer, 0, "the waiters were woken and the list dropped");
    freeReplyObject(r);
    /* Closed: the next request goes straight through. */
    cr_assert_str_eq(run_to_end(one_step("mending", ""), "after"), "success");
    cr_assert_eq(hist_count("after", "breaker", "waiting", NULL, NULL, NULL, 0),
                 0);
    cr_assert_eq(requests("mending"), 6);
}

Test(faults, failed_probe_opens_the_breaker_again)
{
    start_system("mending,default");
    set_down("mending", true);
    fail_runs("mending", "trip", 2);
    const char *until0 = hget("weft:breaker:mending", "until");
    char first[32];
    snprintf(first, sizeof(first), "%s", until0);
    /* Still down: the probe (this run's step, after the cool-down) fails
     * and opens the breaker for another cool-down. */
    cr_assert_str_eq(run_to_end(one_step("mending", ""), "probe"), "failed");
    cr_assert_eq(requests("mending"), 3);
    cr_assert_eq(
        hist_count("probe", "breaker", "half_open", "ask", NULL, NULL, 0), 1);
    cr_assert_eq(hist_count("probe", "breaker", "open", "ask", NULL, NULL, 0),
                 1);
    cr_assert_str_eq(hget("weft:breaker:mending", "state"), "open");
    cr_assert_str_eq(hget("weft:breaker:mending", "trips"), "2");
    cr_assert_gt(atoll(hget("weft:breaker:mending", "until")), atoll(first));
}

Test(faults, fallback_persona_takes_the_requests_while_the_breaker_is_open)
{
    start_system("flaky,backup,default");
    set_down("flaky", true);
    fail_runs("flaky", "trip", 3);
    cr_assert_str_eq(hget("weft:breaker:flaky", "state"), "open");
    const char *yaml = one_step("flaky", "    fallback_persona: backup\n");
    for (int i = 0; i < 2; i++) {
        char run[32];
        snprintf(run, sizeof(run), "divert-%d", i);
        cr_assert_str_eq(run_to_end(yaml, run), "success");
        cr_assert_str_eq(step_field(run, "ask:via"), "backup");
        char persona[64] = "";
        cr_assert_eq(hist_count(run, "breaker", "diverted", "ask", "persona",
                                persona, sizeof(persona)),
                     1);
        cr_assert_str_eq(persona, "backup");
        redisReply *r = cmd("HGET weft:run:%s:state ask_result", run);
        cr_assert_eq(r->type, REDIS_REPLY_STRING);
        cr_assert_str_eq(r->str, "{\"who\":\"backup\"}");
        freeReplyObject(r);
        cr_assert_not_null(
            strstr(run_field(run, "personaResults"), "\"backup\""), "%s",
            run_field(run, "personaResults"));
    }
    cr_assert_eq(requests("flaky"), 3);
    cr_assert_eq(requests("backup"), 2);
    /* backup has no breaker of its own (faults.yml); flaky's is still
     * open: the diverted successes did not close it. */
    cr_assert_str_eq(hget("weft:breaker:flaky", "state"), "open");
    redisReply *r = cmd("EXISTS weft:breaker:backup");
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);
}

Test(faults, fallback_with_an_open_breaker_of_its_own_waits_for_either)
{
    start_system("flaky,mending,default");
    set_down("flaky", true);
    set_down("mending", true);
    fail_runs("flaky", "trip-f", 3);
    fail_runs("mending", "trip-m", 2); /* cooldown 1 s */
    set_down("mending", false);
    /* Both open: the step waits (for whichever lets a job by first:
     * mending, after its second), then goes to mending as its probe,
     * whose answer closes mending's breaker. */
    const char *yaml = one_step("flaky", "    fallback_persona: mending\n");
    cr_assert_str_eq(run_to_end(yaml, "both"), "success");
    cr_assert_str_eq(step_field("both", "ask:via"), "mending");
    cr_assert_eq(requests("flaky"), 3);
    cr_assert_eq(requests("mending"), 3);
    cr_assert_str_eq(hget("weft:breaker:mending", "state"), "closed");
    cr_assert_str_eq(hget("weft:breaker:flaky", "state"), "open");
    cr_assert_eq(
        hist_count("both", "breaker", "diverted", "ask", NULL, NULL, 0), 1);
}

/* A git repository at dir whose `origin` points nowhere. */
static void repo_with_a_dead_remote(const char *dir)
{
    char gone[192];
    snprintf(gone, sizeof(gone), "%s/gone.git", tmp);
    const char *init[] = {"/usr/bin/env", "git",  "init", "-q",
                          "-b",           "main", dir,    NULL};
    const char *add[] = {"/usr/bin/env", "git",    "-C", dir, "remote",
                         "add",          "origin", gone, NULL};
    const char *env[] = {"GIT_CONFIG_NOSYSTEM=1", NULL};
    cr_assert_eq(procs_run(init, env, NULL, NULL), 0);
    cr_assert_eq(procs_run(add, env, NULL, NULL), 0);
}

Test(faults, git_remote_breaker_opens_on_an_unreachable_remote)
{
    start_system("git,default");
    char repo[128], task[256];
    snprintf(repo, sizeof(repo), "%s/repo", tmp);
    repo_with_a_dead_remote(repo);
    snprintf(task, sizeof(task), "{\"repoRoot\": \"%s\"}", repo);
    const char *yaml = "name: fetch\n"
                       "steps:\n"
                       "  - id: get\n"
                       "    type: git-operation\n"
                       "    operation: fetch\n"
                       "    breaker: {failures: 2, cooldown: 600}\n"
                       "    on_breaker_open: fail\n";
    for (int i = 0; i < 3; i++) {
        char run[32], st[32];
        snprintf(run, sizeof(run), "fetch-%d", i);
        cr_assert_eq(runs_submit(rc, yaml, task, run), 0);
        cr_assert_str_eq(runs_wait(rc, run, RUN_WAIT_S, st, sizeof(st)),
                         "failed");
        const char *err = step_field(run, "get:error");
        if (i < 2)
            cr_assert_not_null(strstr(err, "fetch from 'origin' failed"), "%s",
                               err);
        else
            cr_assert_str_eq(err, "circuit breaker 'git:origin' is open "
                                  "(on_breaker_open: fail)");
    }
    cr_assert_str_eq(hget("weft:breaker:git:origin", "state"), "open");
    cr_assert_str_eq(hget("weft:breaker:git:origin", "threshold"), "2");
    cr_assert_eq(hist_count("fetch-2", "step", "queued", "get", NULL, NULL, 0),
                 0);
}

/* ---- queue and run timeouts ---------------------------------------------- */

Test(faults, queue_timeout_fails_a_step_that_no_worker_serves)
{
    start_system("default");
    const char *yaml = "name: q\n"
                       "steps:\n"
                       "  - id: lost\n"
                       "    type: noop\n"
                       "    queue: nobody\n"
                       "    queue_timeout: 0.5\n"
                       "    retry: {max: 1, delay: 0.1}\n";
    cr_assert_str_eq(run_to_end(yaml, "lost"), "failed");
    cr_assert_str_eq(step_field("lost", "lost"), "failed");
    cr_assert_str_eq(step_field("lost", "lost:attempt"), "2",
                     "the retry policy applies");
    cr_assert_str_eq(step_field("lost", "lost:error"),
                     "no worker started the job within its queue_timeout "
                     "(0.5 s)");
    cr_assert_eq(hist_count("lost", "step", "retrying", "lost", NULL, NULL, 0),
                 1);
    cr_assert_eq(hist_count("lost", "step", "running", "lost", NULL, NULL, 0),
                 0);
    /* A job a worker starts in time runs as long as it needs: its start
     * clears the queue deadline at once. */
    const char *served = "name: s\n"
                         "steps:\n"
                         "  - id: slow\n"
                         "    type: noop\n"
                         "    queue_timeout: 0.5\n"
                         "    params: {delay_ms: 1500}\n";
    cr_assert_eq(runs_submit(rc, served, "{}", "served"), 0);
    time_t end = time(NULL) + RUN_WAIT_S;
    while (time(NULL) < end && strcmp(step_field("served", "slow"), "running"))
        poll_pause();
    cr_assert_str_eq(step_field("served", "slow"), "running");
    redisReply *q = cmd("ZSCORE weft:deadlines served|slow|1|queue");
    cr_assert_eq(q->type, REDIS_REPLY_NIL, "start cleared the queue deadline");
    freeReplyObject(q);
    char status[32];
    cr_assert_str_eq(
        runs_wait(rc, "served", RUN_WAIT_S, status, sizeof(status)), "success");
    cr_assert_str_eq(step_field("served", "slow:attempt"), "1");
    redisReply *r = cmd("ZCARD weft:deadlines");
    cr_assert_eq(r->integer, 0, "no queue deadline is left behind");
    freeReplyObject(r);
}

Test(faults, run_timeout_fails_the_run_and_stops_its_jobs)
{
    start_system("default");
    const char *yaml = "name: slow\n"
                       "timeout: 1\n"
                       "steps:\n"
                       "  - id: long\n"
                       "    type: noop\n"
                       "    params: {delay_ms: 60000}\n"
                       "  - id: after\n"
                       "    type: noop\n"
                       "    dependencies: [long]\n";
    time_t t0 = time(NULL);
    cr_assert_str_eq(run_to_end(yaml, "slow"), "failed");
    cr_assert_lt(time(NULL) - t0, 30, "ended by the timeout, not the job");
    cr_assert_str_eq(run_field("slow", "error"),
                     "the run timed out (timeout: 1 s)");
    cr_assert_str_eq(step_field("slow", "long"), "cancelled");
    cr_assert_str_eq(step_field("slow", "after"), "cancelled");
    /* The running job was told to stop: the worker hands it back. */
    time_t end = time(NULL) + RUN_WAIT_S;
    long long pending = -1;
    while (time(NULL) < end) {
        redisReply *r = cmd("XPENDING weft:q:default workers");
        pending = r->element[0]->integer;
        freeReplyObject(r);
        if (pending == 0)
            break;
        poll_pause();
    }
    cr_assert_eq(pending, 0, "the cancelled job is no longer held");
    redisReply *r = cmd("ZSCORE weft:deadlines slow|run");
    cr_assert_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    /* A run that ends in time leaves no timer behind. */
    const char *quick = "name: quick\n"
                        "timeout: 600\n"
                        "steps: [{id: a, type: noop}]\n";
    cr_assert_eq(runs_submit(rc, quick, "{}", "quick"), 0);
    char st[32];
    cr_assert_str_eq(runs_wait(rc, "quick", RUN_WAIT_S, st, sizeof(st)),
                     "success");
    r = cmd("ZCARD weft:deadlines");
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);
}

Test(faults, a_retried_run_gets_its_timeout_again)
{
    start_system("default");
    const char *yaml = "name: again\n"
                       "timeout: 1\n"
                       "steps:\n"
                       "  - id: long\n"
                       "    type: noop\n"
                       "    params: {delay_ms: 60000}\n";
    cr_assert_str_eq(run_to_end(yaml, "again"), "failed");
    freeReplyObject(
        cmd("XADD weft:events * type retry run again seq 0 by test"));
    /* The retry re-arms the workflow's timeout: the run fails again
     * instead of waiting for its 60 s step. */
    time_t t0 = time(NULL), end = t0 + RUN_WAIT_S;
    bool again = false;
    while (time(NULL) < end && !again) {
        again = strcmp(run_field("again", "retries"), "1") == 0 &&
                strcmp(run_field("again", "status"), "failed") == 0;
        if (!again)
            poll_pause();
    }
    cr_assert(again, "the retried run did not time out (status %s)",
              run_field("again", "status"));
    cr_assert_lt(time(NULL) - t0, 30);
    cr_assert_str_eq(run_field("again", "error"),
                     "the run timed out (timeout: 1 s)");
}

Test(faults, malformed_timer_and_breaker_events_are_dead_lettered)
{
    start_system("default");
    cr_assert_str_eq(run_to_end("steps: [{id: a, type: noop}]", "ok"),
                     "success");
    freeReplyObject(cmd("XADD weft:events * type timeout run ok step a "
                        "attempt 1 kind bogus"));
    freeReplyObject(cmd("XADD weft:events * type ready run ok step a "
                        "attempt 1 breaker %s",
                        "a b"));
    freeReplyObject(cmd("XADD weft:events * type result run ok step a "
                        "attempt 1 breaker qa"));
    freeReplyObject(cmd("XADD weft:events * type timeout run ok kind queue"));
    dlq_expected = 4;
    time_t end = time(NULL) + RUN_WAIT_S;
    long long n = 0;
    while (time(NULL) < end) {
        redisReply *r = cmd("XLEN weft:dlq");
        n = r->integer;
        freeReplyObject(r);
        if (n >= dlq_expected)
            break;
        poll_pause();
    }
    cr_assert_eq(n, dlq_expected);
    redisReply *r = cmd("XRANGE weft:dlq - +");
    int kind = 0, step = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "dlq_reason") != 0)
                continue;
            const char *why = f->element[k + 1]->str;
            kind +=
                strcmp(why, "event has an unknown 'kind' or 'breaker'") == 0;
            step +=
                strcmp(why, "event needs a valid 'step' and 'attempt'") == 0;
        }
    }
    freeReplyObject(r);
    cr_assert_eq(kind, 3);
    cr_assert_eq(step, 1);
    /* The scheduler carries on. */
    cr_assert_str_eq(run_to_end("steps: [{id: b, type: noop}]", "ok-2"),
                     "success");
}
