"""Shared test helpers: write a small project to disk and lint it the way flake8 would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass
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


def findings(root: Path, extra_roots: tuple[str, ...] = (), allow_gaps: bool = False):
    """Every finding; fails on TCS902 (a function the analysis gave up on) unless ``allow_gaps``."""
    found = analyze_index(ProjectIndex.build(root), extra_roots).findings
    if not allow_gaps:
        gaps = [f"{f.path}:{f.line}: {f.summary}" for f in found if f.code == "TCS902"]
        assert not gaps, "the analysis gave up on functions:\n" + "\n".join(gaps)
    return found


def codes_at(root: Path, extra_roots: tuple[str, ...] = (), allow_gaps: bool = False) -> set[tuple[str, int, str]]:
    """{(file name, line, code)} for every finding."""
    return {(Path(f.path).name, f.line, f.code) for f in findings(root, extra_roots, allow_gaps)}


def run_flake8(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flake8", *args], capture_output=True, text=True, cwd=cwd)


def toto_source_copy(tmp_path_factory, name: str) -> tuple[Path, Path]:
    """(the fetched toto-ts source, a fresh copy of it to edit); skips where it cannot be fetched."""
    import pytest

    try:
        from flake8_compile_safe.families.toto import copy_toto, fetch_toto

        src = fetch_toto()
    except Exception as exc:  # no network and no cache
        pytest.skip(f"toto-ts source not available: {exc}")
    root = tmp_path_factory.mktemp(name) / "src"
    copy_toto(root)
    return src, root


@dataclass
class FakeFinding:  # the Finding fields the validation cross-check reads
    code: str
    path: str
    line: int
    end_line: int
    summary: str = "s"


def family_findings(name: str, code: str):
    """(source tree, findings of ``code`` in the family's package): the real package from the registry,
    linted as a whole; skips the test when there is no registry to download from."""
    import importlib

    import pytest

    from flake8_compile_safe.analysis import analyze_paths, clear_cache

    family = importlib.import_module(f"flake8_compile_safe.families.{name}").FAMILY
    try:
        tree = family.source()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    clear_cache()
    found = [f for f in analyze_paths([tree / family.package], root=tree) if f.code == code]
    clear_cache()
    return tree, found


def run_source_as_file(path: Path, text: str) -> dict:
    """Write ``text`` to ``path`` and run it as that file, so that dynamo's records name it: its globals."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    namespace: dict = {}
    exec(compile(text, str(path), "exec"), namespace)
    return namespace
