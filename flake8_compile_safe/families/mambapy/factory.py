"""mamba.py validation workload: ``JambaLM.step`` in the decode loop of ``JambaLM.generate``.

The model handed to the harness is a module whose ``forward`` is a tiny random-init ``JambaLM``'s
``step`` (the bound method: the frame ``generate`` calls once per token); ``run(m)`` is
``generate``'s loop without the tokenizer and the sampling: empty caches from each layer's
``get_empty_cache``, then one ``m(ids[:, [i]], caches)`` per token of a seeded 12-token prompt,
each call taking back the ``caches`` list the previous one returned.
"""

from __future__ import annotations

TOKENS = 12


def jamba_step():
    import torch
    from mambapy.jamba import JambaLM, JambaLMConfig

    class StepStage(torch.nn.Module):
        """A module whose ``forward`` is ``lm.step`` (the bound method): the frame dynamo compiles."""

        def __init__(self, lm):
            super().__init__()
            self.lm = lm
            self.forward = lm.step  # an instance attribute: nn.Module.__call__ calls it

    torch.manual_seed(0)
    # Every other layer attention (1, 3), every other layer a 4-expert MoE (1, 3); width 16.
    config = JambaLMConfig(d_model=16, n_layers=4, mlp_size=32, num_attention_heads=2, num_key_value_heads=1,
                           num_experts=4, num_experts_per_tok=2, attn_layer_offset=1, attn_layer_period=2,
                           expert_layer_offset=1, expert_layer_period=2, vocab_size=32, d_state=4)
    lm = JambaLM(config).eval()
    ids = torch.randint(0, config.vocab_size, (1, TOKENS), generator=torch.Generator().manual_seed(1))

    def run(m):
        caches = [lm.jamba.layers[i].get_empty_cache(1, ids.device) for i in range(config.n_layers)]
        logits = []
        with torch.no_grad():
            for i in range(ids.size(1)):
                out, caches = m(ids[:, [i]], caches)
                logits.append(out)
        return torch.cat(logits, dim=1)

    return StepStage(lm), run
