#!/bin/sh
# Installs, only when missing, the Debian packages that build and test backpropd.
set -eu
PKGS="build-essential pkg-config libopenblas-dev libjansson-dev libmicrohttpd-dev libsqlite3-dev
      libsodium-dev zlib1g-dev libcsv-dev libyajl-dev libcurl4-openssl-dev libcriterion-dev python3-sklearn wrk
      curl clang libclang-rt-14-dev"
# ONNX export: protobuf-c and Debian's onnx.proto to build it, python3-onnx's checker to test it
PKGS="$PKGS protobuf-c-compiler libprotobuf-c-dev libonnx-dev python3-onnx"
# promtool (package prometheus) checks the /metrics text in tests/server_prometheus.c
PKGS="$PKGS prometheus"
# The dashboard's browser test (tests/ui/), driven by playwright-core from npm.
PKGS="$PKGS chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "deps: installing$missing" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
else
    echo "deps: all Debian packages present" >&2
fi

# npm tools, pinned by package-lock.json: the OpenAPI linter
# (tests/openapi_lint.sh), uPlot (scripts/ui_vendor.sh) and playwright-core
# (tests/ui/).
# @redocly/cli 2.x needs Node >= 20.19 (the machine image ships Node 20).
cd "$(dirname "$0")/.."
if [ ! -f node_modules/@redocly/cli/package.json ] || [ ! -f node_modules/playwright-core/package.json ] ||
   [ ! -f node_modules/uplot/package.json ]; then
    if ! command -v npm >/dev/null 2>&1; then
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm
    fi
    echo "deps: npm ci (OpenAPI linter, uPlot, playwright-core)" >&2
    npm ci --no-audit --no-fund --loglevel=error
else
    echo "deps: node_modules present" >&2
fi
