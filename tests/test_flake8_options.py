"""flake8 option values that would turn the linter off silently: an error or a warning naming the value."""

from __future__ import annotations

from helpers import run_flake8, write_project

HAZARD = """\
import torch


class M(torch.nn.Module):
    def forward(self, t):
        return t.item()


def helper(x):
    return x
"""


def _project(tmp_path):
    return write_project(tmp_path / "p", {"model.py": HAZARD})


def _one_line_error(proc, *parts):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("flake8-compile-safe: error: ")
    for part in parts:
        assert part in lines[0]


def test_unknown_code_in_select_fails(tmp_path):
    root = _project(tmp_path)
    _one_line_error(run_flake8("--select", "TCS999", "model.py", cwd=root), "--select TCS999", "TCS001")
    _one_line_error(run_flake8("--extend-select", "TCS5", "model.py", cwd=root), "--extend-select TCS5")
    _one_line_error(run_flake8("--select", "TCS017", "model.py", cwd=root), "TCS016", "TCS902")
    _one_line_error(run_flake8("--select", "E,TCS0099", "model.py", cwd=root), "TCS0099")


def test_unknown_code_in_config_fails(tmp_path):
    root = _project(tmp_path)
    (root / "setup.cfg").write_text("[flake8]\nselect = TCS999\n")
    _one_line_error(run_flake8("model.py", cwd=root), "TCS999")


def test_known_codes_and_prefixes_pass(tmp_path):
    root = _project(tmp_path)
    for select in ("TCS", "TCS0", "TCS00", "TCS002", "TCS008", "TCS012", "TCS015", "TCS9", "TCS901", "TCS902", "E,W"):
        proc = run_flake8("--select", select, "model.py", cwd=root)
        assert proc.returncode in (0, 1) and proc.stderr == "", (select, proc.stderr)
    assert "TCS002" in run_flake8("--select", "TCS00", "model.py", cwd=root).stdout


def test_missing_project_root_fails(tmp_path):
    root = _project(tmp_path)
    _one_line_error(run_flake8("--select=TCS", f"--compile-safe-root={tmp_path / 'nope'}", "model.py", cwd=root),
                    "--compile-safe-root", "nope: no such directory")
    _one_line_error(run_flake8("--select=TCS", "--compile-safe-root=model.py", "model.py", cwd=root),
                    "model.py: is not a directory")


def test_root_name_defined_nowhere_warns_and_the_run_goes_on(tmp_path):
    root = _project(tmp_path)
    proc = run_flake8("--select=TCS", "--compile-safe-roots=Foo.bar,helper", "model.py", cwd=root)
    assert proc.returncode == 1 and "model.py:6:16: TCS002" in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flake8-compile-safe: warning: --compile-safe-roots Foo.bar:")
    # names that can resolve are not warned about: a function, module.function, a class, Class.method
    proc = run_flake8("--select=TCS", "--compile-safe-roots=helper,model.helper,M,M.forward", "model.py", cwd=root)
    assert proc.stderr == "", proc.stderr


def test_option_checks_and_explain_work_together(tmp_path):
    root = _project(tmp_path)
    _one_line_error(run_flake8("--select=TCS999", "--compile-safe-explain", "model.py", cwd=root), "TCS999")
    plain = run_flake8("--select=TCS002", "model.py", cwd=root)
    explained = run_flake8("--select=TCS002", "--compile-safe-explain", "model.py", cwd=root)
    assert plain.returncode == explained.returncode == 1 and explained.stderr == ""
    assert "model.py:6:16: TCS002" in explained.stdout and len(explained.stdout) > len(plain.stdout)
