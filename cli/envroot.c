/* What plan env and plan run share (envroot.h): the lock of an
 * environment, with its re-entry cache under var/cache/env keyed by what
 * decides it (the requests or plan.yaml and plan.lock, the recipes'
 * fingerprint, the store), so that a hit whose paths are all present
 * resolves and builds nothing; the run root with its farm and composed
 * environment; and starting the command in it. */
#include "envroot.h"
#include "project.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

void cli_env_request_init(cli_env_request *rq)
{
    memset(rq, 0, sizeof(*rq));
    plan_strlist *lists[] = {&rq->names, &rq->ranges, &rq->paths, &rq->recipes,
                             &rq->prefer, &rq->choose_paths, &rq->choose_names};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        plan_strlist_init(lists[i]);
}

void cli_env_request_release(cli_env_request *rq)
{
    plan_strlist *lists[] = {&rq->names, &rq->ranges, &rq->paths, &rq->recipes,
                             &rq->prefer, &rq->choose_paths, &rq->choose_names};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        plan_strlist_release(lists[i]);
}

/* ---------- the lock: from the cache, plan.yaml, or a resolution ---------- */

static char *cache_file(cli *c, const char *key)
{
    return plan_xasprintf("%s/var/cache/env/%s.lock", c->root, key + strlen("blake2b:"));
}

static void cache_key(plan_store *store, const char *kind, const plan_strlist *parts,
                      const char *fingerprint, char *out)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    const char *head[] = {"plan-env-cache-v1", kind, plan_store_dir(store), fingerprint};
    for (size_t i = 0; i < 4; i++)
        crypto_generichash_update(&st, (const uint8_t *)head[i], strlen(head[i]) + 1);
    for (size_t i = 0; i < parts->len; i++)
        crypto_generichash_update(&st, (const uint8_t *)parts->items[i],
                                  strlen(parts->items[i]) + 1);
    uint8_t h[32];
    crypto_generichash_final(&st, h, sizeof(h));
    char hex[65];
    plan_hex_encode(h, 32, hex);
    snprintf(out, PLAN_HASH_TEXT_LEN + 1, "blake2b:%s", hex);
}

/* A cached lock whose paths are all in the store (and now held), or NULL. */
static plan_lock *cache_lookup(cli *c, plan_store *store, const char *key)
{
    char *file = cache_file(c, key);
    plan_lock *lock = NULL;
    if (plan_lock_read(c->ctx, file, &lock) != 0 || !plan_lock_present(store, lock)) {
        plan_lock_free(lock);
        lock = NULL;
    }
    plan_ctx_clear_error(c->ctx);
    free(file);
    return lock;
}

static void cache_store(cli *c, const char *key, plan_lock *lock)
{
    char *file = cache_file(c, key);
    char *dir = plan_path_join(c->root, "var/cache/env");
    /* A cache that cannot be written only costs the next run its speed. */
    if (plan_fs_mkdirs(dir, 0755) == 0 && plan_lock_write_cache(c->ctx, file, lock) != 0)
        plan_ctx_clear_error(c->ctx);
    free(dir);
    free(file);
}

/* An entry a concurrent plan env has just written for paths it is still
 * realising may go too: it is only a cache, and that env writes it again
 * at its next run. */
void cli_env_cache_prune(cli *c, plan_store *store, bool dry_run, size_t *removed)
{
    *removed = 0;
    char *dir = plan_path_join(c->root, "var/cache/env");
    DIR *d = opendir(dir);
    plan_strlist present;
    plan_strlist_init(&present);
    /* One sorted list of what is registered, searched per entry. */
    if (d && plan_store_list(store, &present) != 0) {
        closedir(d);
        d = NULL;
    }
    plan_ctx_clear_error(c->ctx);
    plan_strlist_sort(&present);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len != 64 + 5 || strcmp(de->d_name + 64, ".lock") != 0)
            continue;
        char *file = plan_path_join(dir, de->d_name);
        plan_lock *lock = NULL;
        bool stale = plan_lock_read(c->ctx, file, &lock) != 0;
        for (size_t i = 0; !stale && i < lock->n; i++) {
            const char *p = lock->packages[i].path;
            stale = !p || !plan_strlist_contains_sorted(&present, p);
        }
        plan_ctx_clear_error(c->ctx);
        if (stale && (dry_run || unlink(file) == 0))
            (*removed)++;
        plan_lock_free(lock);
        free(file);
    }
    if (d)
        closedir(d);
    plan_strlist_release(&present);
    free(dir);
}

/* Recipe repositories and registries; neither is an error. */
static int open_sources(cli *c, const plan_strlist *dirs, bool update, cli_sources *src)
{
    if (cli_sources_open(c, dirs, update ? UPDATE_STALE : UPDATE_NEVER, src)) {
        cli_sources_close(src);
        return cli_fail(c);
    }
    if (!src->repo && !src->reg) {
        char *cfg = cli_config_file(c);
        int rc = cli_error(c, "no recipe repositories and no registries: pass --recipes DIR, "
                              "add 'recipes:' to '%s', or 'plan registry add'", cfg);
        free(cfg);
        cli_sources_close(src);
        return rc;
    }
    return EXIT_OK;
}

static int realise(cli *c, plan_store *store, plan_lock *lock, cli_sources *src, bool frozen)
{
    if (cli_sources_realise_published(c, src, store, lock, frozen))
        return EXIT_FAILURE_;
    plan_build_opts bo;
    cli_build_opts_init(c, &bo, src->repo);
    bo.offline = frozen; /* --frozen never touches the network */
    int rc = plan_realise_lock(store, lock, src->repo, &bo, frozen) ? cli_fail(c) : EXIT_OK;
    cli_build_opts_release(&bo);
    return rc;
}

/* Store paths named directly join the lock as they are. */
static int add_store_paths(cli *c, plan_store *store, const cli_env_request *a, plan_lock *lock)
{
    for (size_t i = 0; i < a->paths.len; i++) {
        plan_path_info *info = NULL;
        if (plan_store_path_info(store, a->paths.items[i], &info) ||
            plan_store_hold(store, info->basename)) {
            plan_path_info_free(info);
            return cli_fail(c);
        }
        if (plan_lock_find(lock, info->name)) {
            int rc = cli_error(c, "'%s' is named twice (as a plan and as '%s'): name it once",
                               info->name, a->paths.items[i]);
            plan_path_info_free(info);
            return rc;
        }
        plan_lock_package *p = plan_lock_add(lock, info->name, info->version);
        p->path = plan_xstrdup(info->basename);
        plan_strlist_add(&lock->request_names, info->name);
        plan_strlist_add(&lock->request_ranges, info->version);
        plan_path_info_free(info);
    }
    return EXIT_OK;
}

/* plan env NAME...: the requests against the recipe repositories. */
int cli_env_lock_requests(cli *c, plan_store *store, const cli_env_request *a, plan_lock **out)
{
    if (!a->names.len) {
        plan_lock *lock = plan_lock_new();
        int rc = add_store_paths(c, store, a, lock);
        if (rc) {
            plan_lock_free(lock);
            return rc;
        }
        *out = lock;
        return EXIT_OK;
    }
    plan_strlist dirs, parts;
    plan_strlist_init(&dirs);
    plan_strlist_init(&parts);
    for (size_t i = 0; i < a->recipes.len; i++)
        plan_strlist_take(&dirs, plan_path_absolute(a->recipes.items[i]));
    int rc = dirs.len ? EXIT_OK : cli_config_recipes(c, &dirs);
    char fp[PLAN_HASH_TEXT_LEN + 1], key[PLAN_HASH_TEXT_LEN + 1];
    plan_recipe_repo_fingerprint(c->ctx, (const char *const *)dirs.items, dirs.len, fp);
    for (size_t i = 0; i < a->names.len; i++) {
        plan_strlist_add(&parts, a->names.items[i]);
        plan_strlist_add(&parts, a->ranges.items[i]);
    }
    for (size_t i = 0; i < dirs.len; i++)
        plan_strlist_add(&parts, dirs.items[i]);
    cache_key(store, "requests", &parts, fp, key);
    plan_lock *lock = rc ? NULL : cache_lookup(c, store, key);
    cli_sources src = {0};
    if (!rc && !lock && !(rc = open_sources(c, &dirs, true, &src))) {
        if (cli_resolve(c, &src, &a->names, &a->ranges, NULL, NULL, NULL, "the requested plans",
                        &lock))
            rc = cli_fail(c);
        else if (!(rc = realise(c, store, lock, &src, false)))
            cache_store(c, key, lock);
        cli_sources_close(&src);
    }
    plan_strlist_release(&dirs);
    plan_strlist_release(&parts);
    if (!rc)
        rc = add_store_paths(c, store, a, lock);
    if (rc) {
        plan_lock_free(lock);
        return rc;
    }
    *out = lock;
    return EXIT_OK;
}

/* Do the lock's requests say what plan.yaml says (same names, same range
 * texts)?  The order of plan.yaml does not matter. */
static bool same_requests(const plan_project *pr, const plan_lock *lock)
{
    if (pr->n_packages != lock->request_names.len)
        return false;
    for (size_t i = 0; i < pr->n_packages; i++) {
        bool found = false;
        for (size_t k = 0; k < lock->request_names.len && !found; k++)
            found = !strcmp(lock->request_names.items[k], pr->packages[i].name) &&
                    !strcmp(lock->request_ranges.items[k], pr->packages[i].range);
        if (!found)
            return false;
    }
    return true;
}

/* Why a lock's recipes no longer match it (caller frees), or NULL when
 * every locked recipe file still has the locked hash. */
static char *recipe_problem(cli *c, const plan_project *pr, const plan_lock *lock)
{
    char *why = NULL;
    for (size_t i = 0; i < lock->n && !why; i++) {
        const plan_lock_package *p = &lock->packages[i];
        if (p->source && !strncmp(p->source, "registry:", 9))
            continue; /* identified by its signed index entry and store path */
        if (!p->recipe || !p->recipe_hash) {
            why = plan_xasprintf("%s %s has no recipe in the lock", p->name, p->version);
            break;
        }
        char *file = p->recipe[0] == '/' ? plan_xstrdup(p->recipe)
                                         : plan_path_join(pr->dir, p->recipe);
        struct stat st;
        if (stat(file, &st) != 0) {
            why = plan_xasprintf("the locked recipe '%s' of %s %s is missing", p->recipe,
                                 p->name, p->version);
        } else {
            char *h = plan_recipe_file_hash(c->ctx, file);
            if (!h || strcmp(h, p->recipe_hash) != 0)
                why = plan_xasprintf("the recipe '%s' of %s %s changed since it was locked",
                                     p->recipe, p->name, p->version);
            free(h);
        }
        free(file);
    }
    plan_ctx_clear_error(c->ctx);
    return why;
}

static int read_text(const char *file, char **out)
{
    plan_buf b;
    plan_buf_init(&b);
    int r = plan_fs_read_file(file, 64u << 20, &b);
    *out = r ? NULL : plan_buf_detach(&b);
    plan_buf_release(&b);
    return r;
}

/* plan env with no names: plan.yaml and its plan.lock. */
int cli_env_lock_project(cli *c, plan_store *store, const cli_env_request *a,
                         plan_project **pr_out, plan_lock **out)
{
    const char *file = a->file ? a->file : "plan.yaml";
    plan_project *pr = NULL;
    if (plan_project_load(c->ctx, file, &pr)) {
        if (!a->file && plan_ctx_error_code(c->ctx) == PLAN_ERR_NOT_FOUND) {
            plan_ctx_clear_error(c->ctx);
            return cli_error(c, "no plan.yaml in this folder and no plans named: run 'plan env "
                                "NAME... -- CMD', or write a plan.yaml (see 'plan help env')");
        }
        return cli_fail(c);
    }
    *pr_out = pr;
    char *lock_file = cli_lock_path(file);
    char *yaml_text = NULL, *lock_text = NULL;
    read_text(file, &yaml_text);
    int lr = read_text(lock_file, &lock_text);
    int rc = EXIT_OK;
    plan_lock *lock = NULL;
    char fp[PLAN_HASH_TEXT_LEN + 1], key[PLAN_HASH_TEXT_LEN + 1];
    plan_recipe_repo_fingerprint(c->ctx, (const char *const *)pr->recipes.items, pr->recipes.len,
                                 fp);
    plan_strlist parts;
    plan_strlist_init(&parts);
    plan_strlist_add(&parts, pr->dir);
    plan_strlist_add(&parts, yaml_text ? yaml_text : "");
    plan_strlist_add(&parts, lock_text ? lock_text : "");
    cache_key(store, a->frozen ? "frozen" : "project", &parts, fp, key);
    plan_strlist_release(&parts);

    if (a->frozen && lr) {
        rc = cli_error(c, "--frozen needs '%s', which %s: run 'plan lock' and commit it",
                       lock_file, lr == -ENOENT ? "does not exist" : "cannot be read");
        goto out;
    }
    if ((lock = cache_lookup(c, store, key)) != NULL)
        goto out; /* re-entry: nothing to resolve, nothing to build */

    plan_lock *locked = NULL;
    if (!lr && plan_lock_read(c->ctx, lock_file, &locked) != 0) {
        if (a->frozen) {
            rc = cli_fail(c);
            goto out;
        }
        plan_warn(c->ctx, "ignoring %s: %s", lock_file, plan_ctx_error(c->ctx));
        plan_ctx_clear_error(c->ctx);
    }
    bool same = locked && same_requests(pr, locked);
    char *problem = same ? recipe_problem(c, pr, locked) : NULL;
    bool fresh = same && !problem;
    if (a->frozen && !fresh) {
        rc = cli_error(c, "'%s' is stale: %s; run 'plan lock' and commit the result "
                          "(--frozen never resolves)",
                       lock_file, problem ? problem
                                          : "its requests differ from the packages of plan.yaml");
        free(problem);
        plan_lock_free(locked);
        goto out;
    }
    free(problem);
    if (fresh && plan_lock_present(store, locked)) {
        lock = locked;
    } else {
        cli_sources src = {0};
        /* --frozen never resolves and never touches the network: the
         * registries' caches as they are. */
        if (!(rc = open_sources(c, &pr->recipes, !a->frozen, &src))) {
            if (fresh) {
                lock = locked;
                locked = NULL;
            } else if (cli_resolve_project_in(c, &src, pr, locked, &lock)) {
                rc = cli_fail(c);
            }
            if (!rc)
                rc = realise(c, store, lock, &src, a->frozen);
            if (!rc && !fresh) {
                /* Not frozen and the lock was missing or stale: write the
                 * new one, as 'plan lock' would. */
                if (plan_lock_write(c->ctx, lock_file, lock))
                    rc = cli_fail(c);
                else if (!c->quiet)
                    fprintf(stderr, "plan: wrote %s\n", lock_file);
            }
        }
        cli_sources_close(&src);
        plan_lock_free(locked);
    }
    if (!rc && lock) {
        /* The lock on disk may have just been rewritten: key the cache by
         * what the next run will read. */
        free(lock_text);
        lock_text = NULL;
        read_text(lock_file, &lock_text);
        plan_strlist_init(&parts);
        plan_strlist_add(&parts, pr->dir);
        plan_strlist_add(&parts, yaml_text ? yaml_text : "");
        plan_strlist_add(&parts, lock_text ? lock_text : "");
        cache_key(store, a->frozen ? "frozen" : "project", &parts, fp, key);
        plan_strlist_release(&parts);
        cache_store(c, key, lock);
    }
out:
    free(yaml_text);
    free(lock_text);
    free(lock_file);
    if (rc) {
        plan_lock_free(lock);
        return rc;
    }
    *out = lock;
    return EXIT_OK;
}

/* ---------- the run root ---------- */

static const char *const pure_keep[] = {"HOME", "USER", "LOGNAME", "TERM", "LANG", "TZ",
                                        "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR",
                                        "COLORTERM", "SHELL", NULL};

static bool kept_in_pure(const char *entry)
{
    if (!strncmp(entry, "LC_", 3))
        return true;
    for (size_t i = 0; pure_keep[i]; i++) {
        size_t n = strlen(pure_keep[i]);
        if (!strncmp(entry, pure_keep[i], n) && entry[n] == '=')
            return true;
    }
    return false;
}

void cli_env_set(plan_strlist *env, const char *name, const char *value)
{
    size_t n = strlen(name);
    char *entry = plan_xasprintf("%s=%s", name, value);
    for (size_t i = 0; i < env->len; i++)
        if (!strncmp(env->items[i], name, n) && env->items[i][n] == '=') {
            free(env->items[i]);
            env->items[i] = entry;
            return;
        }
    plan_strlist_take(env, entry);
}

int cli_envroot_open(cli *c, plan_store *store, const cli_env_request *a, const plan_lock *lock,
                     const plan_project *pr, cli_envroot *out)
{
    memset(out, 0, sizeof(*out));
    plan_strlist_init(&out->env);
    size_t n = lock->n;
    plan_farm_plan *plans = plan_xcalloc(n + 1, sizeof(*plans));
    char **paths = plan_xcalloc(n + 1, sizeof(char *));
    /* Requested plans first, in the order asked, so prefer-first means
     * what the user wrote; dependencies after them. */
    size_t k = 0;
    /* The order the user wrote (the command line, or plan.yaml), which a
     * lock does not keep (its requests are sorted). */
    plan_strlist order;
    plan_strlist_init(&order);
    for (size_t i = 0; pr && i < pr->n_packages; i++)
        plan_strlist_add(&order, pr->packages[i].name);
    for (size_t i = 0; !pr && i < a->names.len; i++)
        plan_strlist_add(&order, a->names.items[i]);
    for (size_t i = 0; i < lock->request_names.len; i++)
        plan_strlist_add(&order, lock->request_names.items[i]);
    /* Each package once, however often its name was asked for. */
    size_t *at = plan_xcalloc(n ? n : 1, sizeof(size_t));
    plan_lock_request_order(lock, &order, at);
    for (size_t i = 0; i < n; i++) {
        const plan_lock_package *p = &lock->packages[at[i]];
        paths[k] = plan_path_join(plan_store_dir(store), p->path);
        plans[k] = (plan_farm_plan){p->name, p->version, paths[k]};
        k++;
    }
    free(at);
    plan_strlist_release(&order);
    plan_strlist prefer;
    plan_strlist_init(&prefer);
    for (size_t i = 0; i < a->prefer.len; i++)
        plan_strlist_add(&prefer, a->prefer.items[i]);
    /* plan.yaml's preferences apply to the plans present; --prefer must
     * name one (a typo is an error). */
    for (size_t i = 0; pr && i < pr->prefer.len; i++)
        if (plan_lock_find(lock, pr->prefer.items[i]))
            plan_strlist_add(&prefer, pr->prefer.items[i]);
    plan_farm_opts fo = {.prefer = (const char *const *)prefer.items, .n_prefer = prefer.len,
                         .choose_paths = (const char *const *)a->choose_paths.items,
                         .choose_names = (const char *const *)a->choose_names.items,
                         .n_choose = a->choose_paths.len, .store = store};
    if (a->strategy)
        plan_collide_parse(a->strategy, &fo.strategy);
    char *run_dir = cli_run_dir(c);
    plan_env_plan ep = {0};
    int rc = EXIT_OK;
    /* Notes for 'plan ps'. */
    for (size_t i = 0; i < n; i++) {
        char *label = plan_xasprintf("%s@%s", plans[i].name, plans[i].version);
        plan_store_session_note(store, "plan", label);
        free(label);
    }
    plan_ctx_clear_error(c->ctx);
    if (plan_store_runroot_new(store, run_dir, &out->rr)) {
        rc = cli_fail(c);
        goto out;
    }
    out->farm = plan_path_join(plan_runroot_path(out->rr), "env");
    if (plan_farm_build(c->ctx, plans, n, out->farm, &fo, NULL) ||
        plan_env_compose(c->ctx, store, (const char *const *)paths, n, out->farm, &ep)) {
        rc = cli_fail(c);
        goto out;
    }
    plan_strlist *env = &out->env;
    for (char **e = environ; *e; e++)
        if (!a->pure || kept_in_pure(*e))
            plan_strlist_add(env, *e);
    if (a->pure)
        cli_env_set(env, "PATH", "");
    plan_env_apply(&ep, env);
    for (size_t i = 0; pr && i < pr->env.len; i++) {
        char *eq = strchr(pr->env.items[i], '=');
        char *name = plan_xstrndup(pr->env.items[i], (size_t)(eq - pr->env.items[i]));
        cli_env_set(env, name, eq + 1);
        free(name);
    }
    cli_env_set(env, "PLAN_ENV", out->farm);
    cli_env_set(env, "PLAN_RUN_ROOT", plan_runroot_path(out->rr));
    if (c->verbose)
        fprintf(stderr, "plan: run root %s (%zu plan%s)\n", plan_runroot_path(out->rr), n,
                n == 1 ? "" : "s");
out:
    if (rc)
        cli_envroot_close(out, false);
    plan_env_plan_release(&ep);
    plan_strlist_release(&prefer);
    free(run_dir);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    free(plans);
    return rc;
}

void cli_envroot_close(cli_envroot *e, bool keep)
{
    if (e->rr && keep) {
        fprintf(stderr, "plan: kept the run root %s; remove it yourself when done (it is no "
                        "longer a gc root: 'plan gc' may collect the plans its links point "
                        "to)\n", plan_runroot_path(e->rr));
        plan_runroot_forget(e->rr);
    } else {
        plan_store_runroot_remove(e->rr);
    }
    e->rr = NULL;
    plan_strlist_release(&e->env);
    free(e->farm);
    e->farm = NULL;
}

/* ---------- the command ---------- */

/* In the child: fail with what went wrong, before exec. */
static void child_fail(const char *what, const char *detail) __attribute__((noreturn));
static void child_fail(const char *what, const char *detail)
{
    fprintf(stderr, "plan: %s: %s\n", what, detail);
    _exit(126);
}

static void child_exec(const cli_child *ch) __attribute__((noreturn));
static void child_exec(const cli_child *ch)
{
    cli_child_signals_default();
    if (ch->out_fd >= 0 && dup2(ch->out_fd, 1) < 0)
        child_fail("cannot redirect standard output", strerror(errno));
    if (ch->err_fd >= 0 && dup2(ch->err_fd, 2) < 0)
        child_fail("cannot redirect standard error", strerror(errno));
    /* The session's lock goes with the child: while it (or anything that
     * keeps the descriptor) runs, the run root and its plans are alive,
     * even if plan itself is killed. */
    int lock_fd = plan_store_session_fd(ch->store);
    if (lock_fd >= 0) {
        int fl = fcntl(lock_fd, F_GETFD);
        if (fl >= 0)
            fcntl(lock_fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
    char err[512];
    if (ch->limits && plan_limits_join(ch->limits, err, sizeof(err)))
        child_fail("limits", err);
    if (ch->isolation && plan_isolation_enter(ch->isolation, err, sizeof(err)))
        child_fail("--isolate", err);
    if (ch->cwd && chdir(ch->cwd) != 0)
        child_fail(ch->cwd, strerror(errno));
    /* Last, so that nothing of plan's own runs under a small RLIMIT_DATA. */
    if (ch->limits && plan_limits_apply(ch->limits, err, sizeof(err)))
        child_fail("limits", err);
    environ = ch->env->items;
    execvp(ch->argv[0], ch->argv);
    int e = errno;
    fprintf(stderr, "plan: cannot run '%s': %s%s\n", ch->argv[0], strerror(e),
            e == ENOENT ? " (it is not on the environment's PATH)" : "");
    _exit(e == ENOENT ? 127 : 126);
}

pid_t cli_child_start(cli *c, const cli_child *ch)
{
    plan_strlist_take(ch->env, NULL); /* NULL-terminated for execve */
    ch->env->len--;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cli_error(c, "cannot start '%s': %s", ch->argv[0], strerror(errno));
        return -1;
    }
    if (pid == 0)
        child_exec(ch);
    return pid;
}

int cli_exit_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

int cli_child_run(cli *c, const cli_child *ch)
{
    cli_forwarding fw;
    cli_forward_begin(&fw);
    pid_t pid = cli_child_start(c, ch);
    if (pid < 0) {
        cli_forward_end(&fw);
        return EXIT_FAILURE_;
    }
    cli_forward_to(pid);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    cli_forward_end(&fw);
    return cli_exit_status(status);
}

/* ---------- --limit and --isolate ---------- */

void cli_confine_init(cli_confine *k)
{
    memset(k, 0, sizeof(*k));
    plan_strlist_init(&k->keep);
}

bool cli_confine_option(cli *c, const command *cmd, cli_confine *k, int opt, const char *arg,
                        int *rc)
{
    *rc = EXIT_OK;
    if (opt == 'I')
        k->isolate = true;
    else if (opt == 'N')
        k->no_network = true;
    else if (opt != 'L')
        return false;
    else if (plan_limits_parse(c->ctx, &k->limits, arg)) {
        char *msg = plan_xstrdup(plan_ctx_error(c->ctx));
        plan_ctx_clear_error(c->ctx);
        *rc = cli_usage(c, cmd, "--limit %s: %s", arg, msg);
        free(msg);
    }
    return true;
}

int cli_confine_check(cli *c, const command *cmd, const cli_confine *k)
{
    if (k->no_network && !k->isolate)
        return cli_usage(c, cmd, "--no-network works inside --isolate: add --isolate");
    return EXIT_OK;
}

int cli_confine_prepare(cli *c, plan_store *store, cli_confine *k, const char *name,
                        const char *const *keep, size_t n_keep)
{
    if (k->isolate) {
        if (plan_isolation_check(c->ctx, k->no_network))
            return cli_fail(c);
        plan_strlist_release(&k->keep);
        plan_strlist_init(&k->keep);
        for (size_t i = 0; i < n_keep; i++)
            if (keep[i])
                plan_strlist_add(&k->keep, keep[i]);
        k->iso = (plan_isolation){.no_network = k->no_network,
                                  .store_dir = plan_store_dir(store),
                                  .keep = (const char *const *)k->keep.items,
                                  .n_keep = k->keep.len};
    }
    if (!plan_limits_any(&k->limits))
        return EXIT_OK;
    if (plan_limits_prepare(c->ctx, &k->limits, name, &k->setup))
        return cli_fail(c);
    if (!c->quiet && !k->reported)
        fprintf(stderr, "plan: limits: %s\n", plan_limits_report(k->setup));
    k->reported = true;
    return EXIT_OK;
}

void cli_confine_child(const cli_confine *k, cli_child *ch)
{
    ch->limits = k->setup;
    ch->isolation = k->isolate ? &k->iso : NULL;
}

void cli_confine_finish(cli_confine *k)
{
    plan_limits_setup_free(k->setup);
    k->setup = NULL;
    plan_strlist_release(&k->keep);
    plan_strlist_init(&k->keep);
}
