/* handler_noop.c - the `noop` step: does no work, but takes the whole path
 * a real step takes (claim, start transition, report, finish transition),
 * which makes it the step of benchmarks, demos and engine tests.
 *
 * By default it succeeds at once with a null result. Its params let a
 * workflow script an outcome without a persona:
 *   result      any JSON: the step's result
 *   verdict     string: the status word recorded as <id>_status
 *   fail_until  integer N: attempts below N fail with a retryable error
 *   delay_ms    integer: finish after this long (cancellable)
 * A param of the wrong type fails the step as fatal with the reason.
 */
#include "handler.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <jansson.h>

#include "alloc.h"

/* Longest delay accepted: a day. Enough for any test of timeouts or
 * drains; a longer one is a typo. */
#define NOOP_DELAY_MAX_MS (24 * 3600 * 1000)
/* Room for the fixed-text messages below with a param name in them. */
#define NOOP_MSG_MAX 128

/* Fills r from the job's params: the scripted outcome, or a fatal
 * status with the reason when a param has the wrong type. */
static void noop_outcome(const struct wire_job *spec, struct wire_result *r)
{
    const json_t *p = spec->params;
    const json_t *v;
    char msg[NOOP_MSG_MAX];

    memset(r, 0, sizeof(*r));
    r->status = WIRE_SUCCESS;
    if (p == NULL)
        return;
    v = json_object_get(p, "fail_until");
    if (v != NULL) {
        if (!json_is_integer(v)) {
            snprintf(msg, sizeof(msg),
                     "noop: param 'fail_until' must be an integer");
            goto bad;
        }
        if ((json_int_t)spec->attempt < json_integer_value(v)) {
            snprintf(msg, sizeof(msg),
                     "noop: attempt %u fails (fail_until %lld)",
                     (unsigned)spec->attempt, (long long)json_integer_value(v));
            r->status = WIRE_ERROR;
            r->message = weft_strdup(msg);
            return;
        }
    }
    v = json_object_get(p, "verdict");
    if (v != NULL) {
        if (!json_is_string(v)) {
            snprintf(msg, sizeof(msg),
                     "noop: param 'verdict' must be a string");
            goto bad;
        }
        r->verdict = weft_strdup(json_string_value(v));
    }
    v = json_object_get(p, "result");
    if (v != NULL)
        r->result = json_deep_copy(v);
    return;
bad:
    wire_result_deinit(r);
    r->status = WIRE_FATAL;
    r->message = weft_strdup(msg);
}

/* Returns the delay in ms (0: none), or -1 for a bad param. */
static long long noop_delay(const struct wire_job *spec)
{
    const json_t *v =
        spec->params ? json_object_get(spec->params, "delay_ms") : NULL;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > NOOP_DELAY_MAX_MS)
        return -1;
    return (long long)json_integer_value(v);
}

static void noop_finish(struct job *j)
{
    struct wire_result r;
    noop_outcome(job_spec(j), &r);
    job_complete(j, &r);
}

static void on_delay(evutil_socket_t fd, short what, void *ud)
{
    struct job *j = ud;
    (void)fd;
    (void)what;
    event_free(job_data(j));
    job_set_data(j, NULL);
    noop_finish(j);
}

static int noop_start(struct job *j)
{
    long long delay = noop_delay(job_spec(j));
    struct event *ev;
    struct timeval tv;

    if (delay < 0) {
        struct wire_result r;
        memset(&r, 0, sizeof(r));
        r.status = WIRE_FATAL;
        r.message = weft_strdup("noop: param 'delay_ms' must be an integer "
                                "from 0 to 86400000");
        job_complete(j, &r);
        return 0;
    }
    if (delay == 0) {
        noop_finish(j);
        return 0;
    }
    ev = evtimer_new(job_base(j), on_delay, j);
    if (ev == NULL)
        return WEFT_ENOMEM;
    tv.tv_sec = (time_t)(delay / 1000);
    tv.tv_usec = (suseconds_t)((delay % 1000) * 1000);
    if (evtimer_add(ev, &tv) != 0) {
        event_free(ev);
        return WEFT_ENOMEM;
    }
    job_set_data(j, ev);
    return 0;
}

/* Only a delayed noop is still running when cancel comes: stop waiting. */
static void noop_cancel(struct job *j)
{
    struct event *ev = job_data(j);
    struct wire_result r;

    if (ev == NULL)
        return;
    event_free(ev);
    job_set_data(j, NULL);
    memset(&r, 0, sizeof(r));
    r.status = WIRE_ERROR; /* replaced by the loop's reason */
    job_complete(j, &r);
}

const struct handler handler_noop = {
    .type = "noop",
    .start = noop_start,
    .cancel = noop_cancel,
    .ud = NULL,
};
