/* Where packages come from for install, env and lock: recipe repositories
 * first (the user's own), then the configured registries in priority
 * order (docs/commands/registry.md). */
#include "realise.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int versions_cb(void *user, plan_ctx *ctx, const char *name, plan_strlist *out)
{
    cli_sources *s = user;
    if (s->repo) {
        plan_resolver_provider rp = plan_recipe_repo_provider(s->repo);
        int rc = rp.versions(rp.user, ctx, name, out);
        if (rc != PLAN_ERR_NOT_FOUND)
            return rc;
        plan_ctx_clear_error(ctx);
    }
    if (!s->reg)
        return PLAN_ERR_NOT_FOUND;
    plan_resolver_provider gp = plan_regsource_provider(s->reg);
    return gp.versions(gp.user, ctx, name, out);
}

static int deps_cb(void *user, plan_ctx *ctx, const char *name, const char *version,
                   plan_strlist *names, plan_strlist *ranges)
{
    cli_sources *s = user;
    if (s->repo && plan_recipe_repo_exact(s->repo, name, version)) {
        plan_resolver_provider rp = plan_recipe_repo_provider(s->repo);
        return rp.dependencies(rp.user, ctx, name, version, names, ranges);
    }
    if (!s->reg)
        return plan_fail(ctx, PLAN_ERR_NOT_FOUND, "no source has %s %s", name, version);
    plan_resolver_provider gp = plan_regsource_provider(s->reg);
    return gp.dependencies(gp.user, ctx, name, version, names, ranges);
}

void cli_sources_prefetch(cli_sources *s, const plan_strlist *names)
{
    if (!s->reg)
        return;
    /* Only what no recipe repository provides comes from a registry. */
    plan_strlist from_registries, versions;
    plan_strlist_init(&from_registries);
    for (size_t i = 0; i < names->len; i++) {
        plan_strlist_init(&versions);
        bool in_repo = false;
        if (s->repo) {
            plan_resolver_provider rp = plan_recipe_repo_provider(s->repo);
            in_repo = rp.versions(rp.user, NULL, names->items[i], &versions) == 0 &&
                      versions.len > 0;
        }
        plan_strlist_release(&versions);
        if (!in_repo)
            plan_strlist_add(&from_registries, names->items[i]);
    }
    plan_regsource_prefetch(s->reg, &from_registries);
    plan_strlist_release(&from_registries);
}

plan_resolver_provider cli_sources_provider(cli_sources *s)
{
    plan_resolver_provider p = {.versions = versions_cb, .dependencies = deps_cb, .user = s};
    return p;
}

static void *preload_network(void *arg)
{
    (void)arg;
    plan_fetch_preload();
    return NULL;
}

/* Update registry i; an unreachable one is a warning (offline-first: its
 * cache stays as it was, verified again on every read and refused once
 * it expires), tampered metadata is an error. */
static int update_one(cli *c, cli_sources *s, size_t i)
{
    plan_update_report rep;
    if (!cli_registry_update(c, s->db, &s->regs, i, &rep))
        return 0;
    if (plan_ctx_error_code(c->ctx) == PLAN_ERR_HOSTILE)
        return PLAN_ERR_HOSTILE;
    plan_warn(c->ctx, "registry '%s' not updated: %s", s->regs.items[i].name,
              plan_ctx_error(c->ctx));
    plan_ctx_clear_error(c->ctx);
    plan_strlist_add(&s->unreachable, s->regs.items[i].name);
    return 0;
}

/* <config>/cache-key, made on first use.  Without it (a folder that
 * cannot be written, say) nothing is remembered and every publisher
 * signature is verified when needed: slower, never less safe. */
static bool load_cache_key(cli *c, uint8_t key[PLAN_CACHE_KEY_BYTES])
{
    char *cfg = cli_config_dir(c), *file = plan_path_join(cfg, "cache-key");
    bool ok = plan_cache_key_load(c->ctx, file, key) == 0;
    if (!ok)
        plan_ctx_clear_error(c->ctx);
    free(file);
    free(cfg);
    return ok;
}

static void open_regsource(cli *c, plan_registries *regs, plan_regdb *db,
                           const plan_keyring *trusted, plan_regsource **out)
{
    plan_regsource_open(c->ctx, regs, db, trusted, out);
    uint8_t key[PLAN_CACHE_KEY_BYTES];
    if (load_cache_key(c, key))
        plan_regsource_remember(*out, key);
    sodium_memzero(key, sizeof(key));
}

void cli_remember_checks(cli *c, plan_regdb *d, plan_registries *regs, size_t i)
{
    char *cfg = cli_config_dir(c), *file = plan_path_join(cfg, "trusted-keys");
    plan_keyring trusted;
    plan_regsource *src = NULL;
    if (!plan_keyring_load(c->ctx, file, &trusted)) {
        open_regsource(c, regs, d, &trusted, &src);
        plan_regsource_vouch(src, &regs->items[i]);
        plan_regsource_free(src);
        plan_keyring_release(&trusted);
    }
    /* Only a head start for the commands that follow: they verify
     * whatever this could not. */
    plan_ctx_clear_error(c->ctx);
    free(file);
    free(cfg);
}

static void join_preload(cli_sources *s)
{
    if (s->preloading)
        pthread_join(s->preload, NULL);
    s->preloading = false;
}

int cli_sources_open(cli *c, const plan_strlist *recipe_dirs, cli_update update,
                     cli_sources *s)
{
    memset(s, 0, sizeof(*s));
    char *file = cli_registries_file(c);
    int rc = plan_registries_load(c->ctx, file, &s->regs);
    free(file);
    if (rc)
        return rc;
    /* Updates and downloads need libcurl, whose loading takes
     * milliseconds: on another core, while the recipes, keys and cache
     * are opened (and, when no update is due, while the indexes are read
     * and the request is solved). */
    s->preloading = update != UPDATE_NEVER && s->regs.n &&
                    pthread_create(&s->preload, NULL, preload_network, NULL) == 0;
    if (recipe_dirs && recipe_dirs->len)
        rc = plan_recipe_repo_open(c->ctx, (const char *const *)recipe_dirs->items,
                                   recipe_dirs->len, &s->repo);
    if (!rc && s->regs.n) {
        char *cfg = cli_config_dir(c), *trusted = plan_path_join(cfg, "trusted-keys");
        char *dbp = cli_regdb_path(c);
        rc = plan_keyring_load(c->ctx, trusted, &s->trusted);
        if (!rc)
            rc = plan_regdb_open(c->ctx, dbp, cli_flushes(c), &s->db);
        free(cfg);
        free(trusted);
        free(dbp);
    }
    if (rc || !s->regs.n)
        return rc;
    s->skipped = plan_xcalloc(s->regs.n, sizeof(bool));
    int64_t now = (int64_t)time(NULL);
    const plan_project *cfg = cli_config_quiet(c);
    int64_t fresh = cfg && cfg->registry_refresh >= 0 ? cfg->registry_refresh
                                                      : CLI_REGISTRY_FRESH;
    for (size_t i = 0; !rc && update != UPDATE_NEVER && i < s->regs.n; i++) {
        int64_t checked = plan_registry_checked(s->db, &s->regs.items[i]);
        if (update == UPDATE_STALE && checked && now >= checked && now - checked < fresh) {
            s->skipped[i] = true;
            continue;
        }
        join_preload(s);
        rc = update_one(c, s, i);
    }
    if (!rc)
        open_regsource(c, &s->regs, s->db, &s->trusted, &s->reg);
    return rc;
}

bool cli_sources_refresh(cli *c, cli_sources *s, int *rc)
{
    bool any = false;
    *rc = 0;
    for (size_t i = 0; s->skipped && i < s->regs.n && !*rc; i++) {
        if (!s->skipped[i])
            continue;
        join_preload(s);
        s->skipped[i] = false;
        any = true;
        *rc = update_one(c, s, i);
    }
    if (any && !*rc) {
        plan_regsource_free(s->reg);
        s->reg = NULL;
        open_regsource(c, &s->regs, s->db, &s->trusted, &s->reg);
    }
    return any;
}

void cli_sources_close(cli_sources *s)
{
    join_preload(s);
    plan_regsource_free(s->reg);
    plan_regdb_close(s->db);
    plan_keyring_release(&s->trusted);
    plan_registries_release(&s->regs);
    plan_recipe_repo_free(s->repo);
    free(s->skipped);
    plan_strlist_release(&s->unreachable);
    memset(s, 0, sizeof(*s));
}

/* Packages published for another store directory cannot be downloaded
 * (their paths would not be valid here): their published recipes are
 * downloaded, verified and built, with the lock's versions pinned. */
static int build_foreign(cli *c, cli_sources *s, plan_store *store, plan_lock *lock,
                         plan_lock_package **pkgs, size_t n)
{
    /* A fresh folder each time: the repository holds exactly the
     * recipes just verified. */
    char *cache = cli_cache_dir(c);
    char *dir = plan_xasprintf("%s/published-recipes.XXXXXX", cache);
    plan_recipe_repo *repo = NULL;
    int rc = EXIT_OK;
    if (plan_fs_mkdirs(cache, 0755) != 0 || !mkdtemp(dir))
        rc = cli_error(c, "cannot create a folder in '%s' for published recipes", cache);
    for (size_t k = 0; k < n && rc == EXIT_OK; k++) {
        char *file = NULL;
        if (plan_regsource_recipe(s->reg, pkgs[k]->name, pkgs[k]->version, dir, &file))
            rc = cli_fail(c);
        free(file);
    }
    if (rc == EXIT_OK && plan_recipe_repo_open_folder(c->ctx, dir, &repo))
        rc = cli_fail(c);
    plan_build_opts bo;
    cli_build_opts_init(c, &bo, repo);
    bo.pins = lock;
    for (size_t k = 0; k < n && rc == EXIT_OK; k++) {
        plan_lock_package *p = pkgs[k];
        const plan_recipe *r = plan_recipe_repo_exact(repo, p->name, p->version);
        plan_build_result br;
        if (!r) {
            rc = cli_error(c, "the published recipe of %s %s does not declare that name and "
                              "version: refused", p->name, p->version);
        } else if (plan_build(store, r, &bo, &br)) {
            plan_fail_wrap(c->ctx, plan_ctx_error_code(c->ctx),
                           "building %s %s from the recipe %s published (its archive was "
                           "built for another store directory)",
                           p->name, p->version, p->source);
            rc = cli_fail(c);
        } else {
            free(p->path);
            p->path = plan_xstrdup(strrchr(br.path, '/') + 1);
            plan_build_result_release(&br);
        }
    }
    cli_build_opts_release(&bo);
    plan_recipe_repo_free(repo);
    plan_fs_rmtree(dir);
    free(dir);
    free(cache);
    return rc;
}

/* Registry packages of the lock (source "registry:NAME") made present:
 * those built for this store directory downloaded in one parallel batch,
 * the others built from their published recipes; their paths recorded in
 * the lock. */
int cli_sources_realise_published(cli *c, cli_sources *s, plan_store *store, plan_lock *lock,
                                  bool offline)
{
    size_t n = 0, nforeign = 0;
    const char **names = plan_xcalloc(lock->n + 1, sizeof(char *));
    const char **versions = plan_xcalloc(lock->n + 1, sizeof(char *));
    size_t *idx = plan_xcalloc(lock->n + 1, sizeof(size_t));
    plan_lock_package **foreign = plan_xcalloc(lock->n + 1, sizeof(*foreign));
    int rc = EXIT_OK;
    for (size_t i = 0; i < lock->n && rc == EXIT_OK; i++) {
        plan_lock_package *p = &lock->packages[i];
        if (!p->source || strncmp(p->source, "registry:", 9) != 0)
            continue;
        if (!s->reg) {
            rc = cli_error(c, "the lock takes %s from %s, but no registries are configured "
                              "('plan registry add')", p->name, p->source);
            break;
        }
        const char *dir = NULL;
        if (plan_regsource_store_dir(s->reg, p->name, p->version, &dir)) {
            rc = cli_fail(c);
            break;
        }
        if (strcmp(dir, plan_store_dir(store)) != 0) {
            /* Built here before: the lock names the path. */
            if (p->path && plan_store_hold(store, p->path) == 0)
                continue;
            plan_ctx_clear_error(c->ctx);
            if (offline)
                rc = cli_error(c, "%s %s must be built from its published recipe (it was "
                                  "published for the store '%s'), and --frozen never "
                                  "downloads: run once without --frozen",
                               p->name, p->version, dir);
            foreign[nforeign++] = p;
            continue;
        }
        names[n] = p->name;
        versions[n] = p->version;
        idx[n++] = i;
    }
    char **bases = plan_xcalloc(n + 1, sizeof(char *));
    char *cache = cli_cache_dir(c);
    if (rc == EXIT_OK && n &&
        plan_regsource_realise(s->reg, store, cache, names, versions, n, offline, bases))
        rc = cli_fail(c);
    /* A lock that names a path holds the registry to it. */
    for (size_t k = 0; k < n && rc == EXIT_OK; k++) {
        plan_lock_package *p = &lock->packages[idx[k]];
        if (p->path && strcmp(p->path, bases[k]) != 0)
            rc = cli_error(c, "the lock has %s %s as '%s', but %s now publishes '%s': the lock "
                              "is stale or the registry is not the one it was made with",
                           p->name, p->version, p->path, p->source, bases[k]);
    }
    for (size_t k = 0; k < n; k++) {
        if (rc == EXIT_OK) {
            plan_lock_package *p = &lock->packages[idx[k]];
            free(p->path);
            p->path = bases[k];
        } else {
            free(bases[k]);
        }
    }
    if (rc == EXIT_OK && nforeign)
        rc = build_foreign(c, s, store, lock, foreign, nforeign);
    free(cache);
    free(bases);
    free(names);
    free(versions);
    free(idx);
    free(foreign);
    return rc;
}
