"""Moshi validation workload: Mimi's streaming encode + decode, one 80 ms frame per step.

Mimi keeps its streaming state in dataclasses attached to every streaming module (convolution
paddings, the transformers' KV caches and offsets), entered with ``mimi.streaming(batch_size)``.
``encode``/``decode`` are methods, not ``forward``, so the model handed to the harness is
``MimiStep``: an ``nn.Module`` whose forward is one streaming step through the package's API
(``encode`` a frame of audio, ``decode`` the codes), as a user compiling a streaming step would
write it. ``run(m)`` opens a streaming context and feeds the frames in order.
"""

from __future__ import annotations

FRAMES = 6


def _tiny_mimi_config():
    from moshi.models import loaders

    seanet = {**loaders._seanet_kwargs, "dimension": 32, "n_filters": 4, "ratios": [4, 4, 2, 2]}
    transformer = {**loaders._transformer_kwargs, "d_model": 32, "num_heads": 2, "num_layers": 1,
                   "dim_feedforward": 64, "context": 8, "input_dimension": 32,
                   "output_dimensions": [32]}
    quantizer = {**loaders._quantizer_kwargs, "dimension": 16, "n_q": 4, "bins": 64,
                 "input_dimension": 32, "output_dimension": 32}
    # frame rate: 24 kHz / (4*4*2*2 = 64) / 2 (resampled) = 187.5 Hz
    return {**loaders._mimi_config, "seanet": seanet, "transformer": transformer,
            "quantizer": quantizer, "frame_rate": 24000 / 64 / 2}


def mimi_stream():
    import torch
    from moshi.models import loaders

    torch.manual_seed(0)
    mimi = loaders.get_mimi(None, _tiny_mimi_config(), num_codebooks=4)
    frame = int(mimi.sample_rate / mimi.frame_rate)

    class MimiStep(torch.nn.Module):
        def __init__(self, codec):
            super().__init__()
            self.codec = codec

        def forward(self, pcm):
            codes = self.codec.encode(pcm)
            return codes, self.codec.decode(codes)

    step = MimiStep(mimi).eval()
    audio = torch.randn(1, 1, FRAMES * frame, generator=torch.Generator().manual_seed(1)) * 0.1

    def run(m):
        torch.manual_seed(0)
        codes, pcm = [], []
        with torch.no_grad(), mimi.streaming(batch_size=1):
            for i in range(FRAMES):
                c, y = m(audio[:, :, i * frame:(i + 1) * frame])
                codes.append(c)
                pcm.append(y)
        return torch.cat(codes, dim=-1), torch.cat(pcm, dim=-1)

    return step, run
