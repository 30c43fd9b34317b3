/* dag.c - CSR graphs, Kahn's order, Tarjan's components, cycle paths. */
#include "dag.h"

#include <string.h>

#include "alloc.h"
#include "error.h"

/* Marks a vertex not yet visited (indices are below n <= UINT32_MAX). */
#define DAG_UNSET UINT32_MAX

int dag_graph_init(struct dag_graph *g, uint32_t n, const uint32_t *from,
                   const uint32_t *to, size_t nedges)
{
    memset(g, 0, sizeof(*g));
    g->n = n;
    g->nedges = nedges;
    g->off = weft_calloc((size_t)n + 1, sizeof(*g->off));
    g->adj = weft_malloc((nedges ? nedges : 1) * sizeof(*g->adj));
    if (g->off == NULL || g->adj == NULL)
        return WEFT_ENOMEM;
    for (size_t i = 0; i < nedges; i++) {
        if (from[i] >= n || to[i] >= n)
            return WEFT_EINVAL;
        g->off[from[i] + 1]++;
    }
    for (uint32_t v = 0; v < n; v++)
        g->off[v + 1] += g->off[v];
    /* Counting sort; a cursor per vertex keeps the input order. */
    uint32_t *cur = weft_malloc(((size_t)n ? n : 1) * sizeof(*cur));
    if (cur == NULL)
        return WEFT_ENOMEM;
    memcpy(cur, g->off, (size_t)n * sizeof(*cur));
    for (size_t i = 0; i < nedges; i++)
        g->adj[cur[from[i]]++] = to[i];
    weft_free(cur);
    return 0;
}

void dag_graph_deinit(struct dag_graph *g)
{
    if (g == NULL)
        return;
    weft_free(g->off);
    weft_free(g->adj);
    memset(g, 0, sizeof(*g));
}

/* Binary min-heap of vertex indices. */
static void heap_push(uint32_t *h, uint32_t *n, uint32_t v)
{
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h[p] <= v)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint32_t heap_pop(uint32_t *h, uint32_t *n)
{
    uint32_t top = h[0], last = h[--(*n)], i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] < h[c])
            c++;
        if (last <= h[c])
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

int dag_topo(const struct dag_graph *g, bool smallest_first, uint32_t *order,
             uint32_t *count)
{
    uint32_t n = g->n;
    uint32_t *indeg = weft_calloc(n ? n : 1, sizeof(*indeg));
    uint32_t *ready = weft_malloc((n ? n : 1) * sizeof(*ready));
    int rc = 0;
    if (indeg == NULL || ready == NULL) {
        rc = WEFT_ENOMEM;
        goto cleanup;
    }
    for (size_t e = 0; e < g->nedges; e++)
        indeg[g->adj[e]]++;
    /* FIFO: ready[head..tail); heap: ready[0..hn). */
    uint32_t head = 0, tail = 0, hn = 0, out = 0;
    for (uint32_t v = 0; v < n; v++) {
        if (indeg[v] == 0) {
            if (smallest_first)
                heap_push(ready, &hn, v);
            else
                ready[tail++] = v;
        }
    }
    while (smallest_first ? hn > 0 : head < tail) {
        uint32_t v = smallest_first ? heap_pop(ready, &hn) : ready[head++];
        order[out++] = v;
        for (uint32_t e = g->off[v]; e < g->off[v + 1]; e++) {
            uint32_t w = g->adj[e];
            if (--indeg[w] == 0) {
                if (smallest_first)
                    heap_push(ready, &hn, w);
                else
                    ready[tail++] = w;
            }
        }
    }
    *count = out;
cleanup:
    weft_free(indeg);
    weft_free(ready);
    return rc;
}

int dag_scc(const struct dag_graph *g, uint32_t *comp, uint32_t *ncomp)
{
    uint32_t n = g->n, nc = 0, counter = 0, sp = 0, cp = 0;
    size_t sz = n ? n : 1;
    uint32_t *index = weft_malloc(sz * sizeof(*index));
    uint32_t *low = weft_malloc(sz * sizeof(*low));
    uint32_t *stack = weft_malloc(sz * sizeof(*stack));
    uint32_t *call = weft_malloc(sz * sizeof(*call)); /* DFS vertices */
    uint32_t *edge = weft_malloc(sz * sizeof(*edge)); /* next edge */
    unsigned char *on = weft_calloc(sz, 1);
    int rc = 0;
    if (!index || !low || !stack || !call || !edge || !on) {
        rc = WEFT_ENOMEM;
        goto cleanup;
    }
    for (uint32_t v = 0; v < n; v++)
        index[v] = DAG_UNSET;
    for (uint32_t root = 0; root < n; root++) {
        if (index[root] != DAG_UNSET)
            continue;
        call[cp] = root;
        edge[cp++] = g->off[root];
        index[root] = low[root] = counter++;
        stack[sp++] = root;
        on[root] = 1;
        while (cp > 0) {
            uint32_t v = call[cp - 1];
            if (edge[cp - 1] < g->off[v + 1]) {
                uint32_t w = g->adj[edge[cp - 1]++];
                if (index[w] == DAG_UNSET) {
                    index[w] = low[w] = counter++;
                    stack[sp++] = w;
                    on[w] = 1;
                    call[cp] = w;
                    edge[cp++] = g->off[w];
                } else if (on[w] && index[w] < low[v]) {
                    low[v] = index[w];
                }
                continue;
            }
            /* All edges of v done: close its component if it is a root. */
            if (low[v] == index[v]) {
                uint32_t w;
                do {
                    w = stack[--sp];
                    on[w] = 0;
                    comp[w] = nc;
                } while (w != v);
                nc++;
            }
            cp--;
            if (cp > 0) {
                uint32_t u = call[cp - 1];
                if (low[v] < low[u])
                    low[u] = low[v];
            }
        }
    }
    *ncomp = nc;
cleanup:
    weft_free(index);
    weft_free(low);
    weft_free(stack);
    weft_free(call);
    weft_free(edge);
    weft_free(on);
    return rc;
}

int dag_cycle_path(const struct dag_graph *g, const uint32_t *comp,
                   uint32_t start, uint32_t *path, uint32_t *len)
{
    uint32_t n = g->n;
    size_t sz = n ? n : 1;
    uint32_t *prev = weft_malloc(sz * sizeof(*prev));
    uint32_t *queue = weft_malloc(sz * sizeof(*queue));
    int rc = WEFT_ENOENT;
    if (prev == NULL || queue == NULL) {
        rc = WEFT_ENOMEM;
        goto cleanup;
    }
    for (uint32_t v = 0; v < n; v++)
        prev[v] = DAG_UNSET;
    uint32_t head = 0, tail = 0, last = DAG_UNSET;
    queue[tail++] = start;
    prev[start] = start;
    while (head < tail && last == DAG_UNSET) {
        uint32_t v = queue[head++];
        for (uint32_t e = g->off[v]; e < g->off[v + 1]; e++) {
            uint32_t w = g->adj[e];
            if (comp[w] != comp[start])
                continue;
            if (w == start) {
                last = v;
                break;
            }
            if (prev[w] == DAG_UNSET) {
                prev[w] = v;
                queue[tail++] = w;
            }
        }
    }
    if (last == DAG_UNSET)
        goto cleanup;
    /* Walk back from the vertex that closes the cycle, then reverse. */
    uint32_t k = 0;
    for (uint32_t v = last; v != start; v = prev[v])
        path[k++] = v;
    path[k++] = start;
    for (uint32_t i = 0; i < k / 2; i++) {
        uint32_t t = path[i];
        path[i] = path[k - 1 - i];
        path[k - 1 - i] = t;
    }
    *len = k;
    rc = 0;
cleanup:
    weft_free(prev);
    weft_free(queue);
    return rc;
}
