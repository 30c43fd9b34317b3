/* test_dlq.c - reading dead letters (common/dlq.c): origin, bookkeeping,
 * requeueability, the arguments of a requeue. Pure: the field arrays are
 * built here as hiredis would hand them over. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "dlq.h"

static struct keys keys;

static void setup(void)
{
    weft_alloc_init();
    keys_init(&keys, NULL);
}

/* A field array [k, v, ...] of n strings (NULL-ended varargs); free with
 * fields_free. */
static redisReply *fields(const char *first, ...)
{
    redisReply *r = weft_calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->element = weft_calloc(256, sizeof(redisReply *));
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s != NULL; s = va_arg(ap, const char *)) {
        redisReply *e = weft_calloc(1, sizeof(*e));
        e->type = REDIS_REPLY_STRING;
        e->str = weft_strdup(s);
        e->len = strlen(s);
        r->element[r->elements++] = e;
    }
    va_end(ap);
    return r;
}

static void add_field(redisReply *r, const char *k, const char *v)
{
    const char *kv[2] = {k, v};
    for (int i = 0; i < 2; i++) {
        redisReply *e = weft_calloc(1, sizeof(*e));
        e->type = REDIS_REPLY_STRING;
        e->str = weft_strdup(kv[i]);
        e->len = strlen(kv[i]);
        r->element[r->elements++] = e;
    }
}

static void fields_free(redisReply *r)
{
    for (size_t i = 0; i < r->elements; i++) {
        weft_free(r->element[i]->str);
        weft_free(r->element[i]);
    }
    weft_free(r->element);
    weft_free(r);
}

Test(dlq, a_job_dead_letter_is_requeued_to_its_queue, .init = setup)
{
    redisReply *f =
        fields("dlq_origin", "weft:q:reviewer", "dlq_entry", "1-1",
               "dlq_reason", "delivery limit exceeded", "dlq_by", "w1",
               "dlq_at", "1714567891234", "run", "r1", "step", "review",
               "attempt", "2", "type", "persona-request", "persona", "reviewer",
               "body", "\x85", "sig", "ab", NULL);
    struct dlq_info in;
    dlq_inspect(&keys, f, &in);
    cr_assert_eq(in.kind, DLQ_JOB);
    cr_assert_str_eq(in.origin, "weft:q:reviewer");
    cr_assert_str_eq(in.reason, "delivery limit exceeded");
    cr_assert_str_eq(in.by, "w1");
    cr_assert_str_eq(in.entry, "1-1");
    cr_assert_eq(in.at, 1714567891234);
    cr_assert_str_eq(in.run, "r1");
    cr_assert_str_eq(in.step, "review");
    cr_assert_str_eq(in.attempt, "2");
    cr_assert_not(in.legacy);
    cr_assert_null(in.not_requeueable);

    const char **argv;
    size_t *lens;
    int nkeys, argc;
    cr_assert_eq(
        dlq_move_argv("weft:dlq", &in, "9-9", f, &nkeys, &argc, &argv, &lens),
        0);
    cr_assert_eq(nkeys, 2);
    /* KEYS dlq, origin; ARGV id, then the seven job fields only. */
    cr_assert_eq(argc, 3 + 14);
    cr_assert_str_eq(argv[0], "weft:dlq");
    cr_assert_str_eq(argv[1], "weft:q:reviewer");
    cr_assert_str_eq(argv[2], "9-9");
    cr_assert_str_eq(argv[3], "run");
    cr_assert_str_eq(argv[15], "sig");
    for (int i = 3; i < argc; i += 2)
        cr_assert_neq(strncmp(argv[i], "dlq_", 4), 0, "%s copied", argv[i]);
    weft_free(argv);
    weft_free(lens);
    fields_free(f);
}

Test(dlq, what_each_kind_needs_to_go_back, .init = setup)
{
    struct {
        const char *origin, *field, *value;
        enum dlq_kind kind;
        bool ok;
    } cases[] = {
        {"weft:q:default", "body", "x", DLQ_JOB, false}, /* no sig */
        {"weft:tasks", "task", "{}", DLQ_TASK, true},
        {"weft:tasks", "run", "r", DLQ_TASK, false}, /* no task */
        {"weft:events", "type", "cancel", DLQ_EVENT, true},
        {"weft:events", "run", "r", DLQ_EVENT, false}, /* no type */
        /* Only weft's own streams: never a run's keys or another app's. */
        {"weft:run:r1:history", "type", "x", DLQ_UNKNOWN, false},
        {"other:tasks", "task", "{}", DLQ_UNKNOWN, false},
        {"weft:q:../x", "body", "x", DLQ_UNKNOWN, false},
        {"weft:q:", "body", "x", DLQ_UNKNOWN, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply *f = fields("dlq_origin", cases[i].origin, "dlq_reason", "r",
                               cases[i].field, cases[i].value, NULL);
        struct dlq_info in;
        dlq_inspect(&keys, f, &in);
        cr_assert_eq(in.kind, cases[i].kind, "case %zu", i);
        cr_assert_eq(in.not_requeueable == NULL, cases[i].ok, "case %zu: %s", i,
                     in.not_requeueable ? in.not_requeueable : "ok");
        if (in.kind == DLQ_UNKNOWN)
            cr_assert_str_eq(in.origin, "");
        const char **argv = NULL;
        size_t *lens = NULL;
        int nk, ac;
        cr_assert_eq(dlq_move_argv("weft:dlq", &in, "1-1", f, &nk, &ac, &argv,
                                   &lens) == 0,
                     cases[i].ok, "case %zu", i);
        weft_free(argv);
        weft_free(lens);
        fields_free(f);
    }
}

Test(dlq, fields_are_capped_at_the_boundary, .init = setup)
{
    char k[16];
    redisReply *f = fields("dlq_origin", "weft:events", "type", "x", NULL);
    for (int i = 1; i < DLQ_FIELDS_MAX; i++) {
        snprintf(k, sizeof(k), "f%d", i);
        add_field(f, k, "v");
    }
    struct dlq_info in;
    dlq_inspect(&keys, f, &in);
    cr_assert_null(in.not_requeueable, "exactly %d fields", DLQ_FIELDS_MAX);
    add_field(f, "one-more", "v");
    dlq_inspect(&keys, f, &in);
    cr_assert_str_eq(in.not_requeueable, "it has too many fields");
    fields_free(f);

    f = fields("dlq_origin", "weft:events", "dlq_truncated", "1", "type", "x",
               NULL);
    dlq_inspect(&keys, f, &in);
    cr_assert(in.truncated);
    cr_assert_not_null(in.not_requeueable);
    fields_free(f);
}

Test(dlq, entries_of_the_earlier_format_are_still_read, .init = setup)
{
    /* A worker's: queue, entry, reason beside the job's fields. */
    redisReply *f =
        fields("queue", "default", "entry", "1-1", "run", "r1", "step", "s",
               "reason", "bad signature", "body", "x", "sig", "00", NULL);
    struct dlq_info in;
    dlq_inspect(&keys, f, &in);
    cr_assert(in.legacy);
    cr_assert_eq(in.kind, DLQ_JOB);
    cr_assert_str_eq(in.origin, "weft:q:default");
    cr_assert_str_eq(in.reason, "bad signature");
    cr_assert_null(in.not_requeueable);
    const char **argv;
    size_t *lens;
    int nk, ac;
    cr_assert_eq(
        dlq_move_argv("weft:dlq", &in, "2-2", f, &nk, &ac, &argv, &lens), 0);
    cr_assert_eq(ac, 3 + 8, "run, step, body, sig go back");
    weft_free(argv);
    weft_free(lens);
    fields_free(f);
    /* A scheduler's, without its message. */
    f = fields("source", "events", "entry", "1-2", "run", "r", "reason",
               "unknown event type", NULL);
    dlq_inspect(&keys, f, &in);
    cr_assert_eq(in.kind, DLQ_EVENT);
    cr_assert_str_eq(in.not_requeueable, "it does not carry the event's type");
    fields_free(f);
    f = fields("reason", "x", NULL);
    dlq_inspect(&keys, f, &in);
    cr_assert_eq(in.kind, DLQ_UNKNOWN);
    cr_assert_str_eq(in.not_requeueable, "its origin is unknown");
    fields_free(f);
}

Test(dlq, meta_fields_and_ids, .init = setup)
{
    cr_assert(dlq_meta_field("dlq_reason", 10, false));
    cr_assert_not(dlq_meta_field("reason", 6, false));
    cr_assert(dlq_meta_field("reason", 6, true));
    cr_assert_not(dlq_meta_field("dlq", 3, false));
    cr_assert_eq(dlq_id_ms("1714567891234-7"), 1714567891234);
    cr_assert_eq(dlq_id_ms("x-1"), -1);
    cr_assert_eq(dlq_id_ms(""), -1);
    cr_assert_eq(dlq_id_ms(NULL), -1);
    struct dlq_info in;
    dlq_inspect(&keys, NULL, &in);
    cr_assert_not_null(in.not_requeueable);
    cr_assert_str_eq(dlq_kind_name(DLQ_EVENT), "event");
}
