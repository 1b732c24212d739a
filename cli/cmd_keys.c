/* plan keys generate NAME | list | trust KEY|FILE | untrust NAME|ID | export NAME */
#include "realise.h"
#include "../fetch/fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct keys_paths {
    char *dir;      /* secret and public keys */
    char *trusted;  /* the keyring file */
} keys_paths;

static void paths_init(cli *c, keys_paths *p)
{
    char *cfg = cli_config_dir(c);
    p->dir = plan_path_join(cfg, "keys");
    p->trusted = plan_path_join(cfg, "trusted-keys");
    free(cfg);
}

static void paths_release(keys_paths *p)
{
    free(p->dir);
    free(p->trusted);
}

static int keys_generate(cli *c, const keys_paths *p, const char *name)
{
    plan_pubkey k;
    if (plan_key_generate(c->ctx, p->dir, name, &k))
        return cli_fail(c);
    char *pub = plan_pubkey_format(&k);
    if (c->json)
        cli_print_json(json_pack("{s:s, s:s, s:s, s:s}", "name", k.name, "id", k.id, "public",
                                 pub, "secret", p->dir));
    else {
        printf("%s\n", pub);
        if (!c->quiet)
            fprintf(stderr, "plan: made key '%s' (id %s); the secret is in %s/%s.secret (mode "
                            "0600): keep it safe.  Others trust it with:\n  plan keys trust "
                            "%s\n", k.name, k.id, p->dir, k.name, pub);
    }
    free(pub);
    plan_pubkey_release(&k);
    return EXIT_OK;
}

static int keys_list(cli *c, const keys_paths *p)
{
    plan_keyring r;
    if (plan_keyring_load(c->ctx, p->trusted, &r))
        return cli_fail(c);
    json_t *arr = c->json ? json_array() : NULL;
    for (size_t i = 0; i < r.n; i++) {
        char *pub = plan_pubkey_format(&r.keys[i]);
        plan_seckey sk;
        bool mine = plan_key_load_secret(c->ctx, p->dir, r.keys[i].name, &sk) == 0 &&
                    !memcmp(sk.pk, r.keys[i].pk, 32);
        plan_seckey_wipe(&sk);
        plan_ctx_clear_error(c->ctx);
        if (arr)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b}", "name", r.keys[i].name,
                                                 "id", r.keys[i].id, "public", pub, "secret",
                                                 mine));
        else
            printf("%-20s %s  %s%s\n", r.keys[i].name, r.keys[i].id, pub,
                   mine ? "  (secret here)" : "");
        free(pub);
    }
    if (arr)
        cli_print_json(json_pack("{s:o}", "trusted", arr));
    else if (!r.n && !c->quiet)
        fprintf(stderr, "plan: no trusted keys ('plan keys trust NAME:BASE64' adds one)\n");
    plan_keyring_release(&r);
    return EXIT_OK;
}

static int keys_trust(cli *c, const keys_paths *p, const char *arg)
{
    /* A key, or a file holding one (a .pub file). */
    plan_buf text;
    plan_buf_init(&text);
    const char *key = arg;
    struct stat st;
    if (stat(arg, &st) == 0 || !strchr(arg, ':')) {
        if (plan_fs_read_file(arg, 4096, &text) != 0) {
            plan_buf_release(&text);
            return cli_error(c, "'%s' is neither a key (NAME:BASE64) nor a readable key file",
                             arg);
        }
        char *nl = strchr(text.data, '\n');
        if (nl)
            *nl = '\0';
        key = text.data;
    }
    plan_pubkey k;
    plan_keyring r;
    int rc = EXIT_OK;
    if (plan_pubkey_parse(c->ctx, key, &k)) {
        plan_buf_release(&text);
        return cli_fail(c);
    }
    if (plan_keyring_load(c->ctx, p->trusted, &r) || plan_keyring_add(c->ctx, &r, &k) ||
        plan_keyring_save(c->ctx, &r, p->trusted))
        rc = cli_fail(c);
    else if (!c->quiet)
        fprintf(stderr, "plan: trusting key '%s' (id %s)\n", k.name, k.id);
    plan_keyring_release(&r);
    plan_pubkey_release(&k);
    plan_buf_release(&text);
    return rc;
}

static int keys_untrust(cli *c, const keys_paths *p, const char *arg)
{
    plan_keyring r;
    int rc = EXIT_OK;
    if (plan_keyring_load(c->ctx, p->trusted, &r) || plan_keyring_remove(c->ctx, &r, arg) ||
        plan_keyring_save(c->ctx, &r, p->trusted))
        rc = cli_fail(c);
    else if (!c->quiet)
        fprintf(stderr, "plan: no longer trusting '%s'\n", arg);
    plan_keyring_release(&r);
    return rc;
}

static int keys_export(cli *c, const keys_paths *p, const char *name)
{
    plan_seckey k;
    if (plan_key_load_secret(c->ctx, p->dir, name, &k))
        return cli_fail(c);
    plan_pubkey pub = {.name = k.name};
    memcpy(pub.pk, k.pk, 32);
    memcpy(pub.id, k.id, sizeof(pub.id));
    char *text = plan_pubkey_format(&pub);
    if (c->json)
        cli_print_json(json_pack("{s:s, s:s, s:s}", "name", k.name, "id", k.id, "public", text));
    else
        printf("%s\n", text);
    free(text);
    plan_seckey_wipe(&k);
    return EXIT_OK;
}

int cmd_keys(cli *c, const command *cmd, int argc, char **argv)
{
    if (cli_wants_help(cmd, argc, argv))
        return EXIT_OK;
    if (argc < 2)
        return cli_usage(c, cmd, "name a subcommand: generate, list, trust, untrust or export");
    const char *sub = argv[1];
    bool needs_arg = strcmp(sub, "list") != 0;
    if (needs_arg ? argc != 3 : argc != 2)
        return cli_usage(c, cmd, needs_arg ? "'plan keys %s' takes one argument"
                                           : "'plan keys %s' takes no arguments",
                         sub);
    keys_paths p;
    paths_init(c, &p);
    int rc;
    if (!strcmp(sub, "generate"))
        rc = keys_generate(c, &p, argv[2]);
    else if (!strcmp(sub, "list"))
        rc = keys_list(c, &p);
    else if (!strcmp(sub, "trust"))
        rc = keys_trust(c, &p, argv[2]);
    else if (!strcmp(sub, "untrust"))
        rc = keys_untrust(c, &p, argv[2]);
    else if (!strcmp(sub, "export"))
        rc = keys_export(c, &p, argv[2]);
    else
        rc = cli_usage(c, cmd, "unknown subcommand '%s': generate, list, trust, untrust or "
                               "export", sub);
    paths_release(&p);
    return rc;
}
