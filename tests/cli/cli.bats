#!/usr/bin/env bats
# The CLI skeleton: global options, help, exit codes, suggestions.

load helpers

setup() { common_setup; }

@test "no command prints usage and exits 2" {
    run "$PLAN"
    [ "$status" -eq 2 ]
    [[ "$output" == *"usage: plan"* ]]
}

@test "--help lists the commands and exits 0" {
    run "$PLAN" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"store"* ]]
    [[ "$output" == *"Exit status: 0 success, 1 failure, 2 usage error"* ]]
}

@test "--version and version --json" {
    run "$PLAN" --version
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^plan\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
    run "$PLAN" --json version
    [ "$status" -eq 0 ]
    [[ "$output" == *'"libsodium"'* ]]
}

@test "an unknown command suggests the nearest one" {
    run "$PLAN" stor
    [ "$status" -eq 2 ]
    [[ "$output" == *"unknown command 'stor'"* ]]
    [[ "$output" == *"did you mean 'plan store'"* ]]
    run "$PLAN" store verfy
    [ "$status" -eq 2 ]
    [[ "$output" == *"did you mean 'plan store verify'"* ]]
    run "$PLAN" zzzzzzzz
    [ "$status" -eq 2 ]
    [[ "$output" != *"did you mean"* ]]
}

@test "help for a command, three ways, with examples" {
    run "$PLAN" help store add
    [ "$status" -eq 0 ]
    [[ "$output" == *"usage: plan store add DIR"* ]]
    [[ "$output" == *"Examples:"* ]]
    a=$output
    run "$PLAN" store add --help
    [ "$output" == "$a" ]
    run "$PLAN" --help store
    [ "$status" -eq 0 ]
    [[ "$output" == *"path-info"* ]]
    for sub in add export import optimise path-info repair verify; do
        run "$PLAN" store "$sub" --help
        [ "$status" -eq 0 ]
        [[ "$output" == *"Examples:"* ]]
    done
}

@test "usage errors exit 2 and point at --help" {
    run plan store add "$SRC"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--name and --version are required"* ]]
    [[ "$output" == *"plan store add --help"* ]]
    run plan store add "$SRC" --name x --version 1 --bogus
    [ "$status" -eq 2 ]
    run plan store export
    [ "$status" -eq 2 ]
}

@test "global options work after the command too" {
    run "$PLAN" store add "$SRC" --name hello --version 1.0 --root "$ROOT" --json
    [ "$status" -eq 0 ]
    [[ "$output" == *'"path": "'"$ROOT"/store/* ]]
}

@test "PLAN_ROOT selects the root; --root wins over it" {
    PLAN_ROOT="$BATS_TEST_TMPDIR/env-root" run "$PLAN" store add "$SRC" --name a --version 1
    [ "$status" -eq 0 ]
    [[ "$output" == "$BATS_TEST_TMPDIR/env-root/store/"* ]]
    PLAN_ROOT="$BATS_TEST_TMPDIR/env-root" run "$PLAN" --root "$ROOT" store add "$SRC" --name a --version 1
    [[ "$output" == "$ROOT/store/"* ]]
}

@test "failures exit 1 with 'plan: error:' naming the object, on stderr also with --json" {
    run plan store path-info /nonexistent/thing
    [ "$status" -eq 1 ]
    [[ "$output" == *"plan: error: '/nonexistent/thing' is not inside the store"* ]]
    a=$(plan store add "$SRC" --name a --version 1)
    run --separate-stderr plan --json store path-info nothing-1.0 "$a"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"plan: error: 'nothing-1.0' is not a registered store path"* ]]
    # stdout stays one JSON document: the paths that were found
    [ "$(printf '%s' "$output" | head -c1)" = "[" ]
    [[ "$output" == *'"name": "a"'* ]]
}

@test "names and versions that would make an ambiguous basename are refused" {
    run plan store add "$SRC" --name foo-1 --version 2
    [ "$status" -eq 1 ]
    [[ "$output" == *"'-' followed by a digit"* ]]
    run plan store add "$SRC" --name foo --version v1
    [ "$status" -eq 1 ]
    [[ "$output" == *"must start with a digit"* ]]
    run plan store add "$SRC" --name foo-bar2 --version 1-2
    [ "$status" -eq 0 ]
}

@test "a root reached through a symlink is canonicalised" {
    mkdir -p "$BATS_TEST_TMPDIR/real"
    ln -s real "$BATS_TEST_TMPDIR/link"
    p=$("$PLAN" --root "$BATS_TEST_TMPDIR/link" store add "$SRC" --name a --version 1)
    [[ "$p" == "$BATS_TEST_TMPDIR/real/store/"* ]]
    run "$PLAN" --root "$BATS_TEST_TMPDIR/link" store path-info "$BATS_TEST_TMPDIR/link/store/$(basename "$p")"
    [ "$status" -eq 0 ]
}

@test "no colour and no progress bar on a pipe" {
    run plan store add "$SRC" --name hello --version 1.0
    [ "$status" -eq 0 ]
    [[ "$output" != *$'\033'* ]]
    [[ "$output" != *$'\r'* ]]
}

@test "-q keeps only results; -v says what happened" {
    run plan -q store add "$SRC" --name hello --version 1.0
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 1 ]
    run plan -v store add "$SRC" --name hello --version 1.0
    [[ "$output" == *"already in the store: nothing written"* ]]
}

@test "plan-registry identifies itself" {
    run "$(dirname "$PLAN")/plan-registry" --version
    [ "$status" -eq 0 ]
    [[ "$output" == "plan-registry "* ]]
}
