/* wire.h - the msgpack wire format of job and result bodies
 * (docs/protocol.md, "Job body" and "Result body").
 *
 * Encoding uses msgpack-c's packer. Decoding never calls msgpack_unpack on
 * untrusted bytes (it allocates what a header declares before checking,
 * FIELD-NOTES): a bounds-checked reader walks the bytes, checks every
 * declared length against the bytes that remain, bounds nesting, and builds
 * jansson values. Map keys must be strings; ext types, non-finite floats
 * and duplicate keys are rejected.
 */
#ifndef WEFT_COMMON_WIRE_H
#define WEFT_COMMON_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"

/* A job or result larger than this is a bug or an attack; persona output
 * is limited well below it by the worker. */
#define WIRE_MAX_BODY (16u * 1024 * 1024)
/* JSON documents a person or persona writes are far shallower. Depth
 * counts containers: a top-level map is depth 1, a map inside it depth 2. */
#define WIRE_MAX_DEPTH 64
/* msgpack objects in one body, map keys included. Bounds what a decoder
 * builds from a small body: a 1-byte msgpack value becomes a json_t of
 * some 40 bytes, so without it 16 MiB of fixints would take ~700 MiB. */
#define WIRE_MAX_VALUES (1024 * 1024)
#define WIRE_VERSION    1

/* Generic: JSON value <-> msgpack bytes. Integers stay integers, reals
 * stay floats (float64), strings are UTF-8 str, objects are maps.
 * wire_encode: *out is weft_malloc'd, owned by the caller. WEFT_ELIMIT
 * when v passes WIRE_MAX_DEPTH, WIRE_MAX_VALUES or WIRE_MAX_BODY (so what
 * is written can be read), WEFT_ENOMEM.
 * wire_decode: *out new reference. Errors: WEFT_EINVAL (malformed,
 * truncated, declared length beyond the bytes present, trailing bytes,
 * non-string or duplicate key, bin, ext, invalid UTF-8, NaN/Inf, uint64
 * above INT64_MAX), WEFT_ELIMIT (size, depth, value count), WEFT_ENOMEM;
 * err says what and at which byte offset. Accepts float32 and
 * non-minimal integer encodings. Outputs unchanged on failure. */
int wire_encode(const json_t *v, char **out, size_t *len);
int wire_decode(const void *buf, size_t len, json_t **out,
                struct weft_error *err);

/* A job as the scheduler renders it and the worker runs it. Strings owned
 * by the struct (weft_malloc'd); JSON fields are owned references (may be
 * NULL when absent). */
struct wire_job {
    char *run;
    char *step;
    char *name;
    char *type;    /* "noop", "persona-request", "git-operation", ... */
    char *persona; /* NULL unless persona-request */
    char *queue;
    uint32_t attempt;          /* 1-based */
    uint64_t timeout_ms;       /* 0 = none */
    uint64_t queue_timeout_ms; /* 0 = none; a worker's start clears it */
    char *trace;               /* W3C traceparent, or NULL */
    json_t *params;            /* object or NULL */
    json_t *git;               /* object or NULL */
    json_t *context;           /* object or NULL */
};

/* 0 or an error; *out and *len as for wire_encode. Fails with WEFT_EINVAL if
 * run, step, type or queue is missing or attempt is 0, or if any field
 * breaks a rule wire_job_decode checks (so what we write we can read). */
int wire_job_encode(const struct wire_job *job, char **out, size_t *len);
/* Decodes and validates: v == WIRE_VERSION; run, step, type, queue
 * (required) and persona (optional) valid per keys_valid_id; attempt
 * 1..UINT32_MAX; timeout_ms and queue_timeout_ms >= 0 (absent = 0); name
 * and trace strings without NUL; params, git and context maps. Unknown
 * keys are ignored, so a field can be added without a version bump. On
 * failure *job is left zeroed and err names the field ("job field
 * 'attempt' must be a positive integer ..."). */
int wire_job_decode(const void *buf, size_t len, struct wire_job *job,
                    struct weft_error *err);
/* Frees every field and zeroes job; NULL is a no-op. */
void wire_job_deinit(struct wire_job *job);

/* Result statuses (docs/protocol.md). */
enum wire_status {
    WIRE_SUCCESS,
    WIRE_ERROR,     /* failed, retryable */
    WIRE_FATAL,     /* failed, never retried */
    WIRE_TIMEOUT,   /* overran its timeout; retryable */
    WIRE_CANCELLED, /* stopped on request */
    WIRE_INVALID,   /* job rejected (bad signature, undecodable) */
};
/* Static word for s ("success", ...); "unknown" when out of range. */
const char *wire_status_name(enum wire_status s);
/* 0 and *out, or WEFT_EINVAL for an unknown word. */
int wire_status_parse(const char *s, size_t len, enum wire_status *out);

struct wire_result {
    enum wire_status status;
    char *verdict;      /* persona's status word, or NULL */
    json_t *result;     /* any JSON, or NULL */
    json_t *state;      /* object or NULL */
    json_t *artifacts;  /* array or NULL */
    char *message;      /* or NULL */
    int64_t started_ms; /* worker clock */
    int64_t finished_ms;
};

/* WEFT_EINVAL for an unknown status, verdict or message that is not
 * valid UTF-8, state that is not an object, artifacts not an array, or a
 * negative time; otherwise as wire_encode. */
int wire_result_encode(const struct wire_result *r, char **out, size_t *len);
/* Decodes and validates: v == WIRE_VERSION; status required, one of the
 * words above; verdict and message strings without NUL; result any JSON
 * (an explicit nil gives json null); state a map; artifacts an array;
 * started and finished integers >= 0 (absent = 0). Unknown keys are
 * ignored. On failure *r is left zeroed and err names the field. */
int wire_result_decode(const void *buf, size_t len, struct wire_result *r,
                       struct weft_error *err);
/* Frees every field and zeroes r; NULL is a no-op. */
void wire_result_deinit(struct wire_result *r);

#endif
