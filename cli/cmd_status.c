/* cmd_status.c - `weft status RUN [--json]`: a run's header and a table
 * of its steps (rundoc.c), read once from Redis. Exit 0 when the run
 * exists (whatever its status), 1 when it does not.
 */
#include "cli.h"

#include <string.h>

int cmd_status(const struct cli_opts *o)
{
    struct keys k;
    int rc = cli_keys(o, &k);
    if (rc != CLI_EXIT_OK)
        return rc;
    const char *run = o->args[0];
    if (!keys_valid_id(run, strlen(run))) {
        cli_error("'%s' is not a valid run id", run);
        return CLI_EXIT_USAGE;
    }
    redisContext *c = cli_connect(o);
    if (c == NULL)
        return CLI_EXIT_FAIL;
    json_t *doc = NULL;
    struct wf *wf = NULL;
    int lrc = rundoc_load(c, &k, run, &doc, &wf);
    redisFree(c);
    if (lrc == WEFT_ENOENT) {
        cli_error("run %s not found", run);
        return CLI_EXIT_FAIL;
    }
    if (lrc != 0)
        return CLI_EXIT_FAIL;
    if (o->json) {
        rc = cli_print_json(doc);
    } else {
        rundoc_print(doc, wf, stdout);
        json_decref(doc);
    }
    wf_free(wf);
    return rc;
}
