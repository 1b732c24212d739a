/* plan env [NAME[@RANGE]...] [-f plan.yaml] [--frozen] [--pure] [--keep] [-- CMD ARGS]
 *
 * Resolve (or take the lock), realise, build the farm in a fresh run root,
 * run the command there with the composed environment, remove the run root.
 * Re-entry: the realised lock is cached under var/cache/env, keyed by what
 * decides it (the requests or plan.yaml and plan.lock, the recipes'
 * fingerprint, the store); a hit whose paths are all present resolves and
 * builds nothing. */
#include "realise.h"
#include "project.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

typedef struct env_args {
    plan_strlist names, ranges;    /* requests on the command line */
    plan_strlist paths;            /* store paths on the command line */
    plan_strlist recipes, prefer, choose_paths, choose_names;
    const char *file;              /* -f */
    const char *strategy;
    bool frozen, pure, keep;
    char **cmd;                    /* after --, or NULL for $SHELL */
} env_args;

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
    if (plan_fs_mkdirs(dir, 0755) == 0 && plan_lock_write(c->ctx, file, lock) != 0)
        plan_ctx_clear_error(c->ctx);
    free(dir);
    free(file);
}

/* Recipe repositories and registries; neither is an error. */
static int open_sources(cli *c, const plan_strlist *dirs, bool update, cli_sources *src)
{
    if (cli_sources_open(c, dirs, update, src)) {
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
static int add_store_paths(cli *c, plan_store *store, const plan_strlist *paths, plan_lock *lock)
{
    for (size_t i = 0; i < paths->len; i++) {
        plan_path_info *info = NULL;
        if (plan_store_path_info(store, paths->items[i], &info) ||
            plan_store_hold(store, info->basename)) {
            plan_path_info_free(info);
            return cli_fail(c);
        }
        if (plan_lock_find(lock, info->name)) {
            int rc = cli_error(c, "'%s' is named twice (as a plan and as '%s'): name it once",
                               info->name, paths->items[i]);
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

/* plan env NAME...: the requests against the recipe repositories (plan
 * merge resolves its plans the same way). */
int cli_lock_requests(cli *c, plan_store *store, const cli_requests *a, plan_lock **out)
{
    if (!a->names->len) {
        plan_lock *lock = plan_lock_new();
        int rc = add_store_paths(c, store, a->paths, lock);
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
    for (size_t i = 0; i < a->recipes->len; i++)
        plan_strlist_take(&dirs, plan_path_absolute(a->recipes->items[i]));
    int rc = dirs.len ? EXIT_OK : cli_config_recipes(c, &dirs);
    char fp[PLAN_HASH_TEXT_LEN + 1], key[PLAN_HASH_TEXT_LEN + 1];
    plan_recipe_repo_fingerprint(c->ctx, (const char *const *)dirs.items, dirs.len, fp);
    for (size_t i = 0; i < a->names->len; i++) {
        plan_strlist_add(&parts, a->names->items[i]);
        plan_strlist_add(&parts, a->ranges->items[i]);
    }
    for (size_t i = 0; i < dirs.len; i++)
        plan_strlist_add(&parts, dirs.items[i]);
    cache_key(store, "requests", &parts, fp, key);
    plan_lock *lock = rc ? NULL : cache_lookup(c, store, key);
    cli_sources src = {0};
    if (!rc && !lock && !(rc = open_sources(c, &dirs, true, &src))) {
        if (cli_resolve(c, &src, a->names, a->ranges, NULL, NULL, NULL, "the requested plans",
                        &lock))
            rc = cli_fail(c);
        else if (!(rc = realise(c, store, lock, &src, false)))
            cache_store(c, key, lock);
        cli_sources_close(&src);
    }
    plan_strlist_release(&dirs);
    plan_strlist_release(&parts);
    if (!rc)
        rc = add_store_paths(c, store, a->paths, lock);
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
static int lock_for_project(cli *c, plan_store *store, const env_args *a, plan_project **pr_out,
                            plan_lock **out)
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
            } else if (cli_resolve_project(c, pr, locked, &lock)) {
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

/* ---------- running the command ---------- */

static volatile sig_atomic_t child_pid;

/* Forward what was sent to plan itself (kill, a supervisor); signals from
 * the terminal reach the child directly, as it shares our process group. */
static void forward(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (child_pid > 0 && si && si->si_code <= 0)
        kill((pid_t)child_pid, sig);
}

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

static void set_var(plan_strlist *env, const char *name, const char *value)
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

static int run_child(cli *c, plan_store *store, char **cmd, plan_strlist *env)
{
    plan_strlist_take(env, NULL); /* NULL-terminated for execve */
    env->len--;
    char *shell_argv[2] = {NULL, NULL};
    if (!cmd) {
        const char *sh = getenv("SHELL");
        shell_argv[0] = (char *)(sh && *sh ? sh : "/bin/sh");
        cmd = shell_argv;
    }
    struct sigaction sa, old_int, old_term, old_hup, old_quit;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = forward;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    sigaction(SIGQUIT, &sa, &old_quit);
    fflush(NULL);
    int lock_fd = plan_store_session_fd(store);
    pid_t pid = fork();
    if (pid < 0) {
        int rc = cli_error(c, "cannot start '%s': %s", cmd[0], strerror(errno));
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        return rc;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGQUIT, SIG_DFL);
        /* The session's lock goes with the child: while it (or anything
         * that keeps the descriptor) runs, the run root and its plans are
         * alive, even if plan itself is killed. */
        if (lock_fd >= 0) {
            int fl = fcntl(lock_fd, F_GETFD);
            if (fl >= 0)
                fcntl(lock_fd, F_SETFD, fl & ~FD_CLOEXEC);
        }
        environ = env->items;
        execvp(cmd[0], cmd);
        int e = errno;
        fprintf(stderr, "plan: cannot run '%s': %s%s\n", cmd[0], strerror(e),
                e == ENOENT ? " (it is not on the environment's PATH)" : "");
        _exit(e == ENOENT ? 127 : 126);
    }
    child_pid = pid;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    child_pid = 0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

static int env_run(cli *c, plan_store *store, const env_args *a, plan_lock *lock,
                   const plan_project *pr)
{
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
        if (!plan_strlist_contains(&order, lock->request_names.items[i]))
            plan_strlist_add(&order, lock->request_names.items[i]);
    for (size_t r = 0; r <= order.len; r++)
        for (size_t i = 0; i < n; i++) {
            const plan_lock_package *p = &lock->packages[i];
            /* Round r < requests: the r-th request; the last round: every
             * package nobody asked for by name. */
            bool take = r < order.len ? !strcmp(p->name, order.items[r])
                                      : !plan_strlist_contains(&order, p->name);
            if (!take)
                continue;
            paths[k] = plan_path_join(plan_store_dir(store), p->path);
            plans[k] = (plan_farm_plan){p->name, p->version, paths[k]};
            k++;
        }
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
                         .n_choose = a->choose_paths.len};
    if (a->strategy)
        plan_collide_parse(a->strategy, &fo.strategy);
    plan_runroot *rr = NULL;
    char *run_dir = cli_run_dir(c);
    char *farm = NULL;
    plan_env_plan ep = {0};
    plan_strlist env;
    plan_strlist_init(&env);
    int rc = EXIT_OK;
    /* Notes for 'plan ps'. */
    plan_buf cmdline;
    plan_buf_init(&cmdline);
    for (char **w = a->cmd; w && *w; w++)
        plan_buf_printf(&cmdline, "%s%s", w == a->cmd ? "" : " ", *w);
    plan_store_session_note(store, "command", a->cmd ? cmdline.data : "$SHELL");
    for (size_t i = 0; i < n; i++) {
        char *label = plan_xasprintf("%s@%s", plans[i].name, plans[i].version);
        plan_store_session_note(store, "plan", label);
        free(label);
    }
    plan_buf_release(&cmdline);
    plan_ctx_clear_error(c->ctx);
    if (plan_store_runroot_new(store, run_dir, &rr)) {
        rc = cli_fail(c);
        goto out;
    }
    farm = plan_path_join(plan_runroot_path(rr), "env");
    if (plan_farm_build(c->ctx, plans, n, farm, &fo, NULL) ||
        plan_env_compose(c->ctx, (const char *const *)paths, n, farm, &ep)) {
        rc = cli_fail(c);
        goto out;
    }
    for (char **e = environ; *e; e++)
        if (!a->pure || kept_in_pure(*e))
            plan_strlist_add(&env, *e);
    if (a->pure)
        set_var(&env, "PATH", "");
    plan_env_apply(&ep, &env);
    for (size_t i = 0; pr && i < pr->env.len; i++) {
        char *eq = strchr(pr->env.items[i], '=');
        char *name = plan_xstrndup(pr->env.items[i], (size_t)(eq - pr->env.items[i]));
        set_var(&env, name, eq + 1);
        free(name);
    }
    set_var(&env, "PLAN_ENV", farm);
    set_var(&env, "PLAN_RUN_ROOT", plan_runroot_path(rr));
    if (c->verbose)
        fprintf(stderr, "plan: run root %s (%zu plan%s)\n", plan_runroot_path(rr), n,
                n == 1 ? "" : "s");
    rc = run_child(c, store, a->cmd, &env);
out:
    if (rr && a->keep) {
        fprintf(stderr, "plan: kept the run root %s; remove it yourself when done (it is no "
                        "longer a gc root: 'plan gc' may collect the plans its links point "
                        "to)\n", plan_runroot_path(rr));
        plan_runroot_forget(rr);
    } else {
        plan_store_runroot_remove(rr);
    }
    plan_env_plan_release(&ep);
    plan_strlist_release(&env);
    plan_strlist_release(&prefer);
    free(farm);
    free(run_dir);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    free(plans);
    return rc;
}

int cmd_env(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"frozen", no_argument, NULL, 'F'},
        {"pure", no_argument, NULL, 'P'},
        {"keep", no_argument, NULL, 'k'},
        {"recipes", required_argument, NULL, 'r'},
        {"prefer", required_argument, NULL, 'p'},
        {"strategy", required_argument, NULL, 's'},
        {"choose", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    env_args a = {0};
    plan_strlist *lists[] = {&a.names, &a.ranges, &a.recipes, &a.prefer, &a.choose_paths,
                             &a.choose_names, &a.paths};
    const size_t n_lists = sizeof(lists) / sizeof(lists[0]);
    for (size_t i = 0; i < n_lists; i++)
        plan_strlist_init(lists[i]);
    int rc = EXIT_OK, o;
    optind = 0;
    opterr = 0;
    /* '+': stop at the first non-option, so that everything after '--' (or
     * after the names) is left alone. */
    while (rc == EXIT_OK && (o = getopt_long(argc, argv, "+f:", opts, NULL)) != -1) {
        switch (o) {
        case 'f': a.file = optarg; break;
        case 'F': a.frozen = true; break;
        case 'P': a.pure = true; break;
        case 'k': a.keep = true; break;
        case 'r': plan_strlist_add(&a.recipes, optarg); break;
        case 'p': plan_strlist_add(&a.prefer, optarg); break;
        case 's': {
            plan_collide x;
            if (plan_collide_parse(optarg, &x))
                rc = cli_usage(c, cmd, "--strategy is error, prefer-first or prefer-last, not "
                                       "'%s'", optarg);
            a.strategy = optarg;
            break;
        }
        case 'c': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1])
                rc = cli_usage(c, cmd, "--choose wants PATH=NAME, such as bin/tool=greeter, not "
                                       "'%s'", optarg);
            else {
                plan_strlist_take(&a.choose_paths, plan_xstrndup(optarg, (size_t)(eq - optarg)));
                plan_strlist_add(&a.choose_names, eq + 1);
            }
            break;
        }
        default:
            rc = cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    int i = optind;
    /* getopt consumes a '--' that comes right after the options: the
     * command starts there, with no names. */
    bool dashdash = optind > 1 && !strcmp(argv[optind - 1], "--");
    if (dashdash)
        i = --optind;
    for (; rc == EXIT_OK && i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (argv[i][0] == '-') {
            rc = cli_usage(c, cmd, "options go before the plans: '%s'", argv[i]);
            break;
        }
        if (strchr(argv[i], '/')) {
            plan_strlist_add(&a.paths, argv[i]);
            continue;
        }
        char *name, *range;
        if ((rc = cli_split_request(c, cmd, argv[i], &name, &range)))
            break;
        plan_strlist_take(&a.names, name);
        plan_strlist_take(&a.ranges, range ? range : plan_xstrdup("*"));
    }
    if (rc == EXIT_OK && i < argc) {
        if (i + 1 == argc)
            rc = cli_usage(c, cmd, "nothing after '--': name the command to run");
        else
            a.cmd = &argv[i + 1];
    }
    if (rc == EXIT_OK && (a.names.len || a.paths.len) && (a.file || a.frozen))
        rc = cli_usage(c, cmd, "-f and --frozen use plan.yaml and its lock: name no plans with "
                               "them");
    plan_store *store = NULL;
    plan_lock *lock = NULL;
    plan_project *pr = NULL;
    if (rc == EXIT_OK && cli_open_store(c, &store))
        rc = EXIT_FAILURE_;
    if (rc == EXIT_OK) {
        unsigned reaped = 0;
        if (plan_store_reap_sessions(store, &reaped))
            plan_ctx_clear_error(c->ctx);
        cli_requests rq = {&a.names, &a.ranges, &a.paths, &a.recipes};
        rc = a.names.len || a.paths.len ? cli_lock_requests(c, store, &rq, &lock)
                         : lock_for_project(c, store, &a, &pr, &lock);
    }
    if (rc == EXIT_OK)
        rc = env_run(c, store, &a, lock, pr);
    plan_lock_free(lock);
    plan_project_free(pr);
    plan_store_close(store);
    for (size_t k = 0; k < n_lists; k++)
        plan_strlist_release(lists[k]);
    return rc;
}
