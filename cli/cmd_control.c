/* cmd_control.c - the commands a person answers a run with:
 *
 *   weft retry RUN [--from STEP]                  run a finished run again
 *   weft resolve RUN STEP --retry|--skip|--fail   answer an escalation
 *   weft approve RUN STEP [--reject]              answer an approval step
 *
 * Each checks what it can against Redis first (the run exists, the step
 * exists and waits, the person may approve), printing why not and
 * exiting 1 before anything is written; then it adds one control event
 * to the events stream (docs/protocol.md, "Control events") and exits 0.
 * The transition itself is the scheduler's, which checks again: the
 * events carry what the command saw (the step's attempt, the run's retry
 * count), so a request that raced with another answer, or was sent
 * twice, changes nothing the second time. Nothing here waits for the
 * scheduler, like `weft cancel`.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "diag.h"
#include "num.h"

/* Who asks, when --by is not given: the login name, else this. */
#define CONTROL_DEFAULT_BY "cli"

/* A control request being built: the fields of the event. */
struct control {
    const char *type;   /* retry | resolve | approve */
    const char *run;    /* borrowed from argv */
    const char *step;   /* NULL for a retry without --from */
    const char *action; /* resolve, approve */
    const char *by;
    char *set;        /* compact JSON, owned; NULL: none */
    char attempt[24]; /* the attempt that waits; "" for retry */
    char seq[24];     /* retry: the run's retry count; "" otherwise */
    char status[32];  /* the run's status as read */
};

static const char *who(const struct cli_opts *o)
{
    if (o->by != NULL)
        return o->by;
    const char *u = getenv("USER");
    if (u == NULL || u[0] == '\0')
        u = getenv("LOGNAME");
    return u != NULL && u[0] != '\0' ? u : CONTROL_DEFAULT_BY;
}

/* Checks --by and --comment; CLI_EXIT_OK or CLI_EXIT_USAGE (printed). */
static int check_text(const struct cli_opts *o, const char *by)
{
    if (strlen(by) == 0 || strlen(by) > CLI_TEXT_MAX) {
        cli_error("--by: expected a name of 1 to %d bytes", CLI_TEXT_MAX);
        return CLI_EXIT_USAGE;
    }
    if (o->comment != NULL && strlen(o->comment) > CLI_TEXT_MAX) {
        cli_error("--comment: at most %d bytes", CLI_TEXT_MAX);
        return CLI_EXIT_USAGE;
    }
    json_t *a = json_string(by);
    json_t *b = o->comment ? json_string(o->comment) : json_null();
    bool ok = a != NULL && b != NULL;
    json_decref(a);
    json_decref(b);
    if (!ok) {
        cli_error("--by and --comment must be UTF-8 text");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* Parses --set into c->set; CLI_EXIT_OK or CLI_EXIT_USAGE (printed). */
static int parse_sets(const struct cli_opts *o, struct control *c)
{
    if (o->nsets == 0)
        return CLI_EXIT_OK;
    json_t *set = NULL;
    char why[256];
    if (fmt_parse_sets(o->sets, o->nsets, &set, why, sizeof(why)) != 0) {
        fprintf(stderr, "weft %s: %s\n", o->cmd, why);
        return CLI_EXIT_USAGE;
    }
    c->set = json_dumps(set, JSON_COMPACT);
    json_decref(set);
    if (c->set == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* Adds the event and prints the outcome. */
static int send_event(redisContext *rc, const struct keys *k,
                      const struct cli_opts *o, const struct control *c)
{
    char events[KEYS_MAX];
    keys_global(k, KEYS_EVENTS, events);
    const char *argv[24];
    size_t n = 0;
    argv[n++] = "XADD";
    argv[n++] = events;
    argv[n++] = "*";
    argv[n++] = "type";
    argv[n++] = c->type;
    argv[n++] = "run";
    argv[n++] = c->run;
    if (c->step) {
        argv[n++] = "step";
        argv[n++] = c->step;
    }
    if (c->action) {
        argv[n++] = "action";
        argv[n++] = c->action;
    }
    if (c->attempt[0]) {
        argv[n++] = "attempt";
        argv[n++] = c->attempt;
    }
    if (c->seq[0]) {
        argv[n++] = "seq";
        argv[n++] = c->seq;
    }
    argv[n++] = "by";
    argv[n++] = c->by;
    if (o->comment) {
        argv[n++] = "comment";
        argv[n++] = o->comment;
    }
    if (c->set) {
        argv[n++] = "set";
        argv[n++] = c->set;
    }
    redisReply *r = redisCommandArgv(rc, (int)n, argv, NULL);
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        cli_error("redis: %s", r == NULL ? rc->errstr
                               : r->type == REDIS_REPLY_ERROR
                                   ? r->str
                                   : "unexpected reply");
        freeReplyObject(r);
        return CLI_EXIT_FAIL;
    }
    int rc_out = CLI_EXIT_OK;
    if (o->json) {
        json_t *doc =
            json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s, s:s}", "run", c->run,
                      "type", c->type, "step", c->step, "action", c->action,
                      "by", c->by, "status", c->status, "event", r->str);
        if (doc && c->set) {
            json_t *set = json_loads(c->set, 0, NULL);
            json_object_set_new(doc, "set", set ? set : json_null());
        }
        rc_out = cli_print_json(doc);
    } else if (strcmp(c->type, "retry") == 0) {
        printf("retry of run %s%s%s requested by %s\n", c->run,
               c->step ? " from step " : "", c->step ? c->step : "", c->by);
    } else {
        printf("%s (%s) of step %s of run %s requested by %s\n", c->type,
               c->action, c->step, c->run, c->by);
    }
    freeReplyObject(r);
    return rc_out;
}

/* Reads the run's status into c->status. CLI_EXIT_OK, or CLI_EXIT_FAIL
 * (printed: unknown run, Redis). */
static int read_run(redisContext *rc, const struct keys *k, struct control *c,
                    int64_t *retries, char **digest)
{
    char hkey[KEYS_MAX];
    keys_run(k, KEYS_RUN, c->run, hkey);
    redisReply *r = cli_cmd(rc, "HMGET %s status retries digest", hkey);
    if (r == NULL)
        return CLI_EXIT_FAIL;
    int out = CLI_EXIT_FAIL;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        cli_error("run %s not found", c->run);
        goto done;
    }
    snprintf(c->status, sizeof(c->status), "%s", r->element[0]->str);
    int64_t n = 0;
    if (r->element[1]->type == REDIS_REPLY_STRING &&
        num_parse_i64(r->element[1]->str, r->element[1]->len, 0, INT64_MAX,
                      &n) != 0) {
        cli_error("run %s: unreadable retry count", c->run);
        goto done;
    }
    if (retries)
        *retries = n;
    if (digest && r->element[2]->type == REDIS_REPLY_STRING &&
        (*digest = weft_strdup(r->element[2]->str)) == NULL) {
        cli_error("out of memory");
        goto done;
    }
    out = CLI_EXIT_OK;
done:
    freeReplyObject(r);
    return out;
}

/* Loads the run's pinned definition; NULL after printing why. */
static struct wf *read_def(redisContext *rc, const struct keys *k,
                           const char *run, const char *digest)
{
    if (digest == NULL) {
        cli_error("run %s has no definition", run);
        return NULL;
    }
    struct wf *wf = rundoc_load_def(rc, k, digest);
    if (wf == NULL)
        cli_error("run %s: its definition is missing or unreadable", run);
    return wf;
}

int cmd_retry(const struct cli_opts *o)
{
    struct keys k;
    int rc = cli_keys(o, &k);
    if (rc != CLI_EXIT_OK)
        return rc;
    struct control c = {.type = "retry", .run = o->args[0], .by = who(o)};
    if (!keys_valid_id(c.run, strlen(c.run))) {
        cli_error("'%s' is not a valid run id", c.run);
        return CLI_EXIT_USAGE;
    }
    if (o->from != NULL && !keys_valid_id(o->from, strlen(o->from))) {
        cli_error("--from: '%s' is not a valid step id", o->from);
        return CLI_EXIT_USAGE;
    }
    if ((rc = check_text(o, c.by)) != CLI_EXIT_OK)
        return rc;
    c.step = o->from;
    redisContext *conn = cli_connect(o);
    if (conn == NULL)
        return CLI_EXIT_FAIL;
    int64_t retries = 0;
    char *digest = NULL;
    struct wf *wf = NULL;
    rc = read_run(conn, &k, &c, &retries, &digest);
    if (rc != CLI_EXIT_OK)
        goto out;
    rc = CLI_EXIT_FAIL;
    bool failed =
        strcmp(c.status, "failed") == 0 || strcmp(c.status, "cancelled") == 0;
    if (!failed && !(c.step && strcmp(c.status, "success") == 0)) {
        cli_error("run %s is %s: only a run that failed or was cancelled can "
                  "be retried%s",
                  c.run, c.status,
                  strcmp(c.status, "success") == 0
                      ? " (use --from STEP to run steps of a run that "
                        "succeeded again)"
                      : "");
        goto out;
    }
    if (digest == NULL) {
        /* A task that could not start is recorded as a failed run without
         * steps: there is nothing to run again. */
        cli_error("run %s never started (see weft status %s): submit its "
                  "task again",
                  c.run, c.run);
        goto out;
    }
    if (c.step) {
        if ((wf = read_def(conn, &k, c.run, digest)) == NULL)
            goto out;
        if (wf_find_step(wf, c.step, strlen(c.step)) == NULL) {
            cli_error("run %s has no step '%s'", c.run, c.step);
            goto out;
        }
    }
    snprintf(c.seq, sizeof(c.seq), "%lld", (long long)retries);
    rc = send_event(conn, &k, o, &c);
out:
    wf_free(wf);
    weft_free(digest);
    redisFree(conn);
    return rc;
}

/* What resolve and approve share: the step exists in the run and waits
 * for a person (wait kind and approvers read too). */
static int read_waiting_step(redisContext *rc, const struct keys *k,
                             struct control *c, char *wait, size_t wsize,
                             json_t **approvers)
{
    char skey[KEYS_MAX];
    keys_run(k, KEYS_RUN_STEPS, c->run, skey);
    redisReply *r = cli_cmd(rc, "HMGET %s %s %s:attempt %s:wait %s:approvers",
                            skey, c->step, c->step, c->step, c->step);
    if (r == NULL)
        return CLI_EXIT_FAIL;
    int out = CLI_EXIT_FAIL;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        cli_error("redis: unexpected reply to HMGET %s", skey);
        goto done;
    }
    const redisReply *st = r->element[0];
    if (st->type != REDIS_REPLY_STRING) {
        cli_error("run %s has no step '%s'", c->run, c->step);
        goto done;
    }
    if (strcmp(st->str, "waiting_for_human") != 0) {
        cli_error("step %s of run %s is not waiting for a human (it is %s)",
                  c->step, c->run, st->str);
        goto done;
    }
    int64_t a = 0;
    if (r->element[1]->type == REDIS_REPLY_STRING &&
        num_parse_i64(r->element[1]->str, r->element[1]->len, 0, UINT32_MAX,
                      &a) == 0 &&
        a > 0)
        snprintf(c->attempt, sizeof(c->attempt), "%lld", (long long)a);
    snprintf(wait, wsize, "%s",
             r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str
                                                       : "");
    if (approvers != NULL && r->element[3]->type == REDIS_REPLY_STRING)
        *approvers = json_loads(r->element[3]->str, 0, NULL);
    out = CLI_EXIT_OK;
done:
    freeReplyObject(r);
    return out;
}

/* Checks the arguments resolve and approve share; CLI_EXIT_OK or
 * CLI_EXIT_USAGE (printed). */
static int check_step_args(const struct cli_opts *o, struct control *c)
{
    c->run = o->args[0];
    c->step = o->args[1];
    c->by = who(o);
    if (!keys_valid_id(c->run, strlen(c->run))) {
        cli_error("'%s' is not a valid run id", c->run);
        return CLI_EXIT_USAGE;
    }
    if (!keys_valid_id(c->step, strlen(c->step))) {
        cli_error("'%s' is not a valid step id", c->step);
        return CLI_EXIT_USAGE;
    }
    return check_text(o, c->by);
}

int cmd_resolve(const struct cli_opts *o)
{
    struct keys k;
    int rc = cli_keys(o, &k);
    if (rc != CLI_EXIT_OK)
        return rc;
    struct control c = {.type = "resolve", .action = o->action};
    if (o->action == NULL) {
        fprintf(stderr, "weft resolve: give one of --retry, --skip and "
                        "--fail\n");
        return CLI_EXIT_USAGE;
    }
    if ((rc = check_step_args(o, &c)) != CLI_EXIT_OK ||
        (rc = parse_sets(o, &c)) != CLI_EXIT_OK) {
        weft_free(c.set);
        return rc;
    }
    redisContext *conn = cli_connect(o);
    if (conn == NULL) {
        weft_free(c.set);
        return CLI_EXIT_FAIL;
    }
    char wait[32];
    rc = read_run(conn, &k, &c, NULL, NULL);
    if (rc == CLI_EXIT_OK)
        rc = read_waiting_step(conn, &k, &c, wait, sizeof(wait), NULL);
    if (rc == CLI_EXIT_OK)
        rc = send_event(conn, &k, o, &c);
    weft_free(c.set);
    redisFree(conn);
    return rc;
}

/* True when the approvers list (a JSON array, or NULL for anyone) names
 * by. */
static bool may_approve(const json_t *approvers, const char *by)
{
    if (!json_is_array(approvers))
        return true;
    size_t i;
    json_t *a;
    json_array_foreach(approvers, i, a)
    {
        if (json_is_string(a) && strcmp(json_string_value(a), by) == 0)
            return true;
    }
    return false;
}

int cmd_approve(const struct cli_opts *o)
{
    struct keys k;
    int rc = cli_keys(o, &k);
    if (rc != CLI_EXIT_OK)
        return rc;
    struct control c = {.type = "approve",
                        .action = o->reject ? "reject" : "approve"};
    if ((rc = check_step_args(o, &c)) != CLI_EXIT_OK ||
        (rc = parse_sets(o, &c)) != CLI_EXIT_OK) {
        weft_free(c.set);
        return rc;
    }
    redisContext *conn = cli_connect(o);
    if (conn == NULL) {
        weft_free(c.set);
        return CLI_EXIT_FAIL;
    }
    char wait[32];
    json_t *approvers = NULL;
    rc = read_run(conn, &k, &c, NULL, NULL);
    if (rc == CLI_EXIT_OK)
        rc = read_waiting_step(conn, &k, &c, wait, sizeof(wait), &approvers);
    if (rc == CLI_EXIT_OK && strcmp(wait, "approval") != 0) {
        cli_error("step %s of run %s waits for a resolution, not an approval "
                  "(use weft resolve)",
                  c.step, c.run);
        rc = CLI_EXIT_FAIL;
    }
    if (rc == CLI_EXIT_OK && !may_approve(approvers, c.by)) {
        char *names = json_dumps(approvers, JSON_COMPACT);
        cli_error("'%s' is not one of the approvers of step %s: %s (use "
                  "--by NAME)",
                  c.by, c.step, names ? names : "?");
        weft_free(names);
        rc = CLI_EXIT_FAIL;
    }
    if (rc == CLI_EXIT_OK)
        rc = send_event(conn, &k, o, &c);
    json_decref(approvers);
    weft_free(c.set);
    redisFree(conn);
    return rc;
}
