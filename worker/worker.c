/* worker.c - weft-worker's loop: claim, verify, start, run, report,
 * heartbeat, reclaim, drain (worker.h, docs/protocol.md).
 *
 * Life of a stream entry. The blocking read (own connection) or the
 * reclaim (XAUTOCLAIM, then XPENDING for the delivery count) hands us an
 * entry; it is copied out of the reply into a struct entry and checked:
 * plain fields, signature, body, agreement of the two. A bad entry is
 * copied to the DLQ, reported as `invalid` when it names a step, and
 * acknowledged, in one MULTI. A good one becomes a struct job: it waits
 * in the backlog for a slot, runs the `start` transition (FCALL), runs
 * its handler and is reported with one MULTI (XADD result, XACK, XDEL).
 * Every path ends in exactly one of: reported, acknowledged as stale, or
 * left pending for a later reclaim (connection lost, shutdown).
 *
 * Ownership. A job is owned by the list it is on (w->backlog, then
 * w->active) and freed only by job_free. While a reply callback is owed
 * for it (state STARTING or REPORTING) the job stays on its list and the
 * callback frees it; while its handler runs (RUNNING) only job_complete
 * moves it on. Replies that may arrive after a job is gone (the cancel
 * poll) find it by sequence number, never by pointer.
 *
 * Memory stays small: nothing is preallocated per slot, bodies are
 * copied once and freed when the entry is handled, results once encoded.
 */
#include "worker.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>

#include "alloc.h"
#include "buf.h"
#include "dlq.h"
#include "jsondump.h"
#include "log.h"
#include "num.h"
#include "rconn.h"
#include "scripts.h"
#include "wire.h"

/* XREADGROUP BLOCK: how long one read may hold its connection. It also
 * bounds how late a changed slot count is seen by a waiting read. */
#define WORKER_BLOCK_MS 2000
/* How often running jobs are checked for cancellation in the steps hash.
 * A cancelled step stops within about this long even when the pub/sub
 * message was missed (pub/sub is not durable). */
#define WORKER_CANCEL_POLL_MS 1000
/* The step deadline handed to `start` is the job's timeout plus this, so
 * that the worker's own timeout (with the handler's output) normally
 * reports before the scheduler's deadline timer fires: longer than a
 * persona's SIGTERM-to-SIGKILL grace (5 s), with room to report. */
#define WORKER_DEADLINE_SLACK_MS 10000
/* Longest step timeout honoured: 30 days. Longer values are clamped, so
 * the timer and the deadline arithmetic cannot overflow. */
#define WORKER_TIMEOUT_MAX_MS (30ull * 24 * 3600 * 1000)
/* After a read error other than NOGROUP, wait before reading again so a
 * persistent error (WRONGTYPE) does not spin. */
#define WORKER_READ_RETRY_MS 1000
/* After the grace period, how long cancelled handlers get to call
 * job_complete before the worker stops anyway. */
#define WORKER_ABANDON_WAIT_MS 1000
/* Plain fields other than body hold ids (<= KEYS_ID_MAX), an attempt
 * number or a 64-char signature; anything longer is junk and is not
 * copied. */
#define WORKER_FIELD_MAX 1024
/* A stream id is "<ms>-<seq>", two 64-bit decimals and a dash. */
#define WORKER_ID_MAX 41
/* Arguments of the longest command built here (the DLQ XADD: 3, five
 * bookkeeping pairs, the job's seven fields: 27). */
#define WORKER_CMD_ARGS 32
/* Room for a rejection reason: a wire decoder message plus a prefix. */
#define WORKER_REASON_MAX (WEFT_ERROR_MSG_MAX + 64)

/* The fields of a job entry the worker reads. */
enum efield {
    EF_RUN,
    EF_STEP,
    EF_ATTEMPT,
    EF_TYPE,
    EF_PERSONA,
    EF_BODY,
    EF_SIG,
    EF_COUNT
};
static const char *const efield_names[EF_COUNT] = {
    "run", "step", "attempt", "type", "persona", "body", "sig",
};

/* A stream entry copied out of its reply. */
struct entry {
    struct worker *w;
    unsigned qi;                /* index into w->queues */
    char id[WORKER_ID_MAX + 1]; /* stream id */
    bool deleted;               /* fields were nil: the entry is gone */
    const char *junk;           /* static reason the entry is malformed */
    char *val[EF_COUNT];        /* owned copies, NUL-terminated; NULL if */
    size_t len[EF_COUNT];       /* absent or rejected as junk */
};

enum job_state {
    JOB_WAITING,       /* in the backlog, no slot yet */
    JOB_STARTING,      /* FCALL start sent, reply owed */
    JOB_RUNNING,       /* handler owns the work; job_complete owed */
    JOB_REPORT_QUEUED, /* report waiting for the loop's batch to go out */
    JOB_REPORTING,     /* MULTI/EXEC sent, reply owed */
    JOB_REPORT_WAIT,   /* report not sent (connection down): resent on up */
};

struct jlist {
    struct job *head, *tail;
    uint32_t n;
};

struct job {
    struct worker *w;
    struct jlist *list; /* the list the job is on */
    struct job *prev, *next;
    enum job_state state;
    uint64_t seq; /* unique per worker, for late replies */
    unsigned qi;
    char id[WORKER_ID_MAX + 1];
    struct wire_job spec;
    const struct handler *h; /* set when the handler is started */
    void *data;              /* the handler's */
    struct event *timer;     /* timeout; NULL when none */
    int64_t started_ms;
    bool cancelling;         /* cancel asked of the handler */
    enum wire_status stop;   /* why: WIRE_TIMEOUT or WIRE_CANCELLED */
    bool abandoned;          /* shutdown: never report, never ack */
    enum wire_status status; /* reported status */
    char *report;            /* encoded result, owned */
    size_t report_len;
};

struct worker {
    struct event_base *base;
    struct keys keys;
    struct hmac_key hmac;
    char name[WORKER_NAME_MAX + 1];
    size_t nq;
    char *queues[WORKER_QUEUES_MAX]; /* queue names, owned */
    char *qkeys[WORKER_QUEUES_MAX];  /* their stream keys, owned */
    char events_key[KEYS_MAX];
    char dlq_key[KEYS_MAX];
    char runs_key[KEYS_MAX];
    char delayed_key[KEYS_MAX];
    char deadlines_key[KEYS_MAX];
    uint32_t concurrency;
    uint32_t visibility_ms;
    uint32_t delivery_limit;
    const struct handler *const *handlers;
    void (*on_done)(void *, const struct wire_job *, enum wire_status, double);
    void *on_done_ud;

    struct rconn *rd;  /* blocking reads and group creation; NULL once
                          stopping */
    struct rconn *cmd; /* everything else */
    struct rconn *sub; /* subscribed to the cancel channel */
    bool reading;      /* an XREADGROUP is outstanding */
    bool groups_ready; /* XGROUP CREATE answered for every queue */
    size_t groups_pending;
    bool reclaiming;     /* an XAUTOCLAIM round is in progress */
    bool reclaim_wanted; /* a round found no free slot: run one first */
    size_t reclaim_qi;
    uint32_t checks; /* reclaimed entries awaiting XPENDING */

    struct jlist backlog; /* JOB_WAITING, oldest first */
    struct jlist active;  /* every other state */
    uint64_t next_seq;

    struct event *read_retry_ev;
    struct event *reclaim_ev; /* persistent, visibility / 4 */
    struct event *beat_ev;    /* persistent, visibility / 3 */
    struct event *poll_ev;    /* persistent, WORKER_CANCEL_POLL_MS */
    struct event *grace_ev;   /* one-shot, while stopping */
    struct event *drain_ev;   /* one-shot: check for drained from the loop */
    struct event *report_ev;  /* one-shot: send the queued reports */
    struct job **reports;     /* JOB_REPORT_QUEUED, in completion order */
    size_t nreports, reports_cap;
    char (*start_keys)[KEYS_MAX]; /* START_KEYS_MAX, for start_send */
    struct buf start_doc;         /* the start batch's plans, reused */

    bool in_kick;
    bool stopping;   /* worker_stop called */
    bool abandoning; /* grace period over */
    bool stopped;    /* stop callback called */
    bool closing;    /* worker_free running: replies are NULL */
    worker_stopped_cb stop_cb;
    void *stop_ud;

    struct worker_stats stats;
};

/* A cancel poll in flight: the job is found again by seq. */
struct pollref {
    struct worker *w;
    uint64_t seq;
};

/* One command of a MULTI, arguments borrowed until it is sent. */
struct cmd {
    int argc;
    const char *argv[WORKER_CMD_ARGS];
    size_t len[WORKER_CMD_ARGS];
    char us[24]; /* a result's completion stamp, which argv points into */
};

static void kick(struct worker *w);
static void job_send_report(struct job *j);

/* ---- small helpers ---------------------------------------------------- */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void)
{
    return now_us() / 1000;
}

static struct timeval ms_tv(uint64_t ms)
{
    struct timeval tv;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    return tv;
}

static void cmd_add(struct cmd *c, const char *s, size_t len)
{
    /* Callers build fixed shapes well below WORKER_CMD_ARGS. */
    if (c->argc < WORKER_CMD_ARGS) {
        c->argv[c->argc] = s;
        c->len[c->argc] = len;
        c->argc++;
    }
}

static void cmd_adds(struct cmd *c, const char *s)
{
    cmd_add(c, s, strlen(s));
}

static bool reply_is_str(const redisReply *r)
{
    return r != NULL &&
           (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static bool reply_str_eq(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return reply_is_str(r) && (size_t)r->len == n && memcmp(r->str, s, n) == 0;
}

static bool reply_err_prefix(const redisReply *r, const char *prefix)
{
    size_t n = strlen(prefix);
    return r != NULL && r->type == REDIS_REPLY_ERROR && (size_t)r->len >= n &&
           memcmp(r->str, prefix, n) == 0;
}

/* The error text of r, bounded for logs. */
static void reply_err_text(const redisReply *r, char *out, size_t size)
{
    if (r == NULL)
        snprintf(out, size, "connection lost");
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(out, size, "%.*s", (int)(r->len < 200 ? r->len : 200), r->str);
    else
        snprintf(out, size, "unexpected reply type %d", r->type);
}

static bool valid_stream_id(const char *s, size_t len)
{
    size_t i = 0, digits = 0;
    if (len == 0 || len > WORKER_ID_MAX)
        return false;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (digits == 0 || i == len || s[i] != '-')
        return false;
    i++;
    digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    return digits > 0 && i == len;
}

static uint32_t free_slots(const struct worker *w)
{
    uint64_t used = (uint64_t)w->active.n + w->backlog.n + w->checks;
    return used >= w->concurrency ? 0 : (uint32_t)(w->concurrency - used);
}

static const struct handler *find_handler(const struct worker *w,
                                          const char *type)
{
    for (size_t i = 0; w->handlers[i] != NULL; i++) {
        if (strcmp(w->handlers[i]->type, type) == 0)
            return w->handlers[i];
    }
    return NULL;
}

/* Sends MULTI, cmds and EXEC as one pipelined round trip; cb gets the
 * EXEC reply. 0, or an error with nothing left open on the connection
 * (cb then never runs). */
static int send_tx(struct worker *w, struct cmd *cmds, int n, rconn_reply_cb cb,
                   void *ud)
{
    const char *multi = "MULTI", *exec = "EXEC", *discard = "DISCARD";
    int rc;

    if (!rconn_is_up(w->cmd))
        return WEFT_EREDIS;
    rc = rconn_argv(w->cmd, NULL, NULL, 1, &multi, NULL);
    if (rc != 0)
        return rc;
    for (int i = 0; i < n; i++) {
        rc = rconn_argv(w->cmd, NULL, NULL, cmds[i].argc, cmds[i].argv,
                        cmds[i].len);
        if (rc != 0)
            goto discard;
    }
    rc = rconn_argv(w->cmd, cb, ud, 1, &exec, NULL);
    if (rc == 0)
        return 0;
discard:
    /* No callback, so no allocation: this cannot fail for want of
     * memory, and the connection is not left inside a MULTI. */
    rconn_argv(w->cmd, NULL, NULL, 1, &discard, NULL);
    return rc;
}

/* ---- job lists ------------------------------------------------------- */

static void jlist_push(struct worker *w, struct jlist *l, struct job *j)
{
    j->list = l;
    j->next = NULL;
    j->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
    w->stats.held = w->active.n + w->backlog.n;
}

static void jlist_remove(struct worker *w, struct job *j)
{
    struct jlist *l = j->list;
    if (l == NULL)
        return;
    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    l->n--;
    j->list = NULL;
    j->prev = j->next = NULL;
    w->stats.held = w->active.n + w->backlog.n;
}

static bool holds_entry(const struct worker *w, unsigned qi, const char *id)
{
    const struct jlist *lists[2] = {&w->active, &w->backlog};
    for (int i = 0; i < 2; i++) {
        for (const struct job *j = lists[i]->head; j != NULL; j = j->next) {
            if (j->qi == qi && strcmp(j->id, id) == 0)
                return true;
        }
    }
    return false;
}

/* ---- entries --------------------------------------------------------- */

static void entry_free(struct entry *e)
{
    if (e == NULL)
        return;
    for (int i = 0; i < EF_COUNT; i++)
        weft_free(e->val[i]);
    weft_free(e);
}

/* Copies a stream entry ([id, [field, value, ...]]) out of a reply.
 * NULL when the id is unusable (the entry cannot even be acknowledged)
 * or on OOM; otherwise malformed content is recorded in e->junk. */
static struct entry *entry_from_reply(struct worker *w, unsigned qi,
                                      const redisReply *r)
{
    struct entry *e;
    const redisReply *id, *f;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return NULL;
    id = r->element[0];
    if (!reply_is_str(id) || !valid_stream_id(id->str, (size_t)id->len))
        return NULL;
    e = weft_calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->w = w;
    e->qi = qi;
    memcpy(e->id, id->str, (size_t)id->len);
    e->id[id->len] = '\0';
    f = r->elements >= 2 ? r->element[1] : NULL;
    if (f == NULL || f->type == REDIS_REPLY_NIL) {
        e->deleted = true;
        return e;
    }
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2 != 0) {
        e->junk = "malformed field list";
        return e;
    }
    for (size_t i = 0; i < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        int which = -1;
        if (!reply_is_str(k) || !reply_is_str(v)) {
            e->junk = e->junk ? e->junk : "field that is not a string";
            continue;
        }
        for (int x = 0; x < EF_COUNT; x++) {
            if ((size_t)k->len == strlen(efield_names[x]) &&
                memcmp(k->str, efield_names[x], (size_t)k->len) == 0)
                which = x;
        }
        if (which < 0)
            continue; /* unknown fields are allowed, as in bodies */
        if (e->val[which] != NULL) {
            e->junk = e->junk ? e->junk : "duplicate field";
            continue;
        }
        size_t max = which == EF_BODY ? WIRE_MAX_BODY : WORKER_FIELD_MAX;
        if ((size_t)v->len > max) {
            e->junk = e->junk ? e->junk
                              : (which == EF_BODY ? "body too large"
                                                  : "field too large");
            continue;
        }
        e->val[which] = weft_malloc((size_t)v->len + 1);
        if (e->val[which] == NULL) {
            entry_free(e);
            return NULL;
        }
        memcpy(e->val[which], v->str, (size_t)v->len);
        e->val[which][v->len] = '\0';
        e->len[which] = (size_t)v->len;
    }
    return e;
}

static bool field_eq(const struct entry *e, enum efield f, const char *want)
{
    return e->val[f] != NULL && want != NULL && strlen(want) == e->len[f] &&
           memcmp(e->val[f], want, e->len[f]) == 0;
}

static bool parse_attempt(const char *s, size_t len, uint32_t *out)
{
    int64_t n;
    if (s == NULL || num_parse_i64(s, len, 1, UINT32_MAX, &n) != 0)
        return false;
    *out = (uint32_t)n;
    return true;
}

/* Checks that the plain fields are the body's; fills reason if not. */
static bool fields_agree(const struct worker *w, const struct entry *e,
                         const struct wire_job *spec, char *reason, size_t size)
{
    static const enum efield named[] = {EF_RUN, EF_STEP, EF_TYPE};
    const char *want[] = {spec->run, spec->step, spec->type};
    uint32_t attempt;

    for (size_t i = 0; i < 3; i++) {
        if (!field_eq(e, named[i], want[i])) {
            snprintf(reason, size, "field '%s' %s the body",
                     efield_names[named[i]],
                     e->val[named[i]] ? "disagrees with" : "missing beside");
            return false;
        }
    }
    if (!parse_attempt(e->val[EF_ATTEMPT], e->len[EF_ATTEMPT], &attempt) ||
        attempt != spec->attempt) {
        snprintf(reason, size, "field 'attempt' disagrees with the body");
        return false;
    }
    /* The scheduler writes persona "" for steps without one. */
    bool persona_ok;
    if (e->val[EF_PERSONA] == NULL || e->len[EF_PERSONA] == 0)
        persona_ok = spec->persona == NULL;
    else
        persona_ok = field_eq(e, EF_PERSONA, spec->persona);
    if (!persona_ok) {
        snprintf(reason, size, "field 'persona' disagrees with the body");
        return false;
    }
    if (strcmp(spec->queue, w->queues[e->qi]) != 0) {
        snprintf(reason, size, "job for queue '%s' found on queue '%s'",
                 spec->queue, w->queues[e->qi]);
        return false;
    }
    return true;
}

/* Replaces bytes outside printable ASCII, so that a reason quoting
 * hostile input stays valid UTF-8 in the result and the logs. */
static void printable(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < ' ' || (unsigned char)*s > '~')
            *s = '?';
    }
}

static void ack_entry(struct worker *w, unsigned qi, const char *id)
{
    const char *ack[] = {"XACK", w->qkeys[qi], KEYS_GROUP_WORKERS, id};
    const char *del[] = {"XDEL", w->qkeys[qi], id};
    rconn_argv(w->cmd, NULL, NULL, 4, ack, NULL);
    rconn_argv(w->cmd, NULL, NULL, 3, del, NULL);
}

/* Builds the `result` XADD for the events stream; trace (nullable) is
 * the job's traceparent, so the result stays in the run's trace, and `us`
 * stamps when the step completed here (the history keeps it: completion
 * to the successor's start is the engine's latency). The strings must
 * stay valid until the command is sent. */
static void result_cmd(struct worker *w, struct cmd *c, const char *run,
                       size_t runlen, const char *step, size_t steplen,
                       const char *attempt, enum wire_status st,
                       const char *trace, const char *body, size_t bodylen)
{
    cmd_adds(c, "XADD");
    cmd_adds(c, w->events_key);
    cmd_adds(c, "*");
    cmd_adds(c, "type");
    cmd_adds(c, "result");
    cmd_adds(c, "run");
    cmd_add(c, run, runlen);
    cmd_adds(c, "step");
    cmd_add(c, step, steplen);
    cmd_adds(c, "attempt");
    cmd_adds(c, attempt);
    cmd_adds(c, "status");
    cmd_adds(c, wire_status_name(st));
    cmd_adds(c, "worker");
    cmd_adds(c, w->name);
    snprintf(c->us, sizeof(c->us), "%" PRId64, now_us());
    cmd_adds(c, "us");
    cmd_adds(c, c->us);
    if (trace != NULL && trace[0] != '\0') {
        cmd_adds(c, "trace");
        cmd_adds(c, trace);
    }
    cmd_adds(c, "body");
    cmd_add(c, body, bodylen);
}

/* Encodes a result that carries only a status and a message. */
static int encode_simple_result(enum wire_status st, const char *message,
                                char **out, size_t *len)
{
    struct wire_result r;
    int64_t now = now_ms();
    memset(&r, 0, sizeof(r));
    r.status = st;
    r.message = (char *)message; /* read only by the encoder */
    r.started_ms = now;
    r.finished_ms = now;
    return wire_result_encode(&r, out, len);
}

/* Dead-letters e: copies it to the DLQ with reason, reports a result with
 * status st when the entry names a step (the verified body first, else
 * the plain fields), and acknowledges it, all in one MULTI. spec is NULL
 * unless the body was verified and decoded. */
static void entry_reject(struct worker *w, const struct entry *e,
                         const struct wire_job *spec, const char *reason,
                         enum wire_status st)
{
    struct cmd cmds[4];
    int n = 0;
    const char *run = NULL, *step = NULL;
    size_t runlen = 0, steplen = 0;
    uint32_t attempt = 0;
    char attempt_s[16], at[24];
    char *body = NULL;
    size_t bodylen = 0;

    memset(cmds, 0, sizeof(cmds));
    /* The dead letter (docs/protocol.md, "Dead letters"): bookkeeping,
     * then the job's fields as they were, so `weft dlq requeue` can put
     * it back. Fields dropped as junk are not copied. */
    struct cmd *d = &cmds[n++];
    snprintf(at, sizeof(at), "%" PRId64, now_ms());
    cmd_adds(d, "XADD");
    cmd_adds(d, w->dlq_key);
    cmd_adds(d, "*");
    cmd_adds(d, DLQ_F_ORIGIN);
    cmd_adds(d, w->qkeys[e->qi]);
    cmd_adds(d, DLQ_F_ENTRY);
    cmd_adds(d, e->id);
    cmd_adds(d, DLQ_F_REASON);
    cmd_adds(d, reason);
    cmd_adds(d, DLQ_F_BY);
    cmd_adds(d, w->name);
    cmd_adds(d, DLQ_F_AT);
    cmd_adds(d, at);
    for (int f = 0; f < EF_COUNT; f++) {
        if (e->val[f] == NULL)
            continue;
        cmd_adds(d, efield_names[f]);
        cmd_add(d, e->val[f], e->len[f]);
    }

    /* A signed body names the step with authority; plain fields are
     * what is left when the body was not trusted or not decodable. */
    if (spec != NULL && spec->run != NULL) {
        run = spec->run;
        runlen = strlen(run);
        step = spec->step;
        steplen = strlen(step);
        attempt = spec->attempt;
    } else if (e->val[EF_RUN] && e->val[EF_STEP] &&
               keys_valid_id(e->val[EF_RUN], e->len[EF_RUN]) &&
               keys_valid_id(e->val[EF_STEP], e->len[EF_STEP]) &&
               parse_attempt(e->val[EF_ATTEMPT], e->len[EF_ATTEMPT],
                             &attempt)) {
        run = e->val[EF_RUN];
        runlen = e->len[EF_RUN];
        step = e->val[EF_STEP];
        steplen = e->len[EF_STEP];
    }
    if (run != NULL && encode_simple_result(st, reason, &body, &bodylen) == 0) {
        snprintf(attempt_s, sizeof(attempt_s), "%" PRIu32, attempt);
        result_cmd(w, &cmds[n++], run, runlen, step, steplen, attempt_s, st,
                   spec != NULL ? spec->trace : NULL, body, bodylen);
    }
    const char *ackv[] = {"XACK", w->qkeys[e->qi], KEYS_GROUP_WORKERS, e->id};
    const char *delv[] = {"XDEL", w->qkeys[e->qi], e->id};
    for (int i = 0; i < 4; i++)
        cmd_adds(&cmds[n], ackv[i]);
    n++;
    for (int i = 0; i < 3; i++)
        cmd_adds(&cmds[n], delv[i]);
    n++;
    if (send_tx(w, cmds, n, NULL, NULL) == 0) {
        w->stats.rejected++;
        log_warn("job rejected", "queue", w->queues[e->qi], "entry", e->id,
                 "run", run, "status", wire_status_name(st), "reason", reason,
                 NULL);
    } else {
        /* Left pending: the reclaim finds it again. */
        log_warn("job rejection not sent", "queue", w->queues[e->qi], "entry",
                 e->id, "reason", reason, NULL);
    }
    weft_free(body);
}

static struct job *job_new(struct worker *w, const struct entry *e,
                           struct wire_job *spec)
{
    struct job *j = weft_calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->w = w;
    j->seq = ++w->next_seq;
    j->qi = e->qi;
    memcpy(j->id, e->id, sizeof(j->id));
    j->spec = *spec;
    memset(spec, 0, sizeof(*spec));
    j->state = JOB_WAITING;
    jlist_push(w, &w->backlog, j);
    return j;
}

/* Handles one entry and frees it. over_limit: a reclaimed entry past the
 * delivery limit. */
static void entry_handle(struct worker *w, struct entry *e, bool over_limit)
{
    char reason[WORKER_REASON_MAX];
    struct wire_job spec;
    struct weft_error err;
    const char *why = NULL;

    memset(&spec, 0, sizeof(spec));
    weft_error_clear(&err);
    reason[0] = '\0';
    if (e->deleted) {
        /* Nothing left to run or to copy: just clear the pending entry. */
        ack_entry(w, e->qi, e->id);
        goto out;
    }
    if (w->stopping) {
        goto out; /* no new work while draining: leave it pending */
    }
    if (e->junk != NULL)
        why = e->junk;
    else if (e->val[EF_BODY] == NULL)
        why = "missing field 'body'";
    else if (e->val[EF_SIG] == NULL)
        why = "missing field 'sig' (unsigned job)";
    else if (!hmac_verify_hex(&w->hmac, e->val[EF_BODY], e->len[EF_BODY],
                              e->val[EF_SIG], e->len[EF_SIG]))
        why = "bad signature";
    if (why != NULL) {
        entry_reject(w, e, NULL, why, WIRE_INVALID);
        goto out;
    }
    if (wire_job_decode(e->val[EF_BODY], e->len[EF_BODY], &spec, &err) != 0) {
        snprintf(reason, sizeof(reason), "undecodable body: %s", err.msg);
        printable(reason);
        entry_reject(w, e, NULL, reason, WIRE_INVALID);
        goto out;
    }
    if (!fields_agree(w, e, &spec, reason, sizeof(reason))) {
        entry_reject(w, e, &spec, reason, WIRE_INVALID);
        goto out;
    }
    if (over_limit) {
        /* The job is poison or its workers keep dying: it goes to the DLQ
         * and the attempt fails as a retryable error, so the step's retry
         * policy decides (ARCHITECTURE.md, "Jobs, results, delivery"). */
        entry_reject(w, e, &spec, "delivery limit exceeded", WIRE_ERROR);
        goto out;
    }
    if (job_new(w, e, &spec) == NULL)
        log_error("out of memory; job left pending", "entry", e->id, NULL);
out:
    wire_job_deinit(&spec);
    entry_free(e);
}

/* ---- jobs ------------------------------------------------------------ */

const struct wire_job *job_spec(const struct job *j)
{
    return &j->spec;
}

struct event_base *job_base(const struct job *j)
{
    return j->w->base;
}

const struct handler *job_handler(const struct job *j)
{
    return j->h;
}

struct rconn *job_redis(const struct job *j)
{
    return j->w->cmd;
}

const struct keys *job_keys(const struct job *j)
{
    return &j->w->keys;
}

void *job_data(const struct job *j)
{
    return j->data;
}

void job_set_data(struct job *j, void *data)
{
    j->data = data;
}

/* Forgets j. Unless it was reported or acknowledged, the entry stays
 * pending in Redis for a reclaim. */
static void job_free(struct job *j)
{
    struct worker *w = j->w;
    jlist_remove(w, j);
    if (j->timer != NULL)
        event_free(j->timer);
    wire_job_deinit(&j->spec);
    weft_free(j->report);
    weft_free(j);
}

static uint64_t job_timeout_ms(const struct job *j)
{
    uint64_t t = j->spec.timeout_ms;
    return t > WORKER_TIMEOUT_MAX_MS ? WORKER_TIMEOUT_MAX_MS : t;
}

/* The start transitions of the jobs a kick activates go out as one
 * batched FCALL (common/lua/lib.lua): KEYS are the five shared keys,
 * then each run's five keys; ARGV[2] is the array of plans; the reply is
 * the array of answers, 'ok' or why the job must not run. */
#define WORKER_START_BATCH 64

struct start_batch {
    struct worker *w;
    struct job *jobs[WORKER_START_BATCH];
    size_t n;
};

/* The shared keys, then five per job at most. */
#define START_KEYS_MAX (5 + 5 * WORKER_START_BATCH)

static void on_start_batch(struct rconn *c, redisReply *reply, void *ud);

/* Appends one start plan (start.lua: run, k, step, attempt, deadline
 * when there is one, qt when the job has a queue timeout) to the batch,
 * {"worker": ..., "plans": [...]}, opening it for the first; written
 * directly: a jansson tree per job and its dump were a fifth of the
 * worker's time. */
static int start_plan(struct buf *doc, const struct worker *w,
                      const struct job *j, int k, int64_t deadline)
{
    int rc = 0;
    if (doc->len == 0) {
        rc = buf_append_str(doc, "{\"worker\":");
        if (rc == 0)
            rc = jsondump_string(doc, w->name, strlen(w->name));
        if (rc == 0)
            rc = buf_append_str(doc, ",\"plans\":[");
    } else {
        rc = buf_append_char(doc, ',');
    }
    if (rc == 0)
        rc = buf_append_str(doc, "{\"run\":");
    if (rc == 0)
        rc = jsondump_string(doc, j->spec.run, strlen(j->spec.run));
    if (rc == 0)
        rc = buf_printf(doc, ",\"k\":%d,\"step\":", k);
    if (rc == 0)
        rc = jsondump_string(doc, j->spec.step, strlen(j->spec.step));
    if (rc == 0)
        rc = buf_printf(doc, ",\"attempt\":%" PRIu32, j->spec.attempt);
    if (rc == 0 && deadline > 0)
        rc = buf_printf(doc, ",\"deadline\":%" PRId64, deadline);
    if (rc == 0)
        rc = buf_append_str(doc,
                            j->spec.queue_timeout_ms > 0 ? ",\"qt\":1}" : "}");
    return rc;
}

/* Takes a slot for each job of b and sends their start transitions. */
static void start_send(struct start_batch *b)
{
    struct worker *w = b->w;
    static const enum keys_global shared[] = {
        KEYS_EVENTS, KEYS_RUNS, KEYS_DELAYED, KEYS_DEADLINES, KEYS_STATS};
    static const enum keys_run run_keys[] = {KEYS_RUN, KEYS_RUN_STEPS,
                                             KEYS_RUN_DEPS, KEYS_RUN_STATE,
                                             KEYS_RUN_HISTORY};
    char(*keys)[KEYS_MAX] = w->start_keys;
    const char *argv[START_KEYS_MAX + 2];
    int nkeys = 0;
    char now_s[24];
    int64_t now = now_ms();
    struct buf *doc = &w->start_doc;
    int rc = 0;

    buf_reset(doc);
    for (size_t i = 0; i < 5; i++) {
        keys_global(&w->keys, shared[i], keys[nkeys]);
        nkeys++;
    }
    int ks[WORKER_START_BATCH]; /* each job's first key (1-based) */
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        struct job *j = b->jobs[i];
        uint64_t timeout = job_timeout_ms(j);
        /* A run's keys go once: a job of a run already in the batch
         * shares them. */
        int k = 0;
        for (size_t e = 0; e < i && k == 0; e++)
            if (strcmp(b->jobs[e]->spec.run, j->spec.run) == 0)
                k = ks[e];
        if (k == 0) {
            k = nkeys + 1;
            for (int r = 0; r < 5; r++)
                keys_run(&w->keys, run_keys[r], j->spec.run, keys[nkeys++]);
        }
        ks[i] = k;
        rc = start_plan(doc, w, j, k,
                        timeout > 0
                            ? now + (int64_t)timeout + WORKER_DEADLINE_SLACK_MS
                            : 0);
    }
    if (rc == 0)
        rc = buf_append_str(doc, "]}");
    if (rc == 0) {
        for (int i = 0; i < nkeys; i++)
            argv[i] = keys[i];
        snprintf(now_s, sizeof(now_s), "%" PRId64, now_us());
        argv[nkeys] = now_s;
        argv[nkeys + 1] = doc->data;
        rc = rconn_eval(w->cmd, SCRIPT_START, on_start_batch, b, nkeys,
                        nkeys + 2, argv, NULL);
    }
    if (rc != 0) {
        log_warn("cannot send start; jobs left pending", "error",
                 weft_strerror(rc), NULL);
        for (size_t i = 0; i < b->n; i++)
            job_free(b->jobs[i]);
        weft_free(b);
    }
}

/* Moves j from the backlog to the active list and into batch b. */
static void job_activate(struct start_batch *b, struct job *j)
{
    struct worker *w = j->w;
    jlist_remove(w, j);
    jlist_push(w, &w->active, j);
    j->state = JOB_STARTING;
    b->jobs[b->n++] = j;
}

static void job_report(struct job *j, struct wire_result *r);

/* Reports a status and a message of our own (no handler output). */
static void job_fail(struct job *j, enum wire_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void job_fail(struct job *j, enum wire_status st, const char *fmt, ...)
{
    char msg[WORKER_REASON_MAX];
    struct wire_result r;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    memset(&r, 0, sizeof(r));
    r.status = st;
    r.message = weft_strdup(msg);
    job_report(j, &r);
}

static void request_cancel(struct job *j, enum wire_status why)
{
    if (j->state != JOB_RUNNING || j->cancelling)
        return;
    j->cancelling = true;
    j->stop = why;
    /* May call job_complete at once: j must not be used after this. */
    j->h->cancel(j);
}

static void on_job_timeout(evutil_socket_t fd, short what, void *ud)
{
    struct job *j = ud;
    struct worker *w = j->w;
    char ms[24];
    (void)fd;
    (void)what;
    snprintf(ms, sizeof(ms), "%" PRIu64, job_timeout_ms(j));
    log_info("job timed out", "run", j->spec.run, "step", j->spec.step,
             "timeout_ms", ms, NULL);
    request_cancel(j, WIRE_TIMEOUT);
    kick(w);
}

/* The start transition said 'ok': run the handler. */
static void job_run(struct job *j)
{
    struct worker *w = j->w;
    const struct handler *h = find_handler(w, j->spec.type);
    uint64_t timeout = job_timeout_ms(j);

    j->state = JOB_RUNNING;
    j->started_ms = now_ms();
    if (h == NULL) {
        job_fail(j, WIRE_FATAL, "no handler for step type '%s' on worker %s",
                 j->spec.type, w->name);
        return;
    }
    j->h = h;
    w->stats.started++;
    if (timeout > 0) {
        struct timeval tv = ms_tv(timeout);
        /* Timers count from the loop's cached clock, which may be many
         * ms old by now: the job would be cut short by that much. */
        event_base_update_cache_time(w->base);
        j->timer = evtimer_new(w->base, on_job_timeout, j);
        if (j->timer == NULL || evtimer_add(j->timer, &tv) != 0) {
            job_fail(j, WIRE_ERROR, "out of memory arming the timeout");
            return;
        }
    }
    log_debug("job started", "run", j->spec.run, "step", j->spec.step, "type",
              j->spec.type, NULL);
    int rc = h->start(j);
    /* j is still ours: a synchronous job_complete only sends the report
     * (the reply callback frees it later). */
    if (rc != 0 && j->state == JOB_RUNNING)
        job_fail(j, WIRE_ERROR, "handler '%s' could not start the job: %s",
                 h->type, weft_strerror(rc));
}

/* The start transition's answer for j: "ok", another word (stale), or
 * NULL when there was no usable answer (the job stays pending). */
static void start_answer(struct job *j, const char *answer, size_t len,
                         const char *error)
{
    struct worker *w = j->w;
    char text[256];

    if (answer == NULL || w->closing) {
        if (error && !w->closing)
            log_warn("start failed; job left pending", "run", j->spec.run,
                     "step", j->spec.step, "error", error, NULL);
        job_free(j); /* left pending: reclaimed after the visibility */
    } else if (len == 2 && memcmp(answer, "ok", 2) == 0) {
        if (j->abandoned)
            job_free(j);
        else
            job_run(j);
    } else {
        /* Skipped, cancelled, superseded or finished: never run it. */
        snprintf(text, sizeof(text), "%.*s", (int)(len < 200 ? len : 200),
                 answer);
        log_debug("stale job dropped", "run", j->spec.run, "step", j->spec.step,
                  "reason", text, NULL);
        w->stats.stale++;
        ack_entry(w, j->qi, j->id);
        job_free(j);
    }
}

static void on_start_batch(struct rconn *c, redisReply *reply, void *ud)
{
    struct start_batch *b = ud;
    struct worker *w = b->w;
    char text[256];
    json_t *answers = NULL;
    (void)c;

    if (reply != NULL && reply->type == REDIS_REPLY_STRING)
        answers = json_loadb(reply->str, reply->len, 0, NULL);
    reply_err_text(reply, text, sizeof(text));
    for (size_t i = 0; i < b->n; i++) {
        json_t *a = json_array_get(answers, i);
        start_answer(b->jobs[i], json_string_value(a), json_string_length(a),
                     text);
    }
    json_decref(answers);
    weft_free(b);
    kick(w);
}

/* Builds "<reason>" or "<reason>: <handler message>"; NULL on OOM. */
static char *stop_message(const struct job *j, const char *handler_msg)
{
    char reason[64];
    char *out;
    size_t n, m;

    if (j->stop == WIRE_TIMEOUT)
        snprintf(reason, sizeof(reason), "timed out after %" PRIu64 " ms",
                 job_timeout_ms(j));
    else
        snprintf(reason, sizeof(reason), "cancelled");
    if (handler_msg == NULL || handler_msg[0] == '\0')
        return weft_strdup(reason);
    n = strlen(reason);
    m = strlen(handler_msg);
    if (m > SIZE_MAX - n - 3)
        return weft_strdup(reason);
    out = weft_malloc(n + m + 3);
    if (out == NULL)
        return NULL;
    memcpy(out, reason, n);
    memcpy(out + n, ": ", 2);
    memcpy(out + n + 2, handler_msg, m + 1);
    return out;
}

void job_complete(struct job *j, struct wire_result *res)
{
    struct wire_result r = *res;
    memset(res, 0, sizeof(*res));

    if (j == NULL || j->state != JOB_RUNNING) {
        log_error("handler completed a job that is not running", NULL);
        wire_result_deinit(&r);
        return;
    }
    struct worker *w = j->w;
    if (j->timer != NULL)
        evtimer_del(j->timer);
    if (j->abandoned) {
        /* Shutdown: the entry stays pending for another worker. */
        wire_result_deinit(&r);
        job_free(j);
        kick(w);
        return;
    }
    if (j->cancelling) {
        char *msg = stop_message(j, r.message);
        weft_free(r.message);
        r.message = msg;
        r.status = j->stop;
    }
    job_report(j, &r);
}

/* Encodes r (taking its contents) and sends the report. */
static void job_report(struct job *j, struct wire_result *r)
{
    struct worker *w = j->w;
    char *buf = NULL;
    size_t len = 0;
    int rc;

    r->started_ms = j->started_ms > 0 ? j->started_ms : now_ms();
    r->finished_ms = now_ms();
    if (r->finished_ms < r->started_ms)
        r->finished_ms = r->started_ms; /* the clock stepped back */
    rc = wire_result_encode(r, &buf, &len);
    j->status = r->status;
    if (rc != 0) {
        /* A handler produced what the wire cannot carry (bad UTF-8, too
         * large, too deep): the step fails with the reason instead. */
        char msg[WORKER_REASON_MAX];
        snprintf(msg, sizeof(msg), "result could not be encoded: %s",
                 weft_strerror(rc));
        j->status = r->status == WIRE_SUCCESS ? WIRE_ERROR : r->status;
        rc = encode_simple_result(j->status, msg, &buf, &len);
    }
    wire_result_deinit(r);
    if (rc != 0) {
        log_error("cannot encode a result; job left pending", "entry", j->id,
                  NULL);
        job_free(j);
        kick(w);
        return;
    }
    j->report = buf;
    j->report_len = len;
    job_send_report(j);
}

/* Reports go out together: the jobs that complete in one pass of the
 * loop (a start batch of noop steps, say) share one MULTI with their
 * XADDs and one XACK and XDEL per queue, instead of a transaction each. */
#define WORKER_REPORT_BATCH 16

struct report_batch {
    struct worker *w;
    size_t n;
    struct job *jobs[WORKER_REPORT_BATCH];
};

static void on_report_reply(struct rconn *c, redisReply *reply, void *ud);

/* Sends the reports of jobs[0..n) (n <= WORKER_REPORT_BATCH) in one
 * MULTI/EXEC; a job whose report cannot go now waits for the connection
 * (JOB_REPORT_WAIT). */
static void reports_send(struct worker *w, struct job **jobs, size_t n)
{
    struct report_batch *b = weft_calloc(1, sizeof(*b));
    /* A result's XADD per job, then an XACK and an XDEL per queue. */
    struct cmd cmds[3 * WORKER_REPORT_BATCH];
    char attempts[WORKER_REPORT_BATCH][16];
    int nc = 0;

    memset(cmds, 0, sizeof(cmds));
    if (b != NULL && rconn_is_up(w->cmd)) {
        b->w = w;
        b->n = n;
        for (size_t i = 0; i < n; i++) {
            struct job *j = jobs[i];
            b->jobs[i] = j;
            snprintf(attempts[i], sizeof(attempts[i]), "%" PRIu32,
                     j->spec.attempt);
            result_cmd(w, &cmds[nc++], j->spec.run, strlen(j->spec.run),
                       j->spec.step, strlen(j->spec.step), attempts[i],
                       j->status, j->spec.trace, j->report, j->report_len);
        }
        /* One XACK and one XDEL per queue, for its jobs in this batch. */
        for (size_t i = 0; i < n; i++) {
            bool seen = false;
            for (size_t k = 0; k < i; k++)
                seen = seen || jobs[k]->qi == jobs[i]->qi;
            if (seen)
                continue;
            struct cmd *ack = &cmds[nc++], *del = &cmds[nc++];
            cmd_adds(ack, "XACK");
            cmd_adds(ack, w->qkeys[jobs[i]->qi]);
            cmd_adds(ack, KEYS_GROUP_WORKERS);
            cmd_adds(del, "XDEL");
            cmd_adds(del, w->qkeys[jobs[i]->qi]);
            for (size_t k = i; k < n; k++) {
                if (jobs[k]->qi == jobs[i]->qi) {
                    cmd_adds(ack, jobs[k]->id);
                    cmd_adds(del, jobs[k]->id);
                }
            }
        }
        if (send_tx(w, cmds, nc, on_report_reply, b) == 0) {
            for (size_t i = 0; i < n; i++)
                jobs[i]->state = JOB_REPORTING;
            return;
        }
    }
    weft_free(b);
    for (size_t i = 0; i < n; i++) {
        jobs[i]->state = JOB_REPORT_WAIT; /* sent again when cmd is up */
        log_warn("report delayed: Redis unavailable", "run", jobs[i]->spec.run,
                 "step", jobs[i]->spec.step, NULL);
    }
}

static void on_report_ev(evutil_socket_t fd, short what, void *ud)
{
    struct worker *w = ud;
    struct job **jobs = w->reports;
    size_t n = w->nreports;
    (void)fd;
    (void)what;
    w->reports = NULL;
    w->nreports = w->reports_cap = 0;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->abandoned) /* the grace period ended meanwhile */
            job_free(jobs[i]);
        else
            jobs[kept++] = jobs[i];
    }
    for (size_t i = 0; i < kept; i += WORKER_REPORT_BATCH)
        reports_send(w, jobs + i,
                     kept - i < WORKER_REPORT_BATCH ? kept - i
                                                    : WORKER_REPORT_BATCH);
    weft_free(jobs);
    kick(w);
}

/* Queues j's report for the batch sent when the loop comes round. */
static void job_send_report(struct job *j)
{
    struct worker *w = j->w;
    if (w->nreports == w->reports_cap) {
        size_t cap = w->reports_cap ? 2 * w->reports_cap : 16;
        struct job **r = weft_realloc(w->reports, cap * sizeof(*r));
        if (r == NULL) {
            reports_send(w, &j, 1); /* alone, at once */
            return;
        }
        w->reports = r;
        w->reports_cap = cap;
    }
    w->reports[w->nreports++] = j;
    j->state = JOB_REPORT_QUEUED;
    if (w->nreports == 1)
        event_active(w->report_ev, EV_TIMEOUT, 0);
}

static void count_result(struct worker *w, enum wire_status st)
{
    if (st == WIRE_SUCCESS) {
        w->stats.succeeded++;
        return;
    }
    w->stats.failed++;
    if (st == WIRE_TIMEOUT)
        w->stats.timed_out++;
    else if (st == WIRE_CANCELLED)
        w->stats.cancelled++;
}

/* The answer to one job's part of a report batch. */
static void report_answered(struct job *j, redisReply *reply)
{
    struct worker *w = j->w;
    char text[256];

    if (reply == NULL) {
        if (w->closing || j->abandoned) {
            job_free(j);
        } else {
            /* It may have run; a second result is harmless (finish is a
             * compare-and-set on the attempt), a lost one is not. */
            j->state = JOB_REPORT_WAIT;
        }
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        /* EXECABORT and the like: nothing ran. Leave the job pending
         * rather than retry at once into the same error. */
        reply_err_text(reply, text, sizeof(text));
        log_error("report failed; job left pending", "run", j->spec.run, "step",
                  j->spec.step, "error", text, NULL);
    } else {
        for (size_t i = 0; i < reply->elements; i++) {
            if (reply->element[i]->type == REDIS_REPLY_ERROR) {
                reply_err_text(reply->element[i], text, sizeof(text));
                log_error("report command failed", "run", j->spec.run, "step",
                          j->spec.step, "error", text, NULL);
            }
        }
        count_result(w, j->status);
        if (w->on_done != NULL)
            w->on_done(w->on_done_ud, &j->spec, j->status,
                       (double)(now_ms() - j->started_ms) / 1000.0);
        log_debug("job reported", "run", j->spec.run, "step", j->spec.step,
                  "status", wire_status_name(j->status), NULL);
    }
    job_free(j);
}

static void on_report_reply(struct rconn *c, redisReply *reply, void *ud)
{
    struct report_batch *b = ud;
    struct worker *w = b->w;
    (void)c;
    for (size_t i = 0; i < b->n; i++)
        report_answered(b->jobs[i], reply);
    weft_free(b);
    if (reply != NULL)
        kick(w);
}

/* ---- reading, reclaiming, heartbeats, cancel polls ------------------- */

static void maybe_read(struct worker *w);

static void on_group_reply(struct rconn *c, redisReply *reply, void *ud)
{
    struct worker *w = ud;
    char text[256];
    (void)c;
    if (reply == NULL || w->closing)
        return; /* recreated on the next connect */
    if (reply->type == REDIS_REPLY_ERROR &&
        !reply_err_prefix(reply, "BUSYGROUP")) {
        reply_err_text(reply, text, sizeof(text));
        log_error("cannot create consumer group", "error", text, NULL);
    }
    if (w->groups_pending > 0 && --w->groups_pending == 0) {
        w->groups_ready = true;
        maybe_read(w);
    }
}

/* XGROUP CREATE for every queue on the read connection; the last reply
 * issues the first read, so it can never race to NOGROUP. The group
 * starts at 0, not $: a queue holds only jobs not yet done (acknowledged
 * ones are deleted), so jobs dispatched before the first worker ever
 * started, or before a lost queue was re-created, must still be read. */
static void create_groups(struct worker *w)
{
    w->groups_ready = false;
    w->groups_pending = 0;
    for (size_t i = 0; i < w->nq; i++) {
        const char *argv[] = {"XGROUP",           "CREATE", w->qkeys[i],
                              KEYS_GROUP_WORKERS, "0",      "MKSTREAM"};
        if (rconn_argv(w->rd, on_group_reply, w, 6, argv, NULL) == 0)
            w->groups_pending++;
    }
}

static void on_read_reply(struct rconn *c, redisReply *reply, void *ud)
{
    struct worker *w = ud;
    char text[256];
    struct timeval tv = ms_tv(WORKER_READ_RETRY_MS);
    (void)c;

    w->reading = false;
    if (reply == NULL || w->closing)
        return; /* the state callback reads again on reconnect */
    if (reply->type == REDIS_REPLY_ERROR) {
        reply_err_text(reply, text, sizeof(text));
        log_warn("read failed", "error", text, NULL);
        if (reply_err_prefix(reply, "NOGROUP") && w->rd != NULL)
            create_groups(w); /* a queue was deleted: make it again */
        else
            evtimer_add(w->read_retry_ev, &tv);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t s = 0; s < reply->elements; s++) {
            const redisReply *st = reply->element[s];
            int qi = -1;
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
                !reply_is_str(st->element[0]) ||
                st->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            for (size_t q = 0; q < w->nq; q++) {
                if (reply_str_eq(st->element[0], w->qkeys[q]))
                    qi = (int)q;
            }
            if (qi < 0)
                continue;
            const redisReply *ents = st->element[1];
            for (size_t i = 0; i < ents->elements; i++) {
                struct entry *e =
                    entry_from_reply(w, (unsigned)qi, ents->element[i]);
                w->stats.claimed++;
                if (e == NULL) {
                    log_error("unusable stream entry skipped", "queue",
                              w->queues[qi], NULL);
                    continue;
                }
                entry_handle(w, e, false);
            }
        }
    }
    kick(w);
}

static void on_read_retry(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    maybe_read(ud);
}

static void reclaim_next(struct worker *w);

static void maybe_read(struct worker *w)
{
    const char *argv[9 + 2 * WORKER_QUEUES_MAX];
    char count[16], block[16];
    int argc = 0;
    uint32_t n = free_slots(w);

    /* Orphaned jobs go first: a reclaim round that found every slot
     * busy takes the next free slot before new work does, or a steadily
     * busy worker would leave a dead worker's jobs waiting until the
     * queues run dry. */
    if (w->reclaim_wanted && n > 0 && !w->reclaiming && !w->stopping &&
        !w->closing && rconn_is_up(w->cmd)) {
        w->reclaim_wanted = false;
        w->reclaiming = true;
        w->reclaim_qi = 0;
        reclaim_next(w);
        if (w->reclaiming)
            return; /* its reply kicks the next read */
    }
    if (w->reading || !w->groups_ready || w->stopping || w->closing ||
        w->rd == NULL || !rconn_is_up(w->rd) || n == 0 ||
        evtimer_pending(w->read_retry_ev, NULL))
        return;
    snprintf(count, sizeof(count), "%" PRIu32, n);
    snprintf(block, sizeof(block), "%d", WORKER_BLOCK_MS);
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = KEYS_GROUP_WORKERS;
    argv[argc++] = w->name;
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    argv[argc++] = "BLOCK";
    argv[argc++] = block;
    argv[argc++] = "STREAMS";
    for (size_t i = 0; i < w->nq; i++)
        argv[argc++] = w->qkeys[i];
    for (size_t i = 0; i < w->nq; i++)
        argv[argc++] = ">";
    if (rconn_argv(w->rd, on_read_reply, w, argc, argv, NULL) == 0)
        w->reading = true;
}

static void on_pending_reply(struct rconn *c, redisReply *reply, void *ud)
{
    struct entry *e = ud;
    struct worker *w = e->w;
    (void)c;

    w->checks--;
    if (reply == NULL || w->closing || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements == 0) {
        /* Lost connection, or no longer pending (acknowledged meanwhile):
         * not ours to run. */
        entry_free(e);
    } else {
        const redisReply *p = reply->element[0];
        long long delivered = 0;
        if (p->type == REDIS_REPLY_ARRAY && p->elements >= 4 &&
            p->element[3]->type == REDIS_REPLY_INTEGER)
            delivered = p->element[3]->integer;
        entry_handle(w, e, delivered > (long long)w->delivery_limit);
    }
    if (!w->closing)
        kick(w);
}

static void on_reclaim_reply(struct rconn *c, redisReply *reply, void *ud)
{
    struct worker *w = ud;
    char text[256];
    unsigned qi = (unsigned)w->reclaim_qi++;
    (void)c;

    if (reply == NULL || w->closing) {
        w->reclaiming = false;
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        reply_err_text(reply, text, sizeof(text));
        log_warn("reclaim failed", "queue", w->queues[qi], "error", text, NULL);
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
               reply->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *ents = reply->element[1];
        for (size_t i = 0; i < ents->elements; i++) {
            struct entry *e = entry_from_reply(w, qi, ents->element[i]);
            if (e == NULL)
                continue;
            if (holds_entry(w, qi, e->id)) {
                entry_free(e); /* ours and alive: the heartbeat lagged */
                continue;
            }
            w->stats.claimed++;
            w->stats.reclaimed++;
            log_info("job reclaimed", "queue", w->queues[qi], "entry", e->id,
                     NULL);
            if (e->deleted) {
                entry_handle(w, e, false);
                continue;
            }
            const char *argv[] = {"XPENDING", w->qkeys[qi], KEYS_GROUP_WORKERS,
                                  e->id,      e->id,        "1"};
            if (rconn_argv(w->cmd, on_pending_reply, e, 6, argv, NULL) != 0) {
                entry_free(e);
                continue;
            }
            w->checks++;
        }
    }
    reclaim_next(w);
    /* A round maybe_read started held back the read: the round is over,
     * so read now (on_pending_reply kicks too, but a round that found
     * nothing sends no XPENDING). */
    if (!w->reclaiming)
        kick(w);
}

/* Sends XAUTOCLAIM for the next queue of this round, while slots are
 * free; one queue at a time so each asks for what is free then. */
static void reclaim_next(struct worker *w)
{
    char count[16], idle[16];

    while (w->reclaim_qi < w->nq && !w->stopping && !w->closing) {
        uint32_t n = free_slots(w);
        if (n == 0) {
            w->reclaim_wanted = true; /* maybe_read runs it when a slot frees */
            break;
        }
        snprintf(count, sizeof(count), "%" PRIu32, n);
        snprintf(idle, sizeof(idle), "%" PRIu32, w->visibility_ms);
        const char *argv[] = {"XAUTOCLAIM",
                              w->qkeys[w->reclaim_qi],
                              KEYS_GROUP_WORKERS,
                              w->name,
                              idle,
                              "0-0",
                              "COUNT",
                              count};
        if (rconn_argv(w->cmd, on_reclaim_reply, w, 8, argv, NULL) == 0)
            return;
        break;
    }
    w->reclaiming = false;
}

static void on_reclaim_timer(evutil_socket_t fd, short what, void *ud)
{
    struct worker *w = ud;
    (void)fd;
    (void)what;
    if (w->reclaiming || w->stopping || !rconn_is_up(w->cmd))
        return;
    w->reclaiming = true;
    w->reclaim_qi = 0;
    reclaim_next(w);
}

/* XCLAIM ... JUSTID of every held entry of queue qi: resets their idle
 * time so that no other worker reclaims a job that is alive here. */
static void heartbeat_queue(struct worker *w, unsigned qi)
{
    const struct jlist *lists[2] = {&w->active, &w->backlog};
    size_t n = 0, argc = 0;
    const char **argv;

    for (int l = 0; l < 2; l++) {
        for (const struct job *j = lists[l]->head; j != NULL; j = j->next)
            n += j->qi == qi;
    }
    if (n == 0 || n > (size_t)INT32_MAX - 6)
        return;
    argv = weft_malloc((n + 6) * sizeof(*argv));
    if (argv == NULL)
        return; /* the next beat tries again */
    argv[argc++] = "XCLAIM";
    argv[argc++] = w->qkeys[qi];
    argv[argc++] = KEYS_GROUP_WORKERS;
    argv[argc++] = w->name;
    argv[argc++] = "0";
    for (int l = 0; l < 2; l++) {
        for (const struct job *j = lists[l]->head; j != NULL; j = j->next) {
            if (j->qi == qi)
                argv[argc++] = j->id;
        }
    }
    argv[argc++] = "JUSTID";
    rconn_argv(w->cmd, NULL, NULL, (int)argc, argv, NULL);
    weft_free(argv);
}

static void on_beat_timer(evutil_socket_t fd, short what, void *ud)
{
    struct worker *w = ud;
    (void)fd;
    (void)what;
    if (!rconn_is_up(w->cmd))
        return;
    for (size_t i = 0; i < w->nq; i++)
        heartbeat_queue(w, (unsigned)i);
}

static struct job *find_running(struct worker *w, uint64_t seq)
{
    for (struct job *j = w->active.head; j != NULL; j = j->next) {
        if (j->seq == seq)
            return j->state == JOB_RUNNING ? j : NULL;
    }
    return NULL;
}

static void on_poll_reply(struct rconn *c, redisReply *reply, void *ud)
{
    struct pollref *ref = ud;
    struct worker *w = ref->w;
    struct job *j;
    char status[32];
    uint32_t attempt = 0;
    (void)c;

    j = w->closing ? NULL : find_running(w, ref->seq);
    weft_free(ref);
    if (j == NULL || j->cancelling || reply == NULL ||
        reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
        return;
    const redisReply *st = reply->element[0], *at = reply->element[1];
    if (reply_str_eq(st, "running") && reply_is_str(at) &&
        parse_attempt(at->str, (size_t)at->len, &attempt) &&
        attempt == j->spec.attempt)
        return;
    snprintf(status, sizeof(status), "%.*s",
             reply_is_str(st) ? (int)(st->len < 20 ? st->len : 20) : 7,
             reply_is_str(st) ? st->str : "missing");
    log_info("job cancelled: step moved on", "run", j->spec.run, "step",
             j->spec.step, "step_status", status, NULL);
    request_cancel(j, WIRE_CANCELLED);
    kick(w);
}

static void on_poll_timer(evutil_socket_t fd, short what, void *ud)
{
    struct worker *w = ud;
    char key[KEYS_MAX];
    char field[KEYS_ID_MAX + 16];
    (void)fd;
    (void)what;

    if (!rconn_is_up(w->cmd))
        return;
    for (struct job *j = w->active.head; j != NULL; j = j->next) {
        if (j->state != JOB_RUNNING || j->cancelling)
            continue;
        struct pollref *ref = weft_malloc(sizeof(*ref));
        if (ref == NULL)
            return;
        ref->w = w;
        ref->seq = j->seq;
        keys_run(&w->keys, KEYS_RUN_STEPS, j->spec.run, key);
        snprintf(field, sizeof(field), "%s:attempt", j->spec.step);
        const char *argv[] = {"HMGET", key, j->spec.step, field};
        if (rconn_argv(w->cmd, on_poll_reply, ref, 4, argv, NULL) != 0)
            weft_free(ref);
    }
}

static void on_cancel_message(struct rconn *c, const char *payload, size_t len,
                              void *ud)
{
    (void)c;
    worker_cancel(ud, payload, len);
}

void worker_cancel(struct worker *w, const char *member, size_t len)
{
    const char *bar1, *bar2;
    uint32_t attempt;

    if (w == NULL || member == NULL)
        return;
    bar1 = memchr(member, '|', len);
    if (bar1 == NULL)
        return;
    bar2 = memchr(bar1 + 1, '|', len - (size_t)(bar1 + 1 - member));
    if (bar2 == NULL ||
        !parse_attempt(bar2 + 1, len - (size_t)(bar2 + 1 - member), &attempt))
        return;
    size_t runlen = (size_t)(bar1 - member);
    size_t steplen = (size_t)(bar2 - bar1 - 1);
    for (struct job *j = w->active.head; j != NULL; j = j->next) {
        if (j->state == JOB_RUNNING && j->spec.attempt == attempt &&
            strlen(j->spec.run) == runlen &&
            memcmp(j->spec.run, member, runlen) == 0 &&
            strlen(j->spec.step) == steplen &&
            memcmp(j->spec.step, bar1 + 1, steplen) == 0) {
            log_info("job cancelled", "run", j->spec.run, "step", j->spec.step,
                     NULL);
            request_cancel(j, WIRE_CANCELLED);
            break;
        }
    }
    kick(w);
}

/* ---- connections, draining ------------------------------------------- */

static void on_rd_state(struct rconn *c, bool up, void *ud)
{
    struct worker *w = ud;
    (void)c;
    if (up) {
        create_groups(w);
    } else {
        w->groups_ready = false;
        w->reading = false;
    }
}

static void on_cmd_state(struct rconn *c, bool up, void *ud)
{
    struct worker *w = ud;
    (void)c;
    if (!up)
        return;
    for (struct job *j = w->active.head; j != NULL; j = j->next) {
        if (j->state == JOB_REPORT_WAIT)
            job_send_report(j);
    }
    kick(w);
}

static void check_drained(struct worker *w)
{
    if (!w->stopping || w->stopped || w->closing)
        return;
    if (w->active.n + w->backlog.n + w->checks > 0)
        return;
    w->stopped = true;
    evtimer_del(w->grace_ev);
    log_info("worker drained", NULL);
    if (w->stop_cb != NULL)
        w->stop_cb(w->stop_ud);
}

/* After anything that frees a slot or adds work: start waiting jobs, read
 * more, and see whether a drain is complete. Not re-entered. */
static void kick(struct worker *w)
{
    if (w->closing || w->in_kick)
        return;
    w->in_kick = true;
    while (w->backlog.head != NULL && w->active.n < w->concurrency &&
           !w->abandoning && rconn_is_up(w->cmd)) {
        struct start_batch *b = weft_calloc(1, sizeof(*b));
        if (b == NULL)
            break;
        b->w = w;
        while (b->n < WORKER_START_BATCH && w->backlog.head != NULL &&
               w->active.n < w->concurrency)
            job_activate(b, w->backlog.head);
        start_send(b);
    }
    maybe_read(w);
    w->in_kick = false;
    check_drained(w);
}

static void on_drain_check(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    kick(ud);
}

/* The grace period is over: jobs still held are cancelled and left
 * pending; handlers get WORKER_ABANDON_WAIT_MS to acknowledge. */
static void on_grace(evutil_socket_t fd, short what, void *ud)
{
    struct worker *w = ud;
    struct job *j, *next;
    struct timeval tv = ms_tv(WORKER_ABANDON_WAIT_MS);
    char n[16];
    (void)fd;
    (void)what;

    if (w->stopped)
        return;
    if (w->abandoning) {
        /* Second firing: handlers did not complete in time. */
        log_warn("handlers did not stop; exiting anyway", NULL);
        w->stopped = true;
        if (w->stop_cb != NULL)
            w->stop_cb(w->stop_ud);
        return;
    }
    w->abandoning = true;
    snprintf(n, sizeof(n), "%" PRIu32, w->active.n + w->backlog.n);
    log_warn("grace period over; leaving jobs pending", "jobs", n, NULL);
    while (w->backlog.head != NULL)
        job_free(w->backlog.head);
    for (j = w->active.head; j != NULL; j = next) {
        next = j->next;
        j->abandoned = true;
        if (j->state == JOB_REPORT_WAIT) {
            job_free(j);
        } else if (j->state == JOB_RUNNING) {
            if (j->cancelling) {
                continue; /* already asked; job_complete will free it */
            }
            /* job_complete frees j (abandoned), possibly right here;
             * next was saved and is not touched by it. */
            j->cancelling = true;
            j->stop = WIRE_CANCELLED;
            j->h->cancel(j);
        }
    }
    /* Completions above may have finished the drain already. */
    if (!w->stopped)
        evtimer_add(w->grace_ev, &tv);
    kick(w);
}

void worker_stop(struct worker *w, uint32_t grace_ms, worker_stopped_cb cb,
                 void *ud)
{
    struct timeval zero = {0, 0};
    struct timeval tv = ms_tv(grace_ms);
    struct rconn *rd;
    char n[16];

    if (w == NULL || w->stopping)
        return;
    w->stopping = true;
    w->stop_cb = cb;
    w->stop_ud = ud;
    event_del(w->reclaim_ev);
    evtimer_del(w->read_retry_ev);
    /* Closing the read connection unblocks Redis' side: a blocked read
     * claims nothing. Its pending callback runs now with NULL. */
    rd = w->rd;
    w->rd = NULL;
    rconn_free(rd);
    snprintf(n, sizeof(n), "%" PRIu32, w->active.n + w->backlog.n);
    log_info("draining", "jobs", n, NULL);
    evtimer_add(w->grace_ev, &tv);
    evtimer_add(w->drain_ev, &zero);
}

bool worker_ready(const struct worker *w)
{
    return !w->stopping && rconn_is_up(w->rd) && rconn_is_up(w->cmd) &&
           w->groups_ready;
}

const struct worker_stats *worker_stats(const struct worker *w)
{
    return &w->stats;
}

/* ---- creation --------------------------------------------------------- */

static int check_config(const struct worker_config *cfg, struct weft_error *err)
{
    if (cfg->url == NULL || cfg->keys == NULL || cfg->hmac == NULL)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "redis url, keys and signing key are required");
    if (cfg->nqueues < 1 || cfg->nqueues > WORKER_QUEUES_MAX ||
        cfg->queues == NULL)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "queues: between 1 and %d required",
                              WORKER_QUEUES_MAX);
    for (size_t i = 0; i < cfg->nqueues; i++) {
        const char *q = cfg->queues[i];
        if (q == NULL || !keys_valid_id(q, strnlen(q, KEYS_ID_MAX + 1)))
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "queue name '%.*s' is not 1-%d characters "
                                  "of [A-Za-z0-9_.-]",
                                  64, q ? q : "", KEYS_ID_MAX);
        for (size_t k = 0; k < i; k++) {
            if (strcmp(cfg->queues[k], q) == 0)
                return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                      "queue '%s' listed twice", q);
        }
    }
    size_t nl = cfg->name ? strnlen(cfg->name, WORKER_NAME_MAX + 1) : 0;
    if (nl == 0 || nl > WORKER_NAME_MAX)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "name: 1 to %d characters required",
                              WORKER_NAME_MAX);
    for (size_t i = 0; i < nl; i++) {
        unsigned char ch = (unsigned char)cfg->name[i];
        if (ch <= ' ' || ch >= 0x7f)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "name: printable ASCII without spaces");
    }
    if (cfg->concurrency < 1 || cfg->concurrency > WORKER_CONCURRENCY_MAX)
        return weft_error_set(err, WEFT_EINVAL, 0, 0, "concurrency: 1 to %d",
                              WORKER_CONCURRENCY_MAX);
    if (cfg->visibility_ms < WORKER_VISIBILITY_MIN_MS ||
        cfg->visibility_ms > WORKER_VISIBILITY_MAX_MS)
        return weft_error_set(err, WEFT_EINVAL, 0, 0, "visibility: %d to %u ms",
                              WORKER_VISIBILITY_MIN_MS,
                              WORKER_VISIBILITY_MAX_MS);
    if (cfg->delivery_limit < 1 ||
        cfg->delivery_limit > WORKER_DELIVERY_LIMIT_MAX)
        return weft_error_set(err, WEFT_EINVAL, 0, 0, "delivery limit: 1 to %d",
                              WORKER_DELIVERY_LIMIT_MAX);
    return 0;
}

struct worker *worker_new(struct event_base *base,
                          const struct worker_config *cfg,
                          struct weft_error *err)
{
    struct worker *w;
    char label[WORKER_NAME_MAX + 16];
    struct timeval reclaim_tv, beat_tv, poll_tv;

    if (base == NULL || cfg == NULL) {
        weft_error_set(err, WEFT_EINVAL, 0, 0, "no loop or configuration");
        return NULL;
    }
    if (check_config(cfg, err) != 0)
        return NULL;
    w = weft_calloc(1, sizeof(*w));
    if (w == NULL)
        goto oom;
    w->base = base;
    w->keys = *cfg->keys;
    w->hmac = *cfg->hmac;
    memcpy(w->name, cfg->name, strlen(cfg->name) + 1);
    w->concurrency = cfg->concurrency;
    w->visibility_ms = cfg->visibility_ms;
    w->delivery_limit = cfg->delivery_limit;
    w->handlers = cfg->handlers != NULL ? cfg->handlers : handler_table;
    w->on_done = cfg->on_done;
    w->on_done_ud = cfg->on_done_ud;
    keys_global(&w->keys, KEYS_EVENTS, w->events_key);
    keys_global(&w->keys, KEYS_DLQ, w->dlq_key);
    keys_global(&w->keys, KEYS_RUNS, w->runs_key);
    keys_global(&w->keys, KEYS_DELAYED, w->delayed_key);
    keys_global(&w->keys, KEYS_DEADLINES, w->deadlines_key);
    for (size_t i = 0; i < cfg->nqueues; i++) {
        char key[KEYS_MAX];
        keys_queue(&w->keys, cfg->queues[i], key);
        w->queues[i] = weft_strdup(cfg->queues[i]);
        w->qkeys[i] = weft_strdup(key);
        w->nq++;
        if (w->queues[i] == NULL || w->qkeys[i] == NULL)
            goto oom;
    }
    w->read_retry_ev = evtimer_new(base, on_read_retry, w);
    w->reclaim_ev = event_new(base, -1, EV_PERSIST, on_reclaim_timer, w);
    w->beat_ev = event_new(base, -1, EV_PERSIST, on_beat_timer, w);
    w->poll_ev = event_new(base, -1, EV_PERSIST, on_poll_timer, w);
    w->grace_ev = evtimer_new(base, on_grace, w);
    w->drain_ev = evtimer_new(base, on_drain_check, w);
    w->report_ev = evtimer_new(base, on_report_ev, w);
    w->start_keys = weft_malloc(sizeof(*w->start_keys) * START_KEYS_MAX);
    buf_init(&w->start_doc, SIZE_MAX - 1);
    if (!w->read_retry_ev || !w->reclaim_ev || !w->beat_ev || !w->poll_ev ||
        !w->grace_ev || !w->drain_ev || !w->report_ev || !w->start_keys)
        goto oom;
    snprintf(label, sizeof(label), "%s:read", w->name);
    w->rd = rconn_new(base, cfg->url, label, on_rd_state, w);
    snprintf(label, sizeof(label), "%s:cmd", w->name);
    w->cmd = rconn_new(base, cfg->url, label, on_cmd_state, w);
    snprintf(label, sizeof(label), "%s:cancel", w->name);
    w->sub = rconn_new(base, cfg->url, label, NULL, NULL);
    if (w->rd == NULL || w->cmd == NULL || w->sub == NULL)
        goto oom;
    char chan[KEYS_MAX];
    keys_global(&w->keys, KEYS_CANCEL, chan);
    if (rconn_subscribe(w->sub, chan, on_cancel_message, w) != 0)
        goto oom;
    reclaim_tv = ms_tv(w->visibility_ms / 4);
    beat_tv = ms_tv(w->visibility_ms / 3);
    poll_tv = ms_tv(WORKER_CANCEL_POLL_MS);
    event_add(w->reclaim_ev, &reclaim_tv);
    event_add(w->beat_ev, &beat_tv);
    event_add(w->poll_ev, &poll_tv);
    return w;
oom:
    worker_free(w);
    weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
    return NULL;
}

static void free_event(struct event *ev)
{
    if (ev != NULL)
        event_free(ev);
}

void worker_free(struct worker *w)
{
    if (w == NULL)
        return;
    w->closing = true;
    /* Owed replies arrive now with NULL and free their jobs and refs. */
    rconn_free(w->rd);
    rconn_free(w->cmd);
    rconn_free(w->sub);
    w->rd = w->cmd = NULL;
    /* Queued reports are never sent: their jobs are freed below. */
    weft_free(w->reports);
    w->reports = NULL;
    w->nreports = 0;
    while (w->backlog.head != NULL)
        job_free(w->backlog.head);
    while (w->active.head != NULL) {
        struct job *j = w->active.head;
        if (j->state == JOB_RUNNING && !j->cancelling) {
            j->abandoned = true;
            j->cancelling = true;
            j->stop = WIRE_CANCELLED;
            j->h->cancel(j);
        }
        if (w->active.head == j)
            job_free(j); /* the handler did not complete it: forget it */
    }
    free_event(w->read_retry_ev);
    free_event(w->reclaim_ev);
    free_event(w->beat_ev);
    free_event(w->poll_ev);
    free_event(w->grace_ev);
    free_event(w->drain_ev);
    free_event(w->report_ev);
    weft_free(w->start_keys);
    buf_deinit(&w->start_doc);
    for (size_t i = 0; i < w->nq; i++) {
        weft_free(w->queues[i]);
        weft_free(w->qkeys[i]);
    }
    /* The key is a secret: do not leave it in freed memory. */
    volatile unsigned char *p = w->hmac.bytes;
    for (size_t i = 0; i < sizeof(w->hmac.bytes); i++)
        p[i] = 0;
    weft_free(w);
}
