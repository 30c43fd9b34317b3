/* http.h - the worker's health and metrics endpoints (docs/api.md,
 * "Worker"): /healthz, /readyz and /metrics in Prometheus text, plus the
 * per-job completion hook that feeds the step duration histogram and
 * writes each finished job's log line (run, step, attempt, persona,
 * trace).
 *
 * Serves on the worker's event_base; no Redis connection of its own (it
 * reports what the worker counts). Only GET and HEAD of those three
 * paths; no request body is read.
 */
#ifndef WEFT_WORKER_HTTP_H
#define WEFT_WORKER_HTTP_H

#include <stdint.h>

#include <event2/event.h>

#include "error.h"
#include "wire.h"
#include "worker.h"

/* Loopback by default, as the scheduler's; a pod sets 0.0.0.0:9090. */
#define WORKER_HTTP_DEFAULT_ADDR "127.0.0.1:9090"

struct worker_http;

/* Listens on addr ("HOST:PORT", NULL for the default). Until
 * worker_http_attach, /readyz answers 503 and /metrics has no job
 * counters. NULL with err filled: WEFT_EINVAL (address), WEFT_EIO (cannot
 * listen), WEFT_ENOMEM. */
struct worker_http *worker_http_start(struct event_base *base, const char *addr,
                                      struct weft_error *err);

/* Reports w's readiness and counters from now on (borrowed: w must
 * outlive the server, or be detached with NULL). */
void worker_http_attach(struct worker_http *wh, const struct worker *w);

/* The worker_config.on_done hook: ud is the struct worker_http. Counts
 * seconds in weft_step_duration_seconds{type, persona} and logs the job's
 * end at info level. */
void worker_http_on_done(void *ud, const struct wire_job *job,
                         enum wire_status st, double seconds);

uint16_t worker_http_port(const struct worker_http *wh);

/* Closes the listener and its connections. NULL: no-op. */
void worker_http_free(struct worker_http *wh);

#endif
