/* jsval.c - JavaScript value semantics on UTF-8 text and jansson values.
 *
 * The evaluator (expr.c) and the template renderer (tmpl.c) need the
 * conversions of ECMAScript: Number::toString, StringToNumber, UTF-16 code
 * unit order and lengths, Array#join and JSON.stringify. Strings here are
 * UTF-8 (jansson's), so UTF-16 positions are computed by walking them.
 * Every function is pure; output goes to bounded buffers (buf.h).
 */
#include "expr_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "num.h"

/* Digits needed to round-trip any double (DBL_DECIMAL_DIG). */
#define JSVAL_MAX_DIGITS 17

static size_t put_str(char *buf, size_t size, const char *s)
{
    size_t n = strlen(s);
    if (size == 0)
        return 0;
    if (n >= size)
        n = size - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return n;
}

/* Shortest digits that round-trip d (> 0, finite): digits[0..*k) and the
 * decimal exponent n such that d = 0.digits * 10^n. */
static void shortest_digits(double d, char *digits, int *k, int *n)
{
    char tmp[40];
    for (int p = 1; p <= JSVAL_MAX_DIGITS; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    /* tmp is "d[.ddd]e[+-]xx". */
    const char *q = tmp;
    int nd = 0;
    for (; *q != '\0' && *q != 'e'; q++) {
        if (*q != '.')
            digits[nd++] = *q;
    }
    int exp = 0;
    int neg = 0;
    if (*q == 'e') {
        q++;
        if (*q == '-' || *q == '+')
            neg = *q++ == '-';
        for (; *q >= '0' && *q <= '9'; q++)
            exp = exp * 10 + (*q - '0');
    }
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    *k = nd;
    *n = (neg ? -exp : exp) + 1;
}

size_t expr_format_number(double d, char *buf, size_t size)
{
    if (isnan(d))
        return put_str(buf, size, "NaN");
    if (d == 0)
        return put_str(buf, size, "0");
    if (isinf(d))
        return put_str(buf, size, d < 0 ? "-Infinity" : "Infinity");

    char digits[JSVAL_MAX_DIGITS + 1];
    char out[48];
    size_t o = 0;
    int k, n;
    if (d < 0) {
        out[o++] = '-';
        d = -d;
    }
    shortest_digits(d, digits, &k, &n);
    /* ECMAScript Number::toString, steps for radix 10. */
    if (k <= n && n <= 21) {
        memcpy(out + o, digits, (size_t)k);
        o += (size_t)k;
        for (int i = k; i < n; i++)
            out[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(out + o, digits, (size_t)n);
        o += (size_t)n;
        out[o++] = '.';
        memcpy(out + o, digits + n, (size_t)(k - n));
        o += (size_t)(k - n);
    } else if (-6 < n && n <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -n; i++)
            out[o++] = '0';
        memcpy(out + o, digits, (size_t)k);
        o += (size_t)k;
    } else {
        int e = n - 1;
        out[o++] = digits[0];
        if (k > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, (size_t)(k - 1));
            o += (size_t)(k - 1);
        }
        out[o++] = 'e';
        out[o++] = e < 0 ? '-' : '+';
        if (e < 0)
            e = -e;
        char ebuf[8];
        int en = 0;
        do {
            ebuf[en++] = (char)('0' + e % 10);
            e /= 10;
        } while (e > 0);
        while (en > 0)
            out[o++] = ebuf[--en];
    }
    out[o] = '\0';
    return put_str(buf, size, out);
}

json_t *expr_number_to_json(double d)
{
    /* 2^53: past it not every integer is a double. */
    if (isnan(d) || isinf(d))
        return json_null();
    if (d == trunc(d) && fabs(d) < 9007199254740992.0)
        return json_integer((json_int_t)d);
    return json_real(d);
}

uint32_t expr_utf8_decode(const char *s, size_t len, size_t *n)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t cp;
    size_t need;
    if (u[0] < 0x80) {
        *n = 1;
        return u[0];
    }
    if ((u[0] & 0xE0) == 0xC0) {
        cp = u[0] & 0x1Fu;
        need = 2;
    } else if ((u[0] & 0xF0) == 0xE0) {
        cp = u[0] & 0x0Fu;
        need = 3;
    } else if ((u[0] & 0xF8) == 0xF0) {
        cp = u[0] & 0x07u;
        need = 4;
    } else {
        *n = 1;
        return 0xFFFD;
    }
    if (need > len) {
        *n = 1;
        return 0xFFFD;
    }
    for (size_t i = 1; i < need; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *n = 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (u[i] & 0x3Fu);
    }
    *n = need;
    return cp;
}

size_t expr_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool expr_utf8_valid(const char *s, size_t len, size_t *bad)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = u[i];
        size_t need;
        uint32_t min, cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            need = 2;
            min = 0x80;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            need = 3;
            min = 0x800;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            need = 4;
            min = 0x10000;
            cp = c & 0x07u;
        } else {
            goto invalid;
        }
        if (need > len - i)
            goto invalid;
        for (size_t j = 1; j < need; j++) {
            if ((u[i + j] & 0xC0) != 0x80)
                goto invalid;
            cp = (cp << 6) | (u[i + j] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto invalid;
        i += need;
    }
    return true;
invalid:
    if (bad)
        *bad = i;
    return false;
}

size_t expr_utf16_length(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80)
            n += c >= 0xF0 ? 2 : 1;
    }
    return n;
}

size_t expr_utf16_offset(const char *s, size_t len, size_t units, bool *exact)
{
    size_t i = 0, u = 0;
    while (i < len && u < units) {
        size_t n;
        uint32_t cp = expr_utf8_decode(s + i, len - i, &n);
        i += n;
        u += cp >= 0x10000 ? 2 : 1;
    }
    *exact = u == units || (i == len && u <= units);
    return i;
}

/* The first UTF-16 code unit of cp. */
static uint32_t first_unit(uint32_t cp)
{
    return cp < 0x10000 ? cp : 0xD800 + ((cp - 0x10000) >> 10);
}

int expr_string_compare(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i = 0;
    while (i < alen && i < blen && a[i] == b[i])
        i++;
    if (i == alen || i == blen)
        return (i < alen) - (i < blen);
    /* Back up to the start of the character that differs: UTF-8 byte
     * order is code point order, which differs from UTF-16 order only
     * between supplementary characters and U+E000..U+FFFF. */
    while (i > 0 && (((unsigned char)a[i] & 0xC0) == 0x80 ||
                     ((unsigned char)b[i] & 0xC0) == 0x80))
        i--;
    size_t n;
    uint32_t ca = expr_utf8_decode(a + i, alen - i, &n);
    uint32_t cb = expr_utf8_decode(b + i, blen - i, &n);
    uint32_t ua = first_unit(ca), ub = first_unit(cb);
    if (ua != ub)
        return ua < ub ? -1 : 1;
    return ca < cb ? -1 : ca > cb;
}

/* WhiteSpace and LineTerminator of ECMAScript (what String#trim strips). */
bool expr_is_js_space(uint32_t cp)
{
    switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
    case 0xFEFF:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

double expr_radix_value(const char *digits, size_t n, int shift)
{
    /* Keep the leading bits in m (at least 61 of them once it is full),
     * count the rest in exp and remember whether any of them was set.
     * exp stops growing past any double's range: the result is then
     * Infinity anyway. */
    uint64_t m = 0;
    int exp = 0;
    bool sticky = false;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)num_hex_digit(digits[i]);
        if (exp == 0 && (m >> (64 - shift)) == 0) {
            m = (m << shift) | d;
        } else {
            exp = exp > 4096 ? exp : exp + shift;
            sticky = sticky || d != 0;
        }
    }
    int bits = 0;
    for (uint64_t t = m; t != 0; t >>= 1)
        bits++;
    if (bits <= 53)
        return ldexp((double)m, exp);
    int drop = bits - 53;
    uint64_t mant = m >> drop;
    uint64_t rem = m & ((UINT64_C(1) << drop) - 1);
    uint64_t half = UINT64_C(1) << (drop - 1);
    if (rem > half || (rem == half && (sticky || (mant & 1))))
        mant++;
    return ldexp((double)mant, exp + drop);
}

/* 0x/0o/0b digits of a string: NaN unless there are digits and every byte
 * is one. */
static double radix_string_value(const char *s, size_t n, int shift)
{
    if (n == 0)
        return NAN;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)num_hex_digit(s[i]) >= 1u << shift)
            return NAN;
    }
    return expr_radix_value(s, n, shift);
}

double expr_string_to_number(const char *s, size_t len)
{
    size_t i = 0, j = len, n;
    while (i < j) {
        uint32_t cp = expr_utf8_decode(s + i, j - i, &n);
        if (!expr_is_js_space(cp))
            break;
        i += n;
    }
    while (j > i) {
        size_t k = j - 1;
        while (k > i && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        uint32_t cp = expr_utf8_decode(s + k, j - k, &n);
        if (!expr_is_js_space(cp) || k + n != j)
            break;
        j = k;
    }
    const char *p = s + i;
    n = j - i;
    if (n == 0)
        return 0;
    if (n >= 2 && p[0] == '0') {
        switch (p[1]) {
        case 'x':
        case 'X':
            return radix_string_value(p + 2, n - 2, 4);
        case 'o':
        case 'O':
            return radix_string_value(p + 2, n - 2, 3);
        case 'b':
        case 'B':
            return radix_string_value(p + 2, n - 2, 1);
        default:
            break;
        }
    }
    size_t k = 0;
    if (p[0] == '+' || p[0] == '-')
        k = 1;
    if (n - k == 8 && memcmp(p + k, "Infinity", 8) == 0)
        return p[0] == '-' ? -INFINITY : INFINITY;
    /* StrDecimalLiteral: digits [. digits] [e [+-] digits], one digit at
     * least before the exponent. */
    size_t mant = 0;
    while (k < n && p[k] >= '0' && p[k] <= '9') {
        k++;
        mant++;
    }
    if (k < n && p[k] == '.') {
        k++;
        while (k < n && p[k] >= '0' && p[k] <= '9') {
            k++;
            mant++;
        }
    }
    if (mant == 0)
        return NAN;
    if (k < n && (p[k] == 'e' || p[k] == 'E')) {
        k++;
        if (k < n && (p[k] == '+' || p[k] == '-'))
            k++;
        size_t ed = 0;
        while (k < n && p[k] >= '0' && p[k] <= '9') {
            k++;
            ed++;
        }
        if (ed == 0)
            return NAN;
    }
    if (k != n)
        return NAN;
    /* Validated: strtod reads exactly these bytes, since what follows is
     * whitespace or the terminating NUL. */
    return strtod(p, NULL);
}

int expr_append_json_string(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    int rc = buf_append_char(b, '"');
    size_t run = 0;
    for (size_t i = 0; rc == 0 && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = '\0';
            esc = u;
            break;
        }
        if (rc == 0)
            rc = buf_append_str(b, esc);
    }
    if (rc == 0)
        rc = buf_append(b, s + run, len - run);
    if (rc == 0)
        rc = buf_append_char(b, '"');
    return rc;
}

static int append_number(struct buf *b, double d)
{
    char num[32];
    size_t n = expr_format_number(d, num, sizeof(num));
    return buf_append(b, num, n);
}

static double json_num(const json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v)
                              : json_real_value(v);
}

static int append_json(struct buf *b, const json_t *v, int depth)
{
    int rc = 0;
    if (depth > EXPR_MAX_JSON_DEPTH)
        return WEFT_ELIMIT;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        void *it = json_object_iter((json_t *)v);
        rc = buf_append_char(b, '{');
        for (bool first = true; rc == 0 && it != NULL; first = false) {
            const char *key = json_object_iter_key(it);
            size_t klen = json_object_iter_key_len(it);
            if (!first)
                rc = buf_append_char(b, ',');
            if (rc == 0)
                rc = expr_append_json_string(b, key, klen);
            if (rc == 0)
                rc = buf_append_char(b, ':');
            if (rc == 0)
                rc = append_json(b, json_object_iter_value(it), depth + 1);
            it = json_object_iter_next((json_t *)v, it);
        }
        return rc ? rc : buf_append_char(b, '}');
    }
    case JSON_ARRAY:
        rc = buf_append_char(b, '[');
        for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
            if (i > 0)
                rc = buf_append_char(b, ',');
            if (rc == 0)
                rc = append_json(b, json_array_get(v, i), depth + 1);
        }
        return rc ? rc : buf_append_char(b, ']');
    case JSON_STRING:
        return expr_append_json_string(b, json_string_value(v),
                                       json_string_length(v));
    case JSON_INTEGER:
    case JSON_REAL:
        return append_number(b, json_num(v));
    case JSON_TRUE:
        return buf_append_str(b, "true");
    case JSON_FALSE:
        return buf_append_str(b, "false");
    case JSON_NULL:
        return buf_append_str(b, "null");
    }
    return WEFT_EINVAL;
}

int expr_append_json(struct buf *b, const json_t *v)
{
    return append_json(b, v, 0);
}

static int append_js_string(struct buf *b, const json_t *v, int depth)
{
    int rc = 0;
    if (depth > EXPR_MAX_JSON_DEPTH)
        return WEFT_ELIMIT;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return buf_append_str(b, "[object Object]");
    case JSON_ARRAY:
        /* Array#join(","): null elements are empty. */
        for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
            const json_t *el = json_array_get(v, i);
            if (i > 0)
                rc = buf_append_char(b, ',');
            if (rc == 0 && !json_is_null(el))
                rc = append_js_string(b, el, depth + 1);
        }
        return rc;
    case JSON_STRING:
        return buf_append(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
    case JSON_REAL:
        return append_number(b, json_num(v));
    case JSON_TRUE:
        return buf_append_str(b, "true");
    case JSON_FALSE:
        return buf_append_str(b, "false");
    case JSON_NULL:
        return buf_append_str(b, "null");
    }
    return WEFT_EINVAL;
}

int expr_append_js_string(struct buf *b, const json_t *v)
{
    return append_js_string(b, v, 0);
}

int expr_append_display(struct buf *b, const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_array(v) || json_is_object(v))
        return expr_append_json(b, v);
    return expr_append_js_string(b, v);
}

int expr_to_display_string(const json_t *v, char **out, size_t *outlen)
{
    struct buf b;
    size_t n;
    buf_init(&b, EXPR_MAX_STRING);
    int rc = expr_append_display(&b, v);
    /* An empty append makes sure the data is allocated and terminated
     * before buf_steal hands it over. */
    if (rc == 0)
        rc = buf_append(&b, "", 0);
    if (rc == 0) {
        char *s = buf_steal(&b, &n);
        if (s == NULL) {
            rc = WEFT_ENOMEM;
        } else {
            *out = s;
            *outlen = n;
        }
    }
    buf_deinit(&b);
    return rc;
}
