/* gitops.c - git operations as sequences of blocking git commands, run in
 * a forked child (gitops.h, docs/git.md).
 *
 * Every operation follows the same shape: check every name it will use
 * (nothing runs before the names are known to be branch names), clone the
 * repository into its cache if the run works on a URL, look the refs up,
 * do the work, and describe the outcome in one result object. Failures
 * that leave the repository mid-way (a merge or rebase with conflicts)
 * are aborted and HEAD is put back where it was, so a failed step never
 * leaves a repository that the next step or a person must clean up.
 *
 * Exit codes: a failure that retrying cannot fix (a bad name, conflicts,
 * a push the remote rejects, a hook that refuses a commit) is
 * GITOPS_FATAL; one that may pass later (network, a git that could not
 * start) is GITOPS_RETRY.
 */
#include "gitops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"

/* Stdout kept from one git command. The largest outputs read are name
 * lists (-z), of which GITOPS_FILES_MAX names are used; past this the
 * list is reported as truncated. */
#define GITOPS_OUT_MAX (1024 * 1024)
/* Stderr kept from one git command: its tail has the reason. */
#define GITOPS_ERR_TAIL 2048
/* Longest failure message: the reason plus git's last words. */
#define GITOPS_MSG_MAX 4096
/* Arguments of the longest git command built here, identity included. */
#define GITOPS_ARGS_MAX 24
/* A full object id: SHA-1 is 40 hex digits, SHA-256 64. */
#define GITOPS_OID_MAX 64
/* Directory depth removed after a failed clone; a git checkout is far
 * shallower, and the bound keeps a hostile tree from exhausting fds. */
#define GITOPS_RM_DEPTH_MAX 128

/* ---- strings that go into JSON ----------------------------------------
 * File names and git's messages are bytes; JSON strings are UTF-8. Bytes
 * that are not valid UTF-8, and control characters, become '?'. */

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A JSON string of s[0..n) made safe; newlines and tabs are kept when
 * lines is true. New reference or NULL (ENOMEM). */
static json_t *jstr(const char *s, size_t n, bool lines)
{
    const unsigned char *u = (const unsigned char *)s;
    char *c = weft_malloc(n + 1);
    size_t i = 0, o = 0;
    json_t *v;

    if (c == NULL)
        return NULL;
    while (i < n) {
        size_t l = utf8_len(u + i, n - i);
        if (l == 0 || (l == 1 && (u[i] < 0x20 || u[i] == 0x7f) &&
                       !(lines && (u[i] == '\n' || u[i] == '\t')))) {
            c[o++] = '?';
            i++;
            continue;
        }
        memcpy(c + o, s + i, l);
        o += l;
        i += l;
    }
    v = json_stringn(c, o);
    weft_free(c);
    return v;
}

/* ---- the operation's context -------------------------------------------- */

struct gctx {
    const struct gitops_req *req;
    struct buf msg;   /* failure message; empty on success */
    json_t *res;      /* the result object; NULL until the repository is
                         known */
    int ident;        /* -1 not checked, 0 configured, 1 weft's own */
    bool ident_name;  /* user.name is unset: pass weft's */
    bool ident_email; /* user.email is unset: pass weft's */
};

/* One git command's outcome. */
struct gitrun {
    int code;       /* exit code, or -1: did not start or was killed */
    struct buf out; /* stdout, at most GITOPS_OUT_MAX bytes */
    bool out_cut;   /* stdout had more than that */
    char err[GITOPS_ERR_TAIL + 1]; /* last bytes of stderr, NUL-ended */
    size_t errlen;
};

static void gitrun_init(struct gitrun *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->out, GITOPS_OUT_MAX);
}

static void gitrun_deinit(struct gitrun *r)
{
    buf_deinit(&r->out);
}

/* Sets the failure message (the first one wins: later ones come from
 * clean-up) and returns code. */
static int fail(struct gctx *g, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct gctx *g, int code, const char *fmt, ...)
{
    va_list ap;

    if (g->msg.len == 0) {
        va_start(ap, fmt);
        buf_vprintf(&g->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Like fail, with the tail of git's stderr appended after ": ". */
static int fail_git(struct gctx *g, int code, const struct gitrun *r,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_git(struct gctx *g, int code, const struct gitrun *r,
                    const char *fmt, ...)
{
    va_list ap;
    size_t n = r->errlen;

    if (g->msg.len != 0)
        return code;
    va_start(ap, fmt);
    buf_vprintf(&g->msg, fmt, ap);
    va_end(ap);
    while (n > 0 && (r->err[n - 1] == '\n' || r->err[n - 1] == ' '))
        n--;
    if (n > 0) {
        buf_append_str(&g->msg, ": ");
        buf_append(&g->msg, r->err, n);
    } else if (r->code < 0) {
        buf_append_str(&g->msg, ": git did not run");
    }
    return code;
}

/* ---- running git -------------------------------------------------------- */

/* s with the user information of a URL ("https://user:token@host/x")
 * replaced by "***", into out: credentials must reach neither the
 * operator's trace nor a result stored in Redis. */
static const char *redact(const char *s, char *out, size_t n)
{
    const char *auth = strstr(s, "://"), *end, *at = NULL;

    if (auth == NULL) {
        snprintf(out, n, "%s", s);
        return out;
    }
    auth += 3;
    end = auth + strcspn(auth, "/");
    for (const char *p = auth; p < end; p++) {
        if (*p == '@')
            at = p;
    }
    if (at == NULL)
        snprintf(out, n, "%s", s);
    else
        snprintf(out, n, "%.*s***%s", (int)(auth - s), s, at);
    return out;
}

/* Keeps the last GITOPS_ERR_TAIL bytes of stderr. */
static void err_keep(struct gitrun *r, const char *p, size_t n)
{
    if (n >= GITOPS_ERR_TAIL) {
        memcpy(r->err, p + n - GITOPS_ERR_TAIL, GITOPS_ERR_TAIL);
        r->errlen = GITOPS_ERR_TAIL;
    } else {
        size_t keep =
            r->errlen + n > GITOPS_ERR_TAIL ? GITOPS_ERR_TAIL - n : r->errlen;
        memmove(r->err, r->err + r->errlen - keep, keep);
        memcpy(r->err + keep, p, n);
        r->errlen = keep + n;
    }
    r->err[r->errlen] = '\0';
}

static int cloexec_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

/* Reads both pipes until both close, so a chatty git never blocks. */
static void drain(int ofd, int efd, struct gitrun *r)
{
    struct pollfd p[2] = {{ofd, POLLIN, 0}, {efd, POLLIN, 0}};
    char chunk[8192];

    while (p[0].fd >= 0 || p[1].fd >= 0) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            ssize_t n;
            if (p[i].fd < 0 || p[i].revents == 0)
                continue;
            n = read(p[i].fd, chunk, sizeof(chunk));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                continue;
            }
            if (i == 1)
                err_keep(r, chunk, (size_t)n);
            else if (!r->out_cut && buf_append(&r->out, chunk, (size_t)n) != 0)
                r->out_cut = true;
        }
    }
    if (p[0].fd >= 0)
        close(p[0].fd);
    if (p[1].fd >= 0)
        close(p[1].fd);
}

/* Adds weft's identity (-c user.name=... -c user.email=...) for the
 * parts the repository's configuration lacks, so commits never fail on a
 * worker without a git identity and never override one that is set. */
#define RUN_IDENT 1u

static int run_git(struct gctx *g, unsigned flags, const char *const *args,
                   struct gitrun *r);

static void ident_check(struct gctx *g)
{
    struct gitrun r;
    const char *keys[2] = {"user.name", "user.email"};
    bool *unset[2] = {&g->ident_name, &g->ident_email};

    if (g->ident >= 0)
        return;
    for (int i = 0; i < 2; i++) {
        gitrun_init(&r);
        run_git(g, 0, (const char *const[]){"config", "--get", keys[i], NULL},
                &r);
        /* config --get exits 1 when the key is unset. */
        *unset[i] = r.code == 1 || (r.code == 0 && r.out.len <= 1);
        gitrun_deinit(&r);
    }
    g->ident = g->ident_name || g->ident_email;
}

/* Runs git with args (NULL-terminated, at most GITOPS_ARGS_MAX with the
 * identity) in the current directory, stdin from /dev/null. Fills r
 * (initialised by the caller); returns r->code. */
static int run_git(struct gctx *g, unsigned flags, const char *const *args,
                   struct gitrun *r)
{
    const char *argv[GITOPS_ARGS_MAX + 2];
    int n = 0, ofd[2], efd[2], st;
    pid_t pid;

    r->code = -1;
    argv[n++] = "git";
    if (flags & RUN_IDENT) {
        ident_check(g);
        if (g->ident_name) {
            argv[n++] = "-c";
            argv[n++] = "user.name=weft";
        }
        if (g->ident_email) {
            argv[n++] = "-c";
            argv[n++] = "user.email=weft@localhost";
        }
    }
    for (int i = 0; args[i] != NULL; i++) {
        if (n >= GITOPS_ARGS_MAX + 1)
            return -1;
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    /* The command goes to our stderr: the operator's trace of what ran. */
    fputs("+", stderr);
    for (int i = 0; i < n; i++) {
        char shown[PATH_MAX];
        fprintf(stderr, " %s", redact(argv[i], shown, sizeof(shown)));
    }
    fputs("\n", stderr);
    fflush(stderr);

    if (cloexec_pipe(ofd) != 0)
        return -1;
    if (cloexec_pipe(efd) != 0) {
        close(ofd[0]);
        close(ofd[1]);
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        close(ofd[0]);
        close(ofd[1]);
        close(efd[0]);
        close(efd[1]);
        return -1;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(ofd[1], 1) < 0 ||
            dup2(efd[1], 2) < 0)
            _exit(127);
        execvp("git", (char *const *)argv);
        _exit(127);
    }
    close(ofd[1]);
    close(efd[1]);
    drain(ofd[0], efd[0], r);
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) != 127)
        r->code = WEXITSTATUS(st);
    return r->code;
}

/* Runs a git command for its success alone. */
#define GIT(g, r, ...)                                                         \
    run_git((g), 0, (const char *const[]){__VA_ARGS__, NULL}, (r))
#define GIT_IDENT(g, r, ...)                                                   \
    run_git((g), RUN_IDENT, (const char *const[]){__VA_ARGS__, NULL}, (r))

/* The first line of r's stdout (trailing newline removed) into out. */
static void first_line(const struct gitrun *r, char *out, size_t n)
{
    size_t l = 0;
    while (l < r->out.len && r->out.data[l] != '\n' && l + 1 < n)
        l++;
    if (l > 0)
        memcpy(out, r->out.data, l);
    out[l] = '\0';
}

/* ---- refs ---------------------------------------------------------------- */

/* The commit ref names (a ref or a commit-ish), in oid. 1 found, 0 not
 * found, GITOPS_RETRY when git could not run. */
static int rev_of(struct gctx *g, const char *ref, char oid[GITOPS_OID_MAX + 1])
{
    struct gitrun r;
    char spec[2 * GITOPS_NAME_MAX + 64];
    int found;

    snprintf(spec, sizeof(spec), "%s^{commit}", ref);
    gitrun_init(&r);
    GIT(g, &r, "rev-parse", "--verify", "--quiet", "--end-of-options", spec);
    found = r.code == 0;
    if (found)
        first_line(&r, oid, GITOPS_OID_MAX + 1);
    else
        oid[0] = '\0';
    gitrun_deinit(&r);
    return r.code < 0 ? fail(g, GITOPS_RETRY, "git did not run") : found;
}

/* A local branch's commit: 1, 0 (no such branch) or GITOPS_RETRY. */
static int branch_oid(struct gctx *g, const char *name,
                      char oid[GITOPS_OID_MAX + 1])
{
    char ref[GITOPS_NAME_MAX + 16];
    snprintf(ref, sizeof(ref), "refs/heads/%s", name);
    return rev_of(g, ref, oid);
}

/* Where HEAD is: *branch the branch (empty when detached) and oid its
 * commit (empty on an unborn branch). */
static void head_of(struct gctx *g, char branch[GITOPS_NAME_MAX + 1],
                    char oid[GITOPS_OID_MAX + 1])
{
    struct gitrun r;

    gitrun_init(&r);
    GIT(g, &r, "symbolic-ref", "--quiet", "--short", "HEAD");
    if (r.code == 0)
        first_line(&r, branch, GITOPS_NAME_MAX + 1);
    else
        branch[0] = '\0';
    gitrun_deinit(&r);
    gitrun_init(&r);
    GIT(g, &r, "rev-parse", "--verify", "--quiet", "HEAD");
    if (r.code == 0)
        first_line(&r, oid, GITOPS_OID_MAX + 1);
    else
        oid[0] = '\0';
    gitrun_deinit(&r);
}

/* Checks that name can be a branch name: `git check-ref-format --branch`
 * accepts it and gives it back unchanged (it expands @{-1} and friends,
 * which a workflow must not use to name a branch indirectly). what names
 * the field in the message. */
static int check_name(struct gctx *g, const char *what, const char *name)
{
    struct gitrun r;
    char back[GITOPS_NAME_MAX + 2];
    bool ok;

    if (name[0] == '\0')
        return fail(g, GITOPS_FATAL, "%s is empty", what);
    if (strlen(name) > GITOPS_NAME_MAX)
        return fail(g, GITOPS_FATAL, "%s is longer than %d bytes", what,
                    GITOPS_NAME_MAX);
    gitrun_init(&r);
    GIT(g, &r, "check-ref-format", "--branch", name);
    first_line(&r, back, sizeof(back));
    ok = r.code == 0 && strcmp(back, name) == 0 && strcmp(name, "@") != 0;
    gitrun_deinit(&r);
    if (r.code < 0)
        return fail(g, GITOPS_RETRY, "git did not run");
    if (!ok)
        return fail(g, GITOPS_FATAL, "%s '%s' is not a valid branch name", what,
                    name);
    return GITOPS_OK;
}

/* Remote names are restricted to what `git remote add` is normally given
 * (no URLs: a URL as remote would let a workflow push anywhere). */
static int check_remote_syntax(struct gctx *g, const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > GITOPS_NAME_MAX || name[0] == '-' || name[0] == '.')
        goto bad;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            goto bad;
    }
    return GITOPS_OK;
bad:
    return fail(g, GITOPS_FATAL,
                "remote '%s' is not a remote name ([A-Za-z0-9_.-], "
                "at most %d bytes)",
                name, GITOPS_NAME_MAX);
}

/* The remote must be configured in the repository. */
static int check_remote_exists(struct gctx *g, const char *name)
{
    struct gitrun r;
    bool found = false;
    size_t n = strlen(name);

    gitrun_init(&r);
    GIT(g, &r, "remote");
    for (const char *p = r.out.data; r.code == 0 && p && *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && memcmp(p, name, n) == 0)
            found = true;
        p = e ? e + 1 : NULL;
    }
    gitrun_deinit(&r);
    if (r.code != 0)
        return fail_git(g, GITOPS_RETRY, &r, "cannot list remotes");
    if (!found)
        return fail(g, GITOPS_FATAL, "no remote '%s' in the repository", name);
    return GITOPS_OK;
}

/* Appends up to GITOPS_FILES_MAX names from NUL-separated output to arr;
 * sets "truncated" in the result when some were left out. */
static int add_names(struct gctx *g, const struct gitrun *r, json_t *arr)
{
    const char *p = r->out.data, *end = p + r->out.len;
    bool cut = r->out_cut;

    while (p != NULL && p < end) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        size_t l = z ? (size_t)(z - p) : (size_t)(end - p);
        if (z == NULL && r->out_cut)
            break; /* a name cut in the middle */
        if (json_array_size(arr) >= GITOPS_FILES_MAX) {
            cut = true;
            break;
        }
        if (l > 0 && json_array_append_new(arr, jstr(p, l, false)) != 0)
            return fail(g, GITOPS_RETRY, "out of memory");
        p = z ? z + 1 : end;
    }
    if (cut)
        json_object_set_new(g->res, "truncated", json_true());
    return GITOPS_OK;
}

/* Names listed by a `git diff --name-only -z ...` into the result's key
 * ("files" or "conflicts"). */
static int list_into(struct gctx *g, const char *key, const char *const *args)
{
    struct gitrun r;
    int rc;

    gitrun_init(&r);
    run_git(g, 0, args, &r);
    rc = r.code == 0 ? add_names(g, &r, json_object_get(g->res, key))
                     : fail_git(g, GITOPS_RETRY, &r, "cannot list files");
    gitrun_deinit(&r);
    return rc;
}

static int files_between(struct gctx *g, const char *from, const char *to)
{
    if (from[0] == '\0' || to[0] == '\0' || strcmp(from, to) == 0)
        return GITOPS_OK;
    return list_into(g, "files",
                     (const char *const[]){"diff", "--name-only", "-z", from,
                                           to, "--", NULL});
}

static int conflicts(struct gctx *g)
{
    return list_into(g, "conflicts",
                     (const char *const[]){"diff", "--name-only", "-z",
                                           "--diff-filter=U", NULL});
}

/* Uncommitted changes to tracked files (untracked files do not count:
 * they survive a merge unless it would overwrite them). */
static int dirty(struct gctx *g, bool *out)
{
    struct gitrun r;

    gitrun_init(&r);
    GIT(g, &r, "status", "--porcelain", "--untracked-files=no");
    *out = r.out.len > 0;
    gitrun_deinit(&r);
    if (r.code != 0)
        return fail_git(g, GITOPS_RETRY, &r, "cannot read the status");
    return GITOPS_OK;
}

/* A merge or rebase someone left unfinished: weft does not abort what it
 * did not start. */
static int check_idle(struct gctx *g, const char *op)
{
    struct gitrun r;
    char gitdir[PATH_MAX], path[PATH_MAX + 32];
    struct stat sb;
    const char *busy = NULL;

    gitrun_init(&r);
    GIT(g, &r, "rev-parse", "--git-dir");
    first_line(&r, gitdir, sizeof(gitdir));
    gitrun_deinit(&r);
    if (r.code != 0)
        return fail_git(g, GITOPS_RETRY, &r, "cannot find the git directory");
    snprintf(path, sizeof(path), "%s/MERGE_HEAD", gitdir);
    if (stat(path, &sb) == 0)
        busy = "a merge";
    snprintf(path, sizeof(path), "%s/rebase-merge", gitdir);
    if (stat(path, &sb) == 0)
        busy = "a rebase";
    snprintf(path, sizeof(path), "%s/rebase-apply", gitdir);
    if (stat(path, &sb) == 0)
        busy = "a rebase";
    if (busy)
        return fail(g, GITOPS_FATAL,
                    "%s: %s is in progress in the repository; finish or "
                    "abort it first",
                    op, busy);
    return GITOPS_OK;
}

static int check_clean(struct gctx *g, const char *op)
{
    bool d;
    int rc = check_idle(g, op);

    if (rc == GITOPS_OK && (rc = dirty(g, &d)) == GITOPS_OK && d)
        rc = fail(g, GITOPS_FATAL,
                  "%s: the working tree has uncommitted changes; commit "
                  "them first",
                  op);
    return rc;
}

/* Switches to branch name. When it does not exist locally but remote has
 * it, it is created to track remote's branch and *created is set. */
static int switch_to(struct gctx *g, const char *name, const char *remote,
                     bool *created)
{
    struct gitrun r;
    char oid[GITOPS_OID_MAX + 1], track[2 * GITOPS_NAME_MAX + 16];
    int rc = branch_oid(g, name, oid);

    *created = false;
    if (rc < 0 || rc > 1)
        return rc;
    gitrun_init(&r);
    if (rc == 1) {
        GIT(g, &r, "switch", "--quiet", "--", name);
    } else {
        snprintf(track, sizeof(track), "refs/remotes/%s/%s", remote, name);
        rc = rev_of(g, track, oid);
        if (rc != 1) {
            gitrun_deinit(&r);
            return rc == 0 ? fail(g, GITOPS_FATAL, "branch '%s' does not exist",
                                  name)
                           : rc;
        }
        GIT(g, &r, "switch", "--quiet", "--track", "-c", name, "--", track);
        *created = r.code == 0;
    }
    rc = r.code == 0 ? GITOPS_OK
                     : fail_git(g, GITOPS_FATAL, &r,
                                "cannot switch to branch '%s'", name);
    gitrun_deinit(&r);
    return rc;
}

/* Puts HEAD back on branch (or, when it was detached, on oid) after a
 * failed operation. Errors are only added to the message. */
static void restore_head(struct gctx *g, const char *branch, const char *oid)
{
    struct gitrun r;
    char now[GITOPS_NAME_MAX + 1], now_oid[GITOPS_OID_MAX + 1];

    head_of(g, now, now_oid);
    if (branch[0] != '\0' ? strcmp(now, branch) == 0
                          : (now[0] == '\0' && strcmp(now_oid, oid) == 0))
        return;
    gitrun_init(&r);
    if (branch[0] != '\0')
        GIT(g, &r, "switch", "--quiet", "--", branch);
    else if (oid[0] != '\0')
        GIT(g, &r, "switch", "--quiet", "--detach", oid);
    else
        r.code = 0;
    if (r.code != 0) {
        buf_printf(&g->msg, "; could not switch back to '%s'",
                   branch[0] ? branch : oid);
    }
    gitrun_deinit(&r);
}

/* A commit-ish to start or merge from: a local branch, else remote's
 * tracking branch of that name, else any commit-ish (tag, commit id).
 * ref receives the name to hand to git; oid its commit. */
static int resolve(struct gctx *g, const char *what, const char *name,
                   const char *remote, char ref[2 * GITOPS_NAME_MAX + 16],
                   char oid[GITOPS_OID_MAX + 1])
{
    int rc;

    snprintf(ref, 2 * GITOPS_NAME_MAX + 16, "refs/heads/%s", name);
    if ((rc = rev_of(g, ref, oid)) != 0)
        return rc == 1 ? GITOPS_OK : rc;
    snprintf(ref, 2 * GITOPS_NAME_MAX + 16, "refs/remotes/%s/%s", remote, name);
    if ((rc = rev_of(g, ref, oid)) != 0)
        return rc == 1 ? GITOPS_OK : rc;
    snprintf(ref, 2 * GITOPS_NAME_MAX + 16, "%s", name);
    if ((rc = rev_of(g, ref, oid)) != 0)
        return rc == 1 ? GITOPS_OK : rc;
    return fail(g, GITOPS_FATAL, "%s '%s' does not exist", what, name);
}

/* ---- the result object -------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
    return s && s[0] ? jstr(s, strlen(s), false) : json_null();
}

static int result_new(struct gctx *g)
{
    g->res = json_pack("{s:s, s:n, s:n, s:n, s:n, s:n, s:b, s:[], s:[], "
                       "s:b, s:n, s:n}",
                       "operation", g->req->operation, "branch", "base",
                       "remote", "head", "commit", "changed", 0, "files",
                       "conflicts", "truncated", 0, "previous", "pushed");
    return g->res ? GITOPS_OK : fail(g, GITOPS_RETRY, "out of memory");
}

static void set_str(struct gctx *g, const char *key, const char *v)
{
    json_object_set_new(g->res, key, str_or_null(v));
}

/* previous: what a rollback needs: the branch that moved (or was
 * created), the commit it pointed at before (null when created), and
 * where HEAD was. */
static void set_previous(struct gctx *g, const char *ref, const char *oid,
                         bool created, const char *head)
{
    json_object_set_new(g->res, "previous",
                        json_pack("{s:o, s:o, s:b, s:o}", "ref",
                                  str_or_null(ref), "commit", str_or_null(oid),
                                  "created", created, "head",
                                  str_or_null(head)));
}

/* head and commit: where the repository is after the operation. */
static void set_head(struct gctx *g)
{
    char b[GITOPS_NAME_MAX + 1], oid[GITOPS_OID_MAX + 1];

    head_of(g, b, oid);
    set_str(g, "head", b);
    set_str(g, "commit", oid);
}

/* ---- operations ----------------------------------------------------------
 * Each gets the effective names, already checked: branch, base and
 * remote (NULL when the operation does not use them). */

struct names {
    const char *branch;
    const char *base;
    const char *remote;
    /* HEAD before the operation. */
    char head[GITOPS_NAME_MAX + 1];
    char head_oid[GITOPS_OID_MAX + 1];
};

static int op_branch(struct gctx *g, struct names *n)
{
    struct gitrun r;
    char oid[GITOPS_OID_MAX + 1], ref[2 * GITOPS_NAME_MAX + 16];
    char base_oid[GITOPS_OID_MAX + 1];
    bool created;
    int rc = branch_oid(g, n->branch, oid);

    if (rc == 1) { /* exists: switch to it */
        if (strcmp(n->head, n->branch) != 0 &&
            (rc = switch_to(g, n->branch, n->remote, &created)) != GITOPS_OK)
            return rc;
        set_previous(g, n->branch, oid, false, n->head);
        return GITOPS_OK;
    }
    if (rc != 0)
        return rc;
    if ((rc = resolve(g, "base", n->base, n->remote, ref, base_oid)) != 0)
        return rc;
    gitrun_init(&r);
    GIT(g, &r, "switch", "--quiet", "--no-track", "-c", n->branch, "--",
        base_oid);
    rc = r.code == 0 ? GITOPS_OK
                     : fail_git(g, GITOPS_FATAL, &r,
                                "cannot create branch '%s' from '%s'",
                                n->branch, n->base);
    gitrun_deinit(&r);
    if (rc == GITOPS_OK) {
        json_object_set_new(g->res, "changed", json_true());
        set_previous(g, n->branch, NULL, true, n->head);
    }
    return rc;
}

static int op_checkout(struct gctx *g, struct names *n)
{
    char oid[GITOPS_OID_MAX + 1];
    bool created = false;
    int rc = branch_oid(g, n->branch, oid);

    if (rc != 0 && rc != 1)
        return rc;
    if (strcmp(n->head, n->branch) != 0) {
        if ((rc = switch_to(g, n->branch, n->remote, &created)) != 0)
            return rc;
        json_object_set_new(g->res, "changed", json_true());
    }
    set_previous(g, n->branch, created ? NULL : oid, created, n->head);
    return GITOPS_OK;
}

static int op_commit(struct gctx *g, struct names *n)
{
    struct gitrun r;
    const char *msg = g->req->message;
    int rc;

    if (msg == NULL || msg[0] == '\0')
        return fail(g, GITOPS_FATAL, "commit: a message is required");
    if (strlen(msg) > GITOPS_MESSAGE_MAX)
        return fail(g, GITOPS_FATAL,
                    "commit: the message is longer than %d bytes",
                    GITOPS_MESSAGE_MAX);
    if ((rc = check_idle(g, "commit")) != 0)
        return rc;
    gitrun_init(&r);
    GIT(g, &r, "add", "--all");
    rc = r.code == 0 ? GITOPS_OK
                     : fail_git(g, GITOPS_FATAL, &r, "cannot stage changes");
    gitrun_deinit(&r);
    if (rc != 0)
        return rc;
    gitrun_init(&r);
    GIT(g, &r, "diff", "--cached", "--quiet");
    rc = r.code;
    gitrun_deinit(&r);
    set_previous(g, n->head, n->head_oid, n->head_oid[0] == '\0', n->head);
    if (rc == 0) /* nothing to commit */
        return GITOPS_OK;
    if (rc != 1)
        return fail_git(g, GITOPS_RETRY, &r, "cannot compare the index");
    rc = list_into(
        g, "files",
        (const char *const[]){"diff", "--cached", "--name-only", "-z", NULL});
    if (rc != 0)
        return rc;
    gitrun_init(&r);
    GIT_IDENT(g, &r, "commit", "--quiet", "-m", msg);
    rc = r.code == 0 ? GITOPS_OK
                     : fail_git(g, GITOPS_FATAL, &r, "commit failed");
    gitrun_deinit(&r);
    if (rc == 0)
        json_object_set_new(g->res, "changed", json_true());
    return rc;
}

/* The remote's commit for branch: 1 (oid set), 0 (no such branch there),
 * or a failure code. */
static int remote_oid(struct gctx *g, const char *remote, const char *branch,
                      char oid[GITOPS_OID_MAX + 1])
{
    struct gitrun r;
    char ref[GITOPS_NAME_MAX + 16];
    int rc;

    snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
    gitrun_init(&r);
    GIT(g, &r, "ls-remote", "--heads", "--", remote, ref);
    oid[0] = '\0';
    if (r.code != 0) {
        rc = fail_git(g, GITOPS_RETRY, &r, "cannot reach remote '%s'", remote);
    } else {
        /* "<oid>\t<ref>\n" lines; only an exact ref match counts. */
        rc = 0;
        for (const char *p = r.out.data; p && *p;) {
            const char *tab = strchr(p, '\t'), *e = strchr(p, '\n');
            size_t rl = e ? (size_t)(e - tab - 1) : strlen(tab ? tab + 1 : "");
            if (tab && (size_t)(tab - p) <= GITOPS_OID_MAX &&
                rl == strlen(ref) && memcmp(tab + 1, ref, rl) == 0) {
                memcpy(oid, p, (size_t)(tab - p));
                oid[tab - p] = '\0';
                rc = 1;
            }
            p = e ? e + 1 : NULL;
        }
    }
    gitrun_deinit(&r);
    return rc;
}

/* Appends the lines of r's stderr that the remote sent ("remote: ..."):
 * a hook's reason for refusing a push. */
static void remote_lines(struct gctx *g, const struct gitrun *r)
{
    for (const char *p = r->err; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        const char *next = e ? e + 1 : p + l;
        while (l > 0 && (p[l - 1] == ' ' || p[l - 1] == '\r'))
            l--; /* git pads remote lines to clear progress output */
        if (l > 7 && strncmp(p, "remote:", 7) == 0) {
            buf_append_char(&g->msg, '\n');
            buf_append(&g->msg, p, l);
        }
        p = next;
    }
}

static int op_push(struct gctx *g, struct names *n)
{
    struct gitrun r;
    char local[GITOPS_OID_MAX + 1], before[GITOPS_OID_MAX + 1];
    char spec[2 * GITOPS_NAME_MAX + 32];
    const char *why = NULL;
    size_t whylen = 0;
    int rc, had;
    char flag = 0;

    if ((rc = branch_oid(g, n->branch, local)) != 1)
        return rc == 0
                   ? fail(g, GITOPS_FATAL, "push: no branch '%s'", n->branch)
                   : rc;
    if ((had = remote_oid(g, n->remote, n->branch, before)) < 0 || had > 1)
        return had;
    snprintf(spec, sizeof(spec), "refs/heads/%s:refs/heads/%s", n->branch,
             n->branch);
    gitrun_init(&r);
    GIT(g, &r, "push", "--porcelain", "--", n->remote, spec);
    /* --porcelain prints "<flag>\t<from>:<to>\t<summary>" per ref: '!'
     * rejected, '=' up to date, ' ' '+' '*' updated. The summary of a
     * rejection says why ("[rejected] (non-fast-forward)", "[remote
     * rejected] (pre-receive hook declined)"). */
    for (const char *p = r.out.data; p && *p;) {
        const char *e = strchr(p, '\n'), *t;
        if (p[0] != '\0' && p[1] == '\t' && strchr(" +-*=!", p[0])) {
            flag = p[0];
            t = strchr(p + 2, '\t');
            if (flag == '!' && t && (!e || t < e)) {
                why = t + 1;
                whylen = e ? (size_t)(e - why) : strlen(why);
            }
        }
        p = e ? e + 1 : NULL;
    }
    if (flag == '!') {
        rc = fail(g, GITOPS_FATAL, "push of '%s' to '%s' rejected: %.*s",
                  n->branch, n->remote, (int)whylen, why ? why : "");
        remote_lines(g, &r);
    } else if (r.code != 0) {
        rc = fail_git(g, GITOPS_RETRY, &r, "push of '%s' to '%s' failed",
                      n->branch, n->remote);
    } else {
        rc = GITOPS_OK;
    }
    gitrun_deinit(&r);
    set_previous(g, n->branch, had ? before : NULL, !had, n->head);
    if (rc == 0) /* what the remote branch points at now (rollback's lease) */
        set_str(g, "pushed", local);
    if (rc == 0 && flag != '=')
        json_object_set_new(g->res, "changed", json_true());
    return rc;
}

static int op_merge(struct gctx *g, struct names *n)
{
    struct gitrun r;
    char src[2 * GITOPS_NAME_MAX + 16], src_oid[GITOPS_OID_MAX + 1];
    char before[GITOPS_OID_MAX + 1], after[GITOPS_OID_MAX + 1];
    char cur[GITOPS_NAME_MAX + 1];
    const char *msg = g->req->message;
    bool created = false;
    int rc;

    if (msg && strlen(msg) > GITOPS_MESSAGE_MAX)
        return fail(g, GITOPS_FATAL,
                    "merge: the message is longer than %d bytes",
                    GITOPS_MESSAGE_MAX);
    if ((rc = check_clean(g, "merge")) != 0 ||
        (rc = resolve(g, "branch", n->branch, n->remote, src, src_oid)) != 0)
        return rc;
    if (strcmp(n->head, n->base) != 0 &&
        (rc = switch_to(g, n->base, n->remote, &created)) != 0)
        return rc;
    head_of(g, cur, before);
    set_previous(g, n->base, before, created, n->head);
    gitrun_init(&r);
    /* The branch's name (not its id) makes git's default message read
     * "Merge branch 'x'". */
    if (msg && msg[0])
        GIT_IDENT(g, &r, "merge", "--no-ff", "--no-edit", "-m", msg, "--",
                  strncmp(src, "refs/heads/", 11) == 0 ? src + 11 : src);
    else
        GIT_IDENT(g, &r, "merge", "--no-ff", "--no-edit", "--",
                  strncmp(src, "refs/heads/", 11) == 0 ? src + 11 : src);
    if (r.code == 0) {
        gitrun_deinit(&r);
        head_of(g, cur, after);
        if (strcmp(before, after) != 0)
            json_object_set_new(g->res, "changed", json_true());
        return files_between(g, before, after);
    }
    /* Failed: name the conflicts, undo the merge, go back. */
    conflicts(g);
    {
        struct gitrun a;
        gitrun_init(&a);
        GIT(g, &a, "merge", "--abort");
        gitrun_deinit(&a);
    }
    restore_head(g, n->head, n->head_oid);
    json_t *c = json_object_get(g->res, "conflicts");
    if (json_array_size(c) > 0)
        rc = fail(g, GITOPS_FATAL,
                  "merge of '%s' into '%s' has conflicts in %zu file%s; "
                  "the merge was aborted",
                  n->branch, n->base, json_array_size(c),
                  json_array_size(c) == 1 ? "" : "s");
    else
        rc = fail_git(g, GITOPS_FATAL, &r, "merge of '%s' into '%s' failed",
                      n->branch, n->base);
    gitrun_deinit(&r);
    return rc;
}

static int op_rebase(struct gctx *g, struct names *n)
{
    struct gitrun r;
    char onto[2 * GITOPS_NAME_MAX + 16], onto_oid[GITOPS_OID_MAX + 1];
    char before[GITOPS_OID_MAX + 1], after[GITOPS_OID_MAX + 1];
    int rc;

    if ((rc = check_clean(g, "rebase")) != 0 ||
        (rc = resolve(g, "base", n->base, n->remote, onto, onto_oid)) != 0)
        return rc;
    if ((rc = branch_oid(g, n->branch, before)) != 1)
        return rc == 0
                   ? fail(g, GITOPS_FATAL, "rebase: no branch '%s'", n->branch)
                   : rc;
    set_previous(g, n->branch, before, false, n->head);
    gitrun_init(&r);
    GIT_IDENT(g, &r, "rebase", "--quiet", "--", onto, n->branch);
    if (r.code == 0) {
        gitrun_deinit(&r);
        branch_oid(g, n->branch, after);
        if (strcmp(before, after) != 0)
            json_object_set_new(g->res, "changed", json_true());
        return files_between(g, before, after);
    }
    conflicts(g);
    {
        struct gitrun a;
        gitrun_init(&a);
        GIT(g, &a, "rebase", "--abort");
        gitrun_deinit(&a);
    }
    restore_head(g, n->head, n->head_oid);
    json_t *c = json_object_get(g->res, "conflicts");
    if (json_array_size(c) > 0)
        rc = fail(g, GITOPS_FATAL,
                  "rebase of '%s' onto '%s' has conflicts in %zu file%s; "
                  "the rebase was aborted",
                  n->branch, n->base, json_array_size(c),
                  json_array_size(c) == 1 ? "" : "s");
    else
        rc = fail_git(g, GITOPS_FATAL, &r, "rebase of '%s' onto '%s' failed",
                      n->branch, n->base);
    gitrun_deinit(&r);
    return rc;
}

/* Fetches remote (all its branches, or only branch into its tracking
 * ref). *changed tells whether a tracking ref moved. */
static int fetch(struct gctx *g, const char *remote, const char *branch,
                 bool *changed)
{
    struct gitrun r, a, b;
    char pattern[GITOPS_NAME_MAX + 32], spec[3 * GITOPS_NAME_MAX + 48];
    int rc;

    snprintf(pattern, sizeof(pattern), "refs/remotes/%s/", remote);
    gitrun_init(&a);
    GIT(g, &a, "for-each-ref", "--format=%(objectname) %(refname)", pattern);
    gitrun_init(&r);
    if (branch) {
        snprintf(spec, sizeof(spec), "+refs/heads/%s:refs/remotes/%s/%s",
                 branch, remote, branch);
        GIT(g, &r, "fetch", "--quiet", "--", remote, spec);
    } else {
        GIT(g, &r, "fetch", "--quiet", "--", remote);
    }
    rc = r.code == 0
             ? GITOPS_OK
             : fail_git(g, GITOPS_RETRY, &r, "fetch from '%s' failed", remote);
    gitrun_deinit(&r);
    gitrun_init(&b);
    GIT(g, &b, "for-each-ref", "--format=%(objectname) %(refname)", pattern);
    *changed = a.out.len != b.out.len ||
               (a.out.len > 0 && memcmp(a.out.data, b.out.data, a.out.len));
    gitrun_deinit(&a);
    gitrun_deinit(&b);
    return rc;
}

static int op_fetch(struct gctx *g, struct names *n)
{
    bool changed;
    int rc = fetch(g, n->remote, n->branch, &changed);

    if (rc == 0 && changed)
        json_object_set_new(g->res, "changed", json_true());
    return rc;
}

static int op_pull(struct gctx *g, struct names *n)
{
    struct gitrun r;
    char before[GITOPS_OID_MAX + 1], after[GITOPS_OID_MAX + 1];
    char cur[GITOPS_NAME_MAX + 1], track[2 * GITOPS_NAME_MAX + 16];
    bool moved, created = false;
    int rc;

    /* fetch, then a fast-forward merge: what `git pull --ff-only` does,
     * with a network failure (retry) told apart from diverged branches
     * (fatal). */
    if ((rc = check_idle(g, "pull")) != 0 ||
        (rc = fetch(g, n->remote, n->branch, &moved)) != 0)
        return rc;
    if (strcmp(n->head, n->branch) != 0 &&
        (rc = switch_to(g, n->branch, n->remote, &created)) != 0)
        return rc;
    head_of(g, cur, before);
    set_previous(g, n->branch, created ? NULL : before, created, n->head);
    snprintf(track, sizeof(track), "refs/remotes/%s/%s", n->remote, n->branch);
    gitrun_init(&r);
    GIT(g, &r, "merge", "--ff-only", "--quiet", "--", track);
    rc = r.code == 0 ? GITOPS_OK
                     : fail_git(g, GITOPS_FATAL, &r,
                                "pull of '%s' from '%s' is not a fast-forward",
                                n->branch, n->remote);
    gitrun_deinit(&r);
    if (rc != 0)
        return rc;
    head_of(g, cur, after);
    if (strcmp(before, after) != 0)
        json_object_set_new(g->res, "changed", json_true());
    return files_between(g, before, after);
}

/* ---- rollback -------------------------------------------------------------
 * The run's recorded changes (gitState.changes, one per git step that
 * created or moved a branch, in the order their results were applied)
 * are folded into one target per branch: a branch any step created is
 * deleted; one that existed goes back to the commit the first change
 * recorded before it. Local branches are restored with update-ref, after
 * HEAD is detached if it is on one of them, then HEAD goes back to the
 * branch it was on before the run's first git step (uncommitted changes
 * to tracked files are discarded: they are the run's). Remote branches
 * the run pushed are deleted or reset with --force-with-lease against
 * the commit the run pushed last, so a branch someone else has pushed to
 * since is left alone and reported. Every target is idempotent: a branch
 * already gone or already back is reported as such, so a rollback that
 * runs twice (a reclaimed job) changes nothing the second time. */

struct target {
    const char *ref;    /* branch name (checked) */
    const char *remote; /* NULL: the local branch */
    bool created;       /* a step of the run created it */
    const char *before; /* its commit before the run; NULL if created */
    const char *lease;  /* remote: the commit the run pushed last */
};

static bool oid_syntax(const char *s)
{
    size_t n = strlen(s);
    if (n != 40 && n != 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* Optional string member: NULL when absent or null; *bad set when it is
 * there with another type. */
static const char *opt_str(const json_t *o, const char *k, bool *bad)
{
    const json_t *v = json_object_get(o, k);
    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

/* Folds req->changes into targets (at most GITOPS_CHANGES_MAX; the caller
 * provides room) after checking every name and commit id, and finds the
 * branch HEAD was on before the run (*head, NULL when unknown). */
static int collect_targets(struct gctx *g, struct target *t, size_t *nt,
                           const char **head)
{
    const json_t *changes = g->req->changes;
    size_t i;
    const json_t *c;
    int rc;

    *nt = 0;
    *head = NULL;
    if (!json_is_array(changes))
        return fail(g, GITOPS_FATAL, "rollback: the job has no 'changes' list");
    if (json_array_size(changes) > GITOPS_CHANGES_MAX)
        return fail(g, GITOPS_FATAL, "rollback: more than %d changes",
                    GITOPS_CHANGES_MAX);
    json_array_foreach(changes, i, c)
    {
        bool bad = false;
        if (!json_is_object(c))
            return fail(g, GITOPS_FATAL,
                        "rollback: change %zu is not an object", i);
        const char *ref = opt_str(c, "ref", &bad);
        const char *remote = opt_str(c, "remote", &bad);
        const char *before = opt_str(c, "before", &bad);
        const char *pushed = opt_str(c, "pushed", &bad);
        const char *h = opt_str(c, "head", &bad);
        const json_t *cr = json_object_get(c, "created");
        if (bad || ref == NULL || (cr != NULL && !json_is_boolean(cr)))
            return fail(g, GITOPS_FATAL,
                        "rollback: change %zu needs a string 'ref' and "
                        "strings or nulls for 'remote', 'before', 'pushed', "
                        "'head'",
                        i);
        if ((rc = check_name(g, "branch", ref)) != 0 ||
            (remote && (rc = check_remote_syntax(g, remote)) != 0) ||
            (h && (rc = check_name(g, "head", h)) != 0))
            return rc;
        if ((before && !oid_syntax(before)) || (pushed && !oid_syntax(pushed)))
            return fail(g, GITOPS_FATAL,
                        "rollback: change %zu has a commit id that is not "
                        "one",
                        i);
        if (i == 0)
            *head = h;
        size_t k;
        for (k = 0; k < *nt; k++) {
            if (strcmp(t[k].ref, ref) == 0 &&
                (t[k].remote == NULL
                     ? remote == NULL
                     : remote && strcmp(t[k].remote, remote) == 0))
                break;
        }
        if (k == *nt) {
            t[k].ref = ref;
            t[k].remote = remote;
            t[k].created = false;
            t[k].before = before;
            t[k].lease = NULL;
            (*nt)++;
        }
        if (json_is_true(cr)) {
            t[k].created = true;
            t[k].before = NULL;
        }
        if (pushed)
            t[k].lease = pushed;
    }
    return GITOPS_OK;
}

/* Appends {ref, remote, action, from, to} to the result's `restored`. */
static void restored(struct gctx *g, const struct target *t, const char *action,
                     const char *from, const char *to)
{
    json_array_append_new(json_object_get(g->res, "restored"),
                          json_pack("{s:s, s:o, s:s, s:o, s:o}", "ref", t->ref,
                                    "remote", str_or_null(t->remote), "action",
                                    action, "from", str_or_null(from), "to",
                                    str_or_null(to)));
    if (strcmp(action, "deleted") == 0 || strcmp(action, "reset") == 0)
        json_object_set_new(g->res, "changed", json_true());
}

/* Appends {ref, remote, error} to the result's `failed` and returns code,
 * the worst seen so far in *worst. */
static void not_restored(struct gctx *g, const struct target *t, int code,
                         int *worst, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void not_restored(struct gctx *g, const struct target *t, int code,
                         int *worst, const char *fmt, ...)
{
    char msg[GITOPS_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(json_object_get(g->res, "failed"),
                          json_pack("{s:s, s:o, s:o}", "ref", t->ref, "remote",
                                    str_or_null(t->remote), "error",
                                    jstr(msg, strlen(msg), true)));
    /* Retryable wins: another attempt may restore what failed for a
     * passing reason, and redoes nothing that is done. */
    if (code == GITOPS_RETRY || *worst == GITOPS_OK)
        *worst = code;
}

/* A failure another process's lock caused (a git step of the run still
 * dying, a person's git): it may pass, so it is retried. */
static int lock_or(const char *why, int code)
{
    return strstr(why, ".lock") != NULL ? GITOPS_RETRY : code;
}

/* Runs git and returns its stderr tail as a message in out. */
static int git_msg(struct gctx *g, const char *const *args, char *out, size_t n)
{
    struct gitrun r;
    gitrun_init(&r);
    run_git(g, 0, args, &r);
    size_t l = r.errlen;
    while (l > 0 && (r.err[l - 1] == '\n' || r.err[l - 1] == ' '))
        l--;
    snprintf(out, n, "%.*s", (int)l, r.err);
    int code = r.code;
    gitrun_deinit(&r);
    return code;
}

static void rollback_local(struct gctx *g, const struct target *t, int *worst)
{
    char ref[GITOPS_NAME_MAX + 16], oid[GITOPS_OID_MAX + 1], why[1024];
    int exists = branch_oid(g, t->ref, oid);

    snprintf(ref, sizeof(ref), "refs/heads/%s", t->ref);
    if (exists < 0 || exists > 1) {
        not_restored(g, t, GITOPS_RETRY, worst, "git did not run");
        return;
    }
    if (t->created) {
        if (!exists) {
            restored(g, t, "absent", NULL, NULL);
            return;
        }
        if (git_msg(g,
                    (const char *const[]){"update-ref", "-m", "weft rollback",
                                          "-d", ref, oid, NULL},
                    why, sizeof(why)) != 0) {
            not_restored(g, t, lock_or(why, GITOPS_FATAL), worst,
                         "cannot delete: %s", why);
            return;
        }
        restored(g, t, "deleted", oid, NULL);
        return;
    }
    if (t->before == NULL) {
        not_restored(g, t, GITOPS_FATAL, worst,
                     "no commit was recorded before the run moved it");
        return;
    }
    if (exists && strcmp(oid, t->before) == 0) {
        restored(g, t, "unchanged", oid, oid);
        return;
    }
    char spec[GITOPS_OID_MAX + 16], have[GITOPS_OID_MAX + 1];
    snprintf(spec, sizeof(spec), "%s", t->before);
    if (rev_of(g, spec, have) != 1) {
        not_restored(g, t, GITOPS_FATAL, worst,
                     "commit %s is not in the repository", t->before);
        return;
    }
    if (git_msg(g,
                (const char *const[]){"update-ref", "-m", "weft rollback", ref,
                                      t->before, NULL},
                why, sizeof(why)) != 0) {
        not_restored(g, t, lock_or(why, GITOPS_FATAL), worst,
                     "cannot reset: %s", why);
        return;
    }
    restored(g, t, "reset", exists ? oid : NULL, t->before);
}

static void rollback_remote(struct gctx *g, const struct target *t, int *worst)
{
    char cur[GITOPS_OID_MAX + 1], lease[GITOPS_NAME_MAX + GITOPS_OID_MAX + 64];
    char spec[GITOPS_NAME_MAX + GITOPS_OID_MAX + 32];
    struct gitrun r;
    char flag = 0;
    size_t keep = g->msg.len;
    int exists = check_remote_exists(g, t->remote);
    int found = exists == GITOPS_OK ? remote_oid(g, t->remote, t->ref, cur) : 0;

    /* Those report into the step's message; this target's error goes to
     * `failed` instead. */
    if (g->msg.len > keep) {
        g->msg.len = keep;
        g->msg.data[keep] = '\0';
    }
    if (exists != GITOPS_OK) {
        not_restored(g, t, exists, worst,
                     exists == GITOPS_FATAL
                         ? "no remote '%s' in the repository"
                         : "cannot list the remotes for '%s'",
                     t->remote);
        return;
    }
    if (found < 0 || found > 1) {
        not_restored(g, t, GITOPS_RETRY, worst, "cannot reach remote '%s'",
                     t->remote);
        return;
    }
    if (t->created && !found) {
        restored(g, t, "absent", NULL, NULL);
        return;
    }
    if (!t->created && t->before == NULL) {
        not_restored(g, t, GITOPS_FATAL, worst,
                     "no commit was recorded before the run pushed it");
        return;
    }
    if (!t->created && found && strcmp(cur, t->before) == 0) {
        restored(g, t, "unchanged", cur, cur);
        return;
    }
    if (found && t->lease && strcmp(cur, t->lease) != 0) {
        not_restored(g, t, GITOPS_FATAL, worst,
                     "moved since the run pushed it (now %s, the run pushed "
                     "%s); left alone",
                     cur, t->lease);
        return;
    }
    if (!t->created) {
        char have[GITOPS_OID_MAX + 1];
        if (rev_of(g, t->before, have) != 1) {
            not_restored(g, t, GITOPS_FATAL, worst,
                         "commit %s is not in the repository", t->before);
            return;
        }
    }
    /* The lease: the remote branch must still be where we just saw it
     * (absent: must still not exist). */
    snprintf(lease, sizeof(lease), "--force-with-lease=refs/heads/%s:%s",
             t->ref, found ? cur : "");
    snprintf(spec, sizeof(spec), "%s:refs/heads/%s",
             t->created ? "" : t->before, t->ref);
    gitrun_init(&r);
    GIT(g, &r, "push", "--porcelain", lease, "--", t->remote, spec);
    for (const char *p = r.out.data; p && *p;) {
        const char *e = strchr(p, '\n');
        if (p[0] != '\0' && p[1] == '\t' && strchr(" +-*=!", p[0]))
            flag = p[0];
        p = e ? e + 1 : NULL;
    }
    size_t l = r.errlen;
    while (l > 0 && (r.err[l - 1] == '\n' || r.err[l - 1] == ' '))
        l--;
    if (flag == '!')
        not_restored(g, t, GITOPS_FATAL, worst, "the remote refused: %.*s",
                     (int)l, r.err);
    else if (r.code != 0)
        not_restored(g, t, GITOPS_RETRY, worst, "push failed: %.*s", (int)l,
                     r.err);
    else
        restored(g, t, t->created ? "deleted" : "reset", found ? cur : NULL,
                 t->created ? NULL : t->before);
    gitrun_deinit(&r);
}

static int op_rollback(struct gctx *g, struct names *n)
{
    struct target *t = weft_calloc(GITOPS_CHANGES_MAX, sizeof(*t));
    const char *head = NULL;
    size_t nt = 0;
    int worst = GITOPS_OK, rc;
    bool local = false, on_target = false;

    if (t == NULL)
        return fail(g, GITOPS_RETRY, "out of memory");
    if ((rc = collect_targets(g, t, &nt, &head)) != 0)
        goto out;
    json_object_set_new(g->res, "restored", json_array());
    json_object_set_new(g->res, "failed", json_array());
    for (size_t i = 0; i < nt; i++) {
        if (t[i].remote != NULL)
            continue;
        local = true;
        on_target |= strcmp(n->head, t[i].ref) == 0;
    }
    if (local && on_target) {
        /* update-ref must not move or delete the branch under HEAD. */
        char why[1024];
        if (git_msg(
                g, (const char *const[]){"switch", "--quiet", "--detach", NULL},
                why, sizeof(why)) != 0) {
            rc = fail(g, lock_or(why, GITOPS_FATAL),
                      "rollback: cannot detach HEAD: %s", why);
            goto out;
        }
    }
    for (size_t i = 0; i < nt; i++) {
        if (t[i].remote == NULL)
            rollback_local(g, &t[i], &worst);
    }
    if (local) {
        char cur[GITOPS_NAME_MAX + 1], oid[GITOPS_OID_MAX + 1], why[1024];
        head_of(g, cur, oid);
        if (head != NULL && strcmp(cur, head) != 0) {
            if (branch_oid(g, head, oid) != 1)
                buf_printf(&g->msg,
                           "HEAD was on '%s', which is gone; it "
                           "stays detached",
                           head);
            else if (git_msg(g,
                             (const char *const[]){"switch", "--quiet",
                                                   "--discard-changes", "--",
                                                   head, NULL},
                             why, sizeof(why)) != 0)
                worst =
                    fail(g, lock_or(why, GITOPS_FATAL),
                         "rollback: cannot switch back to '%s': %s", head, why);
        }
    }
    for (size_t i = 0; i < nt; i++) {
        if (t[i].remote != NULL)
            rollback_remote(g, &t[i], &worst);
    }
    rc = worst;
    if (rc != GITOPS_OK) {
        size_t nf = json_array_size(json_object_get(g->res, "failed"));
        if (nf > 0)
            fail(g, rc, "rollback: %zu of %zu branches not restored: %s", nf,
                 nt,
                 json_string_value(json_object_get(
                     json_array_get(json_object_get(g->res, "failed"), 0),
                     "error")));
    }
out:
    weft_free(t);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------ */

/* Which names an operation uses, and where its branch comes from. */
enum bdefault {
    BD_NONE,        /* not used */
    BD_BRANCH_NAME, /* context.branchName */
    BD_CURRENT,     /* the branch HEAD is on */
    BD_OPTIONAL,    /* only when given (fetch) */
};

struct opdef {
    const char *name;
    int (*run)(struct gctx *g, struct names *n);
    enum bdefault branch;
    bool base;            /* uses base (default context.baseBranch) */
    bool remote;          /* uses remote (default origin) */
    bool remote_required; /* the remote must exist */
};

/* Every operation also looks for a remote-tracking branch of `remote`
 * (default origin) when a branch exists only there. */
static const struct opdef ops[] = {
    {"branch", op_branch, BD_BRANCH_NAME, true, true, false},
    {"checkout", op_checkout, BD_BRANCH_NAME, false, true, false},
    {"commit", op_commit, BD_NONE, false, false, false},
    {"push", op_push, BD_CURRENT, false, true, true},
    {"merge", op_merge, BD_BRANCH_NAME, true, true, false},
    {"rebase", op_rebase, BD_CURRENT, true, true, false},
    {"fetch", op_fetch, BD_OPTIONAL, false, true, true},
    {"pull", op_pull, BD_CURRENT, false, true, true},
    /* Not a workflow operation: the scheduler's job for a run that ends
     * failed or cancelled with `rollback: true`. */
    {"rollback", op_rollback, BD_NONE, false, false, false},
};

/* Checks every name given or defaulted from the context, before anything
 * else runs. Names that default to the current branch come from the
 * repository and are filled in later. */
static int check_names(struct gctx *g, const struct opdef *op, struct names *n)
{
    const struct gitops_req *q = g->req;
    int rc;

    if (op->branch == BD_BRANCH_NAME) {
        n->branch = q->branch ? q->branch : q->branch_name;
        if (n->branch == NULL)
            return fail(g, GITOPS_FATAL,
                        "%s: no branch given and the run has no branchName",
                        op->name);
    } else if (op->branch != BD_NONE) {
        n->branch = q->branch;
    }
    if (n->branch && (rc = check_name(g, "branch", n->branch)) != 0)
        return rc;
    if (op->base) {
        n->base = q->base ? q->base : q->base_branch;
        if (n->base == NULL)
            return fail(g, GITOPS_FATAL,
                        "%s: no base given and the run has no baseBranch",
                        op->name);
        if ((rc = check_name(g, "base", n->base)) != 0)
            return rc;
    }
    if (op->remote) {
        n->remote = q->remote ? q->remote : "origin";
        if ((rc = check_remote_syntax(g, n->remote)) != 0)
            return rc;
    }
    if (op->run == op_rollback) {
        /* The recorded changes' names, checked before the repository is
         * touched; op_rollback folds them again. */
        struct target *t = weft_calloc(GITOPS_CHANGES_MAX, sizeof(*t));
        size_t nt;
        const char *head;
        if (t == NULL)
            return fail(g, GITOPS_RETRY, "out of memory");
        rc = collect_targets(g, t, &nt, &head);
        weft_free(t);
        return rc;
    }
    return GITOPS_OK;
}

/* ---- the workspace: environment, clone cache ----------------------------- */

/* Removes the directory tree under dirfd/name (best effort). */
static void rm_tree(int dirfd, const char *name, int depth)
{
    int fd;
    DIR *d;
    struct dirent *e;

    if (depth > GITOPS_RM_DEPTH_MAX)
        return;
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) {
        unlinkat(dirfd, name, 0);
        return;
    }
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(sb.st_mode))
            rm_tree(fd, e->d_name, depth + 1);
        else
            unlinkat(fd, e->d_name, 0);
    }
    closedir(d);
    unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* mkdir -p for the parents of path. */
static int mkdir_parents(const char *path)
{
    char p[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(p))
        return -1;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (p[i] != '/')
            continue;
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
        p[i] = '/';
    }
    return 0;
}

/* A URL git may clone from: not an option, not a transport helper
 * (`ext::cmd`), no control characters. Which transports are allowed at
 * all is GIT_ALLOW_PROTOCOL's business. */
static bool url_acceptable(const char *url)
{
    if (url[0] == '-' || url[0] == '\0' || strstr(url, "::") != NULL ||
        strlen(url) > PATH_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

/* When dir is a clone cache without its repository, clones url into a
 * fresh directory beside it and renames that into place, so a clone cut
 * short never leaves a half repository where the next attempt looks. */
static int ensure_clone(struct gctx *g)
{
    const char *dir = g->req->dir, *url = g->req->clone_url;
    char dotgit[PATH_MAX], tmp[PATH_MAX], shown[PATH_MAX];
    struct gitrun r;
    struct stat sb;
    int rc;

    if (snprintf(dotgit, sizeof(dotgit), "%s/.git", dir) >= (int)sizeof(dotgit))
        return fail(g, GITOPS_FATAL, "workspace path too long");
    if (stat(dotgit, &sb) == 0)
        return GITOPS_OK;
    if (!url_acceptable(url))
        return fail(g, GITOPS_FATAL,
                    "repoRoot '%s' is not a URL weft clones from",
                    redact(url, shown, sizeof(shown)));
    if (snprintf(tmp, sizeof(tmp), "%s.clone-XXXXXX", dir) >=
            (int)sizeof(tmp) ||
        mkdir_parents(tmp) != 0 || mkdtemp(tmp) == NULL)
        return fail(g, GITOPS_RETRY, "cannot create the clone cache %s: %s",
                    dir, strerror(errno));
    gitrun_init(&r);
    GIT(g, &r, "clone", "--quiet", "--", url, tmp);
    rc = r.code == 0 ? GITOPS_OK
                     : fail_git(g, GITOPS_RETRY, &r, "cannot clone '%s'",
                                redact(url, shown, sizeof(shown)));
    gitrun_deinit(&r);
    if (rc == GITOPS_OK && rename(tmp, dir) != 0) {
        int e = errno;
        /* Another worker may have filled the cache first: use it. A
         * directory with other files in it is not ours to replace. */
        if (stat(dotgit, &sb) == 0)
            rc = GITOPS_OK;
        else if (e == ENOTEMPTY || e == EEXIST)
            rc = fail(g, GITOPS_FATAL,
                      "clone cache %s holds files but no repository", dir);
        else
            rc = fail(g, GITOPS_RETRY, "cannot move the clone to %s: %s", dir,
                      strerror(e));
    }
    if (stat(tmp, &sb) == 0)
        rm_tree(AT_FDCWD, tmp, 0);
    return rc;
}

/* The environment every git command here runs with. in_repo: the
 * current directory is the repository's. */
static int git_environment(bool in_repo)
{
    /* Inherited from a hook or a wrapper, these would point git at
     * another repository than the step's. */
    static const char *const drop[] = {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_COMMON_DIR",
        "GIT_OBJECT_DIRECTORY",
        "GIT_NAMESPACE",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    };
    char parent[PATH_MAX];
    char *slash;

    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        unsetenv(drop[i]);
    /* Never wait for a person: no prompts, no editors. */
    if (setenv("GIT_TERMINAL_PROMPT", "0", 1) ||
        setenv("GIT_EDITOR", "true", 1) ||
        setenv("GIT_SEQUENCE_EDITOR", "true", 1) ||
        setenv("GIT_MERGE_AUTOEDIT", "no", 1) ||
        setenv("GIT_ALLOW_PROTOCOL", GITOPS_PROTOCOLS, 1) ||
        setenv("LC_ALL", "C", 1))
        return -1;
    /* The repository is dir itself, never one of its parents: a repoRoot
     * that is not a repository must fail, not commit to an enclosing
     * one. */
    if (in_repo && getcwd(parent, sizeof(parent)) != NULL &&
        (slash = strrchr(parent, '/')) != NULL) {
        if (slash == parent)
            slash[1] = '\0';
        else
            *slash = '\0';
        if (setenv("GIT_CEILING_DIRECTORIES", parent, 1))
            return -1;
    }
    return 0;
}

static const struct opdef *op_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(ops[i].name, name) == 0)
            return &ops[i];
    }
    return NULL;
}

static int run_op(struct gctx *g)
{
    const struct gitops_req *q = g->req;
    const struct opdef *op = op_find(q->operation);
    struct names n;
    struct gitrun r;
    int rc;

    memset(&n, 0, sizeof(n));
    if (op == NULL)
        return fail(g, GITOPS_FATAL, "unknown git operation '%s'",
                    q->operation ? q->operation : "(none)");
    if (q->dir == NULL)
        return fail(g, GITOPS_FATAL, "no repository directory");
    if (git_environment(false) != 0)
        return fail(g, GITOPS_RETRY, "cannot set git's environment");
    /* Names first: a hostile name stops the step before git touches the
     * repository (or clones it). */
    if ((rc = check_names(g, op, &n)) != 0)
        return rc;
    if (q->clone_url && (rc = ensure_clone(g)) != 0)
        return rc;
    if (chdir(q->dir) != 0)
        return fail(g, GITOPS_FATAL, "repository directory %s: %s", q->dir,
                    strerror(errno));
    if (git_environment(true) != 0)
        return fail(g, GITOPS_RETRY, "cannot set git's environment");
    gitrun_init(&r);
    GIT(g, &r, "rev-parse", "--is-inside-work-tree");
    rc = r.code == 0 ? GITOPS_OK
                     : fail_git(g, r.code < 0 ? GITOPS_RETRY : GITOPS_FATAL, &r,
                                "%s is not a git working tree", q->dir);
    gitrun_deinit(&r);
    if (rc != 0 || (rc = result_new(g)) != 0)
        return rc;
    head_of(g, n.head, n.head_oid);
    if (op->branch == BD_CURRENT && n.branch == NULL) {
        if (n.head[0] == '\0')
            rc = fail(g, GITOPS_FATAL, "%s: HEAD is detached; name the branch",
                      op->name);
        n.branch = n.head;
    }
    set_str(g, "branch", n.branch);
    set_str(g, "base", n.base);
    set_str(g, "remote", n.remote);
    if (rc == GITOPS_OK && n.remote && op->remote_required)
        rc = check_remote_exists(g, n.remote);
    if (rc == GITOPS_OK)
        rc = op->run(g, &n);
    set_head(g);
    return rc;
}

int gitops_run(const struct gitops_req *req, json_t **report)
{
    struct gctx g;
    int rc;

    memset(&g, 0, sizeof(g));
    g.req = req;
    g.ident = -1;
    buf_init(&g.msg, GITOPS_MSG_MAX);
    rc = run_op(&g);
    *report = json_pack(
        "{s:o, s:o}", "result", g.res ? g.res : json_null(), "message",
        g.msg.len ? jstr(g.msg.data, g.msg.len, true) : json_null());
    buf_deinit(&g.msg);
    return rc;
}

int gitops_child(void *arg)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD};
    sigset_t none;
    json_t *report = NULL;
    char *text;
    int rc;

    /* The worker's handlers and mask are not ours: a SIGTERM must end
     * this process and its git commands. */
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    rc = gitops_run(arg, &report);
    text = report ? json_dumps(report, JSON_COMPACT) : NULL;
    json_decref(report);
    if (text == NULL)
        return GITOPS_RETRY;
    for (size_t off = 0, n = strlen(text); off < n;) {
        ssize_t w = write(1, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    weft_free(text);
    return rc;
}
