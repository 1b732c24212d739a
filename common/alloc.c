/* Allocation helpers: out-of-memory is not a recoverable condition for a
 * package manager, so every allocation either succeeds or aborts loudly. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n)
{
    /* The only place a library may write to stderr: we are about to abort
     * and there is no memory left to build a message on a context. */
    fprintf(stderr, "plan: out of memory allocating %zu bytes\n", n);
    abort();
}

void *plan_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *plan_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *plan_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *plan_xstrdup(const char *s)
{
    return plan_xstrndup(s, strlen(s));
}

char *plan_xstrndup(const char *s, size_t n)
{
    char *p = plan_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *plan_xasprintf(const char *fmt, ...)
{
    plan_buf b;
    va_list ap;
    plan_buf_init(&b);
    va_start(ap, fmt);
    plan_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return plan_buf_detach(&b);
}
