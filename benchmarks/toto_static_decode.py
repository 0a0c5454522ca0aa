"""Toto's KV-cache decode under torch.compile: is the decode step one static graph, and how fast is it?

Two commands, each on ``toto/`` source trees (the original ``toto-ts`` tree, or a fixed copy):

    python benchmarks/toto_static_decode.py verdict --source DIR [--config tiny|base] [--context N]
        [--steps N] [--warmup 2] [--runs 5] [--backend inductor|analysis] [--reference F.pt]
        [--save-forecast F.pt] [--eager-only] [--json OUT.json]
    python benchmarks/toto_static_decode.py latency NAME=DIR [NAME=DIR ...] [--config ...]
        [--context N] [--steps N] [--rounds 20] [--json OUT.json]

The workload is the validation harness's: ``TotoForecaster.generate_mean(..., use_kv_cache=True)``
on the seeded series, eagerly and with ``model.backbone`` wrapped in ``torch.compile`` (inductor,
default mode), one thread unless ``--threads``.

``verdict`` (one tree per process) records, per compiled graph, what CUDA graph trees key on, by
wrapping the callable the backend returns: the int (SymInt) inputs of every call, the data
pointers of the static inputs (``fw_metadata.static_input_indices``), the input shapes, and the
mutated inputs that are not static (what makes inductor skip CUDA graphs).
``predicted_cudagraph_rerecords`` of a graph is its number of distinct SymInt tuples over all
calls minus one (``reduce-overhead`` records one CUDA graph per tuple); ``static_address_changes``
is its number of distinct static-input address tuples minus one (a moved static input makes CUDA
graph trees re-record too). Dynamo's own counters give graph breaks (``counters["graph_break"]``),
frame skips (``counters["unimplemented"]``) and recompiles (its ``recompiles`` log), split at the
end of warm-up.

``latency`` imports every tree in one process (each ``toto/`` under its own package name; Toto's
model and forecaster use relative imports only), builds the same seeded model in each, and times
whole forecasts round-robin over every (tree, eager|compiled) pair, so that a change of load on a
shared machine hits all of them alike. It prints wall-clock p50/p10/p90 per pair, the p50 of the
process CPU time (with one thread, what the forecast computed, less sensitive to other jobs taking
the cores), and the max abs difference of each forecast from the first tree's eager one.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import math
import os
import statistics
import sys
import time
import warnings

from flake8_compile_safe.families.toto.data import default_series
from flake8_compile_safe.families.toto.factory import CONFIGS, TOTO_COMMON


class GraphCalls:
    """One compiled graph: its AOT metadata and what each call passed."""

    def __init__(self, index: int, placeholders: list[str]):
        self.index = index
        self.placeholders = placeholders
        self.static_indices: list[int] = []
        self.mutated_non_static: list[str] = []
        self.int_tuples: list[tuple] = []
        self.static_ptr_tuples: list[tuple] = []
        self.shape_tuples: list[tuple] = []

    def record(self, args) -> None:
        import torch

        self.int_tuples.append(tuple(a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)))
        self.static_ptr_tuples.append(tuple(args[i].data_ptr() for i in self.static_indices
                                            if i < len(args) and isinstance(args[i], torch.Tensor)))
        self.shape_tuples.append(tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor)))

    def summary(self) -> dict:
        return {
            "graph": self.index,
            "calls": len(self.int_tuples),
            "symint_inputs": len(self.int_tuples[0]) if self.int_tuples else None,
            "distinct_symint_tuples": len(set(self.int_tuples)),
            "predicted_cudagraph_rerecords": max(0, len(set(self.int_tuples)) - 1),
            "static_inputs": len(self.static_indices),
            "static_address_changes": max(0, len(set(self.static_ptr_tuples)) - 1),
            "distinct_input_shapes": len(set(self.shape_tuples)),
            "mutated_non_static_inputs": self.mutated_non_static,
            "symint_values_seen": sorted({str(t) for t in self.int_tuples})[:8],
        }


class RecordingBackend:
    """inductor (or AOT-only ``analysis``) that records each graph's metadata and calls."""

    def __init__(self, kind: str):
        self.kind = kind
        self.graphs: list[GraphCalls] = []

    def _metadata(self, rec: GraphCalls) -> None:
        from torch._guards import TracingContext

        ctx = TracingContext.try_get()
        meta = getattr(ctx, "fw_metadata", None) if ctx is not None else None
        if meta is None:
            return
        rec.static_indices = sorted(set(meta.static_input_indices or []))
        for i, info in enumerate(meta.input_info):
            if info.mutates_data and i not in rec.static_indices:
                rec.mutated_non_static.append(rec.placeholders[i] if i < len(rec.placeholders) else str(i))

    def __call__(self, gm, example_inputs):
        rec = GraphCalls(len(self.graphs), [n.name for n in gm.graph.nodes if n.op == "placeholder"])
        self.graphs.append(rec)
        if self.kind == "analysis":
            from torch._dynamo.backends.common import aot_autograd

            def fw(g, _ex):
                self._metadata(rec)
                return g

            fn = aot_autograd(fw_compiler=fw)(gm, example_inputs)
        else:
            from torch._inductor.compile_fx import compile_fx, compile_fx_inner

            def inner(g, ex, *a, **kw):
                if not kw.get("is_backward", False):
                    self._metadata(rec)
                return compile_fx_inner(g, ex, *a, **kw)

            fn = compile_fx(gm, example_inputs, inner_compile=inner)
        return _wrap(fn, rec)


def _wrap(fn, rec: GraphCalls):
    """Dynamo calls what a backend returns with the graph's inputs unpacked."""

    def recorded(*args):
        rec.record(args)
        return fn(*args)

    return recorded


class RecompileLog(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        try:
            msg = record.getMessage()
        except Exception:  # a record that cannot format is not a recompile
            return
        if "Recompiling function" in msg:
            self.messages.append(msg)


def _percentile(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _first_guard_failure(msg: str) -> str:
    for line in msg.splitlines():
        if line.strip().startswith("- "):
            return line.strip()[2:][:200]
    return msg.splitlines()[0][:200]


def verdict(args) -> dict:
    warnings.filterwarnings("ignore")
    src = os.path.abspath(args.source)
    sys.path.insert(0, src)
    import torch
    from torch._dynamo.utils import counters

    if args.threads:
        torch.set_num_threads(args.threads)
    import toto

    if not os.path.abspath(toto.__file__).startswith(src + os.sep):
        raise SystemExit(f"{args.source}: imported toto from {toto.__file__}, not from this tree")
    from toto.inference.forecaster import TotoForecaster
    from toto.model.backbone import TotoBackbone

    torch.manual_seed(0)
    model = TotoBackbone(**{**TOTO_COMMON, **CONFIGS[args.config]}).eval()
    patch = int(model.patch_embed.stride)
    horizon = args.steps * patch
    context = int(math.ceil((args.context or max(4 * patch, 64)) / patch) * patch)
    series = default_series(context + horizon, seed=args.seed)
    hist = torch.tensor(series[:context]).reshape(1, 1, context)
    ts = torch.zeros(1, 1, context, dtype=torch.int)
    tis = torch.ones(1, 1, dtype=torch.int)
    forecaster = TotoForecaster(model)

    def forecast():
        torch.manual_seed(args.seed)
        return forecaster.generate_mean(inputs=hist, prediction_length=horizon, timestamp_seconds=ts,
                                        time_interval_seconds=tis, use_kv_cache=True)

    def timed():
        t0 = time.perf_counter()
        out = forecast()
        return out, (time.perf_counter() - t0) * 1000.0

    for _ in range(args.warmup):
        forecast()
    eager_out = forecast()
    if args.eager_only:  # the reference forecast of a tree, no compile
        if args.save_forecast:
            torch.save(eager_out, args.save_forecast)
        return {"source": src, "config": args.config, "context": context, "steps": args.steps, "eager_only": True}

    original = model.backbone
    torch._dynamo.reset()
    counters.clear()
    log = RecompileLog()
    torch._logging.set_logs(recompiles=True)
    for name in ("torch._dynamo", "torch"):
        for h in logging.getLogger(name).handlers:
            h.setLevel(logging.ERROR)
    logging.getLogger("torch._dynamo").addHandler(log)
    backend = RecordingBackend(args.backend)
    compiled = torch.compile(original, backend=backend)
    model.backbone = compiled
    t0 = time.perf_counter()
    first = forecast()
    first_s = time.perf_counter() - t0
    for _ in range(max(0, args.warmup - 1)):
        forecast()
    warm_recompiles, warm_graphs = len(log.messages), len(backend.graphs)
    eager_lat, comp_lat, comp_out = [], [], None
    for _ in range(args.runs):
        model.backbone = original
        _, ms = timed()
        eager_lat.append(ms)
        model.backbone = compiled
        comp_out, ms = timed()
        comp_lat.append(ms)
    model.backbone = original
    logging.getLogger("torch._dynamo").removeHandler(log)

    graphs = [g.summary() for g in backend.graphs]
    decode = max(graphs, key=lambda g: g["calls"]) if graphs else None
    result = {
        "source": src, "config": args.config, "context": context, "steps": args.steps, "patch": patch,
        "threads": torch.get_num_threads(), "backend": args.backend, "torch": torch.__version__,
        "eager_p50_ms": statistics.median(eager_lat), "compiled_p50_ms": statistics.median(comp_lat),
        "eager_p90_ms": _percentile(eager_lat, 0.9), "compiled_p90_ms": _percentile(comp_lat, 0.9),
        "first_compiled_forecast_s": first_s,
        "graphs": graphs, "unique_graphs": len(graphs), "graphs_after_warmup": len(graphs) - warm_graphs,
        "graph_breaks": int(sum(counters["graph_break"].values())),
        "frame_skips": int(sum(counters["unimplemented"].values())),
        "recompiles": len(log.messages), "recompiles_after_warmup": len(log.messages) - warm_recompiles,
        "recompile_reasons": [_first_guard_failure(m) for m in log.messages][:10],
        "predicted_cudagraph_skips": sum(len(g["mutated_non_static_inputs"]) for g in graphs),
        "predicted_cudagraph_rerecords": sum(g["predicted_cudagraph_rerecords"] for g in graphs),
        "static_address_changes": sum(g["static_address_changes"] for g in graphs),
        "decode_graph": decode,
        "max_abs_diff_compiled_vs_eager": float((comp_out - eager_out).abs().max()),
        "max_abs_diff_first_compiled_vs_eager": float((first - eager_out).abs().max()),
    }
    if args.reference:
        ref = torch.load(args.reference)
        result["max_abs_diff_eager_vs_reference"] = float((eager_out - ref).abs().max())
        result["max_abs_diff_compiled_vs_reference"] = float((comp_out - ref).abs().max())
    if args.save_forecast:
        torch.save(eager_out, args.save_forecast)
    return result


def _load_tree(alias: str, src: str):
    """The ``toto`` package of ``src`` imported as ``alias``: (TotoForecaster, TotoBackbone)."""
    init = os.path.join(os.path.abspath(src), "toto", "__init__.py")
    if not os.path.isfile(init):
        raise SystemExit(f"{src}: no toto/ package in this directory")
    spec = importlib.util.spec_from_file_location(alias, init, submodule_search_locations=[os.path.dirname(init)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    forecaster = importlib.import_module(alias + ".inference.forecaster")
    backbone = importlib.import_module(alias + ".model.backbone")
    return forecaster.TotoForecaster, backbone.TotoBackbone


def latency(args) -> dict:
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    trees = []
    for spec in args.trees:
        name, sep, src = spec.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"{spec}: expected NAME=DIR with NAME an identifier")
        trees.append((name, src))
    variants = {}
    for name, src in trees:
        forecaster_cls, backbone_cls = _load_tree(f"toto_{name}", src)
        torch.manual_seed(0)
        model = backbone_cls(**{**TOTO_COMMON, **CONFIGS[args.config]}).eval()
        variants[name] = (forecaster_cls(model), model, model.backbone, torch.compile(model.backbone))
    patch = int(next(iter(variants.values()))[1].patch_embed.stride)
    context = int(math.ceil((args.context or max(4 * patch, 64)) / patch) * patch)
    hist = torch.stack([torch.tensor(default_series(context, seed=args.seed + v)) for v in range(args.variates)])[None]
    ts = torch.zeros(1, args.variates, context, dtype=torch.int)
    tis = torch.ones(1, args.variates, dtype=torch.int)

    def forecast(name, compiled):
        forecaster, model, eager_fn, compiled_fn = variants[name]
        model.backbone = compiled_fn if compiled else eager_fn
        torch.manual_seed(args.seed)
        t0, c0 = time.perf_counter(), time.process_time()
        common = dict(inputs=hist, prediction_length=args.steps * patch, timestamp_seconds=ts,
                      time_interval_seconds=tis, use_kv_cache=True)
        if args.samples:
            out = forecaster.generate_samples(**common, num_samples=args.samples,
                                              sampling_batch_size=args.samples_per_batch or args.samples)
        else:
            out = forecaster.generate_mean(**common)
        return out, (time.perf_counter() - t0) * 1000.0, (time.process_time() - c0) * 1000.0

    pairs = [(name, compiled) for name, _ in trees for compiled in (False, True)]
    outs, warm_s = {}, {}
    for pair in pairs:
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            outs[pair] = forecast(*pair)[0]
        warm_s[pair] = time.perf_counter() - t0
    lat = {pair: [] for pair in pairs}
    cpu = {pair: [] for pair in pairs}
    for _ in range(args.rounds):
        for pair in pairs:
            _, wall_ms, cpu_ms = forecast(*pair)
            lat[pair].append(wall_ms)
            cpu[pair].append(cpu_ms)
    ref = outs[pairs[0]]
    rows = [{
        "tree": name, "mode": "compiled" if compiled else "eager",
        "p50_ms": statistics.median(lat[(name, compiled)]), "p10_ms": _percentile(lat[(name, compiled)], 0.1),
        "p90_ms": _percentile(lat[(name, compiled)], 0.9), "warmup_s": warm_s[(name, compiled)],
        "cpu_p50_ms": statistics.median(cpu[(name, compiled)]),
        "max_abs_diff_vs_first_eager": float((outs[(name, compiled)] - ref).abs().max()),
    } for name, compiled in pairs]
    base, base_cpu = rows[0]["p50_ms"], rows[0]["cpu_p50_ms"]
    for row in rows:
        row["speedup_vs_first_eager"] = base / row["p50_ms"]
        row["cpu_speedup_vs_first_eager"] = base_cpu / row["cpu_p50_ms"]
    return {"config": args.config, "context": context, "steps": args.steps, "patch": patch, "rounds": args.rounds,
            "variates": args.variates, "samples": args.samples, "samples_per_batch": args.samples_per_batch,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "trees": dict(trees), "rows": rows}


def _common(ap) -> None:
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--context", type=int, default=0, help="context length (default 4 patches, >= 64)")
    ap.add_argument("--steps", type=int, default=12, help="decode steps (one patch each)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="also write the result here")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/toto_static_decode.py")
    sub = ap.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verdict", help="dynamo's verdict and CUDA-graph predictions for one tree")
    v.add_argument("--source", required=True, help="directory holding the toto/ package")
    _common(v)
    v.add_argument("--runs", type=int, default=5)
    v.add_argument("--backend", choices=("inductor", "analysis"), default="inductor")
    v.add_argument("--reference", help="forecast saved by --save-forecast from another tree (torch.save)")
    v.add_argument("--save-forecast", help="save this tree's eager forecast here")
    v.add_argument("--eager-only", action="store_true", help="only the eager forecast (with --save-forecast)")
    lt = sub.add_parser("latency", help="interleaved forecast latency of several trees, eager and compiled")
    lt.add_argument("trees", nargs="+", metavar="NAME=DIR")
    _common(lt)
    lt.add_argument("--rounds", type=int, default=20)
    lt.add_argument("--variates", type=int, default=1)
    lt.add_argument("--samples", type=int, default=0, help="generate_samples with this many samples (0: generate_mean)")
    lt.add_argument("--samples-per-batch", type=int, default=0, help="sampling batch size (default: all samples)")
    args = ap.parse_args(argv)
    if args.warmup < 1 or args.steps < 1 or getattr(args, "runs", 1) < 1 or getattr(args, "rounds", 1) < 1:
        ap.error("--warmup, --steps, --runs and --rounds must be >= 1")
    result = verdict(args) if args.command == "verdict" else latency(args)
    text = json.dumps(result, indent=1, default=str)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
