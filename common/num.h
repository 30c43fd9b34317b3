/* num.h - the one number parser (no atoi, no sscanf).
 *
 * Parses exactly the given bytes: leading/trailing junk, overflow and empty
 * input are errors. Used for YAML scalars, env, argv, Redis replies.
 */
#ifndef WEFT_COMMON_NUM_H
#define WEFT_COMMON_NUM_H

#include <stddef.h>
#include <stdint.h>

/* Decimal integer with optional leading '-' or '+'. Returns 0 and sets *out,
 * WEFT_EINVAL for syntax errors, WEFT_ELIMIT when outside [min, max]. */
int num_parse_i64(const char *s, size_t len, int64_t min, int64_t max,
                  int64_t *out);

/* Finite decimal floating-point number (as strtod, but the whole input must
 * be consumed and inf/nan/hex are rejected). 0, WEFT_EINVAL or WEFT_ELIMIT
 * (overflow to infinity). */
int num_parse_double(const char *s, size_t len, double *out);

/* The value of hexadecimal digit c (0-9, a-f, A-F), or -1. */
int num_hex_digit(char c);

#endif
