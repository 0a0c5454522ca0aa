"""What every rule is: a code, a check over one statement in context, and its own docs and examples.

As in Fixit, a rule's ``VALID`` and ``INVALID`` examples are at once its tests
(``tests/test_rule_examples.py``), its docs page (``docs/rules/TCSnnn.md``, generated) and
its fixer expectations.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable


if TYPE_CHECKING:
    from .context import RuleContext


@dataclass
class Hit:
    node: ast.AST
    summary: str  # what was found, short: "`t.item()` copies a tensor value to the host"
    why: str | None = None  # defaults to the rule's
    fix: str | None = None
    data: dict = field(default_factory=dict)
    consequence: str | None = None  # defaults to the rule's: "a graph break"


@dataclass(frozen=True)
class Example:
    code: str
    note: str = ""
    # INVALID examples: what `compile-safe-fix` (default strategy, safe fixes) makes of ``code``, as
    # Fixit's expected_replacement; None: the fixer leaves it unchanged (its summary says why).
    fixed: str | None = None


class Rule:
    code: str = ""
    name: str = ""
    consequence: str = ""  # what dynamo does, a few words, for the one-line message
    why: str = ""  # one clause, for --compile-safe-explain
    fix: str = ""  # one clause, for --compile-safe-explain
    # Docs page, Ruff style.
    what_it_does: str = ""
    why_bad: str = ""
    use_instead_note: str = ""
    fix_safety: str = ""
    fixes: tuple = ()  # the automatic fixes (fixdata.FixSpec): fixer and docs read the same specs
    VALID: tuple[Example, ...] = ()
    INVALID: tuple[Example, ...] = ()

    def check(self, stmt: ast.stmt, ctx: "RuleContext") -> Iterable[Hit]:
        raise NotImplementedError

    def check_reached(self, facts) -> Iterable:
        """Findings that need the whole walk (the other rules' findings, who calls whom); none by default."""
        return ()


def source_of(node: ast.AST, limit: int = 40) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."
