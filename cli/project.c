/* Shared by lock and why: find plan.yaml, resolve it into a lock. */
#include "cli.h"
#include "project.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

char *cli_lock_path(const char *project_file)
{
    size_t n = strlen(project_file);
    if (n >= 5 && !strcmp(project_file + n - 5, ".yaml"))
        return plan_xasprintf("%.*s.lock", (int)(n - 5), project_file);
    return plan_xasprintf("%s.lock", project_file);
}

/* A path relative to the project's folder when it is below it. */
static char *relative_to(const char *dir, const char *path)
{
    char *abs = plan_path_absolute(path);
    size_t n = strlen(dir);
    char *out = !strncmp(abs, dir, n) && abs[n] == '/' ? plan_xstrdup(abs + n + 1)
                                                       : plan_xstrdup(abs);
    free(abs);
    return out;
}

static int resolve_once(cli *c, cli_sources *src, const plan_strlist *names,
                        const plan_strlist *ranges, const plan_lock *previous,
                        const plan_strlist *upgrade, const char *project_dir, const char *what,
                        plan_lock **out)
{
    plan_recipe_repo *repo = src->repo;
    cli_sources_prefetch(src, names);
    plan_resolver_provider prov = cli_sources_provider(src);
    plan_resolver *solver = plan_resolver_new(c->ctx, &prov);
    int rc = 0;
    for (size_t i = 0; i < names->len && !rc; i++)
        rc = plan_resolver_require(solver, names->items[i], ranges->items[i]);
    /* Keep what the previous lock chose whenever it still fits, yanked or
     * not. */
    for (size_t i = 0; previous && src->reg && i < previous->n; i++)
        plan_regsource_allow(src->reg, previous->packages[i].name,
                             previous->packages[i].version);
    for (size_t i = 0; previous && i < previous->n && !rc; i++)
        if (!upgrade || !plan_strlist_contains(upgrade, previous->packages[i].name))
            rc = plan_resolver_lock(solver, previous->packages[i].name,
                                    previous->packages[i].version);
    const plan_resolution *res = NULL;
    if (!rc)
        rc = plan_resolver_solve(solver, &res);
    if (rc == PLAN_ERR_FAILED && plan_resolver_explain(solver))
        rc = plan_fail(c->ctx, PLAN_ERR_FAILED, "%s cannot be satisfied together:\n%s", what,
                       plan_resolver_explain(solver));
    plan_lock *lock = rc ? NULL : plan_lock_new();
    for (size_t i = 0; i < names->len && lock; i++) {
        plan_strlist_add(&lock->request_names, names->items[i]);
        plan_strlist_add(&lock->request_ranges, ranges->items[i]);
    }
    for (size_t i = 0; lock && !rc && i < res->count; i++) {
        const plan_resolved *r = &res->packages[i];
        const plan_recipe *recipe = repo ? plan_recipe_repo_exact(repo, r->name, r->version)
                                         : NULL;
        plan_lock_package *p = plan_lock_add(lock, r->name, r->version);
        if (recipe) {
            p->source = plan_xstrdup("recipes");
            p->recipe = project_dir ? relative_to(project_dir, recipe->file)
                                    : plan_path_absolute(recipe->file);
            p->recipe_hash = plan_recipe_file_hash(c->ctx, recipe->file);
            if (!p->recipe_hash)
                rc = PLAN_ERR_IO;
        } else {
            /* Published: the signed index names its store path and recipe. */
            const plan_registry *reg = NULL;
            json_t *entry = NULL;
            rc = plan_regsource_find(src->reg, r->name, r->version, &reg, &entry);
            if (!rc) {
                p->source = plan_xasprintf("registry:%s", reg->name);
                const char *rh = json_string_value(
                    json_object_get(json_object_get(entry, "recipe"), "hash"));
                p->recipe_hash = rh ? plan_xstrdup(rh) : NULL;
                const char *path = json_string_value(json_object_get(entry, "path"));
                p->path = path ? plan_xstrdup(path) : NULL;
            }
        }
        for (size_t d = 0; d < r->ndeps; d++) {
            plan_strlist_add(&p->dep_names, res->packages[r->deps[d]].name);
            plan_strlist_add(&p->dep_ranges, r->dep_ranges[d]);
        }
        if (r->parent != SIZE_MAX) {
            p->required_by = plan_xstrdup(res->packages[r->parent].name);
            p->required_as = plan_xstrdup(r->required_as);
        }
    }
    /* The identity of a package built here includes its store path: the
     * store is asked, nothing is built. */
    plan_store *store = NULL;
    if (!rc && repo && cli_open_store_quietly(c, &store) == 0) {
        plan_build_opts bo = {.repo = repo, .sandbox = true, .reuse_only = true, .pins = lock};
        for (size_t i = 0; i < lock->n && repo; i++) {
            plan_lock_package *p = &lock->packages[i];
            const plan_recipe *recipe = plan_recipe_repo_exact(repo, p->name, p->version);
            plan_build_result br;
            if (recipe && plan_build(store, recipe, &bo, &br) == 0) {
                p->path = plan_xstrdup(strrchr(br.path, '/') + 1);
                plan_build_result_release(&br);
            }
        }
        plan_ctx_clear_error(c->ctx);
    }
    plan_store_close(store);
    plan_resolver_free(solver);
    if (rc) {
        plan_lock_free(lock);
        return rc;
    }
    *out = lock;
    return 0;
}

/* A failure to solve while a registry could not be reached may be the
 * network's, not the request's: the message says so. */
static int blame_unreachable(cli *c, const cli_sources *src, int rc)
{
    if ((rc != PLAN_ERR_FAILED && rc != PLAN_ERR_NOT_FOUND) || !src->unreachable.len)
        return rc;
    plan_buf names;
    plan_buf_init(&names);
    for (size_t i = 0; i < src->unreachable.len; i++)
        plan_buf_printf(&names, "%s'%s'", i ? ", " : "", src->unreachable.items[i]);
    char *why = plan_xstrdup(plan_ctx_error(c->ctx));
    rc = plan_fail(c->ctx, rc,
                   "%s\n(registry %s could not be reached: what it publishes is known only as "
                   "far as its cache goes; try again once it can be)",
                   why, names.data);
    free(why);
    plan_buf_release(&names);
    return rc;
}

int cli_resolve(cli *c, cli_sources *src, const plan_strlist *names,
                const plan_strlist *ranges, const plan_lock *previous,
                const plan_strlist *upgrade, const char *project_dir, const char *what,
                plan_lock **out)
{
    int rc = resolve_once(c, src, names, ranges, previous, upgrade, project_dir, what, out);
    if (rc != PLAN_ERR_FAILED && rc != PLAN_ERR_NOT_FOUND)
        return rc;
    /* Solved against caches too fresh to be asked again: what is asked
     * for may have been published since.  Ask, then solve once more. */
    int refreshed;
    if (!cli_sources_refresh(c, src, &refreshed))
        return blame_unreachable(c, src, rc); /* every registry was asked already */
    if (refreshed)
        return refreshed;
    plan_ctx_clear_error(c->ctx);
    rc = resolve_once(c, src, names, ranges, previous, upgrade, project_dir, what, out);
    return blame_unreachable(c, src, rc);
}

int cli_resolve_project_in(cli *c, cli_sources *src, const plan_project *pr,
                           const plan_lock *previous, plan_lock **out)
{
    plan_strlist names, ranges;
    plan_strlist_init(&names);
    plan_strlist_init(&ranges);
    for (size_t i = 0; i < pr->n_packages; i++) {
        plan_strlist_add(&names, pr->packages[i].name);
        plan_strlist_add(&ranges, pr->packages[i].range);
    }
    char *what = plan_xasprintf("the packages of '%s'", pr->file);
    int rc = cli_resolve(c, src, &names, &ranges, previous, NULL, pr->dir, what, out);
    free(what);
    plan_strlist_release(&names);
    plan_strlist_release(&ranges);
    return rc;
}

int cli_resolve_project(cli *c, const plan_project *pr, const plan_lock *previous,
                        plan_lock **out)
{
    if (sodium_init() < 0)
        return plan_fail(c->ctx, PLAN_ERR_FAILED, "libsodium failed to initialise");
    cli_sources src;
    int rc = cli_sources_open(c, &pr->recipes, UPDATE_ALWAYS, &src);
    if (!rc && !src.repo && !src.reg)
        rc = plan_fail(c->ctx, PLAN_ERR_INVALID,
                       "'%s' names no recipe repositories and no registries are configured: "
                       "add e.g.\n  recipes:\n    - ./recipes\nor 'plan registry add'",
                       pr->file);
    if (!rc)
        rc = cli_resolve_project_in(c, &src, pr, previous, out);
    cli_sources_close(&src);
    return rc;
}
