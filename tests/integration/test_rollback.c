/* test_rollback.c - `rollback: true` end to end (docs/git.md
 * "Rollback"): a real weft-scheduler and weft-worker run git steps on a
 * real repository with a bare origin; the run fails or is cancelled, and
 * the branch it created is gone again, locally and on the origin, with
 * the base branch untouched. Without the flag the branch stays.
 *
 * git runs with an empty HOME (no personal identity or hooks), as in
 * test_git.c. Waiting follows the run's history stream (blocking XREAD).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "alloc.h"
#include "procs.h"
#include "redis_fixture.h"
#include "runs.h"

#define KEY "test-signing-key-0123456789"

static struct redis_fixture fx;
static redisContext *rc;
static pid_t sched_pid, worker_pid;
static char tmp[64], repo[128], origin[128], home[128];
static char genv_home[160], genv_xdg[160], url_env[REDIS_FIXTURE_PATH_MAX + 32];
static const char *genv[4];
static char base_oid[64];

/* ---- git ---------------------------------------------------------------- */

static const char *git_bin(void)
{
    static char path[512];
    const char *p = getenv("PATH");
    while (path[0] == '\0' && p && *p) {
        size_t n = strcspn(p, ":");
        snprintf(path, sizeof(path), "%.*s/git", (int)n, p);
        if (access(path, X_OK) != 0)
            path[0] = '\0';
        p += n + (p[n] == ':');
    }
    cr_assert_neq(path[0], '\0', "git is not on PATH");
    return path;
}

/* git -C dir args... (NULL-ended); *out gets stdout when out is set. */
static int git(char **out, const char *dir, ...)
{
    const char *argv[32];
    int n = 0;
    const char *a;
    va_list ap;
    argv[n++] = git_bin();
    argv[n++] = "-C";
    argv[n++] = dir;
    argv[n++] = "-c";
    argv[n++] = "user.name=Test";
    argv[n++] = "-c";
    argv[n++] = "user.email=test@example.com";
    va_start(ap, dir);
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char *err = NULL;
    int code = procs_run(argv, genv, out, &err);
    free(err);
    return code;
}

/* The first line of a git command's output (rotating static buffers;
 * "" when it fails). */
static const char *git_line(const char *dir, const char *a1, const char *a2,
                            const char *a3)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ % 4], *out = NULL;
    int code = git(&out, dir, a1, a2, a3, NULL);
    snprintf(b, 512, "%s", code == 0 && out ? out : "");
    b[strcspn(b, "\n")] = '\0';
    free(out);
    return b;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* refs/heads/<branch> exists in dir. */
static bool has_branch(const char *dir, const char *branch)
{
    char ref[160], *out = NULL;
    snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
    cr_assert_eq(git(&out, dir, "for-each-ref", ref, NULL), 0);
    bool has = out != NULL && out[0] != '\0';
    free(out);
    return has;
}

/* ---- the system --------------------------------------------------------- */

static void setup(void)
{
    weft_alloc_init();
    snprintf(tmp, sizeof(tmp), "/tmp/weft-rollback-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(repo, sizeof(repo), "%s/repo", tmp);
    snprintf(origin, sizeof(origin), "%s/origin.git", tmp);
    snprintf(home, sizeof(home), "%s/home", tmp);
    cr_assert_eq(mkdir(home, 0700), 0);
    snprintf(genv_home, sizeof(genv_home), "HOME=%s", home);
    snprintf(genv_xdg, sizeof(genv_xdg), "XDG_CONFIG_HOME=%s", home);
    genv[0] = genv_home;
    genv[1] = genv_xdg;
    genv[2] = "GIT_CONFIG_NOSYSTEM=1";
    genv[3] = NULL;
    const char *init[] = {git_bin(), "init", "-q", "-b", "main", repo, NULL};
    const char *bare[] = {git_bin(), "init", "-q",   "--bare",
                          "-b",      "main", origin, NULL};
    cr_assert_eq(procs_run(init, genv, NULL, NULL), 0);
    cr_assert_eq(procs_run(bare, genv, NULL, NULL), 0);
    write_file(repo, "app.txt", "v1\n");
    cr_assert_eq(git(NULL, repo, "add", "app.txt", NULL), 0);
    cr_assert_eq(git(NULL, repo, "commit", "-q", "-m", "init", NULL), 0);
    cr_assert_eq(git(NULL, repo, "remote", "add", "origin", origin, NULL), 0);
    cr_assert_eq(git(NULL, repo, "push", "-q", "origin", "main", NULL), 0);
    snprintf(base_oid, sizeof(base_oid), "%s",
             git_line(repo, "rev-parse", "main", NULL));
    /* The work the run will commit on its branch. */
    write_file(repo, "feature.txt", "new feature\n");

    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
    rc = redisConnectUnix(fx.sock);
    cr_assert(rc != NULL && rc->err == 0);
    snprintf(url_env, sizeof(url_env), "REDIS_URL=%s", fx.url);
    char bin[512], log[256], ws[160];
    snprintf(log, sizeof(log), "%s/scheduler.log", fx.dir);
    const char *sargv[] = {
        procs_binary("scheduler/weft-scheduler", bin, sizeof(bin)), NULL};
    const char *env[] = {
        url_env, "WEFT_HMAC_KEY=" KEY, genv[0], genv[1], genv[2], NULL};
    sched_pid = procs_spawn(sargv, env, log);
    cr_assert_gt(sched_pid, 0);
    snprintf(log, sizeof(log), "%s/worker.log", fx.dir);
    snprintf(ws, sizeof(ws), "--workspaces=%s/ws", tmp);
    const char *wargv[] = {procs_binary("worker/weft-worker", bin, sizeof(bin)),
                           "--queues=default,git", ws, NULL};
    worker_pid = procs_spawn(wargv, env, log);
    cr_assert_gt(worker_pid, 0);
}

static void show(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
    const char *cat[] = {"/bin/cat", path, NULL};
    char *text = NULL;
    procs_run(cat, NULL, &text, NULL);
    fprintf(stderr, "---- %s\n%s\n", name, text ? text : "");
    free(text);
}

static void teardown(void)
{
    bool ok = true;
    pid_t *pids[] = {&worker_pid, &sched_pid};
    for (int i = 0; i < 2; i++) {
        if (*pids[i] <= 0)
            continue;
        int st = procs_stop(*pids[i], SIGTERM, 15000);
        ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        *pids[i] = 0;
    }
    if (!ok) {
        show("scheduler.log");
        show("worker.log");
    }
    if (rc != NULL)
        redisFree(rc);
    rc = NULL;
    redis_fixture_stop(&fx);
    const char *rm[] = {"/bin/rm", "-rf", tmp, NULL};
    procs_run(rm, NULL, NULL, NULL);
    cr_assert(ok, "a process did not exit cleanly");
}

TestSuite(rollback, .init = setup, .fini = teardown, .timeout = 180);

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "redis: %s", rc->errstr);
    cr_assert_neq(r->type, REDIS_REPLY_ERROR, "redis: %s", r->str);
    return r;
}

static const char *field_of(const redisReply *f, const char *name)
{
    for (size_t k = 0; k + 1 < f->elements; k += 2)
        if (strcmp(f->element[k]->str, name) == 0)
            return f->element[k + 1]->str;
    return NULL;
}

/* What a run's history says, read until `until` returns true for an
 * entry (30 s at most, blocking XREAD). */
struct seen {
    char run[32];       /* the run's final status, "" before */
    char rollback[32];  /* the last rollback entry's status */
    char restored[512]; /* its `restored` */
    char error[512];    /* its `error` */
    int rollback_entries;
    bool delayed;   /* the rollback waited for stopped jobs (`due`) */
    bool push_done; /* the push step succeeded */
};

static void follow(const char *run, bool (*until)(const struct seen *),
                   struct seen *s)
{
    char last[64] = "0";
    time_t end = time(NULL) + 60;
    memset(s, 0, sizeof(*s));
    while (time(NULL) < end) {
        redisReply *r = cmd("XREAD COUNT 100 BLOCK 1000 STREAMS "
                            "weft:run:%s:history %s",
                            run, last);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY &&
                           i < r->element[0]->element[1]->elements;
             i++) {
            const redisReply *e = r->element[0]->element[1]->element[i];
            snprintf(last, sizeof(last), "%s", e->element[0]->str);
            const redisReply *f = e->element[1];
            const char *type = field_of(f, "type"), *st = field_of(f, "status");
            const char *step = field_of(f, "step");
            if (strcmp(type, "run") == 0 && strcmp(st, "running") != 0)
                snprintf(s->run, sizeof(s->run), "%s", st);
            if (strcmp(type, "step") == 0 && strcmp(step, "push") == 0 &&
                strcmp(st, "success") == 0)
                s->push_done = true;
            if (strcmp(type, "rollback") == 0) {
                s->rollback_entries++;
                snprintf(s->rollback, sizeof(s->rollback), "%s", st);
                const char *v = field_of(f, "restored");
                snprintf(s->restored, sizeof(s->restored), "%s", v ? v : "");
                v = field_of(f, "error");
                snprintf(s->error, sizeof(s->error), "%s", v ? v : "");
                if (strcmp(st, "pending") == 0 && field_of(f, "due"))
                    s->delayed = true;
            }
            if (until(s)) {
                freeReplyObject(r);
                return;
            }
        }
        freeReplyObject(r);
    }
    show("scheduler.log");
    show("worker.log");
    cr_assert_fail("run %s: never saw what the test waits for", run);
}

static bool rollback_over(const struct seen *s)
{
    return strcmp(s->rollback, "success") == 0 ||
           strcmp(s->rollback, "failed") == 0 ||
           strcmp(s->rollback, "skipped") == 0;
}

static bool run_over(const struct seen *s)
{
    return s->run[0] != '\0';
}

static bool pushed(const struct seen *s)
{
    return s->push_done;
}

/* branch, commit (the file the test left), push; then `last`. */
static const char *workflow(bool rollback, const char *last)
{
    static char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "name: rb\n"
             "%s"
             "steps:\n"
             "  - id: branch\n"
             "    type: git-operation\n"
             "    operation: branch\n"
             "    branch: feature/rb\n"
             "  - id: commit\n"
             "    type: git-operation\n"
             "    operation: commit\n"
             "    message: the feature\n"
             "    dependencies: [branch]\n"
             "  - id: push\n"
             "    type: git-operation\n"
             "    operation: push\n"
             "    dependencies: [commit]\n"
             "  - id: last\n"
             "    type: noop\n"
             "    params: %s\n"
             "    dependencies: [push]\n",
             rollback ? "rollback: true\n" : "", last);
    return yaml;
}

static void submit(const char *yaml, const char *run)
{
    char task[256];
    snprintf(task, sizeof(task), "{\"repoRoot\": \"%s\"}", repo);
    cr_assert_eq(runs_submit(rc, yaml, task, run), 0);
}

/* The repository and its origin as they were before the run. */
static void expect_restored(void)
{
    cr_assert_not(has_branch(repo, "feature/rb"), "the branch is still there");
    cr_assert_not(has_branch(origin, "feature/rb"),
                  "the branch is still on the origin");
    cr_assert_str_eq(git_line(repo, "rev-parse", "main", NULL), base_oid);
    cr_assert_str_eq(git_line(origin, "rev-parse", "main", NULL), base_oid);
    cr_assert_str_eq(git_line(repo, "branch", "--show-current", NULL), "main");
    cr_assert_str_eq(git_line(repo, "status", "--porcelain", NULL), "");
}

Test(rollback, a_failed_run_deletes_its_branch_locally_and_on_the_origin)
{
    submit(workflow(true, "{fail_until: 99}"), "rb-fail");
    struct seen s;
    follow("rb-fail", rollback_over, &s);
    cr_assert_str_eq(s.run, "failed");
    cr_assert_str_eq(s.rollback, "success", "rollback: %s", s.error);
    cr_assert_str_eq(s.restored,
                     "deleted feature/rb, deleted origin/feature/rb");
    /* pending (at once: nothing was running), queued, success */
    cr_assert_eq(s.rollback_entries, 3);
    cr_assert_not(s.delayed);
    expect_restored();
    /* The run's own status is unchanged; the rollback is a step of
     * weft's. */
    redisReply *h = cmd("HGET weft:run:rb-fail status");
    cr_assert_str_eq(h->str, "failed");
    freeReplyObject(h);
    h = cmd("HMGET weft:run:rb-fail:steps .rollback .rollback:attempt");
    cr_assert_str_eq(h->element[0]->str, "success");
    cr_assert_str_eq(h->element[1]->str, "1");
    freeReplyObject(h);
    /* What it rolled back came from gitState.changes: one per step that
     * created or moved a branch. */
    h = cmd("HGET weft:run:rb-fail gitState");
    json_t *g = json_loads(h->str, 0, NULL);
    freeReplyObject(h);
    json_t *ch = json_object_get(g, "changes");
    cr_assert_eq(json_array_size(ch), 3, "%s", json_dumps(g, JSON_COMPACT));
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(ch, 0), "step")),
        "branch");
    cr_assert(json_is_true(json_object_get(json_array_get(ch, 0), "created")));
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(ch, 2), "remote")),
        "origin");
    json_decref(g);
}

Test(rollback, a_cancelled_run_is_rolled_back_too)
{
    submit(workflow(true, "{delay_ms: 60000}"), "rb-cancel");
    struct seen s;
    follow("rb-cancel", pushed, &s);
    cr_assert(has_branch(origin, "feature/rb"));
    freeReplyObject(cmd("XADD weft:events * type cancel run rb-cancel reason "
                        "enough"));
    follow("rb-cancel", rollback_over, &s);
    cr_assert_str_eq(s.run, "cancelled");
    cr_assert_str_eq(s.rollback, "success", "rollback: %s", s.error);
    /* The cancel stopped a running job: the rollback waited for it. */
    cr_assert(s.delayed);
    expect_restored();
}

Test(rollback, without_the_flag_a_failed_run_keeps_its_branch)
{
    submit(workflow(false, "{fail_until: 99}"), "rb-keep");
    struct seen s;
    follow("rb-keep", run_over, &s);
    cr_assert_str_eq(s.run, "failed");
    /* The end of the run and the rollback request are one transition:
     * no request now means none ever. */
    redisReply *h = cmd("XRANGE weft:run:rb-keep:history - +");
    for (size_t i = 0; i < h->elements; i++)
        cr_assert_str_neq(field_of(h->element[i]->element[1], "type"),
                          "rollback");
    freeReplyObject(h);
    h = cmd("HEXISTS weft:run:rb-keep:steps .rollback");
    cr_assert_eq(h->integer, 0);
    freeReplyObject(h);
    cr_assert(has_branch(repo, "feature/rb"));
    cr_assert(has_branch(origin, "feature/rb"));
    cr_assert_str_eq(git_line(origin, "rev-parse", "main", NULL), base_oid);
}

Test(rollback, a_successful_run_is_not_rolled_back)
{
    submit(workflow(true, "{}"), "rb-ok");
    struct seen s;
    follow("rb-ok", run_over, &s);
    cr_assert_str_eq(s.run, "success");
    cr_assert_eq(s.rollback_entries, 0);
    cr_assert(has_branch(origin, "feature/rb"));
}
