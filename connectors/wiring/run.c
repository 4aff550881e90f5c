/* `omo run`, `omo db migrate`: the service beside the order system. */
#include "wiring.h"

#include "commands.h"
#include "http/http.h"
#include "kafka/kafka.h"
#include "notify.h"
#include "postgres/pg.h"
#include "yamldoc.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t omo_stop_requested, omo_reload_requested;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        omo_reload_requested = 1;
    else
        omo_stop_requested = 1;
}

void omo_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Opens the store, retrying while the database cannot be reached. */
static omo_io open_store(const char *dsn, int budget_ms, omo_store *store, char *err, size_t len)
{
    int delay = 100, waited = 0;
    for (;;) {
        omo_io io = omo_pg_store_open(dsn, store, err, len);
        if (io != OMO_IO_RETRY || waited >= budget_ms)
            return io;
        fprintf(stderr, "[postgres] %s; retrying in %d ms\n", err, delay);
        usleep((useconds_t)delay * 1000);
        waited += delay;
        delay = delay < 2000 ? delay * 2 : 2000;
    }
}

int omo_running_open(const char *conf_path, const omo_stream_opts *opts, omo_running *out)
{
    memset(out, 0, sizeof *out);
    omo_diag diag = {0};
    char err[512] = "";
    omo_network *net = NULL;
    omo_rules *rules = NULL;
    omo_svcconf *conf = omo_svcconf_load(conf_path, &diag);
    if (conf)
        net = omo_network_load(conf->network_path, &diag);
    if (net)
        rules = omo_rules_load(conf->routing_path, net, &diag);
    if (!rules) {
        omo_diag_print(&diag, stderr);
        omo_diag_clear(&diag);
        omo_network_destroy(net);
        omo_svcconf_destroy(conf);
        return 2;
    }
    omo_diag_clear(&diag);
    out->conf = conf;
    out->notify = omo_notify_open();
    omo_notify_send(out->notify, "STATUS=connecting to PostgreSQL");

    omo_store store;
    int budget = opts && opts->retry_budget_ms > 0 ? opts->retry_budget_ms : 60000;
    omo_io io = open_store(conf->dsn, budget, &store, err, sizeof err);
    if (io != OMO_IO_OK) {
        fprintf(stderr, "[postgres] %s\n", err);
        omo_rules_destroy(rules);
        omo_network_destroy(net);
        return 1;
    }
    char *text = NULL;
    size_t text_len = 0;
    if (omo_yaml_read_file(conf->routing_path, &text, &text_len, &diag)) {
        if (store.ops->save_rules(store.self, rules->version_hash, text, "file", err, sizeof err) !=
            OMO_IO_OK)
            fprintf(stderr, "[postgres] cannot record the rules version: %s\n", err);
        free(text);
    }
    omo_diag_clear(&diag);
    fprintf(stderr, "[service] rules %s version %s from %s\n", rules->path ? rules->path : "",
            rules->version_hash, conf->routing_path);

    out->stream = omo_stream_create(conf, net, rules, store, opts);
    omo_kafka_conf kc = {.brokers = conf->brokers,
                         .group = conf->group,
                         .topics = {conf->topic_orders, conf->topic_stock, conf->topic_allocations,
                                    conf->topic_shipments, conf->topic_dead_letter,
                                    conf->topic_availability},
                         .props = conf->kafka_props,
                         .nprops = conf->nkafka_props};
    omo_bus bus;
    if (omo_kafka_open(&kc, omo_stream_bus_events(out->stream), &bus, err, sizeof err) !=
        OMO_IO_OK) {
        fprintf(stderr, "[kafka] %s\n", err);
        omo_running_close(out);
        return 2;
    }
    omo_stream_attach_bus(out->stream, bus);
    /* HTTP first: /healthz answers (and /readyz says 503) while the view is rebuilt. */
    if (conf->listen && conf->listen[0]) {
        omo_http_conf hc = {
            .listen = conf->listen, .tls_cert = conf->tls_cert, .tls_key = conf->tls_key};
        out->http = omo_http_start_conf(&hc, omo_stream_http, out->stream, err, sizeof err);
        if (!out->http) {
            fprintf(stderr, "[http] cannot listen on %s: %s\n", conf->listen, err);
            omo_running_close(out);
            return 1;
        }
    }
    omo_notify_send(out->notify, "STATUS=rebuilding the view from PostgreSQL");
    if (omo_stream_start(out->stream, err, sizeof err)) {
        fprintf(stderr, "[service] cannot start: %s\n", err);
        omo_notify_send(out->notify, "STATUS=cannot start: %s", err);
        omo_running_close(out);
        return 1;
    }
    /* Ready for /readyz before READY=1 goes out: whoever hears READY=1 finds /readyz 200. */
    omo_stream_set_ready(out->stream);
    omo_notify_send(out->notify, "READY=1\nSTATUS=consuming");
    if (out->notify)
        fprintf(stderr, "[notify] READY=1 sent%s\n",
                omo_notify_watchdog_enabled(out->notify) ? "; watchdog on" : "");
    return 0;
}

void omo_running_close(omo_running *r)
{
    omo_http_stop(r->http);
    r->http = NULL;
    omo_stream_destroy(r->stream);
    r->stream = NULL;
    omo_svcconf_destroy(r->conf);
    r->conf = NULL;
    omo_notify_close(r->notify);
    r->notify = NULL;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The service loop, telling the service manager how it goes: WATCHDOG=1 from this loop (a loop
 * that stops turning stops the pings), a STATUS= line every few seconds, STOPPING=1 as soon as a
 * stop is asked for; then the drain. */
static int serve(omo_running *r)
{
    double next_status = mono_s() + 5;
    while (!omo_stop_requested) {
        if (omo_stream_step(r->stream)) {
            omo_notify_send(r->notify, "STATUS=failed: an outside system did not answer in time");
            return 1;
        }
        omo_notify_watchdog(r->notify);
        if (r->notify && mono_s() >= next_status) {
            omo_stream_stats st;
            omo_stream_stats_get(r->stream, &st);
            omo_notify_send(
                r->notify, "STATUS=consuming: %llu events applied, %llu orders, lag %lld",
                (unsigned long long)st.applied, (unsigned long long)st.orders, (long long)st.lag);
            next_status = mono_s() + 5;
        }
    }
    omo_notify_send(r->notify, "STOPPING=1\nSTATUS=draining: committing the batch in hand");
    return omo_stream_run(r->stream); /* the stop is set: it only drains */
}

static const char *config_arg(int argc, char **argv, const char *usage)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'}, {0, 0, 0, 0}};
    const char *path = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc + 1, argv - 1, "", opts, NULL)) != -1) {
        if (c != 'c') {
            fputs(usage, stderr);
            return NULL;
        }
        path = optarg;
    }
    if (!path || optind != argc + 1)
        fputs(usage, stderr);
    return optind == argc + 1 ? path : NULL;
}

int omo_cmd_run(int argc, char **argv)
{
    const char *path = config_arg(argc, argv, "usage: omo run --config omo.yaml\n");
    if (!path)
        return 2;
    omo_install_signals();
    omo_stream_opts opts = {
        .stop = &omo_stop_requested, .reload = &omo_reload_requested, .pipeline = true};
    /* How long PostgreSQL and Kafka may stay unreachable before the service gives up (exit 1):
     * the default suits production; tests and impatient operators shorten it. */
    const char *budget = getenv("OMO_RETRY_BUDGET_MS");
    if (budget && *budget) {
        char *end;
        long ms = strtol(budget, &end, 10);
        if (*end || ms < 1 || ms > 86400000) {
            fprintf(stderr, "omo: OMO_RETRY_BUDGET_MS must be 1..86400000 milliseconds, not '%s'\n",
                    budget);
            return 2;
        }
        opts.retry_budget_ms = (int)ms;
    }
    /* The lease's time bound (see README, "Instances"): shorter in tests. */
    const char *lease = getenv("OMO_LEASE_MS");
    if (lease && *lease) {
        char *end;
        long ms = strtol(lease, &end, 10);
        if (*end || ms < 500 || ms > 3600000) {
            fprintf(stderr, "omo: OMO_LEASE_MS must be 500..3600000 milliseconds, not '%s'\n",
                    lease);
            return 2;
        }
        opts.lease_ms = (int)ms;
    }
    omo_running r;
    int rc = omo_running_open(path, &opts, &r);
    if (rc) {
        omo_running_close(&r);
        return rc;
    }
    rc = serve(&r);
    omo_running_close(&r);
    return rc;
}

int omo_cmd_db(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "migrate")) {
        fputs("usage: omo db migrate --config omo.yaml\n", stderr);
        return 2;
    }
    const char *path = config_arg(argc - 1, argv + 1, "usage: omo db migrate --config omo.yaml\n");
    if (!path)
        return 2;
    omo_diag diag = {0};
    omo_svcconf *conf = omo_svcconf_load(path, &diag);
    if (!conf) {
        omo_diag_print(&diag, stderr);
        omo_diag_clear(&diag);
        return 2;
    }
    int rc = omo_pg_cmd_migrate(conf->dsn);
    omo_svcconf_destroy(conf);
    return rc;
}
