/* ytree.h - a YAML document as an immutable tree of positioned nodes.
 *
 * ytree_parse reads one YAML document with libyaml's event parser
 * (yaml_parser_parse) into a tree of scalars, sequences and mappings, each
 * node carrying the 1-based line and column where it starts, so that the
 * workflow validator can point at the offending text.
 *
 * Scalars are typed with the YAML 1.2 core schema: a plain (unquoted)
 * scalar is null (`null`, `~`, empty), a boolean (`true`/`false`), an
 * integer (`12`, `-3`, `0x1F`, `0o17`) or a float (`1.5`, `1e3`) when it
 * looks like one, else a string; quoted and block scalars are strings.
 * The data is JSON's: `.inf`, `.nan` and integers outside int64 are
 * rejected, and mapping keys must be scalars (compared by their text, so
 * `1` and `"1"` are the same key, as they are in JSON).
 *
 * Anchors and aliases are supported: an alias shares the anchored node, so
 * the tree is a DAG; walkers see it expanded. The expansion is budgeted
 * (YTREE_MAX_ALIAS_NODES, YTREE_MAX_ALIAS_BYTES) so an alias bomb ("billion
 * laughs") is rejected while it is read, not after it has exploded.
 * Merge keys (`<<`) are YAML 1.1 and not supported: `<<` is a plain key.
 *
 * Nodes, their item arrays and scalar text live in one arena owned by the
 * tree, so loading a file of a million nodes costs a few large
 * allocations, and freeing it is one walk over the chunk list.
 */
#ifndef WEFT_COMMON_YTREE_H
#define WEFT_COMMON_YTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "diag.h"

/* Largest input accepted. A workflow of WF_MAX_STEPS (200k) steps written
 * out with names, dependencies and params is 20-40 MB; a 100k-step one is
 * 10-20 MB. Larger input is refused before libyaml sees it. */
#define YTREE_MAX_INPUT (64u << 20)
/* Deepest nesting of collections. WF_MAX_NESTING (32) composite steps take
 * two levels each (a list and a mapping) under the top mapping and its
 * `steps` list, which leaves room for params; the limit also bounds every
 * recursive walk over the tree. */
#define YTREE_MAX_DEPTH 128
/* Most nodes in one document, aliases not counted: a 200k-step workflow
 * has about 3M. At 24 bytes a node plus its item slot this caps the tree
 * at about 130 MB. */
#define YTREE_MAX_NODES (4u << 20)
/* Longest scalar: a persona prompt in `params` may be long, a megabyte is
 * not a prompt anyone wrote by hand. */
#define YTREE_MAX_SCALAR (1u << 20)
/* Aliases share defaults between a few steps; expanding them into more
 * nodes or scalar bytes than this is an alias bomb. The expanded size of
 * each anchor is known when its alias is read, so the budget is charged
 * before anything is copied or walked. */
#define YTREE_MAX_ALIAS_NODES (1u << 20)
#define YTREE_MAX_ALIAS_BYTES (16u << 20)

enum ytree_kind { YTREE_SCALAR, YTREE_SEQUENCE, YTREE_MAPPING };

/* Resolved type of a scalar (core schema; quoted scalars are strings). */
enum ytree_type {
    YTREE_STRING,
    YTREE_NULL,
    YTREE_BOOL,
    YTREE_INT,
    YTREE_FLOAT,
};

/* How a scalar was written; used to map offsets in its value back to
 * columns in the source. */
enum ytree_style {
    YTREE_PLAIN,
    YTREE_SINGLE_QUOTED,
    YTREE_DOUBLE_QUOTED,
    YTREE_LITERAL, /* | block */
    YTREE_FOLDED,  /* > block */
};

struct ytree_node {
    uint8_t kind;  /* enum ytree_kind */
    uint8_t type;  /* enum ytree_type; YTREE_NULL for collections */
    uint8_t style; /* enum ytree_style; scalars only */
    bool quoted;   /* scalar not written plain: always a string */
    /* Scalar: bytes of text (NUL not counted). Sequence: items.
     * Mapping: pairs; items[2i] is a key (a scalar), items[2i+1] its
     * value, in file order. */
    uint32_t len;
    int line;   /* 1-based; 0 = not from YAML (built from JSON) */
    int column; /* 1-based, in characters as libyaml counts them */
    union {
        const char *text; /* scalar, NUL-terminated (may hold NULs) */
        struct ytree_node **items;
    } u;
};

struct ytree;

/* Parses one YAML document from src[0..len) (borrowed for the call only).
 *
 * Returns 0 and *out (free with ytree_free) when the text could be read as
 * a whole. Problems that still leave a usable tree (duplicate keys: the
 * later pair is dropped; unsupported tags: ignored) are appended to d as
 * errors, so callers must check d->errors; this lets the validator report
 * them together with its own. The root is NULL for an empty stream.
 *
 * Fatal problems (libyaml syntax and encoding errors, more than one
 * document, a limit above) are appended to d with their position and the
 * function returns WEFT_EINVAL, or WEFT_ELIMIT for a limit, or
 * WEFT_ENOMEM; *out is unchanged. */
int ytree_parse(const char *src, size_t len, struct diag *d,
                struct ytree **out);

/* Builds a tree from a JSON value (borrowed): objects become mappings in
 * iteration order, strings quoted scalars, numbers, booleans and null plain
 * scalars with their types. Positions are 0. Returns 0 and *out, or
 * WEFT_ELIMIT (deeper than YTREE_MAX_DEPTH or larger than the limits, with
 * an entry in d) or WEFT_ENOMEM; *out unchanged on failure. */
int ytree_from_json(const json_t *json, struct diag *d, struct ytree **out);

void ytree_free(struct ytree *t);

/* The document's root (borrowed from t), or NULL for an empty stream. */
const struct ytree_node *ytree_root(const struct ytree *t);

/* The value for key in a mapping, or NULL when absent or when map is not a
 * mapping. Linear in the number of pairs. */
const struct ytree_node *ytree_map_get(const struct ytree_node *map,
                                       const char *key);

/* True for a scalar whose type is YTREE_STRING. */
bool ytree_is_string(const struct ytree_node *n);

/* Words for messages: "a string", "a number", "a boolean", "null",
 * "a sequence", "a mapping". Static. */
const char *ytree_describe(const struct ytree_node *n);

/* The value of a YTREE_INT scalar. 0, or WEFT_ETYPE for other nodes. */
int ytree_get_int(const struct ytree_node *n, int64_t *out);

/* The value of a YTREE_INT or YTREE_FLOAT scalar as a double. 0, or
 * WEFT_ETYPE. */
int ytree_get_double(const struct ytree_node *n, double *out);

/* The value of a YTREE_BOOL scalar. 0, or WEFT_ETYPE. */
int ytree_get_bool(const struct ytree_node *n, bool *out);

/* New JSON value for n (aliases expanded), or NULL on allocation failure.
 * Mapping keys become object keys, in file order. */
json_t *ytree_to_json(const struct ytree_node *n);

/* Appends n to b as JSON exactly as
 * json_dumps(ytree_to_json(n), JSON_SORT_KEYS | JSON_COMPACT |
 * JSON_ENCODE_ANY) would write it, without building the jansson value.
 * 0, WEFT_ENOMEM or WEFT_ELIMIT (b's maximum); b may hold part of the
 * output on failure. */
int ytree_write_json(const struct ytree_node *n, struct buf *b);

/* Appends s[0..len) as a JSON string literal, escaped as jansson does. */
int ytree_write_json_string(struct buf *b, const char *s, size_t len);

/* Appends a scalar as JSON (as ytree_write_json for a scalar). */
int ytree_write_json_scalar(struct buf *b, const struct ytree_node *n);

/* The source position of byte `offset` of scalar n's value: for a scalar
 * on a single line (plain, quoted, with escapes) or in a literal block,
 * the line and column of the character that produced that byte; otherwise
 * (folded text, multi-line flow scalars, trees built from JSON) the
 * position of n itself. */
void ytree_value_position(const struct ytree *t, const struct ytree_node *n,
                          size_t offset, int *line, int *column);

#endif
