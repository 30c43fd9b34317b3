/* alloc.c - allocation wrappers with failure injection for tests. */
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* 0 = no injected failures; otherwise allocations left before failing. */
static unsigned long fail_countdown;
static int failing;

static int should_fail(void)
{
    if (failing)
        return 1;
    if (fail_countdown == 0)
        return 0;
    if (--fail_countdown == 0) {
        failing = 1;
        return 1;
    }
    return 0;
}

void weft_alloc_fail_after(unsigned long n)
{
    fail_countdown = n;
    failing = 0;
}

void weft_alloc_fail_reset(void)
{
    fail_countdown = 0;
    failing = 0;
}

void *weft_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *weft_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    if (n == 0 || size == 0)
        return calloc(1, 1);
    return calloc(n, size);
}

void *weft_realloc(void *p, size_t size)
{
    if (should_fail())
        return NULL;
    return realloc(p, size ? size : 1);
}

void weft_free(void *p)
{
    free(p);
}

char *weft_strndup(const char *s, size_t n)
{
    char *d = weft_malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *weft_strdup(const char *s)
{
    return weft_strndup(s, strlen(s));
}

void weft_alloc_init(void)
{
    json_set_alloc_funcs(weft_malloc, weft_free);
}
