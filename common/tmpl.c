/* tmpl.c - `{{ ... }}` templates: literal text and expr.h expressions.
 *
 * A template is split once, at parse time, into parts: literal text and
 * expressions (a plain path such as `steps.plan-evaluation.result` is
 * read leniently, anything else is an expression of expr.h). Rendering
 * evaluates the expressions and concatenates, or hands back the value of
 * a template that is exactly one `{{ X }}`. Sizes are bounded by
 * TMPL_MAX_SOURCE, TMPL_MAX_PARTS and TMPL_MAX_OUTPUT.
 */
#include "tmpl.h"

#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "expr_int.h"

struct tmpl_part {
    size_t off;        /* literal: byte offset in src; expr: of its text */
    size_t len;        /* literal length (0 for an expression part) */
    struct expr *expr; /* NULL for literal text */
};

struct tmpl {
    char *src; /* NUL-terminated copy */
    size_t len;
    struct tmpl_part *parts;
    size_t count;
    bool single; /* exactly one expression part and nothing else */
};

void tmpl_free(struct tmpl *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->count; i++)
        expr_free(t->parts[i].expr);
    weft_free(t->parts);
    weft_free(t->src);
    weft_free(t);
}

bool tmpl_is_plain(const char *src, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (src[i] == '{' && src[i + 1] == '{')
            return false;
    }
    return true;
}

bool tmpl_is_literal(const struct tmpl *t)
{
    for (size_t i = 0; i < t->count; i++) {
        if (t->parts[i].expr != NULL)
            return false;
    }
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* Offset of the `}}` closing the part whose text starts at i, skipping
 * quoted strings (so `{{ '}}' }}` works); len when there is none. */
static size_t find_close(const char *s, size_t len, size_t i)
{
    char quote = 0;
    for (; i < len; i++) {
        char c = s[i];
        if (quote) {
            if (c == '\\')
                i++;
            else if (c == quote)
                quote = 0;
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '}' && i + 1 < len && s[i + 1] == '}') {
            return i;
        }
    }
    return len;
}

static int add_part(struct tmpl *t, size_t off, size_t len, struct expr *e)
{
    struct tmpl_part *grown =
        weft_realloc(t->parts, (t->count + 1) * sizeof(*t->parts));
    if (grown == NULL)
        return WEFT_ENOMEM;
    t->parts = grown;
    t->parts[t->count].off = off;
    t->parts[t->count].len = len;
    t->parts[t->count].expr = e;
    t->count++;
    return 0;
}

/* Parses the text between `{{` and `}}` (src[start..end)) into *out;
 * *off is where the expression's columns start in the template. */
static int parse_inner(const char *src, size_t start, size_t end,
                       struct expr **out, size_t *off, struct weft_error *err)
{
    size_t a = start, b = end;
    int rc;
    while (a < b && is_space(src[a]))
        a++;
    while (b > a && is_space(src[b - 1]))
        b--;
    if (a == b)
        return weft_error_set(err, WEFT_EINVAL, 1, (int)start - 1,
                              "empty '{{ }}'");
    *off = a;
    rc = expr_parse_path(src + a, b - a, out, err);
    if (rc != EXPR_NOT_A_PATH)
        return rc;
    *off = start;
    return expr_parse(src + start, end - start, out, err);
}

int tmpl_parse(const char *src, size_t len, struct tmpl **out,
               struct weft_error *err)
{
    struct tmpl *t = NULL;
    size_t bad, lit = 0, i = 0, exprs = 0;
    int rc;
    if (len > TMPL_MAX_SOURCE)
        return weft_error_set(err, WEFT_ELIMIT, 1, TMPL_MAX_SOURCE + 1,
                              "template longer than %u bytes", TMPL_MAX_SOURCE);
    if (!expr_utf8_valid(src, len, &bad))
        return weft_error_set(err, WEFT_EINVAL, 1, (int)bad + 1,
                              "invalid UTF-8");
    t = weft_calloc(1, sizeof(*t));
    if (t == NULL || (t->src = weft_strndup(src, len)) == NULL)
        goto nomem;
    t->len = len;
    while (i + 1 < len) {
        if (src[i] != '{' || src[i + 1] != '{') {
            i++;
            continue;
        }
        if (exprs == TMPL_MAX_PARTS) {
            rc = weft_error_set(err, WEFT_ELIMIT, 1, (int)i + 1,
                                "more than %d '{{ }}' parts in a template",
                                TMPL_MAX_PARTS);
            goto fail;
        }
        size_t close = find_close(src, len, i + 2);
        if (close == len) {
            rc = weft_error_set(err, WEFT_EINVAL, 1, (int)i + 1,
                                "'{{' without a closing '}}'");
            goto fail;
        }
        if (i > lit && add_part(t, lit, i - lit, NULL) != 0)
            goto nomem;
        struct expr *e = NULL;
        size_t off = 0;
        rc = parse_inner(t->src, i + 2, close, &e, &off, err);
        if (rc != 0) {
            if (err != NULL && err->column > 0)
                err->column += (int)off;
            goto fail;
        }
        if (add_part(t, off, 0, e) != 0) {
            expr_free(e);
            goto nomem;
        }
        exprs++;
        i = lit = close + 2;
    }
    if (len > lit && add_part(t, lit, len - lit, NULL) != 0)
        goto nomem;
    t->single = t->count == 1 && t->parts[0].expr != NULL;
    *out = t;
    return 0;
nomem:
    rc = weft_error_set(err, WEFT_ENOMEM, 1, 0, "out of memory");
fail:
    tmpl_free(t);
    return rc;
}

/* Moves an expression's error column to the template's coordinates. */
static int shift_error(const struct tmpl_part *part, int rc,
                       struct weft_error *err)
{
    if (err != NULL && err->column > 0)
        err->column += (int)part->off;
    return rc;
}

/* Renders every part as display text into b. */
static int render_text(const struct tmpl *t, const json_t *scope, struct buf *b,
                       struct weft_error *err)
{
    for (size_t i = 0; i < t->count; i++) {
        const struct tmpl_part *part = &t->parts[i];
        int rc;
        if (part->expr == NULL) {
            rc = buf_append(b, t->src + part->off, part->len);
            if (rc == WEFT_ELIMIT)
                weft_error_set(err, rc, 1, (int)part->off + 1,
                               "rendered text longer than %zu bytes", b->max);
            else if (rc != 0)
                weft_error_set(err, rc, 1, 0, "out of memory");
        } else {
            rc = expr_eval_display(part->expr, scope, b, err);
            if (rc != 0)
                shift_error(part, rc, err);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int tmpl_render(const struct tmpl *t, const json_t *scope, json_t **out,
                struct weft_error *err)
{
    struct buf b;
    int rc;
    if (t->single) {
        rc = expr_eval(t->parts[0].expr, scope, out, err);
        return rc != 0 ? shift_error(&t->parts[0], rc, err) : 0;
    }
    buf_init(&b, TMPL_MAX_OUTPUT);
    rc = render_text(t, scope, &b, err);
    if (rc == 0) {
        json_t *s = json_stringn_nocheck(b.data ? b.data : "", b.len);
        if (s == NULL)
            rc = weft_error_set(err, WEFT_ENOMEM, 1, 0, "out of memory");
        else
            *out = s;
    }
    buf_deinit(&b);
    return rc;
}

int tmpl_render_string(const struct tmpl *t, const json_t *scope, char **out,
                       struct weft_error *err)
{
    struct buf b;
    char *s;
    int rc;
    buf_init(&b, TMPL_MAX_OUTPUT);
    rc = render_text(t, scope, &b, err);
    /* An empty append makes sure the data is allocated and terminated
     * before buf_steal hands it over. */
    if (rc == 0 && buf_append(&b, "", 0) != 0)
        rc = weft_error_set(err, WEFT_ENOMEM, 1, 0, "out of memory");
    if (rc == 0) {
        s = buf_steal(&b, NULL);
        if (s == NULL)
            rc = weft_error_set(err, WEFT_ENOMEM, 1, 0, "out of memory");
        else
            *out = s;
    }
    buf_deinit(&b);
    return rc;
}

struct root_shift {
    expr_root_cb fn;
    void *ud;
    size_t off;
};

static int shifted_root(void *ud, const char *name, size_t len, int column)
{
    struct root_shift *rs = ud;
    return rs->fn(rs->ud, name, len, column + (int)rs->off);
}

int tmpl_foreach_root(const struct tmpl *t, expr_root_cb fn, void *ud)
{
    for (size_t i = 0; i < t->count; i++) {
        struct root_shift rs = {fn, ud, t->parts[i].off};
        int rc;
        if (t->parts[i].expr == NULL)
            continue;
        rc = expr_foreach_root(t->parts[i].expr, shifted_root, &rs);
        if (rc != 0)
            return rc;
    }
    return 0;
}
