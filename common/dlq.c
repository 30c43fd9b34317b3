/* dlq.c - reading dead letters: their origin, bookkeeping and whether
 * their message can be requeued (dlq.h, docs/protocol.md). */
#include "dlq.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "num.h"
#include "rundoc.h"

const char *dlq_kind_name(enum dlq_kind kind)
{
    switch (kind) {
    case DLQ_JOB:
        return "job";
    case DLQ_TASK:
        return "task";
    case DLQ_EVENT:
        return "event";
    default:
        return "unknown";
    }
}

static bool name_is(const char *name, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(name, word, len) == 0;
}

bool dlq_meta_field(const char *name, size_t len, bool legacy)
{
    size_t plen = strlen(DLQ_META_PREFIX);
    if (len >= plen && memcmp(name, DLQ_META_PREFIX, plen) == 0)
        return true;
    return legacy &&
           (name_is(name, len, "queue") || name_is(name, len, "source") ||
            name_is(name, len, "reason") || name_is(name, len, "entry"));
}

int64_t dlq_id_ms(const char *id)
{
    int64_t ms;
    if (id == NULL)
        return -1;
    size_t n = strcspn(id, "-");
    if (n == 0 || num_parse_i64(id, n, 0, INT64_MAX, &ms) != 0)
        return -1;
    return ms;
}

/* Present with a non-empty value (binary values count). */
static bool has_value(const redisReply *fields, const char *name)
{
    const redisReply *v = rundoc_reply_field(fields, name);
    return v != NULL && v->type == REDIS_REPLY_STRING && v->len > 0;
}

/* The kind of origin key `key`, one of weft's own streams, else
 * DLQ_UNKNOWN. */
static enum dlq_kind kind_of_key(const struct keys *k, const char *key)
{
    char name[KEYS_MAX];
    keys_global(k, KEYS_TASKS, name);
    if (strcmp(key, name) == 0)
        return DLQ_TASK;
    keys_global(k, KEYS_EVENTS, name);
    if (strcmp(key, name) == 0)
        return DLQ_EVENT;
    size_t plen = keys_queue_prefix(k, name);
    if (plen > 0 && strncmp(key, name, plen) == 0 &&
        keys_valid_id(key + plen, strlen(key + plen)))
        return DLQ_JOB;
    return DLQ_UNKNOWN;
}

/* Counts the message's fields (not bookkeeping). */
static size_t message_fields(const redisReply *fields, bool legacy)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        if (f->type == REDIS_REPLY_STRING &&
            !dlq_meta_field(f->str, f->len, legacy))
            n++;
    }
    return n;
}

void dlq_inspect(const struct keys *k, const redisReply *fields,
                 struct dlq_info *out)
{
    memset(out, 0, sizeof(*out));
    out->at = -1;
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY) {
        out->not_requeueable = "the entry has no fields";
        return;
    }
    const char *origin = rundoc_reply_str(fields, DLQ_F_ORIGIN);
    if (origin != NULL) {
        out->kind = kind_of_key(k, origin);
        if (out->kind != DLQ_UNKNOWN)
            snprintf(out->origin, sizeof(out->origin), "%s", origin);
        out->reason = rundoc_reply_str(fields, DLQ_F_REASON);
        out->entry = rundoc_reply_str(fields, DLQ_F_ENTRY);
    } else {
        /* Written by an earlier version: `queue` for a job a worker
         * rejected, `source` tasks|events for the scheduler's. */
        out->legacy = true;
        const char *queue = rundoc_reply_str(fields, "queue");
        const char *source = rundoc_reply_str(fields, "source");
        if (queue != NULL && keys_queue(k, queue, out->origin) > 0) {
            out->kind = DLQ_JOB;
        } else if (source != NULL && strcmp(source, "tasks") == 0) {
            out->kind = DLQ_TASK;
            keys_global(k, KEYS_TASKS, out->origin);
        } else if (source != NULL && strcmp(source, "events") == 0) {
            out->kind = DLQ_EVENT;
            keys_global(k, KEYS_EVENTS, out->origin);
        }
        out->reason = rundoc_reply_str(fields, "reason");
        out->entry = rundoc_reply_str(fields, "entry");
    }
    out->by = rundoc_reply_str(fields, DLQ_F_BY);
    const char *at = rundoc_reply_str(fields, DLQ_F_AT);
    int64_t ms;
    if (at != NULL && num_parse_i64(at, strlen(at), 0, INT64_MAX, &ms) == 0)
        out->at = ms;
    const char *trunc = rundoc_reply_str(fields, DLQ_F_TRUNCATED);
    out->truncated = trunc != NULL && strcmp(trunc, "1") == 0;
    out->run = rundoc_reply_str(fields, "run");
    out->step = rundoc_reply_str(fields, "step");
    out->attempt = rundoc_reply_str(fields, "attempt");
    out->type = rundoc_reply_str(fields, "type");

    if (out->kind == DLQ_UNKNOWN)
        out->not_requeueable = origin != NULL
                                   ? "its origin is not one of weft's streams"
                                   : "its origin is unknown";
    else if (out->truncated)
        out->not_requeueable = "its message was cut (too many fields)";
    else if (message_fields(fields, out->legacy) > DLQ_FIELDS_MAX)
        out->not_requeueable = "it has too many fields";
    else if (out->kind == DLQ_JOB &&
             (!has_value(fields, "body") || !has_value(fields, "sig")))
        out->not_requeueable = "it does not carry the job's body and signature";
    else if (out->kind == DLQ_TASK && !has_value(fields, "task"))
        out->not_requeueable = "it does not carry the task";
    else if (out->kind == DLQ_EVENT && !has_value(fields, "type"))
        out->not_requeueable = "it does not carry the event's type";
}

int dlq_move_argv(const char *dlq_key, const struct dlq_info *info,
                  const char *id, const redisReply *fields, int *nkeys,
                  int *argc, const char ***argv, size_t **lens)
{
    if (info->not_requeueable != NULL || fields == NULL ||
        fields->type != REDIS_REPLY_ARRAY)
        return WEFT_EINVAL;
    size_t max = 3 + 2 * (size_t)DLQ_FIELDS_MAX;
    const char **av = weft_calloc(max, sizeof(*av));
    size_t *al = weft_calloc(max, sizeof(*al));
    if (av == NULL || al == NULL) {
        weft_free(av);
        weft_free(al);
        return WEFT_ENOMEM;
    }
    size_t n = 0;
    av[n] = dlq_key;
    al[n++] = strlen(dlq_key);
    av[n] = info->origin;
    al[n++] = strlen(info->origin);
    av[n] = id;
    al[n++] = strlen(id);
    for (size_t i = 0; i + 1 < fields->elements && n + 2 <= max; i += 2) {
        const redisReply *f = fields->element[i], *v = fields->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            dlq_meta_field(f->str, f->len, info->legacy))
            continue;
        av[n] = f->str;
        al[n++] = f->len;
        av[n] = v->str;
        al[n++] = v->len;
    }
    *nkeys = 2;
    *argc = (int)n;
    *argv = av;
    *lens = al;
    return 0;
}
