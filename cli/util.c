/* util.c - helpers every weft command uses: messages, JSON output, the
 * synchronous Redis connection and reply access, files and clocks.
 *
 * Replies are untrusted: every accessor checks the reply type and the
 * element count before indexing.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "num.h"
#include "rconn.h"
#include "redisurl.h"
#include "rundoc.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("weft: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_print_json(json_t *v)
{
    if (v == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    int rc = json_dumpf(v, stdout, JSON_INDENT(2));
    json_decref(v);
    if (rc != 0 || fputc('\n', stdout) == EOF)
        return CLI_EXIT_FAIL;
    return CLI_EXIT_OK;
}

int cli_keys(const struct cli_opts *o, struct keys *k)
{
    if (keys_init(k, o->prefix) != 0) {
        cli_error("invalid prefix '%s' (at most %d of A-Z a-z 0-9 _ . - : "
                  "{ })",
                  o->prefix, KEYS_PREFIX_MAX);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

redisContext *cli_connect_url(const char *url)
{
    struct redis_url u;
    struct weft_error err;
    weft_error_clear(&err);
    if (redis_url_parse(url, &u, &err) != 0) {
        cli_error("redis URL: %s", err.msg);
        return NULL;
    }
    redisContext *c = rconn_connect_sync(&u, CLI_CONNECT_TIMEOUT_MS, &err);
    if (c == NULL) {
        char where[256];
        if (redis_url_redacted(&u, where, sizeof(where)) != 0)
            where[0] = '\0';
        cli_error("cannot connect to Redis at %s: %s", where, err.msg);
    }
    redis_url_deinit(&u);
    return c;
}

redisContext *cli_connect(const struct cli_opts *o)
{
    return cli_connect_url(o->redis ? o->redis : CLI_DEFAULT_REDIS);
}

static redisReply *check_reply(redisContext *c, redisReply *r)
{
    if (r == NULL) {
        cli_error("redis: %s", c->errstr[0] ? c->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cli_error("redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisReply *cli_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    return check_reply(c, r);
}

redisReply *cli_get_reply(redisContext *c)
{
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK)
        r = NULL;
    return check_reply(c, r);
}

const redisReply *cli_reply_field(const redisReply *r, const char *field)
{
    return rundoc_reply_field(r, field);
}

const char *cli_reply_str(const redisReply *r, const char *field)
{
    const redisReply *v = cli_reply_field(r, field);
    if (v == NULL || v->type != REDIS_REPLY_STRING)
        return NULL;
    /* A value with an embedded NUL would be cut short; treat as absent. */
    if (strlen(v->str) != (size_t)v->len)
        return NULL;
    return v->str;
}

int64_t cli_reply_i64(const redisReply *r, const char *field, int64_t dflt)
{
    const redisReply *v = cli_reply_field(r, field);
    int64_t n;
    if (v == NULL || v->type != REDIS_REPLY_STRING ||
        num_parse_i64(v->str, v->len, 0, INT64_MAX, &n) != 0)
        return dflt;
    return n;
}

int cli_ensure_group(redisContext *c, const char *key, const char *group)
{
    redisReply *r =
        redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM", key, group);
    if (r == NULL) {
        cli_error("redis: %s", c->errstr[0] ? c->errstr : "connection lost");
        return CLI_EXIT_FAIL;
    }
    int rc = CLI_EXIT_OK;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9)) {
        cli_error("redis: XGROUP CREATE %s: %s", key, r->str);
        rc = CLI_EXIT_FAIL;
    }
    freeReplyObject(r);
    return rc;
}

/* Reads f to its end, at most max bytes. */
static int read_stream(FILE *f, const char *path, size_t max, char **out,
                       size_t *len)
{
    struct buf b;
    buf_init(&b, max);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = buf_append(&b, chunk, n);
        if (rc != 0)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = WEFT_EIO;
    if (rc == 0 && b.data == NULL)
        rc = buf_append(&b, "", 0);
    if (rc == WEFT_ELIMIT)
        cli_error("%s: larger than %zu bytes", path, max);
    else if (rc == WEFT_EIO)
        cli_error("%s: read error", path);
    else if (rc != 0)
        cli_error("out of memory");
    if (rc != 0) {
        buf_deinit(&b);
        return rc;
    }
    *out = buf_steal(&b, len);
    if (*out == NULL) {
        cli_error("out of memory");
        return WEFT_ENOMEM;
    }
    return 0;
}

int cli_read_file(const char *path, size_t max, char **out, size_t *len)
{
    if (strcmp(path, "-") == 0)
        return read_stream(stdin, "<stdin>", max, out, len);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        cli_error("%s: %s", path, strerror(errno));
        return errno == ENOENT ? WEFT_ENOENT : WEFT_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        cli_error("%s: is a directory", path);
        fclose(f);
        return WEFT_EIO;
    }
    int rc = read_stream(f, path, max, out, len);
    fclose(f);
    return rc;
}

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cli_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
