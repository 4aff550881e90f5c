/* Routing rules (routing.yaml): objective weights, services, zones, and ops rules. */
#ifndef OMO_RULES_H
#define OMO_RULES_H

#include "lookahead.h"
#include "network.h"

typedef enum omo_method {
    OMO_METHOD_WAREHOUSE = 0,
    OMO_METHOD_SHIP_FROM_STORE = 1,
    OMO_METHOD_CLICK_AND_COLLECT = 2
} omo_method;
#define OMO_METHODS       3
#define OMO_METHOD_BIT(m) (1u << (m))
const char *omo_method_name(omo_method m);

typedef struct omo_zone {
    double max_km;
    int64_t cost;  /* micro */
    int64_t hours; /* milli-hours */
    omo_loc loc;
} omo_zone;

typedef struct omo_service {
    char *name;
    unsigned from_mask; /* OMO_TYPE_BIT()s; all types when `from` is omitted */
    omo_zone *zones;    /* max_km strictly increasing */
    size_t nzones;
    omo_loc loc;
} omo_service;

/* One entry of `rules:`. Absent `when` keys are NULL / -1; absent actions are 0 / -1. */
typedef struct omo_rule {
    char *name;
    /* when */
    char *node_id;
    int node; /* resolved index, -1 when absent or no network was given */
    int node_type;
    char *sku, *sku_tag, *channel, *service;
    /* actions */
    unsigned allow_node_types; /* 0 = no such action */
    char **deny_node_ids;
    int *deny_nodes; /* resolved indices (-1 when no network was given) */
    size_t ndeny_nodes;
    unsigned deny_methods; /* OMO_METHOD_BIT()s */
    int64_t safety_stock;  /* -1 = no such action */
    omo_loc loc;
} omo_rule;

typedef struct omo_rules {
    char *path;
    int64_t version;
    int64_t hour_cost;     /* micro per hour */
    int64_t split_penalty; /* micro per shipment beyond the first */
    int max_shipments;     /* default 3 */
    bool split_lines;      /* default false */
    bool partial_deny;     /* partial: deny */
    omo_service *services;
    size_t nservices;
    bool has_transfer; /* pickup.transfer present */
    omo_service transfer;
    omo_rule *rules;
    size_t nrules;
    omo_lookahead *lookahead; /* the `lookahead:` block, NULL without one (contract section 13) */
    char version_hash[17];    /* FNV-1a 64 of the file's bytes, 16 hex digits */
} omo_rules;

/* Loads routing.yaml. With a network, node ids are checked and resolved; without one only the
 * file itself is validated. Returns NULL and fills diag with every error found. */
omo_rules *omo_rules_load(const char *path, const omo_network *net, omo_diag *diag);
omo_rules *omo_rules_parse(const char *name, const char *buf, size_t len, const omo_network *net,
                           omo_diag *diag);
void omo_rules_destroy(omo_rules *rules);

/* Index of the service called name, or -1. */
int omo_rules_find_service(const omo_rules *rules, const char *name);

#endif
