"""Typed results of a validation run: what the harness measures and the cross-check reports.

One :class:`ModeResult` per (variant, mode); ``to_json()`` gives the JSON the CLI writes, with
the field names below (``benchmarks/recall.py`` and the tests read them). Nothing here imports
torch.

Event kinds (``Event.kind``):

* ``graph_break``: dynamo ended a graph at this line (``counters["graph_break"]``);
* ``frame_skip``: dynamo gave up on the whole frame holding this line and runs it eagerly
  (``counters["unimplemented"]``);
* ``recompile``: a guard failed and the frame was compiled again; the line is where the guarded
  value is read where dynamo says so, else the recompiled function's ``def`` line;
* ``predicted_cudagraph_skip``: a graph mutates an input in place that is not a static input
  (AOT ``fw_metadata``): CUDA graph trees skip that graph;
* ``predicted_cudagraph_rerecord``: a compiled graph was called with more than one tuple of
  SymInt input values; under ``reduce-overhead`` each new tuple records a new CUDA graph
  (``count``: distinct tuples minus one);
* ``cudagraph_skip``: CUDA only, inductor said it skipped CUDA graphs for a graph (its log);
* ``compile_error``: dynamo raised while tracing this line (not a graph break: the compiled call
  fails and the run stops there); the line is the innermost frame in the tree of the exception's
  user stack (``real_stack``), the other frames in the tree go on ``lines``.

``anchor`` says what the line is: ``"dynamo"`` (the line dynamo's own message names: a break, a
skip), ``"guarded_read"`` (recompile: the line that reads the guarded value, from dynamo's guard
failure), ``"function_def"`` (recompile: dynamo named no such line; the recompiled function's
``def``), ``"mutation"`` (the op that writes the input in place), ``"symint_use"`` (the first op
of the graph that uses a SymInt input), ``"graph_op"`` (no op using one is in the tree: the
graph's first op that is), ``"raised"`` (compile_error: the user line dynamo was tracing when it
raised), or ``None`` (no line known).

``flagged`` lists the TCS codes the linter reports within :data:`FLAG_WINDOW` lines of the
event's line in the same file (empty: not flagged; ``None``: the linter did not run).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

FLAG_WINDOW = 2
BREAK_KINDS = ("graph_break", "frame_skip")
RECOMPILE_KINDS = ("recompile",)
EVENT_KINDS = (*BREAK_KINDS, *RECOMPILE_KINDS, "predicted_cudagraph_skip", "predicted_cudagraph_rerecord",
               "cudagraph_skip", "compile_error")


@dataclass
class Event:
    kind: str  # one of EVENT_KINDS
    file: str | None  # relative to the analysed tree (``--path``) when under it, else as dynamo said
    line: int | None
    reason: str  # dynamo's own words, first line
    count: int = 1  # how often it happened at this line during the workload
    flagged: list[str] | None = None
    anchor: str | None = None  # what the line is (see the module docstring)
    # [file, line]s beside the anchor: for predicted_cudagraph_rerecord, every op in the tree the
    # varying SymInt inputs reach through number arithmetic (where those numbers are used); for a
    # graph break or frame skip, the call sites in the tree of its user traceback
    lines: list | None = None
    # recompile only: [guard text, file, line] of every guard of the failed cache entries that is
    # False on the new call (:mod:`.guard_walk`; tensor-match guards are not Python expressions:
    # dynamo's ``reason`` names those); the line is the guard's innermost user frame. ``line``
    # stays dynamo's first failure (the recall's anchor).
    guards: list | None = None
    # recompile only, when not flagged: the kind of frame (:class:`flake8_compile_safe.splits.SplitFrame`)
    # the linter predicts a break that dynamo reported in this run splits off here, else None
    split: str | None = None
    # recompile only: [name, file, line] of the frame dynamo recompiled (its code object's first line,
    # a resume frame's resume line), whatever line the event is anchored at
    frame: list | None = None

    @property
    def key(self) -> tuple:
        """Events with the same key are one entry (counts add up)."""
        return (self.kind, self.file, self.line) if self.line else (self.kind, self.file, None, self.reason)


@dataclass
class UnconfirmedFinding:
    """A TCS finding on a line the workload executed where dynamo reported nothing."""

    code: str
    file: str
    line: int
    message: str


@dataclass
class Recall:
    """Distinct event lines under the analysed tree: how many carry a TCS finding within the window."""

    flagged: int = 0
    total: int = 0
    outside: int = 0  # event lines outside the analysed tree, or with no line: not counted
    # Recompile lines only: the unflagged ones by guard kind (``validate.guards``: shape, value,
    # type, other), and one guard text per kind as an example.
    unflagged: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    # Recompile lines only: unflagged lines in a frame the linter predicts a break dynamo reported
    # in this run splits off (``Event.split``); counted apart from ``flagged``
    split: int = 0

    @property
    def value(self) -> float | None:
        return self.flagged / self.total if self.total else None

    def to_json(self) -> dict:
        out = {"flagged": self.flagged, "total": self.total, "recall": self.value, "outside": self.outside}
        if self.split:
            out["split"] = self.split
        if self.unflagged:
            out["unflagged"] = dict(self.unflagged)
            out["examples"] = dict(self.examples)
        return out

    @classmethod
    def from_json(cls, data: dict) -> "Recall":
        return cls(data.get("flagged", 0), data.get("total", 0), data.get("outside", 0),
                   dict(data.get("unflagged", {})), dict(data.get("examples", {})), data.get("split", 0))


@dataclass
class ModeResult:
    variant: str  # "original", "fixed", or the model spec
    mode: str  # "eager", "default", "reduce-overhead", "max-autotune"
    unique_graphs: int = 0
    graph_breaks: int = 0
    frame_skips: int = 0
    recompiles: int = 0
    recompiles_after_warmup: int = 0
    recompile_limit_hits: int = 0
    predicted_cudagraph_skips: int = 0
    predicted_cudagraph_rerecords: int = 0
    cudagraph_skips: int | None = None  # inductor's counter, on CUDA only
    max_abs_diff: float | None = None  # compiled vs eager output
    # vs another run's outputs in the same mode (compile-safe-fix --verify: fixed vs original tree)
    max_abs_diff_vs_reference: float | None = None
    latency_ms_median: float | None = None
    latency_ms_p90: float | None = None
    eager_latency_ms_median: float | None = None
    speedup_vs_eager: float | None = None
    # vs the reference run's eager output (compile-safe-validate: the original variant's), and the
    # speedups vs the original's eager p50 and its compiled p50 in the same mode (other variants'
    # rows only; timed in another process).
    max_abs_diff_vs_reference_eager: float | None = None
    speedup_vs_original_eager: float | None = None
    speedup_vs_original_compiled: float | None = None
    # Process CPU time of a run, p50 (with one thread: what the run computed, less disturbed than
    # wall time by other jobs on the machine), and the speedup vs the original eager by CPU time.
    cpu_ms_median: float | None = None
    cpu_speedup_vs_original_eager: float | None = None
    compile_s: float | None = None
    # The walk for every failing guard at a recompile (:mod:`.guard_walk`): recompiles walked,
    # failing guards found, guard parts it could not evaluate, walks that failed (swallowed).
    guard_walk: dict = field(default_factory=dict)
    peak_mem_mb: float | None = None
    events: list[Event] = field(default_factory=list)
    unconfirmed_findings: list[UnconfirmedFinding] = field(default_factory=list)
    executed_findings: int = 0  # TCS findings on lines the workload executed (unconfirmed ones included)
    break_recall: Recall = field(default_factory=Recall)  # flagged break/skip lines / all
    recompile_recall: Recall = field(default_factory=Recall)  # flagged recompile lines / all
    extra: dict = field(default_factory=dict)  # the factory's metrics(output), e.g. a forecast MAE
    # [file, line, name, times] of each frame under the tree dynamo started tracing (a resume
    # frame's line is where it resumes; files relative to the tree)
    frames: list = field(default_factory=list)
    # The linter's split-frame predictions (:mod:`flake8_compile_safe.splits`) for the breaks dynamo
    # reported in this run: [file, line, kind] of each predicted frame whose code ran, and whether
    # dynamo traced a frame there (within the window): the predictions' precision
    split_frames: list = field(default_factory=list)
    error: str | None = None  # this mode failed under torch.compile: the exception, one line

    def to_json(self) -> dict:
        out = asdict(self)
        out["static_recall"] = {"break_skip": self.break_recall.to_json(),
                                "recompile": self.recompile_recall.to_json()}
        del out["break_recall"], out["recompile_recall"]
        return out

    @classmethod
    def from_json(cls, data: dict) -> "ModeResult":
        data = dict(data)
        recall = data.pop("static_recall", {}) or {}
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["events"] = [Event(**e) for e in data.get("events", [])]
        kwargs["unconfirmed_findings"] = [UnconfirmedFinding(**u) for u in data.get("unconfirmed_findings", [])]
        kwargs["break_recall"] = Recall.from_json(recall.get("break_skip", {}))
        kwargs["recompile_recall"] = Recall.from_json(recall.get("recompile", {}))
        return cls(**kwargs)


@dataclass
class RunResult:
    """What one worker process (one variant: one source tree) hands back to the CLI."""

    variant: str
    factory: str  # "module:function"
    path: str  # the tree on sys.path and under analysis, absolute
    device: str = "cpu"
    torch: str = ""
    threads: int = 0
    results: list[ModeResult] = field(default_factory=list)  # eager first, then one per mode
    # Lines the eager workload executed, per file relative to ``path`` (the cross-check's coverage).
    executed: dict[str, list[int]] = field(default_factory=dict)
    # The source spans ([line, end line, column, end column]) of the instructions that ran.
    executed_spans: dict[str, list[list[int]]] = field(default_factory=dict)
    error: str | None = None  # the run could not start (bad module, factory, or eager run): one line
    # Optional words from the workload: ``run.about`` (one line on what is measured, e.g. "random
    # weights") and ``metrics.legend`` ({metric: meaning}); shown with the results.
    about: str = ""
    metric_legend: dict[str, str] = field(default_factory=dict)
    # The variants whose workers were timed in lockstep with this one (:mod:`.lockstep`): their
    # timed runs alternated with this one's, under the same machine load. Empty: timed alone.
    timed_with: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        out = asdict(self)
        out["results"] = [r.to_json() for r in self.results]
        return out

    @classmethod
    def from_json(cls, data: dict) -> "RunResult":
        data = dict(data)
        results = [ModeResult.from_json(r) for r in data.pop("results", [])]
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}, results=results)
