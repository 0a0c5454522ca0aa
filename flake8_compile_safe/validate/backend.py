"""A torch.compile backend that records what the graphs dynamo hands it would do under CUDA graphs.

For every graph it records:

* mutated inputs that are not static (``fw_metadata.input_info[i].mutates_data`` with ``i`` not in
  ``fw_metadata.static_input_indices``): what makes inductor's CUDA-graph trees skip the graph
  (``predicted_cudagraph_skip``), with the line of the op that writes the input;
* the SymInt inputs of the graph and, at run time, every distinct tuple of their values it is
  called with: CUDA-graph trees record one CUDA graph per distinct tuple ("recording a new graph
  for each distinct input size"), so ``distinct - 1`` is the number of re-records a
  ``reduce-overhead`` run would pay (``predicted_cudagraph_rerecord``). Measured from the
  backend's side: the compiled callable is wrapped and sees the values dynamo passes in.

``backend="inductor"`` compiles for real (inductor's ``compile_fx`` with the mode's options, the
metadata read in ``inner_compile``); ``backend="analysis"`` stops after AOT autograd (no code
generation: same graphs, same metadata, much faster).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .dynamo_log import _last_stack_loc, root_prefixes
from .records import Event

_MUTATING = ("setitem", "copy_", "index_put", "index_copy")
_INPLACE_OPERATORS = {"iadd", "isub", "imul", "imatmul", "itruediv", "ifloordiv", "imod", "ipow", "iand", "ior",
                      "ixor", "ilshift", "irshift"}  # operator.iadd & co. (``t += 1`` in dynamo's graph)


@dataclass
class GraphRecord:
    index: int
    symint_positions: list[int] = field(default_factory=list)
    symint_names: list[str] = field(default_factory=list)
    file: str | None = None  # first op using a SymInt input, under the analysed tree
    line: int | None = None
    anchor: str | None = None  # "symint_use", or "graph_op" (the graph's first op in the tree)
    calls: int = 0
    seen: set = field(default_factory=set)  # distinct tuples of SymInt input values
    used_on: list = field(default_factory=list)  # per SymInt input: the (file, line)s it reaches

    def varying_lines(self) -> list:
        """[file, line] of every use of a SymInt input that took more than one value."""
        out: set = set()
        for k, lines in enumerate(self.used_on):
            if len({values[k] for values in self.seen}) > 1:
                out.update(lines)
        return [list(loc) for loc in sorted(out)]

    @property
    def rerecords(self) -> int:
        return max(0, len(self.seen) - 1)


def _source_name(node) -> str:
    grapharg = node.meta.get("grapharg")
    source = getattr(grapharg, "source", None)
    if source is None:
        return node.name
    try:
        name = source.name  # a property in recent torch, a method before
        return str(name() if callable(name) else name)
    except Exception:  # noqa: BLE001 - a name is only for the message
        return node.name


def _user_loc(node, roots):
    return _last_stack_loc(node.meta.get("stack_trace") or "", roots)


class RecordingBackend:
    def __init__(self, mode: str, backend: str, device: str, roots: list[str], on_graph=None):
        self.mode = mode
        self.on_graph = on_graph  # called with the number of graphs so far (progress)
        self.backend = backend
        self.device = device
        self.roots = root_prefixes(roots)
        self.graphs: list[GraphRecord] = []
        self.mutated: list[Event] = []
        self._gm = None

    def __deepcopy__(self, memo):
        # Lightning patches torch.compile to deep-copy its keyword arguments; a backend is not data.
        return self

    # -- compile time --------------------------------------------------------------------------
    def __call__(self, gm, example_inputs):
        import torch

        self._gm = gm
        record = GraphRecord(len(self.graphs))
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        for i, value in enumerate(example_inputs):
            if isinstance(value, torch.SymInt):
                record.symint_positions.append(i)
                record.symint_names.append(_source_name(placeholders[i]) if i < len(placeholders) else f"arg{i}")
        record.file, record.line, record.anchor = self._symint_use(placeholders, record.symint_positions)
        record.used_on = [self._number_uses(placeholders[i]) if i < len(placeholders) else set()
                          for i in record.symint_positions]
        self.graphs.append(record)
        if self.on_graph is not None:
            self.on_graph(len(self.graphs))
        return self._wrap(self._compile(gm, example_inputs), record)

    def _compile(self, gm, example_inputs):
        if self.backend == "analysis":
            from torch._dynamo.backends.common import aot_autograd

            def forward_compiler(graph, inputs):
                self._record_metadata()
                return graph

            return aot_autograd(fw_compiler=forward_compiler)(gm, example_inputs)
        from torch._inductor import list_mode_options
        from torch._inductor.compile_fx import compile_fx, compile_fx_inner

        def inner(graph, inputs, *args, **kwargs):
            if not kwargs.get("is_backward", False):
                self._record_metadata()
            return compile_fx_inner(graph, inputs, *args, **kwargs)

        patches = dict(list_mode_options(self.mode)) if self.mode != "default" else {}
        if self.device != "cuda":
            patches.pop("triton.cudagraphs", None)
        return compile_fx(gm, example_inputs, inner_compile=inner, config_patches=patches or None)

    def _symint_use(self, placeholders, positions):
        """The first op using a SymInt input in user code; else the graph's first op in user code."""
        if not positions:
            return None, None, None
        for i in positions:
            if i < len(placeholders):
                for user in placeholders[i].users:
                    loc = _user_loc(user, self.roots)
                    if loc:
                        return loc[0], loc[1], "symint_use"
        for node in self._gm.graph.nodes:
            loc = _user_loc(node, self.roots)
            if loc:
                return loc[0], loc[1], "graph_op"
        return None, None, None

    def _number_uses(self, placeholder, limit: int = 500) -> set:
        """(file, line) of the ops in the tree that use this SymInt input, directly or through
        number arithmetic (``prefix_len = stride * (n - 1)``; ``x[:, prefix_len:]``). Tensor outputs
        are not followed: what matters is where the number itself is used."""
        import torch

        numbers = (torch.SymInt, torch.SymFloat, torch.SymBool, int, float, bool)
        found, seen, frontier = set(), {placeholder}, [placeholder]
        while frontier and len(seen) < limit:
            for user in frontier.pop().users:
                if user in seen:
                    continue
                seen.add(user)
                loc = _user_loc(user, self.roots)
                if loc:
                    found.add(loc)
                if isinstance(user.meta.get("example_value"), numbers):
                    frontier.append(user)
        return found

    def _record_metadata(self) -> None:
        from torch._guards import TracingContext

        ctx = TracingContext.try_get()
        meta = getattr(ctx, "fw_metadata", None) if ctx is not None else None
        if meta is None:
            return
        static = set(meta.static_input_indices or [])
        placeholders = [n for n in self._gm.graph.nodes if n.op == "placeholder"] if self._gm is not None else []
        for i, info in enumerate(meta.input_info):
            if info.mutates_data and i not in static:
                self.mutated.append(self._describe_mutation(placeholders, i))

    def _describe_mutation(self, placeholders, i) -> Event:
        if i >= len(placeholders):
            return Event("predicted_cudagraph_skip", None, None, "mutated non-static graph input")
        node = placeholders[i]
        name = _source_name(node)
        event = Event("predicted_cudagraph_skip", None, None,
                      f"graph input {name} is mutated in place and is not a static input")
        # The mutating op: a user (or a view's user) whose stack trace is in user code.
        seen, frontier = set(), [node]
        while frontier:
            current = frontier.pop()
            for user in current.users:
                if user in seen:
                    continue
                seen.add(user)
                target = getattr(user.target, "__name__", str(user.target))
                if any(m in target for m in _MUTATING) or target.endswith("_") or target in _INPLACE_OPERATORS:
                    loc = _user_loc(user, self.roots)
                    if loc:
                        event.file, event.line = loc
                        event.anchor = "mutation"
                        return event
                frontier.append(user)
        return event

    # -- run time ------------------------------------------------------------------------------
    @staticmethod
    def _wrap(compiled, record: GraphRecord):
        positions = record.symint_positions

        def call(*args):
            # Boxed calling convention (one list of inputs) or plain positional inputs: graph
            # inputs are tensors and numbers, never lists, so one list argument means boxed.
            values = args[0] if len(args) == 1 and type(args[0]) is list else args
            record.calls += 1
            if positions:
                record.seen.add(tuple(values[i] for i in positions))
            return compiled(*args)

        call.__dict__.update(getattr(compiled, "__dict__", {}))
        return call

    # -- results -------------------------------------------------------------------------------
    def rerecord_events(self) -> list[Event]:
        out = []
        for g in self.graphs:
            if g.rerecords:
                names = ", ".join(g.symint_names)
                out.append(Event("predicted_cudagraph_rerecord", g.file, g.line,
                                 f"graph {g.index} called with {len(g.seen)} distinct values of ({names})",
                                 count=g.rerecords, anchor=g.anchor, lines=g.varying_lines() or None))
        return out

    @property
    def rerecords(self) -> int:
        return sum(g.rerecords for g in self.graphs)
