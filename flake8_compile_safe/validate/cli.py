"""``compile-safe-validate``: dynamo's verdict on a model, line by line against the linter.

    compile-safe-validate --model MODULE:FACTORY [--path DIR]   # any model: FACTORY() -> (model, run)
    compile-safe-validate --family NAME[:WORKLOAD]              # a model family's real source and workload
    compile-safe-validate --quick                               # the default family, fixed vs original, CPU

Each variant (the original tree, and with ``--fix`` a copy rewritten by ``compile-safe-fix``, made
first) runs in its own worker subprocess (:mod:`flake8_compile_safe.validate.harness`), eager and
compiled, its progress printed as it goes (:mod:`.progress`). With two variants both workers run
at once in lockstep (:mod:`.lockstep`): one compiles at a time, and their timed runs alternate
under one lock, so that "fixed vs original" divides figures taken under the same machine load.
The linter runs here, in process, on each variant's tree and every dynamo event is matched to its
findings (:mod:`.crosscheck`). Prints a table with its legend, the events and a checklist; writes JSON and a report.

Exit status: 0 checklist passed; 1 checklist failed; 2 bad input or a run that failed; 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from .. import __version__
from .crosscheck import crosscheck, lint_tree
from .fixcopy import CopyError, FixedCopy, fix_copy
from .options import OptionError, RunOptions, parse_workload_args
from .progress import ProgressPrinter, WorkerFailed, run_all_with_progress, run_with_progress
from .records import RunResult
from .report import checklist, compare_with_original, format_events, format_legend, format_table, write_report
from .table import timing_note

PROG = "compile-safe-validate"
REPO_ROOT = Path(__file__).resolve().parents[2]

DESCRIPTION = """\
Dynamo's verdict on a model, line by line against the linter: graph breaks, frame skips,
recompiles and CUDA-graph skips (predicted on CPU) with their source lines, the TCS findings
next to each, accuracy and latency. With a model family (the default), the family's real
source is validated as is and after compile-safe-fix, against a checklist.

  compile-safe-validate --quick                              the default family, original vs fixed, CPU
  compile-safe-validate --model MODULE:FACTORY --path DIR    any model: FACTORY() returns (model, run)
  compile-safe-validate --family NAME[:WORKLOAD]             a model family's source and workload"""

EPILOG = """\
exit codes:
  0    the checklist passed
  1    the checklist failed (the table and the events say why)
  2    bad input (an option, the model, a path) or a worker run that failed: one line on stderr
  130  interrupted

Write-up, JSON fields and troubleshooting: docs/validation.md"""


def _torch_version() -> str:
    try:
        return metadata.version("torch")  # without importing torch (seconds)
    except metadata.PackageNotFoundError:
        return "not installed"


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Plain text; every option's default shown unless its help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if not action.option_strings or "default" in text or default is None or default is False \
                or default == [] or default == argparse.SUPPRESS:
            return text
        return f"{text} (default: %(default)s)"


class CliError(Exception):
    """Reported as ``compile-safe-validate: error: <message>`` and exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        print(f"{PROG}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=_HelpFormatter)
    ap.add_argument("--version", action="version",
                    version=f"%(prog)s {__version__} (flake8-compile-safe; torch {_torch_version()}, "
                            f"Python {sys.version.split()[0]})")
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--model", metavar="MODULE:FACTORY",
                      help="FACTORY() returns (model, run): model an nn.Module, run(m) one workload with it "
                           "(default: none; a model family is validated)")
    what.add_argument("--family", metavar="NAME[:WORKLOAD]",
                      help="a model family's fetched source and validation workload (default: "
                           f"{_default_family()}, its first workload)")
    ap.add_argument("--path", "--source", dest="path", metavar="DIR",
                    help="tree put first on sys.path and analysed by the linter (default: the directory "
                         "holding MODULE's package, or the family's fetched source)")
    ap.add_argument("--config", metavar="WORKLOAD", help="the family's workload (same as --family NAME:WORKLOAD; "
                    "default: the family's first)")
    wl = ap.add_argument_group("workload arguments (passed to FACTORY as keyword arguments when given; "
                               "default: the factory's own defaults)")
    wl.add_argument("--steps", type=int, metavar="N", help="decode steps")
    wl.add_argument("--context", type=int, metavar="N", help="context length")
    wl.add_argument("--csv", metavar="FILE", help="data file (must exist)")
    wl.add_argument("--checkpoint", metavar="DIR", help="local weights directory (must exist)")
    wl.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                    help="any other keyword argument (VALUE read as JSON when it parses, else a string)")
    fix = ap.add_mutually_exclusive_group()
    fix.add_argument("--fix", action="store_true", help="also validate a copy fixed by compile-safe-fix "
                     "(the default with a family)")
    fix.add_argument("--no-fix", action="store_true", help="validate the original only (the default with --model)")
    ap.add_argument("--fixed", metavar="DIR", help="an already-fixed tree to validate as the fixed variant "
                    "(default: a copy fixed now, with --fix or a family)")
    ap.add_argument("--strategy", default="tensor-index", choices=("tensor-index", "graph-break"),
                    help="compile-safe-fix strategy for the fixed copy")
    RunOptions.add_arguments(ap)
    ap.add_argument("--min-speedup", type=float, default=1.0, metavar="X",
                    help="checklist: the compiled target variant must be at least X times faster than its eager run")
    ap.add_argument("--atol", type=float, default=1e-3, metavar="TOL",
                    help="checklist: largest allowed abs difference, compiled vs eager output")
    ap.add_argument("--json", dest="json_path", metavar="FILE",
                    help="write the results here (one object, see docs/validation.md; default: not written)")
    ap.add_argument("--report", metavar="DIR", help="write report.md and chart.png into this directory "
                    "(default: not written; with --quick, WORKDIR/report)")
    ap.add_argument("--workdir", metavar="DIR", help="keep the fixed copy, options, raw results and worker logs "
                    "here (default: a new temporary directory, kept and named at the end)")
    ap.add_argument("--timeout", type=int, default=1800, metavar="S",
                    help="seconds allowed per worker run (default: %(default)s); in lockstep: per variant, "
                         "and the longest wait for a partner")
    ap.add_argument("--no-lint", action="store_true", help="skip the static cross-check (no TCS column, no recall)")
    ap.add_argument("--quick", action="store_true",
                    help="CPU, 1 thread, the family's first workload, a report in --report or WORKDIR/report")
    return ap


def _default_family() -> str:
    from ..families import DEFAULT_FAMILY

    return DEFAULT_FAMILY


# ---------------------------------------------------------------------------------------------
# what to run


@dataclass
class Target:
    factory: str  # "module:function"
    path: Path
    family: str | None = None
    expect_package: str | None = None
    workload_args: dict = field(default_factory=dict)
    workload: str = ""  # "FAMILY:WORKLOAD" for a family, else the factory spec


def _default_model_path(module: str) -> Path:
    """The directory holding MODULE's top-level package (found without importing it)."""
    top = module.split(".")[0]
    sys.path.insert(0, os.getcwd())
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError) as exc:
        raise CliError(f"cannot import {module}: {exc}") from None
    finally:
        sys.path.pop(0)
    if spec is None:
        raise CliError(f"cannot import {module}: no module named {top!r} (give --path DIR)")
    if spec.submodule_search_locations:
        where = Path(list(spec.submodule_search_locations)[0]).parent
    elif spec.origin and spec.origin not in ("built-in", "frozen"):
        where = Path(spec.origin).parent
    else:
        raise CliError(f"{top} has no source directory (give --path DIR)")
    if where.name in ("site-packages", "dist-packages"):
        raise CliError(f"{top} is installed in {where}: give --path DIR with its source tree")
    return where.resolve()


def _workload_args(args) -> dict:
    out: dict = {}
    for name in ("steps", "context", "csv", "checkpoint"):
        value = getattr(args, name)
        if value is not None:
            out[name] = str(Path(value).resolve()) if name in ("csv", "checkpoint") else value
    try:
        out.update(parse_workload_args(args.arg, "--arg"))
    except OptionError as exc:
        raise CliError(str(exc)) from None
    if args.csv is not None and not Path(args.csv).is_file():
        raise CliError(f"{args.csv}: CSV file not found")
    if args.checkpoint is not None and not Path(args.checkpoint).is_dir():
        raise CliError(f"{args.checkpoint}: checkpoint directory not found")
    return out


def resolve_target(args) -> Target:
    workload_args = _workload_args(args)
    if args.model:
        if args.config:
            raise CliError("--config names a family's workload: use it with --family, not --model")
        module, sep, func = args.model.partition(":")
        if not sep or not module or not func:
            raise CliError(f"--model {args.model!r}: expected MODULE:FACTORY")
        path = Path(args.path).resolve() if args.path else _default_model_path(module)
        if not path.is_dir():
            raise CliError(f"{args.path}: --path is not a directory")
        return Target(args.model, path, workload_args=workload_args, workload=args.model)
    from ..families import DEFAULT_FAMILY, get_family

    name, _, workload = (args.family or DEFAULT_FAMILY).partition(":")
    workload = workload or args.config or None
    try:
        family = get_family(name)
        factory = family.factory(workload)
    except KeyError as exc:
        raise CliError(exc.args[0]) from None
    if args.path:
        path = Path(args.path).resolve()
        if not (path / family.package / "__init__.py").is_file():
            raise CliError(f"{args.path}: --path has no {family.package}/ package")
    else:
        try:
            path = family.source()
        except RuntimeError as exc:
            raise CliError(str(exc)) from None
    chosen = workload or next(k for k, v in family.factories.items() if v == factory)
    return Target(factory, path, family.name, family.package, workload_args, f"{family.name}:{chosen}")


# ---------------------------------------------------------------------------------------------
# running the fixer and the workers


def run_fixer(original: Path, dest: Path, strategy: str) -> FixedCopy:
    """Copy ``original`` to ``dest``, rewrite the copy with compile-safe-fix (in process), say what changed."""
    try:
        fixed = fix_copy(original, dest, strategy)
    except (CopyError, ValueError) as exc:  # a destination we must not touch; an unknown strategy
        raise CliError(str(exc)) from None
    _progress(fixed.summary())
    for line in fixed.diffstat():
        print(line, flush=True)
    for error in fixed.errors:
        _progress(f"skipped by the fixer: {error}")
    for why in fixed.declined:
        _progress(f"not rewritten by the fixer: {why}")
    return fixed


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def _worker_files(options: RunOptions, work: Path) -> tuple[list[str], Path, Path, Path]:
    """(command, result, log, progress) of one variant's worker; its options written."""
    name = options.variant
    opts_path, out, log_path = work / f"{name}.options.json", work / f"{name}.json", work / f"{name}.log"
    out.unlink(missing_ok=True)
    options.write(opts_path)
    progress = work / f"{name}.progress"
    cmd = [sys.executable, "-m", "flake8_compile_safe.validate.harness", str(opts_path), str(out), str(progress)]
    return cmd, out, log_path, progress


def _prefix(name: str) -> str:
    return "" if name == "original" else f"{name}: "


def _worker_result(name: str, returncode: int, out: Path, log_path: Path) -> RunResult:
    prefix = _prefix(name)
    if out.is_file():
        result = RunResult.from_json(json.loads(out.read_text()))
        if result.error:
            raise CliError(prefix + result.error)
        if returncode == 0:
            return result
    lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    raise CliError(f"{prefix}worker failed (exit {returncode}): {lines[-1] if lines else 'no output'} "
                   f"(log: {log_path})")


def run_worker(options: RunOptions, work: Path, timeout: int) -> RunResult:
    """One variant's worker, alone (its timings are comparable within itself only)."""
    name = options.variant
    cmd, out, log_path, progress = _worker_files(options, work)
    printer = ProgressPrinter(f"[{PROG}] {name}: ")
    try:
        returncode = run_with_progress(cmd, log_path, progress, printer, _env(), timeout)
    except subprocess.TimeoutExpired:
        raise CliError(f"{_prefix(name)}worker timed out after {timeout}s (log: {log_path})") from None
    return _worker_result(name, returncode, out, log_path)


def _shared_core(options: RunOptions) -> int | None:
    """With one torch thread, the CPU core every variant's timed turns run on (the first this
    process may use); None (no pinning) with more threads or where affinity is not available."""
    if options.threads != 1 or not hasattr(os, "sched_getaffinity"):
        return None
    return min(os.sched_getaffinity(0))


def run_workers_in_lockstep(options: list[RunOptions], work: Path, timeout: int) -> list[RunResult]:
    """Every variant's worker at once, their timed runs alternating under one lock (:mod:`.lockstep`),
    so that speedups across variants divide figures taken under the same machine load.

    ``timeout`` is per worker: the pair may take ``timeout`` times the number of workers (each
    waits while another compiles); a worker waits at most ``timeout`` for a partner.
    """
    names = [o.variant for o in options]
    spec = {"dir": str(work), "variants": names, "timeout": timeout, "core": _shared_core(options[0])}
    for stale in work.glob("lockstep.*"):  # an earlier run's markers would read as a partner gone
        stale.unlink()
    files = [_worker_files(RunOptions(**{**o.to_json(), "lockstep": spec}), work) for o in options]
    jobs = [(cmd, log_path, progress, ProgressPrinter(f"[{PROG}] {name}: "))
            for name, (cmd, _, log_path, progress) in zip(names, files)]
    total = timeout * len(options)
    try:
        codes = run_all_with_progress(jobs, _env(), total)
    except subprocess.TimeoutExpired:
        logs = ", ".join(str(f[2]) for f in files)
        raise CliError(f"workers timed out after {total}s in lockstep (logs: {logs})") from None
    except WorkerFailed as failed:  # the others were stopped: this one's error is the run's
        name, (_, out, log_path, _) = names[failed.index], files[failed.index]
        _worker_result(name, failed.code, out, log_path)  # a non-zero exit always raises its one line
        raise AssertionError("unreachable") from None
    return [_worker_result(name, code, out, log_path)
            for name, code, (_, out, log_path, _) in zip(names, codes, files)]


# ---------------------------------------------------------------------------------------------


def _apply_quick(args) -> None:
    if args.device == "auto":
        args.device = "cpu"
    if not args.threads:
        args.threads = 1  # steadier timings on small shared CI runners


def _variants(args, target: Target) -> dict[str, Path | None]:
    """variant -> tree; None: the fixed copy, to be made by the fixer (before any worker runs: the
    fixer needs only the original tree, and the workers run at once, in lockstep)."""
    variants: dict[str, Path | None] = {"original": target.path}
    if args.fixed:
        fixed = Path(args.fixed).resolve()
        if not fixed.is_dir():
            raise CliError(f"{args.fixed}: --fixed is not a directory")
        variants["fixed"] = fixed
    elif args.fix or (target.family is not None and not args.no_fix):
        variants["fixed"] = None
    return variants


def _progress(text: str) -> None:
    # stdout: stderr carries nothing but the one-line error of a failed run
    print(f"[{PROG}] {text}", flush=True)


def _main(args) -> int:
    if args.quick:
        _apply_quick(args)
    target = resolve_target(args)
    try:
        base = RunOptions.from_namespace(args, factory=target.factory, path=str(target.path),
                                         workload_args=target.workload_args,
                                         expect_package=target.expect_package)
    except OptionError as exc:
        raise CliError(str(exc)) from None
    t_start = time.perf_counter()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="compile-safe-validate-")).resolve()
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"{args.workdir}: cannot create the work directory: {exc.strerror or exc}") from None
    fixer_info = None
    lint_status: dict[str, str] = {}
    variants = _variants(args, target)
    for name, tree in variants.items():
        if tree is None:
            tree = variants[name] = work / "fixed"
            _progress(f"fixing a copy of {target.path}: {tree}")
            fixer_info = run_fixer(target.path, tree, args.strategy).to_json()
    # the original's outputs are the reference of every other variant (max_abs_diff_vs_reference*)
    outputs = str(work / "original.outputs.pt")
    options = [RunOptions(**{**base.to_json(), "variant": name, "path": str(tree),
                             "save_outputs": outputs if name == "original" else None,
                             "reference_outputs": outputs if name != "original" else None})
               for name, tree in variants.items()]
    for name, tree in variants.items():
        _progress(f"running {name}: {tree}")
    if len(options) == 1:
        runs = [run_worker(options[0], work, args.timeout)]
    else:
        _progress(f"timing {' and '.join(variants)} in lockstep: their timed runs alternate")
        runs = run_workers_in_lockstep(options, work, args.timeout)
    for run, tree in zip(runs, variants.values()):
        name = run.variant
        if args.no_lint:
            findings, splits, lint_status[name] = None, None, "off (--no-lint)"
        else:
            findings, splits, problem = lint_tree(str(tree))
            lint_status[name] = f"unavailable: {problem}" if findings is None else f"{len(findings)} findings"
        crosscheck(run, findings, splits)
    code = _finish(args, target, runs, fixer_info, lint_status, time.perf_counter() - t_start, work)
    what = "worker logs, options and raw results" + (", the fixed copy (fixed/)" if fixer_info else "")
    if args.workdir:
        print(f"work directory: {work} ({what})")
    else:
        print(f"work directory: {work} ({what}; a temporary directory kept for you to look at: "
              "delete it when done, or pass --workdir DIR)")
    return code


def _finish(args, target, runs, fixer_info, lint_status, total_s, work) -> int:
    rows = [row for run in runs for row in run.results]
    compare_with_original(rows)
    target_variant = "fixed" if any(r.variant == "fixed" for r in runs) else "original"
    checks = checklist(rows, target_variant, args.min_speedup, args.atol)
    first = runs[0]
    legend = {k: v for run in runs for k, v in run.metric_legend.items()}
    print()
    if first.about:
        print(f"workload: {first.about}")
    print(format_table(rows, legend))
    note = timing_note(rows, lockstep=any(run.timed_with for run in runs))  # same as meta["lockstep"]
    if note:
        print(note)
    print("columns:")
    print(format_legend(rows, legend))
    events = format_events(rows)
    if events:
        print()
        print(events)
    print()
    for c in checks:
        print(f"[{'PASS' if c.ok else 'FAIL'}] {c.variant}/{c.mode}: {c.check} (value: {c.value})")
    passed = bool(checks) and all(c.ok for c in checks)
    print(f"checklist: {'PASSED' if passed else 'FAILED'} ({total_s:.0f} s)")
    meta = {"model": target.factory, "family": target.family, "workload": target.workload, "path": str(target.path),
            "workload_args": target.workload_args, "device": first.device, "torch": first.torch,
            "threads": first.threads, "about": first.about, "metric_legend": legend,
            "warmup": args.warmup, "runs": args.runs,
            "lockstep": any(run.timed_with for run in runs), "command": " ".join([PROG] + (args._argv or []))}
    if args.json_path:
        doc = {"tool": PROG, **meta, "passed": passed, "total_s": round(total_s, 1),
               "variants": [{"variant": r.variant, "path": r.path, "factory": r.factory, "threads": r.threads,
                             "lint": lint_status.get(r.variant), "executed": r.executed,
                             "executed_spans": r.executed_spans,
                             "timed_in_lockstep_with": r.timed_with,
                             "fixer": fixer_info if r.variant == "fixed" else None} for r in runs],
               "results": [row.to_json() for row in rows],
               "checklist": [c.to_json() for c in checks]}
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(doc, indent=1, default=str))
    report_dir = args.report or (str(work / "report") if args.quick else None)
    if report_dir:
        written = write_report(Path(report_dir), rows, checks, {**meta, "fixer": fixer_info})
        print("report: " + ", ".join(written))
    return 0 if passed else 1


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args._argv = argv
    try:
        return _main(args)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
