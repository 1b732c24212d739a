/* plan publish RECIPE|PATH [--registry NAME] [--key NAME] [--token TOKEN] [--recipes DIR]...
 *
 * Build the recipe if needed (or take the store path as it is), then
 * publish it and whatever of its closure the registry lacks, references
 * first: each path exported on its own, signed with the publisher's key
 * over the fields the registry format names, and uploaded with the recipe
 * it was built from, where one is known. */
#include "realise.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct item {
    plan_path_info *info;
    const plan_recipe *recipe;
    bool done;
} item;

/* "blake2b:<hex>" and size of a file, read as a stream (archives can be
 * large). */
static char *file_blake2b(cli *c, const char *file, uint64_t *size)
{
    struct stat st;
    char hex[65];
    if (stat(file, &st) != 0) {
        cli_error(c, "cannot read '%s'", file);
        return NULL;
    }
    if (plan_fetch_hash_file(c->ctx, file, PLAN_ALGO_BLAKE2B, hex)) {
        cli_fail(c);
        return NULL;
    }
    *size = (uint64_t)st.st_size;
    return plan_xasprintf("blake2b:%s", hex);
}

/* The package object of docs/formats/registry.md, and its signature. */
static int sign_package(cli *c, plan_store *store, const item *it, const char *archive,
                        const plan_seckey *key, char **package, char **signature)
{
    uint64_t asize = 0, rsize = 0;
    char *ahash = file_blake2b(c, archive, &asize);
    char *rhash = ahash && it->recipe ? file_blake2b(c, it->recipe->file, &rsize) : NULL;
    if (!ahash || (it->recipe && !rhash)) {
        free(ahash);
        free(rhash);
        return EXIT_FAILURE_;
    }
    json_t *refs = json_array(), *deps = json_object();
    for (size_t i = 0; i < it->info->references.len; i++)
        json_array_append_new(refs, json_string(it->info->references.items[i]));
    for (size_t i = 0; it->recipe && i < it->recipe->n_depends; i++)
        json_object_set_new(deps, it->recipe->depends[i].name,
                            json_string(it->recipe->depends[i].range));
    /* Without a recipe the references are the dependencies, at exactly
     * the versions the archive holds. */
    for (size_t i = 0; !it->recipe && i < it->info->references.len; i++) {
        plan_path_info *ref;
        if (plan_store_path_info(store, it->info->references.items[i], &ref) == 0) {
            json_object_set_new(deps, ref->name, json_string(ref->version));
            plan_path_info_free(ref);
        }
        plan_ctx_clear_error(c->ctx);
    }
    json_t *recipe = rhash ? json_pack("{s:s, s:I}", "hash", rhash, "size", (json_int_t)rsize)
                           : json_null();
    json_t *pkg = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:{s:s, s:I}, s:o}", "name",
                            it->info->name, "version", it->info->version, "store_dir",
                            plan_store_dir(store), "path", it->info->basename, "content_hash",
                            it->info->content_hash, "references", refs, "dependencies", deps,
                            "archive", "hash", ahash, "size", (json_int_t)asize, "recipe",
                            recipe);
    free(ahash);
    free(rhash);
    char *canon = plan_canonical_json(pkg);
    char *sig = plan_sign(key, "package", canon, strlen(canon));
    json_t *sj = json_pack("{s:s, s:s}", "keyid", key->id, "sig", sig);
    *package = canon;
    *signature = json_dumps(sj, JSON_COMPACT);
    json_decref(sj);
    json_decref(pkg);
    free(sig);
    return EXIT_OK;
}

/* Is name@version published already, and with this very path? */
static int published(cli *c, plan_regdb *d, const plan_registry *reg, const item *it)
{
    json_t *idx = NULL;
    if (plan_registry_index(c->ctx, d, reg, it->info->name, &idx)) {
        plan_ctx_clear_error(c->ctx);
        return 0;
    }
    int state = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(idx, "packages"), i, p) {
        const char *v = json_string_value(json_object_get(p, "version"));
        const char *path = json_string_value(json_object_get(p, "path"));
        if (v && !strcmp(v, it->info->version))
            state = path && !strcmp(path, it->info->basename) ? 1 : -1;
    }
    json_decref(idx);
    return state;
}

static int publish_one(cli *c, plan_store *store, const plan_registry *reg, const char *token,
                       const plan_seckey *key, const item *it)
{
    char *cache = cli_cache_dir(c);
    char *archive = plan_xasprintf("%s/publish-%s.tar.zst", cache, it->info->basename);
    plan_fs_mkdirs(cache, 0755);
    const char *one = it->info->path;
    char *package = NULL, *signature = NULL;
    int rc = EXIT_OK;
    if (plan_store_export(store, &one, 1, false, archive))
        rc = cli_fail(c);
    if (rc == EXIT_OK)
        rc = sign_package(c, store, it, archive, key, &package, &signature);
    plan_registry_answer ans = {0};
    if (rc == EXIT_OK && plan_registry_publish(c->ctx, reg, token, package, signature, archive,
                                               it->recipe ? it->recipe->file : NULL, &ans))
        rc = cli_fail(c);
    else if (rc == EXIT_OK && ans.status != 201)
        rc = cli_error(c, "registry '%s' refused %s %s (HTTP %ld): %s", reg->name,
                       it->info->name, it->info->version, ans.status,
                       ans.message ? ans.message : "no reason given");
    else if (rc == EXIT_OK && !c->quiet && !c->json)
        fprintf(stderr, "plan: published %s %s to '%s'%s\n", it->info->name, it->info->version,
                reg->name,
                it->recipe ? "" : " without a recipe (only stores with this store "
                                  "directory can install it)");
    plan_registry_answer_release(&ans);
    unlink(archive);
    free(archive);
    free(cache);
    free(package);
    free(signature);
    return rc;
}

static int pick_key(cli *c, const char *name, plan_seckey *key)
{
    char *cfg = cli_config_dir(c), *dir = plan_path_join(cfg, "keys");
    int rc = EXIT_OK;
    if (!name)
        rc = cli_error(c, "name the signing key with --key NAME (see 'plan keys list'; 'plan "
                          "keys generate NAME' makes one)");
    else if (plan_key_load_secret(c->ctx, dir, name, key))
        rc = cli_fail(c);
    free(dir);
    free(cfg);
    return rc;
}

/* A .yaml or .yml file is a recipe; anything else names a store path. */
static bool names_a_recipe(const char *arg)
{
    size_t n = strlen(arg);
    return (n > 5 && !strcmp(arg + n - 5, ".yaml")) || (n > 4 && !strcmp(arg + n - 4, ".yml"));
}

/* The recipe of the repositories that realises exactly this path (checked
 * against the store's realisations, building nothing), or NULL: a path
 * made by 'plan merge' or 'plan store add' is published without one. */
static const plan_recipe *recipe_of(cli *c, plan_store *store, plan_recipe_repo *repo,
                                    const plan_path_info *info)
{
    const plan_recipe *r = repo ? plan_recipe_repo_exact(repo, info->name, info->version) : NULL;
    if (!r)
        return NULL;
    plan_build_opts bo;
    cli_build_opts_init(c, &bo, repo);
    bo.reuse_only = true;
    plan_build_result br;
    bool same = false;
    if (plan_build(store, r, &bo, &br) == 0) {
        same = !strcmp(br.path, info->path);
        plan_build_result_release(&br);
    }
    plan_ctx_clear_error(c->ctx);
    cli_build_opts_release(&bo);
    return same ? r : NULL;
}

int cmd_publish(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"registry", required_argument, NULL, 'r'},
        {"key", required_argument, NULL, 'k'},
        {"token", required_argument, NULL, 't'},
        {"recipes", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    const char *reg_name = NULL, *key_name = getenv("PLAN_KEY"),
               *token = getenv("PLAN_REGISTRY_TOKEN");
    plan_strlist repos;
    plan_strlist_init(&repos);
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'r': reg_name = optarg; break;
        case 'k': key_name = optarg; break;
        case 't': token = optarg; break;
        case 'R': plan_strlist_add(&repos, optarg); break;
        default:
            plan_strlist_release(&repos);
            return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc) {
        plan_strlist_release(&repos);
        return cli_usage(c, cmd, "give exactly one recipe or store path to publish");
    }
    char *file = cli_registries_file(c), *dbp = cli_regdb_path(c);
    plan_registries regs = {0};
    plan_regdb *d = NULL;
    plan_seckey key;
    memset(&key, 0, sizeof(key));
    plan_recipe *recipe = NULL;
    plan_recipe_repo *repo = NULL;
    plan_store *store = NULL;
    item *items = NULL;
    size_t n = 0;
    const plan_registry *reg = NULL;
    size_t reg_i = 0;
    int rc = EXIT_OK;
    if (plan_registries_load(c->ctx, file, &regs) || plan_regdb_open(c->ctx, dbp, cli_flushes(c), &d)) {
        rc = cli_fail(c);
        goto out;
    }
    for (size_t i = 0; i < regs.n && !reg; i++)
        if (!reg_name || !strcmp(regs.items[i].name, reg_name))
            reg = &regs.items[reg_i = i];
    if (!reg) {
        rc = cli_error(c, reg_name ? "there is no registry named '%s' ('plan registry list')"
                                   : "no registry to publish to%s: 'plan registry add' one",
                       reg_name ? reg_name : "");
        goto out;
    }
    if (!token || !*token) {
        rc = cli_error(c, "publishing needs a token of registry '%s': --token TOKEN or "
                          "PLAN_REGISTRY_TOKEN ('plan-registry token create' makes one)",
                       reg->name);
        goto out;
    }
    if ((rc = pick_key(c, key_name, &key)))
        goto out;
    const char *arg = argv[optind];
    bool from_recipe = names_a_recipe(arg);
    char *top = NULL; /* basename of what is published */
    if (cli_open_store(c, &store)) {
        rc = EXIT_FAILURE_;
        goto out;
    }
    if (from_recipe) {
        if (plan_recipe_load(c->ctx, arg, &recipe) ||
            (repos.len ? plan_recipe_repo_open(c->ctx, (const char *const *)repos.items,
                                               repos.len, &repo)
                       : plan_recipe_repo_open_folder(c->ctx, recipe->dir, &repo))) {
            rc = cli_fail(c);
            goto out;
        }
        plan_build_opts bo;
        cli_build_opts_init(c, &bo, repo);
        plan_build_result br;
        int b = plan_build(store, recipe, &bo, &br);
        cli_build_opts_release(&bo);
        if (b) {
            rc = cli_fail(c);
            goto out;
        }
        top = plan_xstrdup(strrchr(br.path, '/') + 1);
        plan_build_result_release(&br);
    } else {
        if (repos.len && plan_recipe_repo_open(c->ctx, (const char *const *)repos.items,
                                               repos.len, &repo)) {
            rc = cli_fail(c);
            goto out;
        }
        if (plan_store_resolve(store, arg, &top)) {
            rc = cli_error(c, "'%s' is neither a recipe (a .yaml file) nor a store path "
                              "registered here: give a recipe, or a path 'plan store "
                              "path-info' knows", arg);
            goto out;
        }
    }
    /* The closure, each path with the recipe it was built from where one
     * is known. */
    plan_strlist roots, closure;
    plan_strlist_init(&roots);
    plan_strlist_init(&closure);
    plan_strlist_add(&roots, top);
    free(top);
    if (plan_store_closure(store, &roots, &closure))
        rc = cli_fail(c);
    items = plan_xcalloc(closure.len + 1, sizeof(*items));
    for (size_t i = 0; i < closure.len && rc == EXIT_OK; i++, n++) {
        if (plan_store_path_info(store, closure.items[i], &items[i].info)) {
            rc = cli_fail(c);
            break;
        }
        items[i].recipe = from_recipe && !strcmp(closure.items[i], roots.items[0])
                              ? recipe
                              : recipe_of(c, store, repo, items[i].info);
    }
    plan_strlist_release(&roots);
    plan_strlist_release(&closure);
    plan_update_report rep;
    if (rc == EXIT_OK && cli_registry_update(c, d, &regs, reg_i, &rep))
        rc = cli_fail(c);
    /* References first; what is already there is skipped. */
    size_t left = n, sent = 0;
    while (rc == EXIT_OK && left) {
        size_t progress = 0;
        for (size_t i = 0; i < n && rc == EXIT_OK; i++) {
            if (items[i].done)
                continue;
            bool ready = true;
            for (size_t r = 0; r < items[i].info->references.len && ready; r++)
                for (size_t k = 0; k < n && ready; k++)
                    if (!items[k].done && k != i &&
                        !strcmp(items[k].info->basename, items[i].info->references.items[r]))
                        ready = false;
            if (!ready)
                continue;
            int state = published(c, d, reg, &items[i]);
            if (state < 0)
                rc = cli_error(c, "registry '%s' has %s %s already, with other contents "
                                  "(versions are immutable): publish a new version",
                               reg->name, items[i].info->name, items[i].info->version);
            else if (state == 0 && (rc = publish_one(c, store, reg, token, &key, &items[i])) ==
                                       EXIT_OK)
                sent++;
            else if (state > 0 && c->verbose)
                fprintf(stderr, "plan: %s %s is published already\n", items[i].info->name,
                        items[i].info->version);
            items[i].done = true;
            left--;
            progress++;
        }
        if (rc == EXIT_OK && !progress)
            rc = cli_error(c, "the closure refers to itself in a cycle");
    }
    if (rc == EXIT_OK && c->json)
        cli_print_json(json_pack("{s:s, s:I, s:I}", "registry", reg->name, "published",
                                 (json_int_t)sent, "closure", (json_int_t)n));
    else if (rc == EXIT_OK && !sent && !c->quiet)
        fprintf(stderr, "plan: registry '%s' has all of it already\n", reg->name);
out:
    for (size_t i = 0; i < n; i++)
        plan_path_info_free(items[i].info);
    free(items);
    plan_store_close(store);
    plan_recipe_repo_free(repo);
    plan_recipe_free(recipe);
    plan_seckey_wipe(&key);
    plan_regdb_close(d);
    plan_registries_release(&regs);
    plan_strlist_release(&repos);
    free(file);
    free(dbp);
    return rc;
}
