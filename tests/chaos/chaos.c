/* chaos.c - the proof of crash recovery (issue 5): many runs through
 * real schedulers and workers while a driver kills them.
 *
 * Starts a redis-server with AOF (appendfsync always), 2 weft-scheduler
 * and 3 weft-worker processes, and submits runs of one workflow that has
 * retries, a conditional (the branch follows the task), a parallel `all`
 * group, a parallel `any` group with a slow child, in one run in five a
 * parallel group of 70 children (it opens in two parts, the second by a
 * ready mark a killed scheduler leaves to another), and delays that make
 * kills land in the middle of steps. While runs are in flight, a chaos
 * loop kill -9s a random scheduler or worker every 200-500 ms (seeded,
 * the seed is printed) and restarts it under the same name 0-300 ms
 * later (so two can be down at once), and restarts
 * Redis three times (twice with SIGTERM, once with SIGKILL: appendfsync
 * always makes a crash lose nothing acknowledged). Then it lets the
 * system drain and checks, from Redis alone:
 *
 *   1. every run finished, with status success (the workflow is made to
 *      succeed whatever dies);
 *   2. no transition happened twice: per step, one `success` history
 *      entry if it succeeded and none otherwise, one `queued` and one
 *      `retrying` per attempt, one run-level end;
 *   3. no result was lost: each step's final status is the one the
 *      task implies (branch taken, branch skipped, one winner in the
 *      `any` group) and agrees with its last history entry;
 *   4. nothing is left pending: no job in any queue's `workers` group,
 *      no entry in the `schedulers` group of weft:events or weft:tasks;
 *   5. every side effect happened: each succeeded leaf step's result is
 *      in the run's state hash (`<id>_result`) with the expected value;
 *   6. no process exited on its own (only the driver's kills end one);
 *   7. at the end, every process exits 0 on SIGTERM (graceful shutdown;
 *      in a sanitizer build, also no leak report);
 *   8. a persona that always fails opens its circuit breaker and stops
 *      receiving requests: beside the main runs, runs of a one-step
 *      workflow asking a persona whose service is down (every request
 *      logged) are submitted throughout the chaos, and one more after
 *      the last main run; the breaker opens once, and every such run
 *      submitted after it opened fails fast without a job, a request or a
 *      `queued` entry.
 *   9. a hung persona is killed at its timeout: beside the main runs,
 *      runs of a workflow whose persona step never answers (a `timeout`
 *      of 2 s, one retry, then `on_failure: continue`; one run in three
 *      ignores SIGTERM, so only the SIGKILL after the worker's grace
 *      ends it) are submitted throughout the chaos. Every such run
 *      succeeds after exactly two attempts, each ended as timed out (by
 *      its worker's timer, or by the scheduler's deadline when its
 *      workers died) no later than the attempt's deadline allows; every
 *      persona process and the child it started (each logs its pid) is
 *      gone at the end and was never seen alive past its timeout (plus
 *      the grace when it ignores SIGTERM) and a margin, even when the
 *      worker running it was killed with SIGKILL (the worker's warden
 *      kills the group then); and no process with the children's
 *      command line is left anywhere.
 *  10. an escalated run resumes after `weft resolve`: beside the main
 *      runs, runs of a workflow whose first step fails once with
 *      `on_failure: escalate` are submitted throughout the chaos; the
 *      driver watches for the step waiting for a human and answers it
 *      with the real CLI (`weft resolve RUN gate --retry|--skip --set
 *      answer=... [--set count=N]`, the two answers in turn; one run in
 *      three is answered twice at once). Every such run succeeds; its
 *      history holds one escalation, one applied answer (the one given,
 *      by the driver), a duplicate answer only as a `control` entry, and
 *      one `run running resumed=gate`; the step ends as answered
 *      (`success` at attempt 2, or `skipped`), the values set are in the
 *      state and the step after it read them; and every `weft resolve`
 *      exited 0 or 1 (nothing waiting any more, or Redis away).
 *
 * It prints the figures (runs completed / started, duplicate
 * transitions, lost steps, reclaim latency after a worker kill, time to
 * recover after a scheduler kill and after a Redis restart; then those of
 * the side runs of checks 8-10), then "N passed, M failed" and exits 0
 * only when every check passed.
 *
 * Timestamps: history entries carry `us`, the realtime clock in
 * microseconds of the process that made the transition; every process
 * runs on this host, so the driver stamps its kills and restarts with
 * the same clock (CLOCK_REALTIME) and subtracts.
 *
 * Bounded: every wait has a deadline, Redis commands time out, and a
 * watchdog alarm ends the program (and its children) if all else fails.
 * Process logs and the Redis directory are kept when a check fails (or
 * with --keep) and removed otherwise.
 *
 * Usage: chaos [--runs N] [--seed S] [--chaos-ms MS] [--restart-max-ms MS]
 *              [--delivery-limit N] [--drain-s S] [--no-redis-kill] [--keep]
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "diag.h"
#include "procs.h"
#include "redis_fixture.h"
#include "wfdef.h"

/* ---- limits and timings ------------------------------------------------ */

#define DEFAULT_RUNS 300
/* Runs are at most this many: ids and arrays are sized from it. */
#define MAX_RUNS 100000
#define N_SCHED  2
#define N_WORK   3
#define N_PROCS  (N_SCHED + N_WORK)
/* Schedulers reclaim each other's messages idle this long (ms): short so
 * a killed scheduler's messages are taken over within the test. */
#define CLAIM_IDLE_MS "1000"
/* Workers reclaim jobs idle this long (ms); heartbeats keep live ones. */
#define VISIBILITY_MS "2000"
/* SIGTERM drain of a worker at the end (ms). */
#define GRACE_MS "1000"
/* Deliveries of a job before the worker dead-letters it (the default of
 * --delivery-limit). The workers' own default, 5, is a poison-job guard
 * that this much killing trips on healthy jobs: each worker dies every
 * 1.75 s on average, so a 1.5 s job loses ~60% of its deliveries, 5 in a
 * row are lost ~8% of the time, and the run fails with them (a
 * dead-lettered job fails its step as fatal, without retry). At 50 that
 * is about 0.6^50; `--delivery-limit 5` shows the dead-letter path. */
#define DEFAULT_DELIVERY_LIMIT 50
/* A kill every KILL_MIN_MS to KILL_MAX_MS (uniform). */
#define KILL_MIN_MS 200
#define KILL_MAX_MS 500
/* A killed process comes back after 0 to this many ms (uniform; the
 * default of --restart-max-ms), as a supervisor would restart it; meanwhile
 * another kill may take a second process down, so both schedulers or
 * several workers are sometimes down at once. */
#define DEFAULT_RESTART_MAX_MS 300
/* Runs are submitted at this spacing, so they are in flight throughout
 * the chaos; the chaos lasts CHAOS_TAIL_MS past the last submission. */
#define SUBMIT_SPACING_MS 100
#define CHAOS_TAIL_MS     8000
/* Redis restarts at these fractions of the chaos window: SIGTERM,
 * SIGTERM, SIGKILL. */
#define REDIS_EVENTS 3
static const double redis_at[REDIS_EVENTS] = {0.25, 0.5, 0.75};
/* Bounded waits after the chaos. */
#define DEFAULT_DRAIN_S 120
#define PENDING_WAIT_S  30
/* A Redis command is retried (reconnecting) for this long, which covers
 * a restart; one attempt times out after CMD_TIMEOUT_MS. */
#define CMD_RETRY_MS   20000
#define CMD_TIMEOUT_MS 10000
/* The whole program ends by this watchdog whatever happens (s). */
#define WATCHDOG_S 840
/* Main loop tick (ms): reaping, polling held messages. */
#define TICK_MS      10
#define HELD_POLL_MS 50
/* At most this many scheduler messages watched per kill. */
#define HELD_MAX 512
/* Problems printed per check; the rest are only counted. */
#define SHOW_MAX 8

#define HMAC_KEY "chaos-signing-key-0123456789abcdef"

/* The breaker check (8): one breaker run every BRK_EVERY main runs (more
 * often in a short chaos, so that it has BRK_RUNS_MIN of them). A run
 * submitted this long after the breaker opened must find it open: more
 * than the time from a scheduler's clock reading to its script running. */
#define BRK_EVERY     15
#define BRK_RUNS_MIN  20
#define BRK_MARGIN_MS 2000
/* The last breaker run goes this long after the last main run: in a
 * short chaos, every other one may come within the margin. */
#define BRK_LATE_MS   (BRK_MARGIN_MS + 500)
#define BRK_THRESHOLD 3 /* chaos.yml: failures */
/* The personas of checks 8 and 9. */
#define REGISTRY WEFT_SOURCE_ROOT "/tests/data/personas/chaos.yml"

/* The hung persona check (9): a hang run every HANG_EVERY main runs (from
 * the HANG_OFFSET-th), one in HANG_STUBBORN_EVERY ignoring SIGTERM. The
 * hang workflow (built in main) takes its step's timeout and attempts
 * from these. */
#define HANG_EVERY          20
#define HANG_OFFSET         5
#define HANG_STUBBORN_EVERY 3
#define HANG_TIMEOUT_MS     2000
#define HANG_ATTEMPTS       2
/* worker/handler_persona.c PERSONA_KILL_GRACE_MS: a persona that outlives
 * the SIGTERM gets SIGKILL this long after it. */
#define HANG_GRACE_MS 5000
/* worker/worker.c WORKER_DEADLINE_SLACK_MS: the scheduler's deadline of
 * an attempt is its first start + its timeout + this. */
#define HANG_SLACK_MS 10000
/* Allowance past those limits: a scheduler down when the deadline comes
 * (back within --restart-max-ms, or the other's claim idle), Redis
 * restarting, a loaded machine, sanitizers. */
#define HANG_MARGIN_MS 5000
/* Liveness of the hung processes is polled this often. */
#define HANG_POLL_MS 50
/* After the drain, how long the hung processes may take to be gone (they
 * should be already: their jobs are all acknowledged). */
#define HANG_GONE_WAIT_MS 5000

/* The escalation check (10): an escalation run every ESC_EVERY main runs
 * (from the ESC_OFFSET-th); one in ESC_DUP_EVERY answered twice at once.
 * Waiting steps are looked for every ESC_POLL_MS; a `weft resolve` that
 * has not ended after CLI_TIMEOUT_MS is killed (and counted against the
 * check). */
#define ESC_EVERY      10
#define ESC_OFFSET     5
#define ESC_DUP_EVERY  3
#define ESC_POLL_MS    100
#define CLI_TIMEOUT_MS 30000

/* ---- the workflow -------------------------------------------------------- */

/* The children of `crowd`: more than a part (PLAN_ACTIVATE_PART, 64). */
#define CROWD_KIDS 70

/* Every step id, in one table; expected outcomes follow the task: n % 2
 * picks the conditional's branch, n % 3 == 0 runs `audit`, n % 5 == 2
 * runs `crowd` (whose children c0..c69 follow S_KID0). */
enum step_id {
    S_PREPARE,
    S_FLAKY,
    S_AUDIT,
    S_ROUTE,
    S_FAST_A,
    S_FAST_B,
    S_SLOW_A,
    S_FANOUT,
    S_P1,
    S_P2,
    S_P3,
    S_RACE,
    S_QUICK,
    S_SLUGGISH,
    S_REPORT,
    S_CROWD,
    S_KID0,
    N_STEPS = S_KID0 + CROWD_KIDS
};

static struct step_info {
    const char *id;
    const char *skey;   /* state key stem: '-' written '_' */
    bool leaf;          /* a noop with a result (not a composite) */
    const char *result; /* expected result; "%d" is the task's n */
    int attempts;       /* attempts a success takes (fail_until 2: 2) */
} steps[N_STEPS] = {
    [S_PREPARE] = {"prepare", "prepare", true, "%d-prepare", 1},
    [S_FLAKY] = {"flaky", "flaky", true, "r-flaky", 2},
    [S_AUDIT] = {"audit", "audit", true, "r-audit", 1},
    [S_ROUTE] = {"route", "route", false, NULL, 1},
    [S_FAST_A] = {"fast-a", "fast_a", true, "r-fast-a", 1},
    [S_FAST_B] = {"fast-b", "fast_b", true, "r-fast-b", 2},
    [S_SLOW_A] = {"slow-a", "slow_a", true, "r-slow-a", 1},
    [S_FANOUT] = {"fanout", "fanout", false, NULL, 1},
    [S_P1] = {"p1", "p1", true, "r-p1", 1},
    [S_P2] = {"p2", "p2", true, "r-p2", 2},
    [S_P3] = {"p3", "p3", true, "r-p3", 1},
    [S_RACE] = {"race", "race", false, NULL, 1},
    [S_QUICK] = {"quick", "quick", true, "r-quick", 1},
    [S_SLUGGISH] = {"sluggish", "sluggish", true, "r-sluggish", 1},
    [S_REPORT] = {"report", "report", true, "r-flaky+%d", 1},
    [S_CROWD] = {"crowd", "crowd", false, NULL, 1},
};

static const char *workflow_yaml =
    "name: chaos\n"
    "description: every recovery path at once; succeeds whatever dies\n"
    "steps:\n"
    "  - id: prepare\n"
    "    type: noop\n"
    "    params: {result: \"{{task.n}}-prepare\", delay_ms: 120}\n"
    "  - id: flaky\n"
    "    type: noop\n"
    "    dependencies: [prepare]\n"
    "    retry: {max: 3, backoff: fixed, delay: 0.05}\n"
    "    params: {fail_until: 2, result: r-flaky, delay_ms: 80}\n"
    "  - id: audit\n"
    "    type: noop\n"
    "    dependencies: [prepare]\n"
    "    condition: \"task.audit === true\"\n"
    "    params: {result: r-audit, delay_ms: 50}\n"
    "  - id: route\n"
    "    type: conditional\n"
    "    dependencies: [flaky]\n"
    "    condition: \"task.path === 'fast'\"\n"
    "    then_steps:\n"
    "      - id: fast-a\n"
    "        type: noop\n"
    "        params: {result: r-fast-a, delay_ms: 60}\n"
    "      - id: fast-b\n"
    "        type: noop\n"
    "        dependencies: [fast-a]\n"
    "        retry: {max: 3, backoff: fixed, delay: 0.05}\n"
    "        params: {fail_until: 2, result: r-fast-b}\n"
    "    else_steps:\n"
    "      - id: slow-a\n"
    "        type: noop\n"
    "        params: {result: r-slow-a, delay_ms: 200}\n"
    "  - id: fanout\n"
    "    type: parallel\n"
    "    dependencies: [prepare]\n"
    "    wait_for: all\n"
    "    steps:\n"
    "      - id: p1\n"
    "        type: noop\n"
    "        params: {result: r-p1, delay_ms: 50}\n"
    "      - id: p2\n"
    "        type: noop\n"
    "        retry: {max: 3, backoff: fixed, delay: 0.1}\n"
    "        params: {fail_until: 2, result: r-p2, delay_ms: 150}\n"
    "      - id: p3\n"
    "        type: noop\n"
    "        params: {result: r-p3}\n"
    "  - id: race\n"
    "    type: parallel\n"
    "    dependencies: [prepare]\n"
    "    wait_for: any\n"
    "    steps:\n"
    "      - id: quick\n"
    "        type: noop\n"
    "        params: {result: r-quick, delay_ms: \"{{task.quick_ms}}\"}\n"
    "      - id: sluggish\n"
    "        type: noop\n"
    "        params: {result: r-sluggish, delay_ms: 1500}\n"
    "  - id: report\n"
    "    type: noop\n"
    "    dependencies: [route, audit, fanout, race]\n"
    "    params:\n"
    "      result: \"{{steps.flaky.result}}+{{task.n}}\"\n"
    "      delay_ms: 50\n";

static bool task_fast(int n)
{
    return n % 2 == 0;
}

static bool task_audit(int n)
{
    return n % 3 == 0;
}

/* How long `quick` takes: one run in five lets `sluggish` (1500 ms) win
 * the `any` group, so both a queued and a running loser get stopped. */
static bool task_crowd(int n)
{
    return n % 5 == 2;
}

static int task_quick_ms(int n)
{
    return n % 5 == 1 ? 2500 : 100;
}

/* ---- clocks, randomness ---------------------------------------------- */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The clock of the history's `us` field. */
static long long real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t rng_state;

/* xorshift64*: reproducible from the printed seed. */
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static int rng_range(int lo, int hi)
{
    return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1));
}

/* ---- processes ----------------------------------------------------------- */

struct proc {
    bool scheduler;
    char name[32];
    pid_t pid;
    long long restart_at; /* mono ms when a killed one comes back; 0 none */
    int starts;
    int kills;
    int exits; /* ended without being killed by the driver */
};

static struct proc procs[N_PROCS];
static struct redis_fixture fx;
static bool fx_up;
static char logdir[64];
static char env_url[REDIS_FIXTURE_PATH_MAX + 32];
static const char env_key[] = "WEFT_HMAC_KEY=" HMAC_KEY;
static volatile sig_atomic_t stop_requested;

static char delivery_arg[48];
static char workspaces_arg[96];
static FILE *events_log; /* kills and restarts, with `us`, for diagnosis */

/* One line in <logdir>/events.log. */
static void event(const char *fmt, ...)
{
    if (events_log == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(events_log, "us=%lld ", real_us());
    vfprintf(events_log, fmt, ap);
    fputc('\n', events_log);
    va_end(ap);
    fflush(events_log);
}

static void proc_log_path(const struct proc *p, char *out, size_t n)
{
    snprintf(out, n, "%s/%s.log", logdir, p->name);
}

static int proc_start(struct proc *p)
{
    char bin[512], log[128], name[48];
    const char *argv[16];
    int n = 0;

    proc_log_path(p, log, sizeof(log));
    FILE *f = fopen(log, "a");
    if (f != NULL) {
        fprintf(f, "---- chaos: start #%d at us=%lld ----\n", p->starts + 1,
                real_us());
        fclose(f);
    }
    snprintf(name, sizeof(name), "--name=%s", p->name);
    if (p->scheduler) {
        argv[n++] = procs_binary("scheduler/weft-scheduler", bin, sizeof(bin));
        argv[n++] = name;
        argv[n++] = "--claim-idle=" CLAIM_IDLE_MS;
        argv[n++] = "--personas=" REGISTRY;
    } else {
        argv[n++] = procs_binary("worker/weft-worker", bin, sizeof(bin));
        argv[n++] = name;
        argv[n++] = "--queues=default,down,hang";
        argv[n++] = "--personas=" REGISTRY;
        argv[n++] = workspaces_arg;
        argv[n++] = "--visibility=" VISIBILITY_MS;
        argv[n++] = "--grace=" GRACE_MS;
        argv[n++] = delivery_arg;
    }
    argv[n] = NULL;
    const char *env[] = {env_url, env_key, NULL};
    p->pid = procs_spawn(argv, env, log);
    if (p->pid <= 0) {
        fprintf(stderr, "chaos: cannot start %s\n", p->name);
        p->pid = 0;
        return -1;
    }
    p->starts++;
    event("start %s pid %d", p->name, (int)p->pid);
    return 0;
}

/* SIGKILL and reap. */
static void proc_kill(struct proc *p)
{
    int st;
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
        ;
    p->pid = 0;
}

/* Reaps a process that ended on its own; true when it did. */
static bool proc_exited(struct proc *p, int *status)
{
    if (p->pid <= 0)
        return false;
    pid_t r = waitpid(p->pid, status, WNOHANG);
    if (r == p->pid) {
        p->pid = 0;
        return true;
    }
    return false;
}

static void stop_all_procs(void)
{
    for (int i = 0; i < N_PROCS; i++) {
        if (procs[i].pid > 0)
            procs_stop(procs[i].pid, SIGTERM, 3000);
        procs[i].pid = 0;
    }
}

/* Ends everything; keep: leave logs and the Redis directory behind. */
static void teardown(bool keep)
{
    stop_all_procs();
    if (!fx_up)
        return;
    fx_up = false;
    if (keep) {
        /* SIGTERM writes nothing more (AOF is already fsynced) and keeps
         * the directory, so the data can be loaded again for a look. */
        if (fx.pid > 0) {
            int st;
            kill(fx.pid, SIGTERM);
            while (waitpid(fx.pid, &st, 0) < 0 && errno == EINTR)
                ;
            fx.pid = 0;
        }
        free(fx.extra_args);
        fx.extra_args = NULL;
        return;
    }
    redis_fixture_stop(&fx);
}

/* Removes the whole directory: logs, the side checks' files, the
 * workers' workspaces. */
static void remove_logs(void)
{
    if (events_log != NULL)
        fclose(events_log);
    events_log = NULL;
    const char *argv[] = {"/bin/rm", "-rf", logdir, NULL};
    procs_run(argv, NULL, NULL, NULL);
}

/* The watchdog: kill every child and leave. Async-signal-safe only. */
static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "chaos: watchdog expired, killing children\n";
    for (int i = 0; i < N_PROCS; i++)
        if (procs[i].pid > 0)
            kill(procs[i].pid, SIGKILL);
    if (fx.pid > 0)
        kill(fx.pid, SIGKILL);
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(2);
}

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---- Redis, from the driver's side --------------------------------------- */

static redisContext *rc;

static redisContext *connect_redis(void)
{
    struct timeval tv = {CMD_TIMEOUT_MS / 1000, 0};
    redisContext *c = redisConnectUnixWithTimeout(fx.sock, tv);
    if (c == NULL)
        return NULL;
    if (c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* One command, retried over reconnections for up to CMD_RETRY_MS (Redis
 * may be restarting; everything the driver writes is idempotent). Returns
 * the reply (caller frees) or NULL when Redis stayed away. */
static redisReply *rq(const char *fmt, ...)
{
    long long deadline = mono_ms() + CMD_RETRY_MS;
    for (;;) {
        if (rc == NULL)
            rc = connect_redis();
        if (rc != NULL) {
            va_list ap;
            va_start(ap, fmt);
            redisReply *r = redisvCommand(rc, fmt, ap);
            va_end(ap);
            if (r == NULL) {
                redisFree(rc);
                rc = NULL;
            } else if (r->type == REDIS_REPLY_ERROR &&
                       strncmp(r->str, "LOADING", 7) == 0) {
                freeReplyObject(r);
            } else {
                return r;
            }
        }
        if (mono_ms() > deadline)
            return NULL;
        sleep_ms(50);
    }
}

static void fatal(const char *what)
{
    fprintf(stderr, "chaos: fatal: %s\n", what);
    teardown(true);
    fprintf(stderr, "chaos: logs kept in %s, redis data in %s\n", logdir,
            fx.dir);
    printf("0 passed, 1 failed\n");
    exit(1);
}

static char kid_ids[CROWD_KIDS][8];

/* Fills in the crowd's children and returns the workflow with them. */
static const char *crowd_workflow(void)
{
    static char yaml[8192];
    size_t n = (size_t)snprintf(yaml, sizeof(yaml), "%s", workflow_yaml);
    n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
                          "  - id: crowd\n"
                          "    type: parallel\n"
                          "    dependencies: [prepare]\n"
                          "    condition: \"task.crowd === true\"\n"
                          "    steps:\n");
    for (int i = 0; i < CROWD_KIDS; i++) {
        snprintf(kid_ids[i], sizeof(kid_ids[i]), "c%d", i);
        steps[S_KID0 + i] =
            (struct step_info){kid_ids[i], kid_ids[i], true, "r-c", 1};
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
                              "      - {id: c%d, type: noop, params: "
                              "{result: r-c}}\n",
                              i);
    }
    if (n >= sizeof(yaml))
        fatal("crowd workflow too long");
    return yaml;
}

/* rq that gives up the whole program when Redis does not come back. */
#define RQ(...) rq_must(rq(__VA_ARGS__))
static redisReply *rq_must(redisReply *r)
{
    if (r == NULL)
        fatal("redis unreachable");
    return r;
}

static long long reply_int(redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

/* Field value of a flat [k, v, k, v...] array, or NULL. */
static const char *field(const redisReply *f, const char *name)
{
    if (f == NULL || f->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t k = 0; k + 1 < f->elements; k += 2)
        if (f->element[k]->type == REDIS_REPLY_STRING &&
            strcmp(f->element[k]->str, name) == 0 &&
            f->element[k + 1]->type == REDIS_REPLY_STRING)
            return f->element[k + 1]->str;
    return NULL;
}

/* ---- runs ---------------------------------------------------------------- */

static int nruns = DEFAULT_RUNS;
static int brk_every = BRK_EVERY; /* main runs per breaker run */
static char digest[65];
static char (*run_status)[16]; /* last seen header status per run */

static void run_id(int n, char *out, size_t len)
{
    snprintf(out, len, "chaos-%d", n);
}

static void submit(int n)
{
    char run[32], task[160];
    run_id(n, run, sizeof(run));
    snprintf(task, sizeof(task),
             "{\"n\": %d, \"path\": \"%s\", \"audit\": %s, "
             "\"quick_ms\": %d, \"crowd\": %s}",
             n, task_fast(n) ? "fast" : "slow",
             task_audit(n) ? "true" : "false", task_quick_ms(n),
             task_crowd(n) ? "true" : "false");
    /* A resubmission after a lost reply creates nothing twice. */
    freeReplyObject(
        RQ("XADD weft:tasks * run %s digest %s task %s", run, digest, task));
}

/* ---- the breaker check (8) ------------------------------------------- */

static char brk_digest[65];
static long long *brk_submit_us; /* when each breaker run was submitted */
static int nbrk;

static void brk_run_id(int n, char *out, size_t len)
{
    snprintf(out, len, "brk-%d", n);
}

static void brk_submit(void)
{
    char run[32];
    brk_run_id(nbrk, run, sizeof(run));
    brk_submit_us[nbrk++] = real_us();
    freeReplyObject(
        RQ("XADD weft:tasks * run %s digest %s task {}", run, brk_digest));
}

static bool terminal_run(const char *st)
{
    return strcmp(st, "success") == 0 || strcmp(st, "failed") == 0 ||
           strcmp(st, "cancelled") == 0;
}

/* Refreshes run_status of unfinished runs; returns how many are done. */
static int poll_runs(void)
{
    int done = 0;
    for (int i = 0; i < nruns; i++) {
        if (terminal_run(run_status[i])) {
            done++;
            continue;
        }
        char run[32];
        run_id(i, run, sizeof(run));
        redisReply *r = rq("HGET weft:run:%s status", run);
        if (r == NULL)
            return done;
        if (r->type == REDIS_REPLY_STRING)
            snprintf(run_status[i], sizeof(run_status[i]), "%s", r->str);
        freeReplyObject(r);
        if (terminal_run(run_status[i]))
            done++;
    }
    return done;
}

/* ---- side runs of checks 9 and 10 ---------------------------------------- */

/* Runs of one side workflow: ids "<prefix>-<k>", their last seen header
 * status. */
struct side {
    const char *prefix;
    char digest[65];
    int n, cap;
    char (*status)[16];
};

static struct side hang_runs = {.prefix = "hang"};
static struct side esc_runs = {.prefix = "esc"};

static void side_run_id(const struct side *sd, int k, char *out, size_t len)
{
    snprintf(out, len, "%s-%d", sd->prefix, k);
}

static void side_init(struct side *sd, int every)
{
    sd->cap = nruns / every + 1;
    sd->status = calloc((size_t)sd->cap, sizeof(*sd->status));
    if (sd->status == NULL)
        fatal("out of memory");
}

static void side_submit(struct side *sd, const char *task)
{
    char run[32];
    if (sd->n == sd->cap)
        return;
    side_run_id(sd, sd->n++, run, sizeof(run));
    freeReplyObject(RQ("XADD weft:tasks * run %s digest %s task %s", run,
                       sd->digest, task));
}

/* Refreshes the statuses of unfinished runs; true when all ended. */
static bool side_poll(struct side *sd)
{
    bool all = true;
    for (int k = 0; k < sd->n; k++) {
        if (terminal_run(sd->status[k]))
            continue;
        char run[32];
        side_run_id(sd, k, run, sizeof(run));
        redisReply *r = rq("HGET weft:run:%s status", run);
        if (r == NULL)
            return false;
        if (r->type == REDIS_REPLY_STRING)
            snprintf(sd->status[k], sizeof(sd->status[k]), "%s", r->str);
        freeReplyObject(r);
        all = all && terminal_run(sd->status[k]);
    }
    return all;
}

/* k from "<prefix>-<k>", or -1. */
static int side_index(const struct side *sd, const char *run)
{
    size_t n = strlen(sd->prefix);
    if (strncmp(run, sd->prefix, n) != 0 || run[n] != '-')
        return -1;
    char *end;
    long k = strtol(run + n + 1, &end, 10);
    if (end == run + n + 1 || *end != '\0' || k < 0 || k >= sd->n)
        return -1;
    return (int)k;
}

/* ---- the hung persona (check 9) ------------------------------------------ */

static bool hang_stubborn(int k)
{
    return k % HANG_STUBBORN_EVERY == 0;
}

static void hang_submit(void)
{
    side_submit(&hang_runs, hang_stubborn(hang_runs.n)
                                ? "{\"stubborn\": true}"
                                : "{\"stubborn\": false}");
}

/* A process a hung persona logged: itself or its child. */
struct hproc {
    int run; /* hang run index */
    int attempt;
    bool child;
    pid_t pid;
    long long ticks;    /* its start time in /proc/PID/stat */
    long long us;       /* when it was logged (running by then) */
    pid_t worker;       /* the persona's parent when it logged */
    long long alive_us; /* last seen alive; 0 never */
    long long gone_us;  /* first seen gone; 0 not yet */
};

static struct hproc *hprocs;
static int nhprocs, hprocs_cap;
static long hang_log_off; /* bytes of the pid log already read */
static char hang_tag[32]; /* the children's `sleep` argument */
static long long hang_next_poll;

static void hang_log_path(char *out, size_t n)
{
    snprintf(out, n, "%s/hang-pids.log", logdir);
}

/* True while pid is the process that started at ticks and is neither a
 * zombie nor dead. */
static bool pid_alive(pid_t pid, long long ticks)
{
    long long start = -1;
    return procs_alive(pid, &start) && start == ticks;
}

static void hproc_add(int run, int attempt, bool child, long long pid,
                      long long ticks, long long us, long long worker)
{
    if (nhprocs == hprocs_cap) {
        hprocs_cap = hprocs_cap ? hprocs_cap * 2 : 64;
        hprocs = realloc(hprocs, (size_t)hprocs_cap * sizeof(*hprocs));
        if (hprocs == NULL)
            fatal("out of memory");
    }
    struct hproc *h = &hprocs[nhprocs++];
    memset(h, 0, sizeof(*h));
    h->run = run;
    h->attempt = attempt;
    h->child = child;
    h->pid = (pid_t)pid;
    h->ticks = ticks;
    h->us = us;
    h->worker = (pid_t)worker;
}

/* Reads the lines the hung personas appended since the last call:
 * "<run> <step> <attempt> <pid> <start> <child pid> <start> <us>
 * <worker pid>". */
static void hang_read_log(void)
{
    char path[96], line[512];
    hang_log_path(path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    if (fseek(f, hang_log_off, SEEK_SET) != 0) {
        fclose(f);
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        if (line[len - 1] != '\n')
            break; /* still being written: read again later */
        hang_log_off += (long)len;
        char *tok[9];
        int nt = 0;
        for (char *p = line; nt < 9;) {
            while (*p == ' ')
                p++;
            if (*p == '\n' || *p == '\0')
                break;
            tok[nt++] = p;
            p += strcspn(p, " \n");
            if (*p == '\0')
                break;
            *p++ = '\0';
        }
        int k = nt == 9 ? side_index(&hang_runs, tok[0]) : -1;
        if (k < 0) {
            printf("chaos: bad line in %s: %s", path, line);
            continue;
        }
        int attempt = (int)strtol(tok[2], NULL, 10);
        long long us = strtoll(tok[7], NULL, 10);
        long long worker = strtoll(tok[8], NULL, 10);
        hproc_add(k, attempt, false, strtoll(tok[3], NULL, 10),
                  strtoll(tok[4], NULL, 10), us, worker);
        hproc_add(k, attempt, true, strtoll(tok[5], NULL, 10),
                  strtoll(tok[6], NULL, 10), us, worker);
    }
    fclose(f);
}

/* Notes which logged processes are still alive. */
static void hang_poll(void)
{
    hang_read_log();
    long long now = real_us();
    for (int i = 0; i < nhprocs; i++) {
        struct hproc *h = &hprocs[i];
        if (h->gone_us != 0)
            continue;
        if (pid_alive(h->pid, h->ticks))
            h->alive_us = now;
        else
            h->gone_us = now;
    }
}

/* How long a hung process may live: its timeout, the grace when it
 * ignores SIGTERM, and the margin (ms). */
static long long hang_life_limit_ms(int run)
{
    return HANG_TIMEOUT_MS + (hang_stubborn(run) ? HANG_GRACE_MS : 0) +
           HANG_MARGIN_MS;
}

/* Kills the processes whose command line is the hung children's,
 * wherever they are (the pid log misses a child whose persona died
 * before logging it); returns how many there were. */
static int hang_sweep(void)
{
    char want[64];
    int wlen =
        snprintf(want, sizeof(want), "sleep%c%s%c", '\0', hang_tag, '\0');
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[64];
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        if (n != (size_t)wlen || memcmp(buf, want, n) != 0)
            continue;
        found++;
        kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
    return found;
}

/* ---- the escalations (check 10) ------------------------------------------ */

/* The answer to escalation run k: --retry for even k, else --skip; one
 * in ESC_DUP_EVERY twice at once; --set count=k (a JSON number) beside
 * answer=esc-k (a string) for half of each answer. */
static bool esc_retry(int k)
{
    return k % 2 == 0;
}

static bool esc_dup(int k)
{
    return k % ESC_DUP_EVERY == 1;
}

static bool esc_count(int k)
{
    return k % 4 >= 2;
}

struct esc {
    bool answered; /* a weft resolve for it exited 0 */
    int calls;     /* weft resolve runs */
    pid_t cli[2];  /* running ones */
    long long cli_until[2];
};

static struct esc *escs;
static long long esc_next_poll;
static int cli_sent, cli_refused, cli_other; /* exits 0, 1, anything else */

static void esc_submit(void)
{
    char task[48];
    snprintf(task, sizeof(task), "{\"n\": %d}", esc_runs.n);
    side_submit(&esc_runs, task);
}

static pid_t esc_spawn(int k)
{
    char bin[512], run[32], answer[48], count[48], log[96];
    const char *argv[16];
    int n = 0;
    side_run_id(&esc_runs, k, run, sizeof(run));
    snprintf(answer, sizeof(answer), "answer=%s", run);
    snprintf(count, sizeof(count), "count=%d", k);
    argv[n++] = procs_binary("cli/weft", bin, sizeof(bin));
    argv[n++] = "resolve";
    argv[n++] = run;
    argv[n++] = "gate";
    argv[n++] = esc_retry(k) ? "--retry" : "--skip";
    argv[n++] = "--set";
    argv[n++] = answer;
    if (esc_count(k)) {
        argv[n++] = "--set";
        argv[n++] = count;
    }
    argv[n++] = "--by";
    argv[n++] = "chaos";
    argv[n] = NULL;
    const char *env[] = {env_url, NULL};
    snprintf(log, sizeof(log), "%s/resolve.log", logdir);
    pid_t pid = procs_spawn(argv, env, log);
    if (pid <= 0)
        fatal("cannot start weft resolve");
    escs[k].calls++;
    event("resolve %s pid %d", run, (int)pid);
    return pid;
}

/* Reaps the weft resolve processes that ended (or kills those that
 * hang: every one is bounded); returns how many still run. */
static int esc_reap(void)
{
    int running = 0;
    for (int k = 0; k < esc_runs.n; k++) {
        for (int c = 0; c < 2; c++) {
            struct esc *e = &escs[k];
            int st;
            if (e->cli[c] <= 0)
                continue;
            pid_t r = waitpid(e->cli[c], &st, WNOHANG);
            if (r == 0 && mono_ms() < e->cli_until[c]) {
                running++;
                continue;
            }
            if (r == 0) {
                kill(e->cli[c], SIGKILL);
                waitpid(e->cli[c], &st, 0);
                printf("chaos: weft resolve for esc-%d ran %d s: killed\n", k,
                       CLI_TIMEOUT_MS / 1000);
            }
            e->cli[c] = 0;
            if (r < 0)
                continue;
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
                cli_sent++;
                e->answered = true;
            } else if (WIFEXITED(st) && WEXITSTATUS(st) == 1) {
                cli_refused++;
            } else {
                cli_other++;
                printf("chaos: weft resolve for esc-%d: %s %d\n", k,
                       WIFSIGNALED(st) ? "signal" : "exit",
                       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            }
        }
    }
    return running;
}

/* Answers the escalation runs whose step waits: a weft resolve each
 * (two for the duplicates' first answer), none while one runs. */
static void esc_tick(void)
{
    esc_reap();
    long long now = mono_ms();
    if (now < esc_next_poll)
        return;
    esc_next_poll = now + ESC_POLL_MS;
    for (int k = 0; k < esc_runs.n; k++) {
        struct esc *e = &escs[k];
        if (e->answered || e->cli[0] > 0 || e->cli[1] > 0 ||
            terminal_run(esc_runs.status[k]))
            continue;
        char run[32];
        side_run_id(&esc_runs, k, run, sizeof(run));
        redisReply *r = rq("HGET weft:run:%s:steps gate", run);
        if (r == NULL)
            return;
        bool waiting = r->type == REDIS_REPLY_STRING &&
                       strcmp(r->str, "waiting_for_human") == 0;
        freeReplyObject(r);
        if (!waiting)
            continue;
        int n = esc_dup(k) && e->calls == 0 ? 2 : 1;
        for (int c = 0; c < n; c++) {
            e->cli[c] = esc_spawn(k);
            e->cli_until[c] = mono_ms() + CLI_TIMEOUT_MS;
        }
    }
}

/* What the side runs need from the main loop, every tick. */
static void side_tick(void)
{
    if (mono_ms() >= hang_next_poll) {
        hang_poll();
        hang_next_poll = mono_ms() + HANG_POLL_MS;
    }
    esc_tick();
}

/* ---- chaos events -------------------------------------------------------- */

struct kill_ev {
    int proc;
    pid_t pid;
    long long us; /* just before the SIGKILL */
    /* scheduler kills: the messages the dead consumer held */
    int nheld, nleft;
    char (*held)[40];
    bool *held_tasks; /* held[i] is on weft:tasks (else weft:events) */
    bool *held_done;
    long long held_done_us; /* when the last one was acknowledged */
};

struct redis_ev {
    bool sigkill;
    long long down_us, up_us;
    bool ok;
};

static struct kill_ev *kills;
static int nkills, kills_cap;
static struct redis_ev revs[REDIS_EVENTS];
static int nrevs;

/* Records the messages a killed scheduler left pending. */
static void watch_held(struct kill_ev *k, const char *name)
{
    static const char *streams[2] = {"weft:events", "weft:tasks"};
    k->held = calloc(HELD_MAX, sizeof(*k->held));
    k->held_tasks = calloc(HELD_MAX, sizeof(bool));
    k->held_done = calloc(HELD_MAX, sizeof(bool));
    if (!k->held || !k->held_tasks || !k->held_done)
        fatal("out of memory");
    for (int s = 0; s < 2; s++) {
        redisReply *r =
            rq("XPENDING %s schedulers - + %d %s", streams[s], HELD_MAX, name);
        if (r == NULL)
            continue;
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements;
             i++) {
            redisReply *e = r->element[i];
            if (k->nheld == HELD_MAX || e->type != REDIS_REPLY_ARRAY ||
                e->elements < 1 || e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            snprintf(k->held[k->nheld], sizeof(k->held[0]), "%s",
                     e->element[0]->str);
            k->held_tasks[k->nheld] = s == 1;
            k->nheld++;
        }
        freeReplyObject(r);
    }
    k->nleft = k->nheld;
}

/* Marks held messages acknowledged since the last poll. */
static void poll_held(void)
{
    for (int i = 0; i < nkills; i++) {
        struct kill_ev *k = &kills[i];
        if (k->nleft == 0)
            continue;
        for (int j = 0; j < k->nheld; j++) {
            if (k->held_done[j])
                continue;
            const char *s = k->held_tasks[j] ? "weft:tasks" : "weft:events";
            redisReply *r =
                rq("XPENDING %s schedulers %s %s 1", s, k->held[j], k->held[j]);
            if (r == NULL)
                return;
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
                k->held_done[j] = true;
                if (--k->nleft == 0)
                    k->held_done_us = real_us();
            }
            freeReplyObject(r);
        }
    }
}

static long restart_max_ms = DEFAULT_RESTART_MAX_MS;
static int down_max_sched, down_max_work; /* most down at once */

static void note_down(void)
{
    int ds = 0, dw = 0;
    for (int i = 0; i < N_PROCS; i++)
        if (procs[i].pid <= 0)
            procs[i].scheduler ? ds++ : dw++;
    if (ds > down_max_sched)
        down_max_sched = ds;
    if (dw > down_max_work)
        down_max_work = dw;
}

/* Starts killed processes whose time has come (all of them when now is
 * negative). */
static void restart_due(long long now)
{
    for (int i = 0; i < N_PROCS; i++) {
        struct proc *p = &procs[i];
        if (p->pid > 0 || p->restart_at == 0)
            continue;
        if (now >= 0 && now < p->restart_at)
            continue;
        p->restart_at = 0;
        if (proc_start(p) != 0)
            fatal("cannot restart a process");
    }
}

/* Kills a random live process (or none when all are down). */
static void chaos_kill(void)
{
    int alive[N_PROCS], nalive = 0;
    for (int j = 0; j < N_PROCS; j++)
        if (procs[j].pid > 0)
            alive[nalive++] = j;
    if (nalive == 0)
        return;
    int i = alive[rng_range(0, nalive - 1)];
    struct proc *p = &procs[i];
    if (nkills == kills_cap) {
        kills_cap = kills_cap ? kills_cap * 2 : 256;
        kills = realloc(kills, (size_t)kills_cap * sizeof(*kills));
        if (kills == NULL)
            fatal("out of memory");
    }
    struct kill_ev *k = &kills[nkills++];
    memset(k, 0, sizeof(*k));
    k->proc = i;
    k->pid = p->pid;
    k->us = real_us();
    event("kill %s pid %d", p->name, (int)p->pid);
    proc_kill(p);
    p->kills++;
    if (p->scheduler)
        watch_held(k, p->name);
    p->restart_at = mono_ms() + rng_range(0, (int)restart_max_ms);
    note_down();
    restart_due(mono_ms());
}

static void chaos_redis(bool sigkill)
{
    struct redis_ev *e = &revs[nrevs++];
    e->sigkill = sigkill;
    e->down_us = real_us();
    event("redis %s", sigkill ? "SIGKILL" : "SIGTERM");
    if (sigkill)
        redis_fixture_kill(&fx);
    e->ok = redis_fixture_restart(&fx) == 0;
    e->up_us = real_us();
    event("redis back");
    printf("chaos: redis %s + restart: down %.0f ms%s\n",
           sigkill ? "SIGKILL" : "SIGTERM",
           (double)(e->up_us - e->down_us) / 1000.0,
           e->ok ? "" : " (restart FAILED)");
    if (!e->ok)
        fatal("redis did not restart");
    if (rc != NULL) {
        redisFree(rc);
        rc = NULL;
    }
}

/* Restarts processes that ended on their own; counts them. */
static void reap_unexpected(void)
{
    for (int i = 0; i < N_PROCS; i++) {
        int st = 0;
        if (!proc_exited(&procs[i], &st))
            continue;
        procs[i].exits++;
        event("exit %s status %d", procs[i].name, st);
        if (WIFSIGNALED(st))
            printf("chaos: %s ended on its own: signal %d\n", procs[i].name,
                   WTERMSIG(st));
        else
            printf("chaos: %s ended on its own: exit %d\n", procs[i].name,
                   WEXITSTATUS(st));
        proc_start(&procs[i]);
    }
}

/* ---- history analysis ------------------------------------------------- */

struct hent {
    long long us;
    int step; /* enum step_id, -1 for run entries, -2 unknown */
    char status[24];
    int attempt;
    int worker;      /* proc index of the worker, -1 none */
    bool has_worker; /* a worker's transition (start) */
};

/* Every history entry's time and maker, for the recovery figures. */
struct stamp {
    long long us;
    bool scheduler;
};

static struct stamp *stamps;
static size_t nstamps, stamps_cap;

static double *reclaim_ms;
static size_t nreclaim, reclaim_cap;

static void push_stamp(long long us, bool scheduler)
{
    if (nstamps == stamps_cap) {
        stamps_cap = stamps_cap ? stamps_cap * 2 : 4096;
        stamps = realloc(stamps, stamps_cap * sizeof(*stamps));
        if (stamps == NULL)
            fatal("out of memory");
    }
    stamps[nstamps].us = us;
    stamps[nstamps].scheduler = scheduler;
    nstamps++;
}

static void push_reclaim(double ms)
{
    if (nreclaim == reclaim_cap) {
        reclaim_cap = reclaim_cap ? reclaim_cap * 2 : 256;
        reclaim_ms = realloc(reclaim_ms, reclaim_cap * sizeof(double));
        if (reclaim_ms == NULL)
            fatal("out of memory");
    }
    reclaim_ms[nreclaim++] = ms;
}

static int step_index(const char *id)
{
    for (int i = 0; i < N_STEPS; i++)
        if (strcmp(steps[i].id, id) == 0)
            return i;
    return -2;
}

static int proc_index(const char *name)
{
    for (int i = 0; i < N_PROCS; i++)
        if (strcmp(procs[i].name, name) == 0)
            return i;
    return -1;
}

/* A run's history (XRANGE; *reply for the caller to free) and the field
 * arrays of its well-formed entries, in order (*fields, borrowed from
 * *reply, for the caller to free). Returns their count. */
static int history_fields(const char *run, redisReply **reply,
                          const redisReply ***fields)
{
    redisReply *r = RQ("XRANGE weft:run:%s:history - +", run);
    const redisReply **f = NULL;
    int n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        f = calloc(r->elements, sizeof(*f));
        if (f == NULL)
            fatal("out of memory");
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2)
            f[n++] = e->element[1];
    }
    *reply = r;
    *fields = f;
    return n;
}

/* Reads a run's history into *out (caller frees); returns the count. */
static int load_history(const char *run, struct hent **out)
{
    redisReply *r;
    const redisReply **fs;
    int n = history_fields(run, &r, &fs);
    struct hent *h = n > 0 ? calloc((size_t)n, sizeof(*h)) : NULL;
    if (n > 0 && h == NULL)
        fatal("out of memory");
    for (int i = 0; i < n; i++) {
        const redisReply *f = fs[i];
        const char *type = field(f, "type"), *step = field(f, "step");
        const char *st = field(f, "status"), *us = field(f, "us");
        const char *att = field(f, "attempt"), *wk = field(f, "worker");
        struct hent *x = &h[i];
        x->us = us ? strtoll(us, NULL, 10) : 0;
        if (type && strcmp(type, "run") == 0)
            x->step = -1;
        else
            x->step = step ? step_index(step) : -2;
        snprintf(x->status, sizeof(x->status), "%s", st ? st : "");
        x->attempt = att ? (int)strtol(att, NULL, 10) : 0;
        x->has_worker = wk != NULL && wk[0] != '\0';
        x->worker = wk ? proc_index(wk) : -1;
    }
    free(fs);
    freeReplyObject(r);
    *out = h;
    return n;
}

static void print_step_history(const char *run, const struct hent *h, int n,
                               int step)
{
    printf("    history of %s %s:\n", run, step >= 0 ? steps[step].id : "run");
    for (int i = 0; i < n; i++) {
        if (h[i].step != step)
            continue;
        printf("      us=%lld status=%s attempt=%d%s%s\n", h[i].us, h[i].status,
               h[i].attempt, h[i].has_worker ? " worker=" : "",
               h[i].has_worker && h[i].worker >= 0 ? procs[h[i].worker].name
               : h[i].has_worker                   ? "?"
                                                   : "");
    }
}

/* Reclaim latency samples of one run: for each worker kill, each step
 * whose last entry before the kill is that worker's `running` (and no
 * earlier kill of it came after that entry) and whose next entry is
 * another `running` of the same attempt (the job was taken over, not
 * already reported) gives next.us - kill.us. */
static void reclaim_samples(const struct hent *h, int n)
{
    for (int k = 0; k < nkills; k++) {
        const struct kill_ev *ev = &kills[k];
        if (procs[ev->proc].scheduler)
            continue;
        for (int s = 0; s < N_STEPS; s++) {
            int last = -1, next = -1;
            for (int i = 0; i < n; i++) {
                if (h[i].step != s)
                    continue;
                if (h[i].us < ev->us)
                    last = i;
                else if (next < 0)
                    next = i;
            }
            if (last < 0 || next < 0)
                continue;
            if (strcmp(h[last].status, "running") != 0 ||
                h[last].worker != ev->proc)
                continue;
            /* Orphaned by an earlier kill of the same worker: counted
             * there. */
            bool earlier = false;
            for (int j = 0; j < k && !earlier; j++)
                earlier = kills[j].proc == ev->proc && kills[j].us > h[last].us;
            if (earlier)
                continue;
            if (strcmp(h[next].status, "running") != 0 ||
                h[next].attempt != h[last].attempt)
                continue;
            push_reclaim((double)(h[next].us - ev->us) / 1000.0);
        }
    }
}

/* ---- checks ---------------------------------------------------------------
 */

struct check {
    const char *name;
    long problems;
};

enum {
    C_FINISHED,
    C_NO_DUP,
    C_NO_LOST,
    C_NO_PENDING,
    C_EFFECTS,
    C_NO_EXITS,
    C_CLEAN_STOP,
    C_BREAKER,
    C_HANG,
    C_ESCALATE,
    N_CHECKS
};

static struct check checks[N_CHECKS] = {
    [C_FINISHED] = {"every run finished with success", 0},
    [C_NO_DUP] = {"no transition applied twice", 0},
    [C_NO_LOST] = {"no step lost", 0},
    [C_NO_PENDING] = {"nothing left pending", 0},
    [C_EFFECTS] = {"every side effect happened", 0},
    [C_NO_EXITS] = {"no process exited on its own", 0},
    [C_CLEAN_STOP] = {"every process exits 0 on SIGTERM", 0},
    [C_BREAKER] = {"a failing persona's breaker opens and stops its requests",
                   0},
    [C_HANG] = {"a hung persona is killed at its timeout", 0},
    [C_ESCALATE] = {"an escalated run resumes after weft resolve", 0},
};

static bool problem(int c)
{
    return checks[c].problems++ < SHOW_MAX;
}

/* Final statuses the task allows for step s ("a|b" alternatives). */
static const char *expected_status(int n, int s, const char *race_winner)
{
    switch (s) {
    case S_AUDIT:
        return task_audit(n) ? "success" : "skipped";
    case S_FAST_A:
    case S_FAST_B:
        return task_fast(n) ? "success" : "skipped";
    case S_SLOW_A:
        return task_fast(n) ? "skipped" : "success";
    case S_QUICK:
    case S_SLUGGISH:
        /* wait_for any: the winner succeeded, the loser was stopped. */
        if (race_winner != NULL && strcmp(race_winner, steps[s].id) == 0)
            return "success";
        return race_winner != NULL ? "cancelled|skipped" : "success";
    default:
        if (s >= S_CROWD) /* the crowd and its children */
            return task_crowd(n) ? "success" : "skipped";
        return "success";
    }
}

static bool status_in(const char *st, const char *alts)
{
    size_t n = strlen(st);
    for (const char *p = alts; p != NULL;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, st, n) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

/* steps[s].result with "%d" replaced by n. */
static void expected_result(int s, int n, char *out, size_t len)
{
    const char *r = steps[s].result, *pct = strstr(r, "%d");
    if (pct == NULL)
        snprintf(out, len, "%s", r);
    else
        snprintf(out, len, "%.*s%d%s", (int)(pct - r), r, n, pct + 2);
}

struct figures {
    int started, succeeded, failed_runs, unfinished;
    long dup_success, dup_other, lost, missing_effects;
    long extra_attempts;
    int won_quick, won_sluggish;
};

static struct figures fig;

/* All checks on run n except pending (global). */
static void check_run(int n)
{
    char run[32];
    run_id(n, run, sizeof(run));

    redisReply *hdr = RQ("HGETALL weft:run:%s", run);
    if (hdr->type == REDIS_REPLY_ARRAY && hdr->elements > 0)
        fig.started++;
    const char *rs = field(hdr, "status");
    if (rs != NULL && strcmp(rs, "success") == 0) {
        fig.succeeded++;
    } else {
        if (rs != NULL && terminal_run(rs))
            fig.failed_runs++;
        else
            fig.unfinished++;
        if (problem(C_FINISHED)) {
            const char *err = field(hdr, "error");
            printf("  [finished] run %s: status %s%s%s\n", run,
                   rs ? rs : "(no header)", err ? ", error: " : "",
                   err ? err : "");
        }
    }
    freeReplyObject(hdr);

    struct hent *h = NULL;
    int nh = load_history(run, &h);
    redisReply *sh = RQ("HGETALL weft:run:%s:steps", run);
    redisReply *st = RQ("HGETALL weft:run:%s:state", run);

    for (int i = 0; i < nh; i++)
        push_stamp(h[i].us, !h[i].has_worker);
    reclaim_samples(h, nh);

    /* 2: no transition twice. */
    int run_ends = 0;
    for (int i = 0; i < nh; i++)
        if (h[i].step == -1 && strcmp(h[i].status, "running") != 0)
            run_ends++;
    if (run_ends > 1) {
        fig.dup_other += run_ends - 1;
        if (problem(C_NO_DUP)) {
            printf("  [dup] run %s ended %d times\n", run, run_ends);
            print_step_history(run, h, nh, -1);
        }
    }

    const char *winner = NULL;
    const char *qs = field(sh, "quick"), *ss = field(sh, "sluggish");
    if (qs && strcmp(qs, "success") == 0) {
        winner = "quick";
        fig.won_quick++;
    } else if (ss && strcmp(ss, "success") == 0) {
        winner = "sluggish";
        fig.won_sluggish++;
    }
    if (qs && ss && strcmp(qs, "success") == 0 && strcmp(ss, "success") == 0) {
        winner = NULL; /* both: reported below as unexpected statuses */
        fig.dup_other++;
        if (problem(C_NO_DUP))
            printf("  [dup] run %s: both children of the any group "
                   "succeeded\n",
                   run);
    }

    for (int s = 0; s < N_STEPS; s++) {
        const char *fin = field(sh, steps[s].id);
        int successes = 0, dup_q = 0, dup_r = 0, comp_running = 0;
        int last = -1;
        int queued_at[16] = {0}, retry_at[16] = {0};
        for (int i = 0; i < nh; i++) {
            if (h[i].step != s)
                continue;
            last = i;
            int a = h[i].attempt >= 0 && h[i].attempt < 16 ? h[i].attempt : 0;
            if (strcmp(h[i].status, "success") == 0)
                successes++;
            else if (strcmp(h[i].status, "queued") == 0 && queued_at[a]++)
                dup_q++;
            else if (strcmp(h[i].status, "retrying") == 0 && retry_at[a]++)
                dup_r++;
            else if (strcmp(h[i].status, "running") == 0 && !steps[s].leaf &&
                     comp_running++)
                dup_r++;
        }
        bool ok_final = fin != NULL && strcmp(fin, "success") == 0;
        int want = ok_final ? 1 : 0;
        if (successes != want || dup_q || dup_r) {
            if (successes > want)
                fig.dup_success += successes - want;
            fig.dup_other += dup_q + dup_r;
            if (successes > want || dup_q || dup_r) {
                if (problem(C_NO_DUP)) {
                    printf("  [dup] run %s step %s: %d success entries "
                           "(final %s), %d duplicate queued, %d duplicate "
                           "retrying/activation\n",
                           run, steps[s].id, successes, fin ? fin : "-", dup_q,
                           dup_r);
                    print_step_history(run, h, nh, s);
                }
            }
        }

        /* 3: the final status is the expected one and the history agrees. */
        const char *exp = expected_status(n, s, winner);
        bool lost = fin == NULL || !status_in(fin, exp);
        bool disagree =
            fin != NULL && last >= 0 && strcmp(h[last].status, fin) != 0;
        /* A step that never left pending has no history. */
        if (fin != NULL && last < 0 && strcmp(fin, "pending") != 0)
            disagree = true;
        if (successes < want)
            disagree = true;
        if (lost || disagree) {
            fig.lost++;
            if (problem(C_NO_LOST)) {
                printf("  [lost] run %s step %s: final %s, expected %s%s\n",
                       run, steps[s].id, fin ? fin : "(absent)", exp,
                       disagree ? "; history disagrees" : "");
                print_step_history(run, h, nh, s);
            }
        }

        if (ok_final && steps[s].leaf) {
            char key[64];
            snprintf(key, sizeof(key), "%s:attempt", steps[s].id);
            const char *att = field(sh, key);
            if (att && strtol(att, NULL, 10) > steps[s].attempts)
                fig.extra_attempts++;
        }

        /* 5: the side effect of every leaf that succeeded. */
        if (ok_final && steps[s].leaf) {
            char key[64], want_json[96], val[64];
            snprintf(key, sizeof(key), "%s_result", steps[s].skey);
            expected_result(s, n, val, sizeof(val));
            snprintf(want_json, sizeof(want_json), "\"%s\"", val);
            const char *got = field(st, key);
            if (got == NULL || strcmp(got, want_json) != 0) {
                fig.missing_effects++;
                if (problem(C_EFFECTS)) {
                    printf("  [effect] run %s: state %s = %s, expected %s\n",
                           run, key, got ? got : "(absent)", want_json);
                    print_step_history(run, h, nh, s);
                }
            }
        }
    }
    freeReplyObject(sh);
    freeReplyObject(st);
    free(h);
}

/* Pending count of group on stream (0 when the stream or group is
 * missing: nothing can be pending there). */
static long long pending_of(const char *stream, const char *group)
{
    redisReply *r = RQ("XPENDING %s %s", stream, group);
    long long n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1)
        n = reply_int(r->element[0]);
    freeReplyObject(r);
    return n;
}

/* Queue streams: weft:q:* (SCAN). Returns how many were found. */
static int list_queues(char (*out)[128], int max)
{
    int n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = RQ("SCAN %s MATCH weft:q:* COUNT 1000", cursor);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements && n < max; i++)
            snprintf(out[n++], 128, "%s", keys->element[i]->str);
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

/* Sum of everything pending; prints each nonzero place when show. */
static long long pending_total(bool show)
{
    char queues[32][128];
    int nq = list_queues(queues, 32);
    long long total = 0, v;
    for (int i = 0; i < nq; i++) {
        v = pending_of(queues[i], "workers");
        total += v;
        if (v && show && problem(C_NO_PENDING))
            printf("  [pending] %s group workers: %lld\n", queues[i], v);
    }
    static const char *sched_streams[] = {"weft:events", "weft:tasks"};
    for (int i = 0; i < 2; i++) {
        v = pending_of(sched_streams[i], "schedulers");
        total += v;
        if (v && show && problem(C_NO_PENDING)) {
            printf("  [pending] %s group schedulers: %lld\n", sched_streams[i],
                   v);
            redisReply *r =
                RQ("XPENDING %s schedulers - + 5", sched_streams[i]);
            for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k < r->elements;
                 k++) {
                redisReply *e = r->element[k];
                if (e->type == REDIS_REPLY_ARRAY && e->elements == 4)
                    printf("    id %s consumer %s idle %lld ms deliveries "
                           "%lld\n",
                           e->element[0]->str, e->element[1]->str,
                           e->element[2]->integer, e->element[3]->integer);
            }
            freeReplyObject(r);
        }
    }
    return total;
}

/* Lines of the breaker persona's request log. */
static int brk_requests(void)
{
    char path[96], line[256];
    snprintf(path, sizeof(path), "%s/down-requests.log", logdir);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        n++;
    if (f != NULL)
        fclose(f);
    return n;
}

/* Check 8 (see the top of the file). */
static void check_breaker(void)
{
    redisReply *b = RQ("HGETALL weft:breaker:down");
    const char *state = field(b, "state"), *opened = field(b, "opened");
    const char *trips = field(b, "trips");
    long long opened_us = opened ? strtoll(opened, NULL, 10) * 1000 : -1;
    if (state == NULL || strcmp(state, "open") != 0 || opened_us < 0 ||
        trips == NULL || strcmp(trips, "1") != 0) {
        if (problem(C_BREAKER))
            printf("  [breaker] weft:breaker:down: state %s, trips %s "
                   "(want open, 1)\n",
                   state ? state : "(none)", trips ? trips : "(none)");
    }
    freeReplyObject(b);
    int queued = 0, rejected = 0, after = 0;
    for (int i = 0; i < nbrk; i++) {
        char run[32];
        brk_run_id(i, run, sizeof(run));
        redisReply *st = RQ("HGET weft:run:%s status", run);
        bool failed =
            st->type == REDIS_REPLY_STRING && strcmp(st->str, "failed") == 0;
        freeReplyObject(st);
        if (!failed && problem(C_BREAKER))
            printf("  [breaker] %s did not fail\n", run);
        redisReply *h = RQ("XRANGE weft:run:%s:history - +", run);
        bool q = false, rej = false;
        for (size_t k = 0; h->type == REDIS_REPLY_ARRAY && k < h->elements;
             k++) {
            const redisReply *f = h->element[k]->element[1];
            const char *type = field(f, "type"), *hs = field(f, "status");
            if (type == NULL || hs == NULL)
                continue;
            q = q || (strcmp(type, "step") == 0 && strcmp(hs, "queued") == 0);
            rej = rej ||
                  (strcmp(type, "breaker") == 0 && strcmp(hs, "rejected") == 0);
        }
        freeReplyObject(h);
        queued += q;
        rejected += rej;
        if (opened_us >= 0 &&
            brk_submit_us[i] > opened_us + BRK_MARGIN_MS * 1000LL) {
            after++;
            if ((q || !rej) && problem(C_BREAKER))
                printf("  [breaker] %s, submitted %.1f s after the breaker "
                       "opened, was %s\n",
                       run, (double)(brk_submit_us[i] - opened_us) / 1e6,
                       q ? "queued" : "not rejected");
        }
    }
    int reqs = brk_requests();
    /* Each queued job reaches the persona at least once (more when a
     * worker died under it); without a queued job, no request. */
    if ((reqs < queued || queued < BRK_THRESHOLD || after == 0) &&
        problem(C_BREAKER))
        printf("  [breaker] %d requests for %d queued jobs; %d runs after "
               "the breaker opened (want >= %d queued, requests >= queued, "
               "some runs after)\n",
               reqs, queued, after, BRK_THRESHOLD);
    printf("chaos: breaker: %d runs of an always-failing persona: %d queued "
           "(%d requests reached it), %d rejected while open, %d submitted "
           "after it opened\n",
           nbrk, queued, reqs, rejected, after);
}

/* ---- figures ------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_stamp(const void *a, const void *b)
{
    long long x = ((const struct stamp *)a)->us;
    long long y = ((const struct stamp *)b)->us;
    return (x > y) - (x < y);
}

/* q-quantile of sorted v[n] (nearest rank). */
static double quantile(const double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(q * (double)n + 0.999999);
    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return v[i - 1];
}

static void print_dist(const char *what, double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    if (n == 0) {
        printf("chaos: %s: no samples\n", what);
        return;
    }
    printf("chaos: %s: n=%zu p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", what, n,
           quantile(v, n, 0.5), quantile(v, n, 0.99), v[n - 1]);
}

/* First stamp strictly after us (of the scheduler when sched_only). */
static long long next_stamp(long long us, bool sched_only)
{
    size_t lo = 0, hi = nstamps;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (stamps[mid].us <= us)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < nstamps; i++)
        if (!sched_only || stamps[i].scheduler)
            return stamps[i].us;
    return -1;
}

/* Prints what else happened between from_us and to_us: kills of
 * schedulers and workers (other than skip), Redis restarts. */
static void print_context(const char *what, int skip, long long from_us,
                          long long to_us)
{
    int sk = 0, wk = 0, rr = 0;
    for (int i = 0; i < nkills; i++) {
        if (i == skip || kills[i].us < from_us || kills[i].us > to_us)
            continue;
        procs[kills[i].proc].scheduler ? sk++ : wk++;
    }
    for (int i = 0; i < nrevs; i++)
        if (revs[i].up_us >= from_us && revs[i].down_us <= to_us)
            rr++;
    printf("chaos:   slowest: %s killed at us=%lld, %s %.1f ms later; "
           "meanwhile %d other scheduler kill(s), %d worker kill(s), %d "
           "redis restart(s)\n",
           procs[kills[skip].proc].name, kills[skip].us, what,
           (double)(to_us - from_us) / 1000.0, sk, wk, rr);
}

/* ---- checks 9 and 10 ------------------------------------------------------
 */

/* A history entry of a side run: the fields the checks read, borrowed
 * from the XRANGE reply. */
struct sent {
    long long us;
    int attempt;
    const char *type, *step, *status, *error, *action, *by, *resumed;
};

/* Reads run's history; *reply must be freed after *out (which borrows
 * from it). Returns the count. */
static int side_history(const char *run, redisReply **reply, struct sent **out)
{
    const redisReply **fs;
    int n = history_fields(run, reply, &fs);
    struct sent *h = n > 0 ? calloc((size_t)n, sizeof(*h)) : NULL;
    if (n > 0 && h == NULL)
        fatal("out of memory");
    for (int i = 0; i < n; i++) {
        const redisReply *f = fs[i];
        struct sent *x = &h[i];
        const char *us = field(f, "us"), *att = field(f, "attempt");
        x->us = us ? strtoll(us, NULL, 10) : 0;
        x->attempt = att ? (int)strtol(att, NULL, 10) : 0;
        x->type = field(f, "type");
        x->step = field(f, "step");
        x->status = field(f, "status");
        x->error = field(f, "error");
        x->action = field(f, "action");
        x->by = field(f, "by");
        x->resumed = field(f, "resumed");
    }
    free(fs);
    *out = h;
    return n;
}

static bool str_is(const char *s, const char *want)
{
    return s != NULL && strcmp(s, want) == 0;
}

static void print_side_history(const char *run, const struct sent *h, int n)
{
    printf("    history of %s:\n", run);
    for (int i = 0; i < n; i++)
        printf("      us=%lld %s %s %s attempt=%d%s%s%s%s\n", h[i].us,
               h[i].type ? h[i].type : "?", h[i].step ? h[i].step : "",
               h[i].status ? h[i].status : "?", h[i].attempt,
               h[i].action ? " action=" : "", h[i].action ? h[i].action : "",
               h[i].error ? " error=" : "", h[i].error ? h[i].error : "");
}

/* HMGET of the fields names (NULL-ended, at most 14) of the hash key,
 * retried over reconnections like rq; the caller frees the reply, whose
 * element i is names[i]'s value or nil. */
static redisReply *hmget(const char *key, const char *const *names)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = "HMGET";
    argv[n++] = key;
    while (*names != NULL && n < 16)
        argv[n++] = *names++;
    redisReply *r = NULL;
    for (long long end = mono_ms() + CMD_RETRY_MS; r == NULL;) {
        if (rc == NULL)
            rc = connect_redis();
        if (rc != NULL) {
            r = redisCommandArgv(rc, n, argv, NULL);
            if (r == NULL) {
                redisFree(rc);
                rc = NULL;
            }
        }
        if (r == NULL && mono_ms() > end)
            fatal("redis unreachable");
        if (r == NULL)
            sleep_ms(50);
    }
    if (r->type != REDIS_REPLY_ARRAY || (int)r->elements != n - 2)
        fatal("unexpected reply to HMGET");
    return r;
}

static const char *elem(const redisReply *r, size_t i)
{
    return r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str
                                                     : NULL;
}

/* Check 9, on the runs (see the top of the file). */
static void check_hang_runs(void)
{
    long long span_limit = HANG_TIMEOUT_MS + HANG_SLACK_MS + HANG_MARGIN_MS;
    int ok_runs = 0, by_worker = 0, by_deadline = 0, stubborn = 0;
    double longest = 0;
    if (hang_runs.n == 0 && problem(C_HANG))
        printf("  [hang] no hang runs: too few --runs\n");
    for (int k = 0; k < hang_runs.n; k++) {
        char run[32], key[64];
        side_run_id(&hang_runs, k, run, sizeof(run));
        stubborn += hang_stubborn(k);
        long before = checks[C_HANG].problems;

        snprintf(key, sizeof(key), "weft:run:%s", run);
        redisReply *hdr = hmget(key, (const char *[]){"status", NULL});
        snprintf(key, sizeof(key), "weft:run:%s:steps", run);
        redisReply *sh = hmget(key, (const char *[]){"hang", "after", NULL});
        bool fin_ok = str_is(elem(hdr, 0), "success") &&
                      str_is(elem(sh, 0), "failed") &&
                      str_is(elem(sh, 1), "success");
        if (!fin_ok && problem(C_HANG))
            printf("  [hang] run %s: status %s, hang %s, after %s (want "
                   "success, failed, success)\n",
                   run, elem(hdr, 0) ? elem(hdr, 0) : "(none)",
                   elem(sh, 0) ? elem(sh, 0) : "(none)",
                   elem(sh, 1) ? elem(sh, 1) : "(none)");
        freeReplyObject(hdr);
        freeReplyObject(sh);

        redisReply *hr;
        struct sent *h;
        int nh = side_history(run, &hr, &h);
        long long first_running[HANG_ATTEMPTS + 1] = {0};
        long long end_us[HANG_ATTEMPTS + 1] = {0};
        int ends[HANG_ATTEMPTS + 1] = {0}, other = 0;
        for (int i = 0; i < nh; i++) {
            if (!str_is(h[i].type, "step") || !str_is(h[i].step, "hang"))
                continue;
            int a = h[i].attempt;
            if (a < 1 || a > HANG_ATTEMPTS) {
                other++;
                continue;
            }
            if (str_is(h[i].status, "running")) {
                if (first_running[a] == 0)
                    first_running[a] = h[i].us;
            } else if (str_is(h[i].status,
                              a < HANG_ATTEMPTS ? "retrying" : "failed")) {
                ends[a]++;
                end_us[a] = h[i].us;
                if (h[i].error && strstr(h[i].error, "timed out after"))
                    by_worker++;
                else if (h[i].error && strstr(h[i].error, "deadline"))
                    by_deadline++;
                else
                    other++;
            } else if (!str_is(h[i].status, "queued")) {
                other++;
            }
        }
        for (int a = 1; a <= HANG_ATTEMPTS; a++) {
            double span = (double)(end_us[a] - first_running[a]) / 1000.0;
            if (ends[a] != 1 || first_running[a] == 0) {
                other++;
                continue;
            }
            if (span > longest)
                longest = span;
            if (span > (double)span_limit && problem(C_HANG))
                printf("  [hang] run %s attempt %d ran %.1f s (limit %.1f "
                       "s)\n",
                       run, a, span / 1000.0, (double)span_limit / 1000.0);
        }
        if (other > 0 && problem(C_HANG)) {
            printf("  [hang] run %s: %d unexpected entries (want per attempt "
                   "queued, running, then one timed-out end)\n",
                   run, other);
            print_side_history(run, h, nh);
        }
        free(h);
        freeReplyObject(hr);
        if (checks[C_HANG].problems == before)
            ok_runs++;
    }
    printf("chaos: hung persona: %d runs (%d ignoring SIGTERM), %d ended as "
           "expected (two timed-out attempts, then the step after it); "
           "attempts ended by the worker's timeout %d, by the scheduler's "
           "deadline %d; longest attempt %.1f s (limit %.1f s)\n",
           hang_runs.n, stubborn, ok_runs, by_worker, by_deadline,
           longest / 1000.0, (double)span_limit / 1000.0);
}

/* The kill -9 of pid that fell in [from_us, to_us], or NULL. */
static const struct kill_ev *kill_of(pid_t pid, long long from_us,
                                     long long to_us)
{
    for (int i = 0; i < nkills; i++)
        if (kills[i].pid == pid && kills[i].us >= from_us &&
            kills[i].us <= to_us)
            return &kills[i];
    return NULL;
}

/* Check 9, on the processes (see the top of the file): called once every
 * job is acknowledged, so nothing hung may be running any more. */
static void check_hang_procs(void)
{
    long long end = mono_ms() + HANG_GONE_WAIT_MS;
    for (;;) {
        hang_poll();
        int alive = 0;
        for (int i = 0; i < nhprocs; i++)
            alive += hprocs[i].gone_us == 0;
        if (alive == 0 || mono_ms() >= end)
            break;
        sleep_ms(HANG_POLL_MS);
    }
    double *life = calloc((size_t)nhprocs + 1, sizeof(double));
    if (life == NULL)
        fatal("out of memory");
    int personas = 0, alive = 0, orphaned = 0;
    double orphan_max = 0;
    for (int i = 0; i < nhprocs; i++) {
        const struct hproc *x = &hprocs[i];
        personas += !x->child;
        long long seen = x->alive_us > x->us ? x->alive_us : x->us;
        life[i] = (double)(seen - x->us) / 1000.0;
        if (x->gone_us == 0) {
            alive++;
            if (problem(C_HANG))
                printf("  [hang] %s %d of hang-%d attempt %d still alive\n",
                       x->child ? "child" : "persona", (int)x->pid, x->run,
                       x->attempt);
            continue;
        }
        if (life[i] > (double)hang_life_limit_ms(x->run) && problem(C_HANG))
            printf("  [hang] %s %d of hang-%d attempt %d seen alive %.1f s "
                   "after it started (limit %.1f s)\n",
                   x->child ? "child" : "persona", (int)x->pid, x->run,
                   x->attempt, life[i] / 1000.0,
                   (double)hang_life_limit_ms(x->run) / 1000.0);
        /* Its worker killed with SIGKILL meanwhile: the warden's work. */
        const struct kill_ev *k = kill_of(x->worker, x->us, x->gone_us);
        if (k != NULL) {
            orphaned++;
            double after = (double)(seen - k->us) / 1000.0;
            if (after > orphan_max)
                orphan_max = after;
        }
    }
    int strays = hang_sweep();
    if (strays > 0 && problem(C_HANG))
        printf("  [hang] %d processes `sleep %s` left (killed now)\n", strays,
               hang_tag);
    printf("chaos: hung persona processes: %d logged (%d personas, %d "
           "children), %d still alive, %d strays; %d orphaned by a kill -9 "
           "of their worker, seen alive at most %.0f ms after it\n",
           nhprocs, personas, nhprocs - personas, alive, strays, orphaned,
           orphan_max);
    print_dist("hung process lifetime (logged -> last seen alive; limits "
               "2 s, 7 s ignoring SIGTERM, + 5 s)",
               life, (size_t)nhprocs);
    free(life);
}

/* Check 10 (see the top of the file). */
static void check_escalations(void)
{
    int ok_runs = 0, retried = 0, skipped = 0, stale = 0, dups = 0;
    double *lat = calloc((size_t)esc_runs.n + 1, sizeof(double));
    size_t nlat = 0;
    if (lat == NULL)
        fatal("out of memory");
    if (esc_runs.n == 0 && problem(C_ESCALATE))
        printf("  [escalate] no escalation runs: too few --runs\n");
    for (int k = 0; k < esc_runs.n; k++) {
        char run[32], key[64], want[48], count[24];
        side_run_id(&esc_runs, k, run, sizeof(run));
        snprintf(want, sizeof(want), "\"%s\"", run);
        snprintf(count, sizeof(count), "%d", k);
        bool retry = esc_retry(k);
        long before = checks[C_ESCALATE].problems;
        dups += esc_dup(k);

        snprintf(key, sizeof(key), "weft:run:%s", run);
        redisReply *hdr = hmget(key, (const char *[]){"status", NULL});
        snprintf(key, sizeof(key), "weft:run:%s:steps", run);
        redisReply *sh = hmget(key, (const char *[]){"gate", "gate:attempt",
                                                     "after", "last", NULL});
        snprintf(key, sizeof(key), "weft:run:%s:state", run);
        redisReply *st = hmget(
            key, (const char *[]){"answer", "count", "after_result", NULL});
        bool fin_ok = str_is(elem(hdr, 0), "success") &&
                      str_is(elem(sh, 0), retry ? "success" : "skipped") &&
                      (!retry || str_is(elem(sh, 1), "2")) &&
                      str_is(elem(sh, 2), "success") &&
                      str_is(elem(sh, 3), "success");
        bool state_ok =
            str_is(elem(st, 0), want) && str_is(elem(st, 2), want) &&
            (esc_count(k) ? str_is(elem(st, 1), count) : elem(st, 1) == NULL);
        if (!fin_ok && problem(C_ESCALATE))
            printf("  [escalate] run %s (%s): status %s, gate %s attempt %s, "
                   "after %s, last %s\n",
                   run, retry ? "--retry" : "--skip",
                   elem(hdr, 0) ? elem(hdr, 0) : "(none)",
                   elem(sh, 0) ? elem(sh, 0) : "-",
                   elem(sh, 1) ? elem(sh, 1) : "-",
                   elem(sh, 2) ? elem(sh, 2) : "-",
                   elem(sh, 3) ? elem(sh, 3) : "-");
        if (!state_ok && problem(C_ESCALATE))
            printf("  [escalate] run %s: state answer %s, count %s, "
                   "after_result %s (want %s, %s, %s)\n",
                   run, elem(st, 0) ? elem(st, 0) : "(absent)",
                   elem(st, 1) ? elem(st, 1) : "(absent)",
                   elem(st, 2) ? elem(st, 2) : "(absent)", want,
                   esc_count(k) ? count : "(absent)", want);
        freeReplyObject(hdr);
        freeReplyObject(sh);
        freeReplyObject(st);

        redisReply *hr;
        struct sent *h;
        int nh = side_history(run, &hr, &h);
        int waits = 0, answers = 0, resumed = 0, successes = 0, bad = 0;
        int i_wait = -1, i_answer = -1, i_resumed = -1;
        for (int i = 0; i < nh; i++) {
            const struct sent *x = &h[i];
            if (str_is(x->type, "step") && str_is(x->step, "gate")) {
                if (str_is(x->status, "waiting_for_human")) {
                    waits++;
                    i_wait = i;
                } else if (x->action != NULL) {
                    answers++;
                    i_answer = i;
                    bad += !str_is(x->action, retry ? "retry" : "skip") ||
                           !str_is(x->by, "chaos") ||
                           !str_is(x->status, retry ? "pending" : "skipped");
                } else if (str_is(x->status, "success")) {
                    successes++;
                }
            } else if (str_is(x->type, "run") && x->resumed != NULL) {
                resumed++;
                i_resumed = i;
                bad += !str_is(x->resumed, "gate") ||
                       !str_is(x->status, "running");
            } else if (str_is(x->type, "control")) {
                if (str_is(x->status, "stale") && str_is(x->step, "gate"))
                    stale++;
                else
                    bad++;
            }
        }
        if (waits != 1 || answers != 1 || resumed != 1 ||
            successes != (retry ? 1 : 0) || bad > 0 || i_wait > i_answer ||
            i_answer > i_resumed) {
            if (problem(C_ESCALATE)) {
                printf("  [escalate] run %s (%s): %d escalations, %d "
                       "answers, %d resumptions, %d successes of gate, %d "
                       "wrong entries (want 1, 1, 1, %d, 0, in order)\n",
                       run, retry ? "--retry" : "--skip", waits, answers,
                       resumed, successes, bad, retry ? 1 : 0);
                print_side_history(run, h, nh);
            }
        } else {
            lat[nlat++] = (double)(h[i_answer].us - h[i_wait].us) / 1000.0;
        }
        if (esc_dup(k) && escs[k].calls < 2 && problem(C_ESCALATE))
            printf("  [escalate] run %s: answered %d times, not twice\n", run,
                   escs[k].calls);
        free(h);
        freeReplyObject(hr);
        if (checks[C_ESCALATE].problems == before) {
            ok_runs++;
            retry ? retried++ : skipped++;
        }
    }
    if (cli_other > 0) {
        checks[C_ESCALATE].problems += cli_other;
        printf("  [escalate] %d weft resolve runs ended other than with 0 "
               "or 1\n",
               cli_other);
    }
    printf("chaos: escalations: %d runs, %d resumed as answered (%d after "
           "--retry, %d after --skip); weft resolve ran %d times: %d sent, %d "
           "found nothing waiting or no Redis, %d otherwise; %d answered "
           "twice at once, %d second answers recorded as stale\n",
           esc_runs.n, ok_runs, retried, skipped,
           cli_sent + cli_refused + cli_other, cli_sent, cli_refused, cli_other,
           dups, stale);
    print_dist("escalation -> answer applied (the driver polls every 100 ms, "
               "then runs weft resolve)",
               lat, nlat);
    free(lat);
}

static void print_figures(void)
{
    qsort(stamps, nstamps, sizeof(*stamps), cmp_stamp);

    int wk = 0, sk = 0;
    for (int i = 0; i < nkills; i++)
        procs[kills[i].proc].scheduler ? sk++ : wk++;
    printf("chaos: kills: %d worker, %d scheduler; redis restarts: %d; most "
           "down at once: %d scheduler(s), %d worker(s)\n",
           wk, sk, nrevs, down_max_sched, down_max_work);
    printf("chaos: any group won by quick %d, by sluggish %d\n", fig.won_quick,
           fig.won_sluggish);
    printf("chaos: runs completed %d / started %d (of %d submitted); "
           "failed %d, unfinished %d\n",
           fig.succeeded, fig.started, nruns, fig.failed_runs, fig.unfinished);
    printf("chaos: duplicate transitions: %ld (success twice: %ld)\n",
           fig.dup_success + fig.dup_other, fig.dup_success);
    printf("chaos: lost steps: %ld; missing side effects: %ld; steps that "
           "needed more attempts than scripted: %ld\n",
           fig.lost, fig.missing_effects, fig.extra_attempts);

    print_dist("reclaim latency after a worker kill (kill -> next running)",
               reclaim_ms, nreclaim);

    double *v = calloc((size_t)nkills + 1, sizeof(double));
    double *w = calloc((size_t)nkills + 1, sizeof(double));
    size_t nv = 0, nw = 0, held = 0, unresolved = 0;
    int worst_next = -1, worst_held = -1;
    long long worst_next_us = 0;
    if (v == NULL || w == NULL)
        fatal("out of memory");
    for (int i = 0; i < nkills; i++) {
        const struct kill_ev *k = &kills[i];
        if (!procs[k->proc].scheduler)
            continue;
        long long nx = next_stamp(k->us, true);
        if (nx > 0) {
            v[nv++] = (double)(nx - k->us) / 1000.0;
            if (worst_next < 0 ||
                nx - k->us > worst_next_us - kills[worst_next].us) {
                worst_next = i;
                worst_next_us = nx;
            }
        }
        held += (size_t)k->nheld;
        if (k->nheld > 0 && k->nleft == 0) {
            w[nw++] = (double)(k->held_done_us - k->us) / 1000.0;
            if (worst_held < 0 ||
                k->held_done_us - k->us >
                    kills[worst_held].held_done_us - kills[worst_held].us)
                worst_held = i;
        } else if (k->nleft > 0)
            unresolved++;
    }
    print_dist("scheduler kill -> next transition by any scheduler", v, nv);
    if (worst_next >= 0)
        print_context("next transition", worst_next, kills[worst_next].us,
                      worst_next_us);
    print_dist("scheduler kill -> all its held messages applied", w, nw);
    if (worst_held >= 0)
        print_context("all applied", worst_held, kills[worst_held].us,
                      kills[worst_held].held_done_us);
    printf("chaos: messages held by killed schedulers: %zu (kills leaving "
           "some unapplied at the end: %zu)\n",
           held, unresolved);
    free(v);
    free(w);

    for (int i = 0; i < nrevs; i++) {
        const struct redis_ev *e = &revs[i];
        long long nx = next_stamp(e->up_us, false);
        long long ns = next_stamp(e->up_us, true);
        printf("chaos: redis restart %d (%s): down %.0f ms; next transition "
               "%.1f ms after it was back (next by a scheduler %.1f ms)\n",
               i + 1, e->sigkill ? "SIGKILL" : "SIGTERM",
               (double)(e->up_us - e->down_us) / 1000.0,
               nx > 0 ? (double)(nx - e->up_us) / 1000.0 : -1.0,
               ns > 0 ? (double)(ns - e->up_us) / 1000.0 : -1.0);
    }

    redisReply *r = RQ("XLEN weft:dlq");
    redisReply *dl = RQ("ZCARD weft:delayed");
    redisReply *dd = RQ("ZCARD weft:deadlines");
    printf("chaos: dead-lettered entries: %lld; retry timers left %lld, "
           "deadlines left %lld\n",
           reply_int(r), reply_int(dl), reply_int(dd));
    freeReplyObject(r);
    freeReplyObject(dl);
    freeReplyObject(dd);
}

/* ---- main -----------------------------------------------------------------
 */

/* Loads a workflow, stores its definition (weft:def:<digest>) and copies
 * its digest to digest_out (65 bytes). */
static void store_workflow(const char *yaml, const char *name, char *digest_out)
{
    struct diag d;
    struct wf *wf = NULL;
    diag_init(&d, name);
    if (wf_load_buffer(yaml, strlen(yaml), name, &wf, &d) != 0) {
        diag_print(&d, stderr);
        diag_deinit(&d);
        fatal("a workflow of the suite does not load");
    }
    diag_deinit(&d);
    snprintf(digest_out, 65, "%s", wf->digest);
    freeReplyObject(RQ("SET weft:def:%s %b", wf->digest, wf->canonical,
                       (size_t)wf->canonical_len));
    wf_free(wf);
}

static void usage(void)
{
    fprintf(stderr, "usage: chaos [--runs N] [--seed S] [--chaos-ms MS] "
                    "[--restart-max-ms MS] [--delivery-limit N] [--drain-s S] "
                    "[--no-redis-kill] [--keep]\n");
    exit(2);
}

static long parse_num(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    uint64_t seed = (uint64_t)real_us() ^ ((uint64_t)getpid() << 32);
    long chaos_ms = -1, drain_s = DEFAULT_DRAIN_S;
    long delivery_limit = DEFAULT_DELIVERY_LIMIT;
    bool redis_kill = true, keep = false;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            nruns = (int)parse_num(argv[++i], 1, MAX_RUNS);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = (uint64_t)parse_num(argv[++i], 1, 0x7fffffffL);
        else if (strcmp(argv[i], "--chaos-ms") == 0 && i + 1 < argc)
            chaos_ms = parse_num(argv[++i], 0, 3600000);
        else if (strcmp(argv[i], "--drain-s") == 0 && i + 1 < argc)
            drain_s = parse_num(argv[++i], 1, 3600);
        else if (strcmp(argv[i], "--delivery-limit") == 0 && i + 1 < argc)
            delivery_limit = parse_num(argv[++i], 1, 1000);
        else if (strcmp(argv[i], "--restart-max-ms") == 0 && i + 1 < argc)
            restart_max_ms = parse_num(argv[++i], 0, 10000);
        else if (strcmp(argv[i], "--no-redis-kill") == 0)
            redis_kill = false;
        else if (strcmp(argv[i], "--keep") == 0)
            keep = true;
        else
            usage();
    }
    if (nruns / BRK_EVERY < BRK_RUNS_MIN)
        brk_every = nruns / BRK_RUNS_MIN > 0 ? nruns / BRK_RUNS_MIN : 1;
    seed = seed % 0x7fffffffULL;
    if (seed == 0)
        seed = 1;
    rng_state = seed * 0x9E3779B97F4A7C15ULL;
    long submit_ms = (long)nruns * SUBMIT_SPACING_MS;
    if (chaos_ms < 0)
        chaos_ms = submit_ms + CHAOS_TAIL_MS;
    printf("chaos: seed %llu (rerun with --seed %llu), %d runs, chaos %ld ms, "
           "delivery limit %ld\n",
           (unsigned long long)seed, (unsigned long long)seed, nruns, chaos_ms,
           delivery_limit);
    fflush(stdout);

    weft_alloc_init();
    signal(SIGALRM, on_alarm);
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    signal(SIGPIPE, SIG_IGN);
    alarm(WATCHDOG_S);

    long long t_begin = mono_ms();
    snprintf(logdir, sizeof(logdir), "/tmp/weft-chaos-XXXXXX");
    if (mkdtemp(logdir) == NULL) {
        perror("chaos: mkdtemp");
        return 1;
    }
    snprintf(delivery_arg, sizeof(delivery_arg), "--delivery-limit=%ld",
             delivery_limit);
    {
        char path[96];
        snprintf(path, sizeof(path), "%s/events.log", logdir);
        events_log = fopen(path, "w");
    }
    run_status = calloc((size_t)nruns, sizeof(*run_status));
    brk_submit_us = calloc((size_t)nruns / brk_every + 2, sizeof(long long));
    if (run_status == NULL || brk_submit_us == NULL)
        return 1;
    side_init(&hang_runs, HANG_EVERY);
    side_init(&esc_runs, ESC_EVERY);
    escs = calloc((size_t)esc_runs.cap, sizeof(*escs));
    if (escs == NULL)
        return 1;
    /* A fraction of seconds of its own: no other `sleep` has it. */
    snprintf(hang_tag, sizeof(hang_tag), "1000.%d", (int)getpid());
    snprintf(workspaces_arg, sizeof(workspaces_arg), "--workspaces=%s/ws",
             logdir);

    if (redis_fixture_start(&fx, "--appendonly yes --appendfsync always") !=
        0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    fx_up = true;
    snprintf(env_url, sizeof(env_url), "REDIS_URL=%s", fx.url);

    /* The definition every run pins. */
    store_workflow(crowd_workflow(), "chaos", digest);
    /* The breaker check's workflow and its persona's service, down. */
    {
        char yaml[1024], path[96];
        snprintf(yaml, sizeof(yaml),
                 "name: breaker\n"
                 "steps:\n"
                 "  - id: ask\n"
                 "    type: persona-request\n"
                 "    persona: down\n"
                 "    on_breaker_open: fail\n"
                 "    params: {mode: gate, log: \"%s/down-requests.log\","
                 " down: \"%s/down\"}\n",
                 logdir, logdir);
        store_workflow(yaml, "breaker", brk_digest);
        snprintf(path, sizeof(path), "%s/down-down", logdir);
        FILE *f = fopen(path, "w");
        if (f == NULL)
            fatal("cannot create the down file");
        fclose(f);
    }
    /* The hung persona check's workflow: two attempts that time out, then
     * the step after it. */
    {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml),
                 "name: hang\n"
                 "steps:\n"
                 "  - id: hang\n"
                 "    type: persona-request\n"
                 "    persona: hang\n"
                 "    timeout: %d\n"
                 "    retry: {max: %d, backoff: fixed, delay: 0.05}\n"
                 "    on_failure: continue\n"
                 "    params:\n"
                 "      mode: hang\n"
                 "      pidlog: \"%s/hang-pids.log\"\n"
                 "      sleep: \"%s\"\n"
                 "      ignore_term: \"{{task.stubborn}}\"\n"
                 "  - id: after\n"
                 "    type: noop\n"
                 "    dependencies: [hang]\n"
                 "    params: {result: r-after}\n",
                 HANG_TIMEOUT_MS / 1000, HANG_ATTEMPTS - 1, logdir, hang_tag);
        store_workflow(yaml, "hang", hang_runs.digest);
    }
    /* The escalation check's workflow: `gate` fails once and escalates;
     * `after` reads what the answer set. */
    store_workflow("name: escalate\n"
                   "steps:\n"
                   "  - id: gate\n"
                   "    type: noop\n"
                   "    on_failure: escalate\n"
                   "    params: {fail_until: 2, result: r-gate, delay_ms: 50}\n"
                   "  - id: after\n"
                   "    type: noop\n"
                   "    dependencies: [gate]\n"
                   "    params:\n"
                   "      result: \"{{context.state.get('answer')}}\"\n"
                   "      delay_ms: 50\n"
                   "  - id: last\n"
                   "    type: noop\n"
                   "    dependencies: [after]\n"
                   "    params: {result: r-last}\n",
                   "escalate", esc_runs.digest);

    for (int i = 0; i < N_PROCS; i++) {
        procs[i].scheduler = i < N_SCHED;
        if (procs[i].scheduler)
            snprintf(procs[i].name, sizeof(procs[i].name), "sched-%d", i);
        else
            snprintf(procs[i].name, sizeof(procs[i].name), "worker-%d",
                     i - N_SCHED);
        if (proc_start(&procs[i]) != 0)
            fatal("cannot start the processes");
    }

    /* ---- chaos ---- */
    long long t0 = mono_ms(), t_end = t0 + chaos_ms;
    long long next_kill = t0 + rng_range(KILL_MIN_MS, KILL_MAX_MS);
    long long next_held = t0;
    int submitted = 0, redis_done = 0;
    bool brk_late = false;
    int redis_planned = redis_kill ? REDIS_EVENTS : REDIS_EVENTS - 1;
    while (!stop_requested) {
        long long now = mono_ms();
        if (now >= t_end && submitted == nruns && brk_late)
            break;
        while (submitted < nruns &&
               (now - t0) >= (long long)submitted * SUBMIT_SPACING_MS) {
            if (submitted % brk_every == 0)
                brk_submit();
            if (submitted % HANG_EVERY == HANG_OFFSET)
                hang_submit();
            if (submitted % ESC_EVERY == ESC_OFFSET)
                esc_submit();
            submit(submitted++);
        }
        if (!brk_late && submitted == nruns &&
            now - t0 >= submit_ms + BRK_LATE_MS) {
            brk_submit();
            brk_late = true;
        }
        if (redis_done < redis_planned &&
            now - t0 >= (long long)(redis_at[redis_done] * (double)chaos_ms)) {
            chaos_redis(redis_done == 2);
            redis_done++;
            now = mono_ms();
        }
        restart_due(now);
        if (now >= next_kill && now < t_end) {
            chaos_kill();
            next_kill = mono_ms() + rng_range(KILL_MIN_MS, KILL_MAX_MS);
        }
        reap_unexpected();
        side_tick();
        if (now >= next_held) {
            poll_held();
            next_held = now + HELD_POLL_MS;
        }
        sleep_ms(TICK_MS);
    }
    restart_due(-1);
    long long t_chaos_end = mono_ms();
    int done = poll_runs();
    printf("chaos: chaos over after %.1f s: %d kills, %d redis restarts; "
           "%d/%d runs finished so far\n",
           (double)(t_chaos_end - t0) / 1000.0, nkills, nrevs, done, nruns);
    fflush(stdout);

    /* ---- drain ---- */
    long long drain_end = t_chaos_end + drain_s * 1000;
    long long next_poll = 0;
    bool side_done = false;
    while (!stop_requested && mono_ms() < drain_end) {
        reap_unexpected();
        side_tick();
        if (mono_ms() >= next_held) {
            poll_held();
            next_held = mono_ms() + HELD_POLL_MS;
        }
        if (mono_ms() >= next_poll) {
            done = poll_runs();
            side_done = side_poll(&hang_runs) & side_poll(&esc_runs);
            if (done == nruns && side_done)
                break;
            next_poll = mono_ms() + 250;
        }
        sleep_ms(TICK_MS);
    }
    long long t_drained = mono_ms();
    printf("chaos: drain: %d/%d runs finished%s %.1f s after the chaos\n", done,
           nruns, side_done ? ", and the side runs" : " (side runs unfinished)",
           (double)(t_drained - t_chaos_end) / 1000.0);
    /* Stragglers (cancelled losers, reclaimed jobs of finished runs) are
     * acknowledged within a visibility timeout or two. */
    long long pend_end = mono_ms() + PENDING_WAIT_S * 1000;
    long long pend = -1;
    while (!stop_requested && mono_ms() < pend_end) {
        reap_unexpected();
        side_tick();
        poll_held();
        pend = pending_total(false);
        if (pend == 0 && esc_reap() == 0)
            break;
        sleep_ms(200);
    }
    printf("chaos: pending entries %lld, %.1f s after the drain\n", pend,
           (double)(mono_ms() - t_drained) / 1000.0);
    fflush(stdout);
    /* Every job is acknowledged: no hung persona may be running now, so
     * look before the workers are stopped (their drain would kill what
     * a leak left). */
    check_hang_procs();
    while (esc_reap() > 0)
        sleep_ms(TICK_MS);

    /* ---- checks ---- */
    long long t_checks = mono_ms();
    reap_unexpected();
    for (int i = 0; i < N_PROCS; i++) {
        int st = procs_stop(procs[i].pid, SIGTERM, 10000);
        procs[i].pid = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            checks[C_CLEAN_STOP].problems++;
            printf("  [stop] %s: %s %d on SIGTERM\n", procs[i].name,
                   WIFSIGNALED(st) ? "signal" : "exit",
                   WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
    }
    printf("chaos: checking %d runs\n", nruns);
    for (int i = 0; i < nruns; i++)
        check_run(i);
    pending_total(true);
    check_breaker();
    check_hang_runs();
    check_escalations();
    for (int i = 0; i < N_PROCS; i++) {
        if (procs[i].exits > 0) {
            checks[C_NO_EXITS].problems += procs[i].exits;
            printf("  [exits] %s ended on its own %d time(s)\n", procs[i].name,
                   procs[i].exits);
        }
    }
    if (stop_requested) {
        checks[C_FINISHED].problems++;
        printf("  interrupted\n");
    }
    print_figures();

    int passed = 0, failed = 0;
    for (int c = 0; c < N_CHECKS; c++) {
        bool ok = checks[c].problems == 0;
        printf("chaos: check %d %s: %s", c + 1, checks[c].name,
               ok ? "ok\n" : "FAILED");
        if (!ok)
            printf(" (%ld problems)\n", checks[c].problems);
        ok ? passed++ : failed++;
    }
    long long t_finish = mono_ms();
    printf("chaos: timing: setup %.1f s, chaos %.1f s, drain %.1f s, "
           "checks %.1f s, total %.1f s\n",
           (double)(t0 - t_begin) / 1000.0, (double)(t_chaos_end - t0) / 1000.0,
           (double)(t_checks - t_chaos_end) / 1000.0,
           (double)(t_finish - t_checks) / 1000.0,
           (double)(t_finish - t_begin) / 1000.0);

    if (rc != NULL)
        redisFree(rc);
    rc = NULL;
    bool keep_all = keep || failed > 0;
    teardown(keep_all);
    if (keep_all)
        printf("chaos: logs kept in %s, redis data in %s\n", logdir, fx.dir);
    else
        remove_logs();
    for (int i = 0; i < nkills; i++) {
        free(kills[i].held);
        free(kills[i].held_tasks);
        free(kills[i].held_done);
    }
    free(kills);
    free(stamps);
    free(reclaim_ms);
    free(run_status);
    free(brk_submit_us);
    free(hang_runs.status);
    free(esc_runs.status);
    free(escs);
    free(hprocs);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
