/* cli.h - what the `weft` commands share: the parsed command line, the
 * Redis connection, output helpers, and the pieces two commands use
 * (submitting a run, reading a run's status, following its history).
 *
 * main.c parses argv into a struct cli_opts and calls one cmd_<name>()
 * function, which returns the process exit status (CLI_EXIT_*); nothing
 * else in cli/ exits or installs signal handlers. Commands print results
 * on stdout and problems on stderr, prefixed "weft: ".
 */
#ifndef WEFT_CLI_CLI_H
#define WEFT_CLI_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "keys.h"
#include "wfdef.h"

struct personas;

/* Exit statuses, the same for every command. */
#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1 /* invalid input, failed run, unknown run, Redis */
#define CLI_EXIT_USAGE 2 /* bad flags or arguments */

/* Redis when neither --redis nor REDIS_URL says otherwise. */
#define CLI_DEFAULT_REDIS "redis://127.0.0.1:6379"
/* Connecting (and AUTH/SELECT) must not hang a command forever. */
#define CLI_CONNECT_TIMEOUT_MS 5000
/* A task is a JSON object a person or a producer writes; larger is a
 * mistake (it is copied into every job of the run). */
#define CLI_TASK_MAX (4u * 1024 * 1024)
/* Longest run id we generate or accept: keys_valid_id's bound. */
#define CLI_RUN_ID_MAX KEYS_ID_MAX
/* Redis stream entry ids: two 64-bit numbers and a dash. */
#define CLI_STREAM_ID_MAX 48
/* History entries per XREAD: a burst of a wide fan-out comes in a few
 * reads. A read that returns fewer has drained the stream. */
#define CLI_HIST_READ_COUNT 512
/* `set` of a resolve or approve: the scheduler refuses more
 * (PLAN_SET_MAX, PLAN_SET_KEYS_MAX in scheduler/plan.h), so the CLI says
 * so before sending anything. */
#define CLI_SET_MAX      (64 * 1024)
#define CLI_SET_KEYS_MAX 256
/* `by` and `comment`: a name or a sentence (PLAN_TEXT_MAX). */
#define CLI_TEXT_MAX 1024

enum cli_graph_format { CLI_GRAPH_DOT, CLI_GRAPH_MERMAID };

/* The command line after parsing. Strings borrow argv or the
 * environment. */
struct cli_opts {
    const char *cmd; /* command name, for messages */
    char **args;     /* positional arguments */
    int nargs;
    bool json;          /* --json */
    const char *redis;  /* --redis, else REDIS_URL; NULL: the default */
    const char *prefix; /* --prefix, else WEFT_PREFIX; NULL: "weft" */
    enum cli_graph_format format; /* --format (graph) */
    const char *task_file;        /* --task (submit, run); NULL: {} */
    const char *tasks_file;       /* --tasks (submit) */
    const char *status;           /* --status (list) */
    uint32_t limit;               /* --limit (list, inspect); 0: no limit */
    bool limit_set;               /* --limit was given */
    uint32_t workers;             /* --workers (run) */
    uint32_t concurrency;         /* --concurrency (run); 0: worker default */
    const char *workflows;        /* --workflows DIR (run); default
                                     "workflows" */
    const char *from;             /* --from STEP (retry) */
    const char *action;           /* --retry, --skip or --fail (resolve) */
    const char **sets;            /* --set KEY=VALUE, in order */
    int nsets;
    const char *by;      /* --by NAME (retry, resolve, approve) */
    const char *comment; /* --comment TEXT (retry, resolve, approve) */
    bool reject;         /* --reject (approve) */
};

/* Set by main.c's SIGINT/SIGTERM handler for commands that clean up
 * (run); polled by long loops. */
extern volatile sig_atomic_t cli_interrupted;

int cmd_validate(const struct cli_opts *o);
int cmd_graph(const struct cli_opts *o);
int cmd_submit(const struct cli_opts *o);
int cmd_status(const struct cli_opts *o);
int cmd_watch(const struct cli_opts *o);
int cmd_list(const struct cli_opts *o);
int cmd_inspect(const struct cli_opts *o);
int cmd_cancel(const struct cli_opts *o);
int cmd_retry(const struct cli_opts *o);
int cmd_resolve(const struct cli_opts *o);
int cmd_approve(const struct cli_opts *o);
int cmd_run(const struct cli_opts *o);
int cmd_dlq(const struct cli_opts *o);

/* ---- output (util.c) ---- */

/* "weft: MESSAGE\n" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints v as indented JSON plus a newline on stdout; steals v. Returns
 * CLI_EXIT_OK, or CLI_EXIT_FAIL when v is NULL (out of memory) or stdout
 * fails. */
int cli_print_json(json_t *v);

/* ---- Redis (util.c) ---- */

/* Fills k from o->prefix; CLI_EXIT_OK or CLI_EXIT_USAGE (message
 * printed). */
int cli_keys(const struct cli_opts *o, struct keys *k);

/* Connects to o->redis (or the default). NULL after printing why. The
 * caller frees the context with redisFree. */
redisContext *cli_connect(const struct cli_opts *o);
/* The same for an explicit URL text. */
redisContext *cli_connect_url(const char *url);

/* Runs one command (hiredis format). Returns the reply, or NULL after
 * printing the transport or Redis error (an error reply is freed). The
 * caller frees the reply with freeReplyObject. */
redisReply *cli_cmd(redisContext *c, const char *fmt, ...);
/* Reads one reply of a pipelined command, with cli_cmd's rules. */
redisReply *cli_get_reply(redisContext *c);

/* Value of field in a flat [field, value, ...] array reply (HGETALL,
 * stream entry fields), or NULL. Borrowed from r. */
const redisReply *cli_reply_field(const redisReply *r, const char *field);
/* The same, as a NUL-terminated string or NULL. */
const char *cli_reply_str(const redisReply *r, const char *field);
/* The same, parsed as a non-negative integer; dflt when absent or not a
 * number. */
int64_t cli_reply_i64(const redisReply *r, const char *field, int64_t dflt);

/* XGROUP CREATE key group 0 MKSTREAM unless the group exists, so entries
 * added before the consumers start are not lost (a group created later
 * at `$` would skip them). CLI_EXIT_OK or CLI_EXIT_FAIL (printed). */
int cli_ensure_group(redisContext *c, const char *key, const char *group);

/* ---- files and time (util.c) ---- */

/* Reads a whole file (or stdin for "-") of at most max bytes into a
 * weft_malloc'd, NUL-terminated buffer. 0, or a WEFT_E* code after
 * printing "weft: PATH: why". */
int cli_read_file(const char *path, size_t max, char **out, size_t *len);

/* Milliseconds since the epoch, wall clock. */
int64_t cli_now_ms(void);
/* Milliseconds on the monotonic clock. */
int64_t cli_mono_ms(void);
/* Sleeps ms milliseconds (EINTR ends it early). */
void cli_sleep_ms(int64_t ms);

/* ---- pure formatting (fmt.c; unit-tested) ---- */

/* Writes a run id `<ms>-<8 lowercase hex>` from a time and 4 random
 * bytes. out has CLI_RUN_ID_MAX + 1 bytes. Returns its length. */
size_t fmt_run_id(int64_t ms, const unsigned char rnd[4], char *out,
                  size_t size);
/* "2024-05-01T12:00:00.123Z" (UTC) for ms >= 0, else "-". */
void fmt_time(int64_t ms, char *out, size_t size);
/* A duration for people: "850ms", "1.25s", "2m05s", "3h04m"; "-" for
 * ms < 0. */
void fmt_duration(int64_t ms, char *out, size_t size);
/* Appends s to b as the inside of a DOT double-quoted string (escapes
 * `"` and `\`, newline as \n). 0 or a buf error. */
struct buf;
int fmt_dot_escape(struct buf *b, const char *s);
/* Appends s to b for a Mermaid quoted label: `"` as #quot;, `<` `>` as
 * #lt; #gt;, newline as <br/>. 0 or a buf error. */
int fmt_mermaid_escape(struct buf *b, const char *s);
/* The queue of a step as the scheduler chooses it (personas_step_queue,
 * with the persona registry reg, which may be NULL). Borrowed; NULL for
 * composite and approval steps, which never reach a worker. */
const char *fmt_step_queue(const struct personas *reg, const struct wf_step *s);
/* Parses --set KEY=VALUE arguments into a JSON object: VALUE is taken as
 * JSON when it parses (`n=3`, `ok=true`, `o={"a":1}`), else as a string
 * (`note=hello`); a later KEY replaces an earlier one. KEY is a state key
 * (keys_valid_id). At most CLI_SET_KEYS_MAX keys and CLI_SET_MAX bytes of
 * JSON, the scheduler's limits. 0 and *out (new reference), or -1 with
 * the reason in why (size bytes). */
int fmt_parse_sets(const char *const *sets, int n, json_t **out, char *why,
                   size_t size);
/* Comma-separated, sorted, de-duplicated queues of every step of wf plus
 * "default" (a weft_malloc'd string the caller frees), or NULL on OOM. */
char *fmt_queue_list(const struct wf *wf, const struct personas *reg);

/* ---- graph rendering (cmd_graph.c) ---- */

/* Renders wf as DOT or Mermaid text into b. Deterministic: the same wf
 * gives the same bytes. 0 or a buf error. */
int graph_render(const struct wf *wf, enum cli_graph_format f, struct buf *b);

/* ---- submitting (cmd_submit.c) ---- */

/* Reads and checks a task file (a JSON object); NULL path gives {}.
 * *out new reference. CLI_EXIT_OK or CLI_EXIT_FAIL with
 * `FILE:LINE:COL: error: ...` printed. */
int submit_read_task(const char *path, json_t **out);

/* Loads and validates a workflow file, printing diagnostics on stderr.
 * CLI_EXIT_OK and *out (wf_free), or CLI_EXIT_FAIL. */
int submit_load_workflow(const char *path, struct wf **out);

/* Stores wf's definition (SET NX), makes a run id, and adds the task
 * entry. run_id has CLI_RUN_ID_MAX + 1 bytes. CLI_EXIT_OK or
 * CLI_EXIT_FAIL (printed). */
int submit_one(redisContext *c, const struct keys *k, const struct wf *wf,
               const json_t *task, char *run_id);

/* ---- run status (rundoc.c) ---- */

/* Builds the `weft status --json` document of run (see docs/cli.md), with
 * steps in the definition's pre-order when the definition is in Redis.
 * *wf_out (nullable) receives the definition or NULL. 0, WEFT_ENOENT
 * (no such run; nothing printed) or another code (printed). */
int rundoc_load(redisContext *c, const struct keys *k, const char *run,
                json_t **doc, struct wf **wf_out);
/* The definition with that digest, as stored for the runs pinned to it
 * (owned by the caller: wf_free); NULL when it is gone or unreadable, or
 * on a Redis error (printed). */
struct wf *rundoc_load_def(redisContext *c, const struct keys *k,
                           const char *digest);
/* Prints the document for people: header, then a step table indented by
 * depth when wf is given. */
void rundoc_print(const json_t *doc, const struct wf *wf, FILE *out);
/* True for run statuses that end a watch: success, failed, cancelled,
 * waiting_for_human. */
bool rundoc_is_final(const char *status);

/* ---- following a run's history (history.c) ---- */

/* One entry of `<prefix>:run:<id>:history`. Strings borrowed from the
 * reply, valid during the callback. extra holds the remaining field/value
 * pairs (attempt, worker, error, ...). */
struct hist_entry {
    const char *id;
    const char *type; /* "run" or "step" */
    const char *step; /* "" for run entries */
    const char *status;
    int64_t ts;               /* ms; -1 when absent */
    const redisReply *fields; /* the whole field array */
    const redisReply *entry;  /* the stream entry [id, fields] */
};

struct hist_follow {
    redisContext *c;
    char key[KEYS_MAX];
    char last[CLI_STREAM_ID_MAX]; /* last id read; "0" at first */
};

typedef void (*hist_cb)(void *ud, const struct hist_entry *e);

/* Prepares to read run's history from its beginning. 0 or WEFT_EINVAL
 * for an invalid run id. */
int hist_init(struct hist_follow *f, redisContext *c, const struct keys *k,
              const char *run);
/* One XREAD (BLOCK block_ms) of the entries after the last one read,
 * calling cb for each in order. Returns the number of entries, or -1
 * after printing a Redis error. */
int hist_read(struct hist_follow *f, int block_ms, hist_cb cb, void *ud);
/* Prints an entry as one plain line ("TIME  step  ID  STATUS  k=v ...")
 * or, when json, as one JSON object line. */
void hist_print(const struct hist_entry *e, bool json, FILE *out);

/* ---- child processes of `weft run` (proc.c) ---- */

/* Long enough for a temp dir plus a file name. */
#define CLI_PATH_MAX 4096

struct proc {
    pid_t pid;              /* 0: not running */
    char name[32];          /* "redis", "scheduler", "worker-1" */
    char log[CLI_PATH_MAX]; /* its stdout and stderr */
    int status;             /* waitpid status once exited */
};

/* Starts argv[0] (a path) with argv, stdin from /dev/null, stdout and
 * stderr to log (created or truncated), in its own process group (a
 * terminal's Ctrl-C reaches only us; we stop the children in order), and
 * with SIGTERM delivered to it should this process die first. CLI_EXIT_OK
 * or CLI_EXIT_FAIL (printed). */
int proc_start(struct proc *p, const char *name, const char *const argv[],
               const char *log);
/* True when the child has exited (reaped; p->status set). */
bool proc_exited(struct proc *p);
/* SIGTERM, waits up to timeout_ms, then SIGKILLs its process group and
 * reaps it. No-op when not running. */
void proc_stop(struct proc *p, int timeout_ms);
/* SIGTERMs several children, then waits for all (one deadline), then
 * SIGKILLs what is left. */
void proc_stop_all(struct proc *ps, size_t n, int timeout_ms);
/* "exit status 3", "killed by signal 9". */
void proc_describe(const struct proc *p, char *out, size_t size);

/* Where a sibling binary is: next to the weft executable, in the build
 * tree's ../<subdir>/, or on PATH. Writes the path into out; false when it
 * is nowhere. */
bool proc_find_binary(const char *name, const char *subdir, char *out,
                      size_t size);

/* Removes dir and everything below it (bounded depth; no symlinks are
 * followed). */
void proc_rm_tree(const char *dir);

#endif
