"""Meta's reference Llama implementation (``llama-models``): Llama 3 with a tensor-attribute KV cache."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="llama_models",
    dist="llama-models",
    version="0.3.0",
    package="llama_models",
    sentinel="llama_models/llama3/model.py",
    factories={"llama3": "flake8_compile_safe.families.llama_models.factory:llama3"},
    # fairscale: the model-parallel layers the model is built from (a pure-Python source archive).
    # The rest are llama-models' own requirements that its llama3 modules import.
    runtime_deps=("fairscale==0.4.13", "termcolor", "tiktoken", "pydantic>=2", "pyyaml", "jinja2>=3.1.6",
                  "Pillow", "packaging"),
    about=("Llama 3's reference Transformer keeps each layer's KV cache as plain tensor attributes, "
           "rebinds them in forward (self.cache_k = self.cache_k.to(xq)) and writes new keys at a "
           "Python-int start_pos; its fairscale model-parallel layers wrap every projection in "
           "autograd Functions that call ctx.mark_dirty, which dynamo cannot trace: a graph break "
           "around every linear layer (in fairscale, outside this tree) and, because the frames "
           "are split there, a prefill-to-decode recompile on every frame of the model."),
)
