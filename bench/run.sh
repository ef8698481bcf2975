#!/bin/sh
# Benchmarks, one JSON object a line: the engine's own (bench_core), then the
# peer baselines (PyTorch / scikit-learn) from ../shared/bench/peers.sh when
# they can run, so the lines come side by side from the same machine.
#   usage: bench/run.sh [BUILD-dir]
#   BENCH_PEERS=1 forces the peers, BENCH_PEERS=0 skips them; by default they
#   run when /usr/bin/python3 can import torch and sklearn.
#   BENCH_ARGS="digits predict" limits bench_core's workloads.
#   BENCH_HTTP=0 skips the HTTP prediction benchmark (bench/http_bench.sh).
#   BENCH_IDLE=0 skips start-up time and idle RSS (bench/idle_bench.py).
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$BUILD/bench/bench_core
[ -x "$BIN" ] || { echo "bench/run.sh: $BIN is missing (run make bench)" >&2; exit 1; }

# Debian 12's OpenBLAS 0.3.21 does not know recent Intel server CPUs (e.g.
# family 6 model 207) and falls back to its generic Prescott (SSE3) kernels,
# 3-4x slower than the AVX-512 ones the CPU can run.  Unless the caller chose
# a kernel family, pick SkylakeX on such CPUs.  Exported, so the peers (whose
# BLAS is the same OpenBLAS) get the same kernels and the comparison is fair.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    core=$("$BIN" --openblas-core 2>/dev/null)
    if [ "$core" = "Prescott" ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
        echo "bench/run.sh: OpenBLAS fell back to Prescott kernels on an AVX-512 CPU; using OPENBLAS_CORETYPE=SkylakeX" >&2
        OPENBLAS_CORETYPE=SkylakeX
        export OPENBLAS_CORETYPE
    fi
fi

# shellcheck disable=SC2086
"$BIN" ${BENCH_ARGS:-} || exit 1

PEERS=$ROOT/../shared/bench/peers.sh
run_peers=${BENCH_PEERS:-auto}
if [ "$run_peers" = auto ]; then
    if [ -f "$PEERS" ] && /usr/bin/python3 -c 'import torch, sklearn' >/dev/null 2>&1; then
        run_peers=1
    else
        run_peers=0
        echo "bench/run.sh: peers skipped (needs $PEERS and /usr/bin/python3 with torch and sklearn)" >&2
    fi
fi
if [ "$run_peers" = 1 ]; then
    if [ -f "$PEERS" ]; then
        bash "$PEERS" || echo "bench/run.sh: peers.sh failed (exit $?)" >&2
    else
        echo "bench/run.sh: peers requested but $PEERS is missing" >&2
    fi
fi
if [ "${BENCH_IDLE:-1}" = 1 ] && [ -x "$BUILD/backpropd" ]; then
    /usr/bin/python3 "$ROOT/bench/idle_bench.py" "$BUILD" || echo "bench/run.sh: idle_bench.py failed (exit $?)" >&2
fi
if [ "${BENCH_HTTP:-1}" = 1 ] && [ -x "$BUILD/backpropd" ]; then
    bash "$ROOT/bench/http_bench.sh" "$BUILD" || echo "bench/run.sh: http_bench.sh failed (exit $?)" >&2
fi
exit 0
