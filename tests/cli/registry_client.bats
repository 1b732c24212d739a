#!/usr/bin/env bats
# The registry client against a real plan-registry on loopback: update
# with its checks, publish -> install round trip, a static mirror, and
# attacks refused with nothing registered.

load helpers

setup() {
    common_setup
    DATA="$BATS_TEST_TMPDIR/data"
    KEYS="$BATS_TEST_TMPDIR/keys"
    export PLAN_RUN_DIR="$BATS_TEST_TMPDIR/run"
    REGKEY=$(registry init "$DATA" 2>/dev/null)
    ALICE=$(regsign keygen "$KEYS" alice)
    registry publisher add "$DATA" '*' "$ALICE" 2>/dev/null
    TOKEN=$(registry token create "$DATA" --scope publish-new,publish-update,yank --rate 0 \
        2>/dev/null)
    reg_start "$DATA"
    plan registry add main "$REG_URL" --key "$REGKEY" 2>/dev/null
}

teardown() { bg_cleanup; }

# hello 1.0.0 published from this root's store, then collected here so
# that it must come back from the registry.
publish_hello() {
    reg_package hello 1.0.0 >/dev/null
    [ "$(reg_publish "$TOKEN" hello-1.0.0)" = 201 ] || { cat "$BATS_TEST_TMPDIR/body"; false; }
    plan -q gc >/dev/null
    [ -z "$(ls "$ROOT/store")" ]
}

@test "update verifies and caches the signed metadata; a second update is a no-op" {
    publish_hello
    run plan --json registry update
    [ "$status" -eq 0 ]
    [[ "$output" == *'"changed": true'* ]]
    [[ "$output" == *'"indexes_fetched": 1'* ]]
    run plan --json registry update
    [[ "$output" == *'"changed": false'* ]]
    run plan search hel
    [[ "$output" == *"hello"*"main"* ]]
    run plan info hello
    [[ "$output" == *"1.0.0"*"(not trusted)"* ]]
}

@test "publish -> install round trip: downloaded, verified, imported, on PATH" {
    publish_hello
    plan keys trust "$ALICE"
    run plan install hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    # A small archive is imported from memory: nothing in the download cache.
    [ -z "$(ls "$ROOT/cache/archives" 2>/dev/null | grep '\.tar\.zst$')" ]
    run "$ROOT/profiles/default/current/bin/hello"
    [ "$output" = "hello" ]
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    run plan list --json
    [[ "$output" == *'"hello"'* ]]
}

@test "a cache updated minutes ago is not asked again; what it lacks makes plan ask; upgrade always asks" {
    publish_hello
    plan keys trust "$ALICE"
    run plan install hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    seq 1 50 >"$SRC/share/doc/README"
    reg_package hello 1.1.0 >/dev/null
    [ "$(reg_publish "$TOKEN" hello-1.1.0)" = 201 ]
    # Fresh: the request is solved from the cache, which knows 1.0.0 only.
    run plan --json install hello@^1.0.0
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *'"changed": false'* ]] || { echo "$output"; false; }
    # What the cache cannot give makes plan ask the registry, once.
    run plan install hello@1.1.0
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run plan list --json
    [[ "$output" == *'"1.1.0"'* ]] || { echo "$output"; false; }
    # Fresh and unreachable: nothing to warn about, nothing was asked.
    reg_stop
    run plan install hello@1.1.0
    [ "$status" -eq 0 ]
    [[ "$output" != *"not updated"* ]] || { echo "$output"; false; }
    # upgrade asks every time: the unreachable registry is a warning.
    run plan upgrade
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"registry 'main' not updated"* ]] || { echo "$output"; false; }
    # registry-refresh 0: install asks every time too.
    printf 'registry-refresh: 0\n' >"$ROOT/config.yaml"
    run plan install hello@1.1.0
    [[ "$output" == *"registry 'main' not updated"* ]] || { echo "$output"; false; }
    printf 'registry-refresh: soon\n' >"$ROOT/config.yaml"
    run plan install hello@1.1.0
    [ "$status" -eq 1 ]
    [[ "$output" == *"'soon' is not a number of seconds"* ]] || { echo "$output"; false; }
}

@test "gc removes the downloaded archive; the profile keeps working and a reinstall downloads again" {
    # Over 256 KiB (random bytes do not compress): it goes through the
    # download cache.  A small archive is imported from memory instead,
    # and never lands there.
    head -c 300000 /dev/urandom >"$SRC/share/blob"
    publish_hello
    plan keys trust "$ALICE"
    plan -q install hello
    [ "$(ls "$ROOT/cache/archives" | grep -c '\.tar\.zst$')" -eq 1 ]
    run plan gc
    [ "$status" -eq 0 ]
    [[ "$output" == *"removed 1 downloaded archive"* ]] || { echo "$output"; false; }
    [ -z "$(ls "$ROOT/cache/archives" | grep '\.tar\.zst$')" ]
    run "$ROOT/profiles/default/current/bin/hello"
    [ "$output" = "hello" ]
    plan -q remove hello
    plan -q gc --delete-generations +1 --yes
    [ -z "$(ls "$ROOT/store")" ]
    run plan install hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run "$ROOT/profiles/default/current/bin/hello"
    [ "$output" = "hello" ]
}

@test "the client cache is verified on every read: an edited index is refused, a damaged snapshot only costs speed" {
    publish_hello
    plan keys trust "$ALICE"
    plan -q registry update
    DB="$ROOT/var/db/registry.db"
    [ "$(sqlite3 "$DB" "SELECT snapshot_doc IS NOT NULL FROM registry WHERE name = 'main'")" = 1 ]
    # the index no longer hashes to what the signed snapshot declares, and
    # its own signature no longer verifies
    cp "$DB" "$BATS_TEST_TMPDIR/good.db"
    sqlite3 "$DB" "UPDATE index_cache SET text = CAST(replace(CAST(text AS TEXT), '\"1.0.0\"', '\"1.0.1\"') AS BLOB) WHERE name = 'hello'"
    run plan install hello
    [ "$status" -ne 0 ]
    [[ "$output" == *"the cached index 'hello' of registry 'main'"* ]] || { echo "$output"; false; }
    [ -z "$(ls "$ROOT/store")" ]
    # a snapshot that no longer verifies: every index is checked on its own
    cp "$BATS_TEST_TMPDIR/good.db" "$DB"
    sqlite3 "$DB" "UPDATE registry SET snapshot_doc = CAST(replace(CAST(snapshot_doc AS TEXT), '\"version\"', '\"versiom\"') AS BLOB)"
    run plan install hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$("$ROOT/profiles/default/current/bin/hello")" = hello ]
}

@test "a registry rotates its key: a client pinned to the old one follows the signed chain, twice" {
    publish_hello
    plan keys trust "$ALICE"
    plan -q install hello
    OLD=$(jq -r '.registries[0].key' "$ROOT/registries.json")
    addr=${REG_URL#http://}
    reg_stop
    K2=$(registry key rotate "$DATA" 2>/dev/null)
    K3=$(registry key rotate "$DATA" 2>/dev/null)
    [ -n "$K3" ] && [ "$K2" != "$K3" ]
    [ "$(jq '.rotations | length' "$DATA/static/rotations.json")" = 2 ]
    reg_start "$DATA" --listen "$addr"
    run plan registry update
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"registry 'main' rotated its key: '$K3' now pinned"* ]] || { echo "$output"; false; }
    [ "$(jq -r '.registries[0].key' "$ROOT/registries.json")" = "$K3" ]
    # the versions seen before carry over: the snapshot only went up
    [ "$(sqlite3 "$ROOT/var/db/registry.db" "SELECT snapshot_version > 1 FROM registry")" = 1 ]
    run plan --json registry update
    [ "$(jq -r .rotated <<<"$output")" = false ]
    # everything now verifies with the new key
    plan -q remove hello
    plan -q gc --delete-generations +1 --yes
    run plan install hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$("$ROOT/profiles/default/current/bin/hello")" = hello ]
    [ "$OLD" != "$K3" ]
}

@test "a key rotation the pinned key did not sign is refused; the pinned key stays" {
    publish_hello
    plan -q registry update
    OLD=$(jq -r '.registries[0].key' "$ROOT/registries.json")
    addr=${REG_URL#http://}
    reg_stop
    registry key rotate "$DATA" >/dev/null 2>&1
    # someone else's key in the statement: neither signature fits it
    MALLORY=$(regsign keygen "$KEYS" mallory)
    jq --arg k "$MALLORY" '.rotations[0].signed.key = $k' "$DATA/static/rotations.json" \
        >"$BATS_TEST_TMPDIR/rot.json"
    chmod u+w "$DATA/static/rotations.json"
    cp "$BATS_TEST_TMPDIR/rot.json" "$DATA/static/rotations.json"
    reg_start "$DATA" --listen "$addr"
    run plan registry update
    [ "$status" -ne 0 ]
    [[ "$output" == *"a key rotation of registry 'main'"* ]] || { echo "$output"; false; }
    [ "$(jq -r '.registries[0].key' "$ROOT/registries.json")" = "$OLD" ]
    # and without any statement, a registry signing with another key is
    # refused as before, naming the pinned key
    rm "$DATA/static/rotations.json"
    run plan registry update
    [ "$status" -ne 0 ]
    [[ "$output" == *"not signed by the pinned key"* ]] || { echo "$output"; false; }
}

@test "a package signed by an untrusted key is refused, naming the key and the way out" {
    publish_hello
    run plan install hello
    [ "$status" -eq 1 ]
    [[ "$output" == *"does not trust"* ]]
    [[ "$output" == *"plan keys trust"* ]]
    [ -z "$(ls "$ROOT/store")" ]
}

@test "a wrong pinned key refuses the registry's metadata" {
    publish_hello
    plan registry remove main
    OTHER=$(regsign keygen "$KEYS" other)
    plan registry add main "$REG_URL" --key "main:${OTHER#*:}"
    run plan registry update
    [ "$status" -eq 1 ]
    [[ "$output" == *"not signed by the pinned key"* ]]
}

@test "an exported static mirror works as a registry, over plain HTTP and file://" {
    publish_hello
    registry export "$DATA" "$BATS_TEST_TMPDIR/mirror" 2>/dev/null
    reg_stop
    start_bg "$BATS_TEST_TMPDIR/httpd.out" "$PLAN_TOOLS/httpd" "$BATS_TEST_TMPDIR/mirror" \
        "$BATS_TEST_TMPDIR/port"
    wait_until 100 test -s "$BATS_TEST_TMPDIR/port"
    plan registry remove main
    plan registry add mirror "http://127.0.0.1:$(cat "$BATS_TEST_TMPDIR/port")" --key "$REGKEY"
    plan keys trust "$ALICE"
    run plan install hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    "$ROOT/profiles/default/current/bin/hello"
    # and as files
    plan -q remove hello
    plan -q gc --delete-generations +1 --yes
    plan -q gc
    plan registry remove mirror
    plan registry add files "file://$BATS_TEST_TMPDIR/mirror" --key "$REGKEY"
    run plan install hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
}

@test "archive bytes changed on the server: refused, nothing registered" {
    publish_hello
    plan keys trust "$ALICE"
    a=$(ls "$DATA"/static/archives/*.tar.zst)
    chmod u+w "$a"
    printf 'X' | dd of="$a" bs=1 seek=100 conv=notrunc 2>/dev/null
    run plan install hello
    [ "$status" -eq 1 ]
    [[ "$output" == *"BLAKE2b"* || "$output" == *"changed"* ]]
    [ -z "$(ls "$ROOT/store")" ]
}

@test "an older timestamp replayed is refused; the same one again is a no-op" {
    publish_hello
    plan registry update
    cp "$DATA/static/timestamp.json" "$BATS_TEST_TMPDIR/old-ts.json"
    cp "$DATA/static/snapshot.json" "$BATS_TEST_TMPDIR/old-sn.json"
    run plan registry update
    [ "$status" -eq 0 ]
    reg_package hello 1.1.0 >/dev/null
    [ "$(reg_publish "$TOKEN" hello-1.1.0)" = 201 ]
    plan registry update
    # a mirror that went back in time
    mkdir -p "$BATS_TEST_TMPDIR/stale"
    cp -r "$DATA/static/." "$BATS_TEST_TMPDIR/stale/"
    cp "$BATS_TEST_TMPDIR/old-ts.json" "$BATS_TEST_TMPDIR/stale/timestamp.json"
    cp "$BATS_TEST_TMPDIR/old-sn.json" "$BATS_TEST_TMPDIR/stale/snapshot.json"
    plan registry remove main
    plan registry add main "file://$BATS_TEST_TMPDIR/stale" --key "$REGKEY"
    run plan registry update
    [ "$status" -eq 1 ]
    [[ "$output" == *"rollback"* ]]
}

@test "an expired timestamp is refused (freeze)" {
    reg_stop
    reg_start "$DATA" --timestamp-lifetime 2
    publish_hello # signs a timestamp that lives 2 s
    mkdir -p "$BATS_TEST_TMPDIR/frozen"
    cp -r "$DATA/static/." "$BATS_TEST_TMPDIR/frozen/"
    plan registry remove main
    plan registry add frozen "file://$BATS_TEST_TMPDIR/frozen" --key "$REGKEY"
    sleep 3
    run plan registry update
    [ "$status" -eq 1 ]
    [[ "$output" == *"expired"* ]]
}

@test "an index from another snapshot is refused (mix and match)" {
    publish_hello
    cp "$DATA/static/index/hello.json" "$BATS_TEST_TMPDIR/old-index.json"
    reg_package hello 1.1.0 >/dev/null
    [ "$(reg_publish "$TOKEN" hello-1.1.0)" = 201 ]
    mkdir -p "$BATS_TEST_TMPDIR/mixed"
    cp -r "$DATA/static/." "$BATS_TEST_TMPDIR/mixed/"
    cp "$BATS_TEST_TMPDIR/old-index.json" "$BATS_TEST_TMPDIR/mixed/index/hello.json"
    plan registry remove main
    plan registry add mixed "file://$BATS_TEST_TMPDIR/mixed" --key "$REGKEY"
    run plan registry update
    [ "$status" -eq 1 ]
    [[ "$output" == *"does not match what the signed metadata declares"* ]]
    run plan --json search hello
    [[ "$output" == *'"results": []'* ]]
}

@test "a response beyond its declared size is cut off and refused" {
    publish_hello
    mkdir -p "$BATS_TEST_TMPDIR/big"
    cp -r "$DATA/static/." "$BATS_TEST_TMPDIR/big/"
    head -c 200000 /dev/zero >>"$BATS_TEST_TMPDIR/big/timestamp.json"
    plan registry remove main
    plan registry add big "file://$BATS_TEST_TMPDIR/big" --key "$REGKEY"
    run plan registry update
    [ "$status" -eq 1 ]
    [[ "$output" == *"larger than"* ]]
}

@test "plan publish builds, signs and uploads a recipe and its closure; install brings it back" {
    pub=$(plan keys generate bob 2>/dev/null)
    registry publisher add "$DATA" '*' "$pub" 2>/dev/null
    run plan publish "$PLAN_SRC/examples/recipes/hello.yaml" --key bob --token "$TOKEN"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"published greet 1.0.0"* ]]
    [[ "$output" == *"published hello 1.0.0"* ]]
    # again: nothing to send
    run plan publish "$PLAN_SRC/examples/recipes/hello.yaml" --key bob --token "$TOKEN"
    [ "$status" -eq 0 ]
    [[ "$output" == *"has all of it already"* ]]
    plan -q gc
    [ -z "$(ls "$ROOT/store")" ]
    plan keys trust "$pub"
    run plan install hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run "$ROOT/profiles/default/current/bin/hello" registry
    [[ "$output" == *"hello, registry"* ]]
    # yanked: never chosen anew
    run plan yank hello 1.0.0 --token "$TOKEN"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    plan registry update
    run plan --json info hello
    [[ "$output" == *'"yanked": true'* ]]
}

@test "publishing without a token or key says what is missing" {
    run plan publish "$PLAN_SRC/examples/recipes/greet.yaml" --key nobody
    [ "$status" -eq 1 ]
    [[ "$output" == *"needs a token"* ]]
    run plan publish "$PLAN_SRC/examples/recipes/greet.yaml" --token "$TOKEN" --key nobody
    [ "$status" -eq 1 ]
    [[ "$output" == *"no secret key 'nobody'"* ]]
    run plan publish "$PLAN_SRC/examples/recipes/greet.yaml" --token wrong --key nobody
    [ "$status" -eq 1 ]
}

@test "a name published by a higher-priority registry is never shadowed by a lower one" {
    # main (first) publishes hello 1.0.0; a second registry publishes 9.0.0
    publish_hello
    DATA2="$BATS_TEST_TMPDIR/data2"
    REGKEY2=$(registry init "$DATA2" 2>/dev/null)
    registry publisher add "$DATA2" '*' "$ALICE" 2>/dev/null
    TOKEN2=$(registry token create "$DATA2" --scope publish-new,publish-update --rate 0 2>/dev/null)
    url1=$REG_URL
    pid1=$REG_PID
    reg_start "$DATA2"
    reg_package hello 9.0.0 >/dev/null
    [ "$(reg_publish "$TOKEN2" hello-9.0.0)" = 201 ]
    plan -q gc
    plan registry add other "$REG_URL" --key "$REGKEY2"
    plan keys trust "$ALICE"
    run plan install hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run plan --json list
    [[ "$output" == *'"version": "1.0.0"'* ]]
    [[ "$output" != *"9.0.0"* ]]
}

@test "a newer dependency does not break an archive built against an older one; yanked stays for its lock" {
    cp -r "$PLAN_SRC/examples/recipes" "$PLAN_SRC/examples/src" "$BATS_TEST_TMPDIR/"
    pub=$(plan keys generate bob 2>/dev/null)
    registry publisher add "$DATA" '*' "$pub" 2>/dev/null
    # hello is built (and published) against greet 1.0.0 ...
    plan -q publish "$BATS_TEST_TMPDIR/recipes/hello.yaml" --key bob --token "$TOKEN"
    # ... then greet 1.1.0 appears
    sed 's/^version: 1.0.0/version: 1.1.0/' "$BATS_TEST_TMPDIR/recipes/greet.yaml" \
        >"$BATS_TEST_TMPDIR/recipes/greet-1.1.yaml"
    plan -q publish "$BATS_TEST_TMPDIR/recipes/greet-1.1.yaml" --key bob --token "$TOKEN"
    plan --json info greet | grep -q '"version": "1.1.0"'
    plan -q gc
    plan keys trust "$pub"
    run plan install hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run plan list
    echo "$output" | grep -Eq '^greet +1\.0\.0 '
    ! echo "$output" | grep -q '1\.1\.0'
    "$ROOT/profiles/default/current/bin/hello"
    # hello 1.0.0 yanked: the profile keeps it on upgrade
    plan yank hello 1.0.0 --token "$TOKEN"
    run plan upgrade hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    "$ROOT/profiles/default/current/bin/hello"
}

@test "--frozen never downloads from a registry" {
    publish_hello
    plan keys trust "$ALICE"
    mkdir -p "$BATS_TEST_TMPDIR/proj"
    cd "$BATS_TEST_TMPDIR/proj"
    printf 'packages:\n  hello: ^1.0.0\n' >plan.yaml
    plan -q lock
    plan -q gc
    run plan env --frozen -- true
    [ "$status" -eq 1 ]
    [[ "$output" == *"never downloads"* ]]
    run plan env -- hello
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run plan env --frozen -- hello
    [ "$status" -eq 0 ]
}

@test "plan store repair restores a damaged path from the registry that publishes it" {
    publish_hello
    plan keys trust "$ALICE"
    plan -q install hello
    p=$(ls -d "$ROOT"/store/*-hello-1.0.0)
    chmod u+w "$p/bin" "$p/bin/hello"
    echo 'echo tampered' >>"$p/bin/hello"
    run plan store verify --check-contents
    [ "$status" -eq 1 ]
    run plan store repair "$p"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
    run "$ROOT/profiles/default/current/bin/hello"
    [ "$output" = "hello" ]
    # without any registry it says what to do
    plan registry remove main
    run plan store repair "$p"
    [ "$status" -eq 1 ]
    [[ "$output" == *"--from FILE"* ]]
}

@test "plan store repair asks a registry whose fresh cache lacks the path, then repairs" {
    reg_package hello 1.0.0 >/dev/null
    p=$(ls -d "$ROOT"/store/*-hello-1.0.0)
    plan -q registry update # fresh, and without hello: it is published only now
    [ "$(reg_publish "$TOKEN" hello-1.0.0)" = 201 ]
    plan keys trust "$ALICE"
    chmod u+w "$p/bin" "$p/bin/hello"
    echo 'echo tampered' >>"$p/bin/hello"
    run plan store repair "$p"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run plan store verify --check-contents
    [ "$status" -eq 0 ]
}

@test "an older index put back into the cache is refused, and the next update fetches the current one" {
    publish_hello
    plan keys trust "$ALICE"
    plan -q registry update
    db=$ROOT/var/db/registry.db
    sqlite3 "$db" "CREATE TABLE saved AS SELECT * FROM index_cache WHERE name = 'hello'"
    run plan yank hello 1.0.0 --token "$TOKEN"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    plan -q registry update
    run plan install hello
    [ "$status" -eq 1 ] # its only version is yanked
    # the index from before the yank, validly signed once, put back
    sqlite3 "$db" "DELETE FROM index_cache WHERE name = 'hello'; INSERT INTO index_cache SELECT * FROM saved"
    run plan install hello
    [ "$status" -eq 1 ]
    [[ "$output" == *"is not the one the registry's snapshot names"* ]] || { echo "$output"; false; }
    [ -z "$(ls "$ROOT/store")" ]
    # the timestamp has not moved, yet the update mends the cache
    run plan --json registry update
    [[ "$output" == *'"indexes_fetched": 1'* ]] || { echo "$output"; false; }
    run plan install hello
    [ "$status" -eq 1 ]
    [[ "$output" != *"not the one the registry's snapshot names"* ]] || { echo "$output"; false; }
}

@test "a name no source knows, while a registry cannot be reached, says the registry may be why" {
    plan registry add down http://127.0.0.1:9 --key "$REGKEY" 2>/dev/null
    run plan install nothere
    [ "$status" -eq 1 ]
    [[ "$output" == *"registry 'down' not updated"* ]]
    [[ "$output" == *"registry 'down' could not be reached"* ]] || { echo "$output"; false; }
    [[ "$output" != *"registry 'main' could not"* ]]
}

@test "a redirect to another host is refused" {
    publish_hello
    registry export "$DATA" "$BATS_TEST_TMPDIR/mirror" 2>/dev/null
    start_bg "$BATS_TEST_TMPDIR/httpd.out" "$PLAN_TOOLS/httpd" "$BATS_TEST_TMPDIR/mirror" \
        "$BATS_TEST_TMPDIR/port" "redirect=http://evil.invalid"
    wait_until 100 test -s "$BATS_TEST_TMPDIR/port"
    plan registry remove main
    plan registry add redir "http://127.0.0.1:$(cat "$BATS_TEST_TMPDIR/port")" --key "$REGKEY"
    run plan registry update
    [ "$status" -eq 1 ]
    [[ "$output" == *"redirects to 'http://evil.invalid/timestamp.json'"* ]]
}

@test "a download cut off midway is resumed with a Range request" {
    publish_hello
    registry export "$DATA" "$BATS_TEST_TMPDIR/mirror" 2>/dev/null
    start_bg "$BATS_TEST_TMPDIR/httpd.out" "$PLAN_TOOLS/httpd" "$BATS_TEST_TMPDIR/mirror" \
        "$BATS_TEST_TMPDIR/port" "truncate=100"
    wait_until 100 test -s "$BATS_TEST_TMPDIR/port"
    plan registry remove main
    plan registry add cut "http://127.0.0.1:$(cat "$BATS_TEST_TMPDIR/port")" --key "$REGKEY"
    plan keys trust "$ALICE"
    run plan install hello
    [ "$status" -eq 0 ] || { echo "$output"; cat "$BATS_TEST_TMPDIR/httpd.out"; false; }
    grep -q '^GET /archives/.*bytes=100-' "$BATS_TEST_TMPDIR/httpd.out"
    "$ROOT/profiles/default/current/bin/hello"
}

# app 1.0.0 (needs libx) published by bob from this root's store.
publish_app() {
    R="$BATS_TEST_TMPDIR/recipes"
    plan_recipe "$R" libx 1.0.0 'mkdir -p $out/share
echo libx-data >$out/share/libx.txt'
    plan_recipe "$R" app 1.0.0 'mkdir -p $out/bin
printf "#!/bin/sh\ncat %s/share/libx.txt\n" "$PLAN_DEP_LIBX" >$out/bin/app
chmod +x $out/bin/app' 'depends:
  libx: "^1.0.0"
env:
  PATH: prepend bin'
    BOB=$(plan keys generate bob 2>/dev/null)
    registry publisher add "$DATA" '*' "$BOB" 2>/dev/null
    plan -q publish "$R/app-1.0.0.yaml" --key bob --token "$TOKEN" --recipes "$R"
    ROOT2="$BATS_TEST_TMPDIR/root2"
    "$PLAN" --root "$ROOT2" registry add main "$REG_URL" --key "$REGKEY" 2>/dev/null
    "$PLAN" --root "$ROOT2" keys trust "$BOB" 2>/dev/null
}

@test "a package published for another store directory is built here from its published recipe" {
    publish_app
    run "$PLAN" --root "$ROOT2" install app
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run "$ROOT2/profiles/default/current/bin/app"
    [ "$output" = "libx-data" ]
    # built here: its own store directory, and a build log
    ls "$ROOT2"/store/*-app-1.0.0 "$ROOT2"/store/*-libx-1.0.0
    run "$PLAN" --root "$ROOT2" log "$ROOT2/profiles/default/current/bin/app"
    [ "$status" -eq 0 ]
    # and an environment from the same lock needs no new build
    run "$PLAN" --root "$ROOT2" -v env app -- app
    [ "$status" -eq 0 ]
    [[ "$output" == *"libx-data"* ]]
}

@test "a published recipe that does not match its signed hash is refused; nothing is built" {
    publish_app
    f="$DATA/static/recipes/app/1.0.0.yaml"
    chmod u+w "$f"
    printf '# changed\n' >>"$f"
    run "$PLAN" --root "$ROOT2" install app
    [ "$status" -eq 1 ]
    [[ "$output" == *"does not match the hash its publisher signed"* || "$output" == *"beyond"* ||
        "$output" == *"larger"* ]] || { echo "$output"; false; }
    [ -z "$(ls "$ROOT2/store" 2>/dev/null | grep -- -app-)" ]
}

@test "a package entry changed after its publisher signed it is refused, even re-signed by the registry" {
    # The registry's own key signs the changed index (a compromised
    # registry): only the publisher's signature stands in the way.
    publish_hello
    sqlite3 "$DATA/registry.db" \
        "UPDATE versions SET dependencies = '{\"evil\":\"*\"}' WHERE name = 'hello' AND version = '1.0.0'"
    reg_package hello 1.1.0 >/dev/null
    [ "$(reg_publish "$TOKEN" hello-1.1.0)" = 201 ] # re-signs hello's index, 1.0.0 included
    plan -q gc
    plan keys trust "$ALICE"
    run plan install hello@1.0.0
    [ "$status" -eq 1 ]
    [[ "$output" == *"hello 1.0.0 from registry 'main'"*"signature"* ]] || { echo "$output"; false; }
    [ -z "$(ls "$ROOT/store")" ]
}

@test "publisher checks are remembered under this machine's key alone" {
    publish_hello
    for v in 1.1.0 1.2.0; do
        if [ $v = 1.2.0 ]; then
            # hello 1.0.0 now carries a signature made for another version;
            # publishing 1.2.0 has the registry sign the index with it
            sqlite3 "$DATA/registry.db" "UPDATE versions SET publisher_sig = (SELECT \
                publisher_sig FROM versions WHERE name = 'hello' AND version = '1.1.0') \
                WHERE name = 'hello' AND version = '1.0.0'"
        fi
        reg_package hello $v >/dev/null
        [ "$(reg_publish "$TOKEN" hello-$v)" = 201 ]
    done
    plan -q gc
    plan keys trust "$ALICE"
    # the update checks the newest version of each new index and remembers it
    plan -q registry update
    [ "$(stat -c %a "$ROOT/cache-key")" = 600 ]
    db=$ROOT/var/db/registry.db
    passed=$(sqlite3 "$db" "SELECT passed FROM publisher_checks WHERE registry = 'main' AND name = 'hello'")
    [[ "$passed" == "1.2.0 "* ]] || { echo "remembered: '$passed'"; false; }
    kid=${passed#1.2.0 }
    # a line added by someone who can write the cache but has no key fails
    # the row's tag: 1.0.0 is verified, and refused
    sqlite3 "$db" "UPDATE publisher_checks SET passed = passed || '1.0.0 $kid' || char(10) \
        WHERE name = 'hello'"
    run plan install hello@1.0.0
    [ "$status" -eq 1 ]
    [[ "$output" == *"hello 1.0.0 from registry 'main'"*"signature"* ]] || { echo "$output"; false; }
    [ -z "$(ls "$ROOT/store")" ]
    # ... and the row was written anew, with what verified
    [ "$(sqlite3 "$db" "SELECT passed FROM publisher_checks WHERE name = 'hello'")" = "1.2.0 $kid" ]
    # the same forged lines under the tag the documented format gives with
    # the machine's key are believed: that key is what remembered checks
    # stand on
    sqlite3 "$db" "SELECT writefile('$BATS_TEST_TMPDIR/index', text) FROM index_cache \
        WHERE registry = 'main' AND name = 'hello'" >/dev/null
    printf '1.2.0 %s\n1.0.0 %s\n' "$kid" "$kid" >"$BATS_TEST_TMPDIR/passed"
    tag=$(regsign checks-tag "$ROOT/cache-key" main hello "$BATS_TEST_TMPDIR/index" \
        "$BATS_TEST_TMPDIR/passed")
    sqlite3 "$db" "UPDATE publisher_checks SET tag = X'$tag', \
        passed = CAST(readfile('$BATS_TEST_TMPDIR/passed') AS TEXT) WHERE name = 'hello'"
    plan -q install hello@1.0.0
    plan -q remove hello
    plan -q gc
    # a remembered check counts only while its key is trusted
    plan keys untrust "$kid"
    run plan install hello
    [ "$status" -eq 1 ]
    [[ "$output" == *"does not trust"* ]] || { echo "$output"; false; }
    plan keys trust "$ALICE"
    # a key others could read is no secret: it is made anew, and what it
    # tagged counts for nothing (1.0.0 is refused again)
    old=$(cat "$ROOT/cache-key")
    chmod 0644 "$ROOT/cache-key"
    run plan install hello@1.0.0
    [ "$status" -eq 1 ]
    [[ "$output" == *"signature"* ]] || { echo "$output"; false; }
    [ "$(stat -c %a "$ROOT/cache-key")" = 600 ]
    [ "$(cat "$ROOT/cache-key")" != "$old" ]
}

@test "a validly signed archive that the signed index does not name is refused" {
    # A mirror swaps 1.1.0's archive for 1.0.0's: a real archive, signed by
    # the publisher, but not the one the index lists for 1.1.0.
    publish_hello
    # 1.1.0 is larger, so 1.0.0's archive fits within 1.1.0's signed size
    seq 1 2000 >"$SRC/share/doc/README"
    reg_package hello 1.1.0 >/dev/null
    [ "$(reg_publish "$TOKEN" hello-1.1.0)" = 201 ]
    mkdir -p "$BATS_TEST_TMPDIR/swapped"
    cp -r "$DATA/static/." "$BATS_TEST_TMPDIR/swapped/"
    h10=$(sed 's/.*"archive":{"hash":"blake2b:\([0-9a-f]*\)".*/\1/' "$BATS_TEST_TMPDIR/pkg/hello-1.0.0.package.json")
    h11=$(sed 's/.*"archive":{"hash":"blake2b:\([0-9a-f]*\)".*/\1/' "$BATS_TEST_TMPDIR/pkg/hello-1.1.0.package.json")
    [ -n "$h10" ] && [ "$h10" != "$h11" ]
    chmod -R u+w "$BATS_TEST_TMPDIR/swapped/archives"
    cp "$DATA/static/archives/$h10.tar.zst" "$BATS_TEST_TMPDIR/swapped/archives/$h11.tar.zst"
    plan registry remove main
    plan registry add swapped "file://$BATS_TEST_TMPDIR/swapped" --key "$REGKEY"
    plan -q gc
    plan keys trust "$ALICE"
    run plan install hello@1.1.0
    [ "$status" -eq 1 ]
    [[ "$output" == *"not the "*" signed for it"* ]] || { echo "$output"; false; }
    [ -z "$(ls "$ROOT/store")" ]
}

@test "an archive holding another path than its signed package names: the registry refuses it (400)" {
    # A trusted publisher signs hello 1.0.0 naming one store path, with the
    # archive of another (every hash matches what was signed).  The
    # client would refuse it too (tests/unit/store_store.c, the import
    # stream); the registry does not even take it.
    dir="$BATS_TEST_TMPDIR/pkg"
    mkdir -p "$dir" "$BATS_TEST_TMPDIR/other"
    printf 'other\n' >"$BATS_TEST_TMPDIR/other/data"
    p=$(plan store add "$SRC" --name hello --version 1.0.0)
    o=$(plan store add "$BATS_TEST_TMPDIR/other" --name hello --version 1.0.0)
    plan --json store path-info "$p" >"$dir/hello-1.0.0.info"
    plan store export "$o" -o "$dir/hello-1.0.0.tar.zst" 2>/dev/null
    printf 'name: hello\nversion: 1.0.0\nbuild: |\n  true\n' >"$dir/hello-1.0.0.yaml"
    regsign package "$KEYS" alice "$dir/hello-1.0.0.info" "$dir/hello-1.0.0.tar.zst" \
        "$dir/hello-1.0.0.yaml" "$dir/hello-1.0.0"
    before=$(static_state "$DATA")
    [ "$(reg_publish "$TOKEN" hello-1.0.0)" = 400 ]
    grep -q "the archive holds '${o##*/}', but the package is '${p##*/}'" "$BATS_TEST_TMPDIR/body" ||
        { cat "$BATS_TEST_TMPDIR/body"; false; }
    [ "$(static_state "$DATA")" = "$before" ]
    # Nor an archive that is no export at all (right hash, signed).
    printf 'not an export' >"$dir/hello-1.0.0.tar.zst"
    regsign package "$KEYS" alice "$dir/hello-1.0.0.info" "$dir/hello-1.0.0.tar.zst" \
        "$dir/hello-1.0.0.yaml" "$dir/hello-1.0.0"
    [ "$(reg_publish "$TOKEN" hello-1.0.0)" = 400 ]
    grep -q "the archive is not an export of the store path" "$BATS_TEST_TMPDIR/body" ||
        { cat "$BATS_TEST_TMPDIR/body"; false; }
    [ "$(static_state "$DATA")" = "$before" ]
}

@test "plan publish PATH publishes a store path without a recipe; another store directory is told why it cannot have it" {
    BOB=$(plan keys generate bob 2>/dev/null)
    registry publisher add "$DATA" '*' "$BOB" 2>/dev/null
    p=$(plan store add "$SRC" --name tree --version 2.0.0)
    run plan publish "$p" --key bob --token "$TOKEN"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"published tree 2.0.0"*"without a recipe"* ]]
    run plan publish "$BATS_TEST_TMPDIR/nothing-here" --key bob --token "$TOKEN"
    [ "$status" -eq 1 ]
    [[ "$output" == *"neither a recipe"* ]]
    plan -q gc
    [ -z "$(ls "$ROOT/store")" ]
    plan keys trust "$BOB"
    run plan install tree
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    run "$ROOT/profiles/default/current/bin/hello"
    [ "$output" = "hello" ]
    ROOT2="$BATS_TEST_TMPDIR/root2"
    "$PLAN" --root "$ROOT2" registry add main "$REG_URL" --key "$REGKEY" 2>/dev/null
    "$PLAN" --root "$ROOT2" keys trust "$BOB" 2>/dev/null
    run "$PLAN" --root "$ROOT2" install tree
    [ "$status" -eq 1 ]
    [[ "$output" == *"published without a recipe"* ]] || { echo "$output"; false; }
}

@test "a merged plan publishes (as a path) and installs from the registry like any other" {
    R="$BATS_TEST_TMPDIR/recipes"
    tool_recipe "$R" ta 1.0.0 ta from-a
    tool_recipe "$R" tb 1.0.0 tb from-b
    m=$(plan merge --recipes "$R" ta tb -o tools@1.0.0)
    [ -d "$m" ]
    BOB=$(plan keys generate bob 2>/dev/null)
    registry publisher add "$DATA" '*' "$BOB" 2>/dev/null
    run plan publish "$m" --key bob --token "$TOKEN" --recipes "$R"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"published tools 1.0.0"*"without a recipe"* ]]
    plan -q gc
    [ -z "$(ls "$ROOT/store")" ]
    plan keys trust "$BOB"
    run plan install tools
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$("$ROOT/profiles/default/current/bin/ta")" = from-a ]
    [ "$("$ROOT/profiles/default/current/bin/tb")" = from-b ]
    run plan --json store path-info "$m"
    [[ "$output" == *lineage* ]]
}
