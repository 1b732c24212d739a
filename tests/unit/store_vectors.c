/* The test vectors of docs/formats/serialization-vectors.txt, computed by
 * an independent implementation, checked against the store's hashing. */
#include "test_helpers.h"
#include "store/store.h"

#include <ctype.h>

typedef struct vec_state {
    plan_ctx *ctx;
    char *dir;        /* the tree being built, or NULL between vectors */
    char name[128];
    char mask[64];
    bool has_mask;
    int line;
    int checked;
} vec_state;

/* Decode DATA: quoted pieces with escapes, each optionally repeated *N. */
static void decode_data(const char *p, plan_buf *out, int line)
{
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (*p != '"')
            fail_msg("vectors line %d: data must be quoted", line);
        p++;
        plan_buf piece;
        plan_buf_init(&piece);
        while (*p && *p != '"') {
            char c = *p++;
            if (c == '\\') {
                char e = *p++;
                if (e == 'n') c = '\n';
                else if (e == 't') c = '\t';
                else if (e == '\\' || e == '"') c = e;
                else if (e == 'x') {
                    uint8_t b;
                    char hex[3] = {(char)tolower((unsigned char)p[0]),
                                   (char)tolower((unsigned char)p[1]), 0};
                    if (plan_hex_decode(hex, &b, 1) != 0)
                        fail_msg("vectors line %d: bad \\x escape", line);
                    c = (char)b;
                    p += 2;
                } else {
                    fail_msg("vectors line %d: unknown escape \\%c", line, e);
                }
            }
            plan_buf_addc(&piece, c);
        }
        if (*p != '"')
            fail_msg("vectors line %d: unterminated string", line);
        p++;
        long times = 1;
        if (*p == '*') {
            char *end;
            times = strtol(p + 1, &end, 10);
            p = end;
        }
        for (long i = 0; i < times; i++)
            plan_buf_add(out, piece.data, piece.len);
        plan_buf_release(&piece);
    }
}

static void vec_line(vec_state *v, char *line)
{
    char *sp = strchr(line, ' ');
    char *rest = sp ? sp + 1 : line + strlen(line);
    if (sp)
        *sp = '\0';
    const char *kw = line;
    if (!strcmp(kw, "tree")) {
        v->dir = th_tmpdir();
        snprintf(v->name, sizeof(v->name), "%s", rest);
        v->has_mask = false;
    } else if (!strcmp(kw, "dir")) {
        char *p = plan_path_join(v->dir, rest);
        assert_int_equal(plan_fs_mkdirs(p, 0755), 0);
        free(p);
    } else if (!strcmp(kw, "file")) {
        char *path = rest, *mode = strchr(path, ' ');
        assert_non_null(mode);
        *mode++ = '\0';
        char *data = strchr(mode, ' ');
        if (data)
            *data++ = '\0';
        plan_buf b;
        plan_buf_init(&b);
        if (data)
            decode_data(data, &b, v->line);
        th_write(v->dir, path, b.data, b.len, (mode_t)strtol(mode, NULL, 8));
        plan_buf_release(&b);
    } else if (!strcmp(kw, "symlink")) {
        char *path = rest, *data = strchr(path, ' ');
        assert_non_null(data);
        *data++ = '\0';
        plan_buf b;
        plan_buf_init(&b);
        decode_data(data, &b, v->line);
        th_symlink(v->dir, path, b.data);
        plan_buf_release(&b);
    } else if (!strcmp(kw, "mask")) {
        snprintf(v->mask, sizeof(v->mask), "%s", rest);
        v->has_mask = true;
    } else if (!strcmp(kw, "expect")) {
        plan_hash h;
        if (plan_store_hash_tree(v->ctx, v->dir, v->has_mask ? v->mask : NULL, 0, &h, NULL))
            fail_msg("vector '%s': %s", v->name, plan_ctx_error(v->ctx));
        char text[PLAN_HASH_TEXT_LEN + 1];
        plan_hash_format(&h, text);
        if (strcmp(text, rest) != 0)
            fail_msg("vector '%s' (line %d): got %s, expected %s", v->name, v->line, text,
                     rest);
        v->checked++;
    } else if (!strcmp(kw, "digest")) {
        char store[512], name[128], version[128], want[64];
        assert_int_equal(sscanf(rest, "%511s %127s %127s %63s", store, name, version, want), 4);
        /* The digest is of the vector's expected hash: re-hash to get it. */
        plan_hash h;
        assert_int_equal(
            plan_store_hash_tree(v->ctx, v->dir, v->has_mask ? v->mask : NULL, 0, &h, NULL), 0);
        char got[PLAN_DIGEST_CHARS + 1];
        plan_store_digest(store, name, version, &h, got);
        if (strcmp(got, want) != 0)
            fail_msg("vector '%s' (line %d): digest %s, expected %s", v->name, v->line, got,
                     want);
        v->checked++;
    } else if (!strcmp(kw, "end")) {
        th_rmtree(v->dir);
        v->dir = NULL;
    } else if (!strcmp(kw, "base32")) {
        char hex[256], want[256];
        assert_int_equal(sscanf(rest, "%255s %255s", hex, want), 2);
        uint8_t bytes[128];
        size_t n = strcmp(hex, "-") ? strlen(hex) / 2 : 0;
        if (n)
            assert_int_equal(plan_hex_decode(hex, bytes, n), 0);
        char got[256];
        plan_base32_encode(bytes, n, got);
        if (strcmp(got, strcmp(want, "-") ? want : "") != 0)
            fail_msg("base32 of %s: got '%s', expected '%s'", hex, got, want);
        v->checked++;
    } else {
        fail_msg("vectors line %d: unknown directive '%s'", v->line, kw);
    }
}

static void every_vector_matches(void **state)
{
    (void)state;
    const char *src = getenv("PLAN_SRC");
    char *path = plan_path_join(src && *src ? src : ".",
                                "docs/formats/serialization-vectors.txt");
    plan_buf text;
    plan_buf_init(&text);
    if (plan_fs_read_file(path, 1 << 20, &text) != 0)
        fail_msg("cannot read '%s' (run from the source tree or set PLAN_SRC)", path);
    vec_state v = {.ctx = plan_ctx_new()};
    int line_no = 0;
    /* strtok_r would skip empty lines and lose numbering: split by hand. */
    for (char *line = text.data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        v.line = ++line_no;
        if (line[0] && line[0] != '#')
            vec_line(&v, line);
        line = nl ? nl + 1 : NULL;
    }
    assert_null(v.dir); /* every tree was ended */
    assert_true(v.checked >= 10);
    plan_ctx_free(v.ctx);
    plan_buf_release(&text);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_vector_matches),
    };
    return cmocka_run_group_tests_name("store_vectors", tests, NULL, NULL);
}
