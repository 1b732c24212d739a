/* A plan's dynamic configuration against its schema: reading the schema
 * from a manifest, finding which store path gives a name its schema,
 * validating values, and materialising the effective configuration into a
 * run (docs/commands/config.md). */
#include "recipes_int.h"

#include <errno.h>
#include <jansson.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OVERRIDE_MAX_BYTES (1u << 20)

/* ---- the schema in a manifest ---- */

static void key_release(plan_recipe_config *k)
{
    free(k->key);
    free(k->type);
    free(k->default_value);
    free(k->description);
    plan_strlist_release(&k->allowed);
    free(k->env);
    free(k->file);
}

void plan_config_schema_release(plan_config_schema *s)
{
    for (size_t i = 0; i < s->n; i++)
        key_release(&s->keys[i]);
    free(s->keys);
    free(s->path);
    memset(s, 0, sizeof(*s));
}

static char *opt_string(json_t *o, const char *field)
{
    const char *v = json_string_value(json_object_get(o, field));
    return v ? plan_xstrdup(v) : NULL;
}

/* What is wrong with a key read back from a manifest, or NULL.  A
 * manifest may come from an imported archive: its declarations must obey
 * the recipe's rules before anything is written where they say. */
static char *manifest_key_problem(const plan_recipe_config *k, json_t *decl)
{
    static const char *const types[] = {"string", "int", "bool", "path", NULL};
    if (!recipe_config_key_ok(k->key))
        return plan_xstrdup("the key is not a name (letters, digits, _ -)");
    bool known = false;
    for (size_t i = 0; k->type && types[i]; i++)
        known |= !strcmp(k->type, types[i]);
    if (!known)
        return plan_xstrdup("'type' is not string, int, bool or path");
    json_t *allowed = json_object_get(decl, "allowed");
    if (allowed && !json_is_array(allowed))
        return plan_xstrdup("'allowed' is not a list");
    if (k->env && !recipe_config_env_ok(k->env))
        return plan_xasprintf("'env' is not a variable name outside PLAN_*: '%s'", k->env);
    const char *why = k->file ? recipe_config_file_problem(k->file) : NULL;
    if (why)
        return plan_xasprintf("'file' '%s' is not %s", k->file, why);
    plan_recipe_config typed = *k;
    plan_strlist_init(&typed.allowed); /* each allowed value fits the type */
    for (size_t i = 0; i < k->allowed.len; i++) {
        char *bad = plan_config_check_value(&typed, k->allowed.items[i]);
        if (bad) {
            char *msg = plan_xasprintf("allowed value '%s': %s", k->allowed.items[i], bad);
            free(bad);
            return msg;
        }
    }
    return k->default_value ? plan_config_check_value(k, k->default_value) : NULL;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(((const plan_recipe_config *)a)->key, ((const plan_recipe_config *)b)->key);
}

int plan_config_schema_load(plan_ctx *ctx, const char *plan_path, plan_config_schema *out)
{
    memset(out, 0, sizeof(*out));
    out->path = plan_xstrdup(plan_path);
    char *mf = plan_xasprintf("%s/.plan/manifest.json", plan_path);
    struct stat st;
    if (stat(mf, &st) != 0) {
        free(mf);
        return 0; /* added with 'plan store add': no schema */
    }
    json_error_t err;
    json_t *m = json_load_file(mf, JSON_REJECT_DUPLICATES, &err);
    if (!m) {
        int rc = plan_fail(ctx, PLAN_ERR_CORRUPT, "cannot read the manifest '%s': %s", mf,
                           err.text);
        free(mf);
        plan_config_schema_release(out);
        return rc;
    }
    json_t *config = json_object_get(m, "config");
    size_t count = json_is_object(config) ? json_object_size(config) : 0;
    out->keys = plan_xcalloc(count ? count : 1, sizeof(*out->keys));
    const char *name;
    json_t *decl;
    int rc = 0;
    json_object_foreach(config, name, decl) {
        plan_recipe_config *k = &out->keys[out->n++];
        k->key = plan_xstrdup(name);
        k->type = opt_string(decl, "type");
        k->default_value = opt_string(decl, "default");
        k->description = opt_string(decl, "description");
        k->env = opt_string(decl, "env");
        k->file = opt_string(decl, "file");
        k->secret = json_is_true(json_object_get(decl, "secret"));
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(decl, "allowed"), i, v) {
            if (json_is_string(v))
                plan_strlist_add(&k->allowed, json_string_value(v));
        }
        char *why = json_is_object(decl) ? manifest_key_problem(k, decl)
                                         : plan_xstrdup("it is not an object");
        if (why) {
            rc = plan_fail(ctx, PLAN_ERR_CORRUPT,
                           "the manifest '%s' declares config key '%s' badly: %s", mf, name, why);
            free(why);
            break;
        }
    }
    json_decref(m);
    free(mf);
    if (rc) {
        plan_config_schema_release(out);
        return rc;
    }
    qsort(out->keys, out->n, sizeof(*out->keys), compare_keys);
    return 0;
}

const plan_recipe_config *plan_config_schema_key(const plan_config_schema *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->keys[i].key, key))
            return &s->keys[i];
    return NULL;
}

/* ---- which store path gives a name its schema ---- */

/* The plan named name in the profile's current generation into *path
 * (caller frees), or NULL when the profile does not exist or lacks it. */
static int profile_plan(plan_store *store, const char *profile, const char *name, char **path)
{
    plan_ctx *ctx = plan_store_ctx(store);
    plan_profile *p = NULL;
    *path = NULL;
    int rc = plan_profile_open(store, profile, false, &p);
    if (rc == PLAN_ERR_NOT_FOUND) {
        plan_ctx_clear_error(ctx); /* no such profile: look in the store */
        return 0;
    }
    if (rc)
        return rc;
    plan_generation *gens = NULL;
    size_t n = 0;
    rc = plan_profile_generations(p, &gens, &n);
    for (size_t i = 0; !rc && i < n && !*path; i++) {
        ssize_t k = gens[i].current ? plan_strlist_index(&gens[i].pkg_names, name) : -1;
        if (k >= 0)
            *path = plan_path_join(plan_store_dir(store), gens[i].pkg_paths.items[k]);
    }
    plan_generations_free(gens, n);
    plan_profile_close(p);
    return rc;
}

/* Does candidate b beat a (both of the same name)?  Higher SemVer wins; a
 * valid version beats one that is not; then the later registration. */
static bool newer(const plan_path_info *a, const plan_path_info *b)
{
    char *why_a = recipe_check_version(a->version), *why_b = recipe_check_version(b->version);
    int cmp = 0;
    if (!why_a && !why_b)
        cmp = recipe_version_compare(b->version, a->version);
    else if (!why_a != !why_b)
        cmp = why_b ? -1 : 1;
    free(why_a);
    free(why_b);
    if (cmp)
        return cmp > 0;
    if (a->registered != b->registered)
        return b->registered > a->registered;
    return strcmp(b->basename, a->basename) > 0;
}

/* The name part of a basename <digest>-<name>-<version>, compared. */
static bool basename_has_name(const char *basename, const char *name)
{
    size_t n = strlen(name);
    if (strlen(basename) < PLAN_DIGEST_CHARS + 1)
        return false;
    const char *rest = basename + PLAN_DIGEST_CHARS + 1;
    return !strncmp(rest, name, n) && rest[n] == '-' && rest[n + 1] >= '0' && rest[n + 1] <= '9';
}

int plan_config_find_plan(plan_store *store, const char *name, const char *profile,
                          char **path)
{
    *path = NULL;
    int rc = profile ? profile_plan(store, profile, name, path) : 0;
    if (rc || *path)
        return rc;
    plan_strlist all;
    plan_strlist_init(&all);
    rc = plan_store_list(store, &all);
    plan_path_info *best = NULL;
    for (size_t i = 0; !rc && i < all.len; i++) {
        if (!basename_has_name(all.items[i], name))
            continue;
        plan_path_info *info = NULL;
        if ((rc = plan_store_path_info(store, all.items[i], &info)))
            break;
        if (!best || newer(best, info)) {
            plan_path_info_free(best);
            best = info;
        } else {
            plan_path_info_free(info);
        }
    }
    plan_strlist_release(&all);
    if (!rc && !best)
        rc = plan_fail(plan_store_ctx(store), PLAN_ERR_NOT_FOUND,
                       "no plan named '%s' is installed or in the store, so its configuration "
                       "schema is unknown: install or build it first, or name a store path "
                       "with --path",
                       name);
    if (!rc)
        *path = plan_xstrdup(best->path);
    plan_path_info_free(best);
    return rc;
}

/* ---- validation ---- */

static int unknown_key(plan_ctx *ctx, const char *name, const plan_config_schema *schema,
                       const char *key)
{
    if (!schema->n)
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "'%s' declares no configuration (the manifest of '%s' has no 'config'), "
                         "so it has no key '%s'",
                         name, schema->path, key);
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    plan_buf keys;
    plan_buf_init(&keys);
    for (size_t i = 0; i < schema->n; i++) {
        size_t d = plan_edit_distance(key, schema->keys[i].key);
        if (d < best_d) {
            best_d = d;
            best = schema->keys[i].key;
        }
        plan_buf_printf(&keys, "%s%s", i ? ", " : "", schema->keys[i].key);
    }
    int rc = best_d <= 2
                 ? plan_fail(ctx, PLAN_ERR_INVALID,
                             "'%s' has no config key '%s'; did you mean '%s'? (its keys: %s)", name,
                             key, best, keys.data)
                 : plan_fail(ctx, PLAN_ERR_INVALID, "'%s' has no config key '%s'; its keys: %s",
                             name, key, keys.data);
    plan_buf_release(&keys);
    return rc;
}

int plan_config_validate(plan_ctx *ctx, const char *name, const plan_config_schema *schema,
                         const char *key, const char *value, bool secret)
{
    const plan_recipe_config *k = plan_config_schema_key(schema, key);
    if (!k)
        return unknown_key(ctx, name, schema, key);
    char *why = plan_config_check_value(k, value);
    if (!why)
        return 0;
    int rc = secret || k->secret
                 ? plan_fail(ctx, PLAN_ERR_INVALID,
                             "config key '%s' of '%s': %s (the value given, a secret, is not "
                             "shown)",
                             key, name, why)
                 : plan_fail(ctx, PLAN_ERR_INVALID, "config key '%s' of '%s': %s, found '%s'",
                             key, name, why, value);
    free(why);
    return rc;
}

/* ---- the override file ---- */

typedef struct override_entry {
    char *key, *value;
} override_entry;

typedef struct overrides {
    override_entry *items;
    size_t n;
} overrides;

static void overrides_release(overrides *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->items[i].key);
        free(o->items[i].value);
    }
    free(o->items);
    memset(o, 0, sizeof(*o));
}

static const char *override_value(const overrides *o, const char *key)
{
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->items[i].key, key))
            return o->items[i].value;
    return NULL;
}

static void scalar_pos(struct fy_node *n, int *line, int *col)
{
    struct fy_token *t = n && fy_node_is_scalar(n) ? fy_node_get_scalar_token(n) : NULL;
    const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
    *line = m ? m->line + 1 : 1;
    *col = m ? m->column + 1 : 1;
}

static int override_entries(plan_ctx *ctx, const char *file, struct fy_node *root, overrides *out)
{
    if (!root || !fy_node_is_mapping(root) || fy_node_is_alias(root))
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "%s: an override file is a mapping of config keys to values, such as "
                         "{\"repeat\": 3} or 'repeat: 3'",
                         file);
    int count = fy_node_mapping_item_count(root);
    out->items = plan_xcalloc((size_t)(count > 0 ? count : 1), sizeof(*out->items));
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(root, &it))) {
        struct fy_node *k = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);
        int line, col;
        const char *key = k && fy_node_is_scalar(k) && !fy_node_is_alias(k)
                              ? fy_node_get_scalar0(k)
                              : NULL;
        if (!key) {
            scalar_pos(k, &line, &col);
            return plan_fail(ctx, PLAN_ERR_INVALID, "%s:%d:%d: config keys are plain strings",
                             file, line, col);
        }
        if (!v || !fy_node_is_scalar(v) || fy_node_is_alias(v)) {
            scalar_pos(k, &line, &col);
            return plan_fail(ctx, PLAN_ERR_INVALID,
                             "%s:%d:%d: the value of '%s' must be a single value (text, a number "
                             "or true/false), not a list, a mapping or an alias",
                             file, line, col, key);
        }
        const char *value = fy_node_get_scalar0(v);
        out->items[out->n++] = (override_entry){plan_xstrdup(key),
                                                plan_xstrdup(value ? value : "")};
    }
    return 0;
}

/* Read file (JSON or YAML: JSON is read as the YAML it is) into out. */
static int overrides_load(plan_ctx *ctx, const char *file, overrides *out)
{
    memset(out, 0, sizeof(*out));
    plan_buf text;
    plan_buf_init(&text);
    int e = plan_fs_read_file(file, OVERRIDE_MAX_BYTES, &text);
    if (e) {
        plan_buf_release(&text);
        return e == -EFBIG ? plan_fail(ctx, PLAN_ERR_INVALID,
                                       "%s: larger than 1 MiB; that is not a configuration", file)
                           : plan_fail_errno(ctx, PLAN_ERR_IO, -e,
                                             "cannot read the override file '%s'", file);
    }
    if (strlen(text.data) != text.len) {
        plan_buf_release(&text);
        return plan_fail(ctx, PLAN_ERR_INVALID, "%s: holds a NUL byte; an override file is text",
                         file);
    }
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag) {
        plan_buf_release(&text);
        return plan_fail(ctx, PLAN_ERR_FAILED, "libfyaml failed to initialise");
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET, .diag = diag};
    struct fy_document *doc = fy_document_build_from_string(&cfg, text.data, text.len);
    int rc;
    if (!doc) {
        void *it = NULL;
        struct fy_diag_error *err = fy_diag_errors_iterate(diag, &it);
        rc = err ? plan_fail(ctx, PLAN_ERR_INVALID, "%s:%d:%d: not valid JSON or YAML: %s", file,
                             err->line, err->column, err->msg)
                 : plan_fail(ctx, PLAN_ERR_INVALID, "%s: not valid JSON or YAML", file);
    } else {
        rc = override_entries(ctx, file, fy_document_root(doc), out);
        fy_document_destroy(doc);
    }
    fy_diag_destroy(diag);
    plan_buf_release(&text);
    if (rc)
        overrides_release(out);
    return rc;
}

/* ---- materialising ---- */

void plan_run_config_release(plan_run_config *c)
{
    plan_strlist_release(&c->env_names);
    plan_strlist_release(&c->env_values);
    memset(c, 0, sizeof(*c));
}

static void add_env(plan_run_config *out, const char *name, const char *value)
{
    ssize_t i = plan_strlist_index(&out->env_names, name);
    if (i >= 0) {
        free(out->env_values.items[i]);
        out->env_values.items[i] = plan_xstrdup(value);
        return;
    }
    plan_strlist_add(&out->env_names, name);
    plan_strlist_add(&out->env_values, value);
}

/* Write value to dir/rel (parents made 0700), mode 0600 for a secret. */
static int write_value(plan_ctx *ctx, const char *dir, const char *rel, const char *value,
                       bool secret)
{
    char *path = plan_path_join(dir, rel);
    char *slash = strrchr(path, '/');
    int e = 0;
    if (slash) {
        *slash = '\0';
        e = plan_fs_mkdirs(path, 0700);
        *slash = '/';
    }
    if (!e)
        e = plan_fs_write_atomic(path, value, strlen(value), secret ? 0600 : 0644);
    int rc = e ? plan_fail_errno(ctx, PLAN_ERR_IO, -e, "cannot write the configuration file '%s'",
                                 path)
               : 0;
    free(path);
    return rc;
}

static json_t *typed_json(const plan_recipe_config *k, const char *value)
{
    if (!strcmp(k->type, "int"))
        return json_integer((json_int_t)strtoll(value, NULL, 10));
    if (!strcmp(k->type, "bool"))
        return json_boolean(!strcmp(value, "true"));
    return json_string(value);
}

typedef struct effective {
    const char *value;
    bool secret;
} effective;

/* The value each schema key has in this run, checked. */
static int effective_values(plan_ctx *ctx, const char *name, const plan_config_schema *schema,
                            const plan_config_state *state, const overrides *ov, effective *eff)
{
    for (size_t i = 0; i < schema->n; i++) {
        const plan_recipe_config *k = &schema->keys[i];
        const plan_config_value *stored = plan_config_state_get(state, k->key);
        const char *o = override_value(ov, k->key);
        bool secret = k->secret || (stored && stored->secret);
        eff[i] = (effective){o ? o : stored ? stored->value : k->default_value, secret};
        if (!eff[i].value)
            return plan_fail(ctx, PLAN_ERR_INVALID,
                             "config key '%s' of '%s' has no value and no default: set it with "
                             "'plan config set %s %s VALUE%s'",
                             k->key, name, name, k->key, k->secret ? " --secret" : "");
        /* A stored value was checked against the schema of its day; the
         * plan may have changed since. */
        char *why = !o && stored ? plan_config_check_value(k, stored->value) : NULL;
        if (why) {
            int rc = plan_fail(ctx, PLAN_ERR_INVALID,
                               "config key '%s' of '%s': the value set in version %lld no longer "
                               "fits the plan at '%s' (%s); change it with 'plan config set %s %s "
                               "VALUE'",
                               k->key, name, (long long)stored->version, schema->path, why, name,
                               k->key);
            free(why);
            return rc;
        }
    }
    return 0;
}

static int write_run_config(plan_ctx *ctx, const plan_config_schema *schema,
                            const effective *eff, const char *config_dir, plan_run_config *out)
{
    json_t *all = json_object();
    int rc = 0;
    for (size_t i = 0; i < schema->n && !rc; i++) {
        const plan_recipe_config *k = &schema->keys[i];
        if (eff[i].secret) {
            /* A secret is a file of its own, and in the environment (which
             * every child inherits and 'ps e' shows) only where the recipe
             * asks for it with 'env'. */
            char *rel = plan_xasprintf("secrets/%s", k->key);
            rc = write_value(ctx, config_dir, rel, eff[i].value, true);
            free(rel);
        } else {
            char *var = recipe_config_env_name(k->key);
            json_object_set_new(all, k->key, typed_json(k, eff[i].value));
            add_env(out, var, eff[i].value);
            free(var);
        }
        if (!rc && k->file)
            rc = write_value(ctx, config_dir, k->file, eff[i].value, eff[i].secret);
        if (!rc && k->env)
            add_env(out, k->env, eff[i].value);
    }
    char *text = json_dumps(all, JSON_SORT_KEYS | JSON_INDENT(2));
    json_decref(all);
    if (!rc)
        rc = write_value(ctx, config_dir, "config.json", text, false);
    free(text);
    return rc;
}

static int make_config_dir(plan_ctx *ctx, const char *dir)
{
    int e = plan_fs_mkdirs(dir, 0700);
    if (!e && chmod(dir, 0700) != 0)
        e = -errno;
    return e ? plan_fail_errno(ctx, PLAN_ERR_IO, -e, "cannot create the configuration folder '%s'",
                               dir)
             : 0;
}

int plan_config_materialise(plan_store *store, const char *name, const char *plan_path,
                            const char *config_dir, const char *override_file,
                            plan_run_config *out)
{
    plan_ctx *ctx = plan_store_ctx(store);
    memset(out, 0, sizeof(*out));
    plan_config_schema schema;
    plan_config_state state;
    overrides ov = {0};
    memset(&state, 0, sizeof(state));
    int rc = plan_config_schema_load(ctx, plan_path, &schema);
    if (rc)
        return rc;
    if (!(rc = plan_store_config_state(store, name, 0, true, &state)) && override_file)
        rc = overrides_load(ctx, override_file, &ov);
    for (size_t i = 0; !rc && i < ov.n; i++) {
        const plan_config_value *stored = plan_config_state_get(&state, ov.items[i].key);
        if ((rc = plan_config_validate(ctx, name, &schema, ov.items[i].key, ov.items[i].value,
                                       stored && stored->secret)))
            plan_fail_wrap(ctx, rc, "%s", override_file);
    }
    effective *eff = plan_xcalloc(schema.n ? schema.n : 1, sizeof(*eff));
    if (!rc)
        rc = effective_values(ctx, name, &schema, &state, &ov, eff);
    if (!rc)
        rc = make_config_dir(ctx, config_dir);
    if (!rc)
        rc = write_run_config(ctx, &schema, eff, config_dir, out);
    if (!rc) {
        char version[32];
        snprintf(version, sizeof(version), "%lld", (long long)state.version);
        /* Not PLAN_CONFIG_*: that is the keys' namespace. */
        add_env(out, "PLAN_RUN_CONFIG", config_dir);
        add_env(out, "PLAN_RUN_CONFIG_VERSION", version);
        out->version = state.version;
        out->overridden = override_file != NULL;
    }
    free(eff);
    overrides_release(&ov);
    plan_config_state_release(&state);
    plan_config_schema_release(&schema);
    if (rc)
        plan_run_config_release(out);
    return rc;
}
