/* The growable buffer and the owned string list. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shared empty string so that an initialised, empty buffer costs no
 * allocation yet still has a valid NUL-terminated data pointer. */
static char empty_string[1];

void plan_buf_init(plan_buf *b)
{
    b->data = empty_string;
    b->len = 0;
    b->cap = 0;
}

void plan_buf_release(plan_buf *b)
{
    if (b->cap)
        free(b->data);
    plan_buf_init(b);
}

void plan_buf_reset(plan_buf *b)
{
    plan_buf_truncate(b, 0);
}

void plan_buf_truncate(plan_buf *b, size_t len)
{
    if (len >= b->len)
        return;
    b->len = len;
    if (b->cap)
        b->data[len] = '\0';
}

void plan_buf_grow(plan_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (b->cap) {
        b->data = plan_xrealloc(b->data, cap);
    } else {
        b->data = plan_xmalloc(cap);
        b->data[0] = '\0';
    }
    b->cap = cap;
}

void plan_buf_add(plan_buf *b, const void *p, size_t n)
{
    if (!n)
        return;
    plan_buf_grow(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void plan_buf_adds(plan_buf *b, const char *s)
{
    plan_buf_add(b, s, strlen(s));
}

void plan_buf_addc(plan_buf *b, char c)
{
    plan_buf_add(b, &c, 1);
}

void plan_buf_vprintf(plan_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n <= 0)
        return;
    plan_buf_grow(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void plan_buf_printf(plan_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    plan_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *plan_buf_detach(plan_buf *b)
{
    char *p = b->cap ? b->data : plan_xstrdup("");
    plan_buf_init(b);
    return p;
}

void plan_strlist_init(plan_strlist *l)
{
    l->items = NULL;
    l->len = 0;
    l->cap = 0;
}

void plan_strlist_release(plan_strlist *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
    plan_strlist_init(l);
}

void plan_strlist_take(plan_strlist *l, char *s)
{
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = plan_xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->len++] = s;
}

void plan_strlist_add(plan_strlist *l, const char *s)
{
    plan_strlist_take(l, plan_xstrdup(s));
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void plan_strlist_sort(plan_strlist *l)
{
    if (l->len > 1)
        qsort(l->items, l->len, sizeof(*l->items), compare_strings);
}

bool plan_strlist_contains_sorted(const plan_strlist *l, const char *s)
{
    return plan_strlist_index_sorted(l, s) >= 0;
}

ssize_t plan_strlist_index_sorted(const plan_strlist *l, const char *s)
{
    /* bsearch wants a non-null base even for nothing to search. */
    char **hit = l->len ? bsearch(&s, l->items, l->len, sizeof(*l->items), compare_strings)
                        : NULL;
    return hit ? hit - l->items : -1;
}

ssize_t plan_strlist_index(const plan_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->len; i++)
        if (strcmp(l->items[i], s) == 0)
            return (ssize_t)i;
    return -1;
}

bool plan_strlist_contains(const plan_strlist *l, const char *s)
{
    return plan_strlist_index(l, s) >= 0;
}

/* ---------- string map (open addressing, linear probing) ---------- */

void plan_strmap_init(plan_strmap *m)
{
    memset(m, 0, sizeof(*m));
}

void plan_strmap_release(plan_strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    plan_strmap_init(m);
}

/* FNV-1a: short keys, no adversary to fear (every key is ours to store). */
static size_t key_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h ^ (h >> 32));
}

/* The slot holding key, or the empty one where it would go. */
static plan_strmap_slot *slot_of(const plan_strmap *m, const char *key)
{
    size_t mask = m->cap - 1;
    for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask)
        if (!m->slots[i].key || !strcmp(m->slots[i].key, key))
            return &m->slots[i];
}

ssize_t plan_strmap_get(const plan_strmap *m, const char *key)
{
    if (!m->len)
        return -1;
    const plan_strmap_slot *s = slot_of(m, key);
    return s->key ? (ssize_t)s->value : -1;
}

static void strmap_grow(plan_strmap *m)
{
    plan_strmap old = *m;
    m->cap = old.cap ? 2 * old.cap : 16;
    m->slots = plan_xcalloc(m->cap, sizeof(*m->slots));
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key)
            *slot_of(m, old.slots[i].key) = old.slots[i];
    free(old.slots);
}

bool plan_strmap_put(plan_strmap *m, const char *key, size_t value)
{
    /* At most half full, so probes stay short and an empty slot exists. */
    if (2 * (m->len + 1) > m->cap)
        strmap_grow(m);
    plan_strmap_slot *s = slot_of(m, key);
    bool absent = !s->key || s->value == (size_t)-1;
    if (!s->key) {
        s->key = plan_xstrdup(key);
        m->len++;
    }
    s->value = value;
    return absent;
}
