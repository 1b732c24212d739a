/* plan.lock: the exact resolved closure of a plan.yaml, as deterministic
 * JSON (docs/formats/lockfile.md).  Same input, same bytes: keys sorted,
 * packages sorted by name, two-space indentation, a final newline. */
#include "resolver.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define LOCK_FORMAT "plan-lock-v1"
#define LOCK_MAX (64u << 20)

void plan_lock_free(plan_lock *lock)
{
    if (!lock)
        return;
    plan_strlist_release(&lock->request_names);
    plan_strlist_release(&lock->request_ranges);
    for (size_t i = 0; i < lock->n; i++) {
        plan_lock_package *p = &lock->packages[i];
        free(p->name);
        free(p->version);
        free(p->source);
        free(p->recipe);
        free(p->recipe_hash);
        free(p->path);
        free(p->required_by);
        free(p->required_as);
        plan_strlist_release(&p->dep_names);
        plan_strlist_release(&p->dep_ranges);
    }
    free(lock->packages);
    free(lock);
}

plan_lock *plan_lock_new(void)
{
    plan_lock *l = plan_xcalloc(1, sizeof(*l));
    plan_strlist_init(&l->request_names);
    plan_strlist_init(&l->request_ranges);
    return l;
}

plan_lock_package *plan_lock_add(plan_lock *l, const char *name, const char *version)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->packages = plan_xrealloc(l->packages, l->cap * sizeof(*l->packages));
    }
    plan_lock_package *p = &l->packages[l->n++];
    memset(p, 0, sizeof(*p));
    p->name = plan_xstrdup(name);
    p->version = plan_xstrdup(version);
    plan_strlist_init(&p->dep_names);
    plan_strlist_init(&p->dep_ranges);
    return p;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const plan_lock_package *)a)->name, ((const plan_lock_package *)b)->name);
}

static void set_opt(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

void plan_lock_sort(plan_lock *l)
{
    if (l->n > 1)
        qsort(l->packages, l->n, sizeof(*l->packages), by_name);
}

char *plan_lock_format(plan_lock *l)
{
    plan_lock_sort(l);
    json_t *req = json_object();
    for (size_t i = 0; i < l->request_names.len; i++)
        json_object_set_new(req, l->request_names.items[i], json_string(l->request_ranges.items[i]));
    json_t *pk = json_object();
    for (size_t i = 0; i < l->n; i++) {
        plan_lock_package *p = &l->packages[i];
        json_t *o = json_pack("{s:s}", "version", p->version);
        set_opt(o, "source", p->source);
        set_opt(o, "recipe", p->recipe);
        set_opt(o, "recipe_hash", p->recipe_hash);
        set_opt(o, "path", p->path);
        json_t *deps = json_object();
        for (size_t d = 0; d < p->dep_names.len; d++)
            json_object_set_new(deps, p->dep_names.items[d], json_string(p->dep_ranges.items[d]));
        json_object_set_new(o, "dependencies", deps);
        if (p->required_by)
            json_object_set_new(o, "required_by", json_pack("{s:s, s:s}", "name", p->required_by,
                                                            "range", p->required_as));
        else
            json_object_set_new(o, "required_by", json_null());
        json_object_set_new(pk, p->name, o);
    }
    json_t *root = json_pack("{s:s, s:o, s:o}", "format", LOCK_FORMAT, "requests", req,
                             "packages", pk);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    char *with_newline = plan_xasprintf("%s\n", text);
    free(text);
    return with_newline;
}

static int lock_write(plan_ctx *ctx, const char *file, plan_lock *l, bool flush)
{
    char *text = plan_lock_format(l);
    int r = plan_fs_write_replace(file, text, strlen(text), 0644, flush);
    free(text);
    return r ? plan_fail_errno(ctx, PLAN_ERR_IO, -r, "cannot write '%s'", file) : 0;
}

int plan_lock_write(plan_ctx *ctx, const char *file, plan_lock *l)
{
    return lock_write(ctx, file, l, true);
}

int plan_lock_write_cache(plan_ctx *ctx, const char *file, plan_lock *l)
{
    return lock_write(ctx, file, l, false);
}

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int bad_lock(plan_ctx *ctx, const char *file, const char *what)
{
    return plan_fail(ctx, PLAN_ERR_INVALID,
                     "'%s' is not a valid lockfile: %s; run 'plan lock' to write it again",
                     file, what);
}

int plan_lock_read(plan_ctx *ctx, const char *file, plan_lock **out)
{
    plan_buf text;
    plan_buf_init(&text);
    int r = plan_fs_read_file(file, LOCK_MAX, &text);
    if (r) {
        plan_buf_release(&text);
        return plan_fail(ctx, r == -ENOENT ? PLAN_ERR_NOT_FOUND : PLAN_ERR_IO,
                         "cannot read '%s': %s%s", file, strerror(-r),
                         r == -ENOENT ? "; run 'plan lock' to create it" : "");
    }
    json_error_t jerr;
    json_t *root = json_loadb(text.data, text.len, JSON_REJECT_DUPLICATES, &jerr);
    plan_buf_release(&text);
    if (!root)
        return plan_fail(ctx, PLAN_ERR_INVALID, "%s:%d:%d: not valid JSON: %s", file, jerr.line,
                         jerr.column, jerr.text);
    int rc = 0;
    plan_lock *l = plan_lock_new();
    const char *format = str(root, "format");
    json_t *req = json_object_get(root, "requests"), *pk = json_object_get(root, "packages");
    if (!format || strcmp(format, LOCK_FORMAT))
        rc = bad_lock(ctx, file, "its format is not " LOCK_FORMAT);
    else if (!json_is_object(req) || !json_is_object(pk))
        rc = bad_lock(ctx, file, "'requests' and 'packages' must be objects");
    const char *key;
    json_t *v;
    if (!rc) {
        json_object_foreach(req, key, v) {
            if (!json_is_string(v)) {
                rc = bad_lock(ctx, file, "a request's range is not a string");
                break;
            }
            plan_strlist_add(&l->request_names, key);
            plan_strlist_add(&l->request_ranges, json_string_value(v));
        }
    }
    if (!rc) {
        json_object_foreach(pk, key, v) {
            const char *version = str(v, "version");
            json_t *deps = json_object_get(v, "dependencies");
            json_t *by = json_object_get(v, "required_by");
            if (!version || !json_is_object(deps) || !(json_is_null(by) || json_is_object(by))) {
                rc = bad_lock(ctx, file, "a package lacks 'version', 'dependencies' or "
                                         "'required_by'");
                break;
            }
            plan_lock_package *p = plan_lock_add(l, key, version);
            const char *s;
            if ((s = str(v, "source"))) p->source = plan_xstrdup(s);
            if ((s = str(v, "recipe"))) p->recipe = plan_xstrdup(s);
            if ((s = str(v, "recipe_hash"))) p->recipe_hash = plan_xstrdup(s);
            if ((s = str(v, "path"))) p->path = plan_xstrdup(s);
            if (json_is_object(by) && str(by, "name") && str(by, "range")) {
                p->required_by = plan_xstrdup(str(by, "name"));
                p->required_as = plan_xstrdup(str(by, "range"));
            }
            const char *dn;
            json_t *dr;
            json_object_foreach(deps, dn, dr) {
                plan_strlist_add(&p->dep_names, dn);
                plan_strlist_add(&p->dep_ranges, json_is_string(dr) ? json_string_value(dr) : "");
            }
        }
    }
    json_decref(root);
    if (rc) {
        plan_lock_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void plan_lock_request_order(const plan_lock *l, const plan_strlist *names, size_t *order)
{
    plan_strmap at; /* name -> its package, forgotten once placed */
    plan_strmap_init(&at);
    for (size_t i = 0; i < l->n; i++)
        plan_strmap_put(&at, l->packages[i].name, i);
    size_t k = 0;
    for (size_t i = 0; i < names->len; i++) {
        ssize_t p = plan_strmap_get(&at, names->items[i]);
        if (p >= 0) {
            order[k++] = (size_t)p;
            plan_strmap_put(&at, names->items[i], (size_t)-1);
        }
    }
    for (size_t i = 0; i < l->n; i++)
        if (plan_strmap_get(&at, l->packages[i].name) >= 0)
            order[k++] = i;
    plan_strmap_release(&at);
}

const plan_lock_package *plan_lock_find(const plan_lock *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->packages[i].name, name))
            return &l->packages[i];
    return NULL;
}
