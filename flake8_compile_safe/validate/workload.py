"""Load a user's workload: ``MODULE:FACTORY`` -> ``(model, run[, metrics])``, checked, one-line errors.

The contract (``compile-safe-validate --model``):

* ``FACTORY(**workload_args)`` returns ``(model, run)`` or ``(model, run, metrics)``; it is called
  with ``torch.device(DEVICE)`` as the default device, so tensors and modules it builds without
  an explicit device land on the measured one;
* ``model`` is a ``torch.nn.Module``; the harness compiles it with ``torch.compile(model)``;
* ``run(m)`` performs one realistic workload with ``m`` (the eager model or the compiled one; for
  a stateful model a prefill plus decode steps with its cache, reset at the start of each call)
  and returns a tensor or a tuple of tensors;
* ``metrics(output)`` (optional) returns ``{name: float}``, reported in ``ModeResult.extra``
  (e.g. a forecast's MAE against held-out truth), with ``<name>_diff`` = |compiled - eager|.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable


class WorkloadError(Exception):
    """The workload cannot be measured: bad module, factory or eager run. One line, exit status 2."""


def describe(exc: BaseException) -> str:
    """``Class: first line of the message`` (at most 300 characters)."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


@dataclass
class Workload:
    spec: str
    model: Any  # torch.nn.Module
    run: Callable
    metrics: Callable | None = None

    def call(self, model, what: str = "run(model)"):
        try:
            return self.run(model)
        except Exception as exc:
            raise WorkloadError(f"{what} failed: {describe(exc)}") from exc


def load_factory(spec: str) -> Callable:
    module_name, _, func_name = spec.partition(":")
    if not module_name or not func_name:
        raise WorkloadError(f"{spec!r}: expected MODULE:FACTORY")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, SyntaxError, or whatever the module raises at import
        raise WorkloadError(f"cannot import {module_name}: {describe(exc)}") from exc
    factory = getattr(module, func_name, None)
    if factory is None:
        raise WorkloadError(f"{module_name} has no {func_name!r}")
    if not callable(factory):
        raise WorkloadError(f"{spec} is a {type(factory).__name__}, not a callable")
    return factory


def build(factory: Callable, spec: str, workload_args: dict) -> Workload:
    import torch

    try:
        inspect.signature(factory).bind(**workload_args)
    except TypeError as exc:
        given = ", ".join(sorted(workload_args)) or "no arguments"
        raise WorkloadError(f"{spec} cannot be called with {given}: {exc}") from None
    except ValueError:
        pass  # no signature to check (a builtin): let the call decide
    try:
        built = factory(**workload_args)
    except Exception as exc:
        raise WorkloadError(f"{spec}() raised {describe(exc)}") from exc
    if not isinstance(built, (tuple, list)) or len(built) not in (2, 3):
        raise WorkloadError(f"{spec}() returned {_kind(built)}, expected a tuple (model, run) or (model, run, metrics)")
    model, run, *rest = built
    metrics = rest[0] if rest else None
    if not isinstance(model, torch.nn.Module):
        raise WorkloadError(f"{spec}() returned a {type(model).__name__} as model, expected a torch.nn.Module")
    if not callable(run):
        raise WorkloadError(f"{spec}() returned a {type(run).__name__} as run, expected a callable run(model)")
    if metrics is not None and not callable(metrics):
        raise WorkloadError(f"{spec}() returned a {type(metrics).__name__} as metrics, expected a callable")
    return Workload(spec, model, run, metrics)


def _kind(value) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


def output_tensors(output, what: str = "run(model)") -> list:
    """The tensors of a run's output (a tensor, or tuples/lists of them, nested)."""
    import torch

    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)) and output:
        out = []
        for item in output:
            out.extend(output_tensors(item, what))
        return out
    raise WorkloadError(f"{what} returned {_kind(output)}, expected a tensor or a tuple of tensors")
