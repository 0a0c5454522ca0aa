"""Fixit style: every rule's own VALID/INVALID examples are its tests (and its docs)."""

import re

import pytest

from flake8_compile_safe.rules import ALL_RULES
from helpers import findings, write_project

EXAMPLES = [(rule, kind, i, ex) for rule in ALL_RULES
            for kind, examples in (("valid", rule.VALID), ("invalid", rule.INVALID))
            for i, ex in enumerate(examples)]


def test_every_rule_has_examples_of_both_kinds():
    for rule in ALL_RULES:
        assert rule.VALID and rule.INVALID, rule.code


@pytest.mark.parametrize("rule,kind,i,example", EXAMPLES,
                         ids=[f"{r.code}-{k}-{i}" for r, k, i, _ in EXAMPLES])
def test_example(tmp_path, rule, kind, i, example):
    write_project(tmp_path, {"example.py": example.code})
    got = {(f.line, f.code) for f in findings(tmp_path) if f.code == rule.code}
    if kind == "valid":
        assert got == set(), f"{rule.code} fired on its VALID example: {sorted(got)}"
    else:
        # Lines marked `# TCSnnn` in the example are exactly the lines the rule must flag.
        expected = {(n, rule.code) for n, line in enumerate(example.code.splitlines(), 1)
                    if re.search(rf"#.*\b{rule.code}\b", line)}
        assert expected, "an INVALID example must mark its expected lines"
        assert got == expected


INVALID_EXAMPLES = [(rule, i, ex) for rule in ALL_RULES for i, ex in enumerate(rule.INVALID)]


@pytest.mark.parametrize("rule,i,example", INVALID_EXAMPLES, ids=[f"{r.code}-{i}" for r, i, _ in INVALID_EXAMPLES])
def test_messages_are_one_short_line_and_explain_adds_the_rest(tmp_path, rule, i, example):
    write_project(tmp_path, {"example.py": example.code})
    found = [f for f in findings(tmp_path) if f.code == rule.code]
    assert found
    for finding in found:
        message = finding.message()
        assert message.startswith(finding.code + " ") and "\n" not in message
        assert len(message) <= 170, message
        assert f"[{finding.root}]" in message and finding.consequence in message
        explained = finding.message(explain=True)
        assert explained.startswith(message)
        assert f"; {finding.why}; fix: {finding.fix}" in explained
        if len(finding.chain) > 1:
            assert "reached from " + " -> ".join(finding.chain) in explained
