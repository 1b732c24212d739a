#!/usr/bin/env bash
# bench/solver/run.sh [BUILD_DIR] - plan's solver next to libsolv's testsolv.
#
# The problem is the seeded synthetic SemVer graph of issue 4 (see gen.c):
# N = 300, 1000, 2000 packages of 20 versions, q = 1.0 and 0.8, plus the
# pathological case (500 versions that each need a missing package).  Both
# solvers get the same graph: plan as a problem file (docs/solver.md),
# testsolv as a libsolv testcase.  Each run is timed from outside (wall time
# of the whole process, parsing included, and peak RSS from /usr/bin/time);
# plan's solve time alone is printed too.  testsolv gets BENCH_SOLVER_TIMEOUT
# seconds (default 120) and is reported "not finished" past that.  Every
# plan solution is checked against the graph by plan_solve itself.
#
# Environment: BENCH_DIR (default /var/tmp/plan-bench/solver),
# BENCH_SOLVER_SEED (default 20240401), BENCH_SOLVER_TIMEOUT, BENCH_SOLVER_N
# (default "300 1000 2000").
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$repo/$build ;; esac
dir=${BENCH_DIR:-/var/tmp/plan-bench}/solver
seed=${BENCH_SOLVER_SEED:-20240401}
limit=${BENCH_SOLVER_TIMEOUT:-120}
sizes=${BENCH_SOLVER_N:-300 1000 2000}
CC=${CC:-cc}

die() { printf 'bench/solver: %s\n' "$*" >&2; exit 1; }

if ! command -v testsolv >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        die "testsolv is missing: sudo apt-get install -y libsolv-tools"
    fi
    echo "bench/solver: installing libsolv-tools"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libsolv-tools </dev/null ||
        { apt-get update -q </dev/null &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -q libsolv-tools </dev/null; }
fi
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
[ -f "$build/libplan.a" ] || die "no '$build/libplan.a': run 'make' first"

mkdir -p "$dir"
"$CC" -O2 -o "$dir/gen" "$here/gen.c"
"$CC" -O2 -std=c11 -D_GNU_SOURCE -I"$repo" -o "$dir/plan_solve" "$here/plan_solve.c" \
    "$build/libplan.a" -pthread

now() { date +%s.%N; }

# run LABEL CMD... -> sets T (wall seconds), M (peak KB), OUT, RC
run() {
    local start end
    start=$(now)
    set +e
    /usr/bin/time -o "$dir/time.txt" -f '%M' timeout "$limit" "$@" >"$dir/out.txt" 2>&1
    RC=$?
    set -e
    end=$(now)
    T=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    M=$(grep -E '^[0-9]+$' "$dir/time.txt" | tail -1)
    OUT=$(head -c 300 "$dir/out.txt")
}

printf '%-22s %10s %10s %9s %9s %8s %8s  %s\n' case plan_s solve_s testsolv \
    ratio plan_MB peer_MB target
declare -a rows
case_row() {
    local name=$1 pfile=$2 tfile=$3 target=$4 pt ps pm tt tm ratio note
    run "$dir/plan_solve" "$pfile"
    [ "$RC" -eq 0 ] || die "plan failed on $name: $OUT"
    pt=$T
    ps=$(awk '{ print $2 }' <<<"$OUT")
    pm=$M
    run testsolv "$tfile"
    if [ "$RC" -eq 124 ]; then
        tt="not finished (>${limit}s)"
        tm="-"
        ratio="<$(awk -v a="$pt" -v b="$limit" 'BEGIN { printf "%.4f", a / b }')"
    else
        tt=$T
        tm=$(awk -v m="$M" 'BEGIN { printf "%.1f", m / 1024 }')
        ratio=$(awk -v a="$pt" -v b="$tt" 'BEGIN { printf "%.3f", a / b }')
    fi
    printf '%-22s %10s %10s %9s %9s %8s %8s  %s\n' "$name" "$pt" "$ps" "$tt" "$ratio" \
        "$(awk -v m="$pm" 'BEGIN { printf "%.1f", m / 1024 }')" "$tm" "$target"
}

for n in $sizes; do
    for q in 1.0 0.8; do
        base="$dir/n${n}_q${q}_s${seed}"
        [ -f "$base.test" ] || "$dir/gen" "$n" "$q" "$seed" "$base.test" "$base.t"
        if [ "$q" = 1.0 ]; then target="ratio <= 1.0"; else target="ratio <= 0.25"; fi
        [ "$n" = 2000 ] && [ "$q" = 0.8 ] && target="$target; plan < 60 s"
        case_row "N=$n q=$q" "$base.test" "$base.t" "$target"
    done
done
"$dir/gen" --pathological "$dir/pathological.test" "$dir/pathological.t"
case_row "pathological" "$dir/pathological.test" "$dir/pathological.t" "plan < 0.050 s"
echo
echo "plan_s and testsolv: wall time of the whole process (parse + solve);"
echo "solve_s: plan's solve alone; ratio = plan_s / testsolv; MB: peak RSS."
