/* wire.c - msgpack bodies of jobs and results (docs/protocol.md).
 *
 * Encoding drives msgpack-c's packer, writing through a callback into a
 * bounded struct buf, so every byte is allocated by weft_realloc (failure
 * injection reaches it) and no body larger than WIRE_MAX_BODY is produced.
 *
 * Decoding is our own reader, because msgpack_unpack allocates whatever a
 * header declares before it looks at the bytes behind it (FIELD-NOTES: 28
 * hostile bytes ask for 128 GiB). The reader checks every declared length
 * against the bytes that remain before it allocates anything: a str of n
 * bytes needs n bytes, an array of n values at least n bytes, a map of n
 * entries at least 2n bytes. It also bounds nesting (WIRE_MAX_DEPTH), the
 * number of values (WIRE_MAX_VALUES) and the body (WIRE_MAX_BODY), and
 * rejects what JSON cannot hold: bin and ext types, non-string or duplicate
 * map keys, invalid UTF-8, NaN and infinities, integers above INT64_MAX.
 *
 * The encoder enforces the same limits, so what we write we can read.
 */
#include "wire.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "alloc.h"
#include "buf.h"
#include "keys.h"

/* Longest map key quoted in an error message. */
#define WIRE_ERR_KEY_MAX 40

/* ---- UTF-8 ---- */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. U+0000 is valid; fields that become C strings reject it
 * separately. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more;
        uint32_t cp;
        uint32_t min;
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (more > n - i - 1)
            return false;
        for (size_t j = 1; j <= more; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += more + 1;
    }
    return true;
}

/* ---- encoder ---- */

struct enc {
    struct buf out;
    msgpack_packer pk;
    int rc;        /* first error from the write callback */
    size_t values; /* msgpack objects written, map keys included */
};

static int enc_write(void *data, const char *p, size_t n)
{
    struct enc *e = data;
    int rc = buf_append(&e->out, p, n);
    if (rc != 0) {
        if (e->rc == 0)
            e->rc = rc;
        return -1;
    }
    return 0;
}

static void enc_init(struct enc *e)
{
    buf_init(&e->out, WIRE_MAX_BODY);
    msgpack_packer_init(&e->pk, e, enc_write);
    e->rc = 0;
    e->values = 0;
}

/* Maps a packer failure to the write callback's code. */
static int enc_status(const struct enc *e, int packer_rc)
{
    if (packer_rc == 0)
        return 0;
    return e->rc != 0 ? e->rc : WEFT_ENOMEM;
}

/* Counts one more value against WIRE_MAX_VALUES. */
static int enc_count(struct enc *e)
{
    if (e->values >= WIRE_MAX_VALUES)
        return WEFT_ELIMIT;
    e->values++;
    return 0;
}

static int enc_str(struct enc *e, const char *s, size_t len)
{
    int rc = enc_count(e);
    if (rc != 0)
        return rc;
    if (len > WIRE_MAX_BODY)
        return WEFT_ELIMIT;
    rc = msgpack_pack_str(&e->pk, len);
    if (rc == 0)
        rc = msgpack_pack_str_body(&e->pk, s, len);
    return enc_status(e, rc);
}

static int enc_cstr(struct enc *e, const char *s)
{
    return enc_str(e, s, strlen(s));
}

static int enc_i64(struct enc *e, int64_t v)
{
    int rc = enc_count(e);
    if (rc != 0)
        return rc;
    return enc_status(e, msgpack_pack_int64(&e->pk, v));
}

/* Opens a map or array of n entries at nesting depth (1 = outermost). */
static int enc_open(struct enc *e, bool map, size_t n, unsigned depth)
{
    if (depth > WIRE_MAX_DEPTH)
        return WEFT_ELIMIT;
    if (n > UINT32_MAX)
        return WEFT_ELIMIT;
    int rc = enc_count(e);
    if (rc != 0)
        return rc;
    rc = map ? msgpack_pack_map(&e->pk, n) : msgpack_pack_array(&e->pk, n);
    return enc_status(e, rc);
}

/* depth: containers already open around v. */
static int enc_value(struct enc *e, const json_t *v, unsigned depth)
{
    int rc;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        rc = enc_open(e, true, json_object_size(v), depth + 1);
        void *it = json_object_iter((json_t *)v);
        while (rc == 0 && it != NULL) {
            rc = enc_str(e, json_object_iter_key(it),
                         json_object_iter_key_len(it));
            if (rc == 0)
                rc = enc_value(e, json_object_iter_value(it), depth + 1);
            it = json_object_iter_next((json_t *)v, it);
        }
        return rc;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        rc = enc_open(e, false, n, depth + 1);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = enc_value(e, json_array_get(v, i), depth + 1);
        return rc;
    }
    case JSON_STRING:
        return enc_str(e, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return enc_i64(e, json_integer_value(v));
    case JSON_REAL:
        if ((rc = enc_count(e)) != 0)
            return rc;
        return enc_status(e, msgpack_pack_double(&e->pk, json_real_value(v)));
    case JSON_TRUE:
        if ((rc = enc_count(e)) != 0)
            return rc;
        return enc_status(e, msgpack_pack_true(&e->pk));
    case JSON_FALSE:
        if ((rc = enc_count(e)) != 0)
            return rc;
        return enc_status(e, msgpack_pack_false(&e->pk));
    case JSON_NULL:
        if ((rc = enc_count(e)) != 0)
            return rc;
        return enc_status(e, msgpack_pack_nil(&e->pk));
    }
    return WEFT_EINVAL;
}

/* Hands the bytes to the caller on success, frees them on failure. */
static int enc_finish(struct enc *e, int rc, char **out, size_t *len)
{
    if (rc == 0) {
        size_t n;
        char *p = buf_steal(&e->out, &n);
        if (p == NULL) {
            rc = WEFT_ENOMEM;
        } else {
            *out = p;
            *len = n;
        }
    }
    buf_deinit(&e->out);
    return rc;
}

int wire_encode(const json_t *v, char **out, size_t *len)
{
    struct enc e;
    if (v == NULL)
        return WEFT_EINVAL;
    enc_init(&e);
    return enc_finish(&e, enc_value(&e, v, 0), out, len);
}

/* ---- decoder ---- */

struct dec {
    const unsigned char *p;
    size_t len;
    size_t pos;    /* next byte to read */
    size_t values; /* msgpack objects read, map keys included */
    struct weft_error *err;
};

static int dec_error(const struct dec *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int dec_error(const struct dec *d, int code, const char *fmt, ...)
{
    char msg[WEFT_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (code == WEFT_ENOMEM)
        return weft_error_set(d->err, code, 0, 0, "msgpack: %s", msg);
    return weft_error_set(d->err, code, 0, 0, "msgpack at byte %zu: %s", d->pos,
                          msg);
}

static size_t dec_left(const struct dec *d)
{
    return d->len - d->pos;
}

/* Checks that n more bytes are present; what names them for the message. */
static int dec_need(const struct dec *d, size_t n, const char *what)
{
    if (n > dec_left(d))
        return dec_error(d, WEFT_EINVAL,
                         "truncated: %s needs %zu bytes, %zu remain", what, n,
                         dec_left(d));
    return 0;
}

/* Big-endian unsigned integer of n (1, 2, 4 or 8) bytes; the caller has
 * checked that they are present. */
static uint64_t dec_be(struct dec *d, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | d->p[d->pos + i];
    d->pos += n;
    return v;
}

/* Reads the n-byte length or value that follows a type byte. */
static int dec_uint(struct dec *d, size_t n, const char *what, uint64_t *v)
{
    int rc = dec_need(d, n, what);
    if (rc != 0)
        return rc;
    *v = dec_be(d, n);
    return 0;
}

static int dec_count(struct dec *d)
{
    if (d->values >= WIRE_MAX_VALUES)
        return dec_error(d, WEFT_ELIMIT, "more than %d values",
                         WIRE_MAX_VALUES);
    d->values++;
    return 0;
}

/* Kinds of msgpack type byte that the reader treats alike. */
enum dec_kind {
    DEC_INT,    /* value already in *n (fixints) or in 1..8 more bytes */
    DEC_UINT64, /* uint 64: may not fit int64 */
    DEC_NEGINT, /* fixint or int8..int64, sign-extended */
    DEC_STR,
    DEC_ARRAY,
    DEC_MAP,
    DEC_FLOAT32,
    DEC_FLOAT64,
    DEC_NIL,
    DEC_TRUE,
    DEC_FALSE,
    DEC_BIN,
    DEC_EXT,
    DEC_NEVER, /* 0xc1, reserved */
};

/* Classifies type byte b. *inline_n is the value or length packed into a
 * fix* byte; *len_bytes is how many bytes of length (or value) follow. */
static enum dec_kind dec_classify(unsigned b, uint64_t *inline_n,
                                  size_t *len_bytes)
{
    *inline_n = 0;
    *len_bytes = 0;
    if (b <= 0x7f) {
        *inline_n = b;
        return DEC_INT;
    }
    if (b <= 0x8f) {
        *inline_n = b & 0x0f;
        return DEC_MAP;
    }
    if (b <= 0x9f) {
        *inline_n = b & 0x0f;
        return DEC_ARRAY;
    }
    if (b <= 0xbf) {
        *inline_n = b & 0x1f;
        return DEC_STR;
    }
    if (b >= 0xe0)
        return DEC_NEGINT;
    switch (b) {
    case 0xc0:
        return DEC_NIL;
    case 0xc2:
        return DEC_FALSE;
    case 0xc3:
        return DEC_TRUE;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return DEC_BIN;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return DEC_EXT;
    case 0xca:
        return DEC_FLOAT32;
    case 0xcb:
        return DEC_FLOAT64;
    case 0xcc:
    case 0xcd:
    case 0xce:
        *len_bytes = (size_t)1 << (b - 0xcc);
        return DEC_INT;
    case 0xcf:
        *len_bytes = 8;
        return DEC_UINT64;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        *len_bytes = (size_t)1 << (b - 0xd0);
        return DEC_NEGINT;
    case 0xd9:
    case 0xda:
    case 0xdb:
        *len_bytes = (size_t)1 << (b - 0xd9);
        return DEC_STR;
    case 0xdc:
    case 0xdd:
        *len_bytes = (size_t)2 << (b - 0xdc);
        return DEC_ARRAY;
    case 0xde:
    case 0xdf:
        *len_bytes = (size_t)2 << (b - 0xde);
        return DEC_MAP;
    }
    return DEC_NEVER;
}

/* Reads a str of n bytes (header already consumed) and checks it. */
static int dec_str_body(struct dec *d, uint64_t n, const unsigned char **s)
{
    if (n > dec_left(d))
        return dec_error(d, WEFT_EINVAL, "str declares %llu bytes, %zu remain",
                         (unsigned long long)n, dec_left(d));
    if (!utf8_valid(d->p + d->pos, (size_t)n))
        return dec_error(d, WEFT_EINVAL, "str is not valid UTF-8");
    *s = d->p + d->pos;
    d->pos += (size_t)n;
    return 0;
}

static int dec_value(struct dec *d, unsigned depth, json_t **out);

static int dec_array(struct dec *d, uint64_t n, unsigned depth, json_t **out)
{
    /* Every value takes at least one byte. */
    if (n > dec_left(d))
        return dec_error(d, WEFT_EINVAL,
                         "array declares %llu values, %zu bytes remain",
                         (unsigned long long)n, dec_left(d));
    json_t *a = json_array();
    if (a == NULL)
        return dec_error(d, WEFT_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        json_t *v;
        int rc = dec_value(d, depth, &v);
        if (rc != 0) {
            json_decref(a);
            return rc;
        }
        if (json_array_append_new(a, v) != 0) {
            json_decref(a);
            return dec_error(d, WEFT_ENOMEM, "out of memory");
        }
    }
    *out = a;
    return 0;
}

static int dec_map(struct dec *d, uint64_t n, unsigned depth, json_t **out)
{
    /* Every entry takes at least two bytes: a fixstr key and a value. */
    if (n > dec_left(d) / 2)
        return dec_error(d, WEFT_EINVAL,
                         "map declares %llu entries, %zu bytes remain",
                         (unsigned long long)n, dec_left(d));
    json_t *m = json_object();
    if (m == NULL)
        return dec_error(d, WEFT_ENOMEM, "out of memory");
    int rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        uint64_t klen;
        size_t lb;
        const unsigned char *key = NULL;
        if ((rc = dec_need(d, 1, "map key")) != 0)
            break;
        unsigned b = d->p[d->pos];
        if (dec_classify(b, &klen, &lb) != DEC_STR) {
            rc = dec_error(d, WEFT_EINVAL,
                           "map key must be a str (type byte 0x%02x)", b);
            break;
        }
        if ((rc = dec_count(d)) != 0)
            break;
        d->pos++;
        if (lb > 0 && (rc = dec_uint(d, lb, "str length", &klen)) != 0)
            break;
        size_t at = d->pos;
        if ((rc = dec_str_body(d, klen, &key)) != 0)
            break;
        if (json_object_getn(m, (const char *)key, (size_t)klen) != NULL) {
            d->pos = at;
            rc = dec_error(d, WEFT_EINVAL, "duplicate map key '%.*s'",
                           klen > WIRE_ERR_KEY_MAX ? WIRE_ERR_KEY_MAX
                                                   : (int)klen,
                           (const char *)key);
            break;
        }
        json_t *v;
        if ((rc = dec_value(d, depth, &v)) != 0)
            break;
        if (json_object_setn_new_nocheck(m, (const char *)key, (size_t)klen,
                                         v) != 0)
            rc = dec_error(d, WEFT_ENOMEM, "out of memory");
    }
    if (rc != 0) {
        json_decref(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* Reads one value. depth: containers already open around it. */
static int dec_value(struct dec *d, unsigned depth, json_t **out)
{
    int rc = dec_need(d, 1, "value");
    if (rc != 0)
        return rc;
    if ((rc = dec_count(d)) != 0)
        return rc;
    unsigned b = d->p[d->pos];
    uint64_t n;
    size_t lb;
    enum dec_kind kind = dec_classify(b, &n, &lb);
    switch (kind) {
    case DEC_BIN:
        return dec_error(d, WEFT_EINVAL,
                         "bin type 0x%02x is not accepted (strings are str)",
                         b);
    case DEC_EXT:
        return dec_error(d, WEFT_EINVAL, "ext type 0x%02x is not accepted", b);
    case DEC_NEVER:
        return dec_error(d, WEFT_EINVAL, "type byte 0x%02x is never used", b);
    default:
        break;
    }
    d->pos++;
    json_t *v = NULL;
    switch (kind) {
    case DEC_INT:
    case DEC_UINT64:
        if (lb > 0 && (rc = dec_uint(d, lb, "integer", &n)) != 0)
            return rc;
        if (n > INT64_MAX) {
            d->pos -= lb + 1;
            return dec_error(d, WEFT_EINVAL,
                             "integer %llu is above the int64 range",
                             (unsigned long long)n);
        }
        v = json_integer((json_int_t)n);
        break;
    case DEC_NEGINT: {
        int64_t x;
        if (lb == 0) {
            x = (int64_t)b - 256; /* negative fixint 0xe0..0xff */
        } else {
            if ((rc = dec_uint(d, lb, "integer", &n)) != 0)
                return rc;
            /* Two's complement of lb bytes, without implementation-defined
             * unsigned-to-signed conversions. */
            uint64_t mask = UINT64_MAX >> (64 - 8 * lb);
            uint64_t sign = (uint64_t)1 << (8 * lb - 1);
            if (n & sign)
                x = -(int64_t)(~n & mask) - 1;
            else
                x = (int64_t)n;
        }
        v = json_integer(x);
        break;
    }
    case DEC_FLOAT32:
    case DEC_FLOAT64: {
        size_t size = kind == DEC_FLOAT32 ? 4 : 8;
        if ((rc = dec_uint(d, size, "float", &n)) != 0)
            return rc;
        double x;
        if (size == 4) {
            uint32_t bits = (uint32_t)n;
            float f;
            memcpy(&f, &bits, sizeof(f));
            x = f;
        } else {
            memcpy(&x, &n, sizeof(x));
        }
        if (!isfinite(x)) {
            d->pos -= size + 1;
            return dec_error(d, WEFT_EINVAL,
                             "float is NaN or infinite (JSON has neither)");
        }
        v = json_real(x);
        break;
    }
    case DEC_NIL:
        v = json_null();
        break;
    case DEC_TRUE:
        v = json_true();
        break;
    case DEC_FALSE:
        v = json_false();
        break;
    case DEC_STR: {
        const unsigned char *s = NULL;
        if (lb > 0 && (rc = dec_uint(d, lb, "str length", &n)) != 0)
            return rc;
        if ((rc = dec_str_body(d, n, &s)) != 0)
            return rc;
        v = json_stringn_nocheck((const char *)s, (size_t)n);
        break;
    }
    case DEC_ARRAY:
    case DEC_MAP:
        if (depth + 1 > WIRE_MAX_DEPTH) {
            d->pos--;
            return dec_error(d, WEFT_ELIMIT, "nested deeper than %d",
                             WIRE_MAX_DEPTH);
        }
        if (lb > 0 && (rc = dec_uint(d, lb, "length", &n)) != 0)
            return rc;
        if (kind == DEC_ARRAY)
            return dec_array(d, n, depth + 1, out);
        return dec_map(d, n, depth + 1, out);
    default:
        return dec_error(d, WEFT_EINVAL, "type byte 0x%02x is never used", b);
    }
    if (v == NULL)
        return dec_error(d, WEFT_ENOMEM, "out of memory");
    *out = v;
    return 0;
}

int wire_decode(const void *buf, size_t len, json_t **out,
                struct weft_error *err)
{
    struct dec d = {buf, len, 0, 0, err};
    if (len > WIRE_MAX_BODY)
        return weft_error_set(err, WEFT_ELIMIT, 0, 0,
                              "msgpack body of %zu bytes is larger than "
                              "%u",
                              len, WIRE_MAX_BODY);
    if (len == 0 || buf == NULL)
        return weft_error_set(err, WEFT_EINVAL, 0, 0, "msgpack body is empty");
    json_t *v;
    int rc = dec_value(&d, 0, &v);
    if (rc != 0)
        return rc;
    if (d.pos != len) {
        json_decref(v);
        return dec_error(&d, WEFT_EINVAL, "%zu trailing bytes after the value",
                         len - d.pos);
    }
    *out = v;
    return 0;
}

/* ---- field helpers shared by jobs and results ---- */

/* Fails naming the field: "<what> field '<name>' must be <rule>". */
static int field_error(struct weft_error *err, const char *what,
                       const char *name, const char *rule)
{
    return weft_error_set(err, WEFT_EINVAL, 0, 0, "%s field '%s' %s", what,
                          name, rule);
}

enum field_rule {
    FIELD_TEXT, /* any str without NUL */
    FIELD_ID,   /* keys_valid_id() */
};

/* Copies string field name of obj into *out (NULL when absent). */
static int field_str(const json_t *obj, const char *what, const char *name,
                     bool required, enum field_rule rule, char **out,
                     struct weft_error *err)
{
    const json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (v == NULL)
        return required ? field_error(err, what, name, "is missing") : 0;
    if (!json_is_string(v))
        return field_error(err, what, name, "must be a string");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (rule == FIELD_ID && !keys_valid_id(s, len))
        return field_error(err, what, name,
                           "must be 1..128 characters of [A-Za-z0-9_.-]");
    if (memchr(s, '\0', len) != NULL)
        return field_error(err, what, name, "must not contain NUL");
    *out = weft_strndup(s, len);
    if (*out == NULL)
        return weft_error_set(err, WEFT_ENOMEM, 0, 0, "out of memory");
    return 0;
}

/* Integer field in [min, max]; *out untouched when absent and optional.
 * rule describes the range ("a positive integer"). */
static int field_int(const json_t *obj, const char *what, const char *name,
                     bool required, int64_t min, int64_t max, const char *rule,
                     int64_t *out, struct weft_error *err)
{
    const json_t *v = json_object_get(obj, name);
    if (v == NULL)
        return required ? field_error(err, what, name, "is missing") : 0;
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max)
        return weft_error_set(err, WEFT_EINVAL, 0, 0,
                              "%s field '%s' must be %s", what, name, rule);
    *out = json_integer_value(v);
    return 0;
}

/* Takes a reference to field name if it has type type (NULL when absent). */
static int field_json(const json_t *obj, const char *what, const char *name,
                      int type, json_t **out, struct weft_error *err)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (type >= 0 && json_typeof(v) != (json_type)type)
        return field_error(err, what, name,
                           type == JSON_OBJECT ? "must be a map"
                                               : "must be an array");
    *out = json_incref(v);
    return 0;
}

/* Decodes a body that must be a map carrying v == WIRE_VERSION. */
static int decode_envelope(const void *buf, size_t len, const char *what,
                           json_t **out, struct weft_error *err)
{
    json_t *root;
    int rc = wire_decode(buf, len, &root, err);
    if (rc != 0)
        return rc;
    int64_t version = 0;
    if (!json_is_object(root)) {
        rc = weft_error_set(err, WEFT_EINVAL, 0, 0, "%s body must be a map",
                            what);
    } else {
        rc = field_int(root, what, "v", true, WIRE_VERSION, WIRE_VERSION,
                       "1 (the protocol version)", &version, err);
    }
    if (rc != 0) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* Encoder side of the same rules, so we never write what we reject. */
static bool text_ok(const char *s)
{
    return utf8_valid((const unsigned char *)s, strlen(s));
}

static bool id_ok(const char *s)
{
    return s != NULL && keys_valid_id(s, strnlen(s, KEYS_ID_MAX + 1));
}

static int enc_key_str(struct enc *e, const char *key, const char *value)
{
    int rc = enc_cstr(e, key);
    return rc != 0 ? rc : enc_cstr(e, value);
}

static int enc_key_i64(struct enc *e, const char *key, int64_t value)
{
    int rc = enc_cstr(e, key);
    return rc != 0 ? rc : enc_i64(e, value);
}

static int enc_key_json(struct enc *e, const char *key, const json_t *value)
{
    int rc = enc_cstr(e, key);
    return rc != 0 ? rc : enc_value(e, value, 1);
}

/* ---- jobs ---- */

static bool job_valid(const struct wire_job *j)
{
    return id_ok(j->run) && id_ok(j->step) && id_ok(j->type) &&
           id_ok(j->queue) && j->attempt > 0 &&
           j->timeout_ms <= (uint64_t)INT64_MAX &&
           j->queue_timeout_ms <= (uint64_t)INT64_MAX &&
           (j->persona == NULL || id_ok(j->persona)) &&
           (j->name == NULL || text_ok(j->name)) &&
           (j->trace == NULL || text_ok(j->trace)) &&
           (j->params == NULL || json_is_object(j->params)) &&
           (j->git == NULL || json_is_object(j->git)) &&
           (j->context == NULL || json_is_object(j->context));
}

int wire_job_encode(const struct wire_job *job, char **out, size_t *len)
{
    if (job == NULL || !job_valid(job))
        return WEFT_EINVAL;
    /* v, run, step, type, queue, attempt, timeout_ms + optional fields. */
    size_t n = 7 + (job->queue_timeout_ms > 0) + (job->name != NULL) +
               (job->persona != NULL) + (job->trace != NULL) +
               (job->params != NULL) + (job->git != NULL) +
               (job->context != NULL);
    struct enc e;
    enc_init(&e);
    int rc = enc_open(&e, true, n, 1);
    if (rc == 0)
        rc = enc_key_i64(&e, "v", WIRE_VERSION);
    if (rc == 0)
        rc = enc_key_str(&e, "run", job->run);
    if (rc == 0)
        rc = enc_key_str(&e, "step", job->step);
    if (rc == 0 && job->name != NULL)
        rc = enc_key_str(&e, "name", job->name);
    if (rc == 0)
        rc = enc_key_str(&e, "type", job->type);
    if (rc == 0 && job->persona != NULL)
        rc = enc_key_str(&e, "persona", job->persona);
    if (rc == 0)
        rc = enc_key_str(&e, "queue", job->queue);
    if (rc == 0)
        rc = enc_key_i64(&e, "attempt", job->attempt);
    if (rc == 0)
        rc = enc_key_i64(&e, "timeout_ms", (int64_t)job->timeout_ms);
    if (rc == 0 && job->queue_timeout_ms > 0)
        rc =
            enc_key_i64(&e, "queue_timeout_ms", (int64_t)job->queue_timeout_ms);
    if (rc == 0 && job->trace != NULL)
        rc = enc_key_str(&e, "trace", job->trace);
    if (rc == 0 && job->params != NULL)
        rc = enc_key_json(&e, "params", job->params);
    if (rc == 0 && job->git != NULL)
        rc = enc_key_json(&e, "git", job->git);
    if (rc == 0 && job->context != NULL)
        rc = enc_key_json(&e, "context", job->context);
    return enc_finish(&e, rc, out, len);
}

int wire_job_decode(const void *buf, size_t len, struct wire_job *job,
                    struct weft_error *err)
{
    static const char what[] = "job";
    struct wire_job j = {0};
    json_t *root;
    memset(job, 0, sizeof(*job));
    int rc = decode_envelope(buf, len, what, &root, err);
    if (rc != 0)
        return rc;
    int64_t attempt = 0;
    int64_t timeout = 0, queue_timeout = 0;
    if ((rc = field_str(root, what, "run", true, FIELD_ID, &j.run, err)) ||
        (rc = field_str(root, what, "step", true, FIELD_ID, &j.step, err)) ||
        (rc = field_str(root, what, "name", false, FIELD_TEXT, &j.name, err)) ||
        (rc = field_str(root, what, "type", true, FIELD_ID, &j.type, err)) ||
        (rc = field_str(root, what, "persona", false, FIELD_ID, &j.persona,
                        err)) ||
        (rc = field_str(root, what, "queue", true, FIELD_ID, &j.queue, err)) ||
        (rc = field_int(root, what, "attempt", true, 1, UINT32_MAX,
                        "a positive integer (at most 4294967295)", &attempt,
                        err)) ||
        (rc = field_int(root, what, "timeout_ms", false, 0, INT64_MAX,
                        "a non-negative integer", &timeout, err)) ||
        (rc = field_int(root, what, "queue_timeout_ms", false, 0, INT64_MAX,
                        "a non-negative integer", &queue_timeout, err)) ||
        (rc = field_str(root, what, "trace", false, FIELD_TEXT, &j.trace,
                        err)) ||
        (rc = field_json(root, what, "params", JSON_OBJECT, &j.params, err)) ||
        (rc = field_json(root, what, "git", JSON_OBJECT, &j.git, err)) ||
        (rc =
             field_json(root, what, "context", JSON_OBJECT, &j.context, err))) {
        wire_job_deinit(&j);
        json_decref(root);
        return rc;
    }
    json_decref(root);
    j.attempt = (uint32_t)attempt;
    j.timeout_ms = (uint64_t)timeout;
    j.queue_timeout_ms = (uint64_t)queue_timeout;
    *job = j;
    return 0;
}

void wire_job_deinit(struct wire_job *job)
{
    if (job == NULL)
        return;
    weft_free(job->run);
    weft_free(job->step);
    weft_free(job->name);
    weft_free(job->type);
    weft_free(job->persona);
    weft_free(job->queue);
    weft_free(job->trace);
    json_decref(job->params);
    json_decref(job->git);
    json_decref(job->context);
    memset(job, 0, sizeof(*job));
}

/* ---- results ---- */

static const char *const status_names[] = {
    [WIRE_SUCCESS] = "success",     [WIRE_ERROR] = "error",
    [WIRE_FATAL] = "fatal",         [WIRE_TIMEOUT] = "timeout",
    [WIRE_CANCELLED] = "cancelled", [WIRE_INVALID] = "invalid",
};
#define WIRE_STATUS_COUNT (sizeof(status_names) / sizeof(status_names[0]))

const char *wire_status_name(enum wire_status s)
{
    if ((unsigned)s >= WIRE_STATUS_COUNT)
        return "unknown";
    return status_names[s];
}

int wire_status_parse(const char *s, size_t len, enum wire_status *out)
{
    if (s == NULL)
        return WEFT_EINVAL;
    for (size_t i = 0; i < WIRE_STATUS_COUNT; i++) {
        if (strlen(status_names[i]) == len &&
            memcmp(status_names[i], s, len) == 0) {
            *out = (enum wire_status)i;
            return 0;
        }
    }
    return WEFT_EINVAL;
}

static bool result_valid(const struct wire_result *r)
{
    return (unsigned)r->status < WIRE_STATUS_COUNT &&
           (r->verdict == NULL || text_ok(r->verdict)) &&
           (r->message == NULL || text_ok(r->message)) &&
           (r->state == NULL || json_is_object(r->state)) &&
           (r->artifacts == NULL || json_is_array(r->artifacts)) &&
           r->started_ms >= 0 && r->finished_ms >= 0;
}

int wire_result_encode(const struct wire_result *r, char **out, size_t *len)
{
    if (r == NULL || !result_valid(r))
        return WEFT_EINVAL;
    /* v, status, started, finished + optional fields. */
    size_t n = 4 + (r->verdict != NULL) + (r->result != NULL) +
               (r->state != NULL) + (r->artifacts != NULL) +
               (r->message != NULL);
    struct enc e;
    enc_init(&e);
    int rc = enc_open(&e, true, n, 1);
    if (rc == 0)
        rc = enc_key_i64(&e, "v", WIRE_VERSION);
    if (rc == 0)
        rc = enc_key_str(&e, "status", status_names[r->status]);
    if (rc == 0 && r->verdict != NULL)
        rc = enc_key_str(&e, "verdict", r->verdict);
    if (rc == 0 && r->result != NULL)
        rc = enc_key_json(&e, "result", r->result);
    if (rc == 0 && r->state != NULL)
        rc = enc_key_json(&e, "state", r->state);
    if (rc == 0 && r->artifacts != NULL)
        rc = enc_key_json(&e, "artifacts", r->artifacts);
    if (rc == 0 && r->message != NULL)
        rc = enc_key_str(&e, "message", r->message);
    if (rc == 0)
        rc = enc_key_i64(&e, "started", r->started_ms);
    if (rc == 0)
        rc = enc_key_i64(&e, "finished", r->finished_ms);
    return enc_finish(&e, rc, out, len);
}

int wire_result_decode(const void *buf, size_t len, struct wire_result *r,
                       struct weft_error *err)
{
    static const char what[] = "result";
    struct wire_result x = {0};
    json_t *root;
    memset(r, 0, sizeof(*r));
    int rc = decode_envelope(buf, len, what, &root, err);
    if (rc != 0)
        return rc;
    const json_t *status = json_object_get(root, "status");
    if (status == NULL) {
        rc = field_error(err, what, "status", "is missing");
    } else if (!json_is_string(status) ||
               wire_status_parse(json_string_value(status),
                                 json_string_length(status), &x.status) != 0) {
        rc = field_error(err, what, "status",
                         "must be one of success, error, fatal, timeout, "
                         "cancelled, invalid");
    }
    if (rc ||
        (rc = field_str(root, what, "verdict", false, FIELD_TEXT, &x.verdict,
                        err)) ||
        (rc = field_json(root, what, "result", -1, &x.result, err)) ||
        (rc = field_json(root, what, "state", JSON_OBJECT, &x.state, err)) ||
        (rc = field_json(root, what, "artifacts", JSON_ARRAY, &x.artifacts,
                         err)) ||
        (rc = field_str(root, what, "message", false, FIELD_TEXT, &x.message,
                        err)) ||
        (rc = field_int(root, what, "started", false, 0, INT64_MAX,
                        "a non-negative integer (ms)", &x.started_ms, err)) ||
        (rc = field_int(root, what, "finished", false, 0, INT64_MAX,
                        "a non-negative integer (ms)", &x.finished_ms, err))) {
        wire_result_deinit(&x);
        json_decref(root);
        return rc;
    }
    json_decref(root);
    *r = x;
    return 0;
}

void wire_result_deinit(struct wire_result *r)
{
    if (r == NULL)
        return;
    weft_free(r->verdict);
    json_decref(r->result);
    json_decref(r->state);
    json_decref(r->artifacts);
    weft_free(r->message);
    memset(r, 0, sizeof(*r));
}
