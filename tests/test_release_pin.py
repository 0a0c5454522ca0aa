"""The README's pre-commit snippet works as written: its `rev`, the release tag and the package version
agree, and pre-commit runs the hooks from that pin (the tag, or a commit SHA where the tags did not
travel with this copy, as the README says). Also this repository's own hooks need no venv on PATH."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flake8_compile_safe import __version__

REPO = Path(__file__).resolve().parents[1]
HAZARD = "import torch\n\n\nclass M(torch.nn.Module):\n    def forward(self, t):\n        return t.item()\n"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
needs_git = pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(),
                               reason="needs git and a git checkout of this repository")


def _snippet() -> dict:
    readme = (REPO / "README.md").read_text()
    m = re.search(r"### pre-commit\n\n```yaml\n(.*?)```", readme, re.S)
    assert m, "README has no pre-commit snippet under '### pre-commit'"
    return yaml.safe_load(m.group(1))


def _pyproject_version() -> str:
    m = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert m
    return m.group(1)


def _git(*args, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV})


def test_snippet_tag_and_version_agree():
    repo = _snippet()["repos"][0]
    assert repo["rev"] == f"v{_pyproject_version()}" == f"v{__version__}"
    offered = {hook["id"] for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert {hook["id"] for hook in repo["hooks"]} <= offered


@needs_git
def test_the_tag_when_present_is_this_release():
    tag = _snippet()["repos"][0]["rev"]
    if not _git("tag", "-l", tag).stdout.strip():
        pytest.skip(f"this copy has no tag {tag} (tags may not travel with it: the README says to pin a commit)")
    at_tag = _git("show", f"{tag}:pyproject.toml").stdout
    assert f'version = "{tag[1:]}"' in at_tag, f"tag {tag} is not the release of version {tag[1:]}"
    assert _git("cat-file", "-e", f"{tag}:.pre-commit-hooks.yaml").returncode == 0


@needs_git
def test_readme_snippet_runs_under_pre_commit(tmp_path):
    """The snippet as a user pastes it, `repo` pointed at this repository, `rev` as the README says."""
    config = _snippet()
    repo = config["repos"][0]
    repo["repo"] = str(REPO)
    if not _git("tag", "-l", repo["rev"]).stdout.strip():
        repo["rev"] = _git("rev-parse", "HEAD").stdout.strip()  # the README's way without tags
    work = tmp_path / "user-project"
    work.mkdir()
    _git("init", "-q", cwd=work)
    (work / "model.py").write_text(HAZARD)
    (work / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    _git("add", "-A", cwd=work)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "model.py:6:16: TCS002" in proc.stdout
    assert "did not match" not in proc.stdout + proc.stderr


@needs_git
def test_own_hooks_need_no_venv_on_path(tmp_path):
    if not (REPO / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv in this checkout (bash .ci/run makes it)")
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path)),
           "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--files", "flake8_compile_safe/__init__.py",
                           "flake8_compile_safe/rules/__init__.py"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("Passed") == 2


def test_in_venv_says_what_to_do_without_a_venv(tmp_path):
    (tmp_path / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "in-venv", tmp_path / ".ci" / "in-venv")
    proc = subprocess.run(["bash", str(tmp_path / ".ci" / "in-venv"), "flake8", "--version"], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"in-venv: {tmp_path}/.venv/bin/python not found: run 'bash .ci/run' in "
                                   f"{tmp_path} first (it makes .venv)")
