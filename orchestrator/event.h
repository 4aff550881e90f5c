/* Input events (contract section 4): orders and stock changes, parsed and validated. */
#ifndef OMO_EVENT_H
#define OMO_EVENT_H

#include "network.h"

#define OMO_MAX_LINES 64

typedef enum omo_event_type {
    OMO_EV_ORDER_CREATED = 0,
    OMO_EV_ORDER_CANCELLED,
    OMO_EV_STOCK_SNAPSHOT,
    OMO_EV_STOCK_DELTA,
    /* From the store side (the HTTP API writes them; a store system may send them too): */
    OMO_EV_PICK_CONFIRMED,     /* lines hold the units picked; pick_reason why a line is short */
    OMO_EV_SHIPMENT_SHIPPED,   /* handed to the carrier */
    OMO_EV_SHIPMENT_COLLECTED, /* handed to the customer */
    OMO_EV_STOCK_BIN,          /* where a store keeps a SKU (omo stock import-bins) */
    /* Checkout holds and node pauses (contract section 10; the HTTP API writes them, a checkout
     * system may send the holds on the orders topic): */
    OMO_EV_HOLD_PLACED,   /* hold_id, ttl_ms and a basket (channel, delivery, customer, lines) */
    OMO_EV_HOLD_RELEASED, /* hold_id */
    OMO_EV_HOLD_EXPIRED,  /* hold_id */
    OMO_EV_NODE_PAUSED,   /* node, pause_reason, until_ms, resource */
    OMO_EV_NODE_RESUMED   /* node */
} omo_event_type;

#define OMO_PAUSE_REASON_MAX   128
#define OMO_HOLD_TTL_DEFAULT_S 600
#define OMO_HOLD_TTL_MAX_S     14400

typedef struct omo_line {
    char line_id[OMO_ID_MAX + 1];
    char sku[OMO_ID_MAX + 1];
    int64_t qty; /* > 0 */
} omo_line;

/* One parsed event. Plain value, no heap memory: reuse one for a whole stream. */
typedef struct omo_event {
    omo_event_type type;
    char event_id[OMO_LONG_ID_MAX + 1]; /* stock events; "" otherwise */
    char order_id[OMO_LONG_ID_MAX + 1]; /* orders; optional on stock.delta */
    int64_t at_ms;                      /* created_at or at; valid when has_at */
    bool has_at;

    /* order.created */
    char channel[OMO_ID_MAX + 1]; /* "" when absent */
    double cust_lat, cust_lon;    /* ship orders */
    bool pickup;                  /* delivery.method == "pickup" */
    char service[OMO_ID_MAX + 1]; /* ship orders: delivery.service */
    int store;                    /* pickup orders: node index of delivery.store_id */
    omo_line lines[OMO_MAX_LINES];
    size_t nlines;

    /* stock.snapshot / stock.delta */
    int node; /* node index */
    char sku[OMO_ID_MAX + 1];
    int64_t on_hand; /* snapshot, >= 0 */
    int64_t delta;   /* delta */
    char reason[OMO_ID_MAX + 1];
    char bin[OMO_ID_MAX + 1]; /* snapshot, optional "AISLE-BAY-SHELF" */

    /* pick.confirmed / shipment.shipped / shipment.collected */
    char shipment_id[OMO_LONG_ID_MAX + 16];
    char pick_reason[OMO_MAX_LINES][16]; /* per line of pick.confirmed: "" or the short reason */

    /* holds: order.created may name the hold it follows */
    char hold_id[OMO_LONG_ID_MAX + 1];
    int64_t ttl_ms; /* hold.placed: ttl_seconds (default 600, at most 14,400) */
    /* node.paused */
    char pause_reason[OMO_PAUSE_REASON_MAX + 1];
    int64_t until_ms; /* 0 when not given */
    bool resource;    /* re-source its shipments not yet picked */
} omo_event;

/* Why an event was refused: the field (JSON path like "lines[1].qty", or "" for the whole
 * message) and what is wrong with it. `reason` is one of a fixed vocabulary:
 *   malformed_json  not JSON, or not an object or array at the top (field "")
 *   wrong_type      a value of the wrong JSON type; also a message that is not an object
 *                   (field "type")
 *   missing_field   a required field is absent or null (null counts as absent everywhere)
 *   unknown_type    `type` names no known event
 *   unknown_node    node_id or delivery.store_id names no node of the network
 *   out_of_range    a number or choice outside its domain: qty <= 0, negative on_hand, lat or
 *                   lon off the globe, delivery.method not ship/pickup, lines empty or longer
 *                   than OMO_MAX_LINES, quantities beyond the bounds of util.h (an order's
 *                   units OMO_MAX_QTY in all, on_hand and |delta| OMO_MAX_STOCK)
 *   too_long        a string longer than its field: order and event ids 128 bytes, others 64
 *   bad_id          an id that is empty or not [A-Za-z0-9_.-]
 *   bad_time        a time that is not RFC 3339
 *   bad_bin         a bin that is not AISLE-BAY-SHELF, each 1..9 decimal digits
 *   duplicate_line  a line_id used twice in one order
 * Unknown fields are ignored, so producers may add fields ahead of consumers. */
typedef struct omo_event_error {
    char field[64];
    char reason[32]; /* machine-readable: malformed_json, missing_field, wrong_type, ... */
    char message[256];
} omo_event_error;

/* Parses one JSON event and validates every field against the network. Returns true and fills
 * ev, or false and fills err; ev is then unspecified. */
OMO_MUST_CHECK bool omo_event_parse(const char *text, size_t len, const omo_network *net,
                                    omo_event *ev, omo_event_error *err);

const char *omo_event_type_name(omo_event_type t);

#endif
