/* wfdef_int.h - internals shared by wfdef.c and tvalue.c.
 *
 * Not for use outside the workflow model: the scheduler and the CLI read
 * struct wf through wfdef.h only.
 */
#ifndef WEFT_COMMON_WFDEF_INT_H
#define WEFT_COMMON_WFDEF_INT_H

#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "tmpl.h"
#include "wfdef.h"
#include "ytree.h"

/* Memory a struct wf owns besides its steps array and compiled values. */
struct wf_mem {
    char *strings;  /* every string of the model, NUL-separated */
    uint32_t *pool; /* deps, dependents, children, top and topo */
    /* The id index: open addressing over step indices. Slots hold index
     * + 1 (0 = empty) and each step's id hash sits beside it, so a lookup
     * touches 4-byte slots and one id string, which keeps resolving 300k
     * dependencies of a 100k-step workflow out of cache misses. */
    uint32_t *id_slots; /* id_mask + 1 slots */
    uint32_t *id_hash;  /* per step */
    uint32_t *id_off;   /* per step: its id's offset in strings */
    uint32_t id_mask;
};

/* How tvalue_compile reports what it finds, so that the validator can
 * position and judge it. Both callbacks are optional. */
struct tvalue_hooks {
    void *ud;
    /* A template compiled from scalar n (borrowed for the call). */
    void (*on_template)(void *ud, const struct ytree_node *n,
                        const struct tmpl *t);
    /* A template in scalar n failed to parse; err->column is the 1-based
     * byte column in n's text. */
    void (*on_error)(void *ud, const struct ytree_node *n,
                     const struct weft_error *err);
};

/* Compiles the YAML value n into a tvalue: its JSON, with every string
 * that holds `{{` parsed as a template. Returns 0 and *out (free with
 * tvalue_free); WEFT_EINVAL when a template did not parse (each reported
 * through hooks->on_error, all of them, not only the first); WEFT_ENOMEM.
 * *out unchanged on failure. */
int tvalue_compile(const struct ytree_node *n, const struct tvalue_hooks *h,
                   struct tvalue **out);

void tvalue_free(struct tvalue *tv);

/* The value as written (strings unrendered); borrowed from tv. */
const json_t *tvalue_json(const struct tvalue *tv);

#endif
