"""Static decode, part 1: the cache class, taken from the ``tensor-index`` form to the static form.

Input: the cache class as :func:`.recipe.rewrite_cache_tensor_index` left it (a tensor write head, a
Python-int length mirror, stacked buffers ``zeros((n_layers, ...))`` indexed by a host layer index).
Output (see docs/toto-static-decode.md, section 1):

* one buffer per layer (``[zeros(shape) for _ in range(n)]``): a write to layer ``i`` is then an
  in-place write of the new slots to one graph input, not a rewrite of the whole stacked input;
* no Python length mirror: a host phase flag (``prefilled()``), constant while decoding, set at
  the end of ``append`` and cleared in ``reset``; the bound check becomes ``torch._assert_async``;
  the length methods read the tensor head on the host again (eager callers only);
* a running-statistics buffer (``STATS``) for a scaler that decodes from them, static like the
  buffers.
"""

from __future__ import annotations

import libcst as cst

from ...fixers.cstutil import code, dotted, expr, find_method, stmt, stmts

STATS = "scaler_stats"
PHASE = "_prefilled"
PREFILLED = "prefilled"


def _self_attr(node) -> str | None:
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
        return node.attr.value
    return None


def _assign(st) -> cst.Assign | None:
    if isinstance(st, cst.SimpleStatementLine) and len(st.body) == 1 and isinstance(st.body[0], cst.Assign) \
            and len(st.body[0].targets) == 1:
        return st.body[0]
    return None


class StaticCache:
    """What the static rewrite needs from the (tensor-index) cache class, or why it cannot apply."""

    def __init__(self, cls: cst.ClassDef, head: str, buffers: list[str], mirror: str):
        self.cls, self.head, self.mirror = cls, head, mirror
        self.init = find_method(cls, "__post_init__") or find_method(cls, "__init__")
        self.why = ""
        fields = {st.body[0].target.value for st in cls.body.body
                  if isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.AnnAssign)
                  and isinstance(st.body[0].target, cst.Name)}
        self.stats_dims = ("batch_size", "num_variates")
        # the first buffer is allocated from a shape name, the others with zeros_like(first)
        self.first, self.likes, self.shape_name = None, [], None
        for st in (self.init.body.body if self.init else ()):
            a = _assign(st)
            if a is None or not isinstance(a.value, cst.Call):
                continue
            tgt, fn = _self_attr(a.targets[0].target), dotted(a.value.func)
            if tgt in buffers and fn == "torch.zeros" and isinstance(a.value.args[0].value, cst.Name):
                self.first, self.shape_name = tgt, a.value.args[0].value.value
            elif tgt in buffers and fn == "torch.zeros_like" and _self_attr(a.value.args[0].value) == self.first:
                self.likes.append(tgt)
        self.buffers = [self.first, *self.likes] if self.first else []
        if not self.init or not self.first or sorted(self.buffers) != sorted(buffers):
            self.why = "cache buffers not allocated as zeros(shape) and zeros_like(first)"
        elif not all(d in fields for d in self.stats_dims):
            self.why = "cache has no batch_size/num_variates fields for the running statistics"
        elif not find_method(cls, "reset"):
            self.why = "cache has no reset()"
        elif not self._layer_count():
            self.why = f"cache shape {self.shape_name} has no leading layer count"

    def _layer_count(self) -> str | None:
        """The first element of every tuple assigned to the shape name (the stacked layer count)."""
        counts = set()

        class V(cst.CSTVisitor):
            def visit_Assign(_, node: cst.Assign) -> None:
                t = node.targets[0].target
                if isinstance(t, cst.Name) and t.value == self.shape_name:
                    v = node.value
                    counts.add(code(v.elements[0].value) if isinstance(v, cst.Tuple) and v.elements else None)

        self.init.visit(V())
        return counts.pop() if len(counts) == 1 else None


class _PerLayer(cst.CSTTransformer):
    """Init: drop the layer count from the shape tuples, allocate a list, one buffer per layer."""

    def __init__(self, s: StaticCache, count: str):
        self.s, self.count = s, count

    def leave_Assign(self, original, updated):
        t = updated.targets[0].target
        if isinstance(t, cst.Name) and t.value == self.s.shape_name and isinstance(updated.value, cst.Tuple):
            return updated.with_changes(value=updated.value.with_changes(elements=updated.value.elements[1:]))
        tgt = _self_attr(t)
        if tgt == self.s.first:
            return updated.with_changes(value=expr(f"[{code(updated.value)} for _ in range({self.count})]"))
        if tgt in self.s.likes:
            call = updated.value.with_changes(args=[cst.Arg(cst.Name("buffer"))])
            return updated.with_changes(value=expr(f"[{code(call)} for buffer in self.{self.s.first}]"))
        return updated


def _rewrite_init(fn: cst.FunctionDef, s: StaticCache) -> cst.FunctionDef:
    fn = fn.visit(_PerLayer(s, s._layer_count()))
    dims = ", ".join(f"self.{d}" for d in s.stats_dims)
    new_state = stmts(
        "# Running statistics of the series seen so far, for a scaler that decodes from them; float64\n"
        "# (float32 on MPS), written in place like the buffers.\n"
        "stats_dtype = torch.float32 if torch.device(self.device).type == \"mps\" else torch.float64\n"
        f"self.{STATS} = torch.zeros((4, {dims}, 1), device=self.device, dtype=stats_dtype)\n"
        f"self.{PHASE} = False\n")
    bufs = ", ".join(f"*self.{b}" for b in s.buffers)
    body = []
    for st in fn.body.body:
        a = _assign(st)
        if a is not None and _self_attr(a.targets[0].target) == s.mirror:
            continue
        if isinstance(st, cst.If) and "mark_static_address" in code(st) and "is_compiling" in code(st.test):
            others = [x for x in st.body.body if not any(f"(self.{b})" in code(x) for b in s.buffers)]
            marks = stmts(f"for buffer in ({bufs}):\n    torch._dynamo.mark_static_address(buffer)\n")
            extra = [stmt(f"torch._dynamo.mark_static_address(self.{STATS})")]
            body.extend(new_state)
            body.append(st.with_changes(body=st.body.with_changes(body=(*marks, *others, *extra))))
            new_state = []
            continue
        body.append(st)
    body.extend(new_state)
    return fn.with_changes(body=fn.body.with_changes(body=tuple(body)))


class _NoMirror(cst.CSTTransformer):
    """Host reads of the mirror -> host reads of the tensor head; per-layer ``.device``."""

    def __init__(self, s: StaticCache, end: str | None = None):
        self.s, self.end = s, end

    def leave_Subscript(self, original, updated):
        if _self_attr(updated.value) == self.s.mirror:
            return expr(f"int(self.{self.s.head}[{code(updated.slice[0].slice.value)}].item())")
        return updated

    def leave_Call(self, original, updated):
        if dotted(updated.func) == "len" and updated.args and _self_attr(updated.args[0].value) == self.s.mirror:
            return expr(f"self.{self.s.head}.numel()")
        f = updated.func
        if isinstance(f, cst.Attribute) and f.attr.value == "index_copy_" and isinstance(f.value, cst.Subscript) \
                and _self_attr(f.value.value) in self.s.buffers:
            buf, idx = _self_attr(f.value.value), code(f.value.slice[0].slice.value)
            return updated.visit(_PerLayerDevice(buf, idx))
        return updated


class _PerLayerDevice(cst.CSTTransformer):
    def __init__(self, buf: str, idx: str):
        self.buf, self.idx = buf, idx

    def leave_Attribute(self, original, updated):
        if updated.attr.value == "device" and _self_attr(updated.value) == self.buf:
            return expr(f"self.{self.buf}[{self.idx}].device")
        return updated


def _rewrite_append(fn: cst.FunctionDef, s: StaticCache) -> cst.FunctionDef | None:
    end = None
    for st in fn.body.body:
        a = _assign(st)
        if a is not None and isinstance(a.value, cst.BinaryOperation) and code(a.value.right) == "num_new" \
                and isinstance(a.targets[0].target, cst.Name):
            end = a.targets[0].target.value
    if end is None:
        return None
    body = []
    for st in fn.body.body:
        text = code(st)
        if isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.Assert) and s.mirror in text:
            test = st.body[0].test
            if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
                return None
            bound = code(test.comparisons[0].comparator)
            body.append(stmt(f'torch._assert_async({end} <= {bound}, "{s.cls.name.value}: {bound} exceeded")'))
            continue
        if isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.AugAssign) and s.mirror in text:
            continue
        body.append(st.visit(_NoMirror(s)))
    body.append(stmt(f"self.{PHASE} = True  # host phase flag: constant while decoding"))
    return fn.with_changes(body=fn.body.with_changes(body=tuple(body)))


def _rewrite_reset(fn: cst.FunctionDef, s: StaticCache) -> cst.FunctionDef:
    bufs = ", ".join(f"*self.{b}" for b in s.buffers)
    body, zeroed = [], False
    for st in fn.body.body:
        text = code(st).strip()
        if any(text == f"self.{b}.zero_()" for b in s.buffers):
            if not zeroed:
                body.extend(stmts(f"for buffer in ({bufs}):\n    buffer.zero_()\n"))
                zeroed = True
            continue
        a = _assign(st)
        if a is not None and _self_attr(a.targets[0].target) == s.mirror:
            continue
        body.append(st)
    body += [stmt(f"self.{STATS}.zero_()"), stmt(f"self.{PHASE} = False")]
    return fn.with_changes(body=fn.body.with_changes(body=tuple(body)))


def _prefilled_method() -> cst.FunctionDef:
    fn = cst.ensure_type(stmt(
        f"def {PREFILLED}(self) -> bool:\n"
        '    """Whether a first pass has written the cache (the next call decodes): a host flag."""\n'
        f"    return self.{PHASE}\n"), cst.FunctionDef)
    return fn.with_changes(leading_lines=[cst.EmptyLine(indent=False)])


def _rewrite_fields(body: list, s: StaticCache) -> list:
    out = []
    for st in body:
        if isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.AnnAssign) \
                and isinstance(st.body[0].target, cst.Name):
            ann = st.body[0]
            name = ann.target.value
            if name == s.mirror:
                continue
            if name in s.buffers:
                # one tensor per layer now: the stacked annotation's leading dimension is gone
                st = st.with_changes(body=[ann.with_changes(annotation=cst.Annotation(expr("list[torch.Tensor]")))],
                                     trailing_whitespace=cst.TrailingWhitespace(
                                         whitespace=cst.SimpleWhitespace("  "),
                                         comment=cst.Comment("# one buffer per layer"), newline=cst.Newline()))
            out.append(st)
            if name == s.head:
                out.append(stmt(f"{STATS}: torch.Tensor = field(init=False)  # scaler running statistics"))
                out.append(stmt(f"{PHASE}: bool = field(init=False)  # host phase: False until the first append"))
            continue
        out.append(st)
    return out


def rewrite_cache_static(cls: cst.ClassDef, s: StaticCache) -> cst.ClassDef | None:
    """The tensor-index cache class ``cls`` in its static-decode form, or None."""
    body = []
    for st in cls.body.body:
        if isinstance(st, cst.FunctionDef):
            name = st.name.value
            if st is s.init or (s.init is not None and name == s.init.name.value):
                st = _rewrite_init(st, s)
            elif name == "append":
                st = _rewrite_append(st, s)
                if st is None:
                    return None
            elif name == "reset":
                st = _rewrite_reset(st, s)
            else:
                st = st.visit(_NoMirror(s))
            body.append(st)
            if name == "current_len":
                body.append(_prefilled_method())
            continue
        body.append(st)
    if not any(isinstance(x, cst.FunctionDef) and x.name.value == PREFILLED for x in body):
        body.append(_prefilled_method())
    new = cls.with_changes(body=cls.body.with_changes(body=tuple(_rewrite_fields(body, s))))
    return None if s.mirror in code(new) else new
