/* The fulfilment network (network.yaml): warehouses and stores. */
#ifndef OMO_NETWORK_H
#define OMO_NETWORK_H

#include "util.h"

typedef enum omo_node_type { OMO_NODE_WAREHOUSE = 0, OMO_NODE_STORE = 1 } omo_node_type;
#define OMO_NODE_TYPES  2
#define OMO_TYPE_BIT(t) (1u << (t))

typedef struct omo_node {
    char id[OMO_ID_MAX + 1];
    omo_node_type type;
    double lat, lon;
    char timezone[64]; /* IANA name; "UTC" when omitted */
    int tz;            /* index into the process time zone table (tz.h) */
    bool ship, pickup;
    int64_t pick_cost_per_unit; /* micro */
    int64_t handling_cost;      /* micro, per shipment */
    int64_t handling_hours;     /* milli-hours */
    int64_t daily_capacity;     /* units per local day; -1 = unlimited */
    int64_t safety_stock;       /* units */
    omo_loc loc;                /* the node's mapping in the file */
} omo_node;

typedef struct omo_sku_info {
    char sku[OMO_ID_MAX + 1];
    char **tags;
    size_t ntags;
    omo_loc loc;
} omo_sku_info;

/* Nodes are kept sorted by id in byte order, so a node's index orders like its id. */
typedef struct omo_network {
    char *path;
    omo_node *nodes;
    size_t nnodes;
    omo_sku_info *skus;
    size_t nskus;
    omo_strmap node_index; /* id -> index */
    omo_strmap sku_index;  /* sku -> index into skus */
} omo_network;

/* Loads and validates network.yaml. Returns NULL and fills diag with every error found.
 * The caller owns the result. */
omo_network *omo_network_load(const char *path, omo_diag *diag);
/* The same from a buffer; `name` is used in error locations. */
omo_network *omo_network_parse(const char *name, const char *buf, size_t len, omo_diag *diag);
void omo_network_destroy(omo_network *net);

/* Index of node id, or -1. */
int omo_network_find(const omo_network *net, const char *id);
/* True when the sku is listed under skus: with that tag. */
bool omo_network_sku_has_tag(const omo_network *net, const char *sku, const char *tag);

const char *omo_node_type_name(omo_node_type t);

#endif
