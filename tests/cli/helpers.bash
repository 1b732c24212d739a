# Shared setup for the CLI scenarios: a fresh --root per test and a small
# source tree.  PLAN is the binary under test (set by tests/run.sh).
: "${PLAN:=$PWD/build/plan}"

plan() { "$PLAN" --root "$ROOT" "$@"; }

make_tree() {
    local dir=$1
    mkdir -p "$dir/bin" "$dir/share/doc"
    printf '#!/bin/sh\necho hello\n' >"$dir/bin/hello"
    chmod +x "$dir/bin/hello"
    printf 'hello, world\n' >"$dir/share/doc/README"
    ln -s doc/README "$dir/share/latest"
}

common_setup() {
    ROOT="$BATS_TEST_TMPDIR/root"
    SRC="$BATS_TEST_TMPDIR/src"
    make_tree "$SRC"
}

# Remove a root that holds read-only store paths.
wipe() { chmod -R u+w "$1" 2>/dev/null; rm -rf "$1"; }

# unpriv_dir: for a test that acts as user 65534 too.  Skips it unless this
# runs as root with setpriv and that user can run $PLAN; then makes $u, a
# folder under /tmp both can reach (bats's own are private to root), which
# unpriv_cleanup (from teardown) removes.
unpriv_dir() {
    [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null ||
        skip "needs root (to act as another user) and setpriv"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$PLAN" --version >/dev/null 2>&1 ||
        skip "the plan binary is not reachable by an unprivileged user from here"
    u=$(mktemp -d /tmp/plan-unpriv.XXXXXX)
    echo "$u" >"$BATS_TEST_TMPDIR/unpriv-dir"
}

unpriv_cleanup() {
    if [ -f "$BATS_TEST_TMPDIR/unpriv-dir" ]; then
        wipe "$(cat "$BATS_TEST_TMPDIR/unpriv-dir")"
    fi
    true
}

# ---- profiles, plan env and gc (profile.bats, env.bats, gc.bats) ----

# plan_recipe DIR NAME VERSION BUILD-SCRIPT [EXTRA-YAML]: write
# DIR/NAME-VERSION.yaml, a recipe with no sources.
plan_recipe() {
    mkdir -p "$1"
    {
        printf 'name: %s\nversion: %s\nbuild: |\n' "$2" "$3"
        printf '%s\n' "$4" | sed 's/^/  /'
        if [ -n "${5:-}" ]; then printf '%s\n' "$5"; fi
    } >"$1/$2-$3.yaml"
}

# tool_recipe DIR NAME VERSION TOOL TEXT: a plan whose bin/TOOL prints TEXT.
tool_recipe() {
    plan_recipe "$1" "$2" "$3" "mkdir -p \$out/bin
printf '#!/bin/sh\\necho $5\\n' >\$out/bin/$4
chmod +x \$out/bin/$4" 'env:
  PATH: prepend bin'
}

# tree_state DIR: every entry under DIR (type, path, link target), sorted;
# two equal states are the same tree of links.
tree_state() { (cd "$1" && find . -printf '%y %p -> %l\n' | LC_ALL=C sort); }

# wait_until TRIES CMD...: run CMD every 0.05 s until it succeeds.
wait_until() {
    local n=$1 i
    shift
    for ((i = 0; i < n; i++)); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}

# start_bg OUT CMD...: start CMD in the background (stdout and stderr to OUT, bats's
# fd 3 closed), remember its pid for bg_cleanup; the pid is in $BG_PID.
start_bg() {
    local out=$1
    shift
    "$@" >"$out" 2>&1 3>&- &
    BG_PID=$!
    echo "$BG_PID" >>"$BATS_TEST_TMPDIR/bg.pids"
}

# bg_cleanup: kill what start_bg started and is still running (for teardown).
bg_cleanup() {
    local p
    [ -f "$BATS_TEST_TMPDIR/bg.pids" ] || return 0
    while read -r p; do kill -TERM "$p" 2>/dev/null || true; done <"$BATS_TEST_TMPDIR/bg.pids"
    for p in $(cat "$BATS_TEST_TMPDIR/bg.pids"); do wait "$p" 2>/dev/null || true; done
    rm -f "$BATS_TEST_TMPDIR/bg.pids"
}

# store_has GLOB: a store path whose name matches GLOB (e.g. '*-hello-1.0.0').
store_has() { compgen -G "$ROOT/store/$1" >/dev/null; }

# run_roots: the run roots under $PLAN_RUN_DIR, one a line.
run_roots() { ls -d "$PLAN_RUN_DIR"/plan-* 2>/dev/null || true; }

# proc_gone PID: the process has exited (a zombie holds no locks any more)
proc_gone() {
    ! kill -0 "$1" 2>/dev/null && return 0
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 0
    [ "${st%% *}" = Z ]
}

# ---- the registry server (registry_server.bats) ----
# REGISTRY is the plan-registry next to $PLAN (so the asan run tests the asan server).
: "${REGISTRY:=$(dirname "$PLAN")/plan-registry}"
: "${PLAN_TOOLS:=$PWD/build/tools}"

registry() { "$REGISTRY" "$@"; }
regsign() { "$PLAN_TOOLS/regsign" "$@"; }

# reg_start DATA [SERVE-OPTIONS]: serve DATA on a free loopback port; sets
# REG_URL and REG_PID (stderr of the server in $BATS_TEST_TMPDIR/serve.err).
reg_start() {
    local data=$1 out="$BATS_TEST_TMPDIR/serve.out"
    shift
    : >"$out"
    "$REGISTRY" serve "$data" --listen 127.0.0.1:0 "$@" >"$out" 2>"$BATS_TEST_TMPDIR/serve.err" 3>&- &
    REG_PID=$!
    echo "$REG_PID" >>"$BATS_TEST_TMPDIR/bg.pids"
    wait_until 200 grep -q '^listening on ' "$out" || return 1
    REG_URL="http://$(sed -n 's/^listening on //p' "$out")"
}

# reg_stop: SIGTERM the server and check that it stopped cleanly (under
# ASan this is where leaks would show).
reg_stop() {
    kill -TERM "$REG_PID"
    local rc=0
    wait "$REG_PID" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/serve.err" >&2; return 1; }
}

# reg_package NAME VERSION [DEPS-JSON]: a store path NAME-VERSION (from
# $SRC, or $PKG_SRC if set) in $ROOT, exported, with a recipe, signed by
# the key alice in $KEYS; files in $BATS_TEST_TMPDIR/pkg/NAME-VERSION.*
reg_package() {
    local dir="$BATS_TEST_TMPDIR/pkg" p
    mkdir -p "$dir"
    p=$(plan store add "${PKG_SRC:-$SRC}" --name "$1" --version "$2") || return 1
    plan --json store path-info "$p" >"$dir/$1-$2.info"
    plan store export "$p" -o "$dir/$1-$2.tar.zst" 2>/dev/null || return 1
    printf 'name: %s\nversion: %s\nbuild: |\n  true\n' "$1" "$2" >"$dir/$1-$2.yaml"
    regsign package "$KEYS" "${SIGNER:-alice}" "$dir/$1-$2.info" "$dir/$1-$2.tar.zst" \
        "$dir/$1-$2.yaml" "$dir/$1-$2" ${3:+"$3"}
}

# reg_publish TOKEN NAME-VERSION [CURL-ARGS]: POST the package; prints the
# status code, the body is in $BATS_TEST_TMPDIR/body.
reg_publish() {
    local tok=$1 f="$BATS_TEST_TMPDIR/pkg/$2"
    shift 2
    local auth=()
    [ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
    curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "${auth[@]}" \
        -F "package=<$f.package.json" -F "signature=<$f.signature.json" \
        -F "archive=@${ARCHIVE:-$f.tar.zst}" -F "recipe=@$f.yaml" "$@" "$REG_URL/api/v1/publish"
}

# reg_yank TOKEN NAME VERSION: POST a yank; prints the status code.
reg_yank() {
    curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' -H "Authorization: Bearer $1" \
        -d "{\"name\": \"$2\", \"version\": \"$3\"}" "$REG_URL/api/v1/yank"
}

# static_state DATA: every file of the read side with its hash, and what is
# left in DATA/tmp: equal states mean nothing changed.
static_state() {
    (cd "$1/static" && find . -printf '%y %p\n' | LC_ALL=C sort &&
        find . -type f -exec b2sum {} + | LC_ALL=C sort)
    ls -A "$1/tmp"
}

# signed_version FILE: the "version" of a signed document.
signed_version() { jq -r .signed.version "$1"; }
