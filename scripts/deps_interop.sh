#!/bin/sh
# make deps-interop: onnxruntime-node (npm, pinned by tests/interop/package-lock.json)
# for the ONNX export's round trip in make test (tests/server_onnx.c runs
# tests/onnx_roundtrip.js).  Kept apart from the root package.json because it
# is large (about 290 MB: every platform's CPU library).  Its postinstall
# script would download GPU libraries, which neither the tests nor a closed
# network allow: install scripts are skipped (and ONNXRUNTIME_NODE_INSTALL=skip
# says the same to a version that reads it); the CPU binding ships inside the
# package, and is loaded once here to prove it.
set -eu
cd "$(dirname "$0")/../tests/interop"
if ! command -v npm >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi
if [ ! -f node_modules/onnxruntime-node/package.json ]; then
    echo "deps-interop: npm ci (onnxruntime-node, install scripts skipped)" >&2
    ONNXRUNTIME_NODE_INSTALL=skip npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
else
    echo "deps-interop: tests/interop/node_modules present" >&2
fi
node -e "require('onnxruntime-node').InferenceSession" >/dev/null
echo "deps-interop: onnxruntime-node's CPU binding loads" >&2
