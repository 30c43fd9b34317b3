/* fuzz_expr.c - libFuzzer target for the expression parser and evaluator.
 *
 * Parses the input as an expression; when it parses, evaluates it every
 * way the API offers against a fixed scope shaped like the seed's
 * WorkflowContext, walks its roots and frees everything. Sanitizers turn
 * any memory error, leak or undefined behaviour into a crash.
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "alloc.h"
#include "buf.h"
#include "expr.h"
#include "expr_int.h"

static const char fuzz_scope_json[] =
    "{\"task\": {\"type\": \"hotfix\", \"slug\": \"fix-login\", \"n\": 3,"
    " \"r\": 0.5, \"e\": \"\", \"z\": null, \"t\": true, \"u\": "
    "\"x\\ud83d\\ude00\\ue000\", \"tags\": [\"a\", \"b\", [1, null]],"
    " \"o\": {\"k\": [{}]}}, \"variables\": {\"timeout_base\": 1800},"
    " \"steps\": {\"plan-evaluation\": {\"result\": {\"summary\": \"ok\"}}},"
    " \"context\": {\"state\": {\"qa_status\": \"pass\", \"planning_result\":"
    " {\"ok\": true}}, \"personaResults\": {\"qa\": {\"s\": 1}}}}";

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
    struct expr *e = NULL;
    if (expr_parse((const char *)data, size, &e, &err) != 0)
        return 0;
    json_t *out = NULL;
    if (expr_eval(e, scope, &out, &err) == 0)
        json_decref(out);
    bool truth;
    (void)expr_eval_bool(e, scope, &truth, &err);
    (void)expr_eval_bool(e, NULL, &truth, &err);
    struct buf b;
    buf_init(&b, EXPR_MAX_STRING);
    (void)expr_eval_describe(e, scope, &b, &err);
    buf_deinit(&b);
    size_t total = 0;
    (void)expr_foreach_root(e, count_root, &total);
    expr_free(e);
    return 0;
}
