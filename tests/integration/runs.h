/* runs.h - runs as integration tests drive them over a synchronous
 * connection: submit a workflow the way `weft submit` does (definition
 * pinned by digest, task entry on weft:tasks), and follow a run's
 * history stream until the run ends (blocking XREAD: no sleeping).
 */
#ifndef WEFT_TESTS_INTEGRATION_RUNS_H
#define WEFT_TESTS_INTEGRATION_RUNS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

/* Loads yaml, stores its definition and adds a task entry for run with
 * task (JSON text). 0, or -1 with the reason on stderr. */
int runs_submit(redisContext *c, const char *yaml, const char *task,
                const char *run);
/* The same with a W3C traceparent on the task entry (its `trace` field):
 * the run joins that trace. */
int runs_submit_traced(redisContext *c, const char *yaml, const char *task,
                       const char *run, const char *trace);

/* Follows run's history until a run entry with a final status; returns
 * that status in out (size bytes) and out, or "timeout" / "error". */
const char *runs_wait(redisContext *c, const char *run, int timeout_s,
                      char *out, size_t size);

#endif
