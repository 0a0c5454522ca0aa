"""Toto (Datadog ``toto-ts``) fixer recipe, found through ``FAMILY.recipe``: the KV cache and its readers, rewritten together.

Recognised by structure, not by file name:

* a class with ``__getitem__`` and ``append`` that allocates ``self.<head> = torch.zeros(...)`` and
  tensor buffers, reads ``int(self.<map>[i].item())`` and writes ``self.<buf>[i, ..., s:e] = ...``
  (Toto: ``KVCache`` with ``_current_idx``, ``_keys``, ``_values``, ``_layer_cache_map``);
* an attention class whose ``positional_embedding`` calls ``kv_cache.seq_len``/``append`` and whose
  ``run_attention`` calls ``scaled_dot_product_attention(..., is_causal=... seq_pos_offset == 0)``.

Strategy ``tensor-index`` (default): the write head stays a tensor; writes use ``index_copy_``
at ``start + arange(n)``; readers get the full fixed-length buffers and the time-wise attention
masks the slots not written yet with a mask built from the tensor offset (no data-dependent
``is_causal``); the layer lookup table becomes a host-side dict; ``current_len``/``seq_len`` read a
Python-int mirror kept beside the tensor head (host-side decisions such as the prefill prefix
length); the buffers are marked static. Files such as ``transformer.py``/``backbone.py`` only read
``current_len``/``seq_len``, which keep returning Python ints, so they need no change.

Strategy ``graph-break``: the cache methods run eagerly between compiled regions
(``@torch.compiler.disable``).
"""

from __future__ import annotations

import ast

import libcst as cst

from ...fixers.recipes import support as generic
from ...fixers.cstutil import ReplaceNames, add_decorator, code, dotted, expr, find_method, names_in, stmt, stmts
from ...fixers.recipes import Recipe, RecipeResult
from . import static_decode

MIRROR = "_current_len"
SEQ_POS = "seq_pos"


def _self_attr_of(node) -> str | None:
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
        return node.attr.value
    return None


def _item_reads(cls: cst.ClassDef) -> set[str]:
    """Attributes read as ``int(self.X[...].item())``."""
    out: set[str] = set()

    class V(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            f = node.func
            if isinstance(f, cst.Attribute) and f.attr.value == "item" and isinstance(f.value, cst.Subscript):
                a = _self_attr_of(f.value.value)
                if a:
                    out.add(a)

    cls.visit(V())
    return out


class CacheShape:
    """What the recipe found in the cache class."""

    def __init__(self, cls: cst.ClassDef):
        self.cls = cls
        self.init = find_method(cls, "__post_init__") or find_method(cls, "__init__")
        self.allocated = generic.allocated_attrs(self.init) if self.init else []
        written = generic.inplace_written_attrs(cls)
        reads = _item_reads(cls)
        # the write head: allocated, read with .item(), written whole by index (self.h[i] = end)
        self.head = next((a for a in self.allocated if a in reads and a in written and "idx" in a), None) or next(
            (a for a in self.allocated if a in reads and a in written), None)
        # lookup tables: allocated, read with .item(), written only in the allocator
        init_written = generic.inplace_written_attrs(cst.ClassDef(name=cst.Name("X"), body=cst.IndentedBlock([self.init]))) if self.init else set()
        others = written - init_written
        self.tables = [a for a in self.allocated if a in reads and a != self.head and a not in others]
        self.buffers = [a for a in self.allocated if a in written and a != self.head and a not in self.tables]

    @property
    def ok(self) -> bool:
        return bool(self.init and self.head and self.buffers and find_method(self.cls, "append")
                    and find_method(self.cls, "__getitem__"))


def _is_cache_class(cls: cst.ClassDef) -> bool:
    return bool(find_method(cls, "append") and find_method(cls, "__getitem__") and
                (find_method(cls, "__post_init__") or find_method(cls, "__init__")))


# ---------------------------------------------------------------------------------------------
# tensor-index rewrite of the cache class


class _CacheRewriter(cst.CSTTransformer):
    """Expression-level rewrites inside the cache class (all methods)."""

    def __init__(self, shape: CacheShape):
        self.s = shape

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        # int(self.table[i].item()) -> self.table[i]; int(self.head[i].item()) -> self._current_len[i]
        if dotted(updated.func) == "int" and len(updated.args) == 1:
            inner = updated.args[0].value
            if (isinstance(inner, cst.Call) and isinstance(inner.func, cst.Attribute) and inner.func.attr.value == "item"
                    and isinstance(inner.func.value, cst.Subscript)):
                sub = inner.func.value
                a = _self_attr_of(sub.value)
                if a in self.s.tables:
                    return sub
                if a == self.s.head:
                    return sub.with_changes(value=expr(f"self.{MIRROR}"))
        # self.head.numel() -> len(self._current_len)
        f = updated.func
        if isinstance(f, cst.Attribute) and f.attr.value == "numel" and _self_attr_of(f.value) == self.s.head:
            return expr(f"len(self.{MIRROR})")
        return updated


def _rewrite_init(fn: cst.FunctionDef, s: CacheShape) -> cst.FunctionDef:
    body = []
    for st in fn.body.body:
        if isinstance(st, cst.SimpleStatementLine) and len(st.body) == 1 and isinstance(st.body[0], cst.Assign):
            a = st.body[0]
            tgt = _self_attr_of(a.targets[0].target)
            if tgt in s.tables and isinstance(a.value, cst.Call):
                size = a.value.args[0].value
                if isinstance(size, cst.Tuple) and len(size.elements) == 1:
                    size = size.elements[0].value
                # constant lookup table: a host-side mapping with the tensor's default (0)
                body.append(st.with_changes(body=[a.with_changes(value=expr(f"dict.fromkeys(range({code(size)}), 0)"))]))
                continue
            body.append(st)
            if tgt == s.head:
                body.append(stmt(f"self.{MIRROR} = [0] * len(self.{s.head})  # host-side mirror of the write head"))
            continue
        body.append(st)
    fn = fn.with_changes(body=fn.body.with_changes(body=tuple(body)))
    return generic.add_static_marking(fn, [a for a in s.allocated if a in s.buffers or a == s.head])


def _rewrite_getitem(fn: cst.FunctionDef, s: CacheShape) -> cst.FunctionDef:
    """Readers get the full fixed-length buffers: ``buf[i, :, :end, ...]`` -> ``buf[i]``."""

    class T(cst.CSTTransformer):
        def leave_Subscript(self, original, updated):
            if _self_attr_of(updated.value) not in s.buffers:
                return updated
            els = list(updated.slice)
            lead = []
            for el in els:
                if isinstance(el.slice, cst.Index):
                    lead.append(el)
                else:
                    break
            rest = els[len(lead):]
            if lead and rest and all(isinstance(e.slice, cst.Slice) and e.slice.lower is None and e.slice.step is None
                                     for e in rest):
                last = lead[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                return updated.with_changes(slice=[*lead[:-1], last])
            return updated

    fn = fn.visit(T())
    # drop assignments whose name is no longer used (the old end index)
    used = set()

    class U(cst.CSTVisitor):
        def visit_Name(self, node):
            used.add(node.value)

    body = []
    for st in fn.body.body:
        if isinstance(st, cst.SimpleStatementLine) and len(st.body) == 1 and isinstance(st.body[0], cst.Assign) \
                and isinstance(st.body[0].targets[0].target, cst.Name):
            name = st.body[0].targets[0].target.value
            rest = cst.Module(body=[x for x in fn.body.body if x is not st])
            used.clear()
            rest.visit(U())
            if name not in used:
                continue
        body.append(st)
    return fn.with_changes(body=fn.body.with_changes(body=tuple(body)))


def _rewrite_append(fn: cst.FunctionDef, s: CacheShape) -> cst.FunctionDef | None:
    # start = self.head[IDX]
    start = idx = None
    for st in fn.body.body:
        if isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.Assign):
            a = st.body[0]
            if isinstance(a.value, cst.Subscript) and _self_attr_of(a.value.value) == s.head \
                    and isinstance(a.targets[0].target, cst.Name):
                start, idx = a.targets[0].target.value, code(a.value.slice[0].slice.value)
    if start is None:
        return None
    end_names: set[str] = set()

    class EndToN(cst.CSTTransformer):
        """``end = start + n`` -> ``num_new = n``"""

        def leave_Assign(self, original, updated):
            v = updated.value
            if (len(updated.targets) == 1 and isinstance(updated.targets[0].target, cst.Name)
                    and isinstance(v, cst.BinaryOperation) and isinstance(v.operator, cst.Add)
                    and isinstance(v.left, cst.Name) and v.left.value == start):
                end_names.add(updated.targets[0].target.value)
                return updated.with_changes(targets=[cst.AssignTarget(cst.Name("num_new"))], value=v.right)
            return updated

    body = []
    for st in fn.body.body:
        new = st.visit(EndToN()) if not isinstance(st, cst.FunctionDef) else st
        body.append(new)
        if new is not st or (end_names and code(new) != code(st)):
            pass
    if len(end_names) != 1:
        return None
    end = end_names.pop()
    out: list[cst.BaseStatement] = []
    mirror_len = expr(f"(self.{MIRROR}[{idx}] + num_new)")
    for st in body:
        # the statement that now defines num_new is followed by end = start + num_new
        text = code(st)
        if isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.Assert) and end in \
                {n for n in _names(st.body[0].test)}:
            # a bound check on the tensor head is a data-dependent branch: check the host mirror
            out.append(st.visit(ReplaceNames({end: mirror_len})))
            continue
        if isinstance(st, (cst.If, cst.SimpleStatementLine)) and "index_copy_" not in text:
            st = st.visit(_SliceAssign(start, end, s))
        out.append(st)
        if "num_new =" in text and not isinstance(st, cst.SimpleStatementLine) or (
                isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.Assign)
                and isinstance(st.body[0].targets[0].target, cst.Name) and st.body[0].targets[0].target.value == "num_new"):
            out.append(stmt(f"{end} = {start} + num_new"))
        if (isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.Assign)
                and isinstance(st.body[0].targets[0].target, cst.Subscript)
                and _self_attr_of(st.body[0].targets[0].target.value) == s.head):
            out.append(stmt(f"self.{MIRROR}[{idx}] += num_new"))
    return fn.with_changes(body=fn.body.with_changes(body=tuple(out)))


def _names(node) -> set[str]:
    return names_in(node)


class _SliceAssign(cst.CSTTransformer):
    def __init__(self, start: str, end: str, s: CacheShape):
        self.start, self.end, self.s = start, end, s

    def leave_SimpleStatementLine(self, original, updated):
        a = updated.body[0]
        if len(updated.body) != 1 or not isinstance(a, cst.Assign) or not isinstance(a.targets[0].target, cst.Subscript):
            return updated
        t = a.targets[0].target
        if _self_attr_of(t.value) not in self.s.buffers:
            return updated
        src = generic.index_copy_source(t, a.value, n_src="num_new", tensor_names={self.start, self.end})
        if src is None:
            return updated
        return updated.with_changes(body=[cst.Expr(expr(src))])


def _seq_pos_method(s: CacheShape, table: str | None) -> cst.FunctionDef:
    lookup = f"self.{table}[layer_idx]" if table else "layer_idx"
    return cst.ensure_type(stmt(
        f"def {SEQ_POS}(self, layer_idx: int) -> torch.Tensor:\n"
        f'    """Write head of ``layer_idx`` as a tensor on the cache device (a copy: ``append`` moves it)."""\n'
        f"    return self.{s.head}[{lookup}].clone()\n"
    ), cst.FunctionDef).with_changes(leading_lines=[cst.EmptyLine(indent=False)])


def _rewrite_reset(fn: cst.FunctionDef, s: CacheShape) -> cst.FunctionDef:
    if MIRROR in code(fn):
        return fn
    body = list(fn.body.body) + [stmt(f"self.{MIRROR} = [0] * len(self.{MIRROR})")]
    return fn.with_changes(body=fn.body.with_changes(body=tuple(body)))


def _rewrite_fields(cls_body: list, s: CacheShape) -> list:
    """Dataclass field declarations: the table becomes dict[int, int]; declare the mirror."""
    out = []
    for st in cls_body:
        if isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.AnnAssign) \
                and isinstance(st.body[0].target, cst.Name):
            name = st.body[0].target.value
            if name in s.tables:
                st = st.with_changes(body=[st.body[0].with_changes(annotation=cst.Annotation(expr("dict[int, int]")))])
                out.append(st)
                continue
            out.append(st)
            if name == s.head:
                out.append(stmt(f"{MIRROR}: list[int] = field(init=False)  # host-side mirror of {s.head}"))
            continue
        out.append(st)
    return out


def rewrite_cache_tensor_index(cls: cst.ClassDef) -> cst.ClassDef | None:
    s = CacheShape(cls)
    if not s.ok or MIRROR in code(cls):
        return None
    body = []
    for st in cls.body.body:
        if isinstance(st, cst.FunctionDef):
            name = st.name.value
            if st is s.init:
                st = _rewrite_init(st, s)
            elif name == "__getitem__":
                st = _rewrite_getitem(st.visit(_CacheRewriter(s)), s)
            elif name == "append":
                new = _rewrite_append(st.visit(_CacheRewriter(s)), s)
                if new is None:
                    return None
                st = new
            elif name == "reset":
                st = _rewrite_reset(st, s)
            else:
                st = st.visit(_CacheRewriter(s))
            body.append(st)
            if name == "seq_len" or (name == "current_len" and not find_method(cls, "seq_len")):
                body.append(_seq_pos_method(s, s.tables[0] if s.tables else None))
            continue
        body.append(st)
    if not any(isinstance(x, cst.FunctionDef) and x.name.value == SEQ_POS for x in body):
        body.append(_seq_pos_method(s, s.tables[0] if s.tables else None))
    body = _rewrite_fields(body, s)
    return cls.with_changes(body=cls.body.with_changes(body=tuple(body)))


# ---------------------------------------------------------------------------------------------
# tensor-index rewrite of the attention class

_SDPA_MASKED = """\
if torch.is_tensor(seq_pos_offset):
    # KV cache: k and v are the full fixed-length buffers. Mask the future and the slots not
    # written yet from the tensor write head (no data-dependent is_causal, no tensor slice).
    q_pos = seq_pos_offset + torch.arange(seq_len, device=q.device)
    cache_mask = torch.arange(k.shape[{kdim}], device=q.device)[None, :] <= q_pos[:, None]
    if torch.is_tensor(attention_mask):
        rows = attention_mask.index_select(-2, q_pos)[..., : k.shape[{kdim}]]
        cache_mask = rows & cache_mask if rows.dtype == torch.bool else rows.masked_fill(~cache_mask, float("-inf"))
    {ret}
"""
_RET_SDPA = "return scaled_dot_product_attention(q, k, v, attn_mask=cache_mask, dropout_p=dropout, is_causal=False)"
_RET_XF = ("bias = torch.zeros(cache_mask.shape, dtype=q.dtype, device=q.device).masked_fill(~cache_mask, float(\"-inf\"))\n"
           "    return memory_efficient_attention(q, k, v, attn_bias=bias.expand(q.shape[0], q.shape[2], -1, -1), p=dropout)")


class _AttentionRewriter(cst.CSTTransformer):
    def __init__(self):
        self.fn: list[str] = []
        self.changed = 0

    def visit_FunctionDef(self, node):
        self.fn.append(node.name.value)

    def leave_FunctionDef(self, original, updated):
        self.fn.pop()
        return updated

    def leave_Call(self, original, updated):
        # positional_embedding: the offset is the tensor write head, not a synced int
        if self.fn and self.fn[-1] == "positional_embedding" and isinstance(updated.func, cst.Attribute) \
                and updated.func.attr.value == "seq_len" and dotted(updated.func.value) == "kv_cache":
            self.changed += 1
            return updated.with_changes(func=updated.func.with_changes(attr=cst.Name(SEQ_POS)))
        return updated

    def leave_If(self, original, updated):
        if not self.fn or self.fn[-1] != "run_attention":
            return updated
        return self._branch(updated)

    def _branch(self, node: cst.If) -> cst.If:
        test = code(node.test)
        if "TIME" in test and "use_memory_efficient_attention" in test:
            kernel = "memory_efficient_attention" if "not " not in test else "scaled_dot_product_attention"
            body = node.body.body
            if not any("is_tensor(seq_pos_offset)" in code(x) for x in body) and kernel in code(node.body):
                kdim = 1 if kernel == "memory_efficient_attention" else 2
                ret = _RET_XF if kdim == 1 else _RET_SDPA
                guard = stmts(_SDPA_MASKED.format(kdim=kdim, ret=ret))
                node = node.with_changes(body=node.body.with_changes(body=(*guard, *body)))
                self.changed += 1
        orelse = node.orelse
        if isinstance(orelse, cst.If):
            node = node.with_changes(orelse=self._branch(orelse))
        return node


def _is_attention_class(cls: cst.ClassDef) -> bool:
    pe, ra = find_method(cls, "positional_embedding"), find_method(cls, "run_attention")
    return bool(pe and ra and "kv_cache.append" in code(pe) and "is_causal" in code(ra))


# ---------------------------------------------------------------------------------------------


class TotoRecipe(Recipe):
    name = "toto"
    codes = ("TCS001", "TCS002", "TCS003", "TCS004")

    def candidate(self, text: str, tree: ast.Module | None) -> bool:
        """A module-level class shaped like the cache (``append``, ``__getitem__``, an initialiser) or
        like the attention (``positional_embedding``, ``run_attention``): what :meth:`apply` looks at."""
        if tree is None:
            return True
        if static_decode.candidate(text, tree):
            return True
        attention_text = "kv_cache.append" in text and "is_causal" in text
        for st in tree.body:
            if isinstance(st, ast.ClassDef):
                methods = {s.name for s in st.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
                if {"append", "__getitem__"} <= methods and methods & {"__init__", "__post_init__"}:
                    return True
                if attention_text and "positional_embedding" in methods and "run_attention" in methods:
                    return True
        return False

    def apply(self, modules: dict[str, cst.Module], strategy: str) -> RecipeResult:
        result = RecipeResult()
        caches, attns = [], []
        for path, mod in modules.items():
            for st in mod.body:
                if isinstance(st, cst.ClassDef):
                    if _is_cache_class(st):
                        result.owned.add(path)
                        if CacheShape(st).ok:
                            caches.append((path, st))
                    elif _is_attention_class(st):
                        result.owned.add(path)
                        attns.append((path, st))
        if not caches:
            return result
        if strategy == "graph-break":
            for path, cls in caches:
                new = _graph_break_cache(cls)
                if new is not None:
                    self._replace(result, modules, path, cls, new)
                    result.note("TCS001", path, modules[path], cls.name.value,
                                "cache methods -> @torch.compiler.disable", self.name)
            return result
        if not attns:  # the cache rewrite changes what readers get: never do half of it
            result.decline(self.name, "a KV-cache class but no attention class that appends to it: not rewritten")
            return result
        static_parts = []
        for path, cls in caches:
            new = rewrite_cache_tensor_index(cls)
            if new is not None:
                s = CacheShape(cls)
                static_parts.append((path, cls, s.head, s.buffers, MIRROR))
                self._replace(result, modules, path, cls, new)
                result.note("TCS003", path, modules[path], cls.name.value,
                            "tensor write head, index_copy_ writes, full-buffer reads, host-side lookup table and "
                            "length mirror, static buffers", self.name)
        if not result.modules:
            return result
        for path, cls in attns:
            rw = _AttentionRewriter()
            new = cls.visit(rw)
            if rw.changed:
                self._replace(result, modules, path, cls, new)
                result.note("TCS004", path, modules[path], cls.name.value,
                            "tensor offset, cache mask instead of data-dependent is_causal", self.name)
        self._static_decode(modules, result, static_parts)
        return result

    def _static_decode(self, modules, result: RecipeResult, caches) -> None:
        """Take the tensor-index form on to a fully static decode step (all or nothing); when a part is
        not recognised, ``self.static_decode_declined`` says why and the tensor-index form stays."""
        sd = static_decode.StaticDecode(modules, result.modules)
        self.static_decode_declined = sd.run(caches)
        if self.static_decode_declined:
            result.decline(self.name, f"static decode not applied ({self.static_decode_declined}); "
                                      "the tensor-index form stays")
            return
        result.modules.update(sd.changed)
        result.owned.update(sd.changed)
        for code_, path, class_name, what in sd.notes:
            result.note(code_, path, sd.current[path], class_name, what, self.name)

    @staticmethod
    def _replace(result: RecipeResult, modules, path, old_cls, new_cls) -> None:
        mod = result.modules.get(path, modules[path])
        body = [new_cls if (isinstance(s, cst.ClassDef) and s.name.value == old_cls.name.value) else s for s in mod.body]
        result.modules[path] = mod.with_changes(body=body)


_EAGER_METHODS = ("__getitem__", "append", "current_len", "seq_len")


def _graph_break_cache(cls: cst.ClassDef) -> cst.ClassDef | None:
    body, changed = [], False
    for st in cls.body.body:
        if isinstance(st, cst.FunctionDef) and st.name.value in _EAGER_METHODS:
            new = add_decorator(st, "torch.compiler.disable")
            changed |= new is not st
            st = new
        body.append(st)
    return cls.with_changes(body=cls.body.with_changes(body=tuple(body))) if changed else None
