"""Worker of ``compile-safe-validate``: measure one variant (one source tree) of any model.

Run in its own subprocess, so that the model package is imported from that tree and dynamo
starts from a clean state::

    python -m flake8_compile_safe.validate.harness OPTIONS.json RESULT.json [PROGRESS]

``OPTIONS.json`` is a :class:`~flake8_compile_safe.validate.options.RunOptions` record,
``RESULT.json`` a :class:`~flake8_compile_safe.validate.records.RunResult` (exit 0), or one with
``error`` set when the workload could not be measured (exit 2: bad module, factory, or eager
run). ``PROGRESS`` (optional) receives one JSON line per change of phase, step or graph count
(:mod:`.progress`); the CLI prints them while the worker runs.

In that process: ``--path`` goes first on ``sys.path``; ``FACTORY(**workload_args)`` builds
``(model, run[, metrics])`` (:mod:`.workload`); the first eager ``run(model)`` is traced for
line coverage of the tree (:mod:`.coverage`), the remaining warm-up runs follow and the last
output is the reference. Then per mode: ``torch._dynamo.reset()``, ``torch.compile(model,
backend=RecordingBackend)``, the first run (compiles), the other warm-up runs, and ``runs`` timed
runs interleaved with eager ones (a change of load on a shared machine hits both sides of the
speedup alike). With ``options.lockstep`` (several variants at once, :mod:`.lockstep`) building,
warm-up and compiling hold a lock shared with the other variants' workers, and each timed
(eager, compiled) pair is one turn, alternating with theirs. Counted per mode: graphs handed to
the backend, ``counters["graph_break"]``, ``counters["unimplemented"]`` (frame skips), recompiles
from dynamo's log, predicted CUDA-graph skips and re-records (:mod:`.backend`), and every event with
its source line (:mod:`.dynamo_log`).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

from .backend import RecordingBackend
from .coverage import LineCoverage
from .dynamo_log import EventLog, compile_error_event, parse_events, parse_frames
from .guard_walk import FailingGuards
from .lockstep import Lockstep, LockstepError, Solo
from .options import RunOptions
from .progress import ProgressWriter
from .records import Event, ModeResult, RunResult
from .workload import Workload, WorkloadError, build, describe, load_factory, output_tensors


def _percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def aggregate(events: list[Event], root: str) -> list[Event]:
    """One event per (kind, file, line), counts added; files under ``root`` made relative to it."""
    root = os.path.join(os.path.abspath(root), "")
    merged: dict[tuple, Event] = {}
    for event in events:
        if event.file:
            full = os.path.abspath(event.file)
            event.file = os.path.relpath(full, root) if full.startswith(root) else event.file
        if event.lines:
            event.lines = [[os.path.relpath(os.path.abspath(f), root), n] for f, n in event.lines
                           if os.path.abspath(f).startswith(root)]
        event.guards = _relative(event.guards, root)  # those outside the tree keep dynamo's path
        if event.frame:
            event.frame = _relative([event.frame], root)[0]
        known = merged.get(event.key)
        if known is None:
            merged[event.key] = event
        else:
            known.count += event.count
            known.lines = _union(known.lines, event.lines)  # every call path the event was reached through
            known.guards = _union(known.guards, event.guards)  # every guard that failed there
    return list(merged.values())


def _relative(locs: list | None, root: str) -> list | None:
    """[..., file, line] items with their files under ``root`` made relative to it."""
    if not locs:
        return locs
    out = []
    for *head, f, n in locs:
        full = os.path.abspath(f) if f else ""
        out.append([*head, os.path.relpath(full, root) if full.startswith(root) else f, n])
    return out


def _union(known: list | None, new: list | None) -> list | None:
    if not new:
        return known
    return [*(known or []), *(item for item in new if item not in (known or []))]


class Harness:
    def __init__(self, options: RunOptions, progress: ProgressWriter | None = None, lockstep=None):
        self.options = options
        self.progress = progress or ProgressWriter(None)
        self.lockstep = lockstep or Solo()
        self.path = os.path.abspath(options.path)
        self.torch = None
        self.device = "cpu"
        self.workload: Workload | None = None
        self.eager_out: list = []
        self.eager_extra: dict = {}
        self.compiled_out: dict[str, list] = {}  # mode -> outputs of its last run

    # -- setup ---------------------------------------------------------------------------------
    def setup(self, result: RunResult) -> None:
        if not os.path.isdir(self.path):
            raise WorkloadError(f"{self.options.path}: --path is not a directory")
        sys.path.insert(0, self.path)
        import torch

        self.torch = torch
        apply_dynamo_switches(os.environ.get(DYNAMO_SWITCHES_ENV, ""))
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        device = self.options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise WorkloadError("--device cuda: CUDA is not available")
        self.device = result.device = device
        result.torch, result.threads = torch.__version__, torch.get_num_threads()
        factory = load_factory(self.options.factory)
        torch.manual_seed(self.options.seed)  # a factory that draws random weights draws the same ones each run
        with torch.device(device):
            self.workload = build(factory, self.options.factory, self.options.workload_args)
        result.about, result.metric_legend = self.workload.about, self.workload.metric_legend

    def _check_package(self) -> None:
        name = self.options.expect_package
        if not name:
            return
        module = sys.modules.get(name)
        where = os.path.abspath(getattr(module, "__file__", "") or "") if module is not None else ""
        if not where.startswith(os.path.join(self.path, "")):
            raise WorkloadError(f"{self.options.path}: imported {name} from {where or 'nowhere'}, "
                                "not from this tree")

    # -- runs ------------------------------------------------------------------------------------
    def _sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def _run(self, model, what: str):
        self.torch.manual_seed(self.options.seed)
        out = self.workload.call(model, what)
        self._sync()
        return out

    def _timed(self, model, what: str):
        """(output, wall ms); the process CPU ms goes to ``self.last_cpu_ms`` (steadier on a shared machine)."""
        c0, t0 = time.process_time(), time.perf_counter()
        out = self._run(model, what)
        self.last_cpu_ms = (time.process_time() - c0) * 1000.0
        return out, (time.perf_counter() - t0) * 1000.0

    def _peak_mem_mb(self) -> float:
        if self.device == "cuda":
            return self.torch.cuda.max_memory_allocated() / 2**20
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux

    def _reset_peak(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.reset_peak_memory_stats()

    def _metrics(self, tensors_or_output) -> dict:
        if self.workload.metrics is None:
            return {}
        try:
            values = self.workload.metrics(tensors_or_output)
            return {k: float(v) for k, v in dict(values).items()}
        except Exception as exc:
            raise WorkloadError(f"metrics(output) failed: {describe(exc)}") from exc

    def eager(self, result: RunResult) -> ModeResult:
        model = self.workload.model
        self._reset_peak()
        coverage = LineCoverage(self.path)
        self.progress.phase("eager", step=1, of=self.options.warmup)
        with coverage:
            out = self._run(model, "run(model) (eager)")
        output_tensors(out, "run(model)")
        self._check_package()  # after a run: a factory may import the model package lazily
        result.executed = coverage.relative()
        result.executed_spans = coverage.relative_spans()
        if not result.executed:
            raise WorkloadError(f"the workload executed no line under {self.path}: is the model imported "
                                "from another tree? (--path must hold its source)")
        for i in range(self.options.warmup - 1):
            self.progress.phase("eager", step=i + 2, of=self.options.warmup)
            out = self._run(model, "run(model) (eager)")
        self.eager_out = [t.detach().clone() for t in output_tensors(out)]
        self.eager_extra = self._metrics(out)
        return ModeResult(self.options.variant, "eager", max_abs_diff=0.0, speedup_vs_eager=1.0,
                          compile_s=0.0, peak_mem_mb=self._peak_mem_mb(), extra=dict(self.eager_extra))

    eager_cpu: list = []
    last_cpu_ms = 0.0

    def _max_abs_diff(self, out) -> float:
        compiled = output_tensors(out, "run(compiled model)")
        if len(compiled) != len(self.eager_out) or any(c.shape != e.shape for c, e in zip(compiled, self.eager_out)):
            raise WorkloadError("the compiled model's output has other shapes than the eager one's")
        diffs = [float((c.detach().double() - e.double()).abs().max()) if c.numel() else 0.0
                 for c, e in zip(compiled, self.eager_out)]
        return max(diffs, default=0.0)

    def mode(self, mode: str) -> tuple[ModeResult, list[float]]:
        """One compiled mode; returns its result and the interleaved eager latencies."""
        torch = self.torch
        from torch._dynamo.utils import counters

        options, model = self.options, self.workload.model
        row = ModeResult(options.variant, mode)
        torch._dynamo.reset()
        counters.clear()
        self._reset_peak()
        log = EventLog().install(torch)
        walk = FailingGuards(log, [self.path]).install()
        backend = RecordingBackend(mode, options.backend, self.device, [self.path],
                                   on_graph=self.progress.graph_compiled)
        eager_lat: list[float] = []
        n_warm = 0
        stage = f"timed-{mode}"
        try:
            with self.lockstep.exclusive(f"the lock to compile ({mode})"):  # one variant compiles at a time
                compiled = torch.compile(model, backend=backend)
                self.progress.phase("compile", mode)
                t0 = time.perf_counter()
                self._run(compiled, "run(compiled model)")
                first_s = time.perf_counter() - t0
                for i in range(options.warmup - 1):
                    self.progress.phase("warmup", mode, i + 2, options.warmup)
                    self._run(compiled, "run(compiled model)")
            n_warm = len(log.records)
            comp_lat, out, comp_cpu, self.eager_cpu = [], None, [], []
            self.lockstep.arrive(stage, f"its timed runs ({mode})")
            for i in range(options.runs):
                # each (eager, compiled) pair alternates with the other variants' pairs, never beside one
                with self.lockstep.turn(stage, i):
                    self.progress.phase("timed", mode, i + 1, options.runs)
                    eager_lat.append(self._timed(model, "run(model) (eager)")[1])
                    self.eager_cpu.append(self.last_cpu_ms)
                    out, ms = self._timed(compiled, "run(compiled model)")
                    comp_lat.append(ms)
                    comp_cpu.append(self.last_cpu_ms)
            row.max_abs_diff = self._max_abs_diff(out)
            self.compiled_out[mode] = [t.detach().clone() for t in output_tensors(out)]
            extra = self._metrics(out)
            for key, value in list(extra.items()):
                if key in self.eager_extra:
                    extra[f"{key}_diff"] = abs(value - self.eager_extra[key])
            row.extra = extra
            med = statistics.median(comp_lat)
            row.latency_ms_median, row.latency_ms_p90 = med, _percentile(comp_lat, 0.9)
            row.cpu_ms_median = statistics.median(comp_cpu)
            row.eager_latency_ms_median = statistics.median(eager_lat)
            row.speedup_vs_eager = row.eager_latency_ms_median / med if med > 0 else None
            row.compile_s = max(0.0, first_s - med / 1000.0)
        except LockstepError:
            raise  # the whole run failed, not this mode
        except WorkloadError as exc:
            row.error = str(exc)
            failure = compile_error_event(exc, [self.path])
        except Exception as exc:  # dynamo or inductor failed on this model: a result, not a crash
            row.error = describe(exc)
            failure = compile_error_event(exc, [self.path])
        else:
            failure = None
        finally:
            self.lockstep.leave(stage)  # the others stop waiting for this variant's turns
            log.remove()
            walk.remove()
        row.guard_walk = dict(walk.stats)
        events, row.recompile_limit_hits = parse_events(log.records, [self.path])
        late, _ = parse_events(log.records[n_warm:], [self.path]) if n_warm else ([], 0)
        row.unique_graphs = len(backend.graphs)
        row.graph_breaks = int(sum(counters["graph_break"].values()))
        row.frame_skips = int(sum(counters["unimplemented"].values()))
        row.recompiles = sum(1 for e in events if e.kind == "recompile")
        row.recompiles_after_warmup = sum(1 for e in late if e.kind == "recompile")
        row.predicted_cudagraph_skips = len(backend.mutated)
        row.predicted_cudagraph_rerecords = backend.rerecords
        if self.device == "cuda":
            row.cudagraph_skips = int(counters["inductor"].get("cudagraph_skips", 0))
        row.peak_mem_mb = self._peak_mem_mb()
        root = os.path.join(os.path.abspath(self.path), "")
        row.frames = [[os.path.relpath(file, root), line, name, times]
                      for file, line, name, times in parse_frames(log.records, [self.path])]
        row.events = aggregate(events + ([failure] if failure else []) + backend.mutated + backend.rerecord_events(),
                               self.path)
        return row, eager_lat


def compare_outputs(harness: Harness, result: RunResult) -> None:
    """Save this run's outputs, or set each row's max abs diff against a saved run (same mode)."""
    import torch

    options = harness.options
    outputs = {"eager": harness.eager_out, **harness.compiled_out}
    if options.save_outputs:
        tmp = options.save_outputs + ".tmp"
        torch.save({k: [t.cpu() for t in v] for k, v in outputs.items()}, tmp)
        os.replace(tmp, options.save_outputs)  # a lockstep partner never reads half a file
    harness.lockstep.arrive("outputs", "the end of its runs")  # the reference's worker may still be running
    if not options.reference_outputs:
        return
    if not os.path.isfile(options.reference_outputs):
        raise WorkloadError(f"{options.reference_outputs}: the reference run saved no outputs")
    reference = torch.load(options.reference_outputs)
    for row in result.results:
        mine = outputs.get(row.mode)
        row.max_abs_diff_vs_reference = _max_diff(mine, reference.get(row.mode))
        # every mode against the reference's eager output: what the user had before (the original, eager)
        row.max_abs_diff_vs_reference_eager = _max_diff(mine, reference.get("eager"))


def _max_diff(mine, theirs) -> float | None:
    if mine is None or theirs is None:
        return None
    if len(mine) != len(theirs) or any(a.shape != b.shape for a, b in zip(mine, theirs)):
        return float("inf")
    return max((float((a.detach().cpu().double() - b.double()).abs().max()) for a, b in zip(mine, theirs) if a.numel()),
               default=0.0)


def make_lockstep(options: RunOptions, progress: ProgressWriter | None = None):
    """This worker's side of the lockstep its options name (:class:`.lockstep.Solo` when none)."""
    spec = options.lockstep
    if not spec:
        return Solo()
    on_wait = (lambda what: progress.phase("wait", note=what)) if progress is not None else None
    return Lockstep(spec["dir"], options.variant, spec["variants"], spec.get("timeout", 1800), on_wait,
                    core=spec.get("core"))


def measure(options: RunOptions, progress: ProgressWriter | None = None, lockstep=None) -> RunResult:
    warnings.filterwarnings("ignore")
    result = RunResult(options.variant, options.factory, os.path.abspath(options.path))
    harness = Harness(options, progress, lockstep)
    harness.lockstep.start()
    try:
        return _measure(harness, result)
    except (WorkloadError, LockstepError) as exc:
        result.error = str(exc)
        return result
    finally:
        harness.lockstep.finish()


def _measure(harness: Harness, result: RunResult) -> RunResult:
    options = harness.options
    with harness.lockstep.exclusive("the lock to build and warm up"):
        harness.setup(result)
        eager = harness.eager(result)
    result.results.append(eager)
    for i, mode in enumerate(options.modes):
        row, eager_lat = harness.mode(mode)
        result.results.append(row)
        if i == 0 and eager_lat:
            # The eager row reports the eager runs interleaved with the first mode's compiled ones
            # (same machine load as the compiled row); the up-front eager runs were warm-up.
            eager.latency_ms_median = statistics.median(eager_lat)
            eager.latency_ms_p90 = _percentile(eager_lat, 0.9)
            eager.eager_latency_ms_median = eager.latency_ms_median
            eager.cpu_ms_median = statistics.median(harness.eager_cpu) if harness.eager_cpu else None
    compare_outputs(harness, result)
    result.timed_with = list(getattr(harness.lockstep, "partners", []))
    return result


# Counterfactual runs (benchmarks/recall.py): "allow_rnn,capture_scalar_outputs" turns these boolean
# torch._dynamo.config switches on before anything compiles. Only switches that let dynamo trace a
# kind of graph break are accepted; anything else is a clear error, not a silent no-op.
DYNAMO_SWITCHES_ENV = "COMPILE_SAFE_DYNAMO_SWITCHES"
DYNAMO_SWITCHES = ("allow_rnn", "capture_scalar_outputs", "capture_dynamic_output_shape_ops")


def apply_dynamo_switches(spec: str) -> list[str]:
    """Turn on the ``torch._dynamo.config`` switches named in ``spec`` (comma-separated)."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in DYNAMO_SWITCHES]
    if unknown:
        known = ", ".join(DYNAMO_SWITCHES)
        raise WorkloadError(f"{DYNAMO_SWITCHES_ENV}: unknown switch {unknown[0]!r} (known: {known})")
    if names:
        import torch._dynamo.config as config

        for name in names:
            setattr(config, name, True)
    return names


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) not in (2, 3):
        print("usage: python -m flake8_compile_safe.validate.harness OPTIONS.json RESULT.json [PROGRESS]",
              file=sys.stderr)
        return 2
    options = RunOptions.read(Path(argv[0]))
    progress = ProgressWriter(argv[2] if len(argv) == 3 else None)
    progress.phase("build")
    result = measure(options, progress, make_lockstep(options, progress))
    progress.phase("done")
    progress.close()
    Path(argv[1]).write_text(json.dumps(result.to_json(), indent=1, default=str))
    if result.error:
        print(f"harness: error: {result.error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
