"""lucidrains' x-transformers (``x-transformers``): a configurable transformer with cached generation."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="x_transformers",
    dist="x-transformers",
    version="2.31.10",
    package="x_transformers",
    sentinel="x_transformers/x_transformers.py",
    factories={"decode": "flake8_compile_safe.families.x_transformers.factory:decode"},
    runtime_deps=("einops>=0.8.0", "einx>=0.3.0", "loguru", "packaging>=21.0", "torch-einops-utils>=0.1.41"),
    about=("x-transformers' AutoregressiveWrapper.generate feeds the whole (growing) token sequence "
           "to TransformerWrapper.forward each step together with the previous step's "
           "LayerIntermediates cache (a dataclass holding per-layer Intermediates with cached_kv "
           "lists); the forward slices the new token off itself. It traces without a break; the "
           "growing sequence recompiles until automatic dynamic shapes take over."),
)
