/* network.yaml: the fulfilment nodes and the SKU tags rules can match on. */
#include "network.h"

#include "tz.h"
#include "yamldoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const node_type_names[OMO_NODE_TYPES] = {"warehouse", "store"};

const char *omo_node_type_name(omo_node_type t)
{
    return (unsigned)t < OMO_NODE_TYPES ? node_type_names[t] : "?";
}

enum { K_NODES, K_SKUS, K_TOP };
static const omo_ykey top_keys[K_TOP] = {
    [K_NODES] = {"nodes", OMO_YT_LIST, OMO_YK_REQUIRED, 0, 0},
    [K_SKUS] = {"skus", OMO_YT_LIST, 0, 0, 0},
};

enum {
    N_ID,
    N_TYPE,
    N_LAT,
    N_LON,
    N_TIMEZONE,
    N_SHIP,
    N_PICKUP,
    N_PICK_COST,
    N_HANDLING_COST,
    N_HANDLING_HOURS,
    N_DAILY_CAPACITY,
    N_SAFETY_STOCK,
    N_KEYS
};
static const omo_ykey node_keys[N_KEYS] = {
    [N_ID] = {"id", OMO_YT_STR, OMO_YK_REQUIRED, 0, 0},
    [N_TYPE] = {"type", OMO_YT_STR, OMO_YK_REQUIRED, 0, 0},
    [N_LAT] = {"lat", OMO_YT_NUMBER, OMO_YK_REQUIRED | OMO_YK_MIN | OMO_YK_MAX, -90, 90},
    [N_LON] = {"lon", OMO_YT_NUMBER, OMO_YK_REQUIRED | OMO_YK_MIN | OMO_YK_MAX, -180, 180},
    [N_TIMEZONE] = {"timezone", OMO_YT_STR, 0, 0, 0},
    [N_SHIP] = {"ship", OMO_YT_BOOL, 0, 0, 0},
    [N_PICKUP] = {"pickup", OMO_YT_BOOL, 0, 0, 0},
    [N_PICK_COST] = {"pick_cost_per_unit", OMO_YT_MONEY, OMO_YK_MIN | OMO_YK_MAX, 0,
                     OMO_MAX_PICK_COST},
    [N_HANDLING_COST] = {"handling_cost", OMO_YT_MONEY, OMO_YK_MIN | OMO_YK_MAX, 0, OMO_MAX_COST},
    [N_HANDLING_HOURS] = {"handling_hours", OMO_YT_HOURS, OMO_YK_MIN | OMO_YK_MAX, 0,
                          OMO_MAX_HOURS},
    [N_DAILY_CAPACITY] = {"daily_capacity", OMO_YT_INT, OMO_YK_MIN | OMO_YK_MAX, 0, OMO_MAX_STOCK},
    [N_SAFETY_STOCK] = {"safety_stock", OMO_YT_INT, OMO_YK_MIN | OMO_YK_MAX, 0, OMO_MAX_STOCK},
};

enum { S_SKU, S_TAGS, S_KEYS };
static const omo_ykey sku_keys[S_KEYS] = {
    [S_SKU] = {"sku", OMO_YT_STR, OMO_YK_REQUIRED, 0, 0},
    [S_TAGS] = {"tags", OMO_YT_LIST, 0, 0, 0},
};

/* Where each accepted id was first seen, to name it in duplicate errors. */
typedef struct seen_ids {
    omo_strmap index;
    int *lines;
    size_t n, cap;
} seen_ids;

/* Returns false after reporting a duplicate at node. */
static bool seen_add(seen_ids *seen, const omo_ynode *node, const char *what, omo_diag *diag)
{
    int prev = omo_strmap_get(&seen->index, node->str);
    if (prev >= 0) {
        omo_diag_error(diag, &node->loc, "duplicate %s '%s' (first at line %d)", what, node->str,
                       seen->lines[prev]);
        return false;
    }
    omo_grow((void **)&seen->lines, &seen->cap, seen->n + 1, sizeof *seen->lines);
    seen->lines[seen->n] = node->loc.line;
    if (!omo_strmap_put(&seen->index, node->str, (int)seen->n))
        abort(); /* out of memory, as omo_xmalloc would */
    seen->n++;
    return true;
}

static void seen_free(seen_ids *seen)
{
    omo_strmap_free(&seen->index);
    free(seen->lines);
}

static bool id_ok(const omo_ynode *node, const char *what, omo_diag *diag)
{
    if (omo_id_valid(node->str))
        return true;
    omo_diag_error(diag, &node->loc,
                   "invalid %s '%s': 1 to %d characters of A-Z a-z 0-9 _ . - expected", what,
                   node->str, OMO_ID_MAX);
    return false;
}

static int errors_since(const omo_diag *diag, size_t start)
{
    return (int)(diag->count - start);
}

/* Reads one entry of `nodes:` into node; returns true when it is valid. */
static bool read_node(const omo_ynode *item, omo_node *node, seen_ids *seen, omo_diag *diag)
{
    size_t start = diag->count;
    omo_yval v[N_KEYS];
    (void)omo_ymap_read(item, "each node", node_keys, N_KEYS, v, diag);

    memset(node, 0, sizeof *node);
    node->loc = item->loc;
    node->ship = true;
    node->pickup = false;
    node->daily_capacity = -1;
    snprintf(node->timezone, sizeof node->timezone, "UTC");

    if (v[N_ID].node && id_ok(v[N_ID].node, "node id", diag) &&
        seen_add(seen, v[N_ID].node, "node id", diag))
        snprintf(node->id, sizeof node->id, "%s", v[N_ID].str);
    if (v[N_TYPE].node) {
        int t = omo_ynode_enum(v[N_TYPE].node, "node type", node_type_names, OMO_NODE_TYPES, diag);
        node->type = t < 0 ? OMO_NODE_WAREHOUSE : (omo_node_type)t;
    }
    if (v[N_LAT].node)
        node->lat = v[N_LAT].d;
    if (v[N_LON].node)
        node->lon = v[N_LON].d;
    if (v[N_TIMEZONE].node) {
        const omo_ynode *tz = v[N_TIMEZONE].node;
        if (strlen(tz->str) >= sizeof node->timezone || omo_tz_intern(tz->str) < 0)
            omo_diag_error(diag, &tz->loc, "unknown time zone '%s'", tz->str);
        else
            snprintf(node->timezone, sizeof node->timezone, "%s", tz->str);
    }
    node->tz = omo_tz_intern(node->timezone);
    if (v[N_SHIP].node)
        node->ship = v[N_SHIP].b;
    if (v[N_PICKUP].node)
        node->pickup = v[N_PICKUP].b;
    if (v[N_PICK_COST].node)
        node->pick_cost_per_unit = v[N_PICK_COST].i;
    if (v[N_HANDLING_COST].node)
        node->handling_cost = v[N_HANDLING_COST].i;
    if (v[N_HANDLING_HOURS].node)
        node->handling_hours = v[N_HANDLING_HOURS].i;
    if (v[N_DAILY_CAPACITY].node)
        node->daily_capacity = v[N_DAILY_CAPACITY].i;
    if (v[N_SAFETY_STOCK].node)
        node->safety_stock = v[N_SAFETY_STOCK].i;
    return errors_since(diag, start) == 0;
}

static bool read_sku(const omo_ynode *item, omo_sku_info *sku, seen_ids *seen, omo_diag *diag)
{
    size_t start = diag->count;
    omo_yval v[S_KEYS];
    (void)omo_ymap_read(item, "each sku", sku_keys, S_KEYS, v, diag);
    sku->loc = item->loc;
    if (v[S_SKU].node && id_ok(v[S_SKU].node, "sku", diag) &&
        seen_add(seen, v[S_SKU].node, "sku", diag))
        snprintf(sku->sku, sizeof sku->sku, "%s", v[S_SKU].str);
    const omo_ynode *tags = v[S_TAGS].node;
    if (tags) {
        sku->tags = omo_xcalloc(tags->nkids, sizeof *sku->tags);
        for (size_t i = 0; i < tags->nkids; i++) {
            if (omo_ynode_str(tags->kids[i], "a tag", diag))
                sku->tags[sku->ntags++] = omo_xstrdup(tags->kids[i]->str);
        }
    }
    return errors_since(diag, start) == 0;
}

static int node_cmp(const void *a, const void *b)
{
    return strcmp(((const omo_node *)a)->id, ((const omo_node *)b)->id);
}

omo_network *omo_network_parse(const char *name, const char *buf, size_t len, omo_diag *diag)
{
    size_t start = diag->count;
    omo_network *net = omo_xcalloc(1, sizeof *net);
    net->path = omo_xstrdup(name);
    seen_ids node_ids = {0}, sku_ids = {0};
    omo_ydoc *doc = omo_ydoc_parse(net->path, buf, len, diag);
    if (!doc)
        goto fail;
    const omo_ynode *root = omo_ydoc_root(doc);
    if (!root) {
        omo_loc loc = {net->path, 1, 1};
        omo_diag_error(diag, &loc, "the network file is empty: it needs a list of nodes");
        goto fail;
    }
    omo_yval top[K_TOP];
    if (omo_ymap_read(root, "the network file", top_keys, K_TOP, top, diag) && !top[K_NODES].node)
        goto fail;

    const omo_ynode *nodes = top[K_NODES].node;
    if (nodes) {
        if (nodes->nkids == 0)
            omo_diag_error(diag, &nodes->loc, "nodes must list at least one node");
        net->nodes = omo_xcalloc(nodes->nkids, sizeof *net->nodes);
        for (size_t i = 0; i < nodes->nkids; i++) {
            if (read_node(nodes->kids[i], &net->nodes[net->nnodes], &node_ids, diag))
                net->nnodes++;
        }
    }
    const omo_ynode *skus = top[K_SKUS].node;
    if (skus) {
        net->skus = omo_xcalloc(skus->nkids, sizeof *net->skus);
        for (size_t i = 0; i < skus->nkids; i++) {
            omo_sku_info *sku = &net->skus[net->nskus++];
            if (!read_sku(skus->kids[i], sku, &sku_ids, diag))
                continue;
            if (!omo_strmap_put(&net->sku_index, sku->sku, (int)(net->nskus - 1)))
                abort();
        }
    }
    if (diag->count > start) {
        omo_yaml_diag_sort(diag, start, net->path);
        goto fail;
    }

    qsort(net->nodes, net->nnodes, sizeof *net->nodes, node_cmp);
    for (size_t i = 0; i < net->nnodes; i++) {
        net->nodes[i].loc.file = net->path;
        if (!omo_strmap_put(&net->node_index, net->nodes[i].id, (int)i))
            abort();
    }
    for (size_t i = 0; i < net->nskus; i++)
        net->skus[i].loc.file = net->path;
    seen_free(&node_ids);
    seen_free(&sku_ids);
    omo_ydoc_destroy(doc);
    return net;

fail:
    seen_free(&node_ids);
    seen_free(&sku_ids);
    omo_ydoc_destroy(doc);
    omo_network_destroy(net);
    return NULL;
}

omo_network *omo_network_load(const char *path, omo_diag *diag)
{
    char *buf;
    size_t len;
    if (!omo_yaml_read_file(path, &buf, &len, diag))
        return NULL;
    omo_network *net = omo_network_parse(path, buf, len, diag);
    free(buf);
    return net;
}

void omo_network_destroy(omo_network *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->nskus; i++) {
        for (size_t j = 0; j < net->skus[i].ntags; j++)
            free(net->skus[i].tags[j]);
        free(net->skus[i].tags);
    }
    free(net->skus);
    free(net->nodes);
    omo_strmap_free(&net->node_index);
    omo_strmap_free(&net->sku_index);
    free(net->path);
    free(net);
}

int omo_network_find(const omo_network *net, const char *id)
{
    return omo_strmap_get(&net->node_index, id);
}

bool omo_network_sku_has_tag(const omo_network *net, const char *sku, const char *tag)
{
    int i = omo_strmap_get(&net->sku_index, sku);
    if (i < 0)
        return false;
    const omo_sku_info *info = &net->skus[i];
    for (size_t j = 0; j < info->ntags; j++) {
        if (!strcmp(info->tags[j], tag))
            return true;
    }
    return false;
}
