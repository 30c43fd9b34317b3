/* metrics.c - Prometheus text exposition and a two-label histogram (see
 * metrics.h). Series of a histogram are kept in insertion order in one
 * array and found through a strmap on "v1\x1fv2", so an observation costs
 * a hash lookup and a bucket scan.
 */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "strmap.h"

/* Separates the two label values in a series' map key; it cannot appear
 * in ids, and a value holding it only makes two series share a key
 * shape, never corrupt anything. */
#define SERIES_SEP '\x1f'

int metrics_family(struct buf *b, const char *name, const char *type,
                   const char *help)
{
    return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                      type);
}

/* Appends v as the inside of a quoted label value. */
static int escape_value(struct buf *b, const char *v)
{
    size_t n = v ? strnlen(v, METRICS_LABEL_MAX) : 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char c = v[i];
        if (c == '\\')
            rc = buf_append(b, "\\\\", 2);
        else if (c == '"')
            rc = buf_append(b, "\\\"", 2);
        else if (c == '\n')
            rc = buf_append(b, "\\n", 2);
        else
            rc = buf_append_char(b, c);
    }
    return rc;
}

static int write_labels(struct buf *b, const char *const *labels,
                        const char *extra_key, const char *extra_value)
{
    bool any = (labels != NULL && labels[0] != NULL) || extra_key != NULL;
    if (!any)
        return 0;
    int rc = buf_append_char(b, '{');
    bool first = true;
    for (size_t i = 0; rc == 0 && labels != NULL && labels[i] != NULL; i += 2) {
        if (!first)
            rc = buf_append_char(b, ',');
        first = false;
        if (rc == 0)
            rc = buf_printf(b, "%s=\"", labels[i]);
        if (rc == 0)
            rc = escape_value(b, labels[i + 1]);
        if (rc == 0)
            rc = buf_append_char(b, '"');
    }
    if (rc == 0 && extra_key != NULL)
        rc = buf_printf(b, "%s%s=\"%s\"", first ? "" : ",", extra_key,
                        extra_value);
    if (rc == 0)
        rc = buf_append_char(b, '}');
    return rc;
}

/* Formats v the way Prometheus reads it back exactly. */
static void format_value(double v, char *out, size_t n)
{
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0) /* 2^53 */
        snprintf(out, n, "%.0f", v);
    else {
        /* The shortest text that reads back as v. */
        for (int p = 6; p <= 17; p++) {
            snprintf(out, n, "%.*g", p, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

int metrics_sample(struct buf *b, const char *name, const char *const *labels,
                   double value)
{
    char v[64];
    format_value(value, v, sizeof(v));
    int rc = buf_append_str(b, name);
    if (rc == 0)
        rc = write_labels(b, labels, NULL, NULL);
    if (rc == 0)
        rc = buf_printf(b, " %s\n", v);
    return rc;
}

int metrics_sample_u64(struct buf *b, const char *name,
                       const char *const *labels, uint64_t value)
{
    int rc = buf_append_str(b, name);
    if (rc == 0)
        rc = write_labels(b, labels, NULL, NULL);
    if (rc == 0)
        rc = buf_printf(b, " %" PRIu64 "\n", value);
    return rc;
}

struct series {
    char *key; /* "v1\x1fv2", owned; the strmap borrows it */
    char *v1, *v2;
    uint64_t counts[METRICS_HIST_BUCKETS_MAX + 1]; /* per bucket, not
                                                      cumulative; last
                                                      is +Inf */
    uint64_t count;
    double sum;
};

struct metrics_hist {
    char *name, *label1, *label2;
    double bounds[METRICS_HIST_BUCKETS_MAX];
    size_t nbounds;
    struct series *series;
    size_t nseries, cap;
    struct strmap index; /* key -> 1 + position in series */
};

struct metrics_hist *metrics_hist_new(const char *name, const char *label1,
                                      const char *label2, const double *bounds,
                                      size_t nbounds)
{
    if (nbounds == 0 || nbounds > METRICS_HIST_BUCKETS_MAX)
        return NULL;
    for (size_t i = 1; i < nbounds; i++) {
        if (!(bounds[i] > bounds[i - 1]))
            return NULL;
    }
    struct metrics_hist *h = weft_calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    strmap_init(&h->index);
    h->name = weft_strdup(name);
    h->label1 = weft_strdup(label1);
    h->label2 = weft_strdup(label2);
    if (h->name == NULL || h->label1 == NULL || h->label2 == NULL) {
        metrics_hist_free(h);
        return NULL;
    }
    memcpy(h->bounds, bounds, nbounds * sizeof(*bounds));
    h->nbounds = nbounds;
    return h;
}

void metrics_hist_free(struct metrics_hist *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->nseries; i++) {
        weft_free(h->series[i].key);
        weft_free(h->series[i].v1);
        weft_free(h->series[i].v2);
    }
    weft_free(h->series);
    strmap_deinit(&h->index);
    weft_free(h->name);
    weft_free(h->label1);
    weft_free(h->label2);
    weft_free(h);
}

/* Writes the map key of (v1, v2) into key (2 * METRICS_LABEL_MAX + 2
 * bytes); returns its length. Values are cut at METRICS_LABEL_MAX. */
static size_t series_key(const char *v1, const char *v2, char *key)
{
    size_t n1 = strnlen(v1, METRICS_LABEL_MAX);
    size_t n2 = strnlen(v2, METRICS_LABEL_MAX);
    memcpy(key, v1, n1);
    key[n1] = SERIES_SEP;
    memcpy(key + n1 + 1, v2, n2);
    key[n1 + 1 + n2] = '\0';
    return n1 + 1 + n2;
}

static struct series *series_find(struct metrics_hist *h, const char *v1,
                                  const char *v2)
{
    char key[2 * METRICS_LABEL_MAX + 2];
    size_t klen = series_key(v1, v2, key);
    uintptr_t pos = (uintptr_t)strmap_get(&h->index, key, klen);
    return pos != 0 ? &h->series[pos - 1] : NULL;
}

/* Adds the series (v1, v2), which must be absent; NULL on OOM. */
static struct series *series_add(struct metrics_hist *h, const char *v1,
                                 const char *v2)
{
    char key[2 * METRICS_LABEL_MAX + 2];
    size_t klen = series_key(v1, v2, key);
    if (h->nseries == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        struct series *s = weft_realloc(h->series, cap * sizeof(*s));
        if (s == NULL)
            return NULL;
        /* The map borrows each series' key string, which does not move
         * with the array. */
        h->series = s;
        h->cap = cap;
    }
    struct series *s = &h->series[h->nseries];
    memset(s, 0, sizeof(*s));
    s->key = weft_strndup(key, klen);
    s->v1 = weft_strndup(v1, strnlen(v1, METRICS_LABEL_MAX));
    s->v2 = weft_strndup(v2, strnlen(v2, METRICS_LABEL_MAX));
    if (s->key == NULL || s->v1 == NULL || s->v2 == NULL ||
        strmap_put(&h->index, s->key, klen, (void *)(h->nseries + 1), NULL) !=
            0) {
        weft_free(s->key);
        weft_free(s->v1);
        weft_free(s->v2);
        return NULL;
    }
    h->nseries++;
    return s;
}

int metrics_hist_observe(struct metrics_hist *h, const char *v1, const char *v2,
                         double value)
{
    if (v1 == NULL)
        v1 = "";
    if (v2 == NULL)
        v2 = "";
    if (!(value >= 0))
        value = 0; /* NaN and negatives: a clock stepped back */
    struct series *s = series_find(h, v1, v2);
    if (s == NULL && h->nseries < METRICS_HIST_SERIES_MAX - 1)
        s = series_add(h, v1, v2);
    else if (s == NULL) {
        /* The last slot collects every pair past the limit. */
        s = series_find(h, "other", "other");
        if (s == NULL)
            s = series_add(h, "other", "other");
    }
    if (s == NULL)
        return WEFT_ENOMEM;
    size_t i = 0;
    while (i < h->nbounds && value > h->bounds[i])
        i++;
    s->counts[i]++;
    s->count++;
    s->sum += value;
    return 0;
}

int metrics_hist_write(const struct metrics_hist *h, struct buf *b,
                       const char *help)
{
    char name[256];
    int rc = metrics_family(b, h->name, "histogram", help);
    for (size_t k = 0; rc == 0 && k < h->nseries; k++) {
        const struct series *s = &h->series[k];
        const char *labels[] = {h->label1, s->v1, h->label2, s->v2, NULL};
        uint64_t cum = 0;
        snprintf(name, sizeof(name), "%s_bucket", h->name);
        for (size_t i = 0; rc == 0 && i <= h->nbounds; i++) {
            char le[64];
            cum += s->counts[i];
            if (i < h->nbounds)
                format_value(h->bounds[i], le, sizeof(le));
            else
                snprintf(le, sizeof(le), "+Inf");
            rc = buf_append_str(b, name);
            if (rc == 0)
                rc = write_labels(b, labels, "le", le);
            if (rc == 0)
                rc = buf_printf(b, " %" PRIu64 "\n", cum);
        }
        snprintf(name, sizeof(name), "%s_sum", h->name);
        if (rc == 0)
            rc = metrics_sample(b, name, labels, s->sum);
        snprintf(name, sizeof(name), "%s_count", h->name);
        if (rc == 0)
            rc = metrics_sample_u64(b, name, labels, s->count);
    }
    return rc;
}
