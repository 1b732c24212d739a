#!/usr/bin/env bats
# plan lock / plan why: plan.yaml resolved into an exact, deterministic lock.

load helpers

setup() {
    common_setup
    P="$BATS_TEST_TMPDIR/project"
    mkdir -p "$P/recipes"
    cp "${PLAN_SRC:-$PWD}"/examples/recipes/*.yaml "$P/recipes/"
    cp -R "${PLAN_SRC:-$PWD}"/examples/src "$P/src"
    cat >"$P/plan.yaml" <<'YAML'
packages:
  greeter: ^1.0.0
  wordfreq: "*"
recipes:
  - recipes
env:
  GREETING: hi
YAML
    cd "$P"
}

@test "plan lock writes the whole closure, deterministically" {
    run plan lock
    [ "$status" -eq 0 ]
    [[ "$output" == *"wrote plan.lock (5 packages)"* ]]
    grep -q '"format": "plan-lock-v1"' plan.lock
    grep -q '"recipe": "recipes/greet.yaml"' plan.lock
    grep -q '"recipe_hash": "blake2b:' plan.lock
    first=$(md5sum <plan.lock)
    rm plan.lock
    plan -q lock
    [ "$(md5sum <plan.lock)" = "$first" ]
    run plan lock
    [[ "$output" == *"up to date"* ]]
}

@test "plan lock --check: 0 when fresh, 1 when missing or stale" {
    run plan lock --check
    [ "$status" -eq 1 ]
    [[ "$output" == *"missing"* ]]
    plan -q lock
    run plan lock --check
    [ "$status" -eq 0 ]
    echo "# a comment changes the recipe's bytes" >>recipes/motd.yaml
    run plan lock --check
    [ "$status" -eq 1 ]
    [[ "$output" == *"stale"* ]]
    plan -q lock
    sed -i 's/wordfreq: "\*"/wordfreq: "0.3.x"/' plan.yaml
    run plan lock --check
    [ "$status" -eq 1 ]
}

@test "locked versions are kept while they fit; --upgrade moves them" {
    plan -q lock
    # a newer motd appears: the lock keeps the old one
    sed 's/^version: 2024.1.0/version: 2024.2.0/' recipes/motd.yaml >recipes/motd-new.yaml
    run plan lock --check
    [ "$status" -eq 0 ]
    grep -q '"version": "2024.1.0"' plan.lock
    plan -q lock --upgrade
    grep -q '"version": "2024.2.0"' plan.lock
}

@test "an impossible plan.yaml is explained" {
    sed -i 's/wordfreq: "\*"/wordfreq: ">=1.0.0"/' plan.yaml
    run plan lock
    [ "$status" -eq 1 ]
    [[ "$output" == *"cannot be satisfied together"* ]]
    [[ "$output" == *"wordfreq has only 0.3.1"* ]]
    [ ! -e plan.lock ]
}

@test "plan why follows the chain up to plan.yaml" {
    plan -q lock
    run plan why greet
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "greet 1.0.0 is needed by hello as ^1.0.0" ]
    [ "${lines[1]}" = "  which hello 1.0.0 is needed by greeter as >=1.0.0 <2.0.0" ]
    [ "${lines[2]}" = "  which greeter 1.0.0 is requested by plan.yaml as ^1.0.0" ]
    run plan --json why wordfreq
    [[ "$output" == *'"required_by": null'* ]] || [[ "$output" != *'"required_by": "'* ]]
    run plan why nosuch
    [ "$status" -eq 1 ]
    [[ "$output" == *"'nosuch' is not in"* ]]
}

@test "bad plan.yaml and lock files are refused clearly" {
    printf 'packges:\n  x: "*"\n' >bad.yaml
    run plan lock -f bad.yaml
    [ "$status" -eq 1 ]
    [[ "$output" == *"bad.yaml:1:1: unknown field 'packges'; did you mean 'packages'?"* ]]
    # The configuration file's fields are not a project's.
    printf 'packages:\n  x: "*"\ndurability: immediate\n' >bad.yaml
    run plan lock -f bad.yaml
    [ "$status" -eq 1 ]
    [[ "$output" == *"bad.yaml:3:1: unknown field 'durability'"* ]] || { echo "$output"; false; }
    plan -q lock
    echo '{"format": "something-else"}' >plan.lock
    run plan why greet
    [ "$status" -eq 1 ]
    [[ "$output" == *"not a valid lockfile"* ]]
    run plan lock -f missing.yaml
    [ "$status" -eq 1 ]
    [[ "$output" == *"cannot read 'missing.yaml'"* ]]
}

@test "a package built here is locked with its store path; building does not make the lock stale" {
    plan -q lock
    ! grep -q '"path"' plan.lock
    hello=$(plan build recipes/hello.yaml)
    run plan lock --check
    [ "$status" -eq 0 ]
    plan -q lock
    grep -q "\"path\": \"$(basename "$hello")\"" plan.lock
    grep -q '"path": ".*-greet-1.0.0"' plan.lock
    run plan lock --check
    [ "$status" -eq 0 ]
}
