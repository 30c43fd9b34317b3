/* wfdef.h - the workflow model: load, validate, and query a workflow.
 *
 * A workflow file (YAML, the seed's format) is loaded with libyaml into a
 * validated, immutable struct wf. Loading reports every problem it finds
 * into a struct diag with the line and column of the offending node, and
 * fails (WEFT_EINVAL) if there was any error. Hostile input is bounded by
 * the limits below and by those of ytree.h.
 *
 * Steps form a tree (conditional and parallel steps own lists of child
 * steps) and, within each list, a DAG through `dependencies`. All steps of
 * a workflow, at every depth, share one id namespace and are stored flat
 * in wf->steps in pre-order (a parent before its children, lists in file
 * order), so a step is named by its index everywhere in memory and by its
 * id in Redis and in messages.
 *
 * Dependency rule (as in Argo's DAG templates): a step may depend only on
 * steps of the same list (its siblings). To wait for a step inside a
 * conditional or parallel group, depend on the group; a step inside a
 * group that needs something outside it makes the group depend on it.
 *
 * The normalized definition (canonical JSON: the YAML after alias
 * expansion and defaulting of `name`, keys sorted, compact) and its
 * SHA-256 are computed at load; a run pins that digest, and
 * wf_load_canonical rebuilds the same model from the canonical text.
 */
#ifndef WEFT_COMMON_WFDEF_H
#define WEFT_COMMON_WFDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "breaker.h"
#include "diag.h"
#include "error.h"
#include "expr.h"

/* Larger than any hand-written workflow by orders of magnitude, small
 * enough that a run's per-step Redis hashes stay manageable. The loader
 * benchmark exercises 100k. */
#define WF_MAX_STEPS 200000
/* Step ids appear in Redis keys and fields, logs and templates. */
#define WF_MAX_ID_LEN 128
/* Retries beyond this are a configuration mistake, not a policy. */
#define WF_MAX_RETRIES 100
/* One week: longer than any step should run without a heartbeat-less
 * deadline. Timeouts are in seconds in YAML. */
#define WF_MAX_TIMEOUT_S (7 * 24 * 3600)
/* A whole run may take longer than one step: 30 days, in seconds. */
#define WF_MAX_RUN_TIMEOUT_S (30 * 24 * 3600)
/* Composite steps nest; deeper than this is not a workflow a person can
 * read, and it bounds recursion in the loader and scheduler. */
#define WF_MAX_NESTING 32
/* An approval step names the people who may approve it: a team, not a
 * directory. Names are free text (people, not ids) of bounded length. */
#define WF_MAX_APPROVERS    64
#define WF_MAX_APPROVER_LEN 128

enum wf_step_type {
    WF_STEP_PERSONA,     /* "persona-request" */
    WF_STEP_GIT,         /* "git-operation" */
    WF_STEP_CONDITIONAL, /* "conditional" */
    WF_STEP_PARALLEL,    /* "parallel" */
    WF_STEP_NOOP,        /* "noop": does nothing, succeeds */
    WF_STEP_APPROVAL,    /* "approval": waits for `weft approve` */
};

enum wf_git_op {
    WF_GIT_BRANCH,
    WF_GIT_CHECKOUT,
    WF_GIT_COMMIT,
    WF_GIT_PUSH,
    WF_GIT_MERGE,
    WF_GIT_REBASE,
    WF_GIT_FETCH,
    WF_GIT_PULL,
};

enum wf_backoff { WF_BACKOFF_FIXED, WF_BACKOFF_EXPONENTIAL };
enum wf_on_failure {
    WF_ON_FAILURE_FAIL,
    WF_ON_FAILURE_CONTINUE,
    WF_ON_FAILURE_ESCALATE,
};
enum wf_wait_for { WF_WAIT_ALL, WF_WAIT_ANY };
/* What a ready step does while its circuit breaker is open. */
enum wf_on_open {
    WF_ON_OPEN_WAIT,     /* stay pending until the breaker lets a job by */
    WF_ON_OPEN_FAIL,     /* fail at once (not retried) */
    WF_ON_OPEN_FALLBACK, /* go to the step's fallback_persona */
};

/* A compiled JSON value whose strings may hold templates (params, name,
 * timeout, git fields, variables). Opaque; see tvalue_render. */
struct tvalue;

/* Renders tv against scope (borrowed). *out: new reference (NULL for an
 * undefined single-template value). Errors as tmpl_render; *out unchanged
 * on failure. */
int tvalue_render(const struct tvalue *tv, const json_t *scope, json_t **out,
                  struct weft_error *err);

/* The value when tv holds no template at all (borrowed from tv), else
 * NULL. Lets callers skip rendering literal fields. */
const json_t *tvalue_literal(const struct tvalue *tv);

struct wf_retry {
    uint32_t max; /* retries after the first attempt; 0..100 */
    enum wf_backoff backoff;
    uint32_t delay_ms;     /* first delay; default 1000 */
    uint32_t max_delay_ms; /* cap for exponential; default 300000 */
    double jitter;         /* 0..1: fraction of the delay randomized */
};

struct wf_step {
    uint32_t index;      /* position in wf->steps */
    const char *id;      /* unique in the workflow; [A-Za-z0-9_.-]+ */
    struct tvalue *name; /* display name template; NULL: use id (also
                            when `name` is written and equals the id,
                            so a canonical reload gives the same) */
    enum wf_step_type type;
    const char *persona;    /* persona-request only; else NULL */
    const char *queue;      /* explicit `queue`, or NULL for the default:
                               persona name, "git", or "default" */
    struct tvalue *timeout; /* seconds (number after rendering), NULL =
                               the persona's or no timeout */
    struct wf_retry retry;
    enum wf_on_failure on_failure;
    /* Circuit breaker (persona-request, and git push/fetch/pull with a
     * literal remote): the step's own `breaker` settings (.set and .off
     * false when not written), what it does while the breaker is open,
     * and the persona it goes to then (persona-request only; NULL = none;
     * never equal to persona). */
    struct breaker_cfg breaker;
    enum wf_on_open on_open;
    const char *fallback_persona;
    /* `queue_timeout`: an attempt no worker has started this long after
     * it was queued fails as timed out (ms; 0 = none). */
    uint32_t queue_timeout_ms;
    struct expr *condition; /* NULL = always run */
    struct tvalue *params;  /* JSON object after rendering, or NULL */

    /* git-operation */
    enum wf_git_op git_op;
    struct tvalue *git_branch;  /* NULL = operation's default */
    struct tvalue *git_message; /* commit message */
    struct tvalue *git_remote;  /* NULL = "origin" */
    struct tvalue *git_base;    /* `base`: start point of `branch`, target
                                   of `merge`, upstream of `rebase`; NULL =
                                   context.baseBranch */

    /* approval: who may approve (a JSON array of strings, each may be a
     * template; NULL = anyone) and what they are shown (`message`, a
     * string template; NULL = none). The deadline is `timeout`. */
    struct tvalue *approvers;
    struct tvalue *approval_message;

    /* composites: conditional uses children[0] (then) and children[1]
     * (else); parallel uses children[0] and wait_for. */
    enum wf_wait_for wait_for;
    uint32_t *children[2];
    uint32_t nchildren[2];

    int32_t parent; /* index of the owning composite, -1 = top level */
    uint8_t branch; /* which list of the parent: 0 then/steps, 1 else */
    uint32_t depth; /* 0 at top level */

    uint32_t *deps; /* indices of the steps this one waits for */
    uint32_t ndeps;
    uint32_t *dependents; /* indices of the steps waiting for this one */
    uint32_t ndependents;

    int line, column; /* of the step's mapping in the source; 0 = n/a */
};

struct wf {
    char *name;        /* `name`, or the file's base name without .yml */
    char *version;     /* NULL when absent */
    char *description; /* NULL when absent */
    /* `timeout`: the run fails as timed out this long after it started
     * (ms, at most WF_MAX_RUN_TIMEOUT_S; 0 = none). */
    uint64_t timeout_ms;
    /* `rollback: true`: a run that fails or is cancelled restores the git
     * branches its git steps created or moved (docs/git.md, "Rollback"). */
    bool rollback;
    /* `variables` in evaluation order: each value may be a template over
     * task, context, workflowId and other variables (read as
     * `variables.NAME`); a variable comes after every variable it reads,
     * ties ordered by name, so the order does not depend on the file's
     * key order and survives the canonical form. */
    uint32_t nvariables;
    char **variable_names;
    struct tvalue **variable_values;

    struct wf_step *steps; /* all steps, pre-order */
    uint32_t nsteps;
    uint32_t *top; /* indices of the top-level steps, file order */
    uint32_t ntop;
    uint32_t *topo; /* all indices in a topological order that
                       also puts each composite before its
                       children */

    char *canonical; /* normalized definition (canonical JSON) */
    size_t canonical_len;
    char digest[65]; /* lowercase hex SHA-256 of canonical */

    struct wf_mem *mem; /* internal: string pool, index arrays, id
                           map (wfdef_int.h) */
};

/* Loads and validates a workflow file. Returns 0 and *out (free with
 * wf_free), or a negative code with every problem appended to d (d->file
 * should name the file). WEFT_EINVAL: invalid workflow; WEFT_EIO: cannot
 * read; WEFT_ELIMIT: a size limit was passed. *out unchanged on failure.
 */
int wf_load_file(const char *path, struct wf **out, struct diag *d);

/* As wf_load_file for YAML text in memory. default_name names the workflow
 * when it has no `name` (NULL: "workflow"). */
int wf_load_buffer(const char *yaml, size_t len, const char *default_name,
                   struct wf **out, struct diag *d);

/* Rebuilds a model from its canonical JSON (as stored in Redis under
 * weft:def:<digest>). The digest of the result equals the original's.
 * The text is read by the same loader (compact JSON is YAML flow syntax),
 * so errors are reported as for wf_load_buffer, with positions. */
int wf_load_canonical(const char *json, size_t len, struct wf **out,
                      struct diag *d);

void wf_free(struct wf *wf);

/* The step with this id, or NULL. O(1). */
const struct wf_step *wf_find_step(const struct wf *wf, const char *id,
                                   size_t len);

/* Names for enums, as written in YAML ("persona-request", "merge", ...). */
const char *wf_step_type_name(enum wf_step_type t);
const char *wf_git_op_name(enum wf_git_op op);
const char *wf_wait_for_name(enum wf_wait_for w);
const char *wf_on_failure_name(enum wf_on_failure f);
const char *wf_on_open_name(enum wf_on_open o);

/* True for a git operation that reaches a remote (push, fetch, pull): the
 * ones a remote's circuit breaker guards. */
bool wf_git_op_uses_remote(enum wf_git_op op);

/* The roots a condition or template may read. */
bool wf_is_known_root(const char *name, size_t len);

#endif
