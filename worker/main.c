/* main.c - weft-worker: flags and environment, signals, the loop.
 *
 * Exit status: 0 after a drain (SIGTERM/SIGINT), 2 for a usage or
 * configuration error (including a missing signing key), 1 when the
 * worker cannot be created.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "alloc.h"
#include "hmac.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "num.h"
#include "personas.h"
#include "rconn.h"
#include "redisurl.h"
#include "worker.h"
#include "workspace.h"

#define DEFAULT_CONCURRENCY 16
/* Jobs idle longer than this are another worker's to take: long enough
 * that a busy loop never misses its heartbeat (a third of it). */
#define DEFAULT_VISIBILITY_MS  30000
#define DEFAULT_DELIVERY_LIMIT 5
/* Kubernetes' default terminationGracePeriodSeconds is 30 s. */
#define DEFAULT_GRACE_MS 30000
/* Longest drain accepted: an hour. */
#define GRACE_MAX_MS (3600u * 1000)

static void usage(FILE *out)
{
    fputs("usage: weft-worker [options]\n"
          "  --redis URL           Redis (env REDIS_URL; default "
          "redis://127.0.0.1:6379)\n"
          "  --prefix P            key prefix (env WEFT_PREFIX; default "
          "weft)\n"
          "  --queues a,b,c        queues to serve (env WEFT_QUEUES; "
          "default default)\n"
          "  --concurrency N       jobs at once (default 16)\n"
          "  --name NAME           consumer name (default host-pid)\n"
          "  --visibility MS       reclaim jobs idle this long (default "
          "30000)\n"
          "  --delivery-limit N    deliveries before the DLQ (default 5)\n"
          "  --grace MS            drain time on SIGTERM (default 30000)\n"
          "  --personas FILE       persona registry (env WEFT_PERSONAS; "
          "default " PERSONAS_DEFAULT_FILE " if present)\n"
          "  --workspaces DIR      run workspaces (env WEFT_WORKSPACES; "
          "default " WORKSPACE_DEFAULT_ROOT ")\n"
          "  --log-level L         debug, info, warn, error (env "
          "WEFT_LOG_LEVEL)\n"
          "  --http ADDR:PORT      health and metrics (env WEFT_HTTP; "
          "default " WORKER_HTTP_DEFAULT_ADDR "; off = none)\n"
          "The job signing key comes from WEFT_HMAC_KEY or "
          "WEFT_HMAC_KEY_FILE.\n",
          out);
}

static int parse_u32(const char *flag, const char *v, uint32_t min,
                     uint32_t max, uint32_t *out)
{
    int64_t n;
    if (num_parse_i64(v, strlen(v), min, max, &n) != 0) {
        fprintf(stderr,
                "weft-worker: %s: '%s' is not a number from %" PRIu32
                " to %" PRIu32 "\n",
                flag, v, min, max);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

/* Splits list (modified in place) on commas into queues. -1 with a
 * message for an empty item or too many. */
static int split_queues(char *list, const char **queues, size_t *n)
{
    char *p = list;
    *n = 0;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        if (*p == '\0') {
            fputs("weft-worker: --queues: empty queue name\n", stderr);
            return -1;
        }
        if (*n == WORKER_QUEUES_MAX) {
            fprintf(stderr, "weft-worker: --queues: more than %d queues\n",
                    WORKER_QUEUES_MAX);
            return -1;
        }
        queues[(*n)++] = p;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

/* Loads the persona registry: a file named by flag or env must load; the
 * default one only when it exists. 0 (*out may stay NULL) or -1 with the
 * problems printed as FILE:LINE:COL. */
static int load_personas(const char *path, struct personas **out)
{
    bool named = path != NULL && *path != '\0';
    const char *file = named ? path : PERSONAS_DEFAULT_FILE;
    char n[24];
    struct diag d;
    int rc;

    if (!named && access(file, F_OK) != 0) {
        log_info("no persona registry", "file", file, NULL);
        return 0;
    }
    diag_init(&d, file);
    rc = personas_load_file(file, out, &d);
    if (rc != 0) {
        diag_print(&d, stderr);
        fprintf(stderr, "weft-worker: --personas %s: %s\n", file,
                weft_strerror(rc));
    } else {
        snprintf(n, sizeof(n), "%zu", personas_count(*out));
        log_info("persona registry loaded", "file", file, "personas", n, NULL);
    }
    diag_deinit(&d);
    return rc != 0 ? -1 : 0;
}

struct app {
    struct event_base *base;
    struct worker *worker;
    uint32_t grace_ms;
};

static void on_stopped(void *ud)
{
    struct app *app = ud;
    event_base_loopexit(app->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *ud)
{
    struct app *app = ud;
    (void)what;
    log_info("signal received, draining", "signal",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    worker_stop(app->worker, app->grace_ms, on_stopped, app);
}

static void log_stats(const struct worker_stats *st)
{
    char v[6][24];
    snprintf(v[0], sizeof(v[0]), "%" PRIu64, st->claimed);
    snprintf(v[1], sizeof(v[1]), "%" PRIu64, st->started);
    snprintf(v[2], sizeof(v[2]), "%" PRIu64, st->succeeded);
    snprintf(v[3], sizeof(v[3]), "%" PRIu64, st->failed);
    snprintf(v[4], sizeof(v[4]), "%" PRIu64, st->rejected);
    snprintf(v[5], sizeof(v[5]), "%" PRIu64, st->stale);
    log_info("worker stopped", "claimed", v[0], "started", v[1], "succeeded",
             v[2], "failed", v[3], "rejected", v[4], "stale", v[5], NULL);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"redis", required_argument, NULL, 'r'},
        {"prefix", required_argument, NULL, 'p'},
        {"queues", required_argument, NULL, 'q'},
        {"concurrency", required_argument, NULL, 'c'},
        {"name", required_argument, NULL, 'n'},
        {"visibility", required_argument, NULL, 'v'},
        {"delivery-limit", required_argument, NULL, 'd'},
        {"grace", required_argument, NULL, 'g'},
        {"log-level", required_argument, NULL, 'l'},
        {"http", required_argument, NULL, 'H'},
        {"personas", required_argument, NULL, 'P'},
        {"workspaces", required_argument, NULL, 'W'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url_text = getenv("REDIS_URL");
    const char *prefix = getenv("WEFT_PREFIX");
    const char *queues_text = getenv("WEFT_QUEUES");
    const char *level = getenv("WEFT_LOG_LEVEL");
    const char *http_addr = getenv("WEFT_HTTP");
    const char *personas_file = getenv("WEFT_PERSONAS");
    const char *workspaces = getenv("WEFT_WORKSPACES");
    struct personas *personas = NULL;
    struct worker_http *http = NULL;
    const char *name_opt = NULL;
    const char *queues[WORKER_QUEUES_MAX];
    char *queue_list = NULL;
    char name[WORKER_NAME_MAX + 1];
    char host[64] = "host";
    struct redis_url url;
    struct keys keys;
    struct hmac_key hmac;
    struct weft_error err;
    struct worker_config cfg;
    struct app app;
    int c, rc = 2;

    /* SIGTERM and SIGINT wait (blocked) until the loop's handlers are
     * installed, so a stop that arrives during start-up still drains and
     * exits 0 instead of killing the process. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);
    weft_alloc_init();
    log_init("weft-worker");
    memset(&url, 0, sizeof(url));
    memset(&cfg, 0, sizeof(cfg));
    memset(&app, 0, sizeof(app));
    weft_error_clear(&err);
    cfg.concurrency = DEFAULT_CONCURRENCY;
    cfg.visibility_ms = DEFAULT_VISIBILITY_MS;
    cfg.delivery_limit = DEFAULT_DELIVERY_LIMIT;
    app.grace_ms = DEFAULT_GRACE_MS;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            url_text = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 'q':
            queues_text = optarg;
            break;
        case 'c':
            if (parse_u32("--concurrency", optarg, 1, WORKER_CONCURRENCY_MAX,
                          &cfg.concurrency))
                return 2;
            break;
        case 'n':
            name_opt = optarg;
            break;
        case 'v':
            if (parse_u32("--visibility", optarg, WORKER_VISIBILITY_MIN_MS,
                          WORKER_VISIBILITY_MAX_MS, &cfg.visibility_ms))
                return 2;
            break;
        case 'd':
            if (parse_u32("--delivery-limit", optarg, 1,
                          WORKER_DELIVERY_LIMIT_MAX, &cfg.delivery_limit))
                return 2;
            break;
        case 'g':
            if (parse_u32("--grace", optarg, 0, GRACE_MAX_MS, &app.grace_ms))
                return 2;
            break;
        case 'l':
            level = optarg;
            break;
        case 'H':
            http_addr = optarg;
            break;
        case 'P':
            personas_file = optarg;
            break;
        case 'W':
            workspaces = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weft-worker: unexpected argument '%s'\n",
                argv[optind]);
        return 2;
    }
    if (level != NULL && log_set_level(level) != 0) {
        fprintf(stderr, "weft-worker: unknown log level '%s'\n", level);
        return 2;
    }
    if (hmac_key_from_env(&hmac, &err) != 0) {
        fprintf(stderr, "weft-worker: signing key: %s\n", err.msg);
        return 2;
    }
    if (keys_init(&keys, prefix) != 0) {
        fprintf(stderr, "weft-worker: invalid prefix '%s'\n", prefix);
        return 2;
    }
    if (redis_url_parse(url_text ? url_text : "redis://127.0.0.1:6379", &url,
                        &err) != 0) {
        fprintf(stderr, "weft-worker: --redis: %s\n", err.msg);
        return 2;
    }
    if (load_personas(personas_file, &personas) != 0)
        goto out;
    handler_persona_use(personas);
    if (workspace_set_root(workspaces && *workspaces ? workspaces : NULL,
                           &err) != 0) {
        fprintf(stderr, "weft-worker: --workspaces: %s\n", err.msg);
        goto out;
    }
    queue_list =
        weft_strdup(queues_text && *queues_text ? queues_text : "default");
    if (queue_list == NULL) {
        rc = 1;
        goto out;
    }
    if (split_queues(queue_list, queues, &cfg.nqueues) != 0)
        goto out;
    gethostname(host, sizeof(host) - 1);
    snprintf(name, sizeof(name), "%s-%ld", host, (long)getpid());

    cfg.url = &url;
    cfg.keys = &keys;
    cfg.hmac = &hmac;
    cfg.queues = queues;
    cfg.name = name_opt ? name_opt : name;

    signal(SIGPIPE, SIG_IGN);
    app.base = rconn_event_base_new();
    if (app.base == NULL) {
        fputs("weft-worker: cannot create the event loop\n", stderr);
        rc = 1;
        goto out;
    }
    if (http_addr == NULL || strcmp(http_addr, "off") != 0) {
        http = worker_http_start(app.base, http_addr, &err);
        /* The default port is taken when several workers share a host
         * (`weft run`, tests): they then run without HTTP. An address
         * asked for must work. */
        if (http == NULL && http_addr == NULL && err.code == WEFT_EIO) {
            log_warn("http disabled: default address unavailable", "error",
                     err.msg, NULL);
        } else if (http == NULL) {
            fprintf(stderr, "weft-worker: --http: %s\n", err.msg);
            rc = err.code == WEFT_EINVAL ? 2 : 1;
            goto out;
        }
    }
    /* Durations for /metrics and each job's closing log line. */
    cfg.on_done = worker_http_on_done;
    cfg.on_done_ud = http;
    app.worker = worker_new(app.base, &cfg, &err);
    if (app.worker == NULL) {
        fprintf(stderr, "weft-worker: %s\n", err.msg);
        rc = err.code == WEFT_EINVAL ? 2 : 1;
        goto out;
    }
    if (http != NULL)
        worker_http_attach(http, app.worker);
    struct event *sigterm = evsignal_new(app.base, SIGTERM, on_signal, &app);
    struct event *sigint = evsignal_new(app.base, SIGINT, on_signal, &app);
    if (sigterm == NULL || sigint == NULL || event_add(sigterm, NULL) ||
        event_add(sigint, NULL)) {
        fputs("weft-worker: cannot install signal handlers\n", stderr);
        rc = 1;
    } else {
        sigprocmask(SIG_UNBLOCK, &stop_signals, NULL);
        char conc[16];
        snprintf(conc, sizeof(conc), "%" PRIu32, cfg.concurrency);
        log_info("worker started", "name", cfg.name, "queues",
                 queues_text && *queues_text ? queues_text : "default",
                 "concurrency", conc, NULL);
        event_base_dispatch(app.base);
        log_stats(worker_stats(app.worker));
        rc = 0;
    }
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
out:
    worker_free(app.worker);
    worker_http_free(http);
    if (app.base != NULL)
        event_base_free(app.base);
    redis_url_deinit(&url);
    weft_free(queue_list);
    personas_free(personas);
    memset(&hmac, 0, sizeof(hmac));
    return rc;
}
