/* keys.h - every Redis key and stream/group name weft uses, built in one
 * place (docs/protocol.md lists them). Names are
 * `<prefix>:<kind>[:<id>[:<sub>]]`; the prefix defaults to "weft".
 *
 * Builders write a NUL-terminated name into a caller buffer of KEYS_MAX
 * bytes and return its length, or 0 (and an empty out) if it would not fit
 * or an id is not valid per keys_valid_id() (ids are bounded far below
 * KEYS_MAX, so 0 means a caller bug or hostile id: treat as invalid input).
 * Checking ids here means an id such as "r:steps" can never alias another
 * key.
 */
#ifndef WEFT_COMMON_KEYS_H
#define WEFT_COMMON_KEYS_H

#include <stdbool.h>
#include <stddef.h>

/* prefix (<= 64) + ":run:" + run id (<= 128) + ":history" with room. */
#define KEYS_MAX        256
#define KEYS_PREFIX_MAX 64
/* Longest run, step, queue or persona name accepted on the wire. */
#define KEYS_ID_MAX 128

#define KEYS_GROUP_SCHEDULERS "schedulers"
#define KEYS_GROUP_WORKERS    "workers"

struct keys {
    char prefix[KEYS_PREFIX_MAX + 1];
};

/* Sets the prefix; NULL or "" means "weft". 0, or WEFT_EINVAL when the
 * prefix is longer than KEYS_PREFIX_MAX or not of [A-Za-z0-9_.:{}-] (k is
 * then unchanged). */
int keys_init(struct keys *k, const char *prefix);

/* Global keys. */
enum keys_global {
    KEYS_TASKS,     /* stream: task intake */
    KEYS_EVENTS,    /* stream: results and control events */
    KEYS_RUNS,      /* zset: run ids by creation time */
    KEYS_DELAYED,   /* zset: retry timers */
    KEYS_DEADLINES, /* zset: step deadlines */
    KEYS_DLQ,       /* stream: dead letters */
    KEYS_CANCEL,    /* pub/sub channel: stop running jobs */
    KEYS_STATS,     /* hash: counters (runs by final status) */
};
size_t keys_global(const struct keys *k, enum keys_global which,
                   char out[KEYS_MAX]);

/* Per-run keys: header, steps, deps, state, history. */
enum keys_run {
    KEYS_RUN,
    KEYS_RUN_STEPS,
    KEYS_RUN_DEPS,
    KEYS_RUN_STATE,
    KEYS_RUN_HISTORY,
};
size_t keys_run(const struct keys *k, enum keys_run which, const char *run,
                char out[KEYS_MAX]);

/* `<prefix>:q:<queue>`, `<prefix>:def:<digest>`; queue and digest
 * (lowercase hex) must each pass keys_valid_id(). */
size_t keys_queue(const struct keys *k, const char *queue, char out[KEYS_MAX]);
size_t keys_def(const struct keys *k, const char *digest, char out[KEYS_MAX]);

/* A circuit breaker's state `<prefix>:breaker:<name>` (hash) and the steps
 * waiting for it to close `<prefix>:breakerwait:<name>` (zset); name must
 * pass keys_valid_breaker(). */
size_t keys_breaker(const struct keys *k, const char *name, char out[KEYS_MAX]);
size_t keys_breaker_waiters(const struct keys *k, const char *name,
                            char out[KEYS_MAX]);

/* `<prefix>:q:` and `<prefix>:breaker:`: what every queue or breaker key
 * starts with, for SCAN MATCH patterns (append `*`; a prefix holds no glob
 * character) and for taking the name back out of a key. */
size_t keys_queue_prefix(const struct keys *k, char out[KEYS_MAX]);
size_t keys_breaker_prefix(const struct keys *k, char out[KEYS_MAX]);

/* True when s[0..len) is a valid run/step/queue id: 1..KEYS_ID_MAX bytes
 * of [A-Za-z0-9_.-]. */
bool keys_valid_id(const char *s, size_t len);

/* True when s[0..len) names a circuit breaker: a persona (a valid id), or
 * `git:` and a valid remote name for a git remote's breaker. */
bool keys_valid_breaker(const char *s, size_t len);

#endif
