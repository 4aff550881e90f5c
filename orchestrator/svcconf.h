/* Service configuration (omo.yaml, contract section 9). */
#ifndef OMO_SVCCONF_H
#define OMO_SVCCONF_H

#include "util.h"

typedef enum omo_role { OMO_ROLE_OPS = 0, OMO_ROLE_STORE = 1 } omo_role;

typedef struct omo_token {
    char *token;
    omo_role role;
    char *store;       /* store tokens: the store's node id */
    omo_loc store_loc; /* where `store:` is, for checks against the network */
} omo_token;

typedef struct omo_kv {
    char *key, *value;
} omo_kv;

typedef struct omo_svcconf {
    char *path;
    /* kafka */
    char *brokers;
    char *group;
    char *topic_orders, *topic_stock, *topic_allocations, *topic_shipments, *topic_dead_letter;
    char *topic_availability; /* the availability feed; NULL: none */
    omo_kv *kafka_props;      /* passed to librdkafka as they are */
    size_t nkafka_props;
    /* postgres */
    char *dsn;
    /* files, resolved relative to the directory of omo.yaml */
    char *network_path;
    char *routing_path;
    /* http */
    char *listen;             /* "127.0.0.1:8080"; NULL or "" = no HTTP */
    char *tls_cert, *tls_key; /* PEM files, resolved like the paths above; both or neither */
    omo_token *tokens;
    size_t ntokens;
    /* state (contract section 11) */
    int64_t checkpoint_events;  /* a checkpoint at least every N applied events; default 100000 */
    int64_t checkpoint_seconds; /* and at least this often while events arrive; default 300 */
    int64_t retain_days;        /* history kept this long, by event time; default 7 */
} omo_svcconf;

/* Loads omo.yaml. `${NAME}` inside any scalar is replaced by the environment variable NAME (an
 * unset variable is an error at its place). Defaults: topics omo.orders, omo.stock,
 * omo.allocations, omo.shipments, omo.dead-letter; group omo; state checkpoint_events 100000,
 * checkpoint_seconds 300, retain_days 7. Returns NULL and fills diag
 * (`FILE:LINE:COL: error: WHAT`) on any error. */
omo_svcconf *omo_svcconf_load(const char *path, omo_diag *diag);
/* The same from len bytes of buf, read as the file `path` (relative paths resolve against its
 * directory). */
omo_svcconf *omo_svcconf_parse(const char *path, const char *buf, size_t len, omo_diag *diag);
void omo_svcconf_destroy(omo_svcconf *conf);

/* The token's entry, or NULL. */
const omo_token *omo_svcconf_token(const omo_svcconf *conf, const char *token);

#endif
