/* Every HTTP route of the service. Requests arrive on the HTTP server's threads; availability and
 * promises are answered there (avail.c), every other request is queued to the service thread,
 * which answers it between batches. */
#include "stream_state.h"

#include "diff.h"
#include "picklist.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void respond(omo_http_response *resp, int status, const char *type, const char *body)
{
    resp->status = status;
    snprintf(resp->content_type, sizeof resp->content_type, "%s", type);
    resp->body = omo_xstrdup(body);
    resp->body_len = strlen(body);
}

static void metrics_counters(omo_strbuf *t, const char *name, const char *help,
                             const counter_set *cs)
{
    omo_strbuf_printf(t, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < cs->n; i++)
        omo_strbuf_printf(t, "%s{%s} %llu\n", name, cs->v[i].labels,
                          (unsigned long long)cs->v[i].value);
}

static void metrics_histogram(omo_strbuf *t, const char *name, const char *help, const histogram *h,
                              const double *bounds, int nb)
{
    omo_strbuf_printf(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < nb; i++)
        omo_strbuf_printf(t, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
                          (unsigned long long)h->buckets[i]);
    omo_strbuf_printf(t, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %g\n%s_count %llu\n", name,
                      (unsigned long long)h->count, name, h->sum, name,
                      (unsigned long long)h->count);
}

static void handle_metrics(omo_stream *svc, omo_http_response *resp)
{
    omo_strbuf t = {0};
    metrics_counters(&t, "omo_events_total", "Input events by topic, type and result.",
                     &svc->events_by);
    metrics_counters(&t, "omo_decisions_total", "Allocation revisions by status.",
                     &svc->decisions_by);
    metrics_counters(&t, "omo_shipments_total", "Shipments in allocation revisions by method.",
                     &svc->ships_by);
    metrics_counters(&t, "omo_dead_letters_total", "Messages sent to the dead-letter topic.",
                     &svc->dead_by);
    metrics_counters(&t, "omo_shipment_statuses_total", "Shipment status messages by status.",
                     &svc->statuses_by);
    metrics_counters(&t, "omo_rules_reloads_total", "Rules reloads by result.", &svc->reloads_by);
    metrics_histogram(&t, "omo_decision_latency_seconds",
                      "From an order's arrival to its first allocation being queued.",
                      &svc->latency, omo_stream_latency_bounds, LATENCY_BUCKETS);
    metrics_histogram(&t, "omo_batch_size", "Events per committed batch.", &svc->batch_sizes,
                      omo_stream_batch_bounds, BATCH_BUCKETS);
    omo_strbuf_printf(&t,
                      "# HELP omo_decisions_unproven_total Decisions whose solver budget ran out "
                      "before the plan was proven optimal.\n"
                      "# TYPE omo_decisions_unproven_total counter\nomo_decisions_unproven_total "
                      "%llu\n",
                      (unsigned long long)omo_engine_stats_get(svc->eng)->unproven);
    int64_t lag = svc->bus.ops->lag ? svc->bus.ops->lag(svc->bus.self) : -1;
    omo_strbuf_printf(&t,
                      "# HELP omo_consumer_lag Messages behind the input topics' ends.\n"
                      "# TYPE omo_consumer_lag gauge\nomo_consumer_lag %lld\n",
                      (long long)lag);
    omo_strbuf_printf(
        &t,
        "# HELP omo_rules_version_info The rules in force.\n"
        "# TYPE omo_rules_version_info gauge\nomo_rules_version_info{version=\"%s\"} 1\n",
        svc->rules->version_hash);
    omo_strbuf_printf(&t,
                      "# HELP omo_outbox_inflight Messages produced and not yet confirmed.\n"
                      "# TYPE omo_outbox_inflight gauge\nomo_outbox_inflight %zu\n",
                      svc->inflight);
    omo_strbuf_printf(
        &t,
        "# HELP omo_promises_total Promise requests answered.\n"
        "# TYPE omo_promises_total counter\nomo_promises_total %llu\n"
        "# HELP omo_availability_reads_total Availability requests answered.\n"
        "# TYPE omo_availability_reads_total counter\nomo_availability_reads_total %llu\n"
        "# HELP omo_holds_live Checkout holds holding units.\n"
        "# TYPE omo_holds_live gauge\nomo_holds_live %zu\n",
        (unsigned long long)atomic_load(&svc->promises),
        (unsigned long long)atomic_load(&svc->availability_reads), omo_engine_live_holds(svc->eng));
    resp->status = 200;
    snprintf(resp->content_type, sizeof resp->content_type, "text/plain; version=0.0.4");
    resp->body = t.p ? t.p : omo_xstrdup("");
    resp->body_len = t.len;
}

/* Appends a JSON value to a comma-separated list. */
static void list_cb(void *ctx, const char *body, size_t len)
{
    omo_strbuf *t = ctx;
    omo_strbuf_printf(t, "%s%.*s", t->len ? "," : "", (int)len, body);
}

/* GET /orders/{id}: every revision and every shipment status of the order. */
static void handle_order(omo_stream *svc, const char *order_id, omo_http_response *resp)
{
    omo_strbuf revs = {0}, statuses = {0};
    char err[512] = "";
    if (svc->store.ops->order_messages(svc->store.self, OMO_TOPIC_ALLOCATIONS, order_id, list_cb,
                                       &revs, err, sizeof err) != OMO_IO_OK ||
        svc->store.ops->order_messages(svc->store.self, OMO_TOPIC_SHIPMENTS, order_id, list_cb,
                                       &statuses, err, sizeof err) != OMO_IO_OK) {
        free(revs.p);
        free(statuses.p);
        respond(resp, 503, "application/json", "{\"error\":\"database unavailable\"}");
        return;
    }
    if (!revs.len) {
        free(revs.p);
        free(statuses.p);
        respond(resp, 404, "application/json", "{\"error\":\"no such order\"}");
        return;
    }
    json_t *idj = json_string(order_id);
    char *ids = json_dumps(idj, JSON_ENCODE_ANY);
    json_decref(idj);
    omo_strbuf t = {0};
    omo_strbuf_printf(&t, "{\"order_id\":%s,\"revisions\":[%.*s],\"shipment_statuses\":[%.*s]}",
                      ids ? ids : "\"\"", (int)revs.len, revs.p ? revs.p : "", (int)statuses.len,
                      statuses.p ? statuses.p : "");
    free(ids);
    free(revs.p);
    free(statuses.p);
    resp->status = 200;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    resp->body = t.p;
    resp->body_len = t.len;
}

void omo_routes_respond_json(omo_http_response *resp, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    resp->status = status;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    resp->body = text ? text : omo_xstrdup("{}");
    resp->body_len = strlen(resp->body);
}

void omo_routes_respond_error(omo_http_response *resp, int status, const char *error,
                              const char *key, const char *value)
{
    json_t *body = json_pack("{s:s}", "error", error);
    if (key)
        json_object_set_new(body, key, json_string(value ? value : ""));
    omo_routes_respond_json(resp, status, body);
}

int64_t omo_routes_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

omo_apply_result omo_routes_apply_api(omo_stream *svc, json_t *event, omo_event_error *err)
{
    /* One commit at a time on the store's connection, and in order, under the lease. */
    if (omo_outbox_flight_finish(svc) || omo_lease_take(svc)) {
        svc->failed = true;
        json_decref(event);
        memset(err, 0, sizeof *err);
        snprintf(err->message, sizeof err->message, "the database did not take the change");
        return OMO_APPLY_INVALID;
    }
    char *text = json_dumps(event, JSON_COMPACT);
    json_decref(event);
    memset(err, 0, sizeof *err);
    if (!omo_event_parse(text, strlen(text), svc->net, &svc->ev, err)) {
        free(text);
        return OMO_APPLY_INVALID;
    }
    omo_stream_write_lock(svc);
    omo_apply_result r = omo_engine_apply(svc->eng, &svc->ev, err);
    omo_stream_write_unlock(svc);
    if (r != OMO_APPLY_OK) {
        free(text);
        return r;
    }
    omo_grow((void **)&svc->events, &svc->capevents, svc->nevents + 1, sizeof(omo_applied_event));
    svc->events[svc->nevents++] = (omo_applied_event){
        svc->next_applied_seq++, TOPIC_API, 0, 0, text, strlen(text), svc->rules->version_hash};
    char labels[160];
    snprintf(labels, sizeof labels, "topic=\"api\",type=\"%s\",result=\"applied\"",
             omo_event_type_name(svc->ev.type));
    omo_stream_count(&svc->events_by, labels, 1);
    if (omo_outbox_commit(svc)) {
        /* The view is ahead of the database: only a restart (a replay) can set it right. */
        svc->failed = true;
        snprintf(err->message, sizeof err->message, "the database did not take the change");
        return OMO_APPLY_INVALID;
    }
    return OMO_APPLY_OK;
}

/* The caller may act for this store: an ops token, or the store's own token. */
static bool may_act_for(const omo_token *tok, const char *store_id)
{
    return tok->role == OMO_ROLE_OPS || (tok->store && !strcmp(tok->store, store_id));
}

/* Who changed the rules: the role and a fingerprint of the token, never the token. */
static void token_by(const omo_token *tok, const char *how, char *by, size_t len)
{
    snprintf(by, len, "%s by %s token %08llx", how, tok->role == OMO_ROLE_OPS ? "ops" : "store",
             (unsigned long long)(omo_hash_str(tok->token) & 0xffffffffULL));
}

static json_t *diag_json(const omo_diag *diag)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < diag->count; i++)
        json_array_append_new(arr, json_string(diag->lines[i]));
    return arr;
}

typedef struct history_json_ctx {
    json_t *arr;
} history_json_ctx;

static void history_json_cb(void *ctx, const char *hash, const char *went_live, const char *by)
{
    json_array_append_new(
        ((history_json_ctx *)ctx)->arr,
        json_pack("{s:s,s:s,s:s}", "version", hash, "went_live", went_live, "by", by));
}

static void handle_rules(omo_stream *svc, const omo_http_request *req, const omo_token *tok,
                         omo_http_response *resp)
{
    bool get = !strcmp(req->method, "GET"), put = !strcmp(req->method, "PUT");
    bool reload = !strcmp(req->method, "POST") && !strcmp(req->path, "/rules/reload");
    char err[512] = "", by[96];
    omo_diag diag = {0};
    if (get && !strcmp(req->path, "/rules")) {
        history_json_ctx hc = {json_array()};
        omo_rules_text tc = {0};
        if (svc->store.ops->rules_history(svc->store.self, history_json_cb, &hc, err, sizeof err) !=
                OMO_IO_OK ||
            svc->store.ops->rules_text(svc->store.self, svc->rules->version_hash,
                                       omo_versions_text_cb, &tc, err, sizeof err) != OMO_IO_OK) {
            json_decref(hc.arr);
            free(tc.text);
            omo_routes_respond_error(resp, 503, "database unavailable", NULL, NULL);
            return;
        }
        json_t *live = json_pack("{s:s,s:s}", "version", svc->rules->version_hash, "path",
                                 svc->conf->routing_path);
        if (tc.text)
            json_object_set_new(live, "text", json_stringn(tc.text, tc.len));
        free(tc.text);
        omo_routes_respond_json(resp, 200, json_pack("{s:o,s:o}", "live", live, "history", hc.arr));
        return;
    }
    if (put && !strcmp(req->path, "/rules")) {
        token_by(tok, "PUT /rules", by, sizeof by);
        omo_rules *next =
            omo_versions_parse(svc, "PUT /rules", req->body ? req->body : "", req->body_len, &diag);
        if (!next) {
            omo_routes_respond_json(
                resp, 422,
                json_pack("{s:s,s:o}", "error", "invalid rules", "errors", diag_json(&diag)));
        } else if (!omo_versions_swap(svc, next, req->body ? req->body : "", req->body_len, by)) {
            omo_routes_respond_error(resp, 503, "the database did not record the rules", NULL,
                                     NULL);
        } else {
            /* The file follows, so that a reload or a restart keeps these rules. */
            char tmp[4096];
            snprintf(tmp, sizeof tmp, "%s.tmp", svc->conf->routing_path);
            FILE *f = fopen(tmp, "w");
            bool written = f && fwrite(req->body, 1, req->body_len, f) == req->body_len;
            written = f && !fclose(f) && written && !rename(tmp, svc->conf->routing_path);
            if (!written)
                omo_stream_log("[service] rules are live but %s could not be written",
                               svc->conf->routing_path);
            omo_routes_respond_json(resp, 200,
                                    json_pack("{s:s,s:b}", "version", svc->rules->version_hash,
                                              "file_written", written));
        }
        omo_diag_clear(&diag);
        return;
    }
    if (reload) {
        token_by(tok, "POST /rules/reload", by, sizeof by);
        int rc = omo_versions_reload(svc, by, &diag);
        if (rc == 1)
            omo_routes_respond_json(
                resp, 422,
                json_pack("{s:s,s:o}", "error", "invalid rules", "errors", diag_json(&diag)));
        else if (rc == 2)
            omo_routes_respond_error(resp, 503, "the database did not record the rules", NULL,
                                     NULL);
        else
            omo_routes_respond_json(resp, 200,
                                    json_pack("{s:s}", "version", svc->rules->version_hash));
        omo_diag_clear(&diag);
        return;
    }
    omo_routes_respond_error(resp, 405, "GET or PUT /rules, POST /rules/reload or /rules/diff",
                             NULL, NULL);
}

/* Replays every applied event into eng (or into both engines of a diff). */
typedef struct replay_ctx {
    omo_stream *svc;
    omo_engine *eng[2];
    const omo_rules *rules; /* follow the versions, for eng[0] only */
    bool follow;
    omo_event ev;
    uint64_t events;
    int64_t latest_ms; /* the latest event time replayed */
} replay_ctx;

static void replay_into_cb(void *ctx, const omo_applied_event *ae)
{
    replay_ctx *rc = ctx;
    omo_event_error err;
    rc->events++;
    if (rc->follow)
        omo_versions_follow(rc->svc, rc->eng[0], &rc->rules, ae);
    if (!omo_event_parse(ae->value, ae->value_len, rc->svc->net, &rc->ev, &err))
        return;
    if (rc->ev.has_at && rc->ev.at_ms > rc->latest_ms)
        rc->latest_ms = rc->ev.at_ms;
    for (int i = 0; i < 2; i++)
        if (rc->eng[i])
            (void)omo_engine_apply(rc->eng[i], &rc->ev, &err);
}

static bool replay_into(omo_stream *svc, replay_ctx *rc)
{
    rc->svc = svc;
    char err[512] = "";
    return svc->store.ops->replay(svc->store.self, 0, replay_into_cb, rc, err, sizeof err) ==
           OMO_IO_OK;
}

static void handle_diff(omo_stream *svc, const omo_http_request *req, omo_http_response *resp)
{
    omo_diag diag = {0};
    omo_rules *proposed = omo_versions_parse(svc, "POST /rules/diff", req->body ? req->body : "",
                                             req->body_len, &diag);
    if (!proposed) {
        omo_routes_respond_json(
            resp, 422,
            json_pack("{s:s,s:o}", "error", "invalid rules", "errors", diag_json(&diag)));
        omo_diag_clear(&diag);
        return;
    }
    char fmt[16] = "json";
    omo_query_param(req->query, "format", fmt, sizeof fmt);
    omo_diff_format format = !strcmp(fmt, "text")   ? OMO_DIFF_TEXT
                             : !strcmp(fmt, "html") ? OMO_DIFF_HTML
                                                    : OMO_DIFF_JSON;
    omo_diff *diff = omo_diff_create(svc->net, svc->rules, proposed);
    replay_ctx *rc = omo_xcalloc(1, sizeof *rc);
    rc->eng[0] = omo_diff_engine(diff, OMO_DIFF_OLD);
    rc->eng[1] = omo_diff_engine(diff, OMO_DIFF_NEW);
    if (!replay_into(svc, rc)) {
        omo_routes_respond_error(resp, 503, "database unavailable", NULL, NULL);
    } else {
        /* The last day: every event replays, so the day starts from the right state, and
         * the report speaks of the orders of the day before the latest event. */
        omo_diff_since(diff, rc->latest_ms - 24LL * 3600 * 1000);
        omo_diff_report rep;
        omo_diff_report_build(diff, &rep);
        omo_diff_info info = {.network_path = svc->conf->network_path,
                              .events_path = "applied events",
                              .events = rc->events};
        size_t len = 0;
        char *body = omo_diff_render(diff, &rep, &info, format, &len);
        omo_diff_report_clear(&rep);
        resp->status = 200;
        snprintf(resp->content_type, sizeof resp->content_type, "%s",
                 format == OMO_DIFF_HTML   ? "text/html; charset=utf-8"
                 : format == OMO_DIFF_TEXT ? "text/plain; charset=utf-8"
                                           : "application/json");
        resp->body = body;
        resp->body_len = len;
    }
    free(rc);
    omo_diff_destroy(diff);
    omo_rules_destroy(proposed);
    omo_diag_clear(&diag);
}

typedef struct explain_ctx {
    const omo_network *net;
    bool json;
    char *latest;
} explain_ctx;

static void keep_explanation(void *ctx, const omo_explanation *ex)
{
    explain_ctx *ec = ctx;
    free(ec->latest);
    ec->latest = ec->json ? omo_explain_json(ex, ec->net) : omo_explain_text(ex, ec->net);
}

/* GET /orders/{id}/explain: the decisions replayed under the rules they were made under. */
static void handle_explain(omo_stream *svc, const omo_http_request *req, const char *order_id,
                           omo_http_response *resp)
{
    char fmt[16] = "text";
    omo_query_param(req->query, "format", fmt, sizeof fmt);
    explain_ctx ec = {svc->net, !strcmp(fmt, "json"), NULL};
    const omo_rules *first = svc->nversions ? svc->versions[0] : svc->rules;
    replay_ctx *rc = omo_xcalloc(1, sizeof *rc);
    rc->eng[0] = omo_engine_create(svc->net, first, NULL, NULL);
    rc->rules = first;
    rc->follow = true;
    omo_engine_explain(rc->eng[0], order_id, keep_explanation, &ec);
    if (!replay_into(svc, rc))
        omo_routes_respond_error(resp, 503, "database unavailable", NULL, NULL);
    else if (!ec.latest)
        omo_routes_respond_error(resp, 404, "no such order", "order_id", order_id);
    else {
        resp->status = 200;
        snprintf(resp->content_type, sizeof resp->content_type, "%s",
                 ec.json ? "application/json" : "text/plain; charset=utf-8");
        resp->body = ec.latest;
        resp->body_len = strlen(ec.latest);
        ec.latest = NULL;
    }
    free(ec.latest);
    omo_engine_destroy(rc->eng[0]);
    free(rc);
}

static void handle_picklist(omo_stream *svc, const omo_http_request *req, const omo_token *tok,
                            const char *bearer, const char *store_id, omo_http_response *resp)
{
    int node = omo_network_find(svc->net, store_id);
    if (node < 0 || svc->net->nodes[node].type != OMO_NODE_STORE) {
        omo_routes_respond_error(resp, 404, "no such store", "store_id", store_id);
        return;
    }
    if (!may_act_for(tok, store_id)) {
        omo_routes_respond_error(resp, 403, "this token may not see another store's picks",
                                 "store_id", store_id);
        return;
    }
    char format[16] = "json", maxbuf[16];
    if (omo_query_param(req->query, "format", format, sizeof format) == NULL)
        snprintf(format, sizeof format, "json");
    int max_orders = 0;
    if (omo_query_param(req->query, "max_orders", maxbuf, sizeof maxbuf)) {
        char *end;
        long v = strtol(maxbuf, &end, 10);
        if (*end || v < 1 || v > 100000) {
            omo_routes_respond_error(resp, 400, "max_orders must be a positive integer", "field",
                                     "max_orders");
            return;
        }
        max_orders = (int)v;
    }
    omo_picklist pl;
    omo_engine_picklist(svc->eng, node, max_orders, omo_routes_wall_ms(), &pl);
    omo_picklist_sort(&pl);
    size_t len = 0;
    char *body = omo_picklist_render(&pl, format, true, bearer, &len);
    omo_picklist_free(&pl);
    if (!body) {
        omo_routes_respond_error(resp, 400, "format must be text, csv, json or html", "field",
                                 "format");
        return;
    }
    static const struct {
        const char *format, *type;
    } types[] = {{"text", "text/plain; charset=utf-8"},
                 {"csv", "text/csv; charset=utf-8"},
                 {"json", "application/json"},
                 {"html", "text/html; charset=utf-8"}};
    resp->status = 200;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(types[i].format, format))
            snprintf(resp->content_type, sizeof resp->content_type, "%s", types[i].type);
    resp->body = body;
    resp->body_len = len;
}

/* POST /picks/{id}/confirm, /shipments/{id}/ship, /shipments/{id}/collect. */
static void handle_store_step(omo_stream *svc, const omo_http_request *req, const omo_token *tok,
                              const char *shipment_id, omo_event_type type, omo_http_response *resp)
{
    omo_ship_state state;
    int pickup = -1;
    int node = omo_engine_find_shipment(svc->eng, shipment_id, &state, &pickup);
    if (node < 0) {
        omo_routes_respond_error(resp, 404, "no such shipment", "shipment_id", shipment_id);
        return;
    }
    /* The pickup store hands a transfer-fed order to its customer: it may mark it collected. */
    bool at_pickup = type == OMO_EV_SHIPMENT_COLLECTED && pickup >= 0 &&
                     may_act_for(tok, svc->net->nodes[pickup].id);
    if (!at_pickup && !may_act_for(tok, svc->net->nodes[node].id)) {
        omo_routes_respond_error(resp, 403, "this token may not act on another store's shipments",
                                 "shipment_id", shipment_id);
        return;
    }
    char at[40];
    json_t *event =
        json_pack("{s:s,s:s,s:s}", "type", omo_event_type_name(type), "shipment_id", shipment_id,
                  "at", omo_time_format(omo_routes_wall_ms(), at, sizeof at));
    if (type == OMO_EV_PICK_CONFIRMED && req->body_len) {
        json_error_t jerr;
        json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
        if (!body || !json_is_object(body)) {
            json_decref(body);
            json_decref(event);
            omo_routes_respond_error(resp, 400, body ? "the body must be a JSON object" : jerr.text,
                                     "field", "");
            return;
        }
        json_t *lines = json_object_get(body, "lines");
        if (lines)
            json_object_set(event, "lines", lines);
        json_decref(body);
    }
    omo_event_error err;
    switch (omo_routes_apply_api(svc, event, &err)) {
    case OMO_APPLY_OK:
        omo_engine_find_shipment(svc->eng, shipment_id, &state, NULL);
        omo_routes_respond_json(resp, 200,
                                json_pack("{s:s,s:s}", "shipment_id", shipment_id, "status",
                                          omo_ship_state_name(state)));
        return;
    case OMO_APPLY_CONFLICT:
        omo_routes_respond_error(resp, 409, err.message, "state", err.field);
        return;
    default:
        omo_routes_respond_error(resp, svc->failed ? 503 : 400, err.message, "field", err.field);
        return;
    }
}

const omo_token *omo_routes_token(omo_stream *svc, const omo_http_request *req)
{
    /* A browser following a link cannot send a header: GETs may carry ?token= instead. */
    char qtoken[256];
    const char *bearer = req->bearer;
    if (!bearer && !strcmp(req->method, "GET"))
        bearer = omo_query_param(req->query, "token", qtoken, sizeof qtoken);
    return bearer ? omo_svcconf_token(svc->conf, bearer) : NULL;
}

static void handle_request(omo_stream *svc, const omo_http_request *req, omo_http_response *resp)
{
    bool get = !strcmp(req->method, "GET");
    if (get && !strcmp(req->path, "/readyz")) {
        bool ok = svc->bus.ops->ready(svc->bus.self) && svc->store.ops->ready(svc->store.self);
        respond(resp, ok ? 200 : 503, "text/plain", ok ? "ready\n" : "not ready\n");
        return;
    }
    if (get && !strcmp(req->path, "/metrics")) {
        handle_metrics(svc, resp);
        return;
    }
    char qtoken[256];
    const char *bearer = req->bearer;
    if (!bearer && get)
        bearer = omo_query_param(req->query, "token", qtoken, sizeof qtoken);
    const omo_token *tok = omo_routes_token(svc, req);
    if (!tok) {
        respond(resp, 401, "application/json", "{\"error\":\"missing or unknown bearer token\"}");
        return;
    }
    if (omo_avail_serve(svc, req, tok, resp))
        return;
    bool post = !strcmp(req->method, "POST");
    const char *p = req->path;
    size_t plen = strlen(p);
    if (get && !strncmp(p, "/stores/", 8) && plen > 19 && !strcmp(p + plen - 9, "/picklist")) {
        char store[OMO_ID_MAX + 1];
        size_t n = plen - 8 - 9;
        if (n < sizeof store) {
            memcpy(store, p + 8, n);
            store[n] = 0;
            handle_picklist(svc, req, tok, bearer, store, resp);
            return;
        }
    }
    static const struct {
        const char *prefix, *suffix;
        omo_event_type type;
    } steps[] = {{"/picks/", "/confirm", OMO_EV_PICK_CONFIRMED},
                 {"/shipments/", "/ship", OMO_EV_SHIPMENT_SHIPPED},
                 {"/shipments/", "/collect", OMO_EV_SHIPMENT_COLLECTED}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t a = strlen(steps[i].prefix), b = strlen(steps[i].suffix);
        if (!strncmp(p, steps[i].prefix, a) && plen > a + b &&
            !strcmp(p + plen - b, steps[i].suffix)) {
            if (!post) {
                omo_routes_respond_error(resp, 405, "use POST", NULL, NULL);
                return;
            }
            char id[OMO_LONG_ID_MAX + 16];
            size_t n = plen - a - b;
            if (n >= sizeof id) {
                omo_routes_respond_error(resp, 404, "no such shipment", NULL, NULL);
                return;
            }
            memcpy(id, p + a, n);
            id[n] = 0;
            handle_store_step(svc, req, tok, id, steps[i].type, resp);
            return;
        }
    }
    if (!strcmp(p, "/rules") || !strncmp(p, "/rules/", 7)) {
        if (tok->role != OMO_ROLE_OPS) {
            omo_routes_respond_error(resp, 403, "ops token required", NULL, NULL);
            return;
        }
        if (post && !strcmp(p, "/rules/diff"))
            handle_diff(svc, req, resp);
        else
            handle_rules(svc, req, tok, resp);
        return;
    }
    if (get && !strncmp(p, "/orders/", 8) && plen > 16 && !strcmp(p + plen - 8, "/explain")) {
        if (tok->role != OMO_ROLE_OPS) {
            omo_routes_respond_error(resp, 403, "ops token required", NULL, NULL);
            return;
        }
        char id[OMO_LONG_ID_MAX + 1];
        size_t n = plen - 8 - 8;
        if (n < sizeof id) {
            memcpy(id, p + 8, n);
            id[n] = 0;
            handle_explain(svc, req, id, resp);
            return;
        }
    }
    if (get && !strncmp(req->path, "/orders/", 8) && req->path[8] && !strchr(req->path + 8, '/')) {
        if (tok->role != OMO_ROLE_OPS) {
            respond(resp, 403, "application/json", "{\"error\":\"ops token required\"}");
            return;
        }
        handle_order(svc, req->path + 8, resp);
        return;
    }
    respond(resp, 404, "application/json", "{\"error\":\"no such resource\"}");
}

void omo_stream_http(void *ctx, const omo_http_request *req, omo_http_response *resp)
{
    omo_stream *svc = ctx;
    if (!strcmp(req->method, "GET") && !strcmp(req->path, "/healthz")) {
        respond(resp, 200, "text/plain", "ok\n");
        return;
    }
    /* While the view is rebuilt the service thread serves nothing: other requests wait for it. */
    if (!strcmp(req->method, "GET") && !strcmp(req->path, "/readyz") && !atomic_load(&svc->ready)) {
        respond(resp, 503, "text/plain", "starting\n");
        return;
    }
    /* Availability and promises are answered here, beside the stream. */
    if (omo_avail_read(svc, req, resp))
        return;
    http_job job = {req, resp, false, NULL};
    pthread_mutex_lock(&svc->mu);
    job.next = svc->jobs;
    svc->jobs = &job;
    while (!job.done)
        pthread_cond_wait(&svc->cv, &svc->mu);
    pthread_mutex_unlock(&svc->mu);
}

void omo_routes_serve(omo_stream *svc)
{
    pthread_mutex_lock(&svc->mu);
    http_job *jobs = svc->jobs;
    svc->jobs = NULL;
    pthread_mutex_unlock(&svc->mu);
    if (!jobs)
        return;
    /* The store's connection is free (no commit on its thread), and the view has what the
     * other processes applied, unless all that is asked is how the service is. */
    bool view = false;
    for (http_job *j = jobs; j && !view; j = j->next)
        view = strcmp(j->req->method, "GET") ||
               (strcmp(j->req->path, "/metrics") && strcmp(j->req->path, "/readyz"));
    if (omo_outbox_flight_finish(svc) || (view && omo_lease_take(svc)))
        svc->failed = true;
    for (http_job *j = jobs; j; j = j->next)
        handle_request(svc, j->req, j->resp);
    pthread_mutex_lock(&svc->mu);
    for (http_job *j = jobs; j; j = j->next)
        j->done = true;
    pthread_cond_broadcast(&svc->cv);
    pthread_mutex_unlock(&svc->mu);
}
