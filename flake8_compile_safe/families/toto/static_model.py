"""Static decode, parts 3 and 4: the compiled readers of the cache length.

* The entry method that scales the whole history and then truncates it to the new part with a
  prefix length computed from ``cache.current_len(...)`` (a SymInt per step): it now slices the
  newest step with a constant bound when the cache is prefilled, and scales through the scaler's
  ``stream`` with the cache's running statistics (docs/toto-static-decode.md, section 3).
* ``x = cache.current_len(...)`` compared with 0 -> ``not cache.prefilled()``; a dead store of
  ``cache.seq_len(...)`` -> removed (section 4).
"""

from __future__ import annotations

import libcst as cst

from ...fixers.cstutil import code, expr, names_in, stmt, stmts
from .static_cache import PREFILLED, STATS

LENGTH_METHODS = (".current_len(", ".seq_len(")


def _assign(st) -> cst.Assign | None:
    if isinstance(st, cst.SimpleStatementLine) and len(st.body) == 1 and isinstance(st.body[0], cst.Assign) \
            and len(st.body[0].targets) == 1:
        return st.body[0]
    return None


def _cache_test(node: cst.If) -> str | None:
    """``if NAME is not None:`` -> NAME."""
    t = node.test
    if isinstance(t, cst.Comparison) and isinstance(t.left, cst.Name) and len(t.comparisons) == 1 \
            and isinstance(t.comparisons[0].operator, cst.IsNot) and code(t.comparisons[0].comparator) == "None":
        return t.left.value
    return None


def _scaler_call(st) -> tuple[str, cst.Call, str] | None:
    """``out, loc, scale = self.S(x, ..., prefix_length=...)`` -> (first target, call, x)."""
    a = _assign(st)
    if a is None or not isinstance(a.targets[0].target, cst.Tuple) or not isinstance(a.value, cst.Call):
        return None
    call = a.value
    if not (isinstance(call.func, cst.Attribute) and code(call.func.value) == "self"):
        return None
    if not any(arg.keyword and arg.keyword.value == "prefix_length" for arg in call.args):
        return None
    first = a.targets[0].target.elements[0].value
    if not call.args or call.args[0].keyword or not isinstance(call.args[0].value, cst.Name) \
            or not isinstance(first, cst.Name):
        return None
    return first.value, call, call.args[0].value.value


def _truncations(block: cst.If, prefix_names: set[str]) -> tuple[list[tuple[str, cst.Subscript]], str | None]:
    """``t = t[..., prefix:]`` statements in ``block`` and the step size its assert names."""
    cuts, step = [], None
    for st in block.body.body:
        a = _assign(st)
        if a is not None and isinstance(a.targets[0].target, cst.Name) and isinstance(a.value, cst.Subscript):
            name = a.targets[0].target.value
            last = a.value.slice[-1].slice
            if code(a.value.value) == name and isinstance(last, cst.Slice) and last.upper is None \
                    and last.lower is not None and code(last.lower) in prefix_names:
                cuts.append((name, a.value))
        if isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.Assert):
            for cmp in _comparisons(st.body[0].test):
                if ".shape[-1]" in code(cmp.left) and isinstance(cmp.comparisons[0].operator, cst.Equal):
                    step = code(cmp.comparisons[0].comparator)
    return cuts, step


def _comparisons(node) -> list[cst.Comparison]:
    out = []

    class V(cst.CSTVisitor):
        def visit_Comparison(self, n):
            out.append(n)

    node.visit(V())
    return out


def _prefix_names(block: cst.If) -> set[str]:
    """Names assigned in ``block`` from a cache length read (directly or through each other)."""
    derived: set[str] = set()
    for st in block.body.body:
        a = _assign(st)
        if a is not None and isinstance(a.targets[0].target, cst.Name):
            text = code(a.value)
            if any(m in text for m in LENGTH_METHODS) or names_in(a.value) & derived:
                derived.add(a.targets[0].target.value)
    return derived


class _ClassScoped(cst.CSTTransformer):
    """Keeps the names of the classes the visit is inside, innermost last."""

    def __init__(self):
        super().__init__()
        self._classes: list[str] = []

    def visit_ClassDef(self, node):
        self._classes.append(node.name.value)

    def leave_ClassDef(self, original, updated):
        self._classes.pop()
        return updated

    def _enclosing_class(self, default: str) -> str:
        return self._classes[-1] if self._classes else default


class EntryRewriter(_ClassScoped):
    """Section 3, on every function of a module; ``found`` counts the rewritten entry points."""

    def __init__(self):
        super().__init__()
        self.found = 0
        self.scaler_attr: str | None = None
        self.class_name = ""  # of the (last) rewritten entry method

    def leave_FunctionDef(self, original, updated):
        body = list(updated.body.body)
        for i in range(len(body) - 1):
            sc = _scaler_call(body[i])
            nxt = body[i + 1]
            if sc is None or not isinstance(nxt, cst.If) or _cache_test(nxt) is None or nxt.orelse is not None:
                continue
            if not any(m in code(nxt.body) for m in LENGTH_METHODS):
                continue
            out_name, call, x = sc
            cache = _cache_test(nxt)
            cuts, step = _truncations(nxt, _prefix_names(nxt))
            if step is None or out_name not in {n for n, _ in cuts}:
                continue
            new = self._entry(body[i], call, x, cache, cuts, out_name, step)
            if new is None:
                continue
            self.found += 1
            self.scaler_attr = call.func.attr.value
            self.class_name = self._enclosing_class("")
            body[i:i + 2] = [new]
            return updated.with_changes(body=updated.body.with_changes(body=tuple(body)))
        return updated

    @staticmethod
    def _entry(scale_st, call: cst.Call, x: str, cache: str, cuts, out_name: str, step: str) -> cst.If | None:
        lines = []
        for name, sub in cuts:
            target = x if name == out_name else name
            last = sub.slice[-1].with_changes(slice=sub.slice[-1].slice.with_changes(lower=expr("-stride")))
            new_sub = sub.with_changes(value=cst.Name(target), slice=[*sub.slice[:-1], last])
            lines.append(f"        {target} = {code(new_sub)}\n")
        # the same call (its layout kept), on ``stream``, with the statistics first and ``start`` last
        last = call.args[-1]
        indent = last.whitespace_after_arg
        indent = indent if isinstance(indent, cst.ParenthesizedWhitespace) else None
        comma = cst.Comma(whitespace_after=call.args[0].comma.whitespace_after
                          if isinstance(call.args[0].comma, cst.Comma) else cst.SimpleWhitespace(" "))
        no_space = cst.SimpleWhitespace("")
        stream = call.with_changes(
            func=cst.Attribute(value=call.func, attr=cst.Name("stream")),
            args=[cst.Arg(expr(f"{cache}.{STATS}"), comma=comma), *call.args[:-1],
                  last.with_changes(comma=comma, whitespace_after_arg=no_space),
                  cst.Arg(expr("not decoding"), keyword=cst.Name("start"),
                          comma=cst.Comma() if indent else cst.MaybeSentinel.DEFAULT,
                          equal=cst.AssignEqual(whitespace_before=no_space, whitespace_after=no_space),
                          whitespace_after_arg=indent or no_space)])
        targets = code(_assign(scale_st).targets[0].target)
        src = (
            f"if {cache} is None:\n"
            "    pass\n"
            "else:\n"
            "    # The cache holds the earlier steps: the first call (prefill) processes the whole input,\n"
            "    # every later one only the newest step (a host flag, constant while decoding), whether the\n"
            "    # caller passes it alone (fixed shapes) or at the end of the whole history. The scaler\n"
            "    # continues from running statistics kept in the cache instead of re-reading the history.\n"
            f"    decoding = {cache}.{PREFILLED}()\n"
            "    if decoding:\n"
            f"        stride = {step}\n"
            + "".join(lines) +
            f"    {targets} = STREAM\n"
        )
        node = cst.ensure_type(stmt(src), cst.If)
        node = node.with_changes(body=node.body.with_changes(body=(scale_st,)), leading_lines=scale_st.leading_lines)
        scale_first = scale_st.with_changes(leading_lines=())
        node = node.with_changes(body=node.body.with_changes(body=(scale_first,)))
        orelse_body = list(node.orelse.body.body)
        last = _assign(orelse_body[-1])
        orelse_body[-1] = orelse_body[-1].with_changes(body=[last.with_changes(value=stream)])
        orelse = node.orelse.with_changes(body=node.orelse.body.with_changes(body=tuple(orelse_body)))
        return node.with_changes(orelse=orelse)


class ReaderRewriter(_ClassScoped):
    """Section 4: length reads compared with 0 -> ``not cache.prefilled()``; dead length stores removed."""

    def __init__(self):
        super().__init__()
        self.changed = 0
        self.class_name = ""

    def leave_If(self, original, updated):
        cache = _cache_test(updated)
        if cache is None or updated.orelse is not None:
            return updated
        body = list(updated.body.body)
        derived = _prefix_names(updated)
        last = _assign(body[-1]) if body else None
        if not derived or last is None or not all(_assign(st) is not None for st in body):
            return updated
        v = last.value
        if not (isinstance(v, cst.Comparison) and len(v.comparisons) == 1 and code(v.comparisons[0].comparator) == "0"
                and isinstance(v.comparisons[0].operator, cst.Equal) and names_in(v.left) <= derived):
            return updated
        if any(f"{cache}." not in code(_assign(st).value) for st in body[:1]):
            return updated
        self.changed += 1
        self.class_name = self._enclosing_class(self.class_name)
        new_last = body[-1].with_changes(body=[last.with_changes(value=expr(f"not {cache}.{PREFILLED}()"))],
                                         leading_lines=body[0].leading_lines)
        return updated.with_changes(body=updated.body.with_changes(body=(new_last,)))

    def leave_FunctionDef(self, original, updated):
        body = list(updated.body.body)
        keep = []
        for i, st in enumerate(body):
            a = _assign(st)
            if a is not None and isinstance(a.targets[0].target, cst.Name) and ".seq_len(" in code(a.value):
                name = a.targets[0].target.value
                rest = cst.Module(body=body[i + 1:])
                if name not in names_in(rest):
                    self.changed += 1
                    self.class_name = self._enclosing_class(self.class_name)
                    continue  # a dead store of a per-step length
            keep.append(st)
        if len(keep) == len(body):
            return updated
        return updated.with_changes(body=updated.body.with_changes(body=tuple(keep)))


def remaining_length_reads(module: cst.Module) -> list[str]:
    """Calls of the cache length methods left in ``module`` outside the cache class (per-step ints)."""
    out = []
    for st in module.body:
        if isinstance(st, (cst.ClassDef, cst.FunctionDef)):
            text = code(st)
            if isinstance(st, cst.ClassDef) and f"def {PREFILLED}(" in text:
                continue
            out += [line.strip() for line in text.splitlines() if any(m in line for m in LENGTH_METHODS)
                    and "def " not in line]
    return out


__all__ = ["EntryRewriter", "ReaderRewriter", "remaining_length_reads", "stmts"]
