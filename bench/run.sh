#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - plan's benchmarks, side by side with its peers.
#
# `make bench` runs this as `bench/run.sh build`.  Every figure is measured in
# this run, on this machine, next to a peer (Nix, GNU tar, b2sum, zstd), and
# reported as a ratio plan / peer against the targets of the store issue.
# A missed target is a result, not an error: the script fails only when
# something does not work.  bench/README.md says how to read the table.
#
# Environment:
#   BENCH_DIR      work directory (default /var/tmp/plan-bench): the generated
#                  trees are cached there between runs; the stores and
#                  archives of a run live there until it ends, the raw
#                  hyperfine results of the last run stay in BENCH_DIR/last
#   BENCH_RUNS     timed runs per command (default 3)
#   BENCH_HASH_RUNS timed runs of the short, read-only commands (hashing and
#                  re-adding; default 10)
#   BENCH_WARMUP   untimed warm-up runs per command (default 1)
#   BENCH_REAL_SRC where the real tree is copied from (default /usr/lib)
#   BENCH_REAL_MB  size of the real tree, MB of file contents (default 370)
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
build=${1:-build}
[ -x "$build/plan" ] || { echo "bench: no plan binary at '$build/plan': run 'make all' first" >&2; exit 1; }

BENCH_DIR=${BENCH_DIR:-/var/tmp/plan-bench}
RUNS=${BENCH_RUNS:-3}
HASH_RUNS=${BENCH_HASH_RUNS:-10}
WARMUP=${BENCH_WARMUP:-1}
REAL_SRC=${BENCH_REAL_SRC:-/usr/lib}
REAL_MB=${BENCH_REAL_MB:-370}
SYN_FILES=5000
SYN_BYTES=200000000
SYN_SEED=20240101

say() { printf '%s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- peers ----
need=""
{ command -v nix && command -v nix-store; } >/dev/null || need="$need nix-bin"
command -v hyperfine >/dev/null || need="$need hyperfine"
command -v zstd >/dev/null || need="$need zstd"
if [ -n "$need" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench: missing peers:$need" >&2
        echo "bench: install them with: sudo apt-get install -y nix-bin hyperfine zstd" >&2
        exit 1
    fi
    say "bench: installing the peers:$need"
    "$repo/tools/deps.sh" --bench
    command -v zstd >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q zstd </dev/null
fi
for c in nix nix-store hyperfine zstd b2sum tar awk "${CC:-cc}"; do
    command -v "$c" >/dev/null || die "'$c' is still missing"
done
case $(tar --version 2>/dev/null) in *"GNU tar"*) ;; *) die "GNU tar is needed" ;; esac
NIX="nix --extra-experimental-features nix-command"

# ------------------------------------------------------------ work dir ----
# Nothing is deleted while anything is measured.  Deleting thousands of files
# and creating thousands right after can cost several times the creation
# itself (ext4 without a journal, as on this kind of VM, skips inodes freed in
# the last 60 s, one by one), which would measure the deletions and not the
# tools.  So an old store is moved into TRASH (a rename) and everything is
# deleted at the end; when something was deleted, the next measurement waits
# until 61 s have passed (settle).
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
TREES=$BENCH_DIR/trees
WORK=$BENCH_DIR/work   # stores and archives of this run
TRASH=$WORK/trash      # old stores moved aside, deleted at the end
OUT=$BENCH_DIR/last    # hyperfine logs and CSVs of the last run, kept
BIN=$BENCH_DIR/bin
STAMP_DEL=$BENCH_DIR/.last-delete
mkdir -p "$TREES" "$BIN"
# Time a private copy of the binary: a rebuild during the run changes nothing.
PLAN=$BIN/plan
cp -f "$build/plan" "$PLAN"

wipe() { # store paths (plan's and Nix's) are read-only
    local d
    for d in "$@"; do
        if [ -e "$d" ] || [ -L "$d" ]; then
            chmod -R u+w "$d" 2>/dev/null || true
            rm -rf "$d"
            date +%s >"$STAMP_DEL"
        fi
    done
}
settle() {
    local last left
    last=$(cat "$STAMP_DEL" 2>/dev/null || echo 0)
    left=$((last + 61 - $(date +%s)))
    if [ "$left" -gt 0 ]; then
        say "  (waiting ${left} s for the file system to settle after deleting files)"
        sleep "$left"
    fi
}
wipe "$WORK" "$OUT"
mkdir -p "$WORK" "$TRASH" "$OUT"
cleanup() {
    say "bench: deleting this run's stores and archives (this takes a while)"
    wipe "$WORK"
}
trap cleanup EXIT

# About 13 GB of stores pile up in TRASH before the end (with the default runs).
need_kb=$((16 * 1024 * 1024))
avail_kb=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
[ "$avail_kb" -ge "$need_kb" ] ||
    die "less than 16 GB free under $BENCH_DIR (set BENCH_DIR elsewhere)"

# Helpers for hyperfine's --prepare (untimed, before every run).
cat >"$BIN/aside" <<'EOF'
#!/bin/sh
# aside TRASH DIR...: move each DIR into TRASH (no deletion), then sync, so
# that every fresh-store run starts from nothing with nothing left to flush.
trash=$1; shift
for d in "$@"; do
    if [ -e "$d" ]; then mv "$d" "$trash/$(date +%s%N)-$$" || exit 1; fi
done
sync
EOF
chmod +x "$BIN/aside"

q() { printf '%q' "$1"; } # quote a path for a hyperfine command line
aside() {
    local a="" d
    for d in "$@"; do a="$a $(q "$d")"; done
    printf '%s %s%s' "$(q "$BIN/aside")" "$(q "$TRASH")" "$a"
}

# --------------------------------------------------------------- trees ----
# The synthetic tree: SYN_FILES files, SYN_BYTES bytes, from a seeded
# generator (bench/gentree.c): every machine benchmarks the same bytes.
GENTREE=$BIN/gentree
if [ ! -x "$GENTREE" ] || [ "$here/gentree.c" -nt "$GENTREE" ]; then
    "${CC:-cc}" -O2 -o "$GENTREE" "$here/gentree.c" -lm || die "cannot compile bench/gentree.c"
fi
SYN=$TREES/synthetic
syn_stamp="gentree v1 files=$SYN_FILES bytes=$SYN_BYTES seed=$SYN_SEED"
if [ "$(cat "$SYN.stamp" 2>/dev/null)" != "$syn_stamp" ]; then
    say "bench: generating the synthetic tree in $SYN"
    rm -f "$SYN.stamp"
    wipe "$SYN"
    "$GENTREE" "$SYN" "$SYN_FILES" "$SYN_BYTES" "$SYN_SEED"
    printf '%s\n' "$syn_stamp" >"$SYN.stamp"
fi

# The real tree: a copy of REAL_SRC if it holds at most REAL_MB, otherwise a
# subset of about that size: REAL_SRC's top-level entries from the smallest
# up, whole, then the files of the next one in name order until the budget
# is spent.  Symlinks whose target leaves the tree (absolute, or climbing
# above its root with '..') are dropped, since 'plan store import' refuses
# them by design; setuid/setgid bits are cleared; all is made user-writable.
REAL=$TREES/usrlib
real_cap=$((REAL_MB * 1000 * 1000))
real_stamp="real v1 src=$REAL_SRC cap=$real_cap"
if [ "$(cat "$REAL.stamp" 2>/dev/null)" != "$real_stamp" ]; then
    say "bench: copying a ${REAL_MB} MB subset of $REAL_SRC to $REAL"
    rm -f "$REAL.stamp"
    wipe "$REAL"
    mkdir -p "$REAL"
    all=$WORK/real-all.lst tops=$WORK/real-tops.lst list=$WORK/real-take.lst
    find "$REAL_SRC" -mindepth 1 \( -type f -o -type l \) -printf '%P\t%s\0' >"$all"
    # (mawk cannot printf a NUL: NUL-terminated records go out through ORS.)
    awk -v RS='\0' -F'\t' '
        NF == 2 { n = index($1, "/"); t = n ? substr($1, 1, n - 1) : $1; s[t] += $2 }
        END { for (t in s) printf "%d\t%s\n", s[t], t }' "$all" |
        sort -t "$(printf '\t')" -k1,1n -k2,2 >"$tops"
    awk -F'\t' -v ORS='\0' -v OFS='\t' '
        FILENAME == ARGV[1] { rank[$2] = FNR; next }
        NF == 2 { n = index($1, "/"); t = n ? substr($1, 1, n - 1) : $1;
                  print sprintf("%06d", rank[t]), $1, $2 }' "$tops" RS='\0' "$all" |
        sort -z |
        awk -v RS='\0' -v ORS='\0' -F'\t' -v cap="$real_cap" '
            !full { if (tot + $3 > cap) full = 1; else { tot += $3; print $2 } }' >"$list"
    tar -C "$REAL_SRC" --null --no-recursion -T "$list" -cf - | tar -C "$REAL" -xpf -
    chmod -R u+rwX,ug-s "$REAL"
    find "$REAL" -type l -printf '%P\t%l\0' |
        awk -v RS='\0' -v ORS='\0' -F'\t' '{
            if (substr($2, 1, 1) == "/") { print $1; next }
            p = $1; depth = gsub("/", "/", p); n = split($2, c, "/"); bad = 0
            for (i = 1; i <= n; i++) {
                if (c[i] == "..") { if (--depth < 0) { bad = 1; break } }
                else if (c[i] != "" && c[i] != ".") depth++
            }
            if (bad) print $1 }' >"$WORK/real-drop.lst"
    (cd "$REAL" && xargs -0 -r rm -f <"$WORK/real-drop.lst")
    tr -cd '\0' <"$WORK/real-drop.lst" | wc -c >"$REAL.dropped"
    printf '%s\n' "$real_stamp" >"$REAL.stamp"
fi

describe() { # DIR -> "N files, N dirs, N symlinks, N MB"
    find "$1" -mindepth 1 -printf '%y %s\n' | awk '
        $1 == "f" { f++; b += $2 } $1 == "d" { d++ } $1 == "l" { l++ }
        END { printf "%d files, %d dirs, %d symlinks, %.1f MB of file contents",
              f, d, l, b / 1e6 }'
}

# ----------------------------------------------------------- measuring ----
declare -A MEAN

# measure KEY PREPARE COMMAND [RUNS WARMUP]: time COMMAND with hyperfine;
# PREPARE, if not empty, runs untimed before every run.
measure() {
    local key=$1 prep=$2 cmd=$3 runs=${4:-$RUNS} warm=${5:-$WARMUP} args=()
    [ -n "$prep" ] && args=(--prepare "$prep")
    printf '  %-26s ' "$key"
    if ! hyperfine --shell=bash --style basic --runs "$runs" --warmup "$warm" "${args[@]}" \
        --export-csv "$OUT/$key.csv" --command-name "$key" "$cmd" >"$OUT/$key.log" 2>&1; then
        echo "FAILED"
        echo "bench: '$key' failed: $cmd" >&2
        tail -n 15 "$OUT/$key.log" >&2
        echo "bench: running it once more, with its output:" >&2
        [ -z "$prep" ] || bash -c "$prep" || true
        bash -c "$cmd" >&2 || true
        exit 1
    fi
    local m s
    read -r m s < <(awk -F, 'NR == 2 { print $2, ($3 == "" ? 0 : $3) }' "$OUT/$key.csv")
    MEAN[$key]=$m
    awk -v m="$m" -v s="$s" -v r="$runs" 'BEGIN {
        if (r > 1) printf "%8.3f s ± %.3f  (%d runs)\n", m, s, r
        else printf "%8.3f s          (1 run)\n", m }'
}

TAR_DET='tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner'
plan_add() { # ROOT DIR -> the command line of a plan store add
    printf '%s -q --root %s store add %s --name bench --version 1 >/dev/null' \
        "$(q "$PLAN")" "$(q "$1")" "$(q "$2")"
}
nix_add() { # ROOT DIR -> the command line of a nix-store --add
    printf 'nix-store --store %s --add %s >/dev/null' "$(q "local?root=$1")" "$(q "$2")"
}

start=$(date +%s)
say "plan benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "  machine:   $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
say "  work dir:  $BENCH_DIR ($(df -PT "$BENCH_DIR" | awk 'NR == 2 { print $2 }'))"
say "  versions:  $("$PLAN" --version 2>&1 | head -n 1); $(nix --version); $(hyperfine --version);"
say "             $(tar --version | head -n 1); zstd $(zstd -V | sed -n 's/.*v\([0-9.]*\).*/\1/p')"
say "  method:    mean of $RUNS timed runs ($HASH_RUNS for hashing and re-adding) after"
say "             $WARMUP warm-up, page cache warm;"
say "             fresh stores start empty after 'sync'; nothing deleted while timing"
say "  synthetic: $(describe "$SYN")"
say "             (seeded generator bench/gentree.c)"
say "  real tree: $(describe "$REAL")"
say "             (part of $REAL_SRC; $(cat "$REAL.dropped") symlinks leading out of it dropped)"
say ""
settle
# How busy the CPUs are without us: other work makes the figures noisy, and
# plan, which hashes on every core, suffers more than single-threaded peers.
cpu_busy() { # percent of all CPU time used over 2 s
    local a b
    a=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat)
    sleep 2
    b=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
        u = y[1] - x[1]; i = y[2] - x[2]; printf "%d", (u + i) ? 100 * u / (u + i) : 0 }'
}
busy=$(cpu_busy)
if [ "$busy" -gt 10 ]; then
    say "  WARNING: the CPUs were ${busy}% busy before the start (other work is running):"
    say "  the figures will be noisy, plan's parallel hashing more than its peers."
    say ""
fi

# --- tree hash --------------------------------------------------------------
# 'plan store hash' reads and hashes every file (it has no cache), exactly as
# the first step of 'plan store add' does on a tree it has not seen.
say "Tree hash (plan: 'plan store hash', every byte read and hashed)"
for t in synthetic usrlib; do
    dir=$TREES/$t
    measure "hash.$t.plan" "" "$PLAN -q store hash $(q "$dir") >/dev/null" "$HASH_RUNS"
    measure "hash.$t.nix" "" "$NIX hash path $(q "$dir") >/dev/null" "$HASH_RUNS"
    measure "hash.$t.tar-b2sum" "" "$TAR_DET -cf - -C $(q "$TREES") $t | b2sum >/dev/null" \
        "$HASH_RUNS"
done
say ""

# --- store add into a fresh store -------------------------------------------
# plan flushes what it wrote (syncfs) before it registers the path; Nix and
# tar do not, so each is also timed followed by 'sync', for an information
# row with the same durability.
say "Store add into a fresh, empty store"
for t in synthetic usrlib; do
    dir=$TREES/$t proot=$WORK/fresh-plan-$t nroot=$WORK/fresh-nix-$t
    measure "add.$t.plan" "$(aside "$proot")" "$(plan_add "$proot" "$dir")"
    measure "add.$t.nix" "$(aside "$nroot")" "$(nix_add "$nroot" "$dir")"
    measure "add.$t.nix-sync" "$(aside "$nroot")" "$(nix_add "$nroot" "$dir") && sync"
done
say ""

# --- export / import --------------------------------------------------------
say "Deterministic export and import of the real tree"
xroot=$WORK/plan-usrlib # holds the real tree since the hash benchmark
sp=$("$PLAN" -q --root "$xroot" store add "$REAL" --name bench --version 1)
[ -d "$sp" ] || die "plan store add did not print a store path: '$sp'"
spdir=$(dirname "$sp") spbase=$(basename "$sp")
pfile=$WORK/plan-export.tar.zst tfile=$WORK/tar-export.tar.zst
measure "export.plan" "" \
    "$(q "$PLAN") -q --root $(q "$xroot") store export $(q "$sp") -o $(q "$pfile")"
measure "export.tar-zstd" "" \
    "$TAR_DET -cf - -C $(q "$spdir") $(q "$spbase") | zstd -3 -q -f -o $(q "$tfile")"
# Two more exports of the same path, compared byte for byte with the last.
"$PLAN" -q --root "$xroot" store export "$sp" -o "$WORK/export-1.tar.zst"
"$PLAN" -q --root "$xroot" store export "$sp" -o "$WORK/export-2.tar.zst"
if cmp -s "$WORK/export-1.tar.zst" "$WORK/export-2.tar.zst" &&
    cmp -s "$WORK/export-1.tar.zst" "$pfile"; then
    identical=yes
else
    identical=no
fi
psize=$(stat -c %s "$pfile") tsize=$(stat -c %s "$tfile")
# Import goes back into the same root (same store directory), emptied first.
measure "import.plan" "$(aside "$xroot")" \
    "$(q "$PLAN") -q --root $(q "$xroot") store import $(q "$pfile") >/dev/null"
[ -d "$sp" ] || die "plan store import did not restore $sp"
xdest=$WORK/tar-import
measure "import.zstd-tar" "$(aside "$xdest") && mkdir $(q "$xdest")" \
    "zstd -dc $(q "$tfile") | tar -xf - -C $(q "$xdest")"
measure "import.zstd-tar-sync" "$(aside "$xdest") && mkdir $(q "$xdest")" \
    "zstd -dc $(q "$tfile") | tar -xf - -C $(q "$xdest") && sync"
say "  archive sizes: plan $(awk -v b="$psize" 'BEGIN { printf "%.1f MB", b / 1e6 }')," \
    "tar | zstd -3 $(awk -v b="$tsize" 'BEGIN { printf "%.1f MB", b / 1e6 }')"
say "  three exports of the same path byte-identical (cmp): $identical"
say ""

# --- re-add of content already present --------------------------------------
# plan: the source was added before, so its hash cache is warm (the usual
# case: adding the same build output again).  Nix 2.8 copies the whole tree
# into a temporary directory of the store, hashes it, finds the path valid
# and deletes the copy; its deletions would slow its own next run (see the
# top), so it runs once per tree, after the file system has settled.
say "Re-add of content already in the store"
for t in synthetic usrlib; do
    dir=$TREES/$t nroot=$WORK/nix-$t
    "$PLAN" -q --root "$WORK/plan-$t" store add "$dir" --name bench --version 1 >/dev/null
    nix-store --store "local?root=$nroot" --add "$dir" >/dev/null
done
sync
for t in synthetic usrlib; do
    dir=$TREES/$t
    measure "readd.$t.plan" "" "$(plan_add "$WORK/plan-$t" "$dir")" "$HASH_RUNS"
    settle
    measure "readd.$t.nix" "" "$(nix_add "$WORK/nix-$t" "$dir")" 1 0
    date +%s >"$STAMP_DEL" # Nix deleted its temporary copy
done
say ""

# ---------------------------------------------------------------- table ----
met=0 total=0 missed=""
row() { # LABEL PLANKEY PEERNAME PEERKEY TARGET ('-': no target)
    local label=$1 pk=$2 peer=$3 nk=$4 target=$5 line
    line=$(awk -v l="$label" -v peer="$peer" -v p="${MEAN[$pk]}" -v n="${MEAN[$nk]}" \
        -v t="$target" 'BEGIN {
            r = p / n
            if (t == "-") { tt = "-"; v = "(info)" }
            else { tt = sprintf("<= %.1fx", t); v = (r <= t + 0) ? "met" : "NOT MET" }
            printf "%-26s %8.3f s  %-16s %8.3f s  %6.2fx  %8s  %s\n", l, p, peer, n, r, tt, v }')
    say "$line"
    [ "$target" = - ] && return 0
    total=$((total + 1))
    case $line in
    *"NOT MET") missed="$missed
  - $label: plan $(awk -v p="${MEAN[$pk]}" -v n="${MEAN[$nk]}" 'BEGIN { printf "%.2fx", p / n }') of $peer, target <= ${target}x" ;;
    *) met=$((met + 1)) ;;
    esac
}

say "Results: mean wall-clock time; ratio = plan / peer, lower is better"
printf '%-26s %10s  %-16s %10s  %7s  %8s  %s\n' benchmark plan peer "peer time" ratio target result
printf '%0.s-' {1..98}; echo
row "hash, synthetic"          hash.synthetic.plan  "nix hash path"    hash.synthetic.nix       1.0
row "hash, synthetic"          hash.synthetic.plan  "tar | b2sum"      hash.synthetic.tar-b2sum -
row "hash, real tree"          hash.usrlib.plan     "nix hash path"    hash.usrlib.nix          1.0
row "hash, real tree"          hash.usrlib.plan     "tar | b2sum"      hash.usrlib.tar-b2sum    -
row "add to fresh, synthetic"  add.synthetic.plan   "nix-store --add"  add.synthetic.nix        0.8
row "  same, peer then syncs"  add.synthetic.plan   "nix-store; sync"  add.synthetic.nix-sync   -
row "add to fresh, real tree"  add.usrlib.plan      "nix-store --add"  add.usrlib.nix           0.8
row "  same, peer then syncs"  add.usrlib.plan      "nix-store; sync"  add.usrlib.nix-sync      -
row "re-add, synthetic"        readd.synthetic.plan "nix-store --add"  readd.synthetic.nix      0.3
row "re-add, real tree"        readd.usrlib.plan    "nix-store --add"  readd.usrlib.nix         0.3
row "  same, hash cache cold"  hash.synthetic.plan  "nix-store --add"  readd.synthetic.nix      -
row "  same, hash cache cold"  hash.usrlib.plan     "nix-store --add"  readd.usrlib.nix         -
row "export, real tree"        export.plan          "tar | zstd -3"    export.tar-zstd          1.0
row "import, real tree"        import.plan          "zstd -d | tar -x" import.zstd-tar          1.0
row "  same, peer then syncs"  import.plan          "zstd|tar; sync"   import.zstd-tar-sync     -
total=$((total + 1))
if [ "$identical" = yes ]; then
    met=$((met + 1))
    printf '%-26s %s\n' "exports byte-identical" "yes                                                   met"
else
    printf '%-26s %s\n' "exports byte-identical" "NO                                                    NOT MET"
    missed="$missed
  - two exports of the same path differ"
fi
say ""
say "Summary: $met of $total targets met; the run took $(($(date +%s) - start)) s" \
    "(CPUs ${busy}% busy with other work before it started)."
[ -z "$missed" ] || say "Not met:$missed"
say "Raw hyperfine output and CSVs: $OUT"
