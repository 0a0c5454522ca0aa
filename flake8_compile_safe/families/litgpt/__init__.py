"""Lightning AI's LitGPT (``litgpt``): from-scratch LLM implementations with a buffer KV cache."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="litgpt",
    dist="litgpt",
    version="0.5.13",
    package="litgpt",
    sentinel="litgpt/generate/base.py",
    factories={"gemma3": "flake8_compile_safe.families.litgpt.factory:gemma3",
               "llama32": "flake8_compile_safe.families.litgpt.factory:llama32"},
    # litgpt pins huggingface-hub<1.4 and psutil==7.2.2; its modules import and run with the
    # huggingface-hub that transformers 5.23 needs, so it is fetched as source (no install).
    runtime_deps=("lightning>=2.6.1", "jsonargparse[signatures]>=4.37,<=4.41", "psutil", "pyyaml",
                  "safetensors", "tokenizers", "tqdm", "huggingface-hub", "typing-extensions"),
    about=("LitGPT's KV cache is a pair of buffers written with index_copy_ at a tensor input_pos; "
           "the generate loop also passes input_pos_maxp1, a Python int bumped every step. For "
           "global attention (llama32) that compiles clean after the prefill-to-decode recompile. "
           "Layers with sliding-window attention (gemma3: Gemma 3's layout) keep a ring-buffer "
           "cache whose update reads input_pos.max().item() and slices the cache with it: a graph "
           "break every step and a recompile per position while the window fills."),
    benchmark_roles={"llama32": "precision"},
)
