#!/bin/sh
# tests/valgrind_daemon.sh - backpropd under Valgrind memcheck, for the
# integration tests: `make valgrind` points BACKPROPD_BIN at this script, so
# every daemon (and every `backpropd keys ...` CLI run) the tests start runs
# as valgrind ... build/backpropd "$@".
#
# The harness removes every BACKPROPD_* variable before it execs us, so our
# own settings use a BPD_VG_ prefix:
#   BPD_VG_BIN     the daemon        (default: ../build/backpropd from here)
#   BPD_VG_SUPP    suppressions      (default: valgrind.supp beside this file)
#   BPD_VG_LOGDIR  Valgrind's reports, one vg.<pid>.log per process (default
#                  $TMPDIR/backpropd-valgrind); never the daemon's own log,
#                  which tests read line by line as JSON
#   BPD_VG_EXTRA   more valgrind options (e.g. --gen-suppressions=all)
#
# Any memory error or definitely lost block makes the process exit 99
# instead of its own code; the tests assert exit 0 after SIGTERM (or a
# CLI's exit code), so the test that stopped the daemon fails, and make
# valgrind also reads the reports afterwards.  exec: SIGTERM from the
# harness reaches valgrind, which hands it to the daemon.
here=$(cd "$(dirname "$0")" && pwd)
bin=${BPD_VG_BIN:-$here/../build/backpropd}
supp=${BPD_VG_SUPP:-$here/valgrind.supp}
logdir=${BPD_VG_LOGDIR:-${TMPDIR:-/tmp}/backpropd-valgrind}
mkdir -p "$logdir" || exit 127

# The daemon re-execs itself through /proc/self/exe to pick OpenBLAS kernels
# (server/blas_tune.c); under Valgrind that exec would run the daemon
# natively, out of sight.  Valgrind's virtual CPU has no AVX-512 anyway, and
# OpenBLAS's own choice is fine for a correctness run.
BACKPROPD_BLAS_TUNED=1
export BACKPROPD_BLAS_TUNED

# shellcheck disable=SC2086  # BPD_VG_EXTRA is a list of options
exec valgrind --tool=memcheck --error-exitcode=99 \
    --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --track-fds=no --num-callers=40 --child-silent-after-fork=yes \
    --suppressions="$supp" --log-file="$logdir/vg.%p.log" \
    ${BPD_VG_EXTRA:-} "$bin" "$@"
