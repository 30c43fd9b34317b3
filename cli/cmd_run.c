/* cmd_run.c - `weft run FILE [--task T.json] [--workers N]
 * [--concurrency N] [--json]`: the one-command experience.
 *
 * Without --redis / REDIS_URL it starts a private redis-server in a fresh
 * temp dir (unix socket only, no persistence); it always starts one
 * weft-scheduler and N weft-worker children (their JSON logs go to
 * DIR/logs/), with a fresh signing key in WEFT_HMAC_KEY (or the one the
 * environment already names, when an outside Redis is used). It then
 * submits the run as `weft submit` does, shows progress from the run's
 * history stream (a step table redrawn in place on a terminal, plain
 * lines otherwise, nothing with --json), and prints the outcome (with
 * --json only the final `weft status --json` document).
 *
 * Exit 0 when the run succeeded, 1 otherwise, 2 for usage errors. On
 * every exit path, and on SIGINT/SIGTERM/SIGHUP, the children get SIGTERM
 * (SIGKILL after RUN_STOP_MS), Redis is stopped and the temp dir
 * removed; when the run failed (not when it was interrupted) the logs
 * are kept and their path printed.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "hmac.h"
#include "rconn.h"
#include "redisurl.h"
#include "personas.h"
#include "routes.h"

/* redis-server starts in ~45 ms (FIELD-NOTES); allow for a loaded box. */
#define RUN_REDIS_START_MS 10000
/* A draining worker finishes its jobs; noop and short steps end fast. */
#define RUN_STOP_MS 10000
/* XREAD BLOCK per round: bounds how late we notice Ctrl-C or a dead
 * child, and how often the live table's timers tick. */
#define RUN_BLOCK_MS 200
/* The live table is redrawn at most this often. */
#define RUN_REDRAW_MS 100
/* A unix socket path must fit sun_path (108 bytes) with "/redis.sock". */
#define RUN_TMPDIR_MAX 64
/* 1 scheduler + up to 64 workers (main.c's MAX_WORKERS). */
#define RUN_MAX_CHILDREN 65
/* Width of the step column of the live table. */
#define RUN_STEP_COL_MAX 40

/* What the live view knows of one step, from history entries. */
struct step_view {
    char status[24];
    uint32_t attempt;
    int64_t started, finished; /* ms, -1 = unknown */
};

struct run_ctx {
    const struct cli_opts *o;
    struct wf *wf;
    json_t *task;
    struct personas *personas; /* DIR/personas.yml, when there is one */
    char personas_path[CLI_PATH_MAX];
    char dir[CLI_PATH_MAX];  /* temp dir; "" when not made */
    char logs[CLI_PATH_MAX]; /* dir/logs */
    char url[CLI_PATH_MAX];  /* Redis URL the children use */
    struct proc redis;       /* pid 0 when an outside Redis is used */
    struct proc kids[RUN_MAX_CHILDREN]; /* [0] scheduler, then workers */
    size_t nkids;
    redisContext *c;
    struct keys keys;
    char run[CLI_RUN_ID_MAX + 1];

    /* progress */
    bool tty;   /* live table on stdout */
    bool plain; /* one line per transition on stdout */
    bool ended; /* a final run entry was seen */
    struct step_view *steps;
    char run_status[24];
    int drawn;         /* lines of the last frame */
    int64_t last_draw; /* cli_mono_ms of the last frame */
    int64_t t0;        /* cli_now_ms at submission */
    bool started;      /* a child ran: its logs are worth keeping */
};

/* ---- live view ---- */

static const char *color_of(const char *st)
{
    if (strcmp(st, "success") == 0)
        return "\x1b[32m";
    if (strcmp(st, "failed") == 0)
        return "\x1b[31m";
    if (strcmp(st, "running") == 0 || strcmp(st, "retrying") == 0)
        return "\x1b[33m";
    if (strcmp(st, "queued") == 0)
        return "\x1b[36m";
    if (strcmp(st, "skipped") == 0 || strcmp(st, "cancelled") == 0)
        return "\x1b[2m";
    if (strcmp(st, "waiting_for_human") == 0)
        return "\x1b[35m";
    return "";
}

static void on_entry(void *ud, const struct hist_entry *e)
{
    struct run_ctx *r = ud;
    if (r->plain)
        hist_print(e, false, stdout);
    if (strcmp(e->type, "run") == 0) {
        snprintf(r->run_status, sizeof(r->run_status), "%s", e->status);
        if (rundoc_is_final(e->status))
            r->ended = true;
        return;
    }
    const struct wf_step *s = wf_find_step(r->wf, e->step, strlen(e->step));
    if (s == NULL)
        return;
    struct step_view *v = &r->steps[s->index];
    snprintf(v->status, sizeof(v->status), "%s", e->status);
    int64_t att = cli_reply_i64(e->fields, "attempt", -1);
    if (att > 0 && att <= UINT32_MAX)
        v->attempt = (uint32_t)att;
    if (strcmp(e->status, "running") == 0 || strcmp(e->status, "queued") == 0)
        v->finished = -1;
    if (strcmp(e->status, "running") == 0)
        v->started = e->ts;
    else if (strcmp(e->status, "success") == 0 ||
             strcmp(e->status, "failed") == 0 ||
             strcmp(e->status, "skipped") == 0 ||
             strcmp(e->status, "cancelled") == 0)
        v->finished = e->ts;
    if (strcmp(e->status, "waiting_for_human") == 0)
        snprintf(r->run_status, sizeof(r->run_status), "%s", e->status);
}

static int term_rows(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
        return ws.ws_row;
    return 24;
}

static int term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Appends one line, cut to the terminal width (a wrapped line would
 * break the cursor arithmetic of the next redraw). */
static void frame_line(struct buf *b, const char *color, const char *text,
                       int cols)
{
    buf_append_str(b, "\x1b[2K");
    int len = (int)strlen(text);
    if (color[0])
        buf_append_str(b, color);
    buf_append(b, text, (size_t)(len < cols - 1 ? len : cols - 1));
    if (color[0])
        buf_append_str(b, "\x1b[0m");
    buf_append_char(b, '\n');
}

static void redraw(struct run_ctx *r, bool force)
{
    if (!r->tty)
        return;
    int64_t now_mono = cli_mono_ms();
    if (!force && now_mono - r->last_draw < RUN_REDRAW_MS)
        return;
    r->last_draw = now_mono;
    int64_t now = cli_now_ms();
    int cols = term_cols();
    struct buf b;
    buf_init(&b, (size_t)16 << 20);
    if (r->drawn > 0)
        buf_printf(&b, "\x1b[%dA", r->drawn);
    int lines = 0;
    char line[512], dur[32];
    fmt_duration(now - r->t0, dur, sizeof(dur));
    snprintf(line, sizeof(line), "run %s  %s  %s  %s", r->run, r->wf->name,
             r->run_status[0] ? r->run_status : "submitted", dur);
    frame_line(&b, "\x1b[1m", line, cols);
    lines++;
    uint32_t n = r->wf->nsteps;
    if ((int)n + 2 < term_rows()) {
        int w = 4;
        for (uint32_t i = 0; i < n; i++) {
            const struct wf_step *s = &r->wf->steps[i];
            int len = (int)strlen(s->id) + 2 * (int)s->depth;
            if (len > w)
                w = len < RUN_STEP_COL_MAX ? len : RUN_STEP_COL_MAX;
        }
        for (uint32_t i = 0; i < n; i++) {
            const struct wf_step *s = &r->wf->steps[i];
            const struct step_view *v = &r->steps[i];
            int64_t d = -1;
            if (v->started >= 0)
                d = (v->finished >= v->started ? v->finished : now) -
                    v->started;
            fmt_duration(d, dur, sizeof(dur));
            char att[16] = "";
            if (v->attempt > 1)
                snprintf(att, sizeof(att), "#%u", (unsigned)v->attempt);
            snprintf(line, sizeof(line), "  %*s%-*s  %-17s %-4s %9s",
                     2 * (int)s->depth, "", w - 2 * (int)s->depth, s->id,
                     v->status, att, dur);
            frame_line(&b, color_of(v->status), line, cols);
            lines++;
        }
    } else {
        /* Too many steps for the screen: counts instead of a table. */
        static const char *const words[] = {"pending",  "queued", "running",
                                            "success",  "failed", "skipped",
                                            "cancelled"};
        uint32_t count[sizeof(words) / sizeof(*words)] = {0};
        for (uint32_t i = 0; i < n; i++) {
            for (size_t k = 0; k < sizeof(words) / sizeof(*words); k++) {
                if (strcmp(r->steps[i].status, words[k]) == 0)
                    count[k]++;
            }
        }
        int off = snprintf(line, sizeof(line), "  %u steps:", (unsigned)n);
        for (size_t k = 0; k < sizeof(words) / sizeof(*words); k++) {
            if (count[k] > 0 && off > 0 && (size_t)off < sizeof(line))
                off += snprintf(line + off, sizeof(line) - (size_t)off,
                                " %s %u", words[k], (unsigned)count[k]);
        }
        frame_line(&b, "", line, cols);
        lines++;
    }
    if (b.data != NULL) {
        fwrite(b.data, 1, b.len, stdout);
        fflush(stdout);
    }
    buf_deinit(&b);
    r->drawn = lines;
}

/* ---- setup ---- */

/* out = dir + "/" + name; false (out "") when it does not fit. */
static bool join(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) {
        out[0] = '\0';
        return false;
    }
    return true;
}

static int make_dir(struct run_ctx *r)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0' || strlen(tmp) > RUN_TMPDIR_MAX)
        tmp = "/tmp";
    snprintf(r->dir, sizeof(r->dir), "%s/weft-run-XXXXXX", tmp);
    if (mkdtemp(r->dir) == NULL) {
        cli_error("cannot create a temp dir under %s: %s", tmp,
                  strerror(errno));
        r->dir[0] = '\0';
        return CLI_EXIT_FAIL;
    }
    join(r->logs, sizeof(r->logs), r->dir, "logs");
    if (mkdir(r->logs, 0700) != 0) {
        cli_error("%s: %s", r->logs, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* Connects without printing: NULL while Redis is not up yet. */
static redisContext *try_connect(const char *url)
{
    struct redis_url u;
    struct weft_error err;
    if (redis_url_parse(url, &u, &err) != 0)
        return NULL;
    redisContext *c = rconn_connect_sync(&u, 1000, &err);
    redis_url_deinit(&u);
    if (c == NULL)
        return NULL;
    redisReply *p = redisCommand(c, "PING");
    bool ok = p != NULL && p->type == REDIS_REPLY_STATUS;
    freeReplyObject(p);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static int start_redis(struct run_ctx *r)
{
    char sock[CLI_PATH_MAX], log[CLI_PATH_MAX];
    join(sock, sizeof(sock), r->dir, "redis.sock");
    join(log, sizeof(log), r->logs, "redis.log");
    join(r->url, sizeof(r->url), "unix:/", sock);
    char bin[CLI_PATH_MAX];
    if (!proc_find_binary("redis-server", "redis", bin, sizeof(bin))) {
        cli_error("redis-server not found on PATH: install it, or give "
                  "--redis URL / REDIS_URL");
        return CLI_EXIT_FAIL;
    }
    const char *argv[] = {
        bin,    "--port", "0",   "--unixsocket", sock, "--unixsocketperm",
        "700",  "--save", "",    "--appendonly", "no", "--dir",
        r->dir, "--hz",   "100", "--daemonize",  "no", NULL};
    if (proc_start(&r->redis, "redis", argv, log) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    r->started = true;
    int64_t until = cli_mono_ms() + RUN_REDIS_START_MS;
    while (cli_mono_ms() < until && !cli_interrupted) {
        r->c = try_connect(r->url);
        if (r->c != NULL)
            return CLI_EXIT_OK;
        if (proc_exited(&r->redis))
            break;
        cli_sleep_ms(10);
    }
    cli_error("redis-server did not start; its log: %s", log);
    return CLI_EXIT_FAIL;
}

static int set_key(struct run_ctx *r)
{
    const char *k = getenv("WEFT_HMAC_KEY");
    const char *kf = getenv("WEFT_HMAC_KEY_FILE");
    bool have = (k && k[0]) || (kf && kf[0]);
    /* An outside system already has a key: its workers must accept our
     * jobs. A private system gets a fresh one. */
    if (r->redis.pid == 0 && have)
        return CLI_EXIT_OK;
    struct hmac_key key;
    char hex[2 * HMAC_GENERATE_BYTES + 1];
    if (hmac_key_generate(&key, hex, sizeof(hex)) != 0) {
        cli_error("cannot generate a signing key");
        return CLI_EXIT_FAIL;
    }
    unsetenv("WEFT_HMAC_KEY_FILE");
    int rc = setenv("WEFT_HMAC_KEY", hex, 1);
    memset(hex, 0, sizeof(hex));
    memset(&key, 0, sizeof(key));
    if (rc != 0) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

static int start_children(struct run_ctx *r, const char *queues)
{
    char sched[CLI_PATH_MAX], worker[CLI_PATH_MAX];
    if (!proc_find_binary("weft-scheduler", "scheduler", sched,
                          sizeof(sched))) {
        cli_error("weft-scheduler not found next to weft, in the build "
                  "tree or on PATH");
        return CLI_EXIT_FAIL;
    }
    if (!proc_find_binary("weft-worker", "worker", worker, sizeof(worker))) {
        cli_error("weft-worker not found next to weft, in the build tree "
                  "or on PATH");
        return CLI_EXIT_FAIL;
    }
    if (setenv("REDIS_URL", r->url, 1) != 0 ||
        (r->o->prefix && setenv("WEFT_PREFIX", r->o->prefix, 1) != 0)) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    char log[CLI_PATH_MAX];
    join(log, sizeof(log), r->logs, "scheduler.log");
    const char *dir = r->o->workflows ? r->o->workflows : "workflows";
    struct stat st;
    const char *sargv[] = {
        sched,         "--redis", r->url, "--personas", r->personas_path,
        "--workflows", dir,       NULL};
    int sa = 3;
    if (r->personas_path[0] != '\0')
        sa = 5;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        sargv[sa++] = "--workflows";
        sargv[sa++] = dir;
    }
    sargv[sa] = NULL;
    if (proc_start(&r->kids[r->nkids], "weft-scheduler", sargv, log) !=
        CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    r->started = true;
    r->nkids++;
    char conc[16];
    snprintf(conc, sizeof(conc), "%u", (unsigned)r->o->concurrency);
    for (uint32_t i = 0; i < r->o->workers; i++) {
        char name[32];
        snprintf(name, sizeof(name), "weft-worker-%u", (unsigned)i + 1);
        char file[32];
        snprintf(file, sizeof(file), "worker-%u.log", (unsigned)i + 1);
        join(log, sizeof(log), r->logs, file);
        const char *wargv[10] = {worker, "--redis", r->url, "--queues", queues};
        int wa = 5;
        if (r->o->concurrency != 0) {
            wargv[wa++] = "--concurrency";
            wargv[wa++] = conc;
        }
        if (r->personas_path[0] != '\0') {
            wargv[wa++] = "--personas";
            wargv[wa++] = r->personas_path;
        }
        wargv[wa] = NULL;
        if (proc_start(&r->kids[r->nkids], name, wargv, log) != CLI_EXIT_OK)
            return CLI_EXIT_FAIL;
        r->nkids++;
    }
    return CLI_EXIT_OK;
}

/* Creates the consumer groups at 0 so nothing added before a child has
 * started is skipped. */
static int prepare_streams(struct run_ctx *r, const char *queues)
{
    char key[KEYS_MAX];
    keys_global(&r->keys, KEYS_TASKS, key);
    if (cli_ensure_group(r->c, key, KEYS_GROUP_SCHEDULERS) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    keys_global(&r->keys, KEYS_EVENTS, key);
    if (cli_ensure_group(r->c, key, KEYS_GROUP_SCHEDULERS) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    for (const char *p = queues; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char q[KEYS_ID_MAX + 1];
        if (len <= KEYS_ID_MAX) {
            memcpy(q, p, len);
            q[len] = '\0';
            if (keys_queue(&r->keys, q, key) != 0 &&
                cli_ensure_group(r->c, key, KEYS_GROUP_WORKERS) != CLI_EXIT_OK)
                return CLI_EXIT_FAIL;
        }
        p = comma ? comma + 1 : p + len;
    }
    return CLI_EXIT_OK;
}

/* A child died under us: which one, and where its log is. */
static bool child_died(struct run_ctx *r)
{
    char how[64];
    if (r->redis.pid > 0 && proc_exited(&r->redis)) {
        proc_describe(&r->redis, how, sizeof(how));
        cli_error("redis-server stopped (%s); its log: %s", how, r->redis.log);
        return true;
    }
    if (r->nkids > 0 && proc_exited(&r->kids[0])) {
        proc_describe(&r->kids[0], how, sizeof(how));
        cli_error("weft-scheduler stopped (%s); its log: %s", how,
                  r->kids[0].log);
        return true;
    }
    size_t alive = 0;
    for (size_t i = 1; i < r->nkids; i++) {
        if (!proc_exited(&r->kids[i]))
            alive++;
    }
    if (r->nkids > 1 && alive == 0) {
        proc_describe(&r->kids[1], how, sizeof(how));
        cli_error("every weft-worker stopped (%s); see %s", how,
                  r->kids[1].log);
        return true;
    }
    return false;
}

/* Follows the history until the run ends. CLI_EXIT_OK when it ended
 * (whatever its status), CLI_EXIT_FAIL when following failed. */
static int follow(struct run_ctx *r)
{
    struct hist_follow f;
    char hkey[KEYS_MAX];
    hist_init(&f, r->c, &r->keys, r->run);
    keys_run(&r->keys, KEYS_RUN, r->run, hkey);
    while (!cli_interrupted) {
        int n = hist_read(&f, RUN_BLOCK_MS, on_entry, r);
        if (n < 0)
            return CLI_EXIT_FAIL;
        redraw(r, false);
        if (r->ended)
            return CLI_EXIT_OK;
        if (n >= CLI_HIST_READ_COUNT)
            continue;
        redisReply *st = cli_cmd(r->c, "HGET %s status", hkey);
        if (st == NULL)
            return CLI_EXIT_FAIL;
        bool final = st->type == REDIS_REPLY_STRING && rundoc_is_final(st->str);
        freeReplyObject(st);
        if (final)
            return CLI_EXIT_OK;
        if (child_died(r))
            return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_FAIL;
}

static void teardown(struct run_ctx *r, bool keep_logs)
{
    if (r->tty)
        fputs("\x1b[?25h", stdout);
    fflush(stdout);
    proc_stop_all(r->kids, r->nkids, RUN_STOP_MS);
    r->nkids = 0;
    if (r->c != NULL) {
        redisFree(r->c);
        r->c = NULL;
    }
    proc_stop(&r->redis, RUN_STOP_MS);
    if (r->dir[0] == '\0')
        return;
    if (keep_logs && r->started) {
        char sock[CLI_PATH_MAX];
        join(sock, sizeof(sock), r->dir, "redis.sock");
        unlink(sock);
        fprintf(stderr, "weft: logs kept in %s\n", r->logs);
    } else {
        proc_rm_tree(r->dir);
    }
}

/* The coordinator's choice for the task, made here too so the run can
 * be shown before the scheduler picks it: DIR/routes.yml applied to the
 * task, then DIR/<workflow> loaded. */
static int route_workflow(const char *dir, const char *task_file,
                          struct wf **out)
{
    char path[CLI_PATH_MAX];
    json_t *task = NULL;
    struct routes *routes = NULL;
    struct diag d;
    const char *name = NULL;
    struct weft_error err;
    int rc = submit_read_task(task_file, &task);
    if (rc != CLI_EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "%s/routes.yml", dir);
    diag_init(&d, path);
    if (routes_load_file(path, &routes, &d) != 0) {
        diag_sort(&d);
        diag_print(&d, stderr);
        diag_deinit(&d);
        json_decref(task);
        return CLI_EXIT_FAIL;
    }
    diag_deinit(&d);
    weft_error_clear(&err);
    rc = CLI_EXIT_FAIL;
    if (routes_select(routes, task, NULL, &name, &err) != 0) {
        cli_error("cannot route the task: %s", err.msg);
    } else {
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        rc = submit_load_workflow(path, out);
    }
    routes_free(routes);
    json_decref(task);
    return rc;
}

int cmd_run(const struct cli_opts *o)
{
    struct run_ctx *r = weft_calloc(1, sizeof(*r));
    if (r == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    r->o = o;
    int rc = cli_keys(o, &r->keys);
    bool keep = false;
    char *queues = NULL;
    json_t *doc = NULL;
    struct wf *dwf = NULL;
    if (rc != CLI_EXIT_OK)
        goto out;
    const char *dir = o->workflows ? o->workflows : "workflows";
    if (o->nargs > 0)
        rc = submit_load_workflow(o->args[0], &r->wf);
    else
        rc = route_workflow(dir, o->task_file, &r->wf);
    if (rc == CLI_EXIT_OK)
        rc = submit_read_task(o->task_file, &r->task);
    if (rc != CLI_EXIT_OK)
        goto out;
    rc = CLI_EXIT_FAIL;
    /* The persona registry maps personas to queues: the scheduler and the
     * workers get the same one. */
    snprintf(r->personas_path, sizeof(r->personas_path), "%s/personas.yml",
             dir);
    if (access(r->personas_path, R_OK) == 0) {
        struct diag d;
        diag_init(&d, r->personas_path);
        if (personas_load_file(r->personas_path, &r->personas, &d) != 0) {
            diag_sort(&d);
            diag_print(&d, stderr);
            diag_deinit(&d);
            goto out;
        }
        diag_deinit(&d);
    } else {
        r->personas_path[0] = '\0';
    }
    queues = fmt_queue_list(r->wf, r->personas);
    r->steps =
        weft_calloc(r->wf->nsteps ? r->wf->nsteps : 1, sizeof(*r->steps));
    if (queues == NULL || r->steps == NULL) {
        cli_error("out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < r->wf->nsteps; i++) {
        snprintf(r->steps[i].status, sizeof(r->steps[i].status), "pending");
        r->steps[i].started = r->steps[i].finished = -1;
    }
    if (make_dir(r) != CLI_EXIT_OK)
        goto out;
    keep = true;
    if (o->redis != NULL) {
        snprintf(r->url, sizeof(r->url), "%s", o->redis);
        r->c = cli_connect_url(r->url);
        if (r->c == NULL)
            goto out;
    } else if (start_redis(r) != CLI_EXIT_OK) {
        goto out;
    }
    /* Children must not inherit our connection. */
    fcntl(r->c->fd, F_SETFD, FD_CLOEXEC);
    if (set_key(r) != CLI_EXIT_OK || prepare_streams(r, queues) != 0 ||
        start_children(r, queues) != CLI_EXIT_OK)
        goto out;

    r->tty = !o->json && isatty(STDOUT_FILENO);
    r->plain = !o->json && !r->tty;
    r->t0 = cli_now_ms();
    /* Without FILE the task goes through the coordinator, as a producer's
     * would: the scheduler routes it (to the workflow shown here). */
    if (submit_one(r->c, &r->keys, o->nargs > 0 ? r->wf : NULL, r->task,
                   r->run) != CLI_EXIT_OK)
        goto out;
    if (r->plain)
        printf("run %s: workflow %s, %u steps, %u workers\n", r->run,
               r->wf->name, (unsigned)r->wf->nsteps, (unsigned)o->workers);
    if (r->tty)
        fputs("\x1b[?25l", stdout);
    redraw(r, true);
    if (follow(r) != CLI_EXIT_OK) {
        if (cli_interrupted) {
            /* An outside system would go on running it. */
            char ev[KEYS_MAX];
            keys_global(&r->keys, KEYS_EVENTS, ev);
            redisReply *x =
                redisCommand(r->c, "XADD %s * type cancel run %s reason %s", ev,
                             r->run, "interrupted (weft run)");
            freeReplyObject(x);
            redraw(r, true);
            cli_error("interrupted; run %s cancelled", r->run);
        }
        goto out;
    }
    redraw(r, true);
    if (rundoc_load(r->c, &r->keys, r->run, &doc, &dwf) != 0) {
        cli_error("run %s: cannot read its final status", r->run);
        goto out;
    }
    const char *status = json_string_value(json_object_get(doc, "status"));
    bool ok = status != NULL && strcmp(status, "success") == 0;
    if (o->json) {
        if (cli_print_json(doc) != CLI_EXIT_OK)
            ok = false;
        doc = NULL;
    } else {
        if (r->plain) {
            printf("\n");
            rundoc_print(doc, dwf, stdout);
        }
        int64_t took = cli_now_ms() - r->t0;
        char d[32];
        fmt_duration(took, d, sizeof(d));
        const char *err = json_string_value(json_object_get(doc, "error"));
        printf("\nrun %s %s in %s%s%s\n", r->run, status ? status : "ended", d,
               err ? ": " : "", err ? err : "");
        if (status != NULL && strcmp(status, "waiting_for_human") == 0)
            printf("a step waits for a human (escalated, or an approval); "
                   "this private system stops now, so the run cannot be "
                   "resumed\n");
    }
    rc = ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    keep = !ok;
out:
    /* Logs help with a failure, not with a run the user stopped. */
    teardown(r, keep && rc != CLI_EXIT_OK && !cli_interrupted);
    json_decref(doc);
    wf_free(dwf);
    json_decref(r->task);
    wf_free(r->wf);
    weft_free(r->steps);
    weft_free(queues);
    personas_free(r->personas);
    weft_free(r);
    return rc;
}
