"""Dynamo's verdict on a small module that defines ``workload() -> (model, run)``, in this process.

Counts what compile-safe-validate counts (graphs handed to the backend, ``counters["graph_break"]``,
``counters["unimplemented"]`` frame skips, guard-failure recompiles, predicted CUDA-graph skips and
re-records from the validation suite's recording backend with ``backend="analysis"``), and returns
the eager and compiled outputs. Used by the fixer's dynamo tests.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import warnings
from pathlib import Path

_ids = itertools.count()


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"fixprobe_{next(_ids)}_{path.stem.replace('.', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tensors(out) -> list:
    import torch

    if isinstance(out, torch.Tensor):
        return [out.detach().clone()]
    return [t for item in out for t in tensors(item)]


def measure(path: Path) -> dict:
    import torch
    from torch._dynamo.utils import counters, guard_failures

    from flake8_compile_safe.validate.backend import RecordingBackend

    warnings.filterwarnings("ignore")
    torch._logging.set_logs(dynamo=logging.ERROR)
    module = load(path)
    model, run = module.workload()
    torch.manual_seed(0)
    eager = tensors(run(model))
    torch._dynamo.reset()
    counters.clear()
    guard_failures.clear()
    backend = RecordingBackend("default", "analysis", "cpu", [str(path.parent)])
    compiled = torch.compile(model, backend=backend)
    torch.manual_seed(0)
    out = tensors(run(compiled))
    return {
        "graphs": len(backend.graphs),
        "graph_breaks": int(sum(counters["graph_break"].values())),
        "frame_skips": int(sum(counters["unimplemented"].values())),
        "recompiles": sum(len(v) for v in guard_failures.values()),
        "cudagraph_skips": len(backend.mutated),
        "rerecords": backend.rerecords,
        "eager": eager,
        "compiled": out,
    }


def max_abs_diff(a: list, b: list) -> float:
    assert len(a) == len(b) and all(x.shape == y.shape for x, y in zip(a, b))
    return max((float((x.double() - y.double()).abs().max()) for x, y in zip(a, b) if x.numel()), default=0.0)
