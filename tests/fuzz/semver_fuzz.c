/* fuzz_parsers.c - libFuzzer target for the SemVer parsers (`make fuzz`).
 *
 * The input's first line is read as a version, the rest as a range.  Beyond
 * "no crash, no sanitizer report, no hang", it checks properties that must
 * hold for every input: a formatted version parses back to the same
 * version, a range's desugared form parses back to the same desugared
 * form and matches exactly the same sample versions. */
#include "resolver/resolver.h"

#include <stdlib.h>
#include <string.h>

static const char *samples[] = {
    "0.0.0", "0.0.1", "0.1.0", "1.0.0-0", "1.0.0-alpha", "1.0.0", "1.2.3-beta.2",
    "1.2.3", "1.2.4-rc.1", "1.3.0", "2.0.0-0", "2.0.0", "3.4.5-alpha.9", "10.0.0",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = plan_xstrndup((const char *)data, size);
    char *nl = strchr(s, '\n');
    const char *range_text = "";
    if (nl) {
        *nl = '\0';
        range_text = nl + 1;
    }
    plan_semver v;
    bool have_v = plan_semver_parse(NULL, s, &v) == 0;
    if (have_v) {
        char *f = plan_semver_format(&v);
        plan_semver back;
        if (plan_semver_parse(NULL, f, &back) || plan_semver_compare_full(&v, &back))
            abort();
        plan_semver_release(&back);
        free(f);
    }
    plan_semver_range *r;
    if (plan_semver_range_parse(NULL, range_text, &r) == 0) {
        char *f = plan_semver_range_format(r);
        plan_semver_range *r2;
        /* Desugaring lengthens ("6" -> ">=6.0.0 <7.0.0-0"), so a long range
         * may print past the length limit; everything shorter must parse. */
        if (strlen(f) > PLAN_SEMVER_RANGE_MAX_LEN) {
            free(f);
            plan_semver_range_free(r);
            if (have_v)
                plan_semver_release(&v);
            free(s);
            return 0;
        }
        if (plan_semver_range_parse(NULL, f, &r2))
            abort();
        char *f2 = plan_semver_range_format(r2);
        if (strcmp(f, f2))
            abort();
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
            plan_semver sv;
            plan_semver_parse(NULL, samples[i], &sv);
            if (plan_semver_range_satisfies(r, &sv) != plan_semver_range_satisfies(r2, &sv))
                abort();
            plan_semver_release(&sv);
        }
        if (have_v && plan_semver_range_satisfies(r, &v) != plan_semver_range_satisfies(r2, &v))
            abort();
        free(f);
        free(f2);
        plan_semver_range_free(r);
        plan_semver_range_free(r2);
    }
    if (have_v)
        plan_semver_release(&v);
    free(s);
    return 0;
}
