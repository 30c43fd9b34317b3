/* proc.c - the child processes of `weft run`: start them with their
 * output in log files, notice when they die, stop them in order, and
 * clean up the temporary directory.
 *
 * Children start with fork + execv (an argv vector, never a shell). Each
 * gets its own process group so a terminal's Ctrl-C reaches only `weft`,
 * which then stops them itself, and PR_SET_PDEATHSIG so that even a
 * `kill -9` of `weft` leaves nothing running.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Exit status of a child whose exec failed (the shell's convention). */
#define PROC_EXEC_FAILED 127
/* Descriptors closed in a child before exec: far more than weft opens. */
#define PROC_CLOSE_FDS 1024
/* The temp dir holds files and one level of subdirectories (logs/). */
#define PROC_RM_DEPTH 4

int proc_start(struct proc *p, const char *name, const char *const argv[],
               const char *log)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->log, sizeof(p->log), "%s", log);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        cli_error("%s: %s", log, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        cli_error("cannot start %s: %s", name, strerror(errno));
        close(fd);
        return CLI_EXIT_FAIL;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(PROC_EXEC_FAILED);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &sa, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        /* Whatever else we hold open (a caller's pipes) must not keep
         * the child's reader waiting. */
        for (int i = 3; i < PROC_CLOSE_FDS; i++)
            close(i);
        execv(argv[0], (char *const *)argv);
        _exit(PROC_EXEC_FAILED);
    }
    close(fd);
    /* Also from the parent, so a signal sent to the group right away
     * cannot miss the child. */
    setpgid(pid, pid);
    p->pid = pid;
    return CLI_EXIT_OK;
}

bool proc_exited(struct proc *p)
{
    if (p->pid <= 0)
        return true;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->status = r == p->pid ? st : 0;
        p->pid = 0;
        return true;
    }
    return false;
}

void proc_stop_all(struct proc *ps, size_t n, int timeout_ms)
{
    for (size_t i = 0; i < n; i++) {
        if (ps[i].pid > 0)
            kill(ps[i].pid, SIGTERM);
    }
    int64_t until = cli_mono_ms() + timeout_ms;
    for (;;) {
        bool alive = false;
        for (size_t i = 0; i < n; i++) {
            if (!proc_exited(&ps[i]))
                alive = true;
        }
        if (!alive || cli_mono_ms() >= until)
            break;
        cli_sleep_ms(10);
    }
    for (size_t i = 0; i < n; i++) {
        if (ps[i].pid <= 0)
            continue;
        kill(-ps[i].pid, SIGKILL);
        kill(ps[i].pid, SIGKILL);
        int st;
        while (waitpid(ps[i].pid, &st, 0) < 0 && errno == EINTR)
            ;
        ps[i].status = st;
        ps[i].pid = 0;
    }
}

void proc_stop(struct proc *p, int timeout_ms)
{
    proc_stop_all(p, 1, timeout_ms);
}

void proc_describe(const struct proc *p, char *out, size_t size)
{
    if (WIFEXITED(p->status))
        snprintf(out, size, "exit status %d", WEXITSTATUS(p->status));
    else if (WIFSIGNALED(p->status))
        snprintf(out, size, "killed by signal %d", WTERMSIG(p->status));
    else
        snprintf(out, size, "stopped");
}

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           access(path, X_OK) == 0;
}

bool proc_find_binary(const char *name, const char *subdir, char *out,
                      size_t size)
{
    char self[CLI_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            /* Installed side by side, then the build tree's layout
             * (build/cli/weft, build/scheduler/weft-scheduler). */
            int w = snprintf(out, size, "%s/%s", self, name);
            if (w > 0 && (size_t)w < size && executable(out))
                return true;
            w = snprintf(out, size, "%s/../%s/%s", self, subdir, name);
            if (w > 0 && (size_t)w < size && executable(out))
                return true;
        }
    }
    const char *path = getenv("PATH");
    while (path != NULL && *path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        int w =
            snprintf(out, size, "%.*s/%s", (int)len, len ? path : ".", name);
        if (len == 0)
            w = snprintf(out, size, "./%s", name);
        if (w > 0 && (size_t)w < size && executable(out))
            return true;
        path = colon ? colon + 1 : NULL;
    }
    return false;
}

static void rm_tree(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[CLI_PATH_MAX];
            int w = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            if (w < 0 || (size_t)w >= sizeof(path))
                continue;
            struct stat st;
            if (lstat(path, &st) != 0)
                continue;
            if (S_ISDIR(st.st_mode) && depth > 0)
                rm_tree(path, depth - 1);
            else
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

void proc_rm_tree(const char *dir)
{
    rm_tree(dir, PROC_RM_DEPTH);
}
