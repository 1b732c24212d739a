#!/usr/bin/env bats
# 'plan store import' against hostile archives.  Each test builds its archive
# with tests/tools/mkarchive and checks that the import fails with status 1,
# that the message names the offending entry (or the reason), and that the
# store is exactly as before: same directories, empty .tmp, 'store verify
# --check-contents' clean, nothing written outside (into $T/outside or
# anywhere else under the test directory).
#
# Environment: PLAN (the plan binary), PLAN_TOOLS (directory with mkarchive).

setup() {
    PLAN=$(realpath "${PLAN:-$BATS_TEST_DIRNAME/../../build/plan}")
    MKARCHIVE=$(realpath "${PLAN_TOOLS:-$BATS_TEST_DIRNAME/../../build/tools}")/mkarchive
    T=$BATS_TEST_TMPDIR
    R=$T/root
    STORE=$R/store
    OUT=$T/outside
    EVIL=$T/evil.tar.zst
    mkdir -p "$OUT" "$T/src/sub" "$T/other"

    # x: the path the archives carry.  Files without newlines so that
    # their contents fit on one mkarchive line; blob makes the middle of
    # the compressed archive file data.
    printf hello >"$T/src/a"
    printf world >"$T/src/sub/b"
    ln -s a "$T/src/l"
    head -c 65536 /dev/urandom >"$T/src/blob"
    plan store add "$T/src" --name x --version 1 >"$T/added"
    BASE=$(basename "$(cat "$T/added")")
    plan store export "$BASE" -o "$T/good.tar.zst"
    tar --zstd -xOf "$T/good.tar.zst" plan-export.json >"$T/meta.json"

    # Forget x: a fresh root at the same path (the metadata names the store
    # directory), holding y, which hostile imports must leave alone.
    wipe_root
    printf other >"$T/other/o"
    plan store add "$T/other" --name y --version 1 >"$T/added"
    OTHER=$(basename "$(cat "$T/added")")
    snapshot
}

teardown() {
    chmod -R u+w "$BATS_TEST_TMPDIR" 2>/dev/null || true
}

plan() { "$PLAN" -q --root "$R" "$@"; }

fail() {
    echo "FAIL: $*" >&2
    return 1
}

wipe_root() {
    chmod -R u+w "$R"
    rm -rf "$R"
}

# Remember the store as it is now; store_unchanged compares with it.
snapshot() {
    BEFORE=$(LC_ALL=C ls -A "$STORE")
    if plan store path-info "$BASE" >/dev/null 2>&1; then BASE_REGISTERED=1; else BASE_REGISTERED=0; fi
}

store_unchanged() {
    local now
    now=$(LC_ALL=C ls -A "$STORE")
    [ "$now" = "$BEFORE" ] || fail "the store changed: before [$BEFORE], now [$now]"
    [ -z "$(ls -A "$STORE/.tmp")" ] || fail "left in $STORE/.tmp: $(ls -A "$STORE/.tmp")"
    [ -z "$(ls -A "$OUT")" ] || fail "written outside the store: $(ls -A "$OUT")"
    local escaped
    escaped=$(find "$T" -name 'evil*' ! -path "$EVIL")
    [ -z "$escaped" ] || fail "files escaped: $escaped"
    run "$PLAN" -q --root "$R" store verify --check-contents
    [ "$status" -eq 0 ] || fail "store verify --check-contents after the import: $output"
    local reg=0
    if plan store path-info "$BASE" >/dev/null 2>&1; then reg=1; fi
    [ "$reg" = "$BASE_REGISTERED" ] || fail "registration of $BASE changed to $reg"
}

# Build $EVIL from the spec on stdin.
mk() {
    "$MKARCHIVE" "$EVIL" || fail "mkarchive failed"
}

# Import FILE: it must fail with status 1, print each PATTERN given ('a|b':
# a or b), and leave the store unchanged.
refuse_file() {
    local file=$1
    shift
    run "$PLAN" --root "$R" store import "$file"
    local rc=$status msg=$output
    echo "status $rc: $msg"
    [ "$rc" -eq 1 ] || fail "import exited $rc, not 1"
    store_unchanged
    [[ $msg == *"plan: error:"* ]] || fail "no error message"
    local pat alt found alts
    for pat in "$@"; do
        found=0
        IFS='|' read -ra alts <<<"$pat"
        for alt in "${alts[@]}"; do
            [[ $msg != *"$alt"* ]] || found=1
        done
        [ "$found" = 1 ] || fail "message lacks '$pat'"
    done
}
refuse() { refuse_file "$EVIL" "$@"; }

# The entries of a valid archive of x (its metadata first, parents first).
good_spec() {
    cat <<EOF
meta $T/meta.json
dir $BASE 0555
file $BASE/a 0444 - hello
from $BASE/blob 0444 $T/src/blob
symlink $BASE/l a
dir $BASE/sub 0555
file $BASE/sub/b 0444 - world
EOF
}

# good_spec without the blob: 64 KiB of the declared size left unused, so
# that added entries are refused for what they are, not for their size.
roomy_spec() {
    good_spec | grep -v "^from $BASE/blob "
}

# good_spec with one line replaced: spec_with OLD NEW (NEW may be empty).
spec_with() {
    good_spec | awk -v old="$1" -v new="$2" '$0 == old { if (new != "") print new; next } { print }'
}

# Write DIR to $EVIL as an export of a path z with valid metadata and the
# right content hash, in a root that holds only y.  'plan store add' itself
# refuses such trees (a store path must be self-contained), so the archive
# is put together here from 'plan store hash'.  Sets CHAIN to z's basename.
export_real() {
    local dir=$1 json hash size n rel
    wipe_root
    plan store add "$T/other" --name y --version 1 >/dev/null
    json=$("$PLAN" --root "$R" --json store hash "$dir" --name z --version 1)
    hash=$(printf '%s\n' "$json" | sed -n 's/.*"content_hash": "\([^"]*\)".*/\1/p')
    size=$(printf '%s\n' "$json" | sed -n 's/.*"size": \([0-9]*\).*/\1/p')
    CHAIN=$(basename "$(printf '%s\n' "$json" | sed -n 's/.*"path": "\([^"]*\)".*/\1/p')")
    n=$(($(find "$dir" -mindepth 1 | wc -l) + 1))
    printf '{"format":"plan-export-v1","paths":[{"basename":"%s","content_hash":"%s","digest":"%s","entries":%d,"name":"z","references":[],"size":%d,"version":"1"}],"store_dir":"%s"}' \
        "$CHAIN" "$hash" "${CHAIN:0:32}" "$n" "$size" "$STORE" >"$T/zmeta.json"
    {
        echo "meta $T/zmeta.json"
        echo "dir $CHAIN 0555"
        (cd "$dir" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort) | while read -r rel; do
            if [ -L "$dir/$rel" ]; then echo "symlink $CHAIN/$rel $(readlink "$dir/$rel")"
            elif [ -d "$dir/$rel" ]; then echo "dir $CHAIN/$rel 0555"
            else echo "from $CHAIN/$rel 0444 $dir/$rel"; fi
        done
    } | mk
    snapshot
}

# Import $EVIL, which holds z with a link esc that resolves to $OUT.
refuse_chain() {
    run "$PLAN" --root "$R" store import "$EVIL"
    local rc=$status msg=$output
    echo "status $rc: $msg"
    if [ "$rc" -eq 0 ]; then
        echo "imported: $STORE/$CHAIN/esc resolves to $(readlink -f "$STORE/$CHAIN/esc")"
    fi
    [ "$rc" -eq 1 ] || fail "a symlink that resolves to $OUT was imported"
    store_unchanged
    [[ $msg == *"plan: error:"*"chain of links"* ]] || fail "message does not name the chain of links"
    ! plan store path-info "$CHAIN" >/dev/null 2>&1 || fail "$CHAIN was registered"
}

# ---------- positive controls ----------

@test "control: the exported archive imports and verifies" {
    run "$PLAN" --root "$R" store import "$T/good.tar.zst"
    echo "$output"
    [ "$status" -eq 0 ]
    [ -d "$STORE/$BASE" ]
    [ "$(cat "$STORE/$BASE/a")" = hello ]
    plan store verify --check-contents
    plan store path-info "$BASE" >/dev/null
    run "$PLAN" --root "$R" store import "$T/good.tar.zst"
    [ "$status" -eq 0 ]
    [[ $output == *"already present"* ]]
}

@test "control: the same entries written by mkarchive import" {
    good_spec | mk
    run "$PLAN" --root "$R" store import "$EVIL"
    echo "$output"
    [ "$status" -eq 0 ]
    plan store verify --check-contents
    plan store path-info "$BASE" >/dev/null
}

# ---------- names ----------

@test "entry with a '..' component" {
    local name
    for name in "$BASE/../../../../../outside/evil" "$BASE/../../../outside/evil" \
        "../../../../outside/evil" "$BASE/sub/../evil"; do
        { roomy_spec; echo "file $name 0444 - evil"; } | mk
        refuse "$name" "'..' component"
    done
    { roomy_spec; echo "dir $BASE/../../../../../outside/evil 0755"; } | mk
    refuse "$BASE/../../../../../outside/evil" "'..' component"
    { roomy_spec; echo "symlink $BASE/../../../../../outside/evil /etc/passwd"; } | mk
    refuse "$BASE/../../../../../outside/evil" "'..' component"
}

@test "entry with an absolute path" {
    { roomy_spec; echo "file $OUT/evil 0444 - evil"; } | mk
    refuse "$OUT/evil" "absolute path"
    { roomy_spec; echo "dir $OUT/evil 0755"; } | mk
    refuse "$OUT/evil" "absolute path"
    { roomy_spec; echo "symlink $OUT/evil /etc/passwd"; } | mk
    refuse "$OUT/evil" "absolute path"
    # the store path itself, by its absolute name
    spec_with "file $BASE/a 0444 - hello" "file $STORE/$BASE/a 0444 - hello" | mk
    refuse "$STORE/$BASE/a" "absolute path"
}

@test "entry with a '////' prefix, '//', '.' or an overlong name" {
    { roomy_spec; echo "file ///$OUT/evil 0444 - evil"; } | mk
    refuse "////" "absolute path"
    spec_with "file $BASE/a 0444 - hello" "file ////$BASE/a 0444 - hello" | mk
    refuse "////$BASE/a" "absolute path"
    spec_with "file $BASE/a 0444 - hello" "file $BASE//a 0444 - hello" | mk
    refuse "$BASE//a" "empty path component"
    spec_with "file $BASE/a 0444 - hello" "file ./$BASE/a 0444 - hello" | mk
    refuse "./$BASE/a" "'.' component"
    local long
    long=$(printf 'x%.0s' {1..5000})
    { roomy_spec; echo "file $BASE/$long 0444 0"; } | mk
    refuse "longer than 4096"
}

# ---------- symlinks and directories ----------

@test "a directory replaced by a symlink out of the store, then a file through it" {
    { roomy_spec; echo "symlink $BASE/d $OUT"; echo "file $BASE/d/evil 0444 - evil"; } | mk
    refuse "$BASE/d" "outside the store"
}

@test "a directory replaced by a symlink the target check allows, then a file through it" {
    # into another store path: writing through it would change y
    { roomy_spec; echo "symlink $BASE/d $STORE/$OTHER"; echo "file $BASE/d/evil 0444 - evil"; } | mk
    refuse "entry '$BASE/d/evil'" "goes through a symlink"
    # inside the path itself
    { roomy_spec; echo "symlink $BASE/d sub"; echo "file $BASE/d/evil 0444 - evil"; } | mk
    refuse "entry '$BASE/d/evil'" "goes through a symlink"
    # the existing symlink l, as a directory
    { roomy_spec; echo "dir $BASE/l/evil 0555"; } | mk
    refuse "entry '$BASE/l/evil'" "goes through a symlink"
    # a regular file used as a directory
    { roomy_spec; echo "file $BASE/a/evil 0444 - evil"; } | mk
    refuse "entry '$BASE/a/evil'" "non-directory"
}

@test "symlink escaping the tree" {
    local target want
    while IFS='|' read -r want target; do
        { roomy_spec; echo "symlink $BASE/evil $target"; } | mk
        refuse "entry '$BASE/evil'" "$want"
    done <<EOF
escapes its store path|../../..
escapes its store path|..
escapes its store path|../outside
escapes its store path|sub/../..
escapes its store path|./../x
points outside the store|$OUT
points outside the store|/etc/passwd
points outside the store|/
points outside the store|$STORE
points outside the store|$STORE-x/evil
points outside the store|$T/root/./store/$OTHER
climbs out of the store|$STORE/../outside
climbs out of the store|$STORE/$OTHER/../..
climbs out of the store|$STORE/..
climbs out of the store|$STORE/..//x
EOF
    { roomy_spec; echo "symlink $BASE/sub/evil ../.."; } | mk
    refuse "entry '$BASE/sub/evil'" "escapes its store path"
}

@test "symlink chain escaping the tree (each target lexically inside)" {
    # sub/up -> .. is the root of z; s1 -> sub/up/.. is then the store;
    # s2 -> s1/.. the root; s3 -> s2/.. is $T, and esc -> s3/outside is
    # $T/outside.  Every target on its own stays inside z; the chain does not.
    mkdir -p "$T/z/sub"
    printf hi >"$T/z/a"
    ln -s .. "$T/z/sub/up"
    ln -s sub/up/.. "$T/z/s1"
    ln -s s1/.. "$T/z/s2"
    ln -s s2/.. "$T/z/s3"
    ln -s s3/outside "$T/z/esc"
    export_real "$T/z"
    refuse_chain
}

@test "symlink chain escaping through an absolute link into the store" {
    # abs -> $STORE/$OTHER is allowed (into the store, no '..'); then
    # up -> abs/.. is the store directory, s1 -> up/.. the root, s2 -> s1/..
    # is $T, and esc -> s2/outside is $T/outside.
    mkdir -p "$T/z"
    printf hi >"$T/z/a"
    ln -s "$STORE/$OTHER" "$T/z/abs"
    ln -s abs/.. "$T/z/up"
    ln -s up/.. "$T/z/s1"
    ln -s s1/.. "$T/z/s2"
    ln -s s2/outside "$T/z/esc"
    export_real "$T/z"
    refuse_chain
}

# ---------- links, devices, modes ----------

@test "hard links" {
    local target
    for target in /etc/passwd "$OUT/evil" ../../../../outside/evil "$BASE/a"; do
        { roomy_spec; echo "hardlink $BASE/h $target"; } | mk
        refuse "entry '$BASE/h'" "hard link"
    done
    # a hard link standing in for one of the path's own files
    spec_with "file $BASE/sub/b 0444 - world" "hardlink $BASE/sub/b $BASE/a" | mk
    refuse "entry '$BASE/sub/b'" "hard link"
}

@test "device nodes and fifos" {
    { roomy_spec; echo "chr $BASE/evil"; } | mk
    refuse "entry '$BASE/evil'" "device node"
    { roomy_spec; echo "blk $BASE/evil"; } | mk
    refuse "entry '$BASE/evil'" "device node"
    { roomy_spec; echo "fifo $BASE/evil"; } | mk
    refuse "entry '$BASE/evil'" "fifo"
    # in place of a directory the rest of the archive then uses
    spec_with "dir $BASE/sub 0555" "fifo $BASE/sub" | mk
    refuse "entry '$BASE/sub'" "fifo"
}

@test "setuid and setgid bits" {
    local mode
    for mode in 04444 02444 06555 04555; do
        spec_with "file $BASE/a 0444 - hello" "file $BASE/a $mode - hello" | mk
        refuse "entry '$BASE/a'" "setuid or setgid"
    done
    spec_with "dir $BASE/sub 0555" "dir $BASE/sub 02555" | mk
    refuse "entry '$BASE/sub'" "setuid or setgid"
}

# ---------- contents ----------

@test "content hash mismatch" {
    local old new
    for new in "file $BASE/a 0444 - hellO" "file $BASE/a 0555 - hello" "file $BASE/a 0444 5" \
        "symlink $BASE/l b" ""; do
        old=$(case $new in symlink*) echo "symlink $BASE/l a" ;; "") echo "file $BASE/sub/b 0444 - world" ;; *) echo "file $BASE/a 0444 - hello" ;; esac)
        spec_with "$old" "$new" | mk
        refuse "$BASE" "do not match its content hash"
    done
    # an extra empty file keeps within the size cap, but not the entry count
    { good_spec; echo "file $BASE/sub/evil 0444 0"; } | mk
    refuse "entry '$BASE/sub/evil'" "one entry more than its store path declares"
}

@test "decompression bomb: 1 GiB of zeros against a declared size of 64 KiB" {
    { roomy_spec; echo "file $BASE/evil 0444 1073741824"; } | mk
    ls -l "$EVIL"
    local start end
    start=$(date +%s%N)
    refuse "entry '$BASE/evil'" "larger than its store path's declared size"
    end=$(date +%s%N)
    echo "# the 1 GiB bomb was refused in $(((end - start) / 1000000)) ms" >&3
    # many entries that only together exceed the declared size: the entry
    # count stops them first
    { roomy_spec; for i in $(seq 1 64); do echo "file $BASE/sub/evil$i 0444 2048"; done; } | mk
    refuse "$BASE/sub/evil" "one entry more than its store path declares"
    # a huge metadata entry
    printf 'file plan-export.json 0444 1073741824\n' | mk
    refuse "does not start with a plan-export.json of at most 16 MiB"
}

# ---------- damaged files ----------

@test "truncated archive" {
    local size
    size=$(stat -c %s "$T/good.tar.zst")
    head -c $((size / 2)) "$T/good.tar.zst" >"$EVIL"
    refuse "evil.tar.zst" "runcated"
    head -c $((size - 8)) "$T/good.tar.zst" >"$EVIL"
    refuse "evil.tar.zst" "runcated"
    # a valid zstd stream holding a tar cut in the middle of a file
    { good_spec | head -n 6; echo "file $BASE/sub/b 0444 5 wo"; echo cut; } | mk
    refuse "damaged or truncated" "$BASE/sub/b"
    # ... and in the middle of the metadata
    printf 'file plan-export.json 0444 300 {"format":\ncut\n' | mk
    refuse "damaged or truncated"
}

@test "corrupt archive: random bytes, flipped bytes" {
    head -c 100000 /dev/urandom >"$EVIL"
    refuse "evil.tar.zst" "not a plan export|Unrecognized archive format"
    # zstd magic, then garbage
    { printf '\x28\xb5\x2f\xfd'; head -c 100000 /dev/urandom; } >"$EVIL"
    refuse "evil.tar.zst"
    # 16 bytes flipped in the middle (inside the random blob)
    local size
    size=$(stat -c %s "$T/good.tar.zst")
    cp "$T/good.tar.zst" "$EVIL"
    dd if=/dev/urandom of="$EVIL" bs=1 seek=$((size / 2)) count=16 conv=notrunc status=none
    cmp -s "$EVIL" "$T/good.tar.zst" && fail "the copy was not changed"
    refuse "evil.tar.zst"
}

@test "empty file and not a tar" {
    : >"$EVIL"
    refuse "evil.tar.zst" "not a plan export|Unrecognized archive format"
    printf 'hello, this is not an archive\n' >"$EVIL"
    refuse "evil.tar.zst" "not a plan export|Unrecognized archive format"
    # a zstd stream that holds text, not a tar
    printf 'hello, this is not an archive\n' | zstd -q -c >"$EVIL"
    refuse "evil.tar.zst" "not a plan export|Unrecognized archive format"
    # a gzip tar of the right entries: not what plan writes
    mkdir "$T/gz"
    tar --zstd -xf "$T/good.tar.zst" -C "$T/gz"
    tar -czf "$EVIL" -C "$T/gz" plan-export.json "$BASE"
    refuse "evil.tar.zst" "not a plan export|Unrecognized archive format"
}

# ---------- structure ----------

@test "duplicate entries" {
    { roomy_spec; echo "file $BASE/a 0444 - hello"; } | mk
    refuse "entry '$BASE/a'" "appears twice"
    { roomy_spec; echo "dir $BASE/sub 0555"; } | mk
    refuse "entry '$BASE/sub'" "appears twice"
    { roomy_spec; echo "dir $BASE 0555"; } | mk
    refuse "entry '$BASE'" "appears twice"
    { roomy_spec; echo "symlink $BASE/l a"; } | mk
    refuse "entry '$BASE/l'" "appears twice"
    # a directory entry over a symlink the target check allows
    { roomy_spec; echo "symlink $BASE/d $STORE/$OTHER"; echo "dir $BASE/d 0555"; } | mk
    refuse "entry '$BASE/d'" "appears twice"
    # a second metadata entry
    { roomy_spec; echo "meta $T/meta.json"; } | mk
    refuse "entry 'plan-export.json'" "no store path listed"
}

@test "entry before its parent directory" {
    { good_spec | grep -v "^file $BASE/sub/b"; } >"$T/spec"
    { sed -n 1,5p "$T/spec"; echo "file $BASE/sub/b 0444 - world"; sed -n '6,$p' "$T/spec"; } | mk
    refuse "entry '$BASE/sub/b'" "before its parent directory"
    # a file before the root directory of its path
    { echo "meta $T/meta.json"; echo "file $BASE/a 0444 - hello"; good_spec | sed 1d | grep -v "^file $BASE/a "; } | mk
    refuse "entry '$BASE/a'" "before the root directory"
}

@test "entry for a path not in the metadata" {
    { roomy_spec; echo "dir $OTHER 0555"; echo "file $OTHER/evil 0444 - evil"; } | mk
    refuse "entry '$OTHER'" "no store path listed"
    { roomy_spec; echo "file evil 0444 - evil"; } | mk
    refuse "entry 'evil'" "no store path listed"
    local fake=${BASE/-x-1/-x-2}
    { roomy_spec; echo "dir $fake 0555"; } | mk
    refuse "entry '$fake'" "no store path listed"
    # the root of x as a file
    spec_with "dir $BASE 0555" "file $BASE 0444 0" | mk
    refuse "entry '$BASE'" "not a directory"
}

# Broken metadata, one a line: EXPECTED-MESSAGE|JSON.
bad_metadata() {
    local ok='{"format":"plan-export-v1","store_dir":"'"$STORE"'"'
    cat <<EOF
not JSON|{"format":"plan-export-v1",
not JSON|
not JSON|null
not JSON|"plan-export-v1"
not JSON|{"format":"plan-export-v1","format":"plan-export-v1"}
export format '(none)'|[]
export format 'plan-export-v2'|{"format":"plan-export-v2","store_dir":"$STORE","paths":[]}
names no store directory|{"format":"plan-export-v1","paths":[]}
for the store '/elsewhere/store'|{"format":"plan-export-v1","store_dir":"/elsewhere/store","paths":[]}
lists no paths|$ok,"paths":[]}
lists no paths|$ok,"paths":{}}
lists no paths|$ok}
missing or mistyped fields|$ok,"paths":[{}]}
missing or mistyped fields|$ok,"paths":[7]}
EOF
}

@test "metadata that is not JSON, or not ours" {
    local m=$T/m.json want json
    while IFS='|' read -r want json; do
        printf '%s' "$json" >"$m"
        { echo "meta $m"; good_spec | sed 1d; } | mk
        refuse "evil.tar.zst" "$want"
    done < <(bad_metadata)
    # binary garbage
    head -c 300 /dev/urandom >"$m"
    { echo "meta $m"; good_spec | sed 1d; } | mk
    refuse "evil.tar.zst" "not JSON"
}

# Edits of the good metadata, one a line: EXPECTED-MESSAGE|SED-EXPRESSION.
edited_metadata() {
    local dig=${BASE%%-*} hash
    local other
    other=$([ "${dig:0:1}" = a ] && echo b || echo a)${dig:1}
    hash=$(sed 's/.*"content_hash":"blake2b:\([0-9a-f]*\)".*/\1/' "$T/meta.json")
    local flipped
    flipped=${hash:0:63}$([ "${hash:63}" = 0 ] && echo 1 || echo 0)
    cat <<EOF
missing or mistyped fields|s/"size":[0-9]*/"size":-1/
missing or mistyped fields|s/"size":[0-9]*/"size":"13"/
missing or mistyped fields|s/"references":\[\]/"references":"none"/
missing or mistyped fields|s/"digest":"[^"]*",//
malformed reference|s/"references":\[\]/"references":["..\/..\/..\/etc"]/
malformed reference|s/"references":\[\]/"references":[7]/
invalid name or version|s/"name":"x"/"name":"..\/x"/
invalid name or version|s/"version":"1"/"version":""/
malformed content hash|s/"content_hash":"[^"]*"/"content_hash":"blake2b:00"/
lists a path twice|s/"paths":\[\(.*\)\]/"paths":[\1,\1]/
does not match|s/"version":"1"/"version":"2"/
does not match|s/"name":"x"/"name":"y"/
does not match|s/$hash/$flipped/
does not match|s/"digest":"$dig"/"digest":"$other"/
does not match|s/"basename":"$BASE"/"basename":"$other-x-1"/
does not match|s/"basename":"$BASE"/"basename":"$dig-x-2"/
EOF
}

@test "metadata with mistyped or malformed fields" {
    local m=$T/m.json want expr
    while IFS='|' read -r want expr; do
        [[ $want != "does not match" ]] || continue
        sed "$expr" "$T/meta.json" >"$m"
        cmp -s "$m" "$T/meta.json" && fail "sed '$expr' changed nothing"
        { echo "meta $m"; good_spec | sed 1d; } | mk
        refuse "evil.tar.zst" "$want"
    done < <(edited_metadata)
}

@test "metadata whose digest does not match" {
    local m=$T/m.json want expr n=0
    while IFS='|' read -r want expr; do
        [[ $want == "does not match" ]] || continue
        sed "$expr" "$T/meta.json" >"$m"
        cmp -s "$m" "$T/meta.json" && fail "sed '$expr' changed nothing"
        { echo "meta $m"; good_spec | sed 1d; } | mk
        refuse "evil.tar.zst" "the digest of" "does not match its name, version and content hash"
        n=$((n + 1))
    done < <(edited_metadata)
    [ "$n" -eq 6 ]
}

@test "missing metadata" {
    good_spec | sed 1d | mk
    refuse "evil.tar.zst" "does not start with a plan-export.json"
    # metadata, but not first
    { good_spec | sed 1d; echo "meta $T/meta.json"; } | mk
    refuse "does not start with a plan-export.json"
    # metadata as a symlink or a directory
    { echo "symlink plan-export.json $T/meta.json"; good_spec | sed 1d; } | mk
    refuse "does not start with a plan-export.json"
    { echo "dir plan-export.json 0755"; good_spec | sed 1d; } | mk
    refuse "does not start with a plan-export.json"
    # metadata and nothing else
    echo "meta $T/meta.json" | mk
    refuse "$BASE" "incomplete"
}

@test "hostile entries are refused even when the path is already present" {
    plan store import "$T/good.tar.zst" >/dev/null
    snapshot
    [ "$BASE_REGISTERED" = 1 ]
    { roomy_spec; echo "file $BASE/../../../../../outside/evil 0444 - evil"; } | mk
    refuse "'..' component"
    { roomy_spec; echo "symlink $BASE/evil /etc/passwd"; } | mk
    refuse "entry '$BASE/evil'" "outside the store"
    { roomy_spec; echo "file $BASE/evil 0444 1073741824"; } | mk
    refuse "entry '$BASE/evil'" "declared size"
}

@test "a reference the metadata leaves out is found in the bytes and recorded" {
    # z names y's store path in its bytes, across what is likely a read
    # boundary (64 KiB) of the extraction; its metadata declares nothing.
    mkdir -p "$T/zsrc"
    { head -c 65530 /dev/zero | tr '\0' 'x'; printf '%s/o\n' "$STORE/$OTHER"; } >"$T/zsrc/run"
    plan store add "$T/zsrc" --name z --version 1 >"$T/added"
    Z=$(basename "$(cat "$T/added")")
    plan store export "$Z" -o "$T/z.tar.zst"
    tar --zstd -xOf "$T/z.tar.zst" plan-export.json | jq -c '.paths[0].references = []' >"$T/zmeta.json"
    plan gc add-root keep-y "$OTHER"
    plan gc >/dev/null
    ! plan store path-info "$Z" >/dev/null 2>&1
    printf 'meta %s\ndir %s 0555\nfrom %s/run 0444 %s\n' "$T/zmeta.json" "$Z" "$Z" "$T/zsrc/run" | mk
    run "$PLAN" --root "$R" store import "$EVIL"
    [ "$status" -eq 0 ] || fail "import failed: $output"
    run "$PLAN" --root "$R" --json store path-info "$Z"
    [[ "$output" == *"$OTHER"* ]] || fail "the reference to y was not recorded: $output"
}
