/* What install, upgrade, remove and env share (realise.h). */
#include "realise.h"
#include "project.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

char *cli_config_file(const cli *c)
{
    const char *env = getenv("PLAN_CONFIG");
    if (env && *env)
        return plan_xstrdup(env);
    if (c->root_explicit)
        return plan_path_join(c->root, "config.yaml");
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && *xdg == '/')
        return plan_path_join(xdg, "plan/config.yaml");
    const char *home = getenv("HOME");
    return plan_xasprintf("%s/.config/plan/config.yaml", home && *home ? home : "/");
}

int cli_config_recipes(cli *c, plan_strlist *out)
{
    const plan_project *cfg = NULL;
    if (cli_config(c, &cfg))
        return EXIT_FAILURE_;
    for (size_t i = 0; cfg && i < cfg->recipes.len; i++)
        plan_strlist_add(out, cfg->recipes.items[i]);
    return EXIT_OK;
}

static bool writable_dir(const char *dir)
{
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && access(dir, W_OK | X_OK) == 0;
}

char *cli_run_dir(const cli *c)
{
    const char *env = getenv("PLAN_RUN_DIR");
    if (env && *env)
        return plan_path_absolute(env);
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg == '/' && writable_dir(xdg))
        return plan_path_join(xdg, "plan");
    /* A tmpfs: links there cost a third of what they cost on ext4. */
    struct statfs fs;
    if (statfs("/dev/shm", &fs) == 0 && fs.f_type == TMPFS_MAGIC && writable_dir("/dev/shm")) {
        /* /dev/shm is shared: the folder must be ours, private and real,
         * or another user could swap a live run root. */
        char *dir = plan_xasprintf("/dev/shm/plan-%ld", (long)getuid());
        mkdir(dir, 0700);
        struct stat st;
        if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid() &&
            (st.st_mode & 077) == 0)
            return dir;
        free(dir);
    }
    return plan_path_join(c->root, "var/run");
}

int cli_split_request(cli *c, const command *cmd, const char *arg, char **name, char **range)
{
    const char *at = strchr(arg, '@');
    *name = at ? plan_xstrndup(arg, (size_t)(at - arg)) : plan_xstrdup(arg);
    *range = at ? plan_xstrdup(at + 1) : NULL;
    const char *why = plan_store_check_name(*name);
    if (why || (at && !at[1])) {
        int rc = cli_usage(c, cmd, "'%s' is not a request: write NAME or NAME@RANGE, such as "
                                   "hello@^1.0 (%s)",
                           arg, why ? why : "the range after '@' is empty");
        free(*name);
        free(*range);
        *name = *range = NULL;
        return rc;
    }
    return EXIT_OK;
}

/* ---------- shell text ---------- */

static void sh_quote(plan_buf *b, const char *s)
{
    plan_buf_addc(b, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            plan_buf_adds(b, "'\\''");
        else
            plan_buf_addc(b, *s);
    }
    plan_buf_addc(b, '\'');
}

/* The same rule as plan_env_apply: per variable, its prepends, then its
 * value (the last set, else the shell's own), then its appends. */
char *cli_env_script(const plan_env_plan *e, const char *kind, const char *comment)
{
    bool fish = !strcmp(kind, "fish");
    plan_buf b;
    plan_buf_init(&b);
    plan_buf_printf(&b, "# %s\n", comment);
    for (size_t k = 0; k < e->n; k++) {
        const char *name = e->items[k].name;
        bool first = true;
        for (size_t j = 0; j < k && first; j++)
            first = strcmp(e->items[j].name, name) != 0;
        if (!first)
            continue;
        const char *set = NULL;
        plan_buf pre, post;
        plan_buf_init(&pre);
        plan_buf_init(&post);
        for (size_t j = k; j < e->n; j++) {
            const plan_env_item *it = &e->items[j];
            if (strcmp(it->name, name) != 0)
                continue;
            if (it->op == PLAN_ENV_SET)
                set = it->value;
            else
                plan_buf_printf(it->op == PLAN_ENV_PREPEND ? &pre : &post, "%s%s",
                                (it->op == PLAN_ENV_PREPEND ? pre.len : post.len) ? ":" : "",
                                it->value);
        }
        if (fish) {
            /* fish keeps such variables as lists: --path exports them
             * joined with ':'. */
            bool list = pre.len || post.len;
            plan_buf_printf(&b, "set -gx %s%s", list ? "--path " : "", name);
            for (size_t part = 0; part < 3; part++) {
                if (part == 1) {
                    if (set) {
                        plan_buf_addc(&b, ' ');
                        sh_quote(&b, set);
                    } else {
                        plan_buf_printf(&b, " $%s", name);
                    }
                    continue;
                }
                plan_buf *items = part == 0 ? &pre : &post;
                char *save = NULL, *copy = plan_xstrdup(items->data);
                for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
                    plan_buf_addc(&b, ' ');
                    sh_quote(&b, t);
                }
                free(copy);
            }
            plan_buf_addc(&b, '\n');
        } else {
            plan_buf_printf(&b, "export %s=", name);
            if (pre.len)
                sh_quote(&b, pre.data);
            if (set) {
                if (pre.len)
                    plan_buf_addc(&b, ':');
                sh_quote(&b, set);
            } else {
                plan_buf_printf(&b, pre.len ? "\"${%s:+:$%s}\"" : "\"${%s}\"", name, name);
            }
            if (post.len) {
                /* A separator unless nothing comes before the appends. */
                if (set || pre.len)
                    plan_buf_addc(&b, ':');
                else
                    plan_buf_printf(&b, "\"${%s:+:}\"", name);
                sh_quote(&b, post.data);
            }
            plan_buf_addc(&b, '\n');
        }
        plan_buf_release(&pre);
        plan_buf_release(&post);
    }
    return plan_buf_detach(&b);
}

/* ---------- build options ---------- */

void cli_build_opts_init(cli *c, plan_build_opts *bo, plan_recipe_repo *repo)
{
    memset(bo, 0, sizeof(*bo));
    bo->cache_dir = cli_cache_dir(c);
    bo->log_dir = cli_log_dir(c);
    bo->repo = repo;
    bo->sandbox = true;
    bo->cancel = cli_catch_interrupts();
}

void cli_build_opts_release(plan_build_opts *bo)
{
    free((char *)bo->cache_dir);
    free((char *)bo->log_dir);
    bo->cache_dir = bo->log_dir = NULL;
}

/* ---------- profile changes ---------- */

/* The requests after the change; EXIT_USAGE-style failures reported. */
static int next_requests(cli *c, const profile_change *ch, const plan_generation *cur,
                         plan_strlist *names, plan_strlist *ranges)
{
    plan_strmap at_of; /* name -> its place in names */
    plan_strmap_init(&at_of);
    if (cur)
        for (size_t i = 0; i < cur->req_names.len; i++) {
            plan_strmap_put(&at_of, cur->req_names.items[i], names->len);
            plan_strlist_add(names, cur->req_names.items[i]);
            plan_strlist_add(ranges, cur->req_ranges.items[i]);
        }
    int rc = EXIT_OK;
    for (size_t i = 0; i < ch->names.len && rc == EXIT_OK; i++) {
        const char *n = ch->names.items[i];
        ssize_t at = plan_strmap_get(&at_of, n);
        if (ch->kind == CHANGE_INSTALL) {
            const char *r = ch->ranges.items[i][0] ? ch->ranges.items[i] : "*";
            if (at >= 0) {
                free(ranges->items[at]);
                ranges->items[at] = plan_xstrdup(r);
            } else {
                plan_strmap_put(&at_of, n, names->len);
                plan_strlist_add(names, n);
                plan_strlist_add(ranges, r);
            }
        } else if (at < 0) {
            plan_buf have;
            plan_buf_init(&have);
            for (size_t k = 0; k < names->len; k++)
                plan_buf_printf(&have, "%s%s", k ? ", " : "", names->items[k]);
            rc = cli_error(c, "'%s' is not installed in profile '%s' (%s)", n, ch->profile,
                           have.len ? have.data : "it is empty");
            plan_buf_release(&have);
        } else if (ch->kind == CHANGE_REMOVE) {
            free(names->items[at]);
            free(ranges->items[at]);
            for (size_t k = (size_t)at; k + 1 < names->len; k++) {
                names->items[k] = names->items[k + 1];
                ranges->items[k] = ranges->items[k + 1];
                plan_strmap_put(&at_of, names->items[k], k);
            }
            names->len--;
            ranges->len--;
            plan_strmap_put(&at_of, n, (size_t)-1); /* gone: a second removal fails */
        }
    }
    plan_strmap_release(&at_of);
    return rc;
}

static void generation_add(plan_generation *g, const plan_lock_package *p)
{
    plan_strlist_add(&g->pkg_names, p->name);
    plan_strlist_add(&g->pkg_versions, p->version);
    plan_strlist_add(&g->pkg_paths, p->path);
}

static plan_lock *lock_of_generation(const plan_generation *g)
{
    plan_lock *l = plan_lock_new();
    for (size_t i = 0; g && i < g->pkg_names.len; i++)
        plan_lock_add(l, g->pkg_names.items[i], g->pkg_versions.items[i]);
    return l;
}

static void map_of(const plan_strlist *l, plan_strmap *m)
{
    plan_strmap_init(m);
    for (size_t i = 0; i < l->len; i++)
        plan_strmap_put(m, l->items[i], i);
}

static void print_changes(cli *c, const plan_generation *old, const plan_generation *now,
                          unsigned number, const char *profile)
{
    if (c->quiet || c->json)
        return;
    size_t changes = 0;
    plan_strmap in_old, in_now;
    map_of(&now->pkg_names, &in_now);
    plan_strmap_init(&in_old);
    if (old)
        map_of(&old->pkg_names, &in_old);
    for (size_t i = 0; i < now->pkg_names.len; i++) {
        ssize_t k = plan_strmap_get(&in_old, now->pkg_names.items[i]);
        if (k < 0)
            fprintf(stderr, "  + %s %s\n", now->pkg_names.items[i], now->pkg_versions.items[i]);
        else if (strcmp(old->pkg_versions.items[k], now->pkg_versions.items[i]) != 0)
            fprintf(stderr, "  ~ %s %s -> %s\n", now->pkg_names.items[i],
                    old->pkg_versions.items[k], now->pkg_versions.items[i]);
        else
            continue;
        changes++;
    }
    for (size_t i = 0; old && i < old->pkg_names.len; i++)
        if (plan_strmap_get(&in_now, old->pkg_names.items[i]) < 0) {
            fprintf(stderr, "  - %s %s\n", old->pkg_names.items[i], old->pkg_versions.items[i]);
            changes++;
        }
    plan_strmap_release(&in_old);
    plan_strmap_release(&in_now);
    fprintf(stderr, "plan: profile '%s' is now generation %u (%zu change%s)\n", profile, number,
            changes, changes == 1 ? "" : "s");
}

static bool same_list(const plan_strlist *a, const plan_strlist *b)
{
    if (a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++)
        if (strcmp(a->items[i], b->items[i]) != 0)
            return false;
    return true;
}

static bool same_set(const plan_strlist *a, const plan_strlist *b)
{
    if (a->len != b->len)
        return false;
    plan_strmap in_b;
    map_of(b, &in_b);
    bool same = true;
    for (size_t i = 0; i < a->len && same; i++)
        same = plan_strmap_get(&in_b, a->items[i]) >= 0;
    plan_strmap_release(&in_b);
    return same;
}

/* Would the new generation be the current one again? */
static bool same_generation(const plan_generation *a, const plan_generation *b)
{
    return same_list(&a->req_names, &b->req_names) && same_list(&a->req_ranges, &b->req_ranges) &&
           same_set(&a->pkg_paths, &b->pkg_paths) && same_list(&a->prefer, &b->prefer) &&
           !strcmp(a->strategy ? a->strategy : "error", b->strategy ? b->strategy : "error");
}

/* A request "path:<basename>" installs that store path as it is (a plan
 * merge made, say): nothing resolves or builds it. */
static bool pinned_range(const char *range) { return !strncmp(range, "path:", 5); }

/* The change with its store-path arguments (install PATH) turned into
 * pinned requests named after their plans. */
static int pin_store_paths(cli *c, plan_store *store, const profile_change *ch,
                           profile_change *out)
{
    *out = *ch;
    plan_strlist_init(&out->names);
    plan_strlist_init(&out->ranges);
    for (size_t i = 0; i < ch->names.len; i++) {
        if (!strchr(ch->names.items[i], '/')) {
            plan_strlist_add(&out->names, ch->names.items[i]);
            plan_strlist_add(&out->ranges, ch->ranges.items[i]);
            continue;
        }
        plan_path_info *info = NULL;
        if (plan_store_path_info(store, ch->names.items[i], &info))
            return cli_fail(c);
        plan_strlist_add(&out->names, info->name);
        plan_strlist_take(&out->ranges, plan_xasprintf("path:%s", info->basename));
        plan_path_info_free(info);
    }
    return EXIT_OK;
}

/* Pinned requests join the resolved lock with their own paths. */
static int add_pinned(cli *c, plan_store *store, const plan_strlist *names,
                      const plan_strlist *ranges, plan_lock *lock)
{
    for (size_t i = 0; i < names->len; i++) {
        if (!pinned_range(ranges->items[i]))
            continue;
        const char *base = ranges->items[i] + 5;
        plan_path_info *info = NULL;
        if (plan_store_path_info(store, base, &info) || plan_store_hold(store, info->basename)) {
            plan_path_info_free(info);
            return cli_fail(c);
        }
        int rc = EXIT_OK;
        if (plan_lock_find(lock, info->name))
            rc = cli_error(c, "'%s' is both the store path '%s' and a package resolved from "
                              "the recipes: remove one of them",
                           info->name, base);
        else
            plan_lock_add(lock, info->name, info->version)->path = plan_xstrdup(base);
        plan_path_info_free(info);
        if (rc)
            return rc;
    }
    return EXIT_OK;
}

int cli_profile_change(cli *c, const profile_change *ch_given)
{
    plan_store *store = NULL;
    plan_profile *prof = NULL;
    plan_generation *gens = NULL, *cur = NULL;
    size_t ngens = 0;
    plan_strlist names, ranges, repos, upgrade;
    plan_strlist_init(&names);
    plan_strlist_init(&ranges);
    plan_strlist_init(&repos);
    plan_strlist_init(&upgrade);
    plan_strlist rnames, rranges; /* the requests to resolve: not the pinned ones */
    plan_strlist_init(&rnames);
    plan_strlist_init(&rranges);
    profile_change pinned = {0};
    const profile_change *ch = &pinned;
    cli_sources src = {0};
    plan_lock *previous = NULL, *lock = NULL;
    plan_build_opts bo;
    memset(&bo, 0, sizeof(bo));
    int rc = EXIT_OK;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    if ((rc = pin_store_paths(c, store, ch_given, &pinned)))
        goto out;
    if (plan_profile_open(store, ch->profile, ch->kind == CHANGE_INSTALL, &prof) ||
        plan_profile_generations(prof, &gens, &ngens)) {
        rc = cli_fail(c);
        goto out;
    }
    for (size_t i = 0; i < ngens; i++)
        if (gens[i].current)
            cur = &gens[i];
    if ((rc = next_requests(c, ch, cur, &names, &ranges)))
        goto out;
    for (size_t i = 0; i < names.len; i++)
        if (!pinned_range(ranges.items[i])) {
            plan_strlist_add(&rnames, names.items[i]);
            plan_strlist_add(&rranges, ranges.items[i]);
        }
    /* Recipes: the ones named now, else the configuration's, else the ones
     * this profile was last resolved from. */
    for (size_t i = 0; i < ch->recipes.len; i++)
        plan_strlist_take(&repos, plan_path_absolute(ch->recipes.items[i]));
    if (!repos.len && (rc = cli_config_recipes(c, &repos)))
        goto out;
    if (!repos.len && cur)
        for (size_t i = 0; i < cur->recipes.len; i++)
            plan_strlist_add(&repos, cur->recipes.items[i]);
    /* An upgrade is asked for the newest there is: it always asks. */
    cli_update update = ch->kind == CHANGE_UPGRADE ? UPDATE_ALWAYS : UPDATE_STALE;
    if (rnames.len && cli_sources_open(c, &repos, update, &src)) {
        rc = cli_fail(c);
        goto out;
    }
    if (rnames.len && !src.repo && !src.reg) {
        char *cfg = cli_config_file(c);
        rc = cli_error(c, "nothing to install from: pass --recipes DIR, add 'recipes:' to "
                          "'%s', or add a registry ('plan registry add')", cfg);
        free(cfg);
        goto out;
    }
    /* 'plan upgrade' with no names lets dependencies move too. */
    previous = ch->kind == CHANGE_UPGRADE && !ch->names.len ? NULL : lock_of_generation(cur);
    if (ch->kind == CHANGE_UPGRADE)
        for (size_t i = 0; i < (ch->names.len ? ch->names.len : rnames.len); i++) {
            const char *n = ch->names.len ? ch->names.items[i] : rnames.items[i];
            if (plan_strlist_contains(&rnames, n)) /* a pinned path has nothing to move to */
                plan_strlist_add(&upgrade, n);
        }
    char *what = plan_xasprintf("the requests of profile '%s'", ch->profile);
    int r = rnames.len
                ? cli_resolve(c, &src, &rnames, &rranges, previous, &upgrade, NULL, what, &lock)
                : 0;
    free(what);
    if (r) {
        rc = cli_fail(c);
        goto out;
    }
    if (!lock)
        lock = plan_lock_new();
    if (cli_sources_realise_published(c, &src, store, lock, false)) {
        rc = EXIT_FAILURE_;
        goto out;
    }
    cli_build_opts_init(c, &bo, src.repo);
    if (plan_realise_lock(store, lock, src.repo, &bo, false)) {
        rc = cli_fail(c);
        goto out;
    }
    if ((rc = add_pinned(c, store, &names, &ranges, lock)))
        goto out;
    /* npm's rule: a request without a range remembers the caret of what
     * was installed, so 'upgrade' stays within that major version. */
    plan_strmap in_lock, requested;
    plan_strmap_init(&in_lock);
    for (size_t i = 0; i < lock->n; i++)
        plan_strmap_put(&in_lock, lock->packages[i].name, i);
    map_of(&ch->names, &requested);
    for (size_t i = 0; i < names.len; i++) {
        if (strcmp(ranges.items[i], "*") != 0)
            continue;
        ssize_t k = plan_strmap_get(&in_lock, names.items[i]);
        if (k >= 0 && ch->kind == CHANGE_INSTALL &&
            plan_strmap_get(&requested, names.items[i]) >= 0) {
            free(ranges.items[i]);
            ranges.items[i] = plan_xasprintf("^%s", lock->packages[k].version);
        }
    }
    plan_strmap_release(&requested);
    plan_generation g;
    plan_generation_init(&g);
    for (size_t i = 0; i < names.len; i++) {
        plan_strlist_add(&g.req_names, names.items[i]);
        plan_strlist_add(&g.req_ranges, ranges.items[i]);
    }
    /* Packages in the order they were requested, then their dependencies
     * (in the lock's order): the order prefer-first and prefer-last mean. */
    plan_strmap_release(&in_lock);
    size_t *order = plan_xcalloc(lock->n ? lock->n : 1, sizeof(size_t));
    plan_lock_request_order(lock, &names, order);
    for (size_t i = 0; i < lock->n; i++)
        generation_add(&g, &lock->packages[order[i]]);
    free(order);
    /* Remembered preferences stay while their plan is installed. */
    const plan_strlist *prefer = ch->prefer.len || !cur ? &ch->prefer : &cur->prefer;
    for (size_t i = 0; i < prefer->len; i++)
        if (ch->prefer.len || plan_strlist_contains(&g.pkg_names, prefer->items[i]))
            plan_strlist_add(&g.prefer, prefer->items[i]);
    g.strategy = plan_xstrdup(ch->strategy ? ch->strategy
                                           : cur && cur->strategy ? cur->strategy : "error");
    for (size_t i = 0; i < repos.len; i++)
        plan_strlist_add(&g.recipes, repos.items[i]);
    if (cur && same_generation(cur, &g)) {
        if (!c->quiet && !c->json)
            fprintf(stderr, "plan: profile '%s' is up to date (generation %u): nothing to do\n",
                    ch->profile, cur->number);
        if (c->json)
            cli_print_json(json_pack("{s:s, s:I, s:b}", "profile", ch->profile, "generation",
                                     (json_int_t)cur->number, "changed", false));
        plan_generation_release(&g);
        goto out;
    }
    plan_farm_opts fo = {.prefer = (const char *const *)g.prefer.items, .n_prefer = g.prefer.len};
    plan_collide_parse(g.strategy, &fo.strategy);
    /* The environment is written against 'current', so that a rollback
     * needs no new shell for PATH. */
    char *farm = plan_path_join(plan_profile_dir(prof), "current");
    char **paths = plan_xcalloc(lock->n + 1, sizeof(char *));
    for (size_t i = 0; i < g.pkg_paths.len; i++)
        paths[i] = plan_path_join(plan_store_dir(store), g.pkg_paths.items[i]);
    plan_env_plan env;
    char *sh = NULL, *fish = NULL;
    unsigned number = 0;
    plan_farm_stats fs;
    r = plan_env_compose(c->ctx, store, (const char *const *)paths, g.pkg_paths.len, farm, &env);
    if (!r) {
        char *comment = plan_xasprintf("plan profile '%s': source this file", ch->profile);
        sh = cli_env_script(&env, "sh", comment);
        fish = cli_env_script(&env, "fish", comment);
        free(comment);
        plan_env_plan_release(&env);
        r = plan_profile_commit(prof, &g, &fo, sh, fish, &fs, &number);
    }
    if (r) {
        rc = cli_fail(c);
    } else {
        print_changes(c, cur, &g, number, ch->profile);
        if (c->json) {
            json_t *pk = json_array();
            for (size_t i = 0; i < g.pkg_names.len; i++)
                json_array_append_new(pk, json_pack("{s:s, s:s, s:s}", "name",
                                                    g.pkg_names.items[i], "version",
                                                    g.pkg_versions.items[i], "path",
                                                    g.pkg_paths.items[i]));
            cli_print_json(json_pack("{s:s, s:I, s:b, s:o, s:I, s:I}", "profile", ch->profile,
                                     "generation", (json_int_t)number, "changed", true,
                                     "packages", pk, "links",
                                     (json_int_t)fs.links, "identical",
                                     (json_int_t)fs.identical));
        }
    }
    free(sh);
    free(fish);
    for (size_t i = 0; i < lock->n; i++)
        free(paths[i]);
    free(paths);
    free(farm);
    plan_generation_release(&g);
out:
    /* A first install that failed leaves no empty profile behind. */
    if (rc != EXIT_OK && prof && !ngens && !plan_profile_current(prof))
        plan_fs_rmtree(plan_profile_dir(prof));
    cli_build_opts_release(&bo);
    plan_lock_free(previous);
    plan_lock_free(lock);
    cli_sources_close(&src);
    plan_strlist_release(&names);
    plan_strlist_release(&ranges);
    plan_strlist_release(&repos);
    plan_strlist_release(&upgrade);
    plan_strlist_release(&rnames);
    plan_strlist_release(&rranges);
    plan_strlist_release(&pinned.names);
    plan_strlist_release(&pinned.ranges);
    plan_generations_free(gens, ngens);
    plan_profile_close(prof);
    plan_store_close(store);
    return rc;
}

const char *cli_profile_name(const char *option)
{
    if (option)
        return option;
    const char *env = getenv("PLAN_PROFILE");
    return env && *env ? env : "default";
}

int cli_profile_command(cli *c, const command *cmd, change_kind kind, int argc, char **argv)
{
    static const struct option opts[] = {
        {"profile", required_argument, NULL, 'p'},
        {"recipes", required_argument, NULL, 'r'},
        {"prefer", required_argument, NULL, 'P'},
        {"strategy", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    profile_change ch = {.kind = kind};
    plan_strlist_init(&ch.names);
    plan_strlist_init(&ch.ranges);
    plan_strlist_init(&ch.recipes);
    plan_strlist_init(&ch.prefer);
    const char *profile = NULL;
    int rc = EXIT_OK, o;
    optind = 0;
    opterr = 0;
    while (rc == EXIT_OK && (o = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
        switch (o) {
        case 'p': profile = optarg; break;
        case 'r': plan_strlist_add(&ch.recipes, optarg); break;
        case 'P': plan_strlist_add(&ch.prefer, optarg); break;
        case 's': {
            plan_collide x;
            if (plan_collide_parse(optarg, &x))
                rc = cli_usage(c, cmd, "--strategy is error, prefer-first or prefer-last, not "
                                       "'%s'", optarg);
            ch.strategy = optarg;
            break;
        }
        default:
            rc = cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (rc == EXIT_OK && kind != CHANGE_UPGRADE && optind == argc)
        rc = cli_usage(c, cmd, "name at least one package");
    for (int i = optind; rc == EXIT_OK && i < argc; i++) {
        char *name, *range;
        if (kind == CHANGE_INSTALL && strchr(argv[i], '/')) {
            /* A store path: resolved once the store is open. */
            plan_strlist_add(&ch.names, argv[i]);
            plan_strlist_add(&ch.ranges, "");
            continue;
        }
        if ((rc = cli_split_request(c, cmd, argv[i], &name, &range)))
            break;
        if (range && kind != CHANGE_INSTALL)
            rc = cli_usage(c, cmd, "'%s': give names only here; 'plan install %s' changes the "
                                   "range", argv[i], argv[i]);
        plan_strlist_take(&ch.names, name);
        plan_strlist_take(&ch.ranges, range ? range : plan_xstrdup(""));
    }
    ch.profile = cli_profile_name(profile);
    if (rc == EXIT_OK && plan_profile_check_name(ch.profile))
        rc = cli_usage(c, cmd, "invalid profile name '%s': use letters, digits and '-_.'",
                       ch.profile);
    if (rc == EXIT_OK)
        rc = cli_profile_change(c, &ch);
    plan_strlist_release(&ch.names);
    plan_strlist_release(&ch.ranges);
    plan_strlist_release(&ch.recipes);
    plan_strlist_release(&ch.prefer);
    return rc;
}

char *cli_config_dir(const cli *c)
{
    char *file = cli_config_file(c);
    char *slash = strrchr(file, '/');
    if (slash && slash != file)
        *slash = '\0';
    else if (slash)
        slash[1] = '\0';
    return file;
}

int cli_profile_view_open(cli *c, const char *name, bool read_records, cli_profile_view *v)
{
    memset(v, 0, sizeof(*v));
    if (cli_open_store(c, &v->store))
        return EXIT_FAILURE_;
    if (plan_profile_open(v->store, name, false, &v->profile) ||
        (read_records && plan_profile_generations(v->profile, &v->gens, &v->n))) {
        int rc = cli_fail(c);
        cli_profile_view_close(v);
        return rc;
    }
    for (size_t i = 0; i < v->n; i++)
        if (v->gens[i].current)
            v->current = &v->gens[i];
    return EXIT_OK;
}

void cli_profile_view_close(cli_profile_view *v)
{
    plan_generations_free(v->gens, v->n);
    plan_profile_close(v->profile);
    plan_store_close(v->store);
    memset(v, 0, sizeof(*v));
}

/* The key the pinned one vouched for is pinned from now on. */
static int pin_rotated_key(cli *c, plan_registries *regs, size_t i, plan_update_report *rep)
{
    plan_registry *reg = &regs->items[i];
    char *old_id = plan_xstrdup(reg->key.id);
    plan_pubkey_release(&reg->key);
    reg->key = rep->key;
    memset(&rep->key, 0, sizeof(rep->key));
    char *file = cli_registries_file(c);
    int rc = plan_registries_save(c->ctx, regs, file);
    char *text = plan_pubkey_format(&reg->key);
    if (!rc && !c->quiet)
        fprintf(stderr,
                "plan: registry '%s' rotated its key: '%s' now pinned in place of key %s, "
                "which vouched for it\n", reg->name, text, old_id);
    free(text);
    free(file);
    free(old_id);
    return rc;
}

int cli_registry_update(cli *c, plan_regdb *d, plan_registries *regs, size_t i,
                        plan_update_report *rep)
{
    plan_registry *reg = &regs->items[i];
    int rc = plan_registry_update(c->ctx, d, reg, rep);
    if (!rc && rep->rotated)
        rc = pin_rotated_key(c, regs, i, rep);
    /* New indexes: their signatures are checked now, once, rather than
     * by each command that reads them. */
    if (!rc && rep->changed)
        cli_remember_checks(c, d, regs, i);
    return rc;
}

void cli_update_registries(cli *c, plan_registries *regs, plan_regdb *d)
{
    for (size_t i = 0; i < regs->n; i++) {
        plan_update_report rep;
        if (cli_registry_update(c, d, regs, i, &rep)) {
            plan_warn(c->ctx, "registry '%s' not updated: %s", regs->items[i].name,
                      plan_ctx_error(c->ctx));
            plan_ctx_clear_error(c->ctx);
        }
    }
}
