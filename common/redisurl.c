/* redisurl.c - strict parser for Redis URLs from --redis or REDIS_URL.
 *
 * Accepted forms (anything else is an error that names the faulty part):
 *   redis://[[user]:password@]host[:port][/db]
 *   redis://[[user]:password@][ipv6]:port[/db]
 *   unix://[[user]:password@]/absolute/path[?db=N]
 * user and password may be percent-encoded; following redis-cli, userinfo
 * without ':' is a password alone. The URL comes from the environment or
 * argv, so nothing in it is trusted: its length is bounded, control
 * characters are refused, numbers go through num.h, and error messages
 * never repeat the password.
 */
#include "redisurl.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "num.h"

#define REDIS_DEFAULT_PORT 6379
/* Redis' own `databases` setting is an int; nobody configures more. */
#define REDIS_URL_DB_MAX 1000000
/* DNS limits a name to 253 characters; an IPv6 literal is shorter. */
#define REDIS_URL_HOST_MAX 253

static const char tcp_scheme[] = "redis://";
static const char unix_scheme[] = "unix://";

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* Index of the first c in s[0..len), or len. */
static size_t find(const char *s, size_t len, char c)
{
    const char *p = memchr(s, c, len);
    return p ? (size_t)(p - s) : len;
}

static size_t find_last(const char *s, size_t len, char c)
{
    for (size_t i = len; i > 0; i--) {
        if (s[i - 1] == c)
            return i - 1;
    }
    return len;
}

static bool all_digits(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* Percent-decodes s[0..len) into a new string in *out. what names the
 * part for messages. */
static int decode_part(const char *s, size_t len, const char *what, char **out,
                       struct weft_error *err)
{
    char *d = weft_malloc(len + 1);
    if (d == NULL)
        return weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            d[n++] = s[i];
            continue;
        }
        int v = -1;
        if (len - i >= 3) {
            int hi = num_hex_digit(s[i + 1]);
            int lo = num_hex_digit(s[i + 2]);
            if (hi >= 0 && lo >= 0)
                v = hi * 16 + lo;
        }
        if (v < 0) {
            weft_free(d);
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: %s has an invalid "
                                  "percent-escape (use %%XY)",
                                  what);
        }
        if (v == 0) {
            weft_free(d);
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: %s must not contain %%00", what);
        }
        d[n++] = (char)v;
        i += 2;
    }
    d[n] = '\0';
    *out = d;
    return 0;
}

/* userinfo is the text before '@': "user:password", ":password" or
 * "password". */
static int parse_userinfo(const char *s, size_t len, struct redis_url *u,
                          struct weft_error *err)
{
    if (len == 0)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "redis URL: nothing before '@' (expected "
                              "[user]:password)");
    size_t colon = find(s, len, ':');
    const char *pw = s;
    size_t pwlen = len;
    if (colon < len) {
        pw = s + colon + 1;
        pwlen = len - colon - 1;
        if (colon > 0) {
            int rc = decode_part(s, colon, "user", &u->user, err);
            if (rc)
                return rc;
        }
    }
    if (pwlen == 0)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "redis URL: password is empty");
    return decode_part(pw, pwlen, "password", &u->password, err);
}

static int parse_db(const char *s, size_t len, int *db, struct weft_error *err)
{
    int64_t v;
    if (!all_digits(s, len) ||
        num_parse_i64(s, len, 0, REDIS_URL_DB_MAX, &v) != 0)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "redis URL: database '%.*s' must be a number "
                              "0..%d",
                              (int)len, s, REDIS_URL_DB_MAX);
    *db = (int)v;
    return 0;
}

static bool is_host_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

static bool is_ipv6_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* hostport is "host", "host:port", "[v6]" or "[v6]:port". */
static int parse_hostport(const char *s, size_t len, struct redis_url *u,
                          struct weft_error *err)
{
    const char *host = s;
    size_t hostlen;
    size_t rest; /* index just past the host (and its brackets) */
    bool v6 = len > 0 && s[0] == '[';
    if (v6) {
        size_t close = find(s, len, ']');
        if (close == len)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: host '[' has no closing ']'");
        host = s + 1;
        hostlen = close - 1;
        rest = close + 1;
    } else {
        hostlen = find(s, len, ':');
        rest = hostlen;
    }
    if (hostlen == 0)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "redis URL: host is empty");
    if (hostlen > REDIS_URL_HOST_MAX)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "redis URL: host is longer than %d characters",
                              REDIS_URL_HOST_MAX);
    for (size_t i = 0; i < hostlen; i++) {
        if (v6 ? !is_ipv6_char(host[i]) : !is_host_char(host[i]))
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: host '%.*s' has an invalid "
                                  "character '%c'",
                                  (int)hostlen, host, host[i]);
    }
    u->port = REDIS_DEFAULT_PORT;
    if (rest < len) {
        if (s[rest] != ':')
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: unexpected '%c' after host",
                                  s[rest]);
        const char *p = s + rest + 1;
        size_t plen = len - rest - 1;
        int64_t port;
        if (plen == 0)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: port is empty");
        if (!all_digits(p, plen))
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: port '%.*s' is not a number",
                                  (int)plen, p);
        if (num_parse_i64(p, plen, 1, 65535, &port) != 0)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: port '%.*s' is out of range "
                                  "1..65535",
                                  (int)plen, p);
        u->port = (int)port;
    }
    u->host = weft_strndup(host, hostlen);
    if (u->host == NULL)
        return weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
    return 0;
}

/* Splits authority at its last '@' and parses the userinfo, if any;
 * *hostpart is set past the '@'. */
static int split_userinfo(const char *s, size_t len, struct redis_url *u,
                          size_t *hostpart, struct weft_error *err)
{
    size_t at = find_last(s, len, '@');
    *hostpart = 0;
    if (at == len)
        return 0;
    *hostpart = at + 1;
    return parse_userinfo(s, at, u, err);
}

static int parse_tcp(const char *s, size_t len, struct redis_url *u,
                     struct weft_error *err)
{
    size_t q = find(s, len, '?');
    if (q < len)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "redis URL: query '?%.*s' is not supported for "
                              "redis:// (put the database in the path)",
                              (int)(len - q - 1), s + q + 1);
    size_t slash = find(s, len, '/');
    size_t hp;
    int rc = split_userinfo(s, slash, u, &hp, err);
    if (rc)
        return rc;
    rc = parse_hostport(s + hp, slash - hp, u, err);
    if (rc)
        return rc;
    /* "" and "/" mean database 0. */
    if (slash + 1 < len)
        return parse_db(s + slash + 1, len - slash - 1, &u->db, err);
    return 0;
}

static int parse_query(const char *s, size_t len, struct redis_url *u,
                       struct weft_error *err)
{
    bool have_db = false;
    while (len > 0) {
        size_t amp = find(s, len, '&');
        size_t eq = find(s, amp, '=');
        if (eq != 2 || memcmp(s, "db", 2) != 0)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: unknown parameter '%.*s' (only "
                                  "db=N)",
                                  (int)eq, s);
        if (have_db)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: parameter 'db' given twice");
        /* "db" without "=" has an empty value, which parse_db rejects. */
        size_t val = eq < amp ? eq + 1 : amp;
        int rc = parse_db(s + val, amp - val, &u->db, err);
        if (rc)
            return rc;
        have_db = true;
        if (amp == len)
            break;
        s += amp + 1;
        len -= amp + 1;
        if (len == 0)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: query ends with '&'");
    }
    return 0;
}

static int parse_unix(const char *s, size_t len, struct redis_url *u,
                      struct weft_error *err)
{
    size_t slash = find(s, len, '/');
    size_t hp;
    int rc = split_userinfo(s, slash, u, &hp, err);
    if (rc)
        return rc;
    if (hp != slash)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "redis URL: unix socket path must be absolute "
                              "(unix:///path/to/socket), got host '%.*s'",
                              (int)(slash - hp), s + hp);
    size_t q = find(s, len, '?');
    if (q < slash || q - slash < 2)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "redis URL: unix socket path is empty");
    u->unix_path = weft_strndup(s + slash, q - slash);
    if (u->unix_path == NULL)
        return weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
    if (q == len)
        return 0;
    if (q + 1 == len)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "redis URL: query after '?' is empty");
    return parse_query(s + q + 1, len - q - 1, u, err);
}

int redis_url_parse(const char *url, struct redis_url *out,
                    struct weft_error *err)
{
    struct redis_url u = {0};
    memset(out, 0, sizeof(*out));
    if (url == NULL || url[0] == '\0')
        return weft_error_set(err, WEFT_EINVAL, 0, 0, "redis URL is empty");
    size_t len = strnlen(url, REDIS_URL_MAX + 1);
    if (len > REDIS_URL_MAX)
        return weft_error_set(err, WEFT_ELIMIT, 0, 0,
                              "redis URL is longer than %d characters",
                              REDIS_URL_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: space or control character at "
                                  "offset %zu",
                                  i);
        if (c == '#')
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "redis URL: fragment ('#') is not allowed "
                                  "(percent-encode it as %%23)");
    }
    int rc;
    if (starts_with(url, len, tcp_scheme)) {
        size_t n = sizeof(tcp_scheme) - 1;
        rc = parse_tcp(url + n, len - n, &u, err);
    } else if (starts_with(url, len, unix_scheme)) {
        size_t n = sizeof(unix_scheme) - 1;
        rc = parse_unix(url + n, len - n, &u, err);
    } else if (starts_with(url, len, "rediss://")) {
        rc = weft_error_set(err, WEFT_EINVAL, 0, 0,
                            "redis URL: scheme rediss:// (TLS) is not "
                            "supported; use redis:// or unix://");
    } else {
        rc = weft_error_set(err, WEFT_EINVAL, 0, 0,
                            "redis URL: scheme must be redis:// or unix://");
    }
    if (rc) {
        redis_url_deinit(&u);
        return rc;
    }
    *out = u;
    return 0;
}

void redis_url_deinit(struct redis_url *u)
{
    if (u == NULL)
        return;
    weft_free(u->host);
    weft_free(u->unix_path);
    weft_free(u->user);
    if (u->password != NULL) {
        /* Do not leave the secret in freed memory. */
        volatile char *p = u->password;
        while (*p)
            *p++ = '\0';
    }
    weft_free(u->password);
    memset(u, 0, sizeof(*u));
}

/* A bounded writer over the caller's buffer. */
struct out {
    char *p;
    size_t size;
    size_t len;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->overflow || n >= o->size - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_int(struct out *o, int v)
{
    char tmp[16];
    size_t n = sizeof(tmp);
    unsigned int x = v < 0 ? 0u - (unsigned int)v : (unsigned int)v;
    do {
        tmp[--n] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    if (v < 0)
        tmp[--n] = '-';
    put(o, tmp + n, sizeof(tmp) - n);
}

/* The user, percent-encoded again so the output parses back. */
static void put_user(struct out *o, const char *s)
{
    static const char hx[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (is_host_char((char)c) || c == '~') {
            put(o, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hx[c >> 4], hx[c & 15]};
            put(o, e, 3);
        }
    }
}

int redis_url_redacted(const struct redis_url *u, char *out, size_t size)
{
    if (out == NULL || size == 0)
        return WEFT_ELIMIT;
    out[0] = '\0';
    if ((u->host == NULL) == (u->unix_path == NULL))
        return WEFT_EINVAL;
    struct out o = {out, size, 0, false};
    put_str(&o, u->host ? tcp_scheme : unix_scheme);
    if (u->user != NULL || u->password != NULL) {
        if (u->user != NULL)
            put_user(&o, u->user);
        if (u->password != NULL)
            put_str(&o, ":***");
        put_str(&o, "@");
    }
    if (u->host != NULL) {
        bool v6 = strchr(u->host, ':') != NULL;
        put_str(&o, v6 ? "[" : "");
        put_str(&o, u->host);
        put_str(&o, v6 ? "]:" : ":");
        put_int(&o, u->port);
        put_str(&o, "/");
        put_int(&o, u->db);
    } else {
        put_str(&o, u->unix_path);
        put_str(&o, "?db=");
        put_int(&o, u->db);
    }
    return o.overflow ? WEFT_ELIMIT : 0;
}
