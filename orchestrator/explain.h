/* Why an order went where it went: every node the decision looked at, its terms, what excluded
 * it, and the runner-up plan. Built by the engine (omo_engine_explain), printed by `omo explain`
 * and GET /orders/{id}/explain. */
#ifndef OMO_EXPLAIN_H
#define OMO_EXPLAIN_H

#include "event.h"
#include "rules.h"

typedef struct omo_explain_line {
    int64_t on_hand, reserved, safety;
    const char *safety_from; /* the rule that set the safety stock, or NULL for the node's own */
    int64_t atp;             /* on hand - reserved - safety, at least 0 */
    const char *excluded;    /* why the node may not serve this line, or NULL */
    int64_t chosen;          /* units of the line the chosen plan takes here */
    int64_t runner_up;       /* units of the line the runner-up takes here */
    int64_t price;           /* look-ahead: weight x a unit's price here, micro; 0 without */
} omo_explain_line;

typedef struct omo_explain_node {
    int node;
    omo_method method;
    double km;             /* to the customer, or to the pickup store for a transfer; 0 for it */
    int zone;              /* index into the service's (or transfer's) zones; -1 when none */
    double zone_max_km;    /* that zone's max_km */
    int64_t cost;          /* zone cost + handling, micro */
    int64_t hours;         /* handling + zone hours, milli */
    int64_t pick;          /* per unit, micro */
    int64_t capacity_left; /* units still allowed today; -1 when unlimited */
    const char *excluded;  /* why the node cannot serve the order at all, or NULL */
    omo_explain_line *lines;
} omo_explain_node;

typedef struct omo_explain_plan {
    bool present;
    int64_t units;
    int64_t objective; /* nano, the real objective (contract section 5) */
    int64_t priced;    /* nano: look-ahead's weight x the prices of its units */
    int nships;
    int nodes[16];
} omo_explain_plan;

typedef struct omo_explanation {
    const char *order_id;
    int revision; /* the revision this decision became */
    int64_t decided_at_ms;
    const char *rules_version;
    const char *service;
    int pickup_store; /* node index or -1 */
    const omo_line *lines;
    int nlines;
    const omo_explain_node *nodes; /* every node holding a record of one of the order's SKUs */
    int nnodes;
    int nodes_without_stock; /* nodes of the network holding none of the order's SKUs */
    int max_shipments;
    bool split_lines, partial_deny;
    omo_explain_plan chosen, runner_up;
    bool lookahead;          /* look-ahead priced some unit the decision looked at */
    double weight;           /* look-ahead's weight */
    omo_explain_plan myopic; /* with prices: the plan the decision would take without them */
    const char *rejected;    /* the order's rejection reason, when rejected */
} omo_explanation;

typedef void (*omo_explain_fn)(void *ctx, const omo_explanation *ex);

/* The explanation as readable text / as JSON; the caller frees the string. */
char *omo_explain_text(const omo_explanation *ex, const omo_network *net);
char *omo_explain_json(const omo_explanation *ex, const omo_network *net);

#endif
