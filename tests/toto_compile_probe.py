"""Measure a Toto source tree: eager forecast and torch.compile figures over a KV-cache decode.

Run as ``python tests/toto_compile_probe.py SRC_DIR [--compile] [--out FILE.npy]`` where SRC_DIR
holds the ``toto/`` package. Prints one JSON object on stdout. It is a subprocess so that
each source tree gets a clean import of ``toto`` and a fresh dynamo state.

Figures: ``graph_breaks`` (sum of counters["graph_break"]), ``frame_skips`` (sum of
counters["unimplemented"]), ``unique_graphs`` (graphs handed to the backend), ``recompiles``
(graphs compiled for a frame that already had one), ``non_static_mutated_inputs`` (graph inputs
mutated in place that are not static: what makes CUDA graphs skip), and the forecast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def build_model(torch):
    from toto.model.backbone import TotoBackbone

    torch.manual_seed(0)
    model = TotoBackbone(
        patch_size=16,
        stride=16,
        embed_dim=32,
        num_layers=4,
        num_heads=2,
        mlp_hidden_dim=32,
        dropout=0.0,
        spacewise_every_n_layers=2,
        scaler_cls="<class 'model.scaler.CausalPatchStdMeanScaler'>",
        output_distribution_classes=["<class 'model.distribution.StudentTOutput'>"],
        spacewise_first=True,
        use_memory_efficient_attention=False,
    )
    return model.eval()


def decode(torch, model, backbone, steps: int, context: int = 64, variates: int = 2):
    """generate_mean's loop, reduced: prefill, then one patch per step, mean of the forecast."""
    gen = torch.Generator().manual_seed(1)
    inputs = torch.randn(1, variates, context, generator=gen).cumsum(-1)
    padding = torch.ones_like(inputs, dtype=torch.bool)
    id_mask = torch.zeros_like(inputs, dtype=torch.int)
    stride = model.patch_embed.stride
    kv_cache = model.allocate_kv_cache(1, variates, context + steps * stride, inputs.device, inputs.dtype)
    outs = []
    with torch.no_grad():
        for _ in range(steps):
            flat, loc, scale = backbone(inputs, padding, id_mask, kv_cache, context)
            dist = model.output_distribution(flat)
            step = (dist.mean * scale[:, :, -flat.shape[2]:] + loc[:, :, -flat.shape[2]:])[:, :, -stride:]
            outs.append(step)
            inputs = torch.cat([inputs, step], dim=-1)
            padding = torch.cat([padding, torch.ones_like(step, dtype=torch.bool)], dim=-1)
            id_mask = torch.cat([id_mask, id_mask[:, :, -stride:]], dim=-1)
    return torch.cat(outs, dim=-1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--out", help="save the eager forecast here (torch.save)")
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.abspath(args.src))
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    import toto

    assert os.path.abspath(toto.__file__).startswith(os.path.abspath(args.src)), toto.__file__
    model = build_model(torch)
    result: dict = {"toto": os.path.dirname(toto.__file__)}
    t0 = time.perf_counter()
    eager = decode(torch, model, model.backbone, args.steps)
    result["eager_s"] = round(time.perf_counter() - t0, 3)
    if args.out:
        torch.save(eager, args.out)
    if args.compile:
        import torch._dynamo
        from torch._dynamo.utils import counters
        from torch._dynamo.backends.common import aot_autograd
        from torch._guards import TracingContext

        torch._dynamo.reset()
        torch._dynamo.utils.guard_failures.clear()
        counters.clear()
        graphs: list = []
        mutated: list = []

        def fw_compiler(gm, example_inputs):
            meta = TracingContext.get().fw_metadata
            static = set(meta.static_input_indices or [])
            for i, info in enumerate(meta.input_info):
                if info.mutates_data and i not in static:
                    mutated.append(i)
            return gm

        backend_inner = aot_autograd(fw_compiler=fw_compiler)

        def backend(gm, example_inputs):
            graphs.append(len(gm.graph.nodes))
            return backend_inner(gm, example_inputs)

        compiled = torch.compile(model.backbone, backend=backend)
        t0 = time.perf_counter()
        out = decode(torch, model, compiled, args.steps)
        result["compiled_s"] = round(time.perf_counter() - t0, 3)
        result["graph_breaks"] = sum(counters["graph_break"].values())
        result["graph_break_reasons"] = sorted({r.splitlines()[0][:120] for r in counters["graph_break"]})[:10]
        result["frame_skips"] = sum(counters["unimplemented"].values())
        result["frame_skip_reasons"] = sorted({r.splitlines()[0][:120] for r in counters["unimplemented"]})[:10]
        result["unique_graphs"] = len(graphs)
        failures = torch._dynamo.utils.guard_failures
        result["recompiles"] = sum(len(v) for v in failures.values())
        result["recompile_reasons"] = sorted({str(r)[:160] for v in failures.values() for r in v})[:10]
        result["non_static_mutated_inputs"] = len(mutated)
        result["compiled_vs_eager_max_abs_diff"] = float((out - eager).abs().max())
    result["forecast_shape"] = list(eager.shape)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
