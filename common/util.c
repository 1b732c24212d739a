/* Small utilities: hex, sizes, CPU count, edit distance. */
#include "common.h"

#include <pthread.h>

#include <ctype.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void plan_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int plan_hex_decode(const char *in, uint8_t *out, size_t n)
{
    if (strlen(in) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void plan_format_size(uint64_t bytes, char *out, size_t outlen)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, outlen, "%llu B", (unsigned long long)bytes);
    else
        snprintf(out, outlen, "%.1f %s", v, units[u]);
}

int plan_parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    double v = strtod(s, &end);
    while (*end == ' ')
        end++;
    double mult = 1;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': mult = 1024.0; break;
    case 'M': mult = 1024.0 * 1024; break;
    case 'G': mult = 1024.0 * 1024 * 1024; break;
    case 'T': mult = 1024.0 * 1024 * 1024 * 1024; break;
    case 'B': break;
    default: return -1;
    }
    if (*end && toupper((unsigned char)*end) != 'B') {
        end++;
        if (*end == 'i')
            end++;
        if (toupper((unsigned char)*end) == 'B')
            end++;
    } else if (*end) {
        end++;
    }
    if (*end)
        return -1;
    double r = v * mult;
    if (!(r >= 0) || r > 1.8e19)
        return -1;
    *out = (uint64_t)r;
    return 0;
}

unsigned plan_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

unsigned plan_threads_for(size_t n, size_t from)
{
    unsigned threads = plan_cpu_count();
    return n < from ? 1 : threads > 4 ? 4 : threads;
}

unsigned plan_threads_for_files(size_t n, size_t from)
{
    unsigned threads = plan_cpu_count();
    if (n < from)
        return 1;
    return threads < 4 ? 4 : threads > 8 ? 8 : threads;
}

void plan_run_threads(unsigned threads, void *(*fn)(void *), void *arg)
{
    pthread_t tids[64];
    unsigned started = 0;
    if (threads > 64)
        threads = 64;
    for (unsigned i = 1; i < threads; i++)
        if (pthread_create(&tids[started], NULL, fn, arg) == 0)
            started++;
    fn(arg);
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
}

void plan_first_error_init(plan_first_error *e)
{
    pthread_mutex_init(&e->lock, NULL);
    atomic_init(&e->failed, 0);
    e->code = 0;
    e->msg = NULL;
}

void plan_first_error_set(plan_first_error *e, int code, const char *msg)
{
    pthread_mutex_lock(&e->lock);
    if (!e->msg) {
        e->code = code;
        e->msg = plan_xstrdup(msg && *msg ? msg : "unknown error");
    }
    pthread_mutex_unlock(&e->lock);
    atomic_store(&e->failed, 1);
}

bool plan_first_error_failed(plan_first_error *e)
{
    return atomic_load(&e->failed) != 0;
}

int plan_first_error_code(plan_first_error *e)
{
    pthread_mutex_lock(&e->lock);
    int code = e->msg ? e->code : 0;
    pthread_mutex_unlock(&e->lock);
    return code;
}

int plan_first_error_finish(plan_first_error *e, plan_ctx *ctx)
{
    int code = e->msg ? e->code : 0;
    if (e->msg)
        plan_fail(ctx, code, "%s", e->msg);
    free(e->msg);
    e->msg = NULL;
    pthread_mutex_destroy(&e->lock);
    return code;
}

size_t plan_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = plan_xmalloc((lb + 1) * sizeof(*row));
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}
