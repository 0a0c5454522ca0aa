"""Robustness of compile-safe-fix on thousands of real files (torch's installed sources by default).

Copies the ``.py`` files of ``--root`` into a temporary directory (the source tree is never
touched), runs the fixer over the copy in-process through the streaming API
(:class:`flake8_compile_safe.fixers.api.Planner`), writes what it changes, then runs it a second time. Prints:

* files seen, files changed (and fixes by code);
* crashes: exceptions inside the fixer (per file: path and exception type; must be 0);
* files skipped with a reason (syntax error, not UTF-8, libcst cannot parse, unreadable);
* changed files that no longer parse with ``ast.parse`` (must be 0);
* files the second run changes again (must be 0);
* files per second (fixer time, and wall time of the first pass).

Progress goes to stderr every few seconds. Ctrl-C prints the figures gathered so far (marked
partial). ``--json PATH`` writes them as JSON too. Exit status: 0 all good, 1 a figure that must
be 0 is not, 130 interrupted.

    python benchmarks/fix_robustness.py [--root DIR] [--limit N] [--strategy S] [--analysis] [--json PATH]

``--no-prefilter`` sends every file through libcst (slow): the changed files must be the same.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
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


def default_root() -> str:
    import importlib.util

    spec = importlib.util.find_spec("torch")  # locate only; torch is not imported
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch is not installed: pass --root DIR")
    return list(spec.submodule_search_locations)[0]


def skip_reason(error: str) -> str:
    if "syntax error" in error:
        return "syntax error"
    if "UTF-8" in error:
        return "not UTF-8"
    if "cannot parse" in error:
        return "libcst cannot parse"
    if "no such file" in error or "cannot read" in error or "is a directory" in error:
        return "unreadable"
    if "cannot write" in error or "backup" in error:
        return "cannot write"
    return "other"


class Figures:
    """Everything the benchmark counts; printable at any point (partial when interrupted)."""

    def __init__(self, root: str, strategy: str, analysis: bool, limit: int):
        self.root, self.strategy, self.use_analysis, self.limit = root, strategy, analysis, limit
        self.files = 0
        self.copy_s = 0.0
        self.analysis = ""
        self.passes: dict[int, dict] = {}
        self.crashes: list[dict] = []  # {"pass", "path", "type", "message"}
        self.skipped: list[dict] = []  # {"path", "reason", "message"} (first pass)
        self.changed: list[str] = []  # relative paths written by the first pass
        self.fixes: Counter = Counter()
        self.unparsable: list[dict] = []  # {"path", "error"}
        self.changed_again: list[str] = []
        self.interrupted: str | None = None
        self.whole_run_errors: list[str] = []
        self.no_prefilter = False

    def new_pass(self, n: int) -> dict:
        self.passes[n] = {"files": 0, "fixer_s": 0.0, "wall_s": 0.0, "complete": False}
        return self.passes[n]

    def as_dict(self) -> dict:
        p1 = self.passes.get(1, {})
        return {
            "root": self.root, "strategy": self.strategy,
            "analysis": self.analysis or ("on" if self.use_analysis else "off"),
            "limit": self.limit, "no_prefilter": self.no_prefilter, "files": self.files,
            "partial": self.interrupted is not None, "interrupted": self.interrupted,
            "files_processed_pass1": p1.get("files", 0),
            "changed": len(self.changed), "fixes": sum(self.fixes.values()), "fixes_by_code": dict(self.fixes),
            "crashes": len(self.crashes), "crash_list": self.crashes,
            "whole_run_errors": self.whole_run_errors,
            "skipped": len(self.skipped), "skipped_by_reason": dict(Counter(s["reason"] for s in self.skipped)),
            "skipped_list": self.skipped,
            "changed_files_unparsable": len(self.unparsable), "unparsable_list": self.unparsable,
            "second_run_checked": self.passes.get(2, {}).get("complete", False),
            "second_run_files": self.passes.get(2, {}).get("files", 0),
            "changed_again": len(self.changed_again), "changed_again_list": self.changed_again,
            "copy_s": round(self.copy_s, 2),
            "passes": {k: {kk: (round(vv, 2) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                       for k, v in self.passes.items()},
            "files_per_s_fixer": round(p1["files"] / p1["fixer_s"], 1) if p1.get("fixer_s") else None,
            "files_per_s_wall": round(p1["files"] / p1["wall_s"], 1) if p1.get("wall_s") else None,
            "changed_list": self.changed,
        }

    def ok(self) -> bool:
        return not (self.crashes or self.whole_run_errors or self.unparsable or self.changed_again)

    def print(self, out=sys.stdout) -> None:
        d = self.as_dict()
        rows = [
            ("root", d["root"]),
            ("strategy / analysis",
             f"{d['strategy']} / {d['analysis']}" + (" / no prefilter" if d["no_prefilter"] else "")),
            ("files seen",
             f"{d['files']}" + (f" (pass 1 processed {d['files_processed_pass1']})" if d["partial"] else "")),
            ("files changed", f"{d['changed']} ({d['fixes']} fixes: "
                              + (", ".join(f"{k} {v}" for k, v in sorted(d["fixes_by_code"].items())) or "none") + ")"),
            ("crashes (must be 0)", d["crashes"] + len(d["whole_run_errors"])),
            ("skipped with a reason", f"{d['skipped']}" + (" (" + ", ".join(
                f"{k} {v}" for k, v in sorted(d["skipped_by_reason"].items())) + ")" if d["skipped"] else "")),
            ("changed but no longer parse (must be 0)", d["changed_files_unparsable"]),
            ("changed again by 2nd run (must be 0)",
             f"{d['changed_again']}" + ("" if d["second_run_checked"] else
                                        f" (2nd run incomplete: {d['second_run_files']} files)")),
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
    if args.analysis:
        try:
            from flake8_compile_safe.analysis import clear_cache

            clear_cache()  # the second pass must see the rewritten files, not cached findings
        except ImportError:
            pass
    started = time.perf_counter()
    last_report = started
    try:
        planner = Planner([str(tree)], args.strategy, use_analysis=args.analysis, prefilter=not args.no_prefilter)
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
                    figs.fixes.update(note.split(" ", 1)[0] for note in o.notes)
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
                      f"{rate:.0f} files/s",
                      file=sys.stderr, flush=True)
    finally:  # also when interrupted: the partial figures keep their timing
        stats["wall_s"] = time.perf_counter() - started
    stats["complete"] = not figs.whole_run_errors and stats["files"] == total
    print(f"[pass {n}] done: {stats['files']} files in {stats['wall_s']:.1f}s", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", nargs="?", help="same as --root")
    ap.add_argument("--root", help="source tree to copy and fix (default: torch's installed package)")
    ap.add_argument("--limit", type=int, default=0, help="at most N files, the first N in path order (0: all)")
    ap.add_argument("--strategy", default="tensor-index", choices=STRATEGIES)
    ap.add_argument("--analysis", action="store_true",
                    help="use the linter's findings (index the whole copy) instead of local recognition")
    ap.add_argument("--no-prefilter", action="store_true",
                    help="parse every file with libcst (the old, slow path): checks the prefilters miss nothing")
    ap.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy (its path goes to stderr)")
    args = ap.parse_args(argv)
    root = os.path.realpath(args.root or args.src or default_root())
    files = collect_files([root])
    if args.limit:
        files = files[: args.limit]
    figs = Figures(root, args.strategy, args.analysis, args.limit)
    figs.files = len(files)
    figs.no_prefilter = args.no_prefilter
    tmp = Path(tempfile.mkdtemp(prefix="fix_robustness_"))
    tree = tmp / os.path.basename(root)
    assert not str(tree).startswith(root + os.sep), "the copy must not be inside the source tree"
    try:
        t0 = time.perf_counter()
        print(f"copying {len(files)} files from {root} to {tree} ...", file=sys.stderr, flush=True)
        copy_tree(root, files, tree)
        figs.copy_s = time.perf_counter() - t0
        run_pass(1, tree, figs, args, write=True, total=len(files))
        run_pass(2, tree, figs, args, write=False, total=len(files))
    except KeyboardInterrupt:
        done = {k: v["files"] for k, v in figs.passes.items()}
        figs.interrupted = (f"during pass {max(done)} after {done[max(done)]} files" if done else "while copying")
        print("\ninterrupted: figures so far", file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept the copy: {tree}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    figs.print()
    if args.json:
        Path(args.json).write_text(json.dumps(figs.as_dict(), indent=2) + "\n")
    if figs.interrupted:
        return 130
    return 0 if figs.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
