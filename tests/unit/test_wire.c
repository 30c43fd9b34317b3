/* test_wire.c - msgpack bodies (common/wire.c): round trips of every JSON
 * type, jobs and results, and every way a hostile body can be malformed,
 * including out-of-memory at every allocation. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "alloc.h"
#include "error.h"
#include "wire.h"

/* Leak checks (Criterion passes a leaking test otherwise, FIELD-NOTES):
 * LeakSanitizer when built with ASan (-DWEFT_SANITIZE=ON, as CI runs every
 * test); without it the check is a no-op, since glibc's heap counters
 * include its thread caches and cannot tell a leak from a cached chunk. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_LSAN 1
#endif
#endif
#ifdef TEST_LSAN
#include <sanitizer/lsan_interface.h>
static void assert_no_leaks(void)
{
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked");
}
#else
static void assert_no_leaks(void)
{
}
#endif

static void setup(void)
{
    weft_alloc_init();
}

static void teardown(void)
{
    weft_alloc_fail_reset();
}

TestSuite(wire, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static json_t *parse_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    cr_assert_not_null(v, "bad test JSON: %s", jerr.text);
    return v;
}

static void round_trip(json_t *v)
{
    char *buf = NULL;
    size_t len = 0;
    json_t *back = NULL;
    struct weft_error err = {0};
    cr_assert_eq(wire_encode(v, &buf, &len), 0);
    cr_assert_eq(wire_decode(buf, len, &back, &err), 0, "%s", err.msg);
    cr_assert(json_equal(v, back), "round trip changed the value");
    cr_assert_eq(json_typeof(v), json_typeof(back));
    json_decref(back);
    weft_free(buf);
    json_decref(v);
}

static void round_trip_text(const char *text)
{
    round_trip(parse_json(text));
}

/* Decodes bytes from a heap copy of exactly len bytes, so ASan catches any
 * read past the end. */
static int decode_bytes(const void *bytes, size_t len, json_t **out,
                        struct weft_error *err)
{
    unsigned char *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, bytes, len);
    int rc = wire_decode(copy, len, out, err);
    free(copy);
    return rc;
}

/* Expects decoding to fail with code and want in the message, leaving the
 * output untouched. */
static void decode_fails(const void *bytes, size_t len, int code,
                         const char *want)
{
    json_t *sentinel = (json_t *)&sentinel;
    json_t *out = sentinel;
    struct weft_error err = {0};
    int rc = decode_bytes(bytes, len, &out, &err);
    cr_assert_eq(rc, code, "got %d (%s)", rc, err.msg);
    cr_assert_eq(err.code, code);
    cr_assert_eq(out, sentinel, "output changed on failure");
    cr_assert_not_null(strstr(err.msg, want), "message '%s' lacks '%s'",
                       err.msg, want);
}

#define FAILS(code, want, ...)                                                 \
    do {                                                                       \
        static const unsigned char in_[] = {__VA_ARGS__};                      \
        decode_fails(in_, sizeof(in_), code, want);                            \
    } while (0)

static json_t *decode_ok(const void *bytes, size_t len)
{
    json_t *out = NULL;
    struct weft_error err = {0};
    int rc = decode_bytes(bytes, len, &out, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return out;
}

static void assert_decodes_to_int(const unsigned char *bytes, size_t len,
                                  json_int_t want)
{
    json_t *v = decode_ok(bytes, len);
    cr_assert(json_is_integer(v));
    cr_assert_eq(json_integer_value(v), want);
    json_decref(v);
}

#define DECODES_TO_INT(want, ...)                                              \
    do {                                                                       \
        static const unsigned char in_[] = {__VA_ARGS__};                      \
        assert_decodes_to_int(in_, sizeof(in_), want);                         \
    } while (0)

static const char rich_doc[] =
    "{\"s\": \"h\\u00e9llo \\u2713 \\ud834\\udd1e\", \"i\": -42,"
    " \"big\": 9223372036854775807, \"small\": -9223372036854775808,"
    " \"r\": 3.25, \"t\": true, \"f\": false, \"n\": null,"
    " \"a\": [1, \"two\", [3, [4, {}]], []],"
    " \"o\": {\"nested\": {\"deep\": [{\"x\": 1.5e300}]}},"
    " \"\": \"empty key\"}";

/* ---- round trips ---- */

Test(wire, round_trips_scalars)
{
    round_trip(json_null());
    round_trip(json_true());
    round_trip(json_false());
    round_trip(json_string(""));
    round_trip(json_string("plain"));
    round_trip(json_real(0.0));
    round_trip(json_real(-0.5));
    round_trip(json_real(1.0)); /* stays a real, not an integer */
    round_trip(json_real(1.7976931348623157e308));
    round_trip(json_real(4.9e-324));
}

Test(wire, round_trips_integers_at_every_encoding_boundary)
{
    static const json_int_t cases[] = {
        0,
        1,
        127,
        128,
        255,
        256,
        65535,
        65536,
        4294967295,
        4294967296,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
        -2147483648,
        -2147483649,
        INT64_MAX,
        INT64_MIN,
        INT64_MAX - 1,
        INT64_MIN + 1,
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        round_trip(json_integer(cases[i]));
}

Test(wire, round_trips_strings_at_every_length_class)
{
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char *s = malloc(lens[i] + 1);
        memset(s, 'x', lens[i]);
        s[lens[i]] = '\0';
        round_trip(json_stringn(s, lens[i]));
        free(s);
    }
}

Test(wire, round_trips_unicode_and_embedded_nul)
{
    round_trip_text("\"h\\u00e9llo \\u2713 \\ud834\\udd1e \\u4e2d\\u6587\"");
    round_trip(json_stringn("a\0b", 3));
    /* json_equal compares keys as C strings, so look the NUL key up. */
    json_t *o = json_object();
    char *buf;
    size_t len;
    json_t *back;
    json_object_setn_new(o, "k\0ey", 4, json_integer(1));
    json_object_set_new(o, "k", json_integer(2));
    cr_assert_eq(wire_encode(o, &buf, &len), 0);
    cr_assert_eq(wire_decode(buf, len, &back, NULL), 0);
    cr_assert_eq(json_object_size(back), 2);
    cr_assert_eq(json_integer_value(json_object_getn(back, "k\0ey", 4)), 1);
    cr_assert_eq(json_integer_value(json_object_get(back, "k")), 2);
    json_decref(back);
    json_decref(o);
    weft_free(buf);
}

Test(wire, round_trips_containers_at_every_length_class)
{
    static const size_t lens[] = {0, 15, 16, 65535, 65536};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        json_t *a = json_array();
        json_t *o = json_object();
        for (size_t j = 0; j < lens[i]; j++) {
            char key[32];
            snprintf(key, sizeof(key), "k%zu", j);
            json_array_append_new(a, json_integer((json_int_t)j));
            json_object_set_new(o, key, json_integer((json_int_t)j));
        }
        round_trip(a);
        round_trip(o);
    }
}

Test(wire, round_trips_nested_document)
{
    round_trip_text(rich_doc);
}

Test(wire, encodes_compact_msgpack)
{
    char *buf;
    size_t len;
    json_t *v = parse_json("{\"a\": [1, -1, \"b\", null, true, 2.5]}");
    static const unsigned char want[] = {
        0x81, 0xa1, 'a',  0x96, 0x01, 0xff, 0xa1, 'b',  0xc0, 0xc3,
        0xcb, 0x40, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    cr_assert_eq(wire_encode(v, &buf, &len), 0);
    cr_assert_eq(len, sizeof(want));
    cr_assert_eq(memcmp(buf, want, len), 0);
    weft_free(buf);
    json_decref(v);
}

/* ---- decoding what other encoders may write ---- */

Test(wire, decodes_non_minimal_integers)
{
    DECODES_TO_INT(5, 0xcc, 0x05);
    DECODES_TO_INT(5, 0xcd, 0x00, 0x05);
    DECODES_TO_INT(5, 0xce, 0x00, 0x00, 0x00, 0x05);
    DECODES_TO_INT(5, 0xcf, 0, 0, 0, 0, 0, 0, 0, 0x05);
    DECODES_TO_INT(5, 0xd0, 0x05);
    DECODES_TO_INT(5, 0xd3, 0, 0, 0, 0, 0, 0, 0, 0x05);
    DECODES_TO_INT(-1, 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
}

Test(wire, decodes_signed_extremes)
{
    DECODES_TO_INT(-32, 0xe0);
    DECODES_TO_INT(-128, 0xd0, 0x80);
    DECODES_TO_INT(127, 0xd0, 0x7f);
    DECODES_TO_INT(-32768, 0xd1, 0x80, 0x00);
    DECODES_TO_INT(-2147483648LL, 0xd2, 0x80, 0x00, 0x00, 0x00);
    DECODES_TO_INT(INT64_MIN, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
    DECODES_TO_INT(INT64_MAX, 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                   0xff);
}

Test(wire, decodes_float32)
{
    static const unsigned char in[] = {0xca, 0x3f, 0xc0, 0x00, 0x00};
    json_t *v = decode_ok(in, sizeof(in));
    cr_assert(json_is_real(v));
    cr_assert(json_real_value(v) == 1.5);
    json_decref(v);
}

/* ---- malformed input ---- */

Test(wire, rejects_empty_body)
{
    decode_fails("", 0, WEFT_EINVAL, "empty");
}

Test(wire, rejects_uint64_above_int64_max)
{
    FAILS(WEFT_EINVAL, "above the int64 range", 0xcf, 0x80, 0, 0, 0, 0, 0, 0,
          0);
    FAILS(WEFT_EINVAL, "above the int64 range", 0xcf, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff);
}

Test(wire, rejects_trailing_bytes)
{
    FAILS(WEFT_EINVAL, "1 trailing bytes", 0xc0, 0xc0);
    FAILS(WEFT_EINVAL, "trailing", 0x90, 0x00, 0x00);
}

Test(wire, rejects_non_string_map_keys)
{
    FAILS(WEFT_EINVAL, "map key must be a str", 0x81, 0x01, 0xc0);
    FAILS(WEFT_EINVAL, "map key must be a str", 0x81, 0xc0, 0xc0);
    FAILS(WEFT_EINVAL, "map key must be a str", 0x81, 0x90, 0xc0);
    FAILS(WEFT_EINVAL, "map key must be a str", 0x81, 0xc4, 0x00, 0xc0);
}

Test(wire, rejects_duplicate_keys)
{
    FAILS(WEFT_EINVAL, "duplicate map key 'a'", 0x82, 0xa1, 'a', 0x01, 0xa1,
          'a', 0x02);
    /* The same key in a non-minimal str8 form is still a duplicate. */
    FAILS(WEFT_EINVAL, "duplicate map key 'a'", 0x82, 0xa1, 'a', 0x01, 0xd9,
          0x01, 'a', 0x02);
}

Test(wire, rejects_bin_types)
{
    FAILS(WEFT_EINVAL, "bin type 0xc4", 0xc4, 0x01, 'x');
    FAILS(WEFT_EINVAL, "bin type 0xc5", 0xc5, 0x00, 0x01, 'x');
    FAILS(WEFT_EINVAL, "bin type 0xc6", 0xc6, 0x00, 0x00, 0x00, 0x01, 'x');
}

Test(wire, rejects_ext_types)
{
    FAILS(WEFT_EINVAL, "ext type 0xd4", 0xd4, 0x01, 0x00);
    FAILS(WEFT_EINVAL, "ext type 0xd5", 0xd5, 0x01, 0x00, 0x00);
    FAILS(WEFT_EINVAL, "ext type 0xd6", 0xd6, 0xff, 0, 0, 0, 0);
    FAILS(WEFT_EINVAL, "ext type 0xd7", 0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0);
    FAILS(WEFT_EINVAL, "ext type 0xd8", 0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0,
          0, 0, 0, 0, 0, 0, 0);
    FAILS(WEFT_EINVAL, "ext type 0xc7", 0xc7, 0x01, 0x01, 0x00);
    FAILS(WEFT_EINVAL, "ext type 0xc8", 0xc8, 0x00, 0x01, 0x01, 0x00);
    FAILS(WEFT_EINVAL, "ext type 0xc9", 0xc9, 0, 0, 0, 0x01, 0x01, 0x00);
    /* Inside a container too. */
    FAILS(WEFT_EINVAL, "ext type 0xd4", 0x91, 0xd4, 0x01, 0x00);
}

Test(wire, rejects_reserved_type_byte)
{
    FAILS(WEFT_EINVAL, "never used", 0xc1);
}

Test(wire, rejects_nan_and_infinities)
{
    FAILS(WEFT_EINVAL, "NaN or infinite", 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0);
    FAILS(WEFT_EINVAL, "NaN or infinite", 0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0);
    FAILS(WEFT_EINVAL, "NaN or infinite", 0xcb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0);
    FAILS(WEFT_EINVAL, "NaN or infinite", 0xca, 0x7f, 0xc0, 0x00, 0x00);
    FAILS(WEFT_EINVAL, "NaN or infinite", 0xca, 0xff, 0x80, 0x00, 0x00);
}

Test(wire, rejects_invalid_utf8)
{
    FAILS(WEFT_EINVAL, "not valid UTF-8", 0xa1, 0xff);
    FAILS(WEFT_EINVAL, "not valid UTF-8", 0xa1, 0x80);       /* lone cont. */
    FAILS(WEFT_EINVAL, "not valid UTF-8", 0xa2, 0xc0, 0x80); /* overlong */
    FAILS(WEFT_EINVAL, "not valid UTF-8", 0xa3, 0xe0, 0x80, 0x80);
    FAILS(WEFT_EINVAL, "not valid UTF-8", 0xa3, 0xed, 0xa0, 0x80); /* D800 */
    FAILS(WEFT_EINVAL, "not valid UTF-8", 0xa4, 0xf4, 0x90, 0x80, 0x80);
    FAILS(WEFT_EINVAL, "not valid UTF-8", 0xa1, 0xc3);       /* cut short */
    FAILS(WEFT_EINVAL, "not valid UTF-8", 0xa2, 0xe2, 0x9c); /* cut short */
    FAILS(WEFT_EINVAL, "not valid UTF-8", 0x81, 0xa1, 0xfe, 0xc0); /* key */
}

Test(wire, truncated_at_every_byte_offset_fails)
{
    char *buf;
    size_t len;
    json_t *v = parse_json(rich_doc);
    cr_assert_eq(wire_encode(v, &buf, &len), 0);
    for (size_t i = 0; i < len; i++) {
        json_t *out = NULL;
        struct weft_error err;
        int rc = decode_bytes(buf, i, &out, &err);
        cr_assert_eq(rc, WEFT_EINVAL, "prefix of %zu/%zu bytes: %d", i, len,
                     rc);
        cr_assert_null(out);
    }
    weft_free(buf);
    json_decref(v);
}

Test(wire, declared_lengths_beyond_the_body_fail)
{
    FAILS(WEFT_EINVAL, "str declares 10 bytes, 3 remain", 0xd9, 0x0a, 'a', 'b',
          'c');
    FAILS(WEFT_EINVAL, "array declares 3 values, 2 bytes remain", 0x93, 0x01,
          0x02);
    FAILS(WEFT_EINVAL, "map declares 2 entries, 3 bytes remain", 0x82, 0xa0,
          0x01, 0xa0);
    FAILS(WEFT_EINVAL, "truncated: str length needs 2 bytes", 0xda, 0x01);
    FAILS(WEFT_EINVAL, "truncated: float needs 8 bytes", 0xcb, 0x01);
}

/* FIELD-NOTES: msgpack_unpack allocates what a header declares; 28 bytes
 * declaring 2^32-1 map entries ask it for 128 GiB. With every allocation
 * made to fail, a decoder that allocated before checking would answer
 * ENOMEM; ours must answer EINVAL, having allocated nothing. */
Test(wire, huge_declared_sizes_fail_fast_without_allocating)
{
    unsigned char in[28];
    static const unsigned char heads[][5] = {
        {0xdf, 0xff, 0xff, 0xff, 0xff}, /* map32 */
        {0xdd, 0xff, 0xff, 0xff, 0xff}, /* array32 */
        {0xdb, 0xff, 0xff, 0xff, 0xff}, /* str32 */
        {0xde, 0xff, 0xff, 0, 0},       /* map16 */
        {0xdc, 0xff, 0xff, 0, 0},       /* array16 */
    };
    memset(in, 0xc0, sizeof(in));
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        json_t *out = NULL;
        struct weft_error err;
        memcpy(in, heads[i], sizeof(heads[i]));
        weft_alloc_fail_after(1);
        int rc = wire_decode(in, sizeof(in), &out, &err);
        weft_alloc_fail_reset();
        cr_assert_eq(rc, WEFT_EINVAL, "head %zu: %d (%s)", i, rc, err.msg);
        cr_assert_not_null(strstr(err.msg, "remain"), "%s", err.msg);
    }
}

Test(wire, huge_declared_size_nested_inside_valid_prefix_fails)
{
    FAILS(WEFT_EINVAL, "array declares 4294967295 values", 0x92, 0x01, 0xdd,
          0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0);
    FAILS(WEFT_EINVAL, "map declares 4294967295 entries", 0x81, 0xa1, 'k', 0xdf,
          0xff, 0xff, 0xff, 0xff, 0xa0, 0xc0);
}

/* n nested arrays (or maps keyed "") around a nil. */
static unsigned char *nested(size_t n, bool maps, size_t *len)
{
    unsigned char *p = malloc(2 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (maps) {
            p[k++] = 0x81;
            p[k++] = 0xa0;
        } else {
            p[k++] = 0x91;
        }
    }
    p[k++] = 0xc0;
    *len = k;
    return p;
}

Test(wire, depth_at_limit_accepted_one_past_rejected)
{
    for (int maps = 0; maps <= 1; maps++) {
        size_t len;
        unsigned char *p = nested(WIRE_MAX_DEPTH, maps, &len);
        json_t *v = decode_ok(p, len);
        json_decref(v);
        free(p);
        p = nested(WIRE_MAX_DEPTH + 1, maps, &len);
        decode_fails(p, len, WEFT_ELIMIT, "nested deeper than 64");
        free(p);
    }
}

static json_t *nested_json(size_t n)
{
    json_t *v = json_null();
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        v = a;
    }
    return v;
}

Test(wire, encoder_refuses_what_decoder_would_reject_for_depth)
{
    char *buf = NULL;
    size_t len;
    json_t *ok = nested_json(WIRE_MAX_DEPTH);
    json_t *deep = nested_json(WIRE_MAX_DEPTH + 1);
    cr_assert_eq(wire_encode(ok, &buf, &len), 0);
    weft_free(buf);
    buf = NULL;
    cr_assert_eq(wire_encode(deep, &buf, &len), WEFT_ELIMIT);
    cr_assert_null(buf);
    json_decref(ok);
    json_decref(deep);
}

Test(wire, body_size_at_limit_accepted_one_past_rejected)
{
    size_t len = WIRE_MAX_BODY;
    unsigned char *p = malloc(len + 1);
    uint32_t n = (uint32_t)(len - 5);
    p[0] = 0xdb;
    p[1] = (unsigned char)(n >> 24);
    p[2] = (unsigned char)(n >> 16);
    p[3] = (unsigned char)(n >> 8);
    p[4] = (unsigned char)n;
    memset(p + 5, 'x', len - 5);
    json_t *v = decode_ok(p, len);
    cr_assert_eq(json_string_length(v), len - 5);
    /* The encoder writes the same body and not one byte more. */
    char *buf;
    size_t blen;
    cr_assert_eq(wire_encode(v, &buf, &blen), 0);
    cr_assert_eq(blen, len);
    weft_free(buf);
    json_decref(v);
    memset(p, 'x', len);
    v = json_stringn((const char *)p, len - 4);
    cr_assert_not_null(v);
    cr_assert_eq(wire_encode(v, &buf, &blen), WEFT_ELIMIT);
    json_decref(v);
    p[len] = 0xc0;
    decode_fails(p, len + 1, WEFT_ELIMIT, "larger than");
    free(p);
}

/* An array32 of n nils: n + 1 values. */
static unsigned char *nils(uint32_t n, size_t *len)
{
    unsigned char *p = malloc(5 + (size_t)n);
    p[0] = 0xdd;
    p[1] = (unsigned char)(n >> 24);
    p[2] = (unsigned char)(n >> 16);
    p[3] = (unsigned char)(n >> 8);
    p[4] = (unsigned char)n;
    memset(p + 5, 0xc0, n);
    *len = 5 + (size_t)n;
    return p;
}

Test(wire, value_count_at_limit_accepted_one_past_rejected)
{
    size_t len;
    unsigned char *p = nils(WIRE_MAX_VALUES - 1, &len);
    json_t *v = decode_ok(p, len);
    char *buf;
    size_t blen;
    cr_assert_eq(wire_encode(v, &buf, &blen), 0);
    weft_free(buf);
    json_array_append_new(v, json_null());
    cr_assert_eq(wire_encode(v, &buf, &blen), WEFT_ELIMIT);
    json_decref(v);
    free(p);
    p = nils(WIRE_MAX_VALUES, &len);
    decode_fails(p, len, WEFT_ELIMIT, "more than");
    free(p);
}

/* The OOM loops record what went wrong and assert after the leak check,
 * so an early assertion cannot hide a leak. */
Test(wire, out_of_memory_at_every_allocation_of_generic_codec)
{
    json_t *doc = parse_json(rich_doc);
    char *buf = NULL;
    size_t len = 0;
    int bad = 0;
    bool equal = false;
    unsigned long n;
    /* Warm up so one-time allocations do not count as leaks. */
    cr_assert_eq(wire_encode(doc, &buf, &len), 0);
    weft_free(buf);
    for (n = 1;; n++) {
        char *sentinel = (char *)&n;
        buf = sentinel;
        weft_alloc_fail_after(n);
        int rc = wire_encode(doc, &buf, &len);
        weft_alloc_fail_reset();
        if (rc == 0)
            break;
        if (rc != WEFT_ENOMEM || buf != sentinel)
            bad = bad ? bad : 1;
    }
    for (n = 1;; n++) {
        json_t *out = NULL;
        weft_alloc_fail_after(n);
        int rc = wire_decode(buf, len, &out, NULL);
        weft_alloc_fail_reset();
        if (rc == 0) {
            equal = json_equal(out, doc);
            json_decref(out);
            break;
        }
        if (rc != WEFT_ENOMEM || out != NULL)
            bad = bad ? bad : 2;
    }
    weft_free(buf);
    assert_no_leaks();
    cr_assert_eq(bad, 0, "a failure other than ENOMEM (step %d)", bad);
    cr_assert(equal);
    cr_assert_gt(n, 10, "the loop should have injected many failures");
    json_decref(doc);
}

/* ---- jobs ---- */

static struct wire_job full_job(void)
{
    struct wire_job j = {
        .run = weft_strdup("run-1"),
        .step = weft_strdup("implement"),
        .name = weft_strdup("Implement the feature \xe2\x9c\x93"),
        .type = weft_strdup("persona-request"),
        .persona = weft_strdup("lead-engineer"),
        .queue = weft_strdup("lead-engineer"),
        .attempt = 3,
        .timeout_ms = 600000,
        .queue_timeout_ms = 30000,
        .trace = weft_strdup(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        .params = parse_json("{\"prompt\": \"do it\", \"n\": [1, 2]}"),
        .git = parse_json("{\"operation\": \"commit\", \"branch\": \"b\"}"),
        .context = parse_json("{\"workflowId\": \"w\", \"task\": {}}"),
    };
    return j;
}

static struct wire_job min_job(void)
{
    struct wire_job j = {
        .run = weft_strdup("r"),
        .step = weft_strdup("s"),
        .type = weft_strdup("noop"),
        .queue = weft_strdup("default"),
        .attempt = 1,
    };
    return j;
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        cr_assert_eq(a, b);
    else
        cr_assert_str_eq(a, b);
}

static void assert_json_or_null(const json_t *a, const json_t *b)
{
    if (a == NULL || b == NULL)
        cr_assert_eq(a, b);
    else
        cr_assert(json_equal((json_t *)a, (json_t *)b));
}

static void assert_jobs_equal(const struct wire_job *a,
                              const struct wire_job *b)
{
    assert_str_or_null(a->run, b->run);
    assert_str_or_null(a->step, b->step);
    assert_str_or_null(a->name, b->name);
    assert_str_or_null(a->type, b->type);
    assert_str_or_null(a->persona, b->persona);
    assert_str_or_null(a->queue, b->queue);
    cr_assert_eq(a->attempt, b->attempt);
    cr_assert_eq(a->timeout_ms, b->timeout_ms);
    cr_assert_eq(a->queue_timeout_ms, b->queue_timeout_ms);
    assert_str_or_null(a->trace, b->trace);
    assert_json_or_null(a->params, b->params);
    assert_json_or_null(a->git, b->git);
    assert_json_or_null(a->context, b->context);
}

static void job_round_trip(struct wire_job *j)
{
    char *buf;
    size_t len;
    struct wire_job back;
    struct weft_error err = {0};
    cr_assert_eq(wire_job_encode(j, &buf, &len), 0);
    cr_assert_eq(wire_job_decode(buf, len, &back, &err), 0, "%s", err.msg);
    assert_jobs_equal(j, &back);
    wire_job_deinit(&back);
    wire_job_deinit(j);
    weft_free(buf);
}

Test(wire, job_round_trips_with_every_field)
{
    struct wire_job j = full_job();
    job_round_trip(&j);
}

Test(wire, job_round_trips_with_required_fields_only)
{
    struct wire_job j = min_job();
    job_round_trip(&j);
}

Test(wire, job_round_trips_attempt_and_timeout_extremes)
{
    struct wire_job j = min_job();
    j.attempt = UINT32_MAX;
    j.timeout_ms = INT64_MAX;
    j.queue_timeout_ms = INT64_MAX;
    job_round_trip(&j);
}

Test(wire, job_encode_rejects_missing_or_invalid_fields)
{
    char *buf = NULL;
    size_t len;
    struct wire_job j = min_job();
    char *saved = j.run;
    j.run = NULL;
    cr_assert_eq(wire_job_encode(&j, &buf, &len), WEFT_EINVAL);
    j.run = (char *)"bad id";
    cr_assert_eq(wire_job_encode(&j, &buf, &len), WEFT_EINVAL);
    j.run = saved;
    j.attempt = 0;
    cr_assert_eq(wire_job_encode(&j, &buf, &len), WEFT_EINVAL);
    j.attempt = 1;
    j.timeout_ms = (uint64_t)INT64_MAX + 1;
    cr_assert_eq(wire_job_encode(&j, &buf, &len), WEFT_EINVAL);
    j.timeout_ms = 0;
    j.queue_timeout_ms = (uint64_t)INT64_MAX + 1;
    cr_assert_eq(wire_job_encode(&j, &buf, &len), WEFT_EINVAL);
    j.queue_timeout_ms = 0;
    j.params = json_array();
    cr_assert_eq(wire_job_encode(&j, &buf, &len), WEFT_EINVAL);
    json_decref(j.params);
    j.params = NULL;
    j.name = weft_strdup("\xff");
    cr_assert_eq(wire_job_encode(&j, &buf, &len), WEFT_EINVAL);
    cr_assert_null(buf);
    wire_job_deinit(&j);
    cr_assert_eq(wire_job_encode(NULL, &buf, &len), WEFT_EINVAL);
}

/* Encodes the JSON object text and decodes it as a job, expecting failure
 * with want in the message and *job left zeroed. */
static void job_fails(const char *text, const char *want)
{
    json_t *v = parse_json(text);
    char *buf;
    size_t len;
    struct wire_job j;
    struct wire_job zero = {0};
    struct weft_error err = {0};
    memset(&j, 0x5a, sizeof(j));
    cr_assert_eq(wire_encode(v, &buf, &len), 0);
    cr_assert_eq(wire_job_decode(buf, len, &j, &err), WEFT_EINVAL, "%s", text);
    cr_assert_eq(memcmp(&j, &zero, sizeof(j)), 0, "job not zeroed");
    cr_assert_not_null(strstr(err.msg, want), "message '%s' lacks '%s'",
                       err.msg, want);
    weft_free(buf);
    json_decref(v);
}

#define JOB_BASE "\"v\": 1, \"run\": \"r\", \"step\": \"s\", \"type\": \"noop\""
#define JOB_OK   JOB_BASE ", \"queue\": \"q\", \"attempt\": 1"

Test(wire, job_decode_names_the_missing_field)
{
    job_fails("{\"run\": \"r\"}", "job field 'v' is missing");
    job_fails("{\"v\": 1, \"step\": \"s\"}", "job field 'run' is missing");
    job_fails("{\"v\": 1, \"run\": \"r\"}", "job field 'step' is missing");
    job_fails("{\"v\": 1, \"run\": \"r\", \"step\": \"s\"}",
              "job field 'type' is missing");
    job_fails("{" JOB_BASE "}", "job field 'queue' is missing");
    job_fails("{" JOB_BASE ", \"queue\": \"q\"}",
              "job field 'attempt' is missing");
}

Test(wire, job_decode_names_the_mistyped_field)
{
    job_fails("[]", "job body must be a map");
    job_fails("\"job\"", "job body must be a map");
    job_fails("{\"v\": 2}", "job field 'v' must be 1");
    job_fails("{\"v\": \"1\"}", "job field 'v' must be 1");
    job_fails("{\"v\": 1, \"run\": 7}", "job field 'run' must be a string");
    job_fails("{\"v\": 1, \"run\": \"a b\"}",
              "job field 'run' must be 1..128 characters");
    job_fails("{\"v\": 1, \"run\": \"\"}", "job field 'run' must be 1..128");
    job_fails("{\"v\": 1, \"run\": \"r\", \"step\": \"x|y\"}",
              "job field 'step' must be 1..128");
    job_fails("{" JOB_BASE ", \"queue\": \"q:1\"}",
              "job field 'queue' must be 1..128");
    job_fails("{" JOB_OK ", \"persona\": \"a/b\"}",
              "job field 'persona' must be 1..128");
    job_fails("{" JOB_OK ", \"name\": 1}", "job field 'name' must be a string");
    job_fails("{" JOB_OK ", \"name\": \"a\\u0000b\"}",
              "job field 'name' must not contain NUL");
    job_fails("{" JOB_OK ", \"trace\": []}",
              "job field 'trace' must be a string");
    job_fails("{" JOB_OK ", \"params\": []}",
              "job field 'params' must be a map");
    job_fails("{" JOB_OK ", \"git\": \"commit\"}",
              "job field 'git' must be a map");
    job_fails("{" JOB_OK ", \"context\": null}",
              "job field 'context' must be a map");
    job_fails("{" JOB_OK ", \"timeout_ms\": -1}",
              "job field 'timeout_ms' must be a non-negative integer");
    job_fails("{" JOB_OK ", \"timeout_ms\": 1.0}",
              "job field 'timeout_ms' must be a non-negative integer");
}

Test(wire, job_decode_checks_attempt_range)
{
    static const char *const bad[] = {"0",     "-1",   "1.0",
                                      "\"1\"", "true", "4294967296"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "{" JOB_BASE ", \"queue\": \"q\", \"attempt\": %s}", bad[i]);
        job_fails(text, "job field 'attempt' must be a positive integer");
    }
}

Test(wire, job_decode_ignores_unknown_fields)
{
    json_t *v = parse_json("{" JOB_OK ", \"future\": {\"x\": 1}}");
    char *buf;
    size_t len;
    struct wire_job j;
    cr_assert_eq(wire_encode(v, &buf, &len), 0);
    cr_assert_eq(wire_job_decode(buf, len, &j, NULL), 0);
    cr_assert_str_eq(j.queue, "q");
    cr_assert_eq(j.timeout_ms, 0);
    cr_assert_null(j.params);
    wire_job_deinit(&j);
    weft_free(buf);
    json_decref(v);
}

Test(wire, job_truncated_at_every_byte_offset_fails)
{
    struct wire_job j = full_job();
    char *buf;
    size_t len;
    cr_assert_eq(wire_job_encode(&j, &buf, &len), 0);
    for (size_t i = 0; i < len; i++) {
        struct wire_job out;
        unsigned char *copy = malloc(i ? i : 1);
        memcpy(copy, buf, i);
        cr_assert_eq(wire_job_decode(copy, i, &out, NULL), WEFT_EINVAL,
                     "prefix of %zu bytes", i);
        cr_assert_null(out.run);
        free(copy);
    }
    /* And with one byte too many. */
    char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = (char)0xc0;
    struct wire_job out;
    struct weft_error err;
    cr_assert_eq(wire_job_decode(longer, len + 1, &out, &err), WEFT_EINVAL);
    cr_assert_not_null(strstr(err.msg, "trailing"));
    free(longer);
    weft_free(buf);
    wire_job_deinit(&j);
}

Test(wire, job_deinit_is_idempotent_and_null_safe)
{
    struct wire_job j = full_job();
    wire_job_deinit(&j);
    wire_job_deinit(&j);
    wire_job_deinit(NULL);
    cr_assert_null(j.run);
    cr_assert_null(j.params);
}

Test(wire, out_of_memory_at_every_allocation_of_job_codec)
{
    struct wire_job j = full_job();
    struct wire_job out;
    char *buf = NULL;
    size_t len = 0;
    int bad = 0;
    unsigned long n;
    cr_assert_eq(wire_job_encode(&j, &buf, &len), 0);
    weft_free(buf);
    for (n = 1;; n++) {
        weft_alloc_fail_after(n);
        int rc = wire_job_encode(&j, &buf, &len);
        weft_alloc_fail_reset();
        if (rc == 0)
            break;
        if (rc != WEFT_ENOMEM)
            bad = bad ? bad : 1;
    }
    for (n = 1;; n++) {
        weft_alloc_fail_after(n);
        int rc = wire_job_decode(buf, len, &out, NULL);
        weft_alloc_fail_reset();
        if (rc == 0)
            break;
        if (rc != WEFT_ENOMEM || out.run != NULL || out.params != NULL)
            bad = bad ? bad : 2;
    }
    weft_free(buf);
    wire_job_deinit(&out);
    assert_no_leaks();
    cr_assert_eq(bad, 0, "a failure other than ENOMEM (step %d)", bad);
    cr_assert_gt(n, 20);
    /* One more decode to compare the fields. */
    cr_assert_eq(wire_job_encode(&j, &buf, &len), 0);
    cr_assert_eq(wire_job_decode(buf, len, &out, NULL), 0);
    assert_jobs_equal(&j, &out);
    wire_job_deinit(&out);
    weft_free(buf);
    wire_job_deinit(&j);
}

/* ---- results ---- */

static struct wire_result full_result(void)
{
    struct wire_result r = {
        .status = WIRE_SUCCESS,
        .verdict = weft_strdup("approved"),
        .result = parse_json("{\"summary\": \"ok\", \"score\": 0.93}"),
        .state = parse_json("{\"plan\": [\"a\", \"b\"]}"),
        .artifacts = parse_json("[{\"path\": \"out/report.md\"}]"),
        .message = weft_strdup("all good \xe2\x9c\x93"),
        .started_ms = 1700000000000,
        .finished_ms = INT64_MAX,
    };
    return r;
}

static void assert_results_equal(const struct wire_result *a,
                                 const struct wire_result *b)
{
    cr_assert_eq(a->status, b->status);
    assert_str_or_null(a->verdict, b->verdict);
    assert_json_or_null(a->result, b->result);
    assert_json_or_null(a->state, b->state);
    assert_json_or_null(a->artifacts, b->artifacts);
    assert_str_or_null(a->message, b->message);
    cr_assert_eq(a->started_ms, b->started_ms);
    cr_assert_eq(a->finished_ms, b->finished_ms);
}

static void result_round_trip(struct wire_result *r)
{
    char *buf;
    size_t len;
    struct wire_result back;
    struct weft_error err = {0};
    cr_assert_eq(wire_result_encode(r, &buf, &len), 0);
    cr_assert_eq(wire_result_decode(buf, len, &back, &err), 0, "%s", err.msg);
    assert_results_equal(r, &back);
    wire_result_deinit(&back);
    wire_result_deinit(r);
    weft_free(buf);
}

Test(wire, result_round_trips_with_every_field)
{
    struct wire_result r = full_result();
    result_round_trip(&r);
}

Test(wire, result_round_trips_every_status_with_no_optional_field)
{
    for (int s = WIRE_SUCCESS; s <= WIRE_INVALID; s++) {
        struct wire_result r = {.status = (enum wire_status)s};
        result_round_trip(&r);
    }
}

Test(wire, result_keeps_explicit_null_result)
{
    struct wire_result r = {.status = WIRE_FATAL, .result = json_null()};
    result_round_trip(&r);
}

Test(wire, status_names_and_parsing)
{
    static const char *const words[] = {"success", "error",     "fatal",
                                        "timeout", "cancelled", "invalid"};
    for (int s = WIRE_SUCCESS; s <= WIRE_INVALID; s++) {
        enum wire_status got;
        cr_assert_str_eq(wire_status_name((enum wire_status)s), words[s]);
        cr_assert_eq(wire_status_parse(words[s], strlen(words[s]), &got), 0);
        cr_assert_eq(got, (enum wire_status)s);
    }
    enum wire_status got = WIRE_FATAL;
    cr_assert_eq(wire_status_parse("succ", 4, &got), WEFT_EINVAL);
    cr_assert_eq(wire_status_parse("success!", 8, &got), WEFT_EINVAL);
    cr_assert_eq(wire_status_parse("SUCCESS", 7, &got), WEFT_EINVAL);
    cr_assert_eq(wire_status_parse("", 0, &got), WEFT_EINVAL);
    cr_assert_eq(wire_status_parse(NULL, 0, &got), WEFT_EINVAL);
    cr_assert_eq(got, WIRE_FATAL);
    cr_assert_eq(wire_status_parse("errorX", 5, &got), 0);
    cr_assert_eq(got, WIRE_ERROR);
    cr_assert_str_eq(wire_status_name((enum wire_status)99), "unknown");
}

Test(wire, result_encode_rejects_invalid_fields)
{
    char *buf = NULL;
    size_t len;
    struct wire_result r = {.status = (enum wire_status)99};
    cr_assert_eq(wire_result_encode(&r, &buf, &len), WEFT_EINVAL);
    r.status = WIRE_SUCCESS;
    r.started_ms = -1;
    cr_assert_eq(wire_result_encode(&r, &buf, &len), WEFT_EINVAL);
    r.started_ms = 0;
    r.state = json_array();
    cr_assert_eq(wire_result_encode(&r, &buf, &len), WEFT_EINVAL);
    json_decref(r.state);
    r.state = NULL;
    r.artifacts = json_object();
    cr_assert_eq(wire_result_encode(&r, &buf, &len), WEFT_EINVAL);
    json_decref(r.artifacts);
    r.artifacts = NULL;
    r.message = (char *)"bad \xc3";
    cr_assert_eq(wire_result_encode(&r, &buf, &len), WEFT_EINVAL);
    cr_assert_null(buf);
}

static void result_fails(const char *text, const char *want)
{
    json_t *v = parse_json(text);
    char *buf;
    size_t len;
    struct wire_result r;
    struct wire_result zero = {0};
    struct weft_error err = {0};
    memset(&r, 0x5a, sizeof(r));
    cr_assert_eq(wire_encode(v, &buf, &len), 0);
    cr_assert_eq(wire_result_decode(buf, len, &r, &err), WEFT_EINVAL, "%s",
                 text);
    cr_assert_eq(memcmp(&r, &zero, sizeof(r)), 0, "result not zeroed");
    cr_assert_not_null(strstr(err.msg, want), "message '%s' lacks '%s'",
                       err.msg, want);
    weft_free(buf);
    json_decref(v);
}

#define RES_OK "\"v\": 1, \"status\": \"success\""

Test(wire, result_decode_names_the_bad_field)
{
    result_fails("[1]", "result body must be a map");
    result_fails("{\"status\": \"success\"}", "result field 'v' is missing");
    result_fails("{\"v\": 0, \"status\": \"success\"}",
                 "result field 'v' must be 1");
    result_fails("{\"v\": 1}", "result field 'status' is missing");
    result_fails("{\"v\": 1, \"status\": \"ok\"}",
                 "result field 'status' must be one of");
    result_fails("{\"v\": 1, \"status\": 0}",
                 "result field 'status' must be one of");
    result_fails("{" RES_OK ", \"verdict\": 1}",
                 "result field 'verdict' must be a string");
    result_fails("{" RES_OK ", \"state\": []}",
                 "result field 'state' must be a map");
    result_fails("{" RES_OK ", \"artifacts\": {}}",
                 "result field 'artifacts' must be an array");
    result_fails("{" RES_OK ", \"message\": \"a\\u0000\"}",
                 "result field 'message' must not contain NUL");
    result_fails("{" RES_OK ", \"started\": -5}",
                 "result field 'started' must be a non-negative integer");
    result_fails("{" RES_OK ", \"finished\": \"now\"}",
                 "result field 'finished' must be a non-negative integer");
}

Test(wire, result_truncated_at_every_byte_offset_fails)
{
    struct wire_result r = full_result();
    char *buf;
    size_t len;
    cr_assert_eq(wire_result_encode(&r, &buf, &len), 0);
    for (size_t i = 0; i < len; i++) {
        struct wire_result out;
        unsigned char *copy = malloc(i ? i : 1);
        memcpy(copy, buf, i);
        cr_assert_eq(wire_result_decode(copy, i, &out, NULL), WEFT_EINVAL,
                     "prefix of %zu bytes", i);
        free(copy);
    }
    weft_free(buf);
    wire_result_deinit(&r);
}

Test(wire, out_of_memory_at_every_allocation_of_result_codec)
{
    struct wire_result r = full_result();
    struct wire_result out;
    char *buf = NULL;
    size_t len = 0;
    int bad = 0;
    unsigned long n;
    cr_assert_eq(wire_result_encode(&r, &buf, &len), 0);
    weft_free(buf);
    for (n = 1;; n++) {
        weft_alloc_fail_after(n);
        int rc = wire_result_encode(&r, &buf, &len);
        weft_alloc_fail_reset();
        if (rc == 0)
            break;
        if (rc != WEFT_ENOMEM)
            bad = bad ? bad : 1;
    }
    for (n = 1;; n++) {
        weft_alloc_fail_after(n);
        int rc = wire_result_decode(buf, len, &out, NULL);
        weft_alloc_fail_reset();
        if (rc == 0)
            break;
        if (rc != WEFT_ENOMEM || out.result != NULL || out.message != NULL)
            bad = bad ? bad : 2;
    }
    weft_free(buf);
    wire_result_deinit(&out);
    assert_no_leaks();
    cr_assert_eq(bad, 0, "a failure other than ENOMEM (step %d)", bad);
    cr_assert_gt(n, 10);
    cr_assert_eq(wire_result_encode(&r, &buf, &len), 0);
    cr_assert_eq(wire_result_decode(buf, len, &out, NULL), 0);
    assert_results_equal(&r, &out);
    wire_result_deinit(&out);
    weft_free(buf);
    wire_result_deinit(&r);
}
