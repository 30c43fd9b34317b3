/* redis_fixture.h - a private redis-server for one integration test.
 *
 * Starts redis-server from PATH (a missing server is a failure, never a
 * skip) in a fresh directory under /tmp, listening on a unix socket in
 * that directory and on a free TCP port of 127.0.0.1, without persistence
 * (`--save "" --appendonly no`), with `--hz 100` so SIGTERM is quick, and
 * in the foreground as a child of the test. The server's log and output
 * go to files in the directory; they are printed to stderr when it fails
 * to start. The child gets SIGTERM if the test process dies.
 *
 * Blocking calls (fork, exec, waiting for PING); use them from test code,
 * not from inside a latency-sensitive callback.
 */
#ifndef WEFT_TESTS_INTEGRATION_REDIS_FIXTURE_H
#define WEFT_TESTS_INTEGRATION_REDIS_FIXTURE_H

#include <sys/types.h>

/* The directory is "/tmp/weft-redis-XXXXXX" and the socket "redis.sock"
 * in it; a unix socket path must stay under 108 bytes (sun_path). */
#define REDIS_FIXTURE_DIR_MAX  32
#define REDIS_FIXTURE_PATH_MAX (REDIS_FIXTURE_DIR_MAX + 16)

struct redis_fixture {
    pid_t pid; /* the running server; 0 when stopped */
    int port;  /* TCP port on 127.0.0.1, kept across restarts */
    char dir[REDIS_FIXTURE_DIR_MAX];       /* working dir: socket, log, data */
    char sock[REDIS_FIXTURE_PATH_MAX];     /* unix socket path */
    char url[REDIS_FIXTURE_PATH_MAX + 16]; /* "unix://<sock>" */
    char tcp_url[48];                      /* "redis://127.0.0.1:<port>" */
    char *extra_args; /* owned copy for restarts; NULL: none */
};

/* Starts a server. extra_args (nullable) are more redis-server options,
 * split on blanks, "double quotes" keep blanks and allow "" (an empty
 * argument); they come last, so they override the defaults (for example
 * "--appendonly yes" or "--requirepass secret"). Returns 0 once the
 * server answers on its socket, -1 (message on stderr, nothing left
 * behind) otherwise. A TCP port taken between choosing and binding is
 * retried with another port. */
int redis_fixture_start(struct redis_fixture *f, const char *extra_args);

/* SIGTERM, waits for the exit (SIGKILL after 10 s), removes the
 * directory. Safe on a stopped or zeroed fixture. */
void redis_fixture_stop(struct redis_fixture *f);

/* SIGKILL and wait, keeping the directory: a crash. */
void redis_fixture_kill(struct redis_fixture *f);

/* Stops the server if it runs (SIGTERM, keeping the directory and its
 * data) and starts it again with the same socket, port and options.
 * 0 or -1. */
int redis_fixture_restart(struct redis_fixture *f);

#endif
