#!/usr/bin/env bats
# plan-registry: init, tokens, publishers, the read side over HTTP, publish
# and every refusal (each leaving the registry unchanged), yank and export.
# A real server on a loopback port; curl as the client.

load helpers

setup() {
    common_setup
    DATA="$BATS_TEST_TMPDIR/data"
    KEYS="$BATS_TEST_TMPDIR/keys"
    REGKEY=$(registry init "$DATA" 2>/dev/null)
    ALICE=$(regsign keygen "$KEYS" alice)
    registry publisher add "$DATA" 'hello*' "$ALICE" 2>/dev/null
    TOKEN=$(registry token create "$DATA" --scope publish-new,publish-update,yank:'hello*' \
        --rate 0 2>/dev/null)
}

teardown() { bg_cleanup; }

@test "--help for the program and every command; usage errors exit 2" {
    run registry --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"token create DATA --scope S"* ]]
    for c in init token publisher serve export; do
        run registry "$c" --help
        [ "$status" -eq 0 ]
        [[ "$output" == *"usage: plan-registry $c"* ]]
    done
    run registry
    [ "$status" -eq 2 ]
    run registry frobnicate
    [ "$status" -eq 2 ]
    [[ "$output" == *"unknown command 'frobnicate'"* ]]
    run registry serve "$DATA"
    [ "$status" -eq 2 ]
    [[ "$output" == *"needs --listen"* ]]
    run registry token create "$DATA" --scope 'publish:*'
    [ "$status" -eq 2 ]
    [[ "$output" == *"unknown action 'publish'"* ]]
    run registry serve "$BATS_TEST_TMPDIR/nothing" --listen 127.0.0.1:0
    [ "$status" -eq 1 ]
    [[ "$output" == *"is not a registry"* ]]
}

@test "init makes the registry, prints its key, and refuses to run twice" {
    [[ "$REGKEY" =~ ^registry:[A-Za-z0-9+/]{43}=$ ]]
    [ "$(stat -c %a "$DATA/keys/registry.secret")" = 600 ]
    [ "$(stat -c %a "$DATA/registry.db")" = 600 ]
    [ -d "$DATA/static/index" ] && [ -d "$DATA/static/archives" ] && [ -d "$DATA/static/recipes" ]
    run regsign verify "$REGKEY" "$DATA/static/timestamp.json" timestamp
    [ "$status" -eq 0 ]
    [[ "$output" == *'"type":"timestamp","version":1'* ]]
    run regsign verify "$REGKEY" "$DATA/static/snapshot.json" snapshot
    [ "$status" -eq 0 ]
    [[ "$output" == *'"indexes":{}'* ]]
    # the timestamp names the snapshot by hash and size
    [ "$(jq -r .signed.snapshot.size "$DATA/static/timestamp.json")" = \
      "$(stat -c %s "$DATA/static/snapshot.json")" ]
    [ "$(jq -r .signed.snapshot.hash "$DATA/static/timestamp.json")" = \
      "blake2b:$(b2sum -l 256 "$DATA/static/snapshot.json" | cut -d' ' -f1)" ]
    before=$(static_state "$DATA")
    run registry init "$DATA"
    [ "$status" -eq 1 ]
    [[ "$output" == *"holds a registry already"* ]]
    [ "$(static_state "$DATA")" = "$before" ]
    # a token is printed once and stored only as a hash
    [[ "$TOKEN" =~ ^plan_[0-9a-f]{64}$ ]]
    ! grep -q "$TOKEN" "$DATA/registry.db"
    run registry token list "$DATA"
    [[ "$output" == *"publish-new:hello*,publish-update:hello*,yank:hello*"* ]]
    run registry publisher list "$DATA"
    [[ "$output" == *"hello*"*"${ALICE#alice:}"* ]]
}

@test "serve: the read side with ETag, 304, Range, 416, 404 and no way out of static/" {
    reg_start "$DATA" -v
    ts="$DATA/static/timestamp.json"
    run curl -s -D "$BATS_TEST_TMPDIR/h" -o "$BATS_TEST_TMPDIR/got" -w '%{http_code}' "$REG_URL/timestamp.json"
    [ "$output" = 200 ]
    cmp "$BATS_TEST_TMPDIR/got" "$ts"
    etag="\"$(b2sum -l 256 "$ts" | cut -d' ' -f1)\""
    grep -qi "^etag: $etag" "$BATS_TEST_TMPDIR/h"
    grep -qi '^content-type: application/json' "$BATS_TEST_TMPDIR/h"
    grep -qi "^content-length: $(stat -c %s "$ts")" "$BATS_TEST_TMPDIR/h"
    run curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$REG_URL/timestamp.json"
    [ "$output" = 304 ]
    run curl -s -D "$BATS_TEST_TMPDIR/h" -w '\n%{http_code}' -H 'Range: bytes=2-11' "$REG_URL/timestamp.json"
    [ "${lines[1]}" = 206 ]
    [ "${lines[0]}" = "$(head -c 12 "$ts" | tail -c 10)" ]
    grep -qi "^content-range: bytes 2-11/$(stat -c %s "$ts")" "$BATS_TEST_TMPDIR/h"
    run curl -s -o /dev/null -w '%{http_code}' -H 'Range: bytes=99999-' "$REG_URL/timestamp.json"
    [ "$output" = 416 ]
    run curl -s -o /dev/null -w '%{http_code}' "$REG_URL/index/nothing.json"
    [ "$output" = 404 ]
    for bad in /../registry.db /%2e%2e/registry.db /index/../../keys/registry.secret \
               /.%2e/keys/registry.secret /..%2fregistry.db /%2fetc%2fpasswd; do
        run curl -s --path-as-is -w '\n%{http_code}' "$REG_URL$bad"
        [ "${lines[-1]}" = 400 ] || [ "${lines[-1]}" = 404 ]
        [[ "$output" != *secret* ]] && [[ "$output" != *SQLite* ]] && [[ "$output" != *root:* ]]
    done
    run curl -s -o /dev/null -w '%{http_code}' -X PUT "$REG_URL/timestamp.json"
    [ "$output" = 405 ]
    grep -q '^GET /timestamp.json 304$' "$BATS_TEST_TMPDIR/serve.err"
    reg_stop
}

@test "publish: a signed package lands in the index, snapshot and timestamp, all signed" {
    reg_package hello 1.0.0 '{"greet": "^1.0.0"}'
    reg_start "$DATA"
    run reg_publish "$TOKEN" hello-1.0.0
    [ "$output" = 201 ]
    jq -e '.versions.index_version == 1 and .versions.snapshot_version == 2' "$BATS_TEST_TMPDIR/body"
    run regsign verify "$REGKEY" "$DATA/static/index/hello.json" index
    [ "$status" -eq 0 ]
    idx="$DATA/static/index/hello.json"
    jq -e '.signed.packages | length == 1' "$idx"
    jq -e '.signed.packages[0] | .version == "1.0.0" and .yanked == false and .dependencies.greet == "^1.0.0"' "$idx"
    # the index entry is the signed object: the publisher signature covers it
    jq -e --slurpfile p "$BATS_TEST_TMPDIR/pkg/hello-1.0.0.package.json" \
        '.signed.packages[0] | del(.yanked, .published, .publisher) == ($p[0] | del(.name))' "$idx"
    run regsign verify "$REGKEY" "$DATA/static/snapshot.json" snapshot
    [[ "$output" == *'"hello":{"hash":"blake2b:'*'"version":1}'* ]]
    [ "$(signed_version "$DATA/static/snapshot.json")" = 2 ]
    [ "$(signed_version "$DATA/static/timestamp.json")" = 2 ]
    regsign verify "$REGKEY" "$DATA/static/timestamp.json" timestamp
    # archive (by hash, with Range) and recipe are served
    hash=$(jq -r .archive.hash "$BATS_TEST_TMPDIR/pkg/hello-1.0.0.package.json")
    curl -sf -o "$BATS_TEST_TMPDIR/a" "$REG_URL/archives/${hash#blake2b:}.tar.zst"
    cmp "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/pkg/hello-1.0.0.tar.zst"
    run curl -s -I "$REG_URL/archives/${hash#blake2b:}.tar.zst"
    [[ "$output" == *"ETag: \"${hash#blake2b:}\""* ]]
    run curl -s -o "$BATS_TEST_TMPDIR/tail" -w '%{http_code}' -H 'Range: bytes=-100' "$REG_URL/archives/${hash#blake2b:}.tar.zst"
    [ "$output" = 206 ]
    cmp "$BATS_TEST_TMPDIR/tail" <(tail -c 100 "$BATS_TEST_TMPDIR/pkg/hello-1.0.0.tar.zst")
    curl -sf "$REG_URL/recipes/hello/1.0.0.yaml" | cmp - "$BATS_TEST_TMPDIR/pkg/hello-1.0.0.yaml"
    [ -z "$(ls -A "$DATA/tmp")" ]
    grep -q '"action":"publish".*"status":201' "$DATA/audit.log"
    reg_stop
}

# refused STATUS TEXT CMD...: CMD prints STATUS, the body says TEXT, and the
# registry's files are exactly as before.
refused() {
    local want=$1 text=$2 before got
    shift 2
    before=$(static_state "$DATA")
    got=$("$@")
    [ "$got" = "$want" ] || { echo "status $got, wanted $want: $(cat "$BATS_TEST_TMPDIR/body")"; return 1; }
    jq -e .error "$BATS_TEST_TMPDIR/body" >/dev/null
    grep -q -- "$text" "$BATS_TEST_TMPDIR/body" || { cat "$BATS_TEST_TMPDIR/body"; return 1; }
    [ "$(static_state "$DATA")" = "$before" ]
}

@test "publish refusals: 401, 403, 400, 409, each with a message and nothing changed" {
    reg_package hello 1.0.0
    reg_start "$DATA"
    refused 401 'no token' reg_publish "" hello-1.0.0
    refused 401 'does not know the token' reg_publish plan_0000 hello-1.0.0
    refused 401 'does not know the token' reg_publish plan_0000 hello-1.0.0 -H 'Expect: 100-continue'
    yanker=$(registry token create "$DATA" --scope 'yank:*' 2>/dev/null)
    refused 403 "may not publish-new 'hello'" reg_publish "$yanker" hello-1.0.0
    other=$(registry token create "$DATA" --scope 'publish-new:other*' 2>/dev/null)
    refused 403 "publish-new:hello" reg_publish "$other" hello-1.0.0
    # a key nobody registered for this name
    regsign keygen "$KEYS" mallory >/dev/null
    SIGNER=mallory reg_package hello 1.0.1
    refused 403 'not registered as a publisher' reg_publish "$TOKEN" hello-1.0.1
    # the package changed after it was signed
    reg_package hello 1.0.2
    f="$BATS_TEST_TMPDIR/pkg/hello-1.0.2.package.json"
    jq -c '.dependencies = {"evil": "*"}' "$f" >"$f.new" && mv "$f.new" "$f"
    refused 400 'does not verify' reg_publish "$TOKEN" hello-1.0.2
    # archive bytes that are not the signed ones
    reg_package hello 1.0.3
    head -c 100 /dev/urandom >"$BATS_TEST_TMPDIR/other.tar.zst"
    ARCHIVE="$BATS_TEST_TMPDIR/other.tar.zst" refused 400 'is not what was signed' reg_publish "$TOKEN" hello-1.0.3
    printf 'changed: true\n' >>"$BATS_TEST_TMPDIR/pkg/hello-1.0.3.yaml"
    refused 400 'the recipe received' reg_publish "$TOKEN" hello-1.0.3
    # not multipart, a missing part
    refused 400 'multipart/form-data' curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' \
        -H "Authorization: Bearer $TOKEN" -d 'x=1' "$REG_URL/api/v1/publish"
    refused 400 "the part 'archive' is missing" curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' \
        -H "Authorization: Bearer $TOKEN" -F "package=<$f" -F 'signature={}' -F "recipe=@$f" \
        "$REG_URL/api/v1/publish"
    # the recipe part is optional, but only when the signed package says so
    g="$BATS_TEST_TMPDIR/pkg/hello-1.0.0"
    refused 400 "has no recipe part" curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' \
        -H "Authorization: Bearer $TOKEN" -F "package=<$g.package.json" \
        -F "signature=<$g.signature.json" -F "archive=@$g.tar.zst" "$REG_URL/api/v1/publish"
    # published once; the second time is a conflict
    run reg_publish "$TOKEN" hello-1.0.0
    [ "$output" = 201 ]
    refused 409 'versions are immutable' reg_publish "$TOKEN" hello-1.0.0
    # and a new version needs publish-update, not publish-new
    newonly=$(registry token create "$DATA" --scope 'publish-new:*' 2>/dev/null)
    reg_package hello 1.1.0
    refused 403 "may not publish-update 'hello'" reg_publish "$newonly" hello-1.1.0
    [ "$(grep -c '"status":40[0-9]' "$DATA/audit.log")" -ge 10 ]
    # a revoked token is an unknown token
    id=$(registry token list "$DATA" | awk '/publish-new:other/ {print $1}')
    registry token revoke "$DATA" "$id"
    refused 401 'does not know the token' reg_publish "$other" hello-1.1.0
    reg_stop
}

@test "publish refusals: 413 over --max-upload, 429 over the token's rate" {
    dd if=/dev/urandom of="$SRC/big" bs=1k count=300 2>/dev/null
    reg_package hello 1.0.0
    reg_start "$DATA" --max-upload 200K
    refused 413 'over this registry' reg_publish "$TOKEN" hello-1.0.0
    refused 413 'over this registry' reg_publish "$TOKEN" hello-1.0.0 -H 'Expect: 100-continue'
    refused 413 'over this registry' reg_publish "$TOKEN" hello-1.0.0 -H 'Transfer-Encoding: chunked'
    reg_stop
    rm "$SRC/big"
    reg_package hello 2.0.0
    reg_package hello 2.0.1
    slow=$(registry token create "$DATA" --scope 'publish-new,publish-update:*' --rate 1/min 2>/dev/null)
    reg_start "$DATA"
    run reg_publish "$slow" hello-2.0.0
    [ "$output" = 201 ]
    refused 429 'limit is 1 a minute' reg_publish "$slow" hello-2.0.1
    run curl -s -D - -o /dev/null -H "Authorization: Bearer $slow" \
        -F "package=<$BATS_TEST_TMPDIR/pkg/hello-2.0.1.package.json" \
        -F "signature=<$BATS_TEST_TMPDIR/pkg/hello-2.0.1.signature.json" \
        -F "archive=@$BATS_TEST_TMPDIR/pkg/hello-2.0.1.tar.zst" \
        -F "recipe=@$BATS_TEST_TMPDIR/pkg/hello-2.0.1.yaml" "$REG_URL/api/v1/publish"
    [[ "$output" == *"Retry-After: "* ]]
    # another token is not slowed down
    run reg_publish "$TOKEN" hello-2.0.1
    [ "$output" = 201 ]
    reg_stop
}

@test "publish checks the package: SemVer, path digest, ranges, references published first" {
    reg_start "$DATA"
    lib=$(plan store add "$SRC" --name hellolib --version 1.0.0)
    mkdir -p "$BATS_TEST_TMPDIR/app"
    printf 'exec %s/bin/hello\n' "$lib" >"$BATS_TEST_TMPDIR/app/run"
    PKG_SRC="$BATS_TEST_TMPDIR/app" reg_package helloapp 1.0.0
    refused 400 "refers to '$(basename "$lib")', which is not published here" reg_publish "$TOKEN" helloapp-1.0.0
    reg_package hellolib 1.0.0
    run reg_publish "$TOKEN" hellolib-1.0.0
    [ "$output" = 201 ]
    run reg_publish "$TOKEN" helloapp-1.0.0
    [ "$output" = 201 ]
    # a path whose digest does not follow from its fields (re-signed, so
    # the signature is fine)
    reg_package hello 3.0.0
    f="$BATS_TEST_TMPDIR/pkg/hello-3.0.0"
    jq '.[0].path |= sub("/[0-9a-z]{32}-"; "/00000000000000000000000000000000-")' "$f.info" >"$f.info2"
    regsign package "$KEYS" alice "$f.info2" "$f.tar.zst" "$f.yaml" "$f"
    refused 400 'does not match its store_dir' reg_publish "$TOKEN" hello-3.0.0
    reg_package hello 3.0.1 '{"x": ">>1"}'
    refused 400 "the dependency 'x' has an invalid range" reg_publish "$TOKEN" hello-3.0.1
    reg_stop
}

@test "yank marks the version, bumps index, snapshot and timestamp, and keeps the files" {
    reg_package hello 1.0.0
    reg_start "$DATA"
    run reg_publish "$TOKEN" hello-1.0.0
    [ "$output" = 201 ]
    refused 401 'does not know the token' reg_yank plan_0000 hello 1.0.0
    other=$(registry token create "$DATA" --scope 'publish-new:*' 2>/dev/null)
    refused 403 "may not yank 'hello'" reg_yank "$other" hello 1.0.0
    refused 404 'not published here' reg_yank "$TOKEN" hello 9.9.9
    files=$(ls -R "$DATA/static/archives" "$DATA/static/recipes")
    run reg_yank "$TOKEN" hello 1.0.0
    [ "$output" = 200 ]
    jq -e '.signed.packages[0].yanked == true and .signed.version == 2' "$DATA/static/index/hello.json"
    [ "$(signed_version "$DATA/static/snapshot.json")" = 3 ]
    [ "$(signed_version "$DATA/static/timestamp.json")" = 3 ]
    regsign verify "$REGKEY" "$DATA/static/index/hello.json" index
    [ "$(ls -R "$DATA/static/archives" "$DATA/static/recipes")" = "$files" ]
    grep -q '"action":"yank".*"status":200' "$DATA/audit.log"
    # yanking again changes nothing
    before=$(static_state "$DATA")
    run reg_yank "$TOKEN" hello 1.0.0
    [ "$output" = 200 ]
    [ "$(static_state "$DATA")" = "$before" ]
    reg_stop
}

@test "the timestamp is re-signed when less than half of its lifetime is left" {
    reg_package hello 1.0.0
    reg_start "$DATA" --timestamp-lifetime 2
    run reg_publish "$TOKEN" hello-1.0.0
    [ "$output" = 201 ]
    v=$(curl -sf "$REG_URL/timestamp.json" | jq .signed.version)
    sleep 1.2
    curl -sf "$REG_URL/timestamp.json" >"$BATS_TEST_TMPDIR/ts"
    [ "$(jq .signed.version "$BATS_TEST_TMPDIR/ts")" -gt "$v" ]
    regsign verify "$REGKEY" "$BATS_TEST_TMPDIR/ts" timestamp
    reg_stop
}

@test "export writes the read side as plain files that a plain web server serves" {
    reg_package hello 1.0.0
    reg_start "$DATA"
    run reg_publish "$TOKEN" hello-1.0.0
    [ "$output" = 201 ]
    reg_stop
    v=$(signed_version "$DATA/static/timestamp.json")
    run registry export "$DATA" "$BATS_TEST_TMPDIR/mirror"
    [ "$status" -eq 0 ]
    diff -r "$DATA/static" "$BATS_TEST_TMPDIR/mirror"
    # a fresh timestamp for the mirror
    [ "$(signed_version "$BATS_TEST_TMPDIR/mirror/timestamp.json")" -gt "$v" ]
    regsign verify "$REGKEY" "$BATS_TEST_TMPDIR/mirror/timestamp.json" timestamp
    # exporting again refreshes it in place
    run registry export "$DATA" "$BATS_TEST_TMPDIR/mirror"
    [ "$status" -eq 0 ]
    diff -r "$DATA/static" "$BATS_TEST_TMPDIR/mirror"
    start_bg "$BATS_TEST_TMPDIR/httpd.out" "$PLAN_TOOLS/httpd" "$BATS_TEST_TMPDIR/mirror" "$BATS_TEST_TMPDIR/port"
    wait_until 100 test -s "$BATS_TEST_TMPDIR/port"
    curl -sf "http://127.0.0.1:$(cat "$BATS_TEST_TMPDIR/port")/index/hello.json" |
        cmp - "$DATA/static/index/hello.json"
}
