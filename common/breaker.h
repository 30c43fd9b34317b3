/* breaker.h - circuit-breaker settings: parsing, defaults, merging.
 *
 * A circuit breaker guards a service that steps call: a persona, or a git
 * remote (docs/workflow-language.md, "Circuit breakers"). Its settings are
 * written in two places, both parsed here with positioned errors: a
 * workflow step's `breaker:` and the persona registry's `breaker:` of a
 * persona or of a remote. A step's fields win over the registry's, which
 * win over the defaults below. The breaker's state lives in Redis
 * (`<prefix>:breaker:<name>`, docs/protocol.md) and only the transition
 * scripts change it (common/lua/lib.lua).
 */
#ifndef WEFT_COMMON_BREAKER_H
#define WEFT_COMMON_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "ytree.h"

/* More failures than this before opening is no longer a breaker. */
#define BREAKER_MAX_FAILURES 1000
/* Window and cool-down: a day at most, in seconds. Longer would leave a
 * service shut out for good by one bad hour. */
#define BREAKER_MAX_S 86400
/* What a breaker written as `true` (or given only some fields) uses:
 * five failed attempts within a minute open it for thirty seconds. */
#define BREAKER_DEFAULT_FAILURES    5
#define BREAKER_DEFAULT_WINDOW_MS   60000u
#define BREAKER_DEFAULT_COOLDOWN_MS 30000u

struct breaker_cfg {
    uint32_t failures;    /* 1..BREAKER_MAX_FAILURES; 0 = not given */
    uint32_t window_ms;   /* 1..BREAKER_MAX_S * 1000; 0 = not given */
    uint32_t cooldown_ms; /* 1..BREAKER_MAX_S * 1000; 0 = not given */
    bool set;             /* written: a mapping or `true` */
    bool off;             /* written `false`: no breaker for this step */
};

/* Parses v, a mapping {failures, window, cooldown} (seconds may be
 * fractional), or, when allow_bool, `true` (the defaults) or `false`
 * (off). what names the value in messages ("'breaker'", "persona 'x':
 * 'breaker'"). Every problem is appended to d at its node, unknown keys
 * with a did-you-mean hint. 0 and *out, or -1 (*out unchanged). */
int breaker_parse(const struct ytree_node *v, bool allow_bool, const char *what,
                  struct diag *d, struct breaker_cfg *out);

/* The settings in force for a step: each field of step when given, else
 * of base (may be NULL), else the default. false (and *out zeroed) when
 * no breaker applies: step is off, or neither step nor base is set. */
bool breaker_resolve(const struct breaker_cfg *step,
                     const struct breaker_cfg *base, struct breaker_cfg *out);

#endif
