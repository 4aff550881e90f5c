/* Shared by the libFuzzer targets of this folder: each defines LLVMFuzzerTestOneInput and reads
 * the fixtures it needs once, from the source tree. */
#ifndef OMO_FUZZ_H
#define OMO_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The network of tests/fixtures/NAME; the process ends when it cannot be read. */
static inline omo_network *fuzz_network(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", OMO_SOURCE_DIR, name);
    omo_diag diag = {0};
    omo_network *net = omo_network_load(path, &diag);
    if (!net) {
        omo_diag_print(&diag, stderr);
        abort();
    }
    omo_diag_clear(&diag);
    return net;
}

#endif

/* A refused configuration must say why, every line `NAME:LINE:COL: error: WHAT` (or `NAME:
 * error: WHAT` for the whole file): anything else is a finding. */
static inline void fuzz_check_diag(const omo_diag *diag, const char *name, bool refused)
{
    size_t n = strlen(name);
    if (refused && diag->count == 0) {
        fprintf(stderr, "refused without an error\n");
        abort();
    }
    for (size_t i = 0; i < diag->count; i++) {
        const char *l = diag->lines[i];
        if (strncmp(l, name, n) || l[n] != ':' || !strstr(l, "error: ") || strchr(l, '\n')) {
            fprintf(stderr, "malformed error line: %s\n", l);
            abort();
        }
    }
}
