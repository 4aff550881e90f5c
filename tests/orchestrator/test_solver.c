/* The solver on hand-made problems whose optimum is known. */
#include "solver.h"

#include <criterion/criterion.h>
#include <string.h>

#define M(x) ((int64_t)((x)*1000000)) /* money, micro */
#define H(x) ((int64_t)((x)*1000))    /* hours, milli */

typedef struct fixture {
    omo_cand cands[8];
    int64_t atp[8][4];
    unsigned char ok[8][4];
    int64_t qty[4];
    int group[4];
    omo_problem prob;
} fixture;

static omo_solver *sv;

static void setup(void)
{
    sv = omo_solver_create();
}

static void teardown(void)
{
    omo_solver_destroy(sv);
}

TestSuite(solver, .init = setup, .fini = teardown);

/* n candidates, L lines with one SKU each; every node may serve every line. */
static void init(fixture *f, int n, int L)
{
    memset(f, 0, sizeof *f);
    for (int c = 0; c < n; c++) {
        f->cands[c] = (omo_cand){.node = c,
                                 .fixed = M(5),
                                 .hours = H(24),
                                 .pick = M(0.5),
                                 .capacity = INT64_MAX,
                                 .atp = f->atp[c],
                                 .ok = f->ok[c]};
        for (int l = 0; l < L; l++)
            f->ok[c][l] = 1;
    }
    for (int l = 0; l < L; l++)
        f->group[l] = l;
    f->prob = (omo_problem){.nlines = L,
                            .qty = f->qty,
                            .group = f->group,
                            .ngroups = L,
                            .cands = f->cands,
                            .ncands = n,
                            .hour_cost = M(0.1),
                            .split_penalty = M(3),
                            .max_shipments = 3};
}

static int node_of(const fixture *f, const omo_plan *p, int s)
{
    return f->cands[p->cand[s]].node;
}

Test(solver, most_units_first_then_cheapest)
{
    fixture f;
    init(&f, 2, 1);
    f.qty[0] = 3;
    f.atp[0][0] = 2; /* node 0: cheap but only 2 */
    f.atp[1][0] = 3; /* node 1: dearer, all 3 */
    f.cands[1].fixed = M(20);
    const omo_plan *p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(p->units, 3);
    cr_assert_eq(p->nships, 1);
    cr_assert_eq(node_of(&f, p, 0), 1);
    /* 20 + 3 * 0.5 + 0.1 * 24 = 23.9 */
    cr_assert_eq(p->objective, 23900000000LL);
}

Test(solver, ties_go_to_fewer_shipments_then_smaller_node_ids)
{
    fixture f;
    init(&f, 3, 1);
    f.qty[0] = 1;
    f.atp[0][0] = f.atp[1][0] = f.atp[2][0] = 1;
    const omo_plan *p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(node_of(&f, p, 0), 0, "equal plans: the smallest node id");
    f.cands[0].node = 7;
    p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(node_of(&f, p, 0), 1);
}

Test(solver, a_split_wins_when_two_near_nodes_beat_one_far)
{
    fixture f;
    init(&f, 3, 2);
    f.qty[0] = f.qty[1] = 1;
    f.atp[0][0] = 1; /* near, line 0 only */
    f.atp[1][1] = 1; /* near, line 1 only */
    f.atp[2][0] = f.atp[2][1] = 1;
    f.cands[2].fixed = M(10);
    f.cands[2].hours = H(120);
    /* split: 5 + 5 + 1 + 2.4 + 3 = 16.4; far single: 10 + 1 + 12 = 23 */
    const omo_plan *p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(p->nships, 2);
    cr_assert_eq(p->objective, 16400000000LL);
    f.prob.max_shipments = 1;
    p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(p->nships, 1);
    cr_assert_eq(node_of(&f, p, 0), 2);
}

Test(solver, split_lines_take_one_line_from_several_nodes)
{
    fixture f;
    init(&f, 2, 1);
    f.qty[0] = 5;
    f.atp[0][0] = 3;
    f.atp[1][0] = 3;
    const omo_plan *p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(p->units, 3, "without split_lines one node gives what it has");
    f.prob.split_lines = true;
    p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(p->units, 5);
    cr_assert_eq(p->nships, 2);
    cr_assert_eq(p->take[0] + p->take[1], 5);
}

Test(solver, capacity_binds_across_lines_of_one_node)
{
    fixture f;
    init(&f, 2, 2);
    f.qty[0] = f.qty[1] = 2;
    f.atp[0][0] = f.atp[0][1] = 2;
    f.cands[0].capacity = 3; /* node 0 may ship 3 of the 4 units today */
    f.atp[1][1] = 2;
    f.cands[1].fixed = M(6);
    const omo_plan *p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(p->units, 4, "line 1 moves to node 1 so that every unit goes");
    cr_assert_eq(p->nships, 2);
}

Test(solver, partial_deny_is_all_or_nothing)
{
    fixture f;
    init(&f, 1, 2);
    f.qty[0] = f.qty[1] = 1;
    f.atp[0][0] = 1;
    f.prob.partial_deny = true;
    const omo_plan *p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(p->units, 0);
    cr_assert_eq(p->nships, 0);
    f.prob.partial_deny = false;
    p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(p->units, 1);
}

Test(solver, lines_of_one_sku_share_its_atp)
{
    fixture f;
    init(&f, 1, 2);
    f.qty[0] = f.qty[1] = 2;
    f.group[1] = 0; /* both lines are the same SKU */
    f.prob.ngroups = 1;
    f.atp[0][0] = 3;
    const omo_plan *p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(p->units, 3);
}

Test(solver, the_runner_up_is_the_best_plan_on_other_nodes)
{
    fixture f;
    init(&f, 3, 1);
    f.qty[0] = 1;
    f.atp[0][0] = f.atp[1][0] = f.atp[2][0] = 1;
    f.cands[1].fixed = M(6);
    f.cands[2].fixed = M(7);
    f.prob.explain = true;
    const omo_plan *p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(node_of(&f, p, 0), 0);
    const omo_plan *r = omo_solver_runner_up(sv);
    cr_assert_not_null(r);
    cr_assert_eq(node_of(&f, r, 0), 1);
    cr_assert_eq(r->objective - p->objective, 1000000000LL);
}

Test(solver, ineligible_lines_are_not_taken)
{
    fixture f;
    init(&f, 2, 1);
    f.qty[0] = 1;
    f.atp[0][0] = f.atp[1][0] = 1;
    f.ok[0][0] = 0; /* a rule keeps node 0 from the line */
    f.cands[1].fixed = M(50);
    const omo_plan *p = omo_solver_solve(sv, &f.prob);
    cr_assert_eq(node_of(&f, p, 0), 1);
}
