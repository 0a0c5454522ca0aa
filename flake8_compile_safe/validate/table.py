"""The results table of ``compile-safe-validate``: its columns, their legend, text and Markdown forms.

Speedups are given three ways, because a user compares the fixed model with the original one:
``vs eager`` (the same variant's eager run), ``vs orig eager`` (the original, not compiled) and
``vs orig comp`` (the original compiled in the same mode). No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .records import ModeResult

BASELINE = "original"
PRED = "(pred)"


@dataclass(frozen=True)
class Column:
    header: str
    legend: str
    cell: Callable[[ModeResult, "Context"], str]


@dataclass
class Context:
    """What a cell may need besides its own row: the original variant's rows, by mode."""

    baseline: dict[str, ModeResult]
    compare: bool  # more than one variant: show the speedups against the original


def _fmt(value, fmt: str) -> str:
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _ratio(num: float | None, den: float | None) -> str:
    if not num or not den:
        return "-"
    return f"{num / den:.2f}x"


def _compiled(row: ModeResult) -> bool:
    return row.mode != "eager"


def _measured(key: str, fmt: str):
    """A figure of a compiled run: '-' on eager rows for compile-only figures, and on failed modes."""

    def cell(row: ModeResult, ctx: Context) -> str:
        if _compiled(row) and row.error is not None:
            return "error" if key == "max_abs_diff" else "-"
        if key == "max_abs_diff" and not _compiled(row):
            return "-"  # eager is the reference
        return _fmt(getattr(row, key), fmt)

    return cell


def _count(key: str):
    return lambda row, ctx: str(getattr(row, key)) if _compiled(row) else "-"


def _cg_skips(row: ModeResult, ctx: Context) -> str:
    if not _compiled(row):
        return "-"
    if row.cudagraph_skips is not None:
        return str(row.cudagraph_skips)
    return f"{row.predicted_cudagraph_skips} {PRED}"


def _cg_rerecords(row: ModeResult, ctx: Context) -> str:
    return f"{row.predicted_cudagraph_rerecords} {PRED}" if _compiled(row) else "-"


def _vs_eager(row: ModeResult, ctx: Context) -> str:
    if row.error is not None and _compiled(row):
        return "-"
    return _fmt(row.speedup_vs_eager, "{:.2f}x")


def _vs_original_eager(row: ModeResult, ctx: Context) -> str:
    base = ctx.baseline.get("eager")
    if base is None or (row.error is not None and _compiled(row)):
        return "-"
    return _ratio(base.latency_ms_median, row.latency_ms_median)


def _vs_original_compiled(row: ModeResult, ctx: Context) -> str:
    base = ctx.baseline.get(row.mode)
    if not _compiled(row) or base is None or base.error is not None or row.error is not None:
        return "-"
    return _ratio(base.latency_ms_median, row.latency_ms_median)


BASE_COLUMNS = [
    Column("variant", "the source tree: original, or fixed (a copy rewritten by compile-safe-fix)",
           lambda r, c: r.variant),
    Column("mode", "eager (not compiled: the reference), or the torch.compile mode", lambda r, c: r.mode),
    Column("graphs", "graphs dynamo compiled (1: the whole forward in one graph)", _count("unique_graphs")),
    Column("breaks", "graph breaks: dynamo ended a graph, ran Python, and started another", _count("graph_breaks")),
    Column("skips", "frame skips: functions dynamo gave up on and ran eagerly", _count("frame_skips")),
    Column("recomp", "recompiles: a guard failed (a new value, shape or type) and a function was compiled again",
           _count("recompiles")),
    Column("cg skip", "CUDA-graph skips: graphs CUDA graphs would not capture (an input written in place that is "
           f"not static); {PRED}: predicted on CPU from the AOT metadata, counted only on a GPU", _cg_skips),
    Column("cg rerec", "CUDA-graph re-records: graphs called with new int or size inputs, one CUDA graph "
           f"recorded per new value under reduce-overhead; {PRED} as above", _cg_rerecords),
    Column("max diff", "largest absolute difference of the output, compiled vs eager of the same variant",
           _measured("max_abs_diff", "{:.1e}")),
    Column("p50 ms", "median wall time of one run of the workload", _measured("latency_ms_median", "{:.1f}")),
    Column("p90 ms", "90th percentile of the same", _measured("latency_ms_p90", "{:.1f}")),
    Column("cpu ms", "median process CPU time of one run (user + system)", _measured("cpu_ms_median", "{:.1f}")),
    Column("compile s", "first compiled run minus one steady run", lambda r, c: (
        _measured("compile_s", "{:.1f}")(r, c) if _compiled(r) else "-")),
    Column("mem MB", "peak memory: the process's peak RSS on CPU (it only grows during a run), "
           "max allocated on CUDA", _measured("peak_mem_mb", "{:.0f}")),
    Column("vs eager", "speedup over the same variant's eager run (eager p50 / this p50; timed interleaved)",
           _vs_eager),
]
COMPARE_COLUMNS = [
    Column("vs orig eager", "speedup over the ORIGINAL model run eagerly (its p50 / this p50): what compiling "
           "the fixed code buys over not compiling the original; timed in another process, in lockstep with "
           "this one (their timed runs alternate, so both see the same machine load)", _vs_original_eager),
    Column("vs orig comp", "speedup over the ORIGINAL compiled in the same mode: what the fix adds to "
           "torch.compile", _vs_original_compiled),
    Column("vs orig eager cpu", "the same as vs orig eager by process CPU time (CPU time is not stretched by "
           "other jobs on the machine)", _measured("cpu_speedup_vs_original_eager", "{:.2f}x")),
    Column("diff orig eager", "largest absolute difference of the output vs the ORIGINAL model run eagerly",
           _measured("max_abs_diff_vs_reference_eager", "{:.1e}")),
]


# Two eager runs of code the fix barely touches that differ more than this: the machine's load changed
# between the two worker processes (timed one after the other), and the speedups against the
# original (cross-process) mislead. Timed in lockstep, the load is shared: the eager paths differ.
EAGER_SPREAD = 1.5


def timing_note(rows: list[ModeResult], lockstep: bool = False) -> str | None:
    """A warning when the variants' eager runs differ so much that the cross-process speedups may mislead."""
    base = next((r for r in rows if r.variant == BASELINE and r.mode == "eager"), None)
    if base is None or not base.latency_ms_median:
        return None
    for r in rows:
        if r.mode != "eager" or r is base or not r.latency_ms_median:
            continue
        spread = max(r.latency_ms_median, base.latency_ms_median) / min(r.latency_ms_median, base.latency_ms_median)
        if spread > EAGER_SPREAD:
            if lockstep:
                return (f"note: the {r.variant} and original eager runs differ {spread:.1f}x "
                        f"({r.latency_ms_median:.1f} vs {base.latency_ms_median:.1f} ms p50), timed in lockstep "
                        "under the same load: the fix changed the eager path that much")
            return (f"note: the {r.variant} and original eager runs differ {spread:.1f}x "
                    f"({r.latency_ms_median:.1f} vs {base.latency_ms_median:.1f} ms p50); unless the fix changed "
                    "the eager path that much, the machine's load changed between the two worker processes: "
                    "trust `vs eager` (timed interleaved) over the `vs orig` columns, or rerun on a quiet machine")
    return None


def _extra_keys(rows: list[ModeResult]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r.extra if k not in keys]
    return keys


def _extra_column(key: str, legend: dict[str, str]) -> Column:
    if key.endswith("_diff") and key[:-5] in legend:
        text = f"|compiled - eager| of {key[:-5]}: 0 means the compiled model gives the same {key[:-5]}"
    elif key.endswith("_diff"):
        text = f"|compiled - eager| of {key[:-5]}"
    else:
        text = legend.get(key, "a figure from the workload's metrics(output)")

    def cell(row: ModeResult, ctx: Context) -> str:
        if key.endswith("_diff") and not _compiled(row):
            return "-"
        return _fmt(row.extra.get(key), "{:.4g}")

    return Column(key, text, cell)


def columns(rows: list[ModeResult], metric_legend: dict[str, str] | None = None) -> tuple[list[Column], Context]:
    baseline = {r.mode: r for r in rows if r.variant == BASELINE}
    compare = bool(baseline) and any(r.variant != BASELINE for r in rows)
    cols = BASE_COLUMNS + (COMPARE_COLUMNS if compare else [])
    cols = cols + [_extra_column(k, metric_legend or {}) for k in _extra_keys(rows)]
    return cols, Context(baseline, compare)


def cells(rows: list[ModeResult], metric_legend: dict[str, str] | None = None) -> tuple[list[Column], list[list[str]]]:
    cols, ctx = columns(rows, metric_legend)
    return cols, [[col.cell(r, ctx) for col in cols] for r in rows]


def format_table(rows: list[ModeResult], metric_legend: dict[str, str] | None = None) -> str:
    cols, body = cells(rows, metric_legend)
    grid = [[c.header for c in cols]] + body
    widths = [max(len(line[i]) for line in grid) for i in range(len(cols))]
    lines = ["  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in grid]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def legend_lines(rows: list[ModeResult], metric_legend: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(header, meaning) for every column of the table, in order."""
    cols, _ = columns(rows, metric_legend)
    return [(c.header, c.legend) for c in cols]


def format_legend(rows: list[ModeResult], metric_legend: dict[str, str] | None = None) -> str:
    items = legend_lines(rows, metric_legend)
    width = max(len(h) for h, _ in items)
    return "\n".join(f"  {h.ljust(width)}  {text}" for h, text in items)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def markdown_table(rows: list[ModeResult], metric_legend: dict[str, str] | None = None) -> list[str]:
    cols, body = cells(rows, metric_legend)
    out = ["| " + " | ".join(_md_cell(c.header) for c in cols) + " |",
           "|" + "|".join("---" if i < 2 else "--:" for i in range(len(cols))) + "|"]
    out += ["| " + " | ".join(_md_cell(cell) for cell in line) + " |" for line in body]
    return out


def markdown_legend(rows: list[ModeResult], metric_legend: dict[str, str] | None = None) -> list[str]:
    return [f"- **{_md_cell(h)}**: {text}" for h, text in legend_lines(rows, metric_legend)]
