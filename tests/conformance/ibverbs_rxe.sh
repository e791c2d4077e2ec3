#!/usr/bin/env bash
# The transport conformance suite over the ibverbs transport on Soft-RoCE (rdma_rxe).
#
# Creates an rxe device on a network interface (IFACE, default: the interface of the default
# route, then lo), runs transport_conformance_test's ibverbs instances over it (the harness
# includes ibverbs exactly when an RDMA port is active) and removes the device again.
#
# Usage: ibverbs_rxe.sh CONFORMANCE_TEST. Exit 0: passed; 1: failed; 77: skipped, with the
# reason on stderr (not root, no `rdma` tool, or `rdma link add ... type rxe` refused: no
# rdma_rxe module, no NETLINK_RDMA in this kernel or container). Every wait has a deadline.
set -u

TEST=${1:?usage: ibverbs_rxe.sh CONFORMANCE_TEST}
DEADLINE_S=${DEADLINE_S:-600}
SKIP=77
skip() { echo "SKIP: $*" >&2; exit "$SKIP"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

command -v rdma >/dev/null 2>&1 || skip "iproute2's 'rdma' tool is not installed"
command -v timeout >/dev/null 2>&1 || skip "coreutils 'timeout' is not installed"
[ "$(id -u)" = 0 ] || skip "creating a Soft-RoCE device needs root (running as uid $(id -u))"

DEV=loomrxe$$
CREATED=0
# shellcheck disable=SC2317  # invoked through the EXIT trap
cleanup() {
  if [ "$CREATED" = 1 ]; then rdma link delete "$DEV" >/dev/null 2>&1; fi
}
trap cleanup EXIT

candidates=${IFACE:-"$(ip route show default 2>/dev/null | awk '/dev/ {for (i=1;i<NF;i++) if ($i=="dev") print $(i+1); exit}') lo"}
why=""
for netdev in $candidates; do
  if out=$(timeout 20 rdma link add "$DEV" type rxe netdev "$netdev" 2>&1); then
    CREATED=1
    echo "created Soft-RoCE device $DEV on $netdev"
    break
  fi
  why="$why; $netdev: $out"
done
[ "$CREATED" = 1 ] || skip "rdma link add $DEV type rxe failed${why}"

# The port must come up before the suite starts (the harness probes it once).
for _ in $(seq 50); do
  rdma link show "$DEV/1" 2>/dev/null | grep -q "state ACTIVE" && break
  sleep 0.2
done
rdma link show "$DEV/1" 2>/dev/null | grep -q "state ACTIVE" || fail "$DEV/1 did not become ACTIVE"

LOG=$(mktemp "${TMPDIR:-/tmp}/loom-rxe.XXXXXX")
timeout "$DEADLINE_S" "$TEST" --gtest_filter='*/ibverbs:*/faulty_ibverbs' \
  >"$LOG" 2>&1
status=$?
cat "$LOG"
ran=$(grep -c '^\[       OK \]' "$LOG")
rm -f "$LOG"
[ "$status" = 0 ] || fail "the conformance suite over ibverbs failed (exit $status)"
[ "$ran" -gt 0 ] || fail "no ibverbs conformance test ran although $DEV is ACTIVE"
echo "PASS: $ran conformance tests over ibverbs on $DEV"
