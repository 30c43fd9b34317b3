/* sched.c - the scheduler's loop: read messages, apply transitions.
 *
 * Each stream entry becomes a `struct work` that moves through a short
 * chain of asynchronous steps on the command connection: learn the run
 * (cached header + definition), fetch the run's state when a condition or
 * template needs it, build the plan (plan.c), FCALL the transition, and
 * spawn follow-up work for the steps the script reports ready. Many works
 * are in flight at once, so their commands are pipelined on one
 * connection; the blocking XREADGROUP has its own.
 *
 * Nothing here is authoritative: the scripts compare-and-set, so a work
 * applied twice (after a crash, by two replicas) changes nothing twice.
 */
#include "sched.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "alloc.h"
#include "dlq.h"
#include "log.h"
#include "num.h"
#include "plan.h"
#include "rconn.h"
#include "routes.h"
#include "strmap.h"
#include "wire.h"

/* Run headers cached; beyond this the least recently used are dropped
 * (they are re-read from Redis on demand). */
#define SCHED_RUNCACHE_MAX 20000
/* Definitions cached by digest; each is a parsed workflow. */
#define SCHED_DEFCACHE_MAX 256
/* How often due retry timers are looked for, and how many per call. */
#define SCHED_TIMER_MS    50
#define SCHED_TIMER_BATCH 500
/* How often other schedulers' stuck messages are reclaimed, and
 * acknowledged entries trimmed. */
#define SCHED_RECLAIM_MS 1000
/* The run index is swept every this many reclaim ticks, this many ids at a
 * time (a text argument). */
#define SCHED_JANITOR_TICKS 10
#define SCHED_JANITOR_BATCH "500"
/* Workflow files read from --workflows are bounded like any YAML. */
#define SCHED_BLOCK_MS 2000

enum work_kind {
    WORK_TASK,
    WORK_RESULT,
    WORK_READY,
    WORK_CANCEL,
    WORK_RETRY,   /* `retry`: the run runs again */
    WORK_CONTROL, /* `resolve`, `approve`: a person answers a step */
};

struct defent {
    char *digest;
    struct wf *wf;
    unsigned refs;
};

struct runent {
    struct sched *s;
    struct runinfo ri;
    struct defent *def;
    unsigned refs;
    int loading;           /* HMGET in flight */
    struct work **waiters; /* works waiting for the load */
    size_t nwaiters;
    struct runent *lru_prev, *lru_next; /* most recent at head */
};

struct work {
    struct sched *s;
    enum work_kind kind;
    int counted;  /* came from a stream read: counts as in flight */
    char *stream; /* "tasks" or "events" (for acks on failure) */
    char *entry;  /* stream entry id */
    char *run, *step;
    uint32_t attempt;
    char *task, *digest, *workflow, *type; /* WORK_TASK */
    char *body;                            /* WORK_RESULT msgpack */
    size_t bodylen;
    char *reason;  /* WORK_CANCEL */
    char *trace;   /* the producer's traceparent, if any: a task's, or a
                      result's (the job it answers) */
    char *done_us; /* a result: when its worker reported (its clock, us) */
    struct runent *re;
    json_t *state, *extra; /* fetched for evaluation */
    int marked;            /* entry is registered in s->marks */
    int answered;          /* a script answered for its transition */
    int deadline;          /* a `timeout` event: the step's deadline passed
                              (1), or its queue timeout (2) */
    int expire;            /* WORK_CANCEL: the workflow's timeout passed */
    int timed_out;         /* the result being applied is a timeout */
    char *timer;           /* a `timeout` event's kind: NULL, queue, run */
    char *blocked;         /* WORK_READY: the open circuit breaker that
                              fails the step (on_breaker_open: fail) */
    uint32_t from;         /* WORK_READY: the part of a big list's opening
                              (a parallel group's, or the run's top level)
                              that starts at this step (0: none) */
    /* WORK_RETRY and WORK_CONTROL: the event's fields (docs/protocol.md) */
    enum plan_control_kind ctl;
    char *action, *by, *comment, *set;
    int64_t seq;    /* retry: the run's retry count the request saw; -1 */
    json_t *snap;   /* retry: the run's steps hash, as read */
    char *finished; /* retry: the run's `finished`, as read (NULL: none) */
    int64_t seen;   /* retry: the run's `retries`, as read */
    int snapped;    /* retry: the header reply arrived */
};

/* Transitions that become ready in one pass of the loop go out together:
 * one FCALL per transition carries them all (common/lua/lib.lua), so the
 * fixed cost of a call and of a round trip is shared. A batch is
 * sent when the loop has run every pending callback, or earlier when it
 * reaches these sizes. Past a few dozen transitions a batch saves little
 * and holds Redis, and with it every worker, for longer: 20,000
 * independent runs went about 20% faster with 64 than with 256. */
#define SCHED_BATCH_MAX    64
#define SCHED_BATCH_BODIES 512

/* A ready mark reaches a scheduler twice: in the reply of the script
 * that made it and from the stream. The two come over two connections
 * in either order, and the second can come after the first is applied
 * (a read served before the transition deleted the entry). The marks of
 * the last answered transitions are kept to drop such late copies. */
#define SCHED_RECENT_MARKS 1024

struct batch {
    struct plan plan;
    struct work **works;
    size_t n, cap;
};

struct sched {
    struct event_base *base;
    struct sched_config cfg;
    char *name;
    char *workflows;
    struct rconn *cmd, *rd;
    int groups_ready; /* XGROUP CREATE done on this connection */
    int reading;      /* an XREADGROUP is outstanding */
    int draining;
    uint32_t inflight;
    struct event *timer, *reclaim;
    struct strmap defs, runs;
    struct strmap marks;  /* ready marks being handled (from a script
                             reply or the stream) */
    struct strmap recent; /* -> recent_ring: answered marks */
    char *recent_ring[SCHED_RECENT_MARKS];
    size_t recent_next;
    struct batch batches[SCRIPT_COUNT]; /* transitions waiting to be sent */
    struct event *flush_ev;
    int flush_pending;
    unsigned long ticks; /* reclaim timer ticks */
    size_t nruns;
    struct runent *lru_head, *lru_tail;
    struct sched_stats stats;
    char k_tasks[KEYS_MAX], k_events[KEYS_MAX], k_delayed[KEYS_MAX],
        k_deadlines[KEYS_MAX], k_dlq[KEYS_MAX];
    void (*drained_cb)(void *);
    void *drained_ud;
    struct event *drain_timer;
};

static void read_more(struct sched *s);
static void work_run(struct work *w);
static void work_done(struct work *w);

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- definitions ---------------------------------------------------- */

static void def_unref(struct sched *s, struct defent *d)
{
    if (d == NULL || --d->refs > 0)
        return;
    /* Kept while the cache has room: definitions are shared by runs. */
    if (s->defs.count <= SCHED_DEFCACHE_MAX)
        return;
    strmap_del(&s->defs, d->digest, strlen(d->digest));
    wf_free(d->wf);
    weft_free(d->digest);
    weft_free(d);
}

/* Takes ownership of wf. Returns the entry with a reference held. */
static struct defent *def_put(struct sched *s, struct wf *wf)
{
    struct defent *d = strmap_get(&s->defs, wf->digest, strlen(wf->digest));
    if (d) {
        wf_free(wf);
        d->refs++;
        return d;
    }
    d = weft_calloc(1, sizeof(*d));
    if (d == NULL || (d->digest = weft_strdup(wf->digest)) == NULL) {
        weft_free(d);
        wf_free(wf);
        return NULL;
    }
    d->wf = wf;
    d->refs = 1;
    if (strmap_put(&s->defs, d->digest, strlen(d->digest), d, NULL) != 0) {
        weft_free(d->digest);
        weft_free(d);
        wf_free(wf);
        return NULL;
    }
    return d;
}

static struct defent *def_parse(struct sched *s, const char *text, size_t len,
                                char *why, size_t whysize)
{
    struct diag dg;
    diag_init(&dg, "definition");
    struct wf *wf = NULL;
    int rc = wf_load_canonical(text, len, &wf, &dg);
    if (rc) {
        snprintf(why, whysize, "stored definition is invalid: %s",
                 dg.count ? dg.entries[0].message : weft_strerror(rc));
        diag_deinit(&dg);
        return NULL;
    }
    diag_deinit(&dg);
    return def_put(s, wf);
}

/* ---- run cache ------------------------------------------------------- */

static void lru_unlink(struct sched *s, struct runent *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else if (s->lru_head == e)
        s->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else if (s->lru_tail == e)
        s->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct sched *s, struct runent *e)
{
    e->lru_next = s->lru_head;
    if (s->lru_head)
        s->lru_head->lru_prev = e;
    s->lru_head = e;
    if (s->lru_tail == NULL)
        s->lru_tail = e;
}

static void runent_free(struct sched *s, struct runent *e)
{
    def_unref(s, e->def);
    weft_free(e->ri.run);
    weft_free(e->ri.digest);
    weft_free(e->ri.trace);
    json_decref(e->ri.task);
    json_decref(e->ri.vars);
    json_decref(e->ri.ctx);
    weft_free(e->waiters);
    weft_free(e);
}

static void run_forget(struct sched *s, struct runent *e)
{
    if (strmap_get(&s->runs, e->ri.run, strlen(e->ri.run)) != e)
        return;
    strmap_del(&s->runs, e->ri.run, strlen(e->ri.run));
    lru_unlink(s, e);
    s->nruns--;
    if (e->refs == 0)
        runent_free(s, e);
}

static void run_unref(struct sched *s, struct runent *e)
{
    if (e == NULL || --e->refs > 0)
        return;
    if (strmap_get(&s->runs, e->ri.run, strlen(e->ri.run)) != e)
        runent_free(s, e);
}

static void run_evict(struct sched *s)
{
    struct runent *e = s->lru_tail;
    while (s->nruns > SCHED_RUNCACHE_MAX && e) {
        struct runent *prev = e->lru_prev;
        if (!e->loading)
            run_forget(s, e);
        e = prev;
    }
}

static struct runent *run_insert(struct sched *s, const char *run)
{
    struct runent *e = weft_calloc(1, sizeof(*e));
    if (e == NULL || (e->ri.run = weft_strdup(run)) == NULL) {
        weft_free(e);
        return NULL;
    }
    e->s = s;
    if (strmap_put(&s->runs, e->ri.run, strlen(e->ri.run), e, NULL) != 0) {
        weft_free(e->ri.run);
        weft_free(e);
        return NULL;
    }
    lru_push(s, e);
    s->nruns++;
    run_evict(s);
    return e;
}

static json_t *parse_json(const char *text, size_t len)
{
    return json_loadb(text, len, JSON_DECODE_ANY, NULL);
}

/* ---- acknowledgement and dead letters --------------------------------- */

static const char *stream_key(struct work *w)
{
    return strcmp(w->stream, "tasks") == 0 ? w->s->k_tasks : w->s->k_events;
}

static void ack_entry(struct work *w)
{
    if (w->entry == NULL)
        return;
    const char *key = stream_key(w);
    rconn_cmd(w->s->cmd, NULL, NULL, "XACK %s %s %s", key,
              KEYS_GROUP_SCHEDULERS, w->entry);
    rconn_cmd(w->s->cmd, NULL, NULL, "XDEL %s %s", key, w->entry);
}

/* Moves the message to the DLQ with every field it had and the reason,
 * acks and deletes it (one script: dead_letter.lua), ends the work. */
static void dead_letter(struct work *w, const char *reason)
{
    struct sched *s = w->s;
    log_warn("message to dead-letter queue", "stream", w->stream, "entry",
             w->entry, "run", w->run, "step", w->step, "reason", reason, NULL);
    if (w->entry != NULL) {
        char at[24], max[16];
        snprintf(at, sizeof(at), "%lld", (long long)now_ms());
        snprintf(max, sizeof(max), "%d", DLQ_FIELDS_MAX);
        const char *argv[] = {
            stream_key(w), s->k_dlq, w->entry, KEYS_GROUP_SCHEDULERS,
            reason,        s->name,  at,       max};
        rconn_eval(s->cmd, SCRIPT_DEAD_LETTER, NULL, NULL, 2, 8, argv, NULL);
    }
    s->stats.dead++;
    work_done(w);
}

/* ---- script calls --------------------------------------------------- */

/* A batch on the wire; shared by the replies it waits for (one, or one
 * per transition after a failed batch is split). */
struct sent {
    struct sched *s;
    enum script_id id;
    struct plan plan;
    struct work **works;
    size_t n;
    unsigned refs;
};

struct evalctx {
    struct sent *b;
    size_t index; /* the transition sent alone, or SIZE_MAX for all */
    char now[24];
    char *doc;
    const char **argv;
    size_t *lens;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Whether a copy of ready mark id is being handled or was answered. */
static bool mark_seen(const struct sched *s, const char *id)
{
    return strmap_get(&s->marks, id, strlen(id)) != NULL ||
           strmap_get(&s->recent, id, strlen(id)) != NULL;
}

static void mark_answered(struct sched *s, const char *id)
{
    char **slot = &s->recent_ring[s->recent_next];
    char *copy = weft_strdup(id);
    if (copy == NULL)
        return;
    if (strmap_put(&s->recent, copy, strlen(copy), copy, NULL) != 0) {
        weft_free(copy);
        return;
    }
    if (*slot != NULL) {
        strmap_del(&s->recent, *slot, strlen(*slot));
        weft_free(*slot);
    }
    *slot = copy;
    s->recent_next = (s->recent_next + 1) % SCHED_RECENT_MARKS;
}

/* Handles the ready marks a script answered with: `ready` ([step,
 * attempt, mark, breaker?]) or, with more, a big group's next parts
 * ([step, attempt, mark, from]). */
static void spawn_ready(struct sched *s, struct runent *re, json_t *ready,
                        bool more)
{
    size_t i;
    json_t *item;
    json_array_foreach(ready, i, item)
    {
        const char *step = json_string_value(json_array_get(item, 0));
        json_int_t attempt = json_integer_value(json_array_get(item, 1));
        const char *mark = json_string_value(json_array_get(item, 2));
        const char *blocked =
            more ? NULL : json_string_value(json_array_get(item, 3));
        json_int_t from =
            more ? json_integer_value(json_array_get(item, 3)) : 0;
        if (step == NULL || mark == NULL || attempt <= 0 ||
            attempt > UINT32_MAX || from < 0 || from > UINT32_MAX ||
            (more && from == 0))
            continue;
        if (mark_seen(s, mark))
            continue; /* read from the stream first: that work has it */
        struct work *w = weft_calloc(1, sizeof(*w));
        if (w == NULL)
            continue; /* the ready mark stays in the stream */
        w->s = s;
        w->kind = WORK_READY;
        w->stream = weft_strdup("events");
        w->entry = weft_strdup(mark);
        w->run = weft_strdup(re->ri.run);
        w->step = weft_strdup(step);
        w->attempt = (uint32_t)attempt;
        w->from = (uint32_t)from;
        w->blocked = blocked ? weft_strdup(blocked) : NULL;
        if (!w->stream || !w->entry || !w->run || !w->step ||
            (blocked && !w->blocked)) {
            work_done(w);
            continue;
        }
        w->re = re;
        re->refs++;
        /* The same mark also reaches some scheduler's read loop; while this
         * work handles it, a copy read here is dropped (the script this
         * work runs acknowledges the entry). */
        if (strmap_put(&s->marks, w->entry, strlen(w->entry), w, NULL) == 0)
            w->marked = 1;
        work_run(w);
    }
}

/* A traceparent is 55 bytes; a longer `trace` field is not one and is
 * not copied into logs. */
#define SCHED_TRACE_MAX 64

/* The trace a work's log lines carry: the traceparent its message came
 * with, else the run's trace id. */
static const char *trace_of(const struct work *w)
{
    if (w->trace != NULL && strlen(w->trace) <= SCHED_TRACE_MAX)
        return w->trace;
    return w->re ? w->re->ri.trace : NULL;
}

/* What a script answered for one work's transition. */
static void apply_out(struct work *w, json_t *out)
{
    struct sched *s = w->s;
    w->answered = 1;
    if (json_is_true(json_object_get(out, "stale"))) {
        s->stats.stale++;
    } else {
        s->stats.transitions++;
        if (w->timed_out)
            s->stats.timeouts++;
    }
    if (json_is_true(json_object_get(out, "retry")))
        s->stats.retries++;
    if (w->kind == WORK_RESULT) {
        /* One line per result, in the trace of the job it answers (the
         * worker's `trace` field; the run's trace id for a deadline). */
        char attempt[16];
        snprintf(attempt, sizeof(attempt), "%u", w->attempt);
        log_info("result applied", "run", w->run, "step", w->step, "attempt",
                 attempt, "outcome",
                 json_is_true(json_object_get(out, "stale"))   ? "stale"
                 : json_is_true(json_object_get(out, "retry")) ? "retry"
                 : w->timed_out                                ? "timeout"
                                                               : "applied",
                 "trace", trace_of(w), NULL);
    }
    json_t *ready = json_object_get(out, "ready");
    if (json_is_array(ready) && w->re)
        spawn_ready(s, w->re, ready, false);
    json_t *more = json_object_get(out, "more");
    if (json_is_array(more) && w->re)
        spawn_ready(s, w->re, more, true);
    const char *rs = json_string_value(json_object_get(out, "run"));
    if (rs && strcmp(rs, "waiting_for_human") != 0) {
        s->stats.runs_done++;
        log_info("run finished", "run", w->run, "status", rs, "trace",
                 w->re ? w->re->ri.trace : NULL, NULL);
        if (w->re)
            run_forget(s, w->re);
    }
    work_done(w);
}

static void sent_release(struct sent *b)
{
    if (--b->refs > 0)
        return;
    plan_deinit(&b->plan);
    weft_free(b->works);
    weft_free(b);
}

static void send_sent(struct sent *b, size_t index);

static void on_eval(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct evalctx *ec = ud;
    struct sent *b = ec->b;
    size_t first = ec->index == SIZE_MAX ? 0 : ec->index;
    size_t count = ec->index == SIZE_MAX ? b->n : 1;
    if (r == NULL) {
        /* Connection lost: the messages stay pending and are reclaimed. */
        for (size_t i = 0; i < count; i++)
            work_done(b->works[first + i]);
    } else if (r->type == REDIS_REPLY_ERROR && count > 1) {
        /* A batch fails as a whole; send its transitions one by one so
         * only the one at fault is dead-lettered (transitions are
         * idempotent, so those the batch already applied change nothing
         * the second time). */
        log_warn("batched transition failed; retrying one by one", "script",
                 scripts_name(b->id), "error", r->str, NULL);
        b->refs += (unsigned)count;
        for (size_t i = 0; i < count; i++)
            send_sent(b, first + i);
    } else if (r->type == REDIS_REPLY_ERROR) {
        struct work *w = b->works[first];
        log_error("transition script failed", "script", scripts_name(b->id),
                  "run", w->run, "step", w->step, "error", r->str, NULL);
        dead_letter(w, r->str);
    } else {
        json_t *outs =
            r->type == REDIS_REPLY_STRING ? parse_json(r->str, r->len) : NULL;
        for (size_t i = 0; i < count; i++)
            apply_out(b->works[first + i], json_array_get(outs, i));
        json_decref(outs);
    }
    weft_free(ec->doc);
    weft_free(ec->argv);
    weft_free(ec->lens);
    weft_free(ec);
    sent_release(b);
}

/* Sends the whole batch (index SIZE_MAX) or one transition of it. The
 * caller holds a reference on b for this send. */
static void send_sent(struct sent *b, size_t index)
{
    struct evalctx *ec = weft_calloc(1, sizeof(*ec));
    size_t first = index == SIZE_MAX ? 0 : index;
    size_t count = index == SIZE_MAX ? b->n : 1;
    int nkeys, argc;
    if (ec != NULL) {
        ec->b = b;
        ec->index = index;
        snprintf(ec->now, sizeof(ec->now), "%lld", (long long)now_us());
    }
    if (ec == NULL ||
        plan_argv(&b->plan, ec->now,
                  index == SIZE_MAX ? NULL : plan_get(&b->plan, index), &nkeys,
                  &argc, &ec->argv, &ec->lens, &ec->doc) != 0 ||
        rconn_eval(b->s->cmd, b->id, on_eval, ec, nkeys, argc, ec->argv,
                   ec->lens) != 0) {
        if (ec) {
            weft_free(ec->doc);
            weft_free(ec->argv);
            weft_free(ec->lens);
            weft_free(ec);
        }
        for (size_t i = 0; i < count; i++)
            work_done(b->works[first + i]);
        sent_release(b);
    }
}

static void flush_batch(struct sched *s, enum script_id id)
{
    struct batch *bt = &s->batches[id];
    if (bt->n == 0)
        return;
    struct sent *b = weft_calloc(1, sizeof(*b));
    if (b == NULL) {
        for (size_t i = 0; i < bt->n; i++)
            work_done(bt->works[i]);
        plan_deinit(&bt->plan);
        bt->n = 0;
        return;
    }
    b->s = s;
    b->id = id;
    b->plan = bt->plan;
    b->works = bt->works;
    b->n = bt->n;
    b->refs = 1;
    plan_init(&bt->plan);
    bt->works = NULL;
    bt->n = bt->cap = 0;
    send_sent(b, SIZE_MAX);
}

static void on_flush(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    struct sched *s = ud;
    s->flush_pending = 0;
    for (int id = 0; id < SCRIPT_COUNT; id++)
        flush_batch(s, (enum script_id)id);
}

/* The open batch of a script: builders append w's transition to it, then
 * batch_add queues w for the reply. */
static struct plan *batch_plan(struct sched *s, enum script_id id)
{
    return &s->batches[id].plan;
}

static void batch_add(struct work *w, enum script_id id)
{
    struct sched *s = w->s;
    struct batch *bt = &s->batches[id];
    /* The builder just appended w's transition. A ready mark is deleted
     * with its acknowledgement (see ack() in lib.lua). */
    if (w->kind == WORK_READY && plan_size(&bt->plan) > 0)
        json_object_set_new(plan_get(&bt->plan, plan_size(&bt->plan) - 1),
                            "del", json_true());
    if (bt->n == bt->cap) {
        size_t ncap = bt->cap ? bt->cap * 2 : 16;
        struct work **n = weft_realloc(bt->works, ncap * sizeof(*n));
        if (n == NULL) {
            /* Its transition is in the batch already; it is applied, and
             * the message it acknowledges tells the rest. Without a slot
             * for its reply the work just ends. */
            work_done(w);
            return;
        }
        bt->works = n;
        bt->cap = ncap;
    }
    bt->works[bt->n++] = w;
    if (bt->n >= SCHED_BATCH_MAX || bt->plan.nbodies >= SCHED_BATCH_BODIES) {
        flush_batch(s, id);
        return;
    }
    if (!s->flush_pending) {
        s->flush_pending = 1;
        event_active(s->flush_ev, EV_TIMEOUT, 0);
    }
}

static struct plan_env env_of(struct sched *s)
{
    struct plan_env env = {
        .keys = &s->cfg.keys,
        .hmac = &s->cfg.hmac,
        .now_ms = now_ms(),
        .hist_max = s->cfg.hist_max,
        .ttl_s = s->cfg.ttl_s,
        .personas = s->cfg.personas,
        .who = s->name,
    };
    return env;
}

/* ---- tasks ------------------------------------------------------------ */

static json_t *task_ctx(const char *run, json_t *task)
{
    char branch[KEYS_ID_MAX + 8];
    const char *b = json_string_value(json_object_get(task, "branchName"));
    if (b == NULL) {
        snprintf(branch, sizeof(branch), "weft/%s", run);
        b = branch;
    }
    const char *base = json_string_value(json_object_get(task, "baseBranch"));
    const char *root = json_string_value(json_object_get(task, "repoRoot"));
    json_t *ctx = json_pack("{s:s, s:s, s:s, s:s}", "workflowId", run,
                            "repoRoot", root ? root : "", "branchName", b,
                            "baseBranch", base ? base : "main");
    json_t *ms = json_object_get(task, "milestone");
    if (ctx && ms)
        json_object_set(ctx, "milestone", ms);
    return ctx;
}

/* A task that cannot start: recorded as a failed run with the reason
 * (never silently dropped), and copied to the DLQ for operators. Without
 * a usable run id only the DLQ copy is possible. */
static void task_reject(struct work *w, const char *why)
{
    struct sched *s = w->s;
    if (w->run == NULL || !keys_valid_id(w->run, strlen(w->run))) {
        dead_letter(w, why);
        return;
    }
    log_warn("task rejected", "run", w->run, "entry", w->entry, "reason", why,
             NULL);
    /* The reject transition copies the task to the DLQ. */
    s->stats.dead++;
    struct runinfo ri;
    memset(&ri, 0, sizeof(ri));
    ri.run = w->run;
    struct plan_env env = env_of(s);
    if (plan_reject(&env, &ri, w->entry, w->task, w->workflow, why,
                    batch_plan(s, SCRIPT_REJECT)) != 0) {
        work_done(w);
        return;
    }
    batch_add(w, SCRIPT_REJECT);
}

static void task_from_file(struct work *w);

/* The coordinator: a task that names no workflow goes where the routes
 * send it (workflows/routes.yml). */
static void task_route(struct work *w)
{
    struct sched *s = w->s;
    if (s->cfg.routes == NULL) {
        task_reject(w, "task names no workflow and the scheduler has no "
                       "routes (--routes)");
        return;
    }
    json_t *task = parse_json(w->task, strlen(w->task));
    const char *name = NULL;
    struct weft_error err;
    weft_error_clear(&err);
    int rc =
        json_is_object(task)
            ? routes_select(s->cfg.routes, task,
                            w->type && w->type[0] ? w->type : NULL, &name, &err)
            : weft_error_set(&err, WEFT_EINVAL, 0, 0,
                             "field 'task' must be a JSON object");
    json_decref(task);
    if (rc) {
        char why[WEFT_ERROR_MSG_MAX + 32];
        snprintf(why, sizeof(why), "cannot route the task: %s", err.msg);
        task_reject(w, why);
        return;
    }
    if ((w->workflow = weft_strdup(name)) == NULL) {
        work_done(w);
        return;
    }
    log_info("task routed", "run", w->run, "workflow", name, NULL);
    task_from_file(w);
}

static void task_create(struct work *w, struct defent *d)
{
    struct sched *s = w->s;
    char why[WEFT_ERROR_MSG_MAX + 64];
    struct runent *e = weft_calloc(1, sizeof(*e));
    if (e == NULL) {
        def_unref(s, d);
        work_done(w);
        return;
    }
    e->s = s;
    e->def = d;
    e->ri.wf = d->wf;
    e->refs = 1;
    e->ri.run = weft_strdup(w->run);
    e->ri.digest = weft_strdup(d->digest);
    e->ri.trace = weft_malloc(33);
    e->ri.task = parse_json(w->task, strlen(w->task));
    if (!e->ri.run || !e->ri.digest || !e->ri.trace) {
        runent_free(s, e);
        work_done(w);
        return;
    }
    /* A producer's W3C traceparent (00-<32 hex trace id>-...) carries the
     * run into its trace; otherwise the run starts a trace of its own. */
    if (w->trace && strlen(w->trace) >= 35 &&
        strncmp(w->trace, "00-", 3) == 0 &&
        strspn(w->trace + 3, "0123456789abcdef") >= 32) {
        memcpy(e->ri.trace, w->trace + 3, 32);
        e->ri.trace[32] = '\0';
    } else {
        plan_random_hex(e->ri.trace, 16);
    }
    if (!json_is_object(e->ri.task)) {
        runent_free(s, e);
        task_reject(w, "field 'task' must be a JSON object");
        return;
    }
    e->ri.ctx = task_ctx(w->run, e->ri.task);
    struct weft_error err;
    weft_error_clear(&err);
    if (e->ri.ctx == NULL ||
        plan_render_vars(d->wf, w->run, e->ri.task, e->ri.ctx, &e->ri.vars,
                         &err) != 0) {
        snprintf(why, sizeof(why), "cannot start run: %s", err.msg);
        runent_free(s, e);
        task_reject(w, why);
        return;
    }
    struct plan_env env = env_of(s);
    int rc = plan_create_run(&env, &e->ri, w->entry,
                             batch_plan(s, SCRIPT_CREATE_RUN), &err);
    if (rc) {
        snprintf(why, sizeof(why), "cannot start run: %s", err.msg);
        runent_free(s, e);
        task_reject(w, why);
        return;
    }
    /* Cache the header we just wrote; follow-up work uses it. */
    if (strmap_get(&s->runs, e->ri.run, strlen(e->ri.run)) == NULL &&
        strmap_put(&s->runs, e->ri.run, strlen(e->ri.run), e, NULL) == 0) {
        lru_push(s, e);
        s->nruns++;
        run_evict(s);
    }
    w->re = e;
    log_info("run starting", "run", w->run, "workflow", d->wf->name, "trace",
             e->ri.trace, NULL);
    batch_add(w, SCRIPT_CREATE_RUN);
}

static void on_def(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct work *w = ud;
    if (r == NULL) {
        work_done(w);
        return;
    }
    if (r->type != REDIS_REPLY_STRING) {
        task_reject(w, "no definition stored for this digest");
        return;
    }
    char why[WEFT_ERROR_MSG_MAX + 64];
    struct defent *d = def_parse(w->s, r->str, r->len, why, sizeof(why));
    if (d == NULL) {
        task_reject(w, why);
        return;
    }
    if (strcmp(d->digest, w->digest) != 0) {
        def_unref(w->s, d);
        task_reject(w, "stored definition does not match its digest");
        return;
    }
    task_create(w, d);
}

/* A task naming a workflow file: load it from --workflows, store its
 * definition, and start. Names are plain file names, never paths. */
static void task_from_file(struct work *w)
{
    struct sched *s = w->s;
    if (s->workflows == NULL) {
        task_reject(w, "task names a workflow but no --workflows dir is set");
        return;
    }
    const char *name = w->workflow;
    if (!keys_valid_id(name, strlen(name)) || name[0] == '.') {
        task_reject(w, "workflow name must be a plain file name");
        return;
    }
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", s->workflows, name);
    if (stat(path, &st) != 0)
        snprintf(path, sizeof(path), "%s/%s.yml", s->workflows, name);
    struct diag dg;
    diag_init(&dg, path);
    struct wf *wf = NULL;
    int rc = wf_load_file(path, &wf, &dg);
    if (rc) {
        char why[600];
        snprintf(why, sizeof(why), "workflow '%s' is invalid: %s", name,
                 dg.count ? dg.entries[0].message : weft_strerror(rc));
        diag_deinit(&dg);
        task_reject(w, why);
        return;
    }
    diag_deinit(&dg);
    char key[KEYS_MAX];
    keys_def(&s->cfg.keys, wf->digest, key);
    rconn_cmd(s->cmd, NULL, NULL, "SET %s %b NX", key, wf->canonical,
              (size_t)wf->canonical_len);
    struct defent *d = def_put(s, wf);
    if (d == NULL) {
        work_done(w);
        return;
    }
    task_create(w, d);
}

static void task_begin(struct work *w)
{
    struct sched *s = w->s;
    if (w->task == NULL) {
        task_reject(w, "task entry has no 'task' field");
        return;
    }
    if (w->run == NULL && (w->run = weft_strdup(w->entry)) == NULL) {
        work_done(w);
        return;
    }
    if (!keys_valid_id(w->run, strlen(w->run))) {
        dead_letter(w, "invalid run id");
        return;
    }
    if (w->digest) {
        struct defent *d = strmap_get(&s->defs, w->digest, strlen(w->digest));
        if (d) {
            d->refs++;
            task_create(w, d);
            return;
        }
        char key[KEYS_MAX];
        if (keys_def(&s->cfg.keys, w->digest, key) == 0 ||
            !keys_valid_id(w->digest, strlen(w->digest))) {
            task_reject(w, "invalid digest");
            return;
        }
        if (rconn_cmd(s->cmd, on_def, w, "GET %s", key) != 0)
            work_done(w);
        return;
    }
    if (w->workflow) {
        task_from_file(w);
        return;
    }
    task_route(w);
}

/* ---- loading a run's header ------------------------------------------- */

static void run_loaded(struct sched *s, struct runent *e, const char *error)
{
    e->loading = 0;
    struct work **ws = e->waiters;
    size_t n = e->nwaiters;
    e->waiters = NULL;
    e->nwaiters = 0;
    if (error)
        run_forget(s, e);
    for (size_t i = 0; i < n; i++) {
        if (error)
            dead_letter(ws[i], error);
        else
            work_run(ws[i]);
    }
    weft_free(ws);
}

static void on_run_def(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct runent *e = ud;
    struct sched *s = e->s;
    if (r == NULL) {
        /* Redis went away: the works stay pending and are reclaimed. */
        for (size_t i = 0; i < e->nwaiters; i++)
            work_done(e->waiters[i]);
        e->nwaiters = 0;
        e->loading = 0;
        run_forget(s, e);
        return;
    }
    char why[WEFT_ERROR_MSG_MAX + 64];
    if (r->type != REDIS_REPLY_STRING) {
        run_loaded(s, e, "the run's definition is missing");
        return;
    }
    struct defent *d = def_parse(s, r->str, r->len, why, sizeof(why));
    if (d == NULL) {
        run_loaded(s, e, why);
        return;
    }
    e->def = d;
    e->ri.wf = d->wf;
    run_loaded(s, e, NULL);
}

static void on_run_header(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct runent *e = ud;
    struct sched *s = e->s;
    if (r == NULL) {
        for (size_t i = 0; i < e->nwaiters; i++)
            work_done(e->waiters[i]);
        e->nwaiters = 0;
        e->loading = 0;
        run_forget(s, e);
        return;
    }
    /* HMGET digest task vars ctx trace */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        run_loaded(s, e, "unknown run");
        return;
    }
    for (size_t i = 1; i < 5; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING) {
            run_loaded(s, e, "run header is incomplete");
            return;
        }
    }
    e->ri.digest = weft_strndup(r->element[0]->str, r->element[0]->len);
    e->ri.task = parse_json(r->element[1]->str, r->element[1]->len);
    e->ri.vars = parse_json(r->element[2]->str, r->element[2]->len);
    e->ri.ctx = parse_json(r->element[3]->str, r->element[3]->len);
    e->ri.trace = weft_strndup(r->element[4]->str, r->element[4]->len);
    if (!e->ri.digest || !e->ri.task || !e->ri.vars || !e->ri.ctx ||
        !e->ri.trace) {
        run_loaded(s, e, "run header is not valid JSON");
        return;
    }
    struct defent *d = strmap_get(&s->defs, e->ri.digest, strlen(e->ri.digest));
    if (d) {
        d->refs++;
        e->def = d;
        e->ri.wf = d->wf;
        run_loaded(s, e, NULL);
        return;
    }
    char key[KEYS_MAX];
    if (keys_def(&s->cfg.keys, e->ri.digest, key) == 0 ||
        rconn_cmd(s->cmd, on_run_def, e, "GET %s", key) != 0) {
        for (size_t i = 0; i < e->nwaiters; i++)
            work_done(e->waiters[i]);
        e->nwaiters = 0;
        e->loading = 0;
        run_forget(s, e);
    }
}

/* Makes w->re point at the run's cached header; returns 1 when ready, 0
 * when w was parked until the header loads (or ended). */
static int run_acquire(struct work *w)
{
    struct sched *s = w->s;
    if (w->re && !w->re->loading && w->re->ri.wf)
        return 1;
    struct runent *e = strmap_get(&s->runs, w->run, strlen(w->run));
    if (e == NULL) {
        if ((e = run_insert(s, w->run)) == NULL) {
            work_done(w);
            return 0;
        }
        char key[KEYS_MAX];
        keys_run(&s->cfg.keys, KEYS_RUN, w->run, key);
        if (rconn_cmd(s->cmd, on_run_header, e,
                      "HMGET %s digest task vars ctx trace", key) != 0) {
            run_forget(s, e);
            work_done(w);
            return 0;
        }
        e->loading = 1;
    }
    if (w->re == NULL) {
        w->re = e;
        e->refs++;
    }
    if (!e->loading) {
        lru_unlink(s, e);
        lru_push(s, e);
        return 1;
    }
    struct work **n = weft_realloc(e->waiters, (e->nwaiters + 1) * sizeof(*n));
    if (n == NULL) {
        work_done(w);
        return 0;
    }
    e->waiters = n;
    e->waiters[e->nwaiters++] = w;
    return 0;
}

/* ---- results ---------------------------------------------------------- */

static const struct wf_step *work_step(struct work *w)
{
    return wf_find_step(w->re->ri.wf, w->step, strlen(w->step));
}

static void control_apply(struct work *w);

/* The outcome of w's attempt: the worker's result, or for a `timeout`
 * event (no result before the deadline `start` set: the worker is gone
 * or stuck) a timeout, after which a late result finds the attempt moved
 * on. An undecodable result fails the attempt (it may be retried) rather
 * than leave it hanging. whose names the deadline in the message. */
static void result_read(struct work *w, const char *whose,
                        struct wire_result *res)
{
    struct weft_error err;
    char why[WEFT_ERROR_MSG_MAX + 64];
    weft_error_clear(&err);
    memset(res, 0, sizeof(*res));
    if (w->deadline) {
        snprintf(why, sizeof(why),
                 "no result before %s deadline (the worker went silent)",
                 whose);
        res->status = WIRE_TIMEOUT;
        res->message = weft_strdup(why);
    } else if (w->body == NULL ||
               wire_result_decode(w->body, w->bodylen, res, &err) != 0) {
        snprintf(why, sizeof(why), "undecodable result: %s", err.msg);
        res->status = WIRE_ERROR;
        res->message = weft_strdup(why);
    }
    w->timed_out = res->status == WIRE_TIMEOUT;
}

static void result_apply(struct work *w)
{
    struct sched *s = w->s;
    const struct wf_step *st = work_step(w);
    if (st == NULL) {
        dead_letter(w, "result for a step the run does not have");
        return;
    }
    if (w->deadline && st->type == WF_STEP_APPROVAL) {
        /* Nobody approved in time: answered like a rejection. */
        w->ctl = PLAN_CONTROL_TIMEOUT;
        w->timed_out = 1;
        control_apply(w);
        return;
    }
    struct wire_result res;
    struct weft_error err;
    weft_error_clear(&err);
    char why[WEFT_ERROR_MSG_MAX + 32];
    result_read(w, "the step's", &res);
    struct plan_env env = env_of(s);
    int rc =
        w->deadline == 2
            ? plan_queue_timeout(&env, &w->re->ri, st, w->attempt, w->entry,
                                 batch_plan(s, SCRIPT_FINISH), &err)
            : plan_finish(&env, &w->re->ri, st, w->attempt, w->entry, &res,
                          NULL, batch_plan(s, SCRIPT_FINISH), &err);
    wire_result_deinit(&res);
    if (rc) {
        snprintf(why, sizeof(why), "cannot apply result: %s", err.msg);
        dead_letter(w, why);
        return;
    }
    /* The history keeps when the worker reported, beside when the
     * transition ran: the difference is the scheduler's lag. */
    struct plan *p = batch_plan(s, SCRIPT_FINISH);
    size_t len = w->done_us ? strlen(w->done_us) : 0;
    if (!w->deadline && len > 0 && len < 20 &&
        strspn(w->done_us, "0123456789") == len)
        json_object_set_new(plan_get(p, plan_size(p) - 1), "done_us",
                            json_string(w->done_us));
    batch_add(w, SCRIPT_FINISH);
}

/* ---- ready steps -------------------------------------------------------- */

static bool needs_scope(const struct wf_step *st)
{
    return !plan_step_is_static(st) || st->condition != NULL;
}

static void ready_fail(struct work *w, const struct wf_step *st,
                       const char *error)
{
    struct plan_env env = env_of(w->s);
    struct weft_error err;
    weft_error_clear(&err);
    if (plan_finish(&env, &w->re->ri, st, w->attempt, w->entry, NULL, error,
                    batch_plan(w->s, SCRIPT_FINISH), &err) != 0) {
        dead_letter(w, err.msg);
        return;
    }
    batch_add(w, SCRIPT_FINISH);
}

static void ready_apply(struct work *w)
{
    struct sched *s = w->s;
    const struct wf_step *st = work_step(w);
    if (st == NULL) {
        dead_letter(w, "ready mark for a step the run does not have");
        return;
    }
    json_t *scope = NULL;
    struct weft_error err;
    weft_error_clear(&err);
    char why[WEFT_ERROR_MSG_MAX + 32];
    if (w->blocked) {
        /* Its breaker was open and the step says fail fast: nothing to
         * evaluate, the step fails (its on_failure applies). */
        snprintf(why, sizeof(why),
                 "circuit breaker '%s' is open (on_breaker_open: fail)",
                 w->blocked);
        ready_fail(w, st, why);
        return;
    }
    if (needs_scope(st)) {
        scope = plan_scope(&w->re->ri, w->state, w->extra);
        if (scope == NULL) {
            work_done(w);
            return;
        }
    }
    struct plan_env env = env_of(s);
    int rc;
    enum script_id script = SCRIPT_DISPATCH;
    bool truth = true;
    if (st->condition) {
        rc = expr_eval_bool(st->condition, scope, &truth, &err);
        if (rc) {
            snprintf(why, sizeof(why), "condition: %s", err.msg);
            json_decref(scope);
            ready_fail(w, st, why);
            return;
        }
    }
    if (st->type == WF_STEP_CONDITIONAL) {
        /* A conditional's condition picks the branch: then when true. */
        script = SCRIPT_ACTIVATE;
        rc = plan_activate(&env, &w->re->ri, st, w->attempt, w->entry,
                           truth ? 0 : 1, batch_plan(s, script), &err);
    } else if (!truth) {
        script = SCRIPT_FINISH;
        rc = plan_finish(&env, &w->re->ri, st, w->attempt, w->entry, NULL, NULL,
                         batch_plan(s, script), &err);
    } else if (st->type == WF_STEP_PARALLEL) {
        script = SCRIPT_ACTIVATE;
        rc = plan_activate(&env, &w->re->ri, st, w->attempt, w->entry, 0,
                           batch_plan(s, script), &err);
    } else if (st->type == WF_STEP_APPROVAL) {
        /* No job: the step waits for a person. */
        script = SCRIPT_PARK;
        rc = plan_park(&env, &w->re->ri, st, w->attempt, w->entry, scope,
                       batch_plan(s, script), &err);
        if (rc == WEFT_ETYPE || rc == WEFT_ELIMIT || rc == WEFT_EINVAL) {
            json_decref(scope);
            ready_fail(w, st, err.msg);
            return;
        }
    } else {
        rc = plan_dispatch(&env, &w->re->ri, st, w->attempt, w->entry, scope,
                           batch_plan(s, script), &err);
        if (rc == WEFT_ETYPE || rc == WEFT_EINVAL || rc == WEFT_ENOENT ||
            rc == WEFT_ELIMIT) {
            json_decref(scope);
            ready_fail(w, st, err.msg);
            return;
        }
    }
    json_decref(scope);
    if (rc) {
        work_done(w);
        return;
    }
    batch_add(w, script);
}

/* The next part of a big list's opening (a parallel group's children, or
 * the run's top level: PLAN_TOP_STEP). The group's condition was
 * evaluated when it opened, and the part's jobs need no evaluation. */
static void part_apply(struct work *w)
{
    struct sched *s = w->s;
    const struct wf_step *st = NULL;
    if (strcmp(w->step, PLAN_TOP_STEP) != 0 && (st = work_step(w)) == NULL) {
        dead_letter(w, "ready mark for a step the run does not have");
        return;
    }
    struct plan_env env = env_of(s);
    struct weft_error err;
    char why[WEFT_ERROR_MSG_MAX + 32];
    weft_error_clear(&err);
    int rc = plan_activate_more(&env, &w->re->ri, st, w->attempt, w->entry,
                                w->from, batch_plan(s, SCRIPT_ACTIVATE), &err);
    if (rc == WEFT_EINVAL) {
        snprintf(why, sizeof(why), "ready mark: %s", err.msg);
        dead_letter(w, why);
    } else if (rc) {
        work_done(w);
    } else {
        batch_add(w, SCRIPT_ACTIVATE);
    }
}

static void on_extra(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct work *w = ud;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        work_done(w);
        return;
    }
    static const char *const names[] = {"artifacts", "personaResults",
                                        "gitState"};
    w->extra = json_object();
    for (size_t i = 0; i < 3 && w->extra; i++) {
        redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING) {
            json_t *v = parse_json(e->str, e->len);
            if (v)
                json_object_set_new(w->extra, names[i], v);
        }
    }
    if (w->extra == NULL || w->state == NULL) {
        work_done(w);
        return;
    }
    ready_apply(w);
}

static void on_state(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct work *w = ud;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return; /* on_extra, queued behind, ends the work */
    w->state = json_object();
    for (size_t i = 0; w->state && i + 1 < r->elements; i += 2) {
        redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        json_t *val = parse_json(v->str, v->len);
        char *key = weft_strndup(k->str, k->len);
        if (val && key)
            json_object_set_new(w->state, key, val);
        else
            json_decref(val);
        weft_free(key);
    }
}

static void ready_begin(struct work *w)
{
    struct sched *s = w->s;
    const struct wf_step *st = work_step(w);
    if (st == NULL || !needs_scope(st) || w->blocked) {
        ready_apply(w);
        return;
    }
    char kstate[KEYS_MAX], krun[KEYS_MAX];
    keys_run(&s->cfg.keys, KEYS_RUN_STATE, w->run, kstate);
    keys_run(&s->cfg.keys, KEYS_RUN, w->run, krun);
    /* Replies arrive in order on one connection: on_state runs first. */
    if (rconn_cmd(s->cmd, on_state, w, "HGETALL %s", kstate) != 0) {
        work_done(w);
        return;
    }
    if (rconn_cmd(s->cmd, on_extra, w,
                  "HMGET %s artifacts personaResults gitState", krun) != 0)
        work_done(w);
}

/* ---- rollback ---------------------------------------------------------
 * A run with `rollback: true` that ended failed or cancelled gets weft's
 * own step PLAN_ROLLBACK_STEP: its ready mark (end_run's) and its results
 * come through here instead of the definition's steps. */

static bool is_rollback(const struct work *w)
{
    return w->step != NULL && strcmp(w->step, PLAN_ROLLBACK_STEP) == 0;
}

static void on_rollback_changes(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct work *w = ud;
    if (r == NULL) {
        work_done(w); /* stays pending; reclaimed */
        return;
    }
    json_t *g =
        r->type == REDIS_REPLY_STRING ? parse_json(r->str, r->len) : NULL;
    struct plan_env env = env_of(w->s);
    struct weft_error err;
    weft_error_clear(&err);
    int rc = plan_rollback_dispatch(&env, &w->re->ri, w->attempt, w->entry,
                                    json_object_get(g, "changes"),
                                    batch_plan(w->s, SCRIPT_ROLLBACK), &err);
    json_decref(g);
    if (rc == WEFT_EINVAL) {
        dead_letter(w, err.msg);
        return;
    }
    if (rc) {
        work_done(w);
        return;
    }
    batch_add(w, SCRIPT_ROLLBACK);
}

/* The rollback is ready: its job needs the changes the run recorded. */
static void rollback_ready(struct work *w)
{
    char krun[KEYS_MAX];
    keys_run(&w->s->cfg.keys, KEYS_RUN, w->run, krun);
    if (rconn_cmd(w->s->cmd, on_rollback_changes, w, "HGET %s gitState",
                  krun) != 0)
        work_done(w);
}

static void rollback_result(struct work *w)
{
    struct wire_result res;
    result_read(w, "the rollback's", &res);
    struct plan_env env = env_of(w->s);
    int rc = plan_rollback_result(&env, &w->re->ri, w->attempt, w->entry, &res,
                                  batch_plan(w->s, SCRIPT_ROLLBACK));
    wire_result_deinit(&res);
    if (rc) {
        work_done(w);
        return;
    }
    batch_add(w, SCRIPT_ROLLBACK);
}

/* ---- cancel ----------------------------------------------------------- */

static void cancel_apply(struct work *w)
{
    struct plan_env env = env_of(w->s);
    if ((w->expire ? plan_expire(&env, &w->re->ri, w->entry,
                                 batch_plan(w->s, SCRIPT_CANCEL))
                   : plan_cancel(&env, &w->re->ri, w->entry, w->reason,
                                 batch_plan(w->s, SCRIPT_CANCEL))) != 0) {
        work_done(w);
        return;
    }
    batch_add(w, SCRIPT_CANCEL);
}

/* ---- people in the loop: resolve, approve, retry ------------------------- */

/* A person's answer to a waiting step (or an approval's deadline): the
 * resolve transition checks that the step still waits. */
static void control_apply(struct work *w)
{
    struct plan_env env = env_of(w->s);
    struct plan_control c = {
        .kind = w->ctl,
        .action = w->action,
        .by = w->by,
        .comment = w->comment,
        .set = w->set,
        .attempt = w->attempt,
        .mark = w->entry,
    };
    struct weft_error err;
    weft_error_clear(&err);
    if (plan_resolve(&env, &w->re->ri, w->step, &c,
                     batch_plan(w->s, SCRIPT_RESOLVE), &err) != 0) {
        work_done(w); /* out of memory: the event stays pending */
        return;
    }
    log_info("control event", "run", w->run, "step", w->step, "event",
             plan_control_name(w->ctl), "action", w->action, "by", w->by, NULL);
    batch_add(w, SCRIPT_RESOLVE);
}

static void retry_apply(struct work *w)
{
    struct plan_env env = env_of(w->s);
    struct plan_retry_req rq = {
        .from = w->step,
        .by = w->by,
        .comment = w->comment,
        .seq = w->seq,
        .mark = w->entry,
    };
    if (plan_retry(&env, &w->re->ri, w->snap, w->finished, w->seen, &rq,
                   batch_plan(w->s, SCRIPT_RETRY)) != 0) {
        work_done(w);
        return;
    }
    log_info("retry requested", "run", w->run, "from", w->step, "by", w->by,
             NULL);
    batch_add(w, SCRIPT_RETRY);
}

/* HMGET finished retries: what the retry transition checks. */
static void on_retry_header(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct work *w = ud;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return; /* on_retry_steps, queued behind, ends the work */
    redisReply *fin = r->element[0], *n = r->element[1];
    if (fin->type == REDIS_REPLY_STRING)
        w->finished = weft_strndup(fin->str, fin->len);
    int64_t v = 0;
    if (n->type == REDIS_REPLY_STRING &&
        num_parse_i64(n->str, n->len, 0, INT64_MAX, &v) != 0)
        v = -1; /* unreadable: the transition finds it changed */
    w->seen = v;
    w->snapped = fin->type != REDIS_REPLY_STRING || w->finished != NULL;
}

static void on_retry_steps(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct work *w = ud;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || !w->snapped) {
        work_done(w); /* the event stays pending and is reclaimed */
        return;
    }
    w->snap = json_object();
    for (size_t i = 0; w->snap && i + 1 < r->elements; i += 2) {
        redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            strlen(k->str) != k->len)
            continue;
        /* Values that are not UTF-8 text are not ours: left out. */
        json_t *val = json_stringn(v->str, v->len);
        if (val == NULL || json_object_set_new(w->snap, k->str, val) != 0) {
            json_decref(w->snap);
            w->snap = NULL;
        }
    }
    if (w->snap == NULL) {
        work_done(w);
        return;
    }
    retry_apply(w);
}

/* Reads the run's header fields and steps (pipelined in order on the
 * command connection), then plans the retry from them. */
static void retry_begin(struct work *w)
{
    struct sched *s = w->s;
    char krun[KEYS_MAX], ksteps[KEYS_MAX];
    keys_run(&s->cfg.keys, KEYS_RUN, w->run, krun);
    keys_run(&s->cfg.keys, KEYS_RUN_STEPS, w->run, ksteps);
    if (rconn_cmd(s->cmd, on_retry_header, w, "HMGET %s finished retries",
                  krun) != 0) {
        work_done(w);
        return;
    }
    if (rconn_cmd(s->cmd, on_retry_steps, w, "HGETALL %s", ksteps) != 0)
        work_done(w);
}

/* ---- work lifecycle ----------------------------------------------------- */

static void work_run(struct work *w)
{
    if (w->kind == WORK_TASK) {
        task_begin(w);
        return;
    }
    if (!run_acquire(w))
        return;
    switch (w->kind) {
    case WORK_RESULT:
        if (is_rollback(w))
            rollback_result(w);
        else
            result_apply(w);
        break;
    case WORK_READY:
        if (is_rollback(w))
            rollback_ready(w);
        else if (w->from)
            part_apply(w);
        else if (w->state == NULL)
            ready_begin(w);
        else
            ready_apply(w);
        break;
    case WORK_CANCEL:
        cancel_apply(w);
        break;
    case WORK_RETRY:
        retry_begin(w);
        break;
    case WORK_CONTROL:
        control_apply(w);
        break;
    case WORK_TASK:
        break;
    }
}

static void work_done(struct work *w)
{
    struct sched *s = w->s;
    if (w->counted) {
        s->inflight--;
        s->stats.messages++;
    }
    if (w->marked) {
        strmap_del(&s->marks, w->entry, strlen(w->entry));
        if (w->answered)
            mark_answered(s, w->entry);
    }
    run_unref(s, w->re);
    weft_free(w->stream);
    weft_free(w->entry);
    weft_free(w->run);
    weft_free(w->step);
    weft_free(w->task);
    weft_free(w->digest);
    weft_free(w->workflow);
    weft_free(w->type);
    weft_free(w->body);
    weft_free(w->reason);
    weft_free(w->trace);
    weft_free(w->done_us);
    weft_free(w->timer);
    weft_free(w->blocked);
    json_decref(w->state);
    json_decref(w->extra);
    weft_free(w->action);
    weft_free(w->by);
    weft_free(w->comment);
    weft_free(w->set);
    json_decref(w->snap);
    weft_free(w->finished);
    weft_free(w);
    if (s->draining && s->inflight == 0 && s->drained_cb) {
        void (*cb)(void *) = s->drained_cb;
        s->drained_cb = NULL;
        cb(s->drained_ud);
        return;
    }
    read_more(s);
}

/* ---- parsing stream entries -------------------------------------------- */

static char *field_dup(redisReply *v)
{
    return v->type == REDIS_REPLY_STRING ? weft_strndup(v->str, v->len) : NULL;
}

/* Builds a work from one entry [id, [k, v, ...]] of stream `which`. */
static void entry_handle(struct sched *s, const char *which, redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return;
    struct work *w = weft_calloc(1, sizeof(*w));
    if (w == NULL)
        return; /* stays pending; reclaimed later */
    w->s = s;
    w->counted = 1;
    s->inflight++;
    w->stream = weft_strdup(which);
    w->entry = weft_strndup(e->element[0]->str, e->element[0]->len);
    if (w->stream == NULL || w->entry == NULL) {
        work_done(w);
        return;
    }
    redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY) {
        /* Deleted while pending (XAUTOCLAIM shows nil): nothing to do. */
        ack_entry(w);
        work_done(w);
        return;
    }
    char *attempt = NULL, *seq = NULL, *from = NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        const char *key = k->str;
        char **slot = NULL;
        if (strcmp(key, "run") == 0)
            slot = &w->run;
        else if (strcmp(key, "step") == 0)
            slot = &w->step;
        else if (strcmp(key, "task") == 0)
            slot = &w->task;
        else if (strcmp(key, "digest") == 0)
            slot = &w->digest;
        else if (strcmp(key, "workflow") == 0)
            slot = &w->workflow;
        else if (strcmp(key, "reason") == 0)
            slot = &w->reason;
        else if (strcmp(key, "trace") == 0)
            slot = &w->trace;
        else if (strcmp(key, "us") == 0)
            slot = &w->done_us;
        else if (strcmp(key, "kind") == 0)
            slot = &w->timer;
        else if (strcmp(key, "breaker") == 0)
            slot = &w->blocked;
        else if (strcmp(key, "attempt") == 0)
            slot = &attempt;
        else if (strcmp(key, "type") == 0)
            slot = &w->type;
        else if (strcmp(key, "action") == 0)
            slot = &w->action;
        else if (strcmp(key, "by") == 0)
            slot = &w->by;
        else if (strcmp(key, "comment") == 0)
            slot = &w->comment;
        else if (strcmp(key, "set") == 0)
            slot = &w->set;
        else if (strcmp(key, "seq") == 0)
            slot = &seq;
        else if (strcmp(key, "from") == 0)
            slot = &from;
        else if (strcmp(key, "body") == 0) {
            weft_free(w->body);
            w->body = weft_malloc(v->len ? v->len : 1);
            if (w->body) {
                memcpy(w->body, v->str, v->len);
                w->bodylen = v->len;
            }
            continue;
        }
        if (slot) {
            weft_free(*slot);
            *slot = field_dup(v);
        }
    }
    if (strcmp(which, "tasks") == 0) {
        w->kind = WORK_TASK;
        weft_free(attempt);
        weft_free(seq);
        weft_free(from);
        work_run(w);
        return;
    }
    int64_t a = 0;
    int bad_attempt =
        attempt && num_parse_i64(attempt, strlen(attempt), 1, UINT32_MAX, &a);
    weft_free(attempt);
    w->attempt = (uint32_t)a;
    w->seq = -1;
    int bad_seq =
        seq && num_parse_i64(seq, strlen(seq), 0, INT64_MAX, &w->seq) != 0;
    weft_free(seq);
    int64_t f64 = 0;
    int bad_from =
        from && num_parse_i64(from, strlen(from), 1, UINT32_MAX, &f64) != 0;
    weft_free(from);
    w->from = (uint32_t)f64;
    if (w->type == NULL) {
        dead_letter(w, "event has no 'type'");
        return;
    }
    if (w->run == NULL || !keys_valid_id(w->run, strlen(w->run))) {
        dead_letter(w, "event has no valid 'run'");
        return;
    }
    if (strcmp(w->type, "cancel") == 0) {
        w->kind = WORK_CANCEL;
    } else if (strcmp(w->type, "timeout") == 0 && w->timer &&
               strcmp(w->timer, "run") == 0) {
        w->kind = WORK_CANCEL; /* the workflow's timeout: the run fails */
        w->expire = 1;
    } else if (strcmp(w->type, "ready") == 0 && mark_seen(s, w->entry)) {
        work_done(w); /* another copy has it, or had it answered */
        return;
    } else if (strcmp(w->type, "result") == 0 ||
               strcmp(w->type, "timeout") == 0 ||
               strcmp(w->type, "ready") == 0) {
        w->kind = strcmp(w->type, "ready") == 0 ? WORK_READY : WORK_RESULT;
        if (strcmp(w->type, "timeout") == 0)
            w->deadline = w->timer && strcmp(w->timer, "queue") == 0 ? 2 : 1;
        if (w->step == NULL || !keys_valid_id(w->step, strlen(w->step)) ||
            bad_attempt || w->attempt == 0) {
            dead_letter(w, "event needs a valid 'step' and 'attempt'");
            return;
        }
        if ((w->deadline && w->timer && w->deadline != 2) ||
            (w->blocked &&
             (w->kind != WORK_READY ||
              !keys_valid_breaker(w->blocked, strlen(w->blocked))))) {
            dead_letter(w, "event has an unknown 'kind' or 'breaker'");
            return;
        }
        if (bad_from || (w->from && (w->kind != WORK_READY || w->blocked))) {
            dead_letter(w, "event has an invalid 'from'");
            return;
        }
    } else if (strcmp(w->type, "retry") == 0) {
        w->kind = WORK_RETRY;
        if ((w->step && !keys_valid_id(w->step, strlen(w->step))) || bad_seq) {
            dead_letter(w, "retry event has an invalid 'step' or 'seq'");
            return;
        }
    } else if (strcmp(w->type, "resolve") == 0 ||
               strcmp(w->type, "approve") == 0) {
        w->kind = WORK_CONTROL;
        w->ctl =
            w->type[0] == 'r' ? PLAN_CONTROL_RESOLVE : PLAN_CONTROL_APPROVE;
        if (w->step == NULL || !keys_valid_id(w->step, strlen(w->step)) ||
            bad_attempt) {
            dead_letter(w, "event needs a valid 'step' (and 'attempt', "
                           "when given)");
            return;
        }
    } else {
        dead_letter(w, "unknown event type");
        return;
    }
    /* The reply of the script that made this mark may bring it too, when
     * it comes after this read: registered, that copy is not spawned. */
    if (w->kind == WORK_READY &&
        strmap_put(&s->marks, w->entry, strlen(w->entry), w, NULL) == 0)
        w->marked = 1;
    work_run(w);
}

/* Handles an XREADGROUP / XAUTOCLAIM entries array. */
static void entries_handle(struct sched *s, const char *which,
                           redisReply *entries)
{
    if (entries->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < entries->elements; i++)
        entry_handle(s, which, entries->element[i]);
}

static const char *which_of(struct sched *s, redisReply *name)
{
    if (name->type != REDIS_REPLY_STRING)
        return NULL;
    if (strcmp(name->str, s->k_tasks) == 0)
        return "tasks";
    if (strcmp(name->str, s->k_events) == 0)
        return "events";
    return NULL;
}

static void on_read(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct sched *s = ud;
    s->reading = 0;
    if (r == NULL)
        return; /* reconnect restarts reading */
    if (r->type == REDIS_REPLY_ERROR) {
        log_error("XREADGROUP failed", "error", r->str, NULL);
        if (strncmp(r->str, "NOGROUP", 7) == 0)
            s->groups_ready = 0;
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *st = r->element[i];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2)
                continue;
            const char *which = which_of(s, st->element[0]);
            if (which)
                entries_handle(s, which, st->element[1]);
        }
    }
    read_more(s);
}

static void read_more(struct sched *s)
{
    if (s->reading || s->draining || !s->groups_ready ||
        s->inflight >= s->cfg.batch || !rconn_is_up(s->rd))
        return;
    char count[16];
    snprintf(count, sizeof(count), "%u", s->cfg.batch - s->inflight);
    char block[16];
    snprintf(block, sizeof(block), "%d", SCHED_BLOCK_MS);
    const char *argv[] = {"XREADGROUP", "GROUP",     KEYS_GROUP_SCHEDULERS,
                          s->name,      "COUNT",     count,
                          "BLOCK",      block,       "STREAMS",
                          s->k_tasks,   s->k_events, ">",
                          ">"};
    if (rconn_argv(s->rd, on_read, s, 13, argv, NULL) == 0)
        s->reading = 1;
}

/* ---- groups, timers, reclaim ------------------------------------------ */

static void on_group(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct sched *s = ud;
    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        log_error("XGROUP CREATE failed", "error", r->str, NULL);
        return;
    }
    /* Called for the events group, which is created second. */
    s->groups_ready = 1;
    read_more(s);
}

/* Groups start at 0, not $: the streams hold only entries not yet
 * consumed (acknowledged ones are deleted), and a task submitted before
 * the first scheduler ever connected must still run. */
static void create_groups(struct sched *s)
{
    rconn_cmd(s->cmd, NULL, NULL, "XGROUP CREATE %s %s 0 MKSTREAM", s->k_tasks,
              KEYS_GROUP_SCHEDULERS);
    rconn_cmd(s->cmd, on_group, s, "XGROUP CREATE %s %s 0 MKSTREAM",
              s->k_events, KEYS_GROUP_SCHEDULERS);
}

/* The answer to the FUNCTION LOAD sent on connecting. A library that
 * is not there stops every transition, so it is said plainly: most likely
 * a Redis older than 7.0 (no functions) or a user without FUNCTION LOAD.
 * No answer (NULL) is a lost connection, which says so itself. */
static void on_library_load(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    (void)ud;
    if (r != NULL && !rconn_library_loaded(r))
        log_error("cannot load weft's function library (weft needs Redis 7.0 "
                  "or later, and FUNCTION LOAD for the scheduler's user)",
                  "library", scripts_library_name(), "error", r->str, NULL);
}

static void on_cmd_state(struct rconn *c, bool up, void *ud)
{
    (void)c;
    struct sched *s = ud;
    if (up) {
        log_info("connected to redis", "conn", "cmd", NULL);
        /* The library and the scripts are loaded up front (and again
         * when a call finds them gone: rconn_eval). */
        size_t len;
        const char *text = scripts_library(&len);
        rconn_cmd(s->cmd, on_library_load, NULL, "FUNCTION LOAD %b", text, len);
        for (int id = 0; id < SCRIPT_COUNT; id++) {
            text = scripts_text((enum script_id)id, &len);
            if (text != NULL)
                rconn_cmd(s->cmd, NULL, NULL, "SCRIPT LOAD %b", text, len);
        }
        create_groups(s);
    } else {
        s->groups_ready = 0;
        log_warn("lost redis connection", "conn", "cmd", NULL);
    }
}

static void on_rd_state(struct rconn *c, bool up, void *ud)
{
    (void)c;
    struct sched *s = ud;
    s->reading = 0;
    if (up)
        read_more(s);
}

static void on_timer(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    struct sched *s = ud;
    if (!rconn_is_up(s->cmd) || s->draining)
        return;
    char now[24], limit[16];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms());
    snprintf(limit, sizeof(limit), "%d", SCHED_TIMER_BATCH);
    const char *argv[] = {s->k_delayed, s->k_events, now, limit, "ready"};
    rconn_eval(s->cmd, SCRIPT_FIRE_DELAYED, NULL, NULL, 2, 5, argv, NULL);
    const char *dargv[] = {s->k_deadlines, s->k_events, now, limit, "timeout"};
    rconn_eval(s->cmd, SCRIPT_FIRE_DELAYED, NULL, NULL, 2, 5, dargv, NULL);
}

static void on_claimed(struct rconn *c, redisReply *r, void *ud,
                       const char *which)
{
    (void)c;
    struct sched *s = ud;
    /* Redis 7.0 answers [next id, entries, deleted ids]. */
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
        r->element[1]->type == REDIS_REPLY_ARRAY) {
        if (r->element[1]->elements > 0)
            log_info("reclaimed messages", "stream", which, NULL);
        entries_handle(s, which, r->element[1]);
    }
}

static void on_claimed_tasks(struct rconn *c, redisReply *r, void *ud)
{
    on_claimed(c, r, ud, "tasks");
}

static void on_claimed_events(struct rconn *c, redisReply *r, void *ud)
{
    on_claimed(c, r, ud, "events");
}

static void reclaim(struct sched *s, const char *key, rconn_reply_cb cb)
{
    char idle[16];
    snprintf(idle, sizeof(idle), "%u", s->cfg.claim_idle_ms);
    const char *argv[] = {"XAUTOCLAIM", key,  KEYS_GROUP_SCHEDULERS,
                          s->name,      idle, "0-0",
                          "COUNT",      "100"};
    rconn_argv(s->cmd, cb, s, 8, argv, NULL);
}

/* weft:runs lists every run by creation time; a run's own keys expire
 * after the retention, and this removes the ids whose header is gone, so
 * the index stays bounded too. */
static void on_janitor_range(struct rconn *c, redisReply *r, void *ud)
{
    (void)c;
    struct sched *s = ud;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return;
    char runs[KEYS_MAX];
    keys_global(&s->cfg.keys, KEYS_RUNS, runs);
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *id = r->element[i];
        char key[KEYS_MAX];
        if (id->type != REDIS_REPLY_STRING ||
            keys_run(&s->cfg.keys, KEYS_RUN, id->str, key) == 0)
            continue;
        const char *argv[] = {runs, key, id->str};
        rconn_eval(s->cmd, SCRIPT_UNINDEX, NULL, NULL, 2, 3, argv, NULL);
    }
}

static void janitor(struct sched *s)
{
    if (s->cfg.ttl_s == 0)
        return;
    char runs[KEYS_MAX], cutoff[24];
    keys_global(&s->cfg.keys, KEYS_RUNS, runs);
    snprintf(cutoff, sizeof(cutoff), "%lld",
             (long long)(now_ms() - (int64_t)s->cfg.ttl_s * 1000));
    const char *argv[] = {
        "ZRANGEBYSCORE",    runs, "-inf", cutoff, "LIMIT", "0",
        SCHED_JANITOR_BATCH};
    rconn_argv(s->cmd, on_janitor_range, s, 7, argv, NULL);
}

static void on_reclaim(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    struct sched *s = ud;
    if (!rconn_is_up(s->cmd) || !s->groups_ready || s->draining ||
        s->inflight >= s->cfg.batch)
        return;
    reclaim(s, s->k_tasks, on_claimed_tasks);
    reclaim(s, s->k_events, on_claimed_events);
    /* Acknowledged entries leave the streams here, in bulk. */
    const char *targv[] = {s->k_tasks, KEYS_GROUP_SCHEDULERS};
    rconn_eval(s->cmd, SCRIPT_TRIM, NULL, NULL, 1, 2, targv, NULL);
    const char *eargv[] = {s->k_events, KEYS_GROUP_SCHEDULERS};
    rconn_eval(s->cmd, SCRIPT_TRIM, NULL, NULL, 1, 2, eargv, NULL);
    if (++s->ticks % SCHED_JANITOR_TICKS == 0)
        janitor(s);
}

/* ---- lifecycle -------------------------------------------------------- */

struct sched *sched_new(struct event_base *base, const struct sched_config *cfg)
{
    struct sched *s = weft_calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->base = base;
    s->cfg = *cfg;
    if (s->cfg.batch == 0)
        s->cfg.batch = 256;
    if (s->cfg.hist_max == 0)
        s->cfg.hist_max = 100000;
    if (s->cfg.claim_idle_ms == 0)
        s->cfg.claim_idle_ms = 5000;
    s->name = weft_strdup(cfg->name);
    s->workflows = cfg->workflows ? weft_strdup(cfg->workflows) : NULL;
    strmap_init(&s->defs);
    strmap_init(&s->runs);
    strmap_init(&s->marks);
    strmap_init(&s->recent);
    keys_global(&s->cfg.keys, KEYS_TASKS, s->k_tasks);
    keys_global(&s->cfg.keys, KEYS_EVENTS, s->k_events);
    keys_global(&s->cfg.keys, KEYS_DELAYED, s->k_delayed);
    keys_global(&s->cfg.keys, KEYS_DEADLINES, s->k_deadlines);
    keys_global(&s->cfg.keys, KEYS_DLQ, s->k_dlq);
    s->timer = event_new(base, -1, EV_PERSIST, on_timer, s);
    s->flush_ev = event_new(base, -1, 0, on_flush, s);
    s->reclaim = event_new(base, -1, EV_PERSIST, on_reclaim, s);
    if (s->name == NULL || s->timer == NULL || s->reclaim == NULL ||
        s->flush_ev == NULL || (cfg->workflows && s->workflows == NULL)) {
        sched_free(s);
        return NULL;
    }
    return s;
}

int sched_start(struct sched *s)
{
    char cname[KEYS_MAX];
    snprintf(cname, sizeof(cname), "%s-cmd", s->name);
    s->cmd = rconn_new(s->base, &s->cfg.url, cname, on_cmd_state, s);
    snprintf(cname, sizeof(cname), "%s-read", s->name);
    s->rd = rconn_new(s->base, &s->cfg.url, cname, on_rd_state, s);
    if (s->cmd == NULL || s->rd == NULL)
        return WEFT_ENOMEM;
    struct timeval tv = {0, SCHED_TIMER_MS * 1000};
    struct timeval rv = {SCHED_RECLAIM_MS / 1000,
                         (SCHED_RECLAIM_MS % 1000) * 1000};
    event_add(s->timer, &tv);
    event_add(s->reclaim, &rv);
    return 0;
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    struct sched *s = ud;
    if (s->drained_cb) {
        void (*cb)(void *) = s->drained_cb;
        s->drained_cb = NULL;
        cb(s->drained_ud);
    }
}

void sched_drain(struct sched *s, uint32_t grace_ms, void (*done_cb)(void *),
                 void *ud)
{
    s->draining = 1;
    s->drained_cb = done_cb;
    s->drained_ud = ud;
    event_del(s->timer);
    event_del(s->reclaim);
    if (s->inflight == 0) {
        s->drained_cb = NULL;
        done_cb(ud);
        return;
    }
    s->drain_timer = evtimer_new(s->base, on_drain_timeout, s);
    struct timeval tv = {grace_ms / 1000, (grace_ms % 1000) * 1000};
    if (s->drain_timer)
        evtimer_add(s->drain_timer, &tv);
}

void sched_free(struct sched *s)
{
    if (s == NULL)
        return;
    /* Unsent transitions: their messages stay pending for a reclaim. */
    s->draining = 1;
    s->drained_cb = NULL;
    for (int id = 0; id < SCRIPT_COUNT; id++) {
        for (size_t i = 0; i < s->batches[id].n; i++)
            work_done(s->batches[id].works[i]);
        plan_deinit(&s->batches[id].plan);
        weft_free(s->batches[id].works);
    }
    rconn_free(s->rd);
    rconn_free(s->cmd);
    if (s->timer)
        event_free(s->timer);
    if (s->reclaim)
        event_free(s->reclaim);
    if (s->drain_timer)
        event_free(s->drain_timer);
    if (s->flush_ev)
        event_free(s->flush_ev);
    while (s->lru_head) {
        struct runent *e = s->lru_head;
        lru_unlink(s, e);
        strmap_del(&s->runs, e->ri.run, strlen(e->ri.run));
        e->refs = 0;
        runent_free(s, e);
    }
    for (size_t i = 0; i < s->defs.cap; i++) {
        struct defent *d = s->defs.slots[i].value;
        if (s->defs.slots[i].key && d) {
            wf_free(d->wf);
            weft_free(d->digest);
            weft_free(d);
        }
    }
    strmap_deinit(&s->defs);
    strmap_deinit(&s->runs);
    strmap_deinit(&s->marks);
    strmap_deinit(&s->recent);
    for (size_t i = 0; i < SCHED_RECENT_MARKS; i++)
        weft_free(s->recent_ring[i]);
    weft_free(s->name);
    weft_free(s->workflows);
    weft_free(s);
}

bool sched_ready(const struct sched *s)
{
    return rconn_is_up(s->cmd) && rconn_is_up(s->rd) && s->groups_ready;
}

const struct sched_stats *sched_stats(const struct sched *s)
{
    return &s->stats;
}
