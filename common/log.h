/* log.h - JSON-lines logging on stdout.
 *
 * One line per event: {"ts": "...", "level": "info", "proc": "...",
 * "msg": "...", ...fields}. Fields are passed as key/value string pairs
 * ending with NULL, so call sites read like
 *   log_info("step dispatched", "run", run, "step", step, NULL);
 * Level from --log-level or WEFT_LOG_LEVEL (debug, info, warn, error).
 */
#ifndef WEFT_COMMON_LOG_H
#define WEFT_COMMON_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the process name shown in every line and the minimum level.
 * Returns WEFT_EINVAL for an unknown level name (level unchanged). */
void log_init(const char *proc);
int log_set_level(const char *name);

/* Writes one line if level is enabled. The variadic part is pairs of
 * const char * (key, value) ending with NULL; a NULL value is written
 * as JSON null. */
void log_write(enum log_level level, const char *msg, ...);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
