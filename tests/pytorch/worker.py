"""One rank of a torch.distributed run for tests/pytorch (started by launch.py).

usage: worker.py BACKEND SCENARIO OUT_DIR   (rank, size, master from the env:// variables)

Scenario "ops" runs every operation on every dtype and saves {name: tensor} per rank to
OUT_DIR/rank<r>.pt. With the reference backend (gloo), an operation gloo lacks (reduce_scatter,
AVG, PREMUL_SUM, alltoall of lists, some dtypes) is composed from operations it has, so each
loom result has a gloo-derived expectation.
"""
import datetime
import json
import os
import sys
import time
import traceback

import torch
import torch.distributed as dist

BACKEND, SCENARIO, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
if BACKEND == "loom":
    import loom_torch  # noqa: F401  registers the backend

R = dist.ReduceOp
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.uint8,
          torch.int32, torch.int64, torch.bool]
FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
N = 37  # elements per tensor: not a multiple of anything loom slices by


def name(dt):
    return str(dt).replace("torch.", "")


def opn(op):
    return {R.SUM: "SUM", R.PRODUCT: "PRODUCT", R.MIN: "MIN", R.MAX: "MAX"}[op]


def data(rank, dt, n=N, salt=0, small=False):
    """Deterministic per (rank, dtype) values whose sums and products are exact in every dtype."""
    g = torch.Generator().manual_seed(1000 * rank + 17 * salt + 7)
    if dt == torch.bool:
        return torch.randint(0, 2, (n,), generator=g).bool()
    hi = 3 if small else 9
    v = torch.randint(1, hi, (n,), generator=g)
    if dt in (torch.int8, torch.int32, torch.int64) and not small:
        v = v - 4  # negatives too
    return v.to(dt)


class Ops:
    def __init__(self, ref):
        self.ref = ref  # reference backend: compose what it lacks
        self.rank = dist.get_rank()
        self.size = dist.get_world_size()

    def call(self, native, composed):
        if not self.ref:
            return native()
        try:
            return native()
        except RuntimeError:
            return composed()

    def all_reduce(self, t, op):
        def composed():
            # In float64 (exact for the small integers used), then the op gloo lacks.
            if op == R.AVG:
                w = t.double()
                dist.all_reduce(w, R.SUM)
                t.copy_((w / self.size).to(t.dtype))
            elif t.dtype == torch.bool:
                w = t.to(torch.uint8)
                dist.all_reduce(w, {R.SUM: R.MAX, R.PRODUCT: R.MIN}.get(op, op))
                t.copy_(w.bool())
            else:
                w = t.double()
                dist.all_reduce(w, op)
                t.copy_(w.to(t.dtype))
        self.call(lambda: dist.all_reduce(t, op), composed)

    def premul(self, t, factor):
        def composed():
            w = t.double() * factor
            dist.all_reduce(w, R.SUM)
            t.copy_(w.to(t.dtype))
        self.call(lambda: dist.all_reduce(t, dist._make_nccl_premul_sum(factor)), composed)

    def reduce_scatter(self, out, ins, op):
        def composed():
            w = torch.cat([x.reshape(-1) for x in ins])
            self.all_reduce(w, op)
            out.copy_(w.chunk(self.size)[self.rank].view_as(out))
        self.call(lambda: dist.reduce_scatter(out, ins, op), composed)

    def reduce_scatter_base(self, out, inp, op):
        def composed():
            w = inp.clone()
            self.all_reduce(w, op)
            out.copy_(w.chunk(self.size)[self.rank].view_as(out))
        self.call(lambda: dist._reduce_scatter_base(out, inp, op), composed)

    def all_to_all(self, outs, ins):
        def composed():
            inp = torch.cat([x.reshape(-1) for x in ins])
            out = torch.empty(sum(o.numel() for o in outs), dtype=inp.dtype)
            osplit, isplit = [o.numel() for o in outs], [x.numel() for x in ins]
            self.generic(lambda y, x: dist.all_to_all_single(y, x, osplit, isplit), inp.dtype,
                         out, inp)
            for o, part in zip(outs, out.split([o.numel() for o in outs])):
                o.copy_(part.view_as(o))
        self.call(lambda: dist.all_to_all(outs, ins), composed)

    def generic(self, fn, dt, *tensors):
        """An op on dtype dt; the reference backend runs it on a dtype it has when needed."""
        if not self.ref:
            return fn(*tensors)
        try:
            return fn(*tensors)
        except RuntimeError:
            wide = [x.to(torch.int64) if dt == torch.bool else x.double() for x in tensors]
            fn(*wide)
            for x, w in zip(tensors, wide):
                x.copy_(w.to(dt))


def all_gather_cat(y, x, size):
    outs = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(outs, x)
    y.copy_(torch.cat(outs))


def run_ops(ref):
    o = Ops(ref)
    rank, size = o.rank, o.size
    res = {}
    for dt in DTYPES:
        d = name(dt)
        # broadcast
        t = data(rank, dt)
        o.generic(lambda x: dist.broadcast(x, src=1 % size), dt, t)
        res[f"broadcast/{d}"] = t
        # all_reduce, every op
        for op in (R.SUM, R.PRODUCT, R.MIN, R.MAX):
            t = data(rank, dt, small=(op == R.PRODUCT))
            o.all_reduce(t, op)
            res[f"all_reduce/{opn(op)}/{d}"] = t
        if dt in FLOATS:
            t = data(rank, dt)
            o.all_reduce(t, R.AVG)
            res[f"all_reduce/AVG/{d}"] = t
            t = data(rank, dt)
            o.premul(t, 0.5)
            res[f"all_reduce/PREMUL_SUM/{d}"] = t
        # reduce (result on the root only)
        for op in (R.SUM, R.MAX):
            t = data(rank, dt)
            root = size - 1
            o.generic(lambda x: dist.reduce(x, dst=root, op=op), dt, t)
            if rank == root:
                res[f"reduce/{opn(op)}/{d}"] = t
        # all_gather, all_gather_into_tensor
        t = data(rank, dt)
        outs = [torch.empty_like(t) for _ in range(size)]
        o.generic(lambda x, *ys: dist.all_gather(list(ys), x), dt, t, *outs)
        res[f"all_gather/{d}"] = torch.stack(outs)
        out = torch.empty(size * N, dtype=dt)
        o.generic(lambda y, x: o.call(lambda: dist._all_gather_base(y, x),
                                      lambda: all_gather_cat(y, x, size)), dt, out, t)
        res[f"_all_gather_base/{d}"] = out
        # gather to 0, scatter from 0
        outs = [torch.empty_like(t) for _ in range(size)] if rank == 0 else None
        if rank == 0:
            o.generic(lambda x, *ys: dist.gather(x, list(ys), dst=0), dt, t, *outs)
            res[f"gather/{d}"] = torch.stack(outs)
        else:
            o.generic(lambda x: dist.gather(x, None, dst=0), dt, t)
        out = torch.empty(N, dtype=dt)
        if rank == 0:
            ins = [data(100 + p, dt) for p in range(size)]
            o.generic(lambda y, *xs: dist.scatter(y, list(xs), src=0), dt, out, *ins)
        else:
            o.generic(lambda y: dist.scatter(y, None, src=0), dt, out)
        res[f"scatter/{d}"] = out
        # reduce_scatter (list and flat)
        if dt != torch.bool:
            for op in (R.SUM, R.MAX):
                ins = [data(rank, dt, salt=p) for p in range(size)]
                out = torch.empty(N, dtype=dt)
                o.reduce_scatter(out, ins, op)
                res[f"reduce_scatter/{opn(op)}/{d}"] = out
                inp = torch.cat(ins)
                out = torch.empty(N, dtype=dt)
                o.reduce_scatter_base(out, inp, op)
                res[f"_reduce_scatter_base/{opn(op)}/{d}"] = out
        # all_to_all_single: even, and with split sizes (some empty)
        inp = data(rank, dt, n=size * 6).view(size * 3, 2)
        out = torch.empty_like(inp)
        o.generic(lambda y, x: dist.all_to_all_single(y, x), dt, out, inp)
        res[f"all_to_all_single/{d}"] = out
        rows = lambda src, dst: (src + 2 * dst) % 3  # noqa: E731
        isplit = [rows(rank, p) for p in range(size)]
        osplit = [rows(p, rank) for p in range(size)]
        inp = data(rank, dt, n=2 * sum(isplit)).view(-1, 2)
        out = torch.empty(sum(osplit), 2, dtype=dt)
        o.generic(lambda y, x: dist.all_to_all_single(y, x, osplit, isplit), dt, out, inp)
        res[f"all_to_all_single_splits/{d}"] = out
        # all_to_all (lists, uneven)
        ins = [data(rank, dt, n=1 + rows(rank, p), salt=p) for p in range(size)]
        outs = [torch.empty(1 + rows(p, rank), dtype=dt) for p in range(size)]
        o.all_to_all(outs, ins)
        res[f"all_to_all/{d}"] = torch.cat(outs)
        # send/recv around a ring (evens send first)
        t = data(rank, dt)
        got = torch.empty_like(t)
        nxt, prv = (rank + 1) % size, (rank - 1) % size
        if rank % 2 == 0:
            dist.send(t, nxt)
            dist.recv(got, prv)
        else:
            dist.recv(got, prv)
            dist.send(t, nxt)
        res[f"send_recv/{d}"] = got
    # isend/irecv in both directions around the ring at once (4 MiB each: more than a
    # transport buffers), then batch_isend_irecv
    big = data(rank, torch.float32, n=1 << 20)
    got_prev, got_next = torch.empty_like(big), torch.empty_like(big)
    nxt, prv = (rank + 1) % size, (rank - 1) % size
    works = [dist.isend(big, nxt), dist.isend(big * 2, prv) if size > 2 else None,
             dist.irecv(got_prev, prv), dist.irecv(got_next, nxt) if size > 2 else None]
    for w in works:
        if w is not None:
            w.wait()
    res["isend_irecv/prev"] = got_prev
    if size > 2:
        res["isend_irecv/next"] = got_next
    got = torch.empty_like(big)
    ops = [dist.P2POp(dist.isend, big + 1, nxt), dist.P2POp(dist.irecv, got, prv)]
    for w in dist.batch_isend_irecv(ops):
        w.wait()
    res["batch_isend_irecv"] = got
    # dtypes loom has no type for: moved as bytes (int16, complex), complex sums as float pairs.
    # The reference moves the same bytes as uint8 and sums the float view.
    for dt in (torch.int16, torch.complex64):
        d = name(dt)
        raw = (lambda x: x.view(torch.uint8)) if ref else (lambda x: x)  # noqa: E731
        t = data(rank, dt)
        dist.broadcast(raw(t), src=1 % size)
        res[f"broadcast/{d}"] = t
        t = data(rank, dt)
        outs = [torch.empty_like(t) for _ in range(size)]
        dist.all_gather([raw(x) for x in outs], raw(t))
        res[f"all_gather/{d}"] = torch.stack(outs)
        inp = data(rank, dt, n=size * 3)
        out = torch.empty_like(inp)
        dist.all_to_all_single(raw(out), raw(inp))
        res[f"all_to_all_single/{d}"] = out
    t = data(rank, torch.complex64) * (1 + 2j)
    dist.all_reduce(torch.view_as_real(t) if ref else t)
    res["all_reduce/SUM/complex64"] = t
    # all_reduce_coalesced, all_gather_coalesced
    ts = [data(rank, torch.float32, n=5), data(rank, torch.float32, n=11, salt=1)]
    dist.all_reduce_coalesced(ts, R.SUM)
    res["all_reduce_coalesced/0"], res["all_reduce_coalesced/1"] = ts
    ins = [data(rank, torch.float32, n=3), data(rank, torch.float32, n=4, salt=1)]
    outs = [[torch.empty_like(x) for x in ins] for _ in range(size)]
    dist.all_gather_coalesced(outs, ins)
    res["all_gather_coalesced"] = torch.cat([torch.cat(lst) for lst in outs])
    # non-contiguous tensor
    t = data(rank, torch.float32, n=24).view(4, 6).t()
    o.generic(lambda x: dist.all_reduce(x), torch.float32, t)
    res["all_reduce/non_contiguous"] = t.contiguous()
    # async work: wait(), is_completed(), get_future()
    t = data(rank, torch.float64)
    w = dist.all_reduce(t, async_op=True)
    assert w.wait()
    assert w.is_completed()
    res["async/all_reduce"] = t
    t2 = data(rank, torch.float64, salt=3)
    fut = dist.all_reduce(t2, async_op=True).get_future()
    res["async/future"] = fut.wait()[0]
    # sub-group of even ranks
    evens = list(range(0, size, 2))
    sub = dist.new_group(evens)
    if rank in evens:
        t = data(rank, torch.float32)
        dist.all_reduce(t, group=sub)
        res["new_group/all_reduce"] = t
        t = data(rank, torch.int64)
        dist.broadcast(t, src=evens[-1], group=sub)
        res["new_group/broadcast"] = t
    # objects (uint8 and int64 tensors underneath)
    objs = [None] * size
    dist.all_gather_object(objs, {"rank": rank, "s": "x" * rank})
    res["all_gather_object"] = torch.tensor([o_["rank"] + len(o_["s"]) for o_ in objs])
    lst = [f"hello {rank}", rank] if rank == 0 else [None, None]
    dist.broadcast_object_list(lst, src=0)
    res["broadcast_object_list"] = torch.tensor([len(lst[0]), lst[1]])
    # barriers
    dist.barrier()
    dist.distributed_c10d._get_default_group().monitored_barrier(
        datetime.timedelta(seconds=30), wait_all_ranks=True)
    res["barrier"] = torch.ones(1)
    return res


def main():
    rank = int(os.environ["RANK"])
    timeout = datetime.timedelta(seconds=float(os.environ.get("LOOM_TORCH_TEST_TIMEOUT", "60")))
    if os.environ.get("LOOM_TORCH_TEST_INIT") == "tcp":
        addr = f"tcp://{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        dist.init_process_group(BACKEND, init_method=addr, rank=rank,
                                world_size=int(os.environ["WORLD_SIZE"]), timeout=timeout)
    else:
        dist.init_process_group(BACKEND, init_method="env://", timeout=timeout)
    if SCENARIO == "ops":
        res = run_ops(BACKEND == "gloo")
        torch.save(res, os.path.join(OUT, f"rank{rank}.pt"))
        if BACKEND == "loom":  # proof that loom carried them
            with open(os.path.join(OUT, f"counters{rank}.json"), "w") as f:
                json.dump(loom_torch.counters(), f)
    elif SCENARIO == "smoke":
        t = torch.full((5,), float(rank + 1))
        dist.all_reduce(t)
        size = dist.get_world_size()
        assert torch.equal(t, torch.full((5,), size * (size + 1) / 2.0)), t
        with open(os.path.join(OUT, f"rank{rank}.txt"), "w") as f:
            f.write(dist.get_backend())
    elif SCENARIO == "monitored_barrier_missing":
        # rank 1 never arrives; rank 0 must name it.
        pg = dist.distributed_c10d._get_default_group()
        if rank != 1:
            try:
                pg.monitored_barrier(datetime.timedelta(seconds=2), wait_all_ranks=True)
                msg = "passed"
            except RuntimeError as e:
                msg = str(e)
            with open(os.path.join(OUT, f"rank{rank}.txt"), "w") as f:
                f.write(msg)
    elif SCENARIO == "timeout":
        # rank 1 stays alive but skips an all_reduce: rank 0's call fails with loom's timeout,
        # which is init_process_group's (LOOM_TORCH_TEST_TIMEOUT s), not at the launcher's.
        if rank == 0:
            t = torch.ones(4)
            start = time.monotonic()
            try:
                dist.all_reduce(t)
                msg = "passed"
            except RuntimeError as e:
                msg = str(e)
            with open(os.path.join(OUT, f"rank{rank}.txt"), "w") as f:
                f.write(f"{time.monotonic() - start:.3f}\n{msg}")
        else:
            time.sleep(3 * timeout.total_seconds())
        os._exit(0)  # no destroy: the communicator has failed
    dist.destroy_process_group()


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(1)
