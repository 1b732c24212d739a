/* plan stop ID [--grace SECONDS]: ask a run's supervisor to stop it.  The
 * grace goes into <run>/stop, then the supervisor gets SIGTERM, which it
 * forwards to the command; it sends SIGKILL itself once the grace is over
 * (cmd_run.c).  plan stop waits for the supervisor to let go of the run's
 * lock. */
#include "runs.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bounded: the grace, and then this long for the cleanup after SIGKILL. */
#define STOP_SLACK 30.0

int cmd_stop(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"grace", required_argument, NULL, 'g'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    double grace = 10;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        if (o != 'g')
            return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        grace = strtod(optarg, &end);
        if (*end || end == optarg || !(grace >= 0) || grace > 86400)
            return cli_usage(c, cmd, "--grace wants seconds from 0 to 86400, not '%s'", optarg);
    }
    if (optind + 1 != argc)
        return cli_usage(c, cmd, "name one run: 'plan stop ID' ('plan ps' lists them)");
    const char *id = argv[optind];
    char *dir;
    json_t *rec;
    if (cli_run_open(c, id, &dir, &rec))
        return EXIT_FAILURE_;
    int rc = EXIT_OK;
    json_int_t pid = json_integer_value(json_object_get(rec, "supervisor_pid"));
    if (!cli_run_alive(dir)) {
        const char *state = cli_run_state(rec, false);
        rc = !strcmp(state, "exited")
                 ? cli_error(c, "the run '%s' has already exited (status %lld)", id,
                             (long long)json_integer_value(json_object_get(rec, "exit_status")))
                 : cli_error(c, "the supervisor of the run '%s' is gone (plan was killed): "
                                "its command may still run; stop it by its pid "
                                "('plan logs %s' and the record in '%s')", id, id, dir);
        goto out;
    }
    /* The record is a file: a pid that is not a plain process id (0, -1,
     * or one that a cast would turn into them) is never signalled. */
    if (pid <= 1 || pid > INT_MAX) {
        rc = cli_error(c, "the record of '%s' names no valid supervisor (pid %lld): it is "
                          "damaged; remove '%s'", id, (long long)pid, dir);
        goto out;
    }
    char *file = plan_path_join(dir, "stop");
    char *text = plan_xasprintf("%g\n", grace);
    int wr = plan_fs_write_atomic(file, text, strlen(text), 0644);
    free(text);
    free(file);
    if (wr != 0 || kill((pid_t)pid, SIGTERM) != 0) {
        rc = cli_error(c, "cannot ask the supervisor of '%s' (pid %lld) to stop: %s", id,
                       (long long)pid, strerror(wr ? -wr : errno));
        goto out;
    }
    struct timespec start, t;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (!cli_run_alive(dir))
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - start.tv_sec) > grace + STOP_SLACK) {
            rc = cli_error(c, "the run '%s' did not stop within %.0f s: its supervisor (pid "
                              "%lld) is still there; try again, or kill it", id,
                           grace + STOP_SLACK, (long long)pid);
            goto out;
        }
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    json_decref(rec);
    free(dir);
    if (cli_run_open(c, id, &dir, &rec))
        return EXIT_FAILURE_;
    if (c->json)
        cli_print_json(json_pack("{s:s, s:O}", "id", id, "exit_status",
                                 json_object_get(rec, "exit_status")));
    else if (!c->quiet)
        fprintf(stderr, "plan: stopped the run %s (status %lld)\n", id,
                (long long)json_integer_value(json_object_get(rec, "exit_status")));
out:
    json_decref(rec);
    free(dir);
    return rc;
}
