/* plan store path-info PATH... */
#include "realise.h"

#include <stdio.h>
#include <time.h>

json_t *cli_lineage_json(const plan_lineage *l, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:b}", "name", l[i].name, "version",
                              l[i].version, "content_hash", l[i].content_hash, "path",
                              l[i].basename, "present", l[i].present);
        if (l[i].n_parts)
            json_object_set_new(e, "lineage", cli_lineage_json(l[i].parts, l[i].n_parts));
        json_array_append_new(arr, e);
    }
    return arr;
}

/* One line per constituent, indented by depth; a constituent collected
 * since says so. */
static void print_lineage(const plan_lineage *l, size_t n, unsigned depth, bool *first)
{
    for (size_t i = 0; i < n; i++) {
        printf("  %s%*s%s %s  %s%s\n", *first ? "lineage       " : "              ",
               (int)(2 * depth), "", l[i].name, l[i].version, l[i].basename,
               l[i].present ? "" : " (no longer in the store)");
        *first = false;
        print_lineage(l[i].parts, l[i].n_parts, depth + 1, first);
    }
}

static void print_info(const plan_path_info *info, const plan_lineage *l, size_t nl)
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
    bool first = true;
    print_lineage(l, nl, 0, &first);
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
        plan_lineage *l = NULL;
        size_t nl = 0;
        plan_lineage_read(store, info->path, &l, &nl);
        if (c->json) {
            json_t *o = cli_path_info_json(info);
            /* Only merged plans have a lineage: others keep their shape. */
            if (nl)
                json_object_set_new(o, "lineage", cli_lineage_json(l, nl));
            json_array_append_new(all, o);
        } else {
            print_info(info, l, nl);
        }
        plan_lineage_free(l, nl);
        plan_path_info_free(info);
    }
    if (c->json)
        cli_print_json(all);
    else
        json_decref(all);
    plan_store_close(store);
    return rc;
}
