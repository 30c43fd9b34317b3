/* cmd_list.c - `weft list [--status S] [--limit N] [--json]`: runs from
 * the `<prefix>:runs` zset, newest first, with their status, workflow
 * and times. Runs whose header has expired (retention) are left out.
 * Reads the zset a page at a time and pipelines the header reads, so a
 * filter that matches few runs still costs a round trip per page, not
 * per run.
 */
#include "cli.h"

#include <string.h>

#include "num.h"

/* Shown when --limit is not given: a screenful. */
#define LIST_DEFAULT_LIMIT 50
/* Run ids read per ZREVRANGE. */
#define LIST_PAGE 256

static const char *known_status[] = {"pending",   "running",
                                     "success",   "failed",
                                     "cancelled", "waiting_for_human"};

static bool valid_status(const char *s)
{
    for (size_t i = 0; i < sizeof(known_status) / sizeof(*known_status); i++) {
        if (strcmp(s, known_status[i]) == 0)
            return true;
    }
    return false;
}

static const char *elem_str(const redisReply *r, size_t i)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
        r->element[i]->type != REDIS_REPLY_STRING)
        return NULL;
    return r->element[i]->str;
}

static int64_t elem_i64(const redisReply *r, size_t i)
{
    const char *s = elem_str(r, i);
    int64_t n;
    if (s == NULL || num_parse_i64(s, strlen(s), 0, INT64_MAX, &n) != 0)
        return -1;
    return n;
}

int cmd_list(const struct cli_opts *o)
{
    struct keys k;
    int rc = cli_keys(o, &k);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (o->status != NULL && !valid_status(o->status)) {
        fprintf(stderr,
                "weft list: --status: expected pending, running, success, "
                "failed, cancelled or waiting_for_human, got '%s'\n",
                o->status);
        return CLI_EXIT_USAGE;
    }
    uint32_t limit = o->limit_set ? o->limit : LIST_DEFAULT_LIMIT;
    char runs_key[KEYS_MAX];
    keys_global(&k, KEYS_RUNS, runs_key);
    redisContext *c = cli_connect(o);
    if (c == NULL)
        return CLI_EXIT_FAIL;
    json_t *out = json_array();
    if (out == NULL) {
        redisFree(c);
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    rc = CLI_EXIT_OK;
    bool header = false;
    size_t shown = 0;
    for (long start = 0; rc == CLI_EXIT_OK && (limit == 0 || shown < limit);
         start += LIST_PAGE) {
        redisReply *ids = cli_cmd(c, "ZREVRANGE %s %ld %ld", runs_key, start,
                                  start + LIST_PAGE - 1);
        if (ids == NULL) {
            rc = CLI_EXIT_FAIL;
            break;
        }
        size_t n = ids->type == REDIS_REPLY_ARRAY ? ids->elements : 0;
        size_t sent = 0;
        for (size_t i = 0; i < n; i++) {
            char hkey[KEYS_MAX];
            const char *id = elem_str(ids, i);
            /* An id that cannot name a key gets a placeholder command so
             * replies stay in step with ids. */
            if (id == NULL || keys_run(&k, KEYS_RUN, id, hkey) == 0)
                hkey[0] = '\0';
            redisAppendCommand(c, "HMGET %s status workflow created finished",
                               hkey[0] ? hkey : "\x01");
            sent++;
        }
        for (size_t i = 0; i < sent; i++) {
            redisReply *h = cli_get_reply(c);
            if (h == NULL) {
                rc = CLI_EXIT_FAIL;
                if (c->err)
                    break;
                continue;
            }
            const char *id = elem_str(ids, i);
            const char *status = elem_str(h, 0);
            bool want = id != NULL && status != NULL &&
                        (o->status == NULL || strcmp(status, o->status) == 0) &&
                        (limit == 0 || shown < limit);
            if (want) {
                shown++;
                const char *wfname = elem_str(h, 1);
                int64_t created = elem_i64(h, 2), finished = elem_i64(h, 3);
                if (o->json) {
                    json_array_append_new(
                        out,
                        json_pack("{s:s, s:s, s:o, s:o, s:o}", "id", id,
                                  "status", status, "workflow",
                                  wfname ? json_string(wfname) : json_null(),
                                  "created",
                                  created >= 0 ? json_integer(created)
                                               : json_null(),
                                  "finished",
                                  finished >= 0 ? json_integer(finished)
                                                : json_null()));
                } else {
                    char t[64], d[32];
                    if (!header) {
                        printf("%-28s  %-17s  %-24s  %-24s  %s\n", "RUN",
                               "STATUS", "WORKFLOW", "CREATED", "TOOK");
                        header = true;
                    }
                    fmt_time(created, t, sizeof(t));
                    fmt_duration(finished >= created && created >= 0
                                     ? finished - created
                                     : -1,
                                 d, sizeof(d));
                    printf("%-28s  %-17s  %-24s  %-24s  %s\n", id, status,
                           wfname ? wfname : "-", t, d);
                }
            }
            freeReplyObject(h);
        }
        freeReplyObject(ids);
        if (n < LIST_PAGE || c->err)
            break;
    }
    redisFree(c);
    if (o->json) {
        int prc = cli_print_json(json_pack("{s:o}", "runs", out));
        return rc == CLI_EXIT_OK ? prc : rc;
    }
    json_decref(out);
    if (rc == CLI_EXIT_OK && !header)
        printf("no runs\n");
    return rc;
}
