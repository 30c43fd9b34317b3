/* personas.h - the persona registry: which program answers for a persona
 * (docs/personas.md, "The registry").
 *
 * A YAML file (weft-worker --personas FILE, env WEFT_PERSONAS, default
 * workflows/personas.yml) maps persona names to adapters:
 *
 *   personas:
 *     lead-engineer:
 *       exec: ["./personas/lead-engineer.py", "--fast"]  # argv, no shell
 *       timeout: 1800          # seconds; for steps that give none
 *       env: {MODEL: "large"}  # added to the environment
 *       queue: engineers       # worker pool; default: the persona's name
 *       breaker: {failures: 5, window: 60, cooldown: 30}  # circuit breaker
 *   remotes:                   # git remotes' circuit breakers (optional)
 *     origin:
 *       breaker: {failures: 3, window: 120, cooldown: 60}
 *
 * It is read once at start-up through ytree, so every problem is reported
 * with file:line:col, and unknown keys are errors with a did-you-mean hint
 * (like the workflow loader). An exec argv[0] that holds a '/' and is
 * relative is resolved against the registry file's directory (so a
 * registry and its scripts move together); a bare name is looked up in
 * PATH when it runs. Other arguments are passed as written. The registry
 * is immutable once loaded and read by the loop thread only.
 */
#ifndef WEFT_WORKER_PERSONAS_H
#define WEFT_WORKER_PERSONAS_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "wfdef.h"

/* The registry is written by hand; a megabyte is thousands of personas. */
#define PERSONAS_FILE_MAX (1u << 20)
/* Personas in one registry: far more than a team has agents, and it
 * bounds the lookups and hints, which are linear. Remotes likewise. */
#define PERSONAS_MAX         1024
#define PERSONAS_REMOTES_MAX 256
/* Arguments of one exec, program included; and env entries added. */
#define PERSONA_ARGV_MAX 64
#define PERSONA_ENV_MAX  64
/* Longest timeout, as for a workflow step: 7 days, in seconds. */
#define PERSONA_TIMEOUT_MAX_S 604800
/* Where the registry is looked for when no flag or env names one. */
#define PERSONAS_DEFAULT_FILE "workflows/personas.yml"

struct persona {
    const char *name;           /* [A-Za-z0-9_.-], 1..KEYS_ID_MAX bytes */
    const char *const *argv;    /* NULL-terminated, >= 1 argument */
    const char *const *env;     /* NULL-terminated "K=V"; never NULL */
    uint64_t timeout_ms;        /* 0 = none given */
    const char *queue;          /* never NULL: the name when not given */
    struct breaker_cfg breaker; /* .set false when not given */
    int line;                   /* where the persona is defined, for logs */
};

struct personas;

/* Reads and validates the registry at path. 0 and *out (free with
 * personas_free), or a negative code with every problem appended to d
 * (whose `file` should be path): WEFT_EIO or WEFT_ENOENT (cannot read),
 * WEFT_ELIMIT (larger than PERSONAS_FILE_MAX, too many entries),
 * WEFT_EINVAL (invalid), WEFT_ENOMEM. *out is unchanged on failure. */
int personas_load_file(const char *path, struct personas **out, struct diag *d);

/* The same from src[0..len) (borrowed for the call); dir is the
 * directory relative argv[0]s resolve against (NULL: the current
 * directory). */
int personas_load_buffer(const char *src, size_t len, const char *dir,
                         struct personas **out, struct diag *d);

/* NULL: no-op. */
void personas_free(struct personas *r);

/* The persona called name, or NULL. Borrowed from r. */
const struct persona *personas_find(const struct personas *r, const char *name);

/* The closest known name to name (a typo), or NULL. Borrowed from r. */
const char *personas_suggest(const struct personas *r, const char *name);

/* Number of personas and the i-th one, in file order. */
size_t personas_count(const struct personas *r);
const struct persona *personas_at(const struct personas *r, size_t i);

/* The `breaker` of remote name under `remotes:`, or NULL when the
 * registry gives none (or r is NULL). Borrowed from r. */
const struct breaker_cfg *personas_remote_breaker(const struct personas *r,
                                                  const char *name);

/* The file the registry was read from ("" for a buffer). */
const char *personas_path(const struct personas *r);

/* The queue a step's jobs go to: the step's own `queue`; else, for a
 * persona step, the registry's queue for its persona (the persona's name
 * when the registry gives none or reg is NULL); `git` for git steps;
 * `default` otherwise. The string is borrowed from the step or reg. */
const char *personas_step_queue(const struct personas *reg,
                                const struct wf_step *s);

#endif
