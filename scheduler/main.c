/* main.c - weft-scheduler: flags and environment, signals, the loop. */
#include <getopt.h>
#include <signal.h>
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
#include "rconn.h"
#include "redisurl.h"
#include "personas.h"
#include "routes.h"
#include "sched.h"

/* A week: finished runs stay inspectable for a working week by default. */
#define DEFAULT_RETENTION_S (7 * 24 * 3600)

static void usage(FILE *out)
{
    fputs("usage: weft-scheduler [options]\n"
          "  --redis URL        Redis (env REDIS_URL; default "
          "redis://127.0.0.1:6379)\n"
          "  --prefix P         key prefix (env WEFT_PREFIX; default weft)\n"
          "  --name NAME        consumer name (default host-pid)\n"
          "  --workflows DIR    workflow files for tasks naming one "
          "(env WEFT_WORKFLOWS)\n"
          "  --routes FILE      coordinator rules (env WEFT_ROUTES; default "
          "DIR/routes.yml of --workflows when present)\n"
          "  --personas FILE    persona registry, for persona queues (env "
          "WEFT_PERSONAS; default DIR/personas.yml when present)\n"
          "  --batch N          entries per read (default 256)\n"
          "  --retention SEC    keep finished runs this long (default 7 "
          "days; 0 = forever)\n"
          "  --history-max N    keep about the last N entries of a run's "
          "history (default 100000)\n"
          "  --claim-idle MS    reclaim messages of dead schedulers after "
          "MS (default 5000)\n"
          "  --log-level L      debug, info, warn, error (env "
          "WEFT_LOG_LEVEL)\n"
          "  --http ADDR:PORT   API, metrics, probes and dashboard (env "
          "WEFT_HTTP; default " HTTP_DEFAULT_ADDR "; off = none)\n"
          "The job signing key comes from WEFT_HMAC_KEY or "
          "WEFT_HMAC_KEY_FILE;\n"
          "the API token from WEFT_API_TOKEN or WEFT_API_TOKEN_FILE.\n",
          out);
}

static int parse_u32(const char *flag, const char *v, uint32_t *out)
{
    int64_t n;
    if (num_parse_i64(v, strlen(v), 0, UINT32_MAX, &n) != 0) {
        fprintf(stderr, "weft-scheduler: %s: not a number: '%s'\n", flag, v);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

struct app {
    struct event_base *base;
    struct sched *sched;
};

static void on_drained(void *ud)
{
    struct app *app = ud;
    event_base_loopexit(app->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *ud)
{
    (void)what;
    struct app *app = ud;
    log_info("signal received, draining", "signal",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    sched_drain(app->sched, 10000, on_drained, app);
}

int main(int argc, char **argv)
{
    /* SIGTERM and SIGINT wait (blocked) until the loop's handlers are
     * installed, so a stop that arrives during start-up still drains and
     * exits 0 instead of killing the process. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);
    weft_alloc_init();
    log_init("weft-scheduler");
    const char *url_text = getenv("REDIS_URL");
    const char *prefix = getenv("WEFT_PREFIX");
    const char *workflows = getenv("WEFT_WORKFLOWS");
    const char *routes_path = getenv("WEFT_ROUTES");
    const char *personas_path = getenv("WEFT_PERSONAS");
    const char *level = getenv("WEFT_LOG_LEVEL");
    const char *http_addr = getenv("WEFT_HTTP");
    char name[128];
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(name, sizeof(name), "%s-%ld", host, (long)getpid());
    const char *name_opt = NULL;
    struct sched_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.ttl_s = DEFAULT_RETENTION_S;

    static const struct option opts[] = {
        {"redis", required_argument, NULL, 'r'},
        {"prefix", required_argument, NULL, 'p'},
        {"name", required_argument, NULL, 'n'},
        {"workflows", required_argument, NULL, 'w'},
        {"routes", required_argument, NULL, 'R'},
        {"personas", required_argument, NULL, 'P'},
        {"batch", required_argument, NULL, 'b'},
        {"retention", required_argument, NULL, 't'},
        {"history-max", required_argument, NULL, 'M'},
        {"claim-idle", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"http", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            url_text = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 'n':
            name_opt = optarg;
            break;
        case 'w':
            workflows = optarg;
            break;
        case 'R':
            routes_path = optarg;
            break;
        case 'P':
            personas_path = optarg;
            break;
        case 'b':
            if (parse_u32("--batch", optarg, &cfg.batch))
                return 2;
            break;
        case 't':
            if (parse_u32("--retention", optarg, &cfg.ttl_s))
                return 2;
            break;
        case 'M':
            if (parse_u32("--history-max", optarg, &cfg.hist_max))
                return 2;
            if (cfg.hist_max == 0) {
                fprintf(stderr, "weft-scheduler: --history-max: must be at "
                                "least 1\n");
                return 2;
            }
            break;
        case 'c':
            if (parse_u32("--claim-idle", optarg, &cfg.claim_idle_ms))
                return 2;
            break;
        case 'l':
            level = optarg;
            break;
        case 'H':
            http_addr = optarg;
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
        fprintf(stderr, "weft-scheduler: unexpected argument '%s'\n",
                argv[optind]);
        return 2;
    }
    if (level && log_set_level(level) != 0) {
        fprintf(stderr, "weft-scheduler: unknown log level '%s'\n", level);
        return 2;
    }
    struct weft_error err;
    weft_error_clear(&err);
    if (redis_url_parse(url_text ? url_text : "redis://127.0.0.1:6379",
                        &cfg.url, &err) != 0) {
        fprintf(stderr, "weft-scheduler: --redis: %s\n", err.msg);
        return 2;
    }
    if (keys_init(&cfg.keys, prefix) != 0) {
        fprintf(stderr, "weft-scheduler: invalid prefix '%s'\n", prefix);
        return 2;
    }
    if (hmac_key_from_env(&cfg.hmac, &err) != 0) {
        fprintf(stderr, "weft-scheduler: signing key: %s\n", err.msg);
        return 2;
    }
    char *api_token = NULL;
    if (http_token_from_env(&api_token, &err) != 0) {
        fprintf(stderr, "weft-scheduler: API token: %s\n", err.msg);
        return 2;
    }
    cfg.name = name_opt ? name_opt : name;
    cfg.workflows = workflows;
    char default_routes[4096];
    if (routes_path == NULL && workflows) {
        snprintf(default_routes, sizeof(default_routes), "%s/routes.yml",
                 workflows);
        if (access(default_routes, R_OK) == 0)
            routes_path = default_routes;
    }
    struct routes *routes = NULL;
    if (routes_path) {
        struct diag d;
        diag_init(&d, routes_path);
        if (routes_load_file(routes_path, &routes, &d) != 0) {
            diag_sort(&d);
            diag_print(&d, stderr);
            diag_deinit(&d);
            return 2;
        }
        diag_deinit(&d);
    }
    cfg.routes = routes;
    char default_personas[4096];
    if (personas_path == NULL && workflows) {
        snprintf(default_personas, sizeof(default_personas), "%s/personas.yml",
                 workflows);
        if (access(default_personas, R_OK) == 0)
            personas_path = default_personas;
    }
    struct personas *personas = NULL;
    if (personas_path) {
        struct diag d;
        diag_init(&d, personas_path);
        if (personas_load_file(personas_path, &personas, &d) != 0) {
            diag_sort(&d);
            diag_print(&d, stderr);
            diag_deinit(&d);
            return 2;
        }
        diag_deinit(&d);
    }
    cfg.personas = personas;

    signal(SIGPIPE, SIG_IGN);
    struct app app = {0};
    app.base = rconn_event_base_new();
    app.sched = app.base ? sched_new(app.base, &cfg) : NULL;
    if (app.sched == NULL || sched_start(app.sched) != 0) {
        fprintf(stderr, "weft-scheduler: out of memory\n");
        return 1;
    }
    struct http *http = NULL;
    if (http_addr == NULL || strcmp(http_addr, "off") != 0) {
        struct http_config hc = {.addr = http_addr,
                                 .url = &cfg.url,
                                 .keys = &cfg.keys,
                                 .token = api_token,
                                 .name = cfg.name};
        http = http_start(app.base, &hc, app.sched, &err);
        /* The default port may be taken by another process on this host
         * (several schedulers in tests, `weft run`): then serve without
         * HTTP. An address asked for must work. */
        if (http == NULL && http_addr == NULL && err.code == WEFT_EIO) {
            log_warn("http disabled: default address unavailable", "error",
                     err.msg, NULL);
        } else if (http == NULL) {
            fprintf(stderr, "weft-scheduler: --http: %s\n", err.msg);
            return err.code == WEFT_EINVAL ? 2 : 1;
        }
    }
    struct event *sigterm = evsignal_new(app.base, SIGTERM, on_signal, &app);
    struct event *sigint = evsignal_new(app.base, SIGINT, on_signal, &app);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    sigprocmask(SIG_UNBLOCK, &stop_signals, NULL);
    log_info("scheduler started", "name", cfg.name, NULL);
    event_base_dispatch(app.base);
    const struct sched_stats *st = sched_stats(app.sched);
    char msgs[32];
    snprintf(msgs, sizeof(msgs), "%llu", (unsigned long long)st->messages);
    log_info("scheduler stopped", "messages", msgs, NULL);
    event_free(sigterm);
    event_free(sigint);
    http_free(http);
    weft_free(api_token);
    sched_free(app.sched);
    routes_free(routes);
    personas_free(personas);
    event_base_free(app.base);
    redis_url_deinit(&cfg.url);
    return 0;
}
