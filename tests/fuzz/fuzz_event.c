/* One message of the orders or stock topic: parsed and checked against the network, or refused
 * with a field and a reason of the documented vocabulary. */
#include <string.h>

#include "event.h"
#include "fuzz.h"

static omo_network *net;

static const char *const reasons[] = {
    "malformed_json", "wrong_type",   "missing_field",  "unknown_type",
    "unknown_node",   "out_of_range", "too_long",       "bad_id",
    "bad_time",       "bad_bin",      "duplicate_line",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    net = fuzz_network("pick_network.yaml");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static omo_event ev;
    omo_event_error err;
    memset(&err, 0, sizeof err);
    if (omo_event_parse((const char *)data, size, net, &ev, &err)) {
        if (ev.type == OMO_EV_ORDER_CREATED && (ev.nlines == 0 || ev.nlines > OMO_MAX_LINES))
            abort();
        for (size_t i = 0; ev.type == OMO_EV_ORDER_CREATED && i < ev.nlines; i++)
            if (ev.lines[i].qty <= 0)
                abort();
        return 0;
    }
    bool known = false;
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        known |= !strcmp(err.reason, reasons[i]);
    if (!known || !err.message[0]) {
        fprintf(stderr, "refused with reason '%s', message '%s'\n", err.reason, err.message);
        abort();
    }
    return 0;
}
