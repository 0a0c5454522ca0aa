"""Each generic fix proven with dynamo on a small model (the fixtures that define ``workload()``): the
fixed module gives the same outputs (eager and compiled) and dynamo's verdict improves as stated.

Figures measured on torch 2.13 CPU with the validation suite's recording backend (analysis): graphs,
graph breaks, frame skips, guard-failure recompiles, predicted CUDA-graph skips (mutated inputs that
are not static) and re-records (distinct SymInt tuples). docs/fixer.md lists them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixprobe import max_abs_diff, measure

pytestmark = pytest.mark.torch
FIXTURES = Path(__file__).parent / "fixtures" / "fix"

# fixture -> {figure: (before, after)}: what the fix must change (other figures must not get worse)
EXPECTED = {
    "tcs003_index_copy": {"frame_skips": (2, 0), "graph_breaks": (2, 0)},
    "tcs002_keep_tensor": {"graph_breaks": (4, 0), "cudagraph_skips": (4, 0), "rerecords": (4, 0)},
    "tcs010_tensor_counter": {"recompiles": (15, 0), "graphs": (6, 1)},
    "tcs001_static_marking": {"cudagraph_skips": (2, 0)},
    "eager_helper": {"graph_breaks": (3, 2), "cudagraph_skips": (6, 2), "rerecords": (2, 0)},
    # Removes the reallocation of the whole cache every step; dynamo's verdict is unchanged.
    "tcs011_preallocated_cache": {"recompiles": (1, 1), "cudagraph_skips": (0, 0)},
}
FIGURES = ("graphs", "graph_breaks", "frame_skips", "recompiles", "cudagraph_skips", "rerecords")


def test_every_workload_fixture_has_expectations():
    with_workload = {p.name[: -len(".in.py")] for p in FIXTURES.glob("*.in.py") if "def workload" in p.read_text()}
    assert with_workload == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fix_keeps_outputs_and_improves_dynamo_verdict(name):
    pytest.importorskip("torch")
    before = measure(FIXTURES / f"{name}.in.py")
    after = measure(FIXTURES / f"{name}.out.py")
    print(name, {k: (before[k], after[k]) for k in FIGURES})
    assert max_abs_diff(before["eager"], after["eager"]) <= 1e-6
    assert max_abs_diff(before["compiled"], after["compiled"]) <= 1e-5
    assert max_abs_diff(after["eager"], after["compiled"]) <= 1e-5
    for figure, (was, now) in EXPECTED[name].items():
        assert (before[figure], after[figure]) == (was, now), figure
    for figure in FIGURES:
        assert after[figure] <= before[figure], f"{figure} got worse: {before[figure]} -> {after[figure]}"
