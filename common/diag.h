/* diag.h - a list of diagnostics about one input file.
 *
 * Validation reports every problem, not only the first, so it appends to a
 * struct diag instead of returning one weft_error. Each entry carries the
 * 1-based line and column (0 when unknown) and a message; diag_print writes
 * them gcc-style (`FILE:LINE:COL: error: MESSAGE`) so editors can jump.
 * The list is bounded by DIAG_MAX_ENTRIES so hostile input cannot make it
 * grow without end; past the bound one final entry says how many were
 * dropped.
 */
#ifndef WEFT_COMMON_DIAG_H
#define WEFT_COMMON_DIAG_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* A person fixes a file a screenful at a time; beyond this the rest is
 * counted, not stored. */
#define DIAG_MAX_ENTRIES 200

enum diag_severity { DIAG_ERROR, DIAG_WARNING };

struct diag_entry {
    enum diag_severity severity;
    int line;      /* 1-based; 0 = unknown */
    int column;    /* 1-based; 0 = unknown */
    char *message; /* owned */
};

struct diag {
    const char *file; /* borrowed; must outlive the diag */
    struct diag_entry *entries;
    size_t count;
    size_t cap;
    size_t errors;  /* number of errors, including dropped ones */
    size_t dropped; /* entries not stored past DIAG_MAX_ENTRIES */
    int oom;        /* an entry could not be stored for lack of memory */
};

void diag_init(struct diag *d, const char *file);
void diag_deinit(struct diag *d);

/* Appends an entry. Never fails visibly: on allocation failure the entry
 * is counted (and d->oom set) so the file still reads as invalid. */
void diag_add(struct diag *d, enum diag_severity sev, int line, int column,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Shorthand for an error entry. */
#define diag_error(d, line, col, ...)                                          \
    diag_add((d), DIAG_ERROR, (line), (col), __VA_ARGS__)

/* Sorts entries by position (stable), so output follows the file. */
void diag_sort(struct diag *d);

/* Writes `FILE:LINE:COL: error: MESSAGE` lines to out. */
void diag_print(const struct diag *d, FILE *out);

/* New JSON array of {line, column, severity, message}; NULL on OOM. */
json_t *diag_to_json(const struct diag *d);

#endif
