/* buf.h - growable byte buffer with a hard maximum (curl's dynbuf).
 *
 * Every buffer fed by untrusted input carries a maximum size; appends that
 * would pass it fail with WEFT_ELIMIT and leave the buffer unchanged. The
 * content is always NUL-terminated (the terminator is not counted in len
 * and not counted against max).
 */
#ifndef WEFT_COMMON_BUF_H
#define WEFT_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* len never exceeds this */
};

void buf_init(struct buf *b, size_t max);
void buf_deinit(struct buf *b);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);

/* 0, WEFT_ENOMEM or WEFT_ELIMIT; on failure b is unchanged. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_append_char(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Hands the data to the caller (who frees it with weft_free) and resets b.
 * Returns an empty string for an empty buffer; NULL only on ENOMEM. */
char *buf_steal(struct buf *b, size_t *len);

#endif
