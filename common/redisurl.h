/* redisurl.h - where Redis is: `redis://[user:password@]host:port[/db]`
 * or `unix:///path/to/socket[?db=N]`, from --redis or REDIS_URL.
 *
 * Also accepted: no port (6379), `[ipv6]:port`, a trailing "/" (db 0),
 * `:password@` (default user) and, as redis-cli does, `password@`;
 * `unix://[user:password@]/path`. user and password may be
 * percent-encoded (%XY; %00 is refused). Not accepted: rediss:// (no TLS
 * here), a query on redis://, any query parameter but db on unix://, a
 * fragment, spaces or control characters.
 */
#ifndef WEFT_COMMON_REDISURL_H
#define WEFT_COMMON_REDISURL_H

#include "error.h"

/* Far beyond any real URL; bounds parsing of hostile env. */
#define REDIS_URL_MAX 2048

struct redis_url {
    char *host;      /* NULL for unix sockets */
    int port;        /* 1..65535, 6379 by default; 0 for unix sockets */
    char *unix_path; /* NULL for TCP */
    char *user;      /* NULL: default user */
    char *password;  /* NULL: no AUTH */
    int db;          /* 0 by default; 0..15 typical, up to 1000000 */
};

/* Parses url into out (all strings owned by out, released by
 * redis_url_deinit). 0, WEFT_EINVAL (err names the part that is wrong and
 * never repeats the password), WEFT_ELIMIT (longer than REDIS_URL_MAX) or
 * WEFT_ENOMEM. On failure out is zeroed. */
int redis_url_parse(const char *url, struct redis_url *out,
                    struct weft_error *err);
/* Frees the strings (wiping the password) and zeroes u; NULL is a no-op. */
void redis_url_deinit(struct redis_url *u);

/* The URL without the password, for logs ("redis://user:***@h:p/0",
 * "unix:///path?db=0"). 0; WEFT_ELIMIT when it does not fit in size (out
 * then holds a truncated, NUL-terminated prefix); WEFT_EINVAL when u has
 * neither or both of host and unix_path. */
int redis_url_redacted(const struct redis_url *u, char *out, size_t size);

#endif
