"""Which finding each file's fixes must see, and what became of every finding across files.

A fix may edit another file than its finding's (a static mark in the class's initialiser): a finding
is handed to every file its fix may edit, and counts as fixed only when some part of its fix applied
and no part was refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from flake8_compile_safe.findings import Finding

from .outcome import Unfixed
from .rules import targets


def _key(f: Finding) -> tuple:
    return (f.path, f.line, f.col, f.code)


@dataclass
class _Status:
    finding: Finding
    accepted: bool = False
    reasons: list[str] = field(default_factory=list)
    unsafe_fix: str = ""
    recipe: bool = False


class Ledger:
    def __init__(self, strategy: str):
        self.strategy = strategy
        self.by_file: dict[str, list[Finding]] = {}
        self.status: dict[tuple, _Status] = {}

    def add(self, findings: list[Finding], files: set[str]) -> None:
        for f in findings:
            status = self.status.setdefault(_key(f), _Status(f))
            for path in targets(f, self.strategy):
                real = os.path.realpath(path)
                if real in files:
                    self.by_file.setdefault(real, []).append(f)
                else:
                    status.reasons.append(f"its fix edits {os.path.relpath(path)}, which is not among the paths "
                                          "given")

    def for_file(self, path: str) -> list[Finding]:
        return self.by_file.get(os.path.realpath(path), [])

    def skipped(self, path: str, problem: str | None) -> None:
        for f in self.for_file(path):
            self.status[_key(f)].reasons.append(f"{os.path.relpath(path)} was skipped: {problem}")

    def recipe_owned(self, path: str) -> None:
        real = os.path.realpath(path)
        for f in self.for_file(path):
            status = self.status[_key(f)]
            if os.path.realpath(f.path) == real:
                status.recipe = True
            else:
                status.reasons.append(f"{os.path.relpath(path)} is rewritten by a model-family recipe")

    def record(self, path: str, plan) -> None:
        for note in plan.notes:
            status = self.status[_key(note.finding)]
            if note.accepted:
                status.accepted = True
            else:
                status.reasons.append(note.reason)
                status.unsafe_fix = status.unsafe_fix or note.unsafe_fix

    @property
    def total(self) -> int:
        return len(self.status)

    @property
    def recipe_count(self) -> int:
        return sum(1 for s in self.status.values() if s.recipe)

    def unfixed(self) -> list[Unfixed]:
        out = []
        for s in self.status.values():
            if s.recipe or (s.accepted and not s.reasons):
                continue
            reason = s.reasons[0] if s.reasons else "no automatic fix"
            if s.accepted:
                reason = f"partly fixed: {reason}"
            f = s.finding
            out.append(Unfixed(f.code, f.path, f.line, f.col, reason, s.unsafe_fix))
        return sorted(out, key=lambda u: (u.path, u.line, u.col, u.code))
