/* procs.h - weft processes under test: spawn the real binaries with an
 * environment, stop them, wait for them.
 *
 * Each child's stdout and stderr go to a log file so a failing test can
 * show what the process said. Children get SIGTERM if the test dies.
 */
#ifndef WEFT_TESTS_INTEGRATION_PROCS_H
#define WEFT_TESTS_INTEGRATION_PROCS_H

#include <stdbool.h>
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

/* Reads the start of path, up to size - 1 bytes, into buf and ends it
 * with a NUL. False when path cannot be opened. */
bool procs_read_file(const char *path, char *buf, size_t size);

/* True while pid exists and is neither a zombie nor dead; then
 * *start_ticks (may be NULL) gets its start time (field 22 of
 * /proc/pid/stat), which tells a reused pid from the original. */
bool procs_alive(pid_t pid, long long *start_ticks);

/* Waits up to timeout_ms for pid to stop being alive. For processes that
 * are not our children: whoever reaps orphans here may take a moment. */
bool procs_gone(pid_t pid, int timeout_ms);

/* Waits up to timeout_ms for path to exist and not be empty (another
 * process writes it, best with a rename so it appears whole). */
bool procs_wait_file(const char *path, int timeout_ms);

/* Reads up to n pids, separated by blanks, from the first line of path
 * into out. Returns how many it read, or -1 when path cannot be read. */
int procs_read_pids(const char *path, pid_t *out, int n);

#endif
