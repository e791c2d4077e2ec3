#!/usr/bin/python3
"""A small model trained with DistributedDataParallel on synthetic data, backend gloo or loom.

    PYTHONPATH=build/compat/pytorch /usr/bin/python3 examples/pytorch/ddp_train.py --backend loom --nproc 2
    PYTHONPATH=build/compat/pytorch torchrun --nproc_per_node 2 examples/pytorch/ddp_train.py --backend loom

Rank 0 prints one JSON line per step ({"step", "loss", "ms"}) and a summary line
({"backend", "world_size", "steps", "median_ms"}). fp32 throughout; data and initial weights
depend only on --seed and the rank, so two backends give the same loss curve.
"""
import argparse
import datetime
import json
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="loom", choices=["loom", "gloo"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=64, help="samples per rank per step")
    p.add_argument("--width", type=int, default=512, help="hidden width (~2*width^2 params)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--nproc", type=int, default=2, help="ranks to start when not under torchrun")
    p.add_argument("--timeout", type=float, default=120, help="init_process_group timeout, s")
    return p.parse_args()


def train(rank, world, args):
    if args.backend == "loom":
        import loom_torch  # noqa: F401  registers backend "loom"
    dist.init_process_group(args.backend, init_method="env://", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=args.timeout))
    torch.manual_seed(args.seed)  # same initial weights everywhere (DDP broadcasts rank 0's)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, args.width), torch.nn.ReLU(),
        torch.nn.Linear(args.width, args.width), torch.nn.ReLU(),
        torch.nn.Linear(args.width, 10))
    ddp = DDP(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9)
    g = torch.Generator().manual_seed(args.seed * 1000 + rank)
    teacher = torch.Generator().manual_seed(args.seed)
    w_true = torch.randn(64, 10, generator=teacher)
    times = []
    for step in range(args.steps):
        x = torch.randn(args.batch, 64, generator=g)
        y = (x @ w_true).argmax(dim=1)
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(ddp(x), y)
        loss.backward()  # DDP all-reduces the gradients here
        opt.step()
        ms = (time.perf_counter() - t0) * 1e3
        times.append(ms)
        # The global mean loss (an all_reduce too, outside the timed step).
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        mean /= world
        if rank == 0:
            print(json.dumps({"step": step, "loss": mean.item(), "ms": round(ms, 3)}), flush=True)
    if rank == 0:
        steady = times[2:] if len(times) > 4 else times
        print(json.dumps({"backend": args.backend, "world_size": world, "steps": args.steps,
                          "median_ms": round(statistics.median(steady), 3)}), flush=True)
    dist.destroy_process_group()


def spawned(rank, world, args):
    os.environ["RANK"], os.environ["WORLD_SIZE"] = str(rank), str(world)
    train(rank, world, args)


def main():
    args = parse()
    torch.set_num_threads(1)
    if "RANK" in os.environ:  # torchrun, python -m torch.distributed.run, or tests/pytorch
        train(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), args)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(port))
    mp.spawn(spawned, args=(args.nproc, args), nprocs=args.nproc)


if __name__ == "__main__":
    main()
