/* rconn.c - one Redis connection on a libevent loop: hiredis 0.14 async
 * plus what 0.14 lacks (connect timeout, reconnect with backoff, AUTH and
 * SELECT on every new connection), a PING for the round-trip time, and
 * FCALL and EVALSHA that load their function library or script again when
 * Redis lost it.
 *
 * Lifetimes. hiredis owns the redisAsyncContext (c->ac) and frees it by
 * itself on connect failure and after a disconnect; struct rconn always
 * outlives it, because every hiredis callback reaches us through it:
 *  - c->ac is cleared only where hiredis is done with the context: in
 *    on_disconnect (its last callback for a context that connected), in a
 *    failed on_connect (hiredis frees it right after, nothing pending), or
 *    where we free a context that never connected (nothing can be pending
 *    there: no command is sent before the connect callback).
 *  - the rconn is released only once it is flagged freeing, c->ac is NULL
 *    and no user callback of ours is on the stack (c->depth == 0).
 *  - user code never runs inside on_connect: hiredis 0.14 keeps using the
 *    context after that callback returns and does not guard it with
 *    REDIS_IN_CALLBACK, so a free there would be a use after free. The
 *    state callback runs from a reply callback (handshake done) or from
 *    on_disconnect.
 *  - a context that must go away while connected is always ended with
 *    redisAsyncFree: inside a reply callback hiredis defers it until the
 *    callback returns, then runs the pending callbacks with NULL and
 *    on_disconnect. (redisAsyncDisconnect waits for outstanding replies
 *    and asserts on some paths in 0.14.)
 *
 * hiredis 0.14 aborts the process when its own allocations fail and
 * resolves host names with a blocking getaddrinfo() inside
 * redisAsyncConnect; use IP addresses or unix sockets where that matters.
 */
#include "rconn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <strings.h>
#include <time.h>

#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "alloc.h"
#include "rconn_int.h"

/* Interval of the RTT probe, as promised in rconn.h. */
#define RCONN_PING_INTERVAL_MS 1000
/* A PING unanswered this long means the peer or the path is gone (a
 * pulled link loses no packet the kernel would report for many minutes):
 * the connection is dropped and re-established. Longer than the longest
 * blocking read a PING may queue behind (XREADGROUP BLOCK 2000). */
#define RCONN_PING_TIMEOUT_MS 6000
/* TCP keepalive for connections that carry no PING (subscriptions) and
 * a bound on unacknowledged data: seconds of idle, probe interval,
 * probes, and ms. */
#define RCONN_KEEPIDLE_S      5
#define RCONN_KEEPINTVL_S     2
#define RCONN_KEEPCNT         3
#define RCONN_USER_TIMEOUT_MS 10000
/* Longest endpoint description kept for log lines; longer ones are cut. */
#define RCONN_LABEL_MAX 160
/* Length of a hex SHA-1, the only form EVALSHA accepts. */
#define RCONN_SHA_LEN 40

enum rconn_state {
    RCONN_IDLE,       /* no context; the backoff timer may be armed */
    RCONN_CONNECTING, /* connect(2) in flight; connect timer armed */
    RCONN_HANDSHAKE,  /* AUTH/SELECT/SETNAME sent; connect timer armed */
    RCONN_UP,         /* handshake answered; commands accepted */
    RCONN_CLOSING,    /* we freed the context; on_disconnect will follow */
};

struct rconn {
    struct event_base *base; /* borrowed; outlives the rconn */
    redisAsyncContext *ac;   /* owned by hiredis; NULL when none */
    enum rconn_state state;
    struct redis_url url;        /* deep copy, strings owned */
    char *name;                  /* owned; NULL: no CLIENT SETNAME */
    char label[RCONN_LABEL_MAX]; /* "name@endpoint" for logs, no password */
    rconn_state_cb state_cb;
    void *ud;

    struct event *backoff_ev; /* one-shot: start the next connect */
    struct event *timeout_ev; /* one-shot: connect + handshake limit */
    struct event *ping_ev;    /* persistent while up: RTT probe */
    int backoff_ms;         /* next retry delay, RCONN_BACKOFF_MIN_MS..MAX_MS */
    unsigned long attempts; /* connects started, for tests */

    bool ping_pending;         /* a PING is outstanding */
    bool silent;               /* dropped for an unanswered PING */
    struct timespec ping_sent; /* CLOCK_MONOTONIC when it was sent */
    long rtt_us;               /* last measured RTT; 0 = none yet */

    char *channel; /* subscribed channel, owned; NULL: none */
    rconn_message_cb msg_cb;
    void *msg_ud;

    int depth;    /* user callbacks of ours currently on the stack */
    bool freeing; /* rconn_free was called; release when safe */
};

/* One accepted command whose callback is still owed. For FCALL and
 * EVALSHA it also holds the command (argv points into this same
 * allocation) so that it can be sent again after FUNCTION LOAD or SCRIPT
 * LOAD. */
struct op {
    struct rconn *c;
    rconn_reply_cb cb;
    void *ud;
    /* FCALL and EVALSHA only (argv == NULL otherwise): */
    bool fcall;        /* FCALL of a library's function, else EVALSHA */
    const char *label; /* script name for logs, borrowed */
    const char *text;  /* library or script source, borrowed */
    size_t text_len;
    bool retried;      /* recovery already done once */
    int argc;          /* "FCALL" name (or "EVALSHA" sha) nkeys keys... */
    const char **argv; /* the command; argv[1] the function or SHA-1 */
    size_t *argvlen;
};

static void start_connect(struct rconn *c);

static void rconn_log(const struct rconn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void rconn_log(const struct rconn *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "rconn: %s: ", c->label);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

static void release(struct rconn *c)
{
    event_free(c->backoff_ev);
    event_free(c->timeout_ev);
    event_free(c->ping_ev);
    weft_free(c->url.host);
    weft_free(c->url.unix_path);
    weft_free(c->url.user);
    if (c->url.password != NULL) {
        /* Do not leave the secret in freed memory. */
        volatile char *p = c->url.password;
        while (*p != '\0')
            *p++ = '\0';
    }
    weft_free(c->url.password);
    weft_free(c->name);
    weft_free(c->channel);
    weft_free(c);
}

/* Releases c if rconn_free asked for it and nothing can reach c anymore. */
static void maybe_release(struct rconn *c)
{
    if (c->freeing && c->depth == 0 && c->ac == NULL)
        release(c);
}

static void schedule_retry(struct rconn *c)
{
    struct timeval tv = ms_to_tv(c->backoff_ms);
    c->state = RCONN_IDLE;
    if (c->backoff_ms < RCONN_BACKOFF_MAX_MS / 2)
        c->backoff_ms *= 2;
    else
        c->backoff_ms = RCONN_BACKOFF_MAX_MS;
    evtimer_add(c->backoff_ev, &tv);
}

/* Ends a connected context; on_disconnect then schedules the retry. Runs
 * at once outside hiredis callbacks, after the current one inside. */
static void drop(struct rconn *c)
{
    redisAsyncContext *ac = c->ac;
    c->state = RCONN_CLOSING;
    redisAsyncFree(ac);
}

static void on_ping_timer(evutil_socket_t fd, short what, void *arg);

/* Every reply on a subscribed connection: the subscribe confirmation and
 * then one ["message", channel, payload] per message. hiredis keeps this
 * callback for the life of the subscription. */
static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct rconn *c = priv;
    redisReply *reply = r;
    (void)ac;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 3 || c->freeing || c->msg_cb == NULL)
        return;
    redisReply *kind = reply->element[0], *payload = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") != 0 ||
        payload->type != REDIS_REPLY_STRING)
        return;
    c->depth++;
    c->msg_cb(c, payload->str, payload->len, c->msg_ud);
    c->depth--;
}

static void send_subscribe(struct rconn *c)
{
    if (redisAsyncCommand(c->ac, on_sub_reply, c, "SUBSCRIBE %s", c->channel) !=
        REDIS_OK)
        rconn_log(c, "cannot subscribe to %s", c->channel);
}

static void set_state_up(struct rconn *c)
{
    struct timeval tv = ms_to_tv(RCONN_PING_INTERVAL_MS);
    c->state = RCONN_UP;
    c->backoff_ms = RCONN_BACKOFF_MIN_MS;
    evtimer_del(c->timeout_ev);
    if (c->channel != NULL) {
        send_subscribe(c);
    } else {
        event_add(c->ping_ev, &tv);
        on_ping_timer(-1, 0, c); /* first sample at once */
    }
    if (c->state_cb != NULL) {
        c->depth++;
        c->state_cb(c, true, c->ud);
        c->depth--;
    }
    /* c->ac is set here, so a free requested by the callback completes
     * in on_disconnect once hiredis has unwound. */
}

static bool is_error_prefix(const redisReply *r, const char *prefix)
{
    size_t n = strlen(prefix);
    return r->type == REDIS_REPLY_ERROR && r->len >= n &&
           memcmp(r->str, prefix, n) == 0;
}

/* Common check of a handshake reply. Returns true when the handshake may
 * go on. AUTH and SELECT errors, and NOAUTH on any step, end this
 * connection (a retry follows); other errors are logged. */
static bool handshake_step_ok(struct rconn *c, const redisReply *r,
                              const char *what, bool fatal)
{
    if (r == NULL || c->state != RCONN_HANDSHAKE)
        return false; /* the context is going away */
    if (r->type != REDIS_REPLY_ERROR)
        return true;
    rconn_log(c, "%s failed: %.*s", what, (int)r->len, r->str);
    if (fatal || is_error_prefix(r, "NOAUTH")) {
        drop(c);
        return false;
    }
    return true;
}

static void on_auth_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    handshake_step_ok(priv, r, "AUTH", true);
}

static void on_select_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    handshake_step_ok(priv, r, "SELECT", true);
}

/* The last handshake step (CLIENT SETNAME, or PING without a name). */
static void on_handshake_done(redisAsyncContext *ac, void *r, void *priv)
{
    struct rconn *c = priv;
    (void)ac;
    if (handshake_step_ok(c, r, c->name != NULL ? "CLIENT SETNAME" : "PING",
                          false))
        set_state_up(c);
}

/* Queues AUTH, SELECT and CLIENT SETNAME (or PING) ahead of anything
 * else. Always sends at least one command so that "up" is declared from a
 * reply callback, where a free by the state callback is safe. */
static void send_handshake(struct rconn *c)
{
    redisAsyncContext *ac = c->ac;
    int rc = REDIS_OK;

    if (c->url.password != NULL) {
        const char *argv[3];
        int argc = 0;
        argv[argc++] = "AUTH";
        if (c->url.user != NULL)
            argv[argc++] = c->url.user;
        argv[argc++] = c->url.password;
        rc = redisAsyncCommandArgv(ac, on_auth_reply, c, argc, argv, NULL);
    }
    if (rc == REDIS_OK && c->url.db != 0)
        rc = redisAsyncCommand(ac, on_select_reply, c, "SELECT %d", c->url.db);
    if (rc == REDIS_OK) {
        if (c->name != NULL)
            rc = redisAsyncCommand(ac, on_handshake_done, c,
                                   "CLIENT SETNAME %s", c->name);
        else
            rc = redisAsyncCommand(ac, on_handshake_done, c, "PING");
    }
    /* Not freed here: this runs inside on_connect (see the top of the
     * file). The handshake timeout ends the connection instead. */
    if (rc != REDIS_OK)
        rconn_log(c, "cannot queue the handshake");
}

/* So that a dead path is noticed by the kernel too, not only by PING. */
static void set_tcp_liveness(int fd)
{
    int on = 1, idle = RCONN_KEEPIDLE_S, intvl = RCONN_KEEPINTVL_S,
        cnt = RCONN_KEEPCNT;
    unsigned int user_timeout = RCONN_USER_TIMEOUT_MS;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
               sizeof(user_timeout));
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    struct rconn *c = cac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns; nothing pending. */
        rconn_log(c, "connect failed: %s",
                  cac->errstr != NULL ? cac->errstr : "unknown error");
        c->ac = NULL;
        evtimer_del(c->timeout_ev);
        schedule_retry(c);
        return;
    }
    if (c->url.unix_path == NULL)
        set_tcp_liveness(cac->c.fd);
    c->state = RCONN_HANDSHAKE;
    send_handshake(c);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    struct rconn *c = cac->data;
    bool was_up = c->state == RCONN_UP || c->silent;
    c->silent = false;

    /* Every callback of this context has run; hiredis frees it next. */
    c->ac = NULL;
    c->state = RCONN_IDLE;
    c->ping_pending = false;
    evtimer_del(c->timeout_ev);
    event_del(c->ping_ev);
    if (c->freeing) {
        maybe_release(c);
        return;
    }
    if (status != REDIS_OK)
        rconn_log(c, "connection lost: %s",
                  cac->errstr != NULL ? cac->errstr : "unknown error");
    if (was_up && c->state_cb != NULL) {
        c->depth++;
        c->state_cb(c, false, c->ud);
        c->depth--;
        if (c->freeing) {
            maybe_release(c);
            return;
        }
    }
    schedule_retry(c);
}

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_connect(arg);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct rconn *c = arg;
    redisAsyncContext *ac = c->ac;
    (void)fd;
    (void)what;

    rconn_log(c, "%s timed out after %d ms",
              c->state == RCONN_CONNECTING ? "connect" : "handshake",
              RCONN_CONNECT_TIMEOUT_MS);
    if (c->state == RCONN_CONNECTING) {
        /* Never connected: no callbacks pending, no on_disconnect. */
        c->ac = NULL;
        redisAsyncFree(ac);
        schedule_retry(c);
    } else if (c->state == RCONN_HANDSHAKE) {
        drop(c);
    }
}

static void start_connect(struct rconn *c)
{
    redisAsyncContext *ac;
    struct timeval tv = ms_to_tv(RCONN_CONNECT_TIMEOUT_MS);

    c->attempts++;
    if (c->url.unix_path != NULL)
        ac = redisAsyncConnectUnix(c->url.unix_path);
    else
        ac = redisAsyncConnect(c->url.host, c->url.port);
    if (ac == NULL) {
        rconn_log(c, "connect failed: out of memory");
        schedule_retry(c);
        return;
    }
    if (ac->err != 0) {
        rconn_log(c, "connect failed: %s", ac->errstr);
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    ac->data = c;
    if (redisLibeventAttach(ac, c->base) != REDIS_OK) {
        rconn_log(c, "cannot attach to the event loop");
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->state = RCONN_CONNECTING;
    evtimer_add(c->timeout_ev, &tv);
}

static long elapsed_us(const struct timespec *from)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - from->tv_sec) * 1000000L +
           (now.tv_nsec - from->tv_nsec) / 1000L;
}

static void on_ping_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct rconn *c = priv;
    redisReply *reply = r;
    (void)ac;
    c->ping_pending = false;
    if (reply != NULL && reply->type == REDIS_REPLY_STATUS) {
        long us = elapsed_us(&c->ping_sent);
        c->rtt_us = us > 0 ? us : 1; /* 0 means "no sample" */
    }
}

/* Sends a PING unless one is still outstanding (behind a blocking read
 * they would only pile up). */
static void on_ping_timer(evutil_socket_t fd, short what, void *arg)
{
    struct rconn *c = arg;
    (void)fd;
    (void)what;
    if (c->state != RCONN_UP)
        return;
    if (c->ping_pending) {
        if (elapsed_us(&c->ping_sent) > (long)RCONN_PING_TIMEOUT_MS * 1000) {
            rconn_log(c, "no answer to PING for %d ms: reconnecting",
                      RCONN_PING_TIMEOUT_MS);
            c->silent = true; /* was up: the owner hears "down" */
            drop(c);
        }
        return;
    }
    if (redisAsyncCommand(c->ac, on_ping_reply, c, "PING") != REDIS_OK)
        return;
    c->ping_pending = true;
    clock_gettime(CLOCK_MONOTONIC, &c->ping_sent);
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d;
    if (s == NULL)
        return NULL;
    d = weft_strdup(s);
    if (d == NULL)
        *oom = true;
    return d;
}

struct rconn *rconn_new(struct event_base *base, const struct redis_url *url,
                        const char *name, rconn_state_cb state_cb, void *ud)
{
    struct rconn *c;
    bool oom = false;

    if (base == NULL || url == NULL ||
        (url->host == NULL) == (url->unix_path == NULL))
        return NULL;
    c = weft_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base = base;
    c->state_cb = state_cb;
    c->ud = ud;
    c->backoff_ms = RCONN_BACKOFF_MIN_MS;
    c->url.port = url->port;
    c->url.db = url->db;
    c->url.host = dup_or_null(url->host, &oom);
    c->url.unix_path = dup_or_null(url->unix_path, &oom);
    c->url.user = dup_or_null(url->user, &oom);
    c->url.password = dup_or_null(url->password, &oom);
    if (name != NULL && name[0] != '\0')
        c->name = dup_or_null(name, &oom);
    c->backoff_ev = evtimer_new(base, on_backoff, c);
    c->timeout_ev = evtimer_new(base, on_connect_timeout, c);
    c->ping_ev = event_new(base, -1, EV_PERSIST, on_ping_timer, c);
    if (oom || c->backoff_ev == NULL || c->timeout_ev == NULL ||
        c->ping_ev == NULL) {
        if (c->backoff_ev != NULL)
            event_free(c->backoff_ev);
        if (c->timeout_ev != NULL)
            event_free(c->timeout_ev);
        if (c->ping_ev != NULL)
            event_free(c->ping_ev);
        c->backoff_ev = c->timeout_ev = c->ping_ev = NULL;
        weft_free(c->url.host);
        weft_free(c->url.unix_path);
        weft_free(c->url.user);
        weft_free(c->url.password);
        weft_free(c->name);
        weft_free(c);
        return NULL;
    }
    if (c->url.unix_path != NULL)
        snprintf(c->label, sizeof(c->label), "%s@%s",
                 c->name != NULL ? c->name : "redis", c->url.unix_path);
    else
        snprintf(c->label, sizeof(c->label), "%s@%s:%d",
                 c->name != NULL ? c->name : "redis", c->url.host, c->url.port);
    start_connect(c);
    return c;
}

void rconn_free(struct rconn *c)
{
    if (c == NULL || c->freeing)
        return;
    c->freeing = true;
    evtimer_del(c->backoff_ev);
    evtimer_del(c->timeout_ev);
    event_del(c->ping_ev);
    if (c->ac != NULL) {
        redisAsyncContext *ac = c->ac;
        c->depth++;
        if (c->state == RCONN_CONNECTING) {
            /* Never connected: no callbacks pending, no on_disconnect. */
            c->ac = NULL;
            redisAsyncFree(ac);
        } else if (c->state != RCONN_CLOSING) {
            /* Pending callbacks get NULL, then on_disconnect clears
             * c->ac: now, or when the running callback returns. */
            redisAsyncFree(ac);
        }
        c->depth--;
    }
    maybe_release(c);
}

int rconn_subscribe(struct rconn *c, const char *channel, rconn_message_cb cb,
                    void *ud)
{
    if (c->channel != NULL)
        return WEFT_EINVAL;
    if ((c->channel = weft_strdup(channel)) == NULL)
        return WEFT_ENOMEM;
    c->msg_cb = cb;
    c->msg_ud = ud;
    if (c->state == RCONN_UP) {
        event_del(c->ping_ev);
        send_subscribe(c);
    }
    return 0;
}

bool rconn_is_up(const struct rconn *c)
{
    return c != NULL && c->state == RCONN_UP && !c->freeing;
}

long rconn_rtt_us(const struct rconn *c)
{
    return c != NULL ? c->rtt_us : 0;
}

unsigned long rconn_connect_attempts(const struct rconn *c)
{
    return c != NULL ? c->attempts : 0;
}

/* Commands that would not survive a reconnect (the URL sets the user and
 * the db, re-sent on every connection) or that break the one reply per
 * command rule the callbacks rely on. */
static bool command_refused(const char *name, size_t len)
{
    static const char *const refused[] = {
        "AUTH",        "HELLO",        "SELECT",       "RESET",
        "MONITOR",     "SUBSCRIBE",    "PSUBSCRIBE",   "SSUBSCRIBE",
        "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (strlen(refused[i]) == len &&
            strncasecmp(refused[i], name, len) == 0)
            return true;
    }
    return false;
}

/* The command name of a RESP-formatted command ("*N\r\n$L\r\nNAME\r\n"). */
static bool formatted_name(const char *cmd, size_t len, const char **name,
                           size_t *name_len)
{
    const char *p = memchr(cmd, '\n', len);
    size_t n = 0;

    if (p == NULL || (size_t)(++p - cmd) >= len || *p != '$')
        return false;
    for (p++; p < cmd + len && *p >= '0' && *p <= '9'; p++) {
        if (n > (SIZE_MAX - 9) / 10)
            return false;
        n = n * 10 + (size_t)(*p - '0');
    }
    if ((size_t)(cmd + len - p) < 2 || p[0] != '\r' || p[1] != '\n')
        return false;
    p += 2;
    if ((size_t)(cmd + len - p) < n)
        return false;
    *name = p;
    *name_len = n;
    return true;
}

static void deliver(struct op *op, redisReply *reply)
{
    struct rconn *c = op->c;
    if (op->cb != NULL) {
        c->depth++;
        op->cb(c, reply, op->ud);
        c->depth--;
    }
    weft_free(op);
    maybe_release(c);
}

struct event_base *rconn_event_base_new(void)
{
    struct event_config *cfg = event_config_new();
    if (cfg == NULL)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

bool rconn_library_loaded(const redisReply *r)
{
    return r != NULL && (r->type != REDIS_REPLY_ERROR ||
                         strstr(r->str, "already exists") != NULL);
}

static void on_eval_reply(redisAsyncContext *ac, void *r, void *priv);

static void on_script_load(redisAsyncContext *ac, void *r, void *priv)
{
    struct op *op = priv;
    redisReply *reply = r;

    if (reply == NULL) {
        deliver(op, NULL);
        return;
    }
    if (op->fcall ? !rconn_library_loaded(reply)
                  : reply->type == REDIS_REPLY_ERROR) {
        /* The load error (say, a compile error) tells the caller more
         * than the NOSCRIPT the EVALSHA would get. */
        rconn_log(op->c, "%s %s failed: %.*s",
                  op->fcall ? "FUNCTION LOAD" : "SCRIPT LOAD", op->label,
                  (int)reply->len, reply->str);
        deliver(op, reply);
        return;
    }
    if (!op->fcall &&
        (reply->type != REDIS_REPLY_STRING || reply->len != RCONN_SHA_LEN ||
         memcmp(reply->str, op->argv[1], RCONN_SHA_LEN) != 0))
        rconn_log(op->c, "SCRIPT LOAD %s: Redis computed another SHA-1",
                  op->label);
    if (redisAsyncCommandArgv(ac, on_eval_reply, op, op->argc, op->argv,
                              op->argvlen) != REDIS_OK)
        deliver(op, NULL);
}

static void on_eval_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct op *op = priv;
    redisReply *reply = r;

    if (reply != NULL && !op->retried &&
        is_error_prefix(reply,
                        op->fcall ? "ERR Function not found" : "NOSCRIPT")) {
        /* Redis lost the library or script (a restart without
         * persistence, FUNCTION FLUSH, SCRIPT FLUSH, a failover): load it
         * and run the call again. Once only, so a concurrent flush
         * cannot loop us. */
        op->retried = true;
        if (redisAsyncCommand(ac, on_script_load, op,
                              op->fcall ? "FUNCTION LOAD %b" : "SCRIPT LOAD %b",
                              op->text, op->text_len) == REDIS_OK)
            return;
        reply = NULL; /* the connection is going away */
    }
    deliver(op, reply);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    deliver(priv, r);
}

int rconn_argv(struct rconn *c, rconn_reply_cb cb, void *ud, int argc,
               const char **argv, const size_t *argvlen)
{
    struct op *op = NULL;

    if (c == NULL || argc <= 0 || argv == NULL || argv[0] == NULL ||
        c->channel != NULL)
        return WEFT_EINVAL;
    if (command_refused(argv[0],
                        argvlen != NULL ? argvlen[0] : strlen(argv[0])))
        return WEFT_EINVAL;
    if (!rconn_is_up(c))
        return WEFT_EREDIS;
    if (cb != NULL) {
        op = weft_calloc(1, sizeof(*op));
        if (op == NULL)
            return WEFT_ENOMEM;
        op->c = c;
        op->cb = cb;
        op->ud = ud;
    }
    if (redisAsyncCommandArgv(c->ac, cb != NULL ? on_reply : NULL, op, argc,
                              argv, argvlen) != REDIS_OK) {
        weft_free(op);
        return WEFT_EREDIS;
    }
    return 0;
}

int rconn_cmd(struct rconn *c, rconn_reply_cb cb, void *ud, const char *fmt,
              ...)
{
    struct op *op = NULL;
    char *cmd = NULL;
    const char *name;
    size_t name_len;
    va_list ap;
    int len;
    int rc = 0;

    if (c == NULL || fmt == NULL)
        return WEFT_EINVAL;
    if (!rconn_is_up(c))
        return WEFT_EREDIS;
    va_start(ap, fmt);
    len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0)
        return len == -2 ? WEFT_EINVAL : WEFT_ENOMEM;
    if (!formatted_name(cmd, (size_t)len, &name, &name_len) ||
        command_refused(name, name_len)) {
        rc = WEFT_EINVAL;
        goto out;
    }
    if (cb != NULL) {
        op = weft_calloc(1, sizeof(*op));
        if (op == NULL) {
            rc = WEFT_ENOMEM;
            goto out;
        }
        op->c = c;
        op->cb = cb;
        op->ud = ud;
    }
    if (redisAsyncFormattedCommand(c->ac, cb != NULL ? on_reply : NULL, op, cmd,
                                   (size_t)len) != REDIS_OK) {
        weft_free(op);
        rc = WEFT_EREDIS;
    }
out:
    redisFreeCommand(cmd);
    return rc;
}

/* Builds the FCALL (fcall) or EVALSHA op: the op, then argvlen[], argv[]
 * and the copied keys and args, in one allocation. NULL on OOM or size
 * overflow. */
static struct op *eval_op_new(struct rconn *c, bool fcall, const char *label,
                              const char *name, const char *text,
                              size_t text_len, rconn_reply_cb cb, void *ud,
                              int nkeys, int argc, const char **argv,
                              const size_t *argvlen)
{
    char nk[24];
    int nklen = snprintf(nk, sizeof(nk), "%d", nkeys);
    size_t n = (size_t)argc + 3;
    size_t size = sizeof(struct op);
    struct op *op;
    char *data;

    if (n > (SIZE_MAX - size) / (sizeof(size_t) + sizeof(char *)))
        return NULL;
    size += n * (sizeof(size_t) + sizeof(char *));
    if ((size_t)nklen > SIZE_MAX - size)
        return NULL;
    size += (size_t)nklen;
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
        if (len > SIZE_MAX - size)
            return NULL;
        size += len;
    }
    op = weft_malloc(size);
    if (op == NULL)
        return NULL;
    memset(op, 0, sizeof(*op));
    op->c = c;
    op->cb = cb;
    op->ud = ud;
    op->fcall = fcall;
    op->label = label;
    op->text = text;
    op->text_len = text_len;
    op->argc = (int)n;
    op->argvlen = (size_t *)(op + 1);
    op->argv = (const char **)(op->argvlen + n);
    data = (char *)(op->argv + n);

    op->argv[0] = fcall ? "FCALL" : "EVALSHA";
    op->argvlen[0] = strlen(op->argv[0]);
    op->argv[1] = name;
    op->argvlen[1] = strlen(name);
    memcpy(data, nk, (size_t)nklen);
    op->argv[2] = data;
    op->argvlen[2] = (size_t)nklen;
    data += nklen;
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
        if (len > 0)
            memcpy(data, argv[i], len);
        op->argv[3 + i] = data;
        op->argvlen[3 + i] = len;
        data += len;
    }
    return op;
}

static int send_op(struct rconn *c, bool fcall, const char *label,
                   const char *name, const char *text, size_t text_len,
                   rconn_reply_cb cb, void *ud, int nkeys, int argc,
                   const char **argv, const size_t *argvlen)
{
    struct op *op;

    if (c == NULL || name == NULL || text == NULL || nkeys < 0 ||
        argc < nkeys || (argc > 0 && argv == NULL))
        return WEFT_EINVAL;
    if (!rconn_is_up(c))
        return WEFT_EREDIS;
    op = eval_op_new(c, fcall, label != NULL ? label : "script", name, text,
                     text_len, cb, ud, nkeys, argc, argv, argvlen);
    if (op == NULL)
        return WEFT_ENOMEM;
    if (redisAsyncCommandArgv(c->ac, on_eval_reply, op, op->argc, op->argv,
                              op->argvlen) != REDIS_OK) {
        weft_free(op);
        return WEFT_EREDIS;
    }
    return 0;
}

int rconn_eval_script(struct rconn *c, const char *label, const char *sha,
                      const char *text, size_t text_len, rconn_reply_cb cb,
                      void *ud, int nkeys, int argc, const char **argv,
                      const size_t *argvlen)
{
    if (sha == NULL || strlen(sha) != RCONN_SHA_LEN)
        return WEFT_EINVAL;
    return send_op(c, false, label, sha, text, text_len, cb, ud, nkeys, argc,
                   argv, argvlen);
}

int rconn_eval(struct rconn *c, enum script_id id, rconn_reply_cb cb, void *ud,
               int nkeys, int argc, const char **argv, const size_t *argvlen)
{
    const char *text;
    size_t len = 0;

    if ((int)id < 0 || id >= SCRIPT_COUNT)
        return WEFT_EINVAL;
    if (scripts_function(id) != NULL) {
        text = scripts_library(&len);
        return send_op(c, true, scripts_name(id), scripts_function(id), text,
                       len, cb, ud, nkeys, argc, argv, argvlen);
    }
    text = scripts_text(id, &len);
    return rconn_eval_script(c, scripts_name(id), scripts_sha(id), text, len,
                             cb, ud, nkeys, argc, argv, argvlen);
}

/* Runs one command on a blocking context; on failure fills err (code
 * fail_code for an error reply) and returns the code. */
static int sync_step(redisContext *ctx, const char *what, int fail_code,
                     int argc, const char **argv, struct weft_error *err)
{
    redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);
    int rc = 0;

    if (r == NULL)
        return weft_error_set(err,
                              ctx->err == REDIS_ERR_IO && errno == EAGAIN
                                  ? WEFT_ETIMEOUT
                                  : WEFT_EIO,
                              0, 0, "%s: %s", what, ctx->errstr);
    if (r->type == REDIS_REPLY_ERROR)
        rc = weft_error_set(err, fail_code, 0, 0, "%s: %.*s", what, (int)r->len,
                            r->str);
    freeReplyObject(r);
    return rc;
}

redisContext *rconn_connect_sync(const struct redis_url *url, int timeout_ms,
                                 struct weft_error *err)
{
    struct timeval tv = ms_to_tv(timeout_ms > 0 ? timeout_ms : 0);
    struct timeval none = {0, 0};
    redisContext *ctx;
    char db[24];
    int saved_errno;

    if (url == NULL || (url->host == NULL) == (url->unix_path == NULL)) {
        weft_error_set(err, WEFT_EINVAL, 0, 0,
                       "redis url needs a host or a socket path");
        return NULL;
    }
    errno = 0;
    if (url->unix_path != NULL)
        ctx = timeout_ms > 0 ? redisConnectUnixWithTimeout(url->unix_path, tv)
                             : redisConnectUnix(url->unix_path);
    else
        ctx = timeout_ms > 0 ? redisConnectWithTimeout(url->host, url->port, tv)
                             : redisConnect(url->host, url->port);
    saved_errno = errno;
    if (ctx == NULL) {
        weft_error_set(err, WEFT_ENOMEM, 0, 0, "connect: out of memory");
        return NULL;
    }
    if (ctx->err != 0) {
        weft_error_set(err, saved_errno == ETIMEDOUT ? WEFT_ETIMEOUT : WEFT_EIO,
                       0, 0, "connect to %s: %s",
                       url->unix_path != NULL ? url->unix_path : url->host,
                       ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    /* timeout_ms also bounds AUTH and SELECT; later commands have none. */
    if (timeout_ms > 0 && redisSetTimeout(ctx, tv) != REDIS_OK)
        goto io_fail;
    if (url->password != NULL) {
        const char *argv[3];
        int argc = 0;
        argv[argc++] = "AUTH";
        if (url->user != NULL)
            argv[argc++] = url->user;
        argv[argc++] = url->password;
        if (sync_step(ctx, "AUTH", WEFT_EAUTH, argc, argv, err) != 0)
            goto fail;
    }
    if (url->db != 0) {
        const char *argv[2] = {"SELECT", db};
        snprintf(db, sizeof(db), "%d", url->db);
        if (sync_step(ctx, "SELECT", WEFT_EREDIS, 2, argv, err) != 0)
            goto fail;
    }
    if (timeout_ms > 0 && redisSetTimeout(ctx, none) != REDIS_OK)
        goto io_fail;
    return ctx;
io_fail:
    weft_error_set(err, WEFT_EIO, 0, 0, "set timeout: %s", ctx->errstr);
fail:
    redisFree(ctx);
    return NULL;
}
