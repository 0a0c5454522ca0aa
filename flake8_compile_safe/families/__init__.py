"""Model families: one folder each, holding everything this project knows about one real model package.

A family folder ``families/<name>/`` has an ``__init__.py`` that defines ``FAMILY = Family(...)``
and imports nothing heavy (no torch, no libcst, no model package): the registry imports every
family's ``__init__`` to list them. Heavy parts live in modules named by strings and are imported
only by the stage that needs them:

* ``factories``: validation workloads, ``"module:function"``; ``function(**workload_args)`` returns
  ``(model, run)`` or ``(model, run, metrics)`` as ``compile-safe-validate --model`` expects
  (``flake8_compile_safe/validate/workload.py``). They import the model package, which comes from
  the family's fetched source tree (``Family.source()``), put first on ``sys.path``;
  ``compile-safe-validate --family NAME[:WORKLOAD]`` runs them there.
* ``recipe``: the fixer's multi-file rewrite for this family (libcst), ``"module:ClassName"``; the
  fixer's recipe registry (``flake8_compile_safe.fixers.recipes.all_recipes``) instantiates it.

The generic core (linter, fixer, validation) never names a family: it goes through
:func:`all_families` / :func:`get_family`.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

from .fetch import fetch_package_source

# What ``compile-safe-validate`` (and its ``--quick``) measures when given no --model / --family.
DEFAULT_FAMILY = "toto"


@dataclass(frozen=True)
class Family:
    name: str  # folder name: "toto"
    dist: str  # distribution on the package registry: "toto-ts"
    version: str  # pinned: figures in the docs are measured on this version
    package: str  # top-level import package inside the wheel: "toto"
    sentinel: str  # a file that marks a complete unpack: "toto/model/util.py"
    factories: dict[str, str] = field(default_factory=dict)  # workload -> "module:function"
    recipe: str | None = None  # "module:RecipeClass" for compile-safe-fix, or None
    runtime_deps: tuple[str, ...] = ()  # requirements the factories import besides torch
    about: str = ""  # one paragraph: what the model is and what dynamo trips on in it
    # What benchmarks/recall.py does with each workload: "recall" (dynamo trips on it: the linter
    # must flag its events; the default), "precision" (compiles clean: only false alarms count) or
    # "skip" (too heavy for the benchmark, e.g. a full-size config).
    benchmark_roles: dict[str, str] = field(default_factory=dict)

    def benchmark_role(self, workload: str) -> str:
        return self.benchmark_roles.get(workload, "recall")

    def source(self, cache: Path | None = None) -> Path:
        """A directory holding ``<package>/`` from the registry's wheel (downloaded once, cached)."""
        return fetch_package_source(self.dist, self.version, self.package, self.sentinel, cache)

    def factory(self, workload: str | None = None) -> str:
        """``module:function`` of a workload (default: the first one listed)."""
        if not self.factories:
            raise KeyError(f"family {self.name!r} has no validation factory")
        if workload is None:
            return next(iter(self.factories.values()))
        try:
            return self.factories[workload]
        except KeyError:
            raise KeyError(f"family {self.name!r} has no workload {workload!r} "
                           f"(choose from {', '.join(self.factories)})") from None


def all_families() -> list[Family]:
    """Every family folder's ``FAMILY``, sorted by name."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            module = importlib.import_module(f"{__name__}.{info.name}")
            family = getattr(module, "FAMILY", None)
            if isinstance(family, Family):
                found.append(family)
    return sorted(found, key=lambda f: f.name)


def get_family(name: str) -> Family:
    for family in all_families():
        if family.name == name:
            return family
    known = ", ".join(f.name for f in all_families())
    raise KeyError(f"unknown model family {name!r} (known: {known})")
