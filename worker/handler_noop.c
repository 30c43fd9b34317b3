/* handler_noop.c - the `noop` step: succeeds at once with a null result.
 *
 * It takes the whole path a real step takes (claim, start transition,
 * report, finish transition), which makes it the step of the benchmarks
 * and of tests that exercise the engine rather than a persona.
 */
#include "handler.h"

#include <string.h>

static int noop_start(struct job *j)
{
    struct wire_result res;
    memset(&res, 0, sizeof(res));
    res.status = WIRE_SUCCESS;
    job_complete(j, &res);
    return 0;
}

/* Nothing to stop: a noop job has completed before cancel can be asked. */
static void noop_cancel(struct job *j)
{
    (void)j;
}

const struct handler handler_noop = {
    .type = "noop",
    .start = noop_start,
    .cancel = noop_cancel,
    .ud = NULL,
};
