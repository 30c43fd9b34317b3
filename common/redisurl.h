/* redisurl.h - where Redis is: `redis://[user:password@]host:port[/db]`
 * or `unix:///path/to/socket[?db=N]`, from --redis or REDIS_URL.
 * Passwords may be percent-encoded.
 */
#ifndef WEFT_COMMON_REDISURL_H
#define WEFT_COMMON_REDISURL_H

#include "error.h"

/* Far beyond any real URL; bounds parsing of hostile env. */
#define REDIS_URL_MAX 2048

struct redis_url {
    char *host;      /* NULL for unix sockets */
    int port;        /* 6379 by default */
    char *unix_path; /* NULL for TCP */
    char *user;      /* NULL: default user */
    char *password;  /* NULL: no AUTH */
    int db;          /* 0 by default; 0..15 typical, up to 1000000 */
};

/* Parses url into out (all strings owned by out). On failure out is
 * zeroed and err says which part is wrong. */
int redis_url_parse(const char *url, struct redis_url *out,
                    struct weft_error *err);
void redis_url_deinit(struct redis_url *u);

/* The URL without the password, for logs ("redis://user:***@h:p/0"). */
int redis_url_redacted(const struct redis_url *u, char *out, size_t size);

#endif
