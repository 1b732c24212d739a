/* sandbox.h - private to recipes/: the build process's isolation. */
#ifndef PLAN_SANDBOX_H
#define PLAN_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

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
/* Try unshare(flags) (CLONE_NEW*, plus a user namespace when not root) in
 * a throwaway child: 0, or the errno it failed with. */
int sandbox_probe(int flags);

/* plan run --isolate and plan env --isolate (docs/commands/run.md#--isolate). */
typedef struct sandbox_isolation {
    bool no_network;
    const char *store_dir;      /* mounted read-only */
    const char *const *keep;    /* directories that stay reachable under the private /tmp */
    size_t n_keep;
} sandbox_isolation;

/* In a forked child: private mount, PID and IPC namespaces (and network),
 * the store read-only, a private /tmp and /proc.  Returns 0 in the
 * process that is to exec the command (the second process of the new PID
 * namespace); the two above it forward TERM, INT, HUP and QUIT down,
 * wait, and _exit with its status (128+N for a signal).  -1 with a
 * message in err when a namespace cannot be made. */
int sandbox_isolate(const sandbox_isolation *iso, char *err, size_t errlen);

#endif
