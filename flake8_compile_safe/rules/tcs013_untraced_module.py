"""TCS013: calling a submodule dynamo does not trace (nn.LSTM / GRU / RNN, a TorchScript module)."""

from __future__ import annotations

import ast

from .base import Example, Hit, Rule, source_of

# torch/_dynamo/variables/builder.py (torch 2.13): wrapping one of these (or a subclass) is
# unimplemented unless torch._dynamo.config.allow_rnn is set.
RNN_MODULES = {
    "torch.nn.LSTM", "torch.nn.GRU", "torch.nn.RNN", "torch.nn.modules.rnn.LSTM", "torch.nn.modules.rnn.GRU",
    "torch.nn.modules.rnn.RNN",
}
SCRIPTED = {"torch.jit.script", "torch.jit.trace", "torch.jit.freeze", "torch.jit.load", "torch.jit.trace_module"}


class UntracedModule(Rule):
    code = "TCS013"
    name = "untraced-module"
    consequence = "a graph break at every call"
    why = ("dynamo does not trace nn.LSTM, nn.GRU, nn.RNN (nor their subclasses) unless "
           "torch._dynamo.config.allow_rnn is set, nor TorchScript modules, which run in the TorchScript runtime")
    fix = ("set torch._dynamo.config.allow_rnn = True (experimental), or write the recurrence with nn.LSTMCell / "
           "nn.GRUCell, or keep the eager module instead of its scripted form")
    what_it_does = ("Flags, on a compiled path, calls of a submodule built as `nn.LSTM`, `nn.GRU` or `nn.RNN` (or a "
                    "project subclass of one), or as a TorchScript module (`torch.jit.script(...)`, "
                    "`torch.jit.trace(...)`, `torch.jit.freeze`, `torch.jit.load`). The submodule's class is what "
                    "the class assigns to the attribute (`self.rnn = nn.LSTM(...)`); a receiver of unknown class is "
                    "not flagged. `nn.LSTMCell` / `nn.GRUCell` / `nn.RNNCell` trace and are not flagged.")
    why_bad = ("Measured on torch 2.13: calling an `nn.LSTM`, `nn.GRU` or `nn.RNN` (or a subclass) inside a compiled "
               "function is a graph break ('Attempted to wrap RNN, GRU, or LSTM'); a TorchScript submodule is one "
               "too ('torch.jit.script/freeze modules unsupported'). The recurrence runs eagerly, the graph is "
               "split around it, and in a sampling loop that calls the RNN once per step the break repeats every "
               "step.")
    use_instead_note = ("Set `torch._dynamo.config.allow_rnn = True` before compiling (experimental support), or "
                        "step an `nn.LSTMCell` yourself; keep TorchScript out of the compiled model.")
    fix_safety = "Not rewritten."
    INVALID = (
        Example('''\
import torch
from torch import nn


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 8, batch_first=True)
        self.head = torch.jit.script(nn.Linear(8, 1))

    def forward(self, x, steps: int):
        out, state = self.rnn(x)  # TCS013
        for _ in range(steps):
            out, state = self.rnn(out[:, -1:, :4], state)  # TCS013
        return self.head(out)  # TCS013
'''),
    )
    VALID = (
        Example('''\
import torch
from torch import nn


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(4, 8)  # a cell traces: the loop is written out in Python
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        h = c = x.new_zeros(x.shape[0], 8)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
        return self.head(h)
'''),
    )

    def check(self, stmt, ctx):
        for call in ctx.nodes(ast.Call):
            func = call.func
            if not isinstance(func, ast.Attribute):
                continue
            klass = ctx.class_of(ctx.value(func.value))
            if klass is None:
                continue
            held = ctx.attribute(klass, func.attr)
            built = _untraced(held, ctx.index) if held is not None else None
            if built is not None:
                short = built.rsplit(".", 1)[-1]
                what = f"a TorchScript module (`{short}`)" if built in SCRIPTED else f"an `nn.{short}`"
                yield Hit(call, f"`{source_of(call)}` calls {what}, which dynamo does not trace",
                          data={"kind": "untraced-module", "module": built, "attribute": func.attr})


def _untraced(held, index) -> str | None:
    """The untraced library class (or scripting call) an attribute was built with, or None."""
    if held.external in RNN_MODULES or held.external in SCRIPTED:
        return held.external
    for qualname in held.classes:
        klass = index.lookup_class(qualname)
        for current in index.mro(klass) if klass is not None else ():
            found = next((base for base in current.bases if base in RNN_MODULES), None)
            if found is not None:
                return found
    return None
