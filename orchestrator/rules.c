/* routing.yaml: objective weights, delivery services and their zones, and the ops rules. */
#include "rules.h"

#include "yamldoc.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[OMO_METHODS] = {"warehouse", "ship_from_store",
                                                      "click_and_collect"};
static const char *const node_type_names[OMO_NODE_TYPES] = {"warehouse", "store"};
static const char *const partial_names[] = {"allow", "deny"};

/* A pickup order's service in `when.service`; no ship service may take the name. */
#define PICKUP_SERVICE "pickup"

const char *omo_method_name(omo_method m)
{
    return (unsigned)m < OMO_METHODS ? method_names[m] : "?";
}

enum {
    R_VERSION,
    R_OBJECTIVE,
    R_MAX_SHIPMENTS,
    R_SPLIT_LINES,
    R_PARTIAL,
    R_SERVICES,
    R_PICKUP,
    R_RULES,
    R_LOOKAHEAD,
    R_KEYS
};
static const omo_ykey top_keys[R_KEYS] = {
    [R_VERSION] = {"version", OMO_YT_INT, OMO_YK_REQUIRED, 0, 0},
    [R_OBJECTIVE] = {"objective", OMO_YT_MAP, 0, 0, 0},
    [R_MAX_SHIPMENTS] = {"max_shipments", OMO_YT_INT, OMO_YK_MIN | OMO_YK_MAX, 1, INT_MAX},
    [R_SPLIT_LINES] = {"split_lines", OMO_YT_BOOL, 0, 0, 0},
    [R_PARTIAL] = {"partial", OMO_YT_STR, 0, 0, 0},
    [R_SERVICES] = {"services", OMO_YT_MAP, OMO_YK_REQUIRED, 0, 0},
    [R_PICKUP] = {"pickup", OMO_YT_MAP, 0, 0, 0},
    [R_RULES] = {"rules", OMO_YT_LIST, 0, 0, 0},
    [R_LOOKAHEAD] = {"lookahead", OMO_YT_MAP, 0, 0, 0},
};

enum { L_FORECAST, L_HORIZON_HOURS, L_HORIZON_END, L_REFRESH_EVENTS, L_WEIGHT, L_KEYS };
static const omo_ykey lookahead_keys[L_KEYS] = {
    [L_FORECAST] = {"forecast", OMO_YT_STR, OMO_YK_REQUIRED, 0, 0},
    [L_HORIZON_HOURS] = {"horizon_hours", OMO_YT_NUMBER, OMO_YK_MIN | OMO_YK_MAX, 0, 24 * 366},
    [L_HORIZON_END] = {"horizon_end", OMO_YT_STR, 0, 0, 0},
    [L_REFRESH_EVENTS] = {"refresh_events", OMO_YT_INT, OMO_YK_MIN | OMO_YK_MAX, 1, 1e12},
    [L_WEIGHT] = {"weight", OMO_YT_NUMBER, OMO_YK_MIN, 0, 0},
};

enum { O_HOUR_COST, O_SPLIT_PENALTY, O_KEYS };
static const omo_ykey objective_keys[O_KEYS] = {
    [O_HOUR_COST] = {"hour_cost", OMO_YT_MONEY, OMO_YK_MIN | OMO_YK_MAX, 0, OMO_MAX_COST},
    [O_SPLIT_PENALTY] = {"split_penalty", OMO_YT_MONEY, OMO_YK_MIN | OMO_YK_MAX, 0, OMO_MAX_COST},
};

enum { SV_FROM, SV_ZONES, SV_KEYS };
static const omo_ykey service_keys[SV_KEYS] = {
    [SV_FROM] = {"from", OMO_YT_LIST, 0, 0, 0},
    [SV_ZONES] = {"zones", OMO_YT_LIST, OMO_YK_REQUIRED, 0, 0},
};

enum { Z_MAX_KM, Z_COST, Z_HOURS, Z_KEYS };
static const omo_ykey zone_keys[Z_KEYS] = {
    [Z_MAX_KM] = {"max_km", OMO_YT_NUMBER, OMO_YK_REQUIRED, 0, 0},
    [Z_COST] = {"cost", OMO_YT_MONEY, OMO_YK_REQUIRED | OMO_YK_MIN | OMO_YK_MAX, 0, OMO_MAX_COST},
    [Z_HOURS] = {"hours", OMO_YT_HOURS, OMO_YK_REQUIRED | OMO_YK_MIN | OMO_YK_MAX, 0,
                 OMO_MAX_HOURS},
};

enum { P_TRANSFER, P_KEYS };
static const omo_ykey pickup_keys[P_KEYS] = {
    [P_TRANSFER] = {"transfer", OMO_YT_MAP, 0, 0, 0},
};

enum { U_NAME, U_WHEN, U_ALLOW_NODE_TYPES, U_DENY_NODES, U_DENY_METHODS, U_SAFETY_STOCK, U_KEYS };
static const omo_ykey rule_keys[U_KEYS] = {
    [U_NAME] = {"name", OMO_YT_STR, OMO_YK_REQUIRED, 0, 0},
    [U_WHEN] = {"when", OMO_YT_MAP, 0, 0, 0},
    [U_ALLOW_NODE_TYPES] = {"allow_node_types", OMO_YT_LIST, 0, 0, 0},
    [U_DENY_NODES] = {"deny_nodes", OMO_YT_LIST, 0, 0, 0},
    [U_DENY_METHODS] = {"deny_methods", OMO_YT_LIST, 0, 0, 0},
    [U_SAFETY_STOCK] = {"safety_stock", OMO_YT_INT, OMO_YK_MIN | OMO_YK_MAX, 0, OMO_MAX_STOCK},
};

enum { W_NODE, W_NODE_TYPE, W_SKU, W_SKU_TAG, W_CHANNEL, W_SERVICE, W_KEYS };
static const omo_ykey when_keys[W_KEYS] = {
    [W_NODE] = {"node", OMO_YT_STR, 0, 0, 0},
    [W_NODE_TYPE] = {"node_type", OMO_YT_STR, 0, 0, 0},
    [W_SKU] = {"sku", OMO_YT_STR, 0, 0, 0},
    [W_SKU_TAG] = {"sku_tag", OMO_YT_STR, 0, 0, 0},
    [W_CHANNEL] = {"channel", OMO_YT_STR, 0, 0, 0},
    [W_SERVICE] = {"service", OMO_YT_STR, 0, 0, 0},
};

/* A list of names from `names` as a bit mask; 0 after reporting an error. */
static unsigned read_mask(const omo_ynode *list, const char *key, const char *what,
                          const char *const *names, size_t nnames, omo_diag *diag)
{
    unsigned mask = 0;
    bool bad = false;
    if (list->nkids == 0) {
        omo_diag_error(diag, &list->loc, "%s must name at least one %s", key, what);
        return 0;
    }
    for (size_t i = 0; i < list->nkids; i++) {
        int v = omo_ynode_enum(list->kids[i], what, names, nnames, diag);
        if (v < 0)
            bad = true;
        else
            mask |= 1u << v;
    }
    return bad ? 0 : mask;
}

static void read_service(const omo_ynode *map, const char *what, omo_service *svc, omo_diag *diag)
{
    omo_yval v[SV_KEYS];
    (void)omo_ymap_read(map, what, service_keys, SV_KEYS, v, diag);
    svc->loc = map->loc;
    svc->from_mask = (1u << OMO_NODE_TYPES) - 1;
    if (v[SV_FROM].node)
        svc->from_mask =
            read_mask(v[SV_FROM].node, "from", "node type", node_type_names, OMO_NODE_TYPES, diag);

    const omo_ynode *zones = v[SV_ZONES].node;
    if (!zones)
        return;
    if (zones->nkids == 0) {
        omo_diag_error(diag, &zones->loc, "zones must list at least one zone");
        return;
    }
    svc->zones = omo_xcalloc(zones->nkids, sizeof *svc->zones);
    const omo_zone *prev = NULL;
    for (size_t i = 0; i < zones->nkids; i++) {
        omo_yval z[Z_KEYS];
        omo_zone *zone = &svc->zones[svc->nzones++];
        (void)omo_ymap_read(zones->kids[i], "each zone", zone_keys, Z_KEYS, z, diag);
        zone->loc = zones->kids[i]->loc;
        zone->cost = z[Z_COST].i;
        zone->hours = z[Z_HOURS].i;
        const omo_ynode *km = z[Z_MAX_KM].node;
        if (!km)
            continue;
        zone->max_km = z[Z_MAX_KM].d;
        if (zone->max_km <= 0) {
            omo_diag_error(diag, &km->loc, "max_km must be greater than 0");
            continue;
        }
        if (prev && zone->max_km <= prev->max_km)
            omo_diag_error(diag, &km->loc, "zone max_km must increase (previous zone: %g km)",
                           prev->max_km);
        prev = zone;
    }
}

static void read_services(omo_rules *rules, const omo_ynode *map, omo_diag *diag)
{
    size_t n = omo_ymap_len(map);
    if (n == 0) {
        omo_diag_error(diag, &map->loc, "services must define at least one service");
        return;
    }
    rules->services = omo_xcalloc(n, sizeof *rules->services);
    for (size_t i = 0; i < n; i++) {
        const omo_ynode *key = omo_ymap_key(map, i);
        omo_service *svc = &rules->services[rules->nservices++];
        char what[OMO_ID_MAX + 16];
        /* Kept even when invalid, so rules naming it are not reported as well. */
        svc->name = omo_xstrdup(key->str);
        if (!omo_id_valid(key->str))
            omo_diag_error(diag, &key->loc,
                           "invalid service name '%s': 1 to %d characters of A-Z a-z 0-9 _ . - "
                           "expected",
                           key->str, OMO_ID_MAX);
        else if (!strcmp(key->str, PICKUP_SERVICE))
            omo_diag_error(diag, &key->loc,
                           "service name '%s' is reserved for click-and-collect orders",
                           PICKUP_SERVICE);
        snprintf(what, sizeof what, "service '%.*s'", OMO_ID_MAX, key->str);
        read_service(omo_ymap_value(map, i), what, svc, diag);
    }
}

static void read_pickup(omo_rules *rules, const omo_ynode *map, omo_diag *diag)
{
    omo_yval v[P_KEYS];
    (void)omo_ymap_read(map, "'pickup'", pickup_keys, P_KEYS, v, diag);
    if (!v[P_TRANSFER].node)
        return;
    rules->has_transfer = true;
    rules->transfer.name = omo_xstrdup(PICKUP_SERVICE);
    read_service(v[P_TRANSFER].node, "'transfer'", &rules->transfer, diag);
}

/* Node index for id; -1 without a network, or -1 after reporting an unknown node. */
static int resolve_node(const omo_ynode *node, const omo_network *net, omo_diag *diag)
{
    if (!net)
        return -1;
    int i = omo_network_find(net, node->str);
    if (i < 0)
        omo_diag_error(diag, &node->loc, "unknown node '%s' (not in %s)", node->str, net->path);
    return i;
}

static void check_service(const omo_rules *rules, const omo_ynode *node, omo_diag *diag)
{
    if (!strcmp(node->str, PICKUP_SERVICE) || omo_rules_find_service(rules, node->str) >= 0)
        return;
    char known[512];
    size_t used = 0;
    known[0] = '\0';
    for (size_t i = 0; i < rules->nservices && used < sizeof known; i++)
        used +=
            (size_t)snprintf(known + used, sizeof known - used, "%s, ", rules->services[i].name);
    if (used < sizeof known)
        snprintf(known + used, sizeof known - used, "%s", PICKUP_SERVICE);
    omo_diag_error(diag, &node->loc, "unknown service '%s' (valid: %s)", node->str, known);
}

static void read_when(omo_rule *rule, const omo_ynode *map, const omo_rules *rules,
                      const omo_network *net, omo_diag *diag)
{
    omo_yval w[W_KEYS];
    (void)omo_ymap_read(map, "'when'", when_keys, W_KEYS, w, diag);
    if (w[W_NODE].node) {
        rule->node_id = omo_xstrdup(w[W_NODE].str);
        rule->node = resolve_node(w[W_NODE].node, net, diag);
    }
    if (w[W_NODE_TYPE].node)
        rule->node_type =
            omo_ynode_enum(w[W_NODE_TYPE].node, "node type", node_type_names, OMO_NODE_TYPES, diag);
    if (w[W_SKU].node)
        rule->sku = omo_xstrdup(w[W_SKU].str);
    if (w[W_SKU_TAG].node)
        rule->sku_tag = omo_xstrdup(w[W_SKU_TAG].str);
    if (w[W_CHANNEL].node)
        rule->channel = omo_xstrdup(w[W_CHANNEL].str);
    if (w[W_SERVICE].node) {
        rule->service = omo_xstrdup(w[W_SERVICE].str);
        check_service(rules, w[W_SERVICE].node, diag);
    }
}

static void read_rule(omo_rules *rules, omo_rule *rule, const omo_ynode *item,
                      const omo_network *net, omo_diag *diag)
{
    omo_yval v[U_KEYS];
    (void)omo_ymap_read(item, "each rule", rule_keys, U_KEYS, v, diag);
    rule->loc = item->loc;
    rule->node = -1;
    rule->node_type = -1;
    rule->safety_stock = -1;
    rule->name = omo_xstrdup(v[U_NAME].node ? v[U_NAME].str : "");
    if (v[U_WHEN].node)
        read_when(rule, v[U_WHEN].node, rules, net, diag);

    if (v[U_ALLOW_NODE_TYPES].node)
        rule->allow_node_types = read_mask(v[U_ALLOW_NODE_TYPES].node, "allow_node_types",
                                           "node type", node_type_names, OMO_NODE_TYPES, diag);
    const omo_ynode *deny = v[U_DENY_NODES].node;
    if (deny) {
        if (deny->nkids == 0)
            omo_diag_error(diag, &deny->loc, "deny_nodes must name at least one node");
        rule->deny_node_ids = omo_xcalloc(deny->nkids, sizeof *rule->deny_node_ids);
        rule->deny_nodes = omo_xcalloc(deny->nkids, sizeof *rule->deny_nodes);
        for (size_t i = 0; i < deny->nkids; i++) {
            const omo_ynode *id = deny->kids[i];
            if (!omo_ynode_str(id, "a node id", diag))
                continue;
            rule->deny_node_ids[rule->ndeny_nodes] = omo_xstrdup(id->str);
            rule->deny_nodes[rule->ndeny_nodes++] = resolve_node(id, net, diag);
        }
    }
    if (v[U_DENY_METHODS].node)
        rule->deny_methods = read_mask(v[U_DENY_METHODS].node, "deny_methods", "method",
                                       method_names, OMO_METHODS, diag);
    if (v[U_SAFETY_STOCK].node)
        rule->safety_stock = v[U_SAFETY_STOCK].i;

    /* Presence, not validity: an action with a bad value has been reported already. */
    if (!omo_ymap_get(item, "allow_node_types") && !omo_ymap_get(item, "deny_nodes") &&
        !omo_ymap_get(item, "deny_methods") && !omo_ymap_get(item, "safety_stock") &&
        item->kind == OMO_Y_MAP)
        omo_diag_error(diag, &item->loc,
                       "rule '%s' has no action (allow_node_types, deny_nodes, deny_methods "
                       "or safety_stock)",
                       rule->name);
}

/* The `lookahead:` block; the forecast is read relative to the rules file's directory. */
static void read_lookahead(omo_rules *rules, const omo_ynode *map, omo_diag *diag)
{
    omo_yval v[L_KEYS];
    size_t before = diag->count;
    (void)omo_ymap_read(map, "'lookahead'", lookahead_keys, L_KEYS, v, diag);
    omo_lookahead *la = omo_xcalloc(1, sizeof *la);
    rules->lookahead = la;
    la->loc = map->loc;
    la->horizon_hours = v[L_HORIZON_HOURS].node ? v[L_HORIZON_HOURS].d : 24.0;
    la->refresh_events = v[L_REFRESH_EVENTS].node ? v[L_REFRESH_EVENTS].i : 5000;
    la->weight = v[L_WEIGHT].node ? v[L_WEIGHT].d : 1.0;
    if (v[L_HORIZON_END].node && !omo_time_parse(v[L_HORIZON_END].str, &la->horizon_end_ms))
        omo_diag_error(diag, &v[L_HORIZON_END].node->loc,
                       "horizon_end must be an RFC 3339 time like 2026-11-30T00:00:00Z");
    if (v[L_HORIZON_HOURS].node && la->horizon_hours <= 0)
        omo_diag_error(diag, &v[L_HORIZON_HOURS].node->loc, "horizon_hours must be greater than 0");
    if (!v[L_FORECAST].node || diag->count > before)
        return;
    const char *f = v[L_FORECAST].str;
    /* Rules that did not come from a file are named by a label with a space ("PUT /rules",
     * "rules HASH"): their forecast path is taken as it is, from the working directory. */
    const char *slash = strchr(rules->path, ' ') ? NULL : strrchr(rules->path, '/');
    if (f[0] == '/' || !slash) {
        la->forecast = omo_xstrdup(f);
    } else {
        size_t dir = (size_t)(slash - rules->path) + 1;
        la->forecast = omo_xmalloc(dir + strlen(f) + 1);
        memcpy(la->forecast, rules->path, dir);
        strcpy(la->forecast + dir, f);
    }
    size_t start = diag->count;
    errno = 0;
    if (!omo_lookahead_read_forecast(la, la->forecast, diag) && diag->count == start)
        omo_diag_error(diag, &v[L_FORECAST].node->loc, "cannot read the forecast %s: %s",
                       la->forecast, strerror(errno));
}

omo_rules *omo_rules_parse(const char *name, const char *buf, size_t len, const omo_network *net,
                           omo_diag *diag)
{
    size_t start = diag->count;
    omo_rules *rules = omo_xcalloc(1, sizeof *rules);
    rules->path = omo_xstrdup(name);
    rules->max_shipments = 3;
    snprintf(rules->version_hash, sizeof rules->version_hash, "%016" PRIx64,
             omo_hash_bytes(buf, len));

    omo_ydoc *doc = omo_ydoc_parse(rules->path, buf, len, diag);
    if (!doc)
        goto fail;
    const omo_ynode *root = omo_ydoc_root(doc);
    if (!root) {
        omo_loc loc = {rules->path, 1, 1};
        omo_diag_error(diag, &loc, "the routing file is empty: it needs version and services");
        goto fail;
    }
    omo_yval v[R_KEYS];
    if (omo_ymap_read(root, "the routing file", top_keys, R_KEYS, v, diag) &&
        root->kind != OMO_Y_MAP)
        goto fail;

    if (v[R_VERSION].node)
        rules->version = v[R_VERSION].i;
    if (v[R_OBJECTIVE].node) {
        omo_yval o[O_KEYS];
        (void)omo_ymap_read(v[R_OBJECTIVE].node, "'objective'", objective_keys, O_KEYS, o, diag);
        rules->hour_cost = o[O_HOUR_COST].i;
        rules->split_penalty = o[O_SPLIT_PENALTY].i;
    }
    if (v[R_MAX_SHIPMENTS].node)
        rules->max_shipments = (int)v[R_MAX_SHIPMENTS].i;
    if (v[R_SPLIT_LINES].node)
        rules->split_lines = v[R_SPLIT_LINES].b;
    if (v[R_PARTIAL].node)
        rules->partial_deny =
            omo_ynode_enum(v[R_PARTIAL].node, "partial mode", partial_names, 2, diag) == 1;
    if (v[R_SERVICES].node)
        read_services(rules, v[R_SERVICES].node, diag);
    if (v[R_PICKUP].node)
        read_pickup(rules, v[R_PICKUP].node, diag);
    const omo_ynode *list = v[R_RULES].node;
    if (list) {
        rules->rules = omo_xcalloc(list->nkids, sizeof *rules->rules);
        for (size_t i = 0; i < list->nkids; i++)
            read_rule(rules, &rules->rules[rules->nrules++], list->kids[i], net, diag);
    }
    if (v[R_LOOKAHEAD].node)
        read_lookahead(rules, v[R_LOOKAHEAD].node, diag);
    if (diag->count > start) {
        omo_yaml_diag_sort(diag, start, rules->path);
        goto fail;
    }
    omo_ydoc_destroy(doc);
    return rules;

fail:
    omo_ydoc_destroy(doc);
    omo_rules_destroy(rules);
    return NULL;
}

omo_rules *omo_rules_load(const char *path, const omo_network *net, omo_diag *diag)
{
    char *buf;
    size_t len;
    if (!omo_yaml_read_file(path, &buf, &len, diag))
        return NULL;
    omo_rules *rules = omo_rules_parse(path, buf, len, net, diag);
    free(buf);
    return rules;
}

static void service_free(omo_service *svc)
{
    free(svc->name);
    free(svc->zones);
}

void omo_rules_destroy(omo_rules *rules)
{
    if (!rules)
        return;
    for (size_t i = 0; i < rules->nservices; i++)
        service_free(&rules->services[i]);
    free(rules->services);
    service_free(&rules->transfer);
    for (size_t i = 0; i < rules->nrules; i++) {
        omo_rule *rule = &rules->rules[i];
        free(rule->name);
        free(rule->node_id);
        free(rule->sku);
        free(rule->sku_tag);
        free(rule->channel);
        free(rule->service);
        for (size_t j = 0; j < rule->ndeny_nodes; j++)
            free(rule->deny_node_ids[j]);
        free(rule->deny_node_ids);
        free(rule->deny_nodes);
    }
    free(rules->rules);
    omo_lookahead_free(rules->lookahead);
    free(rules->lookahead);
    free(rules->path);
    free(rules);
}

int omo_rules_find_service(const omo_rules *rules, const char *name)
{
    for (size_t i = 0; i < rules->nservices; i++) {
        if (!strcmp(rules->services[i].name, name))
            return (int)i;
    }
    return -1;
}
