/* handlers.c - the step types weft-worker runs: the one table a new
 * handler is added to (handler.h). The loop looks a job's `type` up here
 * and never names a handler itself.
 */
#include "handler.h"

#include <stddef.h>

const struct handler *const handler_table[] = {
    &handler_noop,
    &handler_persona,
    &handler_git,
    NULL,
};
