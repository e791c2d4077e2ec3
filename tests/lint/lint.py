#!/usr/bin/env python3
"""Project rules that a compiler does not check (STYLE.md), run by ctest.

  layering   #include directions between layers (DESIGN.md section 2); the CMake include
             views already fail the build on a forbidden include, this names the file and
             rule in one readable list and also covers headers no target compiles
  getenv     nothing outside src/base/config.cpp reads the environment directly (tests and
             tools that launch processes may; compat/nccl/env.cpp reads NCCL_* only)
  format     every C/C++ source is clang-formatted (.clang-format)
  readme     every LOOM_* variable of the Config table is documented in README.md

usage: lint.py SOURCE_DIR [check ...]
"""
import os
import re
import shutil
import subprocess
import sys

# layer -> (folder, layers it may include)
LAYERS = {
    "base": ("src/base", {"base"}),
    "bootstrap": ("src/bootstrap", {"base", "bootstrap"}),
    "topology": ("topology", {"base", "topology"}),
    "transports": ("transports", {"base", "transports"}),
    "algorithms": ("algorithms", {"base", "topology", "algorithms"}),
    "runtime": ("src/runtime", {"base", "bootstrap", "topology", "transports", "algorithms",
                                "runtime"}),
    "api": ("src/api", {"base", "bootstrap", "topology", "transports", "algorithms", "runtime",
                        "api"}),
    # compat/nccl uses loom's public API (<loom/loom.h>) only: no layer at all.
    "compat": ("compat", set()),
}
SOURCE_EXT = (".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh", ".c")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def tracked(root):
    out = subprocess.run(["git", "-C", root, "ls-files"], capture_output=True, text=True)
    files = out.stdout.split() if out.returncode == 0 else []
    if not files:  # not a git checkout: walk the tree
        for d, _, names in os.walk(root):
            if "/build" in d or "/." in d:
                continue
            files += [os.path.relpath(os.path.join(d, n), root) for n in names]
    return [f for f in files if f.endswith(SOURCE_EXT) and os.path.exists(os.path.join(root, f))]


def check_layering(root, files):
    errors = []
    for f in files:
        layer = next((name for name, (folder, _) in LAYERS.items()
                      if f.startswith(folder + "/")), None)
        if layer is None:
            continue
        allowed = LAYERS[layer][1]
        with open(os.path.join(root, f), errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = m.group(1).split("/")[0]
                if target in LAYERS and target not in allowed:
                    errors.append(f"{f}:{n}: layer '{layer}' may not include '{m.group(1)}' "
                                  f"(allowed: {', '.join(sorted(allowed))})")
    return errors


def check_getenv(root, files):
    errors = []
    for f in files:
        # compat/nccl/env.cpp is the one place that reads NCCL_* (translated to LOOM_* before
        # loom's Config table reads them; docs/NCCL.md).
        if f.startswith("tests/") or f in ("src/base/config.cpp", "compat/nccl/env.cpp"):
            continue
        with open(os.path.join(root, f), errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if re.search(r"\b(secure_)?getenv\s*\(", line):
                    errors.append(f"{f}:{n}: getenv outside the Config table (src/base/config.h)")
    return errors


def check_format(root, files):
    tool = shutil.which("clang-format")
    if tool is None:
        print("lint: clang-format not installed; format check skipped")
        return []
    # One process for all files; each unformatted file shows up in the diagnostics.
    r = subprocess.run([tool, "--dry-run", "-Werror"] + [os.path.join(root, f) for f in files],
                       capture_output=True, text=True)
    bad = sorted({os.path.relpath(line.split(":")[0], root)
                  for line in r.stderr.splitlines() if ": error:" in line})
    return [f"{f}: not clang-formatted (run: clang-format -i {f})" for f in bad]


def check_readme(root, files):
    with open(os.path.join(root, "src/base/config.h")) as fh:
        names = re.findall(r'"(LOOM_[A-Z0-9_]+)"', fh.read())
    with open(os.path.join(root, "README.md")) as fh:
        readme = fh.read()
    return [f"README.md: {n} (src/base/config.h) is not documented" for n in names
            if f"`{n}`" not in readme]


def main():
    root = os.path.abspath(sys.argv[1])
    checks = sys.argv[2:] or ["layering", "getenv", "format", "readme"]
    files = tracked(root)
    errors = []
    for c in checks:
        errors += {"layering": check_layering, "getenv": check_getenv,
                   "format": check_format, "readme": check_readme}[c](root, files)
    for e in errors:
        print(e)
    print(f"lint: {len(files)} files, {len(errors)} problem(s) [{', '.join(checks)}]")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
