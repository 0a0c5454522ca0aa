"""Robustness of compile-safe-fix on thousands of real files: transformers 5.23 and torch's own sources.

For each source tree (``--source transformers`` fetches the pinned transformers wheel into the cache;
``--source torch`` is the installed torch; ``--root DIR`` any tree), copies its ``.py`` files into a
temporary directory (the source is never touched), runs the fixer over the copy in-process through
the streaming API (:class:`flake8_compile_safe.fixers.api.Planner`, with the linter's findings as the
CLI does), writes what it changes, runs it a second time, and imports every changed module. Prints:

* files seen, files changed (and fixes by rule and fix), findings left unfixed;
* crashes: exceptions inside the fixer (per file: path and exception type; must be 0);
* files skipped with a reason (syntax error, not UTF-8, libcst cannot parse, unreadable);
* changed files that no longer parse with ``ast.parse`` (must be 0);
* files the second run changes again (must be 0);
* changed modules that no longer import (must be 0): each in its own subprocess, with the package
  importable from the untouched source (transformers) or installed (torch), the original module
  imported first, then the fixed file executed as that module; a module whose original does not
  import here either (a missing optional dependency) is reported apart, not as broken;
* files per second (fixer time, and wall time of the first pass).

Progress goes to stderr every few seconds. Ctrl-C prints the figures gathered so far (marked
partial). ``--json PATH`` writes them as JSON too. Exit status: 0 all good, 1 a figure that must
be 0 is not, 130 interrupted.

    python benchmarks/fix_robustness.py [--source transformers|torch ...] [--root DIR] [--limit N]
                                        [--strategy S] [--unsafe-fixes] [--json PATH]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flake8_compile_safe.fixers.api import STRATEGIES, FixReport, Planner, apply, collect_files  # noqa: E402

SHOW = 5  # examples printed per category
PROGRESS_EVERY_S = 5.0
TRANSFORMERS = ("transformers", "5.23.0", "transformers", "transformers/__init__.py")
IMPORT_TIMEOUT_S = 300


def torch_root() -> str:
    import importlib.util

    spec = importlib.util.find_spec("torch")  # locate only; torch is not imported
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch is not installed: pass --root DIR")
    return list(spec.submodule_search_locations)[0]


def transformers_root() -> str:
    from flake8_compile_safe.families.fetch import fetch_package_source

    dist, version, package, sentinel = TRANSFORMERS
    return str(fetch_package_source(dist, version, package, sentinel) / package)


def skip_reason(error: str) -> str:
    if "E999" in error or "syntax error" in error:
        return "syntax error"
    if "UTF-8" in error or "utf-8" in error:
        return "not UTF-8"
    if "cannot parse" in error:
        return "cannot parse"
    if "no such file" in error or "cannot read" in error or "is a directory" in error:
        return "unreadable"
    if "cannot write" in error or "backup" in error:
        return "cannot write"
    return "other"


class Figures:
    """Everything the benchmark counts for one source tree; printable at any point (partial when interrupted)."""

    def __init__(self, root: str, strategy: str, limit: int):
        self.root, self.strategy, self.limit = root, strategy, limit
        self.files = 0
        self.copy_s = 0.0
        self.analysis = ""
        self.passes: dict[int, dict] = {}
        self.crashes: list[dict] = []  # {"pass", "path", "type", "message"}
        self.skipped: list[dict] = []  # {"path", "reason", "message"} (first pass)
        self.changed: list[str] = []  # relative paths written by the first pass
        self.fixes: Counter = Counter()  # "TCS003 index-copy" -> count
        self.findings = 0
        self.unfixed: Counter = Counter()  # code -> count
        self.unparsable: list[dict] = []  # {"path", "error"}
        self.changed_again: list[str] = []
        self.imports: list[dict] = []  # {"module", "original", "fixed"} per changed module
        self.interrupted: str | None = None
        self.whole_run_errors: list[str] = []

    def new_pass(self, n: int) -> dict:
        self.passes[n] = {"files": 0, "fixer_s": 0.0, "wall_s": 0.0, "complete": False}
        return self.passes[n]

    @property
    def broken_imports(self) -> list[dict]:
        return [i for i in self.imports if i["original"] == "ok" and i["fixed"] != "ok"]

    def as_dict(self) -> dict:
        p1 = self.passes.get(1, {})
        return {
            "root": self.root, "strategy": self.strategy, "analysis": self.analysis, "limit": self.limit,
            "files": self.files, "partial": self.interrupted is not None, "interrupted": self.interrupted,
            "files_processed_pass1": p1.get("files", 0),
            "changed": len(self.changed), "fixes": sum(self.fixes.values()), "fixes_by_kind": dict(self.fixes),
            "findings": self.findings, "unfixed_by_code": dict(self.unfixed),
            "crashes": len(self.crashes), "crash_list": self.crashes,
            "whole_run_errors": self.whole_run_errors,
            "skipped": len(self.skipped), "skipped_by_reason": dict(Counter(s["reason"] for s in self.skipped)),
            "skipped_list": self.skipped,
            "changed_files_unparsable": len(self.unparsable), "unparsable_list": self.unparsable,
            "second_run_checked": self.passes.get(2, {}).get("complete", False),
            "second_run_files": self.passes.get(2, {}).get("files", 0),
            "changed_again": len(self.changed_again), "changed_again_list": self.changed_again,
            "imported": sum(1 for i in self.imports if i["fixed"] == "ok"),
            "import_broken": len(self.broken_imports), "import_list": self.imports,
            "copy_s": round(self.copy_s, 2),
            "passes": {k: {kk: (round(vv, 2) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                       for k, v in self.passes.items()},
            "files_per_s_fixer": round(p1["files"] / p1["fixer_s"], 1) if p1.get("fixer_s") else None,
            "files_per_s_wall": round(p1["files"] / p1["wall_s"], 1) if p1.get("wall_s") else None,
            "changed_list": self.changed,
        }

    def ok(self) -> bool:
        return not (self.crashes or self.whole_run_errors or self.unparsable or self.changed_again
                    or self.broken_imports)

    def print(self, out=sys.stdout) -> None:
        d = self.as_dict()
        not_importable = [i for i in self.imports if i["original"] != "ok"]
        rows = [
            ("root", d["root"]),
            ("strategy / analysis", f"{d['strategy']} / {d['analysis']}"),
            ("files seen",
             f"{d['files']}" + (f" (pass 1 processed {d['files_processed_pass1']})" if d["partial"] else "")),
            ("files changed", f"{d['changed']} ({d['fixes']} fixes: "
                              + (", ".join(f"{k} {v}" for k, v in sorted(d["fixes_by_kind"].items())) or "none") + ")"),
            ("findings / left unfixed", f"{d['findings']} / {sum(self.unfixed.values())}"
                                        + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(self.unfixed.items())) + ")"
                                           if self.unfixed else "")),
            ("crashes (must be 0)", d["crashes"] + len(d["whole_run_errors"])),
            ("skipped with a reason", f"{d['skipped']}" + (" (" + ", ".join(
                f"{k} {v}" for k, v in sorted(d["skipped_by_reason"].items())) + ")" if d["skipped"] else "")),
            ("changed but no longer parse (must be 0)", d["changed_files_unparsable"]),
            ("changed again by 2nd run (must be 0)",
             f"{d['changed_again']}" + ("" if d["second_run_checked"] else
                                        f" (2nd run incomplete: {d['second_run_files']} files)")),
            ("changed modules imported / broken (must be 0)",
             f"{d['imported']} / {d['import_broken']}"
             + (f" ({len(not_importable)} not importable here before the fix either)" if not_importable else "")),
            ("files/s, fixer (pass 1)", d["files_per_s_fixer"]),
            ("files/s, wall incl. writes + checks (pass 1)", d["files_per_s_wall"]),
            ("seconds: copy / pass 1 / pass 2", f"{d['copy_s']} / {d['passes'].get(1, {}).get('wall_s', '-')} / "
                                                f"{d['passes'].get(2, {}).get('wall_s', '-')}"),
        ]
        if d["partial"]:
            rows.insert(0, ("PARTIAL", f"interrupted {d['interrupted']}"))
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k:<{width}}  {v}", file=out)

        def show(title, items):
            if items:
                print(f"{title} (first {min(SHOW, len(items))} of {len(items)}):", file=out)
                for it in items[:SHOW]:
                    print(f"  {it}", file=out)

        show("crashes", [f"pass {c['pass']}: {c['path']}: {c['type']}: {c['message']}" for c in self.crashes]
             + self.whole_run_errors)
        show("changed but no longer parse", [f"{u['path']}: {u['error']}" for u in self.unparsable])
        show("changed again", self.changed_again)
        show("broken imports", [f"{i['module']}: {i['fixed']}" for i in self.broken_imports])
        show("not importable before the fix either", [f"{i['module']}: {i['original']}" for i in not_importable])
        show("skipped", [f"{s['path']}: {s['reason']}" for s in self.skipped])
        show("changed", self.changed)


def copy_tree(root: str, files: list[str], dest: Path) -> list[str]:
    out = []
    for f in files:
        target = dest / os.path.relpath(f, root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        out.append(str(target))
    return out


def run_pass(n: int, tree: Path, figs: Figures, args, write: bool, total: int) -> None:
    """One run of the fixer over the copy; per-file outcomes are counted as they stream in."""
    stats = figs.new_pass(n)
    from flake8_compile_safe.analysis import clear_cache

    clear_cache()  # the second pass must see the rewritten files, not cached findings
    started = time.perf_counter()
    last_report = started
    planner = None
    try:
        planner = Planner([str(tree)], args.strategy, use_analysis=not args.no_analysis,
                          unsafe_fixes=args.unsafe_fixes)
        it = iter(planner)
        while True:
            t0 = time.perf_counter()
            try:
                o = next(it)
            except StopIteration:
                stats["fixer_s"] += time.perf_counter() - t0
                break
            except Exception as exc:  # escaped the API's per-file handling: the rest of the pass is lost
                stats["fixer_s"] += time.perf_counter() - t0
                figs.whole_run_errors.append(f"pass {n}: run aborted after {stats['files']} files: "
                                             f"{exc.__class__.__name__}: {exc}\n{traceback.format_exc(limit=-3)}")
                break
            stats["fixer_s"] += time.perf_counter() - t0
            if n == 1 and not figs.analysis:
                figs.analysis = planner.analysis
            stats["files"] += 1
            rel = os.path.relpath(o.path, tree)
            if o.crash:
                figs.crashes.append({"pass": n, "path": rel, "type": o.crash,
                                     "message": (o.error or "").split(": fixer error, file left as is: ", 1)[-1]})
            elif o.error and n == 1:
                figs.skipped.append({"path": rel, "reason": skip_reason(o.error), "message": o.error})
            if o.changed and not o.crash:
                if n == 1:
                    figs.changed.append(rel)
                    figs.fixes.update(f"{a.code} {a.fix}" for a in o.applied)
                    if write:
                        apply(FixReport([o], args.strategy, planner.analysis))
                        if o.error:  # could not write
                            figs.skipped.append({"path": rel, "reason": skip_reason(o.error), "message": o.error})
                        try:
                            ast.parse(Path(o.path).read_bytes(), filename=o.path)
                        except (SyntaxError, ValueError) as exc:
                            figs.unparsable.append({"path": rel, "error": f"{exc.__class__.__name__}: {exc}"})
                else:
                    figs.changed_again.append(rel)
            now = time.perf_counter()
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                rate = stats["files"] / stats["fixer_s"] if stats["fixer_s"] else 0
                n_changed = len(figs.changed) if n == 1 else len(figs.changed_again)
                n_crashes = sum(1 for c in figs.crashes if c["pass"] == n)
                print(f"[pass {n}] {stats['files']}/{total} files, {n_changed} changed, {n_crashes} crashes, "
                      f"{rate:.0f} files/s", file=sys.stderr, flush=True)
    finally:  # also when interrupted: the partial figures keep their timing
        stats["wall_s"] = time.perf_counter() - started
    if n == 1 and planner is not None and stats["files"] == total:
        report = planner.report([])
        figs.findings = report.findings
        figs.unfixed = Counter(u.code for u in report.unfixed)
    stats["complete"] = not figs.whole_run_errors and stats["files"] == total
    print(f"[pass {n}] done: {stats['files']} files in {stats['wall_s']:.1f}s", file=sys.stderr, flush=True)


_IMPORT_CHECK = r"""
import importlib, importlib.util, json, sys, warnings
warnings.filterwarnings("ignore")
name, fixed_path, original_root = sys.argv[1], sys.argv[2], sys.argv[3]
if original_root:
    sys.path.insert(0, original_root)
def attempt(fn):
    try:
        fn()
        return "ok"
    except BaseException as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
result = {"module": name, "original": attempt(lambda: importlib.import_module(name))}
def load_fixed():
    spec = importlib.util.spec_from_file_location(name, fixed_path)
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get(name)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is not None:
            sys.modules[name] = saved
result["fixed"] = attempt(load_fixed) if result["original"] == "ok" else "not tried"
print(json.dumps(result))
"""


def module_name(rel: str, package: str) -> str:
    parts = [package, *Path(rel).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def check_imports(figs: Figures, tree: Path, package: str, original_root: str) -> None:
    """Import each changed module (original first, then the fixed file as that module), one subprocess each."""
    for rel in figs.changed:
        name = module_name(rel, package)
        cmd = [sys.executable, "-c", _IMPORT_CHECK, name, str(tree / rel), original_root]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
            line = (proc.stdout.strip().splitlines() or ["{}"])[-1]
            result = json.loads(line) if line.startswith("{") else {
                "module": name, "original": "ok", "fixed": f"import check died: {proc.stderr.strip()[-160:]}"}
        except subprocess.TimeoutExpired:
            result = {"module": name, "original": "ok", "fixed": f"timed out after {IMPORT_TIMEOUT_S}s"}
        figs.imports.append(result)
        print(f"[import] {name}: original {result['original']}, fixed {result['fixed']}", file=sys.stderr,
              flush=True)


def run_source(root: str, original_root: str, args) -> Figures:
    """Copy ``root`` (a package directory), fix the copy twice, import what changed."""
    files, _ = collect_files([root])
    if args.limit:
        files = files[: args.limit]
    figs = Figures(root, args.strategy, args.limit)
    figs.files = len(files)
    tmp = Path(tempfile.mkdtemp(prefix="fix_robustness_"))
    package = os.path.basename(root.rstrip(os.sep))
    tree = tmp / package
    assert not str(tree).startswith(root + os.sep), "the copy must not be inside the source tree"
    try:
        t0 = time.perf_counter()
        print(f"copying {len(files)} files from {root} to {tree} ...", file=sys.stderr, flush=True)
        copy_tree(root, files, tree)
        figs.copy_s = time.perf_counter() - t0
        run_pass(1, tree, figs, args, write=True, total=len(files))
        run_pass(2, tree, figs, args, write=False, total=len(files))
        check_imports(figs, tree, package, original_root)
    except KeyboardInterrupt:
        done = {k: v["files"] for k, v in figs.passes.items()}
        figs.interrupted = (f"during pass {max(done)} after {done[max(done)]} files" if done else "while copying")
        print("\ninterrupted: figures so far", file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept the copy: {tree}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return figs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", action="append", choices=("transformers", "torch"),
                    help="a known source tree (repeatable; default: both)")
    ap.add_argument("--root", action="append", default=[], help="any package directory to copy and fix (repeatable)")
    ap.add_argument("--limit", type=int, default=0, help="at most N files per tree, the first N in path order (0: all)")
    ap.add_argument("--strategy", default="tensor-index", choices=STRATEGIES)
    ap.add_argument("--unsafe-fixes", action="store_true", help="apply unsafe fixes too")
    ap.add_argument("--no-analysis", action="store_true", help="without the linter's findings (recipes only)")
    ap.add_argument("--json", metavar="PATH", help="write the figures as JSON (one object per tree)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copies (their paths go to stderr)")
    args = ap.parse_args(argv)
    trees: list[tuple[str, str]] = []  # (package dir, sys.path entry for the untouched package; "" installed)
    for source in args.source or ([] if args.root else ["transformers", "torch"]):
        if source == "transformers":
            root = transformers_root()
            trees.append((root, os.path.dirname(root)))
        else:
            trees.append((torch_root(), ""))
    trees += [(os.path.realpath(r), os.path.dirname(os.path.realpath(r))) for r in args.root]
    all_figs = []
    for root, original_root in trees:
        figs = run_source(os.path.realpath(root), original_root, args)
        all_figs.append(figs)
        figs.print()
        print()
        if figs.interrupted:
            break
    if args.json:
        Path(args.json).write_text(json.dumps([f.as_dict() for f in all_figs], indent=2) + "\n")
    if any(f.interrupted for f in all_figs):
        return 130
    return 0 if all(f.ok() for f in all_figs) else 1


if __name__ == "__main__":
    sys.exit(main())
