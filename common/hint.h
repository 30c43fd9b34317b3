/* hint.h - "did you mean": how far a misspelt word is from a known one.
 *
 * Loaders of hand-written files (workflows, persona registries) suggest
 * the closest known key or name for an unknown one. Words are short: past
 * HINT_MAX_WORD bytes no hint is worth computing, which also bounds the
 * work on hostile input.
 */
#ifndef WEFT_COMMON_HINT_H
#define WEFT_COMMON_HINT_H

#include <stddef.h>

/* Keys, step types and ids a person misspells are far shorter. */
#define HINT_MAX_WORD 64

/* Optimal-string-alignment distance of a and b (insertions, deletions,
 * substitutions and adjacent transpositions cost 1), or max + 1 when it is
 * larger than max or either word is longer than HINT_MAX_WORD. Uses no
 * heap; O(la * lb). */
size_t hint_distance(const char *a, size_t la, const char *b, size_t lb,
                     size_t max);

#endif
