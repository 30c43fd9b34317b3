/* httpd.h - what the daemons' HTTP servers share (libevent evhttp): the
 * listen address, the server with its limits, and replies.
 *
 * HTTP requests are untrusted input: the server is created with a body
 * limit, a header limit and an I/O timeout (named below), and only GET,
 * HEAD and POST are accepted. Everything runs on the loop thread.
 *
 * Replying: httpd_reply* also clear the connection's close callback (see
 * FIELD-NOTES: a request answered after its client went away is a
 * use-after-free, so a handler that waits for Redis sets a close callback
 * and must not answer once it ran; once answered, the callback must no
 * longer point at the handler's context).
 */
#ifndef WEFT_COMMON_HTTPD_H
#define WEFT_COMMON_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "error.h"

/* Request bodies are JSON tasks and control messages; a task is copied
 * into every job of its run, so a larger one is a mistake. */
#define HTTPD_MAX_BODY (1024 * 1024)
/* Headers of a sane client, bearer token included, fit many times
 * over. */
#define HTTPD_MAX_HEADERS (16 * 1024)
/* A client that sends or reads nothing for this long is dropped. */
#define HTTPD_IO_TIMEOUT_S 30
/* "HOST:PORT" text: an IPv6 literal in brackets plus a port. */
#define HTTPD_ADDR_MAX 64

struct httpd_addr {
    char host[HTTPD_ADDR_MAX]; /* numeric IPv4 or IPv6 (no brackets) */
    uint16_t port;             /* 0: any free port */
    bool loopback;             /* 127.0.0.0/8 or ::1 */
};

/* Parses "HOST:PORT": HOST is a numeric IPv4 address, an IPv6 address in
 * brackets ("[::1]:8080") or "localhost" (127.0.0.1); PORT is 0..65535.
 * 0, or WEFT_EINVAL with err saying why (out unchanged). */
int httpd_addr_parse(const char *text, struct httpd_addr *out,
                     struct weft_error *err);

/* An evhttp server on base listening on a, with the limits above. *port
 * (nullable) receives the bound port (useful when a->port is 0). NULL
 * with err filled: WEFT_EIO (cannot bind: in use, not permitted),
 * WEFT_ENOMEM. Free with evhttp_free. */
struct evhttp *httpd_listen(struct event_base *base, const struct httpd_addr *a,
                            uint16_t *port, struct weft_error *err);

/* Answers r with code, content type and body (copied), plus
 * `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`, and
 * clears the connection's close callback. r is libevent's afterwards:
 * never touch it again. */
void httpd_reply(struct evhttp_request *r, int code, const char *ctype,
                 const void *body, size_t len);

/* Answers with doc as JSON (steals doc; NULL means out of memory and
 * answers 500). */
void httpd_reply_json(struct evhttp_request *r, int code, json_t *doc);

/* Answers {"error": {"code": errcode, "message": ...}}. */
void httpd_reply_error(struct evhttp_request *r, int code, const char *errcode,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
