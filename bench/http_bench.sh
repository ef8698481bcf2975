#!/bin/bash
# The HTTP prediction benchmark: one 64-float row per POST over keep-alive,
# wrk -t2 -c64 -d10s on 127.0.0.1, against build/backpropd serving a small
# digits model (64-32-10) trained here first; then the same load against
# the machine's HTTP ceiling (../shared/bench/http_ceiling.sh, a minimal
# libmicrohttpd server) and the ratio of the two.
#   usage: bench/http_bench.sh [BUILD_DIR]        (default: build)
#   env:   CONNS (64), SECS (10), LOG_LEVEL (warn: per-request log lines off)
# Prints JSON lines:
#   {"bench":"predict_http","connections":64,"requests_per_s":R,"p50_ms":..,"p99_ms":..,"errors":E,...}
#   {"bench":"http_ceiling",...}                (the ceiling script's own line)
#   {"bench":"predict_http_vs_ceiling","ratio":X,"target":0.8,"errors":E}
# Needs wrk and curl.  Exits non-zero when the daemon or a step fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/backpropd
conns=${CONNS:-64} secs=${SECS:-10} log_level=${LOG_LEVEL:-warn}
ceiling=$root/../shared/bench/http_ceiling.sh

die() { echo "http_bench: $*" >&2; exit 1; }
[ -x "$bin" ] || die "$bin not built (make build/backpropd)"
command -v wrk >/dev/null || die "wrk not found (make deps)"
command -v curl >/dev/null || die "curl not found"

tmp=$(mktemp -d -t backpropd-bench.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# A port nothing listens on right now (bash's /dev/tcp connect fails).
port=""
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || die "no free port found"
base="http://127.0.0.1:$port"

"$bin" --bind 127.0.0.1 --port "$port" --db "$tmp/bench.db" --workers 1 \
    --log-level "$log_level" 2>"$tmp/daemon.log" &
pid=$!
up=0
for _ in $(seq 1 100); do
    if curl -fsS --max-time 1 "$base/healthz" >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ "$up" = 1 ] || { tail -n 20 "$tmp/daemon.log" >&2; die "daemon did not answer /healthz"; }

# api METHOD PATH [curl args...]: prints the body, fails on a non-2xx status.
api() {
    local method=$1 path=$2; shift 2
    local out code
    out=$(curl -sS --max-time 60 -X "$method" -w '\n%{http_code}' "$@" "$base$path") || die "$method $path: transfer failed"
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    case $code in 2??) printf '%s' "$out" ;; *) die "$method $path -> $code: $out" ;; esac
}
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }

api POST '/v1/datasets?name=digits&label=digit' -H 'Content-Type: text/csv' \
    --data-binary "@$root/tests/data/digits.csv" >/dev/null
api POST /v1/models -H 'Content-Type: application/json' --data-binary \
    '{"name":"digits","inputs":64,"layers":[{"units":32,"activation":"relu"},{"units":10,"activation":"softmax"}],"loss":"cross_entropy","seed":1}' >/dev/null
job=$(api POST /v1/jobs -H 'Content-Type: application/json' --data-binary \
    '{"model":"digits","dataset":"digits","epochs":5,"batch_size":32,"normalize":"standard","seed":1}' | json_field id)
[ -n "$job" ] || die "POST /v1/jobs returned no id"
status=""
for _ in $(seq 1 600); do
    status=$(api GET "/v1/jobs/$job" | json_field status)
    case $status in succeeded) break ;; failed|cancelled) die "training job $job ended $status" ;; esac
    sleep 0.2
done
[ "$status" = succeeded ] || die "training job $job did not finish in 120 s (status $status)"
# One request by hand: the endpoint answers 200 with outputs before the load.
api POST /v1/models/digits/predict -H 'Content-Type: application/json' \
    --data-binary "$(sed -n "s/^wrk.body = '\\(.*\\)'$/\\1/p" "$root/bench/predict.lua")" | grep -q '"outputs"' \
    || die "predict answered without outputs"

timeout $((secs + 30)) wrk -t2 -c"$conns" -d"${secs}s" --timeout 5s --latency \
    -s "$root/bench/predict.lua" "$base/v1/models/digits/predict" >"$tmp/wrk.out" 2>&1 \
    || { cat "$tmp/wrk.out" >&2; die "wrk failed"; }
kill -0 "$pid" 2>/dev/null || die "the daemon died under load"

# wrk prints latencies as 812.00us / 1.23ms / 1.01s.
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}'; }
rps=$(awk '/^Requests\/sec/ {print $2}' "$tmp/wrk.out")
p50=$(awk '$1=="50%" {print $2}' "$tmp/wrk.out" | to_ms)
p99=$(awk '$1=="99%" {print $2}' "$tmp/wrk.out" | to_ms)
reqs=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$tmp/wrk.out")
sockerr=$(awk '/Socket errors:/ {gsub(/,/,""); print $4 + $6 + $8 + $10}' "$tmp/wrk.out")
errors=$(( ${non2xx:-0} + ${sockerr:-0} ))
[ -n "$rps" ] || { cat "$tmp/wrk.out" >&2; die "could not read wrk's output"; }
printf '{"bench":"predict_http","connections":%s,"seconds":%s,"requests":%s,"requests_per_s":%s,"p50_ms":%s,"p99_ms":%s,"errors":%s,"non_2xx":%s,"socket_errors":%s,"log_level":"%s"}\n' \
    "$conns" "$secs" "${reqs:-0}" "$rps" "${p50:-0}" "${p99:-0}" "$errors" "${non2xx:-0}" "${sockerr:-0}" "$log_level"

# Stop the daemon before measuring the ceiling: the two would share the cores.
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=""
[ "$rc" = 0 ] || echo "http_bench: the daemon exited $rc on SIGTERM" >&2

if [ -f "$ceiling" ]; then
    cline=$(bash "$ceiling" "$conns" "$secs") || die "http_ceiling.sh failed"
    printf '%s\n' "$cline"
    crps=$(printf '%s' "$cline" | sed -n 's/.*"rps":\([0-9.]*\).*/\1/p')
    ratio=$(awk -v a="$rps" -v b="${crps:-0}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "null" }')
    printf '{"bench":"predict_http_vs_ceiling","ratio":%s,"target":0.8,"errors":%s}\n' "$ratio" "$errors"
else
    echo "http_bench: $ceiling not found; no ceiling to compare with" >&2
fi
