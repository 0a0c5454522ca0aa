"""Copy a source tree and rewrite the copy with compile-safe-fix; say what changed (summary, diffstat).

Used by ``compile-safe-validate`` (the fixed variant) and by the demo. The copy goes to a directory
this module marks as its own (:data:`MARKER`): a later run replaces a marked directory, and
refuses to touch one it did not make, so nothing of the user's is ever deleted. No torch here.
"""

from __future__ import annotations

import difflib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

COPY_IGNORE = shutil.ignore_patterns("__pycache__", ".git", ".hg", ".venv", "venv", ".tox", ".nox", "*.pyc")
MARKER = ".compile-safe-fixed-copy"


class CopyError(Exception):
    """One line for the user: the destination cannot be used."""


@dataclass
class FileChange:
    path: str  # relative to the copy's root
    added: int
    removed: int
    notes: list[str] = field(default_factory=list)


@dataclass
class FixedCopy:
    source: Path
    dest: Path
    strategy: str
    seconds: float
    files_checked: int
    analysis: str
    changes: list[FileChange]
    fixes: int
    errors: list[str]
    declined: list[str] = field(default_factory=list)  # recipe rewrites recognised but not done, with why

    def summary(self) -> str:
        added = sum(c.added for c in self.changes)
        removed = sum(c.removed for c in self.changes)
        return (f"compile-safe-fix --strategy {self.strategy}: {self.files_checked} files checked, "
                f"{len(self.changes)} changed ({self.fixes} fixes, +{added} -{removed} lines) in "
                f"{self.seconds:.1f} s; analysis: {self.analysis}"
                + (f"; {len(self.errors)} files skipped" if self.errors else ""))

    def diffstat(self) -> list[str]:
        """``git diff --stat`` style: one line per changed file, then the totals."""
        if not self.changes:
            return []
        width = max(len(c.path) for c in self.changes)
        most = max(c.added + c.removed for c in self.changes) or 1
        scale = min(1.0, 40 / most)
        lines = []
        for c in self.changes:
            plus, minus = round(c.added * scale), round(c.removed * scale)
            lines.append(f" {c.path.ljust(width)} | {c.added + c.removed:4d} {'+' * plus}{'-' * minus}")
        added = sum(c.added for c in self.changes)
        removed = sum(c.removed for c in self.changes)
        lines.append(f" {len(self.changes)} file{'s' if len(self.changes) != 1 else ''} changed, "
                     f"{added} insertions(+), {removed} deletions(-)")
        return lines

    def to_json(self) -> dict:
        return {"strategy": self.strategy, "seconds": round(self.seconds, 2), "dest": str(self.dest),
                "files": self.files_checked, "changed": len(self.changes), "fixes": self.fixes,
                "analysis": self.analysis, "errors": self.errors, "declined": self.declined,
                "diffstat": [{"path": c.path, "added": c.added, "removed": c.removed, "notes": c.notes}
                             for c in self.changes]}


def prepare_dest(dest: Path) -> None:
    """Make ``dest`` ready for a fresh copy: absent, or a copy this module made (then removed)."""
    if dest.is_symlink() or dest.is_file():
        raise CopyError(f"{dest}: exists and is not a directory; choose another place for the fixed copy")
    if dest.exists():
        if not (dest / MARKER).is_file():
            if any(dest.iterdir()):
                raise CopyError(f"{dest}: exists and is not a copy made by flake8-compile-safe; "
                                "remove it or choose another place for the fixed copy")
            dest.rmdir()
        else:
            shutil.rmtree(dest)


def _line_counts(old: str, new: str) -> tuple[int, int]:
    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def fix_copy(source: Path, dest: Path, strategy: str = "tensor-index") -> FixedCopy:
    """Copy ``source`` to ``dest`` and fix the copy in place with the fixer's public API.

    Raises :class:`CopyError` for a destination that cannot be used and ``ValueError`` for an
    unknown strategy (before anything is copied).
    """
    from ..fixers import api

    if strategy not in api.STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(api.STRATEGIES)}")
    source, dest = Path(source).resolve(), Path(dest).resolve()
    if dest == source or source in dest.parents:
        raise CopyError(f"{dest}: the fixed copy cannot go inside the tree it copies ({source})")
    prepare_dest(dest)
    shutil.copytree(source, dest, ignore=COPY_IGNORE)
    (dest / MARKER).write_text("a copy made and rewritten by compile-safe-fix; replaced on the next run\n")
    started = time.perf_counter()
    report = api.fix_paths([str(dest)], strategy=strategy)
    seconds = time.perf_counter() - started
    changes = []
    for outcome in report.changed:
        old = outcome.source.text if outcome.source is not None else ""
        added, removed = _line_counts(old, outcome.new_text or "")
        rel = os.path.relpath(os.path.abspath(outcome.path), dest)
        changes.append(FileChange(rel, added, removed, [_note(a, rel) for a in outcome.applied]))
    return FixedCopy(source, dest, strategy, seconds, len(report.files), report.analysis, changes,
                     len(report.notes), [o.error for o in report.errors if o.error], list(report.declined))


def _note(applied, rel: str) -> str:
    """One applied fix as ``CODE path:line fix: what`` with the path relative to the copy."""
    text = f"{applied.code} {rel}:{applied.line} {applied.fix}: {applied.what}"
    return text + (f" [unsafe: {applied.why_unsafe}]" if applied.why_unsafe else "")
