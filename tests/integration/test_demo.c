/* test_demo.c - the README's demo as a test: the shipped workflows,
 * routes and example personas, run by `weft run` through the coordinator
 * on a real git repository with a bare origin, against a real
 * redis-server. Checks what the demo promises: the plan file, QA's
 * verdict in the run's state, the merge commit on main, pushed, and the
 * hotfix route.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "alloc.h"
#include "procs.h"
#include "rconn.h"
#include "redis_fixture.h"
#include "redisurl.h"

static struct redis_fixture fx;
static char dir[] = "/tmp/weft-demo-test-XXXXXX";
static char repo[128], origin[128];

static int git(const char *const argv[])
{
    char *err = NULL;
    int rc = procs_run(argv, NULL, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "git failed (%d): %s\n", rc, err);
    free(err);
    return rc;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    weft_alloc_init();
    cr_assert_not_null(mkdtemp(dir));
    snprintf(repo, sizeof(repo), "%s/repo", dir);
    snprintf(origin, sizeof(origin), "%s/origin.git", dir);
    cr_assert_eq(
        git((const char *const[]){"/usr/bin/git", "init", "-q", "--bare", "-b",
                                  "main", origin, NULL}),
        0);
    cr_assert_eq(git((const char *const[]){"/usr/bin/git", "init", "-q", "-b",
                                           "main", repo, NULL}),
                 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/app.py", repo);
    write_file(path, "def hello():\n    return \"hello\"\n");
    snprintf(path, sizeof(path), "%s/test_app.py", repo);
    write_file(path, "import unittest\n\nimport app\n\n\n"
                     "class AppTest(unittest.TestCase):\n"
                     "    def test_hello(self):\n"
                     "        self.assertEqual(app.hello(), \"hello\")\n");
    cr_assert_eq(git((const char *const[]){"/usr/bin/git", "-C", repo, "add",
                                           "-A", NULL}),
                 0);
    cr_assert_eq(
        git((const char *const[]){"/usr/bin/git", "-C", repo, "-c",
                                  "user.name=t", "-c", "user.email=t@localhost",
                                  "commit", "-q", "-m", "initial", NULL}),
        0);
    cr_assert_eq(git((const char *const[]){"/usr/bin/git", "-C", repo, "remote",
                                           "add", "origin", origin, NULL}),
                 0);
    cr_assert_eq(git((const char *const[]){"/usr/bin/git", "-C", repo, "push",
                                           "-q", "origin", "main", NULL}),
                 0);
    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
}

static void teardown(void)
{
    redis_fixture_stop(&fx);
    const char *argv[] = {"/bin/rm", "-rf", dir, NULL};
    procs_run(argv, NULL, NULL, NULL);
}

/* Runs a task through the coordinator; returns the final document. */
static json_t *run_task(const char *task_json)
{
    char task[256], weft[512];
    snprintf(task, sizeof(task), "%s/task.json", dir);
    write_file(task, task_json);
    const char *argv[] = {procs_binary("cli/weft", weft, sizeof(weft)),
                          "run",
                          "--task",
                          task,
                          "--redis",
                          fx.url,
                          "--workflows",
                          WEFT_SOURCE_ROOT "/workflows",
                          "--json",
                          NULL};
    char *out = NULL, *err = NULL;
    int rc = procs_run(argv, NULL, &out, &err);
    json_t *doc = json_loads(out ? out : "", 0, NULL);
    cr_assert_eq(rc, 0, "weft run failed (%d): %s\n%s", rc, out, err);
    cr_assert_not_null(doc, "not JSON: %s", out);
    free(out);
    free(err);
    return doc;
}

static char *state_of(const char *run, const char *key)
{
    static char buf[256];
    struct redis_url u;
    cr_assert_eq(redis_url_parse(fx.url, &u, NULL), 0);
    redisContext *c = rconn_connect_sync(&u, 2000, NULL);
    redis_url_deinit(&u);
    cr_assert_not_null(c);
    redisReply *r = redisCommand(c, "HGET weft:run:%s:state %s", run, key);
    snprintf(buf, sizeof(buf), "%s",
             r && r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    redisFree(c);
    return buf;
}

static char *git_out(const char *const argv[])
{
    static char buf[4096];
    char *out = NULL;
    cr_assert_eq(procs_run(argv, NULL, &out, NULL), 0);
    snprintf(buf, sizeof(buf), "%s", out ? out : "");
    free(out);
    return buf;
}

Test(demo, feature_and_hotfix_tasks_run_end_to_end_on_a_real_repository,
     .init = setup, .fini = teardown, .timeout = 300)
{
    char task[512];
    snprintf(task, sizeof(task),
             "{\"type\": \"feature\", \"project\": \"demo\", \"slug\": "
             "\"greeting\", \"title\": \"Add greeting\", \"repoRoot\": "
             "\"%s\", \"baseBranch\": \"main\"}",
             repo);
    json_t *doc = run_task(task);
    const char *run = json_string_value(json_object_get(doc, "id"));
    cr_assert_str_eq(json_string_value(json_object_get(doc, "status")),
                     "success");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "workflow")),
                     "feature", "the coordinator routes type feature");
    /* QA ran the project's own tests and said pass; reviews approved. */
    cr_assert_str_eq(state_of(run, "qa_status"), "\"pass\"");
    cr_assert_str_eq(state_of(run, "code_review_status"), "\"approved\"");
    json_decref(doc);

    char path[256];
    snprintf(path, sizeof(path), "%s/PLAN.md", repo);
    cr_assert_eq(access(path, R_OK), 0, "the planner wrote PLAN.md");
    /* The run's branch was merged into main, and main was pushed. */
    char *merges =
        git_out((const char *const[]){"/usr/bin/git", "-C", origin, "log",
                                      "--merges", "--format=%s", "main", NULL});
    cr_assert(strstr(merges, "Merge feat/greeting") != NULL, "%s", merges);

    snprintf(task, sizeof(task),
             "{\"type\": \"hotfix\", \"project\": \"demo\", \"slug\": "
             "\"fix-greeting\", \"title\": \"Fix greeting\", \"repoRoot\": "
             "\"%s\", \"baseBranch\": \"main\"}",
             repo);
    doc = run_task(task);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "status")),
                     "success");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "workflow")),
                     "hotfix", "the coordinator routes type hotfix");
    json_decref(doc);
    merges =
        git_out((const char *const[]){"/usr/bin/git", "-C", origin, "log",
                                      "--merges", "--format=%s", "main", NULL});
    cr_assert(strstr(merges, "Merge hotfix/fix-greeting") != NULL, "%s",
              merges);
}
