/* cmd_dlq.c - `weft dlq list | requeue ID... | drop ID...`: the
 * dead-letter stream `<prefix>:dlq` (docs/cli.md, docs/protocol.md "Dead
 * letters").
 *
 * list shows the newest dead letters with their kind, origin stream,
 * run, step, attempt, age, who dead-lettered them and why. requeue puts a
 * dead letter's message back on the stream it came from and removes it
 * from the DLQ in one script (dlq_move.lua: only while the entry is still
 * there, so two operators requeuing the same entry put it back once).
 * drop deletes entries. Entries are judged by common/dlq.c, the same code
 * as the HTTP API's.
 *
 * requeue also says when the message will change nothing: a job whose
 * step has moved on (the worker drops it as stale), a task whose run
 * exists already (creating a run is a compare-and-set). Exit 0 when every
 * ID was handled, 1 when one was not (missing, not requeueable, Redis),
 * 2 for usage errors.
 */
#include "cli.h"

#include <string.h>

#include "alloc.h"
#include "dlq.h"
#include "scripts.h"

/* Entries shown when --limit is not given: a screenful. */
#define DLQ_LIST_DEFAULT 50
/* IDs one requeue or drop takes: a person types them; a script that has
 * thousands loops. */
#define DLQ_IDS_MAX 1000

/* A stream id: <ms>-<seq>, both decimal. */
static bool valid_stream_id(const char *s)
{
    size_t n = strlen(s), dash = strcspn(s, "-");
    if (n == 0 || n >= CLI_STREAM_ID_MAX || dash == 0 || dash >= n - 1)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (i != dash && (s[i] < '0' || s[i] > '9'))
            return false;
    }
    return true;
}

static json_t *jstr(const char *s)
{
    json_t *v = s ? json_string(s) : NULL;
    return v ? v : json_null();
}

/* The entry id and field array of XRANGE/XREVRANGE element e, or false. */
static bool entry_parts(const redisReply *e, const char **id,
                        const redisReply **fields)
{
    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return false;
    *id = e->element[0]->str;
    *fields = e->element[1];
    return true;
}

/* Column text: "-" for NULL or empty. */
static const char *col(const char *s)
{
    return s && s[0] ? s : "-";
}

static int dlq_list(const struct cli_opts *o, redisContext *c,
                    const struct keys *k, const char *dlq)
{
    uint32_t limit = o->limit_set ? o->limit : DLQ_LIST_DEFAULT;
    redisReply *len = cli_cmd(c, "XLEN %s", dlq);
    if (len == NULL)
        return CLI_EXIT_FAIL;
    long long length = len->type == REDIS_REPLY_INTEGER ? len->integer : 0;
    freeReplyObject(len);
    redisReply *r = limit == 0
                        ? cli_cmd(c, "XREVRANGE %s + -", dlq)
                        : cli_cmd(c, "XREVRANGE %s + - COUNT %u", dlq, limit);
    if (r == NULL)
        return CLI_EXIT_FAIL;
    json_t *entries = json_array();
    if (entries == NULL) {
        freeReplyObject(r);
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    int64_t now = cli_now_ms();
    bool header = false;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const char *id;
        const redisReply *fields;
        if (!entry_parts(r->element[i], &id, &fields))
            continue;
        struct dlq_info in;
        dlq_inspect(k, fields, &in);
        int64_t at = in.at >= 0 ? in.at : dlq_id_ms(id);
        int64_t age = at >= 0 && now >= at ? now - at : -1;
        if (o->json) {
            json_array_append_new(
                entries,
                json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
                          "s:o, s:o, s:o, s:b, s:o}",
                          "id", id, "kind", dlq_kind_name(in.kind), "origin",
                          in.origin[0] ? json_string(in.origin) : json_null(),
                          "entry", jstr(in.entry), "reason", jstr(in.reason),
                          "by", jstr(in.by), "at",
                          at >= 0 ? json_integer(at) : json_null(), "age_ms",
                          age >= 0 ? json_integer(age) : json_null(), "run",
                          jstr(in.run), "step", jstr(in.step), "attempt",
                          jstr(in.attempt), "type", jstr(in.type),
                          "requeueable", in.not_requeueable == NULL,
                          "not_requeueable", jstr(in.not_requeueable)));
            continue;
        }
        if (!header) {
            printf("%-20s  %-7s  %-6s  %-22s  %-28s  %-16s  %-3s  %s\n", "ID",
                   "AGE", "KIND", "ORIGIN", "RUN", "STEP", "ATT", "REASON");
            header = true;
        }
        char agebuf[32];
        fmt_duration(age, agebuf, sizeof(agebuf));
        printf("%-20s  %-7s  %-6s  %-22s  %-28s  %-16s  %-3s  %s", id, agebuf,
               dlq_kind_name(in.kind), col(in.origin), col(in.run),
               col(in.step), col(in.attempt), col(in.reason));
        if (in.by)
            printf(" (by %s)", in.by);
        if (in.not_requeueable)
            printf(" [cannot requeue: %s]", in.not_requeueable);
        putchar('\n');
    }
    freeReplyObject(r);
    if (o->json)
        return cli_print_json(json_pack(
            "{s:I, s:o}", "length", (json_int_t)length, "entries", entries));
    json_decref(entries);
    if (!header)
        printf("the DLQ is empty\n");
    else if ((long long)limit > 0 && length > (long long)limit)
        printf("(%lld more; --limit 0 shows all)\n", length - (long long)limit);
    return CLI_EXIT_OK;
}

/* What a requeued message will do, when it is known to change nothing.
 * Writes a note into out (size bytes) or leaves it empty. */
static void requeue_note(redisContext *c, const struct keys *k,
                         const struct dlq_info *in, char *out, size_t size)
{
    char key[KEYS_MAX];
    out[0] = '\0';
    if (in->run == NULL || keys_run(k, KEYS_RUN, in->run, key) == 0)
        return;
    if (in->kind == DLQ_TASK) {
        redisReply *st = cli_cmd(c, "HGET %s status", key);
        if (st != NULL && st->type == REDIS_REPLY_STRING)
            snprintf(out, size,
                     "run %s exists already (%s): the task will not start it "
                     "again",
                     in->run, st->str);
        freeReplyObject(st);
        return;
    }
    if (in->kind != DLQ_JOB || in->step == NULL || in->attempt == NULL ||
        keys_run(k, KEYS_RUN_STEPS, in->run, key) == 0)
        return;
    char afield[KEYS_ID_MAX + 16];
    snprintf(afield, sizeof(afield), "%s:attempt", in->step);
    redisReply *st = cli_cmd(c, "HMGET %s %s %s", key, in->step, afield);
    if (st != NULL && st->type == REDIS_REPLY_ARRAY && st->elements == 2) {
        const redisReply *s0 = st->element[0], *s1 = st->element[1];
        const char *status = s0->type == REDIS_REPLY_STRING ? s0->str : NULL;
        const char *att = s1->type == REDIS_REPLY_STRING ? s1->str : "0";
        bool live = status && (strcmp(status, "queued") == 0 ||
                               strcmp(status, "running") == 0);
        if (status == NULL)
            snprintf(out, size,
                     "run %s has no step %s (expired?): the worker will drop "
                     "the job",
                     in->run, in->step);
        else if (!live || strcmp(att, in->attempt) != 0)
            snprintf(out, size,
                     "step %s is %s at attempt %s: the worker will drop the "
                     "job as stale",
                     in->step, status, att);
    }
    freeReplyObject(st);
}

static int requeue_one(redisContext *c, const struct keys *k, const char *dlq,
                       const char *id, json_t *done, json_t *failed, bool json)
{
    char why[512];
    redisReply *r = NULL, *mv = NULL;
    const char **argv = NULL;
    size_t *lens = NULL;
    int rc = CLI_EXIT_FAIL;
    why[0] = '\0';
    if (!valid_stream_id(id)) {
        snprintf(why, sizeof(why), "'%s' is not a stream entry id", id);
        goto out;
    }
    r = cli_cmd(c, "XRANGE %s %s %s", dlq, id, id);
    if (r == NULL) {
        snprintf(why, sizeof(why), "cannot read the entry");
        goto out;
    }
    const char *eid;
    const redisReply *fields;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
        !entry_parts(r->element[0], &eid, &fields)) {
        snprintf(why, sizeof(why), "no DLQ entry %s", id);
        goto out;
    }
    struct dlq_info in;
    dlq_inspect(k, fields, &in);
    if (in.not_requeueable) {
        snprintf(why, sizeof(why), "entry %s cannot be requeued: %s", id,
                 in.not_requeueable);
        goto out;
    }
    char note[512];
    requeue_note(c, k, &in, note, sizeof(note));
    /* EVAL with the script's text: the CLI runs one command and needs no
     * script cache. */
    int nkeys, argc;
    if (dlq_move_argv(dlq, &in, id, fields, &nkeys, &argc, &argv, &lens) != 0) {
        snprintf(why, sizeof(why), "out of memory");
        goto out;
    }
    size_t tlen;
    const char *text = scripts_text(SCRIPT_DLQ_MOVE, &tlen);
    char nk[8];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    const char **av = weft_calloc((size_t)argc + 3, sizeof(*av));
    size_t *al = weft_calloc((size_t)argc + 3, sizeof(*al));
    if (av == NULL || al == NULL) {
        weft_free(av);
        weft_free(al);
        snprintf(why, sizeof(why), "out of memory");
        goto out;
    }
    av[0] = "EVAL";
    al[0] = 4;
    av[1] = text;
    al[1] = tlen;
    av[2] = nk;
    al[2] = strlen(nk);
    memcpy(av + 3, argv, (size_t)argc * sizeof(*av));
    memcpy(al + 3, lens, (size_t)argc * sizeof(*al));
    mv = redisCommandArgv(c, argc + 3, av, al);
    weft_free(av);
    weft_free(al);
    if (mv == NULL) {
        snprintf(why, sizeof(why), "redis: %s",
                 c->errstr[0] ? c->errstr : "connection lost");
        goto out;
    }
    if (mv->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "redis: %s", mv->str);
        goto out;
    }
    if (mv->type != REDIS_REPLY_STRING) {
        snprintf(why, sizeof(why),
                 "no DLQ entry %s (requeued or dropped "
                 "meanwhile)",
                 id);
        goto out;
    }
    rc = CLI_EXIT_OK;
    if (json)
        json_array_append_new(
            done, json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id, "kind",
                            dlq_kind_name(in.kind), "stream", in.origin,
                            "new_id", mv->str, "note",
                            note[0] ? json_string(note) : json_null()));
    else {
        printf("requeued %s -> %s %s\n", id, in.origin, mv->str);
        if (note[0])
            printf("  note: %s\n", note);
    }
out:
    if (rc != CLI_EXIT_OK) {
        if (json)
            json_array_append_new(
                failed, json_pack("{s:s, s:s}", "id", id, "error", why));
        else
            cli_error("%s", why);
    }
    weft_free(argv);
    weft_free(lens);
    freeReplyObject(r);
    freeReplyObject(mv);
    return rc;
}

static int drop_one(redisContext *c, const char *dlq, const char *id,
                    json_t *done, json_t *failed, bool json)
{
    char why[256];
    if (!valid_stream_id(id)) {
        snprintf(why, sizeof(why), "'%s' is not a stream entry id", id);
    } else {
        redisReply *r = cli_cmd(c, "XDEL %s %s", dlq, id);
        if (r == NULL) {
            snprintf(why, sizeof(why), "cannot delete the entry");
        } else {
            bool gone = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
            freeReplyObject(r);
            if (gone) {
                if (json)
                    json_array_append_new(done, json_string(id));
                else
                    printf("dropped %s\n", id);
                return CLI_EXIT_OK;
            }
            snprintf(why, sizeof(why), "no DLQ entry %s", id);
        }
    }
    if (json)
        json_array_append_new(failed,
                              json_pack("{s:s, s:s}", "id", id, "error", why));
    else
        cli_error("%s", why);
    return CLI_EXIT_FAIL;
}

int cmd_dlq(const struct cli_opts *o)
{
    const char *sub = o->args[0];
    bool list = strcmp(sub, "list") == 0;
    bool requeue = strcmp(sub, "requeue") == 0;
    bool drop = strcmp(sub, "drop") == 0;
    if (!list && !requeue && !drop) {
        fprintf(stderr,
                "weft dlq: unknown subcommand '%s' (list, requeue or drop)\n",
                sub);
        return CLI_EXIT_USAGE;
    }
    if (list && o->nargs != 1) {
        fprintf(stderr, "usage: weft dlq list [--limit N] [--json]\n");
        return CLI_EXIT_USAGE;
    }
    if (!list && (o->nargs < 2 || o->limit_set)) {
        fprintf(stderr, "usage: weft dlq %s ID... [--json]\n", sub);
        return CLI_EXIT_USAGE;
    }
    if (o->nargs - 1 > DLQ_IDS_MAX) {
        fprintf(stderr, "weft dlq: at most %d ids at a time\n", DLQ_IDS_MAX);
        return CLI_EXIT_USAGE;
    }
    struct keys k;
    int rc = cli_keys(o, &k);
    if (rc != CLI_EXIT_OK)
        return rc;
    char dlq[KEYS_MAX];
    keys_global(&k, KEYS_DLQ, dlq);
    redisContext *c = cli_connect(o);
    if (c == NULL)
        return CLI_EXIT_FAIL;
    if (list) {
        rc = dlq_list(o, c, &k, dlq);
        redisFree(c);
        return rc;
    }
    json_t *done = json_array(), *failed = json_array();
    if (done == NULL || failed == NULL) {
        json_decref(done);
        json_decref(failed);
        redisFree(c);
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    rc = CLI_EXIT_OK;
    for (int i = 1; i < o->nargs; i++) {
        int one =
            requeue ? requeue_one(c, &k, dlq, o->args[i], done, failed, o->json)
                    : drop_one(c, dlq, o->args[i], done, failed, o->json);
        if (one != CLI_EXIT_OK)
            rc = CLI_EXIT_FAIL;
        if (c->err)
            break; /* the connection is gone: the rest would fail too */
    }
    redisFree(c);
    if (o->json) {
        int prc = cli_print_json(json_pack("{s:o, s:o}",
                                           requeue ? "requeued" : "dropped",
                                           done, "failed", failed));
        return rc == CLI_EXIT_OK ? prc : rc;
    }
    json_decref(done);
    json_decref(failed);
    return rc;
}
