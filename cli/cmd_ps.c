/* plan ps [-a] [--json]: the live run roots of this root (plan env), and
 * the runs of plan run (their records under var/runs). */
#include "runs.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void when(int64_t secs, char *out, size_t len)
{
    time_t t = (time_t)secs;
    struct tm tm;
    strftime(out, len, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
}

/* The run roots of plan env; a plan run's session is listed with its run. */
static size_t list_envs(cli *c, plan_session *list, size_t n, json_t *arr)
{
    (void)c;
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        const plan_session *s = &list[i];
        if (!s->live || !s->runroot || s->run)
            continue;
        shown++;
        if (arr) {
            json_t *plans = json_array();
            for (size_t k = 0; k < s->plans.len; k++)
                json_array_append_new(plans, json_string(s->plans.items[k]));
            json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:s, s:s?, s:o}", "id", s->id,
                                                 "pid", (json_int_t)s->pid, "started",
                                                 (json_int_t)s->started, "run_root", s->runroot,
                                                 "command", s->command, "plans", plans));
            continue;
        }
        if (shown == 1)
            printf("%-16s %7s  %-19s  %-30s %s\n", "ID", "PID", "STARTED", "PLANS", "COMMAND");
        char at[32];
        when(s->started, at, sizeof(at));
        plan_buf plans;
        plan_buf_init(&plans);
        for (size_t k = 0; k < s->plans.len; k++)
            plan_buf_printf(&plans, "%s%s", k ? "," : "", s->plans.items[k]);
        printf("%-16s %7ld  %-19s  %-30s %s\n", s->id, s->pid, at, plans.data,
               s->command ? s->command : "");
        plan_buf_release(&plans);
    }
    return shown;
}

typedef struct run_row {
    json_t *rec;
    const char *state;
    int64_t started;
    struct timespec made;          /* the run's lock file: orders runs of the same second */
} run_row;

static int by_start(const void *a, const void *b)
{
    const run_row *x = a, *y = b;
    if (x->started != y->started)
        return x->started < y->started ? -1 : 1;
    if (x->made.tv_sec != y->made.tv_sec)
        return x->made.tv_sec < y->made.tv_sec ? -1 : 1;
    return x->made.tv_nsec < y->made.tv_nsec ? -1 : x->made.tv_nsec > y->made.tv_nsec;
}

static size_t list_runs(cli *c, bool all, json_t *arr, bool envs_shown)
{
    plan_strlist ids;
    plan_strlist_init(&ids);
    cli_runs_list(c, &ids);
    run_row *rows = plan_xcalloc(ids.len + 1, sizeof(*rows));
    size_t n = 0;
    for (size_t i = 0; i < ids.len; i++) {
        char *dir;
        json_t *rec;
        if (cli_run_open(c, ids.items[i], &dir, &rec)) {
            plan_ctx_clear_error(c->ctx); /* a run being created, or a damaged record */
            continue;
        }
        const char *state = cli_run_state(rec, cli_run_alive(dir));
        char *lock = plan_path_join(dir, "lock");
        struct stat st;
        struct timespec made = {0, 0};
        if (stat(lock, &st) == 0)
            made = st.st_mtim;
        free(lock);
        free(dir);
        if (!all && !strcmp(state, "exited")) {
            json_decref(rec);
            continue;
        }
        rows[n++] = (run_row){rec, state, json_integer_value(json_object_get(rec, "started")),
                              made};
    }
    plan_strlist_release(&ids);
    qsort(rows, n, sizeof(*rows), by_start);
    for (size_t i = 0; i < n; i++) {
        json_t *r = rows[i].rec;
        json_t *cv = json_object_get(r, "config_version");
        size_t attempts = json_array_size(json_object_get(r, "attempts"));
        if (arr) {
            json_t *o = json_deep_copy(r);
            json_object_set_new(o, "state", json_string(rows[i].state));
            json_array_append_new(arr, o);
            continue;
        }
        if (i == 0)
            printf("%s%-8s  %-10s  %-24s %-10s %8s  %6s  %-19s  %s\n", envs_shown ? "\n" : "",
                   "RUN", "STATE", "PLAN", "ENTRY", "ATTEMPTS", "CONFIG", "STARTED", "COMMAND");
        char at[32], cfg[24], plan[128];
        when(rows[i].started, at, sizeof(at));
        if (json_is_integer(cv))
            snprintf(cfg, sizeof(cfg), "%lld", (long long)json_integer_value(cv));
        else
            snprintf(cfg, sizeof(cfg), "-");
        snprintf(plan, sizeof(plan), "%s@%s", json_string_value(json_object_get(r, "plan")),
                 json_string_value(json_object_get(r, "version")));
        printf("%-8s  %-10s  %-24s %-10s %8zu  %6s  %-19s  %s\n",
               json_string_value(json_object_get(r, "id")), rows[i].state, plan,
               json_string_value(json_object_get(r, "entry")), attempts, cfg, at,
               json_string_value(json_object_get(r, "command")));
    }
    for (size_t i = 0; i < n; i++)
        json_decref(rows[i].rec);
    free(rows);
    return n;
}

int cmd_ps(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    bool all = false;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "a", opts, NULL)) != -1) {
        if (o != 'a')
            return cli_usage(c, cmd, "unknown option '%s'", argv[optind - 1]);
        all = true;
    }
    if (optind < argc)
        return cli_usage(c, cmd, "'plan ps' takes no arguments");
    plan_store *store = NULL;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    plan_session *list = NULL;
    size_t n = 0;
    if (plan_store_sessions(store, &list, &n)) {
        plan_store_close(store);
        return cli_fail(c);
    }
    json_t *envs = c->json ? json_array() : NULL;
    json_t *runs = c->json ? json_array() : NULL;
    size_t shown = list_envs(c, list, n, envs);
    size_t shown_runs = list_runs(c, all, runs, shown > 0);
    if (envs)
        cli_print_json(json_pack("{s:o, s:o}", "run_roots", envs, "runs", runs));
    else if (!shown && !shown_runs && !c->quiet)
        fprintf(stderr, "plan: no live run roots%s\n", all ? " and no runs" : "");
    plan_sessions_free(list, n);
    plan_store_close(store);
    return EXIT_OK;
}
