/* test_tmpl.c - `{{ }}` templates: the seed's templates, paths and
 * expressions, type-keeping single parts, display rules, errors with
 * columns, limits at and past their boundary, failing allocations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "alloc.h"
#include "tmpl.h"

#if defined(__SANITIZE_ADDRESS__)
#define TMPL_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TMPL_TEST_LSAN 1
#endif
#endif
#ifdef TMPL_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static const char scope_json[] =
    "{\"task\": {\"project\": \"weft\", \"slug\": \"fix-login\","
    "  \"type\": \"hotfix\", \"tags\": [\"backend\", \"urgent\"],"
    "  \"nothing\": null, \"ok\": true, \"ratio\": 0.5,"
    "  \"meta\": {\"a\": [1, \"x\"]}},"
    " \"variables\": {\"project_name\": \"weft\", \"branch_prefix\": "
    "  \"feat/\", \"timeout_base\": 1800},"
    " \"steps\": {\"plan-evaluation\": {\"result\": {\"summary\": \"ok\","
    "  \"items\": [{\"id\": \"i0\"}, {\"id\": \"i1\"}]}}},"
    " \"context\": {\"state\": {\"qa_status\": \"pass\"}}}";

static json_t *scope;

static void setup(void)
{
    weft_alloc_init();
    scope = json_loads(scope_json, 0, NULL);
    cr_assert_not_null(scope);
}

static void teardown(void)
{
    json_decref(scope);
    weft_alloc_fail_reset();
}

TestSuite(tmpl, .init = setup, .fini = teardown);

static struct tmpl *parse_ok(const char *src)
{
    struct weft_error err;
    struct tmpl *t = NULL;
    weft_error_clear(&err);
    int rc = tmpl_parse(src, strlen(src), &t, &err);
    cr_assert_eq(rc, 0, "%s: %s (column %d)", src, err.msg, err.column);
    return t;
}

/* The rendered value of src, as compact JSON ("undefined" for NULL), or
 * "error:<code>@<column>: <message>". Static buffer. */
static const char *render_json(const char *src, const json_t *s)
{
    static char out[1024];
    struct weft_error err;
    struct tmpl *t = parse_ok(src);
    json_t *v = json_true();
    weft_error_clear(&err);
    int rc = tmpl_render(t, s, &v, &err);
    if (rc != 0) {
        cr_assert_eq(v, json_true(), "%s: *out changed", src);
        snprintf(out, sizeof(out), "error:%d@%d: %s", rc, err.column, err.msg);
    } else if (v == NULL) {
        snprintf(out, sizeof(out), "undefined");
    } else {
        char *j = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(out, sizeof(out), "%s", j);
        free(j);
        json_decref(v);
    }
    tmpl_free(t);
    return out;
}

static const char *render_str(const char *src)
{
    static char out[1024];
    struct weft_error err;
    struct tmpl *t = parse_ok(src);
    char *s = NULL;
    int rc = tmpl_render_string(t, scope, &s, &err);
    if (rc != 0) {
        cr_assert_null(s);
        snprintf(out, sizeof(out), "error:%d@%d: %s", rc, err.column, err.msg);
    } else {
        snprintf(out, sizeof(out), "%s", s);
        weft_free(s);
    }
    tmpl_free(t);
    return out;
}

#define renders(src, want) cr_assert_str_eq(render_json(src, scope), want)

static void parse_fails(const char *src, size_t len, int code, int column,
                        const char *msg)
{
    struct weft_error err;
    struct tmpl *t = (struct tmpl *)&err; /* must stay untouched */
    weft_error_clear(&err);
    int rc = tmpl_parse(src, len, &t, &err);
    cr_assert_eq(rc, code, "%s: rc %d (%s)", src, rc, err.msg);
    cr_assert_eq(err.column, column, "%s: column %d (%s)", src, err.column,
                 err.msg);
    cr_assert_not_null(strstr(err.msg, msg), "%s: message '%s'", src, err.msg);
    cr_assert_eq(t, (struct tmpl *)&err);
}

/* ---- The seed's templates ---- */

Test(tmpl, seed_variable_from_task_keeps_the_string)
{
    renders("{{task.project}}", "\"weft\"");
}

Test(tmpl, seed_name_with_text_renders_a_string)
{
    renders("Setup {{variables.project_name}}", "\"Setup weft\"");
}

Test(tmpl, seed_timeout_single_part_keeps_the_number_type)
{
    struct weft_error err;
    struct tmpl *t = parse_ok("{{variables.timeout_base}}");
    json_t *v = NULL;
    cr_assert_eq(tmpl_render(t, scope, &v, &err), 0);
    cr_assert(json_is_integer(v));
    cr_assert_eq(json_integer_value(v), 1800);
    json_decref(v);
    tmpl_free(t);
}

Test(tmpl, seed_branch_concatenates_two_parts)
{
    renders("{{variables.branch_prefix}}{{task.slug}}", "\"feat/fix-login\"");
}

/* ---- Paths ---- */

Test(tmpl, path_segments_may_contain_dashes_and_index_arrays)
{
    renders("{{steps.plan-evaluation.result.summary}}", "\"ok\"");
    renders("{{steps.plan-evaluation.result.items.1.id}}", "\"i1\"");
    renders("{{ task.tags.0 }}", "\"backend\"");
    renders("{{task.tags.length}}", "2");
    renders("{{task.slug.length}}", "9");
    renders("{{ task }}",
            "{\"project\":\"weft\",\"slug\":\"fix-login\",\"type\":"
            "\"hotfix\",\"tags\":[\"backend\",\"urgent\"],\"nothing\":null,"
            "\"ok\":true,\"ratio\":0.5,\"meta\":{\"a\":[1,\"x\"]}}");
}

Test(tmpl, missing_path_renders_undefined_without_error)
{
    renders("{{task.nope}}", "undefined");
    renders("{{task.nope.deeper}}", "undefined");
    renders("{{task.nothing.x}}", "undefined");
    renders("{{steps.nope-step.result}}", "undefined");
    renders("{{tsak.id}}", "undefined");
    renders("[{{task.nope}}]", "\"[]\"");
    renders("[{{tsak.id}}]", "\"[]\"");
}

Test(tmpl, literal_word_roots_are_expressions_not_paths)
{
    renders("{{true}}", "true");
    renders("{{ null }}", "null");
    renders("{{undefined}}", "undefined");
    renders("{{NaN}}", "null");
    renders("x{{NaN}}", "\"xNaN\"");
}

/* ---- Expressions ---- */

Test(tmpl, expression_parts_keep_js_semantics_and_errors)
{
    renders("{{ task.priority ?? 'normal' }}", "\"normal\"");
    renders("{{ task.type === 'hotfix' }}", "true");
    renders("{{ context.state.get('qa_status') }}", "\"pass\"");
    renders("{{ task.tags.includes('urgent') ? 'fast' : 'slow' }}", "\"fast\"");
    renders("n={{ variables.timeout_base / 60 }}", "\"n=30\"");
    /* Expressions are strict: an unknown root is a ReferenceError, with
     * the column inside the template. */
    renders("ab {{ nope + 1 }}", "error:-5@7: nope is not defined");
    renders("{{ task.nope.x + 1 }}",
            "error:-6@14: cannot read property 'x' of undefined");
    renders("{{ a-b }}", "error:-5@4: a is not defined");
}

Test(tmpl, literal_braces_through_string_expressions)
{
    renders("{{ '{{' }}x}}", "\"{{x}}\"");
    renders("{{ '}}' }}", "\"}}\"");
    renders("a }} b", "\"a }} b\"");
    renders("{{ \"it's }}\" }}", "\"it's }}\"");
    renders("{{ 'a\\'}}' }}", "\"a'}}\"");
}

/* ---- Display rules ---- */

Test(tmpl, multi_part_renders_display_strings)
{
    renders("[{{task.nothing}}]", "\"[]\"");
    renders("[{{task.ok}}]", "\"[true]\"");
    renders("[{{task.ratio}}]", "\"[0.5]\"");
    renders("[{{task.tags}}]", "\"[[\\\"backend\\\",\\\"urgent\\\"]]\"");
    renders("[{{task.meta}}]", "\"[{\\\"a\\\":[1,\\\"x\\\"]}]\"");
    renders("[{{ 1e21 }}|{{ 1/0 }}|{{ -0 }}]", "\"[1e+21|Infinity|0]\"");
    renders(" {{task.project}}", "\" weft\"");
}

Test(tmpl, single_part_keeps_types)
{
    renders("{{task.ok}}", "true");
    renders("{{task.tags}}", "[\"backend\",\"urgent\"]");
    renders("{{task.nothing}}", "null");
    renders("{{ 0.1 + 0.2 }}", "0.30000000000000004");
    renders("{{ [1, 'a'] }}", "[1,\"a\"]");
}

Test(tmpl, render_string_turns_every_value_into_text)
{
    cr_assert_str_eq(render_str("{{variables.timeout_base}}"), "1800");
    cr_assert_str_eq(render_str("{{task.tags}}"), "[\"backend\",\"urgent\"]");
    cr_assert_str_eq(render_str("{{task.nope}}"), "");
    cr_assert_str_eq(render_str("{{ 0/0 }}"), "NaN");
    cr_assert_str_eq(render_str(""), "");
    cr_assert_str_eq(render_str("plain"), "plain");
    cr_assert_str_eq(render_str("{{ nope }}"), ""); /* a lenient path */
    cr_assert_str_eq(render_str("{{ nope + 1 }}"),
                     "error:-5@4: nope is not defined");
}

Test(tmpl, literal_templates_render_their_text)
{
    struct tmpl *t = parse_ok("no parts } here {");
    cr_assert(tmpl_is_literal(t));
    tmpl_free(t);
    t = parse_ok("");
    cr_assert(tmpl_is_literal(t));
    tmpl_free(t);
    t = parse_ok("a {{x}}");
    cr_assert_not(tmpl_is_literal(t));
    tmpl_free(t);
    renders("no parts", "\"no parts\"");
    renders("", "\"\"");
    tmpl_free(NULL);
}

Test(tmpl, is_plain_detects_double_braces_only)
{
    cr_assert(tmpl_is_plain("plain { text }", 14));
    cr_assert(tmpl_is_plain("", 0));
    cr_assert(tmpl_is_plain("{", 1));
    cr_assert_not(tmpl_is_plain("a {{", 4));
    cr_assert_not(tmpl_is_plain("{{x}}", 5));
    /* Only the given bytes count. */
    cr_assert(tmpl_is_plain("a {{", 3));
}

/* ---- Parse errors ---- */

Test(tmpl, reports_parse_errors_with_template_columns)
{
    parse_fails("abc {{ task.x", 13, WEFT_EINVAL, 5,
                "'{{' without a closing '}}'");
    parse_fails("{{ 'abc }}", 10, WEFT_EINVAL, 1, "without a closing");
    parse_fails("x {{ }}", 7, WEFT_EINVAL, 3, "empty '{{ }}'");
    parse_fails("x {{}}", 6, WEFT_EINVAL, 3, "empty '{{ }}'");
    parse_fails("Setup {{ task.x === }}", 22, WEFT_EINVAL, 21,
                "unexpected end of expression");
    parse_fails("{{a}} {{ b = 1 }}", 17, WEFT_EINVAL, 12,
                "assignment is not supported");
    parse_fails("{{ task. }}", 11, WEFT_EINVAL, 10, "expected a property name");
    parse_fails("ok \xff {{a}}", 10, WEFT_EINVAL, 4, "invalid UTF-8");
}

/* ---- Roots ---- */

struct roots {
    char names[8][32];
    int columns[8];
    int count;
};

static int collect_root(void *ud, const char *name, size_t len, int column)
{
    struct roots *r = ud;
    snprintf(r->names[r->count], sizeof(r->names[0]), "%.*s", (int)len, name);
    r->columns[r->count] = column;
    r->count++;
    return r->count == 3 ? 7 : 0;
}

Test(tmpl, foreach_root_reports_roots_with_template_columns)
{
    struct tmpl *t = parse_ok("id {{tsak.id}} / {{ steps.a-b.x }} {{ x + "
                              "context.y }}");
    struct roots r = {0};
    cr_assert_eq(tmpl_foreach_root(t, collect_root, &r), 7);
    cr_assert_eq(r.count, 3);
    cr_assert_str_eq(r.names[0], "tsak");
    cr_assert_eq(r.columns[0], 6);
    cr_assert_str_eq(r.names[1], "steps");
    cr_assert_eq(r.columns[1], 21);
    cr_assert_str_eq(r.names[2], "x");
    cr_assert_eq(r.columns[2], 39);
    tmpl_free(t);
}

/* ---- Limits ---- */

Test(tmpl, source_limit_at_boundary_and_one_past)
{
    char *src = malloc(TMPL_MAX_SOURCE + 1);
    struct weft_error err;
    struct tmpl *t = NULL;
    memset(src, 'a', TMPL_MAX_SOURCE + 1);
    memcpy(src, "{{x}}", 5);
    cr_assert_eq(tmpl_parse(src, TMPL_MAX_SOURCE, &t, &err), 0);
    tmpl_free(t);
    t = NULL;
    cr_assert_eq(tmpl_parse(src, TMPL_MAX_SOURCE + 1, &t, &err), WEFT_ELIMIT);
    cr_assert_eq(err.column, TMPL_MAX_SOURCE + 1);
    cr_assert_null(t);
    free(src);
}

static char *repeat(const char *part, int n)
{
    size_t len = strlen(part) * (size_t)n;
    char *s = malloc(len + 1);
    for (int i = 0; i < n; i++)
        memcpy(s + strlen(part) * (size_t)i, part, strlen(part));
    s[len] = '\0';
    return s;
}

Test(tmpl, parts_limit_at_boundary_and_one_past)
{
    struct weft_error err;
    struct tmpl *t = NULL;
    char *ok = repeat("{{task.slug}}-", TMPL_MAX_PARTS);
    char *over = repeat("{{task.slug}}-", TMPL_MAX_PARTS + 1);
    cr_assert_eq(tmpl_parse(ok, strlen(ok), &t, &err), 0);
    char *s = NULL;
    cr_assert_eq(tmpl_render_string(t, scope, &s, &err), 0);
    cr_assert_eq(strlen(s), 10u * TMPL_MAX_PARTS);
    weft_free(s);
    tmpl_free(t);
    t = NULL;
    cr_assert_eq(tmpl_parse(over, strlen(over), &t, &err), WEFT_ELIMIT);
    cr_assert_eq(err.column, 14 * TMPL_MAX_PARTS + 1);
    cr_assert_null(t);
    free(ok);
    free(over);
}

Test(tmpl, output_limit_at_boundary_and_one_past)
{
    /* 16 parts of 65536 bytes = TMPL_MAX_OUTPUT exactly. */
    char *chunk = malloc(65536);
    memset(chunk, 'z', 65536);
    json_t *s = json_pack("{s:s#}", "c", chunk, 65536);
    char *src = repeat("{{c}}", 16);
    struct weft_error err;
    struct tmpl *t = parse_ok(src);
    json_t *v = NULL;
    cr_assert_eq(tmpl_render(t, s, &v, &err), 0);
    cr_assert_eq(json_string_length(v), TMPL_MAX_OUTPUT);
    json_decref(v);
    tmpl_free(t);
    free(src);
    src = repeat("{{c}}", 16);
    char *longer = malloc(strlen(src) + 2);
    memcpy(longer, src, strlen(src));
    memcpy(longer + strlen(src), "!", 2);
    t = parse_ok(longer);
    v = json_true();
    cr_assert_eq(tmpl_render(t, s, &v, &err), WEFT_ELIMIT);
    cr_assert_eq(v, json_true());
    cr_assert_eq(err.column, 81);
    tmpl_free(t);
    free(longer);
    free(src);
    json_decref(s);
    free(chunk);
}

Test(tmpl, path_segment_limit_at_boundary_and_one_past)
{
    /* A path of n segments after the root is n + 1 levels deep. */
    char *segs = repeat(".a", EXPR_MAX_DEPTH - 1);
    char src[512];
    struct weft_error err;
    struct tmpl *t = NULL;
    snprintf(src, sizeof(src), "{{x%s}}", segs);
    cr_assert_eq(tmpl_parse(src, strlen(src), &t, &err), 0);
    tmpl_free(t);
    t = NULL;
    snprintf(src, sizeof(src), "{{x%s.a}}", segs);
    cr_assert_eq(tmpl_parse(src, strlen(src), &t, &err), WEFT_ELIMIT);
    cr_assert_eq(err.column, 3);
    free(segs);
}

Test(tmpl, expression_limit_applies_inside_templates)
{
    char *src = malloc(EXPR_MAX_SOURCE + 16);
    struct weft_error err;
    struct tmpl *t = NULL;
    memcpy(src, "{{1", 3);
    memset(src + 3, ' ', EXPR_MAX_SOURCE - 1);
    memcpy(src + 2 + EXPR_MAX_SOURCE, "}}", 3);
    cr_assert_eq(tmpl_parse(src, strlen(src), &t, &err), 0);
    tmpl_free(t);
    t = NULL;
    memcpy(src + 2 + EXPR_MAX_SOURCE, " }}", 4);
    cr_assert_eq(tmpl_parse(src, strlen(src), &t, &err), WEFT_ELIMIT);
    cr_assert_eq(err.column, 3 + EXPR_MAX_SOURCE);
    free(src);
}

/* ---- Allocation failures ---- */

static const char *const oom_templates[] = {
    "Setup {{variables.project_name}}",
    "{{variables.timeout_base}}",
    "{{variables.branch_prefix}}{{task.slug}}",
    "[{{task.tags}}|{{ task.meta }}|{{ 1/3 }}|{{task.nope}}] tail",
    "{{ task.nope.x }}",
    "{{ '{{' }} {{ context.state.get('qa_status') === 'pass' }}",
};

Test(tmpl, allocation_failures_report_enomem_and_never_leak)
{
    for (size_t i = 0; i < sizeof(oom_templates) / sizeof(oom_templates[0]);
         i++) {
        const char *src = oom_templates[i];
        for (unsigned long n = 1;; n++) {
            struct weft_error err;
            struct tmpl *t = NULL;
            json_t *v = json_true();
            char *s = NULL;
            weft_alloc_fail_after(n);
            int rc = tmpl_parse(src, strlen(src), &t, &err);
            if (rc == 0) {
                rc = tmpl_render(t, scope, &v, &err);
                if (rc == 0) {
                    json_decref(v);
                    rc = tmpl_render_string(t, scope, &s, &err);
                    weft_free(s);
                } else {
                    cr_assert_eq(v, json_true());
                }
                tmpl_free(t);
            } else {
                cr_assert_null(t);
            }
            weft_alloc_fail_reset();
            cr_assert(rc == 0 || rc == WEFT_ENOMEM || rc == WEFT_ETYPE,
                      "%s: n=%lu rc=%d", src, n, rc);
            if (rc != WEFT_ENOMEM)
                break;
            cr_assert_eq(err.code, WEFT_ENOMEM);
            cr_assert_lt(n, 1000);
        }
    }
#ifdef TMPL_TEST_LSAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked");
#endif
}
