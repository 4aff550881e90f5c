/* What-if comparison of two rule sets over the same events (`omo rules diff`, contract
 * section 8): both are replayed by their own engine, and the final allocation of every order
 * is compared, order by order and in aggregate. */
#ifndef OMO_DIFF_H
#define OMO_DIFF_H

#include "engine.h"

typedef enum omo_diff_side { OMO_DIFF_OLD = 0, OMO_DIFF_NEW = 1 } omo_diff_side;

typedef enum omo_diff_format { OMO_DIFF_TEXT = 0, OMO_DIFF_JSON, OMO_DIFF_HTML } omo_diff_format;

#define OMO_DIFF_TOP       10 /* examples and moved nodes reported */
#define OMO_DIFF_HIST_BINS 12 /* at most this many promised-hours bins */

/* The figures of one side, over the final allocation of every order. An order is served
 * when its final allocation has at least one shipment; its promised hours are those of its
 * slowest shipment. */
typedef struct omo_diff_totals {
    uint64_t orders;
    uint64_t by_status[5]; /* by omo_alloc_status */
    uint64_t served;
    uint64_t shipments;
    uint64_t by_method[OMO_METHODS]; /* shipments */
    int64_t objective;               /* nano, sum over orders */
    int64_t shipping_cost;           /* micro, sum of shipment costs */
    int64_t units_allocated, units_backordered;
    int64_t hours_mean; /* milli, over served orders, rounded half up; 0 when none */
    int64_t hours_p95;  /* milli, nearest rank over served orders; 0 when none */
} omo_diff_totals;

/* A node whose allocated units (over final allocations) differ between the sides. */
typedef struct omo_diff_move {
    int node;
    int64_t units[2]; /* by omo_diff_side */
} omo_diff_move;

/* An order decided differently. order[side] indexes the side's orders (stream order of first
 * decision), -1 when the side never decided it. */
typedef struct omo_diff_example {
    const char *order_id; /* borrowed from the diff */
    int order[2];
    char *plan[2]; /* "DC-X 2u + S-0001 1u", "... , 1u backordered", or the status alone */
    omo_alloc_status status[2];
    int64_t objective[2]; /* nano */
} omo_diff_example;

typedef struct omo_diff_report {
    omo_diff_totals side[2];
    /* Orders whose final allocations differ in status, node set or units per node (an order
     * only one side decided counts too). */
    uint64_t changed_orders;
    omo_diff_example *examples; /* the first changed orders in stream order */
    size_t nexamples;           /* <= OMO_DIFF_TOP */
    omo_diff_move *moves;       /* by |new - old| descending, then node id; none unmoved */
    size_t nmoves;              /* <= OMO_DIFF_TOP */
    /* Served orders by promised hours: bin i holds [i * hist_width, (i + 1) * hist_width). */
    int64_t hist_width; /* milli-hours */
    size_t hist_bins;   /* 0 when no side served an order */
    uint64_t hist[2][OMO_DIFF_HIST_BINS];
} omo_diff_report;

/* What the report's header says about the inputs. */
typedef struct omo_diff_info {
    const char *network_path;
    const char *events_path;
    uint64_t events;  /* non-empty lines read */
    uint64_t skipped; /* of those, bad lines and refused events */
} omo_diff_info;

typedef struct omo_diff omo_diff;

/* Creates a comparison of old_rules and new_rules over net, with one engine per side. All
 * three are borrowed and must outlive the diff. */
omo_diff *omo_diff_create(const omo_network *net, const omo_rules *old_rules,
                          const omo_rules *new_rules);
void omo_diff_destroy(omo_diff *diff);

/* Leaves out of the report the orders first decided before since_ms (both engines still replay
 * everything, so that the state the window starts from is right). */
void omo_diff_since(omo_diff *diff, int64_t since_ms);

/* The engine of one side: feed both the same events, in the same order. */
omo_engine *omo_diff_engine(omo_diff *diff, omo_diff_side side);

/* Fills rep from the final allocations seen so far. Release with omo_diff_report_clear;
 * rep borrows order ids from diff. */
void omo_diff_report_build(const omo_diff *diff, omo_diff_report *rep);
void omo_diff_report_clear(omo_diff_report *rep);

/* Renders the report as text (fits 100 columns), one JSON object, or one self-contained HTML
 * page. Returns a NUL-terminated buffer the caller frees; *len (may be NULL) gets its
 * length. */
char *omo_diff_render(const omo_diff *diff, const omo_diff_report *rep, const omo_diff_info *info,
                      omo_diff_format format, size_t *len);

/* `omo rules diff --network N.yaml --events E.jsonl OLD.yaml NEW.yaml [--format text|json|html]
 * [--out FILE]` (argv[0] is "diff"). Returns the exit code: 0 ok, 1 runtime failure, 2 bad
 * usage or invalid configuration. */
int omo_cmd_rules_diff(int argc, char **argv);

#endif
