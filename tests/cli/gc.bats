#!/usr/bin/env bats
# plan gc: roots (profiles, live run roots, build links, named roots),
# deleting generations, concurrency with envs and builds.

load helpers

setup() {
    common_setup
    unset PLAN_PROFILE PLAN_CONFIG PLAN_ROOT
    EX="${PLAN_SRC:-$PWD}/examples/recipes"
    R="$BATS_TEST_TMPDIR/recipes"
    mkdir -p "$R"
    export PLAN_RUN_DIR="$BATS_TEST_TMPDIR/run"
    mkdir -p "$PLAN_RUN_DIR"
    M="$BATS_TEST_TMPDIR/marks"
    mkdir -p "$M"
    PROF="$ROOT/profiles/default"
}

teardown() { bg_cleanup; }

# add_blob NAME BYTES: an unrooted store path of about BYTES; prints it
add_blob() {
    mkdir -p "$BATS_TEST_TMPDIR/blob-$1"
    head -c "$2" /dev/urandom >"$BATS_TEST_TMPDIR/blob-$1/data"
    plan store add "$BATS_TEST_TMPDIR/blob-$1" --name "$1" --version 1
}

ps_lists() { plan ps --json 2>/dev/null | grep -qF "$1"; }

@test "gc deletes what no root reaches and keeps the profile's closure" {
    plan -q install --recipes "$EX" hello
    blob=$(add_blob junk 1000)
    motd=$(plan build "$EX/motd.yaml")
    hello=$(ls -d "$ROOT"/store/*-hello-1.0.0)
    greet=$(ls -d "$ROOT"/store/*-greet-1.0.0)
    run plan gc
    [ "$status" -eq 0 ]
    [[ "$output" == *"deleted 2 paths"* ]]
    [ ! -e "$blob" ] && [ ! -e "$motd" ]
    [ -d "$hello" ] && [ -d "$greet" ]
    [ "$("$PROF/current/bin/hello" gc)" = "hello, gc (from libgreet 1.0.0)" ]
    # the database forgot them too
    run plan store path-info "$motd"
    [ "$status" -eq 1 ]
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    # nothing more to do
    run plan gc
    [ "$status" -eq 0 ]
    [[ "$output" == *"deleted 0 paths"* ]]
    # a rebuild of what was collected works (the realisation is forgotten)
    run plan build "$EX/motd.yaml"
    [ "$status" -eq 0 ]
    [ -f "$output/share/motd/welcome.txt" ]
    plan store verify >/dev/null
}

@test "gc --dry-run lists what it would delete and deletes nothing" {
    plan -q install --recipes "$EX" motd
    a=$(add_blob a 100)
    b=$(add_blob b 100)
    before=$(ls "$ROOT/store")
    run plan gc --dry-run
    [ "$status" -eq 0 ]
    [[ "$output" == *"would delete 2 paths"* ]]
    [[ "$output" == *"$a"* && "$output" == *"$b"* ]]
    [[ "$output" != *motd* ]]
    [ "$(ls "$ROOT/store")" = "$before" ]
    run plan --json gc -n
    [[ "$output" == *'"dry_run": true'* ]]
    [ "$(ls "$ROOT/store")" = "$before" ]
    plan store verify >/dev/null
    run plan gc
    [[ "$output" == *"deleted 2 paths"* ]]
}

@test "gc --json: dry_run, deleted, freed, live, skipped, stale_run_roots, generations_deleted" {
    plan -q install --recipes "$EX" hello
    a=$(add_blob jsonblob 5000)
    run plan --json gc
    [ "$status" -eq 0 ]
    [[ "$output" == *'"dry_run": false'* ]]
    [[ "$output" == *"\"${a##*/}\""* ]]
    [[ "$output" =~ \"freed\":\ ([0-9]+) ]]
    [ "${BASH_REMATCH[1]}" -ge 5000 ]
    [[ "$output" == *'"live": 2'* ]]
    [[ "$output" == *'"skipped": 0'* ]]
    [[ "$output" == *'"stale_run_roots": 0'* ]]
    [[ "$output" == *'"generations_deleted": 0'* ]]
}

@test "--delete-generations +1 --yes deletes old generations, never the current one" {
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    tool_recipe "$R" lib 1.0.0 lib 'lib 1.0.0'
    plan -q install --recipes "$R" 'app@^1'              # 1: app 1.0.0
    tool_recipe "$R" app 1.1.0 app 'app 1.1.0'
    plan -q upgrade                                        # 2: app 1.1.0
    plan -q install lib                                    # 3: app 1.1.0, lib
    plan -q rollback --to 2
    old=$(ls -d "$ROOT"/store/*-app-1.0.0)
    # a dry run deletes neither generations nor paths, and needs no --yes
    run plan gc --dry-run --delete-generations +1 </dev/null
    [ "$status" -eq 0 ]
    [[ "$output" == *"would delete generation 1"* ]]
    [ -f "$PROF/generations/1.json" ] && [ -d "$old" ]
    run plan --json gc --delete-generations +1 --yes
    [ "$status" -eq 0 ]
    [[ "$output" == *'"generations_deleted": 1'* ]]
    [ ! -e "$PROF/generations/1.json" ] && [ ! -e "$PROF/generations/1" ]
    # the current one (2) is kept although it is not among the newest 1
    [ "$(readlink "$PROF/current")" = generations/2 ]
    [ -f "$PROF/generations/2.json" ] && [ -f "$PROF/generations/3.json" ]
    [ ! -e "$old" ]
    [ "$("$PROF/current/bin/app")" = "app 1.1.0" ]
    [ "$("$PROF/generations/3/bin/lib")" = "lib 1.0.0" ]
    run plan generations
    [ "${#lines[@]}" -eq 2 ]
    # again: nothing left to delete
    run plan --json gc --delete-generations +1 --yes
    [[ "$output" == *'"generations_deleted": 0'* ]]
    plan store verify >/dev/null
}

@test "--delete-generations by age (older than 30d) spares the current one" {
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    tool_recipe "$R" lib 1.0.0 lib 'lib 1.0.0'
    plan -q install --recipes "$R" app
    plan -q install lib
    # make both generations old (their record holds the date)
    sed -i 's/"created": [0-9]*/"created": 1000000000/' "$PROF"/generations/*.json
    run plan --json gc --delete-generations 30d --yes
    [ "$status" -eq 0 ]
    [[ "$output" == *'"generations_deleted": 1'* ]]
    [ ! -e "$PROF/generations/1.json" ]
    [ "$(readlink "$PROF/current")" = generations/2 ]
    # a young generation is not deleted
    plan -q install --profile p2 --recipes "$R" app
    run plan --json gc --delete-generations 1d --yes
    [[ "$output" == *'"generations_deleted": 0'* ]]
}

@test "--delete-generations without --yes and without a terminal refuses" {
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    tool_recipe "$R" lib 1.0.0 lib 'lib 1.0.0'
    plan -q install --recipes "$R" app
    plan -q install lib
    junk=$(add_blob junk 100)
    run plan gc --delete-generations +1 </dev/null
    [ "$status" -eq 1 ]
    [[ "$output" == *"--yes"* ]]
    [ -f "$PROF/generations/1.json" ]
    [ -d "$junk" ]       # and nothing else was collected either
    run plan gc --delete-generations nonsense --yes
    [ "$status" -eq 2 ]
    run plan gc --delete-generations +0 --yes
    [ "$status" -eq 2 ]
    [ -f "$PROF/generations/1.json" ]
}

@test "gc while an env runs deletes nothing it uses; afterwards it does" {
    plan -q install --recipes "$EX" hello
    hello=$(ls -d "$ROOT"/store/*-hello-1.0.0)
    greet=$(ls -d "$ROOT"/store/*-greet-1.0.0)
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" env --recipes "$EX" hello -- sh -c '
        echo started >$1/started
        while [ ! -e $1/go ]; do sleep 0.05; done
        hello live' sh "$M"
    pid=$BG_PID
    wait_until 400 test -e "$M/started"
    # no profile keeps hello any more
    plan -q remove hello
    plan -q generations --delete 1
    run plan gc roots
    [[ "$output" != *profile*hello* ]]
    [[ "$output" == *"${hello##*/}"* ]]     # the env's session holds it
    run plan gc
    [ "$status" -eq 0 ]
    [ -d "$hello" ] && [ -d "$greet" ]
    [ -n "$(run_roots)" ]
    # the running program still works
    touch "$M/go"
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/out"; false; }
    grep -q "hello, live (from libgreet 1.0.0)" "$BATS_TEST_TMPDIR/out"
    # the env is over: its paths go
    run plan gc
    [ "$status" -eq 0 ]
    [ ! -e "$hello" ] && [ ! -e "$greet" ]
    [ -z "$(run_roots)" ]
    plan store verify >/dev/null
}

@test "gc while an env runs a program over and over: every run works" {
    plan -q install --recipes "$EX" hello
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" env --recipes "$EX" hello -- sh -c '
        i=0
        while [ ! -e $1/go ]; do hello "run $i" >/dev/null || exit 9; i=$((i+1)); touch $1/started; done
        hello last' sh "$M"
    pid=$BG_PID
    wait_until 400 test -e "$M/started"
    plan -q remove hello
    plan -q generations --delete 1
    for _ in 1 2 3 4 5; do plan -q gc; done
    touch "$M/go"
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/out"; false; }
    grep -q "hello, last" "$BATS_TEST_TMPDIR/out"
}

@test "kill -9 of plan env and its command: gc removes the run root, then the paths" {
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" env --recipes "$EX" hello -- sh -c 'echo $$ >$1/child; exec sleep 30' sh "$M"
    pid=$BG_PID
    wait_until 400 test -s "$M/child"
    wait_until 100 ps_lists '"command": "sh -c'
    rr=$(run_roots)
    [ -d "$rr" ]
    # alive: gc keeps everything
    run plan --json gc
    [[ "$output" == *'"deleted": []'* ]]
    [ -d "$rr" ]
    child=$(cat "$M/child")
    kill -9 "$pid" "$child"
    wait "$pid" || true
    wait_until 200 proc_gone "$child"
    run plan --json gc
    [ "$status" -eq 0 ]
    [[ "$output" == *'"stale_run_roots": 1'* ]]
    [[ "$output" == *'-hello-1.0.0"'* && "$output" == *'-greet-1.0.0"'* ]]
    [ ! -e "$rr" ]
    [ -z "$(ls -A "$ROOT/var/gc/sessions")" ]
    run plan ps --json
    [[ "$output" == *'"run_roots": []'* ]]
    plan store verify >/dev/null
}

@test "kill -9 of plan env alone: the command still holds its plans" {
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" env --recipes "$EX" hello -- sh -c '
        echo $$ >$1/child
        while [ ! -e $1/go ]; do sleep 0.05; done
        hello orphan >$1/result' sh "$M"
    pid=$BG_PID
    wait_until 400 test -s "$M/child"
    child=$(cat "$M/child")
    kill -9 "$pid"
    wait "$pid" || true
    run plan gc
    [ "$status" -eq 0 ]
    store_has '*-hello-1.0.0' && store_has '*-greet-1.0.0'
    touch "$M/go"
    wait_until 200 proc_gone "$child"
    [ "$(cat "$M/result")" = "hello, orphan (from libgreet 1.0.0)" ]
    run plan gc
    ! store_has '*-hello-1.0.0'
    [ -z "$(run_roots)" ]
}

@test "plan build -o LINK keeps the path until the link is removed" {
    run plan build "$EX/hello.yaml" -o "$BATS_TEST_TMPDIR/result"
    [ "$status" -eq 0 ]
    hello=$output
    run plan gc roots
    [[ "$output" == *link*"$BATS_TEST_TMPDIR/result"*"${hello##*/}"* ]]
    run plan gc
    [ -d "$hello" ]
    store_has '*-greet-1.0.0'   # its closure too
    [ "$("$BATS_TEST_TMPDIR/result/bin/hello" link)" = "hello, link (from libgreet 1.0.0)" ]
    rm "$BATS_TEST_TMPDIR/result"
    run plan gc
    [ "$status" -eq 0 ]
    [ ! -e "$hello" ]
    ! store_has '*-greet-1.0.0'
    run plan gc roots
    [[ "$output" != *result* ]]
    plan store verify >/dev/null
}

@test "a build link pointed elsewhere no longer keeps the old path" {
    plan build "$EX/motd.yaml" -o "$BATS_TEST_TMPDIR/result" >/dev/null
    motd=$(readlink "$BATS_TEST_TMPDIR/result")
    ln -sfn /tmp "$BATS_TEST_TMPDIR/result"
    run plan gc
    [ "$status" -eq 0 ]
    [ ! -e "$motd" ]
    [ -L "$BATS_TEST_TMPDIR/result" ]   # gc does not touch the user's link
}

@test "gc add-root, roots, remove-root" {
    hello=$(plan build "$EX/hello.yaml")
    junk=$(add_blob junk 100)
    run plan gc add-root mine "$hello"
    [ "$status" -eq 0 ]
    run plan gc roots
    [ "$status" -eq 0 ]
    [[ "$output" == *mine*"${hello##*/}"* ]]
    run plan --json gc roots
    [[ "$output" == *'"source": "mine"'* && "$output" == *'"kind": '* ]]
    run plan gc
    [ -d "$hello" ] && [ ! -e "$junk" ]
    store_has '*-greet-1.0.0'
    # errors: not a store path, an unknown name, missing arguments
    run plan gc add-root bad /etc
    [ "$status" -eq 1 ]
    [[ "$output" == *"not inside the store"* ]]
    run plan gc add-root bad "$ROOT/store/nosuch-x-1"
    [ "$status" -eq 1 ]
    run plan gc remove-root nosuch
    [ "$status" -eq 1 ]
    [[ "$output" == *"no root named 'nosuch'"* ]]
    run plan gc add-root onlyname
    [ "$status" -eq 2 ]
    run plan gc frobnicate
    [ "$status" -eq 2 ]
    run plan gc remove-root mine
    [ "$status" -eq 0 ]
    run plan gc roots
    [[ "$output" != *mine* ]]
    run plan gc
    [ ! -e "$hello" ]
    ! store_has '*-greet-1.0.0'
    plan store verify >/dev/null
}

@test "gc racing a build: the build's output is registered, its inputs survive, verify passes" {
    # an input that nothing roots, used by a slow build
    cp "$EX/greet.yaml" "$R/"
    sed -i "s|path: ../src/greet|path: ${EX%/recipes}/src/greet|" "$R/greet.yaml"
    plan build "$R/greet.yaml" >/dev/null
    plan_recipe "$R" slowuser 1.0.0 'mkdir -p $out/lib
i=0; while [ $i -lt 30 ]; do sleep 0.05; i=$((i+1)); done
cp "$PLAN_DEP_GREET/lib/libgreet.so" $out/lib/
echo "$PLAN_DEP_GREET" >$out/greet-path' 'depends:
  greet: ^1.0.0'
    start_bg "$BATS_TEST_TMPDIR/build.out" "$PLAN" --root "$ROOT" build "$R/slowuser-1.0.0.yaml" -o "$BATS_TEST_TMPDIR/result"
    pid=$BG_PID
    runs=0 failures=0
    while kill -0 "$pid" 2>/dev/null; do
        "$PLAN" --root "$ROOT" -q gc >>"$BATS_TEST_TMPDIR/gc.out" 2>&1 || failures=$((failures + 1))
        runs=$((runs + 1))
    done
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/build.out"; false; }
    [ "$runs" -gt 0 ]
    [ "$failures" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/gc.out"; false; }
    out=$(readlink "$BATS_TEST_TMPDIR/result")
    [ -f "$out/lib/libgreet.so" ]
    [ -d "$(cat "$out/greet-path")" ]
    run plan store path-info "$out"
    [ "$status" -eq 0 ]
    [[ "$output" == *greet-1.0.0* ]]
    # another gc keeps it (the link) and its reference
    plan -q gc
    [ -d "$out" ] && [ -d "$(cat "$out/greet-path")" ]
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    [ -z "$(ls -A "$ROOT/store/.tmp" 2>/dev/null)" ]
}

@test "gc racing installs: every generation is complete and verify passes" {
    tool_recipe "$R" app 1.0.0 app 'app 1.0.0'
    plan_recipe "$R" slow 1.0.0 'mkdir -p $out/share; i=0; while [ $i -lt 20 ]; do sleep 0.05; i=$((i+1)); done; echo slow >$out/share/slow'
    plan -q install --recipes "$R" app
    start_bg "$BATS_TEST_TMPDIR/install.out" "$PLAN" --root "$ROOT" install slow
    pid=$BG_PID
    while kill -0 "$pid" 2>/dev/null; do "$PLAN" --root "$ROOT" -q gc || true; done
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/install.out"; false; }
    [ "$(cat "$PROF/current/share/slow")" = slow ]
    [ "$("$PROF/current/bin/app")" = "app 1.0.0" ]
    plan -q gc
    [ "$(cat "$PROF/current/share/slow")" = slow ]
    plan store verify --check-contents >/dev/null
}

@test "--max-freed stops once it has freed that much" {
    for n in 1 2 3; do add_blob "big$n" 20000 >/dev/null; done
    run plan --json gc --max-freed 1K
    [ "$status" -eq 0 ]
    [ "$(printf '%s\n' "$output" | grep -c -- '-big[123]-1"')" -eq 1 ]
    [ "$(ls "$ROOT/store" | grep -c -- '-big')" -eq 2 ]
    run plan gc --max-freed 30K
    [ "$status" -eq 0 ]
    [[ "$output" == *"deleted 2 paths"* ]]
    [ "$(ls "$ROOT/store" | grep -c -- '-big' || true)" -eq 0 ]
    run plan gc --max-freed abc
    [ "$status" -eq 2 ]
    run plan gc --max-freed 0
    [ "$status" -eq 2 ]
    plan store verify >/dev/null
}

@test "gc empties the download cache, not while an install holds it, and only downloads" {
    A="$ROOT/cache/archives"
    mkdir -p "$A"
    hex=$(printf '%064d' 7)
    head -c 3000 /dev/urandom >"$A/$hex.tar.zst"
    head -c 500 /dev/urandom >"$A/.part-$hex"
    echo keep >"$A/notes.txt"
    # an install (or repair) holds the cache's lock shared while it uses it
    # (-o: the lock stays with flock itself, so killing it releases it)
    start_bg "$BATS_TEST_TMPDIR/flock.out" flock -s -o "$A/.lock" sleep 60
    wait_until 100 test -e "$A/.lock"
    sleep 0.2
    run plan --json gc
    [ "$status" -eq 0 ]
    jq -e '.downloads == {"files": 0, "bytes": 0, "busy": true}' <<<"$output" >/dev/null || { echo "$output"; false; }
    [ -e "$A/$hex.tar.zst" ] && [ -e "$A/.part-$hex" ]
    run plan gc
    [[ "$output" == *"downloaded archives kept: an install or repair is using them now"* ]]
    bg_cleanup
    run plan --json gc --dry-run
    jq -e '.downloads == {"files": 2, "bytes": 3500, "busy": false}' <<<"$output" >/dev/null || { echo "$output"; false; }
    [ -e "$A/$hex.tar.zst" ]
    run plan gc
    [ "$status" -eq 0 ]
    [[ "$output" == *"removed 2 downloaded archives"* ]] || { echo "$output"; false; }
    [ ! -e "$A/$hex.tar.zst" ] && [ ! -e "$A/.part-$hex" ]
    [ "$(cat "$A/notes.txt")" = keep ]
}

@test "gc drops the environment cache entries whose paths it collected, keeps the others" {
    plan -q install --recipes "$EX" hello
    plan -q env --recipes "$EX" hello -- true
    plan -q env --recipes "$EX" motd -- true
    [ "$(ls "$ROOT/var/cache/env" | wc -l)" -eq 2 ]
    run plan --json gc --dry-run
    [ "$(jq -r .env_cache_pruned <<<"$output")" = 0 ] || { echo "$output"; false; }
    run plan --json gc
    [ "$status" -eq 0 ]
    # motd's paths had no root: gone, and its entry with them; hello's stays
    [ "$(jq -r .env_cache_pruned <<<"$output")" = 1 ] || { echo "$output"; false; }
    [ "$(ls "$ROOT/var/cache/env" | wc -l)" -eq 1 ]
    # the entry left still re-enters without resolving anything
    run plan env --recipes "$EX" hello -- hello
    [ "$status" -eq 0 ]
    [[ "$output" == "hello, world"* ]] || { echo "$output"; false; }
    # an entry that cannot be read is dropped too
    echo garbage >"$ROOT/var/cache/env/$(printf '%064d' 1).lock"
    run plan --json gc
    [ "$(jq -r .env_cache_pruned <<<"$output")" = 1 ]
}

@test "usage: unknown option, extra arguments to roots" {
    run plan gc --frobnicate
    [ "$status" -eq 2 ]
    run plan gc roots extra
    [ "$status" -eq 2 ]
}

@test "gc racing plan env: every env finds its plans whole" {
    start_bg "$BATS_TEST_TMPDIR/gc.out" bash -c '
        n=0
        while [ ! -e "$1/stop" ]; do "$2" --root "$3" -q gc || echo "gc failed" >&2; n=$((n+1)); done
        echo "runs=$n"' sh "$M" "$PLAN" "$ROOT"
    gcpid=$BG_PID
    for i in 1 2 3 4 5 6; do
        run plan env --recipes "$EX" hello -- hello "run $i"
        [ "$status" -eq 0 ] || { echo "run $i: $output"; touch "$M/stop"; false; }
        [ "$output" = "hello, run $i (from libgreet 1.0.0)" ]
    done
    touch "$M/stop"
    wait "$gcpid"
    grep -q 'runs=[1-9]' "$BATS_TEST_TMPDIR/gc.out"
    ! grep -q 'gc failed' "$BATS_TEST_TMPDIR/gc.out"
    plan store verify >/dev/null
}
