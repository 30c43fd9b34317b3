/* error.h - error codes and the detailed error record.
 *
 * Functions that can fail return 0 or a negative WEFT_E* code. Where an
 * operator needs detail they also fill a struct weft_error: the code, an
 * optional position (1-based line and column; 0 when unknown) and a bounded
 * message. Code never parses the message text.
 */
#ifndef WEFT_COMMON_ERROR_H
#define WEFT_COMMON_ERROR_H

#include <stddef.h>

enum weft_errcode {
    WEFT_OK = 0,
    WEFT_ENOMEM = -1, /* allocation failed */
    WEFT_EINVAL = -2, /* invalid input (syntax, type, value) */
    WEFT_ELIMIT = -3, /* input exceeds a named limit */
    WEFT_EIO = -4,    /* reading or writing a file or socket failed */
    WEFT_ENOENT = -5, /* a named thing does not exist */
    WEFT_ETYPE = -6,  /* a value has the wrong type at run time */
    WEFT_EREDIS = -7, /* Redis answered with an error or went away */
    WEFT_EAUTH = -8,  /* signature or credentials rejected */
    WEFT_ESTATE = -9, /* operation not allowed in the current state */
    WEFT_ETIMEOUT = -10,
};

/* Long enough for a message naming a field, a value and a hint. */
#define WEFT_ERROR_MSG_MAX 256

struct weft_error {
    int code;   /* enum weft_errcode */
    int line;   /* 1-based; 0 = unknown */
    int column; /* 1-based; 0 = unknown */
    char msg[WEFT_ERROR_MSG_MAX];
};

/* Static English description of a code; never NULL. */
const char *weft_strerror(int code);

/* Fills err (if not NULL) and returns code, so callers can write
 * `return weft_error_set(err, WEFT_EINVAL, 0, 0, "bad %s", x);`.
 * The message is truncated safely to WEFT_ERROR_MSG_MAX - 1 bytes. */
int weft_error_set(struct weft_error *err, int code, int line, int column,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Clears err to WEFT_OK with an empty message. */
void weft_error_clear(struct weft_error *err);

#endif
