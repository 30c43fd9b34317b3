/* test_runtime.c - the engine end to end: a real redis-server, real
 * weft-scheduler and weft-worker processes, workflows of noop steps.
 *
 * Each test starts its own server and processes, submits runs the way
 * `weft submit` does (definition stored by digest, task entry on
 * weft:tasks), follows the run's history stream until the run ends
 * (blocking XREAD: no sleeping), and checks what Redis holds.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "hmac.h"
#include "procs.h"
#include "rconn.h"
#include "redis_fixture.h"
#include "redisurl.h"
#include "runs.h"
#include "scripts.h"
#include "wfdef.h"
#include "wire.h"

#define KEY       "test-signing-key-0123456789"
#define MAX_PROCS 8

static struct redis_fixture fx;
static redisContext *rc;
static pid_t procs[MAX_PROCS];
static int nprocs;
static char env_url[160], env_key[64] = "WEFT_HMAC_KEY=" KEY;

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

static void start_system_args(int schedulers, int workers,
                              const char *sched_arg);

static void start_system(int schedulers, int workers)
{
    start_system_args(schedulers, workers, NULL);
}

static void start_system_args(int schedulers, int workers,
                              const char *sched_arg)
{
    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
    snprintf(env_url, sizeof(env_url), "REDIS_URL=%s", fx.url);
    struct redis_url u;
    cr_assert_eq(redis_url_parse(fx.url, &u, NULL), 0);
    rc = rconn_connect_sync(&u, 2000, NULL);
    redis_url_deinit(&u);
    cr_assert_not_null(rc);
    for (int i = 0; i < schedulers; i++) {
        char name[32];
        snprintf(name, sizeof(name), "--name=sched-%d", i);
        const char *args[] = {name, sched_arg, NULL};
        start_proc("scheduler/weft-scheduler", args);
    }
    for (int i = 0; i < workers; i++) {
        char name[32];
        snprintf(name, sizeof(name), "--name=worker-%d", i);
        const char *args[] = {name, "--queues=default,git", NULL};
        start_proc("worker/weft-worker", args);
    }
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

static void setup(void)
{
    weft_alloc_init();
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

/* Submits yaml with task as run. */
static void submit(const char *yaml, const char *task, const char *run)
{
    cr_assert_eq(runs_submit(rc, yaml, task, run), 0);
}

/* Follows the run's history until the run ends; returns its status
 * (static buffer) or "timeout". */
static const char *wait_run(const char *run, int timeout_s)
{
    static char status[32];
    return runs_wait(rc, run, timeout_s, status, sizeof(status));
}

static char *step_field(const char *run, const char *field)
{
    static char buf[8][256];
    static int slot;
    redisReply *r = cmd("HGET weft:run:%s:steps %s", run, field);
    char *out = buf[slot++ % 8];
    snprintf(out, 256, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return out;
}

static char *state_field(const char *run, const char *field)
{
    static char buf[4][1024];
    static int slot;
    redisReply *r = cmd("HGET weft:run:%s:state %s", run, field);
    char *out = buf[slot++ % 4];
    snprintf(out, 1024, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return out;
}

#define assert_step(run, id, want)                                             \
    cr_assert_str_eq(step_field(run, id), want, "step %s", id)

TestSuite(runtime, .init = setup, .fini = stop_system, .timeout = 120);

static const char *seed_like =
    "name: seed-like\n"
    "steps:\n"
    "  - id: planning\n"
    "    type: noop\n"
    "    params: {result: {plan: 'do it'}}\n"
    "  - id: plan-evaluation\n"
    "    type: noop\n"
    "    dependencies: [planning]\n"
    "    condition: \"context.state.get('planning_result')\"\n"
    "  - id: qa\n"
    "    type: noop\n"
    "    dependencies: [plan-evaluation]\n"
    "    params: {verdict: \"{{task.qa}}\"}\n"
    "  - id: code-review\n"
    "    type: noop\n"
    "    dependencies: [qa]\n"
    "    condition: \"context.state.get('qa_status') === 'pass'\"\n"
    "  - id: security-review\n"
    "    type: noop\n"
    "    dependencies: [qa]\n"
    "    condition: \"context.state.get('qa_status') === 'pass'\"\n"
    "  - id: report\n"
    "    type: noop\n"
    "    dependencies: [code-review, security-review]\n";

Test(runtime, seed_conditions_run_reviews_when_qa_passes)
{
    start_system(1, 1);
    submit(seed_like, "{\"qa\": \"pass\"}", "pass-1");
    cr_assert_str_eq(wait_run("pass-1", 30), "success");
    assert_step("pass-1", "plan-evaluation", "success");
    assert_step("pass-1", "code-review", "success");
    assert_step("pass-1", "security-review", "success");
    assert_step("pass-1", "report", "success");
    cr_assert_str_eq(state_field("pass-1", "qa_status"), "\"pass\"");
    cr_assert_str_eq(state_field("pass-1", "planning_result"),
                     "{\"plan\":\"do it\"}");
}

Test(runtime, failing_qa_skips_reviews_and_skips_release_dependents)
{
    start_system(1, 1);
    submit(seed_like, "{\"qa\": \"fail\"}", "fail-1");
    cr_assert_str_eq(wait_run("fail-1", 30), "success");
    assert_step("fail-1", "qa", "success");
    cr_assert_str_eq(state_field("fail-1", "qa_status"), "\"fail\"");
    assert_step("fail-1", "code-review", "skipped");
    assert_step("fail-1", "security-review", "skipped");
    assert_step("fail-1", "report", "success");
}

static const char *nested =
    "name: nested\n"
    "steps:\n"
    "  - id: start\n"
    "    type: noop\n"
    "  - id: route\n"
    "    type: conditional\n"
    "    dependencies: [start]\n"
    "    condition: \"task.type === 'hotfix'\"\n"
    "    then_steps:\n"
    "      - id: hot\n"
    "        type: noop\n"
    "    else_steps:\n"
    "      - id: group\n"
    "        type: parallel\n"
    "        wait_for: all\n"
    "        steps:\n"
    "          - id: a\n"
    "            type: noop\n"
    "          - id: inner\n"
    "            type: conditional\n"
    "            condition: \"task.slug.startsWith('x')\"\n"
    "            then_steps:\n"
    "              - id: x1\n"
    "                type: noop\n"
    "              - id: x2\n"
    "                type: noop\n"
    "                dependencies: [x1]\n"
    "  - id: end\n"
    "    type: noop\n"
    "    dependencies: [route]\n";

Test(runtime, nested_conditional_and_parallel_follow_the_task)
{
    start_system(1, 2);
    submit(nested, "{\"type\": \"feature\", \"slug\": \"xyz\"}", "n-1");
    submit(nested, "{\"type\": \"hotfix\", \"slug\": \"abc\"}", "n-2");
    cr_assert_str_eq(wait_run("n-1", 30), "success");
    cr_assert_str_eq(wait_run("n-2", 30), "success");
    assert_step("n-1", "hot", "skipped");
    assert_step("n-1", "group", "success");
    assert_step("n-1", "x2", "success");
    assert_step("n-1", "end", "success");
    assert_step("n-2", "hot", "success");
    assert_step("n-2", "group", "skipped");
    assert_step("n-2", "x1", "skipped");
    assert_step("n-2", "end", "success");
}

static const char *race = "name: race\n"
                          "steps:\n"
                          "  - id: g\n"
                          "    type: parallel\n"
                          "    wait_for: any\n"
                          "    steps:\n"
                          "      - id: fast\n"
                          "        type: noop\n"
                          "      - id: slow\n"
                          "        type: noop\n"
                          "        params: {delay_ms: 20000}\n"
                          "      - id: later\n"
                          "        type: noop\n"
                          "        dependencies: [slow]\n"
                          "  - id: after\n"
                          "    type: noop\n"
                          "    dependencies: [g]\n";

Test(runtime, any_group_completes_on_first_success_and_stops_losers)
{
    start_system(1, 1);
    submit(race, "{}", "race-1");
    cr_assert_str_eq(wait_run("race-1", 15), "success");
    assert_step("race-1", "g", "success");
    assert_step("race-1", "fast", "success");
    assert_step("race-1", "after", "success");
    /* slow was running or queued: stopped; later never ran. */
    char *slow = step_field("race-1", "slow");
    cr_assert(strcmp(slow, "cancelled") == 0 || strcmp(slow, "skipped") == 0,
              "slow is %s", slow);
    assert_step("race-1", "later", "skipped");
}

static const char *templated =
    "name: templated\n"
    "variables:\n"
    "  prefix: \"feat/\"\n"
    "  base: 5\n"
    "steps:\n"
    "  - id: one\n"
    "    type: noop\n"
    "    params:\n"
    "      result: {branch: \"{{variables.prefix}}{{task.slug}}\","
    " n: \"{{variables.base}}\"}\n"
    "  - id: two\n"
    "    type: noop\n"
    "    dependencies: [one]\n"
    "    params:\n"
    "      result: \"{{steps.one.result.branch}}-{{steps.one.result.n}}\"\n";

Test(runtime, templates_render_params_from_task_variables_and_results)
{
    start_system(1, 1);
    submit(templated, "{\"slug\": \"login\"}", "t-1");
    cr_assert_str_eq(wait_run("t-1", 30), "success");
    cr_assert_str_eq(state_field("t-1", "one_result"),
                     "{\"branch\":\"feat/login\",\"n\":5}");
    cr_assert_str_eq(state_field("t-1", "two_result"), "\"feat/login-5\"");
}

static const char *wide = "name: wide\n"
                          "steps:\n"
                          "  - id: root\n"
                          "    type: noop\n"
                          "  - id: fan\n"
                          "    type: parallel\n"
                          "    dependencies: [root]\n"
                          "    steps:\n"
                          "      - {id: s1, type: noop}\n"
                          "      - {id: s2, type: noop}\n"
                          "      - {id: s3, type: noop}\n"
                          "      - {id: s4, type: noop}\n"
                          "      - {id: s5, type: noop}\n"
                          "      - {id: s6, type: noop}\n"
                          "      - {id: s7, type: noop}\n"
                          "      - {id: s8, type: noop}\n"
                          "  - id: join\n"
                          "    type: noop\n"
                          "    dependencies: [fan]\n";

/* Counts history entries that moved `step` to `status` across runs. */
static long count_history(const char *run, const char *status)
{
    redisReply *r = cmd("XRANGE weft:run:%s:history - +", run);
    long n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        const char *type = "", *st = "";
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "type") == 0)
                type = f->element[k + 1]->str;
            if (strcmp(f->element[k]->str, "status") == 0)
                st = f->element[k + 1]->str;
        }
        if (strcmp(type, "step") == 0 && strcmp(st, status) == 0)
            n++;
    }
    freeReplyObject(r);
    return n;
}

Test(runtime, two_schedulers_three_workers_never_dispatch_a_step_twice)
{
    start_system(2, 3);
    enum { RUNS = 40 };
    for (int i = 0; i < RUNS; i++) {
        char run[32];
        snprintf(run, sizeof(run), "w-%d", i);
        submit(wide, "{}", run);
    }
    for (int i = 0; i < RUNS; i++) {
        char run[32];
        snprintf(run, sizeof(run), "w-%d", i);
        cr_assert_str_eq(wait_run(run, 60), "success", "run %s", run);
        /* 11 steps: root, fan, s1..s8, join; each queued once (fan is a
         * group: never queued), each succeeded once. */
        cr_assert_eq(count_history(run, "queued"), 10, "run %s", run);
        cr_assert_eq(count_history(run, "success"), 11, "run %s", run);
    }
    redisReply *r = cmd("XPENDING weft:q:default workers");
    cr_assert_eq(r->element[0]->integer, 0, "no job left pending");
    freeReplyObject(r);
}

/* A workflow whose parallel group g (wait_for: mode) has `kids` noop
 * children, between a root and a join. */
static char *big_group(const char *mode, int kids)
{
    static char yaml[32768];
    size_t n = (size_t)snprintf(yaml, sizeof(yaml),
                                "name: big\n"
                                "steps:\n"
                                "  - {id: root, type: noop}\n"
                                "  - id: g\n"
                                "    type: parallel\n"
                                "    wait_for: %s\n"
                                "    dependencies: [root]\n"
                                "    steps:\n",
                                mode);
    for (int i = 0; i < kids; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
                              "      - {id: k%d, type: noop}\n", i);
    snprintf(yaml + n, sizeof(yaml) - n,
             "  - {id: join, type: noop, dependencies: [g]}\n");
    return yaml;
}

static long pending_events(void)
{
    redisReply *r = cmd("XPENDING weft:events schedulers");
    long n = r->element[0]->integer;
    freeReplyObject(r);
    return n;
}

/* A workflow of `n` independent noop steps. */
static char *big_top(int n)
{
    static char yaml[16384];
    size_t len = (size_t)snprintf(yaml, sizeof(yaml), "name: flat\nsteps:\n");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(yaml + len, sizeof(yaml) - len,
                                "  - {id: t%d, type: noop}\n", i);
    return yaml;
}

/* 150 children (or top-level steps) open in parts of 64 (docs/
 * protocol.md, "Big groups"), with two schedulers sharing the parts'
 * ready marks: each child runs once, and no part is left behind. */
Test(runtime, a_big_group_opens_in_parts_and_runs_each_child_once)
{
    start_system(2, 3);
    submit(big_group("all", 150), "{}", "big-all");
    submit(big_group("any", 150), "{}", "big-any");
    submit(big_top(150), "{}", "big-top");
    cr_assert_str_eq(wait_run("big-all", 60), "success");
    cr_assert_str_eq(wait_run("big-any", 60), "success");
    cr_assert_str_eq(wait_run("big-top", 60), "success");
    cr_assert_eq(count_history("big-top", "queued"), 150);
    cr_assert_eq(count_history("big-top", "success"), 150);
    /* root, 150 children and join queued once each; g too succeeded. */
    cr_assert_eq(count_history("big-all", "queued"), 152);
    cr_assert_eq(count_history("big-all", "success"), 153);
    cr_assert_str_eq(step_field("big-all", "k149:attempt"), "1");
    /* any: the first success ends g; children never queued are skipped,
     * and no later part queues more. */
    assert_step("big-any", "g", "success");
    assert_step("big-any", "join", "success");
    long queued = count_history("big-any", "queued");
    cr_assert(queued >= 3 && queued <= 152, "%ld queued", queued);
    long ran = count_history("big-any", "running"),
         ended = count_history("big-any", "success") +
                 count_history("big-any", "cancelled");
    cr_assert_eq(ran, ended, "every step that started ended once: %ld, %ld",
                 ran, ended);
    const char *runs[] = {"big-all", "big-any", "big-top"};
    for (int i = 0; i < 3; i++) {
        redisReply *r = cmd("HEXISTS weft:run:%s:deps %s", runs[i],
                            i < 2 ? "g:next" : ".top:next");
        cr_assert_eq(r->integer, 0, "no part left to open in %s", runs[i]);
        freeReplyObject(r);
        /* create_run's placeholder for a big steps hash is gone. */
        r = cmd("HEXISTS weft:run:%s:steps .wide", runs[i]);
        cr_assert_eq(r->integer, 0, "no placeholder in %s", runs[i]);
        freeReplyObject(r);
    }
}

/* A run's history keeps about its last --history-max entries: each
 * batch trims the histories it wrote to, whole stream nodes at a time
 * (at most 100 entries each), and the newest entries stay. */
Test(runtime, a_runs_history_is_capped)
{
    start_system_args(1, 1, "--history-max=10");
    submit(big_top(80), "{}", "long");
    cr_assert_str_eq(wait_run("long", 60), "success");
    /* 80 steps queued, running and done, and the run's two entries. */
    redisReply *r = cmd("XLEN weft:run:long:history");
    cr_assert(r->integer >= 10 && r->integer <= 110, "%lld entries",
              r->integer);
    freeReplyObject(r);
    /* The newest entry is the run's end. */
    r = cmd("XREVRANGE weft:run:long:history + - COUNT 1");
    cr_assert_eq(r->elements, 1);
    redisReply *f = r->element[0]->element[1];
    cr_assert_str_eq(f->element[1]->str, "run", "type first");
    cr_assert_str_eq(f->element[5]->str, "success", "then step, status");
    freeReplyObject(r);
}

/* A part's ready mark that comes again, or after its group ended, is
 * stale: it queues nothing. A mark with a bad `from` is dead-lettered. */
Test(runtime, a_late_or_bad_part_mark_changes_nothing)
{
    start_system(1, 1);
    submit(big_group("all", 70), "{}", "late");
    cr_assert_str_eq(wait_run("late", 60), "success");
    cr_assert_eq(count_history("late", "queued"), 72);
    freeReplyObject(cmd("XADD weft:events * type ready run late step g "
                        "attempt 1 from 64"));
    freeReplyObject(cmd("XADD weft:events * type ready run late step g "
                        "attempt 1 from x"));
    freeReplyObject(cmd("XADD weft:events * type ready run late step k1 "
                        "attempt 2 from 64"));
    freeReplyObject(cmd("XADD weft:events * type ready run late step .top "
                        "attempt 1 from 64"));
    submit("steps: [{id: a, type: noop}]", "{}", "after");
    cr_assert_str_eq(wait_run("after", 30), "success");
    time_t end = time(NULL) + 20;
    struct timespec pause = {0, 20 * 1000 * 1000};
    while (pending_events() > 0 && time(NULL) < end)
        nanosleep(&pause, NULL); /* a poll with a deadline, not a wait */
    cr_assert_eq(pending_events(), 0, "every mark was answered");
    cr_assert_eq(count_history("late", "queued"), 72, "nothing queued again");
    redisReply *r = cmd("XRANGE weft:dlq - +");
    cr_assert_eq(r->elements, 2);
    const char *want[] = {"event has an invalid 'from'",
                          "ready mark: only a parallel group or a run's top "
                          "level opens in parts"};
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        const char *reason = "";
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (strcmp(f->element[k]->str, "dlq_reason") == 0)
                reason = f->element[k + 1]->str;
        cr_assert_str_eq(reason, want[i]);
    }
    freeReplyObject(r);
}

Test(runtime, forged_job_is_dead_lettered_and_the_worker_carries_on)
{
    start_system(1, 1);
    /* Make sure the worker's group exists before the forged entry. */
    submit("steps: [{id: a, type: noop}]", "{}", "ok-1");
    cr_assert_str_eq(wait_run("ok-1", 30), "success");
    freeReplyObject(cmd("XADD weft:q:default * run ok-1 step a attempt 2 "
                        "type noop body junk sig 00"));
    freeReplyObject(cmd("XADD weft:q:default * nonsense yes"));
    freeReplyObject(cmd("XADD weft:events * type result run nope"));
    freeReplyObject(cmd("XADD weft:events * type bogus run ok-1"));
    submit("steps: [{id: b, type: noop}]", "{}", "ok-2");
    cr_assert_str_eq(wait_run("ok-2", 30), "success");
    redisReply *r = cmd("XLEN weft:dlq");
    cr_assert_geq(r->integer, 4, "each bad entry is dead-lettered");
    freeReplyObject(r);
}

Test(runtime, malformed_tasks_are_dead_lettered_with_the_reason)
{
    start_system(1, 1);
    freeReplyObject(cmd("XADD weft:tasks * run bad-1 digest nope task {}"));
    freeReplyObject(cmd("XADD weft:tasks * run bad-2"));
    freeReplyObject(cmd("XADD weft:tasks * run ../x digest a task {}"));
    submit("steps: [{id: a, type: noop}]", "{}", "good-1");
    cr_assert_str_eq(wait_run("good-1", 30), "success");
    redisReply *r = cmd("XRANGE weft:dlq - +");
    cr_assert_eq(r->elements, 3);
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        int has_reason = 0;
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (strcmp(f->element[k]->str, "dlq_reason") == 0 &&
                f->element[k + 1]->len > 0)
                has_reason = 1;
        cr_assert(has_reason);
    }
    freeReplyObject(r);
}

/* Polls the log file of process i (up to 20 s) for a line holding every
 * needle. */
static void wait_log_line(int i, const char *const needles[])
{
    char path[256], line[4096];
    snprintf(path, sizeof(path), "%s/proc-%d.log", fx.dir, i);
    for (int round = 0; round < 2000; round++) {
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f)) {
            bool all = true;
            for (size_t k = 0; needles[k] && all; k++)
                all = strstr(line, needles[k]) != NULL;
            if (all) {
                fclose(f);
                return;
            }
        }
        if (f)
            fclose(f);
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("no line with %s... in %s", needles[0], path);
}

/* A Redis without functions (older than 7.0, or FUNCTION renamed away as
 * here) cannot run a single transition: the scheduler says so, naming
 * the library, instead of failing every message in silence. */
Test(runtime, a_redis_without_functions_is_named_in_the_log)
{
    cr_assert_eq(redis_fixture_start(&fx, "--rename-command FUNCTION \"\""), 0);
    snprintf(env_url, sizeof(env_url), "REDIS_URL=%s", fx.url);
    const char *args[] = {"--name=sched-0", NULL};
    start_proc("scheduler/weft-scheduler", args);
    wait_log_line(0, (const char *const[]){
                         "cannot load weft's function library",
                         scripts_library_name(), "unknown command", NULL});
}

Test(runtime, a_retried_step_succeeds_on_a_later_attempt)
{
    start_system(1, 1);
    /* The task carries a traceparent: the run joins that trace, and every
     * job, result and log line of it can be found by the trace id. */
    cr_assert_eq(runs_submit_traced(
                     rc,
                     "steps:\n"
                     "  - id: flaky\n"
                     "    type: noop\n"
                     "    retry: {max: 3, delay: 0.05}\n"
                     "    params: {fail_until: 3}\n",
                     "{}", "retry-1",
                     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                 0);
    cr_assert_str_eq(wait_run("retry-1", 30), "success");
    assert_step("retry-1", "flaky", "success");
    cr_assert_str_eq(step_field("retry-1", "flaky:attempt"), "3");
    redisReply *t = cmd("HGET weft:run:retry-1 trace");
    cr_assert_str_eq(t->str, "4bf92f3577b34da6a3ce929d0e0e4736");
    freeReplyObject(t);
    /* task -> scheduler ("run starting") -> job (the worker's line) ->
     * result (the scheduler's line for each attempt's result). */
    const char *tid = "4bf92f3577b34da6a3ce929d0e0e4736";
    wait_log_line(0, (const char *const[]){"\"run starting\"", tid, NULL});
    wait_log_line(1,
                  (const char *const[]){"\"job finished\"", "\"attempt\":\"1\"",
                                        "\"trace\":\"00-", tid, NULL});
    for (int a = 1; a <= 3; a++) {
        char att[32];
        snprintf(att, sizeof(att), "\"attempt\":\"%d\"", a);
        wait_log_line(0, (const char *const[]){"\"result applied\"",
                                               "\"step\":\"flaky\"", att,
                                               "\"trace\":\"00-", tid, NULL});
    }
}

Test(runtime, exhausted_retries_fail_the_run_with_the_reason)
{
    start_system(1, 1);
    submit("steps:\n"
           "  - id: broken\n"
           "    type: noop\n"
           "    retries: 1\n"
           "    params: {fail_until: 99}\n"
           "  - id: never\n"
           "    type: noop\n"
           "    dependencies: [broken]\n",
           "{}", "fail-2");
    cr_assert_str_eq(wait_run("fail-2", 30), "failed");
    assert_step("fail-2", "broken", "failed");
    cr_assert_str_eq(step_field("fail-2", "broken:attempt"), "2");
    assert_step("fail-2", "never", "cancelled");
    redisReply *r = cmd("HGET weft:run:fail-2 error");
    cr_assert(r->type == REDIS_REPLY_STRING && strstr(r->str, "broken"));
    freeReplyObject(r);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char *run_field(const char *run, const char *field)
{
    static char buf[4][512];
    static int slot;
    redisReply *r = cmd("HGET weft:run:%s %s", run, field);
    char *out = buf[slot++ % 4];
    snprintf(out, 512, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return out;
}

Test(runtime, coordinator_routes_by_type_and_records_what_it_cannot_route)
{
    static char dir[] = "/tmp/weft-routes-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    write_file(dir, "routes.yml",
               "routes:\n"
               "  - when: \"type === 'hotfix'\"\n"
               "    workflow: hot.yml\n"
               "  - when: \"task.type === 'feature'\"\n"
               "    workflow: feat.yml\n"
               "  - when: \"type === 'docs'\"\n"
               "    workflow: missing.yml\n");
    write_file(dir, "hot.yml", "name: hot\nsteps: [{id: fix, type: noop}]\n");
    write_file(dir, "feat.yml",
               "name: feat\nsteps: [{id: build, type: noop}]\n");
    char arg[600];
    snprintf(arg, sizeof(arg), "--workflows=%s", dir);
    start_system_args(1, 1, arg);
    freeReplyObject(cmd("XADD weft:tasks * run c-1 type hotfix task %s",
                        "{\"type\": \"hotfix\"}"));
    freeReplyObject(
        cmd("XADD weft:tasks * run c-2 task %s", "{\"type\": \"feature\"}"));
    freeReplyObject(cmd("XADD weft:tasks * run c-3 type chore task %s",
                        "{\"type\": \"chore\"}"));
    freeReplyObject(cmd("XADD weft:tasks * run c-4 type docs task %s",
                        "{\"type\": \"docs\"}"));
    cr_assert_str_eq(wait_run("c-1", 30), "success");
    cr_assert_str_eq(run_field("c-1", "workflow"), "hot");
    assert_step("c-1", "fix", "success");
    cr_assert_str_eq(wait_run("c-2", 30), "success");
    cr_assert_str_eq(run_field("c-2", "workflow"), "feat");
    cr_assert_str_eq(wait_run("c-3", 30), "failed");
    cr_assert(strstr(run_field("c-3", "error"), "no route matches") != NULL,
              "%s", run_field("c-3", "error"));
    cr_assert_str_eq(wait_run("c-4", 30), "failed");
    cr_assert(strstr(run_field("c-4", "error"), "missing.yml") != NULL, "%s",
              run_field("c-4", "error"));
    char path[600];
    const char *names[] = {"routes.yml", "hot.yml", "feat.yml"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Waits (following the history) until step is running; returns its
 * worker's name in a static buffer. */
static const char *wait_running(const char *run, const char *step)
{
    char last[64] = "0";
    time_t end = time(NULL) + 20;
    while (time(NULL) < end) {
        redisReply *r = cmd("XREAD COUNT 100 BLOCK 1000 STREAMS "
                            "weft:run:%s:history %s",
                            run, last);
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            redisReply *es = r->element[0]->element[1];
            for (size_t i = 0; i < es->elements; i++) {
                redisReply *e = es->element[i];
                snprintf(last, sizeof(last), "%s", e->element[0]->str);
                redisReply *f = e->element[1];
                const char *sp = "", *st = "";
                for (size_t k = 0; k + 1 < f->elements; k += 2) {
                    if (strcmp(f->element[k]->str, "step") == 0)
                        sp = f->element[k + 1]->str;
                    if (strcmp(f->element[k]->str, "status") == 0)
                        st = f->element[k + 1]->str;
                }
                if (strcmp(sp, step) == 0 && strcmp(st, "running") == 0) {
                    freeReplyObject(r);
                    char field[160];
                    snprintf(field, sizeof(field), "%s:worker", step);
                    return step_field(run, field);
                }
            }
        }
        freeReplyObject(r);
    }
    return NULL;
}

Test(runtime, a_step_whose_worker_dies_fails_at_its_deadline)
{
    start_system(1, 1);
    submit("steps:\n"
           "  - id: slow\n"
           "    type: noop\n"
           "    timeout: 1\n"
           "    params: {delay_ms: 60000}\n",
           "{}", "dl-1");
    cr_assert_not_null(wait_running("dl-1", "slow"));
    /* The worker is procs[1]: it dies without reporting; no other worker
     * serves the queue, so only the scheduler's deadline can end the
     * step (timeout 1 s + the worker's 10 s slack). */
    kill(procs[1], SIGKILL);
    waitpid(procs[1], NULL, 0);
    procs[1] = procs[--nprocs];
    cr_assert_str_eq(wait_run("dl-1", 30), "failed");
    assert_step("dl-1", "slow", "failed");
    cr_assert(strstr(step_field("dl-1", "slow:error"), "deadline") != NULL,
              "%s", step_field("dl-1", "slow:error"));
}
