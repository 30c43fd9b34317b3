/* strmap.h - hash map from byte strings to pointers.
 *
 * Open addressing with linear probing; keys are borrowed (the caller keeps
 * them alive and unchanged while they are in the map), values are opaque.
 * Used for step-id lookup when loading workflows of 100k steps, so lookups
 * and inserts are O(1) on average.
 */
#ifndef WEFT_COMMON_STRMAP_H
#define WEFT_COMMON_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
    const char *key; /* NULL = empty */
    size_t keylen;
    uint64_t hash;
    void *value;
};

struct strmap {
    struct strmap_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
};

void strmap_init(struct strmap *m);
void strmap_deinit(struct strmap *m);

/* Inserts key -> value. Returns 0, WEFT_ENOMEM, or WEFT_EINVAL when the key
 * is already present (then *existing, if not NULL, receives its value and
 * the map is unchanged). */
int strmap_put(struct strmap *m, const char *key, size_t keylen, void *value,
               void **existing);

/* The value for key, or NULL when absent. */
void *strmap_get(const struct strmap *m, const char *key, size_t keylen);

/* Removes key; returns its value, or NULL when absent. Slots are
 * shifted back (no tombstones), so lookups stay short after many
 * removals. */
void *strmap_del(struct strmap *m, const char *key, size_t keylen);

/* FNV-1a 64-bit hash of the bytes. */
uint64_t strmap_hash(const char *key, size_t keylen);

#endif
