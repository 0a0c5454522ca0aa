"""Ground the linter in dynamo's own verdict on the real Toto.

Compiles the untouched toto-ts==0.2.0 (tiny config, KV-cache decoding, 12 steps) with the
validation harness (dynamo frontend, aot_autograd backend: no code generation), collects every
graph break and frame skip dynamo logs with its Toto file:line, and checks that
`flake8 --select=TCS` flags each of those lines.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flake8_compile_safe.families.toto import fetch_toto
from helpers import run_flake8

pytestmark = pytest.mark.torch
pytest.importorskip("torch", reason="needs torch (pip install flake8-compile-safe[validate])")


@pytest.fixture(scope="module")
def toto_root():
    return fetch_toto()


@pytest.fixture(scope="module")
def dynamo_events(toto_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("dynamo") / "original.json"
    cmd = [sys.executable, "-m", "flake8_compile_safe.validate.harness", "--source", str(toto_root),
           "--backend", "analysis", "--mode", "default", "--steps", "12", "--warmup", "1", "--runs", "1",
           "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-3000:]
    return json.loads(out.read_text())["events"]


@pytest.fixture(scope="module")
def flagged(toto_root):
    result = run_flake8("--select=TCS", f"--compile-safe-root={toto_root}", str(toto_root / "toto"))
    lines = {}
    for line in result.stdout.splitlines():
        m = re.match(r"(.+?):(\d+):\d+: (TCS\d+)", line)
        lines.setdefault((str(Path(m.group(1)).resolve()), int(m.group(2))), set()).add(m.group(3))
    return lines


def test_dynamo_breaks_the_untouched_model(dynamo_events):
    kinds = [e["kind"] for e in dynamo_events]
    assert kinds.count("graph_break") > 0 and kinds.count("frame_skip") > 0 and kinds.count("recompile") > 0


def test_every_graph_break_and_frame_skip_line_is_flagged(dynamo_events, flagged, toto_root):
    missed = []
    breaks = [e for e in dynamo_events if e["kind"] in ("graph_break", "frame_skip")]
    for event in breaks:
        key = (str(Path(event["file"]).resolve()), event["line"])
        if key not in flagged:
            rel = Path(event["file"]).relative_to(toto_root)
            missed.append(f"{rel}:{event['line']} {event['kind']}: {event['reason']}")
    assert breaks and not missed, "dynamo broke the graph on lines the linter did not flag:\n" + "\n".join(missed)


def test_breaks_are_on_the_expected_toto_lines(dynamo_events, toto_root):
    # The reasons dynamo gives are the hazards the rules describe: .item() (TCS002), a tensor in an
    # assert (TCS004), a data-dependent is_causal (TCS007).
    reasons = {e["reason"] for e in dynamo_events if e["kind"] == "graph_break"}
    assert any("item()" in r for r in reasons)
    assert any("Data-dependent branching" in r for r in reasons)
