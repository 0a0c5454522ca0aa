"""Kyutai's Moshi (``moshi``): the Mimi streaming neural audio codec, with per-module streaming state."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="moshi",
    dist="moshi",
    version="0.2.13",
    package="moshi",
    sentinel="moshi/models/compression.py",
    factories={"mimi_stream": "flake8_compile_safe.families.moshi.factory:mimi_stream"},
    # moshi pins torch<2.10 (and huggingface-hub<1.0, safetensors<0.8): its source comes from the
    # wheel (--no-deps); these are what its model modules import.
    runtime_deps=("numpy", "safetensors", "huggingface-hub", "einops", "sentencepiece",
                  "sphn>=0.2.0,<0.3.0", "tqdm"),
    about=("Mimi's streaming attention keeps a Python-int position (offset_cpu) in each layer's "
           "streaming-state dataclass next to a tensor offset, bumps it by the step length every "
           "call (state.offset_cpu += T) and updates the tensor offset in place (state.offset[:] = "
           "...): dynamo guards on the int, so a compiled streaming step recompiles on every frame "
           "until the recompile limit."),
)
