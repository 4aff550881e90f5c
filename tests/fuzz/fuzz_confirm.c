/* The body of POST /picks/{id}/confirm: as the handler does, a JSON object whose `lines` go
 * into a pick.confirmed event, which is then parsed and checked as any event is.
 * Bodies of further calls (promise, holds) get a target of their own beside this one. */
#include <jansson.h>
#include <string.h>

#include "event.h"
#include "fuzz.h"

static omo_network *net;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    net = fuzz_network("pick_network.yaml");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, 0, &jerr);
    if (!body || !json_is_object(body)) {
        json_decref(body);
        return 0; /* 400 with jansson's message */
    }
    json_t *event = json_pack("{s:s,s:s,s:s}", "type", "pick.confirmed", "shipment_id", "W-1001/1",
                              "at", "2026-11-23T10:00:00Z");
    json_t *lines = json_object_get(body, "lines");
    if (lines)
        json_object_set(event, "lines", lines);
    json_decref(body);
    char *text = json_dumps(event, JSON_COMPACT);
    json_decref(event);
    if (!text)
        return 0;
    static omo_event ev;
    omo_event_error err;
    memset(&err, 0, sizeof err);
    if (omo_event_parse(text, strlen(text), net, &ev, &err)) {
        if (ev.type != OMO_EV_PICK_CONFIRMED || ev.nlines > OMO_MAX_LINES)
            abort();
    } else if (!err.reason[0] || !err.message[0]) {
        abort();
    }
    free(text);
    return 0;
}
