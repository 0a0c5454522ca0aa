"""Whisper validation workload: whisper.decode's greedy loop with the decoder compiled.

The model handed to the harness is the ``TextDecoder`` (what runs every decode step). ``run(m)``
puts ``m`` in place of the decoder of a tiny random-init Whisper and calls the package's own
``whisper.decode`` on a seeded log-mel input, so the decoder is called through the package's
``PyTorchInference`` with its hook-filled KV cache, one token per step after the prompt.
"""

from __future__ import annotations

SAMPLE_LEN = 8  # decode steps after the prompt
N_AUDIO_CTX = 32  # encoder positions (mel frames / 2)


def decode():
    import torch
    import whisper
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=N_AUDIO_CTX, n_audio_state=32, n_audio_head=2,
                           n_audio_layer=2, n_vocab=51864,  # English-only tokenizer's vocabulary
                           n_text_ctx=64, n_text_state=32, n_text_head=2, n_text_layer=2)
    model = Whisper(dims).eval()
    with torch.no_grad():
        # Whisper leaves its positional embedding uninitialised (torch.empty): loaded from weights.
        model.decoder.positional_embedding.normal_(0.0, 0.02)
    decoder = model.decoder
    mel = torch.randn(1, 80, 2 * N_AUDIO_CTX, generator=torch.Generator().manual_seed(1))
    options = whisper.DecodingOptions(language="en", without_timestamps=True, fp16=False,
                                      sample_len=SAMPLE_LEN, temperature=0.0)

    def run(m):
        torch.manual_seed(0)
        model.decoder = m
        try:
            result = whisper.decode(model, mel, options)[0]
        finally:
            model.decoder = decoder
        return (torch.tensor(result.tokens, dtype=torch.long),
                torch.tensor([result.avg_logprob], dtype=torch.float64))

    return decoder, run
