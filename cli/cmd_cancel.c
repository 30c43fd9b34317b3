/* cmd_cancel.c - `weft cancel RUN [--json]`: asks the schedulers to
 * cancel a run by adding `type cancel run RUN reason ...` to the events
 * stream (docs/protocol.md). The cancel transition itself is the
 * scheduler's; this only checks that the run exists and is not finished.
 * Exit 0 when the request was sent (or the run had already ended), 1 for
 * an unknown run or a Redis error.
 */
#include "cli.h"

#include <string.h>

#define CANCEL_REASON "cancelled by user"

int cmd_cancel(const struct cli_opts *o)
{
    struct keys k;
    int rc = cli_keys(o, &k);
    if (rc != CLI_EXIT_OK)
        return rc;
    const char *run = o->args[0];
    char hkey[KEYS_MAX], events[KEYS_MAX];
    if (keys_run(&k, KEYS_RUN, run, hkey) == 0) {
        cli_error("'%s' is not a valid run id", run);
        return CLI_EXIT_USAGE;
    }
    keys_global(&k, KEYS_EVENTS, events);
    redisContext *c = cli_connect(o);
    if (c == NULL)
        return CLI_EXIT_FAIL;
    rc = CLI_EXIT_FAIL;
    redisReply *st = cli_cmd(c, "HGET %s status", hkey);
    redisReply *ev = NULL;
    if (st == NULL)
        goto out;
    if (st->type != REDIS_REPLY_STRING) {
        cli_error("run %s not found", run);
        goto out;
    }
    if (strcmp(st->str, "pending") != 0 && strcmp(st->str, "running") != 0 &&
        strcmp(st->str, "waiting_for_human") != 0) {
        if (o->json)
            rc = cli_print_json(json_pack("{s:s, s:b, s:s}", "run", run,
                                          "requested", 0, "status", st->str));
        else
            rc = printf("run %s already ended: %s\n", run, st->str) < 0
                     ? CLI_EXIT_FAIL
                     : CLI_EXIT_OK;
        goto out;
    }
    ev = cli_cmd(c, "XADD %s * type cancel run %s reason %s", events, run,
                 CANCEL_REASON);
    if (ev == NULL)
        goto out;
    if (o->json) {
        rc = cli_print_json(json_pack(
            "{s:s, s:b, s:s, s:s}", "run", run, "requested", 1, "status",
            st->str, "event", ev->type == REDIS_REPLY_STRING ? ev->str : ""));
    } else {
        printf("cancel requested for run %s\n", run);
        rc = CLI_EXIT_OK;
    }
out:
    freeReplyObject(st);
    freeReplyObject(ev);
    redisFree(c);
    return rc;
}
