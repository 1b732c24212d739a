/* Ed25519 keys and signatures (docs/formats/signatures.md).
 *
 * A key has a name and an id: the id is the first 8 bytes of BLAKE2b-256
 * of the raw public key, in hex, so the same key always has the same id
 * whatever it is called.  Public keys travel as "name:base64"; secret keys
 * stay in a file of mode 0600.  Every signature covers a domain-separated
 * message: "plan-signature-v1", NUL, the purpose, NUL, the bytes. */
#include "fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIG_DOMAIN "plan-signature-v1"
#define SECRET_FORMAT "plan-secret-key-v1"

static bool key_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > 64 || name[0] == '.' || name[0] == '-')
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

static void key_id(const uint8_t pk[32], char out[PLAN_KEY_ID_CHARS + 1])
{
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), pk, 32, NULL, 0);
    plan_hex_encode(h, PLAN_KEY_ID_CHARS / 2, out);
}

static char *b64(const uint8_t *bytes, size_t n)
{
    size_t len = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    char *out = plan_xmalloc(len);
    sodium_bin2base64(out, len, bytes, n, sodium_base64_VARIANT_ORIGINAL);
    return out;
}

/* Exactly n bytes from base64 text, or -1. */
static int unb64(const char *text, uint8_t *out, size_t n)
{
    size_t got = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, n, text, strlen(text), NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != n || (end && *end))
        return -1;
    return 0;
}

void plan_pubkey_release(plan_pubkey *k)
{
    free(k->name);
    memset(k, 0, sizeof(*k));
}

void plan_seckey_wipe(plan_seckey *k)
{
    free(k->name);
    sodium_memzero(k, sizeof(*k));
}

int plan_pubkey_parse(plan_ctx *ctx, const char *text, plan_pubkey *out)
{
    memset(out, 0, sizeof(*out));
    const char *colon = strchr(text, ':');
    char *name = colon ? plan_xstrndup(text, (size_t)(colon - text)) : NULL;
    int rc = 0;
    if (!name || !key_name_ok(name))
        rc = plan_fail(ctx, PLAN_ERR_INVALID,
                       "'%.80s' is not a public key: write NAME:BASE64, as 'plan keys export' "
                       "prints it", text);
    else if (unb64(colon + 1, out->pk, sizeof(out->pk)) != 0)
        rc = plan_fail(ctx, PLAN_ERR_INVALID,
                       "the public key '%s' is not 32 bytes of base64", name);
    if (rc) {
        free(name);
        return rc;
    }
    out->name = name;
    key_id(out->pk, out->id);
    return 0;
}

char *plan_pubkey_format(const plan_pubkey *k)
{
    char *b = b64(k->pk, sizeof(k->pk));
    char *out = plan_xasprintf("%s:%s", k->name, b);
    free(b);
    return out;
}

static char *secret_file(const char *dir, const char *name)
{
    return plan_xasprintf("%s/%s.secret", dir, name);
}

/* Write a secret to file: into a new file of a random name, mode 0600 from
 * the first byte (O_EXCL and O_NOFOLLOW: nothing planted there receives
 * it), then given its name.  With replace, an existing file is replaced
 * and nothing is flushed (a key lost in a crash costs only checks again);
 * without, an existing file is an error (EEXIST) and the bytes are on disk
 * before the name.  0 or -errno. */
static int write_secret_file(const char *file, const char *text, size_t len, bool replace)
{
    uint8_t rnd[8];
    char hex[17];
    randombytes_buf(rnd, sizeof(rnd));
    plan_hex_encode(rnd, sizeof(rnd), hex);
    char *tmp = plan_xasprintf("%s.%s.tmp", file, hex);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int e = fd < 0 ? -errno : plan_fs_write_all(fd, text, len);
    if (!e && !replace && fsync(fd) != 0)
        e = -errno;
    if (fd >= 0 && close(fd) != 0 && !e)
        e = -errno;
    if (!e && (replace ? rename(tmp, file) : link(tmp, file)) != 0)
        e = -errno;
    if (fd >= 0 && (e || !replace))
        unlink(tmp);
    free(tmp);
    return e;
}

int plan_key_generate(plan_ctx *ctx, const char *dir, const char *name, plan_pubkey *out)
{
    if (!key_name_ok(name))
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "invalid key name '%s': use up to 64 letters, digits and '-_.'", name);
    if (sodium_init() < 0)
        return plan_fail(ctx, PLAN_ERR_FAILED, "libsodium failed to initialise");
    int r = plan_fs_mkdirs(dir, 0700);
    if (r)
        return plan_fail_errno(ctx, PLAN_ERR_IO, -r, "cannot create '%s'", dir);
    chmod(dir, 0700);
    char *file = secret_file(dir, name);
    struct stat st;
    if (lstat(file, &st) == 0) {
        int rc = plan_fail(ctx, PLAN_ERR_INVALID,
                           "a key named '%s' exists already ('%s'): choose another name", name,
                           file);
        free(file);
        return rc;
    }
    plan_seckey k;
    memset(&k, 0, sizeof(k));
    crypto_sign_keypair(k.pk, k.sk);
    char *sk64 = b64(k.sk, sizeof(k.sk)), *pk64 = b64(k.pk, sizeof(k.pk));
    json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "format", SECRET_FORMAT, "name", name,
                          "public", pk64, "secret", sk64);
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    sodium_memzero(sk64, strlen(sk64));
    free(sk64);
    /* Never readable by others, not even for an instant; never over
     * another key of that name. */
    char *secret = plan_xasprintf("%s\n", text);
    size_t len = strlen(secret);
    int e = write_secret_file(file, secret, len, false);
    int rc = e ? plan_fail_errno(ctx, PLAN_ERR_IO, -e, "cannot write the secret key '%s'", file)
               : 0;
    sodium_memzero(secret, len);
    sodium_memzero(text, strlen(text));
    free(secret);
    free(text);
    if (!rc) {
        memset(out, 0, sizeof(*out));
        out->name = plan_xstrdup(name);
        memcpy(out->pk, k.pk, sizeof(k.pk));
        key_id(out->pk, out->id);
        char *pub = plan_xasprintf("%s/%s.pub", dir, name);
        char *line = plan_xasprintf("%s:%s\n", name, pk64);
        plan_fs_write_atomic(pub, line, strlen(line), 0644);
        free(line);
        free(pub);
    }
    free(pk64);
    free(file);
    sodium_memzero(&k, sizeof(k));
    return rc;
}

int plan_key_load_secret(plan_ctx *ctx, const char *dir, const char *name, plan_seckey *out)
{
    memset(out, 0, sizeof(*out));
    if (!key_name_ok(name))
        return plan_fail(ctx, PLAN_ERR_INVALID, "invalid key name '%s'", name);
    if (sodium_init() < 0)
        return plan_fail(ctx, PLAN_ERR_FAILED, "libsodium failed to initialise");
    char *file = secret_file(dir, name);
    struct stat st;
    int rc = 0;
    if (stat(file, &st) != 0) {
        rc = plan_fail(ctx, PLAN_ERR_NOT_FOUND,
                       "there is no secret key '%s' in '%s': 'plan keys generate %s' makes one",
                       name, dir, name);
    } else if (st.st_mode & 077) {
        rc = plan_fail(ctx, PLAN_ERR_INVALID,
                       "the secret key '%s' is readable by others (mode %03o): run 'chmod 600 "
                       "%s' if nobody else could have read it, else make a new key",
                       file, (unsigned)(st.st_mode & 0777), file);
    }
    json_error_t err;
    json_t *j = rc ? NULL : json_load_file(file, JSON_REJECT_DUPLICATES, &err);
    const char *fmt = j ? json_string_value(json_object_get(j, "format")) : NULL;
    const char *sk = j ? json_string_value(json_object_get(j, "secret")) : NULL;
    if (!rc && (!fmt || strcmp(fmt, SECRET_FORMAT) != 0 || !sk ||
                unb64(sk, out->sk, sizeof(out->sk)) != 0))
        rc = plan_fail(ctx, PLAN_ERR_CORRUPT, "'%s' is not a plan secret key", file);
    json_decref(j);
    if (!rc) {
        crypto_sign_ed25519_sk_to_pk(out->pk, out->sk);
        key_id(out->pk, out->id);
        out->name = plan_xstrdup(name);
    } else {
        sodium_memzero(out, sizeof(*out));
    }
    free(file);
    return rc;
}

/* ---------- signatures ---------- */

static void domain_message(plan_buf *m, const char *purpose, const void *msg, size_t len)
{
    plan_buf_init(m);
    plan_buf_add(m, SIG_DOMAIN, sizeof(SIG_DOMAIN)); /* with its NUL */
    plan_buf_add(m, purpose, strlen(purpose) + 1);
    plan_buf_add(m, msg, len);
}

char *plan_sign(const plan_seckey *k, const char *purpose, const void *msg, size_t len)
{
    plan_buf m;
    domain_message(&m, purpose, msg, len);
    uint8_t sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const uint8_t *)m.data, m.len, k->sk);
    plan_buf_release(&m);
    return b64(sig, sizeof(sig));
}

int plan_verify(plan_ctx *ctx, const plan_pubkey *k, const char *purpose, const void *msg,
                size_t len, const char *sig_b64, const char *what)
{
    uint8_t sig[crypto_sign_BYTES];
    if (!sig_b64 || unb64(sig_b64, sig, sizeof(sig)) != 0)
        return plan_fail(ctx, PLAN_ERR_HOSTILE, "%s: the signature is not 64 bytes of base64",
                         what);
    plan_buf m;
    domain_message(&m, purpose, msg, len);
    int ok = crypto_sign_verify_detached(sig, (const uint8_t *)m.data, m.len, k->pk);
    plan_buf_release(&m);
    if (ok != 0)
        return plan_fail(ctx, PLAN_ERR_HOSTILE,
                         "%s: the signature by key '%s' (id %s) does not verify: the data was "
                         "changed or signed by another key",
                         what, k->name, k->id);
    return 0;
}

/* ---------- the keyring: trusted public keys ---------- */

void plan_keyring_release(plan_keyring *r)
{
    for (size_t i = 0; i < r->n; i++)
        plan_pubkey_release(&r->keys[i]);
    free(r->keys);
    memset(r, 0, sizeof(*r));
}

int plan_keyring_load(plan_ctx *ctx, const char *file, plan_keyring *out)
{
    memset(out, 0, sizeof(*out));
    plan_buf text;
    plan_buf_init(&text);
    int r = plan_fs_read_file(file, 1 << 20, &text);
    if (r == -ENOENT) {
        plan_buf_release(&text);
        return 0;
    }
    if (r) {
        plan_buf_release(&text);
        return plan_fail_errno(ctx, PLAN_ERR_IO, -r, "cannot read '%s'", file);
    }
    int rc = 0, line_no = 0;
    char *save = NULL;
    for (char *line = strtok_r(text.data, "\n", &save); line && !rc;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        plan_pubkey k;
        if ((rc = plan_pubkey_parse(ctx, line, &k)) != 0) {
            plan_fail_wrap(ctx, rc, "%s:%d", file, line_no);
            break;
        }
        rc = plan_keyring_add(ctx, out, &k);
        plan_pubkey_release(&k);
    }
    plan_buf_release(&text);
    if (rc)
        plan_keyring_release(out);
    return rc;
}

int plan_keyring_save(plan_ctx *ctx, const plan_keyring *r, const char *file)
{
    plan_buf b;
    plan_buf_init(&b);
    plan_buf_adds(&b, "# public keys plan trusts: one NAME:BASE64 per line ('plan keys "
                      "trust' and 'plan keys untrust' edit it)\n");
    for (size_t i = 0; i < r->n; i++) {
        char *t = plan_pubkey_format(&r->keys[i]);
        plan_buf_printf(&b, "%s\n", t);
        free(t);
    }
    char *dir = plan_xstrdup(file);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int e = slash ? plan_fs_mkdirs(dir, 0700) : 0;
    if (!e)
        e = plan_fs_write_atomic(file, b.data, b.len, 0644);
    free(dir);
    plan_buf_release(&b);
    return e ? plan_fail_errno(ctx, PLAN_ERR_IO, -e, "cannot write '%s'", file) : 0;
}

int plan_keyring_add(plan_ctx *ctx, plan_keyring *r, const plan_pubkey *k)
{
    for (size_t i = 0; i < r->n; i++) {
        bool same_key = !memcmp(r->keys[i].pk, k->pk, sizeof(k->pk));
        if (!strcmp(r->keys[i].name, k->name) && !same_key)
            return plan_fail(ctx, PLAN_ERR_INVALID,
                             "another key is already trusted as '%s' (id %s): untrust it first "
                             "('plan keys untrust %s') if it is being replaced",
                             k->name, r->keys[i].id, k->name);
        if (same_key)
            return 0; /* trusted already */
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 8;
        r->keys = plan_xrealloc(r->keys, r->cap * sizeof(*r->keys));
    }
    plan_pubkey *dst = &r->keys[r->n++];
    *dst = *k;
    dst->name = plan_xstrdup(k->name);
    return 0;
}

int plan_keyring_remove(plan_ctx *ctx, plan_keyring *r, const char *name_or_id)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->keys[i].name, name_or_id) != 0 && strcmp(r->keys[i].id, name_or_id) != 0)
            continue;
        plan_pubkey_release(&r->keys[i]);
        memmove(&r->keys[i], &r->keys[i + 1], (r->n - i - 1) * sizeof(*r->keys));
        r->n--;
        return 0;
    }
    return plan_fail(ctx, PLAN_ERR_NOT_FOUND,
                     "no trusted key is named '%s' or has that id (see 'plan keys list')",
                     name_or_id);
}

const plan_pubkey *plan_keyring_find(const plan_keyring *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->keys[i].id, id))
            return &r->keys[i];
    return NULL;
}

/* ---------- the cache key ---------- */

/* The key in file, if it is one this user alone could have written and
 * can read: 64 hex digits and a newline, mode 0600 or stricter. */
static bool cache_key_read(const char *file, uint8_t key[PLAN_CACHE_KEY_BYTES])
{
    int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    char text[2 * PLAN_CACHE_KEY_BYTES + 2];
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
              !(st.st_mode & 077) && st.st_size == (off_t)sizeof(text) - 1 &&
              read(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1 &&
              text[sizeof(text) - 2] == '\n';
    close(fd);
    if (ok) {
        text[sizeof(text) - 2] = '\0';
        ok = plan_hex_decode(text, key, PLAN_CACHE_KEY_BYTES) == 0;
    }
    return ok;
}

int plan_cache_key_load(plan_ctx *ctx, const char *file, uint8_t key[PLAN_CACHE_KEY_BYTES])
{
    if (cache_key_read(file, key))
        return 0;
    /* A new key: written aside and renamed, so a reader never sees half of
     * one. */
    randombytes_buf(key, PLAN_CACHE_KEY_BYTES);
    char text[2 * PLAN_CACHE_KEY_BYTES + 2];
    plan_hex_encode(key, PLAN_CACHE_KEY_BYTES, text);
    text[2 * PLAN_CACHE_KEY_BYTES] = '\n';
    text[2 * PLAN_CACHE_KEY_BYTES + 1] = '\0';
    char *dir = plan_xstrdup(file);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int e = slash ? plan_fs_mkdirs(dir, 0755) : 0;
    free(dir);
    if (!e)
        e = write_secret_file(file, text, sizeof(text) - 1, true);
    /* Another process may have made one at the same moment: theirs or
     * ours, whichever the file holds now, is the key. */
    if (!e && !cache_key_read(file, key))
        e = -EPERM;
    sodium_memzero(text, sizeof(text));
    return e ? plan_fail_errno(ctx, PLAN_ERR_IO, -e, "cannot make the cache key '%s'", file) : 0;
}
