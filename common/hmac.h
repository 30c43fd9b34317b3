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

struct hmac_key {
    unsigned char bytes[HMAC_KEY_MAX];
    size_t len;
};

/* Sets k from bytes. WEFT_EINVAL when len is outside [HMAC_KEY_MIN,
 * HMAC_KEY_MAX]. */
int hmac_key_set(struct hmac_key *k, const void *bytes, size_t len,
                 struct weft_error *err);

/* Loads the key from a file (trailing "\n" or "\r\n" dropped). */
int hmac_key_load_file(struct hmac_key *k, const char *path,
                       struct weft_error *err);

/* From WEFT_HMAC_KEY, else WEFT_HMAC_KEY_FILE. WEFT_ENOENT when neither
 * is set. */
int hmac_key_from_env(struct hmac_key *k, struct weft_error *err);

/* Fills k with random bytes (for `weft run`'s private system) and writes
 * them hex-encoded into hex (2 * len + 1 bytes), so children can receive
 * the key via the environment. */
int hmac_key_generate(struct hmac_key *k, char *hex, size_t hexsize);

/* Writes the lowercase hex HMAC-SHA256 of data into out (65 bytes with
 * the NUL). */
void hmac_sign_hex(const struct hmac_key *k, const void *data, size_t len,
                   char out[HMAC_HEX_LEN + 1]);

/* True when sig[0..siglen) is the lowercase hex signature of data. */
bool hmac_verify_hex(const struct hmac_key *k, const void *data, size_t len,
                     const char *sig, size_t siglen);

#endif
