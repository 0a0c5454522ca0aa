"""``compile-safe-fix PATH...``: rewrite what the TCS rules find into code torch.compile captures whole.

Exit codes:
  0  nothing to change, or every change was written (or reverted)
  1  --check: something would change
  2  usage error (bad option, unknown strategy)
  3  some files were skipped (syntax error, not UTF-8, unreadable, backup conflict, no backup
     to revert); every other file was still processed
  4  --verify refused the fix: outputs changed beyond --verify-atol, the workload failed on the
     fixed tree, or dynamo's verdict got worse and nothing improved; no file was changed
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from flake8_compile_safe import __version__

from . import api
from .config import resolve_roots
from .io import BACKUP_SUFFIX, revert

EXIT_OK, EXIT_CHANGES, EXIT_USAGE, EXIT_ERRORS, EXIT_VERIFY = 0, 1, 2, 3, 4
UNFIXED_SHOWN = 30  # without -v, list this many unfixed findings (and say how many more)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="compile-safe-fix",
        description="Rewrite torch.compile hazards (TCS rules) into code that compiles whole.",
        epilog="Exit codes: 0 ok, 1 --check found changes, 2 usage error, 3 some files skipped, "
               "4 --verify refused the fix.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    ap.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    ap.add_argument("--diff", action="store_true", help="print a unified diff, write nothing")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if anything would change (with --diff: print it too)")
    ap.add_argument("--revert", action="store_true", help="restore files from FILE.backup (byte-identical)")
    ap.add_argument("--backup", action="store_true", help="keep FILE.backup (an existing different backup is an error)")
    ap.add_argument("--strategy", choices=api.STRATEGIES, default="tensor-index",
                    help="tensor-index: keep positions tensors, compile whole; graph-break: helpers run eagerly")
    ap.add_argument("--unsafe-fixes", action="store_true",
                    help="also apply fixes that may change behaviour (each is listed with why)")
    ap.add_argument("--select", default="", help="comma-separated code prefixes to fix (default: TCS)")
    ap.add_argument("--ignore", default="", help="comma-separated code prefixes not to fix")
    ap.add_argument("--compile-safe-root", default=None, metavar="DIR",
                    help="project root for the analysis, as flake8's option (default: its [flake8] config, "
                         "else found per path)")
    ap.add_argument("--compile-safe-roots", default=None, metavar="NAMES",
                    help="extra compiled roots, comma-separated, as flake8's option (default: its [flake8] config)")
    ap.add_argument("--no-analysis", action="store_true",
                    help="do not run the linter: only model-family recipes apply (the rule fixes need findings)")
    verify = ap.add_argument_group("verification (needs torch: pip install flake8-compile-safe[validate])")
    verify.add_argument("--verify", metavar="MODULE:FACTORY",
                        help="run FACTORY's workload (the compile-safe-validate --model interface) on the original "
                             "and the fixed tree, eager and compiled; keep the fix only if outputs match")
    verify.add_argument("--verify-path", metavar="DIR",
                        help="the tree put first on sys.path for the workload (default: the directory holding "
                             "MODULE's package)")
    verify.add_argument("--verify-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="keyword argument for FACTORY (VALUE read as JSON when it parses)")
    verify.add_argument("--verify-atol", type=float, default=1e-5,
                        help="largest max abs difference, fixed vs original (eager and compiled), that is kept")
    verify.add_argument("--verify-backend", choices=("analysis", "inductor"), default="analysis",
                        help="compile backend of the runs (analysis: dynamo + AOT only, fast)")
    verify.add_argument("--verify-timeout", type=int, default=900, help="seconds per workload run")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per rewrite; every unfixed finding")
    ap.add_argument("-q", "--quiet", action="store_true", help="no summary")
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


def summary(report: api.FixReport, dry: bool, secs: float, verbose: bool) -> list[str]:
    """The lines a user reads: counts, every unfixed finding with why (capped unless -v), unsafe ones."""
    changed = report.changed
    verb = "would change" if dry else "changed"
    lines = [f"compile-safe-fix: {len(report.files)} file(s) checked, {len(changed)} {verb} "
             f"({len(report.applied)} fix(es), strategy {report.strategy}), {len(report.errors)} skipped "
             f"[analysis: {report.analysis}; {secs:.1f}s]"]
    lines += [f"compile-safe-fix: {why}" for why in report.declined]
    if verbose:
        lines += [f"  fixed: {a.describe()}" for a in report.applied]
    unsafe_applied = [a for a in report.applied if a.why_unsafe]
    if unsafe_applied and not verbose:
        lines += [f"  unsafe fix applied: {a.describe()}" for a in unsafe_applied]
    unfixed = report.unfixed
    if report.findings:
        fixed = report.findings - len(unfixed) - report.recipe_findings
        parts = [f"{fixed} fixed"]
        if report.recipe_findings:
            parts.append(f"{report.recipe_findings} in files a model-family recipe rewrote")
        parts.append(f"{len(unfixed)} left as they are" + (", with why:" if unfixed else ""))
        lines.append(f"compile-safe-fix: {report.findings} finding(s): " + ", ".join(parts))
        shown = unfixed if verbose else unfixed[:UNFIXED_SHOWN]
        lines += [f"  {u.describe()}" for u in shown]
        if len(shown) < len(unfixed):
            lines.append(f"  ... and {len(unfixed) - len(shown)} more (-v lists them all)")
        unsafe = [u for u in unfixed if u.unsafe_fix]
        if unsafe:
            lines.append(f"compile-safe-fix: {len(unsafe)} finding(s) have an unsafe fix; --unsafe-fixes applies it "
                         "(review the diff)")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.revert:
        if args.diff or args.check or args.verify:
            _parser().error("--revert cannot be combined with --diff, --check or --verify")
        return _revert(args.paths, args.quiet)
    if args.verify and (args.diff or args.check):
        _parser().error("--verify writes the verified fix: it cannot be combined with --diff or --check")
    started = time.perf_counter()
    roots = resolve_roots(args.compile_safe_root, args.compile_safe_roots)
    if roots.root is not None and not os.path.isdir(roots.root):
        print(f"compile-safe-fix: error: --compile-safe-root {roots.root}: not a directory", file=sys.stderr)
        return EXIT_USAGE
    planner = api.Planner(args.paths, args.strategy, args.select.split(","), args.ignore.split(","),
                          use_analysis=not args.no_analysis, unsafe_fixes=args.unsafe_fixes, roots=roots)
    planner.progress = Progress(len(planner))
    report = planner.report(list(planner))
    dry = args.diff or args.check
    out = sys.stderr if args.diff else sys.stdout
    if args.diff:
        for o in report.changed:
            sys.stdout.write(o.diff())
    verdict = None
    if args.verify and report.changed:
        from .verify import VerifyError, verify

        try:
            verdict = verify(report, args)
        except VerifyError as exc:
            print(f"compile-safe-fix: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not args.quiet or not verdict.kept:
            print(verdict.render(), file=sys.stderr if not verdict.kept else out)
    if not dry and (verdict is None or verdict.kept):
        api.apply(report, backup=args.backup)
    for o in report.files:
        if o.note and not args.quiet:
            print(o.note, file=sys.stderr)
    for o in report.errors:
        print(o.error, file=sys.stderr)
    if not args.quiet:
        for line in summary(report, dry or (verdict is not None and not verdict.kept),
                            time.perf_counter() - started, args.verbose):
            print(line, file=out)
    if verdict is not None and not verdict.kept:
        return EXIT_VERIFY
    if report.errors:
        return EXIT_ERRORS
    if args.check and report.changed:
        return EXIT_CHANGES
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
