/* tmpl.h - `{{ ... }}` templates in workflow strings.
 *
 * A template is literal text with embedded `{{ X }}` parts, as the seed
 * writes them: `"Setup {{variables.project_name}}"`,
 * `"{{variables.branch_prefix}}{{task.slug}}"`. X is either
 *  - a path: identifier segments joined by '.', where segments may contain
 *    '-' (step ids such as `steps.plan-evaluation.result.summary`) and a
 *    segment of digits indexes an array; or
 *  - any expression of expr.h (`{{ task.priority ?? 'normal' }}`).
 * Templates are parsed once at load time; rendering is a pure function of
 * the scope.
 *
 * Rendering rules: a template that is exactly one `{{ X }}` (surrounding
 * whitespace inside the braces allowed, nothing outside) renders to the
 * value of X with its type kept, so `timeout: "{{variables.timeout_base}}"`
 * is the number 1800; otherwise the parts are concatenated with
 * expr_to_display_string (undefined/null render as ""). A missing path
 * renders as undefined (not an error): `{{task.nope}}` is "".
 * `{{` without a closing `}}` is a parse error. To write a literal `{{`,
 * use `{{ '{{' }}`.
 */
#ifndef WEFT_COMMON_TMPL_H
#define WEFT_COMMON_TMPL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "error.h"
#include "expr.h"

/* Templates live in YAML scalars; a template longer than this is not a
 * template a person wrote. */
#define TMPL_MAX_SOURCE (64u * 1024)
/* Bounds the number of {{ }} parts in one template. */
#define TMPL_MAX_PARTS 256
/* Largest rendered string. */
#define TMPL_MAX_OUTPUT (1u << 20)

struct tmpl;

/* Parses src[0..len). On success *out owns a new template and 0 is
 * returned. On failure returns WEFT_EINVAL/WEFT_ELIMIT/WEFT_ENOMEM and
 * fills err with the 1-based byte column in src of the problem (for an
 * error inside an expression, the column of that error within src). */
int tmpl_parse(const char *src, size_t len, struct tmpl **out,
               struct weft_error *err);
void tmpl_free(struct tmpl *t);

/* True when src contains no `{{` at all (a plain string: callers may skip
 * building a template for it). */
bool tmpl_is_plain(const char *src, size_t len);

/* True when the template has no {{ }} parts. */
bool tmpl_is_literal(const struct tmpl *t);

/* Renders t against scope (borrowed; see expr_eval). *out gets a new
 * reference: the kept-type value for a single-part template (NULL for
 * undefined), otherwise a JSON string. Errors as for expr_eval, plus
 * WEFT_ELIMIT past TMPL_MAX_OUTPUT. *out unchanged on failure. */
int tmpl_render(const struct tmpl *t, const json_t *scope, json_t **out,
                struct weft_error *err);

/* Renders always to a string (a single-part template's value is turned
 * into its display string). *out is weft_malloc'd, owned by the caller. */
int tmpl_render_string(const struct tmpl *t, const json_t *scope, char **out,
                       struct weft_error *err);

/* Calls fn for each root identifier the template reads (see
 * expr_foreach_root); the column is relative to the template source. */
int tmpl_foreach_root(const struct tmpl *t, expr_root_cb fn, void *ud);

#endif
