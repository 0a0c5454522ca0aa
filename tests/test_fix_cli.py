"""CLI and file handling: --diff/--check/--backup/--revert, exit codes, encodings, line endings, bad files,
--version, diff headers, non-Python files, flake8's syntax-error positions, roots options and config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flake8_compile_safe import __version__
from flake8_compile_safe.analysis import clear_cache
from flake8_compile_safe.fixers.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "fix"
SRC = (FIXTURES / "tcs002_keep_tensor.in.py").read_bytes()


@pytest.fixture(autouse=True)
def fresh_analysis():
    clear_cache()
    yield
    clear_cache()


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'sample'\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "ring.py").write_bytes(SRC)
    (tmp_path / "pkg" / "plain.py").write_bytes(b"x = 1  # nothing to fix\n")
    return tmp_path / "pkg"


def test_check_and_diff_write_nothing(tmp_path, capsys):
    pkg = _tree(tmp_path)
    assert main([str(pkg), "--check"]) == 1
    assert main([str(pkg), "--diff"]) == 0
    out = capsys.readouterr().out
    assert "+++ " in out and "index_copy_" in out
    assert (pkg / "ring.py").read_bytes() == SRC


def test_diff_and_check_together(tmp_path, capsys):
    """As black: print the diff and exit 1 when something would change."""
    pkg = _tree(tmp_path)
    assert main([str(pkg), "--diff", "--check"]) == 1
    captured = capsys.readouterr()
    assert "index_copy_" in captured.out and "would change" in captured.err
    assert (pkg / "ring.py").read_bytes() == SRC


def test_diff_headers_have_no_dot_segment(tmp_path, capsys, monkeypatch):
    pkg = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["./pkg", "--diff"]) == 0
    headers = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("--- ", "+++ "))]
    assert headers == ["--- a/pkg/ring.py", "+++ b/pkg/ring.py"]
    assert pkg.is_dir()


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"compile-safe-fix {__version__}"


def test_non_python_file_is_skipped_with_a_note(tmp_path, capsys):
    pkg = _tree(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# not python (\n")
    assert main([str(readme), str(pkg / "ring.py"), "--diff"]) == 0
    err = capsys.readouterr().err
    assert f"{readme}: not a Python file" in err and "syntax" not in err.lower()


def test_script_with_python_shebang_is_python(tmp_path, capsys):
    script = tmp_path / "run"
    script.write_text("#!/usr/bin/env python3\ndef f(:\n")
    assert main([str(script), "--no-analysis"]) == 3
    assert "E999 SyntaxError" in capsys.readouterr().err


@pytest.mark.parametrize("source", [b"def f(:\n    pass\n", b"x = (1,\ny = 2\n", b"def f():\n  x = 1\n    y = 2\n"])
def test_syntax_error_position_matches_flake8(tmp_path, capsys, source):
    bad = tmp_path / "bad.py"
    bad.write_bytes(source)
    assert main([str(bad), "--no-analysis"]) == 3
    ours = capsys.readouterr().err.strip().splitlines()[0]
    flake8 = subprocess.run([sys.executable, "-m", "flake8", "--select=E9", "--isolated", str(bad)],
                            capture_output=True, text=True).stdout.strip()
    # flake8: "bad.py:1:8: E999 SyntaxError: invalid syntax"
    assert ours.startswith(flake8.split(" ")[0]), (ours, flake8)
    assert flake8.split(": ", 1)[1].split(":")[0] in ours


def test_fix_then_check_clean_then_revert(tmp_path, capsys):
    pkg = _tree(tmp_path)
    assert main([str(pkg), "--backup"]) == 0
    assert "1 changed" in capsys.readouterr().out
    assert (pkg / "ring.py.backup").read_bytes() == SRC
    assert not (pkg / "plain.py.backup").exists()
    clear_cache()
    assert main([str(pkg), "--check"]) == 0  # idempotent
    assert main([str(pkg), "--revert"]) == 0
    assert (pkg / "ring.py").read_bytes() == SRC and not (pkg / "ring.py.backup").exists()


def test_backup_never_overwritten_silently(tmp_path, capsys):
    pkg = _tree(tmp_path)
    (pkg / "ring.py.backup").write_bytes(b"something else\n")
    assert main([str(pkg), "--backup"]) == 3
    assert "already exists" in capsys.readouterr().err
    assert (pkg / "ring.py.backup").read_bytes() == b"something else\n"
    assert (pkg / "ring.py").read_bytes() == SRC


def test_bad_files_reported_and_run_goes_on(tmp_path, capsys):
    pkg = _tree(tmp_path)
    (pkg / "broken.py").write_bytes(b"def f(:\n")
    (pkg / "latin.py").write_bytes(b"x = '\xe9'\n")
    assert main([str(pkg)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert any("broken.py:1:8: E999 SyntaxError" in e for e in err)
    assert any("latin.py" in e and "not valid utf-8" in e.lower() for e in err)
    assert b"index_copy_" in (pkg / "ring.py").read_bytes()


def test_crlf_bom_and_cookie_preserved(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'sample'\n")
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(b"\xef\xbb\xbf" + SRC.replace(b"\n", b"\r\n"))
    latin = tmp_path / "cookie.py"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + SRC)
    assert main([str(crlf), str(latin), "-q"]) == 0
    data = crlf.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"index_copy_" in data
    assert data.count(b"\n") == data.count(b"\r\n")  # every line ending still CRLF
    ldata = latin.read_bytes()
    assert b"caf\xe9" in ldata and b"index_copy_" in ldata


def test_untouched_lines_byte_identical(tmp_path):
    pkg = _tree(tmp_path)
    main([str(pkg), "-q"])
    new = (pkg / "ring.py").read_bytes().splitlines()
    old = SRC.splitlines()
    changed = [line for line in new if line not in old]
    expected = (b"index_", b"mark_static", b"is_compiling", b".clone()", b"add_", b"compile-safe-fix")
    assert changed and all(any(w in c for w in expected) for c in changed), changed


def test_strategy_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), "--strategy", "nope"])
    assert exc.value.code == 2


def test_missing_file(tmp_path, capsys):
    assert main([str(tmp_path / "nope.py"), "--no-analysis"]) == 3
    assert "no such file" in capsys.readouterr().err


# -- the summary: never "0 would change" in silence --------------------------------------------------


def test_summary_lists_each_unfixed_finding_with_why(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'sample'\n")
    model = tmp_path / "model.py"
    model.write_text(
        "import torch\n\n\n"
        "class Gate(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        if x.sum() > 0:\n"
        "            x = x * 2\n"
        "        print('step')\n"
        "        return x\n")
    assert main([str(model), "--diff"]) == 0
    err = capsys.readouterr().err
    assert "0 would change" in err
    assert "2 finding(s): 0 fixed, 2 left as they are, with why:" in err
    assert "model.py:6:12: TCS004 no tensor-index rewrite" in err
    assert "model.py:8:9: TCS006 no automatic fix: Not rewritten" in err


def test_unsafe_fix_listed_and_applied_only_when_asked(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'sample'\n")
    model = tmp_path / "model.py"
    model.write_bytes((FIXTURES / "tcs011_preallocated_cache.in.py").read_bytes())
    assert main([str(model), "--diff"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unsafe fix not applied (preallocated-cache)" in captured.err and "--unsafe-fixes" in captured.err
    assert main([str(model), "--diff", "--unsafe-fixes"]) == 0
    captured = capsys.readouterr()
    assert "_grow_keys" in captured.out
    assert "unsafe fix applied: model.py:12: TCS011 preallocated-cache" in captured.err.replace(str(tmp_path) + "/", "")


# -- compiled roots: the same findings as flake8 ---------------------------------------------------------

ROOTLESS = (
    "import torch\n\n\n"
    "class Cache:\n"
    "    def __init__(self):\n"
    "        self.keys = torch.zeros(8, 4)\n"
    "        self.pos = torch.zeros((), dtype=torch.long)\n\n"
    "    def step(self, k: torch.Tensor):\n"
    "        self.keys.add_(k)\n"
    "        self.pos += 1\n"
)


def test_compile_safe_roots_option_reaches_the_fixer(tmp_path, capsys, monkeypatch):
    """Cache.step is compiled only when named a root: without it there is nothing to fix."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'sample'\n")
    (tmp_path / "cache.py").write_text(ROOTLESS)
    monkeypatch.chdir(tmp_path)
    assert main(["cache.py", "--check"]) == 0
    clear_cache()
    assert main(["cache.py", "--check", "--compile-safe-roots", "Cache.step"]) == 1
    flake8 = subprocess.run([sys.executable, "-m", "flake8", "--select=TCS", "--compile-safe-roots=Cache.step",
                             "cache.py"], capture_output=True, text=True, cwd=tmp_path).stdout
    assert "TCS001" in flake8


def test_compile_safe_roots_from_flake8_config(tmp_path, monkeypatch):
    (tmp_path / "setup.cfg").write_text("[flake8]\ncompile-safe-roots = Cache.step\n")
    (tmp_path / "cache.py").write_text(ROOTLESS)
    monkeypatch.chdir(tmp_path)
    assert main(["cache.py", "-q"]) == 0
    text = (tmp_path / "cache.py").read_text()
    assert "mark_static_address(self.keys)" in text and "self.pos.add_(1)" in text


def test_compile_safe_root_must_be_a_directory(tmp_path, capsys):
    assert main([str(tmp_path), "--compile-safe-root", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_cli_runs_as_installed_script(tmp_path):
    pkg = _tree(tmp_path)
    script = Path(sys.executable).parent / "compile-safe-fix"
    out = subprocess.run([str(script), str(pkg), "--check"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 1, out.stderr


def test_comments_of_a_removed_graph_break_are_kept(tmp_path):
    """docs/fixer.md: the call goes, its comments (above it and at its end of line) stay."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'sample'\n")
    model = tmp_path / "model.py"
    model.write_text(
        "import torch\n\n\n"
        "class Counter(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.hits = [0]\n"
        "        self.flag = True\n\n"
        "    def bump(self):\n"
        "        if self.flag:\n"
        "            # split the graph here\n"
        "            torch._dynamo.graph_break()  # (it does not isolate the write)\n"
        "        self.hits[0] += 1\n\n"
        "    def forward(self, x):\n"
        "        self.bump()\n"
        "        return x\n")
    assert main([str(model), "-q"]) == 0
    text = model.read_text()
    assert "graph_break" not in text
    assert ("    @torch.compiler.disable\n    def bump(self):\n        if self.flag:\n"
            "            # split the graph here\n            # (it does not isolate the write)\n"
            "            pass\n") in text
