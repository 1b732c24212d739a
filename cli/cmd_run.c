/* plan run NAME[@RANGE]|PATH [--entry NAME] [--restart POLICY] [--max-restarts N]
 *          [--config FILE] [--limit SPEC] [--isolate [--no-network]] [-- ARGS]
 *
 * Run a plan's entry point (from its manifest) in a fresh run root, as
 * plan env runs a command: the same lock, cache, farm, session and
 * signals (envroot.c).  plan itself supervises in the foreground: each
 * attempt gets a fresh run root and its own log, and a restart policy
 * with exponential backoff decides whether another follows.  The record
 * under var/runs/<id> is what plan ps, plan logs and plan stop read
 * (docs/commands/run.md, docs/formats/run.md). */
#include "envroot.h"
#include "runs.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_FIRST 0.5   /* seconds before the first restart */
#define BACKOFF_MAX 30.0    /* the cap of the doubling */
#define STOP_GRACE 10.0     /* SIGTERM to SIGKILL, unless plan stop says otherwise */

typedef enum { RESTART_NO, RESTART_ON_FAILURE, RESTART_ALWAYS } restart_policy;
static const char *const policy_names[] = {"no", "on-failure", "always"};

typedef struct run_args {
    cli_env_request rq;            /* the one plan */
    const char *entry;             /* --entry, else "default" */
    const char *config_file;       /* --config: an override for this run */
    restart_policy restart;
    long max_restarts;
    cli_confine confine;
    char **args;                   /* after -- */
} run_args;

/* What the plan's manifest says about running it. */
typedef struct run_plan {
    char *name, *version, *path;   /* path: the store path */
    char *command;                 /* the entry point's command */
    char *workdir, *state;         /* NULL when not declared */
    json_t *manifest;
} run_plan;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *json_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ---------- the plan and its entry point ---------- */

static int load_plan(cli *c, plan_store *store, run_args *a, const plan_lock *lock,
                     run_plan *rp)
{
    const char *name = a->rq.names.len ? a->rq.names.items[0] : NULL;
    plan_path_info *info = NULL;
    if (!name) {
        if (plan_store_path_info(store, a->rq.paths.items[0], &info))
            return cli_fail(c);
        name = info->name;
    }
    const plan_lock_package *p = plan_lock_find(lock, name);
    if (!p || !p->path) {
        plan_path_info_free(info);
        return cli_error(c, "'%s' is not in the realised lock", name);
    }
    rp->name = plan_xstrdup(p->name);
    rp->version = plan_xstrdup(p->version);
    rp->path = plan_path_join(plan_store_dir(store), p->path);
    plan_path_info_free(info);
    char *file = plan_path_join(rp->path, ".plan/manifest.json");
    json_error_t err;
    rp->manifest = json_load_file(file, 0, &err);
    int rc = EXIT_OK;
    json_t *run = json_object_get(rp->manifest, "run");
    const char *entry = a->entry ? a->entry : "default";
    if (!json_is_object(rp->manifest)) {
        rc = cli_error(c, "'%s' has no readable manifest ('%s'): only plans built from a "
                          "recipe with 'run:' can be run; use 'plan env' for others",
                       rp->path, file);
    } else if (!json_is_object(run) || !json_object_size(run)) {
        rc = cli_error(c, "%s %s declares no entry points (its recipe has no 'run:'); use "
                          "'plan env %s -- CMD' to run a command with it",
                       rp->name, rp->version, rp->name);
    } else if (!json_is_string(json_object_get(run, entry))) {
        plan_buf names;
        plan_buf_init(&names);
        const char *k;
        json_t *v;
        json_object_foreach(run, k, v) plan_buf_printf(&names, "%s%s", names.len ? ", " : "", k);
        rc = cli_error(c, "%s %s has no entry point '%s'; its entry points: %s%s", rp->name,
                       rp->version, entry, names.data,
                       a->entry ? "" : " (name one with --entry)");
        plan_buf_release(&names);
    } else {
        rp->command = plan_xstrdup(json_string_value(json_object_get(run, entry)));
        const char *w = json_str(rp->manifest, "workdir"), *s = json_str(rp->manifest, "state");
        /* The manifest may come from an imported archive: its fields get
         * the recipe's checks again before they name paths. */
        const char *why = w ? plan_recipe_workdir_problem(w) : NULL;
        const char *swhy = s ? plan_recipe_state_problem(s) : NULL;
        if (why || swhy)
            rc = cli_error(c, "the manifest of %s %s declares %s '%s', but it must be %s: the "
                              "plan was not made by plan build, or was changed; refused",
                           rp->name, rp->version, why ? "workdir" : "state", why ? w : s,
                           why ? why : swhy);
        rp->workdir = w && !rc ? plan_xstrdup(w) : NULL;
        rp->state = s && !rc ? plan_xstrdup(s) : NULL;
    }
    free(file);
    return rc;
}

static void run_plan_release(run_plan *rp)
{
    free(rp->name);
    free(rp->version);
    free(rp->path);
    free(rp->command);
    free(rp->workdir);
    free(rp->state);
    json_decref(rp->manifest);
}

/* The manifest's resources are the defaults; --limit wins, key by key. */
static void default_limits(cli *c, const run_plan *rp, plan_limits *l)
{
    json_t *res = json_object_get(rp->manifest, "resources");
    const char *k;
    json_t *v;
    json_object_foreach(res, k, v) {
        int i;
        for (i = 0; i < PLAN_LIMIT_COUNT && strcmp(plan_limit_name(i), k); i++)
            ;
        if (i == PLAN_LIMIT_COUNT || l->set[i] || !json_is_string(v))
            continue;
        if (plan_limits_set(c->ctx, l, k, json_string_value(v), false)) {
            plan_warn(c->ctx, "ignoring the resources of %s: %s", rp->path,
                      plan_ctx_error(c->ctx));
            plan_ctx_clear_error(c->ctx);
        }
    }
}

/* sh -c 'exec CMD "$@"' ENTRY ARGS...: the command as the recipe wrote it
 * (words, quotes and $VARIABLES as sh reads them), its first word taken in
 * the plan when it is a relative path (bin/server). */
static char **entry_argv(const run_plan *rp, const char *entry, char **args)
{
    size_t n = 0;
    while (args && args[n])
        n++;
    char **argv = plan_xcalloc(n + 5, sizeof(char *));
    const char *cmd = rp->command;
    size_t first = strcspn(cmd, " \t");
    bool in_plan = memchr(cmd, '/', first) && cmd[0] != '/';
    argv[0] = plan_xstrdup("/bin/sh");
    argv[1] = plan_xstrdup("-c");
    argv[2] = plan_xasprintf("exec %s%s%s \"$@\"", in_plan ? rp->path : "", in_plan ? "/" : "",
                             cmd);
    argv[3] = plan_xstrdup(entry);
    for (size_t i = 0; i < n; i++)
        argv[4 + i] = plan_xstrdup(args[i]);
    return argv;
}

static void free_argv(char **argv)
{
    for (char **p = argv; p && *p; p++)
        free(*p);
    free(argv);
}

/* ---------- configuration ---------- */

/* The one place where plan run applies the plan's configuration
 * (docs/commands/config.md#in-a-run): the stored values, else the
 * defaults, with the --config override for this run, into config_dir
 * (under the run root) and env.  *version is the configuration version
 * used (0: defaults only). */
static int apply_config(cli *c, plan_store *store, const run_plan *rp, const char *config_dir,
                        const char *override, plan_strlist *env, int64_t *version,
                        bool *overridden)
{
    plan_run_config rc;
    if (plan_config_materialise(store, rp->name, rp->path, config_dir, override, &rc))
        return cli_fail(c);
    for (size_t i = 0; i < rc.env_names.len; i++)
        cli_env_set(env, rc.env_names.items[i], rc.env_values.items[i]);
    *version = rc.version;
    *overridden = rc.overridden;
    plan_run_config_release(&rc);
    return EXIT_OK;
}

/* ---------- one attempt ---------- */

typedef struct attempt {
    long n;
    int status;                    /* plan's exit status for it */
    bool stopped;                  /* a stop was asked for during it */
} attempt;

/* The grace plan stop asked for (<run>/stop), else the default. */
static double stop_grace(const cli_run *r)
{
    char *file = plan_path_join(r->dir, "stop");
    plan_buf b;
    plan_buf_init(&b);
    double g = STOP_GRACE;
    if (plan_fs_read_file(file, 64, &b) == 0 && b.len) {
        char *end;
        double v = strtod(b.data, &end);
        if (end != b.data && v >= 0)
            g = v;
    }
    plan_buf_release(&b);
    free(file);
    return g;
}

static bool stop_asked(const cli_run *r)
{
    char *file = plan_path_join(r->dir, "stop");
    bool yes = access(file, F_OK) == 0;
    free(file);
    return yes;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* a closed terminal does not stop the run */
        p += w;
        n -= (size_t)w;
    }
}

/* plan's own children right now (with plan the subreaper of its runs,
 * whatever a command left behind becomes one): from the parent pid in
 * /proc/N/stat, the one place Linux lists them without CONFIG_PROC_CHILDREN. */
static size_t own_children(pid_t *out, size_t max)
{
    DIR *d = opendir("/proc");
    size_t n = 0;
    struct dirent *de;
    pid_t self = getpid();
    while (d && n < max && (de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 1 || pid == self)
            continue;
        char path[64], stat[512];
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t len = fd >= 0 ? read(fd, stat, sizeof(stat) - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (len <= 0)
            continue;
        stat[len] = '\0';
        /* "pid (comm) state ppid ...": comm may hold anything, ')' too. */
        char *close_paren = strrchr(stat, ')');
        char state;
        long ppid;
        if (close_paren && sscanf(close_paren + 1, " %c %ld", &state, &ppid) == 2 &&
            ppid == self)
            out[n++] = (pid_t)pid;
    }
    if (d)
        closedir(d);
    return n;
}

/* What the command left running when it ended (a daemon it started, a
 * background job): SIGTERM, SIGKILL after the grace, everything reaped, so
 * nothing outlives its run root and the session that protects its plans. */
static unsigned end_leftovers(double grace)
{
    pid_t kids[256];
    size_t n = own_children(kids, 256);
    unsigned ended = (unsigned)n;
    for (size_t i = 0; i < n; i++)
        kill(kids[i], SIGTERM);
    double deadline = now() + grace;
    while (n) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        n = own_children(kids, 256);
        if (n && now() >= deadline)
            for (size_t i = 0; i < n; i++)
                kill(kids[i], SIGKILL);
        if (n) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return ended;
}

/* Pass the child's output through and into the log; wait for it; on a
 * stop, SIGTERM (forwarded or sent here), then SIGKILL after the grace. */
static int supervise(cli_run *r, pid_t pid, int out_r, int err_r, int log_fd, attempt *at)
{
    struct pollfd fds[2] = {{.fd = out_r, .events = POLLIN}, {.fd = err_r, .events = POLLIN}};
    const int to[2] = {1, 2};
    bool exited = false, killed = false;
    double deadline = 0, drain_end = 0;
    int st = 0;
    char buf[65536];
    for (;;) {
        /* A signal sent to plan (plan stop, kill) was forwarded to the
         * command by the handler; one from the terminal reached it
         * directly.  Either way the run is to stop. */
        bool missed;
        int sig = cli_forward_take(&missed);
        if (!exited && sig && !at->stopped) {
            at->stopped = true;
            deadline = now() + stop_grace(r);
            if (missed) /* it came before this attempt's command existed */
                kill(pid, SIGTERM);
        }
        if (!exited && at->stopped && !killed && now() >= deadline) {
            kill(pid, SIGKILL);
            killed = true;
        }
        int ready = poll(fds, 2, exited ? 0 : 100);
        if (ready < 0 && errno == EINTR)
            continue; /* a signal: look at it first */
        for (int i = 0; i < 2 && ready > 0; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fds[i].fd, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                continue;
            }
            write_all(to[i], buf, (size_t)n);
            write_all(log_fd, buf, (size_t)n);
        }
        /* Once it has exited, drain what is there (at least one more
         * look: it may have written after this poll); something it left
         * running may hold the pipes, and is not waited for, nor read
         * for more than a second. */
        if (exited && (ready <= 0 || (fds[0].fd < 0 && fds[1].fd < 0) || now() > drain_end))
            break;
        if (!exited && waitpid(pid, &st, WNOHANG) == pid) {
            exited = true;
            drain_end = now() + 1.0;
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    at->status = cli_exit_status(st);
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

/* The working directory, links resolved, must be in the run root, the
 * state directory or the store: a plan's links never take a run elsewhere. */
static int check_workdir(cli *c, plan_store *store, const char *rr, const char *state_dir,
                         const run_plan *rp, const char *workdir)
{
    char *real = realpath(workdir, NULL);
    const char *within[] = {rr, state_dir, plan_store_dir(store)};
    bool ok = false;
    for (size_t i = 0; real && i < 3 && !ok; i++) {
        char *top = within[i] ? realpath(within[i], NULL) : NULL;
        size_t n = top ? strlen(top) : 0;
        ok = top && !strncmp(real, top, n) && (real[n] == '/' || real[n] == '\0');
        free(top);
    }
    int rc = ok ? EXIT_OK
                : cli_error(c, "the working directory of %s %s ('workdir: %s') leads to '%s', "
                               "outside its run root, state and the store: refused",
                            rp->name, rp->version, rp->workdir ? rp->workdir : ".",
                            real ? real : workdir);
    free(real);
    return rc;
}

/* The run root's layout: tmp/, config/, the state link; the variables. */
static int lay_out(cli *c, plan_store *store, const run_args *a, cli_run *r, const run_plan *rp,
                   const char *state_dir, cli_envroot *er, char **workdir, int64_t *config_version,
                   bool *overridden)
{
    const char *rr = plan_runroot_path(er->rr);
    char *tmp = plan_path_join(rr, "tmp");
    char *config = plan_path_join(rr, "config");
    int rc = EXIT_OK;
    if (mkdir(tmp, 0700) != 0)
        rc = cli_error(c, "cannot create '%s': %s", tmp, strerror(errno));
    if (!rc && state_dir) {
        char *link = plan_path_join(rr, rp->state);
        if (symlink(state_dir, link) != 0)
            rc = cli_error(c, "cannot link '%s' to the state '%s': %s", link, state_dir,
                           strerror(errno));
        free(link);
    }
    if (!rc)
        rc = apply_config(c, store, rp, config, a->config_file, &er->env, config_version,
                          overridden);
    *workdir = rp->workdir && strcmp(rp->workdir, ".") ? plan_path_join(rr, rp->workdir)
                                                       : plan_xstrdup(rr);
    struct stat sb;
    /* What the plans provide (env/...) is only ever entered, never made:
     * a link a plan ships could lead the creation anywhere. */
    bool in_farm = rp->workdir && (!strcmp(rp->workdir, "env") || !strncmp(rp->workdir, "env/", 4));
    if (!rc && stat(*workdir, &sb) != 0 && (in_farm || plan_fs_mkdirs(*workdir, 0755) != 0))
        rc = cli_error(c, "cannot %s the working directory '%s' (the recipe's 'workdir: "
                          "%s'): %s", in_farm ? "enter" : "create", *workdir, rp->workdir,
                       in_farm ? "the plans provide no such directory" : strerror(errno));
    if (!rc)
        rc = check_workdir(c, store, rr, state_dir, rp, *workdir);
    cli_env_set(&er->env, "TMPDIR", tmp);
    /* The logical path: a workdir through the state link stays in the run root. */
    cli_env_set(&er->env, "PWD", *workdir);
    cli_env_set(&er->env, "PLAN_RUN_ID", r->id);
    cli_env_set(&er->env, "PLAN_PLAN", rp->path);
    if (state_dir)
        cli_env_set(&er->env, "PLAN_STATE_DIR", state_dir);
    free(tmp);
    free(config);
    return rc;
}

static json_t *new_attempt(cli_run *r, long n, const char *run_root)
{
    json_t *atts = json_object_get(r->rec, "attempts");
    char *log = plan_xasprintf("attempt-%ld.log", n);
    json_t *o = json_pack("{s:I, s:I, s:s, s:s}", "n", (json_int_t)n, "started",
                          (json_int_t)time(NULL), "log", log, "run_root", run_root);
    free(log);
    json_array_append_new(atts, o);
    return o;
}

static int one_attempt(cli *c, plan_store *store, run_args *a, const plan_lock *lock,
                       const run_plan *rp, const char *state_dir, cli_run *r, attempt *at)
{
    cli_envroot er;
    int rc = cli_envroot_open(c, store, &a->rq, lock, NULL, &er);
    if (rc)
        return rc;
    char *workdir = NULL;
    int64_t config_version = -1;
    bool overridden = false;
    rc = lay_out(c, store, a, r, rp, state_dir, &er, &workdir, &config_version, &overridden);
    char *cg = plan_xasprintf("%s-%ld", r->id, at->n);
    const char *keep[] = {plan_runroot_path(er.rr), state_dir};
    if (!rc)
        rc = cli_confine_prepare(c, store, &a->confine, cg, keep, state_dir ? 2 : 1);
    free(cg);
    json_t *att = NULL;
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, log_fd = -1;
    char *log = cli_run_log_path(r->dir, at->n);
    if (!rc && (pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC)))
        rc = cli_error(c, "cannot make a pipe: %s", strerror(errno));
    if (!rc && (log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        rc = cli_error(c, "cannot create the log '%s': %s", log, strerror(errno));
    if (!rc) {
        json_object_set_new(r->rec, "config_version", json_integer(config_version));
        json_object_set_new(r->rec, "config_override", json_boolean(overridden));
        if (a->confine.setup)
            json_object_set_new(r->rec, "limits",
                                json_string(plan_limits_report(a->confine.setup)));
        char **argv = entry_argv(rp, a->entry ? a->entry : "default", a->args);
        cli_child ch = {.argv = argv, .env = &er.env, .cwd = workdir, .out_fd = out_p[1],
                        .err_fd = err_p[1], .store = store};
        cli_confine_child(&a->confine, &ch);
        pid_t pid = cli_child_start(c, &ch);
        close(out_p[1]);
        close(err_p[1]);
        out_p[1] = err_p[1] = -1;
        if (pid < 0) {
            rc = EXIT_FAILURE_;
        } else {
            cli_forward_to(pid);
            att = new_attempt(r, at->n, plan_runroot_path(er.rr));
            json_object_set_new(att, "pid", json_integer(pid));
            json_object_set_new(att, "config_version", json_integer(config_version));
            json_object_set_new(r->rec, "state", json_string("running"));
            cli_run_save(c, r);
            int sig = supervise(r, pid, out_p[0], err_p[0], log_fd, at);
            out_p[0] = err_p[0] = -1;
            unsigned left = end_leftovers(stop_grace(r));
            if (left)
                json_object_set_new(att, "leftovers_ended", json_integer(left));
            cli_forward_to(0);
            json_object_set_new(att, "ended", json_integer(time(NULL)));
            json_object_set_new(att, "status", json_integer(at->status));
            if (sig)
                json_object_set_new(att, "signal", json_integer(sig));
            if (at->stopped)
                json_object_set_new(att, "stopped", json_true());
        }
        free_argv(argv);
    }
    for (int i = 0; i < 2; i++) {
        if (out_p[i] >= 0)
            close(out_p[i]);
        if (err_p[i] >= 0)
            close(err_p[i]);
    }
    if (log_fd >= 0)
        close(log_fd);
    free(log);
    free(workdir);
    cli_confine_finish(&a->confine);
    cli_envroot_close(&er, false);
    return rc;
}

/* ---------- supervision ---------- */

static bool wants_restart(const run_args *a, const attempt *at)
{
    if (at->stopped || a->restart == RESTART_NO)
        return false;
    if (a->restart == RESTART_ON_FAILURE && at->status == 0)
        return false;
    return at->n - 1 < a->max_restarts;
}

/* Sleep for the backoff, or less if a stop comes: true when one came. */
static bool backoff(const cli_run *r, double seconds)
{
    double end = now() + seconds;
    while (now() < end) {
        if (cli_forward_take(NULL) || stop_asked(r))
            return true;
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    return false;
}

static void record_start(cli_run *r, const run_args *a, const run_plan *rp)
{
    json_t *args = json_array();
    for (char **p = a->args; p && *p; p++)
        json_array_append_new(args, json_string(*p));
    json_t *rec = r->rec;
    json_object_set_new(rec, "format", json_string("plan-run-v1"));
    json_object_set_new(rec, "id", json_string(r->id));
    json_object_set_new(rec, "plan", json_string(rp->name));
    json_object_set_new(rec, "version", json_string(rp->version));
    json_object_set_new(rec, "path", json_string(rp->path));
    json_object_set_new(rec, "entry", json_string(a->entry ? a->entry : "default"));
    json_object_set_new(rec, "command", json_string(rp->command));
    json_object_set_new(rec, "args", args);
    json_object_set_new(rec, "restart", json_string(policy_names[a->restart]));
    json_object_set_new(rec, "max_restarts", json_integer(a->max_restarts));
    json_object_set_new(rec, "supervisor_pid", json_integer(getpid()));
    json_object_set_new(rec, "started", json_integer(time(NULL)));
    json_object_set_new(rec, "config_version", json_null());
    json_object_set_new(rec, "isolate", json_boolean(a->confine.isolate));
    json_object_set_new(rec, "no_network", json_boolean(a->confine.no_network));
    json_object_set_new(rec, "attempts", json_array());
    json_object_set_new(rec, "state", json_string("starting"));
}

static int supervise_run(cli *c, plan_store *store, run_args *a, const plan_lock *lock,
                         const run_plan *rp)
{
    char *state_dir = NULL;
    if (rp->state) {
        state_dir = plan_xasprintf("%s/var/state/%s", c->root, rp->name);
        if (plan_fs_mkdirs(state_dir, 0700) != 0) {
            int rc = cli_error(c, "cannot create the state directory '%s': %s", state_dir,
                               strerror(errno));
            free(state_dir);
            return rc;
        }
    }
    /* plan is the supervisor: what a command leaves running becomes its
     * child when the command ends, and is ended with it (end_leftovers). */
    prctl(PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L);
    /* From before the record exists, so that a plan stop that finds it
     * is always taken as a stop. */
    cli_forwarding fw;
    cli_forward_begin(&fw);
    cli_run r;
    int rc = cli_run_create(c, &r);
    if (rc) {
        cli_forward_end(&fw);
        cli_run_close(&r);
        free(state_dir);
        return rc;
    }
    record_start(&r, a, rp);
    cli_run_save(c, &r);
    plan_store_session_note(store, "run", r.id);
    plan_store_session_note(store, "command", rp->command);
    plan_ctx_clear_error(c->ctx);
    if (!c->quiet)
        fprintf(stderr, "plan: run %s: %s %s, entry %s%s\n", r.id, rp->name, rp->version,
                a->entry ? a->entry : "default",
                a->restart == RESTART_NO ? "" : a->restart == RESTART_ALWAYS
                                                    ? " (restart always)"
                                                    : " (restart on failure)");
    /* A terminal that goes away must not kill the supervisor mid-write. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    attempt at = {0};
    double delay = BACKOFF_FIRST;
    for (;;) {
        at.n++;
        at.stopped = false;
        rc = one_attempt(c, store, a, lock, rp, state_dir, &r, &at);
        if (rc) {
            at.status = rc;
            break;
        }
        if (!wants_restart(a, &at))
            break;
        if (!c->quiet)
            fprintf(stderr, "plan: run %s: attempt %ld ended with status %d; restarting in "
                            "%.1fs\n", r.id, at.n, at.status, delay);
        json_object_set_new(r.rec, "state", json_string("restarting"));
        json_object_set_new(r.rec, "next_attempt", json_integer(time(NULL) + (json_int_t)delay));
        cli_run_save(c, &r);
        if (backoff(&r, delay))
            break;
        json_object_del(r.rec, "next_attempt");
        delay = delay * 2 > BACKOFF_MAX ? BACKOFF_MAX : delay * 2;
    }
    cli_forward_end(&fw);
    sigaction(SIGPIPE, &old_pipe, NULL);
    json_object_del(r.rec, "next_attempt");
    json_object_set_new(r.rec, "state", json_string("exited"));
    json_object_set_new(r.rec, "ended", json_integer(time(NULL)));
    json_object_set_new(r.rec, "exit_status", json_integer(at.status));
    cli_run_save(c, &r);
    cli_run_close(&r);
    free(state_dir);
    return at.status;
}

/* ---------- the command line ---------- */

static int parse_restart(const char *s, restart_policy *out)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, policy_names[i])) {
            *out = (restart_policy)i;
            return 0;
        }
    return -1;
}

int cmd_run(cli *c, const command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"entry", required_argument, NULL, 'e'},
        {"config", required_argument, NULL, 'C'},
        {"restart", required_argument, NULL, 'R'},
        {"max-restarts", required_argument, NULL, 'M'},
        {"recipes", required_argument, NULL, 'r'},
        CLI_CONFINE_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    run_args a = {.max_restarts = 5};
    cli_env_request_init(&a.rq);
    cli_confine_init(&a.confine);
    /* Options may stand before or after the plan; everything after the
     * first '--' is the entry point's, untouched. */
    int dd = 1;
    while (dd < argc && strcmp(argv[dd], "--") != 0)
        dd++;
    if (dd < argc)
        a.args = &argv[dd + 1];
    int rc = EXIT_OK, o;
    optind = 0;
    opterr = 0;
    while (rc == EXIT_OK && (o = getopt_long(dd, argv, "e:", opts, NULL)) != -1) {
        char *end;
        if (cli_confine_option(c, cmd, &a.confine, o, optarg, &rc))
            continue;
        switch (o) {
        case 'e': a.entry = optarg; break;
        case 'C': a.config_file = optarg; break;
        case 'R':
            if (parse_restart(optarg, &a.restart))
                rc = cli_usage(c, cmd, "--restart is no, on-failure or always, not '%s'", optarg);
            break;
        case 'M':
            errno = 0;
            a.max_restarts = strtol(optarg, &end, 10);
            if (*end || end == optarg || errno || a.max_restarts < 0 || a.max_restarts > 1000000)
                rc = cli_usage(c, cmd, "--max-restarts wants a number from 0 to 1000000, not "
                                       "'%s'", optarg);
            break;
        case 'r': plan_strlist_add(&a.rq.recipes, optarg); break;
        default:
            rc = cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (rc == EXIT_OK && optind >= dd)
        rc = cli_usage(c, cmd, "name the plan to run: 'plan run NAME' or 'plan run PATH'");
    else if (rc == EXIT_OK && optind + 1 < dd)
        rc = cli_usage(c, cmd, "one plan at a time; arguments for it go after '--': '%s'",
                       argv[optind + 1]);
    if (rc == EXIT_OK) {
        const char *arg = argv[optind];
        if (strchr(arg, '/')) {
            plan_strlist_add(&a.rq.paths, arg);
        } else {
            char *name, *range;
            if (!(rc = cli_split_request(c, cmd, arg, &name, &range))) {
                plan_strlist_take(&a.rq.names, name);
                plan_strlist_take(&a.rq.ranges, range ? range : plan_xstrdup("*"));
            }
        }
    }
    if (rc == EXIT_OK)
        rc = cli_confine_check(c, cmd, &a.confine);
    plan_store *store = NULL;
    plan_lock *lock = NULL;
    run_plan rp = {0};
    if (rc == EXIT_OK && cli_open_store(c, &store))
        rc = EXIT_FAILURE_;
    if (rc == EXIT_OK) {
        unsigned reaped = 0;
        if (plan_store_reap_sessions(store, &reaped))
            plan_ctx_clear_error(c->ctx);
        rc = cli_env_lock_requests(c, store, &a.rq, &lock);
    }
    if (rc == EXIT_OK)
        rc = load_plan(c, store, &a, lock, &rp);
    if (rc == EXIT_OK)
        default_limits(c, &rp, &a.confine.limits);
    if (rc == EXIT_OK && a.confine.isolate && plan_isolation_check(c->ctx, a.confine.no_network))
        rc = cli_fail(c);
    if (rc == EXIT_OK)
        rc = supervise_run(c, store, &a, lock, &rp);
    run_plan_release(&rp);
    plan_lock_free(lock);
    plan_store_close(store);
    cli_env_request_release(&a.rq);
    return rc;
}
