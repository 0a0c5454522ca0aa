"""Programmatic entry point: ``fix_paths(paths, strategy=...)``. Nothing here imports torch."""

from __future__ import annotations

import ast
import difflib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

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
    source: SourceFile | None = None  # kept only for changed files (diff, backup, write)
    new_text: str | None = None  # None: unchanged
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # one line: "PATH: problem"
    written: bool = False
    crash: str | None = None  # exception class when the fixer itself failed on this file (a bug)

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


def _parse_ast(text: str):
    """``ast.parse`` for the prefilters; None when it fails (the file then takes the full libcst path)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like: not ours to report
            return ast.parse(text)
    except Exception:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError...
        return None


def _parse_cst(o: FileOutcome, text: str) -> cst.Module | None:
    """libcst parse; on failure set ``o.error`` (the file is skipped with a reason) and return None."""
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        o.error = f"{o.path}: syntax error at line {exc.raw_line}: {exc.message.splitlines()[0]}"
    except Exception as exc:  # libcst can raise other errors on odd input; report, go on
        first = str(exc).splitlines()[0][:120] if str(exc) else ""
        o.error = f"{o.path}: cannot parse: {exc.__class__.__name__}: {first}"
    return None


@dataclass
class _Held:
    """A recipe candidate held until the recipes have run."""

    o: FileOutcome
    src: SourceFile
    module: cst.Module
    recipes: list
    hints: "generic.Hints | None"
    gen: bool  # could the generic fixes apply
    new_module: cst.Module | None = None  # a recipe's rewrite
    notes: list[str] = field(default_factory=list)


def _crash(o: FileOutcome, exc: BaseException, where: str = "") -> None:
    """The fixer itself failed on this file (a bug): leave the file alone, say so."""
    o.crash = exc.__class__.__name__
    o.error = f"{o.path}: fixer error, file left as is: {where}{exc.__class__.__name__}: {str(exc)[:120]}"
    o.new_text = None
    o.notes = []


class Planner:
    """Streams the rewrites of ``paths`` one file at a time (nothing is written).

    Per file: read it, ``ast.parse`` it (cheap), and ask the recipes and the generic fixes whether
    anything could apply (:meth:`Recipe.candidate`, :func:`generic.could_fix`, or the linter's
    findings). Only files that pass are parsed with libcst; a file with nothing to fix is yielded
    at once and keeps no source or tree. Recipe candidates (few) are held until every file has been
    seen, since a recipe rewrites its family's files together, and are yielded last.

    Iterating yields one :class:`FileOutcome` per file. A fixer exception inside one file is caught,
    recorded on that outcome (``crash``, ``error``), and the run goes on. ``analysis`` says whether
    the linter's findings were used (set once iteration starts).
    """

    def __init__(self, paths: Iterable[str], strategy: str = "tensor-index", select=None, ignore=None,
                 use_analysis: bool = True, progress: Callable[[int, int], None] | None = None,
                 prefilter: bool = True):
        """``prefilter=False``: parse and visit every file with libcst (slow; to validate the prefilters)."""
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
        self.paths = [str(p) for p in paths]
        self.strategy = strategy
        self.selected = selector(select, ignore)
        self.use_analysis = use_analysis
        self.progress = progress
        self.prefilter = prefilter
        self.files = collect_files(self.paths)
        self.analysis = "off"
        self.recipes = [r for r in all_recipes()
                        if strategy in r.strategies and any(self.selected(c) for c in r.codes)]

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[FileOutcome]:
        hints: dict[str, generic.Hints] | None = None
        if self.use_analysis and self.files:
            findings, self.analysis = _load_findings(self.paths)
            if findings is not None:
                hints = _hints_by_file(findings)
        total, done = len(self.files), 0
        held: list[_Held] = []  # recipe candidates, parsed, until every file has been seen
        for path in self.files:
            o = FileOutcome(path)
            item = None
            try:
                item = self._first_pass(o, hints)
            except Exception as exc:
                _crash(o, exc)
            if item is not None:
                held.append(item)
                continue
            done += 1
            if self.progress:
                self.progress(done, total)
            yield o
        if held:
            self._run_recipes(held)
            for item in held:
                if item.o.error is None:
                    try:
                        self._finish(item.o, item.src, item.module, item.hints, item.gen, item.new_module, item.notes)
                    except Exception as exc:
                        _crash(item.o, exc)
                done += 1
                if self.progress:
                    self.progress(done, total)
                yield item.o

    # -- per file ---------------------------------------------------------------------------
    def _first_pass(self, o: FileOutcome, hints) -> "_Held | None":
        try:
            src = read_source(o.path)
        except FixIOError as exc:
            o.error = str(exc)
            return None
        text = src.text
        tree = _parse_ast(text) if self.prefilter else None
        recipes = [r for r in self.recipes if r.candidate(text, tree)] if self.prefilter else list(self.recipes)
        h = None
        if hints is not None:
            h = hints.get(os.path.realpath(o.path))
            gen = h is not None and "torch" in text  # no finding in this file: nothing to touch
        else:
            gen = generic.could_fix(text, tree, self.selected) if self.prefilter else True
        if not recipes and not gen and tree is not None:
            return None  # nothing can apply: no libcst parse
        del tree
        module = _parse_cst(o, text)
        if module is None:
            return None
        if recipes:
            return _Held(o, src, module, recipes, h, gen)
        self._finish(o, src, module, h, gen)
        return None

    def _finish(self, o: FileOutcome, src: SourceFile, module: cst.Module, h, gen: bool,
                new_module: cst.Module | None = None, notes: Iterable[str] = ()) -> None:
        """Generic fixes (unless a recipe owns the file), then the new text if it differs."""
        notes = list(notes)
        if new_module is None and gen:
            try:
                m, n = generic.fix_module(module, o.path, h, self.selected, text=src.text)
            except Exception as exc:
                _crash(o, exc)
                return
            if n:
                new_module = m
                notes.extend(n)
        if new_module is not None:
            text = new_module.code
            if text != src.text:
                o.source, o.new_text, o.notes = src, text, notes

    def _run_recipes(self, held: list["_Held"]) -> None:
        new_modules: dict[str, cst.Module] = {}
        owned: set[str] = set()
        notes: dict[str, list[str]] = {}
        for recipe in self.recipes:
            members = [item for item in held if recipe in item.recipes and item.o.error is None]
            if not members:
                continue
            try:
                res = recipe.apply({item.o.path: item.module for item in members}, self.strategy)
            except Exception as exc:
                for item in members:
                    _crash(item.o, exc, f"recipe {recipe.name}: ")
                continue
            owned |= res.owned
            new_modules.update(res.modules)
            for n in res.notes:
                p = n.split(" ", 1)[1].split(":", 1)[0]
                notes.setdefault(p, []).append(n)
        for item in held:
            p = item.o.path
            if p in new_modules:
                item.new_module, item.notes = new_modules[p], notes.get(p, [])
            if p in new_modules or p in owned:
                item.gen = False  # generic fixes keep off what a recipe recognised

    def report(self, outcomes: list[FileOutcome]) -> "FixReport":
        order = {p: i for i, p in enumerate(self.files)}
        return FixReport(sorted(outcomes, key=lambda o: order.get(o.path, 0)), self.strategy, self.analysis)


def iter_plan(paths: Iterable[str], strategy: str = "tensor-index", select=None, ignore=None,
              use_analysis: bool = True, progress: Callable[[int, int], None] | None = None) -> Planner:
    """A :class:`Planner`: iterate it for one :class:`FileOutcome` per file, as each is decided."""
    return Planner(paths, strategy, select, ignore, use_analysis, progress)


def plan(paths: Iterable[str], strategy: str = "tensor-index", select=None, ignore=None,
         use_analysis: bool = True, progress: Callable[[int, int], None] | None = None) -> FixReport:
    """Compute every rewrite without writing anything."""
    planner = Planner(paths, strategy, select, ignore, use_analysis, progress)
    return planner.report(list(planner))


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
