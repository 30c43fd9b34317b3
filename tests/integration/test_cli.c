/* test_cli.c - the real `weft` binary, run as a user runs it: argv in,
 * exit status, stdout and stderr out (procs_run, no shell).
 *
 * validate and graph need nothing else. submit, status, watch, list,
 * inspect and cancel run against a private redis-server (redis_fixture)
 * seeded by the test, without a scheduler: the test checks what the
 * command wrote to Redis, or writes by hand what a scheduler would have.
 * `weft run` goes end to end with the built weft-scheduler and
 * weft-worker, once with its own private Redis and once with --redis.
 */
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "alloc.h"
#include "diag.h"
#include "procs.h"
#include "redis_fixture.h"
#include "wfdef.h"
#include "wire.h"

#define SRC(rel)   WEFT_SOURCE_ROOT "/" rel
#define NOOP_CHAIN SRC("tests/data/cli/noop-chain.yml")
#define TASK_JSON  SRC("tests/data/cli/task.json")
#define BAD_YML    SRC("tests/data/cli/bad.yml")

/* Output of one weft invocation. */
struct res {
    int rc;
    char *out;
    char *err;
};

static struct redis_fixture fx;
static redisContext *rc_;
static char url_env[REDIS_FIXTURE_PATH_MAX + 32];

/* Runs weft with args (NULL-ended) and extra env "K=V" (NULL-ended or
 * NULL). */
static struct res weft_env(const char *const env[], const char *const *args)
{
    char bin[4096];
    procs_binary("cli/weft", bin, sizeof(bin));
    const char *argv[64] = {bin};
    size_t n = 1;
    for (size_t i = 0; args[i] != NULL && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct res r = {0};
    r.rc = procs_run(argv, env, &r.out, &r.err);
    cr_assert_not_null(r.out);
    cr_assert_not_null(r.err);
    return r;
}

#define WEFT(...) weft_env(NULL, (const char *const[]){__VA_ARGS__, NULL})
#define WEFT_R(...)                                                            \
    weft_env((const char *const[]){url_env, NULL},                             \
             (const char *const[]){__VA_ARGS__, NULL})

static void res_free(struct res *r)
{
    free(r->out);
    free(r->err);
}

static bool matches(const char *text, const char *pattern)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert_not_null(v, "not one JSON document (%s): %s", e.text, text);
    return v;
}

static struct wf *load(const char *path)
{
    struct diag d;
    diag_init(&d, path);
    struct wf *wf = NULL;
    int rc = wf_load_file(path, &wf, &d);
    if (rc != 0)
        diag_print(&d, stderr);
    diag_deinit(&d);
    cr_assert_eq(rc, 0, "%s does not load", path);
    return wf;
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc_, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "redis: %s", rc_->errstr);
    cr_assert_neq(r->type, REDIS_REPLY_ERROR, "redis: %s", r->str);
    return r;
}

static const char *field(const redisReply *fields, const char *name)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        if (strcmp(fields->element[i]->str, name) == 0)
            return fields->element[i + 1]->str;
    }
    return NULL;
}

static void redis_up(void)
{
    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
    rc_ = redisConnectUnix(fx.sock);
    cr_assert(rc_ != NULL && rc_->err == 0);
    snprintf(url_env, sizeof(url_env), "REDIS_URL=%s", fx.url);
}

static void redis_down(void)
{
    if (rc_ != NULL)
        redisFree(rc_);
    rc_ = NULL;
    redis_fixture_stop(&fx);
}

/* ---- validate ---- */

Test(cli_validate, valid_file_exits_0_with_ok_line)
{
    struct res r = WEFT("validate", NOOP_CHAIN);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, NOOP_CHAIN ": ok\n");
    cr_assert_str_eq(r.err, "");
    res_free(&r);
}

Test(cli_validate, invalid_file_exits_1_with_gcc_style_lines)
{
    struct res r = WEFT("validate", BAD_YML, NOOP_CHAIN);
    cr_assert_eq(r.rc, 1);
    /* Every problem, in file order, FILE:LINE:COL: error: MESSAGE. */
    const char *want1 = BAD_YML ":5:5: error: unknown key 'dependancies' "
                                "(did you mean 'dependencies'?)\n";
    const char *want2 = BAD_YML ":7:11: error: unknown step type "
                                "'teleport'";
    cr_assert_eq(strncmp(r.err, want1, strlen(want1)), 0, "stderr: %s", r.err);
    cr_assert_eq(strncmp(r.err + strlen(want1), want2, strlen(want2)), 0,
                 "stderr: %s", r.err);
    cr_assert_str_eq(r.out,
                     BAD_YML ": invalid (2 errors)\n" NOOP_CHAIN ": ok\n");
    res_free(&r);
}

Test(cli_validate, missing_file_is_invalid_not_a_crash)
{
    struct res r = WEFT("validate", "/nonexistent/wf.yml");
    cr_assert_eq(r.rc, 1);
    cr_assert(matches(r.err, "^/nonexistent/wf.yml:0:0: error: "), "%s", r.err);
    res_free(&r);
}

Test(cli_validate, usage_errors_exit_2)
{
    struct res r = WEFT("validate");
    cr_assert_eq(r.rc, 2);
    cr_assert(matches(r.err, "usage: weft validate"));
    res_free(&r);
    r = WEFT("validate", "--bogus", NOOP_CHAIN);
    cr_assert_eq(r.rc, 2);
    cr_assert(matches(r.err, "unknown option '--bogus'"));
    res_free(&r);
    /* A flag of another command is unknown here too. */
    r = WEFT("validate", "--format", "dot", NOOP_CHAIN);
    cr_assert_eq(r.rc, 2);
    res_free(&r);
    r = WEFT("frobnicate");
    cr_assert_eq(r.rc, 2);
    res_free(&r);
}

Test(cli_validate, json_document_has_every_file_and_error)
{
    struct res r = WEFT("validate", "--json", BAD_YML, NOOP_CHAIN);
    cr_assert_eq(r.rc, 1);
    cr_assert_str_eq(r.err, "");
    json_t *doc = parse_json(r.out);
    cr_assert(json_is_false(json_object_get(doc, "valid")));
    json_t *files = json_object_get(doc, "files");
    cr_assert_eq(json_array_size(files), 2);
    json_t *bad = json_array_get(files, 0);
    cr_assert_str_eq(json_string_value(json_object_get(bad, "file")), BAD_YML);
    cr_assert(json_is_false(json_object_get(bad, "valid")));
    cr_assert(json_is_null(json_object_get(bad, "digest")));
    json_t *errs = json_object_get(bad, "errors");
    cr_assert_eq(json_array_size(errs), 2);
    json_t *e0 = json_array_get(errs, 0);
    cr_assert_eq(json_integer_value(json_object_get(e0, "line")), 5);
    cr_assert_eq(json_integer_value(json_object_get(e0, "column")), 5);
    cr_assert_str_eq(json_string_value(json_object_get(e0, "severity")),
                     "error");
    cr_assert_str_eq(json_string_value(json_object_get(e0, "message")),
                     "unknown key 'dependancies' (did you mean "
                     "'dependencies'?)");
    json_t *ok = json_array_get(files, 1);
    cr_assert(json_is_true(json_object_get(ok, "valid")));
    cr_assert_eq(json_integer_value(json_object_get(ok, "steps")), 8);
    struct wf *wf = load(NOOP_CHAIN);
    cr_assert_str_eq(json_string_value(json_object_get(ok, "digest")),
                     wf->digest);
    cr_assert_eq(json_array_size(json_object_get(ok, "errors")), 0);
    wf_free(wf);
    json_decref(doc);
    res_free(&r);

    r = WEFT("validate", NOOP_CHAIN, "--json");
    cr_assert_eq(r.rc, 0);
    doc = parse_json(r.out);
    cr_assert(json_is_true(json_object_get(doc, "valid")));
    json_decref(doc);
    res_free(&r);
}

/* ---- graph ---- */

Test(cli_graph, dot_draws_nodes_clusters_and_condition_labels)
{
    struct res r = WEFT("graph", NOOP_CHAIN);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    const char *o = r.out;
    cr_assert(matches(o, "^digraph \"noop-chain\" \\{\n"));
    cr_assert(matches(o, "\"first\" \\[label=\"first\\\\nnoop\""));
    cr_assert(matches(o, "subgraph \"cluster_fan\" \\{\n *label=\"fan: "
                         "parallel \\(all\\)\";"));
    cr_assert(matches(o, "subgraph \"cluster_choose\" \\{"));
    cr_assert(matches(o, "subgraph \"cluster_choose/then\" \\{\n *label="
                         "\"then\";"));
    cr_assert(matches(o, "subgraph \"cluster_choose/else\" \\{\n *label="
                         "\"else\";"));
    cr_assert(matches(o, "\"choose\" -> \"feature-path\" \\[label=\"task.type "
                         "=== 'feature'\"\\];"));
    cr_assert(matches(o, "\"choose\" -> \"other-path\" \\[label=\"else\"\\];"));
    cr_assert(matches(o, "\"first\" -> \"fan\";"));
    cr_assert(matches(o, "\"choose/end\" -> \"last\";"));
    cr_assert(matches(o, "\n\\}\n$"));
    /* Deterministic. */
    struct res again = WEFT("graph", "--format=dot", NOOP_CHAIN);
    cr_assert_str_eq(again.out, r.out);
    res_free(&again);
    res_free(&r);
}

Test(cli_graph, mermaid_draws_subgraphs_and_labelled_edges)
{
    struct res r = WEFT("graph", NOOP_CHAIN, "--format", "mermaid");
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    const char *o = r.out;
    cr_assert(matches(o, "\nflowchart TD\n"));
    cr_assert(matches(o, "subgraph c1\\[\"fan: parallel \\(all\\)\"\\]"));
    cr_assert(matches(o, "subgraph c4_then\\[\"then\"\\]"));
    cr_assert(matches(o, "subgraph c4_else\\[\"else\"\\]"));
    cr_assert(matches(o, "s4\\{\"choose\"\\}"));
    cr_assert(matches(o, "s4 -->\\|\"task.type === 'feature'\"\\| s5"));
    cr_assert(matches(o, "s4 -->\\|\"else\"\\| s6"));
    res_free(&r);
}

Test(cli_graph, bad_format_is_usage_and_invalid_file_exits_1)
{
    struct res r = WEFT("graph", NOOP_CHAIN, "--format", "png");
    cr_assert_eq(r.rc, 2);
    res_free(&r);
    r = WEFT("graph");
    cr_assert_eq(r.rc, 2);
    res_free(&r);
    r = WEFT("graph", BAD_YML);
    cr_assert_eq(r.rc, 1);
    cr_assert_str_eq(r.out, "");
    cr_assert(matches(r.err, "bad.yml:5:5: error: unknown key"));
    res_free(&r);
}

/* Every shipped workflow draws, with a node for each step and a cluster
 * for each composite, in both formats. */
static void check_shipped(const char *rel)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", WEFT_SOURCE_ROOT, rel);
    struct wf *wf = load(path);
    struct res d = WEFT("graph", path);
    struct res m = WEFT("graph", path, "--format", "mermaid");
    cr_assert_eq(d.rc, 0, "%s: %s", rel, d.err);
    cr_assert_eq(m.rc, 0, "%s: %s", rel, m.err);
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        const struct wf_step *s = &wf->steps[i];
        char want[512];
        snprintf(want, sizeof(want), "\"%s\" [label=\"%s", s->id, s->id);
        cr_assert_not_null(strstr(d.out, want), "%s: no node %s", rel, s->id);
        snprintf(want, sizeof(want), "s%u", (unsigned)i);
        cr_assert_not_null(strstr(m.out, want), "%s: no node %s", rel, s->id);
        if (s->type == WF_STEP_PARALLEL) {
            snprintf(want, sizeof(want), "label=\"%s: parallel (%s)\"", s->id,
                     wf_wait_for_name(s->wait_for));
            cr_assert_not_null(strstr(d.out, want), "%s: %s", rel, want);
        }
        if (s->type == WF_STEP_CONDITIONAL) {
            snprintf(want, sizeof(want), "subgraph \"cluster_%s\"", s->id);
            cr_assert_not_null(strstr(d.out, want), "%s: %s", rel, want);
        }
        if (s->condition != NULL && s->type != WF_STEP_CONDITIONAL &&
            s->ndeps > 0) {
            /* The seed's conditions hold no character DOT escapes. */
            snprintf(want, sizeof(want), "label=\"if: %s\"",
                     expr_source(s->condition));
            cr_assert_not_null(strstr(d.out, want), "%s: %s", rel, want);
        }
    }
    wf_free(wf);
    res_free(&d);
    res_free(&m);
}

Test(cli_graph, shipped_workflows_draw_in_both_formats)
{
    check_shipped("workflows/project-loop.yml");
    check_shipped("workflows/hotfix.yml");
    check_shipped("workflows/feature.yml");
}

/* ---- submit ---- */

TestSuite(cli_redis, .init = redis_up, .fini = redis_down);

Test(cli_redis, submit_pins_the_definition_and_adds_the_task)
{
    struct res r = WEFT_R("submit", NOOP_CHAIN, "--task", TASK_JSON);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    cr_assert(matches(r.out, "^[0-9]{13}-[0-9a-f]{8}\n$"), "%s", r.out);
    char id[64];
    snprintf(id, sizeof(id), "%.*s", (int)strcspn(r.out, "\n"), r.out);

    struct wf *wf = load(NOOP_CHAIN);
    redisReply *def = cmd("GET weft:def:%s", wf->digest);
    cr_assert_eq(def->type, REDIS_REPLY_STRING);
    cr_assert_eq((size_t)def->len, wf->canonical_len);
    cr_assert_eq(memcmp(def->str, wf->canonical, wf->canonical_len), 0);
    freeReplyObject(def);

    redisReply *x = cmd("XRANGE weft:tasks - +");
    cr_assert_eq(x->elements, 1);
    const redisReply *f = x->element[0]->element[1];
    cr_assert_str_eq(field(f, "run"), id);
    cr_assert_str_eq(field(f, "digest"), wf->digest);
    cr_assert_str_eq(field(f, "workflow"), "noop-chain");
    cr_assert_str_eq(field(f, "type"), "feature");
    json_t *task = parse_json(field(f, "task"));
    cr_assert_str_eq(json_string_value(json_object_get(task, "project")),
                     "demo");
    json_decref(task);
    freeReplyObject(x);

    /* The schedulers' group exists from the start of the stream. */
    redisReply *g = cmd("XINFO GROUPS weft:tasks");
    cr_assert_eq(g->elements, 1);
    freeReplyObject(g);
    wf_free(wf);
    res_free(&r);
}

Test(cli_redis, submit_json_and_prefix)
{
    struct res r = WEFT_R("submit", NOOP_CHAIN, "--json", "--prefix", "alt");
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    json_t *doc = parse_json(r.out);
    const char *id = json_string_value(json_object_get(doc, "run"));
    cr_assert_not_null(id);
    redisReply *x = cmd("XRANGE alt:tasks - +");
    cr_assert_eq(x->elements, 1);
    const redisReply *f = x->element[0]->element[1];
    cr_assert_str_eq(field(f, "run"), id);
    /* No task file: an empty task, an empty type. */
    cr_assert_str_eq(field(f, "task"), "{}");
    cr_assert_str_eq(field(f, "type"), "");
    freeReplyObject(x);
    x = cmd("EXISTS weft:tasks");
    cr_assert_eq(x->integer, 0);
    freeReplyObject(x);
    json_decref(doc);
    res_free(&r);
}

Test(cli_redis, submit_tasks_file_pipelines_one_run_per_line)
{
    char path[] = "/tmp/weft-cli-tasks-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *lines = "{\"type\":\"a\",\"n\":1}\n\n{\"type\":\"b\"}\n"
                        "{\"n\":3}";
    cr_assert_eq(write(fd, lines, strlen(lines)), (ssize_t)strlen(lines));
    close(fd);
    struct res r = WEFT_R("submit", NOOP_CHAIN, "--tasks", path);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    cr_assert(matches(r.out, "^([0-9]+-[0-9a-f]{8}\n){3}$"), "%s", r.out);
    redisReply *x = cmd("XRANGE weft:tasks - +");
    cr_assert_eq(x->elements, 3);
    cr_assert_str_eq(field(x->element[0]->element[1], "type"), "a");
    cr_assert_str_eq(field(x->element[1]->element[1], "type"), "b");
    cr_assert_str_eq(field(x->element[2]->element[1], "type"), "");
    /* Ids printed in submission order. */
    cr_assert_eq(strncmp(r.out, field(x->element[0]->element[1], "run"),
                         strlen(field(x->element[0]->element[1], "run"))),
                 0);
    freeReplyObject(x);
    res_free(&r);
    unlink(path);
}

Test(cli_redis, submit_bad_task_lines_submit_nothing)
{
    char path[] = "/tmp/weft-cli-tasks-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *lines = "{\"ok\":1}\n[1, 2]\n{\"broken\":\n";
    cr_assert_eq(write(fd, lines, strlen(lines)), (ssize_t)strlen(lines));
    close(fd);
    struct res r = WEFT_R("submit", NOOP_CHAIN, "--tasks", path);
    cr_assert_eq(r.rc, 1);
    char want[256];
    snprintf(want, sizeof(want),
             "%s:2:1: error: a task must be a JSON object\n", path);
    cr_assert_eq(strncmp(r.err, want, strlen(want)), 0, "%s", r.err);
    snprintf(want, sizeof(want), "\n%s:3:", path);
    cr_assert_not_null(strstr(r.err, want), "%s", r.err);
    redisReply *x = cmd("EXISTS weft:tasks");
    cr_assert_eq(x->integer, 0);
    freeReplyObject(x);
    res_free(&r);
    unlink(path);

    r = WEFT_R("submit", NOOP_CHAIN, "--task", "/nonexistent.json");
    cr_assert_eq(r.rc, 1);
    res_free(&r);
}

Test(cli_redis, submit_without_file_goes_through_the_coordinator)
{
    struct res r = WEFT_R("submit", "--task", TASK_JSON);
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    res_free(&r);
    redisReply *x = cmd("XRANGE weft:tasks - +");
    cr_assert_eq(x->elements, 1);
    redisReply *f = x->element[0]->element[1];
    int has_digest = 0, has_task = 0;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        has_digest |= strcmp(f->element[i]->str, "digest") == 0;
        has_task |= strcmp(f->element[i]->str, "task") == 0;
    }
    cr_assert(!has_digest, "a routed task pins no definition");
    cr_assert(has_task);
    freeReplyObject(x);
}

/* ---- status, list, cancel, watch on runs written by hand ---- */

/* Writes what a scheduler would have for a run of noop-chain. */
static void seed_run(const char *id, const char *status, long long created,
                     struct wf *wf)
{
    freeReplyObject(cmd("SET weft:def:%s %b", wf->digest, wf->canonical,
                        wf->canonical_len));
    freeReplyObject(cmd("HSET weft:run:%s status %s workflow noop-chain "
                        "digest %s created %lld started %lld",
                        id, status, wf->digest, created, created));
    if (strcmp(status, "success") == 0 || strcmp(status, "failed") == 0)
        freeReplyObject(
            cmd("HSET weft:run:%s finished %lld error %s", id, created + 1500,
                strcmp(status, "failed") == 0 ? "a step failed" : ""));
    freeReplyObject(cmd("HSET weft:run:%s:steps last pending first success "
                        "first:attempt 2 first:started %lld first:finished "
                        "%lld first:worker w-1 fan running fan:started %lld "
                        "left queued left:attempt 1 right pending choose "
                        "pending feature-path pending other-path pending",
                        id, created + 10, created + 40, created + 50));
    freeReplyObject(cmd("ZADD weft:runs %lld %s", created, id));
}

Test(cli_redis, status_json_follows_the_definition_order)
{
    struct wf *wf = load(NOOP_CHAIN);
    seed_run("r1", "running", 1700000000000LL, wf);
    struct res r = WEFT_R("status", "r1", "--json");
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    json_t *doc = parse_json(r.out);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "id")), "r1");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "status")),
                     "running");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "workflow")),
                     "noop-chain");
    cr_assert_eq(json_integer_value(json_object_get(doc, "created")),
                 1700000000000LL);
    cr_assert(json_is_null(json_object_get(doc, "finished")));
    cr_assert(json_is_null(json_object_get(doc, "error")));
    json_t *steps = json_object_get(doc, "steps");
    cr_assert_eq(json_object_size(steps), wf->nsteps);
    /* Pre-order of the definition, not the hash's order. */
    void *it = json_object_iter(steps);
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        cr_assert_str_eq(json_object_iter_key(it), wf->steps[i].id);
        it = json_object_iter_next(steps, it);
    }
    json_t *first = json_object_get(steps, "first");
    cr_assert_str_eq(json_string_value(json_object_get(first, "status")),
                     "success");
    cr_assert_eq(json_integer_value(json_object_get(first, "attempts")), 2);
    cr_assert_eq(json_integer_value(json_object_get(first, "started")),
                 1700000000010LL);
    cr_assert_str_eq(json_string_value(json_object_get(first, "worker")),
                     "w-1");
    json_t *right = json_object_get(steps, "right");
    cr_assert_eq(json_integer_value(json_object_get(right, "attempts")), 0);
    cr_assert(json_is_null(json_object_get(right, "worker")));
    json_decref(doc);
    res_free(&r);

    r = WEFT_R("status", "r1");
    cr_assert_eq(r.rc, 0);
    cr_assert(matches(r.out, "status +running"));
    cr_assert(matches(r.out, "\nSTEP +STATUS +ATTEMPTS +DURATION +WORKER\n"));
    cr_assert(matches(r.out, "\nfirst +success +2 +30ms +w-1\n"), "%s", r.out);
    cr_assert(matches(r.out, "\n  left +queued +1 "), "%s", r.out);
    res_free(&r);
    wf_free(wf);
}

Test(cli_redis, status_shows_breaker_waits_diversions_and_breakers)
{
    const char *yaml = "name: guarded\n"
                       "steps:\n"
                       "  - {id: ask, type: persona-request, persona: qa,\n"
                       "     fallback_persona: spare}\n"
                       "  - {id: hold, type: persona-request, persona: qa,\n"
                       "     on_breaker_open: wait}\n"
                       "  - {id: push, type: git-operation, operation: push}\n";
    struct diag d;
    diag_init(&d, "guarded.yml");
    struct wf *wf = NULL;
    cr_assert_eq(wf_load_buffer(yaml, strlen(yaml), "guarded", &wf, &d), 0);
    diag_deinit(&d);
    freeReplyObject(cmd("SET weft:def:%s %b", wf->digest, wf->canonical,
                        wf->canonical_len));
    freeReplyObject(cmd("HSET weft:run:g1 status running workflow guarded "
                        "digest %s created 1700000000000",
                        wf->digest));
    freeReplyObject(cmd("HSET weft:run:g1:steps ask queued ask:attempt 1 "
                        "ask:via spare hold pending hold:waiting qa "
                        "push pending push:waiting git:origin"));
    freeReplyObject(cmd("HSET weft:breaker:qa state open failures 5 "
                        "until 1700000060000 trips 1"));
    freeReplyObject(cmd("HSET weft:breaker:git:origin state closed "
                        "failures 1"));
    struct res r = WEFT_R("status", "g1", "--json");
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    json_t *doc = parse_json(r.out);
    json_t *steps = json_object_get(doc, "steps");
    json_t *ask = json_object_get(steps, "ask"),
           *hold = json_object_get(steps, "hold");
    cr_assert_str_eq(json_string_value(json_object_get(ask, "via")), "spare");
    cr_assert(json_is_null(json_object_get(ask, "waiting")));
    cr_assert_str_eq(json_string_value(json_object_get(hold, "waiting")), "qa");
    json_t *brk = json_object_get(doc, "breakers");
    cr_assert_eq(json_object_size(brk), 2, "qa and git:origin; spare has none");
    json_t *qa = json_object_get(brk, "qa");
    cr_assert_str_eq(json_string_value(json_object_get(qa, "state")), "open");
    cr_assert_eq(json_integer_value(json_object_get(qa, "failures")), 5);
    cr_assert_eq(json_integer_value(json_object_get(qa, "until")),
                 1700000060000LL);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(brk, "git:origin"), "state")),
                     "closed");
    json_decref(doc);
    res_free(&r);

    r = WEFT_R("status", "g1");
    cr_assert_eq(r.rc, 0);
    cr_assert(matches(r.out, "\n  via: fallback persona 'spare'"), "%s", r.out);
    cr_assert(matches(r.out, "\n  waiting: circuit breaker 'qa' is open\n"),
              "%s", r.out);
    cr_assert(matches(r.out, "\n  waiting: circuit breaker 'git:origin' is "
                             "closed\n"),
              "%s", r.out);
    cr_assert(matches(r.out, "\nBREAKER +STATE +FAILURES +PROBE AFTER\n"), "%s",
              r.out);
    cr_assert(matches(r.out, "\nqa +open +5 +2023-11-14T22:14:20.000Z\n"), "%s",
              r.out);
    cr_assert(matches(r.out, "\ngit:origin +closed +1 +-\n"), "%s", r.out);
    res_free(&r);
    wf_free(wf);
}

Test(cli_redis, status_of_unknown_run_exits_1)
{
    struct res r = WEFT_R("status", "nope");
    cr_assert_eq(r.rc, 1);
    cr_assert(matches(r.err, "run nope not found"));
    res_free(&r);
    r = WEFT_R("status", "bad:id");
    cr_assert_eq(r.rc, 2);
    res_free(&r);
}

Test(cli_redis, list_newest_first_with_status_filter_and_limit)
{
    struct wf *wf = load(NOOP_CHAIN);
    seed_run("old", "success", 1700000000000LL, wf);
    seed_run("mid", "failed", 1700000001000LL, wf);
    seed_run("new", "running", 1700000002000LL, wf);
    /* A run whose header expired is left out. */
    freeReplyObject(cmd("ZADD weft:runs 1700000003000 gone"));

    struct res r = WEFT_R("list", "--json");
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    json_t *doc = parse_json(r.out);
    json_t *runs = json_object_get(doc, "runs");
    cr_assert_eq(json_array_size(runs), 3);
    const char *order[] = {"new", "mid", "old"};
    for (size_t i = 0; i < 3; i++) {
        json_t *x = json_array_get(runs, i);
        cr_assert_str_eq(json_string_value(json_object_get(x, "id")), order[i]);
        cr_assert_str_eq(json_string_value(json_object_get(x, "workflow")),
                         "noop-chain");
    }
    cr_assert_eq(
        json_integer_value(json_object_get(json_array_get(runs, 0), "created")),
        1700000002000LL);
    json_decref(doc);
    res_free(&r);

    r = WEFT_R("list", "--status", "running", "--json");
    doc = parse_json(r.out);
    runs = json_object_get(doc, "runs");
    cr_assert_eq(json_array_size(runs), 1);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(runs, 0), "status")),
        "running");
    json_decref(doc);
    res_free(&r);

    r = WEFT_R("list", "--limit", "1");
    cr_assert_eq(r.rc, 0);
    cr_assert(matches(r.out, "^RUN +STATUS +WORKFLOW +CREATED +TOOK\nnew "
                             "+running +noop-chain +2023-11-14T22:13:22.000Z"),
              "%s", r.out);
    res_free(&r);

    r = WEFT_R("list", "--status", "bogus");
    cr_assert_eq(r.rc, 2);
    res_free(&r);
    wf_free(wf);
}

Test(cli_redis, cancel_adds_a_cancel_event)
{
    struct wf *wf = load(NOOP_CHAIN);
    seed_run("c1", "running", 1700000000000LL, wf);
    seed_run("c2", "success", 1700000000000LL, wf);
    struct res r = WEFT_R("cancel", "c1");
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    redisReply *x = cmd("XRANGE weft:events - +");
    cr_assert_eq(x->elements, 1);
    const redisReply *f = x->element[0]->element[1];
    cr_assert_str_eq(field(f, "type"), "cancel");
    cr_assert_str_eq(field(f, "run"), "c1");
    cr_assert_str_eq(field(f, "reason"), "cancelled by user");
    freeReplyObject(x);
    res_free(&r);

    /* A finished run is left alone; an unknown one is an error. */
    r = WEFT_R("cancel", "c2");
    cr_assert_eq(r.rc, 0);
    cr_assert(matches(r.out, "already ended: success"));
    res_free(&r);
    r = WEFT_R("cancel", "nope");
    cr_assert_eq(r.rc, 1);
    res_free(&r);
    x = cmd("XLEN weft:events");
    cr_assert_eq(x->integer, 1);
    freeReplyObject(x);
    wf_free(wf);
}

static void hist(const char *run, const char *type, const char *step,
                 const char *status)
{
    freeReplyObject(cmd("XADD weft:run:%s:history * type %s step %s status "
                        "%s ts 1700000000000 attempt 1",
                        run, type, step, status));
}

Test(cli_redis, watch_prints_history_and_exits_by_outcome)
{
    struct wf *wf = load(NOOP_CHAIN);
    seed_run("w1", "success", 1700000000000LL, wf);
    hist("w1", "run", "", "running");
    hist("w1", "step", "first", "queued");
    hist("w1", "step", "first", "success");
    hist("w1", "run", "", "success");
    struct res r = WEFT_R("watch", "w1");
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    cr_assert(matches(r.out, "^2023-11-14T22:13:20.000Z  run +running  "
                             "attempt=1\n"
                             ".*step  first +queued  attempt=1\n"
                             ".*step  first +success  attempt=1\n"
                             ".*run +success  attempt=1\n$"),
              "%s", r.out);
    res_free(&r);

    r = WEFT_R("watch", "w1", "--json");
    cr_assert_eq(r.rc, 0);
    int n = 0;
    for (char *line = r.out; *line;) {
        char *nl = strchr(line, '\n');
        cr_assert_not_null(nl);
        *nl = '\0';
        json_t *e = parse_json(line);
        cr_assert_not_null(json_object_get(e, "status"));
        cr_assert_eq(json_integer_value(json_object_get(e, "ts")),
                     1700000000000LL);
        json_decref(e);
        n++;
        line = nl + 1;
    }
    cr_assert_eq(n, 4);
    res_free(&r);

    seed_run("w2", "failed", 1700000000000LL, wf);
    hist("w2", "run", "", "failed");
    r = WEFT_R("watch", "w2");
    cr_assert_eq(r.rc, 1);
    res_free(&r);

    r = WEFT_R("watch", "nope");
    cr_assert_eq(r.rc, 1);
    res_free(&r);

    /* An escalated step ends the watch too, with a hint. */
    seed_run("w3", "waiting_for_human", 1700000000000LL, wf);
    hist("w3", "step", "first", "waiting_for_human");
    r = WEFT_R("watch", "w3");
    cr_assert_eq(r.rc, 1);
    cr_assert(matches(r.out, "step  first +waiting_for_human"), "%s", r.out);
    cr_assert(matches(r.err, "waiting for a human"), "%s", r.err);
    res_free(&r);
    wf_free(wf);
}

/* ---- inspect ---- */

Test(cli_redis, inspect_decodes_jobs_and_survives_garbage)
{
    json_t *params = json_pack("{s:s}", "stage", "initial");
    struct wire_job job = {
        .run = (char *)"r9",
        .step = (char *)"first",
        .type = (char *)"noop",
        .queue = (char *)"default",
        .attempt = 1,
        .timeout_ms = 5000,
        .params = params,
    };
    char *body;
    size_t len;
    cr_assert_eq(wire_job_encode(&job, &body, &len), 0);
    char sig[65];
    memset(sig, 'a', 64);
    sig[64] = '\0';
    freeReplyObject(cmd("XGROUP CREATE weft:q:default workers 0 MKSTREAM"));
    freeReplyObject(cmd("XADD weft:q:default * run r9 step first attempt 1 "
                        "type noop persona %s body %b sig %s",
                        "", body, len, sig));
    freeReplyObject(cmd("XADD weft:q:default * run r9 step second attempt 1 "
                        "type noop persona %s body %b sig %s",
                        "", "\xc1\xff\x00junk", (size_t)7, "short"));
    weft_free(body);
    json_decref(params);
    /* A worker took the first one and has not acknowledged it. */
    freeReplyObject(cmd("XREADGROUP GROUP workers w-1 COUNT 1 STREAMS "
                        "weft:q:default >"));

    struct res r = WEFT_R("inspect", "default", "--json");
    cr_assert_eq(r.rc, 0, "stderr: %s", r.err);
    json_t *doc = parse_json(r.out);
    cr_assert_eq(json_integer_value(json_object_get(doc, "length")), 2);
    json_t *g = json_array_get(json_object_get(doc, "groups"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(g, "name")), "workers");
    cr_assert_eq(json_integer_value(json_object_get(g, "pending")), 1);
    json_t *cons = json_array_get(json_object_get(g, "consumer_list"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(cons, "name")), "w-1");
    json_t *jobs = json_object_get(doc, "jobs");
    cr_assert_eq(json_array_size(jobs), 2);
    json_t *j0 = json_array_get(jobs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(j0, "state")),
                     "pending");
    cr_assert_str_eq(json_string_value(json_object_get(j0, "consumer")), "w-1");
    cr_assert_eq(json_integer_value(json_object_get(j0, "deliveries")), 1);
    cr_assert(json_is_true(json_object_get(j0, "signed")));
    json_t *dj = json_object_get(j0, "job");
    cr_assert_str_eq(json_string_value(json_object_get(dj, "run")), "r9");
    cr_assert_eq(json_integer_value(json_object_get(dj, "timeout_ms")), 5000);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(dj, "params"), "stage")),
                     "initial");
    json_t *j1 = json_array_get(jobs, 1);
    cr_assert_str_eq(json_string_value(json_object_get(j1, "state")), "queued");
    cr_assert(json_is_null(json_object_get(j1, "job")));
    cr_assert(json_is_string(json_object_get(j1, "error")));
    cr_assert(json_is_false(json_object_get(j1, "signed")));
    json_decref(doc);
    res_free(&r);

    r = WEFT_R("inspect", "default");
    cr_assert_eq(r.rc, 0);
    cr_assert(matches(r.out, "^queue weft:q:default  length 2\n"));
    cr_assert(matches(r.out, "group workers: 1 consumers, 1 pending"));
    cr_assert(matches(r.out, "pending  consumer=w-1 idle=[^ ]+ deliveries=1"));
    cr_assert(matches(r.out, "params: \\{\"stage\":\"initial\"\\}"));
    cr_assert(matches(r.out, "undecodable body \\(7 bytes\\): "));
    res_free(&r);

    /* An unused queue is empty, not an error. */
    r = WEFT_R("inspect", "never-used");
    cr_assert_eq(r.rc, 0);
    cr_assert(matches(r.out, "length 0"));
    res_free(&r);
    r = WEFT_R("inspect", "bad:queue");
    cr_assert_eq(r.rc, 2);
    res_free(&r);
}

Test(cli_redis, unreachable_redis_is_an_error_not_a_hang)
{
    struct res r = weft_env((const char *const[]){"REDIS_URL=unix:///"
                                                  "nonexistent/redis.sock",
                                                  NULL},
                            (const char *const[]){"status", "r1", NULL});
    cr_assert_eq(r.rc, 1);
    cr_assert(matches(r.err, "cannot connect to Redis"), "%s", r.err);
    res_free(&r);
}

/* ---- run, end to end ---- */

static void check_run_doc(const char *out)
{
    json_t *doc = parse_json(out);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "status")),
                     "success", "%s", out);
    cr_assert(json_is_string(json_object_get(doc, "id")));
    json_t *steps = json_object_get(doc, "steps");
    static const char *const want[][2] = {
        {"first", "success"},      {"fan", "success"},
        {"left", "success"},       {"right", "success"},
        {"choose", "success"},     {"feature-path", "success"},
        {"other-path", "skipped"}, {"last", "success"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
        json_t *s = json_object_get(steps, want[i][0]);
        cr_assert_not_null(s, "no step %s", want[i][0]);
        cr_assert_str_eq(json_string_value(json_object_get(s, "status")),
                         want[i][1], "step %s", want[i][0]);
        cr_assert(json_is_integer(json_object_get(s, "attempts")));
    }
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(steps, "first"), "attempts")),
                 1);
    json_decref(doc);
}

Test(cli_run, private_system_runs_a_noop_workflow_to_success, .timeout = 120)
{
    /* No REDIS_URL: weft run starts its own redis-server. */
    struct res r = weft_env((const char *const[]){"REDIS_URL=", NULL},
                            (const char *const[]){"run", NOOP_CHAIN, "--task",
                                                  TASK_JSON, "--json", NULL});
    cr_assert_eq(r.rc, 0, "stderr: %s\nstdout: %s", r.err, r.out);
    check_run_doc(r.out);
    res_free(&r);
}

Test(cli_run, plain_progress_and_outcome_without_a_tty, .timeout = 120)
{
    /* No task: task.type is undefined, so the else branch runs. */
    struct res r = weft_env(
        (const char *const[]){"REDIS_URL=", NULL},
        (const char *const[]){"run", NOOP_CHAIN, "--workers", "1", NULL});
    cr_assert_eq(r.rc, 0, "stderr: %s\nstdout: %s", r.err, r.out);
    cr_assert(matches(r.out, "step  first +success"), "%s", r.out);
    cr_assert(matches(r.out, "step  other-path +success"), "%s", r.out);
    cr_assert(matches(r.out, "step  feature-path +skipped"), "%s", r.out);
    cr_assert(matches(r.out, "\nrun [0-9]+-[0-9a-f]{8} success in "), "%s",
              r.out);
    /* No ANSI escapes when stdout is not a terminal. */
    cr_assert_null(strchr(r.out, '\x1b'));
    res_free(&r);
}

Test(cli_run, outside_redis_runs_and_keeps_the_run, .init = redis_up,
     .fini = redis_down, .timeout = 120)
{
    struct res r =
        WEFT("run", NOOP_CHAIN, "--task", TASK_JSON, "--json", "--redis",
             fx.url, "--workers", "3", "--concurrency", "4");
    cr_assert_eq(r.rc, 0, "stderr: %s\nstdout: %s", r.err, r.out);
    check_run_doc(r.out);
    json_t *doc = parse_json(r.out);
    redisReply *x = cmd("HGET weft:run:%s status",
                        json_string_value(json_object_get(doc, "id")));
    cr_assert_str_eq(x->str, "success");
    freeReplyObject(x);
    json_decref(doc);
    res_free(&r);
}

Test(cli_run, usage_and_invalid_input)
{
    struct res r = WEFT("run", NOOP_CHAIN, NOOP_CHAIN);
    cr_assert_eq(r.rc, 2);
    res_free(&r);
    r = WEFT("run", "--workflows", "/nonexistent");
    cr_assert_eq(r.rc, 1, "no routes file to route the task by");
    res_free(&r);
    r = WEFT("run", NOOP_CHAIN, "--workers", "0");
    cr_assert_eq(r.rc, 2);
    res_free(&r);
    r = WEFT("run", BAD_YML);
    cr_assert_eq(r.rc, 1);
    cr_assert(matches(r.err, "bad.yml:5:5: error: "));
    res_free(&r);
}
