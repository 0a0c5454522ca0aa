"""RWKV validation workload: the package's own ``PIPELINE.generate`` loop on a tiny RWKV-6.

``RWKV`` loads its weights from a ``.pth`` file (there is no config object): the factory builds
a random-init state dict in the RWKV-6 checkpoint layout in code, seeded, writes it to a
temporary file and loads it with strategy ``cpu fp32``. The package compiles its kernels with
TorchScript unless ``RWKV_JIT_ON=0``, the setting for ``torch.compile``: the factory sets it
before importing ``rwkv.model``. ``run(m)`` hands ``PIPELINE`` (with the package's own
tokenizer) a recorder whose ``forward`` calls ``m.forward`` and keeps the logits, and generates
greedily (``top_p=0``) from a short prompt.
"""

from __future__ import annotations

import os

C = 32  # embedding width
HEAD = 16  # head size: 2 heads
LAYERS = 2
FFN = 64
VOCAB = 65536  # the package's rwkv_vocab_v20230424 tokenizer
D_MIX, D_DECAY = 8, 16  # low-rank widths of the data-dependent mix and decay (32, 64 in RWKV-6)
NEW_TOKENS = 6
PROMPT = "The quick brown fox"


def _rwkv6_state_dict(gen):
    import torch

    def r(*shape, scale=0.1):
        return torch.randn(*shape, generator=gen) * scale

    H = C // HEAD
    w = {"emb.weight": r(VOCAB, C), "blocks.0.ln0.weight": 1 + r(C), "blocks.0.ln0.bias": r(C)}
    for i in range(LAYERS):
        b, a, f = f"blocks.{i}.", f"blocks.{i}.att.", f"blocks.{i}.ffn."
        for ln in ("ln1", "ln2"):
            w[f"{b}{ln}.weight"], w[f"{b}{ln}.bias"] = 1 + r(C), r(C)
        for name in ("x", "w", "k", "v", "r", "g"):
            w[f"{a}time_maa_{name}"] = torch.rand(1, 1, C, generator=gen)
        w[f"{a}time_maa_w1"] = r(C, 5 * D_MIX)
        w[f"{a}time_maa_w2"] = r(5, D_MIX, C)
        w[f"{a}time_decay_w1"] = r(C, D_DECAY)
        w[f"{a}time_decay_w2"] = r(D_DECAY, C)
        w[f"{a}time_decay"] = r(1, 1, C, scale=1.0) - 4
        w[f"{a}time_faaaa"] = r(H, HEAD)
        for proj in ("receptance", "key", "value", "gate", "output"):
            w[f"{a}{proj}.weight"] = r(C, C)
        w[f"{a}ln_x.weight"], w[f"{a}ln_x.bias"] = 1 + r(C), r(C)
        w[f"{f}time_maa_k"] = torch.rand(1, 1, C, generator=gen)
        w[f"{f}time_maa_r"] = torch.rand(1, 1, C, generator=gen)
        w[f"{f}key.weight"], w[f"{f}receptance.weight"], w[f"{f}value.weight"] = r(FFN, C), r(C, C), r(C, FFN)
    w["ln_out.weight"], w["ln_out.bias"] = 1 + r(C), r(C)
    w["head.weight"] = r(VOCAB, C)
    return w


def generate():
    import tempfile

    import numpy as np
    import torch

    os.environ["RWKV_JIT_ON"] = "0"  # plain nn.Module methods, as torch.compile needs
    from rwkv.model import RWKV
    from rwkv.utils import PIPELINE, PIPELINE_ARGS

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tiny-rwkv6.pth")
        torch.save(_rwkv6_state_dict(torch.Generator().manual_seed(0)), path)
        model = RWKV(model=path, strategy="cpu fp32", verbose=False)

    class Recorder:
        """What PIPELINE calls ``model``: forwards to ``m`` and keeps each call's logits."""

        def __init__(self, m):
            self.m, self.logits = m, []

        def forward(self, tokens, state):
            out, state = self.m.forward(tokens, state)
            self.logits.append(out)
            return out, state

    def run(m):
        torch.manual_seed(0)
        np.random.seed(0)
        recorder = Recorder(m)
        pipeline = PIPELINE(recorder, "rwkv_vocab_v20230424")
        text = pipeline.generate(PROMPT, token_count=NEW_TOKENS, args=PIPELINE_ARGS(top_p=0.0))
        return torch.tensor(pipeline.encode(text) or [-1]), torch.stack(recorder.logits)

    return model, run
