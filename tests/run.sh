#!/bin/sh
# Runs each Criterion test binary and closes with one line totalling them.
set -u
pass=0; fail=0; rc=0
for bin in "$@"; do
    echo "== $bin"
    out=$("$bin" --jobs 2 2>&1); r=$?
    printf '%s\n' "$out"
    [ $r -eq 0 ] || rc=1
    line=$(printf '%s\n' "$out" | grep 'Synthesis:' | tail -n 1)
    p=$(printf '%s' "$line" | sed -n 's/.*Passing: *\([0-9]*\).*/\1/p')
    f=$(printf '%s' "$line" | sed -n 's/.*Failing: *\([0-9]*\).*/\1/p')
    c=$(printf '%s' "$line" | sed -n 's/.*Crashing: *\([0-9]*\).*/\1/p')
    [ -n "$p" ] || { echo "$bin: no Criterion summary" >&2; rc=1; p=0; f=1; c=0; }
    pass=$((pass + p)); fail=$((fail + f + c))
done
echo "tests: $pass passed, $fail failed"
[ $fail -eq 0 ] || rc=1
exit $rc
