/* hmac.c - HMAC-SHA256 job signatures (docs/protocol.md, "Signature").
 *
 * The key is held in a fixed struct, and scratch copies are wiped with
 * OPENSSL_cleanse. Signing keeps one OpenSSL MAC context per thread, keyed
 * once: the one-shot HMAC() looks the algorithm up and hashes the key
 * anew on every call, which cost a tenth of the scheduler's time.
 * Verification compares the whole hex signature with CRYPTO_memcmp so
 * timing reveals nothing about how many characters matched.
 */
#include "hmac.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define HMAC_ENV_KEY      "WEFT_HMAC_KEY"
#define HMAC_ENV_KEY_FILE "WEFT_HMAC_KEY_FILE"

static const char hex_digits[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

/* Sets k after checking the length; what names the source in messages. */
static int key_set(struct hmac_key *k, const void *bytes, size_t len,
                   const char *what, struct weft_error *err)
{
    if (len < HMAC_KEY_MIN)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "%s: key is %zu bytes, at least %d required",
                              what, len, HMAC_KEY_MIN);
    if (len > HMAC_KEY_MAX)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "%s: key is longer than %d bytes", what,
                              HMAC_KEY_MAX);
    memcpy(k->bytes, bytes, len);
    k->len = len;
    return 0;
}

int hmac_key_set(struct hmac_key *k, const void *bytes, size_t len,
                 struct weft_error *err)
{
    return key_set(k, bytes, len, "hmac", err);
}

int hmac_key_load_file(struct hmac_key *k, const char *path,
                       struct weft_error *err)
{
    /* Room for the longest key, "\r\n" and one byte more to notice a file
     * that is too long without reading all of it. */
    unsigned char tmp[HMAC_KEY_MAX + 3];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return weft_error_set(err, errno == ENOENT ? WEFT_ENOENT : WEFT_EIO, 0,
                              0, "hmac key file '%s': %s", path,
                              strerror(errno));
    size_t n = fread(tmp, 1, sizeof(tmp), f);
    int failed = ferror(f);
    fclose(f);
    int rc;
    if (failed) {
        rc = weft_error_set(err, WEFT_EIO, 0, 0,
                            "hmac key file '%s': read error", path);
        goto out;
    }
    if (n > 0 && tmp[n - 1] == '\n') {
        n--;
        if (n > 0 && tmp[n - 1] == '\r')
            n--;
    }
    if (n > HMAC_KEY_MAX) {
        rc = weft_error_set(err, WEFT_EINVAL, 0, 0,
                            "hmac key file '%s': key is longer than %d bytes",
                            path, HMAC_KEY_MAX);
        goto out;
    }
    rc = key_set(k, tmp, n, path, err);
out:
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return rc;
}

int hmac_key_from_env(struct hmac_key *k, struct weft_error *err)
{
    const char *key = getenv(HMAC_ENV_KEY);
    if (key != NULL && key[0] != '\0')
        return key_set(k, key, strnlen(key, HMAC_KEY_MAX + 1), HMAC_ENV_KEY,
                       err);
    const char *path = getenv(HMAC_ENV_KEY_FILE);
    if (path != NULL && path[0] != '\0')
        return hmac_key_load_file(k, path, err);
    return weft_error_set(err, WEFT_ENOENT, 0, 0,
                          "no signing key: set %s or %s", HMAC_ENV_KEY,
                          HMAC_ENV_KEY_FILE);
}

int hmac_key_generate(struct hmac_key *k, char *hex, size_t hexsize)
{
    unsigned char raw[HMAC_GENERATE_BYTES];
    if (hexsize < 2 * HMAC_GENERATE_BYTES + 1)
        return WEFT_EINVAL;
    if (RAND_bytes(raw, (int)sizeof(raw)) != 1) {
        OPENSSL_cleanse(raw, sizeof(raw));
        return WEFT_EIO;
    }
    to_hex(raw, sizeof(raw), hex);
    OPENSSL_cleanse(raw, sizeof(raw));
    /* The key is the hex text, so a child reading it back from
     * WEFT_HMAC_KEY gets exactly the same key bytes. */
    memcpy(k->bytes, hex, 2 * HMAC_GENERATE_BYTES);
    k->len = 2 * HMAC_GENERATE_BYTES;
    return 0;
}

/* The thread's MAC context and the key it was set up with; a call with
 * another key sets it up again. The copy of the key is OpenSSL's own,
 * inside the context, which frees it wiped. */
static _Thread_local struct {
    EVP_MAC_CTX *ctx;
    unsigned char key[HMAC_KEY_MAX];
    size_t len;
} cache;

static void cache_drop(void)
{
    EVP_MAC_CTX_free(cache.ctx);
    cache.ctx = NULL;
    OPENSSL_cleanse(cache.key, sizeof(cache.key));
    cache.len = 0;
}

/* A context ready to start a MAC with k; NULL if OpenSSL failed. */
static EVP_MAC_CTX *keyed_ctx(const struct hmac_key *k)
{
    if (cache.ctx != NULL && cache.len == k->len &&
        CRYPTO_memcmp(cache.key, k->bytes, k->len) == 0) {
        /* A NULL key starts again from the key already set. */
        return EVP_MAC_init(cache.ctx, NULL, 0, NULL) == 1 ? cache.ctx : NULL;
    }
    cache_drop();
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL)
        return NULL;
    cache.ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (cache.ctx == NULL)
        return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    if (EVP_MAC_init(cache.ctx, k->bytes, k->len, params) != 1) {
        cache_drop();
        return NULL;
    }
    memcpy(cache.key, k->bytes, k->len);
    cache.len = k->len;
    return cache.ctx;
}

/* Binary HMAC-SHA256 into md; false if OpenSSL failed. */
static bool sign_raw(const struct hmac_key *k, const void *data, size_t len,
                     unsigned char md[EVP_MAX_MD_SIZE])
{
    size_t mdlen = 0;
    static const unsigned char empty[1];
    if (data == NULL)
        data = empty;
    EVP_MAC_CTX *ctx = keyed_ctx(k);
    if (ctx == NULL || EVP_MAC_update(ctx, data, len) != 1 ||
        EVP_MAC_final(ctx, md, &mdlen, EVP_MAX_MD_SIZE) != 1)
        return false;
    return mdlen * 2 == HMAC_HEX_LEN;
}

void hmac_sign_hex(const struct hmac_key *k, const void *data, size_t len,
                   char out[HMAC_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    if (!sign_raw(k, data, len, md)) {
        out[0] = '\0';
        return;
    }
    to_hex(md, HMAC_HEX_LEN / 2, out);
}

bool hmac_verify_hex(const struct hmac_key *k, const void *data, size_t len,
                     const char *sig, size_t siglen)
{
    char want[HMAC_HEX_LEN + 1];
    /* The length is public (always 64); only the content is secret. */
    if (sig == NULL || siglen != HMAC_HEX_LEN)
        return false;
    hmac_sign_hex(k, data, len, want);
    if (want[0] == '\0')
        return false;
    return CRYPTO_memcmp(want, sig, HMAC_HEX_LEN) == 0;
}
