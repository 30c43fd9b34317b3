/* metrics.h - Prometheus text exposition (format 0.0.4) and a histogram
 * with two labels, for the daemons' /metrics endpoints.
 *
 * Output goes into a struct buf (buf.h), whose maximum bounds what a
 * scrape can cost. Label values come from Redis and jobs, so they are
 * escaped here (backslash, double quote, newline) and never trusted to be
 * well formed; metric and label names are the caller's constants.
 * Single-threaded: call from the loop thread only.
 */
#ifndef WEFT_COMMON_METRICS_H
#define WEFT_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* A scrape larger than this means thousands of queues or personas: the
 * rest is cut rather than the process growing without bound. */
#define METRICS_OUT_MAX (8u * 1024 * 1024)
/* Distinct label pairs one histogram tracks; further pairs are counted
 * under the values "other"/"other", so a flood of persona names cannot
 * grow memory or the scrape. */
#define METRICS_HIST_SERIES_MAX 256
/* Bucket bounds per histogram (plus the implicit +Inf). */
#define METRICS_HIST_BUCKETS_MAX 32
/* Longest label value kept; longer ones are cut (ids are <= 128). */
#define METRICS_LABEL_MAX 128

/* Writes `# HELP name help` and `# TYPE name type`. 0 or a buf error. */
int metrics_family(struct buf *b, const char *name, const char *type,
                   const char *help);

/* Writes `name{k1="v1",...} value`. labels is NULL or a NULL-terminated
 * list of key, value pairs (a NULL value in a pair is written as "").
 * metrics_sample prints integral values without exponent; NaN and
 * infinities as Prometheus spells them. 0 or a buf error. */
int metrics_sample(struct buf *b, const char *name, const char *const *labels,
                   double value);
int metrics_sample_u64(struct buf *b, const char *name,
                       const char *const *labels, uint64_t value);

struct metrics_hist;

/* A histogram named name (without the _bucket/_sum/_count suffixes) with
 * labels label1 and label2 and the given increasing bucket bounds
 * (1..METRICS_HIST_BUCKETS_MAX). Strings are copied. NULL on OOM or bad
 * bounds. */
struct metrics_hist *metrics_hist_new(const char *name, const char *label1,
                                      const char *label2, const double *bounds,
                                      size_t nbounds);
void metrics_hist_free(struct metrics_hist *h);

/* Counts one observation (seconds, or whatever unit the name says) for
 * the label values v1 and v2 (NULL is ""). Negative or NaN values count
 * as 0. 0, or WEFT_ENOMEM (the observation is lost). */
int metrics_hist_observe(struct metrics_hist *h, const char *v1, const char *v2,
                         double value);

/* Writes the family (HELP, TYPE) and every series: cumulative buckets,
 * +Inf, _sum and _count. 0 or a buf error. */
int metrics_hist_write(const struct metrics_hist *h, struct buf *b,
                       const char *help);

#endif
