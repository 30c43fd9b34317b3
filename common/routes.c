/* routes.c - loading and applying the coordinator's routing rules. */
#include "routes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "expr.h"
#include "keys.h"
#include "ytree.h"

struct rule {
    struct expr *when;
    char *workflow;
    int line;
};

struct routes {
    struct rule *rules;
    size_t n;
    char *def;
};

void routes_free(struct routes *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        expr_free(r->rules[i].when);
        weft_free(r->rules[i].workflow);
    }
    weft_free(r->rules);
    weft_free(r->def);
    weft_free(r);
}

size_t routes_count(const struct routes *r)
{
    return r->n;
}

const char *routes_default(const struct routes *r)
{
    return r->def;
}

/* A workflow name: a plain file name (no directories, not hidden). */
static char *workflow_name(const struct ytree_node *n, struct diag *d,
                           const char *what)
{
    if (!ytree_is_string(n) || n->len == 0) {
        diag_error(d, n->line, n->column, "'%s' must be a file name, got %s",
                   what, ytree_describe(n));
        return NULL;
    }
    if (!keys_valid_id(n->u.text, n->len) || n->u.text[0] == '.') {
        diag_error(d, n->line, n->column,
                   "'%s' must be a plain file name in the workflows "
                   "directory: '%s'",
                   what, n->u.text);
        return NULL;
    }
    return weft_strndup(n->u.text, n->len);
}

struct root_check {
    struct diag *d;
    const struct ytree *t;
    const struct ytree_node *n;
};

static int check_root(void *ud, const char *name, size_t len, int column)
{
    struct root_check *rc = ud;
    if ((len == 4 && memcmp(name, "task", 4) == 0) ||
        (len == 4 && memcmp(name, "type", 4) == 0))
        return 0;
    int line, col;
    ytree_value_position(rc->t, rc->n, (size_t)(column > 0 ? column - 1 : 0),
                         &line, &col);
    diag_error(rc->d, line, col,
               "unknown name '%.*s' in 'when': a route sees 'task' and "
               "'type'",
               (int)len, name);
    return 0;
}

static void load_rule(struct routes *r, const struct ytree *t,
                      const struct ytree_node *n, struct diag *d)
{
    if (n->kind != YTREE_MAPPING) {
        diag_error(d, n->line, n->column,
                   "a route must be a mapping with 'when' and 'workflow', "
                   "got %s",
                   ytree_describe(n));
        return;
    }
    for (uint32_t i = 0; i + 1 < n->len; i += 2) {
        const struct ytree_node *k = n->u.items[i];
        if (strcmp(k->u.text, "when") != 0 &&
            strcmp(k->u.text, "workflow") != 0)
            diag_error(d, k->line, k->column,
                       "unknown key '%s' in a route (expected 'when' or "
                       "'workflow')",
                       k->u.text);
    }
    const struct ytree_node *when = ytree_map_get(n, "when");
    const struct ytree_node *wf = ytree_map_get(n, "workflow");
    if (when == NULL || wf == NULL) {
        diag_error(d, n->line, n->column, "a route needs '%s'",
                   when == NULL ? "when" : "workflow");
        return;
    }
    struct rule rule = {NULL, NULL, n->line};
    if (!ytree_is_string(when)) {
        diag_error(d, when->line, when->column,
                   "'when' must be an expression, got %s",
                   ytree_describe(when));
        return;
    }
    struct weft_error err;
    weft_error_clear(&err);
    if (expr_parse(when->u.text, when->len, &rule.when, &err) != 0) {
        int line, col;
        ytree_value_position(t, when,
                             (size_t)(err.column > 0 ? err.column - 1 : 0),
                             &line, &col);
        diag_error(d, line, col, "bad expression in 'when': %s", err.msg);
        return;
    }
    struct root_check rc = {d, t, when};
    expr_foreach_root(rule.when, check_root, &rc);
    rule.workflow = workflow_name(wf, d, "workflow");
    if (rule.workflow == NULL || r->n >= ROUTES_MAX_RULES) {
        if (r->n >= ROUTES_MAX_RULES)
            diag_error(d, n->line, n->column, "more than %d routes",
                       ROUTES_MAX_RULES);
        expr_free(rule.when);
        weft_free(rule.workflow);
        return;
    }
    struct rule *nr = weft_realloc(r->rules, (r->n + 1) * sizeof(*nr));
    if (nr == NULL) {
        d->oom = 1;
        expr_free(rule.when);
        weft_free(rule.workflow);
        return;
    }
    r->rules = nr;
    r->rules[r->n++] = rule;
}

int routes_load_buffer(const char *yaml, size_t len, struct routes **out,
                       struct diag *d)
{
    struct ytree *t = NULL;
    int rc = ytree_parse(yaml, len, d, &t);
    if (rc)
        return rc;
    struct routes *r = weft_calloc(1, sizeof(*r));
    const struct ytree_node *root = ytree_root(t);
    if (r == NULL) {
        ytree_free(t);
        return WEFT_ENOMEM;
    }
    if (root == NULL || root->kind != YTREE_MAPPING) {
        diag_error(d, root ? root->line : 1, root ? root->column : 1,
                   "a routes file is a mapping with 'routes' and "
                   "'default'");
    } else {
        for (uint32_t i = 0; i + 1 < root->len; i += 2) {
            const struct ytree_node *k = root->u.items[i];
            if (strcmp(k->u.text, "routes") != 0 &&
                strcmp(k->u.text, "default") != 0)
                diag_error(d, k->line, k->column,
                           "unknown key '%s' (expected 'routes' or "
                           "'default')",
                           k->u.text);
        }
        const struct ytree_node *list = ytree_map_get(root, "routes");
        if (list && list->kind != YTREE_SEQUENCE)
            diag_error(d, list->line, list->column,
                       "'routes' must be a list, got %s", ytree_describe(list));
        else
            for (uint32_t i = 0; list && i < list->len; i++)
                load_rule(r, t, list->u.items[i], d);
        const struct ytree_node *def = ytree_map_get(root, "default");
        if (def && def->type != YTREE_NULL)
            r->def = workflow_name(def, d, "default");
    }
    ytree_free(t);
    if (d->errors > 0 || d->oom) {
        routes_free(r);
        return d->oom ? WEFT_ENOMEM : WEFT_EINVAL;
    }
    *out = r;
    return 0;
}

int routes_load_file(const char *path, struct routes **out, struct diag *d)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        diag_error(d, 0, 0, "cannot open: %s", strerror(errno));
        return WEFT_EIO;
    }
    /* A routes file is a page of rules: 1 MiB is far beyond it. */
    enum { ROUTES_MAX_FILE = 1 << 20 };
    char *buf = weft_malloc(ROUTES_MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, ROUTES_MAX_FILE + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    int rc;
    if (buf == NULL)
        rc = WEFT_ENOMEM;
    else if (err) {
        diag_error(d, 0, 0, "cannot read: %s", strerror(errno));
        rc = WEFT_EIO;
    } else if (n > ROUTES_MAX_FILE) {
        diag_error(d, 0, 0, "file is larger than %d bytes", ROUTES_MAX_FILE);
        rc = WEFT_ELIMIT;
    } else
        rc = routes_load_buffer(buf, n, out, d);
    weft_free(buf);
    return rc;
}

int routes_select(const struct routes *r, json_t *task, const char *type,
                  const char **workflow, struct weft_error *err)
{
    json_t *scope = json_pack("{s:O, s:s?}", "task", task, "type", type);
    if (scope == NULL)
        return WEFT_ENOMEM;
    if (type == NULL) {
        json_t *tt = json_object_get(task, "type");
        if (tt)
            json_object_set(scope, "type", tt);
    }
    int rc = WEFT_ENOENT;
    for (size_t i = 0; i < r->n; i++) {
        bool truth = false;
        struct weft_error e;
        weft_error_clear(&e);
        int erc = expr_eval_bool(r->rules[i].when, scope, &truth, &e);
        if (erc) {
            rc = weft_error_set(err, erc, r->rules[i].line, 0,
                                "route %zu (line %d): %s", i + 1,
                                r->rules[i].line, e.msg);
            goto done;
        }
        if (truth) {
            *workflow = r->rules[i].workflow;
            rc = 0;
            goto done;
        }
    }
    if (r->def) {
        *workflow = r->def;
        rc = 0;
    } else {
        weft_error_set(err, WEFT_ENOENT, 0, 0,
                       "no route matches the task and there is no default");
    }
done:
    json_decref(scope);
    return rc;
}
