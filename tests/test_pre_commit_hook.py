"""The hook as pre-commit users get it: installed by pre-commit itself from this repository."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HAZARD = "import torch\n\n\nclass M(torch.nn.Module):\n    def forward(self, t):\n        return t.item()\n"
FIXED = "import torch\n\n\nclass M(torch.nn.Module):\n    def forward(self, t):\n        return t * 2\n"


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"})


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_hook_fails_on_a_hazard_then_passes_once_fixed(tmp_path):
    work = tmp_path / "user-project"
    work.mkdir()
    git(work, "init", "-q")
    (work / "model.py").write_text(HAZARD)
    git(work, "add", "model.py")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache")}
    # try-repo installs this checkout (uncommitted changes included) into pre-commit's own venv.
    cmd = [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "compile-safe", "--all-files"]
    failed = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env, timeout=900)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "model.py:6:16: TCS002" in failed.stdout

    (work / "model.py").write_text(FIXED)
    git(work, "add", "model.py")
    passed = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env, timeout=900)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout


CALLER = "import torch\nfrom helper import step\n\n\nclass M(torch.nn.Module):\n    def forward(self, t):\n" \
         "        return step(t)\n"
HELPER = "def step(t):\n    return t * 2\n"


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_hook_second_run_is_served_from_the_cache(tmp_path):
    """pre-commit hands the hook the changed files; the second run parses nothing."""
    import json

    work = tmp_path / "user-project"
    work.mkdir()
    git(work, "init", "-q")
    (work / "model.py").write_text(CALLER)
    (work / "helper.py").write_text(HELPER)
    for i in range(5):
        (work / f"unrelated{i}.py").write_text(f"def f{i}(x):\n    return x\n")
    git(work, "add", ".")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache")}
    cmd = [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "compile-safe", "--files", "model.py"]
    stats_file = work / ".compile_safe_cache" / "last_run.json"

    first = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    cold = json.loads(stats_file.read_text())
    assert cold["mode"] == "cold" and cold["parsed"] == cold["files"] == 7, cold

    second = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env, timeout=900)
    assert second.returncode == 0, second.stdout + second.stderr
    served = json.loads(stats_file.read_text())
    assert served["mode"] == "unchanged" and served["parsed"] == 0, served

    # A commit that puts a hazard into the callee: only what it touches is analysed again.
    (work / "helper.py").write_text("def step(t):\n    return t.item()\n")
    git(work, "add", "helper.py")
    third = subprocess.run([*cmd[:-1], "helper.py"], cwd=work, capture_output=True, text=True, env=env,
                           timeout=900)
    assert third.returncode == 1 and "helper.py:2:12: TCS002" in third.stdout, third.stdout + third.stderr
    warm = json.loads(stats_file.read_text())
    assert warm["mode"] == "incremental" and warm["parsed"] < warm["files"], warm
