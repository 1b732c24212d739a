/* plan logs ID [--attempt N] [-f]: what a run's attempt wrote, from its
 * log under <root>/var/runs/<id>; with -f, what it goes on writing. */
#include "runs.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Copy what the log has from its current offset to stdout. */
static void copy_new(int fd)
{
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            return;
    fflush(stdout);
}

/* "config version 3", "defaults only" or "no configuration store". */
static char *config_text(const json_t *rec)
{
    json_t *v = json_object_get(rec, "config_version");
    if (!json_is_integer(v))
        return plan_xstrdup("configuration not applied");
    if (json_integer_value(v) == 0)
        return plan_xstrdup("configuration: defaults only");
    return plan_xasprintf("configuration version %lld", (long long)json_integer_value(v));
}

static bool attempt_ended(cli *c, const char *id, size_t index)
{
    char *dir;
    json_t *rec;
    if (cli_run_open(c, id, &dir, &rec)) {
        plan_ctx_clear_error(c->ctx);
        return true;
    }
    json_t *at = json_array_get(json_object_get(rec, "attempts"), index);
    bool ended = !at || json_object_get(at, "ended") || !cli_run_alive(dir);
    json_decref(rec);
    free(dir);
    return ended;
}

int cmd_logs(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"attempt", required_argument, NULL, 'a'},
        {"follow", no_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    long want = 0;
    bool follow = false;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
        char *end;
        switch (o) {
        case 'a':
            want = strtol(optarg, &end, 10);
            if (*end || end == optarg || want < 1)
                return cli_usage(c, cmd, "--attempt wants a number from 1, not '%s'", optarg);
            break;
        case 'f': follow = true; break;
        default:
            return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage(c, cmd, "name one run: 'plan logs ID' ('plan ps -a' lists them)");
    const char *id = argv[optind];
    char *dir;
    json_t *rec;
    if (cli_run_open(c, id, &dir, &rec))
        return EXIT_FAILURE_;
    int rc = EXIT_OK;
    json_t *atts = json_object_get(rec, "attempts");
    size_t n = json_array_size(atts);
    if (!n) {
        rc = cli_error(c, "the run '%s' has no attempt yet", id);
        goto out;
    }
    if (want > (long)n) {
        rc = cli_error(c, "the run '%s' has %zu attempt%s, not %ld", id, n, n == 1 ? "" : "s",
                       want);
        goto out;
    }
    size_t index = want ? (size_t)want - 1 : n - 1;
    json_t *at = json_array_get(atts, index);
    bool alive = cli_run_alive(dir);
    if (!c->quiet) {
        char *cfg = config_text(rec);
        json_t *st = json_object_get(at, "status");
        char *how = json_is_integer(st) ? plan_xasprintf("exited with status %lld",
                                                         (long long)json_integer_value(st))
                                        : plan_xstrdup(alive ? "running" : "did not finish");
        fprintf(stderr, "plan: run %s: %s %s, entry %s, attempt %zu of %zu, %s; %s\n", id,
                json_string_value(json_object_get(rec, "plan")),
                json_string_value(json_object_get(rec, "version")),
                json_string_value(json_object_get(rec, "entry")), index + 1, n, cfg, how);
        free(how);
        free(cfg);
    }
    char *log = cli_run_log_path(dir, (long)index + 1);
    int fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = cli_error(c, "cannot read the log '%s': %s", log, strerror(errno));
        free(log);
        goto out;
    }
    free(log);
    copy_new(fd);
    while (follow && !attempt_ended(c, id, index)) {
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
        copy_new(fd);
    }
    copy_new(fd);
    close(fd);
out:
    json_decref(rec);
    free(dir);
    return rc;
}
