/* scripts.c - access to the embedded Lua: the transition library and the
 * scripts of their own, with their SHA-1. */
#include "scripts.h"

#include <stdio.h>

#include <openssl/sha.h>

/* Defined in the generated scripts_gen.c, in enum script_id order (NULL
 * for the library's functions in the first, for scripts in the last). */
extern const char *const scripts_src[];
extern const size_t scripts_len[];
extern const char *const scripts_fn[];
extern const char *const scripts_lib;
extern const size_t scripts_lib_len;
extern const char scripts_lib_name[];

static const char *const names[SCRIPT_COUNT] = {
    "create_run", "dispatch",    "start",        "finish",
    "activate",   "cancel",      "fire_delayed", "reject",
    "trim",       "unindex",     "park",         "resolve",
    "retry",      "dead_letter", "dlq_move",     "rollback",
};

/* Filled on first use; the processes are single-threaded at start-up. */
static char shas[SCRIPT_COUNT][41];
static int shas_ready;

static void compute_shas(void)
{
    for (int i = 0; i < SCRIPT_COUNT; i++) {
        unsigned char md[SHA_DIGEST_LENGTH];
        if (scripts_src[i] == NULL)
            continue;
        SHA1((const unsigned char *)scripts_src[i], scripts_len[i], md);
        for (int j = 0; j < SHA_DIGEST_LENGTH; j++)
            snprintf(&shas[i][2 * j], 3, "%02x", md[j]);
    }
    shas_ready = 1;
}

const char *scripts_text(enum script_id id, size_t *len)
{
    if (len)
        *len = scripts_len[id];
    return scripts_src[id];
}

const char *scripts_sha(enum script_id id)
{
    if (scripts_src[id] == NULL)
        return NULL;
    if (!shas_ready)
        compute_shas();
    return shas[id];
}

const char *scripts_function(enum script_id id)
{
    return scripts_fn[id];
}

const char *scripts_library(size_t *len)
{
    if (len)
        *len = scripts_lib_len;
    return scripts_lib;
}

const char *scripts_library_name(void)
{
    return scripts_lib_name;
}

const char *scripts_name(enum script_id id)
{
    return names[id];
}
