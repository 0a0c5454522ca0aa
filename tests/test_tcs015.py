"""TCS015 beyond its docs examples: the real streaming code it was built on, and dynamo's verdict.

EnCodec's streaming LM (``encodec/modules/transformer.py``) takes ``offset: Union[int, Tensor]``
and returns ``offset + T``; its caller feeds it back. Dynamo recompiles on ``offset == 0`` at
line 108, the first use of the int, and ``compile-safe-validate --model`` predicts a CUDA-graph
re-record there for every new value (docs/recall.md).
"""

from pathlib import Path

import pytest

from flake8_compile_safe.analysis import analyze_paths, clear_cache
from flake8_compile_safe.rules.tcs015_step_int_parameter import StepIntParameter
from helpers import family_findings, write_project


def test_encodec_streaming_offset_is_flagged_where_dynamo_recompiles():
    tree, found = family_findings("encodec", "TCS015")
    assert [(Path(f.path).relative_to(tree).as_posix(), f.line) for f in found] == [
        ("encodec/modules/transformer.py", 108)]
    assert "`offset + T`" in found[0].summary


def test_sizes_and_rebinding_decide_what_counts_as_advanced(tmp_path):
    code = '''\
import torch


class Model(torch.nn.Module):
    def forward(self, x, pos: int = 0, base: int = 0, k: "int" = 1, ids: list[int] = None):
        n = len(x)
        y = x + pos  # advanced by a name bound to len(...)
        z = x * base  # advanced by a tensor: not an int
        w = x * k  # a string annotation
        k = k + x.shape[0]
        return y, pos + n, base + z, k
'''
    write_project(tmp_path, {"m.py": code})
    clear_cache()
    found = sorted((f.line, f.data["parameter"]) for f in analyze_paths([tmp_path / "m.py"], root=tmp_path)
                   if f.code == "TCS015")
    clear_cache()
    assert found == [(7, "pos"), (9, "k")]


@pytest.mark.torch
def test_each_example_through_dynamo():
    """INVALID: the returned int fed back recompiles once (then it is a SymInt input); VALID: one graph."""
    torch = pytest.importorskip("torch")
    import torch._dynamo as dynamo
    from torch._dynamo.utils import counters

    def graphs(module, first, feed_back):
        dynamo.reset()
        counters.clear()
        compiled = torch.compile(module, backend="eager")
        value = first
        for _ in range(5):
            out = compiled(torch.ones(1, 3, 4), value)
            value = out[1] if feed_back else value
        return counters["stats"]["unique_graphs"]

    def modules(example):
        namespace = {}
        exec(compile(example.code, "example", "exec"), namespace)
        return [v for v in namespace.values()
                if isinstance(v, type) and issubclass(v, torch.nn.Module) and v is not torch.nn.Module]

    for example in StepIntParameter.INVALID:
        for cls in modules(example):
            assert graphs(cls(), 0, True) == 2, cls.__name__
    streaming, = modules(StepIntParameter.VALID[0])
    assert graphs(streaming(), torch.tensor(0), True) == 1
    model, = modules(StepIntParameter.VALID[1])
    assert graphs(model(), 2, True) == 1
    dynamo.reset()
