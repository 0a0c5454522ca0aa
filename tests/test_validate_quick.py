"""End-to-end: ``compile-safe-validate --quick`` on the real Toto (CPU, tiny config).

One --quick run (fix a fresh copy + validate original and fixed, inductor + report) is shared by
every test of this module through a module-scoped fixture; it takes 1-3 minutes on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch
pytest.importorskip("torch", reason="needs torch (pip install flake8-compile-safe[validate])")

REPO = Path(__file__).resolve().parents[1]
REQUIRED_KEYS = {"variant", "mode", "graph_breaks", "frame_skips", "unique_graphs", "recompiles",
                 "recompiles_after_warmup", "predicted_cudagraph_skips", "predicted_cudagraph_rerecords",
                 "max_abs_diff", "latency_ms_median", "latency_ms_p90", "compile_s", "peak_mem_mb",
                 "speedup_vs_eager", "events", "unconfirmed_findings", "static_recall", "extra", "error"}
COUNTS = ("unique_graphs", "graph_breaks", "frame_skips", "recompiles")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    work = tmp_path_factory.mktemp("quick")
    out = work / "result.json"
    cmd = [sys.executable, "-m", "flake8_compile_safe.validate.cli", "--quick", "--json", str(out),
           "--workdir", str(work / "w"), "--report", str(work / "report")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert out.is_file(), f"no JSON written (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    doc = json.loads(out.read_text())
    return {"proc": proc, "doc": doc, "rows": doc["results"], "work": work,
            "by": {(r["variant"], r["mode"]): r for r in doc["results"]}}


def test_json_shape(quick):
    doc = quick["doc"]
    assert doc["device"] == "cpu" and doc["family"] == "toto"
    assert doc["model"] == "flake8_compile_safe.families.toto.factory:tiny"
    assert [v["variant"] for v in doc["variants"]] == ["original", "fixed"]
    assert all(v["threads"] == 1 for v in doc["variants"])
    for r in quick["rows"]:
        assert REQUIRED_KEYS <= set(r), REQUIRED_KEYS - set(r)
        assert "mae" in r["extra"]  # Toto's accuracy figure: forecast MAE against the held-out truth
    assert ("original", "eager") in quick["by"] and ("original", "default") in quick["by"]


def test_original_real_counts(quick):
    r = quick["by"][("original", "default")]
    # Toto 0.2.0's KVCache (.item(), tensor slice bounds) breaks the graph and skips frames.
    assert r["graph_breaks"] > 0
    assert r["frame_skips"] > 0
    assert r["unique_graphs"] > 2
    assert r["recompiles"] > 1
    assert r["extra"]["mae_diff"] < 1e-3  # still correct, just slow to compile
    kinds = {e["kind"] for e in r["events"]}
    assert {"graph_break", "frame_skip", "recompile"} <= kinds
    # Every break / skip points at a line of the original Toto tree, relative to it.
    for e in r["events"]:
        if e["kind"] in ("graph_break", "frame_skip"):
            assert e["file"].startswith("toto/") and e["line"] > 0, e


def test_static_recall_column(quick):
    r = quick["by"][("original", "default")]
    assert quick["doc"]["variants"][0]["lint"].endswith("findings")
    breaks = [e for e in r["events"] if e["kind"] in ("graph_break", "frame_skip")]
    assert all(isinstance(e["flagged"], list) for e in breaks)
    assert any(e["flagged"] for e in breaks), "the linter flagged none of dynamo's graph breaks"
    recall = r["static_recall"]["break_skip"]
    assert recall["total"] == len({(e["file"], e["line"]) for e in breaks})
    assert recall["flagged"] == len({(e["file"], e["line"]) for e in breaks if e["flagged"]})


def test_fixed_variant(quick):
    r = quick["by"][("fixed", "default")]
    assert r["error"] is None
    assert r["graph_breaks"] == 0
    assert r["frame_skips"] == 0
    assert r["recompiles"] <= 1
    assert r["recompiles_after_warmup"] == 0
    assert r["predicted_cudagraph_skips"] == 0
    assert r["extra"]["mae_diff"] < 1e-3
    assert r["max_abs_diff"] < 1e-3
    # Same data, same weights: the fixed eager forecast equals the original's.
    eager_mae = {v: quick["by"][(v, "eager")]["extra"]["mae"] for v in ("original", "fixed")}
    assert abs(eager_mae["fixed"] - eager_mae["original"]) < 1e-4
    fixer = quick["doc"]["variants"][1]["fixer"]
    assert fixer["changed"] > 0 and not fixer["errors"]


def test_model_path_gives_the_family_path_counts(quick, toto_model_run):
    """Toto through ``--model MODULE:FACTORY --path SRC`` (analysis backend) = the family path (inductor)."""
    family = quick["by"][("original", "default")]
    model = toto_model_run["by"][("original", "default")]
    assert {k: model[k] for k in COUNTS} == {k: family[k] for k in COUNTS}
    # The figures documented in docs/validation.md for torch 2.13 / toto-ts 0.2.0 (tiny, 12 steps).
    assert tuple(family[k] for k in COUNTS) == (32, 23, 6, 22)
    assert {(e["kind"], e["file"], e["line"]) for e in model["events"]} == \
        {(e["kind"], e["file"], e["line"]) for e in family["events"]}


def test_exit_status_matches_checklist(quick):
    checks = quick["doc"]["checklist"]
    assert checks and all(c["variant"] == "fixed" for c in checks)
    passed = all(c["ok"] for c in checks)
    assert quick["doc"]["passed"] == passed
    assert quick["proc"].returncode == (0 if passed else 1), quick["proc"].stderr[-2000:]
    assert "Traceback" not in quick["proc"].stderr


def test_report_written(quick):
    report = quick["work"] / "report"
    md = (report / "report.md").read_text()
    assert "## Checklist" in md and "## Results" in md and "static recall" in md
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    heads = [t for i, t in enumerate(tokens) if t.type == "inline" and tokens[i - 1].type == "th_open"]
    cells = [t for i, t in enumerate(tokens) if t.type == "inline" and tokens[i - 1].type == "td_open"]
    assert [t.content for t in heads][:3] == ["variant", "mode", "graphs"]
    assert len(cells) == 4 * len(heads)  # original/fixed x eager/default, every row whole
    assert "RANDOM weights" in md and "not Toto's accuracy" in md
    if importlib.util.find_spec("matplotlib") is not None:
        png = report / "chart.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_output_explains_itself(quick):
    out = quick["proc"].stdout
    # progress while compiling: phase, graphs so far, elapsed seconds
    assert re.search(r"\] original: compiling \(default\): first run, \d+ graphs? so far, \d+ s", out), out[:3000]
    assert re.search(r"\] fixed: timed run 1 of 5 \(default", out)
    # what the fixer did
    changed = re.search(r"compile-safe-fix --strategy tensor-index: \d+ files checked, (\d+) changed", out)
    assert changed and f"{changed.group(1)} files changed," in out and "insertions(+)" in out
    # the table's legend, the workload, the recall explained, where the files are
    assert "columns:" in out and "  vs orig comp " in out and "  cg skip " in out
    assert "workload: Toto 'tiny'" in out and "RANDOM weights" in out
    assert re.search(r"the \d+ recompile lines? without a finding: \d+ tensor-shape guards?", out)
    assert f"work directory: {quick['work'] / 'w'}" in out
