"""Bark validation workload: the semantic GPT's KV-cached decode loop of ``generate_text_semantic``.

The model handed to the harness is a tiny random-init ``bark.model.GPT`` (2 layers, width 32,
vocabularies of 64). ``run(m)`` is the loop of ``bark.generation.generate_text_semantic`` written
out without its tokenizer, hub downloads and sampling: a prompt of 8 tokens, then one token per
call, each call handed back the ``past_kv`` tuple the previous one returned
(``logits, kv_cache = model(x_input, ..., use_cache=True, past_kv=kv_cache)``), greedy.
``merge_context`` is off: that path only adds the fixed 256 + 256 text/history prefix.
"""

from __future__ import annotations

PROMPT, STEPS = 8, 12


def _model_module():
    """``bark.model`` without running ``bark/__init__.py``, which imports the generation API and
    its dependencies (transformers, encodec, boto3): the package is registered bare, its path
    only, so ``import bark.model`` loads the model file alone."""
    import importlib
    import importlib.util
    import sys
    import types

    if "bark" not in sys.modules:
        spec = importlib.util.find_spec("bark")
        package = types.ModuleType("bark")
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__ = spec.origin  # where it lives (the harness checks the tree); not executed
        sys.modules["bark"] = package
    return importlib.import_module("bark.model")


def semantic_decode():
    import torch

    model_module = _model_module()
    torch.manual_seed(0)
    config = model_module.GPTConfig(block_size=64, input_vocab_size=64, output_vocab_size=64, n_layer=2,
                                    n_head=2, n_embd=32, dropout=0.0, bias=True)
    gpt = model_module.GPT(config).eval()
    prompt = torch.randint(0, 64, (1, PROMPT), generator=torch.Generator().manual_seed(1))

    def run(m):
        tokens, kv_cache = prompt, None
        with torch.no_grad():
            for _ in range(STEPS):
                x_input = tokens[:, [-1]] if kv_cache is not None else tokens
                logits, kv_cache = m(x_input, merge_context=False, use_cache=True, past_kv=kv_cache)
                tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        return tokens

    return gpt, run
