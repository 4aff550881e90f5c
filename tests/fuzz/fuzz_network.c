/* network.yaml: every input is loaded or refused with errors at their places. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    omo_diag diag = {0};
    omo_network *net = omo_network_parse("network.yaml", (const char *)data, size, &diag);
    fuzz_check_diag(&diag, "network.yaml", !net);
    omo_network_destroy(net);
    omo_diag_clear(&diag);
    return 0;
}
