/* Rules versions: every version ever live is kept, so that a replay decides each event under
 * the rules it was decided under; a reload validates a whole new version and swaps it in. */
#include "stream_state.h"

#include <stdlib.h>
#include <string.h>

/* Keeps a rules version for as long as the stream lives: applied events in a batch and replays
 * point at its hash. Returns the kept one (an equal version already kept wins). */
omo_rules *omo_versions_keep(omo_stream *svc, omo_rules *rules)
{
    for (size_t i = 0; i < svc->nversions; i++)
        if (svc->versions[i] == rules)
            return rules;
    omo_grow((void **)&svc->versions, &svc->capversions, svc->nversions + 1, sizeof(omo_rules *));
    svc->versions[svc->nversions++] = rules;
    return rules;
}

omo_rules *omo_versions_find(omo_stream *svc, const char *hash)
{
    for (size_t i = 0; i < svc->nversions; i++)
        if (!strcmp(svc->versions[i]->version_hash, hash))
            return svc->versions[i];
    return NULL;
}

typedef struct history_ctx {
    omo_stream *svc;
    char **hashes;
    size_t n, cap;
} history_ctx;

static void history_hash_cb(void *ctx, const char *hash, const char *went_live, const char *by)
{
    (void)went_live, (void)by;
    history_ctx *hc = ctx;
    omo_grow((void **)&hc->hashes, &hc->cap, hc->n + 1, sizeof(char *));
    hc->hashes[hc->n++] = omo_xstrdup(hash);
}

void omo_versions_text_cb(void *ctx, const char *text, size_t len)
{
    omo_rules_text *tc = ctx;
    tc->text = text ? omo_stream_dup(text, len) : NULL;
    tc->len = len;
}

/* Loads every rules version that was ever live, so that a replay decides each event under the
 * rules it was decided under. */
int omo_versions_load(omo_stream *svc)
{
    history_ctx hc = {svc, NULL, 0, 0};
    if (WITH_RETRY(svc, "[postgres] rules history",
                   svc->store.ops->rules_history(svc->store.self, history_hash_cb, &hc, err,
                                                 sizeof err)) != OMO_IO_OK)
        return 1;
    int rc = 0;
    for (size_t i = 0; i < hc.n; i++) {
        if (!rc && !omo_versions_find(svc, hc.hashes[i])) {
            omo_rules_text tc = {0};
            if (WITH_RETRY(svc, "[postgres] rules text",
                           svc->store.ops->rules_text(svc->store.self, hc.hashes[i],
                                                      omo_versions_text_cb, &tc, err,
                                                      sizeof err)) != OMO_IO_OK) {
                rc = 1;
            } else if (tc.text) {
                omo_diag diag = {0};
                char name[64];
                snprintf(name, sizeof name, "rules %s", hc.hashes[i]);
                omo_rules *r = omo_rules_parse(name, tc.text, tc.len, svc->net, &diag);
                if (r)
                    omo_versions_keep(svc, r);
                else
                    omo_stream_log("[service] rules version %s no longer loads against the network",
                                   hc.hashes[i]);
                omo_diag_clear(&diag);
                free(tc.text);
            }
        }
        free(hc.hashes[i]);
    }
    free(hc.hashes);
    return rc;
}

/* Sets eng's rules to the version an applied event was decided under, when it is known. */
void omo_versions_follow(omo_stream *svc, omo_engine *eng, const omo_rules **current,
                         const omo_applied_event *ev)
{
    if (!ev->rules_version || !strcmp((*current)->version_hash, ev->rules_version))
        return;
    const omo_rules *r = omo_versions_find(svc, ev->rules_version);
    if (r) {
        omo_engine_set_rules(eng, r);
        *current = r;
    }
}

/* Saves a validated rules version and swaps it in: between two decisions, since requests and
 * signals are handled between batches. Returns false (old rules still live) when the version
 * cannot be recorded. */
bool omo_versions_swap(omo_stream *svc, omo_rules *next, const char *text, size_t len,
                       const char *by)
{
    char *copy = omo_stream_dup(text, len);
    omo_io io = WITH_RETRY(
        svc, "[postgres] save rules",
        svc->store.ops->save_rules(svc->store.self, next->version_hash, copy, by, err, sizeof err));
    free(copy);
    if (io != OMO_IO_OK) {
        omo_rules_destroy(next);
        return false;
    }
    omo_rules *kept = omo_versions_find(svc, next->version_hash);
    if (kept)
        omo_rules_destroy(next);
    else
        kept = omo_versions_keep(svc, next);
    omo_stream_write_lock(svc);
    svc->rules = kept;
    omo_engine_set_rules(svc->eng, kept);
    omo_stream_write_unlock(svc);
    omo_stream_count(&svc->reloads_by, "result=\"ok\"", 1);
    omo_stream_log("[service] rules version %s is live (by %s)", kept->version_hash, by);
    return true;
}

/* Reads and validates rules text; returns the rules, or NULL with every error in diag. */
omo_rules *omo_versions_parse(omo_stream *svc, const char *name, const char *text, size_t len,
                              omo_diag *diag)
{
    omo_rules *r = omo_rules_parse(name, text, len, svc->net, diag);
    if (!r) {
        omo_stream_count(&svc->reloads_by, "result=\"invalid\"", 1);
        for (size_t i = 0; i < diag->count; i++)
            omo_stream_log("[service] rules refused: %s", diag->lines[i]);
    }
    return r;
}

/* Re-reads the routing file. Returns 0, 1 (invalid: diag says why) or 2 (not recorded). */
int omo_versions_reload(omo_stream *svc, const char *by, omo_diag *diag)
{
    char *text = NULL;
    size_t len = 0;
    if (!omo_yaml_read_file(svc->conf->routing_path, &text, &len, diag))
        return 1;
    omo_rules *next = omo_versions_parse(svc, svc->conf->routing_path, text, len, diag);
    int rc = !next ? 1 : omo_versions_swap(svc, next, text, len, by) ? 0 : 2;
    free(text);
    return rc;
}

static void last_hash_cb(void *ctx, const char *hash, const char *went_live, const char *by)
{
    (void)went_live, (void)by;
    snprintf(ctx, OMO_ID_MAX + 1, "%s", hash);
}

/* The rules version put live last, by whichever process, is the live one here too. */
int omo_versions_follow_live(omo_stream *svc)
{
    char last[OMO_ID_MAX + 1] = "";
    if (WITH_RETRY(svc, "[postgres] rules history",
                   svc->store.ops->rules_history(svc->store.self, last_hash_cb, last, err,
                                                 sizeof err)) != OMO_IO_OK)
        return 1;
    omo_rules *r = *last ? omo_versions_find(svc, last) : NULL;
    omo_stream_write_lock(svc);
    if (r && r != svc->rules) {
        svc->rules = r;
        omo_stream_log("[service] rules version %s is live (put live by another process)",
                       r->version_hash);
    }
    omo_engine_set_rules(svc->eng, svc->rules);
    omo_stream_write_unlock(svc);
    return 0;
}
