"""Datadog's Toto (``toto-ts``): a time-series foundation model with a KV cache for decoding."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import Family, KeptFinding

# Measured on torch 2.13 CPU with `compile-safe-validate --quick` (tiny, 12 decode steps): the fixed
# copy has 0 graph breaks, 0 frame skips and 1 recompile (a shape guard on `inputs`, prefill then
# decode), none after warm-up; none of the lines below has a dynamo event.
_NO_CACHE_BRANCH = (
    "the original branch for calls without a KV cache (seq_pos_offset is then the Python int 0); with a cache "
    "the recipe's tensor-offset branch just above returns first, so the decode workload never runs this line. "
    "The linter does not see the torch.is_tensor(seq_pos_offset) guard.")
_PHASE_FLAG = (
    "the host phase flag of the static decode: prefill or decode, a guard on purpose (two graphs, one "
    "recompile during warm-up, none after); the decode graph takes no per-step int.")
KEPT_AFTER_FIX = (
    KeptFinding("toto/model/attention.py", "TCS003", "attention_mask[..., q_dim_start:q_dim_end", _NO_CACHE_BRANCH),
    KeptFinding("toto/model/attention.py", "TCS004", "seq_pos_offset == 0", _NO_CACHE_BRANCH),
    KeptFinding("toto/model/backbone.py", "TCS004", "if decoding:", _PHASE_FLAG),
    KeptFinding("toto/model/transformer.py", "TCS004", "if should_apply_fusion:", _PHASE_FLAG),
    KeptFinding("toto/model/util.py", "TCS010", "self._prefilled = True", _PHASE_FLAG),
)

FAMILY = Family(
    name="toto",
    dist="toto-ts",
    version="0.2.0",
    package="toto",
    sentinel="toto/model/util.py",
    factories={
        # run = prefill + 12 decode steps through Toto's own forecaster with the KV cache
        "tiny": "flake8_compile_safe.families.toto.factory:tiny",  # CI size, 2 CPU cores
        "base": "flake8_compile_safe.families.toto.factory:base",  # Toto-Open-Base-1.0 shape, random init
    },
    recipe="flake8_compile_safe.families.toto.recipe:TotoRecipe",
    runtime_deps=("einops", "jaxtyping", "rotary-embedding-torch==0.8.6", "gluonts==0.16.2", "lightning"),
    about=("Toto's decode path appends each new patch to a KV cache held by a dataclass, with a "
           "write head read by .item() and tensor slice bounds: graph breaks, whole-frame skips and "
           "a recompile per step on the original."),
    kept_after_fix=KEPT_AFTER_FIX,
    benchmark_roles={"base": "skip"},
)
TOTO_VERSION = FAMILY.version


def fetch_toto(version: str = TOTO_VERSION, cache: Path | None = None) -> Path:
    """Return a directory holding the ``toto`` package of ``toto-ts==version``."""
    from ..fetch import fetch_package_source

    return fetch_package_source(FAMILY.dist, version, FAMILY.package, FAMILY.sentinel, cache)


def copy_toto(dest: Path, version: str = TOTO_VERSION) -> Path:
    """Copy a fresh, writable Toto tree to ``dest`` (for the fixer and validation runs)."""
    shutil.copytree(fetch_toto(version), dest, dirs_exist_ok=False)
    return dest
