#!/bin/sh
# Install the Debian packages holdfast needs to build, test and run its demo;
# `deps.sh bench` adds what `make bench` compares holdfast with (nginx, wrk;
# Varnish is there already, for varnishtest).  Idempotent and quick when
# nothing is missing: dpkg is asked first, apt only when something is
# absent.  Runs as root, or through sudo when available.
set -eu

PKGS="gcc libc6-dev make cmake pkg-config ca-certificates
libcurl4-openssl-dev libevent-dev libsqlite3-dev libfyaml-dev libjansson-dev
libcmocka-dev libhiredis-dev libmemcached-dev libhttp-parser-dev
redis-server memcached
varnish curl sqlite3 clang libclang-rt-dev
chromium"
if [ "${1:-}" = bench ]; then
    PKGS="$PKGS nginx-light wrk"
fi

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
    *"ok installed"*) ;;
    *) missing="$missing $p" ;;
    esac
done
# Node.js drives the browser tests (playwright-core, from npm); any node
# already installed will do.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

browser_modules() {
    # The browser tests' one npm package, pinned by package-lock.json.
    dir=$(dirname "$0")/../tests/browser
    if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules/playwright-core" ]; then
        echo "holdfast: installing the browser tests' npm packages" >&2
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
}

if [ -z "$missing" ]; then
    browser_modules
    exit 0
fi

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
browser_modules
