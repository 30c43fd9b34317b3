/* procs.h - weft processes under test: spawn the real binaries with an
 * environment, stop them, wait for them.
 *
 * Each child's stdout and stderr go to a log file so a failing test can
 * show what the process said. Children get SIGTERM if the test dies.
 */
#ifndef WEFT_TESTS_INTEGRATION_PROCS_H
#define WEFT_TESTS_INTEGRATION_PROCS_H

#include <sys/types.h>

/* Path of a built binary: WEFT_BINARY_DIR "/" rel (static buffer per
 * call site is not used: writes into out of size n). */
const char *procs_binary(const char *rel, char *out, size_t n);

/* Starts argv[0] with argv, the current environment plus env (NULL-ended
 * "K=V" strings, may be NULL), stdout+stderr appended to log (NULL:
 * inherit). Returns the pid, or -1. */
pid_t procs_spawn(const char *const argv[], const char *const env[],
                  const char *log);

/* Sends sig and waits up to timeout_ms for the exit, then SIGKILLs.
 * Returns the wait status (as waitpid), or -1. */
int procs_stop(pid_t pid, int sig, int timeout_ms);

/* Runs argv to completion capturing stdout into *out (malloc'd, NUL-ended;
 * may be NULL to discard) and stderr into *err (likewise). Returns the
 * exit code, or -1 when it could not run or was killed by a signal. */
int procs_run(const char *const argv[], const char *const env[], char **out,
              char **err);

#endif
