#!/usr/bin/env bash
# The fixed cost of plan build, against running the same script directly:
#  - a recipe already built (the realisation is known): target under 20 ms;
#  - a trivial build into a fresh store (sandbox, environment, hashing,
#    registration), both with and without the sandbox.
# Needs hyperfine (tools/deps.sh --bench installs it).
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
plan="$here/$build/plan"
command -v hyperfine >/dev/null || { echo "bench: hyperfine is missing: $here/tools/deps.sh --bench" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/plan-bench-build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
script='mkdir -p "$out"; echo hello >"$out/greeting"'
printf 'name: trivial\nversion: 1.0.0\nbuild: |\n  %s\n' "$script" >"$work/trivial.yaml"
"$plan" --root "$work/warm" build "$work/trivial.yaml" >/dev/null

mean_ms() { awk -F, 'NR==2 { printf "%.2f", $2 * 1000 }' "$1"; }

run() { # name, plan command, direct command, [prepare]
    local name=$1 p=$2 d=$3 prep=${4:-true}
    hyperfine -N --warmup 3 --runs 30 --prepare "$prep" --export-csv "$work/p.csv" "$p" >/dev/null 2>&1 ||
        hyperfine --warmup 3 --runs 30 --prepare "$prep" --export-csv "$work/p.csv" "$p" >/dev/null
    hyperfine --warmup 3 --runs 30 --prepare "rm -rf $work/direct" --export-csv "$work/d.csv" \
        "out=$work/direct sh -c '$script'" >/dev/null 2>&1
    local pm dm
    pm=$(mean_ms "$work/p.csv")
    dm=$(mean_ms "$work/d.csv")
    printf '%-34s %9s ms %9s ms %8sx\n' "$name" "$pm" "$dm" "$(awk -v a="$pm" -v b="$dm" 'BEGIN { printf "%.1f", a / b }')"
    echo "$pm" >"$work/last"
}

printf '%-34s %12s %12s %9s\n' "plan build" "plan" "script alone" "ratio"
run "recipe already built" "$plan --root $work/warm build $work/trivial.yaml" ""
reuse=$(cat "$work/last")
run "trivial build, sandboxed" "$plan --root $work/cold build $work/trivial.yaml" "" \
    "chmod -R u+w $work/cold 2>/dev/null; rm -rf $work/cold"
run "trivial build, --no-sandbox" "$plan --root $work/cold build --no-sandbox $work/trivial.yaml" "" \
    "chmod -R u+w $work/cold 2>/dev/null; rm -rf $work/cold"
awk -v r="$reuse" 'BEGIN { printf "\nrecipe already built: %.2f ms (target under 20 ms): %s\n", r, (r < 20 ? "met" : "NOT MET") }'
