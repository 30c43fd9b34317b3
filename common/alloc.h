/* alloc.h - the one place weft allocates memory.
 *
 * Every allocation in weft goes through these functions so that tests can
 * make the Nth allocation fail (SQLite's OOM tests, curl's torture tests)
 * and check that each caller reports ENOMEM instead of crashing. jansson is
 * routed here too by weft_alloc_init().
 */
#ifndef WEFT_COMMON_ALLOC_H
#define WEFT_COMMON_ALLOC_H

#include <stddef.h>

/* Routes jansson's allocations through weft_malloc/weft_free. Call once at
 * start-up, before any json_t is created. */
void weft_alloc_init(void);

/* Like malloc/calloc/realloc/free; return NULL on failure (including
 * injected failure). weft_free(NULL) is a no-op. weft_realloc leaves the
 * old block untouched when it fails. */
void *weft_malloc(size_t size);
void *weft_calloc(size_t n, size_t size);
void *weft_realloc(void *p, size_t size);
void weft_free(void *p);

/* Copy of the NUL-terminated s (or of its first n bytes, NUL added).
 * Caller owns the result; NULL on failure. */
char *weft_strdup(const char *s);
char *weft_strndup(const char *s, size_t n);

/* Test hook: the nth allocation from now (1 = the next one) and every one
 * after it fail until weft_alloc_fail_reset(). n == 0 disables. */
void weft_alloc_fail_after(unsigned long n);
void weft_alloc_fail_reset(void);

#endif
