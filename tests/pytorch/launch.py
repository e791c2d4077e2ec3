"""Starts N ranks of a script on 127.0.0.1 (env:// rendezvous), each with a deadline."""
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# build/compat/pytorch holds the loom_torch package (CMake); LOOM_TORCH_BUILD overrides it.
BUILD = os.environ.get("LOOM_TORCH_BUILD", os.path.join(ROOT, "build", "compat", "pytorch"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(script, args, nranks, timeout, env=None):
    """Runs nranks copies of script; returns [(returncode, output)]. Kills all at the deadline.

    The free port is only free when chosen; when another process took it before rank 0 bound
    it (other test suites run beside this one), the run is repeated once on a new port."""
    results = run_once(script, args, nranks, timeout, env)
    if any(rc != 0 and "Address already in use" in out for rc, out in results):
        print("[launch] port taken before rank 0 bound it; running again", file=sys.stderr)
        results = run_once(script, args, nranks, timeout, env)
    return results


def run_once(script, args, nranks, timeout, env):
    port = free_port()
    procs = []
    for rank in range(nranks):
        e = dict(os.environ)
        e.update(env or {})
        e.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                 WORLD_SIZE=str(nranks), LOCAL_RANK=str(rank), OMP_NUM_THREADS="1",
                 PYTHONPATH=BUILD + os.pathsep + e.get("PYTHONPATH", ""))
        procs.append(subprocess.Popen([sys.executable, script] + list(args), env=e,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    deadline = time.monotonic() + timeout
    results = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
            results.append((p.returncode, out))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            out, _ = p.communicate()
            results.append((-9, out + f"\n[launch] killed after the {timeout} s deadline"))
    return results
