"""benchmarks/dynamo_probe.py: dynamo's log records -> events -> lines, recall, without torch.

The record texts are dynamo's, as torch 2.13 logs them (``graph_breaks`` / ``recompiles``
artifacts), with the file paths moved under a test root.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("dynamo_probe", ROOT / "benchmarks" / "dynamo_probe.py")
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)

TREE = "/src/tree"


def _break(line: int, duplicate: bool = False, file: str = f"{TREE}/pkg/model.py") -> tuple[str, str]:
    head = "Graph break (user stack suppressed due to duplicate graph break)" if duplicate else "Graph break"
    return ("torch._dynamo.symbolic_convert.__graph_breaks",
            f"{head} in user code at {file}:{line}\n"
            "Graph Break Reason: Encountered graph break when attempting to trace CALL: a function call, "
            "e.g. f(x, y):\n\nUnsupported Tensor.item() call with capture_scalar_outputs=False\n"
            "  Explanation: Dynamo does not support tracing `Tensor.item()`.\n")


def _skip(line: int) -> tuple[str, str]:
    return ("torch._dynamo.symbolic_convert.__graph_breaks",
            f"Graph break in user code at {TREE}/pkg/model.py:{line}\n"
            "Graph Break Reason: Failed to handle graph break gracefully. Skipping the function and "
            "falling back to eager. Graph break encountered:\n\nData dependent operator\n")


def _recompile(def_line: int, stack_line: int | None) -> tuple[str, str]:
    msg = (f"Recompiling function forward in {TREE}/pkg/model.py:{def_line}\n"
           "    triggered by the following guard failure(s):\n"
           "    - 1/0: n == 2                                                   #   # model.py:14 in forward")
    if stack_line is not None:
        msg += ("\n    - User stack trace:\n"
                f'    -   File "{TREE}/pkg/model.py", line {stack_line}, in forward')
    return ("torch._dynamo.guards.__recompiles", msg)


def test_parse_kinds_locations_and_reasons():
    records = [
        ("torch._dynamo.variables.tensor", "Graph break from `Tensor.item()`, consider setting: ..."),
        _break(13), _break(13, duplicate=True), _skip(40), _recompile(11, 14), _recompile(11, None),
        _break(7, file="/elsewhere/lib/fairscale/mappings.py"),
    ]
    events = probe.parse(records, TREE)
    assert [(e["kind"], e["file"], e["line"]) for e in events] == [
        ("graph_break", "pkg/model.py", 13),
        ("graph_break", "pkg/model.py", 13),
        ("frame_skip", "pkg/model.py", 40),
        ("recompile", "pkg/model.py", 14),  # the user stack's innermost frame in the tree
        ("recompile", "pkg/model.py", 11),  # no user stack: the function's line
        ("graph_break", "/elsewhere/lib/fairscale/mappings.py", 7),
    ]
    assert events[0]["reason"] == "Unsupported Tensor.item() call with capture_scalar_outputs=False"
    assert events[2]["reason"] == "Data dependent operator"
    assert events[3]["reason"] == "n == 2"


def test_lines_flagged_within_two_lines_and_recall_counts_distinct_lines():
    result = {"events": probe.parse([_break(13), _skip(13), _skip(40), _recompile(11, 14),
                                     _break(7, file="/elsewhere/x.py")], TREE)}
    findings = probe.parse_findings(
        f"{TREE}/pkg/model.py:15:9: TCS001 tensor slice bound\n"
        f"{TREE}/pkg/model.py:43:1: TCS002 .tolist()\n"
        f"{TREE}/pkg/other.py:14:1: TCS007 something\n"
        "not a finding line\n", TREE)
    rows = probe.summarize(result, findings)
    by_key = {(r["kind"], r["file"], r["line"]): r for r in rows}
    assert by_key[("graph_break", "pkg/model.py", 13)]["flagged"] == ["TCS001"]  # 2 lines away
    assert by_key[("frame_skip", "pkg/model.py", 40)]["flagged"] == []  # 3 lines away
    assert by_key[("recompile", "pkg/model.py", 14)]["flagged"] == ["TCS001"]  # other.py:14 is another file
    assert by_key[("graph_break", "/elsewhere/x.py", 7)]["in_tree"] is False
    assert by_key[("frame_skip", "pkg/model.py", 13)]["count"] == 1
    assert probe.recall(rows) == {
        "break/skip": {"flagged": 1, "lines_in_tree": 2, "lines_outside_tree": 1},  # 13 (break+skip), 40
        "recompile": {"flagged": 1, "lines_in_tree": 1, "lines_outside_tree": 0},
    }


def test_bad_model_spec_is_one_line_and_exit_2(tmp_path, capsys):
    assert probe.main(["no_such_module_here:factory", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dynamo_probe: error: cannot load no_such_module_here:factory: "
                   "ModuleNotFoundError: No module named 'no_such_module_here'"]
