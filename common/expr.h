/* expr.h - a safe, side-effect-free subset of JavaScript expressions.
 *
 * Workflow conditions are JavaScript in the seed
 * (`context.state.get('qa_status') === 'pass'`, `task.type !== 'hotfix'`).
 * This module parses such an expression once, at load time, into an
 * immutable tree, and evaluates it against a scope with JavaScript's
 * semantics (===, ==, +, <, ?:, truthiness, Number-to-String, ...).
 *
 * Supported: literals (strings in ' and " with JS escapes, numbers incl.
 * hex/exponent, true, false, null, undefined, array literals), identifiers
 * (looked up as keys of the scope object), member access a.b, a['b'],
 * a?.b, a?.[b], calls of the methods get and has (on objects used as
 * maps), includes (strings and arrays), startsWith and endsWith (strings),
 * the property length (strings in UTF-16 units, arrays), the operators
 * ! && || ?? === !== == != < <= > >= + - * / % ?: unary - and +, and
 * parentheses. No assignment, no loops, no function values: evaluation
 * always terminates, in time linear in the tree size.
 *
 * Values are jansson json_t: JSON null is JS null, a NULL pointer is JS
 * undefined; integers and reals are both JS numbers (doubles). Objects in
 * the scope stand for both plain objects and Maps: obj.get(k) is the own
 * property k or undefined, obj.has(k) whether it exists (as for a Map
 * whose keys are strings, a key that is not a string is never found).
 * Array literals are JSON arrays: an element that is undefined, NaN or
 * +-Infinity is stored as null. See docs/expressions.md.
 *
 * Errors: parse errors carry the 1-based column inside the expression.
 * Evaluation errors are JavaScript's TypeErrors (reading a property of
 * undefined or null, calling a method a value does not have) and limit
 * violations; they return WEFT_ETYPE / WEFT_ELIMIT with a message.
 *
 * Thread-safety: a parsed tree is immutable and may be evaluated from many
 * threads at once.
 */
#ifndef WEFT_COMMON_EXPR_H
#define WEFT_COMMON_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "error.h"

/* A condition is one line a person reads; longer is almost surely not a
 * hand-written condition. */
#define EXPR_MAX_SOURCE 4096
/* Nesting of parentheses/operators; keeps the recursive-descent parser and
 * evaluator far from the C stack limit. */
#define EXPR_MAX_DEPTH 64
/* Longest string an evaluation may build (concatenation): bounds memory. */
#define EXPR_MAX_STRING (1u << 20)

struct expr;

/* Parses src[0..len). On success *out owns a new tree (free with
 * expr_free) and 0 is returned. On failure returns WEFT_EINVAL (syntax) or
 * WEFT_ELIMIT (source too long, too deep) or WEFT_ENOMEM, fills err with
 * err->column = 1-based byte column in src (err->line = 1), *out unchanged.
 */
int expr_parse(const char *src, size_t len, struct expr **out,
               struct weft_error *err);

void expr_free(struct expr *e);

/* The source text the tree was parsed from (owned by e). */
const char *expr_source(const struct expr *e);

/* Evaluates e with identifiers looked up in scope (a JSON object; may be
 * NULL for an empty scope; borrowed for the duration of the call).
 * On success returns 0 and sets *out to a new reference, or to NULL for
 * undefined; a computed number is made by expr_number_to_json (NaN and
 * Infinity become null), a number read unchanged from the scope keeps its
 * JSON type. On failure returns a negative code, fills err (err->column
 * is the column of the failing operator or name), and leaves *out
 * unchanged. A reference to an identifier absent from scope is a
 * ReferenceError (WEFT_ENOENT). */
int expr_eval(const struct expr *e, const json_t *scope, json_t **out,
              struct weft_error *err);

/* Evaluates e and applies JS truthiness: 0 and *truth set, or an error as
 * for expr_eval. */
int expr_eval_bool(const struct expr *e, const json_t *scope, bool *truth,
                   struct weft_error *err);

/* Calls fn for each free identifier (root of a member chain) the
 * expression reads, with its 1-based column in the source. Used by the
 * validator to reject unknown roots at load time. Stops early and returns
 * fn's value when fn returns non-zero. */
typedef int (*expr_root_cb)(void *ud, const char *name, size_t len, int column);
int expr_foreach_root(const struct expr *e, expr_root_cb fn, void *ud);

/* JavaScript helpers shared with the template renderer. */

/* JS truthiness of v (NULL = undefined). */
bool expr_truthy(const json_t *v);

/* Writes JS String(v) (v NULL = undefined) into *out and *outlen (a new
 * NUL-terminated weft_malloc'd string the caller owns; their previous
 * values are not read) with these rendering rules for templates:
 * undefined and null render as "", numbers as JS Number#toString, arrays
 * and objects as compact JSON (JSON.stringify). Returns 0, WEFT_ENOMEM or
 * WEFT_ELIMIT (longer than EXPR_MAX_STRING); on failure *out and *outlen
 * are unchanged. */
int expr_to_display_string(const json_t *v, char **out, size_t *outlen);

/* Formats a double as JavaScript's Number.prototype.toString() does
 * (shortest round-trip digits; "NaN", "Infinity", "1e+21", "-0" is "0").
 * buf must hold at least 32 bytes. Returns the length. */
size_t expr_format_number(double d, char *buf, size_t size);

/* A JSON number for d: an integer when d is integral and exactly
 * representable (|d| < 2^53), else a real; NaN and +-Infinity become JSON
 * null (as JSON.stringify does). New reference; NULL on OOM. */
json_t *expr_number_to_json(double d);

#endif
