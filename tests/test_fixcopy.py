"""The fixed copy that compile-safe-validate and the demo make: what changed, where it is, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from flake8_compile_safe.validate.fixcopy import MARKER, CopyError, fix_copy

STATEFUL = Path(__file__).parent / "fixtures" / "models" / "stateful"


def test_summary_and_diffstat(tmp_path):
    fixed = fix_copy(STATEFUL, tmp_path / "fixed")
    # the fixer marks the four cache tensors static (four lines added) and turns two `+=` into .add_()
    assert [(c.path, c.added, c.removed) for c in fixed.changes] == [("toycache/model.py", 8, 2)]
    assert fixed.summary().startswith("compile-safe-fix --strategy tensor-index: 3 files checked, 1 changed "
                                      "(6 fixes, +8 -2 lines)")
    assert fixed.diffstat() == [" toycache/model.py |   10 ++++++++--",
                                " 1 file changed, 8 insertions(+), 2 deletions(-)"]
    notes = fixed.changes[0].notes
    assert len(notes) == 6 and all(n.startswith("TCS001 toycache/model.py:") for n in notes), notes
    assert "TCS001 toycache/model.py:29 static-marking: `+=` on a tensor attribute -> .add_()" in notes
    assert (tmp_path / "fixed" / MARKER).is_file()
    assert fixed.to_json()["dest"] == str((tmp_path / "fixed").resolve())
    # the original tree is untouched
    assert (STATEFUL / "toycache" / "model.py").read_text() != (tmp_path / "fixed/toycache/model.py").read_text()


def test_a_second_run_replaces_its_own_copy(tmp_path):
    fix_copy(STATEFUL, tmp_path / "fixed")
    (tmp_path / "fixed" / "stale.py").write_text("x = 1\n")
    fix_copy(STATEFUL, tmp_path / "fixed")
    assert not (tmp_path / "fixed" / "stale.py").exists()


def test_a_directory_it_did_not_make_is_never_deleted(tmp_path):
    mine = tmp_path / "fixed"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(CopyError, match=r"fixed: exists and is not a copy made by flake8-compile-safe"):
        fix_copy(STATEFUL, mine)
    assert (mine / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("")
    with pytest.raises(CopyError, match="not a directory"):
        fix_copy(STATEFUL, tmp_path / "file")


def test_bad_destinations_and_strategy(tmp_path):
    with pytest.raises(CopyError, match="cannot go inside the tree it copies"):
        fix_copy(STATEFUL, STATEFUL / "fixed")
    with pytest.raises(ValueError, match="unknown strategy 'fastest'"):
        fix_copy(STATEFUL, tmp_path / "fixed", "fastest")
    assert not (tmp_path / "fixed").exists()
