/* fuzz_yaml.c - libFuzzer target for the workflow loader.
 *
 * Feeds the input to wf_load_buffer (libyaml, the tree builder, every
 * validator, the canonical writer). Beyond "no crash, no leak, no
 * undefined behaviour" (the sanitizers' job) it checks two invariants and
 * aborts when they fail:
 *  - the tree's own JSON writer produces exactly what jansson's
 *    json_dumps(JSON_SORT_KEYS | JSON_COMPACT) produces for the same tree;
 *  - a valid workflow's canonical form loads again (wf_load_canonical) to
 *    a model with the same digest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "buf.h"
#include "diag.h"
#include "wfdef.h"
#include "ytree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The tree writer and jansson must agree byte for byte. */
static void check_json_writer(const char *text, size_t size)
{
    struct diag d;
    struct ytree *t = NULL;
    diag_init(&d, "fuzz");
    if (ytree_parse(text, size, &d, &t) == 0 && ytree_root(t) != NULL) {
        json_t *j = ytree_to_json(ytree_root(t));
        char *want =
            j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY)
              : NULL;
        struct buf b;
        buf_init(&b, 1u << 30);
        if (want != NULL && ytree_write_json(ytree_root(t), &b) == 0 &&
            strcmp(b.data, want) != 0) {
            fprintf(stderr, "writer: %s\njansson: %s\n", b.data, want);
            abort();
        }
        buf_deinit(&b);
        weft_free(want);
        json_decref(j);
    }
    ytree_free(t);
    diag_deinit(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        weft_alloc_init();
        ready = 1;
    }
    const char *text = (const char *)data;
    struct diag d;
    struct wf *wf = NULL;
    diag_init(&d, "fuzz.yml");
    if (wf_load_buffer(text, size, "fuzz", &wf, &d) == 0) {
        struct diag d2;
        struct wf *again = NULL;
        diag_init(&d2, "canonical");
        int rc =
            wf_load_canonical(wf->canonical, wf->canonical_len, &again, &d2);
        if (rc != 0 || strcmp(again->digest, wf->digest) != 0) {
            diag_print(&d2, stderr);
            fprintf(stderr, "canonical reload failed (rc %d): %s\n", rc,
                    wf->canonical);
            abort();
        }
        wf_free(again);
        diag_deinit(&d2);
        wf_free(wf);
    } else {
        diag_sort(&d);
        json_t *j = diag_to_json(&d);
        json_decref(j);
    }
    diag_deinit(&d);
    check_json_writer(text, size);
    return 0;
}
