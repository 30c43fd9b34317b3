/* jsondump.c - compact JSON text of a jansson value (jsondump.h). */
#include "jsondump.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

int jsondump_string(struct buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson */
    int rc = buf_append_char(out, '"');
    size_t run = 0; /* start of the bytes not yet written */
    for (size_t i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        rc = buf_append(out, s + run, i - run);
        if (rc == 0)
            rc = buf_append(out, esc, n);
        run = i + 1;
    }
    if (rc == 0)
        rc = buf_append(out, s + run, len - run);
    return rc ? rc : buf_append_char(out, '"');
}

static int put_integer(struct buf *out, json_int_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    /* Negate in unsigned arithmetic: INT64_MIN has no positive twin. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        *--p = '-';
    return buf_append(out, p, (size_t)(tmp + sizeof(tmp) - p));
}

static int put_real(struct buf *out, double d)
{
    char tmp[40];
    int n = snprintf(tmp, sizeof(tmp), "%.17g", d);
    if (n <= 0 || (size_t)n >= sizeof(tmp) - 2)
        return WEFT_EINVAL;
    /* As jansson: no '+' and no leading zeros in the exponent. */
    char *e = strchr(tmp, 'e');
    if (e != NULL) {
        char *from = e + 1, *to = e + 1;
        if (*from == '-')
            from++, to++;
        else if (*from == '+')
            from++;
        while (*from == '0' && from[1] != '\0')
            from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(tmp);
    }
    /* Keep it a real for the reader, as jansson does. */
    if (strpbrk(tmp, ".eE") == NULL) {
        memcpy(tmp + n, ".0", 3);
        n += 2;
    }
    return buf_append(out, tmp, (size_t)n);
}

static int put(const json_t *v, struct buf *out, int depth)
{
    if (depth > JSONDUMP_DEPTH_MAX)
        return WEFT_ELIMIT;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        int rc = buf_append_char(out, '{');
        int first = 1;
        json_object_foreach((json_t *)v, k, m)
        {
            if (rc == 0 && !first)
                rc = buf_append_char(out, ',');
            if (rc == 0)
                rc = jsondump_string(out, k, strlen(k));
            if (rc == 0)
                rc = buf_append_char(out, ':');
            if (rc == 0)
                rc = put(m, out, depth + 1);
            if (rc)
                return rc;
            first = 0;
        }
        return rc ? rc : buf_append_char(out, '}');
    }
    case JSON_ARRAY: {
        int rc = buf_append_char(out, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (i > 0)
                rc = buf_append_char(out, ',');
            if (rc == 0)
                rc = put(json_array_get(v, i), out, depth + 1);
        }
        return rc ? rc : buf_append_char(out, ']');
    }
    case JSON_STRING:
        return jsondump_string(out, json_string_value(v),
                               json_string_length(v));
    case JSON_INTEGER:
        return put_integer(out, json_integer_value(v));
    case JSON_REAL:
        return put_real(out, json_real_value(v));
    case JSON_TRUE:
        return buf_append(out, "true", 4);
    case JSON_FALSE:
        return buf_append(out, "false", 5);
    case JSON_NULL:
        return buf_append(out, "null", 4);
    }
    return WEFT_EINVAL;
}

int jsondump(const json_t *v, struct buf *out)
{
    return v == NULL ? WEFT_EINVAL : put(v, out, 0);
}

char *jsondump_str(const json_t *v, size_t *len)
{
    struct buf b;
    buf_init(&b, SIZE_MAX - 1);
    if (jsondump(v, &b) != 0) {
        buf_deinit(&b);
        return NULL;
    }
    return buf_steal(&b, len);
}
