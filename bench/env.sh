#!/usr/bin/env bash
# bench/env.sh BUILD_DIR [farm] [env] [gc] - the benchmarks of the profiles,
# plan env and garbage collector issue, side by side with their peers.
#
# `make bench` runs this as `bench/env.sh build` (all three parts).
#   farm: the symlink farm of `plan env`, worst case (20 plans x 1,000 files in
#         the same 50 directories: nothing can be folded, 20,000 links),
#         created and deleted, against GNU stow creating and deleting the same
#         links; on tmpfs and on ext4.  Target: at most 0.15x stow.
#   env:  `plan env P1..P20 -- true` against `nix shell P1..P20 --command true`
#         (20 plans with shared bin/ and lib/, private share/).  Target: at
#         most 0.5x on tmpfs; ext4 reported.
#   gc:   `plan gc` of 10,000 unreachable store paths, time and peak memory,
#         next to `nix-store --gc` of the same 10,000 trees and `rm -rf`.
# A missed target is a result, not an error: the script fails only when
# something does not work.  bench/README.md says how to read the tables.
#
# Environment:
#   BENCH_DIR        work directory (default /var/tmp/plan-bench); generated
#                    trees and the 10,000-path archive are cached in
#                    BENCH_DIR/env-trees, a run's stores live in
#                    BENCH_DIR/env-work until it ends, logs stay in
#                    BENCH_DIR/env-last
#   BENCH_FARM_RUNS  timed runs of each farm command (default 5)
#   BENCH_ENV_RUNS   timed runs of each env round trip (default 30)
#   BENCH_GC_RUNS    timed collections of each kind (default 3)
#   BENCH_WARMUP     untimed warm-up runs (default 1; 3 for the round trip)
#   BENCH_EXT4_DIR   an existing directory on ext4 for the ext4 rows; by
#                    default (as root) a fresh ext4 image is loop-mounted
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
build=${1:-build}
shift || true
[ -x "$build/plan" ] || { echo "bench: no plan binary at '$build/plan': run 'make all' first" >&2; exit 1; }
parts=" ${*:-farm env gc} "
for p in $parts; do
    case $p in farm | env | gc) ;; *) echo "bench: unknown part '$p' (farm, env, gc)" >&2; exit 2 ;; esac
done
want() { case $parts in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

BENCH_DIR=${BENCH_DIR:-/var/tmp/plan-bench}
FARM_RUNS=${BENCH_FARM_RUNS:-5}
ENV_RUNS=${BENCH_ENV_RUNS:-30}
GC_RUNS=${BENCH_GC_RUNS:-3}
WARMUP=${BENCH_WARMUP:-1}
ENV_WARMUP=$((WARMUP > 3 ? WARMUP : 3))
NPLANS=20        # plans in every benchmark
FARM_DIRS=50     # farm: directories shared by every plan
FARM_FILES=20    # farm: files per plan per directory (50 x 20 = 1,000)
ONEDIR_FILES=1000 # farm, information row: files per plan in one shared lib/
GC_PATHS=10000

say() { printf '%s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- peers ----
need=""
{ command -v nix && command -v nix-store; } >/dev/null || need="$need nix-bin"
command -v hyperfine >/dev/null || need="$need hyperfine"
command -v stow >/dev/null || need="$need stow"
if [ -n "$need" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench: missing peers:$need" >&2
        echo "bench: install them with: sudo apt-get install -y$need" >&2
        exit 1
    fi
    say "bench: installing the peers:$need"
    "$repo/tools/deps.sh" --bench
fi
for c in nix nix-store hyperfine stow awk "${CC:-cc}"; do
    command -v "$c" >/dev/null || die "'$c' is still missing"
done
NIX="nix --extra-experimental-features nix-command"

# ------------------------------------------------------------ work dir ----
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
case $BENCH_DIR in *[[:space:]]*) die "BENCH_DIR must not contain white space: '$BENCH_DIR'" ;; esac
TREES=$BENCH_DIR/env-trees # generated trees and the gc archive, kept
WORK=$BENCH_DIR/env-work   # this run's stores, deleted at the end
TRASH=$WORK/trash          # stores moved aside during the run
OUT=$BENCH_DIR/env-last    # hyperfine logs and CSVs of the last run, kept
BIN=$BENCH_DIR/bin
mkdir -p "$TREES" "$BIN"
PLAN=$BIN/plan-env # a private copy: a rebuild during the run changes nothing
cp -f "$build/plan" "$PLAN"
RUSAGE=$BIN/rusage
if [ ! -x "$RUSAGE" ] || [ "$here/rusage.c" -nt "$RUSAGE" ]; then
    "${CC:-cc}" -O2 -o "$RUSAGE" "$here/rusage.c" || die "cannot compile bench/rusage.c"
fi

wipe() { # store paths (plan's and Nix's) are read-only
    local d
    for d in "$@"; do
        if [ -e "$d" ] || [ -L "$d" ]; then
            chmod -R u+w "$d" 2>/dev/null || true
            rm -rf "$d"
        fi
    done
}
EXT4_MNT=$WORK/ext4
unmount_ext4() {
    if mountpoint -q "$EXT4_MNT" 2>/dev/null; then
        umount "$EXT4_MNT" || umount -l "$EXT4_MNT" || true
    fi
}
SHM=""
cleanup() {
    say "bench: deleting this run's stores and run directories"
    unmount_ext4
    [ -z "$SHM" ] || wipe "$SHM"
    wipe "$WORK"
}
unmount_ext4 # a run that was killed may have left it mounted
wipe "$WORK" "$OUT"
mkdir -p "$WORK" "$TRASH" "$OUT"
trap cleanup EXIT
trap 'exit 130' INT TERM

fstype() { stat -f -c %T "$1" | sed 's|^ext2/ext3$|ext4|'; }
fsdesc() { # DIR -> "ext4, without a journal", "tmpfs", ...
    local t j
    t=$(fstype "$1") j=$(ext4_journal "$1")
    printf '%s%s' "$t" "${j:+, $j}"
}

# tmpfs: /dev/shm
[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] || die "/dev/shm is not a tmpfs"
SHM=$(mktemp -d /dev/shm/plan-bench-env.XXXXXX)

# ext4: a fresh image (mkfs.ext4's default options, with a journal), or
# BENCH_EXT4_DIR, or else the work directory if it is on ext4.
EXT4="" EXT4_KIND=""
ext4_journal() { # DIR -> "with a journal" / "without a journal" / ""
    # (/proc/fs/jbd2 lists the journals of mounted file systems)
    local dev
    dev=$(findmnt -n -o SOURCE --target "$1" 2>/dev/null) || return 0
    dev=${dev##*/}
    [ -n "$dev" ] && [ -d "/proc/fs/ext4/$dev" ] || return 0
    if compgen -G "/proc/fs/jbd2/$dev-*" >/dev/null; then
        printf 'with a journal'
    else
        printf 'without a journal'
    fi
}
if ! want farm && ! want env; then
    : # only the farm and the round trip have ext4 rows
elif [ -n "${BENCH_EXT4_DIR:-}" ]; then
    [ "$(fstype "$BENCH_EXT4_DIR")" = ext4 ] || die "BENCH_EXT4_DIR '$BENCH_EXT4_DIR' is not on ext4"
    EXT4=$(mktemp -d "$BENCH_EXT4_DIR/plan-bench-env.XXXXXX")
    EXT4_KIND="$BENCH_EXT4_DIR ($(ext4_journal "$EXT4"))"
elif [ "$(id -u)" -eq 0 ] && command -v mkfs.ext4 >/dev/null &&
    truncate -s 4G "$WORK/ext4.img" && mkfs.ext4 -q -F "$WORK/ext4.img" &&
    mkdir -p "$EXT4_MNT" && mount -o loop "$WORK/ext4.img" "$EXT4_MNT" 2>/dev/null; then
    EXT4=$EXT4_MNT
    EXT4_KIND="a fresh ext4 image, loop-mounted (mkfs.ext4 defaults: $(ext4_journal "$EXT4"))"
elif [ "$(fstype "$WORK")" = ext4 ]; then
    EXT4=$WORK/ext4dir
    mkdir -p "$EXT4"
    EXT4_KIND="the work directory ($(ext4_journal "$WORK"); no loop device available)"
else
    say "bench: no ext4 file system here (set BENCH_EXT4_DIR): the ext4 rows are skipped"
fi

# --------------------------------------------------------------- trees ----
# Every tree is generated by the shell from fixed names and contents, so every
# machine benchmarks the same trees; they are cached, with a stamp.
num() { printf "%0${2}d" "$1"; }
cached() { # NAME STAMP: true when TREES/NAME is there with this stamp
    [ "$(cat "$TREES/$1.stamp" 2>/dev/null)" = "$2" ]
}
stamp() { printf '%s\n' "$2" >"$TREES/$1.stamp"; }
fresh() { rm -f "$TREES/$1.stamp"; wipe "$TREES/$1"; mkdir -p "$TREES/$1"; }

# farm: plan fNN holds dNN/fNN-MMM for 50 directories x 20 files, the same 50
# directory names in every plan, so no directory is folded: 20,000 links.
farm_stamp="farm v1 plans=$NPLANS dirs=$FARM_DIRS files=$FARM_FILES"
if want farm && ! cached farm "$farm_stamp"; then
    say "bench: generating the farm trees in $TREES/farm"
    fresh farm
    for ((p = 1; p <= NPLANS; p++)); do
        pn=f$(num $p 2)
        for ((d = 0; d < FARM_DIRS; d++)); do
            dir=$TREES/farm/$pn/d$(num $d 2)
            mkdir -p "$dir"
            for ((f = 0; f < FARM_FILES; f++)); do
                printf '%s %s %d\n' "$pn" "${dir##*/}" "$f" >"$dir/$pn-$(num $f 3)"
            done
        done
    done
    stamp farm "$farm_stamp"
fi
# onedir (information): plan oNN holds lib/liboNN-MMMM.so, 1,000 files, all
# 20 plans in the one shared lib/: 20,000 links in a single directory.
onedir_stamp="onedir v1 plans=$NPLANS files=$ONEDIR_FILES"
if want farm && ! cached onedir "$onedir_stamp"; then
    say "bench: generating the one-directory trees in $TREES/onedir"
    fresh onedir
    for ((p = 1; p <= NPLANS; p++)); do
        pn=o$(num $p 2)
        dir=$TREES/onedir/$pn/lib
        mkdir -p "$dir"
        for ((f = 0; f < ONEDIR_FILES; f++)); do
            printf '%s %d\n' "$pn" "$f" >"$dir/lib$pn-$(num $f 4).so"
        done
    done
    stamp onedir "$onedir_stamp"
fi
# rt (round trip): plan rNN holds bin/rNN-tool1..5 (executable scripts),
# lib/librNN-1..10.so and lib/rNN/ (20 files), share/rNN/{doc,data}/ (50
# files each): bin/, lib/ and share/ are shared, lib/rNN and share/rNN are
# private (folded into one link each).
rt_stamp="rt v1 plans=$NPLANS"
if want env && ! cached rt "$rt_stamp"; then
    say "bench: generating the round-trip trees in $TREES/rt"
    fresh rt
    for ((p = 1; p <= NPLANS; p++)); do
        pn=r$(num $p 2) d=$TREES/rt/r$(num $p 2)
        mkdir -p "$d/bin" "$d/lib/$pn" "$d/share/$pn/doc" "$d/share/$pn/data"
        for i in 1 2 3 4 5; do
            printf '#!/bin/sh\necho "%s tool %d"\n' "$pn" "$i" >"$d/bin/$pn-tool$i"
            chmod 755 "$d/bin/$pn-tool$i"
        done
        for ((i = 1; i <= 10; i++)); do printf '%s lib %d\n' "$pn" $i >"$d/lib/lib$pn-$i.so"; done
        for ((i = 1; i <= 20; i++)); do printf '%s private %d\n' "$pn" $i >"$d/lib/$pn/mod$i"; done
        for ((i = 1; i <= 50; i++)); do
            printf '%s doc %d\n' "$pn" $i >"$d/share/$pn/doc/page$i"
            printf '%s data %d\n' "$pn" $i >"$d/share/$pn/data/item$i"
        done
    done
    stamp rt "$rt_stamp"
fi
# gcsrc: 10,000 tiny trees tNNNNN/file, each its own store path.
gcsrc_stamp="gcsrc v1 paths=$GC_PATHS"
if want gc && ! cached gcsrc "$gcsrc_stamp"; then
    say "bench: generating $GC_PATHS tiny trees in $TREES/gcsrc"
    fresh gcsrc
    for ((i = 0; i < GC_PATHS; i++)); do
        t=$TREES/gcsrc/t$(num $i 5)
        mkdir "$t"
        printf 'tiny tree %d\n' $i >"$t/file"
    done
    stamp gcsrc "$gcsrc_stamp"
fi

# ----------------------------------------------------------- measuring ----
declare -A MEAN

# measure KEY SHELL COMMAND [RUNS WARMUP [PREPARE]]: time COMMAND with
# hyperfine; SHELL is "none" (hyperfine -N: no shell in the way) or "bash".
measure() {
    local key=$1 sh=$2 cmd=$3 runs=${4:-$FARM_RUNS} warm=${5:-$WARMUP} prep=${6:-} args=()
    if [ "$sh" = none ]; then args=(-N); else args=(--shell=bash); fi
    [ -n "$prep" ] && args+=(--prepare "$prep")
    printf '  %-30s ' "$key"
    if ! hyperfine "${args[@]}" --style basic --runs "$runs" --warmup "$warm" \
        --export-csv "$OUT/$key.csv" --command-name "$key" "$cmd" >"$OUT/$key.log" 2>&1; then
        echo "FAILED"
        echo "bench: '$key' failed: $cmd" >&2
        tail -n 15 "$OUT/$key.log" >&2
        echo "bench: running it once more, with its output:" >&2
        bash -c "$cmd" >&2 || true
        exit 1
    fi
    local m s
    read -r m s < <(awk -F, 'NR == 2 { print $2, ($3 == "" ? 0 : $3) }' "$OUT/$key.csv")
    MEAN[$key]=$m
    awk -v m="$m" -v s="$s" -v r="$runs" 'BEGIN {
        if (m < 1) printf "%8.1f ms ± %.1f  (%d runs)\n", m * 1000, s * 1000, r
        else printf "%8.3f s ± %.3f  (%d runs)\n", m, s, r }'
}
q() { printf '%q' "$1"; }
qall() { local a; for a in "$@"; do printf ' %q' "$a"; done; }

cpu_busy() { # percent of all CPU time used over 2 s
    local a b
    a=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat)
    sleep 2
    b=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
        u = y[1] - x[1]; i = y[2] - x[2]; printf "%d", (u + i) ? 100 * u / (u + i) : 0 }'
}

start=$(date +%s)
say "plan env / farm / gc benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "  machine:   $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
say "  versions:  $("$PLAN" --version 2>&1 | head -n 1); $(nix --version); $(stow --version 2>&1 | head -n 1);"
say "             $(hyperfine --version)"
say "  store:     $WORK ($(fsdesc "$WORK"))"
say "  tmpfs:     $SHM ($(fstype "$SHM"))"
[ -z "$EXT4" ] || say "  ext4:      $EXT4, $EXT4_KIND"
case $EXT4_KIND in *"without a journal"*)
    say "  note:      on ext4 without a journal, creating files right after deleting some"
    say "             is slow and gets slower run after run (bench/README.md): the ext4 rows"
    say "             measure that more than plan or stow" ;;
esac
busy=$(cpu_busy)
if [ "$busy" -gt 10 ]; then
    say "  WARNING: the CPUs were ${busy}% busy before the start (other work is running):"
    say "  the figures will be noisy."
fi
say ""

# One plan store for the farm and env parts (read, never written, while
# timed), on the work directory's file system; the run roots go to
# PLAN_RUN_DIR on tmpfs or ext4.
ROOT=$WORK/plan
add_all() { # TREEDIR: add its 20 plan directories, print their store paths
    local t
    for t in "$1"/*; do
        "$PLAN" -q --root "$ROOT" store add "$t" --name "${t##*/}" --version 1.0.0 ||
            die "plan store add $t failed"
    done
}
count_links() { # RUN_DIR STORE_PATH...: the links of the farm plan env builds
    # shellcheck disable=SC2016 # expanded by the inner shell
    PLAN_RUN_DIR=$1 "$PLAN" -q --root "$ROOT" env "${@:2}" -- sh -c 'find "$PLAN_ENV" -type l | wc -l'
}

met=0 total=0 missed="" rows=()
row() { # LABEL PLANKEY PEERNAME PEERKEY TARGET ('-': no target)
    local label=$1 pk=$2 peer=$3 nk=$4 target=$5 line
    [ -n "${MEAN[$pk]:-}" ] && [ -n "${MEAN[$nk]:-}" ] || return 0
    line=$(awk -v l="$label" -v peer="$peer" -v p="${MEAN[$pk]}" -v n="${MEAN[$nk]}" \
        -v t="$target" 'function f(x) { return x < 1 ? sprintf("%7.1f ms", x * 1000) : sprintf("%8.3f s", x) }
        BEGIN {
            r = p / n
            if (t == "-") { tt = "-"; v = "(info)" }
            else { tt = sprintf("<= %.2fx", t); v = (r <= t + 0) ? "met" : "NOT MET" }
            printf "%-32s %s  %-22s %s  %6.2fx  %9s  %s\n", l, f(p), peer, f(n), r, tt, v }')
    rows+=("$line")
    [ "$target" = - ] && return 0
    total=$((total + 1))
    case $line in
    *"NOT MET") missed="$missed
  - $label: plan $(awk -v p="${MEAN[$pk]}" -v n="${MEAN[$nk]}" 'BEGIN { printf "%.2fx", p / n }') of $peer, target <= ${target}x" ;;
    *) met=$((met + 1)) ;;
    esac
}

# ---------------------------------------------------------------- farm -----
if want farm; then
    say "Farm, worst case: $NPLANS plans x $((FARM_DIRS * FARM_FILES)) files in the same $FARM_DIRS directories"
    mapfile -t FARM_P < <(add_all "$TREES/farm")
    mapfile -t ONEDIR_P < <(add_all "$TREES/onedir")
    [ "${#FARM_P[@]}" -eq "$NPLANS" ] && [ "${#ONEDIR_P[@]}" -eq "$NPLANS" ] || die "plan store add failed"
    farm_names=$(cd "$TREES/farm" && echo f*)
    onedir_names=$(cd "$TREES/onedir" && echo o*)
    mkdir -p "$SHM/run" "$SHM/stow"
    # shellcheck disable=SC2086 # the plan names are split on purpose
    say "  links: plan $(count_links "$SHM/run" "${FARM_P[@]}") (with the $NPLANS .plan/N links)," \
        "stow $(stow -d "$TREES/farm" -t "$SHM/stow" $farm_names &&
            find "$SHM/stow" -type l | wc -l; rm -rf "$SHM/stow"; mkdir "$SHM/stow")"
    # plan: build the farm in a fresh run root, run true, delete the run root.
    # stow: link the same trees into an empty target, then delete the links.
    plan_farm="$(q "$PLAN") --root $(q "$ROOT") env$(qall "${FARM_P[@]}") -- true"
    stow_farm() { # TARGET
        printf 'stow -d %s -t %s %s && rm -rf %s && mkdir %s' "$(q "$TREES/farm")" "$(q "$1")" \
            "$farm_names" "$(q "$1")" "$(q "$1")"
    }
    PLAN_RUN_DIR=$SHM/run measure farm.tmpfs.plan none "$plan_farm"
    measure farm.tmpfs.stow bash "$(stow_farm "$SHM/stow")"
    if [ -n "$EXT4" ]; then
        mkdir -p "$EXT4/run" "$EXT4/stow"
        PLAN_RUN_DIR=$EXT4/run measure farm.ext4.plan none "$plan_farm"
        measure farm.ext4.stow bash "$(stow_farm "$EXT4/stow")"
    fi
    # Information: the same 20,000 links, all in one shared directory.
    PLAN_RUN_DIR=$SHM/run measure farm.onedir.plan none \
        "$(q "$PLAN") --root $(q "$ROOT") env$(qall "${ONEDIR_P[@]}") -- true"
    measure farm.onedir.stow bash "stow -d $(q "$TREES/onedir") -t $(q "$SHM/stow") $onedir_names &&
        rm -rf $(q "$SHM/stow") && mkdir $(q "$SHM/stow")"
    say ""
    row "farm 20x1000, tmpfs" farm.tmpfs.plan "stow; rm -rf" farm.tmpfs.stow 0.15
    row "farm 20x1000, ext4" farm.ext4.plan "stow; rm -rf" farm.ext4.stow 0.15
    row "  20,000 in one dir, tmpfs" farm.onedir.plan "stow; rm -rf" farm.onedir.stow -
fi

# ----------------------------------------------------------------- env -----
if want env; then
    say "Env round trip: $NPLANS plans, shared bin/ and lib/, private share/ ($(find "$TREES/rt" -type f | wc -l) files)"
    mapfile -t RT_P < <(add_all "$TREES/rt")
    [ "${#RT_P[@]}" -eq "$NPLANS" ] || die "plan store add failed"
    # Nix: a local store whose store directory is in the work directory (the
    # code path of /nix/store: no chroot, no mount namespace), and for
    # information a chroot store (local?root=DIR) as bench/run.sh uses, which
    # 'nix shell' enters through a private mount namespace.
    NSTORE="local?store=$WORK/nix/store&state=$WORK/nix/var&log=$WORK/nix/log"
    NCHROOT="local?root=$WORK/nix-chroot"
    mkdir -p "$WORK/nix"
    mapfile -t RT_N < <(nix-store --store "$NSTORE" --add "$TREES"/rt/r*)
    mapfile -t RT_C < <(nix-store --store "$NCHROOT" --add "$TREES"/rt/r*)
    [ "${#RT_N[@]}" -eq "$NPLANS" ] && [ "${#RT_C[@]}" -eq "$NPLANS" ] || die "nix-store --add failed"
    # Both must really give an environment with the plans' tools on PATH.
    mkdir -p "$SHM/run"
    got=$(PLAN_RUN_DIR=$SHM/run "$PLAN" -q --root "$ROOT" env "${RT_P[@]}" -- r07-tool3)
    [ "$got" = "r07 tool 3" ] || die "plan env did not run r07-tool3 from the farm: '$got'"
    got=$($NIX --store "$NSTORE" shell "${RT_N[@]}" --command r07-tool3)
    [ "$got" = "r07 tool 3" ] || die "nix shell did not run r07-tool3: '$got'"
    say "  links: plan $(count_links "$SHM/run" "${RT_P[@]}") (bin/ and lib/ merged, lib/rNN and share/rNN folded)"
    plan_env="$(q "$PLAN") --root $(q "$ROOT") env$(qall "${RT_P[@]}") -- true"
    PLAN_RUN_DIR=$SHM/run measure env.tmpfs.plan none "$plan_env" "$ENV_RUNS" "$ENV_WARMUP"
    if [ -n "$EXT4" ]; then
        mkdir -p "$EXT4/run"
        PLAN_RUN_DIR=$EXT4/run measure env.ext4.plan none "$plan_env" "$ENV_RUNS" "$ENV_WARMUP"
    fi
    measure env.nix none "$NIX --store $(q "$NSTORE") shell$(qall "${RT_N[@]}") --command true" \
        "$ENV_RUNS" "$ENV_WARMUP"
    measure env.nix-chroot none "$NIX --store $(q "$NCHROOT") shell$(qall "${RT_C[@]}") --command true" \
        "$ENV_RUNS" "$ENV_WARMUP"
    # The fixed cost of starting each program (dynamic linking included).
    measure start.plan none "$(q "$PLAN") --version" "$ENV_RUNS" "$ENV_WARMUP"
    measure start.nix none "nix --version" "$ENV_RUNS" "$ENV_WARMUP"
    say ""
    row "env round trip, tmpfs" env.tmpfs.plan "nix shell" env.nix 0.5
    row "env round trip, ext4" env.ext4.plan "nix shell" env.nix -
    row "  same, tmpfs" env.tmpfs.plan "nix shell, chroot st." env.nix-chroot -
    row "  process start (--version)" start.plan "nix --version" start.nix -
fi

# ------------------------------------------------------------------ gc -----
# plan: the 10,000 paths are imported from one archive (made once with
# 10,000 'plan store add's, then cached: an archive is bound to its store
# directory, so the root is always GC_ROOT), and no root keeps them.
# Nix: 'nix-store --add' of the same 10,000 trees into an empty store.
# rm -rf: a copy of the 10,000 trees, the floor of deleting them.
# Each run starts from a fresh store (untimed); the old one is moved aside.
GC_ROOT=$WORK/gc-plan
GC_NIX=$WORK/gc-nix
GC_RM=$WORK/gc-rm
GC_ARCHIVE=$TREES/gc-$GC_PATHS.tar.zst
declare -A GC_T GC_CPU GC_RSS
gc_archive() { # make GC_ARCHIVE from GC_PATHS plan store adds
    say "  making the archive of $GC_PATHS store paths (once; cached in $GC_ARCHIVE)"
    wipe "$GC_ROOT"
    (cd "$TREES/gcsrc" && printf '%s\n' t*) |
        xargs -P "$(nproc)" -I{} "$PLAN" -q --root "$GC_ROOT" store add --no-scan \
            "$TREES/gcsrc/{}" --name {} --version 1.0.0 >/dev/null
    local n
    n=$(find "$GC_ROOT/store" -mindepth 1 -maxdepth 1 -name '*-t*' | wc -l)
    [ "$n" -eq "$GC_PATHS" ] || die "only $n of $GC_PATHS store paths were added"
    "$PLAN" -q --root "$GC_ROOT" store export "$GC_ROOT"/store/*-t* -o "$GC_ARCHIVE.tmp"
    mv "$GC_ARCHIVE.tmp" "$GC_ARCHIVE"
    stamp "gc-archive" "$gc_archive_stamp"
}
aside() { local d; for d in "$@"; do [ ! -e "$d" ] || mv "$d" "$TRASH/$(date +%s%N)"; done; }
gc_prepare_plan() {
    aside "$GC_ROOT"
    local n
    n=$("$PLAN" -q --root "$GC_ROOT" store import "$GC_ARCHIVE" 2>"$OUT/gc-import.err" | wc -l) || n=0
    [ "$n" -eq "$GC_PATHS" ]
}
gc_run() { # KIND I COMMAND...: one timed collection
    local kind=$1 i=$2 w u s r
    shift 2
    sync
    "$RUSAGE" "$OUT/gc.$kind.$i.rusage" "$@" >"$OUT/gc.$kind.$i.out" 2>&1 ||
        { cat "$OUT/gc.$kind.$i.out" >&2; die "'$*' failed"; }
    read -r w u s r <"$OUT/gc.$kind.$i.rusage"
    GC_T[$kind]="${GC_T[$kind]:-} $w" GC_CPU[$kind]="${GC_CPU[$kind]:-} $(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')"
    GC_RSS[$kind]="${GC_RSS[$kind]:-} $r"
    printf ' %.3f s' "$w"
}
if want gc; then
    say "GC of $GC_PATHS unreachable store paths ($GC_RUNS runs each, on $(fsdesc "$WORK"))"
    gc_archive_stamp="gc-archive v1 paths=$GC_PATHS store=$GC_ROOT/store plan=$("$PLAN" --version 2>&1 | head -n 1)"
    cached gc-archive "$gc_archive_stamp" && [ -f "$GC_ARCHIVE" ] || gc_archive
    GC_NSTORE="local?store=$GC_NIX/store&state=$GC_NIX/var&log=$GC_NIX/log"
    for ((i = 1; i <= GC_RUNS; i++)); do
        printf '  run %d: plan' "$i"
        if ! gc_prepare_plan; then # an archive of an older plan: make it again
            [ "$i" -eq 1 ] || { cat "$OUT/gc-import.err" >&2; die "plan store import failed"; }
            say " (the cached archive does not import: $(tail -n 1 "$OUT/gc-import.err"))"
            gc_archive
            gc_prepare_plan || { cat "$OUT/gc-import.err" >&2; die "plan store import failed"; }
        fi
        gc_run plan "$i" "$PLAN" --root "$GC_ROOT" gc
        grep -q "deleted $GC_PATHS paths" "$OUT/gc.plan.$i.out" ||
            die "plan gc did not delete $GC_PATHS paths: $(cat "$OUT/gc.plan.$i.out")"
        printf ', nix-store'
        aside "$GC_NIX"
        mkdir -p "$GC_NIX"
        n=$( (cd "$TREES/gcsrc" && printf "$TREES/gcsrc/%s\n" t*) |
            xargs nix-store --store "$GC_NSTORE" --add | wc -l)
        [ "$n" -eq "$GC_PATHS" ] || die "nix-store --add added $n paths, not $GC_PATHS"
        gc_run nix "$i" nix-store --store "$GC_NSTORE" --gc
        grep -q "^$GC_PATHS store paths deleted" "$OUT/gc.nix.$i.out" ||
            die "nix-store --gc did not delete $GC_PATHS paths: $(cat "$OUT/gc.nix.$i.out")"
        printf ', rm -rf'
        aside "$GC_RM"
        cp -a "$TREES/gcsrc" "$GC_RM"
        gc_run rm "$i" rm -rf "$GC_RM"
        say ""
    done
    for k in plan nix rm; do
        MEAN[gc.$k]=$(awk -v l="${GC_T[$k]}" 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) s += a[i]; print s / n }')
    done
    say ""
fi

# ---------------------------------------------------------------- table ----
if [ "${#rows[@]}" -gt 0 ]; then
    say "Results: mean wall-clock time; ratio = plan / peer, lower is better"
    printf '%-32s %10s  %-22s %10s  %7s  %9s  %s\n' benchmark plan peer "peer time" ratio target result
    printf '%0.s-' {1..106}; echo
    for r in "${rows[@]}"; do say "$r"; done
    say ""
fi
if want gc; then
    say "GC of $GC_PATHS unreachable paths: mean of $GC_RUNS runs; max RSS is the largest of the runs"
    printf '%-26s %10s %10s %12s  %s\n' command "wall" "CPU" "max RSS" "wall / plan gc"
    printf '%0.s-' {1..76}; echo
    for k in plan nix rm; do
        case $k in plan) label="plan gc" ;; nix) label="nix-store --gc" ;; rm) label="rm -rf (the same trees)" ;; esac
        awk -v l="$label" -v t="${GC_T[$k]}" -v c="${GC_CPU[$k]}" -v r="${GC_RSS[$k]}" -v p="${MEAN[gc.plan]}" '
            function mean(s,   a, n, i, x) { n = split(s, a, " "); for (i = 1; i <= n; i++) x += a[i]; return x / n }
            function max(s,   a, n, i, x) { n = split(s, a, " "); for (i = 1; i <= n; i++) if (a[i] > x) x = a[i]; return x }
            BEGIN { m = mean(t); printf "%-26s %8.3f s %8.3f s %9.1f MB  %s\n", l, m, mean(c), max(r) / 1024,
                    l == "plan gc" ? "" : sprintf("plan is %.2fx of it", p / m) }'
    done
    say "(no target in the issue: time and memory are reported)"
    say ""
fi
if [ "$total" -gt 0 ]; then
    say "Summary: $met of $total targets met; the run took $(($(date +%s) - start)) s" \
        "(CPUs ${busy}% busy with other work before it started)."
    [ -z "$missed" ] || say "Not met:$missed"
fi
say "Raw hyperfine output, CSVs and gc figures: $OUT"
