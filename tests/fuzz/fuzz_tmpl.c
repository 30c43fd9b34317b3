/* fuzz_tmpl.c - libFuzzer target for the template parser and renderer.
 *
 * Parses the input as a template; when it parses, renders it as a value
 * and as a string against a fixed scope, walks its roots and frees
 * everything.
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "alloc.h"
#include "tmpl.h"

static const char fuzz_scope_json[] =
    "{\"task\": {\"project\": \"weft\", \"slug\": \"fix-login\", \"n\": 3,"
    " \"tags\": [\"a\", {\"b\": null}], \"z\": null, \"r\": 1e-7},"
    " \"variables\": {\"branch_prefix\": \"feat/\", \"timeout_base\": 1800},"
    " \"steps\": {\"plan-evaluation\": {\"result\": {\"summary\": \"ok\","
    " \"items\": [{\"id\": 1}]}}}, \"context\": {\"state\": {\"qa_status\":"
    " \"pass\"}}}";

static json_t *fuzz_scope(void)
{
    static json_t *scope;
    if (scope == NULL) {
        weft_alloc_init();
        scope = json_loads(fuzz_scope_json, 0, NULL);
    }
    return scope;
}

static int count_root(void *ud, const char *name, size_t len, int column)
{
    (void)name;
    (void)column;
    *(size_t *)ud += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const json_t *scope = fuzz_scope();
    struct weft_error err;
    struct tmpl *t = NULL;
    (void)tmpl_is_plain((const char *)data, size);
    if (tmpl_parse((const char *)data, size, &t, &err) != 0)
        return 0;
    (void)tmpl_is_literal(t);
    json_t *out = NULL;
    if (tmpl_render(t, scope, &out, &err) == 0)
        json_decref(out);
    char *s = NULL;
    if (tmpl_render_string(t, scope, &s, &err) == 0)
        weft_free(s);
    size_t total = 0;
    (void)tmpl_foreach_root(t, count_root, &total);
    tmpl_free(t);
    return 0;
}
