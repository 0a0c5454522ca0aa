"""Static decode, part 5: the host decoding loop feeds one fixed-shape step, not the whole history.

Recognised in a class (docs/toto-static-decode.md, section 5):

* ``if FLAG: C = self.X.alloc(**kw) else: C = None`` (the cache allocated before the loop);
* a ``for`` loop calling a model with ``kv_cache=C`` and tensors that its body then grows with
  ``t = torch.cat([t, new], dim=-1)``: one grown by a value the body computes (the prediction),
  the others by loop-invariant tensors (masks).

Rewritten: the model gets step variables (the whole history first, then, with a cache, the new
prediction copied into one ``mark_static``-ed buffer and the constant masks); predictions are
collected in a list and joined once where the grown tensor was read after the loop; the growth is
kept only without a cache. The cache comes from ``_take_kv_cache`` (the last call's cache when
the shape matches: static inputs stay at the same addresses) and goes back with
``_keep_kv_cache``. Inner loops that only build values nothing reads are dropped.
"""

from __future__ import annotations

import libcst as cst

from ...fixers.cstutil import code, dotted, expr, names_in, stmt, stmts

TAKE, KEEP, FIXED = "_take_kv_cache", "_keep_kv_cache", "_fixed_shape"
SHAPE, PREDICTIONS, NEXT = "cache_shape", "predictions", "next_step"

_HELPERS = '''\
def {take}(self, **shape):
    """A zeroed KV cache for ``shape``: the last call's one if it has that shape, else a new one.

    Reusing the buffers keeps the compiled decode step's static inputs at the same addresses
    (CUDA graphs replay instead of re-recording); a concurrent call allocates its own.
    """
    idle, self._idle_kv_cache = getattr(self, "_idle_kv_cache", None), None
    if idle is not None and idle[0] == shape:
        idle[1].reset()
        return idle[1]
    return {alloc}(**shape)


def {keep}(self, kv_cache, **shape) -> None:
    if kv_cache is not None:
        self._idle_kv_cache = (shape, kv_cache)


@staticmethod
def {fixed}(*tensors) -> None:
    """Decode-step inputs keep one shape: keep torch.compile from making them dynamic when it
    compiles the decode step right after the prefill (marked once per call)."""
    for t in tensors:
        torch._dynamo.mark_static(t)
'''


def _assign(st) -> cst.Assign | None:
    if isinstance(st, cst.SimpleStatementLine) and len(st.body) == 1 and isinstance(st.body[0], cst.Assign) \
            and len(st.body[0].targets) == 1:
        return st.body[0]
    return None


def _allocation(st) -> tuple[str, str, cst.Call] | None:
    """``if F: C = self.X.alloc(...) else: C = None`` -> (C, F source, call)."""
    if not isinstance(st, cst.If) or not isinstance(st.orelse, cst.Else) or len(st.body.body) != 1 \
            or len(st.orelse.body.body) != 1:
        return None
    a, b = _assign(st.body.body[0]), _assign(st.orelse.body.body[0])
    if a is None or b is None or not isinstance(a.targets[0].target, cst.Name) or code(b.value) != "None" \
            or code(b.targets[0].target) != code(a.targets[0].target) or not isinstance(a.value, cst.Call):
        return None
    if not dotted(a.value.func).startswith("self.") or not all(arg.keyword for arg in a.value.args):
        return None
    return a.targets[0].target.value, code(st.test), a.value


def _growth(st) -> tuple[str, str] | None:
    """``t = torch.cat([t, new], dim=-1)`` -> (t, new)."""
    a = _assign(st)
    if a is None or not isinstance(a.targets[0].target, cst.Name) or not isinstance(a.value, cst.Call) \
            or dotted(a.value.func) != "torch.cat" or len(a.value.args) != 2:
        return None
    lst, dim = a.value.args[0].value, a.value.args[1]
    if not isinstance(lst, cst.List) or len(lst.elements) != 2 or code(dim.value) != "-1":
        return None
    t, new = lst.elements[0].value, lst.elements[1].value
    name = a.targets[0].target.value
    if not (isinstance(t, cst.Name) and t.value == name and isinstance(new, cst.Name)):
        return None
    return name, new.value


def _model_call(loop: cst.For, cache: str) -> cst.Call | None:
    found = []

    class V(cst.CSTVisitor):
        def visit_Call(self, n):
            if any(a.keyword and a.keyword.value == "kv_cache" and code(a.value) == cache for a in n.args):
                found.append(n)

    loop.body.visit(V())
    return found[0] if len(found) == 1 else None


def _assigned(node) -> set[str]:
    out: set[str] = set()

    class V(cst.CSTVisitor):
        def visit_AssignTarget(self, n):
            out.update(names_in(n.target) if not isinstance(n.target, cst.Subscript) else set())

        def visit_AnnAssign(self, n):
            out.update(names_in(n.target))

    node.visit(V())
    return out


def _read(node) -> set[str]:
    """Names read in ``node`` (all names minus those only appearing as plain assignment targets)."""
    out: set[str] = set()

    class V(cst.CSTVisitor):
        def visit_Name(self, n):
            out.add(n.value)

        def visit_AssignTarget(self, n):
            if isinstance(n.target, (cst.Name, cst.Tuple)):
                return False
            return None

    node.visit(V())
    return out


class _Rename(cst.CSTTransformer):
    def __init__(self, mapping: dict[str, cst.BaseExpression]):
        self.mapping = mapping

    def leave_Name(self, original, updated):
        return self.mapping.get(updated.value, updated)

    # attribute names and keywords are not variables
    def visit_Attribute(self, node):
        return False

    def leave_Attribute(self, original, updated):
        return updated.with_changes(value=original.value.visit(self))

    def visit_Arg(self, node):
        return False

    def leave_Arg(self, original, updated):
        return updated.with_changes(value=original.value.visit(self))


class LoopRewrite:
    """Rewrite one decoding loop ``loop`` (``cache`` is the cache variable); None if not recognised."""

    def __init__(self, loop: cst.For, cache: str):
        self.loop, self.cache, self.why = loop, cache, ""
        self.dropped: set[str] = set()  # names only dead inner loops assigned
        call = _model_call(loop, cache)
        body = list(loop.body.body)
        self.grown = [g for g in map(_growth, body) if g]
        inside = _assigned(loop.body)
        self.value = [(t, new) for t, new in self.grown if new in inside]
        self.consts = [(t, new) for t, new in self.grown if new not in inside]
        args = {code(a.value) for a in call.args} if call is not None else set()
        if call is None:
            self.why = "no single model call with the cache"
        elif len(self.value) != 1 or not self.consts:
            self.why = "loop does not grow one prediction and constant masks"
        elif not {t for t, _ in self.grown} <= args:
            self.why = "a grown tensor is not a model input"
        elif PREDICTIONS in names_in(loop) or NEXT in names_in(loop):
            self.why = f"names {PREDICTIONS}/{NEXT} taken"

    def before(self) -> list[cst.BaseStatement]:
        names = [t for t, _ in self.grown]
        comment = ("# With a KV cache the model keeps the history: after the first call (the whole input) each",
                   "# step feeds only the newest prediction, so every decode step has the same input shapes.")
        first, *rest = stmts(
            f"{', '.join('step_' + t for t in names)} = {', '.join(names)}\n"
            f"{PREDICTIONS} = []\n"
            f"{NEXT} = None\n")
        lines = [cst.EmptyLine(indent=True, comment=cst.Comment(c)) for c in comment]
        return [first.with_changes(leading_lines=[cst.EmptyLine(indent=False), *lines]), *rest]

    def new_loop(self) -> cst.For:
        value_t, value_new = self.value[0]
        consts = ", ".join(new for _, new in self.consts)
        grown_names = [t for t, _ in self.grown]
        steps = ", ".join("step_" + t for t in grown_names)
        feeds = ", ".join(f"{NEXT}.copy_({value_new})" if t == value_t else dict(self.consts)[t] for t in grown_names)
        cats = "".join(f"        step_{t} = torch.cat([step_{t}, {new}], dim=-1)\n" for t, new in self.grown)
        update = stmts(
            f"{PREDICTIONS}.append({value_new})\n"
            f"if {self.cache} is not None:\n"
            f"    if {NEXT} is None:\n"
            f"        {NEXT} = torch.empty_like({value_new})\n"
            f"        self.{FIXED}({NEXT}, {consts})\n"
            f"    {steps} = {feeds}\n"
            "else:\n"
            "    # no cache: the model needs the whole history\n" + cats.replace("        ", "    ", 1)
            .replace("\n        ", "\n    "))
        body, placed = [], False
        for st in self.loop.body.body:
            if _growth(st):
                if not placed:
                    body.extend(update)
                    placed = True
                continue
            body.append(st)
        body = _drop_dead_loops(body, self.dropped)
        call = _model_call(self.loop, self.cache)
        renamed = call.with_changes(args=[a.with_changes(value=cst.Name("step_" + code(a.value)))
                                          if code(a.value) in grown_names and a.keyword else a for a in call.args])

        class SwapCall(cst.CSTTransformer):
            def leave_Call(self, original, updated):
                return renamed if original is call else updated

        loop = self.loop.with_changes(body=self.loop.body.with_changes(body=tuple(body)))
        return loop.visit(SwapCall())

    def joined(self) -> cst.BaseExpression:
        t = self.value[0][0]
        return expr(f"torch.cat([{t}, *{PREDICTIONS}], dim=-1)")


def _drop_dead_loops(body: list, dropped: set[str]) -> list:
    """Inner ``for`` loops whose assigned names are read nowhere else in ``body``: dropped (their
    names go to ``dropped``)."""
    out = []
    for i, st in enumerate(body):
        if isinstance(st, cst.For) and code(st.target) == "_":
            assigned = _assigned(st.body)
            rest = cst.Module(body=[x for j, x in enumerate(body) if j != i])
            if assigned and not (assigned & names_in(rest)) and _pure(st):
                dropped.update(assigned)
                continue
        out.append(st)
    return out


def _pure(loop: cst.For) -> bool:
    """Only plain assignments of tensor arithmetic, ``torch.cat`` and ``unsqueeze``."""
    for st in loop.body.body:
        if not isinstance(st, cst.SimpleStatementLine) or not all(isinstance(s, (cst.Assign, cst.AnnAssign))
                                                                  for s in st.body):
            return False
        for n in _call_names(st):
            if n not in ("torch.cat", "unsqueeze"):
                return False
    return True


def _call_names(node) -> list[str]:
    out = []

    class V(cst.CSTVisitor):
        def visit_Call(self, n):
            f = n.func
            name = dotted(f)
            out.append(f.attr.value if isinstance(f, cst.Attribute) and not name.startswith("torch.") else name)

    node.visit(V())
    return out


def _drop_dead_assigns(fn: cst.FunctionDef, candidates: set[str]) -> cst.FunctionDef:
    """Copies ``x = torch.clone(...)`` of ``candidates`` that nothing reads any more."""
    read = _read(fn.body)
    dead = candidates - read

    class T(cst.CSTTransformer):
        def leave_SimpleStatementLine(self, original, updated):
            a = _assign(updated)
            if a is not None and isinstance(a.targets[0].target, cst.Name) and a.targets[0].target.value in dead \
                    and isinstance(a.value, cst.Call) and dotted(a.value.func) == "torch.clone":
                return cst.RemovalSentinel.REMOVE
            return updated

    return fn.visit(T())


class MethodRewriter:
    """One method: the allocation, its decoding loop(s), the joined results, keep the cache."""

    def __init__(self, fn: cst.FunctionDef):
        self.fn, self.why, self.alloc = fn, "", None
        self.dropped: set[str] = set()

    def rewrite(self) -> cst.FunctionDef | None:
        body = list(self.fn.body.body)
        idx = next((i for i, st in enumerate(body) if _allocation(st)), None)
        if idx is None:
            return None
        cache, flag, call = _allocation(body[idx])
        self.alloc = dotted(call.func)
        kwargs = "".join(f"    {code(a).strip().rstrip(',')},\n" for a in call.args)
        body[idx:idx + 1] = [stmt(f"{SHAPE} = dict(\n{kwargs})"),
                             stmt(f"{cache} = self.{TAKE}(**{SHAPE}) if {flag} else None")]
        for i in range(idx + 1, len(body)):
            new = self._in_statement(body[i], cache)
            if new is None:
                if self.why:
                    return None
                continue
            tail = self._joined_tail(body[i], body[i + 1:], cache) if isinstance(body[i], cst.For) else body[i + 1:]
            if tail is None:
                return None
            body[i:] = [*new, stmt(f"self.{KEEP}({cache}, **{SHAPE})"), *tail]
            fn = self.fn.with_changes(body=self.fn.body.with_changes(body=tuple(body)))
            return _drop_dead_assigns(fn, self.dropped)
        self.why = self.why or "no decoding loop after the cache allocation"
        return None

    def _in_statement(self, st, cache: str) -> list | None:
        """``st`` with its decoding loop rewritten (reads after an inner loop joined), or None."""
        if _is_decode_loop(st, cache):
            lr = LoopRewrite(st, cache)
            if lr.why:
                self.why = lr.why
                return None
            new_loop = lr.new_loop()
            self.dropped |= lr.dropped
            return [*lr.before(), new_loop]
        if isinstance(st, cst.For):
            inner = list(st.body.body)
            for j, x in enumerate(inner):
                new = self._in_statement(x, cache)
                if new is None:
                    if self.why:
                        return None
                    continue
                tail = self._joined_tail(x, inner[j + 1:], cache)
                if tail is None:
                    return None
                return [st.with_changes(body=st.body.with_changes(body=(*inner[:j], *new, *tail)))]
        return None

    def _joined_tail(self, loop, tail: list, cache: str) -> list | None:
        """``tail`` (what follows the decoding loop) reading the joined predictions, or None."""
        if not _is_decode_loop(loop, cache):  # the decoding loop is inside ``loop``: joined there
            return tail
        lr = LoopRewrite(loop, cache)
        value = lr.value[0][0]
        if any(t in _read(cst.Module(body=tail)) for t, _ in lr.consts):
            self.why = "a mask grown in the loop is read after it"
            return None
        return [y.visit(_Rename({value: lr.joined()})) for y in tail]


def _is_decode_loop(st, cache: str) -> bool:
    return isinstance(st, cst.For) and _model_call(st, cache) is not None and any(_growth(x) for x in st.body.body)


def rewrite_class(cls: cst.ClassDef) -> tuple[cst.ClassDef | None, str]:
    """The class with every decoding method rewritten and the helpers added, or (None, why)."""
    members, alloc, changed = [], None, 0
    for st in cls.body.body:
        if isinstance(st, cst.FunctionDef):
            mr = MethodRewriter(st)
            new = mr.rewrite()
            if mr.why:
                return None, f"{cls.name.value}.{st.name.value}: {mr.why}"
            if new is not None:
                if alloc not in (None, mr.alloc):
                    return None, f"{cls.name.value}: two cache allocators"
                alloc, changed = mr.alloc, changed + 1
                st = new
        members.append(st)
    if not changed:
        return None, ""
    helpers = stmts(_HELPERS.format(take=TAKE, keep=KEEP, fixed=FIXED, alloc=alloc))
    helpers = [h.with_changes(leading_lines=[cst.EmptyLine(indent=False)]) for h in helpers]
    return cls.with_changes(body=cls.body.with_changes(body=(*members, *helpers))), ""
