/* routing.yaml, which is also the body of PUT /rules and POST /rules/diff: checked against a
 * network, loaded or refused with errors at their places. */
#include "fuzz.h"
#include "rules.h"

static omo_network *net;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    net = fuzz_network("network_small.yaml");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    omo_diag diag = {0};
    omo_rules *rules = omo_rules_parse("routing.yaml", (const char *)data, size, net, &diag);
    fuzz_check_diag(&diag, "routing.yaml", !rules);
    omo_rules_destroy(rules);
    omo_diag_clear(&diag);
    return 0;
}
