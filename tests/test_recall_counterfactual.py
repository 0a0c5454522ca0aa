"""benchmarks/recall.py's counterfactual run: which switches, which lines it explains, on synthetic events.

The run itself needs the real packages (the benchmark); these test the bookkeeping, without torch.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

from flake8_compile_safe.validate.harness import DYNAMO_SWITCHES, apply_dynamo_switches
from flake8_compile_safe.validate.records import Event, ModeResult, UnconfirmedFinding
from flake8_compile_safe.validate.workload import WorkloadError

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("recall_bench", ROOT / "benchmarks" / "recall.py")
recall = importlib.util.module_from_spec(_spec)
sys.modules["recall_bench"] = recall
_spec.loader.exec_module(recall)

ITEM = "Unsupported Tensor.item() call with capture_scalar_outputs=False"


def ev(kind, line, flagged=(), reason="r", file="pkg/m.py"):
    return Event(kind, file, line, reason, flagged=None if flagged is None else list(flagged))


def test_switches_come_from_flagged_in_tree_breaks_only():
    events = [ev("graph_break", 10, ["TCS002"], ITEM),
              ev("frame_skip", 20, [], "Dynamic shape operator (`aten.nonzero`)"),  # unflagged: not switched
              ev("graph_break", 30, None, "Attempted to wrap RNN, GRU, or LSTM"),  # outside the tree
              ev("recompile", 40, ["TCS013"], "Attempted to wrap RNN")]  # not a break
    assert recall.switches_for(events) == ["capture_scalar_outputs"]
    events.append(ev("frame_skip", 50, ["TCS008"], "Dynamic shape operator (`aten.nonzero`)"))
    events.append(ev("graph_break", 60, ["TCS013"], "Attempted to wrap RNN, GRU, or LSTM"))
    assert recall.switches_for(events) == ["allow_rnn", "capture_dynamic_output_shape_ops", "capture_scalar_outputs"]
    assert set(recall.switches_for(events)) <= set(DYNAMO_SWITCHES)


def test_explained_lines_are_unflagged_lines_gone_in_the_counterfactual_run():
    normal = [ev("graph_break", 10, ["TCS002"], ITEM),
              ev("frame_skip", 12, []),  # gone: explained
              ev("recompile", 30, []),  # gone: explained
              ev("recompile", 31, []),  # still there: not explained
              ev("recompile", 32, ["TCS010"]),  # flagged: counted strictly, never again as explained
              ev("recompile", 33, None)]  # outside the tree: in no figure
    counter = [ev("recompile", 31, []), ev("recompile", 99, [], "a new guard")]
    assert recall.explained_lines(normal, counter) == {"breaks": [("pkg/m.py", 12)], "recompiles": [("pkg/m.py", 30)],
                                                       "breaks_moved": [], "recompiles_moved": []}


def test_a_guard_that_fails_again_in_a_new_frame_moved_and_is_not_explained():
    dtype = "tensor 'decode_cache.num_masked' dtype mismatch. expected Int, actual Long"
    prefill = "tensor 'x' size mismatch at index 1. expected 6, actual 1"
    normal = [ev("recompile", 224, [], dtype), ev("recompile", 50, [], prefill), ev("recompile", 9, [], prefill)]
    counter = [ev("recompile", 86, [], dtype.replace("decode_cache", "decode_caches[0]"), file="pkg/root.py"),
               ev("recompile", 9, [], prefill)]  # the root frame's own prefill -> decode: in both runs
    got = recall.explained_lines(normal, counter)
    assert got["recompiles_moved"] == [("pkg/m.py", 224)]
    assert got["recompiles"] == [("pkg/m.py", 50)]
    assert recall.reason_key(dtype) == "tensor 'num_masked' dtype mismatch. expected Int, actual Long"


def test_findings_confirmed_only_by_the_counterfactual_run():
    a, b = UnconfirmedFinding("TCS001", "pkg/m.py", 5, "x"), UnconfirmedFinding("TCS003", "pkg/m.py", 9, "y")
    normal, counter = ModeResult("v", "default"), ModeResult("v", "default")
    normal.unconfirmed_findings, counter.unconfirmed_findings = [a, b], [b]
    assert recall.confirmed_only_by_counterfactual(normal, counter) == [a]


def test_tally_reports_explained_apart_from_the_strict_figure():
    t = recall.Tally(breaks=[14, 16], recompiles=[9, 81], explained_breaks=2, explained_recompiles=40)
    assert recall.ratio(t.recompiles) == "9/81 = 0.11"
    assert t.with_explained(t.recompiles, t.explained_recompiles) == "49/81 = 0.60"
    assert recall.Tally().with_explained([0, 3], None) == "-"
    total = recall.Tally()
    total.add(t)
    total.add(recall.Tally(breaks=[1, 1], recompiles=[0, 2]))  # a workload without a counterfactual run
    assert (total.breaks, total.recompiles, total.explained_recompiles) == ([15, 17], [9, 83], 40)


def test_harness_switches_are_checked_before_use():
    assert apply_dynamo_switches("") == []
    with pytest.raises(WorkloadError, match="unknown switch 'suppress_errors'"):
        apply_dynamo_switches("allow_rnn,suppress_errors")


def test_a_counterfactual_run_that_failed_part_way_explains_nothing():
    from flake8_compile_safe.validate.records import RunResult

    normal = ModeResult("v", "default")
    normal.events = [ev("graph_break", 10, ["TCS002"], ITEM), ev("recompile", 30, [])]
    broken = ModeResult("v", "default", error="run(compiled model) failed: IndexError: ...")
    done = ModeResult("v", "default")
    run = RunResult("v", "f", "p", results=[ModeResult("v", "eager"), normal])
    failed = recall.compare_counterfactual(run, normal.events, RunResult("v", "f", "p", results=[broken]), ["x"])
    assert "explained" not in failed and failed["error"].startswith("run(compiled model) failed")
    ok = recall.compare_counterfactual(run, normal.events, RunResult("v", "f", "p", results=[done]), ["x"])
    assert ok["explained"]["recompiles"] == [("pkg/m.py", 30)] and ok["explained"]["recompiles_moved"] == []


def test_a_counterfactual_run_that_failed_part_way_still_confirms_what_it_saw():
    """Its events, and the line dynamo raised at, are dynamo's verdict however far the run got."""
    from flake8_compile_safe.validate.crosscheck import crosscheck_mode
    from flake8_compile_safe.validate.records import RunResult

    class F:  # a finding as the cross-check reads it
        def __init__(self, code, line):
            self.code, self.line, self.end_line, self.col, self.end_col = code, line, line, 0, 0

    by_file = {"pkg/m.py": [F("TCS002", 10), F("TCS003", 40), F("TCS004", 60)]}
    executed = {"pkg/m.py": [10, 40, 60]}
    normal = ModeResult("v", "default")
    normal.events = [ev("graph_break", 10, reason=ITEM)]
    broken = ModeResult("v", "default", error="run(compiled model) failed: IndexError: ... (got SymInt)")
    broken.events = [Event("compile_error", "pkg/m.py", 40, "IndexError: ... (got SymInt)", anchor="raised")]
    for row in (normal, broken):
        crosscheck_mode(row, by_file, executed)
    assert [u.line for u in normal.unconfirmed_findings] == [40, 60]
    run = RunResult("v", "f", "p", results=[ModeResult("v", "eager"), normal])
    failed = recall.compare_counterfactual(run, normal.events, RunResult("v", "f", "p", results=[broken]), ["x"])
    assert "explained" not in failed
    assert [(c["code"], c["line"]) for c in failed["confirmed"]] == [("TCS003", 40)]
    assert [e["kind"] for e in failed["events"]] == ["compile_error"]
