"""The demo (README command 1) explains itself: the fixer's summary and diffstat, where the fixed copy
is, and why each finding left in it stays. Runs the demo without its compile step (about 20 s)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from flake8_compile_safe.demo import explain_kept, lint
from flake8_compile_safe.families import DEFAULT_FAMILY, get_family

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    report = tmp_path_factory.mktemp("demo") / "compile-safe-report"
    cmd = [sys.executable, "-m", "flake8_compile_safe.demo", "--no-validate", "--report", str(report)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"proc": proc, "report": report, "out": proc.stdout}


def test_demo_shows_the_fixer_summary_and_diffstat(demo):
    out = demo["out"]
    assert "== 2/4 fix a copy" in out
    changed = int(re.search(r"files checked, (\d+) changed", out).group(1))
    # the recipe's static decode touches the cache, the backbone and the forecaster's decoding loop
    assert changed >= 3 and f"{changed} files changed," in out and "insertions(+)" in out
    assert " toto/model/util.py " in out and " toto/inference/forecaster.py " in out
    assert re.search(r"fix: TCS003 toto/model/util\.py:\d+ recipe:toto: tensor write head", out), out


def test_demo_says_where_the_fixed_copy_is(demo):
    fixed = demo["report"] / "fixed"
    assert f"the fixed copy is kept in {fixed}" in demo["out"]
    assert (fixed / "toto" / "model" / "util.py").is_file()
    assert "index_copy_" in (fixed / "toto" / "model" / "util.py").read_text()


def test_every_finding_left_in_the_fixed_copy_has_its_reason(demo):
    out = demo["out"]
    assert "== 3/4 lint the fixed copy:" in out and "each left on purpose" in out
    assert "why it stays:" in out and "no reason recorded" not in out
    family = get_family(DEFAULT_FAMILY)
    fixed = demo["report"] / "fixed"
    found, _ = lint(fixed, family.package)
    explained = explain_kept(found, fixed, family.kept_after_fix)
    assert explained and all(why for _, why in explained), [f["raw"] for f, why in explained if not why]
    # and no reason is stale: each one still matches a finding
    for kept in family.kept_after_fix:
        hits = [f for f, _ in explained if kept.matches(f["file"], f["code"], _line(fixed, f))]
        assert hits, f"no finding left for {kept}"
    assert re.search(r"3/4 lint the fixed copy: (\d+) findings remain \((\d+) before\)", out)


def test_demo_says_how_to_read_a_finding(demo):
    out = demo["out"]
    footer = next(line for line in out.splitlines() if line.startswith("-- ") and " findings (" in line)
    assert "[the compiled root that reaches it]" in footer and "--compile-safe-explain" in footer
    # the fixed copy's findings print as flake8 prints them (file:line:col: CODE ...)
    step3 = out.split("== 3/4")[1]
    listed = [line.strip() for line in step3.splitlines() if re.match(r"^  toto/", line)]
    assert listed and all(re.match(r"^toto/\S+\.py:\d+:\d+: TCS\d{3} ", line) for line in listed), listed


def _line(root: Path, finding: dict) -> str:
    return (root / finding["file"]).read_text().splitlines()[finding["line"] - 1]


def test_demo_rerun_replaces_its_copy_and_never_a_foreign_one(demo, tmp_path):
    foreign = tmp_path / "report" / "fixed"
    foreign.mkdir(parents=True)
    (foreign / "keep.txt").write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "flake8_compile_safe.demo", "--no-validate", "--report",
                           str(tmp_path / "report")], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("compile-safe-demo: ")
    assert "not a copy made by flake8-compile-safe" in proc.stderr
    assert (foreign / "keep.txt").read_text() == "mine"
