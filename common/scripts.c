/* scripts.c - access to the embedded Lua scripts and their SHA-1. */
#include "scripts.h"

#include <stdio.h>

#include <openssl/sha.h>

/* Defined in the generated scripts_gen.c, in enum script_id order. */
extern const char *const scripts_src[];
extern const size_t scripts_len[];

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
    if (!shas_ready)
        compute_shas();
    return shas[id];
}

const char *scripts_name(enum script_id id)
{
    return names[id];
}
