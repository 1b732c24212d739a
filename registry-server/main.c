/* plan-registry: make, run and mirror a plan registry.  One function per
 * subcommand; the work is in the other files of registry-server/.
 * Exit status: 0 ok, 1 failure, 2 usage. */
#include "registry.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct command {
    const char *name;
    int (*run)(plan_ctx *ctx, int argc, char **argv);
    const char *help;
} command;

static const char MAIN_HELP[] =
    "usage: plan-registry COMMAND DATA [OPTIONS]\n"
    "\n"
    "Make, serve and mirror a plan registry kept in the directory DATA.\n"
    "\n"
    "commands:\n"
    "  init DATA                       make a registry and print its public key\n"
    "  token create DATA --scope S     issue a publish token (printed once)\n"
    "  token list DATA                 list tokens (never the tokens themselves)\n"
    "  token revoke DATA ID            stop a token from working\n"
    "  publisher add DATA PATTERN KEY  let KEY sign packages whose names match PATTERN\n"
    "  publisher list DATA             list publisher keys\n"
    "  serve DATA --listen ADDR:PORT   serve the read side and the publish API\n"
    "  export DATA DIR                 write the read side as plain files (a mirror)\n"
    "  key rotate DATA [--key-name N]  replace the registry key; clients follow\n"
    "\n"
    "'plan-registry COMMAND --help' describes a command; docs/commands/plan-registry.md\n"
    "has the whole story.  Exit status: 0 ok, 1 failure, 2 usage.\n";

static const char INIT_HELP[] =
    "usage: plan-registry init DATA [--key-name NAME]\n"
    "\n"
    "Make a registry in DATA (created if missing; refused if it holds one):\n"
    "the database, the registry key (DATA/keys/NAME.secret, mode 0600) and an\n"
    "empty signed read side in DATA/static.  Prints the registry's public key,\n"
    "NAME:BASE64, which clients pin:  plan registry add REG URL --key KEY\n"
    "\n"
    "  --key-name NAME   the key's name (default: registry)\n"
    "\n"
    "example:\n"
    "  plan-registry init /srv/plan\n";

static const char TOKEN_HELP[] =
    "usage: plan-registry token create DATA --scope ACTIONS[:PATTERN]... [--rate N/min]\n"
    "       plan-registry token list DATA\n"
    "       plan-registry token revoke DATA ID\n"
    "\n"
    "A token lets a publisher call the publish API.  ACTIONS is a comma list of\n"
    "publish-new (a name not published yet), publish-update (a new version of a\n"
    "published name) and yank; PATTERN is a shell pattern of names (default '*').\n"
    "--scope may be repeated.  The token is printed once; the registry keeps only\n"
    "its BLAKE2b hash.  --rate limits publishes per minute (default 30; 0: none).\n"
    "\n"
    "examples:\n"
    "  plan-registry token create /srv/plan --scope publish-new,publish-update:hello*\n"
    "  plan-registry token create /srv/plan --scope 'yank:*' --rate 5/min\n";

static const char PUBLISHER_HELP[] =
    "usage: plan-registry publisher add DATA PATTERN NAME:BASE64\n"
    "       plan-registry publisher list DATA\n"
    "\n"
    "A package is accepted only if it is signed by a key registered for a\n"
    "pattern (a shell pattern) its name matches.  The key is the publisher's\n"
    "public key as 'plan keys export NAME' prints it.\n"
    "\n"
    "example:\n"
    "  plan-registry publisher add /srv/plan 'hello*' alice:Q2xvc2U...=\n";

static const char SERVE_HELP[] =
    "usage: plan-registry serve DATA --listen ADDR:PORT [OPTIONS]\n"
    "\n"
    "Serve DATA/static over HTTP (ETag, Range, sendfile) and the publish API:\n"
    "POST /api/v1/publish and POST /api/v1/yank (docs/formats/registry.md).\n"
    "Prints 'listening on ADDR:PORT' once ready (PORT 0 picks a free port).\n"
    "Re-signs the timestamp when less than half of its lifetime is left.\n"
    "Stops cleanly on SIGINT or SIGTERM.\n"
    "\n"
    "  --listen ADDR:PORT          where to listen, e.g. 127.0.0.1:8080, [::1]:8080\n"
    "  --max-upload SIZE           largest publish request (default 1GiB)\n"
    "  --timestamp-lifetime SECS   lifetime of a signed timestamp (default 86400)\n"
    "  --threads N                 request threads (default: one per core)\n"
    "  -v, --verbose               one line per request on stderr\n"
    "\n"
    "example:\n"
    "  plan-registry serve /srv/plan --listen 127.0.0.1:8080 --max-upload 512M\n";

static const char KEY_HELP[] =
    "usage: plan-registry key rotate DATA [--key-name NAME]\n"
    "\n"
    "Make a new registry key (NAME, default the current name with a number added),\n"
    "publish a statement signed by the current key and by the new one that the new\n"
    "one replaces it (static/rotations.json), and sign every index, the snapshot and\n"
    "the timestamp again with the new key, all in one change.  Clients that pinned\n"
    "the old key (or any earlier one) follow the statements at their next update.\n"
    "The server must be stopped meanwhile.  Prints the new public key.\n"
    "\n"
    "Example:\n"
    "  plan-registry key rotate /srv/reg\n";

static const char EXPORT_HELP[] =
    "usage: plan-registry export DATA DIR\n"
    "\n"
    "Write the read side to DIR as plain files that any web server, CDN or\n"
    "object store can serve (clients need no plan-registry to read it).  The\n"
    "timestamp is re-signed first, so the mirror verifies for one timestamp\n"
    "lifetime: export again before it expires.  Exporting over an older\n"
    "export refreshes it.\n"
    "\n"
    "example:\n"
    "  plan-registry export /srv/plan /var/www/plan\n";

static int fail(plan_ctx *ctx)
{
    fprintf(stderr, "plan-registry: %s\n", plan_ctx_error(ctx));
    return EXIT_FAIL;
}

static int usage(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "plan-registry: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nplan-registry: see 'plan-registry %s%s--help'\n", cmd, *cmd ? " " : "");
    return EXIT_USAGE;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            return false;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    }
    return false;
}

/* ---------- init ---------- */

static int cmd_init(plan_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"key-name", required_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    const char *key_name = "registry";
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o != 'k')
            return usage("init", "%s", "unknown option");
        key_name = optarg;
    }
    if (argc - optind != 1)
        return usage("init", "%s", "init takes one directory, DATA");
    reg *r = NULL;
    if (reg_create(ctx, argv[optind], key_name, &r))
        return fail(ctx);
    plan_pubkey pub = {.name = r->key.name};
    memcpy(pub.pk, r->key.pk, sizeof(pub.pk));
    char *text = plan_pubkey_format(&pub);
    printf("%s\n", text);
    fprintf(stderr,
            "plan-registry: made a registry in '%s' (key id %s; the secret is in "
            "%s/keys, mode 0600).\nClients pin the key above: plan registry add NAME URL "
            "--key %s\n",
            r->dir, r->key.id, r->dir, text);
    free(text);
    reg_close(r);
    return EXIT_OK;
}

/* ---------- token ---------- */

static int parse_rate(const char *text, int64_t *out)
{
    char *end;
    long long n = strtoll(text, &end, 10);
    if (end == text || n < 0 || (*end && strcmp(end, "/min") != 0))
        return -1;
    *out = n;
    return 0;
}

static int token_create(plan_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"scope", required_argument, NULL, 's'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    reg_token t = {.rate = 30};
    int o, rc = EXIT_OK;
    while (rc == EXIT_OK && (o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 's' && reg_scope_parse(ctx, optarg, &t))
            rc = usage("token", "%s", plan_ctx_error(ctx));
        else if (o == 'r' && parse_rate(optarg, &t.rate))
            rc = usage("token", "--rate '%s' is not N/min", optarg);
        else if (o != 's' && o != 'r')
            rc = usage("token", "%s", "unknown option");
    }
    if (rc == EXIT_OK && argc - optind != 1)
        rc = usage("token", "%s", "token create takes one directory, DATA");
    if (rc == EXIT_OK && !t.n)
        rc = usage("token", "%s", "a token needs at least one --scope ACTIONS:PATTERN");
    reg *r = NULL;
    char *secret = NULL;
    if (rc == EXIT_OK && (reg_open(ctx, argv[optind], false, &r) ||
                          reg_token_create(r, &t, &secret)))
        rc = fail(ctx);
    if (rc == EXIT_OK) {
        char *scopes = reg_token_describe(&t);
        printf("%s\n", secret);
        fprintf(stderr, "plan-registry: token %lld (%s; %lld publishes a minute%s); it is shown "
                        "only this once\n", (long long)t.id, scopes, (long long)t.rate,
                t.rate ? "" : ": no limit");
        free(scopes);
        sodium_memzero(secret, strlen(secret));
        free(secret);
    }
    reg_close(r);
    reg_token_release(&t);
    return rc;
}

static int token_list(plan_ctx *ctx, const char *data)
{
    reg *r = NULL;
    json_t *list = NULL;
    if (reg_open(ctx, data, false, &r) || reg_token_list(r, &list)) {
        reg_close(r);
        return fail(ctx);
    }
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t) {
        printf("%lld", (long long)json_integer_value(json_object_get(t, "id")));
        size_t j;
        json_t *sc;
        json_array_foreach(json_object_get(t, "scopes"), j, sc)
            printf("%s%s", j ? "," : "  ", json_string_value(sc));
        printf("  rate %lld/min%s\n", (long long)json_integer_value(json_object_get(t, "rate")),
               json_is_true(json_object_get(t, "revoked")) ? "  revoked" : "");
    }
    json_decref(list);
    reg_close(r);
    return EXIT_OK;
}

static int cmd_token(plan_ctx *ctx, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (!strcmp(sub, "create"))
        return token_create(ctx, argc - 1, argv + 1);
    if (!strcmp(sub, "list") && argc == 3)
        return token_list(ctx, argv[2]);
    if (!strcmp(sub, "revoke") && argc == 4) {
        char *end;
        long long id = strtoll(argv[3], &end, 10);
        if (*end || end == argv[3])
            return usage("token", "'%s' is not a token id", argv[3]);
        reg *r = NULL;
        int rc = reg_open(ctx, argv[2], false, &r) || reg_token_revoke(r, id) ? fail(ctx)
                                                                              : EXIT_OK;
        if (!rc)
            fprintf(stderr, "plan-registry: token %lld revoked\n", id);
        reg_close(r);
        return rc;
    }
    return usage("token", "%s", "use 'token create DATA --scope S', 'token list DATA' or "
                                "'token revoke DATA ID'");
}

/* ---------- publisher ---------- */

static int publisher_add(plan_ctx *ctx, const char *data, const char *pattern, const char *key)
{
    plan_pubkey k;
    if (plan_pubkey_parse(ctx, key, &k))
        return usage("publisher", "%s", plan_ctx_error(ctx));
    reg *r = NULL;
    int rc = EXIT_OK;
    if (reg_open(ctx, data, false, &r) || reg_publisher_add(r, pattern, &k))
        rc = fail(ctx);
    else
        fprintf(stderr, "plan-registry: key '%s' (id %s) may publish names matching '%s'\n",
                k.name, k.id, pattern);
    plan_pubkey_release(&k);
    reg_close(r);
    return rc;
}

static int publisher_list(plan_ctx *ctx, const char *data)
{
    reg *r = NULL;
    json_t *list = NULL;
    if (reg_open(ctx, data, false, &r) || reg_publisher_list(r, &list)) {
        reg_close(r);
        return fail(ctx);
    }
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
        printf("%-20s %s  %s\n", json_string_value(json_object_get(p, "pattern")),
               json_string_value(json_object_get(p, "keyid")),
               json_string_value(json_object_get(p, "key")));
    json_decref(list);
    reg_close(r);
    return EXIT_OK;
}

static int cmd_publisher(plan_ctx *ctx, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (!strcmp(sub, "add") && argc == 5)
        return publisher_add(ctx, argv[2], argv[3], argv[4]);
    if (!strcmp(sub, "list") && argc == 3)
        return publisher_list(ctx, argv[2]);
    return usage("publisher", "%s", "use 'publisher add DATA PATTERN NAME:BASE64' or "
                                    "'publisher list DATA'");
}

/* ---------- serve, export ---------- */

static int cmd_serve(plan_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"max-upload", required_argument, NULL, 'm'},
                                         {"timestamp-lifetime", required_argument, NULL, 't'},
                                         {"threads", required_argument, NULL, 'j'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    reg_serve_opts so = {.max_upload = 1ull << 30, .threads = plan_cpu_count()};
    int64_t lifetime = REG_TIMESTAMP_LIFETIME;
    int o;
    char *end;
    while ((o = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
        switch (o) {
        case 'l':
            so.listen = optarg;
            break;
        case 'm':
            if (plan_parse_size(optarg, &so.max_upload) || !so.max_upload)
                return usage("serve", "--max-upload '%s' is not a size (e.g. 512M)", optarg);
            break;
        case 't':
            lifetime = strtoll(optarg, &end, 10);
            if (*end || lifetime < 2)
                return usage("serve", "--timestamp-lifetime '%s' is not seconds (2 or more)",
                             optarg);
            break;
        case 'j':
            so.threads = (unsigned)strtoul(optarg, &end, 10);
            if (*end || !so.threads || so.threads > 256)
                return usage("serve", "--threads '%s' is not 1 to 256", optarg);
            break;
        case 'v':
            so.verbose = true;
            break;
        default:
            return usage("serve", "%s", "unknown option");
        }
    }
    if (argc - optind != 1)
        return usage("serve", "%s", "serve takes one directory, DATA");
    if (!so.listen)
        return usage("serve", "%s", "serve needs --listen ADDR:PORT (e.g. 127.0.0.1:8080)");
    reg *r = NULL;
    if (reg_open(ctx, argv[optind], true, &r))
        return fail(ctx);
    r->timestamp_lifetime = lifetime;
    int lock = -1;
    int rc = reg_serve_lock(r, false, &lock) || reg_serve(r, &so) ? fail(ctx) : EXIT_OK;
    if (lock >= 0)
        close(lock);
    reg_close(r);
    return rc;
}

/* "registry" -> "registry-2", "registry-2" -> "registry-3". */
static char *next_key_name(const char *name)
{
    const char *dash = strrchr(name, '-');
    char *end = NULL;
    long n = dash ? strtol(dash + 1, &end, 10) : 0;
    if (dash && end && !*end && end != dash + 1 && n >= 1)
        return plan_xasprintf("%.*s-%ld", (int)(dash - name), name, n + 1);
    return plan_xasprintf("%s-2", name);
}

static int cmd_key(plan_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"key-name", required_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    const char *key_name = NULL;
    int o;
    optind = 1;
    if (argc < 2 || strcmp(argv[1], "rotate") != 0)
        return usage("key", "%s", "the key subcommand is 'rotate'");
    argc--;
    argv++;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o != 'k')
            return usage("key", "%s", "unknown option");
        key_name = optarg;
    }
    if (argc - optind != 1)
        return usage("key", "%s", "key rotate takes one directory, DATA");
    reg *r = NULL;
    if (reg_open(ctx, argv[optind], true, &r))
        return fail(ctx);
    int lock = -1;
    char *name = key_name ? plan_xstrdup(key_name) : next_key_name(r->key.name);
    plan_pubkey pub;
    memset(&pub, 0, sizeof(pub));
    char *old_id = plan_xstrdup(r->key.id);
    int rc = reg_serve_lock(r, true, &lock) || reg_rotate_key(r, name, (int64_t)time(NULL), &pub)
                 ? fail(ctx)
                 : EXIT_OK;
    if (rc == EXIT_OK) {
        char *text = plan_pubkey_format(&pub);
        printf("%s\n", text);
        fprintf(stderr,
                "plan-registry: the registry key is now '%s' (id %s), vouched for by key %s; "
                "clients follow at their next update, or pin it anew with: plan registry "
                "add NAME URL --key %s\n",
                name, pub.id, old_id, text);
        free(text);
    }
    if (lock >= 0)
        close(lock);
    plan_pubkey_release(&pub);
    free(old_id);
    free(name);
    reg_close(r);
    return rc;
}

static int cmd_export(plan_ctx *ctx, int argc, char **argv)
{
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-')
        return usage("export", "%s", "export takes DATA and DIR");
    reg *r = NULL;
    int rc = reg_open(ctx, argv[1], true, &r) || reg_export(r, argv[2]) ? fail(ctx) : EXIT_OK;
    if (!rc)
        fprintf(stderr, "plan-registry: exported '%s' to '%s'\n", r->static_dir, argv[2]);
    reg_close(r);
    return rc;
}

static const command COMMANDS[] = {
    {"export", cmd_export, EXPORT_HELP},    {"init", cmd_init, INIT_HELP},
    {"key", cmd_key, KEY_HELP},
    {"publisher", cmd_publisher, PUBLISHER_HELP}, {"serve", cmd_serve, SERVE_HELP},
    {"token", cmd_token, TOKEN_HELP},
};

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        const char *topic = argc > 2 ? argv[2] : NULL;
        for (size_t i = 0; topic && i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
            if (!strcmp(topic, COMMANDS[i].name)) {
                fputs(COMMANDS[i].help, stdout);
                return EXIT_OK;
            }
        fputs(MAIN_HELP, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("plan-registry %s\n", PLAN_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++) {
        if (strcmp(argv[1], COMMANDS[i].name) != 0)
            continue;
        if (wants_help(argc - 1, argv + 1)) {
            fputs(COMMANDS[i].help, stdout);
            return EXIT_OK;
        }
        if (sodium_init() < 0) {
            fprintf(stderr, "plan-registry: libsodium failed to initialise\n");
            return EXIT_FAIL;
        }
        plan_ctx *ctx = plan_ctx_new();
        int rc = COMMANDS[i].run(ctx, argc - 1, argv + 1);
        plan_ctx_free(ctx);
        return rc;
    }
    return usage("", "unknown command '%s'", argv[1]);
}
