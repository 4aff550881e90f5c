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

#include <stdlib.h>
#include <string.h>

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
    int set[OMO_PLAN_MAX_SHIP]; /* positions */
    int64_t *cover;             /* [depth * L + l] coverage bound after depth nodes */
    size_t cap_cover;

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

static void search(omo_solver *sv, int depth, int start, int64_t sumfixed, int64_t maxh)
{
    const omo_problem *p = sv->prob;
    int L = sv->L, k = sv->k, r = k - depth;
    for (int i = start; i <= sv->n - r; i++) {
        int64_t ub = units_bound(sv, depth, i, r);
        const slot *ref = bound_slot(sv);
        int64_t floor_units = ref ? ref->plan.units : sv->need;
        if (ub < floor_units || ub == 0)
            break;
        const omo_cand *c = &p->cands[sv->ord[i]];
        if (ref && ub == ref->plan.units) {
            int64_t lb = (sumfixed + r * c->fixed) * 1000 + ref->plan.units * sv->minpick * 1000 +
                         p->hour_cost * max64(maxh, sv->minhsuf[i]) +
                         p->split_penalty * 1000 * (k - 1);
            if (lb > ref->plan.objective)
                break;
        }
        sv->set[depth] = i;
        int64_t *cov = sv->cover + (size_t)(depth + 1) * L;
        const int64_t *prev = sv->cover + (size_t)depth * L;
        const int64_t *av = sv->avail + (size_t)i * L;
        for (int l = 0; l < L; l++)
            cov[l] = p->split_lines ? prev[l] + av[l] : max64(prev[l], av[l]);
        if (depth + 1 == k) {
            /* The whole set is known: its own bounds, before the costlier evaluation. */
            int64_t ub = 0;
            for (int l = 0; l < L; l++)
                ub += min64(cov[l], p->qty[l]);
            const slot *ref = bound_slot(sv);
            if (ub < (ref ? ref->plan.units : sv->need) || ub == 0)
                continue;
            if (ref && ub == ref->plan.units &&
                (sumfixed + c->fixed) * 1000 + ub * sv->minpick * 1000 +
                        p->hour_cost * max64(maxh, c->hours) + p->split_penalty * 1000 * (k - 1) >
                    ref->plan.objective)
                continue;
            evaluate(sv, k);
        } else
            search(sv, depth + 1, i + 1, sumfixed + c->fixed, max64(maxh, c->hours));
    }
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
    }
    size_t nl = (size_t)(n + 1) * (size_t)L;
    if (nl > sv->cap_nl) {
        sv->cap_nl = nl * 2;
        sv->avail = omo_xrealloc(sv->avail, sizeof(int64_t) * sv->cap_nl);
        sv->sufmax = omo_xrealloc(sv->sufmax, sizeof(int64_t) * sv->cap_nl);
    }
    if ((size_t)L > sv->cap_l) {
        sv->cap_l = (size_t)L * 2;
        sv->ltake = omo_xrealloc(sv->ltake, sizeof(int64_t) * sv->cap_l);
        sv->assign = omo_xrealloc(sv->assign, sizeof(int) * sv->cap_l);
        sv->best_assign = omo_xrealloc(sv->best_assign, sizeof(int) * sv->cap_l);
        sv->take = omo_xrealloc(sv->take, sizeof(int64_t) * sv->cap_l * OMO_PLAN_MAX_SHIP);
        for (int i = 0; i < 2; i++)
            sv->slots[i].take =
                omo_xrealloc(sv->slots[i].take, sizeof(int64_t) * sv->cap_l * OMO_PLAN_MAX_SHIP);
        sv->cover = omo_xrealloc(sv->cover, sizeof(int64_t) * sv->cap_l * (OMO_PLAN_MAX_SHIP + 1));
    }
}

const omo_plan *omo_solver_solve(omo_solver *sv, const omo_problem *p)
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
    fill_avail(sv);
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
        seed_greedily(sv, kmax);
        for (int k = 2; k <= kmax; k++) {
            sv->k = k;
            search(sv, 0, 0, 0, 0);
        }
    }
    for (int i = 0; i < 2; i++) {
        slot *sl = &sv->slots[i];
        if (!sl->have)
            sl->plan.units = sl->plan.objective = sl->plan.nships = 0;
        sl->plan.take = sl->take;
    }
    return &sv->slots[0].plan;
}

const omo_plan *omo_solver_runner_up(const omo_solver *sv)
{
    return sv->explain && sv->slots[1].have ? &sv->slots[1].plan : NULL;
}
