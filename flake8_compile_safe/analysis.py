"""Stage 6, run the rules over every reached function and collect findings (report or fix).

``analyze_paths`` is the one entry point the flake8 plugin, the fixer and the validation suite
share. Results are cached per (project root, extra roots) for the life of the process.
"""

from __future__ import annotations

import ast
import gc
import multiprocessing
from dataclasses import dataclass, field, replace
from pathlib import Path

from .callgraph import CallGraph, Reached, Skipped
from .findings import Finding
from .forked import PendingBuild, wait_for_cache_writes
from .fixfacts import runs_modules
from .project import ProjectIndex, find_project_root
from .roots import Root, find_roots
from .rules import ALL_RULES, ReachedFacts, Rule, RuleContext
from .rules.reached import pack_sites


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
                  rules: tuple[Rule, ...] = ALL_RULES, memo=None, roots: list[Root] | None = None,
                  on_facts=None) -> Report:
    """Run the rules over what the roots reach; ``memo`` replays unchanged functions (incremental).

    ``on_facts(facts)`` sees what the walk found (:class:`.rules.reached.ReachedFacts`) once the
    rules are done: :func:`split_frames` reads the call graph from it."""
    # As in ProjectIndex.build: a heap of millions of AST nodes makes every cyclic-GC pass slow,
    # and the analysis makes no garbage cycles worth collecting.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _analyze(index, extra_roots, rules, memo, roots, on_facts)
    finally:
        if gc_was_enabled:
            gc.enable()


def _analyze(index: ProjectIndex, extra_roots: tuple[str, ...], rules: tuple[Rule, ...], memo,
             roots: list[Root] | None, on_facts=None) -> Report:
    graph = CallGraph(index)
    if roots is None:
        roots = find_roots(index, extra_roots)
    root_functions = {root.func.qualname for root in roots}
    found: dict[tuple, Finding] = {}
    called: set[str] = set()  # functions some compiled code calls: a root among them is not a top root
    calls_of: dict[str, set[str]] = {}  # function -> the project functions it calls (rules that need the walk)
    call_sites: dict[str, list] = {}  # function -> its calls and where, packed (one entry per context)
    module_runners: dict[str, bool] = {}  # function -> runs_modules (asked once per function)
    runner_at: dict[tuple[int, int], bool] = {}  # (analyzer, statement) -> runs_modules there

    def on_statement(item: Reached, stmt: ast.stmt, an) -> list[dict]:
        """The rule hits of one statement, as plain data (what the memo stores)."""
        ctx = RuleContext(an, stmt)
        hits = []
        for rule in rules:
            for hit in rule.check(stmt, ctx):
                node = hit.node
                where = (id(an), id(stmt))
                if where not in runner_at:
                    runner_at[where] = runs_modules(ctx)
                hits.append(dict(
                    code=rule.code, path=str(an.module.path), line=node.lineno, col=node.col_offset,
                    end_line=getattr(node, "end_lineno", node.lineno) or node.lineno,
                    end_col=getattr(node, "end_col_offset", node.col_offset) or node.col_offset,
                    summary=hit.summary, why=hit.why or rule.why, fix=hit.fix or rule.fix,
                    function=an.func.qualname, data=hit.data, def_line=an.func.lineno,
                    runs_modules=runner_at[where], consequence=hit.consequence or rule.consequence))
        return hits

    def on_hits(item: Reached, hits: list[dict], calls: tuple[tuple[str, int, int], ...]) -> None:
        callees = calls_of.setdefault(item.ctx.func.qualname, set())
        for callee, _line, _col in calls:
            called.add(callee)
            callees.add(callee)
        if calls and memo is None:  # with a memo, its records keep the calls (no second copy)
            call_sites.setdefault(item.ctx.func.qualname, []).append(pack_sites(calls))
        for hit in hits:
            key = (hit["code"], hit["line"], hit["col"], hit["path"])
            if key in found:
                continue  # BFS: the first chain to reach a line is a shortest one
            function = hit["function"]
            # The first function context with a hit in a function decides, as in a fresh walk.
            runner = module_runners.setdefault(function, hit["runs_modules"])
            found[key] = Finding(**{**hit, "runs_modules": runner}, root=item.root.display, chain=item.chain,
                                 in_root=function in root_functions)

    reached = graph.reach(roots, on_statement, on_hits, memo)
    facts = ReachedFacts(index, list(found.values()), calls_of, reached, call_sites=call_sites,
                         recorded_calls=memo.calls if memo is not None else None)
    for rule in rules:
        for finding in rule.check_reached(facts):
            found.setdefault((finding.code, finding.line, finding.col, finding.path), finding)
    if on_facts is not None:
        on_facts(facts)
    graph.skipped.extend(Skipped(*gave_up) for gave_up in facts.gave_up)
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
                    trees: dict[str, ast.Module] | None = None, in_child: bool = False,
                    cache_dir: str | Path | None = None) -> Report:
    """The (cached) findings of the project at ``root``.

    A report :func:`begin_report` started is waited for here. ``in_child=True`` builds it in a
    forked child that hands back only the findings (:mod:`.forked`). With ``cache_dir`` the run
    goes through the persistent cache there (:mod:`.incremental`).
    """
    key = (str(Path(root).resolve()), tuple(extra_roots))
    report = _REPORTS.get(key)
    if report is not None:
        return report
    pending = _PENDING.pop(key, None)
    if pending is not None and pending.mine():
        try:
            report = _REPORTS[key] = _received(pending)
            return report
        except (OSError, RuntimeError):
            pass  # the child failed: build it here
    wait_for_cache_writes()  # a run must not read a cache an earlier child is still writing
    if in_child and "fork" in multiprocessing.get_all_start_methods():
        try:
            report = _REPORTS[key] = _received(_start_in_child(key[0], tuple(extra_roots), cache_dir))
            return report
        except (OSError, RuntimeError):
            pass  # no process to be had, or it failed: build it here
    report = _REPORTS[key] = _build_report(key[0], tuple(extra_roots), trees, cache_dir)
    return report


def _build_report(root: str, extra_roots: tuple[str, ...], trees, cache_dir, deliver=None) -> Report | None:
    """The report; None when the cache failed after ``deliver`` already had the findings."""
    if cache_dir is not None:
        from .cache import warn
        from .incremental import cached_report

        try:
            return cached_report(root, extra_roots, cache_dir, trees, deliver)
        except Exception as exc:  # noqa: BLE001 - the cache must never cost a lint run
            warn(f"the cache failed ({type(exc).__name__}: {str(exc)[:200]}); running without it")
            if deliver is not None and deliver.done:
                return None  # the findings are out; what failed was writing the cache
    index = ProjectIndex.build(root, trees)
    full = analyze_index(index, extra_roots)
    report = full.slim()
    del full
    index.release()  # break the index's reference cycles so the ASTs are freed now
    return report


def begin_report(root: str | Path, extra_roots: tuple[str, ...] = (), cache_dir: str | Path | None = None) -> bool:
    """Start building the report of ``root`` in a forked child and return at once (False: no fork)."""
    key = (str(Path(root).resolve()), tuple(extra_roots))
    if key in _REPORTS or key in _PENDING:
        return True
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    try:
        _PENDING[key] = _start_in_child(key[0], key[1], cache_dir)
    except (OSError, RuntimeError):
        return False
    return True


def _start_in_child(root: str, extra_roots: tuple[str, ...], cache_dir) -> PendingBuild:
    wait_for_cache_writes()  # a run must not read a cache an earlier child is still writing
    return PendingBuild(lambda deliver: _build_report(root, extra_roots, None, cache_dir, deliver))


def _received(pending: PendingBuild) -> Report:
    findings, indexed_paths, errors = pending.result()
    report = Report(None, [], [], indexed_paths=indexed_paths, errors=errors)
    report.set_findings(findings)
    return report


_PENDING: dict[tuple, PendingBuild] = {}


def clear_cache() -> None:
    for pending in _PENDING.values():
        if pending.mine():
            pending.abandon()
    _PENDING.clear()
    wait_for_cache_writes()
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
    return unique_sorted(results)


def unique_sorted(findings) -> list[Finding]:
    """One finding per (path, line, column, code), in that order."""
    unique = {(f.path, f.line, f.col, f.code): f for f in findings}
    return sorted(unique.values(), key=lambda f: (f.path, f.line, f.col, f.code))


def split_frames(root: str | Path) -> tuple[list[Finding], dict[str, tuple]]:
    """(the findings of the project at ``root``, {function holding a break: the frames it splits off})
    from a fresh analysis (:mod:`.splits`; the validation checks these against dynamo's frames)."""
    from .splits import predict

    index = ProjectIndex.build(str(Path(root).resolve()))
    predicted: dict[str, tuple] = {}
    try:
        report = analyze_index(index, on_facts=lambda facts: predicted.update(predict(facts)))
        return list(report.findings), predicted
    finally:
        index.release()
