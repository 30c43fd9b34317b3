/* test_dlq_cli.c - `weft dlq list | requeue | drop` against dead letters the
 * real processes write: a job a worker gave up on past its delivery
 * limit, an event a scheduler could not apply, a task it rejected.
 *
 * Each test starts its own redis-server, a weft-scheduler and (where jobs
 * run) a weft-worker, and runs the real `weft` binary (procs_run, no
 * shell). Waiting is done on Redis state with a deadline (the run's
 * history stream, stream lengths, pending counts), never on sleeps alone.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "alloc.h"
#include "procs.h"
#include "redis_fixture.h"
#include "runs.h"
#include "wire.h"

#define KEY      "test-signing-key-0123456789"
#define SRC(rel) WEFT_SOURCE_ROOT "/" rel

static struct redis_fixture fx;
static redisContext *rc;
static pid_t sched_pid, worker_pid;
static char sched_log[256], worker_log[256];
static char url_env[REDIS_FIXTURE_PATH_MAX + 32];

static void setup(void)
{
    weft_alloc_init();
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void show_log(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    if (f == NULL)
        return;
    fprintf(stderr, "---- %s\n", path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "redis: %s", rc->errstr);
    cr_assert_neq(r->type, REDIS_REPLY_ERROR, "redis: %s", r->str);
    return r;
}

static long long int_of(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert(r != NULL && r->type == REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* Polls until the integer answer of the command (or the first element of
 * an array answer: XPENDING's count) is want; 20 s at most. */
static void wait_int(long long want, const char *what, const char *fmt, ...)
{
    for (int i = 0; i < 2000; i++) {
        va_list ap;
        va_start(ap, fmt);
        redisReply *r = redisvCommand(rc, fmt, ap);
        va_end(ap);
        cr_assert_not_null(r);
        long long got = -1;
        if (r->type == REDIS_REPLY_INTEGER)
            got = r->integer;
        else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                 r->element[0]->type == REDIS_REPLY_INTEGER)
            got = r->element[0]->integer;
        freeReplyObject(r);
        if (got == want)
            return;
        sleep_ms(10);
    }
    show_log(sched_log);
    show_log(worker_log);
    cr_assert_fail("%s never became %lld", what, want);
}

static void start_scheduler(void)
{
    char bin[512];
    snprintf(sched_log, sizeof(sched_log), "%s/scheduler.log", fx.dir);
    const char *argv[] = {
        procs_binary("scheduler/weft-scheduler", bin, sizeof(bin)),
        "--workflows=" SRC("tests/data/cli"), NULL};
    const char *env[] = {url_env, "WEFT_HMAC_KEY=" KEY, NULL};
    sched_pid = procs_spawn(argv, env, sched_log);
    cr_assert_gt(sched_pid, 0);
}

static void start_worker(const char *extra1, const char *extra2)
{
    char bin[512];
    snprintf(worker_log, sizeof(worker_log), "%s/worker.log", fx.dir);
    const char *argv[] = {procs_binary("worker/weft-worker", bin, sizeof(bin)),
                          "--queues=default", extra1, extra2, NULL};
    const char *env[] = {url_env, "WEFT_HMAC_KEY=" KEY, NULL};
    worker_pid = procs_spawn(argv, env, worker_log);
    cr_assert_gt(worker_pid, 0);
}

static void system_up(void)
{
    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
    rc = redisConnectUnix(fx.sock);
    cr_assert(rc != NULL && rc->err == 0);
    snprintf(url_env, sizeof(url_env), "REDIS_URL=%s", fx.url);
    start_scheduler();
}

static void stop_one(pid_t *pid, const char *log)
{
    if (*pid <= 0)
        return;
    int st = procs_stop(*pid, SIGTERM, 15000);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        show_log(log);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "%s did not exit cleanly (status %d)", log, st);
    *pid = 0;
}

static void system_down(void)
{
    stop_one(&worker_pid, worker_log);
    stop_one(&sched_pid, sched_log);
    if (rc != NULL)
        redisFree(rc);
    rc = NULL;
    redis_fixture_stop(&fx);
}

/* The value of field name in a stream entry's field array, or NULL. */
static const char *field_of_reply(const redisReply *f, const char *name)
{
    for (size_t k = 0; k + 1 < f->elements; k += 2)
        if (strcmp(f->element[k]->str, name) == 0)
            return f->element[k + 1]->str;
    return NULL;
}

/* ---- the weft binary ---- */

struct res {
    int rc;
    char *out;
    char *err;
};

static struct res weft_argv(const char *const *args)
{
    char bin[4096];
    procs_binary("cli/weft", bin, sizeof(bin));
    const char *argv[32] = {bin};
    size_t n = 1;
    for (size_t i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    const char *env[] = {url_env, NULL};
    struct res r = {0};
    r.rc = procs_run(argv, env, &r.out, &r.err);
    cr_assert_not_null(r.out);
    cr_assert_not_null(r.err);
    return r;
}

#define WEFT(...) weft_argv((const char *const[]){__VA_ARGS__, NULL})

static void res_free(struct res *r)
{
    free(r->out);
    free(r->err);
}

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert_not_null(v, "not one JSON document (%s): %s", e.text, text);
    return v;
}

static const char *jget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* `weft dlq list --json`: the document (caller decrefs). */
static json_t *dlq_list(void)
{
    struct res r = WEFT("dlq", "list", "--json");
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    json_t *v = parse_json(r.out);
    res_free(&r);
    return v;
}

/* The newest dead letter whose reason starts with `reason` (borrowed
 * from doc). */
static json_t *find_entry(json_t *doc, const char *reason)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "entries"), i, e)
    {
        const char *why = jget(e, "reason");
        if (why && strncmp(why, reason, strlen(reason)) == 0)
            return e;
    }
    return NULL;
}

/* Waits for a dead letter whose reason starts with `reason`; returns its
 * id (static). */
static const char *wait_dead(const char *reason)
{
    static char id[64];
    for (int i = 0; i < 2000; i++) {
        json_t *doc = dlq_list();
        json_t *e = find_entry(doc, reason);
        if (e) {
            snprintf(id, sizeof(id), "%s", jget(e, "id"));
            json_decref(doc);
            return id;
        }
        json_decref(doc);
        sleep_ms(10);
    }
    show_log(sched_log);
    cr_assert_fail("no dead letter '%s'", reason);
    return NULL;
}

static const char *wait_run(const char *run)
{
    static char status[32];
    return runs_wait(rc, run, 60, status, sizeof(status));
}

/* A job held by a consumer that keeps dying: read by `ghost` and marked
 * delivered `deliveries` times, so a worker with a lower delivery limit
 * dead-letters it when it reclaims it. Returns the job's entry id. */
static const char *ghost_job(int deliveries)
{
    static char id[64];
    wait_int(1, "the job on weft:q:default", "XLEN weft:q:default");
    freeReplyObject(cmd("XGROUP CREATE weft:q:default workers 0 MKSTREAM"));
    redisReply *rd = cmd("XREADGROUP GROUP workers ghost COUNT 1 STREAMS "
                         "weft:q:default >");
    cr_assert_eq(rd->type, REDIS_REPLY_ARRAY);
    snprintf(id, sizeof(id), "%s",
             rd->element[0]->element[1]->element[0]->element[0]->str);
    freeReplyObject(rd);
    freeReplyObject(cmd("XCLAIM weft:q:default workers ghost 0 %s "
                        "RETRYCOUNT %d",
                        id, deliveries));
    return id;
}

/* Waits until the scheduler has read and acknowledged everything on
 * stream up to and including entry id. */
static void wait_stream_done(const char *stream, const char *id)
{
    for (int i = 0; i < 2000; i++) {
        redisReply *g = cmd("XINFO GROUPS %s", stream);
        const char *last = NULL;
        long long pending = -1;
        for (size_t k = 0; g->elements > 0 && k + 1 < g->element[0]->elements;
             k += 2) {
            const redisReply *f = g->element[0]->element[k],
                             *v = g->element[0]->element[k + 1];
            if (strcmp(f->str, "last-delivered-id") == 0)
                last = v->str;
            if (strcmp(f->str, "pending") == 0)
                pending = v->integer;
        }
        bool done = false;
        if (last != NULL && pending == 0) {
            char *end;
            unsigned long long lm = strtoull(last, &end, 10);
            unsigned long long ls =
                *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
            unsigned long long im = strtoull(id, &end, 10);
            unsigned long long is =
                *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
            done = lm > im || (lm == im && ls >= is);
        }
        freeReplyObject(g);
        if (done)
            return;
        sleep_ms(10);
    }
    show_log(sched_log);
    cr_assert_fail("the scheduler never got to %s %s", stream, id);
}

/* ---- jobs ---- */

/* Attempt 1 of a step dies with its workers past the delivery limit and
 * goes to the DLQ; the step retries and attempt 2 runs. Requeuing the old
 * job is harmless: the worker finds it superseded and drops it, and a
 * result for attempt 1 (what an external worker that skips `start` would
 * report after running it) is ignored by finish's compare-and-set. */
Test(dlq_cli, requeued_job_of_a_step_that_moved_on_changes_nothing,
     .init = setup)
{
    system_up();
    const char *yaml = "name: moved-on\n"
                       "steps:\n"
                       "  - id: a\n"
                       "    type: noop\n"
                       "    params: {delay_ms: 2000}\n"
                       "    retry: {max: 1, delay: 0}\n";
    cr_assert_eq(runs_submit(rc, yaml, "{}", "r-moved"), 0);
    const char *job_id = ghost_job(5);
    start_worker("--visibility=200", "--delivery-limit=3");
    const char *dead = wait_dead("delivery limit exceeded");

    /* list: the job, where it came from and for which attempt. */
    json_t *doc = dlq_list();
    cr_assert_eq(json_integer_value(json_object_get(doc, "length")), 1);
    json_t *e = find_entry(doc, "delivery limit exceeded");
    cr_assert_str_eq(jget(e, "kind"), "job");
    cr_assert_str_eq(jget(e, "origin"), "weft:q:default");
    cr_assert_str_eq(jget(e, "entry"), job_id);
    cr_assert_str_eq(jget(e, "run"), "r-moved");
    cr_assert_str_eq(jget(e, "step"), "a");
    cr_assert_str_eq(jget(e, "attempt"), "1");
    cr_assert_str_eq(jget(e, "type"), "noop");
    cr_assert_not_null(jget(e, "by"));
    cr_assert(json_is_true(json_object_get(e, "requeueable")));
    cr_assert_geq(json_integer_value(json_object_get(e, "age_ms")), 0);
    json_decref(doc);
    struct res r = WEFT("dlq", "list");
    cr_assert_eq(r.rc, 0);
    cr_assert_not_null(strstr(r.out, "REASON"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, dead), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "weft:q:default"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "delivery limit exceeded"), "%s", r.out);
    res_free(&r);

    /* Attempt 2 is running (or done) by now. */
    wait_int(1, "attempt 2", "EVAL %s 1 weft:run:r-moved:steps",
             "return (tonumber(redis.call('HGET', KEYS[1], 'a:attempt')) "
             "or 0) >= 2 and 1 or 0");
    r = WEFT("dlq", "requeue", dead);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    cr_assert_not_null(strstr(r.out, "requeued "), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "-> weft:q:default "), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "the worker will drop the job as stale"),
                       "%s", r.out);
    res_free(&r);
    cr_assert_eq(int_of("XLEN weft:dlq"), 0);
    /* The worker claims it and drops it without running it. */
    wait_int(0, "weft:q:default", "XLEN weft:q:default");
    wait_int(0, "pending jobs", "XPENDING weft:q:default workers");

    /* A late result for attempt 1 changes nothing either. */
    char *body;
    size_t len;
    struct wire_result res;
    memset(&res, 0, sizeof(res));
    res.status = WIRE_SUCCESS;
    char msg[] = "ran the requeued job";
    res.message = msg;
    cr_assert_eq(wire_result_encode(&res, &body, &len), 0);
    redisReply *ev = cmd("XADD weft:events * type result run r-moved step a "
                         "attempt 1 status success worker outsider body %b",
                         body, len);
    char evid[64];
    snprintf(evid, sizeof(evid), "%s", ev->str);
    freeReplyObject(ev);
    weft_free(body);
    wait_stream_done("weft:events", evid);

    cr_assert_str_eq(wait_run("r-moved"), "success");
    redisReply *st = cmd("HMGET weft:run:r-moved:steps a a:attempt a:worker");
    cr_assert_str_eq(st->element[0]->str, "success");
    cr_assert_str_eq(st->element[1]->str, "2");
    cr_assert_neq(strcmp(st->element[2]->str, "outsider"), 0);
    freeReplyObject(st);
    /* One success in the history, attempt 2's. */
    redisReply *h = cmd("XRANGE weft:run:r-moved:history - +");
    int successes = 0;
    for (size_t i = 0; i < h->elements; i++) {
        const redisReply *f = h->element[i]->element[1];
        const char *step = NULL, *status = NULL, *attempt = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "step") == 0)
                step = f->element[k + 1]->str;
            if (strcmp(f->element[k]->str, "status") == 0)
                status = f->element[k + 1]->str;
            if (strcmp(f->element[k]->str, "attempt") == 0)
                attempt = f->element[k + 1]->str;
        }
        if (step && status && strcmp(step, "a") == 0 &&
            strcmp(status, "success") == 0) {
            successes++;
            cr_assert_str_eq(attempt ? attempt : "", "2");
        }
    }
    freeReplyObject(h);
    cr_assert_eq(successes, 1);
    system_down();
}

/* ---- events ---- */

/* A cancel for a run that does not exist yet is dead-lettered ("unknown
 * run") with its own fields, `reason` included beside dlq_reason; once
 * the run exists, requeuing it cancels the run with the original
 * reason. */
Test(dlq_cli, requeued_event_is_applied_again, .init = setup)
{
    system_up();
    redisReply *x = cmd("XADD weft:events * type cancel run r-later reason "
                        "%s",
                        "stop it, operator");
    char evid[64];
    snprintf(evid, sizeof(evid), "%s", x->str);
    freeReplyObject(x);
    const char *dead = wait_dead("unknown run");
    redisReply *d = cmd("XRANGE weft:dlq %s %s", dead, dead);
    const redisReply *f = d->element[0]->element[1];
    bool own_reason = false, origin = false, entry = false;
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
        const char *n = f->element[k]->str, *v = f->element[k + 1]->str;
        own_reason |=
            strcmp(n, "reason") == 0 && strcmp(v, "stop it, operator") == 0;
        origin |= strcmp(n, "dlq_origin") == 0 && strcmp(v, "weft:events") == 0;
        entry |= strcmp(n, "dlq_entry") == 0 && strcmp(v, evid) == 0;
    }
    freeReplyObject(d);
    cr_assert(own_reason && origin && entry);

    json_t *doc = dlq_list();
    json_t *e = find_entry(doc, "unknown run");
    cr_assert_str_eq(jget(e, "kind"), "event");
    cr_assert_str_eq(jget(e, "type"), "cancel");
    cr_assert_str_eq(jget(e, "run"), "r-later");
    json_decref(doc);

    /* The run, kept busy by a step no worker serves yet. */
    cr_assert_eq(
        runs_submit(rc, "steps: [{id: a, type: noop}]", "{}", "r-later"), 0);
    wait_int(1, "the job", "XLEN weft:q:default");
    struct res r = WEFT("dlq", "requeue", "--json", dead);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    doc = parse_json(r.out);
    json_t *done = json_array_get(json_object_get(doc, "requeued"), 0);
    cr_assert_str_eq(jget(done, "id"), dead);
    cr_assert_str_eq(jget(done, "kind"), "event");
    cr_assert_str_eq(jget(done, "stream"), "weft:events");
    cr_assert_not_null(jget(done, "new_id"));
    cr_assert_eq(json_array_size(json_object_get(doc, "failed")), 0);
    json_decref(doc);
    res_free(&r);
    cr_assert_str_eq(wait_run("r-later"), "cancelled");
    redisReply *err = cmd("HGET weft:run:r-later error");
    cr_assert_str_eq(err->str, "stop it, operator");
    freeReplyObject(err);
    cr_assert_eq(int_of("XLEN weft:dlq"), 0);
    system_down();
}

/* ---- tasks, drop, errors ---- */

Test(dlq_cli, rejected_task_drop_and_errors, .init = setup)
{
    system_up();
    /* A task naming a workflow the scheduler does not have: a failed run
     * and a dead letter with the task. */
    freeReplyObject(cmd("XADD weft:tasks * run r-nowf workflow nope task {}"));
    const char *dead = wait_dead("workflow 'nope' is invalid");
    char tid[64];
    snprintf(tid, sizeof(tid), "%s", dead);
    json_t *doc = dlq_list();
    json_t *e = json_array_get(json_object_get(doc, "entries"), 0);
    cr_assert_str_eq(jget(e, "kind"), "task");
    cr_assert_str_eq(jget(e, "origin"), "weft:tasks");
    cr_assert_str_eq(jget(e, "run"), "r-nowf");
    json_decref(doc);
    /* Requeuing it is allowed, and says it will not start the run. */
    struct res r = WEFT("dlq", "requeue", "--json", tid);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    doc = parse_json(r.out);
    json_t *done = json_array_get(json_object_get(doc, "requeued"), 0);
    cr_assert_str_eq(jget(done, "stream"), "weft:tasks");
    cr_assert_not_null(
        strstr(jget(done, "note"), "run r-nowf exists already (failed)"), "%s",
        r.out);
    char requeued_id[64];
    snprintf(requeued_id, sizeof(requeued_id), "%s", jget(done, "new_id"));
    json_decref(doc);
    res_free(&r);

    /* An entry without its message (written by an earlier version) is
     * listed but cannot be requeued. */
    redisReply *x = cmd("XADD weft:dlq * source events entry 1-2 run r "
                        "reason old");
    char oldid[64];
    snprintf(oldid, sizeof(oldid), "%s", x->str);
    freeReplyObject(x);
    r = WEFT("dlq", "requeue", oldid);
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "cannot be requeued: it does not carry "
                                     "the event's type"),
                       "%s", r.err);
    res_free(&r);
    r = WEFT("dlq", "list", "--limit", "1");
    cr_assert_eq(r.rc, 0);
    cr_assert_not_null(strstr(r.out, "[cannot requeue:"), "%s", r.out);
    res_free(&r);
    /* The requeued task was read and only acknowledged (its run
     * exists): no new dead letter, the run still failed. */
    wait_stream_done("weft:tasks", requeued_id);
    cr_assert_eq(int_of("XLEN weft:dlq"), 1);
    redisReply *st = cmd("HGET weft:run:r-nowf status");
    cr_assert_str_eq(st->str, "failed");
    freeReplyObject(st);

    /* drop, then drop again. */
    r = WEFT("dlq", "drop", oldid);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    char want[128];
    snprintf(want, sizeof(want), "dropped %s\n", oldid);
    cr_assert_str_eq(r.out, want);
    res_free(&r);
    cr_assert_eq(int_of("XLEN weft:dlq"), 0);
    r = WEFT("dlq", "drop", "--json", oldid);
    cr_assert_eq(r.rc, 1);
    doc = parse_json(r.out);
    cr_assert_eq(json_array_size(json_object_get(doc, "dropped")), 0);
    json_t *failed = json_array_get(json_object_get(doc, "failed"), 0);
    cr_assert_str_eq(jget(failed, "id"), oldid);
    cr_assert_not_null(strstr(jget(failed, "error"), "no DLQ entry"));
    json_decref(doc);
    res_free(&r);
    r = WEFT("dlq", "list");
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.out, "the DLQ is empty\n");
    res_free(&r);

    /* Bad ids and usage. */
    r = WEFT("dlq", "requeue", "12", "x-1");
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "'12' is not a stream entry id"), "%s",
                       r.err);
    cr_assert_not_null(strstr(r.err, "'x-1' is not a stream entry id"), "%s",
                       r.err);
    res_free(&r);
    r = WEFT("dlq", "requeue", "9-9");
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "no DLQ entry 9-9"), "%s", r.err);
    res_free(&r);
    const char *const usage[][4] = {
        {"dlq", NULL},
        {"dlq", "frobnicate", NULL},
        {"dlq", "requeue", NULL},
        {"dlq", "drop", NULL},
        {"dlq", "list", "extra", NULL},
        {"dlq", "requeue", "--limit", "3"},
    };
    for (size_t i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
        const char *args[6] = {0};
        for (size_t k = 0; k < 4 && usage[i][k]; k++)
            args[k] = usage[i][k];
        r = weft_argv(args);
        cr_assert_eq(r.rc, 2, "case %zu: %d %s", i, r.rc, r.err);
        cr_assert_str_eq(r.out, "");
        res_free(&r);
    }
    system_down();
}

/* A hostile event with more fields than a dead letter keeps: cut at 64
 * (dlq_truncated), listed, never requeued. */
Test(dlq_cli, an_event_with_too_many_fields_is_cut_and_kept_out, .init = setup)
{
    system_up();
    const char *argv[3 + 2 * 70];
    size_t n = 0;
    char names[70][16];
    argv[n++] = "XADD";
    argv[n++] = "weft:events";
    argv[n++] = "*";
    argv[n++] = "type";
    argv[n++] = "bogus";
    argv[n++] = "run";
    argv[n++] = "r-many";
    for (int i = 0; i < 68; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        argv[n++] = names[i];
        argv[n++] = "v";
    }
    redisReply *x = redisCommandArgv(rc, (int)n, argv, NULL);
    cr_assert(x != NULL && x->type == REDIS_REPLY_STRING);
    freeReplyObject(x);
    const char *dead = wait_dead("unknown event type");
    redisReply *d = cmd("XRANGE weft:dlq %s %s", dead, dead);
    const redisReply *f = d->element[0]->element[1];
    /* Five bookkeeping pairs, 64 of the message's, the mark. */
    cr_assert_eq(f->elements, 2 * (5 + 64 + 1));
    const char *trunc = field_of_reply(f, "dlq_truncated");
    cr_assert_not_null(trunc);
    cr_assert_str_eq(trunc, "1");
    freeReplyObject(d);
    struct res r = WEFT("dlq", "requeue", dead);
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "its message was cut"), "%s", r.err);
    res_free(&r);
    system_down();
}
