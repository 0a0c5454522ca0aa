"""The one option schema of a validation run: the CLI's flags are generated from it, and the
worker receives it as one JSON record (never as re-serialised flags). Nothing here imports torch.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

MODES = ("default", "reduce-overhead", "max-autotune")
BACKENDS = ("inductor", "analysis")
DEVICES = ("auto", "cpu", "cuda")


class OptionError(ValueError):
    """An option value that cannot be run: one line for the user."""


def parse_workload_args(items: list[str], option: str) -> dict:
    """``KEY=VALUE`` items (VALUE read as JSON where it parses, else kept as text) for the factory."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise OptionError(f"{option} {item!r}: expected KEY=VALUE with KEY a Python name")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _flag(flag: str, help: str, **argparse_kwargs):
    return {"flag": flag, "help": help, **argparse_kwargs}


@dataclass
class RunOptions:
    """Everything one worker process needs to measure one variant (one source tree)."""

    factory: str  # "module:function"; function(**workload_args) returns (model, run[, metrics])
    path: str  # put first on sys.path; events and coverage are reported relative to it
    variant: str = "original"
    workload_args: dict = field(default_factory=dict)  # keyword arguments for the factory
    # A package that must be imported from ``path`` (a family's model package): a copy installed
    # elsewhere is never measured by mistake.
    expect_package: str | None = None
    # compile-safe-fix --verify: save this run's outputs (eager and per mode) to this file, or compare
    # them with a file another run saved (ModeResult.max_abs_diff_vs_reference).
    save_outputs: str | None = None
    reference_outputs: str | None = None
    # Timed in lockstep with other variants' workers (:mod:`.lockstep`): {"dir": shared directory,
    # "variants": every worker's variant in turn order, "timeout": seconds to wait for a partner}.
    lockstep: dict | None = None
    modes: list[str] = field(default_factory=lambda: ["default"], metadata=_flag(
        "--mode", "torch.compile mode: default, reduce-overhead, max-autotune (repeatable; default: default)",
        action="append", metavar="MODE"))
    backend: str = field(default="inductor", metadata=_flag(
        "--backend", "inductor (real code generation, timed for real) or analysis (dynamo + AOT metadata "
        "only: same graphs, breaks, recompiles and predicted skips, much faster, timings meaningless)",
        choices=BACKENDS))
    device: str = field(default="auto", metadata=_flag("--device", "auto, cpu or cuda", choices=DEVICES))
    warmup: int = field(default=2, metadata=_flag(
        "--warmup", "warm-up runs of the workload (the first compiles)", type=int, metavar="N"))
    runs: int = field(default=5, metadata=_flag("--runs", "timed runs, each interleaved with an eager one",
                                                type=int, metavar="N"))
    seed: int = field(default=0, metadata=_flag("--seed", "torch.manual_seed before every run", type=int,
                                                metavar="N"))
    threads: int = field(default=0, metadata=_flag("--threads", "torch threads (0: torch's default)", type=int,
                                                   metavar="N"))

    # -- the CLI side ------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser) -> None:
        """One argparse option per field that has a flag (dest: the field name)."""
        for f in fields(cls):
            meta = dict(f.metadata)
            if "flag" not in meta:
                continue
            flag = meta.pop("flag")
            if meta.get("action") == "append":
                parser.add_argument(flag, dest=f.name, default=None, **meta)
            else:
                parser.add_argument(flag, dest=f.name, default=f.default, **meta)

    @classmethod
    def from_namespace(cls, ns, **values) -> "RunOptions":
        """Flagged fields from an argparse namespace, the rest from ``values``."""
        for f in fields(cls):
            if "flag" in f.metadata and f.name not in values:
                value = getattr(ns, f.name, None)
                if value is not None:
                    values[f.name] = value
        options = cls(**values)
        options.check()
        return options

    def check(self) -> None:
        for mode in self.modes:
            if mode not in MODES:
                raise OptionError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
        if self.backend not in BACKENDS:
            raise OptionError(f"unknown backend {self.backend!r} (choose from {', '.join(BACKENDS)})")
        if self.device not in DEVICES:
            raise OptionError(f"unknown device {self.device!r} (choose from {', '.join(DEVICES)})")
        for name in ("warmup", "runs"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name} must be >= 1")
        if ":" not in self.factory:
            raise OptionError(f"{self.factory!r}: expected MODULE:FACTORY")

    # -- the wire ----------------------------------------------------------------------------
    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "RunOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OptionError(f"unknown run options: {', '.join(unknown)}")
        missing = [f.name for f in fields(cls)
                   if f.default is MISSING and f.default_factory is MISSING and f.name not in data]
        if missing:
            raise OptionError(f"missing run options: {', '.join(missing)}")
        options = cls(**data)
        options.check()
        return options

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def read(cls, path: Path) -> "RunOptions":
        return cls.from_json(json.loads(Path(path).read_text()))
