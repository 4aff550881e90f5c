/* The pick list page in a real browser: headless Chromium (Debian's, installed by
 * scripts/deps.sh) driven by tests/stream/browser/picklist.js over the DevTools protocol opens
 * S-1's list from the running service, checks the rows are in walking order, confirms one tote
 * and shorts another with the page's own buttons; this test then finds the results in
 * PostgreSQL and on omo.shipments. Kept in tests/artifacts/stream/: picklist_phone.png (the top
 * of the page on a 390x844 phone), picklist_phone_results.png (the two answered totes),
 * picklist_phone_full.png and picklist_print.pdf (the print layout, A4). */
#include "stream_env.h"

#define BROWSER_DIR OMO_SOURCE_DIR "/tests/stream/browser"
#define ARTIFACTS   OMO_SOURCE_DIR "/tests/artifacts/stream"
#define CHROMIUM    "/usr/bin/chromium"

static env E;
static bool passed;

static void teardown(void)
{
    int rc = env_stop(&E);
    if (passed && rc == 0) {
        env_remove_dir(&E);
    } else {
        env_log_tail(&E, 30);
        fprintf(stderr, "kept %s\n", E.dir);
    }
    cr_expect_eq(rc, 0, "omo run exited %d on SIGTERM", rc);
}

/* The first program named that is on PATH, or NULL. */
static const char *on_path(const char *name, char *buf, size_t len)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, len, "%.*s/%s", (int)n, p, name);
        if (n && access(buf, X_OK) == 0)
            return buf;
        p += n + (p[n] == ':');
    }
    return NULL;
}

/* Runs argv in dir with its output in out_path; the exit code, or -1 after timeout_ms. */
static int run_in(const char *dir, char *const argv[], const char *out_path, int timeout_ms)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || chdir(dir))
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execv(argv[0], argv);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    int rc = env_wait_pid(pid, timeout_ms);
    if (rc < 0) {
        kill(pid, SIGKILL);
        env_wait_pid(pid, 5000);
    }
    return rc;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t k; (k = fread(buf + n, 1, cap - n - 1, f)) > 0;)
        if ((n += k) + 1 == cap)
            buf = realloc(buf, cap *= 2);
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

static void mkdirs(const char *dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

TestSuite(browser, .fini = teardown, .timeout = 115);

Test(browser, pick_list_page_confirms_and_shorts)
{
    cr_assert(access(CHROMIUM, X_OK) == 0,
              "%s is missing: scripts/deps.sh installs Debian's chromium (and the fonts the page "
              "is drawn with); run it first",
              CHROMIUM);
    char node[PATH_MAX], npm[PATH_MAX];
    cr_assert_not_null(on_path("node", node, sizeof node),
                       "node is missing: scripts/deps.sh installs nodejs and npm");
    cr_assert_not_null(on_path("npm", npm, sizeof npm),
                       "npm is missing: scripts/deps.sh installs nodejs and npm");
    char npm_log[] = "/tmp/omo-ptest-npm-XXXXXX";
    int fd = mkstemp(npm_log);
    cr_assert_geq(fd, 0);
    close(fd);
    if (access(BROWSER_DIR "/node_modules/playwright-core/package.json", R_OK) != 0) {
        char *ci[] = {npm, "ci", "--no-audit", "--no-fund", "--loglevel=error", NULL};
        int rc = run_in(BROWSER_DIR, ci, npm_log, 300000);
        char *log = slurp(npm_log, NULL);
        cr_assert_eq(rc, 0, "npm ci in %s failed (%d):\n%s", BROWSER_DIR, rc, log ? log : "");
        free(log);
    }
    unlink(npm_log);

    env_start(&E, "browser");
    mkdirs(ARTIFACTS);
    const char *png = ARTIFACTS "/picklist_phone.png", *pdf = ARTIFACTS "/picklist_print.pdf";
    unlink(png);
    unlink(pdf);
    cr_assert_eq(env_on_hand(&E, "S-1", "SKU-SN"), 3);

    char base[64], out_path[PATH_MAX + 16];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", E.port);
    snprintf(out_path, sizeof out_path, "%s/browser.out", E.dir);
    char *script[] = {node,
                      BROWSER_DIR "/picklist.js",
                      base,
                      "S-1",
                      ENV_S1_TOKEN,
                      "O-SFS-1/1",
                      "O-SHORT-NF/1",
                      "1",
                      "1",
                      "not_found",
                      ARTIFACTS,
                      NULL};
    int rc = run_in(BROWSER_DIR, script, out_path, 90000);
    char *out = slurp(out_path, NULL);
    cr_assert_eq(rc, 0, "picklist.js exited %d:\n%s", rc, out ? out : "");

    /* What the page saw: every row, the walk through three aisles, both results. */
    const char *line = NULL;
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (*l == '{')
            line = l;
    json_t *seen = line ? json_loadb(line, strcspn(line, "\n"), 0, NULL) : NULL;
    cr_assert_not_null(seen, "no result from picklist.js:\n%s", out ? out : "");
    cr_expect_eq(json_array_size(json_object_get(seen, "rows")), 10);
    cr_expect_eq(json_integer_value(json_object_get(seen, "aisles_walked")), 3);
    cr_expect_str_eq(env_json_str(json_object_get(seen, "confirm"), "text"), "picked");
    cr_expect_str_eq(env_json_str(json_object_get(seen, "short"), "text"), "short");
    cr_expect(json_is_true(json_object_get(seen, "confirm_disabled_after")),
              "a confirmed tote's buttons stay enabled");
    cr_expect_eq(json_array_size(json_object_get(seen, "totes_after")), 5);
    json_decref(seen);
    free(out);

    /* PostgreSQL: the short line's missing units left S-1's on hand, the order was re-sourced;
     * the confirmed tote's units stay reserved until it ships. */
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-SN"), 1);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-SN"), 1);
    cr_expect_eq(env_revisions(&E, "O-SHORT-NF"), 2);
    cr_expect_eq(env_reserved(&E, "DC-EAST", "SKU-SN"), 2);
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-A"), 10);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-A"), 2);
    cr_expect_eq(env_revisions(&E, "O-SFS-1"), 1);

    /* omo.shipments: the two statuses, once each. */
    cr_assert(env_wait_statuses(&E, 2, 15000));
    static const char *const expected[] = {"O-SFS-1/1 picked", "O-SHORT-NF/1 short", NULL};
    cr_expect(env_statuses_exactly(&E, expected));

    /* The artifacts are a PNG of the phone's viewport (390x844 CSS px at 2x) and a PDF. */
    size_t len = 0;
    char *img = slurp(png, &len);
    cr_assert(img && len > 24 && !memcmp(img, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", png);
    uint32_t w = (uint32_t)(unsigned char)img[16] << 24 | (uint32_t)(unsigned char)img[17] << 16 |
                 (uint32_t)(unsigned char)img[18] << 8 | (unsigned char)img[19];
    uint32_t h = (uint32_t)(unsigned char)img[20] << 24 | (uint32_t)(unsigned char)img[21] << 16 |
                 (uint32_t)(unsigned char)img[22] << 8 | (unsigned char)img[23];
    cr_expect_eq(w, 780, "screenshot width %u", w);
    cr_expect_eq(h, 1688, "screenshot height %u", h);
    free(img);
    char *doc = slurp(pdf, &len);
    cr_assert(doc && len > 1000 && !memcmp(doc, "%PDF-", 5), "%s is not a PDF", pdf);
    free(doc);
    passed = true;
}
