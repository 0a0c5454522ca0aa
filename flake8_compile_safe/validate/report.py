"""What ``compile-safe-validate`` prints and writes: checklist, table, events, report.md, chart.png."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .records import ModeResult


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
    compiled p50 in the same mode (what a user compares; timed in another process)."""
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


# ---------------------------------------------------------------------------------------------
# table

COLUMNS = [("variant", "variant", "{}"), ("mode", "mode", "{}"), ("graphs", "unique_graphs", "{}"),
           ("breaks", "graph_breaks", "{}"), ("skips", "frame_skips", "{}"), ("recomp", "recompiles", "{}"),
           ("cg skip", "_cg", "{}"), ("cg rerec", "_rerec", "{}"), ("max|diff|", "max_abs_diff", "{:.2e}"),
           ("p50 ms", "latency_ms_median", "{:.1f}"), ("p90 ms", "latency_ms_p90", "{:.1f}"),
           ("cpu ms", "cpu_ms_median", "{:.1f}"),
           ("compile s", "compile_s", "{:.1f}"), ("mem MB", "peak_mem_mb", "{:.0f}"),
           ("speedup", "speedup_vs_eager", "{:.2f}x"),
           ("|diff| orig eager", "max_abs_diff_vs_reference_eager", "{:.2e}"),
           ("vs orig eager", "speedup_vs_original_eager", "{:.2f}x"),
           ("vs orig comp", "speedup_vs_original_compiled", "{:.2f}x"),
           ("vs orig eager cpu", "cpu_speedup_vs_original_eager", "{:.2f}x")]


def _extra_keys(rows: list[ModeResult]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r.extra if k not in keys]
    return keys


def _fmt(value, fmt: str) -> str:
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


_COUNTS = ("variant", "mode", "unique_graphs", "graph_breaks", "frame_skips", "recompiles")


def _cell(row: ModeResult, key: str, fmt: str) -> str:
    compiled = row.mode != "eager"
    if key == "_cg":
        if not compiled:
            return "-"
        if row.cudagraph_skips is not None:
            return str(row.cudagraph_skips)
        return f"{row.predicted_cudagraph_skips} (pred)"
    if key == "_rerec":
        return f"{row.predicted_cudagraph_rerecords} (pred)" if compiled else "-"
    if compiled and row.error is not None and key not in _COUNTS:
        return "error" if key == "max_abs_diff" else "-"
    if key.startswith("extra."):
        return _fmt(row.extra.get(key[6:]), "{:.4g}")
    return _fmt(getattr(row, key), fmt)


def _columns(rows):
    return COLUMNS + [(k, f"extra.{k}", "{:.4g}") for k in _extra_keys(rows)]


def format_table(rows: list[ModeResult]) -> str:
    columns = _columns(rows)
    cells = [[h for h, _, _ in columns]] + [[_cell(r, k, f) for _, k, f in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[ModeResult]) -> list[str]:
    columns = _columns(rows)
    out = ["| " + " | ".join(h for h, _, _ in columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_cell(r, k, f) for _, k, f in columns) + " |" for r in rows]
    return out


def _flag_text(flagged) -> str:
    if flagged is None:
        return "lint n/a"
    return "TCS:" + ",".join(flagged) if flagged else "not flagged"


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
            out.append(f"  {e.kind:<28} {where:<34} x{e.count:<3} [{_flag_text(e.flagged)}] {e.reason[:100]}")
        br, rc = r.break_recall, r.recompile_recall
        out.append(f"  static recall: breaks/skips {_ratio(br)}, recompiles {_ratio(rc)}")
        if r.unconfirmed_findings:
            out.append(f"  {len(r.unconfirmed_findings)} findings on executed lines where dynamo said nothing "
                       "(a GPU-only hazard or a false alarm: this run cannot tell which):")
            for u in r.unconfirmed_findings[:limit]:
                out.append(f"    {u.code} {u.file}:{u.line} {u.message[:100]}")
    return "\n".join(out)


def _ratio(recall) -> str:
    value = recall.value
    text = f"{recall.flagged}/{recall.total} lines flagged" + (f" ({value:.0%})" if value is not None else "")
    return text + (f", {recall.outside} outside the tree" if recall.outside else "")


# ---------------------------------------------------------------------------------------------
# report.md and chart.png


def _chart(path: Path, rows: list[ModeResult]) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = [f"{r.variant}\n{r.mode}" for r in rows]
    metric = next((k for k in _extra_keys(rows) if not k.endswith("_diff")), None)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8, 3.2 * len(rows)), 4.2))
    med = [r.latency_ms_median or 0.0 for r in rows]
    p90 = [max(0.0, (r.latency_ms_p90 or 0.0) - (r.latency_ms_median or 0.0)) for r in rows]
    colors = ["#999999" if r.mode == "eager" else ("#e34a33" if r.variant == "original" else "#2b8cbe") for r in rows]
    ax1.bar(range(len(rows)), med, yerr=[[0] * len(rows), p90], color=colors, capsize=4)
    ax1.set_xticks(range(len(rows)), labels, fontsize=8)
    ax1.set_ylabel("latency of one run(model), ms (bar p50, whisker p90)")
    ax1.set_title("Latency per variant")
    if metric:
        ax2.bar(range(len(rows)), [r.extra.get(metric, 0.0) for r in rows], color=colors)
        ax2.set_ylabel(metric)
        ax2.set_title(f"{metric} per variant")
    else:
        ax2.bar(range(len(rows)), [r.max_abs_diff or 0.0 for r in rows], color=colors)
        ax2.set_ylabel("max abs diff vs eager")
        ax2.set_title("Compiled vs eager")
    ax2.set_xticks(range(len(rows)), labels, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(report_dir: Path, rows: list[ModeResult], checks: list[Check], meta: dict) -> list[str]:
    report_dir.mkdir(parents=True, exist_ok=True)
    chart_ok = _chart(report_dir / "chart.png", rows)
    md = ["# compile-safe-validate report", "",
          f"- model: `{meta['model']}`, path: `{meta['path']}`",
          f"- device: {meta['device']}, torch {meta['torch']}, warm-up {meta['warmup']}, timed runs {meta['runs']}, "
          f"workload arguments: {meta['workload_args'] or 'none'}",
          f"- command: `{meta['command']}`", ""]
    if meta.get("fixer"):
        fx = meta["fixer"]
        md += [f"- fixer: compile-safe-fix --strategy {fx['strategy']}: {fx['changed']} files changed, "
               f"{fx['fixes']} fixes ({fx['seconds']} s)", ""]
    md += ["## Results", "", *markdown_table(rows), "", "## Checklist", ""]
    for c in checks:
        md.append(f"- [{'x' if c.ok else ' '}] {c.variant} / {c.mode}: {c.check} (value: {c.value})")
    if not checks:
        md.append("- (no compiled rows to check)")
    md += ["", "## Dynamo events and static recall", "", "```", format_events(rows, limit=200) or "(none)", "```",
           "", "`[TCS:...]`: the codes `flake8 --select=TCS` reports within 2 lines of the event; "
           "`[not flagged]`: none; `[lint n/a]`: the linter did not run, or the line is outside the tree."]
    md += ["", "![latency and accuracy](chart.png)" if chart_ok else
           "(chart not written: matplotlib is not installed; `pip install flake8-compile-safe[validate]`)"]
    (report_dir / "report.md").write_text("\n".join(md) + "\n")
    return [str(report_dir / "report.md")] + ([str(report_dir / "chart.png")] if chart_ok else [])
