/* hmac.h - job signatures: HMAC-SHA256 over the msgpack body.
 *
 * The key never lives in Redis: it comes from WEFT_HMAC_KEY (the key
 * text itself) or WEFT_HMAC_KEY_FILE (a file whose contents, minus one
 * trailing newline, are the key). Verification is constant-time.
 */
#ifndef WEFT_COMMON_HMAC_H
#define WEFT_COMMON_HMAC_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Long enough for any sane secret; a longer file is a mistake. */
#define HMAC_KEY_MAX 512
/* Short keys are guessable. */
#define HMAC_KEY_MIN 16
#define HMAC_HEX_LEN 64
/* hmac_key_generate: 256 bits of randomness, the strength of SHA-256. */
#define HMAC_GENERATE_BYTES 32

struct hmac_key {
    unsigned char bytes[HMAC_KEY_MAX];
    size_t len;
};

/* Sets k from bytes. WEFT_EINVAL when len is outside [HMAC_KEY_MIN,
 * HMAC_KEY_MAX]; k is then unchanged. */
int hmac_key_set(struct hmac_key *k, const void *bytes, size_t len,
                 struct weft_error *err);

/* Loads the key from a file (one trailing "\n" or "\r\n" dropped; the
 * rest, any bytes, is the key). WEFT_ENOENT when the file does not exist,
 * WEFT_EIO when it cannot be read, WEFT_EINVAL for a key length outside
 * [HMAC_KEY_MIN, HMAC_KEY_MAX]. k is unchanged on failure. */
int hmac_key_load_file(struct hmac_key *k, const char *path,
                       struct weft_error *err);

/* From WEFT_HMAC_KEY, else WEFT_HMAC_KEY_FILE; a variable set to ""
 * counts as unset. WEFT_ENOENT when neither is set; otherwise as
 * hmac_key_set / hmac_key_load_file, err naming the variable or file. */
int hmac_key_from_env(struct hmac_key *k, struct weft_error *err);

/* Makes a fresh key for `weft run`'s private system: HMAC_GENERATE_BYTES
 * random bytes, hex-encoded into hex (hexsize >= 2 * HMAC_GENERATE_BYTES +
 * 1), and k is set to that hex text itself, so a child given hex in
 * WEFT_HMAC_KEY loads exactly the same key. WEFT_EINVAL when hex is too
 * small, WEFT_EIO when the random generator fails (k and hex unchanged). */
int hmac_key_generate(struct hmac_key *k, char *hex, size_t hexsize);

/* Writes the lowercase hex HMAC-SHA256 of data into out (65 bytes with
 * the NUL). If OpenSSL fails (out of memory) out is "", which never
 * verifies. data may be NULL when len is 0. */
void hmac_sign_hex(const struct hmac_key *k, const void *data, size_t len,
                   char out[HMAC_HEX_LEN + 1]);

/* True when sig[0..siglen) is the lowercase hex signature of data;
 * constant-time in the content of sig. Any other length is false. */
bool hmac_verify_hex(const struct hmac_key *k, const void *data, size_t len,
                     const char *sig, size_t siglen);

#endif
