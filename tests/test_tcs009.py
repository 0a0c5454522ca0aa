"""TCS009's deepcopy case, as dynamo sees it, and the copy it makes as the analysis sees it.

audiocraft's ``AttributeDropout.forward`` starts with ``samples = deepcopy(samples)`` (conditioning
attributes holding tensors) and then writes into the copies: dynamo breaks at the copy ("Attempted
to copy.deepcopy a tensor"), and the writes go into objects the call made, not into its inputs.
"""

import pytest

from flake8_compile_safe.rules.tcs009_forbidden_in_graph import ForbiddenInGraph
from helpers import findings, write_project

COPIED = '''\
from copy import deepcopy

import torch


class Condition:
    def __init__(self, wav: torch.Tensor):
        self.wav = wav


class Attributes:
    def __init__(self):
        self.wav: dict[str, Condition] = {"melody": Condition(torch.zeros(1))}


def nullify(sample: Attributes, name: str):
    sample.wav[name] = Condition(sample.wav[name].wav * 0)


def clear(sample: Attributes, name: str):
    sample.wav[name] = Condition(sample.wav[name].wav * 0)


class Dropout(torch.nn.Module):
    def forward(self, x, samples: list[Attributes], others: list[Attributes], sizes: dict[str, int]):
        samples = deepcopy(samples)  # holds tensors: TCS009
        for sample in samples:
            clear(sample, "melody")  # a write into a copy this call made
        for other in others:
            nullify(other, "melody")  # a write into an input
        sizes = deepcopy(sizes)  # ints only: not flagged
        return x, samples
'''


def test_deepcopy_is_flagged_only_when_it_copies_tensors_and_the_copy_is_fresh(tmp_path):
    write_project(tmp_path, {"m.py": COPIED})
    found = {(f.line, f.code) for f in findings(tmp_path) if f.code in ("TCS009", "TCS010")}
    # TCS010 in nullify (the inputs), none in clear (the copies, line 21)
    assert found == {(26, "TCS009"), (17, "TCS010")}
    [write] = [f for f in findings(tmp_path) if f.code == "TCS010"]
    assert write.chain[-1].startswith("nullify") and write.root == "Dropout.forward"


@pytest.mark.torch
def test_dynamo_breaks_on_the_deepcopy_of_tensors_and_not_of_ints():
    torch = pytest.importorskip("torch")
    import torch._dynamo as dynamo
    from torch._dynamo.utils import counters

    def breaks(code, args):
        namespace = {}
        exec(compile(code, "example", "exec"), namespace)
        dynamo.reset()
        counters.clear()
        torch.compile(namespace["Dropout"](), backend="eager")(*args(namespace))
        return [reason for reason in counters["graph_break"] if "deepcopy" in reason]

    example = ForbiddenInGraph.INVALID[-1].code
    assert breaks(example, lambda ns: (torch.ones(2), [ns["Attributes"]({"a": ns["Condition"](torch.ones(1))})]))
    ints = example.replace("samples = deepcopy(samples)", "samples = deepcopy({'n': 1})")
    assert not breaks(ints, lambda ns: (torch.ones(2), []))
    dynamo.reset()
