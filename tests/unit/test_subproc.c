/* test_subproc.c - child processes on the loop (worker/subproc.h): pipes,
 * limits, exit status, process-group kills, child_fn mode, coexistence
 * of several children and loops. Real processes throughout. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "alloc.h"
#include "procs.h"
#include "subproc.h"

/* What a test keeps of a result (the subproc's buffers die with it). */
struct got {
    bool done;
    int calls;
    int status;
    char *out;
    size_t outlen;
    bool truncated;
    char *err;
    size_t errlen;
    bool killed;
};

static void on_done(const struct subproc_result *r, void *ud)
{
    struct got *g = ud;
    g->calls++;
    g->done = true;
    g->status = r->status;
    g->out = weft_strndup(r->out, r->outlen);
    g->outlen = r->outlen;
    g->truncated = r->out_truncated;
    g->err = weft_strndup(r->err, r->errlen);
    g->errlen = r->errlen;
    g->killed = r->killed;
    cr_assert_eq(r->out[r->outlen], '\0', "out is NUL-terminated");
    cr_assert_eq(r->err[r->errlen], '\0', "err is NUL-terminated");
}

static void got_free(struct got *g)
{
    weft_free(g->out);
    weft_free(g->err);
}

static void setup(void)
{
    weft_alloc_init();
    signal(SIGPIPE, SIG_IGN); /* as weft-worker's main does */
}

static void on_tick(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    (void)ud;
}

/* Runs the loop until g is done (or 30 s, a hang: the tick makes sure
 * the loop wakes up to notice). */
static void run_until(struct event_base *base, struct got *g)
{
    time_t until = time(NULL) + 30;
    struct timeval tv = {0, 100 * 1000};
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    event_add(tick, &tv);
    while (!g->done && time(NULL) < until)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    cr_assert(g->done, "child finished");
}

static struct subproc *start(struct event_base *base,
                             const struct subproc_opts *o, struct got *g)
{
    struct subproc *p = NULL;
    struct weft_error err;
    memset(g, 0, sizeof(*g));
    int rc = subproc_start(base, o, on_done, g, &p, &err);
    cr_assert_eq(rc, 0, "start: %s", err.msg);
    cr_assert_not_null(p);
    return p;
}

static void run(const struct subproc_opts *o, struct got *g)
{
    struct event_base *base = event_base_new();
    start(base, o, g);
    run_until(base, g);
    event_base_free(base);
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n - 1; /* the DIR's own */
}

static pid_t read_pid(const char *path)
{
    pid_t pid = 0;
    cr_assert_eq(procs_read_pids(path, &pid, 1), 1, "pid file %s", path);
    return pid;
}

Test(subproc, captures_stdout_stderr_and_exit_code, .init = setup)
{
    const char *argv[] = {"sh", "-c", "printf out; printf err >&2; exit 3",
                          NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    run(&o, &g);
    cr_assert_eq(g.calls, 1);
    cr_assert(WIFEXITED(g.status));
    cr_assert_eq(WEXITSTATUS(g.status), 3);
    cr_assert_str_eq(g.out, "out");
    cr_assert_str_eq(g.err, "err");
    cr_assert_not(g.truncated);
    cr_assert_not(g.killed);
    got_free(&g);
}

Test(subproc, writes_stdin_then_closes_it, .init = setup)
{
    const char *argv[] = {"cat", NULL};
    struct subproc_opts o = {
        .argv = argv, .stdin_data = "hello\n", .stdin_len = 6};
    struct got g;
    run(&o, &g);
    cr_assert_str_eq(g.out, "hello\n");
    cr_assert_eq(WEXITSTATUS(g.status), 0);
    got_free(&g);
}

Test(subproc, empty_stdin_is_eof_at_once, .init = setup)
{
    const char *argv[] = {"cat", NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    run(&o, &g);
    cr_assert_eq(g.outlen, 0);
    cr_assert_eq(WEXITSTATUS(g.status), 0);
    got_free(&g);
}

/* Several MiB each way through cat: both pipes fill up unless stdin is
 * written and stdout read as they make room. */
Test(subproc, large_stdin_and_stdout_do_not_deadlock, .init = setup)
{
    size_t n = 3u * 1024 * 1024;
    char *in = weft_malloc(n);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    const char *argv[] = {"cat", NULL};
    struct subproc_opts o = {
        .argv = argv, .stdin_data = in, .stdin_len = n, .stdout_max = n};
    struct got g;
    run(&o, &g);
    cr_assert_eq(g.outlen, n);
    cr_assert_not(g.truncated);
    cr_assert_eq(memcmp(g.out, in, n), 0);
    weft_free(in);
    got_free(&g);
}

Test(subproc, stdout_at_the_limit_is_kept_whole, .init = setup)
{
    const char *argv[] = {"printf", "0123456789", NULL};
    struct subproc_opts o = {.argv = argv, .stdout_max = 10};
    struct got g;
    run(&o, &g);
    cr_assert_not(g.truncated);
    cr_assert_str_eq(g.out, "0123456789");
    cr_assert_eq(WEXITSTATUS(g.status), 0);
    got_free(&g);
}

Test(subproc, stdout_one_past_the_limit_is_truncated, .init = setup)
{
    /* sleep: the child is still alive when the overflow is seen, so the
     * kill is what ends it. */
    const char *argv[] = {"sh", "-c", "printf 0123456789X; exec sleep 30",
                          NULL};
    struct subproc_opts o = {.argv = argv, .stdout_max = 10};
    struct got g;
    run(&o, &g);
    cr_assert(g.truncated);
    cr_assert_eq(g.outlen, 10);
    cr_assert_str_eq(g.out, "0123456789");
    cr_assert(WIFSIGNALED(g.status));
    cr_assert_eq(WTERMSIG(g.status), SIGKILL);
    got_free(&g);
}

Test(subproc, endless_stdout_is_cut_at_the_limit, .init = setup)
{
    const char *argv[] = {"yes", NULL};
    struct subproc_opts o = {.argv = argv, .stdout_max = 1000000};
    struct got g;
    run(&o, &g);
    cr_assert(g.truncated);
    cr_assert_eq(g.outlen, 1000000);
    cr_assert(WIFSIGNALED(g.status));
    got_free(&g);
}

Test(subproc, default_stdout_limit_applies, .init = setup)
{
    const char *argv[] = {"yes", NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    run(&o, &g);
    cr_assert(g.truncated);
    cr_assert_eq(g.outlen, SUBPROC_STDOUT_MAX);
    got_free(&g);
}

Test(subproc, stderr_keeps_its_tail, .init = setup)
{
    /* 20000 bytes of stderr ending in a marker. */
    const char *argv[] = {
        "sh", "-c",
        "i=0; while [ $i -lt 2000 ]; do printf 123456789_ >&2; "
        "i=$((i+1)); done; printf END >&2",
        NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    run(&o, &g);
    cr_assert_eq(g.errlen, SUBPROC_STDERR_TAIL);
    cr_assert_eq(memcmp(g.err + g.errlen - 3, "END", 3), 0);
    /* 8192 = 3 + 8189: the tail starts 8189 bytes before the end of the
     * 20000 bytes of "123456789_", i.e. at offset 11811 % 10 = 1. */
    cr_assert_eq(g.err[0], '2');
    got_free(&g);
}

Test(subproc, stderr_at_the_tail_size_is_whole, .init = setup)
{
    char script[64];
    snprintf(script, sizeof(script), "head -c %d /dev/zero | tr '\\0' x >&2",
             SUBPROC_STDERR_TAIL);
    const char *argv[] = {"sh", "-c", script, NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    run(&o, &g);
    cr_assert_eq(g.errlen, SUBPROC_STDERR_TAIL);
    cr_assert_eq(g.err[0], 'x');
    got_free(&g);
}

Test(subproc, env_is_added_and_overrides, .init = setup)
{
    setenv("WEFT_SUBPROC_KEEP", "kept", 1);
    setenv("WEFT_SUBPROC_OVER", "old", 1);
    const char *argv[] = {"sh", "-c",
                          "printf '%s,%s,%s' \"$WEFT_SUBPROC_KEEP\" "
                          "\"$WEFT_SUBPROC_OVER\" \"$WEFT_SUBPROC_NEW\"",
                          NULL};
    const char *env[] = {"WEFT_SUBPROC_OVER=new", "WEFT_SUBPROC_NEW=a=b", NULL};
    struct subproc_opts o = {.argv = argv, .env = env};
    struct got g;
    run(&o, &g);
    cr_assert_str_eq(g.out, "kept,new,a=b");
    got_free(&g);
}

Test(subproc, env_entry_without_equals_is_rejected, .init = setup)
{
    const char *argv[] = {"true", NULL};
    const char *env[] = {"NOEQUALS", NULL};
    struct subproc_opts o = {.argv = argv, .env = env};
    struct event_base *base = event_base_new();
    struct subproc *p = NULL;
    struct weft_error err;
    struct got g = {0};
    cr_assert_eq(subproc_start(base, &o, on_done, &g, &p, &err), WEFT_EINVAL);
    cr_assert_null(p);
    cr_assert_not_null(strstr(err.msg, "NOEQUALS"));
    event_base_free(base);
}

Test(subproc, missing_program_or_argv_is_invalid, .init = setup)
{
    struct subproc_opts o = {0};
    struct event_base *base = event_base_new();
    struct subproc *p = NULL;
    struct weft_error err;
    struct got g = {0};
    cr_assert_eq(subproc_start(base, &o, on_done, &g, &p, &err), WEFT_EINVAL);
    const char *argv[] = {NULL};
    o.argv = argv;
    cr_assert_eq(subproc_start(base, &o, on_done, &g, &p, &err), WEFT_EINVAL);
    event_base_free(base);
}

Test(subproc, runs_in_cwd, .init = setup)
{
    const char *argv[] = {"pwd", NULL};
    struct subproc_opts o = {.argv = argv, .cwd = "/tmp"};
    struct got g;
    run(&o, &g);
    cr_assert_str_eq(g.out, "/tmp\n");
    got_free(&g);
}

Test(subproc, bad_cwd_exits_127_with_reason, .init = setup)
{
    const char *argv[] = {"pwd", NULL};
    struct subproc_opts o = {.argv = argv, .cwd = "/nonexistent/weft"};
    struct got g;
    run(&o, &g);
    cr_assert_eq(WEXITSTATUS(g.status), 127);
    cr_assert_not_null(strstr(g.err, "/nonexistent/weft"), "%s", g.err);
    got_free(&g);
}

Test(subproc, missing_program_exits_127_with_reason, .init = setup)
{
    const char *argv[] = {"weft-no-such-program", NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    run(&o, &g);
    cr_assert(WIFEXITED(g.status));
    cr_assert_eq(WEXITSTATUS(g.status), 127);
    cr_assert_not_null(strstr(g.err, "weft-no-such-program"), "%s", g.err);
    got_free(&g);
}

Test(subproc, runs_in_its_own_process_group, .init = setup)
{
    const char *argv[] = {"sh", "-c", "ps -o pgid= -p $$", NULL};
    struct subproc_opts o = {.argv = argv};
    struct event_base *base = event_base_new();
    struct got g;
    struct subproc *p = start(base, &o, &g);
    pid_t pid = subproc_pid(p);
    run_until(base, &g);
    cr_assert_eq(strtol(g.out, NULL, 10), (long)pid, "%s", g.out);
    cr_assert_neq(pid, getpgrp());
    got_free(&g);
    event_base_free(base);
}

Test(subproc, child_sees_only_stdio_descriptors, .init = setup)
{
    /* Held open by the test without O_CLOEXEC: must not leak. */
    int fd = open("/dev/null", O_RDONLY);
    cr_assert_geq(fd, 3);
    const char *argv[] = {"ls", "/proc/self/fd", NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    run(&o, &g);
    /* ls' own directory handle is the only other one. */
    cr_assert_str_eq(g.out, "0\n1\n2\n3\n", "%s", g.out);
    close(fd);
    got_free(&g);
}

Test(subproc, no_descriptor_leaks_in_the_parent, .init = setup)
{
    struct event_base *base = event_base_new();
    int before = open_fds();
    for (int i = 0; i < 20; i++) {
        const char *argv[] = {"cat", NULL};
        struct subproc_opts o = {
            .argv = argv, .stdin_data = "x", .stdin_len = 1};
        struct got g;
        start(base, &o, &g);
        run_until(base, &g);
        got_free(&g);
    }
    cr_assert_eq(open_fds(), before);
    event_base_free(base);
}

Test(subproc, kill_signals_the_group, .init = setup)
{
    char pidfile[] = "/tmp/weft-subproc-XXXXXX";
    int fd = mkstemp(pidfile);
    close(fd);
    char script[256];
    snprintf(script, sizeof(script),
             "sleep 100 & echo $! > %s; printf ready; wait", pidfile);
    const char *argv[] = {"sh", "-c", script, NULL};
    struct subproc_opts o = {.argv = argv};
    struct event_base *base = event_base_new();
    struct got g;
    struct subproc *p = start(base, &o, &g);
    /* Wait until the grandchild exists. */
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 500; i++) {
        struct stat st;
        if (stat(pidfile, &st) == 0 && st.st_size > 0)
            break;
        event_base_loop(base, EVLOOP_NONBLOCK);
        nanosleep(&ts, NULL);
    }
    pid_t grandchild = read_pid(pidfile);
    subproc_kill(p, SIGTERM, 0);
    run_until(base, &g);
    cr_assert(g.killed);
    cr_assert(WIFSIGNALED(g.status));
    cr_assert_eq(WTERMSIG(g.status), SIGTERM);
    cr_assert(procs_gone(grandchild, 5000), "grandchild %d still alive",
              (int)grandchild);
    unlink(pidfile);
    got_free(&g);
    event_base_free(base);
}

Test(subproc, sigkill_follows_an_ignored_sigterm, .init = setup)
{
    const char *argv[] = {"sh", "-c",
                          "trap '' TERM; printf ready; "
                          "while :; do sleep 1; done",
                          NULL};
    struct subproc_opts o = {.argv = argv};
    struct event_base *base = event_base_new();
    struct got g;
    struct subproc *p = start(base, &o, &g);
    /* Let the trap be set before the signal comes. */
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    subproc_kill(p, SIGTERM, 300);
    run_until(base, &g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms =
        (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_assert(g.killed);
    cr_assert(WIFSIGNALED(g.status));
    cr_assert_eq(WTERMSIG(g.status), SIGKILL);
    cr_assert_geq(ms, 250, "SIGKILL came after the grace (%ld ms)", ms);
    got_free(&g);
    event_base_free(base);
}

Test(subproc, group_leftovers_die_with_the_child, .init = setup)
{
    /* The background sleep holds stdout: done only comes once the
     * leftover is killed, and it comes at once. */
    const char *argv[] = {"sh", "-c", "sleep 100 & echo $!", NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run(&o, &g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pid_t left = (pid_t)strtol(g.out, NULL, 10);
    cr_assert_gt(left, 0);
    cr_assert(procs_gone(left, 5000));
    cr_assert_eq(WEXITSTATUS(g.status), 0);
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 2);
    got_free(&g);
}

Test(subproc, warden_stands_in_the_group_while_the_child_runs, .init = setup)
{
    const char *argv[] = {
        "sh", "-c", "ps -eo pgid=,comm= | awk -v g=$$ '$1 == g {print $2}'",
        NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    run(&o, &g);
    cr_assert_not_null(strstr(g.out, "weft-warden\n"), "%s", g.out);
    got_free(&g);
}

/* The warden is the caller's child, reaped before done_cb: nothing is
 * left for PID 1 to reap (in a container, PID 1 is the worker). */
Test(subproc, leaves_no_child_unreaped, .init = setup)
{
    const char *argv[] = {"sh", "-c", "sleep 100 & echo started", NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    run(&o, &g);
    cr_assert_str_eq(g.out, "started\n");
    errno = 0;
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a child was left");
    cr_assert_eq(errno, ECHILD);
    got_free(&g);
}

/* A child that waits for all its children (a shell's `wait`) is not held
 * by the warden: it is not the child's child. */
Test(subproc, warden_is_not_a_child_of_the_child, .init = setup)
{
    const char *argv[] = {"sh", "-c", "sleep 0.1 & wait; echo done", NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run(&o, &g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_str_eq(g.out, "done\n");
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 5);
    got_free(&g);
}

/* A parent killed with SIGKILL runs no code: the warden ends the group,
 * grandchildren too (PR_SET_PDEATHSIG reaches the child only). */
Test(subproc, group_dies_with_a_parent_killed_by_sigkill, .init = setup)
{
    char pidfile[] = "/tmp/weft-subproc-XXXXXX";
    int fd = mkstemp(pidfile);
    close(fd);
    char script[256];
    /* The child ignores SIGTERM, and so does what it starts. */
    snprintf(script, sizeof(script),
             "trap '' TERM; sleep 100 & echo $$ $! > %s.tmp; "
             "mv %s.tmp %s; wait",
             pidfile, pidfile, pidfile);
    pid_t parent = fork();
    cr_assert_geq(parent, 0);
    if (parent == 0) {
        /* The parent (a worker): starts the child, then only loops. */
        const char *argv[] = {"sh", "-c", script, NULL};
        struct subproc_opts o = {.argv = argv};
        struct event_base *base = event_base_new();
        struct subproc *p = NULL;
        struct got g;
        if (base == NULL || subproc_start(base, &o, on_done, &g, &p, NULL) != 0)
            _exit(1);
        event_base_dispatch(base);
        _exit(2);
    }
    /* mkstemp left it empty; the rename fills it whole. */
    cr_assert(procs_wait_file(pidfile, 10000), "%s was not written", pidfile);
    pid_t pids[2];
    cr_assert_eq(procs_read_pids(pidfile, pids, 2), 2, "pid file %s", pidfile);
    long child = pids[0], grandchild = pids[1];
    cr_assert_gt(child, 0);
    cr_assert_gt(grandchild, 0);
    kill(parent, SIGKILL);
    int wst;
    cr_assert_eq(waitpid(parent, &wst, 0), parent);
    cr_assert(WIFSIGNALED(wst));
    cr_assert(procs_gone((pid_t)child, 5000), "child %ld survived", child);
    cr_assert(procs_gone((pid_t)grandchild, 5000), "grandchild %ld survived",
              grandchild);
    unlink(pidfile);
}

Test(subproc, escaped_descendant_cannot_hold_the_result, .init = setup)
{
    /* setsid leaves the group; it keeps stdout open for 100 s. The
     * result still comes after the linger. */
    char pidfile[] = "/tmp/weft-subproc-XXXXXX";
    int fd = mkstemp(pidfile);
    close(fd);
    char script[512];
    snprintf(script, sizeof(script),
             "setsid sh -c 'echo $$ > %s; exec sleep 100' & "
             "while [ ! -s %s ]; do sleep 0.01; done; printf x",
             pidfile, pidfile);
    const char *argv[] = {"sh", "-c", script, NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    run(&o, &g);
    cr_assert_str_eq(g.out, "x");
    pid_t escaped = read_pid(pidfile);
    kill(escaped, SIGKILL);
    unlink(pidfile);
    got_free(&g);
}

static int child_report(void *arg)
{
    const char *word = arg;
    char cwd[256];
    printf("%s %s %s", word, getenv("WEFT_SUBPROC_FN"),
           getcwd(cwd, sizeof(cwd)));
    fprintf(stderr, "to stderr");
    return 7;
}

Test(subproc, child_fn_reports_through_stdout, .init = setup)
{
    const char *env[] = {"WEFT_SUBPROC_FN=on", NULL};
    struct subproc_opts o = {.child_fn = child_report,
                             .child_arg = (void *)"word",
                             .env = env,
                             .cwd = "/tmp"};
    struct got g;
    run(&o, &g);
    cr_assert_str_eq(g.out, "word on /tmp");
    cr_assert_str_eq(g.err, "to stderr");
    cr_assert_eq(WEXITSTATUS(g.status), 7);
    got_free(&g);
}

static int child_read_stdin(void *arg)
{
    char buf[64];
    size_t n = fread(buf, 1, sizeof(buf), stdin);
    (void)arg;
    fwrite(buf, 1, n, stdout);
    return 0;
}

Test(subproc, child_fn_reads_stdin, .init = setup)
{
    struct subproc_opts o = {
        .child_fn = child_read_stdin, .stdin_data = "request", .stdin_len = 7};
    struct got g;
    run(&o, &g);
    cr_assert_str_eq(g.out, "request");
    got_free(&g);
}

/* Two loops in one process, three children on each, finishing in an
 * order unrelated to their start: every child's exit reaches its own
 * loop and callback. */
Test(subproc, many_children_on_several_loops, .init = setup)
{
    struct event_base *b[2] = {event_base_new(), event_base_new()};
    struct got g[6];
    const char *delays[6] = {"0.3", "0", "0.1", "0.2", "0", "0.1"};
    char scripts[6][64];
    for (int i = 0; i < 6; i++) {
        snprintf(scripts[i], sizeof(scripts[i]), "sleep %s; printf %d",
                 delays[i], i);
        const char *argv[] = {"sh", "-c", scripts[i], NULL};
        struct subproc_opts o = {.argv = argv};
        start(b[i % 2], &o, &g[i]);
    }
    time_t until = time(NULL) + 30;
    for (;;) {
        bool all = true;
        for (int i = 0; i < 6; i++)
            all = all && g[i].done;
        if (all || time(NULL) > until)
            break;
        event_base_loop(b[0], EVLOOP_NONBLOCK);
        event_base_loop(b[1], EVLOOP_NONBLOCK);
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 6; i++) {
        char want[4];
        snprintf(want, sizeof(want), "%d", i);
        cr_assert(g[i].done, "child %d", i);
        cr_assert_eq(g[i].calls, 1);
        cr_assert_str_eq(g[i].out, want);
        got_free(&g[i]);
    }
    event_base_free(b[0]);
    event_base_free(b[1]);
}

/* A child reaped by someone else (here: SIGCHLD ignored, so the kernel
 * reaps it) still completes; its status is reported as killed. */
Test(subproc, child_reaped_elsewhere_still_completes, .init = setup)
{
    signal(SIGCHLD, SIG_IGN);
    const char *argv[] = {"true", NULL};
    struct subproc_opts o = {.argv = argv};
    struct got g;
    run(&o, &g);
    cr_assert_eq(g.calls, 1);
    signal(SIGCHLD, SIG_DFL);
    got_free(&g);
}

static int child_sleep(void *arg)
{
    (void)arg;
    sleep(3);
    return 0;
}

/* A child_fn child is a copy of the worker: it must not keep a sibling's
 * stdin pipe open, or the sibling never sees EOF. */
Test(subproc, child_fn_does_not_hold_sibling_pipes, .init = setup)
{
    struct event_base *base = event_base_new();
    const char *argv[] = {"cat", NULL};
    struct subproc_opts a = {.argv = argv, .stdin_data = "x", .stdin_len = 1};
    struct subproc_opts b = {.child_fn = child_sleep};
    struct got ga, gb;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    start(base, &a, &ga);
    start(base, &b, &gb);
    run_until(base, &ga);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_str_eq(ga.out, "x");
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 2, "cat waited for its sibling");
    run_until(base, &gb);
    got_free(&ga);
    got_free(&gb);
    event_base_free(base);
}
