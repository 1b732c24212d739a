/* Rotating the registry key (docs/formats/registry.md#key-rotation).
 *
 * Clients pin the registry key; a new key is only believed when the key
 * they pinned vouches for it.  A rotation statement names the key it
 * replaces and the new one, and carries two signatures: the old key's
 * (the authority) and the new key's (proof that its holder has it).  The
 * statements accumulate in static/rotations.json, so a client pinned to
 * any earlier key walks the chain to the current one.  In the same change
 * every index, the snapshot and the timestamp are signed again with the
 * new key. */
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define ROTATIONS_FILE "rotations.json"
#define ROTATIONS_FORMAT "plan-rotations-v1"

/* The statements so far (a new, empty list when there are none). */
static int read_rotations(reg *r, json_t **out)
{
    char *file = plan_path_join(r->static_dir, ROTATIONS_FILE);
    plan_buf text;
    plan_buf_init(&text);
    int e = plan_fs_read_file(file, 16u << 20, &text);
    int rc = 0;
    json_t *doc = NULL;
    if (e == -ENOENT) {
        doc = json_pack("{s:s, s:[]}", "format", ROTATIONS_FORMAT, "rotations");
    } else if (e) {
        rc = plan_fail_errno(r->ctx, PLAN_ERR_IO, -e, "cannot read '%s'", file);
    } else {
        json_error_t err;
        doc = json_loadb(text.data, text.len, 0, &err);
        if (!json_is_array(json_object_get(doc, "rotations"))) {
            json_decref(doc);
            doc = NULL;
            rc = plan_fail(r->ctx, PLAN_ERR_CORRUPT, "'%s' is damaged: it lists no rotations",
                           file);
        }
    }
    plan_buf_release(&text);
    free(file);
    *out = doc;
    return rc;
}

/* The statement that old vouches for next, signed by both. */
static json_t *statement(const plan_seckey *old, const plan_seckey *next, int64_t sequence,
                         int64_t now)
{
    plan_pubkey pub = {.name = next->name};
    memcpy(pub.pk, next->pk, sizeof(pub.pk));
    char *key = plan_pubkey_format(&pub);
    json_t *sg = json_pack("{s:s, s:I, s:s, s:s, s:s, s:I}", "type", "rotation", "sequence",
                           (json_int_t)sequence, "from", old->id, "key", key, "keyid", next->id,
                           "created", (json_int_t)now);
    free(key);
    char *text = plan_canonical_json(sg);
    char *by_old = plan_sign(old, "rotation", text, strlen(text));
    char *by_next = plan_sign(next, "rotation", text, strlen(text));
    json_t *doc = json_pack("{s:o, s:[{s:s, s:s}, {s:s, s:s}]}", "signed", sg, "signatures",
                            "keyid", old->id, "sig", by_old, "keyid", next->id, "sig", by_next);
    free(by_old);
    free(by_next);
    free(text);
    return doc;
}

/* Every package name that has an index. */
static int index_names(reg *r, plan_strlist *out)
{
    sqlite3_stmt *st = reg_prepare(r, "SELECT name FROM packages WHERE index_version > 0");
    if (!st)
        return PLAN_ERR_DB;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        plan_strlist_add(out, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : reg_db_fail(r, "listing the indexes");
}

int reg_rotate_key(reg *r, const char *new_name, int64_t now, plan_pubkey *out)
{
    char *dir = plan_path_join(r->dir, "keys");
    plan_seckey next;
    memset(&next, 0, sizeof(next));
    json_t *list = NULL;
    plan_strlist names;
    plan_strlist_init(&names);
    int rc = read_rotations(r, &list);
    if (!rc)
        rc = plan_key_generate(r->ctx, dir, new_name, out);
    if (!rc)
        rc = plan_key_load_secret(r->ctx, dir, new_name, &next);
    if (!rc)
        rc = index_names(r, &names);
    reg_change c;
    bool begun = !rc && (rc = reg_change_begin(r, &c, now)) == 0;
    if (!rc) {
        json_t *rots = json_object_get(list, "rotations");
        json_array_append_new(rots, statement(&r->key, &next, (int64_t)json_array_size(rots) + 1,
                                              now));
        char *text = json_dumps(list, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        rc = reg_change_stage(r, &c, ROTATIONS_FILE, text, strlen(text));
        free(text);
    }
    if (!rc)
        rc = reg_meta_set(r, "key_name", new_name);
    /* From here on the registry signs with the new key. */
    plan_seckey old = r->key;
    if (!rc) {
        r->key = next;
        memset(&next, 0, sizeof(next));
        rc = reg_change_resign(r, &c, &names, true);
    }
    if (begun && !rc) {
        rc = reg_change_commit(r, &c);
    } else if (begun) {
        reg_change_abort(r, &c);
    }
    if (rc && r->key.name != old.name) {
        /* Back to the old key in memory; the new one stays on disk,
         * unused (its name is taken: rotate again with another). */
        plan_seckey_wipe(&r->key);
        r->key = old;
    } else if (!rc) {
        plan_seckey_wipe(&old);
    }
    if (next.name)
        plan_seckey_wipe(&next);
    plan_strlist_release(&names);
    json_decref(list);
    free(dir);
    return rc;
}

int reg_serve_lock(reg *r, bool exclusive, int *fd)
{
    char *file = plan_path_join(r->dir, "serve.lock");
    *fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int rc = 0;
    if (*fd < 0)
        rc = plan_fail_errno(r->ctx, PLAN_ERR_IO, errno, "cannot open '%s'", file);
    else if (flock(*fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0)
        rc = exclusive ? plan_fail(r->ctx, PLAN_ERR_BUSY,
                                   "a 'plan-registry serve' is running on '%s': stop it, "
                                   "rotate the key, then start it again", r->dir)
                       : plan_fail(r->ctx, PLAN_ERR_BUSY,
                                   "the key of '%s' is being rotated right now: try again "
                                   "in a moment", r->dir);
    if (rc && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    free(file);
    return rc;
}
