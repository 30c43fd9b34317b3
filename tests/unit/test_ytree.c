/* test_ytree.c - the YAML tree: positions, typing, aliases, limits, JSON. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "diag.h"
#include "error.h"
#include "ytree.h"

static void setup(void)
{
    weft_alloc_init();
}

TestSuite(ytree, .init = setup);

/* Parses text; returns the code, the tree in *t and the first message. */
static int parse(const char *text, struct ytree **t, char *msg, size_t size)
{
    struct diag d;
    diag_init(&d, "t");
    *t = NULL;
    int rc = ytree_parse(text, strlen(text), &d, t);
    if (msg != NULL)
        snprintf(msg, size, "%s", d.count ? d.entries[0].message : "");
    if (rc == 0 && d.errors)
        rc = 1; /* recoverable problems reported */
    diag_deinit(&d);
    return rc;
}

static const struct ytree_node *parse_ok(const char *text, struct ytree **t)
{
    char msg[256];
    int rc = parse(text, t, msg, sizeof(msg));
    cr_assert_eq(rc, 0, "%s", msg);
    return ytree_root(*t);
}

/* Type of the scalar `text` written plain. */
static int plain_type(const char *text)
{
    char doc[128];
    struct ytree *t;
    snprintf(doc, sizeof(doc), "v: %s\n", text);
    const struct ytree_node *r = parse_ok(doc, &t);
    int type = ytree_map_get(r, "v")->type;
    ytree_free(t);
    return type;
}

/* A string of n copies of s. */
static char *repeat(const char *s, size_t n)
{
    size_t l = strlen(s);
    char *out = malloc(l * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * l, s, l);
    out[l * n] = '\0';
    return out;
}

Test(ytree, records_one_based_line_and_column)
{
    struct ytree *t;
    const struct ytree_node *r = parse_ok("a: 1\nsteps:\n  - id: x\n", &t);
    cr_assert_eq(r->kind, YTREE_MAPPING);
    cr_assert_eq(r->line, 1);
    cr_assert_eq(r->column, 1);
    const struct ytree_node *steps = ytree_map_get(r, "steps");
    const struct ytree_node *m = steps->u.items[0];
    cr_assert_eq(m->line, 3);
    cr_assert_eq(m->column, 5);
    const struct ytree_node *id = ytree_map_get(m, "id");
    cr_assert_eq(id->line, 3);
    cr_assert_eq(id->column, 9);
    cr_assert_str_eq(id->u.text, "x");
    ytree_free(t);
}

Test(ytree, empty_stream_has_no_root)
{
    struct ytree *t;
    cr_assert_eq(parse("", &t, NULL, 0), 0);
    cr_assert_null(ytree_root(t));
    ytree_free(t);
}

Test(ytree, empty_mapping_as_first_collection_is_valid)
{
    /* Found by fuzz_yaml: no child was ever pushed before `}`. */
    struct ytree *t;
    const struct ytree_node *r = parse_ok("{}\n", &t);
    cr_assert_eq(r->kind, YTREE_MAPPING);
    cr_assert_eq(r->len, 0);
    ytree_free(t);
}

Test(ytree, plain_null_forms_are_null)
{
    cr_assert_eq(plain_type("null"), YTREE_NULL);
    cr_assert_eq(plain_type("Null"), YTREE_NULL);
    cr_assert_eq(plain_type("NULL"), YTREE_NULL);
    cr_assert_eq(plain_type("~"), YTREE_NULL);
    cr_assert_eq(plain_type(""), YTREE_NULL);
}

Test(ytree, plain_booleans_follow_yaml_1_2)
{
    cr_assert_eq(plain_type("true"), YTREE_BOOL);
    cr_assert_eq(plain_type("False"), YTREE_BOOL);
    cr_assert_eq(plain_type("TRUE"), YTREE_BOOL);
    cr_assert_eq(plain_type("yes"), YTREE_STRING);
    cr_assert_eq(plain_type("on"), YTREE_STRING);
    cr_assert_eq(plain_type("tRUE"), YTREE_STRING);
}

Test(ytree, plain_integers_in_every_core_form)
{
    cr_assert_eq(plain_type("0"), YTREE_INT);
    cr_assert_eq(plain_type("-17"), YTREE_INT);
    cr_assert_eq(plain_type("+3"), YTREE_INT);
    cr_assert_eq(plain_type("0x1F"), YTREE_INT);
    cr_assert_eq(plain_type("0o17"), YTREE_INT);
    cr_assert_eq(plain_type("0x"), YTREE_STRING);
    cr_assert_eq(plain_type("0o8"), YTREE_STRING);
    cr_assert_eq(plain_type("1_000"), YTREE_STRING);
}

Test(ytree, integer_values_are_parsed)
{
    struct ytree *t;
    const struct ytree_node *r =
        parse_ok("[0x1F, 0o17, -9223372036854775808, 007]", &t);
    int64_t v;
    cr_assert_eq(ytree_get_int(r->u.items[0], &v), 0);
    cr_assert_eq(v, 31);
    cr_assert_eq(ytree_get_int(r->u.items[1], &v), 0);
    cr_assert_eq(v, 15);
    cr_assert_eq(ytree_get_int(r->u.items[2], &v), 0);
    cr_assert_eq(v, INT64_MIN);
    cr_assert_eq(ytree_get_int(r->u.items[3], &v), 0);
    cr_assert_eq(v, 7);
    ytree_free(t);
}

Test(ytree, plain_floats_in_every_core_form)
{
    cr_assert_eq(plain_type("1.5"), YTREE_FLOAT);
    cr_assert_eq(plain_type(".5"), YTREE_FLOAT);
    cr_assert_eq(plain_type("-2."), YTREE_FLOAT);
    cr_assert_eq(plain_type("1e3"), YTREE_FLOAT);
    cr_assert_eq(plain_type("6.02E+23"), YTREE_FLOAT);
    cr_assert_eq(plain_type("1.0.0"), YTREE_STRING);
    cr_assert_eq(plain_type("1e"), YTREE_STRING);
}

Test(ytree, quoted_scalars_are_strings)
{
    struct ytree *t;
    const struct ytree_node *r =
        parse_ok("a: \"12\"\nb: 'true'\nc: |\n  null\n", &t);
    cr_assert_eq(ytree_map_get(r, "a")->type, YTREE_STRING);
    cr_assert(ytree_map_get(r, "a")->quoted);
    cr_assert_eq(ytree_map_get(r, "b")->type, YTREE_STRING);
    cr_assert_eq(ytree_map_get(r, "c")->type, YTREE_STRING);
    cr_assert_eq(ytree_map_get(r, "c")->style, YTREE_LITERAL);
    ytree_free(t);
}

Test(ytree, str_tag_makes_a_string)
{
    struct ytree *t;
    const struct ytree_node *r = parse_ok("a: !!str 12\nb: ! 13\n", &t);
    cr_assert_eq(ytree_map_get(r, "a")->type, YTREE_STRING);
    cr_assert_eq(ytree_map_get(r, "b")->type, YTREE_STRING);
    ytree_free(t);
}

Test(ytree, reports_unsupported_tag)
{
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse("a: !custom 12\n", &t, msg, sizeof(msg)), 1);
    cr_assert_str_eq(msg, "unsupported YAML tag '!custom'");
    ytree_free(t);
}

Test(ytree, reports_int_tag_on_a_word)
{
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse("a: !!int abc\n", &t, msg, sizeof(msg)), 1);
    cr_assert_str_eq(msg, "unsupported YAML tag 'tag:yaml.org,2002:int'");
    ytree_free(t);
}

Test(ytree, int64_max_is_accepted)
{
    cr_assert_eq(plain_type("9223372036854775807"), YTREE_INT);
}

Test(ytree, rejects_integer_past_int64)
{
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse("a: 9223372036854775808\n", &t, msg, sizeof(msg)), 1);
    cr_assert_str_eq(msg, "number '9223372036854775808' cannot be "
                          "represented (quote it to make it a string)");
    ytree_free(t);
}

Test(ytree, rejects_infinity_and_nan)
{
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse("a: .inf\n", &t, msg, sizeof(msg)), 1);
    ytree_free(t);
    cr_assert_eq(parse("a: -.Inf\n", &t, msg, sizeof(msg)), 1);
    ytree_free(t);
    cr_assert_eq(parse("a: .nan\n", &t, msg, sizeof(msg)), 1);
    ytree_free(t);
    cr_assert_eq(parse("a: 1e999\n", &t, msg, sizeof(msg)), 1);
    ytree_free(t);
}

Test(ytree, alias_shares_the_anchored_node)
{
    struct ytree *t;
    const struct ytree_node *r =
        parse_ok("a: &x {k: v}\nb: *x\nc: &s word\nd: *s\n", &t);
    cr_assert_eq(ytree_map_get(r, "a"), ytree_map_get(r, "b"));
    cr_assert_str_eq(ytree_map_get(r, "d")->u.text, "word");
    ytree_free(t);
}

Test(ytree, redefined_anchor_names_the_latest_node)
{
    struct ytree *t;
    const struct ytree_node *r =
        parse_ok("a: &x one\nb: *x\nc: &x two\nd: *x\n", &t);
    cr_assert_str_eq(ytree_map_get(r, "b")->u.text, "one");
    cr_assert_str_eq(ytree_map_get(r, "d")->u.text, "two");
    ytree_free(t);
}

Test(ytree, rejects_unknown_alias)
{
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse("a: *nope\n", &t, msg, sizeof(msg)), WEFT_EINVAL);
    cr_assert_str_eq(msg, "unknown anchor '*nope'");
}

Test(ytree, rejects_alias_inside_its_own_anchor)
{
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse("a: &x [1, *x]\n", &t, msg, sizeof(msg)), WEFT_EINVAL);
    cr_assert_str_eq(msg, "alias '*x' refers to a node that contains it");
}

Test(ytree, rejects_alias_bomb)
{
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse(bomb, &t, msg, sizeof(msg)), WEFT_ELIMIT);
    cr_assert(strstr(msg, "alias bomb") != NULL, "%s", msg);
}

/* An anchor of 1024 nodes aliased `times` times, plus `extra` aliases of a
 * one-node anchor. */
static char *alias_doc(size_t times, size_t extra)
{
    struct buf b;
    buf_init(&b, 1u << 26);
    buf_append_str(&b, "s: &s x\na: &a [");
    for (int i = 0; i < 1023; i++)
        buf_append_str(&b, i ? ",x" : "x");
    buf_append_str(&b, "]\nb: [");
    for (size_t i = 0; i < times; i++)
        buf_append_str(&b, i ? ",*a" : "*a");
    for (size_t i = 0; i < extra; i++)
        buf_append_str(&b, ",*s");
    buf_append_str(&b, "]\n");
    size_t len;
    return buf_steal(&b, &len);
}

Test(ytree, alias_expansion_at_the_limit_is_accepted)
{
    /* 1024 aliases of 1024 nodes: exactly YTREE_MAX_ALIAS_NODES. */
    cr_assert_eq(YTREE_MAX_ALIAS_NODES, 1024u * 1024u);
    char *doc = alias_doc(1024, 0);
    struct ytree *t;
    cr_assert_eq(parse(doc, &t, NULL, 0), 0);
    ytree_free(t);
    free(doc);
}

Test(ytree, alias_expansion_one_past_the_limit_is_rejected)
{
    char *doc = alias_doc(1024, 1);
    struct ytree *t;
    cr_assert_eq(parse(doc, &t, NULL, 0), WEFT_ELIMIT);
    free(doc);
}

/* n nested flow sequences. */
static char *nested(size_t n)
{
    char *open = repeat("[", n), *close = repeat("]", n);
    char *doc = malloc(2 * n + 1);
    memcpy(doc, open, n);
    memcpy(doc + n, close, n + 1);
    free(open);
    free(close);
    return doc;
}

Test(ytree, nesting_at_the_limit_is_accepted)
{
    char *doc = nested(YTREE_MAX_DEPTH);
    struct ytree *t;
    cr_assert_eq(parse(doc, &t, NULL, 0), 0);
    ytree_free(t);
    free(doc);
}

Test(ytree, nesting_one_past_the_limit_is_rejected)
{
    char *doc = nested(YTREE_MAX_DEPTH + 1);
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse(doc, &t, msg, sizeof(msg)), WEFT_ELIMIT);
    cr_assert_str_eq(msg, "nesting deeper than 128 levels");
    free(doc);
}

Test(ytree, alias_cannot_nest_past_the_limit)
{
    /* An anchor 100 deep used 100 deep is 200 deep once expanded. */
    char *inner = nested(100);
    char *open = repeat("[", 100), *close = repeat("]", 100);
    size_t need = strlen(inner) + strlen(open) + strlen(close) + 64;
    char *doc = malloc(need);
    snprintf(doc, need, "a: &a %s\nb: %s*a%s\n", inner, open, close);
    struct ytree *t;
    cr_assert_eq(parse(doc, &t, NULL, 0), WEFT_ELIMIT);
    free(inner);
    free(open);
    free(close);
    free(doc);
}

static char *long_scalar_doc(size_t n)
{
    char *x = repeat("x", n);
    char *doc = malloc(n + 8);
    snprintf(doc, n + 8, "a: %s\n", x);
    free(x);
    return doc;
}

Test(ytree, scalar_at_the_limit_is_accepted)
{
    char *doc = long_scalar_doc(YTREE_MAX_SCALAR);
    struct ytree *t;
    cr_assert_eq(parse(doc, &t, NULL, 0), 0);
    cr_assert_eq(ytree_map_get(ytree_root(t), "a")->len, YTREE_MAX_SCALAR);
    ytree_free(t);
    free(doc);
}

Test(ytree, scalar_one_past_the_limit_is_rejected)
{
    char *doc = long_scalar_doc(YTREE_MAX_SCALAR + 1);
    struct ytree *t;
    cr_assert_eq(parse(doc, &t, NULL, 0), WEFT_ELIMIT);
    free(doc);
}

/* A flow sequence holding n - 1 scalars: n nodes. */
static char *nodes_doc(size_t n)
{
    char *items = repeat("x,", n - 1);
    size_t len = strlen(items);
    char *doc = malloc(len + 4);
    doc[0] = '[';
    memcpy(doc + 1, items, len);
    memcpy(doc + len, "]\n", 3); /* overwrites the last ',' */
    free(items);
    return doc;
}

Test(ytree, node_count_at_the_limit_is_accepted, .timeout = 120)
{
    char *doc = nodes_doc(YTREE_MAX_NODES);
    struct ytree *t;
    cr_assert_eq(parse(doc, &t, NULL, 0), 0);
    cr_assert_eq(ytree_root(t)->len, YTREE_MAX_NODES - 1);
    ytree_free(t);
    free(doc);
}

Test(ytree, node_count_one_past_the_limit_is_rejected, .timeout = 120)
{
    char *doc = nodes_doc(YTREE_MAX_NODES + 1);
    struct ytree *t;
    cr_assert_eq(parse(doc, &t, NULL, 0), WEFT_ELIMIT);
    free(doc);
}

Test(ytree, input_at_the_size_limit_is_read, .timeout = 120)
{
    /* A comment filling the limit, then a one-line document. */
    size_t n = YTREE_MAX_INPUT;
    char *doc = malloc(n + 1);
    const char *tail = "\na: 1\n";
    doc[0] = '#';
    memset(doc + 1, 'c', n - 1 - strlen(tail));
    memcpy(doc + n - strlen(tail), tail, strlen(tail) + 1);
    struct diag d;
    struct ytree *t = NULL;
    diag_init(&d, "t");
    cr_assert_eq(ytree_parse(doc, n, &d, &t), 0);
    cr_assert_eq(ytree_root(t)->kind, YTREE_MAPPING);
    ytree_free(t);
    diag_deinit(&d);
    free(doc);
}

Test(ytree, input_one_past_the_size_limit_is_refused)
{
    struct diag d;
    struct ytree *t = NULL;
    diag_init(&d, "t");
    /* Refused on its length alone: the bytes are never read. */
    cr_assert_eq(ytree_parse("", (size_t)YTREE_MAX_INPUT + 1, &d, &t),
                 WEFT_ELIMIT);
    cr_assert_null(t);
    cr_assert_str_eq(d.entries[0].message,
                     "file is 67108865 bytes; the limit is 67108864 bytes "
                     "(64 MiB)");
    diag_deinit(&d);
}

Test(ytree, reports_duplicate_key_and_keeps_the_first)
{
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse("a: 1\nb: 2\na: 3\n", &t, msg, sizeof(msg)), 1);
    cr_assert_str_eq(msg, "duplicate key 'a' (first at 1:1)");
    const struct ytree_node *r = ytree_root(t);
    cr_assert_eq(r->len, 2);
    cr_assert_str_eq(ytree_map_get(r, "a")->u.text, "1");
    ytree_free(t);
}

Test(ytree, reports_duplicate_key_in_a_large_mapping)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < 100; i++)
        buf_printf(&b, "k%d: %d\n", i, i);
    buf_append_str(&b, "k42: again\n");
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse(b.data, &t, msg, sizeof(msg)), 1);
    cr_assert_str_eq(msg, "duplicate key 'k42' (first at 43:1)");
    cr_assert_eq(ytree_root(t)->len, 100);
    ytree_free(t);
    buf_deinit(&b);
}

Test(ytree, keys_compare_by_text_like_json)
{
    struct ytree *t;
    cr_assert_eq(parse("1: a\n\"1\": b\n", &t, NULL, 0), 1);
    ytree_free(t);
}

Test(ytree, rejects_collection_as_key)
{
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse("? [a]\n: b\n", &t, msg, sizeof(msg)), WEFT_EINVAL);
    cr_assert_str_eq(msg, "mapping keys must be scalars, not collections");
}

Test(ytree, rejects_second_document)
{
    struct ytree *t;
    char msg[256];
    cr_assert_eq(parse("a: 1\n---\nb: 2\n", &t, msg, sizeof(msg)), WEFT_EINVAL);
    cr_assert_str_eq(msg,
                     "a second YAML document; a workflow file holds exactly "
                     "one");
}

Test(ytree, accepts_one_explicit_document)
{
    struct ytree *t;
    const struct ytree_node *r = parse_ok("---\na: 1\n...\n", &t);
    cr_assert_eq(r->kind, YTREE_MAPPING);
    ytree_free(t);
}

Test(ytree, reports_syntax_error_with_position_and_context)
{
    struct diag d;
    struct ytree *t = NULL;
    const char *text = "a:\n  - x\n  b: y\n";
    diag_init(&d, "t");
    cr_assert_eq(ytree_parse(text, strlen(text), &d, &t), WEFT_EINVAL);
    cr_assert_eq(d.entries[0].line, 3);
    cr_assert_eq(d.entries[0].column, 3);
    cr_assert_str_eq(d.entries[0].message,
                     "invalid YAML: did not find expected '-' indicator "
                     "(while parsing a block collection at 2:3)");
    diag_deinit(&d);
}

Test(ytree, explains_tab_indentation)
{
    struct diag d;
    struct ytree *t = NULL;
    const char *text = "a:\n\t- x\n";
    diag_init(&d, "t");
    cr_assert_eq(ytree_parse(text, strlen(text), &d, &t), WEFT_EINVAL);
    cr_assert_eq(d.entries[0].line, 2);
    cr_assert(strstr(d.entries[0].message, "tabs cannot be used") != NULL, "%s",
              d.entries[0].message);
    diag_deinit(&d);
}

Test(ytree, reports_invalid_utf8_with_its_offset)
{
    struct diag d;
    struct ytree *t = NULL;
    const char text[] = "a: 1\nb: \xff\n";
    diag_init(&d, "t");
    cr_assert_eq(ytree_parse(text, sizeof(text) - 1, &d, &t), WEFT_EINVAL);
    cr_assert_eq(d.entries[0].line, 2);
    cr_assert_eq(d.entries[0].column, 4);
    cr_assert_str_eq(d.entries[0].message,
                     "not valid UTF-8 text (binary file?): invalid leading "
                     "UTF-8 octet (0xFF at byte 8)");
    diag_deinit(&d);
}

Test(ytree, reports_binary_data)
{
    struct diag d;
    struct ytree *t = NULL;
    const char text[] = "\x00\x01\x02garbage";
    diag_init(&d, "t");
    cr_assert_eq(ytree_parse(text, sizeof(text) - 1, &d, &t), WEFT_EINVAL);
    cr_assert(strstr(d.entries[0].message, "binary file?") != NULL);
    diag_deinit(&d);
}

Test(ytree, describes_nodes_for_messages)
{
    struct ytree *t;
    const struct ytree_node *r =
        parse_ok("[a, 1, 2.5, true, null, [], {}]", &t);
    cr_assert_str_eq(ytree_describe(r->u.items[0]), "a string");
    cr_assert_str_eq(ytree_describe(r->u.items[1]), "a number");
    cr_assert_str_eq(ytree_describe(r->u.items[2]), "a number");
    cr_assert_str_eq(ytree_describe(r->u.items[3]), "a boolean");
    cr_assert_str_eq(ytree_describe(r->u.items[4]), "null");
    cr_assert_str_eq(ytree_describe(r->u.items[5]), "a sequence");
    cr_assert_str_eq(ytree_describe(r->u.items[6]), "a mapping");
    ytree_free(t);
}

static const char *json_doc =
    "b: [1, -2, 0x10, 2.5, 1e3, -0.0, true, null, ~]\n"
    "a: {z: \"tab\\there\", y: 'quote \" and \\\\', x: \"\\u0001\\u001f\"}\n"
    "\"\": empty\n"
    "unicode: \"h\\u00e9llo \\U0001F600\"\n"
    "ab: 1\n"
    "a b: 2\n"
    "nested: {k: [[], {}, [{q: 1}]]}\n";

Test(ytree, writes_json_exactly_as_jansson_sorted_compact)
{
    struct ytree *t;
    const struct ytree_node *r = parse_ok(json_doc, &t);
    json_t *j = ytree_to_json(r);
    char *want = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert_eq(ytree_write_json(r, &b), 0);
    cr_assert_str_eq(b.data, want);
    buf_deinit(&b);
    free(want);
    json_decref(j);
    ytree_free(t);
}

Test(ytree, converts_to_json_in_file_order)
{
    struct ytree *t;
    const struct ytree_node *r = parse_ok("z: 1\na: [x, 2.5, false]\n", &t);
    json_t *j = ytree_to_json(r);
    char *s = json_dumps(j, JSON_COMPACT);
    cr_assert_str_eq(s, "{\"z\":1,\"a\":[\"x\",2.5,false]}");
    free(s);
    json_decref(j);
    ytree_free(t);
}

Test(ytree, from_json_keeps_types_and_has_no_positions)
{
    json_error_t jerr;
    json_t *j =
        json_loads("{\"a\":[1,2.5,\"s\",true,null],\"b\":{}}", 0, &jerr);
    struct diag d;
    struct ytree *t = NULL;
    diag_init(&d, "t");
    cr_assert_eq(ytree_from_json(j, &d, &t), 0);
    const struct ytree_node *r = ytree_root(t);
    const struct ytree_node *a = ytree_map_get(r, "a");
    cr_assert_eq(r->line, 0);
    cr_assert_eq(a->u.items[0]->type, YTREE_INT);
    cr_assert_eq(a->u.items[1]->type, YTREE_FLOAT);
    cr_assert_eq(a->u.items[2]->type, YTREE_STRING);
    cr_assert_eq(a->u.items[3]->type, YTREE_BOOL);
    cr_assert_eq(a->u.items[4]->type, YTREE_NULL);
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert_eq(ytree_write_json(r, &b), 0);
    cr_assert_str_eq(b.data, "{\"a\":[1,2.5,\"s\",true,null],\"b\":{}}");
    buf_deinit(&b);
    ytree_free(t);
    json_decref(j);
    diag_deinit(&d);
}

Test(ytree, from_json_rejects_nesting_past_the_limit)
{
    json_t *j = json_array();
    for (int i = 0; i < YTREE_MAX_DEPTH; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, j);
        j = outer;
    }
    struct diag d;
    struct ytree *t = NULL;
    diag_init(&d, "t");
    cr_assert_eq(ytree_from_json(j, &d, &t), WEFT_ELIMIT);
    cr_assert_null(t);
    json_decref(j);
    diag_deinit(&d);
}

static void value_pos(const char *text, const char *key, size_t off, int *line,
                      int *col)
{
    struct ytree *t;
    const struct ytree_node *r = parse_ok(text, &t);
    ytree_value_position(t, ytree_map_get(r, key), off, line, col);
    ytree_free(t);
}

Test(ytree, value_position_in_plain_scalar)
{
    int l, c;
    value_pos("k: abc def\n", "k", 4, &l, &c);
    cr_assert_eq(l, 1);
    cr_assert_eq(c, 8);
}

Test(ytree, value_position_skips_doubled_single_quotes)
{
    int l, c;
    /* value: it's x ; offset 5 is 'x' */
    value_pos("k: 'it''s x'\n", "k", 5, &l, &c);
    cr_assert_eq(c, 11);
}

Test(ytree, value_position_skips_escapes_in_double_quotes)
{
    int l, c;
    /* value: "a\tb" -> 'b' at offset 2; source col of b is 9 */
    value_pos("k: \"a\\tb\"\n", "k", 2, &l, &c);
    cr_assert_eq(c, 8);
    /* \u00e9 is two bytes in the value, six characters in the source */
    value_pos("k: \"\\u00e9x\"\n", "k", 2, &l, &c);
    cr_assert_eq(c, 11);
}

Test(ytree, value_position_counts_characters_not_bytes)
{
    int l, c;
    value_pos("k: h\xc3\xa9llo\n", "k", 3, &l, &c);
    cr_assert_eq(c, 6);
}

Test(ytree, value_position_in_literal_block)
{
    int l, c;
    value_pos("k: |\n  first\n  second line\n", "k", 13, &l, &c);
    cr_assert_eq(l, 3);
    cr_assert_eq(c, 10);
}

Test(ytree, value_position_of_folded_block_is_the_node)
{
    int l, c;
    value_pos("k: >\n  one\n  two\n", "k", 5, &l, &c);
    cr_assert_eq(l, 1);
    cr_assert_eq(c, 4);
}

Test(ytree, allocation_failures_never_crash_or_leak)
{
    const char *text = "a: &x {k: [1, 2, \"s\"]}\nb: *x\nc: [x, y, z]\n";
    for (unsigned long n = 1;; n++) {
        struct diag d;
        struct ytree *t = NULL;
        diag_init(&d, "t");
        weft_alloc_fail_after(n);
        int rc = ytree_parse(text, strlen(text), &d, &t);
        weft_alloc_fail_reset();
        diag_deinit(&d);
        ytree_free(t);
        if (rc == 0)
            break;
        cr_assert_eq(rc, WEFT_ENOMEM);
        cr_assert_lt(n, 1000);
    }
}
