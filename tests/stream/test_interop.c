/* Interoperability with a Kafka client no one here wrote: kafka-python (Debian's python3-kafka,
 * a pure-Python implementation of the protocol) produces a generated day, malformed lines
 * included, to a running `omo run` and reads its output topics at both isolation levels
 * (tests/stream/kafka_python.py says what it checks). Then, from this side, the harness's whole
 * end-to-end check over what kafka-python produced: every input applied once, every decision
 * that of `omo solve`, the outbox confirmed, the dead letters exactly the bad lines, every
 * output valid against config/schema. */
#include "service.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static omo_test_service *svc;
static bool passed;

static void teardown(void)
{
    omo_test_service_teardown(svc, passed);
}

static void hex(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", (unsigned char)s[i]);
}

/* The inputs in file order, as kafka_python.py reads them: TOPIC<TAB>KEY<TAB>VALUE in hex. */
static void write_plan(const char *path, const char *expected_path)
{
    FILE *f = fopen(path, "w"), *e = fopen(expected_path, "w");
    cr_assert(f && e);
    for (size_t i = 0; i < svc->ninputs; i++) {
        const omo_test_input *in = &svc->inputs[i];
        fputs(in->topic == OMO_TOPIC_ORDERS ? "omo.orders\t" : "omo.stock\t", f);
        if (in->key)
            hex(f, in->key, strlen(in->key));
        else
            fputc('-', f);
        fputc('\t', f);
        hex(f, in->value, strlen(in->value));
        fputc('\n', f);
        if (in->order_id)
            fprintf(e, "%s\n", in->order_id);
    }
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(fclose(e), 0);
}

Test(interop, kafka_python_produces_and_consumes, .fini = teardown, .timeout = 400)
{
    omo_test_service_opts opts = {.name = "interop",
                                  .omo_binary = OMO_BINARY,
                                  .stores = 30,
                                  .skus = 60,
                                  .orders = 800,
                                  .bad = 12,
                                  .seed = 21,
                                  .brokers = 3,
                                  .partitions = 4};
    svc = omo_test_service_setup(&opts);
    cr_assert_not_null(svc, "setup failed");
    char err[4096], plan[PATH_MAX + 16], expected[PATH_MAX + 16], nbad[16];
    snprintf(plan, sizeof plan, "%s/plan.txt", svc->dir);
    snprintf(expected, sizeof expected, "%s/expected.txt", svc->dir);
    snprintf(nbad, sizeof nbad, "%zu", svc->nbad);
    write_plan(plan, expected);
    cr_assert_gt(svc->nbad, 0);

    cr_assert(omo_test_service_start(svc, err, sizeof err), "%s", err);
    cr_assert(omo_test_service_wait_log(svc, "[service] instance", 60000), "the service did not "
                                                                           "start");
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execl("/usr/bin/python3", "python3", OMO_SOURCE_DIR "/tests/stream/kafka_python.py",
              omo_kafka_mock_bootstraps(svc->kafka), plan, expected, nbad, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "kafka_python.py failed (exit %d): see its FAIL lines above",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    /* kafka-python produced every input: the harness checks the whole story from them. */
    svc->nproduced = svc->ninputs;
    cr_assert(omo_test_service_wait_applied(svc, (long long)svc->ninputs, 60000, err, sizeof err),
              "%s", err);
    cr_assert_eq(omo_test_service_stop(svc, SIGTERM, 30000), 0, "no clean drain");
    omo_test_check check;
    cr_assert(omo_test_service_check(svc, &check, err, sizeof err), "%s", err);
    cr_assert_eq(check.dead_letters, svc->nbad);
    cr_log_info("applied %zu, orders %zu, revisions %zu, shipment statuses %zu, dead letters %zu",
                check.applied, check.orders, check.revisions, check.shipment_statuses,
                check.dead_letters);
    passed = true;
}
