/* history.c - following a run's transitions as they happen, from the
 * stream `<prefix>:run:<id>:history` (docs/protocol.md). Each entry has
 * `type` (run, step or breaker), `step`, `status`, `ts` and extra fields
 * such as `attempt`, `worker`, `error`, `breaker`. Used by `weft watch` and
 * `weft run`.
 */
#include "cli.h"

#include <string.h>

#include "alloc.h"
#include "rundoc.h"

int hist_init(struct hist_follow *f, redisContext *c, const struct keys *k,
              const char *run)
{
    memset(f, 0, sizeof(*f));
    f->c = c;
    if (keys_run(k, KEYS_RUN_HISTORY, run, f->key) == 0)
        return WEFT_EINVAL;
    f->last[0] = '0';
    f->last[1] = '\0';
    return 0;
}

static void entry_from(const redisReply *e, struct hist_entry *out)
{
    const redisReply *fields = e->element[1];
    memset(out, 0, sizeof(*out));
    out->id = e->element[0]->str;
    out->fields = fields;
    out->entry = e;
    const char *type = cli_reply_str(fields, "type");
    const char *step = cli_reply_str(fields, "step");
    const char *status = cli_reply_str(fields, "status");
    out->type = type ? type : "";
    out->step = step ? step : "";
    out->status = status ? status : "";
    out->ts = cli_reply_i64(fields, "ts", -1);
}

int hist_read(struct hist_follow *f, int block_ms, hist_cb cb, void *ud)
{
    redisReply *r = cli_cmd(f->c, "XREAD COUNT %d BLOCK %d STREAMS %s %s",
                            CLI_HIST_READ_COUNT, block_ms, f->key, f->last);
    if (r == NULL)
        return -1;
    int n = 0;
    /* Nil: the block timed out. Otherwise [[key, [[id, [f, v...]]...]]]. */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2 &&
        r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; i < entries->elements; i++) {
            const redisReply *e = entries->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING ||
                e->element[0]->len >= CLI_STREAM_ID_MAX ||
                e->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            memcpy(f->last, e->element[0]->str, e->element[0]->len);
            f->last[e->element[0]->len] = '\0';
            struct hist_entry he;
            entry_from(e, &he);
            cb(ud, &he);
            n++;
        }
    }
    freeReplyObject(r);
    return n;
}

/* Fields the plain line shows in its columns (or, for the stamps, not
 * at all); the others follow as k=v. */
static bool is_core_field(const char *name, size_t len)
{
    static const char *const core[] = {"type", "step", "status",
                                       "ts",   "us",   "done_us"};
    for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++) {
        if (strlen(core[i]) == len && memcmp(core[i], name, len) == 0)
            return true;
    }
    return false;
}

void hist_print(const struct hist_entry *e, bool json, FILE *out)
{
    const redisReply *fl = e->fields;
    if (json) {
        json_t *o = rundoc_history_entry(e->entry);
        if (o == NULL)
            return;
        char *text = json_dumps(o, JSON_COMPACT);
        if (text != NULL) {
            fprintf(out, "%s\n", text);
            weft_free(text);
        }
        json_decref(o);
        fflush(out);
        return;
    }
    char t[64];
    fmt_time(e->ts, t, sizeof(t));
    if (strcmp(e->type, "run") == 0)
        fprintf(out, "%s  run   %-20s  %s", t, "", e->status);
    else if (strcmp(e->type, "breaker") == 0)
        fprintf(out, "%s  brkr  %-20s  %s", t, e->step, e->status);
    else if (strcmp(e->type, "step") == 0)
        fprintf(out, "%s  step  %-20s  %s", t, e->step, e->status);
    else /* control, rollback, and kinds a later version adds */
        fprintf(out, "%s  %-5s %-20s  %s", t, e->type, e->step, e->status);
    for (size_t i = 0; i + 1 < fl->elements; i += 2) {
        const redisReply *k = fl->element[i], *v = fl->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            is_core_field(k->str, k->len) || v->len == 0)
            continue;
        fprintf(out, "  %.*s=%.*s", (int)k->len, k->str, (int)v->len, v->str);
    }
    fputc('\n', out);
    fflush(out);
}
