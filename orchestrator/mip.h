/* The order's own problem as a mixed-integer programme, solved by GLPK's branch and cut: what
 * the solver turns to when its search runs out of budget (big baskets).
 *
 * Columns: a 0/1 per node (used), a 0/1 per (node, line) the node may serve (unsplit lines), the
 * units of a (node, line) where a shared limit (a SKU's ATP over several lines, capacity) may
 * bind or lines split, and a 0/1 per level of promised hours (the slowest shipment reaches it).
 * Rows: each line from at most one node (or at most its quantity when split), a line only from
 * a used node, ATP per (node, SKU) and capacity where they may bind, at most max_shipments
 * nodes, a used node lifts the hours levels up to its own. The objective ranks plans exactly as
 * the contract does up to the order of node ids: units first, then the objective, then fewer
 * shipments; all in integers (costs divided by their greatest common divisor), so that a bound
 * rounded up proves optimality.
 *
 * A pure function of the problem, the seed plan and the budget: the same bytes on any machine. */
#ifndef OMO_MIP_H
#define OMO_MIP_H

#include "solver.h"

typedef struct omo_mip_result {
    bool improved;       /* plan beats the seed; nships, cand and take were written */
    bool proven;         /* the plan (or the seed when not improved) is optimal */
    int64_t units_bound; /* no plan allocates more units */
    int64_t bound;       /* nano: no plan with the plan's units has a smaller objective */
    uint64_t iterations; /* simplex iterations spent */
} omo_mip_result;

/* Solves prob within `budget` units of work (simplex iterations times the square of the
 * model's rows and columns: what an iteration costs), starting from the seed plan (seed_nships
 * shipments, seed_cand[s] into prob->cands, seed_take[s * nlines + l] units; it may be empty).
 * When it finds a better plan it writes it to *nships, cand[] and take[] (room for
 * OMO_PLAN_MAX_SHIP shipments), shipments in any order. Returns false when the problem is out
 * of reach (its numbers too large for exact integers in doubles, or too big for one simplex
 * iteration within the budget); res is then unset. */
bool omo_mip_solve(const omo_problem *prob, int seed_nships, const int *seed_cand,
                   const int64_t *seed_take, uint64_t budget, int *nships, int *cand, int64_t *take,
                   omo_mip_result *res);

#endif
