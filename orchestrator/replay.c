/* Offline replay of an event file into one engine. */
#include "replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

omo_replay_result omo_replay_file(const char *path, const omo_network *net, omo_engine *eng,
                                  omo_bad_line_fn on_bad, void *ctx, omo_replay_stats *stats)
{
    omo_replay_stats st = {0};
    omo_replay_result res = OMO_REPLAY_OK;
    char *line = NULL;
    size_t linecap = 0;
    /* One event buffer for the whole file: it is a large plain value. */
    omo_event *ev = omo_xmalloc(sizeof *ev);
    FILE *in = fopen(path, "r");
    if (!in) {
        res = OMO_REPLAY_CANNOT_OPEN;
        goto done;
    }
    struct stat sb;
    if (fstat(fileno(in), &sb) == 0 && sb.st_size > 0)
        omo_engine_expect(eng, (size_t)sb.st_size / 120); /* events are ~150 bytes */
    uint64_t lineno = 0;
    ssize_t n;
    while ((n = getline(&line, &linecap, in)) > 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0)
            continue;
        st.lines++;
        omo_event_error err = {0};
        if (!omo_event_parse(line, (size_t)n, net, ev, &err)) {
            st.bad++;
            if (on_bad)
                on_bad(ctx, path, lineno, &err);
            continue;
        }
        omo_apply_result applied = omo_engine_apply(eng, ev, &err);
        if (applied == OMO_APPLY_INVALID || applied == OMO_APPLY_CONFLICT) {
            st.invalid++;
            if (on_bad)
                on_bad(ctx, path, lineno, &err);
        }
    }
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
