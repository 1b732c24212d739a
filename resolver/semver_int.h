/* semver_int.h - private to resolver/: pieces of the SemVer code shared by
 * the range parser and the solver. */
#ifndef PLAN_RESOLVER_SEMVER_INT_H
#define PLAN_RESOLVER_SEMVER_INT_H

#include "resolver.h"

/* plan_fail that also accepts a NULL ctx (the caller wants no message). */
int semver_fail(plan_ctx *ctx, int code, const char *fmt, ...) PLAN_PRINTF(3, 4);
int semver_number(const char *s, size_t len, uint64_t *out);
/* NULL if s[0..len) is valid dot-separated identifiers, else why not. */
const char *semver_check_idents(const char *s, size_t len, bool prerelease);
/* Parse text[0..len) as a full version; `what` names it in messages. */
int semver_parse_core(plan_ctx *ctx, const char *text, size_t len, plan_semver *out,
                      const char *what);
int semver_compare_prerelease(const char *a, const char *b);
void semver_format_to(plan_buf *b, const plan_semver *v, bool with_build);

#endif
