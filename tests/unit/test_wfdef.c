/* test_wfdef.c - the workflow model: loading, validation, order, canonical
 * form, templates, limits, and the corpus of invalid workflows. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "alloc.h"
#include "buf.h"
#include "diag.h"
#include "error.h"
#include "wfdef.h"
#include "ytree.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#endif
#endif

static void setup(void)
{
    weft_alloc_init();
}

TestSuite(wfdef, .init = setup);

/* ---- helpers ---- */

/* Loads yaml; returns the code; *out gets the model (or NULL) and *text
 * the sorted diagnostics as `t.yml:L:C: error: M` lines (caller frees). */
static int load(const char *yaml, struct wf **out, char **text)
{
    struct diag d;
    char *buf = NULL;
    size_t len = 0;
    diag_init(&d, "t.yml");
    *out = NULL;
    int rc = wf_load_buffer(yaml, strlen(yaml), "t", out, &d);
    diag_sort(&d);
    FILE *f = open_memstream(&buf, &len);
    diag_print(&d, f);
    fclose(f);
    diag_deinit(&d);
    if (text != NULL)
        *text = buf;
    else
        free(buf);
    return rc;
}

static struct wf *load_ok(const char *yaml)
{
    struct wf *wf;
    char *text;
    int rc = load(yaml, &wf, &text);
    cr_assert_eq(rc, 0, "rc %d:\n%s", rc, text);
    free(text);
    return wf;
}

/* Asserts that yaml fails with exactly the one diagnostic `expect` (the
 * part after "t.yml:"). */
static void expect_error(const char *yaml, const char *expect)
{
    struct wf *wf;
    char *text;
    int rc = load(yaml, &wf, &text);
    char want[1024];
    snprintf(want, sizeof(want), "t.yml:%s\n", expect);
    cr_assert_neq(rc, 0);
    cr_assert_null(wf);
    cr_assert_str_eq(text, want);
    free(text);
}

static const struct wf_step *step(const struct wf *wf, const char *id)
{
    const struct wf_step *s = wf_find_step(wf, id, strlen(id));
    cr_assert_not_null(s, "no step %s", id);
    return s;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *data = malloc((size_t)n + 1);
    *len = fread(data, 1, (size_t)n, f);
    data[*len] = '\0';
    fclose(f);
    return data;
}

static struct wf *load_path(const char *path)
{
    struct diag d;
    struct wf *wf = NULL;
    diag_init(&d, path);
    int rc = wf_load_file(path, &wf, &d);
    if (rc != 0)
        diag_print(&d, stderr);
    cr_assert_eq(rc, 0, "%s: rc %d", path, rc);
    diag_deinit(&d);
    return wf;
}

/* Renders a tvalue against a scope given as JSON text; compact JSON of the
 * result ("undefined" for NULL). */
static char *render(const struct tvalue *tv, const char *scope_json)
{
    json_error_t jerr;
    json_t *scope = json_loads(scope_json, 0, &jerr);
    cr_assert_not_null(scope, "%s", jerr.text);
    json_t *out = NULL;
    struct weft_error err;
    cr_assert_eq(tvalue_render(tv, scope, &out, &err), 0, "%s", err.msg);
    char *s =
        out ? json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS)
            : strdup("undefined");
    json_decref(out);
    json_decref(scope);
    return s;
}

/* ---- the seed and the shipped workflows ---- */

Test(wfdef, loads_seed_basic_structure_as_written)
{
    struct wf *wf = load_path(WEFT_TEST_DATA "/seed/basic-structure.yml");
    cr_assert_str_eq(wf->name, "project-loop");
    cr_assert_str_eq(wf->version, "1.0.0");
    cr_assert_eq(wf->nsteps, 6);
    cr_assert_eq(wf->nvariables, 2);
    const struct wf_step *p = step(wf, "planning");
    cr_assert_eq(p->type, WF_STEP_PERSONA);
    cr_assert_str_eq(p->persona, "implementation-planner");
    cr_assert_eq(p->retry.max, 2);
    cr_assert_not_null(step(wf, "code-review")->condition);
    wf_free(wf);
}

Test(wfdef, loads_seed_templating_example_with_added_type)
{
    struct wf *wf =
        load_path(WEFT_TEST_DATA "/seed/variables-and-templating.yml");
    cr_assert_str_eq(wf->name, "variables-and-templating");
    const struct wf_step *s = step(wf, "setup");
    cr_assert_eq(s->type, WF_STEP_NOOP);
    cr_assert_not_null(s->timeout);
    cr_assert_null(tvalue_literal(s->timeout));
    wf_free(wf);
}

Test(wfdef, loads_seed_conditional_logic_example)
{
    struct wf *wf = load_path(WEFT_TEST_DATA "/seed/conditional-logic.yml");
    cr_assert_str_eq(wf->name, "conditional-logic");
    cr_assert_eq(wf->nsteps, 2);
    cr_assert_str_eq(expr_source(step(wf, "hotfix-path")->condition),
                     "task.type === 'hotfix'");
    wf_free(wf);
}

Test(wfdef, shipped_project_loop_is_the_seed_example)
{
    size_t a, b;
    char *x = read_all(WEFT_SOURCE_ROOT "/workflows/project-loop.yml", &a);
    char *y = read_all(WEFT_TEST_DATA "/seed/basic-structure.yml", &b);
    cr_assert_eq(a, b);
    cr_assert_eq(memcmp(x, y, a), 0);
    free(x);
    free(y);
}

Test(wfdef, loads_shipped_hotfix_workflow)
{
    struct wf *wf = load_path(WEFT_SOURCE_ROOT "/workflows/hotfix.yml");
    cr_assert_str_eq(wf->name, "hotfix");
    cr_assert_str_eq(step(wf, "fix")->persona, "hotfix-specialist");
    cr_assert_eq(step(wf, "merge")->git_op, WF_GIT_MERGE);
    cr_assert_eq(step(wf, "push")->git_op, WF_GIT_PUSH);
    wf_free(wf);
}

Test(wfdef, loads_shipped_feature_workflow)
{
    struct wf *wf = load_path(WEFT_SOURCE_ROOT "/workflows/feature.yml");
    const struct wf_step *impl = step(wf, "implementation");
    cr_assert_eq(impl->type, WF_STEP_PARALLEL);
    cr_assert_eq(impl->wait_for, WF_WAIT_ALL);
    cr_assert_eq(impl->nchildren[0], 3);
    const struct wf_step *gate = step(wf, "merge-gate");
    cr_assert_eq(gate->type, WF_STEP_CONDITIONAL);
    cr_assert_eq(gate->nchildren[0], 3);
    cr_assert_eq(gate->nchildren[1], 1);
    cr_assert_str_eq(step(wf, "docs")->queue, "low-priority");
    wf_free(wf);
}

/* ---- names and defaults ---- */

Test(wfdef, workflow_name_defaults_to_file_base_name)
{
    struct wf *wf =
        load_path(WEFT_TEST_DATA "/seed/variables-and-templating.yml");
    cr_assert_str_eq(wf->name, "variables-and-templating");
    wf_free(wf);
}

Test(wfdef, workflow_name_defaults_to_workflow_without_a_file)
{
    const char *y = "steps: [{id: a, type: noop}]\n";
    struct diag d;
    struct wf *wf = NULL;
    diag_init(&d, "x");
    cr_assert_eq(wf_load_buffer(y, strlen(y), NULL, &wf, &d), 0);
    cr_assert_str_eq(wf->name, "workflow");
    wf_free(wf);
    diag_deinit(&d);
}

Test(wfdef, step_name_defaults_to_id)
{
    struct wf *wf = load_ok("steps:\n  - {id: a, type: noop}\n"
                            "  - {id: b, type: noop, name: b}\n"
                            "  - {id: c, type: noop, name: Cee}\n");
    cr_assert_null(step(wf, "a")->name);
    cr_assert_null(step(wf, "b")->name);
    cr_assert_not_null(step(wf, "c")->name);
    cr_assert(strstr(wf->canonical, "{\"id\":\"a\",\"name\":\"a\"") != NULL);
    wf_free(wf);
}

Test(wfdef, applies_documented_defaults)
{
    struct wf *wf = load_ok("steps: [{id: a, type: noop}]\n");
    const struct wf_step *s = step(wf, "a");
    cr_assert_eq(s->retry.max, 0);
    cr_assert_eq(s->retry.backoff, WF_BACKOFF_EXPONENTIAL);
    cr_assert_eq(s->retry.delay_ms, 1000);
    cr_assert_eq(s->retry.max_delay_ms, 300000);
    cr_assert_eq(s->on_failure, WF_ON_FAILURE_FAIL);
    cr_assert_null(s->queue);
    cr_assert_null(s->timeout);
    cr_assert_null(s->condition);
    cr_assert_null(s->params);
    cr_assert_eq(s->parent, -1);
    cr_assert_eq(s->depth, 0);
    wf_free(wf);
}

Test(wfdef, reads_retry_policy)
{
    struct wf *wf = load_ok("steps:\n  - id: a\n    type: noop\n    retry: "
                            "{max: 4, backoff: fixed, delay: 2.5, "
                            "max_delay: 30, jitter: 0.25}\n");
    const struct wf_retry *r = &step(wf, "a")->retry;
    cr_assert_eq(r->max, 4);
    cr_assert_eq(r->backoff, WF_BACKOFF_FIXED);
    cr_assert_eq(r->delay_ms, 2500);
    cr_assert_eq(r->max_delay_ms, 30000);
    cr_assert_eq(r->jitter, 0.25);
    wf_free(wf);
}

Test(wfdef, reads_queue_and_on_failure)
{
    struct wf *wf = load_ok("steps: [{id: a, type: noop, queue: slow, "
                            "on_failure: escalate}]\n");
    cr_assert_str_eq(step(wf, "a")->queue, "slow");
    cr_assert_eq(step(wf, "a")->on_failure, WF_ON_FAILURE_ESCALATE);
    wf_free(wf);
}

Test(wfdef, reads_git_operation_fields)
{
    struct wf *wf = load_ok(
        "steps:\n  - id: m\n    type: git-operation\n    operation: merge\n"
        "    branch: \"feat/{{task.slug}}\"\n    base: main\n"
        "    message: \"Merge {{task.slug}}\"\n");
    const struct wf_step *s = step(wf, "m");
    cr_assert_eq(s->git_op, WF_GIT_MERGE);
    cr_assert_not_null(s->git_branch);
    cr_assert_not_null(s->git_message);
    cr_assert_str_eq(json_string_value(tvalue_literal(s->git_base)), "main");
    cr_assert_null(s->git_remote);
    char *b = render(s->git_branch, "{\"task\":{\"slug\":\"x\"}}");
    cr_assert_str_eq(b, "\"feat/x\"");
    free(b);
    wf_free(wf);
}

Test(wfdef, names_enums_as_written_in_yaml)
{
    cr_assert_str_eq(wf_step_type_name(WF_STEP_PERSONA), "persona-request");
    cr_assert_str_eq(wf_step_type_name(WF_STEP_GIT), "git-operation");
    cr_assert_str_eq(wf_step_type_name(WF_STEP_NOOP), "noop");
    cr_assert_str_eq(wf_git_op_name(WF_GIT_REBASE), "rebase");
    cr_assert_str_eq(wf_wait_for_name(WF_WAIT_ANY), "any");
    cr_assert_str_eq(wf_on_failure_name(WF_ON_FAILURE_CONTINUE), "continue");
}

Test(wfdef, knows_the_template_roots)
{
    const char *roots[] = {"context", "task",  "milestone", "variables",
                           "steps",   "state", "workflowId"};
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
        cr_assert(wf_is_known_root(roots[i], strlen(roots[i])));
    cr_assert_not(wf_is_known_root("ctx", 3));
    cr_assert_not(wf_is_known_root("task", 3));
}

Test(wfdef, finds_steps_by_id)
{
    struct wf *wf = load_ok("steps: [{id: a, type: noop}, {id: b, "
                            "type: noop}]\n");
    cr_assert_eq(wf_find_step(wf, "b", 1)->index, 1);
    cr_assert_eq(wf_find_step(wf, "bx", 1)->index, 1);
    cr_assert_null(wf_find_step(wf, "c", 1));
    wf_free(wf);
}

Test(wfdef, accepts_extension_keys_for_anchors)
{
    struct wf *wf = load_ok("x-common: &common {type: noop, retries: 3}\n"
                            "steps:\n  - id: a\n    type: noop\n"
                            "    params: *common\n");
    cr_assert_not_null(step(wf, "a")->params);
    wf_free(wf);
}

/* ---- structure and order ---- */

static const char *nested_yaml =
    "steps:\n"
    "  - {id: a, type: noop}\n"
    "  - id: g\n"
    "    type: conditional\n"
    "    condition: task.ok\n"
    "    dependencies: [a]\n"
    "    then_steps:\n"
    "      - {id: t1, type: noop}\n"
    "      - {id: t2, type: noop, dependencies: [t1]}\n"
    "    else_steps:\n"
    "      - id: p\n"
    "        type: parallel\n"
    "        wait_for: any\n"
    "        steps:\n"
    "          - {id: p1, type: noop}\n"
    "          - {id: p2, type: noop}\n"
    "  - {id: z, type: noop, dependencies: [g]}\n";

Test(wfdef, stores_steps_flat_in_pre_order)
{
    struct wf *wf = load_ok(nested_yaml);
    const char *ids[] = {"a", "g", "t1", "t2", "p", "p1", "p2", "z"};
    cr_assert_eq(wf->nsteps, 8);
    for (uint32_t i = 0; i < 8; i++) {
        cr_assert_str_eq(wf->steps[i].id, ids[i]);
        cr_assert_eq(wf->steps[i].index, i);
    }
    wf_free(wf);
}

Test(wfdef, links_parents_children_and_branches)
{
    struct wf *wf = load_ok(nested_yaml);
    const struct wf_step *g = step(wf, "g"), *p = step(wf, "p");
    cr_assert_eq(wf->ntop, 3);
    cr_assert_eq(wf->top[0], 0);
    cr_assert_eq(wf->top[1], 1);
    cr_assert_eq(wf->top[2], 7);
    cr_assert_eq(g->nchildren[0], 2);
    cr_assert_eq(g->children[0][1], step(wf, "t2")->index);
    cr_assert_eq(g->nchildren[1], 1);
    cr_assert_eq(g->children[1][0], p->index);
    cr_assert_eq(p->branch, 1);
    cr_assert_eq(p->parent, (int32_t)g->index);
    cr_assert_eq(p->depth, 1);
    cr_assert_eq(p->wait_for, WF_WAIT_ANY);
    cr_assert_eq(step(wf, "p2")->depth, 2);
    cr_assert_eq(step(wf, "p2")->parent, (int32_t)p->index);
    wf_free(wf);
}

Test(wfdef, fills_dependencies_and_dependents)
{
    struct wf *wf = load_ok(nested_yaml);
    const struct wf_step *g = step(wf, "g"), *a = step(wf, "a");
    cr_assert_eq(g->ndeps, 1);
    cr_assert_eq(g->deps[0], a->index);
    cr_assert_eq(a->ndependents, 1);
    cr_assert_eq(a->dependents[0], g->index);
    cr_assert_eq(g->ndependents, 1);
    cr_assert_eq(g->dependents[0], step(wf, "z")->index);
    cr_assert_eq(step(wf, "t2")->deps[0], step(wf, "t1")->index);
    cr_assert_eq(step(wf, "p1")->ndeps, 0);
    wf_free(wf);
}

Test(wfdef, topo_order_respects_dependencies_and_nesting)
{
    struct wf *wf = load_ok(nested_yaml);
    uint32_t pos[8];
    for (uint32_t i = 0; i < wf->nsteps; i++)
        pos[wf->topo[i]] = i;
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        const struct wf_step *s = &wf->steps[i];
        for (uint32_t k = 0; k < s->ndeps; k++)
            cr_assert_lt(pos[s->deps[k]], pos[i]);
        if (s->parent >= 0)
            cr_assert_lt(pos[s->parent], pos[i]);
    }
    wf_free(wf);
}

Test(wfdef, topo_order_is_deterministic)
{
    struct wf *a = load_ok(nested_yaml), *b = load_ok(nested_yaml);
    cr_assert_eq(memcmp(a->topo, b->topo, a->nsteps * sizeof(uint32_t)), 0);
    /* FIFO Kahn from the roots in file order. */
    cr_assert_eq(a->topo[0], 0);
    wf_free(a);
    wf_free(b);
}

/* ---- canonical form and digest ---- */

Test(wfdef, canonical_is_sorted_compact_json)
{
    struct wf *wf = load_ok("steps:\n  - type: noop\n    id: b\n"
                            "name: w\n");
    cr_assert_str_eq(wf->canonical, "{\"name\":\"w\",\"steps\":[{\"id\":\"b\","
                                    "\"name\":\"b\",\"type\":\"noop\"}]}");
    cr_assert_eq(wf->canonical_len, strlen(wf->canonical));
    wf_free(wf);
}

Test(wfdef, canonical_matches_jansson_dump)
{
    struct wf *wf = load_path(WEFT_SOURCE_ROOT "/workflows/feature.yml");
    json_error_t jerr;
    json_t *j = json_loads(wf->canonical, 0, &jerr);
    cr_assert_not_null(j, "%s", jerr.text);
    char *again = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert_str_eq(again, wf->canonical);
    free(again);
    json_decref(j);
    wf_free(wf);
}

Test(wfdef, digest_is_sha256_of_canonical)
{
    struct wf *wf = load_path(WEFT_SOURCE_ROOT "/workflows/hotfix.yml");
    unsigned char md[32];
    unsigned int n = 0;
    char hex[65];
    EVP_Digest(wf->canonical, wf->canonical_len, md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    cr_assert_str_eq(wf->digest, hex);
    wf_free(wf);
}

Test(wfdef, digest_ignores_formatting_aliases_and_key_order)
{
    struct wf *a = load_ok("name: w\nsteps:\n  - id: s\n    type: noop\n"
                           "    params: {x: 1, y: [a, b]}\n");
    struct wf *b = load_ok("# comment\nsteps: [{params: &p {y: [\"a\", 'b'],"
                           " x: 0x1}, type: noop, name: s, id: s}]\n"
                           "name: \"w\"\n");
    cr_assert_str_eq(a->digest, b->digest);
    wf_free(a);
    wf_free(b);
}

Test(wfdef, rollback_is_a_workflow_flag_that_survives_the_canonical_form)
{
    struct wf *a = load_ok("steps: [{id: s, type: noop}]\n");
    cr_assert(!a->rollback);
    struct wf *b = load_ok("rollback: true\nsteps: [{id: s, type: noop}]\n");
    cr_assert(b->rollback);
    cr_assert_str_neq(a->digest, b->digest);
    struct diag d;
    diag_init(&d, "canonical");
    struct wf *c = NULL;
    cr_assert_eq(wf_load_canonical(b->canonical, b->canonical_len, &c, &d), 0);
    diag_deinit(&d);
    cr_assert(c->rollback);
    cr_assert_str_eq(c->digest, b->digest);
    wf_free(a);
    wf_free(b);
    wf_free(c);
    expect_error("rollback: 1\nsteps: [{id: s, type: noop}]\n",
                 "1:11: error: 'rollback' must be a boolean, got a number");
    expect_error("steps: [{id: .x, type: noop}]\n",
                 "1:14: error: invalid step id '.x': ids starting with '.' are "
                 "reserved for weft");
}

Test(wfdef, digest_changes_with_content)
{
    struct wf *a = load_ok("steps: [{id: s, type: noop, timeout: 10}]\n");
    struct wf *b = load_ok("steps: [{id: s, type: noop, timeout: 11}]\n");
    cr_assert_str_neq(a->digest, b->digest);
    wf_free(a);
    wf_free(b);
}

static void expect_same_model(const struct wf *a, const struct wf *b)
{
    cr_assert_str_eq(a->digest, b->digest);
    cr_assert_str_eq(a->canonical, b->canonical);
    cr_assert_str_eq(a->name, b->name);
    cr_assert_eq(a->nsteps, b->nsteps);
    cr_assert_eq(a->nvariables, b->nvariables);
    for (uint32_t i = 0; i < a->nvariables; i++)
        cr_assert_str_eq(a->variable_names[i], b->variable_names[i]);
    for (uint32_t i = 0; i < a->nsteps; i++) {
        const struct wf_step *x = &a->steps[i], *y = &b->steps[i];
        cr_assert_str_eq(x->id, y->id);
        cr_assert_eq(x->type, y->type);
        cr_assert_eq(x->parent, y->parent);
        cr_assert_eq(x->ndeps, y->ndeps);
        cr_assert_eq(x->name == NULL, y->name == NULL);
        cr_assert_eq(x->retry.max, y->retry.max);
        cr_assert_eq(a->topo[i], b->topo[i]);
    }
}

Test(wfdef, canonical_reload_rebuilds_the_same_model)
{
    const char *paths[] = {WEFT_SOURCE_ROOT "/workflows/project-loop.yml",
                           WEFT_SOURCE_ROOT "/workflows/hotfix.yml",
                           WEFT_SOURCE_ROOT "/workflows/feature.yml"};
    for (size_t i = 0; i < 3; i++) {
        struct wf *a = load_path(paths[i]), *b = NULL;
        struct diag d;
        diag_init(&d, "canonical");
        cr_assert_eq(wf_load_canonical(a->canonical, a->canonical_len, &b, &d),
                     0);
        expect_same_model(a, b);
        wf_free(a);
        wf_free(b);
        diag_deinit(&d);
    }
}

Test(wfdef, canonical_load_rejects_bad_json)
{
    struct diag d;
    struct wf *wf = NULL;
    diag_init(&d, "canonical");
    cr_assert_eq(wf_load_canonical("{\"steps\": [", 11, &wf, &d), WEFT_EINVAL);
    cr_assert_null(wf);
    cr_assert_eq(d.count, 1);
    diag_deinit(&d);
}

Test(wfdef, canonical_load_validates_like_yaml)
{
    const char *j = "{\"steps\":[{\"id\":\"a\",\"type\":\"bogus\"}]}";
    struct diag d;
    struct wf *wf = NULL;
    diag_init(&d, "canonical");
    cr_assert_eq(wf_load_canonical(j, strlen(j), &wf, &d), WEFT_EINVAL);
    cr_assert_str_eq(
        d.entries[0].message,
        "unknown step type 'bogus'; expected 'persona-request', "
        "'git-operation', 'conditional', 'parallel', 'noop' or 'approval'");
    diag_deinit(&d);
}

/* ---- templates and tvalue ---- */

Test(wfdef, single_template_keeps_the_rendered_type)
{
    struct wf *wf =
        load_path(WEFT_TEST_DATA "/seed/variables-and-templating.yml");
    char *t = render(step(wf, "setup")->timeout,
                     "{\"variables\":{\"timeout_base\":1800}}");
    cr_assert_str_eq(t, "1800");
    free(t);
    wf_free(wf);
}

Test(wfdef, renders_templates_deep_in_params)
{
    struct wf *wf = load_ok("steps:\n  - id: s\n    type: noop\n    params:\n"
                            "      branch: \"{{variables.p}}{{task.slug}}\"\n"
                            "      list: [\"{{task.n}}\", 2, \"lit\"]\n"
                            "      gone: \"{{task.missing}}\"\n"
                            "      nested: {k: \"{{task.slug}}\"}\n"
                            "variables: {p: \"feat/\"}\n");
    char *s =
        render(step(wf, "s")->params, "{\"variables\":{\"p\":\"feat/\"},"
                                      "\"task\":{\"slug\":\"x\",\"n\":3}}");
    cr_assert_str_eq(s, "{\"branch\":\"feat/x\",\"list\":[3,2,\"lit\"],"
                        "\"nested\":{\"k\":\"x\"}}");
    free(s);
    wf_free(wf);
}

Test(wfdef, literal_values_skip_rendering)
{
    struct wf *wf = load_ok("steps:\n  - id: s\n    type: noop\n"
                            "    timeout: 60\n    params: {a: [1, b]}\n");
    const struct wf_step *s = step(wf, "s");
    cr_assert_eq(json_integer_value(tvalue_literal(s->timeout)), 60);
    cr_assert_not_null(tvalue_literal(s->params));
    char *r = render(s->params, "{}");
    cr_assert_str_eq(r, "{\"a\":[1,\"b\"]}");
    free(r);
    wf_free(wf);
}

Test(wfdef, undefined_single_template_renders_undefined)
{
    struct wf *wf = load_ok("steps:\n  - id: s\n    type: noop\n"
                            "    timeout: \"{{task.t}}\"\n");
    char *r = render(step(wf, "s")->timeout, "{\"task\":{}}");
    cr_assert_str_eq(r, "undefined");
    free(r);
    wf_free(wf);
}

Test(wfdef, orders_variables_by_what_they_read)
{
    struct wf *wf = load_ok("variables:\n  c: \"{{variables.b}}x\"\n"
                            "  b: \"{{variables.a}}\"\n  a: 1\n  d: 2\n"
                            "steps: [{id: s, type: noop}]\n");
    cr_assert_eq(wf->nvariables, 4);
    cr_assert_str_eq(wf->variable_names[0], "a");
    cr_assert_str_eq(wf->variable_names[1], "b");
    cr_assert_str_eq(wf->variable_names[2], "c");
    cr_assert_str_eq(wf->variable_names[3], "d");
    cr_assert_eq(json_integer_value(tvalue_literal(wf->variable_values[0])), 1);
    wf_free(wf);
}

Test(wfdef, rejects_variables_that_read_each_other)
{
    expect_error("variables: {a: \"{{variables.b}}\", b: \"{{variables.a}}\"}"
                 "\nsteps: [{id: s, type: noop}]\n",
                 "1:13: error: variables read each other in a cycle: a -> b "
                 "-> a");
}

Test(wfdef, rejects_step_results_in_variables)
{
    expect_error("variables: {a: \"{{state.x}}\"}\n"
                 "steps: [{id: s, type: noop}]\n",
                 "1:19: error: 'state' cannot be read in a variable; "
                 "variables are evaluated when the run starts");
}

Test(wfdef, variables_read_milestone_through_context)
{
    expect_error("variables: {m: \"{{milestone.name}}\"}\n"
                 "steps: [{id: s, type: noop}]\n",
                 "1:19: error: 'milestone' cannot be read in a variable; use "
                 "context.milestone");
    struct wf *wf = load_ok("variables: {m: \"{{context.milestone.name}}\"}"
                            "\nsteps: [{id: s, type: noop}]\n");
    wf_free(wf);
}

Test(wfdef, rejects_unknown_variable_with_hint)
{
    expect_error("variables: {prefix: x}\nsteps:\n  - id: s\n    type: noop\n"
                 "    name: \"{{variables.prefx}}\"\n",
                 "5:24: error: unknown variable 'prefx' (did you mean "
                 "'prefix'?)");
}

Test(wfdef, rejects_unknown_template_root_with_hint)
{
    expect_error("steps:\n  - id: s\n    type: noop\n"
                 "    name: \"Setup {{tsak.project}}\"\n",
                 "4:20: error: unknown name 'tsak' in template of 'name' "
                 "(did you mean 'task'?)");
}

Test(wfdef, rejects_bad_template_deep_in_params)
{
    expect_error("steps:\n  - id: s\n    type: noop\n    params:\n"
                 "      a: {b: [\"x {{ task.\"]}\n",
                 "5:18: error: invalid template of 'params': '{{' without a "
                 "closing '}}'");
}

Test(wfdef, rejects_bad_template_in_git_message)
{
    expect_error("steps:\n  - id: c\n    type: git-operation\n"
                 "    operation: commit\n    message: \"{{task.a +}}\"\n",
                 "5:25: error: invalid template of 'message': unexpected "
                 "end of expression");
}

/* ---- conditions ---- */

Test(wfdef, condition_error_points_inside_the_expression)
{
    expect_error("steps:\n  - id: s\n    type: noop\n"
                 "    condition: \"task.a === 'x' ++ 1\"\n",
                 "4:32: error: invalid condition: increment and decrement "
                 "operators are not supported");
}

Test(wfdef, condition_error_column_in_plain_scalar)
{
    expect_error("steps:\n  - id: s\n    type: noop\n"
                 "    condition: task.a = 1\n",
                 "4:23: error: invalid condition: assignment is not "
                 "supported");
}

Test(wfdef, rejects_unknown_condition_root_with_hint)
{
    expect_error("steps:\n  - id: s\n    type: noop\n"
                 "    condition: \"taks.type === 'x'\"\n",
                 "4:17: error: unknown name 'taks' in condition (did you "
                 "mean 'task'?)");
}

Test(wfdef, condition_must_be_a_string)
{
    expect_error("steps: [{id: s, type: noop, condition: [a]}]\n",
                 "1:40: error: 'condition' must be a string (an "
                 "expression), got a sequence");
}

/* ---- keys, types, required fields ---- */

Test(wfdef, rejects_unknown_key_with_hint)
{
    expect_error("steps:\n  - id: s\n    type: noop\n"
                 "    dependancies: []\n",
                 "4:5: error: unknown key 'dependancies' (did you mean "
                 "'dependencies'?)");
}

Test(wfdef, rejects_unknown_top_level_key_with_hint)
{
    expect_error("varibles: {}\nsteps: [{id: s, type: noop}]\n",
                 "1:1: error: unknown key 'varibles' (did you mean "
                 "'variables'?)");
}

Test(wfdef, rejects_key_that_does_not_apply_to_the_type)
{
    expect_error("steps: [{id: s, type: noop, persona: x}]\n",
                 "1:29: error: 'persona' does not apply to noop steps");
}

Test(wfdef, rejects_unknown_step_type_with_hint)
{
    expect_error("steps: [{id: s, type: paralel}]\n",
                 "1:23: error: unknown step type 'paralel' (did you mean "
                 "'parallel'?)");
}

Test(wfdef, rejects_unknown_git_operation_with_hint)
{
    expect_error("steps: [{id: s, type: git-operation, operation: puhs}]\n",
                 "1:49: error: unknown git operation 'puhs' (did you mean "
                 "'push'?)");
}

Test(wfdef, commit_requires_a_message)
{
    expect_error("steps: [{id: c, type: git-operation, operation: commit}]\n",
                 "1:9: error: step 'c': git operation 'commit' requires "
                 "'message'");
}

Test(wfdef, push_takes_no_message)
{
    expect_error("steps: [{id: c, type: git-operation, operation: push, "
                 "message: x}]\n",
                 "1:55: error: 'message' does not apply to git operation "
                 "'push'");
}

Test(wfdef, requires_persona_for_persona_requests)
{
    expect_error("steps: [{id: s, type: persona-request}]\n",
                 "1:9: error: step 's' is missing required key 'persona'");
}

Test(wfdef, requires_steps_for_parallel)
{
    expect_error("steps: [{id: s, type: parallel}]\n",
                 "1:9: error: step 's' is missing required key 'steps'");
}

Test(wfdef, requires_then_steps_for_conditional)
{
    expect_error("steps: [{id: s, type: conditional, condition: task.y}]\n",
                 "1:9: error: step 's' is missing required key "
                 "'then_steps'");
}

Test(wfdef, rejects_invalid_wait_for)
{
    expect_error("steps: [{id: p, type: parallel, wait_for: first, steps: "
                 "[{id: a, type: noop}]}]\n",
                 "1:43: error: invalid wait_for 'first'; expected 'all' or "
                 "'any'");
}

Test(wfdef, rejects_invalid_on_failure)
{
    expect_error("steps: [{id: s, type: noop, on_failure: ignore}]\n",
                 "1:41: error: invalid on_failure 'ignore'; expected 'fail', "
                 "'continue' or 'escalate'");
}

Test(wfdef, rejects_retries_and_retry_together)
{
    expect_error("steps: [{id: s, type: noop, retry: {max: 1}, retries: 1}]\n",
                 "1:46: error: 'retries' and 'retry' cannot both be set; use "
                 "retry.max");
}

Test(wfdef, retries_at_the_limit_is_accepted)
{
    struct wf *wf = load_ok("steps: [{id: s, type: noop, retries: 100}]\n");
    cr_assert_eq(step(wf, "s")->retry.max, WF_MAX_RETRIES);
    wf_free(wf);
}

Test(wfdef, retries_one_past_the_limit_is_rejected)
{
    expect_error("steps: [{id: s, type: noop, retries: 101}]\n",
                 "1:38: error: 'retries' must be from 0 to 100, got 101");
}

Test(wfdef, rejects_delay_longer_than_max_delay)
{
    expect_error("steps: [{id: s, type: noop, retry: {max: 1, delay: 9, "
                 "max_delay: 3}}]\n",
                 "1:66: error: 'retry.max_delay' must not be shorter than "
                 "'retry.delay'");
}

Test(wfdef, retry_delay_at_the_limit_is_accepted)
{
    struct wf *wf = load_ok("steps: [{id: s, type: noop, retry: {max: 1, "
                            "delay: 86400, max_delay: 86400}}]\n");
    cr_assert_eq(step(wf, "s")->retry.delay_ms, 86400u * 1000u);
    wf_free(wf);
}

Test(wfdef, retry_delay_one_past_the_limit_is_rejected)
{
    expect_error("steps: [{id: s, type: noop, retry: {max: 1, delay: 86401}}]"
                 "\n",
                 "1:52: error: 'retry.delay' must be zero or more and at most "
                 "86400 seconds, got 86401");
}

Test(wfdef, jitter_at_the_limit_is_accepted)
{
    struct wf *wf = load_ok("steps: [{id: s, type: noop, retry: {max: 1, "
                            "jitter: 1}}]\n");
    cr_assert_eq(step(wf, "s")->retry.jitter, 1.0);
    wf_free(wf);
}

Test(wfdef, jitter_past_the_limit_is_rejected)
{
    expect_error("steps: [{id: s, type: noop, retry: {max: 1, jitter: 1.01}}]"
                 "\n",
                 "1:53: error: 'retry.jitter' must be from 0 to 1, got 1.01");
}

Test(wfdef, timeout_at_the_limit_is_accepted)
{
    struct wf *wf = load_ok("steps: [{id: s, type: noop, timeout: 604800}]\n");
    cr_assert_eq(json_integer_value(tvalue_literal(step(wf, "s")->timeout)),
                 WF_MAX_TIMEOUT_S);
    wf_free(wf);
}

Test(wfdef, timeout_one_past_the_limit_is_rejected)
{
    expect_error("steps: [{id: s, type: noop, timeout: 604801}]\n",
                 "1:38: error: 'timeout' of 604801 seconds is longer than "
                 "the limit of 604800 (7 days)");
}

Test(wfdef, timeout_must_be_positive)
{
    expect_error("steps: [{id: s, type: noop, timeout: 0}]\n",
                 "1:38: error: 'timeout' must be positive, got 0");
}

Test(wfdef, timeout_string_must_be_a_template)
{
    expect_error("steps: [{id: s, type: noop, timeout: \"30\"}]\n",
                 "1:38: error: 'timeout' must be a number or a template, got "
                 "a string");
}

Test(wfdef, version_number_must_be_quoted)
{
    expect_error("version: 1.0\nsteps: [{id: s, type: noop}]\n",
                 "1:10: error: 'version' must be a string, got a number "
                 "(quote it: \"1.0\")");
}

/* ---- ids and dependencies ---- */

static char *id_doc(size_t len)
{
    char *id = malloc(len + 1);
    memset(id, 'i', len);
    id[len] = '\0';
    char *doc = malloc(len + 64);
    snprintf(doc, len + 64, "steps: [{id: %s, type: noop}]\n", id);
    free(id);
    return doc;
}

Test(wfdef, id_at_the_length_limit_is_accepted)
{
    char *doc = id_doc(WF_MAX_ID_LEN);
    struct wf *wf = load_ok(doc);
    cr_assert_eq(strlen(wf->steps[0].id), WF_MAX_ID_LEN);
    wf_free(wf);
    free(doc);
}

Test(wfdef, id_one_past_the_length_limit_is_rejected)
{
    char *doc = id_doc(WF_MAX_ID_LEN + 1);
    expect_error(doc, "1:14: error: step id is 129 bytes long; the limit is "
                      "128");
    free(doc);
}

Test(wfdef, rejects_invalid_id_characters)
{
    expect_error("steps: [{id: \"a:b\", type: noop}]\n",
                 "1:14: error: invalid step id 'a:b': use only letters, "
                 "digits, '_', '.' and '-'");
}

Test(wfdef, rejects_duplicate_step_id)
{
    expect_error("steps:\n  - id: qa\n    type: noop\n  - id: qa\n"
                 "    type: noop\n",
                 "4:9: error: duplicate step id 'qa' (first defined at 2:5)");
}

Test(wfdef, rejects_unknown_dependency_with_hint)
{
    expect_error("steps:\n  - {id: planning, type: noop}\n"
                 "  - {id: b, type: noop, dependencies: [plannig]}\n",
                 "3:40: error: step 'b' depends on unknown step 'plannig' "
                 "(did you mean 'planning'?)");
}

Test(wfdef, rejects_self_dependency)
{
    expect_error("steps: [{id: a, type: noop, dependencies: [a]}]\n",
                 "1:44: error: step 'a' depends on itself");
}

Test(wfdef, rejects_repeated_dependency)
{
    expect_error("steps: [{id: a, type: noop}, {id: b, type: noop, "
                 "dependencies: [a, a]}]\n",
                 "1:68: error: step 'b' lists dependency 'a' more than once");
}

Test(wfdef, rejects_cycle_between_steps)
{
    expect_error("steps:\n  - {id: a, type: noop, dependencies: [c]}\n"
                 "  - {id: b, type: noop, dependencies: [a]}\n"
                 "  - {id: c, type: noop, dependencies: [b]}\n",
                 "2:5: error: dependency cycle: a -> c -> b -> a");
}

Test(wfdef, reports_each_cycle_once)
{
    struct wf *wf;
    char *text;
    cr_assert_eq(load("steps:\n  - {id: a, type: noop, dependencies: [b]}\n"
                      "  - {id: b, type: noop, dependencies: [a, c]}\n"
                      "  - {id: c, type: noop, dependencies: [b]}\n"
                      "  - {id: x, type: noop, dependencies: [y]}\n"
                      "  - {id: y, type: noop, dependencies: [x]}\n",
                      &wf, &text),
                 WEFT_EINVAL);
    cr_assert_str_eq(text, "t.yml:2:5: error: dependency cycle: a -> b -> a\n"
                           "t.yml:5:5: error: dependency cycle: x -> y -> x\n");
    free(text);
}

Test(wfdef, rejects_dependency_into_a_conditional)
{
    expect_error("steps:\n  - id: c\n    type: conditional\n"
                 "    condition: task.x\n    then_steps: [{id: i, type: "
                 "noop}]\n  - {id: o, type: noop, dependencies: [i]}\n",
                 "6:40: error: step 'o' depends on 'i', which is inside "
                 "conditional 'c'; depend on 'c' instead");
}

Test(wfdef, rejects_dependency_out_of_a_parallel_group)
{
    expect_error("steps:\n  - {id: s, type: noop}\n  - id: p\n"
                 "    type: parallel\n    steps: [{id: i, type: noop, "
                 "dependencies: [s]}]\n",
                 "5:48: error: step 'i' depends on 's', which is outside "
                 "parallel group 'p'; make 'p' depend on it");
}

Test(wfdef, rejects_dependency_across_conditional_branches)
{
    expect_error("steps:\n  - id: c\n    type: conditional\n"
                 "    condition: task.x\n"
                 "    then_steps: [{id: t, type: noop}]\n"
                 "    else_steps: [{id: e, type: noop, dependencies: [t]}]\n",
                 "6:53: error: step 'e' depends on 't', which is in the other "
                 "branch of conditional 'c'");
}

/* Steps nested `levels` parallel groups deep (top level is 0). */
static char *nest_doc(int levels)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_append_str(&b, "steps:\n");
    int ind = 2;
    for (int d = 0; d < levels; d++) {
        buf_printf(&b, "%*s- id: g%d\n%*s  type: parallel\n%*s  steps:\n", ind,
                   "", d, ind, "", ind, "");
        ind += 4;
    }
    buf_printf(&b, "%*s- {id: leaf, type: noop}\n", ind, "");
    size_t len;
    return buf_steal(&b, &len);
}

Test(wfdef, nesting_at_the_limit_is_accepted)
{
    char *doc = nest_doc(WF_MAX_NESTING);
    struct wf *wf = load_ok(doc);
    cr_assert_eq(step(wf, "leaf")->depth, WF_MAX_NESTING);
    wf_free(wf);
    free(doc);
}

Test(wfdef, nesting_one_past_the_limit_is_rejected)
{
    char *doc = nest_doc(WF_MAX_NESTING + 1);
    struct wf *wf;
    char *text;
    cr_assert_eq(load(doc, &wf, &text), WEFT_ELIMIT);
    cr_assert(strstr(text, "steps nested more than 32 levels deep") != NULL,
              "%s", text);
    free(text);
    free(doc);
}

static char *many_steps_doc(uint32_t n)
{
    struct buf b;
    buf_init(&b, 1u << 26);
    buf_append_str(&b, "steps:\n");
    for (uint32_t i = 0; i < n; i++)
        buf_printf(&b, "- {id: s%u, type: noop}\n", i);
    size_t len;
    return buf_steal(&b, &len);
}

Test(wfdef, step_count_at_the_limit_is_accepted, .timeout = 120)
{
    char *doc = many_steps_doc(WF_MAX_STEPS);
    struct wf *wf = load_ok(doc);
    cr_assert_eq(wf->nsteps, WF_MAX_STEPS);
    wf_free(wf);
    free(doc);
}

Test(wfdef, step_count_one_past_the_limit_is_rejected, .timeout = 120)
{
    char *doc = many_steps_doc(WF_MAX_STEPS + 1);
    struct wf *wf;
    char *text;
    cr_assert_eq(load(doc, &wf, &text), WEFT_ELIMIT);
    cr_assert_str_eq(text, "t.yml:200002:3: error: more than 200000 steps "
                           "(the limit)\n");
    free(text);
    free(doc);
}

/* ---- files ---- */

Test(wfdef, missing_file_is_an_io_error)
{
    struct diag d;
    struct wf *wf = NULL;
    diag_init(&d, "nope.yml");
    cr_assert_eq(wf_load_file(WEFT_TEST_DATA "/no/such/file.yml", &wf, &d),
                 WEFT_EIO);
    cr_assert_eq(d.count, 1);
    diag_deinit(&d);
}

Test(wfdef, file_past_the_size_limit_is_refused)
{
    char path[] = "/tmp/weft-big-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    /* Sparse: no need to write 64 MB. */
    cr_assert_eq(ftruncate(fd, (off_t)YTREE_MAX_INPUT + 1), 0);
    struct diag d;
    struct wf *wf = NULL;
    diag_init(&d, "big.yml");
    cr_assert_eq(wf_load_file(path, &wf, &d), WEFT_ELIMIT);
    diag_deinit(&d);
    unlink(path);
}

/* ---- the invalid corpus ---- */

Test(wfdef, invalid_corpus_produces_the_expected_errors, .timeout = 120)
{
    const char *dir = WEFT_TEST_DATA "/invalid";
    DIR *dp = opendir(dir);
    cr_assert_not_null(dp);
    struct dirent *e;
    int cases = 0;
    while ((e = readdir(dp)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".yml") != 0)
            continue;
        char path[4096], exp_path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        snprintf(exp_path, sizeof(exp_path), "%s/%.*s.expected", dir,
                 (int)(n - 4), e->d_name);
        struct diag d;
        struct wf *wf = NULL;
        diag_init(&d, e->d_name);
        int rc = wf_load_file(path, &wf, &d);
        cr_expect_neq(rc, 0, "%s loaded", e->d_name);
        wf_free(wf);
        diag_sort(&d);
        char *got = NULL;
        size_t glen = 0, wlen = 0;
        FILE *f = open_memstream(&got, &glen);
        diag_print(&d, f);
        fclose(f);
        diag_deinit(&d);
        char *want = read_all(exp_path, &wlen);
        cr_expect_str_eq(got, want, "%s", e->d_name);
        free(got);
        free(want);
        cases++;
    }
    closedir(dp);
    cr_assert_geq(cases, 40);
}

/* ---- allocation failure ---- */

static void oom_loop(const char *yaml, bool canonical)
{
    for (unsigned long n = 1;; n++) {
        struct diag d;
        struct wf *wf = NULL;
        diag_init(&d, "t");
        weft_alloc_fail_after(n);
        int rc = canonical ? wf_load_canonical(yaml, strlen(yaml), &wf, &d)
                           : wf_load_buffer(yaml, strlen(yaml), "t", &wf, &d);
        weft_alloc_fail_reset();
        diag_deinit(&d);
        wf_free(wf);
#ifdef HAVE_LSAN
        cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
                     "leak after failing allocation %lu", n);
#endif
        if (rc == 0)
            break;
        cr_assert_eq(rc, WEFT_ENOMEM, "allocation %lu: rc %d", n, rc);
        cr_assert_null(wf);
        cr_assert_lt(n, 100000);
    }
}

Test(wfdef, allocation_failures_never_crash_or_leak, .timeout = 300)
{
    size_t len;
    char *yaml = read_all(WEFT_SOURCE_ROOT "/workflows/feature.yml", &len);
    oom_loop(yaml, false);
    free(yaml);
}

Test(wfdef, allocation_failures_in_canonical_load_never_crash_or_leak,
     .timeout = 300)
{
    struct wf *wf = load_path(WEFT_SOURCE_ROOT "/workflows/hotfix.yml");
    char *canon = strdup(wf->canonical);
    wf_free(wf);
    oom_loop(canon, true);
    free(canon);
}

Test(wfdef, allocation_failures_while_reporting_errors_never_crash)
{
    size_t len;
    char *yaml =
        read_all(WEFT_TEST_DATA "/invalid/variables-invalid.yml", &len);
    for (unsigned long n = 1; n < 5000; n++) {
        struct diag d;
        struct wf *wf = NULL;
        diag_init(&d, "t");
        weft_alloc_fail_after(n);
        int rc = wf_load_buffer(yaml, len, "t", &wf, &d);
        weft_alloc_fail_reset();
        diag_deinit(&d);
        cr_assert_neq(rc, 0);
        cr_assert_null(wf);
    }
    free(yaml);
}

/* ---- circuit breakers and timeouts ---- */

static const char *breaker_yaml =
    "timeout: 3600\n"
    "steps:\n"
    "  - id: ask\n"
    "    type: persona-request\n"
    "    persona: qa\n"
    "    fallback_persona: qa-backup\n"
    "    breaker: {failures: 3, window: 10, cooldown: 0.5}\n"
    "    queue_timeout: 2.5\n"
    "  - id: push\n"
    "    type: git-operation\n"
    "    operation: push\n"
    "    remote: upstream\n"
    "    breaker: true\n"
    "    on_breaker_open: fail\n"
    "  - id: plain\n"
    "    type: persona-request\n"
    "    persona: qa\n"
    "    breaker: false\n";

Test(wfdef, reads_breaker_settings_policy_and_timeouts)
{
    struct wf *wf = load_ok(breaker_yaml);
    cr_assert_eq(wf->timeout_ms, 3600000);
    const struct wf_step *a = step(wf, "ask");
    cr_assert(a->breaker.set);
    cr_assert_not(a->breaker.off);
    cr_assert_eq(a->breaker.failures, 3);
    cr_assert_eq(a->breaker.window_ms, 10000);
    cr_assert_eq(a->breaker.cooldown_ms, 500);
    cr_assert_str_eq(a->fallback_persona, "qa-backup");
    cr_assert_eq(a->on_open, WF_ON_OPEN_FALLBACK, "fallback by default");
    cr_assert_eq(a->queue_timeout_ms, 2500);
    const struct wf_step *p = step(wf, "push");
    cr_assert(p->breaker.set);
    cr_assert_eq(p->breaker.failures, 0, "true: every field defaulted");
    cr_assert_eq(p->on_open, WF_ON_OPEN_FAIL);
    const struct wf_step *n = step(wf, "plain");
    cr_assert(n->breaker.off);
    cr_assert_eq(n->on_open, WF_ON_OPEN_WAIT);
    cr_assert_null(n->fallback_persona);
    cr_assert_eq(n->queue_timeout_ms, 0);
    cr_assert_str_eq(wf_on_open_name(WF_ON_OPEN_FALLBACK), "fallback");
    wf_free(wf);
}

Test(wfdef, canonical_reload_keeps_breakers_and_timeouts)
{
    struct wf *a = load_ok(breaker_yaml), *b = NULL;
    struct diag d;
    diag_init(&d, "canonical");
    cr_assert_eq(wf_load_canonical(a->canonical, a->canonical_len, &b, &d), 0);
    expect_same_model(a, b);
    cr_assert_eq(b->timeout_ms, a->timeout_ms);
    for (uint32_t i = 0; i < a->nsteps; i++) {
        const struct wf_step *x = &a->steps[i], *y = &b->steps[i];
        cr_assert_eq(memcmp(&x->breaker, &y->breaker, sizeof(x->breaker)), 0);
        cr_assert_eq(x->on_open, y->on_open);
        cr_assert_eq(x->queue_timeout_ms, y->queue_timeout_ms);
        cr_assert_eq(x->fallback_persona == NULL, y->fallback_persona == NULL);
    }
    wf_free(a);
    wf_free(b);
    diag_deinit(&d);
}

Test(wfdef, rejects_unknown_breaker_key_with_hint)
{
    expect_error("steps: [{id: s, type: persona-request, persona: p,"
                 " breaker: {windw: 10}}]\n",
                 "1:62: error: 'breaker': unknown key 'windw' (did you mean "
                 "'window'?)");
}

Test(wfdef, breaker_must_be_a_mapping_or_a_boolean)
{
    expect_error("steps: [{id: s, type: persona-request, persona: p,"
                 " breaker: 5}]\n",
                 "1:61: error: 'breaker' must be a mapping {failures, window, "
                 "cooldown}, true or false, got a number");
}

Test(wfdef, breaker_failures_at_the_limit_is_accepted)
{
    struct wf *wf = load_ok("steps: [{id: s, type: persona-request, persona: "
                            "p, breaker: {failures: 1000}}]\n");
    cr_assert_eq(step(wf, "s")->breaker.failures, BREAKER_MAX_FAILURES);
    wf_free(wf);
}

Test(wfdef, breaker_failures_one_past_the_limit_is_rejected)
{
    expect_error("steps: [{id: s, type: persona-request, persona: p,"
                 " breaker: {failures: 1001}}]\n",
                 "1:72: error: 'breaker': 'failures' must be an integer from "
                 "1 to 1000");
    expect_error("steps: [{id: s, type: persona-request, persona: p,"
                 " breaker: {failures: 0}}]\n",
                 "1:72: error: 'breaker': 'failures' must be an integer from "
                 "1 to 1000");
}

Test(wfdef, breaker_window_at_and_past_the_limit)
{
    struct wf *wf = load_ok("steps: [{id: s, type: persona-request, persona: "
                            "p, breaker: {window: 86400, cooldown: 86400}}]\n");
    cr_assert_eq(step(wf, "s")->breaker.window_ms, 86400000u);
    cr_assert_eq(step(wf, "s")->breaker.cooldown_ms, 86400000u);
    wf_free(wf);
    expect_error("steps: [{id: s, type: persona-request, persona: p,"
                 " breaker: {cooldown: 86401}}]\n",
                 "1:72: error: 'breaker': 'cooldown' must be a number of "
                 "seconds above 0 and at most 86400");
    expect_error("steps: [{id: s, type: persona-request, persona: p,"
                 " breaker: {window: 0}}]\n",
                 "1:70: error: 'breaker': 'window' must be a number of "
                 "seconds above 0 and at most 86400");
}

Test(wfdef, rejects_invalid_on_breaker_open_with_hint)
{
    expect_error("steps: [{id: s, type: persona-request, persona: p,"
                 " on_breaker_open: wiat}]\n",
                 "1:69: error: invalid on_breaker_open 'wiat' (did you mean "
                 "'wait'?)");
}

Test(wfdef, fallback_policy_needs_a_fallback_persona)
{
    expect_error("steps: [{id: s, type: persona-request, persona: p,"
                 " on_breaker_open: fallback}]\n",
                 "1:52: error: step 's': 'on_breaker_open: fallback' needs "
                 "'fallback_persona'");
}

Test(wfdef, fallback_persona_with_another_policy_is_rejected)
{
    expect_error("steps: [{id: s, type: persona-request, persona: p,"
                 " fallback_persona: q, on_breaker_open: wait}]\n",
                 "1:73: error: step 's': 'on_breaker_open: wait' leaves "
                 "'fallback_persona' unused; write 'fallback' or drop "
                 "'fallback_persona'");
}

Test(wfdef, fallback_persona_must_differ_from_the_persona)
{
    expect_error("steps: [{id: s, type: persona-request, persona: p,"
                 " fallback_persona: p}]\n",
                 "1:70: error: step 's': 'fallback_persona' is the step's own "
                 "persona 'p'");
}

Test(wfdef, fallback_persona_is_checked_like_a_persona_name)
{
    expect_error("steps: [{id: s, type: persona-request, persona: p,"
                 " fallback_persona: \"a b\"}]\n",
                 "1:70: error: invalid persona name 'a b': use only letters, "
                 "digits, '_', '.' and '-'");
}

Test(wfdef, breaker_keys_do_not_apply_to_noop_steps)
{
    expect_error("steps: [{id: s, type: noop, breaker: true}]\n",
                 "1:29: error: 'breaker' does not apply to noop steps");
    expect_error("steps: [{id: s, type: git-operation, operation: push,"
                 " fallback_persona: q}]\n",
                 "1:55: error: 'fallback_persona' does not apply to "
                 "git-operation steps");
}

Test(wfdef, git_breaker_needs_an_operation_that_reaches_a_remote)
{
    expect_error("steps: [{id: s, type: git-operation, operation: commit,"
                 " message: m, breaker: true}]\n",
                 "1:69: error: 'breaker' applies to git operations that reach "
                 "a remote (push, fetch, pull), not 'commit'");
}

Test(wfdef, git_breaker_needs_a_literal_remote)
{
    expect_error("steps: [{id: s, type: git-operation, operation: fetch,"
                 " remote: \"{{task.remote}}\", on_breaker_open: fail}]\n",
                 "1:83: error: 'on_breaker_open' needs a literal 'remote': the "
                 "breaker is named after it, not after a template");
}

Test(wfdef, queue_timeout_at_and_past_the_limit)
{
    struct wf *wf =
        load_ok("steps: [{id: s, type: noop, queue_timeout: 604800}]\n");
    cr_assert_eq(step(wf, "s")->queue_timeout_ms, 604800000u);
    wf_free(wf);
    expect_error("steps: [{id: s, type: noop, queue_timeout: 604801}]\n",
                 "1:44: error: 'queue_timeout' of 604801 seconds is longer "
                 "than the limit of 604800 (7 days)");
    expect_error("steps: [{id: s, type: noop, queue_timeout: 0}]\n",
                 "1:44: error: 'queue_timeout' must be positive, got 0");
    expect_error("steps: [{id: s, type: noop, queue_timeout: \"{{x}}\"}]\n",
                 "1:44: error: 'queue_timeout' must be a number of seconds, "
                 "got a string");
    expect_error("steps: [{id: s, type: parallel, queue_timeout: 1,"
                 " steps: [{id: t, type: noop}]}]\n",
                 "1:33: error: 'queue_timeout' does not apply to parallel "
                 "steps");
}

Test(wfdef, workflow_timeout_at_and_past_the_limit)
{
    struct wf *wf = load_ok("timeout: 2592000\nsteps: [{id: s, type: noop}]\n");
    cr_assert_eq(wf->timeout_ms, 2592000000ull);
    wf_free(wf);
    expect_error("timeout: 2592001\nsteps: [{id: s, type: noop}]\n",
                 "1:10: error: 'timeout' of 2592001 seconds is longer than "
                 "the limit of 2592000 (30 days)");
    expect_error("timeout: -1\nsteps: [{id: s, type: noop}]\n",
                 "1:10: error: 'timeout' must be positive, got -1");
    expect_error("timeot: 5\nsteps: [{id: s, type: noop}]\n",
                 "1:1: error: unknown key 'timeot' (did you mean 'timeout'?)");
}

/* ---- approval steps ---- */

Test(wfdef, reads_approval_step_with_approvers_message_and_timeout)
{
    struct wf *wf =
        load_ok("steps:\n  - id: ok\n    type: approval\n"
                "    approvers: [alice, \"{{task.owner}}\"]\n"
                "    message: \"Ship {{task.title}}?\"\n    timeout: 3600\n"
                "    on_failure: continue\n"
                "  - id: after\n    type: noop\n    dependencies: [ok]\n");
    const struct wf_step *s = step(wf, "ok");
    cr_assert_eq(s->type, WF_STEP_APPROVAL);
    cr_assert_str_eq(wf_step_type_name(s->type), "approval");
    cr_assert_not_null(s->approvers);
    cr_assert_not_null(s->approval_message);
    cr_assert_null(s->git_message);
    cr_assert_not_null(s->timeout);
    char *a = render(s->approvers, "{\"task\": {\"owner\": \"bob\"}}");
    cr_assert_str_eq(a, "[\"alice\",\"bob\"]");
    free(a);
    char *m = render(s->approval_message, "{\"task\": {\"title\": \"v2\"}}");
    cr_assert_str_eq(m, "\"Ship v2?\"");
    free(m);
    wf_free(wf);
}

Test(wfdef, approval_needs_no_keys_besides_id_and_type)
{
    struct wf *wf = load_ok("steps: [{id: gate, type: approval}]\n");
    cr_assert_null(step(wf, "gate")->approvers);
    cr_assert_null(step(wf, "gate")->approval_message);
    wf_free(wf);
}

Test(wfdef, approval_survives_the_canonical_reload)
{
    struct wf *a = load_ok("steps: [{id: gate, type: approval, approvers: "
                           "[alice], message: go?, timeout: 5}]\n");
    struct wf *b = NULL;
    struct diag d;
    diag_init(&d, "canonical");
    cr_assert_eq(wf_load_canonical(a->canonical, a->canonical_len, &b, &d), 0);
    cr_assert_eq(step(b, "gate")->type, WF_STEP_APPROVAL);
    cr_assert_not_null(step(b, "gate")->approvers);
    cr_assert_not_null(step(b, "gate")->approval_message);
    cr_assert_str_eq(a->digest, b->digest);
    wf_free(a);
    wf_free(b);
    diag_deinit(&d);
}

Test(wfdef, approval_takes_no_worker_keys)
{
    expect_error("steps: [{id: s, type: approval, params: {}}]\n",
                 "1:33: error: 'params' does not apply to approval steps");
    expect_error("steps: [{id: s, type: approval, retries: 1}]\n",
                 "1:33: error: 'retries' does not apply to approval steps");
}

Test(wfdef, approvers_must_be_a_nonempty_list_of_names)
{
    expect_error("steps: [{id: s, type: approval, approvers: alice}]\n",
                 "1:44: error: 'approvers' must be a sequence of names, got "
                 "a string");
    expect_error("steps: [{id: s, type: approval, approvers: []}]\n",
                 "1:44: error: 'approvers' must name at least one person "
                 "(leave it out to let anyone approve)");
    expect_error("steps: [{id: s, type: approval, approvers: [a, 3]}]\n",
                 "1:48: error: 'approvers' must be a sequence of names, got "
                 "a number");
    expect_error("steps: [{id: s, type: approval, approvers: [a, '']}]\n",
                 "1:48: error: an approver's name must be 1 to 128 bytes "
                 "long");
}

Test(wfdef, approvers_at_the_limit_are_accepted_and_one_past_rejected)
{
    char yaml[2048];
    int n = snprintf(yaml, sizeof(yaml),
                     "steps: [{id: s, type: approval, approvers: [");
    for (int i = 0; i < WF_MAX_APPROVERS; i++)
        n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "%sp%d",
                      i ? ", " : "", i);
    snprintf(yaml + n, sizeof(yaml) - (size_t)n, "]}]\n");
    struct wf *wf = load_ok(yaml);
    wf_free(wf);
    snprintf(yaml + n, sizeof(yaml) - (size_t)n, ", extra]}]\n");
    expect_error(yaml, "1:44: error: 'approvers' lists 65 names; the limit "
                       "is 64");
}

Test(wfdef, approval_message_must_be_a_string)
{
    expect_error("steps: [{id: s, type: approval, message: [x]}]\n",
                 "1:42: error: 'message' must be a string, got a sequence");
}

Test(wfdef, git_message_is_still_a_git_field)
{
    expect_error("steps: [{id: s, type: noop, message: x}]\n",
                 "1:29: error: 'message' does not apply to noop steps");
    expect_error("steps: [{id: s, type: noop, approvers: [x]}]\n",
                 "1:29: error: 'approvers' does not apply to noop steps");
}
