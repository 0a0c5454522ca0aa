"""TCS007: a number read from a tensor (or mutable int state) passed as a plain argument to a torch op."""

from __future__ import annotations

import ast

from ..values import HOST, INTSTATE, TENSOR_VALUE, TORCH_CHECKS, TORCH_HOST_NAMESPACES
from ..project import dotted
from ..fixdata import EAGER_HELPER
from .base import Example, Hit, Rule, source_of


class DataDependentArgument(Rule):
    code = "TCS007"
    name = "data-dependent-argument"
    consequence = "a graph break or a recompile per value"
    why = ("a torch op's non-tensor arguments (sizes, flags such as is_causal) are baked into the graph: a "
           "value read from a tensor becomes a symbolic guard the op may reject (graph break) or a "
           "recompile per value")
    fix = "pass a tensor (a mask instead of is_causal, a tensor offset) or a value that is constant per model"
    what_it_does = ("Flags calls to torch functions and tensor methods that receive, as a non-tensor argument, "
                    "a number read from a tensor or a Python int attribute the code mutates: "
                    "`scaled_dot_product_attention(..., is_causal=offset == 0)` with `offset` from `.item()`, "
                    "`torch.arange(n)` or `x.narrow(0, start, n)` with such an `n`.")
    why_bad = ("Such arguments are specialised into the graph. Measured on Toto (torch 2.13): "
               "`is_causal=(mask is None and seq_pos_offset == 0)` with `seq_pos_offset` read from the KV "
               "cache is a graph break ('TypeError when making fake tensor call': the op needs a real bool, "
               "dynamo has a symbolic one), and every new offset is a recompile.")
    use_instead_note = ("Build the mask from tensors (`torch.arange(L) <= offset_tensor`) and pass `attn_mask=`; "
                        "keep sizes static (full-length buffers) and select with masks.")
    fix_safety = ("No tensor-index rewrite in general. A model-family recipe may rewrite a known shape (Toto's "
                  "data-dependent `is_causal` becomes a mask built from the tensor offset).")
    fixes = (EAGER_HELPER,)
    INVALID = (
        Example('''\
import torch
import torch.nn.functional as F


class Attention(torch.nn.Module):
    def forward(self, q, k, v, offset: torch.Tensor):
        start = int(offset.item())
        out = F.scaled_dot_product_attention(q, k, v, is_causal=start == 0)  # TCS007
        positions = torch.arange(start, start + q.shape[-2])  # TCS007
        return out, positions
'''),
    )
    VALID = (
        Example('''\
import torch
import torch.nn.functional as F


class Attention(torch.nn.Module):
    def forward(self, q, k, v, offset: torch.Tensor):
        positions = offset + torch.arange(q.shape[-2])  # stays a tensor
        mask = torch.arange(k.shape[-2]) <= positions[:, None]
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=False)
'''),
    )

    def check(self, stmt, ctx):
        for node in ctx.nodes(ast.Call):
            func = node.func
            name = dotted(func)
            resolved = ctx.resolve(name) if name else ""
            if resolved.startswith(TORCH_CHECKS):
                continue  # torch._check(u >= 0), torch._check_is_size(u): the tools for this, not hazards
            is_torch_op = resolved.startswith("torch.") and not resolved.startswith(TORCH_HOST_NAMESPACES)
            if not is_torch_op and isinstance(func, ast.Attribute):
                is_torch_op = ctx.value(func.value).value == TENSOR_VALUE
            if not is_torch_op:
                continue
            bad = []
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if ctx.value(arg).value in (HOST, INTSTATE):
                    keyword = next((k.arg for k in node.keywords if k.value is arg), None)
                    bad.append(f"{keyword}={source_of(arg, 40)}" if keyword else source_of(arg, 40))
            if bad:
                yield Hit(node, f"`{source_of(func, 40)}` gets data-dependent argument(s): {', '.join(bad)}",
                          data={"kind": "argument", "args": bad})
