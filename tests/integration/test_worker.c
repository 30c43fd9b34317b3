/* test_worker.c - weft-worker against a real redis-server.
 *
 * The test plays the scheduler: it writes a run's header and steps hash,
 * XADDs signed jobs (or junk) to a queue and follows weft:events with a
 * blocking XREAD. Most tests run the real weft-worker binary; the ones
 * that need a job that does not finish by itself (timeouts, cancels,
 * an interrupted drain) run the loop in a forked child with handlers of
 * their own, through worker.h.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "alloc.h"
#include "handler.h"
#include "hmac.h"
#include "keys.h"
#include "num.h"
#include "procs.h"
#include "rconn.h"
#include "redis_fixture.h"
#include "redisurl.h"
#include "wire.h"
#include "worker.h"

#define KEY         "test-signing-key-0123456789"
#define WORKER_NAME "w1"
/* How long a test waits for an event that should come in milliseconds. */
#define WAIT_MS 5000

static struct redis_fixture fx;
static redisContext *rc;
static struct hmac_key hkey;
static pid_t wpid;
static char events_last[64];

/* ---- helpers ---------------------------------------------------------- */

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
    wpid = 0;
}

static void teardown(void)
{
    if (wpid > 0)
        procs_stop(wpid, SIGKILL, 1000);
    wpid = 0;
    if (rc != NULL)
        redisFree(rc);
    rc = NULL;
    redis_fixture_stop(&fx);
}

TestSuite(worker, .init = setup, .fini = teardown, .timeout = 60);

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "redis command failed: %s", rc->errstr);
    return r;
}

static long long cmd_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "reply type %d: %s", r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* HGET as a string in a rotating static buffer; "" when absent. */
static const char *hget(const char *key, const char *field)
{
    static char buf[4][256];
    static int slot;
    char *out = buf[slot++ % 4];
    redisReply *r = cmd("HGET %s %s", key, field);
    snprintf(out, 256, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return out;
}

static long long pending_count(const char *queue)
{
    redisReply *r = cmd("XPENDING weft:q:%s workers", queue);
    long long n = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER)
        n = r->element[0]->integer;
    freeReplyObject(r);
    return n;
}

/* A run with one step `step` queued at attempt 1 (what dispatch leaves). */
static void make_step(const char *run, const char *step, const char *status)
{
    freeReplyObject(cmd("HSET weft:run:%s status running", run));
    freeReplyObject(cmd("HSET weft:run:%s:steps %s %s %s:attempt 1", run, step,
                        status, step));
}

/* params: JSON object text, or NULL. */
static void encode_job_params(const char *run, const char *step,
                              const char *type, const char *queue,
                              uint64_t timeout_ms, const char *params,
                              char **body, size_t *len)
{
    struct wire_job j;
    memset(&j, 0, sizeof(j));
    j.run = (char *)run;
    j.step = (char *)step;
    j.name = (char *)step;
    j.type = (char *)type;
    j.queue = (char *)queue;
    j.attempt = 1;
    j.timeout_ms = timeout_ms;
    if (params != NULL) {
        j.params = json_loads(params, 0, NULL);
        cr_assert_not_null(j.params, "bad test params %s", params);
    }
    cr_assert_eq(wire_job_encode(&j, body, len), 0);
    json_decref(j.params);
}

static void encode_job(const char *run, const char *step, const char *type,
                       const char *queue, uint64_t timeout_ms, char **body,
                       size_t *len)
{
    struct wire_job j;
    memset(&j, 0, sizeof(j));
    j.run = (char *)run;
    j.step = (char *)step;
    j.name = (char *)step;
    j.type = (char *)type;
    j.queue = (char *)queue;
    j.attempt = 1;
    j.timeout_ms = timeout_ms;
    cr_assert_eq(wire_job_encode(&j, body, len), 0);
}

/* XADDs a job entry with the plain fields the scheduler writes. */
static void xadd_job(const char *queue, const char *run, const char *step,
                     const char *type, const char *body, size_t len,
                     const char *sig)
{
    freeReplyObject(cmd("XADD weft:q:%s * run %s step %s attempt 1 type %s "
                        "persona %s body %b sig %s",
                        queue, run, step, type, "", body, len, sig));
}

/* A queued step and its signed job on queue. */
static void add_job(const char *queue, const char *run, const char *step,
                    const char *type, uint64_t timeout_ms)
{
    char *body;
    size_t len;
    char sig[HMAC_HEX_LEN + 1];
    make_step(run, step, "queued");
    encode_job(run, step, type, queue, timeout_ms, &body, &len);
    hmac_sign_hex(&hkey, body, len, sig);
    xadd_job(queue, run, step, type, body, len, sig);
    weft_free(body);
}

/* A queued step and its signed noop job with params. */
static void add_noop(const char *run, const char *step, uint64_t timeout_ms,
                     const char *params)
{
    char *body;
    size_t len;
    char sig[HMAC_HEX_LEN + 1];
    make_step(run, step, "queued");
    encode_job_params(run, step, "noop", "default", timeout_ms, params, &body,
                      &len);
    hmac_sign_hex(&hkey, body, len, sig);
    xadd_job("default", run, step, "noop", body, len, sig);
    weft_free(body);
}

struct event {
    char run[160], step[160], attempt[16], status[32], worker[160];
    struct wire_result res;
};

static void copy_field(char *dst, size_t n, const redisReply *v)
{
    snprintf(dst, n, "%.*s", (int)v->len, v->str);
}

/* The next result event after the last one seen, waiting up to ms.
 * False on timeout. */
static bool next_event(int ms, struct event *ev)
{
    memset(ev, 0, sizeof(*ev));
    redisReply *r =
        cmd("XREAD COUNT 1 BLOCK %d STREAMS weft:events %s", ms, events_last);
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return false;
    }
    const redisReply *e = r->element[0]->element[1]->element[0];
    snprintf(events_last, sizeof(events_last), "%s", e->element[0]->str);
    const redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str;
        const redisReply *v = f->element[i + 1];
        if (strcmp(k, "type") == 0)
            cr_assert_str_eq(v->str, "result");
        else if (strcmp(k, "run") == 0)
            copy_field(ev->run, sizeof(ev->run), v);
        else if (strcmp(k, "step") == 0)
            copy_field(ev->step, sizeof(ev->step), v);
        else if (strcmp(k, "attempt") == 0)
            copy_field(ev->attempt, sizeof(ev->attempt), v);
        else if (strcmp(k, "status") == 0)
            copy_field(ev->status, sizeof(ev->status), v);
        else if (strcmp(k, "worker") == 0)
            copy_field(ev->worker, sizeof(ev->worker), v);
        else if (strcmp(k, "body") == 0)
            cr_assert_eq(wire_result_decode(v->str, v->len, &ev->res, NULL), 0);
    }
    freeReplyObject(r);
    cr_assert_str_eq(ev->status, wire_status_name(ev->res.status));
    return true;
}

static void expect_event(const char *run, const char *step, const char *status,
                         struct event *ev)
{
    cr_assert(next_event(WAIT_MS, ev), "no result for %s/%s", run, step);
    cr_assert_str_eq(ev->run, run);
    cr_assert_str_eq(ev->step, step);
    cr_assert_str_eq(ev->attempt, "1");
    cr_assert_str_eq(ev->status, status, "%s/%s: %s (%s)", run, step,
                     ev->status,
                     ev->res.message ? ev->res.message : "no message");
}

/* expect_event for a test that needs only the status. */
static void expect_status(const char *run, const char *step, const char *status)
{
    struct event ev;
    expect_event(run, step, status, &ev);
    wire_result_deinit(&ev.res);
}

static void start_worker(const char *const extra[])
{
    char path[512], log[256], url[200];
    const char *argv[16];
    int n = 0;
    argv[n++] = procs_binary("worker/weft-worker", path, sizeof(path));
    argv[n++] = "--name=" WORKER_NAME;
    for (int i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    snprintf(log, sizeof(log), "%s/worker.log", fx.dir);
    snprintf(url, sizeof(url), "REDIS_URL=%s", fx.url);
    const char *env[] = {url, "WEFT_HMAC_KEY=" KEY, NULL};
    wpid = procs_spawn(argv, env, log);
    cr_assert_gt(wpid, 0);
}

/* Sends sig and expects a clean exit (status 0). */
static void stop_worker(int sig)
{
    int st = procs_stop(wpid, sig, 10000);
    wpid = 0;
    cr_assert(WIFEXITED(st), "worker did not exit (status %d)", st);
    cr_assert_eq(WEXITSTATUS(st), 0);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls a steps-hash field until it equals want: another process's state
 * change has no event to wait on. */
static void wait_step(const char *run, const char *field, const char *want)
{
    char key[200];
    snprintf(key, sizeof(key), "weft:run:%s:steps", run);
    long long end = now_ms() + WAIT_MS;
    while (strcmp(hget(key, field), want) != 0) {
        cr_assert_lt(now_ms(), end, "%s never became %s (is %s)", field, want,
                     hget(key, field));
        sleep_ms(5);
    }
}

/* ---- the binary ------------------------------------------------------- */

Test(worker, runs_a_noop_job_and_reports_success)
{
    add_job("default", "r1", "s1", "noop", 0);
    start_worker(NULL);
    struct event ev;
    expect_event("r1", "s1", "success", &ev);
    cr_assert_str_eq(ev.worker, WORKER_NAME);
    cr_assert_gt(ev.res.finished_ms, 0);
    cr_assert_geq(ev.res.finished_ms, ev.res.started_ms);
    wire_result_deinit(&ev.res);
    /* Acknowledged and deleted in the same MULTI as the result. */
    cr_assert_eq(cmd_int("XLEN weft:q:default"), 0);
    cr_assert_eq(pending_count("default"), 0);
    /* The start transition ran with this worker's name. */
    cr_assert_str_eq(hget("weft:run:r1:steps", "s1"), "running");
    cr_assert_str_eq(hget("weft:run:r1:steps", "s1:worker"), WORKER_NAME);
    cr_assert_eq(cmd_int("XLEN weft:run:r1:history"), 1);
    stop_worker(SIGTERM);
}

Test(worker, noop_params_script_the_outcome)
{
    start_worker(NULL);
    add_noop("r1", "s1", 0,
             "{\"result\": {\"a\": [1, 2]}, "
             "\"verdict\": \"pass\"}");
    struct event ev;
    expect_event("r1", "s1", "success", &ev);
    cr_assert_str_eq(ev.res.verdict, "pass");
    char *got = json_dumps(ev.res.result, JSON_COMPACT);
    cr_assert_str_eq(got, "{\"a\":[1,2]}");
    weft_free(got);
    wire_result_deinit(&ev.res);

    add_noop("r2", "s1", 0, "{\"fail_until\": 2}");
    expect_status("r2", "s1", "error");
    add_noop("r3", "s1", 0, "{\"fail_until\": 1}");
    expect_status("r3", "s1", "success");
    add_noop("r4", "s1", 0, "{\"delay_ms\": \"soon\"}");
    expect_event("r4", "s1", "fatal", &ev);
    cr_assert_not_null(strstr(ev.res.message, "delay_ms"));
    wire_result_deinit(&ev.res);
    add_noop("r5", "s1", 0, "{\"verdict\": 3}");
    expect_status("r5", "s1", "fatal");
    add_noop("r6", "s1", 0, "{\"delay_ms\": 50}");
    expect_event("r6", "s1", "success", &ev);
    cr_assert_geq(ev.res.finished_ms - ev.res.started_ms, 50);
    wire_result_deinit(&ev.res);
    stop_worker(SIGTERM);
}

Test(worker, times_out_a_slow_noop)
{
    start_worker(NULL);
    add_noop("r1", "s1", 200, "{\"delay_ms\": 60000}");
    struct event ev;
    expect_event("r1", "s1", "timeout", &ev);
    cr_assert_str_eq(ev.res.message, "timed out after 200 ms");
    cr_assert_geq(ev.res.finished_ms - ev.res.started_ms, 200);
    wire_result_deinit(&ev.res);
    cr_assert_eq(pending_count("default"), 0);
    stop_worker(SIGTERM);
}

Test(worker, sigterm_waits_for_running_jobs_within_the_grace)
{
    start_worker(NULL);
    add_noop("r1", "s1", 0, "{\"delay_ms\": 300}");
    wait_step("r1", "s1", "running");
    long long t0 = now_ms();
    stop_worker(SIGTERM);
    cr_assert_geq(now_ms() - t0, 200, "exited before the job finished");
    /* Finished, reported and acknowledged before the exit. */
    expect_status("r1", "s1", "success");
    cr_assert_eq(pending_count("default"), 0);
}

Test(worker, serves_every_queue_it_is_given)
{
    start_worker((const char *const[]){"--queues=alpha,beta", NULL});
    add_job("beta", "r1", "s1", "noop", 0);
    expect_status("r1", "s1", "success");
    add_job("alpha", "r2", "s1", "noop", 0);
    expect_status("r2", "s1", "success");
    cr_assert_eq(cmd_int("XLEN weft:q:alpha") + cmd_int("XLEN weft:q:beta"), 0);
    stop_worker(SIGTERM);
}

Test(worker, rejects_a_forged_signature_to_the_dlq)
{
    char *body;
    size_t len;
    char sig[HMAC_HEX_LEN + 1];
    struct hmac_key other;
    cr_assert_eq(hmac_key_set(&other, "another-key-0123456789", 22, NULL), 0);
    make_step("r1", "s1", "queued");
    encode_job("r1", "s1", "noop", "default", 0, &body, &len);
    hmac_sign_hex(&other, body, len, sig);
    xadd_job("default", "r1", "s1", "noop", body, len, sig);
    start_worker(NULL);

    struct event ev;
    expect_event("r1", "s1", "invalid", &ev);
    cr_assert_str_eq(ev.res.message, "bad signature");
    wire_result_deinit(&ev.res);
    redisReply *r = cmd("XRANGE weft:dlq - +");
    cr_assert_eq(r->elements, 1);
    const redisReply *f = r->element[0]->element[1];
    bool saw_reason = false, saw_body = false, saw_sig = false;
    bool saw_origin = false, saw_by = false, saw_at = false, saw_run = false;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        if (strcmp(k, "dlq_reason") == 0)
            saw_reason = strcmp(v, "bad signature") == 0;
        if (strcmp(k, "dlq_origin") == 0)
            saw_origin = strcmp(v, "weft:q:default") == 0;
        if (strcmp(k, "dlq_by") == 0)
            saw_by = strlen(v) > 0;
        if (strcmp(k, "dlq_at") == 0)
            saw_at = strtoll(v, NULL, 10) > 1600000000000LL;
        if (strcmp(k, "run") == 0)
            saw_run = strcmp(v, "r1") == 0;
        if (strcmp(k, "sig") == 0)
            saw_sig = strcmp(v, sig) == 0;
        if (strcmp(k, "body") == 0)
            saw_body = f->element[i + 1]->len == len &&
                       memcmp(f->element[i + 1]->str, body, len) == 0;
    }
    freeReplyObject(r);
    cr_expect(saw_reason);
    cr_expect(saw_origin && saw_by && saw_at, "the bookkeeping fields");
    cr_expect(saw_run && saw_sig, "the job's own fields, as they were");
    cr_expect(saw_body, "the DLQ keeps the original body");
    weft_free(body);
    /* Never started: the step is still queued, the entry gone. */
    cr_assert_str_eq(hget("weft:run:r1:steps", "s1"), "queued");
    cr_assert_eq(cmd_int("XLEN weft:q:default"), 0);
    cr_assert_eq(pending_count("default"), 0);
    stop_worker(SIGTERM);
}

Test(worker, dead_letters_garbage_entries_and_keeps_serving)
{
    char *body;
    size_t len;
    char sig[HMAC_HEX_LEN + 1], junk_sig[HMAC_HEX_LEN + 1];
    static const char junk[] = "\xc1\xff\x00\x93garbage";
    hmac_sign_hex(&hkey, junk, sizeof(junk) - 1, junk_sig);
    encode_job("r9", "s9", "noop", "default", 0, &body, &len);
    hmac_sign_hex(&hkey, body, len, sig);
    char *huge = weft_malloc(64 * 1024);
    memset(huge, 'x', 64 * 1024);

    /* 1. no body; 2. signed binary junk; 3. unrelated fields only;
     * 4. unsigned job; 5. a huge run field; 6. plain fields that disagree
     * with a signed body; 7. a duplicated field; 8. a job for another
     * queue's body. */
    freeReplyObject(cmd("XADD weft:q:default * run r2 step s2 attempt 1 "
                        "sig %s",
                        sig));
    freeReplyObject(cmd("XADD weft:q:default * run r3 step s3 attempt 1 "
                        "body %b sig %s",
                        junk, sizeof(junk) - 1, junk_sig));
    freeReplyObject(cmd("XADD weft:q:default * foo bar"));
    freeReplyObject(cmd("XADD weft:q:default * run r9 step s9 attempt 1 "
                        "type noop body %b",
                        body, len));
    freeReplyObject(cmd("XADD weft:q:default * run %b step s9 attempt 1 "
                        "type noop body %b sig %s",
                        huge, (size_t)(64 * 1024), body, len, sig));
    freeReplyObject(cmd("XADD weft:q:default * run r9 step other attempt 1 "
                        "type noop body %b sig %s",
                        body, len, sig));
    freeReplyObject(cmd("XADD weft:q:default * run r9 step s9 attempt 1 "
                        "type noop body %b sig %s sig %s",
                        body, len, sig, sig));
    weft_free(body);
    encode_job("r9", "s9", "noop", "git", 0, &body, &len);
    hmac_sign_hex(&hkey, body, len, sig);
    xadd_job("default", "r9", "s9", "noop", body, len, sig);
    weft_free(body);
    weft_free(huge);
    add_job("default", "good", "s1", "noop", 0);
    start_worker(NULL);

    /* Results come for the entries that name a step, then the good job. */
    struct event ev;
    int invalid = 0;
    for (;;) {
        cr_assert(next_event(WAIT_MS, &ev), "good job never reported");
        if (strcmp(ev.run, "good") == 0)
            break;
        cr_assert_str_eq(ev.status, "invalid");
        cr_assert_not_null(ev.res.message);
        invalid++;
        wire_result_deinit(&ev.res);
    }
    cr_assert_str_eq(ev.status, "success");
    wire_result_deinit(&ev.res);
    /* All but 3 (no step named) and 5 (its run is not an id). */
    cr_assert_eq(invalid, 6, "invalid results: %d", invalid);
    cr_assert_eq(cmd_int("XLEN weft:dlq"), 8);
    redisReply *r = cmd("XRANGE weft:dlq - +");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        bool has_reason = false;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "dlq_reason") == 0)
                has_reason = f->element[k + 1]->len > 0;
        }
        cr_expect(has_reason, "DLQ entry %zu has no reason", i);
    }
    freeReplyObject(r);
    cr_assert_eq(cmd_int("XLEN weft:q:default"), 0);
    cr_assert_eq(pending_count("default"), 0);
    stop_worker(SIGTERM);
}

Test(worker, dead_letters_a_body_past_the_wire_limit)
{
    /* One byte past WIRE_MAX_BODY: not copied, not hashed, not decoded. */
    size_t len = WIRE_MAX_BODY + 1;
    char *big = weft_malloc(len);
    memset(big, 0x90, len);
    make_step("r1", "s1", "queued");
    xadd_job("default", "r1", "s1", "noop", big, len, "00");
    weft_free(big);
    start_worker(NULL);
    struct event ev;
    expect_event("r1", "s1", "invalid", &ev);
    cr_assert_str_eq(ev.res.message, "body too large");
    wire_result_deinit(&ev.res);
    cr_assert_eq(cmd_int("XLEN weft:dlq"), 1);
    cr_assert_eq(cmd_int("XLEN weft:q:default"), 0);
    /* Still serving. */
    add_job("default", "r2", "s1", "noop", 0);
    expect_status("r2", "s1", "success");
    stop_worker(SIGTERM);
}

Test(worker, acks_a_stale_job_without_running_it)
{
    char *body;
    size_t len;
    char sig[HMAC_HEX_LEN + 1];
    make_step("r1", "s1", "skipped");
    encode_job("r1", "s1", "noop", "default", 0, &body, &len);
    hmac_sign_hex(&hkey, body, len, sig);
    xadd_job("default", "r1", "s1", "noop", body, len, sig);
    weft_free(body);
    add_job("default", "r2", "s1", "noop", 0);
    start_worker(NULL);

    /* The good job's result comes after the stale job was dropped (one
     * connection carries both, in order). */
    expect_status("r2", "s1", "success");
    cr_assert_eq(cmd_int("XLEN weft:events"), 1);
    cr_assert_str_eq(hget("weft:run:r1:steps", "s1"), "skipped");
    cr_assert_eq(cmd_int("XLEN weft:q:default"), 0);
    cr_assert_eq(pending_count("default"), 0);
    stop_worker(SIGTERM);
}

Test(worker, processes_200_jobs_exactly_once_with_concurrency_8)
{
    enum { N = 200 };
    start_worker((const char *const[]){"--concurrency=8", NULL});
    for (int i = 0; i < N; i++) {
        char run[32];
        snprintf(run, sizeof(run), "run-%d", i);
        add_job("default", run, "s", "noop", 0);
    }
    static bool seen[N];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < N; i++) {
        struct event ev;
        cr_assert(next_event(WAIT_MS, &ev), "only %d results", i);
        cr_assert_str_eq(ev.status, "success");
        int64_t k = -1;
        num_parse_i64(ev.run + 4, strlen(ev.run + 4), 0, N - 1, &k);
        cr_assert(k >= 0 && !seen[k], "unknown or duplicate %s", ev.run);
        seen[k] = true;
        wire_result_deinit(&ev.res);
    }
    struct event extra;
    cr_assert_not(next_event(200, &extra), "a job was reported twice");
    cr_assert_eq(cmd_int("XLEN weft:q:default"), 0);
    cr_assert_eq(pending_count("default"), 0);
    stop_worker(SIGTERM);
}

Test(worker, reclaims_a_job_a_dead_worker_left_pending)
{
    add_job("default", "r1", "s1", "noop", 0);
    /* A worker that claims the job and dies. */
    freeReplyObject(cmd("XGROUP CREATE weft:q:default workers 0 MKSTREAM"));
    freeReplyObject(
        cmd("XREADGROUP GROUP workers ghost COUNT 1 STREAMS weft:q:default >"));
    cr_assert_eq(pending_count("default"), 1);
    start_worker((const char *const[]){"--visibility=200", NULL});

    expect_status("r1", "s1", "success");
    cr_assert_eq(pending_count("default"), 0);
    cr_assert_str_eq(hget("weft:run:r1:steps", "s1:worker"), WORKER_NAME);
    stop_worker(SIGTERM);
}

/* A reclaim round that found every slot busy runs again when a slot
 * frees, before the next read. When that round finds nothing, the worker
 * must still go back to reading: it once stayed idle for good. */
Test(worker, reads_again_after_a_reclaim_round_that_waited_for_a_slot)
{
    /* Reclaim rounds every 50 ms, all while the one slot is busy. */
    start_worker(
        (const char *const[]){"--concurrency=1", "--visibility=200", NULL});
    add_noop("r1", "s1", 0, "{\"delay_ms\": 400}");
    expect_status("r1", "s1", "success");
    add_job("default", "r2", "s1", "noop", 0);
    expect_status("r2", "s1", "success");
    stop_worker(SIGTERM);
}

Test(worker, reclaim_keeps_the_deadline_of_the_attempt)
{
    add_job("default", "r1", "s1", "noop", 60000);
    /* A worker that started the job (its start transition set the
     * deadline) and died. */
    freeReplyObject(cmd("XGROUP CREATE weft:q:default workers 0 MKSTREAM"));
    freeReplyObject(
        cmd("XREADGROUP GROUP workers ghost COUNT 1 STREAMS weft:q:default >"));
    freeReplyObject(cmd("HSET weft:run:r1:steps s1 running"));
    freeReplyObject(cmd("ZADD weft:deadlines 1234567 r1|s1|1"));
    start_worker((const char *const[]){"--visibility=200", NULL});

    expect_status("r1", "s1", "success");
    /* Start-to-close counts from the attempt's first start: the
     * scheduler still fails the attempt at the first deadline. */
    redisReply *r = cmd("ZSCORE weft:deadlines r1|s1|1");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_str_eq(r->str, "1234567");
    freeReplyObject(r);
    cr_assert_eq(cmd_int("ZCARD weft:deadlines"), 1);
    stop_worker(SIGTERM);
}

Test(worker, dead_letters_a_job_past_its_delivery_limit)
{
    add_job("default", "r1", "s1", "noop", 0);
    freeReplyObject(cmd("XGROUP CREATE weft:q:default workers 0 MKSTREAM"));
    redisReply *r =
        cmd("XREADGROUP GROUP workers ghost COUNT 1 STREAMS weft:q:default >");
    char id[64];
    snprintf(id, sizeof(id), "%s",
             r->element[0]->element[1]->element[0]->element[0]->str);
    freeReplyObject(r);
    /* Delivered 3 times so far; the reclaim makes it 4, past 3. */
    freeReplyObject(cmd("XCLAIM weft:q:default workers ghost 0 %s "
                        "RETRYCOUNT 3",
                        id));
    start_worker(
        (const char *const[]){"--visibility=200", "--delivery-limit=3", NULL});

    struct event ev;
    expect_event("r1", "s1", "error", &ev);
    cr_assert_str_eq(ev.res.message, "delivery limit exceeded");
    wire_result_deinit(&ev.res);
    cr_assert_eq(cmd_int("XLEN weft:dlq"), 1);
    cr_assert_eq(cmd_int("XLEN weft:q:default"), 0);
    cr_assert_eq(pending_count("default"), 0);
    /* Never started. */
    cr_assert_str_eq(hget("weft:run:r1:steps", "s1"), "queued");
    stop_worker(SIGTERM);
}

Test(worker, keeps_serving_after_redis_restarts)
{
    start_worker(NULL);
    add_job("default", "r1", "s1", "noop", 0);
    expect_status("r1", "s1", "success");

    /* Without persistence the restart loses everything, groups too. */
    redisFree(rc);
    rc = NULL;
    cr_assert_eq(redis_fixture_restart(&fx), 0);
    struct redis_url u;
    cr_assert_eq(redis_url_parse(fx.url, &u, NULL), 0);
    rc = rconn_connect_sync(&u, 2000, NULL);
    redis_url_deinit(&u);
    cr_assert_not_null(rc);
    snprintf(events_last, sizeof(events_last), "0-0");

    add_job("default", "r2", "s1", "noop", 0);
    expect_status("r2", "s1", "success");
    stop_worker(SIGTERM);
}

Test(worker, drains_on_sigterm_and_exits_zero)
{
    start_worker(NULL);
    add_job("default", "r1", "s1", "noop", 0);
    expect_status("r1", "s1", "success");
    long long t0 = now_ms();
    stop_worker(SIGTERM);
    /* Idle: no job to wait for, so no grace period spent. */
    cr_assert_lt(now_ms() - t0, 1000);
}

Test(worker, refuses_to_start_without_a_signing_key)
{
    char path[512], *err = NULL;
    const char *argv[] = {
        procs_binary("worker/weft-worker", path, sizeof(path)), NULL};
    const char *env[] = {"WEFT_HMAC_KEY=", "WEFT_HMAC_KEY_FILE=", NULL};
    int code = procs_run(argv, env, NULL, &err);
    cr_assert_eq(code, 2);
    cr_assert_not_null(strstr(err, "WEFT_HMAC_KEY"), "stderr: %s", err);
    free(err);
}

Test(worker, rejects_bad_flags)
{
    char path[512];
    const char *bin = procs_binary("worker/weft-worker", path, sizeof(path));
    const char *env[] = {"WEFT_HMAC_KEY=" KEY, NULL};
    const char *cases[][3] = {
        {bin, "--concurrency=0", NULL},    {bin, "--concurrency=4097", NULL},
        {bin, "--visibility=99", NULL},    {bin, "--queues=a,,b", NULL},
        {bin, "--queues=bad:name", NULL},  {bin, "--delivery-limit=x", NULL},
        {bin, "--redis=rediss://x", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int code = procs_run(cases[i], env, NULL, NULL);
        cr_expect_eq(code, 2, "%s: exit %d", cases[i][1], code);
    }
}

/* ---- the loop in-process, with test handlers -------------------------- */

/* "hang": never finishes by itself; cancel completes it at once. */
static int hang_start(struct job *j)
{
    (void)j;
    return 0;
}

static void hang_cancel(struct job *j)
{
    struct wire_result r;
    memset(&r, 0, sizeof(r));
    r.status = WIRE_ERROR;
    r.message = weft_strdup("killed");
    job_complete(j, &r);
}

/* "slow": finishes after a few ms; counts jobs running at once. */
static int slow_now, slow_max;

static void slow_done(evutil_socket_t fd, short what, void *ud)
{
    struct job *j = ud;
    struct event *ev = job_data(j);
    struct wire_result r;
    (void)fd;
    (void)what;
    event_free(ev);
    slow_now--;
    memset(&r, 0, sizeof(r));
    r.status = WIRE_SUCCESS;
    r.result = json_pack("{s:i}", "n", 1);
    job_complete(j, &r);
}

static int slow_start(struct job *j)
{
    struct timeval tv = {0, 5000};
    struct event *ev = evtimer_new(job_base(j), slow_done, j);
    if (ev == NULL)
        return WEFT_ENOMEM;
    job_set_data(j, ev);
    evtimer_add(ev, &tv);
    if (++slow_now > slow_max)
        slow_max = slow_now;
    return 0;
}

static void slow_cancel(struct job *j)
{
    struct event *ev = job_data(j);
    evtimer_del(ev);
    slow_done(-1, 0, j);
}

/* "broken": refuses to start. */
static int broken_start(struct job *j)
{
    (void)j;
    return WEFT_EIO;
}

static const struct handler handler_hang = {"hang", hang_start, hang_cancel,
                                            NULL};
static const struct handler handler_slow = {"slow", slow_start, slow_cancel,
                                            NULL};
static const struct handler handler_broken = {"broken", broken_start,
                                              hang_cancel, NULL};
static const struct handler *const test_handlers[] = {
    &handler_noop, &handler_hang, &handler_slow, &handler_broken, NULL};

struct child {
    struct event_base *base;
    struct worker *w;
    uint32_t grace_ms;
};

static void child_stopped(void *ud)
{
    struct child *c = ud;
    event_base_loopexit(c->base, NULL);
}

static void child_signal(evutil_socket_t sig, short what, void *ud)
{
    struct child *c = ud;
    (void)what;
    /* SIGUSR1 stands in for a message on the cancel channel. */
    if (sig == SIGUSR1)
        worker_cancel(c->w, "r1|s1|1", 7);
    else
        worker_stop(c->w, c->grace_ms, child_stopped, c);
}

/* Runs the loop in a child with test_handlers until SIGTERM; the child
 * writes its stats to the hash `test:stats` and exits 0. */
static void start_loop(uint32_t concurrency, uint32_t grace_ms)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid > 0) {
        wpid = pid;
        return;
    }
    struct redis_url u;
    struct keys keys;
    const char *queues[] = {"default"};
    struct worker_config cfg;
    struct weft_error err;
    struct child c;
    char log[256];
    snprintf(log, sizeof(log), "%s/loop.log", fx.dir);
    if (freopen(log, "a", stdout) == NULL ||
        redis_url_parse(fx.url, &u, NULL) != 0 || keys_init(&keys, NULL))
        _exit(10);
    memset(&cfg, 0, sizeof(cfg));
    cfg.url = &u;
    cfg.keys = &keys;
    cfg.queues = queues;
    cfg.nqueues = 1;
    cfg.name = WORKER_NAME;
    cfg.concurrency = concurrency;
    cfg.visibility_ms = 30000;
    cfg.delivery_limit = 5;
    cfg.hmac = &hkey;
    cfg.handlers = test_handlers;
    c.base = event_base_new();
    c.grace_ms = grace_ms;
    c.w = worker_new(c.base, &cfg, &err);
    if (c.w == NULL)
        _exit(11);
    struct event *sig = evsignal_new(c.base, SIGTERM, child_signal, &c);
    struct event *usr = evsignal_new(c.base, SIGUSR1, child_signal, &c);
    event_add(sig, NULL);
    event_add(usr, NULL);
    event_base_dispatch(c.base);
    const struct worker_stats *st = worker_stats(c.w);
    redisContext *sc = rconn_connect_sync(&u, 2000, NULL);
    if (sc == NULL)
        _exit(12);
    redisReply *r = redisCommand(
        sc, "HSET test:stats max %d succeeded %llu failed %llu held %u",
        slow_max, (unsigned long long)st->succeeded,
        (unsigned long long)st->failed, (unsigned)st->held);
    freeReplyObject(r);
    redisFree(sc);
    event_free(sig);
    event_free(usr);
    worker_free(c.w);
    event_base_free(c.base);
    redis_url_deinit(&u);
#ifdef __SANITIZE_ADDRESS__
    /* _exit skips LeakSanitizer's exit-time check: run it here. */
    if (__lsan_do_recoverable_leak_check() != 0)
        _exit(13);
#endif
    _exit(0);
}

Test(worker, times_out_a_job_that_overruns)
{
    start_loop(4, 1000);
    add_job("default", "r1", "s1", "hang", 200);
    long long t0 = now_ms();
    struct event ev;
    expect_event("r1", "s1", "timeout", &ev);
    long long took = now_ms() - t0;
    cr_assert_geq(took, 150);
    cr_assert_lt(took, 2000);
    cr_assert_str_eq(ev.res.message, "timed out after 200 ms: killed");
    wire_result_deinit(&ev.res);
    cr_assert_eq(pending_count("default"), 0);
    /* The deadline the start transition recorded: started + timeout +
     * slack, so the worker's own timeout reports first. */
    cr_assert_eq(cmd_int("ZCARD weft:deadlines"), 1);
    stop_worker(SIGTERM);
}

Test(worker, cancels_a_running_job_when_its_step_is_cancelled)
{
    start_loop(4, 1000);
    add_job("default", "r1", "s1", "hang", 0);
    wait_step("r1", "s1", "running");
    /* What cancel.lua does: mark the step, then publish. */
    freeReplyObject(cmd("HSET weft:run:r1:steps s1 cancelled"));
    freeReplyObject(cmd("PUBLISH weft:cancel r1|s1|1"));
    struct event ev;
    expect_event("r1", "s1", "cancelled", &ev);
    cr_assert_str_eq(ev.res.message, "cancelled: killed");
    wire_result_deinit(&ev.res);
    stop_worker(SIGTERM);
}

Test(worker, cancels_a_running_job_named_on_the_cancel_channel)
{
    start_loop(4, 1000);
    add_job("default", "r0", "s1", "hang", 0);
    add_job("default", "r1", "s1", "hang", 0);
    wait_step("r1", "s1", "running");
    wait_step("r0", "s1", "running");
    long long t0 = now_ms();
    kill(wpid, SIGUSR1);
    struct event ev;
    expect_event("r1", "s1", "cancelled", &ev);
    /* Well before the steps-hash poll could have noticed anything (the
     * step is still running there). */
    cr_assert_lt(now_ms() - t0, 500);
    wire_result_deinit(&ev.res);
    /* Only that job: r0 keeps running until the drain cancels it. */
    cr_assert_not(next_event(100, &ev));
    stop_worker(SIGTERM);
}

Test(worker, reports_a_handler_that_cannot_start)
{
    start_loop(4, 1000);
    add_job("default", "r1", "s1", "broken", 0);
    struct event ev;
    expect_event("r1", "s1", "error", &ev);
    cr_assert_not_null(strstr(ev.res.message, "could not start"));
    wire_result_deinit(&ev.res);
    add_job("default", "r2", "s1", "mystery", 0);
    expect_event("r2", "s1", "fatal", &ev);
    cr_assert_not_null(strstr(ev.res.message, "no handler"));
    wire_result_deinit(&ev.res);
    stop_worker(SIGTERM);
}

Test(worker, never_runs_more_jobs_than_its_concurrency)
{
    enum { N = 60 };
    start_loop(4, 1000);
    for (int i = 0; i < N; i++) {
        char run[32];
        snprintf(run, sizeof(run), "run-%d", i);
        add_job("default", run, "s", "slow", 0);
    }
    for (int i = 0; i < N; i++) {
        struct event ev;
        cr_assert(next_event(WAIT_MS, &ev), "only %d results", i);
        cr_assert_str_eq(ev.status, "success");
        wire_result_deinit(&ev.res);
    }
    stop_worker(SIGTERM);
    cr_assert_str_eq(hget("test:stats", "max"), "4");
    cr_assert_str_eq(hget("test:stats", "succeeded"), "60");
    cr_assert_str_eq(hget("test:stats", "held"), "0");
}

Test(worker, leaves_jobs_pending_when_the_grace_period_ends)
{
    start_loop(4, 100);
    add_job("default", "r1", "s1", "hang", 0);
    wait_step("r1", "s1", "running");
    long long t0 = now_ms();
    stop_worker(SIGTERM);
    cr_assert_lt(now_ms() - t0, 2000);
    /* Cancelled, not reported, not acknowledged: another worker takes it
     * over after the visibility timeout. */
    cr_assert_eq(cmd_int("XLEN weft:events"), 0);
    cr_assert_eq(cmd_int("XLEN weft:q:default"), 1);
    cr_assert_eq(pending_count("default"), 1);
    cr_assert_str_eq(hget("test:stats", "held"), "0");
}

Test(worker, finishes_running_jobs_before_exiting_on_sigterm)
{
    start_loop(4, 5000);
    for (int i = 0; i < 8; i++) {
        char run[32];
        snprintf(run, sizeof(run), "run-%d", i);
        add_job("default", run, "s", "slow", 0);
    }
    wait_step("run-0", "s", "running");
    stop_worker(SIGTERM);
    /* Whatever it had claimed it finished and reported. */
    long long reported = cmd_int("XLEN weft:events");
    cr_assert_gt(reported, 0);
    cr_assert_eq(pending_count("default"), 0);
    cr_assert_eq(cmd_int("XLEN weft:q:default"), 8 - reported);
}
