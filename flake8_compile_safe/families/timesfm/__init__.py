"""Google's TimesFM 2.5 (``timesfm``): a time-series foundation model with a per-layer decode cache."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="timesfm",
    dist="timesfm",
    version="3.0.2",
    package="timesfm",
    sentinel="timesfm/timesfm_2p5/timesfm_2p5_torch.py",
    factories={"decode": "flake8_compile_safe.families.timesfm.factory:decode"},
    runtime_deps=("numpy", "huggingface_hub", "safetensors"),
    about=("TimesFM 2.5's torch decoder keeps one DecodeCache dataclass per layer (next_index, "
           "num_masked, key, value tensors) in a list passed to forward. Each attention layer reads "
           "its write position from the cache as a tensor (next_index[0]) and uses it as a slice "
           "bound to write keys and values in place, then bumps next_index in place: dynamo skips "
           "the attention frame, on the package's own decode loop."),
)
