#!/bin/sh
# Install the Debian packages holdfast needs to build, test and run its demo.
# Idempotent and quick when nothing is missing: dpkg is asked first, apt only
# when something is absent.  Runs as root, or through sudo when available.
set -eu

PKGS="gcc libc6-dev make cmake pkg-config ca-certificates
libcurl4-openssl-dev libevent-dev libsqlite3-dev libfyaml-dev libjansson-dev
libcmocka-dev libhiredis-dev libmemcached-dev
redis-server memcached
varnish curl sqlite3 clang libclang-rt-dev"

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
    *"ok installed"*) ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

echo "holdfast: installing missing packages:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "holdfast: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
