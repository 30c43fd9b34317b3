/* procs.c - spawning weft processes for integration tests. */
#include "procs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef WEFT_BINARY_DIR
#define WEFT_BINARY_DIR "."
#endif

const char *procs_binary(const char *rel, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", WEFT_BINARY_DIR, rel);
    return out;
}

static void child_setup(const char *const env[], const char *log)
{
    /* Die with the test rather than linger. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (eq == NULL)
            continue;
        char name[256];
        size_t n = (size_t)(eq - env[i]);
        if (n >= sizeof(name))
            continue;
        memcpy(name, env[i], n);
        name[n] = '\0';
        setenv(name, eq + 1, 1);
    }
    if (log) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
    }
}

pid_t procs_spawn(const char *const argv[], const char *const env[],
                  const char *log)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    child_setup(env, log);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

int procs_stop(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    for (int waited = 0;; waited += 10) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return status;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void drain(int fd, char **buf, size_t *len, size_t *cap)
{
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0)
        return;
    if (*len + (size_t)n + 1 > *cap) {
        *cap = (*len + (size_t)n + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, tmp, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
}

int procs_run(const char *const argv[], const char *const env[], char **out,
              char **err)
{
    int po[2], pe[2];
    if (pipe(po) || pipe(pe))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        child_setup(env, NULL);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    char *ob = calloc(1, 1), *eb = calloc(1, 1);
    size_t ol = 0, oc = 1, el = 0, ec = 1;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
                continue;
            size_t before = i == 0 ? ol : el;
            if (i == 0)
                drain(fds[i].fd, &ob, &ol, &oc);
            else
                drain(fds[i].fd, &eb, &el, &ec);
            if ((i == 0 ? ol : el) == before) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    int status;
    waitpid(pid, &status, 0);
    if (out)
        *out = ob;
    else
        free(ob);
    if (err)
        *err = eb;
    else
        free(eb);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool procs_read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return true;
}

bool procs_alive(pid_t pid, long long *start_ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!procs_read_file(path, buf, sizeof(buf)))
        return false;
    /* The name, in parentheses, may hold anything: fields follow the
     * last ')'. The state is field 3, the start time field 22. */
    const char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0' || p[2] == 'Z' ||
        p[2] == 'X' || p[2] == 'x')
        return false;
    if (start_ticks != NULL) {
        p += 2;
        for (int i = 0; i < 19 && p != NULL; i++) {
            p = strchr(p, ' ');
            if (p != NULL)
                p++;
        }
        *start_ticks = p != NULL ? strtoll(p, NULL, 10) : -1;
    }
    return true;
}

bool procs_gone(pid_t pid, int timeout_ms)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (!procs_alive(pid, NULL))
            return true;
        nanosleep(&ts, NULL);
    }
    return false;
}

bool procs_wait_file(const char *path, int timeout_ms)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    struct stat st;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (stat(path, &st) == 0 && st.st_size > 0)
            return true;
        nanosleep(&ts, NULL);
    }
    return false;
}

int procs_read_pids(const char *path, pid_t *out, int n)
{
    char line[256], *p = line, *end;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    if (!got)
        return -1;
    int i = 0;
    for (; i < n; i++, p = end) {
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        out[i] = (pid_t)v;
    }
    return i;
}
