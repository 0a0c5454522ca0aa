"""TCS002: a tensor value copied to the host inside a compiled path."""

from __future__ import annotations

import ast

from ..values import HOST, TENSOR_VALUE
from ..project import DICT, LIST
from ..fixdata import EAGER_HELPER, KEEP_TENSOR
from ..fixfacts import host_value
from .base import Example, Hit, Rule, source_of

CONVERSIONS = {"int", "float", "bool", "complex"}


class HostSync(Rule):
    code = "TCS002"
    name = "tensor-to-host"
    consequence = "a graph break, then a recompile per value"
    why = ("reading a tensor's value on the host is a graph break (or a whole-frame fallback), and the Python "
           "number it yields is guarded on: one recompile per value")
    fix = ("keep the value a tensor (index with it, use torch.where / index_copy_), or keep a Python-int mirror "
           "updated outside the compiled region")
    what_it_does = ("Flags `.item()`, `.tolist()`, `.numpy()`, `int()`/`float()`/`bool()` of a tensor, `.cpu()` "
                    "used as a value, and calls to project functions whose result is such a host number "
                    "(`kv_cache.current_len(0)` when `current_len` returns `int(t.item())`), on a compiled path.")
    why_bad = ("Dynamo cannot put a host value into an FX graph. By default (`capture_scalar_outputs=False`) "
               "`.item()` ends the graph; the value then becomes a Python constant the next graph is "
               "specialised and guarded on, so every new value recompiles until `recompile_limit` (8). "
               "`.cpu()` in a CUDA graph makes cudagraphs skip ('skipping cudagraphs due to cpu device').")
    use_instead_note = "Keep positions and lengths as tensors on the device and compute with them."
    fix_safety = ("Other host reads are reported, not rewritten: what the number feeds decides the right tensor "
                  "form.")
    fixes = (KEEP_TENSOR, EAGER_HELPER)
    INVALID = (
        Example('''\
import torch


class Decoder(torch.nn.Module):
    def forward(self, x, pos: torch.Tensor):
        offset = pos.item()  # TCS002
        scale = float(x.max())  # TCS002
        return x * scale + offset
'''),
        Example('''\
import torch


class Cache:
    def __init__(self):
        self.length = torch.zeros(1, dtype=torch.long)

    def current_len(self) -> int:
        return int(self.length.item())  # TCS002


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        n = cache.current_len()  # TCS002: returns a host number read from a tensor
        return x + n
''', "a helper that hides the read is flagged at its call site too"),
        Example('''\
import torch


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("table", torch.zeros(16, 4))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        i = int(self.step.item())  # TCS002
        return x + self.table[i]
''', "a number read only to index a tensor",
                fixed='''\
import torch


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("table", torch.zeros(16, 4))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        i = self.step.clone()  # TCS002
        return x + self.table.index_select(0, i.view(1)).squeeze(0)
'''),
    )
    VALID = (
        Example('''\
import torch


class Decoder(torch.nn.Module):
    def forward(self, x, pos: torch.Tensor):
        n = x.shape[-1]  # shapes are static (or symbolic), not data
        return x * n + pos  # the position stays a tensor


def report(x):
    return x.item()  # not reached from a compiled path
'''),
    )

    def check(self, stmt, ctx):
        statement_call = stmt.value if isinstance(stmt, ast.Expr) else None
        for node in ctx.nodes(ast.Call):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute):
                recv = ctx.value(func.value)
                if func.attr == "item" and not recv.cls:
                    yield Hit(node, f"`{source_of(node)}` copies a tensor value to the host",
                              data={"kind": "item", "expr": source_of(node, 200), "fix": host_value(node, stmt, ctx)})
                    continue
                if func.attr in ("tolist", "numpy") and recv.value not in (LIST, DICT) and not recv.cls:
                    yield Hit(node, f"`{source_of(node)}` copies a tensor to the host",
                              data={"kind": func.attr, "expr": source_of(node, 200)})
                    continue
                if func.attr == "cpu" and recv.value == TENSOR_VALUE and node is not statement_call:
                    yield Hit(node, f"`{source_of(node)}` moves a tensor to the host",
                              data={"kind": "cpu", "expr": source_of(node, 200)})
                    continue
            if isinstance(func, ast.Name) and func.id in CONVERSIONS and node.args:
                if ctx.resolve(func.id) == func.id and ctx.value(node.args[0]).value == TENSOR_VALUE:
                    yield Hit(node, f"`{source_of(node)}` converts a tensor to a Python {func.id}",
                              data={"kind": "conversion", "expr": source_of(node, 200),
                                    "fix": host_value(node, stmt, ctx)})
                    continue
            targets = ctx.targets(node)
            if targets and not any(t.constructs for t in targets):
                returned = ctx.returns(node)
                if returned.value == HOST:
                    callee = targets[0].func.display
                    yield Hit(node, f"`{source_of(node)}` returns a Python number read from tensor data "
                                    f"(in {callee})",
                              data={"kind": "host-call", "callee": targets[0].func.qualname,
                                    "expr": source_of(node, 200)})
