/* Registries as a source of packages: versions and dependencies for the
 * solver (from the verified index cache), and realising a chosen version
 * in the store (publisher signature, download, hostile-safe import). */
#include "fetch.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct loaded {
    char *name;
    const plan_registry *reg; /* NULL: no registry has it */
    json_t *index;            /* "signed" part */
} loaded;

struct plan_regsource {
    plan_strlist allowed;     /* "name@version" that may be chosen though yanked */
    plan_strlist verified;    /* "registry/name@version" whose publisher signature
                                 verified (the indexes it was read from are kept) */
    plan_ctx *ctx;
    const plan_registries *regs;
    plan_regdb *db;
    const plan_keyring *trusted;
    loaded *items;
    size_t n, cap;
};

int plan_regsource_open(plan_ctx *ctx, const plan_registries *regs, plan_regdb *db,
                        const plan_keyring *trusted, plan_regsource **out)
{
    plan_regsource *s = plan_xcalloc(1, sizeof(*s));
    s->ctx = ctx;
    s->regs = regs;
    s->db = db;
    s->trusted = trusted;
    plan_strlist_init(&s->allowed);
    plan_strlist_init(&s->verified);
    *out = s;
    return 0;
}

void plan_regsource_allow(plan_regsource *s, const char *name, const char *version)
{
    char *key = plan_xasprintf("%s@%s", name, version);
    if (!plan_strlist_contains(&s->allowed, key))
        plan_strlist_take(&s->allowed, key);
    else
        free(key);
}

void plan_regsource_free(plan_regsource *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].name);
        json_decref(s->items[i].index);
    }
    free(s->items);
    plan_strlist_release(&s->allowed);
    plan_strlist_release(&s->verified);
    free(s);
}

static const loaded *find_loaded(const plan_regsource *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].name, name))
            return &s->items[i];
    return NULL;
}

static const loaded *add_loaded(plan_regsource *s, loaded l)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->items = plan_xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    s->items[s->n] = l;
    return &s->items[s->n++];
}

/* The index of name from the first registry (in priority order) that has
 * it: a lower registry can never shadow a name a higher one publishes. */
static int lookup(plan_regsource *s, const char *name, const loaded **out)
{
    if ((*out = find_loaded(s, name)) != NULL)
        return 0;
    loaded l = {.name = plan_xstrdup(name)};
    for (size_t r = 0; r < s->regs->n && !l.reg; r++) {
        json_t *idx = NULL;
        int rc = plan_registry_index(s->ctx, s->db, &s->regs->items[r], name, &idx);
        if (rc == PLAN_ERR_NOT_FOUND) {
            plan_ctx_clear_error(s->ctx);
            continue;
        }
        if (rc) {
            free(l.name);
            return rc;
        }
        l.reg = &s->regs->items[r];
        l.index = idx;
    }
    *out = add_loaded(s, l);
    return 0;
}

bool plan_regsource_has(plan_regsource *s, const char *name)
{
    const loaded *l;
    if (lookup(s, name, &l)) {
        plan_ctx_clear_error(s->ctx);
        return false;
    }
    return l->reg != NULL;
}

int plan_regsource_find(plan_regsource *s, const char *name, const char *version,
                        const plan_registry **reg, json_t **entry)
{
    const loaded *l;
    int rc = lookup(s, name, &l);
    if (rc)
        return rc;
    size_t i;
    json_t *p;
    if (l->reg)
        json_array_foreach(json_object_get(l->index, "packages"), i, p) {
            const char *v = json_string_value(json_object_get(p, "version"));
            if (v && !strcmp(v, version)) {
                *reg = l->reg;
                *entry = p;
                return 0;
            }
        }
    return plan_fail(s->ctx, PLAN_ERR_NOT_FOUND, "no registry publishes %s %s", name, version);
}

static int versions_cb(void *user, plan_ctx *ctx, const char *name, plan_strlist *out)
{
    (void)ctx;
    plan_regsource *s = user;
    const loaded *l;
    int rc = lookup(s, name, &l);
    if (rc)
        return rc;
    if (!l->reg)
        return PLAN_ERR_NOT_FOUND;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(l->index, "packages"), i, p) {
        const char *v = json_string_value(json_object_get(p, "version"));
        /* A yanked version is never chosen anew; one a lock or profile
         * already has stays available to it. */
        if (!v)
            continue;
        bool ok = !json_is_true(json_object_get(p, "yanked"));
        if (!ok) {
            char *key = plan_xasprintf("%s@%s", name, v);
            ok = plan_strlist_contains(&s->allowed, key);
            free(key);
        }
        if (ok)
            plan_strlist_add(out, v);
    }
    return 0;
}

/* The version of name among entry's references (basenames
 * "<digest>-<name>-<version>"), or NULL (caller frees). */
static char *referenced_version(json_t *entry, const char *name)
{
    size_t i, n = strlen(name);
    json_t *r;
    json_array_foreach(json_object_get(entry, "references"), i, r) {
        const char *b = json_string_value(r);
        if (!b || strlen(b) <= 32 + 1 + n + 1 || b[32] != '-')
            continue;
        const char *rest = b + 33;
        if (!strncmp(rest, name, n) && rest[n] == '-' && rest[n + 1] >= '0' && rest[n + 1] <= '9')
            return plan_xstrdup(rest + n + 1);
    }
    return NULL;
}

/* ---------- publisher signatures ---------- */

/* The publisher's signature over the fields docs/formats/registry.md
 * lists, with a key this machine trusts. */
static int verify_publisher(plan_ctx *ctx, const plan_keyring *trusted,
                            const plan_registry *reg, const char *name, json_t *entry)
{
    json_t *pub = json_object_get(entry, "publisher");
    const char *id = json_string_value(json_object_get(pub, "keyid"));
    const char *sig = json_string_value(json_object_get(pub, "sig"));
    const char *version = json_string_value(json_object_get(entry, "version"));
    const plan_pubkey *k = id ? plan_keyring_find(trusted, id) : NULL;
    if (!k)
        return plan_fail(ctx, PLAN_ERR_HOSTILE,
                         "%s %s from registry '%s' is signed by key %s, which this machine does "
                         "not trust: get that publisher's public key from them (not from the "
                         "registry) and run 'plan keys trust NAME:BASE64'",
                         name, version ? version : "?", reg->name, id ? id : "(none)");
    static const char *const fields[] = {"version", "store_dir", "path", "content_hash",
                                         "references", "dependencies", "archive", "recipe",
                                         NULL};
    json_t *msg = json_object();
    json_object_set_new(msg, "name", json_string(name));
    for (size_t i = 0; fields[i]; i++) {
        json_t *v = json_object_get(entry, fields[i]);
        if (!v) {
            json_decref(msg);
            return plan_fail(ctx, PLAN_ERR_HOSTILE, "%s %s in registry '%s' lacks '%s'",
                             name, version ? version : "?", reg->name, fields[i]);
        }
        json_object_set(msg, fields[i], v);
    }
    char *text = plan_canonical_json(msg);
    json_decref(msg);
    char *what = plan_xasprintf("%s %s from registry '%s'", name, version ? version : "?",
                                reg->name);
    int rc = text ? plan_verify(ctx, k, "package", text, strlen(text), sig, what)
                  : plan_fail(ctx, PLAN_ERR_HOSTILE, "%s has a real number", what);
    free(what);
    free(text);
    return rc;
}

/* How an entry whose publisher signature verified is remembered (caller
 * frees). */
static char *verified_key(const plan_registry *reg, const char *name, const char *version)
{
    return plan_xasprintf("%s/%s@%s", reg->name, name, version ? version : "");
}

/* Each entry is verified once per source: the solver and the realising
 * both ask, and the entry (held by the loaded index) cannot change. */
static int check_publisher(plan_regsource *s, const plan_registry *reg, const char *name,
                           json_t *entry)
{
    const char *version = json_string_value(json_object_get(entry, "version"));
    char *key = verified_key(reg, name, version);
    int rc = 0;
    if (!plan_strlist_contains(&s->verified, key)) {
        rc = verify_publisher(s->ctx, s->trusted, reg, name, entry);
        if (!rc) {
            plan_strlist_take(&s->verified, key);
            key = NULL;
        }
    }
    free(key);
    return rc;
}

/* name@version's index entry, its publisher signature verified. */
static int find_verified(plan_regsource *s, const char *name, const char *version,
                         const plan_registry **reg, json_t **entry)
{
    int rc = plan_regsource_find(s, name, version, reg, entry);
    return rc ? rc : check_publisher(s, *reg, name, *entry);
}

static int deps_cb(void *user, plan_ctx *ctx, const char *name, const char *version,
                   plan_strlist *names, plan_strlist *ranges)
{
    (void)ctx;
    plan_regsource *s = user;
    const plan_registry *reg;
    json_t *entry;
    /* The dependencies steer the solver: they count only once the
     * publisher's signature over them verifies (the registry's own
     * signature does not vouch for what the publisher declared). */
    int rc = find_verified(s, name, version, &reg, &entry);
    if (rc)
        return rc;
    const char *dep;
    json_t *range;
    json_object_foreach(json_object_get(entry, "dependencies"), dep, range) {
        if (!json_is_string(range))
            return plan_fail(s->ctx, PLAN_ERR_HOSTILE, "the index of %s in registry '%s' has a "
                                                       "dependency range that is not text",
                             name, reg->name);
        /* The archive refers to exact store paths: a dependency it was
         * built against is needed in exactly that version, whatever the
         * recipe's range allows. */
        char *exact = referenced_version(entry, dep);
        plan_strlist_add(names, dep);
        plan_strlist_add(ranges, exact ? exact : json_string_value(range));
        free(exact);
    }
    return 0;
}

/* ---------- loading ahead of the solver ---------- */

/* One index to verify on a worker: the text is read from the database
 * first (one connection, one thread), the rest touches nothing shared. */
typedef struct prefetch_task {
    const char *name;
    const plan_registry *reg;
    plan_buf text;
    json_t *snapshot; /* the verified snapshot's "indexes" (borrowed), or NULL */
    json_t *index;  /* out: its "signed" part, or NULL */
    char *verified; /* out: the check_publisher key of the entry that verified */
} prefetch_task;

typedef struct prefetch_job {
    prefetch_task *tasks;
    size_t n;
    const plan_keyring *trusted;
    atomic_size_t next;
} prefetch_job;

/* The entry the solver most likely chooses: the newest one not yanked. */
static json_t *newest_entry(json_t *index, const char **version)
{
    json_t *best = NULL, *p;
    plan_semver top;
    size_t i;
    json_array_foreach(json_object_get(index, "packages"), i, p) {
        const char *v = json_string_value(json_object_get(p, "version"));
        plan_semver sv;
        if (!v || json_is_true(json_object_get(p, "yanked")) || plan_semver_parse(NULL, v, &sv))
            continue;
        if (best && plan_semver_compare(&sv, &top) <= 0) {
            plan_semver_release(&sv);
            continue;
        }
        if (best)
            plan_semver_release(&top);
        top = sv;
        best = p;
        *version = v;
    }
    if (best)
        plan_semver_release(&top);
    return best;
}

static void *prefetch_worker(void *arg)
{
    prefetch_job *job = arg;
    plan_ctx *ctx = plan_ctx_new(); /* its errors are dropped: see the header */
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n)
            break;
        prefetch_task *t = &job->tasks[i];
        if (plan_registry_index_open(ctx, t->reg, t->name, t->text.data, t->text.len,
                                     t->snapshot, &t->index)) {
            t->index = NULL;
            continue;
        }
        const char *version = NULL;
        json_t *entry = newest_entry(t->index, &version);
        if (entry && !verify_publisher(ctx, job->trusted, t->reg, t->name, entry))
            t->verified = verified_key(t->reg, t->name, version);
    }
    plan_ctx_free(ctx);
    return NULL;
}


void plan_regsource_prefetch(plan_regsource *s, const plan_strlist *names)
{
    prefetch_task *tasks = plan_xcalloc(names->len ? names->len : 1, sizeof(*tasks));
    plan_strlist seen;
    plan_strlist_init(&seen);
    size_t n = 0;
    plan_regdb_read_begin(s->db);
    for (size_t k = 0; k < names->len; k++) {
        const char *name = names->items[k];
        if (find_loaded(s, name) || plan_strlist_contains(&seen, name))
            continue;
        plan_strlist_add(&seen, name);
        /* The first registry that has the name, as lookup chooses. */
        for (size_t r = 0; r < s->regs->n; r++) {
            prefetch_task *t = &tasks[n];
            plan_buf_init(&t->text);
            int rc = plan_registry_index_text(s->ctx, s->db, &s->regs->items[r], name, &t->text);
            if (!rc) {
                t->name = name;
                t->reg = &s->regs->items[r];
                t->snapshot = plan_registry_snapshot_indexes(s->db, t->reg);
                n++;
                break;
            }
            plan_buf_release(&t->text);
            plan_ctx_clear_error(s->ctx);
            if (rc != PLAN_ERR_NOT_FOUND)
                break; /* lookup reads it again and reports it */
        }
    }
    plan_regdb_read_end(s->db);
    prefetch_job job = {.tasks = tasks, .n = n, .trusted = s->trusted};
    atomic_init(&job.next, 0);
    plan_run_threads(plan_threads_for(n, 8), prefetch_worker, &job);
    /* What verified is what lookup and check_publisher would have kept;
     * what did not is left for them to read again and report. */
    for (size_t i = 0; i < n; i++) {
        prefetch_task *t = &tasks[i];
        if (t->index)
            add_loaded(s, (loaded){.name = plan_xstrdup(t->name), .reg = t->reg,
                                   .index = t->index});
        if (t->verified && t->index && !plan_strlist_contains(&s->verified, t->verified))
            plan_strlist_take(&s->verified, t->verified);
        else
            free(t->verified);
        plan_buf_release(&t->text);
    }
    plan_strlist_release(&seen);
    free(tasks);
}

plan_resolver_provider plan_regsource_provider(plan_regsource *s)
{
    plan_resolver_provider p = {.versions = versions_cb, .dependencies = deps_cb, .user = s};
    return p;
}

/* ---------- realising ---------- */

/* The signed "archive" of an entry: 64 hex (borrowed) and size. */
static int signed_archive(plan_regsource *s, const plan_registry *reg, const char *name,
                          json_t *entry, const char **hex, uint64_t *size)
{
    json_t *arc = json_object_get(entry, "archive");
    const char *hash = json_string_value(json_object_get(arc, "hash"));
    json_t *bytes = json_object_get(arc, "size");
    const char *version = json_string_value(json_object_get(entry, "version"));
    if (!hash || strncmp(hash, "blake2b:", 8) != 0 || strlen(hash) != 72 ||
        !json_is_integer(bytes) || json_integer_value(bytes) <= 0)
        return plan_fail(s->ctx, PLAN_ERR_HOSTILE, "%s %s in registry '%s' has no valid archive "
                                                   "hash and size",
                         name, version ? version : "?", reg->name);
    *hex = hash + 8;
    *size = (uint64_t)json_integer_value(bytes);
    return 0;
}

typedef struct want {
    const char *name, *version;
    const plan_registry *reg;
    json_t *entry;
    const char *path;        /* basename */
    bool present;
    plan_artifact art;
    char *url, *hex;
} want;

/* Each archive goes to the import as soon as it is downloaded. */
typedef struct stream_feed {
    plan_import_stream *stream;
    plan_artifact *arts;
} stream_feed;

static int feed_one(void *user, size_t k)
{
    stream_feed *f = user;
    plan_artifact *a = &f->arts[k];
    if (a->path)
        return plan_store_import_stream_add(f->stream, k, a->path);
    return plan_store_import_stream_add_memory(f->stream, k, a->url, &a->body);
}

/* Small archives are downloaded into memory and imported from there: no
 * file in the cache to write, rename and read back.  Up to this much of
 * a batch; the rest goes through the cache. */
#define MEMORY_ARCHIVE_MAX (256u << 10)
#define MEMORY_BATCH_MAX (64u << 20)

int plan_regsource_realise(plan_regsource *s, plan_store *store, const char *cache_dir,
                           const char *const *names, const char *const *versions, size_t n,
                           bool offline, char **basenames)
{
    plan_ctx *ctx = s->ctx;
    want *w = plan_xcalloc(n ? n : 1, sizeof(*w));
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        w[i].name = names[i];
        w[i].version = versions[i];
        rc = find_verified(s, names[i], versions[i], &w[i].reg, &w[i].entry);
        if (rc)
            break;
        const char *dir = json_string_value(json_object_get(w[i].entry, "store_dir"));
        w[i].path = json_string_value(json_object_get(w[i].entry, "path"));
        if (!dir || !w[i].path)
            rc = plan_fail(ctx, PLAN_ERR_HOSTILE, "%s %s in registry '%s' has no store path",
                           names[i], versions[i], w[i].reg->name);
        else if (strcmp(dir, plan_store_dir(store)) != 0)
            rc = plan_fail(ctx, PLAN_ERR_FAILED,
                           "%s %s was published for the store '%s', not this one ('%s'); "
                           "building its published recipe here is not supported yet: use a "
                           "root whose store is '%s', or build from a recipe repository",
                           names[i], versions[i], dir, plan_store_dir(store), dir);
        if (rc)
            break;
    }
    /* Those in the store already are held, all at once. */
    const char **paths = plan_xcalloc(n ? n : 1, sizeof(char *));
    bool *present = plan_xcalloc(n ? n : 1, sizeof(bool));
    for (size_t i = 0; i < n && !rc; i++)
        paths[i] = w[i].path;
    if (!rc)
        rc = plan_store_hold_present(store, paths, n, present);
    free(paths);
    for (size_t i = 0; i < n && !rc; i++) {
        w[i].present = present[i];
        if (w[i].present)
            continue;
        if (offline) {
            rc = plan_fail(ctx, PLAN_ERR_NOT_FOUND,
                           "%s %s is not in the store, and --frozen never downloads: run once "
                           "without --frozen to fetch it", names[i], versions[i]);
            break;
        }
        const char *hex;
        uint64_t size;
        if ((rc = signed_archive(s, w[i].reg, names[i], w[i].entry, &hex, &size)))
            break;
        w[i].hex = plan_xstrdup(hex);
        w[i].url = plan_xasprintf("%s/archives/%s.tar.zst", w[i].reg->url, w[i].hex);
        w[i].art = (plan_artifact){.url = w[i].url, .hex = w[i].hex, .size = size};
    }
    free(present);
    /* One parallel batch for everything missing. */
    size_t na = 0;
    plan_artifact *arts = plan_xcalloc(n ? n : 1, sizeof(*arts));
    size_t *which = plan_xcalloc(n ? n : 1, sizeof(size_t));
    for (size_t i = 0; i < n && !rc; i++)
        if (!w[i].present) {
            which[na] = i;
            arts[na++] = w[i].art;
        }
    /* From the download to the end of the import, the downloads are
     * ours: plan gc leaves the cache alone meanwhile. */
    int cache_lock = -1;
    if (!rc && na)
        rc = plan_download_cache_lock(ctx, cache_dir, &cache_lock);
    /* One batch, extracted while the rest downloads: archives may refer
     * to each other's paths in any order, and many small ones then cost
     * one transaction. */
    stream_feed feed = {.arts = arts};
    uint64_t in_memory = 0;
    for (size_t k = 0; k < na; k++) {
        plan_buf_init(&arts[k].body);
        arts[k].memory = arts[k].size <= MEMORY_ARCHIVE_MAX &&
                         in_memory + arts[k].size <= MEMORY_BATCH_MAX;
        if (arts[k].memory)
            in_memory += arts[k].size;
    }
    if (!rc && na) {
        plan_strlist expected;
        plan_strlist_init(&expected);
        uint64_t total = 0;
        for (size_t k = 0; k < na; k++) {
            plan_strlist_add(&expected, w[which[k]].path);
            total += arts[k].size;
        }
        rc = plan_store_import_stream_begin(store, na, total, &expected, &feed.stream);
        plan_strlist_release(&expected);
    }
    if (!rc && na)
        rc = plan_fetch_artifacts_each(ctx, cache_dir, arts, na, 8, feed_one, &feed);
    if (feed.stream) {
        plan_strlist *contents = plan_xcalloc(na, sizeof(*contents));
        plan_import_result ir;
        int r = plan_store_import_stream_finish(feed.stream, rc != 0, contents, &ir);
        bool imported = r == 0;
        if (!rc)
            rc = r;
        for (size_t k = 0; k < na && !rc; k++) {
            want *x = &w[which[k]];
            if (!plan_strlist_contains(&contents[k], x->path))
                rc = plan_fail(ctx, PLAN_ERR_HOSTILE,
                               "the archive of %s %s from registry '%s' does not hold '%s', the "
                               "store path its index names: refused",
                               x->name, x->version, x->reg->name, x->path);
        }
        for (size_t k = 0; k < na && imported; k++)
            plan_strlist_release(&contents[k]);
        if (imported)
            plan_import_result_release(&ir);
        free(contents);
    }
    plan_download_cache_unlock(cache_lock);
    for (size_t i = 0; i < n; i++) {
        if (!rc)
            basenames[i] = plan_xstrdup(w[i].path);
        free(w[i].url);
        free(w[i].hex);
    }
    for (size_t k = 0; k < na; k++) {
        free(arts[k].path);
        plan_buf_release(&arts[k].body);
    }
    free(arts);
    free(which);
    free(w);
    return rc;
}

int plan_regsource_archive(plan_regsource *s, const char *cache_dir, const char *name,
                           const char *version, const char *path, char **archive)
{
    const plan_registry *reg;
    json_t *entry;
    int rc = find_verified(s, name, version, &reg, &entry);
    if (rc)
        return rc;
    const char *published = json_string_value(json_object_get(entry, "path"));
    if (!published || strcmp(published, path) != 0)
        return plan_fail(s->ctx, PLAN_ERR_NOT_FOUND,
                         "registry '%s' publishes %s %s as '%s', not '%s'", reg->name, name,
                         version, published ? published : "?", path);
    const char *hex;
    uint64_t size;
    if ((rc = signed_archive(s, reg, name, entry, &hex, &size)))
        return rc;
    char *url = plan_xasprintf("%s/archives/%s.tar.zst", reg->url, hex);
    plan_artifact a = {.url = url, .hex = hex, .size = size};
    rc = plan_fetch_artifacts(s->ctx, cache_dir, &a, 1, 1);
    free(url);
    if (!rc)
        *archive = a.path;
    else
        free(a.path);
    return rc;
}

/* ---------- published recipes ---------- */

int plan_regsource_store_dir(plan_regsource *s, const char *name, const char *version,
                             const char **dir)
{
    const plan_registry *reg;
    json_t *entry;
    int rc = plan_regsource_find(s, name, version, &reg, &entry);
    if (rc)
        return rc;
    *dir = json_string_value(json_object_get(entry, "store_dir"));
    if (!*dir)
        return plan_fail(s->ctx, PLAN_ERR_HOSTILE, "%s %s in registry '%s' names no store "
                                                   "directory", name, version, reg->name);
    return 0;
}

int plan_regsource_recipe(plan_regsource *s, const char *name, const char *version,
                          const char *dir, char **file)
{
    const plan_registry *reg;
    json_t *entry;
    int rc = find_verified(s, name, version, &reg, &entry);
    if (rc)
        return rc;
    json_t *rcp = json_object_get(entry, "recipe");
    if (json_is_null(rcp)) {
        const char *built_for = json_string_value(json_object_get(entry, "store_dir"));
        return plan_fail(s->ctx, PLAN_ERR_NOT_FOUND,
                         "%s %s was published without a recipe, so it can only be installed "
                         "into a root whose store is '%s' (this one's differs): ask its "
                         "publisher for a recipe, or use such a root",
                         name, version, built_for ? built_for : "?");
    }
    const char *hash = json_string_value(json_object_get(rcp, "hash"));
    json_t *size = json_object_get(rcp, "size");
    plan_hash signed_hash;
    if (!hash || plan_hash_parse(hash, &signed_hash) != 0 || !json_is_integer(size) ||
        json_integer_value(size) <= 0 || json_integer_value(size) > (1 << 24))
        return plan_fail(s->ctx, PLAN_ERR_HOSTILE, "%s %s in registry '%s' has no valid recipe "
                                                   "hash and size", name, version, reg->name);
    plan_http_get g = {.max_bytes = (size_t)json_integer_value(size)};
    char *url = plan_xasprintf("%s/recipes/%s/%s.yaml", reg->url, name, version);
    g.url = url;
    rc = plan_http_get_many(s->ctx, &g, 1, 1);
    if (!rc && !g.found)
        rc = plan_fail(s->ctx, g.refused ? PLAN_ERR_HOSTILE : PLAN_ERR_NOT_FOUND,
                       "cannot download the recipe of %s %s from '%s': %s", name, version, url,
                       g.error ? g.error : "not found");
    if (!rc) {
        uint8_t got[PLAN_HASH_BYTES];
        crypto_generichash(got, sizeof(got), (const uint8_t *)g.body.data, g.body.len, NULL, 0);
        if (g.body.len != (size_t)json_integer_value(size) ||
            sodium_memcmp(got, signed_hash.bytes, sizeof(got)) != 0)
            rc = plan_fail(s->ctx, PLAN_ERR_HOSTILE,
                           "the recipe of %s %s from '%s' does not match the hash its publisher "
                           "signed: refused", name, version, url);
    }
    if (!rc) {
        char *path = plan_xasprintf("%s/%s-%s.yaml", dir, name, version);
        int e = plan_fs_mkdirs(dir, 0755);
        if (!e)
            e = plan_fs_write_atomic(path, g.body.data, g.body.len, 0644);
        if (e) {
            rc = plan_fail_errno(s->ctx, PLAN_ERR_IO, -e, "cannot write '%s'", path);
            free(path);
        } else {
            *file = path;
        }
    }
    plan_http_get_release(&g);
    free(url);
    return rc;
}
