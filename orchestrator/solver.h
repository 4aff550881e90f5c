/* The exact per-order optimiser: given what each candidate node can give each line, find the
 * plan that allocates the most units, then has the smallest objective, then the fewest
 * shipments, then the smallest sorted list of node ids (contract section 5).
 *
 * It knows nothing of networks or rules: the engine turns an order into a problem. */
#ifndef OMO_SOLVER_H
#define OMO_SOLVER_H

#include "util.h"

/* One node the order may take units from. */
typedef struct omo_cand {
    int node;          /* node index: smaller index = smaller id in byte order */
    int64_t fixed;     /* zone cost + handling cost, micro */
    int64_t hours;     /* handling hours + zone hours, milli */
    int64_t pick;      /* pick cost per unit, micro */
    int64_t capacity;  /* units still allowed today; INT64_MAX when unlimited */
    int64_t *atp;      /* per SKU group: units available to promise (>= 0) */
    unsigned char *ok; /* per line: 1 when the node may serve it */
    /* per SKU group: a cost per unit on top of pick (look-ahead's weight x price, micro, >= 0)
     * that counts in the comparison of plans but not in the objective reported; NULL: none */
    const int64_t *price;
} omo_cand;

typedef struct omo_problem {
    int nlines;
    const int64_t *qty; /* per line */
    const int *group;   /* per line: its SKU group (lines with the same SKU share ATP) */
    int ngroups;
    omo_cand *cands;
    int ncands;
    int64_t hour_cost;     /* micro per hour */
    int64_t split_penalty; /* micro per shipment beyond the first */
    int max_shipments;
    bool split_lines;
    bool partial_deny;
    bool explain; /* also find the runner-up (slower: prunes against it) */
    /* Budgets, in work rather than time so that a decision is the same on any machine (0: the
     * defaults below). The exact search counts a unit per node set position looked at and per
     * line choice tried; past its budget the MIP (mip.h) starts from the best plan found and
     * may spend mip_budget (simplex iterations times the model's size squared). */
    uint64_t budget, mip_budget;
} omo_problem;

/* Never reached by the national benchmark's baskets of up to 10 lines (bench/baskets.sh). */
#define OMO_SEARCH_BUDGET 1000000
#define OMO_MIP_BUDGET    4000000000ULL

#define OMO_PLAN_MAX_SHIP 16
#define OMO_MAX_GROUPS    64 /* SKU groups (and lines) of one order */

/* A chosen plan. take[s * nlines + l]: units of line l from shipment s. Shipments are listed
 * in ascending node index. */
typedef struct omo_plan {
    int64_t units;
    int64_t objective; /* nano: money * 1e9, the unit prices of the units taken included */
    int64_t priced;    /* nano: those prices, so that the real objective is objective - priced */
    int nships;
    int cand[OMO_PLAN_MAX_SHIP]; /* indices into problem->cands */
    int64_t *take;               /* OMO_PLAN_MAX_SHIP * nlines, owned by the solver */
} omo_plan;

typedef struct omo_solver omo_solver;

omo_solver *omo_solver_create(void);
void omo_solver_destroy(omo_solver *sv);

/* Solves prob: among the plans with the most units, the smallest objective plus the candidates'
 * unit prices of the units taken, then the fewest shipments, then the smallest node ids. The
 * returned plan lives in sv until the next call. Counts statistics. */
const omo_plan *omo_solver_solve(omo_solver *sv, const omo_problem *prob);

/* After a solve with explain: the best plan on a node set other than the chosen one's, or NULL
 * when there is none. Lives in sv until the next call. */
const omo_plan *omo_solver_runner_up(const omo_solver *sv);

/* The objective (nano) of shipments with these fixed costs, hours and picked units. */
int64_t omo_objective(const omo_problem *prob, int nships, const int *cands, const int64_t *units);

/* Whether the last solve's plan is proven optimal. When not (its budgets ran out), what is
 * proven: no plan allocates more than *units_bound units, and none with as many units as the
 * plan has an objective below *bound (nano). When proven, they are the plan's own. */
bool omo_solver_proven(const omo_solver *sv, int64_t *units_bound, int64_t *bound);

/* Work spent since creation: search units (returned) and simplex iterations. */
uint64_t omo_solver_work(const omo_solver *sv, uint64_t *mip_iterations);

/* Number of node sets evaluated since creation (for benchmarks). */
uint64_t omo_solver_evaluated(const omo_solver *sv);

#endif
