"""CLI and file handling: --diff/--check/--backup/--revert, exit codes, encodings, line endings, bad files."""

from __future__ import annotations

from pathlib import Path

from flake8_compile_safe.fixers.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "fix"
SRC = (FIXTURES / "slice_assign_index_copy.in.py").read_bytes()


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "ring.py").write_bytes(SRC)
    (tmp_path / "pkg" / "plain.py").write_bytes(b"x = 1  # nothing to fix\n")
    return tmp_path / "pkg"


def test_check_and_diff_write_nothing(tmp_path, capsys):
    pkg = _tree(tmp_path)
    assert main([str(pkg), "--check", "--no-analysis"]) == 1
    assert main([str(pkg), "--diff", "--no-analysis"]) == 0
    out = capsys.readouterr().out
    assert "+++ b/" in out and "index_copy_" in out
    assert (pkg / "ring.py").read_bytes() == SRC


def test_fix_then_check_clean_then_revert(tmp_path, capsys):
    pkg = _tree(tmp_path)
    assert main([str(pkg), "--backup", "--no-analysis"]) == 0
    assert "1 changed" in capsys.readouterr().out
    assert (pkg / "ring.py.backup").read_bytes() == SRC
    assert not (pkg / "plain.py.backup").exists()
    assert main([str(pkg), "--check", "--no-analysis"]) == 0  # idempotent
    assert main([str(pkg), "--revert"]) == 0
    assert (pkg / "ring.py").read_bytes() == SRC and not (pkg / "ring.py.backup").exists()


def test_backup_never_overwritten_silently(tmp_path, capsys):
    pkg = _tree(tmp_path)
    (pkg / "ring.py.backup").write_bytes(b"something else\n")
    assert main([str(pkg), "--backup", "--no-analysis"]) == 3
    assert "already exists" in capsys.readouterr().err
    assert (pkg / "ring.py.backup").read_bytes() == b"something else\n"
    assert (pkg / "ring.py").read_bytes() == SRC


def test_bad_files_reported_and_run_goes_on(tmp_path, capsys):
    pkg = _tree(tmp_path)
    (pkg / "broken.py").write_bytes(b"def f(:\n")
    (pkg / "latin.py").write_bytes(b"x = '\xe9'\n")
    assert main([str(pkg), "--no-analysis"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert any("broken.py" in e and "syntax error" in e for e in err)
    assert any("latin.py" in e and "not valid utf-8" in e.lower() for e in err)
    assert b"index_copy_" in (pkg / "ring.py").read_bytes()


def test_crlf_bom_and_cookie_preserved(tmp_path):
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(b"\xef\xbb\xbf" + SRC.replace(b"\n", b"\r\n"))
    latin = tmp_path / "cookie.py"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + SRC)
    assert main([str(crlf), str(latin), "--no-analysis", "-q"]) == 0
    data = crlf.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"index_copy_" in data
    assert data.count(b"\n") == data.count(b"\r\n")  # every line ending still CRLF
    ldata = latin.read_bytes()
    assert b"caf\xe9" in ldata and b"index_copy_" in ldata


def test_untouched_lines_byte_identical(tmp_path):
    f = tmp_path / "ring.py"
    f.write_bytes(SRC)
    main([str(f), "--no-analysis", "-q"])
    new = f.read_bytes().splitlines()
    old = SRC.splitlines()
    changed = [line for line in new if line not in old]
    assert all(b"index_copy_" in c or b"mark_static" in c or b"is_compiling" in c for c in changed)


def test_strategy_usage_error(tmp_path):
    import pytest

    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path), "--strategy", "nope"])
    assert exc.value.code == 2


def test_missing_file(tmp_path, capsys):
    assert main([str(tmp_path / "nope.py"), "--no-analysis"]) == 3
    assert "no such file" in capsys.readouterr().err
