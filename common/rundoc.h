/* rundoc.h - a run as JSON documents, built from what Redis holds
 * (docs/protocol.md): the status document of `weft status --json` and
 * `GET /v1/runs/{id}`, the run's context, its history entries and its
 * definition's shape.
 *
 * Pure functions over Redis replies: no I/O, so the CLI (blocking hiredis)
 * and the scheduler's HTTP API (async, inside a reply callback) build the
 * same documents. Replies are borrowed for the duration of the call only;
 * nothing returned points into them.
 */
#ifndef WEFT_COMMON_RUNDOC_H
#define WEFT_COMMON_RUNDOC_H

#include <stdbool.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "wfdef.h"

/* The status document (docs/cli.md, `weft status --json`):
 *   {"id", "status", "workflow", "digest", "error", "created", "started",
 *    "finished", "steps": {"<id>": {"status", "attempts", "queued",
 *    "started", "finished", "worker", "error", "waiting", "via", "wait",
 *    "by"}}}
 * waiting: the circuit breaker a pending step waits for; via: the
 * fallback persona its attempt was diverted to (null when none).
 * wait is null unless the step waits for a person: {"kind": "approval" |
 * "escalation", "message", "approvers", "deadline"}; by is who last
 * answered it (resolve, approve) or null.
 * from the HGETALL replies of the run header and steps hash. Times are ms
 * since the epoch or null; attempts is 0 before the first dispatch. Steps
 * follow wf's pre-order when wf is given (the pinned definition), then
 * every other step of the hash sorted by id. header and steps must be
 * arrays (the caller checks that the run exists). Returns 0 and *doc (new
 * reference), WEFT_EINVAL for a non-array reply, or WEFT_ENOMEM; *doc
 * unchanged on failure. */
int rundoc_build(const char *run, const redisReply *header,
                 const redisReply *steps, const struct wf *wf, json_t **doc);

/* The run's context (docs/protocol.md, run header and state hash):
 *   {"task", "variables", "workflowId", "repoRoot", "branchName",
 *    "baseBranch", "milestone", "state", "artifacts", "personaResults",
 *    "gitState"}
 * header is the run header's HGETALL reply, state the state hash's (may be
 * NULL). JSON text that does not parse is kept as a string. NULL on OOM
 * or when header is not an array. */
json_t *rundoc_context(const redisReply *header, const redisReply *state);

/* One history stream entry [id, [field, value, ...]] as the object
 * `weft watch --json` prints: {"id", "type", "step", "status", "ts",
 * ...other fields}, with `attempt` as a number. NULL for a malformed
 * entry or on OOM. */
json_t *rundoc_history_entry(const redisReply *entry);

/* The definition's shape, for drawing the DAG:
 *   {"name", "digest", "steps": [{"id", "type", "persona", "queue",
 *    "parent", "depth", "deps": [ids], "children": [ids]}...],
 *    "order": [ids]}
 * steps in pre-order (a composite before its children); deps are the
 * step's own `dependencies` (siblings); children lists the ids of a
 * composite's steps (then_steps, then else_steps); order is a
 * topological order. NULL on OOM. */
json_t *rundoc_definition(const struct wf *wf);

/* A circuit breaker's hash (HGETALL of `<prefix>:breaker:<name>`,
 * docs/protocol.md) as an object of its fields, integers as numbers.
 * NULL for an empty or non-array reply, or on OOM. */
json_t *rundoc_breaker(const redisReply *hash);

/* The names of the circuit breakers wf's steps may go through: their
 * personas and fallback personas, and `git:<remote>` of git push, fetch
 * and pull steps with a literal remote. A new sorted array of strings
 * without duplicates (empty for NULL); NULL on OOM. Whether a breaker is
 * enabled depends on the registry, so some may never exist. */
json_t *rundoc_breaker_names(const struct wf *wf);

/* True for run statuses that end a watch: success, failed, cancelled,
 * waiting_for_human. */
bool rundoc_is_final(const char *status);

/* Value of field in a flat [field, value, ...] array reply (HGETALL,
 * stream entry fields) as a NUL-terminated string without embedded NUL,
 * or NULL. Borrowed from r. */
/* The value of field in a flat [field, value, ...] reply (HGETALL, a
 * stream entry), or NULL. Borrowed from r. */
const redisReply *rundoc_reply_field(const redisReply *r, const char *field);

const char *rundoc_reply_str(const redisReply *r, const char *field);

#endif
