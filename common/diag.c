/* diag.c - bounded list of positioned diagnostics. */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

void diag_init(struct diag *d, const char *file)
{
    memset(d, 0, sizeof(*d));
    d->file = file;
}

void diag_deinit(struct diag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->count; i++)
        weft_free(d->entries[i].message);
    weft_free(d->entries);
    d->entries = NULL;
    d->count = d->cap = 0;
}

void diag_add(struct diag *d, enum diag_severity sev, int line, int column,
              const char *fmt, ...)
{
    if (sev == DIAG_ERROR)
        d->errors++;
    if (d->count >= DIAG_MAX_ENTRIES) {
        d->dropped++;
        return;
    }
    if (d->count == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 8;
        struct diag_entry *n =
            weft_realloc(d->entries, ncap * sizeof(*d->entries));
        if (n == NULL) {
            d->oom = 1;
            return;
        }
        d->entries = n;
        d->cap = ncap;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *msg = weft_strdup(buf);
    if (msg == NULL) {
        d->oom = 1;
        return;
    }
    struct diag_entry *e = &d->entries[d->count++];
    e->severity = sev;
    e->line = line;
    e->column = column;
    e->message = msg;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct diag_entry *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    /* qsort is not stable: order equal positions by text so the output
     * is the same on every run. */
    return strcmp(x->message, y->message);
}

void diag_sort(struct diag *d)
{
    if (d->count > 1)
        qsort(d->entries, d->count, sizeof(*d->entries), cmp_entry);
}

static const char *sev_name(enum diag_severity s)
{
    return s == DIAG_ERROR ? "error" : "warning";
}

void diag_print(const struct diag *d, FILE *out)
{
    const char *file = d->file ? d->file : "<input>";
    for (size_t i = 0; i < d->count; i++) {
        const struct diag_entry *e = &d->entries[i];
        fprintf(out, "%s:%d:%d: %s: %s\n", file, e->line, e->column,
                sev_name(e->severity), e->message);
    }
    if (d->dropped)
        fprintf(out, "%s: error: %zu more problems not shown\n", file,
                d->dropped);
    if (d->oom)
        fprintf(out, "%s: error: out of memory while reporting problems\n",
                file);
}

json_t *diag_to_json(const struct diag *d)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < d->count; i++) {
        const struct diag_entry *e = &d->entries[i];
        json_t *o = json_pack("{s:i, s:i, s:s, s:s}", "line", e->line, "column",
                              e->column, "severity", sev_name(e->severity),
                              "message", e->message);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}
