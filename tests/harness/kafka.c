#include "kafka.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "test kafka: %s: %s\n", name, why);
        return false;
    }
    return true;
}

static char *dup_bytes(const void *p, size_t len)
{
    if (!p)
        return NULL;
    char *s = malloc(len + 1);
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

static void record_fill(omo_test_record *rec, const rd_kafka_message_t *rkm)
{
    memset(rec, 0, sizeof *rec);
    rec->key = dup_bytes(rkm->key, rkm->key_len);
    rec->key_len = rkm->key_len;
    rec->value = dup_bytes(rkm->payload ? rkm->payload : "", rkm->len);
    rec->value_len = rkm->len;
    rec->partition = rkm->partition;
    rec->offset = rkm->offset;
    rec->seq = -1;

    rd_kafka_headers_t *hdrs;
    if (rd_kafka_message_headers(rkm, &hdrs))
        return;
    size_t cnt = rd_kafka_header_cnt(hdrs);
    rec->hname = calloc(cnt ? cnt : 1, sizeof *rec->hname);
    rec->hvalue = calloc(cnt ? cnt : 1, sizeof *rec->hvalue);
    for (size_t i = 0; i < cnt; i++) {
        const char *name;
        const void *val;
        size_t size;
        if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size))
            break;
        rec->hname[i] = strdup(name);
        rec->hvalue[i] = dup_bytes(val, size);
        rec->nheaders++;
    }
    const char *seq = omo_test_record_header(rec, "omo.seq");
    if (seq) {
        char *end;
        long long v = strtoll(seq, &end, 10);
        if (*seq && *end == '\0')
            rec->seq = v;
    }
}

static int record_cmp(const void *a, const void *b)
{
    const omo_test_record *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

bool omo_test_kafka_read_all(const char *bootstraps, const char *topic, omo_test_records *out)
{
    char why[256];
    bool ok = false;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_queue_t *rkq = NULL;
    int started = 0;
    int64_t *next = NULL, *high = NULL;
    size_t cap = 0;

    out->recs = NULL;
    out->n = 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!set(conf, "bootstrap.servers", bootstraps) ||
        !set(conf, "isolation.level", "read_uncommitted") ||
        !set(conf, "enable.auto.commit", "false") || !set(conf, "log_level", "3")) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        fprintf(stderr, "test kafka: %s\n", why);
        rd_kafka_conf_destroy(conf);
        return false;
    }
    /* the simple consumer: assign() needs a group in librdkafka 2.0.2 */
    rkq = rd_kafka_queue_new(rk);
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "test kafka: metadata for %s: %s\n", topic,
                rd_kafka_err2str(e               ? e
                                 : md->topic_cnt ? md->topics[0].err
                                                 : e));
        goto done;
    }
    int np = md->topics[0].partition_cnt;
    next = calloc((size_t)np, sizeof *next);
    high = calloc((size_t)np, sizeof *high);
    int pending = 0;
    for (int p = 0; p < np; p++) {
        int64_t low;
        if ((e = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high[p], 10000))) {
            fprintf(stderr, "test kafka: watermarks: %s\n", rd_kafka_err2str(e));
            goto done;
        }
        next[p] = low;
        if (low < high[p])
            pending++;
    }
    for (; started < np; started++) {
        if (rd_kafka_consume_start_queue(rkt, started, RD_KAFKA_OFFSET_BEGINNING, rkq) == -1) {
            fprintf(stderr, "test kafka: consume_start: %s\n",
                    rd_kafka_err2str(rd_kafka_last_error()));
            goto done;
        }
    }
    int64_t deadline = now_ms() + 60000;
    while (pending > 0) {
        if (now_ms() > deadline) {
            fprintf(stderr, "test kafka: reading %s timed out\n", topic);
            goto done;
        }
        rd_kafka_message_t *rkm = rd_kafka_consume_queue(rkq, 100);
        if (!rkm)
            continue;
        if (rkm->err) {
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "test kafka: consume: %s\n", rd_kafka_message_errstr(rkm));
        } else if (rkm->partition >= 0 && rkm->partition < np &&
                   rkm->offset < high[rkm->partition]) {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 1024;
                out->recs = realloc(out->recs, cap * sizeof *out->recs);
            }
            record_fill(&out->recs[out->n++], rkm);
            int32_t p = rkm->partition;
            bool was_pending = next[p] < high[p];
            next[p] = rkm->offset + 1;
            if (was_pending && next[p] >= high[p])
                pending--;
        }
        rd_kafka_message_destroy(rkm);
    }
    if (out->n > 1)
        qsort(out->recs, out->n, sizeof *out->recs, record_cmp);
    ok = true;
done:
    if (!ok)
        omo_test_records_free(out);
    for (int p = 0; p < started; p++)
        rd_kafka_consume_stop(rkt, p);
    if (rkq)
        rd_kafka_queue_destroy(rkq);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    free(next);
    free(high);
    rd_kafka_destroy(rk);
    return ok;
}

void omo_test_records_free(omo_test_records *recs)
{
    if (!recs)
        return;
    for (size_t i = 0; i < recs->n; i++) {
        omo_test_record *r = &recs->recs[i];
        free(r->key);
        free(r->value);
        for (int h = 0; h < r->nheaders; h++) {
            free(r->hname[h]);
            free(r->hvalue[h]);
        }
        free(r->hname);
        free(r->hvalue);
    }
    free(recs->recs);
    recs->recs = NULL;
    recs->n = 0;
}

const char *omo_test_record_header(const omo_test_record *rec, const char *name)
{
    const char *found = NULL;
    for (int h = 0; h < rec->nheaders; h++)
        if (strcmp(rec->hname[h], name) == 0)
            found = rec->hvalue[h];
    return found;
}

bool omo_test_records_valid(const char *dir, const omo_test_records *const *sets, size_t nsets,
                            char *err, size_t errlen)
{
    char path[PATH_MAX + 32], report[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/outputs.jsonl", dir);
    snprintf(report, sizeof report, "%s/schema.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s", path);
        return false;
    }
    for (size_t s = 0; s < nsets; s++)
        for (size_t i = 0; i < sets[s]->n; i++)
            fprintf(f, "%.*s\n", (int)sets[s]->recs[i].value_len, sets[s]->recs[i].value);
    if (fclose(f)) {
        snprintf(err, errlen, "cannot write %s", path);
        return false;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(report, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
            _exit(126);
        execl("/usr/bin/python3", "python3", OMO_SOURCE_DIR "/tests/schema/validate.py", path,
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        snprintf(err, errlen, "cannot run tests/schema/validate.py");
        return false;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    char text[600] = "";
    f = fopen(report, "r");
    if (f) {
        text[fread(text, 1, sizeof text - 1, f)] = '\0';
        fclose(f);
    }
    snprintf(err, errlen, "output messages that do not validate against config/schema (%s): %s",
             path, text[0] ? text : "(validate.py did not run)");
    return false;
}
