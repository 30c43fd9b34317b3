/* bench_load.c - load+validate time and peak memory of big workflows.
 *
 * Generates workflows of 1k, 10k and 100k noop steps as YAML text in
 * memory, in three shapes:
 *  - chain:  s0 <- s1 <- s2 ... (each step depends on the previous one);
 *  - fanout: s0, then N-2 steps that depend on s0, then one join step
 *            that depends on all of them;
 *  - random: each step depends on up to 3 distinct earlier steps chosen
 *            by a fixed-seed generator (the same DAG on every run).
 * For each, it prints the YAML size, the median wall time of 5 runs of
 * wf_load_buffer (parse, validate, order, canonical JSON, SHA-256), the
 * median time libyaml's event parser alone takes over the same text (the
 * floor of any libyaml-based loader; it shows how loaded the machine is)
 * and the peak RSS (getrusage ru_maxrss). Every size runs in its own forked
 * child so the peak of a large size does not mask a smaller one; the child's
 * peak includes the generated text.
 *
 * Usage: bench_load [MAX_STEPS]   (default 100000)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "alloc.h"
#include "buf.h"
#include "diag.h"
#include "num.h"
#include "wfdef.h"

/* Runs per measurement; the median is printed. */
#define BENCH_RUNS 5
/* Generated text is bounded like any buffer. */
#define BENCH_MAX_TEXT (256u << 20)

enum shape { SHAPE_CHAIN, SHAPE_FANOUT, SHAPE_RANDOM };
static const char *const shape_names[] = {"chain", "fanout", "random"};

struct result {
    size_t bytes;
    double median_s;
    double yaml_only_s; /* median of libyaml's event parser alone */
    long max_rss_kb;
    int rc;
};

/* xorshift64: a fixed, portable sequence for the random DAG. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static int gen(enum shape shape, uint32_t n, struct buf *b)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    int rc =
        buf_printf(b, "name: bench-%s-%u\nsteps:\n", shape_names[shape], n);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = buf_printf(b, "  - id: s%u\n    type: noop\n", i);
        if (rc || i == 0)
            continue;
        switch (shape) {
        case SHAPE_CHAIN:
            rc = buf_printf(b, "    dependencies: [s%u]\n", i - 1);
            break;
        case SHAPE_FANOUT:
            if (i < n - 1) {
                rc = buf_append_str(b, "    dependencies: [s0]\n");
                break;
            }
            rc = buf_append_str(b, "    dependencies: [");
            for (uint32_t j = 1; rc == 0 && j < n - 1; j++)
                rc = buf_printf(b, "%ss%u", j > 1 ? ", " : "", j);
            if (rc == 0)
                rc = buf_append_str(b, "]\n");
            break;
        case SHAPE_RANDOM: {
            uint32_t d[3];
            uint32_t k = 0;
            for (int t = 0; t < 3; t++) {
                uint32_t c = (uint32_t)(rng_next(&seed) % i);
                bool dup = false;
                for (uint32_t j = 0; j < k; j++)
                    dup = dup || d[j] == c;
                if (!dup)
                    d[k++] = c;
            }
            rc = buf_append_str(b, "    dependencies: [");
            for (uint32_t j = 0; rc == 0 && j < k; j++)
                rc = buf_printf(b, "%ss%u", j ? ", " : "", d[j]);
            if (rc == 0)
                rc = buf_append_str(b, "]\n");
            break;
        }
        }
    }
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs libyaml's event parser over text and discards the events. */
static int yaml_events_only(const char *text, size_t len)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int rc = 0, done = 0;
    if (!yaml_parser_initialize(&p))
        return -1;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = -1;
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

/* Runs in the child: generate, load BENCH_RUNS times, report. */
static void measure(enum shape shape, uint32_t n, struct result *r)
{
    struct buf b;
    double t[BENCH_RUNS];
    buf_init(&b, BENCH_MAX_TEXT);
    memset(r, 0, sizeof(*r));
    r->rc = gen(shape, n, &b);
    r->bytes = b.len;
    for (int i = 0; r->rc == 0 && i < BENCH_RUNS; i++) {
        struct diag d;
        struct wf *wf = NULL;
        diag_init(&d, "bench");
        double t0 = now_s();
        r->rc = wf_load_buffer(b.data, b.len, NULL, &wf, &d);
        t[i] = now_s() - t0;
        if (r->rc != 0)
            diag_print(&d, stderr);
        wf_free(wf);
        diag_deinit(&d);
    }
    if (r->rc == 0) {
        qsort(t, BENCH_RUNS, sizeof(t[0]), cmp_double);
        r->median_s = t[BENCH_RUNS / 2];
    }
    for (int i = 0; r->rc == 0 && i < BENCH_RUNS; i++) {
        double t0 = now_s();
        r->rc = yaml_events_only(b.data, b.len);
        t[i] = now_s() - t0;
    }
    if (r->rc == 0) {
        qsort(t, BENCH_RUNS, sizeof(t[0]), cmp_double);
        r->yaml_only_s = t[BENCH_RUNS / 2];
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->max_rss_kb = ru.ru_maxrss;
    buf_deinit(&b);
}

static int run_forked(enum shape shape, uint32_t n, struct result *r)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        measure(shape, n, r);
        ssize_t w = write(fds[1], r, sizeof(*r));
        _exit(w == (ssize_t)sizeof(*r) ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], r, sizeof(*r));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return got == (ssize_t)sizeof(*r) && WIFEXITED(status) &&
                   WEXITSTATUS(status) == 0
               ? 0
               : -1;
}

int main(int argc, char **argv)
{
    int64_t max = 100000;
    if (argc > 1 &&
        num_parse_i64(argv[1], strlen(argv[1]), 1, WF_MAX_STEPS, &max) != 0) {
        fprintf(stderr, "usage: bench_load [MAX_STEPS <= %d]\n", WF_MAX_STEPS);
        return 2;
    }
    weft_alloc_init();
    printf("%-7s %8s %8s %10s %8s %13s %12s\n", "shape", "steps", "yaml_MB",
           "load_ms", "us/step", "libyaml_ms", "peak_rss_MB");
    for (int s = 0; s <= SHAPE_RANDOM; s++) {
        for (uint32_t n = 1000; n <= (uint32_t)max; n *= 10) {
            struct result r;
            if (run_forked((enum shape)s, n, &r) != 0 || r.rc != 0) {
                printf("%-7s %8u failed (rc %d)\n", shape_names[s], n, r.rc);
                continue;
            }
            printf("%-7s %8u %8.2f %10.1f %8.2f %13.1f %12.1f\n",
                   shape_names[s], n, (double)r.bytes / (1024.0 * 1024.0),
                   r.median_s * 1e3, r.median_s * 1e6 / n, r.yaml_only_s * 1e3,
                   (double)r.max_rss_kb / 1024.0);
            fflush(stdout);
        }
    }
    return 0;
}
