/* test_cli_fmt.c - the CLI's pure formatting helpers (cli/fmt.c): run
 * ids, times, durations, DOT and Mermaid escaping, worker queues.
 *
 * The CLI is an executable, not a library, so its helper file is
 * compiled into this test directly.
 */
#include "../../cli/fmt.c"

#include <criterion/criterion.h>

#include "diag.h"

static struct buf esc_buf;

static const char *dot_esc(const char *s)
{
    buf_deinit(&esc_buf);
    buf_init(&esc_buf, 1024);
    cr_assert_eq(fmt_dot_escape(&esc_buf, s), 0);
    return esc_buf.data ? esc_buf.data : "";
}

static const char *mermaid_esc(const char *s)
{
    buf_deinit(&esc_buf);
    buf_init(&esc_buf, 1024);
    cr_assert_eq(fmt_mermaid_escape(&esc_buf, s), 0);
    return esc_buf.data ? esc_buf.data : "";
}

Test(cli_fmt, run_id_is_ms_dash_eight_hex_and_a_valid_key_id)
{
    const unsigned char rnd[4] = {0x00, 0xab, 0x10, 0xff};
    char id[CLI_RUN_ID_MAX + 1];
    size_t n = fmt_run_id(1700000000123, rnd, id, sizeof(id));
    cr_assert_str_eq(id, "1700000000123-00ab10ff");
    cr_assert_eq(n, strlen(id));
    cr_assert(keys_valid_id(id, n));
}

Test(cli_fmt, run_id_that_does_not_fit_is_empty)
{
    const unsigned char rnd[4] = {1, 2, 3, 4};
    char id[8];
    /* volatile: the compiler would otherwise see (and warn about) the
     * truncation this test is about. */
    volatile size_t size = sizeof(id);
    cr_assert_eq(fmt_run_id(1700000000123, rnd, id, size), 0);
    cr_assert_str_eq(id, "");
}

Test(cli_fmt, time_is_utc_iso8601_with_milliseconds)
{
    char t[64];
    fmt_time(0, t, sizeof(t));
    cr_assert_str_eq(t, "1970-01-01T00:00:00.000Z");
    fmt_time(1700000000123, t, sizeof(t));
    cr_assert_str_eq(t, "2023-11-14T22:13:20.123Z");
    fmt_time(-1, t, sizeof(t));
    cr_assert_str_eq(t, "-");
}

Test(cli_fmt, durations_pick_a_unit_at_each_boundary)
{
    char d[32];
    fmt_duration(-1, d, sizeof(d));
    cr_assert_str_eq(d, "-");
    fmt_duration(0, d, sizeof(d));
    cr_assert_str_eq(d, "0ms");
    fmt_duration(999, d, sizeof(d));
    cr_assert_str_eq(d, "999ms");
    fmt_duration(1000, d, sizeof(d));
    cr_assert_str_eq(d, "1.00s");
    fmt_duration(1250, d, sizeof(d));
    cr_assert_str_eq(d, "1.25s");
    fmt_duration(59999, d, sizeof(d));
    cr_assert_str_eq(d, "59.99s");
    fmt_duration(60000, d, sizeof(d));
    cr_assert_str_eq(d, "1m00s");
    fmt_duration(125000, d, sizeof(d));
    cr_assert_str_eq(d, "2m05s");
    fmt_duration(3599999, d, sizeof(d));
    cr_assert_str_eq(d, "59m59s");
    fmt_duration(3600000, d, sizeof(d));
    cr_assert_str_eq(d, "1h00m");
    fmt_duration(11040000, d, sizeof(d));
    cr_assert_str_eq(d, "3h04m");
}

Test(cli_fmt, dot_escapes_quotes_backslashes_and_newlines)
{
    cr_assert_str_eq(dot_esc("plain id"), "plain id");
    cr_assert_str_eq(dot_esc("a \"q\" b"), "a \\\"q\\\" b");
    cr_assert_str_eq(dot_esc("x\\y"), "x\\\\y");
    cr_assert_str_eq(dot_esc("l1\nl2\tz"), "l1\\nl2 z");
    cr_assert_str_eq(dot_esc("context.state.get('qa') === 'pass'"),
                     "context.state.get('qa') === 'pass'");
}

Test(cli_fmt, mermaid_escapes_what_ends_labels)
{
    cr_assert_str_eq(mermaid_esc("a \"b\""), "a #quot;b#quot;");
    cr_assert_str_eq(mermaid_esc("a < b > c"), "a #lt; b #gt; c");
    cr_assert_str_eq(mermaid_esc("a || b"), "a #124;#124; b");
    cr_assert_str_eq(mermaid_esc("#x"), "#35;x");
    cr_assert_str_eq(mermaid_esc("l1\nl2"), "l1<br/>l2");
}

Test(cli_fmt, escaping_respects_the_buffer_limit)
{
    struct buf b;
    buf_init(&b, 4);
    cr_assert_eq(fmt_dot_escape(&b, "\"\"\""), WEFT_ELIMIT);
    buf_deinit(&b);
    buf_init(&b, 4);
    cr_assert_eq(fmt_mermaid_escape(&b, "\""), WEFT_ELIMIT);
    buf_deinit(&b);
}

static struct wf *load(const char *yaml)
{
    struct diag d;
    diag_init(&d, "test.yml");
    struct wf *wf = NULL;
    int rc = wf_load_buffer(yaml, strlen(yaml), "test", &wf, &d);
    if (rc != 0)
        diag_print(&d, stderr);
    diag_deinit(&d);
    cr_assert_eq(rc, 0);
    return wf;
}

Test(cli_fmt, queues_follow_the_protocol_rule_sorted_and_unique)
{
    struct wf *wf = load("steps:\n"
                         "  - id: a\n"
                         "    type: persona-request\n"
                         "    persona: qa-engineer\n"
                         "  - id: b\n"
                         "    type: git-operation\n"
                         "    operation: fetch\n"
                         "  - id: c\n"
                         "    type: noop\n"
                         "    queue: fast\n"
                         "  - id: d\n"
                         "    type: parallel\n"
                         "    steps:\n"
                         "      - id: e\n"
                         "        type: persona-request\n"
                         "        persona: qa-engineer\n"
                         "      - id: f\n"
                         "        type: noop\n");
    cr_assert_str_eq(fmt_step_queue(NULL, wf_find_step(wf, "a", 1)),
                     "qa-engineer");
    cr_assert_str_eq(fmt_step_queue(NULL, wf_find_step(wf, "b", 1)), "git");
    cr_assert_str_eq(fmt_step_queue(NULL, wf_find_step(wf, "c", 1)), "fast");
    cr_assert_null(fmt_step_queue(NULL, wf_find_step(wf, "d", 1)));
    cr_assert_str_eq(fmt_step_queue(NULL, wf_find_step(wf, "f", 1)), "default");
    char *q = fmt_queue_list(wf, NULL);
    cr_assert_str_eq(q, "default,fast,git,qa-engineer");
    weft_free(q);
    wf_free(wf);
}

Test(cli_fmt, queue_list_always_has_default)
{
    struct wf *wf = load("steps:\n"
                         "  - id: only\n"
                         "    type: noop\n"
                         "    queue: special\n");
    char *q = fmt_queue_list(wf, NULL);
    cr_assert_str_eq(q, "default,special");
    weft_free(q);
    wf_free(wf);
}

/* ---- --set KEY=VALUE ---- */

/* The sets parsed to compact sorted JSON, or "error: WHY". */
static const char *sets_text(const char *const *sets, int n)
{
    static char out[512];
    json_t *obj = NULL;
    char why[256];
    if (fmt_parse_sets(sets, n, &obj, why, sizeof(why)) != 0) {
        snprintf(out, sizeof(out), "error: %s", why);
        return out;
    }
    char *t = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(out, sizeof(out), "%s", t);
    weft_free(t);
    json_decref(obj);
    return out;
}

Test(cli_fmt, set_values_are_json_when_they_parse_else_strings)
{
    const char *a[] = {"n=3",    "ok=true",      "o={\"a\":[1]}", "note=hello",
                       "empty=", "q=\"quoted\"", "eq=a=b",        "n=4"};
    cr_assert_str_eq(sets_text(a, 8),
                     "{\"empty\":\"\",\"eq\":\"a=b\",\"n\":4,\"note\":"
                     "\"hello\",\"o\":{\"a\":[1]},\"ok\":true,\"q\":"
                     "\"quoted\"}");
}

Test(cli_fmt, set_needs_a_state_key_and_an_equals_sign)
{
    const char *a[] = {"novalue"};
    cr_assert(strstr(sets_text(a, 1), "error: --set 'novalue': expected "
                                      "KEY=VALUE") != NULL);
    const char *b[] = {"=1"};
    cr_assert(strncmp(sets_text(b, 1), "error:", 6) == 0);
    const char *c[] = {"bad key=1"};
    cr_assert(strncmp(sets_text(c, 1), "error:", 6) == 0);
    const char *d[] = {"k=\xff"};
    cr_assert_str_eq(sets_text(d, 1),
                     "error: --set k: the value is not UTF-8 text");
}

Test(cli_fmt, set_takes_keys_up_to_the_limit)
{
    static char names[CLI_SET_KEYS_MAX + 1][16];
    static const char *sets[CLI_SET_KEYS_MAX + 1];
    for (int i = 0; i <= CLI_SET_KEYS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "k%d=%d", i, i);
        sets[i] = names[i];
    }
    cr_assert_eq(sets_text(sets, CLI_SET_KEYS_MAX)[0], '{');
    cr_assert_str_eq(sets_text(sets, CLI_SET_KEYS_MAX + 1),
                     "error: --set: 257 keys; the limit is 256");
}

Test(cli_fmt, set_takes_json_up_to_the_size_limit)
{
    /* {"k":"<v>"} is 8 bytes around the value. */
    static char arg[CLI_SET_MAX + 16];
    memcpy(arg, "k=", 2);
    memset(arg + 2, 'x', CLI_SET_MAX - 8);
    arg[2 + CLI_SET_MAX - 8] = '\0';
    const char *a[] = {arg};
    cr_assert_eq(sets_text(a, 1)[0], '{');
    arg[2 + CLI_SET_MAX - 8] = 'x';
    arg[3 + CLI_SET_MAX - 8] = '\0';
    cr_assert(strstr(sets_text(a, 1), "the limit is 65536") != NULL);
}
