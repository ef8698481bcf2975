#!/bin/sh
# Lints openapi.yaml with @redocly/cli (recommended rules, see redocly.yaml),
# from the repository's own node_modules: never downloads anything.  `make
# deps` installs it (npm ci).  Exit status: 0 when the description is valid,
# non-zero on any lint error or when the linter is missing.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -f node_modules/@redocly/cli/package.json ]; then
    echo "openapi_lint: node_modules/@redocly/cli is missing; run 'make deps' (npm ci)" >&2
    exit 2
fi
command -v npx >/dev/null 2>&1 || { echo "openapi_lint: npx (Node.js/npm) not found; run 'make deps'" >&2; exit 2; }
# No telemetry or update checks: CI machines have a closed network.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
exec npx --no-install @redocly/cli lint --format=stylish openapi.yaml </dev/null
