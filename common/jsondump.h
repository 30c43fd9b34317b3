/* jsondump.h - compact JSON text of a jansson value, fast.
 *
 * json_dumps checks every object and array for cycles by formatting its
 * address into a hash table; on the scheduler's hot path (a batch of plans
 * per script call) that and the formatting of every integer with snprintf
 * took a fifth of the process's time. This writer does neither: trees
 * built with jansson's API cannot hold cycles unless a caller makes one
 * on purpose, and the depth is bounded instead. Output is what
 * json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) writes: members in
 * insertion order, non-ASCII UTF-8 as is, control characters, '"' and
 * '\\' escaped, reals with 17 significant digits.
 */
#ifndef WEFT_COMMON_JSONDUMP_H
#define WEFT_COMMON_JSONDUMP_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"

/* Nesting deeper than this is refused (jansson's parser stops at 2048
 * too, so nothing parsed can be deeper). */
#define JSONDUMP_DEPTH_MAX 2048

/* Appends v's compact JSON text to out. Returns 0, WEFT_ENOMEM,
 * WEFT_ELIMIT (out's maximum, or nesting past JSONDUMP_DEPTH_MAX) or
 * WEFT_EINVAL (v is NULL); on failure out may hold part of the text. */
int jsondump(const json_t *v, struct buf *out);

/* Appends the JSON string literal of s[0..len) (quoted and escaped as
 * above), for writers that build a document without a jansson tree.
 * Returns 0, WEFT_ENOMEM or WEFT_ELIMIT; on failure out may hold part of
 * it. */
int jsondump_string(struct buf *out, const char *s, size_t len);

/* v's compact JSON text, NUL-terminated, owned by the caller (weft_free);
 * *len (when not NULL) receives its length. NULL on failure. */
char *jsondump_str(const json_t *v, size_t *len);

#endif
