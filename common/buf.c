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
