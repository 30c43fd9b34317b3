/* test_keys.c - Redis key names (common/keys.c, docs/protocol.md). */
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "keys.h"

static struct keys k;

static void setup(void)
{
    cr_assert_eq(keys_init(&k, NULL), 0);
}

TestSuite(keys, .init = setup);

Test(keys, default_prefix_is_weft)
{
    char out[KEYS_MAX];
    cr_assert_str_eq(k.prefix, "weft");
    cr_assert_eq(keys_init(&k, ""), 0);
    cr_assert_eq(keys_global(&k, KEYS_TASKS, out), strlen("weft:tasks"));
    cr_assert_str_eq(out, "weft:tasks");
}

Test(keys, global_names_match_protocol)
{
    static const struct {
        enum keys_global which;
        const char *name;
    } cases[] = {
        {KEYS_TASKS, "weft:tasks"},         {KEYS_EVENTS, "weft:events"},
        {KEYS_RUNS, "weft:runs"},           {KEYS_DELAYED, "weft:delayed"},
        {KEYS_DEADLINES, "weft:deadlines"}, {KEYS_DLQ, "weft:dlq"},
        {KEYS_CANCEL, "weft:cancel"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[KEYS_MAX];
        cr_assert_eq(keys_global(&k, cases[i].which, out),
                     strlen(cases[i].name));
        cr_assert_str_eq(out, cases[i].name);
    }
}

Test(keys, run_keys_match_protocol)
{
    static const struct {
        enum keys_run which;
        const char *name;
    } cases[] = {
        {KEYS_RUN, "weft:run:r-1"},
        {KEYS_RUN_STEPS, "weft:run:r-1:steps"},
        {KEYS_RUN_DEPS, "weft:run:r-1:deps"},
        {KEYS_RUN_STATE, "weft:run:r-1:state"},
        {KEYS_RUN_HISTORY, "weft:run:r-1:history"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[KEYS_MAX];
        cr_assert_eq(keys_run(&k, cases[i].which, "r-1", out),
                     strlen(cases[i].name));
        cr_assert_str_eq(out, cases[i].name);
    }
}

Test(keys, queue_def_and_breaker_keys)
{
    char out[KEYS_MAX];
    cr_assert_eq(keys_queue(&k, "code-reviewer", out),
                 strlen("weft:q:code-reviewer"));
    cr_assert_str_eq(out, "weft:q:code-reviewer");
    cr_assert_gt(keys_def(&k, "ab12", out), 0);
    cr_assert_str_eq(out, "weft:def:ab12");
    cr_assert_gt(keys_breaker(&k, "qa-engineer", out), 0);
    cr_assert_str_eq(out, "weft:breaker:qa-engineer");
    cr_assert_gt(keys_breaker(&k, "git:origin", out), 0);
    cr_assert_str_eq(out, "weft:breaker:git:origin");
    cr_assert_gt(keys_breaker_waiters(&k, "qa-engineer", out), 0);
    cr_assert_str_eq(out, "weft:breakerwait:qa-engineer");
    cr_assert_gt(keys_breaker_waiters(&k, "git:origin", out), 0);
    cr_assert_str_eq(out, "weft:breakerwait:git:origin");
}

Test(keys, breaker_names_are_personas_or_git_remotes)
{
    char id[KEYS_ID_MAX + 8];
    cr_assert(keys_valid_breaker("qa", 2));
    cr_assert(keys_valid_breaker("git:origin", 10));
    cr_assert_not(keys_valid_breaker("git:", 4), "a remote is needed");
    cr_assert_not(keys_valid_breaker("git:a:b", 7));
    cr_assert_not(keys_valid_breaker("svn:x", 5));
    cr_assert_not(keys_valid_breaker("", 0));
    cr_assert_not(keys_valid_breaker(NULL, 0));
    /* The remote is an id: KEYS_ID_MAX bytes at most. */
    memcpy(id, "git:", 4);
    memset(id + 4, 'r', KEYS_ID_MAX);
    id[4 + KEYS_ID_MAX] = '\0';
    cr_assert(keys_valid_breaker(id, 4 + KEYS_ID_MAX));
    char out[KEYS_MAX];
    cr_assert_gt(keys_breaker(&k, id, out), 0);
    id[4 + KEYS_ID_MAX] = 'r';
    id[5 + KEYS_ID_MAX] = '\0';
    cr_assert_not(keys_valid_breaker(id, 5 + KEYS_ID_MAX));
    cr_assert_eq(keys_breaker(&k, id, out), 0);
    cr_assert_eq(keys_breaker_waiters(&k, "git:a b", out), 0);
}

Test(keys, custom_prefix_with_hash_tag)
{
    char out[KEYS_MAX];
    cr_assert_eq(keys_init(&k, "prod:{s1}"), 0);
    cr_assert_gt(keys_run(&k, KEYS_RUN_STEPS, "r1", out), 0);
    cr_assert_str_eq(out, "prod:{s1}:run:r1:steps");
}

Test(keys, prefix_at_limit_accepted_one_past_rejected)
{
    char p[KEYS_PREFIX_MAX + 2];
    memset(p, 'a', KEYS_PREFIX_MAX);
    p[KEYS_PREFIX_MAX] = '\0';
    cr_assert_eq(keys_init(&k, p), 0);
    cr_assert_eq(strlen(k.prefix), KEYS_PREFIX_MAX);
    p[KEYS_PREFIX_MAX] = 'a';
    p[KEYS_PREFIX_MAX + 1] = '\0';
    cr_assert_eq(keys_init(&k, p), WEFT_EINVAL);
    /* k unchanged on failure */
    cr_assert_eq(strlen(k.prefix), KEYS_PREFIX_MAX);
}

Test(keys, prefix_with_bad_characters_rejected)
{
    cr_assert_eq(keys_init(&k, "we ft"), WEFT_EINVAL);
    cr_assert_eq(keys_init(&k, "weft\n"), WEFT_EINVAL);
    cr_assert_eq(keys_init(&k, "weft*"), WEFT_EINVAL);
    cr_assert_str_eq(k.prefix, "weft");
}

Test(keys, valid_id_boundaries)
{
    char id[KEYS_ID_MAX + 1];
    memset(id, 'x', sizeof(id));
    cr_assert(keys_valid_id(id, KEYS_ID_MAX));
    cr_assert_not(keys_valid_id(id, KEYS_ID_MAX + 1));
    cr_assert_not(keys_valid_id(id, 0));
    cr_assert_not(keys_valid_id(NULL, 3));
    cr_assert(keys_valid_id("A-z_0.9", 7));
    cr_assert_not(keys_valid_id("a|b", 3));
    cr_assert_not(keys_valid_id("a:b", 3));
    cr_assert_not(keys_valid_id("a b", 3));
    cr_assert_not(keys_valid_id("a\0b", 3));
    cr_assert_not(keys_valid_id("\xc3\xa9", 2));
}

Test(keys, builders_reject_hostile_ids)
{
    char out[KEYS_MAX];
    cr_assert_eq(keys_run(&k, KEYS_RUN, "r1:steps", out), 0);
    cr_assert_str_eq(out, "");
    cr_assert_eq(keys_run(&k, KEYS_RUN, "", out), 0);
    cr_assert_eq(keys_run(&k, KEYS_RUN, NULL, out), 0);
    cr_assert_eq(keys_queue(&k, "a b", out), 0);
    cr_assert_eq(keys_def(&k, "x*", out), 0);
    cr_assert_eq(keys_breaker(&k, "p|q", out), 0);
}

Test(keys, longest_prefix_and_id_fit)
{
    char p[KEYS_PREFIX_MAX + 1];
    char id[KEYS_ID_MAX + 1];
    char out[KEYS_MAX];
    memset(p, 'p', KEYS_PREFIX_MAX);
    p[KEYS_PREFIX_MAX] = '\0';
    memset(id, 'i', KEYS_ID_MAX);
    id[KEYS_ID_MAX] = '\0';
    cr_assert_eq(keys_init(&k, p), 0);
    size_t n = keys_run(&k, KEYS_RUN_HISTORY, id, out);
    cr_assert_eq(n, KEYS_PREFIX_MAX + strlen(":run:") + KEYS_ID_MAX +
                        strlen(":history"));
    cr_assert_eq(strlen(out), n);
}

Test(keys, id_one_past_limit_gives_no_key)
{
    char id[KEYS_ID_MAX + 2];
    char out[KEYS_MAX];
    memset(id, 'i', KEYS_ID_MAX + 1);
    id[KEYS_ID_MAX + 1] = '\0';
    cr_assert_eq(keys_queue(&k, id, out), 0);
    id[KEYS_ID_MAX] = '\0';
    cr_assert_gt(keys_queue(&k, id, out), 0);
}

Test(keys, group_names)
{
    cr_assert_str_eq(KEYS_GROUP_SCHEDULERS, "schedulers");
    cr_assert_str_eq(KEYS_GROUP_WORKERS, "workers");
}

Test(keys, scan_prefixes_start_every_queue_and_breaker_key)
{
    char pre[KEYS_MAX], key[KEYS_MAX];
    cr_assert_eq(keys_queue_prefix(&k, pre), strlen("weft:q:"));
    cr_assert_str_eq(pre, "weft:q:");
    keys_queue(&k, "default", key);
    cr_assert_eq(strncmp(key, pre, strlen(pre)), 0);
    cr_assert_str_eq(key + strlen(pre), "default");
    cr_assert_eq(keys_breaker_prefix(&k, pre), strlen("weft:breaker:"));
    keys_breaker(&k, "qa", key);
    cr_assert_eq(strncmp(key, pre, strlen(pre)), 0);
    cr_assert_str_eq(key + strlen(pre), "qa");
}
