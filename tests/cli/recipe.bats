#!/usr/bin/env bats
# plan recipe check / new.  Bad recipes are data: tests/recipes/bad/*.yaml,
# each starting with "# expect: <the error's first line, or its start>".

load helpers

setup() {
    common_setup
    SRCDIR="${PLAN_SRC:-$PWD}"
}

@test "every bad recipe is refused with its exact file:line:column message" {
    cd "$SRCDIR/tests/recipes/bad"
    n=0
    for f in *.yaml; do
        expect=$(sed -n '1s/^# expect: //p' "$f")
        [ -n "$expect" ] || { echo "$f has no '# expect:' line"; false; }
        run "$PLAN" recipe check "$f"
        [ "$status" -eq 1 ] || { echo "$f: status $status"; false; }
        got=${lines[0]#plan: error: }
        case "$got" in
        "$expect"*) ;;
        *) printf '%s\n  expected: %s\n  got:      %s\n' "$f" "$expect" "$got"; false ;;
        esac
        n=$((n + 1))
    done
    [ "$n" -ge 20 ]
}

@test "the example recipes are valid; --json reports each" {
    run "$PLAN" recipe check "$SRCDIR"/examples/recipes/*.yaml
    [ "$status" -eq 0 ]
    [[ "$output" == *"hello.yaml: ok (hello 1.0.0)"* ]]
    run "$PLAN" --json recipe check "$SRCDIR/examples/recipes/greet.yaml" "$SRCDIR/tests/recipes/bad/bad-name.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *'"valid": true'* ]]
    [[ "$output" == *'"valid": false'* ]]
}

@test "recipe new writes a template that checks, and never overwrites" {
    cd "$BATS_TEST_TMPDIR"
    run "$PLAN" recipe new mytool
    [ "$status" -eq 0 ]
    [ -f mytool.yaml ]
    run "$PLAN" recipe check mytool.yaml
    [ "$status" -eq 0 ]
    echo keep >>mytool.yaml
    run "$PLAN" recipe new mytool
    [ "$status" -eq 1 ]
    [[ "$output" == *"exists already"* ]]
    tail -1 mytool.yaml | grep -q keep
    run "$PLAN" recipe new other -o -
    [[ "$output" == *"name: other"* ]]
    run "$PLAN" recipe new "bad name"
    [ "$status" -eq 1 ]
}

@test "a missing or huge recipe file is refused clearly" {
    run "$PLAN" recipe check "$BATS_TEST_TMPDIR/none.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"cannot read recipe"* ]]
    head -c 2000000 /dev/zero | tr '\0' '#' >"$BATS_TEST_TMPDIR/big.yaml"
    run "$PLAN" recipe check "$BATS_TEST_TMPDIR/big.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"larger than 1 MiB"* ]]
}

@test "a YAML bomb (nested aliases) is refused at once" {
    printf 'name: x\nversion: 1.0.0\nbuild: "true"\na: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n' >"$BATS_TEST_TMPDIR/bomb.yaml"
    run timeout 5 "$PLAN" recipe check "$BATS_TEST_TMPDIR/bomb.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"unknown field 'a'"* ]]
}
