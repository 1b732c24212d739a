#!/usr/bin/env bash
# `make run`: the store at work on examples/, in a temporary root.
# Builds libgreet and hello (with the host compiler, until recipes exist),
# adds both to the store, and shows content addressing, references,
# deterministic export, hostile-safe import, verification and optimisation.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
plan="$here/$build/plan"
work=$(mktemp -d "${TMPDIR:-/tmp}/plan-run.XXXXXX")
root="$work/root"
cleanup() { chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '$ %s\n' "$*"; "$@"; }
p() { "$plan" --root "$root" "$@"; }

say "a temporary root: $root"

say "build libgreet from examples/src/greet and add it to the store"
cp -R "$here/examples/src/greet" "$work/greet-src"
make -s -C "$work/greet-src" install PREFIX="$work/stage/greet" >/dev/null
greet=$(p store add "$work/stage/greet" --name greet --version 1.0.0)
echo "$greet"

say "build hello against that store path and add it: its binary refers to libgreet"
cp -R "$here/examples/src/hello" "$work/hello-src"
make -s -C "$work/hello-src" install PREFIX="$work/stage/hello" GREET="$greet" >/dev/null
hello=$(p store add "$work/stage/hello" --name hello --version 1.0.0)
echo "$hello"
show "$hello/bin/hello" plan
show p store path-info "$hello"

say "adding the same tree again gives the same path and writes nothing"
p -v store add "$work/stage/hello" --name hello --version 1.0.0

say "export hello with its closure, twice: the archives are byte-identical"
p store export "$hello" --closure -o "$work/hello.tar.zst"
p store export "$hello" --closure -o "$work/again.tar.zst"
cmp "$work/hello.tar.zst" "$work/again.tar.zst" && echo "identical: $(stat -c %s "$work/hello.tar.zst") bytes"

say "wipe the root, then import the archive (checked entry by entry, re-hashed)"
chmod -R u+w "$root" && rm -rf "$root"
p store import "$work/hello.tar.zst"
show "$hello/bin/hello" again

say "verify every path against its content hash"
p store verify --check-contents

say "tamper with a file: verify notices, repair restores it from the export"
chmod u+w "$greet/include" "$greet/include/greet.h"
echo "/* tampered */" >>"$greet/include/greet.h"
p store verify --check-contents || echo "(exit status $?: as expected)"
p store repair "$greet" --from "$work/hello.tar.zst"
p store verify --check-contents

say "optimise: identical files become hard links"
p store add "$work/stage/greet" --name greet-copy --version 1.0.0 >/dev/null
p store optimise

say "done; the temporary root is removed"
