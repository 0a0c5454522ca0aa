"""Typed records of what the fixer did: one per fix applied, one per finding left as it is (with why)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from flake8_compile_safe.fixdata import SAFE


def shown(path: str) -> str:
    """``pkg/x.py`` relative to the current directory when under it, else the path normalised."""
    real = os.path.abspath(path)
    here = os.path.join(os.path.abspath("."), "")
    return os.path.relpath(real) if real.startswith(here) else os.path.normpath(path)


@dataclass(frozen=True)
class AppliedFix:
    code: str  # the rule whose finding(s) it fixes
    path: str
    line: int
    fix: str  # the FixSpec name ("index-copy"), or "recipe:<name>"
    what: str  # one line
    safety: str = SAFE
    why_unsafe: str = ""  # for an unsafe fix: what may change

    def describe(self) -> str:
        text = f"{shown(self.path)}:{self.line}: {self.code} {self.fix}: {self.what}"
        return text + (f" [unsafe: {self.why_unsafe}]" if self.safety != SAFE else "")


@dataclass(frozen=True)
class Unfixed:
    code: str
    path: str
    line: int
    col: int
    reason: str  # why the fixer left it
    unsafe_fix: str = ""  # the unsafe fix --unsafe-fixes would apply ("" : none)

    def describe(self) -> str:
        return f"{shown(self.path)}:{self.line}:{self.col + 1}: {self.code} {self.reason}"
