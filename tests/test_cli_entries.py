"""The command lines behave like their peers: --version, plain --help with defaults and exit codes,
``python -m flake8_compile_safe`` as the main entry. No torch needed."""

from __future__ import annotations

import argparse
import subprocess
import sys

from flake8_compile_safe import __version__
from flake8_compile_safe.validate import cli

HAZARD = "import torch\n\n\nclass M(torch.nn.Module):\n    def forward(self, t):\n        return t.item()\n"
CLEAN = "import torch\n\n\nclass M(torch.nn.Module):\n    def forward(self, t):\n        return t * 2\n"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


# ---------------------------------------------------------------------------- compile-safe-validate


def test_validate_version():
    proc = run("-m", "flake8_compile_safe.validate.cli", "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"compile-safe-validate {__version__} (flake8-compile-safe; torch ")


def test_validate_help_is_plain_text_with_defaults_and_exit_codes():
    proc = run("-m", "flake8_compile_safe.validate.cli", "--help")
    assert proc.returncode == 0
    text = proc.stdout
    assert "`" not in text and ":mod:" not in text  # no RST
    assert "exit codes:" in text
    for code, meaning in (("0", "checklist passed"), ("1", "checklist failed"), ("2", "bad input"),
                          ("130", "interrupted")):
        assert any(line.split()[:1] == [code] and meaning in line for line in text.splitlines()), code
    parser = cli.build_parser()
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        help_text = formatter._get_help_string(action)
        assert help_text and help_text.strip(), f"{action.option_strings} has no help"
        default = action.default
        if default not in (None, False, []) and not isinstance(default, bool):
            assert "default" in help_text or "0:" in help_text, f"{action.option_strings}: default not shown"
    assert "(default: tensor-index)" in text.replace("\n                        ", " ")
    assert "--timeout S" in text and "(default: 1800)" in text


# ---------------------------------------------------------------------------- python -m flake8_compile_safe


def test_main_entry_version_and_help():
    proc = run("-m", "flake8_compile_safe", "--version")
    assert proc.returncode == 0 and proc.stdout.startswith(f"flake8-compile-safe {__version__} (flake8 ")
    proc = run("-m", "flake8_compile_safe", "--help")
    assert proc.returncode == 0
    for command in ("fix", "validate", "demo", "flake8 --select=TCS"):
        assert command in proc.stdout


def test_main_entry_lints_like_flake8_select_tcs(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "model.py").write_text(HAZARD)
    proc = run("-m", "flake8_compile_safe", "model.py", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("model.py:6:16: TCS002")
    (tmp_path / "model.py").write_text(CLEAN)
    proc = run("-m", "flake8_compile_safe", cwd=tmp_path)  # no path: the current directory
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr


def test_main_entry_runs_the_other_tools(tmp_path):
    proc = run("-m", "flake8_compile_safe", "fix", "--help")
    assert proc.returncode == 0 and "compile-safe-fix" in proc.stdout
    (tmp_path / "m.py").write_text(CLEAN)
    proc = run("-m", "flake8_compile_safe", "fix", "--check", str(tmp_path / "m.py"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run("-m", "flake8_compile_safe", "validate", "--version")
    assert proc.returncode == 0 and proc.stdout.startswith("compile-safe-validate")
    proc = run("-m", "flake8_compile_safe", "validate", "--bogus")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_main_entry_lint_never_imports_torch(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "model.py").write_text(HAZARD)
    code = ("import sys; from flake8_compile_safe.__main__ import main; rc = main(['model.py']); "
            "print('torch' in sys.modules, rc)")
    proc = run("-c", code, cwd=tmp_path)
    assert proc.stdout.strip().endswith("False 1"), proc.stdout + proc.stderr
