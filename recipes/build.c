/* Building a recipe into a store path (docs/commands/build.md).
 *
 * The steps: build missing dependencies first; compute the recipe hash
 * (the recipe, its sources' hashes and its inputs' store paths) and reuse
 * a known realisation; fetch and verify sources; run the build script in a
 * clean environment and, by default, a sandbox, writing to a placeholder
 * output; scan the output for references; write the manifest; and let the
 * store turn the placeholder into a content-addressed path. */
#include "recipes_int.h"
#include "sandbox.h"
#include "../fetch/fetch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HOST_PATH "/usr/local/bin:/usr/bin:/bin"
#define TAIL_LINES 25

typedef struct input {
    char *name;
    char *path;      /* absolute store path */
    bool runtime;    /* from depends (else build-depends) */
} input;

typedef struct builder {
    plan_store *store;
    plan_ctx *ctx;
    const plan_build_opts *opts;
    const plan_resolution *solution; /* versions for every dependency */
    bool sandbox;                    /* sandboxed for real (requested and available) */
    plan_strlist stack;       /* names being built: cycle detection */
} builder;

static int build_recipe(builder *b, const plan_recipe *r, bool check, plan_build_result *out);

/* ---------- inputs ---------- */

static void inputs_release(input *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(in[i].name);
        free(in[i].path);
    }
    free(in);
}

static int realise_inputs(builder *b, const plan_recipe *r, input **out, size_t *n)
{
    size_t total = r->n_depends + r->n_build_depends;
    input *in = plan_xcalloc(total ? total : 1, sizeof(input));
    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; i < total && !rc; i++) {
        bool runtime = i < r->n_depends;
        const plan_recipe_dep *d = runtime ? &r->depends[i] : &r->build_depends[i - r->n_depends];
        if (!b->opts->repo) {
            rc = plan_fail(b->ctx, PLAN_ERR_NOT_FOUND,
                           "'%s' %s '%s %s', but no recipe repository was given: pass "
                           "--recipes DIR (a folder of recipes)",
                           r->name, runtime ? "depends on" : "build-depends on", d->name,
                           d->range);
            break;
        }
        if (plan_strlist_contains(&b->stack, d->name)) {
            rc = plan_fail(b->ctx, PLAN_ERR_INVALID,
                           "dependency cycle: '%s' needs '%s', which is already being built "
                           "for it; break the cycle in one of the recipes",
                           r->name, d->name);
            break;
        }
        const plan_recipe *dep = NULL;
        /* The solver chose one version per name for the whole graph. */
        for (size_t s = 0; b->solution && s < b->solution->count; s++)
            if (!strcmp(b->solution->packages[s].name, d->name))
                dep = plan_recipe_repo_exact(b->opts->repo, d->name,
                                             b->solution->packages[s].version);
        if (!dep && (rc = plan_recipe_repo_find(b->opts->repo, d->name, d->range, &dep))) {
            plan_fail_wrap(b->ctx, rc, "'%s-%s' %s '%s %s'", r->name, r->version,
                           runtime ? "depends on" : "build-depends on", d->name, d->range);
            break;
        }
        plan_build_result res = {0};
        plan_strlist_init(&res.differences);
        if ((rc = build_recipe(b, dep, false, &res)))
            break;
        in[k].name = plan_xstrdup(d->name);
        in[k].path = res.path;
        in[k].runtime = runtime;
        res.path = NULL;
        k++;
        plan_build_result_release(&res);
    }
    if (rc) {
        inputs_release(in, k);
        return rc;
    }
    *out = in;
    *n = k;
    return 0;
}

/* ---------- the recipe hash ---------- */

static json_t *deps_json(const plan_recipe_dep *d, size_t n, const input *in, size_t nin,
                         bool runtime)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *path = "";
        for (size_t j = 0; j < nin; j++)
            if (in[j].runtime == runtime && !strcmp(in[j].name, d[i].name))
                path = strrchr(in[j].path, '/') + 1;
        json_object_set_new(o, d[i].name,
                            json_pack("{s:s, s:s}", "range", d[i].range, "path", path));
    }
    return o;
}

static json_t *env_json(const plan_recipe *r)
{
    static const char *const ops[] = {"set", "prepend", "append"};
    json_t *a = json_array();
    for (size_t i = 0; i < r->n_env; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "name", r->env[i].name, "op",
                                           ops[r->env[i].op], "value", r->env[i].value));
    return a;
}

static json_t *run_json(const plan_recipe *r)
{
    json_t *o = json_object();
    for (size_t i = 0; i < r->n_run; i++)
        json_object_set_new(o, r->run[i].name, json_string(r->run[i].command));
    return o;
}

static json_t *config_json(const plan_recipe *r)
{
    json_t *o = json_object();
    for (size_t i = 0; i < r->n_config; i++) {
        const plan_recipe_config *c = &r->config[i];
        json_t *k = json_pack("{s:s}", "type", c->type);
        if (c->default_value)
            json_object_set_new(k, "default", json_string(c->default_value));
        if (c->description)
            json_object_set_new(k, "description", json_string(c->description));
        /* Written only when declared, so the manifests (and recipe hashes)
         * of recipes that declare none stay as they were. */
        if (c->allowed.len) {
            json_t *a = json_array();
            for (size_t j = 0; j < c->allowed.len; j++)
                json_array_append_new(a, json_string(c->allowed.items[j]));
            json_object_set_new(k, "allowed", a);
        }
        if (c->env)
            json_object_set_new(k, "env", json_string(c->env));
        if (c->file)
            json_object_set_new(k, "file", json_string(c->file));
        if (c->secret)
            json_object_set_new(k, "secret", json_true());
        json_object_set_new(o, c->key, k);
    }
    return o;
}

static json_t *resources_json(const plan_recipe *r)
{
    json_t *o = json_object();
    const plan_recipe_resources *x = &r->resources;
    const char *names[] = {"cpu", "mem", "nofile", "nproc", "nice"};
    const char *vals[] = {x->cpu, x->mem, x->nofile, x->nproc, x->nice};
    for (size_t i = 0; i < 5; i++)
        if (vals[i])
            json_object_set_new(o, names[i], json_string(vals[i]));
    return o;
}

static void set_opt(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

/* What the plan says about itself: the core of both the manifest and the
 * recipe hash. */
static json_t *describe(const plan_recipe *r, const input *in, size_t nin)
{
    json_t *o = json_pack("{s:s, s:s}", "name", r->name, "version", r->version);
    set_opt(o, "summary", r->summary);
    set_opt(o, "license", r->license);
    set_opt(o, "homepage", r->homepage);
    json_object_set_new(o, "depends", deps_json(r->depends, r->n_depends, in, nin, true));
    json_object_set_new(o, "build_depends",
                        deps_json(r->build_depends, r->n_build_depends, in, nin, false));
    json_object_set_new(o, "env", env_json(r));
    json_object_set_new(o, "run", run_json(r));
    json_object_set_new(o, "config", config_json(r));
    json_object_set_new(o, "resources", resources_json(r));
    /* Only when set, so that recipes without them keep their hashes. */
    set_opt(o, "workdir", r->workdir);
    set_opt(o, "state", r->state);
    return o;
}

static char *recipe_hash(const plan_recipe *r, const input *in, size_t nin, bool sandbox)
{
    json_t *o = describe(r, in, nin);
    json_object_set_new(o, "format", json_string("plan-recipe-hash-v1"));
    json_object_set_new(o, "build", json_string(r->build));
    set_opt(o, "check", r->check);
    json_t *src = json_array();
    /* Where a source comes from does not matter, only what it is. */
    for (size_t i = 0; i < r->n_sources; i++) {
        const plan_recipe_source *s = &r->sources[i];
        /* Only whether the source is a tree matters (its hash is a tree
         * hash then), not whether it is named by path or by URL. */
        bool directory = false;
        if (s->path) {
            char *local = s->path[0] == '/' ? plan_xstrdup(s->path) : plan_path_join(r->dir, s->path);
            struct stat st;
            directory = stat(local, &st) == 0 && S_ISDIR(st.st_mode);
            free(local);
        }
        json_array_append_new(src, json_pack("{s:s, s:s, s:i, s:s, s:b}", "algo", s->algo,
                                             "hash", s->hash, "strip", s->strip_components,
                                             "dest", s->dest ? s->dest : "", "directory",
                                             directory));
    }
    json_object_set_new(o, "sources", src);
    json_object_set_new(o, "sandbox", json_boolean(sandbox));
    json_object_set_new(o, "system", json_string("x86_64-linux"));
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), (const uint8_t *)text, strlen(text), NULL, 0);
    free(text);
    char hex[65];
    plan_hex_encode(h, 32, hex);
    return plan_xasprintf("blake2b:%s", hex);
}

/* ---------- sources ---------- */

static int copy_dir_source(builder *b, const char *from, const char *to,
                           const plan_recipe_source *s, const char *display)
{
    int rc = plan_store_copy_tree(b->store, from, to);
    if (rc)
        return rc;
    /* Verify what was copied, not what was read before. */
    plan_hash h;
    if ((rc = plan_store_hash_tree(b->ctx, to, NULL, 0, &h, NULL)))
        return rc;
    char text[PLAN_HASH_TEXT_LEN + 1];
    plan_hash_format(&h, text);
    if (strcmp(s->algo, "blake2b") != 0 || strcmp(text + 8, s->hash) != 0)
        return plan_fail(b->ctx, PLAN_ERR_CORRUPT,
                         "source directory '%s' has content hash %s, but the recipe declares "
                         "%s:%s; if the change is intended, update the recipe (a directory's "
                         "hash is what 'plan store hash DIR' prints)",
                         display, text, s->algo, s->hash);
    return 0;
}

static int prepare_source(builder *b, const plan_recipe *r, const plan_recipe_source *s,
                          const char *src_dir)
{
    char *dest = s->dest ? plan_path_join(src_dir, s->dest) : plan_xstrdup(src_dir);
    int rc = 0, e = plan_fs_mkdirs(dest, 0755);
    if (e) {
        rc = plan_fail_errno(b->ctx, PLAN_ERR_IO, -e, "cannot create '%s'", dest);
        free(dest);
        return rc;
    }
    char *local = NULL;
    if (s->path)
        local = s->path[0] == '/' ? plan_xstrdup(s->path) : plan_path_join(r->dir, s->path);
    struct stat st;
    if (local && stat(local, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* A directory: copied into a fresh folder, then hashed. */
        char *tmp = plan_path_join(dest, ".plan-source");
        rc = copy_dir_source(b, local, tmp, s, s->path);
        if (!rc) {
            char *cmd_from = tmp;
            /* Move its contents up into dest. */
            DIR *d = opendir(cmd_from);
            struct dirent *de;
            while (!rc && d && (de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                    continue;
                char *a = plan_path_join(cmd_from, de->d_name), *z = plan_path_join(dest, de->d_name);
                if (rename(a, z) != 0)
                    rc = plan_fail_errno(b->ctx, PLAN_ERR_IO, errno, "cannot place '%s'", z);
                free(a);
                free(z);
            }
            if (d)
                closedir(d);
            rmdir(tmp);
        }
        free(tmp);
    } else {
        plan_hash_algo algo;
        plan_hash_algo_parse(s->algo, &algo);
        char *url = local ? plan_xasprintf("file://%s", local) : plan_xstrdup(s->url);
        char *cached = NULL;
        rc = (b->opts->offline ? plan_fetch_source_offline : plan_fetch_source)(
            b->ctx, b->opts->cache_dir, url, algo, s->hash, &cached);
        if (!rc)
            rc = recipe_unpack(b->ctx, cached, dest, s->strip_components, local ? s->path : s->url);
        free(url);
        free(cached);
    }
    free(local);
    free(dest);
    return rc;
}

/* ---------- environment ---------- */

typedef struct envlist {
    plan_strlist items; /* "NAME=value" */
} envlist;

static const char *env_get(envlist *e, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < e->items.len; i++)
        if (!strncmp(e->items.items[i], name, n) && e->items.items[i][n] == '=')
            return e->items.items[i] + n + 1;
    return NULL;
}

static void env_set(envlist *e, const char *name, const char *value)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < e->items.len; i++) {
        if (!strncmp(e->items.items[i], name, n) && e->items.items[i][n] == '=') {
            free(e->items.items[i]);
            e->items.items[i] = plan_xasprintf("%s=%s", name, value);
            return;
        }
    }
    plan_strlist_take(&e->items, plan_xasprintf("%s=%s", name, value));
}

/* Replace "$out" in value by path. */
char *recipe_expand_out(const char *value, const char *path)
{
    plan_buf b;
    plan_buf_init(&b);
    for (const char *p = value; *p;) {
        if (!strncmp(p, "$out", 4) && !(p[4] == '_' || (p[4] >= 'a' && p[4] <= 'z') ||
                                         (p[4] >= 'A' && p[4] <= 'Z') || (p[4] >= '0' && p[4] <= '9'))) {
            plan_buf_adds(&b, path);
            p += 4;
        } else if (!strncmp(p, "${out}", 6)) {
            plan_buf_adds(&b, path);
            p += 6;
        } else {
            plan_buf_addc(&b, *p++);
        }
    }
    return plan_buf_detach(&b);
}

/* Apply a plan's env declarations (from its manifest) for its path. */
static void apply_manifest_env(envlist *e, const char *path)
{
    char *mf = plan_xasprintf("%s/.plan/manifest.json", path);
    json_t *m = json_load_file(mf, 0, NULL);
    free(mf);
    json_t *env = m ? json_object_get(m, "env") : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(env, i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *op = json_string_value(json_object_get(v, "op"));
        const char *value = json_string_value(json_object_get(v, "value"));
        if (!name || !op || !value)
            continue;
        if (!strcmp(op, "set")) {
            char *x = recipe_expand_out(value, path);
            env_set(e, name, x);
            free(x);
            continue;
        }
        char *dir = plan_path_join(path, value);
        const char *old = env_get(e, name);
        char *joined = !old || !*old            ? plan_xstrdup(dir)
                       : !strcmp(op, "prepend") ? plan_xasprintf("%s:%s", dir, old)
                                                : plan_xasprintf("%s:%s", old, dir);
        env_set(e, name, joined);
        free(joined);
        free(dir);
    }
    json_decref(m);
}

static void build_env(builder *b, envlist *e, const input *in, size_t nin, const char *out,
                      const char *src, const char *scratch)
{
    plan_strlist_init(&e->items);
    plan_buf path;
    plan_buf_init(&path);
    for (size_t i = 0; i < nin; i++) {
        char *bin = plan_path_join(in[i].path, "bin");
        struct stat st;
        if (stat(bin, &st) == 0 && S_ISDIR(st.st_mode))
            plan_buf_printf(&path, "%s:", bin);
        free(bin);
    }
    plan_buf_adds(&path, HOST_PATH);
    env_set(e, "PATH", path.data);
    plan_buf_release(&path);
    for (size_t i = 0; i < nin; i++) {
        apply_manifest_env(e, in[i].path);
        plan_buf var;
        plan_buf_init(&var);
        plan_buf_adds(&var, "PLAN_DEP_");
        for (const char *p = in[i].name; *p; p++)
            plan_buf_addc(&var, (*p >= 'a' && *p <= 'z') ? (char)(*p - 32)
                                : ((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) ? *p
                                                                                          : '_');
        env_set(e, var.data, in[i].path);
        plan_buf_release(&var);
    }
    char jobs[16];
    snprintf(jobs, sizeof(jobs), "%u", b->opts->jobs ? b->opts->jobs : plan_cpu_count());
    char *tmp = plan_path_join(scratch, "tmp"), *home = plan_path_join(scratch, "home");
    env_set(e, "out", out);
    env_set(e, "src", src);
    env_set(e, "PLAN_JOBS", jobs);
    env_set(e, "SOURCE_DATE_EPOCH", "1");
    env_set(e, "HOME", home);
    env_set(e, "TMPDIR", tmp);
    env_set(e, "TMP", tmp);
    env_set(e, "TEMP", tmp);
    env_set(e, "LC_ALL", "C");
    env_set(e, "TZ", "UTC");
    env_set(e, "TERM", "dumb");
    env_set(e, "SHELL", "/bin/sh");
    free(tmp);
    free(home);
}

/* ---------- running the build ---------- */

typedef struct tail {
    char *lines[TAIL_LINES];
    size_t next, count;
} tail;

static void tail_push(tail *t, const char *line)
{
    free(t->lines[t->next]);
    t->lines[t->next] = plan_xstrdup(line);
    t->next = (t->next + 1) % TAIL_LINES;
    if (t->count < TAIL_LINES)
        t->count++;
}

static void tail_release(tail *t)
{
    for (size_t i = 0; i < TAIL_LINES; i++)
        free(t->lines[i]);
}

static char *tail_text(const tail *t)
{
    plan_buf b;
    plan_buf_init(&b);
    size_t start = (t->next + TAIL_LINES - t->count) % TAIL_LINES;
    for (size_t i = 0; i < t->count; i++)
        plan_buf_printf(&b, "  | %s\n", t->lines[(start + i) % TAIL_LINES]);
    return plan_buf_detach(&b);
}

static void kill_build(pid_t pid)
{
    kill(-pid, SIGTERM);
    for (int i = 0; i < 20; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
    }
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Run script under the sandbox; output to log (and events).  Returns 0 if
 * it exited 0; the caller reports other outcomes from *status. */
static int run_script(builder *b, const char *label, const char *script, envlist *env,
                      const sandbox_spec *sp, FILE *log, tail *t, int *status, bool *cancelled)
{
    int out_pipe[2], st_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(st_pipe, O_CLOEXEC) != 0)
        return plan_fail_errno(b->ctx, PLAN_ERR_IO, errno, "cannot create a pipe");
    char **envp = plan_xcalloc(env->items.len + 1, sizeof(char *));
    for (size_t i = 0; i < env->items.len; i++)
        envp[i] = env->items.items[i];
    char *argv[] = {"/bin/sh", "-e", "-c", (char *)script, NULL};
    pid_t pid = fork();
    if (pid < 0) {
        free(envp);
        return plan_fail_errno(b->ctx, PLAN_ERR_FAILED, errno, "cannot fork");
    }
    if (pid == 0) {
        setpgid(0, 0);
        /* If plan dies, the build dies with it (and, sandboxed, PID 1 of
         * its namespace and so everything in it). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out_pipe[1], 1);
        dup2(out_pipe[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        int fd = fcntl(st_pipe[1], F_DUPFD, 3); /* without CLOEXEC, for the child */
        sandbox_run(sp, argv, envp, fd);
    }
    setpgid(pid, pid);
    free(envp);
    close(out_pipe[1]);
    close(st_pipe[1]);
    /* The child says whether it entered the sandbox before it runs anything
     * (the pipe closes at exec). */
    char sandbox_state = 0;
    while (read(st_pipe[0], &sandbox_state, 1) < 0 && errno == EINTR)
        ;
    close(st_pipe[0]);
    if (sp->enabled && sandbox_state != 'S') {
        /* The probe said yes, the build said no: do not let a build run
         * that would claim a sandbox it does not have. */
        kill_build(pid);
        close(out_pipe[0]);
        return plan_fail(b->ctx, PLAN_ERR_FAILED,
                         "the sandbox could not be entered for this build; retry, or build "
                         "with --no-sandbox");
    }
    plan_emit_phase(b->ctx, label, 0, false);
    plan_buf line;
    plan_buf_init(&line);
    uint64_t nlines = 0;
    char buf[8192];
    *cancelled = false;
    for (;;) {
        if (b->opts->cancel && *b->opts->cancel) {
            *cancelled = true;
            break;
        }
        struct pollfd pfd = {.fd = out_pipe[0], .events = POLLIN};
        int pr = poll(&pfd, 1, 100);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t n = read(out_pipe[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        fwrite(buf, 1, (size_t)n, log);
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                plan_buf_addc(&line, buf[i]);
                continue;
            }
            tail_push(t, line.data);
            if (b->opts->stream_log) {
                plan_event ev = {.kind = PLAN_EV_LOG, .message = line.data};
                plan_emit(b->ctx, &ev);
            }
            plan_buf_reset(&line);
            plan_emit_progress(b->ctx, label, ++nlines, 0, false);
        }
    }
    if (line.len)
        tail_push(t, line.data);
    plan_buf_release(&line);
    close(out_pipe[0]);
    plan_emit_done(b->ctx, label);
    if (*cancelled) {
        kill_build(pid);
        return PLAN_ERR_FAILED;
    }


    int wst;
    while (waitpid(pid, &wst, 0) < 0) {
        if (errno != EINTR)
            return plan_fail_errno(b->ctx, PLAN_ERR_FAILED, errno, "cannot wait for the build");
        if (b->opts->cancel && *b->opts->cancel) {
            *cancelled = true;
            kill_build(pid);
            return PLAN_ERR_FAILED;
        }
    }
    *status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
    return *status == 0 ? 0 : PLAN_ERR_FAILED;
}

/* ---------- references and manifest ---------- */

static int output_references(builder *b, const char *out, const input *in, size_t nin,
                             plan_strlist *refs)
{
    plan_strlist roots, closure;
    plan_strlist_init(&roots);
    plan_strlist_init(&closure);
    for (size_t i = 0; i < nin; i++)
        plan_strlist_add(&roots, strrchr(in[i].path, '/') + 1);
    int rc = plan_store_closure(b->store, &roots, &closure);
    if (!rc && closure.len) {
        const char **digests = plan_xcalloc(closure.len, sizeof(char *));
        char (*d)[PLAN_DIGEST_CHARS + 1] = plan_xcalloc(closure.len, sizeof(*d));
        bool *found = plan_xcalloc(closure.len, sizeof(bool));
        for (size_t i = 0; i < closure.len; i++) {
            memcpy(d[i], closure.items[i], PLAN_DIGEST_CHARS);
            digests[i] = d[i];
        }
        rc = plan_store_scan_refs(b->ctx, out, digests, closure.len, found);
        for (size_t i = 0; !rc && i < closure.len; i++)
            if (found[i])
                plan_strlist_add(refs, closure.items[i]);
        free(digests);
        free(d);
        free(found);
    }
    /* Declared run-time dependencies stay in the closure even when nothing
     * names them (a script that finds a tool on PATH). */
    for (size_t i = 0; !rc && i < nin; i++)
        if (in[i].runtime && !plan_strlist_contains(refs, strrchr(in[i].path, '/') + 1))
            plan_strlist_add(refs, strrchr(in[i].path, '/') + 1);
    plan_strlist_sort(refs);
    plan_strlist_release(&roots);
    plan_strlist_release(&closure);
    return rc;
}

static int write_manifest(builder *b, const plan_recipe *r, const char *out, const input *in,
                          size_t nin, const plan_strlist *refs, const char *hash, bool sandboxed)
{
    json_t *m = describe(r, in, nin);
    json_object_set_new(m, "format", json_string("plan-manifest-v1"));
    json_t *ra = json_array();
    for (size_t i = 0; i < refs->len; i++)
        json_array_append_new(ra, json_string(refs->items[i]));
    json_object_set_new(m, "references", ra);
    json_object_set_new(m, "recipe_hash", json_string(hash));
    json_object_set_new(m, "build",
                        json_pack("{s:s, s:b, s:{s:s, s:s}}", "system", "x86_64-linux",
                                  "sandbox", sandboxed, "host", "PATH", HOST_PATH, "shell",
                                  "/bin/sh"));
    char *dir = plan_path_join(out, ".plan");
    char *file = plan_path_join(dir, "manifest.json");
    int rc = 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        rc = plan_fail_errno(b->ctx, PLAN_ERR_IO, errno, "cannot create '%s'", dir);
    else if (json_dump_file(m, file, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
        rc = plan_fail(b->ctx, PLAN_ERR_IO, "cannot write '%s'", file);
    json_decref(m);
    free(dir);
    free(file);
    return rc;
}

/* ---------- one build ---------- */

static char *failed_log_name(const plan_build_opts *o, const plan_recipe *r)
{
    /* Time and process: two failures of the same recipe keep two logs. */
    return plan_xasprintf("%s/failed-%s-%s-%ld-%ld.log", o->log_dir, r->name, r->version,
                          (long)time(NULL), (long)getpid());
}

/* Build r into a new output; *out_path gets the registered path.  With
 * check_against, the output is not registered but compared. */
static int build_once(builder *b, const plan_recipe *r, const input *in, size_t nin,
                      const char *hash, const char *check_against, plan_build_result *res)
{
    plan_ctx *ctx = b->ctx;
    plan_scratch *scratch = NULL;
    plan_output *output = NULL;
    envlist env = {0};
    plan_strlist_init(&env.items);
    tail t = {0};
    FILE *log = NULL;
    char *log_path = NULL, *src = NULL;
    plan_strlist refs;
    plan_strlist_init(&refs);
    int status = 0;
    bool cancelled = false;
    int rc = plan_store_scratch_new(b->store, &scratch);
    if (rc)
        goto out;
    const char *sdir = plan_scratch_path(scratch);
    src = plan_path_join(sdir, "src");
    const char *subdirs[] = {"src", "tmp", "home"};
    for (size_t i = 0; i < 3 && !rc; i++) {
        char *p = plan_path_join(sdir, subdirs[i]);
        if (mkdir(p, 0755) != 0)
            rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot create '%s'", p);
        free(p);
    }
    for (size_t i = 0; i < r->n_sources && !rc; i++)
        rc = prepare_source(b, r, &r->sources[i], src);
    if (rc)
        goto out;
    if ((rc = plan_store_output_begin(b->store, r->name, r->version, &output)))
        goto out;
    int e = plan_fs_mkdirs(b->opts->log_dir, 0755);
    if (e) {
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, -e, "cannot create '%s'", b->opts->log_dir);
        goto out;
    }
    log_path = plan_xasprintf("%s/building-%s.log", b->opts->log_dir,
                              strrchr(plan_output_path(output), '/') + 1);
    log = fopen(log_path, "we");
    if (!log) {
        rc = plan_fail_errno(ctx, PLAN_ERR_IO, errno, "cannot create '%s'", log_path);
        goto out;
    }
    setvbuf(log, NULL, _IOLBF, 0); /* so the log can be watched while it grows */
    /* The output exists from the start, as an empty directory, so builds
     * may simply install into $out. */
    build_env(b, &env, in, nin, plan_output_path(output), src, sdir);
    sandbox_spec sp = {.enabled = b->sandbox, .store_dir = plan_store_dir(b->store),
                       .out = plan_output_path(output), .build_dir = sdir, .workdir = src};
    char *label = plan_xasprintf("building %s-%s", r->name, r->version);
    const char *stage = "build";
    rc = run_script(b, label, r->build, &env, &sp, log, &t, &status, &cancelled);
    if (!rc && r->check && !(b->opts->cancel && *b->opts->cancel)) {
        /* The check runs on its own, in a fresh shell in $src, so nothing
         * the build script did (an early exit, a cd) can skip it. */
        static const char sep[] = "\n--- check ---\n";
        fwrite(sep, 1, sizeof(sep) - 1, log);
        stage = "check";
        free(label);
        label = plan_xasprintf("checking %s-%s", r->name, r->version);
        rc = run_script(b, label, r->check, &env, &sp, log, &t, &status, &cancelled);
    }
    if (!rc && b->opts->cancel && *b->opts->cancel) {
        cancelled = true; /* interrupted between scripts: still nothing registered */
        rc = PLAN_ERR_FAILED;
    }
    free(label);
    fclose(log);
    log = NULL;
    if (rc) {
        char *kept = failed_log_name(b->opts, r);
        rename(log_path, kept);
        char *last = tail_text(&t);
        if (cancelled)
            rc = plan_fail(ctx, PLAN_ERR_FAILED,
                           "the build of '%s-%s' was interrupted; nothing was added to the "
                           "store (log: %s)",
                           r->name, r->version, kept);
        else
            rc = plan_fail(ctx, PLAN_ERR_FAILED,
                           "the %s script of '%s-%s' failed with exit status %d; nothing was "
                           "added to the store.\nlast lines of the log:\n%sfull log: %s",
                           stage, r->name, r->version, status, last, kept);
        free(last);
        free(kept);
        goto out;
    }
    const char *out_path = plan_output_path(output);
    struct stat ost;
    if (lstat(out_path, &ost) != 0 || !S_ISDIR(ost.st_mode)) {
        rc = plan_fail(ctx, PLAN_ERR_FAILED,
                       "the build of '%s-%s' did not leave a directory at $out ('%s'): a "
                       "build must install into $out",
                       r->name, r->version, out_path);
        goto out;
    }
    if ((rc = output_references(b, out_path, in, nin, &refs)) ||
        (rc = write_manifest(b, r, out_path, in, nin, &refs, hash, b->sandbox)))
        goto out;
    if (check_against) {
        rc = plan_store_compare_output(b->store, output, check_against, &res->differences);
        goto out;
    }
    plan_output_result fin;
    rc = plan_store_output_finish(b->store, output, &refs, hash, &fin);
    output = NULL; /* consumed */
    if (rc)
        goto out;
    res->path = fin.path;
    char *final_log = plan_xasprintf("%s/%s.log", b->opts->log_dir, strrchr(fin.path, '/') + 1);
    struct stat lst;
    if (fin.existed && stat(final_log, &lst) == 0) {
        /* The same output was built before: its first log stays. */
        unlink(log_path);
        free(res->log);
        res->log = final_log;
    } else if (rename(log_path, final_log) == 0) {
        free(res->log);
        res->log = final_log;
    } else {
        free(final_log);
    }
out:
    if (log)
        fclose(log);
    if (output)
        plan_store_output_abort(b->store, output);
    if (rc && log_path)
        unlink(log_path); /* a failed build's log was renamed first */
    if (check_against && log_path)
        unlink(log_path);
    plan_store_scratch_release(scratch);
    plan_strlist_release(&env.items);
    plan_strlist_release(&refs);
    tail_release(&t);
    free(log_path);
    free(src);
    return rc;
}

static int build_recipe(builder *b, const plan_recipe *r, bool check, plan_build_result *res)
{
    input *in = NULL;
    size_t nin = 0;
    plan_strlist_add(&b->stack, r->name);
    int rc = realise_inputs(b, r, &in, &nin);
    char *hash = NULL, *known = NULL;
    if (rc)
        goto out;
    hash = recipe_hash(r, in, nin, b->sandbox);
    if (plan_store_realisation(b->store, hash, &known) == 0) {
        if (check) {
            rc = build_once(b, r, in, nin, hash, known, res);
            if (!rc) {
                res->path = known;
                known = NULL;
            }
        } else {
            res->path = known;
            res->reused = true;
            known = NULL;
            if (b->opts->log_dir)
                res->log = plan_xasprintf("%s/%s.log", b->opts->log_dir,
                                          strrchr(res->path, '/') + 1);
        }
        goto out;
    }
    if (b->opts->reuse_only) {
        rc = plan_fail(b->ctx, PLAN_ERR_NOT_FOUND, "'%s-%s' is not built", r->name, r->version);
        goto out;
    }
    if (check) {
        rc = plan_fail(b->ctx, PLAN_ERR_NOT_FOUND,
                       "'%s-%s' has not been built yet, so there is nothing to check against: "
                       "build it first, then run --check",
                       r->name, r->version);
        goto out;
    }
    rc = build_once(b, r, in, nin, hash, NULL, res);
out:
    free(hash);
    free(known);
    inputs_release(in, nin);
    free(b->stack.items[--b->stack.len]);
    return rc;
}

/* Choose every dependency's version at once with the solver, so that the
 * graph has one version per name; a conflict is explained in plain words. */
static int solve_dependencies(builder *b, const plan_recipe *r, plan_resolver **out)
{
    plan_resolver_provider p = plan_recipe_repo_provider(b->opts->repo);
    plan_resolver *solver = plan_resolver_new(b->ctx, &p);
    int rc = 0;
    for (size_t i = 0; i < r->n_depends && !rc; i++)
        rc = plan_resolver_require(solver, r->depends[i].name, r->depends[i].range);
    for (size_t i = 0; i < r->n_build_depends && !rc; i++)
        rc = plan_resolver_require(solver, r->build_depends[i].name, r->build_depends[i].range);
    /* A lock's versions are kept wherever they fit, so a locked package is
     * built with the locked versions of its dependencies. */
    for (size_t i = 0; b->opts->pins && i < b->opts->pins->n && !rc; i++)
        rc = plan_resolver_lock(solver, b->opts->pins->packages[i].name,
                                b->opts->pins->packages[i].version);
    if (!rc)
        rc = plan_resolver_solve(solver, &b->solution);
    if (rc == PLAN_ERR_FAILED && plan_resolver_explain(solver))
        rc = plan_fail(b->ctx, PLAN_ERR_FAILED, "the dependencies of '%s-%s' cannot be "
                                                "satisfied together:\n%s",
                       r->name, r->version, plan_resolver_explain(solver));
    if (rc) {
        plan_resolver_free(solver);
        b->solution = NULL;
        return rc;
    }
    *out = solver;
    return 0;
}

int plan_build(plan_store *store, const plan_recipe *recipe, const plan_build_opts *opts,
               plan_build_result *out)
{
    memset(out, 0, sizeof(*out));
    plan_strlist_init(&out->differences);
    if (sodium_init() < 0)
        return plan_fail(plan_store_ctx(store), PLAN_ERR_FAILED, "libsodium failed to initialise");
    builder b = {.store = store, .ctx = plan_store_ctx(store), .opts = opts};
    plan_strlist_init(&b.stack);
    /* What the build will really get, since it is part of the recipe hash
     * and the manifest: a fallback build must not pass for a sandboxed one. */
    b.sandbox = opts->sandbox && sandbox_available();
    if (opts->sandbox && !b.sandbox)
        plan_warn(b.ctx, "Linux namespaces are unavailable here: building without a sandbox");
    plan_resolver *solver = NULL;
    int rc = 0;
    if (opts->repo && (recipe->n_depends || recipe->n_build_depends))
        rc = solve_dependencies(&b, recipe, &solver);
    if (!rc)
        rc = build_recipe(&b, recipe, opts->rebuild_check, out);
    plan_resolver_free(solver);
    plan_strlist_release(&b.stack);
    if (rc)
        plan_build_result_release(out);
    return rc;
}

void plan_build_result_release(plan_build_result *r)
{
    free(r->path);
    free(r->log);
    r->path = r->log = NULL;
    plan_strlist_release(&r->differences);
}

int plan_build_log_path(plan_store *store, const char *log_dir, const char *path, char **log)
{
    char *base = NULL;
    int rc = plan_store_resolve(store, path, &base);
    if (rc)
        return rc;
    char *file = plan_xasprintf("%s/%s.log", log_dir, base);
    struct stat st;
    if (stat(file, &st) != 0) {
        rc = plan_fail(plan_store_ctx(store), PLAN_ERR_NOT_FOUND,
                       "no build log for '%s': it was not built here (added or imported), or "
                       "its log was removed",
                       base);
        free(file);
    } else {
        *log = file;
    }
    free(base);
    return rc;
}
