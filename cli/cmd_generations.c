/* plan generations [--json] [--diff N M] [--delete N]... [--profile NAME] */
#include "realise.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const plan_generation *find(const plan_generation *g, size_t n, unsigned number)
{
    for (size_t i = 0; i < n; i++)
        if (g[i].number == number)
            return &g[i];
    return NULL;
}

static json_t *generation_json(const plan_generation *g)
{
    json_t *req = json_array(), *pk = json_array();
    for (size_t i = 0; i < g->req_names.len; i++)
        json_array_append_new(req, json_pack("{s:s, s:s}", "name", g->req_names.items[i],
                                             "range", g->req_ranges.items[i]));
    for (size_t i = 0; i < g->pkg_names.len; i++)
        json_array_append_new(pk, json_pack("{s:s, s:s, s:s}", "name", g->pkg_names.items[i],
                                            "version", g->pkg_versions.items[i], "path",
                                            g->pkg_paths.items[i]));
    return json_pack("{s:I, s:I, s:b, s:o, s:o}", "number", (json_int_t)g->number, "created",
                     (json_int_t)g->created, "current", g->current, "requests", req, "packages",
                     pk);
}

static void print_generation(const plan_generation *g)
{
    char when[32];
    time_t t = (time_t)g->created;
    struct tm tm;
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
    printf("%4u  %s  ", g->number, when);
    if (!g->pkg_names.len)
        printf("(empty)");
    size_t shown = 0;
    for (size_t i = 0; i < g->pkg_names.len; i++)
        if (plan_strlist_index(&g->req_names, g->pkg_names.items[i]) >= 0)
            printf("%s%s %s", shown++ ? ", " : "", g->pkg_names.items[i],
                   g->pkg_versions.items[i]);
    if (g->pkg_names.len > shown)
        printf(" (+%zu dependenc%s)", g->pkg_names.len - shown,
               g->pkg_names.len - shown == 1 ? "y" : "ies");
    printf("%s\n", g->current ? "   (current)" : "");
}

/* Added, removed and changed packages from a to b. */
static int diff(cli *c, const plan_generation *a, const plan_generation *b)
{
    json_t *arr = c->json ? json_array() : NULL;
    for (size_t i = 0; i < b->pkg_names.len; i++) {
        const char *n = b->pkg_names.items[i], *v = b->pkg_versions.items[i];
        ssize_t k = plan_strlist_index(&a->pkg_names, n);
        if (k >= 0 && !strcmp(a->pkg_versions.items[k], v))
            continue;
        if (arr)
            json_array_append_new(arr, json_pack("{s:s, s:s?, s:s}", "name", n, "from",
                                                 k >= 0 ? a->pkg_versions.items[k] : NULL, "to", v));
        else if (k >= 0)
            printf("~ %s %s -> %s\n", n, a->pkg_versions.items[k], v);
        else
            printf("+ %s %s\n", n, v);
    }
    for (size_t i = 0; i < a->pkg_names.len; i++) {
        if (plan_strlist_index(&b->pkg_names, a->pkg_names.items[i]) >= 0)
            continue;
        if (arr)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:n}", "name", a->pkg_names.items[i],
                                                 "from", a->pkg_versions.items[i], "to"));
        else
            printf("- %s %s\n", a->pkg_names.items[i], a->pkg_versions.items[i]);
    }
    if (arr)
        cli_print_json(json_pack("{s:I, s:I, s:o}", "from", (json_int_t)a->number, "to",
                                 (json_int_t)b->number, "changes", arr));
    return EXIT_OK;
}

static int parse_number(cli *c, const command *cmd, const char *text, unsigned *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*end || end == text || v < 1)
        return cli_usage(c, cmd, "'%s' is not a generation number", text);
    *out = (unsigned)v;
    return EXIT_OK;
}

int cmd_generations(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"profile", required_argument, NULL, 'p'},
        {"diff", no_argument, NULL, 'd'},
        {"delete", no_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    const char *profile = NULL;
    bool want_diff = false, want_delete = false;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
        switch (o) {
        case 'p': profile = optarg; break;
        case 'd': want_diff = true; break;
        case 'D': want_delete = true; break;
        default: return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    int nargs = argc - optind;
    if (want_diff && want_delete)
        return cli_usage(c, cmd, "--diff and --delete do not go together");
    if (want_diff && nargs != 2)
        return cli_usage(c, cmd, "--diff wants two generation numbers: --diff N M");
    if (want_delete && nargs < 1)
        return cli_usage(c, cmd, "--delete wants the generation numbers to delete");
    if (!want_diff && !want_delete && nargs)
        return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
    unsigned *nums = plan_xcalloc((size_t)nargs + 1, sizeof(unsigned));
    for (int i = 0; i < nargs; i++)
        if (parse_number(c, cmd, argv[optind + i], &nums[i])) {
            free(nums);
            return EXIT_USAGE;
        }
    profile = cli_profile_name(profile);
    /* --delete reads no record: it must work on a damaged one. */
    cli_profile_view v;
    if (cli_profile_view_open(c, profile, !want_delete, &v)) {
        free(nums);
        return EXIT_FAILURE_;
    }
    plan_profile *p = v.profile;
    plan_generation *gens = v.gens;
    size_t n = v.n;
    int rc = EXIT_OK;
    if (want_diff) {
        const plan_generation *a = find(gens, n, nums[0]), *b = find(gens, n, nums[1]);
        if (!a || !b)
            rc = cli_error(c, "profile '%s' has no generation %u (see 'plan generations')",
                           profile, a ? nums[1] : nums[0]);
        else
            rc = diff(c, a, b);
    } else if (want_delete) {
        for (int i = 0; i < nargs && rc == EXIT_OK; i++) {
            if (plan_profile_delete_generation(p, nums[i]))
                rc = cli_fail(c);
            else if (!c->quiet)
                fprintf(stderr, "plan: deleted generation %u of '%s' ('plan gc' frees its "
                                "paths)\n", nums[i], profile);
        }
    } else if (c->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, generation_json(&gens[i]));
        cli_print_json(json_pack("{s:s, s:o}", "profile", profile, "generations", arr));
    } else {
        for (size_t i = 0; i < n; i++)
            print_generation(&gens[i]);
    }
    free(nums);
    cli_profile_view_close(&v);
    return rc;
}
