"""Hugging Face transformers (``transformers``): models whose cached decode path dynamo trips on."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="transformers",
    dist="transformers",
    version="5.23.0",
    package="transformers",
    sentinel="transformers/generation/utils.py",
    factories={
        "jetmoe": "flake8_compile_safe.families.transformers.factory:jetmoe",
        "mixtral_eager_experts": "flake8_compile_safe.families.transformers.factory:mixtral_eager_experts",
    },
    runtime_deps=("huggingface-hub>=1.31.0,<3.0", "numpy>=1.17", "packaging>=20.0", "pyyaml>=5.1",
                  "regex>=2025.10.22", "tokenizers>=0.23.1,<0.24.0", "typer", "safetensors>=0.8.0",
                  "tqdm>=4.60"),
    about=("transformers 5.23 models driven by the library's DynamicCache (per-layer DynamicLayer "
           "objects updated through the Cache base class). JetMoE (jetmoe): its top-k router turns "
           "per-expert token counts into a Python list (.tolist()) and splits the tokens with it, so "
           "each step graph-breaks (data-dependent op), skips the router frame, and recompiles on "
           "the split sizes; the prefill/decode shapes recompile every layer's frame once. Mixtral with "
           "the reference experts loop (mixtral_eager_experts) finds the experts hit with nonzero() "
           "and their tokens with one-argument torch.where, data-dependent shapes: graph breaks "
           "in every MoE layer, every step."),
)
