#!/usr/bin/env bats
# plan semver: npm's semver command, as users and scripts rely on it.

load helpers

@test "semver sorts versions by precedence; invalid ones are skipped" {
    run "$PLAN" semver 1.10.0 1.2.0 1.2.0-rc.1 1.2.0-alpha 2.0.0 not-a-version 1.2
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf '1.2.0-alpha\n1.2.0-rc.1\n1.2.0\n1.10.0\n2.0.0')" ]
}

@test "semver -r prints the satisfying versions, exit 0; none: exit 1" {
    run "$PLAN" semver -r '^1.2.0' 1.1.9 1.2.0 1.9.9 2.0.0 1.3.0-beta
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf '1.2.0\n1.9.9')" ]
    run "$PLAN" semver -r '>=3' 1.0.0 2.0.0
    [ "$status" -eq 1 ]
    [ -z "$output" ]
}

@test "prereleases match only a range naming the same major.minor.patch" {
    run "$PLAN" semver -r '>=1.2.3-beta.1 <2' 1.2.3-beta.2 1.2.4-beta.1 1.2.5
    [ "$output" = "$(printf '1.2.3-beta.2\n1.2.5')" ]
    run "$PLAN" semver -r '~1.2.x || 3.0.0 - 3.1' 1.2.9 1.3.0 3.1.7 3.2.0
    [ "$output" = "$(printf '1.2.9\n3.1.7')" ]
}

@test "an invalid range is a usage error (exit 2) with a message" {
    run "$PLAN" semver -r '>>1' 1.0.0
    [ "$status" -eq 2 ]
    [[ "$output" == *"'>>1'"* ]]
}

@test "semver --json" {
    run "$PLAN" --json semver -r '1.x' 1.0.0 1.5.0 2.0.0
    [ "$status" -eq 0 ]
    [[ "$output" == *'"unmatched": ['*'"2.0.0"'* ]]
    [[ "$output" == *'"versions": ['*'"1.0.0",'*'"1.5.0"'* ]]
}
