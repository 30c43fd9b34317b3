/* error.c - error codes and messages. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *weft_strerror(int code)
{
    switch (code) {
    case WEFT_OK:
        return "success";
    case WEFT_ENOMEM:
        return "out of memory";
    case WEFT_EINVAL:
        return "invalid input";
    case WEFT_ELIMIT:
        return "limit exceeded";
    case WEFT_EIO:
        return "input/output error";
    case WEFT_ENOENT:
        return "not found";
    case WEFT_ETYPE:
        return "type error";
    case WEFT_EREDIS:
        return "redis error";
    case WEFT_EAUTH:
        return "authentication failed";
    case WEFT_ESTATE:
        return "invalid state";
    case WEFT_ETIMEOUT:
        return "timed out";
    }
    return "unknown error";
}

int weft_error_set(struct weft_error *err, int code, int line, int column,
                   const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->line = line;
    err->column = column;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void weft_error_clear(struct weft_error *err)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof(*err));
}
