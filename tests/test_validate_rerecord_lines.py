"""The backend's re-record events name every line the varying number reaches (needs torch, no model)."""

import textwrap

import pytest

from helpers import run_source_as_file

torch = pytest.importorskip("torch")


def test_rerecord_lists_the_lines_the_varying_number_reaches(tmp_path):
    from flake8_compile_safe.validate.backend import RecordingBackend

    namespace = run_source_as_file(tmp_path / "m.py", textwrap.dedent('''\
        import torch


        def step(x, t):
            n = int(t)
            start = 2 * n
            y = x[:, start:]
            return y.sum() + x.sum()
    '''))
    torch._dynamo.reset()
    backend = RecordingBackend("default", "analysis", "cpu", [str(tmp_path)])
    compiled = torch.compile(namespace["step"], backend=backend)
    x = torch.randn(2, 16)
    for n in range(4):
        compiled(x, n)  # a plain int argument: dynamo makes it a SymInt input after one recompile
    events = backend.rerecord_events()
    assert events, "the int argument took 4 values: the dynamic graph re-records"
    lines = {line for event in events for _file, line in (event.lines or [])}
    assert 7 in lines  # `x[:, start:]`: reached through `start = 2 * n`
    assert 8 not in lines  # tensor outputs are not followed
