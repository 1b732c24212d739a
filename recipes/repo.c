/* Recipe repositories: folders of recipes, searched by name and range. */
#include "recipes_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct plan_recipe_repo {
    plan_ctx *ctx;
    plan_recipe **recipes;
    size_t len, cap;
    plan_strlist dirs;
};

/* The checks common to every way of opening. */
static int repo_finish(plan_ctx *ctx, plan_recipe_repo *repo, int rc, plan_recipe_repo **out);

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && !strcmp(s + n - m, suffix);
}

static int scan_dir(plan_recipe_repo *repo, const char *dir, int depth, bool lenient)
{
    DIR *d = opendir(dir);
    if (!d)
        return plan_fail_errno(repo->ctx, errno == ENOENT ? PLAN_ERR_NOT_FOUND : PLAN_ERR_IO,
                               errno, "cannot read recipe repository '%s'", dir);
    plan_strlist names;
    plan_strlist_init(&names);
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            plan_strlist_add(&names, de->d_name);
    closedir(d);
    plan_strlist_sort(&names); /* the same order on every machine */
    int rc = 0;
    for (size_t i = 0; i < names.len && !rc; i++) {
        char *path = plan_path_join(dir, names.items[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && depth < 8) {
            if (!lenient)
                rc = scan_dir(repo, path, depth + 1, false);
        } else if (S_ISREG(st.st_mode) &&
                   (has_suffix(path, ".yaml") || has_suffix(path, ".yml"))) {
            plan_recipe *r;
            if ((rc = plan_recipe_load(repo->ctx, path, &r)) == 0) {
                if (repo->len == repo->cap) {
                    repo->cap = repo->cap ? repo->cap * 2 : 16;
                    repo->recipes = plan_xrealloc(repo->recipes, repo->cap * sizeof(*repo->recipes));
                }
                repo->recipes[repo->len++] = r;
            } else if (lenient) {
                /* A folder the user did not name as a repository may hold
                 * other YAML: skip what is not a recipe, and say so. */
                plan_info(repo->ctx, "skipping '%s': %s", path, plan_ctx_error(repo->ctx));
                plan_ctx_clear_error(repo->ctx);
                rc = 0;
            } else {
                plan_fail_wrap(repo->ctx, rc, "in recipe repository '%s'", dir);
            }
        }
        free(path);
    }
    plan_strlist_release(&names);
    return rc;
}

int plan_recipe_repo_open(plan_ctx *ctx, const char *const *dirs, size_t n,
                          plan_recipe_repo **out)
{
    plan_recipe_repo *repo = plan_xcalloc(1, sizeof(*repo));
    repo->ctx = ctx;
    plan_strlist_init(&repo->dirs);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        plan_strlist_add(&repo->dirs, dirs[i]);
        rc = scan_dir(repo, dirs[i], 0, false);
    }
    return repo_finish(ctx, repo, rc, out);
}

static int repo_finish(plan_ctx *ctx, plan_recipe_repo *repo, int rc, plan_recipe_repo **out)
{
    /* One recipe per name and version: two would make builds depend on
     * which folder was read first. */
    for (size_t i = 0; i < repo->len && !rc; i++)
        for (size_t j = i + 1; j < repo->len && !rc; j++)
            if (!strcmp(repo->recipes[i]->name, repo->recipes[j]->name) &&
                recipe_version_compare(repo->recipes[i]->version, repo->recipes[j]->version) == 0)
                rc = plan_fail(ctx, PLAN_ERR_INVALID,
                               "two recipes for '%s' %s: '%s' and '%s'; remove one",
                               repo->recipes[i]->name, repo->recipes[i]->version,
                               repo->recipes[i]->file, repo->recipes[j]->file);
    if (rc) {
        plan_recipe_repo_free(repo);
        return rc;
    }
    *out = repo;
    return 0;
}


int plan_recipe_repo_open_folder(plan_ctx *ctx, const char *dir, plan_recipe_repo **out)
{
    plan_recipe_repo *repo = plan_xcalloc(1, sizeof(*repo));
    repo->ctx = ctx;
    plan_strlist_init(&repo->dirs);
    plan_strlist_add(&repo->dirs, dir);
    return repo_finish(ctx, repo, scan_dir(repo, dir, 0, true), out);
}

void plan_recipe_repo_free(plan_recipe_repo *repo)
{
    if (!repo)
        return;
    for (size_t i = 0; i < repo->len; i++)
        plan_recipe_free(repo->recipes[i]);
    free(repo->recipes);
    plan_strlist_release(&repo->dirs);
    free(repo);
}

int plan_recipe_repo_find(plan_recipe_repo *repo, const char *name, const char *range,
                          const plan_recipe **out)
{
    const plan_recipe *best = NULL;
    plan_buf seen;
    plan_buf_init(&seen);
    for (size_t i = 0; i < repo->len; i++) {
        const plan_recipe *r = repo->recipes[i];
        if (strcmp(r->name, name) != 0)
            continue;
        plan_buf_printf(&seen, "%s%s", seen.len ? ", " : "", r->version);
        if (range && !recipe_range_satisfied(range, r->version))
            continue;
        if (!best || recipe_version_compare(r->version, best->version) > 0)
            best = r;
    }
    int rc = 0;
    if (!best && !seen.len)
        rc = plan_fail(repo->ctx, PLAN_ERR_NOT_FOUND,
                       "no recipe for '%s' in %zu recipe repositor%s (%s%s): add one, or "
                       "pass --recipes DIR for the folder that has it",
                       name, repo->dirs.len, repo->dirs.len == 1 ? "y" : "ies",
                       repo->dirs.len ? repo->dirs.items[0] : "", repo->dirs.len > 1 ? ", ..." : "");
    else if (!best)
        rc = plan_fail(repo->ctx, PLAN_ERR_NOT_FOUND,
                       "no version of '%s' satisfies '%s': the recipes have %s; loosen the "
                       "range or add a recipe for a matching version",
                       name, range, seen.data);
    else
        *out = best;
    plan_buf_release(&seen);
    return rc;
}

/* ---------- the repository as a solver provider ---------- */

static int provider_versions(void *user, plan_ctx *ctx, const char *name, plan_strlist *out)
{
    (void)ctx;
    plan_recipe_repo *repo = user;
    for (size_t i = 0; i < repo->len; i++)
        if (!strcmp(repo->recipes[i]->name, name))
            plan_strlist_add(out, repo->recipes[i]->version);
    return out->len ? 0 : PLAN_ERR_NOT_FOUND;
}

/* Build and run-time dependencies alike: one version per name serves the
 * whole build graph. */
static int provider_dependencies(void *user, plan_ctx *ctx, const char *name,
                                 const char *version, plan_strlist *names, plan_strlist *ranges)
{
    plan_recipe_repo *repo = user;
    const plan_recipe *r = plan_recipe_repo_exact(repo, name, version);
    if (!r)
        return plan_fail(ctx, PLAN_ERR_NOT_FOUND, "no recipe for '%s' %s", name, version);
    for (size_t i = 0; i < r->n_depends; i++) {
        plan_strlist_add(names, r->depends[i].name);
        plan_strlist_add(ranges, r->depends[i].range);
    }
    for (size_t i = 0; i < r->n_build_depends; i++) {
        plan_strlist_add(names, r->build_depends[i].name);
        plan_strlist_add(ranges, r->build_depends[i].range);
    }
    return 0;
}

plan_resolver_provider plan_recipe_repo_provider(plan_recipe_repo *repo)
{
    plan_resolver_provider p = {.versions = provider_versions,
                                .dependencies = provider_dependencies,
                                .user = repo};
    return p;
}

const plan_recipe *plan_recipe_repo_exact(plan_recipe_repo *repo, const char *name,
                                          const char *version)
{
    for (size_t i = 0; i < repo->len; i++)
        if (!strcmp(repo->recipes[i]->name, name) &&
            recipe_version_compare(repo->recipes[i]->version, version) == 0)
            return repo->recipes[i];
    return NULL;
}
