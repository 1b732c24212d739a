/* Unit tests for plans' configuration in the store: versions, history,
 * rollback, secrets kept out of the main database, the secrets file's
 * mode, and hostile keys and values. */
#include "test_helpers.h"
#include "store/store.h"
#include "store_fixture.h"

#include <time.h>

static int64_t set(fixture *f, const char *name, const char *key, const char *value, bool secret)
{
    int64_t v = -1;
    if (plan_store_config_set(f->store, name, key, value, secret, &v))
        fail_msg("set: %s", plan_ctx_error(f->ctx));
    return v;
}

/* The value of key now (or NULL), secrets included. */
static char *value_of(fixture *f, const char *name, const char *key, int64_t at)
{
    plan_config_state s;
    if (plan_store_config_state(f->store, name, at, true, &s))
        fail_msg("state: %s", plan_ctx_error(f->ctx));
    const plan_config_value *v = plan_config_state_get(&s, key);
    char *out = v ? plan_xstrdup(v->value) : NULL;
    plan_config_state_release(&s);
    return out;
}

static void assert_value(fixture *f, const char *name, const char *key, int64_t at,
                         const char *want)
{
    char *got = value_of(f, name, key, at);
    if (want)
        assert_string_equal(got, want);
    else
        assert_null(got);
    free(got);
}

/* Does any file of the main database (with its WAL) hold text? */
static bool main_db_holds(fixture *f, const char *text)
{
    const char *suffixes[] = {"", "-wal", "-journal"};
    bool found = false;
    for (size_t i = 0; i < 3 && !found; i++) {
        char *p = plan_xasprintf("%s/var/db/plan.db%s", f->root, suffixes[i]);
        plan_buf b;
        plan_buf_init(&b);
        if (plan_fs_read_file(p, 64u << 20, &b) == 0)
            found = memmem(b.data, b.len, text, strlen(text)) != NULL;
        plan_buf_release(&b);
        free(p);
    }
    return found;
}

static void versions_count_per_name(void **state)
{
    fixture *f = *state;
    assert_int_equal(set(f, "web", "port", "8080", false), 1);
    assert_int_equal(set(f, "web", "port", "9090", false), 2);
    assert_int_equal(set(f, "db", "port", "5432", false), 1);
    assert_int_equal(set(f, "web", "host", "example.org", false), 3);
    assert_value(f, "web", "port", 0, "9090");
    assert_value(f, "web", "port", 1, "8080");
    assert_value(f, "web", "host", 2, NULL);
    assert_value(f, "db", "port", 0, "5432");
    plan_config_state s;
    assert_int_equal(plan_store_config_state(f->store, "web", 0, false, &s), 0);
    assert_int_equal(s.version, 3);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.items[0].key, "host"); /* sorted */
    assert_int_equal(s.items[1].version, 2);
    plan_config_state_release(&s);
    /* A name never configured has version 0 and no values. */
    assert_int_equal(plan_store_config_state(f->store, "none", 0, false, &s), 0);
    assert_int_equal(s.version, 0);
    assert_int_equal(s.n, 0);
    plan_config_state_release(&s);
    /* A version beyond the latest is not made up. */
    assert_int_equal(plan_store_config_state(f->store, "web", 4, false, &s), PLAN_ERR_NOT_FOUND);
    plan_ctx_clear_error(f->ctx);
}

static void history_records_old_and_new(void **state)
{
    fixture *f = *state;
    int64_t before = (int64_t)time(NULL);
    set(f, "web", "port", "8080", false);
    set(f, "web", "port", "9090", false);
    int64_t v = 0;
    assert_int_equal(plan_store_config_unset(f->store, "web", "port", &v), 0);
    assert_int_equal(v, 3);
    /* Unsetting what has no value is an error and records nothing. */
    assert_int_equal(plan_store_config_unset(f->store, "web", "port", &v), PLAN_ERR_NOT_FOUND);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "'port'"));
    plan_ctx_clear_error(f->ctx);
    plan_config_history h;
    assert_int_equal(plan_store_config_history(f->store, "web", &h), 0);
    assert_int_equal(h.n, 3);
    const char *actions[] = {"set", "set", "unset"};
    const char *olds[] = {NULL, "8080", "9090"};
    const char *news[] = {"8080", "9090", NULL};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(h.items[i].version, (int64_t)i + 1);
        assert_string_equal(h.items[i].action, actions[i]);
        assert_true(h.items[i].created >= before);
        assert_int_equal(h.items[i].n, 1);
        const plan_config_change *c = &h.items[i].changes[0];
        assert_string_equal(c->key, "port");
        if (olds[i])
            assert_string_equal(c->old_value, olds[i]);
        else
            assert_null(c->old_value);
        if (news[i])
            assert_string_equal(c->new_value, news[i]);
        else
            assert_null(c->new_value);
    }
    plan_config_history_release(&h);
}

static void rollback_is_a_new_version(void **state)
{
    fixture *f = *state;
    set(f, "web", "port", "8080", false);          /* 1 */
    set(f, "web", "host", "a.example", false);     /* 2 */
    set(f, "web", "port", "9090", false);          /* 3 */
    assert_int_equal(plan_store_config_unset(f->store, "web", "host", NULL), 0); /* 4 */
    set(f, "web", "mode", "fast", false);          /* 5 */
    int64_t v = 0;
    assert_int_equal(plan_store_config_rollback(f->store, "web", 2, &v), 0);
    assert_int_equal(v, 6);
    assert_value(f, "web", "port", 0, "8080");
    assert_value(f, "web", "host", 0, "a.example");
    assert_value(f, "web", "mode", 0, NULL);
    plan_config_history h;
    assert_int_equal(plan_store_config_history(f->store, "web", &h), 0);
    assert_int_equal(h.n, 6);
    plan_config_version *r = &h.items[5];
    assert_string_equal(r->action, "rollback");
    assert_int_equal(r->target, 2);
    assert_int_equal(r->n, 3); /* host back, mode gone, port back */
    assert_string_equal(r->changes[0].key, "host");
    assert_null(r->changes[0].old_value);
    assert_string_equal(r->changes[0].new_value, "a.example");
    assert_string_equal(r->changes[1].key, "mode");
    assert_string_equal(r->changes[1].old_value, "fast");
    assert_null(r->changes[1].new_value);
    assert_string_equal(r->changes[2].key, "port");
    assert_string_equal(r->changes[2].old_value, "9090");
    assert_string_equal(r->changes[2].new_value, "8080");
    assert_int_equal(h.items[0].target, -1);
    plan_config_history_release(&h);
    /* Rolling back the rollback: to 5, as it was. */
    assert_int_equal(plan_store_config_rollback(f->store, "web", 5, &v), 0);
    assert_value(f, "web", "port", 0, "9090");
    assert_value(f, "web", "mode", 0, "fast");
    assert_value(f, "web", "host", 0, NULL);
    /* To 0: no values at all, and still a version. */
    assert_int_equal(plan_store_config_rollback(f->store, "web", 0, &v), 0);
    assert_int_equal(v, 8);
    plan_config_state s;
    assert_int_equal(plan_store_config_state(f->store, "web", 0, false, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.version, 8);
    plan_config_state_release(&s);
    /* A rollback to where things already are is recorded too, empty. */
    assert_int_equal(plan_store_config_rollback(f->store, "web", 8, &v), 0);
    assert_int_equal(plan_store_config_history(f->store, "web", &h), 0);
    assert_int_equal(h.n, 9);
    assert_int_equal(h.items[8].n, 0);
    plan_config_history_release(&h);
    /* Versions that do not exist. */
    assert_int_equal(plan_store_config_rollback(f->store, "web", 10, &v), PLAN_ERR_NOT_FOUND);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "from 1 to 9"));
    plan_ctx_clear_error(f->ctx);
    assert_int_equal(plan_store_config_rollback(f->store, "web", -1, &v), PLAN_ERR_NOT_FOUND);
    plan_ctx_clear_error(f->ctx);
    assert_int_equal(plan_store_config_rollback(f->store, "never", 0, &v), PLAN_ERR_NOT_FOUND);
    plan_ctx_clear_error(f->ctx);
    assert_int_equal(plan_store_config_history(f->store, "never", &h), 0);
    assert_int_equal(h.n, 0);
    plan_config_history_release(&h);
}

static void secrets_stay_out_of_the_main_database(void **state)
{
    fixture *f = *state;
    const char *secret = "s3cr3t-Ab9Zq-never-in-plan-db";
    set(f, "web", "token", secret, true);                 /* 1 */
    set(f, "web", "port", "8080", false);                 /* 2 */
    assert_false(main_db_holds(f, secret));
    assert_true(main_db_holds(f, "8080"));                /* the scan can find things */
    /* The secrets file and its folder are the owner's alone. */
    char *dir = plan_xasprintf("%s/var/secrets", f->root);
    char *file = plan_xasprintf("%s/config.db", dir);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Without with_secrets the value is not read; with it, it is. */
    plan_config_state s;
    assert_int_equal(plan_store_config_state(f->store, "web", 0, false, &s), 0);
    const plan_config_value *v = plan_config_state_get(&s, "token");
    assert_non_null(v);
    assert_true(v->secret);
    assert_null(v->value);
    plan_config_state_release(&s);
    assert_value(f, "web", "token", 0, secret);
    /* Setting it again without 'secret' keeps it secret. */
    set(f, "web", "token", "second-secret-value-xyz", false);  /* 3 */
    assert_false(main_db_holds(f, "second-secret-value-xyz"));
    plan_config_history h;
    assert_int_equal(plan_store_config_history(f->store, "web", &h), 0);
    assert_int_equal(h.n, 3);
    const plan_config_change *c = &h.items[2].changes[0];
    assert_true(c->old_secret);
    assert_true(c->new_secret);
    assert_null(c->old_value);
    assert_null(c->new_value);
    plan_config_history_release(&h);
    /* Unset, then a rollback brings the secret back, still secret. */
    assert_int_equal(plan_store_config_unset(f->store, "web", "token", NULL), 0); /* 4 */
    assert_value(f, "web", "token", 0, NULL);
    assert_int_equal(plan_store_config_rollback(f->store, "web", 1, NULL), 0);    /* 5 */
    assert_value(f, "web", "token", 0, secret);
    assert_value(f, "web", "port", 0, NULL);
    assert_false(main_db_holds(f, secret));
    /* After unset, a plain set is plain. */
    assert_int_equal(plan_store_config_unset(f->store, "web", "token", NULL), 0);
    set(f, "web", "token", "now-public", false);
    assert_true(main_db_holds(f, "now-public"));
    free(dir);
    free(file);
}

static void a_secrets_file_others_can_read_is_refused(void **state)
{
    fixture *f = *state;
    set(f, "web", "token", "abc", true);
    char *file = plan_xasprintf("%s/var/secrets/config.db", f->root);
    assert_int_equal(chmod(file, 0644), 0);
    int64_t v;
    assert_int_equal(plan_store_config_set(f->store, "web", "token", "def", true, &v),
                     PLAN_ERR_HOSTILE);
    assert_non_null(strstr(plan_ctx_error(f->ctx), "readable by others"));
    plan_ctx_clear_error(f->ctx);
    /* Nothing was recorded: the failed set left no version. */
    plan_config_state s;
    assert_int_equal(plan_store_config_state(f->store, "web", 0, false, &s), 0);
    assert_int_equal(s.version, 1);
    plan_config_state_release(&s);
    assert_int_equal(plan_store_config_state(f->store, "web", 0, true, &s), PLAN_ERR_HOSTILE);
    plan_ctx_clear_error(f->ctx);
    /* A plain value needs no secrets file. */
    set(f, "web", "port", "1", false);
    free(file);
}

static void values_survive_reopening(void **state)
{
    fixture *f = *state;
    set(f, "web", "port", "8080", false);
    set(f, "web", "token", "tok", true);
    plan_store_close(f->store);
    assert_int_equal(plan_store_open(f->ctx, f->root, &f->store), 0);
    assert_value(f, "web", "port", 0, "8080");
    assert_value(f, "web", "token", 0, "tok");
    assert_int_equal(set(f, "web", "port", "1", false), 3);
}

/* Generated hostile keys and values: quotes, SQL, newlines, UTF-8, long. */
static void hostile_keys_and_values_are_kept_exactly(void **state)
{
    fixture *f = *state;
    const char *texts[] = {"'; DROP TABLE config_versions; --", "a\nb\tc", "\xc3\xa9t\xc3\xa9",
                           "%s%n%x", "", " leading and trailing "};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char *key = plan_xasprintf("k%zu%s", i, texts[i]);
        set(f, "web", key, texts[i], i % 2 == 1);
        assert_value(f, "web", key, 0, texts[i]);
        free(key);
    }
    char *big = plan_xmalloc(64 * 1024 + 2);
    memset(big, 'x', 64 * 1024 + 1);
    big[64 * 1024 + 1] = '\0';
    int64_t v;
    assert_int_equal(plan_store_config_set(f->store, "web", "big", big, false, &v),
                     PLAN_ERR_INVALID);
    plan_ctx_clear_error(f->ctx);
    big[64 * 1024] = '\0'; /* exactly the limit */
    set(f, "web", "big", big, false);
    free(big);
    assert_int_equal(plan_store_config_set(f->store, "", "k", "v", false, &v), PLAN_ERR_INVALID);
    plan_ctx_clear_error(f->ctx);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fixture_setup, store_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(versions_count_per_name),
        T(history_records_old_and_new),
        T(rollback_is_a_new_version),
        T(secrets_stay_out_of_the_main_database),
        T(a_secrets_file_others_can_read_is_refused),
        T(values_survive_reopening),
        T(hostile_keys_and_values_are_kept_exactly),
    };
    return cmocka_run_group_tests_name("store config", tests, NULL, NULL);
}
