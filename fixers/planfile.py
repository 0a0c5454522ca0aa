"""Plan one file: the findings' proposals, resolved (safety, dependencies, overlaps), applied in one pass."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from flake8_compile_safe.findings import Finding

from .context import FileContext
from .edits import EditSet, Editor
from .names import add_import_torch
from .outcome import AppliedFix
from .rules import NotFixed, Proposal, fixes_for

USE_REWRITES = ("index-copy", "index-select")  # rewrites of a use that a kept-tensor value goes with


@dataclass
class FindingNote:
    finding: Finding
    accepted: bool
    reason: str = ""  # why not applied
    unsafe_fix: str = ""  # the unsafe fix --unsafe-fixes would apply


@dataclass
class FilePlan:
    module: cst.Module | None = None  # None: nothing applied
    applied: list[AppliedFix] = field(default_factory=list)
    notes: list[FindingNote] = field(default_factory=list)


def _merge(proposals: list[Proposal]) -> list[Proposal]:
    """Proposals with one key are one fix: keep the first, gather the findings (and any unsafe why)."""
    by_key: dict[tuple, Proposal] = {}
    for p in proposals:
        known = by_key.get(p.key)
        if known is None:
            by_key[p.key] = p
            continue
        known.findings.extend(f for f in p.findings if f not in known.findings)
        if p.unsafe_why and p.unsafe_why not in known.unsafe_why:
            known.unsafe_why = "; ".join(x for x in (known.unsafe_why, p.unsafe_why) if x)
        known.edits.merge(p.edits)
    return sorted(by_key.values(), key=lambda p: p.line)


def resolve(proposals: list[Proposal], allow_unsafe: bool) -> tuple[list[Proposal], list[tuple[Proposal, str, str]]]:
    """(accepted, [(rejected, why, unsafe fix name)]).

    A fix that keeps a value a tensor (``needs_lines``) goes with the rewrites of its uses (proposals
    ``enabled_by`` it): all of them or none, unsafe when any is. Unsafe groups need ``allow_unsafe``.
    Two groups rewriting the same node: the first (by line) wins.
    """
    proposals = _merge(proposals)
    keys = {p.key for p in proposals}
    rejected: list[tuple[Proposal, str, str]] = []
    groups: list[list[Proposal]] = []
    grouped: set[int] = set()
    for p in proposals:  # fixes that keep a value a tensor, with the rewrites of its uses
        if not p.needs_lines:
            continue
        uses = [d for d in proposals if d is not p and (d.enabled_by == p.key or (
            d.line in p.needs_lines and d.spec.name in USE_REWRITES))]
        missing = [line for line in p.needs_lines if not any(d.line == line for d in uses)]
        if missing:
            rejected.append((p, f"its use at line {missing[0]} has no rewrite that keeps it a tensor", ""))
            continue
        groups.append([p, *uses])
        grouped |= {id(q) for q in groups[-1]}
    for p in proposals:
        if id(p) in grouped or p.needs_lines:
            continue
        if p.enabled_by is not None:
            if p.enabled_by not in keys or not any(g[0].key == p.enabled_by for g in groups):
                rejected.append((p, "its bound is a value kept on the host (a number read from a tensor or a "
                                    "Python-int attribute) whose own fix does not apply", ""))
            continue
        groups.append([p])
    accepted: list[Proposal] = []
    claimed: set[int] = set()
    for group in groups:
        unsafe = "; ".join(dict.fromkeys(q.unsafe_why for q in group if q.unsafe_why))
        if unsafe and not allow_unsafe:
            rejected += [(q, f"unsafe fix not applied ({group[0].spec.name}): {unsafe}; --unsafe-fixes applies it",
                          group[0].spec.name) for q in group]
            continue
        claims = set().union(*(q.edits.claims() for q in group))
        if claims & claimed:
            rejected += [(q, "its rewrite overlaps another fix of the same code", "") for q in group]
            continue
        claimed |= claims
        if unsafe:
            for q in group:
                q.unsafe_why = q.unsafe_why or unsafe
        accepted.extend(group)
    return accepted, rejected


def plan_without_fixes(findings: list[Finding], strategy: str) -> FilePlan:
    """The findings that have no fix to try under ``strategy``, noted with why (no parse needed)."""
    plan = FilePlan()
    for finding in findings:
        try:
            fixes_for(finding, strategy)
        except NotFixed as exc:
            plan.notes.append(FindingNote(finding, False, str(exc)))
    return plan


def plan_file(ctx: FileContext, findings: list[Finding], strategy: str, allow_unsafe: bool) -> FilePlan:
    plan = FilePlan()
    proposals: list[Proposal] = []
    for finding in findings:
        try:
            for fix in fixes_for(finding, strategy):
                proposals.extend(fix.propose(finding, ctx, strategy))
        except NotFixed as exc:
            plan.notes.append(FindingNote(finding, False, str(exc)))
    accepted, rejected = resolve(proposals, allow_unsafe)
    for p, why, unsafe_fix in rejected:
        plan.notes += [FindingNote(f, False, why, unsafe_fix) for f in p.findings]
    for p in accepted:
        plan.notes += [FindingNote(f, True) for f in p.findings]
    if not accepted:
        return plan
    edits = EditSet()
    for p in accepted:
        edits.merge(p.edits)
    module = ctx.module.visit(Editor(edits, ctx.names.torch))
    if ctx.names.needs_import and module.code != ctx.module.code:
        module = add_import_torch(module)
    plan.module = module
    plan.applied = [AppliedFix(p.code, ctx.path, p.line, p.spec.name, p.what, p.safety, p.unsafe_why)
                    for p in accepted]
    return plan
