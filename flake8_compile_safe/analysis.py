"""Stage 6, run the rules over every reached function and collect findings (report or fix).

``analyze_paths`` is the one entry point the flake8 plugin, the fixer and the validation suite
share. Results are cached per (project root, extra roots) for the life of the process.
"""

from __future__ import annotations

import ast
import gc
import multiprocessing
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .callgraph import CallGraph, Reached
from .findings import Finding
from .fixfacts import runs_modules
from .project import ProjectIndex, find_project_root
from .roots import Root, find_roots
from .rules import ALL_RULES, Rule, RuleContext


@dataclass
class Report:
    index: ProjectIndex | None  # None once slimmed
    roots: list[Root]
    reached: list[Reached]
    findings: list[Finding] = field(default_factory=list)
    _by_path: dict[str, list[Finding]] = field(default_factory=dict)
    indexed_paths: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)  # path -> why it could not be analysed

    def slim(self) -> "Report":
        """Only what reporting needs: findings, which files were indexed, which could not be."""
        return Report(None, [], [], self.findings, self._by_path, self.indexed_paths, self.errors)

    def set_findings(self, findings: list[Finding]) -> None:
        """Store findings sorted, grouped by file for ``for_path``."""
        self.findings = sorted(findings, key=lambda f: (f.path, f.line, f.col, f.code))
        self._by_path = {}
        for finding in self.findings:
            self._by_path.setdefault(finding.path, []).append(finding)

    def for_path(self, path: str | Path) -> list[Finding]:
        return self._by_path.get(str(Path(path).resolve()), [])

    def reached_functions(self) -> set[str]:
        return {item.ctx.func.qualname for item in self.reached}


def analyze_index(index: ProjectIndex, extra_roots: tuple[str, ...] = (),
                  rules: tuple[Rule, ...] = ALL_RULES) -> Report:
    # As in ProjectIndex.build: a heap of millions of AST nodes makes every cyclic-GC pass slow,
    # and the analysis makes no garbage cycles worth collecting.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _analyze(index, extra_roots, rules)
    finally:
        if gc_was_enabled:
            gc.enable()


def _analyze(index: ProjectIndex, extra_roots: tuple[str, ...], rules: tuple[Rule, ...]) -> Report:
    graph = CallGraph(index)
    roots = find_roots(index, extra_roots)
    root_functions = {root.func.qualname for root in roots}
    found: dict[tuple, Finding] = {}
    called: set[str] = set()  # functions some compiled code calls: a root among them is not a top root
    calls_seen: dict[int, int] = {}
    module_runners: dict[str, bool] = {}  # function -> runs_modules (asked once per function)

    def on_statement(item: Reached, stmt: ast.stmt, an) -> None:
        start = calls_seen.get(id(an), 0)
        called.update(target.func.qualname for _, target in an.calls[start:])
        calls_seen[id(an)] = len(an.calls)
        ctx = RuleContext(an, stmt)
        for rule in rules:
            for hit in rule.check(stmt, ctx):
                node = hit.node
                key = (rule.code, node.lineno, node.col_offset, str(an.module.path))
                if key in found:
                    continue  # BFS: the first chain to reach a line is a shortest one
                if an.func.qualname not in module_runners:
                    module_runners[an.func.qualname] = runs_modules(ctx)
                found[key] = Finding(
                    code=rule.code, path=str(an.module.path), line=node.lineno, col=node.col_offset,
                    end_line=getattr(node, "end_lineno", node.lineno) or node.lineno,
                    end_col=getattr(node, "end_col_offset", node.col_offset) or node.col_offset,
                    summary=hit.summary, why=hit.why or rule.why, fix=hit.fix or rule.fix,
                    root=item.root.display, chain=item.chain, function=an.func.qualname, data=hit.data,
                    def_line=an.func.node.lineno, in_root=an.func.qualname in root_functions,
                    runs_modules=module_runners[an.func.qualname], consequence=hit.consequence or rule.consequence)

    reached = graph.reach(roots, on_statement)
    report = Report(index, roots, reached, indexed_paths=set(index.by_path), errors=dict(index.errors))
    report.set_findings([*(replace(f, in_root=False) if f.in_root and f.function in called else f
                           for f in found.values()), *skipped_findings(graph.skipped)])
    return report


def skipped_findings(skipped) -> list[Finding]:
    """One TCS902 per file listing the functions the analysis gave up on (never a silent gap)."""
    by_path: dict[str, list] = {}
    for item in skipped:
        by_path.setdefault(item.path, []).append(item)
    out = []
    for path, items in by_path.items():
        first = min(items, key=lambda i: i.line)
        names = ", ".join(sorted({f"{i.function} ({i.error.split(':')[0]})" for i in items}))[:300]
        out.append(Finding("TCS902", path, first.line, 0, first.line, 0,
                           summary=f"analysis gave up on {len(items)} compiled function(s) here: {names}",
                           why="code in them was not checked, nor followed further",
                           fix="report it with this file attached", data={"skipped": [vars(i) for i in items]}))
    return out


_REPORTS: dict[tuple, Report] = {}


def report_for_root(root: str | Path, extra_roots: tuple[str, ...] = (),
                    trees: dict[str, ast.Module] | None = None, in_child: bool = False) -> Report:
    """The (cached) findings of the project at ``root``.

    ``in_child=True`` builds them in a forked child that hands back only the findings: this
    process never holds the ASTs, so flake8's ``--jobs`` workers, forked next, start from a
    small heap, and nobody pays for freeing millions of nodes.
    """
    key = (str(Path(root).resolve()), tuple(extra_roots))
    report = _REPORTS.get(key)
    if report is not None:
        return report
    if in_child and "fork" in multiprocessing.get_all_start_methods():
        try:
            report = _REPORTS[key] = _report_in_child(key[0], tuple(extra_roots))
            return report
        except (OSError, RuntimeError):
            pass  # no process to be had, or it failed: build it here
    index = ProjectIndex.build(key[0], trees)
    full = analyze_index(index, tuple(extra_roots))
    report = _REPORTS[key] = full.slim()
    del full
    index.release()  # break the index's reference cycles so the ASTs are freed now
    return report


def _child_main(send, root: str, extra_roots: tuple[str, ...]) -> None:
    try:
        report = analyze_index(ProjectIndex.build(root), extra_roots)
        send.send(("ok", (report.findings, report.indexed_paths, report.errors)))
    except BaseException as exc:  # the parent falls back to building it itself
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()
        os._exit(0)  # no teardown: the process ends, its heap with it


def _report_in_child(root: str, extra_roots: tuple[str, ...]) -> Report:
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(send, root, extra_roots))
    child.start()
    send.close()
    try:
        status, payload = receive.recv()
    except EOFError:
        status, payload = "error", "analysis process died"
    finally:
        child.join()
    if status != "ok":
        raise RuntimeError(payload)
    findings, indexed_paths, errors = payload
    report = Report(None, [], [], indexed_paths=indexed_paths, errors=errors)
    report.set_findings(findings)
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
