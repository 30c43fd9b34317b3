/* dag.h - graph algorithms for workflow dependencies.
 *
 * A graph is stored compactly (CSR): the edges leaving vertex v are
 * adj[off[v] .. off[v + 1]), in the order they were given. Every function
 * is iterative, so a 200k-step chain cannot exhaust the C stack, and runs
 * in time linear in vertices plus edges (dag_topo with smallest_first adds
 * a log factor). Vertices are uint32_t indices 0..n-1.
 */
#ifndef WEFT_COMMON_DAG_H
#define WEFT_COMMON_DAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dag_graph {
    uint32_t n;    /* vertices */
    uint32_t *off; /* n + 1 offsets into adj; owned */
    uint32_t *adj; /* edge targets; owned */
    size_t nedges;
};

/* Builds g from the edge list from[i] -> to[i] (i < nedges; every index
 * below n). Edges of each vertex keep their input order. 0, WEFT_ENOMEM,
 * or WEFT_EINVAL for an index out of range; g is unusable on failure but
 * dag_graph_deinit is still safe. */
int dag_graph_init(struct dag_graph *g, uint32_t n, const uint32_t *from,
                   const uint32_t *to, size_t nedges);
void dag_graph_deinit(struct dag_graph *g);

/* Topological order (Kahn): every edge u -> v puts u before v. Vertices
 * that are ready at the same time come in FIFO order (initially by
 * index), or smallest index first when smallest_first. Writes *count
 * vertices to order (room for n); *count < n means the graph has a cycle
 * and order holds only the acyclic part. 0 or WEFT_ENOMEM. */
int dag_topo(const struct dag_graph *g, bool smallest_first, uint32_t *order,
             uint32_t *count);

/* Strongly connected components (Tarjan, iterative): comp[v] (room for n)
 * gets a component number, *ncomp their count. 0 or WEFT_ENOMEM. */
int dag_scc(const struct dag_graph *g, uint32_t *comp, uint32_t *ncomp);

/* A shortest cycle through start inside its component (breadth-first over
 * edges whose ends share comp[start]): path[0] = start, then each next
 * vertex along the edges, *len vertices in all (the closing edge back to
 * start is implied). path has room for n. Returns 0, WEFT_ENOENT when no
 * cycle passes through start, or WEFT_ENOMEM. */
int dag_cycle_path(const struct dag_graph *g, const uint32_t *comp,
                   uint32_t start, uint32_t *path, uint32_t *len);

#endif
