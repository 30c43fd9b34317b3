/* breaker.c - circuit-breaker settings (breaker.h). */
#include "breaker.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hint.h"

static const char *const breaker_keys[] = {"failures", "window", "cooldown"};
#define NBREAKER_KEYS (sizeof(breaker_keys) / sizeof(breaker_keys[0]))

/* The closest key to an unknown one, or NULL. */
static const char *closest_key(const char *word, size_t wl)
{
    size_t max = wl <= 3 ? 1 : wl <= 6 ? 2 : 3;
    size_t best_d = max + 1;
    const char *best = NULL;
    for (size_t i = 0; i < NBREAKER_KEYS; i++) {
        size_t d = hint_distance(word, wl, breaker_keys[i],
                                 strlen(breaker_keys[i]), max);
        if (d < best_d) {
            best = breaker_keys[i];
            best_d = d;
        }
    }
    return best;
}

/* Seconds in (0, BREAKER_MAX_S] into *ms (at least 1); false (reported)
 * otherwise. */
static bool seconds(const struct ytree_node *v, const char *what,
                    const char *key, struct diag *d, uint32_t *ms)
{
    double s = 0;
    if (ytree_get_double(v, &s) != 0 || !(s > 0) || s > BREAKER_MAX_S) {
        diag_error(d, v->line, v->column,
                   "%s: '%s' must be a number of seconds above 0 and at "
                   "most %d",
                   what, key, BREAKER_MAX_S);
        return false;
    }
    long long m = llround(s * 1000.0);
    *ms = m < 1 ? 1 : (uint32_t)m;
    return true;
}

int breaker_parse(const struct ytree_node *v, bool allow_bool, const char *what,
                  struct diag *d, struct breaker_cfg *out)
{
    struct breaker_cfg c;
    memset(&c, 0, sizeof(c));
    bool b;
    if (allow_bool && ytree_get_bool(v, &b) == 0) {
        c.set = b;
        c.off = !b;
        *out = c;
        return 0;
    }
    if (v->kind != YTREE_MAPPING) {
        diag_error(d, v->line, v->column,
                   "%s must be a mapping {failures, window, cooldown}%s, "
                   "got %s",
                   what, allow_bool ? ", true or false" : "",
                   ytree_describe(v));
        return -1;
    }
    size_t errors = d->errors;
    for (uint32_t i = 0; i < v->len; i++) {
        const struct ytree_node *k = v->u.items[2 * i];
        const struct ytree_node *x = v->u.items[2 * i + 1];
        if (strcmp(k->u.text, "failures") == 0) {
            int64_t n = 0;
            if (ytree_get_int(x, &n) != 0 || n < 1 ||
                n > BREAKER_MAX_FAILURES) {
                diag_error(d, x->line, x->column,
                           "%s: 'failures' must be an integer from 1 to %d",
                           what, BREAKER_MAX_FAILURES);
                continue;
            }
            c.failures = (uint32_t)n;
        } else if (strcmp(k->u.text, "window") == 0) {
            seconds(x, what, "window", d, &c.window_ms);
        } else if (strcmp(k->u.text, "cooldown") == 0) {
            seconds(x, what, "cooldown", d, &c.cooldown_ms);
        } else {
            const char *s = closest_key(k->u.text, k->len);
            char hint[HINT_MAX_WORD + 32] = "";
            if (s != NULL)
                snprintf(hint, sizeof(hint), " (did you mean '%s'?)", s);
            diag_error(d, k->line, k->column, "%s: unknown key '%.*s'%s", what,
                       HINT_MAX_WORD, k->u.text, hint);
        }
    }
    if (d->errors != errors)
        return -1;
    c.set = true;
    *out = c;
    return 0;
}

bool breaker_resolve(const struct breaker_cfg *step,
                     const struct breaker_cfg *base, struct breaker_cfg *out)
{
    memset(out, 0, sizeof(*out));
    bool step_set = step != NULL && step->set;
    bool base_set = base != NULL && base->set;
    if ((step != NULL && step->off) || (!step_set && !base_set))
        return false;
#define PICK(f, dflt)                                                          \
    (step_set && step->f ? step->f : base_set && base->f ? base->f : (dflt))
    out->failures = PICK(failures, BREAKER_DEFAULT_FAILURES);
    out->window_ms = PICK(window_ms, BREAKER_DEFAULT_WINDOW_MS);
    out->cooldown_ms = PICK(cooldown_ms, BREAKER_DEFAULT_COOLDOWN_MS);
#undef PICK
    out->set = true;
    return true;
}
