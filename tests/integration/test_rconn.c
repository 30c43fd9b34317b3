/* test_rconn.c - rconn against real redis-server processes.
 *
 * Each test starts its own server (redis_fixture.h) and drives one
 * event_base. Callbacks only record what they saw; the assertions run in
 * the test body after the loop. A loop ends when the scenario calls
 * event_base_loopbreak, or at its deadline, which is either a failure
 * ("timed out") or, for the backoff and timeout tests, the observation
 * window itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#endif

#include "rconn.h"
#include "rconn_int.h"
#include "redis_fixture.h"
#include "scripts.h"

/* Generous bound for scenarios that should finish in milliseconds. */
#define SCENARIO_MS 10000
/* Commands pipelined in one go by the pipelining test. */
#define PIPELINE_N 10000
/* Pending commands failed by the free tests. */
#define FREE_N 1000
/* Slots for recorded replies per test. */
#define REC_MAX 16

static char localhost[] = "127.0.0.1";

static void suite_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL); /* as the daemons' main.c do */
}

static void suite_fini(void);

TestSuite(rconn, .init = suite_init, .fini = suite_fini, .timeout = 120);

/* ---- helpers ---------------------------------------------------------- */

/* What one callback saw. */
struct rec {
    int calls;
    bool null_reply;
    int type;
    long long integer;
    size_t len;
    char str[128];
    size_t elements;
};

struct t;

struct slot {
    struct t *t;
    int i;
};

/* Shared state of one scenario. */
struct t {
    struct event_base *base;
    struct redis_fixture *fx; /* &the_fx */
    struct rconn *c;
    int ups, downs;
    struct rec rec[REC_MAX];
    struct slot slot[REC_MAX];
    int last;        /* the slot whose reply ends the loop; -1 none */
    int rc[REC_MAX]; /* return codes seen inside callbacks */
};

/* The server of the running test. Static, so that suite_fini can stop
 * it when a failed assertion left the test body early. */
static struct redis_fixture the_fx;

static void suite_fini(void)
{
    redis_fixture_stop(&the_fx);
}

static void t_init(struct t *t)
{
    memset(t, 0, sizeof(*t));
    t->fx = &the_fx;
    t->base = event_base_new();
    cr_assert_not_null(t->base);
    for (int i = 0; i < REC_MAX; i++)
        t->slot[i] = (struct slot){t, i};
    t->last = -1;
}

/* Criterion's workers exit without LeakSanitizer's report (FIELD-NOTES):
 * ask for it, so that a leak fails the test in sanitizer builds. */
static void check_leaks(void)
{
#ifdef HAVE_LSAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked");
#endif
}

static void t_deinit(struct t *t)
{
    rconn_free(t->c);
    t->c = NULL;
    event_base_free(t->base);
    redis_fixture_stop(t->fx);
    check_leaks();
}

static void record(struct rec *r, const redisReply *reply)
{
    r->calls++;
    r->null_reply = reply == NULL;
    if (reply == NULL)
        return;
    r->type = reply->type;
    r->integer = reply->integer;
    r->elements = reply->elements;
    if (reply->type == REDIS_REPLY_STRING ||
        reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_ERROR) {
        r->len = reply->len;
        memcpy(r->str, reply->str,
               reply->len < sizeof(r->str) - 1 ? reply->len
                                               : sizeof(r->str) - 1);
    }
}

/* Reply callback for slot ud: records, and ends the loop on t->last. */
static void rec_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct slot *s = ud;
    (void)c;
    record(&s->t->rec[s->i], reply);
    if (s->i == s->t->last)
        event_base_loopbreak(s->t->base);
}

/* A callback that must never run. */
static void never_cb(struct rconn *c, redisReply *reply, void *ud)
{
    (void)c;
    (void)reply;
    (void)ud;
    cr_assert_fail("callback of a refused command ran");
}

struct deadline {
    struct event_base *base;
    bool hit;
};

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct deadline *d = arg;
    (void)fd;
    (void)what;
    d->hit = true;
    event_base_loopbreak(d->base);
}

/* Runs base until event_base_loopbreak or ms pass. True when the loop was
 * broken before the deadline. */
static bool run_loop(struct event_base *base, int ms)
{
    struct deadline d = {base, false};
    struct event *ev = evtimer_new(base, deadline_cb, &d);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
    event_base_dispatch(base);
    event_free(ev);
    return !d.hit;
}

static void count_state(struct rconn *c, bool up, void *ud)
{
    struct t *t = ud;
    (void)c;
    if (up)
        t->ups++;
    else
        t->downs++;
}

static struct redis_url unix_url(struct redis_fixture *f)
{
    struct redis_url u;
    memset(&u, 0, sizeof(u));
    u.unix_path = f->sock;
    return u;
}

static struct redis_url tcp_url(int port)
{
    struct redis_url u;
    memset(&u, 0, sizeof(u));
    u.host = localhost;
    u.port = port;
    return u;
}

static void start_fixture(struct t *t, const char *extra)
{
    cr_assert_eq(redis_fixture_start(t->fx, extra), 0,
                 "redis-server did not start");
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static long cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000L +
           (long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000L;
}

/* A TCP port on 127.0.0.1 that refuses connections. */
static int refused_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* A listening socket on 127.0.0.1; *port receives its port. */
static int listener(int backlog, int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, backlog), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Starts a non-blocking connect to port; true when it completed within
 * wait_ms. *fd_out receives the socket either way. */
static bool connect_completes(int port, int wait_ms, int *fd_out)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct pollfd p;
    int err = 0;
    socklen_t len = sizeof(err);

    cr_assert_geq(fd, 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    *fd_out = fd;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return true;
    cr_assert_eq(errno, EINPROGRESS);
    p.fd = fd;
    p.events = POLLOUT;
    if (poll(&p, 1, wait_ms) != 1)
        return false;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return err == 0;
}

/* A port whose SYNs go unanswered: a listener with a full accept queue
 * (Linux drops SYNs then). Filler sockets go to fillers[], count to *n. */
static int blackhole(int *lfd, int *fillers, int max, int *n)
{
    int port;
    *lfd = listener(0, &port);
    for (*n = 0; *n < max;) {
        bool done = connect_completes(port, 100, &fillers[*n]);
        (*n)++;
        if (!done)
            return port; /* this one hangs: the queue is full */
    }
    cr_assert_fail("could not fill the accept queue of port %d", port);
    return -1;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

static redisContext *sync_connect(struct redis_fixture *f, const char *password,
                                  int db)
{
    struct weft_error err;
    struct redis_url u = unix_url(f);
    char pw[64];
    redisContext *ctx;
    if (password != NULL) {
        snprintf(pw, sizeof(pw), "%s", password);
        u.password = pw;
    }
    u.db = db;
    ctx = rconn_connect_sync(&u, 1000, &err);
    cr_assert_not_null(ctx, "sync connect: %s", err.msg);
    return ctx;
}

static void sha1_hex(const char *text, char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)text, strlen(text), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- commands and replies --------------------------------------------- */

static void commands_state(struct rconn *c, bool up, void *ud)
{
    struct t *t = ud;
    static const char bin[] = {'a', '\0', 'b'};
    const char *hset[] = {"HSET", "h", "f", "v"};
    const char *hget[] = {"HGET", "h", "f"};
    const char *sel[] = {"select", "1"};

    count_state(c, up, ud);
    if (!up)
        return;
    t->rc[0] = rconn_cmd(c, rec_cb, &t->slot[1], "SET k %b", bin, sizeof(bin));
    t->rc[1] = rconn_cmd(c, rec_cb, &t->slot[2], "GET k");
    t->rc[2] = rconn_cmd(c, rec_cb, &t->slot[3], "INCR k");
    t->rc[3] = rconn_argv(c, NULL, NULL, 4, hset, NULL);
    t->rc[4] = rconn_argv(c, rec_cb, &t->slot[4], 3, hget, NULL);
    t->rc[5] = rconn_cmd(c, rec_cb, &t->slot[5], "GET missing");
    t->rc[6] = rconn_cmd(c, rec_cb, &t->slot[6], "CLIENT GETNAME");
    t->rc[7] = rconn_cmd(c, never_cb, t, "SUBSCRIBE ch");
    t->rc[8] = rconn_argv(c, never_cb, t, 2, sel, NULL);
    t->rc[9] = rconn_cmd(c, never_cb, t, "psubscribe p*");
    t->rc[10] = rconn_cmd(c, never_cb, t, "MONITOR");
    t->rc[11] = rconn_cmd(c, rec_cb, &t->slot[7], "PING");
    t->last = 7;
}

Test(rconn, runs_commands_and_hands_back_replies)
{
    struct t t;
    struct redis_url u;

    t_init(&t);
    start_fixture(&t, NULL);
    u = unix_url(t.fx);
    t.c = rconn_new(t.base, &u, "weft-test", commands_state, &t);
    cr_assert_not_null(t.c);
    cr_assert(!rconn_is_up(t.c));
    cr_assert_eq(rconn_cmd(t.c, never_cb, &t, "PING"), WEFT_EREDIS);

    cr_assert(run_loop(t.base, SCENARIO_MS), "timed out");
    cr_assert(rconn_is_up(t.c));
    cr_assert_eq(t.ups, 1);
    for (int i = 0; i <= 6; i++)
        cr_assert_eq(t.rc[i], 0, "command %d refused", i);
    for (int i = 7; i <= 10; i++)
        cr_assert_eq(t.rc[i], WEFT_EINVAL, "command %d accepted", i);
    cr_assert_eq(t.rc[11], 0);
    for (int i = 1; i <= 7; i++)
        cr_assert_eq(t.rec[i].calls, 1, "slot %d: %d calls", i, t.rec[i].calls);
    cr_assert_eq(t.rec[1].type, REDIS_REPLY_STATUS);
    cr_assert_str_eq(t.rec[1].str, "OK");
    cr_assert_eq(t.rec[2].type, REDIS_REPLY_STRING);
    cr_assert_eq(t.rec[2].len, 3);
    cr_assert_eq(memcmp(t.rec[2].str, "a\0b", 3), 0);
    cr_assert_eq(t.rec[3].type, REDIS_REPLY_ERROR);
    cr_assert_eq(t.rec[4].type, REDIS_REPLY_STRING);
    cr_assert_str_eq(t.rec[4].str, "v");
    cr_assert_eq(t.rec[5].type, REDIS_REPLY_NIL);
    cr_assert_str_eq(t.rec[6].str, "weft-test");
    cr_assert_eq(t.rec[7].type, REDIS_REPLY_STATUS);
    cr_assert_str_eq(t.rec[7].str, "PONG");
    t_deinit(&t);
}

/* ---- pipelining ---------------------------------------------------------- */

struct pipe {
    struct t *t;
    int calls[PIPELINE_N];
    struct slot ud[PIPELINE_N];
    int done;
    int out_of_order;
    int nulls;
    int refused;
};

static void incr_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct slot *s = ud;
    struct pipe *p = (struct pipe *)s->t;
    (void)c;
    p->calls[s->i]++;
    p->done++;
    if (reply == NULL)
        p->nulls++;
    else if (reply->type != REDIS_REPLY_INTEGER || reply->integer != s->i + 1)
        p->out_of_order++;
    if (p->done == PIPELINE_N)
        event_base_loopbreak(p->t->base);
}

static void pipe_state(struct rconn *c, bool up, void *ud)
{
    struct pipe *p = ud;
    count_state(c, up, p->t);
    if (!up)
        return;
    for (int i = 0; i < PIPELINE_N; i++) {
        p->ud[i] = (struct slot){(struct t *)p, i};
        if (rconn_cmd(c, incr_cb, &p->ud[i], "INCR counter") != 0)
            p->refused++;
    }
}

Test(rconn, pipelines_ten_thousand_commands_with_one_callback_each)
{
    struct t t;
    struct pipe *p = calloc(1, sizeof(*p));
    struct redis_url u;

    cr_assert_not_null(p);
    t_init(&t);
    p->t = &t;
    start_fixture(&t, NULL);
    u = unix_url(t.fx);
    t.c = rconn_new(t.base, &u, "pipe", pipe_state, p);
    cr_assert(run_loop(t.base, SCENARIO_MS), "timed out after %d replies",
              p->done);
    cr_assert_eq(p->refused, 0);
    cr_assert_eq(p->nulls, 0);
    cr_assert_eq(p->out_of_order, 0);
    rconn_free(t.c);
    t.c = NULL;
    run_loop(t.base, 100); /* nothing may arrive late */
    for (int i = 0; i < PIPELINE_N; i++)
        cr_assert_eq(p->calls[i], 1, "command %d: %d calls", i, p->calls[i]);
    t_deinit(&t);
    free(p);
}

/* ---- NOSCRIPT recovery ----------------------------------------------------
 */

static const char echo_script[] = "return {KEYS[1], ARGV[1]}";
static const char broken_script[] = "return +";

struct scr {
    struct t t;
    char echo_sha[41];
    char broken_sha[41];
    struct rec eval, exists, broken, second;
    const char *second_value;
    int rc[4];
};

static void scr_exists_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct scr *s = ud;
    (void)c;
    record(&s->exists, reply);
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == 1)
        s->exists.integer = reply->element[0]->integer;
    event_base_loopbreak(s->t.base);
}

static void scr_broken_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct scr *s = ud;
    record(&s->broken, reply);
    s->rc[2] = rconn_cmd(c, scr_exists_cb, s, "SCRIPT EXISTS %s", s->echo_sha);
}

static void scr_second_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct scr *s = ud;
    record(&s->second, reply);
    s->second_value = "other";
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == 2 && reply->element[1]->len == 3 &&
        memcmp(reply->element[1]->str, "x\0y", 3) == 0)
        s->second_value = "x\\0y";
    s->rc[1] = rconn_eval_script(c, "broken", s->broken_sha, broken_script,
                                 strlen(broken_script), scr_broken_cb, s, 0, 0,
                                 NULL, NULL);
}

static void scr_eval_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct scr *s = ud;
    const char *argv[] = {"k2", "x\0y"};
    const size_t argvlen[] = {2, 3};

    record(&s->eval, reply);
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == 2) {
        snprintf(s->eval.str, sizeof(s->eval.str), "%s,%s",
                 reply->element[0]->str, reply->element[1]->str);
    }
    /* Loaded now: this one runs without recovery. */
    s->rc[3] = rconn_eval_script(c, "echo", s->echo_sha, echo_script,
                                 strlen(echo_script), scr_second_cb, s, 1, 2,
                                 argv, argvlen);
}

static void scr_state(struct rconn *c, bool up, void *ud)
{
    struct scr *s = ud;
    const char *argv[] = {"k1", "v1"};

    count_state(c, up, &s->t);
    if (!up)
        return;
    rconn_cmd(c, NULL, NULL, "SCRIPT FLUSH");
    s->rc[0] = rconn_eval_script(c, "echo", s->echo_sha, echo_script,
                                 strlen(echo_script), scr_eval_cb, s, 1, 2,
                                 argv, NULL);
}

Test(rconn, recovers_from_noscript_with_a_throwaway_script)
{
    struct scr s;
    struct redis_url u;

    memset(&s, 0, sizeof(s));
    t_init(&s.t);
    sha1_hex(echo_script, s.echo_sha);
    sha1_hex(broken_script, s.broken_sha);
    start_fixture(&s.t, NULL);
    u = unix_url(s.t.fx);
    s.t.c = rconn_new(s.t.base, &u, "scripts", scr_state, &s);
    cr_assert(run_loop(s.t.base, SCENARIO_MS), "timed out");
    for (int i = 0; i < 4; i++)
        cr_assert_eq(s.rc[i], 0, "eval %d refused: %d", i, s.rc[i]);
    cr_assert_eq(s.eval.calls, 1);
    cr_assert_eq(s.eval.type, REDIS_REPLY_ARRAY, "type %d: %s", s.eval.type,
                 s.eval.str);
    cr_assert_str_eq(s.eval.str, "k1,v1");
    cr_assert_eq(s.second.calls, 1);
    cr_assert_str_eq(s.second_value, "x\\0y");
    /* A script that does not compile: the SCRIPT LOAD error, once. */
    cr_assert_eq(s.broken.calls, 1);
    cr_assert_eq(s.broken.type, REDIS_REPLY_ERROR);
    cr_assert(strncmp(s.broken.str, "NOSCRIPT", 8) != 0, "%s", s.broken.str);
    cr_assert_eq(s.exists.calls, 1);
    cr_assert_eq(s.exists.integer, 1);
    t_deinit(&s.t);
}

static void start_script_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct t *t = ud;
    record(&t->rec[0], reply);
    t->rc[1] = rconn_cmd(c, rec_cb, &t->slot[1], "FUNCTION LIST LIBRARYNAME %s",
                         scripts_library_name());
    t->last = 1;
}

static void start_script_state(struct rconn *c, bool up, void *ud)
{
    struct t *t = ud;
    /* A worker's start batch of one plan, for a step that does not
     * exist (so its attempt is not 1: "superseded"): the shared keys, the
     * plan's five, then now and the batch. */
    const char *argv[] = {
        "weft:events",
        "weft:runs",
        "weft:delayed",
        "weft:deadlines",
        "weft:stats",
        "weft:run:r1",
        "weft:run:r1:steps",
        "weft:run:r1:deps",
        "weft:run:r1:state",
        "weft:run:r1:history",
        "1700000000000000",
        "{\"worker\":\"w1\",\"plans\":[{\"k\":6,\"run\":\"r1\","
        "\"step\":\"a\",\"attempt\":1}]}",
    };

    count_state(c, up, ud);
    if (!up)
        return;
    rconn_cmd(c, NULL, NULL, "FUNCTION FLUSH");
    t->rc[0] =
        rconn_eval(c, SCRIPT_START, start_script_cb, t, 10, 12, argv, NULL);
    t->rc[2] = rconn_eval(c, SCRIPT_COUNT, never_cb, t, 0, 0, NULL, NULL);
    t->rc[3] = rconn_eval(c, SCRIPT_START, never_cb, t, 3, 2, argv, NULL);
    t->rc[4] = rconn_eval(c, SCRIPT_START, never_cb, t, -1, 2, argv, NULL);
}

/* The transitions are functions of a library: a Redis that lost it
 * (FUNCTION FLUSH here; a restart without persistence, a failover) gets
 * it again from the call that finds it missing, and the caller sees the
 * transition's own answer. */
Test(rconn, real_transition_runs_after_function_flush)
{
    struct t t;
    struct redis_url u;

    t_init(&t);
    start_fixture(&t, NULL);
    u = unix_url(t.fx);
    t.c = rconn_new(t.base, &u, "start", start_script_state, &t);
    cr_assert(run_loop(t.base, SCENARIO_MS), "timed out");
    cr_assert_eq(t.rc[0], 0);
    cr_assert_eq(t.rc[2], WEFT_EINVAL);
    cr_assert_eq(t.rc[3], WEFT_EINVAL);
    cr_assert_eq(t.rc[4], WEFT_EINVAL);
    cr_assert_eq(t.rec[0].calls, 1);
    cr_assert(!t.rec[0].null_reply);
    cr_assert_eq(t.rec[0].type, REDIS_REPLY_STRING, "caller saw %s",
                 t.rec[0].str);
    cr_assert_str_eq(t.rec[0].str, "[\"superseded\"]");
    cr_assert_eq(t.rec[1].type, REDIS_REPLY_ARRAY);
    cr_assert_eq(t.rec[1].elements, 1);
    t_deinit(&t);
}

/* ---- server killed mid-flight ----------------------------------------------
 */

#define CHAOS_PENDING 4

struct chaos {
    struct t t;
    struct event *restart_ev;
    struct rec pending[CHAOS_PENDING];
    int downs_when_failed[CHAOS_PENDING];
    int rc_while_down;
    int restart_rc;
    struct rec after;
    struct rec name;
};

static void chaos_pending_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct slot *s = ud;
    struct chaos *ch = (struct chaos *)s->t;
    (void)c;
    record(&ch->pending[s->i], reply);
    ch->downs_when_failed[s->i] = ch->t.downs;
}

static void chaos_kill_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct chaos *ch = ud;
    (void)c;
    record(&ch->t.rec[0], reply);
    /* BLPOP and the commands behind it are in flight now. */
    redis_fixture_kill(ch->t.fx);
}

static void chaos_name_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct chaos *ch = ud;
    (void)c;
    record(&ch->name, reply);
    event_base_loopbreak(ch->t.base);
}

static void chaos_after_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct chaos *ch = ud;
    record(&ch->after, reply);
    rconn_cmd(c, chaos_name_cb, ch, "CLIENT GETNAME");
}

static void chaos_restart(evutil_socket_t fd, short what, void *arg)
{
    struct chaos *ch = arg;
    (void)fd;
    (void)what;
    ch->restart_rc = redis_fixture_restart(ch->t.fx);
}

static void chaos_state(struct rconn *c, bool up, void *ud)
{
    struct chaos *ch = ud;
    struct timeval tv = {0, 300000};

    count_state(c, up, &ch->t);
    if (!up) {
        ch->rc_while_down = rconn_cmd(c, never_cb, ch, "PING");
        /* Let a few reconnects fail before the server is back. */
        evtimer_add(ch->restart_ev, &tv);
        return;
    }
    if (ch->t.ups == 1) {
        rconn_cmd(c, chaos_kill_cb, ch, "SET before 1");
        rconn_cmd(c, chaos_pending_cb, &ch->t.slot[0], "BLPOP nolist 0");
        rconn_cmd(c, chaos_pending_cb, &ch->t.slot[1], "GET before");
        rconn_cmd(c, chaos_pending_cb, &ch->t.slot[2], "PING");
        rconn_cmd(c, chaos_pending_cb, &ch->t.slot[3], "INCR n");
    } else {
        rconn_cmd(c, chaos_after_cb, ch, "SET after 1");
    }
}

Test(rconn, reconnects_after_server_killed_and_resends_auth_and_select)
{
    struct chaos ch;
    struct redis_url u;
    char pw[] = "s3cret";
    redisContext *ctx;
    redisReply *r;

    memset(&ch, 0, sizeof(ch));
    t_init(&ch.t); /* ch.t comes first: slots point at ch too */
    ch.restart_ev = evtimer_new(ch.t.base, chaos_restart, &ch);
    start_fixture(&ch.t, "--requirepass s3cret");
    u = tcp_url(ch.t.fx->port);
    u.password = pw;
    u.db = 3;
    ch.t.c = rconn_new(ch.t.base, &u, "weft-chaos", chaos_state, &ch);

    cr_assert(run_loop(ch.t.base, SCENARIO_MS), "timed out: ups %d downs %d",
              ch.t.ups, ch.t.downs);
    cr_assert_eq(ch.t.rec[0].calls, 1);
    cr_assert_str_eq(ch.t.rec[0].str, "OK");
    for (int i = 0; i < CHAOS_PENDING; i++) {
        cr_assert_eq(ch.pending[i].calls, 1, "pending %d: %d calls", i,
                     ch.pending[i].calls);
        cr_assert(ch.pending[i].null_reply, "pending %d got a reply", i);
        cr_assert_eq(ch.downs_when_failed[i], 0,
                     "pending callbacks run before the state callback");
    }
    cr_assert_eq(ch.t.downs, 1);
    cr_assert_eq(ch.t.ups, 2);
    cr_assert_eq(ch.rc_while_down, WEFT_EREDIS);
    cr_assert_eq(ch.restart_rc, 0);
    cr_assert_gt(rconn_connect_attempts(ch.t.c), 2);
    cr_assert_str_eq(ch.after.str, "OK");
    cr_assert_str_eq(ch.name.str, "weft-chaos");

    /* The key written after the reconnect is in db 3, not in db 0. */
    ctx = sync_connect(ch.t.fx, "s3cret", 3);
    r = redisCommand(ctx, "GET after");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_str_eq(r->str, "1");
    freeReplyObject(r);
    redisFree(ctx);
    ctx = sync_connect(ch.t.fx, "s3cret", 0);
    r = redisCommand(ctx, "EXISTS after");
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);
    redisFree(ctx);

    event_free(ch.restart_ev);
    t_deinit(&ch.t);
}

/* ---- backoff
 * ----------------------------------------------------------------- */

/* With 50 ms doubling, attempts start at 0, 50, 150, 350 and 750 ms: five
 * in the first second. A busy loop would make hundreds. */
#define BACKOFF_MIN_ATTEMPTS 4
#define BACKOFF_MAX_ATTEMPTS 6
/* CPU a second of backing off may use; a busy loop would use it all. */
#define BACKOFF_MAX_CPU_MS 300

static void check_backoff(struct t *t, unsigned long attempts, long cpu)
{
    cr_assert_eq(t->ups, 0);
    cr_assert_geq(attempts, BACKOFF_MIN_ATTEMPTS, "%lu attempts", attempts);
    cr_assert_leq(attempts, BACKOFF_MAX_ATTEMPTS, "%lu attempts", attempts);
    cr_assert_lt(cpu, BACKOFF_MAX_CPU_MS, "%ld ms of CPU", cpu);
}

Test(rconn, backs_off_when_nothing_listens_on_the_port)
{
    struct t t;
    struct redis_url u;
    long cpu;

    t_init(&t);
    u = tcp_url(refused_port());
    cpu = cpu_ms();
    t.c = rconn_new(t.base, &u, "refused", count_state, &t);
    cr_assert(!run_loop(t.base, 1000));
    check_backoff(&t, rconn_connect_attempts(t.c), cpu_ms() - cpu);
    cr_assert_eq(rconn_cmd(t.c, never_cb, &t, "PING"), WEFT_EREDIS);
    t_deinit(&t);
}

Test(rconn, backs_off_when_the_socket_file_is_missing)
{
    struct t t;
    struct redis_url u;
    char path[] = "/tmp/weft-no-such-dir/redis.sock";
    long cpu;

    t_init(&t);
    memset(&u, 0, sizeof(u));
    u.unix_path = path;
    cpu = cpu_ms();
    t.c = rconn_new(t.base, &u, "missing", count_state, &t);
    cr_assert(!run_loop(t.base, 1000));
    check_backoff(&t, rconn_connect_attempts(t.c), cpu_ms() - cpu);
    t_deinit(&t);
}

struct slammer {
    int lfd;
    int accepted;
};

static void slam_cb(evutil_socket_t fd, short what, void *arg)
{
    struct slammer *s = arg;
    int cfd = accept(fd, NULL, NULL);
    (void)what;
    if (cfd >= 0) {
        s->accepted++;
        close(cfd);
    }
}

Test(rconn, backs_off_when_the_server_closes_each_connection)
{
    struct t t;
    struct slammer s = {0, 0};
    struct redis_url u;
    struct event *ev;
    int port;
    long cpu;

    t_init(&t);
    s.lfd = listener(16, &port);
    ev = event_new(t.base, s.lfd, EV_READ | EV_PERSIST, slam_cb, &s);
    event_add(ev, NULL);
    u = tcp_url(port);
    cpu = cpu_ms();
    t.c = rconn_new(t.base, &u, "slammed", count_state, &t);
    cr_assert(!run_loop(t.base, 1000));
    check_backoff(&t, (unsigned long)s.accepted, cpu_ms() - cpu);
    cr_assert_eq(rconn_connect_attempts(t.c), (unsigned long)s.accepted);
    event_free(ev);
    close(s.lfd);
    t_deinit(&t);
}

Test(rconn, retries_with_backoff_when_auth_is_refused)
{
    struct t t;
    struct redis_url u;
    char pw[] = "wrong";
    long cpu;

    t_init(&t);
    start_fixture(&t, "--requirepass right");
    u = unix_url(t.fx);
    u.password = pw;
    cpu = cpu_ms();
    t.c = rconn_new(t.base, &u, "badauth", count_state, &t);
    cr_assert(!run_loop(t.base, 1000));
    check_backoff(&t, rconn_connect_attempts(t.c), cpu_ms() - cpu);
    t_deinit(&t);
}

Test(rconn, never_comes_up_when_select_is_refused)
{
    struct t t;
    struct redis_url u;

    t_init(&t);
    start_fixture(&t, NULL);
    u = unix_url(t.fx);
    u.db = 16; /* databases defaults to 16: 0..15 */
    t.c = rconn_new(t.base, &u, "baddb", count_state, &t);
    cr_assert(!run_loop(t.base, 500));
    cr_assert_eq(t.ups, 0);
    cr_assert_gt(rconn_connect_attempts(t.c), 1);
    t_deinit(&t);
}

/* ---- timeouts
 * ------------------------------------------------------------------ */

/* RCONN_CONNECT_TIMEOUT_MS plus half a second: the first attempt timed
 * out, the second (after 50 ms of backoff) is still waiting. */
#define TIMEOUT_WINDOW_MS (RCONN_CONNECT_TIMEOUT_MS + 500)

Test(rconn, times_out_a_connect_that_gets_no_answer)
{
    struct t t;
    struct redis_url u;
    int lfd, fillers[8], n;
    int port;

    t_init(&t);
    port = blackhole(&lfd, fillers, 8, &n);
    u = tcp_url(port);
    t.c = rconn_new(t.base, &u, "blackhole", count_state, &t);
    cr_assert(!run_loop(t.base, TIMEOUT_WINDOW_MS));
    cr_assert_eq(t.ups, 0);
    cr_assert_eq(rconn_connect_attempts(t.c), 2);
    t_deinit(&t);
    close_all(fillers, n);
    close(lfd);
}

Test(rconn, times_out_a_handshake_the_server_never_answers)
{
    struct t t;
    struct redis_url u;
    int lfd, port;

    t_init(&t);
    lfd = listener(16, &port); /* the kernel accepts; nobody answers */
    u = tcp_url(port);
    t.c = rconn_new(t.base, &u, "silent", count_state, &t);
    cr_assert(!run_loop(t.base, TIMEOUT_WINDOW_MS));
    cr_assert_eq(t.ups, 0);
    cr_assert_eq(rconn_connect_attempts(t.c), 2);
    t_deinit(&t);
    close(lfd);
}

/* ---- rconn_free inside callbacks
 * ------------------------------------------------- */

struct freer {
    struct t *t;
    int calls[FREE_N];
    struct slot ud[FREE_N];
    int nulls;
    int replies;
    int nested_rc_ok; /* rconn_cmd calls from NULL callbacks that succeeded */
    int state_calls_after_free;
    bool freed;
};

static void freer_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct slot *s = ud;
    struct freer *f = (struct freer *)s->t;
    f->calls[s->i]++;
    if (reply == NULL) {
        f->nulls++;
        if (rconn_cmd(c, never_cb, NULL, "PING") == 0)
            f->nested_rc_ok++;
        rconn_free(c); /* again: a no-op while freeing */
        return;
    }
    f->replies++;
    if (s->i == 0) {
        f->freed = true;
        rconn_free(c);
    }
}

static void freer_send(struct freer *f, struct rconn *c, int n)
{
    for (int i = 0; i < n; i++) {
        f->ud[i] = (struct slot){(struct t *)f, i};
        cr_assert_eq(rconn_cmd(c, freer_cb, &f->ud[i], "PING"), 0);
    }
}

static void free_in_reply_state(struct rconn *c, bool up, void *ud)
{
    struct freer *f = ud;
    if (f->freed) {
        f->state_calls_after_free++;
        return;
    }
    if (up)
        freer_send(f, c, 5);
}

Test(rconn, free_inside_a_reply_callback_fails_the_rest_once)
{
    struct t t;
    struct freer f;
    struct redis_url u;

    memset(&f, 0, sizeof(f));
    t_init(&t);
    f.t = &t;
    start_fixture(&t, NULL);
    u = unix_url(t.fx);
    t.c = rconn_new(t.base, &u, "free-reply", free_in_reply_state, &f);
    run_loop(t.base, 1000);
    t.c = NULL; /* freed by the callback */
    cr_assert(f.freed);
    cr_assert_eq(f.calls[0], 1);
    for (int i = 1; i < 5; i++)
        cr_assert_eq(f.calls[i], 1, "command %d: %d calls", i, f.calls[i]);
    cr_assert_eq(f.replies, 1);
    cr_assert_eq(f.nulls, 4);
    cr_assert_eq(f.nested_rc_ok, 0);
    cr_assert_eq(f.state_calls_after_free, 0);
    t_deinit(&t);
}

static void free_in_up_state(struct rconn *c, bool up, void *ud)
{
    struct freer *f = ud;
    if (f->freed) {
        f->state_calls_after_free++;
        return;
    }
    if (!up)
        return;
    /* From slot 1: a reply to slot 0 would free again. */
    for (int i = 1; i < FREE_N; i++) {
        f->ud[i] = (struct slot){(struct t *)f, i};
        rconn_cmd(c, freer_cb, &f->ud[i], "PING");
    }
    f->freed = true;
    rconn_free(c);
    /* c stays valid until this callback returns. */
    f->nested_rc_ok += rconn_cmd(c, never_cb, NULL, "PING") == 0;
}

Test(rconn, free_inside_the_up_callback_fails_queued_commands_once)
{
    struct t t;
    struct freer *f = calloc(1, sizeof(*f));
    struct redis_url u;
    int total = 0;

    cr_assert_not_null(f);
    t_init(&t);
    f->t = &t;
    start_fixture(&t, NULL);
    u = unix_url(t.fx);
    t.c = rconn_new(t.base, &u, "free-up", free_in_up_state, f);
    run_loop(t.base, 1000);
    t.c = NULL;
    cr_assert(f->freed);
    for (int i = 1; i < FREE_N; i++) {
        cr_assert_eq(f->calls[i], 1, "command %d: %d calls", i, f->calls[i]);
        total += f->calls[i];
    }
    cr_assert_eq(total, FREE_N - 1);
    cr_assert_eq(f->nulls, FREE_N - 1);
    cr_assert_eq(f->nested_rc_ok, 0);
    cr_assert_eq(f->state_calls_after_free, 0);
    t_deinit(&t);
    free(f);
}

static void free_from_timer(evutil_socket_t fd, short what, void *arg)
{
    struct freer *f = arg;
    (void)fd;
    (void)what;
    f->freed = true;
    rconn_free(f->t->c);
    f->t->c = NULL;
}

static void send_then_free_state(struct rconn *c, bool up, void *ud)
{
    struct freer *f = ud;
    struct timeval tv = {0, 0};
    if (!up || f->freed)
        return;
    for (int i = 1; i < FREE_N; i++) {
        f->ud[i] = (struct slot){(struct t *)f, i};
        rconn_cmd(c, freer_cb, &f->ud[i], "PING");
    }
    event_base_once(f->t->base, -1, EV_TIMEOUT, free_from_timer, f, &tv);
}

Test(rconn, free_outside_callbacks_settles_every_command_once)
{
    struct t t;
    struct freer *f = calloc(1, sizeof(*f));
    struct redis_url u;

    cr_assert_not_null(f);
    t_init(&t);
    f->t = &t;
    start_fixture(&t, NULL);
    u = unix_url(t.fx);
    t.c = rconn_new(t.base, &u, "free-timer", send_then_free_state, f);
    run_loop(t.base, 1000);
    cr_assert(f->freed);
    for (int i = 1; i < FREE_N; i++)
        cr_assert_eq(f->calls[i], 1, "command %d: %d calls", i, f->calls[i]);
    cr_assert_eq(f->replies + f->nulls, FREE_N - 1);
    cr_assert_eq(f->nested_rc_ok, 0);
    t_deinit(&t);
    free(f);
}

/* Frees from the NULL callback of a command the dying server never
 * answered, or from the "down" state callback. */
struct dying {
    struct t t;
    bool free_in_null; /* else free in the down callback */
    int nulls;
    int downs_seen;
    bool freed;
};

static void dying_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct dying *d = ud;
    if (reply == NULL) {
        d->nulls++;
        if (d->free_in_null && !d->freed) {
            d->freed = true;
            rconn_free(c);
        }
        return;
    }
    /* The SET reply: kill the server under the BLPOP behind it. */
    redis_fixture_kill(d->t.fx);
}

static void dying_state(struct rconn *c, bool up, void *ud)
{
    struct dying *d = ud;
    if (up) {
        rconn_cmd(c, dying_cb, d, "SET a 1");
        rconn_cmd(c, dying_cb, d, "BLPOP nolist 0");
        rconn_cmd(c, dying_cb, d, "PING");
        return;
    }
    d->downs_seen++;
    if (!d->free_in_null) {
        d->freed = true;
        rconn_free(c);
    }
}

static void run_dying(bool free_in_null)
{
    struct dying d;
    struct redis_url u;

    memset(&d, 0, sizeof(d));
    d.free_in_null = free_in_null;
    t_init(&d.t);
    start_fixture(&d.t, NULL);
    u = unix_url(d.t.fx);
    d.t.c = rconn_new(d.t.base, &u, "dying", dying_state, &d);
    run_loop(d.t.base, 1000);
    d.t.c = NULL;
    cr_assert(d.freed);
    cr_assert_eq(d.nulls, 2);
    cr_assert_eq(d.downs_seen, free_in_null ? 0 : 1);
    t_deinit(&d.t);
}

Test(rconn, free_inside_a_null_callback_after_the_server_died)
{
    run_dying(true);
}

Test(rconn, free_inside_the_down_callback)
{
    run_dying(false);
}

static void free_backoff_timer(evutil_socket_t fd, short what, void *arg)
{
    struct t *t = arg;
    (void)fd;
    (void)what;
    rconn_free(t->c);
    t->c = NULL;
    event_base_loopbreak(t->base);
}

Test(rconn, free_while_connecting_or_backing_off)
{
    struct t t;
    struct redis_url u;
    int lfd, fillers[8], n;
    struct timeval tv = {0, 120000};

    rconn_free(NULL);
    t_init(&t);
    /* Backing off between refused connects. */
    u = tcp_url(refused_port());
    t.c = rconn_new(t.base, &u, "free-backoff", count_state, &t);
    event_base_once(t.base, -1, EV_TIMEOUT, free_backoff_timer, &t, &tv);
    cr_assert(run_loop(t.base, 2000));
    cr_assert_null(t.c);

    /* A connect in flight. */
    u = tcp_url(blackhole(&lfd, fillers, 8, &n));
    t.c = rconn_new(t.base, &u, "free-connecting", count_state, &t);
    event_base_once(t.base, -1, EV_TIMEOUT, free_backoff_timer, &t, &tv);
    cr_assert(run_loop(t.base, 2000));
    cr_assert_eq(t.ups, 0);
    cr_assert_eq(t.downs, 0);
    t_deinit(&t);
    close_all(fillers, n);
    close(lfd);
}

/* ---- blocking reads on their own connection
 * ------------------------------------ */

#define PINGS_WHILE_BLOCKED 50

struct blocking {
    struct t t;
    struct rconn *reader, *writer;
    int ups;
    bool read_done;
    int pings;
    int pings_before_read;
    int info_rounds;
    struct rec group, read, add;
    char field[32];
};

static void blk_read_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct blocking *b = ud;
    (void)c;
    record(&b->read, reply);
    b->read_done = true;
    /* [[stream, [[id, [field, value]]]]] */
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == 1 && reply->element[0]->elements == 2) {
        redisReply *entries = reply->element[0]->element[1];
        if (entries->elements == 1 && entries->element[0]->elements == 2 &&
            entries->element[0]->element[1]->elements == 2)
            snprintf(b->field, sizeof(b->field), "%s",
                     entries->element[0]->element[1]->element[1]->str);
    }
    /* Replies across connections are not ordered: wait for both. */
    if (b->add.calls > 0)
        event_base_loopbreak(b->t.base);
}

static void blk_add_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct blocking *b = ud;
    (void)c;
    record(&b->add, reply);
    if (b->read_done)
        event_base_loopbreak(b->t.base);
}

static void blk_ping_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct blocking *b = ud;
    if (reply == NULL)
        return;
    b->pings++;
    if (!b->read_done)
        b->pings_before_read++;
    if (b->pings == PINGS_WHILE_BLOCKED)
        rconn_cmd(c, blk_add_cb, b, "XADD s * f hello");
}

/* Asks the server, on the writer, until it reports the reader blocked;
 * then PINGs on the writer while the reader stays blocked. */
static void blk_info_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct blocking *b = ud;
    if (reply == NULL)
        return;
    b->info_rounds++;
    if (reply->type != REDIS_REPLY_STRING ||
        strstr(reply->str, "blocked_clients:1") == NULL) {
        rconn_cmd(c, blk_info_cb, b, "INFO clients");
        return;
    }
    for (int i = 0; i < PINGS_WHILE_BLOCKED; i++)
        rconn_cmd(c, blk_ping_cb, b, "PING");
}

static void blk_group_cb(struct rconn *c, redisReply *reply, void *ud)
{
    struct blocking *b = ud;
    record(&b->group, reply);
    /* The group exists now: read from it (FIELD-NOTES: never before). */
    rconn_cmd(c, blk_read_cb, b,
              "XREADGROUP GROUP g c1 COUNT 1 BLOCK 20000 STREAMS s >");
    rconn_cmd(b->writer, blk_info_cb, b, "INFO clients");
}

static void blk_state(struct rconn *c, bool up, void *ud)
{
    struct blocking *b = ud;
    (void)c;
    if (!up || ++b->ups < 2)
        return;
    rconn_cmd(b->reader, blk_group_cb, b, "XGROUP CREATE s g $ MKSTREAM");
}

Test(rconn, blocking_read_does_not_hold_up_another_connection)
{
    struct blocking b;
    struct redis_url u;

    memset(&b, 0, sizeof(b));
    t_init(&b.t);
    start_fixture(&b.t, NULL);
    u = unix_url(b.t.fx);
    b.reader = rconn_new(b.t.base, &u, "reader", blk_state, &b);
    b.writer = rconn_new(b.t.base, &u, "writer", blk_state, &b);
    cr_assert(run_loop(b.t.base, SCENARIO_MS), "timed out");
    cr_assert_str_eq(b.group.str, "OK");
    cr_assert_eq(b.pings, PINGS_WHILE_BLOCKED);
    cr_assert_eq(b.pings_before_read, PINGS_WHILE_BLOCKED);
    cr_assert_eq(b.add.type, REDIS_REPLY_STRING);
    cr_assert_eq(b.read.calls, 1);
    cr_assert_str_eq(b.field, "hello");
    rconn_free(b.reader);
    rconn_free(b.writer);
    t_deinit(&b.t);
}

/* ---- RTT
 * ----------------------------------------------------------------------- */

static void rtt_check(evutil_socket_t fd, short what, void *arg)
{
    struct t *t = arg;
    (void)fd;
    (void)what;
    t->rec[0].integer = rconn_rtt_us(t->c);
    event_base_loopbreak(t->base);
}

static void rtt_state(struct rconn *c, bool up, void *ud)
{
    struct t *t = ud;
    struct timeval tv = {0, 200000};
    count_state(c, up, ud);
    if (up)
        event_base_once(t->base, -1, EV_TIMEOUT, rtt_check, t, &tv);
}

Test(rconn, measures_the_round_trip_time)
{
    struct t t;
    struct redis_url u;

    t_init(&t);
    start_fixture(&t, NULL);
    u = unix_url(t.fx);
    t.c = rconn_new(t.base, &u, "rtt", rtt_state, &t);
    cr_assert_eq(rconn_rtt_us(t.c), 0);
    cr_assert(run_loop(t.base, SCENARIO_MS), "timed out");
    cr_assert_gt(t.rec[0].integer, 0);
    cr_assert_lt(t.rec[0].integer, 1000000);
    cr_assert_eq(rconn_rtt_us(NULL), 0);
    t_deinit(&t);
}

/* ---- rconn_connect_sync
 * -------------------------------------------------------- */

Test(rconn, connect_sync_authenticates_and_selects_the_db)
{
    struct t t;
    struct weft_error err;
    struct redis_url u;
    char pw[] = "pw";
    redisContext *ctx;
    redisReply *r;

    t_init(&t);
    start_fixture(&t, "--requirepass pw");
    u = tcp_url(t.fx->port);
    u.password = pw;
    u.db = 5;
    ctx = rconn_connect_sync(&u, 1000, &err);
    cr_assert_not_null(ctx, "%s", err.msg);
    r = redisCommand(ctx, "SET in5 yes");
    cr_assert_str_eq(r->str, "OK");
    freeReplyObject(r);
    redisFree(ctx);
    ctx = sync_connect(t.fx, "pw", 0);
    r = redisCommand(ctx, "EXISTS in5");
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);
    redisFree(ctx);
    ctx = sync_connect(t.fx, "pw", 5);
    r = redisCommand(ctx, "EXISTS in5");
    cr_assert_eq(r->integer, 1);
    freeReplyObject(r);
    redisFree(ctx);
    t_deinit(&t);
}

Test(rconn, connect_sync_reports_each_failure)
{
    struct t t;
    struct weft_error err;
    struct redis_url u;
    char wrong[] = "nope";
    int lfd, fillers[8], n;
    long start;

    t_init(&t);
    start_fixture(&t, "--requirepass pw");

    u = unix_url(t.fx);
    u.password = wrong;
    cr_assert_null(rconn_connect_sync(&u, 1000, &err));
    cr_assert_eq(err.code, WEFT_EAUTH, "%d: %s", err.code, err.msg);
    cr_assert_null(strstr(err.msg, "nope"), "password leaked: %s", err.msg);

    /* No password: nothing is sent at connect, so it succeeds; with a db,
     * the refused SELECT shows it. */
    u = unix_url(t.fx);
    redisFree(sync_connect(t.fx, NULL, 0));
    u.db = 2;
    cr_assert_null(rconn_connect_sync(&u, 1000, &err));
    cr_assert_eq(err.code, WEFT_EREDIS, "%d: %s", err.code, err.msg);

    u = tcp_url(refused_port());
    cr_assert_null(rconn_connect_sync(&u, 1000, &err));
    cr_assert_eq(err.code, WEFT_EIO, "%d: %s", err.code, err.msg);

    u = tcp_url(blackhole(&lfd, fillers, 8, &n));
    start = now_ms();
    cr_assert_null(rconn_connect_sync(&u, 300, &err));
    cr_assert_eq(err.code, WEFT_ETIMEOUT, "%d: %s", err.code, err.msg);
    cr_assert_lt(now_ms() - start, 1500);
    close_all(fillers, n);
    close(lfd);

    memset(&u, 0, sizeof(u));
    cr_assert_null(rconn_connect_sync(&u, 1000, &err));
    cr_assert_eq(err.code, WEFT_EINVAL);
    t_deinit(&t);
}

/* ---- subscriptions
 * ----------------------------------------------------------------- */

struct subtest {
    struct t *t;
    struct rconn *pub;
    struct event *tick;
    const char *want; /* payload being published until it arrives */
    int got;          /* messages with the wanted payload */
};

static void sub_message(struct rconn *c, const char *payload, size_t len,
                        void *ud)
{
    struct subtest *st = ud;
    (void)c;
    if (strlen(st->want) == len && memcmp(st->want, payload, len) == 0) {
        st->got++;
        event_base_loopbreak(st->t->base);
    }
}

/* Publishes until the subscriber hears it: pub/sub drops messages sent
 * before the subscription is live, so there is no event to wait for. */
static void sub_tick(evutil_socket_t fd, short what, void *arg)
{
    struct subtest *st = arg;
    (void)fd;
    (void)what;
    if (rconn_is_up(st->pub))
        rconn_cmd(st->pub, NULL, NULL, "PUBLISH weft:cancel %s", st->want);
}

Test(rconn, subscription_delivers_messages_and_survives_a_restart)
{
    struct t t;
    struct subtest st;
    t_init(&t);
    start_fixture(&t, NULL);
    struct redis_url u = unix_url(t.fx);
    memset(&st, 0, sizeof(st));
    st.t = &t;
    t.c = rconn_new(t.base, &u, "sub", count_state, &t);
    st.pub = rconn_new(t.base, &u, "pub", NULL, NULL);
    cr_assert_eq(rconn_subscribe(t.c, "weft:cancel", sub_message, &st), 0);
    cr_assert_eq(rconn_subscribe(t.c, "other", sub_message, &st), WEFT_EINVAL,
                 "one subscription per connection");
    st.tick = event_new(t.base, -1, EV_PERSIST, sub_tick, &st);
    struct timeval every = {0, 20 * 1000};
    event_add(st.tick, &every);

    st.want = "r1|a|1";
    cr_assert(run_loop(t.base, 5000), "no message before the restart");
    cr_assert_eq(st.got, 1);
    const char *argv[] = {"PING"};
    cr_assert_eq(rconn_argv(t.c, never_cb, NULL, 1, argv, NULL), WEFT_EINVAL,
                 "a subscribed connection takes no other command");

    cr_assert_eq(redis_fixture_restart(t.fx), 0);
    st.want = "r2|b|2";
    st.got = 0;
    cr_assert(run_loop(t.base, 10000), "no message after the restart");
    cr_assert_eq(st.got, 1);
    cr_assert_geq(t.ups, 2, "the subscriber reconnected");

    event_free(st.tick);
    rconn_free(st.pub);
    t_deinit(&t);
}

/* ---- liveness
 * ----------------------------------------------------------------- */

struct stall {
    struct t *t;
    struct event *resume_ev;
    long down_at_ms; /* when the state callback said down, 0 before */
    long stopped_at_ms;
};

static void stall_state(struct rconn *c, bool up, void *ud)
{
    struct stall *st = ud;
    (void)c;
    if (up) {
        st->t->ups++;
        if (st->t->ups == 1) {
            /* Freeze the server: the connection stays open but nothing
             * answers, like a pulled network link. */
            kill(st->t->fx->pid, SIGSTOP);
            st->stopped_at_ms = now_ms();
        } else {
            event_base_loopbreak(st->t->base);
        }
    } else {
        st->t->downs++;
        st->down_at_ms = now_ms();
        kill(st->t->fx->pid, SIGCONT);
    }
}

Test(rconn, drops_a_connection_whose_server_stopped_answering)
{
    struct t t;
    struct stall st;
    t_init(&t);
    start_fixture(&t, NULL);
    struct redis_url u = tcp_url(t.fx->port);
    memset(&st, 0, sizeof(st));
    st.t = &t;
    t.c = rconn_new(t.base, &u, "stall", stall_state, &st);
    bool done = run_loop(t.base, 20000);
    kill(t.fx->pid, SIGCONT);
    cr_assert(done, "never recovered: ups %d downs %d", t.ups, t.downs);
    cr_assert_eq(t.downs, 1, "the silent connection was dropped");
    cr_assert_geq(t.ups, 2, "and established again");
    long silent = st.down_at_ms - st.stopped_at_ms;
    cr_assert(silent >= 5000 && silent <= 9000,
              "dropped after %ld ms of silence", silent);
    t_deinit(&t);
}
