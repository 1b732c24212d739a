#!/usr/bin/env bash
# `make run`: plan at work on examples/, in a temporary root.
# Builds the example recipes (a C library and a program that links it, a
# script that names its own store path, a resources-only plan and a service
# with entry points and a configuration schema), then shows reuse, the
# reproducibility check, references, deterministic export, hostile-safe
# import, verification, repair and optimisation; then profiles, plan env,
# plan run, plan config, plan merge, a project's frozen lock, gc, and a
# signed registry on loopback (publish, install from it).
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
plan="$here/$build/plan"
registry="$here/$build/plan-registry"
work=$(mktemp -d "${TMPDIR:-/tmp}/plan-run.XXXXXX")
root="$work/root"
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    chmod -R u+w "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
p() { "$plan" --root "$root" "$@"; }
recipes="$here/examples/recipes"

say "a temporary root: $root"

say "check the example recipes"
p recipe check "$recipes"/*.yaml

say "build hello (a C program); its dependency libgreet (a C library) is built first"
hello=$(p build "$recipes/hello.yaml" -o "$work/result")
echo "$hello"
"$work/result/bin/hello" plan
p store path-info "$hello"

say "build it again: the realisation is known, nothing is rebuilt"
time p build "$recipes/hello.yaml"

say "rebuild and compare (--check): is the build reproducible?"
p build "$recipes/hello.yaml" --check

say "wordfreq: a script that names its own store path (rewritten from the build's placeholder)"
wordfreq=$(p build "$recipes/wordfreq.yaml")
grep -n 'stopwords=' "$wordfreq/bin/wordfreq"
echo "the cat and the hat and the cat sat" | "$wordfreq/bin/wordfreq" 3

say "greeter: entry points and a configuration schema, recorded in its manifest"
greeter=$(p build "$recipes/greeter.yaml")
GREETER_NAME=operator GREETER_SHOUT=true "$greeter/bin/greeter"
sed -n '/"run"/,/}/p' "$greeter/.plan/manifest.json"

say "motd: a resources-only plan"
motd=$(p build "$recipes/motd.yaml")
ls "$motd/share/motd"

say "the build log of hello"
p log "$hello" | tail -3

say "export greeter with its closure, twice: byte-identical archives"
p store export "$greeter" --closure -o "$work/greeter.tar.zst"
p store export "$greeter" --closure -o "$work/again.tar.zst"
cmp "$work/greeter.tar.zst" "$work/again.tar.zst" && echo "identical: $(stat -c %s "$work/greeter.tar.zst") bytes"

say "wipe the root, import the archive (checked entry by entry, re-hashed), run greeter"
chmod -R u+w "$root" && rm -rf "$root"
p store import "$work/greeter.tar.zst"
"$greeter/bin/greeter"

say "verify every path against its content hash"
p store verify --check-contents

say "tamper with a file: verify notices, repair restores it from the export"
greet=$(ls -d "$root"/store/*-greet-1.0.0)
chmod u+w "$greet/include" "$greet/include/greet.h"
echo "/* tampered */" >>"$greet/include/greet.h"
p store verify --check-contents || echo "(exit status $?: as expected)"
p store repair "$greet" --from "$work/greeter.tar.zst"
p store verify --check-contents

say "optimise: identical files across paths become hard links"
p store add "$greet" --name greet-copy --version 1.0.0 >/dev/null
p store optimise

say "profiles: install hello, then greeter (hello and motd come with it): two generations"
export PLAN_RUN_DIR="$work/run"
p install --recipes "$recipes" hello
p install greeter
p generations
p list
"$root/profiles/default/current/bin/greeter"

say "the profile's tree is a symlink farm: folded directories, short relative links"
ls -l "$root/profiles/default/current/"

say "roll back to generation 1: one rename; greeter is gone from the profile"
p rollback
p generations --diff 2 1
ls "$root/profiles/default/current/bin"

say "plan env: merge plans in a fresh run root, run a command natively, remove the run root"
p env --recipes "$recipes" greeter wordfreq -- sh -c 'greeter | wordfreq 3; echo "run root: $PLAN_RUN_ROOT"'
ls -A "$PLAN_RUN_DIR"

say "plan run: greeter's entry point in a fresh run root, supervised, with its recipe's limits; the record stays"
p run --recipes "$recipes" greeter
p ps -a

say "plan config: greeter's configuration lives outside the store, versioned and validated"
p config set greeter name operator
p config set greeter repeat many || echo "(refused, as it must be: 'repeat' is an int)"
p config list greeter
p run --recipes "$recipes" greeter
p config history greeter
p config rollback greeter 0

say "plan merge: hello and motd merged into one new plan (hard links), with its lineage"
merged=$(p merge --recipes "$recipes" hello motd -o hello-motd@1.0.0)
p store path-info "$merged"
p env "$merged" -- hello merged

say "a project: plan.yaml + plan.lock, then the CI form 'plan env --frozen'"
mkdir -p "$work/project" && cd "$work/project"
printf 'packages:\n  greeter: ^1.0.0\nrecipes:\n  - %s\nenv:\n  GREETER_NAME: CI\n' "$recipes" >plan.yaml
p lock
time p env --frozen -- greeter
cd "$here"

say "garbage collection: remove the profile's generations but the current one, then collect"
p gc --delete-generations +1 --yes
p gc roots
p store verify

say "a signed registry: initialise it, start it on loopback, make a publisher key and a token"
regkey=$("$registry" init "$work/registry")
echo "registry key (pinned by clients): $regkey"
"$registry" serve "$work/registry" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/serve.out" && break; sleep 0.05; done
url="http://$(sed -n 's/^listening on //p' "$work/serve.out")"
echo "serving on $url"
pub=$(p keys generate demo)
"$registry" publisher add "$work/registry" '*' "$pub"
token=$("$registry" token create "$work/registry" --scope publish-new,publish-update,yank)
p registry add demo "$url" --key "$regkey"
p keys trust "$pub"

say "publish the examples: each store path and its closure, signed, references first"
for r in greeter wordfreq; do
    p publish "$recipes/$r.yaml" --key demo --token "$token"
done
p search e
p info greeter

say "empty the store: remove the packages, old generations and the 'plan build -o' link (a root), then gc"
p remove hello
p gc --delete-generations +1 --yes
rm "$work/result"
p gc
echo "store paths left: $(ls "$root/store" | wc -l)"
p install --profile demo greeter wordfreq
p generations --profile demo
"$root/profiles/demo/current/bin/greeter"

say "plan env from the registry: downloaded once, then instant"
p env greeter wordfreq -- sh -c 'greeter | wordfreq 2'
time p env greeter wordfreq -- true

say "stop the registry"
kill "$server" && wait "$server" 2>/dev/null || true
server=

say "done; the temporary root is removed"
