/* omo.yaml: where the service finds Kafka, PostgreSQL, its network and rules, and who may call
 * its HTTP side. */
#include "svcconf.h"

#include "yamldoc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { T_KAFKA, T_POSTGRES, T_NETWORK, T_ROUTING, T_HTTP, T_STATE, T_KEYS };
static const omo_ykey top_keys[T_KEYS] = {
    [T_KAFKA] = {"kafka", OMO_YT_MAP, OMO_YK_REQUIRED, 0, 0},
    [T_POSTGRES] = {"postgres", OMO_YT_MAP, OMO_YK_REQUIRED, 0, 0},
    [T_NETWORK] = {"network", OMO_YT_STR, OMO_YK_REQUIRED, 0, 0},
    [T_ROUTING] = {"routing", OMO_YT_STR, OMO_YK_REQUIRED, 0, 0},
    [T_HTTP] = {"http", OMO_YT_MAP, 0, 0, 0},
    [T_STATE] = {"state", OMO_YT_MAP, 0, 0, 0},
};

enum { K_BROKERS, K_GROUP, K_TOPICS, K_PROPERTIES, K_KEYS };
static const omo_ykey kafka_keys[K_KEYS] = {
    [K_BROKERS] = {"brokers", OMO_YT_STR, OMO_YK_REQUIRED, 0, 0},
    [K_GROUP] = {"group", OMO_YT_STR, 0, 0, 0},
    [K_TOPICS] = {"topics", OMO_YT_MAP, 0, 0, 0},
    /* ANY: `properties:` left empty means none, as `{}` does. */
    [K_PROPERTIES] = {"properties", OMO_YT_ANY, 0, 0, 0},
};

enum {
    TP_ORDERS,
    TP_STOCK,
    TP_ALLOCATIONS,
    TP_SHIPMENTS,
    TP_DEAD_LETTER,
    TP_AVAILABILITY,
    TP_KEYS
};
static const omo_ykey topic_keys[TP_KEYS] = {
    [TP_ORDERS] = {"orders", OMO_YT_STR, 0, 0, 0},
    [TP_STOCK] = {"stock", OMO_YT_STR, 0, 0, 0},
    [TP_ALLOCATIONS] = {"allocations", OMO_YT_STR, 0, 0, 0},
    [TP_SHIPMENTS] = {"shipments", OMO_YT_STR, 0, 0, 0},
    [TP_DEAD_LETTER] = {"dead_letter", OMO_YT_STR, 0, 0, 0},
    [TP_AVAILABILITY] = {"availability", OMO_YT_STR, 0, 0, 0},
};
static const char *const topic_defaults[TP_KEYS] = {
    [TP_ORDERS] = "omo.orders",           [TP_STOCK] = "omo.stock",
    [TP_ALLOCATIONS] = "omo.allocations", [TP_SHIPMENTS] = "omo.shipments",
    [TP_DEAD_LETTER] = "omo.dead-letter", [TP_AVAILABILITY] = NULL, /* no feed unless asked for */
};

enum { P_DSN, P_KEYS };
static const omo_ykey postgres_keys[P_KEYS] = {
    [P_DSN] = {"dsn", OMO_YT_STR, OMO_YK_REQUIRED, 0, 0},
};

enum { H_LISTEN, H_TOKENS, H_TLS_CERT, H_TLS_KEY, H_KEYS };
static const omo_ykey http_keys[H_KEYS] = {
    [H_LISTEN] = {"listen", OMO_YT_STR, 0, 0, 0},
    [H_TOKENS] = {"tokens", OMO_YT_LIST, 0, 0, 0},
    [H_TLS_CERT] = {"tls_cert", OMO_YT_STR, 0, 0, 0},
    [H_TLS_KEY] = {"tls_key", OMO_YT_STR, 0, 0, 0},
};

enum { TK_TOKEN, TK_ROLE, TK_STORE, TK_KEYS };
static const omo_ykey token_keys[TK_KEYS] = {
    [TK_TOKEN] = {"token", OMO_YT_STR, OMO_YK_REQUIRED, 0, 0},
    [TK_ROLE] = {"role", OMO_YT_STR, OMO_YK_REQUIRED, 0, 0},
    [TK_STORE] = {"store", OMO_YT_STR, 0, 0, 0},
};

/* Small values are allowed (tests checkpoint every few events); checkpoints at most a day apart,
 * history kept at most ten years. */
enum { S_CHECKPOINT_EVENTS, S_CHECKPOINT_SECONDS, S_RETAIN_DAYS, S_KEYS };
static const omo_ykey state_keys[S_KEYS] = {
    [S_CHECKPOINT_EVENTS] = {"checkpoint_events", OMO_YT_INT, OMO_YK_MIN | OMO_YK_MAX, 1,
                             1000000000},
    [S_CHECKPOINT_SECONDS] = {"checkpoint_seconds", OMO_YT_INT, OMO_YK_MIN | OMO_YK_MAX, 1, 86400},
    [S_RETAIN_DAYS] = {"retain_days", OMO_YT_INT, OMO_YK_MIN | OMO_YK_MAX, 1, 3650},
};

#define KAFKA_TOPIC_MAX 249

static bool name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static void append(char **buf, size_t *used, size_t *cap, const char *s, size_t n)
{
    omo_grow((void **)buf, cap, *used + n + 1, 1);
    memcpy(*buf + *used, s, n);
    *used += n;
    (*buf)[*used] = '\0';
}

/* The scalar's text with every `${NAME}` replaced by the environment's NAME, as a heap string;
 * NULL after reporting each unset variable at the scalar. Text that is not exactly `${NAME}`
 * stays as written, so values such as passwords need no escaping. */
static char *expand(const omo_ynode *node, omo_diag *diag)
{
    const char *s = node->str;
    char *out = NULL;
    size_t used = 0, cap = 0;
    bool ok = true;
    append(&out, &used, &cap, "", 0);
    while (*s) {
        const char *dollar = strstr(s, "${");
        if (!dollar) {
            append(&out, &used, &cap, s, strlen(s));
            break;
        }
        const char *name = dollar + 2, *end = name;
        if (name_start(*end)) {
            while (name_char(*end))
                end++;
        }
        if (end == name || *end != '}') {
            append(&out, &used, &cap, s, (size_t)(name - s));
            s = name;
            continue;
        }
        append(&out, &used, &cap, s, (size_t)(dollar - s));
        char var[256];
        size_t n = (size_t)(end - name);
        if (n >= sizeof var)
            n = sizeof var - 1; /* no environment holds such a name: reported below as unset */
        memcpy(var, name, n);
        var[n] = '\0';
        const char *value = getenv(var);
        if (value) {
            append(&out, &used, &cap, value, strlen(value));
        } else {
            /* One line per variable, however often the scalar names it. */
            char ref[sizeof var + 3];
            snprintf(ref, sizeof ref, "${%s}", var);
            const char *first = strstr(node->str, ref);
            if (!first || first == dollar)
                omo_diag_error(diag, &node->loc, "environment variable %s is not set", var);
            ok = false;
        }
        s = end + 1;
    }
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

/* Expands a value that must not be empty once expanded; NULL after reporting. */
static char *expand_nonempty(const omo_ynode *node, const char *what, omo_diag *diag)
{
    char *s = expand(node, diag);
    if (s && !*s) {
        omo_diag_error(diag, &node->loc, "%s must not be empty", what);
        free(s);
        s = NULL;
    }
    return s;
}

static bool topic_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > KAFKA_TOPIC_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (; *s; s++) {
        if (!name_char(*s) && *s != '.' && *s != '-')
            return false;
    }
    return true;
}

/* HOST:PORT with an IPv4 address or `localhost` (what the HTTP connector can bind), PORT
 * 0..65535 (0: any free port). */
static bool listen_valid(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1])
        return false;
    char host[64];
    size_t hlen = (size_t)(colon - s);
    if (hlen >= sizeof host)
        return false;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    struct in_addr addr;
    if (strcmp(host, "localhost") && inet_pton(AF_INET, host, &addr) != 1)
        return false;
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || p - colon > 5)
            return false;
        port = port * 10 + (*p - '0');
    }
    return port <= 65535;
}

/* network: and routing: are relative to the directory of omo.yaml, so the service finds them
 * wherever it is started from. */
static char *resolve_path(const char *conf_path, const char *path)
{
    const char *slash = strrchr(conf_path, '/');
    if (path[0] == '/' || !slash)
        return omo_xstrdup(path);
    size_t dlen = (size_t)(slash - conf_path) + 1, plen = strlen(path);
    char *out = omo_xmalloc(dlen + plen + 1);
    memcpy(out, conf_path, dlen);
    memcpy(out + dlen, path, plen + 1);
    return out;
}

static void read_kafka(const omo_ynode *map, omo_svcconf *conf, omo_diag *diag)
{
    omo_yval v[K_KEYS];
    (void)omo_ymap_read(map, "kafka", kafka_keys, K_KEYS, v, diag);
    if (v[K_BROKERS].node)
        conf->brokers = expand_nonempty(v[K_BROKERS].node, "brokers", diag);
    if (v[K_GROUP].node)
        conf->group = expand_nonempty(v[K_GROUP].node, "group", diag);
    else
        conf->group = omo_xstrdup("omo");

    omo_yval t[TP_KEYS];
    memset(t, 0, sizeof t);
    if (v[K_TOPICS].node)
        (void)omo_ymap_read(v[K_TOPICS].node, "kafka topics", topic_keys, TP_KEYS, t, diag);
    char **dst[TP_KEYS] = {&conf->topic_orders,      &conf->topic_stock,
                           &conf->topic_allocations, &conf->topic_shipments,
                           &conf->topic_dead_letter, &conf->topic_availability};
    for (size_t i = 0; i < TP_KEYS; i++) {
        if (!t[i].node) {
            *dst[i] = topic_defaults[i] ? omo_xstrdup(topic_defaults[i]) : NULL;
            continue;
        }
        char *name = expand(t[i].node, diag);
        if (name && !topic_valid(name)) {
            omo_diag_error(diag, &t[i].node->loc,
                           "invalid topic name '%s': 1 to %d characters of A-Z a-z 0-9 . _ - "
                           "expected",
                           name, KAFKA_TOPIC_MAX);
            free(name);
            name = NULL;
        }
        *dst[i] = name;
    }

    const omo_ynode *props = v[K_PROPERTIES].node;
    if (!props || omo_ynode_is_null(props))
        return;
    if (props->kind != OMO_Y_MAP) {
        omo_diag_error(diag, &props->loc, "expected a mapping for 'properties', got %s",
                       props->kind == OMO_Y_SEQ ? "a list" : "a scalar");
        return;
    }
    conf->kafka_props = omo_xcalloc(omo_ymap_len(props) + 1, sizeof *conf->kafka_props);
    for (size_t i = 0; i < omo_ymap_len(props); i++) {
        const omo_ynode *key = omo_ymap_key(props, i), *val = omo_ymap_value(props, i);
        char what[128];
        snprintf(what, sizeof what, "kafka property '%s'", key->str);
        if (!omo_ynode_str(val, what, diag))
            continue;
        char *text = expand(val, diag);
        if (!text)
            continue;
        omo_kv *kv = &conf->kafka_props[conf->nkafka_props++];
        kv->key = omo_xstrdup(key->str);
        kv->value = text;
    }
}

static void read_postgres(const omo_ynode *map, omo_svcconf *conf, omo_diag *diag)
{
    omo_yval v[P_KEYS];
    (void)omo_ymap_read(map, "postgres", postgres_keys, P_KEYS, v, diag);
    if (v[P_DSN].node)
        conf->dsn = expand_nonempty(v[P_DSN].node, "dsn", diag);
}

static bool read_token(const omo_ynode *item, omo_token *tok, omo_diag *diag)
{
    size_t start = diag->count;
    omo_yval v[TK_KEYS];
    (void)omo_ymap_read(item, "each token", token_keys, TK_KEYS, v, diag);
    memset(tok, 0, sizeof *tok);
    if (v[TK_TOKEN].node)
        tok->token = expand_nonempty(v[TK_TOKEN].node, "token", diag);

    bool role_known = false;
    if (v[TK_ROLE].node) {
        char *role = expand(v[TK_ROLE].node, diag);
        if (role && !strcmp(role, "ops")) {
            tok->role = OMO_ROLE_OPS;
            role_known = true;
        } else if (role && !strcmp(role, "store")) {
            tok->role = OMO_ROLE_STORE;
            role_known = true;
        } else if (role) {
            omo_diag_error(diag, &v[TK_ROLE].node->loc, "unknown role '%s' (valid: ops, store)",
                           role);
        }
        free(role);
    }

    const omo_ynode *store = v[TK_STORE].node;
    if (store) {
        tok->store = expand(store, diag);
        tok->store_loc = store->loc;
        if (tok->store && !omo_id_valid(tok->store))
            omo_diag_error(diag, &store->loc,
                           "invalid store id '%s': 1 to %d characters of A-Z a-z 0-9 _ . - "
                           "expected",
                           tok->store, OMO_ID_MAX);
    }
    if (role_known && tok->role == OMO_ROLE_STORE && !store)
        omo_diag_error(diag, &item->loc, "a token with role store needs 'store': the store's id");
    if (role_known && tok->role == OMO_ROLE_OPS && store)
        omo_diag_error(diag, &store->loc, "'store' is only for tokens with role store");
    return diag->count == start;
}

static void token_free(omo_token *tok)
{
    free(tok->token);
    free(tok->store);
}

/* Equal strings, in a time that depends on the lengths only, not on where they differ. */
static bool secret_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    volatile unsigned char diff = alen != blen;
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)(i < blen ? b[i] : 0);
    return diff == 0;
}

static void read_http(const omo_ynode *map, omo_svcconf *conf, omo_diag *diag)
{
    omo_yval v[H_KEYS];
    (void)omo_ymap_read(map, "http", http_keys, H_KEYS, v, diag);
    const omo_ynode *listen = v[H_LISTEN].node;
    if (listen) {
        conf->listen = expand(listen, diag);
        if (conf->listen && *conf->listen && !listen_valid(conf->listen))
            omo_diag_error(diag, &listen->loc,
                           "invalid listen address '%s': HOST:PORT expected, HOST an IPv4 "
                           "address or localhost, PORT 0 to 65535",
                           conf->listen);
    }
    /* HTTPS: both PEM files, readable now (a typo is found at start, not at the first call) */
    const omo_ynode *cert = v[H_TLS_CERT].node, *key = v[H_TLS_KEY].node;
    if (cert || key) {
        const omo_ynode *given = cert ? cert : key;
        if (!cert || !key)
            omo_diag_error(diag, &given->loc, "%s needs %s too", cert ? "tls_cert" : "tls_key",
                           cert ? "tls_key" : "tls_cert");
        char **out[2] = {&conf->tls_cert, &conf->tls_key};
        const omo_ynode *nodes[2] = {cert, key};
        const char *names[2] = {"tls_cert", "tls_key"};
        for (int i = 0; i < 2 && cert && key; i++) {
            char *p = expand_nonempty(nodes[i], names[i], diag);
            if (!p)
                continue;
            *out[i] = resolve_path(conf->path, p);
            free(p);
            if (access(*out[i], R_OK) != 0)
                omo_diag_error(diag, &nodes[i]->loc, "cannot read %s '%s': %s", names[i], *out[i],
                               strerror(errno));
        }
    }

    const omo_ynode *tokens = v[H_TOKENS].node;
    if (!tokens)
        return;
    conf->tokens = omo_xcalloc(tokens->nkids + 1, sizeof *conf->tokens);
    int *lines = omo_xcalloc(tokens->nkids + 1, sizeof *lines);
    for (size_t i = 0; i < tokens->nkids; i++) {
        const omo_ynode *item = tokens->kids[i];
        omo_token *tok = &conf->tokens[conf->ntokens];
        if (!read_token(item, tok, diag)) {
            token_free(tok);
            continue;
        }
        /* The token itself is a secret: errors name the lines, never the value. */
        size_t len = strlen(tok->token), dup = conf->ntokens;
        for (size_t j = 0; j < conf->ntokens && dup == conf->ntokens; j++) {
            if (secret_eq(conf->tokens[j].token, strlen(conf->tokens[j].token), tok->token, len))
                dup = j;
        }
        if (dup < conf->ntokens) {
            const omo_ynode *at = omo_ymap_get(item, "token");
            omo_diag_error(diag, &at->loc, "duplicate token (first at line %d)", lines[dup]);
            token_free(tok);
            continue;
        }
        lines[conf->ntokens++] = omo_ymap_get(item, "token")->loc.line;
    }
    free(lines);
}

static void read_state(const omo_ynode *map, omo_svcconf *conf, omo_diag *diag)
{
    omo_yval v[S_KEYS];
    (void)omo_ymap_read(map, "state", state_keys, S_KEYS, v, diag);
    if (v[S_CHECKPOINT_EVENTS].node)
        conf->checkpoint_events = v[S_CHECKPOINT_EVENTS].i;
    if (v[S_CHECKPOINT_SECONDS].node)
        conf->checkpoint_seconds = v[S_CHECKPOINT_SECONDS].i;
    if (v[S_RETAIN_DAYS].node)
        conf->retain_days = v[S_RETAIN_DAYS].i;
}

omo_svcconf *omo_svcconf_load(const char *path, omo_diag *diag)
{
    char *buf = NULL;
    size_t len = 0;
    if (!omo_yaml_read_file(path, &buf, &len, diag))
        return NULL;
    omo_svcconf *conf = omo_svcconf_parse(path, buf, len, diag);
    free(buf);
    return conf;
}

omo_svcconf *omo_svcconf_parse(const char *path, const char *buf, size_t len, omo_diag *diag)
{
    size_t start = diag->count;
    omo_ydoc *doc = NULL;
    omo_svcconf *conf = omo_xcalloc(1, sizeof *conf);
    conf->path = omo_xstrdup(path);
    conf->checkpoint_events = 100000;
    conf->checkpoint_seconds = 300;
    conf->retain_days = 7;
    doc = omo_ydoc_parse(conf->path, buf, len, diag);
    if (!doc)
        goto fail;
    const omo_ynode *root = omo_ydoc_root(doc);
    if (!root) {
        omo_loc loc = {conf->path, 1, 1};
        omo_diag_error(diag, &loc,
                       "the service configuration is empty: it needs kafka, postgres, network "
                       "and routing");
        goto fail;
    }

    omo_yval v[T_KEYS];
    (void)omo_ymap_read(root, "the service configuration", top_keys, T_KEYS, v, diag);
    if (v[T_KAFKA].node)
        read_kafka(v[T_KAFKA].node, conf, diag);
    if (v[T_POSTGRES].node)
        read_postgres(v[T_POSTGRES].node, conf, diag);
    if (v[T_NETWORK].node) {
        char *p = expand_nonempty(v[T_NETWORK].node, "network", diag);
        conf->network_path = p ? resolve_path(conf->path, p) : NULL;
        free(p);
    }
    if (v[T_ROUTING].node) {
        char *p = expand_nonempty(v[T_ROUTING].node, "routing", diag);
        conf->routing_path = p ? resolve_path(conf->path, p) : NULL;
        free(p);
    }
    if (v[T_HTTP].node)
        read_http(v[T_HTTP].node, conf, diag);
    if (v[T_STATE].node)
        read_state(v[T_STATE].node, conf, diag);

    if (diag->count > start) {
        omo_yaml_diag_sort(diag, start, conf->path);
        goto fail;
    }
    omo_ydoc_destroy(doc);
    return conf;

fail:
    omo_ydoc_destroy(doc);
    omo_svcconf_destroy(conf);
    return NULL;
}

void omo_svcconf_destroy(omo_svcconf *conf)
{
    if (!conf)
        return;
    free(conf->path);
    free(conf->tls_cert);
    free(conf->tls_key);
    free(conf->brokers);
    free(conf->group);
    free(conf->topic_orders);
    free(conf->topic_stock);
    free(conf->topic_allocations);
    free(conf->topic_shipments);
    free(conf->topic_dead_letter);
    free(conf->topic_availability);
    for (size_t i = 0; i < conf->nkafka_props; i++) {
        free(conf->kafka_props[i].key);
        free(conf->kafka_props[i].value);
    }
    free(conf->kafka_props);
    free(conf->dsn);
    free(conf->network_path);
    free(conf->routing_path);
    free(conf->listen);
    for (size_t i = 0; i < conf->ntokens; i++)
        token_free(&conf->tokens[i]);
    free(conf->tokens);
    free(conf);
}

const omo_token *omo_svcconf_token(const omo_svcconf *conf, const char *token)
{
    if (!conf || !token)
        return NULL;
    /* Every entry is compared in full, so the time taken does not tell how close a guess was. */
    const omo_token *found = NULL;
    size_t len = strlen(token);
    for (size_t i = 0; i < conf->ntokens; i++) {
        const char *t = conf->tokens[i].token;
        if (secret_eq(t, strlen(t), token, len) && !found)
            found = &conf->tokens[i];
    }
    return found;
}
