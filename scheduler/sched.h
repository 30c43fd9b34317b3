/* sched.h - the scheduler: consumes weft:tasks and weft:events through the
 * `schedulers` consumer group and applies each message as one transition
 * script (docs/protocol.md). Holds nothing that cannot be rebuilt from
 * Redis: its caches (definitions, run headers) are of immutable data.
 * Runs on one libevent loop; any number of replicas share the group.
 */
#ifndef WEFT_SCHEDULER_SCHED_H
#define WEFT_SCHEDULER_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "hmac.h"
#include "keys.h"
#include "personas.h"
#include "routes.h"
#include "redisurl.h"

struct sched_config {
    struct redis_url url; /* borrowed */
    struct keys keys;
    struct hmac_key hmac;
    const char *name;            /* consumer name, unique per process */
    const char *workflows;       /* directory for tasks naming a `workflow` */
    const struct routes *routes; /* coordinator rules (borrowed) or NULL */
    const struct personas *personas; /* persona queues (borrowed) or NULL */
    uint32_t batch;                  /* entries per XREADGROUP; default 256 */
    uint32_t hist_max;               /* per-run history cap; default 100000 */
    uint32_t ttl_s;                  /* retention of finished runs; 0 = keep */
    uint32_t claim_idle_ms; /* reclaim others' messages idle this long */
};

struct sched_stats {
    uint64_t messages;    /* stream entries handled */
    uint64_t transitions; /* scripts that changed state */
    uint64_t stale;       /* scripts that found the state already moved */
    uint64_t dead;        /* entries sent to the DLQ */
    uint64_t runs_done;
    uint64_t retries;  /* step retries scheduled (finish set a timer) */
    uint64_t timeouts; /* step attempts that ended in a timeout (a
                          result with status timeout, or a deadline) */
};

struct sched;

/* NULL on OOM. cfg is copied (url and strings borrowed: keep them alive). */
struct sched *sched_new(struct event_base *base,
                        const struct sched_config *cfg);
/* Connects and starts consuming. */
int sched_start(struct sched *s);
/* Stops reading new messages; done_cb runs once the messages in flight
 * are applied (or after grace_ms). */
void sched_drain(struct sched *s, uint32_t grace_ms, void (*done_cb)(void *),
                 void *ud);
void sched_free(struct sched *s);

bool sched_ready(const struct sched *s);
const struct sched_stats *sched_stats(const struct sched *s);

#endif
