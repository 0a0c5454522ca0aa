"""Static recall on real code: the linter's findings against dynamo's verdict, per package.

Runs every workload of every model family (``flake8_compile_safe/families/``; see docs/recall.md)
through ``compile-safe-validate --family NAME:WORKLOAD --no-fix`` (one subprocess each: the
family's real source from the registry, a tiny random-init model, dynamo's events line by line,
the linter's findings in process) and prints, per workload and in total:

* break/skip recall: distinct graph-break / frame-skip lines under the package flagged by a TCS
  finding within 2 lines, over all such lines;
* recompile recall: the same for recompile lines; and for the lines that recompiled more than
  once ("repeating"): a line that recompiles once, on the prefill -> decode shape change, is
  absorbed by automatic dynamic shapes and costs one compile, while a repeating line costs one
  per step;
* findings on executed lines (line coverage of the eager run) and how many of them neither a
  dynamo event nor a predicted CUDA-graph skip/re-record confirms.

Workloads whose family marks them "precision" (they compile clean) count only towards the last
figure; "skip" ones (full-size configs) are not run.

    python benchmarks/recall.py [--only FAMILY[:WORKLOAD] ...] [--json OUT] [--keep DIR]

Needs the ``validate`` and ``recall`` extras (``pip install -e '.[validate,recall]'``). Takes about
10 minutes on 2 CPU cores (``--backend analysis``: dynamo and AOT metadata, no code generation).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from flake8_compile_safe.families import all_families
from flake8_compile_safe.validate.records import BREAK_KINDS, RECOMPILE_KINDS, ModeResult, RunResult

TARGETS = {"break_skip": 0.9, "break_skip_per_package": 0.8, "recompile": 0.6, "unconfirmed_share": 0.10}


@dataclass
class Tally:
    """Counts of one workload (or the total), each a (flagged, all) pair or a plain count."""

    breaks: list[int] = field(default_factory=lambda: [0, 0])
    recompiles: list[int] = field(default_factory=lambda: [0, 0])
    repeating: list[int] = field(default_factory=lambda: [0, 0])
    outside: int = 0  # event lines outside the package (torch, a dependency): no rule can flag them
    executed_findings: int = 0
    unconfirmed: int = 0

    def add(self, other: "Tally") -> None:
        for name in ("breaks", "recompiles", "repeating"):
            mine, theirs = getattr(self, name), getattr(other, name)
            mine[0] += theirs[0]
            mine[1] += theirs[1]
        self.outside += other.outside
        self.executed_findings += other.executed_findings
        self.unconfirmed += other.unconfirmed


def tally(run: RunResult, role: str) -> tuple[Tally, list]:
    """The counts of the first compiled mode of ``run``, and the events behind them."""
    row = next(r for r in run.results if r.mode != "eager")
    t = Tally(executed_findings=row.executed_findings, unconfirmed=len(row.unconfirmed_findings))
    if role == "recall":
        t.breaks = [row.break_recall.flagged, row.break_recall.total]
        t.recompiles = [row.recompile_recall.flagged, row.recompile_recall.total]
        t.outside = row.break_recall.outside + row.recompile_recall.outside
        lines: dict[tuple, list] = {}
        for event in row.events:
            if event.kind in RECOMPILE_KINDS and event.flagged is not None:
                counted = lines.setdefault((event.file, event.line), [0, bool(event.flagged)])
                counted[0] += event.count
        repeating = [flagged for count, flagged in lines.values() if count > 1]
        t.repeating = [sum(repeating), len(repeating)]
    return t, row.events


def run_workload(family, workload: str, out: Path, timeout: int) -> RunResult:
    cmd = [sys.executable, "-m", "flake8_compile_safe.validate.cli", "--family", f"{family.name}:{workload}",
           "--no-fix", "--backend", "analysis", "--warmup", "2", "--runs", "1", "--threads", "1",
           "--json", str(out), "--timeout", str(timeout)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 120)
    if not out.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{family.name}:{workload}: {last}")
    data = json.loads(out.read_text())
    variant = data["variants"][0]
    return RunResult(variant["variant"], variant["factory"], variant["path"],
                     results=[ModeResult.from_json(r) for r in data["results"]], executed=variant.get("executed", {}))


def ratio(pair) -> str:
    return f"{pair[0]}/{pair[1]}" + (f" = {pair[0] / pair[1]:.2f}" if pair[1] else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/recall.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], metavar="FAMILY[:WORKLOAD]",
                    help="run only these (repeatable)")
    ap.add_argument("--json", help="write per-workload figures and events here")
    ap.add_argument("--keep", help="keep each run's compile-safe-validate JSON in this directory")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per workload")
    args = ap.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="recall-"))
    work.mkdir(parents=True, exist_ok=True)
    selected = []
    for family in all_families():
        for workload in family.factories:
            role = family.benchmark_role(workload)
            wanted = not args.only or any(o in (family.name, f"{family.name}:{workload}") for o in args.only)
            if role != "skip" and wanted:
                selected.append((family, workload, role))
    rows, total, failures = [], Tally(), []
    started = time.perf_counter()
    for family, workload, role in selected:
        name = f"{family.name}:{workload}"
        print(f"[recall] {name} ({role}) ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            run = run_workload(family, workload, work / f"{family.name}-{workload}.json", args.timeout)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            failures.append(str(exc).splitlines()[0])
            continue
        counts, events = tally(run, role)
        total.add(counts)
        rows.append({"workload": name, "role": role, "counts": counts, "seconds": time.perf_counter() - t0,
                     "events": [e.__dict__ for e in events if e.kind in BREAK_KINDS + RECOMPILE_KINDS]})
    header = f"{'workload':<38} {'role':<9} {'break/skip':>12} {'recompile':>12} {'repeating':>10} " \
             f"{'outside':>7} {'exec. findings':>14} {'unconfirmed':>11}"
    print(header)
    print("-" * len(header))
    for row in rows:
        c = row["counts"]
        print(f"{row['workload']:<38} {row['role']:<9} {ratio(c.breaks):>12} {ratio(c.recompiles):>12} "
              f"{ratio(c.repeating):>10} {c.outside:>7} {c.executed_findings:>14} {c.unconfirmed:>11}")
    print("-" * len(header))
    print(f"{'total':<38} {'':<9} {ratio(total.breaks):>12} {ratio(total.recompiles):>12} "
          f"{ratio(total.repeating):>10} {total.outside:>7} {total.executed_findings:>14} {total.unconfirmed:>11}")
    share = total.unconfirmed / total.executed_findings if total.executed_findings else 0.0
    weakest = min(((r["counts"].breaks[0] / r["counts"].breaks[1], r["workload"]) for r in rows
                   if r["role"] == "recall" and r["counts"].breaks[1]), default=None)
    print()
    print(f"break/skip recall {ratio(total.breaks)} (target >= {TARGETS['break_skip']}); weakest package: "
          + (f"{weakest[1]} {weakest[0]:.2f} (target >= {TARGETS['break_skip_per_package']})" if weakest else "n/a"))
    print(f"recompile recall {ratio(total.recompiles)}, repeating lines {ratio(total.repeating)} "
          f"(target >= {TARGETS['recompile']})")
    print(f"unconfirmed findings on executed lines: {total.unconfirmed}/{total.executed_findings} = {share:.0%} "
          f"(target <= {TARGETS['unconfirmed_share']:.0%})")
    print(f"{len(rows)} workloads in {time.perf_counter() - started:.0f} s; raw results in {work}")
    for failure in failures:
        print(f"FAILED {failure}")
    if args.json:
        Path(args.json).write_text(json.dumps([{**r, "counts": r["counts"].__dict__} for r in rows], indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
