/* test_routes.c - the coordinator's routing rules: loading with
 * positioned errors, and first-match selection with a default. */
#include <criterion/criterion.h>
#include <string.h>

#include "alloc.h"
#include "routes.h"

static struct routes *load_ok(const char *yaml)
{
    struct diag d;
    diag_init(&d, "routes.yml");
    struct routes *r = NULL;
    int rc = routes_load_buffer(yaml, strlen(yaml), &r, &d);
    if (rc)
        diag_print(&d, stderr);
    diag_deinit(&d);
    cr_assert_eq(rc, 0);
    return r;
}

/* Every diagnostic as "LINE:COL: MESSAGE" lines. */
static void load_bad(const char *yaml, char *first, size_t size)
{
    struct diag d;
    diag_init(&d, "routes.yml");
    struct routes *r = NULL;
    cr_assert_neq(routes_load_buffer(yaml, strlen(yaml), &r, &d), 0);
    cr_assert_null(r);
    cr_assert_gt(d.count, 0);
    diag_sort(&d);
    size_t n = 0;
    first[0] = '\0';
    for (size_t i = 0; i < d.count && n < size; i++)
        n += (size_t)snprintf(first + n, size - n, "%d:%d: %s\n",
                              d.entries[i].line, d.entries[i].column,
                              d.entries[i].message);
    diag_deinit(&d);
}

static const char *shipped = "routes:\n"
                             "  - when: \"type === 'hotfix'\"\n"
                             "    workflow: hotfix.yml\n"
                             "  - when: \"task.type === 'feature'\"\n"
                             "    workflow: feature.yml\n"
                             "default: project-loop.yml\n";

static const char *pick(struct routes *r, const char *task_json,
                        const char *type)
{
    json_t *task = json_loads(task_json, 0, NULL);
    const char *wf = NULL;
    int rc = routes_select(r, task, type, &wf, NULL);
    json_decref(task);
    return rc == 0 ? wf : "(none)";
}

Test(routes, first_matching_rule_wins_else_the_default)
{
    weft_alloc_init();
    struct routes *r = load_ok(shipped);
    cr_assert_eq(routes_count(r), 2);
    cr_assert_str_eq(pick(r, "{\"type\": \"hotfix\"}", NULL), "hotfix.yml");
    cr_assert_str_eq(pick(r, "{}", "hotfix"), "hotfix.yml");
    cr_assert_str_eq(pick(r, "{\"type\": \"feature\"}", NULL), "feature.yml");
    cr_assert_str_eq(pick(r, "{\"type\": \"chore\"}", NULL),
                     "project-loop.yml");
    routes_free(r);
}

Test(routes, no_match_without_default_is_an_error_not_a_silence)
{
    weft_alloc_init();
    struct routes *r = load_ok("routes:\n"
                               "  - when: \"type === 'hotfix'\"\n"
                               "    workflow: hotfix.yml\n");
    json_t *task = json_pack("{s:s}", "type", "docs");
    const char *wf = NULL;
    struct weft_error err;
    cr_assert_eq(routes_select(r, task, NULL, &wf, &err), WEFT_ENOENT);
    cr_assert(strstr(err.msg, "no route matches") != NULL);
    json_decref(task);
    routes_free(r);
}

Test(routes, a_rule_that_throws_fails_the_selection)
{
    weft_alloc_init();
    struct routes *r = load_ok("routes:\n"
                               "  - when: \"task.labels.includes('x')\"\n"
                               "    workflow: x.yml\n"
                               "default: y.yml\n");
    json_t *task = json_object();
    const char *wf = NULL;
    struct weft_error err;
    cr_assert_eq(routes_select(r, task, NULL, &wf, &err), WEFT_ETYPE);
    cr_assert(strstr(err.msg, "route 1") != NULL, "%s", err.msg);
    json_decref(task);
    routes_free(r);
}

Test(routes, errors_name_line_and_column)
{
    weft_alloc_init();
    char first[300];
    load_bad("routes:\n  - wehn: \"x\"\n    workflow: a.yml\n", first,
             sizeof(first));
    cr_assert(strstr(first, "2:5: unknown key 'wehn'") != NULL, "%s", first);
    load_bad("routes:\n  - when: \"type ===\"\n    workflow: a.yml\n", first,
             sizeof(first));
    cr_assert(strstr(first, "2:20: bad expression") != NULL, "%s", first);
    load_bad("routes:\n  - when: \"tsak.type === 'x'\"\n    workflow: a.yml\n",
             first, sizeof(first));
    cr_assert(strstr(first, "2:12: unknown name 'tsak'") != NULL, "%s", first);
    load_bad("default: ../etc/passwd\n", first, sizeof(first));
    cr_assert(strstr(first, "plain file name") != NULL, "%s", first);
    load_bad("routes: {}\n", first, sizeof(first));
    cr_assert(strstr(first, "must be a list") != NULL, "%s", first);
}

Test(routes, the_shipped_routes_file_loads)
{
    weft_alloc_init();
    struct diag d;
    diag_init(&d, "routes.yml");
    struct routes *r = NULL;
    int rc = routes_load_file(WEFT_SOURCE_ROOT "/workflows/routes.yml", &r, &d);
    diag_print(&d, stderr);
    diag_deinit(&d);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(routes_default(r), "project-loop.yml");
    routes_free(r);
}
