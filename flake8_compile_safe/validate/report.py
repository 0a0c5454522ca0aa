"""What ``compile-safe-validate`` prints and writes: checklist, events with recall, report.md.

The table and its legend live in :mod:`.table`, the chart in :mod:`.chart`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .chart import draw_chart
from .guards import SHORT, describe_unflagged, guard_kind
from .records import RECOMPILE_KINDS, ModeResult
from .table import format_legend, format_table, markdown_legend, markdown_table, timing_note

__all__ = ["Check", "checklist", "format_events", "format_legend", "format_table", "write_report"]


@dataclass
class Check:
    variant: str
    mode: str
    check: str
    value: object
    ok: bool

    def to_json(self) -> dict:
        return dict(self.__dict__)


BASELINE = "original"


def compare_with_original(rows: list[ModeResult]) -> None:
    """Fill the speedups of every other variant's rows against the original's: its eager p50 and its
    compiled p50 in the same mode (what a user compares; timed in another process, in lockstep with
    this one when both ran together: :mod:`.lockstep`)."""
    base = {r.mode: r for r in rows if r.variant == BASELINE and r.error is None}
    eager = base.get("eager")
    for r in rows:
        if r.variant == BASELINE or not r.latency_ms_median:
            continue
        if eager is not None and eager.latency_ms_median:
            r.speedup_vs_original_eager = eager.latency_ms_median / r.latency_ms_median
        if eager is not None and eager.cpu_ms_median and r.cpu_ms_median:
            r.cpu_speedup_vs_original_eager = eager.cpu_ms_median / r.cpu_ms_median
        same = base.get(r.mode)
        if r.mode != "eager" and same is not None and same.latency_ms_median:
            r.speedup_vs_original_compiled = same.latency_ms_median / r.latency_ms_median


def checklist(rows: list[ModeResult], target: str, min_speedup: float, atol: float) -> list[Check]:
    """Checked on the compiled modes of the ``target`` variant."""
    items: list[Check] = []
    for r in rows:
        if r.variant != target or r.mode == "eager":
            continue
        items.append(Check(target, r.mode, "runs under torch.compile", r.error or "ok", r.error is None))
        if r.error is not None:
            continue
        measured = r.cudagraph_skips is not None
        skips = r.cudagraph_skips if measured else r.predicted_cudagraph_skips
        what = "CUDA-graph skips" if measured else "predicted CUDA-graph skips"
        speedup = r.speedup_vs_eager or 0.0
        diff = r.max_abs_diff if r.max_abs_diff is not None else float("inf")
        items += [
            Check(target, r.mode, f"max abs diff vs eager < {atol:g}", r.max_abs_diff, diff < atol),
            Check(target, r.mode, f"no {what}", skips, skips == 0),
            Check(target, r.mode, "no recompiles after warm-up", r.recompiles_after_warmup,
                  r.recompiles_after_warmup == 0),
            Check(target, r.mode, f"speedup over eager >= {min_speedup:g}", round(speedup, 3), speedup >= min_speedup),
        ]
        if r.max_abs_diff_vs_reference_eager is not None:
            items.append(Check(target, r.mode, f"max abs diff vs the original eager < {atol:g}",
                               r.max_abs_diff_vs_reference_eager, r.max_abs_diff_vs_reference_eager < atol))
    return items


def _flag_text(event) -> str:
    if event.flagged is None:
        return "lint n/a"
    if event.flagged:
        return "TCS:" + ",".join(event.flagged)
    if event.kind in RECOMPILE_KINDS:
        split = f"; in a frame a flagged break splits off ({event.split})" if event.split else ""
        return f"not flagged: {SHORT[guard_kind(event.reason)]}{split}"
    return "not flagged"


def recall_lines(row: ModeResult) -> list[str]:
    """The static recall of a compiled row, said so that it explains itself."""
    br, rc = row.break_recall, row.recompile_recall
    out = [f"static recall (dynamo's event lines that carry a TCS finding within 2 lines): "
           f"breaks/skips {_ratio(br)}; recompiles {_ratio(rc)}"]
    missed = rc.total - rc.flagged
    if missed:
        out.append(f"  the {missed} recompile line{'s' if missed != 1 else ''} without a finding: "
                   + describe_unflagged(rc.unflagged, rc.examples))
    if rc.split:
        traced = sum(1 for *_, hit in row.split_frames if hit)
        out.append(f"  {rc.split} of them recompile in a frame the linter predicts a break dynamo reported splits "
                   f"off (each frame of a split model has guards of its own); of the predicted frames whose code "
                   f"ran, dynamo traced {traced}/{len(row.split_frames)} as frames of their own")
    return out


def format_events(rows: list[ModeResult], limit: int = 60) -> str:
    out = []
    for r in rows:
        if r.mode == "eager":
            continue
        if r.error:
            out.append(f"{r.variant} / {r.mode}: ERROR {r.error}")
        if not r.events and not r.unconfirmed_findings:
            continue
        total = sum(e.count for e in r.events)
        out.append(f"{r.variant} / {r.mode}: {total} events on {len(r.events)} lines")
        for i, e in enumerate(r.events):
            if i >= limit:
                out.append(f"  ... {len(r.events) - limit} more (see --json)")
                break
            where = f"{e.file}:{e.line}" if e.file else "?"
            out.append(f"  {e.kind:<28} {where:<34} x{e.count:<3} [{_flag_text(e)}] {e.reason[:100]}")
        out += ["  " + line for line in recall_lines(r)]
        if r.unconfirmed_findings:
            out.append(f"  {len(r.unconfirmed_findings)} findings on executed lines where dynamo said nothing "
                       "(a GPU-only hazard or a false alarm: this run cannot tell which):")
            for u in r.unconfirmed_findings[:limit]:
                out.append(f"    {u.code} {u.file}:{u.line} {u.message[:100]}")
    return "\n".join(out)


def _ratio(recall) -> str:
    value = recall.value
    if not recall.total:
        text = "no lines"
    else:
        text = f"{recall.flagged}/{recall.total} lines flagged" + (f" ({value:.0%})" if value is not None else "")
    return text + (f", {recall.outside} outside the tree" if recall.outside else "")


# ---------------------------------------------------------------------------------------------
# report.md and chart.png


def write_report(report_dir: Path, rows: list[ModeResult], checks: list[Check], meta: dict) -> list[str]:
    report_dir.mkdir(parents=True, exist_ok=True)
    legend = meta.get("metric_legend") or {}
    chart_ok = draw_chart(report_dir / "chart.png", rows, meta)
    md = ["# compile-safe-validate report", ""]
    if meta.get("about"):
        md += [f"**Workload:** {meta['about']}", ""]
    md += [f"- model: `{meta['model']}`, path: `{meta['path']}`",
           f"- device: {meta['device']}, torch {meta['torch']}, warm-up {meta['warmup']}, timed runs {meta['runs']}, "
           f"workload arguments: {meta['workload_args'] or 'none'}",
           f"- command: `{meta['command']}`"]
    if meta.get("lockstep"):
        md.append("- timing: the variants' workers ran at once, their timed runs alternating under one lock "
                  "(each an eager and a compiled run), so the `vs orig` speedups share the machine's load")
    if meta.get("fixer"):
        fx = meta["fixer"]
        md.append(f"- fixer: compile-safe-fix --strategy {fx['strategy']}: {fx['changed']} files changed, "
                  f"{fx['fixes']} fixes ({fx['seconds']} s); the fixed copy: `{fx.get('dest', '?')}`")
    note = timing_note(rows, bool(meta.get("lockstep")))
    md += ["", "## Results", "", *markdown_table(rows, legend), *(["", f"**{note}**"] if note else []),
           "", "Columns:", "", *markdown_legend(rows, legend), "", "## Checklist", ""]
    for c in checks:
        md.append(f"- [{'x' if c.ok else ' '}] {c.variant} / {c.mode}: {c.check} (value: {c.value})")
    if not checks:
        md.append("- (no compiled rows to check)")
    md += ["", "## Dynamo events and static recall", "", "```", format_events(rows, limit=200) or "(none)", "```",
           "", "`[TCS:...]`: the codes `flake8 --select=TCS` reports within 2 lines of the event; "
           "`[not flagged]`: none (for a recompile, with the kind of guard that failed, and whether it is in a "
           "frame the linter predicts a flagged break splits off); "
           "`[lint n/a]`: the linter did not run, or the line is outside the tree."]
    md += ["", "![what dynamo did before and after the fix, and the latency](chart.png)" if chart_ok else
           "(chart not written: matplotlib is not installed; `pip install flake8-compile-safe[validate]`)"]
    (report_dir / "report.md").write_text("\n".join(md) + "\n")
    return [str(report_dir / "report.md")] + ([str(report_dir / "chart.png")] if chart_ok else [])
