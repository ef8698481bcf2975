#!/bin/sh
# run.sh BUILD_DIR - the dashboard's browser test (tests/ui/dashboard.mjs),
# run by `make test`.  It needs Debian's chromium and the npm packages of
# package.json (both installed by `make deps`); without them it says so
# and skips rather than failing the build on a machine without a browser.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
if [ ! -x /usr/bin/chromium ]; then
    echo "ui: SKIPPED: /usr/bin/chromium is not installed (make deps installs it)"
    exit 0
fi
if [ ! -f "$root/node_modules/playwright-core/package.json" ] || ! command -v node >/dev/null 2>&1; then
    echo "ui: SKIPPED: node or node_modules/playwright-core is missing (make deps: npm ci)"
    exit 0
fi
echo "== tests/ui/dashboard.mjs"
exec node "$root/tests/ui/dashboard.mjs" "$build"
