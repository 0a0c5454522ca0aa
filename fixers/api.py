"""Programmatic entry point: ``fix_paths(paths, strategy=...)``. Nothing here imports torch.

The pipeline: the linter's findings (``flake8_compile_safe.analysis.analyze_paths``, in process, with
the same compiled roots as flake8) -> each finding's rule fix (:mod:`.rules`) proposes edits from its
typed payload -> per file, the proposals are resolved (safety, dependencies, overlaps) and applied
in one libcst pass. Family recipes (:mod:`.recipes`) rewrite their files as a whole. Every finding the
fixer leaves is reported with why (:class:`~.outcome.Unfixed`).
"""

from __future__ import annotations

import ast
import difflib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import libcst as cst

from flake8_compile_safe.findings import Finding

from .config import RootsConfig
from .context import FileContext
from .io import FixIOError, SourceFile, atomic_write, read_source, write_backup
from .ledger import Ledger
from .outcome import AppliedFix, Unfixed
from .planfile import plan_file, plan_without_fixes
from .recipes import all_recipes

STRATEGIES = ("tensor-index", "graph-break")
SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".venv", "venv", "node_modules", ".eggs", "build"}


def display_path(path: str) -> str:
    """``pkg/x.py`` for ``./pkg/x.py``: what diff headers and messages show."""
    return os.path.normpath(path)


@dataclass
class FileOutcome:
    path: str
    source: SourceFile | None = None  # kept only for changed files (diff, backup, write)
    new_text: str | None = None  # None: unchanged
    applied: list[AppliedFix] = field(default_factory=list)
    error: str | None = None  # one line: "PATH: problem"
    note: str | None = None  # skipped on purpose (not a Python file): one line
    written: bool = False
    crash: str | None = None  # exception class when the fixer itself failed on this file (a bug)

    @property
    def changed(self) -> bool:
        return self.new_text is not None

    @property
    def notes(self) -> list[str]:
        return [a.describe() for a in self.applied]

    def diff(self) -> str:
        if not self.changed or self.source is None:
            return ""
        a = self.source.text.splitlines(keepends=True)
        b = self.new_text.splitlines(keepends=True)
        shown = display_path(self.path)
        old, new = (shown, shown) if os.path.isabs(shown) else (f"a/{shown}", f"b/{shown}")
        return "".join(difflib.unified_diff(a, b, old, new))


@dataclass
class FixReport:
    files: list[FileOutcome]
    strategy: str
    analysis: str  # "findings" | "unavailable: ..." | "off"
    unfixed: list[Unfixed] = field(default_factory=list)
    findings: int = 0  # selected findings in the paths
    recipe_findings: int = 0  # findings in files a recipe rewrote as a whole
    declined: list[str] = field(default_factory=list)  # recipe rewrites recognised but not done, with why

    @property
    def changed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.changed]

    @property
    def errors(self) -> list[FileOutcome]:
        return [f for f in self.files if f.error]

    @property
    def applied(self) -> list[AppliedFix]:
        return [a for f in self.files for a in f.applied]

    @property
    def notes(self) -> list[str]:
        return [n for f in self.files for n in f.notes]


def is_python_file(path: str) -> bool:
    """``.py``, or no suffix and a ``python`` shebang (a script)."""
    if path.endswith(".py"):
        return True
    if os.path.splitext(path)[1]:
        return False
    try:
        with open(path, "rb") as fh:
            first = fh.readline(200)
    except OSError:
        return True  # let reading it report the problem
    return first.startswith(b"#!") and b"python" in first


def collect_files(paths: Iterable[str]) -> tuple[list[str], list[str]]:
    """(Python files under ``paths``, sorted, no duplicates; explicit files skipped as not Python)."""
    out: list[str] = []
    skipped: list[str] = []
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
            if os.path.exists(p) and not is_python_file(p):
                skipped.append(p)
            else:
                out.append(p)
    return out, skipped


def selector(select: Iterable[str] | None = None, ignore: Iterable[str] | None = None) -> Callable[[str], bool]:
    """flake8-style: a code is selected when it starts with a --select prefix and no --ignore prefix."""
    sel = tuple(s.strip().upper() for s in (select or ()) if s.strip()) or ("TCS",)
    ign = tuple(s.strip().upper() for s in (ignore or ()) if s.strip())
    return lambda code: code.startswith(sel) and not code.startswith(ign)


def load_findings(paths: list[str], roots: RootsConfig) -> tuple[list[Finding] | None, str]:
    """Run the linter if it is there. Returns (findings or None, description)."""
    try:
        from flake8_compile_safe.analysis import analyze_paths
    except ImportError as exc:
        return None, f"unavailable ({exc.__class__.__name__})"
    try:
        return list(analyze_paths(paths, root=roots.root, extra_roots=roots.roots)), "findings"
    except Exception as exc:  # the recipes still work without the index
        return None, f"unavailable (analysis failed: {exc.__class__.__name__}: {str(exc)[:80]})"


def syntax_error(path: str, text: str) -> tuple[ast.Module | None, str | None]:
    """``ast.parse``; on failure, one line positioned as flake8's E999 (``path:row:col``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like: not ours to report
            return ast.parse(text), None
    except SyntaxError as exc:
        col = (exc.offset or 0) + 1  # flake8 reports the offset plus one
        return None, f"{display_path(path)}:{exc.lineno or 1}:{col}: E999 {type(exc).__name__}: {exc.msg} (skipped)"
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, f"{display_path(path)}: cannot parse: {exc.__class__.__name__}: {str(exc)[:120]} (skipped)"


def _parse_cst(o: FileOutcome, text: str) -> cst.Module | None:
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        o.error = f"{display_path(o.path)}:{exc.raw_line}:{exc.raw_column + 1}: cannot parse: " \
                  f"{exc.message.splitlines()[0]} (skipped)"
    except Exception as exc:  # libcst can raise other errors on odd input; report, go on
        first = str(exc).splitlines()[0][:120] if str(exc) else ""
        o.error = f"{display_path(o.path)}: cannot parse: {exc.__class__.__name__}: {first} (skipped)"
    return None


@dataclass
class _Held:
    """A recipe candidate held until the recipes have run."""

    o: FileOutcome
    src: SourceFile
    module: cst.Module
    tree: ast.Module
    recipes: list
    new_module: cst.Module | None = None
    applied: list[AppliedFix] = field(default_factory=list)
    owned: bool = False


def _crash(o: FileOutcome, exc: BaseException, where: str = "") -> None:
    """The fixer itself failed on this file (a bug): leave the file alone, say so."""
    o.crash = exc.__class__.__name__
    o.error = f"{display_path(o.path)}: fixer error, file left as is: {where}{exc.__class__.__name__}: " \
              f"{str(exc)[:120]}"
    o.new_text = None
    o.applied = []


class Planner:
    """Streams the rewrites of ``paths`` one file at a time (nothing is written).

    The linter runs first (all paths, one project index each). Per file: read it, ``ast.parse`` it,
    and parse it with libcst only when a finding's fix may edit it or a recipe may own it. Recipe
    candidates are held until every file has been seen (a recipe rewrites its family's files
    together) and yielded last. A fixer exception inside one file is caught and recorded on that
    outcome (``crash``, ``error``); the run goes on. After iteration, :meth:`report` also lists the
    findings left unfixed, with why.
    """

    def __init__(self, paths: Iterable[str], strategy: str = "tensor-index", select=None, ignore=None,
                 use_analysis: bool = True, progress: Callable[[int, int], None] | None = None,
                 unsafe_fixes: bool = False, roots: RootsConfig | None = None):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
        self.paths = [str(p) for p in paths]
        self.strategy = strategy
        self.selected = selector(select, ignore)
        self.use_analysis = use_analysis
        self.unsafe_fixes = unsafe_fixes
        self.roots = roots or RootsConfig()
        self.progress = progress
        self.files, self.not_python = collect_files(self.paths)
        self.analysis = "off"
        self.ledger = Ledger(strategy)
        self.recipes = [r for r in all_recipes()
                        if strategy in r.strategies and any(self.selected(c) for c in r.codes)]
        self.declined: list[str] = []

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[FileOutcome]:
        for path in self.not_python:
            yield FileOutcome(path, note=f"{display_path(path)}: not a Python file (no .py suffix): skipped")
        if self.use_analysis and self.files:
            findings, self.analysis = load_findings(self.paths, self.roots)
            if findings is not None:
                self.ledger.add([f for f in findings if self.selected(f.code)],
                                {os.path.realpath(p) for p in self.files})
        total, done = len(self.files), 0
        held: list[_Held] = []
        for path in self.files:
            o = FileOutcome(path)
            item = None
            try:
                item = self._first_pass(o)
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
                        self._finish(item.o, item.src, item.module, item.tree, item.new_module, item.applied,
                                     item.owned)
                    except Exception as exc:
                        _crash(item.o, exc)
                done += 1
                if self.progress:
                    self.progress(done, total)
                yield item.o

    # -- per file ---------------------------------------------------------------------------
    def _first_pass(self, o: FileOutcome) -> "_Held | None":
        try:
            src = read_source(o.path)
        except FixIOError as exc:
            o.error = str(exc)
            return None
        tree, problem = syntax_error(o.path, src.text)
        if tree is None:
            o.error = problem
            self.ledger.skipped(o.path, problem)
            return None
        recipes = [r for r in self.recipes if r.candidate(src.text, tree)]
        if not recipes and not self._fixable(o.path):
            return None  # nothing can apply: no libcst parse
        module = _parse_cst(o, src.text)
        if module is None:
            self.ledger.skipped(o.path, o.error)
            return None
        if recipes:
            return _Held(o, src, module, tree, recipes)
        self._finish(o, src, module, tree)
        return None

    def _fixable(self, path: str) -> bool:
        """Does any finding handed to this file have a fix to try? Those without one are recorded now."""
        findings = self.ledger.for_file(path)
        if not findings:
            return False
        plan = plan_without_fixes(findings, self.strategy)
        if len(plan.notes) < len(findings):
            return True
        self.ledger.record(path, plan)
        return False

    def _finish(self, o: FileOutcome, src: SourceFile, module: cst.Module, tree: ast.Module,
                new_module: cst.Module | None = None, applied: Iterable[AppliedFix] = (), owned: bool = False) -> None:
        """The rule fixes (unless a recipe owns the file), then the new text if it differs."""
        applied = list(applied)
        findings = self.ledger.for_file(o.path)
        if owned:
            self.ledger.recipe_owned(o.path)
        elif findings:
            ctx = FileContext.build(o.path, src.text, module, tree)
            try:
                result = plan_file(ctx, findings, self.strategy, self.unsafe_fixes)
            except Exception as exc:
                self.ledger.skipped(o.path, f"fixer error: {exc.__class__.__name__}")
                raise
            self.ledger.record(o.path, result)
            if result.module is not None:
                new_module = result.module
                applied.extend(result.applied)
        if new_module is not None:
            text = new_module.code
            if text != src.text:
                _, problem = syntax_error(o.path, text)
                if problem is not None:  # a fixer bug: never write code that does not parse
                    raise RuntimeError(f"the rewrite does not parse: {problem}")
                o.source, o.new_text, o.applied = src, text, applied

    def _run_recipes(self, held: list[_Held]) -> None:
        new_modules: dict[str, cst.Module] = {}
        owned: set[str] = set()
        applied: dict[str, list[AppliedFix]] = {}
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
            self.declined += res.declined
            for fix in res.applied:
                applied.setdefault(fix.path, []).append(fix)
        for item in held:
            p = item.o.path
            if p in new_modules:
                item.new_module, item.applied = new_modules[p], applied.get(p, [])
            item.owned = p in new_modules or p in owned  # the rule fixes keep off what a recipe recognised

    def report(self, outcomes: list[FileOutcome]) -> FixReport:
        order = {p: i for i, p in enumerate([*self.not_python, *self.files])}
        unfixed = self.ledger.unfixed()
        return FixReport(sorted(outcomes, key=lambda o: order.get(o.path, 0)), self.strategy, self.analysis,
                         unfixed, self.ledger.total, self.ledger.recipe_count, list(self.declined))


def plan(paths: Iterable[str], strategy: str = "tensor-index", select=None, ignore=None,
         use_analysis: bool = True, progress: Callable[[int, int], None] | None = None,
         unsafe_fixes: bool = False, roots: RootsConfig | None = None) -> FixReport:
    """Compute every rewrite without writing anything."""
    planner = Planner(paths, strategy, select, ignore, use_analysis, progress, unsafe_fixes, roots)
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
              progress: Callable[[int, int], None] | None = None, unsafe_fixes: bool = False,
              roots: RootsConfig | None = None) -> FixReport:
    """Fix ``paths`` (files or directories). ``write=False`` only plans (like ``--diff``)."""
    paths = [str(Path(p)) for p in paths]
    report = plan(paths, strategy, select, ignore, use_analysis, progress, unsafe_fixes, roots)
    return apply(report, backup) if write else report
