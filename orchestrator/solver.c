/* Exact branch and bound over node sets.
 *
 * Sets are searched by size (1, 2, ... max_shipments). Within a size, candidates are sorted by
 * fixed cost, so adding a later candidate never costs less than adding an earlier one: once a
 * candidate's lower bound exceeds the incumbent, every later one does too and the loop stops.
 * A set is only kept when every node in it contributes units; a plan that leaves a node idle
 * is the plan of a smaller set, which was searched before. Given a set whose nodes are all used,
 * fixed costs, split penalty and the slowest shipment are constants, so the set's best plan is
 * the one with the most units and then the cheapest picking: an independent choice per line
 * when no shared limit binds, an exact enumeration of line assignments when one does, and a
 * min-cost max-flow when lines may be split.
 *
 * Look-ahead prices are a cost per unit of a SKU group at a candidate, on top of its pick cost:
 * they enter wherever the cheapest picking is chosen, and since they are never negative, every
 * bound below that counts pick costs only stays a lower bound. */
#include "solver.h"

#include "mip.h"

#include <stdlib.h>
#include <string.h>

/* From this many lines and candidates on, dominated candidates are left out before the search. */
#define DOMINANCE_LINES 11
#define DOMINANCE_CANDS 64

typedef struct slot {
    bool have;
    omo_plan plan;
    int nodes[OMO_PLAN_MAX_SHIP]; /* sorted node indices */
    int64_t *take;
} slot;

struct omo_solver {
    const omo_problem *prob;
    int n, L;
    int *ord;         /* sorted candidate positions -> cand index */
    int64_t *avail;   /* [pos * L + l] */
    int64_t *sufmax;  /* [pos * L + l]: max avail over positions >= pos */
    int64_t *minhsuf; /* [pos]: min hours over positions >= pos */
    size_t cap_n, cap_nl;
    int64_t total;   /* units ordered */
    int64_t need;    /* partial deny: total; else 0 */
    int64_t minpick; /* micro */

    /* the search */
    int k;
    int set[OMO_PLAN_MAX_SHIP];        /* positions */
    int64_t *cover;                    /* [depth * L + l] coverage bound after depth nodes */
    int64_t *top;                      /* [pos * OMO_PLAN_MAX_SHIP + t]: see fill_top */
    uint64_t work;                     /* positions looked at and line choices tried, this solve */
    uint64_t limit;                    /* the budget of work: beyond it the search stops */
    uint64_t searched, mip_iterations; /* since creation */
    bool proven;                       /* the last solve's plan is optimal */
    int kdone;                         /* node sets of up to this many were all searched */
    bool reduced;                      /* dominated candidates are left out */
    int *fh_start, *fh_list;           /* see fill_full_holders */
    int kmax;
    omo_cand *sub; /* the candidates handed to the MIP */
    size_t cap_sub;
    int64_t units_bound, bound; /* else what is proven of the optimum */

    /* the incumbent, and with explain the runner-up: the best plan on another node set */
    slot slots[2];
    bool explain;
    size_t cap_take;

    /* scratch for evaluating one set */
    int64_t *take;  /* [s * L + l] */
    int64_t *ltake; /* per line, in the enumeration */
    int *assign, *best_assign;
    size_t cap_l;
    uint64_t evaluated;
};

omo_solver *omo_solver_create(void)
{
    return omo_xcalloc(1, sizeof(omo_solver));
}

void omo_solver_destroy(omo_solver *sv)
{
    if (!sv)
        return;
    free(sv->ord);
    free(sv->avail);
    free(sv->sufmax);
    free(sv->minhsuf);
    free(sv->cover);
    free(sv->sub);
    free(sv->fh_start);
    free(sv->fh_list);
    free(sv->top);
    free(sv->slots[0].take);
    free(sv->slots[1].take);
    free(sv->take);
    free(sv->ltake);
    free(sv->assign);
    free(sv->best_assign);
    free(sv);
}

uint64_t omo_solver_evaluated(const omo_solver *sv)
{
    return sv->evaluated;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* What a unit of line l costs at candidate c beyond the shipment's fixed cost, micro. */
static int64_t unit_cost(const omo_problem *p, const omo_cand *c, int l)
{
    return c->pick + (c->price ? c->price[p->group[l]] : 0);
}

int64_t omo_objective(const omo_problem *prob, int nships, const int *cands, const int64_t *units)
{
    if (nships == 0)
        return 0;
    int64_t obj = 0, hours = 0;
    for (int s = 0; s < nships; s++) {
        const omo_cand *c = &prob->cands[cands[s]];
        obj += c->fixed * 1000 + units[s] * c->pick * 1000;
        hours = max64(hours, c->hours);
    }
    return obj + prob->hour_cost * hours + prob->split_penalty * 1000 * (nships - 1);
}

static _Thread_local const omo_solver *sort_ctx; /* for qsort: solvers run side by side */

static int cmp_pos(const void *a, const void *b)
{
    const omo_cand *ca = &sort_ctx->prob->cands[*(const int *)a];
    const omo_cand *cb = &sort_ctx->prob->cands[*(const int *)b];
    if (ca->fixed != cb->fixed)
        return ca->fixed < cb->fixed ? -1 : 1;
    return ca->node - cb->node;
}

/* True when the plan (units, obj, nships, sorted nodes) beats the one in slot sl. */
static bool better(const slot *sl, int64_t units, int64_t obj, int nships, const int *nodes)
{
    if (!sl->have)
        return true;
    if (units != sl->plan.units)
        return units > sl->plan.units;
    if (obj != sl->plan.objective)
        return obj < sl->plan.objective;
    if (nships != sl->plan.nships)
        return nships < sl->plan.nships;
    for (int i = 0; i < nships; i++)
        if (nodes[i] != sl->nodes[i])
            return nodes[i] < sl->nodes[i];
    return false;
}

static bool same_nodes(const slot *sl, int nships, const int *nodes)
{
    if (!sl->have || sl->plan.nships != nships)
        return false;
    for (int i = 0; i < nships; i++)
        if (nodes[i] != sl->nodes[i])
            return false;
    return true;
}

/* The plan bounds are checked against: the incumbent, or with explain the runner-up (NULL while
 * there is none, so nothing is pruned by cost). */
static const slot *bound_slot(const omo_solver *sv)
{
    if (!sv->explain)
        return sv->slots[0].have ? &sv->slots[0] : NULL;
    return sv->slots[1].have ? &sv->slots[1] : NULL;
}

static void store_slot(omo_solver *sv, slot *sl, int64_t units, int64_t obj, int64_t priced, int k,
                       const int *cands, const int *nodes, const int *order)
{
    int L = sv->L;
    sl->have = true;
    sl->plan.units = units;
    sl->plan.objective = obj;
    sl->plan.priced = priced;
    sl->plan.nships = k;
    for (int s = 0; s < k; s++) {
        sl->plan.cand[s] = cands[order[s]];
        sl->nodes[s] = nodes[s];
        memcpy(sl->take + (size_t)s * L, sv->take + (size_t)order[s] * L,
               sizeof(int64_t) * (size_t)L);
    }
}

static void copy_slot(omo_solver *sv, slot *dst, const slot *src)
{
    int64_t *take = dst->take;
    *dst = *src;
    dst->take = take;
    memcpy(dst->take, src->take, sizeof(int64_t) * (size_t)sv->L * (size_t)src->plan.nships);
}

/* Offers the plan in sv->take over the k nodes of sv->set. */
static void offer(omo_solver *sv, int k)
{
    const omo_problem *p = sv->prob;
    int L = sv->L;
    int64_t units = 0, priced = 0, per[OMO_PLAN_MAX_SHIP] = {0};
    int cands[OMO_PLAN_MAX_SHIP] = {0};
    for (int s = 0; s < k; s++) {
        per[s] = 0;
        cands[s] = sv->ord[sv->set[s]];
        const omo_cand *c = &p->cands[cands[s]];
        for (int l = 0; l < L; l++) {
            per[s] += sv->take[s * L + l];
            if (c->price)
                priced += sv->take[s * L + l] * c->price[p->group[l]] * 1000;
        }
        if (per[s] == 0)
            return; /* a smaller set's plan */
        units += per[s];
    }
    if (units < sv->need)
        return;
    int64_t obj = omo_objective(p, k, cands, per) + priced;
    /* Shipments are reported in ascending node index. */
    int order[OMO_PLAN_MAX_SHIP], nodes[OMO_PLAN_MAX_SHIP];
    for (int s = 0; s < k; s++)
        order[s] = s;
    for (int i = 1; i < k; i++)
        for (int j = i;
             j > 0 && p->cands[cands[order[j]]].node < p->cands[cands[order[j - 1]]].node; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int s = 0; s < k; s++)
        nodes[s] = p->cands[cands[order[s]]].node;
    slot *best = &sv->slots[0], *runner = &sv->slots[1];
    if (better(best, units, obj, k, nodes)) {
        if (sv->explain && best->have && !same_nodes(best, k, nodes))
            copy_slot(sv, runner, best);
        store_slot(sv, best, units, obj, priced, k, cands, nodes, order);
    } else if (sv->explain && !same_nodes(best, k, nodes) && better(runner, units, obj, k, nodes)) {
        store_slot(sv, runner, units, obj, priced, k, cands, nodes, order);
    }
}

/* Units a single node gives the lines assigned to it: filled in line order, or with prices
 * cheapest unit first (line order among equals), which is the cheapest way to the most units
 * when the node's capacity binds. */
static void fill_node(omo_solver *sv, int s, const int *assign)
{
    const omo_problem *p = sv->prob;
    const omo_cand *c = &p->cands[sv->ord[sv->set[s]]];
    int L = sv->L;
    int64_t cap = c->capacity;
    int64_t gleft[64];
    int64_t *gl = p->ngroups <= 64 ? gleft : omo_xmalloc(sizeof(int64_t) * (size_t)p->ngroups);
    for (int g = 0; g < p->ngroups; g++)
        gl[g] = c->atp[g];
    int byline[OMO_MAX_GROUPS];
    int *lines = L <= OMO_MAX_GROUPS ? byline : omo_xmalloc(sizeof(int) * (size_t)L);
    for (int l = 0; l < L; l++) {
        int j = l;
        for (; c->price && j > 0 && c->price[p->group[lines[j - 1]]] > c->price[p->group[l]]; j--)
            lines[j] = lines[j - 1];
        lines[j] = l;
    }
    for (int i = 0; i < L; i++) {
        int l = lines[i];
        int64_t t = 0;
        if (assign[l] == s && c->ok[l]) {
            t = min64(min64(p->qty[l], gl[p->group[l]]), cap);
            gl[p->group[l]] -= t;
            cap -= t;
        }
        sv->take[s * L + l] = t;
    }
    if (lines != byline)
        free(lines);
    if (gl != gleft)
        free(gl);
}

static void eval_assignment(omo_solver *sv, int k, const int *assign)
{
    for (int s = 0; s < k; s++)
        fill_node(sv, s, assign);
}

/* Exact search of line -> node assignments when a shared limit binds: depth first over lines,
 * each line taking all it can at the node chosen (which loses nothing: a node's units are the
 * same whatever order its lines are filled in), pruned by the units and picking cost the
 * remaining lines could at best add. With prices, which lines a binding capacity leaves short
 * changes the cost: then (refill) capacity is applied only at the leaf, by fill_node, and the
 * search prunes by units alone. */
typedef struct line_search {
    int k, L, G;
    int64_t rem_atp[OMO_PLAN_MAX_SHIP][OMO_MAX_GROUPS];
    int64_t rem_cap[OMO_PLAN_MAX_SHIP];
    int used[OMO_PLAN_MAX_SHIP];
    const omo_cand *cand[OMO_PLAN_MAX_SHIP];
    bool refill;
    int64_t load[OMO_PLAN_MAX_SHIP];          /* units taken at each node, capacity aside */
    int64_t suffix_units[OMO_MAX_GROUPS + 1]; /* the most the lines from l on can add */
    int64_t min_pick;
    int64_t units, cost;
    bool found;
    int64_t best_units, best_cost;
} line_search;

static void search_lines(omo_solver *sv, line_search *ls, int l)
{
    const omo_problem *p = sv->prob;
    int L = ls->L;
    if (++sv->work > sv->limit)
        return;
    int unused = 0;
    for (int s = 0; s < ls->k; s++)
        unused += ls->used[s] == 0;
    if (unused > L - l)
        return; /* every node of the set must ship something */
    if (ls->found) {
        int64_t units = ls->units;
        if (ls->refill) {
            units = 0;
            for (int s = 0; s < ls->k; s++)
                units += min64(ls->load[s], ls->cand[s]->capacity);
        }
        int64_t ub = units + ls->suffix_units[l];
        if (ub < ls->best_units)
            return;
        if (!ls->refill && ub == ls->best_units &&
            ls->cost + ls->suffix_units[l] * ls->min_pick >= ls->best_cost)
            return;
    }
    if (l == L) {
        int64_t units = ls->units, cost = ls->cost;
        if (ls->refill) {
            units = cost = 0;
            eval_assignment(sv, ls->k, sv->assign);
            for (int s = 0; s < ls->k; s++)
                for (int j = 0; j < L; j++) {
                    units += sv->take[s * L + j];
                    cost += sv->take[s * L + j] * unit_cost(p, ls->cand[s], j);
                }
        }
        if (!ls->found || units > ls->best_units ||
            (units == ls->best_units && cost < ls->best_cost)) {
            ls->found = true;
            ls->best_units = units;
            ls->best_cost = cost;
            memcpy(sv->best_assign, sv->assign, sizeof(int) * (size_t)L);
        }
        return;
    }
    int g = p->group[l];
    for (int s = 0; s <= ls->k; s++) {
        int64_t t = 0;
        if (s < ls->k) {
            if (sv->avail[sv->set[s] * L + l] == 0)
                continue;
            t = min64(min64(p->qty[l], ls->rem_atp[s][g]), ls->refill ? INT64_MAX : ls->rem_cap[s]);
            if (t == 0)
                continue;
            ls->rem_atp[s][g] -= t;
            ls->rem_cap[s] -= t;
            ls->load[s] += t;
            ls->used[s]++;
            ls->units += t;
            ls->cost += t * unit_cost(p, ls->cand[s], l);
        }
        sv->assign[l] = s < ls->k ? s : -1;
        search_lines(sv, ls, l + 1);
        if (s < ls->k) {
            ls->rem_atp[s][g] += t;
            ls->rem_cap[s] += t;
            ls->load[s] -= t;
            ls->used[s]--;
            ls->units -= t;
            ls->cost -= t * unit_cost(p, ls->cand[s], l);
        }
    }
}

static bool best_lines(omo_solver *sv, int k)
{
    const omo_problem *p = sv->prob;
    int L = sv->L;
    line_search *ls = omo_xcalloc(1, sizeof *ls);
    ls->k = k;
    ls->L = L;
    ls->G = p->ngroups;
    ls->min_pick = INT64_MAX;
    for (int s = 0; s < k; s++) {
        const omo_cand *c = &p->cands[sv->ord[sv->set[s]]];
        for (int g = 0; g < p->ngroups; g++)
            ls->rem_atp[s][g] = c->atp[g];
        ls->rem_cap[s] = c->capacity;
        ls->cand[s] = c;
        ls->min_pick = min64(ls->min_pick, c->pick);
        int64_t most = 0;
        for (int l = 0; l < L; l++)
            most += sv->avail[sv->set[s] * L + l];
        ls->refill |= c->price && most > c->capacity;
    }
    ls->suffix_units[L] = 0;
    for (int l = L - 1; l >= 0; l--) {
        int64_t most = 0;
        for (int s = 0; s < k; s++)
            most = max64(most, sv->avail[sv->set[s] * L + l]);
        ls->suffix_units[l] = ls->suffix_units[l + 1] + most;
    }
    search_lines(sv, ls, 0);
    bool found = ls->found;
    free(ls);
    return found;
}

static void eval_unsplit(omo_solver *sv, int k)
{
    const omo_problem *p = sv->prob;
    int L = sv->L;
    /* Independent choice per line: most units, then cheapest pick, then smallest node. */
    for (int l = 0; l < L; l++) {
        int bs = -1;
        int64_t bu = 0;
        for (int s = 0; s < k; s++) {
            int64_t u = sv->avail[sv->set[s] * L + l];
            if (u == 0)
                continue;
            const omo_cand *c = &p->cands[sv->ord[sv->set[s]]];
            const omo_cand *b = bs >= 0 ? &p->cands[sv->ord[sv->set[bs]]] : NULL;
            int64_t cu = unit_cost(p, c, l), bc = b ? unit_cost(p, b, l) : 0;
            if (!b || u > bu || (u == bu && (cu < bc || (cu == bc && c->node < b->node)))) {
                bs = s;
                bu = u;
            }
        }
        sv->assign[l] = bs;
    }
    /* It is exact unless a node's capacity or a shared SKU's ATP binds. */
    bool binds = false;
    int64_t gsum[OMO_MAX_GROUPS];
    for (int s = 0; s < k && !binds; s++) {
        const omo_cand *c = &p->cands[sv->ord[sv->set[s]]];
        int64_t sum = 0;
        for (int g = 0; g < p->ngroups; g++)
            gsum[g] = 0;
        for (int l = 0; l < L; l++) {
            if (sv->assign[l] != s)
                continue;
            int64_t t = sv->avail[sv->set[s] * L + l];
            gsum[p->group[l]] += t;
            sum += t;
            binds |= gsum[p->group[l]] > c->atp[p->group[l]];
        }
        binds |= sum > c->capacity;
    }
    if (binds) {
        if (!best_lines(sv, k))
            return;
        memcpy(sv->assign, sv->best_assign, sizeof(int) * (size_t)L);
    }
    eval_assignment(sv, k, sv->assign);
    offer(sv, k);
}

/* Min-cost max-flow for split lines over the k nodes of the set:
 * source -> line (qty) -> (node, group) (cost pick) -> node (atp) -> sink (capacity). */
typedef struct {
    int to, rev;
    int64_t cap, cost;
} edge;

static void add_edge(edge *e, int *ne, int from, int to, int64_t cap, int64_t cost, int *from_of)
{
    e[*ne] = (edge){to, *ne + 1, cap, cost};
    from_of[*ne] = from;
    e[*ne + 1] = (edge){from, *ne, 0, -cost};
    from_of[*ne + 1] = to;
    *ne += 2;
}

static void eval_split(omo_solver *sv, int k)
{
    const omo_problem *p = sv->prob;
    int L = sv->L, G = p->ngroups;
    int nv = 2 + L + k * G + k;
    int src = 0, snk = 1;
    int maxe = 2 * (L + L * k + k * G + k);
    edge *e = omo_xmalloc(sizeof(edge) * (size_t)maxe);
    int *from = omo_xmalloc(sizeof(int) * (size_t)maxe);
    int *line_edge = omo_xmalloc(sizeof(int) * (size_t)(L * k));
    int ne = 0;
    for (int l = 0; l < L; l++)
        add_edge(e, &ne, src, 2 + l, p->qty[l], 0, from);
    for (int s = 0; s < k; s++) {
        const omo_cand *c = &p->cands[sv->ord[sv->set[s]]];
        int nodev = 2 + L + k * G + s;
        for (int g = 0; g < G; g++)
            if (c->atp[g] > 0)
                add_edge(e, &ne, 2 + L + s * G + g, nodev, c->atp[g], 0, from);
        add_edge(e, &ne, nodev, snk, c->capacity, 0, from);
        for (int l = 0; l < L; l++) {
            line_edge[l * k + s] = -1;
            if (sv->avail[sv->set[s] * L + l] > 0) {
                line_edge[l * k + s] = ne;
                add_edge(e, &ne, 2 + l, 2 + L + s * G + p->group[l], p->qty[l], unit_cost(p, c, l),
                         from);
            }
        }
    }
    /* Successive shortest paths with Bellman-Ford: the graph has a few dozen vertices. */
    int64_t *dist = omo_xmalloc(sizeof(int64_t) * (size_t)nv);
    int *pe = omo_xmalloc(sizeof(int) * (size_t)nv);
    for (;;) {
        for (int v = 0; v < nv; v++) {
            dist[v] = INT64_MAX;
            pe[v] = -1;
        }
        dist[src] = 0;
        for (int it = 0; it < nv; it++) {
            bool changed = false;
            for (int i = 0; i < ne; i++) {
                int u = from[i];
                if (e[i].cap > 0 && dist[u] != INT64_MAX && dist[u] + e[i].cost < dist[e[i].to]) {
                    dist[e[i].to] = dist[u] + e[i].cost;
                    pe[e[i].to] = i;
                    changed = true;
                }
            }
            if (!changed)
                break;
        }
        if (dist[snk] == INT64_MAX)
            break;
        int64_t f = INT64_MAX;
        for (int v = snk; v != src; v = from[pe[v]])
            f = min64(f, e[pe[v]].cap);
        for (int v = snk; v != src; v = from[pe[v]]) {
            e[pe[v]].cap -= f;
            e[e[pe[v]].rev].cap += f;
        }
    }
    for (int s = 0; s < k; s++)
        for (int l = 0; l < L; l++) {
            int i = line_edge[l * k + s];
            sv->take[s * L + l] = i >= 0 ? e[i + 1].cap : 0;
        }
    free(dist);
    free(pe);
    free(e);
    free(from);
    free(line_edge);
    offer(sv, k);
}

static void evaluate(omo_solver *sv, int k)
{
    sv->evaluated++;
    if (k == 1) {
        for (int l = 0; l < sv->L; l++)
            sv->assign[l] = 0;
        eval_assignment(sv, 1, sv->assign);
        offer(sv, 1);
    } else if (sv->prob->split_lines) {
        eval_split(sv, k);
    } else {
        eval_unsplit(sv, k);
    }
}

/* Upper bound on units of any set holding the first `depth` chosen nodes, position i, and
 * r - 1 more positions after i. */
static int64_t units_bound(const omo_solver *sv, int depth, int i, int r)
{
    int L = sv->L;
    const int64_t *cov = sv->cover + (size_t)depth * L;
    const int64_t *suf = sv->sufmax + (size_t)i * L;
    int64_t ub = 0;
    for (int l = 0; l < L; l++) {
        int64_t u = sv->prob->split_lines ? cov[l] + r * suf[l] : max64(cov[l], suf[l]);
        ub += min64(u, sv->prob->qty[l]);
    }
    return ub;
}

/* What position i adds, on its own, to the lines the first `depth` chosen nodes cover. A line
 * takes the best of its nodes (their sum when split), capped at its quantity: that is a
 * submodular function of the set, so a set's units are at most what its first nodes cover plus
 * the gains of the others taken one by one, each at most its gain over no node at all. */
static int64_t gain_of(const omo_solver *sv, int depth, int i)
{
    const omo_problem *p = sv->prob;
    int L = sv->L;
    const int64_t *cov = sv->cover + (size_t)depth * L;
    const int64_t *av = sv->avail + (size_t)i * L;
    int64_t g = 0;
    for (int l = 0; l < L; l++) {
        int64_t u = p->split_lines ? cov[l] + av[l] : max64(cov[l], av[l]);
        g += min64(u, p->qty[l]) - min64(cov[l], p->qty[l]);
    }
    return g;
}

/* top[i * OMO_PLAN_MAX_SHIP + t]: the t-th largest gain over no node of positions >= i. */
static void fill_top(omo_solver *sv, int kmax)
{
    int n = sv->n;
    int64_t *top = sv->top;
    for (int t = 0; t < kmax; t++)
        top[(size_t)n * OMO_PLAN_MAX_SHIP + t] = 0;
    for (int i = n - 1; i >= 0; i--) {
        int64_t g = gain_of(sv, 0, i);
        const int64_t *next = top + (size_t)(i + 1) * OMO_PLAN_MAX_SHIP;
        int64_t *here = top + (size_t)i * OMO_PLAN_MAX_SHIP;
        int t = 0;
        for (; t < kmax && next[t] >= g; t++)
            here[t] = next[t];
        if (t < kmax)
            here[t++] = g;
        for (; t < kmax; t++)
            here[t] = next[t - 1];
    }
}

static void search(omo_solver *sv, int depth, int start, int64_t sumfixed, int64_t maxh);

/* Looks at position i as the next node of the set after `depth` chosen ones. Returns 0 to go on
 * with the next position, 1 when no later position can do better (they come in ascending order),
 * 2 when the budget is spent. */
static int visit(omo_solver *sv, int depth, int i, int64_t base, int64_t sumfixed, int64_t maxh)
{
    const omo_problem *p = sv->prob;
    int L = sv->L, k = sv->k, r = k - depth;
    if (++sv->work > sv->limit)
        return 2;
    /* Two bounds that only fall as i grows (so the loop may stop), and the one of i. */
    const int64_t *top_i = sv->top + (size_t)i * OMO_PLAN_MAX_SHIP;
    const int64_t *top_next = top_i + OMO_PLAN_MAX_SHIP;
    int64_t ub = units_bound(sv, depth, i, r), ub_rest = base;
    for (int t = 0; t < r; t++)
        ub_rest += top_i[t];
    ub = min64(ub, ub_rest);
    const slot *ref = bound_slot(sv);
    int64_t floor_units = ref ? ref->plan.units : sv->need;
    if (ub < floor_units || ub == 0)
        return 1;
    int64_t ub_i = base + gain_of(sv, depth, i);
    for (int t = 0; t < r - 1; t++)
        ub_i += top_next[t];
    ub_i = min64(ub_i, ub);
    if (ub_i < floor_units || ub_i == 0)
        return 0;
    const omo_cand *c = &p->cands[sv->ord[i]];
    if (ref && ub_i == ref->plan.units) {
        int64_t lb = (sumfixed + r * c->fixed) * 1000 + ref->plan.units * sv->minpick * 1000 +
                     p->hour_cost * max64(maxh, sv->minhsuf[i]) + p->split_penalty * 1000 * (k - 1);
        if (lb > ref->plan.objective)
            return ub == ref->plan.units ? 1 : 0;
    }
    sv->set[depth] = i;
    int64_t *cov = sv->cover + (size_t)(depth + 1) * L;
    const int64_t *prev = sv->cover + (size_t)depth * L;
    const int64_t *av = sv->avail + (size_t)i * L;
    for (int l = 0; l < L; l++)
        cov[l] = p->split_lines ? prev[l] + av[l] : max64(prev[l], av[l]);
    if (depth + 1 < k) {
        search(sv, depth + 1, i + 1, sumfixed + c->fixed, max64(maxh, c->hours));
        return sv->work > sv->limit ? 2 : 0;
    }
    /* The whole set is known: its own bounds, before the costlier evaluation. */
    ub = 0;
    for (int l = 0; l < L; l++)
        ub += min64(cov[l], p->qty[l]);
    ref = bound_slot(sv);
    if (ub < (ref ? ref->plan.units : sv->need) || ub == 0)
        return 0;
    if (ref && ub == ref->plan.units &&
        (sumfixed + c->fixed) * 1000 + ub * sv->minpick * 1000 +
                p->hour_cost * max64(maxh, c->hours) + p->split_penalty * 1000 * (k - 1) >
            ref->plan.objective)
        return 0;
    evaluate(sv, k);
    return 0;
}

static void search(omo_solver *sv, int depth, int start, int64_t sumfixed, int64_t maxh)
{
    const omo_problem *p = sv->prob;
    int L = sv->L, r = sv->k - depth;
    const int64_t *cov = sv->cover + (size_t)depth * L;
    int64_t base = 0;
    for (int l = 0; l < L; l++)
        base += min64(cov[l], p->qty[l]);
    /* The last node, when the plan to beat allocates every unit (unsplit): only a node that
     * gives a line all its units where the set lacks them can do, so only those of the line
     * with the fewest such nodes are looked at. */
    const slot *ref = bound_slot(sv);
    if (r == 1 && !p->split_lines && ref && ref->plan.units == sv->total && base < sv->total) {
        int rare = -1;
        for (int l = 0; l < L; l++)
            if (cov[l] < p->qty[l] && (rare < 0 || sv->fh_start[l + 1] - sv->fh_start[l] <
                                                       sv->fh_start[rare + 1] - sv->fh_start[rare]))
                rare = l;
        for (int j = sv->fh_start[rare]; j < sv->fh_start[rare + 1]; j++)
            if (sv->fh_list[j] >= start && visit(sv, depth, sv->fh_list[j], base, sumfixed, maxh))
                return;
        return;
    }
    for (int i = start; i <= sv->n - r; i++)
        if (visit(sv, depth, i, base, sumfixed, maxh))
            return;
}

/* fh_list[fh_start[l] ..]: the positions that can give line l all its units, ascending. */
static void fill_full_holders(omo_solver *sv)
{
    const omo_problem *p = sv->prob;
    int n = sv->n, L = sv->L;
    int *start = sv->fh_start;
    for (int l = 0; l <= L + 1; l++)
        start[l] = 0;
    for (int i = 0; i < n; i++)
        for (int l = 0; l < L; l++)
            start[l + 2] += sv->avail[(size_t)i * L + l] >= p->qty[l];
    for (int l = 0; l < L; l++)
        start[l + 2] += start[l + 1];
    for (int i = 0; i < n; i++)
        for (int l = 0; l < L; l++)
            if (sv->avail[(size_t)i * L + l] >= p->qty[l])
                sv->fh_list[start[l + 1]++] = i;
}

/* avail[pos][l]: what the candidate at position pos can give line l on its own. */
static void fill_avail(omo_solver *sv)
{
    const omo_problem *p = sv->prob;
    int L = sv->L;
    for (int i = 0; i < sv->n; i++) {
        const omo_cand *c = &p->cands[sv->ord[i]];
        for (int l = 0; l < L; l++)
            sv->avail[(size_t)i * L + l] =
                c->ok[l] ? min64(min64(p->qty[l], c->atp[p->group[l]]), c->capacity) : 0;
    }
}

/* True when the candidate at position i can stand in for the one at j in any plan and is no
 * worse: it costs no more in every term (a unit of each line included), can give every line at
 * least as much (its SKUs' ATP and its capacity are no smaller), and is cheaper in fixed cost
 * or comes first in node order, so that the contract's order of plans (units, objective,
 * shipments, node ids) prefers the plan with it. */
static bool dominates(const omo_solver *sv, int i, int j)
{
    const omo_problem *p = sv->prob;
    const omo_cand *a = &p->cands[sv->ord[i]], *b = &p->cands[sv->ord[j]];
    if (a->fixed > b->fixed || a->pick > b->pick || a->hours > b->hours ||
        a->capacity < b->capacity || (a->fixed == b->fixed && a->node > b->node))
        return false;
    int L = sv->L;
    const int64_t *ai = sv->avail + (size_t)i * L, *aj = sv->avail + (size_t)j * L;
    for (int l = 0; l < L; l++)
        if (aj[l] > 0 && (ai[l] < aj[l] || a->atp[p->group[l]] < b->atp[p->group[l]] ||
                          unit_cost(p, a, l) > unit_cost(p, b, l)))
            return false;
    return true;
}

/* Leaves out the candidates that K others dominate (K = the most shipments). A plan using one
 * uses at most K - 1 others, so one of its dominators is free to take over its lines: the plan
 * with it instead is better, so the best plan uses no dominated candidate, and the search
 * finds the same plan without them. Positions keep their order; those of the incumbent's
 * candidates stay. */
static void drop_dominated(omo_solver *sv)
{
    const omo_problem *p = sv->prob;
    int n = sv->n, L = sv->L;
    int K = p->max_shipments < OMO_PLAN_MAX_SHIP ? p->max_shipments : OMO_PLAN_MAX_SHIP;
    /* Per line, the positions that can give it something. */
    int *start = omo_xcalloc((size_t)L + 2, sizeof(int));
    int *list = omo_xmalloc(sizeof(int) * ((size_t)n * (size_t)L + 1));
    bool *drop = omo_xcalloc((size_t)n + 1, sizeof(bool));
    for (int i = 0; i < n; i++)
        for (int l = 0; l < L; l++)
            start[l + 2] += sv->avail[(size_t)i * L + l] > 0;
    for (int l = 0; l < L; l++)
        start[l + 2] += start[l + 1];
    for (int i = 0; i < n; i++)
        for (int l = 0; l < L; l++)
            if (sv->avail[(size_t)i * L + l] > 0)
                list[start[l + 1]++] = i;
    /* Now list[start[l] .. start[l + 1]) holds line l's positions. */
    for (int j = 0; j < n; j++) {
        int rare = -1;
        for (int l = 0; l < L; l++)
            if (sv->avail[(size_t)j * L + l] > 0 &&
                (rare < 0 || start[l + 1] - start[l] < start[rare + 1] - start[rare]))
                rare = l;
        int found = 0;
        for (int k = rare < 0 ? 0 : start[rare]; rare >= 0 && k < start[rare + 1] && found < K; k++)
            found += list[k] != j && dominates(sv, list[k], j);
        drop[j] = found >= K;
    }
    const slot *best = &sv->slots[0];
    for (int s = 0; best->have && s < best->plan.nships; s++)
        for (int j = 0; j < n; j++)
            if (sv->ord[j] == best->plan.cand[s])
                drop[j] = false;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!drop[i])
            sv->ord[m++] = sv->ord[i];
    sv->n = m;
    sv->reduced = true;
    free(start);
    free(list);
    free(drop);
    fill_avail(sv);
}

/* A good plan before the search, so that its bounds bite from the start: from the cheapest
 * node, add the node that covers the most missing units (then the cheapest) while units are
 * missing. The search that follows is exact whatever this finds. */
static void seed_greedily(omo_solver *sv, int kmax)
{
    const omo_problem *p = sv->prob;
    int L = sv->L;
    int64_t cover[OMO_MAX_GROUPS] = {0}, have = 0, total = 0;
    for (int l = 0; l < L; l++)
        total += p->qty[l];
    for (int k = 1; k <= kmax && have < total; k++) {
        int best = -1;
        int64_t gain = 0;
        for (int i = 0; i < sv->n; i++) {
            bool taken = false;
            for (int s = 0; s < k - 1; s++)
                taken |= sv->set[s] == i;
            if (taken)
                continue;
            int64_t g = 0;
            for (int l = 0; l < L; l++) {
                int64_t a = sv->avail[(size_t)i * L + l];
                int64_t c = p->split_lines ? min64(cover[l] + a, p->qty[l]) : max64(cover[l], a);
                g += c - cover[l];
            }
            if (g > gain) { /* positions are sorted by fixed cost: the first best is cheapest */
                gain = g;
                best = i;
            }
        }
        if (best < 0)
            break;
        sv->set[k - 1] = best;
        for (int l = 0; l < L; l++) {
            int64_t a = sv->avail[(size_t)best * L + l];
            cover[l] = p->split_lines ? min64(cover[l] + a, p->qty[l]) : max64(cover[l], a);
        }
        have += gain;
        if (k >= 2) {
            sv->k = k;
            evaluate(sv, k);
        }
    }
}

static void reserve(omo_solver *sv, int n, int L)
{
    if ((size_t)n > sv->cap_n) {
        sv->cap_n = (size_t)n * 2;
        sv->ord = omo_xrealloc(sv->ord, sizeof(int) * sv->cap_n);
        sv->minhsuf = omo_xrealloc(sv->minhsuf, sizeof(int64_t) * (sv->cap_n + 1));
        sv->top = omo_xrealloc(sv->top, sizeof(int64_t) * (sv->cap_n + 1) * OMO_PLAN_MAX_SHIP);
    }
    size_t nl = (size_t)(n + 1) * (size_t)L;
    if (nl > sv->cap_nl) {
        sv->cap_nl = nl * 2;
        sv->avail = omo_xrealloc(sv->avail, sizeof(int64_t) * sv->cap_nl);
        sv->sufmax = omo_xrealloc(sv->sufmax, sizeof(int64_t) * sv->cap_nl);
        sv->fh_list = omo_xrealloc(sv->fh_list, sizeof(int) * sv->cap_nl);
    }
    if ((size_t)L > sv->cap_l) {
        sv->cap_l = (size_t)L * 2;
        sv->ltake = omo_xrealloc(sv->ltake, sizeof(int64_t) * sv->cap_l);
        sv->fh_start = omo_xrealloc(sv->fh_start, sizeof(int) * (sv->cap_l + 2));
        sv->assign = omo_xrealloc(sv->assign, sizeof(int) * sv->cap_l);
        sv->best_assign = omo_xrealloc(sv->best_assign, sizeof(int) * sv->cap_l);
        sv->take = omo_xrealloc(sv->take, sizeof(int64_t) * sv->cap_l * OMO_PLAN_MAX_SHIP);
        for (int i = 0; i < 2; i++)
            sv->slots[i].take =
                omo_xrealloc(sv->slots[i].take, sizeof(int64_t) * sv->cap_l * OMO_PLAN_MAX_SHIP);
        sv->cover = omo_xrealloc(sv->cover, sizeof(int64_t) * sv->cap_l * (OMO_PLAN_MAX_SHIP + 1));
    }
}

/* The exact search, within sv->limit. */
static void search_all(omo_solver *sv, const omo_problem *p)
{
    int L = p->nlines;
    sv->prob = p;
    sv->L = L;
    sv->slots[0].have = sv->slots[1].have = false;
    sv->explain = p->explain;
    reserve(sv, p->ncands, L);
    sv->total = 0;
    for (int l = 0; l < L; l++)
        sv->total += p->qty[l];
    sv->need = p->partial_deny ? sv->total : 0;

    /* Keep the candidates that can give something, sorted by fixed cost then node. */
    int n = 0;
    for (int c = 0; c < p->ncands; c++) {
        if (p->cands[c].capacity <= 0)
            continue;
        bool any = false;
        for (int l = 0; l < L && !any; l++)
            any = p->cands[c].ok[l] && p->cands[c].atp[p->group[l]] > 0;
        if (any)
            sv->ord[n++] = c;
    }
    sv->n = n;
    sv->minpick = INT64_MAX;
    int64_t minh = INT64_MAX, f1 = INT64_MAX, f2 = INT64_MAX;
    sv->kdone = 1;
    fill_avail(sv);
    /* Big baskets over many candidates: the search finds the same plan without the dominated
     * ones, sooner. (Ordinary baskets do not pay for looking.) */
    sv->reduced = false;
    if (!p->explain && L >= DOMINANCE_LINES && n >= DOMINANCE_CANDS) {
        drop_dominated(sv);
        n = sv->n;
    }
    for (int i = 0; i < n; i++) {
        const omo_cand *c = &p->cands[sv->ord[i]];
        sv->minpick = min64(sv->minpick, c->pick);
        minh = min64(minh, c->hours);
        if (c->fixed < f1) {
            f2 = f1;
            f1 = c->fixed;
        } else if (c->fixed < f2) {
            f2 = c->fixed;
        }
    }

    /* One shipment: every candidate, in any order. */
    sv->k = 1;
    for (int i = 0; i < n; i++) {
        sv->set[0] = i;
        evaluate(sv, 1);
    }

    int kmax = p->max_shipments < OMO_PLAN_MAX_SHIP ? p->max_shipments : OMO_PLAN_MAX_SHIP;
    if (kmax > n)
        kmax = n;
    const slot *ref = bound_slot(sv);
    if (kmax >= 2 && ref) {
        /* Skip the search when no larger set can allocate more, nor cost less even with the two
         * cheapest candidates, the fastest hours and the cheapest picking. */
        int64_t most = 0;
        for (int l = 0; l < L; l++) {
            int64_t u = 0;
            for (int i = 0; i < n; i++) {
                int64_t a = sv->avail[(size_t)i * L + l];
                u = p->split_lines ? u + a : max64(u, a);
            }
            most += min64(u, p->qty[l]);
        }
        int64_t lb = (f1 + f2) * 1000 + ref->plan.units * sv->minpick * 1000 + p->hour_cost * minh +
                     p->split_penalty * 1000;
        if (ref->plan.units >= most && lb > ref->plan.objective)
            kmax = 1;
    }
    sv->kmax = kmax;
    if (kmax >= 2) {
        sort_ctx = sv;
        qsort(sv->ord, (size_t)n, sizeof(int), cmp_pos);
        fill_avail(sv);
        for (int l = 0; l < L; l++)
            sv->sufmax[(size_t)n * L + l] = 0;
        sv->minhsuf[n] = INT64_MAX;
        for (int i = n - 1; i >= 0; i--) {
            for (int l = 0; l < L; l++)
                sv->sufmax[(size_t)i * L + l] =
                    max64(sv->avail[(size_t)i * L + l], sv->sufmax[(size_t)(i + 1) * L + l]);
            sv->minhsuf[i] = min64(p->cands[sv->ord[i]].hours, sv->minhsuf[i + 1]);
        }
        for (int l = 0; l < L; l++)
            sv->cover[l] = 0;
        fill_top(sv, kmax);
        fill_full_holders(sv);
        seed_greedily(sv, kmax);
        for (int k = 2; k <= kmax && sv->work <= sv->limit; k++) {
            sv->k = k;
            search(sv, 0, 0, 0, 0);
            if (sv->work <= sv->limit)
                sv->kdone = k;
        }
    }
}

/* The search ran out of budget: the MIP takes over from its incumbent, on the candidates no
 * others dominate. */
static void finish_by_mip(omo_solver *sv, const omo_problem *p)
{
    slot *best = &sv->slots[0];
    int L = sv->L;
    /* What the search proved: every set of up to kdone nodes was searched, and a larger one of
     * k nodes pays at least the k smallest fixed costs (positions are sorted by them), the k-th
     * smallest hours, the cheapest picking and its split penalties. A plan with every unit
     * (unsplit) has, for each line, a node giving it all its units: at least the cheapest and
     * the fastest of those, beside the k - 1 smallest fixed costs. No set of kmax nodes covers
     * more than the kmax largest single coverages. */
    int64_t units = best->have ? best->plan.units : 0, fixed = 0, fixed_rest = 0;
    int k = sv->kdone + 1;
    int64_t fast[OMO_PLAN_MAX_SHIP + 1]; /* the k smallest hours, ascending */
    int nfast = 0;
    for (int i = 0; i < sv->n; i++) {
        const omo_cand *c = &p->cands[sv->ord[i]];
        if (i < k)
            fixed += c->fixed;
        if (i < k - 1)
            fixed_rest += c->fixed;
        int j = nfast < k ? nfast++ : k;
        for (; j > 0 && fast[j - 1] > c->hours; j--)
            if (j < k)
                fast[j] = fast[j - 1];
        if (j < k)
            fast[j] = c->hours;
    }
    int64_t hours = nfast ? fast[nfast - 1] : 0;
    if (units == sv->total && !p->split_lines)
        for (int l = 0; l < L; l++) {
            int64_t f = INT64_MAX, h = INT64_MAX;
            for (int j = sv->fh_start[l]; j < sv->fh_start[l + 1]; j++) {
                f = min64(f, p->cands[sv->ord[sv->fh_list[j]]].fixed);
                h = min64(h, p->cands[sv->ord[sv->fh_list[j]]].hours);
            }
            if (f == INT64_MAX)
                continue;
            fixed = max64(fixed, f + fixed_rest);
            hours = max64(hours, h);
        }
    sv->bound = fixed * 1000 + units * sv->minpick * 1000 + p->hour_cost * hours +
                p->split_penalty * 1000 * (k - 1);
    sv->units_bound = 0;
    for (int t = 0; t < sv->kmax; t++)
        sv->units_bound += sv->top[t];
    sv->units_bound = max64(units, min64(sv->units_bound, sv->total));
    if (best->have)
        sv->bound = min64(sv->bound, best->plan.objective);
    drop_dominated(sv);
    /* The problem over positions: sub.cands[i] is the candidate at position i. */
    int n = sv->n;
    omo_grow((void **)&sv->sub, &sv->cap_sub, (size_t)n + 1, sizeof(omo_cand));
    for (int i = 0; i < n; i++)
        sv->sub[i] = p->cands[sv->ord[i]];
    omo_problem sub = *p;
    sub.cands = sv->sub;
    sub.ncands = n;
    int seed_nships = best->have ? best->plan.nships : 0, seed[OMO_PLAN_MAX_SHIP];
    for (int s = 0; s < seed_nships; s++)
        for (int i = 0; i < n; i++)
            if (sv->ord[i] == best->plan.cand[s])
                seed[s] = i;
    int nships = 0, cand[OMO_PLAN_MAX_SHIP];
    omo_mip_result res;
    uint64_t budget = p->mip_budget ? p->mip_budget : OMO_MIP_BUDGET;
    if (!omo_mip_solve(&sub, seed_nships, seed, best->take, budget, &nships, cand, sv->take, &res))
        return;
    sv->mip_iterations += res.iterations;
    sv->proven = res.proven;
    /* Both bounds hold (the search's for any plan with at least the seed's units): keep the
     * stronger. */
    sv->units_bound = min64(sv->units_bound, res.units_bound);
    sv->bound = max64(sv->bound, res.bound);
    if (!res.improved)
        return;
    /* The MIP's plan, as offer would keep it: shipments in ascending node index. */
    int order[OMO_PLAN_MAX_SHIP], nodes[OMO_PLAN_MAX_SHIP];
    int64_t per[OMO_PLAN_MAX_SHIP];
    units = 0;
    for (int s = 0; s < nships; s++) {
        cand[s] = sv->ord[cand[s]];
        order[s] = s;
        per[s] = 0;
        for (int l = 0; l < L; l++)
            per[s] += sv->take[(size_t)s * L + l];
        units += per[s];
    }
    for (int i = 1; i < nships; i++)
        for (int j = i; j > 0 && p->cands[cand[order[j]]].node < p->cands[cand[order[j - 1]]].node;
             j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int64_t priced = 0;
    for (int s = 0; s < nships; s++) {
        nodes[s] = p->cands[cand[order[s]]].node;
        const int64_t *price = p->cands[cand[s]].price;
        for (int l = 0; l < L && price; l++)
            priced += sv->take[(size_t)s * L + l] * price[p->group[l]] * 1000;
    }
    store_slot(sv, best, units, omo_objective(p, nships, cand, per) + priced, priced, nships, cand,
               nodes, order);
}

const omo_plan *omo_solver_solve(omo_solver *sv, const omo_problem *p)
{
    sv->work = 0;
    sv->limit = p->budget ? p->budget : OMO_SEARCH_BUDGET;
    sv->proven = true;
    search_all(sv, p);
    sv->searched += sv->work;
    if (sv->work > sv->limit) {
        sv->proven = false;
        if (p->explain) {
            /* Explaining: the decision is the one made without explaining, runner-up unknown. */
            omo_problem plain = *p;
            plain.explain = false;
            omo_solver_solve(sv, &plain);
            sv->explain = false;
            return &sv->slots[0].plan;
        }
        finish_by_mip(sv, p);
    }
    for (int i = 0; i < 2; i++) {
        slot *sl = &sv->slots[i];
        if (!sl->have)
            sl->plan.units = sl->plan.objective = sl->plan.nships = 0;
        sl->plan.take = sl->take;
    }
    if (sv->proven) {
        sv->units_bound = sv->slots[0].plan.units;
        sv->bound = sv->slots[0].plan.objective;
    }
    return &sv->slots[0].plan;
}

bool omo_solver_proven(const omo_solver *sv, int64_t *units_bound, int64_t *bound)
{
    *units_bound = sv->units_bound;
    *bound = sv->bound;
    return sv->proven;
}

uint64_t omo_solver_work(const omo_solver *sv, uint64_t *mip_iterations)
{
    *mip_iterations = sv->mip_iterations;
    return sv->searched;
}

const omo_plan *omo_solver_runner_up(const omo_solver *sv)
{
    return sv->explain && sv->slots[1].have ? &sv->slots[1].plan : NULL;
}
