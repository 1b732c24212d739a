#!/usr/bin/env bats
# plan run: entry points in a fresh run root, state that survives and
# everything else that does not, cleanup on every way out (exit, crash,
# SIGKILL of the command, SIGKILL of plan), records and logs, plan stop,
# restart with backoff, limits really enforced, isolation without network;
# and --limit/--isolate for plan env.

load helpers
bats_require_minimum_version 1.5.0

setup() {
    common_setup
    unset PLAN_PROFILE PLAN_CONFIG PLAN_ROOT
    R="$BATS_TEST_TMPDIR/recipes"
    mkdir -p "$R"
    export PLAN_RUN_DIR="$BATS_TEST_TMPDIR/run"
    mkdir -p "$PLAN_RUN_DIR"
    export M="$BATS_TEST_TMPDIR/marks"
    mkdir -p "$M"
    svc_recipe
}

teardown() {
    bg_cleanup
    true
}

# svc: entry points for every scenario; each script is bin/NAME.
svc_recipe() {
    cat >"$R/svc-1.0.0.yaml" <<'YAML'
name: svc
version: 1.0.0
build: |
  mkdir -p $out/bin
  cat >$out/bin/show <<'X'
  #!/bin/sh
  echo "cwd=$(pwd)"
  echo "tmp=$TMPDIR"
  echo "args=$*"
  echo "state=$PLAN_STATE_DIR"
  echo "to stderr" >&2
  X
  cat >$out/bin/write <<'X'
  #!/bin/sh
  echo scratch >"$TMPDIR/scratch"
  echo root >"$PLAN_RUN_ROOT/written"
  echo kept >>"$PLAN_RUN_ROOT/data/kept"
  wc -l <kept
  X
  cat >$out/bin/status <<'X'
  #!/bin/sh
  echo "attempt output"
  exit "$1"
  X
  cat >$out/bin/crash <<'X'
  #!/bin/sh
  kill -SEGV $$
  X
  cat >$out/bin/wait <<'X'
  #!/bin/sh
  echo "$PLAN_RUN_ROOT" >"$M/runroot"
  trap 'echo got-term; exit 0' TERM
  echo ready
  echo $$ >"$M/child"
  while :; do sleep 0.05; done
  X
  cat >$out/bin/deaf <<'X'
  #!/bin/sh
  echo "$PLAN_RUN_ROOT" >"$M/runroot"
  trap '' TERM
  echo $$ >"$M/child"
  exec sleep 1000
  X
  cat >$out/bin/alloc <<'X'
  #!/bin/sh
  head -c 100M /dev/zero | tail -n 1 >/dev/null && echo allocated
  X
  cat >$out/bin/files <<'X'
  #!/bin/bash
  n=0
  while exec {fd}</dev/null; do n=$((n+1)); [ $n -ge 500 ] && break; done 2>/dev/null
  echo "opened $n"
  X
  cat >$out/bin/connect <<'X'
  #!/bin/bash
  if exec 3<>"/dev/tcp/127.0.0.1/$1"; then echo connected; else echo refused; fi 2>/dev/null
  X
  cat >$out/bin/inside <<'X'
  #!/bin/sh
  echo "pid=$$"
  touch "$PLAN_PLAN/x" 2>/dev/null && echo store-writable || echo store-read-only
  test -e /tmp/plan-run-marker-$MARK && echo host-tmp || echo private-tmp
  touch "$TMPDIR/t" && echo tmpdir-writable
  X
  chmod +x $out/bin/*
run:
  default: bin/show first
  write: bin/write
  status: bin/status
  crash: bin/crash
  wait: bin/wait
  deaf: bin/deaf
  alloc: bin/alloc
  files: bin/files
  connect: bin/connect
  inside: bin/inside
state: data
workdir: data
resources:
  nofile: "200"
YAML
}

nothing_left() {
    [ -z "$(run_roots)" ] || { echo "run roots left: $(run_roots)"; return 1; }
    [ -z "$(ls -A "$ROOT/var/gc/sessions" 2>/dev/null)" ] ||
        { echo "sessions left: $(ls -A "$ROOT/var/gc/sessions")"; return 1; }
}

# the id of the newest run
last_run() { ls -t "$ROOT/var/runs" | head -1; }
# a field of a run's record
rec() { jq -r "$2" "$ROOT/var/runs/$1/run.json"; }
run_state() { [ "$(plan ps -a --json 2>/dev/null | jq -r --arg i "$1" '.runs[] | select(.id == $i) | .state')" = "$2" ]; }

@test "plan run starts the default entry in a fresh run root, in the recipe's workdir, and removes it" {
    run --separate-stderr plan run --recipes "$R" svc -- a 'b c'
    [ "$status" -eq 0 ]
    state="$ROOT/var/state/svc"
    [[ "${lines[0]}" == cwd="$PLAN_RUN_DIR"/plan-*/data ]]
    [[ "${lines[1]}" == tmp="$PLAN_RUN_DIR"/plan-*/tmp ]]
    [ "${lines[2]}" = "args=first a b c" ]
    [ "${lines[3]}" = "state=$state" ]
    [[ "$stderr" == *"plan: run "*": svc 1.0.0, entry default"* ]]
    [[ "$stderr" == *"to stderr"* ]]
    [[ "$stderr" == *"plan: limits: nofile=200 (RLIMIT_NOFILE)"* ]]
    nothing_left
    id=$(last_run)
    [ "$(rec "$id" .state)" = exited ]
    [ "$(rec "$id" .exit_status)" = 0 ]
    [ "$(rec "$id" '.attempts | length')" = 1 ]
    [ "$(rec "$id" .entry)" = default ]
    [ "$(rec "$id" '.args | join(",")')" = "a,b c" ]
    # the log has both streams
    run plan logs "$id"
    [[ "$output" == *"args=first a b c"* && "$output" == *"to stderr"* ]]
    [[ "$output" == *"plan: run $id: svc 1.0.0, entry default, attempt 1 of 1"* ]]
}

@test "state survives the run; its temporary files and what it wrote in the run root do not" {
    run plan run --recipes "$R" svc --entry write
    [ "$status" -eq 0 ]
    [ "$(printf '%s\n' "$output" | grep -v '^plan:' | tr -d ' ')" = 1 ]
    nothing_left
    [ "$(cat "$ROOT/var/state/svc/kept")" = kept ]
    [ "$(ls -A "$ROOT/var/state/svc")" = kept ]
    [ -z "$(find "$BATS_TEST_TMPDIR" -name scratch -o -name written)" ]
    run plan run --recipes "$R" svc --entry write
    [ "$(printf '%s\n' "$output" | grep -v '^plan:' | tr -d ' ')" = 2 ]
    nothing_left
}

@test "the exit status is the entry's; a crash is 128+N; both clean up" {
    run plan run --recipes "$R" svc --entry status -- 7
    [ "$status" -eq 7 ]
    nothing_left
    run plan run --recipes "$R" svc --entry crash
    [ "$status" -eq 139 ]
    nothing_left
    [ "$(rec "$(last_run)" '.attempts[0].signal')" = 11 ]
}

@test "unknown entry points and plans without any are errors that name the choices" {
    run plan run --recipes "$R" svc --entry nope
    [ "$status" -eq 1 ]
    [[ "$output" == *"svc 1.0.0 has no entry point 'nope'; its entry points: "*"alloc"*"wait"* ]]
    tool_recipe "$R" tool 1.0.0 tool hi
    run plan run --recipes "$R" tool
    [ "$status" -eq 1 ]
    [[ "$output" == *"tool 1.0.0 declares no entry points (its recipe has no 'run:'); use 'plan env tool -- CMD'"* ]]
    run plan run
    [ "$status" -eq 2 ]
    [[ "$output" == *"name the plan to run"* ]]
    run plan run --recipes "$R" svc --restart sometimes
    [ "$status" -eq 2 ]
    [[ "$output" == *"--restart is no, on-failure or always, not 'sometimes'"* ]]
    run plan run --recipes "$R" svc --no-network
    [ "$status" -eq 2 ]
    [[ "$output" == *"--no-network works inside --isolate"* ]]
    run plan run --recipes "$R" svc other
    [ "$status" -eq 2 ]
    nothing_left
}

@test "SIGKILL of the command: plan reports 137 and removes the run root" {
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" run --recipes "$R" svc --entry wait
    pid=$BG_PID
    wait_until 400 test -s "$M/child"
    rr=$(cat "$M/runroot")
    [ -d "$rr" ]
    kill -9 "$(cat "$M/child")"
    st=0
    wait "$pid" || st=$?
    [ "$st" -eq 137 ]
    [ ! -e "$rr" ]
    nothing_left
    [ "$(rec "$(last_run)" '.attempts[0].status')" = 137 ]
}

@test "SIGKILL of plan: the run is 'lost', and the next plan run or plan gc removes the stale run root" {
    # deaf is one process (exec sleep), so nothing else holds the session
    for reaper in run gc; do
        rm -f "$M/child" "$M/runroot"
        start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" run --recipes "$R" svc --entry deaf
        pid=$BG_PID
        wait_until 400 test -s "$M/child"
        id=$(last_run)
        wait_until 100 run_state "$id" running
        rr=$(cat "$M/runroot")
        kill -9 "$pid"
        wait "$pid" || true
        run_state "$id" lost
        # the command still runs, and keeps its run root alive
        [ -d "$rr" ]
        kill -0 "$(cat "$M/child")"
        kill -9 "$(cat "$M/child")"
        wait_until 100 proc_gone "$(cat "$M/child")"
        [ -d "$rr" ]
        if [ "$reaper" = run ]; then
            run plan run --recipes "$R" svc --entry status -- 0
        else
            run plan gc
        fi
        [ "$status" -eq 0 ]
        [ ! -e "$rr" ]
        nothing_left
    done
    run plan stop "$id"
    [ "$status" -eq 1 ]
    [[ "$output" == *"the supervisor of the run '$id' is gone (plan was killed)"* ]]
}

@test "plan stop: SIGTERM reaches the command, nothing restarts, the run root goes; ps follows" {
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" run --recipes "$R" svc --entry wait --restart always
    pid=$BG_PID
    wait_until 400 test -s "$M/child"
    id=$(last_run)
    wait_until 100 run_state "$id" running
    run plan ps
    [[ "$output" == *"$id"*"running"*"svc@1.0.0"*"wait"* ]]
    [[ "$output" != *"ID       PID"* ]] # the run's session is not listed as a plan env
    run plan stop "$id" --grace 20
    [ "$status" -eq 0 ]
    [[ "$output" == *"stopped the run $id (status 0)"* ]]
    st=0
    wait "$pid" || st=$?
    [ "$st" -eq 0 ]
    nothing_left
    [ "$(rec "$id" '.attempts | length')" = 1 ]
    [ "$(rec "$id" '.attempts[0].stopped')" = true ]
    run plan logs "$id"
    [[ "$output" == *got-term* ]]
    run plan ps
    [[ "$output" != *"$id"* ]]
    run plan ps -a
    [[ "$output" == *"$id"*exited* ]]
    run plan stop "$id"
    [ "$status" -eq 1 ]
    [[ "$output" == *"the run '$id' has already exited (status 0)"* ]]
    run plan stop 0123abcd
    [ "$status" -eq 1 ]
    [[ "$output" == *"no run '0123abcd'"* ]]
}

@test "plan stop: a command that ignores SIGTERM is killed once the grace is over" {
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" run --recipes "$R" svc --entry deaf
    pid=$BG_PID
    wait_until 400 test -s "$M/child"
    id=$(last_run)
    wait_until 100 run_state "$id" running
    run plan stop "$id" --grace 0.3
    [ "$status" -eq 0 ]
    [[ "$output" == *"(status 137)"* ]]
    st=0
    wait "$pid" || st=$?
    [ "$st" -eq 137 ]
    nothing_left
}

@test "a kill -TERM of the supervisor from elsewhere stops the run as plan stop does" {
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" run --recipes "$R" svc --entry wait --restart always
    pid=$BG_PID
    wait_until 400 test -s "$M/child"
    kill -TERM "$pid"
    st=0
    wait "$pid" || st=$?
    [ "$st" -eq 0 ]
    grep -q got-term "$BATS_TEST_TMPDIR/out"
    [ "$(rec "$(last_run)" '.attempts | length')" = 1 ]
    nothing_left
}

@test "restart on failure with backoff: one attempt record and log each, then the last status" {
    run --separate-stderr plan run --recipes "$R" svc --entry status --restart on-failure --max-restarts 2 -- 3
    [ "$status" -eq 3 ]
    id=$(last_run)
    [ "$(rec "$id" '.attempts | length')" = 3 ]
    [ "$(rec "$id" '[.attempts[].status] | join(",")')" = "3,3,3" ]
    [ "$(rec "$id" '[.attempts[].n] | join(",")')" = "1,2,3" ]
    [[ "$stderr" == *"attempt 1 ended with status 3; restarting in 0.5s"* ]]
    [[ "$stderr" == *"attempt 2 ended with status 3; restarting in 1.0s"* ]]
    [[ "$stderr" != *"attempt 3 ended"* ]]
    # attempts follow each other: each starts after the one before ended
    [ "$(rec "$id" '[range(1; 3) as $i | .attempts[$i].started >= .attempts[$i - 1].ended] | all')" = true ]
    for n in 1 2 3; do
        run plan logs "$id" --attempt "$n"
        [ "$status" -eq 0 ]
        [[ "$output" == *"attempt output"* ]]
        [[ "$output" == *"attempt $n of 3"* ]]
    done
    run plan logs "$id" --attempt 4
    [ "$status" -eq 1 ]
    [[ "$output" == *"has 3 attempts, not 4"* ]]
    nothing_left
    # on-failure does not restart a success; always does, up to the maximum
    run plan run --recipes "$R" svc --entry status --restart on-failure -- 0
    [ "$status" -eq 0 ]
    [ "$(rec "$(last_run)" '.attempts | length')" = 1 ]
    run plan run --recipes "$R" svc --entry status --restart always --max-restarts 1 -- 0
    [ "$status" -eq 0 ]
    [ "$(rec "$(last_run)" '.attempts | length')" = 2 ]
    nothing_left
}

@test "limits are enforced: an allocation over mem fails, nofile caps open files" {
    run plan run --recipes "$R" svc --entry alloc
    [ "$status" -eq 0 ]
    [[ "$output" == *allocated* ]]
    run plan run --recipes "$R" svc --entry alloc --limit mem=32M
    [ "$status" -ne 0 ]
    [[ "$output" != *allocated* ]]
    [[ "$output" == *"plan: limits: mem=32M (RLIMIT_DATA"* ]]
    # the recipe's default (200), then --limit over it
    run plan run --recipes "$R" svc --entry files
    n=$(printf '%s\n' "$output" | sed -n 's/^opened //p')
    [ "$n" -gt 100 ] && [ "$n" -lt 200 ]
    run plan run --recipes "$R" svc --entry files --limit nofile=40
    n=$(printf '%s\n' "$output" | sed -n 's/^opened //p')
    [ "$n" -gt 0 ] && [ "$n" -lt 40 ]
    [[ "$output" == *"plan: limits: nofile=40 (RLIMIT_NOFILE)"* ]]
    [ "$(rec "$(last_run)" .limits)" = "nofile=40 (RLIMIT_NOFILE)" ]
    run plan run --recipes "$R" svc --entry status --limit mem=lots -- 0
    [ "$status" -eq 2 ]
    [[ "$output" == *"--limit mem=lots: limit 'mem': expected a size such as 512M or 2G, found 'lots'"* ]]
    # cpu has no rlimit: a cgroup applies it, or it is an error that says why
    run plan run --recipes "$R" svc --entry status --limit cpu=0.5 -- 0
    if [ "$status" -eq 0 ]; then
        [[ "$output" == *"cpu=0.5 (cpu.max)"* ]]
    else
        [ "$status" -eq 1 ]
        [[ "$output" == *"cannot apply the limit cpu=0.5: a share of CPUs needs a cgroup; no cgroup: "*"; leave 'cpu' out of --limit"* ]]
    fi
    nothing_left
}

@test "--isolate: PID namespace, the store read-only, a private /tmp; --no-network cannot reach loopback" {
    export MARK=$$
    touch "/tmp/plan-run-marker-$MARK"
    run plan run --recipes "$R" svc --entry inside
    rm -f "/tmp/plan-run-marker-$MARK"
    [ "$status" -eq 0 ]
    [[ "$output" == *store-writable* && "$output" == *host-tmp* ]]
    rm -f "$ROOT"/store/*-svc-1.0.0/x 2>/dev/null || true
    touch "/tmp/plan-run-marker-$MARK"
    run plan run --recipes "$R" svc --entry inside --isolate
    rm -f "/tmp/plan-run-marker-$MARK"
    [ "$status" -eq 0 ]
    [[ "$output" == *"pid=2"* ]]
    [[ "$output" == *store-read-only* && "$output" == *private-tmp* && "$output" == *tmpdir-writable* ]]
    nothing_left
    mkdir -p "$BATS_TEST_TMPDIR/www"
    start_bg "$BATS_TEST_TMPDIR/httpd.out" "$PLAN_TOOLS/httpd" "$BATS_TEST_TMPDIR/www" "$BATS_TEST_TMPDIR/port"
    wait_until 200 test -s "$BATS_TEST_TMPDIR/port"
    port=$(cat "$BATS_TEST_TMPDIR/port")
    run plan run --recipes "$R" svc --entry connect -- "$port"
    [[ "$output" == *connected* ]]
    run plan run --recipes "$R" svc --entry connect --isolate -- "$port"
    [[ "$output" == *connected* ]]
    run plan run --recipes "$R" svc --entry connect --isolate --no-network -- "$port"
    [ "$status" -eq 0 ]
    [[ "$output" == *refused* ]]
    [ "$(rec "$(last_run)" .no_network)" = true ]
    nothing_left
    # signals reach the command through the namespaces' two forwarders
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" run --recipes "$R" svc --entry wait --isolate
    pid=$BG_PID
    wait_until 400 eval 'grep -qs ready "$ROOT"/var/runs/*/attempt-1.log'
    id=$(grep -ls ready "$ROOT"/var/runs/*/attempt-1.log | xargs dirname | xargs basename)
    run plan stop "$id"
    [ "$status" -eq 0 ]
    [[ "$output" == *"(status 0)"* ]]
    wait "$pid" || true
    grep -q got-term "$BATS_TEST_TMPDIR/out"
    nothing_left
}

@test "plan env takes --limit and --isolate too" {
    tool_recipe "$R" tool 1.0.0 tool hi
    run plan env --recipes "$R" --limit nofile=20,nice=5 tool -- sh -c 'ulimit -n; nice'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "plan: limits: nofile=20 (RLIMIT_NOFILE), nice=5 (setpriority)" ]
    [ "${lines[1]}" = 20 ]
    [ "${lines[2]}" = 5 ]
    run plan env --recipes "$R" --isolate --no-network tool -- sh -c 'echo $$; tool; touch "$PLAN_ENV/../x" && echo run-root-writable'
    [ "$status" -eq 0 ]
    [ "$output" = "2
hi
run-root-writable" ]
    run plan env --recipes "$R" --no-network tool -- true
    [ "$status" -eq 2 ]
    nothing_left
}

@test "the configuration is materialised in the run root; its version is recorded and shown" {
    cat >"$R/cfg-1.0.0.yaml" <<'YAML'
name: cfg
version: 1.0.0
build: |
  mkdir -p $out/bin
  cat >$out/bin/cfg <<'X'
  #!/bin/sh
  echo "greeting=$PLAN_CONFIG_GREETING"
  echo "version=$PLAN_RUN_CONFIG_VERSION"
  test "$PLAN_RUN_CONFIG" = "$PLAN_RUN_ROOT/config" && echo config-in-run-root
  test -f "$PLAN_RUN_CONFIG/config.json" && echo has-json
  X
  chmod +x $out/bin/cfg
run:
  default: bin/cfg
config:
  greeting:
    type: string
    default: hello
YAML
    run --separate-stderr plan run --recipes "$R" cfg
    [ "$status" -eq 0 ]
    [ "$output" = "greeting=hello
version=0
config-in-run-root
has-json" ]
    id=$(last_run)
    [ "$(rec "$id" .config_version)" = 0 ]
    [ "$(rec "$id" .config_override)" = false ]
    run plan config set cfg greeting hi
    [ "$status" -eq 0 ]
    run --separate-stderr plan run --recipes "$R" cfg
    [ "${lines[0]}" = greeting=hi ]
    [ "${lines[1]}" = version=1 ]
    id=$(last_run)
    [ "$(rec "$id" .config_version)" = 1 ]
    [ "$(rec "$id" '.attempts[0].config_version')" = 1 ]
    run plan logs "$id"
    [[ "$output" == *"configuration version 1; exited with status 0"* ]]
    run plan ps -a
    [[ "$(printf '%s\n' "$output" | grep "^$id")" == *" 1  "* ]]
    # an override for this run only
    printf 'greeting: yo\n' >"$BATS_TEST_TMPDIR/over.yaml"
    run --separate-stderr plan run --recipes "$R" cfg --config "$BATS_TEST_TMPDIR/over.yaml"
    [ "${lines[0]}" = greeting=yo ]
    [ "$(rec "$(last_run)" .config_override)" = true ]
    run --separate-stderr plan run --recipes "$R" cfg
    [ "${lines[0]}" = greeting=hi ]
    nothing_left
}

@test "a stop during the backoff ends the run at once; plan ps shows it restarting before" {
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" run --recipes "$R" svc --entry status --restart on-failure --max-restarts 1000 -- 4
    pid=$BG_PID
    wait_until 400 eval 'ls "$ROOT/var/runs" 2>/dev/null | grep -q .'
    id=$(last_run)
    wait_until 400 run_state "$id" restarting
    run plan ps
    [[ "$output" == *"$id  restarting"* ]]
    run plan stop "$id" --grace 5
    [ "$status" -eq 0 ]
    [[ "$output" == *"(status 4)"* ]]
    st=0
    wait "$pid" || st=$?
    [ "$st" -eq 4 ]
    [ "$(rec "$id" '.attempts | length')" -lt 1000 ]
    [ "$(rec "$id" .state)" = exited ]
    nothing_left
}

@test "plan logs --follow prints what the attempt writes until it ends" {
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" run --recipes "$R" svc --entry wait
    pid=$BG_PID
    wait_until 400 test -s "$M/child"
    id=$(last_run)
    wait_until 100 run_state "$id" running
    "$PLAN" --root "$ROOT" logs -f "$id" >"$BATS_TEST_TMPDIR/followed" 2>&1 3>&- &
    follower=$!
    echo "$follower" >>"$BATS_TEST_TMPDIR/bg.pids"
    sleep 0.2
    kill -0 "$follower" # still following the running attempt
    run plan stop "$id"
    [ "$status" -eq 0 ]
    wait_until 100 proc_gone "$follower"
    grep -q got-term "$BATS_TEST_TMPDIR/followed"
    wait "$pid" || true
    nothing_left
}

# hostile_plan NAME MANIFEST-JSON: a store path whose manifest says anything
# (as one from an imported archive may); prints its path.
hostile_plan() {
    local d="$BATS_TEST_TMPDIR/hostile-$1"
    mkdir -p "$d/.plan" "$d/bin"
    printf '%s' "$2" >"$d/.plan/manifest.json"
    plan store add "$d" --name "$1" --version 1.0.0
}

@test "a manifest's workdir and state get the recipe's checks: nothing is made outside the run root" {
    out="$BATS_TEST_TMPDIR/outside"
    p=$(hostile_plan hs '{"run":{"default":"true"},"state":"../../../../'"${out#/}"'"}')
    run --separate-stderr plan run "$p"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"declares state"*"refused"* ]] || { echo "$stderr"; false; }
    p=$(hostile_plan hw '{"run":{"default":"true"},"workdir":"../../../../'"${out#/}"'"}')
    run --separate-stderr plan run "$p"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"declares workdir"*"refused"* ]] || { echo "$stderr"; false; }
    p=$(hostile_plan hc '{"run":{"default":"true"},"state":"config"}')
    run --separate-stderr plan run "$p"
    [ "$status" -eq 1 ]
    [ ! -e "$out" ]
    [ ! -e "$ROOT/var/state/hc" ]
}

@test "a workdir through a link a plan ships is refused when it leads outside the run root" {
    out="$BATS_TEST_TMPDIR/outside"
    mkdir -p "$out"
    plan_recipe "$R" wl 1.0.0 'mkdir -p $out/share $out/bin
ln -s '"$out"' $out/share/out
printf "#!/bin/sh\npwd\n" >$out/bin/wl
chmod +x $out/bin/wl' 'run:
  default: bin/wl
  made: bin/wl
workdir: env/share/out/made-by-workdir'
    run --separate-stderr plan run --recipes "$R" wl
    [ "$status" -eq 1 ]
    [ ! -e "$out/made-by-workdir" ]
    plan_recipe "$R" wm 1.0.0 'mkdir -p $out/share $out/bin
ln -s '"$out"' $out/share/out
printf "#!/bin/sh\npwd\n" >$out/bin/wm
chmod +x $out/bin/wm' 'run:
  default: bin/wm
workdir: env/share/out'
    run --separate-stderr plan run --recipes "$R" wm
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"outside its run root"* ]] || { echo "$stderr"; false; }
}

@test "what an entry point leaves running is ended with its run, on a normal end and on plan stop" {
    plan_recipe "$R" bg 1.0.0 'mkdir -p $out/bin
printf "#!/bin/sh\nsetsid sleep 7771 &\nsleep 7772 &\necho started\nwait\n" >$out/bin/bg
printf "#!/bin/sh\nsleep 7773 &\necho bye\n" >$out/bin/quick
chmod +x $out/bin/bg $out/bin/quick' 'run:
  default: bin/bg
  quick: bin/quick'
    run --separate-stderr plan run --recipes "$R" bg --entry quick
    [ "$status" -eq 0 ]
    [ "$output" = bye ]
    ! pgrep -f 'sleep 7773'
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" run --recipes "$R" bg
    wait_until 400 grep -q started "$BATS_TEST_TMPDIR/out"
    wait_until 100 pgrep -f 'sleep 7771'
    id=$(last_run)
    run plan stop "$id" --grace 1
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    ! pgrep -f 'sleep 777[12]'
    [ "$(rec "$id" '.attempts[0].leftovers_ended')" -ge 1 ]
}

@test "a run's record and logs are its owner's alone" {
    run --separate-stderr plan run --recipes "$R" svc
    [ "$status" -eq 0 ]
    id=$(last_run)
    [ "$(stat -c %a "$ROOT/var/runs/$id")" = 700 ]
    [ "$(stat -c %a "$ROOT/var/runs/$id/run.json")" = 600 ]
    [ "$(stat -c %a "$ROOT/var/runs/$id/attempt-1.log")" = 600 ]
}

@test "gc --delete-runs: the newest N of each plan, or by age; never a running one" {
    for i in 1 2 3; do plan -q run --recipes "$R" svc -- "$i" >/dev/null; done
    [ "$(ls "$ROOT/var/runs" | wc -l)" -eq 3 ]
    start_bg "$BATS_TEST_TMPDIR/out" "$PLAN" --root "$ROOT" run --recipes "$R" svc --entry wait
    wait_until 400 test -s "$M/child"
    live=$(last_run)
    # without --yes and a terminal, nothing goes
    run plan gc --delete-runs +1
    [ "$status" -ne 0 ]
    [[ "$output" == *"not deleting run records without confirmation: add --yes"* ]]
    run --separate-stderr plan --json gc --delete-runs +1 --dry-run
    [ "$(jq -r .runs_deleted <<<"$output")" = 2 ] || { echo "$output"; false; }
    [ "$(ls "$ROOT/var/runs" | wc -l)" -eq 4 ]
    run plan gc --delete-runs +1 --yes
    [ "$status" -eq 0 ]
    [[ "$output" == *"deleted 2 run records"* ]] || { echo "$output"; false; }
    # the newest finished one and the running one are left
    [ "$(ls "$ROOT/var/runs" | wc -l)" -eq 2 ]
    [ -d "$ROOT/var/runs/$live" ]
    sleep 1.1 # ended longer ago than 0 s
    run plan gc --delete-runs 0s --yes
    [[ "$output" == *"deleted 1 run record"* ]] || { echo "$output"; false; }
    [ "$(ls "$ROOT/var/runs")" = "$live" ]
    run plan logs "$live"
    [ "$status" -eq 0 ]
    run plan gc --delete-runs soon
    [ "$status" -eq 2 ]
}
