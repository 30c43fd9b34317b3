/* expr_int.h - internals of the expr module shared by expr.c (parser and
 * evaluator), jsval.c (JavaScript value conversions) and tmpl.c.
 *
 * Nothing here is part of the public API; tests and test tools may use it
 * to look at values the public API has to squeeze into JSON (NaN, -0).
 */
#ifndef WEFT_COMMON_EXPR_INT_H
#define WEFT_COMMON_EXPR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "expr.h"

/* jansson's own parser stops at this nesting; deeper values can only be
 * built by code, and rendering them would recurse that deep. */
#define EXPR_MAX_JSON_DEPTH 2048

/* expr_parse_path's answer when the text is not a plain path. */
#define EXPR_NOT_A_PATH 1

/* Parses a template path: an identifier followed by '.'-separated
 * segments of [A-Za-z0-9_$-] (`steps.plan-evaluation.result.0`). The tree
 * reads the root leniently (absent = undefined) and every segment as an
 * optional member (`?.`), so a missing step renders as undefined. Returns
 * 0 and *out, EXPR_NOT_A_PATH when src is not a path (the caller then
 * parses it as an expression), WEFT_ELIMIT (more than EXPR_MAX_DEPTH - 1
 * segments; err filled) or WEFT_ENOMEM. */
int expr_parse_path(const char *src, size_t len, struct expr **out,
                    struct weft_error *err);

/* Evaluates e and appends the display string of the result (see
 * expr_to_display_string; NaN and Infinity as JS writes them) to b.
 * Errors as expr_eval, plus WEFT_ELIMIT when b is full. */
int expr_eval_display(const struct expr *e, const json_t *scope, struct buf *b,
                      struct weft_error *err);

/* Evaluates e and appends a canonical description of the JS value to b:
 * "undefined", "null", "boolean:true", "number:<Number#toString>",
 * "string:<JSON.stringify>", "array:<JSON>" or "object:<JSON>". Used by
 * tests and the differential test against node. */
int expr_eval_describe(const struct expr *e, const json_t *scope, struct buf *b,
                       struct weft_error *err);

/* JS StringToNumber of the UTF-8 text s[0..len), which must be followed
 * by a NUL byte at s[len] (jansson strings are): whitespace trimmed, ""
 * is 0, 0x/0o/0b prefixes, "Infinity", decimal literals, else NaN. */
double expr_string_to_number(const char *s, size_t len);

/* Value of the ASCII digits[0..n) (validated: each below 2^shift) in
 * radix 2^shift (shift 1, 3 or 4), correctly rounded to a double as JS
 * does for 0x/0o/0b literals. */
double expr_radix_value(const char *digits, size_t n, int shift);

/* Compares two UTF-8 strings in UTF-16 code unit order (JS `<`):
 * negative, 0 or positive. */
int expr_string_compare(const char *a, size_t alen, const char *b, size_t blen);

/* Number of UTF-16 code units of the UTF-8 text s[0..len). */
size_t expr_utf16_length(const char *s, size_t len);

/* Byte offset of the first character that starts at UTF-16 index `units`
 * or later (len when none). *exact tells whether a character starts
 * exactly at that index (false inside a surrogate pair). */
size_t expr_utf16_offset(const char *s, size_t len, size_t units, bool *exact);

/* Decodes one code point of valid UTF-8 at s (len > 0 bytes left); sets
 * *n to its length. Invalid bytes decode as U+FFFD of length 1. */
uint32_t expr_utf8_decode(const char *s, size_t len, size_t *n);

/* Whether cp is ECMAScript WhiteSpace or LineTerminator. */
bool expr_is_js_space(uint32_t cp);

/* Encodes cp (<= 0x10FFFF, not a surrogate) into out[4]; returns length. */
size_t expr_utf8_encode(uint32_t cp, char *out);

/* Whether s[0..len) is valid UTF-8 (no overlongs, surrogates or values
 * past U+10FFFF); when not, *bad is the offset of the first bad byte. */
bool expr_utf8_valid(const char *s, size_t len, size_t *bad);

/* Appends JS String(v) for a JSON value (arrays joined with ",", nested
 * null as "", objects as "[object Object]"). 0, WEFT_ENOMEM, WEFT_ELIMIT
 * (b full or nesting past EXPR_MAX_JSON_DEPTH). */
int expr_append_js_string(struct buf *b, const json_t *v);

/* Appends JSON.stringify(v) (compact, numbers as JS formats them). Errors
 * as expr_append_js_string. */
int expr_append_json(struct buf *b, const json_t *v);

/* Appends s[0..len) as a JSON string literal, escaped as JSON.stringify
 * does. */
int expr_append_json_string(struct buf *b, const char *s, size_t len);

/* Appends the template display string of v (NULL = undefined). */
int expr_append_display(struct buf *b, const json_t *v);

#endif
