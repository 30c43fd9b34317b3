/* scripts.h - the Lua of common/lua compiled into the binary: the
 * transitions, functions of one Redis library (FCALL), and a few scripts
 * of their own (EVALSHA; see common/CMakeLists.txt for which is which).
 * docs/protocol.md describes what each does.
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

/* A script's source (static storage) and its length; NULL for a function
 * of the library. */
const char *scripts_text(enum script_id id, size_t *len);
/* Lowercase hex SHA-1 of a script's source, as Redis computes it (static);
 * NULL for a function of the library. */
const char *scripts_sha(enum script_id id);
/* The name to FCALL a function of the library by; NULL for a script. */
const char *scripts_function(enum script_id id);
/* The library's source, for FUNCTION LOAD, and its length. */
const char *scripts_library(size_t *len);
/* The library's name, weft_<16 hex digits of a hash of its code>. */
const char *scripts_library_name(void);
/* File name without .lua, for logs. */
const char *scripts_name(enum script_id id);

#endif
