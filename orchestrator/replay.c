/* Offline replay of an event file into one engine.
 *
 * Reading and checking an event (JSON with jansson, then every field against the network)
 * costs about as much as deciding it, and neither needs the other's memory. So lines are cut
 * into batches, and batches are parsed by a reader thread and, whenever it would otherwise
 * wait, by the calling thread too; the calling thread applies the parsed batches strictly in
 * file order. The engine sees exactly the sequence a single loop would, and bad lines are
 * reported by the calling thread, in order. Without a second thread the calling thread does
 * both in turn. */
#include "replay.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

enum { BATCH = 256, NBUF = 4 };

typedef struct line_ref {
    size_t off, len; /* within the batch's base */
    uint64_t lineno;
    bool ok;             /* parsed into the batch's event of the same index */
    omo_event_error err; /* when !ok */
} line_ref;

typedef struct batch {
    const char *base; /* the mapped file, or buf */
    char *buf;        /* lines copied from a stream */
    size_t buflen, bufcap;
    line_ref lines[BATCH];
    size_t n;
    bool ready;    /* parsed */
    omo_event *ev; /* BATCH events: large plain values, reused */
} batch;

typedef struct ring {
    const omo_network *net;
    /* where lines come from: a mapped regular file, or a stream read with getline */
    const char *map, *p, *end;
    FILE *in;
    char *line;
    size_t linecap;
    uint64_t lineno;
    bool eof;
    int read_errno; /* nonzero when the stream failed before its end */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch buf[NBUF];
    size_t claimed,
        drained; /* batches cut from the source and applied; claimed - drained <= NBUF */
} ring;

/* Cuts the next batch of non-empty lines into b (under the lock). Returns false at the end. */
static bool cut(ring *r, batch *b)
{
    b->n = 0;
    b->buflen = 0;
    b->ready = false;
    b->base = r->map;
    while (b->n < BATCH && !r->eof) {
        const char *text;
        size_t n;
        if (r->map) {
            if (r->p >= r->end) {
                r->eof = true;
                break;
            }
            const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
            const char *stop = nl ? nl : r->end;
            text = r->p;
            n = (size_t)(stop - r->p);
            r->p = stop + 1;
        } else {
            ssize_t got = getline(&r->line, &r->linecap, r->in);
            if (got <= 0) {
                r->eof = true;
                if (ferror(r->in))
                    r->read_errno = errno ? errno : EIO;
                break;
            }
            text = r->line;
            n = (size_t)got;
        }
        r->lineno++;
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        line_ref *l = &b->lines[b->n++];
        l->lineno = r->lineno;
        l->len = n;
        if (r->map) {
            l->off = (size_t)(text - r->map);
        } else {
            omo_grow((void **)&b->buf, &b->bufcap, b->buflen + n, 1);
            memcpy(b->buf + b->buflen, text, n);
            l->off = b->buflen;
            b->buflen += n;
        }
    }
    if (!r->map)
        b->base = b->buf;
    return b->n > 0;
}

static void parse(const omo_network *net, batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        line_ref *l = &b->lines[i];
        l->ok = omo_event_parse(b->base + l->off, l->len, net, &b->ev[i], &l->err);
    }
}

/* Under the lock: cuts and parses one batch (unlocking while parsing). False when there was
 * nothing to take: the source is at its end, or every buffer is in use. */
static bool take_one(ring *r)
{
    if (r->eof || r->claimed - r->drained == NBUF)
        return false;
    batch *b = &r->buf[r->claimed % NBUF];
    if (!cut(r, b))
        return false;
    r->claimed++;
    pthread_mutex_unlock(&r->mu);
    parse(r->net, b);
    pthread_mutex_lock(&r->mu);
    b->ready = true;
    pthread_cond_broadcast(&r->cv);
    return true;
}

static void *reader(void *arg)
{
    ring *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->eof) {
        if (!take_one(r) && !r->eof)
            pthread_cond_wait(&r->cv, &r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

typedef struct sink {
    const char *path;
    omo_engine *eng;
    omo_bad_line_fn on_bad;
    void *ctx;
    omo_replay_stats st;
} sink;

/* Applies one parsed batch in order, reporting what was refused. */
static void drain(sink *k, batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        line_ref *l = &b->lines[i];
        k->st.lines++;
        if (!l->ok) {
            k->st.bad++;
            if (k->on_bad)
                k->on_bad(k->ctx, k->path, l->lineno, &l->err);
            continue;
        }
        omo_apply_result applied = omo_engine_apply(k->eng, &b->ev[i], &l->err);
        if (applied == OMO_APPLY_INVALID || applied == OMO_APPLY_CONFLICT) {
            k->st.invalid++;
            if (k->on_bad)
                k->on_bad(k->ctx, k->path, l->lineno, &l->err);
        }
    }
}

/* Applies every batch in order; parses when the next batch is not ready yet. */
static void run(ring *r, sink *k)
{
    pthread_t th;
    bool threaded = pthread_create(&th, NULL, reader, r) == 0;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        batch *next = &r->buf[r->drained % NBUF];
        if (r->drained < r->claimed && next->ready) {
            pthread_mutex_unlock(&r->mu);
            drain(k, next);
            pthread_mutex_lock(&r->mu);
            r->drained++;
            pthread_cond_broadcast(&r->cv);
        } else if (r->drained == r->claimed && r->eof) {
            break;
        } else if (!take_one(r) && r->drained < r->claimed) {
            pthread_cond_wait(&r->cv, &r->mu); /* the reader is parsing the next batch */
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (threaded)
        pthread_join(th, NULL);
}

omo_replay_result omo_replay_file(const char *path, const omo_network *net, omo_engine *eng,
                                  omo_bad_line_fn on_bad, void *ctx, omo_replay_stats *stats)
{
    sink k = {.path = path, .eng = eng, .on_bad = on_bad, .ctx = ctx};
    ring r = {.net = net};
    omo_replay_result res = OMO_REPLAY_OK;
    size_t maplen = 0;
    r.in = fopen(path, "r");
    if (!r.in) {
        res = OMO_REPLAY_CANNOT_OPEN;
        goto done;
    }
    struct stat sb;
    if (fstat(fileno(r.in), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
        omo_engine_expect(eng, (size_t)sb.st_size / 160); /* events are ~160 bytes */
        /* A regular file is read in place, line by line, without copying it. */
        const char *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fileno(r.in), 0);
        if (map != MAP_FAILED) {
            madvise((void *)map, (size_t)sb.st_size, MADV_SEQUENTIAL);
            maplen = (size_t)sb.st_size;
            r.map = r.p = map;
            r.end = map + maplen;
        }
    }
    for (int i = 0; i < NBUF; i++)
        r.buf[i].ev = omo_xmalloc(BATCH * sizeof(omo_event));
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    run(&r, &k);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
    for (int i = 0; i < NBUF; i++) {
        free(r.buf[i].ev);
        free(r.buf[i].buf);
    }
    if (r.map)
        munmap((void *)r.map, maplen);
    if (r.read_errno) {
        res = OMO_REPLAY_READ_ERROR;
        errno = r.read_errno;
    }

done:
    if (r.in) {
        int saved = errno;
        fclose(r.in);
        errno = saved;
    }
    free(r.line);
    if (stats)
        *stats = k.st;
    return res;
}

void omo_replay_report_stderr(void *ctx, const char *path, uint64_t lineno,
                              const omo_event_error *err)
{
    (void)ctx;
    fprintf(stderr, "%s:%llu: error: %s [%s]\n", path, (unsigned long long)lineno, err->message,
            err->reason);
}
