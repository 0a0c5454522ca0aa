"""Packaging: the fixer's top-level ``fixers/`` folder installs as ``flake8_compile_safe.fixers``.

Builds a regular wheel from a clean copy of the source (no build isolation: setuptools from the
test environment), checks its contents, then imports it from the unpacked wheel alone.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", "tests")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed in this environment")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=SKIP)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "--disable-pip-version-check", "-w", str(tmp / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    wheels = list((tmp / "dist").glob("*.whl"))
    assert proc.returncode == 0 and wheels, proc.stderr[-2000:]
    return wheels[0]


def test_wheel_has_no_top_level_fixers(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"flake8_compile_safe", wheel.name.split("-py3")[0] + ".dist-info"}
    for module in ("fixers/__init__.py", "fixers/api.py", "fixers/cli.py", "fixers/recipes/__init__.py",
                   "families/toto/recipe.py", "families/toto/factory.py", "validate/harness.py"):
        assert f"flake8_compile_safe/{module}" in names, module
    # every package folder of the source tree is in the wheel (families added later included)
    for init in (REPO / "flake8_compile_safe").rglob("__init__.py"):
        assert str(init.relative_to(REPO)) in names, init
    for init in (REPO / "fixers").rglob("__init__.py"):
        assert "flake8_compile_safe/" + str(init.relative_to(REPO)) in names, init


def test_console_scripts_keep_their_names(wheel):
    archive = zipfile.ZipFile(wheel)
    entry_points = archive.read(next(n for n in archive.namelist() if n.endswith("entry_points.txt"))).decode()
    assert "compile-safe-fix = flake8_compile_safe.fixers.cli:main" in entry_points
    assert "compile-safe-validate = flake8_compile_safe.validate.cli:main" in entry_points


def test_unpacked_wheel_imports_alone(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import importlib.util, flake8_compile_safe.fixers.cli as c, flake8_compile_safe.fixers.recipes as r;"
            "print(c.__file__); print([x.name for x in r.all_recipes()]);"
            "print(importlib.util.find_spec('fixers'))")
    env = dict(os.environ, PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    where, recipes, top_level = proc.stdout.splitlines()
    assert where.startswith(str(site))
    assert "toto" in recipes  # the fixer finds the family recipes through the registry
    assert top_level == "None"  # nothing named `fixers` is installed
    help_text = subprocess.run([sys.executable, "-m", "flake8_compile_safe.fixers.cli", "--help"],
                               capture_output=True, text=True, cwd=tmp_path, env=env)
    assert help_text.returncode == 0 and "compile-safe-fix" in help_text.stdout


def test_editable_install_maps_the_fixer_too():
    spec = importlib.util.find_spec("flake8_compile_safe.fixers.api")
    assert spec is not None and Path(spec.origin) == REPO / "fixers" / "api.py"
