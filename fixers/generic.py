"""Generic fixes: rules with a safe mechanical rewrite, for any code base.

* TCS003 slice-assign with tensor bounds -> ``index_copy_`` at ``start + arange(n)``.
* TCS001 cache buffers written in place but never marked static -> ``mark_static_address``
  (guarded by ``not torch.compiler.is_compiling()``) at the end of the allocator.
* TCS005 ``torch._dynamo.graph_break()`` before a mutation (it does not isolate the mutation)
  -> the call is removed and the function runs eagerly with ``@torch.compiler.disable``.

Each fix works on one parsed module. When the linter's findings are given, a fix touches only
the lines (TCS003/TCS005) or classes (TCS001) that findings name; without findings it uses a
local, conservative recognition. Nothing here imports torch.

:func:`could_fix` decides from the file's ``ast`` (cheap) whether any fix can apply: it mirrors the
recognition below as a superset, so files it rejects need no libcst parse at all.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from flake8_compile_safe.project import dotted as ast_dotted

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
        if any(isinstance(el.slice, cst.Index) and isinstance(el.slice.value, cst.SimpleString) for el in e.slice):
            return False  # obj["key"]: a mapping lookup (torch's self.ivars["istep"]), not a tensor
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
        self.tensor_names: list[set[str] | None] = []

    def _line(self, node) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _note(self, code_: str, node, what: str) -> None:
        self.notes.append(f"{code_} {self.path}:{self._line(node)} {what}")

    # -- functions ------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.fn_stack.append(node)
        self.tensor_names.append(None)  # computed on first use (most functions never need it)
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
            if self.tensor_names[-1] is None:
                self.tensor_names[-1] = tensor_derived_names(self.fn_stack[-1])
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


def fix_module(module: cst.Module, path: str, hints: Hints | None = None, selected=lambda c: True,
               text: str | None = None):
    """Apply the generic fixes to one module; returns (new module, notes).

    ``text``: the module's source when the caller has it (saves regenerating it from the tree).
    """
    if "torch" not in (module.code if text is None else text):
        return module, []
    fixer = GenericFixer(hints or Hints(), selected, path)
    new = MetadataWrapper(module, unsafe_skip_copy=True).visit(fixer)
    return new, fixer.notes


# ---------------------------------------------------------------------------------------------
# Cheap prefilter on the ``ast`` tree: could any generic fix apply to this file?
#
# Each check mirrors the libcst recognition above and accepts a superset of what it rewrites
# (when it says no, the fixer would have left the file unchanged). Keep them in step.

_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
_INDEX_COPY_VALUES = (ast.Name, ast.Attribute, ast.Subscript, ast.Call)


def _ast_dotted(node: ast.AST) -> str:
    return ast_dotted(node) or ""  # the linter's helper; '' where it says None


def _ast_idents(node: ast.AST) -> set[str]:
    """Every identifier libcst would see as a ``Name`` under ``node`` (names, attribute names, keywords)."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, ast.keyword) and n.arg:
            out.add(n.arg)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
    return out


def _ast_tensor_looking(e: ast.AST, known: set[str]) -> bool:
    if isinstance(e, ast.Subscript):
        if isinstance(e.slice, ast.Constant) and isinstance(e.slice.value, str):
            return False  # obj["key"]: a mapping lookup, not a tensor (as in _tensor_looking)
        return isinstance(e.value, ast.Attribute) or _ast_tensor_looking(e.value, known)
    if isinstance(e, ast.Call):
        name = _ast_dotted(e.func)
        if name in {"int", "len", "float", "bool"} or name.endswith(".item"):
            return False
        return name.startswith("torch.")
    if isinstance(e, ast.BinOp):
        return _ast_tensor_looking(e.left, known) or _ast_tensor_looking(e.right, known)
    if isinstance(e, ast.Name):
        return e.id in known
    return False


def _ast_tensor_derived_names(assigns: list[tuple[str, ast.AST]]) -> set[str]:
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, value in assigns:
            if name not in found and _ast_tensor_looking(value, found):
                found.add(name)
                changed = True
    return found


def _could_tcs005(fn: ast.AST) -> bool:
    return any(isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and _ast_dotted(s.value.func) in GRAPH_BREAK
               for s in fn.body)


def _ast_root_self_attr(node: ast.AST) -> str | None:
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _ast_inplace_written(cls: ast.ClassDef) -> set[str]:
    out: set[str] = set()
    for n in ast.walk(cls):
        if isinstance(n, ast.Assign):
            targets = [t for t in n.targets if isinstance(t, ast.Subscript)]
        elif isinstance(n, ast.AugAssign):
            targets = [n.target] if isinstance(n.target, ast.Subscript) else []
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
            attr = n.func.attr
            targets = [n.func.value] if attr.endswith("_") and not attr.startswith("__") and attr != "zero_" else []
        else:
            continue
        for t in targets:
            a = _ast_root_self_attr(t)
            if a:
                out.add(a)
    return out


def _bounded_slices(target: ast.Subscript) -> list[ast.Slice]:
    sl = target.slice
    return [el for el in (sl.elts if isinstance(sl, ast.Tuple) else [sl])
            if isinstance(el, ast.Slice) and el.lower is not None and el.upper is not None and el.step is None]


def _allocated_in(stmts_: list[ast.stmt], out: set[str]) -> None:
    """``X`` for every ``self.X = torch.zeros(...)``-style statement under ``stmts_`` (nested too)."""
    for st in stmts_:
        if isinstance(st, ast.Assign):
            if isinstance(st.value, ast.Call) and _ast_dotted(st.value.func) in ALLOCATORS:
                out.update(t.attr for t in st.targets if isinstance(t, ast.Attribute)
                           and isinstance(t.value, ast.Name) and t.value.id == "self")
        else:
            for block in _blocks(st):
                _allocated_in(block, out)


def _could_tcs001(cls: ast.ClassDef) -> bool:
    allocated: set[str] = set()
    for s in cls.body:
        if isinstance(s, _FUNCS) and s.name.startswith(ALLOCATOR_METHODS):
            _allocated_in(s.body, allocated)
    return bool(allocated) and bool(allocated & _ast_inplace_written(cls))


def _blocks(st: ast.stmt):
    """The statement lists directly inside a compound statement."""
    for name in ("body", "orelse", "finalbody"):
        block = getattr(st, name, None)
        if isinstance(block, list):
            yield block
    for h in getattr(st, "handlers", ()):
        yield h.body
    for c in getattr(st, "cases", ()):
        yield c.body


class _FnFacts:
    """Facts about an outermost function, nested functions and classes included.

    The fixer decides TCS003 with the innermost function's tensor-derived names; the outermost
    function's names are a superset of those (more assignments, same monotone rule), so checking
    every slice-assignment against them accepts a superset of what the fixer rewrites.
    """

    __slots__ = ("assigns", "slice_assigns")

    def __init__(self):
        self.assigns: list[tuple[str, ast.AST]] = []
        self.slice_assigns: list[ast.Subscript] = []

    def could_tcs003(self) -> bool:
        if not self.slice_assigns or not self.assigns:
            return False
        names = _ast_tensor_derived_names(self.assigns)
        if not names:
            return False
        return any((_ast_idents(el.lower) | _ast_idents(el.upper)) & names
                   for t in self.slice_assigns for el in _bounded_slices(t))


def could_fix(text: str, tree: ast.Module | None, selected=lambda c: True) -> bool:
    """False when no generic fix can change this file (local recognition, no findings).

    ``tree``: ``ast.parse(text)``, or None when ``ast`` could not parse it (then: maybe).
    One walk over the statements; expressions are only looked at where a fix needs them.
    """
    if "torch" not in text:
        return False  # fix_module's own first check
    if tree is None:
        return True
    want3, want5, want1 = selected("TCS003"), selected("TCS005"), selected("TCS001")
    want5 = want5 and "graph_break" in text
    facts: list[_FnFacts] = []

    class Found(Exception):
        pass

    def walk(stmts_: list[ast.stmt], fn: _FnFacts | None) -> None:
        for st in stmts_:
            if isinstance(st, _FUNCS):
                if want5 and _could_tcs005(st):
                    raise Found
                if fn is None and want3:
                    inner = _FnFacts()
                    facts.append(inner)
                    walk(st.body, inner)
                else:
                    walk(st.body, fn)
                continue
            if isinstance(st, ast.ClassDef):
                if want1 and _could_tcs001(st):
                    raise Found
                walk(st.body, fn)
                continue
            if isinstance(st, ast.Assign):
                if fn is not None:
                    for t in st.targets:
                        if isinstance(t, ast.Name):
                            fn.assigns.append((t.id, st.value))
                    t = st.targets[0]
                    if len(st.targets) == 1 and isinstance(t, ast.Subscript) \
                            and isinstance(st.value, _INDEX_COPY_VALUES) and _bounded_slices(t):
                        fn.slice_assigns.append(t)
                continue
            for block in _blocks(st):
                walk(block, fn)

    try:
        walk(tree.body, None)
    except Found:
        return True
    return any(f.could_tcs003() for f in facts)
