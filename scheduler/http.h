/* http.h - the scheduler's HTTP server (docs/api.md): probes (/healthz,
 * /readyz), Prometheus metrics (/metrics), the REST API under /v1 and the
 * dashboard page (/).
 *
 * It runs on the scheduler's event_base and has its own Redis connection
 * (rconn), so API reads never wait behind the scheduler's pipelined
 * transitions. It reads the scheduler's state only through sched_ready()
 * and sched_stats(). Requests are untrusted: bodies, headers and waits are
 * bounded (httpd.h and the limits in http.c), ids are checked with
 * keys_valid_id before they reach a key name, and /v1 needs a bearer
 * token (see http_start for the rule without one).
 */
#ifndef WEFT_SCHEDULER_HTTP_H
#define WEFT_SCHEDULER_HTTP_H

#include <stdint.h>

#include <event2/event.h>

#include "error.h"
#include "keys.h"
#include "redisurl.h"
#include "sched.h"

/* Loopback: the API is opened to a network on purpose, never by
 * default. */
#define HTTP_DEFAULT_ADDR "127.0.0.1:8080"
/* Tokens are random strings of a few dozen bytes; more is a wrong file. */
#define HTTP_TOKEN_MAX 4096

struct http_config {
    const char *addr;            /* "HOST:PORT" (httpd_addr_parse) */
    const struct redis_url *url; /* borrowed during http_start only */
    const struct keys *keys;     /* copied */
    const char *token;           /* bearer token or NULL; copied */
    const char *name;            /* Redis client name prefix; copied */
};

/* Reads the API token from WEFT_API_TOKEN (the token itself) or
 * WEFT_API_TOKEN_FILE (a file holding it; one trailing newline is
 * dropped). *token is weft_malloc'd (the caller frees it), or NULL when
 * neither variable is set. 0, or WEFT_EINVAL (both set, empty, longer
 * than HTTP_TOKEN_MAX, or holding control characters or blanks) /
 * WEFT_EIO (unreadable file) / WEFT_ENOMEM, with err filled. */
int http_token_from_env(char **token, struct weft_error *err);

struct http;

/* Parses cfg->addr, listens, and connects to Redis (in the background,
 * with rconn's reconnects). sched is borrowed (read-only) and must
 * outlive the server. Without a token, /v1 answers 401 to everything
 * except GET requests when the server listens on a loopback address and
 * the request's Host is a loopback name (a guard against DNS rebinding).
 * NULL with err filled: WEFT_EINVAL (address), WEFT_EIO (cannot listen),
 * WEFT_ENOMEM. Runs on base's thread. */
struct http *http_start(struct event_base *base, const struct http_config *cfg,
                        const struct sched *sched, struct weft_error *err);

/* The port the server listens on (the bound one when cfg->addr said 0). */
uint16_t http_port(const struct http *h);

/* Closes the listener and every connection without answering requests
 * still waiting for Redis, then the Redis connection. NULL: no-op. Not
 * from inside an HTTP or Redis callback of this server. */
void http_free(struct http *h);

#endif
