/* test_jsondump.c - jsondump writes what json_dumps writes, faster. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "jsondump.h"

/* jsondump_str(v) equals json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY). */
static void same_as_jansson(json_t *v)
{
    size_t len = 0;
    char *ours = jsondump_str(v, &len);
    char *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert_not_null(ours);
    cr_assert_not_null(theirs);
    cr_assert_str_eq(ours, theirs);
    cr_assert_eq(len, strlen(theirs));
    weft_free(ours);
    free(theirs);
}

Test(jsondump, writes_scalars_like_jansson)
{
    json_t *vals[] = {json_null(),
                      json_true(),
                      json_false(),
                      json_integer(0),
                      json_integer(-1),
                      json_integer(1234567890123LL),
                      json_integer(INT64_MAX),
                      json_integer(INT64_MIN),
                      json_real(0.5),
                      json_real(3.0),
                      json_real(-1e300),
                      json_real(0.1),
                      json_real(1e-5),
                      json_real(1e21),
                      json_real(5e-324),
                      json_string(""),
                      json_string("plain"),
                      json_string("quote \" backslash \\ slash /"),
                      json_string("\n\t\r\b\f \x01\x1f\x7f"),
                      json_string("h\xc3\xa9llo \xe2\x82\xac")};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        same_as_jansson(vals[i]);
        json_decref(vals[i]);
    }
}

Test(jsondump, keeps_nul_bytes_inside_strings)
{
    json_t *s = json_stringn("a\0b", 3);
    char *text = jsondump_str(s, NULL);
    cr_assert_str_eq(text, "\"a\\u0000b\"");
    weft_free(text);
    json_decref(s);
}

Test(jsondump, writes_a_bare_string_literal_like_jansson)
{
    const char s[] = "a\"b\\c\n\x01\x1f\x7f\xc3\xa9";
    struct buf b;
    buf_init(&b, 1024);
    cr_assert_eq(jsondump_string(&b, s, sizeof(s) - 1), 0);
    json_t *v = json_stringn(s, sizeof(s) - 1);
    char *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert_str_eq(b.data, theirs);
    free(theirs);
    json_decref(v);
    /* Past the maximum: refused, within the maximum. */
    buf_deinit(&b);
    buf_init(&b, 4);
    cr_assert_eq(jsondump_string(&b, "abcdef", 6), WEFT_ELIMIT);
    cr_assert_leq(b.len, 4);
    buf_deinit(&b);
}

Test(jsondump, writes_nested_documents_like_jansson)
{
    json_t *v = json_loads(
        "{\"run\": \"r-1\", \"k\": 6, \"deps\": [{\"id\": \"a\", \"job\": "
        "{\"q\": 7, \"a\": 3, \"sig\": \"ab\"}}, {\"id\": \"b\"}], "
        "\"empty\": {}, \"none\": [], \"anc\": [[1, 2.5, null, true]], "
        "\"text\": \"{\\\"task\\\": 1}\"}",
        0, NULL);
    cr_assert_not_null(v);
    same_as_jansson(v);
    json_decref(v);
}

/* A random tree of every type, for the differential below. */
static json_t *random_tree(unsigned *seed, int depth)
{
    int kind = rand_r(seed) % (depth > 4 ? 6 : 8);
    char s[12];
    switch (kind) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(rand_r(seed) & 1);
    case 2:
        return json_integer((json_int_t)rand_r(seed) - RAND_MAX / 2);
    case 3:
        return json_real((double)rand_r(seed) / 7.0);
    case 4:
    case 5:
        for (size_t i = 0; i + 1 < sizeof(s); i++)
            s[i] = (char)(1 + rand_r(seed) % 126);
        s[sizeof(s) - 1] = '\0';
        return json_string(s);
    case 6: {
        json_t *a = json_array();
        for (int i = rand_r(seed) % 5; i > 0; i--)
            json_array_append_new(a, random_tree(seed, depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (int i = rand_r(seed) % 5; i > 0; i--) {
            snprintf(s, sizeof(s), "k%d\"%d", i, rand_r(seed) % 100);
            json_object_set_new(o, s, random_tree(seed, depth + 1));
        }
        return o;
    }
    }
}

Test(jsondump, matches_jansson_on_random_trees)
{
    unsigned seed = 12345;
    for (int i = 0; i < 2000; i++) {
        json_t *v = random_tree(&seed, 0);
        same_as_jansson(v);
        json_decref(v);
    }
}

Test(jsondump, refuses_null_and_nesting_past_the_limit)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert_eq(jsondump(NULL, &b), WEFT_EINVAL);
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < JSONDUMP_DEPTH_MAX + 1; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    cr_assert_eq(jsondump(root, &b), WEFT_ELIMIT);
    buf_deinit(&b);
    json_decref(root);
}

Test(jsondump, stops_at_the_buffer_maximum)
{
    struct buf b;
    buf_init(&b, 8);
    json_t *s = json_string("longer than eight bytes");
    cr_assert_eq(jsondump(s, &b), WEFT_ELIMIT);
    buf_deinit(&b);
    json_decref(s);
}
