"""Docs pages are generated from the rules: a stale page fails here."""

from flake8_compile_safe.docs import pages
from flake8_compile_safe.rules import ALL_RULES

SECTIONS = ["## What it does", "## Why is this bad", "## Example", "## Use instead", "## Fix safety"]


def test_pages_are_current():
    stale = [str(path) for path, text in pages().items() if not path.is_file() or path.read_text() != text]
    assert not stale, f"run `python -m flake8_compile_safe.docs`; stale: {stale}"


def test_pages_have_ruff_sections_in_order():
    for rule in ALL_RULES:
        text = pages()[next(p for p in pages() if p.name == f"{rule.code}.md")]
        positions = [text.index(section) for section in SECTIONS]
        assert positions == sorted(positions), rule.code
        for example in (*rule.INVALID, *rule.VALID):
            assert example.code.rstrip() in text
