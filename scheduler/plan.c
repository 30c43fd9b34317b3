/* plan.c - transition plans: the definition's graph, as the scripts need
 * it, for one step at a time. */
#include "plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "alloc.h"
#include "jsondump.h"
#include "buf.h"
#include "dlq.h"
#include "tmpl.h"

void plan_init(struct plan *p)
{
    memset(p, 0, sizeof(*p));
}

void plan_deinit(struct plan *p)
{
    strmap_deinit(&p->keyidx);
    for (uint32_t i = 0; i < p->nkeys; i++)
        weft_free(p->keys[i]);
    weft_free(p->keys);
    for (uint32_t i = 0; i < p->nbodies; i++)
        weft_free(p->bodies[i]);
    weft_free(p->bodies);
    weft_free(p->blens);
    json_decref(p->doc);
    plan_init(p);
}

size_t plan_size(const struct plan *p)
{
    return p->doc ? json_array_size(p->doc) : 0;
}

json_t *plan_get(const struct plan *p, size_t i)
{
    return p->doc ? json_array_get(p->doc, i) : NULL;
}

/* Index (1-based, as Lua sees KEYS) of key in the batch's KEYS, adding
 * it when new. 0 on OOM. A batch of a few hundred transitions holds
 * thousands of keys: they are found by hash. */
static uint32_t plan_key(struct plan *p, const char *key)
{
    size_t len = strlen(key);
    uintptr_t at = (uintptr_t)strmap_get(&p->keyidx, key, len);
    if (at != 0)
        return (uint32_t)at;
    if (p->nkeys == p->capkeys) {
        uint32_t cap = p->capkeys ? p->capkeys * 2 : 16;
        char **n = weft_realloc(p->keys, cap * sizeof(*n));
        if (n == NULL)
            return 0;
        p->keys = n;
        p->capkeys = cap;
    }
    char *dup = weft_strndup(key, len);
    if (dup == NULL ||
        strmap_put(&p->keyidx, dup, len, (void *)(uintptr_t)(p->nkeys + 1),
                   NULL) != 0) {
        weft_free(dup);
        return 0;
    }
    p->keys[p->nkeys] = dup;
    return ++p->nkeys;
}

/* Adds a body; returns its ARGV index (1-based; bodies start at 3). */
static uint32_t plan_body(struct plan *p, char *body, size_t len)
{
    char **nb = weft_realloc(p->bodies, (p->nbodies + 1) * sizeof(*nb));
    if (nb == NULL)
        return 0;
    p->bodies = nb;
    size_t *nl = weft_realloc(p->blens, (p->nbodies + 1) * sizeof(*nl));
    if (nl == NULL)
        return 0;
    p->blens = nl;
    p->bodies[p->nbodies] = body;
    p->blens[p->nbodies] = len;
    return 3 + p->nbodies++;
}

int plan_argv(const struct plan *p, const char *now_us, json_t *only,
              int *nkeys, int *argc, const char ***argv, size_t **lens,
              char **docstr)
{
    int total = (int)p->nkeys + 2 + (int)p->nbodies;
    const char **av = weft_calloc((size_t)total, sizeof(*av));
    size_t *al = weft_calloc((size_t)total, sizeof(*al));
    json_t *batch =
        json_pack("{s:I, s:I, s:s, s:o}", "hist_max", (json_int_t)p->hist_max,
                  "ttl", (json_int_t)p->ttl_s, "chan", p->chan, "plans",
                  only ? json_pack("[O]", only) : json_incref(p->doc));
    char *doc = batch ? jsondump_str(batch, NULL) : NULL;
    json_decref(batch);
    if (av == NULL || al == NULL || doc == NULL) {
        weft_free(av);
        weft_free(al);
        weft_free(doc);
        return WEFT_ENOMEM;
    }
    int n = 0;
    for (uint32_t i = 0; i < p->nkeys; i++) {
        av[n] = p->keys[i];
        al[n++] = strlen(p->keys[i]);
    }
    av[n] = now_us;
    al[n++] = strlen(now_us);
    av[n] = doc;
    al[n++] = strlen(doc);
    for (uint32_t i = 0; i < p->nbodies; i++) {
        av[n] = p->bodies[i];
        al[n++] = p->blens[i];
    }
    *nkeys = (int)p->nkeys;
    *argc = n;
    *argv = av;
    *lens = al;
    *docstr = doc;
    return 0;
}

static bool tv_literal(const struct tvalue *tv)
{
    return tv == NULL || tvalue_literal(tv) != NULL;
}

bool plan_step_is_static(const struct wf_step *s)
{
    if (s->condition != NULL || s->type == WF_STEP_CONDITIONAL ||
        s->type == WF_STEP_PARALLEL || s->type == WF_STEP_APPROVAL)
        return false;
    return tv_literal(s->name) && tv_literal(s->timeout) &&
           tv_literal(s->params) && tv_literal(s->git_branch) &&
           tv_literal(s->git_message) && tv_literal(s->git_remote) &&
           tv_literal(s->git_base);
}

void plan_state_stem(const char *id, char *out)
{
    size_t i = 0;
    for (; id[i] && i < WF_MAX_ID_LEN; i++)
        out[i] = id[i] == '-' ? '_' : id[i];
    out[i] = '\0';
}

static int set_new(json_t *o, const char *k, json_t *v)
{
    if (v == NULL)
        return WEFT_ENOMEM;
    return json_object_set_new(o, k, v) == 0 ? 0 : WEFT_ENOMEM;
}

/* Sets o[k] = list (stealing it), or drops list when it is empty: the
 * scripts read an absent list as empty, and decoding one builds a table. */
static int set_list(json_t *o, const char *k, json_t *list)
{
    if (json_array_size(list) == 0) {
        json_decref(list);
        return 0;
    }
    return set_new(o, k, list);
}

static char *dumps(json_t *v)
{
    return jsondump_str(v, NULL);
}

/* A JSON string holding v's compact JSON text; NULL on OOM. */
static json_t *json_text(json_t *v)
{
    char *text = dumps(v);
    json_t *s = text ? json_string(text) : NULL;
    weft_free(text);
    return s;
}

static json_t *object_or_empty(json_t *v)
{
    return json_is_object(v) ? json_incref(v) : json_object();
}

json_t *plan_scope(const struct runinfo *ri, json_t *state, json_t *extra)
{
    json_t *scope = json_object();
    json_t *context = json_object();
    json_t *st = object_or_empty(state);
    json_t *steps = json_object();
    if (!scope || !context || !st || !steps)
        goto fail;
    /* steps.<id>: {status, result} from the state the steps left. */
    const struct wf *wf = ri->wf;
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        char stem[WF_MAX_ID_LEN + 1], key[WF_MAX_ID_LEN + 16];
        plan_state_stem(wf->steps[i].id, stem);
        snprintf(key, sizeof(key), "%s_status", stem);
        json_t *status = json_object_get(st, key);
        if (status == NULL)
            continue;
        snprintf(key, sizeof(key), "%s_result", stem);
        json_t *entry = json_object();
        if (entry == NULL ||
            json_object_set_new(steps, wf->steps[i].id, entry) != 0)
            goto fail;
        json_object_set(entry, "status", status);
        json_t *result = json_object_get(st, key);
        if (result)
            json_object_set(entry, "result", result);
    }
    json_t *ctx = ri->ctx;
    const char *fixed[] = {"workflowId", "repoRoot", "branchName", "baseBranch",
                           "milestone"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(*fixed); i++) {
        json_t *v = json_object_get(ctx, fixed[i]);
        if (v)
            json_object_set(context, fixed[i], v);
    }
    json_object_set(context, "task", ri->task);
    json_object_set(context, "state", st);
    const char *dyn[] = {"artifacts", "personaResults", "gitState"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(extra, dyn[i]);
        if (v == NULL)
            v = i == 0 ? json_array() : json_object();
        else
            json_incref(v);
        if (set_new(context, dyn[i], v))
            goto fail;
    }
    if (set_new(context, "dashboardState", json_object()))
        goto fail;
    json_object_set(scope, "task", ri->task);
    /* milestone is declared even when the task has none (JS: a declared
     * variable that is undefined), so `milestone?.name` works. */
    json_t *milestone = json_object_get(ctx, "milestone");
    json_object_set(scope, "milestone", milestone ? milestone : json_null());
    if (milestone == NULL)
        json_object_set_new(context, "milestone", json_null());
    json_object_set(scope, "variables", ri->vars);
    json_object_set(scope, "workflowId", json_object_get(ctx, "workflowId"));
    json_object_set_new(scope, "state", st);
    json_object_set_new(scope, "steps", steps);
    json_object_set_new(scope, "context", context);
    return scope;
fail:
    json_decref(scope);
    json_decref(context);
    json_decref(st);
    json_decref(steps);
    return NULL;
}

int plan_render_vars(const struct wf *wf, const char *run, json_t *task,
                     json_t *ctx, json_t **out, struct weft_error *err)
{
    json_t *vars = json_object();
    json_t *scope = json_object();
    int rc = WEFT_ENOMEM;
    if (vars == NULL || scope == NULL)
        goto done;
    json_object_set(scope, "task", task);
    json_object_set(scope, "context", ctx);
    json_object_set_new(scope, "workflowId", json_string(run));
    json_object_set(scope, "variables", vars);
    for (uint32_t i = 0; i < wf->nvariables; i++) {
        json_t *v = NULL;
        rc = tvalue_render(wf->variable_values[i], scope, &v, err);
        if (rc) {
            char msg[WEFT_ERROR_MSG_MAX];
            snprintf(msg, sizeof(msg), "%s", err ? err->msg : "");
            weft_error_set(err, rc, 0, 0, "variable '%s': %s",
                           wf->variable_names[i], msg);
            goto done;
        }
        if (json_object_set_new(vars, wf->variable_names[i],
                                v ? v : json_null()) != 0) {
            rc = WEFT_ENOMEM;
            goto done;
        }
    }
    *out = json_incref(vars);
    rc = 0;
done:
    json_decref(vars);
    json_decref(scope);
    return rc;
}

/* Renders an optional templated field; *out NULL when absent/undefined. */
static int render_tv(const struct tvalue *tv, const json_t *scope,
                     const char *field, json_t **out, struct weft_error *err)
{
    *out = NULL;
    if (tv == NULL)
        return 0;
    int rc = tvalue_render(tv, scope, out, err);
    if (rc) {
        char msg[WEFT_ERROR_MSG_MAX];
        snprintf(msg, sizeof(msg), "%s", err ? err->msg : "");
        return weft_error_set(err, rc, 0, 0, "%s: %s", field, msg);
    }
    return 0;
}

static char *dup_string_or(json_t *v, const char *fallback)
{
    if (json_is_string(v))
        return weft_strdup(json_string_value(v));
    return fallback ? weft_strdup(fallback) : NULL;
}

/* 64 random bits for trace and span ids and jitter: splitmix64, seeded
 * once from the system's generator. None needs to be unpredictable, and
 * RAND_bytes per job cost 3% of the scheduler's time (per run, 4%). */
static uint64_t random_u64(void)
{
    static uint64_t state;
    static int seeded;
    if (!seeded) {
        if (RAND_bytes((unsigned char *)&state, sizeof(state)) != 1)
            state = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        seeded = 1;
    }
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void plan_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t r = 0;
    for (size_t i = 0; i < nbytes; i++, r >>= 8) {
        if (i % 8 == 0)
            r = random_u64();
        out[2 * i] = hex[(r >> 4) & 15];
        out[2 * i + 1] = hex[r & 15];
    }
    out[2 * nbytes] = '\0';
}

static void new_span(const char *trace, char *out, size_t size)
{
    char digits[17];
    plan_random_hex(digits, 8);
    snprintf(out, size, "00-%s-%s-01", trace ? trace : "", digits);
}

bool plan_breaker_of(const struct plan_env *env, const struct wf_step *s,
                     bool fallback, struct plan_breaker *out)
{
    memset(out, 0, sizeof(*out));
    const struct breaker_cfg *base = NULL, *own = &s->breaker;
    const char *name = NULL, *prefix = "";
    if (s->type == WF_STEP_PERSONA) {
        name = fallback ? s->fallback_persona : s->persona;
        const struct persona *pr = personas_find(env->personas, name);
        base = pr ? &pr->breaker : NULL;
        /* The step's own settings are about its own persona. */
        if (fallback)
            own = NULL;
    } else if (s->type == WF_STEP_GIT && !fallback &&
               wf_git_op_uses_remote(s->git_op)) {
        const json_t *lit =
            s->git_remote ? tvalue_literal(s->git_remote) : NULL;
        if (s->git_remote != NULL && !json_is_string(lit))
            return false; /* templated: no name to count failures under */
        name = lit ? json_string_value(lit) : "origin";
        base = personas_remote_breaker(env->personas, name);
        prefix = "git:";
    }
    if (name == NULL || !breaker_resolve(own, base, &out->cfg))
        return false;
    int n = snprintf(out->name, sizeof(out->name), "%s%s", prefix, name);
    if (n < 0 || (size_t)n >= sizeof(out->name) ||
        !keys_valid_breaker(out->name, (size_t)n)) {
        memset(out, 0, sizeof(*out));
        return false;
    }
    return true;
}

/* The script's reference to breaker b: its keys (added to the batch),
 * name and settings {k, wk, name, n, win, cool}. NULL on OOM. */
static json_t *breaker_ref(const struct plan_env *env, struct plan *p,
                           const struct plan_breaker *b)
{
    char key[KEYS_MAX], wkey[KEYS_MAX];
    if (keys_breaker(env->keys, b->name, key) == 0 ||
        keys_breaker_waiters(env->keys, b->name, wkey) == 0)
        return NULL;
    uint32_t k = plan_key(p, key);
    uint32_t wk = k ? plan_key(p, wkey) : 0;
    if (wk == 0)
        return NULL;
    return json_pack("{s:i, s:i, s:s, s:i, s:i, s:i}", "k", (json_int_t)k, "wk",
                     (json_int_t)wk, "name", b->name, "n",
                     (json_int_t)b->cfg.failures, "win",
                     (json_int_t)b->cfg.window_ms, "cool",
                     (json_int_t)b->cfg.cooldown_ms);
}

/* The queue of s's fallback persona: the registry's, else its name. */
static const char *fallback_queue(const struct plan_env *env,
                                  const struct wf_step *s)
{
    const struct persona *pr =
        personas_find(env->personas, s->fallback_persona);
    return pr ? pr->queue : s->fallback_persona;
}

/* The context slice every job carries: the run's fixed context and its
 * task. New reference; NULL on OOM. */
static json_t *job_context(const struct runinfo *ri)
{
    return json_pack("{s:O?, s:O?, s:O?, s:O?, s:O}", "workflowId",
                     json_object_get(ri->ctx, "workflowId"), "repoRoot",
                     json_object_get(ri->ctx, "repoRoot"), "branchName",
                     json_object_get(ri->ctx, "branchName"), "baseBranch",
                     json_object_get(ri->ctx, "baseBranch"), "task", ri->task);
}

/* Encodes and signs job, and adds it to p: its queue to the keys, its
 * body to the bodies. *ref receives the script's job reference {q, a,
 * sig, type, persona}. */
static int job_ref(const struct plan_env *env, const struct wire_job *job,
                   struct plan *p, json_t **ref, struct weft_error *err)
{
    char *body = NULL;
    size_t blen = 0;
    char sig[HMAC_HEX_LEN + 1], qkey[KEYS_MAX];
    int rc = wire_job_encode(job, &body, &blen);
    if (rc != 0)
        return weft_error_set(err, rc, 0, 0, "cannot encode job: %s",
                              weft_strerror(rc));
    hmac_sign_hex(env->hmac, body, blen, sig);
    if (keys_queue(env->keys, job->queue, qkey) == 0) {
        weft_free(body);
        return weft_error_set(err, WEFT_EINVAL, 0, 0, "invalid queue name '%s'",
                              job->queue);
    }
    uint32_t q = plan_key(p, qkey);
    uint32_t a = q ? plan_body(p, body, blen) : 0;
    if (a == 0) {
        weft_free(body);
        return WEFT_ENOMEM;
    }
    *ref = json_pack("{s:i, s:i, s:s, s:s, s:s}", "q", (json_int_t)q, "a",
                     (json_int_t)a, "sig", sig, "type", job->type, "persona",
                     job->persona ? job->persona : "");
    return *ref ? 0 : WEFT_ENOMEM;
}

/* Renders, encodes and signs one job of s (for its fallback persona when
 * fallback); returns the script's job reference {q, a, sig, type,
 * persona} in *ref. */
static int render_one(const struct plan_env *env, const struct runinfo *ri,
                      const struct wf_step *s, uint32_t attempt,
                      const json_t *scope, struct plan *p, bool fallback,
                      json_t **ref, struct weft_error *err)
{
    struct wire_job job;
    memset(&job, 0, sizeof(job));
    json_t *name = NULL, *timeout = NULL, *branch = NULL, *message = NULL,
           *remote = NULL, *base = NULL;
    int rc;
    if ((rc = render_tv(s->name, scope, "name", &name, err)) ||
        (rc = render_tv(s->timeout, scope, "timeout", &timeout, err)) ||
        (rc = render_tv(s->params, scope, "params", &job.params, err)) ||
        (rc = render_tv(s->git_branch, scope, "branch", &branch, err)) ||
        (rc = render_tv(s->git_message, scope, "message", &message, err)) ||
        (rc = render_tv(s->git_remote, scope, "remote", &remote, err)) ||
        (rc = render_tv(s->git_base, scope, "base", &base, err)))
        goto done;
    if (job.params && !json_is_object(job.params)) {
        rc = weft_error_set(err, WEFT_ETYPE, 0, 0,
                            "params must render to an object");
        goto done;
    }
    if (timeout) {
        double t = json_number_value(timeout);
        if (!json_is_number(timeout) || !(t > 0) || t > WF_MAX_TIMEOUT_S) {
            rc = weft_error_set(err, WEFT_ETYPE, 0, 0,
                                "timeout must render to a number of "
                                "seconds in (0, %d]",
                                WF_MAX_TIMEOUT_S);
            goto done;
        }
        job.timeout_ms = (uint64_t)llround(t * 1000.0);
    }
    char trace[64];
    new_span(ri->trace, trace, sizeof(trace));
    rc = WEFT_ENOMEM;
    job.run = ri->run;
    job.step = (char *)s->id;
    job.type = (char *)wf_step_type_name(s->type);
    job.persona = (char *)(fallback ? s->fallback_persona : s->persona);
    job.queue = (char *)(fallback ? fallback_queue(env, s)
                                  : personas_step_queue(env->personas, s));
    job.attempt = attempt;
    job.queue_timeout_ms = s->queue_timeout_ms;
    job.trace = trace;
    job.name = dup_string_or(name, s->id);
    if (job.name == NULL)
        goto done;
    job.context = job_context(ri);
    if (job.context == NULL)
        goto done;
    if (s->type == WF_STEP_GIT) {
        job.git = json_pack("{s:s, s:O?, s:O?, s:O?, s:O?}", "operation",
                            wf_git_op_name(s->git_op), "branch", branch,
                            "message", message, "remote", remote, "base", base);
        if (job.git == NULL)
            goto done;
    }
    rc = job_ref(env, &job, p, ref, err);
done:
    weft_free(job.name);
    json_decref(job.params);
    json_decref(job.context);
    json_decref(job.git);
    json_decref(name);
    json_decref(timeout);
    json_decref(branch);
    json_decref(message);
    json_decref(remote);
    json_decref(base);
    return rc;
}

/* Adds what the scripts need beside a job to dispatch it (lib.lua,
 * dispatch_job): its breaker `brk`, its queue timeout `qt` (ms), and for
 * the step's own job the policy `on_open` and the fallback job `fb`. */
static int guard_job(const struct plan_env *env, const struct wf_step *s,
                     struct plan *p, bool fallback, json_t *ref)
{
    struct plan_breaker b;
    if (plan_breaker_of(env, s, fallback, &b) &&
        set_new(ref, "brk", breaker_ref(env, p, &b)))
        return WEFT_ENOMEM;
    if (s->queue_timeout_ms > 0 &&
        set_new(ref, "qt", json_integer(s->queue_timeout_ms)))
        return WEFT_ENOMEM;
    if (fallback)
        return set_new(ref, "via", json_true());
    if (json_object_get(ref, "brk") != NULL &&
        set_new(ref, "on_open", json_string(wf_on_open_name(s->on_open))))
        return WEFT_ENOMEM;
    return 0;
}

/* Renders the job of s with its guards, and the job for its fallback
 * persona when the step has one and a breaker to divert it; *ref as
 * render_one's, plus guard_job's fields. */
static int render_job(const struct plan_env *env, const struct runinfo *ri,
                      const struct wf_step *s, uint32_t attempt,
                      const json_t *scope, struct plan *p, json_t **ref,
                      struct weft_error *err)
{
    json_t *job = NULL, *fb = NULL;
    int rc = render_one(env, ri, s, attempt, scope, p, false, &job, err);
    if (rc == 0)
        rc = guard_job(env, s, p, false, job);
    if (rc == 0 && s->fallback_persona != NULL &&
        s->on_open == WF_ON_OPEN_FALLBACK &&
        json_object_get(job, "brk") != NULL) {
        rc = render_one(env, ri, s, attempt, scope, p, true, &fb, err);
        if (rc == 0 && (rc = guard_job(env, s, p, true, fb)) != 0)
            json_decref(fb);
        if (rc == 0)
            rc = set_new(job, "fb", fb); /* takes fb, also on failure */
    }
    if (rc) {
        json_decref(job);
        return rc;
    }
    *ref = job;
    return 0;
}

/* Groups of at most this many children carry their dependents' jobs in
 * every child's finish (see ancestors). */
#define PLAN_GROUP_PRERENDER_MAX 8

/* {id, job?} for a step that may become ready; the job is rendered now
 * when the step needs no evaluation (and render is set). */
static int ready_item(const struct plan_env *env, const struct runinfo *ri,
                      const struct wf_step *s, bool render, struct plan *p,
                      json_t *list, struct weft_error *err)
{
    json_t *item = json_pack("{s:s}", "id", s->id);
    if (item == NULL || json_array_append_new(list, item) != 0)
        return WEFT_ENOMEM;
    if (!render || !plan_step_is_static(s))
        return 0;
    json_t *job = NULL;
    int rc = render_job(env, ri, s, 1, NULL, p, &job, err);
    if (rc == WEFT_ETYPE || rc == WEFT_EINVAL || rc == WEFT_ENOENT) {
        /* Leave it to the ready path, which reports the error on the step. */
        return 0;
    }
    if (rc)
        return rc;
    return set_new(item, "job", job);
}

static int items_of(const struct plan_env *env, const struct runinfo *ri,
                    const uint32_t *idx, uint32_t n, bool render,
                    struct plan *p, json_t **out, struct weft_error *err)
{
    json_t *list = json_array();
    if (list == NULL)
        return WEFT_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const struct wf_step *s = &ri->wf->steps[idx[i]];
        int rc = ready_item(env, ri, s, render, p, list, err);
        if (rc) {
            json_decref(list);
            return rc;
        }
    }
    *out = list;
    return 0;
}

/* The part of a list's opening (steps idx[0..n): a group's children, or
 * the run's top level) that starts at position `from` of the list: the
 * items of at most `size` of its steps without dependencies (its roots),
 * and in *next the position of the first root left for the next part (0:
 * none). A part costs what its own steps cost, wherever it starts. */
static int roots_part(const struct plan_env *env, const struct runinfo *ri,
                      const uint32_t *idx, uint32_t n, uint32_t from,
                      uint32_t size, struct plan *p, json_t **out,
                      uint32_t *next, struct weft_error *err)
{
    json_t *list = json_array();
    if (list == NULL)
        return WEFT_ENOMEM;
    uint32_t taken = 0;
    *next = 0;
    for (uint32_t i = from; i < n; i++) {
        const struct wf_step *s = &ri->wf->steps[idx[i]];
        if (s->ndeps > 0)
            continue;
        if (taken++ == size) {
            *next = i;
            break;
        }
        int rc = ready_item(env, ri, s, true, p, list, err);
        if (rc) {
            json_decref(list);
            return rc;
        }
    }
    *out = list;
    return 0;
}

/* End (exclusive) of the pre-order range holding s's descendants. */
static uint32_t subtree_end(const struct wf *wf, uint32_t i)
{
    uint32_t d = wf->steps[i].depth, j = i + 1;
    while (j < wf->nsteps && wf->steps[j].depth > d)
        j++;
    return j;
}

/* Appends the ids of the steps in list `branch` of g and their
 * descendants (branch < 0: both lists). */
static int add_descendants(const struct wf *wf, const struct wf_step *g,
                           int branch, json_t *out)
{
    for (int b = 0; b < 2; b++) {
        if (branch >= 0 && b != branch)
            continue;
        for (uint32_t k = 0; k < g->nchildren[b]; k++) {
            uint32_t c = g->children[b][k], end = subtree_end(wf, c);
            for (uint32_t j = c; j < end; j++)
                if (json_array_append_new(out, json_string(wf->steps[j].id)) !=
                    0)
                    return WEFT_ENOMEM;
        }
    }
    return 0;
}

static const char *group_kind(const struct wf_step *g)
{
    if (g->type == WF_STEP_CONDITIONAL)
        return "cond";
    return g->wait_for == WF_WAIT_ANY ? "any" : "all";
}

/* The enclosing groups of s, innermost first, with what the script needs
 * to complete each: its dependents, and its descendants when this outcome
 * may stop them (an any-group on success, other groups on failure). */
static int ancestors(const struct plan_env *env, const struct runinfo *ri,
                     const struct wf_step *s, bool success, bool failing,
                     struct plan *p, json_t **out, struct weft_error *err)
{
    const struct wf *wf = ri->wf;
    json_t *list = json_array();
    if (list == NULL)
        return WEFT_ENOMEM;
    int rc = 0;
    for (int32_t g_i = s->parent; g_i >= 0; g_i = wf->steps[g_i].parent) {
        const struct wf_step *g = &wf->steps[g_i];
        const char *kind = group_kind(g);
        char stem[WF_MAX_ID_LEN + 1];
        plan_state_stem(g->id, stem);
        json_t *deps = NULL;
        /* Any child's finish may complete the group, so each carries the
         * group's dependents; their jobs are rendered in advance only for
         * a small group, or a fan-out of n steps would render the join's
         * job n times to use it once. A big group's dependents go by the
         * ready mark, rendered once. */
        bool render =
            g->nchildren[0] + g->nchildren[1] <= PLAN_GROUP_PRERENDER_MAX;
        if ((rc = items_of(env, ri, g->dependents, g->ndependents, render, p,
                           &deps, err)))
            break;
        json_t *a = json_pack("{s:s, s:s, s:o, s:s, s:s}", "id", g->id, "kind",
                              kind, "deps", deps, "skey", stem, "on_failure",
                              wf_on_failure_name(g->on_failure));
        if (a == NULL || json_array_append_new(list, a) != 0) {
            rc = WEFT_ENOMEM;
            break;
        }
        bool any = strcmp(kind, "any") == 0;
        if ((any && success) || (!any && failing)) {
            json_t *desc = json_array();
            if (desc == NULL || set_new(a, "desc", desc) ||
                add_descendants(wf, g, -1, desc)) {
                rc = WEFT_ENOMEM;
                break;
            }
        }
    }
    if (rc) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

/* Sets t's deps (s's dependents) and anc (its enclosing groups, see
 * ancestors): what propagate (lib.lua) needs when s ends. Empty lists
 * are left out. */
static int edges_into(const struct plan_env *env, const struct runinfo *ri,
                      const struct wf_step *s, bool success, bool failing,
                      struct plan *p, json_t *t, struct weft_error *err)
{
    json_t *deps = NULL, *anc = NULL;
    int rc;
    if ((rc = items_of(env, ri, s->dependents, s->ndependents, true, p, &deps,
                       err)) ||
        (rc = set_list(t, "deps", deps)))
        return rc;
    if ((rc = ancestors(env, ri, s, success, failing, p, &anc, err)) ||
        (rc = set_list(t, "anc", anc)))
        return rc;
    return 0;
}

/* Appends a transition for run ri to the batch: its run keys (the
 * shared keys first when the batch is new) and the fields every script
 * reads. Returns the transition (borrowed from p), or NULL on OOM. */
static json_t *begin(const struct plan_env *env, const struct runinfo *ri,
                     struct plan *p)
{
    static const enum keys_global shared[] = {
        KEYS_EVENTS, KEYS_RUNS, KEYS_DELAYED, KEYS_DEADLINES, KEYS_STATS};
    static const enum keys_run run_keys[] = {KEYS_RUN, KEYS_RUN_STEPS,
                                             KEYS_RUN_DEPS, KEYS_RUN_STATE,
                                             KEYS_RUN_HISTORY};
    char key[KEYS_MAX];
    if (p->nkeys == 0) {
        for (size_t i = 0; i < 5; i++) {
            keys_global(env->keys, shared[i], key);
            if (plan_key(p, key) != i + 1)
                return NULL;
        }
    }
    if (p->doc == NULL) {
        if ((p->doc = json_array()) == NULL)
            return NULL;
        p->hist_max = env->hist_max;
        p->ttl_s = env->ttl_s;
        keys_global(env->keys, KEYS_CANCEL, p->chan);
    }
    /* A run's five keys are added together, so the first one's index
     * locates them all; a run already in the batch reuses them. */
    keys_run(env->keys, run_keys[0], ri->run, key);
    uint32_t k = plan_key(p, key);
    for (size_t i = 1; k && i < 5; i++) {
        keys_run(env->keys, run_keys[i], ri->run, key);
        if (plan_key(p, key) != k + i)
            return NULL;
    }
    json_t *t =
        k ? json_pack("{s:s, s:i}", "run", ri->run, "k", (json_int_t)k) : NULL;
    if (t == NULL || json_array_append_new(p->doc, t) != 0)
        return NULL;
    /* Any transition may end the run; end_run reads this (lib.lua). */
    if (ri->wf != NULL && ri->wf->rollback &&
        json_object_set_new(t, "rollback", json_true()) != 0)
        return NULL;
    return t;
}

/* Ends a builder: on failure the transition it appended is removed. */
static int end(struct plan *p, size_t mark, int rc)
{
    if (rc && p->doc)
        while (json_array_size(p->doc) > mark)
            json_array_remove(p->doc, json_array_size(p->doc) - 1);
    return rc;
}

static char *dumps(json_t *v);

static int create_run_into(const struct plan_env *env, const struct runinfo *ri,
                           const char *entry, struct plan *p, json_t *t,
                           struct weft_error *err)
{
    const struct wf *wf = ri->wf;
    int rc = WEFT_ENOMEM;
    char *task = dumps(ri->task), *vars = dumps(ri->vars),
         *ctx = dumps(ri->ctx);
    json_t *steps = json_array(), *deps = json_array(), *ready = NULL;
    if (!task || !vars || !ctx || !steps || !deps)
        goto done;
    char tkey[KEYS_MAX];
    keys_global(env->keys, KEYS_TASKS, tkey);
    uint32_t tk = plan_key(p, tkey);
    if (tk == 0 || set_new(t, "tk", json_integer(tk)))
        goto done;
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        const struct wf_step *s = &wf->steps[i];
        if (json_array_append_new(steps, json_string(s->id)) != 0)
            goto done;
        if (s->ndeps > 0 &&
            json_array_append_new(
                deps, json_pack("[s, i]", s->id, (json_int_t)s->ndeps)) != 0)
            goto done;
    }
    uint32_t next = 0;
    if ((rc = roots_part(env, ri, wf->top, wf->ntop, 0, PLAN_ACTIVATE_PART, p,
                         &ready, &next, err)))
        goto done;
    rc = WEFT_ENOMEM;
    json_t *header =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "workflow",
                  wf->name, "digest", ri->digest, "task", task, "vars", vars,
                  "ctx", ctx, "trace", ri->trace ? ri->trace : "", "artifacts",
                  "[]", "personaResults", "{}", "gitState", "{}");
    if (header == NULL || set_new(t, "header", header) ||
        json_object_set(t, "steps", steps) ||
        json_object_set(t, "deps", deps) ||
        set_new(t, "top", json_integer(wf->ntop)) ||
        (wf->timeout_ms > 0 &&
         set_new(t, "timeout", json_integer((json_int_t)wf->timeout_ms))) ||
        set_new(t, "ready", ready) ||
        (next && set_new(t, "next", json_integer(next))) ||
        set_new(t, "entry", json_string(entry ? entry : "")))
        goto done;
    ready = NULL;
    rc = 0;
done:
    weft_free(task);
    weft_free(vars);
    weft_free(ctx);
    json_decref(steps);
    json_decref(deps);
    json_decref(ready);
    return rc;
}

int plan_create_run(const struct plan_env *env, const struct runinfo *ri,
                    const char *entry, struct plan *p, struct weft_error *err)
{
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(p, mark0,
               t ? create_run_into(env, ri, entry, p, t, err) : WEFT_ENOMEM);
}

static int dispatch_into(const struct plan_env *env, const struct runinfo *ri,
                         const struct wf_step *s, uint32_t attempt,
                         const char *mark, const json_t *scope, struct plan *p,
                         json_t *t, struct weft_error *err)
{
    json_t *job = NULL;
    int rc = render_job(env, ri, s, attempt, scope, p, &job, err);
    if (rc)
        return rc;
    if (set_new(t, "job", job) || set_new(t, "step", json_string(s->id)) ||
        set_new(t, "attempt", json_integer(attempt)) ||
        set_new(t, "mark", json_string(mark ? mark : "")))
        return WEFT_ENOMEM;
    return 0;
}

int plan_dispatch(const struct plan_env *env, const struct runinfo *ri,
                  const struct wf_step *s, uint32_t attempt, const char *mark,
                  const json_t *scope, struct plan *p, struct weft_error *err)
{
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(p, mark0,
               t ? dispatch_into(env, ri, s, attempt, mark, scope, p, t, err)
                 : WEFT_ENOMEM);
}

int64_t plan_backoff_ms(const struct wf_retry *r, uint32_t next, double rnd)
{
    double d = r->delay_ms;
    if (r->backoff == WF_BACKOFF_EXPONENTIAL) {
        /* next is 2 for the first retry: delay, 2*delay, 4*delay, ... */
        for (uint32_t i = 2; i < next && d < r->max_delay_ms; i++)
            d *= 2;
        if (d > r->max_delay_ms)
            d = r->max_delay_ms;
    }
    if (r->jitter > 0)
        d += d * r->jitter * (2.0 * rnd - 1.0);
    return d < 0 ? 0 : (int64_t)d;
}

static double random_unit(void)
{
    return (double)(random_u64() >> 11) / 9007199254740992.0; /* 2^53 */
}

/* How an attempt's outcome counts on its breaker: "fail" for an error or
 * a timeout (the service did not answer), "ok" when it answered (a
 * success or a `fatal` refusal), "none" otherwise (cancelled, or a job
 * the worker rejected: nothing was asked of the service). */
static const char *breaker_count(enum wire_status st)
{
    switch (st) {
    case WIRE_ERROR:
    case WIRE_TIMEOUT:
        return "fail";
    case WIRE_SUCCESS:
    case WIRE_FATAL:
        return "ok";
    default:
        return "none";
    }
}

/* The breakers an ended attempt is counted on (finish.lua): `brk` for the
 * step's own, `fbrk` for its fallback persona's (the attempt may have
 * been diverted), `bres` how it counts, and `fb` when the step has a
 * fallback persona (whose results are recorded under that persona). */
static int finish_breakers(const struct plan_env *env, const struct wf_step *s,
                           enum wire_status st, struct plan *p, json_t *d)
{
    struct plan_breaker b;
    bool any = false;
    if (plan_breaker_of(env, s, false, &b)) {
        if (set_new(d, "brk", breaker_ref(env, p, &b)))
            return WEFT_ENOMEM;
        any = true;
    }
    if (s->fallback_persona != NULL) {
        if (set_new(d, "fb", json_true()))
            return WEFT_ENOMEM;
        if (plan_breaker_of(env, s, true, &b)) {
            if (set_new(d, "fbrk", breaker_ref(env, p, &b)))
                return WEFT_ENOMEM;
            any = true;
        }
    }
    if (any && set_new(d, "bres", json_string(breaker_count(st))))
        return WEFT_ENOMEM;
    return 0;
}

static int finish_into(const struct plan_env *env, const struct runinfo *ri,
                       const struct wf_step *s, uint32_t attempt,
                       const char *mark, const struct wire_result *res,
                       const char *eval_error, struct plan *p, json_t *t,
                       struct weft_error *err)
{
    const char *outcome;
    bool retryable = false;
    const char *message = eval_error;
    if (res == NULL) {
        outcome = eval_error ? "failed" : "skipped";
    } else {
        message = res->message;
        switch (res->status) {
        case WIRE_SUCCESS:
            outcome = "success";
            break;
        case WIRE_ERROR:
        case WIRE_TIMEOUT:
            outcome = "failed";
            retryable = true;
            break;
        default:
            outcome = "failed";
            break;
        }
    }
    bool failing = strcmp(outcome, "failed") == 0;
    bool retry = failing && retryable && attempt <= s->retry.max;
    char stem[WF_MAX_ID_LEN + 1];
    plan_state_stem(s->id, stem);
    json_t *d = t;
    /* Fields at their defaults are left out (finish.lua): the script
     * decodes every one, at about a quarter of a microsecond each. */
    if (set_new(d, "step", json_string(s->id)) ||
        set_new(d, "attempt", json_integer(attempt)) ||
        set_new(d, "mark", json_string(mark ? mark : "")) ||
        set_new(d, "outcome", json_string(outcome)) ||
        (strcmp(stem, s->id) != 0 && set_new(d, "skey", json_string(stem))) ||
        (s->on_failure != WF_ON_FAILURE_FAIL &&
         set_new(d, "on_failure",
                 json_string(wf_on_failure_name(s->on_failure)))))
        return WEFT_ENOMEM;
    if (res == NULL && set_new(d, "expect", json_string("pending")))
        return WEFT_ENOMEM;
    /* Only steps that can have a deadline need the deadline cleared. */
    if (res &&
        (s->timeout || s->type == WF_STEP_PERSONA || s->type == WF_STEP_GIT) &&
        set_new(d, "deadline", json_true()))
        return WEFT_ENOMEM;
    if (message && set_new(d, "message", json_string(message)))
        return WEFT_ENOMEM;
    if (res && finish_breakers(env, s, res->status, p, d))
        return WEFT_ENOMEM;
    if (s->queue_timeout_ms > 0 && res && set_new(d, "qt", json_true()))
        return WEFT_ENOMEM;
    /* A git step's result says what it changed, retried or not (a
     * rollback needs both; lib.lua add_git_change). */
    if (res && s->type == WF_STEP_GIT && json_is_object(res->result) &&
        json_object_set(d, "git", res->result))
        return WEFT_ENOMEM;
    if (retry) {
        int64_t due = env->now_ms +
                      plan_backoff_ms(&s->retry, attempt + 1, random_unit());
        return set_new(d, "retry_at", json_integer(due));
    }
    if (failing) {
        char why[WEFT_ERROR_MSG_MAX + WF_MAX_ID_LEN + 32];
        snprintf(why, sizeof(why), "step '%s' failed%s%s", s->id,
                 message ? ": " : "", message ? message : "");
        if (set_new(d, "run_error", json_string(why)))
            return WEFT_ENOMEM;
    }
    if (res) {
        /* Values land in the state hash as the JSON text written here,
         * not re-encoded by the script (cjson reorders keys and escapes
         * '/'), so what a reader gets back is what the step returned. */
        if ((res->verdict &&
             set_new(d, "verdict", json_string(res->verdict))) ||
            (res->result &&
             set_new(d, "result_json", json_text(res->result))) ||
            (json_is_array(res->artifacts) &&
             json_object_set(d, "artifacts", res->artifacts)))
            return WEFT_ENOMEM;
        if (json_is_object(res->state)) {
            json_t *st = json_object();
            const char *k;
            json_t *v;
            if (st == NULL || set_new(d, "state_json", st))
                return WEFT_ENOMEM;
            json_object_foreach(res->state, k, v)
            {
                if (set_new(st, k, json_text(v)))
                    return WEFT_ENOMEM;
            }
        }
        if (s->persona && set_new(d, "persona", json_string(s->persona)))
            return WEFT_ENOMEM;
    }
    if (res == NULL && !failing &&
        (s->type == WF_STEP_CONDITIONAL || s->type == WF_STEP_PARALLEL)) {
        json_t *skip = json_array();
        if (skip == NULL || set_new(d, "skip", skip) ||
            add_descendants(ri->wf, s, -1, skip))
            return WEFT_ENOMEM;
    }
    bool stops = failing && s->on_failure == WF_ON_FAILURE_FAIL;
    return edges_into(env, ri, s, strcmp(outcome, "success") == 0, stops, p, d,
                      err);
}

int plan_finish(const struct plan_env *env, const struct runinfo *ri,
                const struct wf_step *s, uint32_t attempt, const char *mark,
                const struct wire_result *res, const char *eval_error,
                struct plan *p, struct weft_error *err)
{
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(
        p, mark0,
        t ? finish_into(env, ri, s, attempt, mark, res, eval_error, p, t, err)
          : WEFT_ENOMEM);
}

int plan_queue_timeout(const struct plan_env *env, const struct runinfo *ri,
                       const struct wf_step *s, uint32_t attempt,
                       const char *mark, struct plan *p, struct weft_error *err)
{
    char msg[128];
    snprintf(msg, sizeof(msg),
             "no worker started the job within its queue_timeout (%.3g s)",
             s->queue_timeout_ms / 1000.0);
    struct wire_result res;
    memset(&res, 0, sizeof(res));
    res.status = WIRE_TIMEOUT;
    res.message = msg;
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    int rc = t ? finish_into(env, ri, s, attempt, mark, &res, NULL, p, t, err)
               : WEFT_ENOMEM;
    /* Only a job still waiting on its queue times out so: one a worker
     * started meanwhile runs on. No service was asked, so its breaker
     * counts nothing (a lost probe is released). */
    if (rc == 0 && (set_new(t, "expect", json_string("queued")) ||
                    (json_object_get(t, "bres") != NULL &&
                     set_new(t, "bres", json_string("none")))))
        rc = WEFT_ENOMEM;
    return end(p, mark0, rc);
}

static int activate_into(const struct plan_env *env, const struct runinfo *ri,
                         const struct wf_step *s, uint32_t attempt,
                         const char *mark, int branch, struct plan *p,
                         json_t *t, struct weft_error *err)
{
    json_t *d = t;
    char stem[WF_MAX_ID_LEN + 1];
    plan_state_stem(s->id, stem);
    const char *bname =
        s->type == WF_STEP_CONDITIONAL ? (branch == 0 ? "then" : "else") : "";
    json_t *kids = NULL, *skip = json_array();
    if (skip == NULL || set_new(d, "skip", skip))
        return WEFT_ENOMEM;
    if (s->type == WF_STEP_CONDITIONAL &&
        add_descendants(ri->wf, s, 1 - branch, skip))
        return WEFT_ENOMEM;
    int rc;
    uint32_t next = 0;
    rc = roots_part(env, ri, s->children[branch], s->nchildren[branch], 0,
                    s->type == WF_STEP_PARALLEL ? PLAN_ACTIVATE_PART
                                                : UINT32_MAX,
                    p, &kids, &next, err);
    if (rc || set_new(d, "kids", kids) ||
        (next && set_new(d, "next", json_integer(next))))
        return rc ? rc : WEFT_ENOMEM;
    if (set_new(d, "step", json_string(s->id)) ||
        set_new(d, "attempt", json_integer(attempt)) ||
        set_new(d, "mark", json_string(mark ? mark : "")) ||
        set_new(d, "nkids", json_integer(s->nchildren[branch])) ||
        set_new(d, "branch", json_string(bname)) ||
        set_new(d, "skey", json_string(stem)))
        return WEFT_ENOMEM;
    if (s->nchildren[branch] > 0)
        return 0;
    /* An empty list: the group completes now and releases its edges. */
    return edges_into(env, ri, s, true, false, p, d, err);
}

int plan_activate(const struct plan_env *env, const struct runinfo *ri,
                  const struct wf_step *s, uint32_t attempt, const char *mark,
                  int branch, struct plan *p, struct weft_error *err)
{
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(p, mark0,
               t ? activate_into(env, ri, s, attempt, mark, branch, p, t, err)
                 : WEFT_ENOMEM);
}

static int activate_more_into(const struct plan_env *env,
                              const struct runinfo *ri, const struct wf_step *s,
                              uint32_t attempt, const char *mark, uint32_t from,
                              struct plan *p, json_t *t, struct weft_error *err)
{
    json_t *kids = NULL;
    uint32_t next = 0;
    const uint32_t *idx = s ? s->children[0] : ri->wf->top;
    uint32_t n = s ? s->nchildren[0] : ri->wf->ntop;
    int rc = roots_part(env, ri, idx, n, from, PLAN_ACTIVATE_PART, p, &kids,
                        &next, err);
    if (rc || set_new(t, "kids", kids))
        return rc ? rc : WEFT_ENOMEM;
    if (set_new(t, "step", json_string(s ? s->id : PLAN_TOP_STEP)) ||
        set_new(t, "attempt", json_integer(attempt)) ||
        set_new(t, "mark", json_string(mark ? mark : "")) ||
        set_new(t, "from", json_integer(from)) ||
        (next && set_new(t, "next", json_integer(next))))
        return WEFT_ENOMEM;
    return 0;
}

int plan_activate_more(const struct plan_env *env, const struct runinfo *ri,
                       const struct wf_step *s, uint32_t attempt,
                       const char *mark, uint32_t from, struct plan *p,
                       struct weft_error *err)
{
    if ((s && s->type != WF_STEP_PARALLEL) || from == 0)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "only a parallel group or a run's top level "
                              "opens in parts");
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(
        p, mark0,
        t ? activate_more_into(env, ri, s, attempt, mark, from, p, t, err)
          : WEFT_ENOMEM);
}

static int cancel_into(json_t *t, const char *mark, const char *reason)
{
    if (set_new(t, "mark", json_string(mark ? mark : "")) ||
        set_new(t, "reason", json_string(reason ? reason : "cancelled")))
        return WEFT_ENOMEM;
    return 0;
}

int plan_cancel(const struct plan_env *env, const struct runinfo *ri,
                const char *mark, const char *reason, struct plan *p)
{
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(p, mark0, t ? cancel_into(t, mark, reason) : WEFT_ENOMEM);
}

int plan_expire(const struct plan_env *env, const struct runinfo *ri,
                const char *mark, struct plan *p)
{
    char why[96];
    snprintf(why, sizeof(why), "the run timed out (timeout: %.3g s)",
             ri->wf ? ri->wf->timeout_ms / 1000.0 : 0.0);
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    int rc = t ? cancel_into(t, mark, why) : WEFT_ENOMEM;
    if (rc == 0 && set_new(t, "status", json_string("failed")))
        rc = WEFT_ENOMEM;
    return end(p, mark0, rc);
}

static int reject_into(const struct plan_env *env, json_t *t, struct plan *p,
                       const char *entry, const char *task,
                       const char *workflow, const char *error)
{
    char tkey[KEYS_MAX], dkey[KEYS_MAX];
    keys_global(env->keys, KEYS_TASKS, tkey);
    keys_global(env->keys, KEYS_DLQ, dkey);
    uint32_t tk = plan_key(p, tkey), dk = plan_key(p, dkey);
    if (tk == 0 || dk == 0 || set_new(t, "tk", json_integer(tk)) ||
        set_new(t, "dk", json_integer(dk)) ||
        set_new(t, "by", json_string(env->who ? env->who : "")) ||
        set_new(t, "dlq_max", json_integer(DLQ_FIELDS_MAX)) ||
        set_new(t, "entry", json_string(entry ? entry : "")) ||
        set_new(t, "error", json_string(error)) ||
        (task && set_new(t, "task", json_string(task))) ||
        (workflow && set_new(t, "workflow", json_string(workflow))))
        return WEFT_ENOMEM;
    return 0;
}

int plan_reject(const struct plan_env *env, const struct runinfo *ri,
                const char *entry, const char *task, const char *workflow,
                const char *error, struct plan *p)
{
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(p, mark0,
               t ? reject_into(env, t, p, entry, task, workflow, error)
                 : WEFT_ENOMEM);
}

/* ---- people in the loop: approval, resolve, retry ---------------------- */

static bool is_group(const struct wf_step *s)
{
    return s->type == WF_STEP_CONDITIONAL || s->type == WF_STEP_PARALLEL;
}

/* True when text is at most max bytes of UTF-8 (what jansson accepts as a
 * string). NULL is fine. */
static bool text_ok(const char *text, size_t max)
{
    if (text == NULL)
        return true;
    if (strlen(text) > max)
        return false;
    json_t *v = json_string(text);
    json_decref(v);
    return v != NULL;
}

static int park_into(const struct plan_env *env, const struct runinfo *ri,
                     const struct wf_step *s, uint32_t attempt,
                     const char *mark, const json_t *scope, json_t *t,
                     struct weft_error *err)
{
    json_t *timeout = NULL, *message = NULL, *approvers = NULL;
    int rc;
    (void)ri;
    if ((rc = render_tv(s->timeout, scope, "timeout", &timeout, err)) ||
        (rc =
             render_tv(s->approval_message, scope, "message", &message, err)) ||
        (rc = render_tv(s->approvers, scope, "approvers", &approvers, err)))
        goto done;
    int64_t deadline = 0;
    if (timeout) {
        double secs = json_number_value(timeout);
        if (!json_is_number(timeout) || !(secs > 0) ||
            secs > WF_MAX_TIMEOUT_S) {
            rc = weft_error_set(err, WEFT_ETYPE, 0, 0,
                                "timeout must render to a number of "
                                "seconds in (0, %d]",
                                WF_MAX_TIMEOUT_S);
            goto done;
        }
        deadline = env->now_ms + llround(secs * 1000.0);
    }
    if (message && !json_is_string(message)) {
        /* A template of another type is shown as its JSON text. */
        json_t *text = json_text(message);
        json_decref(message);
        message = text;
        if (message == NULL) {
            rc = WEFT_ENOMEM;
            goto done;
        }
    }
    if (message && json_string_length(message) > PLAN_MESSAGE_MAX) {
        rc = weft_error_set(err, WEFT_ELIMIT, 0, 0,
                            "message renders to %zu bytes; the limit is %d",
                            json_string_length(message), PLAN_MESSAGE_MAX);
        goto done;
    }
    if (approvers) {
        size_t i;
        json_t *a;
        if (!json_is_array(approvers) || json_array_size(approvers) == 0) {
            rc = weft_error_set(err, WEFT_ETYPE, 0, 0,
                                "approvers must render to a list of names");
            goto done;
        }
        json_array_foreach(approvers, i, a)
        {
            size_t len = json_string_length(a);
            if (!json_is_string(a) || len == 0 || len > WF_MAX_APPROVER_LEN) {
                rc = weft_error_set(err, WEFT_ETYPE, 0, 0,
                                    "approver %zu must render to a name of 1 "
                                    "to %d bytes",
                                    i + 1, WF_MAX_APPROVER_LEN);
                goto done;
            }
        }
    }
    rc = WEFT_ENOMEM;
    if (set_new(t, "step", json_string(s->id)) ||
        set_new(t, "attempt", json_integer(attempt)) ||
        set_new(t, "mark", json_string(mark ? mark : "")) ||
        set_new(t, "deadline", json_integer(deadline)) ||
        (message && json_object_set(t, "message", message)) ||
        (approvers && set_new(t, "approvers", json_text(approvers))))
        goto done;
    rc = 0;
done:
    json_decref(timeout);
    json_decref(message);
    json_decref(approvers);
    return rc;
}

int plan_park(const struct plan_env *env, const struct runinfo *ri,
              const struct wf_step *s, uint32_t attempt, const char *mark,
              const json_t *scope, struct plan *p, struct weft_error *err)
{
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(p, mark0,
               t ? park_into(env, ri, s, attempt, mark, scope, t, err)
                 : WEFT_ENOMEM);
}

const char *plan_control_name(enum plan_control_kind k)
{
    switch (k) {
    case PLAN_CONTROL_RESOLVE:
        return "resolve";
    case PLAN_CONTROL_APPROVE:
        return "approve";
    case PLAN_CONTROL_TIMEOUT:
        break;
    }
    return "timeout";
}

int plan_check_set(const char *text, json_t **out, char *why, size_t size)
{
    json_error_t jerr;
    *out = NULL;
    if (strlen(text) > PLAN_SET_MAX) {
        snprintf(why, size, "'set' is longer than %d bytes", PLAN_SET_MAX);
        return WEFT_ELIMIT;
    }
    json_t *set = json_loads(text, 0, &jerr);
    if (!json_is_object(set)) {
        snprintf(why, size, "'set' must be a JSON object of state keys");
        json_decref(set);
        return WEFT_EINVAL;
    }
    if (json_object_size(set) > PLAN_SET_KEYS_MAX) {
        snprintf(why, size, "'set' has %zu keys; the limit is %d",
                 json_object_size(set), PLAN_SET_KEYS_MAX);
        json_decref(set);
        return WEFT_ELIMIT;
    }
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v)
    {
        (void)v;
        if (!keys_valid_id(k, strlen(k))) {
            snprintf(why, size,
                     "'set' key '%.64s' is not a state key (1 to %d of "
                     "A-Z a-z 0-9 _ . -)",
                     k, KEYS_ID_MAX);
            json_decref(set);
            return WEFT_EINVAL;
        }
    }
    *out = set;
    return 0;
}

/* Why a control event cannot apply as asked, or NULL. why has room for a
 * message. */
static const char *control_refusal(const struct wf_step *s, const char *step,
                                   const struct plan_control *c, char *why,
                                   size_t size)
{
    if (s == NULL) {
        snprintf(why, size, "the run has no step '%.128s'", step);
        return why;
    }
    if (!text_ok(c->by, PLAN_TEXT_MAX) || !text_ok(c->comment, PLAN_TEXT_MAX)) {
        snprintf(why, size,
                 "'by' and 'comment' must be UTF-8 text of at "
                 "most %d bytes",
                 PLAN_TEXT_MAX);
        return why;
    }
    const char *a = c->action;
    if (c->kind == PLAN_CONTROL_RESOLVE) {
        if (a == NULL || (strcmp(a, "retry") != 0 && strcmp(a, "skip") != 0 &&
                          strcmp(a, "fail") != 0)) {
            snprintf(why, size,
                     "a resolve needs action retry, skip or fail, got "
                     "'%.64s'",
                     a ? a : "");
            return why;
        }
    } else if (c->kind == PLAN_CONTROL_APPROVE) {
        if (a != NULL && a[0] != '\0' && strcmp(a, "approve") != 0 &&
            strcmp(a, "reject") != 0) {
            snprintf(why, size,
                     "an approve needs action approve or reject, got "
                     "'%.64s'",
                     a);
            return why;
        }
        if (s->type != WF_STEP_APPROVAL) {
            snprintf(why, size,
                     "step '%s' is a %s step, not an approval; use resolve",
                     s->id, wf_step_type_name(s->type));
            return why;
        }
    }
    return NULL;
}

static int resolve_into(const struct plan_env *env, const struct runinfo *ri,
                        const char *step, const struct plan_control *c,
                        struct plan *p, json_t *t, struct weft_error *err)
{
    const struct wf_step *s =
        step ? wf_find_step(ri->wf, step, strlen(step)) : NULL;
    char why[WEFT_ERROR_MSG_MAX + 160];
    const char *refuse =
        control_refusal(s, step ? step : "", c, why, sizeof(why));
    json_t *set = NULL;
    if (refuse == NULL && c->set != NULL &&
        plan_check_set(c->set, &set, why, sizeof(why)) != 0)
        refuse = why;
    int rc = WEFT_ENOMEM;
    const char *action = c->action && c->action[0] ? c->action : "approve";
    if (c->kind == PLAN_CONTROL_TIMEOUT)
        action = "timeout";
    if (set_new(t, "step", json_string(step ? step : "")) ||
        set_new(t, "mark", json_string(c->mark ? c->mark : "")) ||
        set_new(t, "attempt", json_integer(c->attempt)) ||
        set_new(t, "event", json_string(plan_control_name(c->kind))) ||
        set_new(t, "action",
                json_string(text_ok(action, 64) ? action : "(invalid)")))
        goto done;
    if (refuse != NULL) {
        rc = set_new(t, "refuse", json_string(refuse));
        goto done;
    }
    if ((c->by && c->by[0] && set_new(t, "by", json_string(c->by))) ||
        (c->comment && c->comment[0] &&
         set_new(t, "comment", json_string(c->comment))))
        goto done;
    if (set) {
        json_t *st = json_object();
        const char *k;
        json_t *v;
        if (st == NULL || set_new(t, "set", st))
            goto done;
        json_object_foreach(set, k, v)
        {
            if (set_new(st, k, json_text(v)))
                goto done;
        }
    }
    /* What the answer does to the step. */
    const char *outcome;
    const char *by = c->by && c->by[0] ? c->by : NULL;
    char msg[2 * PLAN_TEXT_MAX + 64];
    msg[0] = '\0';
    if (strcmp(action, "retry") == 0) {
        outcome = "pending";
    } else if (strcmp(action, "skip") == 0) {
        outcome = "skipped";
    } else if (strcmp(action, "approve") == 0) {
        outcome = "success";
    } else {
        outcome = "failed";
        if (strcmp(action, "timeout") == 0)
            snprintf(msg, sizeof(msg), "no approval before the deadline");
        else
            snprintf(msg, sizeof(msg), "%s by %s%s%s",
                     strcmp(action, "reject") == 0 ? "rejected" : "failed",
                     by ? by : "an operator", c->comment ? ": " : "",
                     c->comment ? c->comment : "");
    }
    char stem[WF_MAX_ID_LEN + 1];
    plan_state_stem(s->id, stem);
    if (set_new(t, "outcome", json_string(outcome)) ||
        set_new(t, "skey", json_string(stem)) ||
        set_new(t, "on_failure",
                json_string(wf_on_failure_name(s->on_failure))) ||
        (msg[0] && set_new(t, "message", json_string(msg))))
        goto done;
    if (strcmp(outcome, "pending") == 0) {
        rc = 0;
        goto done;
    }
    bool failing = strcmp(outcome, "failed") == 0;
    if (s->type == WF_STEP_APPROVAL && c->kind != PLAN_CONTROL_RESOLVE) {
        /* The answer is the step's result: {approved, by, comment}. */
        json_t *res = json_pack("{s:b, s:s?, s:s?}", "approved", !failing, "by",
                                by, "comment", c->comment);
        json_t *text = res ? json_text(res) : NULL;
        json_decref(res);
        if (set_new(t, "result_json", text))
            goto done;
    }
    if (failing) {
        char err_text[sizeof(msg) + WF_MAX_ID_LEN + 16];
        snprintf(err_text, sizeof(err_text), "step '%s' failed: %s", s->id,
                 msg);
        if (set_new(t, "run_error", json_string(err_text)))
            goto done;
    }
    if (!failing && is_group(s)) {
        /* A group skipped (it failed before it opened): its steps too. */
        json_t *skip = json_array();
        if (skip == NULL || set_new(t, "skip", skip) ||
            add_descendants(ri->wf, s, -1, skip))
            goto done;
    }
    /* A failure a person confirmed stops the enclosing groups unless the
     * step says continue (escalate does not apply twice). */
    bool stops = failing && s->on_failure != WF_ON_FAILURE_CONTINUE;
    rc = edges_into(env, ri, s, strcmp(outcome, "success") == 0, stops, p, t,
                    err);
done:
    json_decref(set);
    return rc;
}

int plan_resolve(const struct plan_env *env, const struct runinfo *ri,
                 const char *step, const struct plan_control *c, struct plan *p,
                 struct weft_error *err)
{
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(p, mark0,
               t ? resolve_into(env, ri, step, c, p, t, err) : WEFT_ENOMEM);
}

/* Retry planning. Each step of the definition gets a mode: kept as it is,
 * re-opened (a group that runs again around steps that run again), or
 * reset (back to pending, run again from the start, its whole subtree
 * too). */
enum retry_mode { RETRY_KEEP, RETRY_REOPEN, RETRY_RESET };

struct retry_ctx {
    const struct wf *wf;
    const json_t *steps; /* the run's steps hash, field -> text */
    uint8_t *mode;       /* per step */
    uint32_t *work;      /* steps whose mode rose, to propagate */
    size_t nwork, capwork;
    int rc;
};

static const char *snap(const struct retry_ctx *c, const struct wf_step *s,
                        const char *suffix)
{
    char key[WF_MAX_ID_LEN + 16];
    snprintf(key, sizeof(key), "%s%s", s->id, suffix);
    return json_string_value(json_object_get(c->steps, key));
}

static bool snap_done(const struct retry_ctx *c, const struct wf_step *s)
{
    const char *st = snap(c, s, "");
    return st && (strcmp(st, "success") == 0 || strcmp(st, "skipped") == 0);
}

/* A group was opened (a branch chosen) in its last attempt. */
static bool snap_opened(const struct retry_ctx *c, const struct wf_step *g)
{
    return snap(c, g, ":branch") != NULL || snap(c, g, ":started") != NULL;
}

/* The list a group opened: 1 for a conditional's else, else 0. Runs
 * recorded before `:branch` existed tell it by the else steps: only a
 * taken branch has steps that were not skipped. */
static int snap_branch(const struct retry_ctx *c, const struct wf_step *g)
{
    if (g->type != WF_STEP_CONDITIONAL)
        return 0;
    const char *b = snap(c, g, ":branch");
    if (b != NULL)
        return strcmp(b, "else") == 0 ? 1 : 0;
    for (uint32_t k = 0; k < g->nchildren[1]; k++) {
        const char *st = snap(c, &c->wf->steps[g->children[1][k]], "");
        if (st && strcmp(st, "skipped") != 0)
            return 1;
    }
    return 0;
}

static void raise_mode(struct retry_ctx *c, uint32_t i, enum retry_mode m)
{
    if (c->rc || c->mode[i] >= m)
        return;
    c->mode[i] = (uint8_t)m;
    if (c->nwork == c->capwork) {
        size_t ncap = c->capwork ? 2 * c->capwork : 64;
        uint32_t *n = weft_realloc(c->work, ncap * sizeof(*n));
        if (n == NULL) {
            c->rc = WEFT_ENOMEM;
            return;
        }
        c->work = n;
        c->capwork = ncap;
    }
    c->work[c->nwork++] = i;
}

/* The steps of a list that did not finish well run again: leaves and
 * unopened groups from the start, opened groups re-opened around their
 * own unfinished steps. A group that succeeded keeps its whole subtree. */
static void seed_list(struct retry_ctx *c, const uint32_t *idx, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        const struct wf_step *s = &c->wf->steps[idx[k]];
        if (snap_done(c, s))
            continue;
        if (is_group(s) && snap_opened(c, s)) {
            raise_mode(c, s->index, RETRY_REOPEN);
            int b = snap_branch(c, s);
            seed_list(c, s->children[b], s->nchildren[b]);
        } else {
            raise_mode(c, s->index, RETRY_RESET);
        }
    }
}

/* Raises what follows from the modes raised so far: a reset group's
 * subtree is reset, a step's dependents are reset, and its group is
 * re-opened. */
static void retry_close(struct retry_ctx *c)
{
    const struct wf *wf = c->wf;
    while (c->nwork > 0 && c->rc == 0) {
        uint32_t i = c->work[--c->nwork];
        const struct wf_step *s = &wf->steps[i];
        if (c->mode[i] == RETRY_RESET)
            for (uint32_t j = i + 1, e = subtree_end(wf, i); j < e; j++)
                raise_mode(c, j, RETRY_RESET);
        for (uint32_t d = 0; d < s->ndependents; d++)
            raise_mode(c, s->dependents[d], RETRY_RESET);
        if (s->parent >= 0)
            raise_mode(c, (uint32_t)s->parent, RETRY_REOPEN);
    }
}

/* Steps of g's opened list that run again. */
static uint32_t reopened_left(const struct retry_ctx *c,
                              const struct wf_step *g)
{
    int b = snap_branch(c, g);
    uint32_t n = 0;
    for (uint32_t k = 0; k < g->nchildren[b]; k++)
        n += c->mode[g->children[b][k]] != RETRY_KEEP;
    return n;
}

static int retry_item(struct retry_ctx *c, const struct wf_step *s,
                      json_t *reset, json_t *ready)
{
    uint32_t deps = 0;
    for (uint32_t k = 0; k < s->ndeps; k++)
        deps += c->mode[s->deps[k]] != RETRY_KEEP;
    bool reopen = c->mode[s->index] == RETRY_REOPEN;
    bool now = !reopen && deps == 0 &&
               (s->parent < 0 || c->mode[s->parent] == RETRY_REOPEN);
    const char *st = snap(c, s, "");
    char stem[WF_MAX_ID_LEN + 1];
    plan_state_stem(s->id, stem);
    json_t *r = json_pack("{s:s, s:s, s:I, s:s}", "id", s->id, "st",
                          reopen ? "running" : "pending", "deps",
                          (json_int_t)deps, "skey", stem);
    if (r == NULL || json_array_append_new(reset, r) != 0)
        return WEFT_ENOMEM;
    if (reopen && set_new(r, "left", json_integer(reopened_left(c, s))))
        return WEFT_ENOMEM;
    if (!now && !reopen && st && strcmp(st, "cancelled") == 0 &&
        set_new(r, "bump", json_true()))
        return WEFT_ENOMEM;
    if (now && json_array_append_new(ready, json_pack("{s:s}", "id", s->id)))
        return WEFT_ENOMEM;
    return 0;
}

static int retry_into(const struct plan_env *env, const struct runinfo *ri,
                      const json_t *steps, const char *finished, int64_t seen,
                      const struct plan_retry_req *rq, json_t *t)
{
    (void)env;
    const struct wf *wf = ri->wf;
    struct retry_ctx c = {.wf = wf, .steps = steps};
    char why[WEFT_ERROR_MSG_MAX + 160];
    const char *refuse = NULL;
    json_t *reset = json_array(), *ready = json_array();
    int rc = WEFT_ENOMEM;
    c.mode = weft_calloc(wf->nsteps ? wf->nsteps : 1, 1);
    if (c.mode == NULL || reset == NULL || ready == NULL)
        goto done;
    if (set_new(t, "mark", json_string(rq->mark ? rq->mark : "")) ||
        set_new(t, "from", json_string(rq->from ? rq->from : "")) ||
        set_new(t, "finished", json_string(finished ? finished : "")) ||
        set_new(t, "seen", json_integer(seen)) ||
        set_new(t, "seq", json_integer(rq->seq)))
        goto done;
    if (!text_ok(rq->by, PLAN_TEXT_MAX) ||
        !text_ok(rq->comment, PLAN_TEXT_MAX)) {
        snprintf(why, sizeof(why),
                 "'by' and 'comment' must be UTF-8 text of at most %d bytes",
                 PLAN_TEXT_MAX);
        refuse = why;
    } else if ((rq->by && rq->by[0] && set_new(t, "by", json_string(rq->by))) ||
               (rq->comment && rq->comment[0] &&
                set_new(t, "comment", json_string(rq->comment)))) {
        goto done;
    }
    const struct wf_step *from =
        rq->from ? wf_find_step(wf, rq->from, strlen(rq->from)) : NULL;
    if (refuse == NULL && rq->from && from == NULL) {
        snprintf(why, sizeof(why), "the run has no step '%.128s'", rq->from);
        refuse = why;
    }
    if (refuse != NULL) {
        rc = set_new(t, "refuse", json_string(refuse));
        goto done;
    }
    seed_list(&c, wf->top, wf->ntop);
    if (from) {
        /* A step that could not run without its group opening again on
         * its branch (a branch not taken, a group never opened) runs
         * again with that group. */
        uint32_t x = from->index;
        for (uint32_t ch = from->index; wf->steps[ch].parent >= 0;
             ch = (uint32_t)wf->steps[ch].parent) {
            const struct wf_step *g = &wf->steps[wf->steps[ch].parent];
            if (!snap_opened(&c, g) ||
                (int)wf->steps[ch].branch != snap_branch(&c, g))
                x = g->index;
        }
        raise_mode(&c, x, RETRY_RESET);
    }
    /* A re-opened group with nothing left to run would never finish: it
     * runs again whole. Repeat until nothing changes. */
    for (bool again = true; again && c.rc == 0;) {
        retry_close(&c);
        again = false;
        for (uint32_t i = 0; i < wf->nsteps && c.rc == 0; i++)
            if (c.mode[i] == RETRY_REOPEN &&
                reopened_left(&c, &wf->steps[i]) == 0) {
                raise_mode(&c, i, RETRY_RESET);
                again = true;
            }
    }
    if ((rc = c.rc))
        goto done;
    uint32_t top = 0, nreset = 0;
    for (uint32_t k = 0; k < wf->ntop; k++)
        top += c.mode[wf->top[k]] != RETRY_KEEP;
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        if (c.mode[i] == RETRY_KEEP)
            continue;
        nreset++;
        if ((rc = retry_item(&c, &wf->steps[i], reset, ready)))
            goto done;
    }
    rc = WEFT_ENOMEM;
    if (nreset == 0) {
        rc = set_new(t, "refuse",
                     json_string("nothing to retry: no step failed or was "
                                 "cancelled (retry --from STEP re-runs "
                                 "steps that succeeded)"));
        goto done;
    }
    if (set_new(t, "top", json_integer(top)) ||
        (wf->timeout_ms > 0 &&
         set_new(t, "timeout", json_integer((json_int_t)wf->timeout_ms))) ||
        json_object_set(t, "reset", reset) ||
        json_object_set(t, "ready", ready))
        goto done;
    rc = 0;
done:
    weft_free(c.mode);
    weft_free(c.work);
    json_decref(reset);
    json_decref(ready);
    return rc;
}

int plan_retry(const struct plan_env *env, const struct runinfo *ri,
               const json_t *steps, const char *finished, int64_t seen,
               const struct plan_retry_req *rq, struct plan *p)
{
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(p, mark0,
               t ? retry_into(env, ri, steps, finished, seen, rq, t)
                 : WEFT_ENOMEM);
}

/* ---- rollback ------------------------------------------------------------
 * The run's git rollback, weft's own step PLAN_ROLLBACK_STEP
 * (common/lua/rollback.lua, docs/git.md "Rollback"). */

/* The rollback job's queue: that of the git step whose change comes
 * first (a workflow that sends its git steps to a queue of its own gets
 * its rollback there too), else "git". */
static const char *rollback_queue(const struct plan_env *env,
                                  const struct runinfo *ri,
                                  const json_t *changes)
{
    const char *id =
        json_string_value(json_object_get(json_array_get(changes, 0), "step"));
    const struct wf_step *s =
        id && ri->wf ? wf_find_step(ri->wf, id, strlen(id)) : NULL;
    if (s != NULL && s->type == WF_STEP_GIT)
        return personas_step_queue(env->personas, s);
    return "git";
}

static int rollback_dispatch_into(const struct plan_env *env,
                                  const struct runinfo *ri, uint32_t attempt,
                                  const char *mark, const json_t *changes,
                                  struct plan *p, json_t *t,
                                  struct weft_error *err)
{
    struct wire_job job;
    char trace[64];
    json_t *ref = NULL;
    int rc = WEFT_ENOMEM;

    if (!json_is_array(changes) || json_array_size(changes) == 0)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "rollback: the run recorded no git changes");
    memset(&job, 0, sizeof(job));
    new_span(ri->trace, trace, sizeof(trace));
    job.run = ri->run;
    job.step = (char *)PLAN_ROLLBACK_STEP;
    job.name = (char *)"rollback";
    job.type = (char *)wf_step_type_name(WF_STEP_GIT);
    job.queue = (char *)rollback_queue(env, ri, changes);
    job.attempt = attempt;
    job.timeout_ms = (uint64_t)PLAN_ROLLBACK_TIMEOUT_S * 1000;
    job.trace = trace;
    job.context = job_context(ri);
    job.git =
        json_pack("{s:s, s:O}", "operation", "rollback", "changes", changes);
    if (job.context == NULL || job.git == NULL)
        goto done;
    if ((rc = job_ref(env, &job, p, &ref, err)) != 0)
        goto done;
    rc = WEFT_ENOMEM;
    if (set_new(t, "job", ref) ||
        set_new(t, "phase", json_string("dispatch")) ||
        set_new(t, "step", json_string(PLAN_ROLLBACK_STEP)) ||
        set_new(t, "attempt", json_integer(attempt)) ||
        set_new(t, "mark", json_string(mark ? mark : "")))
        goto done;
    rc = 0;
done:
    json_decref(job.context);
    json_decref(job.git);
    return rc;
}

int plan_rollback_dispatch(const struct plan_env *env, const struct runinfo *ri,
                           uint32_t attempt, const char *mark,
                           const json_t *changes, struct plan *p,
                           struct weft_error *err)
{
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(
        p, mark0,
        t ? rollback_dispatch_into(env, ri, attempt, mark, changes, p, t, err)
          : WEFT_ENOMEM);
}

/* "deleted feature, reset main to 1a2b3c4d, deleted origin/feature": what
 * a rollback result's `restored` list did, for the history. */
static char *restored_text(const json_t *result)
{
    struct buf b;
    size_t i;
    const json_t *e;
    buf_init(&b, PLAN_ROLLBACK_TEXT_MAX);
    json_array_foreach(json_object_get(result, "restored"), i, e)
    {
        const char *action = json_string_value(json_object_get(e, "action"));
        const char *ref = json_string_value(json_object_get(e, "ref"));
        const char *remote = json_string_value(json_object_get(e, "remote"));
        const char *to = json_string_value(json_object_get(e, "to"));
        if (action == NULL || ref == NULL ||
            (strcmp(action, "deleted") != 0 && strcmp(action, "reset") != 0))
            continue;
        if (buf_printf(&b, "%s%s %s%s%s", b.len ? ", " : "", action,
                       remote ? remote : "", remote ? "/" : "", ref) != 0)
            break;
        if (to && buf_printf(&b, " to %.8s", to) != 0)
            break;
    }
    if (b.len == 0 && buf_append_str(&b, "nothing to restore") != 0) {
        buf_deinit(&b);
        return NULL;
    }
    char *text = buf_steal(&b, NULL);
    buf_deinit(&b);
    return text;
}

static int rollback_result_into(const struct plan_env *env, uint32_t attempt,
                                const char *mark, const struct wire_result *res,
                                json_t *t)
{
    bool ok = res->status == WIRE_SUCCESS;
    bool retryable = res->status == WIRE_ERROR || res->status == WIRE_TIMEOUT;
    if (set_new(t, "phase", json_string("result")) ||
        set_new(t, "step", json_string(PLAN_ROLLBACK_STEP)) ||
        set_new(t, "attempt", json_integer(attempt)) ||
        set_new(t, "mark", json_string(mark ? mark : "")) ||
        set_new(t, "outcome", json_string(ok ? "success" : "failed")) ||
        set_new(t, "attempts", json_integer(PLAN_ROLLBACK_ATTEMPTS)))
        return WEFT_ENOMEM;
    if (res->message && set_new(t, "message", json_string(res->message)))
        return WEFT_ENOMEM;
    if (retryable) {
        /* 5 s, 10 s, ...: a remote that was down for a moment. */
        struct wf_retry r = {.max = PLAN_ROLLBACK_ATTEMPTS,
                             .backoff = WF_BACKOFF_EXPONENTIAL,
                             .delay_ms = 5000,
                             .max_delay_ms = 60000};
        int64_t due = env->now_ms + plan_backoff_ms(&r, attempt + 1, 0.5);
        if (set_new(t, "retry_at", json_integer(due)))
            return WEFT_ENOMEM;
    }
    if (json_is_object(res->result)) {
        char *restored = restored_text(res->result);
        if (restored == NULL || set_new(t, "restored", json_string(restored)) ||
            set_new(t, "result", json_text(res->result))) {
            weft_free(restored);
            return WEFT_ENOMEM;
        }
        weft_free(restored);
    }
    return 0;
}

int plan_rollback_result(const struct plan_env *env, const struct runinfo *ri,
                         uint32_t attempt, const char *mark,
                         const struct wire_result *res, struct plan *p)
{
    size_t mark0 = plan_size(p);
    json_t *t = begin(env, ri, p);
    return end(p, mark0,
               t ? rollback_result_into(env, attempt, mark, res, t)
                 : WEFT_ENOMEM);
}
