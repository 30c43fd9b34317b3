/* scripts.h - the Lua transition scripts (common/lua/NAME.lua) compiled into
 * the binary, with their SHA-1 for EVALSHA. docs/protocol.md describes
 * what each does.
 */
#ifndef WEFT_COMMON_SCRIPTS_H
#define WEFT_COMMON_SCRIPTS_H

#include <stddef.h>

enum script_id {
    SCRIPT_CREATE_RUN,
    SCRIPT_DISPATCH,
    SCRIPT_START,
    SCRIPT_FINISH,
    SCRIPT_ACTIVATE,
    SCRIPT_CANCEL,
    SCRIPT_FIRE_DELAYED,
    SCRIPT_REJECT,
    SCRIPT_TRIM,
    SCRIPT_UNINDEX,
    SCRIPT_PARK,
    SCRIPT_RESOLVE,
    SCRIPT_RETRY,
    SCRIPT_DEAD_LETTER,
    SCRIPT_DLQ_MOVE,
    SCRIPT_ROLLBACK,
    SCRIPT_COUNT
};

/* The script's source (static storage) and its length. */
const char *scripts_text(enum script_id id, size_t *len);
/* Lowercase hex SHA-1 of the source, as Redis computes it (static). */
const char *scripts_sha(enum script_id id);
/* File name without .lua, for logs. */
const char *scripts_name(enum script_id id);

#endif
