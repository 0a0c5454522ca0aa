"""``compile-safe-validate --model MODULE:FACTORY`` on a small stateful model written for these tests.

``tests/fixtures/models/stateful/toycache`` has the hazards on purpose (a cache object passed to
``forward`` and written there in place, an ``.item()`` write head, a tensor slice bound, a
Python-int position); the lines where dynamo reports them carry ``# event: KIND`` markers.
``tests/fixtures/models/stateful_fixed/toycache`` is the same model written compile-safe by hand.
Both run with the analysis backend (no code generation: timings do not matter here).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flake8_compile_safe.analysis import analyze_paths, clear_cache

pytestmark = pytest.mark.torch
pytest.importorskip("torch", reason="needs torch (pip install flake8-compile-safe[validate])")

MODELS = Path(__file__).resolve().parent / "fixtures" / "models"
ORIGINAL, FIXED, BAD = MODELS / "stateful", MODELS / "stateful_fixed", MODELS / "bad"
MODEL_FILE = "toycache/model.py"
FAST = ["--backend", "analysis", "--warmup", "1", "--runs", "1"]


def validate(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "flake8_compile_safe.validate.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


def _run_json(tmp_path_factory, name, args, cwd=None):
    out = tmp_path_factory.mktemp(name) / "out.json"
    proc = validate(*args, *FAST, "--json", str(out), cwd=cwd)
    assert out.is_file(), f"rc {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    doc = json.loads(out.read_text())
    return doc, doc["results"][1], proc


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    # No --path: the default is the directory holding the module's package (found from the cwd).
    return _run_json(tmp_path_factory, "original", ["--model", "toycache.factory:build"], cwd=ORIGINAL)


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    return _run_json(tmp_path_factory, "fixed", ["--model", "toycache.factory:build", "--path", str(FIXED)])


def marked_lines(tree: Path) -> dict[str, set[int]]:
    """{event kind: lines of MODEL_FILE marked ``# event: kind[, kind]``}."""
    out: dict[str, set[int]] = {}
    for number, text in enumerate((tree / MODEL_FILE).read_text().splitlines(), 1):
        m = re.search(r"# event: (.*)$", text)
        for kind in (m.group(1).split(",") if m else []):
            out.setdefault(kind.strip(), set()).add(number)
    return out


def lines_of(row, kind):
    return {e["line"] for e in row["events"] if e["kind"] == kind and e["file"] == MODEL_FILE}


def test_default_path_and_shape(original):
    doc, row, proc = original
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr
    assert doc["path"] == str(ORIGINAL) and doc["model"] == "toycache.factory:build" and doc["family"] is None
    assert [r["mode"] for r in doc["results"]] == ["eager", "default"]
    assert [v["variant"] for v in doc["variants"]] == ["original"]  # --model: no fixer unless --fix
    assert row["error"] is None and row["max_abs_diff"] < 1e-5


def test_each_event_at_its_marked_line(original):
    _, row, _ = original
    marks = marked_lines(ORIGINAL)
    assert set(marks) == {"graph_break", "frame_skip", "recompile", "predicted_cudagraph_skip",
                          "predicted_cudagraph_rerecord"}
    for kind in ("graph_break", "frame_skip", "predicted_cudagraph_skip"):
        assert lines_of(row, kind) == marks[kind], kind
    # The Python-int position: dynamo's guard names the line that reads it; the graph compiled for
    # it is called with a new value every step (a CUDA-graph re-record each).
    assert marks["recompile"] <= lines_of(row, "recompile")
    recompile = next(e for e in row["events"] if e["kind"] == "recompile" and e["line"] in marks["recompile"])
    assert recompile["anchor"] == "guarded_read" and "position" in recompile["reason"]
    assert marks["predicted_cudagraph_rerecord"] <= lines_of(row, "predicted_cudagraph_rerecord")
    rerecord = next(e for e in row["events"] if e["kind"] == "predicted_cudagraph_rerecord"
                    and e["line"] in marks["predicted_cudagraph_rerecord"])
    assert rerecord["count"] >= 6 and "position" in rerecord["reason"]  # at least one per decode step
    skip = next(e for e in row["events"] if e["kind"] == "predicted_cudagraph_skip")
    assert "cache" in skip["reason"] and skip["anchor"] == "mutation"
    assert row["graph_breaks"] >= 1 and row["frame_skips"] >= 1 and row["recompiles"] >= 1
    assert row["predicted_cudagraph_skips"] >= 1
    assert row["predicted_cudagraph_rerecords"] == sum(e["count"] for e in row["events"]
                                                       if e["kind"] == "predicted_cudagraph_rerecord")


def test_flagged_is_the_linters_codes_within_two_lines(original):
    _, row, _ = original
    clear_cache()
    findings = [f for f in analyze_paths([ORIGINAL], root=ORIGINAL) if f.path.endswith(MODEL_FILE)]
    assert findings
    for event in row["events"]:
        if event["file"] != MODEL_FILE:
            continue
        expected = sorted({f.code for f in findings if abs(f.line - event["line"]) <= 2})
        assert event["flagged"] == expected, event
    by_line = {e["line"]: e["flagged"] for e in row["events"] if e["kind"] == "graph_break"}
    item_line = next(iter(marked_lines(ORIGINAL)["graph_break"]))
    assert "TCS002" in by_line[item_line]  # the .item() read: the rule for host reads of tensor values


def test_recall_figures(original):
    _, row, _ = original
    breaks = {(e["file"], e["line"]): e["flagged"] for e in row["events"] if e["kind"] in ("graph_break", "frame_skip")}
    recall = row["static_recall"]["break_skip"]
    assert recall["total"] == len(breaks) == 2
    assert recall["flagged"] == sum(1 for codes in breaks.values() if codes)
    recompiles = {(e["file"], e["line"]): e["flagged"] for e in row["events"] if e["kind"] == "recompile"}
    rc = row["static_recall"]["recompile"]
    assert rc["total"] + rc["outside"] == len(recompiles)


def test_unconfirmed_findings_are_on_executed_lines(original):
    doc, row, _ = original
    executed = {f: set(lines) for f, lines in doc["variants"][0]["executed"].items()}
    assert MODEL_FILE in executed and "toycache/factory.py" in executed
    event_lines = [(e["file"], e["line"]) for e in row["events"]]
    for u in row["unconfirmed_findings"]:
        assert u["line"] in executed[u["file"]], u
        assert not any(f == u["file"] and abs(line - u["line"]) <= 2 for f, line in event_lines), u


def test_fixed_form_compiles_whole(fixed):
    doc, row, proc = fixed
    assert row["error"] is None, row["error"]
    assert row["graph_breaks"] == 0 and row["frame_skips"] == 0
    assert row["recompiles"] == 0 and row["unique_graphs"] == 1
    assert row["predicted_cudagraph_skips"] == 0 and row["predicted_cudagraph_rerecords"] == 0
    assert not [e for e in row["events"] if e["kind"] in ("graph_break", "frame_skip")]
    assert row["max_abs_diff"] < 1e-5
    assert doc["passed"] is (proc.returncode == 0)


def test_fix_flag_adds_a_fixed_variant(tmp_path):
    out = tmp_path / "o.json"
    proc = validate("--model", "badmodels:needs_argument", "--path", str(BAD), "--arg", "width=4", "--fix",
                    "--no-lint", *FAST, "--json", str(out), "--workdir", str(tmp_path / "w"))
    assert out.is_file(), proc.stderr
    doc = json.loads(out.read_text())
    assert doc["workload_args"] == {"width": 4}
    assert [v["variant"] for v in doc["variants"]] == ["original", "fixed"]
    assert doc["variants"][1]["path"] == str(tmp_path / "w" / "fixed") and doc["variants"][1]["fixer"] is not None
    assert all(r["error"] is None for r in doc["results"])
    assert all(e["flagged"] is None for r in doc["results"] for e in r["events"])  # --no-lint
    # both workers timed in lockstep: each took every one of its timed turns, alternating with the other's
    assert [v["timed_in_lockstep_with"] for v in doc["variants"]] == [["fixed"], ["original"]]
    runs = FAST[FAST.index("--runs") + 1]
    for variant in ("original", "fixed"):
        assert (tmp_path / "w" / f"lockstep.{variant}.timed-default.count").read_text() == runs


# ---------------------------------------------------------------------------- bad input: one line, exit 2

BAD_INPUT = [
    ("broken_import:build", "cannot import broken_import: ModuleNotFoundError: No module named "
                            "'a_dependency_nobody_installed'"),
    ("badmodels:nothere", "badmodels has no 'nothere'"),
    ("badmodels:raises", "badmodels:raises() raised RuntimeError: no weights in this sandbox"),
    ("badmodels:wrong_shape", "badmodels:wrong_shape() returned a Doubler, expected a tuple (model, run)"),
    ("badmodels:not_a_module", "badmodels:not_a_module() returned a str as model, expected a torch.nn.Module"),
    ("badmodels:run_fails", "run(model) (eager) failed: RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    ("badmodels:returns_none", "run(model) returned a NoneType, expected a tensor or a tuple of tensors"),
    ("badmodels:needs_argument", "badmodels:needs_argument cannot be called with no arguments: "
                                 "missing a required argument: 'width'"),
]


@pytest.mark.parametrize("spec, message", BAD_INPUT, ids=[s for s, _ in BAD_INPUT])
def test_bad_model_is_one_line_exit_2(spec, message):
    proc = validate("--model", spec, "--path", str(BAD), *FAST)
    assert proc.returncode == 2, proc.stdout[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("compile-safe-validate: error: ") and message in lines[0], lines[0]


def test_a_failing_worker_in_lockstep_is_one_line_and_leaves_no_partner_waiting(tmp_path):
    # both workers run at once (--fix): the original fails its eager run while the fixed one waits
    # for the lock; the CLI stops the fixed worker and prints the original's error, at once
    started = time.monotonic()
    proc = validate("--model", "badmodels:run_fails", "--path", str(BAD), "--fix", "--no-lint", *FAST,
                    "--workdir", str(tmp_path / "w"), "--timeout", "600")
    assert proc.returncode == 2, proc.stdout[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "run(model) (eager) failed: RuntimeError: mat1 and mat2" in lines[0], proc.stderr
    assert "in lockstep" in proc.stdout
    assert time.monotonic() - started < 300  # not the 600 s a partner may wait


def test_family_factory_errors_are_one_line(tmp_path):
    """Toto's factory checks its inputs before importing the model: fast, one line, exit 2."""
    (tmp_path / "ckpt").mkdir()
    words, short = tmp_path / "words.csv", tmp_path / "short.csv"
    words.write_text("name\nfoo\nbar\n")
    short.write_text("v\n1\n2\n")
    cases = [(["--checkpoint", str(tmp_path / "ckpt")], "ckpt: checkpoint directory has no model.safetensors"),
             (["--csv", str(words)], "words.csv: no numeric column"),
             (["--csv", str(short)], "short.csv: numeric column 0 has 2 rows, need at least")]
    for args, message in cases:
        proc = validate("--no-fix", *args, *FAST)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr


def test_worker_refuses_a_package_imported_from_elsewhere(tmp_path):
    """A family's package must come from --path: an installed copy is never measured by mistake."""
    from flake8_compile_safe.validate.options import RunOptions
    from flake8_compile_safe.validate.records import RunResult

    options = RunOptions("badmodels:needs_argument", str(BAD), workload_args={"width": 3}, expect_package="torch",
                         backend="analysis", warmup=1, runs=1)
    options.write(tmp_path / "o.json")
    proc = subprocess.run([sys.executable, "-m", "flake8_compile_safe.validate.harness", str(tmp_path / "o.json"),
                           str(tmp_path / "r.json")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    result = RunResult.from_json(json.loads((tmp_path / "r.json").read_text()))
    assert result.error.startswith(f"{BAD}: imported torch from ") and result.error.endswith("not from this tree")
    assert result.results == []
