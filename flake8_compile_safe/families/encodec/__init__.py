"""Meta's EnCodec (``encodec``): neural audio codec whose entropy-coding LM streams with a state list."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="encodec",
    dist="encodec",
    version="0.1.1",  # the registry has a source archive only; fetch unpacks encodec/ from it
    package="encodec",
    sentinel="encodec/modules/transformer.py",
    factories={"lm_stream": "flake8_compile_safe.families.encodec.factory:lm_stream"},
    # encodec also asks for torchaudio, imported only by its CLI and test helpers (lazily):
    # the workload does not need it, and no torchaudio release matches torch 2.13.
    runtime_deps=("numpy", "einops"),
    about=("EnCodec's LMModel (the language model behind compress(use_lm=True)) streams one frame per "
           "call: it takes the previous step's list of per-layer state tensors and a Python-int "
           "offset, concatenates each layer's new input onto its state (torch.cat, trimmed to "
           "past_context) and returns offset + T. Under compress's own loop the int offset and "
           "the growing states recompile the compiled step until automatic dynamic shapes take "
           "over."),
)
