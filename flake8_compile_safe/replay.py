"""Replaying the walk from the roots: which reached functions and callee summaries of the last
run still hold, and the records of this one (:mod:`.incremental` stores them per file).

A record holds what analysing one function in one context produced (rule hits, functions
called, calls followed, a skip) and what it depended on: the files whose ASTs it read, with
their content hashes, and the callee summaries it used, with their values. It is replayed when
those files are unchanged and those summaries still have the same values (recomputed if they
must be): an edit that leaves a callee's return value alone invalidates nothing upstream.

Records and summaries read from the cache stay pickled (``bytes``, one per context) until the
walk asks for that one, and a replayed one is kept as those bytes: a warm run over a large
tree holds tens of thousands of them, at a fifth of the memory their objects would take.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

from .cache import load_entry
from .callgraph import Context
from .model import QUERY_ANSWERS
from .project import ProjectIndex
from .summaries import function_spec, resolve_spec

QUERY = "query"

if TYPE_CHECKING:
    from .incremental import RunStats


class ReachMemo:
    """Hands :meth:`.CallGraph.reach` the records still valid, and collects this run's."""

    def __init__(self, index: ProjectIndex, records: dict, hashes: dict[str, str], stats: "RunStats",
                 summaries: dict | None = None):
        self.index = index
        self.records = records
        self.summaries = summaries or {}
        self.hashes = hashes
        self.stats = stats
        self.kept: dict[str, dict] = {}  # module path -> {context key: record} of this run
        self.kept_summaries: dict[str, dict] = {}  # module path -> {context key: (value, reads)}
        self._functions: dict[str, dict] = {}

    def summary(self, ctx: Context, graph):
        """What a call returns, from the last run, while what it read and used is unchanged."""
        packed = self.summaries.get(ctx.key)
        if packed is None:
            return None
        stored = unpack(packed)
        if not self._still_valid(stored[1], stored[2], graph, ctx.key):
            return None
        self.kept_summaries.setdefault(ctx.func.module.path_str, {})[ctx.key] = packed
        return stored[0]

    def store_summary(self, ctx: Context, value, read, uses) -> None:
        self.kept_summaries.setdefault(ctx.func.module.path_str, {})[ctx.key] = (
            value, self._reads(read), self._uses(uses))

    def replay(self, ctx: Context, graph):
        packed = self.records.get(ctx.key)
        if packed is None:
            return None
        reads, uses, hits, calls, skipped, successors = unpack(packed)
        if not self._still_valid(reads, uses, graph, ctx.key):
            return None
        contexts = []
        for spec, self_cls, bindings, step in successors:
            callee = self._context(spec, self_cls, bindings)
            if callee is None:
                return None  # cannot happen with unchanged facts; analyse rather than guess
            contexts.append((callee, step))
        self.stats.replayed += 1
        self._keep(ctx, packed)
        return list(hits), calls, skipped, contexts

    def calls(self, ctx: Context) -> tuple:
        """The (callee, line, column) calls this run's record of ``ctx`` holds (what the walk followed)."""
        record = self.kept.get(ctx.func.module.path_str, {}).get(ctx.key)
        return unpack(record)[3] if record is not None else ()

    def store(self, ctx: Context, hits, calls, skipped, successors, read, uses) -> None:
        self.stats.analysed += 1
        specs = tuple((function_spec(c.func), c.self_cls.qualname if c.self_cls is not None else "",
                       c.bindings, step) for c, step in successors)
        self._keep(ctx, (self._reads(read), self._uses(uses), tuple(hits), calls, skipped, specs))

    # -- validity -------------------------------------------------------------------------------
    def _still_valid(self, reads, uses, graph, key) -> bool:
        """The files read are unchanged, and each callee summary used still has the same value
        (computed now if it must be: early cutoff, a changed body that returns the same kind of
        value invalidates nothing upstream)."""
        if any(self.hashes.get(path) != sha for path, sha in reads):
            return False
        if not uses:
            return True
        graph._push_uses()  # what checking uses is not a use of whoever asked
        graph._in_progress.add(key)
        try:
            for spec, self_cls, bindings, value in uses:
                if spec == QUERY:  # a project-wide query: (QUERY, (kind, key), None, answer)
                    kind, query_key = self_cls
                    answer = QUERY_ANSWERS.get(kind)
                    if answer is None or answer(self.index, query_key) != value:
                        return False
                    continue
                callee = self._context(spec, self_cls, bindings)
                if callee is None or graph.summary_of(callee) != value:
                    return False
            return True
        finally:
            graph._in_progress.discard(key)
            graph._pop_uses()

    def _reads(self, read) -> tuple:
        return tuple(sorted((path, self.hashes[path]) for path in read if path in self.hashes))

    @staticmethod
    def _uses(uses: dict) -> tuple:
        return tuple((QUERY, key, None, value) if c is None else
                     (function_spec(c.func), c.self_cls.qualname if c.self_cls is not None else "", c.bindings, value)
                     for key, (c, value) in uses.items())

    def _context(self, spec, self_cls: str, bindings) -> Context | None:
        func = self._function(spec)
        klass = self.index.lookup_class(self_cls) if self_cls else None
        if func is None or (self_cls and klass is None):
            return None
        return Context(func, klass, bindings)

    def _keep(self, ctx: Context, record) -> None:
        self.kept.setdefault(ctx.func.module.path_str, {})[ctx.key] = record

    def _function(self, spec):
        if spec[4] is None:  # top level or a method: by qualified name, wherever it now starts
            table = self._functions.get(spec[0])
            if table is None:
                module = self.index.modules.get(spec[0])
                table = self._functions[spec[0]] = {} if module is None else {
                    f.qualname: f for f in module.all_functions()}
            return table.get(spec[1])
        return resolve_spec(self.index, spec)


def pack(stored) -> bytes:
    """One record or summary as the cache keeps it (already packed ones pass through)."""
    return stored if isinstance(stored, bytes) else pickle.dumps(stored, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(stored):
    """The record or summary itself; through the cache's allow-list unpickler (:mod:`.cache`)."""
    return load_entry(stored) if isinstance(stored, bytes) else stored


def packed(table: dict) -> dict:
    return {key: pack(stored) for key, stored in table.items()}
