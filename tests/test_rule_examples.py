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


def test_messages_start_with_code_and_name_the_path(tmp_path):
    write_project(tmp_path, {"example.py": ALL_RULES[0].INVALID[0].code})
    for finding in findings(tmp_path):
        message = finding.message()
        assert message.startswith(finding.code + " ")
        assert " reached from Model.forward" in message
        assert "; fix: " in message
