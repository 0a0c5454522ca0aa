"""Shared test helpers: write a small project to disk and lint it the way flake8 would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from flake8_compile_safe.analysis import analyze_index
from flake8_compile_safe.project import ProjectIndex


def write_project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'sample'\n")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def findings(root: Path, extra_roots: tuple[str, ...] = ()):
    return analyze_index(ProjectIndex.build(root), extra_roots).findings


def codes_at(root: Path, extra_roots: tuple[str, ...] = ()) -> set[tuple[str, int, str]]:
    """{(file name, line, code)} for every finding."""
    return {(Path(f.path).name, f.line, f.code) for f in findings(root, extra_roots)}


def run_flake8(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flake8", *args], capture_output=True, text=True, cwd=cwd)
