/* runs.c - submitting and following runs for integration tests. */
#include "runs.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "diag.h"
#include "wfdef.h"

int runs_submit(redisContext *c, const char *yaml, const char *task,
                const char *run)
{
    return runs_submit_traced(c, yaml, task, run, NULL);
}

int runs_submit_traced(redisContext *c, const char *yaml, const char *task,
                       const char *run, const char *trace)
{
    struct diag d;
    diag_init(&d, "test.yml");
    struct wf *wf = NULL;
    int rc = wf_load_buffer(yaml, strlen(yaml), "test", &wf, &d);
    if (rc)
        diag_print(&d, stderr);
    diag_deinit(&d);
    if (rc)
        return -1;
    redisReply *a = redisCommand(c, "SET weft:def:%s %b NX", wf->digest,
                                 wf->canonical, (size_t)wf->canonical_len);
    redisReply *b = NULL;
    if (a && trace)
        b = redisCommand(c,
                         "XADD weft:tasks * run %s digest %s workflow %s "
                         "task %s trace %s",
                         run, wf->digest, wf->name, task, trace);
    else if (a)
        b = redisCommand(c,
                         "XADD weft:tasks * run %s digest %s workflow %s "
                         "task %s",
                         run, wf->digest, wf->name, task);
    rc = a && b && b->type == REDIS_REPLY_STRING ? 0 : -1;
    if (rc)
        fprintf(stderr, "submit failed: %s\n", c->errstr);
    freeReplyObject(a);
    freeReplyObject(b);
    wf_free(wf);
    return rc;
}

static const char *field_of(const redisReply *f, const char *name)
{
    for (size_t k = 0; k + 1 < f->elements; k += 2)
        if (f->element[k]->type == REDIS_REPLY_STRING &&
            strcmp(f->element[k]->str, name) == 0 &&
            f->element[k + 1]->type == REDIS_REPLY_STRING)
            return f->element[k + 1]->str;
    return NULL;
}

const char *runs_wait(redisContext *c, const char *run, int timeout_s,
                      char *out, size_t size)
{
    char last[64] = "0";
    time_t end = time(NULL) + timeout_s;
    snprintf(out, size, "timeout");
    while (time(NULL) < end) {
        redisReply *r = redisCommand(c,
                                     "XREAD COUNT 100 BLOCK 1000 STREAMS "
                                     "weft:run:%s:history %s",
                                     run, last);
        if (r == NULL) {
            snprintf(out, size, "error");
            return out;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0; i < entries->elements; i++) {
                redisReply *e = entries->element[i];
                snprintf(last, sizeof(last), "%s", e->element[0]->str);
                const char *type = field_of(e->element[1], "type");
                const char *st = field_of(e->element[1], "status");
                if (type && st && strcmp(type, "run") == 0 &&
                    strcmp(st, "running") != 0) {
                    snprintf(out, size, "%s", st);
                    freeReplyObject(r);
                    return out;
                }
            }
        }
        freeReplyObject(r);
    }
    return out;
}
