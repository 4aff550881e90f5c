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
 * min-cost max-flow when lines may be split. */
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

static const omo_solver *sort_ctx;

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

static void store_slot(omo_solver *sv, slot *sl, int64_t units, int64_t obj, int k,
                       const int *cands, const int *nodes, const int *order)
{
    int L = sv->L;
    sl->have = true;
    sl->plan.units = units;
    sl->plan.objective = obj;
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
    int64_t units = 0, per[OMO_PLAN_MAX_SHIP] = {0};
    int cands[OMO_PLAN_MAX_SHIP] = {0};
    for (int s = 0; s < k; s++) {
        per[s] = 0;
        for (int l = 0; l < L; l++)
            per[s] += sv->take[s * L + l];
        if (per[s] == 0)
            return; /* a smaller set's plan */
        units += per[s];
        cands[s] = sv->ord[sv->set[s]];
    }
    if (units < sv->need)
        return;
    int64_t obj = omo_objective(p, k, cands, per);
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
        store_slot(sv, best, units, obj, k, cands, nodes, order);
    } else if (sv->explain && !same_nodes(best, k, nodes) && better(runner, units, obj, k, nodes)) {
        store_slot(sv, runner, units, obj, k, cands, nodes, order);
    }
}

/* Units a single node gives lines `mask` (lines assigned to it), filled in line order. */
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
    for (int l = 0; l < L; l++) {
        int64_t t = 0;
        if (assign[l] == s && c->ok[l]) {
            t = min64(min64(p->qty[l], gl[p->group[l]]), cap);
            gl[p->group[l]] -= t;
            cap -= t;
        }
        sv->take[s * L + l] = t;
    }
    if (gl != gleft)
        free(gl);
}

static void eval_assignment(omo_solver *sv, int k, const int *assign)
{
    for (int s = 0; s < k; s++)
        fill_node(sv, s, assign);
}

/* Exact enumeration of line -> node assignments when a shared limit binds. */
static void enum_lines(omo_solver *sv, int k, int l, int64_t *best_units, int64_t *best_pick,
                       bool *found)
{
    int L = sv->L;
    if (l == L) {
        eval_assignment(sv, k, sv->assign);
        int64_t units = 0, pick = 0;
        for (int s = 0; s < k; s++) {
            int64_t u = 0;
            for (int j = 0; j < L; j++)
                u += sv->take[s * L + j];
            if (u == 0)
                return;
            units += u;
            pick += u * sv->prob->cands[sv->ord[sv->set[s]]].pick;
        }
        if (!*found || units > *best_units || (units == *best_units && pick < *best_pick)) {
            *found = true;
            *best_units = units;
            *best_pick = pick;
            memcpy(sv->best_assign, sv->assign, sizeof(int) * (size_t)L);
        }
        return;
    }
    for (int s = -1; s < k; s++) {
        if (s >= 0 && sv->avail[sv->set[s] * L + l] == 0)
            continue;
        sv->assign[l] = s;
        enum_lines(sv, k, l + 1, best_units, best_pick, found);
    }
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
            if (!b || u > bu ||
                (u == bu && (c->pick < b->pick || (c->pick == b->pick && c->node < b->node)))) {
                bs = s;
                bu = u;
            }
        }
        sv->assign[l] = bs;
    }
    /* It is exact unless a node's capacity or a shared SKU's ATP binds. */
    bool binds = false;
    for (int s = 0; s < k && !binds; s++) {
        const omo_cand *c = &p->cands[sv->ord[sv->set[s]]];
        int64_t sum = 0;
        for (int l = 0; l < L && !binds; l++) {
            if (sv->assign[l] != s)
                continue;
            sum += min64(p->qty[l], c->atp[p->group[l]]);
            for (int j = l + 1; j < L; j++)
                if (sv->assign[j] == s && p->group[j] == p->group[l]) {
                    binds = true;
                    break;
                }
        }
        if (sum > c->capacity)
            binds = true;
    }
    if (binds) {
        int64_t bu = 0, bp = 0;
        bool found = false;
        enum_lines(sv, k, 0, &bu, &bp, &found);
        if (!found)
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
                add_edge(e, &ne, 2 + l, 2 + L + s * G + p->group[l], p->qty[l], c->pick, from);
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
        if (depth + 1 == k)
            evaluate(sv, k);
        else
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
