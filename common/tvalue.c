/* tvalue.c - JSON values whose strings may be templates.
 *
 * A tvalue keeps the value as written (a jansson tree) and, beside it, a
 * tree of struct tnode that exists only along the paths that lead to a
 * template: a subtree without templates is rendered by copying its JSON.
 * Templates are parsed once, at load; rendering is a pure function of the
 * scope. Rendering follows JSON.stringify for undefined: an object member
 * whose template renders to undefined is left out, an array element
 * becomes null, and a whole value that is one undefined template renders
 * to NULL (undefined) for the caller to judge.
 */
#include "wfdef.h"

#include <string.h>

#include "alloc.h"
#include "tmpl.h"
#include "wfdef_int.h"

struct tnode {
    const json_t *lit;  /* this value as written (borrowed from tv) */
    struct tmpl *t;     /* a string with templates, else NULL */
    struct tnode *kids; /* containers holding templates: one per element
                           or member, in order; NULL otherwise */
    uint32_t nkids;
    const char *key; /* as an object member: its key (borrowed from
                        the parent's JSON object) */
    size_t keylen;
};

struct tvalue {
    json_t *value;
    struct tnode root;
};

struct tbuild {
    const struct tvalue_hooks *h;
    bool failed; /* a template did not parse */
};

static void tnode_clear(struct tnode *tn)
{
    if (tn->t != NULL)
        tmpl_free(tn->t);
    for (uint32_t i = 0; tn->kids != NULL && i < tn->nkids; i++)
        tnode_clear(&tn->kids[i]);
    weft_free(tn->kids);
    memset(tn, 0, sizeof(*tn));
}

static int build_scalar(struct tbuild *b, const struct ytree_node *n,
                        json_t **jout, struct tnode *tn)
{
    json_t *j = ytree_to_json(n);
    if (j == NULL)
        return WEFT_ENOMEM;
    if (n->type == YTREE_STRING && !tmpl_is_plain(n->u.text, n->len)) {
        struct weft_error err;
        weft_error_clear(&err);
        int rc = tmpl_parse(n->u.text, n->len, &tn->t, &err);
        if (rc == WEFT_ENOMEM) {
            json_decref(j);
            return rc;
        }
        if (rc != 0) {
            tn->t = NULL;
            b->failed = true;
            if (b->h && b->h->on_error)
                b->h->on_error(b->h->ud, n, &err);
        } else if (b->h && b->h->on_template) {
            b->h->on_template(b->h->ud, n, tn->t);
        }
    }
    tn->lit = j;
    *jout = j;
    return 0;
}

/* Builds n's JSON into *jout (new reference) and its tnode into *tn. */
static int build(struct tbuild *b, const struct ytree_node *n, json_t **jout,
                 struct tnode *tn)
{
    memset(tn, 0, sizeof(*tn));
    if (n->kind == YTREE_SCALAR)
        return build_scalar(b, n, jout, tn);
    bool map = n->kind == YTREE_MAPPING;
    json_t *j = map ? json_object() : json_array();
    struct tnode *kids = NULL;
    bool templated = false;
    int rc = 0;
    if (j == NULL)
        return WEFT_ENOMEM;
    if (n->len > 0) {
        kids = weft_calloc(n->len, sizeof(*kids));
        if (kids == NULL) {
            rc = WEFT_ENOMEM;
            goto cleanup;
        }
    }
    for (uint32_t i = 0; i < n->len; i++) {
        const struct ytree_node *v =
            map ? n->u.items[2 * i + 1] : n->u.items[i];
        json_t *cj = NULL;
        rc = build(b, v, &cj, &kids[i]);
        if (rc)
            goto cleanup;
        if (kids[i].t != NULL || kids[i].kids != NULL)
            templated = true;
        if (map) {
            const struct ytree_node *k = n->u.items[2 * i];
            rc = json_object_setn_new(j, k->u.text, k->len, cj);
        } else {
            rc = json_array_append_new(j, cj);
        }
        if (rc != 0) {
            rc = WEFT_ENOMEM;
            goto cleanup;
        }
    }
    if (map) {
        /* Members iterate in insertion order: borrow the stored keys. */
        uint32_t i = 0;
        for (void *it = json_object_iter(j); it != NULL && i < n->len;
             it = json_object_iter_next(j, it), i++) {
            kids[i].key = json_object_iter_key(it);
            kids[i].keylen = json_object_iter_key_len(it);
        }
    }
    tn->lit = j;
    if (templated) {
        tn->kids = kids;
        tn->nkids = n->len;
        kids = NULL;
    }
    *jout = j;
    j = NULL;
cleanup:
    for (uint32_t i = 0; kids != NULL && i < n->len; i++)
        tnode_clear(&kids[i]);
    weft_free(kids);
    json_decref(j);
    return rc;
}

int tvalue_compile(const struct ytree_node *n, const struct tvalue_hooks *h,
                   struct tvalue **out)
{
    struct tbuild b = {.h = h, .failed = false};
    struct tvalue *tv = weft_calloc(1, sizeof(*tv));
    if (tv == NULL)
        return WEFT_ENOMEM;
    int rc = build(&b, n, &tv->value, &tv->root);
    if (rc == 0 && b.failed)
        rc = WEFT_EINVAL;
    if (rc) {
        tvalue_free(tv);
        return rc;
    }
    *out = tv;
    return 0;
}

void tvalue_free(struct tvalue *tv)
{
    if (tv == NULL)
        return;
    tnode_clear(&tv->root);
    json_decref(tv->value);
    weft_free(tv);
}

const json_t *tvalue_json(const struct tvalue *tv)
{
    return tv->value;
}

const json_t *tvalue_literal(const struct tvalue *tv)
{
    if (tv->root.t != NULL || tv->root.kids != NULL)
        return NULL;
    return tv->value;
}

static int render(const struct tnode *tn, const json_t *scope, json_t **out,
                  struct weft_error *err)
{
    if (tn->t != NULL)
        return tmpl_render(tn->t, scope, out, err);
    if (tn->kids == NULL) {
        /* A copy, so callers may change what they get. */
        json_t *c = json_deep_copy(tn->lit);
        if (c == NULL)
            return weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
        *out = c;
        return 0;
    }
    bool map = json_is_object(tn->lit);
    json_t *c = map ? json_object() : json_array();
    int rc = 0;
    if (c == NULL)
        return weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
    for (uint32_t i = 0; i < tn->nkids; i++) {
        json_t *v = NULL;
        rc = render(&tn->kids[i], scope, &v, err);
        if (rc)
            goto cleanup;
        if (map) {
            if (v == NULL)
                continue; /* undefined members are left out */
            if (json_object_setn_new(c, tn->kids[i].key, tn->kids[i].keylen,
                                     v) != 0)
                rc = WEFT_ENOMEM;
        } else {
            if (v == NULL)
                v = json_null();
            if (json_array_append_new(c, v) != 0)
                rc = WEFT_ENOMEM;
        }
        if (rc) {
            weft_error_set(err, rc, 0, 0, "out of memory");
            goto cleanup;
        }
    }
    *out = c;
    c = NULL;
cleanup:
    json_decref(c);
    return rc;
}

int tvalue_render(const struct tvalue *tv, const json_t *scope, json_t **out,
                  struct weft_error *err)
{
    json_t *v = NULL;
    int rc = render(&tv->root, scope, &v, err);
    if (rc == 0)
        *out = v;
    return rc;
}
