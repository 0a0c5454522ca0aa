"""mamba.py (``mambapy``): pure-PyTorch Mamba and Jamba, whose decode steps hand their caches back."""

from __future__ import annotations

from .. import Family

FAMILY = Family(
    name="mambapy",
    dist="mambapy",
    version="1.2.0",
    package="mambapy",
    sentinel="mambapy/jamba.py",
    factories={"jamba_step": "flake8_compile_safe.families.mambapy.factory:jamba_step"},
    # jamba.py imports torch and mambapy.mamba only (mambapy/lm.py would import mamba_ssm, a CUDA
    # package: the workload does not use it).
    runtime_deps=(),
    about=("mamba.py's Jamba (`mambapy.jamba.JambaLM`: Mamba layers and attention layers, a sparse MoE "
           "feed-forward on every other layer) decodes one token per `step(tokens, caches)`: each attention "
           "layer returns its keys and values grown by `torch.cat` and the step stores them back into the "
           "`caches` list, and each MoE block picks its tokens with one-argument `torch.where` and "
           "`.tolist()`. Under torch.compile the MoE loop is a frame skip on every call, and the cache's "
           "growing length recompiles until automatic dynamic shapes take over. Added as a package this "
           "project had not seen (2026-12-06): measured before any change, see docs/recall.md."),
)
