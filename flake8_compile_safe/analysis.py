"""Stage 6, run the rules over every reached function and collect findings (report or fix).

``analyze_paths`` is the one entry point the flake8 plugin, the fixer and the validation suite
share. Results are cached per (project root, extra roots) for the life of the process.
"""

from __future__ import annotations

import ast
import gc
from dataclasses import dataclass, field
from pathlib import Path

from .callgraph import CallGraph, Reached
from .findings import Finding
from .project import ProjectIndex, find_project_root
from .roots import Root, find_roots
from .rules import ALL_RULES, Rule


@dataclass
class Report:
    index: ProjectIndex
    roots: list[Root]
    reached: list[Reached]
    findings: list[Finding] = field(default_factory=list)
    _by_path: dict[str, list[Finding]] = field(default_factory=dict)

    def for_path(self, path: str | Path) -> list[Finding]:
        return self._by_path.get(str(Path(path).resolve()), [])

    def reached_functions(self) -> set[str]:
        return {item.ctx.func.qualname for item in self.reached}


def analyze_index(index: ProjectIndex, extra_roots: tuple[str, ...] = (),
                  rules: tuple[Rule, ...] = ALL_RULES) -> Report:
    graph = CallGraph(index)
    roots = find_roots(index, extra_roots)
    found: dict[tuple, Finding] = {}

    def on_statement(item: Reached, stmt: ast.stmt, an) -> None:
        for rule in rules:
            for hit in rule.check(stmt, an):
                node = hit.node
                key = (rule.code, node.lineno, node.col_offset, str(an.module.path))
                if key in found:
                    continue  # BFS: the first chain to reach a line is a shortest one
                found[key] = Finding(
                    code=rule.code, path=str(an.module.path), line=node.lineno, col=node.col_offset,
                    end_line=getattr(node, "end_lineno", node.lineno) or node.lineno,
                    end_col=getattr(node, "end_col_offset", node.col_offset) or node.col_offset,
                    summary=hit.summary, why=hit.why or rule.why, fix=hit.fix or rule.fix,
                    root=item.root.display, chain=item.chain, function=an.func.qualname, data=hit.data)

    gc_was_enabled = gc.isenabled()
    gc.disable()  # as in ProjectIndex.build: many small objects, no cycles worth collecting
    try:
        reached = graph.reach(roots, on_statement)
    finally:
        if gc_was_enabled:
            gc.enable()
    report = Report(index, roots, reached)
    report.findings = sorted(found.values(), key=lambda f: (f.path, f.line, f.col, f.code))
    for finding in report.findings:
        report._by_path.setdefault(finding.path, []).append(finding)
    return report


_REPORTS: dict[tuple, Report] = {}


def report_for_root(root: str | Path, extra_roots: tuple[str, ...] = (),
                    trees: dict[str, ast.Module] | None = None) -> Report:
    key = (str(Path(root).resolve()), tuple(extra_roots))
    report = _REPORTS.get(key)
    if report is None:
        report = analyze_index(ProjectIndex.build(key[0], trees), tuple(extra_roots))
        _REPORTS[key] = report
    return report


def clear_cache() -> None:
    _REPORTS.clear()


def analyze_paths(paths: list[str | Path], root: str | Path | None = None,
                  extra_roots: tuple[str, ...] = (), select: tuple[str, ...] = ()) -> list[Finding]:
    """Findings in ``paths`` (files or directories), each analysed within its whole project."""
    results: list[Finding] = []
    for path in paths:
        resolved = Path(path).resolve()
        report = report_for_root(root or find_project_root(resolved), extra_roots)
        for finding in report.findings:
            finding_path = Path(finding.path)
            if finding_path == resolved or (resolved.is_dir() and resolved in finding_path.parents):
                if not select or any(finding.code.startswith(code) for code in select):
                    results.append(finding)
    unique = {(f.path, f.line, f.col, f.code): f for f in results}
    return sorted(unique.values(), key=lambda f: (f.path, f.line, f.col, f.code))
