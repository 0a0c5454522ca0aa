"""LitGPT validation workloads: the package's own ``generate`` (prefill + greedy decode).

Tiny random-init ``GPT`` models built from ``Config.from_name`` with smaller sizes; ``run(m)``
sets up the KV cache for one sequence (``set_kv_cache``, as litgpt's generate script does) and
calls ``litgpt.generate.base.generate`` with ``m``: a prefill of the prompt, then one token per
step. ``gemma3``: Gemma 3's layout, a sliding-window (ring-buffer cache) layer and a global one;
the window is smaller than the generated length, so the ring buffer wraps. ``llama32``: Llama 3.2's
layout, global attention only (the path that compiles clean: a precision case).
"""

from __future__ import annotations

PROMPT = 6
MAX_RETURNED = 14
SLIDING_WINDOW = 8  # the local layer's ring-buffer cache wraps during decoding
TINY = dict(n_layer=2, n_embd=32, n_head=4, head_size=8, intermediate_size=64, block_size=32,
            vocab_size=128, padded_vocab_size=128)


def _generate_workload(name: str, **overrides):
    import torch
    from litgpt.config import Config
    from litgpt.generate.base import generate as litgpt_generate
    from litgpt.model import GPT

    torch.manual_seed(0)
    model = GPT(Config.from_name(name, **TINY, **overrides)).eval()
    model.max_seq_length = MAX_RETURNED
    with torch.inference_mode():  # as litgpt's generate script encodes its prompt
        prompt = torch.randint(0, TINY["vocab_size"], (PROMPT,), generator=torch.Generator().manual_seed(1))

    def run(m):
        torch.manual_seed(0)
        m.set_kv_cache(batch_size=1, device=torch.device("cpu"))
        with torch.inference_mode():
            return litgpt_generate(m, prompt, MAX_RETURNED, temperature=0.0, top_k=1)

    return model, run


def gemma3():
    return _generate_workload("gemma-3-1b-it", n_query_groups=1, attention_scores_scalar=8,
                              sliding_window_size=SLIDING_WINDOW, sliding_window_indices=[1, 0],
                              rope_indices=[1, 0])


def llama32():
    return _generate_workload("Llama-3.2-1B", n_query_groups=2)
