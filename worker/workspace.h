/* workspace.h - where a run's steps work on the worker's machine.
 *
 * A run's workspace is its repository: context.repoRoot when that names
 * an existing local directory, otherwise <root>/<run id>, created on
 * demand (mode 0700), under the workspace root (weft-worker --workspaces
 * DIR, env WEFT_WORKSPACES, default WORKSPACE_DEFAULT_ROOT). Persona and
 * git steps of a run on the same worker thus see each other's files.
 * (A repoRoot that is a URL is the git handler's to clone here.)
 *
 * The root is process-wide configuration, set once at start-up by main
 * (tests set their own); everything runs on the loop thread. Calls are
 * short blocking file-system operations (stat, mkdir, realpath).
 */
#ifndef WEFT_WORKER_WORKSPACE_H
#define WEFT_WORKER_WORKSPACE_H

#include <stdbool.h>

#include "error.h"

#define WORKSPACE_DEFAULT_ROOT "/tmp/weft-workspaces"
/* Longest workspace path: a PATH_MAX-sized buffer holds it with room. */
#define WORKSPACE_PATH_MAX 4096

/* Sets the root (copied; NULL = the default). The directory need not
 * exist yet. 0, WEFT_EINVAL (empty, or not absolute after resolving
 * against the current directory, or too long) or WEFT_ENOMEM. */
int workspace_set_root(const char *root, struct weft_error *err);

/* The root in use (absolute). Borrowed until the next set. */
const char *workspace_root(void);

/* The workspace of run (a valid run id) given the context's repoRoot
 * (NULL or "" when none): *out is weft_malloc'd, absolute, owned by the
 * caller, and exists as a directory when this returns 0. Errors:
 * WEFT_EINVAL (run id "." or ".." or invalid), WEFT_EIO (cannot create),
 * WEFT_ENOMEM, with err saying which path. */
int workspace_resolve(const char *run, const char *repo_root, char **out,
                      struct weft_error *err);

/* True when s is an existing local directory (stat, follows links). */
bool workspace_is_dir(const char *s);

#endif
