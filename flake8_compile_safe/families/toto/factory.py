"""Toto's validation workloads for ``compile-safe-validate`` (``--family toto[:tiny|base]``).

``tiny()`` / ``base()`` return ``(model, run, metrics)``:

* ``model`` is Toto's compiled stage, ``TotoBackbone.backbone`` (what a user compiles: the
  forecaster calls it once per step), as a module whose ``forward`` is that bound method, so
  ``torch.compile(model)`` compiles exactly that frame;
* ``run(m)`` forecasts with Toto's own ``TotoForecaster.generate_mean(..., use_kv_cache=True)``:
  one prefill, then one patch per decode step, the backbone stage served by ``m``;
* ``metrics(forecast)`` is the forecast's MAE against the held-out truth.

The ``toto`` package is imported from the tree on ``sys.path`` (the family's fetched source, or
a fixed copy of it). Keyword arguments: ``steps`` (decode steps, one patch each), ``context``
(history length, default 4 patches, at least 64), ``csv`` (a data file, default a seeded series),
``checkpoint`` (a directory with ``model.safetensors`` + ``config.json``), ``data_seed``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .data import DataError, default_series, read_csv_series

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


def tiny(steps: int = 12, context: int = 0, csv: str | None = None, checkpoint: str | None = None,
         data_seed: int = 0):
    return workload("tiny", steps, context, csv, checkpoint, data_seed)


def base(steps: int = 12, context: int = 0, csv: str | None = None, checkpoint: str | None = None,
         data_seed: int = 0):
    return workload("base", steps, context, csv, checkpoint, data_seed)


def patch_size(config: str, checkpoint: str | None) -> int:
    if checkpoint:
        cfg = Path(checkpoint) / "config.json"
        try:
            data = json.loads(cfg.read_text()) if cfg.is_file() else {}
        except (OSError, ValueError) as exc:
            raise DataError(f"{cfg}: unreadable config.json ({exc})") from None
        return int(data.get("stride", data.get("patch_size", 64)))
    return int(CONFIGS[config]["stride"])


def _check_checkpoint(checkpoint: str) -> None:
    ck = Path(checkpoint)
    if not ck.is_dir():
        raise DataError(f"{checkpoint}: checkpoint directory not found")
    if not (ck / "model.safetensors").is_file():
        raise DataError(f"{checkpoint}: checkpoint directory has no model.safetensors")


def _series(context: int, horizon: int, csv: str | None, data_seed: int):
    import numpy as np

    if csv:
        values = read_csv_series(csv, context + horizon)
        return np.asarray(values[-(context + horizon):], dtype=np.float32)
    return default_series(context + horizon, seed=data_seed)


def build_backbone(config: str, checkpoint: str | None, device):
    from toto.model.backbone import TotoBackbone

    torch.manual_seed(0)
    if checkpoint:
        from toto.model.toto import Toto

        model = Toto.load_from_checkpoint(str(checkpoint), map_location=str(device),
                                          use_memory_efficient_attention=False).model
    else:
        model = TotoBackbone(**{**TOTO_COMMON, **CONFIGS[config]})
    return model.to(device).eval()


def workload(config: str, steps: int, context: int, csv: str | None, checkpoint: str | None, data_seed: int):
    if steps < 1:
        raise DataError("steps must be >= 1")
    if checkpoint:
        _check_checkpoint(checkpoint)
    patch = patch_size(config, checkpoint)
    context = int(math.ceil((context or max(4 * patch, 64)) / patch) * patch)
    horizon = steps * patch
    series = _series(context, horizon, csv, data_seed)

    from toto.inference.forecaster import TotoForecaster

    device = torch.get_default_device()
    toto = build_backbone(config, checkpoint, device)
    stage = BackboneStage(toto)
    history = torch.tensor(series[:context], device=device).reshape(1, 1, context)
    truth = torch.tensor(series[context:], device=device).reshape(1, 1, horizon)
    timestamps = torch.zeros(1, 1, context, dtype=torch.int, device=device)
    interval = torch.ones(1, 1, dtype=torch.int, device=device)
    forecaster = TotoForecaster(toto)

    def run(m):
        # The forecaster calls toto(...), whose forward calls self.backbone(...): served by m.
        # object.__setattr__: m is a module, and nn.Module would register it as a submodule.
        object.__setattr__(toto, "backbone", m)
        try:
            return forecaster.generate_mean(inputs=history, prediction_length=horizon,
                                            timestamp_seconds=timestamps, time_interval_seconds=interval,
                                            use_kv_cache=True)
        finally:
            del toto.__dict__["backbone"]

    def metrics(forecast):
        return {"mae": float((forecast - truth).abs().mean())}

    return stage, run, metrics


class BackboneStage(torch.nn.Module):
    """A module whose ``forward`` is ``toto.backbone`` (the bound method): the frame dynamo compiles."""

    def __init__(self, toto):
        super().__init__()
        self.toto = toto
        self.forward = toto.backbone  # an instance attribute: nn.Module.__call__ calls it
