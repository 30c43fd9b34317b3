/* fmt.c - pure formatting helpers of the CLI: run ids, times,
 * durations, escaping for DOT and Mermaid, and the queue list of a
 * workflow. No I/O, so tests/unit/test_cli_fmt.c checks them directly.
 */
#include "cli.h"

#include "personas.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "buf.h"

size_t fmt_run_id(int64_t ms, const unsigned char rnd[4], char *out,
                  size_t size)
{
    int n = snprintf(out, size, "%" PRId64 "-%02x%02x%02x%02x", ms < 0 ? 0 : ms,
                     rnd[0], rnd[1], rnd[2], rnd[3]);
    if (n < 0 || (size_t)n >= size) {
        if (size > 0)
            out[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

void fmt_time(int64_t ms, char *out, size_t size)
{
    if (ms < 0) {
        snprintf(out, size, "-");
        return;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(out, size, "-");
        return;
    }
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void fmt_duration(int64_t ms, char *out, size_t size)
{
    if (ms < 0) {
        snprintf(out, size, "-");
    } else if (ms < 1000) {
        snprintf(out, size, "%" PRId64 "ms", ms);
    } else if (ms < 60 * 1000) {
        snprintf(out, size, "%" PRId64 ".%02" PRId64 "s", ms / 1000,
                 (ms % 1000) / 10);
    } else if (ms < 3600 * 1000) {
        snprintf(out, size, "%" PRId64 "m%02" PRId64 "s", ms / 60000,
                 (ms / 1000) % 60);
    } else {
        snprintf(out, size, "%" PRId64 "h%02" PRId64 "m", ms / 3600000,
                 (ms / 60000) % 60);
    }
}

int fmt_dot_escape(struct buf *b, const char *s)
{
    int rc = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        switch (*p) {
        case '"':
            rc = buf_append_str(b, "\\\"");
            break;
        case '\\':
            rc = buf_append_str(b, "\\\\");
            break;
        case '\n':
            rc = buf_append_str(b, "\\n");
            break;
        case '\r':
        case '\t':
            rc = buf_append_char(b, ' ');
            break;
        default:
            rc = buf_append_char(b, *p);
        }
    }
    return rc;
}

int fmt_mermaid_escape(struct buf *b, const char *s)
{
    int rc = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        switch (*p) {
        case '"':
            rc = buf_append_str(b, "#quot;");
            break;
        case '<':
            rc = buf_append_str(b, "#lt;");
            break;
        case '>':
            rc = buf_append_str(b, "#gt;");
            break;
        case '|':
            /* Ends an edge label in `-->|...|`. */
            rc = buf_append_str(b, "#124;");
            break;
        case '#':
            /* Starts an entity: keep a literal one literal. */
            rc = buf_append_str(b, "#35;");
            break;
        case '\n':
            rc = buf_append_str(b, "<br/>");
            break;
        case '\r':
        case '\t':
            rc = buf_append_char(b, ' ');
            break;
        default:
            rc = buf_append_char(b, *p);
        }
    }
    return rc;
}

const char *fmt_step_queue(const struct personas *reg, const struct wf_step *s)
{
    if (s->type == WF_STEP_CONDITIONAL || s->type == WF_STEP_PARALLEL ||
        s->type == WF_STEP_APPROVAL)
        return NULL;
    return personas_step_queue(reg, s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *fmt_queue_list(const struct wf *wf, const struct personas *reg)
{
    const char **names = weft_calloc((size_t)wf->nsteps + 1, sizeof(char *));
    if (names == NULL)
        return NULL;
    size_t n = 0;
    names[n++] = "default";
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        const char *q = fmt_step_queue(reg, &wf->steps[i]);
        if (q != NULL)
            names[n++] = q;
    }
    qsort(names, n, sizeof(*names), cmp_str);
    struct buf b;
    /* Each name is bounded by KEYS_ID_MAX and there is one per step. */
    buf_init(&b, (size_t)(wf->nsteps + 1) * (KEYS_ID_MAX + 1) + 1);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
            continue;
        if (b.len > 0)
            rc = buf_append_char(&b, ',');
        if (rc == 0)
            rc = buf_append_str(&b, names[i]);
    }
    weft_free(names);
    char *out = rc == 0 ? buf_steal(&b, NULL) : NULL;
    buf_deinit(&b);
    return out;
}

int fmt_parse_sets(const char *const *sets, int n, json_t **out, char *why,
                   size_t size)
{
    json_t *obj = json_object();
    if (obj == NULL) {
        snprintf(why, size, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *a = sets[i], *eq = strchr(a, '=');
        size_t klen = eq ? (size_t)(eq - a) : 0;
        if (eq == NULL || !keys_valid_id(a, klen)) {
            snprintf(why, size,
                     "--set '%.64s': expected KEY=VALUE with KEY of 1 to %d "
                     "of A-Z a-z 0-9 _ . -",
                     a, KEYS_ID_MAX);
            goto fail;
        }
        char key[KEYS_ID_MAX + 1];
        memcpy(key, a, klen);
        key[klen] = '\0';
        json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
        if (v == NULL)
            v = json_string(eq + 1);
        if (v == NULL) {
            snprintf(why, size, "--set %s: the value is not UTF-8 text", key);
            goto fail;
        }
        if (json_object_set_new(obj, key, v) != 0) {
            snprintf(why, size, "out of memory");
            goto fail;
        }
    }
    if (json_object_size(obj) > CLI_SET_KEYS_MAX) {
        snprintf(why, size, "--set: %zu keys; the limit is %d",
                 json_object_size(obj), CLI_SET_KEYS_MAX);
        goto fail;
    }
    char *text = json_dumps(obj, JSON_COMPACT);
    bool dumped = text != NULL;
    size_t len = dumped ? strlen(text) : 0;
    weft_free(text);
    if (!dumped || len > CLI_SET_MAX) {
        snprintf(why, size, "--set: %zu bytes of JSON; the limit is %d", len,
                 CLI_SET_MAX);
        goto fail;
    }
    *out = obj;
    return 0;
fail:
    json_decref(obj);
    return -1;
}
