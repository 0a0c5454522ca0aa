"""TCS003: a slice bound or index that comes from tensor data or mutable Python-int state."""

from __future__ import annotations

import ast

from ..fixdata import EAGER_HELPER, INDEX_COPY, INDEX_SELECT
from ..fixfacts import counter_of_bound, slice_access
from ..values import HOST, INTSTATE, TENSOR_VALUE
from .base import Example, Hit, Rule, source_of

VALUE_NAMES = {TENSOR_VALUE: "tensor", HOST: "host number", INTSTATE: "mutable int"}
CONSEQUENCES = {
    TENSOR_VALUE: "dynamo skips the whole frame (runs it eagerly)",
    HOST: "a graph break at the read and a recompile per value",
    INTSTATE: "a recompile per value",
}
REASONS = {
    TENSOR_VALUE: "a tensor used as a slice bound makes dynamo skip the whole frame and run it eagerly",
    HOST: "a number read from a tensor used as an index is data-dependent: a graph break at the read and one "
          "recompile per value",
    INTSTATE: "a mutable Python int used as an index is specialised: one recompile per value until "
              "recompile_limit (8)",
}


class DataDependentIndex(Rule):
    code = "TCS003"
    name = "data-dependent-index"
    consequence = "a graph break or a recompile per value"
    why = "the graph's shapes would depend on data, so dynamo falls back, breaks or recompiles"
    fix = ("keep fixed-length buffers and write with index_copy_ at `start + arange(n)` (a tensor position); "
           "read the full buffer and mask unwritten slots")
    what_it_does = ("Flags subscripts (reads and writes) whose slice bound comes from a tensor, from a number "
                    "read out of a tensor, or from a Python int attribute the code mutates; and integer "
                    "indices from the last two. `k[:, start:end] = v` with tensor `start`, `k[:, :end_idx]` "
                    "with `end_idx` from `.item()`, `k[:, pos] = v` with a Python-int `pos` that advances.")
    why_bad = ("A slice's length is a shape. With a tensor bound, dynamo cannot trace it at all and gives up "
               "on the whole frame ('Skipping the function and falling back to eager', counted in "
               "`counters['unimplemented']`). With a host number the read is a graph break and the shape is "
               "specialised per value; with mutable int state every step is a new constant: a recompile per "
               "decode step until `recompile_limit`.")
    use_instead_note = "Write at a tensor position with `index_copy_`, read the fixed-length buffer, mask the rest."
    fix_safety = ("A read whose length depends on data (`buf[:end]`) is not rewritten: the shape would change, "
                  "and so would every reader (a model-family recipe may rewrite it together with its readers).")
    fixes = (INDEX_COPY, INDEX_SELECT, EAGER_HELPER)
    INVALID = (
        Example('''\
import torch


class Cache:
    def __init__(self):
        self.keys = torch.zeros(8, 4)
        self.end = torch.zeros((), dtype=torch.long)

    def append(self, k):
        start = self.end
        self.keys[start:start + k.shape[0]] = k  # TCS003: tensor slice bounds
        n = int(self.end.item())
        return self.keys[:n]  # TCS003: bound read from a tensor


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        return cache.append(x)
''',
                fixed='''\
import torch


class Cache:
    def __init__(self):
        self.keys = torch.zeros(8, 4)
        self.end = torch.zeros((), dtype=torch.long)
        # written in place on the compiled path: static addresses keep CUDA graphs (compile-safe-fix)
        if not torch.compiler.is_compiling():
            torch._dynamo.mark_static_address(self.keys)

    def append(self, k):
        start = self.end
        self.keys[start:start + k.shape[0]] = k  # TCS003: tensor slice bounds
        n = int(self.end.item())
        return self.keys[:n]  # TCS003: bound read from a tensor


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        return cache.append(x)
'''),
        Example('''\
import torch


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pos = 0
        self.register_buffer("cache", torch.zeros(16, 4))

    def forward(self, x):
        self.cache[self.pos] = x  # TCS003: a Python int that advances every call
        self.pos += 1
        return self.cache
''',
                fixed='''\
import torch


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("pos", torch.tensor(0, dtype=torch.long), persistent=False)
        self.register_buffer("cache", torch.zeros(16, 4))

    def forward(self, x):
        self.cache[self.pos.view(1)] = x  # TCS003: a Python int that advances every call
        self.pos.add_(1)
        return self.cache
'''),
        Example('''\
import torch


class Cache:
    def __init__(self, size: int):
        self.keys = torch.zeros(size, 4)
        self.head = torch.zeros((), dtype=torch.long)

    def append(self, k: torch.Tensor):
        start = int(self.head.item())
        self.keys[start:start + k.shape[0]] = k  # TCS003
        self.head += k.shape[0]
        return self.keys


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        return cache.append(x)
''', "a write head read back to the host",
                fixed='''\
import torch


class Cache:
    def __init__(self, size: int):
        self.keys = torch.zeros(size, 4)
        self.head = torch.zeros((), dtype=torch.long)
        # written in place on the compiled path: static addresses keep CUDA graphs (compile-safe-fix)
        if not torch.compiler.is_compiling():
            torch._dynamo.mark_static_address(self.keys)
            torch._dynamo.mark_static_address(self.head)

    def append(self, k: torch.Tensor):
        start = self.head.clone()
        self.keys.index_copy_(0, start + torch.arange(k.shape[0], device=self.keys.device), k.to(self.keys))  # TCS003
        self.head.add_(k.shape[0])
        return self.keys


class Model(torch.nn.Module):
    def forward(self, x, cache: Cache):
        return cache.append(x)
'''),
    )
    VALID = (
        Example('''\
import torch


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("cache", torch.zeros(16, 4))
        self.register_buffer("pos", torch.zeros(1, dtype=torch.long))

    def forward(self, x):
        self.cache.index_copy_(0, self.pos, x)
        mask = torch.arange(16) <= self.pos
        return self.cache * mask[:, None], x[:, :2]
'''),
    )

    def check(self, stmt, ctx):
        for node in ctx.nodes(ast.Subscript):
            if not isinstance(node, ast.Subscript):
                continue
            if ctx.value(node.value).cls:
                continue  # obj[i] on a project class: a __getitem__ call, followed
            parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            found = []
            for part in parts:
                if isinstance(part, ast.Slice):
                    for bound in (part.lower, part.upper, part.step):
                        value = ctx.value(bound).value if bound is not None else None
                        if value in REASONS:
                            found.append((bound, value, "slice bound"))
                else:
                    value = ctx.value(part).value
                    if value in (HOST, INTSTATE):
                        found.append((part, value, "index"))
            if not found:
                continue
            worst = max(found, key=lambda f: (TENSOR_VALUE, HOST, INTSTATE).index(f[1]) * -1)
            bound, value, what = worst
            more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
            kind = {TENSOR_VALUE: "tensor", HOST: "host", INTSTATE: "intstate"}[value]
            counter = next((counter_of_bound(b, ctx) for b, v, _ in found if v == INTSTATE), None)
            yield Hit(node, f"`{source_of(node)}`: {VALUE_NAMES[value]} {what} `{source_of(bound, 24)}`{more}",
                      why=REASONS[worst[1]], consequence=CONSEQUENCES[worst[1]],
                      data={"kind": "tensor-slice" if worst[1] == TENSOR_VALUE else worst[1],
                            "store": isinstance(node.ctx, ast.Store), "expr": source_of(node, 300),
                            "fix": slice_access(node, stmt, ctx, kind), "counter": counter})
