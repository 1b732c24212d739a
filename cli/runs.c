/* Run records (runs.h, docs/formats/run.md): one folder per plan run
 * under <root>/var/runs/<id>, a JSON record rewritten atomically at each
 * change, one log per attempt, and a lock the supervisor holds for its
 * whole life, so that a supervisor killed with SIGKILL is seen as such. */
#include "runs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

char *cli_runs_dir(const cli *c)
{
    return plan_path_join(c->root, "var/runs");
}

static bool valid_id(const char *id)
{
    if (strlen(id) != 8)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int cli_run_create(cli *c, cli_run *r)
{
    memset(r, 0, sizeof(*r));
    r->lock_fd = -1;
    char *runs = cli_runs_dir(c);
    if (plan_fs_mkdirs(runs, 0755) != 0) {
        int rc = cli_error(c, "cannot create '%s': %s", runs, strerror(errno));
        free(runs);
        return rc;
    }
    for (int tries = 0; tries < 16 && !r->dir; tries++) {
        uint8_t rnd[4];
        randombytes_buf(rnd, sizeof(rnd));
        plan_hex_encode(rnd, sizeof(rnd), r->id);
        char *dir = plan_path_join(runs, r->id);
        if (mkdir(dir, 0700) == 0)
            r->dir = dir;
        else
            free(dir);
    }
    free(runs);
    if (!r->dir)
        return cli_error(c, "cannot create a run folder under '%s/var/runs': %s", c->root,
                         strerror(errno));
    char *lock = plan_path_join(r->dir, "lock");
    r->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(lock);
    if (r->lock_fd < 0 || flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int rc = cli_error(c, "cannot lock the run folder '%s': %s", r->dir, strerror(errno));
        plan_fs_rmtree(r->dir); /* nothing half-made stays */
        return rc;
    }
    r->rec = json_object();
    return EXIT_OK;
}

void cli_run_save(cli *c, cli_run *r)
{
    char *text = json_dumps(r->rec, JSON_INDENT(2) | JSON_SORT_KEYS);
    char *file = plan_path_join(r->dir, "run.json");
    if (plan_fs_write_atomic(file, text, strlen(text), 0600) != 0)
        plan_warn(c->ctx, "cannot write the run record '%s': %s", file, strerror(errno));
    free(file);
    free(text);
}

void cli_run_close(cli_run *r)
{
    if (r->lock_fd >= 0)
        close(r->lock_fd);
    r->lock_fd = -1;
    json_decref(r->rec);
    r->rec = NULL;
    free(r->dir);
    r->dir = NULL;
}

char *cli_run_log_path(const char *dir, long attempt)
{
    return plan_xasprintf("%s/attempt-%ld.log", dir, attempt);
}

int cli_run_open(cli *c, const char *id, char **dir, json_t **rec)
{
    *dir = NULL;
    *rec = NULL;
    if (!valid_id(id))
        return cli_error(c, "'%s' is not a run id (8 hex digits): 'plan ps -a' lists the runs",
                         id);
    char *runs = cli_runs_dir(c);
    char *d = plan_path_join(runs, id);
    free(runs);
    char *file = plan_path_join(d, "run.json");
    json_error_t err;
    json_t *j = json_load_file(file, 0, &err);
    free(file);
    if (!json_is_object(j)) {
        json_decref(j);
        int rc = access(d, F_OK) == 0
                     ? cli_error(c, "the run '%s' has no readable record in '%s'", id, d)
                     : cli_error(c, "no run '%s' in '%s': 'plan ps -a' lists the runs", id,
                                 c->root);
        free(d);
        return rc;
    }
    *dir = d;
    *rec = j;
    return EXIT_OK;
}

bool cli_run_alive(const char *dir)
{
    char *lock = plan_path_join(dir, "lock");
    int fd = open(lock, O_RDONLY | O_CLOEXEC);
    free(lock);
    if (fd < 0)
        return false;
    bool alive = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return alive;
}

const char *cli_run_state(const json_t *rec, bool alive)
{
    const char *s = json_string_value(json_object_get(rec, "state"));
    if (!s)
        return alive ? "starting" : "lost";
    if (alive || !strcmp(s, "exited"))
        return s;
    return "lost";
}

int cli_runs_list(cli *c, plan_strlist *ids)
{
    char *runs = cli_runs_dir(c);
    DIR *d = opendir(runs);
    free(runs);
    if (!d)
        return EXIT_OK; /* no run yet */
    struct dirent *e;
    while ((e = readdir(d)))
        if (valid_id(e->d_name))
            plan_strlist_add(ids, e->d_name);
    closedir(d);
    plan_strlist_sort(ids);
    return EXIT_OK;
}
