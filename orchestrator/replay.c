/* Offline replay of an event file into one engine. */
#include "replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* One line of the file: parsed, applied, or reported. */
static void replay_line(const char *line, size_t n, uint64_t lineno, const char *path,
                        const omo_network *net, omo_engine *eng, omo_event *ev,
                        omo_bad_line_fn on_bad, void *ctx, omo_replay_stats *st)
{
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (n == 0)
        return;
    st->lines++;
    omo_event_error err; /* filled by whoever refuses the line */
    if (!omo_event_parse(line, n, net, ev, &err)) {
        st->bad++;
        if (on_bad)
            on_bad(ctx, path, lineno, &err);
        return;
    }
    omo_apply_result applied = omo_engine_apply(eng, ev, &err);
    if (applied == OMO_APPLY_INVALID || applied == OMO_APPLY_CONFLICT) {
        st->invalid++;
        if (on_bad)
            on_bad(ctx, path, lineno, &err);
    }
}

omo_replay_result omo_replay_file(const char *path, const omo_network *net, omo_engine *eng,
                                  omo_bad_line_fn on_bad, void *ctx, omo_replay_stats *stats)
{
    omo_replay_stats st = {0};
    omo_replay_result res = OMO_REPLAY_OK;
    char *line = NULL;
    size_t linecap = 0;
    uint64_t lineno = 0;
    /* One event buffer for the whole file: it is a large plain value. */
    omo_event *ev = omo_xmalloc(sizeof *ev);
    FILE *in = fopen(path, "r");
    if (!in) {
        res = OMO_REPLAY_CANNOT_OPEN;
        goto done;
    }
    struct stat sb;
    if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
        omo_engine_expect(eng, (size_t)sb.st_size / 160); /* events are ~160 bytes */
        /* A regular file is read in place, line by line, without copying it. */
        const char *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fileno(in), 0);
        if (map != MAP_FAILED) {
            madvise((void *)map, (size_t)sb.st_size, MADV_SEQUENTIAL);
            const char *p = map, *end = map + sb.st_size;
            while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *stop = nl ? nl : end;
                replay_line(p, (size_t)(stop - p), ++lineno, path, net, eng, ev, on_bad, ctx, &st);
                p = stop + 1;
            }
            munmap((void *)map, (size_t)sb.st_size);
            goto done;
        }
    }
    ssize_t n;
    while ((n = getline(&line, &linecap, in)) > 0)
        replay_line(line, (size_t)n, ++lineno, path, net, eng, ev, on_bad, ctx, &st);
    if (ferror(in))
        res = OMO_REPLAY_READ_ERROR;

done:
    if (in) {
        int saved = errno;
        fclose(in);
        errno = saved;
    }
    free(line);
    free(ev);
    if (stats)
        *stats = st;
    return res;
}

void omo_replay_report_stderr(void *ctx, const char *path, uint64_t lineno,
                              const omo_event_error *err)
{
    (void)ctx;
    fprintf(stderr, "%s:%llu: error: %s [%s]\n", path, (unsigned long long)lineno, err->message,
            err->reason);
}
