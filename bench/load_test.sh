#!/bin/bash
# bench/load_test.sh - the load test of issue 4 ("Under load"), on 127.0.0.1
# only and bounded in time:
#
#  1. build/backpropd on a free port with a temporary database; a small
#     digits model (64-32-10) is trained for the predictions.
#  2. For LOAD_SECONDS (60): wrk -t2 -c64 over keep-alive POSTs one 64-float
#     row per request to /v1/models/serve/predict, while two training jobs
#     (digits, 64-256-128-10, sized from a timed calibration epoch so they
#     outlast the load) run and a loop uploads the iris CSV under a new name
#     every 0.5 s.  The daemon's resident memory is sampled every second
#     (the "curve", printed as CSV: t_s,rss_kb).
#  3. Graceful shutdown under load: two more jobs start, wrk runs again for
#     SHUTDOWN_SECONDS (5) and SIGTERM is sent half-way; the daemon must exit
#     0 having answered every request it had started (its log has no
#     "closing N unfinished requests"), and after a restart on the same
#     database the interrupted jobs resume from their checkpoints and finish,
#     with every epoch's metrics row exactly once.
#
# What the shutdown phase counts (wrk's own socket errors):
#   connect, write - connections refused once the daemon stopped listening
#             (wrk connects without blocking, so a refusal shows up as an
#             error on the connection's first write): the expected end of a
#             load against a stopping server, reported as refused_after_stop,
#             not failures;
#   read    - a connection closed with no response to a request written on
#             it: the daemon dropped a request it had taken (its log would
#             also say "closing N unfinished requests"), or the request went
#             into a connection the daemon never accepted or closed as idle.
#             http_daemon_stop refuses new connections at once and lets busy
#             keep-alive connections drain (every answer then says
#             Connection: close), so none is expected: a failure above
#             SHUTDOWN_READ_MAX (0);
#   timeout, non-2xx - failures.
#
# Prints the curve, then JSON lines:
#   {"bench":"load","seconds":..,"requests":..,"requests_per_s":..,"non_2xx":..,
#    "socket_errors":..,"rss_start_kb":..,"rss_after_warmup_kb":..,"rss_end_kb":..,
#    "jobs_succeeded":..,...}
#   {"bench":"load_shutdown",...}
# Exits non-zero on a failed request (non-2xx, socket error, failed upload),
# a crash, resident memory growing more than RSS_GROWTH_MAX_PCT (20) % from
# the warm-up sample to the end, or a job that does not finish.
#
#   usage: bench/load_test.sh [BUILD_DIR]          (default: build)
#   env:   LOAD_SECONDS (60), CONNS (64), THREADS (2), WARMUP_SECONDS
#          (LOAD_SECONDS/6, at least 5), SHUTDOWN_SECONDS (5),
#          RSS_GROWTH_MAX_PCT (20), SHUTDOWN_READ_MAX (0), LOAD_OUT (a
#          directory to keep rss.csv, the wrk outputs and the daemon log in)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/backpropd
load_s=${LOAD_SECONDS:-60}
conns=${CONNS:-64}
threads=${THREADS:-2}
warmup_s=${WARMUP_SECONDS:-$((load_s / 6 > 5 ? load_s / 6 : 5))}
shut_s=${SHUTDOWN_SECONDS:-5}
growth_max=${RSS_GROWTH_MAX_PCT:-20}
read_max=${SHUTDOWN_READ_MAX:-0}
lua=$root/bench/load_predict.lua

die() { echo "load_test: $*" >&2; exit 1; }
[ -x "$bin" ] || die "$bin not built (make build/backpropd)"
command -v wrk >/dev/null || die "wrk not found (make deps)"
command -v curl >/dev/null || die "curl not found"
[ "$warmup_s" -lt "$load_s" ] || die "WARMUP_SECONDS ($warmup_s) must be below LOAD_SECONDS ($load_s)"

tmp=$(mktemp -d -t backpropd-load.XXXXXX)
out=${LOAD_OUT:-$tmp}
mkdir -p "$out"
db=$tmp/load.db
log=$out/daemon.log
: >"$log"
pid="" sampler="" uploader="" wrkpid=""
failures=()
fail() { failures+=("$*"); echo "load_test: FAIL: $*" >&2; }

stop_bg() {
    for p in "$@"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    return 0
}
cleanup() {
    stop_bg "$sampler" "$uploader" "$wrkpid"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    return 1
}

start_daemon() {
    port=$(free_port) || die "no free port found"
    base="http://127.0.0.1:$port"
    "$bin" --bind 127.0.0.1 --port "$port" --db "$db" --workers 2 --log-level warn 2>>"$log" &
    pid=$!
    for _ in $(seq 1 100); do
        curl -fsS --max-time 1 "$base/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$log" >&2
    die "the daemon did not answer /healthz"
}

# api METHOD PATH [curl args...]: prints the body, dies on a non-2xx status.
api() {
    local method=$1 path=$2 res code
    shift 2
    res=$(curl -sS --max-time 60 -X "$method" -w '\n%{http_code}' "$@" "$base$path") ||
        die "$method $path: transfer failed"
    code=${res##*$'\n'}
    res=${res%$'\n'*}
    case $code in 2??) printf '%s' "$res" ;; *) die "$method $path -> $code: $res" ;; esac
}
json_str() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
json_num() { sed -n "s/.*\"$1\":\\([-0-9.eE+]*\\).*/\\1/p"; }
wrk_field() { sed -n "s/^WRK_JSON .*\"$2\":\\([0-9]*\\).*/\\1/p" "$1"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null; }

job_start() { # MODEL EPOCHS -> id (api's die only leaves this subshell: callers check)
    api POST /v1/jobs -H 'Content-Type: application/json' --data-binary \
        "{\"model\":\"$1\",\"dataset\":\"digits\",\"epochs\":$2,\"batch_size\":32,\"normalize\":\"standard\",\"seed\":1}" |
        json_str id
}
need_ids() { for j in "$@"; do [ -n "$j" ] || die "POST /v1/jobs gave no job id"; done; }
job_status() { api GET "/v1/jobs/$1" | json_str status; }
job_wait() { # ID STATUSES(regex) TIMEOUT_S -> last status
    local st="" t0
    t0=$(now)
    while :; do
        st=$(job_status "$1")
        [[ $st =~ ^($2)$ ]] && break
        awk -v e="$(elapsed "$t0")" -v m="$3" 'BEGIN { exit !(e > m) }' && break
        sleep 0.2
    done
    printf '%s' "$st"
}

# ---- 1. a daemon with a model to serve ----------------------------------
start_daemon
api POST '/v1/datasets?name=digits&label=digit' -H 'Content-Type: text/csv' \
    --data-binary "@$root/tests/data/digits.csv" >/dev/null
model() { # NAME HIDDEN-LAYERS-JSON
    api POST /v1/models -H 'Content-Type: application/json' --data-binary \
        "{\"name\":\"$1\",\"inputs\":64,\"layers\":[$2{\"units\":10,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\",\"seed\":1}" >/dev/null
}
model serve '{"units":32,"activation":"relu"},'
big='{"units":256,"activation":"relu"},{"units":128,"activation":"relu"},'
model load_a "$big"
model load_b "$big"
job=$(job_start serve 5)
need_ids "$job"
[ "$(job_wait "$job" 'succeeded|failed|cancelled' 120)" = succeeded ] || die "training the served model failed"
body=$(sed -n "s/^wrk.body = '\\(.*\\)'$/\\1/p" "$lua")
api POST /v1/models/serve/predict -H 'Content-Type: application/json' --data-binary "$body" |
    grep -q '"outputs"' || die "predict answered without outputs"

# Calibration: one job of the big model alone gives the seconds an epoch
# takes here; the load jobs get enough epochs to outlast the load, which
# takes most of the CPU from them.
job=$(job_start load_a 3)
need_ids "$job"
[ "$(job_wait "$job" 'succeeded|failed|cancelled' 120)" = succeeded ] || die "calibration job failed"
epoch_s=$(api GET "/v1/jobs/$job/metrics" | grep -o '"seconds":[0-9.eE+-]*' | cut -d: -f2 |
    awk '{ s += $1; n++ } END { if (n) printf "%.4f", s / n; else print 0 }')
epochs_for() { # SECONDS-OF-IDLE-TRAINING -> epochs (10 ... 100000)
    awk -v s="$1" -v e="$epoch_s" 'BEGIN { n = e > 0 ? int(s / e) : 1000; if (n < 10) n = 10;
                                           if (n > 100000) n = 100000; print n }'
}
# Under the load a job gets a fraction of a core: 0.6 x the load's length
# of idle-speed training spans the load with time to spare and ends soon
# after it.
load_epochs=$(epochs_for "$(awk -v l="$load_s" 'BEGIN { print 0.6 * l }')")
echo "load_test: an epoch of the 64-256-128-10 digits model takes ${epoch_s} s idle;" \
    "the load's jobs run $load_epochs epochs" >&2

# ---- 2. the load ----------------------------------------------------------
ja=$(job_start load_a "$load_epochs")
jb=$(job_start load_b "$load_epochs")
need_ids "$ja" "$jb"
for j in "$ja" "$jb"; do
    [ "$(job_wait "$j" 'running|succeeded|failed|cancelled' 30)" = running ] || die "job $j did not start"
done

rss_csv=$out/rss.csv
echo "t_s,rss_kb" >"$rss_csv"
rss_start=$(rss_kb)
t_load=$(now)
(
    while kill -0 "$pid" 2>/dev/null; do
        echo "$(elapsed "$t_load"),$(rss_kb)" >>"$rss_csv"
        sleep 1
    done
) &
sampler=$!

uploads=$out/uploads.txt
: >"$uploads"
(
    i=0
    while :; do
        i=$((i + 1))
        code=$(curl -sS -o /dev/null --max-time 30 -w '%{http_code}' -X POST \
            -H 'Content-Type: text/csv' --data-binary "@$root/tests/data/iris.csv" \
            "$base/v1/datasets?name=upload_$i&label=species" 2>/dev/null)
        echo "$i ${code:-000}" >>"$uploads"
        sleep 0.5
    done
) &
uploader=$!

wrk_out=$out/wrk_load.txt
timeout $((load_s + 60)) wrk -t"$threads" -c"$conns" -d"${load_s}s" --timeout 10s --latency \
    -s "$lua" "$base/v1/models/serve/predict" >"$wrk_out" 2>&1 || fail "wrk exited non-zero"
t_load_end=$(elapsed "$t_load")
stop_bg "$uploader"
uploader=""
kill -0 "$pid" 2>/dev/null || die "the daemon died under load; log tail: $(tail -n 5 "$log")"
echo "$(elapsed "$t_load"),$(rss_kb)" >>"$rss_csv"
stop_bg "$sampler"
sampler=""

reqs=$(wrk_field "$wrk_out" requests)
[ -n "$reqs" ] || { cat "$wrk_out" >&2; die "could not read wrk's output"; }
dur_us=$(wrk_field "$wrk_out" duration_us)
non2xx=$(wrk_field "$wrk_out" non_2xx)
sock=$(($(wrk_field "$wrk_out" connect) + $(wrk_field "$wrk_out" read) + $(wrk_field "$wrk_out" write) + $(wrk_field "$wrk_out" timeout)))
rps=$(awk -v n="$reqs" -v d="$dur_us" 'BEGIN { printf "%.0f", (d > 0 ? n / (d / 1e6) : 0) }')
p50=$(awk -v v="$(wrk_field "$wrk_out" p50_us)" 'BEGIN { printf "%.3f", v / 1000 }')
p99=$(awk -v v="$(wrk_field "$wrk_out" p99_us)" 'BEGIN { printf "%.3f", v / 1000 }')
[ "$non2xx" = 0 ] || fail "$non2xx predictions answered outside 2xx"
[ "$sock" = 0 ] || fail "$sock socket errors during the load ($(grep -i 'socket errors' "$wrk_out"))"
up_total=$(wc -l <"$uploads")
up_bad=$(awk '$2 != 201' "$uploads" | wc -l)
[ "$up_total" -gt 0 ] || fail "no dataset was uploaded during the load"
[ "$up_bad" = 0 ] || fail "$up_bad of $up_total dataset uploads failed: $(awk '$2 != 201' "$uploads" | head -3 | tr '\n' ' ')"

# Training finishes: both jobs succeed (they run on past the load).
jobs_ok=0
jobs_end_s=()
for j in "$ja" "$jb"; do
    st=$(job_wait "$j" 'succeeded|failed|cancelled' $((load_s * 3 + 60)))
    if [ "$st" = succeeded ]; then jobs_ok=$((jobs_ok + 1)); else fail "load job $j ended '$st'"; fi
    jobs_end_s+=("$(elapsed "$t_load")")
done
jobs_span=$(awk -v a="${jobs_end_s[0]}" -v l="$t_load_end" 'BEGIN { if (a >= l) print "true"; else print "false" }')

# The curve, and its shape after warm-up.
echo "# resident memory of backpropd during the load (t_s since the load began, rss_kb)"
cat "$rss_csv"
rss_end=$(tail -n 1 "$rss_csv" | cut -d, -f2)
rss_warm=$(awk -F, -v w="$warmup_s" 'NR > 1 && $1 >= w { print $2; exit }' "$rss_csv")
rss_max=$(awk -F, -v w="$warmup_s" 'NR > 1 && $1 >= w && $2 > m { m = $2 } END { print m + 0 }' "$rss_csv")
growth=$(awk -v a="$rss_warm" -v b="$rss_end" 'BEGIN { printf "%.1f", (a > 0 ? (b - a) * 100 / a : 0) }')
awk -v g="$growth" -v m="$growth_max" 'BEGIN { exit !(g > m) }' &&
    fail "resident memory grew ${growth}% after warm-up (${rss_warm} -> ${rss_end} kB; limit ${growth_max}%)"

printf '{"bench":"load","seconds":%s,"connections":%s,"requests":%s,"requests_per_s":%s,"p50_ms":%s,"p99_ms":%s,"non_2xx":%s,"socket_errors":%s,"uploads":%s,"uploads_failed":%s,"rss_start_kb":%s,"rss_after_warmup_kb":%s,"rss_max_after_warmup_kb":%s,"rss_end_kb":%s,"rss_growth_pct":%s,"warmup_s":%s,"jobs_succeeded":%s,"job_epochs":%s,"jobs_outlasted_load":%s,"jobs_done_at_s":[%s]}\n' \
    "$load_s" "$conns" "$reqs" "$rps" "$p50" "$p99" "$non2xx" "$sock" "$up_total" "$up_bad" \
    "$rss_start" "${rss_warm:-0}" "$rss_max" "$rss_end" "$growth" "$warmup_s" "$jobs_ok" \
    "$load_epochs" "$jobs_span" "$(IFS=,; echo "${jobs_end_s[*]}")"

# ---- 3. graceful shutdown under load ------------------------------------
# Two jobs long enough to be running at SIGTERM, past their first
# checkpoint (workers.c: at most one every 2 s).
shut_epochs=$(epochs_for 12)
sa=$(job_start load_a "$shut_epochs")
sb=$(job_start load_b "$shut_epochs")
need_ids "$sa" "$sb"
for j in "$sa" "$sb"; do
    [ "$(job_wait "$j" 'running|succeeded|failed|cancelled' 30)" = running ] || die "job $j did not start"
done
sleep 3
wrk_shut=$out/wrk_shutdown.txt
wrk -t"$threads" -c"$conns" -d"${shut_s}s" --timeout 10s -s "$lua" \
    "$base/v1/models/serve/predict" >"$wrk_shut" 2>&1 &
wrkpid=$!
sleep "$(awk -v s="$shut_s" 'BEGIN { print s / 2 }')"
ep_a=$(api GET "/v1/jobs/$sa" | json_num epoch)
ep_b=$(api GET "/v1/jobs/$sb" | json_num epoch)
lines_before=$(wc -l <"$log")
kill -TERM "$pid"
t_term=$(now)
code=0
wait "$pid" || code=$?
stop_s=$(elapsed "$t_term")
pid=""
wait "$wrkpid"
wrkpid=""
[ "$code" = 0 ] || fail "the daemon exited $code on SIGTERM under load"
unfinished=$(tail -n +"$((lines_before + 1))" "$log" | grep -o 'closing [0-9]* unfinished requests' | grep -o '[0-9]*' | head -1)
unfinished=${unfinished:-0}
[ "$unfinished" = 0 ] || fail "the daemon dropped $unfinished in-flight requests at shutdown"
s_reqs=$(wrk_field "$wrk_shut" requests)
[ -n "$s_reqs" ] || { cat "$wrk_shut" >&2; die "could not read wrk's output (shutdown)"; }
s_conn=$(wrk_field "$wrk_shut" connect)
s_read=$(wrk_field "$wrk_shut" read)
s_write=$(wrk_field "$wrk_shut" write)
s_tmo=$(wrk_field "$wrk_shut" timeout)
s_non2xx=$(wrk_field "$wrk_shut" non_2xx)
# wrk connects without blocking, so a refused connection surfaces as an
# error on its first write: connect + write errors are the refusals.
s_refused=$((s_conn + s_write))
[ "$s_non2xx" = 0 ] || fail "$s_non2xx answers outside 2xx during shutdown"
[ "$s_tmo" = 0 ] || fail "$s_tmo requests timed out during shutdown"
[ "$s_read" -le "$read_max" ] || fail "$s_read requests got no answer at shutdown (read errors; limit $read_max)"

# Restart on the same database: the interrupted jobs resume and finish,
# each epoch's metrics row present exactly once.
start_daemon
grep -q 'resume' <(tail -n +"$((lines_before + 1))" "$log") ||
    echo "load_test: note: no 'resume' line in the restarted daemon's log" >&2
resumed=0 after_ok=0 first_after=()
for j in "$sa" "$sb"; do
    first_after+=("$(api GET "/v1/jobs/$j" | json_num epoch)")
    case $(job_status "$j") in running | queued) resumed=$((resumed + 1)) ;; esac
done
for j in "$sa" "$sb"; do
    st=$(job_wait "$j" 'succeeded|failed|cancelled' 180)
    if [ "$st" = succeeded ]; then
        after_ok=$((after_ok + 1))
    else
        fail "interrupted job $j ended '$st' after the restart: $(api GET "/v1/jobs/$j" | json_str error)"
        continue
    fi
    epochs_seen=$(api GET "/v1/jobs/$j/metrics" | grep -o '"epoch":[0-9]*' | cut -d: -f2)
    n=$(printf '%s\n' "$epochs_seen" | grep -c .)
    uniq=$(printf '%s\n' "$epochs_seen" | sort -un | grep -c .)
    want=$(api GET "/v1/jobs/$j" | json_num epoch)
    [ "$n" = "$uniq" ] && [ "$n" = "$want" ] ||
        fail "job $j: $n metrics rows, $uniq distinct epochs, $want epochs run"
done
printf '{"bench":"load_shutdown","seconds":%s,"requests":%s,"non_2xx":%s,"refused_after_stop":%s,"read_errors":%s,"timeouts":%s,"exit_code":%s,"stop_s":%s,"unfinished_at_stop":%s,"jobs_interrupted":2,"epochs_at_sigterm":[%s,%s],"epochs_after_restart":[%s],"jobs_resumed":%s,"jobs_succeeded_after_restart":%s}\n' \
    "$shut_s" "$s_reqs" "$s_non2xx" "$s_refused" "$s_read" "$s_tmo" "$code" "$stop_s" \
    "$unfinished" "${ep_a:-null}" "${ep_b:-null}" "$(IFS=,; echo "${first_after[*]}")" "$resumed" "$after_ok"

kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=""
[ "$code" = 0 ] || fail "the restarted daemon exited $code on SIGTERM"

if [ ${#failures[@]} -gt 0 ]; then
    echo "load_test: ${#failures[@]} failure(s):" >&2
    printf '  %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "load_test: passed" >&2
