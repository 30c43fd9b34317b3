/* fuzz_wire.c - libFuzzer target for the msgpack body decoders.
 *
 * Feeds the input to wire_decode, wire_job_decode and wire_result_decode.
 * Besides "no crash, no leak, no overread", it checks two properties:
 *  - what a decoder accepts, its encoder writes, and encoding is stable:
 *    encode(decode(encode(x))) == encode(x) byte for byte (json_equal
 *    cannot serve: it compares object keys as C strings);
 *  - decoding again with an allocation failure injected (at a point
 *    derived from the input) answers 0 or WEFT_ENOMEM, nothing else.
 * A broken property aborts, which libFuzzer reports as a crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Allocation to fail on the second pass: spread over the first 64. */
static unsigned long fail_point(const uint8_t *data, size_t size)
{
    unsigned long h = size;
    for (size_t i = 0; i < size && i < 16; i++)
        h = h * 31 + data[i];
    return 1 + h % 64;
}

static void fuzz_generic(const uint8_t *data, size_t size)
{
    json_t *v;
    if (wire_decode(data, size, &v, NULL) != 0)
        return;
    char *a;
    size_t alen;
    int rc = wire_encode(v, &a, &alen);
    /* float32 re-encoded as float64 may grow past WIRE_MAX_BODY. */
    check(rc == 0 || rc == WEFT_ELIMIT);
    if (rc == 0) {
        json_t *back;
        char *b;
        size_t blen;
        check(wire_decode(a, alen, &back, NULL) == 0);
        check(wire_encode(back, &b, &blen) == 0);
        check(same_bytes(a, alen, b, blen));
        weft_free(b);
        json_decref(back);
        weft_free(a);
    }
    json_decref(v);

    weft_alloc_fail_after(fail_point(data, size));
    rc = wire_decode(data, size, &v, NULL);
    weft_alloc_fail_reset();
    check(rc == 0 || rc == WEFT_ENOMEM);
    if (rc == 0)
        json_decref(v);
}

static void fuzz_job(const uint8_t *data, size_t size)
{
    struct wire_job j;
    struct wire_job back;
    char *a;
    char *b;
    size_t alen;
    size_t blen;
    if (wire_job_decode(data, size, &j, NULL) != 0)
        return;
    int rc = wire_job_encode(&j, &a, &alen);
    check(rc == 0 || rc == WEFT_ELIMIT);
    if (rc == 0) {
        check(wire_job_decode(a, alen, &back, NULL) == 0);
        check(wire_job_encode(&back, &b, &blen) == 0);
        check(same_bytes(a, alen, b, blen));
        weft_free(b);
        wire_job_deinit(&back);
        weft_free(a);
    }
    wire_job_deinit(&j);

    weft_alloc_fail_after(fail_point(data, size));
    rc = wire_job_decode(data, size, &j, NULL);
    weft_alloc_fail_reset();
    check(rc == 0 || rc == WEFT_ENOMEM);
    wire_job_deinit(&j);
}

static void fuzz_result(const uint8_t *data, size_t size)
{
    struct wire_result r;
    struct wire_result back;
    char *a;
    char *b;
    size_t alen;
    size_t blen;
    if (wire_result_decode(data, size, &r, NULL) != 0)
        return;
    int rc = wire_result_encode(&r, &a, &alen);
    check(rc == 0 || rc == WEFT_ELIMIT);
    if (rc == 0) {
        check(wire_result_decode(a, alen, &back, NULL) == 0);
        check(wire_result_encode(&back, &b, &blen) == 0);
        check(same_bytes(a, alen, b, blen));
        weft_free(b);
        wire_result_deinit(&back);
        weft_free(a);
    }
    wire_result_deinit(&r);

    weft_alloc_fail_after(fail_point(data, size));
    rc = wire_result_decode(data, size, &r, NULL);
    weft_alloc_fail_reset();
    check(rc == 0 || rc == WEFT_ENOMEM);
    wire_result_deinit(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        weft_alloc_init();
        ready = true;
    }
    fuzz_generic(data, size);
    fuzz_job(data, size);
    fuzz_result(data, size);
    return 0;
}
