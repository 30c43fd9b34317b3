/* test_http.c - the scheduler's and the worker's HTTP servers (docs/api.md)
 * against a real redis-server and the real binaries, through plain
 * sockets: probes, Prometheus text, every /v1 endpoint, authentication,
 * limits, and clients that go away before Redis answers.
 *
 * Each test starts its own Redis, a weft-scheduler with --http on a free
 * port (and a weft-worker when runs must finish), and stops them at the
 * end, checking that they exit cleanly: under -DWEFT_SANITIZE=ON an
 * AddressSanitizer report makes the exit status non-zero.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "procs.h"
#include "redis_fixture.h"

#define KEY      "test-signing-key-0123456789"
#define TOKEN    "test-api-token-abcdef"
#define SRC(rel) WEFT_SOURCE_ROOT "/" rel
/* The server's body limit (common/httpd.h HTTPD_MAX_BODY). */
#define MAX_BODY (1024 * 1024)

static struct redis_fixture fx;
static redisContext *rc;
static pid_t sched_pid, worker_pid;
static int sched_port, worker_port;
static char sched_log[256], worker_log[256];

/* A workflow of two noop steps; the first waits delay_ms. */
static const char *two_steps(int delay_ms)
{
    static char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "name: two\n"
             "steps:\n"
             "  - id: wait\n"
             "    type: noop\n"
             "    params:\n"
             "      delay_ms: %d\n"
             "  - id: after\n"
             "    type: noop\n"
             "    dependencies: [wait]\n",
             delay_ms);
    return yaml;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- a small HTTP/1.1 client ------------------------------------------- */

struct resp {
    int status; /* 0: no answer */
    char *head; /* status line and headers */
    char *body;
    size_t body_len;
};

static void resp_free(struct resp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may close early (413) */
        p += w;
        n -= (size_t)w;
    }
}

/* Sends one request (Connection: close) and reads the answer to EOF.
 * headers: extra header lines, each ending in \r\n, or NULL. */
static struct resp http_raw(int port, const char *method, const char *path,
                            const char *headers, const char *body,
                            size_t body_len)
{
    struct resp r = {0};
    int fd = connect_to(port);
    if (fd < 0)
        return r;
    char head[2048];
    snprintf(head, sizeof(head),
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
             "%sContent-Length: %zu\r\n\r\n",
             method, path, port, headers ? headers : "", body ? body_len : 0);
    send_all(fd, head, strlen(head));
    if (body != NULL)
        send_all(fd, body, body_len);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 15000) <= 0)
            break;
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (sep == NULL || strncmp(buf, "HTTP/1.", 7) != 0 || len < 12) {
        free(buf);
        return r;
    }
    r.status = atoi(buf + 9);
    r.head = strndup(buf, (size_t)(sep - buf));
    r.body_len = len - (size_t)(sep + 4 - buf);
    r.body = malloc(r.body_len + 1);
    memcpy(r.body, sep + 4, r.body_len);
    r.body[r.body_len] = '\0';
    free(buf);
    return r;
}

#define AUTH "Authorization: Bearer " TOKEN "\r\n"

static struct resp get(const char *path)
{
    return http_raw(sched_port, "GET", path, AUTH, NULL, 0);
}

static struct resp post(const char *path, const char *body)
{
    return http_raw(sched_port, "POST", path,
                    AUTH "Content-Type: application/json\r\n", body,
                    body ? strlen(body) : 0);
}

static json_t *json_of(const struct resp *r)
{
    json_error_t e;
    json_t *v = json_loadb(r->body, r->body_len, 0, &e);
    cr_assert_not_null(v, "not JSON (%s): %s", e.text, r->body);
    return v;
}

/* Asserts a JSON error answer with status code and error code word. */
static void expect_error(struct resp *r, int status, const char *code)
{
    cr_assert_eq(r->status, status, "status %d, want %d: %s", r->status, status,
                 r->body ? r->body : "");
    json_t *v = json_of(r);
    json_t *e = json_object_get(v, "error");
    cr_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
    cr_assert_gt(json_string_length(json_object_get(e, "message")), 0);
    json_decref(v);
}

static bool header_has(const struct resp *r, const char *line)
{
    return r->head != NULL && strstr(r->head, line) != NULL;
}

/* ---- processes ---------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void show_log(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    if (f == NULL)
        return;
    fprintf(stderr, "---- %s\n", path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

/* Starts the scheduler on a free port with token (NULL: none) and waits
 * until /healthz answers. */
static void start_scheduler(const char *url, const char *token,
                            const char *extra)
{
    char bin[512], http[64], envurl[256], envtok[128];
    sched_port = free_port();
    snprintf(http, sizeof(http), "--http=127.0.0.1:%d", sched_port);
    snprintf(envurl, sizeof(envurl), "REDIS_URL=%s", url);
    snprintf(envtok, sizeof(envtok), "WEFT_API_TOKEN=%s", token ? token : "");
    snprintf(sched_log, sizeof(sched_log), "%s/scheduler.log", fx.dir);
    const char *argv[] = {
        procs_binary("scheduler/weft-scheduler", bin, sizeof(bin)), http,
        "--workflows=" SRC("tests/data/cli"), extra, NULL};
    const char *env[] = {envurl, "WEFT_HMAC_KEY=" KEY, token ? envtok : NULL,
                         NULL};
    sched_pid = procs_spawn(argv, env, sched_log);
    cr_assert_gt(sched_pid, 0);
    for (int i = 0; i < 500; i++) {
        struct resp r = http_raw(sched_port, "GET", "/healthz", NULL, NULL, 0);
        int st = r.status;
        resp_free(&r);
        if (st == 200)
            return;
        sleep_ms(10);
    }
    show_log(sched_log);
    cr_assert_fail("scheduler did not start");
}

/* Starts a worker on the default queue; extra1 and extra2 (nullable) are
 * more flags. */
static void start_worker_with(const char *extra1, const char *extra2)
{
    char bin[512], http[64], envurl[256];
    worker_port = free_port();
    snprintf(http, sizeof(http), "--http=127.0.0.1:%d", worker_port);
    snprintf(envurl, sizeof(envurl), "REDIS_URL=%s", fx.url);
    snprintf(worker_log, sizeof(worker_log), "%s/worker.log", fx.dir);
    const char *argv[] = {procs_binary("worker/weft-worker", bin, sizeof(bin)),
                          http,
                          "--queues=default",
                          extra1,
                          extra2,
                          NULL};
    const char *env[] = {envurl, "WEFT_HMAC_KEY=" KEY, NULL};
    worker_pid = procs_spawn(argv, env, worker_log);
    cr_assert_gt(worker_pid, 0);
}

static void start_worker(void)
{
    start_worker_with(NULL, NULL);
}

static void wait_ready(int port)
{
    for (int i = 0; i < 1000; i++) {
        struct resp r = http_raw(port, "GET", "/readyz", NULL, NULL, 0);
        int st = r.status;
        resp_free(&r);
        if (st == 200)
            return;
        sleep_ms(10);
    }
    cr_assert_fail("not ready on port %d", port);
}

static void redis_up(void)
{
    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
    rc = redisConnectUnix(fx.sock);
    cr_assert(rc != NULL && rc->err == 0);
}

/* The usual system: Redis, a scheduler with the token, a worker. */
static void system_up(void)
{
    redis_up();
    start_scheduler(fx.url, TOKEN, NULL);
    start_worker();
    wait_ready(sched_port);
    wait_ready(worker_port);
}

static void stop_one(pid_t *pid, const char *log)
{
    if (*pid <= 0)
        return;
    int st = procs_stop(*pid, SIGTERM, 15000);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        show_log(log);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "%s did not exit cleanly (status %d)", log, st);
    *pid = 0;
}

static void system_down(void)
{
    stop_one(&worker_pid, worker_log);
    stop_one(&sched_pid, sched_log);
    if (rc != NULL)
        redisFree(rc);
    rc = NULL;
    redis_fixture_stop(&fx);
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "redis: %s", rc->errstr);
    return r;
}

/* Submits a run of yaml through the API; returns its id (static). */
static const char *submit(const char *yaml, const char *task)
{
    static char id[160];
    json_t *b = json_pack("{s:s, s:o}", "definition", yaml, "task",
                          json_loads(task ? task : "{}", 0, NULL));
    char *text = json_dumps(b, JSON_COMPACT);
    struct resp r = post("/v1/runs", text);
    cr_assert_eq(r.status, 202, "submit: %d %s", r.status, r.body);
    json_t *v = json_of(&r);
    snprintf(id, sizeof(id), "%s",
             json_string_value(json_object_get(v, "run")));
    char loc[256];
    snprintf(loc, sizeof(loc), "Location: /v1/runs/%s", id);
    cr_assert(header_has(&r, loc), "%s", r.head);
    json_decref(v);
    json_decref(b);
    free(text);
    resp_free(&r);
    return id;
}

/* Polls GET /v1/runs/{id} until its status is want; returns the doc. */
static json_t *wait_status(const char *id, const char *want)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/runs/%s", id);
    for (int i = 0; i < 1500; i++) {
        struct resp r = get(path);
        if (r.status == 200) {
            json_t *v = json_of(&r);
            const char *st = json_string_value(json_object_get(v, "status"));
            resp_free(&r);
            if (st != NULL && strcmp(st, want) == 0)
                return v;
            json_decref(v);
        } else {
            resp_free(&r);
        }
        sleep_ms(10);
    }
    show_log(sched_log);
    cr_assert_fail("run %s never reached %s", id, want);
    return NULL;
}

/* ---- Prometheus text ------------------------------------------------------
 */

/* Every line is a HELP or TYPE comment or a sample; returns the lines'
 * count. */
static int check_prometheus(const char *text)
{
    regex_t help, type, sample;
    cr_assert_eq(regcomp(&help, "^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$",
                         REG_EXTENDED | REG_NOSUB),
                 0);
    cr_assert_eq(regcomp(&type,
                         "^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* "
                         "(counter|gauge|histogram|summary|untyped)$",
                         REG_EXTENDED | REG_NOSUB),
                 0);
    cr_assert_eq(
        regcomp(&sample,
                "^[a-zA-Z_:][a-zA-Z0-9_:]*"
                "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\""
                "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\")*\\})? "
                "(-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|\\+Inf|-Inf)$",
                REG_EXTENDED | REG_NOSUB),
        0);
    int n = 0;
    const char *p = text;
    cr_assert(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
    while (*p) {
        const char *nl = strchr(p, '\n');
        char line[1024];
        size_t len = (size_t)(nl - p);
        cr_assert_lt(len, sizeof(line));
        memcpy(line, p, len);
        line[len] = '\0';
        bool ok = regexec(&help, line, 0, NULL, 0) == 0 ||
                  regexec(&type, line, 0, NULL, 0) == 0 ||
                  regexec(&sample, line, 0, NULL, 0) == 0;
        cr_assert(ok, "not Prometheus text: '%s'", line);
        n++;
        p = nl + 1;
    }
    regfree(&help);
    regfree(&type);
    regfree(&sample);
    return n;
}

/* The value of the sample line starting with `series ` (-1: absent). */
static double metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;
         p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static char *fetch_metrics(int port)
{
    struct resp r = http_raw(port, "GET", "/metrics", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert(header_has(&r, "Content-Type: text/plain; version=0.0.4"), "%s",
              r.head);
    char *body = r.body;
    r.body = NULL;
    resp_free(&r);
    return body;
}

/* ---- probes -----------------------------------------------------------------
 */

Test(http_probes, healthz_and_readyz_answer)
{
    system_up();
    struct resp r = http_raw(sched_port, "GET", "/healthz", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ok\n");
    resp_free(&r);
    r = http_raw(sched_port, "GET", "/readyz", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    r = http_raw(worker_port, "GET", "/healthz", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    r = http_raw(worker_port, "GET", "/nope", NULL, NULL, 0);
    expect_error(&r, 404, "not_found");
    resp_free(&r);
    r = http_raw(worker_port, "POST", "/metrics", NULL, "{}", 2);
    expect_error(&r, 405, "method_not_allowed");
    resp_free(&r);
    system_down();
}

Test(http_probes, readyz_is_503_until_redis_is_up)
{
    cr_assert_eq(redis_fixture_start(&fx, NULL), 0);
    redis_fixture_kill(&fx); /* keeps its dir, socket path and port */
    start_scheduler(fx.url, TOKEN, NULL);
    for (int i = 0; i < 5; i++) {
        struct resp r = http_raw(sched_port, "GET", "/readyz", NULL, NULL, 0);
        cr_assert_eq(r.status, 503, "readyz %d without Redis", r.status);
        resp_free(&r);
        r = http_raw(sched_port, "GET", "/healthz", NULL, NULL, 0);
        cr_assert_eq(r.status, 200);
        resp_free(&r);
        sleep_ms(50);
    }
    /* The API says so too, quickly, whatever the endpoint needs. */
    const char *paths[] = {"/v1/runs",     "/metrics",   "/v1/queues",
                           "/v1/breakers", "/v1/runs/x", "/v1/dlq"};
    struct resp r;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        r = get(paths[i]);
        expect_error(&r, 503, "unavailable");
        resp_free(&r);
    }
    r = post("/v1/runs", "{}");
    expect_error(&r, 503, "unavailable");
    resp_free(&r);
    cr_assert_eq(redis_fixture_restart(&fx), 0);
    wait_ready(sched_port);
    r = get("/v1/runs");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    rc = NULL;
    system_down();
}

/* ---- metrics --------------------------------------------------------------
 */

Test(http_metrics, prometheus_text_and_counters_move_after_a_run)
{
    system_up();
    /* A breaker hash as the scheduler writes them. */
    freeReplyObject(cmd("HSET weft:breaker:qa state open failures 3"));
    char *before = fetch_metrics(sched_port);
    cr_assert_gt(check_prometheus(before), 20);
    cr_assert_eq(metric(before, "weft_scheduler_ready"), 1);
    cr_assert_eq(metric(before, "weft_breaker_state{persona=\"qa\"}"), 2);
    cr_assert_geq(metric(before, "weft_redis_rtt_seconds"), 0);
    double msgs = metric(before, "weft_events_processed_total");
    double trans = metric(before, "weft_transitions_total");
    double ok = metric(before, "weft_runs_total{status=\"success\"}");
    cr_assert_geq(msgs, 0);

    const char *id = submit(two_steps(0), NULL);
    json_decref(wait_status(id, "success"));

    char *after = fetch_metrics(sched_port);
    check_prometheus(after);
    cr_assert_gt(metric(after, "weft_events_processed_total"), msgs);
    cr_assert_gt(metric(after, "weft_transitions_total"), trans);
    cr_assert_eq(metric(after, "weft_runs_total{status=\"success\"}"), ok + 1);
    cr_assert_eq(metric(after, "weft_queue_depth{queue=\"default\"}"), 0);
    cr_assert_eq(metric(after, "weft_queue_pending{queue=\"default\"}"), 0);
    cr_assert_geq(metric(after, "weft_queue_lag{queue=\"default\"}"), 0);
    cr_assert_eq(metric(after, "weft_queue_consumers{queue=\"default\"}"), 1);
    cr_assert_eq(metric(after, "weft_dlq_size"), 0);

    char *w = fetch_metrics(worker_port);
    check_prometheus(w);
    cr_assert_eq(metric(w, "weft_worker_ready"), 1);
    cr_assert_eq(metric(w, "weft_jobs_succeeded_total"), 2);
    cr_assert_eq(metric(w, "weft_step_duration_seconds_count{type=\"noop\","
                           "persona=\"\"}"),
                 2);
    cr_assert_eq(metric(w, "weft_step_duration_seconds_bucket{type=\"noop\","
                           "persona=\"\",le=\"+Inf\"}"),
                 2);
    free(before);
    free(after);
    free(w);
    system_down();
}

/* ---- runs ------------------------------------------------------------------
 */

/* A composite step starts from a ready mark, which the scheduler reads
 * from the stream and also gets in the reply of the script that made it:
 * it must act on one copy only. A second would be a stale transition. */
Test(http_metrics, composite_steps_start_once)
{
    static const char yaml[] = "name: groups\n"
                               "steps:\n"
                               "  - {id: a, type: noop}\n"
                               "  - id: g1\n"
                               "    type: parallel\n"
                               "    dependencies: [a]\n"
                               "    steps:\n"
                               "      - {id: b, type: noop}\n"
                               "      - {id: c, type: noop}\n"
                               "  - id: g2\n"
                               "    type: parallel\n"
                               "    dependencies: [g1]\n"
                               "    steps:\n"
                               "      - {id: d, type: noop}\n"
                               "  - id: g3\n"
                               "    type: conditional\n"
                               "    dependencies: [g2]\n"
                               "    condition: \"true\"\n"
                               "    then_steps:\n"
                               "      - {id: e, type: noop}\n";
    char ids[10][160];
    system_up();
    char *before = fetch_metrics(sched_port);
    double stale = metric(before, "weft_stale_transitions_total");
    double trans = metric(before, "weft_transitions_total");
    for (int i = 0; i < 10; i++)
        snprintf(ids[i], sizeof(ids[i]), "%s", submit(yaml, NULL));
    for (int i = 0; i < 10; i++)
        json_decref(wait_status(ids[i], "success"));
    char *after = fetch_metrics(sched_port);
    cr_assert_gt(metric(after, "weft_transitions_total"), trans);
    cr_assert_eq(metric(after, "weft_stale_transitions_total"), stale);
    free(before);
    free(after);
    system_down();
}

Test(http_runs, submit_get_and_list)
{
    system_up();
    const char *id = submit(two_steps(0), "{\"type\": \"feature\"}");
    char run[160];
    snprintf(run, sizeof(run), "%s", id);
    json_t *doc = wait_status(run, "success");
    /* The status document, as `weft status --json` prints it. */
    cr_assert_str_eq(json_string_value(json_object_get(doc, "workflow")),
                     "two");
    json_t *steps = json_object_get(doc, "steps");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(steps, "wait"), "status")),
                     "success");
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(steps, "after"), "attempts")),
                 1);
    /* The definition with its order and dependencies. */
    json_t *def = json_object_get(doc, "definition");
    json_t *dsteps = json_object_get(def, "steps");
    cr_assert_eq(json_array_size(dsteps), 2);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(dsteps, 1), "id")),
        "after");
    cr_assert_str_eq(
        json_string_value(json_array_get(
            json_object_get(json_array_get(dsteps, 1), "deps"), 0)),
        "wait");
    cr_assert_eq(json_array_size(json_object_get(def, "order")), 2);
    /* History, oldest first, and the context. */
    json_t *hist = json_object_get(doc, "history");
    cr_assert_geq(json_array_size(hist), 6);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(hist, 0), "type")),
        "run");
    json_t *ctx = json_object_get(doc, "context");
    cr_assert_str_eq(json_string_value(
                         json_object_get(json_object_get(ctx, "task"), "type")),
                     "feature");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ctx, "state"), "wait_status")),
                     "success");
    cr_assert(json_is_array(json_object_get(ctx, "artifacts")));
    cr_assert_eq(json_string_length(json_object_get(doc, "trace")), 32);
    json_decref(doc);

    /* ?history=0 leaves the history out. */
    char path[256];
    snprintf(path, sizeof(path), "/v1/runs/%s?history=0", run);
    struct resp r = get(path);
    cr_assert_eq(r.status, 200);
    doc = json_of(&r);
    cr_assert_eq(json_array_size(json_object_get(doc, "history")), 0);
    json_decref(doc);
    resp_free(&r);

    /* By a stored digest, and by a workflow file name of --workflows. */
    snprintf(path, sizeof(path), "/v1/runs/%s", run);
    r = get(path);
    doc = json_of(&r);
    char body[256];
    snprintf(body, sizeof(body), "{\"digest\": \"%s\", \"run\": \"by-digest\"}",
             json_string_value(json_object_get(doc, "digest")));
    json_decref(doc);
    resp_free(&r);
    r = post("/v1/runs", body);
    cr_assert_eq(r.status, 202, "%s", r.body);
    resp_free(&r);
    json_decref(wait_status("by-digest", "success"));
    r = post("/v1/runs",
             "{\"workflow\": \"noop-chain\", \"run\": \"by-name\"}");
    cr_assert_eq(r.status, 202, "%s", r.body);
    resp_free(&r);
    json_decref(wait_status("by-name", "success"));
    /* Without a workflow, the coordinator's routes decide; there are
     * none here, so the run fails and says why. */
    r = post("/v1/runs", "{\"task\": {\"type\": \"x\"}, \"run\": \"routed\"}");
    cr_assert_eq(r.status, 202, "%s", r.body);
    resp_free(&r);
    doc = wait_status("routed", "failed");
    cr_assert(strstr(json_string_value(json_object_get(doc, "error")),
                     "route") != NULL);
    json_decref(doc);

    /* The list, newest first, filtered and limited. */
    r = get("/v1/runs?status=success&limit=2");
    cr_assert_eq(r.status, 200);
    doc = json_of(&r);
    json_t *runs = json_object_get(doc, "runs");
    cr_assert_eq(json_array_size(runs), 2);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(runs, 0), "id")),
        "by-name");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(runs, 0), "status")),
        "success");
    json_decref(doc);
    resp_free(&r);
    r = get("/v1/runs?status=failed");
    doc = json_of(&r);
    cr_assert_eq(json_array_size(json_object_get(doc, "runs")), 1);
    json_decref(doc);
    resp_free(&r);
    r = get("/v1/runs?status=bogus");
    expect_error(&r, 400, "bad_request");
    resp_free(&r);
    r = get("/v1/runs?limit=1001");
    expect_error(&r, 400, "bad_request");
    resp_free(&r);
    r = get("/v1/runs?limit=1000");
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    system_down();
}

Test(http_runs, bad_submissions_are_4xx_with_a_message)
{
    system_up();
    struct resp r = post("/v1/runs", "{\"task\": ");
    expect_error(&r, 400, "bad_request");
    cr_assert(strstr(r.body, "invalid JSON") != NULL, "%s", r.body);
    resp_free(&r);
    r = post("/v1/runs", "[1, 2]");
    expect_error(&r, 400, "bad_request");
    resp_free(&r);
    r = post("/v1/runs", "{\"tsak\": {}}");
    expect_error(&r, 400, "bad_request");
    cr_assert(strstr(r.body, "tsak") != NULL);
    resp_free(&r);
    r = post("/v1/runs", "{\"task\": 3}");
    expect_error(&r, 400, "bad_request");
    resp_free(&r);
    r = post("/v1/runs", "{\"run\": \"a:b\"}");
    expect_error(&r, 400, "bad_request");
    resp_free(&r);
    r = post("/v1/runs", "{\"digest\": \"abc\"}");
    expect_error(&r, 400, "bad_request");
    resp_free(&r);
    r = post("/v1/runs", "{\"digest\": \"00000000000000000000000000000000"
                         "00000000000000000000000000000000\"}");
    expect_error(&r, 422, "unprocessable");
    resp_free(&r);
    r = post("/v1/runs", "{\"definition\": \"steps: []\\n\"}");
    cr_assert_eq(r.status, 422, "%s", r.body);
    json_t *v = json_of(&r);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(v, "error"), "code")),
        "invalid_workflow");
    cr_assert_gt(json_array_size(
                     json_object_get(json_object_get(v, "error"), "details")),
                 0);
    json_decref(v);
    resp_free(&r);
    r = get("/v1/runs/no-such-run");
    expect_error(&r, 404, "not_found");
    resp_free(&r);
    r = get("/v1/nope");
    expect_error(&r, 404, "not_found");
    resp_free(&r);
    r = http_raw(sched_port, "DELETE", "/v1/runs", AUTH, NULL, 0);
    cr_assert_eq(r.status, 501); /* libevent: method not allowed here */
    resp_free(&r);
    r = http_raw(sched_port, "GET", "/v1/runs/x/cancel", AUTH, NULL, 0);
    expect_error(&r, 405, "method_not_allowed");
    cr_assert(header_has(&r, "Allow: POST"));
    resp_free(&r);
    system_down();
}

Test(http_runs, body_limit_is_1_mib)
{
    system_up();
    /* Exactly the limit: a valid task padded to MAX_BODY bytes. */
    const char *pre = "{\"run\": \"big\", \"task\": {\"pad\": \"";
    const char *post_ = "\"}}";
    char *body = malloc(MAX_BODY + 2);
    size_t n = strlen(pre);
    memcpy(body, pre, n);
    memset(body + n, 'a', MAX_BODY - n - strlen(post_));
    memcpy(body + MAX_BODY - strlen(post_), post_, strlen(post_));
    struct resp r =
        http_raw(sched_port, "POST", "/v1/runs", AUTH, body, MAX_BODY);
    cr_assert_eq(r.status, 202, "%d %s", r.status, r.body ? r.body : "");
    resp_free(&r);
    /* One byte more. */
    memmove(body + n + 1, body + n, MAX_BODY - n);
    body[n] = 'a';
    r = http_raw(sched_port, "POST", "/v1/runs", AUTH, body, MAX_BODY + 1);
    cr_assert_eq(r.status, 413, "%d", r.status);
    resp_free(&r);
    free(body);
    /* The server still answers. */
    r = get("/v1/runs");
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    system_down();
}

Test(http_runs, cancel_and_control_events)
{
    system_up();
    char id[160];
    snprintf(id, sizeof(id), "%s", submit(two_steps(3000), NULL));
    json_decref(wait_status(id, "running"));
    char path[256];
    struct resp r;
    /* Control requests are checked against the run before any event is
     * written: a running run cannot be retried, a running step cannot be
     * resolved, and the bodies are checked field by field. */
    static const struct {
        const char *what, *body;
        int status;
        const char *code;
    } bad[] = {
        {"retry", "{}", 409, "conflict"},
        {"retry", "{\"action\": \"retry\"}", 400, "bad_request"},
        {"retry", "{\"set\": {\"k\": 1}}", 400, "bad_request"},
        {"retry", "{\"step\": \"nope\"}", 404, "not_found"},
        {"resolve", "{\"step\": \"wait\", \"action\": \"skip\"}", 409,
         "conflict"},
        {"resolve", "{\"step\": \"wait\"}", 400, "bad_request"},
        {"resolve", "{\"step\": \"wait\", \"action\": \"redo\"}", 400,
         "bad_request"},
        {"resolve",
         "{\"step\": \"wait\", \"action\": \"skip\", \"set\": {\"a b\": 1}}",
         400, "bad_request"},
        {"approve", "{\"step\": \"nope\"}", 404, "not_found"},
        {"approve", "{}", 400, "bad_request"},
        {"approve", "{\"step\": \"wait\", \"set\": [1]}", 400, "bad_request"},
        {"approve", "{\"step\": \"wait\", \"action\": \"maybe\"}", 400,
         "bad_request"},
        {"approve", "{\"step\": \"wait\", \"note\": 1}", 400, "bad_request"},
        {"approve", "{\"step\": \"wait\"}", 409, "conflict"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), "/v1/runs/%s/%s", id, bad[i].what);
        r = post(path, bad[i].body);
        cr_assert_eq(r.status, bad[i].status, "%s %s: %d %s", bad[i].what,
                     bad[i].body, r.status, r.body);
        expect_error(&r, bad[i].status, bad[i].code);
        resp_free(&r);
    }
    r = post("/v1/runs/nope/approve", "{\"step\": \"wait\"}");
    expect_error(&r, 404, "not_found");
    resp_free(&r);
    /* A task that could not start is a failed run with nothing to run. */
    freeReplyObject(cmd("HSET weft:run:never status failed error nope"));
    r = post("/v1/runs/never/retry", "{}");
    expect_error(&r, 409, "conflict");
    resp_free(&r);
    /* Nothing reached the scheduler: no control entry in the history. */
    redisReply *h = cmd("XRANGE weft:run:%s:history - +", id);
    for (size_t i = 0; i < h->elements; i++) {
        redisReply *f = h->element[i]->element[1];
        cr_assert_str_neq(f->element[1]->str, "control");
    }
    freeReplyObject(h);

    snprintf(path, sizeof(path), "/v1/runs/%s/cancel", id);
    r = post(path, NULL);
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *v = json_of(&r);
    cr_assert(json_is_true(json_object_get(v, "requested")));
    json_decref(v);
    resp_free(&r);
    json_decref(wait_status(id, "cancelled"));
    /* A second cancel finds the run ended. */
    r = post(path, "{\"reason\": \"again\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    v = json_of(&r);
    cr_assert(json_is_false(json_object_get(v, "requested")));
    cr_assert_str_eq(json_string_value(json_object_get(v, "status")),
                     "cancelled");
    json_decref(v);
    resp_free(&r);
    r = post("/v1/runs/nope/cancel", NULL);
    expect_error(&r, 404, "not_found");
    resp_free(&r);
    system_down();
}

/* Polls GET /v1/runs/{id} until step's status is want; returns the
 * step's document (a new reference). */
static json_t *wait_step(const char *id, const char *step, const char *want)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/runs/%s", id);
    for (int i = 0; i < 1500; i++) {
        struct resp r = get(path);
        json_t *v = r.status == 200 ? json_of(&r) : NULL;
        resp_free(&r);
        json_t *s = json_object_get(json_object_get(v, "steps"), step);
        const char *st = json_string_value(json_object_get(s, "status"));
        if (st != NULL && strcmp(st, want) == 0) {
            json_incref(s);
            json_decref(v);
            return s;
        }
        json_decref(v);
        sleep_ms(10);
    }
    show_log(sched_log);
    cr_assert_fail("step %s of run %s never reached %s", step, id, want);
    return NULL;
}

static const char *gated = "name: gated\n"
                           "steps:\n"
                           "  - {id: build, type: noop, on_failure: escalate,\n"
                           "     params: {fail_until: 2}}\n"
                           "  - id: gate\n"
                           "    type: approval\n"
                           "    dependencies: [build]\n"
                           "    approvers: [ops]\n"
                           "    message: \"deploy {{state.version}}?\"\n"
                           "  - {id: ship, type: noop, dependencies: [gate]}\n";

Test(http_runs, resolve_and_approve_take_effect)
{
    system_up();
    char id[160], path[256];
    snprintf(id, sizeof(id), "%s", submit(gated, NULL));
    json_t *s = wait_step(id, "build", "waiting_for_human");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(s, "wait"), "kind")),
        "escalation");
    json_decref(s);
    json_decref(wait_status(id, "waiting_for_human"));
    snprintf(path, sizeof(path), "/v1/runs/%s/resolve", id);
    struct resp r = post(path, "{\"step\": \"build\", \"action\": \"retry\", "
                               "\"by\": \"ops\", \"comment\": \"disk freed\", "
                               "\"set\": {\"version\": \"1.2\"}}");
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *v = json_of(&r);
    cr_assert_str_eq(json_string_value(json_object_get(v, "type")), "resolve");
    cr_assert_str_eq(json_string_value(json_object_get(v, "action")), "retry");
    cr_assert_not_null(json_object_get(v, "event"));
    json_decref(v);
    resp_free(&r);
    /* The retry ran build again (attempt 2 succeeds), and the approval
     * waits with its message rendered from the state resolve set. */
    s = wait_step(id, "gate", "waiting_for_human");
    json_t *w = json_object_get(s, "wait");
    cr_assert_str_eq(json_string_value(json_object_get(w, "kind")), "approval");
    cr_assert_str_eq(json_string_value(json_object_get(w, "message")),
                     "deploy 1.2?");
    cr_assert_str_eq(
        json_string_value(json_array_get(json_object_get(w, "approvers"), 0)),
        "ops");
    json_decref(s);
    snprintf(path, sizeof(path), "/v1/runs/%s/approve", id);
    r = post(path, "{\"step\": \"gate\", \"by\": \"eve\"}");
    expect_error(&r, 409, "conflict");
    resp_free(&r);
    r = post(path, "{\"step\": \"build\", \"by\": \"ops\"}");
    expect_error(&r, 409, "conflict");
    resp_free(&r);
    r = post(path,
             "{\"step\": \"gate\", \"by\": \"ops\", \"comment\": \"go\"}");
    cr_assert_eq(r.status, 202, "%s", r.body);
    resp_free(&r);
    v = wait_status(id, "success");
    json_t *steps = json_object_get(v, "steps");
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(steps, "build"), "attempts")),
                 2);
    cr_assert_str_eq(json_string_value(
                         json_object_get(json_object_get(steps, "gate"), "by")),
                     "ops");
    json_decref(v);
    redisReply *x = cmd("HGET weft:run:%s:state gate_result", id);
    cr_assert_str_eq(x->str, "{\"approved\":true,\"by\":\"ops\",\"comment\":"
                             "\"go\"}");
    freeReplyObject(x);
    x = cmd("HGET weft:run:%s:state version", id);
    cr_assert_str_eq(x->str, "\"1.2\"");
    freeReplyObject(x);
    system_down();
}

Test(http_runs, retry_takes_effect)
{
    system_up();
    char id[160], path[256];
    snprintf(id, sizeof(id), "%s",
             submit("name: flaky\n"
                    "steps:\n"
                    "  - {id: a, type: noop}\n"
                    "  - {id: b, type: noop, dependencies: [a],\n"
                    "     params: {fail_until: 2}}\n"
                    "  - {id: c, type: noop, dependencies: [b]}\n",
                    NULL));
    json_decref(wait_status(id, "failed"));
    snprintf(path, sizeof(path), "/v1/runs/%s/retry", id);
    struct resp r = post(path, "{\"by\": \"ops\", \"comment\": \"again\"}");
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *v = json_of(&r);
    cr_assert_str_eq(json_string_value(json_object_get(v, "type")), "retry");
    cr_assert_str_eq(json_string_value(json_object_get(v, "status")), "failed");
    json_decref(v);
    resp_free(&r);
    v = wait_status(id, "success");
    json_t *steps = json_object_get(v, "steps");
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(steps, "a"), "attempts")),
                 1, "a kept its result");
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(steps, "b"), "attempts")),
                 2);
    json_decref(v);
    /* From a step of the run that succeeded: c runs again. */
    r = post(path, "{\"step\": \"c\"}");
    cr_assert_eq(r.status, 202, "%s", r.body);
    resp_free(&r);
    json_t *c = NULL;
    for (int i = 0; i < 1500; i++) {
        json_decref(c);
        c = wait_step(id, "c", "success");
        if (json_integer_value(json_object_get(c, "attempts")) == 2)
            break;
        sleep_ms(10);
    }
    cr_assert_eq(json_integer_value(json_object_get(c, "attempts")), 2);
    json_decref(c);
    json_decref(wait_status(id, "success"));
    system_down();
}

/* ---- queues, breakers, DLQ -------------------------------------------- */

Test(http_ops, queues_breakers_and_dlq)
{
    system_up();
    freeReplyObject(cmd("HSET weft:breaker:qa state half_open failures 2"));
    freeReplyObject(cmd("HSET weft:breaker:git:origin state open until 9"));
    /* Not breakers: the waiters of one, a name that is no breaker's. */
    freeReplyObject(cmd("ZADD weft:breakerwait:qa 1 r|s|1"));
    freeReplyObject(cmd("HSET weft:breaker:svn:x state open"));
    /* The worker joins the group with its first read. */
    json_decref(wait_status(submit(two_steps(0), NULL), "success"));
    struct resp r = get("/v1/queues");
    cr_assert_eq(r.status, 200);
    json_t *v = json_of(&r);
    json_t *q = json_array_get(json_object_get(v, "queues"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(q, "name")), "default");
    cr_assert_eq(json_integer_value(json_object_get(q, "consumers")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(q, "key")),
                     "weft:q:default");
    cr_assert(json_is_integer(json_object_get(q, "length")));
    cr_assert(json_is_integer(json_object_get(q, "pending")));
    json_decref(v);
    resp_free(&r);
    r = get("/v1/breakers");
    v = json_of(&r);
    json_t *bs = json_object_get(v, "breakers");
    cr_assert_eq(json_array_size(bs), 2, "%s", r.body);
    json_t *b = json_array_get(bs, 1);
    cr_assert_str_eq(json_string_value(json_object_get(b, "persona")), "qa");
    cr_assert_str_eq(json_string_value(json_object_get(b, "state")),
                     "half_open");
    b = json_array_get(bs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(b, "persona")),
                     "git:origin");
    cr_assert_str_eq(json_string_value(json_object_get(b, "state")), "open");
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(b, "fields"), "until")),
                 9);
    json_decref(v);
    resp_free(&r);

    /* A dead task that carries its message, one that does not. */
    freeReplyObject(cmd("XADD weft:dlq * source tasks entry 1-1 reason test "
                        "run from-dlq workflow noop-chain type x task {}"));
    redisReply *bad = cmd("XADD weft:dlq * source events entry 1-2 run r "
                          "reason %s",
                          "unknown event type");
    char badid[64];
    snprintf(badid, sizeof(badid), "%s", bad->str);
    freeReplyObject(bad);
    r = get("/v1/dlq?limit=10");
    cr_assert_eq(r.status, 200);
    v = json_of(&r);
    cr_assert_eq(json_integer_value(json_object_get(v, "length")), 2);
    json_t *entries = json_object_get(v, "entries");
    cr_assert_eq(json_array_size(entries), 2);
    json_t *newest = json_array_get(entries, 0),
           *oldest = json_array_get(entries, 1);
    cr_assert(json_is_false(json_object_get(newest, "requeueable")));
    cr_assert(json_is_true(json_object_get(oldest, "requeueable")));
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(oldest, "fields"), "run")),
                     "from-dlq");
    char goodid[64];
    snprintf(goodid, sizeof(goodid), "%s",
             json_string_value(json_object_get(oldest, "id")));
    json_decref(v);
    resp_free(&r);

    char path[256];
    snprintf(path, sizeof(path), "/v1/dlq/%s/requeue", badid);
    r = post(path, NULL);
    expect_error(&r, 422, "unprocessable");
    resp_free(&r);
    r = post("/v1/dlq/9-9/requeue", NULL);
    expect_error(&r, 404, "not_found");
    resp_free(&r);
    r = post("/v1/dlq/x/requeue", NULL);
    expect_error(&r, 404, "not_found");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/dlq/%s/requeue", goodid);
    r = post(path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    v = json_of(&r);
    cr_assert_str_eq(json_string_value(json_object_get(v, "stream")),
                     "weft:tasks");
    json_decref(v);
    resp_free(&r);
    /* The task runs, and the entry left the DLQ. */
    json_decref(wait_status("from-dlq", "success"));
    r = get("/v1/dlq?limit=0");
    v = json_of(&r);
    cr_assert_eq(json_integer_value(json_object_get(v, "length")), 1);
    cr_assert_eq(json_array_size(json_object_get(v, "entries")), 0);
    json_decref(v);
    resp_free(&r);
    r = post(path, NULL);
    expect_error(&r, 404, "not_found");
    resp_free(&r);
    system_down();
}

/* Polls Redis until `cmd` answers the integer want (15 s at most). */
static void wait_int(long long want, const char *what, const char *fmt, ...)
{
    for (int i = 0; i < 1500; i++) {
        va_list ap;
        va_start(ap, fmt);
        redisReply *r = redisvCommand(rc, fmt, ap);
        va_end(ap);
        cr_assert_not_null(r);
        long long got = -1;
        if (r->type == REDIS_REPLY_INTEGER)
            got = r->integer;
        else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                 r->element[0]->type == REDIS_REPLY_INTEGER)
            got = r->element[0]->integer; /* XPENDING's summary */
        freeReplyObject(r);
        if (got == want)
            return;
        sleep_ms(10);
    }
    show_log(worker_log);
    cr_assert_fail("%s never became %lld", what, want);
}

static long long int_of(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert(r != NULL && r->type == REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* A real job dead-lettered by the worker (past its delivery limit) comes
 * back from the DLQ through the API: the entry carries the signed job,
 * so it is requeueable (it used to answer 422: the worker did not copy
 * `sig`), and the job, whose step has since moved on to a second attempt
 * and succeeded, is dropped by the worker as stale: nothing changes. */
Test(http_ops, requeues_a_job_the_worker_dead_lettered)
{
    redis_up();
    start_scheduler(fx.url, TOKEN, NULL);
    wait_ready(sched_port);
    const char *yaml = "name: once\n"
                       "steps:\n"
                       "  - id: a\n"
                       "    type: noop\n"
                       "    retry: {max: 1, delay: 0}\n";
    char run[160];
    snprintf(run, sizeof(run), "%s", submit(yaml, NULL));
    /* A worker that dies with the job, over and over: claimed by a ghost
     * consumer and delivered 5 times. */
    wait_int(1, "the job on weft:q:default", "XLEN weft:q:default");
    freeReplyObject(cmd("XGROUP CREATE weft:q:default workers 0 MKSTREAM"));
    redisReply *rd = cmd("XREADGROUP GROUP workers ghost COUNT 1 STREAMS "
                         "weft:q:default >");
    cr_assert_eq(rd->type, REDIS_REPLY_ARRAY);
    char job_id[64];
    snprintf(job_id, sizeof(job_id), "%s",
             rd->element[0]->element[1]->element[0]->element[0]->str);
    freeReplyObject(rd);
    freeReplyObject(cmd("XCLAIM weft:q:default workers ghost 0 %s "
                        "RETRYCOUNT 5",
                        job_id));
    start_worker_with("--visibility=200", "--delivery-limit=3");
    wait_ready(worker_port);
    /* Attempt 1 went to the DLQ and failed as retryable; attempt 2 ran. */
    json_decref(wait_status(run, "success"));
    char steps[256];
    snprintf(steps, sizeof(steps), "weft:run:%s:steps", run);
    redisReply *att = cmd("HGET %s a:attempt", steps);
    cr_assert_str_eq(att->str, "2");
    freeReplyObject(att);

    struct resp r = get("/v1/dlq");
    cr_assert_eq(r.status, 200);
    json_t *v = json_of(&r);
    cr_assert_eq(json_integer_value(json_object_get(v, "length")), 1);
    json_t *e = json_array_get(json_object_get(v, "entries"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(e, "kind")), "job");
    cr_assert_str_eq(json_string_value(json_object_get(e, "origin")),
                     "weft:q:default");
    cr_assert_str_eq(json_string_value(json_object_get(e, "reason")),
                     "delivery limit exceeded");
    cr_assert_str_eq(json_string_value(json_object_get(e, "run")), run);
    cr_assert_str_eq(json_string_value(json_object_get(e, "step")), "a");
    cr_assert_str_eq(json_string_value(json_object_get(e, "attempt")), "1");
    cr_assert(json_is_true(json_object_get(e, "requeueable")), "%s", r.body);
    cr_assert_gt(json_integer_value(json_object_get(e, "at")), 0);
    json_t *fields = json_object_get(e, "fields");
    cr_assert_str_eq(json_string_value(json_object_get(fields, "dlq_entry")),
                     job_id);
    cr_assert_eq(json_string_length(json_object_get(fields, "sig")), 64);
    char path[256];
    snprintf(path, sizeof(path), "/v1/dlq/%s/requeue",
             json_string_value(json_object_get(e, "id")));
    json_decref(v);
    resp_free(&r);

    char hist[256];
    snprintf(hist, sizeof(hist), "weft:run:%s:history", run);
    long long hist_before = int_of("XLEN %s", hist);
    r = post(path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    v = json_of(&r);
    cr_assert_str_eq(json_string_value(json_object_get(v, "stream")),
                     "weft:q:default");
    cr_assert_str_eq(json_string_value(json_object_get(v, "kind")), "job");
    cr_assert_not_null(json_string_value(json_object_get(v, "id")));
    json_decref(v);
    resp_free(&r);
    /* The DLQ let go of it; the worker claims the job, finds its attempt
     * superseded, and acknowledges it without running it. */
    cr_assert_eq(int_of("XLEN weft:dlq"), 0);
    wait_int(0, "weft:q:default", "XLEN weft:q:default");
    wait_int(0, "pending jobs", "XPENDING weft:q:default workers");
    redisReply *st = cmd("HMGET %s a a:attempt", steps);
    cr_assert_str_eq(st->element[0]->str, "success");
    cr_assert_str_eq(st->element[1]->str, "2");
    freeReplyObject(st);
    cr_assert_eq(int_of("XLEN %s", hist), hist_before,
                 "the stale job changed the run's history");
    /* A second requeue of the same entry finds it gone. */
    r = post(path, NULL);
    expect_error(&r, 404, "not_found");
    resp_free(&r);
    system_down();
}

/* ---- auth -------------------------------------------------------------------
 */

Test(http_auth, token_is_required_and_checked)
{
    system_up();
    struct resp r = http_raw(sched_port, "GET", "/v1/runs", NULL, NULL, 0);
    expect_error(&r, 401, "unauthorized");
    cr_assert(header_has(&r, "WWW-Authenticate: Bearer"));
    resp_free(&r);
    r = http_raw(sched_port, "GET", "/v1/runs",
                 "Authorization: Bearer wrong-token-abcdef\r\n", NULL, 0);
    expect_error(&r, 401, "unauthorized");
    resp_free(&r);
    r = http_raw(sched_port, "GET", "/v1/runs",
                 "Authorization: Bearer " TOKEN "x\r\n", NULL, 0);
    expect_error(&r, 401, "unauthorized");
    resp_free(&r);
    r = http_raw(sched_port, "GET", "/v1/runs", "Authorization: Basic eDp5\r\n",
                 NULL, 0);
    expect_error(&r, 401, "unauthorized");
    resp_free(&r);
    r = http_raw(sched_port, "POST", "/v1/runs", NULL, "{}", 2);
    expect_error(&r, 401, "unauthorized");
    resp_free(&r);
    r = http_raw(sched_port, "GET", "/v1/runs",
                 "authorization: bearer " TOKEN "\r\n", NULL, 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    /* Probes, metrics and the page need no token. */
    r = http_raw(sched_port, "GET", "/metrics", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    r = http_raw(sched_port, "GET", "/", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert(header_has(&r, "Content-Type: text/html"));
    cr_assert(header_has(&r, "Content-Security-Policy: "));
    cr_assert(strstr(r.body, "<title>weft</title>") != NULL);
    resp_free(&r);
    system_down();
}

Test(http_auth, without_a_token_only_loopback_reads_pass)
{
    redis_up();
    start_scheduler(fx.url, NULL, NULL);
    wait_ready(sched_port);
    struct resp r = http_raw(sched_port, "GET", "/v1/runs", NULL, NULL, 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    r = http_raw(sched_port, "GET", "/v1/queues", NULL, NULL, 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    r = http_raw(sched_port, "POST", "/v1/runs", NULL, "{}", 2);
    expect_error(&r, 401, "unauthorized");
    resp_free(&r);
    r = http_raw(sched_port, "POST", "/v1/runs/x/cancel",
                 "Authorization: Bearer anything\r\n", "{}", 2);
    expect_error(&r, 401, "unauthorized");
    resp_free(&r);
    /* A name that is not loopback: DNS rebinding from a web page. */
    int fd = connect_to(sched_port);
    const char *req = "GET /v1/runs HTTP/1.1\r\nHost: evil.example:80\r\n"
                      "Connection: close\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[512] = {0};
    size_t got = 0;
    for (ssize_t n; (n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0;)
        got += (size_t)n;
    close(fd);
    cr_assert(strncmp(buf, "HTTP/1.1 401", 12) == 0, "%s", buf);
    system_down();
}

/* ---- clients that go away ---------------------------------------------------
 */

Test(http_robust, client_gone_before_redis_answers)
{
    system_up();
    /* Hold every Redis reply for a while. */
    freeReplyObject(cmd("CLIENT PAUSE 700 ALL"));
    const char *paths[] = {"/v1/runs/x", "/v1/runs", "/metrics", "/v1/queues",
                           "/v1/dlq"};
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            int fd = connect_to(sched_port);
            char req[256];
            snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH "\r\n",
                     paths[i]);
            send_all(fd, req, strlen(req));
            if (k == 1) {
                shutdown(fd, SHUT_WR); /* half-closed, then gone */
                sleep_ms(20);
            }
            if (k == 2) { /* reset instead of FIN */
                struct linger l = {1, 0};
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
            }
            close(fd);
        }
        sleep_ms(50);
    }
    /* A POST that goes away too. */
    int fd = connect_to(sched_port);
    const char *req = "POST /v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH
                      "Content-Length: 2\r\n\r\n{}";
    send_all(fd, req, strlen(req));
    close(fd);
    sleep_ms(1200); /* the pause ends, the replies come */
    struct resp r = get("/v1/runs");
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    r = http_raw(sched_port, "GET", "/healthz", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    /* Half a request, then silence: the server times out, not us. */
    fd = connect_to(sched_port);
    send_all(fd, "GET /v1/ru", 10);
    close(fd);
    system_down(); /* exit status 0: no sanitizer report */
}

Test(http_robust, shutdown_with_requests_waiting_for_redis)
{
    system_up();
    freeReplyObject(cmd("CLIENT PAUSE 1500 ALL"));
    int fds[4];
    const char *paths[] = {"/v1/runs", "/metrics", "/v1/runs/x", "/v1/queues"};
    for (int i = 0; i < 4; i++) {
        char req[256];
        fds[i] = connect_to(sched_port);
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" AUTH "\r\n",
                 paths[i]);
        send_all(fds[i], req, strlen(req));
    }
    sleep_ms(200);
    /* The requests are never answered; the process frees them and exits
     * cleanly (no sanitizer report, no leak). */
    stop_one(&sched_pid, sched_log);
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    sleep_ms(1400);
    system_down();
}
