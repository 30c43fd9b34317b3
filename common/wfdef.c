/* wfdef.c - build and validate the workflow model from a YAML tree.
 *
 * Loading runs in phases over a struct loader:
 *  1. walk the tree: every key of the workflow, of each step and of each
 *     retry policy dispatches through a table ({name, applies-to,
 *     handler}, nginx's ngx_command_t), so unknown keys are reported with a
 *     did-you-mean hint; steps are appended to wf->steps in pre-order;
 *  2. copy the model's strings out of the tree into one pool;
 *  3. index the ids (duplicates reported);
 *  4. resolve dependencies (unknown, self, repeated, across lists);
 *  5. find cycles (reported once per strongly connected component, as a
 *     path) and order the steps (Kahn; composites before their children);
 *  6. order the variables by what they read;
 *  7. write the canonical JSON and its SHA-256.
 * Every problem goes to the diag and loading goes on, so one run reports
 * them all; the model is handed out only when there was none. Allocation
 * failure stops the walk and is returned as WEFT_ENOMEM.
 */
#include "wfdef.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "alloc.h"
#include "buf.h"
#include "dag.h"
#include "hint.h"
#include "strmap.h"
#include "tmpl.h"
#include "wfdef_int.h"
#include "ytree.h"

/* The canonical form must load again (wf_load_canonical), so it obeys
 * the loader's input limit; it is also one Redis string (512 MB max). */
#define WF_MAX_CANONICAL YTREE_MAX_INPUT
/* Retry delays are timers in weft:delayed; a day between attempts is a
 * schedule, not a retry policy. */
#define WF_MAX_RETRY_DELAY_S (24 * 3600)
/* Defaults of a retry policy (wfdef.h). */
#define WF_DEFAULT_DELAY_MS     1000u
#define WF_DEFAULT_MAX_DELAY_MS 300000u
/* Did-you-mean hints compare a word against every candidate with an edit
 * distance; past this many matrix cells per load the hints stop, so 100k
 * misspelled dependencies against 100k ids cannot take minutes. */
#define WF_HINT_BUDGET (64u << 20)
/* A cycle is printed as a path of ids; past this many bytes it is cut
 * (the message must fit a diagnostic a person reads). */
#define WF_CYCLE_TEXT_MAX 400
/* Mappings of up to this many pairs are sorted on the stack when the
 * canonical form is written (steps have a handful of keys). */
#define WF_SMALL_MAP 16
/* Words longer than this get no hint (ids are at most WF_MAX_ID_LEN). */
#define WF_HINT_MAX_WORD HINT_MAX_WORD

enum {
    T_PERSONA = 1u << WF_STEP_PERSONA,
    T_GIT = 1u << WF_STEP_GIT,
    T_COND = 1u << WF_STEP_CONDITIONAL,
    T_PAR = 1u << WF_STEP_PARALLEL,
    T_NOOP = 1u << WF_STEP_NOOP,
    T_APPROVAL = 1u << WF_STEP_APPROVAL,
    T_LEAF = T_PERSONA | T_GIT | T_NOOP,
    T_ALL = T_LEAF | T_COND | T_PAR | T_APPROVAL
};

/* Roots a condition or template may read. */
enum {
    R_CONTEXT = 1u << 0,
    R_TASK = 1u << 1,
    R_MILESTONE = 1u << 2,
    R_VARIABLES = 1u << 3,
    R_STEPS = 1u << 4,
    R_STATE = 1u << 5,
    R_WORKFLOW_ID = 1u << 6,
    R_ALL = 0x7f,
    /* Variables are evaluated when a run starts, before any step, over
     * the task, the fixed context fields and the run id. */
    R_FOR_VARIABLES = R_CONTEXT | R_TASK | R_VARIABLES | R_WORKFLOW_ID
};

static const char *const root_names[] = {
    "context", "task", "milestone", "variables", "steps", "state", "workflowId",
};
#define NROOTS (sizeof(root_names) / sizeof(root_names[0]))

static const char *const step_type_names[] = {
    [WF_STEP_PERSONA] = "persona-request",
    [WF_STEP_GIT] = "git-operation",
    [WF_STEP_CONDITIONAL] = "conditional",
    [WF_STEP_PARALLEL] = "parallel",
    [WF_STEP_NOOP] = "noop",
    [WF_STEP_APPROVAL] = "approval",
};
#define NSTEP_TYPES (sizeof(step_type_names) / sizeof(step_type_names[0]))

/* Git fields a step may carry; which ones each operation needs or takes. */
enum {
    G_BRANCH = 1u << 0,
    G_BASE = 1u << 1,
    G_MESSAGE = 1u << 2,
    G_REMOTE = 1u << 3
};
static const char *const git_field_names[] = {"branch", "base", "message",
                                              "remote"};
#define NGIT_FIELDS 4

struct git_op_info {
    const char *name;
    unsigned required;
    unsigned allowed;
};

static const struct git_op_info git_ops[] = {
    [WF_GIT_BRANCH] = {"branch", G_BRANCH, G_BRANCH | G_BASE},
    [WF_GIT_CHECKOUT] = {"checkout", G_BRANCH, G_BRANCH},
    [WF_GIT_COMMIT] = {"commit", G_MESSAGE, G_MESSAGE},
    [WF_GIT_PUSH] = {"push", 0, G_BRANCH | G_REMOTE},
    [WF_GIT_MERGE] = {"merge", 0, G_BRANCH | G_BASE | G_MESSAGE},
    [WF_GIT_REBASE] = {"rebase", 0, G_BRANCH | G_BASE},
    [WF_GIT_FETCH] = {"fetch", 0, G_BRANCH | G_REMOTE},
    [WF_GIT_PULL] = {"pull", 0, G_BRANCH | G_REMOTE},
};
#define NGIT_OPS (sizeof(git_ops) / sizeof(git_ops[0]))

static const char *const wait_for_names[] = {
    [WF_WAIT_ALL] = "all", [WF_WAIT_ANY] = "any"};
static const char *const on_failure_names[] = {
    [WF_ON_FAILURE_FAIL] = "fail",
    [WF_ON_FAILURE_CONTINUE] = "continue",
    [WF_ON_FAILURE_ESCALATE] = "escalate",
};
static const char *const on_open_names[] = {
    [WF_ON_OPEN_WAIT] = "wait",
    [WF_ON_OPEN_FAIL] = "fail",
    [WF_ON_OPEN_FALLBACK] = "fallback",
};
#define NON_OPEN (sizeof(on_open_names) / sizeof(on_open_names[0]))
static const char *const backoff_names[] = {
    [WF_BACKOFF_FIXED] = "fixed",
    [WF_BACKOFF_EXPONENTIAL] = "exponential",
};

/* Where a step came from; kept by the loader only. */
struct step_src {
    const struct ytree_node *map;
    const struct ytree_node *id;       /* the id's value node */
    const struct ytree_node *deps;     /* `dependencies` sequence */
    const struct ytree_node *lists[2]; /* then/else, or parallel steps */
    const struct ytree_node *git_keys[NGIT_FIELDS];
    const struct ytree_node *retries_key;
    const struct ytree_node *retry_key;
    const struct ytree_node *breaker_key;  /* `breaker` */
    const struct ytree_node *on_open_key;  /* `on_breaker_open` */
    const struct ytree_node *fallback_val; /* `fallback_persona`'s value */
    bool type_known;
    unsigned mask; /* T_* of the step's type, T_ALL when unknown */
};

struct loader {
    struct diag *d;
    size_t errors0; /* d->errors when loading started */
    struct ytree *tree;
    struct wf *wf;
    struct step_src *src;
    uint32_t cap;        /* of wf->steps and src */
    int rc;              /* WEFT_ENOMEM once allocation failed */
    bool limit;          /* a size limit was passed */
    uint64_t hint_cells; /* edit-distance work spent on hints */
    /* Strings, pointing into the tree until phase 2 copies them. */
    const char *name;
    const char *version;
    const char *description;
    bool rollback; /* `rollback: true` */
    const struct ytree_node *steps_node;
    const struct ytree_node *vars_node;
    /* Variables: their names, and which variable reads which (found
     * while their templates compile), for the evaluation order. */
    struct strmap var_index; /* name -> index + 1 */
    uint32_t *var_edges;     /* pairs (reader, read) */
    size_t nvar_edges, capvar_edges;
};

static bool failed(const struct loader *L)
{
    return L->rc != 0;
}

static void set_oom(struct loader *L)
{
    L->rc = WEFT_ENOMEM;
}

/* ---- names ---- */

const char *wf_step_type_name(enum wf_step_type t)
{
    return (size_t)t < NSTEP_TYPES ? step_type_names[t] : "?";
}

const char *wf_git_op_name(enum wf_git_op op)
{
    return (size_t)op < NGIT_OPS ? git_ops[op].name : "?";
}

const char *wf_wait_for_name(enum wf_wait_for w)
{
    return (size_t)w < 2 ? wait_for_names[w] : "?";
}

const char *wf_on_failure_name(enum wf_on_failure f)
{
    return (size_t)f < 3 ? on_failure_names[f] : "?";
}

const char *wf_on_open_name(enum wf_on_open o)
{
    return (size_t)o < NON_OPEN ? on_open_names[o] : "?";
}

bool wf_git_op_uses_remote(enum wf_git_op op)
{
    return op == WF_GIT_PUSH || op == WF_GIT_FETCH || op == WF_GIT_PULL;
}

/* Position of the lowest set bit of a non-zero mask. */
static unsigned bit_index(unsigned mask)
{
    unsigned i = 0;
    while (i < 31 && !(mask & (1u << i)))
        i++;
    return i;
}

static bool word_eq(const char *a, size_t alen, const char *word)
{
    size_t wl = strlen(word);
    return alen == wl && memcmp(a, word, wl) == 0;
}

static int root_bit(const char *name, size_t len)
{
    for (size_t i = 0; i < NROOTS; i++) {
        if (word_eq(name, len, root_names[i]))
            return (int)(1u << i);
    }
    return 0;
}

bool wf_is_known_root(const char *name, size_t len)
{
    return root_bit(name, len) != 0;
}

/* ---- did you mean ---- */

/* hint_distance, charged to L's hint budget. */
static size_t edit_distance(struct loader *L, const char *a, size_t la,
                            const char *b, size_t lb, size_t max)
{
    if ((la > lb ? la - lb : lb - la) > max)
        return max + 1;
    L->hint_cells += (la + 1) * (lb + 1);
    return hint_distance(a, la, b, lb, max);
}

/* Candidates for a hint, one at a time: NULL past the end. */
typedef const char *(*cand_fn)(void *ctx, size_t i, size_t *len);

/* The closest candidate to word (first of equals, in candidate order), or
 * NULL when none is close enough or hints are used up. */
static const char *suggest(struct loader *L, const char *word, size_t wl,
                           cand_fn get, void *ctx)
{
    if (wl == 0 || wl > WF_HINT_MAX_WORD || L->hint_cells > WF_HINT_BUDGET ||
        L->d->count >= DIAG_MAX_ENTRIES)
        return NULL;
    size_t max = wl <= 3 ? 1 : wl <= 6 ? 2 : 3;
    const char *best = NULL;
    size_t best_d = max + 1, cl;
    for (size_t i = 0;; i++) {
        const char *c = get(ctx, i, &cl);
        if (c == NULL || L->hint_cells > WF_HINT_BUDGET)
            break;
        size_t dist = edit_distance(L, word, wl, c, cl, max);
        if (dist < best_d && !(cl == wl && memcmp(c, word, wl) == 0)) {
            best = c;
            best_d = dist;
        }
    }
    return best;
}

struct names_ctx {
    const char *const *names;
    size_t n;
};

static const char *names_get(void *ctx, size_t i, size_t *len)
{
    struct names_ctx *c = ctx;
    while (i < c->n && c->names[i] == NULL)
        i++;
    if (i >= c->n)
        return NULL;
    *len = strlen(c->names[i]);
    return c->names[i];
}

static const char *suggest_from(struct loader *L, const char *word, size_t wl,
                                const char *const *names, size_t n)
{
    struct names_ctx c = {names, n};
    return suggest(L, word, wl, names_get, &c);
}

/* Formats " (did you mean 'x'?)" or "" into buf. */
static const char *hint_text(char *buf, size_t size, const char *s)
{
    if (s == NULL)
        return "";
    snprintf(buf, size, " (did you mean '%.*s'?)", WF_HINT_MAX_WORD, s);
    return buf;
}

/* ---- small checks ---- */

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Checks an identifier-like name (step id, persona, queue): 0 when valid,
 * else reports "invalid WHAT 'x': ..." at n. */
static int check_name(struct loader *L, const struct ytree_node *n,
                      const char *what)
{
    if (n->len == 0) {
        diag_error(L->d, n->line, n->column, "%s must not be empty", what);
        return -1;
    }
    if (n->len > WF_MAX_ID_LEN) {
        diag_error(L->d, n->line, n->column,
                   "%s is %u bytes long; the limit is %d", what,
                   (unsigned)n->len, WF_MAX_ID_LEN);
        return -1;
    }
    for (uint32_t i = 0; i < n->len; i++) {
        if (!id_char(n->u.text[i])) {
            diag_error(L->d, n->line, n->column,
                       "invalid %s '%.*s': use only letters, digits, '_', "
                       "'.' and '-'",
                       what, WF_MAX_ID_LEN, n->u.text);
            return -1;
        }
    }
    return 0;
}

static void wrong_type(struct loader *L, const char *key,
                       const struct ytree_node *v, const char *expected)
{
    diag_error(L->d, v->line, v->column, "'%s' must be %s, got %s", key,
               expected, ytree_describe(v));
}

/* A string value, or NULL (reported) when v is not one. */
static const char *expect_string(struct loader *L, const char *key,
                                 const struct ytree_node *v)
{
    if (!ytree_is_string(v)) {
        wrong_type(L, key, v, "a string");
        return NULL;
    }
    return v->u.text;
}

/* Index of v's text in names[0..n), or -1, reported as "LABEL 'x' (did
 * you mean 'y'?); expected ..." (or as a wrong type of key). */
static int expect_enum(struct loader *L, const char *key, const char *label,
                       const struct ytree_node *v, const char *const *names,
                       size_t n)
{
    char hint[WF_HINT_MAX_WORD + 32];
    if (!ytree_is_string(v)) {
        wrong_type(L, key, v, "a string");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (names[i] != NULL && word_eq(v->u.text, v->len, names[i]))
            return (int)i;
    }
    /* "expected 'a', 'b' or 'c'" */
    char list[160] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof(list); i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w =
            snprintf(list + used, sizeof(list) - used, "%s'%s'", sep, names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    const char *s = suggest_from(L, v->u.text, v->len, names, n);
    if (s != NULL)
        diag_error(L->d, v->line, v->column, "%s '%.*s'%s", label,
                   WF_HINT_MAX_WORD, v->u.text,
                   hint_text(hint, sizeof(hint), s));
    else
        diag_error(L->d, v->line, v->column, "%s '%.*s'; expected %s", label,
                   WF_HINT_MAX_WORD, v->u.text, list);
    return -1;
}

/* ---- roots and variables in conditions and templates ---- */

struct root_check {
    struct loader *L;
    const struct ytree_node *n; /* the scalar holding the source */
    const char *what;           /* "condition", "template" */
    unsigned allowed;
    long var; /* defining this variable, or -1 */
};

static bool var_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

static void add_var_edge(struct loader *L, uint32_t reader, uint32_t read)
{
    if (L->nvar_edges + 2 > L->capvar_edges) {
        size_t ncap = L->capvar_edges ? L->capvar_edges * 2 : 32;
        uint32_t *e = weft_realloc(L->var_edges, ncap * sizeof(*e));
        if (e == NULL) {
            set_oom(L);
            return;
        }
        L->var_edges = e;
        L->capvar_edges = ncap;
    }
    L->var_edges[L->nvar_edges++] = reader;
    L->var_edges[L->nvar_edges++] = read;
}

struct var_names_ctx {
    const struct ytree_node *vars;
};

static const char *var_names_get(void *ctx, size_t i, size_t *len)
{
    struct var_names_ctx *c = ctx;
    if (c->vars == NULL || i >= c->vars->len)
        return NULL;
    const struct ytree_node *k = c->vars->u.items[2 * i];
    *len = k->len;
    return k->u.text;
}

/* After the root `variables` at text[pos..): the NAME of `.NAME` (or
 * `?.NAME`), or NULL when the access is computed (`[...]`) or absent. */
static const char *var_member(const char *text, size_t len, size_t pos,
                              size_t *nl)
{
    while (pos < len && text[pos] == ' ')
        pos++;
    if (pos < len && text[pos] == '?')
        pos++;
    if (pos >= len || text[pos] != '.')
        return NULL;
    pos++;
    while (pos < len && text[pos] == ' ')
        pos++;
    size_t start = pos;
    while (pos < len && var_char(text[pos]))
        pos++;
    *nl = pos - start;
    return *nl ? text + start : NULL;
}

static int check_root(void *ud, const char *name, size_t len, int column)
{
    struct root_check *rc = ud;
    struct loader *L = rc->L;
    const struct ytree_node *n = rc->n;
    char hint[WF_HINT_MAX_WORD + 32];
    int line, col;
    size_t off = column > 0 ? (size_t)column - 1 : 0;
    int bit = root_bit(name, len);
    ytree_value_position(L->tree, n, off, &line, &col);
    if (bit == 0) {
        const char *s = suggest_from(L, name, len, root_names, NROOTS);
        diag_error(L->d, line, col, "unknown name '%.*s' in %s%s",
                   (int)(len > WF_HINT_MAX_WORD ? WF_HINT_MAX_WORD : len), name,
                   rc->what, hint_text(hint, sizeof(hint), s));
        return 0;
    }
    if (bit == R_MILESTONE && !(rc->allowed & R_MILESTONE)) {
        diag_error(L->d, line, col,
                   "'milestone' cannot be read in a variable; use "
                   "context.milestone");
        return 0;
    }
    if (((unsigned)bit & rc->allowed) == 0) {
        diag_error(L->d, line, col,
                   "'%s' cannot be read in a variable; variables are "
                   "evaluated when the run starts",
                   root_names[bit_index((unsigned)bit)]);
        return 0;
    }
    if (bit != R_VARIABLES)
        return 0;
    size_t nl = 0;
    const char *vn = var_member(n->u.text, n->len, off + len, &nl);
    if (vn == NULL) {
        if (rc->var >= 0)
            diag_error(L->d, line, col,
                       "a variable must read other variables as "
                       "variables.NAME");
        return 0;
    }
    void *idx = strmap_get(&L->var_index, vn, nl);
    if (idx == NULL) {
        struct var_names_ctx c = {L->vars_node};
        const char *s = suggest(L, vn, nl, var_names_get, &c);
        ytree_value_position(L->tree, n, (size_t)(vn - n->u.text), &line, &col);
        diag_error(L->d, line, col, "unknown variable '%.*s'%s",
                   (int)(nl > WF_HINT_MAX_WORD ? WF_HINT_MAX_WORD : nl), vn,
                   hint_text(hint, sizeof(hint), s));
        return 0;
    }
    if (rc->var >= 0)
        add_var_edge(L, (uint32_t)rc->var, (uint32_t)((uintptr_t)idx - 1));
    return 0;
}

static void on_template(void *ud, const struct ytree_node *n,
                        const struct tmpl *t)
{
    struct root_check *rc = ud;
    rc->n = n;
    tmpl_foreach_root(t, check_root, rc);
}

static void on_template_error(void *ud, const struct ytree_node *n,
                              const struct weft_error *err)
{
    struct root_check *rc = ud;
    int line, col;
    size_t off = err->column > 0 ? (size_t)err->column - 1 : 0;
    ytree_value_position(rc->L->tree, n, off, &line, &col);
    diag_error(rc->L->d, line, col, "invalid %s: %s", rc->what, err->msg);
}

/* Compiles a templated value for field `what`; NULL when it did not
 * compile (reported). */
static struct tvalue *compile_value(struct loader *L, const char *key,
                                    const struct ytree_node *v,
                                    unsigned allowed, long var)
{
    char what[WF_MAX_ID_LEN + 32];
    snprintf(what, sizeof(what), "template of '%s'", key);
    struct root_check rc = {L, v, what, allowed, var};
    struct tvalue_hooks h = {&rc, on_template, on_template_error};
    struct tvalue *tv = NULL;
    int r = tvalue_compile(v, &h, &tv);
    if (r == WEFT_ENOMEM)
        set_oom(L);
    return r == 0 ? tv : NULL;
}

/* Compiles a step field (name, timeout, params, git fields): any root. */
static struct tvalue *compile_field(struct loader *L, const char *key,
                                    const struct ytree_node *v)
{
    return compile_value(L, key, v, R_ALL, -1);
}

/* ---- steps: key handlers ---- */

static struct wf_step *S(struct loader *L, uint32_t si)
{
    return &L->wf->steps[si];
}

typedef void (*step_handler)(struct loader *L, uint32_t si,
                             const struct ytree_node *key,
                             const struct ytree_node *val);

static void h_id(struct loader *L, uint32_t si, const struct ytree_node *key,
                 const struct ytree_node *v)
{
    (void)key;
    if (expect_string(L, "id", v) == NULL)
        return;
    if (check_name(L, v, "step id") == 0 && v->u.text[0] == '.')
        /* weft's own bookkeeping steps (the run's rollback, `.rollback`)
         * live beside the workflow's in the steps hash. */
        diag_error(L->d, v->line, v->column,
                   "invalid step id '%.*s': ids starting with '.' are "
                   "reserved for weft",
                   WF_MAX_ID_LEN, v->u.text);
    /* Kept even when invalid, so references to it are not reported as
     * unknown too. */
    S(L, si)->id = v->u.text;
    L->src[si].id = v;
}

static void h_name(struct loader *L, uint32_t si, const struct ytree_node *key,
                   const struct ytree_node *v)
{
    (void)key;
    if (!ytree_is_string(v)) {
        wrong_type(L, "name", v, "a string");
        return;
    }
    S(L, si)->name = compile_field(L, "name", v);
}

static void h_description(struct loader *L, uint32_t si,
                          const struct ytree_node *key,
                          const struct ytree_node *v)
{
    (void)si;
    (void)key;
    expect_string(L, "description", v);
}

static void h_type(struct loader *L, uint32_t si, const struct ytree_node *key,
                   const struct ytree_node *v)
{
    (void)key;
    int t = expect_enum(L, "type", "unknown step type", v, step_type_names,
                        NSTEP_TYPES);
    if (t >= 0)
        S(L, si)->type = (enum wf_step_type)t;
}

static void h_persona(struct loader *L, uint32_t si,
                      const struct ytree_node *key, const struct ytree_node *v)
{
    (void)key;
    if (expect_string(L, "persona", v) == NULL)
        return;
    if (check_name(L, v, "persona name") == 0)
        S(L, si)->persona = v->u.text;
}

static void h_dependencies(struct loader *L, uint32_t si,
                           const struct ytree_node *key,
                           const struct ytree_node *v)
{
    (void)key;
    if (v->kind != YTREE_SEQUENCE) {
        wrong_type(L, "dependencies", v, "a sequence of step ids");
        return;
    }
    L->src[si].deps = v;
}

static void h_condition(struct loader *L, uint32_t si,
                        const struct ytree_node *key,
                        const struct ytree_node *v)
{
    (void)key;
    if (!ytree_is_string(v)) {
        wrong_type(L, "condition", v, "a string (an expression)");
        return;
    }
    struct weft_error err;
    struct expr *e = NULL;
    weft_error_clear(&err);
    int rc = expr_parse(v->u.text, v->len, &e, &err);
    if (rc == WEFT_ENOMEM) {
        set_oom(L);
        return;
    }
    if (rc != 0) {
        int line, col;
        size_t off = err.column > 0 ? (size_t)err.column - 1 : 0;
        ytree_value_position(L->tree, v, off, &line, &col);
        diag_error(L->d, line, col, "invalid condition: %s", err.msg);
        return;
    }
    struct root_check chk = {L, v, "condition", R_ALL, -1};
    expr_foreach_root(e, check_root, &chk);
    S(L, si)->condition = e;
}

static void h_timeout(struct loader *L, uint32_t si,
                      const struct ytree_node *key, const struct ytree_node *v)
{
    (void)key;
    const char *expected = "a number or a template";
    if (v->kind == YTREE_SCALAR &&
        (v->type == YTREE_INT || v->type == YTREE_FLOAT)) {
        double t = 0;
        ytree_get_double(v, &t);
        if (!(t > 0)) {
            diag_error(L->d, v->line, v->column,
                       "'timeout' must be positive, got %.40s", v->u.text);
            return;
        }
        if (t > WF_MAX_TIMEOUT_S) {
            diag_error(L->d, v->line, v->column,
                       "'timeout' of %.40s seconds is longer than the "
                       "limit of %d (7 days)",
                       v->u.text, WF_MAX_TIMEOUT_S);
            return;
        }
    } else if (!ytree_is_string(v) || tmpl_is_plain(v->u.text, v->len)) {
        wrong_type(L, "timeout", v, expected);
        return;
    }
    S(L, si)->timeout = compile_field(L, "timeout", v);
}

/* An integer in [min, max], or -1 (reported). */
static int64_t expect_int(struct loader *L, const char *key,
                          const struct ytree_node *v, int64_t min, int64_t max)
{
    int64_t x = 0;
    if (ytree_get_int(v, &x) != 0) {
        wrong_type(L, key, v, "an integer");
        return -1;
    }
    if (x < min || x > max) {
        diag_error(L->d, v->line, v->column,
                   "'%s' must be from %lld to %lld, got %lld", key,
                   (long long)min, (long long)max, (long long)x);
        return -1;
    }
    return x;
}

static bool retry_conflict(struct loader *L, uint32_t si,
                           const struct ytree_node *key)
{
    struct step_src *s = &L->src[si];
    if (s->retries_key != NULL && s->retry_key != NULL) {
        diag_error(L->d, key->line, key->column,
                   "'retries' and 'retry' cannot both be set; use "
                   "retry.max");
        return true;
    }
    return false;
}

static void h_retries(struct loader *L, uint32_t si,
                      const struct ytree_node *key, const struct ytree_node *v)
{
    L->src[si].retries_key = key;
    if (retry_conflict(L, si, key))
        return;
    int64_t x = expect_int(L, "retries", v, 0, WF_MAX_RETRIES);
    if (x >= 0)
        S(L, si)->retry.max = (uint32_t)x;
}

/* A number of seconds in [0, WF_MAX_RETRY_DELAY_S] (above 0 when
 * positive) into *ms; false (reported) otherwise. */
static bool expect_seconds(struct loader *L, const char *key,
                           const struct ytree_node *v, bool positive,
                           uint32_t *ms)
{
    double s = 0;
    if (ytree_get_double(v, &s) != 0) {
        wrong_type(L, key, v, "a number of seconds");
        return false;
    }
    if (s < 0 || (positive && s == 0) || s > WF_MAX_RETRY_DELAY_S) {
        diag_error(L->d, v->line, v->column,
                   "'%s' must be %s and at most %d seconds, got %.40s", key,
                   positive ? "positive" : "zero or more", WF_MAX_RETRY_DELAY_S,
                   v->u.text);
        return false;
    }
    *ms = (uint32_t)(s * 1000.0 + 0.5);
    return true;
}

struct retry_parse {
    struct wf_retry r;
    const struct ytree_node *max, *delay, *max_delay;
};

typedef void (*retry_handler)(struct loader *L, struct retry_parse *rp,
                              const struct ytree_node *v);

static void r_max(struct loader *L, struct retry_parse *rp,
                  const struct ytree_node *v)
{
    rp->max = v;
    int64_t x = expect_int(L, "retry.max", v, 0, WF_MAX_RETRIES);
    if (x >= 0)
        rp->r.max = (uint32_t)x;
}

static void r_backoff(struct loader *L, struct retry_parse *rp,
                      const struct ytree_node *v)
{
    int b =
        expect_enum(L, "retry.backoff", "invalid backoff", v, backoff_names, 2);
    if (b >= 0)
        rp->r.backoff = (enum wf_backoff)b;
}

static void r_delay(struct loader *L, struct retry_parse *rp,
                    const struct ytree_node *v)
{
    if (expect_seconds(L, "retry.delay", v, false, &rp->r.delay_ms))
        rp->delay = v;
}

static void r_max_delay(struct loader *L, struct retry_parse *rp,
                        const struct ytree_node *v)
{
    if (expect_seconds(L, "retry.max_delay", v, true, &rp->r.max_delay_ms))
        rp->max_delay = v;
}

static void r_jitter(struct loader *L, struct retry_parse *rp,
                     const struct ytree_node *v)
{
    double j = 0;
    if (ytree_get_double(v, &j) != 0) {
        wrong_type(L, "retry.jitter", v, "a number from 0 to 1");
        return;
    }
    if (j < 0 || j > 1) {
        diag_error(L->d, v->line, v->column,
                   "'retry.jitter' must be from 0 to 1, got %.40s", v->u.text);
        return;
    }
    rp->r.jitter = j;
}

static const struct {
    const char *name;
    retry_handler handler;
} retry_keys[] = {
    {"max", r_max},       {"backoff", r_backoff},
    {"delay", r_delay},   {"max_delay", r_max_delay},
    {"jitter", r_jitter},
};
#define NRETRY_KEYS (sizeof(retry_keys) / sizeof(retry_keys[0]))

static const char *retry_key_get(void *ctx, size_t i, size_t *len)
{
    (void)ctx;
    if (i >= NRETRY_KEYS)
        return NULL;
    *len = strlen(retry_keys[i].name);
    return retry_keys[i].name;
}

static void unknown_key(struct loader *L, const struct ytree_node *k,
                        cand_fn get, void *ctx)
{
    char hint[WF_HINT_MAX_WORD + 32];
    if (word_eq(k->u.text, k->len, "<<")) {
        diag_error(L->d, k->line, k->column,
                   "merge keys ('<<') are not supported; write the keys out "
                   "or use an alias for the whole value");
        return;
    }
    const char *s = suggest(L, k->u.text, k->len, get, ctx);
    diag_error(L->d, k->line, k->column, "unknown key '%.*s'%s",
               WF_HINT_MAX_WORD, k->u.text, hint_text(hint, sizeof(hint), s));
}

static void h_retry(struct loader *L, uint32_t si, const struct ytree_node *key,
                    const struct ytree_node *v)
{
    L->src[si].retry_key = key;
    if (retry_conflict(L, si, key))
        return;
    if (v->kind != YTREE_MAPPING) {
        wrong_type(L, "retry", v, "a mapping");
        return;
    }
    struct retry_parse rp = {.r = S(L, si)->retry};
    for (uint32_t i = 0; i < v->len; i++) {
        const struct ytree_node *k = v->u.items[2 * i];
        size_t j;
        for (j = 0; j < NRETRY_KEYS; j++) {
            if (word_eq(k->u.text, k->len, retry_keys[j].name))
                break;
        }
        if (j == NRETRY_KEYS)
            unknown_key(L, k, retry_key_get, NULL);
        else
            retry_keys[j].handler(L, &rp, v->u.items[2 * i + 1]);
    }
    if (rp.max == NULL)
        diag_error(L->d, v->line, v->column,
                   "'retry' is missing required key 'max'");
    if (rp.delay && rp.max_delay && rp.r.delay_ms > rp.r.max_delay_ms)
        diag_error(L->d, rp.max_delay->line, rp.max_delay->column,
                   "'retry.max_delay' must not be shorter than "
                   "'retry.delay'");
    S(L, si)->retry = rp.r;
}

static void h_on_failure(struct loader *L, uint32_t si,
                         const struct ytree_node *key,
                         const struct ytree_node *v)
{
    (void)key;
    int f = expect_enum(L, "on_failure", "invalid on_failure", v,
                        on_failure_names, 3);
    if (f >= 0)
        S(L, si)->on_failure = (enum wf_on_failure)f;
}

static void h_queue(struct loader *L, uint32_t si, const struct ytree_node *key,
                    const struct ytree_node *v)
{
    (void)key;
    if (expect_string(L, "queue", v) == NULL)
        return;
    if (check_name(L, v, "queue name") == 0)
        S(L, si)->queue = v->u.text;
}

static void h_params(struct loader *L, uint32_t si,
                     const struct ytree_node *key, const struct ytree_node *v)
{
    (void)key;
    if (v->kind != YTREE_MAPPING) {
        wrong_type(L, "params", v, "a mapping");
        return;
    }
    S(L, si)->params = compile_field(L, "params", v);
}

static void h_operation(struct loader *L, uint32_t si,
                        const struct ytree_node *key,
                        const struct ytree_node *v)
{
    (void)key;
    const char *names[NGIT_OPS];
    for (size_t i = 0; i < NGIT_OPS; i++)
        names[i] = git_ops[i].name;
    int op = expect_enum(L, "operation", "unknown git operation", v, names,
                         NGIT_OPS);
    if (op >= 0)
        S(L, si)->git_op = (enum wf_git_op)op;
}

static void git_field(struct loader *L, uint32_t si, unsigned field,
                      const struct ytree_node *key, const struct ytree_node *v)
{
    unsigned i = bit_index(field);
    L->src[si].git_keys[i] = key;
    if (!ytree_is_string(v)) {
        wrong_type(L, git_field_names[i], v, "a string");
        return;
    }
    struct tvalue *tv = compile_field(L, git_field_names[i], v);
    struct wf_step *s = S(L, si);
    struct tvalue **slot = field == G_BRANCH    ? &s->git_branch
                           : field == G_BASE    ? &s->git_base
                           : field == G_MESSAGE ? &s->git_message
                                                : &s->git_remote;
    *slot = tv;
}

static void h_branch(struct loader *L, uint32_t si,
                     const struct ytree_node *key, const struct ytree_node *v)
{
    git_field(L, si, G_BRANCH, key, v);
}

static void h_base(struct loader *L, uint32_t si, const struct ytree_node *key,
                   const struct ytree_node *v)
{
    git_field(L, si, G_BASE, key, v);
}

/* `message`: a git commit or merge message, or what an approval step
 * shows the people asked. */
static void h_message(struct loader *L, uint32_t si,
                      const struct ytree_node *key, const struct ytree_node *v)
{
    if (L->src[si].mask != T_APPROVAL) {
        git_field(L, si, G_MESSAGE, key, v);
        return;
    }
    if (!ytree_is_string(v)) {
        wrong_type(L, "message", v, "a string");
        return;
    }
    S(L, si)->approval_message = compile_field(L, "message", v);
}

/* `approvers`: the people who may approve, a non-empty sequence of names
 * (each may be a template, rendered when the step starts waiting). */
static void h_approvers(struct loader *L, uint32_t si,
                        const struct ytree_node *key,
                        const struct ytree_node *v)
{
    (void)key;
    if (v->kind != YTREE_SEQUENCE) {
        wrong_type(L, "approvers", v, "a sequence of names");
        return;
    }
    if (v->len == 0) {
        diag_error(L->d, v->line, v->column,
                   "'approvers' must name at least one person (leave it "
                   "out to let anyone approve)");
        return;
    }
    if (v->len > WF_MAX_APPROVERS) {
        diag_error(L->d, v->line, v->column,
                   "'approvers' lists %u names; the limit is %d",
                   (unsigned)v->len, WF_MAX_APPROVERS);
        return;
    }
    bool ok = true;
    for (uint32_t i = 0; i < v->len; i++) {
        const struct ytree_node *n = v->u.items[i];
        if (!ytree_is_string(n)) {
            wrong_type(L, "approvers", n, "a sequence of names");
            ok = false;
        } else if (n->len == 0 || n->len > WF_MAX_APPROVER_LEN) {
            diag_error(L->d, n->line, n->column,
                       "an approver's name must be 1 to %d bytes long",
                       WF_MAX_APPROVER_LEN);
            ok = false;
        }
    }
    if (ok)
        S(L, si)->approvers = compile_field(L, "approvers", v);
}

static void h_remote(struct loader *L, uint32_t si,
                     const struct ytree_node *key, const struct ytree_node *v)
{
    git_field(L, si, G_REMOTE, key, v);
}

static void step_list(struct loader *L, uint32_t si, int which, const char *key,
                      const struct ytree_node *v)
{
    if (v->kind != YTREE_SEQUENCE) {
        wrong_type(L, key, v, "a sequence of steps");
        return;
    }
    L->src[si].lists[which] = v;
}

static void h_then(struct loader *L, uint32_t si, const struct ytree_node *key,
                   const struct ytree_node *v)
{
    (void)key;
    step_list(L, si, 0, "then_steps", v);
}

static void h_else(struct loader *L, uint32_t si, const struct ytree_node *key,
                   const struct ytree_node *v)
{
    (void)key;
    step_list(L, si, 1, "else_steps", v);
}

static void h_steps(struct loader *L, uint32_t si, const struct ytree_node *key,
                    const struct ytree_node *v)
{
    (void)key;
    step_list(L, si, 0, "steps", v);
    if (v->kind == YTREE_SEQUENCE && v->len == 0)
        diag_error(L->d, v->line, v->column,
                   "a parallel step needs at least one step in 'steps'");
}

static void h_wait_for(struct loader *L, uint32_t si,
                       const struct ytree_node *key, const struct ytree_node *v)
{
    (void)key;
    int w =
        expect_enum(L, "wait_for", "invalid wait_for", v, wait_for_names, 2);
    if (w >= 0)
        S(L, si)->wait_for = (enum wf_wait_for)w;
}

static void h_breaker(struct loader *L, uint32_t si,
                      const struct ytree_node *key, const struct ytree_node *v)
{
    L->src[si].breaker_key = key;
    breaker_parse(v, true, "'breaker'", L->d, &S(L, si)->breaker);
}

static void h_on_breaker_open(struct loader *L, uint32_t si,
                              const struct ytree_node *key,
                              const struct ytree_node *v)
{
    L->src[si].on_open_key = key;
    int o = expect_enum(L, "on_breaker_open", "invalid on_breaker_open", v,
                        on_open_names, NON_OPEN);
    if (o >= 0)
        S(L, si)->on_open = (enum wf_on_open)o;
}

static void h_fallback_persona(struct loader *L, uint32_t si,
                               const struct ytree_node *key,
                               const struct ytree_node *v)
{
    (void)key;
    if (expect_string(L, "fallback_persona", v) == NULL)
        return;
    if (check_name(L, v, "persona name") == 0) {
        S(L, si)->fallback_persona = v->u.text;
        L->src[si].fallback_val = v;
    }
}

/* A literal number of seconds in (0, max_s] into *ms; false (reported)
 * otherwise. */
static bool expect_duration(struct loader *L, const char *key,
                            const struct ytree_node *v, double max_s,
                            const char *limit_text, uint64_t *ms)
{
    double t = 0;
    if (ytree_get_double(v, &t) != 0) {
        wrong_type(L, key, v, "a number of seconds");
        return false;
    }
    if (!(t > 0)) {
        diag_error(L->d, v->line, v->column, "'%s' must be positive, got %.40s",
                   key, v->u.text);
        return false;
    }
    if (t > max_s) {
        diag_error(L->d, v->line, v->column,
                   "'%s' of %.40s seconds is longer than the limit of %.0f "
                   "(%s)",
                   key, v->u.text, max_s, limit_text);
        return false;
    }
    long long m = llround(t * 1000.0);
    *ms = m < 1 ? 1 : (uint64_t)m;
    return true;
}

static void h_queue_timeout(struct loader *L, uint32_t si,
                            const struct ytree_node *key,
                            const struct ytree_node *v)
{
    (void)key;
    uint64_t ms = 0;
    if (expect_duration(L, "queue_timeout", v, WF_MAX_TIMEOUT_S, "7 days", &ms))
        S(L, si)->queue_timeout_ms = (uint32_t)ms;
}

/* The step keys: name, step types it applies to, handler. */
/* A table key and its length, so dispatch compares lengths first. */
#define KEY(s) s, sizeof(s) - 1

static const struct step_key {
    const char *name;
    size_t len;
    unsigned types;
    step_handler handler;
} step_keys[] = {
    {KEY("id"), T_ALL, h_id},
    {KEY("name"), T_ALL, h_name},
    {KEY("description"), T_ALL, h_description},
    {KEY("type"), T_ALL, h_type},
    {KEY("persona"), T_PERSONA, h_persona},
    {KEY("dependencies"), T_ALL, h_dependencies},
    {KEY("condition"), T_ALL, h_condition},
    {KEY("timeout"), T_LEAF | T_APPROVAL, h_timeout},
    {KEY("retries"), T_LEAF, h_retries},
    {KEY("retry"), T_LEAF, h_retry},
    {KEY("on_failure"), T_ALL, h_on_failure},
    {KEY("queue"), T_LEAF, h_queue},
    {KEY("queue_timeout"), T_LEAF, h_queue_timeout},
    {KEY("params"), T_LEAF, h_params},
    {KEY("breaker"), T_PERSONA | T_GIT, h_breaker},
    {KEY("on_breaker_open"), T_PERSONA | T_GIT, h_on_breaker_open},
    {KEY("fallback_persona"), T_PERSONA, h_fallback_persona},
    {KEY("operation"), T_GIT, h_operation},
    {KEY("branch"), T_GIT, h_branch},
    {KEY("base"), T_GIT, h_base},
    {KEY("message"), T_GIT | T_APPROVAL, h_message},
    {KEY("remote"), T_GIT, h_remote},
    {KEY("then_steps"), T_COND, h_then},
    {KEY("else_steps"), T_COND, h_else},
    {KEY("steps"), T_PAR, h_steps},
    {KEY("wait_for"), T_PAR, h_wait_for},
    {KEY("approvers"), T_APPROVAL, h_approvers},
};
#define NSTEP_KEYS (sizeof(step_keys) / sizeof(step_keys[0]))

static const char *step_key_get(void *ctx, size_t i, size_t *len)
{
    (void)ctx;
    if (i >= NSTEP_KEYS)
        return NULL;
    *len = strlen(step_keys[i].name);
    return step_keys[i].name;
}

static const struct step_key *find_step_key(const struct ytree_node *k)
{
    for (size_t i = 0; i < NSTEP_KEYS; i++) {
        if (k->len == step_keys[i].len &&
            memcmp(k->u.text, step_keys[i].name, k->len) == 0)
            return &step_keys[i];
    }
    return NULL;
}

/* "step 'x'" or "step at L:C" for messages. */
static const char *step_label(struct loader *L, uint32_t si, char *buf,
                              size_t size)
{
    const struct wf_step *s = S(L, si);
    if (s->id != NULL)
        snprintf(buf, size, "step '%.*s'", WF_MAX_ID_LEN, s->id);
    else
        snprintf(buf, size, "step at %d:%d", s->line, s->column);
    return buf;
}

/* ---- steps: structure ---- */

static void parse_list(struct loader *L, const struct ytree_node *list,
                       int32_t parent, uint8_t branch, uint32_t depth);

static int grow_steps(struct loader *L)
{
    uint32_t ncap = L->cap ? L->cap * 2 : 64;
    if (ncap > WF_MAX_STEPS)
        ncap = WF_MAX_STEPS;
    struct wf_step *s = weft_realloc(L->wf->steps, (size_t)ncap * sizeof(*s));
    if (s == NULL)
        return WEFT_ENOMEM;
    L->wf->steps = s;
    struct step_src *src = weft_realloc(L->src, (size_t)ncap * sizeof(*src));
    if (src == NULL)
        return WEFT_ENOMEM;
    L->src = src;
    L->cap = ncap;
    return 0;
}

static void check_required(struct loader *L, uint32_t si)
{
    char label[WF_MAX_ID_LEN + 32];
    struct wf_step *s = S(L, si);
    struct step_src *src = &L->src[si];
    const struct ytree_node *m = src->map;
    if (ytree_map_get(m, "id") == NULL)
        diag_error(L->d, m->line, m->column,
                   "step is missing required key 'id'");
    if (ytree_map_get(m, "type") == NULL)
        diag_error(L->d, m->line, m->column,
                   "%s is missing required key 'type'",
                   step_label(L, si, label, sizeof(label)));
    if (!src->type_known)
        return;
    const char *need = NULL;
    switch (s->type) {
    case WF_STEP_PERSONA:
        if (ytree_map_get(m, "persona") == NULL)
            need = "persona";
        break;
    case WF_STEP_GIT:
        if (ytree_map_get(m, "operation") == NULL)
            need = "operation";
        break;
    case WF_STEP_CONDITIONAL:
        if (ytree_map_get(m, "condition") == NULL)
            diag_error(L->d, m->line, m->column,
                       "%s is missing required key 'condition'",
                       step_label(L, si, label, sizeof(label)));
        if (ytree_map_get(m, "then_steps") == NULL)
            need = "then_steps";
        break;
    case WF_STEP_PARALLEL:
        if (ytree_map_get(m, "steps") == NULL)
            need = "steps";
        break;
    case WF_STEP_NOOP:
    case WF_STEP_APPROVAL:
        break;
    }
    if (need != NULL)
        diag_error(L->d, m->line, m->column, "%s is missing required key '%s'",
                   step_label(L, si, label, sizeof(label)), need);
    const struct ytree_node *opn = ytree_map_get(m, "operation");
    if (s->type != WF_STEP_GIT || opn == NULL || !ytree_is_string(opn))
        return;
    bool op_ok = false;
    for (size_t i = 0; i < NGIT_OPS; i++)
        op_ok = op_ok || word_eq(opn->u.text, opn->len, git_ops[i].name);
    if (!op_ok)
        return;
    const struct git_op_info *op = &git_ops[s->git_op];
    for (unsigned f = 0; f < NGIT_FIELDS; f++) {
        const struct ytree_node *k = src->git_keys[f];
        if (k != NULL && !(op->allowed & (1u << f)))
            diag_error(L->d, k->line, k->column,
                       "'%s' does not apply to git operation '%s'",
                       git_field_names[f], op->name);
        if (k == NULL && (op->required & (1u << f)))
            diag_error(L->d, m->line, m->column,
                       "%s: git operation '%s' requires '%s'",
                       step_label(L, si, label, sizeof(label)), op->name,
                       git_field_names[f]);
    }
}

/* The circuit-breaker keys, once the step's type and other keys are
 * known: the policy agrees with fallback_persona, and a git step's
 * breaker has a remote to be named after. */
static void check_breaker(struct loader *L, uint32_t si)
{
    char label[WF_MAX_ID_LEN + 32];
    struct wf_step *s = S(L, si);
    const struct step_src *src = &L->src[si];
    const struct ytree_node *ok = src->on_open_key, *fb = src->fallback_val;
    if (!src->type_known)
        return;
    if (fb != NULL && ok == NULL)
        s->on_open = WF_ON_OPEN_FALLBACK;
    if (fb != NULL && ok != NULL && s->on_open != WF_ON_OPEN_FALLBACK)
        diag_error(L->d, ok->line, ok->column,
                   "%s: 'on_breaker_open: %s' leaves 'fallback_persona' "
                   "unused; write 'fallback' or drop 'fallback_persona'",
                   step_label(L, si, label, sizeof(label)),
                   on_open_names[s->on_open]);
    if (fb == NULL && ok != NULL && s->on_open == WF_ON_OPEN_FALLBACK)
        diag_error(L->d, ok->line, ok->column,
                   "%s: 'on_breaker_open: fallback' needs "
                   "'fallback_persona'",
                   step_label(L, si, label, sizeof(label)));
    if (fb != NULL && s->persona != NULL &&
        strcmp(s->fallback_persona, s->persona) == 0)
        diag_error(L->d, fb->line, fb->column,
                   "%s: 'fallback_persona' is the step's own persona '%s'",
                   step_label(L, si, label, sizeof(label)), s->persona);
    if (s->type != WF_STEP_GIT)
        return;
    const struct ytree_node *k = src->breaker_key ? src->breaker_key : ok;
    const struct ytree_node *opn = ytree_map_get(src->map, "operation");
    if (k == NULL || opn == NULL || !ytree_is_string(opn) ||
        !word_eq(opn->u.text, opn->len, git_ops[s->git_op].name))
        return;
    if (!wf_git_op_uses_remote(s->git_op)) {
        diag_error(L->d, k->line, k->column,
                   "'%s' applies to git operations that reach a remote "
                   "(push, fetch, pull), not '%s'",
                   src->breaker_key ? "breaker" : "on_breaker_open",
                   git_ops[s->git_op].name);
        return;
    }
    if (s->git_remote != NULL && tvalue_literal(s->git_remote) == NULL)
        diag_error(L->d, k->line, k->column,
                   "'%s' needs a literal 'remote': the breaker is named "
                   "after it, not after a template",
                   src->breaker_key ? "breaker" : "on_breaker_open");
}

/* A name equal to the id is the default: drop it, so a canonical reload
 * (where every step has a name) builds the same model. */
static void drop_default_name(struct wf_step *s)
{
    const json_t *lit = s->name ? tvalue_literal(s->name) : NULL;
    if (lit == NULL || s->id == NULL || !json_is_string(lit))
        return;
    if (strcmp(json_string_value(lit), s->id) == 0 &&
        json_string_length(lit) == strlen(s->id)) {
        tvalue_free(s->name);
        s->name = NULL;
    }
}

static void parse_step(struct loader *L, const struct ytree_node *m,
                       int32_t parent, uint8_t branch, uint32_t depth)
{
    if (m->kind != YTREE_MAPPING) {
        diag_error(L->d, m->line, m->column, "a step must be a mapping, got %s",
                   ytree_describe(m));
        return;
    }
    if (L->wf->nsteps >= WF_MAX_STEPS) {
        if (!L->limit)
            diag_error(L->d, m->line, m->column,
                       "more than %d steps (the limit)", WF_MAX_STEPS);
        L->limit = true;
        return;
    }
    if (L->wf->nsteps == L->cap && grow_steps(L) != 0) {
        set_oom(L);
        return;
    }
    uint32_t si = L->wf->nsteps++;
    struct wf_step *s = S(L, si);
    memset(s, 0, sizeof(*s));
    memset(&L->src[si], 0, sizeof(L->src[si]));
    s->index = si;
    s->type = WF_STEP_NOOP;
    s->retry.backoff = WF_BACKOFF_EXPONENTIAL;
    s->retry.delay_ms = WF_DEFAULT_DELAY_MS;
    s->retry.max_delay_ms = WF_DEFAULT_MAX_DELAY_MS;
    s->on_failure = WF_ON_FAILURE_FAIL;
    s->wait_for = WF_WAIT_ALL;
    s->parent = parent;
    s->branch = branch;
    s->depth = depth;
    s->line = m->line;
    s->column = m->column;
    L->src[si].map = m;

    /* The type decides which keys apply: look it up first. */
    const struct ytree_node *tn = ytree_map_get(m, "type");
    unsigned mask = T_ALL;
    if (tn != NULL && ytree_is_string(tn)) {
        for (size_t i = 0; i < NSTEP_TYPES; i++) {
            if (word_eq(tn->u.text, tn->len, step_type_names[i])) {
                mask = 1u << i;
                L->src[si].type_known = true;
            }
        }
    }
    L->src[si].mask = mask;
    for (uint32_t i = 0; i < m->len && !failed(L); i++) {
        const struct ytree_node *k = m->u.items[2 * i];
        const struct ytree_node *v = m->u.items[2 * i + 1];
        const struct step_key *sk = find_step_key(k);
        if (sk == NULL) {
            unknown_key(L, k, step_key_get, NULL);
            continue;
        }
        if (!(sk->types & mask)) {
            diag_error(L->d, k->line, k->column,
                       "'%s' does not apply to %s steps", sk->name,
                       step_type_names[bit_index(mask)]);
            continue;
        }
        sk->handler(L, si, k, v);
    }
    if (failed(L))
        return;
    drop_default_name(S(L, si));
    check_required(L, si);
    check_breaker(L, si);
    /* Children after the parent (pre-order): then before else. */
    for (int w = 0; w < 2 && !failed(L); w++) {
        const struct ytree_node *list = L->src[si].lists[w];
        if (list == NULL)
            continue;
        if (depth + 1 > WF_MAX_NESTING) {
            diag_error(L->d, list->line, list->column,
                       "steps nested more than %d levels deep", WF_MAX_NESTING);
            L->limit = true;
            continue;
        }
        parse_list(L, list, (int32_t)si, (uint8_t)w, depth + 1);
    }
}

static void parse_list(struct loader *L, const struct ytree_node *list,
                       int32_t parent, uint8_t branch, uint32_t depth)
{
    for (uint32_t i = 0; i < list->len && !failed(L); i++) {
        if (L->limit && L->wf->nsteps >= WF_MAX_STEPS)
            return;
        parse_step(L, list->u.items[i], parent, branch, depth);
    }
}

/* ---- the workflow's keys ---- */

static bool valid_var_name(const struct ytree_node *k)
{
    if (k->len == 0 || k->len > WF_MAX_ID_LEN)
        return false;
    char c0 = k->u.text[0];
    if (c0 >= '0' && c0 <= '9')
        return false;
    for (uint32_t i = 0; i < k->len; i++) {
        if (!var_char(k->u.text[i]))
            return false;
    }
    return true;
}

static void w_name(struct loader *L, const struct ytree_node *v)
{
    const char *s = expect_string(L, "name", v);
    if (s != NULL && v->len == 0)
        diag_error(L->d, v->line, v->column, "'name' must not be empty");
    else if (s != NULL)
        L->name = s;
}

static void w_version(struct loader *L, const struct ytree_node *v)
{
    if (v->kind == YTREE_SCALAR &&
        (v->type == YTREE_INT || v->type == YTREE_FLOAT)) {
        diag_error(L->d, v->line, v->column,
                   "'version' must be a string, got a number (quote it: "
                   "\"%.40s\")",
                   v->u.text);
        return;
    }
    L->version = expect_string(L, "version", v);
}

static void w_description(struct loader *L, const struct ytree_node *v)
{
    L->description = expect_string(L, "description", v);
}

static void w_timeout(struct loader *L, const struct ytree_node *v)
{
    uint64_t ms = 0;
    if (expect_duration(L, "timeout", v, WF_MAX_RUN_TIMEOUT_S, "30 days", &ms))
        L->wf->timeout_ms = ms;
}

static void w_rollback(struct loader *L, const struct ytree_node *v)
{
    bool b;
    if (ytree_get_bool(v, &b) != 0) {
        wrong_type(L, "rollback", v, "a boolean");
        return;
    }
    L->rollback = b;
}

static void w_variables(struct loader *L, const struct ytree_node *v)
{
    if (v->kind != YTREE_MAPPING) {
        wrong_type(L, "variables", v, "a mapping");
        return;
    }
    L->vars_node = v;
}

static void w_steps(struct loader *L, const struct ytree_node *v)
{
    if (v->kind != YTREE_SEQUENCE) {
        wrong_type(L, "steps", v, "a sequence of steps");
        return;
    }
    if (v->len == 0)
        diag_error(L->d, v->line, v->column,
                   "a workflow needs at least "
                   "one step");
    L->steps_node = v;
}

static const struct {
    const char *name;
    void (*handler)(struct loader *L, const struct ytree_node *v);
} wf_keys[] = {
    {"name", w_name},
    {"version", w_version},
    {"description", w_description},
    {"timeout", w_timeout},
    {"variables", w_variables},
    {"rollback", w_rollback},
    {"steps", w_steps},
};
#define NWF_KEYS (sizeof(wf_keys) / sizeof(wf_keys[0]))

static const char *wf_key_get(void *ctx, size_t i, size_t *len)
{
    (void)ctx;
    if (i >= NWF_KEYS)
        return NULL;
    *len = strlen(wf_keys[i].name);
    return wf_keys[i].name;
}

/* Variables: names first (so templates can name any of them), then the
 * values. */
static void parse_variables(struct loader *L)
{
    const struct ytree_node *vars = L->vars_node;
    struct wf *wf = L->wf;
    if (vars == NULL || vars->len == 0)
        return;
    wf->variable_values = weft_calloc(vars->len, sizeof(*wf->variable_values));
    if (wf->variable_values == NULL) {
        set_oom(L);
        return;
    }
    wf->nvariables = vars->len;
    for (uint32_t i = 0; i < vars->len; i++) {
        const struct ytree_node *k = vars->u.items[2 * i];
        if (!valid_var_name(k))
            diag_error(L->d, k->line, k->column,
                       "invalid variable name '%.*s': use letters, digits "
                       "and '_', not starting with a digit",
                       WF_MAX_ID_LEN, k->u.text);
        if (strmap_put(&L->var_index, k->u.text, k->len,
                       (void *)(uintptr_t)(i + 1), NULL) == WEFT_ENOMEM) {
            set_oom(L);
            return;
        }
    }
    for (uint32_t i = 0; i < vars->len && !failed(L); i++) {
        const struct ytree_node *v = vars->u.items[2 * i + 1];
        char key[WF_MAX_ID_LEN + 16];
        snprintf(key, sizeof(key), "variables.%.*s", WF_MAX_ID_LEN,
                 vars->u.items[2 * i]->u.text);
        wf->variable_values[i] =
            compile_value(L, key, v, R_FOR_VARIABLES, (long)i);
    }
}

static void parse_root(struct loader *L, const struct ytree_node *root)
{
    if (root == NULL || (root->kind == YTREE_SCALAR &&
                         root->type == YTREE_NULL && root->len == 0)) {
        diag_error(L->d, 1, 1,
                   "file is empty; a workflow is a mapping with 'steps'");
        return;
    }
    if (root->kind != YTREE_MAPPING) {
        diag_error(L->d, root->line, root->column,
                   "a workflow must be a mapping with 'steps', got %s",
                   ytree_describe(root));
        return;
    }
    for (uint32_t i = 0; i < root->len; i++) {
        const struct ytree_node *k = root->u.items[2 * i];
        size_t j;
        for (j = 0; j < NWF_KEYS; j++) {
            if (word_eq(k->u.text, k->len, wf_keys[j].name))
                break;
        }
        if (j < NWF_KEYS)
            wf_keys[j].handler(L, root->u.items[2 * i + 1]);
        else if (!(k->len > 2 && memcmp(k->u.text, "x-", 2) == 0))
            unknown_key(L, k, wf_key_get, NULL);
        /* `x-` keys are extensions weft ignores (a place for anchors). */
    }
    if (ytree_map_get(root, "steps") == NULL)
        diag_error(L->d, root->line, root->column,
                   "workflow is missing required key 'steps'");
    parse_variables(L);
    if (L->steps_node != NULL && !failed(L))
        parse_list(L, L->steps_node, -1, 0, 0);
}

/* ---- phase 2: strings ---- */

static size_t str_need(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static char *str_put(char **cursor, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = *cursor;
    memcpy(d, s, n);
    *cursor += n;
    return d;
}

static int intern_strings(struct loader *L, const char *default_name)
{
    struct wf *wf = L->wf;
    const char *name =
        L->name ? L->name : (default_name ? default_name : "workflow");
    size_t total =
        str_need(name) + str_need(L->version) + str_need(L->description);
    for (uint32_t i = 0; i < wf->nvariables; i++)
        total += L->vars_node->u.items[2 * i]->len + 1;
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        const struct wf_step *s = &wf->steps[i];
        total += str_need(s->id) + str_need(s->persona) + str_need(s->queue) +
                 str_need(s->fallback_persona);
    }
    char *pool = weft_malloc(total ? total : 1);
    if (pool == NULL)
        return WEFT_ENOMEM;
    wf->mem->strings = pool;
    if (wf->nvariables > 0) {
        wf->variable_names =
            weft_calloc(wf->nvariables, sizeof(*wf->variable_names));
        if (wf->variable_names == NULL)
            return WEFT_ENOMEM;
    }
    char *cur = pool;
    wf->name = str_put(&cur, name);
    wf->version = str_put(&cur, L->version);
    wf->description = str_put(&cur, L->description);
    wf->rollback = L->rollback;
    for (uint32_t i = 0; i < wf->nvariables; i++)
        wf->variable_names[i] =
            str_put(&cur, L->vars_node->u.items[2 * i]->u.text);
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        struct wf_step *s = &wf->steps[i];
        s->id = str_put(&cur, s->id);
        s->persona = str_put(&cur, s->persona);
        s->queue = str_put(&cur, s->queue);
        s->fallback_persona = str_put(&cur, s->fallback_persona);
    }
    return 0;
}

/* ---- phase 3: ids ---- */

static uint32_t id_hash(const char *id, size_t len)
{
    uint64_t h = strmap_hash(id, len);
    return (uint32_t)(h ^ (h >> 32));
}

/* Index of the step with this id, or UINT32_MAX. */
static uint32_t find_index(const struct wf *wf, const char *id, size_t len)
{
    const struct wf_mem *m = wf->mem;
    if (m == NULL || m->id_slots == NULL)
        return UINT32_MAX;
    uint32_t h = id_hash(id, len);
    for (uint32_t i = h & m->id_mask;; i = (i + 1) & m->id_mask) {
        uint32_t s = m->id_slots[i];
        if (s == 0)
            return UINT32_MAX;
        if (m->id_hash[s - 1] != h)
            continue;
        const char *sid = m->strings + m->id_off[s - 1];
        if (strncmp(sid, id, len) == 0 && sid[len] == '\0')
            return s - 1;
    }
}

static void index_ids(struct loader *L)
{
    struct wf *wf = L->wf;
    struct wf_mem *m = wf->mem;
    /* Load factor at most 1/2 keeps probes short. */
    size_t cap = 16;
    while (cap < 2 * (size_t)wf->nsteps)
        cap *= 2;
    m->id_slots = weft_calloc(cap, sizeof(*m->id_slots));
    m->id_hash = weft_calloc(wf->nsteps ? wf->nsteps : 1, sizeof(*m->id_hash));
    m->id_off = weft_calloc(wf->nsteps ? wf->nsteps : 1, sizeof(*m->id_off));
    if (m->id_slots == NULL || m->id_hash == NULL || m->id_off == NULL) {
        set_oom(L);
        return;
    }
    m->id_mask = (uint32_t)(cap - 1);
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        const struct wf_step *s = &wf->steps[i];
        if (s->id == NULL)
            continue;
        size_t len = strlen(s->id);
        uint32_t h = id_hash(s->id, len);
        m->id_hash[i] = h;
        m->id_off[i] = (uint32_t)(s->id - m->strings);
        uint32_t first = find_index(wf, s->id, len);
        if (first != UINT32_MAX) {
            const struct wf_step *p = &wf->steps[first];
            const struct ytree_node *idn = L->src[i].id;
            diag_error(L->d, idn->line, idn->column,
                       "duplicate step id '%s' (first defined at %d:%d)", s->id,
                       p->line, p->column);
            continue;
        }
        uint32_t j = h & m->id_mask;
        while (m->id_slots[j] != 0)
            j = (j + 1) & m->id_mask;
        m->id_slots[j] = i + 1;
    }
}

/* ---- phase 4: dependencies ---- */

struct edges {
    uint32_t *from, *to;
    size_t n, cap;
};

static int edges_add(struct edges *e, uint32_t from, uint32_t to)
{
    if (e->n == e->cap) {
        size_t ncap = e->cap ? e->cap * 2 : 256;
        uint32_t *f = weft_realloc(e->from, ncap * sizeof(*f));
        if (f == NULL)
            return WEFT_ENOMEM;
        e->from = f;
        uint32_t *t = weft_realloc(e->to, ncap * sizeof(*t));
        if (t == NULL)
            return WEFT_ENOMEM;
        e->to = t;
        e->cap = ncap;
    }
    e->from[e->n] = from;
    e->to[e->n] = to;
    e->n++;
    return 0;
}

static void edges_free(struct edges *e)
{
    weft_free(e->from);
    weft_free(e->to);
    memset(e, 0, sizeof(*e));
}

static const char *group_kind(const struct wf_step *s)
{
    return s->type == WF_STEP_PARALLEL ? "parallel group" : "conditional";
}

struct ids_ctx {
    const struct wf *wf;
};

static const char *ids_get(void *ctx, size_t i, size_t *len)
{
    struct ids_ctx *c = ctx;
    while (i < c->wf->nsteps && c->wf->steps[i].id == NULL)
        i++;
    if (i >= c->wf->nsteps)
        return NULL;
    *len = strlen(c->wf->steps[i].id);
    return c->wf->steps[i].id;
}

/* Reports a dependency of x on y that leaves x's list; false if none. */
static bool check_crossing(struct loader *L, uint32_t x, uint32_t y,
                           const struct ytree_node *at)
{
    const struct wf_step *st = L->wf->steps;
    if (st[x].parent == st[y].parent && st[x].branch == st[y].branch)
        return false;
    const char *xi = st[x].id, *yi = st[y].id;
    for (int32_t a = st[x].parent; a >= 0; a = st[a].parent) {
        if ((uint32_t)a == y) {
            diag_error(L->d, at->line, at->column,
                       "step '%s' depends on '%s', which contains it", xi, yi);
            return true;
        }
    }
    for (int32_t a = st[y].parent; a >= 0; a = st[a].parent) {
        if ((uint32_t)a == x) {
            diag_error(L->d, at->line, at->column,
                       "step '%s' depends on '%s', which is inside it", xi, yi);
            return true;
        }
    }
    /* Climb to the first list holding an ancestor of each. */
    uint32_t u = x, v = y;
    while (st[u].depth > st[v].depth)
        u = (uint32_t)st[u].parent;
    while (st[v].depth > st[u].depth)
        v = (uint32_t)st[v].parent;
    while (u != v &&
           !(st[u].parent == st[v].parent && st[u].branch == st[v].branch)) {
        u = (uint32_t)st[u].parent;
        v = (uint32_t)st[v].parent;
    }
    if (u == v) {
        diag_error(L->d, at->line, at->column,
                   "step '%s' depends on '%s', which is in the other "
                   "branch of conditional '%s'",
                   xi, yi, st[u].id ? st[u].id : "?");
    } else if (u == x) {
        diag_error(L->d, at->line, at->column,
                   "step '%s' depends on '%s', which is inside %s '%s'; "
                   "depend on '%s' instead",
                   xi, yi, group_kind(&st[v]), st[v].id ? st[v].id : "?",
                   st[v].id ? st[v].id : "?");
    } else if (v == y) {
        diag_error(L->d, at->line, at->column,
                   "step '%s' depends on '%s', which is outside %s '%s'; "
                   "make '%s' depend on it",
                   xi, yi, group_kind(&st[u]), st[u].id ? st[u].id : "?",
                   st[u].id ? st[u].id : "?");
    } else {
        diag_error(L->d, at->line, at->column,
                   "step '%s' depends on '%s', which is outside %s '%s' "
                   "and inside %s '%s'; make '%s' depend on '%s'",
                   xi, yi, group_kind(&st[u]), st[u].id ? st[u].id : "?",
                   group_kind(&st[v]), st[v].id ? st[v].id : "?",
                   st[u].id ? st[u].id : "?", st[v].id ? st[v].id : "?");
    }
    return true;
}

static void resolve_deps(struct loader *L, struct edges *e)
{
    struct wf *wf = L->wf;
    char label[WF_MAX_ID_LEN + 32], hint[WF_HINT_MAX_WORD + 32];
    /* seen[y] == x + 1: x already listed y. list[i]: which list step i
     * is in (0 = top level, else 2 * parent + branch + 1); both are small
     * arrays so the hot loop stays in cache. */
    size_t n = wf->nsteps ? wf->nsteps : 1;
    uint32_t *seen = weft_calloc(n, sizeof(*seen));
    uint32_t *list = weft_malloc(n * sizeof(*list));
    if (seen == NULL || list == NULL) {
        weft_free(seen);
        weft_free(list);
        set_oom(L);
        return;
    }
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        const struct wf_step *s = &wf->steps[i];
        list[i] = s->parent < 0 ? 0 : 2 * (uint32_t)s->parent + s->branch + 1;
    }
    for (uint32_t x = 0; x < wf->nsteps && !failed(L); x++) {
        const struct ytree_node *deps = L->src[x].deps;
        if (deps == NULL)
            continue;
        for (uint32_t i = 0; i < deps->len; i++) {
            const struct ytree_node *d = deps->u.items[i];
            if (!ytree_is_string(d)) {
                diag_error(L->d, d->line, d->column,
                           "a dependency must be a step id (a string), got "
                           "%s",
                           ytree_describe(d));
                continue;
            }
            uint32_t y = find_index(wf, d->u.text, d->len);
            if (y == UINT32_MAX) {
                struct ids_ctx c = {wf};
                const char *s = suggest(L, d->u.text, d->len, ids_get, &c);
                diag_error(L->d, d->line, d->column,
                           "%s depends on unknown step '%.*s'%s",
                           step_label(L, x, label, sizeof(label)),
                           WF_MAX_ID_LEN, d->u.text,
                           hint_text(hint, sizeof(hint), s));
                continue;
            }
            if (y == x) {
                diag_error(L->d, d->line, d->column, "%s depends on itself",
                           step_label(L, x, label, sizeof(label)));
                continue;
            }
            if (seen[y] == x + 1) {
                diag_error(L->d, d->line, d->column,
                           "%s lists dependency '%s' more than once",
                           step_label(L, x, label, sizeof(label)),
                           wf->steps[y].id);
                continue;
            }
            seen[y] = x + 1;
            if (wf->steps[x].id == NULL ||
                (list[x] != list[y] && check_crossing(L, x, y, d)))
                continue;
            if (edges_add(e, x, y) != 0) {
                set_oom(L);
                break;
            }
        }
    }
    weft_free(seen);
    weft_free(list);
}

/* ---- phase 5: cycles and order ---- */

static void report_cycles(struct loader *L, const struct dag_graph *g)
{
    struct wf *wf = L->wf;
    uint32_t n = g->n, ncomp = 0;
    uint32_t *comp = weft_malloc((n ? n : 1) * sizeof(*comp));
    uint32_t *size = NULL, *path = NULL;
    struct buf b;
    buf_init(&b, WF_CYCLE_TEXT_MAX + 2 * WF_MAX_ID_LEN);
    if (comp == NULL || dag_scc(g, comp, &ncomp) != 0)
        goto oom;
    size = weft_calloc(ncomp ? ncomp : 1, sizeof(*size));
    path = weft_malloc((n ? n : 1) * sizeof(*path));
    if (size == NULL || path == NULL)
        goto oom;
    for (uint32_t v = 0; v < n; v++)
        size[comp[v]]++;
    /* One report per component, from its first step in file order. */
    for (uint32_t v = 0; v < n; v++) {
        uint32_t c = comp[v], len = 0;
        if (size[c] < 2)
            continue;
        size[c] = 0;
        int rc = dag_cycle_path(g, comp, v, path, &len);
        if (rc == WEFT_ENOMEM)
            goto oom;
        if (rc != 0)
            continue;
        buf_reset(&b);
        for (uint32_t i = 0; i <= len; i++) {
            const char *id = wf->steps[path[i % len]].id;
            /* A cycle through thousands of steps is cut short. */
            if (b.len > WF_CYCLE_TEXT_MAX) {
                if (buf_append_str(&b, " -> ...") != 0)
                    goto oom;
                break;
            }
            if (buf_printf(&b, "%s%s", i ? " -> " : "", id) != 0)
                goto oom;
        }
        diag_error(L->d, wf->steps[v].line, wf->steps[v].column,
                   "dependency cycle: %s", b.data);
    }
    goto cleanup;
oom:
    set_oom(L);
cleanup:
    buf_deinit(&b);
    weft_free(comp);
    weft_free(size);
    weft_free(path);
}

/* Fills deps, dependents, children, top and topo from the edges. */
static int link_steps(struct loader *L, const struct edges *e)
{
    struct wf *wf = L->wf;
    uint32_t n = wf->nsteps;
    size_t ndeps = e->n;
    size_t total = 2 * ndeps + (size_t)n /* children + top */ + n /* topo */;
    uint32_t *pool = weft_malloc((total ? total : 1) * sizeof(*pool));
    if (pool == NULL)
        return WEFT_ENOMEM;
    wf->mem->pool = pool;
    uint32_t *p = pool;
    /* deps: edges are grouped by step in order. */
    for (size_t i = 0; i < ndeps; i++) {
        struct wf_step *s = &wf->steps[e->from[i]];
        if (s->deps == NULL)
            s->deps = p + i;
        s->ndeps++;
    }
    p += ndeps;
    /* dependents: count, place, fill in step order. */
    for (size_t i = 0; i < ndeps; i++)
        wf->steps[e->to[i]].ndependents++;
    for (uint32_t i = 0; i < n; i++) {
        struct wf_step *s = &wf->steps[i];
        s->dependents = p;
        p += s->ndependents;
        s->ndependents = 0;
    }
    for (size_t i = 0; i < ndeps; i++) {
        struct wf_step *y = &wf->steps[e->to[i]];
        y->dependents[y->ndependents++] = e->from[i];
    }
    for (size_t i = 0; i < ndeps; i++)
        pool[i] = e->to[i];
    /* children and top-level steps, pre-order keeps file order. */
    for (uint32_t i = 0; i < n; i++) {
        struct wf_step *s = &wf->steps[i];
        if (s->parent < 0)
            wf->ntop++;
        else
            wf->steps[s->parent].nchildren[s->branch]++;
    }
    wf->top = p;
    p += wf->ntop;
    for (uint32_t i = 0; i < n; i++) {
        struct wf_step *s = &wf->steps[i];
        for (int b = 0; b < 2; b++) {
            s->children[b] = p;
            p += s->nchildren[b];
            s->nchildren[b] = 0;
        }
    }
    wf->ntop = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct wf_step *s = &wf->steps[i];
        if (s->parent < 0) {
            wf->top[wf->ntop++] = i;
        } else {
            struct wf_step *ps = &wf->steps[s->parent];
            ps->children[s->branch][ps->nchildren[s->branch]++] = i;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        struct wf_step *s = &wf->steps[i];
        for (int b = 0; b < 2; b++) {
            if (s->nchildren[b] == 0)
                s->children[b] = NULL;
        }
        if (s->ndependents == 0)
            s->dependents = NULL;
    }
    wf->topo = p;
    return 0;
}

/* Finds cycles (reported) or computes wf->topo: dependencies before their
 * dependents, composites before their children. */
static void order_steps(struct loader *L, const struct edges *e)
{
    struct wf *wf = L->wf;
    uint32_t n = wf->nsteps, count = 0;
    struct dag_graph g;
    struct edges all = {0};
    int rc = 0;
    memset(&g, 0, sizeof(g));
    /* Kahn over dependency -> dependent and parent -> child. */
    all.cap = e->n + n + 1;
    all.from = weft_malloc(all.cap * sizeof(*all.from));
    all.to = weft_malloc(all.cap * sizeof(*all.to));
    if (all.from == NULL || all.to == NULL)
        rc = WEFT_ENOMEM;
    for (size_t i = 0; i < e->n && rc == 0; i++) {
        all.from[all.n] = e->to[i];
        all.to[all.n++] = e->from[i];
    }
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (wf->steps[i].parent >= 0) {
            all.from[all.n] = (uint32_t)wf->steps[i].parent;
            all.to[all.n++] = i;
        }
    }
    if (rc == 0)
        rc = dag_graph_init(&g, n, all.from, all.to, all.n);
    uint32_t *order = weft_malloc((n ? n : 1) * sizeof(*order));
    if (rc == 0 && order == NULL)
        rc = WEFT_ENOMEM;
    if (rc == 0)
        rc = dag_topo(&g, false, order, &count);
    if (rc != 0) {
        set_oom(L);
        goto cleanup;
    }
    if (count < n) {
        /* A cycle: dependencies only (parent edges cannot close one). */
        dag_graph_deinit(&g);
        if (dag_graph_init(&g, n, e->from, e->to, e->n) != 0) {
            set_oom(L);
            goto cleanup;
        }
        report_cycles(L, &g);
        goto cleanup;
    }
    if (L->d->errors == L->errors0) {
        rc = link_steps(L, e);
        if (rc != 0) {
            set_oom(L);
            goto cleanup;
        }
        memcpy(wf->topo, order, (size_t)n * sizeof(*order));
    }
cleanup:
    weft_free(order);
    dag_graph_deinit(&g);
    edges_free(&all);
}

/* ---- phase 6: variables ---- */

struct var_rank {
    const struct ytree_node *key;
    uint32_t index; /* in file order */
};

static int cmp_var_rank(const void *x, const void *y)
{
    const struct var_rank *a = x, *b = y;
    size_t m = a->key->len < b->key->len ? a->key->len : b->key->len;
    int r = memcmp(a->key->u.text, b->key->u.text, m);
    if (r)
        return r;
    if (a->key->len != b->key->len)
        return a->key->len < b->key->len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Appends "a -> b -> a" for a cycle of variables (ranks along path). */
static void var_cycle_text(const struct var_rank *ranks, const uint32_t *path,
                           uint32_t len, char *msg, size_t size)
{
    size_t used = 0;
    msg[0] = '\0';
    for (uint32_t i = 0; i <= len && used + 1 < size; i++) {
        const struct ytree_node *k = ranks[path[i % len]].key;
        int w = snprintf(msg + used, size - used, "%s%.*s", i ? " -> " : "",
                         WF_MAX_ID_LEN, k->u.text);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Puts wf->variable_* in evaluation order: each variable after those it
 * reads, ties by name. Cycles and self-reads are reported. */
static void order_variables(struct loader *L)
{
    struct wf *wf = L->wf;
    uint32_t n = wf->nvariables, count = 0, ncomp = 0;
    if (n == 0)
        return;
    size_t ne_max = L->nvar_edges / 2 + 1;
    struct var_rank *ranks = weft_malloc(n * sizeof(*ranks));
    uint32_t *rank_of = weft_malloc(n * sizeof(*rank_of));
    uint32_t *from = weft_malloc(ne_max * sizeof(*from));
    uint32_t *to = weft_malloc(ne_max * sizeof(*to));
    uint32_t *order = weft_malloc(n * sizeof(*order));
    uint32_t *comp = NULL, *path = NULL;
    unsigned char *done = NULL;
    char **names = NULL;
    struct tvalue **values = NULL;
    struct dag_graph g;
    memset(&g, 0, sizeof(g));
    if (!ranks || !rank_of || !from || !to || !order)
        goto oom;
    for (uint32_t i = 0; i < n; i++) {
        ranks[i].key = L->vars_node->u.items[2 * i];
        ranks[i].index = i;
    }
    qsort(ranks, n, sizeof(*ranks), cmp_var_rank);
    for (uint32_t r = 0; r < n; r++)
        rank_of[ranks[r].index] = r;
    /* Edges run from the variable read to its reader, in ranks. */
    size_t ne = 0;
    for (size_t i = 0; i + 1 < L->nvar_edges; i += 2) {
        uint32_t reader = L->var_edges[i], read = L->var_edges[i + 1];
        if (reader == read) {
            const struct ytree_node *k = L->vars_node->u.items[2 * reader];
            diag_error(L->d, k->line, k->column, "variable '%.*s' reads itself",
                       WF_MAX_ID_LEN, k->u.text);
            continue;
        }
        from[ne] = rank_of[read];
        to[ne] = rank_of[reader];
        ne++;
    }
    if (dag_graph_init(&g, n, from, to, ne) != 0 ||
        dag_topo(&g, true, order, &count) != 0)
        goto oom;
    if (count < n) {
        comp = weft_malloc(n * sizeof(*comp));
        path = weft_malloc(n * sizeof(*path));
        if (!comp || !path || dag_scc(&g, comp, &ncomp) != 0)
            goto oom;
        done = weft_calloc(ncomp ? ncomp : 1, 1);
        if (done == NULL)
            goto oom;
        /* Once per cycle, at its first variable in file order. The path
         * follows read -> reader; reversed it reads "a reads b". */
        for (uint32_t fi = 0; fi < n; fi++) {
            uint32_t r = rank_of[fi], len = 0;
            if (done[comp[r]] || dag_cycle_path(&g, comp, r, path, &len))
                continue;
            done[comp[r]] = 1;
            for (uint32_t i = 1, j = len - 1; i < j; i++, j--) {
                uint32_t t = path[i];
                path[i] = path[j];
                path[j] = t;
            }
            char msg[512];
            var_cycle_text(ranks, path, len, msg, sizeof(msg));
            const struct ytree_node *k = L->vars_node->u.items[2 * fi];
            diag_error(L->d, k->line, k->column,
                       "variables read each other in a cycle: %s", msg);
        }
        goto cleanup;
    }
    names = weft_malloc(n * sizeof(*names));
    values = weft_malloc(n * sizeof(*values));
    if (!names || !values)
        goto oom;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = ranks[order[i]].index;
        names[i] = wf->variable_names[idx];
        values[i] = wf->variable_values[idx];
    }
    memcpy(wf->variable_names, names, n * sizeof(*names));
    memcpy(wf->variable_values, values, n * sizeof(*values));
    goto cleanup;
oom:
    set_oom(L);
cleanup:
    dag_graph_deinit(&g);
    weft_free(ranks);
    weft_free(rank_of);
    weft_free(from);
    weft_free(to);
    weft_free(order);
    weft_free(comp);
    weft_free(path);
    weft_free(done);
    weft_free(names);
    weft_free(values);
}

/* ---- phase 7: canonical JSON and digest ---- */

static int write_steps(struct loader *L, struct buf *b,
                       const struct ytree_node *list);

static int cmp_pair(const void *x, const void *y)
{
    struct ytree_node *const *a = x, *const *c = y;
    size_t m = a[0]->len < c[0]->len ? a[0]->len : c[0]->len;
    int r = memcmp(a[0]->u.text, c[0]->u.text, m);
    if (r)
        return r;
    return a[0]->len < c[0]->len ? -1 : a[0]->len > c[0]->len;
}

/* Writes a workflow or step mapping with keys sorted, `name` added when
 * absent, and step lists written as steps. */
static int write_object(struct loader *L, struct buf *b,
                        const struct ytree_node *map, const char *defname)
{
    static const struct ytree_node name_key = {.kind = YTREE_SCALAR,
                                               .type = YTREE_STRING,
                                               .quoted = true,
                                               .len = 4,
                                               .u.text = "name"};
    struct ytree_node name_val = {.kind = YTREE_SCALAR,
                                  .type = YTREE_STRING,
                                  .quoted = true,
                                  .len = (uint32_t)strlen(defname),
                                  .u.text = defname};
    size_t np = map->len;
    bool add = ytree_map_get(map, "name") == NULL;
    struct ytree_node *small[2 * WF_SMALL_MAP];
    struct ytree_node **pairs = small;
    int rc = 0;
    if (np + 1 > WF_SMALL_MAP) {
        pairs = weft_malloc((np + 1) * 2 * sizeof(*pairs));
        if (pairs == NULL)
            return WEFT_ENOMEM;
    }
    if (np > 0)
        memcpy(pairs, map->u.items, np * 2 * sizeof(*pairs));
    if (add) {
        pairs[2 * np] = (struct ytree_node *)&name_key;
        pairs[2 * np + 1] = &name_val;
        np++;
    }
    if (np > WF_SMALL_MAP) {
        qsort(pairs, np, 2 * sizeof(*pairs), cmp_pair);
    } else {
        /* A step has a handful of keys: insertion sort beats qsort. */
        for (size_t i = 1; i < np; i++) {
            struct ytree_node *kv[2] = {pairs[2 * i], pairs[2 * i + 1]};
            size_t j = i;
            while (j > 0 && cmp_pair(&pairs[2 * (j - 1)], kv) > 0) {
                pairs[2 * j] = pairs[2 * (j - 1)];
                pairs[2 * j + 1] = pairs[2 * (j - 1) + 1];
                j--;
            }
            pairs[2 * j] = kv[0];
            pairs[2 * j + 1] = kv[1];
        }
    }
    rc = buf_append_char(b, '{');
    for (size_t i = 0; rc == 0 && i < np; i++) {
        const struct ytree_node *k = pairs[2 * i], *v = pairs[2 * i + 1];
        if (i > 0)
            rc = buf_append_char(b, ',');
        if (rc == 0)
            rc = ytree_write_json_string(b, k->u.text, k->len);
        if (rc == 0)
            rc = buf_append_char(b, ':');
        if (rc)
            break;
        if (v->kind == YTREE_SEQUENCE &&
            (word_eq(k->u.text, k->len, "steps") ||
             word_eq(k->u.text, k->len, "then_steps") ||
             word_eq(k->u.text, k->len, "else_steps")))
            rc = write_steps(L, b, v);
        else
            rc = ytree_write_json(v, b);
    }
    if (rc == 0)
        rc = buf_append_char(b, '}');
    if (pairs != small)
        weft_free(pairs);
    return rc;
}

static int write_steps(struct loader *L, struct buf *b,
                       const struct ytree_node *list)
{
    int rc = buf_append_char(b, '[');
    for (uint32_t i = 0; rc == 0 && i < list->len; i++) {
        const struct ytree_node *m = list->u.items[i];
        const struct ytree_node *id = ytree_map_get(m, "id");
        if (i > 0)
            rc = buf_append_char(b, ',');
        if (rc == 0)
            rc = write_object(L, b, m, id ? id->u.text : "");
    }
    return rc ? rc : buf_append_char(b, ']');
}

static int make_canonical(struct loader *L, const struct ytree_node *root)
{
    struct wf *wf = L->wf;
    struct buf b;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    buf_init(&b, WF_MAX_CANONICAL);
    int rc = write_object(L, &b, root, wf->name);
    if (rc == WEFT_ELIMIT) {
        diag_error(L->d, 0, 0,
                   "the normalized definition is larger than %u bytes",
                   (unsigned)WF_MAX_CANONICAL);
        L->limit = true;
        rc = 0;
        goto cleanup;
    }
    if (rc != 0)
        goto cleanup;
    size_t len = 0;
    char *s = buf_steal(&b, &len);
    if (s == NULL) {
        rc = WEFT_ENOMEM;
        goto cleanup;
    }
    wf->canonical = s;
    wf->canonical_len = len;
    if (EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32) {
        rc = WEFT_ENOMEM;
        goto cleanup;
    }
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        wf->digest[2 * i] = hex[md[i] >> 4];
        wf->digest[2 * i + 1] = hex[md[i] & 15];
    }
    wf->digest[64] = '\0';
cleanup:
    buf_deinit(&b);
    return rc;
}

/* ---- entry points ---- */

void wf_free(struct wf *wf)
{
    if (wf == NULL)
        return;
    for (uint32_t i = 0; i < wf->nsteps; i++) {
        struct wf_step *s = &wf->steps[i];
        tvalue_free(s->name);
        tvalue_free(s->timeout);
        tvalue_free(s->params);
        tvalue_free(s->git_branch);
        tvalue_free(s->git_message);
        tvalue_free(s->git_remote);
        tvalue_free(s->git_base);
        tvalue_free(s->approvers);
        tvalue_free(s->approval_message);
        expr_free(s->condition);
    }
    for (uint32_t i = 0; wf->variable_values && i < wf->nvariables; i++)
        tvalue_free(wf->variable_values[i]);
    weft_free(wf->variable_values);
    weft_free(wf->variable_names);
    weft_free(wf->steps);
    weft_free(wf->canonical);
    if (wf->mem != NULL) {
        weft_free(wf->mem->strings);
        weft_free(wf->mem->pool);
        weft_free(wf->mem->id_slots);
        weft_free(wf->mem->id_hash);
        weft_free(wf->mem->id_off);
        weft_free(wf->mem);
    }
    weft_free(wf);
}

const struct wf_step *wf_find_step(const struct wf *wf, const char *id,
                                   size_t len)
{
    if (wf == NULL)
        return NULL;
    uint32_t i = find_index(wf, id, len);
    return i == UINT32_MAX ? NULL : &wf->steps[i];
}

/* Builds and validates the model from a parsed tree. errors0 is
 * d->errors before the tree was read, so problems the tree reported
 * (duplicate keys) also make the load fail. */
static int load_tree(struct ytree *tree, const char *default_name,
                     size_t errors0, struct wf **out, struct diag *d)
{
    struct loader L;
    struct edges e = {0};
    memset(&L, 0, sizeof(L));
    L.d = d;
    L.errors0 = errors0;
    L.tree = tree;
    strmap_init(&L.var_index);
    L.wf = weft_calloc(1, sizeof(*L.wf));
    if (L.wf == NULL ||
        (L.wf->mem = weft_calloc(1, sizeof(*L.wf->mem))) == NULL) {
        set_oom(&L);
        goto cleanup;
    }
    const struct ytree_node *root = ytree_root(tree);
    parse_root(&L, root);
    if (failed(&L))
        goto cleanup;
    if (intern_strings(&L, default_name) != 0) {
        set_oom(&L);
        goto cleanup;
    }
    index_ids(&L);
    if (!failed(&L))
        resolve_deps(&L, &e);
    if (!failed(&L) && !L.limit)
        order_steps(&L, &e);
    if (!failed(&L))
        order_variables(&L);
    if (!failed(&L) && !L.limit && d->errors == L.errors0 &&
        make_canonical(&L, root) != 0)
        set_oom(&L);
cleanup:
    edges_free(&e);
    strmap_deinit(&L.var_index);
    weft_free(L.var_edges);
    weft_free(L.src);
    int rc = L.rc;
    if (rc == 0 && L.limit)
        rc = WEFT_ELIMIT;
    if (rc == 0 && d->errors != L.errors0)
        rc = WEFT_EINVAL;
    if (rc == 0 && d->oom)
        rc = WEFT_ENOMEM;
    if (rc != 0) {
        wf_free(L.wf);
        return rc;
    }
    *out = L.wf;
    return 0;
}

int wf_load_buffer(const char *yaml, size_t len, const char *default_name,
                   struct wf **out, struct diag *d)
{
    struct ytree *tree = NULL;
    size_t errors0 = d->errors;
    int rc = ytree_parse(yaml, len, d, &tree);
    if (rc == 0)
        rc = load_tree(tree, default_name, errors0, out, d);
    ytree_free(tree);
    return rc;
}

/* The workflow's default name: the file's base name without .yml/.yaml. */
static char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    size_t n = strlen(b);
    if (n > 4 && strcmp(b + n - 4, ".yml") == 0)
        n -= 4;
    else if (n > 5 && strcmp(b + n - 5, ".yaml") == 0)
        n -= 5;
    return weft_strndup(b, n);
}

/* Reads all of path into *data (weft_malloc'd, NUL-terminated), refusing
 * more than YTREE_MAX_INPUT bytes. */
static int read_file(const char *path, char **data, size_t *len, struct diag *d)
{
    int rc = 0;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        diag_error(d, 0, 0, "cannot open: %s", strerror(errno));
        return WEFT_EIO;
    }
    for (;;) {
        if (cap - n < 4096) {
            /* Room for the limit plus one byte tells "too large" apart. */
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > (size_t)YTREE_MAX_INPUT + 2)
                ncap = (size_t)YTREE_MAX_INPUT + 2;
            if (ncap <= n + 1) {
                diag_error(d, 0, 0,
                           "file is larger than the limit of %u bytes "
                           "(%u MiB)",
                           (unsigned)YTREE_MAX_INPUT,
                           (unsigned)(YTREE_MAX_INPUT >> 20));
                rc = WEFT_ELIMIT;
                goto cleanup;
            }
            char *nb = weft_realloc(buf, ncap);
            if (nb == NULL) {
                rc = WEFT_ENOMEM;
                goto cleanup;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                diag_error(d, 0, 0, "cannot read: %s", strerror(errno));
                rc = WEFT_EIO;
                goto cleanup;
            }
            break;
        }
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    buf = NULL;
cleanup:
    weft_free(buf);
    fclose(f);
    return rc;
}

int wf_load_file(const char *path, struct wf **out, struct diag *d)
{
    char *data = NULL, *name = NULL;
    size_t len = 0;
    int rc = read_file(path, &data, &len, d);
    if (rc != 0)
        goto cleanup;
    name = base_name(path);
    if (name == NULL) {
        rc = WEFT_ENOMEM;
        goto cleanup;
    }
    rc = wf_load_buffer(data, len, name, out, d);
cleanup:
    weft_free(data);
    weft_free(name);
    return rc;
}

int wf_load_canonical(const char *json, size_t len, struct wf **out,
                      struct diag *d)
{
    /* Compact JSON is YAML flow syntax, so the canonical text is read by
     * the YAML loader itself: no second tree, the same limits, and
     * allocation failures are told apart from bad input (jansson reports
     * them as syntax errors). */
    return wf_load_buffer(json, len, NULL, out, d);
}
