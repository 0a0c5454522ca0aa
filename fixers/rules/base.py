"""What every rule fix is: a finding and its typed payload in, a :class:`Proposal` (edits, safety) or a
reason out. The fix specs (name, safety, docs text) come from the rules themselves
(``flake8_compile_safe.fixdata``): one source for the fixer and the rule docs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from flake8_compile_safe.findings import Finding
from flake8_compile_safe.fixdata import SAFE, UNSAFE, FixSpec, Proof

from ..context import FileContext, code
from ..edits import EditSet


class NotFixed(Exception):
    """Raised by a fix that does not apply: ``str()`` says why, for the summary."""


@dataclass
class Proposal:
    code: str
    spec: FixSpec
    key: tuple  # one rewrite: proposals with the same key are merged (several findings, one fix)
    edits: EditSet
    line: int  # where the summary reports it
    what: str
    unsafe_why: str = ""  # non-empty: unsafe, and what may change
    findings: list[Finding] = field(default_factory=list)
    # keep-tensor and tensor-counter need the rewrite of each use: the lines whose slice fixes they enable
    needs_lines: tuple[int, ...] = ()
    enabled_by: tuple | None = None  # a dependent fix: applied only when that proposal is

    @property
    def safety(self) -> str:
        return UNSAFE if self.unsafe_why else SAFE


class RuleFix:
    """The fix(es) of one rule. ``propose`` returns proposals for edits in ``ctx.path`` only."""

    code = ""
    specs: tuple[FixSpec, ...] = ()

    def propose(self, finding: Finding, ctx: FileContext, strategy: str) -> list[Proposal]:
        raise NotImplementedError


def require(proof: Proof, what: str = "", unsafe_ok: bool = True) -> str:
    """'' when proven; the unsafe reason when only inferred (and allowed); else raise NotFixed."""
    if proof.ok:
        return ""
    if proof.inferred and unsafe_ok:
        return proof.why
    raise NotFixed(f"{what}{proof.why}" if what else proof.why)


def has_call(node: cst.CSTNode) -> bool:
    found = False

    class Calls(cst.CSTVisitor):
        def visit_Call(self, _node: cst.Call) -> bool:
            nonlocal found
            found = True
            return False

    node.visit(Calls())
    return found


def atom(node: cst.BaseExpression) -> str:
    """The node's code, parenthesised unless it binds tighter than ``+``."""
    text = code(node).strip()
    if isinstance(node, (cst.Name, cst.Attribute, cst.Subscript, cst.Call, cst.Integer, cst.SimpleString)):
        return text
    return f"({text})"


def single_statement(ctx: FileContext, line: int) -> cst.SimpleStatementLine:
    stmt = ctx.statement_at(line)
    if not isinstance(stmt, cst.SimpleStatementLine):
        raise NotFixed("the statement is not a simple statement")
    if len(stmt.body) != 1:
        raise NotFixed("the statement shares its line with others (`a; b`)")
    return stmt


def resolves_to(ctx: FileContext, node: cst.BaseExpression, *qualified: str) -> bool:
    from ..cstutil import dotted

    name = dotted(node)
    return bool(name) and ctx.names.resolve(name) in qualified


DISABLE = ("torch.compiler.disable", "torch._dynamo.disable")


def is_disabled(ctx: FileContext, fn: cst.FunctionDef) -> bool:
    return any(resolves_to(ctx, d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator, *DISABLE)
               for d in fn.decorators)
