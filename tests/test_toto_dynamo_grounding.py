"""Ground the linter in dynamo's own verdict on the real Toto.

Compiles the untouched toto-ts==0.2.0 (tiny config, KV-cache decoding, 12 steps) through
``compile-safe-validate --model`` (dynamo frontend, aot_autograd backend: no code generation; the
run is the session fixture ``toto_model_run``), takes every graph break and frame skip dynamo
logged with its Toto file:line, and checks that ``flake8 --select=TCS`` flags each of those very
lines (exact line, not the cross-check's two-line window).
"""

import re
from pathlib import Path

import pytest

from helpers import run_flake8

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def dynamo_events(toto_model_run):
    return toto_model_run["by"][("original", "default")]["events"]


@pytest.fixture(scope="module")
def flagged(toto_model_run):
    toto_root = toto_model_run["src"]
    result = run_flake8("--select=TCS", f"--compile-safe-root={toto_root}", str(toto_root / "toto"))
    lines = {}
    for line in result.stdout.splitlines():
        m = re.match(r"(.+?):(\d+):\d+: (TCS\d+)", line)
        lines.setdefault((str(Path(m.group(1)).resolve()), int(m.group(2))), set()).add(m.group(3))
    return lines


def test_dynamo_breaks_the_untouched_model(dynamo_events):
    kinds = [e["kind"] for e in dynamo_events]
    assert kinds.count("graph_break") > 0 and kinds.count("frame_skip") > 0 and kinds.count("recompile") > 0


def test_every_graph_break_and_frame_skip_line_is_flagged(dynamo_events, flagged, toto_model_run):
    toto_root = toto_model_run["src"]
    missed = []
    breaks = [e for e in dynamo_events if e["kind"] in ("graph_break", "frame_skip")]
    for event in breaks:
        assert not Path(event["file"]).is_absolute(), event  # reported relative to --path
        key = (str((toto_root / event["file"]).resolve()), event["line"])
        if key not in flagged:
            missed.append(f"{event['file']}:{event['line']} {event['kind']}: {event['reason']}")
    assert breaks and not missed, "dynamo broke the graph on lines the linter did not flag:\n" + "\n".join(missed)


def test_breaks_are_on_the_expected_toto_lines(dynamo_events):
    # The reasons dynamo gives are the hazards the rules describe: .item() (TCS002), a tensor in an
    # assert (TCS004), a data-dependent is_causal (TCS007).
    reasons = {e["reason"] for e in dynamo_events if e["kind"] == "graph_break"}
    assert any("item()" in r for r in reasons)
    assert any("Data-dependent branching" in r for r in reasons)
