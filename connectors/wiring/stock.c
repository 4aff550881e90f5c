/* `omo stock import-bins` and `omo picklist`: the store's tools on the command line. */
#include "wiring.h"

#include "commands.h"
#include "engine.h"
#include "kafka/send.h"
#include "picklist.h"
#include "postgres/pg.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Splits one CSV line (no quoting needed: ids and bins hold no commas) into up to max fields. */
static int split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = 0;
        p = c + 1;
    }
    for (int i = 0; i < n; i++) {
        char *f = fields[i];
        while (*f == ' ' || *f == '\t')
            f++;
        char *end = f + strlen(f);
        while (end > f && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
            *--end = 0;
        fields[i] = f;
    }
    return n;
}

static bool conf_and_network(const char *path, omo_svcconf **conf, omo_network **net)
{
    omo_diag diag = {0};
    *net = NULL;
    *conf = omo_svcconf_load(path, &diag);
    if (*conf)
        *net = omo_network_load((*conf)->network_path, &diag);
    if (!*net) {
        omo_diag_print(&diag, stderr);
        omo_svcconf_destroy(*conf);
        *conf = NULL;
    }
    omo_diag_clear(&diag);
    return *net != NULL;
}

/* omo stock import-bins --config omo.yaml FILE.csv: every good row becomes a stock.bin event on
 * the stock topic, applied by the service in stream order; bad rows are named and skipped. */
static int import_bins(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'}, {0, 0, 0, 0}};
    const char *conf_path = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc + 1, argv - 1, "", opts, NULL)) != -1) {
        if (c != 'c')
            goto usage;
        conf_path = optarg;
    }
    if (!conf_path || optind != argc)
        goto usage;
    const char *csv = argv[optind - 1];
    omo_svcconf *conf;
    omo_network *net;
    if (!conf_and_network(conf_path, &conf, &net))
        return 2;
    FILE *in = fopen(csv, "r");
    if (!in) {
        fprintf(stderr, "%s: error: cannot open: %m\n", csv);
        omo_network_destroy(net);
        omo_svcconf_destroy(conf);
        return 2;
    }
    char **keys = NULL, **values = NULL, *line = NULL;
    size_t n = 0, cap = 0, lcap = 0, lineno = 0, bad = 0;
    while (getline(&line, &lcap, in) > 0) {
        lineno++;
        char *f[4];
        int nf = split(line, f, 4);
        if (nf == 1 && !f[0][0])
            continue;
        if (lineno == 1 && nf == 3 && !strcmp(f[0], "node_id") && !strcmp(f[1], "sku"))
            continue; /* the header row */
        const char *why = NULL;
        int node = nf == 3 ? omo_network_find(net, f[0]) : -1;
        int aisle, bay, shelf;
        if (nf != 3)
            why = "expected 3 fields: node_id,sku,bin";
        else if (node < 0)
            why = "node_id: no such node in the network";
        else if (net->nodes[node].type != OMO_NODE_STORE)
            why = "node_id: bins are for stores, this node is a warehouse";
        else if (!omo_id_valid(f[1]))
            why = "sku: not a valid id";
        else if (!omo_bin_parse(f[2], &aisle, &bay, &shelf))
            why = "bin: must be AISLE-BAY-SHELF in numbers, like 07-12-3";
        if (why) {
            fprintf(stderr, "%s:%zu: error: %s\n", csv, lineno, why);
            bad++;
            continue;
        }
        omo_grow((void **)&keys, &cap, n + 1, sizeof(char *));
        values = omo_xrealloc(values, sizeof(char *) * cap);
        json_t *ev = json_pack("{s:s,s:s,s:s,s:s}", "type", "stock.bin", "node_id", f[0], "sku",
                               f[1], "bin", f[2]);
        values[n] = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
        size_t klen = strlen(f[0]) + strlen(f[1]) + 2;
        keys[n] = omo_xmalloc(klen);
        snprintf(keys[n], klen, "%s/%s", f[0], f[1]);
        n++;
    }
    free(line);
    fclose(in);
    int rc = bad ? 2 : 0;
    if (n) {
        char err[512] = "";
        rd_kafka_t *p = omo_kafka_producer_new(conf->brokers, conf->kafka_props, conf->nkafka_props,
                                               err, sizeof err);
        long failed =
            p ? omo_kafka_produce_wait(p, conf->topic_stock, -1, (const char *const *)keys,
                                       (const char *const *)values, n, 30000, err, sizeof err)
              : -1;
        omo_kafka_producer_destroy(p);
        if (failed) {
            fprintf(stderr, "[kafka] %s\n", err);
            rc = 1;
        }
    }
    printf("%zu bins sent to %s, %zu rows refused\n", rc == 1 ? 0 : n, conf->topic_stock, bad);
    for (size_t i = 0; i < n; i++) {
        free(keys[i]);
        free(values[i]);
    }
    free(keys);
    free(values);
    omo_network_destroy(net);
    omo_svcconf_destroy(conf);
    return rc;
usage:
    fputs("usage: omo stock import-bins --config omo.yaml FILE.csv\n", stderr);
    return 2;
}

int omo_cmd_stock(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "import-bins"))
        return import_bins(argc - 1, argv + 1);
    fputs("usage: omo stock import-bins --config omo.yaml FILE.csv\n", stderr);
    return 2;
}

/* omo picklist --config omo.yaml --store ID: the view rebuilt from PostgreSQL, as the service
 * holds it, and the store's open picks in walking order. */
int omo_cmd_picklist(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"store", required_argument, 0, 's'},
                                         {"format", required_argument, 0, 'f'},
                                         {"max-orders", required_argument, 0, 'm'},
                                         {0, 0, 0, 0}};
    const char *conf_path = NULL, *store_id = NULL, *format = "text";
    int max_orders = 0, c;
    optind = 0;
    while ((c = getopt_long(argc + 1, argv - 1, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            conf_path = optarg;
            break;
        case 's':
            store_id = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'm':
            max_orders = atoi(optarg);
            break;
        default:
            goto usage;
        }
    }
    if (!conf_path || !store_id || optind != argc + 1)
        goto usage;
    omo_svcconf *conf;
    omo_network *net;
    if (!conf_and_network(conf_path, &conf, &net))
        return 2;
    int node = omo_network_find(net, store_id);
    if (node < 0 || net->nodes[node].type != OMO_NODE_STORE) {
        fprintf(stderr, "omo picklist: %s is not a store of %s\n", store_id, conf->network_path);
        omo_network_destroy(net);
        omo_svcconf_destroy(conf);
        return 2;
    }
    omo_diag diag = {0};
    omo_rules *rules = omo_rules_load(conf->routing_path, net, &diag);
    if (!rules) {
        omo_diag_print(&diag, stderr);
        omo_diag_clear(&diag);
        omo_network_destroy(net);
        omo_svcconf_destroy(conf);
        return 2;
    }
    char err[512] = "";
    omo_store store;
    if (omo_pg_store_open(conf->dsn, &store, err, sizeof err) != OMO_IO_OK) {
        fprintf(stderr, "[postgres] %s\n", err);
        omo_rules_destroy(rules);
        omo_network_destroy(net);
        omo_svcconf_destroy(conf);
        return 1;
    }
    omo_stream *stream = omo_stream_create(conf, net, rules, store, NULL);
    int rc = 1;
    if (omo_stream_rebuild(stream, err, sizeof err)) {
        fprintf(stderr, "omo picklist: %s\n", err);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        omo_picklist pl;
        omo_engine_picklist(omo_stream_engine(stream), node, max_orders,
                            (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, &pl);
        omo_picklist_sort(&pl);
        size_t len;
        char *out = omo_picklist_render(&pl, format, false, NULL, &len);
        omo_picklist_free(&pl);
        if (!out) {
            fprintf(stderr, "omo picklist: --format must be text, csv, json or html\n");
            rc = 2;
        } else {
            fwrite(out, 1, len, stdout);
            free(out);
            rc = 0;
        }
    }
    omo_stream_destroy(stream);
    omo_svcconf_destroy(conf);
    return rc;
usage:
    fputs("usage: omo picklist --config omo.yaml --store ID [--format text|csv|json|html] "
          "[--max-orders N]\n",
          stderr);
    return 2;
}
