/* handler_git.c - the `git-operation` step (docs/git.md).
 *
 * The job's `git` map names the operation and its branch, base, message
 * and remote; its context gives the run's repoRoot, branchName and
 * baseBranch. The handler finds the repository (the workspace module:
 * repoRoot itself, or a clone cache when repoRoot is a URL), forks one
 * child through subproc that runs the whole operation (gitops.c) and
 * turns the child's exit code and JSON report into the step's result:
 * exit 0 success, 1 error (retryable), 2 fatal. The report's `result`
 * object is what the scheduler merges into the run's gitState.
 *
 * Nothing here blocks: the child does the git work; the handler only
 * reads its report on the loop. A timeout or cancellation kills the
 * child's process group, git commands included.
 */
#include "handler.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "alloc.h"
#include "buf.h"
#include "gitops.h"
#include "subproc.h"
#include "workspace.h"

/* After SIGTERM, how long the child and its git commands get before
 * SIGKILL. git removes its lock files on SIGTERM; it needs very little. */
#define GIT_KILL_GRACE_MS 2000
/* Room for the handler's own messages (stderr tails are added after). */
#define GIT_MSG_MAX 512

/* One running git step: the request the child runs (strings borrowed
 * from the job spec, which outlives it, and from dir/url below) and the
 * child. */
struct gitjob {
    struct gitops_req req;
    const char *repo_root; /* context.repoRoot, borrowed; may be NULL */
    char *dir;             /* owned */
    char *url;             /* owned; NULL unless repoRoot is cloned */
    struct subproc *proc;
};

static void gitjob_free(struct gitjob *gj)
{
    if (gj == NULL)
        return;
    weft_free(gj->dir);
    weft_free(gj->url);
    weft_free(gj);
}

static void complete(struct job *j, enum wire_status st, const char *msg)
{
    struct wire_result r;

    memset(&r, 0, sizeof(r));
    r.status = st;
    r.message = msg ? weft_strdup(msg) : NULL;
    job_complete(j, &r);
}

/* The string at key of obj, or NULL when absent or null; *bad names the
 * key when it is there with another type. */
static const char *str_field(const json_t *obj, const char *key,
                             const char **bad)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;

    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        if (*bad == NULL)
            *bad = key;
        return NULL;
    }
    return json_string_value(v);
}

/* Fills gj->req from the job. 0, or a fatal message in msg. */
static int read_job(const struct wire_job *spec, struct gitjob *gj, char *msg,
                    size_t n)
{
    const json_t *git = spec->git, *ctx = spec->context;
    struct gitops_req *q = &gj->req;
    const char *bad = NULL;

    if (!json_is_object(git)) {
        snprintf(msg, n, "git: the job has no 'git' map");
        return -1;
    }
    q->operation = str_field(git, "operation", &bad);
    q->branch = str_field(git, "branch", &bad);
    q->base = str_field(git, "base", &bad);
    q->message = str_field(git, "message", &bad);
    q->remote = str_field(git, "remote", &bad);
    q->changes = json_object_get(git, "changes"); /* rollback */
    if (bad != NULL) {
        snprintf(msg, n, "git: '%s' must render to a string", bad);
        return -1;
    }
    gj->repo_root = str_field(ctx, "repoRoot", &bad);
    q->branch_name = str_field(ctx, "branchName", &bad);
    q->base_branch = str_field(ctx, "baseBranch", &bad);
    if (bad != NULL) {
        snprintf(msg, n, "git: context '%s' must be a string", bad);
        return -1;
    }
    if (q->operation == NULL) {
        snprintf(msg, n, "git: the job names no operation");
        return -1;
    }
    return 0;
}

/* The result of a finished child: exit code for the status, the report
 * for result and message. */
static void read_report(const struct subproc_result *res, struct wire_result *r)
{
    json_t *rep = NULL, *result, *message;
    char msg[GIT_MSG_MAX];
    struct buf b;
    int code = WIFEXITED(res->status) ? WEXITSTATUS(res->status) : -1;

    memset(r, 0, sizeof(r[0]));
    if (!res->out_truncated && res->outlen > 0)
        rep = json_loadb(res->out, res->outlen, 0, NULL);
    result = json_is_object(rep) ? json_object_get(rep, "result") : NULL;
    message = json_is_object(rep) ? json_object_get(rep, "message") : NULL;
    if (rep == NULL || !json_is_object(rep) ||
        (result && !json_is_object(result) && !json_is_null(result)) ||
        (message && !json_is_string(message) && !json_is_null(message)) ||
        code < GITOPS_OK || code > GITOPS_FATAL) {
        /* No usable report: the child crashed, was killed, or could not
         * start. What it said on stderr is the operator's clue. */
        if (WIFSIGNALED(res->status))
            snprintf(msg, sizeof(msg), "git step killed by signal %d",
                     WTERMSIG(res->status));
        else
            snprintf(msg, sizeof(msg), "git step exited with %d without %s",
                     code,
                     res->out_truncated ? "a report of sane size" : "a report");
        r->status = WIRE_ERROR;
        buf_init(&b, GIT_MSG_MAX + SUBPROC_STDERR_TAIL);
        buf_append_str(&b, msg);
        if (res->errlen > 0)
            buf_append_str(&b, ": ");
        /* stderr may hold any bytes; the message must stay UTF-8. */
        for (size_t i = 0; i < res->errlen; i++) {
            unsigned char c = (unsigned char)res->err[i];
            buf_append_char(&b, (c >= 0x20 && c < 0x7f) || c == '\n' ? (char)c
                                                                     : '?');
        }
        r->message = buf_steal(&b, NULL);
        buf_deinit(&b);
        json_decref(rep);
        return;
    }
    r->status = code == GITOPS_OK      ? WIRE_SUCCESS
                : code == GITOPS_RETRY ? WIRE_ERROR
                                       : WIRE_FATAL;
    if (json_is_object(result))
        r->result = json_incref(result);
    if (json_is_string(message))
        r->message = weft_strdup(json_string_value(message));
    json_decref(rep);
}

static void on_done(const struct subproc_result *res, void *ud)
{
    struct job *j = ud;
    struct wire_result r;

    read_report(res, &r);
    if (res->killed)
        r.status = WIRE_CANCELLED; /* the loop puts its reason */
    gitjob_free(job_data(j));
    job_set_data(j, NULL);
    job_complete(j, &r);
}

static int git_start(struct job *j)
{
    const struct wire_job *spec = job_spec(j);
    struct gitjob *gj = weft_calloc(1, sizeof(*gj));
    struct subproc_opts o;
    struct weft_error err;
    char msg[GIT_MSG_MAX];

    if (gj == NULL)
        return WEFT_ENOMEM;
    if (read_job(spec, gj, msg, sizeof(msg)) != 0) {
        gitjob_free(gj);
        complete(j, WIRE_FATAL, msg);
        return 0;
    }
    weft_error_clear(&err);
    if (workspace_git_repo(spec->run, gj->repo_root, &gj->dir, &gj->url,
                           &err) != 0) {
        gitjob_free(gj);
        complete(j, err.code == WEFT_ENOMEM ? WIRE_ERROR : WIRE_FATAL, err.msg);
        return 0;
    }
    gj->req.dir = gj->dir;
    gj->req.clone_url = gj->url;
    memset(&o, 0, sizeof(o));
    o.child_fn = gitops_child;
    o.child_arg = &gj->req;
    o.stdout_max = GITOPS_REPORT_MAX;
    job_set_data(j, gj);
    if (subproc_start(job_base(j), &o, on_done, j, &gj->proc, &err) != 0) {
        job_set_data(j, NULL);
        gitjob_free(gj);
        snprintf(msg, sizeof(msg), "git: cannot start the step: %s", err.msg);
        complete(j, WIRE_ERROR, msg);
    }
    return 0;
}

/* Timeout, cancellation or shutdown: stop the child; on_done reports. */
static void git_cancel(struct job *j)
{
    struct gitjob *gj = job_data(j);

    if (gj != NULL && gj->proc != NULL)
        subproc_kill(gj->proc, SIGTERM, GIT_KILL_GRACE_MS);
}

const struct handler handler_git = {
    .type = "git-operation",
    .start = git_start,
    .cancel = git_cancel,
    .ud = NULL,
};
