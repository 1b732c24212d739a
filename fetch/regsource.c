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
    /* With a cache key: the BLAKE2b-256 of the index text, and the
     * "VERSION KEYID" of its entries whose publisher signature is known to
     * verify. */
    bool hashed;
    uint8_t text_hash[PLAN_CHECKS_TAG_BYTES];
    plan_strlist passed;
} loaded;

struct plan_regsource {
    plan_strlist allowed;     /* "name@version" that may be chosen though yanked */
    plan_strmap verified;     /* "registry/name@version" whose publisher signature
                                 verified (the indexes it was read from are kept) */
    plan_strmap by_name;      /* name -> its index in items */
    plan_ctx *ctx;
    const plan_registries *regs;
    plan_regdb *db;
    const plan_keyring *trusted;
    bool has_cache_key;
    uint8_t cache_key[PLAN_CACHE_KEY_BYTES];
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
    plan_strmap_init(&s->verified);
    plan_strmap_init(&s->by_name);
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

void plan_regsource_remember(plan_regsource *s, const uint8_t key[PLAN_CACHE_KEY_BYTES])
{
    memcpy(s->cache_key, key, PLAN_CACHE_KEY_BYTES);
    s->has_cache_key = true;
}

static void loaded_release(loaded *l)
{
    free(l->name);
    json_decref(l->index);
    plan_strlist_release(&l->passed);
}

void plan_regsource_free(plan_regsource *s)
{
    if (!s)
        return;
    sodium_memzero(s->cache_key, sizeof(s->cache_key));
    for (size_t i = 0; i < s->n; i++)
        loaded_release(&s->items[i]);
    free(s->items);
    plan_strlist_release(&s->allowed);
    plan_strmap_release(&s->verified);
    plan_strmap_release(&s->by_name);
    free(s);
}

/* Valid until the next add_loaded. */
static loaded *find_loaded(plan_regsource *s, const char *name)
{
    ssize_t i = plan_strmap_get(&s->by_name, name);
    return i >= 0 ? &s->items[i] : NULL;
}

static loaded *add_loaded(plan_regsource *s, loaded l)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->items = plan_xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    plan_strmap_put(&s->by_name, l.name, s->n);
    s->items[s->n] = l;
    return &s->items[s->n++];
}

/* ---------- remembered publisher checks ----------
 *
 * A publisher signature that verified is remembered in the registry cache
 * (docs/formats/signatures.md#remembered-checks), so the next command that
 * reads the same index does not verify it again (an Ed25519 verification
 * costs about 60 us; an install of 200 plans made 200).  The cache is a
 * file others may be able to write, so a row counts only under its tag:
 * BLAKE2b-256 keyed with this machine's cache key (a secret the cache's
 * writers do not have) over the registry name, the package name, the
 * BLAKE2b-256 of the exact index text and the remembered lines.  A changed
 * text, a line added or a row copied from another index fails the tag, and
 * the signatures are then verified as if nothing were remembered; a
 * remembered check counts only while its key is trusted. */

static void text_hash(const plan_buf *text, uint8_t out[PLAN_CHECKS_TAG_BYTES])
{
    crypto_generichash(out, PLAN_CHECKS_TAG_BYTES, (const uint8_t *)text->data, text->len,
                       NULL, 0);
}

static void checks_tag(const uint8_t *key, const char *registry, const char *name,
                       const uint8_t hash[PLAN_CHECKS_TAG_BYTES], const char *passed,
                       size_t passed_len, uint8_t out[PLAN_CHECKS_TAG_BYTES])
{
    static const char domain[] = "plan-publisher-checks-v1";
    crypto_generichash_state h;
    crypto_generichash_init(&h, key, PLAN_CACHE_KEY_BYTES, PLAN_CHECKS_TAG_BYTES);
    /* Each name with its NUL (names hold none) and the hash of fixed
     * size before the lines: no part can run into the next. */
    crypto_generichash_update(&h, (const uint8_t *)domain, sizeof(domain));
    crypto_generichash_update(&h, (const uint8_t *)registry, strlen(registry) + 1);
    crypto_generichash_update(&h, (const uint8_t *)name, strlen(name) + 1);
    crypto_generichash_update(&h, hash, PLAN_CHECKS_TAG_BYTES);
    crypto_generichash_update(&h, (const uint8_t *)passed, passed_len);
    crypto_generichash_final(&h, out, PLAN_CHECKS_TAG_BYTES);
}

/* The "VERSION KEYID" line of an entry (caller frees), or NULL. */
static char *passed_line(json_t *entry)
{
    const char *version = json_string_value(json_object_get(entry, "version"));
    const char *id =
        json_string_value(json_object_get(json_object_get(entry, "publisher"), "keyid"));
    return version && id ? plan_xasprintf("%s %s", version, id) : NULL;
}

static char *passed_text(const plan_strlist *passed)
{
    plan_buf b;
    plan_buf_init(&b);
    for (size_t i = 0; i < passed->len; i++)
        plan_buf_printf(&b, "%s\n", passed->items[i]);
    return plan_buf_detach(&b);
}

/* The lines of a remembered row into out, if its tag is right for the
 * index text whose hash is given (else nothing). */
static void passed_take(const uint8_t *key, const char *registry, const char *name,
                        const uint8_t hash[PLAN_CHECKS_TAG_BYTES],
                        const uint8_t stored[PLAN_CHECKS_TAG_BYTES], const plan_buf *lines,
                        plan_strlist *out)
{
    uint8_t want[PLAN_CHECKS_TAG_BYTES];
    checks_tag(key, registry, name, hash, lines->data, lines->len, want);
    if (sodium_memcmp(want, stored, PLAN_CHECKS_TAG_BYTES) != 0)
        return;
    const char *p = lines->data, *end = lines->data + lines->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        if (nl > p)
            plan_strlist_take(out, plan_xstrndup(p, (size_t)(nl - p)));
        p = nl + 1;
    }
}

/* A row remembering passed for the index text whose hash is given
 * (row->passed: caller frees). */
static plan_checks_row checks_row(const uint8_t *key, const char *registry, const char *name,
                                  const uint8_t hash[PLAN_CHECKS_TAG_BYTES],
                                  const plan_strlist *passed,
                                  uint8_t tag[PLAN_CHECKS_TAG_BYTES])
{
    char *text = passed_text(passed);
    checks_tag(key, registry, name, hash, text, strlen(text), tag);
    return (plan_checks_row){.registry = registry, .name = name, .tag = tag, .passed = text};
}

/* Whether entry's publisher signature is remembered as verified, with a
 * key this machine trusts now. */
static bool remembered(const plan_strlist *passed, const plan_keyring *trusted, json_t *entry)
{
    if (!passed->len)
        return false;
    const char *id =
        json_string_value(json_object_get(json_object_get(entry, "publisher"), "keyid"));
    char *line = passed_line(entry);
    bool yes = line && id && plan_keyring_find(trusted, id) && plan_strlist_contains(passed, line);
    free(line);
    return yes;
}

/* Remember that l's entry verified (a cache: a failure to write is
 * forgotten, and the check is simply made again next time). */
static void remember(plan_regsource *s, loaded *l, json_t *entry)
{
    char *line = l->hashed ? passed_line(entry) : NULL;
    if (!line || plan_strlist_contains(&l->passed, line)) {
        free(line);
        return;
    }
    plan_strlist_take(&l->passed, line);
    uint8_t tag[PLAN_CHECKS_TAG_BYTES];
    plan_checks_row row = checks_row(s->cache_key, l->reg->name, l->name, l->text_hash,
                                     &l->passed, tag);
    if (plan_regdb_checks_put(s->db, 1, &row))
        plan_ctx_clear_error(s->ctx);
    free((char *)row.passed);
}

/* What is remembered about the index text of l, into l. */
static void recall(plan_regsource *s, loaded *l, const plan_buf *text)
{
    if (!s->has_cache_key)
        return;
    text_hash(text, l->text_hash);
    l->hashed = true;
    uint8_t stored[PLAN_CHECKS_TAG_BYTES];
    plan_buf lines;
    plan_buf_init(&lines);
    if (!plan_regdb_checks_get(s->db, l->reg->name, l->name, stored, &lines))
        passed_take(s->cache_key, l->reg->name, l->name, l->text_hash, stored, &lines,
                    &l->passed);
    plan_ctx_clear_error(s->ctx);
    plan_buf_release(&lines);
}

/* The index of name from the first registry (in priority order) that has
 * it: a lower registry can never shadow a name a higher one publishes. */
static int lookup(plan_regsource *s, const char *name, loaded **out)
{
    if ((*out = find_loaded(s, name)) != NULL)
        return 0;
    loaded l = {.name = plan_xstrdup(name)};
    plan_strlist_init(&l.passed);
    plan_buf text;
    plan_buf_init(&text);
    int rc = 0;
    for (size_t r = 0; r < s->regs->n && !l.reg && !rc; r++) {
        const plan_registry *reg = &s->regs->items[r];
        rc = plan_registry_index_text(s->ctx, s->db, reg, name, &text);
        if (rc == PLAN_ERR_NOT_FOUND) {
            plan_ctx_clear_error(s->ctx);
            rc = 0;
            continue;
        }
        if (!rc)
            rc = plan_registry_index_open(s->ctx, reg, name, text.data, text.len,
                                          plan_registry_snapshot_indexes(s->db, reg), &l.index);
        if (!rc) {
            l.reg = reg;
            recall(s, &l, &text);
        }
    }
    plan_buf_release(&text);
    if (rc) {
        loaded_release(&l);
        return rc;
    }
    *out = add_loaded(s, l);
    return 0;
}

bool plan_regsource_has(plan_regsource *s, const char *name)
{
    loaded *l;
    if (lookup(s, name, &l)) {
        plan_ctx_clear_error(s->ctx);
        return false;
    }
    return l->reg != NULL;
}

int plan_regsource_find(plan_regsource *s, const char *name, const char *version,
                        const plan_registry **reg, json_t **entry)
{
    loaded *l;
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
    loaded *l;
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
 * both ask, and the entry (held by the loaded index) cannot change.  One
 * the cache remembers (under this text's tag, with a key still trusted)
 * is not verified again. */
static int check_publisher(plan_regsource *s, loaded *l, const char *name, json_t *entry)
{
    const char *version = json_string_value(json_object_get(entry, "version"));
    char *key = verified_key(l->reg, name, version);
    int rc = 0;
    if (plan_strmap_get(&s->verified, key) < 0) {
        if (!remembered(&l->passed, s->trusted, entry) &&
            !(rc = verify_publisher(s->ctx, s->trusted, l->reg, name, entry)))
            remember(s, l, entry);
        if (!rc)
            plan_strmap_put(&s->verified, key, 1);
    }
    free(key);
    return rc;
}

/* name@version's index entry, its publisher signature verified. */
static int find_verified(plan_regsource *s, const char *name, const char *version,
                         const plan_registry **reg, json_t **entry)
{
    int rc = plan_regsource_find(s, name, version, reg, entry);
    return rc ? rc : check_publisher(s, find_loaded(s, name), name, *entry);
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

/* One index to verify on a worker: the text (and what the cache remembers
 * about it) is read from the database first (one connection, one
 * thread), the rest touches nothing shared. */
typedef struct prefetch_task {
    const char *name;
    const plan_registry *reg;
    plan_buf text;
    json_t *snapshot; /* the verified snapshot's "indexes" (borrowed), or NULL */
    bool has_stored;  /* a remembered row: its tag and lines */
    uint8_t stored[PLAN_CHECKS_TAG_BYTES];
    plan_buf stored_passed;
    json_t *index;    /* out: its "signed" part, or NULL */
    uint8_t hash[PLAN_CHECKS_TAG_BYTES]; /* out, with a cache key: the text's BLAKE2b */
    plan_strlist passed;                /* out: what is known to verify in it */
    bool learnt;      /* out: passed has a line the cache lacks */
    char *verified;   /* out: the check_publisher key of the newest entry, verified */
} prefetch_task;

/* The tasks are read on the calling thread (the database is its alone)
 * while the other threads verify those read so far: reading and verifying
 * overlap, and the verification starts with the first index read. */
typedef struct prefetch_job {
    prefetch_task *tasks;
    const plan_keyring *trusted;
    const uint8_t *cache_key; /* NULL: nothing is remembered */
    bool vouching;            /* only to remember: a text with a valid row is done */
    atomic_size_t next;       /* the next task a thread takes */
    pthread_mutex_t lock;
    pthread_cond_t more;
    size_t ready;             /* tasks[0, ready) are read (under lock) */
    bool done;                /* no more will be (under lock) */
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

static void prefetch_one(const prefetch_job *job, plan_ctx *ctx, prefetch_task *t)
{
    if (job->cache_key) {
        text_hash(&t->text, t->hash);
        if (t->has_stored)
            passed_take(job->cache_key, t->reg->name, t->name, t->hash, t->stored,
                        &t->stored_passed, &t->passed);
    }
    /* After an update, most indexes are the ones checked before: their
     * rows still fit their texts, and they are not parsed again. */
    if (job->vouching && t->passed.len)
        return;
    if (plan_registry_index_open(ctx, t->reg, t->name, t->text.data, t->text.len, t->snapshot,
                                 &t->index)) {
        t->index = NULL;
        return;
    }
    const char *version = NULL;
    json_t *entry = newest_entry(t->index, &version);
    if (!entry)
        return;
    if (remembered(&t->passed, job->trusted, entry)) {
        t->verified = verified_key(t->reg, t->name, version);
    } else if (!verify_publisher(ctx, job->trusted, t->reg, t->name, entry)) {
        t->verified = verified_key(t->reg, t->name, version);
        char *line = job->cache_key ? passed_line(entry) : NULL;
        if (line) {
            plan_strlist_take(&t->passed, line);
            t->learnt = true;
        }
    }
}

/* The next task read and not taken yet, waiting for the reader when it
 * is behind; NULL once everything read is taken. */
static prefetch_task *job_take(prefetch_job *job)
{
    size_t i = atomic_fetch_add(&job->next, 1);
    pthread_mutex_lock(&job->lock);
    while (i >= job->ready && !job->done)
        pthread_cond_wait(&job->more, &job->lock);
    prefetch_task *t = i < job->ready ? &job->tasks[i] : NULL;
    pthread_mutex_unlock(&job->lock);
    return t;
}

static void *prefetch_worker(void *arg)
{
    prefetch_job *job = arg;
    plan_ctx *ctx = plan_ctx_new(); /* its errors are dropped: see the header */
    for (prefetch_task *t; (t = job_take(job)) != NULL;)
        prefetch_one(job, ctx, t);
    plan_ctx_free(ctx);
    return NULL;
}

/* Reads task k (of those the caller gives) into t: 0, or nonzero to skip
 * it. */
typedef int (*task_reader)(plan_regsource *s, size_t k, prefetch_task *t, void *arg);

/* Read name's cached index text from reg (and what is remembered about
 * it) into t; inside a read transaction.  PLAN_ERR_NOT_FOUND when reg has
 * no such index. */
static int task_read(plan_regsource *s, const plan_registry *reg, const char *name,
                     prefetch_task *t)
{
    memset(t, 0, sizeof(*t));
    plan_buf_init(&t->text);
    plan_buf_init(&t->stored_passed);
    plan_strlist_init(&t->passed);
    int rc = plan_registry_index_text(s->ctx, s->db, reg, name, &t->text);
    if (rc)
        return rc;
    t->name = name;
    t->reg = reg;
    t->snapshot = plan_registry_snapshot_indexes(s->db, reg);
    if (s->has_cache_key)
        t->has_stored =
            plan_regdb_checks_get(s->db, reg->name, name, t->stored, &t->stored_passed) == 0;
    plan_ctx_clear_error(s->ctx);
    return 0;
}

static void task_release(prefetch_task *t)
{
    plan_buf_release(&t->text);
    plan_buf_release(&t->stored_passed);
    plan_strlist_release(&t->passed);
    json_decref(t->index);
    free(t->verified);
}

static void job_publish(prefetch_job *job, size_t ready, bool done)
{
    pthread_mutex_lock(&job->lock);
    job->ready = ready;
    job->done = done;
    pthread_cond_broadcast(&job->more);
    pthread_mutex_unlock(&job->lock);
}

/* Read up to max tasks with read (on this thread, in one read transaction)
 * while other threads verify them, then verify what is left here too, and
 * write what was learnt to the cache in one transaction.  Returns how many
 * tasks were read. */
static size_t tasks_run(plan_regsource *s, prefetch_task *tasks, size_t max, task_reader read,
                        void *arg, bool vouching)
{
    prefetch_job job = {.tasks = tasks, .trusted = s->trusted,
                        .cache_key = s->has_cache_key ? s->cache_key : NULL,
                        .vouching = vouching};
    atomic_init(&job.next, 0);
    pthread_mutex_init(&job.lock, NULL);
    pthread_cond_init(&job.more, NULL);
    pthread_t helpers[8];
    unsigned started = 0, threads = plan_threads_for(max, 8);
    for (unsigned i = 1; i < threads && i <= 8; i++)
        if (pthread_create(&helpers[started], NULL, prefetch_worker, &job) == 0)
            started++;
    size_t n = 0;
    plan_regdb_read_begin(s->db);
    for (size_t k = 0; k < max; k++) {
        if (read(s, k, &tasks[n], arg))
            continue;
        n++;
        job_publish(&job, n, false);
    }
    plan_regdb_read_end(s->db);
    job_publish(&job, n, true);
    prefetch_worker(&job);
    for (unsigned i = 0; i < started; i++)
        pthread_join(helpers[i], NULL);
    pthread_cond_destroy(&job.more);
    pthread_mutex_destroy(&job.lock);

    plan_checks_row *rows = plan_xcalloc(n ? n : 1, sizeof(*rows));
    uint8_t(*tags)[PLAN_CHECKS_TAG_BYTES] = plan_xcalloc(n ? n : 1, sizeof(*tags));
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (tasks[i].learnt) {
            rows[m] = checks_row(s->cache_key, tasks[i].reg->name, tasks[i].name, tasks[i].hash,
                                 &tasks[i].passed, tags[m]);
            m++;
        }
    /* A cache: what cannot be written is checked again next time. */
    if (plan_regdb_checks_put(s->db, m, rows))
        plan_ctx_clear_error(s->ctx);
    for (size_t i = 0; i < m; i++)
        free((char *)rows[i].passed);
    free(rows);
    free(tags);
    return n;
}

typedef struct prefetch_read {
    const plan_strlist *names;
    plan_strmap seen;
} prefetch_read;

/* The index of the k-th name, from the first registry that has it, as
 * lookup chooses; none for a name loaded or read already. */
static int read_for_prefetch(plan_regsource *s, size_t k, prefetch_task *t, void *arg)
{
    prefetch_read *pr = arg;
    const char *name = pr->names->items[k];
    if (find_loaded(s, name) || !plan_strmap_put(&pr->seen, name, 1))
        return 1;
    for (size_t r = 0; r < s->regs->n; r++) {
        int rc = task_read(s, &s->regs->items[r], name, t);
        if (!rc)
            return 0;
        task_release(t);
        plan_ctx_clear_error(s->ctx);
        if (rc != PLAN_ERR_NOT_FOUND)
            break; /* lookup reads it again and reports it */
    }
    return 1;
}

void plan_regsource_prefetch(plan_regsource *s, const plan_strlist *names)
{
    prefetch_task *tasks = plan_xcalloc(names->len ? names->len : 1, sizeof(*tasks));
    prefetch_read pr = {.names = names};
    plan_strmap_init(&pr.seen);
    size_t n = tasks_run(s, tasks, names->len, read_for_prefetch, &pr, false);
    plan_strmap_release(&pr.seen);
    /* What verified is what lookup and check_publisher would have kept;
     * what did not is left for them to read again and report. */
    for (size_t i = 0; i < n; i++) {
        prefetch_task *t = &tasks[i];
        if (t->index) {
            loaded l = {.name = plan_xstrdup(t->name), .reg = t->reg, .index = t->index,
                        .hashed = s->has_cache_key, .passed = t->passed};
            memcpy(l.text_hash, t->hash, sizeof(l.text_hash));
            add_loaded(s, l);
            t->index = NULL;
            plan_strlist_init(&t->passed);
            if (t->verified)
                plan_strmap_put(&s->verified, t->verified, 1);
        }
        task_release(t);
    }
    free(tasks);
}

typedef struct vouch_read {
    const plan_registry *reg;
    const plan_strlist *names;
} vouch_read;

static int read_for_vouch(plan_regsource *s, size_t k, prefetch_task *t, void *arg)
{
    vouch_read *vr = arg;
    int rc = task_read(s, vr->reg, vr->names->items[k], t);
    if (rc)
        task_release(t);
    plan_ctx_clear_error(s->ctx);
    return rc;
}

int plan_regsource_vouch(plan_regsource *s, const plan_registry *reg)
{
    if (!s->has_cache_key)
        return 0;
    plan_strlist names;
    plan_strlist_init(&names);
    int rc = plan_registry_names(s->ctx, s->db, reg, &names);
    if (!rc) {
        prefetch_task *tasks = plan_xcalloc(names.len ? names.len : 1, sizeof(*tasks));
        vouch_read vr = {.reg = reg, .names = &names};
        size_t n = tasks_run(s, tasks, names.len, read_for_vouch, &vr, true);
        for (size_t i = 0; i < n; i++)
            task_release(&tasks[i]);
        free(tasks);
    }
    plan_strlist_release(&names);
    return rc;
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
