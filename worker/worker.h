/* worker.h - the claim/run/report loop of weft-worker
 * (docs/protocol.md, "weft:q:<queue>" and "weft:events").
 *
 * A worker reads jobs from its queues through the `workers` consumer
 * group, verifies each job's signature and body, marks the step started
 * (the `start` transition), runs the handler registered for the job's
 * type and reports the outcome with one MULTI/EXEC round trip (XADD the
 * result event, XACK and XDEL the job). It holds at most `concurrency`
 * jobs, heartbeats the ones it holds so that other workers do not take
 * them, reclaims jobs that dead workers left pending, and sends what it
 * cannot run to the dead-letter stream.
 *
 * Everything runs on one libevent loop: no threads. Three connections:
 * one for the blocking XREADGROUP, one for everything else, and (later)
 * one for the cancel channel. Cancellation is also found by polling the
 * steps hash of each running job, which is durable where pub/sub is not.
 */
#ifndef WEFT_WORKER_WORKER_H
#define WEFT_WORKER_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "error.h"
#include "handler.h"
#include "hmac.h"
#include "keys.h"
#include "redisurl.h"

/* One XREADGROUP names every queue; far more than one worker should
 * serve, and it bounds the command's argv. */
#define WORKER_QUEUES_MAX 64
/* Jobs held at once. Each costs a few hundred bytes plus its body; the
 * bound keeps a typo from asking for millions. */
#define WORKER_CONCURRENCY_MAX 4096
/* Consumer names appear in the steps hash and in logs. */
#define WORKER_NAME_MAX 128
/* Below this the heartbeat (visibility / 3) would flood Redis. */
#define WORKER_VISIBILITY_MIN_MS 100
/* A day: a longer visibility means a dead worker's jobs wait a day. */
#define WORKER_VISIBILITY_MAX_MS (24u * 3600 * 1000)
/* Deliveries before a job is dead-lettered. */
#define WORKER_DELIVERY_LIMIT_MAX 1000

struct worker_config {
    const struct redis_url *url; /* borrowed during worker_new only */
    const struct keys *keys;     /* copied */
    const char *const *queues;   /* nqueues valid ids; copied */
    size_t nqueues;              /* 1..WORKER_QUEUES_MAX */
    const char *name;            /* consumer name; copied */
    uint32_t concurrency;        /* 1..WORKER_CONCURRENCY_MAX */
    /* A job pending this long without a heartbeat is taken over by other
     * workers (XAUTOCLAIM). WORKER_VISIBILITY_MIN_MS..MAX_MS. */
    uint32_t visibility_ms;
    /* Deliveries allowed; past it a reclaimed job goes to the DLQ and the
     * attempt fails as a retryable error (the step's retry policy
     * decides). 1..WORKER_DELIVERY_LIMIT_MAX. */
    uint32_t delivery_limit;
    const struct hmac_key *hmac; /* copied */
    /* NULL-terminated table to run jobs with; NULL means handler_table.
     * Borrowed: must outlive the worker. Tests pass their own. */
    const struct handler *const *handlers;
    /* Called once per job whose result Redis accepted, with the status
     * reported and the time from the handler's start to the report, in
     * seconds (metrics, logs). job is borrowed for the call. NULL: none.
     * Runs on the loop; it must not call into the worker. */
    void (*on_done)(void *ud, const struct wire_job *job, enum wire_status st,
                    double seconds);
    void *on_done_ud;
};

/* Counters since worker_new; read with worker_stats. */
struct worker_stats {
    uint64_t claimed;   /* entries read (XREADGROUP) or reclaimed */
    uint64_t reclaimed; /* of which taken over from other consumers */
    uint64_t started;   /* jobs whose handler was started */
    uint64_t succeeded; /* results reported with status success */
    uint64_t failed;    /* results reported with any other status */
    uint64_t timed_out; /* of failed: timeout */
    uint64_t cancelled; /* of failed: cancelled */
    uint64_t rejected;  /* entries sent to the DLQ */
    uint64_t stale;     /* jobs `start` refused: acked without running */
    uint32_t held;      /* jobs held right now (<= concurrency) */
};

struct worker;

/* Called once when worker_stop has finished draining. It must not call
 * worker_free (stop the loop instead and free after). */
typedef void (*worker_stopped_cb)(void *ud);

/* Validates cfg, copies it and creates the connections on base (they
 * start connecting at once). NULL with err filled: WEFT_EINVAL (err says
 * which setting) or WEFT_ENOMEM. Runs on base's thread. */
struct worker *worker_new(struct event_base *base,
                          const struct worker_config *cfg,
                          struct weft_error *err);

/* Stops claiming (the blocking read is dropped, reclaiming ends), lets
 * held jobs finish for up to grace_ms, then cancels the ones still
 * running and leaves them unacknowledged, so another worker reclaims
 * them; then calls cb (from the loop, never from inside this call). A
 * second call is ignored. */
void worker_stop(struct worker *w, uint32_t grace_ms, worker_stopped_cb cb,
                 void *ud);

/* Cancels the running job named by member (`run|step|attempt`, the form
 * of the cancel channel and the deadlines zset), if this worker runs it;
 * its result is reported as cancelled. Unknown members are ignored. */
void worker_cancel(struct worker *w, const char *member, size_t len);

/* True while both Redis connections are up and every queue's consumer
 * group exists: the worker can claim jobs (its /readyz). */
bool worker_ready(const struct worker *w);

/* Live counters; valid until worker_free. */
const struct worker_stats *worker_stats(const struct worker *w);

/* Closes the connections and frees everything. Jobs still held are
 * cancelled without being reported or acknowledged. NULL: no-op. Not
 * from inside a worker callback. */
void worker_free(struct worker *w);

#endif
