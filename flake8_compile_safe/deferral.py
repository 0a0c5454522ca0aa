"""The whole-project analysis runs beside flake8's per-file checks, not before them.

flake8 hands a tree plugin one file at a time, but TCS findings need the whole project. Built
first, the analysis kept one core busy while flake8's workers waited for it. Here it is started in
a forked child when the options are parsed; the plugin answers each file of an analysed project
with a placeholder result (:data:`PLACEHOLDER`), and just before flake8 reports, in its main
process, every placeholder is replaced by that file's findings. Files flake8 skips (``# flake8:
noqa``, syntax errors, unreadable) never get a placeholder, so they get no TCS finding, as before.

This wraps two methods of flake8's ``checker.Manager`` (``run``: placeholders only while a
Manager runs the checks, workers forked inside it included; ``report``: the swap). Where flake8's
internals are not the ones this was written against, or the platform cannot fork, nothing is
wrapped and the plugin analyses the project before the checks, as it always did.
"""

from __future__ import annotations

import functools
from pathlib import Path

PLACEHOLDER = "TCS000"  # never reported: every one is swapped before flake8 reports
PLACEHOLDER_TEXT = f"{PLACEHOLDER} findings of this file come from the project analysis"

# True while a wrapped Manager runs the checks in this process (inherited by forked workers).
checking = False
# Resolved path -> the (root, extra roots) whose analysis covers it; filled in the main process
# before flake8 forks its workers.
deferred_files: dict[str, tuple[str, tuple[str, ...]]] = {}
deferred_roots: set[tuple[str, tuple[str, ...]]] = set()  # the (root, extra roots) analysed beside the checks
_installed: bool | None = None
SUPPORTED_MAJORS = ("6", "7")  # Manager.results: (display name, [(code, line, col, text, line)], statistics)


def install() -> bool:
    """Wrap flake8's Manager once; False where its internals are not the expected ones."""
    global _installed
    if _installed is not None:
        return _installed
    _installed = False
    try:
        import flake8
        from flake8 import checker
    except ImportError:
        return False
    if flake8.__version__.split(".")[0] not in SUPPORTED_MAJORS:
        return False  # Manager.results may hold something else there: placeholders would leak
    manager = getattr(checker, "Manager", None)
    if manager is None or not all(callable(getattr(manager, name, None)) for name in ("run", "report")):
        return False
    run, report = manager.run, manager.report

    @functools.wraps(run)
    def run_with_placeholders(self, *args, **kwargs):
        global checking
        checking = bool(deferred_files)
        try:
            return run(self, *args, **kwargs)
        finally:
            checking = False

    @functools.wraps(report)
    def report_with_findings(self, *args, **kwargs):
        results = getattr(self, "results", None)
        if isinstance(results, list):
            self.results = [_swap(entry) for entry in results]
        return report(self, *args, **kwargs)

    manager.run, manager.report = run_with_placeholders, report_with_findings
    _installed = True
    return True


def defer(path: Path) -> bool:
    """Whether the plugin should answer ``path`` with a placeholder now."""
    return checking and str(path) in deferred_files


def _swap(entry):
    """One (display name, results, statistics) of flake8's, its placeholder replaced by findings."""
    try:
        filename, results, statistics = entry
    except (TypeError, ValueError):
        return entry
    if not isinstance(results, list) or not any(r and r[0] == PLACEHOLDER for r in results):
        return entry
    kept = [r for r in results if not (r and r[0] == PLACEHOLDER)]
    from .plugin import CompileSafeChecker  # the plugin imports this module

    path = Path(filename).resolve()
    findings = CompileSafeChecker.project_findings(path, deferred_files.get(str(path)))
    noqa_lines = _noqa_lines(filename) if findings else None
    for finding in findings:
        code, _, text = finding.message(CompileSafeChecker.compile_safe_explain).partition(" ")
        physical = noqa_lines(finding.line) if noqa_lines is not None else None
        kept.append((code, finding.line, finding.col, text, physical))
    return filename, kept, statistics


def _noqa_lines(filename: str):
    """flake8's own ``noqa`` line lookup (a statement's lines joined) where the file has a noqa;
    elsewhere None lets flake8 read the physical line itself, as it does for results without one."""
    try:
        if b"noqa" not in Path(filename).read_bytes().lower():
            return None
        from flake8.processor import FileProcessor

        from .plugin import CompileSafeChecker

        return FileProcessor(filename, CompileSafeChecker.flake8_options).noqa_line_for
    except Exception:  # noqa: BLE001 - without it flake8 reads the line itself: noqa still applies per line
        return None
