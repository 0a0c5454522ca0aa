"""The flake8 face of the pipeline: ``flake8 --select=TCS``."""

from __future__ import annotations

import ast
from pathlib import Path

from . import __version__
from .analysis import analyze_index, report_for_root
from .findings import Finding
from .project import ProjectIndex, find_project_root


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


class CompileSafeChecker:
    name = "flake8-compile-safe"
    version = __version__

    enabled = True
    compile_safe_root: str | None = None
    compile_safe_roots: tuple[str, ...] = ()
    compile_safe_explain: bool = False

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

    @classmethod
    def parse_options(cls, *args) -> None:
        # flake8 calls parse_options(option_manager, options, filenames) when it can.
        options = args[1] if len(args) == 3 else args[0]
        filenames = args[2] if len(args) == 3 else getattr(options, "filenames", [])
        cls.compile_safe_root = options.compile_safe_root or None
        cls.compile_safe_roots = tuple(r for r in (options.compile_safe_roots or ()) if r)
        cls.compile_safe_explain = bool(getattr(options, "compile_safe_explain", False))
        # flake8 reports unreadable files as E902 (missing, unreadable) and E999 (syntax error), and
        # `--select=TCS` would hide them: a file we could not check must never pass silently.
        chosen = [*(getattr(options, "select", None) or []), *(getattr(options, "extend_select", None) or [])]
        if any(code.startswith("TCS") for code in chosen) and not any(code.startswith("E9") for code in chosen):
            options.extend_select = [*(getattr(options, "extend_select", None) or []), "E902", "E999"]
        cls.enabled = _tcs_selected(options)
        if cls.enabled:
            cls._prebuild(filenames or ["."])

    @classmethod
    def _prebuild(cls, filenames) -> None:
        """Analyse each project now, before ``--jobs`` forks workers, in a child process.

        Forked workers inherit the findings instead of each re-indexing the whole project (where
        the platform forks; elsewhere each worker builds it once, lazily).
        """
        roots = set()
        for name in filenames:
            if name in ("-", "stdin") or not Path(name).exists():
                continue
            roots.add(Path(cls.compile_safe_root).resolve() if cls.compile_safe_root else find_project_root(name))
        for root in sorted(roots):
            try:
                report_for_root(root, cls.compile_safe_roots, in_child=True)
            except Exception:  # noqa: BLE001 - run() retries per file and reports what failed
                pass

    def run(self):
        if not self.enabled:
            return
        try:
            findings = self._findings()
        except Exception as exc:  # noqa: BLE001 - one line for this file, not a crashed flake8 run
            findings = [Finding("TCS901", self.filename, 1, 0, 1, 0,
                                summary=f"analysis failed: {type(exc).__name__}: {str(exc)[:200]}",
                                why="this file was not checked", fix="report it with this file attached")]
        for finding in findings:
            yield finding.line, finding.col, finding.message(self.compile_safe_explain), type(self)

    def _findings(self):
        if self.filename in ("-", "stdin") or not Path(self.filename).is_file():
            return self._single_file_findings()
        path = Path(self.filename).resolve()
        root = Path(self.compile_safe_root).resolve() if self.compile_safe_root else find_project_root(path)
        report = report_for_root(root, self.compile_safe_roots, trees={str(path): self.tree})
        problem = report.errors.get(str(path))
        if problem is not None:  # e.g. not UTF-8: flake8 falls back to latin-1, Python would not
            return [unreadable_finding(path, problem)]
        if str(path) not in report.indexed_paths:
            # Outside the indexed tree (a skipped folder, or a root that does not contain it).
            return self._single_file_findings()
        return report.for_path(path)

    def _single_file_findings(self):
        index = ProjectIndex(Path.cwd())
        index.add_module(Path(self.filename if self.filename not in ("-", "stdin") else "stdin.py").resolve(),
                         self.tree)
        index.finish()
        return analyze_index(index, self.compile_safe_roots).findings
