/* Composing an environment from the plans' env declarations
 * (docs/commands/env.md#the-environment). */
#include "recipes_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void add_item(plan_env_plan *e, const char *name, plan_env_op op, const char *value)
{
    /* The same directory on the same variable once: twenty plans that all
     * prepend bin give one <farm>/bin. */
    for (size_t i = 0; i < e->n; i++)
        if (e->items[i].op == op && op != PLAN_ENV_SET && !strcmp(e->items[i].name, name) &&
            !strcmp(e->items[i].value, value))
            return;
    if (e->n == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 16;
        e->items = plan_xrealloc(e->items, e->cap * sizeof(*e->items));
    }
    e->items[e->n++] = (plan_env_item){plan_xstrdup(name), op, plan_xstrdup(value)};
}

void plan_env_plan_release(plan_env_plan *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->items[i].name);
        free(e->items[i].value);
    }
    free(e->items);
    memset(e, 0, sizeof(*e));
}

/* A manifest, read and parsed (on any thread). */
typedef struct manifest_read {
    json_t *json;  /* NULL: none, or unreadable (error says why) */
    char *error;   /* NULL when the plan simply has no manifest */
} manifest_read;

#define MANIFEST_MAX (4u << 20)

static void read_manifest(const plan_store *store, const char *path, manifest_read *out)
{
    char *mf = plan_xasprintf("%s/.plan/manifest.json", path);
    plan_buf text;
    plan_buf_init(&text);
    size_t known_len = 0;
    const char *known = store ? plan_store_written_manifest(store, path, &known_len) : NULL;
    int r = known ? 0 : plan_fs_read_file(mf, MANIFEST_MAX, &text);
    json_error_t err;
    out->json = r ? NULL
                  : json_loadb(known ? known : text.data, known ? known_len : text.len,
                               JSON_REJECT_DUPLICATES, &err);
    /* A plan added with 'plan store add' has no manifest: it simply
     * declares nothing. */
    if (r && r != -ENOENT && r != -ENOTDIR)
        out->error = plan_xasprintf("cannot read the manifest '%s': %s", mf, strerror(-r));
    else if (!r && !out->json)
        out->error = plan_xasprintf("cannot read the manifest '%s': %s", mf, err.text);
    plan_buf_release(&text);
    free(mf);
}

typedef struct manifests_job {
    const plan_store *store;
    const char *const *paths;
    manifest_read *out;
    size_t n;
    atomic_size_t next;
} manifests_job;

static void *manifests_worker(void *arg)
{
    manifests_job *job = arg;
    for (size_t i; (i = atomic_fetch_add(&job->next, 1)) < job->n;)
        read_manifest(job->store, job->paths[i], &job->out[i]);
    return NULL;
}

static int manifest_env(plan_ctx *ctx, const char *path, manifest_read *mr, const char *farm,
                        plan_env_plan *out)
{
    if (mr->error)
        return plan_fail(ctx, PLAN_ERR_CORRUPT, "%s", mr->error);
    json_t *m = mr->json;
    if (!m)
        return 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(m, "env"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *op = json_string_value(json_object_get(v, "op"));
        const char *value = json_string_value(json_object_get(v, "value"));
        if (!name || !op || !value)
            continue;
        if (!strcmp(op, "set")) {
            char *x = recipe_expand_out(value, path);
            add_item(out, name, PLAN_ENV_SET, x);
            free(x);
        } else if (!strcmp(op, "prepend") || !strcmp(op, "append")) {
            /* A manifest may come from an import: a directory must stay
             * inside the plan, as the recipe reader demands. */
            if (!*value || value[0] == '/' || !plan_path_link_inside("x", value)) {
                plan_warn(ctx, "ignoring %s's %s %s '%s': not a directory inside the plan",
                          path, name, op, value);
                continue;
            }
            char *dir = plan_path_join(farm, value);
            add_item(out, name, op[0] == 'p' ? PLAN_ENV_PREPEND : PLAN_ENV_APPEND, dir);
            free(dir);
        }
    }
    return 0;
}

int plan_env_compose(plan_ctx *ctx, const plan_store *store, const char *const *paths, size_t n,
                     const char *farm, plan_env_plan *out)
{
    memset(out, 0, sizeof(*out));
    /* The merged tree has a bin exactly when one of the plans has one; the
     * plans are asked, since the farm may not exist yet (a profile's env
     * is written against 'current' before it is switched). */
    bool has_bin = false;
    for (size_t i = 0; i < n && !has_bin; i++) {
        char *b = plan_path_join(paths[i], "bin");
        struct stat st;
        has_bin = stat(b, &st) == 0 && S_ISDIR(st.st_mode);
        free(b);
    }
    if (has_bin) {
        char *bin = plan_path_join(farm, "bin");
        add_item(out, "PATH", PLAN_ENV_PREPEND, bin);
        free(bin);
    }
    /* Read and parsed on every core (many plans, many small files); the
     * declarations are then taken in the plans' order. */
    manifests_job job = {.store = store, .paths = paths,
                         .out = plan_xcalloc(n ? n : 1, sizeof(manifest_read)), .n = n};
    atomic_init(&job.next, 0);
    plan_run_threads(plan_threads_for(n, 16), manifests_worker, &job);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = manifest_env(ctx, paths[i], &job.out[i], farm, out);
    for (size_t i = 0; i < n; i++) {
        json_decref(job.out[i].json);
        free(job.out[i].error);
    }
    free(job.out);
    if (rc)
        plan_env_plan_release(out);
    return rc;
}

static ssize_t env_find(const plan_strlist *l, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < l->len; i++)
        if (!strncmp(l->items[i], name, n) && l->items[i][n] == '=')
            return (ssize_t)i;
    return -1;
}

/* Per variable: the prepends (in plan order), then the value (the last
 * set, else what the environment had), then the appends (in plan order). */
void plan_env_apply(const plan_env_plan *e, plan_strlist *env)
{
    for (size_t k = 0; k < e->n; k++) {
        const char *name = e->items[k].name;
        bool first = true;
        for (size_t j = 0; j < k && first; j++)
            first = strcmp(e->items[j].name, name) != 0;
        if (!first)
            continue; /* this variable was done at its first item */
        ssize_t at = env_find(env, name);
        const char *base = at >= 0 ? strchr(env->items[at], '=') + 1 : NULL;
        for (size_t j = k; j < e->n; j++)
            if (e->items[j].op == PLAN_ENV_SET && !strcmp(e->items[j].name, name))
                base = e->items[j].value;
        plan_buf v;
        plan_buf_init(&v);
        for (size_t j = k; j < e->n; j++)
            if (e->items[j].op == PLAN_ENV_PREPEND && !strcmp(e->items[j].name, name))
                plan_buf_printf(&v, "%s%s", v.len ? ":" : "", e->items[j].value);
        if (base && *base)
            plan_buf_printf(&v, "%s%s", v.len ? ":" : "", base);
        for (size_t j = k; j < e->n; j++)
            if (e->items[j].op == PLAN_ENV_APPEND && !strcmp(e->items[j].name, name))
                plan_buf_printf(&v, "%s%s", v.len ? ":" : "", e->items[j].value);
        char *entry = plan_xasprintf("%s=%s", name, v.data);
        plan_buf_release(&v);
        if (at >= 0) {
            free(env->items[at]);
            env->items[at] = entry;
        } else {
            plan_strlist_take(env, entry);
        }
    }
}
