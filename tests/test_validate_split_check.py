"""The cross-check of split-frame predictions: only for breaks dynamo reported, and checked against its frames."""

from dataclasses import dataclass

from flake8_compile_safe.splits import SplitFrame
from flake8_compile_safe.validate.crosscheck import findings_by_file, splits_by_file
from flake8_compile_safe.validate.records import Event, ModeResult, RunResult
from flake8_compile_safe.validate.split_check import check_splits


@dataclass
class Found:  # the Finding fields the split check reads
    code: str
    path: str
    line: int
    function: str
    consequence: str


def _row(tmp_path, break_reported: bool):
    pkg = tmp_path / "pkg"
    row = ModeResult("original", "default", events=[
        Event("recompile", "pkg/m.py", 20, "tensor 'x' size mismatch at index 1. expected 6, actual 1", flagged=[]),
        Event("recompile", "pkg/m.py", 60, "tensor 'x' size mismatch at index 1. expected 6, actual 1", flagged=[]),
        # a guard read inside the resumed frame: anchored at the read, the frame named apart
        Event("recompile", "pkg/m.py", 34, "length == 6", flagged=[],
              frame=["torch_dynamo_resume_in_forward_at_31", "pkg/m.py", 31]),
    ])
    if break_reported:
        row.events.append(Event("graph_break", "pkg/m.py", 11, "Unsupported Tensor.item()", flagged=["TCS002"]))
    row.frames = [["pkg/m.py", 20, "forward", 2], ["pkg/m.py", 31, "torch_dynamo_resume_in_forward_at_31", 1]]
    findings = [Found("TCS002", str(pkg / "m.py"), 11, "pkg.m.Inner.forward", "a graph break, then a recompile"),
                Found("TCS010", str(pkg / "m.py"), 40, "pkg.m.Other.forward", "a recompile when it flips")]
    splits = {"pkg.m.Inner.forward": (SplitFrame(str(pkg / "m.py"), 20, 25, "pkg.m.Layer.forward", "callee"),
                                      SplitFrame(str(pkg / "m.py"), 30, 30, "pkg.m.Model.forward", "resume"),
                                      SplitFrame(str(pkg / "m.py"), 50, 55, "pkg.m.Norm.forward", "skipped-callee")),
              "pkg.m.Other.forward": (SplitFrame(str(pkg / "m.py"), 60, 65, "pkg.m.X.forward", "callee"),)}
    run = RunResult("original", "m:f", str(tmp_path), results=[row], executed={"pkg/m.py": [21, 30, 51]})
    return row, findings, splits, run


def test_a_reported_break_attributes_the_recompiles_in_the_frames_it_splits_off(tmp_path):
    row, findings, splits, run = _row(tmp_path, break_reported=True)
    check_splits(row, findings_by_file(findings, run.path), splits_by_file(splits, run.path), run.executed)
    assert [(e.line, e.split) for e in row.events if e.kind == "recompile"] == [(20, "callee"), (60, None),
                                                                                (34, "resume")]
    assert row.recompile_recall.split == 2  # line 60: its predictor is not a break (a guard): nothing
    # each predicted frame that ran, and whether dynamo traced a frame there
    assert row.split_frames == [["pkg/m.py", 20, "callee", True], ["pkg/m.py", 30, "resume", True],
                                ["pkg/m.py", 50, "skipped-callee", False]]


def test_a_break_dynamo_did_not_report_splits_nothing(tmp_path):
    row, findings, splits, run = _row(tmp_path, break_reported=False)
    check_splits(row, findings_by_file(findings, run.path), splits_by_file(splits, run.path), run.executed)
    assert all(e.split is None for e in row.events) and row.recompile_recall.split == 0 and row.split_frames == []
