/* cmd_graph.c - `weft graph FILE [--format dot|mermaid]`: the workflow's
 * DAG as Graphviz DOT (default) or Mermaid flowchart text on stdout.
 *
 * Drawing rules, the same for both formats:
 * - a node per step, labelled with its id and its kind (persona name, git
 *   operation, noop);
 * - a composite step is a cluster holding a header node (a diamond for a
 *   conditional, a fork for a parallel group), its children, and a join
 *   point; edges from a step's dependencies reach the header, edges to
 *   its dependents leave the join, so the picture reads like the run;
 * - a conditional has a "then" and an "else" sub-cluster; the edges from
 *   its diamond into a branch carry the condition ("else" for the other);
 * - a parallel cluster is labelled `ID: parallel (all)` or `(any)`;
 * - a step's own condition labels its incoming edges ("if: ..."), or its
 *   node when nothing leads into it.
 * Output is deterministic: steps in pre-order, edges in dependency order.
 */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "diag.h"
#include "expr.h"

/* The text of a 200k-step graph is tens of MB; past this something is
 * wrong. */
#define GRAPH_OUT_MAX (1024u * 1024 * 1024)

struct gctx {
    const struct wf *wf;
    enum cli_graph_format f;
    struct buf *b;
    int rc; /* first buf error; later writes are skipped */
};

static bool is_composite(const struct wf_step *s)
{
    return s->type == WF_STEP_CONDITIONAL || s->type == WF_STEP_PARALLEL;
}

static bool dot(const struct gctx *g)
{
    return g->f == CLI_GRAPH_DOT;
}

static void put(struct gctx *g, const char *s)
{
    if (g->rc == 0)
        g->rc = buf_append_str(g->b, s);
}

static void putf(struct gctx *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void putf(struct gctx *g, const char *fmt, ...)
{
    if (g->rc != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    g->rc = buf_vprintf(g->b, fmt, ap);
    va_end(ap);
}

static void esc(struct gctx *g, const char *s)
{
    if (g->rc == 0)
        g->rc = dot(g) ? fmt_dot_escape(g->b, s) : fmt_mermaid_escape(g->b, s);
}

static void indent(struct gctx *g, uint32_t level)
{
    for (uint32_t i = 0; i < level; i++)
        put(g, "  ");
}

/* A node's name: the step, or (end) its join point. */
static void ref(struct gctx *g, uint32_t idx, bool end)
{
    const struct wf_step *s = &g->wf->steps[idx];
    if (dot(g))
        putf(g, "\"%s%s\"", s->id, end ? "/end" : "");
    else
        putf(g, "s%u%s", (unsigned)idx, end ? "_end" : "");
}

/* Where edges from dependencies arrive, and where edges to dependents
 * leave. */
static void entry_ref(struct gctx *g, uint32_t idx)
{
    ref(g, idx, false);
}

static void exit_ref(struct gctx *g, uint32_t idx)
{
    ref(g, idx, is_composite(&g->wf->steps[idx]));
}

static const char *cond_text(const struct wf_step *s)
{
    if (s->type == WF_STEP_CONDITIONAL || s->condition == NULL)
        return NULL;
    return expr_source(s->condition);
}

/* The node's label text, unescaped, into lb. */
static int node_label(const struct wf_step *s, struct buf *lb)
{
    int rc = buf_append_str(lb, s->id);
    switch (s->type) {
    case WF_STEP_PERSONA:
        if (rc == 0)
            rc = buf_printf(lb, "\npersona: %s", s->persona ? s->persona : "?");
        break;
    case WF_STEP_GIT:
        if (rc == 0)
            rc = buf_printf(lb, "\ngit %s", wf_git_op_name(s->git_op));
        break;
    case WF_STEP_NOOP:
        if (rc == 0)
            rc = buf_append_str(lb, "\nnoop");
        break;
    case WF_STEP_APPROVAL:
        if (rc == 0)
            rc = buf_append_str(lb, "\napproval");
        break;
    case WF_STEP_CONDITIONAL:
        break;
    case WF_STEP_PARALLEL:
        /* The cluster's label says "parallel (all|any)". */
        break;
    }
    /* A top-level step without dependencies has no incoming edge to
     * carry its condition. */
    const char *c = cond_text(s);
    if (c != NULL && s->parent < 0 && s->ndeps == 0 && rc == 0)
        rc = buf_printf(lb, "\nif: %s", c);
    return rc;
}

static const char *dot_fill(enum wf_step_type t)
{
    switch (t) {
    case WF_STEP_PERSONA:
        return "#dbeafe";
    case WF_STEP_GIT:
        return "#fef3c7";
    case WF_STEP_CONDITIONAL:
        return "#fce7f3";
    case WF_STEP_PARALLEL:
        return "#dcfce7";
    case WF_STEP_APPROVAL:
        return "#ede9fe";
    case WF_STEP_NOOP:
        break;
    }
    return "#f3f4f6";
}

static void emit_node(struct gctx *g, uint32_t idx, uint32_t level)
{
    const struct wf_step *s = &g->wf->steps[idx];
    struct buf lb;
    buf_init(&lb, GRAPH_OUT_MAX);
    int rc = node_label(s, &lb);
    if (rc != 0) {
        if (g->rc == 0)
            g->rc = rc;
        buf_deinit(&lb);
        return;
    }
    indent(g, level);
    ref(g, idx, false);
    if (dot(g)) {
        put(g, " [label=\"");
        esc(g, lb.data);
        put(g, "\"");
        if (s->type == WF_STEP_CONDITIONAL)
            put(g, ", shape=diamond, style=filled");
        else if (s->type == WF_STEP_PARALLEL)
            put(g, ", shape=invtrapezium, style=filled");
        putf(g, ", fillcolor=\"%s\"];\n", dot_fill(s->type));
    } else {
        const char *open = "[\"", *close = "\"]";
        if (s->type == WF_STEP_CONDITIONAL) {
            open = "{\"";
            close = "\"}";
        } else if (s->type == WF_STEP_PARALLEL) {
            open = "[[\"";
            close = "\"]]";
        } else if (s->type == WF_STEP_GIT) {
            open = "[(\"";
            close = "\")]";
        }
        put(g, open);
        esc(g, lb.data);
        put(g, close);
        put(g, "\n");
    }
    buf_deinit(&lb);
}

static void emit_join(struct gctx *g, uint32_t idx, uint32_t level)
{
    indent(g, level);
    ref(g, idx, true);
    if (dot(g))
        put(g, " [shape=point, width=0.08, label=\"\"];\n");
    else
        put(g, "((\" \"))\n");
}

/* Opens a cluster named by the step index and a suffix. */
static void open_cluster(struct gctx *g, uint32_t idx, const char *suffix,
                         const char *label, const char *style, uint32_t level)
{
    const struct wf_step *s = &g->wf->steps[idx];
    indent(g, level);
    if (dot(g)) {
        putf(g, "subgraph \"cluster_%s%s\" {\n", s->id, suffix);
        indent(g, level + 1);
        put(g, "label=\"");
        esc(g, label);
        putf(g, "\";\n");
        indent(g, level + 1);
        putf(g, "style=\"%s\";\n", style);
        indent(g, level + 1);
        put(g, "color=\"#9ca3af\";\n");
    } else {
        putf(g, "subgraph c%u%s[\"", (unsigned)idx,
             suffix[0] ? (suffix[1] == 't' ? "_then" : "_else") : "");
        esc(g, label);
        put(g, "\"]\n");
        indent(g, level + 1);
        put(g, "direction TB\n");
    }
}

static void close_cluster(struct gctx *g, uint32_t level)
{
    indent(g, level);
    put(g, dot(g) ? "}\n" : "end\n");
}

static void emit_list(struct gctx *g, const uint32_t *list, uint32_t n,
                      uint32_t level);

static void emit_step(struct gctx *g, uint32_t idx, uint32_t level)
{
    const struct wf_step *s = &g->wf->steps[idx];
    if (!is_composite(s)) {
        emit_node(g, idx, level);
        return;
    }
    struct buf lb;
    buf_init(&lb, GRAPH_OUT_MAX);
    int rc = s->type == WF_STEP_PARALLEL
                 ? buf_printf(&lb, "%s: parallel (%s)", s->id,
                              wf_wait_for_name(s->wait_for))
                 : buf_printf(&lb, "%s: conditional", s->id);
    if (rc != 0) {
        if (g->rc == 0)
            g->rc = rc;
        buf_deinit(&lb);
        return;
    }
    open_cluster(g, idx, "", lb.data,
                 s->type == WF_STEP_PARALLEL ? "rounded,dashed" : "rounded",
                 level);
    buf_deinit(&lb);
    emit_node(g, idx, level + 1);
    if (s->type == WF_STEP_PARALLEL) {
        emit_list(g, s->children[0], s->nchildren[0], level + 1);
    } else {
        static const char *const names[2] = {"/then", "/else"};
        for (int b = 0; b < 2; b++) {
            if (s->nchildren[b] == 0)
                continue;
            open_cluster(g, idx, names[b], names[b] + 1, "dotted", level + 1);
            emit_list(g, s->children[b], s->nchildren[b], level + 2);
            close_cluster(g, level + 1);
        }
    }
    emit_join(g, idx, level + 1);
    close_cluster(g, level);
}

static void emit_list(struct gctx *g, const uint32_t *list, uint32_t n,
                      uint32_t level)
{
    for (uint32_t i = 0; i < n && g->rc == 0; i++)
        emit_step(g, list[i], level);
}

/* One edge; label (nullable) is unescaped. faint: an edge into a join. */
static void emit_edge(struct gctx *g, bool from_end, uint32_t from, bool to_end,
                      uint32_t to, const char *label, bool faint)
{
    indent(g, 1);
    if (from_end)
        exit_ref(g, from);
    else
        entry_ref(g, from);
    if (dot(g)) {
        put(g, " -> ");
        ref(g, to, to_end);
        if (label != NULL || faint) {
            put(g, " [");
            if (label != NULL) {
                put(g, "label=\"");
                esc(g, label);
                put(g, "\"");
            }
            if (faint)
                putf(g, "%scolor=\"#9ca3af\"", label ? ", " : "");
            put(g, "]");
        }
        put(g, ";\n");
    } else {
        put(g, faint ? " -.->" : " -->");
        if (label != NULL) {
            put(g, "|\"");
            esc(g, label);
            put(g, "\"|");
        }
        put(g, " ");
        ref(g, to, to_end);
        put(g, "\n");
    }
}

/* Label of an edge into step s: the branch label (nullable) and s's own
 * condition, one per line. NULL when both are absent; else points into
 * lb. */
static const char *edge_label(const char *branch, const struct wf_step *s,
                              struct buf *lb, int *rc)
{
    const char *c = cond_text(s);
    buf_reset(lb);
    if (branch == NULL && c == NULL)
        return NULL;
    if (branch != NULL && *rc == 0)
        *rc = buf_append_str(lb, branch);
    if (branch != NULL && c != NULL && *rc == 0)
        *rc = buf_append_char(lb, '\n');
    if (c != NULL && *rc == 0)
        *rc = buf_printf(lb, "if: %s", c);
    return *rc == 0 ? lb->data : NULL;
}

static void emit_edges(struct gctx *g)
{
    const struct wf *wf = g->wf;
    struct buf lb;
    buf_init(&lb, GRAPH_OUT_MAX);
    for (uint32_t i = 0; i < wf->nsteps && g->rc == 0; i++) {
        const struct wf_step *s = &wf->steps[i];
        for (uint32_t d = 0; d < s->ndeps; d++) {
            const char *l = edge_label(NULL, s, &lb, &g->rc);
            emit_edge(g, true, s->deps[d], false, i, l, false);
        }
        if (!is_composite(s))
            continue;
        int nb = s->type == WF_STEP_CONDITIONAL ? 2 : 1;
        for (int b = 0; b < nb; b++) {
            const char *bl = NULL;
            if (s->type == WF_STEP_CONDITIONAL)
                bl = b == 0
                         ? (s->condition ? expr_source(s->condition) : "then")
                         : "else";
            if (s->nchildren[b] == 0) {
                emit_edge(g, false, i, true, i, bl, true);
                continue;
            }
            for (uint32_t k = 0; k < s->nchildren[b]; k++) {
                uint32_t c = s->children[b][k];
                if (wf->steps[c].ndeps == 0) {
                    const char *l = edge_label(bl, &wf->steps[c], &lb, &g->rc);
                    emit_edge(g, false, i, false, c, l, false);
                }
            }
            for (uint32_t k = 0; k < s->nchildren[b]; k++) {
                uint32_t c = s->children[b][k];
                if (wf->steps[c].ndependents == 0)
                    emit_edge(g, true, c, true, i, NULL, true);
            }
        }
    }
    buf_deinit(&lb);
}

int graph_render(const struct wf *wf, enum cli_graph_format f, struct buf *b)
{
    struct gctx g = {wf, f, b, 0};
    if (dot(&g)) {
        put(&g, "digraph \"");
        esc(&g, wf->name);
        put(&g, "\" {\n"
                "  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=11, "
                "labelloc=t, label=\"");
        esc(&g, wf->name);
        if (wf->version != NULL) {
            put(&g, " ");
            esc(&g, wf->version);
        }
        put(&g, "\"];\n"
                "  node [fontname=\"Helvetica\", fontsize=10, shape=box, "
                "style=\"rounded,filled\"];\n"
                "  edge [fontname=\"Helvetica\", fontsize=9];\n");
    } else {
        put(&g, "---\ntitle: \"");
        esc(&g, wf->name);
        put(&g, "\"\n---\nflowchart TD\n");
    }
    emit_list(&g, wf->top, wf->ntop, 1);
    emit_edges(&g);
    if (dot(&g))
        put(&g, "}\n");
    return g.rc;
}

int cmd_graph(const struct cli_opts *o)
{
    struct wf *wf = NULL;
    if (submit_load_workflow(o->args[0], &wf) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    struct buf b;
    buf_init(&b, GRAPH_OUT_MAX);
    int rc = graph_render(wf, o->format, &b);
    wf_free(wf);
    if (rc != 0) {
        cli_error("%s: cannot draw the graph: %s", o->args[0],
                  weft_strerror(rc));
        buf_deinit(&b);
        return CLI_EXIT_FAIL;
    }
    size_t len = b.len;
    size_t n = fwrite(b.data, 1, len, stdout);
    buf_deinit(&b);
    return n == len ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
