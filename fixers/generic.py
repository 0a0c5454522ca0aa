"""Generic fixes: rules with a safe mechanical rewrite, for any code base.

* TCS003 slice-assign with tensor bounds -> ``index_copy_`` at ``start + arange(n)``.
* TCS001 cache buffers written in place but never marked static -> ``mark_static_address``
  (guarded by ``not torch.compiler.is_compiling()``) at the end of the allocator.
* TCS005 ``torch._dynamo.graph_break()`` before a mutation (it does not isolate the mutation)
  -> the call is removed and the function runs eagerly with ``@torch.compiler.disable``.

Each fix works on one parsed module. When the linter's findings are given, a fix touches only
the lines (TCS003/TCS005) or classes (TCS001) that findings name; without findings it uses a
local, conservative recognition. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .cstutil import add_decorator, code, dotted, names_in, stmt, stmts

ALLOCATORS = {"torch.zeros", "torch.empty", "torch.ones", "torch.full", "torch.zeros_like",
              "torch.empty_like", "torch.ones_like", "torch.full_like", "torch.tensor", "torch.arange"}
GRAPH_BREAK = {"torch._dynamo.graph_break", "_dynamo.graph_break", "torch.compiler.graph_break"}


@dataclass
class Hints:
    """What the findings say about one file (None: no findings, use local recognition)."""

    lines: dict[str, set[int]] | None = None  # code -> lines
    targets: set[str] = field(default_factory=set)  # TCS001 data["target"] e.g. "self._keys"

    def wants(self, code_: str, line: int) -> bool:
        if self.lines is None:
            return True
        return line in self.lines.get(code_, set())


# ---------------------------------------------------------------------------------------------
# TCS003: slice-assign with tensor bounds -> index_copy_


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


def tensor_derived_names(fn: cst.FunctionDef) -> set[str]:
    """Local names assigned from tensor-looking expressions: a subscript of ``self.attr``,
    a ``torch.*`` call, or arithmetic on another such name (iterated to a fixed point)."""
    assigns: list[tuple[str, cst.BaseExpression]] = []

    class V(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            for t in node.targets:
                if isinstance(t.target, cst.Name):
                    assigns.append((t.target.value, node.value))

    fn.visit(V())
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, value in assigns:
            if name in found:
                continue
            if _tensor_looking(value, found):
                found.add(name)
                changed = True
    return found


def _tensor_looking(e: cst.BaseExpression, known: set[str]) -> bool:
    if isinstance(e, cst.Subscript):
        return isinstance(e.value, cst.Attribute) or _tensor_looking(e.value, known)
    if isinstance(e, cst.Call):
        name = dotted(e.func)
        if name in {"int", "len", "float", "bool"} or name.endswith(".item"):
            return False
        return name.startswith("torch.")
    if isinstance(e, cst.BinaryOperation):
        return _tensor_looking(e.left, known) or _tensor_looking(e.right, known)
    if isinstance(e, cst.Name):
        return e.value in known
    return False


# ---------------------------------------------------------------------------------------------
# TCS001: static marking for in-place written cache buffers


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


ALLOCATOR_METHODS = ("__init__", "__post_init__", "allocate", "reset_cache", "setup_cache", "init_cache")


# ---------------------------------------------------------------------------------------------
# The generic transformer


class GenericFixer(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, hints: Hints, selected, path: str):
        super().__init__()
        self.hints = hints
        self.selected = selected  # callable code -> bool
        self.path = path
        self.notes: list[str] = []
        self.fn_stack: list[cst.FunctionDef] = []
        self.tensor_names: list[set[str]] = []

    def _line(self, node) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _note(self, code_: str, node, what: str) -> None:
        self.notes.append(f"{code_} {self.path}:{self._line(node)} {what}")

    # -- functions ------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.fn_stack.append(node)
        self.tensor_names.append(tensor_derived_names(node))
        return True

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef):
        self.fn_stack.pop()
        self.tensor_names.pop()
        if not self.selected("TCS005"):
            return updated
        # TCS005: a graph_break() statement in the body (not nested defs) -> compiler.disable
        body = list(updated.body.body) if isinstance(updated.body, cst.IndentedBlock) else []
        keep, hit, carried = [], None, []
        for i, s in enumerate(body):
            if (isinstance(s, cst.SimpleStatementLine) and len(s.body) == 1 and isinstance(s.body[0], cst.Expr)
                    and isinstance(s.body[0].value, cst.Call) and dotted(s.body[0].value.func) in GRAPH_BREAK):
                orig_stmt = original.body.body[i]
                if self.hints.wants("TCS005", self._line(orig_stmt)):
                    hit = hit or orig_stmt
                    carried += list(s.leading_lines)  # keep the comments above the removed call
                    continue
            if carried and hasattr(s, "leading_lines"):
                s = s.with_changes(leading_lines=(*carried, *s.leading_lines))
                carried = []
            keep.append(s)
        if hit is None:
            return updated
        if not keep:
            keep = [stmt("pass")]
        self._note("TCS005", hit, f"graph_break() -> @torch.compiler.disable on {updated.name.value}")
        updated = updated.with_changes(body=updated.body.with_changes(body=tuple(keep)))
        return add_decorator(updated, "torch.compiler.disable")

    # -- TCS003 ---------------------------------------------------------------------------
    def leave_SimpleStatementLine(self, original, updated):
        if not self.selected("TCS003") or not self.fn_stack or len(updated.body) != 1:
            return updated
        a = updated.body[0]
        if not isinstance(a, cst.Assign) or len(a.targets) != 1 or not isinstance(a.targets[0].target, cst.Subscript):
            return updated
        line = self._line(original)
        if self.hints.lines is not None:
            if not self.hints.wants("TCS003", line):
                return updated
            names = None
        else:
            names = self.tensor_names[-1]
        src = index_copy_source(a.targets[0].target, a.value, tensor_names=names)
        if src is None:
            return updated
        self.notes.append(f"TCS003 {self.path}:{line} slice-assign with tensor bounds -> index_copy_")
        return updated.with_changes(body=[cst.Expr(cst.parse_expression(src))])

    # -- TCS001 static marking ------------------------------------------------------------
    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef):
        if not self.selected("TCS001"):
            return updated
        written = inplace_written_attrs(updated)
        if self.hints.lines is not None:
            targets = {t.split(".", 1)[1] for t in self.hints.targets if t.startswith("self.")}
            written &= targets
        if not written:
            return updated
        body = list(updated.body.body)
        for i, s in enumerate(body):
            if isinstance(s, cst.FunctionDef) and s.name.value.startswith(ALLOCATOR_METHODS):
                attrs = [a for a in allocated_attrs(s) if a in written]
                new = add_static_marking(s, attrs)
                if new is not s:
                    body[i] = new
                    self.notes.append(f"TCS001 {self.path}:{self._line(original.body.body[i])} "
                                      f"mark_static_address for {', '.join(attrs)} in {s.name.value}")
        return updated.with_changes(body=updated.body.with_changes(body=tuple(body)))


def fix_module(module: cst.Module, path: str, hints: Hints | None = None, selected=lambda c: True):
    """Apply the generic fixes to one module; returns (new module, notes)."""
    if "torch" not in module.code:
        return module, []
    fixer = GenericFixer(hints or Hints(), selected, path)
    new = MetadataWrapper(module, unsafe_skip_copy=True).visit(fixer)
    return new, fixer.notes
