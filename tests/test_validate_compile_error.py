"""A compiled call that dynamo raises on becomes a ``compile_error`` event at the user line it was tracing."""

import textwrap

import pytest

from helpers import run_source_as_file

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch", reason="needs torch (pip install flake8-compile-safe[validate])")

# Toto's KVCache.__getitem__ in miniature: with capture_scalar_outputs the .item() no longer breaks,
# and the unbacked int it gives cannot index a tensor (dynamo raises IndexError, not a graph break).
SOURCE = textwrap.dedent('''\
    import torch


    class Cache:
        def __init__(self):
            self.layer_map = torch.zeros(3, dtype=torch.int)
            self.keys = torch.zeros(2, 1, 1, 8, 4)

        def get(self, layer):
            idx = int(self.layer_map[layer].item())
            end = int(self.layer_map[idx].item())
            return self.keys[idx, :, :, :end, :]


    def step(cache, x):
        return cache.get(1) + x
''')
RAISING_LINE, CALL_LINE = 12, 16


def test_the_line_dynamo_raised_at_is_an_event(tmp_path):
    from flake8_compile_safe.validate.dynamo_log import compile_error_event
    from flake8_compile_safe.validate.harness import aggregate
    from flake8_compile_safe.validate.workload import Workload, WorkloadError

    namespace = run_source_as_file(tmp_path / "pkg" / "cache.py", SOURCE)
    torch._dynamo.reset()
    compiled = torch.compile(namespace["step"], backend="eager")
    workload = Workload("test", None, lambda _: compiled(namespace["Cache"](), torch.zeros(1)))
    try:
        with torch._dynamo.config.patch(capture_scalar_outputs=True), pytest.raises(WorkloadError) as raised:
            workload.call(None, "run(compiled model)")
    finally:
        torch._dynamo.reset()
    event = compile_error_event(raised.value, [str(tmp_path)])
    assert (event.kind, event.line, event.anchor) == ("compile_error", RAISING_LINE, "raised")
    assert event.reason.startswith("IndexError:")
    (event,) = aggregate([event], str(tmp_path))
    assert (event.file, event.lines) == ("pkg/cache.py", [["pkg/cache.py", CALL_LINE]])
    # outside the analysed tree, or an exception dynamo put no user stack on: no event
    assert compile_error_event(raised.value, [str(tmp_path / "elsewhere")]) is None
    assert compile_error_event(ValueError("plain"), [str(tmp_path)]) is None
