/* omo.yaml with ${NAME} references: a few variables are set, others are not. */
#include "fuzz.h"
#include "svcconf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("OMO_PORT", "8080", 1);
    setenv("OMO_TOKEN", "s3cret-token", 1);
    setenv("OMO_EMPTY", "", 1);
    setenv("OMO_BRACES", "${OMO_PORT}", 1); /* not expanded again */
    unsetenv("OMO_UNSET");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    omo_diag diag = {0};
    omo_svcconf *conf = omo_svcconf_parse("/etc/omo/omo.yaml", (const char *)data, size, &diag);
    fuzz_check_diag(&diag, "/etc/omo/omo.yaml", !conf);
    if (conf && conf->ntokens)
        (void)omo_svcconf_token(conf, conf->tokens[0].token);
    omo_svcconf_destroy(conf);
    omo_diag_clear(&diag);
    return 0;
}
