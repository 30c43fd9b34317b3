/* num.c - strict number parsing. */
#include "num.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Longer than any finite double needs in plain decimal notation with a
 * sane number of digits; longer input is rejected rather than copied. */
#define NUM_MAX_TEXT 400

int num_parse_i64(const char *s, size_t len, int64_t min, int64_t max,
                  int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (len == 0)
        return WEFT_EINVAL;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return WEFT_EINVAL;
    /* Accumulate as a negative number: its range is the larger one. */
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return WEFT_EINVAL;
        int d = s[i] - '0';
        if (v < (INT64_MIN + d) / 10)
            return WEFT_ELIMIT;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN)
            return WEFT_ELIMIT;
        v = -v;
    }
    if (v < min || v > max)
        return WEFT_ELIMIT;
    *out = v;
    return 0;
}

int num_parse_double(const char *s, size_t len, double *out)
{
    char tmp[NUM_MAX_TEXT + 1];
    if (len == 0 || len > NUM_MAX_TEXT)
        return len == 0 ? WEFT_EINVAL : WEFT_ELIMIT;
    /* strtod accepts more than we want: restrict the alphabet first. */
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' ||
              c == '+' || c == '-'))
            return WEFT_EINVAL;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end != tmp + len)
        return WEFT_EINVAL;
    if (errno == ERANGE && isinf(v))
        return WEFT_ELIMIT;
    if (!isfinite(v))
        return WEFT_ELIMIT;
    *out = v;
    return 0;
}

int num_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
