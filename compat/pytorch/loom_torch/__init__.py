"""torch.distributed backend "loom" (host tensors) over loom's C API.

    import loom_torch  # registers the backend
    torch.distributed.init_process_group("loom", init_method="env://", timeout=...)

The C++ part is _loom_c10d (compat/pytorch/process_group_loom.cpp), built next to this file by
CMake when Debian's python3-torch and libtorch-dev are installed (docs/PYTORCH.md).
"""
import torch.distributed as dist

from . import _loom_c10d

BACKEND = "loom"


def _register():
    if BACKEND.upper() not in dist.Backend._plugins:
        dist.Backend.register_backend(BACKEND, _loom_c10d.create_process_group)


def counters(group=None):
    """Per collective (calls, bytes sent, bytes received) of a loom process group."""
    pg = group if group is not None else dist.distributed_c10d._get_default_group()
    return _loom_c10d.counters(pg)


_register()
