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

/* The clone cache of a run whose repoRoot is not a local working tree:
 * <workspace of the run>/WORKSPACE_CLONE_DIR (docs/git.md). */
#define WORKSPACE_CLONE_DIR "repo"

/* True when repo_root names a repository to clone rather than a
 * directory to work in: a URL (`scheme://...`, or scp-like
 * `[user@]host:path` with no '/' before the ':') or an existing bare
 * repository (HEAD, objects/ and refs/ at its top, no .git). */
bool workspace_repo_is_remote(const char *repo_root);

/* Where the git steps of run work. For a remote repo_root (above): *dir
 * is the clone cache, <workspace of run>/WORKSPACE_CLONE_DIR (the run's
 * workspace is created; the cache itself is not: the git step clones
 * into it on first use), and *clone_url a copy of repo_root. Otherwise
 * *dir is what workspace_resolve gives and *clone_url is NULL. Both are
 * weft_malloc'd and owned by the caller. Errors as workspace_resolve;
 * on failure both are left unchanged. */
int workspace_git_repo(const char *run, const char *repo_root, char **dir,
                       char **clone_url, struct weft_error *err);

#endif
