/* plan store hash DIR [--name N --version V] */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_store_hash(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"version", required_argument, NULL, 'V'},
        {"mask", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *version = NULL, *mask = NULL;
    long threads = 0;
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'n': name = optarg; break;
        case 'V': version = optarg; break;
        case 'm': mask = optarg; break;
        case 'j':
            if (cli_parse_threads(c, cmd, optarg, &threads))
                return EXIT_USAGE;
            break;
        default:
            return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage(c, cmd, "give exactly one directory to hash");
    if (!name != !version)
        return cli_usage(c, cmd, "--name and --version go together");
    plan_hash h;
    plan_tree_stats stats;
    if (plan_store_hash_tree(c->ctx, argv[optind], mask, (unsigned)threads, &h, &stats))
        return cli_fail(c);
    char text[PLAN_HASH_TEXT_LEN + 1];
    plan_hash_format(&h, text);
    char *path = NULL;
    if (name) {
        /* The digest names the store directory, so it needs the root. */
        const char *why = plan_store_check_name(name);
        if (!why)
            why = plan_store_check_version(version);
        if (why)
            return cli_error(c, "invalid name or version ('%s', '%s'): %s", name, version,
                             why);
        /* The same spelling plan_store_open uses: the real path if the
         * root exists, since the store directory is part of the digest. */
        char *real_root = realpath(c->root, NULL);
        char *store_dir = plan_path_join(real_root ? real_root : c->root, "store");
        free(real_root);
        char *abs = plan_path_absolute(store_dir);
        char digest[PLAN_DIGEST_CHARS + 1];
        plan_store_digest(abs, name, version, &h, digest);
        path = plan_xasprintf("%s/%s-%s-%s", abs, digest, name, version);
        free(abs);
        free(store_dir);
    }
    if (c->json) {
        json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I}", "content_hash", text, "files",
                              (json_int_t)stats.files, "directories", (json_int_t)stats.dirs,
                              "symlinks", (json_int_t)stats.symlinks, "size",
                              (json_int_t)stats.bytes);
        if (path)
            json_object_set_new(j, "path", json_string(path));
        cli_print_json(j);
    } else {
        puts(text);
        if (path)
            puts(path);
    }
    free(path);
    return EXIT_OK;
}
