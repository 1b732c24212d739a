/* plan store verify [--check-contents] [PATH...] */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_store_verify(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"check-contents", no_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    bool contents = false;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'c')
            contents = true;
        else
            return cli_usage(c, cmd, "unknown option '%s'", argv[optind - 1]);
    }
    plan_store *store;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    plan_verify_report report = {0};
    int rc = plan_store_verify(store, (const char *const *)argv + optind,
                               (size_t)(argc - optind), contents, &report);
    uint64_t unsettled_paths = 0, unsettled_gens = 0;
    if (!rc)
        rc = plan_store_unsettled(store, &unsettled_paths, &unsettled_gens);
    if (rc) {
        rc = cli_fail(c);
    } else {
        if (c->json) {
            json_t *problems = json_array();
            for (size_t i = 0; i < report.len; i++)
                json_array_append_new(
                    problems, json_pack("{s:s, s:s, s:s}", "kind",
                                        plan_problem_kind_name(report.items[i].kind), "path",
                                        report.items[i].basename, "detail",
                                        report.items[i].detail));
            cli_print_json(json_pack("{s:I, s:b, s:o, s:{s:I, s:I}}", "checked",
                                     (json_int_t)report.checked, "contents_checked", contents,
                                     "problems", problems, "unsettled", "paths",
                                     (json_int_t)unsettled_paths, "generations",
                                     (json_int_t)unsettled_gens));
        } else {
            for (size_t i = 0; i < report.len; i++)
                printf("%-12s %s: %s\n", plan_problem_kind_name(report.items[i].kind),
                       report.items[i].basename, report.items[i].detail);
            fflush(stdout);
            if (!c->quiet)
                fprintf(stderr, "plan: checked %llu path%s%s: %zu problem%s%s\n",
                        (unsigned long long)report.checked, report.checked == 1 ? "" : "s",
                        contents ? " and their contents" : "", report.len,
                        report.len == 1 ? "" : "s",
                        report.len ? "; 'plan store repair PATH --from FILE' restores a "
                                     "damaged path"
                                   : "");
            if (!c->quiet && (unsettled_paths || unsettled_gens))
                fprintf(stderr, "plan: %llu path%s and %llu profile generation%s not known "
                                "to be on disk yet (durability: deferred; the kernel writes "
                                "them within a minute, 'plan gc' flushes them now)\n",
                        (unsigned long long)unsettled_paths, unsettled_paths == 1 ? "" : "s",
                        (unsigned long long)unsettled_gens, unsettled_gens == 1 ? "" : "s");
        }
        rc = report.len ? EXIT_FAILURE_ : EXIT_OK;
    }
    plan_verify_report_release(&report);
    plan_store_close(store);
    return rc;
}
