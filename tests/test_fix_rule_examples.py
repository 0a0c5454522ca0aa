"""Fixit's expected_replacement: every INVALID example of every rule, through the fixer's default path
(findings from the analysis, default strategy, safe fixes), becomes exactly its ``fixed`` text, or
stays unchanged when it has none. A second run changes nothing."""

from __future__ import annotations

import pytest

from flake8_compile_safe.analysis import clear_cache
from flake8_compile_safe.fixers.api import fix_paths
from flake8_compile_safe.rules import ALL_RULES
from helpers import write_project

EXAMPLES = [(rule, i, ex) for rule in ALL_RULES for i, ex in enumerate(rule.INVALID)]


@pytest.mark.parametrize("rule,i,example", EXAMPLES, ids=[f"{r.code}-invalid-{i}" for r, i, _ in EXAMPLES])
def test_invalid_example_fixes_to_its_expected_output(tmp_path, rule, i, example):
    write_project(tmp_path, {"example.py": example.code})
    clear_cache()
    report = fix_paths([str(tmp_path / "example.py")])
    assert report.analysis == "findings"
    assert not report.errors
    got = (tmp_path / "example.py").read_text()
    assert got == (example.fixed if example.fixed is not None else example.code)
    compile(got, "example.py", "exec")
    clear_cache()
    again = fix_paths([str(tmp_path / "example.py")])
    assert not again.changed, [a.describe() for a in again.applied]
    if example.fixed is None:  # left alone: the summary must say why for each finding
        assert report.unfixed and all(u.reason for u in report.unfixed)


def test_some_examples_are_fixed():
    fixed = {rule.code for rule, _, ex in EXAMPLES if ex.fixed is not None}
    assert {"TCS001", "TCS002", "TCS003", "TCS005"} <= fixed
