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
* "rc+split": the recompile lines flagged, or in a frame the linter predicts a break dynamo reported
  splits off (``flake8_compile_safe.splits``; docs/recall.md, "Frames a break splits off"), and
  "split fr.": how many predicted frames whose code ran dynamo traced as frames of their own;
* findings on executed lines (line coverage of the eager run) and how many of them neither a
  dynamo event nor a predicted CUDA-graph skip/re-record confirms, in the normal run or in the
  counterfactual run below (the headline; the normal run's own figure is printed beside it).

Workloads whose family marks them "precision" (they compile clean) count only towards the last
figure; "skip" ones (full-size configs) are not run.

Counterfactual run (``--no-counterfactual`` to leave it out): where a workload has flagged graph
breaks, it runs a second time with the ``torch._dynamo.config`` switches that make those break
kinds traceable (``SWITCHES``: ``capture_scalar_outputs``, ``capture_dynamic_output_shape_ops``,
``allow_rnn``). An unflagged recompile (or break/skip) line of the normal run that is absent from
the counterfactual run is **explained by a flagged break** (a frame that exists, or is split,
only because of it), unless the same guard fails there at a line the normal run did not have
(the hazard "moved" into the frame that now holds it: not explained); it is reported next to
the strict figures, never folded into them. A finding on an executed line that the normal run leaves
unconfirmed and the counterfactual run confirms (an event within 2 lines, a predicted CUDA-graph skip, a
guard on its state) is counted in its own column ("cf-conf."): that code runs in frames the flagged break
made dynamo skip, so only a run in which the break traces can give dynamo's verdict on it. It counts as
confirmed in the headline share of unconfirmed findings (both dynamo runs are dynamo's verdict); the
normal run's own share is printed beside it.

A counterfactual run that does not complete (the workload fails under the switches) explains
nothing: its "+expl." columns show "-" and the JSON says why. Its events still confirm findings,
and so does the line dynamo raised at when it failed (a ``compile_error`` event).

    python benchmarks/recall.py [--only FAMILY[:WORKLOAD] ...] [--json OUT] [--keep DIR [--reuse [--recheck]]]
                                [--no-counterfactual]

Needs the ``validate`` and ``recall`` extras (``pip install -e '.[validate,recall]'``). Takes about
10 minutes on 2 CPU cores (``--backend analysis``: dynamo and AOT metadata, no code generation),
about 20 with the six counterfactual runs (each transformers run lints the whole tree again).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from flake8_compile_safe.families import all_families
from flake8_compile_safe.validate.harness import DYNAMO_SWITCHES_ENV
from flake8_compile_safe.validate.crosscheck import crosscheck, lint_tree
from flake8_compile_safe.validate.records import BREAK_KINDS, RECOMPILE_KINDS, ModeResult, RunResult

# dynamo's reason for a graph break or frame skip (a substring) -> the config switch that lets it trace that.
SWITCHES = (
    ("capture_scalar_outputs", "capture_scalar_outputs"),  # "Unsupported Tensor.item() call with ..."
    ("Data dependent operator", "capture_scalar_outputs"),  # .tolist(), aten._local_scalar_dense
    ("Dynamic shape operator", "capture_dynamic_output_shape_ops"),  # nonzero, one-argument where, unique, ...
    ("Attempted to wrap RNN", "allow_rnn"),
)

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
    # Counterfactual run: unflagged lines gone once the flagged breaks trace, and unconfirmed
    # findings it confirms. None: no counterfactual run (no flagged break, or --no-counterfactual).
    explained_breaks: int | None = None
    explained_recompiles: int | None = None
    confirmed_by_counterfactual: int | None = None
    # The linter's split-frame predictions (flake8_compile_safe.splits) for the breaks dynamo reported:
    # unflagged recompile lines in a predicted frame, and the predicted frames whose code ran
    # (dynamo traced a frame there, all)
    split_recompiles: int = 0
    split_frames: list[int] = field(default_factory=lambda: [0, 0])

    def add(self, other: "Tally") -> None:
        self.split_recompiles += other.split_recompiles
        for name in ("breaks", "recompiles", "repeating", "split_frames"):
            mine, theirs = getattr(self, name), getattr(other, name)
            mine[0] += theirs[0]
            mine[1] += theirs[1]
        self.outside += other.outside
        self.executed_findings += other.executed_findings
        self.unconfirmed += other.unconfirmed
        for name in ("explained_breaks", "explained_recompiles", "confirmed_by_counterfactual"):
            setattr(self, name, (getattr(self, name) or 0) + (getattr(other, name) or 0))

    def with_explained(self, pair: list[int], explained: int | None) -> str:
        """``flagged+explained/all`` of a strict pair, or "-" without a counterfactual run."""
        return "-" if explained is None else ratio([pair[0] + explained, pair[1]])


def switches_for(events) -> list[str]:
    """The config switches that make the flagged, in-tree graph breaks and frame skips traceable."""
    wanted = set()
    for event in events:
        if event.kind in BREAK_KINDS and event.flagged:
            wanted.update(switch for pattern, switch in SWITCHES if pattern in (event.reason or ""))
    return sorted(wanted)


def _unflagged_lines(events, kinds) -> set[tuple]:
    return {(e.file, e.line) for e in events if e.kind in kinds and e.flagged is not None and not e.flagged}


def _lines(events, kinds) -> set[tuple]:
    return {(e.file, e.line) for e in events if e.kind in kinds and e.flagged is not None}


def reason_key(reason: str) -> str:
    """dynamo's reason with a tensor's source path cut to its last name (``decode_caches[0].num_masked`` ->
    ``num_masked``): the same guard failing in another frame reads the same."""
    def last_name(match):
        names = re.findall(r"[A-Za-z_]\w*", match.group(1))
        return f"tensor '{names[-1] if names else match.group(1)}'"
    return re.sub(r"tensor '([^']*)'", last_name, reason or "")


def explained_lines(normal, counterfactual) -> dict[str, list[tuple]]:
    """Unflagged in-tree break/skip and recompile lines of ``normal`` that ``counterfactual`` no longer has.

    A line whose guard fails again in the counterfactual run at a line the normal run did not have
    (the same hazard, reported in a frame that now holds it) is "moved", not explained.
    """
    out = {}
    for name, kinds in (("breaks", BREAK_KINDS), ("recompiles", RECOMPILE_KINDS)):
        normal_lines = _lines(normal, kinds)
        moved_reasons = {reason_key(e.reason) for e in counterfactual if e.kind in kinds and e.flagged is not None
                         and (e.file, e.line) not in normal_lines}
        gone = _unflagged_lines(normal, kinds) - _lines(counterfactual, kinds)
        moved = {(e.file, e.line) for e in normal if (e.file, e.line) in gone and reason_key(e.reason) in moved_reasons}
        out[name] = sorted(gone - moved, key=str)
        out[f"{name}_moved"] = sorted(moved, key=str)
    return out


def confirmed_only_by_counterfactual(normal_row: ModeResult, counter_row: ModeResult) -> list:
    """Findings on executed lines the normal run leaves unconfirmed and the counterfactual run confirms."""
    still = {(u.code, u.file, u.line) for u in counter_row.unconfirmed_findings}
    return [u for u in normal_row.unconfirmed_findings if (u.code, u.file, u.line) not in still]


def tally(run: RunResult, role: str) -> tuple[Tally, list]:
    """The counts of the first compiled mode of ``run``, and the events behind them."""
    row = next(r for r in run.results if r.mode != "eager")
    t = Tally(executed_findings=row.executed_findings, unconfirmed=len(row.unconfirmed_findings),
              split_frames=[sum(1 for *_, traced in row.split_frames if traced), len(row.split_frames)])
    if role == "recall":
        t.split_recompiles = row.recompile_recall.split
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


def compare_counterfactual(run: RunResult, events, other: RunResult, switches: list[str]) -> dict:
    """What the counterfactual run explains and confirms, and ``error`` when it did not complete.

    A run that stopped part-way (dynamo, or the workload under the switches, failed) explains
    nothing: it lacks the events of the steps it never ran, and comparing with it would count them
    as explained. What it confirms still counts: an event is dynamo's verdict whether or not the
    run went on, and so is the line dynamo raised at (a ``compile_error`` event: the flagged host
    number, once traced, cannot be traced further).
    """
    normal_row = next(r for r in run.results if r.mode != "eager")
    other_row = next(r for r in other.results if r.mode != "eager")
    confirmed = [u.__dict__ for u in confirmed_only_by_counterfactual(normal_row, other_row)]
    kept = [e.__dict__ for e in other_row.events if e.kind in BREAK_KINDS + RECOMPILE_KINDS + ("compile_error",)]
    if other_row.error:
        return {"switches": switches, "error": other_row.error.splitlines()[0][:200], "confirmed": confirmed,
                "events": kept}
    return {"switches": switches, "explained": explained_lines(events, other_row.events), "confirmed": confirmed,
            "events": kept}


_LINTED: dict[str, tuple] = {}  # tree -> lint_tree(tree), for --recheck


def run_workload(family, workload: str, out: Path, timeout: int, switches: list[str] = (),
                 reuse: bool = False, recheck: bool = False) -> RunResult:
    if reuse and out.is_file():
        run = load_run(out)
        if recheck:  # the linter as it is now, against the dynamo events kept in the run
            if run.path not in _LINTED:
                _LINTED[run.path] = lint_tree(run.path)
            findings, splits, problem = _LINTED[run.path]
            if findings is None:
                raise RuntimeError(f"{family.name}:{workload}: the linter failed: {problem}")
            crosscheck(run, findings, splits)
        return run
    env = {**os.environ, DYNAMO_SWITCHES_ENV: ",".join(switches)}
    cmd = [sys.executable, "-m", "flake8_compile_safe.validate.cli", "--family", f"{family.name}:{workload}",
           "--no-fix", "--backend", "analysis", "--warmup", "2", "--runs", "1", "--threads", "1",
           "--json", str(out), "--timeout", str(timeout)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 120, env=env)
    if not out.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{family.name}:{workload}: {last}")
    return load_run(out)


def load_run(out: Path) -> RunResult:
    data = json.loads(out.read_text())
    variant = data["variants"][0]
    return RunResult(variant["variant"], variant["factory"], variant["path"],
                     results=[ModeResult.from_json(r) for r in data["results"]], executed=variant.get("executed", {}),
                     executed_spans=variant.get("executed_spans", {}))


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def ratio(pair) -> str:
    return f"{pair[0]}/{pair[1]}" + (f" = {pair[0] / pair[1]:.2f}" if pair[1] else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/recall.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], metavar="FAMILY[:WORKLOAD]",
                    help="run only these (repeatable)")
    ap.add_argument("--json", help="write per-workload figures and events here")
    ap.add_argument("--keep", help="keep each run's compile-safe-validate JSON in this directory")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per workload")
    ap.add_argument("--no-counterfactual", action="store_true",
                    help="leave out the second run with the flagged break kinds made traceable")
    ap.add_argument("--reuse", action="store_true",
                    help="with --keep: read a run's JSON already in that directory instead of running it again")
    ap.add_argument("--recheck", action="store_true",
                    help="with --reuse: lint the trees again and cross-check the kept runs' dynamo events with "
                         "those findings (a linter change measured without running dynamo again)")
    args = ap.parse_args(argv)
    if args.recheck and not args.reuse:
        ap.error("--recheck needs --reuse")
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
            run = run_workload(family, workload, work / f"{family.name}-{workload}.json", args.timeout,
                               reuse=args.reuse, recheck=args.recheck)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            failures.append(str(exc).splitlines()[0])
            continue
        counts, events = tally(run, role)
        counterfactual = None
        switches = switches_for(events) if role == "recall" and not args.no_counterfactual else []
        if switches:
            print(f"[recall] {name} counterfactual ({', '.join(switches)}) ...", file=sys.stderr, flush=True)
            try:
                other = run_workload(family, workload, work / f"{family.name}-{workload}-counterfactual.json",
                                     args.timeout, switches, reuse=args.reuse, recheck=args.recheck)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failures.append(f"{name} counterfactual: {str(exc).splitlines()[0]}")
            else:
                counterfactual = compare_counterfactual(run, events, other, switches)
                counts.confirmed_by_counterfactual = len(counterfactual["confirmed"])
                if "error" in counterfactual:
                    print(f"[recall] {name} counterfactual did not complete (it explains nothing): "
                          f"{counterfactual['error']}", file=sys.stderr, flush=True)
                else:
                    counts.explained_breaks = len(counterfactual["explained"]["breaks"])
                    counts.explained_recompiles = len(counterfactual["explained"]["recompiles"])
        total.add(counts)
        rows.append({"workload": name, "role": role, "counts": counts, "seconds": time.perf_counter() - t0,
                     "events": [e.__dict__ for e in events if e.kind in BREAK_KINDS + RECOMPILE_KINDS],
                     "counterfactual": counterfactual})
    header = f"{'workload':<36} {'role':<9} {'break/skip':>12} {'b/s+expl.':>12} {'recompile':>12} " \
             f"{'rc+expl.':>12} {'rc+split':>12} {'split fr.':>9} {'repeating':>10} {'outside':>7} " \
             f"{'exec.find.':>10} {'unconf.':>7} {'cf-conf.':>8}"
    print(header)
    print("-" * len(header))

    def line(label, role, c):
        cf = "-" if c.confirmed_by_counterfactual is None else c.confirmed_by_counterfactual
        return (f"{label:<36} {role:<9} {ratio(c.breaks):>12} {c.with_explained(c.breaks, c.explained_breaks):>12} "
                f"{ratio(c.recompiles):>12} {c.with_explained(c.recompiles, c.explained_recompiles):>12} "
                f"{ratio([c.recompiles[0] + c.split_recompiles, c.recompiles[1]]):>12} "
                f"{c.split_frames[0]:>4}/{c.split_frames[1]:<4} "
                f"{ratio(c.repeating):>10} {c.outside:>7} {c.executed_findings:>10} {c.unconfirmed:>7} {cf:>8}")

    for row in rows:
        print(line(row["workload"], row["role"], row["counts"]))
    print("-" * len(header))
    cf_total = replace(total, explained_breaks=total.explained_breaks or 0,
                       explained_recompiles=total.explained_recompiles or 0,
                       confirmed_by_counterfactual=total.confirmed_by_counterfactual or 0)
    print(line("total", "", cf_total))
    print("(b/s+expl., rc+expl.: flagged, plus unflagged lines gone in the counterfactual run where the flagged "
          "breaks trace; '-': no counterfactual run. rc+split: flagged, plus unflagged lines in a frame the linter "
          "predicts a break dynamo reported splits off; split fr.: predicted frames whose code ran that dynamo traced "
          "as frames / all of them. cf-conf.: unconfirmed findings the counterfactual run confirms)")
    share = total.unconfirmed / total.executed_findings if total.executed_findings else 0.0
    weakest = min(((r["counts"].breaks[0] / r["counts"].breaks[1], r["workload"]) for r in rows
                   if r["role"] == "recall" and r["counts"].breaks[1]), default=None)
    print()
    print(f"break/skip recall {ratio(total.breaks)} (target >= {TARGETS['break_skip']}); weakest package: "
          + (f"{weakest[1]} {weakest[0]:.2f} (target >= {TARGETS['break_skip_per_package']})" if weakest else "n/a"))
    print(f"recompile recall {ratio(total.recompiles)}, repeating lines {ratio(total.repeating)} "
          f"(target >= {TARGETS['recompile']})")
    print(f"in frames the linter predicts a reported break splits off (reported apart): recompile "
          f"{ratio([total.recompiles[0] + total.split_recompiles, total.recompiles[1]])}; the predicted frames that "
          f"ran: {total.split_frames[0]}/{total.split_frames[1]} traced by dynamo as frames of their own")
    print(f"explained by a flagged break (counterfactual run, reported apart): break/skip "
          f"{cf_total.with_explained(total.breaks, cf_total.explained_breaks)}, recompile "
          f"{cf_total.with_explained(total.recompiles, cf_total.explained_recompiles)}; "
          f"unconfirmed findings the counterfactual run confirms: {cf_total.confirmed_by_counterfactual}")
    neither = total.unconfirmed - cf_total.confirmed_by_counterfactual
    print(f"unconfirmed findings on executed lines (no event of either dynamo run confirms them): "
          f"{neither}/{total.executed_findings} = {_share(neither, total.executed_findings)} "
          f"(target <= {TARGETS['unconfirmed_share']:.0%}); "
          f"by the normal run alone: {total.unconfirmed}/{total.executed_findings} = {share:.1%}")
    print(f"{len(rows)} workloads in {time.perf_counter() - started:.0f} s; raw results in {work}")
    for failure in failures:
        print(f"FAILED {failure}")
    if args.json:
        Path(args.json).write_text(json.dumps([{**r, "counts": r["counts"].__dict__} for r in rows], indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
