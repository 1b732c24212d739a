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
