/* http.c - the scheduler's HTTP server: probes, metrics, the /v1 REST API
 * and the dashboard page (docs/api.md).
 *
 * Every request that needs Redis gets a context (struct req) that moves
 * through stages: a stage sends commands on the module's own connection
 * and names the next stage; when the last reply owed has arrived,
 * req_drive runs that stage, until one of them answers. Replies are
 * turned into JSON or numbers inside their callbacks (a redisReply never
 * outlives its callback); a document that needs several replies at once
 * is read in one MULTI/EXEC.
 *
 * The client may go away while Redis has not answered. libevent then
 * frees (or detaches) the request, and answering it would be a
 * use-after-free (FIELD-NOTES). Each context therefore sets the
 * connection's close callback, which forgets the request; a context
 * without a request never answers and is freed once its replies are in.
 * Answering clears the close callback (httpd_reply). A request that
 * Redis does not answer within HTTP_REQUEST_TIMEOUT_MS gets 504.
 *
 * Queue and breaker names are found with SCAN and cached for
 * HTTP_NAMES_TTL_MS, so a dashboard polling every second does not scan
 * the keyspace every second. Parsed definitions are cached by digest
 * (they are immutable).
 */
#include "http.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "alloc.h"
#include "buf.h"
#include "diag.h"
#include "dlq.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "num.h"
#include "rconn.h"
#include "rundoc.h"
#include "wfdef.h"

/* A request waits this long for Redis, then gets 504: a probe or a
 * dashboard must not hang on a stalled server. */
#define HTTP_REQUEST_TIMEOUT_MS 10000
/* Queue and breaker names are re-scanned at most this often. */
#define HTTP_NAMES_TTL_MS 5000
/* Names kept per kind; past this the rest are left out of metrics and
 * lists (a deployment has a queue per persona: tens, not thousands). */
#define HTTP_NAMES_MAX 1024
/* Keys SCAN examines per call, and calls per refresh: bounds the work of
 * one refresh to 10M keys. */
#define HTTP_SCAN_COUNT  "1000"
#define HTTP_SCAN_ROUNDS 10000
/* GET /v1/runs: default and largest page, run ids read per ZREVRANGE, and
 * run ids examined per request when a status filter skips most. */
#define HTTP_LIST_DEFAULT 50
#define HTTP_LIST_MAX     1000
#define HTTP_LIST_PAGE    256
#define HTTP_LIST_SCAN    20000
/* GET /v1/runs/{id}: history entries returned (the latest ones). */
#define HTTP_HISTORY_DEFAULT 1000
#define HTTP_HISTORY_MAX     10000
/* GET /v1/dlq: entries returned. */
#define HTTP_DLQ_DEFAULT 50
#define HTTP_DLQ_MAX     1000
/* Parsed definitions kept. */
#define HTTP_DEFCACHE_MAX 32
/* Free-text fields of control messages (by, reason, action). */
#define HTTP_TEXT_MAX 1024
/* `set` of a control message: state updates, not documents (the
 * scheduler's PLAN_SET_MAX and PLAN_SET_KEYS_MAX). */
#define HTTP_SET_MAX      (64 * 1024)
#define HTTP_SET_KEYS_MAX 256
/* Stream entry ids: two 64-bit numbers and a dash. */
#define HTTP_ENTRY_ID_MAX 41

/* The dashboard page, embedded at build time (dashboard/embed.cmake). */
extern const char dashboard_html[];
extern const size_t dashboard_html_len;

struct req;
typedef void (*stage_fn)(struct req *q);
typedef void (*reply_fn)(struct req *q, const redisReply *r, size_t idx);

/* Names of keys of one kind, found by SCAN and cached. */
struct names {
    const char *kind; /* "queue" or "breaker", for logs */
    const char *type; /* SCAN TYPE */
    bool (*valid)(const char *name, size_t len); /* names kept */
    char match[KEYS_MAX + 2];                    /* "<prefix>*" */
    char prefix[KEYS_MAX];
    size_t plen;
    char **list; /* sorted names (prefix removed), owned */
    size_t n;
    int64_t fetched_ms; /* monotonic; 0 = never */
    bool scanning;
    unsigned rounds;
    char **next; /* being collected */
    size_t nnext, capnext;
    struct req **waiters; /* contexts waiting for the scan */
    size_t nwaiters, capwaiters;
};

struct defent {
    char digest[65];
    struct wf *wf;
    uint64_t used; /* h->clock at last use */
};

struct http {
    struct event_base *base;
    struct evhttp *srv;
    struct httpd_addr addr;
    uint16_t port;
    struct keys keys;
    char *token;
    size_t token_len;
    const struct sched *sched;
    struct rconn *rc;
    struct req *reqs; /* live contexts, for shutdown */
    struct names queues, breakers;
    struct defent defs[HTTP_DEFCACHE_MAX];
    uint64_t clock;
    char k_tasks[KEYS_MAX], k_events[KEYS_MAX], k_runs[KEYS_MAX],
        k_dlq[KEYS_MAX], k_stats[KEYS_MAX], k_delayed[KEYS_MAX];
};

/* Counters of one stream and its consumer group. -1: unknown. */
struct qstat {
    char name[KEYS_ID_MAX + 1];
    int64_t length, pending, lag, consumers;
    char last[HTTP_ENTRY_ID_MAX + 1];
};

enum control { CTL_RETRY, CTL_RESOLVE, CTL_APPROVE };

struct req {
    struct http *h;
    struct evhttp_request *r; /* NULL once answered or gone */
    struct req *prev, *next;
    stage_fn stage; /* runs when pending drops to 0 */
    int pending;    /* replies (and scans) owed */
    int fail_code;  /* nonzero: answer this error */
    char fail_msg[256];
    struct event *timer;
    char id[2][KEYS_ID_MAX + 1]; /* path captures */
    json_t *body;                /* parsed request body */
    json_t *doc;                 /* answer under construction */
    json_t *items;
    json_t *ids; /* run ids of a list page */
    char digest[65];
    bool found;
    char status[32];
    const char *why; /* static: why a DLQ entry cannot be requeued */
    long start;
    uint32_t limit, scanned, history;
    char filter[32];
    enum control ctl;
    struct qstat *qs; /* queues; then tasks and events */
    size_t nqs;
    struct qstat streams[2];
    char **bnames; /* breaker names and states */
    int *bstate;
    json_t **bfields;
    size_t nb;
    uint64_t stat_runs[8];
    json_t *stats; /* weft:stats as {field: number} */
    int64_t dlq_len, delayed;
    /* retry, resolve, approve: what Redis holds about the run and step */
    int64_t retries;      /* the run's retry count */
    char attempt[24];     /* the step's attempt, "" when none */
    char step_status[32]; /* "" when the run has no such step */
    char wait[16];        /* approval | escalation | "" */
    json_t *approvers;    /* JSON array, or NULL for anyone */
    bool started;         /* the run has a definition (it started) */
};

struct call {
    struct req *q;
    reply_fn fn;
    size_t idx;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- contexts ------------------------------------------------------- */

static void req_drive(struct req *q);

static void req_free(struct req *q)
{
    struct http *h = q->h;
    if (q->prev)
        q->prev->next = q->next;
    else
        h->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    if (q->timer)
        event_free(q->timer);
    json_decref(q->body);
    json_decref(q->doc);
    json_decref(q->items);
    json_decref(q->ids);
    json_decref(q->stats);
    weft_free(q->qs);
    for (size_t i = 0; i < q->nb; i++) {
        weft_free(q->bnames[i]);
        json_decref(q->bfields ? q->bfields[i] : NULL);
    }
    weft_free(q->bnames);
    weft_free(q->bstate);
    weft_free(q->bfields);
    json_decref(q->approvers);
    weft_free(q);
}

/* The client went away: forget the request (libevent frees it, or has
 * detached it from the connection, and then it is ours to free). */
static void on_conn_close(struct evhttp_connection *conn, void *arg)
{
    struct req *q = arg;
    (void)conn;
    log_debug("http: client gone before the answer", "pending",
              q->pending > 0 ? "yes" : "no", NULL);
    if (q->r != NULL && evhttp_request_get_connection(q->r) == NULL)
        evhttp_request_free(q->r);
    q->r = NULL;
    if (q->pending == 0)
        req_free(q);
}

static void fail(struct req *q, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first failure; the driver answers it. */
static void fail(struct req *q, int code, const char *fmt, ...)
{
    if (q->fail_code != 0)
        return;
    q->fail_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->fail_msg, sizeof(q->fail_msg), fmt, ap);
    va_end(ap);
}

static const char *code_word(int code)
{
    switch (code) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 409:
        return "conflict";
    case 413:
        return "too_large";
    case 422:
        return "unprocessable";
    case 503:
        return "unavailable";
    case 504:
        return "timeout";
    default:
        return "internal";
    }
}

static void answer_json(struct req *q, int code, json_t *doc)
{
    if (q->r != NULL)
        httpd_reply_json(q->r, code, doc);
    else
        json_decref(doc);
    q->r = NULL;
}

static void answer_error(struct req *q, int code, const char *msg)
{
    if (q->r != NULL)
        httpd_reply_error(q->r, code, code_word(code), "%s", msg);
    q->r = NULL;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct req *q = arg;
    (void)fd;
    (void)what;
    answer_error(q, 504, "Redis did not answer in time");
    if (q->pending == 0)
        req_free(q);
}

/* Runs stages while nothing is owed, until the request is answered (or
 * gone), then frees the context. */
static void req_drive(struct req *q)
{
    while (q->pending == 0) {
        if (q->r == NULL) {
            req_free(q);
            return;
        }
        if (q->fail_code != 0) {
            answer_error(q, q->fail_code, q->fail_msg);
            continue;
        }
        stage_fn s = q->stage;
        q->stage = NULL;
        if (s == NULL) {
            answer_error(q, 500, "request ended without an answer");
            continue;
        }
        s(q);
    }
}

static void on_reply(struct rconn *c, redisReply *reply, void *ud)
{
    struct call *k = ud;
    struct req *q = k->q;
    (void)c;
    q->pending--;
    if (reply == NULL)
        fail(q, 503, "Redis connection lost");
    else if (q->r != NULL && q->fail_code == 0 && k->fn != NULL)
        k->fn(q, reply, k->idx);
    weft_free(k);
    if (q->pending == 0)
        req_drive(q);
}

/* Sends one command; fn(q, reply, idx) runs with the reply unless the
 * request failed or went away meanwhile. A command that cannot be sent
 * fails the request (503: Redis not connected). */
static void q_argv(struct req *q, reply_fn fn, size_t idx, int argc,
                   const char **argv, const size_t *lens)
{
    struct call *k = weft_malloc(sizeof(*k));
    if (k == NULL) {
        fail(q, 500, "out of memory");
        return;
    }
    k->q = q;
    k->fn = fn;
    k->idx = idx;
    int rc = rconn_argv(q->h->rc, on_reply, k, argc, argv, lens);
    if (rc != 0) {
        weft_free(k);
        fail(q, rc == WEFT_EREDIS ? 503 : 500, "Redis: %s",
             rc == WEFT_EREDIS ? "not connected" : weft_strerror(rc));
        return;
    }
    q->pending++;
}

#define ARGC(...)                                                              \
    (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *))
/* Q(q, fn, idx, "CMD", arg, ...) */
#define Q(q, fn, idx, ...)                                                     \
    q_argv((q), (fn), (idx), ARGC(__VA_ARGS__), (const char *[]){__VA_ARGS__}, \
           NULL)

/* One command of a transaction; arguments borrowed until sent. */
struct txcmd {
    int argc;
    const char **argv;
    const size_t *lens; /* NULL: strlen */
};

/* MULTI, the commands, EXEC; fn gets EXEC's reply (an array with one
 * reply per command, or nil/error). If a command cannot be queued the
 * transaction is discarded, so the shared connection is never left
 * inside a MULTI. */
static void q_tx(struct req *q, reply_fn fn, const struct txcmd *cmds, size_t n)
{
    const char *multi = "MULTI", *exec = "EXEC", *discard = "DISCARD";
    struct rconn *c = q->h->rc;
    if (!rconn_is_up(c) || rconn_argv(c, NULL, NULL, 1, &multi, NULL) != 0) {
        fail(q, 503, "Redis: not connected");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (rconn_argv(c, NULL, NULL, cmds[i].argc, cmds[i].argv,
                       cmds[i].lens) != 0) {
            rconn_argv(c, NULL, NULL, 1, &discard, NULL);
            fail(q, 503, "Redis: cannot queue a command");
            return;
        }
    }
    int before = q->pending;
    q_argv(q, fn, 0, 1, &exec, NULL);
    if (q->pending == before)
        rconn_argv(c, NULL, NULL, 1, &discard, NULL);
}

/* True when r is usable; otherwise fails the request with Redis' error. */
static bool reply_ok(struct req *q, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ERROR)
        return true;
    fail(q, 500, "Redis: %.*s", (int)(r->len < 200 ? r->len : 200), r->str);
    return false;
}

static int64_t reply_int(const redisReply *r, int64_t dflt)
{
    int64_t n;
    if (r == NULL)
        return dflt;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING &&
        num_parse_i64(r->str, r->len, INT64_MIN, INT64_MAX, &n) == 0)
        return n;
    return dflt;
}

/* ---- name caches (queues, breakers) ---------------------------------- */

static void names_init(struct names *nm, const char *kind, const char *type,
                       const char *prefix,
                       bool (*valid)(const char *name, size_t len))
{
    memset(nm, 0, sizeof(*nm));
    nm->kind = kind;
    nm->type = type;
    nm->valid = valid;
    nm->plen = strlen(prefix);
    memcpy(nm->prefix, prefix, nm->plen + 1);
    snprintf(nm->match, sizeof(nm->match), "%s*", prefix);
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        weft_free(v[i]);
    weft_free(v);
}

static void names_deinit(struct names *nm)
{
    strv_free(nm->list, nm->n);
    strv_free(nm->next, nm->nnext);
    weft_free(nm->waiters);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Ends a refresh: on success the collected names replace the cache.
 * Every waiter is released (failed when the scan failed). */
static void names_done(struct http *h, struct names *nm, bool ok)
{
    (void)h;
    nm->scanning = false;
    if (ok) {
        if (nm->nnext > 1)
            qsort(nm->next, nm->nnext, sizeof(char *), cmp_strp);
        strv_free(nm->list, nm->n);
        nm->list = nm->next;
        nm->n = nm->nnext;
        nm->fetched_ms = mono_ms();
    } else {
        strv_free(nm->next, nm->nnext);
    }
    nm->next = NULL;
    nm->nnext = nm->capnext = 0;
    struct req **w = nm->waiters;
    size_t n = nm->nwaiters;
    nm->waiters = NULL;
    nm->nwaiters = nm->capwaiters = 0;
    for (size_t i = 0; i < n; i++) {
        w[i]->pending--;
        if (!ok)
            fail(w[i], 503, "cannot list %s keys", nm->kind);
        if (w[i]->pending == 0)
            req_drive(w[i]);
    }
    weft_free(w);
}

static void scan_next(struct http *h, struct names *nm, const char *cursor);

struct scanref {
    struct http *h;
    struct names *nm;
};

static void on_scan(struct rconn *c, redisReply *r, void *ud)
{
    struct scanref *s = ud;
    struct http *h = s->h;
    struct names *nm = s->nm;
    (void)c;
    weft_free(s);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        if (r != NULL)
            log_warn("SCAN failed", "kind", nm->kind, "error",
                     r->type == REDIS_REPLY_ERROR ? r->str : "bad reply", NULL);
        names_done(h, nm, false);
        return;
    }
    const redisReply *keys = r->element[1];
    for (size_t i = 0; i < keys->elements && nm->nnext < HTTP_NAMES_MAX; i++) {
        const redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || (size_t)k->len <= nm->plen ||
            memcmp(k->str, nm->prefix, nm->plen) != 0 ||
            !nm->valid(k->str + nm->plen, k->len - nm->plen))
            continue;
        bool dup = false; /* SCAN may return a key twice */
        for (size_t j = 0; j < nm->nnext && !dup; j++)
            dup = strcmp(nm->next[j], k->str + nm->plen) == 0;
        if (dup)
            continue;
        if (nm->nnext == nm->capnext) {
            size_t cap = nm->capnext ? nm->capnext * 2 : 16;
            char **v = weft_realloc(nm->next, cap * sizeof(*v));
            if (v == NULL)
                break;
            nm->next = v;
            nm->capnext = cap;
        }
        char *name = weft_strndup(k->str + nm->plen, k->len - nm->plen);
        if (name == NULL)
            break;
        nm->next[nm->nnext++] = name;
    }
    const char *cursor = r->element[0]->str;
    if (strcmp(cursor, "0") == 0 || ++nm->rounds >= HTTP_SCAN_ROUNDS ||
        nm->nnext >= HTTP_NAMES_MAX) {
        names_done(h, nm, true);
        return;
    }
    char next[32];
    snprintf(next, sizeof(next), "%s", cursor);
    scan_next(h, nm, next);
}

/* Sends one SCAN; 0, or -1 when it cannot be sent (nothing pending). */
static int scan_send(struct http *h, struct names *nm, const char *cursor)
{
    struct scanref *s = weft_malloc(sizeof(*s));
    const char *argv[] = {"SCAN",  cursor,          "MATCH", nm->match,
                          "COUNT", HTTP_SCAN_COUNT, "TYPE",  nm->type};
    if (s == NULL)
        return -1;
    s->h = h;
    s->nm = nm;
    if (rconn_argv(h->rc, on_scan, s, 8, argv, NULL) != 0) {
        weft_free(s);
        return -1;
    }
    return 0;
}

/* From a SCAN reply: the next round, or the end of the refresh. */
static void scan_next(struct http *h, struct names *nm, const char *cursor)
{
    if (scan_send(h, nm, cursor) != 0)
        names_done(h, nm, false);
}

/* Makes q wait for fresh names (counted in q->pending) unless the cache
 * is fresh. */
static void names_need(struct req *q, struct names *nm)
{
    struct http *h = q->h;
    if (nm->fetched_ms != 0 && mono_ms() - nm->fetched_ms < HTTP_NAMES_TTL_MS)
        return;
    if (nm->nwaiters == nm->capwaiters) {
        size_t cap = nm->capwaiters ? nm->capwaiters * 2 : 8;
        struct req **w = weft_realloc(nm->waiters, cap * sizeof(*w));
        if (w == NULL) {
            fail(q, 500, "out of memory");
            return;
        }
        nm->waiters = w;
        nm->capwaiters = cap;
    }
    /* A refresh that cannot start fails q here, never by releasing the
     * waiters from inside q's own stage. */
    if (!nm->scanning) {
        if (scan_send(h, nm, "0") != 0) {
            fail(q, 503, "Redis: not connected");
            return;
        }
        nm->scanning = true;
        nm->rounds = 0;
    }
    nm->waiters[nm->nwaiters++] = q;
    q->pending++;
}

/* ---- definitions ------------------------------------------------------ */

static const struct wf *def_get(struct http *h, const char *digest)
{
    for (size_t i = 0; i < HTTP_DEFCACHE_MAX; i++) {
        if (h->defs[i].wf != NULL && strcmp(h->defs[i].digest, digest) == 0) {
            h->defs[i].used = ++h->clock;
            return h->defs[i].wf;
        }
    }
    return NULL;
}

/* Caches the definition text (owned by the caller) under digest; ignores
 * text that does not parse or does not match its digest. */
static void def_put(struct http *h, const char *digest, const char *text,
                    size_t len)
{
    struct diag d;
    struct wf *wf = NULL;
    diag_init(&d, "definition");
    int rc = wf_load_canonical(text, len, &wf, &d);
    diag_deinit(&d);
    if (rc != 0 || strcmp(wf->digest, digest) != 0) {
        wf_free(wf);
        return;
    }
    size_t victim = 0;
    for (size_t i = 0; i < HTTP_DEFCACHE_MAX; i++) {
        if (h->defs[i].wf == NULL) {
            victim = i;
            break;
        }
        if (h->defs[i].used < h->defs[victim].used)
            victim = i;
    }
    wf_free(h->defs[victim].wf);
    memcpy(h->defs[victim].digest, digest, sizeof(h->defs[victim].digest));
    h->defs[victim].wf = wf;
    h->defs[victim].used = ++h->clock;
}

static bool valid_digest(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* ---- request helpers -------------------------------------------------- */

/* The value of query parameter name, or NULL. Borrowed from params. */
static const char *query_get(struct evhttp_request *r, struct evkeyvalq *params,
                             const char *name)
{
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(r);
    const char *qs = u ? evhttp_uri_get_query(u) : NULL;
    if (qs == NULL)
        return NULL;
    if (TAILQ_EMPTY(params) && evhttp_parse_query_str(qs, params) != 0)
        return NULL;
    return evhttp_find_header(params, name);
}

/* Reads an unsigned query parameter into *out (unchanged when absent).
 * false after failing q when it is not a number within 0..max. */
static bool query_u32(struct req *q, const char *name, uint32_t max,
                      uint32_t *out)
{
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    const char *v = query_get(q->r, &params, name);
    bool ok = true;
    int64_t n;
    if (v != NULL) {
        if (num_parse_i64(v, strlen(v), 0, max, &n) != 0 || v[0] == '+' ||
            v[0] == '-') {
            fail(q, 400, "query parameter '%s' must be a number from 0 to %u",
                 name, (unsigned)max);
            ok = false;
        } else {
            *out = (uint32_t)n;
        }
    }
    evhttp_clear_headers(&params);
    return ok;
}

/* Parses the body as a JSON object into q->body (an empty body is {}).
 * false after failing q with 400 and jansson's message. */
static bool read_body(struct req *q)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(q->r);
    size_t len = in ? evbuffer_get_length(in) : 0;
    if (len == 0) {
        q->body = json_object();
        if (q->body == NULL)
            fail(q, 500, "out of memory");
        return q->body != NULL;
    }
    const char *text = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
    json_error_t je;
    json_t *v =
        text ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (v == NULL) {
        fail(q, 400, "invalid JSON at line %d, column %d: %s", je.line,
             je.column, je.text);
        return false;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        fail(q, 400, "the request body must be a JSON object");
        return false;
    }
    q->body = v;
    return true;
}

/* Checks that the body has only the named fields. */
static bool body_fields_known(struct req *q, const char *const *known)
{
    const char *k;
    json_t *v;
    json_object_foreach(q->body, k, v)
    {
        bool ok = false;
        for (size_t i = 0; known[i] != NULL && !ok; i++)
            ok = strcmp(k, known[i]) == 0;
        if (!ok) {
            fail(q, 400, "unknown field '%.64s'", k);
            return false;
        }
    }
    return true;
}

/* The string field name of the body: *out NULL when absent. false (q
 * failed) when present but not a string of 1..max bytes without control
 * characters. */
static bool body_str(struct req *q, const char *name, size_t max,
                     const char **out)
{
    json_t *v = json_object_get(q->body, name);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (s == NULL || n == 0 || n > max || strlen(s) != n) {
        fail(q, 400,
             "field '%s' must be a non-empty string of at most %zu "
             "bytes",
             name, max);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20) {
            fail(q, 400, "field '%s' holds a control character", name);
            return false;
        }
    }
    *out = s;
    return true;
}

/* As body_str for an id (keys_valid_id). */
static bool body_id(struct req *q, const char *name, const char **out)
{
    if (!body_str(q, name, KEYS_ID_MAX, out))
        return false;
    if (*out != NULL && !keys_valid_id(*out, strlen(*out))) {
        fail(q, 400, "field '%s' must match [A-Za-z0-9_.-]{1,128}", name);
        return false;
    }
    return true;
}

static bool valid_entry_id(const char *s)
{
    size_t n = strlen(s), dash = 0;
    if (n < 3 || n > HTTP_ENTRY_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-') {
            if (dash++ != 0 || i == 0 || i == n - 1)
                return false;
        } else if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return dash == 1;
}

/* ---- probes and the page ----------------------------------------------- */

static void h_healthz(struct http *h, struct evhttp_request *r)
{
    (void)h;
    httpd_reply(r, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void h_readyz(struct http *h, struct evhttp_request *r)
{
    if (sched_ready(h->sched))
        httpd_reply(r, 200, "text/plain; charset=utf-8", "ready\n", 6);
    else
        httpd_reply(r, 503, "text/plain; charset=utf-8", "not ready\n", 10);
}

static void h_dashboard(struct http *h, struct evhttp_request *r)
{
    (void)h;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r);
    /* Self-contained page: inline script and style, data from this
     * origin only, never framed. */
    evhttp_add_header(oh, "Content-Security-Policy",
                      "default-src 'none'; script-src 'unsafe-inline'; "
                      "style-src 'unsafe-inline'; connect-src 'self'; "
                      "img-src data:; frame-ancestors 'none'");
    evhttp_add_header(oh, "Referrer-Policy", "no-referrer");
    httpd_reply(r, 200, "text/html; charset=utf-8", dashboard_html,
                dashboard_html_len);
}

/* ---- streams: length, pending, lag ------------------------------------ */

/* Reads group's counters from an XINFO GROUPS reply into st. */
static void parse_groups(const redisReply *r, const char *group,
                         struct qstat *st)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return; /* no such key: the stream was never used */
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY)
            continue;
        const char *name = rundoc_reply_str(g, "name");
        if (name == NULL || strcmp(name, group) != 0)
            continue;
        for (size_t j = 0; j + 1 < g->elements; j += 2) {
            const redisReply *k = g->element[j], *v = g->element[j + 1];
            if (k->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "consumers") == 0)
                st->consumers = reply_int(v, st->consumers);
            else if (strcmp(k->str, "pending") == 0)
                st->pending = reply_int(v, st->pending);
            else if (strcmp(k->str, "lag") == 0)
                st->lag = reply_int(v, -1); /* nil: Redis cannot tell */
            else if (strcmp(k->str, "last-delivered-id") == 0 &&
                     v->type == REDIS_REPLY_STRING)
                snprintf(st->last, sizeof(st->last), "%s", v->str);
        }
    }
}

/* idx: 2*i for XLEN of stream i, 2*i+1 for its XINFO GROUPS. Streams
 * 0..nqs-1 are queues (group workers); then tasks and events (group
 * schedulers). */
static struct qstat *qstat_at(struct req *q, size_t i)
{
    return i < q->nqs ? &q->qs[i] : &q->streams[i - q->nqs];
}

static void on_stream_stat(struct req *q, const redisReply *r, size_t idx)
{
    struct qstat *st = qstat_at(q, idx / 2);
    if (idx % 2 == 0) {
        st->length = reply_int(r, 0);
    } else {
        const char *group =
            idx / 2 < q->nqs ? KEYS_GROUP_WORKERS : KEYS_GROUP_SCHEDULERS;
        parse_groups(r, group, st);
    }
}

/* Sends XLEN and XINFO GROUPS for every cached queue (and, with
 * streams, for tasks and events). */
static void send_stream_stats(struct req *q, bool streams)
{
    struct http *h = q->h;
    q->nqs = h->queues.n;
    q->qs = weft_calloc(q->nqs + 1, sizeof(*q->qs));
    if (q->qs == NULL) {
        fail(q, 500, "out of memory");
        return;
    }
    size_t total = q->nqs + (streams ? 2 : 0);
    for (size_t i = 0; i < total; i++) {
        struct qstat *st = qstat_at(q, i);
        char key[KEYS_MAX];
        st->length = st->pending = st->consumers = 0;
        st->lag = -1;
        if (i < q->nqs) {
            snprintf(st->name, sizeof(st->name), "%s", h->queues.list[i]);
            keys_queue(&h->keys, st->name, key);
        } else {
            snprintf(st->name, sizeof(st->name), "%s",
                     i == q->nqs ? "tasks" : "events");
            snprintf(key, sizeof(key), "%s",
                     i == q->nqs ? h->k_tasks : h->k_events);
        }
        Q(q, on_stream_stat, 2 * i, "XLEN", key);
        Q(q, on_stream_stat, 2 * i + 1, "XINFO", "GROUPS", key);
    }
}

/* ---- /metrics ---------------------------------------------------------- */

static void on_stats_hash(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (!reply_ok(q, r) || r->type != REDIS_REPLY_ARRAY)
        return;
    q->stats = json_object();
    for (size_t i = 0; q->stats && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        int64_t n;
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            strlen(k->str) != (size_t)k->len ||
            num_parse_i64(v->str, v->len, 0, INT64_MAX, &n) != 0)
            continue;
        json_object_set_new(q->stats, k->str, json_integer(n));
    }
}

static void on_count(struct req *q, const redisReply *r, size_t idx)
{
    int64_t n = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    if (idx == 0)
        q->dlq_len = n;
    else
        q->delayed = n;
}

static int breaker_value(const char *state)
{
    if (state == NULL)
        return -1;
    if (strcmp(state, "closed") == 0)
        return 0;
    if (strcmp(state, "half_open") == 0 || strcmp(state, "half-open") == 0)
        return 1;
    if (strcmp(state, "open") == 0)
        return 2;
    return -1;
}

static void on_breaker(struct req *q, const redisReply *r, size_t idx)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    q->bstate[idx] = breaker_value(rundoc_reply_str(r, "state"));
    q->bfields[idx] = rundoc_breaker(r);
}

/* HGETALL of every cached breaker into q->bnames/bstate/bfields. */
static void send_breakers(struct req *q)
{
    struct http *h = q->h;
    size_t n = h->breakers.n;
    q->bnames = weft_calloc(n + 1, sizeof(char *));
    q->bstate = weft_calloc(n + 1, sizeof(int));
    q->bfields = weft_calloc(n + 1, sizeof(json_t *));
    if (!q->bnames || !q->bstate || !q->bfields) {
        fail(q, 500, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char key[KEYS_MAX];
        q->bnames[i] = weft_strdup(h->breakers.list[i]);
        if (q->bnames[i] == NULL) {
            fail(q, 500, "out of memory");
            return;
        }
        q->nb = i + 1;
        q->bstate[i] = -1;
        keys_breaker(&h->keys, q->bnames[i], key);
        Q(q, on_breaker, i, "HGETALL", key);
    }
}

static void metrics_answer(struct req *q);

static void metrics_read(struct req *q)
{
    struct http *h = q->h;
    Q(q, on_stats_hash, 0, "HGETALL", h->k_stats);
    Q(q, on_count, 0, "XLEN", h->k_dlq);
    Q(q, on_count, 1, "ZCARD", h->k_delayed);
    send_stream_stats(q, true);
    send_breakers(q);
    q->stage = metrics_answer;
}

static void metrics_start(struct req *q)
{
    names_need(q, &q->h->queues);
    names_need(q, &q->h->breakers);
    q->stage = metrics_read;
}

static int metrics_counter(struct buf *b, const char *name, const char *help,
                           uint64_t v)
{
    int rc = metrics_family(b, name, "counter", help);
    return rc ? rc : metrics_sample_u64(b, name, NULL, v);
}

static int metrics_gauge(struct buf *b, const char *name, const char *help,
                         double v)
{
    int rc = metrics_family(b, name, "gauge", help);
    return rc ? rc : metrics_sample(b, name, NULL, v);
}

/* One gauge per stream: field 0 length, 1 pending, 2 lag, 3 consumers. */
static int metrics_streams(struct req *q, struct buf *b, const char *name,
                           const char *help, int field, bool queues)
{
    const char *label = queues ? "queue" : "stream";
    int rc = metrics_family(b, name, "gauge", help);
    size_t from = queues ? 0 : q->nqs, to = queues ? q->nqs : q->nqs + 2;
    for (size_t i = from; rc == 0 && i < to; i++) {
        const struct qstat *st = qstat_at(q, i);
        int64_t v = field == 0   ? st->length
                    : field == 1 ? st->pending
                    : field == 2 ? st->lag
                                 : st->consumers;
        if (v < 0)
            continue; /* unknown (lag of a trimmed stream) */
        const char *labels[] = {label, st->name, NULL};
        rc = metrics_sample(b, name, labels, (double)v);
    }
    return rc;
}

static void metrics_answer(struct req *q)
{
    struct http *h = q->h;
    const struct sched_stats *ss = sched_stats(h->sched);
    static const char *const statuses[] = {"success", "failed", "cancelled",
                                           "waiting_for_human"};
    struct buf b;
    buf_init(&b, METRICS_OUT_MAX);
    int rc = metrics_gauge(&b, "weft_scheduler_ready",
                           "1 when this scheduler is connected to Redis and "
                           "consuming its streams.",
                           sched_ready(h->sched) ? 1 : 0);
    if (rc == 0)
        rc = metrics_family(&b, "weft_runs_total", "counter",
                            "Runs that ended, by final status (all "
                            "schedulers; weft:stats).");
    for (size_t i = 0; rc == 0 && i < 4; i++) {
        char field[64];
        snprintf(field, sizeof(field), "runs_%s", statuses[i]);
        const char *labels[] = {"status", statuses[i], NULL};
        rc = metrics_sample_u64(
            &b, "weft_runs_total", labels,
            (uint64_t)json_integer_value(json_object_get(q->stats, field)));
    }
    const char *k;
    json_t *v;
    json_object_foreach(q->stats, k, v)
    {
        if (strncmp(k, "runs_", 5) != 0)
            continue;
        bool known = false;
        for (size_t i = 0; i < 4 && !known; i++)
            known = strcmp(k + 5, statuses[i]) == 0;
        if (rc != 0 || known || !keys_valid_id(k + 5, strlen(k + 5)))
            continue;
        const char *labels[] = {"status", k + 5, NULL};
        rc = metrics_sample_u64(&b, "weft_runs_total", labels,
                                (uint64_t)json_integer_value(v));
    }
    /* This scheduler's own counters (struct sched_stats). */
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"weft_events_processed_total",
         "Stream entries (tasks and events) this scheduler handled.",
         offsetof(struct sched_stats, messages)},
        {"weft_transitions_total",
         "Transition scripts that changed a run's state.",
         offsetof(struct sched_stats, transitions)},
        {"weft_stale_transitions_total",
         "Transitions that found the state already moved (redeliveries, "
         "races between replicas).",
         offsetof(struct sched_stats, stale)},
        {"weft_dead_letters_total", "Messages this scheduler sent to the DLQ.",
         offsetof(struct sched_stats, dead)},
        {"weft_runs_finished_total", "Runs this scheduler brought to an end.",
         offsetof(struct sched_stats, runs_done)},
        {"weft_step_retries_total", "Step retries this scheduler scheduled.",
         offsetof(struct sched_stats, retries)},
        {"weft_step_timeouts_total",
         "Step attempts this scheduler saw time out.",
         offsetof(struct sched_stats, timeouts)},
    };
    for (size_t i = 0; rc == 0 && i < sizeof(counters) / sizeof(counters[0]);
         i++)
        rc = metrics_counter(
            &b, counters[i].name, counters[i].help,
            *(const uint64_t *)((const char *)ss + counters[i].off));
    if (rc == 0)
        rc = metrics_streams(q, &b, "weft_queue_depth",
                             "Entries in a job queue stream (XLEN).", 0, true);
    if (rc == 0)
        rc = metrics_streams(q, &b, "weft_queue_pending",
                             "Jobs delivered to workers and not yet "
                             "acknowledged (XPENDING count).",
                             1, true);
    if (rc == 0)
        rc = metrics_streams(q, &b, "weft_queue_lag",
                             "Jobs not yet delivered to any worker (XINFO "
                             "GROUPS lag).",
                             2, true);
    if (rc == 0)
        rc = metrics_streams(q, &b, "weft_queue_consumers",
                             "Workers known to a queue's consumer group.", 3,
                             true);
    if (rc == 0)
        rc = metrics_streams(q, &b, "weft_stream_depth",
                             "Entries in the tasks and events streams.", 0,
                             false);
    if (rc == 0)
        rc = metrics_streams(q, &b, "weft_stream_pending",
                             "Tasks and events delivered to schedulers and "
                             "not yet acknowledged.",
                             1, false);
    if (rc == 0)
        rc = metrics_streams(q, &b, "weft_stream_lag",
                             "Tasks and events not yet delivered to any "
                             "scheduler.",
                             2, false);
    if (rc == 0)
        rc = metrics_gauge(&b, "weft_dlq_size",
                           "Entries in the dead-letter stream.",
                           (double)q->dlq_len);
    if (rc == 0)
        rc = metrics_gauge(&b, "weft_retry_timers",
                           "Retries waiting for their delay (weft:delayed).",
                           (double)q->delayed);
    if (rc == 0)
        rc = metrics_gauge(&b, "weft_redis_rtt_seconds",
                           "Round-trip time of the last PING on the API's "
                           "Redis connection.",
                           (double)rconn_rtt_us(h->rc) / 1e6);
    if (rc == 0)
        rc = metrics_family(&b, "weft_breaker_state", "gauge",
                            "Circuit breaker per persona (or git:<remote>): "
                            "0 closed, 1 half-open, 2 open.");
    for (size_t i = 0; rc == 0 && i < q->nb; i++) {
        if (q->bstate[i] < 0)
            continue;
        const char *labels[] = {"persona", q->bnames[i], NULL};
        rc = metrics_sample(&b, "weft_breaker_state", labels, q->bstate[i]);
    }
    if (rc != 0) {
        buf_deinit(&b);
        answer_error(q, 500, "metrics output too large or out of memory");
        return;
    }
    httpd_reply(q->r, 200, METRICS_CONTENT_TYPE, b.data ? b.data : "", b.len);
    q->r = NULL;
    buf_deinit(&b);
}

/* ---- GET /v1/queues, /v1/breakers ------------------------------------- */

static json_t *jint_or_null(int64_t v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

static void queues_answer(struct req *q)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < q->nqs; i++) {
        const struct qstat *st = &q->qs[i];
        char key[KEYS_MAX];
        keys_queue(&q->h->keys, st->name, key);
        json_array_append_new(
            arr,
            json_pack("{s:s, s:s, s:I, s:I, s:o, s:I, s:o}", "name", st->name,
                      "key", key, "length", (json_int_t)st->length, "pending",
                      (json_int_t)st->pending, "lag", jint_or_null(st->lag),
                      "consumers", (json_int_t)st->consumers, "last_delivered",
                      st->last[0] ? json_string(st->last) : json_null()));
    }
    answer_json(q, 200, json_pack("{s:o}", "queues", arr));
}

static void queues_read(struct req *q)
{
    send_stream_stats(q, false);
    q->stage = queues_answer;
}

static void queues_start(struct req *q)
{
    names_need(q, &q->h->queues);
    q->stage = queues_read;
}

static void breakers_answer(struct req *q)
{
    static const char *const words[] = {"closed", "half_open", "open"};
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < q->nb; i++) {
        if (q->bfields[i] == NULL)
            continue; /* the hash went away meanwhile */
        json_array_append_new(
            arr, json_pack("{s:s, s:o, s:O}", "persona", q->bnames[i], "state",
                           q->bstate[i] >= 0 ? json_string(words[q->bstate[i]])
                                             : json_null(),
                           "fields", q->bfields[i]));
    }
    answer_json(q, 200, json_pack("{s:o}", "breakers", arr));
}

static void breakers_read(struct req *q)
{
    send_breakers(q);
    q->stage = breakers_answer;
}

static void breakers_start(struct req *q)
{
    names_need(q, &q->h->breakers);
    q->stage = breakers_read;
}

/* ---- GET /v1/runs ------------------------------------------------------ */

static const char *const run_statuses[] = {"pending",   "running",
                                           "success",   "failed",
                                           "cancelled", "waiting_for_human"};

static const char *elem_str(const redisReply *r, size_t i)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
        r->element[i]->type != REDIS_REPLY_STRING ||
        strlen(r->element[i]->str) != (size_t)r->element[i]->len)
        return NULL;
    return r->element[i]->str;
}

static json_t *elem_time(const redisReply *r, size_t i)
{
    const char *s = elem_str(r, i);
    int64_t n;
    if (s == NULL || num_parse_i64(s, strlen(s), 0, INT64_MAX, &n) != 0)
        return json_null();
    return json_integer(n);
}

static void list_page(struct req *q);

static void on_list_header(struct req *q, const redisReply *r, size_t idx)
{
    const char *status = elem_str(r, 0);
    const char *id = json_string_value(json_array_get(q->ids, idx));
    if (id == NULL || status == NULL || json_array_size(q->items) >= q->limit ||
        (q->filter[0] && strcmp(status, q->filter) != 0))
        return;
    const char *wf = elem_str(r, 1);
    json_t *o =
        json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "id", id, "status", status,
                  "workflow", wf ? json_string(wf) : json_null(), "created",
                  elem_time(r, 2), "started", elem_time(r, 3), "finished",
                  elem_time(r, 4));
    if (o == NULL || json_array_append_new(q->items, o) != 0)
        fail(q, 500, "out of memory");
}

static void list_more(struct req *q)
{
    size_t got = json_array_size(q->ids);
    json_decref(q->ids);
    q->ids = NULL;
    if (json_array_size(q->items) >= q->limit || got < HTTP_LIST_PAGE ||
        q->scanned >= HTTP_LIST_SCAN) {
        answer_json(q, 200,
                    json_pack("{s:O, s:b}", "runs", q->items, "truncated",
                              got == HTTP_LIST_PAGE &&
                                  json_array_size(q->items) < q->limit));
        return;
    }
    q->start += HTTP_LIST_PAGE;
    list_page(q);
}

static void on_list_ids(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (!reply_ok(q, r) || r->type != REDIS_REPLY_ARRAY)
        return;
    q->ids = json_array();
    for (size_t i = 0; q->ids != NULL && i < r->elements; i++) {
        const char *id = elem_str(r, i);
        char key[KEYS_MAX];
        q->scanned++;
        /* An id that cannot name a key keeps its slot so replies stay in
         * step with ids; its HMGET reads nothing. */
        if (id == NULL || keys_run(&q->h->keys, KEYS_RUN, id, key) == 0)
            snprintf(key, sizeof(key), "%s", "\x01");
        /* Every reply needs its id at the same index ("" when unusable). */
        json_t *js = key[0] != '\x01' ? json_string(id) : NULL;
        if (json_array_append_new(q->ids, js ? js : json_string("")) != 0) {
            fail(q, 500, "out of memory");
            return;
        }
        Q(q, on_list_header, i, "HMGET", key, "status", "workflow", "created",
          "started", "finished");
    }
    if (q->ids == NULL)
        fail(q, 500, "out of memory");
    q->stage = list_more;
}

static void list_page(struct req *q)
{
    char from[32], to[32];
    snprintf(from, sizeof(from), "%ld", q->start);
    snprintf(to, sizeof(to), "%ld", q->start + HTTP_LIST_PAGE - 1);
    Q(q, on_list_ids, 0, "ZREVRANGE", q->h->k_runs, from, to);
}

static void runs_list(struct req *q)
{
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    const char *status = query_get(q->r, &params, "status");
    bool ok = true;
    if (status != NULL) {
        ok = false;
        for (size_t i = 0; i < 6 && !ok; i++)
            ok = strcmp(status, run_statuses[i]) == 0;
        if (ok)
            snprintf(q->filter, sizeof(q->filter), "%s", status);
        else
            fail(q, 400,
                 "status must be pending, running, success, failed, "
                 "cancelled or waiting_for_human");
    }
    evhttp_clear_headers(&params);
    q->limit = HTTP_LIST_DEFAULT;
    if (!ok || !query_u32(q, "limit", HTTP_LIST_MAX, &q->limit))
        return;
    q->items = json_array();
    if (q->items == NULL) {
        fail(q, 500, "out of memory");
        return;
    }
    if (q->limit == 0) {
        answer_json(q, 200,
                    json_pack("{s:O, s:b}", "runs", q->items, "truncated", 0));
        return;
    }
    list_page(q);
}

/* ---- GET /v1/runs/{id} ------------------------------------------------- */

static void on_run_doc(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (!reply_ok(q, r))
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        fail(q, 500, "unexpected reply from Redis");
        return;
    }
    const redisReply *hdr = r->element[0], *steps = r->element[1],
                     *state = r->element[2], *hist = r->element[3];
    if (hdr->elements == 0) {
        fail(q, 404, "run %s not found", q->id[0]);
        return;
    }
    const struct wf *wf = q->digest[0] ? def_get(q->h, q->digest) : NULL;
    json_t *doc = NULL;
    if (rundoc_build(q->id[0], hdr, steps, wf, &doc) != 0) {
        fail(q, 500, "out of memory");
        return;
    }
    const char *trace = rundoc_reply_str(hdr, "trace");
    json_object_set_new(doc, "trace", trace ? json_string(trace) : json_null());
    json_t *ctx = rundoc_context(hdr, state);
    json_object_set_new(doc, "context", ctx ? ctx : json_null());
    json_object_set_new(doc, "definition",
                        wf ? rundoc_definition(wf) : json_null());
    json_t *h = json_array();
    /* XREVRANGE: newest first; the document lists them oldest first. */
    for (size_t i = hist->type == REDIS_REPLY_ARRAY ? hist->elements : 0;
         h != NULL && i > 0; i--) {
        json_t *e = rundoc_history_entry(hist->element[i - 1]);
        if (e != NULL)
            json_array_append_new(h, e);
    }
    json_object_set_new(doc, "history", h ? h : json_array());
    json_object_set_new(doc, "history_truncated",
                        json_boolean(hist->type == REDIS_REPLY_ARRAY &&
                                     q->history > 0 &&
                                     hist->elements >= q->history));
    q->doc = doc;
}

static void run_answer(struct req *q)
{
    json_t *doc = q->doc;
    q->doc = NULL;
    answer_json(q, 200, doc);
}

static void run_read(struct req *q)
{
    struct http *h = q->h;
    char hk[KEYS_MAX], sk[KEYS_MAX], stk[KEYS_MAX], hik[KEYS_MAX], cnt[16];
    keys_run(&h->keys, KEYS_RUN, q->id[0], hk);
    keys_run(&h->keys, KEYS_RUN_STEPS, q->id[0], sk);
    keys_run(&h->keys, KEYS_RUN_STATE, q->id[0], stk);
    keys_run(&h->keys, KEYS_RUN_HISTORY, q->id[0], hik);
    snprintf(cnt, sizeof(cnt), "%u", (unsigned)q->history);
    const char *a0[] = {"HGETALL", hk};
    const char *a1[] = {"HGETALL", sk};
    const char *a2[] = {"HGETALL", stk};
    /* history=0: an empty range (no entry has id 0-0) keeps the reply's
     * shape without reading anything. */
    const char *a3[] = {"XREVRANGE", hik, "+", "-", "COUNT", cnt};
    const char *a3none[] = {"XRANGE", hik, "0-0", "0-0"};
    struct txcmd cmds[] = {
        {2, a0, NULL},
        {2, a1, NULL},
        {2, a2, NULL},
        q->history ? (struct txcmd){6, a3, NULL}
                   : (struct txcmd){4, a3none, NULL},
    };
    q_tx(q, on_run_doc, cmds, 4);
    q->stage = run_answer;
}

static void on_def_text(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (r->type == REDIS_REPLY_STRING)
        def_put(q->h, q->digest, r->str, r->len);
}

static void run_def(struct req *q)
{
    if (!q->found) {
        fail(q, 404, "run %s not found", q->id[0]);
        return;
    }
    if (q->digest[0] && def_get(q->h, q->digest) == NULL) {
        char key[KEYS_MAX];
        keys_def(&q->h->keys, q->digest, key);
        Q(q, on_def_text, 0, "GET", key);
    }
    q->stage = run_read;
}

static void on_run_head(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (!reply_ok(q, r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return;
    q->found = elem_str(r, 0) != NULL;
    const char *d = elem_str(r, 1);
    if (d != NULL && valid_digest(d))
        snprintf(q->digest, sizeof(q->digest), "%s", d);
}

static void run_get(struct req *q)
{
    char key[KEYS_MAX];
    if (keys_run(&q->h->keys, KEYS_RUN, q->id[0], key) == 0) {
        fail(q, 404, "run %s not found", q->id[0]);
        return;
    }
    q->history = HTTP_HISTORY_DEFAULT;
    if (!query_u32(q, "history", HTTP_HISTORY_MAX, &q->history))
        return;
    Q(q, on_run_head, 0, "HMGET", key, "status", "digest");
    q->stage = run_def;
}

/* ---- POST /v1/runs ------------------------------------------------------ */

static void on_added(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (reply_ok(q, r) && r->type != REDIS_REPLY_STRING)
        fail(q, 500, "unexpected reply to XADD");
}

static void submit_answer(struct req *q)
{
    char loc[KEYS_ID_MAX + 16];
    snprintf(loc, sizeof(loc), "/v1/runs/%s", q->id[0]);
    evhttp_add_header(evhttp_request_get_output_headers(q->r), "Location", loc);
    answer_json(q, 202, json_pack("{s:s}", "run", q->id[0]));
}

/* XADD of the task entry; the definition (when given inline) was stored
 * just before on the same connection, so it is there first. */
static void submit_add(struct req *q)
{
    struct http *h = q->h;
    const char *argv[16];
    int n = 0;
    if (q->digest[0] && !q->found) {
        fail(q, 422, "no definition is stored for digest %s", q->digest);
        return;
    }
    char *task = json_dumps(json_object_get(q->body, "task"), JSON_COMPACT);
    if (task == NULL) {
        fail(q, 500, "out of memory");
        return;
    }
    const char *type = NULL, *wfname = NULL, *trace = NULL;
    body_str(q, "type", KEYS_ID_MAX, &type);
    if (type == NULL)
        type = json_string_value(
            json_object_get(json_object_get(q->body, "task"), "type"));
    wfname = json_string_value(json_object_get(q->doc, "workflow"));
    trace = json_string_value(json_object_get(q->doc, "trace"));
    argv[n++] = "XADD";
    argv[n++] = h->k_tasks;
    argv[n++] = "*";
    argv[n++] = "run";
    argv[n++] = q->id[0];
    if (q->digest[0]) {
        argv[n++] = "digest";
        argv[n++] = q->digest;
    }
    if (wfname != NULL) {
        argv[n++] = "workflow";
        argv[n++] = wfname;
    }
    argv[n++] = "type";
    argv[n++] = type ? type : "";
    argv[n++] = "task";
    argv[n++] = task;
    if (trace != NULL) {
        argv[n++] = "trace";
        argv[n++] = trace;
    }
    q_argv(q, on_added, 0, n, argv, NULL);
    weft_free(task);
    q->stage = submit_answer;
}

static void on_exists(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    q->found = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
}

static void on_set_def(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (reply_ok(q, r))
        q->found = true;
}

/* A W3C traceparent: version-traceid-parentid-flags in lowercase hex. */
static bool valid_traceparent(const char *s)
{
    static const size_t parts[] = {2, 32, 16, 2};
    if (s == NULL || strlen(s) != 55)
        return false;
    size_t pos = 0;
    for (size_t p = 0; p < 4; p++) {
        for (size_t i = 0; i < parts[p]; i++, pos++) {
            char c = s[pos];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                return false;
        }
        if (p < 3 && s[pos++] != '-')
            return false;
    }
    return true;
}

static void runs_submit(struct req *q)
{
    static const char *const known[] = {
        "task", "type", "workflow", "digest", "run", "definition", NULL};
    struct http *h = q->h;
    const char *run, *wfname, *digest, *type;
    if (!read_body(q) || !body_fields_known(q, known) ||
        !body_id(q, "run", &run) || !body_id(q, "workflow", &wfname) ||
        !body_str(q, "digest", 64, &digest) ||
        !body_str(q, "type", KEYS_ID_MAX, &type))
        return;
    json_t *task = json_object_get(q->body, "task");
    if (task == NULL) {
        json_object_set_new(q->body, "task", json_object());
    } else if (!json_is_object(task)) {
        fail(q, 400, "field 'task' must be a JSON object");
        return;
    }
    json_t *def = json_object_get(q->body, "definition");
    if (def != NULL && (digest != NULL || wfname != NULL)) {
        fail(q, 400, "'definition' excludes 'digest' and 'workflow'");
        return;
    }
    if (digest != NULL && !valid_digest(digest)) {
        fail(q, 400, "field 'digest' must be 64 lowercase hex digits");
        return;
    }
    q->doc = json_object();
    if (q->doc == NULL) {
        fail(q, 500, "out of memory");
        return;
    }
    if (wfname != NULL)
        json_object_set_new(q->doc, "workflow", json_string(wfname));
    const char *tp = evhttp_find_header(evhttp_request_get_input_headers(q->r),
                                        "traceparent");
    if (valid_traceparent(tp))
        json_object_set_new(q->doc, "trace", json_string(tp));
    if (run != NULL) {
        snprintf(q->id[0], sizeof(q->id[0]), "%s", run);
    } else {
        unsigned char rnd[4];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            fail(q, 500, "random generator failed");
            return;
        }
        snprintf(q->id[0], sizeof(q->id[0]), "%" PRId64 "-%02x%02x%02x%02x",
                 now_ms(), rnd[0], rnd[1], rnd[2], rnd[3]);
    }
    if (digest != NULL) {
        char key[KEYS_MAX];
        snprintf(q->digest, sizeof(q->digest), "%s", digest);
        keys_def(&h->keys, digest, key);
        Q(q, on_exists, 0, "EXISTS", key);
    } else if (def != NULL) {
        /* Inline: a YAML (or JSON) text, or a JSON object. */
        char *text = json_is_string(def) ? NULL : json_dumps(def, JSON_COMPACT);
        const char *src = json_is_string(def) ? json_string_value(def) : text;
        size_t len = json_is_string(def) ? json_string_length(def)
                                         : (text ? strlen(text) : 0);
        if (src == NULL || !(json_is_string(def) || json_is_object(def))) {
            weft_free(text);
            fail(q, 400,
                 "field 'definition' must be workflow text or a "
                 "JSON object");
            return;
        }
        struct diag d;
        struct wf *wf = NULL;
        diag_init(&d, "definition");
        int rc = wf_load_buffer(src, len, "workflow", &wf, &d);
        weft_free(text);
        if (rc != 0) {
            diag_sort(&d);
            json_t *errs = diag_to_json(&d);
            diag_deinit(&d);
            answer_json(q, 422,
                        json_pack("{s:{s:s, s:s, s:o}}", "error", "code",
                                  "invalid_workflow", "message",
                                  "the workflow definition is invalid",
                                  "details", errs ? errs : json_array()));
            return;
        }
        diag_deinit(&d);
        char key[KEYS_MAX];
        snprintf(q->digest, sizeof(q->digest), "%s", wf->digest);
        json_object_set_new(q->doc, "workflow", json_string(wf->name));
        keys_def(&h->keys, wf->digest, key);
        const char *argv[] = {"SET", key, wf->canonical, "NX"};
        const size_t lens[] = {3, strlen(key), wf->canonical_len, 2};
        q_argv(q, on_set_def, 0, 4, argv, lens);
        wf_free(wf);
    }
    q->stage = submit_add;
}

/* ---- POST /v1/runs/{id}/cancel, retry, resolve, approve --------------- */

static void event_answer(struct req *q)
{
    json_t *doc = q->doc;
    q->doc = NULL;
    answer_json(q, 202, doc);
}

static void on_event_added(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (!reply_ok(q, r) || r->type != REDIS_REPLY_STRING)
        return;
    json_object_set_new(q->doc, "event", json_stringn(r->str, r->len));
}

static void on_status(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (!reply_ok(q, r))
        return;
    q->found = r->type == REDIS_REPLY_STRING;
    if (q->found)
        snprintf(q->status, sizeof(q->status), "%.*s",
                 (int)(r->len < 31 ? r->len : 31), r->str);
}

static void cancel_send(struct req *q)
{
    if (!q->found) {
        fail(q, 404, "run %s not found", q->id[0]);
        return;
    }
    q->doc = json_pack("{s:s, s:s}", "run", q->id[0], "status", q->status);
    if (q->doc == NULL) {
        fail(q, 500, "out of memory");
        return;
    }
    if (strcmp(q->status, "pending") != 0 &&
        strcmp(q->status, "running") != 0 &&
        strcmp(q->status, "waiting_for_human") != 0) {
        json_object_set_new(q->doc, "requested", json_false());
        json_t *doc = q->doc;
        q->doc = NULL;
        answer_json(q, 200, doc);
        return;
    }
    const char *reason = NULL;
    body_str(q, "reason", HTTP_TEXT_MAX, &reason);
    json_object_set_new(q->doc, "requested", json_true());
    Q(q, on_event_added, 0, "XADD", q->h->k_events, "*", "type", "cancel",
      "run", q->id[0], "reason", reason ? reason : "cancelled by API");
    q->stage = event_answer;
}

static void run_cancel(struct req *q)
{
    static const char *const known[] = {"reason", NULL};
    const char *reason;
    char key[KEYS_MAX];
    if (!read_body(q) || !body_fields_known(q, known) ||
        !body_str(q, "reason", HTTP_TEXT_MAX, &reason))
        return;
    if (keys_run(&q->h->keys, KEYS_RUN, q->id[0], key) == 0) {
        fail(q, 404, "run %s not found", q->id[0]);
        return;
    }
    Q(q, on_status, 0, "HGET", key, "status");
    q->stage = cancel_send;
}

static const char *const control_names[] = {"retry", "resolve", "approve"};

/* HMGET run status retries digest. */
static void on_ctl_run(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (!reply_ok(q, r) || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return;
    q->found = r->element[0]->type == REDIS_REPLY_STRING;
    if (q->found)
        snprintf(q->status, sizeof(q->status), "%.*s",
                 (int)(r->element[0]->len < 31 ? r->element[0]->len : 31),
                 r->element[0]->str);
    q->retries = reply_int(r->element[1], 0);
    /* A task that never started is a failed run without a definition. */
    q->started = r->element[2]->type == REDIS_REPLY_STRING;
}

/* HMGET steps S S:attempt S:wait S:approvers. */
static void on_ctl_step(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (!reply_ok(q, r) || r->type != REDIS_REPLY_ARRAY || r->elements != 4)
        return;
    const redisReply *const *e = (const redisReply *const *)r->element;
    if (e[0]->type == REDIS_REPLY_STRING)
        snprintf(q->step_status, sizeof(q->step_status), "%.*s",
                 (int)(e[0]->len < 31 ? e[0]->len : 31), e[0]->str);
    int64_t a = reply_int(e[1], 0);
    if (a > 0)
        snprintf(q->attempt, sizeof(q->attempt), "%lld", (long long)a);
    if (e[2]->type == REDIS_REPLY_STRING)
        snprintf(q->wait, sizeof(q->wait), "%.*s",
                 (int)(e[2]->len < 15 ? e[2]->len : 15), e[2]->str);
    if (e[3]->type == REDIS_REPLY_STRING)
        q->approvers = json_loadb(e[3]->str, e[3]->len, 0, NULL);
}

/* True when approvers (NULL: anyone) names by. */
static bool ctl_may_approve(const json_t *approvers, const char *by)
{
    if (!json_is_array(approvers))
        return true;
    size_t i;
    json_t *a;
    json_array_foreach(approvers, i, a)
    {
        if (by && json_is_string(a) && strcmp(json_string_value(a), by) == 0)
            return true;
    }
    return false;
}

/* Why the request cannot apply to what Redis holds (answered as 404 or
 * 409), or 0. */
static int control_conflict(struct req *q, const char *step, const char *by)
{
    if (!q->found) {
        fail(q, 404, "run %s not found", q->id[0]);
        return 404;
    }
    if (step != NULL && q->step_status[0] == '\0') {
        fail(q, 404, "run %s has no step %s", q->id[0], step);
        return 404;
    }
    if (q->ctl == CTL_RETRY) {
        bool ended = strcmp(q->status, "failed") == 0 ||
                     strcmp(q->status, "cancelled") == 0 ||
                     (step && strcmp(q->status, "success") == 0);
        if (!ended) {
            fail(q, 409,
                 "run %s is %s: only a run that failed or was cancelled "
                 "can be retried (or one that succeeded, from a step)",
                 q->id[0], q->status);
            return 409;
        }
        if (!q->started) {
            fail(q, 409, "run %s never started: submit its task again",
                 q->id[0]);
            return 409;
        }
        return 0;
    }
    if (strcmp(q->step_status, "waiting_for_human") != 0) {
        fail(q, 409, "step %s is %s, not waiting for a human", step,
             q->step_status);
        return 409;
    }
    if (q->ctl == CTL_APPROVE && strcmp(q->wait, "approval") != 0) {
        fail(q, 409,
             "step %s waits for a resolution, not an approval (use "
             "/resolve)",
             step);
        return 409;
    }
    if (q->ctl == CTL_APPROVE && !ctl_may_approve(q->approvers, by)) {
        fail(q, 409, "field 'by' must name one of the approvers of step %s",
             step);
        return 409;
    }
    return 0;
}

static void control_send(struct req *q)
{
    const char *step, *action, *by, *comment;
    body_id(q, "step", &step);
    body_str(q, "action", HTTP_TEXT_MAX, &action);
    body_str(q, "by", HTTP_TEXT_MAX, &by);
    body_str(q, "comment", HTTP_TEXT_MAX, &comment);
    if (q->ctl == CTL_APPROVE && action == NULL)
        action = "approve";
    if (control_conflict(q, step, by) != 0)
        return;
    json_t *set = json_object_get(q->body, "set");
    char *settext = set ? json_dumps(set, JSON_COMPACT) : NULL;
    if (set != NULL && settext == NULL) {
        fail(q, 500, "out of memory");
        return;
    }
    char seq[24];
    snprintf(seq, sizeof(seq), "%lld", (long long)q->retries);
    const char *argv[24];
    int n = 0;
    argv[n++] = "XADD";
    argv[n++] = q->h->k_events;
    argv[n++] = "*";
    argv[n++] = "type";
    argv[n++] = control_names[q->ctl];
    argv[n++] = "run";
    argv[n++] = q->id[0];
    if (step) {
        argv[n++] = "step";
        argv[n++] = step;
    }
    if (action) {
        argv[n++] = "action";
        argv[n++] = action;
    }
    if (q->ctl == CTL_RETRY) {
        argv[n++] = "seq";
        argv[n++] = seq;
    } else if (q->attempt[0]) {
        argv[n++] = "attempt";
        argv[n++] = q->attempt;
    }
    if (by) {
        argv[n++] = "by";
        argv[n++] = by;
    }
    if (comment) {
        argv[n++] = "comment";
        argv[n++] = comment;
    }
    if (settext) {
        argv[n++] = "set";
        argv[n++] = settext;
    }
    q->doc = json_pack("{s:s, s:s?, s:s, s:s?, s:s?, s:s}", "run", q->id[0],
                       "step", step, "type", control_names[q->ctl], "action",
                       action, "by", by, "status", q->status);
    q_argv(q, on_event_added, 0, n, argv, NULL);
    weft_free(settext);
    q->stage = event_answer;
}

/* Checks the request body against what each kind of control takes:
 * retry: step (to re-run from) optional, no action, no set; resolve: step
 * and action retry|skip|fail required; approve: step required, action
 * approve (default) or reject. set: an object of state keys. */
static bool control_body_ok(struct req *q, const char *step, const char *action)
{
    static const char *const resolve_actions[] = {"retry", "skip", "fail",
                                                  NULL};
    static const char *const approve_actions[] = {"approve", "reject", NULL};
    json_t *set = json_object_get(q->body, "set");
    if (q->ctl == CTL_RETRY) {
        if (action != NULL || set != NULL) {
            fail(q, 400, "a retry takes no 'action' or 'set'");
            return false;
        }
        return true;
    }
    if (step == NULL) {
        fail(q, 400, "field 'step' is required");
        return false;
    }
    const char *const *ok =
        q->ctl == CTL_RESOLVE ? resolve_actions : approve_actions;
    if (action == NULL && q->ctl == CTL_RESOLVE) {
        fail(q, 400, "field 'action' is required: retry, skip or fail");
        return false;
    }
    bool known = action == NULL;
    for (size_t i = 0; ok[i] != NULL && !known; i++)
        known = strcmp(action, ok[i]) == 0;
    if (!known) {
        fail(q, 400, "field 'action' must be %s, got '%.64s'",
             q->ctl == CTL_RESOLVE ? "retry, skip or fail"
                                   : "approve or reject",
             action);
        return false;
    }
    if (set == NULL)
        return true;
    if (!json_is_object(set)) {
        fail(q, 400, "field 'set' must be a JSON object");
        return false;
    }
    if (json_object_size(set) > HTTP_SET_KEYS_MAX) {
        fail(q, 413, "field 'set' has more than %d keys", HTTP_SET_KEYS_MAX);
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v)
    {
        (void)v;
        if (!keys_valid_id(k, strlen(k))) {
            fail(q, 400,
                 "field 'set': key '%.64s' must match "
                 "[A-Za-z0-9_.-]{1,128}",
                 k);
            return false;
        }
    }
    char *t = json_dumps(set, JSON_COMPACT);
    size_t n = t ? strlen(t) : 0;
    weft_free(t);
    if (n > HTTP_SET_MAX) {
        fail(q, 413, "field 'set' is larger than %d bytes", HTTP_SET_MAX);
        return false;
    }
    return true;
}

static void run_control(struct req *q)
{
    static const char *const known[] = {"step",    "action", "by",
                                        "comment", "set",    NULL};
    const char *step, *action, *by, *comment;
    char hk[KEYS_MAX], sk[KEYS_MAX];
    if (!read_body(q) || !body_fields_known(q, known) ||
        !body_id(q, "step", &step) ||
        !body_str(q, "action", HTTP_TEXT_MAX, &action) ||
        !body_str(q, "by", HTTP_TEXT_MAX, &by) ||
        !body_str(q, "comment", HTTP_TEXT_MAX, &comment) ||
        !control_body_ok(q, step, action))
        return;
    if (keys_run(&q->h->keys, KEYS_RUN, q->id[0], hk) == 0 ||
        keys_run(&q->h->keys, KEYS_RUN_STEPS, q->id[0], sk) == 0) {
        fail(q, 404, "run %s not found", q->id[0]);
        return;
    }
    Q(q, on_ctl_run, 0, "HMGET", hk, "status", "retries", "digest");
    if (step != NULL) {
        char fa[KEYS_ID_MAX + 16], fw[KEYS_ID_MAX + 16], fp[KEYS_ID_MAX + 16];
        snprintf(fa, sizeof(fa), "%s:attempt", step);
        snprintf(fw, sizeof(fw), "%s:wait", step);
        snprintf(fp, sizeof(fp), "%s:approvers", step);
        Q(q, on_ctl_step, 0, "HMGET", sk, step, fa, fw, fp);
    }
    q->stage = control_send;
}

static void run_retry(struct req *q)
{
    q->ctl = CTL_RETRY;
    run_control(q);
}

static void run_resolve(struct req *q)
{
    q->ctl = CTL_RESOLVE;
    run_control(q);
}

static void run_approve(struct req *q)
{
    q->ctl = CTL_APPROVE;
    run_control(q);
}

/* ---- DLQ ------------------------------------------------------------------
 * Entries are read and judged by common/dlq.c; a requeue is the dlq_move
 * script, which deletes the dead letter and adds its message back in one
 * step, and only while the dead letter is there. */

/* Sends a script call; like q_argv. */
static void q_eval(struct req *q, reply_fn fn, enum script_id id, int nkeys,
                   int argc, const char **argv, const size_t *lens)
{
    struct call *k = weft_malloc(sizeof(*k));
    if (k == NULL) {
        fail(q, 500, "out of memory");
        return;
    }
    k->q = q;
    k->fn = fn;
    k->idx = 0;
    int rc = rconn_eval(q->h->rc, id, on_reply, k, nkeys, argc, argv, lens);
    if (rc != 0) {
        weft_free(k);
        fail(q, rc == WEFT_EREDIS ? 503 : 500, "Redis: %s",
             rc == WEFT_EREDIS ? "not connected" : weft_strerror(rc));
        return;
    }
    q->pending++;
}

static json_t *jstr_or_null(const char *s)
{
    json_t *v = s ? json_string(s) : NULL;
    return v ? v : json_null();
}

static void on_dlq_entries(struct req *q, const redisReply *r, size_t idx)
{
    if (!reply_ok(q, r))
        return;
    if (idx == 0) {
        q->dlq_len = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const redisReply *fl = e->element[1];
        json_t *fields = json_object();
        for (size_t j = 0; fields != NULL && j + 1 < fl->elements; j += 2) {
            const redisReply *k = fl->element[j], *v = fl->element[j + 1];
            if (k->type != REDIS_REPLY_STRING ||
                v->type != REDIS_REPLY_STRING ||
                strlen(k->str) != (size_t)k->len)
                continue;
            /* Binary fields (the msgpack body) are shown by size. */
            json_t *jv = strcmp(k->str, "body") == 0
                             ? NULL
                             : json_stringn(v->str, v->len);
            if (jv == NULL) {
                char name[KEYS_ID_MAX + 8];
                snprintf(name, sizeof(name), "%.*s_bytes",
                         (int)(k->len < KEYS_ID_MAX ? k->len : KEYS_ID_MAX),
                         k->str);
                json_object_set_new(fields, name, json_integer(v->len));
            } else {
                json_object_set_new(fields, k->str, jv);
            }
        }
        struct dlq_info in;
        dlq_inspect(&q->h->keys, fl, &in);
        int64_t at = in.at >= 0 ? in.at : dlq_id_ms(e->element[0]->str);
        json_array_append_new(
            q->items,
            json_pack(
                "{s:s%, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
                "s:o, s:b, s:o}",
                "id", e->element[0]->str, (size_t)e->element[0]->len, "kind",
                dlq_kind_name(in.kind), "origin",
                in.origin[0] ? json_string(in.origin) : json_null(), "reason",
                jstr_or_null(in.reason), "by", jstr_or_null(in.by), "at",
                at >= 0 ? json_integer(at) : json_null(), "run",
                jstr_or_null(in.run), "step", jstr_or_null(in.step), "attempt",
                jstr_or_null(in.attempt), "type", jstr_or_null(in.type),
                "fields", fields ? fields : json_object(), "requeueable",
                in.not_requeueable == NULL, "not_requeueable",
                jstr_or_null(in.not_requeueable)));
    }
}

static void dlq_answer(struct req *q)
{
    answer_json(q, 200,
                json_pack("{s:I, s:O}", "length", (json_int_t)q->dlq_len,
                          "entries", q->items));
}

static void dlq_list(struct req *q)
{
    char cnt[16];
    q->limit = HTTP_DLQ_DEFAULT;
    if (!query_u32(q, "limit", HTTP_DLQ_MAX, &q->limit))
        return;
    q->items = json_array();
    if (q->items == NULL) {
        fail(q, 500, "out of memory");
        return;
    }
    snprintf(cnt, sizeof(cnt), "%u", (unsigned)q->limit);
    Q(q, on_dlq_entries, 0, "XLEN", q->h->k_dlq);
    if (q->limit > 0)
        Q(q, on_dlq_entries, 1, "XREVRANGE", q->h->k_dlq, "+", "-", "COUNT",
          cnt);
    q->stage = dlq_answer;
}

static void on_requeued(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (!reply_ok(q, r))
        return;
    if (r->type == REDIS_REPLY_NIL) {
        /* Requeued or dropped by someone else since we read it. */
        fail(q, 404, "no DLQ entry %s", q->id[0]);
        return;
    }
    if (r->type != REDIS_REPLY_STRING) {
        fail(q, 500, "requeue failed");
        return;
    }
    json_object_set_new(q->doc, "id", json_stringn(r->str, r->len));
}

static void requeue_answer(struct req *q)
{
    json_t *doc = q->doc;
    q->doc = NULL;
    answer_json(q, 200, doc);
}

static void requeue_check(struct req *q)
{
    if (!q->found) {
        fail(q, 404, "no DLQ entry %s", q->id[0]);
        return;
    }
    if (q->why != NULL) {
        fail(q, 422, "entry %s cannot be requeued: %s", q->id[0], q->why);
        return;
    }
    q->stage = requeue_answer;
}

static void on_dlq_entry(struct req *q, const redisReply *r, size_t idx)
{
    (void)idx;
    if (!reply_ok(q, r) || r->type != REDIS_REPLY_ARRAY || r->elements != 1)
        return;
    const redisReply *e = r->element[0];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    q->found = true;
    const redisReply *fl = e->element[1];
    struct dlq_info in;
    dlq_inspect(&q->h->keys, fl, &in);
    if (in.not_requeueable != NULL) {
        q->why = in.not_requeueable;
        return;
    }
    const char **argv = NULL;
    size_t *lens = NULL;
    int nkeys, argc;
    if (dlq_move_argv(q->h->k_dlq, &in, q->id[0], fl, &nkeys, &argc, &argv,
                      &lens) != 0) {
        fail(q, 500, "out of memory");
        return;
    }
    /* The arguments are copied when the command is queued. */
    q_eval(q, on_requeued, SCRIPT_DLQ_MOVE, nkeys, argc, argv, lens);
    weft_free(argv);
    weft_free(lens);
    json_object_set_new(q->doc, "stream", json_string(in.origin));
    json_object_set_new(q->doc, "kind", json_string(dlq_kind_name(in.kind)));
}

static void dlq_requeue(struct req *q)
{
    if (!valid_entry_id(q->id[0])) {
        fail(q, 404, "no DLQ entry %s", q->id[0]);
        return;
    }
    q->doc = json_pack("{s:s}", "requeued", q->id[0]);
    if (q->doc == NULL) {
        fail(q, 500, "out of memory");
        return;
    }
    Q(q, on_dlq_entry, 0, "XRANGE", q->h->k_dlq, q->id[0], q->id[0]);
    q->stage = requeue_check;
}

/* ---- routing and auth -------------------------------------------------- */

enum auth { AUTH_NONE, AUTH_READ, AUTH_WRITE };

struct route {
    enum evhttp_cmd_type method; /* GET also serves HEAD */
    const char *pattern;         /* '*' matches one path segment (an id) */
    enum auth auth;
    void (*sync)(struct http *h, struct evhttp_request *r);
    stage_fn start; /* when the handler needs Redis */
};

static const struct route routes[] = {
    {EVHTTP_REQ_GET, "/healthz", AUTH_NONE, h_healthz, NULL},
    {EVHTTP_REQ_GET, "/readyz", AUTH_NONE, h_readyz, NULL},
    {EVHTTP_REQ_GET, "/", AUTH_NONE, h_dashboard, NULL},
    {EVHTTP_REQ_GET, "/metrics", AUTH_NONE, NULL, metrics_start},
    {EVHTTP_REQ_GET, "/v1/runs", AUTH_READ, NULL, runs_list},
    {EVHTTP_REQ_POST, "/v1/runs", AUTH_WRITE, NULL, runs_submit},
    {EVHTTP_REQ_GET, "/v1/runs/*", AUTH_READ, NULL, run_get},
    {EVHTTP_REQ_POST, "/v1/runs/*/cancel", AUTH_WRITE, NULL, run_cancel},
    {EVHTTP_REQ_POST, "/v1/runs/*/retry", AUTH_WRITE, NULL, run_retry},
    {EVHTTP_REQ_POST, "/v1/runs/*/resolve", AUTH_WRITE, NULL, run_resolve},
    {EVHTTP_REQ_POST, "/v1/runs/*/approve", AUTH_WRITE, NULL, run_approve},
    {EVHTTP_REQ_GET, "/v1/queues", AUTH_READ, NULL, queues_start},
    {EVHTTP_REQ_GET, "/v1/breakers", AUTH_READ, NULL, breakers_start},
    {EVHTTP_REQ_GET, "/v1/dlq", AUTH_READ, NULL, dlq_list},
    {EVHTTP_REQ_POST, "/v1/dlq/*/requeue", AUTH_WRITE, NULL, dlq_requeue},
};

/* Matches path against pattern, copying '*' segments into caps. */
static bool path_match(const char *pattern, const char *path,
                       char caps[2][KEYS_ID_MAX + 1])
{
    int ncap = 0;
    while (*pattern && *path) {
        if (*pattern == '*') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n > KEYS_ID_MAX || ncap == 2)
                return false;
            memcpy(caps[ncap], path, n);
            caps[ncap++][n] = '\0';
            path += n;
            pattern++;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

/* True when the Host header names a loopback address: DNS rebinding
 * makes a browser send other names to 127.0.0.1. */
static bool host_is_loopback(const char *host)
{
    if (host == NULL)
        return false;
    size_t n = strlen(host);
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        return end != NULL && (size_t)(end - host) == 4 &&
               memcmp(host, "[::1]", 5) == 0;
    }
    const char *colon = strchr(host, ':');
    if (colon != NULL)
        n = (size_t)(colon - host);
    if (n == 9 && memcmp(host, "localhost", 9) == 0)
        return true;
    return n >= 4 && strncmp(host, "127.", 4) == 0 &&
           strspn(host, "0123456789.") >= n;
}

/* 0 when r may use a route needing a, else the 401 message. */
static const char *auth_check(const struct http *h, struct evhttp_request *r,
                              enum auth a)
{
    if (a == AUTH_NONE)
        return NULL;
    struct evkeyvalq *ih = evhttp_request_get_input_headers(r);
    if (h->token != NULL) {
        const char *v = evhttp_find_header(ih, "Authorization");
        if (v == NULL)
            return "missing bearer token";
        if (strncasecmp(v, "Bearer ", 7) != 0)
            return "expected 'Authorization: Bearer TOKEN'";
        v += 7;
        size_t n = strlen(v);
        if (n != h->token_len || CRYPTO_memcmp(v, h->token, n) != 0)
            return "invalid token";
        return NULL;
    }
    if (a == AUTH_READ && h->addr.loopback &&
        host_is_loopback(evhttp_find_header(ih, "Host")))
        return NULL;
    return "no API token is configured (WEFT_API_TOKEN): only reads from "
           "loopback are allowed";
}

static void on_request(struct evhttp_request *r, void *arg)
{
    struct http *h = arg;
    enum evhttp_cmd_type m = evhttp_request_get_command(r);
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(r);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    char caps[2][KEYS_ID_MAX + 1];
    memset(caps, 0, sizeof(caps));
    if (path == NULL || path[0] == '\0')
        path = "/";
    if (m == EVHTTP_REQ_HEAD)
        m = EVHTTP_REQ_GET;
    const struct route *rt = NULL;
    bool get = false, post = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!path_match(routes[i].pattern, path, caps))
            continue;
        get |= routes[i].method == EVHTTP_REQ_GET;
        post |= routes[i].method == EVHTTP_REQ_POST;
        if (routes[i].method == m) {
            rt = &routes[i];
            break;
        }
    }
    if (rt == NULL) {
        if (get || post) {
            evhttp_add_header(evhttp_request_get_output_headers(r), "Allow",
                              get && post ? "GET, HEAD, POST"
                              : get       ? "GET, HEAD"
                                          : "POST");
            httpd_reply_error(r, 405, "method_not_allowed",
                              "method not allowed on %s", path);
        } else {
            httpd_reply_error(r, 404, "not_found", "no such endpoint: %.200s",
                              path);
        }
        return;
    }
    const char *why = auth_check(h, r, rt->auth);
    if (why != NULL) {
        evhttp_add_header(evhttp_request_get_output_headers(r),
                          "WWW-Authenticate", "Bearer realm=\"weft\"");
        httpd_reply_error(r, 401, "unauthorized", "%s", why);
        return;
    }
    if (rt->sync != NULL) {
        rt->sync(h, r);
        return;
    }
    struct req *q = weft_calloc(1, sizeof(*q));
    struct timeval tv = {HTTP_REQUEST_TIMEOUT_MS / 1000,
                         (HTTP_REQUEST_TIMEOUT_MS % 1000) * 1000};
    if (q != NULL)
        q->timer = evtimer_new(h->base, on_timeout, q);
    if (q == NULL || q->timer == NULL || evtimer_add(q->timer, &tv) != 0) {
        if (q != NULL && q->timer != NULL)
            event_free(q->timer);
        weft_free(q);
        httpd_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    q->h = h;
    q->r = r;
    memcpy(q->id, caps, sizeof(caps));
    q->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = q;
    h->reqs = q;
    struct evhttp_connection *conn = evhttp_request_get_connection(r);
    if (conn != NULL)
        evhttp_connection_set_closecb(conn, on_conn_close, q);
    q->stage = rt->start;
    req_drive(q);
}

/* ---- lifecycle ------------------------------------------------------------
 */

static void on_redis_state(struct rconn *c, bool up, void *ud)
{
    (void)c;
    (void)ud;
    if (up)
        log_debug("http: connected to redis", NULL);
    else
        log_warn("http: lost redis connection", NULL);
}

int http_token_from_env(char **token, struct weft_error *err)
{
    const char *direct = getenv("WEFT_API_TOKEN");
    const char *path = getenv("WEFT_API_TOKEN_FILE");
    char buf[HTTP_TOKEN_MAX + 2];
    size_t n = 0;
    *token = NULL;
    if (direct != NULL && path != NULL)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "set WEFT_API_TOKEN or WEFT_API_TOKEN_FILE, "
                              "not both");
    if (direct == NULL && path == NULL)
        return 0;
    if (direct != NULL) {
        n = strnlen(direct, HTTP_TOKEN_MAX + 1);
        if (n > HTTP_TOKEN_MAX)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "WEFT_API_TOKEN is longer than %d bytes",
                                  HTTP_TOKEN_MAX);
        memcpy(buf, direct, n);
    } else {
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            return weft_error_set(err, WEFT_EIO, 0, 0, "cannot read %s", path);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        bool bad = ferror(f) != 0;
        fclose(f);
        if (bad)
            return weft_error_set(err, WEFT_EIO, 0, 0, "cannot read %s", path);
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
        if (n > HTTP_TOKEN_MAX)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "%s: token longer than %d bytes", path,
                                  HTTP_TOKEN_MAX);
    }
    if (n == 0)
        return weft_error_set(err, WEFT_EINVAL, 0, 0, "the API token is empty");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c <= 0x20 || c == 0x7f)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "the API token holds a blank or control "
                                  "character");
    }
    *token = weft_strndup(buf, n);
    if (*token == NULL)
        return weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
    return 0;
}

struct http *http_start(struct event_base *base, const struct http_config *cfg,
                        const struct sched *sched, struct weft_error *err)
{
    struct httpd_addr addr;
    if (httpd_addr_parse(cfg->addr ? cfg->addr : HTTP_DEFAULT_ADDR, &addr,
                         err) != 0)
        return NULL;
    struct http *h = weft_calloc(1, sizeof(*h));
    if (h == NULL) {
        weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
        return NULL;
    }
    h->base = base;
    h->addr = addr;
    h->keys = *cfg->keys;
    h->sched = sched;
    char pre[KEYS_MAX];
    keys_queue_prefix(&h->keys, pre);
    names_init(&h->queues, "queue", "stream", pre, keys_valid_id);
    keys_breaker_prefix(&h->keys, pre);
    names_init(&h->breakers, "breaker", "hash", pre, keys_valid_breaker);
    keys_global(&h->keys, KEYS_TASKS, h->k_tasks);
    keys_global(&h->keys, KEYS_EVENTS, h->k_events);
    keys_global(&h->keys, KEYS_RUNS, h->k_runs);
    keys_global(&h->keys, KEYS_DLQ, h->k_dlq);
    keys_global(&h->keys, KEYS_STATS, h->k_stats);
    keys_global(&h->keys, KEYS_DELAYED, h->k_delayed);
    if (cfg->token != NULL) {
        h->token = weft_strdup(cfg->token);
        h->token_len = strlen(cfg->token);
        if (h->token == NULL) {
            weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
            http_free(h);
            return NULL;
        }
    }
    char name[160];
    snprintf(name, sizeof(name), "%s-http", cfg->name ? cfg->name : "sched");
    h->rc = rconn_new(base, cfg->url, name, on_redis_state, h);
    if (h->rc == NULL) {
        weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
        http_free(h);
        return NULL;
    }
    h->srv = httpd_listen(base, &addr, &h->port, err);
    if (h->srv == NULL) {
        http_free(h);
        return NULL;
    }
    evhttp_set_gencb(h->srv, on_request, h);
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)h->port);
    log_info("http listening", "host", addr.host, "port", port, "auth",
             h->token        ? "token"
             : addr.loopback ? "loopback reads"
                             : "none",
             NULL);
    return h;
}

uint16_t http_port(const struct http *h)
{
    return h->port;
}

void http_free(struct http *h)
{
    if (h == NULL)
        return;
    /* Requests still waiting are never answered: libevent frees them
     * with their connections. */
    for (struct req *q = h->reqs; q != NULL; q = q->next)
        q->r = NULL;
    if (h->srv != NULL)
        evhttp_free(h->srv);
    /* Pending replies now arrive as NULL and free their contexts. */
    rconn_free(h->rc);
    while (h->reqs != NULL)
        req_free(h->reqs); /* none should be left; be safe */
    names_deinit(&h->queues);
    names_deinit(&h->breakers);
    for (size_t i = 0; i < HTTP_DEFCACHE_MAX; i++)
        wf_free(h->defs[i].wf);
    if (h->token != NULL)
        OPENSSL_cleanse(h->token, h->token_len);
    weft_free(h->token);
    weft_free(h);
}
