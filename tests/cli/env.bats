#!/usr/bin/env bats
# plan env: run roots, exit statuses and signals, --pure, --keep, plan.yaml
# and --frozen, re-entry, plan ps, collisions.

load helpers
bats_require_minimum_version 1.5.0

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
}

teardown() {
    bg_cleanup
    if [ -f "$BATS_TEST_TMPDIR/made-shm-dir" ]; then rm -rf "$(cat "$BATS_TEST_TMPDIR/made-shm-dir")"; fi
    unpriv_cleanup
    true
}

# no run root and no session file left behind
nothing_left() {
    [ -z "$(run_roots)" ] || { echo "run roots left: $(run_roots)"; return 1; }
    [ -z "$(ls -A "$ROOT/var/gc/sessions" 2>/dev/null)" ] ||
        { echo "sessions left: $(ls -A "$ROOT/var/gc/sessions")"; return 1; }
}

# a project folder $P: copies of the example recipes and sources, a plan.yaml
make_project() {
    P="$BATS_TEST_TMPDIR/project"
    mkdir -p "$P"
    cp -R "${EX%/recipes}/recipes" "${EX%/recipes}/src" "$P/"
    cat >"$P/plan.yaml" <<'YAML'
packages:
  hello: ^1.0.0
recipes:
  - recipes
env:
  GREETING: hi
YAML
    cd "$P"
}

colliding_recipes() {
    for x in ta tb; do
        plan_recipe "$R" "$x" 1.0.0 "mkdir -p \$out/bin
printf '#!/bin/sh\\necho from-$x\\n' >\$out/bin/tool
chmod +x \$out/bin/tool
echo identical >\$out/bin/same" 'env:
  PATH: prepend bin'
    done
}

ps_lists() { plan ps --json 2>/dev/null | grep -qF "$1"; }

@test "plan env NAME -- CMD runs CMD with the plan, then removes the run root" {
    run plan env --recipes "$EX" hello -- hello env
    [ "$status" -eq 0 ]
    [ "$output" = "hello, env (from libgreet 1.0.0)" ]
    nothing_left
    # while it runs, the run root is there and holds the farm
    run plan env --recipes "$EX" hello -- sh -c 'test -d "$PLAN_RUN_ROOT" && test -x "$PLAN_ENV/bin/hello" && echo "$PLAN_RUN_ROOT"'
    [ "$status" -eq 0 ]
    [[ "$output" == "$PLAN_RUN_DIR"/plan-* ]]
    [ ! -e "$output" ]
    nothing_left
}

@test "a name asked for more than once is one plan of the environment" {
    run plan env --recipes "$EX" hello hello greet hello -- hello twice
    [ "$status" -eq 0 ]
    [ "$output" = "hello, twice (from libgreet 1.0.0)" ]
    nothing_left
}

@test "the exit status is the command's; a missing command is 127" {
    run plan env --recipes "$EX" hello -- sh -c 'exit 7'
    [ "$status" -eq 7 ]
    run plan env --recipes "$EX" hello -- false
    [ "$status" -eq 1 ]
    run -127 plan env --recipes "$EX" hello -- no-such-command-here
    [ "$status" -eq 127 ]
    [[ "$output" == *"no-such-command-here"* ]]
    nothing_left
}

@test "a command killed by signal N gives 128+N" {
    run plan env --recipes "$EX" hello -- sh -c 'kill -KILL $$'
    [ "$status" -eq 137 ]
    run plan env --recipes "$EX" hello -- sh -c 'kill -TERM $$'
    [ "$status" -eq 143 ]
    run plan env --recipes "$EX" hello -- sh -c 'kill -SEGV $$'
    [ "$status" -eq 139 ]
    nothing_left
}

@test "--pure: a variable set outside is gone and PATH holds only the environment's folders" {
    FOO=bar run plan env --recipes "$EX" hello -- /bin/sh -c 'echo "FOO=${FOO-unset}"'
    [ "$output" = "FOO=bar" ]
    FOO=bar run plan env --pure --recipes "$EX" hello motd -- /bin/sh -c '
        echo "FOO=${FOO-unset}"; echo "HOME=$HOME"; echo "$PATH"; hello pure'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "FOO=unset" ]
    [ "${lines[1]}" = "HOME=$HOME" ]
    [ -n "${lines[2]}" ]
    IFS=: read -ra dirs <<<"${lines[2]}"
    for d in "${dirs[@]}"; do
        [[ "$d" == "$PLAN_RUN_DIR"/plan-*/env/* ]] || { echo "PATH has '$d'"; false; }
    done
    [ "${lines[3]}" = "hello, pure (from libgreet 1.0.0)" ]
    # the plans' own variables are still set
    run plan env --pure --recipes "$EX" motd -- /bin/sh -c 'echo "$MOTD_DIR"'
    [[ "$output" == *motd* ]]
    nothing_left
}

@test "the environment: PLAN_ENV first on PATH, env declarations pointing into the farm" {
    run plan env --recipes "$EX" hello motd -- sh -c '
        echo "$PLAN_ENV"; echo "$PATH"; echo "$CPATH"; echo "$MOTD_DIR"; cat "$MOTD_DIR/welcome.txt" >/dev/null && echo read'
    [ "$status" -eq 0 ]
    farm=${lines[0]}
    [[ "$farm" == "$PLAN_RUN_DIR"/plan-*/env ]]
    [[ "${lines[1]}" == "$farm/bin:"* ]]
    [[ "${lines[2]}" == "$farm/include"* ]]
    [ -n "${lines[3]}" ]
    [ "${lines[4]}" = read ]
}

@test "--keep leaves the run root in place, with its farm" {
    run plan env --keep --recipes "$EX" hello -- hello keep
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"hello, keep"* ]]
    [[ "$output" == *"kept the run root"* ]]
    rr=$(run_roots)
    [ -n "$rr" ]
    [ "$(printf '%s\n' "$rr" | wc -l)" -eq 1 ]
    [ "$("$rr/env/bin/hello" again)" = "hello, again (from libgreet 1.0.0)" ]
}

@test "a kept run root is the user's: plan says so, and neither plan env nor gc removes it" {
    run plan env --keep --recipes "$EX" hello -- true
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"kept the run root"*"remove it yourself"* ]]
    kept=$(run_roots)
    [ -d "$kept" ]
    # even with -q the user is told where it is
    run plan -q env --keep --recipes "$EX" hello -- true
    [[ "$output" == *"kept the run root"* ]]
    run plan env --recipes "$EX" hello -- true
    [ "$status" -eq 0 ]
    run plan gc
    [ "$status" -eq 0 ]
    [ -d "$kept" ]
    [ -z "$(ls -A "$ROOT/var/gc/sessions")" ]
    [ "$(run_roots | wc -l)" -eq 2 ]
}

@test "an error inside plan leaves no run root and no session" {
    run plan env --recipes "$EX" nosuch -- true
    [ "$status" -eq 1 ]
    [[ "$output" == *"nosuch"* ]]
    nothing_left
    run plan env --recipes "$EX" 'hello@^9' -- true
    [ "$status" -eq 1 ]
    nothing_left
    plan_recipe "$R" broken 1.0.0 'exit 4'
    run plan env --recipes "$R" broken -- true
    [ "$status" -eq 1 ]
    [[ "$output" == *"exit status 4"* ]]
    nothing_left
    colliding_recipes
    run plan env --recipes "$R" ta tb -- true
    [ "$status" -eq 1 ]
    nothing_left
    run plan env --recipes "$R" --prefer nosuch ta -- true
    [ "$status" -eq 1 ]
    nothing_left
    run plan env hello -- true   # no recipe repository
    [ "$status" -eq 1 ]
    [[ "$output" == *"--recipes"* ]]
    nothing_left
}

@test "usage errors: options after the names, nothing after --, names with --frozen" {
    run plan env hello --keep -- true
    [ "$status" -eq 2 ]
    [[ "$output" == *"options go before the plans"* ]]
    run plan env --recipes "$EX" hello --
    [ "$status" -eq 2 ]
    run plan env --frozen hello -- true
    [ "$status" -eq 2 ]
    run plan env --strategy sideways --recipes "$EX" hello -- true
    [ "$status" -eq 2 ]
    run plan env --choose bin/tool --recipes "$EX" hello -- true
    [ "$status" -eq 2 ]
    nothing_left
}

@test "no names and no plan.yaml: the error says what to do" {
    cd "$BATS_TEST_TMPDIR"
    run plan env -- true
    [ "$status" -eq 1 ]
    [[ "$output" == *"no plan.yaml"* ]]
    [[ "$output" == *"plan env NAME"* ]]
    nothing_left
}

@test "plan.yaml: its packages and env; plan.lock is written, then used as it is" {
    make_project
    [ ! -e plan.lock ]
    run plan env -- sh -c 'hello project; echo "GREETING=$GREETING"'
    [ "$status" -eq 0 ]
    [[ "$output" == *"hello, project (from libgreet 1.0.0)"* ]]
    [[ "$output" == *"GREETING=hi"* ]]
    [[ "$output" == *"wrote plan.lock"* ]]
    [ -f plan.lock ]
    grep -q '"format": "plan-lock-v1"' plan.lock
    # the lock is the one 'plan lock' writes
    plan lock --check
    cp plan.lock "$BATS_TEST_TMPDIR/lock.1"
    run plan env -- hello again
    [ "$status" -eq 0 ]
    [[ "$output" != *"wrote plan.lock"* ]]
    cmp plan.lock "$BATS_TEST_TMPDIR/lock.1"
    # -f names another file; its lock sits next to it
    mkdir sub
    printf 'packages:\n  motd: "*"\nrecipes:\n  - ../recipes\n' >sub/other.yaml
    run plan env -f sub/other.yaml -- sh -c 'test -d "$MOTD_DIR" && echo ok'
    [ "$status" -eq 0 ]
    [[ "$output" == *ok* ]]
    [ -f sub/other.lock ]   # FILE.yaml -> FILE.lock
    nothing_left
}

@test "--frozen without plan.lock fails clearly and writes nothing" {
    make_project
    run plan env --frozen -- hello x
    [ "$status" -eq 1 ]
    [[ "$output" == *"--frozen"* ]]
    [[ "$output" == *"plan.lock"* ]]
    [[ "$output" == *"does not exist"* ]]
    [[ "$output" == *"plan lock"* ]]
    [[ "$output" != *"hello, x"* ]]
    [ ! -e plan.lock ]
    [ -z "$(ls "$ROOT/store" 2>/dev/null)" ]
    nothing_left
}

@test "--frozen with a good lock runs, and leaves the lock alone" {
    make_project
    plan -q lock
    cp plan.lock "$BATS_TEST_TMPDIR/lock.1"
    run plan env --frozen -- sh -c 'hello frozen; echo "$GREETING"'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "hello, frozen (from libgreet 1.0.0)" ]
    [ "${lines[1]}" = hi ]
    cmp plan.lock "$BATS_TEST_TMPDIR/lock.1"
    # a newer version in the repository does not move a frozen lock
    sed 's/^version: 1.0.0/version: 1.1.0/' recipes/hello.yaml >recipes/hello-new.yaml
    run plan env --frozen -- hello frozen
    [ "$status" -eq 0 ]
    cmp plan.lock "$BATS_TEST_TMPDIR/lock.1"
    nothing_left
}

@test "--frozen with a stale lock fails: plan.yaml changed" {
    make_project
    plan -q lock
    cat >plan.yaml <<'YAML'
packages:
  hello: ^1.0.0
  motd: "*"
recipes:
  - recipes
env:
  GREETING: hi
YAML
    run plan env --frozen -- true
    [ "$status" -eq 1 ]
    [[ "$output" == *"stale"* ]]
    [[ "$output" == *"plan lock"* ]]
    # a changed range is a change too
    plan -q lock
    sed -i 's/hello: ^1.0.0/hello: ~1.0.0/' plan.yaml
    run plan env --frozen -- true
    [ "$status" -eq 1 ]
    [[ "$output" == *"stale"* ]]
    nothing_left
}

@test "--frozen with a stale lock fails: a locked recipe changed" {
    make_project
    plan -q lock
    cp plan.lock "$BATS_TEST_TMPDIR/lock.1"
    echo "# one more line" >>recipes/greet.yaml
    run plan env --frozen -- hello x
    [ "$status" -eq 1 ]
    [[ "$output" == *"stale"* ]]
    [[ "$output" == *"recipe"* ]]
    [[ "$output" != *"hello, x"* ]]
    cmp plan.lock "$BATS_TEST_TMPDIR/lock.1"
    # also after a first good run (whose result is cached)
    cp "${EX}/greet.yaml" recipes/greet.yaml
    run plan env --frozen -- hello x
    [ "$status" -eq 0 ]
    echo "# again" >>recipes/greet.yaml
    run plan env --frozen -- hello x
    [ "$status" -eq 1 ]
    [[ "$output" == *"stale"* ]]
    # a damaged lock is an error too
    cp "$BATS_TEST_TMPDIR/lock.1" plan.lock
    cp "${EX}/greet.yaml" recipes/greet.yaml
    echo '{' >plan.lock
    run plan env --frozen -- true
    [ "$status" -eq 1 ]
    nothing_left
}

@test "re-entry: the same request on an unchanged store builds nothing" {
    # own copies, so that the sources can be taken away
    cp -R "${EX%/recipes}/recipes" "${EX%/recipes}/src" "$BATS_TEST_TMPDIR/"
    ex="$BATS_TEST_TMPDIR/recipes"
    run plan -v env --recipes "$ex" hello -- hello one
    [ "$status" -eq 0 ]
    [[ "$output" == *"building hello-1.0.0"* ]]
    mv "$BATS_TEST_TMPDIR/src" "$BATS_TEST_TMPDIR/src.gone"
    run plan -v env --recipes "$ex" hello -- hello two
    [ "$status" -eq 0 ]
    [[ "$output" == *"hello, two (from libgreet 1.0.0)"* ]]
    [[ "$output" != *"building"* ]]
    [[ "$output" != *"copying"* && "$output" != *"hashing"* ]]
    nothing_left
}

@test "re-entry: a project re-entered with --frozen builds nothing" {
    make_project
    plan -q lock
    run plan -v env --frozen -- hello one
    [ "$status" -eq 0 ]
    [[ "$output" == *"building"* ]]
    mv src ../src.gone
    run plan -v env --frozen -- hello two
    [ "$status" -eq 0 ]
    [[ "$output" == *"hello, two"* ]]
    [[ "$output" != *"building"* ]]
    mv ../src.gone src
    nothing_left
}

@test "--frozen refuses a lock whose recipe is missing, and says which" {
    make_project
    plan -q env -- true
    plan env --frozen -- true
    mv recipes ../recipes.gone
    run plan env --frozen -- hello offline
    mv ../recipes.gone recipes
    [ "$status" -eq 1 ]
    [[ "$output" == *"stale"* ]]
    [[ "$output" == *"is missing"* ]]
    nothing_left
}

@test "SIGTERM, SIGHUP and SIGINT sent to plan reach the command; the run root goes" {
    for sig in TERM HUP INT; do
        rm -f "$M"/*
        start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" env --recipes "$EX" hello -- sh -c '
            trap "echo got-$2 >$1/got; exit 3" '"$sig"'
            echo $$ >$1/child
            while :; do sleep 0.05; done' sh "$M" "$sig"
        pid=$BG_PID
        wait_until 400 test -s "$M/child"
        rr=$(run_roots)
        [ -n "$rr" ]
        kill -"$sig" "$pid"
        status=0
        wait "$pid" || status=$?
        [ "$(cat "$M/got" 2>/dev/null)" = "got-$sig" ] || { echo "$sig: $(cat "$BATS_TEST_TMPDIR/out")"; false; }
        [ "$status" -eq 3 ]
        ! kill -0 "$(cat "$M/child")" 2>/dev/null
        [ ! -e "$rr" ]
        nothing_left
    done
}

@test "plan ps lists a live run: id, pid, plans, started, command; not after it ends" {
    run plan ps --json
    [ "$status" -eq 0 ]
    [[ "$output" == *'"run_roots": []'* ]]
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" env --recipes "$EX" hello -- sleep 30
    pid=$BG_PID
    wait_until 400 ps_lists '"command": "sleep 30"'
    run plan ps --json
    [ "$status" -eq 0 ]
    [[ "$output" =~ \"id\":\ \"[0-9a-f]+\" ]]
    [[ "$output" == *"\"pid\": $pid"* ]]
    [[ "$output" == *'"hello@1.0.0"'* && "$output" == *'"greet@1.0.0"'* ]]
    [[ "$output" =~ \"started\":\ [0-9]{9,} ]]
    [[ "$output" == *"\"run_root\": \"$PLAN_RUN_DIR/plan-"* ]]
    run plan ps
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == *ID*PID*PLANS*COMMAND* ]]
    [[ "${lines[1]}" == *"$pid"*"hello@1.0.0"*"sleep 30"* ]]
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 143 ]
    run plan ps --json
    [[ "$output" == *'"run_roots": []'* ]]
    nothing_left
}

@test "a run root left by kill -9 is removed by the next plan env" {
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" env --recipes "$EX" hello -- sh -c 'echo $$ >$1/child; exec sleep 30' sh "$M"
    pid=$BG_PID
    wait_until 400 test -s "$M/child"
    wait_until 100 ps_lists '"command": "sh -c'
    rr=$(run_roots)
    [ -d "$rr" ]
    kill -9 "$pid" "$(cat "$M/child")"
    wait "$pid" || true
    wait_until 100 eval '! kill -0 "$(cat "$M/child")" 2>/dev/null'
    [ -d "$rr" ]
    run plan env --recipes "$EX" hello -- true
    [ "$status" -eq 0 ]
    [ ! -e "$rr" ]
    nothing_left
}

@test "collisions in plan env: explained; --prefer, --strategy and --choose resolve them" {
    colliding_recipes
    run plan env --recipes "$R" ta tb -- tool
    [ "$status" -eq 1 ]
    [[ "$output" == *"'bin/tool' is provided by ta 1.0.0 and tb 1.0.0"* ]]
    [[ "$output" == *"--prefer"* && "$output" == *"--choose"* && "$output" == *"--strategy"* ]]
    [[ "$output" != *"bin/same"* ]]
    run plan env --recipes "$R" --prefer tb ta tb -- tool
    [ "$output" = from-tb ]
    run plan env --recipes "$R" --prefer ta ta tb -- tool
    [ "$output" = from-ta ]
    run plan env --recipes "$R" --strategy prefer-first ta tb -- tool
    [ "$output" = from-ta ]
    run plan env --recipes "$R" --strategy prefer-first tb ta -- tool
    [ "$output" = from-tb ]
    run plan env --recipes "$R" --strategy prefer-last ta tb -- tool
    [ "$output" = from-tb ]
    run plan env --recipes "$R" --choose bin/tool=tb ta tb -- tool
    [ "$output" = from-tb ]
    run plan env --recipes "$R" --choose bin/tool=ta --strategy prefer-last ta tb -- tool
    [ "$output" = from-ta ]
    # identical files are not collisions
    run plan env --recipes "$R" --prefer ta ta tb -- sh -c 'cat "$PLAN_ENV/bin/same"'
    [ "$output" = identical ]
    nothing_left
}

@test "plan.yaml 'prefer:' resolves a collision" {
    colliding_recipes
    mkdir -p "$BATS_TEST_TMPDIR/proj"
    cd "$BATS_TEST_TMPDIR/proj"
    printf 'packages:\n  ta: "*"\n  tb: "*"\nrecipes:\n  - %s\n' "$R" >plan.yaml
    run plan env -- tool
    [ "$status" -eq 1 ]
    [[ "$output" == *"'bin/tool'"* && "$output" == *"prefer:"* ]]
    printf 'prefer:\n  - tb\n' >>plan.yaml
    run plan env -- tool
    [ "$status" -eq 0 ]
    [[ "$output" == *from-tb* ]]
    nothing_left
}

@test "a store path named directly joins the environment as it is" {
    p=$(plan build "$EX/hello.yaml")
    run plan env "$p" -- hello path
    [ "$status" -eq 0 ]
    [ "$output" = "hello, path (from libgreet 1.0.0)" ]
    run plan env "$ROOT/store/nosuch-path-1.0" -- true
    [ "$status" -eq 1 ]
    nothing_left
}

@test "with no command, plan env starts \$SHELL (stdin passes through)" {
    run env SHELL=/bin/sh "$PLAN" --root "$ROOT" env --recipes "$EX" hello <<<'hello shell; exit 5'
    [ "$status" -eq 5 ]
    [ "$output" = "hello, shell (from libgreet 1.0.0)" ]
    nothing_left
}

@test "without PLAN_RUN_DIR, run roots go under \$XDG_RUNTIME_DIR/plan" {
    x="$BATS_TEST_TMPDIR/xdg"
    mkdir -m 0700 "$x"
    run env -u PLAN_RUN_DIR XDG_RUNTIME_DIR="$x" "$PLAN" --root "$ROOT" env --recipes "$EX" hello -- sh -c 'echo "$PLAN_RUN_ROOT"'
    [ "$status" -eq 0 ]
    [[ "$output" == "$x/plan/plan-"* ]]
    [ -z "$(ls -A "$x/plan")" ]
}

@test "a run-root folder in /dev/shm that another user owns is refused" {
    [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null || skip "needs root (to act as two users) and setpriv"
    [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] || skip "/dev/shm is not a tmpfs"
    shm=/dev/shm/plan-65534
    [ ! -e "$shm" ] || skip "$shm exists already"
    unpriv_dir
    cp -R "${EX%/recipes}" "$u/ex"
    chmod -R a+rwX "$u"
    # user 65533 prepares the folder user 65534's run roots would go to
    echo "$shm" >"$BATS_TEST_TMPDIR/made-shm-dir"
    setpriv --reuid=65533 --regid=65533 --clear-groups mkdir -m 0777 "$shm"
    run setpriv --reuid=65534 --regid=65534 --clear-groups env -u PLAN_RUN_DIR -u XDG_RUNTIME_DIR \
        HOME="$u" "$PLAN" --root "$u/root" env --recipes "$u/ex/recipes" motd -- sh -c 'echo "RUNROOT=$PLAN_RUN_ROOT"'
    [[ "$output" != *"RUNROOT=$shm/"* ]] || { echo "plan ran in a folder user 65533 controls: $output"; false; }
    # it runs elsewhere (or refuses clearly), never there
    [ "$status" -eq 0 ] || [[ "$output" == *"$shm"* ]]
    [ -z "$(ls -A "$shm")" ]
}
