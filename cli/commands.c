/* The command table, sorted by name, and lookup with suggestions. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

const command plan_commands[] = {
    {"build", cmd_build, "build a recipe into a store path",
     "usage: plan build RECIPE [-o LINK] [--check] [--no-sandbox] [-L] [--recipes DIR]...\n"
     "\n"
     "Build the recipe (and first any dependency missing from the store) and print\n"
     "its store path.  Building the same recipe again prints the same path at once.\n"
     "The build runs in a clean environment and, where Linux namespaces are\n"
     "available, a sandbox: no network, the store read-only but for the output.\n"
     "A failed or interrupted build adds nothing to the store; its log is kept.\n"
     "\n"
     "Options:\n"
     "  -o, --output LINK  also make LINK a symlink to the result (a GC root)\n"
     "  --check            build again and compare with the registered result:\n"
     "                     exit 0 if identical, else list what differs and exit 1\n"
     "  --no-sandbox       build without namespaces\n"
     "  -L                 stream the build log to the terminal\n"
     "  --recipes DIR      where dependencies' recipes are (repeatable; default:\n"
     "                     the recipe's own folder)\n"
     "  -j, --jobs N       PLAN_JOBS for the build (default: one per core)\n"
     "\n"
     "Examples:\n"
     "  plan build examples/recipes/hello.yaml -o result\n"
     "  plan build hello.yaml --recipes ~/recipes -L\n"
     "  plan build hello.yaml --check\n"},
    {"env", cmd_env, "run a command in an environment of plans, then remove it",
     "usage: plan env [NAME[@RANGE]|PATH...] [-f plan.yaml] [--frozen] [--pure] [--keep]\n"
     "                [--recipes DIR]... [--prefer NAME]... [--strategy S]\n"
     "                [--choose PATH=NAME]... [-- CMD ARGS...]\n"
     "\n"
     "Resolve the plans (or, with no names, plan.yaml and its plan.lock), build what\n"
     "the store lacks, merge them into a symlink farm in a fresh run root (on a\n"
     "tmpfs where there is one), run CMD there natively with the composed\n"
     "environment, and remove the run root.  With no CMD, start $SHELL.  The exit\n"
     "status is CMD's (128+N if it died of signal N).  The same request on an\n"
     "unchanged store resolves and builds nothing.  While the command runs, its\n"
     "plans and run root are safe from 'plan gc'; 'plan ps' lists it.  An\n"
     "argument with a '/' is a store path, taken as it is.\n"
     "\n"
     "Options:\n"
     "  -f, --file FILE     the project file (default: plan.yaml)\n"
     "  --frozen            use plan.lock exactly: fail if it is missing or stale;\n"
     "                      never resolve, never use the network (for CI)\n"
     "  --pure              start from an almost empty environment (HOME, USER,\n"
     "                      TERM, LANG, LC_*, TZ, DISPLAY...): PATH holds only the\n"
     "                      plans' directories\n"
     "  --keep              leave the run root in place afterwards (for inspection)\n"
     "  --recipes DIR       recipe repositories (repeatable; default: the\n"
     "                      configuration file's)\n"
     "  --prefer NAME       NAME wins any collision it is part of (repeatable)\n"
     "  --strategy S        collisions: error (default), prefer-first, prefer-last\n"
     "  --choose PATH=NAME  take PATH (e.g. bin/tool) from NAME\n"
     "  --limit SPEC        resource limits for CMD: cpu=0.5,mem=64M,nofile=256,\n"
     "                      nproc=32,nice=10 (any of them; see 'plan help run')\n"
     "  --isolate           private mount, PID and IPC namespaces: the store\n"
     "                      read-only, a private /tmp\n"
     "  --no-network        with --isolate: no network at all\n"
     "\n"
     "The environment: <farm>/bin first on PATH, then each plan's env declarations\n"
     "(prepend/append take the directory in the farm), then plan.yaml's env.\n"
     "PLAN_ENV is the farm and PLAN_RUN_ROOT the run root.\n"
     "\n"
     "Examples:\n"
     "  plan env hello -- hello\n"
     "  plan env --recipes examples/recipes greeter@^1 wordfreq -- sh -c 'greeter | wordfreq'\n"
     "  plan env --frozen -- make test     # CI, from plan.yaml and plan.lock\n"
     "  plan env --limit mem=1G,nofile=1024 --isolate --no-network hello -- hello\n"},
    {"gc", cmd_gc, "delete store paths no root reaches",
     "usage: plan gc [--dry-run] [--delete-generations OLDER|+KEEP] [--max-freed SIZE]\n"
     "               [--yes]\n"
     "       plan gc roots\n"
     "       plan gc add-root NAME PATH\n"
     "       plan gc remove-root NAME\n"
     "\n"
     "Delete every store path that no root reaches.  Roots: every generation of\n"
     "every profile, live run roots and running plan processes, links made by\n"
     "'plan build -o', and named roots.  Stale run roots (their plan is gone) are\n"
     "removed.  gc is safe while builds, installs and envs run: they wait for it\n"
     "or it leaves what they hold; an interrupted gc leaves a consistent store.\n"
     "\n"
     "Options:\n"
     "  -n, --dry-run              list what would be deleted; delete nothing\n"
     "  --delete-generations X     first delete profile generations: +N keeps the\n"
     "                             newest N of each profile, 30d (h, w) those older;\n"
     "                             the current generation is always kept\n"
     "  --max-freed SIZE           stop after freeing SIZE (e.g. 500M, 2G)\n"
     "  -y, --yes                  do not ask before deleting generations\n"
     "\n"
     "Subcommands:\n"
     "  roots                      list every root and the path it keeps\n"
     "  add-root NAME PATH         keep PATH (and its closure) under NAME\n"
     "  remove-root NAME           drop the named root\n"
     "\n"
     "Examples:\n"
     "  plan gc --dry-run\n"
     "  plan gc --delete-generations +3 --yes\n"
     "  plan gc add-root my-tools ./result\n"},
    {"generations", cmd_generations, "list, compare or delete a profile's generations",
     "usage: plan generations [--profile NAME] [--json]\n"
     "       plan generations --diff N M\n"
     "       plan generations --delete N...\n"
     "\n"
     "List the generations of a profile: number, date, the requested packages and\n"
     "their versions, and which one is current.  --diff lists what changed from\n"
     "generation N to M; --delete removes generations (never the current one; 'plan\n"
     "gc' then frees their paths).\n"
     "\n"
     "Options:\n"
     "  -p, --profile NAME  the profile (default: $PLAN_PROFILE or 'default')\n"
     "\n"
     "Examples:\n"
     "  plan generations\n"
     "  plan generations --diff 1 3\n"},
    {"help", cmd_help, "show help for a command",
     "usage: plan help [command [subcommand]]\n"
     "\n"
     "Show the help of a command.\n"
     "\n"
     "Examples:\n"
     "  plan help store\n"
     "  plan help store add\n"},
    {"info", cmd_info, "show what the registries publish under a name",
     "usage: plan info NAME [--json]\n"
     "\n"
     "List every version of NAME in every registry (from the verified metadata\n"
     "cache; 'plan registry update' refreshes it): store path, yanked or not, and\n"
     "who signed it, or the key id when that key is not trusted.\n"
     "\n"
     "Examples:\n"
     "  plan info hello\n"
     "  plan info hello --json\n"},
    {"install", cmd_install, "add packages to a profile (a new generation)",
     "usage: plan install [--profile NAME] [--recipes DIR]... [--prefer NAME]...\n"
     "                    [--strategy S] NAME[@RANGE]...\n"
     "\n"
     "Add the requests to the profile's, resolve them all together (versions\n"
     "already installed are kept where they fit), build what the store lacks,\n"
     "merge the result into a new generation and switch to it with one rename.\n"
     "A failure at any step leaves the current generation as it was.  A request\n"
     "without a range is recorded as ^VERSION of what was installed.\n"
     "\n"
     "Options:\n"
     "  -p, --profile NAME  the profile (default: $PLAN_PROFILE or 'default')\n"
     "  --recipes DIR       recipe repositories (repeatable; default: the\n"
     "                      configuration file's, else the profile's last ones)\n"
     "  --prefer NAME       NAME wins file collisions (remembered by the profile)\n"
     "  --strategy S        collisions: error (default), prefer-first, prefer-last\n"
     "\n"
     "Examples:\n"
     "  plan install --recipes examples/recipes hello\n"
     "  plan install 'greeter@^1.0'\n"},
    {"keys", cmd_keys, "make, trust and export Ed25519 signing keys",
     "usage: plan keys generate NAME\n"
     "       plan keys list\n"
     "       plan keys trust NAME:BASE64 | FILE\n"
     "       plan keys untrust NAME | ID\n"
     "       plan keys export NAME\n"
     "\n"
     "Publishers sign packages with a secret key; plan accepts only signatures by\n"
     "keys it trusts.  Keys are never trusted on first use: trusting one is always\n"
     "this explicit step.  A key's id is the first 8 bytes of BLAKE2b of the public\n"
     "key, in hex.  Secret keys live in <config>/keys/NAME.secret (mode 0600), the\n"
     "trusted public keys in <config>/trusted-keys.\n"
     "\n"
     "Subcommands:\n"
     "  generate NAME   make a key pair; print the public key as NAME:BASE64\n"
     "  list            the trusted keys (and whether the secret is here)\n"
     "  trust KEY       trust a public key, given as NAME:BASE64 or a .pub file\n"
     "  untrust KEY     stop trusting a key, by name or id\n"
     "  export NAME     print the public key of a secret key of this machine\n"
     "\n"
     "Examples:\n"
     "  plan keys generate alice\n"
     "  plan keys trust alice:Kq3v...=\n"
     "  plan keys export alice > alice.pub\n"},
    {"list", cmd_list, "list the packages of a profile's current generation",
     "usage: plan list [--profile NAME] [--json]\n"
     "\n"
     "List name, version, whether it was requested (with its range) or came as a\n"
     "dependency, and the store path of every package in the current generation.\n"
     "\n"
     "Examples:\n"
     "  plan list\n"
     "  plan list --json\n"},
    {"lock", cmd_lock, "resolve plan.yaml into plan.lock",
     "usage: plan lock [-f plan.yaml] [--check] [--upgrade]\n"
     "\n"
     "Resolve the packages of plan.yaml against its recipe repositories and write\n"
     "the exact closure to plan.lock (next to it): for every package its version,\n"
     "source, recipe and recipe hash, dependencies, and what required it.  The\n"
     "same input always gives the same bytes.  Versions already in plan.lock are\n"
     "kept while they still satisfy every requirement.\n"
     "\n"
     "Options:\n"
     "  -f, --file FILE  the project file (default: plan.yaml)\n"
     "  --check          write nothing; exit 1 if plan.lock is missing or stale\n"
     "  --upgrade        ignore the versions in plan.lock: take the newest\n"
     "\n"
     "Examples:\n"
     "  plan lock\n"
     "  plan lock --check    # in CI\n"},
    {"log", cmd_log, "show the build log of a store path",
     "usage: plan log PATH\n"
     "\n"
     "Print the log of the build that produced PATH (a store path, its basename,\n"
     "its digest or a link to it).  Failed builds keep their logs too; their path\n"
     "is printed when they fail.\n"
     "\n"
     "Examples:\n"
     "  plan log ./result\n"
     "  plan log --json ./result\n"},
    {"logs", cmd_logs, "show the output of a plan run",
     "usage: plan logs ID [--attempt N] [-f|--follow]\n"
     "\n"
     "Print what the run ID (from 'plan ps') wrote, standard output and error as\n"
     "they came, for its last attempt or attempt N.  A line on standard error says\n"
     "which run, attempt and configuration version it was.\n"
     "\n"
     "Options:\n"
     "  --attempt N    that attempt (1 is the first)\n"
     "  -f, --follow   keep printing while the attempt runs\n"
     "\n"
     "Examples:\n"
     "  plan logs 3fa2c1d0\n"
     "  plan logs 3fa2c1d0 --attempt 1\n"
     "  plan logs -f 3fa2c1d0\n"},
    {"ps", cmd_ps, "list live run roots (plan env) and runs (plan run)",
     "usage: plan ps [-a|--all] [--json]\n"
     "\n"
     "List the run roots that are alive (plan env): id, pid of plan, start time,\n"
     "plans and command; then the runs of plan run that are not over: id, state\n"
     "(starting, running, restarting, lost), plan, entry, attempts, configuration\n"
     "version, start time, command.  Liveness is a lock the run holds, not a guess\n"
     "from /proc: 'lost' means plan itself was killed during the run.\n"
     "\n"
     "Options:\n"
     "  -a, --all   also the runs that have exited\n"
     "\n"
     "Examples:\n"
     "  plan ps\n"
     "  plan ps -a\n"
     "  plan ps --json\n"},
    {"publish", cmd_publish, "sign and upload a recipe's build and its closure",
     "usage: plan publish RECIPE [--registry NAME] [--key NAME] [--token TOKEN]\n"
     "                    [--recipes DIR]...\n"
     "\n"
     "Build the recipe if needed, then publish it and every path of its closure\n"
     "that the registry lacks, references first: each store path is exported on\n"
     "its own, signed with your key over its name, version, store directory, path,\n"
     "content hash, references, dependencies, archive and recipe hashes, and\n"
     "uploaded with its recipe.  Versions are immutable: the same version with\n"
     "other contents is refused.\n"
     "\n"
     "Options:\n"
     "  --registry NAME  where to (default: the first registry)\n"
     "  --key NAME       the signing key (also PLAN_KEY; see 'plan keys')\n"
     "  --token TOKEN    the registry token (also PLAN_REGISTRY_TOKEN)\n"
     "  --recipes DIR    recipe repositories for the dependencies (default: the\n"
     "                   recipe's folder)\n"
     "\n"
     "Examples:\n"
     "  plan publish examples/recipes/hello.yaml --key alice --token plan_...\n"},
    {"recipe", cmd_recipe, "check recipes or write a new one",
     "usage: plan recipe check FILE...\n"
     "       plan recipe new NAME [-o FILE]\n"
     "\n"
     "check validates recipes without building them: every problem is reported\n"
     "as file:line:column with the field, what was expected and a hint.\n"
     "new writes a commented template to NAME.yaml (or FILE, '-' for stdout); it\n"
     "never overwrites a file.\n"
     "\n"
     "Examples:\n"
     "  plan recipe check examples/recipes/*.yaml\n"
     "  plan recipe new mytool\n"},
    {"registry", cmd_registry, "add, list, remove or update registries",
     "usage: plan registry add NAME URL --key NAME:BASE64\n"
     "       plan registry list\n"
     "       plan registry remove NAME\n"
     "       plan registry update [NAME]\n"
     "\n"
     "A registry is where signed plans are published and fetched.  Adding one\n"
     "pins its key (the one 'plan-registry init' printed): plan never fetches a\n"
     "registry's key from the registry.  'update' fetches its timestamp, then the\n"
     "snapshot and the index files that changed, and keeps them only if every\n"
     "signature verifies, nothing expired, nothing is older than what was seen\n"
     "before, and every file matches the size and hash signed for it.  Registries\n"
     "are kept in <config>/registries.json, in priority order.\n"
     "\n"
     "Examples:\n"
     "  plan registry add main http://127.0.0.1:8080 --key main:Kq3v...=\n"
     "  plan registry add mirror file:///srv/mirror --key main:Kq3v...=\n"
     "  plan registry update\n"},
    {"remove", cmd_remove, "remove packages from a profile (a new generation)",
     "usage: plan remove [--profile NAME] [--recipes DIR]... [--prefer NAME]...\n"
     "                   [--strategy S] NAME...\n"
     "\n"
     "Drop the requests, resolve what remains, and switch to the new generation.\n"
     "The old generation stays until deleted ('plan rollback' returns to it).\n"
     "\n"
     "Examples:\n"
     "  plan remove hello\n"},
    {"rollback", cmd_rollback, "switch a profile back to an earlier generation",
     "usage: plan rollback [--profile NAME] [--to N]\n"
     "\n"
     "Point the profile at the generation before the current one (or at N): one\n"
     "rename, nothing is built or deleted.\n"
     "\n"
     "Examples:\n"
     "  plan rollback\n"
     "  plan rollback --to 2\n"},
    {"run", cmd_run, "run a plan's entry point in a fresh run root, supervised",
     "usage: plan run NAME[@RANGE]|PATH [--entry NAME] [--restart POLICY]\n"
     "                [--max-restarts N] [--limit SPEC] [--isolate [--no-network]]\n"
     "                [--recipes DIR]... [-- ARGS...]\n"
     "\n"
     "Realise the plan as 'plan env' does, make a fresh run root (its farm, a\n"
     "private TMPDIR, config/, the plan's state directory linked in), and run the\n"
     "entry point its manifest names (default: 'default') with ARGS, in the\n"
     "recipe's workdir.  plan supervises in the foreground: the output goes to the\n"
     "terminal and to a log per attempt ('plan logs ID'); 'plan stop ID' ends it.\n"
     "When an attempt ends, its run root is removed; only <root>/var/state/NAME\n"
     "survives.  The exit status is the last attempt's (128+N for signal N).\n"
     "\n"
     "Options:\n"
     "  --entry NAME         the entry point (the recipe's 'run:' keys)\n"
     "  --restart POLICY     no (default), on-failure, always; the delay doubles\n"
     "                       from 0.5 s to at most 30 s\n"
     "  --max-restarts N     restarts allowed (default 5)\n"
     "  --limit SPEC         cpu=0.5,mem=64M,nofile=256,nproc=32,nice=10: over the\n"
     "                       recipe's resources, key by key; mem is RLIMIT_DATA,\n"
     "                       with a cgroup v2 group when one can be made\n"
     "  --isolate            private mount, PID and IPC namespaces: the store\n"
     "                       read-only, a private /tmp\n"
     "  --no-network         with --isolate: no network at all\n"
     "  --recipes DIR        recipe repositories (repeatable)\n"
     "\n"
     "Examples:\n"
     "  plan run --recipes examples/recipes greeter\n"
     "  plan run greeter --entry version\n"
     "  plan run ./result --restart on-failure --max-restarts 3 -- --port 8080\n"
     "  plan run greeter --limit mem=128M,nofile=512 --isolate --no-network\n"},
    {"search", cmd_search, "find package names in the registries",
     "usage: plan search TERM [--json]\n"
     "\n"
     "List the package names that contain TERM (case-insensitive) in the cached\n"
     "indexes of every registry.\n"
     "\n"
     "Examples:\n"
     "  plan search greet\n"},
    {"semver", cmd_semver, "check versions against a SemVer range, or sort them",
     "usage: plan semver [-r RANGE]... VERSION...\n"
     "\n"
     "Print the versions that satisfy every RANGE, in ascending order, one per\n"
     "line; with no range, print all the versions sorted.  Versions follow\n"
     "SemVer 2.0.0 (a leading 'v' is accepted and dropped; build metadata is\n"
     "kept); invalid versions are skipped (-v names them).  Ranges follow npm:\n"
     "^1.2.3, ~1.2, 1.x, >=1.0.0 <2, 1.2.3 - 2.0.0, a || b.  A prerelease only\n"
     "matches a range that names a prerelease of the same MAJOR.MINOR.PATCH.\n"
     "\n"
     "Options:\n"
     "  -r, --range RANGE  keep only versions in RANGE (repeatable: all must match)\n"
     "  --json             {versions, ranges (with their comparators), invalid, unmatched}\n"
     "\n"
     "Exit status: 0 if any version is printed, 1 if none, 2 if a range is invalid.\n"
     "\n"
     "Examples:\n"
     "  plan semver -r '^1.2.0' 1.1.0 1.2.5 1.10.0 2.0.0     # 1.2.5, 1.10.0\n"
     "  plan semver -r '>=1.0.0-rc.1 <2' 1.0.0-rc.2 1.5.0   # both\n"
     "  plan semver 1.10.0 v1.2.0 1.2.0-beta                 # sorted\n"
     "  plan --json semver -r '~1.2' 1.2.9 1.3.0\n"},
    {"shell-init", cmd_shell_init, "print what puts a profile on PATH in a shell",
     "usage: plan shell-init [bash|zsh|fish|sh] [--profile NAME]\n"
     "\n"
     "Print the lines a shell's startup file needs to use the profile: its bin on\n"
     "PATH and the environment its plans declare.  Rollbacks and installs need\n"
     "no new shell for PATH.  The shell defaults to the one in $SHELL.\n"
     "\n"
     "Examples:\n"
     "  echo 'eval \"$(plan shell-init bash)\"' >> ~/.bashrc\n"
     "  plan shell-init fish | source\n"},
    {"stop", cmd_stop, "stop a plan run: SIGTERM, then SIGKILL after a grace period",
     "usage: plan stop ID [--grace SECONDS]\n"
     "\n"
     "Ask the supervisor of run ID (from 'plan ps') to stop: it sends SIGTERM to\n"
     "the command, SIGKILL once the grace period is over (default 10 s), does not\n"
     "restart it, removes the run root and exits.  'plan stop' waits for that and\n"
     "prints the command's status.\n"
     "\n"
     "Options:\n"
     "  --grace SECONDS   time between SIGTERM and SIGKILL (default 10)\n"
     "\n"
     "Examples:\n"
     "  plan stop 3fa2c1d0\n"
     "  plan stop 3fa2c1d0 --grace 2\n"},
    {"store", cmd_store, "work with the store directly (add, verify, export, ...)", NULL},
    {"upgrade", cmd_upgrade, "move a profile's packages to the newest versions allowed",
     "usage: plan upgrade [--profile NAME] [--recipes DIR]... [--prefer NAME]...\n"
     "                    [--strategy S] [NAME...]\n"
     "\n"
     "Resolve the profile's requests again, letting the named packages (all, with\n"
     "no names) move to the newest versions their ranges allow, and switch to the\n"
     "new generation.\n"
     "\n"
     "Examples:\n"
     "  plan upgrade\n"
     "  plan upgrade hello\n"},
    {"version", cmd_version, "show the version",
     "usage: plan version [--json]\n"
     "\n"
     "Show plan's version and the versions of the libraries it uses.\n"
     "\n"
     "Examples:\n"
     "  plan version\n"
     "  plan version --json\n"},
    {"why", cmd_why, "say which requirements pull a package in",
     "usage: plan why NAME [-f plan.yaml]\n"
     "\n"
     "Follow plan.lock from NAME up to the request of plan.yaml that pulls it\n"
     "in, one requirement per line.\n"
     "\n"
     "Examples:\n"
     "  plan why greet\n"
     "  plan --json why greet\n"},
    {"yank", cmd_yank, "mark a published version as withdrawn",
     "usage: plan yank NAME VERSION [--registry NAME] [--token TOKEN]\n"
     "\n"
     "Ask the registry to mark NAME VERSION yanked: its files stay (locks that\n"
     "name it still install), but resolution never chooses it anew.\n"
     "\n"
     "Examples:\n"
     "  plan yank hello 1.0.1 --token plan_...\n"},
};
const size_t plan_command_count = sizeof(plan_commands) / sizeof(plan_commands[0]);

const command *cli_find_command(const command *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(table[i].name, name))
            return &table[i];
    return NULL;
}

int cli_unknown_command(cli *c, const command *table, size_t n, const char *prefix,
                        const char *name)
{
    const command *best = NULL;
    size_t best_d = (size_t)-1;
    bool best_prefix = false;
    for (size_t i = 0; i < n; i++) {
        size_t d = plan_edit_distance(name, table[i].name);
        /* A prefix ("pat" for "path-info") is as good as a typo, and wins
         * a tie with one ("stor": store, not stop). */
        bool is_prefix = !strncmp(table[i].name, name, strlen(name));
        if (is_prefix)
            d = d < 1 ? d : 1;
        if (d < best_d || (d == best_d && is_prefix && !best_prefix)) {
            best_d = d;
            best = &table[i];
            best_prefix = is_prefix;
        }
    }
    cli_clear_progress(c);
    fprintf(stderr, "plan: unknown command '%s%s'\n", prefix, name);
    if (best && best_d <= 3 && best_d < strlen(name))
        fprintf(stderr, "plan: did you mean 'plan %s%s'?\n", prefix, best->name);
    else
        fprintf(stderr, "plan: see 'plan %s--help' for the list of commands\n", prefix);
    return EXIT_USAGE;
}
