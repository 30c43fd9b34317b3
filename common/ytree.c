/* ytree.c - YAML to a positioned tree, with limits; tree to JSON.
 *
 * The builder consumes libyaml events with an explicit stack of open
 * collections (never recursion), so input depth cannot reach the C stack;
 * children of open collections accumulate on one shared pointer stack and
 * are copied into the arena when their collection ends. Every limit of
 * ytree.h is checked as the event that would pass it arrives.
 */
#include "ytree.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "alloc.h"
#include "error.h"
#include "num.h"
#include "strmap.h"

/* Arena chunks: large enough that a 100k-step file needs a few hundred,
 * small enough that a tiny file does not pin much memory. */
#define ARENA_CHUNK (256u * 1024)
/* Mappings with more pairs than this find duplicate keys with a hash map
 * instead of comparing every pair. */
#define DUP_LINEAR_MAX 16

struct arena_chunk {
    struct arena_chunk *next;
    size_t cap;
    size_t used;
};

/* Chunk payloads start at this offset so that every block is aligned for
 * pointers and doubles. */
#define CHUNK_HDR ((sizeof(struct arena_chunk) + 15u) & ~(size_t)15u)

struct ytree {
    struct arena_chunk *chunks; /* current chunk first */
    struct ytree_node *root;
    const char *src; /* borrowed: the text given to ytree_parse */
    size_t srclen;
    uint32_t *line_starts; /* lazily built byte offsets of lines */
    size_t nlines;
    bool no_lines; /* source not mappable (UTF-16 input, no memory) */
};

static void *arena_alloc(struct ytree *t, size_t size)
{
    size = (size + 7u) & ~(size_t)7u;
    struct arena_chunk *c = t->chunks;
    if (c != NULL && c->cap - c->used >= size) {
        void *p = (char *)c + CHUNK_HDR + c->used;
        c->used += size;
        return p;
    }
    size_t cap = size > ARENA_CHUNK / 4 ? size : ARENA_CHUNK;
    if (cap > SIZE_MAX - CHUNK_HDR)
        return NULL;
    struct arena_chunk *n = weft_malloc(CHUNK_HDR + cap);
    if (n == NULL)
        return NULL;
    n->cap = cap;
    n->used = size;
    if (c != NULL && cap != ARENA_CHUNK) {
        /* A large block gets a chunk of its own behind the current one,
         * which keeps serving small blocks. */
        n->next = c->next;
        c->next = n;
    } else {
        n->next = c;
        t->chunks = n;
    }
    return (char *)n + CHUNK_HDR;
}

static struct ytree *tree_new(void)
{
    struct ytree *t = weft_calloc(1, sizeof(*t));
    return t;
}

void ytree_free(struct ytree *t)
{
    if (t == NULL)
        return;
    struct arena_chunk *c = t->chunks;
    while (c != NULL) {
        struct arena_chunk *next = c->next;
        weft_free(c);
        c = next;
    }
    weft_free(t->line_starts);
    weft_free(t);
}

const struct ytree_node *ytree_root(const struct ytree *t)
{
    return t ? t->root : NULL;
}

/* ---- scalar typing (YAML 1.2 core schema) ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool text_is(const char *s, size_t n, const char *word)
{
    size_t wl = strlen(word);
    return n == wl && memcmp(s, word, n) == 0;
}

/* Radix integer (0x / 0o forms) without sign; WEFT_ELIMIT past INT64_MAX. */
static int parse_radix(const char *s, size_t n, unsigned radix, int64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned d = (unsigned)num_hex_digit(c);
        if (v > ((uint64_t)INT64_MAX - d) / radix)
            return WEFT_ELIMIT;
        v = v * radix + d;
    }
    *out = (int64_t)v;
    return 0;
}

/* Parses an integer scalar in any core-schema form. */
static int parse_core_int(const char *s, size_t n, int64_t *out)
{
    if (n > 2 && s[0] == '0' && s[1] == 'x')
        return parse_radix(s + 2, n - 2, 16, out);
    if (n > 2 && s[0] == '0' && s[1] == 'o')
        return parse_radix(s + 2, n - 2, 8, out);
    return num_parse_i64(s, n, INT64_MIN, INT64_MAX, out);
}

static bool match_int(const char *s, size_t n)
{
    size_t i = 0;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        for (i = 2; i < n; i++) {
            if (s[1] == 'x' ? !is_hex(s[i]) : (s[i] < '0' || s[i] > '7'))
                return false;
        }
        return true;
    }
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    if (i == n)
        return false;
    for (; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
    }
    return true;
}

/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static bool match_float(const char *s, size_t n)
{
    size_t i = 0, digits = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && is_digit(s[i])) {
            i++;
            digits++;
        }
        if (digits == 0)
            return false;
    } else {
        while (i < n && is_digit(s[i])) {
            i++;
            digits++;
        }
        if (digits == 0)
            return false;
        if (i < n && s[i] == '.') {
            i++;
            while (i < n && is_digit(s[i]))
                i++;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t ed = 0;
        while (i < n && is_digit(s[i])) {
            i++;
            ed++;
        }
        if (ed == 0)
            return false;
    }
    return i == n;
}

static bool match_special_float(const char *s, size_t n)
{
    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        s++;
        n--;
    }
    return text_is(s, n, ".inf") || text_is(s, n, ".Inf") ||
           text_is(s, n, ".INF") || text_is(s, n, ".nan") ||
           text_is(s, n, ".NaN") || text_is(s, n, ".NAN");
}

/* Core-schema type of a plain scalar; *bad set when it is a number JSON
 * cannot hold (then the type returned is the intended one). */
static enum ytree_type resolve_plain(const char *s, size_t n, bool *bad)
{
    *bad = false;
    /* Most plain scalars are words: only these can start a non-string. */
    if (n > 0 && strchr("0123456789+-.~nNtTfF", s[0]) == NULL)
        return YTREE_STRING;
    if (n == 0 || text_is(s, n, "~") || text_is(s, n, "null") ||
        text_is(s, n, "Null") || text_is(s, n, "NULL"))
        return YTREE_NULL;
    if (text_is(s, n, "true") || text_is(s, n, "True") ||
        text_is(s, n, "TRUE") || text_is(s, n, "false") ||
        text_is(s, n, "False") || text_is(s, n, "FALSE"))
        return YTREE_BOOL;
    if (match_int(s, n)) {
        int64_t v;
        *bad = parse_core_int(s, n, &v) != 0;
        return YTREE_INT;
    }
    if (match_float(s, n)) {
        double v;
        *bad = num_parse_double(s, n, &v) != 0;
        return YTREE_FLOAT;
    }
    if (match_special_float(s, n)) {
        *bad = true;
        return YTREE_FLOAT;
    }
    return YTREE_STRING;
}

/* ---- queries ---- */

const struct ytree_node *ytree_map_get(const struct ytree_node *map,
                                       const char *key)
{
    if (map == NULL || map->kind != YTREE_MAPPING)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < map->len; i++) {
        const struct ytree_node *k = map->u.items[2 * i];
        if (k->len == kl && memcmp(k->u.text, key, kl) == 0)
            return map->u.items[2 * i + 1];
    }
    return NULL;
}

bool ytree_is_string(const struct ytree_node *n)
{
    return n != NULL && n->kind == YTREE_SCALAR && n->type == YTREE_STRING;
}

const char *ytree_describe(const struct ytree_node *n)
{
    if (n == NULL)
        return "nothing";
    if (n->kind == YTREE_SEQUENCE)
        return "a sequence";
    if (n->kind == YTREE_MAPPING)
        return "a mapping";
    switch ((enum ytree_type)n->type) {
    case YTREE_NULL:
        return "null";
    case YTREE_BOOL:
        return "a boolean";
    case YTREE_INT:
    case YTREE_FLOAT:
        return "a number";
    case YTREE_STRING:
        break;
    }
    return "a string";
}

int ytree_get_int(const struct ytree_node *n, int64_t *out)
{
    if (n == NULL || n->kind != YTREE_SCALAR || n->type != YTREE_INT)
        return WEFT_ETYPE;
    return parse_core_int(n->u.text, n->len, out) ? WEFT_ETYPE : 0;
}

int ytree_get_double(const struct ytree_node *n, double *out)
{
    if (n == NULL || n->kind != YTREE_SCALAR)
        return WEFT_ETYPE;
    if (n->type == YTREE_INT) {
        int64_t v;
        if (parse_core_int(n->u.text, n->len, &v))
            return WEFT_ETYPE;
        *out = (double)v;
        return 0;
    }
    if (n->type == YTREE_FLOAT)
        return num_parse_double(n->u.text, n->len, out) ? WEFT_ETYPE : 0;
    return WEFT_ETYPE;
}

int ytree_get_bool(const struct ytree_node *n, bool *out)
{
    if (n == NULL || n->kind != YTREE_SCALAR || n->type != YTREE_BOOL)
        return WEFT_ETYPE;
    *out = n->u.text[0] == 't' || n->u.text[0] == 'T';
    return 0;
}

/* ---- source positions ---- */

/* Width of the UTF-8 sequence starting with byte c (1 for stray bytes). */
static size_t utf8_width(unsigned char c)
{
    if (c >= 0xF0)
        return 4;
    if (c >= 0xE0)
        return 3;
    if (c >= 0xC0)
        return 2;
    return 1;
}

/* Length of the line break at s[i] as libyaml counts breaks (CR LF, CR,
 * LF, NEL, LS, PS), or 0. */
static size_t break_len(const char *s, size_t n, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    if (c == '\r')
        return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
    if (c == '\n')
        return 1;
    if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0x85)
        return 2;
    if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
        ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9))
        return 3;
    return 0;
}

static bool has_utf8_bom(const char *s, size_t n)
{
    return n >= 3 && (unsigned char)s[0] == 0xEF &&
           (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF;
}

static bool has_utf16_bom(const char *s, size_t n)
{
    return n >= 2 &&
           (((unsigned char)s[0] == 0xFE && (unsigned char)s[1] == 0xFF) ||
            ((unsigned char)s[0] == 0xFF && (unsigned char)s[1] == 0xFE));
}

static int build_line_index(struct ytree *t)
{
    size_t n = t->srclen, count = 1;
    for (size_t i = 0; i < n;) {
        size_t bl = break_len(t->src, n, i);
        if (bl) {
            count++;
            i += bl;
        } else {
            i++;
        }
    }
    uint32_t *ls = weft_malloc(count * sizeof(*ls));
    if (ls == NULL)
        return WEFT_ENOMEM;
    size_t k = 0;
    ls[k++] = has_utf8_bom(t->src, n) ? 3 : 0;
    for (size_t i = 0; i < n;) {
        size_t bl = break_len(t->src, n, i);
        if (bl) {
            i += bl;
            ls[k++] = (uint32_t)i;
        } else {
            i++;
        }
    }
    t->line_starts = ls;
    t->nlines = count;
    return 0;
}

/* Byte offset in the source of 1-based (line, column), or SIZE_MAX. */
static size_t source_offset(struct ytree *t, int line, int column)
{
    if (t->src == NULL || t->no_lines || line <= 0 || column <= 0)
        return SIZE_MAX;
    if (t->line_starts == NULL) {
        if (has_utf16_bom(t->src, t->srclen) || build_line_index(t) != 0) {
            t->no_lines = true;
            return SIZE_MAX;
        }
    }
    if ((size_t)line > t->nlines)
        return SIZE_MAX;
    size_t pos = t->line_starts[line - 1];
    for (int c = 1; c < column; c++) {
        if (pos >= t->srclen || break_len(t->src, t->srclen, pos))
            return SIZE_MAX;
        pos += utf8_width((unsigned char)t->src[pos]);
    }
    return pos <= t->srclen ? pos : SIZE_MAX;
}

/* Bytes a double-quoted escape at s[0] ('\\') occupies in the source and
 * produces in the value; false for escapes this mapping does not follow
 * (line continuations). */
static bool dq_escape(const char *s, size_t n, size_t *src_len, size_t *val_len)
{
    if (n < 2)
        return false;
    size_t hex = 0;
    switch (s[1]) {
    case 'x':
        hex = 2;
        break;
    case 'u':
        hex = 4;
        break;
    case 'U':
        hex = 8;
        break;
    case 'N':
    case '_':
        *src_len = 2;
        *val_len = s[1] == 'N' ? 2 : 2; /* U+0085, U+00A0: 2 bytes */
        return true;
    case 'L':
    case 'P':
        *src_len = 2;
        *val_len = 3; /* U+2028, U+2029 */
        return true;
    case '\r':
    case '\n':
        return false;
    default:
        *src_len = 2;
        *val_len = 1;
        return true;
    }
    if (n < 2 + hex)
        return false;
    uint32_t cp = 0;
    for (size_t i = 0; i < hex; i++) {
        char c = s[2 + i];
        if (!is_hex(c))
            return false;
        cp = cp * 16 + (uint32_t)num_hex_digit(c);
    }
    *src_len = 2 + hex;
    *val_len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    return true;
}

/* Walks a single-line flow scalar from its first source byte until `off`
 * value bytes are consumed; returns the column advance in characters, or
 * -1 when the walk leaves the line or the source disagrees. */
static long flow_advance(const struct ytree *t, const struct ytree_node *n,
                         size_t pos, size_t off)
{
    const char *s = t->src;
    size_t len = t->srclen;
    long cols = 0;
    size_t v = 0;
    if (n->style != YTREE_PLAIN) {
        pos++; /* the opening quote */
        cols++;
    }
    while (v < off) {
        if (pos >= len || break_len(s, len, pos))
            return -1;
        size_t sl = utf8_width((unsigned char)s[pos]), vl = sl;
        if (n->style == YTREE_SINGLE_QUOTED && s[pos] == '\'') {
            if (pos + 1 >= len || s[pos + 1] != '\'')
                return -1;
            sl = 2;
            vl = 1;
            cols++;
        } else if (n->style == YTREE_DOUBLE_QUOTED && s[pos] == '\\') {
            if (!dq_escape(s + pos, len - pos, &sl, &vl))
                return -1;
            cols += (long)sl - 1;
        }
        if (v + vl > off)
            break; /* off falls inside this character */
        v += vl;
        pos += sl;
        cols++;
    }
    return cols;
}

/* Position inside a literal block scalar: line k of the value is the k-th
 * line after the indicator line, at the block's indentation. */
static bool literal_position(struct ytree *t, const struct ytree_node *n,
                             size_t off, int *line, int *column)
{
    const char *v = n->u.text;
    size_t k = 0, bol = 0;
    for (size_t i = 0; i < off && i < n->len; i++) {
        if (v[i] == '\n') {
            k++;
            bol = i + 1;
        }
    }
    int first = n->line + 1;
    /* Indentation: leading spaces of the first non-empty content line. */
    size_t indent = SIZE_MAX;
    for (int l = first; (size_t)l <= t->nlines && indent == SIZE_MAX; l++) {
        size_t p = t->line_starts[l - 1], sp = 0;
        while (p + sp < t->srclen && t->src[p + sp] == ' ')
            sp++;
        if (p + sp < t->srclen && !break_len(t->src, t->srclen, p + sp))
            indent = sp;
    }
    if (indent == SIZE_MAX || (size_t)first + k > t->nlines)
        return false;
    long cols = 0;
    for (size_t i = bol; i < off && i < n->len;) {
        i += utf8_width((unsigned char)v[i]);
        cols++;
    }
    *line = first + (int)k;
    *column = (int)indent + 1 + (int)cols;
    return true;
}

void ytree_value_position(const struct ytree *tc, const struct ytree_node *n,
                          size_t offset, int *line, int *column)
{
    /* The line index is a cache: building it does not change the tree as
     * callers see it. */
    struct ytree *t = (struct ytree *)tc;
    *line = n->line;
    *column = n->column;
    if (n->kind != YTREE_SCALAR || offset > n->len)
        return;
    size_t pos = source_offset(t, n->line, n->column);
    if (pos == SIZE_MAX)
        return;
    if (n->style == YTREE_LITERAL) {
        int l, c;
        if (literal_position(t, n, offset, &l, &c)) {
            *line = l;
            *column = c;
        }
        return;
    }
    if (n->style == YTREE_FOLDED)
        return;
    long adv = flow_advance(t, n, pos, offset);
    if (adv >= 0 && adv < INT32_MAX - n->column)
        *column = n->column + (int)adv;
}

/* 1-based line and character column of byte offset off in src. */
static void offset_position(const char *src, size_t len, size_t off, int *line,
                            int *column)
{
    long l = 1, c = 1;
    size_t i = has_utf8_bom(src, len) ? 3 : 0;
    if (off > len)
        off = len;
    while (i < off) {
        size_t bl = break_len(src, len, i);
        if (bl) {
            l++;
            c = 1;
            i += bl;
        } else {
            c++;
            i += utf8_width((unsigned char)src[i]);
        }
    }
    *line = l > INT32_MAX ? INT32_MAX : (int)l;
    *column = c > INT32_MAX ? INT32_MAX : (int)c;
}

/* ---- the builder ---- */

struct anchor {
    struct ytree_node *node;
    uint64_t nodes;  /* expanded node count of the anchored subtree */
    uint64_t bytes;  /* expanded scalar bytes */
    uint32_t height; /* levels, 1 for a scalar */
    bool done;       /* false while the anchored collection is open */
};

struct frame {
    struct ytree_node *node;
    size_t base;     /* its first child on the child stack */
    uint32_t height; /* tallest child so far */
    struct anchor *anchor;
    uint64_t nodes0; /* expanded counters when it started */
    uint64_t bytes0;
};

struct builder {
    struct ytree *t;
    struct diag *d;
    struct frame frames[YTREE_MAX_DEPTH];
    int depth;
    struct ytree_node **stack;
    size_t nstack;
    size_t capstack;
    struct strmap anchors;
    uint64_t nodes;       /* created */
    uint64_t exp_nodes;   /* created + expanded through aliases */
    uint64_t exp_bytes;   /* scalar bytes, same */
    uint64_t alias_nodes; /* added by aliases alone */
    uint64_t alias_bytes;
    int docs;
    bool root_set;
};

static int fatal(struct builder *b, int code, int line, int col,
                 const char *msg)
{
    diag_error(b->d, line, col, "%s", msg);
    return code;
}

static struct ytree_node *new_node(struct builder *b, enum ytree_kind kind,
                                   const yaml_mark_t *m, int *rc)
{
    int line = m ? (int)m->line + 1 : 0, col = m ? (int)m->column + 1 : 0;
    if (b->nodes >= YTREE_MAX_NODES) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "document has more than %u nodes (the limit)",
                 (unsigned)YTREE_MAX_NODES);
        *rc = fatal(b, WEFT_ELIMIT, line, col, msg);
        return NULL;
    }
    struct ytree_node *n = arena_alloc(b->t, sizeof(*n));
    if (n == NULL) {
        *rc = WEFT_ENOMEM;
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    n->kind = (uint8_t)kind;
    n->type = YTREE_NULL;
    n->line = line;
    n->column = col;
    b->nodes++;
    b->exp_nodes++;
    return n;
}

static int stack_push(struct builder *b, struct ytree_node *n)
{
    if (b->nstack == b->capstack) {
        size_t ncap = b->capstack ? b->capstack * 2 : 256;
        struct ytree_node **s =
            weft_realloc(b->stack, ncap * sizeof(*b->stack));
        if (s == NULL)
            return WEFT_ENOMEM;
        b->stack = s;
        b->capstack = ncap;
    }
    b->stack[b->nstack++] = n;
    return 0;
}

/* True when the next child of the open collection is a mapping key. */
static bool at_key(const struct builder *b)
{
    if (b->depth == 0)
        return false;
    const struct frame *f = &b->frames[b->depth - 1];
    return f->node->kind == YTREE_MAPPING && (b->nstack - f->base) % 2 == 0;
}

/* Hands a finished node to its parent (or makes it the root). */
static int add_child(struct builder *b, struct ytree_node *n, uint32_t height)
{
    if (b->depth == 0) {
        b->t->root = n;
        b->root_set = true;
        return 0;
    }
    struct frame *f = &b->frames[b->depth - 1];
    if (height > f->height)
        f->height = height;
    return stack_push(b, n);
}

static int check_key_kind(struct builder *b, const struct ytree_node *n,
                          int line, int col)
{
    if (n->kind != YTREE_SCALAR && at_key(b))
        return fatal(b, WEFT_EINVAL, line, col,
                     "mapping keys must be scalars, not collections");
    return 0;
}

static int define_anchor(struct builder *b, const yaml_char_t *name,
                         struct anchor **out)
{
    size_t nl = strlen((const char *)name);
    struct anchor *a = strmap_get(&b->anchors, (const char *)name, nl);
    if (a == NULL) {
        char *key = arena_alloc(b->t, nl + 1);
        a = arena_alloc(b->t, sizeof(*a));
        if (key == NULL || a == NULL)
            return WEFT_ENOMEM;
        memcpy(key, name, nl + 1);
        int rc = strmap_put(&b->anchors, key, nl, a, NULL);
        if (rc)
            return rc;
    }
    /* A redefined anchor names the latest node from here on. */
    memset(a, 0, sizeof(*a));
    *out = a;
    return 0;
}

enum tag_class {
    TAG_NONE,
    TAG_STR,
    TAG_INT,
    TAG_FLOAT,
    TAG_BOOL,
    TAG_NULL,
    TAG_SEQ,
    TAG_MAP,
    TAG_OTHER
};

static enum tag_class classify_tag(const yaml_char_t *tag)
{
    static const char core[] = "tag:yaml.org,2002:";
    if (tag == NULL || strcmp((const char *)tag, "!") == 0)
        return TAG_NONE;
    const char *s = (const char *)tag;
    if (strncmp(s, core, sizeof(core) - 1) != 0)
        return TAG_OTHER;
    s += sizeof(core) - 1;
    if (strcmp(s, "str") == 0)
        return TAG_STR;
    if (strcmp(s, "int") == 0)
        return TAG_INT;
    if (strcmp(s, "float") == 0)
        return TAG_FLOAT;
    if (strcmp(s, "bool") == 0)
        return TAG_BOOL;
    if (strcmp(s, "null") == 0)
        return TAG_NULL;
    if (strcmp(s, "seq") == 0)
        return TAG_SEQ;
    if (strcmp(s, "map") == 0)
        return TAG_MAP;
    return TAG_OTHER;
}

static void report_tag(struct builder *b, const yaml_char_t *tag, int line,
                       int col)
{
    diag_error(b->d, line, col, "unsupported YAML tag '%.64s'",
               (const char *)tag);
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
    int rc = 0;
    const yaml_mark_t *m = &ev->start_mark;
    int line = (int)m->line + 1, col = (int)m->column + 1;
    size_t len = ev->data.scalar.length;
    if (len > YTREE_MAX_SCALAR) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "scalar of %zu bytes is longer than the limit of %u bytes",
                 len, (unsigned)YTREE_MAX_SCALAR);
        return fatal(b, WEFT_ELIMIT, line, col, msg);
    }
    struct ytree_node *n = new_node(b, YTREE_SCALAR, m, &rc);
    if (n == NULL)
        return rc;
    char *text = arena_alloc(b->t, len + 1);
    if (text == NULL)
        return WEFT_ENOMEM;
    memcpy(text, ev->data.scalar.value, len);
    text[len] = '\0';
    n->u.text = text;
    n->len = (uint32_t)len;
    switch (ev->data.scalar.style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
        n->style = YTREE_SINGLE_QUOTED;
        break;
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        n->style = YTREE_DOUBLE_QUOTED;
        break;
    case YAML_LITERAL_SCALAR_STYLE:
        n->style = YTREE_LITERAL;
        break;
    case YAML_FOLDED_SCALAR_STYLE:
        n->style = YTREE_FOLDED;
        break;
    default:
        n->style = YTREE_PLAIN;
        break;
    }
    n->quoted = n->style != YTREE_PLAIN;
    enum tag_class tc = classify_tag(ev->data.scalar.tag);
    bool bad = false;
    if (tc == TAG_STR || (tc == TAG_NONE && ev->data.scalar.tag != NULL) ||
        n->quoted) {
        n->type = YTREE_STRING;
    } else {
        n->type = (uint8_t)resolve_plain(text, len, &bad);
    }
    if (n->quoted && tc != TAG_NONE && tc != TAG_STR)
        tc = TAG_OTHER; /* a typed tag on a quoted scalar: not resolvable */
    if (tc == TAG_OTHER || tc == TAG_SEQ || tc == TAG_MAP ||
        (tc == TAG_INT && n->type != YTREE_INT) ||
        (tc == TAG_FLOAT && n->type != YTREE_FLOAT && n->type != YTREE_INT) ||
        (tc == TAG_BOOL && n->type != YTREE_BOOL) ||
        (tc == TAG_NULL && n->type != YTREE_NULL))
        report_tag(b, ev->data.scalar.tag, line, col);
    if (bad) {
        diag_error(b->d, line, col,
                   "number '%.40s' cannot be represented (quote it to make "
                   "it a string)",
                   text);
        n->type = YTREE_STRING;
    }
    b->exp_bytes += len;
    if (ev->data.scalar.anchor != NULL) {
        struct anchor *a;
        rc = define_anchor(b, ev->data.scalar.anchor, &a);
        if (rc)
            return rc;
        a->node = n;
        a->nodes = 1;
        a->bytes = len;
        a->height = 1;
        a->done = true;
    }
    return add_child(b, n, 1);
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    int line = (int)m->line + 1, col = (int)m->column + 1;
    const char *name = (const char *)ev->data.alias.anchor;
    struct anchor *a = strmap_get(&b->anchors, name, strlen(name));
    char msg[160];
    if (a == NULL) {
        snprintf(msg, sizeof(msg), "unknown anchor '*%.64s'", name);
        return fatal(b, WEFT_EINVAL, line, col, msg);
    }
    if (!a->done) {
        snprintf(msg, sizeof(msg),
                 "alias '*%.64s' refers to a node that contains it", name);
        return fatal(b, WEFT_EINVAL, line, col, msg);
    }
    if ((uint64_t)b->depth + a->height > YTREE_MAX_DEPTH) {
        snprintf(msg, sizeof(msg), "alias '*%.64s' nests deeper than %d levels",
                 name, YTREE_MAX_DEPTH);
        return fatal(b, WEFT_ELIMIT, line, col, msg);
    }
    b->alias_nodes += a->nodes;
    b->alias_bytes += a->bytes;
    if (b->alias_nodes > YTREE_MAX_ALIAS_NODES ||
        b->alias_bytes > YTREE_MAX_ALIAS_BYTES) {
        snprintf(msg, sizeof(msg),
                 "aliases expand to more than %u nodes or %u bytes "
                 "(alias bomb?)",
                 (unsigned)YTREE_MAX_ALIAS_NODES,
                 (unsigned)YTREE_MAX_ALIAS_BYTES);
        return fatal(b, WEFT_ELIMIT, line, col, msg);
    }
    b->exp_nodes += a->nodes;
    b->exp_bytes += a->bytes;
    int rc = check_key_kind(b, a->node, line, col);
    if (rc)
        return rc;
    return add_child(b, a->node, a->height);
}

static int on_start(struct builder *b, const yaml_event_t *ev,
                    enum ytree_kind kind)
{
    int rc = 0;
    const yaml_mark_t *m = &ev->start_mark;
    int line = (int)m->line + 1, col = (int)m->column + 1;
    if (b->depth >= YTREE_MAX_DEPTH) {
        char msg[96];
        snprintf(msg, sizeof(msg), "nesting deeper than %d levels",
                 YTREE_MAX_DEPTH);
        return fatal(b, WEFT_ELIMIT, line, col, msg);
    }
    if (at_key(b))
        return fatal(b, WEFT_EINVAL, line, col,
                     "mapping keys must be scalars, not collections");
    struct ytree_node *n = new_node(b, kind, m, &rc);
    if (n == NULL)
        return rc;
    const yaml_char_t *tag = kind == YTREE_MAPPING
                                 ? ev->data.mapping_start.tag
                                 : ev->data.sequence_start.tag;
    const yaml_char_t *anchor = kind == YTREE_MAPPING
                                    ? ev->data.mapping_start.anchor
                                    : ev->data.sequence_start.anchor;
    enum tag_class tc = classify_tag(tag);
    if (tc != TAG_NONE && tc != (kind == YTREE_MAPPING ? TAG_MAP : TAG_SEQ))
        report_tag(b, tag, line, col);
    struct frame *f = &b->frames[b->depth++];
    f->node = n;
    f->base = b->nstack;
    f->height = 0;
    f->anchor = NULL;
    f->nodes0 = b->exp_nodes - 1;
    f->bytes0 = b->exp_bytes;
    if (anchor != NULL) {
        rc = define_anchor(b, anchor, &f->anchor);
        if (rc)
            return rc;
        f->anchor->node = n;
    }
    return 0;
}

static bool same_key(const struct ytree_node *a, const struct ytree_node *b)
{
    return a->len == b->len && memcmp(a->u.text, b->u.text, a->len) == 0;
}

static void report_dup(struct builder *b, const struct ytree_node *first,
                       const struct ytree_node *dup)
{
    diag_error(b->d, dup->line, dup->column,
               "duplicate key '%.64s' (first at %d:%d)", dup->u.text,
               first->line, first->column);
}

/* Drops pairs whose key repeats an earlier one (reported), in place on the
 * child stack from `base`. Returns the number of pairs kept, or -1 on
 * allocation failure. */
static long dedup_pairs(struct builder *b, size_t base, size_t pairs)
{
    if (pairs == 0)
        return 0; /* the child stack may not even exist yet */
    struct ytree_node **it = b->stack + base;
    size_t kept = 0;
    if (pairs <= DUP_LINEAR_MAX) {
        for (size_t i = 0; i < pairs; i++) {
            size_t j;
            for (j = 0; j < kept; j++) {
                if (same_key(it[2 * j], it[2 * i]))
                    break;
            }
            if (j < kept) {
                report_dup(b, it[2 * j], it[2 * i]);
                continue;
            }
            it[2 * kept] = it[2 * i];
            it[2 * kept + 1] = it[2 * i + 1];
            kept++;
        }
        return (long)kept;
    }
    struct strmap seen;
    strmap_init(&seen);
    for (size_t i = 0; i < pairs; i++) {
        struct ytree_node *k = it[2 * i];
        void *prev = NULL;
        int rc = strmap_put(&seen, k->u.text, k->len, k, &prev);
        if (rc == WEFT_ENOMEM) {
            strmap_deinit(&seen);
            return -1;
        }
        if (rc == WEFT_EINVAL) {
            report_dup(b, prev, k);
            continue;
        }
        it[2 * kept] = k;
        it[2 * kept + 1] = it[2 * i + 1];
        kept++;
    }
    strmap_deinit(&seen);
    return (long)kept;
}

static int on_end(struct builder *b)
{
    struct frame *f = &b->frames[--b->depth];
    struct ytree_node *n = f->node;
    size_t count = b->nstack - f->base;
    if (n->kind == YTREE_MAPPING) {
        long kept = dedup_pairs(b, f->base, count / 2);
        if (kept < 0)
            return WEFT_ENOMEM;
        count = (size_t)kept * 2;
    }
    if (count > 0) {
        n->u.items = arena_alloc(b->t, count * sizeof(*n->u.items));
        if (n->u.items == NULL)
            return WEFT_ENOMEM;
        memcpy(n->u.items, b->stack + f->base, count * sizeof(*n->u.items));
    }
    n->len = (uint32_t)(n->kind == YTREE_MAPPING ? count / 2 : count);
    b->nstack = f->base;
    uint32_t height = f->height + 1;
    if (f->anchor != NULL) {
        f->anchor->nodes = b->exp_nodes - f->nodes0;
        f->anchor->bytes = b->exp_bytes - f->bytes0;
        f->anchor->height = height;
        f->anchor->done = true;
    }
    return add_child(b, n, height);
}

/* Turns libyaml's error into a positioned diagnostic. */
static int report_yaml_error(struct builder *b, const yaml_parser_t *p,
                             const char *src, size_t len)
{
    int line, col;
    if (p->error == YAML_MEMORY_ERROR)
        return WEFT_ENOMEM;
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR) {
        offset_position(src, len, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            diag_error(b->d, line, col,
                       "not valid UTF-8 text (binary file?): %s (0x%02X at "
                       "byte %zu)",
                       problem, (unsigned)p->problem_value, p->problem_offset);
        else
            diag_error(b->d, line, col,
                       "not valid UTF-8 text (binary file?): %s at byte %zu",
                       problem, p->problem_offset);
        return WEFT_EINVAL;
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    /* A tab where indentation is expected is the classic mistake: say so. */
    const char *hint = "";
    struct ytree probe = {.src = src, .srclen = len};
    size_t off = source_offset(&probe, line, col);
    if (off < len && src[off] == '\t')
        hint = "; tabs cannot be used for indentation";
    else if (off < len && line > 1) {
        /* libyaml often notices a tab-indented line one token later. */
        size_t bol = probe.line_starts[line - 1];
        if (bol < len && src[bol] == '\t')
            hint = "; tabs cannot be used for indentation";
    }
    if (p->context != NULL)
        diag_error(b->d, line, col, "invalid YAML: %s (%s at %d:%d)%s", problem,
                   p->context, (int)p->context_mark.line + 1,
                   (int)p->context_mark.column + 1, hint);
    else
        diag_error(b->d, line, col, "invalid YAML: %s%s", problem, hint);
    weft_free(probe.line_starts);
    return WEFT_EINVAL;
}

static int on_event(struct builder *b, const yaml_event_t *ev, bool *done)
{
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->docs > 1)
            return fatal(b, WEFT_EINVAL, (int)ev->start_mark.line + 1,
                         (int)ev->start_mark.column + 1,
                         "a second YAML document; a workflow file holds "
                         "exactly one");
        return 0;
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev);
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, ev, YTREE_SEQUENCE);
    case YAML_MAPPING_START_EVENT:
        return on_start(b, ev, YTREE_MAPPING);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(b);
    }
    return 0;
}

int ytree_parse(const char *src, size_t len, struct diag *d, struct ytree **out)
{
    int rc = 0;
    yaml_parser_t parser;
    bool parser_ok = false, done = false;
    struct builder b;
    memset(&b, 0, sizeof(b));
    b.d = d;
    strmap_init(&b.anchors);
    if (len > YTREE_MAX_INPUT) {
        diag_error(d, 0, 0, "file is %zu bytes; the limit is %u bytes (%u MiB)",
                   len, (unsigned)YTREE_MAX_INPUT,
                   (unsigned)(YTREE_MAX_INPUT >> 20));
        rc = WEFT_ELIMIT;
        goto cleanup;
    }
    b.t = tree_new();
    if (b.t == NULL) {
        rc = WEFT_ENOMEM;
        goto cleanup;
    }
    b.t->src = src;
    b.t->srclen = len;
    if (!yaml_parser_initialize(&parser)) {
        rc = WEFT_ENOMEM;
        goto cleanup;
    }
    parser_ok = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)src, len);
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = report_yaml_error(&b, &parser, src, len);
            goto cleanup;
        }
        rc = on_event(&b, &ev, &done);
        yaml_event_delete(&ev);
        if (rc)
            goto cleanup;
    }
    *out = b.t;
    b.t = NULL;
cleanup:
    if (parser_ok)
        yaml_parser_delete(&parser);
    ytree_free(b.t);
    weft_free(b.stack);
    strmap_deinit(&b.anchors);
    return rc;
}

/* ---- JSON to tree ---- */

struct jbuild {
    struct ytree *t;
    struct diag *d;
    uint64_t nodes;
};

static struct ytree_node *jnode(struct jbuild *jb, enum ytree_kind kind,
                                int *rc)
{
    if (jb->nodes >= YTREE_MAX_NODES) {
        diag_error(jb->d, 0, 0, "document has more than %u nodes (the limit)",
                   (unsigned)YTREE_MAX_NODES);
        *rc = WEFT_ELIMIT;
        return NULL;
    }
    struct ytree_node *n = arena_alloc(jb->t, sizeof(*n));
    if (n == NULL) {
        *rc = WEFT_ENOMEM;
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    n->kind = (uint8_t)kind;
    n->type = YTREE_NULL;
    jb->nodes++;
    return n;
}

static int jtext(struct jbuild *jb, struct ytree_node *n, const char *s,
                 size_t len)
{
    if (len > YTREE_MAX_SCALAR) {
        diag_error(jb->d, 0, 0,
                   "scalar of %zu bytes is longer than the limit of %u "
                   "bytes",
                   len, (unsigned)YTREE_MAX_SCALAR);
        return WEFT_ELIMIT;
    }
    char *text = arena_alloc(jb->t, len + 1);
    if (text == NULL)
        return WEFT_ENOMEM;
    memcpy(text, s, len);
    text[len] = '\0';
    n->u.text = text;
    n->len = (uint32_t)len;
    return 0;
}

static int jconvert(struct jbuild *jb, const json_t *j, int depth,
                    struct ytree_node **out)
{
    int rc = 0;
    if (depth > YTREE_MAX_DEPTH) {
        diag_error(jb->d, 0, 0, "nesting deeper than %d levels",
                   YTREE_MAX_DEPTH);
        return WEFT_ELIMIT;
    }
    if (json_is_object(j) || json_is_array(j)) {
        bool obj = json_is_object(j);
        struct ytree_node *n =
            jnode(jb, obj ? YTREE_MAPPING : YTREE_SEQUENCE, &rc);
        if (n == NULL)
            return rc;
        size_t count = obj ? json_object_size(j) : json_array_size(j);
        size_t slots = obj ? count * 2 : count;
        if (count > YTREE_MAX_NODES) {
            diag_error(jb->d, 0, 0, "document has more than %u nodes",
                       (unsigned)YTREE_MAX_NODES);
            return WEFT_ELIMIT;
        }
        if (slots > 0) {
            n->u.items = arena_alloc(jb->t, slots * sizeof(*n->u.items));
            if (n->u.items == NULL)
                return WEFT_ENOMEM;
        }
        n->len = (uint32_t)count;
        if (obj) {
            size_t i = 0;
            void *iter = json_object_iter((json_t *)j);
            for (; iter != NULL && i < count;
                 iter = json_object_iter_next((json_t *)j, iter), i++) {
                struct ytree_node *k = jnode(jb, YTREE_SCALAR, &rc);
                if (k == NULL)
                    return rc;
                k->type = YTREE_STRING;
                k->style = YTREE_DOUBLE_QUOTED;
                k->quoted = true;
                rc = jtext(jb, k, json_object_iter_key(iter),
                           json_object_iter_key_len(iter));
                if (rc)
                    return rc;
                n->u.items[2 * i] = k;
                rc = jconvert(jb, json_object_iter_value(iter), depth + 1,
                              &n->u.items[2 * i + 1]);
                if (rc)
                    return rc;
            }
        } else {
            for (size_t i = 0; i < count; i++) {
                rc = jconvert(jb, json_array_get(j, i), depth + 1,
                              &n->u.items[i]);
                if (rc)
                    return rc;
            }
        }
        *out = n;
        return 0;
    }
    struct ytree_node *n = jnode(jb, YTREE_SCALAR, &rc);
    if (n == NULL)
        return rc;
    char num[64];
    switch (json_typeof(j)) {
    case JSON_STRING:
        n->type = YTREE_STRING;
        n->style = YTREE_DOUBLE_QUOTED;
        n->quoted = true;
        rc = jtext(jb, n, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        n->type = YTREE_INT;
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(j));
        rc = jtext(jb, n, num, strlen(num));
        break;
    case JSON_REAL: {
        n->type = YTREE_FLOAT;
        char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
        if (s == NULL)
            return WEFT_ENOMEM;
        rc = jtext(jb, n, s, strlen(s));
        weft_free(s);
        break;
    }
    case JSON_TRUE:
        n->type = YTREE_BOOL;
        rc = jtext(jb, n, "true", 4);
        break;
    case JSON_FALSE:
        n->type = YTREE_BOOL;
        rc = jtext(jb, n, "false", 5);
        break;
    default:
        n->type = YTREE_NULL;
        rc = jtext(jb, n, "null", 4);
        break;
    }
    if (rc)
        return rc;
    *out = n;
    return 0;
}

int ytree_from_json(const json_t *json, struct diag *d, struct ytree **out)
{
    struct jbuild jb = {.t = tree_new(), .d = d, .nodes = 0};
    struct ytree_node *root = NULL;
    int rc = 0;
    if (jb.t == NULL)
        return WEFT_ENOMEM;
    if (json != NULL) {
        rc = jconvert(&jb, json, 1, &root);
        if (rc)
            goto cleanup;
    }
    jb.t->root = root;
    *out = jb.t;
    jb.t = NULL;
cleanup:
    ytree_free(jb.t);
    return rc;
}

/* ---- tree to JSON ---- */

static json_t *scalar_to_json(const struct ytree_node *n)
{
    switch ((enum ytree_type)n->type) {
    case YTREE_NULL:
        return json_null();
    case YTREE_BOOL: {
        bool v = false;
        ytree_get_bool(n, &v);
        return json_boolean(v);
    }
    case YTREE_INT: {
        int64_t v = 0;
        ytree_get_int(n, &v);
        return json_integer((json_int_t)v);
    }
    case YTREE_FLOAT: {
        double v = 0;
        ytree_get_double(n, &v);
        return json_real(v);
    }
    case YTREE_STRING:
        break;
    }
    return json_stringn(n->u.text, n->len);
}

json_t *ytree_to_json(const struct ytree_node *n)
{
    if (n->kind == YTREE_SCALAR)
        return scalar_to_json(n);
    json_t *c = n->kind == YTREE_MAPPING ? json_object() : json_array();
    if (c == NULL)
        return NULL;
    for (uint32_t i = 0; i < n->len; i++) {
        int rc;
        if (n->kind == YTREE_MAPPING) {
            const struct ytree_node *k = n->u.items[2 * i];
            json_t *v = ytree_to_json(n->u.items[2 * i + 1]);
            rc = v ? json_object_setn_new(c, k->u.text, k->len, v) : -1;
        } else {
            json_t *v = ytree_to_json(n->u.items[i]);
            rc = v ? json_array_append_new(c, v) : -1;
        }
        if (rc != 0) {
            json_decref(c);
            return NULL;
        }
    }
    return c;
}

/* Strings up to this long without anything to escape are written with
 * one append (most ids, keys and names). */
#define JSON_FAST_STRING 126

int ytree_write_json_string(struct buf *b, const char *s, size_t len)
{
    if (len <= JSON_FAST_STRING) {
        char tmp[JSON_FAST_STRING + 2];
        size_t i = 0;
        while (i < len && (unsigned char)s[i] >= 0x20 && s[i] != '"' &&
               s[i] != '\\')
            i++;
        if (i == len) {
            tmp[0] = '"';
            memcpy(tmp + 1, s, len);
            tmp[len + 1] = '"';
            return buf_append(b, tmp, len + 2);
        }
    }
    int rc = buf_append_char(b, '"');
    size_t run = 0; /* start of the pending run of plain bytes */
    for (size_t i = 0; rc == 0 && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = buf_append(b, s + run, i - run);
        run = i + 1;
        if (rc)
            break;
        switch (c) {
        case '"':
            rc = buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = buf_append(b, "\\\\", 2);
            break;
        case '\b':
            rc = buf_append(b, "\\b", 2);
            break;
        case '\f':
            rc = buf_append(b, "\\f", 2);
            break;
        case '\n':
            rc = buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = buf_append(b, "\\t", 2);
            break;
        default:
            rc = buf_printf(b, "\\u%04X", (unsigned)c);
            break;
        }
    }
    if (rc == 0)
        rc = buf_append(b, s + run, len - run);
    if (rc == 0)
        rc = buf_append_char(b, '"');
    return rc;
}

int ytree_write_json_scalar(struct buf *b, const struct ytree_node *n)
{
    switch ((enum ytree_type)n->type) {
    case YTREE_NULL:
        return buf_append(b, "null", 4);
    case YTREE_BOOL: {
        bool v = false;
        ytree_get_bool(n, &v);
        return v ? buf_append(b, "true", 4) : buf_append(b, "false", 5);
    }
    case YTREE_INT: {
        int64_t v = 0;
        ytree_get_int(n, &v);
        return buf_printf(b, "%" PRId64, v);
    }
    case YTREE_FLOAT: {
        /* Reals are rare in workflows: let jansson format them, so the
         * digits are exactly those of json_dumps. */
        json_t *r = scalar_to_json(n);
        if (r == NULL)
            return WEFT_ENOMEM;
        char *s = json_dumps(r, JSON_ENCODE_ANY | JSON_COMPACT);
        json_decref(r);
        if (s == NULL)
            return WEFT_ENOMEM;
        int rc = buf_append_str(b, s);
        weft_free(s);
        return rc;
    }
    case YTREE_STRING:
        break;
    }
    return ytree_write_json_string(b, n->u.text, n->len);
}

/* jansson's JSON_SORT_KEYS order: bytewise, then shorter first. */
static int key_cmp(const struct ytree_node *a, const struct ytree_node *b)
{
    size_t m = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->u.text, b->u.text, m);
    if (r)
        return r;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int pair_cmp(const void *x, const void *y)
{
    struct ytree_node *const *a = x, *const *b = y;
    return key_cmp(a[0], b[0]);
}

int ytree_write_json(const struct ytree_node *n, struct buf *b)
{
    if (n->kind == YTREE_SCALAR)
        return ytree_write_json_scalar(b, n);
    int rc;
    if (n->kind == YTREE_SEQUENCE) {
        rc = buf_append_char(b, '[');
        for (uint32_t i = 0; rc == 0 && i < n->len; i++) {
            if (i > 0)
                rc = buf_append_char(b, ',');
            if (rc == 0)
                rc = ytree_write_json(n->u.items[i], b);
        }
        return rc ? rc : buf_append_char(b, ']');
    }
    /* Sort a copy of the pairs (key, value) by key. */
    struct ytree_node *small[2 * DUP_LINEAR_MAX];
    struct ytree_node **pairs = small;
    size_t np = n->len;
    if (np > DUP_LINEAR_MAX) {
        pairs = weft_malloc(np * 2 * sizeof(*pairs));
        if (pairs == NULL)
            return WEFT_ENOMEM;
    }
    if (np > 0)
        memcpy(pairs, n->u.items, np * 2 * sizeof(*pairs));
    qsort(pairs, np, 2 * sizeof(*pairs), pair_cmp);
    rc = buf_append_char(b, '{');
    for (size_t i = 0; rc == 0 && i < np; i++) {
        if (i > 0)
            rc = buf_append_char(b, ',');
        if (rc == 0)
            rc = ytree_write_json_string(b, pairs[2 * i]->u.text,
                                         pairs[2 * i]->len);
        if (rc == 0)
            rc = buf_append_char(b, ':');
        if (rc == 0)
            rc = ytree_write_json(pairs[2 * i + 1], b);
    }
    if (rc == 0)
        rc = buf_append_char(b, '}');
    if (pairs != small)
        weft_free(pairs);
    return rc;
}
