#!/bin/sh
# Install the Debian packages plan needs to build, test and benchmark.
# As root it runs apt-get; otherwise it prints the command to run.
set -eu
need="gcc make pkg-config libsqlite3-dev libsodium-dev libcurl4-openssl-dev
libarchive-dev libfyaml-dev libjansson-dev libmicrohttpd-dev libcmocka-dev
libzstd-dev zstd bats procps sqlite3 jq"
[ "${1:-}" = "--bench" ] && need="$need nix-bin hyperfine stow wrk nginx-light"
missing=""
for p in $need; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "plan: missing Debian packages:$missing" >&2
    echo "plan: install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "plan: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $missing </dev/null || {
    apt-get update -q </dev/null && apt-get install -y -q $missing </dev/null
}
