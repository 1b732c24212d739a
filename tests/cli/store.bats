#!/usr/bin/env bats
# plan store: real store paths in a temporary --root.

load helpers

setup() { common_setup; }
teardown() { unpriv_cleanup; }

add() { plan store add "$SRC" --name hello --version 1.0 "$@"; }

# lib_and_app: $lib, a store path, and $app, one that refers to it
lib_and_app() {
    lib=$(add)
    mkdir -p "$BATS_TEST_TMPDIR/app"
    printf 'exec %s/bin/hello\n' "$lib" >"$BATS_TEST_TMPDIR/app/run"
    app=$(plan store add "$BATS_TEST_TMPDIR/app" --name app --version 2.0)
}

@test "store add prints a read-only store path; adding again gives the same path" {
    run add
    [ "$status" -eq 0 ]
    path=$output
    [[ "$path" =~ ^$ROOT/store/[0-9a-z]{32}-hello-1\.0$ ]]
    [ -x "$path/bin/hello" ]
    [ "$(cat "$path/share/latest")" = "hello, world" ]
    [ "$(stat -c %a "$path")" = 555 ]
    [ "$(stat -c %a "$path/share/doc/README")" = 444 ]
    [ "$(stat -c %Y "$path/bin/hello")" = 1 ]
    run plan --json store add "$SRC" --name hello --version 1.0
    [[ "$output" == *'"existed": true'* ]]
    [[ "$output" == *"$path"* ]]
}

@test "store add: the same tree under another name or version is another path" {
    a=$(add)
    b=$(plan store add "$SRC" --name hello --version 1.1)
    c=$(plan store add "$SRC" --name other --version 1.0)
    [ "$a" != "$b" ] && [ "$a" != "$c" ] && [ "$b" != "$c" ]
}

@test "store add refuses bad input and leaves nothing" {
    run plan store add "$SRC" --name "../x" --version 1
    [ "$status" -eq 1 ]
    [[ "$output" == *"invalid name '../x'"* ]]
    mkfifo "$SRC/pipe"
    run add
    [ "$status" -eq 1 ]
    [[ "$output" == *"pipe' is a fifo"* ]]
    run plan store add "$BATS_TEST_TMPDIR/missing" --name x --version 1
    [ "$status" -eq 1 ]
    [ -z "$(ls "$ROOT/store")" ]
    [ -z "$(ls "$ROOT/store/.tmp")" ]
}

@test "store path-info: text and JSON, references and closure size" {
    lib_and_app
    run plan store path-info "$app"
    [ "$status" -eq 0 ]
    [[ "$output" == *"name          app"* ]]
    [[ "$output" == *"content hash  blake2b:"* ]]
    [[ "$output" == *"references    $(basename "$lib")"* ]]
    run plan --json store path-info "$app" "$lib"
    [ "$status" -eq 0 ]
    [[ "$output" == *'"closure_size"'* ]]
    [[ "$output" == *'"registered"'* ]]
    # by digest and by a link to it
    ln -s "$app" "$BATS_TEST_TMPDIR/result"
    run plan store path-info "$BATS_TEST_TMPDIR/result"
    [ "$status" -eq 0 ]
    digest=$(basename "$app" | cut -c1-32)
    run plan store path-info "$digest"
    [ "$status" -eq 0 ]
}

@test "store verify: clean, then missing, modified and unregistered; exit 1" {
    a=$(add)
    b=$(plan store add "$SRC" --name other --version 1)
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    chmod u+w "$a" "$a/share/doc" "$a/share/doc/README"
    echo tampered >"$a/share/doc/README"
    wipe "$b"
    mkdir "$ROOT/store/00000000000000000000000000000000-stray-1"
    run plan store verify
    [ "$status" -eq 1 ]
    [[ "$output" == *"missing"*"other-1"* ]]
    [[ "$output" == *"unregistered"*"stray-1"* ]]
    [[ "$output" != *"modified"* ]]
    run plan --json store verify --check-contents
    [ "$status" -eq 1 ]
    [[ "$output" == *'"kind": "modified"'* ]]
    [[ "$output" == *'"kind": "writable"'* ]]
}

@test "durability: deferred by default and settled by gc; 'immediate' flushes at once; a bad value is refused" {
    add >/dev/null
    run plan --json store verify
    [ "$status" -eq 0 ]
    [[ "$output" == *'"paths": 1'* ]]
    run plan store verify
    [[ "$output" == *"1 path and 0 profile generations not known to be on disk yet"* ]]
    # What a flush settles is what was registered before the second it
    # started in.
    sleep 1.1
    run plan gc
    [ "$status" -eq 0 ]
    run plan --json store verify
    [[ "$output" == *'"paths": 0'* ]]
    # a path gc deletes takes its unsettled row along, even one registered
    # in the second of the flush (which the flush does not settle)
    plan store add "$SRC" --name third --version 1 >/dev/null
    plan -q gc
    run plan --json store verify
    [[ "$output" == *'"paths": 0'* ]] || { echo "$output"; false; }
    printf 'durability: immediate\n' >"$ROOT/config.yaml"
    plan store add "$SRC" --name other --version 1 >/dev/null
    run plan --json store verify
    [ "$status" -eq 0 ]
    [[ "$output" == *'"paths": 0'* ]]
    printf 'durability: sometimes\n' >"$ROOT/config.yaml"
    run plan store verify
    [ "$status" -eq 1 ]
    [[ "$output" == *"config.yaml:1:"*"'sometimes' is neither 'deferred'"*"nor 'immediate'"* ]]
}

@test "store export is byte-identical twice; import restores a wiped root" {
    a=$(add)
    plan store export "$a" -o "$BATS_TEST_TMPDIR/one.tar.zst"
    plan store export "$a" -o "$BATS_TEST_TMPDIR/two.tar.zst"
    cmp "$BATS_TEST_TMPDIR/one.tar.zst" "$BATS_TEST_TMPDIR/two.tar.zst"
    # a plain tar can read it
    tar --zstd -tf "$BATS_TEST_TMPDIR/one.tar.zst" | grep -q '^plan-export.json$'
    wipe "$ROOT"
    run plan store import "$BATS_TEST_TMPDIR/one.tar.zst"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "$a" ]
    [[ "$output" == *"imported 1 path, 0 already present"* ]]
    [ -x "$a/bin/hello" ]
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    run plan --json store import "$BATS_TEST_TMPDIR/one.tar.zst"
    [[ "$output" == *'"present"'*"$(basename "$a")"* ]]
}

@test "store import seals directories alike as root (born 0555) and as a user (chmod after)" {
    unpriv_dir
    # one root both can reach, since an archive is made for one store directory
    chmod 0755 "$u"
    ROOT=$u/root
    mkdir -p "$SRC/share/doc/deep/er"
    echo x >"$SRC/share/doc/deep/er/file"
    a=$(add)
    plan store export "$a" -o "$u/one.tar.zst"
    listing() { (cd "$1" && find . -printf '%y %m %T@ %P\n' | sort); }
    wipe "$ROOT"
    plan store import "$u/one.tar.zst" >/dev/null
    listing "$a" >"$u/as-root"
    wipe "$ROOT"
    chown -R 65534:65534 "$u"
    setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$u" \
        "$PLAN" --root "$ROOT" store import "$u/one.tar.zst" >/dev/null
    listing "$a" >"$u/as-user"
    diff "$u/as-root" "$u/as-user"
    grep -q '^d 555 1.0000000000 share/doc/deep/er$' "$u/as-root"
    [ -z "$(awk '$1 == "d" && ($2 != 555 || $3 != "1.0000000000")' "$u/as-root")" ]
}

@test "store export --closure carries references; without them import explains" {
    lib_and_app
    plan store export "$app" -o "$BATS_TEST_TMPDIR/alone.tar.zst"
    plan store export "$app" --closure -o "$BATS_TEST_TMPDIR/closure.tar.zst"
    wipe "$ROOT"
    run plan store import "$BATS_TEST_TMPDIR/alone.tar.zst"
    [ "$status" -eq 1 ]
    [[ "$output" == *"refers to '$(basename "$lib")'"*"--closure"* ]]
    [ -z "$(ls "$ROOT/store")" ]
    run plan store import "$BATS_TEST_TMPDIR/closure.tar.zst"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -ge 2 ]
}

@test "store import of several archives is one batch: references across them, all or nothing" {
    lib_and_app
    plan store export "$app" -o "$BATS_TEST_TMPDIR/app.tar.zst"
    plan store export "$lib" -o "$BATS_TEST_TMPDIR/lib.tar.zst"
    printf 'not an export' >"$BATS_TEST_TMPDIR/bad.tar.zst"
    wipe "$ROOT"
    # one bad archive: nothing of the batch lands
    run plan store import "$BATS_TEST_TMPDIR/app.tar.zst" "$BATS_TEST_TMPDIR/lib.tar.zst" \
        "$BATS_TEST_TMPDIR/bad.tar.zst"
    [ "$status" -eq 1 ]
    [[ "$output" == *"bad.tar.zst"* ]] || { echo "$output"; false; }
    [ -z "$(ls "$ROOT/store")" ]
    # the referrer first: the batch has what it refers to
    run plan store import "$BATS_TEST_TMPDIR/app.tar.zst" "$BATS_TEST_TMPDIR/lib.tar.zst"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"imported 2 paths, 0 already present"* ]]
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    run plan --json store path-info "$app"
    [[ "$output" == *"$(basename "$lib")"* ]]
    run plan store import
    [ "$status" -eq 2 ]
}

@test "store import of a tree far deeper than the directories it keeps open, with few descriptors" {
    p="$BATS_TEST_TMPDIR/deep"
    for i in $(seq 120); do p="$p/d$i"; done
    mkdir -p "$p"
    echo leaf >"$p/f"
    deep=$(plan store add "$BATS_TEST_TMPDIR/deep" --name deep --version 1)
    plan store export "$deep" -o "$BATS_TEST_TMPDIR/deep.tar.zst"
    wipe "$ROOT"
    run bash -c 'ulimit -n 64; "$0" --root "$1" store import "$2"' "$PLAN" "$ROOT" \
        "$BATS_TEST_TMPDIR/deep.tar.zst"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
}

@test "store import refuses an archive made for another store directory" {
    a=$(add)
    plan store export "$a" -o "$BATS_TEST_TMPDIR/x.tar.zst"
    run "$PLAN" --root "$BATS_TEST_TMPDIR/other" store import "$BATS_TEST_TMPDIR/x.tar.zst"
    [ "$status" -eq 1 ]
    [[ "$output" == *"holds paths for the store '$ROOT/store'"* ]]
}

@test "store repair restores modified and deleted paths from an export" {
    a=$(add)
    plan store export "$a" -o "$BATS_TEST_TMPDIR/x.tar.zst"
    chmod u+w "$a/bin" "$a/bin/hello"
    echo 'rm -rf /' >"$a/bin/hello"
    run plan store verify --check-contents
    [ "$status" -eq 1 ]
    run plan store repair "$a" --from "$BATS_TEST_TMPDIR/x.tar.zst"
    [ "$status" -eq 0 ]
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    [ "$(cat "$a/bin/hello")" = "$(cat "$SRC/bin/hello")" ]
    wipe "$a"
    run plan store repair "$a" --from "$BATS_TEST_TMPDIR/x.tar.zst"
    [ "$status" -eq 0 ]
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    # without --from and without registries: a failure that names the ways out
    run plan store repair "$a"
    [ "$status" -eq 1 ]
    [[ "$output" == *"--from FILE"* ]]
    run plan store repair
    [ "$status" -eq 2 ]
}

@test "store optimise links identical files and verify still passes" {
    a=$(add)
    b=$(plan store add "$SRC" --name copy --version 1)
    run plan store optimise
    [ "$status" -eq 0 ]
    [[ "$output" == "linked 2 files, saved "* ]]
    [ "$(stat -c %i "$a/bin/hello")" = "$(stat -c %i "$b/bin/hello")" ]
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    run plan --json store optimise
    [[ "$output" == *'"files_linked": 0'* ]]
}

@test "two concurrent adds of the same tree both succeed with one path" {
    for i in $(seq 1 200); do head -c 2000 /dev/urandom >"$SRC/f$i"; done
    add >"$BATS_TEST_TMPDIR/p1" & p1=$!
    add >"$BATS_TEST_TMPDIR/p2" & p2=$!
    wait $p1
    wait $p2
    cmp "$BATS_TEST_TMPDIR/p1" "$BATS_TEST_TMPDIR/p2"
    [ "$(ls "$ROOT/store" | wc -l)" -eq 1 ]
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
}

@test "an add killed midway leaves nothing after the next start" {
    for i in $(seq 1 400); do head -c 100000 /dev/zero >"$SRC/f$i"; echo $i >>"$SRC/f$i"; done
    # exec: $! must be plan itself, not a subshell running the add function
    # (killing that would leave plan running)
    (exec "$PLAN" --root "$ROOT" store add "$SRC" --name hello --version 1.0 --threads 1) & pid=$!
    sleep 0.05
    kill -9 $pid || true
    wait $pid || true
    run plan store verify
    # either it finished (one complete registered path) or nothing is there
    [ "$status" -eq 0 ]
    [ -z "$(ls "$ROOT/store/.tmp")" ]
}

@test "store add refuses links that leave the path, so every path survives export and import" {
    ln -s /etc/passwd "$SRC/abs"
    run plan store add "$SRC" --name x --version 1
    [ "$status" -eq 1 ]
    [[ "$output" == *"abs' is a symlink that points outside the store"* ]]
    rm "$SRC/abs"
    ln -s ../../etc "$SRC/share/up"
    run plan store add "$SRC" --name x --version 1
    [ "$status" -eq 1 ]
    [[ "$output" == *"escapes its store path"* ]]
    rm "$SRC/share/up"
    ln -s doc/README "$SRC/share/ok"
    a=$(plan store add "$SRC" --name x --version 1)
    plan store export "$a" -o "$BATS_TEST_TMPDIR/x.tar.zst"
    wipe "$ROOT"
    plan store import "$BATS_TEST_TMPDIR/x.tar.zst"
    [ "$(cat "$a/share/ok")" = "hello, world" ]
}
