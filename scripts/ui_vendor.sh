#!/bin/sh
# ui_vendor.sh - refreshes ui/vendor/ from the uPlot npm package pinned in
# package.json: uplot.js is uPlot's minified IIFE build with its MIT licence
# prepended as a /*! */ comment (the minified file carries only a URL), and
# uplot.css its stylesheet.  The results are committed, so building the
# daemon needs no Node.js; tests/ui/dashboard.mjs checks they still match.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/node_modules/uplot
[ -f "$src/dist/uPlot.iife.min.js" ] || { echo "ui_vendor: $src is missing; run 'make deps' (npm ci)" >&2; exit 1; }
out=$root/ui/vendor
mkdir -p "$out"
{
    printf '/*! uPlot %s - ' "$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$src/package.json" | head -n 1)"
    cat "$src/LICENSE"
    printf '\n*/\n'
    cat "$src/dist/uPlot.iife.min.js"
} > "$out/uplot.js"
cp "$src/dist/uPlot.min.css" "$out/uplot.css"
