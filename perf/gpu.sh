#!/usr/bin/env bash
# The GPU check in one command (issue 7, docs/GPU.md): on a machine with an NVIDIA GPU, builds
# loom with CUDA, runs the GPU tests, and measures what docs/PERFORMANCE.md records:
#   - the device-memory bound: a 1 GiB device-to-device copy (perf/gpu/membw.cu);
#   - AllReduce latency at 8 B for 1 rank, and for 2 ranks on one GPU as threads and processes
#     (staged, LOOM_CUDA_DIRECT, LOOM_CUDA_IPC);
#   - AllReduce busbw for 2 and 4 ranks on one GPU from 1 MiB to 256 MiB, and its ratio to the
#     bound;
#   - NVIDIA NCCL's 1-rank 8 B latency on the same GPU, when libnccl.so.2 and nccl.h are there,
#     and the same NVIDIA-built program on loom's libnccl.so.2 by LD_LIBRARY_PATH (1, 2, 4 ranks
#     on one GPU, result checked): the NCCL drop-in check.
#
# usage: perf/gpu.sh [OUTDIR]      (default: $OUT if set, else gpu-results)
# env:   BUILD (build-gpu), ARCH (CMAKE_CUDA_ARCHITECTURES, default: the GPU's own, else 90),
#        JOBS (nproc), TEST_TIMEOUT (900 s), STEPS ("build tests bench": any subset, e.g.
#        STEPS="build tests" then STEPS=bench, to fit a per-command time limit; bench and tests
#        need a build from an earlier run)
# Every step's log lands in OUTDIR; summary.txt has the numbers. A failed step is reported and
# the script goes on, so one run gives everything it can; the exit status is non-zero when a
# test or a measurement failed.
set -u
cd "$(dirname "$0")/.." || exit 1
OUTDIR=${1:-${OUT:-gpu-results}}
BUILD=${BUILD:-build-gpu}
case $BUILD in /*) BUILD_ABS=$BUILD ;; *) BUILD_ABS=$PWD/$BUILD ;; esac
JOBS=${JOBS:-$(nproc)}
TEST_TIMEOUT=${TEST_TIMEOUT:-900}
mkdir -p "$OUTDIR"
SUMMARY="$OUTDIR/summary.txt"
: > "$SUMMARY"
status=0
say() { echo "$*" | tee -a "$SUMMARY"; }
fail() { say "FAILED: $*"; status=1; }

say "# perf/gpu.sh $(date -u +%FT%TZ) on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi > "$OUTDIR/nvidia-smi.txt" 2>&1 || fail "nvidia-smi (is there a GPU?)"
say "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"

if [ -z "${ARCH:-}" ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
  ARCH=${cc:-90}
fi

STEPS=${STEPS:-build tests bench}
step() { case " $STEPS " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- build ----
if step build; then
if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLOOM_CUDA=ON \
     -DCMAKE_CUDA_ARCHITECTURES="$ARCH" > "$OUTDIR/configure.log" 2>&1; then
  fail "configure (see configure.log)"; exit 1
fi
if ! cmake --build "$BUILD" -j "$JOBS" --target loom-perf loom-gpu-membw loomrun loom-info \
     nccl gpu_test gpu_fake_test loom_test_worker \
     > "$OUTDIR/build.log" 2>&1; then
  fail "build (see build.log)"; tail -30 "$OUTDIR/build.log"; exit 1
fi
fi
"$BUILD/tools/loom-info" > "$OUTDIR/loom-info.txt" 2>&1
PERF="$BUILD/perf/loom-perf"
RUN="$BUILD/tools/loomrun"

# ---- tests ----
if step tests; then
# Each program three times: staged, with LOOM_CUDA_DIRECT=1 and with LOOM_CUDA_IPC=1 (logs
# gpu_test.log, gpu_test-direct.log, gpu_test-ipc.log, ...).
for t in gpu_test gpu_test-direct gpu_test-ipc gpu_fake_test gpu_fake_test-direct \
         gpu_fake_test-ipc; do
  direct=0; ipc=0; prog=${t%-direct}; prog=${prog%-ipc}
  case $t in *-direct) direct=1 ;; *-ipc) ipc=1 ;; esac
  if (cd "$BUILD" && LOOM_CUDA_DIRECT=$direct LOOM_CUDA_IPC=$ipc timeout "$TEST_TIMEOUT" \
        "./tests/gpu/$prog") > "$OUTDIR/$t.log" 2>&1; then
    skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\{0,1\}, listed below:.*/\1/p' "$OUTDIR/$t.log")
    say "$t: $(grep -E '^\[  PASSED  \]' "$OUTDIR/$t.log" | tail -1) ${skipped:-0} skipped"
  else
    fail "$t (see $t.log)"; grep -E '^\[  FAILED  \]' "$OUTDIR/$t.log" | tee -a "$SUMMARY"
  fi
done
fi
if ! step bench; then say "status: $([ $status = 0 ] && echo ok || echo FAILED)"; exit $status; fi

# ---- the device-memory bound ----
if timeout 120 "$BUILD/perf/loom-gpu-membw" > "$OUTDIR/membw.txt" 2>&1; then
  say "bound: $(cat "$OUTDIR/membw.txt")"
else
  fail "membw (see membw.txt)"
fi
bound=$(sed -n 's/.*copy \([0-9.]*\) GB\/s.*/\1/p' "$OUTDIR/membw.txt")

# Out-of-place time (us) and busbw (GB/s) of the row of SIZE bytes in a loom-perf table.
col() { awk -v s="$2" -v c="$3" '$1 == s && $0 !~ /^#/ { print $c; exit }' "$1"; }

# ---- latency at 8 B ----
lat() {  # name, then the command
  local name=$1; shift
  if timeout 300 "$@" > "$OUTDIR/$name.txt" 2>&1; then
    say "$name: AllReduce 8 B: $(col "$OUTDIR/$name.txt" 8 6) us"
  else
    fail "$name (see $name.txt)"
  fi
}
lat allreduce_8B_1rank "$PERF" all_reduce -b 8 -e 8 -n 10000 -w 500 --device cuda
lat allreduce_8B_2threads "$PERF" all_reduce -t 2 -b 8 -e 8 -n 2000 -w 200 --device cuda
lat allreduce_8B_2procs "$RUN" -np 2 "$PERF" all_reduce -b 8 -e 8 -n 2000 -w 200 --device cuda
lat allreduce_8B_2threads_direct env LOOM_CUDA_DIRECT=1 "$PERF" all_reduce -t 2 -b 8 -e 8 -n 2000 \
  -w 200 --device cuda
lat allreduce_8B_2procs_ipc env LOOM_CUDA_IPC=1 "$RUN" -np 2 "$PERF" all_reduce -b 8 -e 8 -n 2000 \
  -w 200 --device cuda

# NVIDIA NCCL's figure on the same GPU, for the 1-rank comparison; then the same binary, built
# against NVIDIA's nccl.h and libnccl.so.2, run on loom's drop-in by LD_LIBRARY_PATH alone, with
# 1, 2 and 4 ranks on one GPU (NVIDIA's NCCL refuses more than one).
NCCL_INC=""
for d in /usr/include /usr/local/cuda/include /usr/local/include; do
  [ -f "$d/nccl.h" ] && NCCL_INC=$d && break
done
NCCL_LIB=$(ldconfig -p 2>/dev/null | awk '/libnccl\.so\.2 / { print $NF; exit }')
if [ -n "$NCCL_INC" ] && [ -n "$NCCL_LIB" ]; then
  if gcc -O2 -o "$BUILD/nccl_latency" perf/gpu/nccl_latency.c -I"$NCCL_INC" \
       -I/usr/local/cuda/include "$NCCL_LIB" -L/usr/local/cuda/lib64 -lcudart \
       -Wl,-rpath,/usr/local/cuda/lib64 > "$OUTDIR/nccl_latency_build.log" 2>&1; then
    if timeout 120 "$BUILD/nccl_latency" > "$OUTDIR/nccl_latency_nvidia.txt" 2>&1; then
      say "NVIDIA: $(cat "$OUTDIR/nccl_latency_nvidia.txt")"
    else
      say "NVIDIA NCCL: did not run (see nccl_latency_nvidia.txt)"
    fi
    for n in 1 2 4; do
      if LD_LIBRARY_PATH="$BUILD_ABS/compat/nccl" timeout 300 "$BUILD/nccl_latency" 2000 "$n" \
           > "$OUTDIR/nccl_latency_loom_$n.txt" 2>&1; then
        say "loom drop-in: $(cat "$OUTDIR/nccl_latency_loom_$n.txt")"
      else
        fail "the NVIDIA-built program on loom's libnccl.so.2, $n rank(s) (see nccl_latency_loom_$n.txt)"
      fi
    done
  else
    fail "building perf/gpu/nccl_latency.c against NVIDIA's NCCL (see nccl_latency_build.log)"
  fi
else
  say "NCCL comparison: NVIDIA's libnccl.so.2/nccl.h not found on this machine; not measured"
fi

# ---- bandwidth, several ranks on one GPU ----
# Processes (staged), threads (staged), threads reading each other's buffers (LOOM_CUDA_DIRECT),
# processes reading each other's IPC windows (LOOM_CUDA_IPC).
bw() {  # name, then the command
  local name=$1; shift
  if timeout 600 "$@" all_reduce -b 1M -e 256M -f 4 -n 20 -w 5 --device cuda \
       --json "$OUTDIR/$name.json" > "$OUTDIR/$name.txt" 2>&1; then
    for size in 67108864 268435456; do
      busbw=$(col "$OUTDIR/$name.txt" "$size" 8)
      ratio=$(awk -v b="$busbw" -v m="${bound:-0}" 'BEGIN { if (m > 0) printf "%.3f", b / m; else print "n/a" }')
      say "$name: $size B: busbw $busbw GB/s, ratio to the copy bound $ratio"
    done
  else
    fail "$name (see $name.txt)"
  fi
}
for np in 2 4; do
  bw "allreduce_bw_${np}procs" "$RUN" -np "$np" "$PERF"
  bw "allreduce_bw_${np}threads" "$PERF" -t "$np"
  bw "allreduce_bw_${np}threads_direct" env LOOM_CUDA_DIRECT=1 "$PERF" -t "$np"
  bw "allreduce_bw_${np}procs_ipc" env LOOM_CUDA_IPC=1 "$RUN" -np "$np" "$PERF"
done

say "status: $([ $status = 0 ] && echo ok || echo FAILED)"
exit $status
