/* plan store path-info PATH... */
#include "cli.h"

#include <stdio.h>
#include <time.h>

static void print_info(const plan_path_info *info)
{
    char size[24], closure[24], when[64];
    time_t t = (time_t)info->registered;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    plan_format_size(info->size, size, sizeof(size));
    plan_format_size(info->closure_size, closure, sizeof(closure));
    printf("%s\n", info->path);
    printf("  name          %s\n", info->name);
    printf("  version       %s\n", info->version);
    printf("  digest        %s\n", info->digest);
    printf("  content hash  %s\n", info->content_hash);
    printf("  size          %s (%llu bytes)\n", size, (unsigned long long)info->size);
    printf("  closure size  %s (%llu bytes)\n", closure,
           (unsigned long long)info->closure_size);
    printf("  registered    %s\n", when);
    if (!info->references.len)
        printf("  references    (none)\n");
    for (size_t i = 0; i < info->references.len; i++)
        printf("  %s%s\n", i ? "              " : "references    ", info->references.items[i]);
}

int cmd_store_path_info(cli *c, const command *cmd, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(c, cmd, "give at least one store path");
    plan_store *store;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    json_t *all = json_array();
    int rc = EXIT_OK;
    for (int i = 1; i < argc; i++) {
        plan_path_info *info;
        if (plan_store_path_info(store, argv[i], &info)) {
            rc = cli_fail(c);
            continue;
        }
        if (c->json)
            json_array_append_new(all, cli_path_info_json(info));
        else
            print_info(info);
        plan_path_info_free(info);
    }
    if (c->json)
        cli_print_json(all);
    else
        json_decref(all);
    plan_store_close(store);
    return rc;
}
