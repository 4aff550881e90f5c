/* Look-ahead sourcing (contract section 13): the demand forecast of routing.yaml's `lookahead:`
 * block, and the price of each unit of stock at a node, the dual value of its supply row in a
 * transportation LP (GLPK) over the expected demand of the coming horizon.
 *
 * The prices are computed from a snapshot of the view taken after every refresh_events-th
 * applied event, on a thread of their own, and take effect refresh_events applied events later,
 * so that a replay of the same events repeats them exactly. */
#ifndef OMO_LOOKAHEAD_H
#define OMO_LOOKAHEAD_H

#include "util.h"

typedef struct omo_network omo_network;
typedef struct omo_rules omo_rules;
typedef struct omo_inventory omo_inventory;

/* One demand point of the forecast: expected units of its SKU per day near (lat, lon). */
typedef struct omo_forecast_point {
    double lat, lon;
    double units_per_day;
} omo_forecast_point;

/* The points of one SKU: points[first .. first + n). */
typedef struct omo_forecast_sku {
    char sku[OMO_ID_MAX + 1];
    size_t first, n;
} omo_forecast_sku;

typedef struct omo_lookahead {
    char *forecast;             /* the forecast file's path, resolved against the rules file */
    omo_forecast_point *points; /* grouped by SKU, in file order within a SKU */
    size_t npoints;
    omo_forecast_sku *skus; /* sorted by SKU in byte order */
    size_t nskus;
    omo_strmap sku_index;   /* sku -> index into skus */
    double horizon_hours;   /* default 24 */
    int64_t horizon_end_ms; /* extension `horizon_end`: demand is counted up to it; 0: none */
    int64_t refresh_events; /* default 5000 */
    double weight;          /* default 1; 0 turns look-ahead off */
    omo_loc loc;            /* the block's mapping */
} omo_lookahead;

/* Reads the forecast CSV (header sku,lat,lon,units_per_day) into la. Every bad row is reported
 * to diag as FILE:LINE:COL; returns false when there was any. */
OMO_MUST_CHECK bool omo_lookahead_read_forecast(omo_lookahead *la, const char *path,
                                                omo_diag *diag);
/* Frees what la holds (not la itself). */
void omo_lookahead_free(omo_lookahead *la);

/* ---- the LP ---------------------------------------------------------------------------- */

/* The transportation LP's reusable state for one network and one set of rules (with a
 * lookahead block): distances from nodes to demand points, the cost of an unserved unit. */
typedef struct omo_price_lp omo_price_lp;

omo_price_lp *omo_price_lp_create(const omo_network *net, const omo_rules *rules);
void omo_price_lp_destroy(omo_price_lp *lp);

/* Solves the LP over atp[f * nnodes + n] (ATP of forecast SKU f at node n) and writes each
 * unit's price, the negated dual of its supply row (never below 0), in millionths of money to
 * price[f * nnodes + n]. joint: one LP for all SKUs, else one per SKU (same prices up to
 * degenerate ties; kept for measuring which is faster). Thread: any, one call at a time. */
void omo_price_lp_solve(omo_price_lp *lp, const int64_t *atp, bool joint, int64_t *price);

/* The hours of demand the LP counts (horizon_hours until set). */
void omo_price_lp_set_hours(omo_price_lp *lp, double hours);

/* The same for forecast SKU f alone: writes price[f * nnodes + n] for every n, and when flow is
 * not NULL, what the solution ships from each node to flow[f * nnodes + n]. */
void omo_price_lp_solve_sku(omo_price_lp *lp, const int64_t *atp, size_t f, int64_t *price,
                            double *flow);

/* The same again, from the basis of the SKU's last solve when the nodes holding ATP still have
 * their rows (else from scratch): the prices are those of an optimum of the same LP, the same
 * for the same sequence of calls. Keeps each SKU's problem; the thread that made them must
 * drop them (omo_price_lp_drop_warm, or destroy). */
void omo_price_lp_solve_warm(omo_price_lp *lp, const int64_t *atp, size_t f, int64_t *price,
                             double *flow);
void omo_price_lp_drop_warm(omo_price_lp *lp);

/* ATP of every forecast SKU at every node in inv, as the LP takes it: on hand less reserved less
 * the safety stock of the node and of the rules whose `when` names no channel or service. */
void omo_price_lp_snapshot(const omo_price_lp *lp, omo_inventory *inv, int64_t *atp);

/* ---- prices in a running engine -------------------------------------------------------- */

/* The prices one engine uses: refreshed from its view every refresh_events applied events. */
typedef struct omo_lookahead_run omo_lookahead_run;

/* NULL when rules have no lookahead block, or its weight is 0. */
omo_lookahead_run *omo_lookahead_run_create(const omo_network *net, const omo_rules *rules);
/* Waits for a computation in flight. Accepts NULL. */
void omo_lookahead_run_destroy(omo_lookahead_run *run);

/* Call after the applied-th event was applied (1-based, counting events that took effect), now_ms
 * the latest event time seen (where the horizon starts):
 * installs the prices computed refresh_events events ago, and every refresh_events events takes
 * a snapshot of inv and starts computing the next ones. Thread: the engine's. */
void omo_lookahead_run_applied(omo_lookahead_run *run, uint64_t applied, omo_inventory *inv,
                               int64_t now_ms);

/* The forecast's index of sku, or -1 when it has none or no prices are in effect yet. */
int omo_lookahead_run_sku(const omo_lookahead_run *run, const char *sku);
/* weight x the price of a unit of forecast SKU fsku at node, in millionths of money; 0 for
 * fsku -1. Read only: readers deciding beside the engine's thread may call both (the prices
 * change only while an event is applied). */
int64_t omo_lookahead_run_price(const omo_lookahead_run *run, int fsku, int node);

#endif
