#!/usr/bin/env bash
# compare.sh - loom against its peers (Open MPI, MPICH, Gloo) and the memory-bandwidth limit,
# same collectives, sizes and rank counts, in one interleaved run (DESIGN.md section 9).
#
# It runs ../shared/peers/run_all.sh with loom-perf as EXTRA_CMD (in the peers' raw format,
# with the peers' size sweeps and adaptive iterations), then prints one table per collective
# and rank count (perf/compare_table.py: loom busbw, each peer's busbw, best peer,
# loom/best-peer) and draws one SVG per table with `loom-perf --plot`.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: perf/compare.sh [-h]

Environment (defaults in brackets):
  RUNS       repetitions of the whole suite, interleaved; medians are reported [3]
  NPS        rank counts ["2 4"]
  OUT        result directory [/tmp/loom_compare/<timestamp>]
  PERF_BIN  the loom-perf binary [build/perf/loom-perf]
  PEERS_DIR  the peer benchmarks [../shared/peers next to the repository]
  PEERS      subset of "membw ompi ompi_ucx mpich gloo gloo_sync" [all]
  MAXBYTES   largest size for every collective [256M]
  SKIP_RUN   1 = only rebuild the tables and pictures from an existing OUT [0]
  UCX_TLS    UCX transports for MPICH and Open MPI over UCX [shm,self,cma]

Output: OUT/compare.md (the tables), OUT/<collective>_np<N>.svg, and the raw files.
Run it on an otherwise idle machine: the ranks of every library share its cores.
EOF
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-3}
NPS=${NPS:-"2 4"}
OUT=${OUT:-/tmp/loom_compare/$(date +%Y%m%d-%H%M%S)}
PERF_BIN=$(realpath "${PERF_BIN:-$ROOT/build/perf/loom-perf}")
PEERS_DIR=$(realpath "${PEERS_DIR:-$ROOT/../shared/peers}")
MAXBYTES=${MAXBYTES:-256M}
SKIP_RUN=${SKIP_RUN:-0}

[ -x "$PERF_BIN" ] || { echo "compare.sh: $PERF_BIN not built (make build)" >&2; exit 1; }
[ -f "$PEERS_DIR/run_all.sh" ] || { echo "compare.sh: no run_all.sh in $PEERS_DIR" >&2; exit 1; }
command -v python3 >/dev/null || { echo "compare.sh: python3 is required" >&2; exit 1; }
mkdir -p "$OUT"

# loom's share of every (run, np): the same sweeps and iteration rules as the peers'
# (allreduce 8 B..max by 2 with a 1 s budget per size; the others 16 B..max by 4 with 0.5 s).
# It is a command line for run_all.sh's `bash -c`, so the quotes are meant literally.
# shellcheck disable=SC2089,SC2090
EXTRA_CMD="'$PERF_BIN' -np \$NP --peer-format ours-loom all_reduce -b 8 -e $MAXBYTES -f 2 --budget 1 \
  && '$PERF_BIN' -np \$NP --peer-format ours-loom all_gather,reduce_scatter,broadcast,alltoall \
     -b 16 -e $MAXBYTES -f 4 --budget 0.5"

if [ "$SKIP_RUN" != 1 ]; then
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "loom-perf: $PERF_BIN"
    echo "EXTRA_CMD: $EXTRA_CMD"
  } > "$OUT/compare_env.txt"
  # MPICH 4.0.2 (ch4:ucx) is far faster on one host with these UCX transports than with its
  # default (shared/peers/README.md); Open MPI over UCX uses them too. loom ignores UCX_*.
  export UCX_TLS=${UCX_TLS:-shm,self,cma}
  echo "UCX_TLS: $UCX_TLS" >> "$OUT/compare_env.txt"
  # shellcheck disable=SC2090
  export RUNS NPS OUT EXTRA_CMD
  if [ -n "${PEERS:-}" ]; then export PEERS; fi
  bash "$PEERS_DIR/run_all.sh"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/compare_env.txt"
fi

python3 "$HERE/compare_table.py" "$OUT" --peers-dir "$PEERS_DIR" --json-dir "$OUT/json" \
  > "$OUT/compare.md"
for json in "$OUT"/json/*.json; do
  [ -e "$json" ] || continue
  "$PERF_BIN" --plot "$OUT/$(basename "$json" .json).svg" "$json" > /dev/null
done
cat "$OUT/compare.md"
echo "tables: $OUT/compare.md; pictures: $OUT/*.svg" >&2
