/* redis_fixture.c - start, stop and restart a private redis-server.
 *
 * The only place tests spawn Redis. Readiness is awaited by polling for
 * the socket file and then PINGing it: there is no event to wait on for
 * another process's start-up, so a short sleep loop bounded by
 * FIXTURE_START_TIMEOUT_MS is the honest tool here.
 */
#include "redis_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <hiredis/hiredis.h>

/* Redis starts in about 45 ms; loading an AOF takes longer. */
#define FIXTURE_START_TIMEOUT_MS 5000
/* A SIGTERM'd server with --hz 100 exits in milliseconds. */
#define FIXTURE_STOP_TIMEOUT_MS 10000
/* Poll step while waiting for start-up or exit. */
#define FIXTURE_POLL_MS 5
/* Tries with a fresh port when another process took ours meanwhile. */
#define FIXTURE_PORT_TRIES 5
/* Options the fixture passes itself, plus room for extra_args. */
#define FIXTURE_ARGV_MAX 96
/* Exit status of the child when exec fails (shell convention). */
#define FIXTURE_EXEC_FAILED 127

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A port nobody listens on right now: bind port 0, read it back. */
static int pick_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* Splits s in place into argv (see redis_fixture.h). Returns the count or
 * -1 when there are too many or a quote is unterminated. */
static int split_args(char *s, char **argv, int max)
{
    int n = 0;
    char *r = s;

    while (*r != '\0') {
        char *w;
        while (*r == ' ' || *r == '\t' || *r == '\n')
            r++;
        if (*r == '\0')
            break;
        if (n == max)
            return -1;
        argv[n++] = w = r;
        while (*r != '\0' && *r != ' ' && *r != '\t' && *r != '\n') {
            if (*r == '"') {
                for (r++; *r != '"'; r++) {
                    if (*r == '\0')
                        return -1;
                    *w++ = *r;
                }
                r++;
            } else {
                *w++ = *r++;
            }
        }
        if (*r != '\0')
            r++;
        *w = '\0';
    }
    return n;
}

static void print_file(const char *dir, const char *name)
{
    char path[REDIS_FIXTURE_PATH_MAX + 32];
    char line[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "r");
    if (fp == NULL)
        return;
    fprintf(stderr, "redis_fixture: --- %s ---\n", path);
    while (fgets(line, sizeof(line), fp) != NULL)
        fputs(line, stderr);
    fclose(fp);
}

/* Forks redis-server for f->port. 0 or -1. */
static int spawn(struct redis_fixture *f)
{
    char port[16], logfile[REDIS_FIXTURE_PATH_MAX + 16];
    char outfile[REDIS_FIXTURE_PATH_MAX + 16];
    char *argv[FIXTURE_ARGV_MAX + 1];
    char *extra = NULL;
    int argc = 0, n;
    pid_t parent = getpid();
    pid_t pid;

    snprintf(port, sizeof(port), "%d", f->port);
    snprintf(logfile, sizeof(logfile), "%s/redis.log", f->dir);
    snprintf(outfile, sizeof(outfile), "%s/redis.out", f->dir);
    const char *fixed[] = {
        "redis-server",
        "--port",
        port,
        "--bind",
        "127.0.0.1",
        "--unixsocket",
        f->sock,
        "--unixsocketperm",
        "700",
        "--dir",
        f->dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--hz",
        "100",
        "--daemonize",
        "no",
        "--logfile",
        logfile,
        "--enable-debug-command",
        "local",
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        argv[argc++] = (char *)fixed[i];
    if (f->extra_args != NULL) {
        extra = strdup(f->extra_args);
        if (extra == NULL)
            return -1;
        n = split_args(extra, argv + argc, FIXTURE_ARGV_MAX - argc);
        if (n < 0) {
            fprintf(stderr, "redis_fixture: bad extra args: %s\n",
                    f->extra_args);
            free(extra);
            return -1;
        }
        argc += n;
    }
    argv[argc] = NULL;

    /* A stale socket file would make the readiness check connect to
     * nothing; Redis would replace it anyway. */
    unlink(f->sock);
    pid = fork();
    if (pid < 0) {
        perror("redis_fixture: fork");
        free(extra);
        return -1;
    }
    if (pid == 0) {
        int fd;
        /* Die with the test, even if it crashes. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 0);
            close(fd);
        }
        fd = open(outfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], argv);
        _exit(FIXTURE_EXEC_FAILED);
    }
    free(extra);
    f->pid = pid;
    return 0;
}

/* True when a PING on the socket gets an answer other than LOADING
 * (NOAUTH counts: the server is up and wants a password). */
static bool answers_ping(const char *sock)
{
    struct timeval tv = {0, 200000};
    redisContext *ctx = redisConnectUnixWithTimeout(sock, tv);
    redisReply *r;
    bool ok = false;

    if (ctx == NULL)
        return false;
    if (ctx->err == 0 && redisSetTimeout(ctx, tv) == REDIS_OK) {
        r = redisCommand(ctx, "PING");
        if (r != NULL) {
            ok = !(r->type == REDIS_REPLY_ERROR &&
                   strncmp(r->str, "LOADING", 7) == 0);
            freeReplyObject(r);
        }
    }
    redisFree(ctx);
    return ok;
}

/* Waits until the server answers. 0 when ready, 1 when it exited (maybe
 * the port was taken), -1 on time-out or exec failure. */
static int wait_ready(struct redis_fixture *f)
{
    long deadline = now_ms() + FIXTURE_START_TIMEOUT_MS;
    struct stat st;
    int status;

    for (;;) {
        pid_t w = waitpid(f->pid, &status, WNOHANG);
        if (w == f->pid) {
            f->pid = 0;
            if (WIFEXITED(status) &&
                WEXITSTATUS(status) == FIXTURE_EXEC_FAILED) {
                fprintf(stderr, "redis_fixture: cannot run redis-server: "
                                "is it installed and on PATH?\n");
                return -1;
            }
            return 1;
        }
        if (stat(f->sock, &st) == 0 && answers_ping(f->sock))
            return 0;
        if (now_ms() > deadline) {
            fprintf(stderr, "redis_fixture: no answer within %d ms\n",
                    FIXTURE_START_TIMEOUT_MS);
            return -1;
        }
        sleep_ms(FIXTURE_POLL_MS);
    }
}

/* SIGTERM (or sig) and wait; SIGKILL if it hangs. */
static void terminate(struct redis_fixture *f, int sig)
{
    long deadline = now_ms() + FIXTURE_STOP_TIMEOUT_MS;
    int status;

    if (f->pid <= 0)
        return;
    kill(f->pid, sig);
    for (;;) {
        pid_t w = waitpid(f->pid, &status, WNOHANG);
        if (w == f->pid || (w < 0 && errno != EINTR))
            break;
        if (now_ms() > deadline) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, &status, 0);
            break;
        }
        sleep_ms(FIXTURE_POLL_MS);
    }
    f->pid = 0;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;

    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            char sub[REDIS_FIXTURE_PATH_MAX + 256];
            struct stat st;
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(sub);
            else
                unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

/* Spawns and waits; on failure leaves the server stopped. */
static int start_once(struct redis_fixture *f)
{
    int rc;
    if (spawn(f) != 0)
        return -1;
    rc = wait_ready(f);
    if (rc != 0)
        terminate(f, SIGKILL);
    return rc;
}

int redis_fixture_start(struct redis_fixture *f, const char *extra_args)
{
    int rc = -1;

    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/weft-redis-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        perror("redis_fixture: mkdtemp");
        f->dir[0] = '\0';
        return -1;
    }
    snprintf(f->sock, sizeof(f->sock), "%s/redis.sock", f->dir);
    snprintf(f->url, sizeof(f->url), "unix://%s", f->sock);
    if (extra_args != NULL) {
        f->extra_args = strdup(extra_args);
        if (f->extra_args == NULL)
            goto fail;
    }
    for (int i = 0; i < FIXTURE_PORT_TRIES && rc != 0; i++) {
        f->port = pick_port();
        if (f->port <= 0)
            break;
        rc = start_once(f);
        if (rc < 0)
            break;
    }
    if (rc != 0)
        goto fail;
    snprintf(f->tcp_url, sizeof(f->tcp_url), "redis://127.0.0.1:%d", f->port);
    return 0;
fail:
    fprintf(stderr, "redis_fixture: redis-server did not start\n");
    print_file(f->dir, "redis.out");
    print_file(f->dir, "redis.log");
    redis_fixture_stop(f);
    return -1;
}

void redis_fixture_stop(struct redis_fixture *f)
{
    terminate(f, SIGTERM);
    if (f->dir[0] != '\0')
        remove_tree(f->dir);
    f->dir[0] = '\0';
    free(f->extra_args);
    f->extra_args = NULL;
}

void redis_fixture_kill(struct redis_fixture *f)
{
    terminate(f, SIGKILL);
}

int redis_fixture_restart(struct redis_fixture *f)
{
    terminate(f, SIGTERM);
    if (start_once(f) != 0) {
        fprintf(stderr, "redis_fixture: restart on port %d failed\n", f->port);
        print_file(f->dir, "redis.out");
        print_file(f->dir, "redis.log");
        return -1;
    }
    return 0;
}
