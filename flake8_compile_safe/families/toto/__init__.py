"""Datadog's Toto (``toto-ts``): a time-series foundation model with a KV cache for decoding."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import Family

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
