/* test_strmap.c - the string map: insert, lookup, duplicates, deletion. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "strmap.h"

Test(strmap, finds_what_was_put_and_rejects_duplicates)
{
    struct strmap m;
    strmap_init(&m);
    int a = 1, b = 2;
    void *old = NULL;
    cr_assert_eq(strmap_put(&m, "a", 1, &a, NULL), 0);
    cr_assert_eq(strmap_put(&m, "a", 1, &b, &old), WEFT_EINVAL);
    cr_assert_eq(old, &a);
    cr_assert_eq(strmap_get(&m, "a", 1), &a);
    cr_assert_null(strmap_get(&m, "b", 1));
    strmap_deinit(&m);
}

Test(strmap, deletion_keeps_every_other_key_reachable)
{
    enum { N = 5000 };
    static char keys[N][16];
    struct strmap m;
    strmap_init(&m);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        cr_assert_eq(strmap_put(&m, keys[i], strlen(keys[i]), keys[i], NULL),
                     0);
    }
    for (int i = 0; i < N; i += 3)
        cr_assert_eq(strmap_del(&m, keys[i], strlen(keys[i])), keys[i]);
    cr_assert_null(strmap_del(&m, "k0", 2));
    for (int i = 0; i < N; i++) {
        void *v = strmap_get(&m, keys[i], strlen(keys[i]));
        if (i % 3 == 0)
            cr_assert_null(v, "%s should be gone", keys[i]);
        else
            cr_assert_eq(v, keys[i], "%s lost after deletions", keys[i]);
    }
    cr_assert_eq(m.count, N - (N + 2) / 3);
    strmap_deinit(&m);
}
