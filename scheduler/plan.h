/* plan.h - builds the inputs of the transition scripts from a definition.
 *
 * The Lua scripts (common/lua) know nothing of the workflow graph; for
 * each transition the scheduler hands them a plan: a JSON document with
 * the step's own edges (its dependents, its enclosing groups), and the
 * jobs of the steps that may become ready, rendered and signed in advance
 * when they need no evaluation. Everything here is a pure function of the
 * definition, the run's fixed context and the scope given, so it is unit
 * tested without Redis and a replay after a crash builds the same plan.
 */
#ifndef WEFT_SCHEDULER_PLAN_H
#define WEFT_SCHEDULER_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "hmac.h"
#include "keys.h"
#include "personas.h"
#include "strmap.h"
#include "wfdef.h"
#include "wire.h"

/* What the scheduler knows of a run that never changes after creation. */
struct runinfo {
    char *run;
    char *digest;
    const struct wf *wf; /* borrowed from the definition cache */
    json_t *task;        /* owned */
    json_t *vars;        /* rendered variables, owned */
    json_t *ctx;         /* workflowId, repoRoot, branchName, baseBranch,
                            milestone; owned */
    char *trace;         /* 32 hex digits */
};

/* Settings every plan carries. */
struct plan_env {
    const struct keys *keys;
    const struct hmac_key *hmac;
    int64_t now_ms;
    uint32_t hist_max;               /* per-run history cap (entries) */
    uint32_t ttl_s;                  /* retention of finished runs; 0 = keep */
    const struct personas *personas; /* persona -> queue; may be NULL */
    const char *who; /* the scheduler's consumer name, for dead letters
                        (dlq_by); may be NULL */
};

/* A plan: a batch of transitions for one script call. Each plan_*
 * builder below appends one transition; the batch is sent as one FCALL
 * (see common/lua/lib.lua for the layout): KEYS are the five shared keys,
 * then each transition's run keys and the queues its jobs go to (deduped
 * across the batch), ARGV[2] the JSON array of transitions, ARGV[3..] the
 * job bodies. A builder that fails leaves the batch as it was (keys and
 * bodies it added stay, unused). */
struct plan {
    char **keys; /* KEYS, owned; the first five are the shared ones */
    uint32_t nkeys, capkeys;
    struct strmap keyidx; /* key -> its 1-based index in keys */
    json_t *doc;   /* JSON array of transitions, owned; NULL when empty */
    char **bodies; /* owned msgpack bodies */
    size_t *blens;
    uint32_t nbodies;
    /* What every transition of the batch shares, from the plan_env of
     * its first one: sent once, beside the plans (plan_argv). */
    uint32_t hist_max, ttl_s;
    char chan[KEYS_MAX];
};

/* Transitions in p. */
/* Writes 2 * nbytes random lowercase hex digits and a NUL into out: ids
 * (traces, spans) unique in practice, not secrets. */
void plan_random_hex(char *out, size_t nbytes);

size_t plan_size(const struct plan *p);
/* The i-th transition (borrowed), for tests and logs. */
json_t *plan_get(const struct plan *p, size_t i);

void plan_init(struct plan *p);
void plan_deinit(struct plan *p);

/* Builds the argv of FCALL's keys and args for p (after the function
 * and numkeys), with now_us (microseconds, as text; borrowed). The
 * batch goes as {"hist_max", "ttl", "chan", "plans": [...]}: *argc, argv
 * and lens are owned by the caller (weft_free of argv and lens; the strings are
 * borrowed from p and the serialized doc stored in *docstr, also owned).
 * When only is non-NULL the batch sent holds just that transition (keys
 * and bodies are positional, so they are sent whole). */
int plan_argv(const struct plan *p, const char *now_us, json_t *only,
              int *nkeys, int *argc, const char ***argv, size_t **lens,
              char **docstr);

/* True when step s can be dispatched without evaluating anything: it has
 * no condition, is not a composite, and its templated fields are all
 * literal. Such jobs are rendered ahead of time. */
bool plan_step_is_static(const struct wf_step *s);

/* The state key stem for a step: its id with '-' written '_'. out must
 * hold WF_MAX_ID_LEN + 1 bytes. */
void plan_state_stem(const char *id, char *out);

/* Builds the scope conditions and templates see (docs/workflow-language.md):
 * context, task, milestone, variables, steps, state, workflowId. state is
 * the run's state hash decoded (object, borrowed; NULL = empty); extra is
 * {artifacts, personaResults, gitState} from the run header (borrowed;
 * NULL = empty). New reference; NULL on OOM. */
json_t *plan_scope(const struct runinfo *ri, json_t *state, json_t *extra);

/* Renders the variables of wf against the task (run start). New object
 * in *out; errors name the variable. */
int plan_render_vars(const struct wf *wf, const char *run, json_t *task,
                     json_t *ctx, json_t **out, struct weft_error *err);

/* create_run: the run's header, every step pending, dependency counters,
 * the top-level steps without dependencies (with their jobs when static).
 * entry is the weft:tasks entry id to acknowledge. */
int plan_create_run(const struct plan_env *env, const struct runinfo *ri,
                    const char *entry, struct plan *p, struct weft_error *err);

/* dispatch: render step's job for attempt against scope and put it on
 * its queue. mark is the ready event id. */
int plan_dispatch(const struct plan_env *env, const struct runinfo *ri,
                  const struct wf_step *s, uint32_t attempt, const char *mark,
                  const json_t *scope, struct plan *p, struct weft_error *err);

/* finish: the attempt ended with res (a worker's result), or, when res
 * is NULL, the step was skipped before dispatch (false condition;
 * expect = pending) or failed before dispatch (eval_error != NULL). */
int plan_finish(const struct plan_env *env, const struct runinfo *ri,
                const struct wf_step *s, uint32_t attempt, const char *mark,
                const struct wire_result *res, const char *eval_error,
                struct plan *p, struct weft_error *err);

/* activate: composite s opens list `branch` (0 = then/steps, 1 = else).
 * A parallel group with more than PLAN_ACTIVATE_PART children without
 * dependencies opens its first part (the plan's `next` says where the
 * next one starts). */
int plan_activate(const struct plan_env *env, const struct runinfo *ri,
                  const struct wf_step *s, uint32_t attempt, const char *mark,
                  int branch, struct plan *p, struct weft_error *err);

/* A parallel group opens in parts of this many children without
 * dependencies: the first part's jobs go out while the next is rendered,
 * and workers start on them while Redis queues the rest. */
#define PLAN_ACTIVATE_PART 64

/* activate, continued: the next part of parallel group s's opening (or,
 * s NULL, of the run's top level; its ready marks name PLAN_TOP_STEP),
 * from position `from` of its list on (docs/protocol.md, "Big groups"). */
int plan_activate_more(const struct plan_env *env, const struct runinfo *ri,
                       const struct wf_step *s, uint32_t attempt,
                       const char *mark, uint32_t from, struct plan *p,
                       struct weft_error *err);

/* cancel: the run and its unfinished steps end as cancelled. */
int plan_cancel(const struct plan_env *env, const struct runinfo *ri,
                const char *mark, const char *reason, struct plan *p);

/* reject: the task entry `entry` for run ri->run cannot start; the run is
 * recorded as failed with error, and the task entry copied to the DLQ
 * (by env->who). Only ri->run is read. */
int plan_reject(const struct plan_env *env, const struct runinfo *ri,
                const char *entry, const char *task, const char *workflow,
                const char *error, struct plan *p);

/* queue_timeout: attempt of s waited on its queue past the step's
 * queue_timeout (a `timeout` event of kind `queue`). A finish whose
 * compare-and-set wants the job still queued: it fails as timed out
 * (the retry policy applies) unless a worker started it meanwhile. */
int plan_queue_timeout(const struct plan_env *env, const struct runinfo *ri,
                       const struct wf_step *s, uint32_t attempt,
                       const char *mark, struct plan *p,
                       struct weft_error *err);

/* expire: the workflow's `timeout` passed (a `timeout` event of kind
 * `run`): the run fails as timed out, its unfinished steps are cancelled
 * and running jobs told to stop, as for a cancel. */
int plan_expire(const struct plan_env *env, const struct runinfo *ri,
                const char *mark, struct plan *p);

/* The circuit breaker attempts of s go through (docs/workflow-language.md,
 * "Circuit breakers"): its name and resolved settings. */
struct plan_breaker {
    char name[KEYS_ID_MAX + 8]; /* the persona, or "git:<remote>" */
    struct breaker_cfg cfg;     /* every field set (breaker_resolve) */
};

/* The breaker of s: of its persona (of its fallback_persona when fallback,
 * with the registry's settings only), or of its remote for a git push,
 * fetch or pull whose remote is literal (`git:<remote>`); settings from
 * the step over env->personas over the defaults. false (and *out zeroed)
 * when none applies. */
bool plan_breaker_of(const struct plan_env *env, const struct wf_step *s,
                     bool fallback, struct plan_breaker *out);

/* weft's own step that rolls back a run's git changes (lib.lua
 * ROLLBACK_STEP; workflow step ids cannot start with '.'). */
#define PLAN_ROLLBACK_STEP ".rollback"
/* The step the ready marks of a run's top level name when it opens in
 * parts (lib.lua TOP_STEP). */
#define PLAN_TOP_STEP ".top"
/* The rollback job's start-to-close limit: a push to a slow remote, not
 * a hung one. */
#define PLAN_ROLLBACK_TIMEOUT_S 600
/* Attempts of one rollback: a retryable failure (a remote down for a
 * moment, a dead worker) is tried again after 5 s, then 10 s. */
#define PLAN_ROLLBACK_ATTEMPTS 3
/* The summary of what a rollback restored, kept in the history. */
#define PLAN_ROLLBACK_TEXT_MAX 4096

/* rollback, dispatch phase: the run's rollback job (a git-operation job,
 * operation `rollback`, with changes, the run's gitState.changes) goes
 * to the queue of the git step whose change comes first. mark is the
 * ready event id. WEFT_EINVAL when changes is not a non-empty array. */
int plan_rollback_dispatch(const struct plan_env *env, const struct runinfo *ri,
                           uint32_t attempt, const char *mark,
                           const json_t *changes, struct plan *p,
                           struct weft_error *err);

/* rollback, result phase: attempt ended with res (a worker's result, or a
 * timeout the caller made up for a passed deadline); a retryable failure
 * is retried while PLAN_ROLLBACK_ATTEMPTS allow. */
int plan_rollback_result(const struct plan_env *env, const struct runinfo *ri,
                         uint32_t attempt, const char *mark,
                         const struct wire_result *res, struct plan *p);

/* Milliseconds to wait before attempt `next` (2-based) under s's retry
 * policy; rnd in [0,1) drives the jitter. */
int64_t plan_backoff_ms(const struct wf_retry *r, uint32_t next, double rnd);

/* ---- people in the loop (docs/protocol.md, "Control events") ---- */

/* Free text of control events (`by`, `comment`): a name or a sentence. */
#define PLAN_TEXT_MAX 1024
/* An approval's rendered `message`: what a person reads, not a document. */
#define PLAN_MESSAGE_MAX 4096
/* `set` of a resolve or approve: state updates, not documents. */
#define PLAN_SET_MAX      (64 * 1024)
#define PLAN_SET_KEYS_MAX 256

/* park: approval step s became ready (attempt A, ready mark `mark`): it
 * waits for a person, with its message and approvers rendered against
 * scope and its deadline at now + timeout. Rendering errors as
 * plan_dispatch (WEFT_ETYPE, WEFT_ELIMIT; err says which field). */
int plan_park(const struct plan_env *env, const struct runinfo *ri,
              const struct wf_step *s, uint32_t attempt, const char *mark,
              const json_t *scope, struct plan *p, struct weft_error *err);

enum plan_control_kind {
    PLAN_CONTROL_RESOLVE, /* weft resolve: action retry | skip | fail */
    PLAN_CONTROL_APPROVE, /* weft approve: action approve | reject */
    PLAN_CONTROL_TIMEOUT, /* an approval's deadline passed */
};

/* A control event as read from weft:events (strings borrowed; any may be
 * NULL). Nothing in it is trusted: plan_resolve checks it. */
struct plan_control {
    enum plan_control_kind kind;
    const char *action;
    const char *by;
    const char *comment;
    const char *set;  /* JSON object text: state key -> value */
    uint32_t attempt; /* the attempt that waits; 0 = whichever */
    const char *mark; /* the event's id, acknowledged by the script */
};

/* "resolve", "approve" or "timeout". */
const char *plan_control_name(enum plan_control_kind k);

/* Parses and checks the `set` of a control event: a JSON object of at most
 * PLAN_SET_KEYS_MAX state keys (keys_valid_id), at most PLAN_SET_MAX
 * bytes. 0 and *out (new reference), or an error code with the reason in
 * why (size bytes). */
int plan_check_set(const char *text, json_t **out, char *why, size_t size);

/* resolve: the answer to step `step` (an id from the event; the run may
 * not have it) waiting for a person. An event that cannot apply as asked
 * (no such step, an unknown action, approve of a step that is not an
 * approval, a bad `set`) still gets a transition, with `refuse` saying
 * why: the script acknowledges it and records it in the history. Errors:
 * WEFT_ENOMEM only. */
int plan_resolve(const struct plan_env *env, const struct runinfo *ri,
                 const char *step, const struct plan_control *c, struct plan *p,
                 struct weft_error *err);

/* A retry request as read from weft:events (strings borrowed). */
struct plan_retry_req {
    const char *from;    /* step to re-run from; NULL: the failed steps */
    const char *by;      /* who asked; may be NULL */
    const char *comment; /* why; may be NULL */
    int64_t seq;         /* the run's retry count the request saw; -1 */
    const char *mark;    /* the event's id */
};

/* retry: the run runs again. steps is the run's steps hash (an object of
 * field -> text, as HGETALL gives it) and finished / seen its header's
 * `finished` (NULL when absent) and `retries`, all read before the
 * transition runs, which checks they still hold. Without rq->from the
 * steps that did not succeed or get skipped run again, with the groups
 * around them re-opened; with it, also rq->from and everything after it
 * (its transitive dependents, and those of every group it is in). Each
 * step run again goes back to pending with its dependency counter
 * recounted (dependencies that keep their results count as done), and
 * those with nothing to wait for are made ready. A request that cannot
 * apply (unknown step, nothing to retry) gets a refusing transition as
 * for plan_resolve. Errors: WEFT_ENOMEM only. */
int plan_retry(const struct plan_env *env, const struct runinfo *ri,
               const json_t *steps, const char *finished, int64_t seen,
               const struct plan_retry_req *rq, struct plan *p);

#endif
