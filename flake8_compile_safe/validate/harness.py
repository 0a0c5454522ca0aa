"""Per-variant worker of ``compile-safe-validate``: measure one Toto source tree.

Run in its own subprocess (one per source tree, so ``import toto`` comes from that tree and
dynamo starts from a clean state)::

    python -m flake8_compile_safe.validate.harness --source DIR --config tiny \
        --mode default --steps 12 --json OUT.json

It builds the real ``TotoBackbone`` from DIR, forecasts a series with the real
``TotoForecaster.generate_mean`` (KV cache on, one patch per decode step), first eagerly and
then with ``model.backbone`` wrapped in ``torch.compile`` (once per ``--mode``), and writes
one JSON object with a row per (mode) plus the eager row.

What it counts while compiling:

* graphs handed to the backend (``unique_graphs``);
* ``counters["graph_break"]`` (``graph_breaks``) and ``counters["unimplemented"]``
  (``frame_skips``: dynamo gave up on a whole frame and runs it eagerly);
* recompiles, from dynamo's ``recompiles`` log (one record per guard-failure recompile),
  split into those during warm-up and those after it, and recompile-limit hits;
* CUDA-graph skips: on CUDA ``counters["inductor"]["cudagraph_skips"]`` and the log text;
  everywhere, a prediction from the AOT-autograd metadata: graph inputs mutated in place
  that are not static inputs (``fw_metadata.input_info[i].mutates_data`` and ``i`` not in
  ``fw_metadata.static_input_indices``) are what make inductor's CUDA-graph tree skip a graph.

Each event is listed with the user source ``file:line`` it points at.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import statistics
import sys
import time
import warnings
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# configurations

TOTO_COMMON = {
    "scaler_cls": "<class 'model.scaler.CausalPatchStdMeanScaler'>",
    "output_distribution_classes": ["<class 'model.distribution.StudentTOutput'>"],
    "spacewise_first": True,
    "use_memory_efficient_attention": False,
}

CONFIGS = {
    # Small enough for CI on 2 CPU cores; still 2 time-wise + 2 space-wise layers, KV cache.
    "tiny": dict(patch_size=16, stride=16, embed_dim=32, num_layers=4, num_heads=2,
                 mlp_hidden_dim=32, dropout=0.0, spacewise_every_n_layers=2),
    # Toto-Open-Base-1.0 architecture, randomly initialised. patch/stride 64, embed 768, 12 layers,
    # 12 heads, MLP 3072 and a 24-component Student-T mixture head match the published
    # config.json (cross-checked against a third-party port's tests); spacewise_every_n_layers,
    # spacewise_first and dropout are the publicly quoted values, not verified here (see
    # docs/validation.md). dropout does nothing in eval mode.
    "base": dict(patch_size=64, stride=64, embed_dim=768, num_layers=12, num_heads=12,
                 mlp_hidden_dim=3072, dropout=0.1, spacewise_every_n_layers=12,
                 output_distribution_classes=["<class 'model.distribution.MixtureOfStudentTsOutput'>"],
                 output_distribution_kwargs={"k_components": 24}),
}

MODES = ("default", "reduce-overhead", "max-autotune")


class HarnessError(Exception):
    """A problem with the inputs: reported as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------
# data


def default_series(length: int, seed: int = 0):
    """Seeded synthetic series: two seasonalities, a trend and noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    y = (10.0 + 0.01 * t + 2.0 * np.sin(2 * np.pi * t / 24.0) + 1.0 * np.sin(2 * np.pi * t / 96.0)
         + 0.3 * rng.standard_normal(length))
    return y.astype(np.float32)


def read_csv_series(path: str, min_rows: int):
    """First column whose every non-empty cell (a header row aside) parses as a float."""
    import csv

    p = Path(path)
    if not p.is_file():
        raise HarnessError(f"{path}: CSV file not found")
    try:
        with p.open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise HarnessError(f"{path}: cannot read CSV ({exc.__class__.__name__}: {exc})") from None
    if not rows:
        raise HarnessError(f"{path}: CSV is empty")
    ncols = max(len(r) for r in rows)

    def num(cell: str):
        try:
            v = float(cell)
        except ValueError:
            return None
        return v if math.isfinite(v) else None

    for col in range(ncols):
        cells = [r[col].strip() if col < len(r) else "" for r in rows]
        body = cells[1:] if cells and num(cells[0]) is None else cells
        values = [num(c) for c in body if c != ""]
        if values and all(v is not None for v in values):
            if len(values) < min_rows:
                raise HarnessError(
                    f"{path}: numeric column {col} has {len(values)} rows, need at least {min_rows} "
                    f"(context + forecast horizon)")
            return values
    raise HarnessError(f"{path}: no numeric column (every column has non-numeric cells)")


# ---------------------------------------------------------------------------------------------
# dynamo event capture

_LOC_RE = re.compile(r"in user code at (?P<file>.+?):(?P<line>\d+)")
_RECOMPILE_RE = re.compile(r"Recompiling function (?P<func>\S+) in (?P<file>.+?):(?P<line>\d+)")
_GUARD_LOC_RE = re.compile(r"#.*?  # .*? (?:\S*/)?(?P<file>[^/\s]+\.py):(?P<line>\d+) in \S+\s*$")
_STACK_RE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


class EventLog(logging.Handler):
    """Collects dynamo's graph-break, recompile and cudagraph log records."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[tuple[str, str, str]] = []

    def emit(self, record):  # pragma: no cover - exercised through the subprocess
        try:
            self.records.append((record.name, record.levelname, record.getMessage()))
        except Exception:
            pass


def _first_line(text: str, skip: tuple[str, ...] = ()) -> str:
    for line in text.splitlines():
        s = line.strip()
        if s and not any(s.startswith(p) for p in skip):
            return s[:200]
    return ""


def _user_stack_loc(text: str, roots: list[str]):
    """Last ``File "...", line N`` of the text that lies under one of ``roots``."""
    found = None
    for m in _STACK_RE.finditer(text):
        if any(os.path.abspath(m.group("file")).startswith(r) for r in roots):
            found = (m.group("file"), int(m.group("line")))
    return found


def parse_events(records, roots: list[str]):
    """Turn captured log records into graph-break / frame-skip / recompile events."""
    events = []
    for name, level, msg in records:
        if "__graph_breaks" in name:
            m = _LOC_RE.search(msg)
            reason_text = msg.split("Graph Break Reason:", 1)[-1]
            skip = ("Skipping the function and falling back to eager" in msg
                    or "frame skipped" in msg)
            reason = _first_line(reason_text, ("Encountered graph break", "Failed to handle graph break"))
            events.append({
                "kind": "frame_skip" if skip else "graph_break",
                "file": m.group("file") if m else None,
                "line": int(m.group("line")) if m else None,
                "reason": reason,
            })
        elif "__recompiles" in name and "Recompiling function" in msg:
            m = _RECOMPILE_RE.search(msg)
            failures = [ln.strip()[2:] for ln in msg.splitlines() if ln.strip().startswith("- ")
                        and "User stack" not in ln and not ln.strip().startswith("-   ")]
            # The newest failure is the first one listed for the most recent cache entry.
            first = failures[0] if failures else ""
            guard = re.match(r"^(\d+/\d+): ", first)
            first = first[guard.end():] if guard else first
            loc = _user_stack_loc(msg, roots)
            events.append({
                "kind": "recompile",
                "function": m.group("func") if m else None,
                "file": (loc[0] if loc else (m.group("file") if m else None)),
                "line": (loc[1] if loc else (int(m.group("line")) if m else None)),
                "reason": re.sub(r"\s+#.*$", "", first)[:200],
                "guard": guard.group(1) if guard else None,
            })
        elif ("recompile_limit" in msg or "cache_size_limit" in msg) and level in ("WARNING", "INFO"):
            m = _STACK_RE.search(msg) or re.search(r"(?P<file>/\S+\.py):(?P<line>\d+)", msg)
            events.append({
                "kind": "recompile_limit",
                "file": m.group("file") if m else None,
                "line": int(m.group("line")) if m else None,
                "reason": _first_line(msg),
            })
        elif "cudagraph" in msg.lower() and "skipping cudagraphs" in msg.lower():
            events.append({"kind": "cudagraph_skip", "file": None, "line": None,
                           "reason": _first_line(msg)})
    return events


def _install_log_capture(torch):
    handler = EventLog()
    torch._logging.set_logs(graph_breaks=True, recompiles=True)
    for name in ("torch._dynamo", "torch._inductor", "torch"):
        logging.getLogger(name).addHandler(handler)
    # set_logs installs stderr handlers for these artifacts; keep stderr readable.
    for name in ("torch", "torch._dynamo"):
        for h in logging.getLogger(name).handlers:
            if h is not handler and isinstance(h, logging.StreamHandler):
                h.setLevel(logging.ERROR)
    return handler


# ---------------------------------------------------------------------------------------------
# model


def build_model(torch, config: str, checkpoint: str | None, device: str):
    from toto.model.backbone import TotoBackbone

    torch.manual_seed(0)
    if checkpoint:
        ck = Path(checkpoint)
        if not (ck / "model.safetensors").is_file():
            raise HarnessError(f"{checkpoint}: checkpoint directory has no model.safetensors")
        from toto.model.toto import Toto

        model = Toto.load_from_checkpoint(str(ck), map_location=device,
                                          use_memory_efficient_attention=False).model
    else:
        model = TotoBackbone(**{**TOTO_COMMON, **CONFIGS[config]})
    return model.to(device).eval()


def _sync(torch, device):
    if device == "cuda":
        torch.cuda.synchronize()


def _peak_mem_mb(torch, device) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# ---------------------------------------------------------------------------------------------
# compile backend that records graphs and AOT metadata


class Recorder:
    def __init__(self, torch, mode: str, backend: str, device: str, roots: list[str]):
        self.torch = torch
        self.mode = mode
        self.backend_kind = backend
        self.device = device
        self.roots = roots
        self.graphs = 0
        self.mutated: list[dict] = []
        self._current_gm = None

    def _record_metadata(self):
        from torch._guards import TracingContext

        ctx = TracingContext.try_get()
        meta = getattr(ctx, "fw_metadata", None) if ctx is not None else None
        if meta is None:
            return
        static = set(meta.static_input_indices or [])
        gm = self._current_gm
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"] if gm is not None else []
        for i, info in enumerate(meta.input_info):
            if info.mutates_data and i not in static:
                self.mutated.append(self._describe_input(placeholders, i))

    def _describe_input(self, placeholders, i):
        ev = {"kind": "predicted_cudagraph_skip", "input_index": i, "input": None,
              "file": None, "line": None, "reason": "mutated non-static graph input"}
        if i >= len(placeholders):
            return ev
        node = placeholders[i]
        ga = node.meta.get("grapharg")
        src = getattr(ga, "source", None)
        ev["input"] = src.name() if src is not None and hasattr(src, "name") else node.name
        ev["reason"] = f"graph input {ev['input']} is mutated in place and is not a static input"
        # Find the mutating op: a user (or a view's user) whose stack trace is in user code.
        seen, frontier = set(), [node]
        while frontier:
            n = frontier.pop()
            for u in n.users:
                if u in seen:
                    continue
                seen.add(u)
                tgt = getattr(u.target, "__name__", str(u.target))
                if "setitem" in tgt or tgt.endswith("_") or "copy_" in tgt or "index_put" in tgt:
                    loc = _user_stack_loc(u.meta.get("stack_trace") or "", self.roots)
                    if loc:
                        ev["file"], ev["line"] = loc
                        return ev
                frontier.append(u)
        return ev

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        self._current_gm = gm
        if self.backend_kind == "analysis":
            from torch._dynamo.backends.common import aot_autograd

            def fw(g, ex):
                self._record_metadata()
                return g

            return aot_autograd(fw_compiler=fw)(gm, example_inputs)
        from torch._inductor import list_mode_options
        from torch._inductor.compile_fx import compile_fx, compile_fx_inner

        recorder = self

        def inner(g, ex, *args, **kwargs):
            if not kwargs.get("is_backward", False):
                recorder._record_metadata()
            return compile_fx_inner(g, ex, *args, **kwargs)

        patches = dict(list_mode_options(self.mode)) if self.mode != "default" else {}
        if self.device != "cuda":
            patches.pop("triton.cudagraphs", None)
        return compile_fx(gm, example_inputs, inner_compile=inner, config_patches=patches or None)


# ---------------------------------------------------------------------------------------------
# the run


def run(args) -> dict:
    warnings.filterwarnings("ignore")
    src = os.path.abspath(args.source)
    if not (Path(src) / "toto" / "__init__.py").is_file():
        raise HarnessError(f"{args.source}: no toto/ package in this directory")
    sys.path.insert(0, src)
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise HarnessError("--device cuda: CUDA is not available")

    import toto

    toto_file = os.path.abspath(toto.__file__)
    if not toto_file.startswith(src + os.sep):
        raise HarnessError(f"{args.source}: imported toto from {toto_file}, not from this tree")
    from toto.inference.forecaster import TotoForecaster

    model = build_model(torch, args.config, args.checkpoint, device)
    patch = int(model.patch_embed.stride)
    horizon = args.steps * patch
    context = args.context or max(4 * patch, 64)
    context = int(math.ceil(context / patch) * patch)
    if args.csv:
        values = read_csv_series(args.csv, context + horizon)
        series = np.asarray(values[-(context + horizon):], dtype=np.float32)
    else:
        series = default_series(context + horizon, seed=args.seed)
    hist = torch.tensor(series[:context], device=device).reshape(1, 1, context)
    truth = torch.tensor(series[context:], device=device).reshape(1, 1, horizon)

    forecaster = TotoForecaster(model)
    ts = torch.zeros(1, 1, context, dtype=torch.int, device=device)
    tis = torch.ones(1, 1, dtype=torch.int, device=device)

    def decode():
        torch.manual_seed(args.seed)
        out = forecaster.generate_mean(inputs=hist, prediction_length=horizon, timestamp_seconds=ts,
                                       time_interval_seconds=tis, use_kv_cache=True)
        _sync(torch, device)
        return out

    def timed(n):
        lat = []
        out = None
        for _ in range(n):
            t0 = time.perf_counter()
            out = decode()
            lat.append((time.perf_counter() - t0) * 1000.0)
        return out, lat

    result = {
        "source": src, "toto_file": toto_file, "config": "checkpoint" if args.checkpoint else args.config,
        "checkpoint": args.checkpoint, "device": device, "torch": torch.__version__,
        "steps": args.steps, "patch_size": patch, "context": context, "horizon": horizon,
        "warmup": args.warmup, "runs": args.runs, "threads": torch.get_num_threads(),
        "data": args.csv or f"default seeded series (seed {args.seed})", "rows": [], "events": [],
    }

    # ---- eager
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _, _ = timed(args.warmup)
    eager_out, eager_lat = timed(args.runs)
    eager_mae = float((eager_out - truth).abs().mean())
    eager_row = {
        "mode": "eager", "graph_breaks": 0, "frame_skips": 0, "unique_graphs": 0, "recompiles": 0,
        "recompiles_after_warmup": 0, "recompile_limit_hits": 0, "cudagraph_skips": 0,
        "predicted_cudagraph_skips": 0, "max_abs_diff": 0.0, "mae": eager_mae, "mae_diff": 0.0,
        "latency_ms_median": statistics.median(eager_lat), "latency_ms_p90": _percentile(eager_lat, 0.9),
        "compile_s": 0.0, "peak_mem_mb": _peak_mem_mb(torch, device), "speedup_vs_eager": 1.0,
    }
    result["rows"].append(eager_row)

    orig_backbone = model.backbone  # bound method
    roots = [src + os.sep]
    from torch._dynamo.utils import counters

    for mode in args.mode:
        torch._dynamo.reset()
        counters.clear()
        handler = _install_log_capture(torch)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        rec = Recorder(torch, mode, args.backend, device, roots)
        compiled = torch.compile(orig_backbone, backend=rec)
        model.backbone = compiled
        try:
            t0 = time.perf_counter()
            first = decode()
            first_s = time.perf_counter() - t0
            _, _ = timed(max(0, args.warmup - 1))
            n_warm_records = len(handler.records)
            # Timed runs alternate eager and compiled decodes, so that a change in machine load
            # (shared CI cores) hits both sides of the speedup alike.
            comp_lat, eager_lat_mode = [], []
            comp_out = None
            for _ in range(args.runs):
                model.backbone = orig_backbone
                _, lat = timed(1)
                eager_lat_mode += lat
                model.backbone = compiled
                comp_out, lat = timed(1)
                comp_lat += lat
        finally:
            model.backbone = orig_backbone
            for name in ("torch._dynamo", "torch._inductor", "torch"):
                logging.getLogger(name).removeHandler(handler)
        events = parse_events(handler.records, roots)
        late = parse_events(handler.records[n_warm_records:], roots)
        for ev in events:
            ev["mode"] = mode
        for ev in rec.mutated:
            ev["mode"] = mode
        cg_skips = int(counters["inductor"].get("cudagraph_skips", 0)) if device == "cuda" else 0
        med = statistics.median(comp_lat)
        comp_mae = float((comp_out - truth).abs().mean())
        row = {
            "mode": mode,
            "graph_breaks": int(sum(counters["graph_break"].values())),
            "frame_skips": int(sum(counters["unimplemented"].values())),
            "unique_graphs": rec.graphs,
            "recompiles": sum(1 for e in events if e["kind"] == "recompile"),
            "recompiles_after_warmup": sum(1 for e in late if e["kind"] == "recompile"),
            "recompile_limit_hits": sum(1 for e in events if e["kind"] == "recompile_limit"),
            "cudagraph_skips": cg_skips if device == "cuda" else None,
            "predicted_cudagraph_skips": len(rec.mutated),
            "max_abs_diff": float((comp_out - eager_out).abs().max()),
            "first_call_max_abs_diff": float((first - eager_out).abs().max()),
            "mae": comp_mae,
            "mae_diff": abs(comp_mae - eager_mae),
            "latency_ms_median": med,
            "latency_ms_p90": _percentile(comp_lat, 0.9),
            "compile_s": max(0.0, first_s - med / 1000.0),
            "peak_mem_mb": _peak_mem_mb(torch, device),
            "eager_latency_ms_median": statistics.median(eager_lat_mode),
            "speedup_vs_eager": statistics.median(eager_lat_mode) / med if med > 0 else None,
            "frames": dict(counters["frames"]),
        }
        result["rows"].append(row)
        result["events"].extend(events)
        result["events"].extend(rec.mutated)
        if mode == args.mode[0]:
            # The eager row reports the eager decodes interleaved with the first mode's compiled
            # ones (same machine load as the compiled row); the up-front eager runs were warm-up.
            eager_row["latency_ms_median"] = statistics.median(eager_lat_mode)
            eager_row["latency_ms_p90"] = _percentile(eager_lat_mode, 0.9)
    return result


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m flake8_compile_safe.validate.harness")
    ap.add_argument("--source", required=True, help="directory holding the toto/ package")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--checkpoint", help="local directory with model.safetensors (+ config.json)")
    ap.add_argument("--csv", help="CSV with a numeric column (default: seeded synthetic series)")
    ap.add_argument("--mode", action="append", choices=MODES,
                    help="torch.compile mode (repeatable; default: default)")
    ap.add_argument("--backend", choices=("inductor", "analysis"), default="inductor",
                    help="inductor (real timings) or analysis (AOT metadata only, no codegen)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--steps", type=int, default=12, help="decode steps (one patch each)")
    ap.add_argument("--context", type=int, default=0, help="context length (default 4 patches)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    ap.add_argument("--json", required=True, help="write the result object here")
    args = ap.parse_args(argv)
    args.mode = args.mode or ["default"]
    if args.warmup < 1 or args.runs < 1 or args.steps < 1:
        ap.error("--warmup, --runs and --steps must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
