/* strmap.c - open-addressing string map. */
#include "strmap.h"

#include <stdbool.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

uint64_t strmap_hash(const char *key, size_t keylen)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < keylen; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void strmap_init(struct strmap *m)
{
    m->slots = NULL;
    m->cap = m->count = 0;
}

void strmap_deinit(struct strmap *m)
{
    weft_free(m->slots);
    strmap_init(m);
}

static struct strmap_slot *find(struct strmap_slot *slots, size_t cap,
                                const char *key, size_t keylen, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    for (;;) {
        struct strmap_slot *s = &slots[i];
        if (s->key == NULL || (s->hash == h && s->keylen == keylen &&
                               memcmp(s->key, key, keylen) == 0))
            return s;
        i = (i + 1) & (cap - 1);
    }
}

static int grow(struct strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    struct strmap_slot *n = weft_calloc(ncap, sizeof(*n));
    if (n == NULL)
        return WEFT_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        struct strmap_slot *s = &m->slots[i];
        if (s->key)
            *find(n, ncap, s->key, s->keylen, s->hash) = *s;
    }
    weft_free(m->slots);
    m->slots = n;
    m->cap = ncap;
    return 0;
}

int strmap_put(struct strmap *m, const char *key, size_t keylen, void *value,
               void **existing)
{
    /* Keep the load factor under 1/2 so probes stay short. */
    if ((m->count + 1) * 2 > m->cap) {
        int rc = grow(m);
        if (rc)
            return rc;
    }
    uint64_t h = strmap_hash(key, keylen);
    struct strmap_slot *s = find(m->slots, m->cap, key, keylen, h);
    if (s->key) {
        if (existing)
            *existing = s->value;
        return WEFT_EINVAL;
    }
    s->key = key;
    s->keylen = keylen;
    s->hash = h;
    s->value = value;
    m->count++;
    return 0;
}

void *strmap_get(const struct strmap *m, const char *key, size_t keylen)
{
    if (m->cap == 0)
        return NULL;
    uint64_t h = strmap_hash(key, keylen);
    struct strmap_slot *s = find(m->slots, m->cap, key, keylen, h);
    return s->key ? s->value : NULL;
}

void *strmap_del(struct strmap *m, const char *key, size_t keylen)
{
    if (m->cap == 0)
        return NULL;
    uint64_t h = strmap_hash(key, keylen);
    struct strmap_slot *s = find(m->slots, m->cap, key, keylen, h);
    if (s->key == NULL)
        return NULL;
    void *value = s->value;
    size_t mask = m->cap - 1, i = (size_t)(s - m->slots), j = i;
    /* Backward-shift deletion for linear probing: move later entries of
     * the cluster into the hole when their home slot allows it. */
    for (;;) {
        j = (j + 1) & mask;
        struct strmap_slot *t = &m->slots[j];
        if (t->key == NULL)
            break;
        size_t home = (size_t)t->hash & mask;
        /* t may move to i when i lies cyclically in [home, j). */
        bool movable =
            (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->slots[i] = *t;
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->count--;
    return value;
}
