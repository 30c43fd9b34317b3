/* workspace.c - a run's working directory on this machine (workspace.h). */
#define _XOPEN_SOURCE 700 /* realpath */

#include "workspace.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "keys.h"

static char *root_dir; /* absolute; NULL until set: the default */

int workspace_set_root(const char *root, struct weft_error *err)
{
    char cwd[PATH_MAX];
    char *s;
    size_t n;

    if (root == NULL)
        root = WORKSPACE_DEFAULT_ROOT;
    n = strlen(root);
    if (n == 0)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "workspace root: empty path");
    if (root[0] == '/') {
        s = weft_strdup(root);
    } else {
        size_t cl;
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "workspace root: cannot read the current "
                                  "directory: %s",
                                  strerror(errno));
        cl = strlen(cwd);
        if (n > WORKSPACE_PATH_MAX - cl - 2)
            return weft_error_set(err, WEFT_EINVAL, 0, 0,
                                  "workspace root: path too long");
        s = weft_malloc(cl + n + 2);
        if (s != NULL) {
            memcpy(s, cwd, cl);
            s[cl] = '/';
            memcpy(s + cl + 1, root, n + 1);
        }
    }
    if (s == NULL)
        return weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
    if (strlen(s) > WORKSPACE_PATH_MAX - KEYS_ID_MAX - 2) {
        weft_free(s);
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "workspace root: path too long");
    }
    weft_free(root_dir);
    root_dir = s;
    return 0;
}

const char *workspace_root(void)
{
    return root_dir != NULL ? root_dir : WORKSPACE_DEFAULT_ROOT;
}

bool workspace_is_dir(const char *s)
{
    struct stat st;
    return s != NULL && s[0] != '\0' && stat(s, &st) == 0 &&
           S_ISDIR(st.st_mode);
}

/* mkdir that accepts an existing directory. */
static int make_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0 || (errno == EEXIST && workspace_is_dir(path)))
        return 0;
    return -1;
}

/* Creates every missing directory of path (like mkdir -p). */
static int make_dirs(char *path, mode_t mode)
{
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = make_dir(path, mode);
        *p = '/';
        if (rc != 0)
            return -1;
    }
    return make_dir(path, mode);
}

int workspace_resolve(const char *run, const char *repo_root, char **out,
                      struct weft_error *err)
{
    char buf[PATH_MAX];
    const char *root = workspace_root();
    size_t rl, nl;
    char *path;

    if (repo_root != NULL && workspace_is_dir(repo_root)) {
        if (realpath(repo_root, buf) == NULL)
            return weft_error_set(err, WEFT_EIO, 0, 0, "repoRoot %.200s: %s",
                                  repo_root, strerror(errno));
        path = weft_strdup(buf);
        if (path == NULL)
            return weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
        *out = path;
        return 0;
    }
    /* The id becomes a path component: "." and ".." are valid ids. */
    nl = run != NULL ? strnlen(run, KEYS_ID_MAX + 1) : 0;
    if (!keys_valid_id(run, nl) || strcmp(run, ".") == 0 ||
        strcmp(run, "..") == 0)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "run id '%.64s' cannot name a workspace",
                              run ? run : "");
    rl = strlen(root);
    path = weft_malloc(rl + nl + 2);
    if (path == NULL)
        return weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
    memcpy(path, root, rl);
    path[rl] = '/';
    memcpy(path + rl + 1, run, nl + 1);
    path[rl] = '\0';
    if (make_dirs(path, 0755) != 0)
        goto fail;
    path[rl] = '/';
    if (make_dir(path, 0700) != 0)
        goto fail;
    *out = path;
    return 0;
fail:
    path[rl] = '/';
    weft_error_set(err, WEFT_EIO, 0, 0, "workspace %.200s: %s", path,
                   strerror(errno));
    weft_free(path);
    return WEFT_EIO;
}

/* A regular file or directory name inside dir. */
static bool has_entry(const char *dir, const char *name, bool want_dir)
{
    char path[PATH_MAX];
    struct stat st;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return false;
    return stat(path, &st) == 0 &&
           (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
}

bool workspace_repo_is_remote(const char *repo_root)
{
    const char *colon, *slash;

    if (repo_root == NULL || repo_root[0] == '\0')
        return false;
    if (workspace_is_dir(repo_root))
        return has_entry(repo_root, "HEAD", false) &&
               has_entry(repo_root, "objects", true) &&
               has_entry(repo_root, "refs", true) &&
               !has_entry(repo_root, ".git", true) &&
               !has_entry(repo_root, ".git", false);
    if (strstr(repo_root, "://") != NULL)
        return true;
    /* git's own rule for scp-like syntax: a ':' before any '/'. */
    colon = strchr(repo_root, ':');
    slash = strchr(repo_root, '/');
    return colon != NULL && colon != repo_root &&
           (slash == NULL || colon < slash);
}

int workspace_git_repo(const char *run, const char *repo_root, char **dir,
                       char **clone_url, struct weft_error *err)
{
    char *ws = NULL, *path, *url;
    size_t n;
    int rc;

    if (!workspace_repo_is_remote(repo_root)) {
        rc = workspace_resolve(run, repo_root, dir, err);
        if (rc == 0)
            *clone_url = NULL;
        return rc;
    }
    if ((rc = workspace_resolve(run, NULL, &ws, err)) != 0)
        return rc;
    n = strlen(ws);
    path = weft_malloc(n + sizeof(WORKSPACE_CLONE_DIR) + 1);
    url = weft_strdup(repo_root);
    if (path == NULL || url == NULL) {
        weft_free(ws);
        weft_free(path);
        weft_free(url);
        return weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
    }
    memcpy(path, ws, n);
    path[n] = '/';
    memcpy(path + n + 1, WORKSPACE_CLONE_DIR, sizeof(WORKSPACE_CLONE_DIR));
    weft_free(ws);
    *dir = path;
    *clone_url = url;
    return 0;
}
