/* A store's pick list: every open pick as one walk through the store (contract section 7). The
 * engine gathers the totes and rows; this module orders them and renders them. */
#ifndef OMO_PICKLIST_H
#define OMO_PICKLIST_H

#include "rules.h"

/* One shipment to pick into one tote. */
typedef struct omo_tote {
    char shipment_id[OMO_LONG_ID_MAX + 16];
    char order_id[OMO_LONG_ID_MAX + 1];
    omo_method method;                 /* ship_from_store or click_and_collect */
    char pickup_store[OMO_ID_MAX + 1]; /* click_and_collect: the customer's pickup store */
    int64_t promised_ms;               /* click_and_collect: when it is promised ready; else 0 */
    int64_t created_ms;                /* the order's created_at: the batch takes the oldest */
    int number;                        /* tote number on the list, from 1 */
} omo_tote;

/* One line to pick. */
typedef struct omo_pick_row {
    char bin[16]; /* "AISLE-BAY-SHELF", or "" when the SKU has no bin */
    char sku[OMO_ID_MAX + 1];
    char line_id[OMO_ID_MAX + 1];
    int64_t qty;
    int tote; /* index into totes */
} omo_pick_row;

typedef struct omo_picklist {
    char store_id[OMO_ID_MAX + 1];
    int64_t generated_ms;
    omo_tote *totes; /* heap */
    size_t ntotes;
    omo_pick_row *rows; /* heap */
    size_t nrows;
} omo_picklist;

/* Parses "07-12-3" into numbers; false for anything else. */
bool omo_bin_parse(const char *bin, int *aisle, int *bay, int *shelf);

/* Puts the rows in walking order: aisles ascending; bays ascending in the 1st, 3rd, ... aisle
 * walked and descending in the 2nd, 4th, ...; then shelf; rows without a bin last, by SKU; ties
 * by the order's age (created_ms, then shipment id), then line id. Numbers the totes 1.. in order
 * of their first row. */
void omo_picklist_sort(omo_picklist *pl);

/* Renders the list as "text" (80 columns), "csv" (header row), "json" or "html". With
 * `actions`, the html page carries confirm and short controls that call the service's HTTP API
 * with `token`. Returns a heap string (length in *len), or NULL for an unknown format. */
char *omo_picklist_render(const omo_picklist *pl, const char *format, bool actions,
                          const char *token, size_t *len);

void omo_picklist_free(omo_picklist *pl);

#endif
