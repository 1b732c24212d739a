#!/usr/bin/env bats
# plan build: real builds of real recipes in a temporary --root.

load helpers

teardown() {
    # a server a failed test left running would keep bats waiting
    [ -f "$BATS_TEST_TMPDIR/server.pid" ] && kill "$(cat "$BATS_TEST_TMPDIR/server.pid")" 2>/dev/null
    unpriv_cleanup
    true
}

setup() {
    common_setup
    EX="${PLAN_SRC:-$PWD}/examples/recipes"
    R="$BATS_TEST_TMPDIR/recipes"
    mkdir -p "$R"
}

# recipe NAME VERSION BUILD-SCRIPT [EXTRA-YAML]: write $R/NAME.yaml
recipe() {
    {
        printf 'name: %s\nversion: %s\nbuild: |\n' "$1" "$2"
        printf '%s\n' "$3" | sed 's/^/  /'
        if [ -n "${4:-}" ]; then printf '%s\n' "$4"; fi
    } >"$R/$1.yaml"
}

leftovers() {
    # nothing half-made: no work dirs, no intents, only registered paths
    [ -z "$(ls -A "$ROOT/store/.tmp" 2>/dev/null | grep -v '^$')" ] || return 1
    [ -z "$(ls -A "$ROOT/var/pending" 2>/dev/null)" ] || return 1
    plan store verify >/dev/null
}

@test "build: a C library and a program that links it; the program refers to the library" {
    run plan build "$EX/hello.yaml" -o "$BATS_TEST_TMPDIR/result"
    [ "$status" -eq 0 ]
    hello=$output
    [[ "$hello" =~ ^$ROOT/store/[0-9a-z]{32}-hello-1\.0\.0$ ]]
    [ "$("$BATS_TEST_TMPDIR/result/bin/hello" bats)" = "hello, bats (from libgreet 1.0.0)" ]
    run plan --json store path-info "$hello"
    [[ "$output" == *'-greet-1.0.0"'* ]]
    greet=$(ls -d "$ROOT"/store/*-greet-1.0.0)
    grep -q "$greet/lib" "$hello/bin/hello"      # the run path names the store path
    [ -f "$hello/.plan/manifest.json" ]
    grep -q '"recipe_hash": "blake2b:' "$hello/.plan/manifest.json"
    [ -L "$ROOT/var/gc/links/"* ]
    leftovers
}

@test "build: the same recipe again is reused at once, without building" {
    first=$(plan build "$EX/greet.yaml")
    run plan --json build "$EX/greet.yaml"
    [ "$status" -eq 0 ]
    [[ "$output" == *'"reused": true'* ]]
    [[ "$output" == *"$first"* ]]
}

@test "build: self-references are rewritten to the final store path" {
    run plan build "$EX/wordfreq.yaml"
    [ "$status" -eq 0 ]
    w=$output
    grep -q "stopwords=$w/share/wordfreq/stopwords.txt" "$w/bin/wordfreq"
    [ "$(echo 'the cat and the hat and the cat' | "$w/bin/wordfreq" 1)" = "      2 cat" ]
    plan store verify --check-contents "$w"
}

@test "build --check: identical rebuild exits 0; a non-reproducible one lists the file and exits 1" {
    plan build "$EX/greet.yaml" >/dev/null
    run plan build "$EX/greet.yaml" --check
    [ "$status" -eq 0 ]
    [[ "$output" == *"reproducible"* ]]
    recipe noisy 1.0.0 'mkdir -p $out; echo stable >$out/same; head -c 16 /dev/urandom | od -x >$out/random'
    plan build "$R/noisy.yaml" >/dev/null
    run plan build "$R/noisy.yaml" --check
    [ "$status" -eq 1 ]
    [[ "$output" == *"not reproducible"* ]]
    [[ "$output" == *"random: was file"* ]]
    [[ "$output" != *"same:"* ]]
    leftovers
}

@test "build: --check before any build explains" {
    run plan build "$EX/greet.yaml" --check
    [ "$status" -eq 1 ]
    [[ "$output" == *"has not been built yet"* ]]
}

@test "build failure: exit 1, last lines of the log and its path, nothing in the store" {
    recipe broken 1.0.0 'echo compiling; echo "error: something is wrong" >&2; exit 3'
    run plan build "$R/broken.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"failed with exit status 3"* ]]
    [[ "$output" == *"| error: something is wrong"* ]]
    log=$(printf '%s\n' "$output" | sed -n 's/^full log: //p')
    [ -f "$log" ]
    grep -q compiling "$log"
    [ -z "$(ls "$ROOT/store")" ]
    leftovers
}

@test "build without \$out fails clearly" {
    # (in the sandbox $out is a mount point and cannot be removed)
    recipe nothing 1.0.0 'rm -rf "$out"; true'
    run plan build --no-sandbox "$R/nothing.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"did not leave a directory at \$out"* ]]
    leftovers
}

@test "build interrupted with Ctrl-C leaves nothing behind" {
    recipe slow 1.0.0 'mkdir -p $out; echo started; touch $out/partial; sleep 60'
    "$PLAN" --root "$ROOT" build "$R/slow.yaml" 2>"$BATS_TEST_TMPDIR/err" &
    pid=$!
    for _ in $(seq 1 300); do
        ls "$ROOT"/var/log/builds/building-*.log >/dev/null 2>&1 &&
            grep -q started "$ROOT"/var/log/builds/building-*.log && break
        sleep 0.1
    done
    kill -INT $pid
    status=0
    wait $pid || status=$?
    [ "$status" -eq 1 ]
    grep -q "interrupted; nothing was added" "$BATS_TEST_TMPDIR/err"
    [ -z "$(ls "$ROOT/store")" ]
    ! ls "$ROOT"/var/log/builds/building-*.log 2>/dev/null
    ! pgrep -f 'sleep 60' -P $$ >/dev/null
    leftovers
}

@test "sandbox: no network, read-only store, private /tmp, own hostname" {
    recipe probe 1.0.0 'mkdir -p $out
cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " " >$out/net
hostname >$out/hostname
if touch "$(dirname "$out")/intruder" 2>/dev/null; then echo rw; else echo ro; fi >$out/store
echo secret >/tmp/plan-sandbox-probe
ls /tmp >$out/tmp'
    run plan build "$R/probe.yaml"
    [ "$status" -eq 0 ]
    p=$output
    [ "$(cat "$p/net")" = "lo" ]
    [ "$(cat "$p/hostname")" = "plan-build" ]
    [ "$(cat "$p/store")" = "ro" ]
    [ ! -e /tmp/plan-sandbox-probe ] || [ "$(cat /tmp/plan-sandbox-probe)" != secret ]
    [ ! -e "$ROOT/store/intruder" ]
}

@test "--no-sandbox builds on the host (sees the host's network devices)" {
    recipe probe2 1.0.0 'mkdir -p $out; cat /proc/net/dev | tail -n +3 | wc -l >$out/n'
    run plan build --no-sandbox "$R/probe2.yaml"
    [ "$status" -eq 0 ]
    [ -f "$output/n" ]
    grep -q '"sandbox": false' "$output/.plan/manifest.json"
}

@test "build environment: clean, private HOME and TMPDIR, fixed locale and time zone" {
    recipe envprobe 1.0.0 'mkdir -p $out; env | sort >$out/env; umask >$out/umask'
    FOO_LEAK=1 run plan build "$R/envprobe.yaml"
    [ "$status" -eq 0 ]
    e="$output/env"
    ! grep -q FOO_LEAK "$e"
    grep -q '^LC_ALL=C$' "$e"
    grep -q '^TZ=UTC$' "$e"
    grep -q '^SOURCE_DATE_EPOCH=1$' "$e"
    grep -q "^HOME=$ROOT/store/.tmp/.*/home$" "$e"
    grep -q "^TMPDIR=$ROOT/store/.tmp/.*/tmp$" "$e"
    grep -q '^PLAN_JOBS=[0-9]' "$e"
    [ "$(cat "$output/umask")" = "0022" ]
}

@test "dependencies: env declarations and PLAN_DEP_ variables reach the build" {
    plan build "$EX/greet.yaml" >/dev/null
    cp "$EX/greet.yaml" "$R/"
    sed -i "s|path: ../src/greet|path: ${EX%/recipes}/src/greet|" "$R/greet.yaml"
    recipe user 1.0.0 'mkdir -p $out; echo "$CPATH" >$out/cpath; echo "$PLAN_DEP_GREET" >$out/dep' 'depends:
  greet: ~1.0'
    run plan build "$R/user.yaml"
    [ "$status" -eq 0 ]
    greet=$(ls -d "$ROOT"/store/*-greet-1.0.0)
    [ "$(cat "$output/cpath")" = "$greet/include" ]
    [ "$(cat "$output/dep")" = "$greet" ]
    # declared run-time dependencies are references even when unnamed
    plan store path-info "$output" | grep -q "greet-1.0.0"
}

@test "dependencies: a missing one and an unsatisfiable range are explained" {
    recipe needy 1.0.0 'mkdir -p $out' 'depends:
  nosuch: ^1.0.0'
    run plan build "$R/needy.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"dependencies of 'needy-1.0.0' cannot be satisfied"* ]]
    [[ "$output" == *"nosuch, which is not a known package"* ]]
    recipe lib 1.2.0 'mkdir -p $out'
    recipe picky 1.0.0 'mkdir -p $out' 'depends:
  lib: ^2.0.0'
    run plan build "$R/picky.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"lib has only 1.2.0"* ]]
    [ -z "$(ls "$ROOT/store" 2>/dev/null)" ]
}

@test "dependencies: one version per name for the whole graph, conflicts explained" {
    recipe lib 1.5.0 'mkdir -p $out'
    sed 's/1.5.0/2.1.0/g' "$R/lib.yaml" >"$R/lib-2.yaml"
    recipe mid 1.0.0 'mkdir -p $out' 'depends:
  lib: ^2.0.0'
    recipe top 1.0.0 'mkdir -p $out' 'depends:
  lib: ^1.0.0
  mid: ^1.0.0'
    run plan build "$R/top.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"cannot be satisfied together"* ]]
    [[ "$output" == *"mid"*"lib ^2.0.0"* ]]
    [ -z "$(ls "$ROOT/store" 2>/dev/null)" ]
}

@test "dependencies: the highest satisfying version is chosen; cycles are refused" {
    recipe lib 1.2.0 'mkdir -p $out; echo 1.2.0 >$out/v'
    sed 's/1.2.0/1.9.3/g' "$R/lib.yaml" >"$R/lib-1.9.yaml"
    sed 's/1.2.0/2.0.0/g' "$R/lib.yaml" >"$R/lib-2.yaml"
    recipe app 1.0.0 'mkdir -p $out; cat $PLAN_DEP_LIB/v >$out/got' 'depends:
  lib: ^1.0.0'
    run plan build "$R/app.yaml"
    [ "$status" -eq 0 ]
    [ "$(cat "$output/got")" = "1.9.3" ]
    recipe ping 1.0.0 'mkdir -p $out' 'depends:
  pong: "*"'
    recipe pong 1.0.0 'mkdir -p $out' 'depends:
  ping: "*"'
    run plan build "$R/ping.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"dependency cycle"* ]]
}

@test "sources: a tarball by file:// URL, verified by sha256, with strip-components" {
    mkdir -p "$BATS_TEST_TMPDIR/pkg/tool-1.0/bin"
    printf '#!/bin/sh\necho tool\n' >"$BATS_TEST_TMPDIR/pkg/tool-1.0/bin/tool"
    chmod +x "$BATS_TEST_TMPDIR/pkg/tool-1.0/bin/tool"
    tar -C "$BATS_TEST_TMPDIR/pkg" -czf "$BATS_TEST_TMPDIR/tool.tar.gz" tool-1.0
    sum=$(sha256sum "$BATS_TEST_TMPDIR/tool.tar.gz" | cut -d' ' -f1)
    recipe tool 1.0.0 'cp -r . $out' "sources:
  - url: file://$BATS_TEST_TMPDIR/tool.tar.gz
    sha256: $sum
    strip-components: 1"
    run plan build "$R/tool.yaml"
    [ "$status" -eq 0 ]
    [ "$("$output/bin/tool")" = tool ]
    # cached by hash: the source can go away
    rm "$BATS_TEST_TMPDIR/tool.tar.gz"
    sed -i 's/cp -r/cp -R/' "$R/tool.yaml"
    run plan build "$R/tool.yaml"
    [ "$status" -eq 0 ]
}

@test "sources: a wrong hash is refused and nothing is cached" {
    echo data >"$BATS_TEST_TMPDIR/file.txt"
    recipe bad 1.0.0 'cp file.txt $out' "sources:
  - url: file://$BATS_TEST_TMPDIR/file.txt
    sha256: 0000000000000000000000000000000000000000000000000000000000000000"
    run plan build "$R/bad.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"but the recipe declares 0000"* ]]
    [ -z "$(ls "$ROOT/cache/sources" 2>/dev/null)" ]
    leftovers
}

@test "sources: a hostile tarball is refused" {
    mkdir -p "$BATS_TEST_TMPDIR/h"
    echo evil >"$BATS_TEST_TMPDIR/h/evil"
    tar -C "$BATS_TEST_TMPDIR/h" -cf "$BATS_TEST_TMPDIR/evil.tar" --transform 's|^evil|../../escaped|' evil
    sum=$(sha256sum "$BATS_TEST_TMPDIR/evil.tar" | cut -d' ' -f1)
    recipe hostile 1.0.0 'mkdir -p $out' "sources:
  - url: file://$BATS_TEST_TMPDIR/evil.tar
    sha256: $sum"
    run plan build "$R/hostile.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"refusing source"* ]]
    [ ! -e "$ROOT/store/escaped" ] && [ ! -e "$ROOT/store/.tmp/escaped" ]
    leftovers
}

@test "plan log shows the build log of a store path" {
    p=$(plan build "$EX/greet.yaml")
    run plan log "$p"
    [ "$status" -eq 0 ]
    [[ "$output" == *"libgreet.so"* ]]
    run plan build -L "$EX/greet.yaml"
    [ "$status" -eq 0 ]
    a=$(plan store add "$SRC" --name x --version 1)
    run plan log "$a"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no build log"* ]]
}

@test "-L streams the build log" {
    recipe chatty 1.0.0 'mkdir -p $out; echo line-one; echo line-two'
    run plan build -L "$R/chatty.yaml"
    [ "$status" -eq 0 ]
    [[ "$output" == *"line-one"*"line-two"* ]]
}

@test "every example recipe builds" {
    for r in "$EX"/*.yaml; do
        run plan build "$r"
        [ "$status" -eq 0 ] || { echo "$r: $output"; false; }
    done
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
}

@test "sources over http from a real server on loopback: fetched once, verified, cached" {
    mkdir -p "$BATS_TEST_TMPDIR/www/pkg/data-1.0"
    echo "served over http" >"$BATS_TEST_TMPDIR/www/pkg/data-1.0/README"
    tar -C "$BATS_TEST_TMPDIR/www/pkg" -czf "$BATS_TEST_TMPDIR/www/data-1.0.tar.gz" data-1.0
    sum=$(sha256sum "$BATS_TEST_TMPDIR/www/data-1.0.tar.gz" | cut -d' ' -f1)
    "$PLAN_TOOLS/httpd" "$BATS_TEST_TMPDIR/www" "$BATS_TEST_TMPDIR/port" >/dev/null 2>&1 3>&- &
    server=$!
    echo $server >"$BATS_TEST_TMPDIR/server.pid"
    for _ in $(seq 1 50); do [ -s "$BATS_TEST_TMPDIR/port" ] && break; sleep 0.1; done
    port=$(cat "$BATS_TEST_TMPDIR/port")
    recipe fromweb 1.0.0 'cp -r . $out' "sources:
  - url: http://127.0.0.1:$port/data-1.0.tar.gz
    sha256: $sum
    strip-components: 1"
    run plan build "$R/fromweb.yaml"
    [ "$status" -eq 0 ]
    [ "$(cat "$output/README")" = "served over http" ]
    [ -f "$ROOT/cache/sources/sha256-$sum" ]
    # a missing file is a clear error (another hash: the cache has this one)
    other=$(echo nothing | sha256sum | cut -d' ' -f1)
    recipe missing 1.0.0 'true' "sources:
  - url: http://127.0.0.1:$port/nothing.tar.gz
    sha256: $other"
    run plan build "$R/missing.yaml"
    [ "$status" -eq 1 ]
    [[ "$output" == *"cannot fetch 'http://127.0.0.1:$port/nothing.tar.gz'"*"404"* ]]
    # the server gone, the cached source still builds
    kill $server
    sed -i 's/cp -r/cp -R/' "$R/fromweb.yaml"
    run plan build "$R/fromweb.yaml"
    [ "$status" -eq 0 ]
}

@test "an unprivileged user builds in a user namespace sandbox" {
    unpriv_dir
    cp -R "${EX%/recipes}" "$u/ex"
    chmod -R a+rwX "$u"
    run setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$u" \
        "$PLAN" --root "$u/root" build "$u/ex/recipes/hello.yaml"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    grep -q '"sandbox": true' "$output/.plan/manifest.json"
    [ "$("$output/bin/hello" u)" = "hello, u (from libgreet 1.0.0)" ]
    chmod -R u+w "$u"
    rm -rf "$u"
}
