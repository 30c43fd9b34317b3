/* subproc.h - child processes on the worker's event loop.
 *
 * Persona steps run an external program; git steps run git. Both need the
 * same thing: start a process with an argv (never a shell), an added
 * environment, a working directory and some bytes on stdin; read stdout
 * and stderr as they come (so a chatty child never deadlocks on a full
 * pipe) up to a limit; learn how it exited; and kill its whole process
 * group on timeout or cancellation. Everything is non-blocking on the
 * libevent loop.
 *
 * A child may also be a function run in a forked process (child_fn) when
 * a step is a sequence of blocking calls (a git operation is several git
 * commands): its stdout is then the function's report.
 *
 * In every child, descriptors above 2 are closed before exec or
 * child_fn. The process must ignore SIGPIPE (weft's main.c does): stdin
 * is written to a child that may have stopped reading.
 */
#ifndef WEFT_WORKER_SUBPROC_H
#define WEFT_WORKER_SUBPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <event2/event.h>

#include "error.h"

/* Bytes of stderr kept: its tail is what an operator needs. */
#define SUBPROC_STDERR_TAIL 8192
/* stdout kept when subproc_opts.stdout_max is 0: a report, not a log.
 * The buffer grows as output comes, so the limit costs nothing unused. */
#define SUBPROC_STDOUT_MAX (4u * 1024 * 1024)

struct subproc;

/* Everything is read during subproc_start only (stdin_data is copied):
 * the caller may free it all once the call returns. */
struct subproc_opts {
    const char *const *argv;    /* NULL-terminated; argv[0] is run with
                                   execvp (PATH search); NULL when child_fn
                                   is set */
    int (*child_fn)(void *arg); /* run in the forked child (stdin, stdout,
                                   stderr are the pipes, cwd and env are
                                   set; it must not touch the parent's
                                   loop); its return & 0xff is the exit
                                   code */
    void *child_arg;
    const char *const *env; /* NULL-terminated "K=V" laid over the
                               worker's environment (a K already set
                               is replaced); may be NULL */
    const char *cwd;        /* working directory; NULL = inherit. One
                               that cannot be entered makes the child
                               exit 127 with the reason on stderr */
    const void *stdin_data; /* written to stdin, then closed; stdin is
                               closed at once when stdin_len is 0 */
    size_t stdin_len;
    size_t stdout_max; /* more stdout than this: truncated flag
                          set, reading stops, the group is
                          killed; 0 = SUBPROC_STDOUT_MAX */
};

struct subproc_result {
    int status; /* waitpid status (WIFEXITED, WEXITSTATUS...);
                   a program that could not be started exits
                   127 with the reason on stderr */
    char *out;  /* stdout, NUL-terminated; owned by subproc */
    size_t outlen;
    bool out_truncated; /* stdout passed stdout_max (or could not be
                           stored: out of memory); out holds the
                           first bytes */
    char *err;          /* last SUBPROC_STDERR_TAIL bytes of stderr */
    size_t errlen;
    bool killed; /* subproc_kill was called */
};

/* Called once, from the loop (never from inside subproc_start or
 * subproc_kill), when the child has exited and both pipes are closed. res
 * and its buffers are valid until the callback returns; the subproc is
 * freed after it. When the child exits, what is left of its process
 * group is killed, and its pipes are read for at most 2 s more (a
 * descendant that left the group may hold them). */
typedef void (*subproc_done_cb)(const struct subproc_result *res, void *ud);

/* Starts the child in its own process group (pgid = its pid). If the
 * worker dies, however it dies, the whole group is killed with SIGKILL
 * (the child and what it started in its group: a warden process, the
 * caller's child, in the group sees to it, subproc.c). 0 and *out (which stays
 * valid until done_cb returns), or a negative code with err filled and done_cb
 * never called: WEFT_EINVAL (no argv, an env entry without '='), WEFT_EIO
 * (pipe, fork), WEFT_ENOMEM. Runs on base's thread; any number of
 * subprocs on any number of bases may coexist (no signal handler). */
int subproc_start(struct event_base *base, const struct subproc_opts *opts,
                  subproc_done_cb done_cb, void *ud, struct subproc **out,
                  struct weft_error *err);

/* Sends sig to the child's process group and sets the result's killed
 * flag; when grace_ms > 0 and the child has not exited grace_ms after it,
 * SIGKILL follows. done_cb still runs. A call from inside done_cb is a
 * no-op; a second call re-arms the grace timer. */
void subproc_kill(struct subproc *p, int sig, unsigned grace_ms);

pid_t subproc_pid(const struct subproc *p);

#endif
