/* cmd_validate.c - `weft validate FILE... [--json]`: load and validate
 * each file and report every problem of every file. A file named
 * routes.yml is the coordinator's routes, personas.yml a persona
 * registry; any other file is a workflow.
 *
 * Diagnostics go to stderr gcc-style (`FILE:LINE:COL: error: MESSAGE`,
 * sorted by position) so editors can jump to them; stdout gets one
 * summary line per file. With --json, stdout gets one document instead
 * and stderr stays quiet. Exit 0 when every file is valid, 1 otherwise.
 */
#include "cli.h"

#include <string.h>

#include "diag.h"
#include "error.h"
#include "personas.h"
#include "routes.h"
#include "wfdef.h"

/* Validates one file; appends its JSON record to files (when not NULL).
 * Returns true when it is valid. */
enum file_kind { FILE_WORKFLOW, FILE_ROUTES, FILE_PERSONAS };

static enum file_kind kind_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strcmp(base, "routes.yml") == 0 || strcmp(base, "routes.yaml") == 0)
        return FILE_ROUTES;
    if (strcmp(base, "personas.yml") == 0 || strcmp(base, "personas.yaml") == 0)
        return FILE_PERSONAS;
    return FILE_WORKFLOW;
}

static const char *const kind_names[] = {"workflow", "routes", "personas"};

static bool validate_one(const char *path, bool json, json_t *files)
{
    struct diag d;
    diag_init(&d, path);
    struct wf *wf = NULL;
    enum file_kind kind = kind_of(path);
    int rc;
    if (kind == FILE_ROUTES) {
        struct routes *r = NULL;
        rc = routes_load_file(path, &r, &d);
        routes_free(r);
    } else if (kind == FILE_PERSONAS) {
        struct personas *p = NULL;
        rc = personas_load_file(path, &p, &d);
        personas_free(p);
    } else {
        rc = wf_load_file(path, &wf, &d);
    }
    if (rc != 0 && d.errors == 0) {
        /* The loader failed without saying where (out of memory): still
         * report the file as invalid, in the same format. */
        diag_error(&d, 0, 0, "%s", weft_strerror(rc));
    }
    diag_sort(&d);
    bool valid = rc == 0;
    if (json) {
        json_t *errs = diag_to_json(&d);
        bool is_wf = valid && wf != NULL;
        json_t *rec =
            json_pack("{s:s, s:s, s:b, s:I, s:o, s:o}", "file", path, "kind",
                      kind_names[kind], "valid", valid, "steps",
                      (json_int_t)(is_wf ? wf->nsteps : 0), "digest",
                      is_wf ? json_string(wf->digest) : json_null(), "errors",
                      errs ? errs : json_array());
        if (rec == NULL || json_array_append_new(files, rec) != 0)
            valid = false;
    } else {
        diag_print(&d, stderr);
        if (valid) {
            printf("%s: ok\n", path);
        } else {
            printf("%s: invalid (%zu error%s)\n", path, d.errors,
                   d.errors == 1 ? "" : "s");
        }
    }
    wf_free(wf);
    diag_deinit(&d);
    return valid;
}

int cmd_validate(const struct cli_opts *o)
{
    json_t *files = o->json ? json_array() : NULL;
    if (o->json && files == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    bool all = true;
    for (int i = 0; i < o->nargs; i++) {
        if (!validate_one(o->args[i], o->json, files))
            all = false;
    }
    int rc = all ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    if (o->json) {
        json_t *doc = json_pack("{s:b, s:o}", "valid", all, "files", files);
        if (cli_print_json(doc) != CLI_EXIT_OK)
            rc = CLI_EXIT_FAIL;
    }
    return rc;
}
