"""Unit tests of compile-safe-validate that need neither torch nor Toto (fast)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flake8_compile_safe.validate import cli
from flake8_compile_safe.validate.harness import HarnessError, parse_events, read_csv_series

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- CSV input


def test_csv_picks_first_numeric_column(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("ts,value\n" + "".join(f"2024-01-{i:02d},{i * 0.5}\n" for i in range(1, 11)))
    assert read_csv_series(str(p), 10) == [i * 0.5 for i in range(1, 11)]


def test_csv_without_header(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("".join(f"{i}\n" for i in range(5)))
    assert read_csv_series(str(p), 5) == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_csv_no_numeric_column(tmp_path):
    p = tmp_path / "words.csv"
    p.write_text("a,b\nx,y\nz,w\n")
    with pytest.raises(HarnessError, match=r"words\.csv: no numeric column"):
        read_csv_series(str(p), 2)


def test_csv_too_few_rows(tmp_path):
    p = tmp_path / "short.csv"
    p.write_text("v\n1\n2\n3\n")
    with pytest.raises(HarnessError, match=r"short\.csv: numeric column 0 has 3 rows, need at least 10"):
        read_csv_series(str(p), 10)


# ---------------------------------------------------------------------------- bad input -> one line, exit 2


def _run_main(capsys, argv):
    rc = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


def test_missing_checkpoint(capsys, tmp_path):
    rc, err = _run_main(capsys, ["--no-fix", "--checkpoint", str(tmp_path / "nope")])
    assert rc == 2
    assert len(err) == 1 and "nope: checkpoint directory not found" in err[0]


def test_checkpoint_without_weights(capsys, tmp_path):
    rc, err = _run_main(capsys, ["--no-fix", "--checkpoint", str(tmp_path)])
    assert rc == 2
    assert len(err) == 1 and "has no model.safetensors" in err[0]


def test_csv_errors_from_cli(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nfoo\nbar\n")
    rc, err = _run_main(capsys, ["--no-fix", "--csv", str(bad)])
    assert rc == 2 and len(err) == 1 and "bad.csv: no numeric column" in err[0]
    short = tmp_path / "short.csv"
    short.write_text("v\n1\n2\n")
    rc, err = _run_main(capsys, ["--no-fix", "--csv", str(short)])
    assert rc == 2 and len(err) == 1 and "short.csv" in err[0] and "need at least" in err[0]
    rc, err = _run_main(capsys, ["--no-fix", "--csv", str(tmp_path / "absent.csv")])
    assert rc == 2 and len(err) == 1 and "absent.csv: CSV file not found" in err[0]


def test_unknown_mode(capsys):
    rc, err = _run_main(capsys, ["--no-fix", "--mode", "fastest"])
    assert rc == 2 and len(err) == 1 and "unknown mode 'fastest'" in err[0]


def test_unknown_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--config", "huge"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("compile-safe-validate: error:")


def test_bad_input_subprocess_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "flake8_compile_safe.validate.cli", "--no-fix",
                           "--checkpoint", str(tmp_path / "missing")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


# ---------------------------------------------------------------------------- log parsing, recall, checklist

GB = ("Graph break in user code at /x/toto/model/util.py:171\nGraph Break Reason: Encountered graph break "
      "when attempting to trace CALL: a function call, e.g. f(x, y):\n\nUnsupported Tensor.item() call "
      "with capture_scalar_outputs=False\n  Explanation: ...")
SKIP = ("Graph break in user code at /x/toto/model/util.py:205\nGraph Break Reason: Failed to handle graph "
        "break gracefully. Skipping the function and falling back to eager. Graph break encountered:\n\n"
        "Unsupported Tensor.item() call with capture_scalar_outputs=False\n")
RECOMP = ("Recompiling function forward in /x/toto/model/attention.py:189\n    triggered by the following "
          "guard failure(s):\n    - 6/0: layer_idx == 1      # q, k = f(q)  # oot/x/toto/model/attention.py:207 "
          "in forward\n    - User stack trace:\n    -   File \"/x/toto/model/attention.py\", line 207, in forward\n"
          "    -     q, k, v, seq_pos_offset = self.positional_embedding(q, k, v, kv_cache, layer_idx)\n")
RECOMP2 = ("Recompiling function backbone in /x/toto/model/backbone.py:158\n    triggered by the following "
           "guard failure(s):\n    - 0/0: tensor 'inputs' size mismatch at index 2. expected 64, actual 80\n")


def test_parse_events():
    recs = [("torch._dynamo.symbolic_convert.__graph_breaks", "DEBUG", GB),
            ("torch._dynamo.symbolic_convert.__graph_breaks", "DEBUG", SKIP),
            ("torch._dynamo.guards.__recompiles", "DEBUG", RECOMP),
            ("torch._dynamo.guards.__recompiles", "DEBUG", RECOMP2)]
    ev = parse_events(recs, ["/x/"])
    assert [(e["kind"], e["file"], e["line"]) for e in ev] == [
        ("graph_break", "/x/toto/model/util.py", 171),
        ("frame_skip", "/x/toto/model/util.py", 205),
        ("recompile", "/x/toto/model/attention.py", 207),
        ("recompile", "/x/toto/model/backbone.py", 158),
    ]
    assert ev[0]["reason"].startswith("Unsupported Tensor.item()")
    assert ev[2]["reason"] == "layer_idx == 1" and ev[2]["guard"] == "6/0"
    assert ev[3]["reason"].startswith("tensor 'inputs' size mismatch")


def test_annotate_recall_and_summary(tmp_path):
    f = tmp_path / "util.py"
    f.write_text("x\n")
    events = [{"kind": "graph_break", "file": str(f), "line": 1, "reason": "r", "mode": "default"},
              {"kind": "recompile", "file": str(f), "line": 2, "reason": "r", "mode": "default"},
              {"kind": "predicted_cudagraph_skip", "file": None, "line": None, "reason": "r", "mode": "default"}]
    cli.annotate_recall(events, [{"path": str(f), "line": 1, "code": "TCS002", "message": "m"}])
    assert [e["flagged"] for e in events] == [True, False, None]
    assert events[0]["tcs_codes"] == ["TCS002"]
    cli.annotate_recall(events, None)  # linter unavailable: tolerated
    assert all(e["flagged"] is None for e in events)
    cli.annotate_recall(events, [])  # linter ran, found nothing
    assert [e["flagged"] for e in events] == [False, False, None]


def _row(variant, mode, **kw):
    base = dict(variant=variant, mode=mode, graph_breaks=0, frame_skips=0, unique_graphs=2, recompiles=1,
                recompiles_after_warmup=0, recompile_limit_hits=0, cudagraph_skips=None,
                predicted_cudagraph_skips=0, max_abs_diff=1e-6, mae=1.0, mae_diff=1e-7,
                latency_ms_median=10.0, latency_ms_p90=11.0, compile_s=3.0, peak_mem_mb=500.0,
                speedup_vs_eager=2.0, events=[], source="/x", steps=12)
    base.update(kw)
    return base


def test_checklist():
    rows = [_row("fixed", "eager", speedup_vs_eager=1.0), _row("fixed", "default"),
            _row("original", "default", recompiles_after_warmup=3, speedup_vs_eager=0.4)]
    checks = cli.checklist(rows, "fixed", 1.5)
    assert len(checks) == 4 and all(c["ok"] for c in checks)
    bad = cli.checklist([_row("fixed", "default", mae_diff=0.01, predicted_cudagraph_skips=2,
                              recompiles_after_warmup=1, speedup_vs_eager=1.1)], "fixed", 1.5)
    assert [c["ok"] for c in bad] == [False, False, False, False]
    gpu = cli.checklist([_row("fixed", "reduce-overhead", cudagraph_skips=1)], "fixed", 1.0)
    assert gpu[1]["check"] == "no CUDA-graph skips" and not gpu[1]["ok"]


def test_table_and_report(tmp_path):
    rows = [_row("original", "eager"), _row("original", "default", graph_breaks=23),
            _row("fixed", "default", events=[{"kind": "recompile", "file": "/x/toto/a.py", "line": 3,
                                             "reason": "size", "flagged": False}])]
    table = cli.format_table(rows)
    assert "original" in table and "23" in table and "0 (pred)" in table
    meta = {"device": "cpu", "torch": "x", "config": "tiny", "steps": 12, "warmup": 2, "runs": 5,
            "data": "seeded", "command": "compile-safe-validate --quick", "fixer": None}
    written = cli.write_report(tmp_path / "rep", rows, cli.checklist(rows, "fixed", 1.0), meta)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Checklist" in md and "toto/a.py:3" in md
    assert written[0].endswith("report.md")
