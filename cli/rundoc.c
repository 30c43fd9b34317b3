/* rundoc.c - a run's status as one JSON document, read from its header
 * and step hashes (docs/protocol.md), and its rendering for people.
 * Used by `weft status` and by `weft run` for its final report. The
 * document itself is built by common/rundoc.c, which the scheduler's HTTP
 * API shares; this file reads Redis and prints.
 *
 * The document (docs/cli.md):
 *   {"id", "status", "workflow", "digest", "error", "created", "started",
 *    "finished", "steps": {"<id>": {"status", "attempts", "queued",
 *    "started", "finished", "worker", "error", "waiting", "via", "wait",
 * "by"}}, "breakers": {"<name>": {"state", "failures", "until", ...}}} where
 * breakers are the circuit breakers the run's steps go through that exist in
 * Redis (the CLI adds them; the HTTP API has GET /v1/breakers). Times are ms
 * since the epoch or null; attempts is 0 before the first dispatch. Steps
 * follow the definition's pre-order when the definition is in Redis, else field
 * order sorted by id.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "diag.h"
#include "rundoc.h"

/* Widest step column of the table; longer ids are shown whole but push
 * the row. */
#define STEP_COL_MAX 40

struct wf *rundoc_load_def(redisContext *c, const struct keys *k,
                           const char *digest)
{
    char key[KEYS_MAX];
    if (digest == NULL || keys_def(k, digest, key) == 0)
        return NULL;
    redisReply *r = cli_cmd(c, "GET %s", key);
    struct wf *wf = NULL;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        struct diag d;
        diag_init(&d, key);
        if (wf_load_canonical(r->str, r->len, &wf, &d) != 0)
            wf = NULL;
        diag_deinit(&d);
    }
    freeReplyObject(r);
    return wf;
}

/* The breakers wf's steps may use, read from Redis: {name: fields} for
 * those that exist. NULL on OOM or a Redis error. */
static json_t *load_breakers(redisContext *c, const struct keys *k,
                             const struct wf *wf)
{
    json_t *names = rundoc_breaker_names(wf), *out = json_object();
    size_t i;
    json_t *v;
    if (names == NULL || out == NULL)
        goto fail;
    json_array_foreach(names, i, v)
    {
        char key[KEYS_MAX];
        const char *name = json_string_value(v);
        if (keys_breaker(k, name, key) == 0)
            continue;
        redisReply *r = cli_cmd(c, "HGETALL %s", key);
        if (r == NULL)
            goto fail;
        json_t *b = rundoc_breaker(r);
        freeReplyObject(r);
        if (b != NULL && json_object_set_new(out, name, b) != 0)
            goto fail;
    }
    json_decref(names);
    return out;
fail:
    json_decref(names);
    json_decref(out);
    return NULL;
}

int rundoc_load(redisContext *c, const struct keys *k, const char *run,
                json_t **doc, struct wf **wf_out)
{
    char hkey[KEYS_MAX], skey[KEYS_MAX];
    if (wf_out != NULL)
        *wf_out = NULL;
    if (keys_run(k, KEYS_RUN, run, hkey) == 0 ||
        keys_run(k, KEYS_RUN_STEPS, run, skey) == 0) {
        cli_error("'%s' is not a valid run id", run);
        return WEFT_EINVAL;
    }
    redisReply *h = cli_cmd(c, "HGETALL %s", hkey);
    if (h == NULL)
        return WEFT_EREDIS;
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
        freeReplyObject(h);
        return WEFT_ENOENT;
    }
    redisReply *s = cli_cmd(c, "HGETALL %s", skey);
    if (s == NULL) {
        freeReplyObject(h);
        return WEFT_EREDIS;
    }
    if (s->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(h);
        freeReplyObject(s);
        cli_error("redis: unexpected reply to HGETALL %s", skey);
        return WEFT_EREDIS;
    }
    /* Without it, the table follows the hash. */
    struct wf *wf = rundoc_load_def(c, k, cli_reply_str(h, "digest"));
    json_t *d = NULL;
    int rc = rundoc_build(run, h, s, wf, &d);
    freeReplyObject(h);
    freeReplyObject(s);
    if (rc != 0) {
        cli_error("out of memory");
        wf_free(wf);
        return rc;
    }
    json_t *brk = load_breakers(c, k, wf);
    if (brk == NULL || json_object_set_new(d, "breakers", brk) != 0) {
        cli_error("cannot read the run's circuit breakers");
        json_decref(d);
        wf_free(wf);
        return WEFT_EREDIS;
    }
    *doc = d;
    if (wf_out != NULL)
        *wf_out = wf;
    else
        wf_free(wf);
    return 0;
}

static int64_t doc_time(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static const char *doc_str(const json_t *o, const char *key, const char *d)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : d;
}

/* Duration of something started at `started`: until finished, or until
 * now while it still runs. */
static int64_t span(int64_t started, int64_t finished, const char *status,
                    int64_t now)
{
    if (started < 0)
        return -1;
    if (finished >= started)
        return finished - started;
    if (status != NULL && (strcmp(status, "running") == 0))
        return now - started;
    return -1;
}

/* The table of the run's circuit breakers, when any exists. */
static void print_breakers(const json_t *brk, FILE *out)
{
    if (json_object_size(brk) == 0)
        return;
    int w = 7;
    const char *name;
    const json_t *b;
    json_object_foreach((json_t *)brk, name, b)
    {
        int len = (int)strlen(name);
        if (len > w)
            w = len < STEP_COL_MAX ? len : STEP_COL_MAX;
    }
    fprintf(out, "\n%-*s  %-9s  %8s  %s\n", w, "BREAKER", "STATE", "FAILURES",
            "PROBE AFTER");
    json_object_foreach((json_t *)brk, name, b)
    {
        char t[64] = "-";
        const char *state = doc_str(b, "state", "-");
        if (strcmp(state, "open") == 0)
            fmt_time(doc_time(b, "until"), t, sizeof(t));
        fprintf(out, "%-*s  %-9s  %8" PRId64 "  %s\n", w, name, state,
                doc_time(b, "failures") < 0 ? (int64_t)0
                                            : doc_time(b, "failures"),
                t);
    }
}

/* Below a step that waits for a person: what for, and how to answer. */
static void print_wait(FILE *out, const char *run, const char *id,
                       const json_t *s, int indent)
{
    const json_t *w = json_object_get(s, "wait");
    if (!json_is_object(w))
        return;
    if (strcmp(doc_str(w, "kind", ""), "approval") != 0) {
        fprintf(out,
                "%*s  waiting: escalated; answer with weft resolve %s %s "
                "--retry|--skip|--fail\n",
                indent, "", run, id);
        return;
    }
    fprintf(out, "%*s  waiting: approval", indent, "");
    const json_t *names = json_object_get(w, "approvers");
    size_t i;
    const json_t *n;
    json_array_foreach((json_t *)names, i, n)
        fprintf(out, "%s%s", i ? ", " : " by ",
                json_is_string(n) ? json_string_value(n) : "?");
    int64_t deadline = doc_time(w, "deadline");
    if (deadline >= 0) {
        char t[64];
        fmt_time(deadline, t, sizeof(t));
        fprintf(out, " until %s", t);
    }
    const char *msg = doc_str(w, "message", NULL);
    fprintf(out, "%s%s; answer with weft approve %s %s [--reject]\n",
            msg ? ": " : "", msg ? msg : "", run, id);
}

void rundoc_print(const json_t *doc, const struct wf *wf, FILE *out)
{
    int64_t now = cli_now_ms();
    char t[64], dur[32];
    const char *status = doc_str(doc, "status", "-");
    fprintf(out, "run       %s\n", doc_str(doc, "id", "-"));
    fprintf(out, "workflow  %s\n", doc_str(doc, "workflow", "-"));
    fprintf(out, "status    %s\n", status);
    fmt_time(doc_time(doc, "created"), t, sizeof(t));
    fprintf(out, "created   %s\n", t);
    fmt_time(doc_time(doc, "started"), t, sizeof(t));
    fprintf(out, "started   %s\n", t);
    fmt_time(doc_time(doc, "finished"), t, sizeof(t));
    int64_t took = span(doc_time(doc, "started"), doc_time(doc, "finished"),
                        "running", now);
    fmt_duration(took, dur, sizeof(dur));
    fprintf(out, "finished  %s%s%s%s\n", t, took >= 0 ? " (" : "",
            took >= 0 ? dur : "", took >= 0 ? ")" : "");
    fprintf(out, "error     %s\n", doc_str(doc, "error", "-"));

    const json_t *steps = json_object_get(doc, "steps");
    if (json_object_size(steps) == 0)
        return;
    int w = 4;
    const char *id;
    const json_t *s;
    json_object_foreach((json_t *)steps, id, s)
    {
        const struct wf_step *ws = wf ? wf_find_step(wf, id, strlen(id)) : NULL;
        int len = (int)strlen(id) + 2 * (ws ? (int)ws->depth : 0);
        if (len > w)
            w = len < STEP_COL_MAX ? len : STEP_COL_MAX;
    }
    fprintf(out, "\n%-*s  %-17s  %8s  %9s  %s\n", w, "STEP", "STATUS",
            "ATTEMPTS", "DURATION", "WORKER");
    json_object_foreach((json_t *)steps, id, s)
    {
        const struct wf_step *ws = wf ? wf_find_step(wf, id, strlen(id)) : NULL;
        int depth = ws ? (int)ws->depth : 0;
        const char *st = doc_str(s, "status", "-");
        fmt_duration(
            span(doc_time(s, "started"), doc_time(s, "finished"), st, now), dur,
            sizeof(dur));
        fprintf(out, "%*s%-*s  %-17s  %8" PRId64 "  %9s  %s\n", 2 * depth, "",
                w - 2 * depth, id, st,
                doc_time(s, "attempts") < 0 ? (int64_t)0
                                            : doc_time(s, "attempts"),
                dur, doc_str(s, "worker", "-"));
        const char *err = doc_str(s, "error", NULL);
        if (err != NULL && err[0] != '\0' && strcmp(st, "success") != 0)
            fprintf(out, "%*s  error: %s\n", 2 * depth, "", err);
        const char *waiting = doc_str(s, "waiting", NULL);
        if (waiting != NULL) {
            const json_t *b =
                json_object_get(json_object_get(doc, "breakers"), waiting);
            fprintf(out, "%*s  waiting: circuit breaker '%s' is %s\n",
                    2 * depth, "", waiting, doc_str(b, "state", "open"));
        }
        const char *via = doc_str(s, "via", NULL);
        if (via != NULL)
            fprintf(out,
                    "%*s  via: fallback persona '%s' (its breaker was "
                    "open)\n",
                    2 * depth, "", via);
        print_wait(out, doc_str(doc, "id", "RUN"), id, s, 2 * depth);
    }
    print_breakers(json_object_get(doc, "breakers"), out);
}
