#include "inventory.h"

#include <stdlib.h>
#include <string.h>

/* Open addressing from a 64-bit key to an int value (-1 = empty slot). */
typedef struct i64slot {
    uint64_t key;
    int64_t val;
    bool used;
} i64slot;

/* Open addressing from a 64-bit key to a 64-bit value; one slot array, one line per probe. */
typedef struct i64map {
    i64slot *slots;
    size_t cap, count;
} i64map;

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    return k ^ (k >> 33);
}

static size_t i64map_slot(const i64map *m, uint64_t key)
{
    size_t mask = m->cap - 1, i = (size_t)mix(key) & mask;
    while (m->slots[i].used && m->slots[i].key != key)
        i = (i + 1) & mask;
    return i;
}

/* Makes room for n keys at once, sparing the growth on the way. */
static void i64map_reserve(i64map *m, size_t n)
{
    size_t cap = m->cap ? m->cap : 1024;
    while (cap < n * 2)
        cap *= 2;
    if (cap <= m->cap)
        return;
    i64map old = *m;
    m->cap = cap;
    m->slots = omo_table_alloc(m->cap * sizeof(i64slot));
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].used)
            m->slots[i64map_slot(m, old.slots[i].key)] = old.slots[i];
    omo_table_free(old.slots, old.cap * sizeof(i64slot));
}

static int64_t *i64map_find(i64map *m, uint64_t key, bool create)
{
    if (create && (m->count + 1) * 2 > m->cap)
        i64map_reserve(m, m->cap ? m->cap : 512);
    if (!m->cap)
        return NULL;
    i64slot *s = &m->slots[i64map_slot(m, key)];
    if (!s->used) {
        if (!create)
            return NULL;
        *s = (i64slot){key, 0, true};
        m->count++;
    }
    return &s->val;
}

static void i64map_free(i64map *m)
{
    omo_table_free(m->slots, m->cap * sizeof(i64slot));
}

typedef struct sku_entry {
    char *name;
    int *records;
    int *nodes;
    int64_t *free;
    size_t nrecords, cap;
    omo_region_slots *regions; /* its holders by region, when regions are set */
    size_t nregions, capregions;
} sku_entry;

struct omo_inventory {
    omo_strmap sku_ids;
    sku_entry *skus;
    size_t nskus, capskus;
    omo_stock *stock;
    size_t nstock, capstock;
    i64map stock_index; /* node << 32 | sku -> record */
    i64map day_used;    /* node << 40 ^ day -> units */
    int64_t *cache_day; /* per node: the day last asked about, and its units (a mirror) */
    int64_t *cache_used;
    size_t cap_cache;
    int *dirty;
    size_t ndirty, capdirty;
    int *region_of; /* per node, or NULL */
    size_t nregion_of;
};

omo_inventory *omo_inventory_create(void)
{
    return omo_xcalloc(1, sizeof(omo_inventory));
}

void omo_inventory_destroy(omo_inventory *inv)
{
    if (!inv)
        return;
    for (size_t i = 0; i < inv->nskus; i++) {
        free(inv->skus[i].name);
        free(inv->skus[i].records);
        free(inv->skus[i].nodes);
        free(inv->skus[i].free);
        for (size_t r = 0; r < inv->skus[i].nregions; r++) {
            free(inv->skus[i].regions[r].slots);
            free(inv->skus[i].regions[r].nodes);
            free(inv->skus[i].regions[r].free);
        }
        free(inv->skus[i].regions);
    }
    for (size_t i = 0; i < inv->nstock; i++)
        free(inv->stock[i].holders);
    free(inv->skus);
    free(inv->stock);
    free(inv->dirty);
    free(inv->region_of);
    omo_strmap_free(&inv->sku_ids);
    i64map_free(&inv->stock_index);
    i64map_free(&inv->day_used);
    free(inv->cache_day);
    free(inv->cache_used);
    free(inv);
}

int omo_inventory_sku(omo_inventory *inv, const char *sku, bool create)
{
    int id = omo_strmap_get(&inv->sku_ids, sku);
    if (id >= 0 || !create)
        return id;
    id = (int)inv->nskus;
    if (!omo_strmap_put(&inv->sku_ids, sku, id))
        abort();
    omo_grow((void **)&inv->skus, &inv->capskus, inv->nskus + 1, sizeof(sku_entry));
    inv->skus[inv->nskus++] = (sku_entry){.name = omo_xstrdup(sku)};
    return id;
}

const char *omo_inventory_sku_name(const omo_inventory *inv, int sku)
{
    return inv->skus[sku].name;
}

size_t omo_inventory_nskus(const omo_inventory *inv)
{
    return inv->nskus;
}

omo_stock *omo_inventory_get(omo_inventory *inv, int node, int sku, bool create)
{
    uint64_t key = (uint64_t)(uint32_t)node << 32 | (uint32_t)sku;
    int64_t *slot = i64map_find(&inv->stock_index, key, false);
    if (slot)
        return &inv->stock[*slot];
    if (!create)
        return NULL;
    omo_grow((void **)&inv->stock, &inv->capstock, inv->nstock + 1, sizeof(omo_stock));
    int rec = (int)inv->nstock++;
    inv->stock[rec] = (omo_stock){.node = node, .sku = sku, .rlist = -1, .rpos = -1};
    *i64map_find(&inv->stock_index, key, true) = rec;
    sku_entry *se = &inv->skus[sku];
    if (se->nrecords + 1 > se->cap) {
        se->cap = se->cap ? se->cap * 2 : 4;
        se->records = omo_xrealloc(se->records, sizeof(int) * se->cap);
        se->nodes = omo_xrealloc(se->nodes, sizeof(int) * se->cap);
        se->free = omo_xrealloc(se->free, sizeof(int64_t) * se->cap);
    }
    inv->stock[rec].slot = (int)se->nrecords;
    se->records[se->nrecords] = rec;
    se->nodes[se->nrecords] = node;
    se->free[se->nrecords] = 0;
    if (inv->region_of && (size_t)node < inv->nregion_of) {
        int region = inv->region_of[node];
        size_t r = 0;
        while (r < se->nregions && se->regions[r].region != region)
            r++;
        if (r == se->nregions) {
            omo_grow((void **)&se->regions, &se->capregions, r + 1, sizeof(omo_region_slots));
            se->regions[se->nregions++] = (omo_region_slots){.region = region};
        }
        omo_region_slots *rs = &se->regions[r];
        if (rs->n + 1 > rs->cap) {
            rs->cap = rs->cap ? rs->cap * 2 : 4;
            rs->slots = omo_xrealloc(rs->slots, sizeof(int) * rs->cap);
            rs->nodes = omo_xrealloc(rs->nodes, sizeof(int) * rs->cap);
            rs->free = omo_xrealloc(rs->free, sizeof(int64_t) * rs->cap);
        }
        inv->stock[rec].rlist = (int)r;
        inv->stock[rec].rpos = (int)rs->n;
        rs->slots[rs->n] = (int)se->nrecords;
        rs->nodes[rs->n] = node;
        rs->free[rs->n++] = 0;
    }
    se->nrecords++;
    return &inv->stock[rec];
}

const int *omo_inventory_records_of(const omo_inventory *inv, int sku, size_t *n)
{
    *n = inv->skus[sku].nrecords;
    return inv->skus[sku].records;
}

omo_stock *omo_inventory_at(omo_inventory *inv, int record)
{
    return &inv->stock[record];
}

size_t omo_inventory_nrecords(const omo_inventory *inv)
{
    return inv->nstock;
}

void omo_stock_hold(omo_stock *st, int order)
{
    for (size_t i = 0; i < st->nholders; i++)
        if (st->holders[i] == order)
            return;
    omo_grow((void **)&st->holders, &st->capholders, st->nholders + 1, sizeof(int));
    st->holders[st->nholders++] = order;
}

void omo_stock_unhold(omo_stock *st, int order)
{
    for (size_t i = 0; i < st->nholders; i++)
        if (st->holders[i] == order) {
            st->holders[i] = st->holders[--st->nholders];
            return;
        }
}

static uint64_t day_key(int node, int64_t day)
{
    return (uint64_t)(uint32_t)node << 40 ^ (uint64_t)(day & 0xffffffffff);
}

int64_t omo_inventory_day_used(const omo_inventory *inv, int node, int64_t day)
{
    omo_inventory *mut = (omo_inventory *)inv;
    if ((size_t)node >= mut->cap_cache) {
        size_t ncap = mut->cap_cache ? mut->cap_cache : 64;
        while (ncap <= (size_t)node)
            ncap *= 2;
        mut->cache_day = omo_xrealloc(mut->cache_day, sizeof(int64_t) * ncap);
        mut->cache_used = omo_xrealloc(mut->cache_used, sizeof(int64_t) * ncap);
        for (size_t i = mut->cap_cache; i < ncap; i++)
            mut->cache_day[i] = INT64_MIN;
        mut->cap_cache = ncap;
    }
    if (mut->cache_day[node] != day) {
        int64_t *v = i64map_find(&mut->day_used, day_key(node, day), false);
        mut->cache_day[node] = day;
        mut->cache_used[node] = v ? *v : 0;
    }
    return mut->cache_used[node];
}

int64_t omo_inventory_day_peek(const omo_inventory *inv, int node, int64_t day)
{
    if (!inv->day_used.cap)
        return 0;
    const i64slot *s = &inv->day_used.slots[i64map_slot(&inv->day_used, day_key(node, day))];
    return s->used ? s->val : 0;
}

void omo_inventory_day_add(omo_inventory *inv, int node, int64_t day, int64_t units)
{
    *i64map_find(&inv->day_used, day_key(node, day), true) += units;
    if ((size_t)node < inv->cap_cache && inv->cache_day[node] == day)
        inv->cache_used[node] += units;
}

void omo_inventory_holders(const omo_inventory *inv, int sku, const int **nodes,
                           const int64_t **free, size_t *n)
{
    *nodes = inv->skus[sku].nodes;
    *free = inv->skus[sku].free;
    *n = inv->skus[sku].nrecords;
}

void omo_inventory_touch(omo_inventory *inv, omo_stock *st)
{
    sku_entry *se = &inv->skus[st->sku];
    int64_t free_units = st->on_hand - st->reserved - st->held;
    se->free[st->slot] = free_units;
    if (st->rlist >= 0)
        se->regions[st->rlist].free[st->rpos] = free_units;
    if (st->dirty)
        return;
    st->dirty = true;
    omo_grow((void **)&inv->dirty, &inv->capdirty, inv->ndirty + 1, sizeof(int));
    inv->dirty[inv->ndirty++] = (int)(st - inv->stock);
}

void omo_inventory_drain_dirty(omo_inventory *inv, void (*cb)(void *ctx, omo_stock *st), void *ctx)
{
    for (size_t i = 0; i < inv->ndirty; i++) {
        omo_stock *st = &inv->stock[inv->dirty[i]];
        st->dirty = false;
        if (cb)
            cb(ctx, st);
    }
    inv->ndirty = 0;
}

void omo_inventory_set_regions(omo_inventory *inv, const int *region_of, size_t nnodes)
{
    free(inv->region_of);
    inv->region_of = omo_xmalloc(sizeof(int) * (nnodes ? nnodes : 1));
    memcpy(inv->region_of, region_of, sizeof(int) * nnodes);
    inv->nregion_of = nnodes;
}

const omo_region_slots *omo_inventory_regions_of(const omo_inventory *inv, int sku, size_t *n)
{
    *n = inv->skus[sku].nregions;
    return inv->skus[sku].regions;
}

void omo_inventory_reserve(omo_inventory *inv, size_t records)
{
    i64map_reserve(&inv->stock_index, records);
}
