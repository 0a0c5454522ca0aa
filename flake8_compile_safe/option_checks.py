"""Checks of the plugin's options as flake8 parsed them: a typo must not turn the linter off silently.

* ``--select`` / ``--extend-select`` naming a TCS code no rule has (``TCS999``): error, exit 2
  (flake8 would check nothing and pass);
* ``--compile-safe-root DIR`` that is not a directory: error, exit 2;
* ``--compile-safe-roots NAME`` that names nothing defined in the project: a warning (the run
  goes on; the name adds no compiled root).

Errors and warnings are one line on stderr, naming the option and the value.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

PLUGIN_CODES = ("TCS900", "TCS901", "TCS902")  # not analysed / analysis failed / gave up: no rule class
PREFIX = "flake8-compile-safe"
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".venv", "venv", "node_modules", "build",
              ".eggs", "site-packages"}


class OptionProblem(Exception):
    """An option value the plugin cannot run with."""


def known_codes() -> list[str]:
    from .rules import RULES_BY_CODE

    return sorted({*RULES_BY_CODE, *PLUGIN_CODES})


def _code_list(codes: list[str]) -> str:
    return ", ".join(codes)


def check_selected(options) -> None:
    """Raise :class:`OptionProblem` for a selected TCS code that no rule has."""
    known = known_codes()
    for option in ("select", "extend_select"):
        for code in getattr(options, option, None) or []:
            code = code.strip().upper()
            if code.startswith("TCS") and len(code) > 3 and not any(k.startswith(code) for k in known):
                flag = "--" + option.replace("_", "-")
                raise OptionProblem(f"{flag} {code}: no TCS rule has this code (known: {_code_list(known)})")


def check_root(root: str | None) -> None:
    if root and not Path(root).is_dir():
        what = "is not a directory" if Path(root).exists() else "no such directory"
        raise OptionProblem(f"--compile-safe-root {root}: {what}")


def _python_files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in filenames:
            if name.endswith(".py"):
                yield Path(dirpath) / name


def _defined_names(roots: list[Path]) -> tuple[set[str], set[str]]:
    """(names of every def and class, names of every module and package) under ``roots``."""
    definitions: set[str] = set()
    modules: set[str] = set()
    pattern = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+([A-Za-z_]\w*)", re.MULTILINE)
    for root in roots:
        for path in _python_files(root):
            modules.add(path.stem)
            modules.update(path.relative_to(root).parts[:-1])
            try:
                definitions.update(pattern.findall(path.read_text(encoding="utf-8", errors="replace")))
            except OSError:
                continue
    return definitions, modules


def unmatched_roots(names: tuple[str, ...], roots: list[Path]) -> list[str]:
    """The ``--compile-safe-roots`` names that cannot name a function here.

    A name that resolves ends with a def or class (a class means its ``forward``), and its other
    parts are classes, functions or modules of the project. Names that pass may still resolve to
    nothing (a wrong module path): the check only catches what surely cannot match.
    """
    if not names:
        return []
    definitions, modules = _defined_names(roots)
    bad = []
    for name in names:
        parts = name.split(".")
        if parts[-1] not in definitions or any(p not in definitions and p not in modules for p in parts[:-1]):
            bad.append(name)
    return bad


def warn(message: str) -> None:
    print(f"{PREFIX}: warning: {message}", file=sys.stderr)


def fail(problem: OptionProblem) -> None:
    """Stop the flake8 run the way flake8 stops on a bad option: one line, exit status 2."""
    print(f"{PREFIX}: error: {problem}", file=sys.stderr)
    raise SystemExit(2)
