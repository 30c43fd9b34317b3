/* http.c - the worker's /healthz, /readyz and /metrics (see http.h).
 *
 * Every answer is built synchronously from the worker's counters, so no
 * request outlives its callback and there is nothing to guard against a
 * client that disconnects early.
 */
#include "http.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/http.h>

#include "alloc.h"
#include "buf.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"

/* Step durations from a noop's milliseconds to an agent's hour. */
static const double duration_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,    2.5,   5,    10,  30,
                                         60,    300,  900,   1800, 3600};

struct worker_http {
    struct evhttp *srv;
    uint16_t port;
    const struct worker *w;
    struct metrics_hist *durations;
};

static void reply_text(struct evhttp_request *r, int code, const char *text)
{
    httpd_reply(r, code, "text/plain; charset=utf-8", text, strlen(text));
}

static int counter(struct buf *b, const char *name, const char *help,
                   uint64_t v)
{
    int rc = metrics_family(b, name, "counter", help);
    return rc ? rc : metrics_sample_u64(b, name, NULL, v);
}

static int write_metrics(const struct worker_http *wh, struct buf *b)
{
    const struct worker_stats *st = wh->w ? worker_stats(wh->w) : NULL;
    int rc = metrics_family(b, "weft_worker_ready", "gauge",
                            "1 when the worker is connected to Redis and "
                            "can claim jobs.");
    if (rc == 0)
        rc = metrics_sample(b, "weft_worker_ready", NULL,
                            wh->w && worker_ready(wh->w) ? 1 : 0);
    if (st == NULL)
        return rc;
    if (rc == 0)
        rc = counter(b, "weft_jobs_claimed_total",
                     "Job entries read or reclaimed from the queues.",
                     st->claimed);
    if (rc == 0)
        rc = counter(b, "weft_jobs_reclaimed_total",
                     "Jobs taken over from other workers (XAUTOCLAIM).",
                     st->reclaimed);
    if (rc == 0)
        rc = counter(b, "weft_jobs_started_total",
                     "Jobs whose handler was started.", st->started);
    if (rc == 0)
        rc = counter(b, "weft_jobs_succeeded_total",
                     "Jobs reported with status success.", st->succeeded);
    if (rc == 0)
        rc = counter(b, "weft_jobs_failed_total",
                     "Jobs reported with any other status.", st->failed);
    if (rc == 0)
        rc = counter(b, "weft_jobs_timed_out_total",
                     "Failed jobs that overran their timeout.", st->timed_out);
    if (rc == 0)
        rc = counter(b, "weft_jobs_cancelled_total",
                     "Failed jobs stopped on request.", st->cancelled);
    if (rc == 0)
        rc = counter(b, "weft_jobs_rejected_total",
                     "Job entries sent to the dead-letter stream.",
                     st->rejected);
    if (rc == 0)
        rc = counter(b, "weft_jobs_stale_total",
                     "Jobs acknowledged without running (the step had "
                     "moved on).",
                     st->stale);
    if (rc == 0)
        rc = metrics_family(b, "weft_jobs_held", "gauge",
                            "Jobs this worker holds right now.");
    if (rc == 0)
        rc = metrics_sample(b, "weft_jobs_held", NULL, st->held);
    if (rc == 0)
        rc = metrics_hist_write(wh->durations, b,
                                "Time from a job's start to its report, by "
                                "step type and persona.");
    return rc;
}

static void on_request(struct evhttp_request *r, void *arg)
{
    struct worker_http *wh = arg;
    enum evhttp_cmd_type m = evhttp_request_get_command(r);
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(r);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    if (path == NULL)
        path = "/";
    bool known = strcmp(path, "/healthz") == 0 ||
                 strcmp(path, "/readyz") == 0 || strcmp(path, "/metrics") == 0;
    if (!known) {
        httpd_reply_error(r, 404, "not_found", "no such endpoint: %.200s",
                          path);
        return;
    }
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(r), "Allow",
                          "GET, HEAD");
        httpd_reply_error(r, 405, "method_not_allowed",
                          "method not allowed on %s", path);
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        reply_text(r, 200, "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        bool ready = wh->w != NULL && worker_ready(wh->w);
        reply_text(r, ready ? 200 : 503, ready ? "ready\n" : "not ready\n");
    } else {
        struct buf b;
        buf_init(&b, METRICS_OUT_MAX);
        if (write_metrics(wh, &b) != 0)
            httpd_reply_error(r, 500, "internal",
                              "metrics output too large or out of memory");
        else
            httpd_reply(r, 200, METRICS_CONTENT_TYPE, b.data ? b.data : "",
                        b.len);
        buf_deinit(&b);
    }
}

struct worker_http *worker_http_start(struct event_base *base, const char *addr,
                                      struct weft_error *err)
{
    struct httpd_addr a;
    if (httpd_addr_parse(addr ? addr : WORKER_HTTP_DEFAULT_ADDR, &a, err) != 0)
        return NULL;
    struct worker_http *wh = weft_calloc(1, sizeof(*wh));
    if (wh != NULL)
        wh->durations = metrics_hist_new(
            "weft_step_duration_seconds", "type", "persona", duration_bounds,
            sizeof(duration_bounds) / sizeof(duration_bounds[0]));
    if (wh == NULL || wh->durations == NULL) {
        weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
        worker_http_free(wh);
        return NULL;
    }
    wh->srv = httpd_listen(base, &a, &wh->port, err);
    if (wh->srv == NULL) {
        worker_http_free(wh);
        return NULL;
    }
    evhttp_set_gencb(wh->srv, on_request, wh);
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)wh->port);
    log_info("http listening", "host", a.host, "port", port, NULL);
    return wh;
}

void worker_http_attach(struct worker_http *wh, const struct worker *w)
{
    wh->w = w;
}

void worker_http_on_done(void *ud, const struct wire_job *job,
                         enum wire_status st, double seconds)
{
    struct worker_http *wh = ud;
    char attempt[16], secs[32];
    if (wh != NULL)
        metrics_hist_observe(wh->durations, job->type, job->persona, seconds);
    snprintf(attempt, sizeof(attempt), "%" PRIu32, job->attempt);
    snprintf(secs, sizeof(secs), "%.3f", seconds);
    log_info("job finished", "run", job->run, "step", job->step, "attempt",
             attempt, "type", job->type, "persona", job->persona, "trace",
             job->trace, "status", wire_status_name(st), "seconds", secs, NULL);
}

uint16_t worker_http_port(const struct worker_http *wh)
{
    return wh->port;
}

void worker_http_free(struct worker_http *wh)
{
    if (wh == NULL)
        return;
    if (wh->srv != NULL)
        evhttp_free(wh->srv);
    metrics_hist_free(wh->durations);
    weft_free(wh);
}
