/* Offline replay of an event file into one engine.
 *
 * Reading and checking an event (JSON with jansson, then every field against the network)
 * costs about as much as deciding it, and neither needs the other's memory. So a reader thread
 * parses batches of lines while the calling thread applies the batch before, in file order:
 * the engine sees exactly the sequence a single loop would, and bad lines are reported by the
 * calling thread, in order. Without a second thread the same two steps simply alternate. */
#include "replay.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

enum { BATCH = 256, NBUF = 3 };

typedef struct parsed {
    uint64_t lineno;
    bool ok;
    omo_event_error err; /* when !ok */
} parsed;

typedef struct batch {
    omo_event *ev; /* BATCH events: large plain values, reused */
    parsed meta[BATCH];
    size_t n;
} batch;

/* Where lines come from: a mapped regular file, or a stream read with getline. */
typedef struct source {
    const omo_network *net;
    const char *map, *p, *end;
    FILE *in;
    char *line;
    size_t linecap;
    uint64_t lineno;
    bool eof;
    int read_errno; /* nonzero when the stream failed before its end */
} source;

/* Fills b with up to BATCH non-empty lines, parsed. Returns false once the source is empty. */
static bool fill(source *s, batch *b)
{
    b->n = 0;
    while (b->n < BATCH && !s->eof) {
        const char *text;
        size_t n;
        if (s->map) {
            if (s->p >= s->end) {
                s->eof = true;
                break;
            }
            const char *nl = memchr(s->p, '\n', (size_t)(s->end - s->p));
            const char *stop = nl ? nl : s->end;
            text = s->p;
            n = (size_t)(stop - s->p);
            s->p = stop + 1;
        } else {
            ssize_t got = getline(&s->line, &s->linecap, s->in);
            if (got <= 0) {
                s->eof = true;
                if (ferror(s->in))
                    s->read_errno = errno ? errno : EIO;
                break;
            }
            text = s->line;
            n = (size_t)got;
        }
        s->lineno++;
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        parsed *m = &b->meta[b->n];
        m->lineno = s->lineno;
        m->ok = omo_event_parse(text, n, s->net, &b->ev[b->n], &m->err);
        b->n++;
    }
    return b->n > 0;
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
        parsed *m = &b->meta[i];
        k->st.lines++;
        if (!m->ok) {
            k->st.bad++;
            if (k->on_bad)
                k->on_bad(k->ctx, k->path, m->lineno, &m->err);
            continue;
        }
        omo_apply_result applied = omo_engine_apply(k->eng, &b->ev[i], &m->err);
        if (applied == OMO_APPLY_INVALID || applied == OMO_APPLY_CONFLICT) {
            k->st.invalid++;
            if (k->on_bad)
                k->on_bad(k->ctx, k->path, m->lineno, &m->err);
        }
    }
}

/* The hand-over between the reader thread and the applying one. */
typedef struct ring {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch buf[NBUF];
    size_t filled, drained; /* batches handed over and given back; filled - drained <= NBUF */
    bool done;              /* the reader has handed over its last batch */
    source *src;
} ring;

static void *reader(void *arg)
{
    ring *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->filled - r->drained == NBUF)
            pthread_cond_wait(&r->cv, &r->mu);
        batch *b = &r->buf[r->filled % NBUF];
        pthread_mutex_unlock(&r->mu);

        bool more = fill(r->src, b);

        pthread_mutex_lock(&r->mu);
        if (more)
            r->filled++;
        else
            r->done = true;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        if (!more)
            return NULL;
    }
}

static void run(source *src, sink *k)
{
    ring r = {.src = src};
    for (int i = 0; i < NBUF; i++)
        r.buf[i].ev = omo_xmalloc(BATCH * sizeof(omo_event));
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, reader, &r) != 0) {
        while (fill(src, &r.buf[0]))
            drain(k, &r.buf[0]);
    } else {
        for (;;) {
            pthread_mutex_lock(&r.mu);
            while (r.drained == r.filled && !r.done)
                pthread_cond_wait(&r.cv, &r.mu);
            bool have = r.drained < r.filled;
            pthread_mutex_unlock(&r.mu);
            if (!have)
                break;
            drain(k, &r.buf[r.drained % NBUF]);
            pthread_mutex_lock(&r.mu);
            r.drained++;
            pthread_cond_broadcast(&r.cv);
            pthread_mutex_unlock(&r.mu);
        }
        pthread_join(th, NULL);
    }
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
    for (int i = 0; i < NBUF; i++)
        free(r.buf[i].ev);
}

omo_replay_result omo_replay_file(const char *path, const omo_network *net, omo_engine *eng,
                                  omo_bad_line_fn on_bad, void *ctx, omo_replay_stats *stats)
{
    sink k = {.path = path, .eng = eng, .on_bad = on_bad, .ctx = ctx};
    source src = {.net = net};
    omo_replay_result res = OMO_REPLAY_OK;
    FILE *in = fopen(path, "r");
    if (!in) {
        res = OMO_REPLAY_CANNOT_OPEN;
        goto done;
    }
    src.in = in;
    struct stat sb;
    size_t maplen = 0;
    if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
        omo_engine_expect(eng, (size_t)sb.st_size / 160); /* events are ~160 bytes */
        /* A regular file is read in place, line by line, without copying it. */
        const char *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fileno(in), 0);
        if (map != MAP_FAILED) {
            madvise((void *)map, (size_t)sb.st_size, MADV_SEQUENTIAL);
            maplen = (size_t)sb.st_size;
            src.map = src.p = map;
            src.end = map + maplen;
        }
    }
    run(&src, &k);
    if (src.map)
        munmap((void *)src.map, maplen);
    if (src.read_errno) {
        res = OMO_REPLAY_READ_ERROR;
        errno = src.read_errno;
    }

done:
    if (in) {
        int saved = errno;
        fclose(in);
        errno = saved;
    }
    free(src.line);
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
