/* test_dag.c - graph algorithms: CSR building, Kahn, Tarjan, cycle paths. */
#include <criterion/criterion.h>

#include <stdlib.h>

#include "alloc.h"
#include "dag.h"
#include "error.h"

/* A 200k-vertex chain: deep enough that any recursion would overflow. */
#define LONG_CHAIN 200000u

static struct dag_graph make(uint32_t n, const uint32_t (*e)[2], size_t ne)
{
    uint32_t *from = calloc(ne + 1, sizeof(*from));
    uint32_t *to = calloc(ne + 1, sizeof(*to));
    for (size_t i = 0; i < ne; i++) {
        from[i] = e[i][0];
        to[i] = e[i][1];
    }
    struct dag_graph g;
    cr_assert_eq(dag_graph_init(&g, n, from, to, ne), 0);
    free(from);
    free(to);
    return g;
}

Test(dag, init_keeps_edge_order_per_vertex)
{
    static const uint32_t e[][2] = {{0, 2}, {1, 0}, {0, 1}, {0, 3}};
    struct dag_graph g = make(4, e, 4);
    cr_assert_eq(g.off[1] - g.off[0], 3);
    cr_assert_eq(g.adj[g.off[0]], 2);
    cr_assert_eq(g.adj[g.off[0] + 1], 1);
    cr_assert_eq(g.adj[g.off[0] + 2], 3);
    cr_assert_eq(g.adj[g.off[1]], 0);
    dag_graph_deinit(&g);
}

Test(dag, init_rejects_vertex_out_of_range)
{
    uint32_t from[] = {0}, to[] = {5};
    struct dag_graph g;
    cr_assert_eq(dag_graph_init(&g, 3, from, to, 1), WEFT_EINVAL);
    dag_graph_deinit(&g);
}

Test(dag, deinit_twice_is_harmless)
{
    struct dag_graph g;
    cr_assert_eq(dag_graph_init(&g, 0, NULL, NULL, 0), 0);
    dag_graph_deinit(&g);
    dag_graph_deinit(&g);
    dag_graph_deinit(NULL);
}

Test(dag, topo_puts_sources_first_in_fifo_order)
{
    /* 3 -> 1, 2 -> 0: ready at start are 2 and 3 (index order). */
    static const uint32_t e[][2] = {{3, 1}, {2, 0}};
    struct dag_graph g = make(4, e, 2);
    uint32_t order[4], count = 0;
    cr_assert_eq(dag_topo(&g, false, order, &count), 0);
    cr_assert_eq(count, 4);
    cr_assert_eq(order[0], 2);
    cr_assert_eq(order[1], 3);
    cr_assert_eq(order[2], 0);
    cr_assert_eq(order[3], 1);
    dag_graph_deinit(&g);
}

Test(dag, topo_smallest_first_picks_lowest_ready_index)
{
    /* 3 -> 0 and 2 is free: smallest-first gives 1 2 3 0. */
    static const uint32_t e[][2] = {{3, 0}};
    struct dag_graph g = make(4, e, 1);
    uint32_t order[4], count = 0;
    cr_assert_eq(dag_topo(&g, true, order, &count), 0);
    cr_assert_eq(count, 4);
    cr_assert_eq(order[0], 1);
    cr_assert_eq(order[1], 2);
    cr_assert_eq(order[2], 3);
    cr_assert_eq(order[3], 0);
    dag_graph_deinit(&g);
}

Test(dag, topo_stops_short_on_a_cycle)
{
    static const uint32_t e[][2] = {{0, 1}, {1, 2}, {2, 1}, {0, 3}};
    struct dag_graph g = make(4, e, 4);
    uint32_t order[4], count = 0;
    cr_assert_eq(dag_topo(&g, false, order, &count), 0);
    cr_assert_eq(count, 2); /* 0 and 3; 1 and 2 wait for each other */
    dag_graph_deinit(&g);
}

Test(dag, scc_groups_cycle_members)
{
    static const uint32_t e[][2] = {{0, 1}, {1, 2}, {2, 0}, {2, 3}, {4, 4}};
    struct dag_graph g = make(5, e, 5);
    uint32_t comp[5], n = 0;
    cr_assert_eq(dag_scc(&g, comp, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(comp[0], comp[1]);
    cr_assert_eq(comp[1], comp[2]);
    cr_assert_neq(comp[0], comp[3]);
    cr_assert_neq(comp[3], comp[4]);
    dag_graph_deinit(&g);
}

Test(dag, cycle_path_is_shortest_through_start)
{
    /* 0 -> 1 -> 2 -> 3 -> 0 and a shortcut 1 -> 3. */
    static const uint32_t e[][2] = {{0, 1}, {1, 2}, {2, 3}, {3, 0}, {1, 3}};
    struct dag_graph g = make(4, e, 5);
    uint32_t comp[4], n = 0, path[4], len = 0;
    cr_assert_eq(dag_scc(&g, comp, &n), 0);
    cr_assert_eq(dag_cycle_path(&g, comp, 0, path, &len), 0);
    cr_assert_eq(len, 3);
    cr_assert_eq(path[0], 0);
    cr_assert_eq(path[1], 1);
    cr_assert_eq(path[2], 3);
    dag_graph_deinit(&g);
}

Test(dag, cycle_path_of_self_loop_is_one_vertex)
{
    static const uint32_t e[][2] = {{1, 1}};
    struct dag_graph g = make(2, e, 1);
    uint32_t comp[2], n = 0, path[2], len = 0;
    cr_assert_eq(dag_scc(&g, comp, &n), 0);
    cr_assert_eq(dag_cycle_path(&g, comp, 1, path, &len), 0);
    cr_assert_eq(len, 1);
    cr_assert_eq(path[0], 1);
    dag_graph_deinit(&g);
}

Test(dag, cycle_path_reports_enoent_without_cycle)
{
    static const uint32_t e[][2] = {{0, 1}};
    struct dag_graph g = make(2, e, 1);
    uint32_t comp[2], n = 0, path[2], len = 0;
    cr_assert_eq(dag_scc(&g, comp, &n), 0);
    cr_assert_eq(dag_cycle_path(&g, comp, 0, path, &len), WEFT_ENOENT);
    dag_graph_deinit(&g);
}

Test(dag, long_chain_needs_no_recursion)
{
    uint32_t n = LONG_CHAIN;
    uint32_t *from = malloc(n * sizeof(*from)), *to = malloc(n * sizeof(*to));
    for (uint32_t i = 0; i + 1 < n; i++) {
        from[i] = i;
        to[i] = i + 1;
    }
    from[n - 1] = n - 1; /* close the chain into one long cycle */
    to[n - 1] = 0;
    struct dag_graph g;
    cr_assert_eq(dag_graph_init(&g, n, from, to, n), 0);
    uint32_t *comp = malloc(n * sizeof(*comp)), nc = 0;
    uint32_t *path = malloc(n * sizeof(*path)), len = 0;
    cr_assert_eq(dag_scc(&g, comp, &nc), 0);
    cr_assert_eq(nc, 1);
    cr_assert_eq(dag_cycle_path(&g, comp, 0, path, &len), 0);
    cr_assert_eq(len, n);
    uint32_t count = 0;
    cr_assert_eq(dag_topo(&g, false, path, &count), 0);
    cr_assert_eq(count, 0);
    dag_graph_deinit(&g);
    free(from);
    free(to);
    free(comp);
    free(path);
}

Test(dag, empty_graph_has_empty_order)
{
    struct dag_graph g;
    uint32_t order[1], count = 7, comp[1], nc = 7;
    cr_assert_eq(dag_graph_init(&g, 0, NULL, NULL, 0), 0);
    cr_assert_eq(dag_topo(&g, true, order, &count), 0);
    cr_assert_eq(count, 0);
    cr_assert_eq(dag_scc(&g, comp, &nc), 0);
    cr_assert_eq(nc, 0);
    dag_graph_deinit(&g);
}

Test(dag, allocation_failures_are_reported_not_fatal)
{
    static const uint32_t from[] = {0, 1, 2}, to[] = {1, 2, 0};
    for (unsigned long n = 1;; n++) {
        struct dag_graph g;
        uint32_t order[3], count = 0, comp[3], nc = 0, path[3], len = 0;
        weft_alloc_fail_after(n);
        int rc = dag_graph_init(&g, 3, from, to, 3);
        if (rc == 0)
            rc = dag_topo(&g, true, order, &count);
        if (rc == 0)
            rc = dag_scc(&g, comp, &nc);
        if (rc == 0)
            rc = dag_cycle_path(&g, comp, 0, path, &len);
        weft_alloc_fail_reset();
        dag_graph_deinit(&g);
        if (rc == 0) {
            cr_assert_eq(len, 3);
            break;
        }
        cr_assert_eq(rc, WEFT_ENOMEM);
        cr_assert_lt(n, 100);
    }
}
