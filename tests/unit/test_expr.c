/* test_expr.c - the expression subset: the seed's conditions, JS
 * semantics of each operator, parse and evaluation errors with columns,
 * every limit at and past its boundary, and failing allocations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "alloc.h"
#include "buf.h"
#include "expr.h"
#include "expr_int.h"

#if defined(__SANITIZE_ADDRESS__)
#define EXPR_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EXPR_TEST_LSAN 1
#endif
#endif
#ifdef EXPR_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static const char scope_json[] =
    "{\"task\": {\"type\": \"hotfix\", \"slug\": \"fix-login\","
    "  \"project\": \"weft\", \"count\": 3, \"ratio\": 0.25, \"zero\": 0,"
    "  \"empty\": \"\", \"nothing\": null, \"flag\": true,"
    "  \"tags\": [\"backend\", \"urgent\"], \"nums\": [1, 2, 0],"
    "  \"emoji\": \"x\\ud83d\\ude00y\", \"pua\": \"\\ue000\","
    "  \"big\": 4611686018427387904, \"get\": 5},"
    " \"variables\": {\"timeout_base\": 1800, \"branch_prefix\": \"feat/\"},"
    " \"steps\": {\"plan-evaluation\": {\"result\": {\"summary\": \"ok\"}}},"
    " \"context\": {\"state\": {\"planning_result\": {\"approved\": true},"
    "  \"qa_status\": \"pass\", \"notes\": \"\"},"
    "  \"personaResults\": {\"qa-engineer\": {\"status\": \"pass\"}}}}";

static json_t *scope;

static void setup(void)
{
    weft_alloc_init();
    json_error_t jerr;
    scope = json_loads(scope_json, 0, &jerr);
    cr_assert_not_null(scope, "scope: %s", jerr.text);
}

static void teardown(void)
{
    json_decref(scope);
    weft_alloc_fail_reset();
}

TestSuite(expr, .init = setup, .fini = teardown);

/* The canonical description of src's value in scope s, or
 * "error:<code>@<column>: <message>". Returned in a static buffer. */
static const char *describe_in(const char *src, const json_t *s)
{
    static char out[4096];
    struct weft_error err;
    struct expr *e = NULL;
    struct buf b;
    weft_error_clear(&err);
    int rc = expr_parse(src, strlen(src), &e, &err);
    if (rc == 0) {
        buf_init(&b, sizeof(out) - 1);
        rc = expr_eval_describe(e, s, &b, &err);
        if (rc == 0)
            snprintf(out, sizeof(out), "%s", b.data);
        buf_deinit(&b);
        expr_free(e);
    }
    if (rc != 0)
        snprintf(out, sizeof(out), "error:%d@%d: %s", rc, err.column, err.msg);
    return out;
}

static const char *describe(const char *src)
{
    return describe_in(src, scope);
}

#define check(src, want) cr_assert_str_eq(describe(src), want, "%s", src)

/* Parses src expecting failure: code, column and a message fragment. */
static void parse_fails(const char *src, size_t len, int code, int column,
                        const char *msg)
{
    struct weft_error err;
    struct expr *e = (struct expr *)&err; /* must stay untouched */
    weft_error_clear(&err);
    int rc = expr_parse(src, len, &e, &err);
    cr_assert_eq(rc, code, "%s: rc %d (%s)", src, rc, err.msg);
    cr_assert_eq(err.code, code, "%s", src);
    cr_assert_eq(err.column, column, "%s: column %d (%s)", src, err.column,
                 err.msg);
    cr_assert_eq(err.line, 1);
    cr_assert_not_null(strstr(err.msg, msg), "%s: message '%s'", src, err.msg);
    cr_assert_eq(e, (struct expr *)&err, "%s: *out changed", src);
}

#define syntax_error(src, column, msg)                                         \
    parse_fails(src, strlen(src), WEFT_EINVAL, column, msg)

/* Evaluates src expecting failure with code, column and message. */
static void eval_fails(const char *src, int code, int column, const char *msg)
{
    struct weft_error err;
    struct expr *e = NULL;
    json_t *sentinel = json_true();
    json_t *out = sentinel;
    cr_assert_eq(expr_parse(src, strlen(src), &e, &err), 0, "%s: %s", src,
                 err.msg);
    weft_error_clear(&err);
    int rc = expr_eval(e, scope, &out, &err);
    cr_assert_eq(rc, code, "%s: rc %d (%s)", src, rc, err.msg);
    cr_assert_eq(err.code, code);
    cr_assert_eq(out, sentinel, "%s: *out changed", src);
    cr_assert_eq(err.column, column, "%s: column %d", src, err.column);
    cr_assert_str_eq(err.msg, msg, "%s", src);
    expr_free(e);
}

static bool truth_of(const char *src)
{
    struct weft_error err;
    struct expr *e = NULL;
    bool t = false;
    cr_assert_eq(expr_parse(src, strlen(src), &e, &err), 0, "%s: %s", src,
                 err.msg);
    cr_assert_eq(expr_eval_bool(e, scope, &t, &err), 0, "%s: %s", src, err.msg);
    expr_free(e);
    return t;
}

/* ---- The seed's conditions ---- */

Test(expr, seed_condition_state_get_is_truthy_when_planning_result_set)
{
    check("context.state.get('planning_result')", "object:{\"approved\":true}");
    cr_assert(truth_of("context.state.get('planning_result')"));
    cr_assert_not(truth_of("context.state.get('planning_missing')"));
}

Test(expr, seed_condition_qa_status_pass)
{
    cr_assert(truth_of("context.state.get('qa_status') === 'pass'"));
    cr_assert_not(truth_of("context.state.get('qa_status') === 'fail'"));
    cr_assert_not(truth_of("context.state.get('nope') === 'pass'"));
}

Test(expr, seed_conditions_on_task_type)
{
    cr_assert(truth_of("task.type === 'hotfix'"));
    cr_assert_not(truth_of("task.type !== 'hotfix'"));
    cr_assert_not(truth_of("task.type === 'feature'"));
    cr_assert(truth_of("task.type !== 'feature'"));
}

Test(expr, seed_conditions_against_a_scope_without_state_entries)
{
    json_t *s = json_pack("{s:{s:s}, s:{s:{}}}", "task", "type", "feature",
                          "context", "state");
    cr_assert_str_eq(
        describe_in("context.state.get('qa_status') === 'pass'", s),
        "boolean:false");
    cr_assert_str_eq(describe_in("context.state.get('planning_result')", s),
                     "undefined");
    cr_assert_str_eq(describe_in("task.type !== 'hotfix'", s), "boolean:true");
    json_decref(s);
}

/* ---- Literals and numbers ---- */

Test(expr, parses_number_literals_as_js_does)
{
    check("0", "number:0");
    check("1.5", "number:1.5");
    check(".5", "number:0.5");
    check("5.", "number:5");
    check("1e3", "number:1000");
    check("1E-7", "number:1e-7");
    check("0x1F", "number:31");
    check("0o17", "number:15");
    check("0b101", "number:5");
    check("1_000_000", "number:1000000");
    check("1e400", "number:Infinity");
    check("0x1fffffffffffff1", "number:144115188075855860");
    check("0x20000000000003", "number:9007199254740996");
    check("NaN", "number:NaN");
    check("-Infinity", "number:-Infinity");
}

Test(expr, parses_string_literals_with_js_escapes)
{
    check("'it\\'s'", "string:\"it's\"");
    check("\"say \\\"hi\\\"\"", "string:\"say \\\"hi\\\"\"");
    check("'\\n\\t\\r\\b\\f\\v'", "string:\"\\n\\t\\r\\b\\f\\u000b\"");
    check("'\\x41\\u0042\\u{43}'", "string:\"ABC\"");
    check("'\\uD83D\\uDE00'.length", "number:2");
    check("'\\u{1F600}' === '\\uD83D\\uDE00'", "boolean:true");
    check("'\\0'", "string:\"\\u0000\"");
    check("'\\q\\/'", "string:\"q/\"");
    check("'caf\xc3\xa9'", "string:\"caf\xc3\xa9\"");
    check("'a\\\nb'", "string:\"ab\"");
    check("'a\\\r\nb'", "string:\"ab\"");
}

Test(expr, literal_words_are_values)
{
    check("true", "boolean:true");
    check("false", "boolean:false");
    check("null", "null");
    check("undefined", "undefined");
    check("[1, 'a', true, null, [2]]", "array:[1,\"a\",true,null,[2]]");
    check("[1, 'a', ]", "array:[1,\"a\"]");
    check("[]", "array:[]");
}

Test(expr, array_literal_stores_undefined_and_nan_as_null)
{
    check("[undefined, NaN, 1/0]", "array:[null,null,null]");
    check("[NaN].includes(NaN)", "boolean:false");
}

Test(expr, formats_numbers_as_number_to_string)
{
    static const struct {
        double d;
        const char *s;
    } cases[] = {
        {0.0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-1.5, "-1.5"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3, "0.3333333333333333"},
        {1e21, "1e+21"},
        {1e20, "100000000000000000000"},
        {123456789012345680000.0, "123456789012345680000"},
        {1e-6, "0.000001"},
        {1e-7, "1e-7"},
        {1.5e-7, "1.5e-7"},
        {-1.25e-10, "-1.25e-10"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {5e-324, "5e-324"},
        {4.35, "4.35"},
        {1.23e25, "1.23e+25"},
        {9007199254740993.0, "9007199254740992"},
        {NAN, "NaN"},
        {INFINITY, "Infinity"},
        {-INFINITY, "-Infinity"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = expr_format_number(cases[i].d, buf, sizeof(buf));
        cr_assert_str_eq(buf, cases[i].s);
        cr_assert_eq(n, strlen(cases[i].s));
    }
    /* A short buffer is filled and terminated, never overrun. */
    cr_assert_eq(expr_format_number(1.5e-7, buf, 4), 3);
    cr_assert_str_eq(buf, "1.5");
}

Test(expr, number_to_json_keeps_integers_and_nulls_non_finite)
{
    json_t *j = expr_number_to_json(1800);
    cr_assert(json_is_integer(j));
    cr_assert_eq(json_integer_value(j), 1800);
    json_decref(j);
    j = expr_number_to_json(1.5);
    cr_assert(json_is_real(j));
    json_decref(j);
    j = expr_number_to_json(9007199254740992.0); /* 2^53: a real */
    cr_assert(json_is_real(j));
    json_decref(j);
    j = expr_number_to_json(NAN);
    cr_assert(json_is_null(j));
    j = expr_number_to_json(-INFINITY);
    cr_assert(json_is_null(j));
}

Test(expr, string_to_number_follows_js)
{
    static const struct {
        const char *s;
        double d;
    } cases[] = {
        {"", 0},
        {"  12  ", 12},
        {"\xc2\xa0 8 \xe2\x80\xa8", 8},
        {"\xef\xbb\xbf"
         "9",
         9},
        {"1e3", 1000},
        {".5", 0.5},
        {"5.", 5},
        {"+5", 5},
        {"-5", -5},
        {"0x10", 16},
        {"0X1f", 31},
        {"0b101", 5},
        {"0o17", 15},
        {"Infinity", INFINITY},
        {"-Infinity", -INFINITY},
        {"00012", 12},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double d = expr_string_to_number(cases[i].s, strlen(cases[i].s));
        cr_assert(d == cases[i].d, "%s -> %g", cases[i].s, d);
    }
    static const char *const nans[] = {
        "-0x10", "0x", "0b2", "infinity", "inf",   "nan", "1_000",
        "12px",  "1e", "e5",  ".",        "1.2.3", "- 5", "0x1g",
    };
    for (size_t i = 0; i < sizeof(nans) / sizeof(nans[0]); i++)
        cr_assert(isnan(expr_string_to_number(nans[i], strlen(nans[i]))), "%s",
                  nans[i]);
}

/* ---- Operators ---- */

Test(expr, arithmetic_uses_to_number_and_ieee_doubles)
{
    check("1 + 2 * 3", "number:7");
    check("(1 + 2) * 3", "number:9");
    check("10 - 4 - 3", "number:3");
    check("-7 % 3", "number:-1");
    check("5.5 % 2", "number:1.5");
    check("1 % 0", "number:NaN");
    check("1 / 0", "number:Infinity");
    check("1 / -0", "number:-Infinity");
    check("'3' * '4'", "number:12");
    check("'a' - 1", "number:NaN");
    check("null + 1", "number:1");
    check("undefined + 1", "number:NaN");
    check("true + true", "number:2");
    check("[5] * 2", "number:10");
    check("[1, 2] * 2", "number:NaN");
    check("task * 1", "number:NaN");
    check("-task.count", "number:-3");
    check("+'  12  '", "number:12");
    check("+[]", "number:0");
}

Test(expr, plus_concatenates_when_either_primitive_is_a_string)
{
    check("'a' + 1", "string:\"a1\"");
    check("1 + '3'", "string:\"13\"");
    check("null + 'x'", "string:\"nullx\"");
    check("undefined + 'x'", "string:\"undefinedx\"");
    check("[] + []", "string:\"\"");
    check("[1, 2] + 1", "string:\"1,21\"");
    check("[1, [2, 3], null] + ''", "string:\"1,2,3,\"");
    check("task + ''", "string:\"[object Object]\"");
    check("0.1 + 0.2 + ''", "string:\"0.30000000000000004\"");
    check("1e21 + ''", "string:\"1e+21\"");
    check("variables.branch_prefix + task.slug", "string:\"feat/fix-login\"");
}

Test(expr, strict_equality_compares_arrays_by_identity)
{
    check("task.tags === task.tags", "boolean:true");
    check("[1] === [1]", "boolean:false");
    check("task === task", "boolean:true");
    check("context.state.get('planning_result') === "
          "context.state.planning_result",
          "boolean:true");
    check("NaN === NaN", "boolean:false");
    check("NaN !== NaN", "boolean:true");
    check("-0 === 0", "boolean:true");
    check("1 === '1'", "boolean:false");
    check("null === undefined", "boolean:false");
}

Test(expr, abstract_equality_follows_is_loosely_equal)
{
    check("1 == '1'", "boolean:true");
    check("0 == ''", "boolean:true");
    check("'' == '0'", "boolean:false");
    check("null == undefined", "boolean:true");
    check("null == 0", "boolean:false");
    check("undefined == false", "boolean:false");
    check("false == '0'", "boolean:true");
    check("true == 2", "boolean:false");
    check("[] == false", "boolean:true");
    check("[1, 2] == '1,2'", "boolean:true");
    check("[1] == 1", "boolean:true");
    check("task == '[object Object]'", "boolean:true");
    check("[] == []", "boolean:false");
    check("task.nothing == null", "boolean:true");
    check("1 != '1'", "boolean:false");
}

Test(expr, relational_compares_strings_in_utf16_order)
{
    check("'a' < 'b'", "boolean:true");
    check("'B' < 'a'", "boolean:true");
    check("'a' < 'aa'", "boolean:true");
    check("'10' < '9'", "boolean:true");
    check("'10' < 9", "boolean:false");
    check("'x' < 1", "boolean:false");
    check("NaN >= NaN", "boolean:false");
    check("null >= 0", "boolean:true");
    check("undefined >= 0", "boolean:false");
    /* U+1F600 is D83D DE00 in UTF-16: below U+E000..U+FFFF, unlike in
     * code point (and UTF-8 byte) order. */
    check("'\\u{1F600}' < '\\uffff'", "boolean:true");
    check("task.emoji < task.pua", "boolean:true");
    check("task.pua > task.emoji", "boolean:true");
    check("'\\u{1F600}' < '\\u{1F601}'", "boolean:true");
    check("'a\\u0000' > 'a'", "boolean:true");
    cr_assert_lt(expr_string_compare("\xf0\x9f\x98\x80", 4, "\xee\x80\x80", 3),
                 0);
    cr_assert_eq(expr_string_compare("abc", 3, "abc", 3), 0);
}

Test(expr, logical_operators_return_operands_and_short_circuit)
{
    check("1 && 2", "number:2");
    check("0 && nope", "number:0");
    check("'' || 'x'", "string:\"x\"");
    check("1 || nope", "number:1");
    check("null ?? 5", "number:5");
    check("0 ?? 5", "number:0");
    check("task.zero || 10", "number:10");
    check("task.zero ?? 10", "number:0");
    check("task ?? nope", "object:{\"type\":\"hotfix\",\"slug\":\"fix-login\","
                          "\"project\":\"weft\",\"count\":3,\"ratio\":0.25,"
                          "\"zero\":0,\"empty\":\"\",\"nothing\":null,"
                          "\"flag\":true,\"tags\":[\"backend\",\"urgent\"],"
                          "\"nums\":[1,2,0],\"emoji\":\"x\xf0\x9f\x98\x80y\","
                          "\"pua\":\"\xee\x80\x80\",\"big\":"
                          "4611686018427388000,\"get\":5}");
    check("!0", "boolean:true");
    check("!!task.empty", "boolean:false");
    check("true ? 1 : nope", "number:1");
    check("task.flag ? 'yes' : task.count > 2 ? 'many' : 'few'",
          "string:\"yes\"");
    check("null ?? (1 || 2)", "number:1");
    check("a?.5:1", "error:-5@1: a is not defined");
    check("task.flag?.5:1", "number:0.5");
}

Test(expr, truthiness_follows_js)
{
    json_t *v = json_string("");
    cr_assert_not(expr_truthy(NULL));
    cr_assert_not(expr_truthy(json_null()));
    cr_assert_not(expr_truthy(v));
    json_decref(v);
    v = json_real(NAN);
    cr_assert_null(v); /* jansson has no NaN: nothing to test */
    v = json_integer(0);
    cr_assert_not(expr_truthy(v));
    json_decref(v);
    v = json_array();
    cr_assert(expr_truthy(v));
    json_decref(v);
    v = json_string("0");
    cr_assert(expr_truthy(v));
    json_decref(v);
    cr_assert(expr_truthy(json_true()));
}

/* ---- Members, optional chaining, methods ---- */

Test(expr, member_access_reads_objects_arrays_and_lengths)
{
    check("task.type", "string:\"hotfix\"");
    check("task['type']", "string:\"hotfix\"");
    check("task['ty' + 'pe']", "string:\"hotfix\"");
    check("steps['plan-evaluation'].result.summary", "string:\"ok\"");
    check("task.tags[1]", "string:\"urgent\"");
    check("task.tags['1']", "string:\"urgent\"");
    check("task.tags[1.0]", "string:\"urgent\"");
    check("task.tags[1.5]", "undefined");
    check("task.tags['01']", "undefined");
    check("task.tags[-1]", "undefined");
    check("task.tags[2]", "undefined");
    check("task.tags.length", "number:2");
    check("task.emoji.length", "number:4");
    check("task.type[0]", "string:\"h\"");
    check("task.type[9]", "undefined");
    check("task.count.length", "undefined");
    check("task.flag.x", "undefined");
    check("task[task.tags[0]]", "undefined");
    check("task.nope", "undefined");
    check("context.state.qa_status", "string:\"pass\"");
}

Test(expr, string_index_into_a_surrogate_pair_gives_replacement_char)
{
    check("task.emoji[1]", "string:\"\xef\xbf\xbd\"");
    check("task.emoji[2]", "string:\"\xef\xbf\xbd\"");
    check("task.emoji[3]", "string:\"y\"");
}

Test(expr, number_read_from_scope_keeps_its_json_type)
{
    struct weft_error err;
    struct expr *e = NULL;
    json_t *out = NULL;
    cr_assert_eq(expr_parse("task.big", 8, &e, &err), 0);
    cr_assert_eq(expr_eval(e, scope, &out, &err), 0);
    cr_assert(json_is_integer(out));
    cr_assert_eq(json_integer_value(out), 4611686018427387904LL);
    json_decref(out);
    expr_free(e);
    cr_assert_eq(expr_parse("-task.count", 11, &e, &err), 0);
    cr_assert_eq(expr_eval(e, scope, &out, &err), 0);
    cr_assert(json_is_integer(out));
    cr_assert_eq(json_integer_value(out), -3);
    json_decref(out);
    expr_free(e);
}

Test(expr, eval_maps_undefined_to_null_pointer_and_nan_to_json_null)
{
    struct weft_error err;
    struct expr *e = NULL;
    json_t *out = json_true();
    cr_assert_eq(expr_parse("task.nope", 9, &e, &err), 0);
    cr_assert_eq(expr_eval(e, scope, &out, &err), 0);
    cr_assert_null(out);
    expr_free(e);
    cr_assert_eq(expr_parse("0/0", 3, &e, &err), 0);
    cr_assert_eq(expr_eval(e, scope, &out, &err), 0);
    cr_assert(json_is_null(out));
    expr_free(e);
    cr_assert_eq(expr_parse("1.5", 3, &e, &err), 0);
    cr_assert_eq(expr_eval(e, scope, &out, &err), 0);
    cr_assert(json_is_real(out));
    json_decref(out);
    expr_free(e);
}

Test(expr, optional_chaining_short_circuits_the_whole_chain)
{
    check("task.nope?.x", "undefined");
    check("task.nothing?.x", "undefined");
    check("task.nope?.x.y.z", "undefined");
    check("task.nope?.[nope]", "undefined");
    check("task.nope?.includes(nope)", "undefined");
    check("task?.type", "string:\"hotfix\"");
    check("task.tags?.[1]", "string:\"urgent\"");
    check("context.state.get('nope')?.x", "undefined");
    check("(task.nope?.x).y",
          "error:-6@16: cannot read property 'y' of undefined");
    check("nope?.x", "error:-5@1: nope is not defined");
}

Test(expr, reading_a_property_of_undefined_is_a_type_error)
{
    eval_fails("task.nope.x", WEFT_ETYPE, 11,
               "cannot read property 'x' of undefined");
    eval_fails("task.nothing.x", WEFT_ETYPE, 14,
               "cannot read property 'x' of null");
    eval_fails("task.nope[1 + 1]", WEFT_ETYPE, 10,
               "cannot read property '2' of undefined");
    eval_fails("context.state.get('nope').x", WEFT_ETYPE, 27,
               "cannot read property 'x' of undefined");
    /* The key is evaluated first, as in JS. */
    eval_fails("task.nope[nope]", WEFT_ENOENT, 11, "nope is not defined");
}

Test(expr, unknown_identifier_is_a_reference_error)
{
    eval_fails("nope", WEFT_ENOENT, 1, "nope is not defined");
    eval_fails("task.count + missing_var", WEFT_ENOENT, 14,
               "missing_var is not defined");
    check("undefined", "undefined"); /* a literal, not a lookup */
}

Test(expr, empty_scope_makes_every_identifier_a_reference_error)
{
    cr_assert_str_eq(describe_in("task", NULL),
                     "error:-5@1: task is not defined");
    cr_assert_str_eq(describe_in("1 + 1", NULL), "number:2");
}

Test(expr, map_methods_get_and_has_read_own_string_keys)
{
    check("context.state.get('qa_status')", "string:\"pass\"");
    check("context.state.has('qa_status')", "boolean:true");
    check("context.state.has('nope')", "boolean:false");
    check("context.state.get(1)", "undefined");
    check("context.state.has()", "boolean:false");
    check("context.state['get']('qa_status')", "string:\"pass\"");
    check("context.personaResults.get('qa-engineer').status",
          "string:\"pass\"");
    /* Methods win over an own property of the same name. */
    check("task.get('type')", "string:\"hotfix\"");
    check("task.get", "number:5");
}

Test(expr, string_methods_follow_js_including_positions)
{
    check("task.type.includes('fix')", "boolean:true");
    check("task.type.includes('')", "boolean:true");
    check("task.type.includes()", "boolean:false");
    check("'undefined'.includes()", "boolean:true");
    check("task.type.includes('hot', 1)", "boolean:false");
    check("task.type.includes('fix', -5)", "boolean:true");
    check("task.type.includes('fix', '3')", "boolean:true");
    check("'abababc'.includes('ababc')", "boolean:true");
    check("'aaa'.includes('aaaa')", "boolean:false");
    check("task.type.startsWith('hot')", "boolean:true");
    check("task.type.startsWith('fix', 3)", "boolean:true");
    check("task.type.startsWith('t', 2.9)", "boolean:true");
    check("task.type.endsWith('fix')", "boolean:true");
    check("task.type.endsWith('hot', 3)", "boolean:true");
    check("task.type.endsWith('fix', undefined)", "boolean:true");
    check("task.type.endsWith('x', null)", "boolean:false");
    check("task.emoji.startsWith('y', 3)", "boolean:true");
    check("task.emoji.startsWith('y', 2)", "boolean:false");
    check("task.emoji.endsWith('x', 1)", "boolean:true");
    check("task.emoji.endsWith('x\\u{1F600}', 3)", "boolean:true");
    check("task.emoji.endsWith('\\u{1F600}', 2)", "boolean:false");
    check("task.emoji.includes('y', 2)", "boolean:true");
    check("'1,2'.startsWith([1, 2])", "boolean:true");
}

Test(expr, array_includes_uses_same_value_zero)
{
    check("task.tags.includes('urgent')", "boolean:true");
    check("task.nums.includes('2')", "boolean:false");
    check("task.nums.includes(-0)", "boolean:true");
    check("task.nums.includes(1, 1)", "boolean:false");
    check("task.nums.includes(0, -1)", "boolean:true");
    check("task.nums.includes(1, -100)", "boolean:true");
    check("task.tags.includes('backend', Infinity)", "boolean:false");
    check("[1, 'a'].includes('a')", "boolean:true");
    check("[[1]].includes([1])", "boolean:false");
}

Test(expr, calling_a_missing_method_is_a_type_error)
{
    eval_fails("task.type.foo()", WEFT_ETYPE, 14,
               "task.type.foo is not a function");
    eval_fails("task.tags.startsWith('a')", WEFT_ETYPE, 21,
               "task.tags.startsWith is not a function");
    eval_fails("task.count.includes(1)", WEFT_ETYPE, 20,
               "task.count.includes is not a function");
    eval_fails("task()", WEFT_ETYPE, 5, "task is not a function");
    eval_fails("(task.get)('type')", WEFT_ETYPE, 11,
               "(task.get) is not a function");
    eval_fails("task.nope.includes('x')", WEFT_ETYPE, 11,
               "cannot read property 'includes' of undefined");
    /* Arguments are evaluated before the callee is checked. */
    eval_fails("task.type.foo(nope)", WEFT_ENOENT, 15, "nope is not defined");
}

/* ---- Parse errors ---- */

Test(expr, rejects_unsupported_syntax_with_precise_messages)
{
    syntax_error("a = 1", 3, "assignment is not supported");
    syntax_error("a += 1", 3, "assignment is not supported");
    syntax_error("a ?\?= 1", 3, "assignment is not supported");
    syntax_error("a++", 2, "increment and decrement");
    syntax_error("--a", 1, "increment and decrement");
    syntax_error("x => 1", 3, "arrow functions are not supported");
    syntax_error("function f() {}", 1, "'function' is not supported");
    syntax_error("new Map()", 1, "'new' is not supported");
    syntax_error("typeof x", 1, "'typeof' is not supported");
    syntax_error("this.x", 1, "'this' is not supported");
    syntax_error("`a${b}`", 1, "template literals are not supported");
    syntax_error("/ab+c/.test(x)", 1, "regular expression literals");
    syntax_error("1, 2", 2, "the comma operator is not supported");
    syntax_error("(1, 2)", 3, "the comma operator is not supported");
    syntax_error("2 ** 3", 3, "exponentiation");
    syntax_error("a & b", 3, "bitwise operators are not supported");
    syntax_error("~a", 1, "bitwise operators are not supported");
    syntax_error("a << 1", 3, "bitwise shift");
    syntax_error("'a' in task", 5, "the 'in' operator is not supported");
    syntax_error("task instanceof Map", 6, "'instanceof' operator");
    syntax_error("{a: 1}", 1, "object literals");
    syntax_error("[...a]", 2, "spread syntax is not supported");
    syntax_error("a?.()", 2, "optional calls");
    syntax_error("1; 2", 2, "unexpected token ';'");
    syntax_error("a // note", 3, "comments are not supported");
    syntax_error("1n", 1, "BigInt literals are not supported");
    syntax_error("01", 1, "leading zero");
    syntax_error("#x", 1, "private names");
}

Test(expr, reports_syntax_errors_with_columns)
{
    syntax_error("(1 + 2", 7, "expected ')'");
    syntax_error("1 + 2)", 6, "unexpected token ')'");
    syntax_error("()", 2, "unexpected token ')'");
    syntax_error("1 +", 4, "unexpected end of expression");
    syntax_error("", 1, "unexpected end of expression");
    syntax_error("   ", 4, "unexpected end of expression");
    syntax_error("* 1", 1, "unexpected token '*'");
    syntax_error("1 2", 3, "unexpected number '2'");
    syntax_error("a b", 3, "unexpected identifier 'b'");
    syntax_error("'a' 'b'", 5, "unexpected string 'b'");
    syntax_error("task[1", 7, "expected ']'");
    syntax_error("[1 2]", 4, "expected ']' or ','");
    syntax_error("[,1]", 2, "array holes");
    syntax_error("f(1 2)", 5, "expected ')' or ','");
    syntax_error("1 ? 2", 6, "expected ':'");
    syntax_error("task.", 6, "expected a property name after '.'");
    syntax_error("task.1", 5, "unexpected number '.1'");
    syntax_error("task?.", 7, "expected a property name after '?.'");
    syntax_error("1 ?? 2 || 3", 8, "'?\?' cannot be mixed");
    syntax_error("1 || 2 ?? 3", 8, "'?\?' cannot be mixed");
    syntax_error("1 && 2 ?? 3", 8, "'?\?' cannot be mixed");
    syntax_error("a @ b", 3, "unexpected character '@'");
    syntax_error("a \xc2\xb5", 3, "unexpected character (byte 0xc2)");
    syntax_error("3in", 2, "directly after a number");
    syntax_error("1__0", 2, "invalid numeric separator");
    syntax_error("1_", 2, "invalid numeric separator");
    syntax_error("0x", 1, "missing digits");
    syntax_error("1e+", 1, "missing exponent");
    syntax_error("0b12", 4, "directly after a number");
}

Test(expr, reports_string_literal_errors)
{
    syntax_error("'abc", 1, "unterminated string");
    syntax_error("x + \"abc", 5, "unterminated string");
    syntax_error("'a\nb'", 1, "unterminated string");
    syntax_error("'a\\", 1, "unterminated string");
    syntax_error("'\\x4'", 2, "invalid hexadecimal escape");
    syntax_error("'\\u12'", 2, "invalid Unicode escape");
    syntax_error("'\\u{110000}'", 2, "invalid Unicode escape");
    syntax_error("'\\u{}'", 2, "invalid Unicode escape");
    syntax_error("'\\1'", 2, "octal escape");
    syntax_error("'\\01'", 2, "octal escape");
    syntax_error("'\\uD800'", 2, "lone surrogate");
    syntax_error("'\\uDE00'", 2, "lone surrogate");
}

Test(expr, rejects_invalid_utf8_with_its_column)
{
    parse_fails("'ab\xff'", 5, WEFT_EINVAL, 4, "invalid UTF-8");
    parse_fails("'\xed\xa0\x80'", 5, WEFT_EINVAL, 2, "invalid UTF-8");
    parse_fails("'\xc0\xaf'", 4, WEFT_EINVAL, 2, "invalid UTF-8");
}

Test(expr, parses_embedded_nul_as_an_unexpected_character)
{
    parse_fails("1 \0", 3, WEFT_EINVAL, 3, "unexpected character");
}

Test(expr, accepts_js_whitespace_between_tokens)
{
    check("\t1 +\n2 ", "number:3");
    check("\xc2\xa0"
          "1\xe2\x80\xa8+\xef\xbb\xbf"
          "2",
          "number:3");
}

Test(expr, keeps_its_source)
{
    struct weft_error err;
    struct expr *e = NULL;
    cr_assert_eq(expr_parse("task.type  ", 9, &e, &err), 0);
    cr_assert_str_eq(expr_source(e), "task.type");
    expr_free(e);
    expr_free(NULL);
}

/* ---- Roots ---- */

struct roots {
    char names[8][32];
    int columns[8];
    int count;
    int stop_after;
};

static int collect_root(void *ud, const char *name, size_t len, int column)
{
    struct roots *r = ud;
    snprintf(r->names[r->count], sizeof(r->names[0]), "%.*s", (int)len, name);
    r->columns[r->count] = column;
    r->count++;
    return r->count == r->stop_after ? 42 : 0;
}

Test(expr, foreach_root_reports_each_root_identifier_with_its_column)
{
    struct weft_error err;
    struct expr *e = NULL;
    struct roots r = {.stop_after = 0};
    const char *src = "context.state.get(tsak.id) === (steps?.x ?? [vars])";
    cr_assert_eq(expr_parse(src, strlen(src), &e, &err), 0);
    cr_assert_eq(expr_foreach_root(e, collect_root, &r), 0);
    cr_assert_eq(r.count, 4);
    cr_assert_str_eq(r.names[0], "context");
    cr_assert_eq(r.columns[0], 1);
    cr_assert_str_eq(r.names[1], "tsak");
    cr_assert_eq(r.columns[1], 19);
    cr_assert_str_eq(r.names[2], "steps");
    cr_assert_eq(r.columns[2], 33);
    cr_assert_str_eq(r.names[3], "vars");
    cr_assert_eq(r.columns[3], 46);
    struct roots r2 = {.stop_after = 2};
    cr_assert_eq(expr_foreach_root(e, collect_root, &r2), 42);
    cr_assert_eq(r2.count, 2);
    expr_free(e);
}

Test(expr, foreach_root_reports_nothing_for_literals)
{
    struct weft_error err;
    struct expr *e = NULL;
    struct roots r = {.stop_after = 0};
    cr_assert_eq(expr_parse("true && 'x'.length > 0", 22, &e, &err), 0);
    cr_assert_eq(expr_foreach_root(e, collect_root, &r), 0);
    cr_assert_eq(r.count, 0);
    expr_free(e);
}

/* ---- Display strings ---- */

Test(expr, display_string_follows_template_rendering_rules)
{
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"null", ""},
        {"\"a\\u0001\"", "a\x01"},
        {"1800", "1800"},
        {"1.5e-7", "1.5e-7"},
        {"true", "true"},
        {"[1, \"a\", null, [0.1]]", "[1,\"a\",null,[0.1]]"},
        {"{\"a\": {\"b\": \"x\\\"\\n\\u001f/\"}}",
         "{\"a\":{\"b\":\"x\\\"\\n\\u001f/\"}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        char *s = (char *)"garbage";
        size_t n = 12345;
        cr_assert_not_null(v);
        cr_assert_eq(expr_to_display_string(v, &s, &n), 0);
        cr_assert_str_eq(s, cases[i].want);
        cr_assert_eq(n, strlen(cases[i].want));
        weft_free(s);
        json_decref(v);
    }
    char *s = NULL;
    size_t n = 1;
    cr_assert_eq(expr_to_display_string(NULL, &s, &n), 0);
    cr_assert_str_eq(s, "");
    cr_assert_eq(n, 0);
    weft_free(s);
}

Test(expr, display_string_of_a_too_large_value_is_a_limit_error)
{
    char *big = malloc(EXPR_MAX_STRING + 1);
    memset(big, 'x', EXPR_MAX_STRING + 1);
    json_t *v = json_stringn(big, EXPR_MAX_STRING);
    char *s = NULL;
    size_t n = 0;
    cr_assert_eq(expr_to_display_string(v, &s, &n), 0);
    cr_assert_eq(n, EXPR_MAX_STRING);
    weft_free(s);
    json_decref(v);
    v = json_stringn(big, EXPR_MAX_STRING + 1);
    s = NULL;
    cr_assert_eq(expr_to_display_string(v, &s, &n), WEFT_ELIMIT);
    cr_assert_null(s);
    json_decref(v);
    free(big);
}

/* ---- Limits ---- */

Test(expr, source_length_limit_at_boundary_and_one_past)
{
    char *src = malloc(EXPR_MAX_SOURCE + 2);
    struct weft_error err;
    struct expr *e = NULL;
    memset(src, ' ', EXPR_MAX_SOURCE + 1);
    src[0] = '1';
    cr_assert_eq(expr_parse(src, EXPR_MAX_SOURCE, &e, &err), 0);
    expr_free(e);
    e = NULL;
    cr_assert_eq(expr_parse(src, EXPR_MAX_SOURCE + 1, &e, &err), WEFT_ELIMIT);
    cr_assert_eq(err.column, EXPR_MAX_SOURCE + 1);
    cr_assert_null(e);
    free(src);
}

/* prefix repeated n times, then core, then suffix n times. */
static char *nest(const char *prefix, const char *core, const char *suffix,
                  int n)
{
    size_t len = (strlen(prefix) + strlen(suffix)) * (size_t)n + strlen(core);
    char *s = malloc(len + 1);
    s[0] = '\0';
    for (int i = 0; i < n; i++)
        strcat(s, prefix);
    strcat(s, core);
    for (int i = 0; i < n; i++)
        strcat(s, suffix);
    return s;
}

static int parse_rc(const char *src, int *column)
{
    struct weft_error err;
    struct expr *e = NULL;
    int rc = expr_parse(src, strlen(src), &e, &err);
    expr_free(e);
    if (rc != 0)
        *column = err.column;
    return rc;
}

Test(expr, depth_limit_at_boundary_and_one_past)
{
    /* Height of `(((1)))` with n parentheses is n + 1. */
    static const struct {
        const char *prefix, *core, *suffix;
    } shapes[] = {
        {"(", "1", ")"},   {"- ", "1", ""},    {"!", "1", ""},
        {"[", "1", "]"},   {"", "task", ".x"}, {"1 ? 1 : ", "1", ""},
        {"", "1", " + 1"}, {"a[", "1", "]"},   {"", "a", "?.x"},
        {"f(", "1", ")"},  {"", "a", "()"},    {"1 ?? ", "1", ""},
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        int col = 0;
        char *ok = nest(shapes[i].prefix, shapes[i].core, shapes[i].suffix,
                        EXPR_MAX_DEPTH - 1);
        char *over = nest(shapes[i].prefix, shapes[i].core, shapes[i].suffix,
                          EXPR_MAX_DEPTH);
        cr_assert_eq(parse_rc(ok, &col), 0, "%s: depth %d", shapes[i].prefix,
                     EXPR_MAX_DEPTH);
        cr_assert_eq(parse_rc(over, &col), WEFT_ELIMIT, "%s%s%s",
                     shapes[i].prefix, shapes[i].core, shapes[i].suffix);
        free(ok);
        free(over);
    }
}

Test(expr, depth_limit_stops_deep_nesting_early)
{
    int col = 0;
    char *deep = nest("(", "1", ")", 2000);
    cr_assert_eq(parse_rc(deep, &col), WEFT_ELIMIT);
    cr_assert_eq(col, EXPR_MAX_DEPTH + 1); /* the first '(' too many */
    free(deep);
}

Test(expr, string_limit_at_boundary_and_one_past)
{
    char *big = malloc(EXPR_MAX_STRING);
    memset(big, 'x', EXPR_MAX_STRING);
    json_t *s = json_pack("{s:s#}", "big", big, (int)(EXPR_MAX_STRING - 1));
    cr_assert_not_null(s);
    cr_assert_str_eq(describe_in("(big + 'a').length", s), "number:1048576");
    cr_assert_str_eq(describe_in("(big + 'ab').length", s),
                     "error:-3@6: string longer than 1048576 bytes");
    cr_assert_str_eq(describe_in("big.includes('xy')", s), "boolean:false");
    cr_assert_str_eq(describe_in("big.endsWith('xx')", s), "boolean:true");
    json_decref(s);
    free(big);
}

Test(expr, to_string_of_a_huge_array_is_a_limit_error)
{
    json_t *arr = json_array();
    char *chunk = malloc(1 << 16);
    memset(chunk, 'y', 1 << 16);
    for (int i = 0; i < 17; i++)
        json_array_append_new(arr, json_stringn(chunk, 1 << 16));
    json_t *s = json_pack("{s:o}", "arr", arr);
    cr_assert_str_eq(describe_in("arr == 'x'", s),
                     "error:-3@5: string longer than 1048576 bytes");
    cr_assert_str_eq(describe_in("arr.length", s), "number:17");
    json_decref(s);
    free(chunk);
}

Test(expr, evaluation_is_bounded_on_the_widest_tree)
{
    /* The longest source of the cheapest nodes: 2048 terms. */
    char *src = malloc(EXPR_MAX_SOURCE + 1);
    size_t n = 0;
    struct weft_error err;
    struct expr *e = NULL;
    src[n++] = '[';
    while (n + 2 < EXPR_MAX_SOURCE) {
        src[n++] = '1';
        src[n++] = ',';
    }
    src[n++] = ']';
    cr_assert_eq(expr_parse(src, n, &e, &err), 0, "%s", err.msg);
    bool t = false;
    cr_assert_eq(expr_eval_bool(e, scope, &t, &err), 0);
    cr_assert(t);
    expr_free(e);
    free(src);
}

/* ---- Allocation failures ---- */

static const char *const oom_sources[] = {
    "context.state.get('qa_status') === 'pass'",
    "variables.branch_prefix + task.slug + [1, 'a', [2]] + task.tags",
    "task.type.includes('fix', 1) && task.tags.includes('x') || "
    "task.emoji.endsWith('y')",
    "[1, task.ratio, task.big, 'x', null, undefined][4] ?? task.nums == "
    "'1,2,0'",
    "(task.nope?.x ?? task.type[1]) + 1e21 + -0 + task.count",
    "task.nope.x",
    "task.type.foo(1, 2, 3)",
    "nope",
    "'\\u{1F600}' < task.pua ? task['ty' + 'pe'] : task.tags[0]",
};

static void leak_check(void)
{
#ifdef EXPR_TEST_LSAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked");
#endif
}

Test(expr, allocation_failures_report_enomem_and_never_leak)
{
    for (size_t i = 0; i < sizeof(oom_sources) / sizeof(oom_sources[0]); i++) {
        const char *src = oom_sources[i];
        bool done = false;
        for (unsigned long n = 1; !done; n++) {
            struct weft_error err;
            struct expr *e = NULL;
            json_t *out = json_true();
            weft_alloc_fail_after(n);
            int rc = expr_parse(src, strlen(src), &e, &err);
            if (rc == 0) {
                rc = expr_eval(e, scope, &out, &err);
                if (rc == 0)
                    json_decref(out);
                else
                    cr_assert_eq(out, json_true());
                expr_free(e);
            } else {
                cr_assert_null(e);
            }
            weft_alloc_fail_reset();
            cr_assert(rc == 0 || rc == WEFT_ENOMEM || rc == WEFT_ETYPE ||
                          rc == WEFT_ENOENT,
                      "%s: n=%lu rc=%d", src, n, rc);
            if (rc != 0)
                cr_assert_eq(err.code, rc);
            done = rc != WEFT_ENOMEM;
            cr_assert_lt(n, 1000, "%s never succeeds", src);
        }
    }
    leak_check();
}

Test(expr, allocation_failures_in_display_and_describe_never_leak)
{
    json_t *v = json_pack("{s:[i,s,{s:f}]}", "a", 1, "x", "y", 0.5);
    for (unsigned long n = 1;; n++) {
        char *s = NULL;
        size_t len = 0;
        weft_alloc_fail_after(n);
        int rc = expr_to_display_string(v, &s, &len);
        weft_alloc_fail_reset();
        if (rc == 0) {
            cr_assert_str_eq(s, "{\"a\":[1,\"x\",{\"y\":0.5}]}");
            weft_free(s);
            break;
        }
        cr_assert_eq(rc, WEFT_ENOMEM);
        cr_assert_null(s);
    }
    json_decref(v);
    leak_check();
}
