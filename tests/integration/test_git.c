/* test_git.c - git-operation steps run by the real weft-worker against
 * real repositories (docs/git.md).
 *
 * Each test makes its repositories in a fresh temporary directory: a
 * working repository on `main` and, where a remote is needed, a bare
 * repository as `origin`. The test plays the scheduler: it writes the
 * run's steps hash, XADDs a signed git job to the `git` queue and waits
 * for the result with a blocking XREAD on weft:events. git runs with an
 * empty HOME, so no personal configuration (identity, default branch,
 * hooks) leaks in, and the worker must supply its own identity.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
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
#include "hmac.h"
#include "procs.h"
#include "rconn.h"
#include "redis_fixture.h"
#include "redisurl.h"
#include "wire.h"

#define KEY "test-signing-key-0123456789"
#define RUN "r1"
/* How long a test waits for a result, in milliseconds. */
#define WAIT_MS 20000

static struct redis_fixture fx;
static redisContext *rc;
static struct hmac_key hkey;
static pid_t wpid;
static char events_last[64];
static char tmp[64];     /* the test's directory */
static char repo[128];   /* working repository */
static char remote[128]; /* bare repository, origin of repo */
static char workspaces[128];
static char home[128];
static int nstep;
static const char *genv[4]; /* environment for git and the worker */
static char genv_home[160], genv_xdg[160];

/* ---- git and files ------------------------------------------------------ */

/* procs_run takes a path: git's, found on PATH once. */
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

/* Runs git -C dir args... (NULL-ended) with a test identity; *out gets
 * stdout (malloc'd) when out is not NULL. Returns the exit code. */
static int gitv(char **out, const char *dir, va_list ap)
{
    const char *argv[32];
    int n = 0;
    const char *a;

    argv[n++] = git_bin();
    argv[n++] = "-C";
    argv[n++] = dir;
    argv[n++] = "-c";
    argv[n++] = "user.name=Test";
    argv[n++] = "-c";
    argv[n++] = "user.email=test@example.com";
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = a;
    argv[n] = NULL;
    char *err = NULL;
    int code = procs_run(argv, genv, out, &err);
    free(err);
    return code;
}

static int git(char **out, const char *dir, ...)
{
    va_list ap;
    va_start(ap, dir);
    int code = gitv(out, dir, ap);
    va_end(ap);
    return code;
}

/* git that must succeed. */
static void git_ok(const char *dir, ...)
{
    va_list ap;
    va_start(ap, dir);
    int code = gitv(NULL, dir, ap);
    va_end(ap);
    cr_assert_eq(code, 0, "git in %s failed", dir);
}

/* First line of git's stdout in a rotating static buffer. */
static const char *git_line(const char *dir, ...)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ % 4], *out = NULL;
    va_list ap;
    va_start(ap, dir);
    int code = gitv(&out, dir, ap);
    va_end(ap);
    cr_assert_eq(code, 0, "git in %s failed", dir);
    snprintf(b, 512, "%s", out ? out : "");
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

static void commit_file(const char *dir, const char *name, const char *text,
                        const char *msg)
{
    write_file(dir, name, text);
    git_ok(dir, "add", name, NULL);
    git_ok(dir, "commit", "-q", "-m", msg, NULL);
}

static const char *branch_of(const char *dir)
{
    return git_line(dir, "branch", "--show-current", NULL);
}

/* `git status --porcelain` is empty. */
static bool clean(const char *dir)
{
    char *out = NULL;
    cr_assert_eq(git(&out, dir, "status", "--porcelain", NULL), 0);
    bool ok = out == NULL || out[0] == '\0';
    free(out);
    return ok;
}

/* The repository with one commit on main, and its bare origin. */
static void make_repos(void)
{
    const char *init[] = {git_bin(), "init", "-q", "-b", "main", repo, NULL};
    const char *bare[] = {git_bin(), "init", "-q",   "--bare",
                          "-b",      "main", remote, NULL};
    cr_assert_eq(procs_run(init, genv, NULL, NULL), 0);
    cr_assert_eq(procs_run(bare, genv, NULL, NULL), 0);
    commit_file(repo, "a.txt", "base\n", "init");
    git_ok(repo, "remote", "add", "origin", remote, NULL);
    git_ok(repo, "push", "-q", "origin", "main", NULL);
}

/* ---- the fixture -------------------------------------------------------- */

static void setup(void)
{
    weft_alloc_init();
    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
    struct redis_url u;
    cr_assert_eq(redis_url_parse(fx.url, &u, NULL), 0);
    rc = rconn_connect_sync(&u, 2000, NULL);
    redis_url_deinit(&u);
    cr_assert_not_null(rc);
    cr_assert_eq(hmac_key_set(&hkey, KEY, strlen(KEY), NULL), 0);
    snprintf(events_last, sizeof(events_last), "0-0");
    wpid = 0;
    nstep = 0;

    snprintf(tmp, sizeof(tmp), "/tmp/weft-git-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(repo, sizeof(repo), "%s/repo", tmp);
    snprintf(remote, sizeof(remote), "%s/remote.git", tmp);
    snprintf(workspaces, sizeof(workspaces), "%s/ws", tmp);
    snprintf(home, sizeof(home), "%s/home", tmp);
    cr_assert_eq(mkdir(home, 0700), 0);
    snprintf(genv_home, sizeof(genv_home), "HOME=%s", home);
    snprintf(genv_xdg, sizeof(genv_xdg), "XDG_CONFIG_HOME=%s", home);
    genv[0] = genv_home;
    genv[1] = genv_xdg;
    genv[2] = "GIT_CONFIG_NOSYSTEM=1";
    genv[3] = NULL;
    make_repos();
}

static void teardown(void)
{
    int st = 0;

    /* A clean exit on SIGTERM: with sanitizers on, a leak or a memory
     * error in the worker makes the exit status non-zero. */
    if (wpid > 0)
        st = procs_stop(wpid, SIGTERM, 10000);
    bool ok = wpid == 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 0);
    wpid = 0;
    if (!ok) {
        char log[256];
        snprintf(log, sizeof(log), "%s/worker.log", fx.dir);
        const char *cat[] = {"/bin/cat", log, NULL};
        char *text = NULL;
        procs_run(cat, NULL, &text, NULL);
        fprintf(stderr, "worker log:\n%s\n", text ? text : "");
        free(text);
    }
    if (rc != NULL)
        redisFree(rc);
    rc = NULL;
    redis_fixture_stop(&fx);
    if (tmp[0] != '\0') {
        const char *rm[] = {"/bin/rm", "-rf", tmp, NULL};
        procs_run(rm, NULL, NULL, NULL);
    }
    cr_assert(ok, "the worker did not exit cleanly (status %d)", st);
}

TestSuite(git, .init = setup, .fini = teardown, .timeout = 120);

static void start_worker(void)
{
    char path[512], log[256], url[200], ws[200];
    snprintf(log, sizeof(log), "%s/worker.log", fx.dir);
    snprintf(url, sizeof(url), "REDIS_URL=%s", fx.url);
    snprintf(ws, sizeof(ws), "--workspaces=%s", workspaces);
    const char *argv[] = {
        procs_binary("worker/weft-worker", path, sizeof(path)), "--name=w1",
        "--queues=git", ws, NULL};
    const char *env[] = {url, "WEFT_HMAC_KEY=" KEY, genv[0], genv[1], genv[2],
                         NULL};
    wpid = procs_spawn(argv, env, log);
    cr_assert_gt(wpid, 0);
}

/* ---- playing the scheduler ---------------------------------------------- */

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "redis command failed: %s", rc->errstr);
    return r;
}

struct event {
    char step[64], status[32];
    struct wire_result res;
};

/* The next result event, waiting with a blocking XREAD. */
static void next_event(struct event *ev)
{
    memset(ev, 0, sizeof(*ev));
    redisReply *r = cmd("XREAD COUNT 1 BLOCK %d STREAMS weft:events %s",
                        WAIT_MS, events_last);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "no result within %d ms", WAIT_MS);
    const redisReply *e = r->element[0]->element[1]->element[0];
    snprintf(events_last, sizeof(events_last), "%s", e->element[0]->str);
    const redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str;
        const redisReply *v = f->element[i + 1];
        if (strcmp(k, "step") == 0)
            snprintf(ev->step, sizeof(ev->step), "%s", v->str);
        else if (strcmp(k, "status") == 0)
            snprintf(ev->status, sizeof(ev->status), "%s", v->str);
        else if (strcmp(k, "body") == 0)
            cr_assert_eq(wire_result_decode(v->str, v->len, &ev->res, NULL), 0);
    }
    freeReplyObject(r);
}

/* Runs one git step: git is the job's `git` map as JSON text, root the
 * run's repoRoot. Waits for its result, checks its status and returns
 * it in ev (caller calls wire_result_deinit). */
static void step_job(const char *root, const char *gitjson, uint64_t timeout_ms,
                     const char *want, struct event *ev)
{
    char step[32], sig[HMAC_HEX_LEN + 1];
    char *body;
    size_t len;
    struct wire_job j;

    snprintf(step, sizeof(step), "s%d", ++nstep);
    freeReplyObject(cmd("HSET weft:run:%s status running", RUN));
    freeReplyObject(
        cmd("HSET weft:run:%s:steps %s queued %s:attempt 1", RUN, step, step));
    memset(&j, 0, sizeof(j));
    j.run = (char *)RUN;
    j.step = step;
    j.name = step;
    j.type = (char *)"git-operation";
    j.queue = (char *)"git";
    j.attempt = 1;
    j.timeout_ms = timeout_ms;
    j.git = json_loads(gitjson, 0, NULL);
    cr_assert_not_null(j.git, "bad test json %s", gitjson);
    j.context =
        json_pack("{s:s, s:s, s:s, s:s, s:{}}", "workflowId", RUN, "repoRoot",
                  root, "branchName", "weft/r1", "baseBranch", "main", "task");
    cr_assert_eq(wire_job_encode(&j, &body, &len), 0);
    json_decref(j.git);
    json_decref(j.context);
    hmac_sign_hex(&hkey, body, len, sig);
    freeReplyObject(cmd("XADD weft:q:git * run %s step %s attempt 1 type %s "
                        "persona %s body %b sig %s",
                        RUN, step, "git-operation", "", body, len, sig));
    weft_free(body);

    next_event(ev);
    cr_assert_str_eq(ev->step, step);
    cr_assert_str_eq(ev->status, want, "%s: %s, not %s (%s)", gitjson,
                     ev->status, want,
                     ev->res.message ? ev->res.message : "no message");
}

static void step_in(const char *root, const char *gitjson, const char *want,
                    struct event *ev)
{
    step_job(root, gitjson, 0, want, ev);
}

static void step(const char *gitjson, const char *want, struct event *ev)
{
    step_in(repo, gitjson, want, ev);
}

static const char *rstr(const struct event *ev, const char *key)
{
    const json_t *v = json_object_get(ev->res.result, key);
    cr_assert(json_is_string(v), "result '%s' is not a string", key);
    return json_string_value(v);
}

static bool rbool(const struct event *ev, const char *key)
{
    const json_t *v = json_object_get(ev->res.result, key);
    cr_assert(json_is_boolean(v), "result '%s' is not a boolean", key);
    return json_is_true(v);
}

static const json_t *rprev(const struct event *ev, const char *key)
{
    const json_t *p = json_object_get(ev->res.result, "previous");
    cr_assert(json_is_object(p), "no previous in the result");
    return json_object_get(p, key);
}

/* The list at key holds exactly the names given (NULL-ended), in order. */
static void rlist(const struct event *ev, const char *key, ...)
{
    const json_t *a = json_object_get(ev->res.result, key);
    va_list ap;
    const char *name;
    size_t i = 0;

    cr_assert(json_is_array(a), "result '%s' is not a list", key);
    va_start(ap, key);
    while ((name = va_arg(ap, const char *)) != NULL) {
        cr_assert_lt(i, json_array_size(a), "'%s' misses %s", key, name);
        cr_assert_str_eq(json_string_value(json_array_get(a, i)), name);
        i++;
    }
    va_end(ap);
    cr_assert_eq(json_array_size(a), i, "'%s' has %zu names, not %zu", key,
                 json_array_size(a), i);
}

static bool msg_has(const struct event *ev, const char *text)
{
    return ev->res.message && strstr(ev->res.message, text) != NULL;
}

/* ---- branch and checkout ----------------------------------------------- */

Test(git, branch_creates_from_base_then_switches_on_second_run)
{
    struct event ev;
    const char *main_oid = git_line(repo, "rev-parse", "main", NULL);

    start_worker();
    step("{\"operation\":\"branch\",\"branch\":\"feat/x\",\"base\":\"main\"}",
         "success", &ev);
    cr_assert_str_eq(branch_of(repo), "feat/x");
    cr_assert_str_eq(rstr(&ev, "head"), "feat/x");
    cr_assert_str_eq(rstr(&ev, "commit"), main_oid);
    cr_assert(rbool(&ev, "changed"));
    cr_assert(json_is_true(rprev(&ev, "created")));
    cr_assert(json_is_null(rprev(&ev, "commit")));
    cr_assert_str_eq(json_string_value(rprev(&ev, "head")), "main");
    wire_result_deinit(&ev.res);

    git_ok(repo, "switch", "-q", "main", NULL);
    step("{\"operation\":\"branch\",\"branch\":\"feat/x\",\"base\":\"main\"}",
         "success", &ev);
    cr_assert_str_eq(branch_of(repo), "feat/x");
    cr_assert_not(rbool(&ev, "changed"));
    cr_assert(json_is_false(rprev(&ev, "created")));
    cr_assert_str_eq(json_string_value(rprev(&ev, "commit")), main_oid);
    wire_result_deinit(&ev.res);
}

Test(git, branch_defaults_to_the_runs_branch_name_and_base_branch)
{
    struct event ev;

    commit_file(repo, "b.txt", "on main\n", "second");
    git_ok(repo, "switch", "-q", "-c", "other", NULL);
    commit_file(repo, "c.txt", "on other\n", "third");
    start_worker();
    step("{\"operation\":\"branch\"}", "success", &ev);
    cr_assert_str_eq(branch_of(repo), "weft/r1");
    cr_assert_str_eq(rstr(&ev, "base"), "main");
    cr_assert_str_eq(git_line(repo, "rev-parse", "HEAD", NULL),
                     git_line(repo, "rev-parse", "main", NULL));
    wire_result_deinit(&ev.res);
}

Test(git, checkout_switches_and_a_missing_branch_is_fatal)
{
    struct event ev;

    git_ok(repo, "branch", "topic", NULL);
    start_worker();
    step("{\"operation\":\"checkout\",\"branch\":\"topic\"}", "success", &ev);
    cr_assert_str_eq(branch_of(repo), "topic");
    cr_assert(rbool(&ev, "changed"));
    cr_assert_str_eq(json_string_value(rprev(&ev, "head")), "main");
    wire_result_deinit(&ev.res);

    step("{\"operation\":\"checkout\",\"branch\":\"nope\"}", "fatal", &ev);
    cr_assert(msg_has(&ev, "branch 'nope' does not exist"), "%s",
              ev.res.message);
    cr_assert_str_eq(branch_of(repo), "topic");
    wire_result_deinit(&ev.res);
}

/* ---- commit ------------------------------------------------------------- */

Test(git, commit_stages_everything_with_weft_identity)
{
    struct event ev;
    const char *before = git_line(repo, "rev-parse", "HEAD", NULL);

    write_file(repo, "a.txt", "changed\n");
    write_file(repo, "new.txt", "new\n");
    start_worker();
    step("{\"operation\":\"commit\",\"message\":\"feat: two files\"}",
         "success", &ev);
    cr_assert(rbool(&ev, "changed"));
    rlist(&ev, "files", "a.txt", "new.txt", NULL);
    cr_assert_str_eq(rstr(&ev, "commit"),
                     git_line(repo, "rev-parse", "HEAD", NULL));
    cr_assert_str_eq(json_string_value(rprev(&ev, "commit")), before);
    cr_assert_str_eq(git_line(repo, "log", "-1", "--format=%s|%an|%ae", NULL),
                     "feat: two files|weft|weft@localhost");
    cr_assert(clean(repo));
    wire_result_deinit(&ev.res);
}

Test(git, commit_with_nothing_to_commit_succeeds_unchanged)
{
    struct event ev;
    const char *before = git_line(repo, "rev-parse", "HEAD", NULL);

    start_worker();
    step("{\"operation\":\"commit\",\"message\":\"nothing\"}", "success", &ev);
    cr_assert_not(rbool(&ev, "changed"));
    rlist(&ev, "files", NULL);
    cr_assert_str_eq(rstr(&ev, "commit"), before);
    cr_assert_str_eq(git_line(repo, "rev-parse", "HEAD", NULL), before);
    wire_result_deinit(&ev.res);
}

Test(git, commit_without_a_message_is_fatal)
{
    struct event ev;

    write_file(repo, "a.txt", "changed\n");
    start_worker();
    step("{\"operation\":\"commit\"}", "fatal", &ev);
    cr_assert(msg_has(&ev, "a message is required"), "%s", ev.res.message);
    wire_result_deinit(&ev.res);
}

Test(git, commit_file_lists_are_capped)
{
    struct event ev;
    char name[32];

    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof(name), "f%03d.txt", i);
        write_file(repo, name, "x\n");
    }
    start_worker();
    step("{\"operation\":\"commit\",\"message\":\"many\"}", "success", &ev);
    cr_assert_eq(json_array_size(json_object_get(ev.res.result, "files")), 100);
    cr_assert(rbool(&ev, "truncated"));
    wire_result_deinit(&ev.res);
}

/* ---- merge -------------------------------------------------------------- */

Test(git, merge_clean_makes_a_merge_commit_on_the_base)
{
    struct event ev;

    git_ok(repo, "switch", "-q", "-c", "weft/r1", NULL);
    commit_file(repo, "feature.txt", "feature\n", "feature");
    const char *main_before = git_line(repo, "rev-parse", "main", NULL);
    start_worker();
    step("{\"operation\":\"merge\",\"message\":\"Merge the feature\"}",
         "success", &ev);
    cr_assert_str_eq(branch_of(repo), "main");
    cr_assert_str_eq(rstr(&ev, "branch"), "weft/r1");
    cr_assert_str_eq(rstr(&ev, "base"), "main");
    cr_assert(rbool(&ev, "changed"));
    rlist(&ev, "files", "feature.txt", NULL);
    rlist(&ev, "conflicts", NULL);
    cr_assert_str_eq(json_string_value(rprev(&ev, "commit")), main_before);
    cr_assert_str_eq(json_string_value(rprev(&ev, "head")), "weft/r1");
    cr_assert_str_eq(git_line(repo, "log", "-1", "--format=%s", NULL),
                     "Merge the feature");
    cr_assert_eq(strlen(git_line(repo, "log", "-1", "--format=%P", NULL)), 81,
                 "not a merge commit with two parents");
    cr_assert(clean(repo));
    wire_result_deinit(&ev.res);
}

Test(git, merge_conflict_aborts_and_leaves_the_original_branch_clean)
{
    struct event ev;

    git_ok(repo, "switch", "-q", "-c", "feat", NULL);
    commit_file(repo, "a.txt", "feat side\n", "feat");
    git_ok(repo, "switch", "-q", "main", NULL);
    commit_file(repo, "a.txt", "main side\n", "main");
    const char *main_oid = git_line(repo, "rev-parse", "main", NULL);
    git_ok(repo, "switch", "-q", "feat", NULL);
    start_worker();
    step("{\"operation\":\"merge\",\"branch\":\"feat\",\"base\":\"main\"}",
         "fatal", &ev);
    rlist(&ev, "conflicts", "a.txt", NULL);
    cr_assert(msg_has(&ev, "conflicts in 1 file"), "%s", ev.res.message);
    cr_assert(clean(repo));
    cr_assert_str_eq(branch_of(repo), "feat");
    cr_assert_str_eq(git_line(repo, "rev-parse", "main", NULL), main_oid);
    char *out = NULL;
    cr_assert_neq(
        git(&out, repo, "rev-parse", "-q", "--verify", "MERGE_HEAD", NULL), 0);
    free(out);
    wire_result_deinit(&ev.res);
}

Test(git, merge_with_uncommitted_changes_is_refused)
{
    struct event ev;

    git_ok(repo, "branch", "weft/r1", NULL);
    write_file(repo, "a.txt", "dirty\n");
    start_worker();
    step("{\"operation\":\"merge\"}", "fatal", &ev);
    cr_assert(msg_has(&ev, "uncommitted changes"), "%s", ev.res.message);
    wire_result_deinit(&ev.res);
}

/* ---- push --------------------------------------------------------------- */

Test(git, push_sends_the_branch_to_the_bare_remote)
{
    struct event ev;

    git_ok(repo, "switch", "-q", "-c", "feat", NULL);
    commit_file(repo, "f.txt", "f\n", "f");
    start_worker();
    step("{\"operation\":\"push\"}", "success", &ev);
    cr_assert_str_eq(rstr(&ev, "branch"), "feat");
    cr_assert_str_eq(rstr(&ev, "remote"), "origin");
    cr_assert(rbool(&ev, "changed"));
    cr_assert(json_is_true(rprev(&ev, "created")));
    cr_assert_str_eq(git_line(remote, "rev-parse", "feat", NULL),
                     git_line(repo, "rev-parse", "feat", NULL));
    wire_result_deinit(&ev.res);

    step("{\"operation\":\"push\",\"branch\":\"feat\"}", "success", &ev);
    cr_assert_not(rbool(&ev, "changed"));
    wire_result_deinit(&ev.res);
}

Test(git, push_rejected_as_non_fast_forward_is_fatal)
{
    struct event ev;
    char other[160];

    snprintf(other, sizeof(other), "%s/other", tmp);
    const char *clone[] = {git_bin(), "clone", "-q", remote, other, NULL};
    cr_assert_eq(procs_run(clone, genv, NULL, NULL), 0);
    commit_file(other, "o.txt", "other\n", "other");
    git_ok(other, "push", "-q", "origin", "main", NULL);
    commit_file(repo, "m.txt", "mine\n", "mine");
    const char *remote_oid = git_line(remote, "rev-parse", "main", NULL);
    start_worker();
    step("{\"operation\":\"push\",\"branch\":\"main\"}", "fatal", &ev);
    cr_assert(msg_has(&ev, "rejected"), "%s", ev.res.message);
    cr_assert_str_eq(git_line(remote, "rev-parse", "main", NULL), remote_oid);
    wire_result_deinit(&ev.res);
}

Test(git, push_rejected_by_a_hook_is_fatal_with_its_message)
{
    struct event ev;
    char hook[200];

    snprintf(hook, sizeof(hook), "%s/hooks/pre-receive", remote);
    FILE *f = fopen(hook, "w");
    cr_assert_not_null(f);
    fputs("#!/bin/sh\necho 'frozen: no pushes today' >&2\nexit 1\n", f);
    fclose(f);
    cr_assert_eq(chmod(hook, 0755), 0);
    commit_file(repo, "m.txt", "mine\n", "mine");
    start_worker();
    step("{\"operation\":\"push\",\"branch\":\"main\",\"remote\":\"origin\"}",
         "fatal", &ev);
    cr_assert(msg_has(&ev, "pre-receive hook declined"), "%s", ev.res.message);
    cr_assert(msg_has(&ev, "frozen: no pushes today"), "%s", ev.res.message);
    wire_result_deinit(&ev.res);
}

Test(git, a_push_past_its_timeout_is_killed_with_its_git)
{
    struct event ev;
    char hook[200], pidfile[200];

    /* The hook runs under the step's git push: killing the step's process
     * group must take it too. */
    snprintf(pidfile, sizeof(pidfile), "%s/hook.pid", tmp);
    snprintf(hook, sizeof(hook), "%s/hooks/pre-receive", remote);
    FILE *f = fopen(hook, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\necho $$ > %s\nexec sleep 60\n", pidfile);
    fclose(f);
    cr_assert_eq(chmod(hook, 0755), 0);
    commit_file(repo, "m.txt", "mine\n", "mine");
    start_worker();
    step_job(repo, "{\"operation\":\"push\",\"branch\":\"main\"}", 1000,
             "timeout", &ev);
    wire_result_deinit(&ev.res);
    f = fopen(pidfile, "r");
    cr_assert_not_null(f, "the hook never ran");
    long pid = 0;
    cr_assert_eq(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    /* SIGTERM, then SIGKILL two seconds later: give it a little more. */
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 400 && kill((pid_t)pid, 0) == 0; i++)
        nanosleep(&tick, NULL);
    cr_assert_neq(kill((pid_t)pid, 0), 0, "the hook still runs");
}

Test(git, push_to_an_unknown_remote_is_fatal)
{
    struct event ev;

    start_worker();
    step("{\"operation\":\"push\",\"remote\":\"upstream\"}", "fatal", &ev);
    cr_assert(msg_has(&ev, "no remote 'upstream'"), "%s", ev.res.message);
    wire_result_deinit(&ev.res);
}

/* ---- fetch, pull, rebase ------------------------------------------------ */

Test(git, fetch_then_pull_fast_forwards_from_the_remote)
{
    struct event ev;
    char other[160];

    snprintf(other, sizeof(other), "%s/other", tmp);
    const char *clone[] = {git_bin(), "clone", "-q", remote, other, NULL};
    cr_assert_eq(procs_run(clone, genv, NULL, NULL), 0);
    commit_file(other, "o.txt", "other\n", "other");
    git_ok(other, "push", "-q", "origin", "main", NULL);
    const char *theirs = git_line(other, "rev-parse", "HEAD", NULL);
    const char *mine = git_line(repo, "rev-parse", "HEAD", NULL);

    start_worker();
    step("{\"operation\":\"fetch\"}", "success", &ev);
    cr_assert(rbool(&ev, "changed"));
    cr_assert_str_eq(git_line(repo, "rev-parse", "origin/main", NULL), theirs);
    cr_assert_str_eq(git_line(repo, "rev-parse", "HEAD", NULL), mine);
    wire_result_deinit(&ev.res);

    step("{\"operation\":\"pull\"}", "success", &ev);
    cr_assert(rbool(&ev, "changed"));
    rlist(&ev, "files", "o.txt", NULL);
    cr_assert_str_eq(rstr(&ev, "commit"), theirs);
    cr_assert_str_eq(git_line(repo, "rev-parse", "HEAD", NULL), theirs);
    cr_assert_str_eq(json_string_value(rprev(&ev, "commit")), mine);
    wire_result_deinit(&ev.res);
}

Test(git, pull_that_is_not_a_fast_forward_is_fatal)
{
    struct event ev;
    char other[160];

    snprintf(other, sizeof(other), "%s/other", tmp);
    const char *clone[] = {git_bin(), "clone", "-q", remote, other, NULL};
    cr_assert_eq(procs_run(clone, genv, NULL, NULL), 0);
    commit_file(other, "o.txt", "other\n", "other");
    git_ok(other, "push", "-q", "origin", "main", NULL);
    commit_file(repo, "m.txt", "mine\n", "mine");
    const char *mine = git_line(repo, "rev-parse", "HEAD", NULL);
    start_worker();
    step("{\"operation\":\"pull\",\"branch\":\"main\"}", "fatal", &ev);
    cr_assert(msg_has(&ev, "not a fast-forward"), "%s", ev.res.message);
    cr_assert_str_eq(git_line(repo, "rev-parse", "HEAD", NULL), mine);
    cr_assert(clean(repo));
    wire_result_deinit(&ev.res);
}

Test(git, rebase_moves_the_branch_onto_the_base)
{
    struct event ev;

    git_ok(repo, "switch", "-q", "-c", "topic", NULL);
    commit_file(repo, "t.txt", "topic\n", "topic");
    const char *before = git_line(repo, "rev-parse", "topic", NULL);
    git_ok(repo, "switch", "-q", "main", NULL);
    commit_file(repo, "m.txt", "main\n", "main moves");
    git_ok(repo, "switch", "-q", "topic", NULL);
    start_worker();
    step("{\"operation\":\"rebase\",\"base\":\"main\"}", "success", &ev);
    cr_assert(rbool(&ev, "changed"));
    cr_assert_str_eq(json_string_value(rprev(&ev, "commit")), before);
    cr_assert_str_eq(git_line(repo, "rev-parse", "topic~1", NULL),
                     git_line(repo, "rev-parse", "main", NULL));
    cr_assert_str_eq(branch_of(repo), "topic");
    wire_result_deinit(&ev.res);
}

Test(git, rebase_conflict_is_aborted_and_reported)
{
    struct event ev;

    git_ok(repo, "switch", "-q", "-c", "topic", NULL);
    commit_file(repo, "a.txt", "topic side\n", "topic");
    const char *before = git_line(repo, "rev-parse", "topic", NULL);
    git_ok(repo, "switch", "-q", "main", NULL);
    commit_file(repo, "a.txt", "main side\n", "main");
    start_worker();
    step("{\"operation\":\"rebase\",\"branch\":\"topic\",\"base\":\"main\"}",
         "fatal", &ev);
    rlist(&ev, "conflicts", "a.txt", NULL);
    cr_assert(msg_has(&ev, "rebase was aborted"), "%s", ev.res.message);
    cr_assert(clean(repo));
    cr_assert_str_eq(branch_of(repo), "main");
    cr_assert_str_eq(git_line(repo, "rev-parse", "topic", NULL), before);
    wire_result_deinit(&ev.res);
}

/* ---- hostile input ------------------------------------------------------ */

Test(git, hostile_names_are_rejected_before_git_runs)
{
    static const char *const names[] = {"--upload-pack=x", "../x",  "a b", "-f",
                                        "@{-1}",           "x.lock"};
    static const char *const keys[] = {"branch", "base"};
    struct event ev;
    char json[256];
    char *refs_before = NULL, *refs_after = NULL;

    git_ok(repo, "branch", "prev", NULL);
    cr_assert_eq(git(&refs_before, repo, "for-each-ref", NULL), 0);
    start_worker();
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            snprintf(
                json, sizeof(json),
                "{\"operation\":\"branch\",\"branch\":\"ok\",\"%s\":\"%s\"}",
                keys[k], names[i]);
            step(json, "fatal", &ev);
            cr_assert(msg_has(&ev, "is not a valid branch name"), "%s: %s",
                      names[i], ev.res.message);
            cr_assert(ev.res.result == NULL || json_is_null(ev.res.result),
                      "a result for %s", names[i]);
            wire_result_deinit(&ev.res);
        }
    }
    step("{\"operation\":\"push\",\"remote\":\"--upload-pack=touch x\"}",
         "fatal", &ev);
    cr_assert(msg_has(&ev, "is not a remote name"), "%s", ev.res.message);
    wire_result_deinit(&ev.res);
    step("{\"operation\":\"push\",\"remote\":\"ext::sh -c true\"}", "fatal",
         &ev);
    cr_assert(msg_has(&ev, "is not a remote name"), "%s", ev.res.message);
    wire_result_deinit(&ev.res);
    step("{\"operation\":\"rm -rf\"}", "fatal", &ev);
    cr_assert(msg_has(&ev, "unknown git operation"), "%s", ev.res.message);
    wire_result_deinit(&ev.res);

    cr_assert_eq(git(&refs_after, repo, "for-each-ref", NULL), 0);
    cr_assert_str_eq(refs_after, refs_before, "refs changed");
    cr_assert_str_eq(branch_of(repo), "main");
    struct stat sb;
    char path[200];
    snprintf(path, sizeof(path), "%s/x", repo);
    cr_assert_neq(stat(path, &sb), 0, "the hostile command ran");
    free(refs_before);
    free(refs_after);
}

Test(git, a_field_of_the_wrong_type_is_fatal)
{
    struct event ev;

    start_worker();
    step("{\"operation\":\"branch\",\"branch\":42}", "fatal", &ev);
    cr_assert(msg_has(&ev, "'branch' must render to a string"), "%s",
              ev.res.message);
    wire_result_deinit(&ev.res);
}

Test(git, a_directory_that_is_not_a_repository_is_fatal)
{
    struct event ev;
    char sub[160];

    /* Inside the repository, but not its top: git must not climb up. */
    snprintf(sub, sizeof(sub), "%s/sub", repo);
    cr_assert_eq(mkdir(sub, 0700), 0);
    start_worker();
    step_in(sub, "{\"operation\":\"commit\",\"message\":\"m\"}", "fatal", &ev);
    cr_assert(msg_has(&ev, "not a git working tree"), "%s", ev.res.message);
    wire_result_deinit(&ev.res);
}

/* ---- URL repoRoot: the clone cache -------------------------------------- */

Test(git, url_repo_root_is_cloned_into_the_workspace_cache_once)
{
    struct event ev;
    char url[200], cache[200], marker[220];
    struct stat sb;

    snprintf(url, sizeof(url), "file://%s", remote);
    snprintf(cache, sizeof(cache), "%s/%s/repo", workspaces, RUN);
    start_worker();
    step_in(url, "{\"operation\":\"branch\"}", "success", &ev);
    cr_assert_str_eq(branch_of(cache), "weft/r1");
    wire_result_deinit(&ev.res);

    /* A file left in the cache survives: the second step reuses it. */
    snprintf(marker, sizeof(marker), "%s/work.txt", cache);
    write_file(cache, "work.txt", "work\n");
    step_in(url, "{\"operation\":\"commit\",\"message\":\"work\"}", "success",
            &ev);
    rlist(&ev, "files", "work.txt", NULL);
    wire_result_deinit(&ev.res);
    cr_assert_eq(stat(marker, &sb), 0);

    step_in(url, "{\"operation\":\"push\"}", "success", &ev);
    cr_assert_str_eq(
        git_line(remote, "log", "-1", "--format=%s", "weft/r1", NULL), "work");
    wire_result_deinit(&ev.res);
}

Test(git, a_bare_repository_path_is_cloned_like_a_url)
{
    struct event ev;
    char cache[200];

    snprintf(cache, sizeof(cache), "%s/%s/repo", workspaces, RUN);
    start_worker();
    step_in(remote, "{\"operation\":\"checkout\",\"branch\":\"main\"}",
            "success", &ev);
    cr_assert_str_eq(branch_of(cache), "main");
    wire_result_deinit(&ev.res);
}

Test(git, an_unreachable_url_fails_retryably)
{
    struct event ev;
    char url[200];

    snprintf(url, sizeof(url), "file://%s/missing.git", tmp);
    start_worker();
    step_in(url, "{\"operation\":\"branch\"}", "error", &ev);
    cr_assert(msg_has(&ev, "cannot clone"), "%s", ev.res.message);
    wire_result_deinit(&ev.res);
}

Test(git, credentials_in_a_url_never_reach_the_result)
{
    struct event ev;

    start_worker();
    /* Port 1 refuses at once: the clone fails without a network. */
    step_in("https://user:s3cret@127.0.0.1:1/x.git",
            "{\"operation\":\"branch\"}", "error", &ev);
    cr_assert(msg_has(&ev, "cannot clone 'https://***@127.0.0.1:1/x.git'"),
              "%s", ev.res.message);
    cr_assert_not(msg_has(&ev, "s3cret"), "%s", ev.res.message);
    wire_result_deinit(&ev.res);
}

/* ---- rollback ----------------------------------------------------------- */

/* The change a step's result records, as finish.lua writes it into
 * gitState.changes (common/lua/lib.lua): appended to changes. */
static void add_change(json_t *changes, const struct event *ev)
{
    const json_t *p = json_object_get(ev->res.result, "previous");
    const char *op = rstr(ev, "operation");
    cr_assert(json_is_object(p));
    json_t *c = json_pack(
        "{s:s, s:O, s:O, s:O, s:O}", "op", op, "ref", json_object_get(p, "ref"),
        "created", json_object_get(p, "created"), "before",
        json_object_get(p, "commit"), "head", json_object_get(p, "head"));
    if (strcmp(op, "push") == 0) {
        json_object_set(c, "remote", json_object_get(ev->res.result, "remote"));
        json_object_set(c, "pushed", json_object_get(ev->res.result, "pushed"));
    }
    json_array_append_new(changes, c);
}

static void rollback_step(const json_t *changes, const char *want,
                          struct event *ev)
{
    json_t *g =
        json_pack("{s:s, s:O}", "operation", "rollback", "changes", changes);
    char *text = json_dumps(g, JSON_COMPACT);
    step(text, want, ev);
    free(text);
    json_decref(g);
}

/* The action of the restored entry for ref on remote (NULL: local). */
static const char *action_of(const struct event *ev, const char *ref,
                             const char *remote_name)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(ev->res.result, "restored"), i, e)
    {
        const json_t *r = json_object_get(e, "remote");
        if (strcmp(json_string_value(json_object_get(e, "ref")), ref) == 0 &&
            (remote_name ? json_is_string(r) &&
                               strcmp(json_string_value(r), remote_name) == 0
                         : json_is_null(r)))
            return json_string_value(json_object_get(e, "action"));
    }
    return "(none)";
}

static bool remote_has(const char *branch)
{
    char *out = NULL;
    char ref[128];
    snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
    cr_assert_eq(git(&out, remote, "for-each-ref", ref, NULL), 0);
    bool has = out != NULL && out[0] != '\0';
    free(out);
    return has;
}

Test(git, rollback_deletes_created_branches_and_resets_moved_ones)
{
    struct event ev;
    json_t *changes = json_array();
    char base[64];

    snprintf(base, sizeof(base), "%s",
             git_line(repo, "rev-parse", "main", NULL));
    start_worker();
    /* The run: a feature branch, a commit, a push; then main moved and
     * pushed too. */
    step("{\"operation\":\"branch\",\"branch\":\"feature\"}", "success", &ev);
    add_change(changes, &ev);
    wire_result_deinit(&ev.res);
    write_file(repo, "f.txt", "feature\n");
    step("{\"operation\":\"commit\",\"message\":\"feature\"}", "success", &ev);
    add_change(changes, &ev);
    wire_result_deinit(&ev.res);
    step("{\"operation\":\"push\"}", "success", &ev);
    cr_assert_str_eq(rstr(&ev, "pushed"),
                     git_line(repo, "rev-parse", "feature", NULL));
    add_change(changes, &ev);
    wire_result_deinit(&ev.res);
    step("{\"operation\":\"merge\",\"branch\":\"feature\",\"base\":\"main\"}",
         "success", &ev);
    add_change(changes, &ev);
    wire_result_deinit(&ev.res);
    step("{\"operation\":\"push\",\"branch\":\"main\"}", "success", &ev);
    add_change(changes, &ev);
    wire_result_deinit(&ev.res);
    cr_assert_str_neq(git_line(remote, "rev-parse", "main", NULL), base);
    /* Uncommitted work the run left behind. */
    write_file(repo, "a.txt", "scribbled\n");

    rollback_step(changes, "success", &ev);
    cr_assert_str_eq(action_of(&ev, "feature", NULL), "deleted");
    cr_assert_str_eq(action_of(&ev, "main", NULL), "reset");
    cr_assert_str_eq(action_of(&ev, "feature", "origin"), "deleted");
    cr_assert_str_eq(action_of(&ev, "main", "origin"), "reset");
    cr_assert_eq(json_array_size(json_object_get(ev.res.result, "failed")), 0);
    cr_assert(rbool(&ev, "changed"));
    cr_assert_str_eq(rstr(&ev, "head"), "main");
    wire_result_deinit(&ev.res);
    /* Locally: feature gone, main where it was, on main, clean. */
    char *out = NULL;
    cr_assert_eq(git(&out, repo, "branch", "--list", "feature", NULL), 0);
    cr_assert_str_eq(out ? out : "", "");
    free(out);
    cr_assert_str_eq(git_line(repo, "rev-parse", "main", NULL), base);
    cr_assert_str_eq(branch_of(repo), "main");
    cr_assert(clean(repo));
    /* On the remote too. */
    cr_assert_not(remote_has("feature"));
    cr_assert_str_eq(git_line(remote, "rev-parse", "main", NULL), base);

    /* Again (a reclaimed job): nothing left to do, nothing done. */
    rollback_step(changes, "success", &ev);
    cr_assert_str_eq(action_of(&ev, "feature", NULL), "absent");
    cr_assert_str_eq(action_of(&ev, "main", NULL), "unchanged");
    cr_assert_str_eq(action_of(&ev, "feature", "origin"), "absent");
    cr_assert_str_eq(action_of(&ev, "main", "origin"), "unchanged");
    cr_assert_not(rbool(&ev, "changed"));
    wire_result_deinit(&ev.res);
    json_decref(changes);
}

Test(git, rollback_leaves_a_remote_branch_someone_else_pushed_to)
{
    struct event ev;
    json_t *changes = json_array();
    char other[160];

    start_worker();
    step("{\"operation\":\"branch\",\"branch\":\"shared\"}", "success", &ev);
    add_change(changes, &ev);
    wire_result_deinit(&ev.res);
    write_file(repo, "s.txt", "mine\n");
    step("{\"operation\":\"commit\",\"message\":\"mine\"}", "success", &ev);
    add_change(changes, &ev);
    wire_result_deinit(&ev.res);
    step("{\"operation\":\"push\"}", "success", &ev);
    add_change(changes, &ev);
    wire_result_deinit(&ev.res);
    /* Someone builds on the pushed branch. */
    snprintf(other, sizeof(other), "%s/other", tmp);
    const char *clone[] = {git_bin(), "clone", "-q",  "-b",
                           "shared",  remote,  other, NULL};
    cr_assert_eq(procs_run(clone, genv, NULL, NULL), 0);
    commit_file(other, "o.txt", "theirs\n", "theirs");
    git_ok(other, "push", "-q", "origin", "shared", NULL);
    char theirs[64];
    snprintf(theirs, sizeof(theirs), "%s",
             git_line(other, "rev-parse", "HEAD", NULL));

    rollback_step(changes, "fatal", &ev);
    cr_assert(msg_has(&ev, "moved since the run pushed it"), "%s",
              ev.res.message);
    cr_assert_str_eq(action_of(&ev, "shared", NULL), "deleted");
    const json_t *f =
        json_array_get(json_object_get(ev.res.result, "failed"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(f, "ref")), "shared");
    cr_assert_str_eq(json_string_value(json_object_get(f, "remote")), "origin");
    wire_result_deinit(&ev.res);
    /* Their work is untouched; ours is gone locally. */
    cr_assert_str_eq(git_line(remote, "rev-parse", "shared", NULL), theirs);
    cr_assert_str_eq(branch_of(repo), "main");
    json_decref(changes);
}

Test(git, rollback_refuses_bad_changes_before_touching_anything)
{
    struct event ev;
    start_worker();
    const char *bad[] = {
        "{\"operation\":\"rollback\"}",
        "{\"operation\":\"rollback\",\"changes\":{}}",
        "{\"operation\":\"rollback\",\"changes\":[{\"ref\":\"-f\","
        "\"created\":true}]}",
        "{\"operation\":\"rollback\",\"changes\":[{\"ref\":\"x\","
        "\"remote\":\"file:///tmp\",\"created\":true}]}",
        "{\"operation\":\"rollback\",\"changes\":[{\"ref\":\"main\","
        "\"before\":\"HEAD~1\"}]}",
        "{\"operation\":\"rollback\",\"changes\":[{\"ref\":7}]}",
        "{\"operation\":\"rollback\",\"changes\":[{\"ref\":\"main\","
        "\"created\":\"yes\"}]}",
    };
    const char *main_oid = git_line(repo, "rev-parse", "main", NULL);
    char keep[64];
    snprintf(keep, sizeof(keep), "%s", main_oid);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        step(bad[i], "fatal", &ev);
        wire_result_deinit(&ev.res);
    }
    cr_assert_str_eq(git_line(repo, "rev-parse", "main", NULL), keep);
    cr_assert_str_eq(branch_of(repo), "main");
}
