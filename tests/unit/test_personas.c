/* test_personas.c - the persona registry (worker/personas.h) and run
 * workspaces (worker/workspace.h): formats, every error with its
 * position, limits at the boundary and one past it. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "personas.h"
#include "workspace.h"

static void setup(void)
{
    weft_alloc_init();
}

TestSuite(personas, .init = setup);

/* Loads text with relative programs resolved against /reg. */
static int load(const char *text, struct personas **out, struct diag *d)
{
    diag_init(d, "personas.yml");
    return personas_load_buffer(text, strlen(text), "/reg", out, d);
}

/* Expects text to fail with one diagnostic containing want at line:col. */
static void expect_error(const char *text, int line, int col, const char *want)
{
    struct personas *r = NULL;
    struct diag d;
    int rc = load(text, &r, &d);
    cr_assert_neq(rc, 0, "loaded: %s", text);
    cr_assert_null(r);
    cr_assert_geq(d.count, 1);
    bool found = false;
    for (size_t i = 0; i < d.count; i++) {
        if (strstr(d.entries[i].message, want) != NULL) {
            found = true;
            cr_assert_eq(d.entries[i].line, line, "line %d of '%s'",
                         d.entries[i].line, d.entries[i].message);
            cr_assert_eq(d.entries[i].column, col, "column %d of '%s'",
                         d.entries[i].column, d.entries[i].message);
        }
    }
    if (!found)
        diag_print(&d, stderr);
    cr_assert(found, "no error containing '%s'", want);
    diag_deinit(&d);
}

Test(personas, loads_the_issue_example)
{
    const char *text =
        "personas:\n"
        "  lead-engineer:\n"
        "    exec: [\"./personas/lead-engineer.sh\", \"--fast\"]\n"
        "    timeout: 1800\n"
        "    env: {MODEL: \"large\", DEPTH: 3}\n"
        "    queue: engineers\n"
        "  qa:\n"
        "    exec: [python3, /opt/qa.py]\n";
    struct personas *r = NULL;
    struct diag d;
    cr_assert_eq(load(text, &r, &d), 0);
    cr_assert_eq(personas_count(r), 2);
    const struct persona *p = personas_find(r, "lead-engineer");
    cr_assert_not_null(p);
    cr_assert_str_eq(p->argv[0], "/reg/./personas/lead-engineer.sh");
    cr_assert_str_eq(p->argv[1], "--fast");
    cr_assert_null(p->argv[2]);
    cr_assert_eq(p->timeout_ms, 1800000);
    cr_assert_str_eq(p->env[0], "MODEL=large");
    cr_assert_str_eq(p->env[1], "DEPTH=3");
    cr_assert_null(p->env[2]);
    cr_assert_str_eq(p->queue, "engineers");
    cr_assert_eq(p->line, 2);
    p = personas_find(r, "qa");
    cr_assert_str_eq(p->argv[0], "python3", "bare names use PATH");
    cr_assert_str_eq(p->argv[1], "/opt/qa.py");
    cr_assert_eq(p->timeout_ms, 0);
    cr_assert_null(p->env[0]);
    cr_assert_str_eq(p->queue, "qa", "the queue defaults to the name");
    cr_assert_null(personas_find(r, "nobody"));
    cr_assert_eq(personas_at(r, 1), p);
    cr_assert_null(personas_at(r, 2));
    personas_free(r);
    diag_deinit(&d);
}

Test(personas, empty_registry_is_valid)
{
    struct personas *r = NULL;
    struct diag d;
    cr_assert_eq(load("personas:\n", &r, &d), 0);
    cr_assert_eq(personas_count(r), 0);
    personas_free(r);
    diag_deinit(&d);
    cr_assert_eq(load("personas: {}\n", &r, &d), 0);
    personas_free(r);
    diag_deinit(&d);
}

Test(personas, suggests_a_close_persona)
{
    struct personas *r = NULL;
    struct diag d;
    cr_assert_eq(load("personas:\n  qa-engineer: {exec: [x]}\n"
                      "  code-reviewer: {exec: [y]}\n",
                      &r, &d),
                 0);
    cr_assert_str_eq(personas_suggest(r, "qa-enginer"), "qa-engineer");
    cr_assert_str_eq(personas_suggest(r, "code-review"), "code-reviewer");
    cr_assert_null(personas_suggest(r, "planner"));
    cr_assert_null(personas_suggest(r, "qa-engineer"), "not itself");
    personas_free(r);
    diag_deinit(&d);
}

Test(personas, unknown_key_has_a_hint_and_position)
{
    expect_error("personas:\n  a:\n    exec: [x]\n    timout: 3\n", 4, 5,
                 "unknown key 'timout' (did you mean 'timeout'?)");
    expect_error("persona:\n  a: {exec: [x]}\n", 1, 1,
                 "unknown key 'persona' (did you mean 'personas'?)");
    expect_error("personas:\n  a:\n    exec: [x]\n    colour: red\n", 4, 5,
                 "unknown key 'colour'");
}

Test(personas, exec_must_be_a_non_empty_argv_list)
{
    expect_error("personas:\n  a:\n    timeout: 3\n", 3, 5,
                 "'exec' is missing");
    expect_error("personas:\n  a:\n    exec: \"./run.sh --x\"\n", 3, 11,
                 "never a shell");
    expect_error("personas:\n  a:\n    exec: []\n", 3, 11, "1 to 64 arguments");
    expect_error("personas:\n  a:\n    exec: [\"\"]\n", 3, 12,
                 "non-empty string");
    expect_error("personas:\n  a:\n    exec: [x, null]\n", 3, 15, "argument 1");
    expect_error("personas:\n  a:\n    exec: [x, [y]]\n", 3, 15, "argument 1");
    expect_error("personas:\n  a:\n    exec: [\"a\\0b\"]\n", 3, 12, "NUL");
}

Test(personas, exec_argument_count_limit)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    buf_append_str(&b, "personas:\n  a:\n    exec: [x");
    for (int i = 1; i < PERSONA_ARGV_MAX; i++)
        buf_append_str(&b, ", y");
    buf_append_str(&b, "]\n");
    struct personas *r = NULL;
    struct diag d;
    cr_assert_eq(load(b.data, &r, &d), 0, "64 arguments load");
    personas_free(r);
    diag_deinit(&d);
    b.len -= 2;
    buf_append_str(&b, ", z]\n");
    expect_error(b.data, 3, 11, "1 to 64 arguments, not 65");
    buf_deinit(&b);
}

Test(personas, timeout_bounds)
{
    struct personas *r = NULL;
    struct diag d;
    cr_assert_eq(load("personas:\n  a: {exec: [x], timeout: 604800}\n"
                      "  b: {exec: [x], timeout: 0.5}\n",
                      &r, &d),
                 0);
    cr_assert_eq(personas_find(r, "a")->timeout_ms, 604800000ull);
    cr_assert_eq(personas_find(r, "b")->timeout_ms, 500);
    personas_free(r);
    diag_deinit(&d);
    expect_error("personas:\n  a: {exec: [x], timeout: 604801}\n", 2, 27,
                 "at most 604800");
    expect_error("personas:\n  a: {exec: [x], timeout: 0}\n", 2, 27, "above 0");
    expect_error("personas:\n  a: {exec: [x], timeout: -1}\n", 2, 27,
                 "'timeout'");
    expect_error("personas:\n  a: {exec: [x], timeout: \"10\"}\n", 2, 27,
                 "'timeout'");
}

Test(personas, env_names_values_and_reserved_names)
{
    expect_error("personas:\n  a: {exec: [x], env: [A]}\n", 2, 23,
                 "'env' must be a mapping");
    expect_error("personas:\n  a: {exec: [x], env: {1A: x}}\n", 2, 24,
                 "env name '1A'");
    expect_error("personas:\n  a: {exec: [x], env: {A-B: x}}\n", 2, 24,
                 "env name 'A-B'");
    expect_error("personas:\n  a: {exec: [x], env: {A: [x]}}\n", 2, 27,
                 "env 'A' must be a scalar");
    expect_error("personas:\n  a: {exec: [x], env: {A: null}}\n", 2, 27,
                 "env 'A' must be a scalar");
    expect_error("personas:\n  a: {exec: [x], env: {WEFT_RUN_ID: x}}\n", 2, 24,
                 "set by the worker");
    expect_error("personas:\n  a: {exec: [x], env: {TRACEPARENT: x}}\n", 2, 24,
                 "set by the worker");
}

Test(personas, env_entry_limit)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    buf_append_str(&b, "personas:\n  a:\n    exec: [x]\n    env: {E0: v");
    for (int i = 1; i < PERSONA_ENV_MAX; i++)
        buf_printf(&b, ", E%d: v", i);
    buf_append_str(&b, "}\n");
    struct personas *r = NULL;
    struct diag d;
    cr_assert_eq(load(b.data, &r, &d), 0, "64 entries load");
    cr_assert_str_eq(personas_find(r, "a")->env[63], "E63=v");
    personas_free(r);
    diag_deinit(&d);
    b.len -= 2;
    buf_append_str(&b, ", E64: v}\n");
    expect_error(b.data, 4, 10, "65 entries; at most 64");
    buf_deinit(&b);
}

Test(personas, names_and_queues_are_ids)
{
    expect_error("personas:\n  \"a b\": {exec: [x]}\n", 2, 3,
                 "persona name 'a b'");
    expect_error("personas:\n  a: {exec: [x], queue: \"q/1\"}\n", 2, 25,
                 "'queue' must be");
    expect_error("personas:\n  a: {exec: [x], queue: 3}\n", 2, 25,
                 "'queue' must be");
}

Test(personas, structure_errors)
{
    expect_error("- a\n", 1, 1, "a mapping with the key 'personas'");
    expect_error("other: 1\n", 1, 1, "'personas' is missing");
    expect_error("personas: [a]\n", 1, 11, "must be a mapping of name");
    expect_error("personas:\n  a: [x]\n", 2, 6, "must be a mapping with");
    expect_error("personas:\n  a: {exec: [x]}\n  a: {exec: [y]}\n", 3, 3,
                 "duplicate");
    expect_error("personas: {a: [\n", 2, 1, "");
}

Test(personas, reports_every_problem)
{
    struct personas *r = NULL;
    struct diag d;
    cr_assert_neq(load("personas:\n  a: {exec: [], timeout: 0}\n"
                       "  b: {exec: [x], queue: \"/\"}\n",
                       &r, &d),
                  0);
    cr_assert_eq(d.errors, 3);
    diag_deinit(&d);
}

Test(personas, persona_count_limit)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_append_str(&b, "personas:\n");
    for (int i = 0; i < PERSONAS_MAX; i++)
        buf_printf(&b, "  p%d: {exec: [x]}\n", i);
    struct personas *r = NULL;
    struct diag d;
    cr_assert_eq(load(b.data, &r, &d), 0);
    cr_assert_eq(personas_count(r), PERSONAS_MAX);
    personas_free(r);
    diag_deinit(&d);
    buf_printf(&b, "  p%d: {exec: [x]}\n", PERSONAS_MAX);
    expect_error(b.data, 2, 3, "at most 1024");
    buf_deinit(&b);
}

Test(personas, reads_breakers_of_personas_and_remotes)
{
    const char *text = "personas:\n"
                       "  qa:\n"
                       "    exec: [x]\n"
                       "    breaker: {failures: 4, window: 30, cooldown: 1.5}\n"
                       "  dev: {exec: [y]}\n"
                       "remotes:\n"
                       "  origin:\n"
                       "    breaker: {cooldown: 90}\n"
                       "  mirror: {}\n";
    struct personas *r = NULL;
    struct diag d;
    cr_assert_eq(load(text, &r, &d), 0);
    const struct persona *qa = personas_find(r, "qa");
    cr_assert(qa->breaker.set);
    cr_assert_eq(qa->breaker.failures, 4);
    cr_assert_eq(qa->breaker.window_ms, 30000);
    cr_assert_eq(qa->breaker.cooldown_ms, 1500);
    cr_assert_not(personas_find(r, "dev")->breaker.set);
    const struct breaker_cfg *o = personas_remote_breaker(r, "origin");
    cr_assert_not_null(o);
    cr_assert_eq(o->cooldown_ms, 90000);
    cr_assert_eq(o->failures, 0, "not given: the default applies");
    cr_assert_null(personas_remote_breaker(r, "mirror"), "no breaker given");
    cr_assert_null(personas_remote_breaker(r, "nowhere"));
    cr_assert_null(personas_remote_breaker(NULL, "origin"));
    personas_free(r);
    diag_deinit(&d);
}

Test(personas, breaker_errors_have_positions_and_hints)
{
    expect_error("personas:\n  qa:\n    exec: [x]\n    breaker: true\n", 4, 14,
                 "persona 'qa': 'breaker' must be a mapping {failures, "
                 "window, cooldown}, got a boolean");
    expect_error("personas:\n  qa:\n    exec: [x]\n"
                 "    breaker: {failurs: 3}\n",
                 4, 15,
                 "persona 'qa': 'breaker': unknown key 'failurs' (did you "
                 "mean 'failures'?)");
    expect_error("personas:\n  qa:\n    exec: [x]\n"
                 "    breaker: {failures: 1001}\n",
                 4, 25, "'failures' must be an integer from 1 to 1000");
    expect_error("personas: {}\nremotes:\n  origin: {breakr: {}}\n", 3, 12,
                 "remote 'origin': unknown key 'breakr' (did you mean "
                 "'breaker'?)");
    expect_error("personas: {}\nremotes:\n  \"a b\": {}\n", 3, 3,
                 "remote name 'a b' must be");
    expect_error("personas: {}\nremotes: [origin]\n", 2, 10,
                 "'remotes' must be a mapping");
    expect_error("personas: {}\nremotes:\n  origin:\n"
                 "    breaker: {cooldown: 0}\n",
                 4, 25, "remote 'origin': 'breaker': 'cooldown' must be");
    expect_error("personas: {}\nremots: {}\n", 2, 1,
                 "unknown key 'remots' (did you mean 'remotes'?)");
}

Test(personas, remote_count_limit)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_append_str(&b, "personas: {}\nremotes:\n");
    for (int i = 0; i < PERSONAS_REMOTES_MAX; i++)
        buf_printf(&b, "  r%d: {breaker: {failures: 2}}\n", i);
    struct personas *r = NULL;
    struct diag d;
    cr_assert_eq(load(b.data, &r, &d), 0);
    cr_assert_not_null(personas_remote_breaker(r, "r255"));
    personas_free(r);
    diag_deinit(&d);
    buf_printf(&b, "  r%d: {}\n", PERSONAS_REMOTES_MAX);
    expect_error(b.data, 3, 3, "at most 256");
    buf_deinit(&b);
}

Test(personas, file_resolves_programs_against_its_directory)
{
    char dir[] = "/tmp/weft-personas-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/reg.yml", dir);
    FILE *f = fopen(path, "w");
    fputs("personas:\n  a:\n    exec: [\"bin/a.sh\", \"rel/arg\"]\n", f);
    fclose(f);
    struct personas *r = NULL;
    struct diag d;
    diag_init(&d, path);
    cr_assert_eq(personas_load_file(path, &r, &d), 0);
    char want[300];
    snprintf(want, sizeof(want), "%s/bin/a.sh", dir);
    cr_assert_str_eq(personas_find(r, "a")->argv[0], want);
    cr_assert_str_eq(personas_find(r, "a")->argv[1], "rel/arg");
    cr_assert_str_eq(personas_path(r), path);
    personas_free(r);
    diag_deinit(&d);
    unlink(path);
    rmdir(dir);
}

Test(personas, missing_and_oversized_files)
{
    struct personas *r = NULL;
    struct diag d;
    diag_init(&d, "x");
    cr_assert_eq(personas_load_file("/nonexistent/weft/p.yml", &r, &d),
                 WEFT_ENOENT);
    diag_deinit(&d);

    char path[] = "/tmp/weft-personas-big-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, PERSONAS_FILE_MAX), 0, "at the limit");
    close(fd);
    diag_init(&d, path);
    /* Exactly the limit is read (and is not YAML: NUL bytes). */
    cr_assert_neq(personas_load_file(path, &r, &d), WEFT_ELIMIT);
    diag_deinit(&d);
    cr_assert_eq(truncate(path, PERSONAS_FILE_MAX + 1), 0);
    diag_init(&d, path);
    cr_assert_eq(personas_load_file(path, &r, &d), WEFT_ELIMIT);
    diag_deinit(&d);
    unlink(path);
}

Test(personas, shipped_registry_loads_and_its_programs_exist)
{
    struct personas *r = NULL;
    struct diag d;
    const char *path = WEFT_SOURCE_ROOT "/workflows/personas.yml";
    diag_init(&d, path);
    int rc = personas_load_file(path, &r, &d);
    if (rc != 0)
        diag_print(&d, stderr);
    cr_assert_eq(rc, 0);
    static const char *const seed[] = {
        "implementation-planner", "plan-evaluator",
        "lead-engineer",          "qa-engineer",
        "code-reviewer",          "security-review",
        "hotfix-specialist",      "frontend-engineer",
        "technical-writer"};
    for (size_t i = 0; i < sizeof(seed) / sizeof(seed[0]); i++) {
        const struct persona *p = personas_find(r, seed[i]);
        cr_assert_not_null(p, "%s missing", seed[i]);
        cr_assert_eq(access(p->argv[0], X_OK), 0, "%s: %s not executable",
                     seed[i], p->argv[0]);
    }
    personas_free(r);
    diag_deinit(&d);
}

/* ---- workspaces ---------------------------------------------------------
 */

Test(workspace, existing_repo_root_is_used)
{
    char *out = NULL;
    cr_assert_eq(workspace_resolve("r1", "/tmp", &out, NULL), 0);
    cr_assert_str_eq(out, "/tmp");
    weft_free(out);
}

Test(workspace, run_directory_is_created_under_the_root)
{
    char dir[] = "/tmp/weft-ws-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char root[128];
    snprintf(root, sizeof(root), "%s/a/b", dir);
    cr_assert_eq(workspace_set_root(root, NULL), 0);
    cr_assert_str_eq(workspace_root(), root);
    char *out = NULL;
    cr_assert_eq(
        workspace_resolve("run-1", "https://example.com/x.git", &out, NULL), 0);
    char want[160];
    snprintf(want, sizeof(want), "%s/run-1", root);
    cr_assert_str_eq(out, want);
    struct stat st;
    cr_assert_eq(stat(out, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0700);
    weft_free(out);
    /* Again: it exists already. */
    cr_assert_eq(workspace_resolve("run-1", NULL, &out, NULL), 0);
    weft_free(out);
    rmdir(want);
    snprintf(want, sizeof(want), "%s/a/b", dir);
    rmdir(want);
    snprintf(want, sizeof(want), "%s/a", dir);
    rmdir(want);
    rmdir(dir);
}

Test(workspace, dot_run_ids_and_bad_ids_are_refused)
{
    char *out = NULL;
    struct weft_error err;
    cr_assert_eq(workspace_resolve("..", NULL, &out, &err), WEFT_EINVAL);
    cr_assert_eq(workspace_resolve(".", NULL, &out, &err), WEFT_EINVAL);
    cr_assert_eq(workspace_resolve("a/b", NULL, &out, &err), WEFT_EINVAL);
    cr_assert_eq(workspace_resolve("", NULL, &out, &err), WEFT_EINVAL);
    cr_assert_null(out);
}

Test(workspace, relative_root_becomes_absolute)
{
    char cwd[PATH_MAX], want[PATH_MAX + 8];
    cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
    cr_assert_eq(workspace_set_root("ws", NULL), 0);
    snprintf(want, sizeof(want), "%s/ws", cwd);
    cr_assert_str_eq(workspace_root(), want);
    cr_assert_eq(workspace_set_root("", NULL), WEFT_EINVAL);
    cr_assert_eq(workspace_set_root(NULL, NULL), 0);
    cr_assert_str_eq(workspace_root(), WORKSPACE_DEFAULT_ROOT);
}

Test(workspace, uncreatable_directory_is_an_io_error)
{
    char *out = NULL;
    struct weft_error err;
    cr_assert_eq(workspace_set_root("/proc/weft-no", NULL), 0);
    cr_assert_eq(workspace_resolve("r1", NULL, &out, &err), WEFT_EIO);
    cr_assert_not_null(strstr(err.msg, "/proc/weft-no"), "%s", err.msg);
}
