/* regsign: what a publisher sends to plan-registry, made by hand for the
 * registry-server tests (the real client is 'plan publish').
 *
 *   regsign keygen DIR NAME
 *       make a key pair in DIR; print NAME:BASE64
 *   regsign package DIR NAME INFO ARCHIVE RECIPE OUT [DEPS]
 *       INFO is the output of 'plan --json store path-info PATH'; write
 *       OUT.package.json (the signed package object, docs/formats/registry.md)
 *       and OUT.signature.json ({"keyid", "sig"}); DEPS is a JSON object of
 *       name: range (default {})
 *   regsign verify PUBKEY FILE TYPE
 *       verify a signed document (timestamp, snapshot, index) with
 *       NAME:BASE64; print its "signed" member canonically
 *   regsign checks-tag KEYFILE REGISTRY NAME INDEX PASSED
 *       the tag of a remembered publisher check row, in hex, as
 *       docs/formats/signatures.md#remembered-checks defines it (written
 *       here from the document, apart from the client's code): KEYFILE is
 *       the cache key file, INDEX the cached index text, PASSED the lines */
#include "../../common/common.h"
#include "../../fetch/fetch.h"
#include "../../store/store.h"

#include <jansson.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(plan_ctx *ctx, const char *what)
{
    fprintf(stderr, "regsign: %s%s%s\n", what, ctx ? ": " : "", ctx ? plan_ctx_error(ctx) : "");
    return 1;
}

static json_t *blob(const char *file)
{
    plan_buf b;
    plan_buf_init(&b);
    if (plan_fs_read_file(file, 1u << 30, &b) != 0) {
        plan_buf_release(&b);
        return NULL;
    }
    plan_hash h;
    crypto_generichash(h.bytes, sizeof(h.bytes), (const uint8_t *)b.data, b.len, NULL, 0);
    char text[PLAN_HASH_TEXT_LEN + 1];
    plan_hash_format(&h, text);
    json_t *j = json_pack("{s:s, s:I}", "hash", text, "size", (json_int_t)b.len);
    plan_buf_release(&b);
    return j;
}

static int write_json(const char *prefix, const char *suffix, json_t *j)
{
    char *file = plan_xasprintf("%s.%s", prefix, suffix);
    int rc = json_dump_file(j, file, JSON_COMPACT | JSON_SORT_KEYS);
    free(file);
    return rc;
}

static int package(plan_ctx *ctx, char **argv, int argc)
{
    plan_seckey k;
    if (plan_key_load_secret(ctx, argv[2], argv[3], &k))
        return die(ctx, "key");
    json_t *info = json_load_file(argv[4], 0, NULL);
    if (json_is_array(info))
        info = json_incref(json_array_get(info, 0));
    const char *full = json_string_value(json_object_get(info, "path"));
    json_t *a = blob(argv[5]), *r = blob(argv[6]);
    json_t *deps = argc > 8 ? json_loads(argv[8], 0, NULL) : json_object();
    if (!full || !a || !r || !json_is_object(deps))
        return die(NULL, "bad INFO, ARCHIVE, RECIPE or DEPS");
    char *dir = plan_xstrdup(full), *base = plan_xstrdup(full);
    json_t *refs = json_array(), *v;
    size_t i;
    json_array_foreach(json_object_get(info, "references"), i, v) {
        char *copy = plan_xstrdup(json_string_value(v));
        json_array_append_new(refs, json_string(basename(copy)));
        free(copy);
    }
    json_t *pkg = json_pack("{s:O, s:O, s:s, s:s, s:O, s:o, s:o, s:o, s:o}", "name",
                            json_object_get(info, "name"), "version",
                            json_object_get(info, "version"), "store_dir", dirname(dir), "path",
                            basename(base), "content_hash", json_object_get(info, "content_hash"),
                            "references", refs, "dependencies", deps, "archive", a, "recipe", r);
    char *canon = plan_canonical_json(pkg);
    char *sig = plan_sign(&k, "package", canon, strlen(canon));
    json_t *s = json_pack("{s:s, s:s}", "keyid", k.id, "sig", sig);
    int rc = write_json(argv[7], "package.json", pkg) || write_json(argv[7], "signature.json", s);
    free(canon);
    free(sig);
    free(dir);
    free(base);
    json_decref(pkg);
    json_decref(s);
    json_decref(info);
    plan_seckey_wipe(&k);
    return rc ? die(NULL, "cannot write the output") : 0;
}

static int verify(plan_ctx *ctx, char **argv)
{
    plan_pubkey k;
    if (plan_pubkey_parse(ctx, argv[2], &k))
        return die(ctx, "key");
    plan_buf b;
    plan_buf_init(&b);
    json_t *sg = NULL;
    int rc = 0;
    if (plan_fs_read_file(argv[3], 1u << 26, &b) != 0)
        rc = die(NULL, "cannot read the file");
    else if (plan_signed_open(ctx, b.data, b.len, &k, argv[4], argv[3], &sg))
        rc = die(ctx, "does not verify");
    if (!rc) {
        char *canon = plan_canonical_json(sg);
        printf("%s\n", canon);
        free(canon);
    }
    json_decref(sg);
    plan_buf_release(&b);
    plan_pubkey_release(&k);
    return rc;
}

static int slurp(const char *file, plan_buf *out)
{
    plan_buf_init(out);
    return plan_fs_read_file(file, 1u << 24, out) ? (fprintf(stderr, "cannot read %s\n", file), 1)
                                                  : 0;
}

static int checks_tag(char **argv)
{
    plan_buf keytext, index, passed;
    if (slurp(argv[2], &keytext) || slurp(argv[5], &index) || slurp(argv[6], &passed))
        return 1;
    uint8_t key[32], text_hash[32], tag[32];
    if (keytext.len != 65 || keytext.data[64] != '\n')
        return fprintf(stderr, "not a cache key\n"), 1;
    keytext.data[64] = '\0';
    if (plan_hex_decode(keytext.data, key, sizeof(key)))
        return fprintf(stderr, "not a cache key\n"), 1;
    crypto_generichash(text_hash, sizeof(text_hash), (const uint8_t *)index.data, index.len,
                       NULL, 0);
    plan_buf msg;
    plan_buf_init(&msg);
    plan_buf_add(&msg, "plan-publisher-checks-v1", sizeof("plan-publisher-checks-v1"));
    plan_buf_add(&msg, argv[3], strlen(argv[3]) + 1);
    plan_buf_add(&msg, argv[4], strlen(argv[4]) + 1);
    plan_buf_add(&msg, text_hash, sizeof(text_hash));
    plan_buf_add(&msg, passed.data, passed.len);
    crypto_generichash(tag, sizeof(tag), (const uint8_t *)msg.data, msg.len, key, sizeof(key));
    char hex[65];
    plan_hex_encode(tag, sizeof(tag), hex);
    printf("%s\n", hex);
    plan_buf_release(&msg);
    plan_buf_release(&keytext);
    plan_buf_release(&index);
    plan_buf_release(&passed);
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    plan_ctx *ctx = plan_ctx_new();
    int rc = 2;
    if (argc == 4 && !strcmp(argv[1], "keygen")) {
        plan_pubkey k;
        rc = plan_key_generate(ctx, argv[2], argv[3], &k) ? die(ctx, "keygen") : 0;
        if (!rc) {
            char *text = plan_pubkey_format(&k);
            printf("%s\n", text);
            free(text);
            plan_pubkey_release(&k);
        }
    } else if ((argc == 8 || argc == 9) && !strcmp(argv[1], "package")) {
        rc = package(ctx, argv, argc);
    } else if (argc == 5 && !strcmp(argv[1], "verify")) {
        rc = verify(ctx, argv);
    } else if (argc == 7 && !strcmp(argv[1], "checks-tag")) {
        rc = checks_tag(argv);
    } else {
        fprintf(stderr, "usage: regsign keygen DIR NAME | package DIR NAME INFO ARCHIVE RECIPE "
                        "OUT [DEPS] | verify PUBKEY FILE TYPE | checks-tag KEYFILE REGISTRY "
                        "NAME INDEX PASSED\n");
    }
    plan_ctx_free(ctx);
    return rc;
}
