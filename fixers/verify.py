"""``compile-safe-fix --verify MODULE:FACTORY``: prove a fix by running it before it is kept.

The workload (the ``compile-safe-validate --model`` interface: ``FACTORY(**args)`` returns ``(model,
run)``) runs on a copy of the original tree and on a copy with the planned rewrites, each in its own
worker process (:mod:`flake8_compile_safe.validate.harness`), eager and compiled. The fixed run compares
its outputs with the original's (same mode). The fix is kept only when both differences are within
the tolerance and the fixed tree compiles whenever the original did; otherwise nothing is written
(the originals stay byte for byte) and the report names the file(s) whose fix changes the outputs.

The fixer process itself never imports torch: the workers do.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .outcome import shown

FIGURES = (("unique_graphs", "graphs"), ("graph_breaks", "graph breaks"), ("frame_skips", "frame skips"),
           ("recompiles", "recompiles"), ("predicted_cudagraph_skips", "predicted CUDA-graph skips"),
           ("predicted_cudagraph_rerecords", "predicted CUDA-graph re-records"))
ATTRIBUTION_LIMIT = 6  # name the culprit files by running each file's fix alone, up to this many files


class VerifyError(Exception):
    """The verification could not run (bad factory, tree, or a workload failing on the original)."""


@dataclass
class Verdict:
    factory: str
    tree: str
    backend: str
    atol: float
    original: dict  # mode -> ModeResult
    fixed: dict
    kept: bool = True
    why: str = ""
    culprits: list[str] = field(default_factory=list)

    def diff(self, mode: str) -> float | None:
        row = self.fixed.get(mode)
        return None if row is None else row.max_abs_diff_vs_reference

    def render(self) -> str:
        compiled = next((m for m in self.fixed if m != "eager"), None)
        lines = [f"compile-safe-fix --verify {self.factory} (tree {shown(self.tree)}, backend {self.backend}): "
                 f"original -> fixed, {compiled or 'compiled'} mode"]
        if compiled and compiled in self.original:
            for key, label in FIGURES:
                lines.append(f"  {label:<32} {getattr(self.original[compiled], key):>6} -> "
                             f"{getattr(self.fixed[compiled], key)}")
        eager_diff, compiled_diff = self.diff("eager"), self.diff(compiled) if compiled else None
        lines.append(f"  max abs diff, fixed vs original: eager {_fmt(eager_diff)}, compiled {_fmt(compiled_diff)} "
                     f"(tolerance {self.atol:g})")
        if self.kept:
            lines.append("verify: outputs match: the fix is kept")
        else:
            names = ", ".join(shown(c) for c in self.culprits) or "(not attributed)"
            effect = "makes compilation worse" if "verdict worse" in self.why else "changes the outputs"
            lines.append(f"verify: REFUSED: {self.why}; the fix of {names} {effect}. Nothing was "
                         "written: the original files are unchanged")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1e}"


def _workload_args(items: list[str]) -> dict:
    from flake8_compile_safe.validate.options import OptionError, parse_workload_args

    try:
        return parse_workload_args(items, "--verify-arg")
    except OptionError as exc:
        raise VerifyError(str(exc)) from None


def _tree(args) -> Path:
    from flake8_compile_safe.validate.cli import CliError, _default_model_path

    if args.verify_path:
        tree = Path(args.verify_path).resolve()
        if not tree.is_dir():
            raise VerifyError(f"{args.verify_path}: --verify-path is not a directory")
        return tree
    module, sep, func = args.verify.partition(":")
    if not sep or not module or not func:
        raise VerifyError(f"--verify {args.verify!r}: expected MODULE:FACTORY")
    try:
        return _default_model_path(module)
    except CliError as exc:
        raise VerifyError(str(exc)) from None


def _copy(tree: Path, dest: Path, rewrites: dict[str, bytes]) -> Path:
    from flake8_compile_safe.validate.fixcopy import COPY_IGNORE

    shutil.copytree(tree, dest, ignore=COPY_IGNORE)
    for rel, data in rewrites.items():
        (dest / rel).write_bytes(data)
    return dest


class _Runner:
    def __init__(self, args, tree: Path, work: Path):
        from flake8_compile_safe.validate.options import RunOptions

        self.args, self.tree, self.work = args, tree, work
        self.base = RunOptions(factory=args.verify, path=str(tree), workload_args=_workload_args(args.verify_arg),
                               modes=["default"], backend=args.verify_backend, device="cpu", warmup=2, runs=1,
                               seed=0)
        self.reference = str(work / "original.outputs.pt")

    def run(self, name: str, rewrites: dict[str, bytes]) -> dict:
        from dataclasses import replace

        from flake8_compile_safe.validate.cli import CliError, run_worker

        tree = _copy(self.tree, self.work / name, rewrites)
        original = name == "original"
        options = replace(self.base, variant=name, path=str(tree),
                          save_outputs=self.reference if original else None,
                          reference_outputs=None if original else self.reference)
        try:
            result = run_worker(options, self.work, self.args.verify_timeout)
        except CliError as exc:
            if original:
                raise VerifyError(f"the workload fails on the original tree: {exc}") from None
            return {"error": str(exc)}
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        return {row.mode: row for row in result.results}


def verify(report, args) -> Verdict:
    tree = _tree(args)
    rewrites: dict[str, bytes] = {}
    for o in report.changed:
        real = os.path.realpath(o.path)
        if not real.startswith(os.path.join(str(tree), "")):
            raise VerifyError(f"{shown(o.path)}: changed, but outside the verified tree {shown(str(tree))} "
                              "(give --verify-path)")
        rewrites[os.path.relpath(real, tree)] = o.source.encode(o.new_text)
    work = Path(tempfile.mkdtemp(prefix="compile-safe-fix-verify-"))
    try:
        runner = _Runner(args, tree, work)
        original = runner.run("original", {})
        fixed = runner.run("fixed", rewrites)
        verdict = Verdict(args.verify, str(tree), args.verify_backend, args.verify_atol, original,
                          {} if "error" in fixed else fixed)
        verdict.why = _refusal(original, fixed, args.verify_atol)
        if verdict.why:
            verdict.kept = False
            verdict.culprits = _attribute(runner, rewrites, args.verify_atol, tree)
        return verdict
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _refusal(original: dict, fixed: dict, atol: float) -> str:
    if "error" in fixed:
        return f"the workload fails on the fixed tree: {fixed['error']}"
    for mode, row in fixed.items():
        if row.error and not original[mode].error:
            return f"{mode} mode fails on the fixed tree: {row.error}"
        diff = row.max_abs_diff_vs_reference
        if diff is not None and not diff <= atol:
            return f"{mode} outputs differ by {diff:.2e} > {atol:g}"
    return _only_worse(original, fixed)


def _only_worse(original: dict, fixed: dict) -> str:
    """A fix that makes dynamo's verdict worse and improves none of its figures is refused too.

    The graph-break strategy trades breaks for graphs that mutate no input; where the original
    had nothing to trade (no skip, no re-record, no break), it only adds breaks.
    """
    for mode, row in fixed.items():
        before = original.get(mode)
        if mode == "eager" or before is None or row.error or before.error:
            continue
        changes = [(label, getattr(before, key), getattr(row, key)) for key, label in FIGURES]
        worse = [f"{label} {a} -> {b}" for label, a, b in changes if b > a]
        if worse and not any(b < a for _, a, b in changes):
            return f"{mode} mode: the fix makes dynamo's verdict worse and improves nothing ({', '.join(worse)})"
    return ""


def _attribute(runner: _Runner, rewrites: dict[str, bytes], atol: float, tree: Path) -> list[str]:
    """The files whose fix alone changes the outputs (all changed files when there are too many to try)."""
    files = sorted(rewrites)
    if len(files) == 1 or len(files) > ATTRIBUTION_LIMIT:
        return [str(tree / f) for f in files]
    culprits = []
    for i, rel in enumerate(files):
        alone = runner.run(f"alone{i}", {rel: rewrites[rel]})
        if "error" in alone or any(r.max_abs_diff_vs_reference is not None and not r.max_abs_diff_vs_reference <= atol
                                   for r in alone.values()):
            culprits.append(str(tree / rel))
    return culprits or [str(tree / f) for f in files]
