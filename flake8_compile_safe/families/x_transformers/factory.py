"""x-transformers validation workload: ``AutoregressiveWrapper.generate`` with its KV cache.

The model handed to the harness is the ``TransformerWrapper`` (a decoder-only LM with rotary
positions); ``run(m)`` wraps ``m`` (eager or compiled) in the package's ``AutoregressiveWrapper``
and generates greedily from variable-length prompts (``prompt_lens``), with ``cache_kv=True``: the
wrapper passes the ``LayerIntermediates`` cache returned by one step into the next.
"""

from __future__ import annotations

NEW_TOKENS = 8


def decode():
    import torch
    from x_transformers import AutoregressiveWrapper, Decoder, TransformerWrapper

    torch.manual_seed(0)
    model = TransformerWrapper(num_tokens=256, max_seq_len=64,
                               attn_layers=Decoder(dim=32, depth=2, heads=2, rotary_pos_emb=True)).eval()
    gen = torch.Generator().manual_seed(1)
    prompts = torch.randint(0, 256, (2, 8), generator=gen)
    prompt_lens = torch.tensor([8, 5])

    def run(m):
        torch.manual_seed(0)
        wrapper = AutoregressiveWrapper(m)
        return wrapper.generate(prompts, NEW_TOKENS, temperature=0.0, prompt_lens=prompt_lens,
                                cache_kv=True)

    return model, run
