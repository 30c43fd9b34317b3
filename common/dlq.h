/* dlq.h - the dead-letter stream `<prefix>:dlq` (docs/protocol.md, "Dead
 * letters"): the fields a dead letter carries about itself, and what an
 * entry tells about where its message came from and whether it can go
 * back there.
 *
 * A dead letter is the original message, every field as it was, plus
 * bookkeeping fields whose names start with "dlq_" (no message of weft's
 * has such a field): the stream the message came from, its id there, the
 * reason, who dead-lettered it and when. Workers (a job), schedulers (an
 * event or a task) and external workers all write this shape, so one
 * requeue puts any of them back. Entries written by earlier versions
 * (`queue`, `source`, `reason`, `entry` beside the message's fields) are
 * still read, and requeued when they carry their message.
 *
 * Pure functions over a stream entry's field array (a redisReply): no
 * I/O, so the CLI (blocking hiredis) and the scheduler's HTTP API (async)
 * share them. Nothing returned points into the reply beyond the
 * documented borrowed strings.
 */
#ifndef WEFT_COMMON_DLQ_H
#define WEFT_COMMON_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "keys.h"

/* The bookkeeping fields. */
#define DLQ_F_ORIGIN    "dlq_origin"    /* stream key the message came from */
#define DLQ_F_ENTRY     "dlq_entry"     /* its entry id there */
#define DLQ_F_REASON    "dlq_reason"    /* why it was dead-lettered */
#define DLQ_F_BY        "dlq_by"        /* consumer name of the process */
#define DLQ_F_AT        "dlq_at"        /* ms since the epoch */
#define DLQ_F_TRUNCATED "dlq_truncated" /* "1": fields past the cap dropped */
/* Every bookkeeping field name starts with this. */
#define DLQ_META_PREFIX "dlq_"

/* Fields of the original message copied into a dead letter, and back by
 * a requeue. A job has 7 and a task or event fewer than 10; a hostile
 * entry with thousands is cut here (and marked dlq_truncated), which
 * also bounds the argument count of the XADD that copies it. */
#define DLQ_FIELDS_MAX 64

/* What kind of stream a dead letter's message came from. */
enum dlq_kind {
    DLQ_UNKNOWN,
    DLQ_JOB,   /* `<prefix>:q:<queue>` */
    DLQ_TASK,  /* `<prefix>:tasks` */
    DLQ_EVENT, /* `<prefix>:events` */
};

struct dlq_info {
    enum dlq_kind kind;
    char origin[KEYS_MAX]; /* the origin stream's key; "" when unknown */
    /* Borrowed from the fields reply (valid while it lives); NULL when
     * absent. */
    const char *reason;
    const char *by;
    const char *entry;
    /* The message's own plain fields, when present. */
    const char *run;
    const char *step;
    const char *attempt;
    const char *type;
    int64_t at;                  /* ms since the epoch; -1 when unknown */
    bool legacy;                 /* written by an earlier version */
    bool truncated;              /* fields were cut at DLQ_FIELDS_MAX */
    const char *not_requeueable; /* static text: why it cannot go back;
                                    NULL when it can */
};

/* Reads a dead letter's field array ([field, value, ...], a stream entry's
 * second element) into *out. k names the streams an origin may be: only
 * weft's own tasks, events and job queues are ever requeue targets, so a
 * forged entry cannot make a requeue write elsewhere. Never fails: what
 * cannot be read is reported through out->not_requeueable. */
void dlq_inspect(const struct keys *k, const redisReply *fields,
                 struct dlq_info *out);

/* True when a field of a dead letter is bookkeeping, not part of the
 * message: a "dlq_" field, or for a legacy entry `queue`, `source`,
 * `reason` and `entry`. */
bool dlq_meta_field(const char *name, size_t len, bool legacy);

/* The ARGV of the `dlq_move` script (common/lua/dlq_move.lua) that puts
 * the message of dead letter `id` back on info->origin: KEYS are the DLQ
 * and the origin, ARGV the id then the message's field/value pairs.
 * Fills argv/lens (the caller frees both arrays with weft_free; the
 * strings are borrowed from dlq_key, info, id and fields) and *argc, and
 * sets *nkeys to 2. WEFT_EINVAL when info says the entry cannot be
 * requeued, WEFT_ENOMEM. */
int dlq_move_argv(const char *dlq_key, const struct dlq_info *info,
                  const char *id, const redisReply *fields, int *nkeys,
                  int *argc, const char ***argv, size_t **lens);

/* "job", "task", "event" or "unknown". */
const char *dlq_kind_name(enum dlq_kind kind);

/* The millisecond part of a stream id ("1714567891234-0"), or -1. */
int64_t dlq_id_ms(const char *id);

#endif
