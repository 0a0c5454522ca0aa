"""Robustness of compile-safe-fix on thousands of real files (torch's installed sources by default).

Copies the ``.py`` files into a temporary directory, runs the fixer over the copy twice, and prints:
files, crashes (fixer exceptions, not per-file parse errors), skipped (files the fixer reported and
left alone), changed, changed files that no longer parse, files changed by the second run, files/s.
Exit status 1 if crashes, unparsable outputs or second-run changes are not all zero.

    python benchmarks/fix_robustness.py [SRC_DIR] [--limit N] [--strategy S]
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fixers.api import collect_files, fix_paths  # noqa: E402


def default_src() -> str:
    import importlib.util

    spec = importlib.util.find_spec("torch")  # locate only; torch is not imported
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch is not installed: pass a source directory")
    return list(spec.submodule_search_locations)[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("src", nargs="?")
    ap.add_argument("--limit", type=int, default=0, help="at most N files (0: all)")
    ap.add_argument("--strategy", default="tensor-index")
    args = ap.parse_args(argv)
    src = args.src or default_src()
    files = collect_files([src])
    if args.limit:
        files = files[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for f in files:
            dest = Path(tmp) / os.path.relpath(f, src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
            copies.append(str(dest))
        crashes = 0
        t0 = time.perf_counter()
        try:
            first = fix_paths([tmp], strategy=args.strategy, use_analysis=False)
        except Exception:
            traceback.print_exc()
            print("crashes: 1 (whole run)")
            return 1
        secs = time.perf_counter() - t0
        crashes += sum(1 for o in first.files if o.error and "fixer error" in o.error)
        unparsable = []
        for o in first.changed:
            try:
                ast.parse(Path(o.path).read_bytes())
            except SyntaxError as exc:
                unparsable.append(f"{o.path}: {exc}")
        second = fix_paths([tmp], strategy=args.strategy, use_analysis=False)
        crashes += sum(1 for o in second.files if o.error and "fixer error" in o.error)
        skipped = [o.error for o in first.errors if "fixer error" not in (o.error or "")]
    n = len(files)
    print(f"source: {src}")
    print(f"files: {n}")
    print(f"crashes: {crashes}")
    print(f"skipped (reported, left alone): {len(skipped)}")
    print(f"changed: {len(first.changed)} ({len(first.notes)} fixes)")
    print(f"changed but no longer parse: {len(unparsable)}")
    print(f"changed again by a second run: {len(second.changed)}")
    print(f"speed: {n / secs:.0f} files/s ({secs:.1f}s)")
    for line in unparsable[:10] + [o.path for o in second.changed][:10] + skipped[:5]:
        print("  " + line)
    return 1 if crashes or unparsable or second.changed else 0


if __name__ == "__main__":
    sys.exit(main())
