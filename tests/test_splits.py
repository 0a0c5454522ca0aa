"""The frames a graph break splits a model into (flake8_compile_safe.splits), statically and against dynamo.

The same small model is predicted without torch, and run under dynamo (torch tests): every frame
the prediction names that ran is a frame dynamo traced, and every frame dynamo traced below the
compiled root is predicted.
"""

from __future__ import annotations

import textwrap

import pytest

from flake8_compile_safe.analysis import split_frames
from helpers import run_source_as_file, write_project

MODEL = textwrap.dedent('''\
    import functools

    import torch
    from torch import nn


    def traced(func):
        @functools.wraps(func)
        def wrapper(self, x):
            return func(self, x)

        return wrapper


    def helper(x):
        return x.cos()


    def label(step: int) -> str:
        return f"layer {step}"


    class Inner(nn.Module):
        def forward(self, x):
            n = x.sum().item()
            return x * n


    class Norm(nn.Module):
        def forward(self, x):
            return x * 2


    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = Norm()
            self.inner = Inner()

        @traced
        def forward(self, x):
            x = self.norm(x)
            y = self.inner(x)
            return helper(y) + 1


    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Layer()
            self.norm = Norm()

        def forward(self, x):
            x = self.norm(x)
            x = self.a(x)
            return helper(x)


    class Looped(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([Layer(), Layer()])
            self.norm = Norm()

        def forward(self, x):
            x = self.norm(x)
            for step, layer in enumerate(self.layers):
                x = layer(x)
                self.last = label(step)
            return helper(x)
''')
_LINES = MODEL.splitlines()


def line_of(text: str, nth: int = 0) -> int:
    """The 1-based line of the ``nth`` line of MODEL that reads ``text`` (stripped)."""
    return [n for n, line in enumerate(_LINES, 1) if line.strip() == text][nth]


WRAPPER = line_of("@functools.wraps(func)")  # the wrapper's code object starts at its decorator
HELPER = line_of("def helper(x):")
INNER, NORM = line_of("def forward(self, x):", 0), line_of("def forward(self, x):", 1)
LAYER = line_of("@traced")  # the decorated def's code object starts at its decorator
FLAT, LOOPED = line_of("def forward(self, x):", 3), line_of("def forward(self, x):", 4)
BREAK = line_of("n = x.sum().item()")
CALL_INNER = line_of("y = self.inner(x)")
CALL_A = line_of("x = self.a(x)")
CALL_IN_LOOP = line_of("x = layer(x)")
LABEL = line_of("def label(step: int) -> str:")


def _predicted(tmp_path) -> set[tuple[int, str]]:
    write_project(tmp_path, {"m.py": MODEL})
    findings, splits = split_frames(tmp_path)
    assert any(f.code == "TCS002" and f.line == BREAK for f in findings)
    (frames,) = [frames for function, frames in splits.items() if function.endswith("Inner.forward")]
    return {(frame.line, frame.kind) for frame in frames}


def test_a_break_splits_off_the_functions_above_it_their_wrappers_and_the_resumed_callers(tmp_path):
    predicted = _predicted(tmp_path)
    # Flat: compiled up to `self.a(x)`, Layer's wrapper and Layer.forward and Inner.forward are frames
    # of their own, each caller resumes after its call. Norm and helper are inlined where they are called.
    assert {(INNER, "callee"), (LAYER, "callee"), (WRAPPER, "wrapper"), (CALL_A, "resume"),
            (CALL_INNER, "resume")} <= predicted
    # Looped: the break is reached inside the loop, so dynamo skips Looped.forward: each call in it is
    # a frame of its own (Norm, helper and the layers), and it has no resumed frame.
    assert {(NORM, "skipped-callee"), (HELPER, "skipped-callee")} <= predicted
    assert (CALL_IN_LOOP, "resume") not in predicted
    # ...but not `label`: nothing in its frame is torch (an int argument, no torch global), so dynamo
    # leaves it alone
    assert not any(line == LABEL for line, _ in predicted)
    # the roots themselves are not split off: they are frames whatever breaks
    assert not {line for line, _ in predicted} & {FLAT, LOOPED}


def test_no_break_no_split(tmp_path):
    write_project(tmp_path, {"m.py": MODEL.replace("n = x.sum().item()", "n = 2")})
    _, splits = split_frames(tmp_path)
    assert splits == {}


@pytest.mark.torch
@pytest.mark.parametrize("model", ["Flat", "Looped"])
def test_the_predicted_frames_are_the_frames_dynamo_traces(tmp_path, model):
    torch = pytest.importorskip("torch", reason="needs torch (pip install flake8-compile-safe[validate])")
    from flake8_compile_safe.validate.dynamo_log import EventLog, parse_frames

    predicted = {line for line, _kind in _predicted(tmp_path)}
    namespace = run_source_as_file(tmp_path / "m.py", MODEL)
    torch._dynamo.reset()
    log = EventLog().install(torch)
    try:
        compiled = torch.compile(namespace[model](), backend="eager")
        for length in (6, 1, 1):
            compiled(torch.randn(1, length, 4))
    finally:
        log.remove()
        torch._dynamo.reset()
    traced = {(line, name) for _file, line, name, _times in parse_frames(log.records, [str(tmp_path)])}
    root = {"Flat": FLAT, "Looped": LOOPED}[model]
    assert (root, "forward") in traced
    below_root = traced - {(root, "forward")}
    assert below_root, "the break split nothing off"
    # every frame dynamo traced below the compiled root, resumed frames too, is one the linter predicted
    missed = {(line, name) for line, name in below_root if not any(abs(line - p) <= 1 for p in predicted)}
    assert not missed, f"dynamo traced frames the linter did not predict: {sorted(missed)}"
    assert not any(line == LABEL for line, _ in traced)  # and left alone the frame the linter leaves out
