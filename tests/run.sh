#!/usr/bin/env bash
# The test runner behind `make test`: every unit test program (normal build
# and ASan+UBSan build), then every bats scenario in tests/cli against the
# normal binary and again against the sanitized one.  Ends with the line
# "N passed, N failed".
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case $build in /*) ;; *) build="$root/$build" ;; esac
passed=0
failed=0
failures=()
log=$(mktemp -d "${TMPDIR:-/tmp}/plan-tests.XXXXXX")
trap 'rm -rf "$log"' EXIT

# cmocka prints one "[       OK ]" or "[  FAILED  ]" line per test.
run_unit() {
    local bin=$1 label=$2 out="$log/unit.out"
    "$bin" >"$out" 2>&1
    local rc=$? ok bad
    ok=$(grep -c '^\[       OK \]' "$out")
    bad=$(grep -c '^\[  FAILED  \]' "$out")
    # cmocka repeats failed names in its summary; count each once.
    bad=$(grep '^\[  FAILED  \] [a-z_]' "$out" | sort -u | wc -l)
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    passed=$((passed + ok))
    failed=$((failed + bad))
    printf '%-44s %3d passed, %d failed\n' "$label" "$ok" "$bad"
    if [ "$bad" -ne 0 ]; then
        failures+=("$label")
        sed 's/^/    /' "$out" | grep -v '^\s*\[ RUN\|^\s*\[       OK' | tail -40
    fi
}

# bats --tap prints "ok N ..." and "not ok N ...".
run_bats() {
    local plan=$1 label=$2 out="$log/bats.out"
    PLAN=$plan PLAN_TOOLS="$build/tools" PLAN_SRC="$root" \
        bats --tap tests/cli >"$out" 2>&1
    local rc=$? ok bad
    ok=$(grep -c '^ok ' "$out")
    bad=$(grep -c '^not ok ' "$out")
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    passed=$((passed + ok))
    failed=$((failed + bad))
    printf '%-44s %3d passed, %d failed\n' "$label" "$ok" "$bad"
    if [ "$bad" -ne 0 ]; then
        failures+=("$label")
        grep -v '^ok ' "$out" | sed 's/^/    /' | tail -60
    fi
}

for t in "$build"/tests/*; do
    [ -x "$t" ] && run_unit "$t" "unit $(basename "$t")"
done
for t in "$build"/asan/tests/*; do
    [ -x "$t" ] && run_unit "$t" "unit $(basename "$t") (asan+ubsan)"
done
run_bats "$build/plan" "cli scenarios"
ASAN_OPTIONS=detect_leaks=1 run_bats "$build/asan/plan" "cli scenarios (asan+ubsan)"

echo
if [ ${#failures[@]} -ne 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
