"""The flake8 face of the pipeline: ``flake8 --select=TCS``."""

from __future__ import annotations

import ast
from pathlib import Path

from . import __version__, deferral, option_checks
from .analysis import analyze_index, begin_report, report_for_root
from .cache import CACHE_DIR_NAME, DISABLE_ENV, cache_disabled_by_env
from .findings import Finding
from .project import ProjectIndex, find_project_root, iter_python_files
from .source import SourceError, parse_file


def _tcs_selected(options) -> bool:
    """False only when an explicit --select leaves TCS out (then there is no point analysing)."""
    select = getattr(options, "select", None)
    if select is None:
        return True
    chosen = [*select, *(getattr(options, "extend_select", None) or [])]
    return any("TCS".startswith(code) or code.startswith("TCS") for code in chosen)


def unreadable_finding(path: Path, problem: str) -> Finding:
    return Finding("TCS900", str(path), 1, 0, 1, 0, summary=f"file not analysed: {problem}",
                   why="code in it cannot be checked, nor followed from other files",
                   fix="fix the file (save it as UTF-8 or declare its encoding)")


def analysis_failed(path, exc: Exception) -> Finding:
    return Finding("TCS901", str(path), 1, 0, 1, 0, summary=f"analysis failed: {type(exc).__name__}: {str(exc)[:200]}",
                   why="this file was not checked", fix="report it with this file attached")


def _file_findings(report, path: Path, alone) -> list[Finding]:
    """``path``'s findings in its project's report; ``alone()`` where the project did not index it."""
    problem = report.errors.get(str(path))
    if problem is not None:  # e.g. not UTF-8: flake8 falls back to latin-1, Python would not
        return [unreadable_finding(path, problem)]
    if str(path) not in report.indexed_paths:
        # Outside the indexed tree (a skipped folder, or a root that does not contain it).
        return alone()
    return report.for_path(path)


class CompileSafeChecker:
    name = "flake8-compile-safe"
    version = __version__

    enabled = True
    compile_safe_root: str | None = None
    compile_safe_roots: tuple[str, ...] = ()
    compile_safe_explain: bool = False
    compile_safe_cache_dir: str | None = None  # None: no persistent cache
    flake8_options = None  # flake8's parsed options (deferral.py reads noqa lines with them)

    def __init__(self, tree: ast.Module, filename: str):
        self.tree = tree
        self.filename = filename

    @classmethod
    def add_options(cls, parser) -> None:
        parser.add_option(
            "--compile-safe-root", default=None, parse_from_config=True,
            help="Project root whose files are indexed for cross-file analysis "
                 "(default: nearest pyproject.toml, setup.cfg, setup.py or .git above each file).")
        parser.add_option(
            "--compile-safe-roots", default="", parse_from_config=True, comma_separated_list=True,
            help="Extra compiled roots, as qualified names (pkg.mod.Class.method) or suffixes (Class.method).")
        parser.add_option(
            "--compile-safe-explain", default=False, action="store_true", parse_from_config=True,
            help="Add the call chain from the compiled root, why it matters and how to fix it to each TCS message.")
        parser.add_option(
            "--compile-safe-cache-dir", default=None, parse_from_config=True,
            help=f"Where the persistent cache lives (default: {CACHE_DIR_NAME} at the project root; "
                 "a relative path is taken from the project root).")
        parser.add_option(
            "--compile-safe-no-cache", default=False, action="store_true", parse_from_config=True,
            help=f"Do not read or write the persistent cache (also: {DISABLE_ENV}=1).")

    @classmethod
    def parse_options(cls, *args) -> None:
        # flake8 calls parse_options(option_manager, options, filenames) when it can.
        options = args[1] if len(args) == 3 else args[0]
        filenames = args[2] if len(args) == 3 else getattr(options, "filenames", [])
        cls.flake8_options = options
        cls.compile_safe_root = options.compile_safe_root or None
        cls.compile_safe_roots = tuple(r for r in (options.compile_safe_roots or ()) if r)
        cls.compile_safe_explain = bool(getattr(options, "compile_safe_explain", False))
        no_cache = bool(getattr(options, "compile_safe_no_cache", False)) or cache_disabled_by_env()
        cls.compile_safe_cache_dir = None if no_cache else (getattr(options, "compile_safe_cache_dir", None)
                                                            or CACHE_DIR_NAME)
        try:  # a typo must not turn the linter off silently (option_checks.py)
            option_checks.check_root(cls.compile_safe_root)
            option_checks.check_selected(options)
        except option_checks.OptionProblem as problem:
            option_checks.fail(problem)
        # flake8 reports unreadable files as E902 (missing, unreadable) and E999 (syntax error), and
        # `--select=TCS` would hide them: a file we could not check must never pass silently.
        chosen = [*(getattr(options, "select", None) or []), *(getattr(options, "extend_select", None) or [])]
        if any(code.startswith("TCS") for code in chosen) and not any(code.startswith("E9") for code in chosen):
            options.extend_select = [*(getattr(options, "extend_select", None) or []), "E902", "E999"]
        cls.enabled = _tcs_selected(options)
        if cls.enabled:
            roots = cls._prebuild(filenames or ["."])
            for name in option_checks.unmatched_roots(cls.compile_safe_roots, roots):
                option_checks.warn(f"--compile-safe-roots {name}: nothing of that name is defined under "
                                   f"{', '.join(map(str, roots)) or 'the linted paths'}; it adds no compiled root")

    @classmethod
    def _prebuild(cls, filenames) -> list[Path]:
        """Analyse each project now, before ``--jobs`` forks workers, in a child process.

        Forked workers inherit the findings instead of each re-indexing the whole project (where
        the platform forks; elsewhere each worker builds it once, lazily).
        """
        roots = set()
        for name in filenames:
            if name in ("-", "stdin") or not Path(name).exists():
                continue
            roots.add(Path(cls.compile_safe_root).resolve() if cls.compile_safe_root else find_project_root(name))
        beside = deferral.install()  # the analysis runs beside flake8's checks (deferral.py)
        for root in sorted(roots):
            try:
                if beside and begin_report(root, cls.compile_safe_roots, cls.compile_safe_cache_dir):
                    key = (str(root), cls.compile_safe_roots)
                    deferral.deferred_roots.add(key)
                    deferral.deferred_files.update((str(path.resolve()), key) for path in iter_python_files(root))
                    continue
                report_for_root(root, cls.compile_safe_roots, in_child=True,
                                cache_dir=cls.compile_safe_cache_dir)
            except Exception:  # noqa: BLE001 - run() retries per file and reports what failed
                pass
        return sorted(roots)

    def run(self):
        if not self.enabled:
            return
        if self.filename not in ("-", "stdin") and deferral.defer(Path(self.filename).resolve()):
            yield 1, 0, deferral.PLACEHOLDER_TEXT, type(self)  # swapped for the findings before flake8 reports
            return
        try:
            findings = self._findings()
        except Exception as exc:  # noqa: BLE001 - one line for this file, not a crashed flake8 run
            findings = [analysis_failed(self.filename, exc)]
        for finding in findings:
            yield finding.line, finding.col, finding.message(self.compile_safe_explain), type(self)

    def _findings(self):
        if self.filename in ("-", "stdin") or not Path(self.filename).is_file():
            return self._single_file_findings()
        path = Path(self.filename).resolve()
        root = Path(self.compile_safe_root).resolve() if self.compile_safe_root else find_project_root(path)
        if deferral.checking and (str(root), self.compile_safe_roots) in deferral.deferred_roots:
            return self._single_file_findings()  # its project, analysed beside the checks, does not hold it
        report = report_for_root(root, self.compile_safe_roots, trees={str(path): self.tree},
                                 cache_dir=self.compile_safe_cache_dir)
        return _file_findings(report, path, self._single_file_findings)

    @classmethod
    def project_findings(cls, path: Path, key) -> list[Finding]:
        """The findings of a file whose project was analysed beside the checks (deferral.py)."""
        try:
            root, extra_roots = key
            report = report_for_root(root, extra_roots, cache_dir=cls.compile_safe_cache_dir)
            return _file_findings(report, path, lambda: cls(parse_file(path), str(path))._single_file_findings())
        except SourceError as exc:
            return [unreadable_finding(path, exc.problem)]
        except Exception as exc:  # noqa: BLE001 - one line for this file, not a crashed flake8 run
            return [analysis_failed(path, exc)]

    def _single_file_findings(self):
        index = ProjectIndex(Path.cwd())
        index.add_module(Path(self.filename if self.filename not in ("-", "stdin") else "stdin.py").resolve(),
                         self.tree)
        index.finish()
        return analyze_index(index, self.compile_safe_roots).findings
