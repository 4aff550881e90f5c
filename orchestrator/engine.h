/* The decision engine: applies events in stream order to the inventory view, decides orders,
 * re-sources reservations that no longer fit, retries backorders, and emits every revision.
 * Single-threaded: one engine is driven by one thread. */
#ifndef OMO_ENGINE_H
#define OMO_ENGINE_H

#include "event.h"
#include "explain.h"
#include "inventory.h"
#include "picklist.h"
#include "rules.h"

typedef enum omo_alloc_status {
    OMO_ALLOC_ALLOCATED = 0,
    OMO_ALLOC_PARTIAL,
    OMO_ALLOC_BACKORDERED,
    OMO_ALLOC_REJECTED,
    OMO_ALLOC_CANCELLED
} omo_alloc_status;
const char *omo_alloc_status_name(omo_alloc_status s);

/* A shipment's life (contract section 7): allocated -> picked -> shipped | collected, or
 * -> short, or -> cancelled. A short shipment keeps the units that were picked and may still be
 * shipped or collected with them. Changed only through the engine's one move function. */
typedef enum omo_ship_state {
    OMO_SHIP_ALLOCATED = 0,
    OMO_SHIP_PICKED,
    OMO_SHIP_SHORT,
    OMO_SHIP_SHIPPED,
    OMO_SHIP_COLLECTED,
    OMO_SHIP_CANCELLED
} omo_ship_state;
const char *omo_ship_state_name(omo_ship_state s);

/* One shipment of an allocation. qty[l] are the units of the order's line l. */
typedef struct omo_shipment {
    int seq; /* shipment id is ORDER/seq */
    int node;
    omo_ship_state state;
    bool reserved; /* its open units are counted in the inventory's reservations */
    omo_method method;
    int64_t cost;  /* micro */
    int64_t hours; /* milli */
    int64_t day;   /* local day its units count against capacity */
    int64_t *qty;  /* per line: units */
    int64_t *done; /* per line: units already fulfilled (consumed by a stock.delta) */
} omo_shipment;

/* A revision of an order's allocation, as handed to the sink. Valid during the call only. */
typedef struct omo_allocation {
    const char *order_id;
    int revision;
    omo_alloc_status status;
    const char *reason; /* rejected: why; else NULL */
    int64_t decided_at_ms;
    const char *rules_version;
    int64_t objective; /* nano */
    const omo_line *lines;
    int nlines;
    const char *service; /* ship: the service; pickup: "pickup" */
    int pickup_store;    /* node index, or -1 */
    const omo_shipment *ships;
    int nships;
    const int64_t *backordered; /* per line */
    /* The decision's budget ran out before its plan was proven optimal (extension): no plan
     * allocates more than units_bound units, and none with as many units as this one has an
     * objective below bound (nano). */
    bool unproven;
    int64_t bound, units_bound;
} omo_allocation;

typedef void (*omo_sink_fn)(void *ctx, const omo_allocation *alloc);

/* A shipment status message (contract section 4), as handed to the status sink. */
typedef struct omo_shipment_status {
    const char *order_id;
    int seq; /* shipment id is ORDER/seq */
    int node;
    omo_ship_state status;
    int64_t at_ms;
    const omo_line *lines;
    const int64_t *qty; /* per line: units in the shipment */
    int nlines;
} omo_shipment_status;

typedef void (*omo_status_fn)(void *ctx, const omo_shipment_status *st);

typedef enum omo_apply_result {
    OMO_APPLY_OK = 0,
    OMO_APPLY_DUPLICATE, /* already applied: no effect */
    OMO_APPLY_INVALID,   /* refused; err says why */
    OMO_APPLY_CONFLICT   /* a move the shipment's state does not allow; err->field is the state */
} omo_apply_result;

typedef struct omo_engine_stats {
    uint64_t events, duplicates, invalid;
    uint64_t orders, decisions, revisions, resourced, retried;
    uint64_t solver_sets;
    uint64_t unproven; /* decisions whose budget ran out before their plan was proven optimal */
} omo_engine_stats;

typedef struct omo_engine omo_engine;

/* Creates an engine over net and rules (both borrowed: they must outlive the engine, or be
 * replaced with omo_engine_set_rules). sink receives every revision, in order. */
omo_engine *omo_engine_create(const omo_network *net, const omo_rules *rules, omo_sink_fn sink,
                              void *sink_ctx);
void omo_engine_destroy(omo_engine *eng);

/* The node of shipment "ORDER/N", its state and its order's pickup store (-1 for a ship order),
 * or -1 when there is no such shipment. state and pickup_store may be NULL. */
int omo_engine_find_shipment(omo_engine *eng, const char *shipment_id, omo_ship_state *state,
                             int *pickup_store);

/* Shipment status messages go to fn (NULL: nowhere). */
void omo_engine_set_status_sink(omo_engine *eng, omo_status_fn fn, void *ctx);

/* A hint: about this many events will be applied (sizes the duplicate index once). */
void omo_engine_expect(omo_engine *eng, size_t events);

/* With exhaustive, every node holding an order's SKUs is looked at, none skipped by its region's
 * bound: decisions must come out the same (tests compare both). */
void omo_engine_set_exhaustive(omo_engine *eng, bool exhaustive);
/* The solver's budgets for every later decision (solver.h; 0: the defaults). Decisions depend
 * on them: for tests and benchmarks, not for a service whose replays must agree. */
void omo_engine_set_budgets(omo_engine *eng, uint64_t search, uint64_t mip);
/* How many regions were skipped by their bound so far. */
uint64_t omo_engine_regions_skipped(const omo_engine *eng);

/* Swaps the rules used by every later decision. */
void omo_engine_set_rules(omo_engine *eng, const omo_rules *rules);

/* Applies one parsed event. Revisions it causes reach the sink before it returns. */
omo_apply_result omo_engine_apply(omo_engine *eng, const omo_event *ev, omo_event_error *err);

const omo_engine_stats *omo_engine_stats_get(const omo_engine *eng);
omo_inventory *omo_engine_inventory(omo_engine *eng);

/* The summary of the current state, over every order seen. */
typedef struct omo_summary {
    uint64_t orders;
    uint64_t by_status[5];
    int64_t units_ordered, units_allocated, units_backordered;
    uint64_t ships_by_method[OMO_METHODS];
    uint64_t split_orders; /* orders with more than one shipment */
    int64_t objective;     /* nano, sum over orders */
    int64_t ship_cost;     /* micro, sum of shipment costs */
    int64_t hours_sum;     /* milli, sum of promised hours over orders with shipments */
    uint64_t hours_orders;
} omo_summary;
void omo_engine_summary(const omo_engine *eng, omo_summary *out);
/* Units allocated now (open orders, fulfilled units included) per node: units[net->nnodes]. */
void omo_engine_node_units(const omo_engine *eng, int64_t *units);

/* From now on, every decision of order_id that becomes a revision is explained to fn, on the
 * caller's thread, just before the revision reaches the sink. NULL stops it. */
void omo_engine_explain(omo_engine *eng, const char *order_id, omo_explain_fn fn, void *ctx);

/* The open picks of a store (shipments from it, allocated and not yet picked, of the oldest
 * max_orders orders when max_orders > 0), unordered: see omo_picklist_sort. Returns false
 * when node is not a store. */
bool omo_engine_picklist(const omo_engine *eng, int node, int max_orders, int64_t now,
                         omo_picklist *out);

/* ---- holds, pauses (contract section 10) ---- */

/* Whether node is paused, and why (*reason: "" when none was given). */
bool omo_engine_node_paused(const omo_engine *eng, int node, const char **reason);

/* What is due at wall-clock time now: a live hold past its expiry (hold_id, node -1), a pause
 * past its `until` (type OMO_EV_NODE_RESUMED, hold_id NULL). The service applies an event for
 * each, recorded like any other, so that a replay repeats it. */
typedef void (*omo_due_fn)(void *ctx, omo_event_type type, const char *hold_id, int node);
void omo_engine_due(const omo_engine *eng, int64_t now, omo_due_fn fn, void *ctx);

/* The hold as POST /holds answers it, {"hold_id","expires_at","live","option"}, in heap memory
 * (the caller frees it), or NULL when no hold of that id was ever placed. *live (when asked)
 * says whether it still holds its units. */
char *omo_engine_hold_json(const omo_engine *eng, const char *hold_id, bool *live);
size_t omo_engine_live_holds(const omo_engine *eng);
/* The latest event time applied. */
int64_t omo_engine_clock(const omo_engine *eng);

/* ---- reads beside the stream ----
 * Everything below may run on any thread, beside other readers, but never beside
 * omo_engine_apply or omo_engine_set_rules (the service guards the engine with a rwlock). */

/* A (node, SKU) as GET /availability shows it. */
typedef struct omo_avail {
    int64_t on_hand, reserved, held, safety, atp;
    bool paused; /* then atp is 0 */
} omo_avail;

/* The availability of a stock record: atp = on hand - reserved - held - safety (at least 0),
 * the safety stock the node's or that of the last rule whose `when` the query decides (rules
 * naming a service never; naming a channel only when channel, which may be NULL, is theirs). */
void omo_engine_avail(const omo_engine *eng, const omo_stock *st, const char *channel,
                      omo_avail *out);

/* A reader's own scratch for deciding beside the stream: one per thread. */
typedef struct omo_reader omo_reader;
omo_reader *omo_reader_create(const omo_engine *eng);
void omo_reader_destroy(omo_reader *rd);

/* Decides the basket of ev (channel, delivery, customer, lines: an order.created without its id)
 * exactly as an order arriving now would be decided, through the decision's own code, and
 * reserves nothing. Writes the option (an allocation without order_id, revision, rules_version
 * or shipment ids, plus promised_hours and promised_by) into *buf, grown with realloc; returns
 * its length, and its status and objective for ordering. */
size_t omo_engine_promise(const omo_engine *eng, omo_reader *rd, const omo_event *ev, int64_t now,
                          char **buf, size_t *cap, omo_alloc_status *status, int64_t *objective);

/* Writes a shipment status as one JSON line (with '\n') into *buf. Returns its length. */
size_t omo_shipment_status_json(const omo_shipment_status *st, const omo_network *net, char **buf,
                                size_t *cap);

/* Writes the allocation as one JSON line (with '\n') into *buf (grown with realloc). Returns
 * its length. */
size_t omo_allocation_json(const omo_allocation *alloc, const omo_network *net, char **buf,
                           size_t *cap);

#endif
