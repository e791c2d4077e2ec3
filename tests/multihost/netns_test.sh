#!/usr/bin/env bash
# The namespace multi-host test (issue 5, item 5): loom across real network stacks on one machine.
#
# Creates one network namespace per "host" (NHOSTS, default 3), joined by veth pairs to a bridge,
# each with its own address and host identity (LOOM_HOSTID), and starts RANKS_PER_HOST (2) ranks
# in each with `loomrun --nnodes`. The ranks (worker.cpp) run the collectives with the planner's
# own choices and check every result exactly. Then this script checks, from each rank's log:
#   - the planner chose the hierarchical AllReduce, AllGather, ReduceScatter, Broadcast and
#     Reduce on NHOSTS hosts (TUNING lines: "<collective> <bytes> B on <n> ranks (<H> host(s)):
#     hierarchical");
#   - every connection to a rank of the same namespace went over shm and every connection to
#     another namespace over socket (NET lines: "connection to rank P (..., via T)"), and each
#     rank used both;
#   - every rank reported exact results and every loomrun exited 0.
#
# Usage: netns_test.sh LOOMRUN WORKER. Exit 0: passed; 1: failed; 77: skipped (not root, no `ip`,
# or `ip netns add` refused), with the reason on stderr. Every wait has a deadline; namespaces,
# links, processes and any /dev/shm entries the job left are removed on every exit path.
set -u

LOOMRUN=${1:?usage: netns_test.sh LOOMRUN WORKER}
WORKER=${2:?usage: netns_test.sh LOOMRUN WORKER}
NHOSTS=${NHOSTS:-3}
RANKS_PER_HOST=${RANKS_PER_HOST:-2}
DEADLINE_S=${DEADLINE_S:-150}
SKIP=77

skip() { echo "SKIP: $*" >&2; exit "$SKIP"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "network namespaces need root (running as uid $(id -u))"
command -v ip >/dev/null 2>&1 || skip "iproute2's 'ip' is not installed"
command -v timeout >/dev/null 2>&1 || skip "coreutils 'timeout' is not installed"

# Interface names are limited to 15 characters: "lm" + 5 hex digits of a per-run tag + a suffix.
TAG=lm$(printf '%05x' $(( ($$ ^ RANDOM) & 0xfffff )))
BRIDGE=${TAG}br
SUBNET=10.$(( 200 + RANDOM % 50 )).$(( RANDOM % 250 ))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/loom-netns.XXXXXX")
SHM_BEFORE=$WORK/shm.before
ls -1 /dev/shm > "$SHM_BEFORE" 2>/dev/null || : > "$SHM_BEFORE"
PIDS=()
NAMESPACES=()

# shellcheck disable=SC2317  # invoked through the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do  # loomrun kills its ranks' process groups when signalled
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null
  done
  for ns in "${NAMESPACES[@]}"; do
    # Anything still running in the namespace is this job's (the namespace is ours alone).
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  ip link del "$BRIDGE" 2>/dev/null
  for i in $(seq 0 $((NHOSTS - 1))); do ip link del "${TAG}v$i" 2>/dev/null; done
  # loom's shared memory is memfds, apart from a host window's segments while a communicator
  # initialises (loom-w-<hash>-<rank>-<pid>); remove any the job left, but not those of a live
  # process (another test may be initialising one).
  shopt -s nullglob nocaseglob
  for segment in /dev/shm/*loom*; do
    name=${segment##*/}
    grep -qxF "$name" "$SHM_BEFORE" && continue
    case $name in loom-w-*) kill -0 "${name##*-}" 2>/dev/null && continue ;; esac
    rm -f "$segment"
  done
  if [ "$status" != 0 ] && [ "$status" != "$SKIP" ]; then
    for log in "$WORK"/host*.log; do
      [ -f "$log" ] || continue
      echo "---- $log (last 40 lines)" >&2
      tail -n 40 "$log" >&2
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the hosts -----------------------------------------------------------------------------
if ! err=$(ip netns add "${TAG}h0" 2>&1); then
  skip "cannot create a network namespace ('ip netns add' said: $err)"
fi
NAMESPACES+=("${TAG}h0")
for i in $(seq 1 $((NHOSTS - 1))); do
  ip netns add "${TAG}h$i" || fail "ip netns add ${TAG}h$i"
  NAMESPACES+=("${TAG}h$i")
done
ip link add "$BRIDGE" type bridge || fail "cannot create bridge $BRIDGE"
ip link set "$BRIDGE" up || fail "bridge up"
for i in $(seq 0 $((NHOSTS - 1))); do
  ns=${TAG}h$i
  ip link add "${TAG}v$i" type veth peer name "${TAG}p$i" || fail "veth ${TAG}v$i"
  ip link set "${TAG}p$i" netns "$ns" || fail "move ${TAG}p$i into $ns"
  ip link set "${TAG}v$i" master "$BRIDGE" || fail "attach ${TAG}v$i to $BRIDGE"
  ip link set "${TAG}v$i" up || fail "${TAG}v$i up"
  ip -n "$ns" link set lo up || fail "lo up in $ns"
  ip -n "$ns" addr add "$SUBNET.$((i + 1))/24" dev "${TAG}p$i" || fail "address in $ns"
  ip -n "$ns" link set "${TAG}p$i" up || fail "${TAG}p$i up"
done
# The bridge forwards once its ports are up; wait (bounded) until host 0 answers the others
# (without ping, the ranks' own connection deadlines bound the wait).
if command -v ping >/dev/null 2>&1; then
  for i in $(seq 1 $((NHOSTS - 1))); do
    ok=0
    for _ in $(seq 1 40); do
      if ip netns exec "${TAG}h$i" ping -c 1 -W 1 "$SUBNET.1" >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.25
    done
    [ $ok = 1 ] || fail "host $i cannot reach host 0 at $SUBNET.1 over $BRIDGE"
  done
fi

# ---- the job -------------------------------------------------------------------------------
SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
MASTER=$SUBNET.1:29411
NRANKS=$((NHOSTS * RANKS_PER_HOST))
for i in $(seq 0 $((NHOSTS - 1))); do
  ns=${TAG}h$i
  timeout -k 5 "$DEADLINE_S" ip netns exec "$ns" env \
      LOOM_HOSTID="netns-host-$i" LOOM_SOCKET_IFNAME="${TAG}p$i" LOOM_SECRET="$SECRET" \
      LOOM_TIMEOUT_MS=60000 LOOM_DEBUG=INFO LOOM_DEBUG_SUBSYS=INIT,NET,TUNING \
      "$LOOMRUN" -np "$RANKS_PER_HOST" --nnodes "$NHOSTS" --node-rank "$i" --master "$MASTER" \
      --timeout "$((DEADLINE_S - 10))" "$WORKER" > "$WORK/host$i.log" 2>&1 &
  PIDS+=($!)
done
status=0
for i in "${!PIDS[@]}"; do
  wait "${PIDS[$i]}"
  rc=$?
  [ $rc = 0 ] || { echo "host $i: loomrun exited $rc" >&2; status=1; }
done
PIDS=()
[ $status = 0 ] || fail "the job failed (logs below)"

# ---- the checks ----------------------------------------------------------------------------
for r in $(seq 0 $((NRANKS - 1))); do
  h=$((r / RANKS_PER_HOST))
  log=$WORK/host$h.log
  grep -q "^rank $r: [0-9]* calls exact" "$log" || fail "rank $r did not report exact results"
  for c in allreduce allgather reducescatter broadcast reduce; do
    grep -Eq "\[rank $r\] LOOM INFO TUNING $c [0-9]+ B on $NRANKS ranks \($NHOSTS host\(s\)\): hierarchical," "$log" ||
      fail "rank $r: the planner never chose hierarchical $c on $NHOSTS hosts"
  done
  shm=0; socket=0
  while read -r peer via; do
    if [ $((peer / RANKS_PER_HOST)) = $h ]; then want=shm; else want=socket; fi
    [ "$via" = "$want" ] || fail "rank $r reached rank $peer via $via, expected $want"
    [ "$via" = shm ] && shm=$((shm + 1))
    [ "$via" = socket ] && socket=$((socket + 1))
  done < <(sed -n "s/.*\[rank $r\] LOOM INFO NET connection to rank \([0-9]*\) (.*, via \([a-z_]*\)) lane .*/\1 \2/p" "$log")
  [ $shm -gt 0 ] || fail "rank $r made no shm connection"
  [ $socket -gt 0 ] || fail "rank $r made no socket connection"
  echo "rank $r (host $h): exact; hierarchical chosen; $shm shm and $socket socket connections"
done
echo "PASS: $NRANKS ranks on $NHOSTS namespaces"
exit 0
