/* sandbox.h - private to recipes/: the build process's isolation. */
#ifndef PLAN_SANDBOX_H
#define PLAN_SANDBOX_H

#include <stdbool.h>

typedef struct sandbox_spec {
    bool enabled;
    const char *store_dir;  /* mounted read-only */
    const char *out;        /* writable: the placeholder output */
    const char *build_dir;  /* writable: sources, TMPDIR, HOME */
    const char *workdir;    /* where the build starts */
} sandbox_spec;

/* In a forked child: enter the sandbox (if enabled and possible) and exec
 * argv with envp.  Writes 'S' (sandboxed) or 'N' (namespaces unavailable)
 * to status_fd.  Never returns. */
int sandbox_run(const sandbox_spec *spec, char *const argv[], char *const envp[], int status_fd)
    __attribute__((noreturn));

/* Can this process create the sandbox's namespaces? */
bool sandbox_available(void);

#endif
