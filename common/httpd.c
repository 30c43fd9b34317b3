/* httpd.c - the HTTP listener and replies both daemons use (see
 * httpd.h). */
#include "httpd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "alloc.h"
#include "num.h"

int httpd_addr_parse(const char *text, struct httpd_addr *out,
                     struct weft_error *err)
{
    if (text == NULL || text[0] == '\0')
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "expected HOST:PORT, got nothing");
    size_t len = strnlen(text, HTTPD_ADDR_MAX);
    if (len >= HTTPD_ADDR_MAX)
        return weft_error_set(err, WEFT_EINVAL, 0, 0, "address too long");
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "'%s': expected HOST:PORT", text);
    struct httpd_addr a;
    memset(&a, 0, sizeof(a));
    const char *h = text;
    size_t hlen = (size_t)(colon - text);
    if (h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']')
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "'%s': unbalanced brackets", text);
        h++;
        hlen -= 2;
    }
    memcpy(a.host, h, hlen);
    a.host[hlen] = '\0';
    if (strcmp(a.host, "localhost") == 0)
        snprintf(a.host, sizeof(a.host), "127.0.0.1");
    int64_t port;
    const char *p = colon + 1;
    if (num_parse_i64(p, strlen(p), 0, 65535, &port) != 0 || p[0] == '+' ||
        p[0] == '-')
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "'%s': port must be a number from 0 to 65535",
                              text);
    a.port = (uint16_t)port;
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, a.host, &v4) == 1) {
        a.loopback = (ntohl(v4.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, a.host, &v6) == 1) {
        a.loopback = memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0;
    } else {
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "'%s': host must be a numeric address or "
                              "localhost",
                              text);
    }
    *out = a;
    return 0;
}

struct evhttp *httpd_listen(struct event_base *base, const struct httpd_addr *a,
                            uint16_t *port, struct weft_error *err)
{
    struct evhttp *srv = evhttp_new(base);
    if (srv == NULL) {
        weft_error_set(err, WEFT_ENOMEM, 0, 0, "cannot create HTTP server");
        return NULL;
    }
    evhttp_set_max_body_size(srv, HTTPD_MAX_BODY);
    evhttp_set_max_headers_size(srv, HTTPD_MAX_HEADERS);
    evhttp_set_timeout(srv, HTTPD_IO_TIMEOUT_S);
    evhttp_set_allowed_methods(srv, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
                                        EVHTTP_REQ_POST);
    /* A body over the limit is read (and dropped) up to its declared
     * length before the 413, so the client, still sending, sees the
     * answer instead of a reset connection. */
    evhttp_set_flags(srv, EVHTTP_SERVER_LINGERING_CLOSE);
    struct evhttp_bound_socket *bs =
        evhttp_bind_socket_with_handle(srv, a->host, a->port);
    if (bs == NULL) {
        weft_error_set(err, WEFT_EIO, 0, 0, "cannot listen on %s:%u", a->host,
                       (unsigned)a->port);
        evhttp_free(srv);
        return NULL;
    }
    if (port != NULL) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        *port = a->port;
        if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss,
                        &sl) == 0) {
            if (ss.ss_family == AF_INET)
                *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    return srv;
}

void httpd_reply(struct evhttp_request *r, int code, const char *ctype,
                 const void *body, size_t len)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(r);
    if (conn != NULL)
        evhttp_connection_set_closecb(conn, NULL, NULL);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(r);
    evhttp_add_header(oh, "Content-Type", ctype);
    evhttp_add_header(oh, "Cache-Control", "no-store");
    evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
    struct evbuffer *out = evbuffer_new();
    if (out != NULL && len > 0 && evbuffer_add(out, body, len) != 0) {
        evbuffer_free(out);
        out = NULL;
    }
    if (out == NULL && len > 0) {
        evhttp_send_reply(r, 500, NULL, NULL);
        return;
    }
    evhttp_send_reply(r, code, NULL, out);
    if (out != NULL)
        evbuffer_free(out);
}

void httpd_reply_json(struct evhttp_request *r, int code, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of "
            "memory\"}}\n";
        httpd_reply(r, 500, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    size_t n = strlen(text);
    /* A trailing newline makes curl output and logs readable. */
    char *with_nl = weft_realloc(text, n + 2);
    if (with_nl != NULL) {
        text = with_nl;
        text[n++] = '\n';
        text[n] = '\0';
    }
    httpd_reply(r, code, "application/json", text, n);
    weft_free(text);
}

void httpd_reply_error(struct evhttp_request *r, int code, const char *errcode,
                       const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *m = json_string(msg);
    if (m == NULL)
        m = json_string("(message is not UTF-8)");
    httpd_reply_json(
        r, code,
        json_pack("{s:{s:s, s:o}}", "error", "code", errcode, "message", m));
}
