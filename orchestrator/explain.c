#include "explain.h"

#include "strbuf.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *money(int64_t micro, char *buf, size_t len)
{
    return omo_fixed_format(micro, OMO_MICRO, 2, buf, len);
}

static const char *objective(int64_t nano, char *buf, size_t len)
{
    return omo_fixed_format(nano, 1000000000LL, 2, buf, len);
}

static void plan_text(omo_strbuf *o, const char *label, const omo_explain_plan *p,
                      const omo_explanation *ex, const omo_network *net)
{
    char b[48];
    if (!p->present || p->nships == 0) {
        omo_strbuf_printf(o, "%-10s %s\n", label, p->present ? "nothing allocated" : "none");
        return;
    }
    omo_strbuf_printf(o, "%-10s ", label);
    for (int s = 0; s < p->nships; s++) {
        int64_t units = 0;
        for (int i = 0; i < ex->nnodes; i++)
            if (ex->nodes[i].node == p->nodes[s])
                for (int l = 0; l < ex->nlines; l++)
                    units += p == &ex->chosen ? ex->nodes[i].lines[l].chosen
                                              : ex->nodes[i].lines[l].runner_up;
        omo_strbuf_printf(o, "%s%s %lldu", s ? " + " : "", net->nodes[p->nodes[s]].id,
                          (long long)units);
    }
    omo_strbuf_printf(o, "; %lld unit%s, objective %s", (long long)p->units,
                      p->units == 1 ? "" : "s", objective(p->objective, b, sizeof b));
    if (p == &ex->runner_up && ex->chosen.present) {
        char d[48];
        int64_t diff = p->objective - ex->chosen.objective;
        omo_strbuf_printf(o, " (%s%s", diff >= 0 ? "+" : "", objective(diff, d, sizeof d));
        /* Units come first: a cheaper runner-up lost on them, which the reader should see. */
        int64_t fewer = ex->chosen.units - p->units;
        if (fewer > 0)
            omo_strbuf_printf(o, "; %lld unit%s fewer", (long long)fewer, fewer == 1 ? "" : "s");
        omo_strbuf_printf(o, ")");
    }
    omo_strbuf_printf(o, "\n");
}

/* What the look-ahead prices did: the chosen plan's price term, and the plan that would have
 * been chosen without them. */
static void lookahead_text(omo_strbuf *o, const omo_explanation *ex, const omo_network *net)
{
    char b1[48], b2[48], b3[48], b4[48];
    const omo_explain_plan *c = &ex->chosen, *m = &ex->myopic;
    omo_strbuf_printf(o, "Look-ahead: weight %g; the chosen units are priced %s\n", ex->weight,
                      objective(c->priced, b1, sizeof b1));
    bool same = m->present && m->nships == c->nships;
    for (int s = 0; same && s < c->nships; s++)
        same = m->nodes[s] == c->nodes[s];
    if (!m->present || same) {
        omo_strbuf_printf(o, "%-10s the same nodes: the prices changed nothing\n", "Myopic:");
        return;
    }
    omo_strbuf_printf(o, "%-10s ", "Myopic:");
    for (int s = 0; s < m->nships; s++)
        omo_strbuf_printf(o, "%s%s", s ? " + " : "", net->nodes[m->nodes[s]].id);
    omo_strbuf_printf(o,
                      "; objective %s, prices %s: the prices made the choice, %s more now to "
                      "keep units priced %s\n",
                      objective(m->objective, b1, sizeof b1), objective(m->priced, b2, sizeof b2),
                      objective(c->objective - m->objective, b3, sizeof b3),
                      objective(m->priced - c->priced, b4, sizeof b4));
}

/* Chosen first, then runner-up, then eligible by cost, then excluded; ties by node. */
static const omo_explanation *sort_ex;
static int rank(const omo_explain_node *n)
{
    int64_t chosen = 0, runner = 0;
    for (int l = 0; l < sort_ex->nlines; l++) {
        chosen += n->lines[l].chosen;
        runner += n->lines[l].runner_up;
    }
    return chosen ? 0 : runner ? 1 : n->excluded ? 3 : 2;
}

static int cmp_nodes(const void *a, const void *b)
{
    const omo_explain_node *x = a, *y = b;
    int rx = rank(x), ry = rank(y);
    if (rx != ry)
        return rx - ry;
    if (rx == 2 && x->cost != y->cost)
        return x->cost < y->cost ? -1 : 1;
    return x->node - y->node;
}

static omo_explain_node *sorted_nodes(const omo_explanation *ex)
{
    omo_explain_node *v = omo_xmalloc(sizeof *v * (size_t)(ex->nnodes ? ex->nnodes : 1));
    if (ex->nnodes)
        memcpy(v, ex->nodes, sizeof *v * (size_t)ex->nnodes);
    sort_ex = ex;
    qsort(v, (size_t)ex->nnodes, sizeof *v, cmp_nodes);
    return v;
}

char *omo_explain_text(const omo_explanation *ex, const omo_network *net)
{
    omo_strbuf o = {0};
    char t[40], b1[48], b2[48];
    omo_strbuf_printf(&o, "Order %s, revision %d, decided at %s under rules %s\n", ex->order_id,
                      ex->revision, omo_time_format(ex->decided_at_ms, t, sizeof t),
                      ex->rules_version);
    if (ex->pickup_store >= 0)
        omo_strbuf_printf(&o, "Pickup at %s", net->nodes[ex->pickup_store].id);
    else
        omo_strbuf_printf(&o, "Ship, service %s", ex->service);
    omo_strbuf_printf(&o, "; max_shipments %d, split_lines %s, partial %s\n", ex->max_shipments,
                      ex->split_lines ? "true" : "false", ex->partial_deny ? "deny" : "allow");
    for (int l = 0; l < ex->nlines; l++)
        omo_strbuf_printf(&o, "  line %s: %s x %lld\n", ex->lines[l].line_id, ex->lines[l].sku,
                          (long long)ex->lines[l].qty);
    if (ex->rejected) {
        omo_strbuf_printf(&o, "Rejected: %s\n", ex->rejected);
        return o.p;
    }
    plan_text(&o, "Chosen:", &ex->chosen, ex, net);
    plan_text(&o, "Runner-up:", &ex->runner_up, ex, net);
    if (ex->lookahead)
        lookahead_text(&o, ex, net);
    if (ex->chosen.present && ex->chosen.nships == ex->max_shipments) {
        int64_t want = 0;
        for (int l = 0; l < ex->nlines; l++)
            want += ex->lines[l].qty;
        if (ex->chosen.units < want)
            omo_strbuf_printf(&o,
                              "Limit: max_shipments %d is reached with units still backordered\n",
                              ex->max_shipments);
    }
    omo_strbuf_printf(&o, "\nNodes considered: %d (%d other nodes hold none of the order's SKUs)\n",
                      ex->nnodes, ex->nodes_without_stock);
    omo_strbuf_printf(&o, "%-12s %-17s %8s %7s %8s %7s %6s  %s\n", "NODE", "METHOD", "KM", "ZONE",
                      "COST", "HOURS", "CAP", "LINES / WHY EXCLUDED");
    omo_explain_node *v = sorted_nodes(ex);
    for (int i = 0; i < ex->nnodes; i++) {
        const omo_explain_node *n = &v[i];
        char zone[24] = "-", cap[24] = "-";
        if (n->zone >= 0)
            snprintf(zone, sizeof zone, "<=%g", n->zone_max_km);
        else if (ex->pickup_store == n->node)
            snprintf(zone, sizeof zone, "store");
        if (n->capacity_left >= 0)
            snprintf(cap, sizeof cap, "%lld", (long long)n->capacity_left);
        omo_strbuf_printf(
            &o, "%-12s %-17s %8.1f %7s %8s %7s %6s  ", net->nodes[n->node].id,
            omo_method_name(n->method), n->km, zone,
            n->excluded ? "-" : money(n->cost, b1, sizeof b1),
            n->excluded ? "-" : omo_fixed_format(n->hours, OMO_MILLI, 1, b2, sizeof b2), cap);
        if (n->excluded) {
            omo_strbuf_printf(&o, "excluded: %s", n->excluded);
            /* Lines may each have their own reason behind the node's. */
            for (int l = 0; l < ex->nlines; l++)
                if (n->lines[l].excluded && strcmp(n->lines[l].excluded, n->excluded))
                    omo_strbuf_printf(&o, "; %s: %s", ex->lines[l].line_id, n->lines[l].excluded);
            omo_strbuf_printf(&o, "\n");
            continue;
        }
        for (int l = 0; l < ex->nlines; l++) {
            const omo_explain_line *el = &n->lines[l];
            omo_strbuf_printf(&o, "%s%s: ", l ? "; " : "", ex->lines[l].line_id);
            if (el->excluded)
                omo_strbuf_printf(&o, "excluded, %s", el->excluded);
            else
                omo_strbuf_printf(&o, "atp %lld", (long long)el->atp);
            if (el->chosen)
                omo_strbuf_printf(&o, ", chosen %lld", (long long)el->chosen);
            if (el->runner_up)
                omo_strbuf_printf(&o, ", runner-up %lld", (long long)el->runner_up);
            if (el->price)
                omo_strbuf_printf(&o, ", price %s", money(el->price, b1, sizeof b1));
        }
        omo_strbuf_printf(&o, "\n");
    }
    free(v);
    return o.p;
}

static json_t *fixed_json(int64_t v, int64_t scale)
{
    return json_real((double)v / (double)scale);
}

static json_t *plan_json(const omo_explain_plan *p, const omo_explanation *ex,
                         const omo_network *net)
{
    if (!p->present)
        return json_null();
    json_t *nodes = json_array();
    for (int s = 0; s < p->nships; s++)
        json_array_append_new(nodes, json_string(net->nodes[p->nodes[s]].id));
    json_t *j =
        json_pack("{s:I,s:o,s:i,s:o}", "units", (json_int_t)p->units, "objective",
                  fixed_json(p->objective, 1000000000LL), "shipments", p->nships, "nodes", nodes);
    if (ex->lookahead)
        json_object_set_new(j, "lookahead_prices", fixed_json(p->priced, 1000000000LL));
    return j;
}

char *omo_explain_json(const omo_explanation *ex, const omo_network *net)
{
    char t[40];
    json_t *lines = json_array();
    for (int l = 0; l < ex->nlines; l++)
        json_array_append_new(lines,
                              json_pack("{s:s,s:s,s:I}", "line_id", ex->lines[l].line_id, "sku",
                                        ex->lines[l].sku, "qty", (json_int_t)ex->lines[l].qty));
    json_t *nodes = json_array();
    omo_explain_node *v = sorted_nodes(ex);
    for (int i = 0; i < ex->nnodes; i++) {
        const omo_explain_node *n = &v[i];
        json_t *per = json_array();
        for (int l = 0; l < ex->nlines; l++) {
            const omo_explain_line *el = &n->lines[l];
            json_t *jl =
                json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "line_id", ex->lines[l].line_id,
                          "on_hand", (json_int_t)el->on_hand, "reserved", (json_int_t)el->reserved,
                          "safety_stock", (json_int_t)el->safety, "atp", (json_int_t)el->atp,
                          "chosen", (json_int_t)el->chosen, "runner_up", (json_int_t)el->runner_up);
            json_object_set_new(jl, "safety_stock_rule",
                                el->safety_from ? json_string(el->safety_from) : json_null());
            json_object_set_new(jl, "excluded",
                                el->excluded ? json_string(el->excluded) : json_null());
            if (ex->lookahead)
                json_object_set_new(jl, "lookahead_price", fixed_json(el->price, OMO_MICRO));
            json_array_append_new(per, jl);
        }
        json_t *jn =
            json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "node_id", net->nodes[n->node].id, "method",
                      omo_method_name(n->method), "km", json_real(n->km), "cost",
                      fixed_json(n->cost, OMO_MICRO), "hours", fixed_json(n->hours, OMO_MILLI),
                      "pick_cost_per_unit", fixed_json(n->pick, OMO_MICRO), "lines", per);
        json_object_set_new(jn, "zone_max_km",
                            n->zone >= 0 ? json_real(n->zone_max_km) : json_null());
        json_object_set_new(jn, "capacity_left",
                            n->capacity_left >= 0 ? json_integer(n->capacity_left) : json_null());
        json_object_set_new(jn, "excluded", n->excluded ? json_string(n->excluded) : json_null());
        json_array_append_new(nodes, jn);
    }
    free(v);
    json_t *root = json_pack(
        "{s:s,s:i,s:s,s:s,s:o,s:o,s:o,s:o,s:i,s:i,s:b,s:b}", "order_id", ex->order_id, "revision",
        ex->revision, "decided_at", omo_time_format(ex->decided_at_ms, t, sizeof t),
        "rules_version", ex->rules_version, "lines", lines, "chosen",
        plan_json(&ex->chosen, ex, net), "runner_up", plan_json(&ex->runner_up, ex, net), "nodes",
        nodes, "nodes_without_stock", ex->nodes_without_stock, "max_shipments", ex->max_shipments,
        "split_lines", ex->split_lines, "partial_deny", ex->partial_deny);
    if (ex->pickup_store >= 0)
        json_object_set_new(root, "pickup_store_id", json_string(net->nodes[ex->pickup_store].id));
    else
        json_object_set_new(root, "service", json_string(ex->service));
    if (ex->rejected)
        json_object_set_new(root, "rejected", json_string(ex->rejected));
    if (ex->lookahead)
        json_object_set_new(root, "lookahead",
                            json_pack("{s:f,s:o}", "weight", ex->weight, "myopic",
                                      plan_json(&ex->myopic, ex, net)));
    char *s = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    return s;
}
