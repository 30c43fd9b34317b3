/* rundoc.c - a run as JSON documents (see rundoc.h). Moved out of the
 * CLI so that `weft status --json` and the HTTP API build the very same
 * document; everything here is a pure function of Redis replies.
 *
 * Redis values are untrusted: every reply's type is checked before use,
 * strings with an embedded NUL are treated as absent, numbers go through
 * num_parse_i64, and JSON text that does not parse is passed on as a
 * string rather than dropped.
 */
#include "rundoc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "keys.h"
#include "num.h"
#include "strmap.h"

bool rundoc_is_final(const char *status)
{
    return status != NULL &&
           (strcmp(status, "success") == 0 || strcmp(status, "failed") == 0 ||
            strcmp(status, "cancelled") == 0 ||
            strcmp(status, "waiting_for_human") == 0);
}

const redisReply *rundoc_reply_field(const redisReply *r, const char *field)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    size_t flen = strlen(field);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i];
        if (f == NULL || f->type != REDIS_REPLY_STRING)
            continue;
        if ((size_t)f->len == flen && memcmp(f->str, field, flen) == 0)
            return r->element[i + 1];
    }
    return NULL;
}

const char *rundoc_reply_str(const redisReply *r, const char *field)
{
    const redisReply *v = rundoc_reply_field(r, field);
    if (v == NULL || v->type != REDIS_REPLY_STRING ||
        strlen(v->str) != (size_t)v->len)
        return NULL;
    return v->str;
}

static int64_t reply_i64(const redisReply *r, const char *field, int64_t dflt)
{
    const char *s = rundoc_reply_str(r, field);
    int64_t n;
    if (s == NULL || num_parse_i64(s, strlen(s), 0, INT64_MAX, &n) != 0)
        return dflt;
    return n;
}

/* JSON for a string field: the string or null (also null for text that
 * is not UTF-8, which jansson refuses). */
static json_t *jstr(const char *s)
{
    json_t *v = s ? json_string(s) : NULL;
    return v ? v : json_null();
}

/* JSON for a time field. */
static json_t *jtime(int64_t ms)
{
    return ms >= 0 ? json_integer(ms) : json_null();
}

/* Field index of a flat HGETALL reply: name -> value reply. */
struct fields {
    struct strmap map;
    const redisReply *r;
};

static int fields_init(struct fields *f, const redisReply *r)
{
    strmap_init(&f->map);
    f->r = r;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        if (k == NULL || k->type != REDIS_REPLY_STRING)
            continue;
        int rc = strmap_put(&f->map, k->str, k->len, r->element[i + 1], NULL);
        if (rc == WEFT_ENOMEM)
            return rc;
    }
    return 0;
}

static const char *field_str(const struct fields *f, const char *step,
                             const char *suffix)
{
    char name[KEYS_ID_MAX + 32];
    int n = snprintf(name, sizeof(name), "%s%s", step, suffix);
    if (n < 0 || (size_t)n >= sizeof(name))
        return NULL;
    const redisReply *v = strmap_get(&f->map, name, (size_t)n);
    if (v == NULL || v->type != REDIS_REPLY_STRING ||
        strlen(v->str) != (size_t)v->len)
        return NULL;
    return v->str;
}

static int64_t field_i64(const struct fields *f, const char *step,
                         const char *suffix, int64_t dflt)
{
    const char *s = field_str(f, step, suffix);
    int64_t n;
    if (s == NULL || num_parse_i64(s, strlen(s), 0, INT64_MAX, &n) != 0)
        return dflt;
    return n;
}

/* What a step waiting for a person waits for, or null:
 * {"kind": "approval"|"escalation", "message", "approvers", "deadline"}. */
static json_t *wait_doc(const struct fields *f, const char *id)
{
    const char *st = field_str(f, id, "");
    if (st == NULL || strcmp(st, "waiting_for_human") != 0)
        return json_null();
    const char *kind = field_str(f, id, ":wait");
    const char *names = field_str(f, id, ":approvers");
    json_t *approvers = names ? json_loads(names, 0, NULL) : NULL;
    if (!json_is_array(approvers)) {
        json_decref(approvers);
        approvers = json_null();
    }
    return json_pack("{s:s, s:o, s:o, s:o}", "kind", kind ? kind : "escalation",
                     "message", jstr(field_str(f, id, ":message")), "approvers",
                     approvers, "deadline",
                     jtime(field_i64(f, id, ":deadline", -1)));
}

static json_t *step_doc(const struct fields *f, const char *id)
{
    /* `:waiting` names the breaker a pending step waits for; it may be
     * left behind by a step that stopped while waiting. */
    const char *status = field_str(f, id, "");
    const char *waiting = status != NULL && strcmp(status, "pending") == 0
                              ? field_str(f, id, ":waiting")
                              : NULL;
    return json_pack("{s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "status", jstr(status), "attempts",
                     (json_int_t)field_i64(f, id, ":attempt", 0), "queued",
                     jtime(field_i64(f, id, ":queued", -1)), "started",
                     jtime(field_i64(f, id, ":started", -1)), "finished",
                     jtime(field_i64(f, id, ":finished", -1)), "worker",
                     jstr(field_str(f, id, ":worker")), "error",
                     jstr(field_str(f, id, ":error")), "waiting", jstr(waiting),
                     "via", jstr(field_str(f, id, ":via")), "wait",
                     wait_doc(f, id), "by", jstr(field_str(f, id, ":by")));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds every step of the hash that steps does not hold yet, sorted. */
static int add_other_steps(json_t *steps, const struct fields *f)
{
    const redisReply *r = f->r;
    const char **names = weft_calloc(r->elements / 2 + 1, sizeof(char *));
    if (names == NULL)
        return WEFT_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        if (k == NULL || k->type != REDIS_REPLY_STRING ||
            memchr(k->str, ':', k->len) != NULL ||
            !keys_valid_id(k->str, k->len))
            continue;
        if (json_object_get(steps, k->str) == NULL)
            names[n++] = k->str;
    }
    qsort(names, n, sizeof(*names), cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *s = step_doc(f, names[i]);
        if (s == NULL || json_object_set_new(steps, names[i], s) != 0)
            rc = WEFT_ENOMEM;
    }
    weft_free(names);
    return rc;
}

int rundoc_build(const char *run, const redisReply *header,
                 const redisReply *steps, const struct wf *wf, json_t **doc)
{
    if (header == NULL || steps == NULL || header->type != REDIS_REPLY_ARRAY ||
        steps->type != REDIS_REPLY_ARRAY)
        return WEFT_EINVAL;
    struct fields f;
    int rc = fields_init(&f, steps);
    json_t *sd = json_object();
    if (sd == NULL)
        rc = WEFT_ENOMEM;
    for (uint32_t i = 0; wf != NULL && rc == 0 && i < wf->nsteps; i++) {
        const char *id = wf->steps[i].id;
        json_t *s = step_doc(&f, id);
        if (s == NULL || json_object_set_new(sd, id, s) != 0)
            rc = WEFT_ENOMEM;
    }
    if (rc == 0)
        rc = add_other_steps(sd, &f);
    json_t *d = NULL;
    if (rc == 0) {
        d = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                      run, "status", jstr(rundoc_reply_str(header, "status")),
                      "workflow", jstr(rundoc_reply_str(header, "workflow")),
                      "digest", jstr(rundoc_reply_str(header, "digest")),
                      "error", jstr(rundoc_reply_str(header, "error")),
                      "created", jtime(reply_i64(header, "created", -1)),
                      "started", jtime(reply_i64(header, "started", -1)),
                      "finished", jtime(reply_i64(header, "finished", -1)),
                      "steps", sd);
        sd = NULL;
        if (d == NULL)
            rc = WEFT_ENOMEM;
    }
    json_decref(sd);
    strmap_deinit(&f.map);
    if (rc == 0)
        *doc = d;
    return rc;
}

/* The JSON value of text, or text as a string when it does not parse
 * (or is not UTF-8: then null). */
static json_t *json_or_string(const char *text, size_t len)
{
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (v == NULL)
        v = json_stringn(text, len);
    return v ? v : json_null();
}

/* The JSON value of a header field, or dflt (a new reference) when the
 * field is absent. */
static json_t *header_json(const redisReply *h, const char *field, json_t *dflt)
{
    const redisReply *v = rundoc_reply_field(h, field);
    if (v == NULL || v->type != REDIS_REPLY_STRING) {
        return dflt;
    }
    json_decref(dflt);
    return json_or_string(v->str, v->len);
}

json_t *rundoc_context(const redisReply *header, const redisReply *state)
{
    if (header == NULL || header->type != REDIS_REPLY_ARRAY)
        return NULL;
    json_t *c = json_object();
    json_t *st = json_object();
    if (c == NULL || st == NULL)
        goto fail;
    if (json_object_set_new(c, "task",
                            header_json(header, "task", json_object())) ||
        json_object_set_new(c, "variables",
                            header_json(header, "vars", json_object())))
        goto fail;
    /* ctx holds the fields fixed at start: workflowId, repoRoot, ... */
    json_t *ctx = header_json(header, "ctx", json_object());
    if (json_is_object(ctx)) {
        const char *k;
        json_t *v;
        json_object_foreach(ctx, k, v)
        {
            if (json_object_set(c, k, v) != 0) {
                json_decref(ctx);
                goto fail;
            }
        }
    }
    json_decref(ctx);
    for (size_t i = 0; state != NULL && state->type == REDIS_REPLY_ARRAY &&
                       i + 1 < state->elements;
         i += 2) {
        const redisReply *k = state->element[i], *v = state->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            strlen(k->str) != (size_t)k->len)
            continue;
        if (json_object_set_new(st, k->str, json_or_string(v->str, v->len)))
            goto fail;
    }
    if (json_object_set_new(c, "state", st) != 0) {
        st = NULL;
        goto fail;
    }
    st = NULL;
    if (json_object_set_new(c, "artifacts",
                            header_json(header, "artifacts", json_array())) ||
        json_object_set_new(
            c, "personaResults",
            header_json(header, "personaResults", json_object())) ||
        json_object_set_new(c, "gitState",
                            header_json(header, "gitState", json_object())))
        goto fail;
    return c;
fail:
    json_decref(st);
    json_decref(c);
    return NULL;
}

static bool is_core_field(const char *name, size_t len)
{
    static const char *const core[] = {"type", "step", "status", "ts"};
    for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++) {
        if (strlen(core[i]) == len && memcmp(core[i], name, len) == 0)
            return true;
    }
    return false;
}

json_t *rundoc_history_entry(const redisReply *e)
{
    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    const redisReply *fl = e->element[1];
    const char *type = rundoc_reply_str(fl, "type");
    const char *step = rundoc_reply_str(fl, "step");
    const char *status = rundoc_reply_str(fl, "status");
    int64_t ts = reply_i64(fl, "ts", -1);
    json_t *o =
        json_pack("{s:s%, s:o, s:o, s:o, s:o}", "id", e->element[0]->str,
                  (size_t)e->element[0]->len, "type", jstr(type ? type : ""),
                  "step", jstr(step ? step : ""), "status",
                  jstr(status ? status : ""), "ts", jtime(ts));
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i + 1 < fl->elements; i += 2) {
        const redisReply *k = fl->element[i], *v = fl->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            is_core_field(k->str, k->len) || strlen(k->str) != (size_t)k->len)
            continue;
        int64_t n;
        json_t *jv =
            strcmp(k->str, "attempt") == 0 &&
                    num_parse_i64(v->str, v->len, 0, INT64_MAX, &n) == 0
                ? json_integer(n)
                : json_stringn(v->str, v->len);
        if (jv != NULL && json_object_set_new(o, k->str, jv) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* The queue a step's jobs go to (docs/protocol.md); NULL for
 * composites and approvals, which never reach a worker. */
static const char *step_queue(const struct wf_step *s)
{
    if (s->type == WF_STEP_CONDITIONAL || s->type == WF_STEP_PARALLEL ||
        s->type == WF_STEP_APPROVAL)
        return NULL;
    if (s->queue != NULL)
        return s->queue;
    if (s->type == WF_STEP_PERSONA)
        return s->persona;
    return s->type == WF_STEP_GIT ? "git" : "default";
}

static json_t *id_array(const struct wf *wf, const uint32_t *idx, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, json_string(wf->steps[idx[i]].id))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *rundoc_definition(const struct wf *wf)
{
    json_t *steps = json_array();
    json_t *order = json_array();
    json_t *d = NULL;
    if (steps == NULL || order == NULL)
        goto fail;
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        const struct wf_step *s = &wf->steps[i];
        json_t *children = id_array(wf, s->children[0], s->nchildren[0]);
        json_t *more = id_array(wf, s->children[1], s->nchildren[1]);
        if (children == NULL || more == NULL ||
            json_array_extend(children, more) != 0) {
            json_decref(children);
            json_decref(more);
            goto fail;
        }
        json_decref(more);
        json_t *o = json_pack(
            "{s:s, s:s, s:o, s:o, s:o, s:I, s:o, s:o}", "id", s->id, "type",
            wf_step_type_name(s->type), "persona", jstr(s->persona), "queue",
            jstr(step_queue(s)), "parent",
            s->parent >= 0 ? json_string(wf->steps[s->parent].id) : json_null(),
            "depth", (json_int_t)s->depth, "deps",
            id_array(wf, s->deps, s->ndeps), "children", children);
        if (o == NULL || json_array_append_new(steps, o) != 0)
            goto fail;
        if (json_array_append_new(order,
                                  json_string(wf->steps[wf->topo[i]].id)))
            goto fail;
    }
    d = json_pack("{s:s, s:s, s:o, s:o}", "name", wf->name, "digest",
                  wf->digest, "steps", steps, "order", order);
    return d;
fail:
    json_decref(steps);
    json_decref(order);
    return NULL;
}

json_t *rundoc_breaker(const redisReply *hash)
{
    if (hash == NULL || hash->type != REDIS_REPLY_ARRAY || hash->elements == 0)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i + 1 < hash->elements; i += 2) {
        const redisReply *k = hash->element[i], *v = hash->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            strlen(k->str) != (size_t)k->len)
            continue;
        int64_t n;
        json_t *jv =
            num_parse_i64(v->str, v->len, INT64_MIN, INT64_MAX, &n) == 0
                ? json_integer(n)
                : json_stringn(v->str, v->len);
        if (jv == NULL || json_object_set_new(o, k->str, jv) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* Adds name to the sorted, duplicate-free array names. */
static int add_name(json_t *names, const char *name)
{
    size_t i, n = json_array_size(names);
    for (i = 0; i < n; i++) {
        int c = strcmp(json_string_value(json_array_get(names, i)), name);
        if (c == 0)
            return 0;
        if (c > 0)
            break;
    }
    json_t *s = json_string(name);
    if (s == NULL || json_array_insert_new(names, i, s) != 0)
        return WEFT_ENOMEM;
    return 0;
}

json_t *rundoc_breaker_names(const struct wf *wf)
{
    json_t *names = json_array();
    for (uint32_t i = 0; names != NULL && wf != NULL && i < wf->nsteps; i++) {
        const struct wf_step *s = &wf->steps[i];
        char name[KEYS_ID_MAX + 8];
        const char *x[2] = {NULL, NULL};
        if (s->type == WF_STEP_PERSONA) {
            x[0] = s->persona;
            x[1] = s->fallback_persona;
        } else if (s->type == WF_STEP_GIT && wf_git_op_uses_remote(s->git_op)) {
            const json_t *lit =
                s->git_remote ? tvalue_literal(s->git_remote) : NULL;
            if (s->git_remote == NULL || json_is_string(lit)) {
                snprintf(name, sizeof(name), "git:%s",
                         lit ? json_string_value(lit) : "origin");
                x[0] = name;
            }
        }
        for (int j = 0; j < 2; j++) {
            if (x[j] != NULL && keys_valid_breaker(x[j], strlen(x[j])) &&
                add_name(names, x[j]) != 0) {
                json_decref(names);
                return NULL;
            }
        }
    }
    return names;
}
