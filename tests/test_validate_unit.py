"""Unit tests of compile-safe-validate that need neither torch nor a model run (fast)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from flake8_compile_safe.families.toto.data import DataError, read_csv_series
from flake8_compile_safe.validate import cli
from flake8_compile_safe.validate.crosscheck import crosscheck
from flake8_compile_safe.validate.dynamo_log import parse_events
from flake8_compile_safe.validate.options import OptionError, RunOptions
from flake8_compile_safe.validate.records import Event, ModeResult, RunResult
from flake8_compile_safe.validate.report import (checklist, compare_with_original, format_events, format_table,
                                                 write_report)
from helpers import FakeFinding

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- CSV input (Toto's data)


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
    with pytest.raises(DataError, match=r"words\.csv: no numeric column"):
        read_csv_series(str(p), 2)


def test_csv_too_few_rows(tmp_path):
    p = tmp_path / "short.csv"
    p.write_text("v\n1\n2\n3\n")
    with pytest.raises(DataError, match=r"short\.csv: numeric column 0 has 3 rows, need at least 10"):
        read_csv_series(str(p), 10)


# ---------------------------------------------------------------------------- one option schema


def test_cli_flags_come_from_the_run_options():
    ap = argparse.ArgumentParser()
    RunOptions.add_arguments(ap)
    ns = ap.parse_args(["--mode", "default", "--mode", "max-autotune", "--backend", "analysis", "--runs", "3"])
    opts = RunOptions.from_namespace(ns, factory="m:f", path="/x")
    assert opts.modes == ["default", "max-autotune"] and opts.backend == "analysis" and opts.runs == 3
    assert opts.warmup == RunOptions("m:f", "/x").warmup  # defaults are the dataclass's
    cli_flags = {a.dest for a in cli.build_parser()._actions}
    assert {"modes", "backend", "device", "warmup", "runs", "seed", "threads"} <= cli_flags


def test_run_options_round_trip_and_checks(tmp_path):
    opts = RunOptions("pkg.mod:build", "/tree", variant="fixed", workload_args={"steps": 3}, modes=["default"])
    opts.write(tmp_path / "o.json")
    assert RunOptions.read(tmp_path / "o.json") == opts
    with pytest.raises(OptionError, match="unknown run options: bogus"):
        RunOptions.from_json({**opts.to_json(), "bogus": 1})
    with pytest.raises(OptionError, match="missing run options: path"):
        RunOptions.from_json({"factory": "a:b"})
    with pytest.raises(OptionError, match="unknown mode 'fastest'"):
        RunOptions("a:b", "/t", modes=["fastest"]).check()
    with pytest.raises(OptionError, match="--runs must be >= 1"):
        RunOptions("a:b", "/t", runs=0).check()


def test_records_round_trip():
    row = ModeResult("original", "default", graph_breaks=2, extra={"mae": 1.5},
                     events=[Event("graph_break", "pkg/m.py", 3, "item()", count=2, flagged=["TCS002"],
                                   anchor="dynamo")])
    row.break_recall.flagged, row.break_recall.total, row.break_recall.outside = 1, 1, 2
    data = json.loads(json.dumps(row.to_json()))
    assert data["static_recall"]["break_skip"] == {"flagged": 1, "total": 1, "recall": 1.0, "outside": 2}
    assert ModeResult.from_json(data) == row
    run = RunResult("original", "m:f", "/t", results=[row], executed={"pkg/m.py": [1, 3]})
    assert RunResult.from_json(json.loads(json.dumps(run.to_json()))) == run


# ---------------------------------------------------------------------------- dynamo's log

GB = ("Graph break in user code at /x/toto/model/util.py:171\nGraph Break Reason: Encountered graph break "
      "when attempting to trace CALL: a function call, e.g. f(x, y):\n\nUnsupported Tensor.item() call "
      "with capture_scalar_outputs=False\n  Explanation: ...")
SKIP = ("Graph break in user code at /x/toto/model/util.py:205\nGraph Break Reason: Failed to handle graph "
        "break gracefully. Skipping the function and falling back to eager. Graph break encountered:\n\n"
        "Unsupported Tensor.item() call with capture_scalar_outputs=False\n")
# Two cache entries failed; the first listed (newest) has a user stack two frames deep.
RECOMP = ("Recompiling function forward in /x/toto/model/attention.py:189\n    triggered by the following "
          "guard failure(s):\n    - 6/1: layer_idx == 2      # q = f(q)  # oot/x/toto/model/attention.py:149 "
          "in run\n    - User stack trace:\n    -   File \"/x/toto/model/attention.py\", line 207, in forward\n"
          "    -     q = self.run(q, layer_idx)\n    -   File \"/x/toto/model/attention.py\", line 149, in run\n"
          "    -     q = f(q)\n"
          "    - 6/0: layer_idx == 1      # k = g(k)  # oot/x/toto/model/attention.py:120 in forward\n"
          "    - User stack trace:\n    -   File \"/x/toto/model/attention.py\", line 120, in forward\n")
RECOMP2 = ("Recompiling function backbone in /x/toto/model/backbone.py:158\n    triggered by the following "
           "guard failure(s):\n    - 0/0: tensor 'inputs' size mismatch at index 2. expected 64, actual 80\n")
LIMIT = "torch._dynamo hit config.recompile_limit (8)\n   function: 'forward' (/x/toto/model/attention.py:189)"


def test_parse_events():
    recs = [("torch._dynamo.symbolic_convert.__graph_breaks", "DEBUG", GB),
            ("torch._dynamo.symbolic_convert.__graph_breaks", "DEBUG", SKIP),
            ("torch._dynamo.guards.__recompiles", "DEBUG", RECOMP),
            ("torch._dynamo.guards.__recompiles", "DEBUG", RECOMP2),
            ("torch._dynamo.convert_frame", "WARNING", LIMIT)]
    events, limit_hits = parse_events(recs, ["/x"])
    assert [(e.kind, e.file, e.line, e.anchor) for e in events] == [
        ("graph_break", "/x/toto/model/util.py", 171, "dynamo"),
        ("frame_skip", "/x/toto/model/util.py", 205, "dynamo"),
        # the innermost frame of the first failure's stack: where the guarded value is read
        ("recompile", "/x/toto/model/attention.py", 149, "guarded_read"),
        # no stack for a size guard on an argument: the recompiled function's def line
        ("recompile", "/x/toto/model/backbone.py", 158, "function_def"),
    ]
    assert events[0].reason.startswith("Unsupported Tensor.item()")
    assert events[2].reason == "layer_idx == 2"
    # the frame dynamo recompiled, whatever line the event is anchored at
    assert events[2].frame == ["forward", "/x/toto/model/attention.py", 189]
    assert events[3].frame == ["backbone", "/x/toto/model/backbone.py", 158]
    assert events[3].reason.startswith("tensor 'inputs' size mismatch")
    assert limit_hits == 1


def test_recompile_stack_outside_the_tree_falls_back_to_def_line():
    events, _ = parse_events([("torch._dynamo.guards.__recompiles", "DEBUG", RECOMP)], ["/elsewhere"])
    assert [(e.file, e.line, e.anchor) for e in events] == [("/x/toto/model/attention.py", 189, "function_def")]


# ---------------------------------------------------------------------------- cross-check with the linter


def _run(tmp_path, events):
    row = ModeResult("original", "default", events=events)
    return RunResult("original", "m:f", str(tmp_path), results=[ModeResult("original", "eager"), row],
                     executed={"pkg/a.py": [10, 11, 20, 30, 40]})


def test_crosscheck_flags_recall_and_unconfirmed(tmp_path):
    a = str(tmp_path / "pkg" / "a.py")
    findings = [FakeFinding("TCS002", a, 12, 12),  # 2 lines from the break at 10: flags it
                FakeFinding("TCS003", a, 20, 20),  # executed, no event near: unconfirmed
                FakeFinding("TCS001", a, 25, 25),  # not executed: not listed
                FakeFinding("TCS004", a, 39, 41),  # executed (line 40), recompile at 41 is near: confirmed
                FakeFinding("TCS002", str(tmp_path.parent / "other.py"), 1, 1)]  # outside the tree
    events = [Event("graph_break", "pkg/a.py", 10, "item"), Event("frame_skip", "pkg/a.py", 10, "item"),
              Event("graph_break", "pkg/a.py", 30, "sdpa"), Event("recompile", "pkg/a.py", 41, "x == 1"),
              Event("graph_break", "/usr/lib/torch/x.py", 5, "outside"),
              Event("predicted_cudagraph_rerecord", None, None, "no line")]
    run = _run(tmp_path, events)
    crosscheck(run, findings)
    row = run.results[1]
    assert [e.flagged for e in row.events] == [["TCS002"], ["TCS002"], [], ["TCS004"], None, None]
    # one line that is both a break and a skip counts once; the torch line is outside the tree
    assert (row.break_recall.flagged, row.break_recall.total, row.break_recall.outside) == (1, 2, 1)
    assert (row.recompile_recall.flagged, row.recompile_recall.total) == (1, 1)
    assert [(u.code, u.file, u.line) for u in row.unconfirmed_findings] == [("TCS003", "pkg/a.py", 20)]
    assert row.executed_findings == 2  # lines 20 and 39-41 ran; lines 12 and 25 did not
    assert run.results[0].events == [] and run.results[0].unconfirmed_findings == []


def test_crosscheck_state_named_by_a_guard_confirms_the_write(tmp_path):
    a = str(tmp_path / "pkg" / "a.py")
    flag = FakeFinding("TCS010", a, 20, 20)
    flag.data = {"state": "Layer.is_initialized"}
    grown = FakeFinding("TCS011", a, 30, 30)
    grown.data = {"state": "Layer.keys"}
    other = FakeFinding("TCS011", a, 40, 40)
    other.data = {"state": "Layer.values"}  # no guard or re-record names it
    closure = FakeFinding("TCS010", a, 11, 11)
    closure.data = {"state": "closure variable keys"}  # a local name: never matched by name
    events = [Event("recompile", "pkg/b.py", 5, "cache.layers[0].is_initialized == False"),
              Event("predicted_cudagraph_rerecord", "pkg/b.py", 9,
                    "graph 3 called with 4 distinct values of (L['cache'].layers[0].keys.size()[2])"),
              Event("recompile", "pkg/b.py", 7, "len(x.values()) == 2")]
    run = _run(tmp_path, events)
    crosscheck(run, [flag, grown, other, closure])
    row = run.results[1]
    assert [(u.code, u.line) for u in row.unconfirmed_findings] == [("TCS010", 11), ("TCS011", 40)]
    assert row.executed_findings == 4


def test_crosscheck_branch_on_state_named_by_a_guard_is_confirmed(tmp_path):
    a = str(tmp_path / "pkg" / "a.py")
    branch = FakeFinding("TCS004", a, 20, 20)
    branch.data = {"value": "intstate", "state": "Layer.is_initialized"}
    tensor_branch = FakeFinding("TCS004", a, 30, 30)
    tensor_branch.data = {"value": "tensor"}  # names no state: never matched by name
    events = [Event("recompile", "pkg/b.py", 5, "cache.layers[0].is_initialized == False")]
    run = _run(tmp_path, events)
    crosscheck(run, [branch, tensor_branch])
    assert [(u.code, u.line) for u in run.results[1].unconfirmed_findings] == [("TCS004", 30)]


def test_crosscheck_number_reaching_a_line_of_a_rerecorded_graph_confirms_it(tmp_path):
    """A re-record is anchored where the varying number is first used; the lines it reaches
    through number arithmetic (``Event.lines``) confirm the findings that say a number is used there."""
    a = str(tmp_path / "pkg" / "a.py")
    bound = FakeFinding("TCS003", a, 20, 20)  # `x[:, n:]`, n reaches line 20: confirmed
    far = FakeFinding("TCS003", a, 40, 40)  # the number does not reach line 40
    write = FakeFinding("TCS001", a, 30, 30)  # reached, but a mutation is not about a number
    events = [Event("predicted_cudagraph_rerecord", "pkg/a.py", 10, "graph 1 called with 5 distinct values of (n)",
                    lines=[["pkg/a.py", 20], ["pkg/a.py", 30], ["pkg/b.py", 40]])]
    run = _run(tmp_path, events)
    crosscheck(run, [bound, far, write])
    assert [(u.code, u.line) for u in run.results[1].unconfirmed_findings] == [("TCS001", 30), ("TCS003", 40)]


GB_NESTED = ("Graph break in user code at /x/toto/model/util.py:171\nGraph Break Reason: Encountered graph break "
             "when attempting to trace CALL: a function call, e.g. f(x, y):\n\nUnsupported Tensor.item() call\n\n"
             "User code traceback:\n  File \"/elsewhere/run.py\", line 3, in <module>\n    m(x)\n"
             "  File \"/x/toto/model/transformer.py\", line 329, in forward\n    n = kv_cache.seq_len(1)\n"
             "  File \"/x/toto/model/util.py\", line 175, in seq_len\n    return self.current_len(i)\n"
             "  File \"/x/toto/model/util.py\", line 171, in current_len\n    return int(t.item())\n")


def test_break_in_a_helper_confirms_the_call_that_reached_it(tmp_path):
    """Dynamo anchors a break at the ``.item()`` in the helper; its traceback names the call sites in
    the tree, and a TCS002 there (a call returning a number read from tensor data) is confirmed."""
    (event,), _ = parse_events([("torch._dynamo.symbolic_convert.__graph_breaks", "DEBUG", GB_NESTED)], ["/x"])
    assert (event.file, event.line) == ("/x/toto/model/util.py", 171)
    assert event.lines == [["/x/toto/model/transformer.py", 329], ["/x/toto/model/util.py", 175]]
    a = str(tmp_path / "pkg" / "a.py")
    call = FakeFinding("TCS002", a, 20, 20)
    bound = FakeFinding("TCS003", a, 30, 30)  # a slice bound is not confirmed by a break's call site
    events = [Event("graph_break", "pkg/b.py", 5, "item", lines=[["pkg/a.py", 20], ["pkg/a.py", 30]])]
    run = _run(tmp_path, events)
    crosscheck(run, [call, bound])
    assert [(u.code, u.line) for u in run.results[1].unconfirmed_findings] == [("TCS003", 30)]


def test_crosscheck_without_linter(tmp_path):
    run = _run(tmp_path, [Event("graph_break", "pkg/a.py", 10, "item")])
    crosscheck(run, None)
    row = run.results[1]
    assert row.events[0].flagged is None and row.unconfirmed_findings == []
    assert (row.break_recall.total, row.break_recall.outside) == (0, 1)


# ---------------------------------------------------------------------------- checklist, table, report


def _row(variant, mode, **kw):
    base = dict(unique_graphs=2, recompiles=1, max_abs_diff=1e-6, latency_ms_median=10.0, latency_ms_p90=11.0,
                compile_s=3.0, peak_mem_mb=500.0, speedup_vs_eager=2.0, extra={"mae": 1.0})
    base.update(kw)
    return ModeResult(variant, mode, **base)


def test_checklist():
    rows = [_row("fixed", "eager", speedup_vs_eager=1.0), _row("fixed", "default"),
            _row("original", "default", recompiles_after_warmup=3, speedup_vs_eager=0.4)]
    checks = checklist(rows, "fixed", 1.5, 1e-3)
    assert len(checks) == 5 and all(c.ok for c in checks)
    bad = checklist([_row("fixed", "default", max_abs_diff=0.01, predicted_cudagraph_skips=2,
                          recompiles_after_warmup=1, speedup_vs_eager=1.1)], "fixed", 1.5, 1e-3)
    assert [c.ok for c in bad] == [True, False, False, False, False]
    gpu = checklist([_row("fixed", "reduce-overhead", cudagraph_skips=1)], "fixed", 1.0, 1e-3)
    assert gpu[2].check == "no CUDA-graph skips" and not gpu[2].ok
    failed = checklist([_row("fixed", "default", error="TypeError: boom")], "fixed", 1.0, 1e-3)
    assert [(c.check, c.ok) for c in failed] == [("runs under torch.compile", False)]


def test_speedups_vs_the_original():
    """The fixed rows are compared with the original's eager run and its compiled run in the same mode."""
    rows = [_row("original", "eager", latency_ms_median=80.0, cpu_ms_median=60.0),
            _row("original", "default", latency_ms_median=40.0, cpu_ms_median=30.0),
            _row("fixed", "eager", latency_ms_median=100.0, cpu_ms_median=50.0, max_abs_diff_vs_reference_eager=2e-6),
            _row("fixed", "default", latency_ms_median=20.0, cpu_ms_median=15.0, max_abs_diff_vs_reference_eager=3e-6)]
    compare_with_original(rows)
    orig_eager, orig_comp, fixed_eager, fixed_comp = rows
    assert orig_eager.speedup_vs_original_eager is None and orig_comp.speedup_vs_original_compiled is None
    assert fixed_eager.speedup_vs_original_eager == 0.8 and fixed_eager.speedup_vs_original_compiled is None
    assert fixed_comp.speedup_vs_original_eager == 4.0 and fixed_comp.speedup_vs_original_compiled == 2.0
    assert fixed_comp.cpu_speedup_vs_original_eager == 4.0
    header = format_table(rows).splitlines()[0]
    assert "vs orig eager" in header and "vs orig comp" in header and "diff orig eager" in header
    assert "4.00x" in format_table(rows).splitlines()[-1]
    doc = fixed_comp.to_json()
    assert doc["speedup_vs_original_compiled"] == 2.0 and doc["max_abs_diff_vs_reference_eager"] == 3e-6
    assert ModeResult.from_json(doc).speedup_vs_original_eager == 4.0
    checks = checklist(rows, "fixed", 1.0, 1e-5)
    assert any(c.check == "max abs diff vs the original eager < 1e-05" and c.ok for c in checks)
    assert not [c for c in checklist(rows, "fixed", 1.0, 1e-6) if "original eager" in c.check][0].ok


def test_table_events_and_report(tmp_path):
    rows = [_row("original", "eager"), _row("original", "default", graph_breaks=23, predicted_cudagraph_rerecords=4),
            _row("fixed", "default", events=[Event("recompile", "toto/a.py", 3, "size", flagged=[])],
                 unconfirmed_findings=[])]
    table = format_table(rows)
    assert "original" in table and "23" in table and "0 (pred)" in table and "4 (pred)" in table
    assert "mae" in table.splitlines()[0]
    assert "toto/a.py:3" in format_events(rows) and "[not flagged: other guard]" in format_events(rows)
    meta = {"model": "m:f", "path": "/x", "device": "cpu", "torch": "x", "warmup": 2, "runs": 5,
            "workload_args": {}, "command": "compile-safe-validate --quick", "fixer": None}
    written = write_report(tmp_path / "rep", rows, checklist(rows, "fixed", 1.0, 1e-3), meta)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Checklist" in md and "toto/a.py:3" in md
    assert written[0].endswith("report.md")


# ---------------------------------------------------------------------------- bad input -> one line, exit 2


def _run_main(capsys, argv):
    rc = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


def test_missing_checkpoint(capsys, tmp_path):
    rc, err = _run_main(capsys, ["--no-fix", "--checkpoint", str(tmp_path / "nope")])
    assert rc == 2
    assert len(err) == 1 and "nope: checkpoint directory not found" in err[0]


def test_missing_csv(capsys, tmp_path):
    rc, err = _run_main(capsys, ["--no-fix", "--csv", str(tmp_path / "absent.csv")])
    assert rc == 2 and len(err) == 1 and "absent.csv: CSV file not found" in err[0]


def test_unknown_mode(capsys):
    rc, err = _run_main(capsys, ["--no-fix", "--mode", "fastest"])
    assert rc == 2 and len(err) == 1 and "unknown mode 'fastest'" in err[0]


def test_unknown_family_and_workload(capsys):
    rc, err = _run_main(capsys, ["--family", "nosuchmodel"])
    assert rc == 2 and len(err) == 1 and "unknown model family 'nosuchmodel'" in err[0]
    rc, err = _run_main(capsys, ["--config", "huge"])
    assert rc == 2 and len(err) == 1 and "has no workload 'huge'" in err[0]


def test_bad_model_spec(capsys, tmp_path):
    rc, err = _run_main(capsys, ["--model", "no_colon_here"])
    assert rc == 2 and len(err) == 1 and "expected MODULE:FACTORY" in err[0]
    rc, err = _run_main(capsys, ["--model", "surely_not_a_module_here.sub:build"])
    assert rc == 2 and len(err) == 1 and "cannot import surely_not_a_module_here.sub" in err[0]
    rc, err = _run_main(capsys, ["--model", "m:f", "--path", str(tmp_path / "absent")])
    assert rc == 2 and len(err) == 1 and "--path is not a directory" in err[0]
    rc, err = _run_main(capsys, ["--model", "m:f", "--path", str(tmp_path), "--arg", "no-equals"])
    assert rc == 2 and len(err) == 1 and "expected KEY=VALUE" in err[0]


def test_unknown_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--bogus"])
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


def test_aggregate_makes_event_lines_relative_and_keeps_every_call_path(tmp_path):
    from flake8_compile_safe.validate.harness import aggregate

    root = tmp_path / "tree"
    a, b = str(root / "pkg" / "a.py"), str(root / "pkg" / "b.py")
    events = [Event("graph_break", b, 5, "item", lines=[[a, 20], ["/usr/lib/x.py", 3]]),
              Event("graph_break", b, 5, "item", lines=[[a, 20], [a, 40]])]
    (merged,) = aggregate(events, str(root))
    assert merged.count == 2 and merged.file == "pkg/b.py"
    assert merged.lines == [["pkg/a.py", 20], ["pkg/a.py", 40]]


# ---------------------------------------------------------------------------- every failing guard of a recompile

GUARDS = json.dumps([["L['cache'].layers[0].is_initialized == False", "/x/pkg/a.py", 20],
                     ["not L['kv']", "/x/pkg/a.py", 40], ["G['flag'] == 1", None, None]])


def test_failing_guards_ride_on_the_recompile_just_before_them():
    recs = [("torch._dynamo.guards.__recompiles", "DEBUG", RECOMP2),
            ("compile_safe.failing_guards", "DEBUG", GUARDS),
            ("torch._dynamo.symbolic_convert.__graph_breaks", "DEBUG", GB),
            ("compile_safe.failing_guards", "DEBUG", GUARDS)]  # not after a recompile: dropped
    (recompile, brk), _ = parse_events(recs, ["/x"])
    assert recompile.reason.startswith("tensor 'inputs' size mismatch")  # the anchor stays dynamo's first
    assert recompile.guards == json.loads(GUARDS) and brk.guards is None
    row = ModeResult("original", "default", events=[recompile])
    assert ModeResult.from_json(json.loads(json.dumps(row.to_json()))) == row


def test_crosscheck_a_failing_guard_behind_the_first_confirms_its_state_and_line(tmp_path):
    """Dynamo names the size guard; the state guard that failed on the same call confirms the
    TCS010 writing that state (by name) and the TCS004 on the line that read it (by line)."""
    a = str(tmp_path / "pkg" / "a.py")
    write = FakeFinding("TCS010", a, 30, 30)
    write.data = {"state": "Layer.is_initialized"}
    branch = FakeFinding("TCS004", a, 20, 20)  # the state guard's line
    insert = FakeFinding("TCS010", a, 11, 11)  # a local name, and the dict guard is at line 11 of another file
    insert.data = {"state": "closure variable kv"}
    guards = [["tensor 'x' size mismatch at index 1", None, None],
              ["L['cache'].layers[0].is_initialized == False", "pkg/a.py", 20], ["not L['kv']", "pkg/b.py", 11]]
    run = _run(tmp_path, [Event("recompile", "pkg/b.py", 5, "tensor 'x' size mismatch at index 1", guards=guards)])
    crosscheck(run, [write, branch, insert])
    row = run.results[1]
    assert [(u.code, u.line) for u in row.unconfirmed_findings] == [("TCS010", 11)]
    assert row.events[0].flagged == [] and (row.recompile_recall.flagged, row.recompile_recall.total) == (0, 1)
    run = _run(tmp_path, [Event("recompile", "pkg/b.py", 5, "tensor 'x' size mismatch at index 1")])
    crosscheck(run, [write, branch, insert])  # without the guards: all three unconfirmed
    assert len(run.results[1].unconfirmed_findings) == 3


def test_guard_comment_path_resolves_under_the_root(tmp_path):
    from flake8_compile_safe.validate.guard_walk import describe_guard, resolve_short_path

    root = tmp_path / "tree"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("x = 1\n")
    full = str(root / "pkg" / "a.py")
    short = full[2:]  # dynamo's shortening when the common prefix with torch is "/" cuts one character too many
    assert resolve_short_path(short, [str(root)]) == full
    assert resolve_short_path("pkg/a.py", [str(root)]) == full
    assert resolve_short_path("nn/modules/module.py", [str(root)]) == "nn/modules/module.py"
    part = f"L['self'].initialized == False      # if not self.initialized:  # {short}:1 in forward"
    assert describe_guard(part, [str(root)]) == ["L['self'].initialized == False", full, 1]
    assert describe_guard("___check_global_state() against {}", [str(root)]) == \
        ["___check_global_state() against {}", None, None]
    # a guard dynamo made inside torch: its frame in parentheses, outside the tree
    assert describe_guard("L['n'] != 1  # (_prims_common/__init__.py:285 in f)", [str(root)]) == \
        ["L['n'] != 1", "_prims_common/__init__.py", 285]


CONDITIONAL_SLICE = '''\
def pick(mask, a, b):
    m = (mask[a:b]
         if isinstance(mask, list)
         else None)
    return m
'''


def test_a_finding_ran_only_if_an_instruction_inside_its_own_span_did(tmp_path):
    """Line coverage reads the first line of a multi-line conditional expression as run whenever
    the statement runs; the instruction spans tell whether the slice itself ran."""
    import importlib.util
    from types import SimpleNamespace

    from flake8_compile_safe.validate.coverage import LineCoverage
    from flake8_compile_safe.validate.crosscheck import _unconfirmed, ran_within

    source = tmp_path / "picker.py"
    source.write_text(CONDITIONAL_SLICE)
    spec = importlib.util.spec_from_file_location("picker", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    slice_finding = SimpleNamespace(code="TCS003", path=str(source), line=2, col=9, end_line=2, end_col=18,
                                    summary="s")
    for mask, ran in ((None, False), ([1, 2, 3], True)):
        coverage = LineCoverage(str(tmp_path))
        with coverage:
            module.pick(mask, 0, 1)
        spans = coverage.relative_spans()["picker.py"]
        assert ran_within(slice_finding, spans) is ran
        executed = coverage.relative()
        _, on_executed = _unconfirmed([], {"picker.py": [slice_finding]}, executed, coverage.relative_spans())
        assert on_executed == int(ran)


HOOK_FACTORY = '''\
class Model:
    def install_hooks(self):
        cache = {}
        hooks = []

        def save(module, _, output):
            cache[module] = output
            return output

        hooks.append(save)
        return cache, hooks
'''
HOOK_CALLER = '''\
class Decoding:
    def step(self, model, tokens):
        if not self.kv_cache:
            self.kv_cache, self.hooks = model.install_hooks()
        return model.decoder(tokens, kv_cache=self.kv_cache)
'''


def test_closure_state_is_matched_to_dynamo_by_the_names_its_object_is_passed_under(tmp_path):
    """The hook's closure dict ``cache`` is the decoder's ``kv_cache``: returned by its factory,
    stored by the caller, passed on by keyword; dynamo's guard names only the latter."""
    from types import SimpleNamespace

    from flake8_compile_safe.validate.aliases import closure_aliases
    from flake8_compile_safe.validate.crosscheck import names_state

    (tmp_path / "model.py").write_text(HOOK_FACTORY)
    (tmp_path / "decoding.py").write_text(HOOK_CALLER)
    write = SimpleNamespace(code="TCS010", path=str(tmp_path / "model.py"), line=7,
                            function="model.Model.install_hooks.<locals>.save",
                            data={"state": "closure variable cache"})
    local = SimpleNamespace(code="TCS010", path=str(tmp_path / "model.py"), line=7, function="model.Model.step",
                            data={"state": "closure variable cache"})  # not a def inside a factory
    aliases = closure_aliases([write, local], str(tmp_path))
    assert aliases == {id(write): frozenset({"kv_cache"})}
    guard = [Event("recompile", "decoding.py", 2, "tensor 'tokens' size mismatch",
                   guards=[["not L['kv_cache']", "decoding.py", 3]])]
    assert names_state(write, guard, aliases[id(write)])
    assert not names_state(write, guard)  # by its own name, dynamo never says it
    other = [Event("recompile", "decoding.py", 2, "x", guards=[["not L['kv_cache_len']", "decoding.py", 3]])]
    assert not names_state(write, other, aliases[id(write)])
