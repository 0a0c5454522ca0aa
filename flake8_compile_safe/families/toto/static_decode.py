"""Static decode (issue 9): on top of the ``tensor-index`` rewrite, a decode step whose compiled
graph takes no SymInt and no per-step Python value (docs/toto-static-decode.md).

All or nothing: the cache class, the entry method that truncated by the cache length, the
scalers, the other cache-length readers and the host decoding loop change together; if any part
is not recognised, the ``tensor-index`` form (with its Python length mirror) stays and the reason
is noted.
"""

from __future__ import annotations

import ast

import libcst as cst

from ...fixers.cstutil import code
from .static_cache import StaticCache, rewrite_cache_static
from .static_loop import rewrite_class
from .static_model import EntryRewriter, ReaderRewriter, remaining_length_reads
from .static_scaler import CALL_PARAMS, rewrite_scalers, scaler_classes, streamable


def candidate(text: str, tree: ast.Module | None) -> bool:
    """Files the static decode may rewrite: length readers, scalers, decoding loops."""
    if ".current_len(" in text or ".seq_len(" in text:
        return True
    if "kv_cache=" in text and "torch.cat(" in text:
        return True
    if tree is None:
        return False
    for st in tree.body:
        if isinstance(st, ast.ClassDef):
            for m in st.body:
                if isinstance(m, ast.FunctionDef) and m.name == "__call__" \
                        and tuple(a.arg for a in m.args.args) == CALL_PARAMS:
                    return True
    return False


class StaticDecode:
    """Collects the rewrites of every part; :meth:`run` returns (new modules, notes) or (None, why)."""

    def __init__(self, modules: dict[str, cst.Module], rewritten: dict[str, cst.Module]):
        self.modules = modules
        self.current = {path: rewritten.get(path, mod) for path, mod in modules.items()}
        self.changed: dict[str, cst.Module] = {}
        self.notes: list[tuple[str, str, str, str]] = []  # (code, path, class, what)

    def _set(self, path: str, module: cst.Module) -> None:
        if code(module) != code(self.current[path]):
            self.current[path] = self.changed[path] = module

    def run(self, caches: list[tuple[str, cst.ClassDef, str, list[str], str]]) -> str:
        """'' when every part was rewritten (then ``changed`` and ``notes`` hold them), else why not."""
        for path, cls, head, buffers, mirror in caches:
            mod = self.current[path]
            cur = next(s for s in mod.body if isinstance(s, cst.ClassDef) and s.name.value == cls.name.value)
            shape = StaticCache(cur, head, buffers, mirror)
            if shape.why:
                return shape.why
            new = rewrite_cache_static(cur, shape)
            if new is None:
                return f"{cls.name.value}: append not recognised"
            self._set(path, mod.with_changes(body=[new if s is cur else s for s in mod.body]))
            self.notes.append(("TCS003", path, cls.name.value, "static decode: one buffer per layer, host phase "
                               "flag instead of the length mirror, scaler statistics"))
        why = self._entry() or self._scalers() or self._readers() or self._loops()
        if why:
            return why
        for path in self.changed:
            left = remaining_length_reads(self.current[path])
            if left and path not in {p for p, *_ in caches} and not self._is_loop_module(path):
                return f"{path}: cache length still read: {left[0]}"
        return ""

    def _entry(self) -> str:
        found = 0
        for path, mod in self.current.items():
            rw = EntryRewriter()
            new = mod.visit(rw)
            if rw.found:
                found += rw.found
                self._set(path, new)
                self.notes.append(("TCS003", path, rw.class_name, "static decode: the newest step by a constant "
                                   f"slice, {rw.scaler_attr}.stream with running statistics"))
        return "" if found == 1 else f"{found} entry methods truncating by the cache length (need 1)"

    def _scalers(self) -> str:
        found = 0
        for path, mod in self.current.items():
            if not scaler_classes(mod):
                continue
            why = streamable(mod)
            if why:
                return f"{path}: {why}"
            self._set(path, rewrite_scalers(mod))
            found += 1
            for cls in scaler_classes(mod):
                self.notes.append(("TCS003", path, cls.name.value, "static decode: stream() from running statistics"))
        return "" if found else "no scaler module"

    def _readers(self) -> str:
        for path, mod in self.current.items():
            rw = ReaderRewriter()
            new = mod.visit(rw)
            if rw.changed:
                self._set(path, new)
                self.notes.append(("TCS002", path, rw.class_name, "static decode: cache length reads -> "
                                   "prefilled() or removed"))
        return ""

    def _loops(self) -> str:
        found = 0
        for path, mod in self.current.items():
            body = []
            for st in mod.body:
                if isinstance(st, cst.ClassDef):
                    new, why = rewrite_class(st)
                    if why:
                        return why
                    if new is not None:
                        found += 1
                        self.notes.append(("TCS003", path, st.name.value, "static decode: decoding loops feed one "
                                           "fixed-shape step, cache kept between calls"))
                        st = new
                body.append(st)
            self._set(path, mod.with_changes(body=body))
        return "" if found else "no decoding loop"

    def _is_loop_module(self, path: str) -> bool:
        return "_take_kv_cache" in code(self.current[path])
