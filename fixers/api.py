"""Programmatic entry point: ``fix_paths(paths, strategy=...)``. Nothing here imports torch."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import libcst as cst

from . import generic
from .io import FixIOError, SourceFile, atomic_write, read_source, write_backup
from .recipes import all_recipes

STRATEGIES = ("tensor-index", "graph-break")
ALL_CODES = ("TCS001", "TCS002", "TCS003", "TCS004", "TCS005", "TCS006")
SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".venv", "venv", "node_modules", ".eggs", "build"}


@dataclass
class FileOutcome:
    path: str
    source: SourceFile | None = None
    new_text: str | None = None  # None: unchanged
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # one line: "PATH: problem"
    written: bool = False

    @property
    def changed(self) -> bool:
        return self.new_text is not None

    def diff(self) -> str:
        if not self.changed or self.source is None:
            return ""
        a = self.source.text.splitlines(keepends=True)
        b = self.new_text.splitlines(keepends=True)
        return "".join(difflib.unified_diff(a, b, f"a/{self.path}", f"b/{self.path}"))


@dataclass
class FixReport:
    files: list[FileOutcome]
    strategy: str
    analysis: str  # "findings" | "unavailable: ..." | "off"

    @property
    def changed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.changed]

    @property
    def errors(self) -> list[FileOutcome]:
        return [f for f in self.files if f.error]

    @property
    def notes(self) -> list[str]:
        return [n for f in self.files for n in f.notes]


def collect_files(paths: Iterable[str]) -> list[str]:
    """Python files under ``paths`` (files are taken as given), sorted, no duplicates."""
    out: list[str] = []
    seen: set[str] = set()
    for p in paths:
        if os.path.isdir(p):
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
                for name in sorted(filenames):
                    if name.endswith(".py"):
                        full = os.path.join(dirpath, name)
                        if full not in seen:
                            seen.add(full)
                            out.append(full)
        elif p not in seen:
            seen.add(p)
            out.append(p)
    return out


def selector(select: Iterable[str] | None = None, ignore: Iterable[str] | None = None) -> Callable[[str], bool]:
    """flake8-style: a code is selected when it starts with a --select prefix and no --ignore prefix."""
    sel = tuple(s.strip().upper() for s in (select or ()) if s.strip()) or ("TCS",)
    ign = tuple(s.strip().upper() for s in (ignore or ()) if s.strip())
    return lambda code: code.startswith(sel) and not code.startswith(ign)


def _load_findings(paths: list[str]):
    """Run the linter if it is there. Returns (findings or None, description)."""
    try:
        from flake8_compile_safe.analysis import analyze_paths
    except ImportError as exc:
        return None, f"unavailable ({exc.__class__.__name__})"
    try:
        return list(analyze_paths(paths)), "findings"
    except Exception as exc:  # the fixer still works without the index
        return None, f"unavailable (analysis failed: {exc.__class__.__name__}: {str(exc)[:80]})"


def _hints_by_file(findings) -> dict[str, generic.Hints]:
    out: dict[str, generic.Hints] = {}
    for f in findings:
        h = out.setdefault(os.path.realpath(f.path), generic.Hints(lines={}))
        h.lines.setdefault(f.code, set()).add(f.line)
        target = (f.data or {}).get("target")
        if target:
            h.targets.add(target)
    return out


def plan(paths: Iterable[str], strategy: str = "tensor-index", select=None, ignore=None,
         use_analysis: bool = True, progress: Callable[[int, int], None] | None = None) -> FixReport:
    """Compute every rewrite without writing anything."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    selected = selector(select, ignore)
    files = collect_files(paths)
    outcomes = [FileOutcome(p) for p in files]
    modules: dict[str, cst.Module] = {}
    for i, o in enumerate(outcomes):
        try:
            o.source = read_source(o.path)
            modules[o.path] = cst.parse_module(o.source.text)
        except FixIOError as exc:
            o.error = str(exc)
        except cst.ParserSyntaxError as exc:
            o.error = f"{o.path}: syntax error at line {exc.raw_line}: {exc.message.splitlines()[0]}"
        except Exception as exc:  # libcst can raise other errors on odd input; report, go on
            o.error = f"{o.path}: cannot parse: {exc.__class__.__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        if progress:
            progress(i + 1, 2 * len(outcomes))

    analysis = "off"
    hints: dict[str, generic.Hints] | None = None
    if use_analysis and modules:
        findings, analysis = _load_findings(list(paths))
        if findings is not None:
            hints = _hints_by_file(findings)

    new_modules: dict[str, cst.Module] = {}
    owned: set[str] = set()
    notes: dict[str, list[str]] = {}
    # 1. recipes: coordinated multi-file rewrites, recognised by structure
    for recipe in all_recipes():
        if strategy not in recipe.strategies or not any(selected(c) for c in recipe.codes):
            continue
        res = recipe.apply(modules, strategy)
        owned |= res.owned
        for p, m in res.modules.items():
            new_modules[p] = m
        for n in res.notes:
            p = n.split(" ", 1)[1].split(":", 1)[0]
            notes.setdefault(p, []).append(n)
    # 2. generic fixes on every file the recipes did not own
    for i, o in enumerate(outcomes):
        if o.path in modules and o.path not in new_modules and o.path not in owned:
            h = None
            if hints is not None:
                h = hints.get(os.path.realpath(o.path))
                if h is None:
                    continue  # no finding in this file: nothing to touch
            try:
                m, n = generic.fix_module(modules[o.path], o.path, h, selected)
            except Exception as exc:
                o.error = f"{o.path}: fixer error, file left as is: {exc.__class__.__name__}: {str(exc)[:120]}"
                continue
            if n:
                new_modules[o.path] = m
                notes.setdefault(o.path, []).extend(n)
        if progress:
            progress(len(outcomes) + i + 1, 2 * len(outcomes))
    for o in outcomes:
        m = new_modules.get(o.path)
        if m is not None and o.error is None:
            text = m.code
            if text != o.source.text:
                o.new_text = text
                o.notes = notes.get(o.path, [])
    return FixReport(outcomes, strategy, analysis)


def apply(report: FixReport, backup: bool = False) -> FixReport:
    """Write the changed files (atomically), keeping FILE.backup when asked."""
    for o in report.changed:
        try:
            if backup:
                write_backup(o.path, o.source.raw)
            atomic_write(o.path, o.source.encode(o.new_text))
            o.written = True
        except FixIOError as exc:
            o.error = str(exc)
        except OSError as exc:
            o.error = f"{o.path}: cannot write: {exc.strerror or exc}"
    return report


def fix_paths(paths: Iterable[str], strategy: str = "tensor-index", select=None, ignore=None, *,
              write: bool = True, backup: bool = False, use_analysis: bool = True,
              progress: Callable[[int, int], None] | None = None) -> FixReport:
    """Fix ``paths`` (files or directories). ``write=False`` only plans (like ``--diff``)."""
    paths = [str(Path(p)) for p in paths]
    report = plan(paths, strategy, select, ignore, use_analysis, progress)
    return apply(report, backup) if write else report
