/* Resource limits and isolation for plan run and plan env
 * (docs/commands/run.md#limits).  Deciding happens in the parent, where
 * errors can be reported; applying happens in the forked child, before
 * exec, where nothing may be printed through the context. */
#include "recipes.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP2_MAGIC 0x63677270

static const char *const limit_names[PLAN_LIMIT_COUNT] = {"cpu", "mem", "nofile", "nproc",
                                                          "nice"};

const char *plan_limit_name(int which)
{
    return which >= 0 && which < PLAN_LIMIT_COUNT ? limit_names[which] : "?";
}

static int limit_index(const char *key)
{
    for (int i = 0; i < PLAN_LIMIT_COUNT; i++)
        if (!strcmp(key, limit_names[i]))
            return i;
    return -1;
}

int plan_limits_set(plan_ctx *ctx, plan_limits *l, const char *key, const char *value,
                    bool required)
{
    bool known;
    const char *expected = plan_resource_check(key, value, &known);
    int i = limit_index(key);
    if (!known || i < 0)
        return plan_fail(ctx, PLAN_ERR_INVALID,
                         "unknown limit '%s': the limits are cpu, mem, nofile, nproc and nice",
                         key);
    if (expected)
        return plan_fail(ctx, PLAN_ERR_INVALID, "limit '%s': expected %s, found '%s'", key,
                         expected, value);
    if (strlen(value) >= sizeof(l->text[i]))
        return plan_fail(ctx, PLAN_ERR_INVALID, "limit '%s': '%s' is too long", key, value);
    snprintf(l->text[i], sizeof(l->text[i]), "%s", value);
    l->set[i] = true;
    l->required[i] = required;
    switch (i) {
    case PLAN_LIMIT_CPU: l->cpu = strtod(value, NULL); break;
    case PLAN_LIMIT_MEM: plan_parse_size(value, &l->mem); break;
    case PLAN_LIMIT_NOFILE: l->nofile = strtol(value, NULL, 10); break;
    case PLAN_LIMIT_NPROC: l->nproc = strtol(value, NULL, 10); break;
    default: l->nice = strtol(value, NULL, 10); break;
    }
    return 0;
}

int plan_limits_parse(plan_ctx *ctx, plan_limits *l, const char *spec)
{
    char *copy = plan_xstrdup(spec), *save = NULL;
    int rc = 0;
    if (!*copy)
        rc = plan_fail(ctx, PLAN_ERR_INVALID, "empty limits: write KEY=VALUE,... such as "
                                              "mem=64M,nofile=256");
    for (char *item = strtok_r(copy, ",", &save); !rc && item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq || eq == item)
            rc = plan_fail(ctx, PLAN_ERR_INVALID, "limit '%s' is not KEY=VALUE, such as "
                                                  "mem=64M", item);
        else {
            *eq = '\0';
            rc = plan_limits_set(ctx, l, item, eq + 1, true);
        }
    }
    free(copy);
    return rc;
}

bool plan_limits_any(const plan_limits *l)
{
    for (int i = 0; i < PLAN_LIMIT_COUNT; i++)
        if (l->set[i])
            return true;
    return false;
}

/* ---------- the cgroup ---------- */

struct plan_limits_setup {
    plan_limits l;
    bool rlimit[PLAN_LIMIT_COUNT];  /* applied by setrlimit or setpriority */
    bool cgroup[PLAN_LIMIT_COUNT];  /* applied by the cgroup */
    char *group;                    /* the cgroup's directory, or NULL */
    char *report;
};

static int write_text(const char *dir, const char *file, const char *text)
{
    char *path = plan_path_join(dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static char *read_text(const char *path)
{
    plan_buf b;
    plan_buf_init(&b);
    char *out = plan_fs_read_file(path, 1 << 16, &b) == 0 ? plan_buf_detach(&b) : NULL;
    plan_buf_release(&b);
    return out;
}

/* This process's cgroup v2 directory, or NULL with why set. */
static char *own_group(const char **why)
{
    struct statfs sf;
    if (statfs(CGROUP_ROOT, &sf) != 0 || (unsigned long)sf.f_type != CGROUP2_MAGIC) {
        *why = CGROUP_ROOT " is not a cgroup v2 hierarchy";
        return NULL;
    }
    char *text = read_text("/proc/self/cgroup");
    char *line = text ? strstr(text, "0::") : NULL;
    if (!line || (line != text && line[-1] != '\n')) {
        free(text);
        *why = "this process has no cgroup v2 group";
        return NULL;
    }
    line += 3;
    line[strcspn(line, "\n")] = '\0';
    char *dir = plan_xasprintf(CGROUP_ROOT "%s", strcmp(line, "/") ? line : "");
    free(text);
    if (access(dir, W_OK) != 0) {
        *why = "its cgroup is not writable";
        free(dir);
        return NULL;
    }
    return dir;
}

/* Is controller enabled for the children of dir?  Tries to enable it. */
static bool controller(const char *dir, const char *name)
{
    char *file = plan_path_join(dir, "cgroup.subtree_control");
    char *text = read_text(file);
    free(file);
    bool on = false;
    for (char *w = text ? strtok(text, " \n") : NULL; w && !on; w = strtok(NULL, " \n"))
        on = !strcmp(w, name);
    free(text);
    if (!on) {
        char *plus = plan_xasprintf("+%s", name);
        on = write_text(dir, "cgroup.subtree_control", plus) == 0;
        free(plus);
    }
    return on;
}

/* Make the child group and write the limits it can hold. */
static void make_group(plan_limits_setup *s, const char *name, const char **why)
{
    char *parent = own_group(why);
    if (!parent)
        return;
    static const char *const ctl[PLAN_LIMIT_COUNT] = {"cpu", "memory", NULL, "pids", NULL};
    bool any = false;
    for (int i = 0; i < PLAN_LIMIT_COUNT; i++)
        if (s->l.set[i] && ctl[i] && controller(parent, ctl[i]))
            s->cgroup[i] = any = true;
    if (!any) {
        *why = "its cgroup does not delegate the cpu, memory or pids controller";
        free(parent);
        return;
    }
    char *dir = plan_xasprintf("%s/plan-%s", parent, name);
    free(parent);
    if (mkdir(dir, 0755) != 0) {
        *why = "a child group cannot be created";
        memset(s->cgroup, 0, sizeof(s->cgroup));
        free(dir);
        return;
    }
    s->group = dir;
    char v[64];
    if (s->cgroup[PLAN_LIMIT_MEM]) {
        snprintf(v, sizeof(v), "%llu", (unsigned long long)s->l.mem);
        s->cgroup[PLAN_LIMIT_MEM] = write_text(dir, "memory.max", v) == 0;
    }
    if (s->cgroup[PLAN_LIMIT_CPU]) {
        /* cpu.max: a quota per period of 100 ms. */
        long quota = (long)(s->l.cpu * 100000.0);
        snprintf(v, sizeof(v), "%ld 100000", quota < 1000 ? 1000 : quota);
        s->cgroup[PLAN_LIMIT_CPU] = write_text(dir, "cpu.max", v) == 0;
    }
    if (s->cgroup[PLAN_LIMIT_NPROC]) {
        snprintf(v, sizeof(v), "%ld", s->l.nproc);
        s->cgroup[PLAN_LIMIT_NPROC] = write_text(dir, "pids.max", v) == 0;
    }
    if (!s->cgroup[PLAN_LIMIT_MEM] && !s->cgroup[PLAN_LIMIT_CPU] && !s->cgroup[PLAN_LIMIT_NPROC])
        *why = "its limits cannot be written";
}

/* ---------- deciding ---------- */

/* Why an rlimit-side limit cannot be applied by this process, or NULL. */
static const char *rlimit_problem(const plan_limits *l, int i)
{
    bool root = geteuid() == 0;
    struct rlimit cur;
    switch (i) {
    case PLAN_LIMIT_CPU:
        return "a share of CPUs needs a cgroup";
    case PLAN_LIMIT_NOFILE:
        if (!root && getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_max != RLIM_INFINITY &&
            (rlim_t)l->nofile > cur.rlim_max)
            return "it is above the hard limit of this process";
        return NULL;
    case PLAN_LIMIT_NPROC:
        /* The kernel does not hold root to RLIMIT_NPROC. */
        return root ? "RLIMIT_NPROC does not bind root, and pids.max needs a cgroup" : NULL;
    case PLAN_LIMIT_NICE:
        errno = 0;
        if (!root && l->nice < getpriority(PRIO_PROCESS, 0) && !errno)
            return "lowering the nice value needs root";
        return NULL;
    default:
        return NULL;
    }
}

/* What applies each limit in this process and in the cgroup. */
static const char *const by_rlimit[PLAN_LIMIT_COUNT] = {NULL, "RLIMIT_DATA", "RLIMIT_NOFILE",
                                                        "RLIMIT_NPROC", "setpriority"};
static const char *const by_cgroup[PLAN_LIMIT_COUNT] = {"cpu.max", "memory.max", NULL,
                                                        "pids.max", NULL};

int plan_limits_prepare(plan_ctx *ctx, const plan_limits *l, const char *name,
                        plan_limits_setup **out)
{
    plan_limits_setup *s = plan_xcalloc(1, sizeof(*s));
    s->l = *l;
    const char *cg_why = "no limit needs it";
    if (l->set[PLAN_LIMIT_CPU] || l->set[PLAN_LIMIT_MEM] || l->set[PLAN_LIMIT_NPROC])
        make_group(s, name, &cg_why);
    plan_buf done, skipped;
    plan_buf_init(&done);
    plan_buf_init(&skipped);
    int rc = 0;
    for (int i = 0; i < PLAN_LIMIT_COUNT && !rc; i++) {
        if (!l->set[i])
            continue;
        const char *problem = rlimit_problem(l, i);
        s->rlimit[i] = !problem;
        if (!s->rlimit[i] && !s->cgroup[i]) {
            char *why = by_cgroup[i] ? plan_xasprintf("%s; no cgroup: %s", problem, cg_why)
                              : plan_xstrdup(problem);
            if (l->required[i])
                rc = plan_fail(ctx, PLAN_ERR_FAILED,
                               "cannot apply the limit %s=%s: %s; leave '%s' out of --limit",
                               limit_names[i], l->text[i], why, limit_names[i]);
            else
                plan_buf_printf(&skipped, "%s%s=%s (%s)", skipped.len ? ", " : "",
                                limit_names[i], l->text[i], why);
            free(why);
            continue;
        }
        plan_buf_printf(&done, "%s%s=%s (", done.len ? ", " : "", limit_names[i], l->text[i]);
        if (s->rlimit[i])
            plan_buf_adds(&done, by_rlimit[i]);
        if (s->cgroup[i])
            plan_buf_printf(&done, "%s%s", s->rlimit[i] ? ", " : "", by_cgroup[i]);
        plan_buf_addc(&done, ')');
    }
    if (rc) {
        plan_buf_release(&done);
        plan_buf_release(&skipped);
        plan_limits_setup_free(s);
        return rc;
    }
    s->report = plan_xasprintf("%s%s%s", done.len ? done.data : "none",
                               skipped.len ? "; not applied: " : "",
                               skipped.len ? skipped.data : "");
    plan_buf_release(&done);
    plan_buf_release(&skipped);
    *out = s;
    return 0;
}

const char *plan_limits_report(const plan_limits_setup *s)
{
    return s->report;
}

/* ---------- applying, in the child ---------- */

static int set_rlimit(int resource, rlim_t value, const char *name, char *err, size_t errlen)
{
    struct rlimit r = {value, value};
    if (setrlimit(resource, &r) != 0) {
        snprintf(err, errlen, "cannot set %s: %s", name, strerror(errno));
        return -1;
    }
    return 0;
}

int plan_limits_join(const plan_limits_setup *s, char *err, size_t errlen)
{
    if (s->group && write_text(s->group, "cgroup.procs", "0") != 0) {
        snprintf(err, errlen, "cannot join the cgroup '%s': %s", s->group, strerror(errno));
        return -1;
    }
    return 0;
}

int plan_limits_apply(const plan_limits_setup *s, char *err, size_t errlen)
{
    const plan_limits *l = &s->l;
    if (s->rlimit[PLAN_LIMIT_MEM] &&
        set_rlimit(RLIMIT_DATA, (rlim_t)l->mem, "RLIMIT_DATA", err, errlen))
        return -1;
    if (s->rlimit[PLAN_LIMIT_NOFILE] &&
        set_rlimit(RLIMIT_NOFILE, (rlim_t)l->nofile, "RLIMIT_NOFILE", err, errlen))
        return -1;
    if (s->rlimit[PLAN_LIMIT_NPROC] &&
        set_rlimit(RLIMIT_NPROC, (rlim_t)l->nproc, "RLIMIT_NPROC", err, errlen))
        return -1;
    if (s->rlimit[PLAN_LIMIT_NICE] && setpriority(PRIO_PROCESS, 0, (int)l->nice) != 0) {
        snprintf(err, errlen, "cannot set the nice value: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void plan_limits_setup_free(plan_limits_setup *s)
{
    if (!s)
        return;
    if (s->group) {
        /* Something the command left behind keeps the group busy: end it. */
        for (int i = 0; i < 50 && rmdir(s->group) != 0 && errno == EBUSY; i++) {
            write_text(s->group, "cgroup.kill", "1");
            nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        }
        free(s->group);
    }
    free(s->report);
    free(s);
}

/* ---------- isolation ---------- */

int plan_isolation_check(plan_ctx *ctx, bool no_network)
{
    static const struct {
        int flag;
        const char *what;
    } ns[] = {{CLONE_NEWNS, "a mount namespace"},
              {CLONE_NEWPID, "a PID namespace"},
              {CLONE_NEWIPC, "an IPC namespace"},
              {CLONE_NEWNET, "a network namespace"}};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        if (ns[i].flag == CLONE_NEWNET && !no_network)
            continue;
        int e = sandbox_probe(ns[i].flag);
        if (e)
            return plan_fail(ctx, PLAN_ERR_FAILED,
                             "--isolate is not available here: cannot create %s (%s); run "
                             "without --isolate%s",
                             ns[i].what, strerror(e), no_network ? " and --no-network" : "");
    }
    return 0;
}

int plan_isolation_enter(const plan_isolation *iso, char *err, size_t errlen)
{
    sandbox_isolation s = {iso->no_network, iso->store_dir, iso->keep, iso->n_keep};
    return sandbox_isolate(&s, err, errlen);
}
