/* handler.h - the interface between the worker's claim/report loop and
 * the code that executes one kind of step.
 *
 * The loop (worker.c) claims a job, verifies and decodes it, marks it
 * started, and calls the handler registered for its `type`. The handler
 * does the work on the worker's event loop (spawning processes, reading
 * pipes, timers: never blocking) and reports exactly once with
 * job_complete(). The loop enforces the step's timeout: it calls cancel
 * and reports the attempt as timed out; a handler's cancel must stop the
 * work promptly (kill the process group) and still call job_complete().
 * Adding a step type (persona, git) means adding a handler, never
 * touching the loop.
 */
#ifndef WEFT_WORKER_HANDLER_H
#define WEFT_WORKER_HANDLER_H

#include <event2/event.h>

#include "keys.h"
#include "wire.h"

struct rconn;

struct job;

struct handler {
    const char *type; /* step type it runs: "noop", "persona-request", ... */
    /* Starts the job. Returns 0 when the handler took it (it will call
     * job_complete exactly once), or a negative code (the loop reports an
     * error result itself and never calls cancel). */
    int (*start)(struct job *j);
    /* Asks the handler to stop the job (timeout, cancellation, shutdown).
     * It must still call job_complete, now or later. */
    void (*cancel)(struct job *j);
    void *ud; /* handler-wide state (persona registry, git cache) */
};

/* What a handler may read of a job; valid until job_complete returns. */
const struct wire_job *job_spec(const struct job *j);
struct event_base *job_base(const struct job *j);
const struct handler *job_handler(const struct job *j);
/* The worker's command connection and key names, for a handler that
 * reads the run (persona requests carry state, artifacts and gitState
 * read at start). Borrowed: valid while the job runs. Commands must not
 * block; a reply may come after job_complete (or be NULL on shutdown),
 * so its callback must not assume the job still exists. */
struct rconn *job_redis(const struct job *j);
const struct keys *job_keys(const struct job *j);
/* Per-job slot for the handler's own state. */
void *job_data(const struct job *j);
void job_set_data(struct job *j, void *data);

/* Reports the outcome. The loop takes ownership of *res's contents (the
 * struct itself may live on the caller's stack) and clears *res. After
 * this call the handler must not touch j. If the job was cancelled the
 * status given is replaced by the cancellation reason (timeout or
 * cancelled). */
void job_complete(struct job *j, struct wire_result *res);

/* The noop handler: succeeds at once with a null result, unless its
 * params script another outcome (result, verdict, fail_until, delay_ms:
 * see handler_noop.c). */
extern const struct handler handler_noop;

/* The persona-request step (handler_persona.c, docs/personas.md): runs
 * the persona's exec adapter from the registry. handler_persona_use sets
 * the registry (borrowed: it must outlive every job; NULL = none, and
 * every persona job fails as fatal). Call before the loop runs. */
struct personas;
extern const struct handler handler_persona;
void handler_persona_use(const struct personas *reg);

/* The git-operation step (handler_git.c, docs/git.md): runs the git
 * operation in a forked child in the run's repository. */
extern const struct handler handler_git;

/* Every handler weft-worker runs, NULL-terminated (worker/handlers.c):
 * the one place a step type is registered. Types are unique. */
extern const struct handler *const handler_table[];

#endif
