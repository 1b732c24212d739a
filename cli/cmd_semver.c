/* plan semver [-r RANGE]... VERSION...  (mirrors npm's `semver` command) */
#include "cli.h"
#include "../resolver/resolver.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct item {
    plan_semver v;
    const char *text;
} item;

static int cmp_items(const void *a, const void *b)
{
    return plan_semver_compare_full(&((const item *)a)->v, &((const item *)b)->v);
}

int cmd_semver(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"range", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    plan_strlist range_texts;
    plan_strlist_init(&range_texts);
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "r:", opts, NULL)) != -1) {
        if (o == 'r') {
            plan_strlist_add(&range_texts, optarg);
            continue;
        }
        plan_strlist_release(&range_texts);
        return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
    }
    if (optind >= argc) {
        plan_strlist_release(&range_texts);
        return cli_usage(c, cmd, "give at least one version");
    }
    /* Every range must parse before anything is printed: a bad range is a
     * usage error (exit 2), as in npm's command. */
    size_t nr = range_texts.len;
    plan_semver_range **ranges = plan_xcalloc(nr ? nr : 1, sizeof(*ranges));
    int rc = EXIT_OK;
    for (size_t i = 0; i < nr; i++)
        if (plan_semver_range_parse(c->ctx, range_texts.items[i], &ranges[i])) {
            rc = cli_usage(c, cmd, "%s", plan_ctx_error(c->ctx));
            goto out;
        }
    size_t n = (size_t)(argc - optind), kept = 0;
    item *items = plan_xcalloc(n, sizeof(*items));
    json_t *invalid = json_array(), *unmatched = json_array();
    for (int i = optind; i < argc; i++) {
        item *it = &items[kept];
        if (plan_semver_parse(c->ctx, argv[i], &it->v)) {
            /* Skipped, as npm does; say so only when asked to. */
            if (c->verbose)
                fprintf(stderr, "plan: skipping %s\n", plan_ctx_error(c->ctx));
            json_array_append_new(invalid, json_string(argv[i]));
            continue;
        }
        bool ok = true;
        for (size_t k = 0; k < nr && ok; k++)
            ok = plan_semver_range_satisfies(ranges[k], &it->v);
        if (!ok) {
            json_array_append_new(unmatched, json_string(argv[i]));
            plan_semver_release(&it->v);
            continue;
        }
        it->text = argv[i];
        kept++;
    }
    qsort(items, kept, sizeof(*items), cmp_items);
    if (c->json) {
        json_t *vs = json_array(), *rs = json_array();
        for (size_t i = 0; i < kept; i++) {
            char *s = plan_semver_format(&items[i].v);
            json_array_append_new(vs, json_string(s));
            free(s);
        }
        for (size_t i = 0; i < nr; i++) {
            char *s = plan_semver_range_format(ranges[i]);
            json_array_append_new(rs, json_pack("{s:s, s:s}", "range", range_texts.items[i],
                                                "comparators", s));
            free(s);
        }
        cli_print_json(json_pack("{s:o, s:o, s:o, s:o}", "versions", vs, "ranges", rs,
                                 "invalid", invalid, "unmatched", unmatched));
    } else {
        json_decref(invalid);
        json_decref(unmatched);
        for (size_t i = 0; i < kept; i++) {
            char *s = plan_semver_format(&items[i].v);
            puts(s);
            free(s);
        }
    }
    rc = kept ? EXIT_OK : EXIT_FAILURE_;
    for (size_t i = 0; i < kept; i++)
        plan_semver_release(&items[i].v);
    free(items);
out:
    for (size_t i = 0; i < nr; i++)
        plan_semver_range_free(ranges[i]);
    free(ranges);
    plan_strlist_release(&range_texts);
    return rc;
}
