/* plan config get|set|unset|list|history|rollback NAME [KEY] [VALUE]
 * (docs/commands/config.md).  Secret values are never printed. */
#include "realise.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct config_args {
    const char *sub;
    const char *name, *key, *value;
    const char *path;      /* --path: the store path that gives the schema */
    const char *profile;   /* --profile */
    bool secret;           /* --secret */
    int64_t version;       /* rollback */
} config_args;

/* The schema NAME is validated against: --path, else the profile's plan,
 * else the newest in the store.  With optional, a name with no plan
 * anywhere gives an empty schema (*have false) instead of an error. */
static int load_schema(cli *c, plan_store *store, const config_args *a, bool optional,
                       plan_config_schema *schema, bool *have)
{
    memset(schema, 0, sizeof(*schema));
    *have = false;
    char *path = NULL;
    if (a->path) {
        plan_path_info *info = NULL;
        if (plan_store_path_info(store, a->path, &info))
            return cli_fail(c);
        if (strcmp(info->name, a->name)) {
            int rc = cli_error(c, "'%s' is a store path of '%s', not of '%s'; give --path a "
                                  "path of '%s'",
                               info->path, info->name, a->name, a->name);
            plan_path_info_free(info);
            return rc;
        }
        path = plan_xstrdup(info->path);
        plan_path_info_free(info);
    } else if (plan_config_find_plan(store, a->name, cli_profile_name(a->profile), &path)) {
        if (optional && plan_ctx_error_code(c->ctx) == PLAN_ERR_NOT_FOUND) {
            plan_warn(c->ctx, "no plan named '%s' in the profile or the store: showing the "
                              "stored values without a schema", a->name);
            plan_ctx_clear_error(c->ctx);
            return EXIT_OK;
        }
        return cli_fail(c);
    }
    int rc = plan_config_schema_load(c->ctx, path, schema) ? cli_fail(c) : EXIT_OK;
    free(path);
    *have = rc == EXIT_OK;
    return rc;
}

static void print_when(int64_t t)
{
    char when[32];
    time_t tt = (time_t)t;
    struct tm tm;
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&tt, &tm));
    printf("%s", when);
}

/* ---- get and list ---- */

typedef struct key_view {
    const char *key;
    const plan_recipe_config *decl;   /* NULL: stored, but not in the schema */
    const plan_config_value *stored;  /* NULL: no stored value */
} key_view;

static const char *source_of(const key_view *k)
{
    return k->stored ? "set" : k->decl && k->decl->default_value ? "default" : "unset";
}

static bool secret_of(const key_view *k)
{
    return (k->stored && k->stored->secret) || (k->decl && k->decl->secret);
}

/* What is shown: never a secret's value. */
static const char *shown_value(const key_view *k)
{
    if (secret_of(k))
        return NULL;
    return k->stored ? k->stored->value : k->decl ? k->decl->default_value : NULL;
}

static json_t *key_json(const key_view *k)
{
    json_t *o = json_pack("{s:s, s:s?, s:s?, s:s, s:b, s:b}", "key", k->key, "type",
                          k->decl ? k->decl->type : NULL, "value", shown_value(k), "source",
                          source_of(k), "secret", secret_of(k), "in_schema", k->decl != NULL);
    if (k->stored)
        json_object_set_new(o, "version", json_integer((json_int_t)k->stored->version));
    if (k->decl && k->decl->description)
        json_object_set_new(o, "description", json_string(k->decl->description));
    if (k->decl && k->decl->allowed.len) {
        json_t *arr = json_array();
        for (size_t i = 0; i < k->decl->allowed.len; i++)
            json_array_append_new(arr, json_string(k->decl->allowed.items[i]));
        json_object_set_new(o, "allowed", arr);
    }
    return o;
}

static void print_key(const key_view *k)
{
    const char *v = shown_value(k);
    char source[64];
    if (k->stored)
        snprintf(source, sizeof(source), "set (version %lld)%s", (long long)k->stored->version,
                 k->decl ? "" : ", not in the schema");
    else
        snprintf(source, sizeof(source), "%s", k->decl->default_value ? "default"
                                                                      : "unset: required");
    printf("%-20s %-24s %s\n", k->key, secret_of(k) ? "(secret)" : v ? v : "-", source);
}

/* Every schema key, then stored keys the schema does not know. */
static key_view *key_views(const plan_config_schema *schema, const plan_config_state *state,
                           size_t *n)
{
    key_view *v = plan_xcalloc(schema->n + state->n + 1, sizeof(*v));
    *n = 0;
    for (size_t i = 0; i < schema->n; i++)
        v[(*n)++] = (key_view){schema->keys[i].key, &schema->keys[i],
                               plan_config_state_get(state, schema->keys[i].key)};
    for (size_t i = 0; i < state->n; i++)
        if (!plan_config_schema_key(schema, state->items[i].key))
            v[(*n)++] = (key_view){state->items[i].key, NULL, &state->items[i]};
    return v;
}

/* The schema (as load_schema) and the values stored now (secrets not
 * read).  On failure nothing is left to release. */
static int load_schema_and_state(cli *c, plan_store *store, const config_args *a,
                                 bool optional, plan_config_schema *schema, bool *have,
                                 plan_config_state *state)
{
    int rc = load_schema(c, store, a, optional, schema, have);
    if (rc)
        return rc;
    if (plan_store_config_state(store, a->name, 0, false, state)) {
        plan_config_schema_release(schema);
        return cli_fail(c);
    }
    return EXIT_OK;
}

static int config_show(cli *c, plan_store *store, const config_args *a)
{
    plan_config_schema schema;
    plan_config_state state;
    bool have;
    int rc = load_schema_and_state(c, store, a, true, &schema, &have, &state);
    if (rc)
        return rc;
    size_t n;
    key_view *views = key_views(&schema, &state, &n);
    if (!a->key) {
        json_t *arr = c->json ? json_array() : NULL;
        for (size_t i = 0; i < n; i++) {
            if (arr)
                json_array_append_new(arr, key_json(&views[i]));
            else
                print_key(&views[i]);
        }
        if (arr)
            cli_print_json(json_pack("{s:s, s:s?, s:I, s:o}", "name", a->name, "schema",
                                     have ? schema.path : NULL, "version",
                                     (json_int_t)state.version, "keys", arr));
        else if (!n && !c->quiet)
            fprintf(stderr, "plan: '%s' declares no configuration and has no stored values\n",
                    a->name);
    } else {
        const key_view *k = NULL;
        for (size_t i = 0; i < n && !k; i++)
            if (!strcmp(views[i].key, a->key))
                k = &views[i];
        if (!k && have) {
            /* Not in the schema: the validator names the keys there are. */
            plan_config_validate(c->ctx, a->name, &schema, a->key, "", false);
            rc = cli_fail(c);
        } else if (!k)
            rc = cli_error(c, "'%s' has no stored value for '%s'", a->name, a->key);
        else if (!k->stored && !(k->decl && k->decl->default_value))
            rc = cli_error(c, "config key '%s' of '%s' has no value and no default; set it with "
                              "'plan config set %s %s VALUE'",
                           a->key, a->name, a->name, a->key);
        else if (c->json)
            cli_print_json(key_json(k));
        else if (secret_of(k)) {
            if (!c->quiet)
                fprintf(stderr, "plan: config key '%s' of '%s' is a secret: its value is never "
                                "printed; 'plan run' gives it to the plan\n",
                        a->key, a->name);
        } else
            printf("%s\n", shown_value(k));
    }
    free(views);
    plan_config_state_release(&state);
    plan_config_schema_release(&schema);
    return rc;
}

/* ---- set, unset, rollback ---- */

static int config_set(cli *c, plan_store *store, const config_args *a)
{
    plan_config_schema schema;
    plan_config_state state;
    bool have;
    int rc = load_schema_and_state(c, store, a, false, &schema, &have, &state);
    if (rc)
        return rc;
    const plan_config_value *old = plan_config_state_get(&state, a->key);
    const plan_recipe_config *decl = plan_config_schema_key(&schema, a->key);
    bool secret = a->secret || (old && old->secret) || (decl && decl->secret);
    int64_t version = 0;
    if (plan_config_validate(c->ctx, a->name, &schema, a->key, a->value, secret) ||
        plan_store_config_set(store, a->name, a->key, a->value, secret, &version))
        rc = cli_fail(c);
    else if (c->json)
        cli_print_json(json_pack("{s:s, s:s, s:I, s:b}", "name", a->name, "key", a->key,
                                 "version", (json_int_t)version, "secret", secret));
    else if (!c->quiet) {
        if (secret)
            printf("%s: %s set, a secret (version %lld)\n", a->name, a->key, (long long)version);
        else
            printf("%s: %s = '%s' (version %lld)\n", a->name, a->key, a->value,
                   (long long)version);
    }
    plan_config_state_release(&state);
    plan_config_schema_release(&schema);
    return rc;
}

static int config_unset(cli *c, plan_store *store, const config_args *a)
{
    int64_t version = 0;
    if (plan_store_config_unset(store, a->name, a->key, &version))
        return cli_fail(c);
    if (c->json)
        cli_print_json(json_pack("{s:s, s:s, s:I}", "name", a->name, "key", a->key, "version",
                                 (json_int_t)version));
    else if (!c->quiet)
        printf("%s: %s unset (version %lld)\n", a->name, a->key, (long long)version);
    return EXIT_OK;
}

static int config_rollback(cli *c, plan_store *store, const config_args *a)
{
    int64_t version = 0;
    plan_config_history h;
    if (plan_store_config_rollback(store, a->name, a->version, &version) ||
        plan_store_config_history(store, a->name, &h))
        return cli_fail(c);
    size_t changed = h.n ? h.items[h.n - 1].n : 0;
    plan_config_history_release(&h);
    if (c->json)
        cli_print_json(json_pack("{s:s, s:I, s:I, s:I}", "name", a->name, "version",
                                 (json_int_t)version, "target", (json_int_t)a->version, "changed",
                                 (json_int_t)changed));
    else if (!c->quiet)
        printf("%s: version %lld returns to version %lld (%zu key%s changed)\n", a->name,
               (long long)version, (long long)a->version, changed, changed == 1 ? "" : "s");
    return EXIT_OK;
}

/* ---- history ---- */

static json_t *change_json(const plan_config_change *ch)
{
    return json_pack("{s:s, s:s?, s:s?, s:b, s:b}", "key", ch->key, "old", ch->old_value, "new",
                     ch->new_value, "old_secret", ch->old_secret, "new_secret", ch->new_secret);
}

static void print_value(const char *value, bool secret)
{
    if (secret)
        printf("(secret)");
    else if (!value)
        printf("(none)");
    else
        printf("'%s'", value);
}

static int config_history(cli *c, plan_store *store, const config_args *a)
{
    plan_config_history h;
    if (plan_store_config_history(store, a->name, &h))
        return cli_fail(c);
    json_t *arr = c->json ? json_array() : NULL;
    for (size_t i = 0; i < h.n; i++) {
        const plan_config_version *v = &h.items[i];
        if (arr) {
            json_t *changes = json_array();
            for (size_t k = 0; k < v->n; k++)
                json_array_append_new(changes, change_json(&v->changes[k]));
            json_t *o = json_pack("{s:I, s:I, s:s, s:o}", "version", (json_int_t)v->version,
                                  "created", (json_int_t)v->created, "action", v->action,
                                  "changes", changes);
            if (v->target >= 0)
                json_object_set_new(o, "target", json_integer((json_int_t)v->target));
            json_array_append_new(arr, o);
            continue;
        }
        printf("%4lld  ", (long long)v->version);
        print_when(v->created);
        printf("  %s", v->action);
        if (v->target >= 0)
            printf(" to version %lld", (long long)v->target);
        if (!v->n)
            printf(" (nothing changed)");
        printf("\n");
        for (size_t k = 0; k < v->n; k++) {
            const plan_config_change *ch = &v->changes[k];
            printf("      %s: ", ch->key);
            print_value(ch->old_value, ch->old_secret);
            printf(" -> ");
            print_value(ch->new_value, ch->new_secret);
            printf("\n");
        }
    }
    if (arr)
        cli_print_json(json_pack("{s:s, s:o}", "name", a->name, "versions", arr));
    else if (!h.n && !c->quiet)
        fprintf(stderr, "plan: the configuration of '%s' has never been changed\n", a->name);
    plan_config_history_release(&h);
    return EXIT_OK;
}

/* ---- arguments ---- */

typedef struct subcommand {
    const char *name;
    size_t nargs;       /* positional arguments after the subcommand */
    const char *usage;  /* for messages */
} subcommand;

static const subcommand subs[] = {
    {"get", 2, "plan config get NAME KEY"},
    {"history", 1, "plan config history NAME"},
    {"list", 1, "plan config list NAME"},
    {"rollback", 2, "plan config rollback NAME VERSION"},
    {"set", 3, "plan config set NAME KEY VALUE [--secret]"},
    {"unset", 2, "plan config unset NAME KEY"},
};

static int parse_args(cli *c, const command *cmd, int argc, char **argv, config_args *a)
{
    static const struct option opts[] = {
        {"secret", no_argument, NULL, 's'},
        {"path", required_argument, NULL, 'P'},
        {"profile", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2)
        return cli_usage(c, cmd, "name a subcommand: get, set, unset, list, history or rollback");
    a->sub = argv[1];
    const subcommand *sub = NULL;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        if (!strcmp(subs[i].name, a->sub))
            sub = &subs[i];
    if (!sub)
        return cli_usage(c, cmd, "unknown subcommand '%s': get, set, unset, list, history or "
                                 "rollback", a->sub);
    int o;
    char **args = argv + 1; /* from the subcommand on */
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc - 1, args, "p:", opts, NULL)) != -1) {
        if (o == 's')
            a->secret = true;
        else if (o == 'P')
            a->path = optarg;
        else if (o == 'p')
            a->profile = optarg;
        else
            return cli_usage(c, cmd, "unknown option or missing value '%s' (a value that starts "
                                     "with '-' goes after '--')",
                             args[optind - 1]);
    }
    char **pos = args + optind;
    size_t npos = (size_t)(argc - 1 - optind);
    if (npos != sub->nargs)
        return cli_usage(c, cmd, "usage: %s", sub->usage);
    if (a->secret && strcmp(a->sub, "set"))
        return cli_usage(c, cmd, "--secret goes with 'plan config set'");
    a->name = pos[0];
    const char *why = plan_store_check_name(a->name);
    if (why)
        return cli_usage(c, cmd, "'%s' is not a plan name: %s", a->name, why);
    if (!strcmp(a->sub, "rollback")) {
        char *end;
        errno = 0;
        long long v = strtoll(pos[1], &end, 10);
        if (errno || *end || end == pos[1] || v < 0)
            return cli_usage(c, cmd, "VERSION is a version number from 'plan config history "
                                     "%s' (0: no values at all), not '%s'",
                             a->name, pos[1]);
        a->version = v;
    } else if (npos >= 2) {
        a->key = pos[1];
    }
    if (npos == 3)
        a->value = pos[2];
    return EXIT_OK;
}

int cmd_config(cli *c, const command *cmd, int argc, char **argv)
{
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    config_args a = {0};
    int rc = parse_args(c, cmd, argc, argv, &a);
    if (rc)
        return rc;
    plan_store *store;
    if (cli_open_store(c, &store))
        return EXIT_FAILURE_;
    if (!strcmp(a.sub, "get") || !strcmp(a.sub, "list"))
        rc = config_show(c, store, &a);
    else if (!strcmp(a.sub, "set"))
        rc = config_set(c, store, &a);
    else if (!strcmp(a.sub, "unset"))
        rc = config_unset(c, store, &a);
    else if (!strcmp(a.sub, "rollback"))
        rc = config_rollback(c, store, &a);
    else
        rc = config_history(c, store, &a);
    plan_store_close(store);
    return rc;
}
