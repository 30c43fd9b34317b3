/* personas.c - load and validate the persona registry (personas.h).
 *
 * The YAML is read into a ytree (positions for every message), then
 * walked once: each persona's keys dispatch through a table of
 * {name, handler} so an unknown key is reported with the closest known
 * one. Every problem is appended to the diag; the registry is built only
 * when there were none.
 */
#define _XOPEN_SOURCE 700 /* realpath */

#include "personas.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "breaker.h"
#include "error.h"
#include "hint.h"
#include "keys.h"
#include "ytree.h"

/* Words longer than this get no did-you-mean (none of ours is). */
/* Longest environment variable name accepted. */
#define PERSONA_ENV_NAME_MAX 128

struct entry {
    struct persona pub; /* its pointers alias the owned fields below */
    char *name;
    char **argv; /* NULL-terminated, owned strings */
    char **env;  /* NULL-terminated "K=V", owned strings */
    char *queue; /* NULL: the name */
};

struct remote {
    char *name;
    struct breaker_cfg breaker;
};

struct personas {
    char *path;
    size_t n;
    struct entry *items;
    size_t nremotes;
    struct remote *remotes;
};

/* ---- did you mean ------------------------------------------------------ */

/* The closest of names[0..n) to word, or NULL when none is close. */
static const char *closest(const char *word, size_t wl,
                           const char *const *names, size_t n)
{
    size_t max = wl <= 3 ? 1 : wl <= 6 ? 2 : 3;
    size_t best_d = max + 1;
    const char *best = NULL;

    if (wl == 0 || wl > HINT_MAX_WORD)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t cl = strlen(names[i]);
        size_t d = hint_distance(word, wl, names[i], cl, max);
        if (d < best_d && !(cl == wl && memcmp(names[i], word, wl) == 0)) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}

static const char *hint(char *buf, size_t size, const char *s)
{
    if (s == NULL)
        return "";
    snprintf(buf, size, " (did you mean '%s'?)", s);
    return buf;
}

/* ---- the walk ---------------------------------------------------------- */

struct loader {
    struct diag *d;
    const char *dir; /* absolute; relative argv[0]s resolve against it */
    bool oom;
};

static bool scalar_text_ok(const struct ytree_node *n)
{
    return n->kind == YTREE_SCALAR && n->type != YTREE_NULL &&
           strlen(n->u.text) == n->len;
}

static char *dup_text(struct loader *L, const struct ytree_node *n)
{
    char *s = weft_strndup(n->u.text, n->len);
    if (s == NULL)
        L->oom = true;
    return s;
}

/* dir + "/" + rel, or a copy of rel when it needs no resolving. */
static char *resolve_prog(struct loader *L, const char *rel, size_t len)
{
    size_t dl;
    char *s;
    if (rel[0] == '/' || memchr(rel, '/', len) == NULL)
        return weft_strndup(rel, len);
    dl = strlen(L->dir);
    if (len > SIZE_MAX - dl - 2)
        return NULL;
    s = weft_malloc(dl + len + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, L->dir, dl);
    s[dl] = '/';
    memcpy(s + dl + 1, rel, len);
    s[dl + 1 + len] = '\0';
    return s;
}

static void key_exec(struct loader *L, struct entry *e,
                     const struct ytree_node *v)
{
    if (v->kind != YTREE_SEQUENCE) {
        diag_error(L->d, v->line, v->column,
                   "persona '%s': 'exec' must be a list of arguments such "
                   "as [\"./personas/x.py\"] (an argv, never a shell "
                   "command), not %s",
                   e->name, ytree_describe(v));
        return;
    }
    if (v->len == 0 || v->len > PERSONA_ARGV_MAX) {
        diag_error(L->d, v->line, v->column,
                   "persona '%s': 'exec' needs 1 to %d arguments, not %u",
                   e->name, PERSONA_ARGV_MAX, (unsigned)v->len);
        return;
    }
    for (uint32_t i = 0; i < v->len; i++) {
        const struct ytree_node *a = v->u.items[i];
        if (!scalar_text_ok(a) || (i == 0 && a->len == 0)) {
            diag_error(L->d, a->line, a->column,
                       "persona '%s': exec argument %u must be a %sstring "
                       "without NUL bytes",
                       e->name, (unsigned)i, i == 0 ? "non-empty " : "");
            return;
        }
    }
    e->argv = weft_calloc(v->len + 1, sizeof(*e->argv));
    if (e->argv == NULL) {
        L->oom = true;
        return;
    }
    for (uint32_t i = 0; i < v->len; i++) {
        const struct ytree_node *a = v->u.items[i];
        e->argv[i] = i == 0 ? resolve_prog(L, a->u.text, a->len)
                            : weft_strndup(a->u.text, a->len);
        if (e->argv[i] == NULL) {
            L->oom = true;
            return;
        }
    }
}

static void key_timeout(struct loader *L, struct entry *e,
                        const struct ytree_node *v)
{
    double s;
    if (ytree_get_double(v, &s) != 0 || !(s > 0) || s > PERSONA_TIMEOUT_MAX_S) {
        diag_error(L->d, v->line, v->column,
                   "persona '%s': 'timeout' must be a number of seconds "
                   "above 0 and at most %d",
                   e->name, PERSONA_TIMEOUT_MAX_S);
        return;
    }
    e->pub.timeout_ms = (uint64_t)llround(s * 1000.0);
    if (e->pub.timeout_ms == 0)
        e->pub.timeout_ms = 1;
}

static bool env_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > PERSONA_ENV_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* Set by the worker for every request (docs/personas.md). */
static const char *const reserved_env[] = {"WEFT_RUN_ID", "WEFT_STEP_ID",
                                           "TRACEPARENT"};

static void key_env(struct loader *L, struct entry *e,
                    const struct ytree_node *v)
{
    size_t n;
    if (v->kind != YTREE_MAPPING) {
        diag_error(L->d, v->line, v->column,
                   "persona '%s': 'env' must be a mapping of NAME: value, "
                   "not %s",
                   e->name, ytree_describe(v));
        return;
    }
    n = v->len; /* pairs */
    if (n > PERSONA_ENV_MAX) {
        diag_error(L->d, v->line, v->column,
                   "persona '%s': 'env' has %zu entries; at most %d", e->name,
                   n, PERSONA_ENV_MAX);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ytree_node *k = v->u.items[2 * i];
        const struct ytree_node *val = v->u.items[2 * i + 1];
        if (!env_name_ok(k->u.text, k->len)) {
            diag_error(L->d, k->line, k->column,
                       "persona '%s': env name '%.64s' must be letters, "
                       "digits and '_', not starting with a digit",
                       e->name, k->u.text);
            return;
        }
        for (size_t r = 0; r < sizeof(reserved_env) / sizeof(*reserved_env);
             r++) {
            if (strcmp(k->u.text, reserved_env[r]) == 0) {
                diag_error(L->d, k->line, k->column,
                           "persona '%s': env '%s' is set by the worker "
                           "for each request",
                           e->name, reserved_env[r]);
                return;
            }
        }
        if (!scalar_text_ok(val)) {
            diag_error(L->d, val->line, val->column,
                       "persona '%s': env '%s' must be a scalar value "
                       "without NUL bytes, not %s",
                       e->name, k->u.text, ytree_describe(val));
            return;
        }
    }
    e->env = weft_calloc(n + 1, sizeof(*e->env));
    if (e->env == NULL) {
        L->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ytree_node *k = v->u.items[2 * i];
        const struct ytree_node *val = v->u.items[2 * i + 1];
        char *s = weft_malloc((size_t)k->len + val->len + 2);
        if (s == NULL) {
            L->oom = true;
            return;
        }
        memcpy(s, k->u.text, k->len);
        s[k->len] = '=';
        memcpy(s + k->len + 1, val->u.text, val->len);
        s[k->len + 1 + val->len] = '\0';
        e->env[i] = s;
    }
}

static void key_queue(struct loader *L, struct entry *e,
                      const struct ytree_node *v)
{
    if (!ytree_is_string(v) || !keys_valid_id(v->u.text, v->len)) {
        diag_error(L->d, v->line, v->column,
                   "persona '%s': 'queue' must be 1-%d characters of "
                   "[A-Za-z0-9_.-]",
                   e->name, KEYS_ID_MAX);
        return;
    }
    e->queue = dup_text(L, v);
}

static void key_breaker(struct loader *L, struct entry *e,
                        const struct ytree_node *v)
{
    char what[KEYS_ID_MAX + 32];
    snprintf(what, sizeof(what), "persona '%s': 'breaker'", e->name);
    breaker_parse(v, false, what, L->d, &e->pub.breaker);
}

/* The keys of a persona, nginx-style: unknown keys are reported. */
static const struct {
    const char *name;
    void (*fn)(struct loader *L, struct entry *e, const struct ytree_node *v);
} persona_keys[] = {
    {"exec", key_exec},   {"timeout", key_timeout}, {"env", key_env},
    {"queue", key_queue}, {"breaker", key_breaker},
};
#define NKEYS (sizeof(persona_keys) / sizeof(persona_keys[0]))

static void load_persona(struct loader *L, struct entry *e,
                         const struct ytree_node *k, const struct ytree_node *v)
{
    static const char *names[NKEYS];
    char hb[96];

    if (!keys_valid_id(k->u.text, k->len)) {
        diag_error(L->d, k->line, k->column,
                   "persona name '%.64s' must be 1-%d characters of "
                   "[A-Za-z0-9_.-]",
                   k->u.text, KEYS_ID_MAX);
        return;
    }
    e->name = dup_text(L, k);
    if (e->name == NULL)
        return;
    e->pub.line = k->line;
    if (v->kind != YTREE_MAPPING) {
        diag_error(L->d, v->line, v->column,
                   "persona '%s' must be a mapping with 'exec', not %s",
                   e->name, ytree_describe(v));
        return;
    }
    for (size_t i = 0; i < NKEYS; i++)
        names[i] = persona_keys[i].name;
    for (uint32_t i = 0; i < 2 * v->len; i += 2) {
        const struct ytree_node *key = v->u.items[i];
        size_t r;
        for (r = 0; r < NKEYS; r++) {
            if (strcmp(key->u.text, persona_keys[r].name) == 0)
                break;
        }
        if (r == NKEYS) {
            diag_error(L->d, key->line, key->column,
                       "persona '%s': unknown key '%.64s'%s", e->name,
                       key->u.text,
                       hint(hb, sizeof(hb),
                            closest(key->u.text, key->len, names, NKEYS)));
            continue;
        }
        persona_keys[r].fn(L, e, v->u.items[i + 1]);
    }
    if (ytree_map_get(v, "exec") == NULL)
        diag_error(L->d, v->line, v->column, "persona '%s': 'exec' is missing",
                   e->name);
}

static void entry_deinit(struct entry *e)
{
    for (size_t i = 0; e->argv != NULL && e->argv[i] != NULL; i++)
        weft_free(e->argv[i]);
    for (size_t i = 0; e->env != NULL && e->env[i] != NULL; i++)
        weft_free(e->env[i]);
    weft_free(e->argv);
    weft_free(e->env);
    weft_free(e->name);
    weft_free(e->queue);
}

void personas_free(struct personas *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        entry_deinit(&r->items[i]);
    weft_free(r->items);
    for (size_t i = 0; i < r->nremotes; i++)
        weft_free(r->remotes[i].name);
    weft_free(r->remotes);
    weft_free(r->path);
    weft_free(r);
}

/* `remotes: {NAME: {breaker: {...}}}`: the circuit breakers of git
 * remotes (breaker names `git:NAME`). */
static int load_remotes(struct loader *L, const struct ytree_node *rs,
                        struct personas *r)
{
    static const char *const remote_keys[] = {"breaker"};
    char hb[96], what[KEYS_ID_MAX + 32];
    if (rs->kind == YTREE_SCALAR && rs->type == YTREE_NULL)
        return 0;
    if (rs->kind != YTREE_MAPPING) {
        diag_error(L->d, rs->line, rs->column,
                   "'remotes' must be a mapping of remote name: settings, "
                   "not %s",
                   ytree_describe(rs));
        return 0;
    }
    if (rs->len > PERSONAS_REMOTES_MAX) {
        diag_error(L->d, rs->line, rs->column,
                   "%u remotes; a registry holds at most %d", (unsigned)rs->len,
                   PERSONAS_REMOTES_MAX);
        return WEFT_ELIMIT;
    }
    r->remotes = weft_calloc(rs->len ? rs->len : 1, sizeof(*r->remotes));
    if (r->remotes == NULL)
        return WEFT_ENOMEM;
    for (uint32_t i = 0; i < rs->len; i++) {
        const struct ytree_node *k = rs->u.items[2 * i];
        const struct ytree_node *v = rs->u.items[2 * i + 1];
        if (!keys_valid_id(k->u.text, k->len)) {
            diag_error(L->d, k->line, k->column,
                       "remote name '%.64s' must be 1-%d characters of "
                       "[A-Za-z0-9_.-]",
                       k->u.text, KEYS_ID_MAX);
            continue;
        }
        if (v->kind != YTREE_MAPPING) {
            diag_error(L->d, v->line, v->column,
                       "remote '%s' must be a mapping with 'breaker', not %s",
                       k->u.text, ytree_describe(v));
            continue;
        }
        struct remote *rm = &r->remotes[r->nremotes];
        if ((rm->name = dup_text(L, k)) == NULL)
            return WEFT_ENOMEM;
        r->nremotes++;
        for (uint32_t j = 0; j < v->len; j++) {
            const struct ytree_node *rk = v->u.items[2 * j];
            if (strcmp(rk->u.text, "breaker") != 0) {
                diag_error(L->d, rk->line, rk->column,
                           "remote '%s': unknown key '%.64s'%s", rm->name,
                           rk->u.text,
                           hint(hb, sizeof(hb),
                                closest(rk->u.text, rk->len, remote_keys, 1)));
                continue;
            }
            snprintf(what, sizeof(what), "remote '%s': 'breaker'", rm->name);
            breaker_parse(v->u.items[2 * j + 1], false, what, L->d,
                          &rm->breaker);
        }
    }
    return 0;
}

static int load_tree(struct loader *L, const struct ytree_node *root,
                     struct personas *r)
{
    static const char *const roots[] = {"personas", "remotes"};
    const struct ytree_node *ps = NULL, *rs = NULL;
    char hb[96];
    size_t n;

    if (root == NULL || root->kind != YTREE_MAPPING) {
        diag_error(L->d, root ? root->line : 1, root ? root->column : 1,
                   "a persona registry is a mapping with the key "
                   "'personas'");
        return WEFT_EINVAL;
    }
    for (uint32_t i = 0; i < 2 * root->len; i += 2) {
        const struct ytree_node *k = root->u.items[i];
        if (strcmp(k->u.text, "personas") == 0) {
            ps = root->u.items[i + 1];
            continue;
        }
        if (strcmp(k->u.text, "remotes") == 0) {
            rs = root->u.items[i + 1];
            continue;
        }
        diag_error(L->d, k->line, k->column, "unknown key '%.64s'%s", k->u.text,
                   hint(hb, sizeof(hb), closest(k->u.text, k->len, roots, 2)));
    }
    if (rs != NULL) {
        int rrc = load_remotes(L, rs, r);
        if (rrc != 0)
            return rrc;
    }
    if (ps == NULL) {
        diag_error(L->d, root->line, root->column, "'personas' is missing");
        return WEFT_EINVAL;
    }
    if (ps->kind == YTREE_SCALAR && ps->type == YTREE_NULL)
        return L->d->errors ? WEFT_EINVAL : 0; /* `personas:`: none */
    if (ps->kind != YTREE_MAPPING) {
        diag_error(L->d, ps->line, ps->column,
                   "'personas' must be a mapping of name: adapter, not %s",
                   ytree_describe(ps));
        return WEFT_EINVAL;
    }
    n = ps->len; /* pairs */
    if (n > PERSONAS_MAX) {
        diag_error(L->d, ps->line, ps->column,
                   "%zu personas; a registry holds at most %d", n,
                   PERSONAS_MAX);
        return WEFT_ELIMIT;
    }
    r->items = weft_calloc(n ? n : 1, sizeof(*r->items));
    if (r->items == NULL)
        return WEFT_ENOMEM;
    for (size_t i = 0; i < n && !L->oom; i++) {
        load_persona(L, &r->items[i], ps->u.items[2 * i],
                     ps->u.items[2 * i + 1]);
        r->n++;
    }
    if (L->oom)
        return WEFT_ENOMEM;
    return L->d->errors ? WEFT_EINVAL : 0;
}

/* Points each entry's public view at its owned fields. */
static int publish(struct personas *r)
{
    static const char *const no_env[] = {NULL};
    for (size_t i = 0; i < r->n; i++) {
        struct entry *e = &r->items[i];
        e->pub.name = e->name;
        e->pub.argv = (const char *const *)e->argv;
        e->pub.env = e->env ? (const char *const *)e->env : no_env;
        e->pub.queue = e->queue ? e->queue : e->name;
    }
    return 0;
}

static int load(const char *src, size_t len, const char *dir, const char *path,
                struct personas **out, struct diag *d)
{
    struct loader L = {.d = d, .dir = dir};
    struct ytree *t = NULL;
    struct personas *r = NULL;
    int rc;

    rc = ytree_parse(src, len, d, &t);
    if (rc != 0)
        return rc;
    r = weft_calloc(1, sizeof(*r));
    if (r == NULL || (r->path = weft_strdup(path)) == NULL) {
        rc = WEFT_ENOMEM;
        goto done;
    }
    rc = load_tree(&L, ytree_root(t), r);
    if (rc == 0 && d->errors > 0)
        rc = WEFT_EINVAL; /* duplicate keys found by the parser */
    if (rc == 0)
        rc = publish(r);
done:
    ytree_free(t);
    if (rc != 0) {
        personas_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int personas_load_buffer(const char *src, size_t len, const char *dir,
                         struct personas **out, struct diag *d)
{
    char cwd[PATH_MAX];
    if (dir == NULL) {
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            diag_error(d, 0, 0, "cannot read the current directory: %s",
                       strerror(errno));
            return WEFT_EIO;
        }
        dir = cwd;
    }
    return load(src, len, dir, "", out, d);
}

/* Reads path whole, refusing more than PERSONAS_FILE_MAX bytes. */
static int read_file(const char *path, char **data, size_t *len, struct diag *d)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;
    int rc = 0;

    if (f == NULL) {
        diag_error(d, 0, 0, "cannot open: %s", strerror(errno));
        return errno == ENOENT ? WEFT_ENOENT : WEFT_EIO;
    }
    buf = weft_malloc(PERSONAS_FILE_MAX + 1);
    if (buf == NULL) {
        rc = WEFT_ENOMEM;
        goto out;
    }
    n = fread(buf, 1, PERSONAS_FILE_MAX + 1, f);
    if (ferror(f)) {
        diag_error(d, 0, 0, "cannot read: %s", strerror(errno));
        rc = WEFT_EIO;
    } else if (n > PERSONAS_FILE_MAX) {
        diag_error(d, 0, 0, "larger than %u bytes", PERSONAS_FILE_MAX);
        rc = WEFT_ELIMIT;
    }
out:
    fclose(f);
    if (rc != 0) {
        weft_free(buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return 0;
}

int personas_load_file(const char *path, struct personas **out, struct diag *d)
{
    char dir[PATH_MAX], abs[PATH_MAX];
    const char *slash = strrchr(path, '/');
    char *data = NULL;
    size_t len = 0;
    int rc;

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    rc = read_file(path, &data, &len, d);
    if (rc != 0)
        return rc;
    if (realpath(dir, abs) == NULL) {
        diag_error(d, 0, 0, "cannot resolve the directory %s: %s", dir,
                   strerror(errno));
        weft_free(data);
        return WEFT_EIO;
    }
    rc = load(data, len, abs, path, out, d);
    weft_free(data);
    return rc;
}

const struct persona *personas_find(const struct personas *r, const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->items[i].name, name) == 0)
            return &r->items[i].pub;
    }
    return NULL;
}

const char *personas_suggest(const struct personas *r, const char *name)
{
    const char *best = NULL;
    size_t wl, best_d;
    if (r == NULL || name == NULL)
        return NULL;
    wl = strlen(name);
    if (wl == 0 || wl > HINT_MAX_WORD)
        return NULL;
    best_d = (wl <= 3 ? 1 : wl <= 6 ? 2 : 3) + 1;
    for (size_t i = 0; i < r->n; i++) {
        const char *c = r->items[i].name;
        size_t d = hint_distance(name, wl, c, strlen(c), best_d - 1);
        if (d < best_d && strcmp(c, name) != 0) {
            best = c;
            best_d = d;
        }
    }
    return best;
}

size_t personas_count(const struct personas *r)
{
    return r != NULL ? r->n : 0;
}

const struct persona *personas_at(const struct personas *r, size_t i)
{
    return r != NULL && i < r->n ? &r->items[i].pub : NULL;
}

const struct breaker_cfg *personas_remote_breaker(const struct personas *r,
                                                  const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < r->nremotes; i++) {
        if (strcmp(r->remotes[i].name, name) == 0)
            return r->remotes[i].breaker.set ? &r->remotes[i].breaker : NULL;
    }
    return NULL;
}

const char *personas_path(const struct personas *r)
{
    return r != NULL ? r->path : "";
}

const char *personas_step_queue(const struct personas *reg,
                                const struct wf_step *s)
{
    if (s->queue)
        return s->queue;
    if (s->type == WF_STEP_PERSONA && s->persona) {
        const struct persona *p = reg ? personas_find(reg, s->persona) : NULL;
        return p ? p->queue : s->persona;
    }
    if (s->type == WF_STEP_GIT)
        return "git";
    return "default";
}
