"""Every guard that fails at a recompile reaches the event, not only the one dynamo names (needs torch)."""

import json
import textwrap

import pytest

from helpers import FakeFinding, run_source_as_file

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch", reason="needs torch (pip install flake8-compile-safe[validate])")

SOURCE = textwrap.dedent('''\
    import torch


    class Lazy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.initialized = False

        def forward(self, x):
            """A new shape and a flipped flag: two guards fail on the second call."""
            y = x * 2

            if not self.initialized:
                y = y + 1

            self.initialized = True
            return y
''')
BRANCH_LINE, WRITE_LINE = 13, 16


def _recompiles(tmp_path):
    from flake8_compile_safe.validate.dynamo_log import EventLog, parse_events
    from flake8_compile_safe.validate.guard_walk import FailingGuards
    from flake8_compile_safe.validate.harness import aggregate
    from flake8_compile_safe.validate.records import Event

    namespace = run_source_as_file(tmp_path / "pkg" / "lazy.py", SOURCE)
    torch._dynamo.reset()
    log = EventLog().install(torch)
    walk = FailingGuards(log, [str(tmp_path)]).install()
    try:
        compiled = torch.compile(namespace["Lazy"](), backend="eager")
        compiled(torch.randn(2, 4))
        compiled(torch.randn(3, 4))  # the size guard fails first; the flag guard fails too
    finally:
        walk.remove()
        log.remove()
    events, _ = parse_events(log.records, [str(tmp_path)])
    # through the worker's JSON, as the cross-check reads it
    events = [Event(**json.loads(json.dumps(e.__dict__))) for e in aggregate(events, str(tmp_path))]
    return [e for e in events if e.kind == "recompile"], walk.stats


def test_recompile_carries_every_failing_guard(tmp_path):
    (event,), stats = _recompiles(tmp_path)
    assert "size mismatch" in event.reason  # dynamo names the tensor's shape guard first
    flag = [g for g in event.guards or () if "initialized" in g[0]]
    assert flag == [["L['self'].initialized == False", "pkg/lazy.py", BRANCH_LINE]]
    assert stats["recompiles"] == 1 and stats["errors"] == 0


def test_failing_flag_guard_confirms_the_write_and_the_branch(tmp_path):
    from flake8_compile_safe.validate.crosscheck import crosscheck
    from flake8_compile_safe.validate.records import ModeResult, RunResult

    events, _ = _recompiles(tmp_path)
    src = str(tmp_path / "pkg" / "lazy.py")
    write = FakeFinding("TCS010", src, WRITE_LINE, WRITE_LINE)
    write.data = {"state": "Lazy.initialized"}  # named by the flag guard's text
    branch = FakeFinding("TCS004", src, BRANCH_LINE, BRANCH_LINE)  # the flag guard's line
    row = ModeResult("original", "default", events=events)
    run = RunResult("original", "m:f", str(tmp_path), results=[ModeResult("original", "eager"), row],
                    executed={"pkg/lazy.py": [BRANCH_LINE, WRITE_LINE]})
    crosscheck(run, [write, branch])
    assert row.unconfirmed_findings == [] and row.executed_findings == 2
    # the recall still counts the line dynamo named: the def line, unflagged
    assert (row.recompile_recall.flagged, row.recompile_recall.total) == (0, 1)
