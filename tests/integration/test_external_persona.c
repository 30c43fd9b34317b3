/* test_external_persona.c - a persona served by another language: the
 * example workflows/examples/external_persona.py (Python, redis and
 * msgpack) serves the queue `external-reviewer` directly, with no
 * weft-worker, against a real redis-server and weft-scheduler.
 *
 * Runs are submitted the way `weft submit` does and followed on their
 * history stream (blocking XREAD: no sleeping), as in test_runtime.c.
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

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "diag.h"
#include "procs.h"
#include "rconn.h"
#include "redis_fixture.h"
#include "runs.h"
#include "redisurl.h"
#include "wfdef.h"

#define KEY     "test-signing-key-0123456789"
#define PYTHON  "/usr/bin/python3" /* where python3-redis/-msgpack live */
#define EXAMPLE WEFT_SOURCE_ROOT "/workflows/examples/external_persona.py"
#define QUEUE   "external-reviewer"

static struct redis_fixture fx;
static redisContext *rc;
static pid_t sched_pid, py_pid;
static char env_url[160], env_key[64] = "WEFT_HMAC_KEY=" KEY;

static void setup(void)
{
    weft_alloc_init();
}

static void teardown(void)
{
    if (py_pid > 0)
        procs_stop(py_pid, SIGKILL, 5000);
    if (sched_pid > 0)
        procs_stop(sched_pid, SIGTERM, 5000);
    py_pid = sched_pid = 0;
    if (rc)
        redisFree(rc);
    rc = NULL;
    redis_fixture_stop(&fx);
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "redis command failed: %s", rc->errstr);
    return r;
}

static pid_t spawn(const char *const argv[], const char *logname)
{
    char log[256];
    snprintf(log, sizeof(log), "%s/%s.log", fx.dir, logname);
    const char *env[] = {env_url, env_key, NULL};
    pid_t pid = procs_spawn(argv, env, log);
    cr_assert_gt(pid, 0, "cannot start %s", argv[0]);
    return pid;
}

static void start_system(void)
{
    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
    snprintf(env_url, sizeof(env_url), "REDIS_URL=%s", fx.url);
    struct redis_url u;
    cr_assert_eq(redis_url_parse(fx.url, &u, NULL), 0);
    rc = rconn_connect_sync(&u, 2000, NULL);
    redis_url_deinit(&u);
    cr_assert_not_null(rc);

    char bin[512];
    const char *sargv[] = {
        procs_binary("scheduler/weft-scheduler", bin, sizeof(bin)),
        "--name=sched-0", NULL};
    sched_pid = spawn(sargv, "scheduler");
    const char *pargv[] = {PYTHON,   EXAMPLE, "--queue", QUEUE,
                           "--name", "py-1",  NULL};
    py_pid = spawn(pargv, "python");
}

static void submit(const char *yaml, const char *run)
{
    cr_assert_eq(runs_submit(rc, yaml, "{}", run), 0);
}

/* The value of field name in a stream entry's field array, or NULL. */
static const char *entry_field(const redisReply *f, const char *name)
{
    for (size_t k = 0; k + 1 < f->elements; k += 2)
        if (strcmp(f->element[k]->str, name) == 0)
            return f->element[k + 1]->str;
    return NULL;
}

/* The run's final status (static buffer), or "timeout". */
static const char *wait_run(const char *run, int timeout_s)
{
    static char status[32];
    return runs_wait(rc, run, timeout_s, status, sizeof(status));
}

/* Waits for a weft:dlq entry from our queue; returns its reason (static
 * buffer) or "timeout". */
static const char *wait_dlq(int timeout_s)
{
    static char reason[128];
    char last[64] = "0";
    time_t end = time(NULL) + timeout_s;
    while (time(NULL) < end) {
        redisReply *r =
            cmd("XREAD COUNT 100 BLOCK 1000 STREAMS weft:dlq %s", last);
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0; i < entries->elements; i++) {
                redisReply *e = entries->element[i];
                snprintf(last, sizeof(last), "%s", e->element[0]->str);
                const char *q = entry_field(e->element[1], "dlq_origin");
                const char *why = entry_field(e->element[1], "dlq_reason");
                if (q && why && strcmp(q, "weft:q:" QUEUE) == 0) {
                    snprintf(reason, sizeof(reason), "%s", why);
                    freeReplyObject(r);
                    return reason;
                }
            }
        }
        freeReplyObject(r);
    }
    return "timeout";
}

static char *hash_field(const char *key, const char *field)
{
    static char buf[4][1024];
    static int slot;
    redisReply *r = cmd("HGET %s %s", key, field);
    char *out = buf[slot++ % 4];
    snprintf(out, 1024, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return out;
}

TestSuite(external_persona, .init = setup, .fini = teardown, .timeout = 120);

static const char *approve_yaml = "name: external-approve\n"
                                  "steps:\n"
                                  "  - id: ext-review\n"
                                  "    type: persona-request\n"
                                  "    persona: " QUEUE "\n";

static const char *reject_yaml = "name: external-reject\n"
                                 "steps:\n"
                                 "  - id: ext-review\n"
                                 "    type: persona-request\n"
                                 "    persona: " QUEUE "\n"
                                 "    params: {reject: true}\n";

Test(external_persona, python_worker_serves_the_queue_and_rejects_forgeries)
{
    start_system();
    submit(approve_yaml, "ext-1");
    submit(reject_yaml, "ext-2");
    cr_assert_str_eq(wait_run("ext-1", 30), "success");
    cr_assert_str_eq(wait_run("ext-2", 30), "success");
    cr_assert_str_eq(hash_field("weft:run:ext-1:steps", "ext-review"),
                     "success");
    cr_assert_str_eq(hash_field("weft:run:ext-1:state", "ext_review_status"),
                     "\"approved\"");
    cr_assert_str_eq(hash_field("weft:run:ext-2:state", "ext_review_status"),
                     "\"changes_requested\"");
    cr_assert_str_eq(hash_field("weft:run:ext-1:state", "ext_review_result"),
                     "{\"reviewed_by\":\"py-1\"}");

    /* A job nobody signed with the key is dead-lettered, not run. */
    freeReplyObject(cmd("XADD weft:q:" QUEUE " * run forged-1 step s "
                        "attempt 1 type persona-request persona " QUEUE
                        " body junk sig 00"));
    cr_assert_str_eq(wait_dlq(30), "bad signature");
    redisReply *r = cmd("XPENDING weft:q:" QUEUE " workers");
    cr_assert_eq(r->element[0]->integer, 0, "the forged job is acknowledged");
    freeReplyObject(r);

    /* SIGTERM: the worker finishes what it holds and exits 0. */
    int st = procs_stop(py_pid, SIGTERM, 5000);
    py_pid = 0;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "external persona did not exit cleanly (status %d)", st);
}
