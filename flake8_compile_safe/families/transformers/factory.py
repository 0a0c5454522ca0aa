"""transformers validation workloads: greedy decoding with the library's ``DynamicCache``.

``generate`` looks its decoding method up on ``type(self)``, so it cannot run with a compiled
module (an ``OptimizedModule``) as ``self``; ``run(m)`` is the loop generate runs for greedy
search, written out: a prefill, then one token per step, the ``DynamicCache`` (a list of
per-layer ``DynamicLayer`` objects updated through the ``Cache`` base class) carried from step to
step, the attention mask grown by one column each step.
"""

from __future__ import annotations

PROMPT = 6
NEW_TOKENS = 6


def _greedy(model_config, prompt_ids):
    import torch
    from transformers import DynamicCache

    def run(m):
        torch.manual_seed(0)
        cache = DynamicCache(config=model_config)
        mask = torch.ones_like(prompt_ids)
        tokens, logits = [], []
        with torch.no_grad():
            out = m(input_ids=prompt_ids, attention_mask=mask, past_key_values=cache, use_cache=True)
            for _ in range(NEW_TOKENS):
                step_logits = out.logits[:, -1]
                logits.append(step_logits)
                nxt = step_logits.argmax(-1, keepdim=True)
                tokens.append(nxt)
                mask = torch.cat([mask, torch.ones_like(nxt)], dim=-1)
                out = m(input_ids=nxt, attention_mask=mask, past_key_values=out.past_key_values,
                        use_cache=True)
        return torch.cat(tokens, dim=-1), torch.stack(logits, dim=1)

    return run


def _prompt(vocab: int):
    import torch

    return torch.randint(0, vocab, (2, PROMPT), generator=torch.Generator().manual_seed(1))


def jetmoe():
    """JetMoE: mixture-of-experts MLP and mixture-of-attention-heads, routed per token."""
    import torch
    from transformers import JetMoeConfig, JetMoeForCausalLM

    torch.manual_seed(0)
    config = JetMoeConfig(vocab_size=128, hidden_size=32, intermediate_size=32, num_hidden_layers=2,
                          num_local_experts=4, num_experts_per_tok=2, kv_channels=16,
                          num_key_value_heads=2, max_position_embeddings=64)
    model = JetMoeForCausalLM(config).eval()
    return model, _greedy(config, _prompt(config.vocab_size))


def mixtral_eager_experts():
    """Mixtral with the reference ("eager") experts: the per-expert loop over routed tokens.

    transformers 5.23 picks ``grouped_mm`` experts when ``torch._grouped_mm`` can dispatch (as on
    torch 2.13 CPU: that path compiles clean) and the eager loop otherwise; the eager loop is also
    what ``experts_implementation="eager"`` selects, the form most MoE code outside the library
    is written in.
    """
    import torch
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(0)
    config = MixtralConfig(vocab_size=128, hidden_size=32, intermediate_size=32, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, num_local_experts=4,
                           num_experts_per_tok=2, max_position_embeddings=64)
    model = MixtralForCausalLM._from_config(config, experts_implementation="eager").eval()
    return model, _greedy(config, _prompt(config.vocab_size))
