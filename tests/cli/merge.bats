#!/usr/bin/env bats
# plan merge: conflicts path by path, identical files, strategies and
# preferences, --merge-config with key paths, lineage, merging a merge,
# plan env of a merged plan, content addressing, shared inodes, verify,
# gc of constituents, hostile constituents.

load helpers
bats_require_minimum_version 1.5.0

setup() {
    common_setup
    unset PLAN_PROFILE PLAN_CONFIG PLAN_ROOT
    R="$BATS_TEST_TMPDIR/recipes"
    export PLAN_RUN_DIR="$BATS_TEST_TMPDIR/run"
    mkdir -p "$PLAN_RUN_DIR"
    # a and b: a tool each, the same licence, a conflicting etc/motd and
    # configuration files that merge unless their port differs.
    plan_recipe "$R" a 1.0.0 'mkdir -p $out/bin $out/etc $out/share
printf "#!/bin/sh\necho from-a\n" >$out/bin/a
chmod +x $out/bin/a
echo "same licence" >$out/share/LICENSE
echo "a says hi" >$out/etc/motd
printf "{\"server\": {\"port\": 8080, \"host\": \"a.example\"}, \"a\": 1}\n" >$out/etc/app.json
printf "log:\n  level: info\nports: [1, 2]\n" >$out/etc/app.yaml' 'run:
  default: bin/a
config:
  greeting:
    type: string
    default: hello
env:
  PATH: prepend bin'
    plan_recipe "$R" b 1.0.0 'mkdir -p $out/bin $out/etc $out/share
printf "#!/bin/sh\necho from-b\n" >$out/bin/b
chmod +x $out/bin/b
echo "same licence" >$out/share/LICENSE
echo "b says hi" >$out/etc/motd
printf "{\"server\": {\"port\": 9090, \"tls\": true}, \"b\": 2}\n" >$out/etc/app.json
printf "log:\n  format: json\n" >$out/etc/app.yaml' 'run:
  tool-b: bin/b
config:
  greeting:
    type: string
    default: hello
  port:
    type: int
    default: "80"'
}

store_count() { ls "$ROOT/store" | grep -c -- '-[0-9]' || true; }

@test "merge: conflicts are listed path by path, with the way out, and nothing is added" {
    before=$(plan build --recipes "$R" "$R/a-1.0.0.yaml" >/dev/null && plan build --recipes "$R" "$R/b-1.0.0.yaml" >/dev/null && store_count)
    run plan merge --recipes "$R" a b -o ab@1.0.0
    [ "$status" -eq 1 ]
    [[ "$output" == *"3 conflicts merging into ab 1.0.0:"* ]]
    [[ "$output" == *"'etc/app.json' is provided by a 1.0.0 and b 1.0.0 with different content"* ]]
    [[ "$output" == *"'etc/app.yaml' is provided by a 1.0.0 and b 1.0.0 with different content"* ]]
    [[ "$output" == *"'etc/motd' is provided by a 1.0.0 and b 1.0.0 with different content"* ]]
    [[ "$output" == *"--prefer NAME"*"--strategy prefer-first|prefer-last"*"--merge-config"* ]]
    # the identical licence is not a conflict
    [[ "$output" != *LICENSE* ]]
    [ "$(store_count)" -eq "$before" ]
    [ -z "$(ls -A "$ROOT/store/.tmp" 2>/dev/null | grep -v '\.lock$')" ]
}

@test "merge: strategies and --prefer settle conflicts; identical files are shared inodes" {
    run --separate-stderr plan merge --recipes "$R" a b -o ab@1.0.0 --strategy prefer-first
    [ "$status" -eq 0 ]
    first=$output
    [ "$(cat "$first/etc/motd")" = "a says hi" ]
    [[ "$stderr" == *"1 identical, 3 settled"* ]]
    run --separate-stderr plan merge --recipes "$R" a b -o ab@1.0.0 --strategy prefer-last
    [ "$status" -eq 0 ]
    [ "$(cat "$output/etc/motd")" = "b says hi" ]
    [ "$output" != "$first" ]
    run --separate-stderr plan merge --recipes "$R" a b -o ab@1.0.0 --prefer b
    [ "$(cat "$output/etc/motd")" = "b says hi" ]
    last=$output
    a=$(ls -d "$ROOT"/store/*-a-1.0.0)
    b=$(ls -d "$ROOT"/store/*-b-1.0.0)
    [ "$(stat -c %i "$last/bin/a")" = "$(stat -c %i "$a/bin/a")" ]
    [ "$(stat -c %i "$last/bin/b")" = "$(stat -c %i "$b/bin/b")" ]
    [ "$(stat -c %i "$last/share/LICENSE")" = "$(stat -c %i "$a/share/LICENSE")" ]
    [ "$(stat -c %a "$last/bin/a")" = 555 ]
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    [[ "$output" == *"0 problems"* ]]
    run plan merge --recipes "$R" a b -o ab@1.0.0 --prefer nobody
    [ "$status" -eq 1 ]
    [[ "$output" == *"--prefer 'nobody' names none of the plans being merged"* ]]
}

@test "merge: --merge-config deep-merges JSON and YAML and names a conflicting key path" {
    run plan merge --recipes "$R" a b -o ab@1.0.0 --merge-config --prefer a
    [ "$status" -eq 0 ]
    # --prefer settles etc/motd and server.port alike
    run plan merge --recipes "$R" a b -o ab@1.0.0 --merge-config
    [ "$status" -eq 1 ]
    [[ "$output" == *"'etc/app.json': key 'server.port' is 8080 in a 1.0.0 and 9090 in b 1.0.0"* ]]
    [[ "$output" == *"'etc/motd' is provided by a 1.0.0 and b 1.0.0"* ]]
    [[ "$output" != *"app.yaml"* ]]
    run --separate-stderr plan merge --recipes "$R" a b -o ab@1.0.0 --merge-config --strategy prefer-last
    [ "$status" -eq 0 ]
    m=$output
    run jq -c . "$m/etc/app.json"
    [ "$output" = '{"server":{"port":9090,"host":"a.example","tls":true},"a":1,"b":2}' ]
    # YAML stays YAML (keys and strings quoted, so no value changes type)
    run grep -c '"level": "info"\|"format": "json"\|- 1' "$m/etc/app.yaml"
    [ "$output" -eq 3 ]
    ! grep -q '^{' "$m/etc/app.yaml"
    [ "$(stat -c %a "$m/etc/app.json")" = 444 ]
}

@test "merge: an unreadable configuration file is a conflict that says why" {
    plan_recipe "$R" c 1.0.0 'mkdir -p $out/etc
echo "{ not json" >$out/etc/app.json
printf "base: &b {level: debug}\nlog: *b\n" >$out/etc/app.yaml'
    run --separate-stderr plan merge --recipes "$R" a c -o ac@1.0.0 --merge-config
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"'etc/app.json' of c 1.0.0 is not valid JSON (line"* ]]
    [[ "$stderr" == *"'etc/app.yaml' of c 1.0.0 is a YAML document JSON cannot express (aliases, say)"* ]]
    # the YAML library's own diagnostics are not printed
    [[ "$stderr" != *"aliases not allowed"* ]]
}

@test "merge: the manifest merges entry points, config, env; lineage in path-info, nested for a merge of a merge" {
    m=$(plan merge --recipes "$R" a b -o ab@1.0.0 --merge-config --strategy prefer-last)
    mf="$m/.plan/manifest.json"
    [ "$(jq -r .name "$mf")@$(jq -r .version "$mf")" = ab@1.0.0 ]
    [ "$(jq -r .format "$mf")" = plan-manifest-v1 ]
    [ "$(jq -r '.run.default' "$mf")" = bin/a ]
    [ "$(jq -r '.run["tool-b"]' "$mf")" = bin/b ]
    [ "$(jq -r '.config | keys | join(",")' "$mf")" = greeting,port ]
    [ "$(jq -r '.env[0].name' "$mf")" = PATH ]
    [ "$(jq -r '[.lineage[].name] | join(",")' "$mf")" = a,b ]
    run plan --json store path-info "$m"
    [ "$status" -eq 0 ]
    a=$(basename "$(ls -d "$ROOT"/store/*-a-1.0.0)")
    [ "$(echo "$output" | jq -r '.[0].lineage[0].path')" = "$a" ]
    [ "$(echo "$output" | jq -r '.[0].lineage[1].version')" = 1.0.0 ]
    [ "$(echo "$output" | jq -r '.[0].lineage[0].present')" = true ]
    run plan store path-info "$m"
    [[ "$output" == *"lineage       a 1.0.0  $a"* ]]
    # a merge of the merge: its lineage holds ab's own
    plan_recipe "$R" c 1.0.0 'mkdir -p $out/bin
printf "#!/bin/sh\necho from-c\n" >$out/bin/c
chmod +x $out/bin/c'
    run --separate-stderr plan merge --recipes "$R" "$m" c -o abc@2.0.0
    [ "$status" -eq 0 ]
    abc=$output
    run plan --json store path-info "$abc"
    [ "$(echo "$output" | jq -r '[.[0].lineage[].name] | join(",")')" = ab,c ]
    [ "$(echo "$output" | jq -r '[.[0].lineage[0].lineage[].name] | join(",")')" = a,b ]
    [ "$(stat -c %i "$abc/bin/a")" = "$(stat -c %i "$ROOT/store/$a/bin/a")" ]
    # different run entry points for one name are a conflict of their own
    plan_recipe "$R" d 1.0.0 'mkdir -p $out/bin' 'run:
  default: bin/d'
    run plan merge --recipes "$R" a d -o ad@1.0.0
    [ "$status" -eq 1 ]
    [[ "$output" == *"entry point 'default' is \"bin/a\" in a 1.0.0 and \"bin/d\" in d 1.0.0"* ]]
}

@test "merge: the same inputs give the same path and write nothing new" {
    m1=$(plan merge --recipes "$R" a b -o ab@1.0.0 --strategy prefer-first)
    n=$(store_count)
    state=$(ls -li --time-style=+%s "$m1")
    run --separate-stderr plan merge --recipes "$R" a b -o ab@1.0.0 --strategy prefer-first
    [ "$status" -eq 0 ]
    [ "$output" = "$m1" ]
    [[ "$stderr" == *"already merged"* ]]
    [ "$(store_count)" -eq "$n" ]
    [ "$(ls -li --time-style=+%s "$m1")" = "$state" ]
    run plan --json merge --recipes "$R" a b -o ab@1.0.0 --strategy prefer-first
    [ "$(echo "$output" | jq -r .existed)" = true ]
    [ "$(echo "$output" | jq -r .path)" = "$m1" ]
}

@test "merge: a merged plan runs in plan env and installs into a profile" {
    m=$(plan merge --recipes "$R" a b -o ab@1.0.0 --prefer a)
    run plan env "$m" -- sh -c 'a; b'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = from-a ]
    [ "${lines[1]}" = from-b ]
    # and is a plan like any other: it merges with a recipe's plan again
    run --separate-stderr plan merge --recipes "$R" "$m" a -o aba@1.0.0
    [ "$status" -eq 0 ]
    # installed by its store path, it is a pinned request of the profile
    run plan install "$m"
    [ "$status" -eq 0 ]
    [ "$("$ROOT/profiles/default/current/bin/a")" = from-a ]
    [ "$("$ROOT/profiles/default/current/bin/b")" = from-b ]
    run plan list
    [[ "$output" == *"ab"*"1.0.0"*"path:$(basename "$m")"* ]]
    # other requests resolve around it, upgrade leaves it, remove takes it out
    plan_recipe "$R" c 1.0.0 'mkdir -p $out/bin
printf "#!/bin/sh\necho from-c\n" >$out/bin/c
chmod +x $out/bin/c'
    plan install --recipes "$R" c
    [ "$("$ROOT/profiles/default/current/bin/c")" = from-c ]
    [ -x "$ROOT/profiles/default/current/bin/a" ]
    run plan upgrade
    [ "$status" -eq 0 ]
    [ -x "$ROOT/profiles/default/current/bin/a" ]
    plan remove ab
    [ ! -e "$ROOT/profiles/default/current/bin/a" ]
    [ -x "$ROOT/profiles/default/current/bin/c" ]
}

@test "merge: gc keeps the constituents only when the merged plan refers to them" {
    m=$(plan merge --recipes "$R" a b -o ab@1.0.0 --prefer a)
    [ "$(plan --json store path-info "$m" | jq '.[0].references | length')" -eq 0 ]
    plan gc add-root ab "$m"
    run plan gc
    [ "$status" -eq 0 ]
    [ -d "$m" ]
    [ -z "$(ls -d "$ROOT"/store/*-a-1.0.0 2>/dev/null)" ]
    [ "$(cat "$m/etc/motd")" = "a says hi" ] # its inode outlived a
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    # a link into the plan's own path makes the plan a reference of the merge
    plan_recipe "$R" e 1.0.0 'mkdir -p $out/bin
printf "#!/bin/sh\necho e\n" >$out/bin/e
chmod +x $out/bin/e
ln -s $out/bin/e $out/bin/e-abs'
    m2=$(plan merge --recipes "$R" e b -o eb@1.0.0 --prefer b)
    e=$(basename "$(ls -d "$ROOT"/store/*-e-1.0.0)")
    [ "$(plan --json store path-info "$m2" | jq -r '.[0].references | join(",")')" = "$e" ]
    plan gc add-root eb "$m2"
    plan gc
    [ -d "$ROOT/store/$e" ]
    [ -z "$(ls -d "$ROOT"/store/*-b-1.0.0 2>/dev/null)" ]
    [ "$("$m2/bin/e-abs")" = e ]
}

@test "merge: exported and imported into a wiped root, a merged plan keeps its lineage, which adds no reference" {
    m=$(plan merge --recipes "$R" a b -o ab@1.0.0 --prefer a)
    a=$(ls -d "$ROOT"/store/*-a-1.0.0)
    b=$(ls -d "$ROOT"/store/*-b-1.0.0)
    plan store export "$a" "$b" "$m" -o "$BATS_TEST_TMPDIR/all.tar.zst"
    wipe "$ROOT"
    run plan store import "$BATS_TEST_TMPDIR/all.tar.zst"
    [ "$status" -eq 0 ]
    run plan --json store path-info "$m"
    [ "$status" -eq 0 ]
    # the import scans for every registered digest: the lineage names none
    [ "$(echo "$output" | jq '.[0].references | length')" -eq 0 ]
    [ "$(echo "$output" | jq -r '[.[0].lineage[].present] | join(",")')" = true,true ]
    [ "$(echo "$output" | jq -r '.[0].lineage[0].path')" = "$(basename "$a")" ]
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
}

@test "merge: a constituent without a manifest, or with a broken one, merges as a plain tree" {
    mkdir -p "$BATS_TEST_TMPDIR/t1/bin" "$BATS_TEST_TMPDIR/t2/.plan" "$BATS_TEST_TMPDIR/t2/lib"
    echo one >"$BATS_TEST_TMPDIR/t1/bin/one"
    echo two >"$BATS_TEST_TMPDIR/t2/lib/two"
    printf '{ broken' >"$BATS_TEST_TMPDIR/t2/.plan/manifest.json"
    p1=$(plan store add "$BATS_TEST_TMPDIR/t1" --name t1 --version 1)
    p2=$(plan store add "$BATS_TEST_TMPDIR/t2" --name t2 --version 1)
    run --separate-stderr plan merge "$p1" "$p2" -o t@1.0.0
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"manifest.json' cannot be read"*"merging the plan as a plain tree"* ]]
    [ "$(cat "$output/bin/one")" = one ]
    [ "$(cat "$output/lib/two")" = two ]
    [ "$(jq -r '[.lineage[].name] | join(",")' "$output/.plan/manifest.json")" = t1,t2 ]
}

@test "merge: usage errors" {
    run plan merge a -o x@1.0.0
    [ "$status" -eq 2 ]
    [[ "$output" == *"at least two plans"* ]]
    run plan merge a b
    [ "$status" -eq 2 ]
    [[ "$output" == *"-o NAME@VERSION"* ]]
    run plan merge a b -o 'bad name@1.0.0'
    [ "$status" -eq 2 ]
    [[ "$output" == *"invalid name 'bad name'"* ]]
    run plan merge a b -o x@latest
    [ "$status" -eq 2 ]
    [[ "$output" == *"invalid version 'latest'"* ]]
    run plan merge a b -o x@1 --strategy best
    [ "$status" -eq 2 ]
    run plan merge --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"Examples:"* ]]
}

@test "merge: plan run starts a merged plan's entry points, from either constituent" {
    m=$(plan merge --recipes "$R" a b -o ab@1.0.0 --prefer a)
    run --separate-stderr plan run "$m"
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    [ "$output" = from-a ]
    run --separate-stderr plan run "$m" --entry tool-b
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    [ "$output" = from-b ]
}

@test "merge: workdir and state are carried over; different ones are a conflict that --prefer settles" {
    plan_recipe "$R" sa 1.0.0 'mkdir -p $out/bin
printf "#!/bin/sh\necho kept >>keep.txt\n" >$out/bin/sa
chmod +x $out/bin/sa' 'run:
  default: bin/sa
workdir: data
state: data'
    plan_recipe "$R" sb 1.0.0 'mkdir -p $out/share
echo sb >$out/share/sb' 'state: other'
    run --separate-stderr plan merge --recipes "$R" sa sb -o sab@1.0.0
    [ "$status" -eq 1 ]
    [[ "$stderr" == *'state is "data" in sa 1.0.0 and "other" in sb 1.0.0'* ]] || { echo "$stderr"; false; }
    m=$(plan merge --recipes "$R" sa sb -o sab@1.0.0 --prefer sa)
    [ "$(jq -r .state "$m/.plan/manifest.json")" = data ]
    [ "$(jq -r .workdir "$m/.plan/manifest.json")" = data ]
    plan run "$m"
    plan run "$m"
    [ "$(cat "$ROOT/var/state/sab/keep.txt")" = "$(printf 'kept\nkept')" ]
}
