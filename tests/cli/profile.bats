#!/usr/bin/env bats
# Profiles: install, upgrade, remove, rollback, generations, list,
# shell-init, named profiles, collisions.

load helpers

setup() {
    common_setup
    unset PLAN_PROFILE PLAN_CONFIG PLAN_ROOT
    EX="${PLAN_SRC:-$PWD}/examples/recipes"
    R="$BATS_TEST_TMPDIR/recipes"
    mkdir -p "$R"
    export PLAN_RUN_DIR="$BATS_TEST_TMPDIR/run"
    mkdir -p "$PLAN_RUN_DIR"
    PROF="$ROOT/profiles/default"
}

teardown() { bg_cleanup; }

# snapshot FILE: everything that says what the profile is (where current
# points, which generations exist, the tree of the current one)
snapshot() {
    {
        readlink "$PROF/current"
        (cd "$PROF/generations" && ls -A | LC_ALL=C sort)
        tree_state "$PROF/current/"
        cat "$PROF/generations/"*.json
    } >"$1"
}

# two plans that both install bin/tool, with different content, and an
# identical bin/same
colliding_recipes() {
    for x in ta tb; do
        plan_recipe "$R" "$x" 1.0.0 "mkdir -p \$out/bin
printf '#!/bin/sh\\necho from-$x\\n' >\$out/bin/tool
chmod +x \$out/bin/tool
echo identical >\$out/bin/same
touch \$out/bin/only-$x"
    done
}

@test "install: generation 1, and the program runs from the profile's bin" {
    run plan install --recipes "$EX" hello
    [ "$status" -eq 0 ]
    [[ "$output" == *"+ hello 1.0.0"* ]]
    [[ "$output" == *"+ greet 1.0.0"* ]]
    [[ "$output" == *"is now generation 1"* ]]
    [ "$(readlink "$PROF/current")" = generations/1 ]
    [ -f "$PROF/generations/1.json" ]
    [ "$("$PROF/current/bin/hello" bats)" = "hello, bats (from libgreet 1.0.0)" ]
    # the tree is links into the store, nothing copied
    [ -L "$PROF/current/bin" ] || [ -L "$PROF/current/bin/hello" ]
    [[ "$(readlink -f "$PROF/current/bin/hello")" == "$ROOT"/store/*-hello-1.0.0/bin/hello ]]
    plan store verify >/dev/null
}

@test "an install that waits for another plan's profile lock says so, then goes on" {
    plan install --recipes "$EX" hello >/dev/null 2>&1
    # another plan holds the profile's lock for a moment
    flock "$PROF/.lock" sleep 2 &
    echo $! >>"$BATS_TEST_TMPDIR/bg.pids"
    sleep 0.3
    run timeout 30 "$PLAN" --root "$ROOT" install --recipes "$EX" motd
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"waiting for another plan to finish changing the profile 'default'"* ]]
    [[ "$output" == *"is now generation 2"* ]]
    # -q keeps it quiet
    run plan -q install --recipes "$EX" motd
    [ -z "$output" ]
}

@test "install a second package: generation 2 holds both; generation 1 stays" {
    plan -q install --recipes "$EX" hello
    # no --recipes: the profile remembers its repositories
    run plan install motd
    [ "$status" -eq 0 ]
    [ "$(readlink "$PROF/current")" = generations/2 ]
    [ -d "$PROF/generations/1" ]
    [ "$("$PROF/current/bin/hello" two)" = "hello, two (from libgreet 1.0.0)" ]
    [ -f "$PROF/current/share/motd/welcome.txt" ]
    [ ! -e "$PROF/generations/1/share/motd" ]
    run plan list
    [ "$status" -eq 0 ]
    [[ "$output" == *hello*motd* ]]
}

@test "rollback restores the exact previous tree; rollback --to goes forward again" {
    plan -q install --recipes "$EX" hello
    before=$(tree_state "$PROF/current/")
    list1=$(plan list)
    plan -q install motd wordfreq
    after=$(tree_state "$PROF/current/")
    [ "$before" != "$after" ]
    run plan rollback
    [ "$status" -eq 0 ]
    [ "$(readlink "$PROF/current")" = generations/1 ]
    [ "$(tree_state "$PROF/current/")" = "$before" ]
    [ "$(plan list)" = "$list1" ]
    [ ! -e "$PROF/current/share/motd" ]
    [ "$("$PROF/current/bin/hello" back)" = "hello, back (from libgreet 1.0.0)" ]
    # nothing was deleted: generation 2 is still there, and --to returns to it
    run plan rollback --to 2
    [ "$status" -eq 0 ]
    [ "$(readlink "$PROF/current")" = generations/2 ]
    [ "$(tree_state "$PROF/current/")" = "$after" ]
    # no temporary links left next to current
    [ "$(ls -A "$PROF" | grep -v '^\.lock$' | LC_ALL=C sort | tr '\n' ' ')" = "current generations " ]
}

@test "rollback: at the first generation, to an unknown one, or with no profile, it explains" {
    run plan rollback
    [ "$status" -eq 1 ]
    [[ "$output" == *"no profile 'default'"*"plan install"* ]]
    plan -q install --recipes "$EX" motd
    run plan rollback
    [ "$status" -eq 1 ]
    [[ "$output" == *"no generation before 1"* ]]
    run plan rollback --to 9
    [ "$status" -eq 1 ]
    [[ "$output" == *"no generation 9"* ]]
    run plan rollback --to x
    [ "$status" -eq 2 ]
    [ "$(readlink "$PROF/current")" = generations/1 ]
    [ "$(ls "$PROF/generations")" = "$(printf '1\n1.json')" ]
}

@test "rollback --to N from the third generation to the first" {
    plan -q install --recipes "$EX" motd
    g1=$(tree_state "$PROF/current/")
    plan -q install hello
    plan -q install wordfreq
    [ "$(readlink "$PROF/current")" = generations/3 ]
    run plan rollback --to 1
    [ "$status" -eq 0 ]
    [ "$(readlink "$PROF/current")" = generations/1 ]
    [ "$(tree_state "$PROF/current/")" = "$g1" ]
    # a new install after a rollback starts from the current generation
    plan -q install hello
    [ "$(readlink "$PROF/current")" = generations/4 ]
    run plan list
    [[ "$output" == *hello* && "$output" == *motd* && "$output" != *wordfreq* ]]
}

@test "generations --json: number, created, current, requests, packages" {
    plan -q install --recipes "$EX" hello
    plan -q install 'motd@2024.x'
    run plan generations --json
    [ "$status" -eq 0 ]
    [[ "$output" == *'"number": 1'* ]]
    [[ "$output" == *'"number": 2'* ]]
    [[ "$output" =~ \"created\":\ [0-9]{9,} ]]
    [[ "$output" == *'"current": false'* ]]
    [[ "$output" == *'"current": true'* ]]
    [[ "$output" == *'"requests"'* ]]
    [[ "$output" == *'"range": "2024.x"'* ]]
    [[ "$output" == *'"packages"'* ]]
    [[ "$output" == *'"version": "2024.1.0"'* ]]
    [[ "$output" =~ \"path\":\ \"[0-9a-z]{32}-greet-1\.0\.0\" ]]
    # the current one is the last one
    [ "$(printf '%s\n' "$output" | grep '"current": true' | wc -l)" -eq 1 ]
    # global --json works the same
    [ "$(plan --json generations)" = "$output" ]
    run plan generations
    [ "$status" -eq 0 ]
    [[ "${lines[1]}" == *"2"*"motd 2024.1.0"*"(current)"* ]]
}

@test "generations --diff N M lists additions, removals and version changes" {
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    tool_recipe "$R" lib 1.0.0 lib 'lib 1.0.0'
    tool_recipe "$R" extra 0.3.1 extra 'extra 0.3.1'
    plan -q install --recipes "$R" 'app@^1' lib
    tool_recipe "$R" app 1.2.0 app 'app 1.2.0'
    plan -q upgrade
    plan -q remove lib
    plan -q install extra
    run plan generations --diff 1 2
    [ "$status" -eq 0 ]
    [[ "$output" == *"app 1.0.0 -> 1.2.0"* ]]
    run plan generations --diff 2 4
    [ "$status" -eq 0 ]
    [[ "$output" == *"- lib 1.0.0"* ]]
    [[ "$output" == *"+ extra 0.3.1"* ]]
    [[ "$output" != *app* ]]
    run plan generations --diff 4 2
    [[ "$output" == *"+ lib"* && "$output" == *"- extra"* ]]
    run plan generations --diff 1 7
    [ "$status" -eq 1 ]
    [[ "$output" == *"no generation 7"* ]]
    run plan generations --diff 1
    [ "$status" -eq 2 ]
}

@test "the profile remembers every recipe repository it was installed from" {
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    plan -q install --recipes "$R" --recipes "$EX" app motd
    grep -q "\"$EX\"" "$PROF/generations/1.json"
    # no --recipes: both repositories, as recorded
    tool_recipe "$R" app 1.1.0 app 'app 1.1.0'
    run plan upgrade
    [ "$status" -eq 0 ]
    [ "$("$PROF/current/bin/app")" = "app 1.1.0" ]
    run plan install wordfreq
    [ "$status" -eq 0 ]
    [ -x "$PROF/current/bin/wordfreq" ]
}

@test "remove: a new generation without the package or its now unneeded dependencies" {
    plan -q install --recipes "$EX" hello motd
    run plan remove hello
    [ "$status" -eq 0 ]
    [ "$(readlink "$PROF/current")" = generations/2 ]
    [ ! -e "$PROF/current/bin/hello" ]
    run plan list
    [[ "$output" == *motd* ]]
    [[ "$output" != *hello* && "$output" != *greet* ]]
    # the old generation still has it
    [ "$("$PROF/generations/1/bin/hello" old)" = "hello, old (from libgreet 1.0.0)" ]
    # a name that is not installed: nothing changes
    run plan remove hello
    [ "$status" -eq 1 ]
    [[ "$output" == *"'hello' is not installed"* ]]
    run plan remove greet
    [ "$status" -eq 1 ]
    [ "$(readlink "$PROF/current")" = generations/2 ]
    [ ! -e "$PROF/generations/3.json" ]
    run plan remove
    [ "$status" -eq 2 ]
}

@test "upgrade moves to the newest version the range allows, and no further" {
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    tool_recipe "$R" other 1.0.0 other 'other 1.0.0'
    run plan install --recipes "$R" 'app@^1'
    [ "$status" -eq 0 ]
    [ "$("$PROF/current/bin/app")" = "app 1.0.0" ]
    tool_recipe "$R" app 1.1.0 app 'app 1.1.0'
    tool_recipe "$R" app 2.0.0 app 'app 2.0.0'
    # install keeps what is installed where it fits
    plan -q install other
    [ "$("$PROF/current/bin/app")" = "app 1.0.0" ]
    run plan upgrade
    [ "$status" -eq 0 ]
    [[ "$output" == *"app 1.0.0 -> 1.1.0"* ]]
    [ "$(readlink "$PROF/current")" = generations/3 ]
    [ "$("$PROF/current/bin/app")" = "app 1.1.0" ]
    grep -q '"range": "^1"' "$PROF/generations/3.json"
    # nothing newer: no new generation
    run plan upgrade
    [ "$status" -eq 0 ]
    [[ "$output" == *"up to date"* ]]
    [ ! -e "$PROF/generations/4.json" ]
    # and rollback undoes the upgrade
    plan -q rollback
    [ "$("$PROF/current/bin/app")" = "app 1.0.0" ]
}

@test "upgrade NAME moves only NAME; upgrade of a name not installed fails" {
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    tool_recipe "$R" other 1.0.0 other 'other 1.0.0'
    plan -q install --recipes "$R" 'app@^1' 'other@^1'
    tool_recipe "$R" app 1.1.0 app 'app 1.1.0'
    tool_recipe "$R" other 1.1.0 other 'other 1.1.0'
    run plan upgrade other
    [ "$status" -eq 0 ]
    [ "$("$PROF/current/bin/app")" = "app 1.0.0" ]
    [ "$("$PROF/current/bin/other")" = "other 1.1.0" ]
    run plan upgrade nosuch
    [ "$status" -eq 1 ]
    [[ "$output" == *nosuch* ]]
    [ "$(readlink "$PROF/current")" = generations/2 ]
}

@test "a request without a range is recorded as ^VERSION; a range is kept as written" {
    tool_recipe "$R" app 2.3.0 app 'app 2.3.0'
    tool_recipe "$R" lib 1.4.0 lib 'lib 1.4.0'
    plan -q install --recipes "$R" app 'lib@~1.4'
    run plan list --json
    [ "$status" -eq 0 ]
    [[ "$output" == *'"range": "^2.3.0"'* ]]
    [[ "$output" == *'"range": "~1.4"'* ]]
    grep -q '"range": "^2.3.0"' "$PROF/generations/1.json"
    # a newer major version does not come with upgrade
    tool_recipe "$R" app 3.0.0 app 'app 3.0.0'
    plan -q upgrade
    [ "$("$PROF/current/bin/app")" = "app 2.3.0" ]
    # asking for it explicitly replaces the request
    run plan install 'app@^3'
    [ "$status" -eq 0 ]
    [ "$("$PROF/current/bin/app")" = "app 3.0.0" ]
    run plan list
    [[ "$output" == *"^3"* && "$output" != *"^2.3.0"* ]]
}

@test "a failed install leaves the profile exactly as it was" {
    # (every install names both repositories: this test is not about
    # which ones the profile remembers)
    set -- --recipes "$EX" --recipes "$R"
    plan -q install "$@" hello
    snapshot "$BATS_TEST_TMPDIR/before"
    # a build that fails
    plan_recipe "$R" broken 1.0.0 'echo "error: broken on purpose" >&2; exit 3'
    run plan install "$@" broken
    [ "$status" -eq 1 ]
    [[ "$output" == *"broken"*"exit status 3"* ]]
    snapshot "$BATS_TEST_TMPDIR/after"
    cmp "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
    # a name nobody provides
    run plan install "$@" nosuch
    [ "$status" -eq 1 ]
    [[ "$output" == *"nosuch"* ]]
    snapshot "$BATS_TEST_TMPDIR/after"
    cmp "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
    # a range nothing satisfies
    run plan install "$@" 'hello@^9'
    [ "$status" -eq 1 ]
    snapshot "$BATS_TEST_TMPDIR/after"
    cmp "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
    # a failure among several requests: none of them is installed
    run plan install "$@" motd broken
    [ "$status" -eq 1 ]
    snapshot "$BATS_TEST_TMPDIR/after"
    cmp "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
    [ "$("$PROF/current/bin/hello" still)" = "hello, still (from libgreet 1.0.0)" ]
    # and the next good install is generation 2
    plan -q install "$@" motd
    [ "$(readlink "$PROF/current")" = generations/2 ]
}

@test "named profiles are independent (--profile and \$PLAN_PROFILE)" {
    plan -q install --recipes "$EX" hello
    run plan install --profile work --recipes "$EX" motd
    [ "$status" -eq 0 ]
    [ "$(readlink "$ROOT/profiles/work/current")" = generations/1 ]
    [ -f "$ROOT/profiles/work/current/share/motd/welcome.txt" ]
    [ ! -e "$ROOT/profiles/work/current/bin/hello" ]
    [ ! -e "$PROF/current/share/motd" ]
    run plan list --profile work
    [[ "$output" == *motd* && "$output" != *hello* ]]
    run plan list
    [[ "$output" == *hello* && "$output" != *motd* ]]
    PLAN_PROFILE=work run plan list
    [[ "$output" == *motd* && "$output" != *hello* ]]
    # rollback in one does not touch the other
    plan -q install --profile work wordfreq
    plan -q rollback --profile work
    [ "$(readlink "$ROOT/profiles/work/current")" = generations/1 ]
    [ "$(readlink "$PROF/current")" = generations/1 ]
    run plan generations -p work
    [ "${#lines[@]}" -eq 2 ]
    run plan list --profile nosuch
    [ "$status" -eq 1 ]
    [[ "$output" == *"no profile 'nosuch'"* ]]
}

@test "shell-init bash, eval'd in bash, puts the profile's bin on PATH" {
    plan -q install --recipes "$EX" hello
    run plan shell-init bash
    [ "$status" -eq 0 ]
    init=$output
    run env -i HOME="$HOME" PATH=/usr/bin:/bin bash --noprofile --norc -c "$init"'
        command -v hello; hello shell'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "$PROF/current/bin/hello" ]
    [ "${lines[1]}" = "hello, shell (from libgreet 1.0.0)" ]
    # the same shell follows installs and rollbacks: PATH names current
    run env -i HOME="$HOME" PATH=/usr/bin:/bin bash --noprofile --norc -c "$init"'
        echo "$PATH"'
    [[ "$output" == "$PROF/current/bin:"* ]]
    [[ "$output" == *":/usr/bin:/bin" ]]
    # sh too
    run env -i PATH=/usr/bin:/bin sh -c "$(plan shell-init sh)"'; hello sh'
    [ "$output" = "hello, sh (from libgreet 1.0.0)" ]
    # a named profile
    run plan shell-init bash --profile work
    [[ "$output" == *"$ROOT/profiles/work/current"* ]]
}

@test "shell-init: the profile's env declarations are exported too" {
    plan -q install --recipes "$EX" motd hello
    run env -i PATH=/usr/bin:/bin bash --noprofile --norc -c "$(plan shell-init bash)"'
        cat "$MOTD_DIR/welcome.txt" >/dev/null && echo ok-motd'
    [ "$status" -eq 0 ]
    [ "$output" = ok-motd ]
}

@test "shell-init fish uses set -gx; zsh is like bash; an unknown shell is a usage error" {
    plan -q install --recipes "$EX" hello
    run plan shell-init fish
    [ "$status" -eq 0 ]
    [[ "$output" == *"set -gx PATH"* ]]
    [[ "$output" == *"$PROF/current/bin"* ]]
    [[ "$output" == *"env.fish"* ]]
    if command -v fish >/dev/null; then
        run fish --no-config -c "$(plan shell-init fish)"'; hello fish'
        [ "$output" = "hello, fish (from libgreet 1.0.0)" ]
    fi
    run plan shell-init zsh
    [ "$status" -eq 0 ]
    [[ "$output" == *"export PATH="*"$PROF/current/bin"* ]]
    SHELL=/usr/bin/fish run plan shell-init
    [[ "$output" == *"set -gx"* ]]
    run plan shell-init tcsh
    [ "$status" -eq 2 ]
    [[ "$output" == *"unknown shell 'tcsh'"* ]]
}

@test "list: name, version, requested or dependency; --json with paths" {
    run plan list
    [ "$status" -eq 1 ]
    plan -q install --recipes "$EX" 'hello@^1.0'
    run plan list
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    [[ "$output" == *"greet"*"1.0.0"*"dependency"* ]]
    [[ "$output" == *"hello"*"1.0.0"*"requested"*"^1.0"* ]]
    run plan list --json
    [ "$status" -eq 0 ]
    [[ "$output" == *'"generation": 1'* ]]
    [[ "$output" == *'"profile": "default"'* ]]
    [[ "$output" == *'"requested": false'* && "$output" == *'"requested": true'* ]]
    [[ "$output" =~ \"path\":\ \"$ROOT/store/[0-9a-z]{32}-hello-1\.0\.0\" ]]
}

@test "install takes the recipe repositories of the configuration file" {
    mkdir -p "$ROOT"
    printf 'recipes:\n  - %s\n' "$EX" >"$ROOT/config.yaml"
    run plan install hello
    [ "$status" -eq 0 ]
    [ "$("$PROF/current/bin/hello" cfg)" = "hello, cfg (from libgreet 1.0.0)" ]
    # $PLAN_CONFIG names another one
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    printf 'recipes:\n  - %s\n' "$R" >"$BATS_TEST_TMPDIR/other.yaml"
    PLAN_CONFIG="$BATS_TEST_TMPDIR/other.yaml" run plan install --profile p2 app
    [ "$status" -eq 0 ]
    [ "$("$ROOT/profiles/p2/current/bin/app")" = "app 1.0.0" ]
}

@test "install with no recipe repository anywhere explains where to add one" {
    run plan install hello
    [ "$status" -eq 1 ]
    [[ "$output" == *"--recipes"* ]]
    [ ! -e "$PROF/current" ]
    run plan install
    [ "$status" -eq 2 ]
    run plan install --recipes "$BATS_TEST_TMPDIR/nowhere" hello
    [ "$status" -eq 1 ]
    [[ "$output" == *nowhere* ]]
    [ ! -e "$PROF/current" ]
}

@test "collision: install fails naming the path, both plans and --prefer; nothing changes" {
    colliding_recipes
    plan -q install --recipes "$R" ta
    snapshot "$BATS_TEST_TMPDIR/before"
    run plan install tb
    [ "$status" -eq 1 ]
    [[ "$output" == *"'bin/tool'"* ]]
    [[ "$output" == *"ta 1.0.0"* && "$output" == *"tb 1.0.0"* ]]
    [[ "$output" == *"--prefer"* ]]
    # identical files are not collisions: only bin/tool is named
    [[ "$output" != *"bin/same"* ]]
    [[ "$output" == *"1 path collides"* ]]
    snapshot "$BATS_TEST_TMPDIR/after"
    cmp "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
    [ "$("$PROF/current/bin/tool")" = from-ta ]
}

@test "collision: --prefer NAME wins, and the profile remembers it" {
    colliding_recipes
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    tool_recipe "$R" lib 1.0.0 lib 'lib 1.0.0'
    plan -q install --recipes "$R" ta
    run plan install --prefer tb tb
    [ "$status" -eq 0 ]
    [ "$("$PROF/current/bin/tool")" = from-tb ]
    [ -e "$PROF/current/bin/only-ta" ] && [ -e "$PROF/current/bin/only-tb" ]
    [ "$(cat "$PROF/current/bin/same")" = identical ]
    # remembered: the next install needs no --prefer
    run plan install app
    [ "$status" -eq 0 ]
    [ "$("$PROF/current/bin/tool")" = from-tb ]
    # a --prefer naming no plan of the profile is an error
    run plan install --prefer nosuch lib
    [ "$status" -eq 1 ]
    [[ "$output" == *nosuch* ]]
    [ "$(readlink "$PROF/current")" = generations/3 ]
}

@test "collision: --strategy prefer-first / prefer-last" {
    colliding_recipes
    run plan install --recipes "$R" --strategy prefer-last ta tb
    [ "$status" -eq 0 ]
    [ "$("$PROF/current/bin/tool")" = from-tb ]
    run plan install --profile p2 --recipes "$R" --strategy prefer-first ta tb
    [ "$status" -eq 0 ]
    [ "$("$ROOT/profiles/p2/current/bin/tool")" = from-ta ]
    run plan install --profile p3 --recipes "$R" --strategy sideways ta
    [ "$status" -eq 2 ]
    [ ! -e "$ROOT/profiles/p3/current" ]
}

@test "identical files in two plans are not a collision" {
    for x in ia ib; do
        plan_recipe "$R" "$x" 1.0.0 "mkdir -p \$out/bin \$out/share/doc
printf '#!/bin/sh\\necho common\\n' >\$out/bin/common
chmod +x \$out/bin/common
echo same text >\$out/share/doc/COMMON
printf '#!/bin/sh\\necho $x\\n' >\$out/bin/$x
chmod +x \$out/bin/$x"
    done
    run plan install --recipes "$R" ia ib
    [ "$status" -eq 0 ]
    [ "$("$PROF/current/bin/common")" = common ]
    [ "$("$PROF/current/bin/ia")" = ia ]
    [ "$("$PROF/current/bin/ib")" = ib ]
    [ "$(cat "$PROF/current/share/doc/COMMON")" = "same text" ]
    # the same file with another mode is not identical
    plan_recipe "$R" ic 1.0.0 "mkdir -p \$out/bin
printf '#!/bin/sh\\necho common\\n' >\$out/bin/common"
    run plan install ic
    [ "$status" -eq 1 ]
    [[ "$output" == *"'bin/common'"* ]]
}

@test "generations --delete: old ones go, the current one and unknown ones are refused" {
    plan -q install --recipes "$EX" motd
    plan -q install hello
    plan -q install wordfreq
    run plan generations --delete 1
    [ "$status" -eq 0 ]
    [ ! -e "$PROF/generations/1.json" ] && [ ! -e "$PROF/generations/1" ]
    run plan generations --delete 3
    [ "$status" -eq 1 ]
    [[ "$output" == *"current"* ]]
    [ -f "$PROF/generations/3.json" ]
    run plan generations --delete 9
    [ "$status" -eq 1 ]
    run plan rollback --to 1
    [ "$status" -eq 1 ]
    run plan rollback
    [ "$status" -eq 0 ]
    [ "$(readlink "$PROF/current")" = generations/2 ]
    # numbers are never reused
    plan -q install --recipes "$EX" greet
    [ "$(readlink "$PROF/current")" = generations/4 ]
}

@test "an install interrupted with Ctrl-C leaves the profile as it was" {
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    # (the build log is written in blocks: watch for the build's own process)
    tok=$((RANDOM % 900 + 100))
    plan_recipe "$R" slow 1.0.0 "mkdir -p \$out; sleep 30.$tok"
    plan -q install --recipes "$R" app
    snapshot "$BATS_TEST_TMPDIR/before"
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" install slow
    pid=$BG_PID
    wait_until 400 pgrep -f "sleep 30[.]$tok" >/dev/null
    kill -INT "$pid"
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 1 ]
    grep -q interrupted "$BATS_TEST_TMPDIR/out"
    wait_until 100 eval '! pgrep -f "sleep 30[.]$tok" >/dev/null'
    snapshot "$BATS_TEST_TMPDIR/after"
    cmp "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
    ! store_has '*-slow-1.0.0'
    plan store verify >/dev/null
}

@test "two installs at once into one profile: neither request is lost" {
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    for x in s1 s2; do
        plan_recipe "$R" "$x" 1.0.0 "mkdir -p \$out/share; i=0; while [ \$i -lt 8 ]; do sleep 0.05; i=\$((i+1)); done; echo $x >\$out/share/$x"
    done
    plan -q install --recipes "$R" app
    start_bg "$BATS_TEST_TMPDIR/o1" "$PLAN" --root "$ROOT" install s1
    p1=$BG_PID
    start_bg "$BATS_TEST_TMPDIR/o2" "$PLAN" --root "$ROOT" install s2
    p2=$BG_PID
    s1=0 s2=0
    wait "$p1" || s1=$?
    wait "$p2" || s2=$?
    [ "$s1" -eq 0 ] && [ "$s2" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/o1" "$BATS_TEST_TMPDIR/o2"; false; }
    [ "$(readlink "$PROF/current")" = generations/3 ]
    [ "$(cat "$PROF/current/share/s1")" = s1 ]
    [ "$(cat "$PROF/current/share/s2")" = s2 ]
    [ "$("$PROF/current/bin/app")" = "app 1.0.0" ]
}
