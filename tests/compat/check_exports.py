#!/usr/bin/env python3
"""libnccl.so.2's dynamic interface: soname libnccl.so.2, only nccl*/pnccl* exported, and every
function of compat's nccl.h (and of NVIDIA's nccl.h, when given) exported with its pnccl alias.

usage: check_exports.py LIBRARY COMPAT_HEADER [REFERENCE_HEADER]
"""
import re
import subprocess
import sys


def header_functions(path):
    text = open(path).read()
    names = set(re.findall(r"NCCL_LOOM_DECLARE\([^,]+,\s*(nccl\w+)", text))
    # NVIDIA's style: one prototype per line, "ncclResult_t  ncclX(" or "const char* pncclX(".
    names |= set(re.findall(r"^\s*(?:ncclResult_t|const char\s*\*|void)\s+p?(nccl\w+)\s*\(",
                            text, re.M))
    return names


def main():
    lib, header = sys.argv[1], sys.argv[2]
    errors = []
    dyn = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True, check=True).stdout
    if "Library soname: [libnccl.so.2]" not in dyn:
        errors.append("soname is not libnccl.so.2")
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True,
                         check=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    exported = {name.split("@")[0] for name in exported}
    for name in sorted(exported):
        if not re.match(r"^p?nccl[A-Z]\w*$", name):
            errors.append(f"exports {name}, which is not nccl*/pnccl*")
    wanted = header_functions(header)
    if len(sys.argv) > 3:
        reference = header_functions(sys.argv[3])
        for name in sorted(reference - wanted):
            errors.append(f"{name} is in {sys.argv[3]} but not declared in {header}")
        wanted |= reference
    for name in sorted(wanted):
        for sym in (name, "p" + name):
            if sym not in exported:
                errors.append(f"{sym} is declared but not exported")
    for e in errors:
        print(e)
    print(f"{len(exported)} symbols exported, {len(wanted)} functions checked, "
          f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
