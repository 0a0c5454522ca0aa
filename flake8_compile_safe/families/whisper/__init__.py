"""OpenAI's Whisper (``openai-whisper``): speech recognition, greedy decoding with a hook-filled KV cache."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="whisper",
    dist="openai-whisper",
    version="20250625",  # the registry has a source archive only; fetch unpacks whisper/ from it
    package="whisper",
    sentinel="whisper/decoding.py",
    factories={"decode": "flake8_compile_safe.families.whisper.factory:decode"},
    runtime_deps=("numba", "numpy", "tqdm", "more-itertools", "tiktoken"),
    about=("Whisper's text decoder keeps its KV cache in a dict keyed by the key/value projection "
           "modules, filled by forward hooks (install_kv_cache_hooks) that torch.cat each step's "
           "projection onto the cached tensor; the decoder reads its position as a Python int from "
           "the cached tensor's length and slices the positional embedding with it. Compiling the "
           "decoder under whisper.decode's own greedy loop recompiles on the growing cache."),
)
