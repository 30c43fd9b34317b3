/* cmd_submit.c - `weft submit [FILE] [--task T.json | --tasks T.jsonl]`:
 * pin the workflow's definition in Redis and add one task entry per run
 * to the intake stream (docs/protocol.md, `weft:tasks`). Without FILE the
 * task goes through the coordinator: the scheduler picks the workflow by
 * its routes (workflows/routes.yml).
 *
 * A submitted run is: `SET <prefix>:def:<digest> <canonical> NX` (the
 * definition the run is pinned to; identical files share it), then
 * `XADD <prefix>:tasks * run <id> digest <digest> workflow <name>
 * type <task.type or ""> task <task JSON>`. The run id is chosen here,
 * `<ms since epoch>-<8 hex random>`, so it can be printed at once and a
 * redelivered entry still creates the run only once. --tasks pipelines
 * the XADDs (CLI_SUBMIT_WINDOW in flight) for batch work.
 *
 * Every task is read and checked before anything is sent, so a bad line
 * in a batch submits nothing.
 */
#include "cli.h"

#include <string.h>

#include <openssl/rand.h>

#include "alloc.h"
#include "diag.h"
#include "error.h"

/* A batch file holds many tasks; bounded so a wrong file cannot eat the
 * machine. */
#define CLI_TASKS_MAX (512u * 1024 * 1024)
/* Pipelined XADDs in flight: enough to hide the round trip, small enough
 * that the output buffer stays a few MB. */
#define CLI_SUBMIT_WINDOW 512
/* Task file problems reported before giving up (like DIAG_MAX_ENTRIES). */
#define CLI_TASK_ERRORS_MAX 50

int submit_load_workflow(const char *path, struct wf **out)
{
    struct diag d;
    diag_init(&d, path);
    int rc = wf_load_file(path, out, &d);
    if (rc != 0 && d.errors == 0)
        diag_error(&d, 0, 0, "%s", weft_strerror(rc));
    diag_sort(&d);
    diag_print(&d, stderr);
    diag_deinit(&d);
    return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* Parses one task; line_base is added to jansson's line (for JSONL). */
static json_t *parse_task(const char *path, const char *text, size_t len,
                          int line_base)
{
    json_error_t je;
    json_t *t = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (t == NULL) {
        fprintf(stderr, "%s:%d:%d: error: invalid JSON: %s\n", path,
                (je.line > 0 ? je.line : 1) + line_base,
                je.column > 0 ? je.column : 0, je.text);
        return NULL;
    }
    if (!json_is_object(t)) {
        fprintf(stderr, "%s:%d:1: error: a task must be a JSON object\n", path,
                1 + line_base);
        json_decref(t);
        return NULL;
    }
    return t;
}

int submit_read_task(const char *path, json_t **out)
{
    if (path == NULL) {
        *out = json_object();
        return *out ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    char *text;
    size_t len;
    if (cli_read_file(path, CLI_TASK_MAX, &text, &len) != 0)
        return CLI_EXIT_FAIL;
    json_t *t = parse_task(path, text, len, 0);
    weft_free(text);
    if (t == NULL)
        return CLI_EXIT_FAIL;
    *out = t;
    return CLI_EXIT_OK;
}

static int make_run_id(char *out)
{
    unsigned char rnd[4];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        cli_error("cannot generate a run id: random generator failed");
        return CLI_EXIT_FAIL;
    }
    size_t n = fmt_run_id(cli_now_ms(), rnd, out, CLI_RUN_ID_MAX + 1);
    return keys_valid_id(out, n) ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* Stores the definition and prepares the intake stream. */
static int store_def(redisContext *c, const struct keys *k, const struct wf *wf,
                     char *tasks_key)
{
    char defkey[KEYS_MAX];
    if (keys_global(k, KEYS_TASKS, tasks_key) == 0 ||
        (wf != NULL && keys_def(k, wf->digest, defkey) == 0)) {
        cli_error("cannot build key names");
        return CLI_EXIT_FAIL;
    }
    if (wf == NULL) /* routed by the coordinator: no definition to pin */
        return cli_ensure_group(c, tasks_key, KEYS_GROUP_SCHEDULERS);
    redisReply *r =
        cli_cmd(c, "SET %s %b NX", defkey, wf->canonical, wf->canonical_len);
    if (r == NULL)
        return CLI_EXIT_FAIL;
    freeReplyObject(r);
    return cli_ensure_group(c, tasks_key, KEYS_GROUP_SCHEDULERS);
}

/* Appends (pipelines) one XADD for task. */
static int append_task(redisContext *c, const char *tasks_key,
                       const struct wf *wf, const json_t *task, char *run_id)
{
    if (make_run_id(run_id) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    char *text = json_dumps(task, JSON_COMPACT);
    if (text == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    const char *type = json_string_value(json_object_get(task, "type"));
    int rc = wf ? redisAppendCommand(c,
                                     "XADD %s * run %s digest %s workflow %s "
                                     "type %s task %s",
                                     tasks_key, run_id, wf->digest, wf->name,
                                     type ? type : "", text)
                : redisAppendCommand(c, "XADD %s * run %s type %s task %s",
                                     tasks_key, run_id, type ? type : "", text);
    weft_free(text);
    if (rc != REDIS_OK) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

int submit_one(redisContext *c, const struct keys *k, const struct wf *wf,
               const json_t *task, char *run_id)
{
    char tasks_key[KEYS_MAX];
    if (store_def(c, k, wf, tasks_key) != CLI_EXIT_OK ||
        append_task(c, tasks_key, wf, task, run_id) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    redisReply *r = cli_get_reply(c);
    if (r == NULL)
        return CLI_EXIT_FAIL;
    freeReplyObject(r);
    return CLI_EXIT_OK;
}

/* Reads every line of a JSONL file into an array of tasks. Blank lines
 * are skipped. CLI_EXIT_FAIL after printing every bad line (up to
 * CLI_TASK_ERRORS_MAX). */
static int read_tasks(const char *path, json_t **out)
{
    char *text;
    size_t len;
    if (cli_read_file(path, CLI_TASKS_MAX, &text, &len) != 0)
        return CLI_EXIT_FAIL;
    json_t *arr = json_array();
    int errors = 0;
    int line = 0;
    for (size_t pos = 0; pos < len && arr != NULL;) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl ? 1 : 0);
        line++;
        size_t blank = 0;
        while (blank < n &&
               (s[blank] == ' ' || s[blank] == '\t' || s[blank] == '\r'))
            blank++;
        if (blank == n)
            continue;
        json_t *t = parse_task(path, s, n, line - 1);
        if (t == NULL) {
            if (++errors >= CLI_TASK_ERRORS_MAX) {
                fprintf(stderr, "%s: error: too many errors, stopping\n", path);
                break;
            }
            continue;
        }
        if (json_array_append_new(arr, t) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    weft_free(text);
    if (arr == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    if (errors > 0) {
        json_decref(arr);
        return CLI_EXIT_FAIL;
    }
    *out = arr;
    return CLI_EXIT_OK;
}

/* Submits every task of arr, CLI_SUBMIT_WINDOW XADDs in flight, printing
 * each run id as its XADD is confirmed (or collecting them in ids). */
static int submit_batch(redisContext *c, const struct keys *k,
                        const struct wf *wf, const json_t *arr, json_t *ids)
{
    char tasks_key[KEYS_MAX];
    if (store_def(c, k, wf, tasks_key) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    size_t n = json_array_size(arr);
    char(*window)[CLI_RUN_ID_MAX + 1] =
        weft_malloc(CLI_SUBMIT_WINDOW * sizeof(*window));
    if (window == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    int rc = CLI_EXIT_OK;
    for (size_t base = 0; base < n && rc == CLI_EXIT_OK;
         base += CLI_SUBMIT_WINDOW) {
        size_t m = n - base < CLI_SUBMIT_WINDOW ? n - base : CLI_SUBMIT_WINDOW;
        size_t sent = 0;
        for (; sent < m; sent++) {
            if (append_task(c, tasks_key, wf, json_array_get(arr, base + sent),
                            window[sent]) != CLI_EXIT_OK) {
                rc = CLI_EXIT_FAIL;
                break;
            }
        }
        /* Read every reply that was sent, even after a failure, so the
         * runs that were added are all reported. */
        for (size_t i = 0; i < sent; i++) {
            redisReply *r = cli_get_reply(c);
            if (r == NULL) {
                rc = CLI_EXIT_FAIL;
                if (c->err)
                    break;
                continue;
            }
            freeReplyObject(r);
            if (ids != NULL)
                json_array_append_new(ids, json_string(window[i]));
            else
                printf("%s\n", window[i]);
        }
        if (c->err)
            break;
    }
    weft_free(window);
    return rc;
}

int cmd_submit(const struct cli_opts *o)
{
    if (o->task_file != NULL && o->tasks_file != NULL) {
        fprintf(stderr, "weft submit: --task and --tasks exclude each "
                        "other\n");
        return CLI_EXIT_USAGE;
    }
    struct keys k;
    int rc = cli_keys(o, &k);
    if (rc != CLI_EXIT_OK)
        return rc;
    struct wf *wf = NULL;
    json_t *tasks = NULL;
    redisContext *c = NULL;
    if (o->nargs > 0) {
        rc = submit_load_workflow(o->args[0], &wf);
        if (rc != CLI_EXIT_OK)
            goto out;
    }
    if (o->tasks_file != NULL) {
        rc = read_tasks(o->tasks_file, &tasks);
    } else {
        json_t *t = NULL;
        rc = submit_read_task(o->task_file, &t);
        if (rc == CLI_EXIT_OK) {
            tasks = json_array();
            if (tasks == NULL || json_array_append_new(tasks, t) != 0) {
                cli_error("out of memory");
                rc = CLI_EXIT_FAIL;
            }
        }
    }
    if (rc != CLI_EXIT_OK)
        goto out;
    c = cli_connect(o);
    if (c == NULL) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (o->tasks_file == NULL) {
        char id[CLI_RUN_ID_MAX + 1];
        rc = submit_one(c, &k, wf, json_array_get(tasks, 0), id);
        if (rc == CLI_EXIT_OK) {
            if (o->json)
                rc = cli_print_json(json_pack("{s:s}", "run", id));
            else
                printf("%s\n", id);
        }
    } else {
        json_t *ids = o->json ? json_array() : NULL;
        rc = submit_batch(c, &k, wf, tasks, ids);
        if (o->json) {
            int prc = cli_print_json(json_pack("{s:o}", "runs", ids));
            if (rc == CLI_EXIT_OK)
                rc = prc;
        }
    }
out:
    if (c != NULL)
        redisFree(c);
    json_decref(tasks);
    wf_free(wf);
    return rc;
}
