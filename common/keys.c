/* keys.c - Redis key names: the only place that spells them.
 *
 * Every name is `<prefix>:<kind>[:<id>[:<sub>]]`. Ids are checked against
 * keys_valid_id() before they are placed in a name, so a hostile run id such
 * as "x:steps" can never alias another key.
 */
#include "keys.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

#define KEYS_DEFAULT_PREFIX "weft"

static bool is_id_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Prefixes may also carry ':' (namespaces) and '{' '}' (Redis Cluster hash
 * tags, ARCHITECTURE.md "Scale"). */
static bool is_prefix_char(unsigned char c)
{
    return is_id_char(c) || c == ':' || c == '{' || c == '}';
}

int keys_init(struct keys *k, const char *prefix)
{
    if (prefix == NULL || prefix[0] == '\0')
        prefix = KEYS_DEFAULT_PREFIX;
    size_t len = strnlen(prefix, KEYS_PREFIX_MAX + 1);
    if (len > KEYS_PREFIX_MAX)
        return WEFT_EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (!is_prefix_char((unsigned char)prefix[i]))
            return WEFT_EINVAL;
    }
    memcpy(k->prefix, prefix, len);
    k->prefix[len] = '\0';
    return 0;
}

bool keys_valid_id(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > KEYS_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_id_char((unsigned char)s[i]))
            return false;
    }
    return true;
}

static bool valid_cstr_id(const char *s)
{
    return s != NULL && keys_valid_id(s, strnlen(s, KEYS_ID_MAX + 1));
}

/* The prefix of a git remote's breaker name. */
#define BREAKER_GIT_PREFIX     "git:"
#define BREAKER_GIT_PREFIX_LEN 4

bool keys_valid_breaker(const char *s, size_t len)
{
    if (s != NULL && len > BREAKER_GIT_PREFIX_LEN &&
        memcmp(s, BREAKER_GIT_PREFIX, BREAKER_GIT_PREFIX_LEN) == 0)
        return keys_valid_id(s + BREAKER_GIT_PREFIX_LEN,
                             len - BREAKER_GIT_PREFIX_LEN);
    return keys_valid_id(s, len);
}

/* Formats into out; 0 when the name would not fit (snprintf truncated). */
static size_t build(char out[KEYS_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static size_t build(char out[KEYS_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, KEYS_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= KEYS_MAX) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

size_t keys_global(const struct keys *k, enum keys_global which,
                   char out[KEYS_MAX])
{
    static const char *const names[] = {
        [KEYS_TASKS] = "tasks",         [KEYS_EVENTS] = "events",
        [KEYS_RUNS] = "runs",           [KEYS_DELAYED] = "delayed",
        [KEYS_DEADLINES] = "deadlines", [KEYS_DLQ] = "dlq",
        [KEYS_CANCEL] = "cancel",       [KEYS_STATS] = "stats",
    };
    if ((unsigned)which >= sizeof(names) / sizeof(names[0])) {
        out[0] = '\0';
        return 0;
    }
    return build(out, "%s:%s", k->prefix, names[which]);
}

size_t keys_run(const struct keys *k, enum keys_run which, const char *run,
                char out[KEYS_MAX])
{
    static const char *const subs[] = {
        [KEYS_RUN] = "",
        [KEYS_RUN_STEPS] = ":steps",
        [KEYS_RUN_DEPS] = ":deps",
        [KEYS_RUN_STATE] = ":state",
        [KEYS_RUN_HISTORY] = ":history",
    };
    if ((unsigned)which >= sizeof(subs) / sizeof(subs[0]) ||
        !valid_cstr_id(run)) {
        out[0] = '\0';
        return 0;
    }
    return build(out, "%s:run:%s%s", k->prefix, run, subs[which]);
}

static size_t keyed(const struct keys *k, const char *kind, const char *id,
                    char out[KEYS_MAX])
{
    if (!valid_cstr_id(id)) {
        out[0] = '\0';
        return 0;
    }
    return build(out, "%s:%s:%s", k->prefix, kind, id);
}

size_t keys_queue(const struct keys *k, const char *queue, char out[KEYS_MAX])
{
    return keyed(k, "q", queue, out);
}

size_t keys_def(const struct keys *k, const char *digest, char out[KEYS_MAX])
{
    return keyed(k, "def", digest, out);
}

static size_t breaker_key(const struct keys *k, const char *kind,
                          const char *name, char out[KEYS_MAX])
{
    if (name == NULL ||
        !keys_valid_breaker(name, strnlen(name, KEYS_ID_MAX + 8))) {
        out[0] = '\0';
        return 0;
    }
    return build(out, "%s:%s:%s", k->prefix, kind, name);
}

size_t keys_breaker(const struct keys *k, const char *name, char out[KEYS_MAX])
{
    return breaker_key(k, "breaker", name, out);
}

size_t keys_breaker_waiters(const struct keys *k, const char *name,
                            char out[KEYS_MAX])
{
    return breaker_key(k, "breakerwait", name, out);
}

size_t keys_queue_prefix(const struct keys *k, char out[KEYS_MAX])
{
    return build(out, "%s:q:", k->prefix);
}

size_t keys_breaker_prefix(const struct keys *k, char out[KEYS_MAX])
{
    return build(out, "%s:breaker:", k->prefix);
}
