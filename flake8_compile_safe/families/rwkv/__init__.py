"""BlinkDL's RWKV inference package (``rwkv``): an RNN language model with a per-layer state list."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="rwkv",
    dist="rwkv",
    version="0.8.32",
    package="rwkv",
    sentinel="rwkv/model.py",
    factories={"generate": "flake8_compile_safe.families.rwkv.factory:generate"},
    runtime_deps=("numpy", "tokenizers>=0.13.2"),
    about=("RWKV (v6 'Finch' layout) runs as an RNN: RWKV.forward(tokens, state) takes the token ids "
           "as a Python list and a flat list of per-layer state tensors, picks its kernels with "
           "Python branches on len(tokens) and the model version, keeps its weights in a dict of "
           "plain tensors (self.w, not parameters) and writes the new states back into the list "
           "(state[i*3+0], ... = ATT(...)). PIPELINE.generate feeds the prompt, then one token id per "
           "step. Measured: one recompile (state None -> list on the first step), none on the "
           "token values; the linter finds no root in it (RWKV's base, MyModule, is a module-level "
           "alias chosen by an environment switch): a root-resolution and precision case."),
    benchmark_roles={"generate": "precision"},
)
