/* Recipe parsing and validation with libfyaml.  Every error points at
 * file:line:column, names the field, says what was expected and, where one
 * helps, gives a hint (docs/formats/recipe.md). */
#include "recipes.h"
#include "recipes_int.h"

#include <ctype.h>
#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECIPE_MAX_BYTES (1u << 20)

typedef struct parser {
    plan_ctx *ctx;
    const char *file;
    plan_recipe *r;       /* a recipe being parsed */
    plan_project *proj;   /* or a plan.yaml */
    bool config;          /* the configuration file: 'recipes' only */
} parser;

/* Position of a node: scalars carry a token; for collections, the first
 * scalar inside stands in. */
static void node_pos(struct fy_node *n, int *line, int *col)
{
    *line = 1;
    *col = 1;
    while (n) {
        if (fy_node_is_scalar(n)) {
            struct fy_token *t = fy_node_get_scalar_token(n);
            const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
            if (m) {
                *line = m->line + 1;
                *col = m->column + 1;
            }
            return;
        }
        void *it = NULL;
        if (fy_node_is_mapping(n)) {
            struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
            n = p ? fy_node_pair_key(p) : NULL;
        } else {
            n = fy_node_sequence_iterate(n, &it);
        }
    }
}

static int perr(parser *p, struct fy_node *at, const char *fmt, ...) PLAN_PRINTF(3, 4);
static int perr(parser *p, struct fy_node *at, const char *fmt, ...)
{
    int line, col;
    node_pos(at, &line, &col);
    plan_buf b;
    plan_buf_init(&b);
    plan_buf_printf(&b, "%s:%d:%d: ", p->file, line, col);
    va_list ap;
    va_start(ap, fmt);
    plan_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    plan_fail(p->ctx, PLAN_ERR_INVALID, "%s", b.data);
    plan_buf_release(&b);
    return PLAN_ERR_INVALID;
}

static const char *node_kind(struct fy_node *n)
{
    if (!n)
        return "nothing";
    if (fy_node_is_alias(n))
        return "an alias";
    if (fy_node_is_mapping(n))
        return "a mapping";
    if (fy_node_is_sequence(n))
        return "a list";
    return "a scalar";
}

/* A scalar as a string.  Aliases are refused everywhere: recipes have no
 * use for them and they are how YAML bombs are built. */
static int get_string(parser *p, struct fy_node *v, const char *field, char **out)
{
    if (!v || !fy_node_is_scalar(v) || fy_node_is_alias(v))
        return perr(p, v, "field '%s': expected a string, found %s", field, node_kind(v));
    const char *s = fy_node_get_scalar0(v);
    if (!s)
        return perr(p, v, "field '%s': expected a string", field);
    *out = plan_xstrdup(s);
    return 0;
}

static int expect_kind(parser *p, struct fy_node *v, const char *field, bool mapping,
                       const char *example)
{
    bool ok = v && !fy_node_is_alias(v) && (mapping ? fy_node_is_mapping(v) : fy_node_is_sequence(v));
    if (!ok)
        return perr(p, v, "field '%s': expected %s, found %s; for example:\n%s", field,
                    mapping ? "a mapping" : "a list", node_kind(v), example);
    return 0;
}

static const char *key_of(struct fy_node_pair *pair)
{
    struct fy_node *k = fy_node_pair_key(pair);
    return k && fy_node_is_scalar(k) && !fy_node_is_alias(k) ? fy_node_get_scalar0(k) : NULL;
}

/* "unknown field 'x'" with the nearest known one. */
static int unknown_key(parser *p, struct fy_node *at, const char *where, const char *key,
                       const char *const *known)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; known[i]; i++) {
        size_t d = plan_edit_distance(key, known[i]);
        /* A shortened name ("strip" for "strip-components") is close too. */
        if (strlen(key) >= 3 && !strncmp(known[i], key, strlen(key)))
            d = d < 1 ? d : 1;
        if (d < best_d) {
            best_d = d;
            best = known[i];
        }
    }
    plan_buf list;
    plan_buf_init(&list);
    for (size_t i = 0; known[i]; i++)
        plan_buf_printf(&list, "%s%s", i ? ", " : "", known[i]);
    int rc;
    if (best && best_d <= 2)
        rc = perr(p, at, "unknown field '%s'%s; did you mean '%s'?", key, where, best);
    else
        rc = perr(p, at, "unknown field '%s'%s; known fields: %s", key, where, list.data);
    plan_buf_release(&list);
    return rc;
}

static bool is_identifier(const char *s, bool upper_ok)
{
    if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || (!upper_ok && *s == '-')))
            return false;
    return true;
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* A relative path that stays below its base: no '/', '..' or empty parts. */
static bool is_inner_path(const char *s)
{
    if (!*s || *s == '/')
        return false;
    const char *c = s;
    while (*c) {
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 0 || (n == 2 && !strncmp(c, "..", 2)))
            return false;
        c += n;
        if (*c)
            c++;
    }
    return true;
}

/* A path of inner parts with no '.' part either ("a/./b" names "a/b", and
 * would slip past comparisons of the text). */
static bool is_plain_inner_path(const char *s)
{
    if (!is_inner_path(s))
        return false;
    for (const char *c = s; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 1 && *c == '.')
            return false;
        c += n;
        if (*c)
            c++;
    }
    return true;
}

/* ---------- sources ---------- */

static int parse_source(parser *p, struct fy_node *item, plan_recipe_source *src)
{
    static const char *const known[] = {"url", "path", "blake2b", "sha256",
                                        "strip-components", "dest", NULL};
    if (!fy_node_is_mapping(item) || fy_node_is_alias(item))
        return perr(p, item,
                    "field 'sources': each source is a mapping with 'url' (or 'path') and "
                    "'blake2b' (or 'sha256'), found %s",
                    node_kind(item));
    void *it = NULL;
    struct fy_node_pair *pair;
    int rc = 0;
    while (!rc && (pair = fy_node_mapping_iterate(item, &it))) {
        const char *k = key_of(pair);
        struct fy_node *v = fy_node_pair_value(pair);
        if (!k)
            rc = perr(p, fy_node_pair_key(pair), "field 'sources': keys must be plain strings");
        else if (!strcmp(k, "url"))
            rc = get_string(p, v, "sources.url", &src->url);
        else if (!strcmp(k, "path"))
            rc = get_string(p, v, "sources.path", &src->path);
        else if (!strcmp(k, "blake2b") || !strcmp(k, "sha256")) {
            if (src->algo)
                rc = perr(p, fy_node_pair_key(pair),
                          "field 'sources': give one hash, 'blake2b' or 'sha256', not both");
            else if (!(rc = get_string(p, v, k, &src->hash))) {
                src->algo = plan_xstrdup(k);
                if (!is_hex64(src->hash))
                    rc = perr(p, v,
                              "field 'sources.%s': expected 64 lower-case hex characters, "
                              "found '%s'; hint: 'plan store hash DIR' prints a directory's "
                              "blake2b, b2sum -l 256 or sha256sum a file's",
                              k, src->hash);
            }
        } else if (!strcmp(k, "strip-components")) {
            char *text = NULL, *end;
            if (!(rc = get_string(p, v, "sources.strip-components", &text))) {
                long n = strtol(text, &end, 10);
                if (*end || n < 0 || n > 16 || end == text)
                    rc = perr(p, v,
                              "field 'sources.strip-components': expected a number from 0 "
                              "to 16, found '%s'",
                              text);
                src->strip_components = (int)n;
            }
            free(text);
        } else if (!strcmp(k, "dest")) {
            if (!(rc = get_string(p, v, "sources.dest", &src->dest)) && !is_inner_path(src->dest))
                rc = perr(p, v,
                          "field 'sources.dest': expected a relative path inside the source "
                          "tree, found '%s'",
                          src->dest);
        } else {
            rc = unknown_key(p, fy_node_pair_key(pair), " in a source", k, known);
        }
    }
    if (rc)
        return rc;
    if (!src->url == !src->path)
        return perr(p, item, "field 'sources': each source needs exactly one of 'url' and "
                             "'path'");
    if (!src->hash)
        return perr(p, item,
                    "field 'sources': '%s' has no hash; add 'blake2b: <hex>' or 'sha256: "
                    "<hex>' (sources are verified before use)",
                    src->url ? src->url : src->path);
    if (src->url && strncmp(src->url, "file://", 7) && strncmp(src->url, "http://", 7) &&
        strncmp(src->url, "https://", 8))
        return perr(p, item,
                    "field 'sources.url': expected a file://, http:// or https:// URL, found "
                    "'%s'; for a local file or directory use 'path:'",
                    src->url);
    if (src->path && (src->path[0] == '\0'))
        return perr(p, item, "field 'sources.path': expected a path, found an empty string");
    return 0;
}

static int parse_sources(parser *p, struct fy_node *v)
{
    int rc = expect_kind(p, v, "sources", false,
                         "  sources:\n    - url: https://example.org/x-1.0.tar.gz\n"
                         "      sha256: <64 hex characters>");
    if (rc)
        return rc;
    int n = fy_node_sequence_item_count(v);
    p->r->sources = plan_xcalloc((size_t)(n > 0 ? n : 1), sizeof(plan_recipe_source));
    void *it = NULL;
    struct fy_node *item;
    while (!rc && (item = fy_node_sequence_iterate(v, &it)))
        rc = parse_source(p, item, &p->r->sources[p->r->n_sources++]);
    return rc;
}

/* ---------- dependencies ---------- */

static int parse_deps(parser *p, struct fy_node *v, const char *field, plan_recipe_dep **out,
                      size_t *n)
{
    int rc = expect_kind(p, v, field, true, "  depends:\n    zlib: ^1.3.0");
    if (rc)
        return rc;
    int count = fy_node_mapping_item_count(v);
    *out = plan_xcalloc((size_t)(count > 0 ? count : 1), sizeof(plan_recipe_dep));
    void *it = NULL;
    struct fy_node_pair *pair;
    while (!rc && (pair = fy_node_mapping_iterate(v, &it))) {
        const char *k = key_of(pair);
        const char *why;
        if (!k)
            return perr(p, fy_node_pair_key(pair), "field '%s': names must be plain strings",
                        field);
        if ((why = plan_store_check_name(k)))
            return perr(p, fy_node_pair_key(pair), "field '%s': '%s' is not a valid name: %s",
                        field, k, why);
        plan_recipe_dep *d = &(*out)[(*n)++];
        d->name = plan_xstrdup(k);
        struct fy_node *val = fy_node_pair_value(pair);
        if ((rc = get_string(p, val, field, &d->range)))
            return rc;
        char *bad = recipe_check_range(d->range);
        if (bad) {
            rc = perr(p, val,
                      "field '%s': '%s' for '%s' is not a valid SemVer range: %s; for "
                      "example '^1.2.0', '>=1.0.0 <2.0.0' or '*'",
                      field, d->range, k, bad);
            free(bad);
            return rc;
        }
    }
    return rc;
}

/* ---------- env, run, config, resources ---------- */

static int parse_env(parser *p, struct fy_node *v)
{
    int rc = expect_kind(p, v, "env", true,
                         "  env:\n    PATH: prepend bin\n    MYTOOL_HOME: set $out/share/mytool");
    if (rc)
        return rc;
    int count = fy_node_mapping_item_count(v);
    p->r->env = plan_xcalloc((size_t)(count > 0 ? count : 1), sizeof(plan_recipe_env));
    void *it = NULL;
    struct fy_node_pair *pair;
    while (!rc && (pair = fy_node_mapping_iterate(v, &it))) {
        const char *k = key_of(pair);
        if (!k || !is_identifier(k, true))
            return perr(p, fy_node_pair_key(pair),
                        "field 'env': '%s' is not a variable name (letters, digits, _)",
                        k ? k : "?");
        char *text = NULL;
        if ((rc = get_string(p, fy_node_pair_value(pair), "env", &text)))
            return rc;
        plan_recipe_env *e = &p->r->env[p->r->n_env++];
        e->name = plan_xstrdup(k);
        const char *val = text;
        if (!strncmp(text, "prepend ", 8)) {
            e->op = PLAN_ENV_PREPEND;
            val = text + 8;
        } else if (!strncmp(text, "append ", 7)) {
            e->op = PLAN_ENV_APPEND;
            val = text + 7;
        } else if (!strncmp(text, "set ", 4)) {
            e->op = PLAN_ENV_SET;
            val = text + 4;
        } else {
            e->op = PLAN_ENV_SET;
        }
        while (*val == ' ')
            val++;
        e->value = plan_xstrdup(val);
        free(text);
        if (e->op != PLAN_ENV_SET && !is_inner_path(e->value) && strcmp(e->value, "."))
            return perr(p, fy_node_pair_value(pair),
                        "field 'env.%s': '%s' needs a directory inside the plan, such as "
                        "'bin' or 'lib/pkgconfig', found '%s'",
                        k, e->op == PLAN_ENV_PREPEND ? "prepend" : "append", e->value);
    }
    return rc;
}

static int parse_run(parser *p, struct fy_node *v)
{
    int rc = expect_kind(p, v, "run", true,
                         "  run:\n    default: bin/server --port $PORT\n    migrate: bin/migrate");
    if (rc)
        return rc;
    int count = fy_node_mapping_item_count(v);
    p->r->run = plan_xcalloc((size_t)(count > 0 ? count : 1), sizeof(plan_recipe_entry));
    void *it = NULL;
    struct fy_node_pair *pair;
    while (!rc && (pair = fy_node_mapping_iterate(v, &it))) {
        const char *k = key_of(pair);
        if (!k || !is_identifier(k, false))
            return perr(p, fy_node_pair_key(pair),
                        "field 'run': '%s' is not an entry point name (letters, digits, _ -)",
                        k ? k : "?");
        plan_recipe_entry *e = &p->r->run[p->r->n_run++];
        e->name = plan_xstrdup(k);
        if ((rc = get_string(p, fy_node_pair_value(pair), "run", &e->command)))
            return rc;
        if (!e->command[0])
            return perr(p, fy_node_pair_value(pair), "field 'run.%s': the command is empty", k);
    }
    return rc;
}

static bool is_decimal_int64(const char *value)
{
    const char *d = value + (*value == '-' || *value == '+');
    if (!*d)
        return false;
    for (const char *c = d; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    errno = 0;
    char *end;
    long long n = strtoll(value, &end, 10);
    (void)n;
    return !errno && !*end;
}

char *plan_config_check_value(const plan_recipe_config *k, const char *value)
{
    if (!strcmp(k->type, "int") && !is_decimal_int64(value))
        return plan_xstrdup("expected an integer for type int");
    if (!strcmp(k->type, "bool") && strcmp(value, "true") && strcmp(value, "false"))
        return plan_xstrdup("expected true or false for type bool");
    if (k->allowed.len && plan_strlist_index(&k->allowed, value) < 0) {
        plan_buf b;
        plan_buf_init(&b);
        plan_buf_adds(&b, "expected one of ");
        for (size_t i = 0; i < k->allowed.len; i++)
            plan_buf_printf(&b, "%s'%s'", i ? ", " : "", k->allowed.items[i]);
        return plan_buf_detach(&b);
    }
    return NULL; /* string and path take any text */
}

bool recipe_config_env_ok(const char *env)
{
    return is_identifier(env, true) && strncmp(env, "PLAN_", 5) != 0;
}

bool recipe_config_key_ok(const char *key)
{
    return is_identifier(key, false);
}

char *recipe_config_env_name(const char *key)
{
    char *v = plan_xasprintf("PLAN_CONFIG_%s", key);
    for (char *c = v + 12; *c; c++)
        *c = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
    return v;
}

static int parse_config_allowed(parser *p, const char *key, struct fy_node *v,
                                plan_recipe_config *c)
{
    if (!v || fy_node_is_alias(v) || !fy_node_is_sequence(v) || !fy_node_sequence_item_count(v))
        return perr(p, v, "field 'config.%s.allowed': expected a non-empty list of values, "
                          "found %s; for example: allowed: [debug, info, warn]",
                    key, node_kind(v));
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(v, &it))) {
        char *value = NULL;
        int rc = get_string(p, item, "config.allowed", &value);
        if (rc)
            return rc;
        if (plan_strlist_contains(&c->allowed, value)) {
            rc = perr(p, item, "field 'config.%s.allowed': '%s' is listed twice", key, value);
            free(value);
            return rc;
        }
        plan_strlist_take(&c->allowed, value);
    }
    return 0;
}

/* Where a value is materialised must stay below the config directory and
 * clear of what plan writes there itself. */
const char *recipe_config_file_problem(const char *file)
{
    if (!is_plain_inner_path(file))
        return "a relative path below the configuration directory, with no empty, '.' or '..' "
               "part";
    if (!strcmp(file, "config.json") || !strcmp(file, "secrets") || !strncmp(file, "secrets/", 8))
        return "a path other than 'config.json' and 'secrets/', which plan writes itself";
    return NULL;
}

static int check_config_key(parser *p, const char *key, plan_recipe_config *c,
                            struct fy_node *at[5])
{
    enum { AT_TYPE, AT_DEFAULT, AT_ALLOWED, AT_ENV, AT_FILE };
    static const char *const types[] = {"string", "int", "bool", "path", NULL};
    if (!c->type)
        return perr(p, at[AT_TYPE], "field 'config.%s': 'type' is missing (string, int, bool or path)",
                    key);
    bool known_type = false;
    for (size_t i = 0; types[i]; i++)
        known_type |= !strcmp(types[i], c->type);
    if (!known_type)
        return perr(p, at[AT_TYPE], "field 'config.%s.type': expected string, int, bool or path, found '%s'",
                    key, c->type);
    /* The type first, on its own: an allowed list must fit it. */
    plan_strlist allowed = c->allowed;
    plan_strlist_init(&c->allowed);
    for (size_t i = 0; i < allowed.len; i++) {
        char *why = plan_config_check_value(c, allowed.items[i]);
        if (why) {
            struct fy_node *item = fy_node_sequence_get_by_index(at[AT_ALLOWED], (int)i);
            int rc = perr(p, item ? item : at[AT_ALLOWED], "field 'config.%s.allowed': %s, found '%s'",
                          key, why, allowed.items[i]);
            free(why);
            c->allowed = allowed;
            return rc;
        }
    }
    c->allowed = allowed;
    if (c->default_value && c->secret)
        return perr(p, at[AT_DEFAULT], "field 'config.%s.default': a secret has no default (the "
                                       "manifest is public); set it with 'plan config set NAME "
                                       "%s VALUE --secret'",
                    key, key);
    char *why = c->default_value ? plan_config_check_value(c, c->default_value) : NULL;
    if (why) {
        int rc = perr(p, at[AT_DEFAULT], "field 'config.%s.default': %s, found '%s'", key, why,
                      c->default_value);
        free(why);
        return rc;
    }
    if (c->env && !recipe_config_env_ok(c->env))
        return perr(p, at[AT_ENV], "field 'config.%s.env': expected a variable name (letters, "
                                   "digits, _) that does not start with PLAN_, found '%s'",
                    key, c->env);
    const char *fwhy = c->file ? recipe_config_file_problem(c->file) : NULL;
    if (fwhy)
        return perr(p, at[AT_FILE], "field 'config.%s.file': expected %s, found '%s'", key, fwhy,
                    c->file);
    return 0;
}

static int parse_config_key(parser *p, const char *key, struct fy_node *v,
                            plan_recipe_config *c)
{
    static const char *const known[] = {"type", "default", "description", "allowed", "env",
                                        "file", "secret", NULL};
    enum { AT_TYPE, AT_DEFAULT, AT_ALLOWED, AT_ENV, AT_FILE };
    c->key = plan_xstrdup(key);
    if (!fy_node_is_mapping(v) || fy_node_is_alias(v))
        return perr(p, v,
                    "field 'config.%s': expected a mapping with 'type', 'default' and "
                    "'description', found %s",
                    key, node_kind(v));
    void *it = NULL;
    struct fy_node_pair *pair;
    int rc = 0;
    struct fy_node *at[5] = {v, v, v, v, v};
    while (!rc && (pair = fy_node_mapping_iterate(v, &it))) {
        const char *k = key_of(pair);
        struct fy_node *val = fy_node_pair_value(pair);
        if (!k)
            rc = perr(p, fy_node_pair_key(pair), "field 'config.%s': keys must be strings", key);
        else if (!strcmp(k, "type")) {
            rc = get_string(p, val, "config.type", &c->type);
            at[AT_TYPE] = val;
        } else if (!strcmp(k, "default")) {
            rc = get_string(p, val, "config.default", &c->default_value);
            at[AT_DEFAULT] = val;
        } else if (!strcmp(k, "description"))
            rc = get_string(p, val, "config.description", &c->description);
        else if (!strcmp(k, "allowed")) {
            rc = parse_config_allowed(p, key, val, c);
            at[AT_ALLOWED] = val;
        } else if (!strcmp(k, "env")) {
            rc = get_string(p, val, "config.env", &c->env);
            at[AT_ENV] = val;
        } else if (!strcmp(k, "file")) {
            rc = get_string(p, val, "config.file", &c->file);
            at[AT_FILE] = val;
        } else if (!strcmp(k, "secret")) {
            char *b = NULL;
            if (!(rc = get_string(p, val, "config.secret", &b)) && strcmp(b, "true") &&
                strcmp(b, "false"))
                rc = perr(p, val, "field 'config.%s.secret': expected true or false, found '%s'",
                          key, b);
            c->secret = b && !strcmp(b, "true");
            free(b);
        } else
            rc = unknown_key(p, fy_node_pair_key(pair), " in a config key", k, known);
    }
    return rc ? rc : check_config_key(p, key, c, at);
}

/* Two keys must not meet in one variable or one file of the run. */
static int check_config_clashes(parser *p, struct fy_node *const *nodes)
{
    const plan_recipe *r = p->r;
    for (size_t i = 0; i < r->n_config; i++) {
        const plan_recipe_config *a = &r->config[i];
        char *auto_a = recipe_config_env_name(a->key);
        int rc = 0;
        for (size_t j = 0; j < i && !rc; j++) {
            const plan_recipe_config *b = &r->config[j];
            char *auto_b = recipe_config_env_name(b->key);
            if (!strcmp(auto_a, auto_b))
                rc = perr(p, nodes[i], "field 'config': '%s' and '%s' would both be %s; rename "
                                       "one",
                          b->key, a->key, auto_a);
            else if (a->env && b->env && !strcmp(a->env, b->env))
                rc = perr(p, nodes[i], "field 'config.%s.env': '%s' is already the variable of "
                                       "'%s'",
                          a->key, a->env, b->key);
            else if (a->file && b->file) {
                size_t la = strlen(a->file), lb = strlen(b->file);
                const char *s = la < lb ? a->file : b->file, *l = la < lb ? b->file : a->file;
                size_t ls = la < lb ? la : lb;
                if (!strcmp(a->file, b->file) || (!strncmp(s, l, ls) && l[ls] == '/'))
                    rc = perr(p, nodes[i], "field 'config.%s.file': '%s' clashes with the file "
                                           "'%s' of '%s'",
                              a->key, a->file, b->file, b->key);
            }
            free(auto_b);
        }
        free(auto_a);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_config(parser *p, struct fy_node *v)
{
    int rc = expect_kind(p, v, "config", true,
                         "  config:\n    port:\n      type: int\n      default: 8080\n"
                         "      description: the port to listen on");
    if (rc)
        return rc;
    int count = fy_node_mapping_item_count(v);
    p->r->config = plan_xcalloc((size_t)(count > 0 ? count : 1), sizeof(plan_recipe_config));
    struct fy_node **nodes = plan_xcalloc((size_t)(count > 0 ? count : 1), sizeof(*nodes));
    void *it = NULL;
    struct fy_node_pair *pair;
    while (!rc && (pair = fy_node_mapping_iterate(v, &it))) {
        const char *k = key_of(pair);
        if (!k || !is_identifier(k, false)) {
            rc = perr(p, fy_node_pair_key(pair),
                      "field 'config': '%s' is not a key name (letters, digits, _ -)",
                      k ? k : "?");
            break;
        }
        nodes[p->r->n_config] = fy_node_pair_key(pair);
        rc = parse_config_key(p, k, fy_node_pair_value(pair), &p->r->config[p->r->n_config++]);
    }
    if (!rc)
        rc = check_config_clashes(p, nodes);
    free(nodes);
    return rc;
}

const char *plan_resource_check(const char *key, const char *value, bool *known)
{
    *known = true;
    char *end;
    if (!strcmp(key, "cpu")) {
        double d = strtod(value, &end);
        return *end || end == value || !(d > 0) || d > 4096
                   ? "a number of CPUs such as 0.5 or 2" : NULL;
    }
    if (!strcmp(key, "mem")) {
        uint64_t size;
        return plan_parse_size(value, &size) != 0 || size == 0 ? "a size such as 512M or 2G"
                                                                : NULL;
    }
    bool nice = !strcmp(key, "nice");
    if (!nice && strcmp(key, "nofile") && strcmp(key, "nproc")) {
        *known = false;
        return NULL;
    }
    errno = 0;
    long n = strtol(value, &end, 10);
    if (*end || end == value || errno || (nice ? (n < -20 || n > 19) : (n < 1 || n > 1 << 24)))
        return nice ? "an integer from -20 to 19" : "a positive integer";
    return NULL;
}

static int parse_resources(parser *p, struct fy_node *v)
{
    static const char *const known[] = {"cpu", "mem", "nofile", "nproc", "nice", NULL};
    int rc = expect_kind(p, v, "resources", true, "  resources:\n    cpu: 2\n    mem: 512M");
    if (rc)
        return rc;
    plan_recipe_resources *res = &p->r->resources;
    void *it = NULL;
    struct fy_node_pair *pair;
    while (!rc && (pair = fy_node_mapping_iterate(v, &it))) {
        const char *k = key_of(pair);
        struct fy_node *val = fy_node_pair_value(pair);
        char **slot = NULL;
        if (k && !strcmp(k, "cpu")) slot = &res->cpu;
        else if (k && !strcmp(k, "mem")) slot = &res->mem;
        else if (k && !strcmp(k, "nofile")) slot = &res->nofile;
        else if (k && !strcmp(k, "nproc")) slot = &res->nproc;
        else if (k && !strcmp(k, "nice")) slot = &res->nice;
        else
            return unknown_key(p, fy_node_pair_key(pair), " in 'resources'", k ? k : "?", known);
        if ((rc = get_string(p, val, k, slot)))
            return rc;
        bool is_known;
        const char *expected = plan_resource_check(k, *slot, &is_known);
        if (expected)
            rc = perr(p, val, "field 'resources.%s': expected %s, found '%s'", k, expected,
                      *slot);
    }
    return rc;
}

/* ---------- workdir and state: where plan run works and what it keeps ---------- */

/* Names the run root itself uses (docs/commands/run.md#the-run-root). */
static const char *const run_root_names[] = {"env", "tmp", "config", NULL};

const char *plan_recipe_workdir_problem(const char *workdir)
{
    if (strcmp(workdir, ".") != 0 && !is_plain_inner_path(workdir))
        return "a directory relative to the run root, such as '.', 'data' or 'env/share/app'";
    return NULL;
}

const char *plan_recipe_state_problem(const char *s)
{
    bool ok = *s && strcmp(s, ".") && strcmp(s, "..") && strlen(s) <= 100;
    for (const char *c = s; ok && *c; c++)
        ok = isalnum((unsigned char)*c) || *c == '.' || *c == '_' || *c == '-';
    if (!ok)
        return "a directory name (letters, digits, . _ -) such as 'data'";
    for (size_t i = 0; run_root_names[i]; i++)
        if (!strcmp(s, run_root_names[i]))
            return "a name the run root does not use itself (env, tmp, config), such as 'data'";
    return NULL;
}

static int parse_workdir(parser *p, struct fy_node *v)
{
    int rc = get_string(p, v, "workdir", &p->r->workdir);
    const char *why = rc ? NULL : plan_recipe_workdir_problem(p->r->workdir);
    if (why)
        rc = perr(p, v, "field 'workdir': expected %s, found '%s'", why, p->r->workdir);
    return rc;
}

static int parse_state(parser *p, struct fy_node *v)
{
    int rc = get_string(p, v, "state", &p->r->state);
    const char *why = rc ? NULL : plan_recipe_state_problem(p->r->state);
    if (why)
        rc = perr(p, v, "field 'state': expected %s, found '%s'", why, p->r->state);
    return rc;
}

/* ---------- the top level ---------- */

static int parse_top(parser *p, struct fy_node *root)
{
    static const char *const known[] = {
        "name", "version", "summary", "license", "homepage", "sources", "depends",
        "build-depends", "build", "check", "env", "run", "config", "resources", "workdir",
        "state", NULL};
    if (!root || !fy_node_is_mapping(root))
        return perr(p, root, "a recipe is a mapping of fields (name, version, build, ...), "
                             "found %s; 'plan recipe new NAME' writes a template",
                    node_kind(root));
    plan_recipe *r = p->r;
    void *it = NULL;
    struct fy_node_pair *pair;
    int rc = 0;
    while (!rc && (pair = fy_node_mapping_iterate(root, &it))) {
        const char *k = key_of(pair);
        struct fy_node *v = fy_node_pair_value(pair);
        if (!k)
            rc = perr(p, fy_node_pair_key(pair), "field names must be plain strings");
        else if (!strcmp(k, "name"))
            rc = get_string(p, v, k, &r->name);
        else if (!strcmp(k, "version"))
            rc = get_string(p, v, k, &r->version);
        else if (!strcmp(k, "summary"))
            rc = get_string(p, v, k, &r->summary);
        else if (!strcmp(k, "license"))
            rc = get_string(p, v, k, &r->license);
        else if (!strcmp(k, "homepage"))
            rc = get_string(p, v, k, &r->homepage);
        else if (!strcmp(k, "sources"))
            rc = parse_sources(p, v);
        else if (!strcmp(k, "depends"))
            rc = parse_deps(p, v, k, &r->depends, &r->n_depends);
        else if (!strcmp(k, "build-depends"))
            rc = parse_deps(p, v, k, &r->build_depends, &r->n_build_depends);
        else if (!strcmp(k, "build"))
            rc = get_string(p, v, k, &r->build);
        else if (!strcmp(k, "check"))
            rc = get_string(p, v, k, &r->check);
        else if (!strcmp(k, "env"))
            rc = parse_env(p, v);
        else if (!strcmp(k, "run"))
            rc = parse_run(p, v);
        else if (!strcmp(k, "config"))
            rc = parse_config(p, v);
        else if (!strcmp(k, "resources"))
            rc = parse_resources(p, v);
        else if (!strcmp(k, "workdir"))
            rc = parse_workdir(p, v);
        else if (!strcmp(k, "state"))
            rc = parse_state(p, v);
        else
            rc = unknown_key(p, fy_node_pair_key(pair), "", k, known);
        if (!rc && !strcmp(k, "name")) {
            const char *why = plan_store_check_name(r->name);
            if (why)
                rc = perr(p, v, "field 'name': '%s' is not a valid name: %s", r->name, why);
        } else if (!rc && !strcmp(k, "version")) {
            char *why = recipe_check_version(r->version);
            if (why)
                rc = perr(p, v,
                          "field 'version': '%s' is not a valid version: %s; versions are "
                          "strict SemVer such as 1.2.3 or 2.0.0-rc.1",
                          r->version, why);
            free(why);
        }
    }
    if (rc)
        return rc;
    const char *missing = !r->name ? "name" : !r->version ? "version" : !r->build ? "build" : NULL;
    if (missing)
        return perr(p, root, "field '%s' is missing; every recipe needs name, version and build",
                    missing);
    return 0;
}

static int report_yaml_errors(parser *p, struct fy_diag *diag)
{
    void *it = NULL;
    struct fy_diag_error *e = fy_diag_errors_iterate(diag, &it);
    if (e)
        return plan_fail(p->ctx, PLAN_ERR_INVALID, "%s:%d:%d: not valid YAML: %s", p->file,
                         e->line, e->column, e->msg);
    return plan_fail(p->ctx, PLAN_ERR_INVALID, "%s: not valid YAML", p->file);
}

/* Length of the UTF-8 sequence at p (1-4), or 0 if it is not valid
 * (overlong forms, surrogates and values above U+10FFFF included). */
static size_t utf8_length(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, min = 0x10000;
    else return 0;
    if (n > left)
        return 0;
    unsigned v = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    return n;
}

/* Recipes are UTF-8 text without control characters or YAML directives.
 * Checked before libfyaml sees the input: besides giving a clear message,
 * this keeps inputs away from the parser that it is known to loop on
 * (a directive followed by invalid UTF-8, found by the fuzzer). */
static int check_text(plan_ctx *ctx, const char *file, const char *text, size_t len)
{
    int line = 1, col = 1;
    bool line_start = true, content = false;
    for (size_t i = 0; i < len;) {
        const unsigned char *p = (const unsigned char *)text + i;
        size_t n = utf8_length(p, len - i);
        if (!n)
            return plan_fail(ctx, PLAN_ERR_INVALID,
                             "%s:%d:%d: not valid UTF-8 (byte 0x%02x); recipes are UTF-8 text",
                             file, line, col, p[0]);
        if (n == 1 && (p[0] < 0x20 || p[0] == 0x7f) && p[0] != '\n' && p[0] != '\t' &&
            p[0] != '\r')
            return plan_fail(ctx, PLAN_ERR_INVALID,
                             "%s:%d:%d: control character 0x%02x; recipes are plain text", file,
                             line, col, p[0]);
        if (line_start && p[0] == '%')
            return plan_fail(ctx, PLAN_ERR_INVALID,
                             "%s:%d:1: YAML directives ('%%...') are not allowed here", file,
                             line);
        /* One document per file: libfyaml would read the first and quietly
         * drop the rest. */
        bool marker = line_start && len - i >= 3 &&
                      (!strncmp((const char *)p, "---", 3) || !strncmp((const char *)p, "...", 3)) &&
                      (len - i == 3 || p[3] == '\n' || p[3] == ' ' || p[3] == '\t' || p[3] == '\r');
        if (marker && content)
            return plan_fail(ctx, PLAN_ERR_INVALID,
                             "%s:%d:1: a second YAML document (or a document end); the file "
                             "must hold exactly one", file, line);
        if (line_start && !marker && p[0] != '#' && p[0] != '\n' && p[0] != ' ' &&
            p[0] != '\t' && p[0] != '\r')
            content = true;
        line_start = p[0] == '\n';
        if (p[0] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        i += n;
    }
    return 0;
}

static char *directory_of(const char *file)
{
    char *abs = plan_path_absolute(file);
    char *slash = abs ? strrchr(abs, '/') : NULL;
    if (slash && slash != abs) {
        *slash = '\0';
        return abs;
    }
    free(abs);
    return plan_xstrdup("/");
}

/* Check the text, build the document, hand its root to top. */
/* Nothing but blank lines and comments (libfyaml gives no document). */
static bool only_comments(const char *text, size_t len)
{
    bool comment = false;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '\n')
            comment = false;
        else if (ch == '#')
            comment = true;
        else if (!comment && ch != ' ' && ch != '\t' && ch != '\r')
            return false;
    }
    return true;
}

static int parse_document(parser *p, const char *text, size_t len,
                          int (*top)(parser *, struct fy_node *))
{
    if (len > RECIPE_MAX_BYTES)
        return plan_fail(p->ctx, PLAN_ERR_INVALID, "%s: larger than 1 MiB; that is not a %s",
                         p->file, p->proj ? "plan.yaml" : "recipe");
    int rc = check_text(p->ctx, p->file, text, len);
    if (rc)
        return rc;
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag)
        return plan_fail(p->ctx, PLAN_ERR_FAILED, "libfyaml failed to initialise");
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET, .diag = diag};
    struct fy_document *doc = fy_document_build_from_string(&cfg, text, len);
    if (!doc && p->config && only_comments(text, len)) {
        fy_diag_destroy(diag);
        return top(p, NULL); /* an empty configuration */
    }
    if (!doc) {
        rc = report_yaml_errors(p, diag);
    } else {
        rc = top(p, fy_document_root(doc));
        fy_document_destroy(doc);
    }
    fy_diag_destroy(diag);
    return rc;
}

int plan_recipe_parse(plan_ctx *ctx, const char *file, const char *text, size_t len,
                      plan_recipe **out)
{
    parser p = {.ctx = ctx, .file = file};
    p.r = plan_xcalloc(1, sizeof(plan_recipe));
    p.r->file = plan_xstrdup(file);
    p.r->dir = directory_of(file);
    int rc = parse_document(&p, text, len, parse_top);
    if (rc) {
        plan_recipe_free(p.r);
        return rc;
    }
    *out = p.r;
    return 0;
}

int plan_recipe_load(plan_ctx *ctx, const char *file, plan_recipe **out)
{
    plan_buf text;
    plan_buf_init(&text);
    int r = plan_fs_read_file(file, RECIPE_MAX_BYTES, &text);
    int rc;
    if (r == -EFBIG)
        rc = plan_fail(ctx, PLAN_ERR_INVALID, "%s: larger than 1 MiB; that is not a recipe", file);
    else if (r)
        rc = plan_fail_errno(ctx, r == -ENOENT ? PLAN_ERR_NOT_FOUND : PLAN_ERR_IO, -r,
                             "cannot read recipe '%s'", file);
    else
        rc = plan_recipe_parse(ctx, file, text.data, text.len, out);
    plan_buf_release(&text);
    return rc;
}

static void free_deps(plan_recipe_dep *deps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(deps[i].name);
        free(deps[i].range);
    }
    free(deps);
}

void plan_recipe_free(plan_recipe *r)
{
    if (!r)
        return;
    free(r->file);
    free(r->dir);
    free(r->name);
    free(r->version);
    free(r->summary);
    free(r->license);
    free(r->homepage);
    for (size_t i = 0; i < r->n_sources; i++) {
        free(r->sources[i].url);
        free(r->sources[i].path);
        free(r->sources[i].algo);
        free(r->sources[i].hash);
        free(r->sources[i].dest);
    }
    free(r->sources);
    free_deps(r->depends, r->n_depends);
    free_deps(r->build_depends, r->n_build_depends);
    free(r->build);
    free(r->check);
    for (size_t i = 0; i < r->n_env; i++) {
        free(r->env[i].name);
        free(r->env[i].value);
    }
    free(r->env);
    for (size_t i = 0; i < r->n_run; i++) {
        free(r->run[i].name);
        free(r->run[i].command);
    }
    free(r->run);
    for (size_t i = 0; i < r->n_config; i++) {
        free(r->config[i].key);
        free(r->config[i].type);
        free(r->config[i].default_value);
        free(r->config[i].description);
        plan_strlist_release(&r->config[i].allowed);
        free(r->config[i].env);
        free(r->config[i].file);
    }
    free(r->config);
    free(r->resources.cpu);
    free(r->resources.mem);
    free(r->resources.nofile);
    free(r->resources.nproc);
    free(r->resources.nice);
    free(r->workdir);
    free(r->state);
    free(r);
}

char *plan_recipe_template(const char *name)
{
    return plan_xasprintf(
        "# Recipe for %s: see docs/formats/recipe.md for every field.\n"
        "name: %s\n"
        "version: 0.1.0            # strict SemVer\n"
        "summary: one line saying what %s is\n"
        "license: MIT\n"
        "homepage: https://example.org/%s\n"
        "\n"
        "# Sources are verified against their hash before use.  'path' is a local\n"
        "# file or directory relative to this recipe (blake2b of a directory is\n"
        "# what 'plan store hash DIR' prints); 'url' may be file://, http(s)://.\n"
        "sources:\n"
        "  - path: ../src/%s\n"
        "    blake2b: 0000000000000000000000000000000000000000000000000000000000000000\n"
        "#  - url: https://example.org/%s-0.1.0.tar.gz\n"
        "#    sha256: <64 hex characters>\n"
        "#    strip-components: 1\n"
        "\n"
        "# Run-time dependencies (name: SemVer range), built or fetched first.\n"
        "depends: {}\n"
        "# Needed only to build.\n"
        "build-depends: {}\n"
        "\n"
        "# The build runs in $src with a clean environment; install into $out.\n"
        "build: |\n"
        "  mkdir -p $out/bin\n"
        "  cp %s $out/bin/\n"
        "\n"
        "# Optional: a test run after the build; a failure fails the build.\n"
        "check: |\n"
        "  test -x $out/bin/%s\n"
        "\n"
        "# What the plan adds to an environment.\n"
        "env:\n"
        "  PATH: prepend bin\n"
        "\n"
        "# Entry points for 'plan run'.\n"
        "run:\n"
        "  default: bin/%s\n"
        "\n"
        "# Dynamic configuration, kept outside the store.\n"
        "config: {}\n"
        "\n"
        "# Default resource limits for 'plan run'.\n"
        "resources: {}\n",
        name, name, name, name, name, name, name, name, name);
}

/* ---------- plan.yaml ---------- */

static int parse_project_top(parser *p, struct fy_node *root)
{
    static const char *const known_project[] = {"packages", "recipes", "env", "prefer", NULL};
    static const char *const known_config[] = {"recipes", "durability", "registry-refresh",
                                               NULL};
    const char *const *known = p->config ? known_config : known_project;
    if (p->config && root && !fy_node_is_mapping(root))
        return perr(p, root, "the configuration is a mapping with 'recipes' (a list of "
                             "folders), found %s", node_kind(root));
    if (!root && p->config)
        return 0;
    if (!root || !fy_node_is_mapping(root))
        return perr(p, root, "a plan.yaml is a mapping with 'packages' (name: range), "
                             "'recipes' and 'env', found %s", node_kind(root));
    plan_project *pr = p->proj;
    void *it = NULL;
    struct fy_node_pair *pair;
    int rc = 0;
    bool have_packages = false;
    while (!rc && (pair = fy_node_mapping_iterate(root, &it))) {
        const char *k = key_of(pair);
        struct fy_node *v = fy_node_pair_value(pair);
        if (!k) {
            rc = perr(p, fy_node_pair_key(pair), "field names must be plain strings");
        } else if (p->config && strcmp(k, "recipes") != 0 && strcmp(k, "durability") != 0 &&
                   strcmp(k, "registry-refresh") != 0) {
            rc = unknown_key(p, fy_node_pair_key(pair), "", k, known);
        } else if (p->config && !strcmp(k, "registry-refresh")) {
            char *t = NULL, *end = NULL;
            long secs = -1;
            if (!(rc = get_string(p, v, "registry-refresh", &t))) {
                errno = 0;
                secs = strtol(t, &end, 10);
                if (!*t || *end || errno || secs < 0 || secs > 31536000)
                    rc = perr(p, v, "field 'registry-refresh': '%s' is not a number of seconds "
                                    "from 0 (ask the registries every time) to 31536000",
                              t);
            }
            free(t);
            if (!rc)
                pr->registry_refresh = secs;
        } else if (p->config && !strcmp(k, "durability")) {
            char *d = NULL;
            if (!(rc = get_string(p, v, "durability", &d)) && strcmp(d, "deferred") != 0 &&
                strcmp(d, "immediate") != 0)
                rc = perr(p, v, "field 'durability': '%s' is neither 'deferred' (the default: "
                                "nothing waits for the disk, and what a power cut damaged is "
                                "found and removed at the next start) nor 'immediate' (every "
                                "change is on disk before plan returns)",
                          d);
            if (rc)
                free(d);
            else
                pr->durability = d;
        } else if (!strcmp(k, "prefer")) {
            if ((rc = expect_kind(p, v, "prefer", false, "  prefer:\n    - greeter")))
                break;
            void *it2 = NULL;
            struct fy_node *item;
            while (!rc && (item = fy_node_sequence_iterate(v, &it2))) {
                char *name = NULL;
                if (!(rc = get_string(p, item, "prefer", &name)))
                    plan_strlist_take(&pr->prefer, name);
            }
        } else if (!strcmp(k, "packages")) {
            have_packages = true;
            rc = parse_deps(p, v, "packages", &pr->packages, &pr->n_packages);
        } else if (!strcmp(k, "recipes")) {
            if ((rc = expect_kind(p, v, "recipes", false, "  recipes:\n    - ./recipes")))
                break;
            void *it2 = NULL;
            struct fy_node *item;
            while (!rc && (item = fy_node_sequence_iterate(v, &it2))) {
                char *dir = NULL;
                if (!(rc = get_string(p, item, "recipes", &dir))) {
                    plan_strlist_take(&pr->recipes, dir[0] == '/' ? plan_xstrdup(dir)
                                                                  : plan_path_join(pr->dir, dir));
                    free(dir);
                }
            }
        } else if (!strcmp(k, "env")) {
            if ((rc = expect_kind(p, v, "env", true, "  env:\n    GREETING: hello")))
                break;
            void *it2 = NULL;
            struct fy_node_pair *ep;
            while (!rc && (ep = fy_node_mapping_iterate(v, &it2))) {
                const char *name = key_of(ep);
                char *value = NULL;
                if (!name || !is_identifier(name, true))
                    rc = perr(p, fy_node_pair_key(ep),
                              "field 'env': '%s' is not a variable name (letters, digits, _)",
                              name ? name : "?");
                else if (!(rc = get_string(p, fy_node_pair_value(ep), "env", &value)))
                    plan_strlist_take(&pr->env, plan_xasprintf("%s=%s", name, value));
                free(value);
            }
        } else {
            rc = unknown_key(p, fy_node_pair_key(pair), "", k, known);
        }
    }
    if (!rc && !have_packages && !p->config)
        rc = perr(p, root, "field 'packages' is missing: list what the project needs, e.g.\n"
                           "  packages:\n    hello: ^1.0.0");
    return rc;
}

static int load_project(plan_ctx *ctx, const char *file, bool config, plan_project **out)
{
    plan_buf text;
    plan_buf_init(&text);
    int r = plan_fs_read_file(file, RECIPE_MAX_BYTES, &text);
    if (r == -EFBIG) {
        plan_buf_release(&text);
        return plan_fail(ctx, PLAN_ERR_INVALID, "%s: larger than 1 MiB; that is not a plan.yaml",
                         file);
    }
    if (r) {
        plan_buf_release(&text);
        return plan_fail_errno(ctx, r == -ENOENT ? PLAN_ERR_NOT_FOUND : PLAN_ERR_IO, -r,
                               "cannot read '%s'%s", file,
                               r == -ENOENT ? " (a project describes what it needs in a "
                                              "plan.yaml; see docs/formats/plan-yaml.md)"
                                            : "");
    }
    parser p = {.ctx = ctx, .file = file, .config = config};
    p.proj = plan_xcalloc(1, sizeof(plan_project));
    p.proj->file = plan_xstrdup(file);
    p.proj->dir = directory_of(file);
    plan_strlist_init(&p.proj->recipes);
    plan_strlist_init(&p.proj->env);
    plan_strlist_init(&p.proj->prefer);
    p.proj->registry_refresh = -1;
    int rc = parse_document(&p, text.data, text.len, parse_project_top);
    plan_buf_release(&text);
    if (rc) {
        plan_project_free(p.proj);
        return rc;
    }
    *out = p.proj;
    return 0;
}

int plan_project_load(plan_ctx *ctx, const char *file, plan_project **out)
{
    return load_project(ctx, file, false, out);
}

int plan_config_load(plan_ctx *ctx, const char *file, plan_project **out)
{
    return load_project(ctx, file, true, out);
}

void plan_project_free(plan_project *pr)
{
    if (!pr)
        return;
    free(pr->file);
    free(pr->dir);
    free_deps(pr->packages, pr->n_packages);
    plan_strlist_release(&pr->recipes);
    plan_strlist_release(&pr->env);
    plan_strlist_release(&pr->prefer);
    free(pr->durability);
    free(pr);
}
