/* The inventory view in memory: on hand and reserved per (node, SKU), the orders holding each
 * reservation, and units taken per (node, local day) against daily capacity. */
#ifndef OMO_INVENTORY_H
#define OMO_INVENTORY_H

#include "util.h"

typedef struct omo_stock {
    int node, sku;
    int64_t on_hand;
    int64_t reserved; /* unfulfilled units reserved by orders */
    int64_t held;     /* units kept by checkout holds */
    uint64_t fed;     /* what the availability feed last said of it (a hash), or 0 */
    char bin[16];     /* "AISLE-BAY-SHELF" or "" */
    int *holders;     /* orders (engine indices) holding a reservation here */
    size_t nholders, capholders;
    bool dirty;      /* changed since the last omo_inventory_drain_dirty */
    int slot;        /* its place in the SKU's dense arrays */
    int rlist, rpos; /* its place in the SKU's region lists, or -1 */
} omo_stock;

typedef struct omo_inventory omo_inventory;

omo_inventory *omo_inventory_create(void);
void omo_inventory_destroy(omo_inventory *inv);

/* A hint: about this many (node, SKU) records will exist. */
void omo_inventory_reserve(omo_inventory *inv, size_t records);

/* The SKU's interned id; with create false, -1 when never seen. */
int omo_inventory_sku(omo_inventory *inv, const char *sku, bool create);
const char *omo_inventory_sku_name(const omo_inventory *inv, int sku);
size_t omo_inventory_nskus(const omo_inventory *inv);

/* The record of (node, sku); with create, made at zero when missing, else NULL. The pointer
 * stays valid until the next call that creates a record. */
omo_stock *omo_inventory_get(omo_inventory *inv, int node, int sku, bool create);
/* Every record of the sku, whatever its node (index into the records, see _at). */
const int *omo_inventory_records_of(const omo_inventory *inv, int sku, size_t *n);
omo_stock *omo_inventory_at(omo_inventory *inv, int record);
size_t omo_inventory_nrecords(const omo_inventory *inv);

void omo_stock_hold(omo_stock *st, int order);
void omo_stock_unhold(omo_stock *st, int order);

/* The SKU's records as dense arrays, for scanning holders without touching the records:
 * nodes[i] and on hand minus reserved minus held, free[i], of record records[i]. */
void omo_inventory_holders(const omo_inventory *inv, int sku, const int **nodes,
                           const int64_t **free, size_t *n);

/* Regions: the owner may group nodes (region_of[node], regions numbered 0..) so that a SKU's
 * holders can be scanned region by region. Call once, before any record exists. */
void omo_inventory_set_regions(omo_inventory *inv, const int *region_of, size_t nnodes);

/* The SKU's holders in one region: slots into the arrays of omo_inventory_holders. */
typedef struct omo_region_slots {
    int region;
    int *slots;    /* into the arrays of omo_inventory_holders */
    int *nodes;    /* the same holders' nodes and on hand minus reserved, kept here too so */
    int64_t *free; /* that scanning a region reads one dense run */
    size_t n, cap;
} omo_region_slots;
const omo_region_slots *omo_inventory_regions_of(const omo_inventory *inv, int sku, size_t *n);

/* Call after every change to a record's on hand or reserved: refreshes the SKU's dense arrays
 * and marks the record changed, for whoever persists the view. */
void omo_inventory_touch(omo_inventory *inv, omo_stock *st);
/* Calls cb for every record changed since the last call, and clears the marks. */
void omo_inventory_drain_dirty(omo_inventory *inv, void (*cb)(void *ctx, omo_stock *st), void *ctx);

/* Units taken at node on its local day. */
int64_t omo_inventory_day_used(const omo_inventory *inv, int node, int64_t day);
/* The same without touching the cache: safe beside other readers. */
int64_t omo_inventory_day_peek(const omo_inventory *inv, int node, int64_t day);
void omo_inventory_day_add(omo_inventory *inv, int node, int64_t day, int64_t units);

#endif
