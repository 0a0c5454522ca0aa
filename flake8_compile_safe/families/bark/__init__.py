"""Suno's Bark (``bark``): text-to-audio GPTs whose decode loop feeds a GPT-2-style ``past_kv`` tuple back."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="bark",
    dist="bark",
    version="0.1.5",
    package="bark",
    sentinel="bark/model.py",
    factories={"semantic_decode": "flake8_compile_safe.families.bark.factory:semantic_decode"},
    # bark/__init__.py imports the generation API (transformers' BertTokenizer, encodec, boto3, hub
    # downloads); the workload needs only bark/model.py, which imports torch alone.
    runtime_deps=(),
    about=("Bark's text-to-semantic GPT (`bark.model.GPT`, nanoGPT layout: blocks in an "
           "`nn.ModuleDict(dict(h=nn.ModuleList(...)))`) decodes one token per call: each "
           "`CausalSelfAttention.forward` returns its keys and values grown by `torch.cat` with the "
           "`past_kv` it was given, and `generate_text_semantic` feeds the returned tuple back. "
           "Under torch.compile the frame recompiles on the cache's size until automatic dynamic "
           "shapes take over, and the sizes become SymInt inputs."),
)
