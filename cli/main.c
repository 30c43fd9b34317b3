/* main.c - the weft command-line tool: parses argv and the environment
 * into a struct cli_opts, installs signal handlers, and runs one command.
 *
 * Commands and flags are tables: each command lists the flags it takes,
 * so a flag another command knows is still an error here (exit 2), never
 * silently ignored. Flags may come before, between or after the
 * positional arguments, as `--flag VALUE` or `--flag=VALUE`; `--` ends
 * them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "num.h"

#include "cli.h"

volatile sig_atomic_t cli_interrupted;

enum flag_id {
    F_JSON,
    F_REDIS,
    F_PREFIX,
    F_FORMAT,
    F_TASK,
    F_TASKS,
    F_STATUS,
    F_LIMIT,
    F_WORKERS,
    F_CONCURRENCY,
    F_WORKFLOWS,
    F_FROM,
    F_RETRY,
    F_SKIP,
    F_FAIL,
    F_SET,
    F_BY,
    F_COMMENT,
    F_REJECT,
    F_HELP,
};

#define BIT(f) (1u << (f))

struct flag {
    const char *name; /* without the leading "--" */
    bool has_value;
};

static const struct flag flags[] = {
    [F_JSON] = {"json", false},
    [F_REDIS] = {"redis", true},
    [F_PREFIX] = {"prefix", true},
    [F_FORMAT] = {"format", true},
    [F_TASK] = {"task", true},
    [F_TASKS] = {"tasks", true},
    [F_STATUS] = {"status", true},
    [F_LIMIT] = {"limit", true},
    [F_WORKERS] = {"workers", true},
    [F_CONCURRENCY] = {"concurrency", true},
    [F_WORKFLOWS] = {"workflows", true},
    [F_FROM] = {"from", true},
    [F_RETRY] = {"retry", false},
    [F_SKIP] = {"skip", false},
    [F_FAIL] = {"fail", false},
    [F_SET] = {"set", true},
    [F_BY] = {"by", true},
    [F_COMMENT] = {"comment", true},
    [F_REJECT] = {"reject", false},
    [F_HELP] = {"help", false},
};

/* Flags of every command that talks to Redis. */
#define REDIS_FLAGS (BIT(F_REDIS) | BIT(F_PREFIX))
/* Flags of the commands a person answers with: who, why, and --json. */
#define CONTROL_FLAGS (BIT(F_JSON) | BIT(F_BY) | BIT(F_COMMENT) | REDIS_FLAGS)

/* Bounds for numeric flags: a typo such as --workers 2000 would fork
 * thousands of processes. */
#define MAX_WORKERS     64
#define MAX_CONCURRENCY 100000
#define MAX_LIMIT       1000000

struct command {
    const char *name;
    int (*fn)(const struct cli_opts *o);
    unsigned flags; /* BIT(F_*) accepted */
    int min_args;   /* positional arguments */
    int max_args;   /* -1: any number */
    bool signals;   /* SIGINT/SIGTERM set cli_interrupted */
    const char *usage;
};

static const struct command commands[] = {
    {"validate", cmd_validate, BIT(F_JSON), 1, -1, false,
     "validate FILE... [--json]"},
    {"graph", cmd_graph, BIT(F_FORMAT), 1, 1, false,
     "graph FILE [--format dot|mermaid]"},
    {"submit", cmd_submit,
     BIT(F_JSON) | BIT(F_TASK) | BIT(F_TASKS) | REDIS_FLAGS, 0, 1, false,
     "submit [FILE] [--task TASK.json | --tasks TASKS.jsonl] [--json]"},
    {"status", cmd_status, BIT(F_JSON) | REDIS_FLAGS, 1, 1, false,
     "status RUN [--json]"},
    {"watch", cmd_watch, BIT(F_JSON) | REDIS_FLAGS, 1, 1, false,
     "watch RUN [--json]"},
    {"list", cmd_list, BIT(F_JSON) | BIT(F_STATUS) | BIT(F_LIMIT) | REDIS_FLAGS,
     0, 0, false, "list [--status S] [--limit N] [--json]"},
    {"inspect", cmd_inspect, BIT(F_JSON) | BIT(F_LIMIT) | REDIS_FLAGS, 1, 1,
     false, "inspect QUEUE [--limit N] [--json]"},
    {"cancel", cmd_cancel, BIT(F_JSON) | REDIS_FLAGS, 1, 1, false,
     "cancel RUN [--json]"},
    {"retry", cmd_retry, BIT(F_FROM) | CONTROL_FLAGS, 1, 1, false,
     "retry RUN [--from STEP] [--by NAME] [--comment TEXT] [--json]"},
    {"resolve", cmd_resolve,
     BIT(F_RETRY) | BIT(F_SKIP) | BIT(F_FAIL) | BIT(F_SET) | CONTROL_FLAGS, 2,
     2, false,
     "resolve RUN STEP --retry|--skip|--fail [--set KEY=VALUE]... "
     "[--by NAME] [--comment TEXT] [--json]"},
    {"approve", cmd_approve, BIT(F_REJECT) | BIT(F_SET) | CONTROL_FLAGS, 2, 2,
     false,
     "approve RUN STEP [--reject] [--set KEY=VALUE]... [--by NAME] "
     "[--comment TEXT] [--json]"},
    {"dlq", cmd_dlq, BIT(F_JSON) | BIT(F_LIMIT) | REDIS_FLAGS, 1, -1, false,
     "dlq list [--limit N] [--json] | dlq requeue ID... [--json] | dlq drop "
     "ID... [--json]"},
    {"run", cmd_run,
     BIT(F_JSON) | BIT(F_TASK) | BIT(F_WORKERS) | BIT(F_CONCURRENCY) |
         BIT(F_WORKFLOWS) | REDIS_FLAGS,
     0, 1, true,
     "run [FILE] [--task TASK.json] [--workflows DIR] [--workers N] "
     "[--concurrency N] [--json]"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))
#define NFLAGS    (sizeof(flags) / sizeof(flags[0]))

static void usage(FILE *out)
{
    fputs("usage: weft COMMAND [ARGS]\n\ncommands:\n", out);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  weft %s\n", commands[i].usage);
    fputs("\nRedis commands take --redis URL (env REDIS_URL, "
          "default " CLI_DEFAULT_REDIS
          ")\nand --prefix P (env WEFT_PREFIX, default "
          "weft). See docs/cli.md.\n",
          out);
}

static int parse_u32(const char *cmd, const char *flag, const char *v,
                     uint32_t min, uint32_t max, uint32_t *out)
{
    int64_t n;
    if (num_parse_i64(v, strlen(v), min, max, &n) != 0) {
        fprintf(stderr,
                "weft %s: --%s: expected a number in %u..%u, got "
                "'%s'\n",
                cmd, flag, (unsigned)min, (unsigned)max, v);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

/* Stores one flag's value into o. -1 after printing a usage error. */
static int apply_flag(const struct command *c, enum flag_id id, const char *v,
                      struct cli_opts *o)
{
    switch (id) {
    case F_JSON:
        o->json = true;
        return 0;
    case F_REDIS:
        o->redis = v;
        return 0;
    case F_PREFIX:
        o->prefix = v;
        return 0;
    case F_FORMAT:
        if (strcmp(v, "dot") == 0) {
            o->format = CLI_GRAPH_DOT;
        } else if (strcmp(v, "mermaid") == 0) {
            o->format = CLI_GRAPH_MERMAID;
        } else {
            fprintf(stderr,
                    "weft %s: --format: expected dot or mermaid, got '%s'\n",
                    c->name, v);
            return -1;
        }
        return 0;
    case F_TASK:
        o->task_file = v;
        return 0;
    case F_TASKS:
        o->tasks_file = v;
        return 0;
    case F_STATUS:
        o->status = v;
        return 0;
    case F_LIMIT:
        o->limit_set = true;
        return parse_u32(c->name, "limit", v, 0, MAX_LIMIT, &o->limit);
    case F_WORKERS:
        return parse_u32(c->name, "workers", v, 1, MAX_WORKERS, &o->workers);
    case F_CONCURRENCY:
        return parse_u32(c->name, "concurrency", v, 1, MAX_CONCURRENCY,
                         &o->concurrency);
    case F_WORKFLOWS:
        o->workflows = v;
        return 0;
    case F_FROM:
        o->from = v;
        return 0;
    case F_RETRY:
    case F_SKIP:
    case F_FAIL: {
        const char *a = id == F_RETRY  ? "retry"
                        : id == F_SKIP ? "skip"
                                       : "fail";
        if (o->action != NULL && strcmp(o->action, a) != 0) {
            fprintf(stderr,
                    "weft %s: give one of --retry, --skip and --fail, not "
                    "--%s and --%s\n",
                    c->name, o->action, a);
            return -1;
        }
        o->action = a;
        return 0;
    }
    case F_SET:
        /* o->sets has room for every argument (main). */
        o->sets[o->nsets++] = v;
        return 0;
    case F_BY:
        o->by = v;
        return 0;
    case F_COMMENT:
        o->comment = v;
        return 0;
    case F_REJECT:
        o->reject = true;
        return 0;
    case F_HELP:
        break;
    }
    return 0;
}

static int find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NFLAGS; i++) {
        if (strlen(flags[i].name) == len &&
            memcmp(flags[i].name, name, len) == 0)
            return (int)i;
    }
    return -1;
}

/* Parses argv[2..] for command c. Returns CLI_EXIT_OK, CLI_EXIT_USAGE
 * (printed), or -1 when --help was asked (usage printed on stdout). */
static int parse_args(const struct command *c, int argc, char **argv,
                      struct cli_opts *o)
{
    bool no_more_flags = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (no_more_flags || a[0] != '-' || strcmp(a, "-") == 0) {
            o->args[o->nargs++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            no_more_flags = true;
            continue;
        }
        if (strcmp(a, "-h") == 0)
            a = "--help";
        if (a[1] != '-') {
            fprintf(stderr, "weft %s: unknown option '%s'\n", c->name, a);
            return CLI_EXIT_USAGE;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int id = find_flag(name, nlen);
        if (id == F_HELP) {
            printf("usage: weft %s\n", c->usage);
            return -1;
        }
        if (id < 0 || !(c->flags & BIT(id))) {
            fprintf(stderr, "weft %s: unknown option '--%.*s'\n", c->name,
                    (int)nlen, name);
            fprintf(stderr, "usage: weft %s\n", c->usage);
            return CLI_EXIT_USAGE;
        }
        const char *v = NULL;
        if (flags[id].has_value) {
            if (eq) {
                v = eq + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                fprintf(stderr, "weft %s: --%s needs a value\n", c->name,
                        flags[id].name);
                return CLI_EXIT_USAGE;
            }
        } else if (eq) {
            fprintf(stderr, "weft %s: --%s takes no value\n", c->name,
                    flags[id].name);
            return CLI_EXIT_USAGE;
        }
        if (apply_flag(c, (enum flag_id)id, v, o) != 0)
            return CLI_EXIT_USAGE;
    }
    if (o->nargs < c->min_args ||
        (c->max_args >= 0 && o->nargs > c->max_args)) {
        fprintf(stderr, "usage: weft %s\n", c->usage);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static void on_signal(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocking wait returns early with EINTR. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int main(int argc, char **argv)
{
    weft_alloc_init();
    /* `weft list | head` must end quietly; Redis sockets too. */
    signal(SIGPIPE, SIG_IGN);

    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("weft %s\n", WEFT_VERSION);
        return CLI_EXIT_OK;
    }
    const struct command *c = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0)
            c = &commands[i];
    }
    if (c == NULL) {
        fprintf(stderr, "weft: unknown command '%s'\n", name);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }

    struct cli_opts o;
    memset(&o, 0, sizeof(o));
    o.cmd = c->name;
    o.format = CLI_GRAPH_DOT;
    o.workers = 2;
    o.limit = 0;
    o.redis = getenv("REDIS_URL");
    if (o.redis != NULL && o.redis[0] == '\0')
        o.redis = NULL;
    o.prefix = getenv("WEFT_PREFIX");
    /* argv holds at most argc - 2 positional arguments. */
    o.args = weft_calloc((size_t)argc, sizeof(char *));
    /* Likewise at most argc --set values. */
    o.sets = weft_calloc((size_t)argc, sizeof(char *));
    if (o.args == NULL || o.sets == NULL) {
        fprintf(stderr, "weft: out of memory\n");
        weft_free(o.args);
        weft_free(o.sets);
        return CLI_EXIT_FAIL;
    }
    int rc = parse_args(c, argc, argv, &o);
    if (rc != CLI_EXIT_OK) {
        weft_free(o.args);
        weft_free(o.sets);
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    if (c->signals)
        install_signals();
    rc = c->fn(&o);
    weft_free(o.args);
    weft_free(o.sets);
    if (fflush(stdout) != 0 && errno != EPIPE && rc == CLI_EXIT_OK)
        rc = CLI_EXIT_FAIL;
    return rc;
}
