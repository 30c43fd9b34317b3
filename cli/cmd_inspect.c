/* cmd_inspect.c - `weft inspect QUEUE [--limit N] [--json]`: what sits on
 * a job queue `<prefix>:q:<QUEUE>`, for people: its length, its consumer
 * groups and consumers (XINFO), the pending entries (XPENDING: consumer,
 * idle time, delivery count), and each job with its msgpack body decoded
 * (wire_job_decode).
 *
 * Everything read here is untrusted: a body that does not decode is shown
 * as undecodable with the decoder's reason, never trusted or fatal.
 */
#include "cli.h"

#include <string.h>

#include "alloc.h"
#include "hmac.h"
#include "num.h"
#include "wire.h"

/* Jobs shown when --limit is not given. */
#define INSPECT_DEFAULT_LIMIT 100
/* Plain output cuts JSON values (params, context) to this many bytes. */
#define INSPECT_VALUE_MAX 300

struct stream_id {
    int64_t ms, seq;
};

static int parse_id(const char *s, struct stream_id *out)
{
    const char *dash = strchr(s, '-');
    if (dash == NULL) {
        out->seq = 0;
        return num_parse_i64(s, strlen(s), 0, INT64_MAX, &out->ms);
    }
    if (num_parse_i64(s, (size_t)(dash - s), 0, INT64_MAX, &out->ms) != 0 ||
        num_parse_i64(dash + 1, strlen(dash + 1), 0, INT64_MAX, &out->seq) != 0)
        return -1;
    return 0;
}

static int cmp_id(const struct stream_id *a, const struct stream_id *b)
{
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return 0;
}

static const redisReply *elem(const redisReply *r, size_t i, int type)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
        r->element[i]->type != type)
        return NULL;
    return r->element[i];
}

/* A map-shaped XINFO reply field as JSON (integer or string). */
static json_t *info_value(const redisReply *r, const char *field)
{
    const redisReply *v = cli_reply_field(r, field);
    if (v == NULL)
        return json_null();
    if (v->type == REDIS_REPLY_INTEGER)
        return json_integer(v->integer);
    if (v->type == REDIS_REPLY_STRING || v->type == REDIS_REPLY_STATUS)
        return json_stringn(v->str, v->len);
    return json_null();
}

static json_t *job_json(const struct wire_job *j)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s?, s:s, s:s?, s:s, s:I, s:I, s:s?}", "run", j->run,
        "step", j->step, "name", j->name, "type", j->type, "persona",
        j->persona, "queue", j->queue, "attempt", (json_int_t)j->attempt,
        "timeout_ms", (json_int_t)j->timeout_ms, "trace", j->trace);
    if (o == NULL)
        return NULL;
    json_object_set(o, "params", j->params ? j->params : json_null());
    json_object_set(o, "git", j->git ? j->git : json_null());
    json_object_set(o, "context", j->context ? j->context : json_null());
    return o;
}

/* Compact JSON of v cut to INSPECT_VALUE_MAX bytes, printed. */
static void print_value(const char *label, const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return;
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return;
    size_t len = strlen(text);
    printf("      %s: %.*s%s\n", label,
           (int)(len > INSPECT_VALUE_MAX ? INSPECT_VALUE_MAX : len), text,
           len > INSPECT_VALUE_MAX ? "..." : "");
    weft_free(text);
}

struct inspect {
    const struct cli_opts *o;
    redisContext *c;
    char key[KEYS_MAX];
    json_t *doc;
    bool have_last;        /* the workers group exists */
    struct stream_id last; /* its last-delivered-id */
    redisReply *pending;   /* XPENDING extended reply, or NULL */
};

static int read_groups(struct inspect *in)
{
    redisReply *g = redisCommand(in->c, "XINFO GROUPS %s", in->key);
    if (g == NULL) {
        cli_error("redis: %s", in->c->errstr);
        return CLI_EXIT_FAIL;
    }
    json_t *groups = json_array();
    json_object_set_new(in->doc, "groups", groups);
    if (g->type != REDIS_REPLY_ARRAY) {
        /* "ERR no such key": the queue has never been used. */
        freeReplyObject(g);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < g->elements; i++) {
        const redisReply *gi = g->element[i];
        const char *name = cli_reply_str(gi, "name");
        if (name == NULL)
            continue;
        json_t *jg = json_pack(
            "{s:s, s:o, s:o, s:o, s:o}", "name", name, "consumers",
            info_value(gi, "consumers"), "pending", info_value(gi, "pending"),
            "last_delivered", info_value(gi, "last-delivered-id"), "lag",
            info_value(gi, "lag"));
        if (jg == NULL)
            continue;
        json_array_append_new(groups, jg);
        const char *last = cli_reply_str(gi, "last-delivered-id");
        if (strcmp(name, KEYS_GROUP_WORKERS) == 0 && last != NULL &&
            parse_id(last, &in->last) == 0)
            in->have_last = true;
        redisReply *cs = cli_cmd(in->c, "XINFO CONSUMERS %s %s", in->key, name);
        json_t *jcs = json_array();
        json_object_set_new(jg, "consumer_list", jcs);
        for (size_t j = 0;
             cs != NULL && cs->type == REDIS_REPLY_ARRAY && j < cs->elements;
             j++) {
            const redisReply *ci = cs->element[j];
            const char *cname = cli_reply_str(ci, "name");
            if (cname == NULL)
                continue;
            json_array_append_new(
                jcs, json_pack("{s:s, s:o, s:o}", "name", cname, "pending",
                               info_value(ci, "pending"), "idle_ms",
                               info_value(ci, "idle")));
        }
        freeReplyObject(cs);
    }
    freeReplyObject(g);
    return CLI_EXIT_OK;
}

/* The XPENDING row of entry id, or NULL. */
static const redisReply *pending_of(const struct inspect *in, const char *id)
{
    const redisReply *p = in->pending;
    for (size_t i = 0;
         p != NULL && p->type == REDIS_REPLY_ARRAY && i < p->elements; i++) {
        const redisReply *row = p->element[i];
        const redisReply *rid = elem(row, 0, REDIS_REPLY_STRING);
        if (rid != NULL && strcmp(rid->str, id) == 0)
            return row;
    }
    return NULL;
}

static json_t *entry_json(struct inspect *in, const redisReply *e)
{
    const redisReply *rid = elem(e, 0, REDIS_REPLY_STRING);
    const redisReply *fields = elem(e, 1, REDIS_REPLY_ARRAY);
    if (rid == NULL || fields == NULL)
        return NULL;
    json_t *j = json_pack("{s:s}", "id", rid->str);
    if (j == NULL)
        return NULL;
    const redisReply *p = pending_of(in, rid->str);
    const char *state = "queued";
    struct stream_id sid;
    if (p != NULL) {
        state = "pending";
        const redisReply *cons = elem(p, 1, REDIS_REPLY_STRING);
        const redisReply *idle = elem(p, 2, REDIS_REPLY_INTEGER);
        const redisReply *dlv = elem(p, 3, REDIS_REPLY_INTEGER);
        json_object_set_new(j, "consumer",
                            cons ? json_string(cons->str) : json_null());
        json_object_set_new(j, "idle_ms",
                            idle ? json_integer(idle->integer) : json_null());
        json_object_set_new(j, "deliveries",
                            dlv ? json_integer(dlv->integer) : json_null());
    } else if (in->have_last && parse_id(rid->str, &sid) == 0 &&
               cmp_id(&sid, &in->last) <= 0) {
        /* Delivered and acknowledged, but not deleted. */
        state = "acknowledged";
    }
    json_object_set_new(j, "state", json_string(state));
    static const char *const plain[] = {"run", "step", "attempt", "type",
                                        "persona"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(*plain); i++) {
        const char *v = cli_reply_str(fields, plain[i]);
        json_object_set_new(j, plain[i], v ? json_string(v) : json_null());
    }
    const redisReply *sig = cli_reply_field(fields, "sig");
    json_object_set_new(j, "signed",
                        json_boolean(sig != NULL &&
                                     sig->type == REDIS_REPLY_STRING &&
                                     sig->len == HMAC_HEX_LEN));
    const redisReply *body = cli_reply_field(fields, "body");
    if (body == NULL || body->type != REDIS_REPLY_STRING) {
        json_object_set_new(j, "body_bytes", json_integer(0));
        json_object_set_new(j, "job", json_null());
        json_object_set_new(j, "error", json_string("no body field"));
        return j;
    }
    json_object_set_new(j, "body_bytes", json_integer((json_int_t)body->len));
    struct wire_job job;
    struct weft_error err;
    weft_error_clear(&err);
    memset(&job, 0, sizeof(job));
    if (wire_job_decode(body->str, body->len, &job, &err) != 0) {
        json_object_set_new(j, "job", json_null());
        json_object_set_new(
            j, "error",
            json_string(err.msg[0] ? err.msg : weft_strerror(err.code)));
        return j;
    }
    json_object_set_new(j, "job", job_json(&job));
    json_object_set_new(j, "error", json_null());
    wire_job_deinit(&job);
    return j;
}

static void print_plain(const json_t *doc)
{
    printf("queue %s  length %" JSON_INTEGER_FORMAT "\n",
           json_string_value(json_object_get(doc, "key")),
           json_integer_value(json_object_get(doc, "length")));
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(doc, "groups"), i, g)
    {
        printf("group %s: %" JSON_INTEGER_FORMAT " consumers, "
               "%" JSON_INTEGER_FORMAT " pending, last delivered %s",
               json_string_value(json_object_get(g, "name")),
               json_integer_value(json_object_get(g, "consumers")),
               json_integer_value(json_object_get(g, "pending")),
               json_string_value(json_object_get(g, "last_delivered"))
                   ? json_string_value(json_object_get(g, "last_delivered"))
                   : "-");
        if (json_is_integer(json_object_get(g, "lag")))
            printf(", lag %" JSON_INTEGER_FORMAT,
                   json_integer_value(json_object_get(g, "lag")));
        printf("\n");
        size_t k;
        const json_t *c;
        json_array_foreach(json_object_get(g, "consumer_list"), k, c)
        {
            char d[32];
            fmt_duration(json_integer_value(json_object_get(c, "idle_ms")), d,
                         sizeof(d));
            printf("  consumer %s: %" JSON_INTEGER_FORMAT " pending, idle %s\n",
                   json_string_value(json_object_get(c, "name")),
                   json_integer_value(json_object_get(c, "pending")), d);
        }
    }
    if (json_array_size(json_object_get(doc, "groups")) == 0)
        printf("no consumer group yet\n");
    const json_t *jobs = json_object_get(doc, "jobs");
    if (json_array_size(jobs) == 0) {
        printf("no jobs\n");
        return;
    }
    printf("jobs:\n");
    json_array_foreach(jobs, i, g)
    {
        const char *state = json_string_value(json_object_get(g, "state"));
        printf("  %s  %s", json_string_value(json_object_get(g, "id")), state);
        if (strcmp(state, "pending") == 0) {
            char d[32];
            fmt_duration(json_integer_value(json_object_get(g, "idle_ms")), d,
                         sizeof(d));
            printf("  consumer=%s idle=%s deliveries=%" JSON_INTEGER_FORMAT,
                   json_string_value(json_object_get(g, "consumer")), d,
                   json_integer_value(json_object_get(g, "deliveries")));
        }
        printf("\n");
        const char *f[] = {"run", "step", "attempt", "type", "persona"};
        printf("    ");
        for (size_t k = 0; k < sizeof(f) / sizeof(*f); k++) {
            const char *v = json_string_value(json_object_get(g, f[k]));
            printf("%s%s=%s", k ? " " : "", f[k], v && v[0] ? v : "-");
        }
        printf("%s\n", json_is_true(json_object_get(g, "signed"))
                           ? ""
                           : "  (unsigned)");
        const json_t *job = json_object_get(g, "job");
        if (!json_is_object(job)) {
            printf("    undecodable body (%" JSON_INTEGER_FORMAT
                   " bytes): %s\n",
                   json_integer_value(json_object_get(g, "body_bytes")),
                   json_string_value(json_object_get(g, "error")));
            continue;
        }
        const char *name = json_string_value(json_object_get(job, "name"));
        const char *trace = json_string_value(json_object_get(job, "trace"));
        printf("    job: queue=%s timeout_ms=%" JSON_INTEGER_FORMAT
               " name=%s trace=%s\n",
               json_string_value(json_object_get(job, "queue")),
               json_integer_value(json_object_get(job, "timeout_ms")),
               name ? name : "-", trace ? trace : "-");
        print_value("params", json_object_get(job, "params"));
        print_value("git", json_object_get(job, "git"));
        print_value("context", json_object_get(job, "context"));
    }
    if (json_is_true(json_object_get(doc, "truncated")))
        printf("(more jobs not shown; raise --limit)\n");
}

int cmd_inspect(const struct cli_opts *o)
{
    struct keys k;
    int rc = cli_keys(o, &k);
    if (rc != CLI_EXIT_OK)
        return rc;
    struct inspect in;
    memset(&in, 0, sizeof(in));
    in.o = o;
    const char *queue = o->args[0];
    if (keys_queue(&k, queue, in.key) == 0) {
        cli_error("'%s' is not a valid queue name", queue);
        return CLI_EXIT_USAGE;
    }
    uint32_t limit = o->limit_set ? o->limit : INSPECT_DEFAULT_LIMIT;
    in.c = cli_connect(o);
    if (in.c == NULL)
        return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    redisReply *len = NULL, *range = NULL;
    in.doc = json_pack("{s:s, s:s}", "queue", queue, "key", in.key);
    if (in.doc == NULL)
        goto out;
    len = cli_cmd(in.c, "XLEN %s", in.key);
    if (len == NULL)
        goto out;
    json_object_set_new(
        in.doc, "length",
        json_integer(len->type == REDIS_REPLY_INTEGER ? len->integer : 0));
    if (read_groups(&in) != CLI_EXIT_OK)
        goto out;
    if (in.have_last) {
        if (limit > 0)
            in.pending = cli_cmd(in.c, "XPENDING %s %s - + %u", in.key,
                                 KEYS_GROUP_WORKERS, (unsigned)limit);
        else
            in.pending = cli_cmd(in.c, "XPENDING %s %s - + %lld", in.key,
                                 KEYS_GROUP_WORKERS, (long long)INT64_MAX);
    }
    if (limit > 0)
        range = cli_cmd(in.c, "XRANGE %s - + COUNT %u", in.key,
                        (unsigned)limit + 1);
    else
        range = cli_cmd(in.c, "XRANGE %s - +", in.key);
    if (range == NULL)
        goto out;
    json_t *jobs = json_array();
    json_object_set_new(in.doc, "jobs", jobs);
    size_t n = range->type == REDIS_REPLY_ARRAY ? range->elements : 0;
    bool truncated = limit > 0 && n > limit;
    if (truncated)
        n = limit;
    for (size_t i = 0; i < n; i++) {
        json_t *j = entry_json(&in, range->element[i]);
        if (j != NULL)
            json_array_append_new(jobs, j);
    }
    json_object_set_new(in.doc, "truncated", json_boolean(truncated));
    if (o->json) {
        rc = cli_print_json(in.doc);
        in.doc = NULL;
    } else {
        print_plain(in.doc);
        rc = CLI_EXIT_OK;
    }
out:
    json_decref(in.doc);
    freeReplyObject(len);
    freeReplyObject(range);
    freeReplyObject(in.pending);
    redisFree(in.c);
    return rc;
}
