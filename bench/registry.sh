#!/usr/bin/env bash
# bench/registry.sh BUILD_DIR [serve] [install] - the benchmarks of the
# registry issue, side by side with their peers.
#
# `make bench` runs this as `bench/registry.sh build` (both parts).
#   serve:   metadata requests/s and single-connection latency of
#            `plan-registry serve` against nginx (1 worker) serving the
#            mirror `plan-registry export` wrote, on loopback, with wrk:
#            /timestamp.json and one index file.  Target: plan-registry at
#            least 0.5x nginx's requests/s.
#   install: `plan install` of 200 small plans from the loopback registry
#            into an empty store, against `nix copy --from file://CACHE` of
#            the same 200 trees from a local binary cache into an empty
#            store.  Target: at most 0.5x.
# A missed target is a result, not an error: the script fails only when
# something does not work.  bench/README.md says how to read the tables.
#
# Environment:
#   BENCH_DIR            work directory (default /var/tmp/plan-bench); the
#                        published registry, its root and Nix's binary cache
#                        are cached in BENCH_DIR/reg-cache, a run's copies
#                        live in BENCH_DIR/reg-work until it ends, logs stay
#                        in BENCH_DIR/reg-last
#   BENCH_WRK_SECONDS    length of each throughput run (default 5)
#   BENCH_LAT_SECONDS    length of each single-connection run (default 3)
#   BENCH_INSTALL_RUNS   timed runs of each install (default 9)
#   BENCH_WARMUP         untimed warm-up runs (default 1)
#   BENCH_REG_NO_LOOP    set: the stores go to the work directory, not to a
#                        fresh loop-mounted ext4 image (the default as root)
set -euo pipefail
export LC_ALL=C
unset PLAN_CONFIG PLAN_ROOT PLAN_KEY PLAN_REGISTRY_TOKEN

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
build=${1:-build}
shift || true
for b in plan plan-registry; do
    [ -x "$build/$b" ] || { echo "bench: no $b binary at '$build/$b': run 'make all' first" >&2; exit 1; }
done
parts=" ${*:-serve install} "
for p in $parts; do
    case $p in serve | install) ;; *) echo "bench: unknown part '$p' (serve, install)" >&2; exit 2 ;; esac
done
want() { case $parts in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

BENCH_DIR=${BENCH_DIR:-/var/tmp/plan-bench}
WRK_SECONDS=${BENCH_WRK_SECONDS:-5}
LAT_SECONDS=${BENCH_LAT_SECONDS:-3}
INSTALL_RUNS=${BENCH_INSTALL_RUNS:-9}
WARMUP=${BENCH_WARMUP:-1}
NPLANS=200

say() { printf '%s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- peers ----
need=""
command -v wrk >/dev/null || need="$need wrk"
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need="$need nginx-light"
{ command -v nix && command -v nix-store; } >/dev/null || need="$need nix-bin"
command -v hyperfine >/dev/null || need="$need hyperfine"
if [ -n "$need" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench: missing peers:$need" >&2
        echo "bench: install them with: sudo apt-get install -y$need" >&2
        exit 1
    fi
    say "bench: installing the peers:$need"
    "$repo/tools/deps.sh" --bench
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for c in wrk "$NGINX" nix nix-store hyperfine curl awk; do
    command -v "$c" >/dev/null || die "'$c' is still missing"
done
NIX="nix --extra-experimental-features nix-command"

# ------------------------------------------------------------ work dir ----
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
case $BENCH_DIR in *[[:space:]]*) die "BENCH_DIR must not contain white space: '$BENCH_DIR'" ;; esac
CACHE=$BENCH_DIR/reg-cache # the published registry, a copy of its root, kept
WORK=$BENCH_DIR/reg-work   # this run's copies, deleted at the end
MNT=$BENCH_DIR/reg-fs      # the stores: a fresh ext4 image mounted here
TRASH=$MNT/trash           # stores moved aside during the run
OUT=$BENCH_DIR/reg-last    # logs of the last run, kept
BIN=$BENCH_DIR/bin
mkdir -p "$CACHE" "$BIN"
PLAN=$BIN/plan-reg # private copies: a rebuild during the run changes nothing
REGISTRY=$BIN/plan-registry-reg
cp -f "$build/plan" "$PLAN"
cp -f "$build/plan-registry" "$REGISTRY"

wipe() { # store paths (plan's and Nix's) are read-only
    local d
    for d in "$@"; do
        if [ -e "$d" ] || [ -L "$d" ]; then
            chmod -R u+w "$d" 2>/dev/null || true
            rm -rf "$d"
        fi
    done
}
SERVER_PID="" NGINX_PID=""
stop_pid() { # PID: TERM a process this script started, wait for it
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
# R is where the published paths were built, so the installing root must
# have R's path (an archive is bound to its store directory).  R lives on a
# fresh ext4 image, so that no earlier deletion slows the file creations
# timed here (bench/README.md, "Method"); CACHE/root keeps a copy of it,
# with an empty store, between runs.
R=$MNT/root
TEMPLATE=$MNT/template
unmount_fs() {
    if mountpoint -q "$MNT" 2>/dev/null; then
        umount "$MNT" || umount -l "$MNT" || true
    fi
}
cleanup() {
    stop_pid "$NGINX_PID"
    stop_pid "$SERVER_PID"
    say "bench: deleting this run's copies"
    unmount_fs
    wipe "$MNT" "$WORK"
}
unmount_fs # a run that was killed may have left it mounted
wipe "$MNT" "$WORK" "$OUT"
mkdir -p "$WORK" "$MNT" "$OUT"
trap cleanup EXIT
trap 'exit 130' INT TERM
# make_fs: a fresh ext4 image at MNT (0: made; 1: not, the work directory's
# file system is used)
LOOP=""
make_fs() {
    unmount_fs
    rm -f "$WORK/ext4.img"
    truncate -s 8G "$WORK/ext4.img" && mkfs.ext4 -q -F -i 8192 "$WORK/ext4.img" &&
        mount -o loop "$WORK/ext4.img" "$MNT" 2>/dev/null
}
FS_KIND="the work directory's file system ($(stat -f -c %T "$WORK"); no loop device: not root)"
if [ -n "${BENCH_REG_NO_LOOP:-}" ]; then
    FS_KIND="the work directory's file system ($(stat -f -c %T "$WORK"); BENCH_REG_NO_LOOP is set)"
elif [ "$(id -u)" -eq 0 ] && command -v mkfs.ext4 >/dev/null && make_fs; then
    LOOP=1
    FS_KIND="a fresh ext4 image for each command measured, loop-mounted (mkfs.ext4 defaults, with a journal)"
fi
mkdir -p "$TRASH"

p() { "$PLAN" -q --root "$R" "$@"; }
num() { printf '%03d' "$1"; }
NAMES=()
for ((i = 1; i <= NPLANS; i++)); do NAMES+=("b$(num $i)"); done

# start_registry DATA [OPTIONS]: serve DATA on a free loopback port; sets
# URL and SERVER_PID
start_registry() {
    local out=$WORK/serve.out data=$1
    shift
    : >"$out"
    "$REGISTRY" serve "$data" --listen 127.0.0.1:0 "$@" >"$out" 2>>"$OUT/serve.err" &
    SERVER_PID=$!
    local t
    for ((t = 0; t < 200; t++)); do
        grep -q '^listening on ' "$out" && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/serve.err" >&2; die "plan-registry serve failed"; }
        sleep 0.05
    done
    grep -q '^listening on ' "$out" || die "plan-registry serve did not start"
    URL="http://$(sed -n 's/^listening on //p' "$out")"
}

# ---------------------------------------------------------------- inputs ----
# 200 recipes bNNN 1.0.0 with no sources: a script in bin/, a library and 8
# small data files (10 files, about 2 KB), no dependencies.  Published once
# from R and cached; Nix gets the same 200 trees (copied from R's store) in a
# binary cache made with `nix copy --to file://...?compression=zstd`, the
# compression of plan's archives.
DATA=$CACHE/data
NCACHE=$CACHE/nix-cache
setup_stamp="reg v1 plans=$NPLANS root=$R plan=$("$PLAN" --version 2>&1 | head -n 1) nix=$(nix --version)"
make_inputs() {
    say "bench: publishing $NPLANS plans into a fresh registry (once; cached in $CACHE)"
    wipe "$CACHE" "$R"
    mkdir -p "$CACHE/recipes"
    local n i
    for ((i = 1; i <= NPLANS; i++)); do
        n=b$(num $i)
        {
            printf 'name: %s\nversion: 1.0.0\nbuild: |\n' "$n"
            printf '  mkdir -p "$out/bin" "$out/lib" "$out/share/%s"\n' "$n"
            printf '  printf '"'"'#!/bin/sh\\necho "%s %d"\\n'"'"' >"$out/bin/%s"\n' "$n" "$i" "$n"
            printf '  chmod +x "$out/bin/%s"\n' "$n"
            printf '  seq %d %d >"$out/lib/lib%s.so"\n' "$i" $((i + 40)) "$n"
            printf '  for f in 1 2 3 4 5 6 7 8; do seq -f "%s line %%g of $f" 1 %d >"$out/share/%s/data$f"; done\n' \
                "$n" $((i % 7 + 3)) "$n"
        } >"$CACHE/recipes/$n.yaml"
    done
    "$REGISTRY" init "$DATA" 2>"$OUT/init.err" >"$CACHE/regkey" || { cat "$OUT/init.err" >&2; die "plan-registry init failed"; }
    start_registry "$DATA"
    local pub token
    pub=$(p keys generate bench 2>/dev/null)
    "$REGISTRY" publisher add "$DATA" '*' "$pub" 2>/dev/null
    token=$("$REGISTRY" token create "$DATA" --scope publish-new,publish-update --rate 0 2>/dev/null)
    p registry add main "$URL" --key "$(cat "$CACHE/regkey")" 2>/dev/null
    p keys trust "$pub" 2>/dev/null
    for n in "${NAMES[@]}"; do
        p publish "$CACHE/recipes/$n.yaml" --key bench --token "$token" >>"$OUT/publish.log" 2>&1 ||
            { tail -n 5 "$OUT/publish.log" >&2; die "plan publish $n failed"; }
    done
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    # Nix: the same trees, added to a chroot store, copied to a binary cache.
    mkdir -p "$WORK/ntrees"
    local s
    for s in "$R"/store/*-b[0-9][0-9][0-9]-1.0.0; do
        n=${s##*/}
        cp -a "$s" "$WORK/ntrees/${n#*-}"
    done
    [ "$(ls "$WORK/ntrees" | wc -l)" -eq "$NPLANS" ] || die "expected $NPLANS store paths in $R/store"
    chmod -R u+w "$WORK/ntrees"
    nix-store --store "local?root=$WORK/nix-src" --add "$WORK"/ntrees/* >"$CACHE/nix-paths"
    [ "$(wc -l <"$CACHE/nix-paths")" -eq "$NPLANS" ] || die "nix-store --add failed"
    # shellcheck disable=SC2046 # one path a line
    $NIX copy --from "local?root=$WORK/nix-src" --to "file://$NCACHE?compression=zstd" \
        $(cat "$CACHE/nix-paths") 2>"$OUT/nix-copy-to.log" || { cat "$OUT/nix-copy-to.log" >&2; die "nix copy --to failed"; }
    wipe "$WORK/nix-src" "$WORK/ntrees"
    # R: no roots, no store paths, no downloaded archives.
    rm -rf "$R/profiles" "$R/cache/archives"
    p gc >/dev/null
    cp -a "$R" "$CACHE/root"
    printf '%s\n' "$setup_stamp" >"$CACHE/stamp"
}
if [ "$(cat "$CACHE/stamp" 2>/dev/null)" != "$setup_stamp" ] || [ ! -d "$CACHE/root" ]; then
    make_inputs
else
    cp -a "$CACHE/root" "$R"
fi

# ----------------------------------------------------------- measuring ----
declare -A MEAN
# measure KEY COMMAND RUNS WARMUP PREPARE: time COMMAND with hyperfine -N
measure() {
    local key=$1 cmd=$2 runs=$3 warm=$4 prep=$5
    printf '  %-30s ' "$key"
    if ! hyperfine -N --prepare "$prep" --style basic --runs "$runs" --warmup "$warm" \
        --export-csv "$OUT/$key.csv" --command-name "$key" "$cmd" >"$OUT/$key.log" 2>&1; then
        echo "FAILED"
        echo "bench: '$key' failed: $cmd" >&2
        tail -n 15 "$OUT/$key.log" >&2
        echo "bench: running it once more, with its output:" >&2
        bash -c "$prep" >&2 || true
        bash -c "$cmd" >&2 || true
        exit 1
    fi
    # The median: Nix's run times spread widely here (one slow run moved
    # its mean by a fifth), and a ratio of medians is the steadier one.
    local med lo hi
    read -r med lo hi < <(awk -F, 'NR == 2 { print $4, $7, $8 }' "$OUT/$key.csv")
    MEAN[$key]=$med
    awk -v m="$med" -v lo="$lo" -v hi="$hi" -v r="$runs" 'BEGIN {
        if (m < 1) printf "%8.1f ms median, %.1f .. %.1f  (%d runs)\n", m * 1000, lo * 1000, hi * 1000, r
        else printf "%8.3f s median, %.3f .. %.3f  (%d runs)\n", m, lo, hi, r }'
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
say "registry benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "  machine:   $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
say "  versions:  $("$PLAN" --version 2>&1 | head -n 1); $("$NGINX" -v 2>&1); $(nix --version);"
say "             $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2); $(hyperfine --version)"
say "  stores:    $MNT, $FS_KIND"
busy=$(cpu_busy)
if [ "$busy" -gt 10 ]; then
    say "  WARNING: the CPUs were ${busy}% busy before the start (other work is running):"
    say "  the figures will be noisy."
fi
say ""

met=0 total=0 missed="" rows=()
# row LABEL PLAN PEERNAME PEER TARGET KIND: KIND "time" (lower is better,
# target is a maximum ratio) or "rate" (higher is better, a minimum ratio);
# TARGET '-' for information.
row() {
    local label=$1 pv=$2 peer=$3 nv=$4 target=$5 kind=$6 line
    [ -n "$pv" ] && [ -n "$nv" ] || return 0
    line=$(awk -v l="$label" -v peer="$peer" -v p="$pv" -v n="$nv" -v t="$target" -v k="$kind" '
        function f(x) {
            if (k == "rate") return sprintf("%7.0f/s", x)
            return x < 1 ? sprintf("%7.1f ms", x * 1000) : sprintf("%8.3f s", x) }
        BEGIN {
            r = p / n
            if (t == "-") { tt = "-"; v = "(info)" }
            else if (k == "rate") { tt = sprintf(">= %.2fx", t); v = (r >= t + 0) ? "met" : "NOT MET" }
            else { tt = sprintf("<= %.2fx", t); v = (r <= t + 0) ? "met" : "NOT MET" }
            printf "%-34s %s  %-24s %s  %6.2fx  %9s  %s\n", l, f(p), peer, f(n), r, tt, v }')
    rows+=("$line")
    [ "$target" = - ] && return 0
    total=$((total + 1))
    case $line in
    *"NOT MET") missed="$missed
  - $label: plan $(awk -v p="$pv" -v n="$nv" 'BEGIN { printf "%.2fx", p / n }') of $peer, target ${target}x" ;;
    *) met=$((met + 1)) ;;
    esac
}

start_registry "$DATA"
say "plan-registry serving $DATA on $URL (threads: one per core, $(nproc))"

# ---------------------------------------------------------------- serve ----
declare -A RPS LAT50 LAT99 LATAVG
to_us() { # wrk's "12.34us" / "1.2ms" / "1.0s" -> microseconds
    awk -v x="$1" 'BEGIN { v = x + 0
        if (x ~ /us$/) print v; else if (x ~ /ms$/) print v * 1000
        else if (x ~ /m$/) print v * 60e6; else if (x ~ /s$/) print v * 1e6; else print v }'
}
# wrk_run KEY URL THREADS CONNECTIONS SECONDS
wrk_run() {
    local key=$1 url=$2 log=$OUT/wrk.$1.log
    wrk -t"$3" -c"$4" -d"$5s" --latency "$url" >"$log" 2>&1 || { cat "$log" >&2; die "wrk failed on $url"; }
    ! grep -q 'Non-2xx\|Socket errors' "$log" || { cat "$log" >&2; die "wrk saw errors on $url"; }
    RPS[$key]=$(awk '/^Requests\/sec:/ { print $2 }' "$log")
    LATAVG[$key]=$(to_us "$(awk '$1 == "Latency" { print $2; exit }' "$log")")
    LAT50[$key]=$(to_us "$(awk '$1 == "50%" { print $2 }' "$log")")
    LAT99[$key]=$(to_us "$(awk '$1 == "99%" { print $2 }' "$log")")
    [ -n "${RPS[$key]}" ] || { cat "$log" >&2; die "no Requests/sec in wrk's output"; }
    if [ "$4" -eq 1 ]; then
        printf '  %-34s %9.0f req/s  latency avg %6.1f us, p50 %6.1f us, p99 %6.1f us\n' "$key" \
            "${RPS[$key]}" "${LATAVG[$key]}" "${LAT50[$key]}" "${LAT99[$key]}"
    else
        printf '  %-34s %9.0f req/s\n' "$key" "${RPS[$key]}"
    fi
}
free_port() { # a loopback TCP port nothing listens on
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        ss -Htln "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return; }
    done
}
if want serve; then
    MIRROR=$WORK/mirror
    "$REGISTRY" export "$DATA" "$MIRROR" 2>"$OUT/export.err" || { cat "$OUT/export.err" >&2; die "plan-registry export failed"; }
    NG=$WORK/nginx
    mkdir -p "$NG/tmp" "$NG/logs"
    NPORT=$(free_port)
    cat >"$NG/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $NG/nginx.pid;
error_log $NG/logs/error.log crit;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fastcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    types { application/json json; application/zstd zst; text/yaml yaml; }
    default_type application/octet-stream;
    etag on;
    server {
        listen 127.0.0.1:$NPORT;
        root $MIRROR;
    }
}
EOF
    "$NGINX" -t -q -c "$NG/nginx.conf" -p "$NG" 2>"$OUT/nginx.err" || { cat "$OUT/nginx.err" >&2; die "nginx refused its configuration"; }
    "$NGINX" -c "$NG/nginx.conf" -p "$NG" 2>>"$OUT/nginx.err" &
    NGINX_PID=$!
    NURL=http://127.0.0.1:$NPORT
    for ((t = 0; t < 100; t++)); do curl -sf -o /dev/null "$NURL/timestamp.json" && break; sleep 0.05; done
    # The same bytes from both servers.
    IDX=/index/b001.json
    for f in /timestamp.json "$IDX"; do
        curl -sf "$URL$f" >"$WORK/a" && curl -sf "$NURL$f" >"$WORK/b" || die "cannot fetch $f from both servers"
        cmp -s "$WORK/a" "$WORK/b" || die "plan-registry and nginx serve different bytes for $f"
    done
    say "Metadata over loopback: plan-registry against nginx (1 worker) serving the exported mirror"
    say "  files: /timestamp.json ($(stat -c %s "$MIRROR/timestamp.json") bytes), $IDX ($(stat -c %s "$MIRROR$IDX") bytes)"
    say "  wrk -t1 -c1 -d${LAT_SECONDS}s (latency), wrk -t2 -c16 -d${WRK_SECONDS}s (throughput), keep-alive"
    for f in ts idx; do
        path=/timestamp.json
        [ $f = ts ] || path=$IDX
        wrk_run "$f.c1.registry" "$URL$path" 1 1 "$LAT_SECONDS"
        wrk_run "$f.c1.nginx" "$NURL$path" 1 1 "$LAT_SECONDS"
        wrk_run "$f.c16.registry" "$URL$path" 2 16 "$WRK_SECONDS"
        wrk_run "$f.c16.nginx" "$NURL$path" 2 16 "$WRK_SECONDS"
    done
    # Information: the server with one request thread, as nginx's one worker.
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    start_registry "$DATA" --threads 1
    wrk_run "idx.c16.registry-1thread" "$URL$IDX" 2 16 "$WRK_SECONDS"
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    stop_pid "$NGINX_PID"
    NGINX_PID=""
    start_registry "$DATA"
    say ""
    row "timestamp.json, 16 connections" "${RPS[ts.c16.registry]}" "nginx" "${RPS[ts.c16.nginx]}" 0.5 rate
    row "index file, 16 connections" "${RPS[idx.c16.registry]}" "nginx" "${RPS[idx.c16.nginx]}" 0.5 rate
    row "  same, --threads 1" "${RPS[idx.c16.registry-1thread]}" "nginx" "${RPS[idx.c16.nginx]}" - rate
    row "timestamp.json, 1 connection" "${RPS[ts.c1.registry]}" "nginx" "${RPS[ts.c1.nginx]}" - rate
    row "index file, 1 connection" "${RPS[idx.c1.registry]}" "nginx" "${RPS[idx.c1.nginx]}" - rate
fi

# -------------------------------------------------------------- install ----
if want install; then
    say "Install of $NPLANS small plans (10 files each) into an empty store"
    # R follows the new port; its metadata is brought up to date untimed, so
    # the timed install (within registry-refresh of that update) asks the
    # registry nothing but the 200 archives, and imports them.
    p registry remove main 2>/dev/null || true
    p registry add main "$URL" --key "$(cat "$CACHE/regkey")" 2>/dev/null
    p registry update >/dev/null 2>"$OUT/update.err" || { cat "$OUT/update.err" >&2; die "plan registry update failed"; }
    rm -rf "$R/profiles" "$R/cache/archives"
    p gc >/dev/null
    [ -z "$(ls "$R/store")" ] || die "R's store is not empty after gc"
    wipe "$TEMPLATE"
    cp -a "$R" "$TEMPLATE"
    # Nix: an initialised empty chroot store, copied before each run.
    NDST=$MNT/nix-dst NTEMPLATE=$MNT/nix-template
    nix-store --store "local?root=$NTEMPLATE" --init
    mapfile -t NPATHS <"$CACHE/nix-paths"
    # Each run starts from a copy of the template; the previous store is moved
    # aside (a rename), never deleted while anything is timed (bench/README.md).
    prep_plan="bash -c 'mv $(q "$R") $(q "$TRASH")/\$(date +%s%N) && cp -a $(q "$TEMPLATE") $(q "$R")'"
    prep_plan_cached="bash -c 'mv $(q "$R") $(q "$TRASH")/\$(date +%s%N) && cp -a $(q "$TEMPLATE") $(q "$R") && mkdir -p $(q "$R/cache") && cp -a $(q "$MNT/archives") $(q "$R/cache/archives")'"
    # prep_plan_config TEXT: the same as prep_plan, with TEXT as the root's
    # configuration file (an explicit root reads <root>/config.yaml).
    prep_plan_config() {
        printf '%s' "bash -c 'mv $(q "$R") $(q "$TRASH")/\$(date +%s%N) && cp -a $(q "$TEMPLATE") $(q "$R") && printf $(q "$1") >$(q "$R/config.yaml")'"
    }
    prep_nix="bash -c '{ [ ! -e $(q "$NDST") ] || mv $(q "$NDST") $(q "$TRASH")/\$(date +%s%N); } && cp -a $(q "$NTEMPLATE") $(q "$NDST")'"
    plan_install="$(q "$PLAN") -q --root $(q "$R") install$(qall "${NAMES[@]}")"
    nix_copy="$NIX copy --from file://$NCACHE --to local?root=$NDST --no-check-sigs$(qall "${NPATHS[@]}")"
    # Both must really work: 200 paths, the same bytes.
    bash -c "$prep_plan" && bash -c "$plan_install" >"$OUT/install.out" 2>&1 ||
        { cat "$OUT/install.out" >&2; die "plan install failed"; }
    [ "$(compgen -G "$R/store/*-b[0-9][0-9][0-9]-1.0.0" | wc -l)" -eq "$NPLANS" ] || die "plan install did not add $NPLANS paths"
    [ "$("$R/profiles/default/current/bin/b123")" = "b123 123" ] || die "b123 is not on the profile"
    # ...and registered what it holds: every path re-hashed against its row
    p store verify --check-contents >"$OUT/verify.out" 2>&1 ||
        { cat "$OUT/verify.out" >&2; die "plan store verify fails after the install"; }
    # Small archives are imported from memory and never land in the download
    # cache: the cached row gets the registry's own files, which are named
    # as the cache names them (<BLAKE2b-256>.tar.zst).
    [ -z "$(ls "$R/cache/archives" 2>/dev/null | grep '\.tar\.zst$')" ] ||
        die "plan install left small archives in its download cache"
    cp -a "$DATA/static/archives" "$MNT/archives"
    chmod -R u+w "$MNT/archives"
    bash -c "$prep_nix" && bash -c "$nix_copy" >"$OUT/nix-copy.out" 2>&1 ||
        { cat "$OUT/nix-copy.out" >&2; die "nix copy --from failed"; }
    [ "$(compgen -G "$NDST/nix/store/*-b[0-9][0-9][0-9]-1.0.0" | wc -l)" -eq "$NPLANS" ] || die "nix copy did not add $NPLANS paths"
    diff -r "$(ls -d "$R"/store/*-b042-1.0.0)" "$(ls -d "$NDST"/nix/store/*-b042-1.0.0)" ||
        die "plan's and Nix's b042 differ"
    # Every command is timed on a fresh image of its own: the stores moved
    # aside by earlier runs would otherwise slow down whichever command
    # comes later (bench/README.md).  What the runs start from is kept
    # outside the image and copied into each new one.
    KEEP=$WORK/keep
    wipe "$KEEP"
    mkdir -p "$KEEP"
    cp -a "$TEMPLATE" "$KEEP/template"
    cp -a "$NTEMPLATE" "$KEEP/nix-template"
    cp -a "$MNT/archives" "$KEEP/archives"
    fresh_fs() {
        [ -n "$LOOP" ] || return 0
        make_fs || die "cannot make a fresh ext4 image at $MNT"
        mkdir -p "$TRASH" "$MNT/run"
        cp -a "$KEEP/template" "$TEMPLATE"
        cp -a "$KEEP/nix-template" "$NTEMPLATE"
        cp -a "$KEEP/archives" "$MNT/archives"
        cp -a "$TEMPLATE" "$R"
        sync
    }
    say "  archives: $(find "$DATA/static/archives" -name '*.tar.zst' | wc -l) in the registry," \
        "$(du -sk "$DATA/static/archives" | cut -f1) KB; Nix's cache: $(find "$NCACHE/nar" -type f | wc -l) NARs," \
        "$(du -sk "$NCACHE" | cut -f1) KB"
    fresh_fs
    measure install.plan "$plan_install" "$INSTALL_RUNS" "$WARMUP" "$prep_plan"
    fresh_fs
    measure install.nix "$nix_copy" "$INSTALL_RUNS" "$WARMUP" "$prep_nix"
    fresh_fs
    measure install.nix-sync "bash -c $(q "$nix_copy && sync")" "$INSTALL_RUNS" "$WARMUP" "$prep_nix"
    # Information: the archives already downloaded (import and profile only).
    fresh_fs
    measure install.plan-cached "$plan_install" "$INSTALL_RUNS" "$WARMUP" "$prep_plan_cached"
    # Information: what the defaults save.  The registry's metadata was
    # updated moments before, so the timed install does not ask again
    # (registry-refresh, 300 s); and it does not wait for the disk
    # (durability: deferred).
    fresh_fs
    measure install.plan-ask "$plan_install" "$INSTALL_RUNS" "$WARMUP" \
        "$(prep_plan_config 'registry-refresh: 0\n')"
    fresh_fs
    measure install.plan-immediate "$plan_install" "$INSTALL_RUNS" "$WARMUP" \
        "$(prep_plan_config 'durability: immediate\n')"
    # Information: plan env of the 200 into an empty store (no profile).
    fresh_fs
    mkdir -p "$MNT/run"
    PLAN_RUN_DIR=$MNT/run measure env.plan \
        "$(q "$PLAN") -q --root $(q "$R") env$(qall "${NAMES[@]}") -- true" "$INSTALL_RUNS" "$WARMUP" "$prep_plan"
    # Where plan's time goes: system calls of one install (not timed).
    if command -v strace >/dev/null; then
        bash -c "$prep_plan"
        strace -f -w -c -o "$OUT/install.strace" bash -c "$plan_install" >/dev/null 2>&1 || true
        bash -c "$prep_plan"
        strace -f -e trace=connect,syncfs,fsync,fdatasync,clone3,clone -o "$OUT/install.strace-calls" \
            bash -c "$plan_install" >/dev/null 2>&1 || true
        bash -c "$prep_plan"
    fi
    say ""
    row "install $NPLANS plans" "${MEAN[install.plan]}" "nix copy --from file://" "${MEAN[install.nix]}" 0.5 time
    row "  same, peer then syncs" "${MEAN[install.plan]}" "nix copy; sync" "${MEAN[install.nix-sync]}" - time
    row "  archives already in cache" "${MEAN[install.plan-cached]}" "nix copy --from file://" "${MEAN[install.nix]}" - time
    row "  asking the registry first" "${MEAN[install.plan-ask]}" "nix copy --from file://" "${MEAN[install.nix]}" - time
    row "  durability: immediate" "${MEAN[install.plan-immediate]}" "nix copy; sync" "${MEAN[install.nix-sync]}" - time
    row "  plan env $NPLANS -- true" "${MEAN[env.plan]}" "nix copy --from file://" "${MEAN[install.nix]}" - time
fi

# ---------------------------------------------------------------- table ----
if [ "${#rows[@]}" -gt 0 ]; then
    say "Results: requests/s (higher is better) or median wall-clock time (lower is better); ratio = plan / peer"
    printf '%-34s %10s  %-24s %10s  %7s  %9s  %s\n' benchmark plan peer peer ratio target result
    printf '%0.s-' {1..110}; echo
    for r in "${rows[@]}"; do say "$r"; done
    say ""
fi
if want install && [ -s "$OUT/install.strace-calls" ]; then
    say "One plan install of $NPLANS plans under strace (not timed; strace slows it down):"
    say "  calls: $(for c in connect clone3 syncfs fsync fdatasync; do
        printf '%s %d, ' "$c" "$(grep -cE "^[0-9]+ +$c\(" "$OUT/install.strace-calls" || true)"
    done | sed 's/, $//')"
    say "  where the wall-clock time goes (strace -f -w -c: seconds spent in each call, all threads):"
    awk '/^-/ { n++; next } n == 1 && NF >= 5 { print }' "$OUT/install.strace" | sort -k2 -nr | head -n 8 |
        awk '{ printf "    %-12s %7.3f s %7d calls  %7.0f us each\n", $NF, $2, $4, $3 }'
    say ""
fi
if [ "$total" -gt 0 ]; then
    say "Summary: $met of $total targets met; the run took $(($(date +%s) - start)) s" \
        "(CPUs ${busy}% busy with other work before it started)."
    [ -z "$missed" ] || say "Not met:$missed"
fi
say "Raw wrk and hyperfine output: $OUT"
