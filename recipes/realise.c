/* Realising a lock: every locked package's store path, held for the
 * caller, built from its recipe when the store lacks it. */
#include "recipes_int.h"

#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *plan_recipe_file_hash(plan_ctx *ctx, const char *file)
{
    plan_buf text;
    plan_buf_init(&text);
    char *out = NULL;
    if (plan_fs_read_file(file, 1 << 20, &text) == 0) {
        uint8_t h[32];
        crypto_generichash(h, sizeof(h), (const uint8_t *)text.data, text.len, NULL, 0);
        char hex[65];
        plan_hex_encode(h, 32, hex);
        out = plan_xasprintf("blake2b:%s", hex);
    } else {
        plan_fail(ctx, PLAN_ERR_IO, "cannot read '%s'", file);
    }
    plan_buf_release(&text);
    return out;
}

static bool yaml_name(const char *n)
{
    size_t len = strlen(n);
    return (len > 5 && !strcmp(n + len - 5, ".yaml")) || (len > 4 && !strcmp(n + len - 4, ".yml"));
}

static void fingerprint_dir(crypto_generichash_state *st, const char *dir, int depth)
{
    plan_strlist names;
    plan_strlist_init(&names);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            plan_strlist_add(&names, de->d_name);
    if (d)
        closedir(d);
    plan_strlist_sort(&names);
    for (size_t i = 0; i < names.len; i++) {
        char *path = plan_path_join(dir, names.items[i]);
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) && depth < 8) {
            fingerprint_dir(st, path, depth + 1);
        } else if (S_ISREG(sb.st_mode) && yaml_name(path)) {
            char line[128];
            int n = snprintf(line, sizeof(line), "\n%lld %lld.%09ld %llu\n",
                             (long long)sb.st_size, (long long)sb.st_mtim.tv_sec,
                             sb.st_mtim.tv_nsec, (unsigned long long)sb.st_ino);
            crypto_generichash_update(st, (const uint8_t *)path, strlen(path) + 1);
            crypto_generichash_update(st, (const uint8_t *)line, (size_t)n);
        }
        free(path);
    }
    plan_strlist_release(&names);
}

int plan_recipe_repo_fingerprint(plan_ctx *ctx, const char *const *dirs, size_t n, char *out)
{
    (void)ctx;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    for (size_t i = 0; i < n; i++) {
        crypto_generichash_update(&st, (const uint8_t *)dirs[i], strlen(dirs[i]) + 1);
        fingerprint_dir(&st, dirs[i], 0);
    }
    uint8_t h[32];
    crypto_generichash_final(&st, h, sizeof(h));
    char hex[65];
    plan_hex_encode(h, 32, hex);
    snprintf(out, PLAN_HASH_TEXT_LEN + 1, "blake2b:%s", hex);
    return 0;
}

bool plan_lock_present(plan_store *store, const plan_lock *lock)
{
    if (!lock->n)
        return true;
    const char **paths = plan_xcalloc(lock->n, sizeof(char *));
    bool all = true;
    for (size_t i = 0; i < lock->n && all; i++) {
        paths[i] = lock->packages[i].path;
        all = paths[i] != NULL;
    }
    if (all) {
        all = plan_store_hold_many(store, paths, lock->n) == 0;
        plan_ctx_clear_error(plan_store_ctx(store));
    }
    free(paths);
    return all;
}

static int realise_one(plan_store *store, plan_lock *lock, plan_lock_package *p,
                       plan_recipe_repo *repo, const plan_build_opts *opts, bool frozen)
{
    plan_ctx *ctx = plan_store_ctx(store);
    if (p->path) {
        if (plan_store_hold(store, p->path) == 0)
            return 0;
        plan_ctx_clear_error(ctx);
    }
    /* A published package is fetched by the registry client, not built. */
    if (p->source && !strncmp(p->source, "registry:", 9))
        return plan_fail(ctx, PLAN_ERR_NOT_FOUND, "%s %s (from %s) is not in the store: fetch it "
                                                  "from its registry first",
                         p->name, p->version, p->source + 9);
    const plan_recipe *recipe = repo ? plan_recipe_repo_exact(repo, p->name, p->version) : NULL;
    if (!recipe)
        return plan_fail(ctx, PLAN_ERR_NOT_FOUND,
                         "'%s %s' is not in the store and no recipe for it is in the recipe "
                         "repositories: add the repository that has it, or run 'plan lock' "
                         "to resolve again",
                         p->name, p->version);
    if (p->recipe_hash) {
        char *now = plan_recipe_file_hash(ctx, recipe->file);
        bool same = now && !strcmp(now, p->recipe_hash);
        free(now);
        if (!same && frozen)
            return plan_fail(ctx, PLAN_ERR_FAILED,
                             "the recipe '%s' of %s %s changed since the lock was written (the "
                             "lock is stale): run 'plan lock' and commit the result",
                             recipe->file, p->name, p->version);
    }
    plan_build_opts bo = *opts;
    bo.pins = lock;
    plan_build_result br;
    int rc = plan_build(store, recipe, &bo, &br);
    if (rc)
        return plan_fail_wrap(ctx, rc, "building %s %s", p->name, p->version);
    const char *base = strrchr(br.path, '/') + 1;
    if (p->path && strcmp(p->path, base) != 0)
        plan_warn(ctx, "%s %s built into '%s', not the '%s' the lock records (another root, "
                       "or a build that is not reproducible)",
                  p->name, p->version, base, p->path);
    free(p->path);
    p->path = plan_xstrdup(base);
    plan_build_result_release(&br);
    return 0;
}

int plan_realise_lock(plan_store *store, plan_lock *lock, plan_recipe_repo *repo,
                      const plan_build_opts *opts, bool frozen)
{
    int rc = 0;
    for (size_t i = 0; i < lock->n && !rc; i++)
        rc = realise_one(store, lock, &lock->packages[i], repo, opts, frozen);
    return rc;
}
