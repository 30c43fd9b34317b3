/* subproc.c - child processes on the worker's event loop (subproc.h).
 *
 * A child is forked into its own process group with three pipes. The
 * parent's ends are non-blocking and watched by libevent: stdin is
 * written as the child reads it, stdout is stored up to a limit, stderr
 * goes through a ring that keeps its tail. The child's exit is learnt
 * from a pidfd (Linux 5.3+), which needs no signal handler and so lets
 * any number of subprocs on any number of event bases coexist in one
 * process; where pidfd_open is refused, a short timer polls waitpid
 * with WNOHANG on that one pid instead. Nothing here ever waits on
 * another process's children (no waitpid(-1)).
 *
 * When the child exits, whatever is left of its process group is killed:
 * a step leaves no processes behind. Its pipes are then read to EOF, but
 * for at most SUBPROC_LINGER_MS, in case a descendant that left the
 * group (setsid) still holds them.
 *
 * The worker may also die with SIGKILL, when nothing of it runs to clean
 * up. The child itself has PR_SET_PDEATHSIG, but that does not pass to
 * its own children (a persona's tools, git under a git step), which
 * would keep running, and keep changing the workspace, while the job is
 * run again elsewhere. So each child's group holds a warden: a process
 * that does nothing but wait for EOF on a pipe (the lifeline) whose only
 * writer is the worker, then SIGKILLs its own group. The kernel closes
 * the lifeline when the worker dies, however it dies. The warden is the
 * worker's own child (not the child's: a persona that waits for all its
 * children, as a shell's `wait` does, never waits for it; and no zombie
 * is left for PID 1 to reap, which in a container is the worker itself),
 * forked right after the child into the child's group. The child waits
 * for it (a byte on the `go` pipe) before it runs anything, so a worker
 * killed between the two forks leaves no group unguarded. The warden
 * blocks every signal (a SIGTERM to the group on timeout leaves it on
 * guard through the grace period) and dies with the group's SIGKILL
 * when the child exits; done_cb waits until it is reaped too.
 *
 * The worker is single-threaded, so descriptors are made close-on-exec
 * right as they are created (pipe2, pidfd) and no other thread can fork
 * between. The child resets the signal mask and the dispositions the
 * worker changed (SIGPIPE is ignored by weft's daemons and would be
 * inherited across exec).
 */
#define _GNU_SOURCE /* pipe2, close_range, syscall(SYS_pidfd_open) */

#include "subproc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"

/* Bytes read from a pipe in one system call. */
#define SUBPROC_READ_CHUNK 65536
/* Reads per pipe per loop iteration: a child that writes without pause
 * cannot starve the rest of the loop. */
#define SUBPROC_READS_PER_WAKE 16
/* After the child exited, how long its pipes may stay open (held by a
 * descendant that escaped the process group) before they are closed. */
#define SUBPROC_LINGER_MS 2000
/* Poll interval for the exit when pidfd_open is not available. */
#define SUBPROC_POLL_MS 20
/* First stdout allocation; the buffer then doubles up to stdout_max. */
#define SUBPROC_OUT_INITIAL 4096
/* Descriptors closed one by one in a child where close_range is
 * missing: far more than a worker opens, few enough to be quick. */
#define SUBPROC_CLOSE_FDS_MAX 65536
/* Exit status of a child that could not exec (the shell's convention). */
#define SUBPROC_EXEC_FAILED 127
/* The warden's name in ps and top (at most 15 bytes: the kernel's comm). */
#define SUBPROC_WARDEN_NAME "weft-warden"

extern char **environ;

struct subproc {
    struct event_base *base;
    pid_t pid;
    subproc_done_cb cb;
    void *ud;

    int pidfd;              /* -1 when polling */
    struct event *exit_ev;  /* pidfd readable, or the poll timer */
    struct event *grace_ev; /* SIGKILL after subproc_kill's grace */
    struct event *linger_ev;

    int life_fd;  /* write end of the warden's lifeline; -1 once closed */
    pid_t warden; /* 0 once reaped */
    int wpidfd;   /* -1 when polling */
    struct event *warden_ev; /* its pidfd readable, or the poll timer */

    int in_fd; /* -1 once closed */
    struct event *in_ev;
    char *in_buf; /* owned copy of stdin_data */
    size_t in_len, in_off;

    int out_fd;
    struct event *out_ev;
    char *out; /* outcap + 1 bytes (room for the NUL) */
    size_t outlen, outcap, outmax;
    bool truncated;

    int err_fd;
    struct event *err_ev;
    char err_ring[SUBPROC_STDERR_TAIL];
    size_t err_total; /* bytes ever written to the ring */

    bool exited; /* reaped; status is valid */
    int status;
    bool killed;
    bool done; /* done_cb running: kill is a no-op */
};

/* ---- helpers ----------------------------------------------------------- */

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void free_event(struct event **ev)
{
    if (*ev != NULL) {
        event_free(*ev);
        *ev = NULL;
    }
}

/* The child's copy of a pipe end must not land on 0, 1 or 2 before the
 * dup2s (a daemon started with those closed gets them from pipe2), or
 * one dup2 would overwrite another. Moves fd to >= 3, close-on-exec. */
static int above_stdio(int fd)
{
    int nfd;
    if (fd > 2)
        return fd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

static int make_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    p[0] = above_stdio(p[0]);
    p[1] = above_stdio(p[1]);
    if (p[0] < 0 || p[1] < 0) {
        close_fd(&p[0]);
        close_fd(&p[1]);
        return -1;
    }
    return 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -1;
    return 0;
}

/* environ with opts->env laid over it: a "K=V" replaces the entry for K
 * or is appended. The array is owned by the caller (weft_free); the
 * strings are borrowed from environ and opts->env. */
static char **build_env(const char *const *add, struct weft_error *err)
{
    size_t n = 0, m = 0, k = 0;
    char **envp;

    while (environ[n] != NULL)
        n++;
    while (add != NULL && add[m] != NULL)
        m++;
    envp = weft_calloc(n + m + 1, sizeof(*envp));
    if (envp == NULL) {
        weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        envp[k++] = environ[i];
    for (size_t i = 0; i < m; i++) {
        const char *eq = strchr(add[i], '=');
        size_t klen;
        size_t j;
        if (eq == NULL || eq == add[i]) {
            weft_error_set(err, WEFT_EINVAL, 0, 0,
                           "environment entry '%.64s' is not KEY=VALUE",
                           add[i]);
            weft_free(envp);
            return NULL;
        }
        klen = (size_t)(eq - add[i]) + 1; /* with the '=' */
        for (j = 0; j < k; j++) {
            if (strncmp(envp[j], add[i], klen) == 0)
                break;
        }
        envp[j] = (char *)add[i];
        if (j == k)
            k++;
    }
    envp[k] = NULL;
    return envp;
}

/* Writes a fixed message and a detail to fd 2 with async-signal-safe
 * calls only (the child of a fork). */
static void child_complain(const char *what, const char *detail)
{
    const char *e = strerror(errno);
    ssize_t r;
    r = write(2, "weft: ", 6);
    r = write(2, what, strlen(what));
    r = write(2, detail, strlen(detail));
    r = write(2, ": ", 2);
    r = write(2, e, strlen(e));
    r = write(2, "\n", 1);
    (void)r;
}

/* Closes every descriptor from low up (a forked child's; async-signal-safe
 * calls only). */
static void close_from(int low)
{
    if (close_range((unsigned)low, ~0u, 0) != 0) {
        /* Before Linux 5.9: one by one, up to the descriptor limit. */
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > SUBPROC_CLOSE_FDS_MAX)
            max = SUBPROC_CLOSE_FDS_MAX;
        for (int fd = low; fd < (int)max; fd++)
            close(fd);
    }
}

/* The warden (see the top of the file), forked from the worker; never
 * returns. life: the read end of the lifeline; pgid: the child's group. */
static void warden_run(int life, pid_t pgid)
{
    sigset_t all;
    char b;
    ssize_t n;

    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    /* Also done by the parent: whichever comes first. */
    setpgid(0, pgid);
    if (getpgrp() != pgid)
        _exit(SUBPROC_EXEC_FAILED);
    prctl(PR_SET_NAME, SUBPROC_WARDEN_NAME);
    /* Hold nothing of the worker's: no pipe of another child (its reader
     * would never see EOF), no directory that someone wants to remove. */
    if (dup2(life, 0) < 0)
        _exit(SUBPROC_EXEC_FAILED);
    close_from(1);
    if (chdir("/") != 0)
        _exit(SUBPROC_EXEC_FAILED);
    do {
        n = read(0, &b, 1);
    } while (n > 0 || (n < 0 && errno == EINTR));
    /* EOF: the worker is gone (or done with the child, whose group is
     * already dead then). The warden goes with its group. */
    kill(0, SIGKILL);
    _exit(0);
}

/* Runs in the forked child; never returns. go: the read end of the
 * pipe on which the worker says the warden is in place. */
static void child_run(const struct subproc_opts *o, char **envp, int in,
                      int out, int errfd, int go, pid_t parent)
{
    static const int reset[] = {SIGPIPE, SIGINT,  SIGTERM, SIGHUP,
                                SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};
    struct sigaction sa;
    sigset_t none;

    setpgid(0, 0);
    /* A worker killed with -9 takes its children with it: the job is
     * reclaimed and run again elsewhere, so a leftover must not keep
     * changing the workspace. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(SUBPROC_EXEC_FAILED);
    char b;
    ssize_t n;
    do {
        n = read(go, &b, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(SUBPROC_EXEC_FAILED); /* the worker is gone, or failed */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
        sigaction(reset[i], &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0)
        _exit(SUBPROC_EXEC_FAILED);
    /* Only 0-2 go on (the lifeline does not: the worker must be its only
     * writer). O_CLOEXEC would do for exec, but not for child_fn (a copy
     * holding a sibling subproc's stdin pipe would keep that sibling from
     * seeing EOF), nor for what some library opened without it. */
    close_from(3);
    if (o->cwd != NULL && chdir(o->cwd) != 0) {
        child_complain("cannot enter working directory ", o->cwd);
        _exit(SUBPROC_EXEC_FAILED);
    }
    if (o->child_fn != NULL) {
        int rc;
        environ = envp;
        rc = o->child_fn(o->child_arg);
        fflush(stdout);
        fflush(stderr);
        _exit(rc & 0xff);
    }
    environ = envp;
    execvp(o->argv[0], (char *const *)o->argv);
    child_complain("cannot run ", o->argv[0]);
    _exit(SUBPROC_EXEC_FAILED);
}

/* ---- completion ------------------------------------------------------- */

static void warden_stop_wait(struct subproc *p);

static void subproc_free(struct subproc *p)
{
    warden_stop_wait(p);
    free_event(&p->exit_ev);
    free_event(&p->grace_ev);
    free_event(&p->linger_ev);
    free_event(&p->in_ev);
    free_event(&p->out_ev);
    free_event(&p->err_ev);
    close_fd(&p->pidfd);
    free_event(&p->warden_ev);
    close_fd(&p->wpidfd);
    close_fd(&p->life_fd);
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    weft_free(p->in_buf);
    weft_free(p->out);
    weft_free(p);
}

/* Calls done_cb and frees p once the child and its warden are reaped and
 * both output pipes are closed. */
static void maybe_finish(struct subproc *p)
{
    struct subproc_result r;
    char *err = NULL;
    char empty[1] = {'\0'};
    size_t errlen;

    if (!p->exited || p->warden > 0 || p->out_fd >= 0 || p->err_fd >= 0)
        return;
    errlen =
        p->err_total < SUBPROC_STDERR_TAIL ? p->err_total : SUBPROC_STDERR_TAIL;
    err = weft_malloc(errlen + 1);
    if (err != NULL) {
        size_t start = p->err_total % SUBPROC_STDERR_TAIL;
        if (p->err_total <= SUBPROC_STDERR_TAIL) {
            memcpy(err, p->err_ring, errlen);
        } else {
            memcpy(err, p->err_ring + start, SUBPROC_STDERR_TAIL - start);
            memcpy(err + SUBPROC_STDERR_TAIL - start, p->err_ring, start);
        }
        err[errlen] = '\0';
    } else {
        errlen = 0;
    }
    memset(&r, 0, sizeof(r));
    r.status = p->status;
    r.out = p->out != NULL ? p->out : empty;
    r.out[p->outlen] = '\0';
    r.outlen = p->outlen;
    r.out_truncated = p->truncated;
    r.err = err != NULL ? err : empty;
    r.errlen = errlen;
    r.killed = p->killed;
    p->done = true;
    p->cb(&r, p->ud);
    weft_free(err);
    subproc_free(p);
}

static void kill_group(struct subproc *p, int sig)
{
    /* Once the child is reaped its group was killed (child_exited), and
     * its pid may be reused: never signal it again. */
    if (p->exited)
        return;
    kill(-p->pid, sig);
    /* The leader itself, should it have left its group. */
    kill(p->pid, sig);
}

static void close_stdin(struct subproc *p)
{
    free_event(&p->in_ev);
    close_fd(&p->in_fd);
    weft_free(p->in_buf);
    p->in_buf = NULL;
}

static void close_out(struct subproc *p)
{
    free_event(&p->out_ev);
    close_fd(&p->out_fd);
}

static void close_err(struct subproc *p)
{
    free_event(&p->err_ev);
    close_fd(&p->err_fd);
}

static void on_linger(evutil_socket_t fd, short what, void *ud)
{
    struct subproc *p = ud;
    (void)fd;
    (void)what;
    close_out(p);
    close_err(p);
    maybe_finish(p);
}

/* The child was reaped with status st. */
static void child_exited(struct subproc *p, int st)
{
    struct timeval tv = {SUBPROC_LINGER_MS / 1000,
                         (SUBPROC_LINGER_MS % 1000) * 1000};
    p->exited = true;
    p->status = st;
    free_event(&p->exit_ev);
    close_fd(&p->pidfd);
    free_event(&p->grace_ev);
    close_stdin(p);
    /* Leftovers of the group, the warden with them. The pgid cannot be
     * reused while any member lives, so this reaches only the child's own
     * descendants and the warden, which is also told by name in case it
     * could not join (it is our child: its pid is ours until reaped). */
    kill(-p->pid, SIGKILL);
    if (p->warden > 0)
        kill(p->warden, SIGKILL);
    if (p->out_fd >= 0 || p->err_fd >= 0) {
        p->linger_ev = evtimer_new(p->base, on_linger, p);
        if (p->linger_ev == NULL || evtimer_add(p->linger_ev, &tv) != 0) {
            close_out(p);
            close_err(p);
        }
    }
    maybe_finish(p);
}

/* Reaps the child if it has exited. */
static void try_reap(struct subproc *p)
{
    int st;
    pid_t r;
    do {
        r = waitpid(p->pid, &st, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == p->pid)
        child_exited(p, st);
    else if (r < 0)
        /* ECHILD: someone else reaped it (SIGCHLD ignored, or a stray
         * waitpid(-1)). Its status is lost; report a kill. */
        child_exited(p, SIGKILL);
}

static void on_exit_ev(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    try_reap(ud);
}

/* Reaps the warden if it has exited (killed with the group, or by
 * anyone: the child is then unguarded, as it would be without one). */
static void on_warden_ev(evutil_socket_t fd, short what, void *ud)
{
    struct subproc *p = ud;
    pid_t r;
    (void)fd;
    (void)what;
    do {
        r = waitpid(p->warden, NULL, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0)
        return;
    /* r < 0: ECHILD, reaped elsewhere (SIGCHLD ignored). */
    p->warden = 0;
    free_event(&p->warden_ev);
    close_fd(&p->wpidfd);
    maybe_finish(p);
}

/* Kills and reaps the warden at once (paths where the loop will not). */
static void warden_stop_wait(struct subproc *p)
{
    if (p->warden <= 0)
        return;
    kill(p->warden, SIGKILL);
    while (waitpid(p->warden, NULL, 0) < 0 && errno == EINTR)
        ;
    p->warden = 0;
}

/* ---- pipes ------------------------------------------------------------ */

static void on_stdin(evutil_socket_t fd, short what, void *ud)
{
    struct subproc *p = ud;
    (void)what;
    while (p->in_off < p->in_len) {
        ssize_t n = write(fd, p->in_buf + p->in_off, p->in_len - p->in_off);
        if (n > 0) {
            p->in_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* wait for room */
        break;      /* EPIPE: the child does not read its stdin */
    }
    close_stdin(p);
}

/* Makes room for more stdout; false when the buffer is at its maximum
 * or cannot grow. */
static bool out_grow(struct subproc *p)
{
    size_t cap;
    char *nb;
    if (p->outcap >= p->outmax)
        return false;
    cap = p->outcap == 0 ? SUBPROC_OUT_INITIAL : p->outcap;
    if (p->outcap != 0)
        cap = p->outmax - p->outcap < p->outcap ? p->outmax : p->outcap * 2;
    if (cap > p->outmax)
        cap = p->outmax;
    nb = weft_realloc(p->out, cap + 1);
    if (nb == NULL)
        return false;
    p->out = nb;
    p->outcap = cap;
    return true;
}

/* Stdout passed its maximum (or memory ran out): stop reading, kill. */
static void out_overflow(struct subproc *p)
{
    p->truncated = true;
    close_out(p);
    kill_group(p, SIGKILL);
}

static void on_stdout(evutil_socket_t fd, short what, void *ud)
{
    struct subproc *p = ud;
    (void)what;
    for (int i = 0; i < SUBPROC_READS_PER_WAKE; i++) {
        ssize_t n;
        if (p->outlen == p->outcap && !out_grow(p)) {
            /* Full: one byte more proves the child passed the limit. */
            char probe;
            n = read(fd, &probe, 1);
            if (n > 0) {
                out_overflow(p);
                break;
            }
        } else {
            size_t room = p->outcap - p->outlen;
            if (room > SUBPROC_READ_CHUNK)
                room = SUBPROC_READ_CHUNK;
            n = read(fd, p->out + p->outlen, room);
            if (n > 0) {
                p->outlen += (size_t)n;
                continue;
            }
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close_out(p); /* EOF or error */
        break;
    }
    maybe_finish(p);
}

static void err_append(struct subproc *p, const char *b, size_t n)
{
    if (n > SUBPROC_STDERR_TAIL) {
        p->err_total += n - SUBPROC_STDERR_TAIL;
        b += n - SUBPROC_STDERR_TAIL;
        n = SUBPROC_STDERR_TAIL;
    }
    while (n > 0) {
        size_t at = p->err_total % SUBPROC_STDERR_TAIL;
        size_t k = SUBPROC_STDERR_TAIL - at;
        if (k > n)
            k = n;
        memcpy(p->err_ring + at, b, k);
        p->err_total += k;
        b += k;
        n -= k;
    }
}

static void on_stderr(evutil_socket_t fd, short what, void *ud)
{
    struct subproc *p = ud;
    char buf[SUBPROC_STDERR_TAIL];
    (void)what;
    for (int i = 0; i < SUBPROC_READS_PER_WAKE; i++) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            err_append(p, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close_err(p);
        break;
    }
    maybe_finish(p);
}

/* ---- public ----------------------------------------------------------- */

/* Arms an exit watch on pid (the child's or the warden's): its pidfd in
 * *pidfd, or a polling timer; cb gets p. */
static int watch_pid(struct subproc *p, pid_t pid, int *pidfd,
                     struct event **ev, event_callback_fn cb)
{
    struct timeval poll = {0, SUBPROC_POLL_MS * 1000};
#ifdef SYS_pidfd_open
    /* pidfds are close-on-exec by definition. */
    *pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
#endif
    if (*pidfd >= 0) {
        *ev = event_new(p->base, *pidfd, EV_READ | EV_PERSIST, cb, p);
        if (*ev == NULL || event_add(*ev, NULL) != 0)
            return -1;
        return 0;
    }
    *ev = event_new(p->base, -1, EV_PERSIST, cb, p);
    if (*ev == NULL || event_add(*ev, &poll) != 0)
        return -1;
    return 0;
}

int subproc_start(struct event_base *base, const struct subproc_opts *opts,
                  subproc_done_cb done_cb, void *ud, struct subproc **out,
                  struct weft_error *err)
{
    int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1};
    int life[2] = {-1, -1}, go[2] = {-1, -1};
    struct subproc *p = NULL;
    char **envp = NULL;
    pid_t parent = getpid();
    int rc;

    if (base == NULL || opts == NULL || done_cb == NULL || out == NULL ||
        (opts->child_fn == NULL &&
         (opts->argv == NULL || opts->argv[0] == NULL)) ||
        (opts->stdin_len > 0 && opts->stdin_data == NULL))
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "subproc: no loop, callback or program");
    envp = build_env(opts->env, err);
    if (envp == NULL)
        return err != NULL ? err->code : WEFT_ENOMEM;
    p = weft_calloc(1, sizeof(*p));
    if (p == NULL)
        goto oom;
    p->base = base;
    p->cb = done_cb;
    p->ud = ud;
    p->pidfd = p->wpidfd = p->life_fd = -1;
    p->in_fd = p->out_fd = p->err_fd = -1;
    p->outmax = opts->stdout_max > 0 ? opts->stdout_max : SUBPROC_STDOUT_MAX;
    if (opts->stdin_len > 0) {
        p->in_buf = weft_malloc(opts->stdin_len);
        if (p->in_buf == NULL)
            goto oom;
        memcpy(p->in_buf, opts->stdin_data, opts->stdin_len);
        p->in_len = opts->stdin_len;
    }
    if (make_pipe(in) != 0 || make_pipe(o) != 0 || make_pipe(e) != 0 ||
        make_pipe(life) != 0 || make_pipe(go) != 0) {
        rc = weft_error_set(err, WEFT_EIO, 0, 0, "subproc: pipe: %s",
                            strerror(errno));
        goto fail;
    }
    if (set_nonblock(in[1]) != 0 || set_nonblock(o[0]) != 0 ||
        set_nonblock(e[0]) != 0) {
        rc = weft_error_set(err, WEFT_EIO, 0, 0, "subproc: fcntl: %s",
                            strerror(errno));
        goto fail;
    }
    p->in_fd = in[1];
    p->out_fd = o[0];
    p->err_fd = e[0];
    in[1] = o[0] = e[0] = -1;
    p->in_ev = event_new(base, p->in_fd, EV_WRITE | EV_PERSIST, on_stdin, p);
    p->out_ev = event_new(base, p->out_fd, EV_READ | EV_PERSIST, on_stdout, p);
    p->err_ev = event_new(base, p->err_fd, EV_READ | EV_PERSIST, on_stderr, p);
    if (p->in_ev == NULL || p->out_ev == NULL || p->err_ev == NULL)
        goto oom;

    if (opts->child_fn != NULL)
        fflush(stdout); /* or the child would flush our buffer again */
    p->pid = fork();
    if (p->pid < 0) {
        rc = weft_error_set(err, WEFT_EIO, 0, 0, "subproc: fork: %s",
                            strerror(errno));
        goto fail;
    }
    if (p->pid == 0) {
        close(go[1]); /* so that a worker gone before its byte is an EOF */
        child_run(opts, envp, in[0], o[1], e[1], go[0], parent);
    }
    /* Also from the parent, so that a kill right after this call cannot
     * miss the group. EACCES (the child already exec'd) is fine. */
    setpgid(p->pid, p->pid);
    /* The child is not reaped before this returns, so its group exists
     * for the warden to join. */
    p->warden = fork();
    if (p->warden == 0)
        warden_run(life[0], p->pid);
    if (p->warden < 0) {
        p->warden = 0;
        rc = weft_error_set(err, WEFT_EIO, 0, 0, "subproc: fork: %s",
                            strerror(errno));
        kill_group(p, SIGKILL);
        while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto fail;
    }
    setpgid(p->warden, p->pid);
    /* The warden guards the group: the child may run. Should the worker
     * die before this byte, the child exits on EOF (or PDEATHSIG). */
    if (write(go[1], "g", 1) != 1) {
        rc = weft_error_set(err, WEFT_EIO, 0, 0, "subproc: pipe: %s",
                            strerror(errno));
        kill_group(p, SIGKILL);
        while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto fail;
    }
    close_fd(&go[0]);
    close_fd(&go[1]);
    close_fd(&in[0]);
    close_fd(&o[1]);
    close_fd(&e[1]);
    close_fd(&life[0]);
    p->life_fd = life[1];
    life[1] = -1;
    weft_free(envp);
    envp = NULL;

    if (watch_pid(p, p->pid, &p->pidfd, &p->exit_ev, on_exit_ev) != 0 ||
        watch_pid(p, p->warden, &p->wpidfd, &p->warden_ev, on_warden_ev) != 0 ||
        event_add(p->out_ev, NULL) != 0 || event_add(p->err_ev, NULL) != 0 ||
        (p->in_len > 0 && event_add(p->in_ev, NULL) != 0)) {
        /* The child runs but cannot be watched: stop it and wait (the
         * warden too, in subproc_free). */
        kill_group(p, SIGKILL);
        while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto oom;
    }
    if (p->in_len == 0)
        close_stdin(p); /* EOF at once */
    *out = p;
    return 0;
oom:
    rc = weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
fail:
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&o[0]);
    close_fd(&o[1]);
    close_fd(&e[0]);
    close_fd(&e[1]);
    close_fd(&life[0]);
    close_fd(&life[1]);
    close_fd(&go[0]);
    close_fd(&go[1]);
    weft_free(envp);
    if (p != NULL)
        subproc_free(p);
    return rc;
}

static void on_grace(evutil_socket_t fd, short what, void *ud)
{
    struct subproc *p = ud;
    (void)fd;
    (void)what;
    free_event(&p->grace_ev);
    if (!p->exited)
        kill_group(p, SIGKILL);
}

void subproc_kill(struct subproc *p, int sig, unsigned grace_ms)
{
    struct timeval tv;

    if (p == NULL || p->done)
        return;
    p->killed = true;
    if (p->exited)
        return; /* the group was killed when the child exited */
    kill_group(p, sig);
    if (grace_ms == 0 || sig == SIGKILL)
        return;
    free_event(&p->grace_ev);
    tv.tv_sec = (time_t)(grace_ms / 1000);
    tv.tv_usec = (suseconds_t)((grace_ms % 1000) * 1000);
    p->grace_ev = evtimer_new(p->base, on_grace, p);
    if (p->grace_ev == NULL || evtimer_add(p->grace_ev, &tv) != 0) {
        /* No timer: do not leave a child that ignores sig running. */
        free_event(&p->grace_ev);
        kill_group(p, SIGKILL);
    }
}

pid_t subproc_pid(const struct subproc *p)
{
    return p->pid;
}
