/* A private PostgreSQL. The server runs as `postgres` when omo runs as root (PostgreSQL refuses
 * root), from a clean environment so that PGHOST, PGDATA and the like of the caller cannot leak
 * in. A watchdog process stops the server (and removes a temporary cluster) if the calling
 * process dies without stopping it, so a crash leaves no server behind. */
#include "local.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG_BIN        "/usr/lib/postgresql/15/bin"
#define START_RETRIES 5

struct omo_pg_local {
    char dir[PATH_MAX]; /* the cluster's directory */
    char data[PATH_MAX + 8], log[PATH_MAX + 8], out[PATH_MAX + 8];
    char dsn[128];
    bool temporary; /* removed at stop */
    bool durable;
    int port;
    bool drop; /* run the server's programs as uid/gid */
    uid_t uid;
    gid_t gid;
    pid_t watchdog;
    int watch_fd; /* write end: 'q' = stopped normally, EOF = the test process died */
};

/* Runs argv (an absolute path) and waits for it; its output goes to pg->out. Returns the exit
 * status, or -1. */
static int run(const omo_pg_local *pg, char *const argv[])
{
    char *const envp[] = {"PATH=" PG_BIN ":/usr/bin:/bin", "LC_ALL=C", "LANG=C", "TZ=UTC", NULL};
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(pg->out, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            close(devnull);
        }
        if (pg->drop && (setgroups(0, NULL) != 0 || setgid(pg->gid) != 0 || setuid(pg->uid) != 0))
            _exit(126);
        if (chdir(pg->dir) != 0)
            _exit(126);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A port nobody listens on right now (it may be taken again before the server binds it:
 * start retries). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static void print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f))
        fprintf(stderr, "  %s", line);
    fclose(f);
}

static int pg_ctl_start(omo_pg_local *pg, const char *action)
{
    char opts[384];
    /* TCP on loopback only: no Unix socket, whose path length a deep directory could break. */
    snprintf(opts, sizeof opts,
             "-p %d -k \"\" -c listen_addresses=127.0.0.1 -c fsync=%s -c full_page_writes=%s "
             "-c shared_buffers=256MB -c wal_buffers=16MB -c max_connections=50",
             pg->port, pg->durable ? "on" : "off", pg->durable ? "on" : "off");
    char *argv[] = {
        PG_BIN "/pg_ctl", "-D", pg->data, "-l",           pg->log, "-w", "-t", "60", "-m",
        "fast",           "-o", opts,     (char *)action, NULL};
    if (strcmp(action, "start") == 0) /* -m is for stop and restart only */
        argv[8] = argv[9] = "-s";
    return run(pg, argv);
}

static void pg_ctl_stop(const omo_pg_local *pg, const char *mode)
{
    char *argv[] = {PG_BIN "/pg_ctl", "-D", (char *)pg->data, "-w", "-t", "60", "-m", (char *)mode,
                    "stop",           NULL};
    run(pg, argv);
}

/* Waits in its own process for the test process to go away without stopping the server. */
static void start_watchdog(omo_pg_local *pg)
{
    int fds[2];
    if (pipe(fds) != 0)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        /* Holding none of the test runner's pipes, nobody waits for this process. */
        int devnull = open("/dev/null", O_RDWR);
        for (int fd = 0; fd < 1024; fd++)
            if (fd != fds[0] && fd != devnull)
                close(fd);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        char c;
        ssize_t n;
        while ((n = read(fds[0], &c, 1)) < 0 && errno == EINTR)
            ;
        if (n == 0) {
            pg_ctl_stop(pg, "immediate");
            if (pg->temporary)
                remove_tree(pg->dir);
        }
        _exit(0);
    }
    close(fds[0]);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    pg->watchdog = pid;
    pg->watch_fd = fds[1];
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

omo_pg_local *omo_pg_local_start(const char *dir, bool durable, char *err, size_t errlen)
{
    /* A client-only install (the service's container image) has libpq and no server. */
    if (access(PG_BIN "/initdb", X_OK) || access(PG_BIN "/postgres", X_OK)) {
        snprintf(err, errlen,
                 "PostgreSQL's server binaries are not in " PG_BIN
                 " (Debian's postgresql-15; in a container, the image's demo target)");
        return NULL;
    }
    omo_pg_local *pg = calloc(1, sizeof *pg);
    if (!pg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pg->watch_fd = -1;
    pg->durable = durable;
    if (dir) {
        snprintf(pg->dir, sizeof pg->dir, "%s", dir);
        if (mkdir(pg->dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "mkdir %s: %s", pg->dir, strerror(errno));
            free(pg);
            return NULL;
        }
    } else {
        pg->temporary = true;
        snprintf(pg->dir, sizeof pg->dir, "/tmp/omo-pg-XXXXXX");
        if (!mkdtemp(pg->dir)) {
            snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
            free(pg);
            return NULL;
        }
    }
    snprintf(pg->data, sizeof pg->data, "%s/data", pg->dir);
    snprintf(pg->log, sizeof pg->log, "%s/log", pg->dir);
    snprintf(pg->out, sizeof pg->out, "%s/out", pg->dir);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) {
            snprintf(err, errlen, "running as root and there is no user postgres");
            goto fail;
        }
        pg->drop = true;
        pg->uid = pw->pw_uid;
        pg->gid = pw->pw_gid;
        if (chown(pg->dir, pg->uid, pg->gid) != 0) {
            snprintf(err, errlen, "chown %s: %s", pg->dir, strerror(errno));
            goto fail;
        }
    }

    char version[PATH_MAX + 16];
    snprintf(version, sizeof version, "%s/PG_VERSION", pg->data);
    char *initdb[] = {PG_BIN "/initdb",
                      "-D",
                      pg->data,
                      "-U",
                      "postgres",
                      "-A",
                      "trust",
                      "-E",
                      "UTF8",
                      "--locale=C",
                      "--no-instructions",
                      durable ? NULL : "--no-sync",
                      NULL};
    if (!exists(version) && run(pg, initdb) != 0) {
        snprintf(err, errlen, "initdb failed in %s (is it readable by the server's user?)",
                 pg->data);
        print_file(pg->out);
        goto fail;
    }

    int rc = -1;
    for (int attempt = 0; attempt < START_RETRIES && rc != 0; attempt++) {
        pg->port = free_port();
        if (pg->port > 0)
            rc = pg_ctl_start(pg, "start");
    }
    if (rc != 0) {
        snprintf(err, errlen, "the server did not start (log: %s)", pg->log);
        print_file(pg->out);
        print_file(pg->log);
        goto fail;
    }
    snprintf(pg->dsn, sizeof pg->dsn, "postgresql://postgres@127.0.0.1:%d/postgres", pg->port);
    start_watchdog(pg);
    return pg;

fail:
    if (pg->temporary)
        remove_tree(pg->dir);
    free(pg);
    return NULL;
}

const char *omo_pg_local_dsn(const omo_pg_local *pg)
{
    return pg->dsn;
}

int omo_pg_local_port(const omo_pg_local *pg)
{
    return pg->port;
}

int omo_pg_local_restart(omo_pg_local *pg)
{
    if (pg_ctl_start(pg, "restart") != 0) {
        fprintf(stderr, "[postgres] restart failed:\n");
        print_file(pg->log);
        return -1;
    }
    return 0;
}

void omo_pg_local_stop(omo_pg_local *pg)
{
    if (!pg)
        return;
    pg_ctl_stop(pg, "fast");
    if (pg->temporary)
        remove_tree(pg->dir);
    if (pg->watch_fd >= 0) {
        ssize_t n = write(pg->watch_fd, "q", 1);
        (void)n; /* on failure the watchdog sees EOF and finds nothing left to remove */
        close(pg->watch_fd);
        while (waitpid(pg->watchdog, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    free(pg);
}
