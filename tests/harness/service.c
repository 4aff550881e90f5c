#include "service.h"

#include "kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const topic_names[OMO_TOPICS] = {
    "omo.orders",    "omo.stock",       "omo.allocations",
    "omo.shipments", "omo.dead-letter", "omo.availability",
};

double omo_test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void omo_test_sleep(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

double omo_test_rng_unit(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static bool fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

/* Runs argv, its stdout to out_path and stderr to err_path (NULL: the test's own). Returns the
 * exit code, or -1. */
static int run_program(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (out_path) {
            int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
                _exit(126);
            close(fd);
        }
        if (err_path) {
            int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
                _exit(126);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = omo_xmalloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = omo_xrealloc(buf, cap);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* ---- the day's inputs ------------------------------------------------------------------ */

/* The string value of "name":"..." in a line that may not parse as JSON. */
static char *raw_field(const char *line, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = strstr(line, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    const char *q = strchr(p, '"');
    if (!q)
        return NULL;
    char *s = omo_xmalloc((size_t)(q - p) + 1);
    memcpy(s, p, (size_t)(q - p));
    s[q - p] = '\0';
    return s;
}

static void input_fill(omo_test_input *in, const char *line, size_t len, size_t lineno)
{
    memset(in, 0, sizeof *in);
    in->line = lineno;
    in->value = omo_xmalloc(len + 1);
    memcpy(in->value, line, len);
    in->value[len] = '\0';
    char *type = raw_field(in->value, "type");
    bool order = !type || strncmp(type, "stock.", 6) != 0;
    in->topic = order ? OMO_TOPIC_ORDERS : OMO_TOPIC_STOCK;
    if (order) {
        in->key = raw_field(in->value, "order_id");
        if (type && !strcmp(type, "order.created") && in->key)
            in->order_id = omo_xstrdup(in->key);
    } else {
        char *node = raw_field(in->value, "node_id"), *sku = raw_field(in->value, "sku");
        if (node && sku) {
            in->key = omo_xmalloc(strlen(node) + strlen(sku) + 2);
            sprintf(in->key, "%s/%s", node, sku);
        }
        free(node);
        free(sku);
    }
    free(type);
}

static bool load_inputs(omo_test_service *svc)
{
    size_t len;
    char *text = read_file(svc->events, &len);
    if (!text) {
        fprintf(stderr, "test service: cannot read %s\n", svc->events);
        return false;
    }
    size_t cap = 0, lineno = 0;
    bool opening = true;
    for (char *p = text; p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
        lineno++;
        if (n > 0) {
            omo_grow((void **)&svc->inputs, &cap, svc->ninputs + 1, sizeof *svc->inputs);
            omo_test_input *in = &svc->inputs[svc->ninputs++];
            input_fill(in, p, n, lineno);
            if (opening && strstr(in->value, "\"type\":\"stock.snapshot\""))
                svc->nopening++;
            else
                opening = false;
        }
        p += n + 1;
    }
    free(text);
    return svc->ninputs > 0;
}

/* `omo solve` on the generated file names every line it refuses and why:
 * "PATH:LINE: error: MESSAGE [reason]". The same lines are bad in any order of application:
 * whether a line is bad depends on itself and on events of its own key only. */
static bool learn_bad_lines(omo_test_service *svc)
{
    char out[PATH_MAX + 16], errs[PATH_MAX + 16];
    snprintf(out, sizeof out, "%s/solved-file.jsonl", svc->dir);
    snprintf(errs, sizeof errs, "%s/solved-file.err", svc->dir);
    char *argv[] = {svc->omo_binary, "solve",      "--network", svc->network,
                    "--rules",       svc->routing, "--events",  svc->events,
                    "--out",         out,          NULL};
    if (run_program(argv, NULL, errs) != 0) {
        fprintf(stderr, "test service: omo solve on %s failed (see %s)\n", svc->events, errs);
        return false;
    }
    char *text = read_file(errs, NULL);
    if (!text)
        return false;
    size_t plen = strlen(svc->events);
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (!strncmp(line, svc->events, plen) && line[plen] == ':') {
            char *end;
            unsigned long lineno = strtoul(line + plen + 1, &end, 10);
            char *open = strrchr(line, '['), *close = strrchr(line, ']');
            if (!strncmp(end, ": error: ", 9) && open && close > open) {
                *close = '\0';
                for (size_t i = 0; i < svc->ninputs; i++)
                    if (svc->inputs[i].line == lineno) {
                        free(svc->inputs[i].bad_reason);
                        svc->inputs[i].bad_reason = omo_xstrdup(open + 1);
                        free(svc->inputs[i].order_id);
                        svc->inputs[i].order_id = NULL;
                    }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    for (size_t i = 0; i < svc->ninputs; i++)
        svc->nbad += svc->inputs[i].bad_reason != NULL;
    return true;
}

/* ---- setup and teardown ---------------------------------------------------------------- */

static bool write_config(omo_test_service *svc, const char *path, const char *dsn)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f,
            "kafka:\n"
            "  brokers: \"%s\"\n"
            "  group: \"%s\"\n"
            "postgres:\n"
            "  dsn: \"%s\"\n"
            "network: network.yaml\n"
            "routing: routing.yaml\n",
            omo_kafka_mock_bootstraps(svc->kafka), svc->group, dsn);
    return fclose(f) == 0;
}

bool omo_test_service_slot_dsn(omo_test_service *svc, int slot, const char *dsn, char *err,
                               size_t errlen)
{
    if (slot < 0 || slot >= OMO_TEST_SLOTS)
        return fail(err, errlen, "no slot %d", slot);
    snprintf(svc->slot_config[slot], sizeof svc->slot_config[slot], "%s/omo-%d.yaml", svc->dir,
             slot);
    if (!write_config(svc, svc->slot_config[slot], dsn))
        return fail(err, errlen, "cannot write %s", svc->slot_config[slot]);
    return true;
}

omo_test_service *omo_test_service_setup(const omo_test_service_opts *opts)
{
    char err[512];
    omo_test_service *svc = omo_xcalloc(1, sizeof *svc);
    snprintf(svc->dir, sizeof svc->dir, "/tmp/omo-%s-XXXXXX", opts->name);
    if (!mkdtemp(svc->dir)) {
        fprintf(stderr, "test service: mkdtemp: %s\n", strerror(errno));
        svc->dir[0] = '\0';
        goto fail;
    }
    chmod(svc->dir, 0755);
    snprintf(svc->config, sizeof svc->config, "%s/omo.yaml", svc->dir);
    snprintf(svc->log, sizeof svc->log, "%s/service.log", svc->dir);
    for (int slot = 1; slot < OMO_TEST_SLOTS; slot++)
        snprintf(svc->more[slot - 1].log, sizeof svc->more[slot - 1].log, "%s/service-%d.log",
                 svc->dir, slot);
    snprintf(svc->events, sizeof svc->events, "%s/events.jsonl", svc->dir);
    snprintf(svc->network, sizeof svc->network, "%s/network.yaml", svc->dir);
    snprintf(svc->routing, sizeof svc->routing, "%s/routing.yaml", svc->dir);
    snprintf(svc->omo_binary, sizeof svc->omo_binary, "%s", opts->omo_binary);
    snprintf(svc->group, sizeof svc->group, "omo-test-%s-%d-%lld", opts->name, (int)getpid(),
             (long long)(omo_test_now() * 1000));
    for (int i = 0; i < 3 && opts->env[i]; i++)
        svc->env[i] = opts->env[i];

    svc->kafka = omo_kafka_mock_start(opts->brokers, opts->partitions, err, sizeof err);
    if (!svc->kafka) {
        fprintf(stderr, "test service: mock cluster: %s\n", err);
        goto fail;
    }
    svc->pg = omo_pg_local_start(NULL, false, err, sizeof err);
    if (!svc->pg) {
        fprintf(stderr, "test service: PostgreSQL: %s\n", err);
        goto fail;
    }

    char gen[PATH_MAX + 8];
    snprintf(gen, sizeof gen, "%s", opts->omo_binary);
    char *slash = strrchr(gen, '/');
    snprintf(slash ? slash + 1 : gen, sizeof gen - (size_t)(slash ? slash + 1 - gen : 0), "gen");
    char a_stores[16], a_skus[16], a_orders[16], a_bad[16], a_seed[16], genlog[PATH_MAX + 16];
    snprintf(a_stores, sizeof a_stores, "%d", opts->stores);
    snprintf(a_skus, sizeof a_skus, "%d", opts->skus);
    snprintf(a_orders, sizeof a_orders, "%d", opts->orders);
    snprintf(a_bad, sizeof a_bad, "%d", opts->bad);
    snprintf(a_seed, sizeof a_seed, "%d", opts->seed);
    snprintf(genlog, sizeof genlog, "%s/gen.log", svc->dir);
    char *gen_argv[] = {gen,        "--out-dir", svc->dir, "--stores", a_stores, "--skus", a_skus,
                        "--orders", a_orders,    "--bad",  a_bad,      "--seed", a_seed,   NULL};
    if (run_program(gen_argv, genlog, genlog) != 0) {
        fprintf(stderr, "test service: %s failed (see %s)\n", gen, genlog);
        goto fail;
    }
    if (!load_inputs(svc) || !learn_bad_lines(svc))
        goto fail;
    if (!write_config(svc, svc->config, omo_pg_local_dsn(svc->pg))) {
        fprintf(stderr, "test service: cannot write %s\n", svc->config);
        goto fail;
    }
    char migrate_log[PATH_MAX + 16];
    snprintf(migrate_log, sizeof migrate_log, "%s/migrate.log", svc->dir);
    char *migrate_argv[] = {svc->omo_binary, "db", "migrate", "--config", svc->config, NULL};
    if (run_program(migrate_argv, migrate_log, migrate_log) != 0) {
        fprintf(stderr, "test service: omo db migrate failed (see %s)\n", migrate_log);
        goto fail;
    }
    return svc;
fail:
    omo_test_service_teardown(svc, false);
    return NULL;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void omo_test_service_teardown(omo_test_service *svc, bool passed)
{
    if (!svc)
        return;
    for (int slot = 0; slot < OMO_TEST_SLOTS; slot++)
        if (omo_test_service_slot_pid(svc, slot) > 0)
            (void)omo_test_service_slot_stop(svc, slot, SIGKILL, 10000);
    if (svc->feeding) {
        /* a failed test need not wait for the rest of the day to be produced */
        __atomic_store_n(&svc->feed_cancel, true, __ATOMIC_RELAXED);
        (void)omo_test_service_feed_wait(svc);
    }
    if (!passed && svc->dir[0]) {
        fprintf(stderr, "test service: kept %s\n", svc->dir);
        omo_test_service_log_tail(svc, 60);
        for (int slot = 1; slot < OMO_TEST_SLOTS; slot++)
            if (access(svc->more[slot - 1].log, F_OK) == 0)
                omo_test_service_slot_log_tail(svc, slot, 60);
    } else if (svc->dir[0]) {
        nftw(svc->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    omo_kafka_mock_stop(svc->kafka);
    omo_pg_local_stop(svc->pg);
    for (size_t i = 0; i < svc->ninputs; i++) {
        free(svc->inputs[i].key);
        free(svc->inputs[i].value);
        free(svc->inputs[i].order_id);
        free(svc->inputs[i].bad_reason);
    }
    free(svc->inputs);
    free(svc);
}

/* ---- input ----------------------------------------------------------------------------- */

static bool produce_range(omo_test_service *svc, size_t from, size_t to)
{
    const char **keys = omo_xcalloc(to - from + 1, sizeof *keys);
    const char **values = omo_xcalloc(to - from + 1, sizeof *values);
    bool ok = true;
    for (int t = OMO_TOPIC_ORDERS; t <= OMO_TOPIC_STOCK && ok; t++) {
        size_t n = 0;
        for (size_t i = from; i < to; i++)
            if ((int)svc->inputs[i].topic == t) {
                keys[n] = svc->inputs[i].key;
                values[n++] = svc->inputs[i].value;
            }
        if (n)
            ok = omo_kafka_mock_produce(svc->kafka, topic_names[t], -1, keys, values, n);
    }
    free(keys);
    free(values);
    return ok;
}

bool omo_test_service_produce(omo_test_service *svc, size_t upto, char *err, size_t errlen)
{
    if (upto > svc->ninputs)
        upto = svc->ninputs;
    if (upto <= svc->nproduced)
        return true;
    if (!produce_range(svc, svc->nproduced, upto))
        return fail(err, errlen, "producing inputs %zu..%zu failed", svc->nproduced, upto);
    svc->nproduced = upto;
    return true;
}

static void *feed_main(void *arg)
{
    omo_test_service *svc = arg;
    while (svc->nproduced < svc->feed_to && !__atomic_load_n(&svc->feed_cancel, __ATOMIC_RELAXED)) {
        size_t to = svc->nproduced + svc->feed_chunk;
        if (to > svc->feed_to)
            to = svc->feed_to;
        if (!produce_range(svc, svc->nproduced, to)) {
            svc->feed_ok = false;
            break;
        }
        svc->nproduced = to;
        if (to < svc->feed_to)
            sleep_ms(svc->feed_pause_ms);
    }
    return NULL;
}

bool omo_test_service_feed(omo_test_service *svc, size_t upto, size_t chunk, int pause_ms)
{
    if (svc->feeding)
        return false;
    svc->feed_to = upto < svc->ninputs ? upto : svc->ninputs;
    svc->feed_chunk = chunk ? chunk : 1;
    svc->feed_pause_ms = pause_ms;
    svc->feed_ok = true;
    svc->feed_cancel = false;
    if (pthread_create(&svc->feeder, NULL, feed_main, svc) != 0)
        return false;
    svc->feeding = true;
    return true;
}

bool omo_test_service_feed_wait(omo_test_service *svc)
{
    if (!svc->feeding)
        return false;
    pthread_join(svc->feeder, NULL);
    svc->feeding = false;
    return svc->feed_ok;
}

/* ---- the service processes ------------------------------------------------------------- */

/* A slot's state. Slot 0's lives in omo_test_service itself, where single-process tests read
 * it; the others in svc->more. */
typedef struct slot_ref {
    pid_t *pid;
    long *log_mark;
    const char *log;
} slot_ref;

static bool slot_valid(int slot)
{
    return slot >= 0 && slot < OMO_TEST_SLOTS;
}

static slot_ref slot_of(omo_test_service *svc, int slot)
{
    if (slot == 0)
        return (slot_ref){&svc->pid, &svc->log_mark, svc->log};
    omo_test_proc *p = &svc->more[slot - 1];
    return (slot_ref){&p->pid, &p->log_mark, p->log};
}

bool omo_test_service_slot_start(omo_test_service *svc, int slot, char *err, size_t errlen)
{
    if (!slot_valid(slot))
        return fail(err, errlen, "no slot %d", slot);
    slot_ref s = slot_of(svc, slot);
    if (*s.pid > 0)
        return slot ? fail(err, errlen, "slot %d is already running", slot)
                    : fail(err, errlen, "the service is already running");
    FILE *log = fopen(s.log, "a");
    if (!log)
        return fail(err, errlen, "cannot open %s: %s", s.log, strerror(errno));
    fseek(log, 0, SEEK_END);
    svc->starts++;
    if (slot)
        fprintf(log, "==== test: start %d (slot %d) ====\n", svc->starts, slot);
    else
        fprintf(log, "==== test: start %d ====\n", svc->starts);
    *s.log_mark = ftell(log);
    fclose(log);

    pid_t pid = fork();
    if (pid < 0)
        return fail(err, errlen, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(s.log, O_WRONLY | O_APPEND);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(126);
        close(fd);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            close(devnull);
        }
        for (int i = 0; i < 4 && svc->env[i]; i++)
            putenv((char *)svc->env[i]);
        char *argv[] = {svc->omo_binary, "run", "--config",
                        svc->slot_config[slot][0] ? svc->slot_config[slot] : svc->config, NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    *s.pid = pid;
    return true;
}

bool omo_test_service_start(omo_test_service *svc, char *err, size_t errlen)
{
    return omo_test_service_slot_start(svc, 0, err, errlen);
}

static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

bool omo_test_service_slot_alive(omo_test_service *svc, int slot)
{
    if (!slot_valid(slot))
        return false;
    slot_ref s = slot_of(svc, slot);
    if (*s.pid <= 0)
        return false;
    int status;
    pid_t r = waitpid(*s.pid, &status, WNOHANG);
    if (r == 0)
        return true;
    if (r == *s.pid) {
        if (slot)
            fprintf(stderr, "test service: slot %d exited by itself with %d\n", slot,
                    decode_status(status));
        else
            fprintf(stderr, "test service: the service exited by itself with %d\n",
                    decode_status(status));
        *s.pid = 0;
        *s.log_mark = 0;
    }
    return false;
}

bool omo_test_service_alive(omo_test_service *svc)
{
    return omo_test_service_slot_alive(svc, 0);
}

int omo_test_service_running(omo_test_service *svc)
{
    int n = 0;
    for (int slot = 0; slot < OMO_TEST_SLOTS; slot++)
        n += omo_test_service_slot_alive(svc, slot);
    return n;
}

pid_t omo_test_service_slot_pid(omo_test_service *svc, int slot)
{
    return slot_valid(slot) ? *slot_of(svc, slot).pid : 0;
}

const char *omo_test_service_slot_log(omo_test_service *svc, int slot)
{
    return slot_valid(slot) ? slot_of(svc, slot).log : NULL;
}

int omo_test_service_slot_stop(omo_test_service *svc, int slot, int sig, int timeout_ms)
{
    if (!slot_valid(slot))
        return -1;
    slot_ref s = slot_of(svc, slot);
    if (*s.pid <= 0)
        return -1;
    if (sig)
        kill(*s.pid, sig);
    double until = omo_test_now() + timeout_ms / 1000.0;
    for (;;) {
        int status;
        pid_t r = waitpid(*s.pid, &status, WNOHANG);
        if (r == *s.pid) {
            *s.pid = 0;
            return decode_status(status);
        }
        if (r < 0 && errno != EINTR) {
            *s.pid = 0;
            return -1;
        }
        if (omo_test_now() > until) {
            if (slot)
                fprintf(stderr,
                        "test service: slot %d still running %d ms after signal %d: killed\n", slot,
                        timeout_ms, sig);
            else
                fprintf(stderr, "test service: still running %d ms after signal %d: killed\n",
                        timeout_ms, sig);
            kill(*s.pid, SIGKILL);
            while (waitpid(*s.pid, &status, 0) < 0 && errno == EINTR)
                ;
            *s.pid = 0;
            return -1;
        }
        sleep_ms(5);
    }
}

int omo_test_service_stop(omo_test_service *svc, int sig, int timeout_ms)
{
    return omo_test_service_slot_stop(svc, 0, sig, timeout_ms);
}

size_t omo_test_service_slot_log_count(omo_test_service *svc, int slot, const char *text)
{
    if (!slot_valid(slot) || !*text)
        return 0;
    slot_ref s = slot_of(svc, slot);
    size_t len, n = 0;
    char *log = read_file(s.log, &len);
    if (!log)
        return 0;
    if ((size_t)*s.log_mark <= len)
        for (const char *p = log + *s.log_mark; (p = strstr(p, text)) != NULL; p += strlen(text))
            n++;
    free(log);
    return n;
}

bool omo_test_service_slot_log_has(omo_test_service *svc, int slot, const char *text)
{
    if (!slot_valid(slot))
        return false;
    slot_ref s = slot_of(svc, slot);
    size_t len;
    char *log = read_file(s.log, &len);
    if (!log)
        return false;
    bool found = (size_t)*s.log_mark <= len && strstr(log + *s.log_mark, text) != NULL;
    free(log);
    return found;
}

bool omo_test_service_log_has(omo_test_service *svc, const char *text)
{
    return omo_test_service_slot_log_has(svc, 0, text);
}

bool omo_test_service_slot_wait_log(omo_test_service *svc, int slot, const char *text,
                                    int timeout_ms)
{
    double until = omo_test_now() + timeout_ms / 1000.0;
    while (omo_test_now() < until) {
        if (omo_test_service_slot_log_has(svc, slot, text))
            return true;
        if (!omo_test_service_slot_alive(svc, slot))
            return false;
        sleep_ms(10);
    }
    return false;
}

bool omo_test_service_wait_log(omo_test_service *svc, const char *text, int timeout_ms)
{
    return omo_test_service_slot_wait_log(svc, 0, text, timeout_ms);
}

void omo_test_service_slot_log_tail(omo_test_service *svc, int slot, int lines)
{
    if (!slot_valid(slot))
        return;
    const char *path = slot_of(svc, slot).log;
    size_t len;
    char *log = read_file(path, &len);
    if (!log)
        return;
    size_t start = len;
    int seen = 0;
    while (start > 0 && seen <= lines)
        if (log[--start] == '\n')
            seen++;
    fprintf(stderr, "---- tail of %s ----\n%s---- end ----\n", path, log + (start ? start + 1 : 0));
    free(log);
}

void omo_test_service_log_tail(omo_test_service *svc, int lines)
{
    omo_test_service_slot_log_tail(svc, 0, lines);
}

/* ---- the database ---------------------------------------------------------------------- */

static PGconn *connect_db(omo_test_service *svc, char *err, size_t errlen)
{
    PGconn *conn = PQconnectdb(omo_pg_local_dsn(svc->pg));
    if (PQstatus(conn) != CONNECTION_OK) {
        fail(err, errlen, "connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

long long omo_test_service_sql_count(omo_test_service *svc, const char *query)
{
    char err[512];
    if (!svc->pg)
        return -1;
    PGconn *conn = connect_db(svc, err, sizeof err);
    if (!conn)
        return -1;
    long long v = -1;
    PGresult *res = PQexec(conn, query);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        v = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(conn);
    return v;
}

bool omo_test_service_wait_applied(omo_test_service *svc, long long n, int timeout_ms, char *err,
                                   size_t errlen)
{
    double until = omo_test_now() + timeout_ms / 1000.0;
    long long have = -1;
    while (omo_test_now() < until) {
        have = omo_test_service_sql_count(svc, "SELECT count(*) FROM applied_events");
        if (have == n)
            return true;
        if (have > n)
            return fail(err, errlen, "%lld events applied, more than the %lld produced", have, n);
        if (omo_test_service_running(svc) == 0)
            return fail(err, errlen, "the service exited with %lld of %lld events applied", have,
                        n);
        sleep_ms(100);
    }
    return fail(err, errlen, "%lld of %lld events applied after %d ms", have, n, timeout_ms);
}

/* ---- the end-to-end check -------------------------------------------------------------- */

typedef struct check_ctx {
    omo_test_service *svc;
    char *err;
    size_t errlen;
    omo_test_records in[2], alloc, ships, dead;
    PGresult *applied, *outbox;
    omo_strmap in_index; /* "topic/partition/offset" -> index into in[topic] */
    omo_strmap revs;     /* "order_id#revision" -> index into alloc */
    omo_strmap orders;   /* order_id -> highest revision seen */
    omo_strmap expected; /* valid input order ids */
    char *solved;
} check_ctx;

static void check_free(check_ctx *c)
{
    for (int t = 0; t < 2; t++)
        omo_test_records_free(&c->in[t]);
    omo_test_records_free(&c->alloc);
    omo_test_records_free(&c->ships);
    omo_test_records_free(&c->dead);
    PQclear(c->applied);
    PQclear(c->outbox);
    omo_strmap_free(&c->in_index);
    omo_strmap_free(&c->revs);
    omo_strmap_free(&c->orders);
    omo_strmap_free(&c->expected);
    free(c->solved);
}

static void pos_key(char *buf, size_t len, int topic, long partition, long long offset)
{
    snprintf(buf, len, "%d/%ld/%lld", topic, partition, offset);
}

static bool read_topics(check_ctx *c)
{
    const char *boot = omo_kafka_mock_bootstraps(c->svc->kafka);
    if (!omo_test_kafka_read_all(boot, topic_names[OMO_TOPIC_ORDERS], &c->in[0]) ||
        !omo_test_kafka_read_all(boot, topic_names[OMO_TOPIC_STOCK], &c->in[1]) ||
        !omo_test_kafka_read_all(boot, topic_names[OMO_TOPIC_ALLOCATIONS], &c->alloc) ||
        !omo_test_kafka_read_all(boot, topic_names[OMO_TOPIC_SHIPMENTS], &c->ships) ||
        !omo_test_kafka_read_all(boot, topic_names[OMO_TOPIC_DEAD_LETTER], &c->dead))
        return fail(c->err, c->errlen, "cannot read the topics back");
    if (c->in[0].n + c->in[1].n != c->svc->ninputs)
        return fail(c->err, c->errlen, "%zu + %zu messages on the input topics, %zu produced",
                    c->in[0].n, c->in[1].n, c->svc->ninputs);
    char key[96];
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < c->in[t].n; i++) {
            pos_key(key, sizeof key, t, c->in[t].recs[i].partition, c->in[t].recs[i].offset);
            if (!omo_strmap_put(&c->in_index, key, (int)i))
                return fail(c->err, c->errlen, "out of memory");
        }
    return true;
}

/* Every input message applied exactly once, with its bytes; the applied values exported in
 * apply order for `omo solve`. */
static bool check_applied(check_ctx *c, const char *export_path)
{
    char err[512];
    PGconn *conn = connect_db(c->svc, err, sizeof err);
    if (!conn)
        return fail(c->err, c->errlen, "%s", err);
    c->applied = PQexecParams(conn,
                              "SELECT seq, topic, partition, \"offset\", value FROM applied_events "
                              "ORDER BY seq",
                              0, NULL, NULL, NULL, NULL, 1);
    c->outbox =
        PQexecParams(conn,
                     "SELECT seq, topic, partition, delivered_offset FROM outbox_deliveries "
                     "ORDER BY seq",
                     0, NULL, NULL, NULL, NULL, 0);
    bool ok = PQresultStatus(c->applied) == PGRES_TUPLES_OK &&
              PQresultStatus(c->outbox) == PGRES_TUPLES_OK;
    if (!ok)
        fail(c->err, c->errlen, "reading applied_events and outbox: %s", PQerrorMessage(conn));
    PQfinish(conn);
    if (!ok)
        return false;

    int n = PQntuples(c->applied);
    if ((size_t)n != c->svc->ninputs)
        return fail(c->err, c->errlen, "%d applied events for %zu input messages", n,
                    c->svc->ninputs);
    FILE *out = fopen(export_path, "w");
    if (!out)
        return fail(c->err, c->errlen, "cannot write %s", export_path);
    bool *seen[2] = {omo_xcalloc(c->in[0].n + 1, 1), omo_xcalloc(c->in[1].n + 1, 1)};
    ok = false;
    char key[96];
    int64_t last_seq = 0;
    for (int i = 0; i < n; i++) {
        /* binary results: integers in network byte order */
        const unsigned char *s = (const unsigned char *)PQgetvalue(c->applied, i, 0);
        int64_t seq = 0;
        for (int b = 0; b < 8; b++)
            seq = (seq << 8) | s[b];
        const unsigned char *t = (const unsigned char *)PQgetvalue(c->applied, i, 1);
        int topic = (t[0] << 8) | t[1];
        const unsigned char *p = (const unsigned char *)PQgetvalue(c->applied, i, 2);
        long partition = ((long)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
        const unsigned char *o = (const unsigned char *)PQgetvalue(c->applied, i, 3);
        long long offset = 0;
        for (int b = 0; b < 8; b++)
            offset = (offset << 8) | o[b];
        if (seq <= last_seq) {
            fail(c->err, c->errlen, "applied seq %" PRId64 " after %" PRId64, seq, last_seq);
            goto done;
        }
        last_seq = seq;
        if (topic != OMO_TOPIC_ORDERS && topic != OMO_TOPIC_STOCK) {
            fail(c->err, c->errlen, "applied event seq %" PRId64 " from topic %d", seq, topic);
            goto done;
        }
        pos_key(key, sizeof key, topic, partition, offset);
        int idx = omo_strmap_get(&c->in_index, key);
        if (idx < 0) {
            fail(c->err, c->errlen,
                 "applied event seq %" PRId64 " names %s[%ld]@%lld: no such "
                 "input message",
                 seq, topic_names[topic], partition, offset);
            goto done;
        }
        if (seen[topic][idx]) {
            fail(c->err, c->errlen,
                 "input message %s[%ld]@%lld applied twice (again as seq "
                 "%" PRId64 ")",
                 topic_names[topic], partition, offset, seq);
            goto done;
        }
        seen[topic][idx] = true;
        const omo_test_record *r = &c->in[topic].recs[idx];
        int vlen = PQgetisnull(c->applied, i, 4) ? -1 : PQgetlength(c->applied, i, 4);
        if (vlen != (int)r->value_len ||
            memcmp(PQgetvalue(c->applied, i, 4), r->value, r->value_len) != 0) {
            fail(c->err, c->errlen, "applied seq %" PRId64 " holds other bytes than %s[%ld]@%lld",
                 seq, topic_names[topic], partition, offset);
            goto done;
        }
        fwrite(r->value, 1, r->value_len, out);
        fputc('\n', out);
    }
    ok = true;
done:
    if (fclose(out) != 0 && ok)
        ok = fail(c->err, c->errlen, "cannot write %s", export_path);
    free(seen[0]);
    free(seen[1]);
    return ok;
}

/* Order id and revision of an allocation, or false. */
static bool alloc_id(const char *value, size_t len, char *order_id, size_t idlen, int *revision)
{
    json_error_t jerr;
    json_t *root = json_loadb(value, len, 0, &jerr);
    const char *id = root ? json_string_value(json_object_get(root, "order_id")) : NULL;
    json_t *rev = root ? json_object_get(root, "revision") : NULL;
    bool ok = id && json_is_integer(rev) && strlen(id) < idlen;
    if (ok) {
        snprintf(order_id, idlen, "%s", id);
        *revision = (int)json_integer_value(rev);
    }
    json_decref(root);
    return ok;
}

/* Allocations: each (order_id, revision) once, revisions 1..max in order, every valid input
 * order and no other. */
static bool check_allocations(check_ctx *c)
{
    char id[256], key[300];
    for (size_t i = 0; i < c->svc->ninputs; i++)
        if (c->svc->inputs[i].order_id &&
            !omo_strmap_put(&c->expected, c->svc->inputs[i].order_id, 0))
            return fail(c->err, c->errlen, "out of memory");
    for (size_t i = 0; i < c->alloc.n; i++) {
        const omo_test_record *r = &c->alloc.recs[i];
        int rev;
        if (!alloc_id(r->value, r->value_len, id, sizeof id, &rev) || rev < 1)
            return fail(c->err, c->errlen, "allocations[%d]@%" PRId64 ": not an allocation: %.200s",
                        r->partition, r->offset, r->value);
        if (!r->key || strcmp(r->key, id) != 0)
            return fail(c->err, c->errlen, "allocations[%d]@%" PRId64 ": key %s for order %s",
                        r->partition, r->offset, r->key ? r->key : "(none)", id);
        if (omo_strmap_get(&c->expected, id) < 0)
            return fail(c->err, c->errlen,
                        "allocations[%d]@%" PRId64 ": order %s is no valid input", r->partition,
                        r->offset, id);
        snprintf(key, sizeof key, "%s#%d", id, rev);
        int dup = omo_strmap_get(&c->revs, key);
        if (dup >= 0)
            return fail(c->err, c->errlen,
                        "order %s revision %d is on the topic twice: [%d]@%" PRId64 " (seq %" PRId64
                        ") and [%d]@%" PRId64 " (seq %" PRId64 ")",
                        id, rev, c->alloc.recs[dup].partition, c->alloc.recs[dup].offset,
                        c->alloc.recs[dup].seq, r->partition, r->offset, r->seq);
        if (!omo_strmap_put(&c->revs, key, (int)i))
            return fail(c->err, c->errlen, "out of memory");
        /* records come in offset order per partition, and an order keeps to one partition */
        int prev = omo_strmap_get(&c->orders, id);
        if (rev != prev + 1 && !(prev < 0 && rev == 1))
            return fail(c->err, c->errlen,
                        "order %s: revision %d at [%d]@%" PRId64 " follows revision %d", id, rev,
                        r->partition, r->offset, prev < 0 ? 0 : prev);
        if (!omo_strmap_put(&c->orders, id, rev))
            return fail(c->err, c->errlen, "out of memory");
    }
    for (size_t i = 0; i < c->svc->ninputs; i++)
        if (c->svc->inputs[i].order_id &&
            omo_strmap_get(&c->orders, c->svc->inputs[i].order_id) < 0)
            return fail(c->err, c->errlen, "order %s (line %zu) has no allocation on the topic",
                        c->svc->inputs[i].order_id, c->svc->inputs[i].line);
    return true;
}

/* `omo solve` on the applied events decides exactly what the topic holds. */
static bool check_solve(check_ctx *c, const char *export_path)
{
    char out[PATH_MAX + 32], errs[PATH_MAX + 32], id[256], key[300];
    snprintf(out, sizeof out, "%s/solved-applied.jsonl", c->svc->dir);
    snprintf(errs, sizeof errs, "%s/solved-applied.err", c->svc->dir);
    char *argv[] = {c->svc->omo_binary,
                    "solve",
                    "--network",
                    c->svc->network,
                    "--rules",
                    c->svc->routing,
                    "--events",
                    (char *)export_path,
                    "--out",
                    out,
                    NULL};
    if (run_program(argv, NULL, errs) != 0)
        return fail(c->err, c->errlen, "omo solve on the applied events failed (see %s)", errs);
    size_t len;
    c->solved = read_file(out, &len);
    if (!c->solved)
        return fail(c->err, c->errlen, "cannot read %s", out);
    bool *matched = omo_xcalloc(c->alloc.n + 1, 1);
    size_t lines = 0;
    bool ok = false;
    for (char *p = c->solved; p < c->solved + len;) {
        char *nl = memchr(p, '\n', (size_t)(c->solved + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(c->solved + len - p);
        lines++;
        int rev;
        if (!alloc_id(p, n, id, sizeof id, &rev)) {
            fail(c->err, c->errlen, "%s:%zu: not an allocation", out, lines);
            goto done;
        }
        snprintf(key, sizeof key, "%s#%d", id, rev);
        int idx = omo_strmap_get(&c->revs, key);
        if (idx < 0) {
            fail(c->err, c->errlen, "omo solve decides order %s revision %d, the topic lacks it",
                 id, rev);
            goto done;
        }
        const omo_test_record *r = &c->alloc.recs[idx];
        if (matched[idx]) {
            fail(c->err, c->errlen, "omo solve writes order %s revision %d twice", id, rev);
            goto done;
        }
        matched[idx] = true;
        if (r->value_len != n || memcmp(r->value, p, n) != 0) {
            fail(c->err, c->errlen, "order %s revision %d differs:\n  topic: %.*s\n  solve: %.*s",
                 id, rev, (int)r->value_len, r->value, (int)n, p);
            goto done;
        }
        p += n + 1;
    }
    if (lines != c->alloc.n) {
        fail(c->err, c->errlen, "omo solve writes %zu allocations, the topic holds %zu", lines,
             c->alloc.n);
        goto done;
    }
    ok = true;
done:
    free(matched);
    return ok;
}

/* The outbox is confirmed whole, and the output topics hold exactly its rows. */
static bool check_outbox(check_ctx *c)
{
    int n = PQntuples(c->outbox);
    size_t per_topic[OMO_TOPICS] = {0};
    omo_test_records *topics[OMO_TOPICS] = {[OMO_TOPIC_ALLOCATIONS] = &c->alloc,
                                            [OMO_TOPIC_SHIPMENTS] = &c->ships,
                                            [OMO_TOPIC_DEAD_LETTER] = &c->dead};
    omo_strmap at = {0}; /* "topic/partition/offset" -> outbox row */
    bool ok = false;
    char key[96];
    for (int i = 0; i < n; i++) {
        long long seq = atoll(PQgetvalue(c->outbox, i, 0));
        int topic = atoi(PQgetvalue(c->outbox, i, 1));
        long partition = atol(PQgetvalue(c->outbox, i, 2));
        if (PQgetisnull(c->outbox, i, 3)) {
            fail(c->err, c->errlen, "outbox seq %lld is not confirmed after the drain", seq);
            goto done;
        }
        if (topic < 0 || topic >= OMO_TOPICS || !topics[topic]) {
            fail(c->err, c->errlen, "outbox seq %lld for topic %d", seq, topic);
            goto done;
        }
        per_topic[topic]++;
        pos_key(key, sizeof key, topic, partition, atoll(PQgetvalue(c->outbox, i, 3)));
        bool added;
        if (omo_strmap_add(&at, key, i, &added) < 0 || !added) {
            fail(c->err, c->errlen, "outbox seq %lld confirmed at %s, as another row", seq, key);
            goto done;
        }
    }
    for (int t = 0; t < OMO_TOPICS; t++) {
        if (!topics[t])
            continue;
        if (topics[t]->n != per_topic[t]) {
            fail(c->err, c->errlen, "%s holds %zu records, the outbox %zu rows", topic_names[t],
                 topics[t]->n, per_topic[t]);
            goto done;
        }
        for (size_t i = 0; i < topics[t]->n; i++) {
            const omo_test_record *r = &topics[t]->recs[i];
            pos_key(key, sizeof key, t, r->partition, r->offset);
            int row = omo_strmap_get(&at, key);
            if (row < 0 || r->seq != atoll(PQgetvalue(c->outbox, row, 0))) {
                fail(c->err, c->errlen,
                     "%s[%d]@%" PRId64 " (seq %" PRId64 ") is no outbox row "
                     "confirmed there",
                     topic_names[t], r->partition, r->offset, r->seq);
                goto done;
            }
        }
    }
    ok = true;
done:
    omo_strmap_free(&at);
    return ok;
}

static bool check_dead_letters(check_ctx *c)
{
    if (c->dead.n != c->svc->nbad)
        return fail(c->err, c->errlen, "%zu dead letters for %zu bad input messages", c->dead.n,
                    c->svc->nbad);
    bool *used = omo_xcalloc(c->dead.n + 1, 1);
    bool ok = false;
    for (size_t i = 0; i < c->svc->ninputs; i++) {
        const omo_test_input *in = &c->svc->inputs[i];
        if (!in->bad_reason)
            continue;
        /* where the input landed */
        const omo_test_records *src = &c->in[in->topic];
        const omo_test_record *orig = NULL;
        for (size_t j = 0; j < src->n && !orig; j++)
            if (!strcmp(src->recs[j].value, in->value))
                orig = &src->recs[j];
        const omo_test_record *d = NULL;
        for (size_t j = 0; j < c->dead.n && !d; j++)
            if (!used[j] && !strcmp(c->dead.recs[j].value, in->value)) {
                used[j] = true;
                d = &c->dead.recs[j];
            }
        if (!orig || !d) {
            fail(c->err, c->errlen, "bad line %zu %s: %s", in->line,
                 orig ? "has no dead letter" : "is not on its input topic", in->value);
            goto done;
        }
        char num[32];
        const char *reason = omo_test_record_header(d, "omo.error.reason");
        const char *field = omo_test_record_header(d, "omo.error.field");
        const char *stopic = omo_test_record_header(d, "omo.source.topic");
        const char *spart = omo_test_record_header(d, "omo.source.partition");
        const char *soff = omo_test_record_header(d, "omo.source.offset");
        if (!reason || strcmp(reason, in->bad_reason) != 0) {
            fail(c->err, c->errlen, "dead letter of line %zu: reason %s, omo solve said %s",
                 in->line, reason ? reason : "(none)", in->bad_reason);
            goto done;
        }
        if (!field) {
            fail(c->err, c->errlen, "dead letter of line %zu: no omo.error.field", in->line);
            goto done;
        }
        if (!stopic || strcmp(stopic, topic_names[in->topic]) != 0) {
            fail(c->err, c->errlen, "dead letter of line %zu: source topic %s", in->line,
                 stopic ? stopic : "(none)");
            goto done;
        }
        snprintf(num, sizeof num, "%d", orig->partition);
        if (!spart || strcmp(spart, num) != 0) {
            fail(c->err, c->errlen, "dead letter of line %zu: source partition %s, not %s",
                 in->line, spart ? spart : "(none)", num);
            goto done;
        }
        snprintf(num, sizeof num, "%" PRId64, orig->offset);
        if (!soff || strcmp(soff, num) != 0) {
            fail(c->err, c->errlen, "dead letter of line %zu: source offset %s, not %s", in->line,
                 soff ? soff : "(none)", num);
            goto done;
        }
        if ((orig->key == NULL) != (d->key == NULL) ||
            (orig->key && strcmp(orig->key, d->key) != 0)) {
            fail(c->err, c->errlen, "dead letter of line %zu: key %s, not %s", in->line,
                 d->key ? d->key : "(none)", orig->key ? orig->key : "(none)");
            goto done;
        }
    }
    ok = true;
done:
    free(used);
    return ok;
}

bool omo_test_service_check_drained(omo_test_service *svc, char *err, size_t errlen)
{
    static const struct {
        const char *what, *query;
    } rules[] = {
        {"outbox rows not confirmed",
         "SELECT count(*) FROM outbox_deliveries WHERE delivered_offset IS NULL"},
        {"input positions not at the end of what was applied",
         "SELECT count(*) FROM input_positions p WHERE p.next_offset <> "
         "(SELECT coalesce(max(a.\"offset\"), -1) + 1 FROM applied_events a "
         "WHERE a.topic = p.topic AND a.partition = p.partition)"},
        {"input partitions applied with a gap or a repeat",
         "SELECT count(*) FROM (SELECT count(*) AS n, min(\"offset\") AS lo, "
         "max(\"offset\") AS hi FROM applied_events GROUP BY topic, partition) x "
         "WHERE lo <> 0 OR hi + 1 <> n"},
        {"partitions applied without a position",
         "SELECT count(*) FROM (SELECT DISTINCT topic, partition FROM applied_events) a "
         "WHERE NOT EXISTS (SELECT 1 FROM input_positions p "
         "WHERE p.topic = a.topic AND p.partition = a.partition)"},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        long long n = omo_test_service_sql_count(svc, rules[i].query);
        if (n != 0)
            return fail(err, errlen, "%s: %lld", rules[i].what, n);
    }
    return true;
}

/* Every allocation and shipment status on the topics validates against the JSON Schemas. */
static bool check_schemas(check_ctx *c)
{
    const omo_test_records *sets[] = {&c->alloc, &c->ships};
    return omo_test_records_valid(c->svc->dir, sets, 2, c->err, c->errlen);
}

bool omo_test_service_check(omo_test_service *svc, omo_test_check *out, char *err, size_t errlen)
{
    check_ctx c = {.svc = svc, .err = err, .errlen = errlen};
    char export_path[PATH_MAX + 32];
    snprintf(export_path, sizeof export_path, "%s/applied.jsonl", svc->dir);
    memset(out, 0, sizeof *out);
    bool ok = svc->nproduced == svc->ninputs ||
              fail(err, errlen, "only %zu of %zu inputs produced", svc->nproduced, svc->ninputs);
    ok = ok && omo_test_service_check_drained(svc, err, errlen) && read_topics(&c) &&
         check_applied(&c, export_path) && check_allocations(&c) && check_solve(&c, export_path) &&
         check_outbox(&c) && check_dead_letters(&c) && check_schemas(&c);
    if (ok) {
        long long bad = omo_test_service_sql_count(
            svc, "SELECT count(*) FROM stock WHERE reserved > on_hand OR reserved < 0");
        long long rows = omo_test_service_sql_count(svc, "SELECT count(*) FROM stock");
        if (bad != 0 || rows <= 0)
            ok = fail(err, errlen, "%lld of %lld stock rows have reserved > on_hand or < 0", bad,
                      rows);
        out->stock_rows = rows > 0 ? (size_t)rows : 0;
    }
    out->applied = (size_t)(c.applied ? PQntuples(c.applied) : 0);
    out->orders = c.orders.count;
    out->revisions = c.alloc.n;
    out->shipment_statuses = c.ships.n;
    out->dead_letters = c.dead.n;
    check_free(&c);
    return ok;
}
