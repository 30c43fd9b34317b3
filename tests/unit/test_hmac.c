/* test_hmac.c - job signatures (common/hmac.c): RFC 4231 vectors, forged
 * and truncated signatures, key sources and their limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "error.h"
#include "hmac.h"

/* Criterion runs each test in its own process, so setenv stays local. */
static void clean_env(void)
{
    unsetenv("WEFT_HMAC_KEY");
    unsetenv("WEFT_HMAC_KEY_FILE");
}

TestSuite(hmac, .init = clean_env);

/* Bypasses hmac_key_set's minimum so the short RFC keys can be used. */
static void raw_key(struct hmac_key *k, const void *bytes, size_t len)
{
    memcpy(k->bytes, bytes, len);
    k->len = len;
}

static void check_vector(const void *key, size_t keylen, const void *data,
                         size_t len, const char *want)
{
    struct hmac_key k;
    char out[HMAC_HEX_LEN + 1];
    raw_key(&k, key, keylen);
    hmac_sign_hex(&k, data, len, out);
    cr_assert_eq(strncmp(out, want, strlen(want)), 0, "got %s", out);
    cr_assert_eq(strlen(out), HMAC_HEX_LEN);
}

Test(hmac, rfc4231_case1)
{
    unsigned char key[20];
    memset(key, 0x0b, sizeof(key));
    check_vector(key, sizeof(key), "Hi There", 8,
                 "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e"
                 "32cff7");
}

Test(hmac, rfc4231_case2_short_key)
{
    const char *data = "what do ya want for nothing?";
    check_vector("Jefe", 4, data, strlen(data),
                 "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964"
                 "ec3843");
}

/* The signing context is kept per key: alternating keys in one process
 * (one of them a prefix of the other) must give each key its own MAC. */
Test(hmac, alternating_keys_each_get_their_own_mac)
{
    unsigned char key1[20];
    memset(key1, 0x0b, sizeof(key1));
    const char *data = "what do ya want for nothing?";
    for (int i = 0; i < 3; i++) {
        check_vector(key1, sizeof(key1), "Hi There", 8,
                     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9"
                     "376c2e32cff7");
        check_vector(key1, sizeof(key1), "Hi There", 8,
                     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9"
                     "376c2e32cff7");
        check_vector("Jefe", 4, data, strlen(data),
                     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec"
                     "58b964ec3843");
        check_vector("Jef", 3, data, strlen(data),
                     "89630a7f7bb95aced9efa60255f18a10e7d378665751be11dd40"
                     "bb9594158c29");
    }
}

Test(hmac, rfc4231_case3)
{
    unsigned char key[20];
    unsigned char data[50];
    memset(key, 0xaa, sizeof(key));
    memset(data, 0xdd, sizeof(data));
    check_vector(key, sizeof(key), data, sizeof(data),
                 "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ce"
                 "d565fe");
}

Test(hmac, rfc4231_case4)
{
    unsigned char key[25];
    unsigned char data[50];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (unsigned char)(i + 1);
    memset(data, 0xcd, sizeof(data));
    check_vector(key, sizeof(key), data, sizeof(data),
                 "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff467"
                 "29665b");
}

Test(hmac, rfc4231_case5_truncated_prefix)
{
    unsigned char key[20];
    memset(key, 0x0c, sizeof(key));
    check_vector(key, sizeof(key), "Test With Truncation", 20,
                 "a3b6167473100ee06e0c796c2955552b");
}

Test(hmac, rfc4231_case6_key_longer_than_block)
{
    unsigned char key[131];
    const char *data = "Test Using Larger Than Block-Size Key - Hash Key First";
    memset(key, 0xaa, sizeof(key));
    check_vector(key, sizeof(key), data, strlen(data),
                 "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0e"
                 "e37f54");
}

Test(hmac, rfc4231_case7_key_and_data_longer_than_block)
{
    unsigned char key[131];
    const char *data = "This is a test using a larger than block-size key and "
                       "a larger than block-size data. The key needs to be "
                       "hashed before being used by the HMAC algorithm.";
    memset(key, 0xaa, sizeof(key));
    check_vector(key, sizeof(key), data, strlen(data),
                 "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c"
                 "3a35e2");
}

static struct hmac_key test_key(void)
{
    struct hmac_key k;
    cr_assert_eq(hmac_key_set(&k, "0123456789abcdef-secret", 23, NULL), 0);
    return k;
}

Test(hmac, verify_accepts_own_signature)
{
    struct hmac_key k = test_key();
    char sig[HMAC_HEX_LEN + 1];
    hmac_sign_hex(&k, "body", 4, sig);
    cr_assert(hmac_verify_hex(&k, "body", 4, sig, strlen(sig)));
}

Test(hmac, empty_body_signs_like_null)
{
    struct hmac_key k = test_key();
    char a[HMAC_HEX_LEN + 1];
    char b[HMAC_HEX_LEN + 1];
    hmac_sign_hex(&k, NULL, 0, a);
    hmac_sign_hex(&k, "", 0, b);
    cr_assert_str_eq(a, b);
    cr_assert(hmac_verify_hex(&k, NULL, 0, a, HMAC_HEX_LEN));
}

Test(hmac, verify_rejects_every_single_character_forgery)
{
    struct hmac_key k = test_key();
    char sig[HMAC_HEX_LEN + 1];
    hmac_sign_hex(&k, "body", 4, sig);
    for (size_t i = 0; i < HMAC_HEX_LEN; i++) {
        char forged[HMAC_HEX_LEN + 1];
        memcpy(forged, sig, sizeof(forged));
        forged[i] = forged[i] == '0' ? '1' : '0';
        cr_assert_not(hmac_verify_hex(&k, "body", 4, forged, HMAC_HEX_LEN),
                      "forgery at %zu accepted", i);
    }
}

Test(hmac, verify_rejects_truncated_and_extended_signatures)
{
    struct hmac_key k = test_key();
    char sig[HMAC_HEX_LEN + 2];
    hmac_sign_hex(&k, "body", 4, sig);
    cr_assert_not(hmac_verify_hex(&k, "body", 4, sig, HMAC_HEX_LEN - 1));
    cr_assert_not(hmac_verify_hex(&k, "body", 4, sig, 0));
    cr_assert_not(hmac_verify_hex(&k, "body", 4, NULL, 0));
    sig[HMAC_HEX_LEN] = '0';
    sig[HMAC_HEX_LEN + 1] = '\0';
    cr_assert_not(hmac_verify_hex(&k, "body", 4, sig, HMAC_HEX_LEN + 1));
}

Test(hmac, verify_rejects_uppercase_hex)
{
    struct hmac_key k = test_key();
    char sig[HMAC_HEX_LEN + 1];
    hmac_sign_hex(&k, "body", 4, sig);
    int changed = 0;
    for (size_t i = 0; i < HMAC_HEX_LEN; i++) {
        if (sig[i] >= 'a' && sig[i] <= 'f') {
            sig[i] = (char)(sig[i] - 'a' + 'A');
            changed = 1;
        }
    }
    cr_assert(changed);
    cr_assert_not(hmac_verify_hex(&k, "body", 4, sig, HMAC_HEX_LEN));
}

Test(hmac, verify_rejects_other_body_and_other_key)
{
    struct hmac_key k = test_key();
    struct hmac_key other;
    char sig[HMAC_HEX_LEN + 1];
    hmac_sign_hex(&k, "body", 4, sig);
    cr_assert_not(hmac_verify_hex(&k, "bodY", 4, sig, HMAC_HEX_LEN));
    cr_assert_not(hmac_verify_hex(&k, "body", 3, sig, HMAC_HEX_LEN));
    cr_assert_eq(hmac_key_set(&other, "0123456789abcdef-secreT", 23, NULL), 0);
    cr_assert_not(hmac_verify_hex(&other, "body", 4, sig, HMAC_HEX_LEN));
}

Test(hmac, key_length_at_limits_and_one_past)
{
    unsigned char bytes[HMAC_KEY_MAX + 1];
    struct hmac_key k;
    struct weft_error err;
    memset(bytes, 'k', sizeof(bytes));
    cr_assert_eq(hmac_key_set(&k, bytes, HMAC_KEY_MIN, NULL), 0);
    cr_assert_eq(k.len, HMAC_KEY_MIN);
    cr_assert_eq(hmac_key_set(&k, bytes, HMAC_KEY_MIN - 1, &err), WEFT_EINVAL);
    cr_assert_eq(err.code, WEFT_EINVAL);
    cr_assert_eq(k.len, HMAC_KEY_MIN, "key changed on failure");
    cr_assert_eq(hmac_key_set(&k, bytes, HMAC_KEY_MAX, NULL), 0);
    cr_assert_eq(k.len, HMAC_KEY_MAX);
    cr_assert_eq(hmac_key_set(&k, bytes, HMAC_KEY_MAX + 1, &err), WEFT_EINVAL);
    cr_assert_eq(k.len, HMAC_KEY_MAX);
}

/* Writes len bytes of 'k' and then tail to a temp file; returns its path
 * (static storage). */
static const char *key_file(size_t len, const char *tail)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/weft-hmac-test-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "wb");
    cr_assert_not_null(f);
    for (size_t i = 0; i < len; i++)
        fputc('k', f);
    fputs(tail, f);
    fclose(f);
    return path;
}

static int load(size_t len, const char *tail, struct hmac_key *k,
                struct weft_error *err)
{
    const char *path = key_file(len, tail);
    int rc = hmac_key_load_file(k, path, err);
    unlink(path);
    return rc;
}

Test(hmac, key_file_without_trailing_newline)
{
    struct hmac_key k;
    cr_assert_eq(load(20, "", &k, NULL), 0);
    cr_assert_eq(k.len, 20);
}

Test(hmac, key_file_drops_one_trailing_newline_or_crlf)
{
    struct hmac_key k;
    cr_assert_eq(load(20, "\n", &k, NULL), 0);
    cr_assert_eq(k.len, 20);
    cr_assert_eq(load(20, "\r\n", &k, NULL), 0);
    cr_assert_eq(k.len, 20);
    /* Only one: a second newline is part of the key. */
    cr_assert_eq(load(20, "\n\n", &k, NULL), 0);
    cr_assert_eq(k.len, 21);
    cr_assert_eq(k.bytes[20], '\n');
}

Test(hmac, key_file_length_at_limits_and_one_past)
{
    struct hmac_key k;
    struct weft_error err;
    cr_assert_eq(load(HMAC_KEY_MAX, "", &k, NULL), 0);
    cr_assert_eq(k.len, HMAC_KEY_MAX);
    cr_assert_eq(load(HMAC_KEY_MAX, "\n", &k, NULL), 0);
    cr_assert_eq(k.len, HMAC_KEY_MAX);
    cr_assert_eq(load(HMAC_KEY_MAX, "\r\n", &k, NULL), 0);
    cr_assert_eq(k.len, HMAC_KEY_MAX);
    cr_assert_eq(load(HMAC_KEY_MAX + 1, "", &k, &err), WEFT_EINVAL);
    cr_assert_eq(load(HMAC_KEY_MAX + 1, "\n", &k, &err), WEFT_EINVAL);
    cr_assert_eq(load(HMAC_KEY_MAX + 1, "\r\n", &k, &err), WEFT_EINVAL);
    cr_assert_eq(load(4 * HMAC_KEY_MAX, "", &k, &err), WEFT_EINVAL);
    cr_assert_eq(load(HMAC_KEY_MIN, "\n", &k, NULL), 0);
    cr_assert_eq(load(HMAC_KEY_MIN - 1, "\n", &k, &err), WEFT_EINVAL);
    cr_assert_eq(load(0, "", &k, &err), WEFT_EINVAL);
    cr_assert_eq(k.len, HMAC_KEY_MIN, "key changed on failure");
}

Test(hmac, missing_key_file_is_enoent_naming_path)
{
    struct hmac_key k;
    struct weft_error err;
    cr_assert_eq(hmac_key_load_file(&k, "/nonexistent/weft.key", &err),
                 WEFT_ENOENT);
    cr_assert_not_null(strstr(err.msg, "/nonexistent/weft.key"));
}

Test(hmac, key_file_that_is_a_directory_is_eio)
{
    struct hmac_key k;
    cr_assert_eq(hmac_key_load_file(&k, "/tmp", NULL), WEFT_EIO);
}

Test(hmac, env_key_takes_precedence_over_file)
{
    struct hmac_key k;
    const char *path = key_file(30, "\n");
    setenv("WEFT_HMAC_KEY", "env-key-0123456789", 1);
    setenv("WEFT_HMAC_KEY_FILE", path, 1);
    cr_assert_eq(hmac_key_from_env(&k, NULL), 0);
    unlink(path);
    cr_assert_eq(k.len, strlen("env-key-0123456789"));
    cr_assert_eq(memcmp(k.bytes, "env-key-0123456789", k.len), 0);
}

Test(hmac, env_file_used_when_key_unset_or_empty)
{
    struct hmac_key k;
    const char *path = key_file(30, "\n");
    setenv("WEFT_HMAC_KEY_FILE", path, 1);
    cr_assert_eq(hmac_key_from_env(&k, NULL), 0);
    cr_assert_eq(k.len, 30);
    setenv("WEFT_HMAC_KEY", "", 1);
    k.len = 0;
    cr_assert_eq(hmac_key_from_env(&k, NULL), 0);
    cr_assert_eq(k.len, 30);
    unlink(path);
}

Test(hmac, env_without_key_is_enoent)
{
    struct hmac_key k;
    struct weft_error err;
    cr_assert_eq(hmac_key_from_env(&k, &err), WEFT_ENOENT);
    setenv("WEFT_HMAC_KEY_FILE", "", 1);
    cr_assert_eq(hmac_key_from_env(&k, &err), WEFT_ENOENT);
}

Test(hmac, env_key_too_short_or_long_is_einval_naming_variable)
{
    struct hmac_key k;
    struct weft_error err;
    char long_key[HMAC_KEY_MAX + 2];
    setenv("WEFT_HMAC_KEY", "short", 1);
    cr_assert_eq(hmac_key_from_env(&k, &err), WEFT_EINVAL);
    cr_assert_not_null(strstr(err.msg, "WEFT_HMAC_KEY"));
    memset(long_key, 'x', HMAC_KEY_MAX + 1);
    long_key[HMAC_KEY_MAX + 1] = '\0';
    setenv("WEFT_HMAC_KEY", long_key, 1);
    cr_assert_eq(hmac_key_from_env(&k, &err), WEFT_EINVAL);
    long_key[HMAC_KEY_MAX] = '\0';
    setenv("WEFT_HMAC_KEY", long_key, 1);
    cr_assert_eq(hmac_key_from_env(&k, &err), 0);
    cr_assert_eq(k.len, HMAC_KEY_MAX);
}

Test(hmac, env_missing_key_file_fails)
{
    struct hmac_key k;
    setenv("WEFT_HMAC_KEY_FILE", "/nonexistent/weft.key", 1);
    cr_assert_eq(hmac_key_from_env(&k, NULL), WEFT_ENOENT);
}

Test(hmac, generated_key_is_lowercase_hex_and_round_trips_via_env)
{
    struct hmac_key k;
    struct hmac_key child;
    char hex[2 * HMAC_GENERATE_BYTES + 1];
    cr_assert_eq(hmac_key_generate(&k, hex, sizeof(hex)), 0);
    cr_assert_eq(strlen(hex), 2 * HMAC_GENERATE_BYTES);
    for (size_t i = 0; hex[i]; i++)
        cr_assert(strchr("0123456789abcdef", hex[i]) != NULL);
    setenv("WEFT_HMAC_KEY", hex, 1);
    cr_assert_eq(hmac_key_from_env(&child, NULL), 0);
    cr_assert_eq(child.len, k.len);
    cr_assert_eq(memcmp(child.bytes, k.bytes, k.len), 0);
    char sig[HMAC_HEX_LEN + 1];
    hmac_sign_hex(&k, "job", 3, sig);
    cr_assert(hmac_verify_hex(&child, "job", 3, sig, HMAC_HEX_LEN));
}

Test(hmac, generated_keys_differ)
{
    struct hmac_key a;
    struct hmac_key b;
    char ha[2 * HMAC_GENERATE_BYTES + 1];
    char hb[2 * HMAC_GENERATE_BYTES + 1];
    cr_assert_eq(hmac_key_generate(&a, ha, sizeof(ha)), 0);
    cr_assert_eq(hmac_key_generate(&b, hb, sizeof(hb)), 0);
    cr_assert_str_neq(ha, hb);
}

Test(hmac, generate_rejects_small_hex_buffer)
{
    struct hmac_key k;
    char hex[2 * HMAC_GENERATE_BYTES + 1];
    cr_assert_eq(hmac_key_generate(&k, hex, sizeof(hex) - 1), WEFT_EINVAL);
}
