/* plan gc [--dry-run] [--delete-generations OLDER|+KEEP] [--delete-runs OLDER|+KEEP]
 *         [--max-freed SIZE] [--yes]
 * plan gc roots | add-root NAME PATH | remove-root NAME */
#include "envroot.h"
#include "realise.h"
#include "runs.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* "+N": keep the newest N; "30d", "12h", "2w": older than that. */
typedef struct gen_policy {
    bool keep_mode;
    unsigned keep;
    int64_t older_than; /* seconds */
} gen_policy;

static int parse_policy(const char *text, gen_policy *p)
{
    char *end;
    memset(p, 0, sizeof(*p));
    if (text[0] == '+') {
        long v = strtol(text + 1, &end, 10);
        if (*end || end == text + 1 || v < 1)
            return -1;
        p->keep_mode = true;
        p->keep = (unsigned)v;
        return 0;
    }
    long v = strtol(text, &end, 10);
    if (end == text || v < 0)
        return -1;
    int64_t unit = !strcmp(end, "d") ? 86400 : !strcmp(end, "h") ? 3600
                 : !strcmp(end, "w") ? 7 * 86400 : !strcmp(end, "m") ? 60 : !strcmp(end, "s") ? 1 : 0;
    if (!unit)
        return -1;
    p->older_than = (int64_t)v * unit;
    return 0;
}

static bool confirm(cli *c, const char *question)
{
    if (!isatty(STDIN_FILENO))
        return false;
    fprintf(stderr, "%s [y/N] ", question);
    fflush(stderr);
    char line[16];
    (void)c;
    return fgets(line, sizeof(line), stdin) && (line[0] == 'y' || line[0] == 'Y');
}

/* Ask question (which is freed) on the terminal: true for a yes. */
static bool agreed(cli *c, char *question)
{
    bool ok = confirm(c, question);
    free(question);
    return ok;
}

/* Delete, in every profile, the generations the policy selects (never the
 * current one).  *count gets how many went. */
static int delete_generations(cli *c, plan_store *store, const gen_policy *pol, bool dry,
                              unsigned *count)
{
    plan_strlist names;
    plan_strlist_init(&names);
    plan_profile_names(store, &names);
    int rc = EXIT_OK;
    time_t now = time(NULL);
    for (size_t i = 0; i < names.len && rc == EXIT_OK; i++) {
        plan_profile *p = NULL;
        plan_generation *g = NULL;
        size_t n = 0;
        if (plan_profile_open(store, names.items[i], false, &p) ||
            plan_profile_generations(p, &g, &n)) {
            rc = cli_fail(c);
            plan_profile_close(p);
            break;
        }
        for (size_t k = 0; k < n && rc == EXIT_OK; k++) {
            bool go = pol->keep_mode ? k + pol->keep < n : (now - g[k].created) > pol->older_than;
            if (!go || g[k].current)
                continue;
            if (!dry && plan_profile_delete_generation(p, g[k].number)) {
                rc = cli_fail(c);
                break;
            }
            (*count)++;
            if (c->verbose || dry)
                fprintf(stderr, "plan: %s generation %u of profile '%s'\n",
                        dry ? "would delete" : "deleted", g[k].number, names.items[i]);
        }
        plan_generations_free(g, n);
        plan_profile_close(p);
    }
    plan_strlist_release(&names);
    return rc;
}

/* A finished run: its record, when it ended, and whose it is. */
typedef struct old_run {
    char *id, *dir, *plan;
    int64_t started, ended;
} old_run;

static int newer_first(const void *a, const void *b)
{
    const old_run *x = a, *y = b;
    int by_plan = strcmp(x->plan, y->plan);
    if (by_plan)
        return by_plan;
    return x->started < y->started ? 1 : x->started > y->started ? -1 : strcmp(x->id, y->id);
}

/* Delete the records (and logs) of finished runs the policy selects: per
 * plan, all but the newest N, or those that ended longer ago than the
 * age.  A run whose supervisor is alive is never touched, nor one without
 * a readable record (it may be starting). */
static int delete_runs(cli *c, const gen_policy *pol, bool dry, unsigned *count)
{
    plan_strlist ids;
    plan_strlist_init(&ids);
    cli_runs_list(c, &ids);
    old_run *runs = plan_xcalloc(ids.len ? ids.len : 1, sizeof(*runs));
    size_t n = 0;
    for (size_t i = 0; i < ids.len; i++) {
        char *dir = NULL;
        json_t *rec = NULL;
        if (cli_run_open(c, ids.items[i], &dir, &rec) != EXIT_OK || cli_run_alive(dir)) {
            plan_ctx_clear_error(c->ctx);
            free(dir);
            json_decref(rec);
            continue;
        }
        json_t *ended = json_object_get(rec, "ended"), *started = json_object_get(rec, "started");
        const char *plan = json_string_value(json_object_get(rec, "plan"));
        runs[n].id = plan_xstrdup(ids.items[i]);
        runs[n].dir = dir;
        runs[n].plan = plan_xstrdup(plan ? plan : "");
        runs[n].started = json_is_integer(started) ? json_integer_value(started) : 0;
        /* A lost run never recorded its end: it counts from its start. */
        runs[n].ended = json_is_integer(ended) ? json_integer_value(ended) : runs[n].started;
        n++;
        json_decref(rec);
    }
    qsort(runs, n, sizeof(*runs), newer_first);
    time_t now = time(NULL);
    int rc = EXIT_OK;
    unsigned rank = 0;
    for (size_t i = 0; i < n; i++) {
        rank = i && !strcmp(runs[i].plan, runs[i - 1].plan) ? rank + 1 : 0;
        bool go = pol->keep_mode ? rank >= pol->keep : now - runs[i].ended > pol->older_than;
        if (go && rc == EXIT_OK) {
            if (!dry && plan_fs_rmtree(runs[i].dir) != 0)
                rc = cli_error(c, "cannot delete the run record '%s'", runs[i].dir);
            else
                (*count)++;
            if (rc == EXIT_OK && (c->verbose || dry))
                fprintf(stderr, "plan: %s run %s of '%s'\n", dry ? "would delete" : "deleted",
                        runs[i].id, runs[i].plan);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(runs[i].id);
        free(runs[i].dir);
        free(runs[i].plan);
    }
    free(runs);
    plan_strlist_release(&ids);
    return rc;
}

static int gc_roots(cli *c, plan_store *store)
{
    plan_gc_root *roots = NULL;
    size_t n = 0;
    if (plan_store_gc_roots(store, &roots, &n))
        return cli_fail(c);
    json_t *arr = c->json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        if (arr)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "kind", roots[i].kind,
                                                 "source", roots[i].source, "path",
                                                 roots[i].basename));
        else
            printf("%-8s %-40s %s\n", roots[i].kind, roots[i].source, roots[i].basename);
    }
    if (arr)
        cli_print_json(json_pack("{s:o}", "roots", arr));
    plan_gc_roots_free(roots, n);
    return EXIT_OK;
}

static int gc_subcommand(cli *c, const command *cmd, plan_store *store, int argc, char **argv)
{
    const char *sub = argv[0];
    if (!strcmp(sub, "roots")) {
        if (argc != 1)
            return cli_usage(c, cmd, "'plan gc roots' takes no arguments");
        return gc_roots(c, store);
    }
    if (!strcmp(sub, "add-root")) {
        if (argc != 3)
            return cli_usage(c, cmd, "usage: plan gc add-root NAME PATH");
        if (plan_store_add_root(store, argv[1], argv[2]))
            return cli_fail(c);
        if (!c->quiet)
            fprintf(stderr, "plan: '%s' is now a root named '%s'\n", argv[2], argv[1]);
        return EXIT_OK;
    }
    if (!strcmp(sub, "remove-root")) {
        if (argc != 2)
            return cli_usage(c, cmd, "usage: plan gc remove-root NAME");
        return plan_store_remove_root(store, argv[1]) ? cli_fail(c) : EXIT_OK;
    }
    return cli_usage(c, cmd, "unknown gc subcommand '%s' (roots, add-root, remove-root)", sub);
}

int cmd_gc(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"dry-run", no_argument, NULL, 'n'},
        {"delete-generations", required_argument, NULL, 'd'},
        {"delete-runs", required_argument, NULL, 'r'},
        {"max-freed", required_argument, NULL, 'm'},
        {"yes", no_argument, NULL, 'y'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    plan_gc_opts go = {0};
    gen_policy pol, run_pol;
    bool delete_gens = false, delete_run_records = false, yes = false;
    const char *policy_text = NULL, *run_policy_text = NULL;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "+ny", opts, NULL)) != -1) {
        switch (o) {
        case 'n': go.dry_run = true; break;
        case 'y': yes = true; break;
        case 'd':
            if (parse_policy(optarg, &pol))
                return cli_usage(c, cmd, "--delete-generations wants +N (keep the newest N) or "
                                         "an age such as 30d, 12h, 2w; not '%s'", optarg);
            delete_gens = true;
            policy_text = optarg;
            break;
        case 'r':
            if (parse_policy(optarg, &run_pol))
                return cli_usage(c, cmd, "--delete-runs wants +N (keep the newest N of each "
                                         "plan) or an age such as 30d, 12h, 2w; not '%s'",
                                 optarg);
            delete_run_records = true;
            run_policy_text = optarg;
            break;
        case 'm':
            if (plan_parse_size(optarg, &go.max_freed) || !go.max_freed)
                return cli_usage(c, cmd, "--max-freed wants a size such as 500M or 2G, not '%s'",
                                 optarg);
            break;
        default: return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    plan_store *store = NULL;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    int rc = EXIT_OK;
    if (optind < argc) {
        rc = gc_subcommand(c, cmd, store, argc - optind, argv + optind);
        plan_store_close(store);
        return rc;
    }
    unsigned gens_deleted = 0;
    const char *refused = NULL;
    if (delete_gens && !go.dry_run && !yes &&
        !agreed(c, plan_xasprintf("delete the generations of every profile that %s %s?",
                                  pol.keep_mode ? "are not among the newest" : "are older than",
                                  pol.keep_mode ? policy_text + 1 : policy_text)))
        refused = "generations";
    else if (delete_run_records && !go.dry_run && !yes &&
             !agreed(c, plan_xasprintf("delete the records and logs of finished runs that %s "
                                       "%s?",
                                       run_pol.keep_mode ? "are not among the newest of their "
                                                           "plan"
                                                         : "ended more than",
                                       run_pol.keep_mode ? run_policy_text + 1
                                                         : run_policy_text)))
        refused = "run records";
    if (refused) {
        plan_store_close(store);
        return cli_error(c, "not deleting %s without confirmation: add --yes", refused);
    }
    unsigned runs_deleted = 0;
    if (delete_run_records)
        rc = delete_runs(c, &run_pol, go.dry_run, &runs_deleted);
    if (delete_gens && rc == EXIT_OK)
        rc = delete_generations(c, store, &pol, go.dry_run, &gens_deleted);
    plan_gc_result res;
    memset(&res, 0, sizeof(res));
    if (rc == EXIT_OK && plan_store_gc(store, &go, &res))
        rc = cli_fail(c);
    /* Downloaded archives are only needed until they are imported. */
    plan_prune_result dl = {0};
    char *cache = cli_cache_dir(c);
    if (rc == EXIT_OK && plan_download_cache_prune(c->ctx, cache, go.dry_run, &dl))
        rc = cli_fail(c);
    free(cache);
    /* Environments whose paths just went can never be re-entered. */
    size_t envs_pruned = 0;
    if (rc == EXIT_OK)
        cli_env_cache_prune(c, store, go.dry_run, &envs_pruned);
    if (rc == EXIT_OK) {
        char size[32];
        plan_format_size(res.freed, size, sizeof(size));
        if (c->json) {
            json_t *d = json_array(), *u = json_array();
            for (size_t i = 0; i < res.deleted.len; i++)
                json_array_append_new(d, json_string(res.deleted.items[i]));
            for (size_t i = 0; i < res.unregistered.len; i++)
                json_array_append_new(u, json_string(res.unregistered.items[i]));
            cli_print_json(json_pack("{s:b, s:o, s:o, s:I, s:I, s:I, s:I, s:I, "
                                     "s:{s:I, s:I, s:b}, s:I, s:I}",
                                     "dry_run", go.dry_run, "deleted", d, "unregistered", u,
                                     "freed",
                                     (json_int_t)res.freed, "live", (json_int_t)res.live,
                                     "skipped", (json_int_t)res.skipped, "stale_run_roots",
                                     (json_int_t)res.stale_sessions, "generations_deleted",
                                     (json_int_t)gens_deleted, "downloads", "files",
                                     (json_int_t)dl.files, "bytes", (json_int_t)dl.bytes,
                                     "busy", dl.busy, "env_cache_pruned",
                                     (json_int_t)envs_pruned, "runs_deleted",
                                     (json_int_t)runs_deleted));
        } else {
            for (size_t i = 0; i < res.deleted.len && (go.dry_run || c->verbose); i++)
                printf("%s/%s\n", plan_store_dir(store), res.deleted.items[i]);
            if (!c->quiet)
                fprintf(stderr, "plan: %s %zu path%s (%s), %llu kept alive by roots%s%s\n",
                        go.dry_run ? "would delete" : "deleted", res.deleted.len,
                        res.deleted.len == 1 ? "" : "s", size, (unsigned long long)res.live,
                        res.stale_sessions ? ", stale run roots removed" : "",
                        res.skipped ? ", some skipped (being registered now)" : "");
            for (size_t i = 0; i < res.unregistered.len && (go.dry_run || c->verbose); i++)
                printf("%s/%s\n", plan_store_dir(store), res.unregistered.items[i]);
            if (!c->quiet && res.unregistered.len)
                fprintf(stderr, "plan: %s %zu unregistered tree%s (left by an interrupted "
                                "registration)\n",
                        go.dry_run ? "would remove" : "removed", res.unregistered.len,
                        res.unregistered.len == 1 ? "" : "s");
            char dsize[32];
            plan_format_size(dl.bytes, dsize, sizeof(dsize));
            if (!c->quiet && dl.files)
                fprintf(stderr, "plan: %s %zu downloaded archive%s (%s)\n",
                        go.dry_run ? "would remove" : "removed", dl.files,
                        dl.files == 1 ? "" : "s", dsize);
            if (!c->quiet && runs_deleted)
                fprintf(stderr, "plan: %s %u run record%s\n",
                        go.dry_run ? "would delete" : "deleted", runs_deleted,
                        runs_deleted == 1 ? "" : "s");
            if (c->verbose && envs_pruned)
                fprintf(stderr, "plan: %s %zu environment cache entr%s whose paths are gone\n",
                        go.dry_run ? "would remove" : "removed", envs_pruned,
                        envs_pruned == 1 ? "y" : "ies");
            if (!c->quiet && dl.busy)
                fprintf(stderr, "plan: downloaded archives kept: an install or repair is using "
                                "them now\n");
        }
    }
    plan_gc_result_release(&res);
    plan_store_close(store);
    return rc;
}
