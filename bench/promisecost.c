/* promisecost: what a promise costs against what a decision costs, in one process, without HTTP
 * or Kafka (bench/promise.sh runs it before the end-to-end phases).
 *
 *   promisecost DIR [ORDERS] [THREADS]
 *
 * DIR holds gen's network.yaml, routing.yaml and events.jsonl. The opening stock is applied;
 * then the baskets of the first ORDERS orders (default 20,000) are promised on 1 and on THREADS
 * reader threads at once (default 2), each with its own omo_reader, and finally the same orders
 * are decided (applied) one by one. Prints promises/s and decisions/s and their ratio, measured in
 * the same run. */
#include "engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static omo_engine *eng;
static omo_event *orders;
static size_t norders;

typedef struct worker {
    pthread_t th;
    size_t from, step;
    double secs;
} worker;

static void *promise_all(void *arg)
{
    worker *w = arg;
    omo_reader *rd = omo_reader_create(eng);
    char *buf = NULL;
    size_t cap = 0;
    omo_alloc_status st;
    int64_t obj;
    double t0 = now_s();
    for (size_t i = w->from; i < norders; i += w->step)
        (void)omo_engine_promise(eng, rd, &orders[i], orders[i].at_ms, &buf, &cap, &st, &obj);
    w->secs = now_s() - t0;
    free(buf);
    omo_reader_destroy(rd);
    return NULL;
}

static double promise_rate(int threads)
{
    worker *w = calloc((size_t)threads, sizeof *w);
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){.from = (size_t)i, .step = (size_t)threads};
        pthread_create(&w[i].th, NULL, promise_all, &w[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(w[i].th, NULL);
    double secs = now_s() - t0;
    free(w);
    return (double)norders / secs;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: promisecost DIR [ORDERS] [THREADS]\n");
        return 2;
    }
    size_t want = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
    int threads = argc > 3 ? atoi(argv[3]) : 2;
    char path[4096];
    omo_diag diag = {0};
    snprintf(path, sizeof path, "%s/network.yaml", argv[1]);
    omo_network *net = omo_network_load(path, &diag);
    snprintf(path, sizeof path, "%s/routing.yaml", argv[1]);
    omo_rules *rules = net ? omo_rules_load(path, net, &diag) : NULL;
    if (!rules) {
        fprintf(stderr, "promisecost: %s\n", diag.count ? diag.lines[0] : "cannot load");
        return 1;
    }
    eng = omo_engine_create(net, rules, NULL, NULL);
    snprintf(path, sizeof path, "%s/events.jsonl", argv[1]);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    orders = malloc(sizeof *orders * (want + 1));
    char *line = NULL;
    size_t lcap = 0;
    omo_event ev;
    omo_event_error err;
    bool opening = true;
    while (getline(&line, &lcap, f) > 0 && norders < want) {
        if (!omo_event_parse(line, strlen(line), net, &ev, &err))
            continue;
        if (ev.type == OMO_EV_STOCK_SNAPSHOT && opening) {
            (void)omo_engine_apply(eng, &ev, &err);
            continue;
        }
        opening = false;
        if (ev.type == OMO_EV_ORDER_CREATED)
            orders[norders++] = ev;
    }
    free(line);
    fclose(f);
    double one = promise_rate(1), many = promise_rate(threads);
    double t0 = now_s();
    for (size_t i = 0; i < norders; i++)
        (void)omo_engine_apply(eng, &orders[i], &err);
    double decisions = (double)norders / (now_s() - t0);
    printf("promisecost: %zu orders after the opening stock (one process, no HTTP, no Kafka)\n"
           "  promise      1 thread  %.0f/s (%.1f us each); %d threads %.0f/s\n"
           "  decision     %.0f/s (%.1f us each, reserving)\n"
           "  ratio        promise/decision time %.2f\n",
           norders, one, 1e6 / one, threads, many, decisions, 1e6 / decisions, decisions / one);
    free(orders);
    omo_engine_destroy(eng);
    omo_rules_destroy(rules);
    omo_network_destroy(net);
    return 0;
}
