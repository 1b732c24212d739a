/* plan merge: the merged manifest, structured merges of JSON and YAML
 * files, the lineage (docs/commands/merge.md).  The tree union itself is
 * the store's (store/merge.c); this file knows what manifests and
 * configuration files mean. */
#include "recipes_int.h"

#include <errno.h>
#include <jansson.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MERGE_FILE_MAX (16u << 20) /* a configuration file, not a data set */

typedef struct merging {
    plan_ctx *ctx;
    const plan_merge_request *req;
} merging;

static const char *plan_label(const merging *g, size_t i, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", g->req->plans[i].name, g->req->plans[i].version);
    return buf;
}

/* Who wins a clash among the providers from[0..k): the first --prefer
 * name among them, else the strategy; -1 when nothing settles it. */
static ssize_t settle(const merging *g, const size_t *from, size_t k)
{
    for (size_t p = 0; p < g->req->n_prefer; p++)
        for (size_t i = 0; i < k; i++)
            if (!strcmp(g->req->plans[from[i]].name, g->req->prefer[p]))
                return (ssize_t)i;
    if (g->req->strategy == PLAN_COLLIDE_PREFER_FIRST)
        return 0;
    if (g->req->strategy == PLAN_COLLIDE_PREFER_LAST)
        return (ssize_t)k - 1;
    return -1;
}

/* A value for a message: short, on one line. */
static char *show(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (!text)
        return plan_xstrdup("?");
    if (strlen(text) > 40) {
        char *cut = plan_xasprintf("%.37s...", text);
        free(text);
        return cut;
    }
    return text;
}

static void clash(const merging *g, plan_strlist *conflicts, const char *prefix,
                  const char *what, json_t *const *vals, const size_t *from, size_t k)
{
    plan_buf b;
    plan_buf_init(&b);
    plan_buf_printf(&b, "%s%s is ", prefix, what);
    for (size_t i = 0; i < k; i++) {
        char label[256], *v = show(vals[i]);
        plan_buf_printf(&b, "%s%s in %s", i == 0 ? "" : i + 1 == k ? " and " : ", ", v,
                        plan_label(g, from[i], label, sizeof(label)));
        free(v);
    }
    plan_strlist_take(conflicts, plan_buf_detach(&b));
}

static bool all_equal(json_t *const *vals, size_t k)
{
    for (size_t i = 1; i < k; i++)
        if (!json_equal(vals[0], vals[i]))
            return false;
    return true;
}

/* Deep merge of k values: maps merge key by key (in the order the keys
 * first appear), anything else must be equal unless settle() picks one.
 * Returns a new reference, or NULL after recording a conflict. */
static json_t *deep_merge(const merging *g, const char *prefix, const char *keypath,
                          json_t *const *vals, const size_t *from, size_t k,
                          plan_strlist *conflicts)
{
    bool maps = true;
    for (size_t i = 0; i < k && maps; i++)
        maps = json_is_object(vals[i]);
    if (!maps) {
        if (all_equal(vals, k))
            return json_incref(vals[0]);
        ssize_t w = settle(g, from, k);
        if (w >= 0)
            return json_incref(vals[w]);
        char *what = plan_xasprintf("key '%s'", *keypath ? keypath : "(the whole document)");
        clash(g, conflicts, prefix, what, vals, from, k);
        free(what);
        return NULL;
    }
    json_t *out = json_object();
    json_t **sub = plan_xcalloc(k, sizeof(json_t *));
    size_t *sub_from = plan_xcalloc(k, sizeof(size_t));
    for (size_t i = 0; i < k; i++) {
        const char *key;
        json_t *ignored;
        json_object_foreach(vals[i], key, ignored) {
            (void)ignored;
            if (json_object_get(out, key))
                continue;
            size_t n = 0;
            for (size_t j = i; j < k; j++) {
                json_t *v = json_object_get(vals[j], key);
                if (v) {
                    sub[n] = v;
                    sub_from[n++] = from[j];
                }
            }
            char *path = *keypath ? plan_xasprintf("%s.%s", keypath, key) : plan_xstrdup(key);
            json_t *m = deep_merge(g, prefix, path, sub, sub_from, n, conflicts);
            free(path);
            /* A key in conflict still takes its place, so that the keys
             * after it are merged (and reported) too. */
            json_object_set_new(out, key, m ? m : json_null());
        }
    }
    free(sub);
    free(sub_from);
    return out;
}

/* ---------- configuration files ---------- */

typedef enum { FILE_JSON, FILE_YAML, FILE_OTHER } file_kind;

static file_kind kind_of(const char *rel)
{
    const char *dot = strrchr(rel, '.');
    if (dot && strchr(dot, '/') == NULL) {
        if (!strcmp(dot, ".json"))
            return FILE_JSON;
        if (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml"))
            return FILE_YAML;
    }
    return FILE_OTHER;
}

/* A libfyaml document from text whose diagnostics are collected, never
 * printed (a library does not print). */
static struct fy_document *yaml_document(const char *text, size_t len, struct fy_diag **diag)
{
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.colorize = false;
    *diag = fy_diag_create(&dcfg);
    if (!*diag)
        return NULL;
    fy_diag_set_collect_errors(*diag, true);
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET, .diag = *diag};
    return fy_document_build_from_string(&cfg, text, len);
}

/* YAML to JSON text through libfyaml's JSON emitter, so that scalars get
 * the meaning JSON gives them (8080 a number, true a boolean, null)
 * before jansson reads them.  Aliases are refused by that emitter, which
 * is as well: expanding them is how a small file becomes a huge one. */
static json_t *load_yaml(const char *text, size_t len, char **why)
{
    struct fy_diag *diag = NULL;
    struct fy_document *doc = yaml_document(text, len, &diag);
    if (!doc || !fy_document_root(doc)) {
        fy_document_destroy(doc);
        fy_diag_destroy(diag);
        *why = plan_xstrdup("not a YAML document");
        return NULL;
    }
    char *json = fy_emit_document_to_string(doc, FYECF_MODE_JSON_ONELINE | FYECF_NO_ENDING_NEWLINE);
    fy_document_destroy(doc);
    fy_diag_destroy(diag);
    if (!json) {
        *why = plan_xstrdup("a YAML document JSON cannot express (aliases, say)");
        return NULL;
    }
    json_error_t err;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &err);
    free(json);
    if (!v)
        *why = plan_xasprintf("a YAML document JSON cannot express (%s)", err.text);
    return v;
}

static json_t *load_config(const char *file, file_kind kind, char **why)
{
    plan_buf b;
    plan_buf_init(&b);
    int r = plan_fs_read_file(file, MERGE_FILE_MAX, &b);
    json_t *v = NULL;
    if (r) {
        *why = plan_xasprintf("cannot be read (%s)", r == -EFBIG ? "larger than 16 MiB"
                                                                 : strerror(-r));
    } else if (kind == FILE_JSON) {
        json_error_t err;
        v = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
        if (!v)
            *why = plan_xasprintf("is not valid JSON (line %d: %s)", err.line, err.text);
    } else {
        v = load_yaml(b.data, b.len, why);
        if (!v) {
            char *w = plan_xasprintf("is %s", *why);
            free(*why);
            *why = w;
        }
    }
    plan_buf_release(&b);
    return v;
}

/* JSON stays JSON (indented by 2, the first plan's key order); YAML is
 * written back as block YAML by libfyaml. */
static int dump_config(json_t *v, file_kind kind, plan_buf *out)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (!text)
        return PLAN_ERR_FAILED;
    if (kind == FILE_JSON) {
        plan_buf_adds(out, text);
        plan_buf_addc(out, '\n');
        free(text);
        return 0;
    }
    struct fy_diag *diag = NULL;
    struct fy_document *doc = yaml_document(text, strlen(text), &diag);
    char *yaml = doc ? fy_emit_document_to_string(doc, FYECF_MODE_BLOCK) : NULL;
    fy_document_destroy(doc);
    fy_diag_destroy(diag);
    free(text);
    if (!yaml)
        return PLAN_ERR_FAILED;
    plan_buf_adds(out, yaml);
    free(yaml);
    return 0;
}

static int merge_config_file(void *arg, const char *rel, const char *const *files,
                             const size_t *plans, size_t n, plan_buf *out,
                             plan_strlist *conflicts)
{
    merging *g = arg;
    file_kind kind = kind_of(rel);
    if (kind == FILE_OTHER)
        return 1;
    json_t **vals = plan_xcalloc(n, sizeof(json_t *));
    bool loaded = true;
    for (size_t i = 0; i < n; i++) {
        char *why = NULL;
        if (!(vals[i] = load_config(files[i], kind, &why))) {
            char label[256];
            plan_strlist_take(conflicts,
                              plan_xasprintf("'%s' of %s %s, so it cannot be merged", rel,
                                             plan_label(g, plans[i], label, sizeof(label)), why));
            loaded = false;
        }
        free(why);
    }
    int rc = 0;
    if (loaded) {
        char *prefix = plan_xasprintf("'%s': ", rel);
        size_t before = conflicts->len;
        json_t *m = deep_merge(g, prefix, "", vals, plans, n, conflicts);
        free(prefix);
        if (m && conflicts->len == before && dump_config(m, kind, out))
            rc = plan_fail(g->ctx, PLAN_ERR_FAILED, "cannot write the merged '%s'", rel);
        json_decref(m);
    }
    for (size_t i = 0; i < n; i++)
        json_decref(vals[i]);
    free(vals);
    return rc;
}

/* ---------- manifests ---------- */

/* The plan's manifest, or NULL when it has none or it cannot be read: such
 * a plan is merged as a plain tree (a warning says so when it is broken). */
static json_t *load_manifest(plan_ctx *ctx, const char *path)
{
    char *file = plan_xasprintf("%s/.plan/manifest.json", path);
    json_error_t err;
    json_t *m = json_load_file(file, JSON_REJECT_DUPLICATES, &err);
    struct stat st;
    if (!m && lstat(file, &st) == 0)
        plan_warn(ctx, "the manifest '%s' cannot be read (%s): merging the plan as a plain tree",
                  file, err.text);
    if (m && !json_is_object(m)) {
        plan_warn(ctx, "the manifest '%s' is not an object: merging the plan as a plain tree",
                  file);
        json_decref(m);
        m = NULL;
    }
    free(file);
    return m;
}

/* The members of field (an object in each manifest) merged member by
 * member: equal values are one, different ones a conflict unless settled.
 * what names a member in messages ("entry point"). */
static json_t *merge_members(const merging *g, json_t *const *manifests, const char *field,
                             const char *what, plan_strlist *conflicts)
{
    size_t n = g->req->n_plans;
    json_t *out = json_object();
    json_t **vals = plan_xcalloc(n, sizeof(json_t *));
    size_t *from = plan_xcalloc(n, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        json_t *obj = manifests[i] ? json_object_get(manifests[i], field) : NULL;
        const char *key;
        json_t *ignored;
        json_object_foreach(json_is_object(obj) ? obj : NULL, key, ignored) {
            (void)ignored;
            if (json_object_get(out, key))
                continue;
            size_t k = 0;
            for (size_t j = i; j < n; j++) {
                json_t *o = manifests[j] ? json_object_get(manifests[j], field) : NULL;
                json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
                if (v) {
                    vals[k] = v;
                    from[k++] = j;
                }
            }
            json_t *win = NULL;
            if (all_equal(vals, k))
                win = vals[0];
            else {
                ssize_t w = settle(g, from, k);
                if (w >= 0)
                    win = vals[w];
                else {
                    char *label = plan_xasprintf("%s '%s'", what, key);
                    clash(g, conflicts, "", label, vals, from, k);
                    free(label);
                }
            }
            if (win)
                json_object_set(out, key, win);
        }
    }
    free(vals);
    free(from);
    return out;
}

/* One string field of plan run's (workdir, state): the value the plans
 * that declare it agree on, or the one --prefer/--strategy settles on;
 * values the recipe rules refuse are not carried over.  NULL: none. */
static json_t *merge_run_field(const merging *g, json_t *const *manifests, const char *field,
                               const char *(*problem)(const char *), plan_strlist *conflicts)
{
    size_t n = g->req->n_plans, k = 0;
    json_t **vals = plan_xcalloc(n, sizeof(json_t *));
    size_t *from = plan_xcalloc(n, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        json_t *v = manifests[i] ? json_object_get(manifests[i], field) : NULL;
        if (json_is_string(v) && !problem(json_string_value(v))) {
            vals[k] = v;
            from[k++] = i;
        }
    }
    json_t *win = NULL;
    if (k && all_equal(vals, k)) {
        win = vals[0];
    } else if (k) {
        ssize_t w = settle(g, from, k);
        if (w >= 0)
            win = vals[w];
        else
            clash(g, conflicts, "", field, vals, from, k);
    }
    if (win)
        json_incref(win);
    free(vals);
    free(from);
    return win;
}

/* Configuration keys clash on their type and default; the description
 * is the first one given. */
static json_t *merge_config_schema(const merging *g, json_t *const *manifests,
                                   plan_strlist *conflicts)
{
    size_t n = g->req->n_plans;
    json_t **stripped = plan_xcalloc(n, sizeof(json_t *));
    for (size_t i = 0; i < n; i++) {
        json_t *cfg = manifests[i] ? json_object_get(manifests[i], "config") : NULL;
        if (!json_is_object(cfg))
            continue;
        stripped[i] = json_pack("{s:o}", "config", json_object());
        json_t *dst = json_object_get(stripped[i], "config");
        const char *key;
        json_t *v;
        json_object_foreach(cfg, key, v) {
            json_t *c = json_deep_copy(v);
            if (json_is_object(c))
                json_object_del(c, "description");
            json_object_set_new(dst, key, c ? c : json_null());
        }
    }
    json_t *out = merge_members(g, stripped, "config", "configuration key", conflicts);
    const char *key;
    json_t *v;
    json_object_foreach(out, key, v) {
        for (size_t i = 0; i < n && json_is_object(v); i++) {
            json_t *cfg = manifests[i] ? json_object_get(manifests[i], "config") : NULL;
            json_t *d = json_is_object(cfg) ? json_object_get(json_object_get(cfg, key),
                                                              "description")
                                            : NULL;
            if (json_is_string(d)) {
                json_t *copy = json_deep_copy(v);
                json_object_set(copy, "description", d);
                json_object_set_new(out, key, copy);
                break;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        json_decref(stripped[i]);
    free(stripped);
    return out;
}

static json_t *concat_env(const merging *g, json_t *const *manifests)
{
    json_t *env = json_array();
    for (size_t i = 0; i < g->req->n_plans; i++) {
        json_t *e = manifests[i] ? json_object_get(manifests[i], "env") : NULL;
        size_t k;
        json_t *item;
        json_array_foreach(json_is_array(e) ? e : NULL, k, item)
            if (json_is_object(item))
                json_array_append(env, item);
    }
    return env;
}

/* The constituents, each with its own lineage when it is a merge too.
 * A constituent is named by its name, version and content hash, not by
 * its store path: a digest written in the manifest would make every
 * reference scan (an import, a publish) count it as a reference, and
 * lineage is history, not a dependency. */
static json_t *make_lineage(const merging *g, plan_store *store, json_t *const *manifests)
{
    json_t *lineage = json_array();
    for (size_t i = 0; i < g->req->n_plans; i++) {
        plan_path_info *info = NULL;
        if (plan_store_path_info(store, g->req->plans[i].path, &info))
            continue; /* checked by the store merge already */
        json_t *e = json_pack("{s:s, s:s, s:s}", "name", info->name, "version", info->version,
                              "content_hash", info->content_hash);
        json_t *own = manifests[i] ? json_object_get(manifests[i], "lineage") : NULL;
        if (json_is_array(own) && json_array_size(own))
            json_object_set(e, "lineage", own);
        json_array_append_new(lineage, e);
        plan_path_info_free(info);
    }
    return lineage;
}

static json_t *merge_manifests(const merging *g, plan_store *store, json_t *const *manifests,
                               plan_strlist *conflicts)
{
    json_t *m = json_object();
    json_object_set_new(m, "format", json_string("plan-manifest-v1"));
    json_object_set_new(m, "name", json_string(g->req->name));
    json_object_set_new(m, "version", json_string(g->req->version));
    json_object_set_new(m, "run", merge_members(g, manifests, "run", "entry point", conflicts));
    json_object_set_new(m, "config", merge_config_schema(g, manifests, conflicts));
    json_object_set_new(m, "resources",
                        merge_members(g, manifests, "resources", "resource limit", conflicts));
    json_object_set_new(m, "depends",
                        merge_members(g, manifests, "depends", "dependency", conflicts));
    json_object_set_new(m, "build_depends", json_object());
    json_t *workdir = merge_run_field(g, manifests, "workdir", plan_recipe_workdir_problem,
                                      conflicts);
    json_t *state = merge_run_field(g, manifests, "state", plan_recipe_state_problem, conflicts);
    if (workdir)
        json_object_set_new(m, "workdir", workdir);
    if (state)
        json_object_set_new(m, "state", state);
    json_object_set_new(m, "env", concat_env(g, manifests));
    json_object_set_new(m, "lineage", make_lineage(g, store, manifests));
    json_object_set_new(m, "merge",
                        json_pack("{s:s, s:b}", "strategy", plan_collide_name(g->req->strategy),
                                  "merge_config", g->req->merge_config));
    return m;
}

static int conflict_error(plan_ctx *ctx, const plan_merge_request *req,
                          const plan_strlist *conflicts)
{
    plan_buf b;
    plan_buf_init(&b);
    for (size_t i = 0; i < conflicts->len; i++)
        plan_buf_printf(&b, "\n  %s", conflicts->items[i]);
    int rc = plan_fail(ctx, PLAN_ERR_FAILED,
                       "%zu conflict%s merging into %s %s:%s\nsettle them with --prefer NAME "
                       "(that plan wins each conflict it is part of) or --strategy "
                       "prefer-first|prefer-last%s",
                       conflicts->len, conflicts->len == 1 ? "" : "s", req->name, req->version,
                       b.data,
                       req->merge_config ? ""
                                         : ", or merge JSON and YAML files key by key with "
                                           "--merge-config");
    plan_buf_release(&b);
    return rc;
}

void plan_merge_result_release(plan_merge_result *r)
{
    free(r->path);
    memset(r, 0, sizeof(*r));
}

int plan_merge_plans(plan_store *store, const plan_merge_request *req, plan_merge_result *out)
{
    plan_ctx *ctx = plan_store_ctx(store);
    memset(out, 0, sizeof(*out));
    const char *why;
    if ((why = plan_store_check_name(req->name)))
        return plan_fail(ctx, PLAN_ERR_INVALID, "invalid name '%s': %s", req->name, why);
    if ((why = plan_store_check_version(req->version)))
        return plan_fail(ctx, PLAN_ERR_INVALID, "invalid version '%s': %s", req->version, why);
    if (req->n_plans < 2)
        return plan_fail(ctx, PLAN_ERR_INVALID, "a merge needs at least two plans, not %zu",
                         req->n_plans);
    merging g = {.ctx = ctx, .req = req};
    json_t **manifests = plan_xcalloc(req->n_plans, sizeof(json_t *));
    for (size_t i = 0; i < req->n_plans; i++)
        manifests[i] = load_manifest(ctx, req->plans[i].path);
    plan_strlist conflicts;
    plan_strlist_init(&conflicts);
    plan_merge_opts mo = {.strategy = req->strategy, .prefer = req->prefer,
                          .n_prefer = req->n_prefer,
                          .merge_file = req->merge_config ? merge_config_file : NULL,
                          .merge_arg = &g};
    plan_merge *m = NULL;
    json_t *manifest = NULL;
    int rc = plan_store_merge_begin(store, req->plans, req->n_plans, &mo, &conflicts, &m);
    if (!rc)
        manifest = merge_manifests(&g, store, manifests, &conflicts);
    if (!rc && conflicts.len)
        rc = conflict_error(ctx, req, &conflicts);
    if (!rc) {
        json_t *refs = json_array();
        const plan_strlist *r = plan_merge_references(m);
        for (size_t i = 0; i < r->len; i++)
            json_array_append_new(refs, json_string(r->items[i]));
        json_object_set_new(manifest, "references", refs);
        char *text = json_dumps(manifest, JSON_INDENT(2) | JSON_SORT_KEYS);
        rc = text ? plan_merge_add_file(m, ".plan/manifest.json", text, strlen(text))
                  : plan_fail(ctx, PLAN_ERR_FAILED, "cannot write the merged manifest");
        free(text);
    }
    if (!rc) {
        out->stats = *plan_merge_get_stats(m);
        out->n_references = plan_merge_references(m)->len;
        plan_output_result res;
        rc = plan_store_merge_finish(store, m, req->name, req->version, &res);
        m = NULL;
        if (!rc) {
            out->path = res.path;
            out->existed = res.existed;
        }
    }
    plan_store_merge_abort(m);
    json_decref(manifest);
    for (size_t i = 0; i < req->n_plans; i++)
        json_decref(manifests[i]);
    free(manifests);
    plan_strlist_release(&conflicts);
    return rc;
}

/* ---------- reading a lineage back ---------- */

static void lineage_from_json(plan_store *store, json_t *arr, plan_lineage **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr) || !json_array_size(arr))
        return;
    plan_lineage *l = plan_xcalloc(json_array_size(arr), sizeof(*l));
    size_t k = 0, i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *version = json_string_value(json_object_get(e, "version"));
        const char *hash = json_string_value(json_object_get(e, "content_hash"));
        plan_hash h;
        /* A manifest may come from anywhere: what does not add up is left
         * out rather than shown wrong. */
        if (!name || !version || !hash || plan_store_check_name(name) ||
            plan_store_check_version(version) || plan_hash_parse(hash, &h))
            continue;
        char digest[PLAN_DIGEST_CHARS + 1];
        plan_store_digest(plan_store_dir(store), name, version, &h, digest);
        plan_lineage *x = &l[k++];
        x->name = plan_xstrdup(name);
        x->version = plan_xstrdup(version);
        x->content_hash = plan_xstrdup(hash);
        x->basename = plan_xasprintf("%s-%s-%s", digest, name, version);
        char *resolved = NULL;
        x->present = plan_store_resolve(store, x->basename, &resolved) == 0;
        free(resolved);
        plan_ctx_clear_error(plan_store_ctx(store));
        lineage_from_json(store, json_object_get(e, "lineage"), &x->parts, &x->n_parts);
    }
    *out = l;
    *n = k;
}

int plan_lineage_read(plan_store *store, const char *path, plan_lineage **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char *file = plan_xasprintf("%s/.plan/manifest.json", path);
    json_t *m = json_load_file(file, JSON_REJECT_DUPLICATES, NULL);
    free(file);
    if (json_is_object(m))
        lineage_from_json(store, json_object_get(m, "lineage"), out, n);
    json_decref(m);
    return 0;
}

void plan_lineage_free(plan_lineage *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].name);
        free(l[i].version);
        free(l[i].content_hash);
        free(l[i].basename);
        plan_lineage_free(l[i].parts, l[i].n_parts);
    }
    free(l);
}
