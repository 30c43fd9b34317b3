/* embed.c - build tool: embeds the Lua scripts into a C file.
 *
 * Usage: embed OUT DIR NAME[:p]...
 * Each NAME (in enum script_id order) is DIR/NAME.lua, and becomes a byte
 * array in OUT. A NAME marked :p is a transition body: it is wrapped as
 * `local function main() ... end` after the prelude DIR/lib.lua and
 * before DIR/epilogue.lua, which applies it to each transition of a
 * batch.
 *
 * Redis runs a script's whole text on every call, so each script gets
 * only the part of the prelude it uses: lib.lua is cut into top-level
 * declarations (a line starting "local " begins one; it runs to the
 * next), and a declaration is kept when a name it declares appears in the
 * body, the epilogue or another kept declaration. Names are matched as
 * words, so a name in a comment or a string can only keep a declaration
 * that is not needed; order is kept, so Lua's scoping is unchanged.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECLS_MAX 256
#define NAMES_MAX 8

struct decl {
    const char *text;
    size_t len;
    char *names[NAMES_MAX];
    int nnames;
    bool kept;
};

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "embed: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
    exit(1);
}

static char *slurp(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.lua", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        die("cannot open", path);
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    size_t n;
    while (s != NULL && (n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap)
            s = realloc(s, cap *= 2);
    }
    if (s == NULL || ferror(f))
        die("cannot read", path);
    fclose(f);
    s[len] = '\0';
    return s;
}

static bool ident_start(int c)
{
    return isalpha(c) || c == '_';
}

static bool ident_char(int c)
{
    return isalnum(c) || c == '_';
}

/* Whether the word w[0..n) occurs in text[0..len) as a whole word,
 * outside "--" comments. */
static bool uses(const char *text, size_t len, const char *w, size_t n)
{
    size_t i = 0;
    while (i < len) {
        if (text[i] == '-' && i + 1 < len && text[i + 1] == '-') {
            while (i < len && text[i] != '\n')
                i++;
        } else if (ident_start((unsigned char)text[i])) {
            size_t j = i;
            while (j < len && ident_char((unsigned char)text[j]))
                j++;
            if (j - i == n && memcmp(text + i, w, n) == 0)
                return true;
            i = j;
        } else {
            i++;
        }
    }
    return false;
}

/* The names a declaration's first line declares: `local function f`, or
 * `local a, b, c` up to "=" or the end of the line. */
static void declared_names(struct decl *d)
{
    const char *p = d->text + strlen("local ");
    if (strncmp(p, "function ", 9) == 0)
        p += 9;
    while (*p != '\0' && *p != '\n' && *p != '=') {
        if (ident_start((unsigned char)*p)) {
            const char *q = p;
            while (ident_char((unsigned char)*q))
                q++;
            if (d->nnames == NAMES_MAX)
                die("too many names in one declaration", NULL);
            d->names[d->nnames++] = strndup(p, (size_t)(q - p));
            p = q;
        } else if (*p == '(') {
            break; /* a function's parameters */
        } else {
            p++;
        }
    }
}

/* Cuts the prelude into declarations; returns their count. Text before
 * the first one (the header comment) is dropped. */
static int split(const char *lib, struct decl *d)
{
    int n = 0;
    for (const char *p = lib; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        const char *next = eol ? eol + 1 : p + strlen(p);
        if (strncmp(p, "local ", 6) == 0) {
            if (n == DECLS_MAX)
                die("too many declarations in lib.lua", NULL);
            memset(&d[n], 0, sizeof(d[n]));
            d[n].text = p;
            declared_names(&d[n]);
            n++;
        }
        if (n > 0)
            d[n - 1].len = (size_t)(next - d[n - 1].text);
        p = next;
    }
    return n;
}

/* Marks the declarations `text` needs, and theirs, as kept. */
static void keep_used(struct decl *d, int n, const char *text, size_t len)
{
    for (int i = 0; i < n; i++) {
        if (d[i].kept)
            continue;
        for (int k = 0; k < d[i].nnames; k++) {
            if (uses(text, len, d[i].names[k], strlen(d[i].names[k]))) {
                d[i].kept = true;
                keep_used(d, n, d[i].text, d[i].len);
                break;
            }
        }
    }
}

/* Writes s[0..len) as array elements; returns len. */
static size_t emit_bytes(FILE *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fprintf(out, "%d,%s", (unsigned char)s[i], i % 24 == 23 ? "\n" : "");
    return len;
}

static size_t emit_str(FILE *out, const char *s)
{
    return emit_bytes(out, s, strlen(s));
}

int main(int argc, char **argv)
{
    if (argc < 4)
        die("usage: embed OUT DIR NAME[:p]...", NULL);
    const char *dir = argv[2];
    char *lib = slurp(dir, "lib");
    char *epilogue = slurp(dir, "epilogue");
    static struct decl decls[DECLS_MAX];
    int ndecls = split(lib, decls);
    FILE *out = fopen(argv[1], "w");
    if (out == NULL)
        die("cannot write", argv[1]);
    fprintf(out, "/* Generated from common/lua by embed.c: do not edit. */\n"
                 "#include <stddef.h>\n");
    size_t *lens = calloc((size_t)argc, sizeof(*lens));
    for (int a = 3; a < argc; a++) {
        /* From here on argv[a] is the bare name. */
        const char *name = argv[a];
        char *colon = strchr(argv[a], ':');
        bool preluded = colon != NULL && strcmp(colon, ":p") == 0;
        if (colon != NULL)
            *colon = '\0';
        char *body = slurp(dir, name);
        fprintf(out, "static const char src_%s[] = {\n", name);
        if (preluded) {
            for (int i = 0; i < ndecls; i++)
                decls[i].kept = false;
            keep_used(decls, ndecls, body, strlen(body));
            keep_used(decls, ndecls, epilogue, strlen(epilogue));
            for (int i = 0; i < ndecls; i++)
                if (decls[i].kept)
                    lens[a] += emit_bytes(out, decls[i].text, decls[i].len);
            lens[a] += emit_str(out, "local function main()\n");
            lens[a] += emit_str(out, body);
            lens[a] += emit_str(out, "\nend\n");
            lens[a] += emit_str(out, epilogue);
        } else {
            lens[a] = emit_str(out, body);
        }
        fprintf(out, "0};\n");
        free(body);
    }
    fprintf(out, "const char *const scripts_src[] = {");
    for (int a = 3; a < argc; a++)
        fprintf(out, "src_%s, ", argv[a]);
    fprintf(out, "};\nconst size_t scripts_len[] = {");
    for (int a = 3; a < argc; a++)
        fprintf(out, "%zu, ", lens[a]);
    fprintf(out, "};\n");
    if (fclose(out) != 0)
        die("cannot write", argv[1]);
    for (int i = 0; i < ndecls; i++)
        for (int k = 0; k < decls[i].nnames; k++)
            free(decls[i].names[k]);
    free(lens);
    free(lib);
    free(epilogue);
    return 0;
}
