/* hmac.c - HMAC-SHA256 job signatures (docs/protocol.md, "Signature").
 *
 * The key is held in a fixed struct, never on the heap, and scratch copies
 * are wiped with OPENSSL_cleanse. Verification compares the whole hex
 * signature with CRYPTO_memcmp so timing reveals nothing about how many
 * characters matched.
 */
#include "hmac.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
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

/* Binary HMAC-SHA256 into md; false if OpenSSL failed. */
static bool sign_raw(const struct hmac_key *k, const void *data, size_t len,
                     unsigned char md[EVP_MAX_MD_SIZE])
{
    unsigned int mdlen = 0;
    static const unsigned char empty[1];
    if (data == NULL)
        data = empty;
    if (HMAC(EVP_sha256(), k->bytes, (int)k->len, data, len, md, &mdlen) ==
        NULL)
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
