/* handler_persona.c - the `persona-request` step: runs the persona's
 * `exec` adapter from the registry (docs/personas.md).
 *
 * Life of a job. The step names a persona; the registry gives its argv,
 * env and default timeout (an unknown persona fails as fatal at once).
 * The run's state, artifacts and gitState are not in the job body: two
 * commands on the worker's command connection read them (HGETALL of the
 * state hash, HMGET of the run header). Then the request JSON is written
 * to the program's stdin, in the run's workspace, with WEFT_RUN_ID,
 * WEFT_STEP_ID and TRACEPARENT set; its stdout (at most
 * PERSONA_RESPONSE_MAX bytes) is the response, and its exit status and
 * stderr tail explain a failure.
 *
 * Timeouts. The loop enforces the job's timeout_ms and calls cancel; a
 * step without one gets the persona's own timeout, enforced here by a
 * timer that reports `timeout` itself. Either way the process group gets
 * SIGTERM, then SIGKILL PERSONA_KILL_GRACE_MS later.
 *
 * Ownership. A struct pjob is the job's data. A Redis reply owed to it
 * may come after the job was completed (a cancel while reading): pjob->j
 * is then NULL and the last reply frees the pjob.
 */
#include "handler.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>

#include "alloc.h"
#include "buf.h"
#include "keys.h"
#include "log.h"
#include "personas.h"
#include "rconn.h"
#include "subproc.h"
#include "workspace.h"

/* A response is a report, not a log; results and state updates of this
 * size already strain the state hash. Well under WIRE_MAX_BODY. */
#define PERSONA_RESPONSE_MAX (4u * 1024 * 1024)
/* Between SIGTERM and SIGKILL on timeout and cancel: time for an agent
 * to save its work, short enough to free the slot. */
#define PERSONA_KILL_GRACE_MS 5000
/* A verdict becomes `<id>_status` and is compared in conditions: a word,
 * not a sentence. */
#define PERSONA_VERDICT_MAX 64
/* Room for a reason built here ("persona 'x' exited with status 3"). */
#define PERSONA_REASON_MAX 512
/* The environment added to the persona's own: 3 variables. */
#define PERSONA_ENV_OURS 3

/* The registry in use; borrowed from main (handler_persona_use). */
static const struct personas *registry;

void handler_persona_use(const struct personas *reg)
{
    registry = reg;
}

struct pjob {
    struct job *j; /* NULL once completed */
    const struct persona *p;
    int owed; /* Redis replies still to come */
    bool fetch_failed;
    char fetch_err[128];
    json_t *state;     /* object */
    json_t *artifacts; /* array */
    json_t *git_state; /* object */
    struct subproc *sp;
    struct event *timer; /* the persona's default timeout */
    uint64_t timeout_ms; /* effective: the job's, else the persona's */
    bool timed_out;      /* our timer fired */
    bool cancelled;      /* the loop's cancel came */
};

static void pjob_free(struct pjob *pj)
{
    if (pj->timer != NULL)
        event_free(pj->timer);
    json_decref(pj->state);
    json_decref(pj->artifacts);
    json_decref(pj->git_state);
    weft_free(pj);
}

/* Completes the job with status and a message, detaching pj from it. */
static void finish(struct pjob *pj, struct wire_result *r)
{
    struct job *j = pj->j;
    pj->j = NULL;
    job_set_data(j, NULL);
    job_complete(j, r);
}

/* Appends s[0..n) to b as valid UTF-8 without control characters other
 * than newline and tab (a stderr tail may start inside a character and
 * hold anything). Stops quietly at b's maximum. */
static void append_clean(struct buf *b, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80         ? 1
                     : (c >> 5) == 6  ? 2
                     : (c >> 4) == 14 ? 3
                     : (c >> 3) == 30 ? 4
                                      : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = ((unsigned char)s[i + k] >> 6) == 2;
        if (ok && len == 1 && c < 0x20 && c != '\n' && c != '\t')
            ok = false;
        if (ok && len == 1 && c == 0x7f)
            ok = false;
        if (!ok) {
            if (buf_append_char(b, '?') != 0)
                return;
            i++;
            continue;
        }
        if (buf_append(b, s + i, len) != 0)
            return;
        i += len;
    }
}

/* "<reason>" plus "; stderr: <tail>" when there is one; NULL on OOM. */
static char *reason_with_tail(const char *reason, const char *err, size_t n)
{
    struct buf b;
    buf_init(&b, PERSONA_REASON_MAX + 2 * SUBPROC_STDERR_TAIL);
    append_clean(&b, reason, strlen(reason));
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        n--;
    if (n > 0) {
        buf_append_str(&b, "; stderr: ");
        append_clean(&b, err, n);
    }
    return buf_steal(&b, NULL);
}

static void set_failure(struct wire_result *r, enum wire_status st,
                        const char *reason, const struct subproc_result *res)
{
    memset(r, 0, sizeof(*r));
    r->status = st;
    r->message =
        reason_with_tail(reason, res ? res->err : "", res ? res->errlen : 0);
}

static bool verdict_ok(const char *s, size_t n)
{
    if (n == 0 || n > PERSONA_VERDICT_MAX)
        return false;
    return keys_valid_id(s, n);
}

/* Reads the response in res->out into r (status, verdict, result, state,
 * artifacts, message), or an `error` with the reason. */
static void parse_response(const struct pjob *pj,
                           const struct subproc_result *res,
                           struct wire_result *r)
{
    char why[PERSONA_REASON_MAX];
    const char *name = pj->p->name;
    json_error_t je;
    json_t *doc, *v;
    const char *word;
    size_t wl;

    doc = json_loadb(res->out, res->outlen, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL) {
        snprintf(why, sizeof(why),
                 "persona '%s': response is not JSON: %s (line %d, column "
                 "%d)",
                 name, je.text, je.line, je.column);
        set_failure(r, WIRE_ERROR, why, res);
        return;
    }
    if (!json_is_object(doc)) {
        snprintf(why, sizeof(why),
                 "persona '%s': response must be a JSON object", name);
        goto bad;
    }
    v = json_object_get(doc, "status");
    if (v == NULL || !json_is_string(v)) {
        snprintf(why, sizeof(why),
                 "persona '%s': response has no 'status' string", name);
        goto bad;
    }
    word = json_string_value(v);
    wl = json_string_length(v);
    if (!verdict_ok(word, wl)) {
        snprintf(why, sizeof(why),
                 "persona '%s': 'status' must be a word of 1-%d characters "
                 "of [A-Za-z0-9_.-]",
                 name, PERSONA_VERDICT_MAX);
        goto bad;
    }
    v = json_object_get(doc, "message");
    if (v != NULL && !json_is_string(v) && !json_is_null(v)) {
        snprintf(why, sizeof(why), "persona '%s': 'message' must be a string",
                 name);
        goto bad;
    }
    memset(r, 0, sizeof(*r));
    if (json_is_string(v))
        r->message = weft_strdup(json_string_value(v));
    if (strcmp(word, "error") == 0 || strcmp(word, "fatal") == 0) {
        r->status = word[0] == 'e' ? WIRE_ERROR : WIRE_FATAL;
        if (r->message == NULL) {
            snprintf(why, sizeof(why), "persona '%s' reported %s", name, word);
            r->message = reason_with_tail(why, res->err, res->errlen);
        }
        json_decref(doc);
        return;
    }
    v = json_object_get(doc, "state");
    if (v != NULL && !json_is_object(v) && !json_is_null(v)) {
        snprintf(why, sizeof(why),
                 "persona '%s': 'state' must be an object of updates", name);
        wire_result_deinit(r);
        goto bad;
    }
    if (json_is_object(v))
        r->state = json_incref(v);
    v = json_object_get(doc, "artifacts");
    if (v != NULL && !json_is_array(v) && !json_is_null(v)) {
        snprintf(why, sizeof(why), "persona '%s': 'artifacts' must be a list",
                 name);
        wire_result_deinit(r);
        goto bad;
    }
    if (json_is_array(v))
        r->artifacts = json_incref(v);
    v = json_object_get(doc, "result");
    if (v != NULL)
        r->result = json_incref(v);
    r->status = WIRE_SUCCESS;
    r->verdict = weft_strndup(word, wl);
    json_decref(doc);
    return;
bad:
    json_decref(doc);
    set_failure(r, WIRE_ERROR, why, res);
}

/* "exited with status 3", "killed by signal 9". */
static void describe_exit(int status, char *out, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(out, size, "killed by signal %d", WTERMSIG(status));
    else if (WIFEXITED(status))
        snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(out, size, "ended with wait status %d", status);
}

static void on_exit_done(const struct subproc_result *res, void *ud)
{
    struct pjob *pj = ud;
    struct wire_result r;
    char why[PERSONA_REASON_MAX], how[64];
    const char *name = pj->p->name;

    pj->sp = NULL;
    describe_exit(res->status, how, sizeof(how));
    if (pj->timed_out) {
        snprintf(why, sizeof(why),
                 "persona '%s' timed out after %llu ms (its default "
                 "timeout) and was stopped: %s",
                 name, (unsigned long long)pj->timeout_ms, how);
        set_failure(&r, WIRE_TIMEOUT, why, res);
    } else if (pj->cancelled) {
        /* The loop replaces the status and prefixes its reason. */
        snprintf(why, sizeof(why), "persona '%s' stopped: %s", name, how);
        set_failure(&r, WIRE_ERROR, why, res);
    } else if (res->out_truncated) {
        snprintf(why, sizeof(why),
                 "persona '%s': response larger than %u bytes", name,
                 PERSONA_RESPONSE_MAX);
        set_failure(&r, WIRE_ERROR, why, res);
    } else if (!WIFEXITED(res->status) || WEXITSTATUS(res->status) != 0) {
        snprintf(why, sizeof(why), "persona '%s' %s", name, how);
        set_failure(&r, WIRE_ERROR, why, res);
    } else {
        parse_response(pj, res, &r);
    }
    finish(pj, &r);
    pjob_free(pj);
}

static void on_timeout(evutil_socket_t fd, short what, void *ud)
{
    struct pjob *pj = ud;
    (void)fd;
    (void)what;
    if (pj->sp == NULL || pj->cancelled)
        return;
    pj->timed_out = true;
    log_info("persona timed out", "run", job_spec(pj->j)->run, "step",
             job_spec(pj->j)->step, "persona", pj->p->name, NULL);
    subproc_kill(pj->sp, SIGTERM, PERSONA_KILL_GRACE_MS);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A string field of the job's context, or NULL. */
static const char *ctx_str(const struct wire_job *spec, const char *key)
{
    const json_t *v =
        spec->context ? json_object_get(spec->context, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* The request document (docs/personas.md); NULL on OOM. */
static char *build_request(const struct pjob *pj, size_t *len)
{
    const struct wire_job *spec = job_spec(pj->j);
    const json_t *task =
        spec->context ? json_object_get(spec->context, "task") : NULL;
    json_t *params = spec->params ? json_incref(spec->params) : json_object();
    json_t *req;
    char *text;

    req = json_pack(
        "{s:s, s:{s:s, s:o, s:s, s:o, s:I}, s:O, "
        "s:{s:o, s:o, s:o, s:o, s:O, s:O, s:O}, s:o}",
        "run", spec->run, "step", "id", spec->step, "name",
        str_or_null(spec->name), "persona", pj->p->name, "params", params,
        "attempt", (json_int_t)spec->attempt, "task", task ? task : json_null(),
        "context", "workflowId", str_or_null(ctx_str(spec, "workflowId")),
        "repoRoot", str_or_null(ctx_str(spec, "repoRoot")), "branchName",
        str_or_null(ctx_str(spec, "branchName")), "baseBranch",
        str_or_null(ctx_str(spec, "baseBranch")), "state", pj->state,
        "artifacts", pj->artifacts, "gitState", pj->git_state, "deadline",
        pj->timeout_ms > 0
            ? json_integer((json_int_t)(wall_ms() + (int64_t)pj->timeout_ms))
            : json_null());
    if (req == NULL)
        return NULL;
    text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (text != NULL)
        *len = strlen(text);
    return text;
}

/* "K=V" into a weft_malloc'd string; NULL on OOM. */
static char *env_entry(const char *k, const char *v)
{
    size_t kl = strlen(k), vl = strlen(v);
    char *s = weft_malloc(kl + vl + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, k, kl);
    s[kl] = '=';
    memcpy(s + kl + 1, v, vl + 1);
    return s;
}

/* Starts the program. 0, or fills r with the failure. */
static int launch(struct pjob *pj, struct wire_result *r)
{
    const struct wire_job *spec = job_spec(pj->j);
    const char *env[PERSONA_ENV_MAX + PERSONA_ENV_OURS + 1];
    char *ours[PERSONA_ENV_OURS] = {NULL, NULL, NULL};
    struct subproc_opts o;
    struct weft_error err;
    char *req = NULL, *cwd = NULL;
    size_t req_len = 0, n = 0;
    int rc;

    memset(r, 0, sizeof(*r));
    weft_error_clear(&err);
    rc = workspace_resolve(spec->run, ctx_str(spec, "repoRoot"), &cwd, &err);
    if (rc != 0)
        goto fail;
    req = build_request(pj, &req_len);
    ours[0] = env_entry("WEFT_RUN_ID", spec->run);
    ours[1] = env_entry("WEFT_STEP_ID", spec->step);
    ours[2] = spec->trace ? env_entry("TRACEPARENT", spec->trace) : NULL;
    if (req == NULL || ours[0] == NULL || ours[1] == NULL ||
        (spec->trace != NULL && ours[2] == NULL)) {
        rc = weft_error_set(&err, WEFT_ENOMEM, 0, 0, "out of memory");
        goto fail;
    }
    for (size_t i = 0; pj->p->env[i] != NULL && n < PERSONA_ENV_MAX; i++)
        env[n++] = pj->p->env[i];
    for (size_t i = 0; i < PERSONA_ENV_OURS; i++) {
        if (ours[i] != NULL)
            env[n++] = ours[i];
    }
    env[n] = NULL;
    memset(&o, 0, sizeof(o));
    o.argv = pj->p->argv;
    o.env = env;
    o.cwd = cwd;
    o.stdin_data = req;
    o.stdin_len = req_len;
    o.stdout_max = PERSONA_RESPONSE_MAX;
    rc = subproc_start(job_base(pj->j), &o, on_exit_done, pj, &pj->sp, &err);
    if (rc != 0)
        goto fail;
    log_debug("persona started", "run", spec->run, "step", spec->step,
              "persona", pj->p->name, "cwd", cwd, NULL);
    if (spec->timeout_ms == 0 && pj->timeout_ms > 0) {
        struct timeval tv = {(time_t)(pj->timeout_ms / 1000),
                             (suseconds_t)(pj->timeout_ms % 1000) * 1000};
        pj->timer = evtimer_new(job_base(pj->j), on_timeout, pj);
        if (pj->timer == NULL || evtimer_add(pj->timer, &tv) != 0) {
            /* Without the timer a hung persona would hold its slot
             * forever: stop it now, reported as an error. */
            subproc_kill(pj->sp, SIGKILL, 0);
            pj->cancelled = true;
        }
    }
    goto out;
fail : {
    char why[PERSONA_REASON_MAX];
    snprintf(why, sizeof(why), "persona '%s' could not start: %s", pj->p->name,
             err.msg);
    set_failure(r, rc == WEFT_EINVAL ? WIRE_FATAL : WIRE_ERROR, why, NULL);
}
out:
    for (size_t i = 0; i < PERSONA_ENV_OURS; i++)
        weft_free(ours[i]);
    weft_free(req);
    weft_free(cwd);
    return rc;
}

/* Both replies are in: run the program, or report why not. */
static void fetched(struct pjob *pj)
{
    struct wire_result r;
    if (pj->fetch_failed) {
        char why[PERSONA_REASON_MAX];
        snprintf(why, sizeof(why), "persona '%s': cannot read the run: %s",
                 pj->p->name, pj->fetch_err);
        set_failure(&r, WIRE_ERROR, why, NULL);
    } else if (launch(pj, &r) == 0) {
        return;
    }
    finish(pj, &r);
    pjob_free(pj);
}

static void fetch_fail(struct pjob *pj, const redisReply *reply)
{
    if (pj->fetch_failed)
        return;
    pj->fetch_failed = true;
    if (reply == NULL)
        snprintf(pj->fetch_err, sizeof(pj->fetch_err), "Redis went away");
    else if (reply->type == REDIS_REPLY_ERROR)
        snprintf(pj->fetch_err, sizeof(pj->fetch_err), "%.100s", reply->str);
    else
        snprintf(pj->fetch_err, sizeof(pj->fetch_err),
                 "unexpected reply type %d", reply->type);
}

/* A JSON value from a Redis string; text that is not JSON stays a
 * string (state values are JSON text written by the scheduler). NULL
 * for bytes that are neither JSON nor UTF-8 (or no memory). */
static json_t *json_from_reply(const redisReply *v)
{
    json_t *j = json_loadb(v->str, v->len, JSON_DECODE_ANY, NULL);
    return j != NULL ? j : json_stringn(v->str, v->len);
}

/* Whether pj still wants the reply; frees it after the last one when
 * the job is gone. */
static bool reply_wanted(struct pjob *pj)
{
    pj->owed--;
    if (pj->j != NULL)
        return true;
    if (pj->owed == 0)
        pjob_free(pj);
    return false;
}

static void on_state(struct rconn *c, redisReply *reply, void *ud)
{
    struct pjob *pj = ud;
    (void)c;
    if (!reply_wanted(pj))
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements % 2 != 0) {
        fetch_fail(pj, reply);
    } else {
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *k = reply->element[i];
            const redisReply *v = reply->element[i + 1];
            json_t *val;
            char *key;
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            /* A field that JSON cannot carry (bytes that are not UTF-8)
             * is left out of the request. */
            key = weft_strndup(k->str, k->len);
            val = json_from_reply(v);
            if (key != NULL && val != NULL)
                json_object_set_new(pj->state, key, val);
            else
                json_decref(val);
            weft_free(key);
        }
    }
    if (pj->owed == 0)
        fetched(pj);
}

static void on_header(struct rconn *c, redisReply *reply, void *ud)
{
    struct pjob *pj = ud;
    (void)c;
    if (!reply_wanted(pj))
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 2) {
        fetch_fail(pj, reply);
    } else {
        const redisReply *a = reply->element[0], *g = reply->element[1];
        json_t *v;
        if (a->type == REDIS_REPLY_STRING) {
            v = json_loadb(a->str, a->len, 0, NULL);
            if (json_is_array(v)) {
                json_decref(pj->artifacts);
                pj->artifacts = v;
            } else {
                json_decref(v);
            }
        }
        if (g->type == REDIS_REPLY_STRING) {
            v = json_loadb(g->str, g->len, 0, NULL);
            if (json_is_object(v)) {
                json_decref(pj->git_state);
                pj->git_state = v;
            } else {
                json_decref(v);
            }
        }
    }
    if (pj->owed == 0)
        fetched(pj);
}

static void complete_now(struct job *j, enum wire_status st, const char *msg)
{
    struct wire_result r;
    memset(&r, 0, sizeof(r));
    r.status = st;
    r.message = weft_strdup(msg);
    job_complete(j, &r);
}

static int persona_start(struct job *j)
{
    const struct wire_job *spec = job_spec(j);
    const struct persona *p;
    char key[KEYS_MAX], msg[PERSONA_REASON_MAX];
    struct pjob *pj;

    if (spec->persona == NULL) {
        complete_now(j, WIRE_FATAL, "persona-request job names no persona");
        return 0;
    }
    p = personas_find(registry, spec->persona);
    if (p == NULL) {
        const char *s = personas_suggest(registry, spec->persona);
        if (registry == NULL)
            snprintf(msg, sizeof(msg),
                     "unknown persona '%s': this worker has no persona "
                     "registry (--personas FILE)",
                     spec->persona);
        else
            snprintf(msg, sizeof(msg),
                     "unknown persona '%s': not in the registry %s%s%s%s",
                     spec->persona, personas_path(registry),
                     s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
        complete_now(j, WIRE_FATAL, msg);
        return 0;
    }
    pj = weft_calloc(1, sizeof(*pj));
    if (pj == NULL)
        return WEFT_ENOMEM;
    pj->j = j;
    pj->p = p;
    pj->timeout_ms = spec->timeout_ms > 0 ? spec->timeout_ms : p->timeout_ms;
    pj->state = json_object();
    pj->artifacts = json_array();
    pj->git_state = json_object();
    if (pj->state == NULL || pj->artifacts == NULL || pj->git_state == NULL) {
        pjob_free(pj);
        return WEFT_ENOMEM;
    }
    job_set_data(j, pj);
    keys_run(job_keys(j), KEYS_RUN_STATE, spec->run, key);
    if (rconn_cmd(job_redis(j), on_state, pj, "HGETALL %s", key) != 0) {
        job_set_data(j, NULL);
        pjob_free(pj);
        complete_now(j, WIRE_ERROR,
                     "cannot read the run's state: Redis unavailable");
        return 0;
    }
    pj->owed = 1;
    keys_run(job_keys(j), KEYS_RUN, spec->run, key);
    if (rconn_cmd(job_redis(j), on_header, pj, "HMGET %s artifacts gitState",
                  key) != 0) {
        struct wire_result r;
        set_failure(&r, WIRE_ERROR,
                    "cannot read the run's header: Redis unavailable", NULL);
        /* The first reply will find the job gone and free pj. */
        finish(pj, &r);
        return 0;
    }
    pj->owed = 2;
    return 0;
}

static void persona_cancel(struct job *j)
{
    struct pjob *pj = job_data(j);
    struct wire_result r;

    if (pj == NULL)
        return;
    if (pj->sp != NULL) {
        pj->cancelled = true;
        subproc_kill(pj->sp, SIGTERM, PERSONA_KILL_GRACE_MS);
        return;
    }
    /* Still reading the run: the owed replies free pj. */
    memset(&r, 0, sizeof(r));
    r.status = WIRE_ERROR; /* replaced by the loop's reason */
    finish(pj, &r);
}

const struct handler handler_persona = {
    .type = "persona-request",
    .start = persona_start,
    .cancel = persona_cancel,
    .ud = NULL,
};
