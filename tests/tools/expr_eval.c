/* expr_eval.c - evaluates expressions for the differential test.
 *
 * Usage: expr_eval SCOPE.json EXPRESSIONS.txt
 * Reads a JSON object (the scope) and one expression per line; prints one
 * line per expression: the canonical description of expr_eval_describe
 * ("number:1.5", "string:\"a\"", ...) or "error:<JS error class>" with the
 * class JavaScript would throw: SyntaxError for parse errors and limits,
 * TypeError, ReferenceError. expr_vs_node.js prints the same for node.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "buf.h"
#include "expr.h"
#include "expr_int.h"

/* Expressions are at most EXPR_MAX_SOURCE bytes; longer lines are
 * reported as SyntaxError, like any other over-long expression. */
#define EXPR_EVAL_MAX_LINE (EXPR_MAX_SOURCE * 2)

static const char *error_class(int rc, int parse)
{
    if (parse)
        return "SyntaxError";
    switch (rc) {
    case WEFT_ETYPE:
        return "TypeError";
    case WEFT_ENOENT:
        return "ReferenceError";
    case WEFT_ELIMIT:
        return "RangeError";
    default:
        return "InternalError";
    }
}

static void run(const char *line, size_t len, const json_t *scope)
{
    struct weft_error err;
    struct expr *e = NULL;
    struct buf out;
    int rc = expr_parse(line, len, &e, &err);
    if (rc != 0) {
        printf("error:%s\n", error_class(rc, 1));
        return;
    }
    buf_init(&out, EXPR_MAX_STRING * 2);
    rc = expr_eval_describe(e, scope, &out, &err);
    if (rc != 0)
        printf("error:%s\n", error_class(rc, 0));
    else
        printf("%s\n", out.data);
    buf_deinit(&out);
    expr_free(e);
}

int main(int argc, char **argv)
{
    static char line[EXPR_EVAL_MAX_LINE];
    json_error_t jerr;
    if (argc != 3) {
        fprintf(stderr, "usage: %s SCOPE.json EXPRESSIONS.txt\n", argv[0]);
        return 2;
    }
    weft_alloc_init();
    json_t *scope = json_load_file(argv[1], 0, &jerr);
    if (scope == NULL) {
        fprintf(stderr, "%s:%d: %s\n", argv[1], jerr.line, jerr.text);
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    if (f == NULL) {
        perror(argv[2]);
        json_decref(scope);
        return 2;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        run(line, len, scope);
    }
    fclose(f);
    json_decref(scope);
    return 0;
}
