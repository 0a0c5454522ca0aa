"""``compile-safe-fix PATH...``: rewrite what the TCS rules find into code torch.compile captures whole.

Exit codes:
  0  nothing to change, or every change was written (or reverted)
  1  --check: something would change
  2  usage error (bad option, unknown strategy)
  3  some files were skipped (syntax error, not UTF-8, unreadable, backup conflict, no backup
     to revert); every other file was still processed
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import api
from .io import BACKUP_SUFFIX, revert

EXIT_OK, EXIT_CHANGES, EXIT_USAGE, EXIT_ERRORS = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="compile-safe-fix",
        description="Rewrite torch.compile hazards (TCS rules) into code that compiles whole.",
        epilog="Exit codes: 0 ok, 1 --check found changes, 2 usage error, 3 some files skipped.",
    )
    ap.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--diff", action="store_true", help="print a unified diff, write nothing")
    mode.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything would change")
    mode.add_argument("--revert", action="store_true", help="restore files from FILE.backup (byte-identical)")
    ap.add_argument("--backup", action="store_true", help="keep FILE.backup (an existing different backup is an error)")
    ap.add_argument("--strategy", choices=api.STRATEGIES, default="tensor-index",
                    help="tensor-index (default): compile whole; graph-break: cache methods run eagerly")
    ap.add_argument("--select", default="", help="comma-separated code prefixes to fix (default: TCS)")
    ap.add_argument("--ignore", default="", help="comma-separated code prefixes not to fix")
    ap.add_argument("--no-analysis", action="store_true",
                    help="do not run the linter; use local recognition only")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per rewrite")
    ap.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    return ap


class Progress:
    """A progress bar on stderr: redrawn when stderr is a tty, a few lines when there are many files."""

    def __init__(self, total_files: int, stream=sys.stderr):
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.enabled = (self.tty and total_files >= 10) or total_files >= 500
        self.last = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        pct = 100 * done // total
        if self.tty:
            if pct != self.last:
                bar = "#" * (pct // 4)
                self.stream.write(f"\r[{bar:<25}] {pct:3d}%")
                if done == total:
                    self.stream.write("\n")
                self.stream.flush()
        elif pct // 10 != self.last // 10:
            self.stream.write(f"compile-safe-fix: {pct}%\n")
        self.last = pct


def _revert(paths: list[str], quiet: bool) -> int:
    targets: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for dirpath, _, filenames in os.walk(p):
                targets += [os.path.join(dirpath, f[: -len(BACKUP_SUFFIX)]) for f in sorted(filenames)
                            if f.endswith(".py" + BACKUP_SUFFIX)]
        else:
            targets.append(p[: -len(BACKUP_SUFFIX)] if p.endswith(BACKUP_SUFFIX) else p)
    restored, missing = 0, 0
    for t in targets:
        try:
            if revert(t):
                restored += 1
            elif not any(os.path.isdir(p) for p in paths):
                print(f"{t}: no backup {t}{BACKUP_SUFFIX} to revert from", file=sys.stderr)
                missing += 1
        except OSError as exc:
            print(f"{t}: cannot revert: {exc.strerror or exc}", file=sys.stderr)
            missing += 1
    if not quiet:
        print(f"compile-safe-fix: {restored} file(s) restored from backup, {missing} error(s)")
    return EXIT_ERRORS if missing else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.revert:
        return _revert(args.paths, args.quiet)
    started = time.perf_counter()
    planner = api.Planner(args.paths, args.strategy, args.select.split(","), args.ignore.split(","),
                          use_analysis=not args.no_analysis)
    planner.progress = Progress(len(planner))
    report = planner.report(list(planner))
    dry = args.diff or args.check
    if args.diff:
        for o in report.changed:
            sys.stdout.write(o.diff())
    if not dry:
        api.apply(report, backup=args.backup)
    for o in report.errors:
        print(o.error, file=sys.stderr)
    if args.verbose:
        for n in report.notes:
            print(n, file=sys.stderr)
    changed = report.changed
    if not args.quiet:
        verb = "would change" if dry else "changed"
        secs = time.perf_counter() - started
        print(f"compile-safe-fix: {len(report.files)} file(s) checked, {len(changed)} {verb} "
              f"({len(report.notes)} fix(es), strategy {report.strategy}), {len(report.errors)} skipped "
              f"[analysis: {report.analysis}; {secs:.1f}s]", file=sys.stderr if args.diff else sys.stdout)
    if report.errors:
        return EXIT_ERRORS
    if args.check and changed:
        return EXIT_CHANGES
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
