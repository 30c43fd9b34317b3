/* bench_runtime.c - the engine's figures: throughput, step-to-step
 * latency, fan-out/fan-in, Redis commands per step, RSS.
 *
 * Starts its own redis-server (unix socket), one weft-scheduler and two
 * weft-worker processes, and drives noop workflows through them (noop
 * steps take the whole path: queue, worker, result, transition). Before
 * that it measures the floor in the same run: a bare C round trip over
 * two streams (one process XADDs to A; another XREADGROUPs A and XADDs
 * to B; the first XREADs B), the cost of a minimal transition script,
 * and the throughput of a minimal engine (the same streams, groups and
 * batching, three minimal transitions per step), so every figure can be
 * read as a ratio to what Redis itself allows on this machine.
 *
 * Latencies come from the runs' history streams, which the transition
 * scripts stamp with Redis' own clock in microseconds (one clock for all
 * processes). Step-to-step latency is given two ways: from the
 * predecessor's start transition to the successor's (an upper bound),
 * and from the predecessor's completion (its worker's report, stamped
 * `us` on the result and kept as `done_us` in the history) to the
 * successor's start, the definition.
 *
 * Usage: bench_runtime [--quick] [--only PHASE]   (--quick: smaller
 * sizes, for a smoke test; --only: one of floor, independent, wide,
 * chains, fan, scaling, for quick comparisons). Prints figures; asserts
 * nothing about time.
 */
#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "procs.h"
#include "rconn.h"
#include "redis_fixture.h"
#include "redisurl.h"
#include "wfdef.h"

#define KEY "bench-signing-key-0123456789"

static struct redis_fixture fx;
static redisContext *rc;
static pid_t sched_pid, worker_pids[2];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_runtime: %s\n", what);
    exit(1);
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    if (r == NULL)
        die(rc->errstr);
    return r;
}

static long long cmd_int(const char *fmt, const char *arg)
{
    redisReply *r = cmd(fmt, arg);
    long long v = r->type == REDIS_REPLY_INTEGER  ? r->integer
                  : r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10)
                                                  : 0;
    freeReplyObject(r);
    return v;
}

static struct wf *load(const char *yaml)
{
    struct diag d;
    diag_init(&d, "bench.yml");
    struct wf *wf = NULL;
    if (wf_load_buffer(yaml, strlen(yaml), "bench", &wf, &d) != 0) {
        diag_print(&d, stderr);
        die("workflow does not load");
    }
    diag_deinit(&d);
    freeReplyObject(cmd("SET weft:def:%s %b", wf->digest, wf->canonical,
                        (size_t)wf->canonical_len));
    return wf;
}

/* Submits n runs of wf named prefix-i, pipelined. */
static void submit_many(const struct wf *wf, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char run[64];
        snprintf(run, sizeof(run), "%s-%d", prefix, i);
        redisAppendCommand(rc, "XADD weft:tasks * run %s digest %s task {}",
                           run, wf->digest);
    }
    for (int i = 0; i < n; i++) {
        redisReply *r;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK)
            die("submit failed");
        freeReplyObject(r);
    }
}

static long long runs_done(void)
{
    return cmd_int("HGET weft:stats %s", "runs_success") +
           cmd_int("HGET weft:stats %s", "runs_failed");
}

/* Polls the run counters every 2 ms: often enough for throughput over
 * seconds, rarely enough not to take Redis' time from the system being
 * measured (latencies come from the histories, not from this). */
static void wait_done(long long target)
{
    struct timespec ts = {0, 2 * 1000 * 1000};
    double deadline = now_s() + 600;
    while (runs_done() < target) {
        if (now_s() > deadline)
            die("runs did not finish in 600 s");
        nanosleep(&ts, NULL);
    }
}

/* Microsecond stamps (field `field`: "us" when the transition ran,
 * "done_us" when the worker reported) of a run's history: for `step`
 * entries with status `status`, in order; or the run entries when step
 * is "". */
/* A history entry's status, step and `field` ("", "" and "0" when
 * absent). */
static void entry_fields(const redisReply *f, const char *field,
                         const char **st, const char **sp, const char **val)
{
    *st = *sp = "";
    *val = "0";
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
        const char *key = f->element[k]->str, *v = f->element[k + 1]->str;
        if (strcmp(key, "status") == 0)
            *st = v;
        else if (strcmp(key, "step") == 0)
            *sp = v;
        else if (strcmp(key, field) == 0)
            *val = v;
    }
}

static int history_field(const char *run, const char *step, const char *status,
                         const char *field, long long *out, int max)
{
    redisReply *r = cmd("XRANGE weft:run:%s:history - +", run);
    int n = 0;
    for (size_t i = 0; i < r->elements && n < max; i++) {
        const char *st, *sp, *val;
        entry_fields(r->element[i]->element[1], field, &st, &sp, &val);
        if (strcmp(st, status) == 0 && (step == NULL || strcmp(sp, step) == 0))
            out[n++] = strtoll(val, NULL, 10);
    }
    freeReplyObject(r);
    return n;
}

/* Waits for a run to end by polling its status every 0.5 ms. Blocking on
 * its history instead would wake this process at every entry, in step
 * with the very hops the chains measure, on a machine with two cores. */
static void wait_run_end(const char *run)
{
    struct timespec ts = {0, 500 * 1000};
    double deadline = now_s() + 600;
    while (now_s() < deadline) {
        redisReply *r = cmd("HGET weft:run:%s status", run);
        bool ended = r->type == REDIS_REPLY_STRING &&
                     strcmp(r->str, "running") != 0 &&
                     strcmp(r->str, "pending") != 0;
        freeReplyObject(r);
        if (ended)
            return;
        nanosleep(&ts, NULL);
    }
    die("a chain did not finish in 600 s");
}

static int history_us(const char *run, const char *step, const char *status,
                      long long *out, int max)
{
    return history_field(run, step, status, "us", out, max);
}

static long long run_elapsed_us(const char *run)
{
    long long start[1], end[1];
    if (history_us(run, "", "running", start, 1) != 1 ||
        history_us(run, "", "success", end, 1) != 1)
        die("run history incomplete");
    return end[0] - start[0];
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static long long pct(long long *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_ll);
    int i = (int)ceil(p / 100.0 * n) - 1;
    return v[i < 0 ? 0 : i];
}

/* Total calls and the calls that are round trips (top-level commands:
 * a script or a MULTI..EXEC block counts once); per command, calls and
 * microseconds (a script's own time includes the commands it calls). */
#define BENCH_CMDS_MAX 64
struct cmdstats {
    long long calls, trips;
    int n;
    struct {
        char name[40];
        long long calls, usec;
    } cmd[BENCH_CMDS_MAX];
};

static bool is_trip(const char *name)
{
    /* Commands a client sends on its own: scripts, reads, the worker's
     * EXEC, and the bench's own submits and polls. */
    static const char *const trips[] = {"evalsha", "eval",       "xreadgroup",
                                        "exec",    "hgetall",    "hmget",
                                        "fcall",   "xautoclaim", "get"};
    for (size_t i = 0; i < sizeof(trips) / sizeof(trips[0]); i++)
        if (strcmp(name, trips[i]) == 0)
            return true;
    return false;
}

static struct cmdstats commandstats(void)
{
    struct cmdstats cs;
    memset(&cs, 0, sizeof(cs));
    redisReply *r = cmd("INFO commandstats");
    char *line = r->str;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        const char *colon = strchr(line, ':');
        size_t len = colon ? (size_t)(colon - line) : 0;
        if (strncmp(line, "cmdstat_", 8) == 0 && len > 8 &&
            len - 8 < sizeof(cs.cmd[0].name) &&
            strncmp(colon, ":calls=", 7) == 0) {
            char name[40];
            memcpy(name, line + 8, len - 8);
            name[len - 8] = '\0';
            long long calls = strtoll(colon + 7, NULL, 10);
            const char *u = strstr(colon, ",usec=");
            cs.calls += calls;
            if (is_trip(name))
                cs.trips += calls;
            if (cs.n < BENCH_CMDS_MAX) {
                snprintf(cs.cmd[cs.n].name, sizeof(cs.cmd[0].name), "%s", name);
                cs.cmd[cs.n].calls = calls;
                cs.cmd[cs.n].usec = u ? strtoll(u + 6, NULL, 10) : 0;
                cs.n++;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    freeReplyObject(r);
    return cs;
}

/* CPU seconds (user + system) a process has used so far. */
static double cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses. */
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    for (int field = 3; p && *p; p++) {
        if (*p != ' ')
            continue;
        field++;
        if (field == 14)
            ut = strtoul(p + 1, NULL, 10);
        else if (field == 15) {
            st = strtoul(p + 1, NULL, 10);
            break;
        }
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* What one phase cost: Redis commands and CPU of every process. */
struct phase {
    struct cmdstats cs;
    double redis, sched, workers;
};

static void phase_begin(struct phase *p)
{
    p->cs = commandstats();
    p->redis = cpu_s(fx.pid);
    p->sched = cpu_s(sched_pid);
    p->workers = cpu_s(worker_pids[0]) + cpu_s(worker_pids[1]);
}

/* Prints the CPU per step of each process and, with verbose, the
 * commands that took most of Redis' time. */
static void phase_end(const struct phase *p, const char *what, long steps)
{
    struct cmdstats cs = commandstats();
    double redis = cpu_s(fx.pid) - p->redis,
           sched = cpu_s(sched_pid) - p->sched,
           workers = cpu_s(worker_pids[0]) + cpu_s(worker_pids[1]) - p->workers;
    printf("  cpu per step (%s): redis %.0f us, scheduler %.0f us, workers "
           "%.0f us\n",
           what, redis * 1e6 / steps, sched * 1e6 / steps,
           workers * 1e6 / steps);
    if (getenv("BENCH_VERBOSE") == NULL)
        return;
    for (int i = 0; i < cs.n; i++) {
        long long calls = cs.cmd[i].calls, usec = cs.cmd[i].usec;
        for (int j = 0; j < p->cs.n; j++)
            if (strcmp(p->cs.cmd[j].name, cs.cmd[i].name) == 0) {
                calls -= p->cs.cmd[j].calls;
                usec -= p->cs.cmd[j].usec;
            }
        if (calls > 0)
            printf("    %-12s %6.2f calls/step %7.2f us/step %6.2f us/call\n",
                   cs.cmd[i].name, (double)calls / steps, (double)usec / steps,
                   (double)usec / calls);
    }
}

static long rss_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, strlen(field)) == 0)
            kb = strtol(line + strlen(field) + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* ---- the floor: a bare round trip over two streams ------------------- */

static void floor_echo(const char *url)
{
    struct redis_url u;
    redis_url_parse(url, &u, NULL);
    redisContext *c = rconn_connect_sync(&u, 2000, NULL);
    if (c == NULL)
        _exit(1);
    for (;;) {
        redisReply *r = redisCommand(c, "XREADGROUP GROUP g c COUNT 64 "
                                        "BLOCK 0 STREAMS floor:a >");
        if (r == NULL)
            _exit(0);
        if (r->type == REDIS_REPLY_ARRAY) {
            redisReply *es = r->element[0]->element[1];
            for (size_t i = 0; i < es->elements; i++) {
                const char *id = es->element[i]->element[0]->str;
                redisAppendCommand(c, "XADD floor:b * v 1");
                redisAppendCommand(c, "XACK floor:a g %s", id);
                redisAppendCommand(c, "XDEL floor:a %s", id);
            }
            for (size_t i = 0; i < 3 * es->elements; i++) {
                redisReply *x;
                redisGetReply(c, (void **)&x);
                freeReplyObject(x);
            }
        }
        freeReplyObject(r);
    }
}

static void bench_floor(int n)
{
    freeReplyObject(cmd("XGROUP CREATE floor:a g $ MKSTREAM"));
    pid_t pid = fork();
    if (pid == 0)
        floor_echo(fx.url);
    long long *rtt = malloc(sizeof(*rtt) * (size_t)n);
    /* From the start of floor:b, not "$": the echo may answer before
     * this process blocks, and "$" would miss that answer for good. */
    char last[64] = "0-0";
    for (int i = 0; i < n; i++) {
        double t0 = now_s();
        freeReplyObject(cmd("XADD floor:a * v 1"));
        redisReply *r = cmd("XREAD BLOCK 0 STREAMS floor:b %s", last);
        snprintf(last, sizeof(last), "%s",
                 r->element[0]->element[1]->element[0]->element[0]->str);
        freeReplyObject(r);
        rtt[i] = (long long)((now_s() - t0) * 1e6);
    }
    printf("floor: bare round trip over two streams: p50 %lld us, p99 %lld "
           "us (%d trips)\n",
           pct(rtt, n, 50), pct(rtt, n, 99), n);
    free(rtt);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    freeReplyObject(cmd("DEL floor:a floor:b"));
}

static void script_sha(redisContext *c, const char *lua, char sha[48])
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", lua);
    if (r == NULL || r->type != REDIS_REPLY_STRING)
        die("SCRIPT LOAD failed");
    snprintf(sha, 48, "%s", r->str);
    freeReplyObject(r);
}

/* The floor of an atomic transition: a script that, per transition,
 * compares a step's status (HGET), writes it (HSET) and appends to the
 * run's history (XADD), in batches of 64, the way weft batches them. A
 * step takes three transitions (dispatch, start, finish), and Redis runs
 * them on one thread, so 1 / (3 x this) bounds steps per second before
 * any queue traffic, whatever the scheduler and workers do. */
static void bench_transition_floor(int n)
{
    static const char lua[] =
        "for i = 2, #ARGV do\n"
        "  local st = redis.call('HGET', KEYS[1], ARGV[i])\n"
        "  if st ~= 'running' then\n"
        "    redis.call('HSET', KEYS[1], ARGV[i], 'running')\n"
        "    redis.call('XADD', KEYS[2], '*', 'type', 'step', 'step', "
        "ARGV[i],\n"
        "               'status', 'running', 'us', ARGV[1])\n"
        "  end\n"
        "end\n"
        "return 0\n";
    enum { BATCH = 64 };
    char sha[48];
    script_sha(rc, lua, sha);
    struct cmdstats before = commandstats();
    for (int done = 0; done < n; done += BATCH) {
        const char *argv[6 + BATCH];
        char ids[BATCH][16];
        int argc = 0;
        argv[argc++] = "EVALSHA";
        argv[argc++] = sha;
        argv[argc++] = "2";
        argv[argc++] = "floor:steps";
        argv[argc++] = "floor:history";
        argv[argc++] = "0";
        for (int i = 0; i < BATCH && done + i < n; i++) {
            snprintf(ids[i], sizeof(ids[i]), "s%d", done + i);
            argv[argc++] = ids[i];
        }
        redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
        if (r == NULL)
            die(rc->errstr);
        freeReplyObject(r);
    }
    struct cmdstats after = commandstats();
    long long us = 0;
    for (int i = 0; i < after.n; i++) {
        if (strcmp(after.cmd[i].name, "evalsha") != 0)
            continue;
        us = after.cmd[i].usec;
        for (int j = 0; j < before.n; j++)
            if (strcmp(before.cmd[j].name, "evalsha") == 0)
                us -= before.cmd[j].usec;
    }
    double per = (double)us / n;
    printf("floor: minimal atomic transition (HGET, HSET, history XADD) in "
           "batches of %d: %.1f us of Redis time; 3 per step cap Redis at "
           "%.0f steps/s\n",
           BATCH, per, 1e6 / (3 * per));
    freeReplyObject(cmd("DEL floor:steps floor:history"));
}

/* The floor of the engine's throughput: a minimal engine moving one run
 * of n parallel steps the way weft does (the same streams, groups and
 * batching, three transitions per step), and nothing else. The bench is
 * its scheduler: one script queues 64 steps at a time (status
 * compare-and-set, status, history entry, job), and one applies up to
 * 256 results (compare-and-set, status, history entry, then XACK and
 * XDEL of the batch). Two forked workers claim 64 jobs at a time, start
 * them with one script (compare-and-set, status, history entry), and
 * report them in one MULTI (an XADD per result, XACK, XDEL, EXEC). No
 * conditions, context, counters, signatures or msgpack: what weft does
 * beyond this is what its own figures add to this one. */
static const char floor_queue_lua[] =
    "for i = 1, #ARGV do\n"
    "  if not redis.call('HGET', KEYS[1], ARGV[i]) then\n"
    "    redis.call('HSET', KEYS[1], ARGV[i], 'queued')\n"
    "    redis.call('XADD', KEYS[2], '*', 'step', ARGV[i], 'status', "
    "'queued')\n"
    "    redis.call('XADD', KEYS[3], '*', 'step', ARGV[i])\n"
    "  end\n"
    "end\n"
    "return 0\n";
static const char floor_start_lua[] =
    "for i = 1, #ARGV do\n"
    "  if redis.call('HGET', KEYS[1], ARGV[i]) == 'queued' then\n"
    "    redis.call('HSET', KEYS[1], ARGV[i], 'running')\n"
    "    redis.call('XADD', KEYS[2], '*', 'step', ARGV[i], 'status', "
    "'running')\n"
    "  end\n"
    "end\n"
    "return 0\n";
static const char floor_finish_lua[] =
    "local ids = {}\n"
    "for i = 1, #ARGV, 2 do\n"
    "  ids[#ids + 1] = ARGV[i]\n"
    "  if redis.call('HGET', KEYS[1], ARGV[i + 1]) == 'running' then\n"
    "    redis.call('HSET', KEYS[1], ARGV[i + 1], 'success')\n"
    "    redis.call('XADD', KEYS[2], '*', 'step', ARGV[i + 1], 'status', "
    "'success')\n"
    "  end\n"
    "end\n"
    "redis.call('XACK', KEYS[3], 'schedulers', unpack(ids))\n"
    "redis.call('XDEL', KEYS[3], unpack(ids))\n"
    "return #ids\n";

/* Sends argv and returns the reply; any error ends the bench. */
static redisReply *floor_argv(redisContext *c, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (r == NULL)
        die(c->errstr);
    if (r->type == REDIS_REPLY_ERROR)
        die(r->str);
    return r;
}

/* The entries of a one-stream XREADGROUP reply (NULL when none). */
static redisReply *floor_entries(redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1)
        return NULL;
    return r->element[0]->element[1];
}

static void floor_worker(const char *name)
{
    struct redis_url u;
    redis_url_parse(fx.url, &u, NULL);
    redisContext *c = rconn_connect_sync(&u, 2000, NULL);
    redis_url_deinit(&u);
    if (c == NULL)
        die("floor worker cannot connect");
    char sha[48];
    script_sha(c, floor_start_lua, sha);
    enum { CLAIM = 64 };
    for (;;) {
        const char *rd[] = {"XREADGROUP", "GROUP",   "workers", name,
                            "COUNT",      "64",      "BLOCK",   "0",
                            "STREAMS",    "floor:q", ">"};
        redisReply *r = floor_argv(c, 11, rd);
        redisReply *e = floor_entries(r);
        size_t n = e ? e->elements : 0;
        const char *argv[5 + CLAIM] = {"EVALSHA", sha, "2", "floor:steps",
                                       "floor:history"};
        int argc = 5;
        for (size_t i = 0; i < n && i < CLAIM; i++)
            argv[argc++] = e->element[i]->element[1]->element[1]->str;
        freeReplyObject(floor_argv(c, argc, argv));
        redisAppendCommand(c, "MULTI");
        for (size_t i = 0; i < n && i < CLAIM; i++)
            redisAppendCommand(c, "XADD floor:ev * step %s status success",
                               e->element[i]->element[1]->element[1]->str);
        const char *ack[3 + CLAIM] = {"XACK", "floor:q", "workers"};
        const char *del[2 + CLAIM] = {"XDEL", "floor:q"};
        for (size_t i = 0; i < n && i < CLAIM; i++)
            ack[3 + i] = del[2 + i] = e->element[i]->element[0]->str;
        redisAppendCommandArgv(c, 3 + (int)n, ack, NULL);
        redisAppendCommandArgv(c, 2 + (int)n, del, NULL);
        redisAppendCommand(c, "EXEC");
        for (size_t i = 0; i < n + 4; i++) {
            redisReply *x;
            if (redisGetReply(c, (void **)&x) != REDIS_OK)
                die("floor worker lost Redis");
            freeReplyObject(x);
        }
        freeReplyObject(r);
    }
}

static double floor_sps; /* the engine floor's steps/s, 0 until measured */

static void bench_engine_floor(int n)
{
    freeReplyObject(cmd("XGROUP CREATE floor:q workers $ MKSTREAM"));
    freeReplyObject(cmd("XGROUP CREATE floor:ev schedulers $ MKSTREAM"));
    char qsha[48], fsha[48];
    script_sha(rc, floor_queue_lua, qsha);
    script_sha(rc, floor_finish_lua, fsha);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        fflush(stdout);
        kids[i] = fork();
        if (kids[i] == 0) {
            floor_worker(i ? "w1" : "w0");
            _exit(0);
        }
    }
    double redis0 = cpu_s(fx.pid), self0 = cpu_s(getpid()),
           kids0 = cpu_s(kids[0]) + cpu_s(kids[1]);
    double t0 = now_s();
    enum { QUEUE = 64, APPLY = 256 };
    char ids[QUEUE][16];
    for (int done = 0; done < n; done += QUEUE) {
        const char *argv[6 + QUEUE] = {
            "EVALSHA", qsha, "3", "floor:steps", "floor:history", "floor:q"};
        int argc = 6;
        for (int i = 0; i < QUEUE && done + i < n; i++) {
            snprintf(ids[i], sizeof(ids[i]), "s%d", done + i);
            argv[argc++] = ids[i];
        }
        freeReplyObject(floor_argv(rc, argc, argv));
    }
    for (int finished = 0; finished < n;) {
        const char *rd[] = {"XREADGROUP", "GROUP",    "schedulers", "s",
                            "COUNT",      "256",      "BLOCK",      "0",
                            "STREAMS",    "floor:ev", ">"};
        redisReply *r = floor_argv(rc, 11, rd);
        redisReply *e = floor_entries(r);
        size_t m = e ? e->elements : 0;
        const char *argv[6 + 2 * APPLY] = {
            "EVALSHA", fsha, "3", "floor:steps", "floor:history", "floor:ev"};
        int argc = 6;
        for (size_t i = 0; i < m && i < APPLY; i++) {
            argv[argc++] = e->element[i]->element[0]->str;
            argv[argc++] = e->element[i]->element[1]->element[3]->str;
        }
        if (m > 0)
            freeReplyObject(floor_argv(rc, argc, argv));
        finished += (int)m;
        freeReplyObject(r);
    }
    double dt = now_s() - t0;
    double redis = cpu_s(fx.pid) - redis0, self = cpu_s(getpid()) - self0,
           kids_cpu = cpu_s(kids[0]) + cpu_s(kids[1]) - kids0;
    for (int i = 0; i < 2; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    floor_sps = n / dt;
    printf("floor: a minimal engine, one run of %d parallel steps (queue, "
           "claim, start, report, finish): %.2f s, %.0f steps/s\n",
           n, dt, floor_sps);
    printf("  cpu per step (floor engine): redis %.0f us, scheduler %.0f us, "
           "workers %.0f us\n",
           redis * 1e6 / n, self * 1e6 / n, kids_cpu * 1e6 / n);
    freeReplyObject(cmd("DEL floor:q floor:ev floor:steps floor:history"));
}

/* ---- the system --------------------------------------------------------- */

static void start_system(void)
{
    if (redis_fixture_start(&fx, NULL) != 0)
        die("cannot start redis-server");
    struct redis_url u;
    redis_url_parse(fx.url, &u, NULL);
    rc = rconn_connect_sync(&u, 2000, NULL);
    redis_url_deinit(&u);
    if (rc == NULL)
        die("cannot connect");
    static char env_url[160];
    snprintf(env_url, sizeof(env_url), "REDIS_URL=%s", fx.url);
    const char *env[] = {env_url, "WEFT_HMAC_KEY=" KEY, NULL};
    char bin[512], log[256];
    const char *sargv[] = {
        procs_binary("scheduler/weft-scheduler", bin, sizeof(bin)),
        "--log-level=warn", NULL};
    snprintf(log, sizeof(log), "%s/scheduler.log", fx.dir);
    sched_pid = procs_spawn(sargv, env, log);
    for (int i = 0; i < 2; i++) {
        char wbin[512];
        const char *wargv[] = {
            procs_binary("worker/weft-worker", wbin, sizeof(wbin)),
            "--log-level=warn", "--concurrency=64", NULL};
        snprintf(log, sizeof(log), "%s/worker-%d.log", fx.dir, i);
        worker_pids[i] = procs_spawn(wargv, env, log);
    }
}

static void stop_system(void)
{
    procs_stop(sched_pid, SIGTERM, 5000);
    for (int i = 0; i < 2; i++)
        procs_stop(worker_pids[i], SIGTERM, 5000);
    redisFree(rc);
    redis_fixture_stop(&fx);
}

static char *wide_yaml(int n, bool join)
{
    size_t cap = (size_t)n * 64 + 512;
    char *y = malloc(cap);
    size_t len = (size_t)snprintf(y, cap, "name: wide\nsteps:\n");
    if (join)
        len += (size_t)snprintf(y + len, cap - len,
                                "  - {id: root, type: noop}\n"
                                "  - id: fan\n    type: parallel\n"
                                "    dependencies: [root]\n    steps:\n");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(y + len, cap - len,
                                "%s  - {id: s%d, type: noop}\n",
                                join ? "    " : "", i);
    if (join)
        snprintf(y + len, cap - len,
                 "  - {id: join, type: noop, dependencies: [fan]}\n");
    return y;
}

static char *chain_yaml(int n)
{
    size_t cap = (size_t)n * 80 + 64;
    char *y = malloc(cap);
    size_t len = (size_t)snprintf(y, cap, "name: chain\nsteps:\n");
    for (int i = 0; i < n; i++) {
        if (i == 0)
            len += (size_t)snprintf(y + len, cap - len,
                                    "  - {id: c0, type: noop}\n");
        else
            len += (size_t)snprintf(y + len, cap - len,
                                    "  - {id: c%d, type: noop, "
                                    "dependencies: [c%d]}\n",
                                    i, i - 1);
    }
    return y;
}

static void bench_independent(int runs)
{
    struct wf *wf = load("name: one\nsteps:\n  - {id: only, type: noop}\n");
    struct phase ph;
    phase_begin(&ph);
    struct cmdstats before = ph.cs;
    long long done0 = runs_done();
    double t0 = now_s();
    submit_many(wf, "ind", runs);
    wait_done(done0 + runs);
    double dt = now_s() - t0;
    struct cmdstats after = commandstats();
    printf("throughput: %d independent single-step runs: %.2f s, %.0f "
           "steps/s; %.1f Redis commands/step (%.2f round trips/step)\n",
           runs, dt, runs / dt, (double)(after.calls - before.calls) / runs,
           (double)(after.trips - before.trips) / runs);
    phase_end(&ph, "independent", runs);
    wf_free(wf);
}

static void bench_one_wide_run(int steps)
{
    char *y = wide_yaml(steps, false);
    struct wf *wf = load(y);
    free(y);
    struct phase ph;
    phase_begin(&ph);
    struct cmdstats before = ph.cs;
    long long done0 = runs_done();
    double t0 = now_s();
    submit_many(wf, "wide", 1);
    wait_done(done0 + 1);
    double dt = now_s() - t0;
    struct cmdstats after = commandstats();
    printf("throughput: one run of %d parallel steps: %.2f s, %.0f steps/s; "
           "%.1f Redis commands/step (%.2f round trips/step)\n",
           steps, dt, steps / dt, (double)(after.calls - before.calls) / steps,
           (double)(after.trips - before.trips) / steps);
    if (floor_sps > 0)
        printf("  %.2f of the floor engine's steps/s\n",
               steps / dt / floor_sps);
    phase_end(&ph, "wide", steps);
    wf_free(wf);
}

/* Runs `count` chains of `len` steps one at a time; returns step-to-step
 * latencies in lat (count * (len - 1) entries): from start to start, from
 * the predecessor's report to the successor's start (done_lat), and that
 * split in two at the transition that applied the report (applied_lat:
 * report to transition, then transition to start). */
static int chains(int count, int len, long long *lat, long long *done_lat,
                  long long *applied_lat, double *per_step_us)
{
    char *y = chain_yaml(len);
    struct wf *wf = load(y);
    free(y);
    static int series; /* run ids must be new on every call */
    series++;
    int n = 0;
    double total = 0;
    for (int c = 0; c < count; c++) {
        char run[64], prefix[48];
        snprintf(prefix, sizeof(prefix), "chain%d-%d-%d", len, series, c);
        snprintf(run, sizeof(run), "%s-0", prefix);
        submit_many(wf, prefix, 1);
        wait_run_end(run);
        for (int i = 1; i < len && lat; i++) {
            char a[16], b[16];
            long long prev[1], cur[1];
            snprintf(a, sizeof(a), "c%d", i - 1);
            snprintf(b, sizeof(b), "c%d", i);
            long long done[1], applied[1];
            if (history_us(run, a, "running", prev, 1) == 1 &&
                history_us(run, b, "running", cur, 1) == 1 &&
                history_us(run, a, "success", applied, 1) == 1 &&
                history_field(run, a, "success", "done_us", done, 1) == 1) {
                lat[n] = cur[0] - prev[0];
                applied_lat[2 * n] = applied[0] - done[0];
                applied_lat[2 * n + 1] = cur[0] - applied[0];
                done_lat[n++] = cur[0] - done[0];
            }
        }
        total += (double)run_elapsed_us(run) / len;
    }
    *per_step_us = total / count;
    wf_free(wf);
    return n;
}

/* Where a fan-out's time goes, from its history: ms since the run
 * started at which the root started and ended, the group opened (the
 * scheduler sent the transition that queues the first children's jobs),
 * the last child was queued, the first and the last child started, the
 * last child ended and the join started. */
static void fan_timeline(const char *run)
{
    redisReply *r = cmd("XRANGE weft:run:%s:history - +", run);
    long long t0 = -1, t[8] = {0};
    for (size_t i = 0; i < r->elements; i++) {
        const char *st, *sp, *val;
        entry_fields(r->element[i]->element[1], "us", &st, &sp, &val);
        long long us = strtoll(val, NULL, 10);
        if (t0 < 0)
            t0 = us;
        bool kid = sp[0] == 's' && isdigit((unsigned char)sp[1]);
        bool running = strcmp(st, "running") == 0,
             success = strcmp(st, "success") == 0;
        if (strcmp(sp, "root") == 0 && (running || success))
            t[running ? 0 : 1] = us;
        else if (strcmp(sp, "fan") == 0 && running)
            t[2] = us;
        else if (kid && strcmp(st, "queued") == 0)
            t[3] = us > t[3] ? us : t[3];
        else if (kid && running) {
            t[4] = t[4] ? t[4] : us;
            t[5] = us;
        } else if (kid && success)
            t[6] = us;
        else if (strcmp(sp, "join") == 0 && running)
            t[7] = us;
    }
    freeReplyObject(r);
    double ms[8];
    for (int i = 0; i < 8; i++)
        ms[i] = (double)(t[i] - t0) / 1e3;
    printf("  fan-out timeline (ms): root %.1f to %.1f, group open %.1f, "
           "last child queued %.1f, children started %.1f to %.1f, done by "
           "%.1f, join started %.1f\n",
           ms[0], ms[1], ms[2], ms[3], ms[4], ms[5], ms[6], ms[7]);
}

static void bench_fan(int width)
{
    char *y = wide_yaml(width, true);
    struct wf *wf = load(y);
    free(y);
    long long done0 = runs_done();
    struct phase ph;
    phase_begin(&ph);
    submit_many(wf, "fan", 1);
    wait_done(done0 + 1);
    printf("fan-out/fan-in: 1 -> %d parallel -> 1: %.3f s\n", width,
           run_elapsed_us("fan-0") / 1e6);
    phase_end(&ph, "fan", width + 2);
    if (getenv("BENCH_VERBOSE") != NULL)
        fan_timeline("fan-0");
    wf_free(wf);
}

static void bench_chains(int nchains)
{
    long long *lat = malloc(sizeof(*lat) * (size_t)nchains * 9);
    long long *done_lat = malloc(sizeof(*lat) * (size_t)nchains * 9);
    long long *applied_lat = malloc(sizeof(*lat) * (size_t)nchains * 18);
    double per_step;
    struct phase ph;
    phase_begin(&ph);
    int n = chains(nchains, 10, lat, done_lat, applied_lat, &per_step);
    phase_end(&ph, "chains", nchains * 10L);
    printf("latency: %d sequential 10-step chains: step-to-step p50 %lld "
           "us, p99 %lld us (%d samples); mean %.0f us/step\n",
           nchains, pct(lat, n, 50), pct(lat, n, 99), n, per_step);
    printf("latency: step completion (its worker's report) to the "
           "successor's start: p50 %lld us, p99 %lld us\n",
           pct(done_lat, n, 50), pct(done_lat, n, 99));
    /* Where that goes: the report waiting for and going through the
     * transition that dispatches the successor, then the job reaching a
     * worker and its start transition. */
    long long *to_applied = malloc(sizeof(*lat) * (size_t)(n + 1));
    long long *to_start = malloc(sizeof(*lat) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        to_applied[i] = applied_lat[2 * i];
        to_start[i] = applied_lat[2 * i + 1];
    }
    printf("latency: of which report to its transition p50 %lld / p99 %lld "
           "us, transition to the successor's start p50 %lld / p99 %lld us\n",
           pct(to_applied, n, 50), pct(to_applied, n, 99), pct(to_start, n, 50),
           pct(to_start, n, 99));
    free(to_applied);
    free(to_start);
    free(applied_lat);
    free(lat);
    free(done_lat);
}

/* Cost per step must not grow with the size of the run. */
static void bench_scaling(bool quick)
{
    double small, large;
    chains(quick ? 3 : 10, 10, NULL, NULL, NULL, &small);
    chains(1, quick ? 1000 : 10000, NULL, NULL, NULL, &large);
    printf("scaling: mean per step in a 10-step chain %.0f us, in a %d-step "
           "chain %.0f us (ratio %.2f)\n",
           small, quick ? 1000 : 10000, large, large / small);
}

int main(int argc, char **argv)
{
    bool quick = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else
            die("usage: bench_runtime [--quick] [--only PHASE]");
    }
#define PHASE(name) (only == NULL || strcmp(only, name) == 0)
    int independent = quick ? 1000 : 20000, wide = quick ? 1000 : 20000,
        nchains = quick ? 20 : 200, fan = 1000;
    weft_alloc_init();
    signal(SIGPIPE, SIG_IGN);
    start_system();
    /* Let every process connect and create its groups before measuring. */
    struct wf *warm = load("name: warm\nsteps:\n  - {id: w, type: noop}\n");
    submit_many(warm, "warm", 10);
    wait_done(10);
    wf_free(warm);

    if (PHASE("floor")) {
        bench_floor(quick ? 500 : 2000);
        bench_transition_floor(quick ? 5000 : 50000);
        bench_engine_floor(wide);
    }
    if (PHASE("independent"))
        bench_independent(independent);
    if (PHASE("wide"))
        bench_one_wide_run(wide);

    if (PHASE("chains"))
        bench_chains(nchains);
    if (PHASE("fan"))
        bench_fan(fan);
    if (PHASE("scaling"))
        bench_scaling(quick);
    printf("rss: scheduler peak %ld KB; workers peak %ld KB and %ld KB\n",
           rss_kb(sched_pid, "VmHWM:"), rss_kb(worker_pids[0], "VmHWM:"),
           rss_kb(worker_pids[1], "VmHWM:"));
    stop_system();
    return 0;
}
