"""EnCodec validation workload: the streaming LM loop of ``encodec.compress`` (``use_lm=True``).

The model handed to the harness is a tiny random-init ``LMModel`` (the entropy-coding language
model). ``run(m)`` is the LM half of ``compress_to_file`` written out: codes come from a tiny
random-init 24 kHz ``EncodecModel`` encoding seeded audio (eagerly, once, in the factory), then
one ``m(input_, states, offset)`` call per frame, each call taking back the ``states`` list and
the Python-int ``offset`` the previous one returned. The arithmetic coder (pure Python, fed from
the probabilities) is left out; ``run`` returns the probabilities.
"""

from __future__ import annotations

SECONDS = 0.16  # 12 frames at 75 Hz


def _torchaudio_or_stand_in():
    """``encodec.utils`` imports torchaudio at module level, for file I/O and resampling only.

    No torchaudio release loads against torch 2.13 (2.11's native library fails to load), and
    this workload never calls it: where torchaudio does not import, register a stand-in module
    whose every attribute lookup raises AttributeError, so a use fails loudly.
    """
    import sys
    import types

    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError):
        stand_in = types.ModuleType("torchaudio")

        def __getattr__(name):
            raise AttributeError(f"torchaudio.{name}: torchaudio is not available with this "
                                 "torch (stand-in registered by the encodec recall workload)")

        stand_in.__getattr__ = __getattr__
        sys.modules["torchaudio"] = stand_in


def lm_stream():
    import torch

    _torchaudio_or_stand_in()
    from encodec.model import EncodecModel, LMModel

    torch.manual_seed(0)
    codec = EncodecModel._get_model(target_bandwidths=[1.5], sample_rate=24_000, channels=1).eval()
    codec.set_target_bandwidth(1.5)
    wav = 0.1 * torch.randn(1, 1, int(SECONDS * codec.sample_rate), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        (frame, _), = codec.encode(wav)  # [1, K, T] codes
    _, K, T = frame.shape
    # As EncodecModel.get_lm_model builds it, smaller: dim 200 -> 32, 5 layers -> 2.
    lm = LMModel(codec.quantizer.n_q, codec.quantizer.bins, num_layers=2, dim=32, num_heads=2,
                 past_context=int(3.5 * codec.frame_rate)).eval()

    def run(m):
        torch.manual_seed(0)
        states, offset = None, 0
        input_ = torch.zeros(1, K, 1, dtype=torch.long)
        probas = []
        with torch.no_grad():
            for t in range(T):
                p, states, offset = m(input_, states, offset)
                probas.append(p)
                input_ = 1 + frame[:, :, t: t + 1]
        return torch.cat(probas, dim=-1)

    return lm, run
