/* The order's problem as a MIP for GLPK: see mip.h. */
#include "mip.h"

#include <glpk.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Composites stay below this, so that doubles hold them, and sums of them, exactly. */
#define EXACT_LIMIT (1LL << 50)

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* One (node, line) pair the node may serve: its 0/1 column (unsplit) and its units column (when
 * a limit may bind, or lines split), 0 when absent. */
typedef struct pair {
    int node; /* index into the model's nodes */
    int line;
    int64_t avail;
    int xcol, ucol;
} pair;

typedef struct model {
    const omo_problem *p;
    int K, L;
    int nn;
    int *cand;   /* model node -> prob->cands index */
    int *ycol;   /* model node -> its column */
    int *level;  /* model node -> its hours level */
    bool *binds; /* model node: a shared limit may bind (units columns) */
    pair *pairs;
    int np;
    int64_t *hours; /* distinct hours, ascending */
    int nh;
    int *wcol; /* hours level -> column (hour_cost > 0) */
    int64_t scale, weight, total;
    glp_prob *lp;
    int ncols;
} model;

/* Adds a row sum(vals[i] * cols[i]) with bounds; ind/val are 1-based as GLPK wants. */
static void add_row(glp_prob *lp, int type, double lo, double hi, int n, const int *ind,
                    const double *val)
{
    int r = glp_add_rows(lp, 1);
    glp_set_row_bnds(lp, r, type, lo, hi);
    glp_set_mat_row(lp, r, n, ind, val);
}

static int add_col(model *m, int kind, double lo, double hi, double cost)
{
    int c = glp_add_cols(m->lp, 1);
    glp_set_col_kind(m->lp, c, kind);
    glp_set_col_bnds(m->lp, c, lo == hi ? GLP_FX : GLP_DB, lo, hi);
    glp_set_obj_coef(m->lp, c, cost);
    m->ncols = c;
    return c;
}

static void model_free(model *m)
{
    if (m->lp)
        glp_delete_prob(m->lp);
    free(m->cand);
    free(m->ycol);
    free(m->level);
    free(m->binds);
    free(m->pairs);
    free(m->hours);
    free(m->wcol);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The units of a plan column by column, from the pairs; the composite objective of a plan. */
static int64_t composite(const model *m, int64_t units, int64_t objective, int nships)
{
    if (nships == 0)
        return m->weight * m->total;
    return m->weight * (m->total - units) + (m->K + 1) * (objective / m->scale) + nships;
}

/* What a unit of line l costs at candidate c (nano): picking and its look-ahead price. */
static int64_t unit_cost(const omo_problem *p, int c, int l)
{
    const omo_cand *cd = &p->cands[c];
    return (cd->pick + (cd->price ? cd->price[p->group[l]] : 0)) * 1000;
}

/* The objective the solver compares plans by: the contract's, with the units' prices. */
static int64_t plan_objective(const omo_problem *p, int nships, const int *cand,
                              const int64_t *take)
{
    int L = p->nlines;
    int64_t per[OMO_PLAN_MAX_SHIP], priced = 0;
    for (int s = 0; s < nships; s++) {
        per[s] = 0;
        for (int l = 0; l < L; l++) {
            int64_t t = take[(size_t)s * L + l];
            per[s] += t;
            priced += t * (unit_cost(p, cand[s], l) - p->cands[cand[s]].pick * 1000);
        }
    }
    return omo_objective(p, nships, cand, per) + priced;
}

/* Builds the model. Returns false when its numbers are out of exact reach. */
static bool build(model *m, const omo_problem *p)
{
    int L = p->nlines;
    m->p = p;
    m->L = L;
    m->K = p->max_shipments < OMO_PLAN_MAX_SHIP ? p->max_shipments : OMO_PLAN_MAX_SHIP;
    m->cand = omo_xmalloc(sizeof(int) * (size_t)(p->ncands + 1));
    m->ycol = omo_xmalloc(sizeof(int) * (size_t)(p->ncands + 1));
    m->level = omo_xmalloc(sizeof(int) * (size_t)(p->ncands + 1));
    m->binds = omo_xcalloc((size_t)p->ncands + 1, sizeof(bool));
    m->hours = omo_xmalloc(sizeof(int64_t) * (size_t)(p->ncands + 1));
    m->pairs = omo_xmalloc(sizeof(pair) * ((size_t)p->ncands * (size_t)L + 1));
    m->total = 0;
    for (int l = 0; l < L; l++)
        m->total += p->qty[l];

    /* Nodes that can give something, and their pairs. */
    int64_t gsum[OMO_MAX_GROUPS];
    for (int c = 0; c < p->ncands; c++) {
        const omo_cand *cd = &p->cands[c];
        int first = m->np;
        int64_t sum = 0;
        for (int g = 0; g < p->ngroups; g++)
            gsum[g] = 0;
        for (int l = 0; l < L; l++) {
            int64_t a = cd->ok[l] && cd->capacity > 0
                            ? min64(min64(p->qty[l], cd->atp[p->group[l]]), cd->capacity)
                            : 0;
            if (a <= 0)
                continue;
            m->pairs[m->np++] = (pair){.node = m->nn, .line = l, .avail = a};
            sum += a;
            gsum[p->group[l]] += a;
        }
        if (m->np == first)
            continue;
        bool binds = p->split_lines || sum > cd->capacity;
        for (int g = 0; g < p->ngroups; g++)
            binds |= gsum[g] > cd->atp[g];
        m->binds[m->nn] = binds;
        m->hours[m->nn] = cd->hours;
        m->cand[m->nn++] = c;
    }
    /* Hours levels. */
    int64_t *lv = m->hours;
    qsort(lv, (size_t)m->nn, sizeof(int64_t), cmp_i64);
    m->nh = 0;
    for (int i = 0; i < m->nn; i++)
        if (m->nh == 0 || lv[m->nh - 1] != lv[i])
            lv[m->nh++] = lv[i];
    for (int i = 0; i < m->nn; i++) {
        int64_t h = p->cands[m->cand[i]].hours;
        int lo = 0, hi = m->nh - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (lv[mid] < h)
                lo = mid + 1;
            else
                hi = mid;
        }
        m->level[i] = lo;
    }

    /* Integers: every cost coefficient is a multiple of scale. */
    int64_t s = 0, maxfixed = 0, maxpick = 0;
    for (int i = 0; i < m->nn; i++) {
        const omo_cand *cd = &p->cands[m->cand[i]];
        s = gcd64(s, cd->fixed * 1000);
        maxfixed = max64(maxfixed, cd->fixed * 1000);
    }
    for (int k = 0; k < m->np; k++) {
        int64_t u = unit_cost(p, m->cand[m->pairs[k].node], m->pairs[k].line);
        s = gcd64(s, u);
        maxpick = max64(maxpick, u);
    }
    s = gcd64(s, p->split_penalty * 1000);
    for (int j = 0; j < m->nh; j++)
        s = gcd64(s, p->hour_cost * (lv[j] - (j ? lv[j - 1] : 0)));
    m->scale = s > 0 ? s : 1;
    double most = ((double)m->K * (double)maxfixed + (double)m->total * (double)maxpick +
                   (double)p->hour_cost * (double)(m->nh ? lv[m->nh - 1] : 0) +
                   (double)p->split_penalty * 1000.0 * (double)m->K) /
                  (double)m->scale;
    double weight = (double)(m->K + 1) * most + (double)m->K + 1;
    if (weight * (double)(m->total + 1) >= (double)EXACT_LIMIT)
        return false;
    m->weight = (int64_t)weight;
    int64_t K1 = m->K + 1, S = m->scale, W = m->weight;

    glp_prob *lp = m->lp = glp_create_prob();
    glp_set_obj_dir(lp, GLP_MIN);
    glp_set_obj_coef(lp, 0, (double)(W * m->total - (p->split_penalty * 1000 / S) * K1));
    for (int i = 0; i < m->nn; i++) {
        const omo_cand *cd = &p->cands[m->cand[i]];
        m->ycol[i] = add_col(m, GLP_BV, 0, 1,
                             (double)(K1 * ((cd->fixed * 1000 + p->split_penalty * 1000) / S) + 1));
    }
    for (int k = 0; k < m->np; k++) {
        pair *pr = &m->pairs[k];
        double unit = (double)(-W + K1 * (unit_cost(p, m->cand[pr->node], pr->line) / S));
        if (!p->split_lines)
            pr->xcol = add_col(m, GLP_BV, 0, 1, m->binds[pr->node] ? 0 : unit * (double)pr->avail);
        if (m->binds[pr->node])
            pr->ucol = add_col(m, GLP_IV, 0, (double)pr->avail, unit);
    }
    m->wcol = omo_xcalloc((size_t)m->nh + 1, sizeof(int));
    if (p->hour_cost > 0)
        for (int j = 0; j < m->nh; j++)
            m->wcol[j] = add_col(m, GLP_BV, 0, 1,
                                 (double)(K1 * (p->hour_cost * (lv[j] - (j ? lv[j - 1] : 0)) / S)));

    size_t room = (size_t)m->ncols + 2;
    int *ind = omo_xmalloc(sizeof(int) * room);
    double *val = omo_xmalloc(sizeof(double) * room);
    /* Each line: from one node (unsplit), at most its quantity (split). */
    for (int l = 0; l < L; l++) {
        int n = 0;
        for (int k = 0; k < m->np; k++) {
            const pair *pr = &m->pairs[k];
            if (pr->line != l)
                continue;
            n++;
            ind[n] = p->split_lines ? pr->ucol : pr->xcol;
            val[n] = 1;
        }
        if (n > 1)
            add_row(lp, GLP_UP, 0, p->split_lines ? (double)p->qty[l] : 1, n, ind, val);
    }
    /* A line only from a used node; units only as assigned. */
    for (int k = 0; k < m->np; k++) {
        const pair *pr = &m->pairs[k];
        int y = m->ycol[pr->node];
        if (!p->split_lines) {
            ind[1] = pr->xcol, val[1] = 1, ind[2] = y, val[2] = -1;
            add_row(lp, GLP_UP, 0, 0, 2, ind, val);
        }
        if (pr->ucol) {
            ind[1] = pr->ucol, val[1] = 1;
            ind[2] = p->split_lines ? y : pr->xcol, val[2] = -(double)pr->avail;
            add_row(lp, GLP_UP, 0, 0, 2, ind, val);
        }
    }
    /* Shared limits of the nodes where they may bind. */
    for (int i = 0, k0 = 0; i < m->nn; i++) {
        int k1 = k0;
        while (k1 < m->np && m->pairs[k1].node == i)
            k1++;
        if (m->binds[i]) {
            const omo_cand *cd = &p->cands[m->cand[i]];
            for (int g = 0; g < p->ngroups; g++) {
                int n = 0;
                int64_t sum = 0;
                for (int k = k0; k < k1; k++)
                    if (p->group[m->pairs[k].line] == g) {
                        ind[++n] = m->pairs[k].ucol, val[n] = 1;
                        sum += m->pairs[k].avail;
                    }
                if (sum > cd->atp[g])
                    add_row(lp, GLP_UP, 0, (double)cd->atp[g], n, ind, val);
            }
            int n = 0;
            int64_t sum = 0;
            for (int k = k0; k < k1; k++) {
                ind[++n] = m->pairs[k].ucol, val[n] = 1;
                sum += m->pairs[k].avail;
            }
            if (sum > cd->capacity)
                add_row(lp, GLP_UP, 0, (double)cd->capacity, n, ind, val);
        }
        k0 = k1;
    }
    /* At most K nodes. */
    for (int i = 0; i < m->nn; i++)
        ind[i + 1] = m->ycol[i], val[i + 1] = 1;
    if (m->nn > m->K)
        add_row(lp, GLP_UP, 0, m->K, m->nn, ind, val);
    /* The hours levels a used node reaches, each level implying the ones below. */
    if (p->hour_cost > 0) {
        for (int i = 0; i < m->nn; i++) {
            ind[1] = m->ycol[i], val[1] = 1, ind[2] = m->wcol[m->level[i]], val[2] = -1;
            add_row(lp, GLP_UP, 0, 0, 2, ind, val);
        }
        for (int j = 0; j + 1 < m->nh; j++) {
            ind[1] = m->wcol[j + 1], val[1] = 1, ind[2] = m->wcol[j], val[2] = -1;
            add_row(lp, GLP_UP, 0, 0, 2, ind, val);
        }
    }
    /* All or nothing: all, since the seed stands for nothing. */
    if (p->partial_deny) {
        int n = 0;
        for (int k = 0; k < m->np; k++) {
            const pair *pr = &m->pairs[k];
            ind[++n] = pr->ucol ? pr->ucol : pr->xcol;
            val[n] = pr->ucol ? 1 : (double)pr->avail;
        }
        add_row(lp, GLP_LO, (double)m->total, 0, n, ind, val);
    }
    free(ind);
    free(val);
    return true;
}

typedef struct run {
    const model *m;
    double *seed; /* column values, 1-based; NULL when there is no seed */
    uint64_t budget;
    double lb; /* the best bound seen */
    bool proven, out_of_budget;
} run;

static void on_tree(glp_tree *T, void *info)
{
    run *r = info;
    glp_prob *lp = glp_ios_get_prob(T);
    if (glp_ios_reason(T) == GLP_IHEUR && r->seed) {
        glp_ios_heur_sol(T, r->seed);
        r->seed = NULL;
    }
    int best = glp_ios_best_node(T);
    if (best)
        r->lb = fmax(r->lb, glp_ios_node_bound(T, best));
    /* Composites are integers: a bound within one of the incumbent proves it. */
    if (glp_mip_status(lp) == GLP_FEAS && ceil(r->lb - 1e-6) >= glp_mip_obj_val(lp) - 0.5) {
        r->proven = true;
        glp_ios_terminate(T);
        return;
    }
    if ((uint64_t)glp_get_it_cnt(lp) >= r->budget) {
        r->out_of_budget = true;
        glp_ios_terminate(T);
    }
}

bool omo_mip_solve(const omo_problem *p, int seed_nships, const int *seed_cand,
                   const int64_t *seed_take, uint64_t budget, int *nships, int *cand, int64_t *take,
                   omo_mip_result *res)
{
    model m = {0};
    if (!build(&m, p)) {
        model_free(&m);
        return false;
    }
    int L = m.L;
    memset(res, 0, sizeof *res);
    /* An iteration costs about the square of the model's size. */
    uint64_t size = (uint64_t)glp_get_num_rows(m.lp) + (uint64_t)glp_get_num_cols(m.lp) + 1;
    uint64_t iterations = budget / (size * size);
    if (iterations == 0) {
        model_free(&m);
        return false;
    }
    int64_t seed_units = 0, per[OMO_PLAN_MAX_SHIP];
    for (int s = 0; s < seed_nships; s++) {
        per[s] = 0;
        for (int l = 0; l < L; l++)
            per[s] += seed_take[(size_t)s * L + l];
        seed_units += per[s];
    }
    int64_t seed_comp = composite(
        &m, seed_units, plan_objective(p, seed_nships, seed_cand, seed_take), seed_nships);

    /* The seed as column values. */
    run r = {.m = &m, .budget = iterations, .lb = -INFINITY};
    double *seed = omo_xcalloc((size_t)m.ncols + 1, sizeof(double));
    bool seed_ok = seed_nships > 0 && (!p->partial_deny || seed_units == m.total);
    int top = -1;
    for (int s = 0; s < seed_nships && seed_ok; s++) {
        int i = 0;
        while (i < m.nn && m.cand[i] != seed_cand[s])
            i++;
        if (i == m.nn) {
            seed_ok = false;
            break;
        }
        seed[m.ycol[i]] = 1;
        top = m.level[i] > top ? m.level[i] : top;
        for (int k = 0; k < m.np; k++) {
            const pair *pr = &m.pairs[k];
            int64_t t = pr->node == i ? seed_take[(size_t)s * L + pr->line] : 0;
            if (t <= 0)
                continue;
            if (pr->xcol)
                seed[pr->xcol] = 1;
            if (pr->ucol)
                seed[pr->ucol] = (double)t;
        }
    }
    if (p->hour_cost > 0)
        for (int j = 0; j <= top; j++)
            seed[m.wcol[j]] = 1;
    if (seed_ok)
        r.seed = seed;

    glp_smcp smcp;
    glp_init_smcp(&smcp);
    smcp.msg_lev = GLP_MSG_OFF;
    smcp.it_lim = iterations > INT32_MAX ? INT32_MAX : (int)iterations;
    int status = GLP_UNDEF;
    int64_t best_comp = seed_comp;
    bool lp_done = glp_simplex(m.lp, &smcp) == 0;
    int lp_status = lp_done ? glp_get_status(m.lp) : GLP_UNDEF;
    if (lp_status == GLP_NOFEAS) {
        /* Nothing meets the constraints (all or nothing: not all): the empty plan is the
         * optimum, and the seed can only be it. */
        res->proven = true;
        r.lb = (double)seed_comp;
    } else if (lp_status == GLP_OPT) {
        r.lb = glp_get_obj_val(m.lp);
        glp_iocp iocp;
        glp_init_iocp(&iocp);
        iocp.msg_lev = GLP_MSG_OFF;
        iocp.cb_func = on_tree;
        iocp.cb_info = &r;
        iocp.br_tech = GLP_BR_MFV;
        iocp.bt_tech = GLP_BT_BLB;
        glp_intopt(m.lp, &iocp);
        status = glp_mip_status(m.lp);
        if (status == GLP_OPT && !r.out_of_budget)
            r.proven = true;
        if (status == GLP_NOFEAS)
            res->proven = true;
    }
    res->iterations = (uint64_t)glp_get_it_cnt(m.lp);

    if (status == GLP_OPT || status == GLP_FEAS) {
        /* The MIP's plan, node by node. */
        int n = 0;
        int64_t units = 0;
        int pc[OMO_PLAN_MAX_SHIP];
        int64_t *t = take;
        for (int i = 0, k = 0; i < m.nn; i++) {
            int64_t sum = 0;
            int k1 = k;
            while (k1 < m.np && m.pairs[k1].node == i)
                k1++;
            if (n < OMO_PLAN_MAX_SHIP)
                for (int l = 0; l < L; l++)
                    t[(size_t)n * L + l] = 0;
            for (; k < k1; k++) {
                const pair *pr = &m.pairs[k];
                int64_t u = pr->ucol ? llround(glp_mip_col_val(m.lp, pr->ucol))
                            : glp_mip_col_val(m.lp, pr->xcol) > 0.5 ? pr->avail
                                                                    : 0;
                if (u > 0 && n < OMO_PLAN_MAX_SHIP)
                    t[(size_t)n * L + pr->line] = u;
                sum += u;
            }
            if (sum > 0 && n < OMO_PLAN_MAX_SHIP) {
                pc[n++] = m.cand[i];
                units += sum;
            }
        }
        int64_t comp = composite(&m, units, plan_objective(p, n, pc, take), n);
        if (comp < seed_comp) {
            res->improved = true;
            *nships = n;
            memcpy(cand, pc, sizeof(int) * (size_t)n);
            best_comp = comp;
        }
        if (r.proven)
            r.lb = fmax(r.lb, glp_mip_obj_val(m.lp));
    }
    res->proven |= r.proven || (r.lb > -INFINITY && ceil(r.lb - 1e-6) >= (double)best_comp);

    /* Bounds in the contract's terms, from the composite's. */
    int64_t units = 0, obj;
    if (res->improved) {
        for (size_t i = 0; i < (size_t)*nships * (size_t)L; i++)
            units += take[i];
        obj = plan_objective(p, *nships, cand, take);
    } else {
        units = seed_units;
        obj = plan_objective(p, seed_nships, seed_cand, seed_take);
    }
    if (res->proven) {
        res->units_bound = units;
        res->bound = obj;
    } else {
        int64_t lbi = r.lb > 0 ? (int64_t)ceil(r.lb - 1e-6) : 0;
        res->units_bound = m.total - lbi / m.weight;
        int64_t rest = lbi - m.weight * (m.total - units) - m.K;
        int64_t cost = rest > 0 ? (rest + m.K) / (m.K + 1) : 0;
        res->bound = min64(cost * m.scale, obj);
    }
    free(seed);
    model_free(&m);
    return true;
}
