/* gitops.h - the git operations of `git-operation` steps (docs/git.md).
 *
 * An operation is a short sequence of blocking git commands (validate the
 * names, look refs up, switch, merge, collect what changed). It runs in a
 * process forked for the step (subproc's child_fn mode): gitops_child
 * runs the operation, prints one JSON report on stdout and returns the
 * exit code, so the worker's event loop never blocks on git and a timeout
 * kills the whole process group, git included.
 *
 * git is started with an argv (execvp, never a shell); every name that
 * comes from a workflow or a task is checked with `git check-ref-format
 * --branch` (or, for remotes, against the configured remotes) before any
 * command that uses it runs, and is passed after `--`. git never prompts
 * (GIT_TERMINAL_PROMPT=0) and only speaks the protocols in
 * GITOPS_PROTOCOLS.
 */
#ifndef WEFT_WORKER_GITOPS_H
#define WEFT_WORKER_GITOPS_H

#include <jansson.h>

/* File names listed in a report (`files`, `conflicts`). gitState is copied
 * into every persona request; a merge of a thousand files must not make
 * each request megabytes long. `truncated` tells that a list was cut. */
#define GITOPS_FILES_MAX 100
/* Largest report the child prints. A full report (GITOPS_FILES_MAX names
 * of up to 4 KiB each is possible but absurd) stays far below; past this
 * the parent treats the output as garbage. */
#define GITOPS_REPORT_MAX (1024 * 1024)
/* Longest branch, base or remote name accepted. Git allows longer refs,
 * but no workflow needs them and they end up in messages and gitState. */
#define GITOPS_NAME_MAX 255
/* Longest commit or merge message: it is passed as one argv string and
 * Linux limits one argument to 128 KiB (MAX_ARG_STRLEN). */
#define GITOPS_MESSAGE_MAX (64 * 1024)
/* Changes a rollback job may list: gitState.changes is capped at this
 * too (common/lua/lib.lua GIT_CHANGES_MAX), one per git step result. */
#define GITOPS_CHANGES_MAX 1000
/* Transports git may use (GIT_ALLOW_PROTOCOL). A task's repoRoot is
 * untrusted: `ext::` runs commands and is never allowed. */
#define GITOPS_PROTOCOLS "file:git:http:https:ssh"

/* Exit codes of the child, read by the handler. */
enum gitops_exit {
    GITOPS_OK = 0,    /* success */
    GITOPS_RETRY = 1, /* failed; may succeed later (network, lock) */
    GITOPS_FATAL = 2, /* failed for good: bad input, conflicts, rejected */
};

/* One operation. Every string is borrowed and may be NULL (absent). */
struct gitops_req {
    const char *operation;   /* branch, checkout, commit, push, merge, rebase,
                                fetch, pull; rollback (scheduler only) */
    const char *branch;      /* step's `branch`; NULL: the operation's
                                default */
    const char *base;        /* step's `base`; NULL: base_branch */
    const char *message;     /* step's `message` (commit, merge) */
    const char *remote;      /* step's `remote`; NULL: "origin" */
    const char *branch_name; /* context.branchName */
    const char *base_branch; /* context.baseBranch */
    const char *dir;         /* the repository's working tree (required) */
    /* When set, dir is a clone cache: if it holds no repository yet, the
     * repository at this URL is cloned into it first. */
    const char *clone_url;
    /* rollback: the run's recorded changes, a JSON array of {step, op,
     * ref, remote, created, before, pushed, head} (docs/git.md,
     * "Rollback"); borrowed. */
    const json_t *changes;
};

/* Runs req: blocks on git commands and changes this process's
 * environment and working directory, so it is for a forked child only.
 * Returns an enum gitops_exit and *report (new reference, or NULL when
 * memory ran out): {"result": object or null, "message": string or
 * null}. The result object is what lands in the run's gitState (shape in
 * docs/git.md). */
int gitops_run(const struct gitops_req *req, json_t **report);

/* subproc child_fn: arg is a const struct gitops_req *. Restores default
 * signal handling, runs gitops_run, prints the report as one line of
 * JSON on stdout and returns the exit code. */
int gitops_child(void *arg);

#endif
