/* plan merge A B [C...] -o NAME@VERSION [--strategy S] [--prefer NAME]...
 *                        [--merge-config] [--recipes DIR]...
 *
 * The plans are resolved as plan env resolves its arguments (names from
 * the recipes or registries, built when missing; arguments with a '/' are
 * store paths), in the order given, which is the order prefer-first and
 * prefer-last follow.  The merge itself is plan_merge_plans. */
#include "envroot.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct merge_args {
    plan_strlist names, ranges, paths, recipes, prefer;
    plan_strlist order;        /* every argument, as written */
    char *name, *version;      /* -o */
    plan_collide strategy;
    bool merge_config;
} merge_args;

static int parse_output(cli *c, const command *cmd, const char *arg, merge_args *a)
{
    const char *at = strrchr(arg, '@');
    if (!at || at == arg || !at[1])
        return cli_usage(c, cmd, "-o wants NAME@VERSION, such as tools@1.0.0, not '%s'", arg);
    free(a->name);
    free(a->version);
    a->name = plan_xstrndup(arg, (size_t)(at - arg));
    a->version = plan_xstrdup(at + 1);
    const char *why;
    if ((why = plan_store_check_name(a->name)))
        return cli_usage(c, cmd, "invalid name '%s' in -o: %s", a->name, why);
    if ((why = plan_store_check_version(a->version)))
        return cli_usage(c, cmd, "invalid version '%s' in -o: %s", a->version, why);
    return EXIT_OK;
}

static int parse_args(cli *c, const command *cmd, int argc, char **argv, merge_args *a)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"strategy", required_argument, NULL, 's'},
        {"prefer", required_argument, NULL, 'p'},
        {"merge-config", no_argument, NULL, 'm'},
        {"recipes", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int rc = EXIT_OK, o;
    optind = 0;
    opterr = 0;
    while (rc == EXIT_OK && (o = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (o) {
        case 'o': rc = parse_output(c, cmd, optarg, a); break;
        case 's':
            if (plan_collide_parse(optarg, &a->strategy))
                rc = cli_usage(c, cmd, "--strategy is error, prefer-first or prefer-last, not "
                                       "'%s'", optarg);
            break;
        case 'p': plan_strlist_add(&a->prefer, optarg); break;
        case 'm': a->merge_config = true; break;
        case 'r': plan_strlist_add(&a->recipes, optarg); break;
        default:
            rc = cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    for (int i = optind; rc == EXIT_OK && i < argc; i++) {
        plan_strlist_add(&a->order, argv[i]);
        if (strchr(argv[i], '/')) {
            plan_strlist_add(&a->paths, argv[i]);
            continue;
        }
        char *name, *range;
        if ((rc = cli_split_request(c, cmd, argv[i], &name, &range)))
            break;
        plan_strlist_take(&a->names, name);
        plan_strlist_take(&a->ranges, range ? range : plan_xstrdup("*"));
    }
    if (rc == EXIT_OK && a->order.len < 2)
        rc = cli_usage(c, cmd, "name at least two plans to merge");
    if (rc == EXIT_OK && !a->name)
        rc = cli_usage(c, cmd, "name the new plan with -o NAME@VERSION");
    return rc;
}

/* The argument's store path (absolute), from the lock for a name. */
static int plan_of(cli *c, plan_store *store, const plan_lock *lock, const char *arg,
                   plan_farm_plan *out, char **path_out)
{
    char *base = NULL;
    if (strchr(arg, '/')) {
        if (plan_store_resolve(store, arg, &base))
            return cli_fail(c);
    } else {
        char *name = plan_xstrndup(arg, strcspn(arg, "@"));
        const plan_lock_package *p = plan_lock_find(lock, name);
        free(name);
        if (!p || !p->path)
            return cli_error(c, "'%s' was not resolved to a store path", arg);
        base = plan_xstrdup(p->path);
    }
    plan_path_info *info = NULL;
    int rc = plan_store_path_info(store, base, &info) ? cli_fail(c) : EXIT_OK;
    free(base);
    if (rc)
        return rc;
    *path_out = plan_xstrdup(info->path);
    out->path = *path_out;
    out->name = plan_xstrdup(info->name);
    out->version = plan_xstrdup(info->version);
    plan_path_info_free(info);
    return EXIT_OK;
}

static void report(cli *c, plan_store *store, const plan_merge_result *r, size_t n_plans)
{
    const plan_merge_stats *s = &r->stats;
    if (c->json) {
        plan_lineage *l = NULL;
        size_t nl = 0;
        plan_lineage_read(store, r->path, &l, &nl);
        json_t *o = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "path", r->path,
                              "existed", r->existed, "linked", (json_int_t)s->linked,
                              "copied", (json_int_t)s->copied, "identical",
                              (json_int_t)s->identical, "chosen", (json_int_t)s->chosen,
                              "merged", (json_int_t)s->merged, "references",
                              (json_int_t)r->n_references);
        json_object_set_new(o, "lineage", cli_lineage_json(l, nl));
        plan_lineage_free(l, nl);
        cli_print_json(o);
        return;
    }
    printf("%s\n", r->path);
    if (!c->quiet)
        fprintf(stderr,
                "plan: %s %zu plans: %llu files linked, %llu copied, %llu identical, %llu "
                "settled, %llu merged\n",
                r->existed ? "already merged" : "merged", n_plans,
                (unsigned long long)s->linked, (unsigned long long)s->copied,
                (unsigned long long)s->identical, (unsigned long long)s->chosen,
                (unsigned long long)s->merged);
}

int cmd_merge(cli *c, const command *cmd, int argc, char **argv)
{
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    merge_args a = {0};
    plan_strlist *lists[] = {&a.names, &a.ranges, &a.paths, &a.recipes, &a.prefer, &a.order};
    const size_t n_lists = sizeof(lists) / sizeof(lists[0]);
    for (size_t i = 0; i < n_lists; i++)
        plan_strlist_init(lists[i]);
    int rc = parse_args(c, cmd, argc, argv, &a);
    plan_store *store = NULL;
    plan_lock *lock = NULL;
    size_t n = a.order.len;
    plan_farm_plan *plans = plan_xcalloc(n ? n : 1, sizeof(*plans));
    char **paths = plan_xcalloc(n ? n : 1, sizeof(char *));
    if (rc == EXIT_OK && cli_open_store(c, &store))
        rc = EXIT_FAILURE_;
    if (rc == EXIT_OK) {
        /* The plans are resolved exactly as plan env resolves its own. */
        cli_env_request rq;
        cli_env_request_init(&rq);
        const plan_strlist *from[] = {&a.names, &a.ranges, &a.paths, &a.recipes};
        plan_strlist *to[] = {&rq.names, &rq.ranges, &rq.paths, &rq.recipes};
        for (size_t l = 0; l < 4; l++)
            for (size_t i = 0; i < from[l]->len; i++)
                plan_strlist_add(to[l], from[l]->items[i]);
        rc = cli_env_lock_requests(c, store, &rq, &lock);
        cli_env_request_release(&rq);
    }
    for (size_t i = 0; rc == EXIT_OK && i < n; i++)
        rc = plan_of(c, store, lock, a.order.items[i], &plans[i], &paths[i]);
    plan_merge_result res = {0};
    if (rc == EXIT_OK) {
        plan_merge_request req = {.plans = plans, .n_plans = n, .name = a.name,
                                  .version = a.version, .strategy = a.strategy,
                                  .prefer = (const char *const *)a.prefer.items,
                                  .n_prefer = a.prefer.len, .merge_config = a.merge_config};
        if (plan_merge_plans(store, &req, &res))
            rc = cli_fail(c);
        else
            report(c, store, &res, n);
    }
    plan_merge_result_release(&res);
    for (size_t i = 0; i < n; i++) {
        free(paths[i]);
        free((char *)plans[i].name);
        free((char *)plans[i].version);
    }
    free(paths);
    free(plans);
    plan_lock_free(lock);
    plan_store_close(store);
    for (size_t i = 0; i < n_lists; i++)
        plan_strlist_release(lists[i]);
    free(a.name);
    free(a.version);
    return rc;
}
