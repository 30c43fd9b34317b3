/* embed.c - build tool: embeds the Lua scripts into a C file.
 *
 * Usage: embed OUT DIR NAME[:p|:f]...
 * Each NAME (in enum script_id order) is DIR/NAME.lua. A plain NAME is a
 * script of its own (EVALSHA), embedded as it is. The others go into one
 * Redis function library, after the shared prelude DIR/lib.lua and the
 * batch loop DIR/epilogue.lua (as apply()): a NAME marked :p is a
 * transition body, `local function main_NAME()`, and the library's
 * function weft_<v>_NAME applies it to every transition of a batch; a
 * NAME marked :f is a function of its own, called with FCALL's keys and
 * args as KEYS and ARGV.
 * Redis runs a library's top level once, at FUNCTION LOAD; a script's
 * whole text ran on every call, and creating the prelude's closures was
 * most of what a finish call cost when its batch was small
 * (docs/protocol.md, "The library"). The library and its functions are
 * named after a hash of their code (<v>, 16 hex digits), so processes of
 * two versions of weft can share a Redis during an upgrade without
 * calling each other's code.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A growing string. */
struct sb {
    char *s;
    size_t len, cap;
};

static void sb_add(struct sb *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (b->s == NULL)
            die("out of memory", NULL);
    }
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

/* FNV-1a, 64 bits: names a version of the library, nothing more. */
static unsigned long long fnv1a(const char *s, size_t len)
{
    unsigned long long h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        die("usage: embed OUT DIR NAME[:p|:f]...", NULL);
    const char *dir = argv[2];
    int n = argc - 3;
    char *kind = calloc((size_t)n, 1); /* 'p', 'f' or 0 */
    struct sb body = {0}, regs = {0};
    char *lib = slurp(dir, "lib"), *epilogue = slurp(dir, "epilogue");
    sb_add(&body, lib);
    sb_add(&body,
           "local function apply(main, keys, args)\nbegin(keys, args)\n");
    sb_add(&body, epilogue);
    sb_add(&body, "end\n");
    FILE *out = fopen(argv[1], "w");
    if (out == NULL || kind == NULL)
        die("cannot write", argv[1]);
    fprintf(out, "/* Generated from common/lua by embed.c: do not edit. */\n"
                 "#include <stddef.h>\n");
    size_t *lens = calloc((size_t)n, sizeof(*lens));
    if (lens == NULL)
        die("out of memory", NULL);
    for (int i = 0; i < n; i++) {
        /* From here on argv[3 + i] is the bare name. */
        char *name = argv[3 + i], *colon = strchr(name, ':');
        if (colon != NULL) {
            if (strcmp(colon, ":p") != 0 && strcmp(colon, ":f") != 0)
                die("unknown mark", colon);
            kind[i] = colon[1];
            *colon = '\0';
        }
        char *text = slurp(dir, name);
        if (kind[i]) {
            sb_add(&body, "local function main_");
            sb_add(&body, name);
            sb_add(&body, kind[i] == 'p' ? "()\n" : "(KEYS, ARGV)\n");
            sb_add(&body, text);
            sb_add(&body, "\nend\n");
        } else {
            fprintf(out, "static const char src_%s[] = {\n", name);
            lens[i] = emit_str(out, text);
            fprintf(out, "0};\n");
        }
        free(text);
    }
    char v[24];
    snprintf(v, sizeof(v), "%016llx", fnv1a(body.s, body.len));
    for (int i = 0; i < n; i++) {
        const char *name = argv[3 + i];
        char line[256];
        if (kind[i] == 'p')
            snprintf(line, sizeof(line),
                     "redis.register_function('weft_%s_%s', "
                     "function(keys, args)\n"
                     "    return apply(main_%s, keys, args)\nend)\n",
                     v, name, name);
        else if (kind[i] == 'f')
            snprintf(line, sizeof(line),
                     "redis.register_function('weft_%s_%s', main_%s)\n", v,
                     name, name);
        else
            continue;
        sb_add(&regs, line);
    }
    fprintf(out, "static const char lib[] = {\n");
    char head[64];
    snprintf(head, sizeof(head), "#!lua name=weft_%s\n", v);
    size_t liblen = emit_str(out, head) + emit_bytes(out, body.s, body.len) +
                    emit_str(out, regs.s ? regs.s : "");
    fprintf(out,
            "0};\nconst char *const scripts_lib = lib;\n"
            "const size_t scripts_lib_len = %zu;\n"
            "const char scripts_lib_name[] = \"weft_%s\";\n"
            "const char *const scripts_src[] = {",
            liblen, v);
    for (int i = 0; i < n; i++)
        fprintf(out, kind[i] ? "NULL, " : "src_%s, ", argv[3 + i]);
    fprintf(out, "};\nconst size_t scripts_len[] = {");
    for (int i = 0; i < n; i++)
        fprintf(out, "%zu, ", lens[i]);
    fprintf(out, "};\nconst char *const scripts_fn[] = {");
    for (int i = 0; i < n; i++)
        if (kind[i])
            fprintf(out, "\"weft_%s_%s\", ", v, argv[3 + i]);
        else
            fprintf(out, "NULL, ");
    fprintf(out, "};\n");
    if (fclose(out) != 0)
        die("cannot write", argv[1]);
    free(lens);
    free(kind);
    free(body.s);
    free(regs.s);
    free(lib);
    free(epilogue);
    return 0;
}
