/* routes.h - the coordinator's workflow selection (the seed's
 * WorkflowCoordinator): ordered rules `when: <expression>` ->
 * `workflow: <file>`, and a default, read from workflows/routes.yml:
 *
 *   routes:
 *     - when: "task.type === 'hotfix'"
 *       workflow: hotfix.yml
 *   default: project-loop.yml
 *
 * A rule's expression (expr.h) sees `task` (the task object) and `type`
 * (the task entry's type field, else task.type). Workflow names are plain
 * file names under the scheduler's --workflows directory.
 */
#ifndef WEFT_COMMON_ROUTES_H
#define WEFT_COMMON_ROUTES_H

#include <jansson.h>

#include "diag.h"
#include "error.h"

/* A routing table a person maintains; more rules than this is a sign the
 * task types want a different design. */
#define ROUTES_MAX_RULES 1000

struct routes;

/* Loads and validates a routes file: every problem goes to d with its
 * position (unknown keys, missing fields, bad expressions, unknown
 * roots, workflow names that are not plain file names). 0 and *out, or a
 * negative code (*out unchanged). */
int routes_load_file(const char *path, struct routes **out, struct diag *d);
int routes_load_buffer(const char *yaml, size_t len, struct routes **out,
                       struct diag *d);
void routes_free(struct routes *r);

/* The workflow for a task: the first rule whose expression is truthy,
 * else the default. *workflow is borrowed from r. WEFT_ENOENT when no rule
 * matches and there is no default; an expression that throws
 * (TypeError...) is an error too, never a silent non-match. err says
 * which rule. */
int routes_select(const struct routes *r, json_t *task, const char *type,
                  const char **workflow, struct weft_error *err);

/* Number of rules (without the default), and the default or NULL. */
size_t routes_count(const struct routes *r);
const char *routes_default(const struct routes *r);

#endif
