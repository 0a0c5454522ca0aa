"""Structural helpers for family recipes (libcst): the shapes a cache class is made of.

A recipe recognises its family by structure; these helpers read and write those structures. The
rule fixes (``..rules``) do not use them: they act on the linter's findings.
"""

from __future__ import annotations

import libcst as cst

from ..cstutil import code, dotted, names_in, stmts

ALLOCATORS = {"torch.zeros", "torch.empty", "torch.ones", "torch.full", "torch.zeros_like",
              "torch.empty_like", "torch.ones_like", "torch.full_like", "torch.tensor", "torch.arange"}


def index_copy_source(target: cst.Subscript, value: cst.BaseExpression, n_src: str | None = None,
                      tensor_names: set[str] | None = None) -> str | None:
    """``base[i, :, s:e] = v`` -> ``base[i].index_copy_(1, s + torch.arange(n, device=...), v)``.

    Handles leading scalar indices, then full ``:`` slices, one bounded slice (no step), then
    more ``:``. Returns None for anything else. ``tensor_names``: only rewrite when a bound
    uses one of these names. ``n_src``: the length written; default ``v.shape[dim]``.
    """
    scalars: list[str] = []
    dim = 0
    bounds = None
    for el in target.slice:
        s = el.slice
        if isinstance(s, cst.Index):
            if bounds is not None or dim or isinstance(s.value, cst.Ellipsis) or s.star is not None:
                return None
            scalars.append(code(s.value))
        elif isinstance(s, cst.Slice):
            full = s.lower is None and s.upper is None and s.step is None
            if full:
                if bounds is None:
                    dim += 1
            elif bounds is None and s.lower is not None and s.upper is not None and s.step is None:
                bounds = (s.lower, s.upper)
            else:
                return None
        else:
            return None
    if bounds is None:
        return None
    if tensor_names is not None and not ((names_in(bounds[0]) | names_in(bounds[1])) & tensor_names):
        return None
    if not isinstance(value, (cst.Name, cst.Attribute, cst.Subscript, cst.Call)):
        return None  # a literal would broadcast; index_copy_ needs the exact shape
    base = code(target.value)
    view = f"{base}[{', '.join(scalars)}]" if scalars else base
    val = code(value)
    n = n_src or f"{val}.shape[{dim}]"
    return f"{view}.index_copy_({dim}, {code(bounds[0])} + torch.arange({n}, device={base}.device), {val})"


def inplace_written_attrs(cls: cst.ClassDef) -> set[str]:
    """``X`` for every ``self.X[...] = ...`` or ``self.X[...].op_(...)`` / ``self.X.op_(...)``."""
    out: set[str] = set()

    def root_attr(node) -> str | None:
        while isinstance(node, cst.Subscript):
            node = node.value
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
            return node.attr.value
        return None

    class V(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            for t in node.targets:
                if isinstance(t.target, cst.Subscript):
                    a = root_attr(t.target)
                    if a:
                        out.add(a)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            if isinstance(node.target, cst.Subscript):
                a = root_attr(node.target)
                if a:
                    out.add(a)

        def visit_Call(self, node: cst.Call) -> None:
            f = node.func
            if isinstance(f, cst.Attribute) and f.attr.value.endswith("_") and not f.attr.value.startswith("__"):
                if f.attr.value in {"zero_"}:
                    return  # a reset outside the compiled path; not evidence of a cache write
                a = root_attr(f.value)
                if a:
                    out.add(a)

    cls.visit(V())
    return out


def allocated_attrs(fn: cst.FunctionDef) -> list[str]:
    """Attributes ``self.X = torch.zeros(...)``-style allocated in ``fn``, in order."""
    out: list[str] = []

    class V(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if isinstance(node.value, cst.Call) and dotted(node.value.func) in ALLOCATORS:
                for t in node.targets:
                    tt = t.target
                    if isinstance(tt, cst.Attribute) and isinstance(tt.value, cst.Name) and tt.value.value == "self":
                        out.append(tt.attr.value)

    fn.visit(V())
    return out


def static_marking_block(attrs: list[str]) -> list[cst.BaseStatement]:
    marks = "".join(f"    torch._dynamo.mark_static_address(self.{a})\n" for a in attrs)
    return stmts(
        "# Cache buffers are written in place on the compiled path: mark them static so that\n"
        "# CUDA graphs accept the writes (torch.compile skips graphs with non-static mutated inputs).\n"
        "if not torch.compiler.is_compiling():\n" + marks
    )


def add_static_marking(fn: cst.FunctionDef, attrs: list[str]) -> cst.FunctionDef:
    """Append the marking block to ``fn`` (before a final ``return``); idempotent."""
    if not attrs or "mark_static_address" in code(fn):
        return fn
    body = list(fn.body.body)
    block = static_marking_block(attrs)
    if body and isinstance(body[-1], cst.SimpleStatementLine) and isinstance(body[-1].body[0], cst.Return):
        body[-1:-1] = block
    else:
        body.extend(block)
    return fn.with_changes(body=fn.body.with_changes(body=tuple(body)))
