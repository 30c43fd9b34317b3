/* expr.c - parser and evaluator of the JavaScript expression subset.
 *
 * A hand-written lexer feeds a recursive-descent parser (precedence
 * climbing for binary operators) that builds an immutable tree; a
 * tree-walking evaluator computes JavaScript values over a jansson scope.
 *
 * Bounds: the source is at most EXPR_MAX_SOURCE bytes, so the tree has at
 * most that many nodes; the tree is at most EXPR_MAX_DEPTH high (parser
 * and evaluator recursion follow the height); strings built by evaluation
 * stay within EXPR_MAX_STRING; there are no loops in the language, so an
 * evaluation visits each node once, and the string operations are linear
 * (substring search is Knuth-Morris-Pratt).
 *
 * Evaluation works on struct val, a small JS value: undefined, null,
 * boolean and number inline, strings/arrays/objects as jansson references.
 */
#include "expr.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "expr_int.h"
#include "num.h"

/* Longest name or key quoted in an error message; the message itself is
 * bounded by WEFT_ERROR_MSG_MAX. */
#define EXPR_MSG_QUOTE 40
/* Methods take at most two arguments (search and position); further
 * arguments are evaluated, as JS does, and ignored. */
#define EXPR_METHOD_MAX_ARGS 2
/* 2^32 - 1: array indices are below it (ECMAScript array index). */
#define EXPR_MAX_ARRAY_INDEX 4294967295.0

enum tok {
    TK_EOF,
    TK_NUM,
    TK_STR,
    TK_NAME,
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACK,
    TK_RBRACK,
    TK_DOT,
    TK_QDOT,
    TK_COMMA,
    TK_QUESTION,
    TK_COLON,
    TK_NOT,
    TK_PLUS,
    TK_MINUS,
    TK_STAR,
    TK_SLASH,
    TK_PERCENT,
    TK_LT,
    TK_LE,
    TK_GT,
    TK_GE,
    TK_EQ,
    TK_NE,
    TK_SEQ,
    TK_SNE,
    TK_AND,
    TK_OR,
    TK_NULLISH,
};

enum vkind { VK_UNDEF, VK_NULL, VK_BOOL, VK_NUM, VK_STR, VK_ARR, VK_OBJ };

/* A JS value. ref is an owned reference: the string, array or object, or
 * for a number read from the scope that JSON number (so its exact JSON
 * type survives a pass-through); NULL otherwise. */
struct val {
    enum vkind kind;
    bool b;
    double num;
    json_t *ref;
};

enum node_kind {
    NK_LIT,
    NK_IDENT,
    NK_ARRAY,
    NK_MEMBER, /* a.name, a?.name */
    NK_INDEX,  /* a[b], a?.[b] */
    NK_CALL,   /* a(args) */
    NK_UNARY,
    NK_BINARY,
    NK_LOGICAL, /* && || ?? */
    NK_COND,
};

struct node {
    enum node_kind kind;
    enum tok op;   /* UNARY, BINARY, LOGICAL */
    bool optional; /* MEMBER/INDEX reached through ?. */
    bool paren;    /* parenthesized: ends an optional chain */
    bool lenient;  /* IDENT of a template path: absent is undefined */
    int height;    /* of the subtree, parentheses counted; 1 for leaf */
    size_t pos;    /* source byte of the name or operator (columns) */
    size_t start;  /* source bytes [start, end) the node spans */
    size_t end;
    const char *name; /* IDENT, MEMBER: points into expr->src */
    size_t name_len;
    struct val lit; /* LIT: the value (ref owned) */
    struct node *a, *b, *c;
    struct node **list; /* ARRAY elements, CALL arguments */
    size_t count;
};

struct expr {
    char *src; /* NUL-terminated copy of the source */
    size_t len;
    struct node *root;
};

/* ------------------------------------------------------------------ */
/* Tree */

static void node_free(struct node *n)
{
    if (n == NULL)
        return;
    json_decref(n->lit.ref);
    node_free(n->a);
    node_free(n->b);
    node_free(n->c);
    for (size_t i = 0; i < n->count; i++)
        node_free(n->list[i]);
    weft_free(n->list);
    weft_free(n);
}

void expr_free(struct expr *e)
{
    if (e == NULL)
        return;
    node_free(e->root);
    weft_free(e->src);
    weft_free(e);
}

const char *expr_source(const struct expr *e)
{
    return e->src;
}

static int foreach_root(const struct node *n, expr_root_cb fn, void *ud)
{
    int rc = 0;
    if (n == NULL)
        return 0;
    if (n->kind == NK_IDENT)
        return fn(ud, n->name, n->name_len, (int)n->pos + 1);
    if ((rc = foreach_root(n->a, fn, ud)) != 0)
        return rc;
    if ((rc = foreach_root(n->b, fn, ud)) != 0)
        return rc;
    if ((rc = foreach_root(n->c, fn, ud)) != 0)
        return rc;
    for (size_t i = 0; i < n->count; i++) {
        if ((rc = foreach_root(n->list[i], fn, ud)) != 0)
            return rc;
    }
    return 0;
}

int expr_foreach_root(const struct expr *e, expr_root_cb fn, void *ud)
{
    return foreach_root(e->root, fn, ud);
}

/* ------------------------------------------------------------------ */
/* Lexer */

struct parser {
    const char *src;
    size_t len;
    size_t pos; /* next byte to lex */
    enum tok tok;
    size_t tok_pos; /* first byte of the current token */
    size_t tok_len;
    double tok_num; /* TK_NUM */
    struct buf str; /* TK_STR, decoded */
    int depth;      /* nesting of parse_cond and unary operators */
    int rc;         /* first error, 0 while none */
    struct weft_error *err;
};

static void fail(struct parser *p, int code, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(struct parser *p, int code, size_t pos, const char *fmt, ...)
{
    char msg[WEFT_ERROR_MSG_MAX];
    va_list ap;
    if (p->rc != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->rc = code;
    weft_error_set(p->err, code, 1, (int)pos + 1, "%s", msg);
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '$';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || is_digit(c);
}

static bool at(const struct parser *p, size_t off, char c)
{
    return p->pos + off < p->len && p->src[p->pos + off] == c;
}

/* Reads digits of radix 2^shift (or 10 when shift is 0) with numeric
 * separators ('_' between two digits) into out, without the separators.
 * Returns the number of digits, or -1 after reporting an error. */
static long lex_digits(struct parser *p, int shift, char *out, size_t *o)
{
    long count = 0;
    int limit = shift ? 1 << shift : 10;
    while (p->pos < p->len) {
        char c = p->src[p->pos];
        int d = num_hex_digit(c);
        if (c == '_') {
            if (count == 0 || p->pos + 1 >= p->len ||
                num_hex_digit(p->src[p->pos + 1]) < 0 ||
                num_hex_digit(p->src[p->pos + 1]) >= limit) {
                fail(p, WEFT_EINVAL, p->pos, "invalid numeric separator");
                return -1;
            }
            p->pos++;
            continue;
        }
        if (d < 0 || d >= limit)
            break;
        out[(*o)++] = c;
        p->pos++;
        count++;
    }
    return count;
}

static void lex_number(struct parser *p)
{
    /* The literal, without separators, is shorter than the source. */
    char text[EXPR_MAX_SOURCE + 1];
    size_t o = 0;
    size_t start = p->pos;
    char c1 = p->pos + 1 < p->len ? p->src[p->pos + 1] : '\0';
    int shift = 0;
    if (p->src[p->pos] == '0') {
        if (c1 == 'x' || c1 == 'X')
            shift = 4;
        else if (c1 == 'o' || c1 == 'O')
            shift = 3;
        else if (c1 == 'b' || c1 == 'B')
            shift = 1;
        else if (is_digit(c1) || c1 == '_') {
            fail(p, WEFT_EINVAL, start,
                 "numbers with a leading zero (legacy octal) are not "
                 "supported");
            return;
        }
    }
    if (shift) {
        p->pos += 2;
        long n = lex_digits(p, shift, text, &o);
        if (n < 0)
            return;
        if (n == 0) {
            fail(p, WEFT_EINVAL, start, "missing digits in number");
            return;
        }
        p->tok_num = expr_radix_value(text, o, shift);
    } else {
        long n = 0;
        if (p->src[p->pos] != '.' && (n = lex_digits(p, 0, text, &o)) < 0)
            return;
        if (at(p, 0, '.')) {
            text[o++] = '.';
            p->pos++;
            if (at(p, 0, '_')) {
                fail(p, WEFT_EINVAL, p->pos, "invalid numeric separator");
                return;
            }
            long f = lex_digits(p, 0, text, &o);
            if (f < 0)
                return;
            n += f;
        }
        if (at(p, 0, 'e') || at(p, 0, 'E')) {
            text[o++] = 'e';
            p->pos++;
            if (at(p, 0, '+') || at(p, 0, '-'))
                text[o++] = p->src[p->pos++];
            long e = lex_digits(p, 0, text, &o);
            if (e < 0)
                return;
            if (e == 0) {
                fail(p, WEFT_EINVAL, start, "missing exponent in number");
                return;
            }
        }
        text[o] = '\0';
        p->tok_num = strtod(text, NULL);
    }
    if (p->pos < p->len && p->src[p->pos] == 'n') {
        fail(p, WEFT_EINVAL, start, "BigInt literals are not supported");
        return;
    }
    if (p->pos < p->len && is_ident_char(p->src[p->pos])) {
        fail(p, WEFT_EINVAL, p->pos,
             "identifier or number directly after a number");
        return;
    }
    p->tok = TK_NUM;
}

/* Reads 4 hex digits or {hex} of a \u escape; -1 after an error. */
static long lex_unicode_escape(struct parser *p, size_t esc)
{
    long cp = 0;
    if (at(p, 0, '{')) {
        size_t n = 0;
        p->pos++;
        while (p->pos < p->len && num_hex_digit(p->src[p->pos]) >= 0) {
            if (cp <= 0x10FFFF)
                cp = cp * 16 + num_hex_digit(p->src[p->pos]);
            p->pos++;
            n++;
        }
        if (n == 0 || !at(p, 0, '}') || cp > 0x10FFFF) {
            fail(p, WEFT_EINVAL, esc, "invalid Unicode escape sequence");
            return -1;
        }
        p->pos++;
        return cp;
    }
    for (int i = 0; i < 4; i++) {
        int d = p->pos < p->len ? num_hex_digit(p->src[p->pos]) : -1;
        if (d < 0) {
            fail(p, WEFT_EINVAL, esc, "invalid Unicode escape sequence");
            return -1;
        }
        cp = cp * 16 + d;
        p->pos++;
    }
    return cp;
}

/* One escape sequence after the backslash; appends its UTF-8 to p->str.
 * Returns 0 or -1 after an error. */
static int lex_escape(struct parser *p, size_t esc)
{
    char e = p->src[p->pos++];
    char u8[4];
    long cp;
    switch (e) {
    case 'n':
        return buf_append_char(&p->str, '\n');
    case 't':
        return buf_append_char(&p->str, '\t');
    case 'r':
        return buf_append_char(&p->str, '\r');
    case 'b':
        return buf_append_char(&p->str, '\b');
    case 'f':
        return buf_append_char(&p->str, '\f');
    case 'v':
        return buf_append_char(&p->str, '\v');
    case '\r':
        if (at(p, 0, '\n'))
            p->pos++;
        return 0; /* line continuation */
    case '\n':
        return 0;
    case '0':
        if (!(p->pos < p->len && is_digit(p->src[p->pos])))
            return buf_append_char(&p->str, '\0');
        /* fall through */
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        fail(p, WEFT_EINVAL, esc, "octal escape sequences are not supported");
        return -1;
    case 'x': {
        int h = p->pos < p->len ? num_hex_digit(p->src[p->pos]) : -1;
        int l = p->pos + 1 < p->len ? num_hex_digit(p->src[p->pos + 1]) : -1;
        if (h < 0 || l < 0) {
            fail(p, WEFT_EINVAL, esc, "invalid hexadecimal escape sequence");
            return -1;
        }
        p->pos += 2;
        cp = h * 16 + l;
        break;
    }
    case 'u':
        cp = lex_unicode_escape(p, esc);
        if (cp < 0)
            return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF && at(p, 0, '\\') && at(p, 1, 'u')) {
            size_t save = p->pos;
            p->pos += 2;
            long lo = lex_unicode_escape(p, save);
            if (lo < 0)
                return -1;
            if (lo >= 0xDC00 && lo <= 0xDFFF)
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else
                p->pos = save;
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            fail(p, WEFT_EINVAL, esc,
                 "lone surrogate escapes are not supported");
            return -1;
        }
        break;
    default:
        /* Any other character stands for itself (\' \" \\ \/ ...); the
         * rest of a multi-byte character follows as plain bytes. */
        return buf_append_char(&p->str, e);
    }
    return buf_append(&p->str, u8, expr_utf8_encode((uint32_t)cp, u8));
}

static void lex_string(struct parser *p)
{
    char q = p->src[p->pos];
    size_t start = p->pos++;
    buf_reset(&p->str);
    for (;;) {
        if (p->pos >= p->len || p->src[p->pos] == '\n' ||
            p->src[p->pos] == '\r') {
            fail(p, WEFT_EINVAL, start, "unterminated string");
            return;
        }
        char c = p->src[p->pos];
        int rc;
        if (c == q) {
            p->pos++;
            break;
        }
        if (c == '\\') {
            size_t esc = p->pos++;
            if (p->pos >= p->len) {
                fail(p, WEFT_EINVAL, start, "unterminated string");
                return;
            }
            rc = lex_escape(p, esc);
            if (p->rc != 0)
                return;
        } else {
            rc = buf_append_char(&p->str, c);
            p->pos++;
        }
        if (rc != 0) {
            fail(p, rc, start, "out of memory");
            return;
        }
    }
    p->tok = TK_STR;
}

/* Punctuators, longest first; msg set for those the subset rejects. */
static const struct punct {
    const char *text;
    enum tok tok;
    const char *msg;
} puncts[] = {
    {"===", TK_SEQ, NULL},
    {"!==", TK_SNE, NULL},
    {"...", TK_EOF, "spread syntax is not supported"},
    {"**=", TK_EOF, "assignment is not supported"},
    {"?\?=", TK_EOF, "assignment is not supported"},
    {"&&=", TK_EOF, "assignment is not supported"},
    {"||=", TK_EOF, "assignment is not supported"},
    {">>>", TK_EOF, "bitwise shift operators are not supported"},
    {"<<=", TK_EOF, "assignment is not supported"},
    {">>=", TK_EOF, "assignment is not supported"},
    {"==", TK_EQ, NULL},
    {"!=", TK_NE, NULL},
    {"<=", TK_LE, NULL},
    {">=", TK_GE, NULL},
    {"&&", TK_AND, NULL},
    {"||", TK_OR, NULL},
    {"?\?", TK_NULLISH, NULL},
    {"=>", TK_EOF, "arrow functions are not supported"},
    {"++", TK_EOF, "increment and decrement operators are not supported"},
    {"--", TK_EOF, "increment and decrement operators are not supported"},
    {"**", TK_EOF, "the exponentiation operator is not supported"},
    {"+=", TK_EOF, "assignment is not supported"},
    {"-=", TK_EOF, "assignment is not supported"},
    {"*=", TK_EOF, "assignment is not supported"},
    {"/=", TK_EOF, "assignment is not supported"},
    {"%=", TK_EOF, "assignment is not supported"},
    {"&=", TK_EOF, "assignment is not supported"},
    {"|=", TK_EOF, "assignment is not supported"},
    {"^=", TK_EOF, "assignment is not supported"},
    {"<<", TK_EOF, "bitwise shift operators are not supported"},
    {">>", TK_EOF, "bitwise shift operators are not supported"},
    {"//", TK_EOF, "comments are not supported"},
    {"/*", TK_EOF, "comments are not supported"},
    {"(", TK_LPAREN, NULL},
    {")", TK_RPAREN, NULL},
    {"[", TK_LBRACK, NULL},
    {"]", TK_RBRACK, NULL},
    {".", TK_DOT, NULL},
    {",", TK_COMMA, NULL},
    {"?", TK_QUESTION, NULL},
    {":", TK_COLON, NULL},
    {"!", TK_NOT, NULL},
    {"+", TK_PLUS, NULL},
    {"-", TK_MINUS, NULL},
    {"*", TK_STAR, NULL},
    {"/", TK_SLASH, NULL},
    {"%", TK_PERCENT, NULL},
    {"<", TK_LT, NULL},
    {">", TK_GT, NULL},
    {"=", TK_EOF, "assignment is not supported"},
    {"&", TK_EOF, "bitwise operators are not supported"},
    {"|", TK_EOF, "bitwise operators are not supported"},
    {"^", TK_EOF, "bitwise operators are not supported"},
    {"~", TK_EOF, "bitwise operators are not supported"},
    {"{", TK_EOF, "object literals and blocks are not supported"},
    {"}", TK_EOF, "unexpected token '}'"},
    {";", TK_EOF, "unexpected token ';': an expression has no statements"},
    {"`", TK_EOF, "template literals are not supported"},
    {"#", TK_EOF, "private names are not supported"},
};

/* Advances to the next token; on a lexical error p->rc is set and the
 * token is TK_EOF. */
static void next(struct parser *p)
{
    p->tok = TK_EOF;
    if (p->rc != 0)
        return;
    while (p->pos < p->len) {
        size_t n;
        uint32_t cp = expr_utf8_decode(p->src + p->pos, p->len - p->pos, &n);
        if (!expr_is_js_space(cp))
            break;
        p->pos += n;
    }
    p->tok_pos = p->pos;
    if (p->pos >= p->len) {
        p->tok_len = 0;
        return;
    }
    char c = p->src[p->pos];
    if (is_ident_start(c)) {
        while (p->pos < p->len && is_ident_char(p->src[p->pos]))
            p->pos++;
        p->tok = TK_NAME;
    } else if (is_digit(c) || (c == '.' && p->pos + 1 < p->len &&
                               is_digit(p->src[p->pos + 1]))) {
        lex_number(p);
    } else if (c == '\'' || c == '"') {
        lex_string(p);
    } else if (c == '?' && at(p, 1, '.') &&
               !(p->pos + 2 < p->len && is_digit(p->src[p->pos + 2]))) {
        /* "?." followed by a digit is "?" and a number: a?.5:1 */
        p->pos += 2;
        p->tok = TK_QDOT;
    } else {
        size_t i;
        for (i = 0; i < sizeof(puncts) / sizeof(puncts[0]); i++) {
            size_t n = strlen(puncts[i].text);
            if (n <= p->len - p->pos &&
                memcmp(p->src + p->pos, puncts[i].text, n) == 0)
                break;
        }
        if (i == sizeof(puncts) / sizeof(puncts[0])) {
            if ((unsigned char)c > 0x20 && (unsigned char)c < 0x7F)
                fail(p, WEFT_EINVAL, p->pos, "unexpected character '%c'", c);
            else
                fail(p, WEFT_EINVAL, p->pos,
                     "unexpected character (byte 0x%02x)", (unsigned char)c);
            return;
        }
        if (puncts[i].msg != NULL) {
            fail(p, WEFT_EINVAL, p->pos, "%s", puncts[i].msg);
            return;
        }
        p->pos += strlen(puncts[i].text);
        p->tok = puncts[i].tok;
    }
    if (p->rc != 0)
        p->tok = TK_EOF;
    p->tok_len = p->pos - p->tok_pos;
}

static bool tok_is(const struct parser *p, const char *word)
{
    size_t n = strlen(word);
    return p->tok == TK_NAME && p->tok_len == n &&
           memcmp(p->src + p->tok_pos, word, n) == 0;
}

static void *unexpected(struct parser *p)
{
    int n = (int)(p->tok_len < EXPR_MSG_QUOTE ? p->tok_len : EXPR_MSG_QUOTE);
    const char *t = p->src + p->tok_pos;
    switch (p->tok) {
    case TK_EOF:
        fail(p, WEFT_EINVAL, p->tok_pos, "unexpected end of expression");
        break;
    case TK_NUM:
        fail(p, WEFT_EINVAL, p->tok_pos, "unexpected number '%.*s'", n, t);
        break;
    case TK_STR:
        fail(p, WEFT_EINVAL, p->tok_pos, "unexpected string %.*s", n, t);
        break;
    case TK_NAME:
        fail(p, WEFT_EINVAL, p->tok_pos, "unexpected identifier '%.*s'", n, t);
        break;
    default:
        fail(p, WEFT_EINVAL, p->tok_pos, "unexpected token '%.*s'", n, t);
        break;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Parser */

static struct node *parse_cond(struct parser *p);

static struct node *new_node(struct parser *p, enum node_kind kind, size_t pos,
                             size_t start)
{
    struct node *n = weft_calloc(1, sizeof(*n));
    if (n == NULL) {
        fail(p, WEFT_ENOMEM, pos, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->pos = pos;
    n->start = start;
    n->end = p->tok_pos + p->tok_len;
    n->height = 1;
    return n;
}

static int height_of(const struct node *n)
{
    return n ? n->height : 0;
}

/* Computes n's height from its children and enforces EXPR_MAX_DEPTH;
 * frees n and returns NULL when it is too high. */
static struct node *finish(struct parser *p, struct node *n)
{
    int h = height_of(n->a);
    if (height_of(n->b) > h)
        h = height_of(n->b);
    if (height_of(n->c) > h)
        h = height_of(n->c);
    for (size_t i = 0; i < n->count; i++) {
        if (n->list[i]->height > h)
            h = n->list[i]->height;
    }
    n->height = h + 1;
    if (n->height > EXPR_MAX_DEPTH) {
        fail(p, WEFT_ELIMIT, n->pos,
             "expression nested too deeply (more than %d levels)",
             EXPR_MAX_DEPTH);
        node_free(n);
        return NULL;
    }
    return n;
}

static bool enter(struct parser *p)
{
    if (p->depth >= EXPR_MAX_DEPTH) {
        fail(p, WEFT_ELIMIT, p->tok_pos,
             "expression nested too deeply (more than %d levels)",
             EXPR_MAX_DEPTH);
        return false;
    }
    p->depth++;
    return true;
}

static bool list_push(struct parser *p, struct node *n, struct node *item)
{
    struct node **grown =
        weft_realloc(n->list, (n->count + 1) * sizeof(*n->list));
    if (grown == NULL) {
        fail(p, WEFT_ENOMEM, item->pos, "out of memory");
        node_free(item);
        return false;
    }
    n->list = grown;
    n->list[n->count++] = item;
    return true;
}

/* Parses comma-separated expressions up to `close` into n->list (array
 * elements or call arguments); the opening bracket is consumed. */
static bool parse_list(struct parser *p, struct node *n, enum tok close,
                       const char *what)
{
    while (p->tok != close) {
        if (p->tok == TK_COMMA) {
            fail(p, WEFT_EINVAL, p->tok_pos,
                 "array holes and empty arguments are not supported");
            return false;
        }
        struct node *item = parse_cond(p);
        if (item == NULL || !list_push(p, n, item))
            return false;
        if (p->tok == TK_COMMA) {
            next(p);
        } else if (p->tok != close) {
            if (p->rc == 0)
                fail(p, WEFT_EINVAL, p->tok_pos, "expected %s", what);
            return false;
        }
    }
    n->end = p->tok_pos + 1;
    next(p);
    return p->rc == 0;
}

/* Words that are literals, and reserved words the subset does not
 * support in operand position. */
static const struct word {
    const char *text;
    enum vkind kind;
    double num;
    bool b;
} literal_words[] = {
    {"true", VK_BOOL, 0, true},  {"false", VK_BOOL, 0, false},
    {"null", VK_NULL, 0, false}, {"undefined", VK_UNDEF, 0, false},
    {"NaN", VK_NUM, NAN, false}, {"Infinity", VK_NUM, INFINITY, false},
};

static const char *const reserved_words[] = {
    "await",    "break",      "case",      "catch",      "class",   "const",
    "continue", "debugger",   "default",   "delete",     "do",      "else",
    "enum",     "export",     "extends",   "finally",    "for",     "function",
    "if",       "import",     "in",        "instanceof", "let",     "new",
    "return",   "super",      "switch",    "this",       "throw",   "try",
    "typeof",   "var",        "void",      "while",      "with",    "yield",
    "static",   "implements", "interface", "package",    "private", "protected",
    "public",
};

static struct node *parse_name(struct parser *p)
{
    struct node *n;
    for (size_t i = 0; i < sizeof(literal_words) / sizeof(literal_words[0]);
         i++) {
        if (tok_is(p, literal_words[i].text)) {
            n = new_node(p, NK_LIT, p->tok_pos, p->tok_pos);
            if (n == NULL)
                return NULL;
            n->lit.kind = literal_words[i].kind;
            n->lit.num = literal_words[i].num;
            n->lit.b = literal_words[i].b;
            next(p);
            return n;
        }
    }
    for (size_t i = 0; i < sizeof(reserved_words) / sizeof(reserved_words[0]);
         i++) {
        if (tok_is(p, reserved_words[i])) {
            fail(p, WEFT_EINVAL, p->tok_pos, "'%s' is not supported",
                 reserved_words[i]);
            return NULL;
        }
    }
    n = new_node(p, NK_IDENT, p->tok_pos, p->tok_pos);
    if (n == NULL)
        return NULL;
    n->name = p->src + p->tok_pos;
    n->name_len = p->tok_len;
    next(p);
    return n;
}

static struct node *parse_primary(struct parser *p)
{
    struct node *n;
    size_t start = p->tok_pos;
    switch (p->tok) {
    case TK_NUM:
        n = new_node(p, NK_LIT, start, start);
        if (n == NULL)
            return NULL;
        n->lit.kind = VK_NUM;
        n->lit.num = p->tok_num;
        next(p);
        return n;
    case TK_STR:
        n = new_node(p, NK_LIT, start, start);
        if (n == NULL)
            return NULL;
        n->lit.kind = VK_STR;
        n->lit.ref =
            json_stringn_nocheck(p->str.data ? p->str.data : "", p->str.len);
        if (n->lit.ref == NULL) {
            node_free(n);
            fail(p, WEFT_ENOMEM, start, "out of memory");
            return NULL;
        }
        next(p);
        return n;
    case TK_NAME:
        return parse_name(p);
    case TK_LPAREN:
        next(p);
        n = parse_cond(p);
        if (n == NULL)
            return NULL;
        if (p->tok != TK_RPAREN) {
            if (p->tok == TK_COMMA)
                fail(p, WEFT_EINVAL, p->tok_pos,
                     "the comma operator is not supported");
            else
                fail(p, WEFT_EINVAL, p->tok_pos, "expected ')'");
            node_free(n);
            return NULL;
        }
        n->paren = true;
        n->start = start;
        n->end = p->tok_pos + 1;
        if (++n->height > EXPR_MAX_DEPTH) {
            fail(p, WEFT_ELIMIT, start,
                 "expression nested too deeply (more than %d levels)",
                 EXPR_MAX_DEPTH);
            node_free(n);
            return NULL;
        }
        next(p);
        return n;
    case TK_LBRACK:
        n = new_node(p, NK_ARRAY, start, start);
        if (n == NULL)
            return NULL;
        next(p);
        if (!parse_list(p, n, TK_RBRACK, "']' or ','")) {
            node_free(n);
            return NULL;
        }
        return finish(p, n);
    case TK_SLASH:
        fail(p, WEFT_EINVAL, start,
             "regular expression literals are not supported");
        return NULL;
    default:
        return unexpected(p);
    }
}

static struct node *parse_postfix(struct parser *p)
{
    struct node *n = parse_primary(p);
    while (n != NULL) {
        struct node *m;
        bool optional = false;
        size_t pos = p->tok_pos;
        switch (p->tok) {
        case TK_QDOT:
            optional = true;
            next(p);
            if (p->tok == TK_LBRACK)
                goto index;
            if (p->tok == TK_LPAREN) {
                fail(p, WEFT_EINVAL, pos,
                     "optional calls ?.() are not supported");
                goto fail;
            }
            /* fall through */
        case TK_DOT:
            if (!optional)
                next(p);
            if (p->tok != TK_NAME) {
                if (p->rc == 0)
                    fail(p, WEFT_EINVAL, p->tok_pos,
                         "expected a property name after '%s'",
                         optional ? "?." : ".");
                goto fail;
            }
            m = new_node(p, NK_MEMBER, p->tok_pos, n->start);
            if (m == NULL)
                goto fail;
            m->name = p->src + p->tok_pos;
            m->name_len = p->tok_len;
            next(p);
            break;
        case TK_LBRACK:
        index:
            next(p);
            m = new_node(p, NK_INDEX, pos, n->start);
            if (m == NULL)
                goto fail;
            m->b = parse_cond(p);
            if (m->b == NULL || p->tok != TK_RBRACK) {
                if (p->rc == 0)
                    fail(p, WEFT_EINVAL, p->tok_pos, "expected ']'");
                node_free(m);
                goto fail;
            }
            m->end = p->tok_pos + 1;
            next(p);
            break;
        case TK_LPAREN:
            m = new_node(p, NK_CALL, pos, n->start);
            if (m == NULL)
                goto fail;
            next(p);
            if (!parse_list(p, m, TK_RPAREN, "')' or ','")) {
                node_free(m);
                goto fail;
            }
            break;
        default:
            return n;
        }
        m->a = n;
        m->optional = optional;
        n = finish(p, m);
    }
    return NULL;
fail:
    node_free(n);
    return NULL;
}

static struct node *parse_unary(struct parser *p)
{
    enum tok op = p->tok;
    size_t pos = p->tok_pos;
    if (op == TK_NOT || op == TK_MINUS || op == TK_PLUS) {
        struct node *n;
        next(p);
        if (!enter(p))
            return NULL;
        struct node *operand = parse_unary(p);
        p->depth--;
        if (operand == NULL)
            return NULL;
        n = new_node(p, NK_UNARY, pos, pos);
        if (n == NULL) {
            node_free(operand);
            return NULL;
        }
        n->op = op;
        n->a = operand;
        n->end = operand->end;
        return finish(p, n);
    }
    return parse_postfix(p);
}

/* Binding power of binary operators; 0 for tokens that are not. */
static int binary_prec(enum tok t)
{
    switch (t) {
    case TK_OR:
        return 1;
    case TK_AND:
        return 2;
    case TK_EQ:
    case TK_NE:
    case TK_SEQ:
    case TK_SNE:
        return 3;
    case TK_LT:
    case TK_LE:
    case TK_GT:
    case TK_GE:
        return 4;
    case TK_PLUS:
    case TK_MINUS:
        return 5;
    case TK_STAR:
    case TK_SLASH:
    case TK_PERCENT:
        return 6;
    default:
        return 0;
    }
}

static struct node *parse_binary(struct parser *p, int min_prec)
{
    struct node *left = parse_unary(p);
    while (left != NULL) {
        enum tok op = p->tok;
        int prec = binary_prec(op);
        if (prec == 0 || prec < min_prec) {
            if (tok_is(p, "in") || tok_is(p, "instanceof")) {
                fail(p, WEFT_EINVAL, p->tok_pos,
                     "the '%.*s' operator is not supported", (int)p->tok_len,
                     p->src + p->tok_pos);
                node_free(left);
                return NULL;
            }
            return left;
        }
        size_t pos = p->tok_pos;
        next(p);
        struct node *right = parse_binary(p, prec + 1);
        if (right == NULL) {
            node_free(left);
            return NULL;
        }
        struct node *n =
            new_node(p, op == TK_AND || op == TK_OR ? NK_LOGICAL : NK_BINARY,
                     pos, left->start);
        if (n == NULL) {
            node_free(left);
            node_free(right);
            return NULL;
        }
        n->op = op;
        n->a = left;
        n->b = right;
        n->end = right->end;
        left = finish(p, n);
    }
    return NULL;
}

static bool is_and_or(const struct node *n)
{
    return n->kind == NK_LOGICAL && !n->paren &&
           (n->op == TK_AND || n->op == TK_OR);
}

/* ShortCircuitExpression: || and && chains, or a ?? chain whose operands
 * are tighter than && (JS forbids mixing them without parentheses). */
static struct node *parse_short_circuit(struct parser *p)
{
    struct node *left = parse_binary(p, 1);
    if (left == NULL || p->tok != TK_NULLISH)
        return left;
    if (is_and_or(left))
        goto mixed;
    while (p->tok == TK_NULLISH) {
        size_t pos = p->tok_pos;
        next(p);
        struct node *right = parse_binary(p, 3);
        if (right == NULL)
            goto fail;
        struct node *n = new_node(p, NK_LOGICAL, pos, left->start);
        if (n == NULL) {
            node_free(right);
            goto fail;
        }
        n->op = TK_NULLISH;
        n->a = left;
        n->b = right;
        n->end = right->end;
        left = finish(p, n);
        if (left == NULL)
            return NULL;
    }
    if (p->tok != TK_AND && p->tok != TK_OR)
        return left;
mixed:
    fail(p, WEFT_EINVAL, p->tok_pos,
         "'?\?' cannot be mixed with '&&' or '||' without parentheses");
fail:
    node_free(left);
    return NULL;
}

static struct node *parse_cond(struct parser *p)
{
    struct node *n = NULL;
    if (!enter(p))
        return NULL;
    struct node *test = parse_short_circuit(p);
    if (test == NULL || p->tok != TK_QUESTION) {
        n = test;
        goto done;
    }
    n = new_node(p, NK_COND, p->tok_pos, test->start);
    if (n == NULL) {
        node_free(test);
        goto done;
    }
    n->a = test;
    next(p);
    n->b = parse_cond(p);
    if (n->b == NULL)
        goto fail;
    if (p->tok != TK_COLON) {
        if (p->rc == 0)
            fail(p, WEFT_EINVAL, p->tok_pos,
                 "expected ':' in conditional expression");
        goto fail;
    }
    next(p);
    n->c = parse_cond(p);
    if (n->c == NULL)
        goto fail;
    n->end = n->c->end;
    n = finish(p, n);
    goto done;
fail:
    node_free(n);
    n = NULL;
done:
    p->depth--;
    return n;
}

static int new_expr(const char *src, size_t len, struct expr **out)
{
    struct expr *e = weft_calloc(1, sizeof(*e));
    if (e == NULL)
        return WEFT_ENOMEM;
    e->src = weft_strndup(src, len);
    if (e->src == NULL) {
        weft_free(e);
        return WEFT_ENOMEM;
    }
    e->len = len;
    *out = e;
    return 0;
}

int expr_parse(const char *src, size_t len, struct expr **out,
               struct weft_error *err)
{
    struct parser p = {0};
    struct expr *e = NULL;
    size_t bad;
    if (len > EXPR_MAX_SOURCE)
        return weft_error_set(err, WEFT_ELIMIT, 1, EXPR_MAX_SOURCE + 1,
                              "expression longer than %d bytes",
                              EXPR_MAX_SOURCE);
    if (!expr_utf8_valid(src, len, &bad))
        return weft_error_set(err, WEFT_EINVAL, 1, (int)bad + 1,
                              "invalid UTF-8");
    if (new_expr(src, len, &e) != 0)
        return weft_error_set(err, WEFT_ENOMEM, 1, 0, "out of memory");
    p.src = e->src;
    p.len = len;
    p.err = err;
    buf_init(&p.str, EXPR_MAX_SOURCE);
    next(&p);
    e->root = parse_cond(&p);
    if (e->root != NULL && p.tok != TK_EOF) {
        if (p.tok == TK_COMMA)
            fail(&p, WEFT_EINVAL, p.tok_pos,
                 "the comma operator is not supported");
        else
            unexpected(&p);
    }
    buf_deinit(&p.str);
    if (p.rc != 0) {
        expr_free(e);
        return p.rc;
    }
    *out = e;
    return 0;
}

static bool is_path_char(char c)
{
    return is_ident_char(c) || c == '-';
}

int expr_parse_path(const char *src, size_t len, struct expr **out,
                    struct weft_error *err)
{
    struct parser p = {0};
    struct expr *e = NULL;
    size_t i = 0, segments = 0;
    if (len == 0 || len > EXPR_MAX_SOURCE || !is_ident_start(src[0]))
        return EXPR_NOT_A_PATH;
    while (i < len && is_ident_char(src[i]))
        i++;
    size_t root_len = i;
    for (size_t w = 0; w < sizeof(literal_words) / sizeof(literal_words[0]);
         w++) {
        if (strlen(literal_words[w].text) == root_len &&
            memcmp(src, literal_words[w].text, root_len) == 0)
            return EXPR_NOT_A_PATH;
    }
    for (size_t w = 0; w < sizeof(reserved_words) / sizeof(reserved_words[0]);
         w++) {
        if (strlen(reserved_words[w]) == root_len &&
            memcmp(src, reserved_words[w], root_len) == 0)
            return EXPR_NOT_A_PATH;
    }
    while (i < len) {
        size_t s = ++i;
        if (src[s - 1] != '.')
            return EXPR_NOT_A_PATH;
        while (i < len && is_path_char(src[i]))
            i++;
        if (i == s)
            return EXPR_NOT_A_PATH;
        segments++;
    }
    if (segments + 1 > EXPR_MAX_DEPTH)
        return weft_error_set(err, WEFT_ELIMIT, 1, 1,
                              "path longer than %d segments", EXPR_MAX_DEPTH);
    if (new_expr(src, len, &e) != 0)
        return weft_error_set(err, WEFT_ENOMEM, 1, 0, "out of memory");
    p.src = e->src;
    p.len = len;
    p.err = err;
    struct node *n = new_node(&p, NK_IDENT, 0, 0);
    if (n == NULL)
        goto fail;
    n->name = e->src;
    n->name_len = root_len;
    n->lenient = true;
    n->end = root_len;
    for (i = root_len; i < len;) {
        size_t s = ++i;
        while (i < len && src[i] != '.')
            i++;
        struct node *m = new_node(&p, NK_MEMBER, s, 0);
        if (m == NULL) {
            node_free(n);
            goto fail;
        }
        m->name = e->src + s;
        m->name_len = i - s;
        m->optional = true;
        m->end = i;
        m->a = n;
        m->height = n->height + 1;
        n = m;
    }
    e->root = n;
    *out = e;
    return 0;
fail:
    expr_free(e);
    return p.rc;
}

/* ------------------------------------------------------------------ */
/* Values */

static void val_release(struct val *v)
{
    json_decref(v->ref);
    v->ref = NULL;
    v->kind = VK_UNDEF;
}

static struct val val_undef(void)
{
    struct val v = {VK_UNDEF, false, 0, NULL};
    return v;
}

static struct val val_bool(bool b)
{
    struct val v = {VK_BOOL, b, 0, NULL};
    return v;
}

static struct val val_num(double d)
{
    struct val v = {VK_NUM, false, d, NULL};
    return v;
}

/* A value for the JSON value j: with a new reference to j when take is
 * set, else borrowing it (for comparisons that do not outlive j). */
static struct val val_of_json(const json_t *j, bool take)
{
    struct val v = {VK_UNDEF, false, 0, NULL};
    if (j == NULL)
        return v;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        v.kind = VK_OBJ;
        break;
    case JSON_ARRAY:
        v.kind = VK_ARR;
        break;
    case JSON_STRING:
        v.kind = VK_STR;
        break;
    case JSON_INTEGER:
        v.kind = VK_NUM;
        v.num = (double)json_integer_value(j);
        break;
    case JSON_REAL:
        v.kind = VK_NUM;
        v.num = json_real_value(j);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v.kind = VK_BOOL;
        v.b = json_is_true(j);
        return v;
    case JSON_NULL:
        v.kind = VK_NULL;
        return v;
    }
    /* The scope is borrowed as const; jansson counts references in the
     * object itself, which is the only field this touches. */
    v.ref = take ? json_incref((json_t *)j) : (json_t *)j;
    return v;
}

static struct val val_copy(const struct val *v)
{
    struct val c = *v;
    json_incref(c.ref);
    return c;
}

static const char *str_ptr(const struct val *v)
{
    return json_string_value(v->ref);
}

static size_t str_len(const struct val *v)
{
    return json_string_length(v->ref);
}

static bool nullish(const struct val *v)
{
    return v->kind == VK_UNDEF || v->kind == VK_NULL;
}

static bool is_object(const struct val *v)
{
    return v->kind == VK_ARR || v->kind == VK_OBJ;
}

static bool truthy(const struct val *v)
{
    switch (v->kind) {
    case VK_UNDEF:
    case VK_NULL:
        return false;
    case VK_BOOL:
        return v->b;
    case VK_NUM:
        return !(v->num == 0 || isnan(v->num));
    case VK_STR:
        return str_len(v) > 0;
    default:
        return true;
    }
}

bool expr_truthy(const json_t *v)
{
    struct val x = val_of_json(v, false);
    return truthy(&x);
}

/* Text of a value as JS String() gives it: borrowed for strings, in num[]
 * for short forms, in b (bounded by EXPR_MAX_STRING) for arrays. */
struct text {
    const char *p;
    size_t n;
    char num[32];
    struct buf b;
};

static int to_text(const struct val *v, struct text *t)
{
    int rc = 0;
    buf_init(&t->b, EXPR_MAX_STRING);
    switch (v->kind) {
    case VK_UNDEF:
        t->p = "undefined";
        break;
    case VK_NULL:
        t->p = "null";
        break;
    case VK_BOOL:
        t->p = v->b ? "true" : "false";
        break;
    case VK_NUM:
        t->n = expr_format_number(v->num, t->num, sizeof(t->num));
        t->p = t->num;
        return 0;
    case VK_STR:
        t->p = str_ptr(v);
        t->n = str_len(v);
        return 0;
    case VK_OBJ:
        t->p = "[object Object]";
        break;
    case VK_ARR:
        rc = expr_append_js_string(&t->b, v->ref);
        t->p = t->b.data ? t->b.data : "";
        t->n = t->b.len;
        return rc;
    }
    t->n = strlen(t->p);
    return 0;
}

static void text_release(struct text *t)
{
    buf_deinit(&t->b);
}

/* ToPrimitive: arrays and objects become their String(); others copy. */
static int to_primitive(const struct val *v, struct val *out)
{
    struct text t;
    int rc;
    if (!is_object(v)) {
        *out = val_copy(v);
        return 0;
    }
    rc = to_text(v, &t);
    if (rc == 0) {
        json_t *s = json_stringn_nocheck(t.p, t.n);
        if (s == NULL) {
            rc = WEFT_ENOMEM;
        } else {
            out->kind = VK_STR;
            out->ref = s;
        }
    }
    text_release(&t);
    return rc;
}

static int to_number(const struct val *v, double *out)
{
    struct text t;
    int rc;
    switch (v->kind) {
    case VK_UNDEF:
        *out = NAN;
        return 0;
    case VK_NULL:
        *out = 0;
        return 0;
    case VK_BOOL:
        *out = v->b ? 1 : 0;
        return 0;
    case VK_NUM:
        *out = v->num;
        return 0;
    case VK_STR:
        *out = expr_string_to_number(str_ptr(v), str_len(v));
        return 0;
    case VK_OBJ:
        *out = NAN;
        return 0;
    case VK_ARR:
        rc = to_text(v, &t);
        if (rc == 0)
            *out = expr_string_to_number(t.p, t.n);
        text_release(&t);
        return rc;
    }
    return 0;
}

/* ToIntegerOrInfinity. */
static int to_integer(const struct val *v, double *out)
{
    int rc = to_number(v, out);
    if (rc == 0)
        *out = isnan(*out) ? 0 : trunc(*out);
    return rc;
}

static bool strict_equal(const struct val *x, const struct val *y)
{
    if (x->kind != y->kind)
        return false;
    switch (x->kind) {
    case VK_UNDEF:
    case VK_NULL:
        return true;
    case VK_BOOL:
        return x->b == y->b;
    case VK_NUM:
        return x->num == y->num;
    case VK_STR:
        return str_len(x) == str_len(y) &&
               memcmp(str_ptr(x), str_ptr(y), str_len(x)) == 0;
    default:
        return x->ref == y->ref;
    }
}

/* IsLooselyEqual (==). */
static int loose_equal(const struct val *x, const struct val *y, bool *eq)
{
    struct val p = val_undef();
    double d;
    int rc = 0;
    if (x->kind == y->kind || (is_object(x) && is_object(y))) {
        *eq = strict_equal(x, y);
        return 0;
    }
    if (nullish(x) || nullish(y)) {
        *eq = nullish(x) && nullish(y);
        return 0;
    }
    if (x->kind == VK_BOOL || y->kind == VK_BOOL) {
        struct val n = val_num(x->kind == VK_BOOL ? x->b : y->b);
        return x->kind == VK_BOOL ? loose_equal(&n, y, eq)
                                  : loose_equal(x, &n, eq);
    }
    if (is_object(x) || is_object(y)) {
        rc = to_primitive(is_object(x) ? x : y, &p);
        if (rc == 0)
            rc = is_object(x) ? loose_equal(&p, y, eq) : loose_equal(x, &p, eq);
        val_release(&p);
        return rc;
    }
    /* One number, one string. */
    const struct val *s = x->kind == VK_STR ? x : y;
    const struct val *n = x->kind == VK_STR ? y : x;
    to_number(s, &d);
    *eq = d == n->num;
    return 0;
}

static bool same_value_zero(const struct val *x, const struct val *y)
{
    if (x->kind == VK_NUM && y->kind == VK_NUM && isnan(x->num) &&
        isnan(y->num))
        return true;
    return strict_equal(x, y);
}

/* ------------------------------------------------------------------ */
/* Evaluator */

struct ctx {
    const struct expr *e;
    const json_t *scope;
    struct weft_error *err;
};

static int eval(const struct ctx *c, const struct node *n, struct val *out);

static int eval_fail(const struct ctx *c, int code, const struct node *n,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int eval_fail(const struct ctx *c, int code, const struct node *n,
                     const char *fmt, ...)
{
    char msg[WEFT_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return weft_error_set(c->err, code, 1, (int)n->pos + 1, "%s", msg);
}

static int oom(const struct ctx *c, const struct node *n)
{
    return eval_fail(c, WEFT_ENOMEM, n, "out of memory");
}

/* Reports a failed conversion (rc is WEFT_ENOMEM or WEFT_ELIMIT). */
static int conv_fail(const struct ctx *c, const struct node *n, int rc)
{
    if (rc == WEFT_ELIMIT)
        return eval_fail(c, rc, n, "string longer than %u bytes",
                         EXPR_MAX_STRING);
    return oom(c, n);
}

/* A canonical array index ("0", "17"; not "01", "-1", "1.5") below
 * 2^32 - 1; -1 when key is not one. */
static double array_index(const char *key, size_t len)
{
    double v = 0;
    if (len == 0 || len > 10 || (len > 1 && key[0] == '0'))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(key[i]))
            return -1;
        v = v * 10 + (key[i] - '0');
    }
    return v < EXPR_MAX_ARRAY_INDEX ? v : -1;
}

/* The UTF-16 code unit at index i of s, as a one-character string. A
 * half of a surrogate pair cannot be UTF-8 and becomes U+FFFD. */
static int string_at(const struct val *s, double i, struct val *out)
{
    bool exact;
    size_t n;
    const char *p = str_ptr(s);
    size_t len = str_len(s);
    size_t off = expr_utf16_offset(p, len, (size_t)i, &exact);
    uint32_t cp = exact ? expr_utf8_decode(p + off, len - off, &n) : 0xFFFD;
    char u8[4];
    if (cp >= 0x10000)
        cp = 0xFFFD;
    json_t *j = json_stringn_nocheck(u8, expr_utf8_encode(cp, u8));
    if (j == NULL)
        return WEFT_ENOMEM;
    out->kind = VK_STR;
    out->ref = j;
    return 0;
}

/* Property key of base (not nullish) as JS reads it. */
static int get_prop(const struct val *base, const char *key, size_t len,
                    struct val *out)
{
    bool is_length = len == 6 && memcmp(key, "length", 6) == 0;
    double i;
    *out = val_undef();
    switch (base->kind) {
    case VK_STR:
        if (is_length) {
            *out = val_num(
                (double)expr_utf16_length(str_ptr(base), str_len(base)));
            return 0;
        }
        i = array_index(key, len);
        if (i >= 0 &&
            i < (double)expr_utf16_length(str_ptr(base), str_len(base)))
            return string_at(base, i, out);
        return 0;
    case VK_ARR:
        if (is_length) {
            *out = val_num((double)json_array_size(base->ref));
            return 0;
        }
        i = array_index(key, len);
        if (i >= 0 && i < (double)json_array_size(base->ref))
            *out = val_of_json(json_array_get(base->ref, (size_t)i), true);
        return 0;
    case VK_OBJ:
        *out = val_of_json(json_object_getn(base->ref, key, len), true);
        return 0;
    default:
        return 0;
    }
}

static int eval_ident(const struct ctx *c, const struct node *n,
                      struct val *out)
{
    const json_t *v = NULL;
    if (json_is_object(c->scope))
        v = json_object_getn(c->scope, n->name, n->name_len);
    if (v == NULL && !n->lenient)
        return eval_fail(c, WEFT_ENOENT, n, "%.*s is not defined",
                         (int)n->name_len, n->name);
    *out = val_of_json(v, true);
    return 0;
}

static bool is_chain(const struct node *n)
{
    return !n->paren &&
           (n->kind == NK_MEMBER || n->kind == NK_INDEX || n->kind == NK_CALL);
}

static int eval_chain(const struct ctx *c, const struct node *n,
                      struct val *out, bool *shorted);

/* Evaluates the object of a member access or call; *shorted tells that
 * an optional link before it met undefined or null. */
static int eval_base(const struct ctx *c, const struct node *n, struct val *out,
                     bool *shorted)
{
    *shorted = false;
    if (is_chain(n))
        return eval_chain(c, n, out, shorted);
    return eval(c, n, out);
}

static int read_fail(const struct ctx *c, const struct node *n,
                     const struct val *base, const char *key, size_t len)
{
    int q = (int)(len < EXPR_MSG_QUOTE ? len : EXPR_MSG_QUOTE);
    return eval_fail(c, WEFT_ETYPE, n, "cannot read property '%.*s' of %s", q,
                     key, base->kind == VK_NULL ? "null" : "undefined");
}

static int not_function(const struct ctx *c, const struct node *call)
{
    const struct node *f = call->a;
    size_t len = f->end - f->start;
    int q = (int)(len < EXPR_MSG_QUOTE ? len : EXPR_MSG_QUOTE);
    return eval_fail(c, WEFT_ETYPE, call, "%.*s%s is not a function", q,
                     c->e->src + f->start, len > EXPR_MSG_QUOTE ? "..." : "");
}

/* Knuth-Morris-Pratt: whether needle occurs in hay; linear time, so a
 * search in a large scope string stays cheap. */
static int find(const char *hay, size_t hn, const char *needle, size_t nn,
                bool *found)
{
    size_t *fail_at;
    *found = nn == 0;
    if (nn == 0 || nn > hn)
        return 0;
    fail_at = weft_malloc(nn * sizeof(*fail_at));
    if (fail_at == NULL)
        return WEFT_ENOMEM;
    fail_at[0] = 0;
    for (size_t i = 1, k = 0; i < nn; i++) {
        while (k > 0 && needle[i] != needle[k])
            k = fail_at[k - 1];
        if (needle[i] == needle[k])
            k++;
        fail_at[i] = k;
    }
    for (size_t i = 0, k = 0; i < hn && !*found; i++) {
        while (k > 0 && hay[i] != needle[k])
            k = fail_at[k - 1];
        if (hay[i] == needle[k])
            k++;
        if (k == nn)
            *found = true;
    }
    weft_free(fail_at);
    return 0;
}

/* Clamps a ToIntegerOrInfinity result to [0, max]. */
static size_t clamp_units(double d, size_t max)
{
    if (d <= 0)
        return 0;
    if (d >= (double)max)
        return max;
    return (size_t)d;
}

/* String.prototype.includes / startsWith / endsWith. */
static int string_method(const struct val *s, const char *name,
                         const struct val *args, size_t nargs, bool *res)
{
    const struct val undef = val_undef();
    const struct val *pos_arg = nargs > 1 ? &args[1] : &undef;
    const char *p = str_ptr(s);
    size_t len = str_len(s), units = expr_utf16_length(p, len);
    struct text t;
    double d = 0;
    bool exact;
    int rc = to_text(nargs > 0 ? &args[0] : &undef, &t);
    if (rc == 0 && !(name[0] == 'e' && pos_arg->kind == VK_UNDEF))
        rc = to_integer(pos_arg, &d);
    if (rc != 0)
        goto cleanup;
    if (name[0] == 'i') {
        size_t off = expr_utf16_offset(p, len, clamp_units(d, units), &exact);
        rc = find(p + off, len - off, t.p, t.n, res);
    } else if (name[0] == 's') {
        size_t off = expr_utf16_offset(p, len, clamp_units(d, units), &exact);
        *res = t.n == 0 ||
               (exact && t.n <= len - off && memcmp(p + off, t.p, t.n) == 0);
    } else {
        size_t end = pos_arg->kind == VK_UNDEF ? units : clamp_units(d, units);
        size_t su = expr_utf16_length(t.p, t.n);
        bool exact_end;
        *res = t.n == 0;
        if (t.n > 0 && su <= end) {
            size_t off = expr_utf16_offset(p, len, end - su, &exact);
            size_t eoff = expr_utf16_offset(p, len, end, &exact_end);
            *res = exact && exact_end && eoff - off == t.n &&
                   memcmp(p + off, t.p, t.n) == 0;
        }
    }
cleanup:
    text_release(&t);
    return rc;
}

/* Array.prototype.includes(x, fromIndex). */
static int array_includes(const struct val *a, const struct val *args,
                          size_t nargs, bool *res)
{
    const struct val undef = val_undef();
    size_t len = json_array_size(a->ref);
    double from = 0;
    int rc;
    *res = false;
    if (len == 0)
        return 0;
    rc = to_integer(nargs > 1 ? &args[1] : &undef, &from);
    if (rc != 0)
        return rc;
    if (from < 0)
        from = from + (double)len < 0 ? 0 : from + (double)len;
    for (double k = from; k < (double)len && !*res; k++) {
        struct val el = val_of_json(json_array_get(a->ref, (size_t)k), false);
        *res = same_value_zero(nargs > 0 ? &args[0] : &undef, &el);
    }
    return 0;
}

static bool name_is(const char *name, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(name, word, len) == 0;
}

/* A method call base.name(args) on a value that is not nullish. Returns
 * 1 when base has no such method. */
static int call_method(const struct val *base, const char *name, size_t len,
                       const struct val *args, size_t nargs, struct val *out)
{
    const struct val undef = val_undef();
    const struct val *k = nargs > 0 ? &args[0] : &undef;
    bool res = false;
    int rc;
    if (base->kind == VK_OBJ &&
        (name_is(name, len, "get") || name_is(name, len, "has"))) {
        /* Map semantics: JSON maps have string keys only. */
        const json_t *v = NULL;
        if (k->kind == VK_STR)
            v = json_object_getn(base->ref, str_ptr(k), str_len(k));
        *out = name[0] == 'g' ? val_of_json(v, true) : val_bool(v != NULL);
        return 0;
    }
    if (base->kind == VK_STR &&
        (name_is(name, len, "includes") || name_is(name, len, "startsWith") ||
         name_is(name, len, "endsWith"))) {
        rc = string_method(base, name, args, nargs, &res);
    } else if (base->kind == VK_ARR && name_is(name, len, "includes")) {
        rc = array_includes(base, args, nargs, &res);
    } else {
        return 1;
    }
    if (rc == 0)
        *out = val_bool(res);
    return rc;
}

static int eval_call(const struct ctx *c, const struct node *n, struct val *out,
                     bool *shorted)
{
    const struct node *f = n->a;
    struct val base = val_undef(), key = val_undef();
    struct val args[EXPR_METHOD_MAX_ARGS];
    struct text name = {0};
    size_t nargs = 0;
    bool method = is_chain(f) && f->kind != NK_CALL;
    int rc;
    *out = val_undef();
    buf_init(&name.b, 0);
    if (method) {
        rc = eval_base(c, f->a, &base, shorted);
        if (rc != 0 || *shorted || (f->optional && nullish(&base))) {
            *shorted = rc == 0;
            goto cleanup;
        }
        if (f->kind == NK_INDEX) {
            rc = eval(c, f->b, &key);
            if (rc == 0 && (rc = to_text(&key, &name)) != 0)
                rc = conv_fail(c, f, rc);
            if (rc != 0)
                goto cleanup;
        } else {
            name.p = f->name;
            name.n = f->name_len;
        }
        if (nullish(&base)) {
            rc = read_fail(c, f, &base, name.p, name.n);
            goto cleanup;
        }
    } else {
        rc = eval_base(c, f, &base, shorted);
        if (rc != 0 || *shorted)
            goto cleanup;
    }
    for (size_t i = 0; i < n->count; i++) {
        struct val v;
        rc = eval(c, n->list[i], &v);
        if (rc != 0)
            goto cleanup;
        if (nargs < EXPR_METHOD_MAX_ARGS)
            args[nargs++] = v;
        else
            val_release(&v);
    }
    rc = method ? call_method(&base, name.p, name.n, args, nargs, out) : 1;
    if (rc == 1)
        rc = not_function(c, n);
    else if (rc != 0)
        rc = conv_fail(c, n, rc);
cleanup:
    for (size_t i = 0; i < nargs; i++)
        val_release(&args[i]);
    text_release(&name);
    val_release(&key);
    val_release(&base);
    return rc;
}

static int eval_chain(const struct ctx *c, const struct node *n,
                      struct val *out, bool *shorted)
{
    struct val base = val_undef(), key = val_undef();
    struct text t = {0};
    int rc;
    *out = val_undef();
    buf_init(&t.b, 0);
    if (n->kind == NK_CALL)
        return eval_call(c, n, out, shorted);
    rc = eval_base(c, n->a, &base, shorted);
    if (rc != 0 || *shorted || (n->optional && nullish(&base))) {
        if (rc == 0) {
            *shorted = true;
            *out = val_undef();
        }
        goto cleanup;
    }
    if (n->kind == NK_MEMBER) {
        t.p = n->name;
        t.n = n->name_len;
    } else {
        rc = eval(c, n->b, &key);
        if (rc == 0 && (rc = to_text(&key, &t)) != 0)
            rc = conv_fail(c, n, rc);
        if (rc != 0)
            goto cleanup;
    }
    if (nullish(&base)) {
        rc = read_fail(c, n, &base, t.p, t.n);
        goto cleanup;
    }
    rc = get_prop(&base, t.p, t.n, out);
    if (rc != 0)
        rc = oom(c, n);
cleanup:
    text_release(&t);
    val_release(&key);
    val_release(&base);
    return rc;
}

static int eval_array(const struct ctx *c, const struct node *n,
                      struct val *out)
{
    json_t *a = json_array();
    int rc = 0;
    if (a == NULL)
        return oom(c, n);
    for (size_t i = 0; i < n->count && rc == 0; i++) {
        struct val v;
        rc = eval(c, n->list[i], &v);
        if (rc != 0)
            break;
        json_t *j = NULL;
        /* JSON has neither undefined nor NaN and Infinity: such elements
         * are stored as null (JSON.stringify does the same). */
        if (v.kind == VK_NUM && v.ref == NULL)
            j = expr_number_to_json(v.num);
        else if (v.kind == VK_BOOL)
            j = json_boolean(v.b);
        else if (v.kind == VK_NULL || v.kind == VK_UNDEF)
            j = json_null();
        else
            j = json_incref(v.ref);
        val_release(&v);
        if (j == NULL || json_array_append_new(a, j) != 0)
            rc = oom(c, n);
    }
    if (rc != 0) {
        json_decref(a);
        return rc;
    }
    out->kind = VK_ARR;
    out->ref = a;
    return 0;
}

static int eval_plus(const struct ctx *c, const struct node *n,
                     const struct val *l, const struct val *r, struct val *out)
{
    struct val lp = val_undef(), rp = val_undef();
    struct text lt = {0}, rt = {0};
    char *s = NULL;
    int rc;
    buf_init(&lt.b, 0);
    buf_init(&rt.b, 0);
    if ((rc = to_primitive(l, &lp)) != 0 || (rc = to_primitive(r, &rp)) != 0)
        goto conv;
    if (lp.kind != VK_STR && rp.kind != VK_STR) {
        double a, b;
        to_number(&lp, &a);
        to_number(&rp, &b);
        *out = val_num(a + b);
        goto cleanup;
    }
    if ((rc = to_text(&lp, &lt)) != 0 || (rc = to_text(&rp, &rt)) != 0)
        goto conv;
    if (lt.n > EXPR_MAX_STRING || rt.n > EXPR_MAX_STRING - lt.n) {
        rc = WEFT_ELIMIT;
        goto conv;
    }
    s = weft_malloc(lt.n + rt.n + 1);
    if (s == NULL) {
        rc = WEFT_ENOMEM;
        goto conv;
    }
    memcpy(s, lt.p, lt.n);
    memcpy(s + lt.n, rt.p, rt.n);
    out->ref = json_stringn_nocheck(s, lt.n + rt.n);
    if (out->ref == NULL) {
        rc = WEFT_ENOMEM;
        goto conv;
    }
    out->kind = VK_STR;
    goto cleanup;
conv:
    rc = conv_fail(c, n, rc);
cleanup:
    weft_free(s);
    text_release(&lt);
    text_release(&rt);
    val_release(&lp);
    val_release(&rp);
    return rc;
}

/* < <= > >= via IsLessThan on primitives. */
static int eval_relational(const struct ctx *c, const struct node *n,
                           const struct val *l, const struct val *r,
                           struct val *out)
{
    struct val lp = val_undef(), rp = val_undef();
    int rc;
    bool res;
    if ((rc = to_primitive(l, &lp)) != 0 || (rc = to_primitive(r, &rp)) != 0) {
        rc = conv_fail(c, n, rc);
        goto cleanup;
    }
    if (lp.kind == VK_STR && rp.kind == VK_STR) {
        int cmp = expr_string_compare(str_ptr(&lp), str_len(&lp), str_ptr(&rp),
                                      str_len(&rp));
        res = n->op == TK_LT   ? cmp < 0
              : n->op == TK_LE ? cmp <= 0
              : n->op == TK_GT ? cmp > 0
                               : cmp >= 0;
    } else {
        double a, b;
        to_number(&lp, &a);
        to_number(&rp, &b);
        res = n->op == TK_LT   ? a < b
              : n->op == TK_LE ? a <= b
              : n->op == TK_GT ? a > b
                               : a >= b;
    }
    *out = val_bool(res);
cleanup:
    val_release(&lp);
    val_release(&rp);
    return rc;
}

static int eval_binary(const struct ctx *c, const struct node *n,
                       struct val *out)
{
    struct val l = val_undef(), r = val_undef();
    double a, b;
    bool eq;
    int rc = eval(c, n->a, &l);
    if (rc == 0)
        rc = eval(c, n->b, &r);
    if (rc != 0)
        goto cleanup;
    switch (n->op) {
    case TK_PLUS:
        rc = eval_plus(c, n, &l, &r, out);
        break;
    case TK_MINUS:
    case TK_STAR:
    case TK_SLASH:
    case TK_PERCENT:
        if ((rc = to_number(&l, &a)) != 0 || (rc = to_number(&r, &b)) != 0) {
            rc = conv_fail(c, n, rc);
            break;
        }
        *out = val_num(n->op == TK_MINUS   ? a - b
                       : n->op == TK_STAR  ? a * b
                       : n->op == TK_SLASH ? a / b
                                           : fmod(a, b));
        break;
    case TK_LT:
    case TK_LE:
    case TK_GT:
    case TK_GE:
        rc = eval_relational(c, n, &l, &r, out);
        break;
    case TK_SEQ:
    case TK_SNE:
        *out = val_bool(strict_equal(&l, &r) == (n->op == TK_SEQ));
        break;
    default: /* TK_EQ, TK_NE */
        rc = loose_equal(&l, &r, &eq);
        if (rc != 0)
            rc = conv_fail(c, n, rc);
        else
            *out = val_bool(eq == (n->op == TK_EQ));
        break;
    }
cleanup:
    val_release(&l);
    val_release(&r);
    return rc;
}

static int eval(const struct ctx *c, const struct node *n, struct val *out)
{
    struct val v = val_undef();
    bool shorted;
    double d;
    int rc;
    switch (n->kind) {
    case NK_LIT:
        *out = val_copy(&n->lit);
        return 0;
    case NK_IDENT:
        return eval_ident(c, n, out);
    case NK_ARRAY:
        return eval_array(c, n, out);
    case NK_MEMBER:
    case NK_INDEX:
    case NK_CALL:
        return eval_chain(c, n, out, &shorted);
    case NK_UNARY:
        rc = eval(c, n->a, &v);
        if (rc != 0)
            return rc;
        if (n->op == TK_NOT) {
            *out = val_bool(!truthy(&v));
        } else if ((rc = to_number(&v, &d)) != 0) {
            rc = conv_fail(c, n, rc);
        } else {
            *out = val_num(n->op == TK_MINUS ? -d : d);
        }
        val_release(&v);
        return rc;
    case NK_BINARY:
        return eval_binary(c, n, out);
    case NK_LOGICAL:
        rc = eval(c, n->a, &v);
        if (rc != 0)
            return rc;
        if (n->op == TK_AND  ? !truthy(&v)
            : n->op == TK_OR ? truthy(&v)
                             : !nullish(&v)) {
            *out = v;
            return 0;
        }
        val_release(&v);
        return eval(c, n->b, out);
    case NK_COND:
        rc = eval(c, n->a, &v);
        if (rc != 0)
            return rc;
        rc = eval(c, truthy(&v) ? n->b : n->c, out);
        val_release(&v);
        return rc;
    }
    return WEFT_EINVAL;
}

static int eval_root(const struct expr *e, const json_t *scope, struct val *out,
                     struct weft_error *err)
{
    struct ctx c = {e, scope, err};
    *out = val_undef();
    return eval(&c, e->root, out);
}

/* A new JSON reference for v (NULL for undefined), or WEFT_ENOMEM. */
static int val_to_json(const struct val *v, json_t **out)
{
    json_t *j;
    switch (v->kind) {
    case VK_UNDEF:
        *out = NULL;
        return 0;
    case VK_NULL:
        j = json_null();
        break;
    case VK_BOOL:
        j = json_boolean(v->b);
        break;
    case VK_NUM:
        j = v->ref ? json_incref(v->ref) : expr_number_to_json(v->num);
        break;
    default:
        j = json_incref(v->ref);
        break;
    }
    if (j == NULL)
        return WEFT_ENOMEM;
    *out = j;
    return 0;
}

int expr_eval(const struct expr *e, const json_t *scope, json_t **out,
              struct weft_error *err)
{
    struct val v;
    int rc = eval_root(e, scope, &v, err);
    if (rc != 0)
        return rc;
    rc = val_to_json(&v, out);
    val_release(&v);
    if (rc != 0)
        return weft_error_set(err, rc, 1, 0, "out of memory");
    return 0;
}

int expr_eval_bool(const struct expr *e, const json_t *scope, bool *truth,
                   struct weft_error *err)
{
    struct val v;
    int rc = eval_root(e, scope, &v, err);
    if (rc != 0)
        return rc;
    *truth = truthy(&v);
    val_release(&v);
    return 0;
}

static int append_display(struct buf *b, const struct val *v)
{
    char num[32];
    switch (v->kind) {
    case VK_UNDEF:
    case VK_NULL:
        return 0;
    case VK_BOOL:
        return buf_append_str(b, v->b ? "true" : "false");
    case VK_NUM:
        return buf_append(b, num, expr_format_number(v->num, num, sizeof(num)));
    case VK_STR:
        return buf_append(b, str_ptr(v), str_len(v));
    default:
        return expr_append_json(b, v->ref);
    }
}

int expr_eval_display(const struct expr *e, const json_t *scope, struct buf *b,
                      struct weft_error *err)
{
    struct val v;
    int rc = eval_root(e, scope, &v, err);
    if (rc != 0)
        return rc;
    rc = append_display(b, &v);
    val_release(&v);
    if (rc == WEFT_ELIMIT)
        weft_error_set(err, rc, 1, 1, "rendered text longer than %zu bytes",
                       b->max);
    else if (rc != 0)
        weft_error_set(err, rc, 1, 0, "out of memory");
    return rc;
}

int expr_eval_describe(const struct expr *e, const json_t *scope, struct buf *b,
                       struct weft_error *err)
{
    static const char *const names[] = {
        "undefined", "null", "boolean", "number", "string", "array", "object"};
    struct val v;
    int rc = eval_root(e, scope, &v, err);
    if (rc != 0)
        return rc;
    rc = buf_append_str(b, names[v.kind]);
    if (rc == 0 && !nullish(&v))
        rc = buf_append_char(b, ':');
    if (rc == 0 && v.kind == VK_STR)
        rc = expr_append_json_string(b, str_ptr(&v), str_len(&v));
    else if (rc == 0 && is_object(&v))
        rc = expr_append_json(b, v.ref);
    else if (rc == 0 && !nullish(&v))
        rc = append_display(b, &v);
    val_release(&v);
    if (rc != 0)
        weft_error_set(err, rc, 1, 0, "%s",
                       rc == WEFT_ELIMIT ? "value too long" : "out of memory");
    return rc;
}
