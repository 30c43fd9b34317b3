/* cmd_watch.c - `weft watch RUN [--json]`: prints a run's transitions
 * from its history stream as they happen, from the first one, until the
 * run ends (success, failed, cancelled) or waits for a human; the run
 * entries of a retried run (weft retry) are followed to its latest end,
 * not its first. Plain lines
 * by default, one JSON object per line with --json. Exit 0 when the run
 * succeeded, 1 otherwise.
 */
#include "cli.h"

#include <string.h>

/* A run id printed by `weft submit` names a run the scheduler may not
 * have created yet: wait this long for its header before giving up. */
#define WATCH_APPEAR_MS 3000
/* XREAD BLOCK per round; between rounds the run header is checked, so a
 * run whose history was trimmed still ends the watch. */
#define WATCH_BLOCK_MS 1000

struct watch {
    bool json;
    bool ended; /* a run entry with a final status was seen */
};

static void on_entry(void *ud, const struct hist_entry *e)
{
    struct watch *w = ud;
    hist_print(e, w->json, stdout);
    /* A run that ended may run again (weft retry): the latest run entry
     * says whether it ended. */
    if (strcmp(e->type, "run") == 0)
        w->ended = rundoc_is_final(e->status);
}

/* The run's status into out (size n), or "" when the run does not exist.
 * -1 on a Redis error (printed). */
static int run_status(redisContext *c, const char *hkey, char *out, size_t n)
{
    redisReply *r = cli_cmd(c, "HGET %s status", hkey);
    if (r == NULL)
        return -1;
    out[0] = '\0';
    if (r->type == REDIS_REPLY_STRING)
        snprintf(out, n, "%s", r->str);
    freeReplyObject(r);
    return 0;
}

int cmd_watch(const struct cli_opts *o)
{
    struct keys k;
    int rc = cli_keys(o, &k);
    if (rc != CLI_EXIT_OK)
        return rc;
    const char *run = o->args[0];
    char hkey[KEYS_MAX];
    if (keys_run(&k, KEYS_RUN, run, hkey) == 0) {
        cli_error("'%s' is not a valid run id", run);
        return CLI_EXIT_USAGE;
    }
    redisContext *c = cli_connect(o);
    if (c == NULL)
        return CLI_EXIT_FAIL;
    char status[64];
    int64_t until = cli_mono_ms() + WATCH_APPEAR_MS;
    for (;;) {
        if (run_status(c, hkey, status, sizeof(status)) != 0) {
            redisFree(c);
            return CLI_EXIT_FAIL;
        }
        if (status[0] != '\0' || cli_mono_ms() >= until)
            break;
        cli_sleep_ms(100);
    }
    if (status[0] == '\0') {
        cli_error("run %s not found", run);
        redisFree(c);
        return CLI_EXIT_FAIL;
    }
    struct hist_follow f;
    hist_init(&f, c, &k, run);
    struct watch w = {o->json, false};
    for (;;) {
        int n = hist_read(&f, WATCH_BLOCK_MS, on_entry, &w);
        if (n < 0) {
            redisFree(c);
            return CLI_EXIT_FAIL;
        }
        if (n >= CLI_HIST_READ_COUNT)
            continue;
        if (w.ended)
            break;
        /* Drained: the header says whether more can come. */
        if (run_status(c, hkey, status, sizeof(status)) != 0) {
            redisFree(c);
            return CLI_EXIT_FAIL;
        }
        if (status[0] == '\0') {
            cli_error("run %s disappeared (expired or deleted)", run);
            redisFree(c);
            return CLI_EXIT_FAIL;
        }
        if (rundoc_is_final(status))
            break;
    }
    /* The final word is the header's (a run entry may have been
     * trimmed). */
    if (run_status(c, hkey, status, sizeof(status)) != 0)
        status[0] = '\0';
    redisFree(c);
    if (strcmp(status, "waiting_for_human") == 0)
        fprintf(stderr,
                "weft: run %s is waiting for a human: a step escalated or "
                "waits for an approval (see `weft status %s`)\n",
                run, run);
    return strcmp(status, "success") == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
