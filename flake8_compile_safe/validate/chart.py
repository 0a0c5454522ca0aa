"""chart.png: what dynamo did before and after the fix, and what it bought in latency.

Left: graphs, graph breaks, frame skips, recompiles, CUDA-graph skips and re-records per compiled
variant (the number on each bar). Right: the p50 latency of every row (whisker: p90), each bar
labelled with its milliseconds, its speedup over the original run eagerly and, for compiled
rows of another variant, over the original compiled and over the row's own eager run (timed
interleaved: the figure that machine load moves least); a note below when the eager runs disagree
(:func:`.table.timing_note`). The title names the workload, the device and torch.
:func:`chart_data` computes all of it (tested without drawing); :func:`draw_chart` draws it with
matplotlib (the ``[validate]`` extra).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from .records import ModeResult
from .table import BASELINE, timing_note

COUNTS = [("graphs", "unique_graphs"), ("graph breaks", "graph_breaks"), ("frame skips", "frame_skips"),
          ("recompiles", "recompiles"), ("CUDA-graph skips", "_cg_skips"),
          ("CUDA-graph re-records", "predicted_cudagraph_rerecords")]
COLORS = {BASELINE: "#d95f02", "eager": "#9e9e9e"}
OTHER_COLOR = "#1b9e77"


def _count(row: ModeResult, key: str) -> int:
    if key == "_cg_skips":
        return row.cudagraph_skips if row.cudagraph_skips is not None else row.predicted_cudagraph_skips
    return int(getattr(row, key))


def _color(row: ModeResult) -> str:
    if row.mode == "eager":
        return COLORS["eager"]
    return COLORS.get(row.variant, OTHER_COLOR)


def chart_data(rows: list[ModeResult], meta: dict) -> dict:
    """Titles, the count groups and the latency bars with their labels."""
    compiled = [r for r in rows if r.mode != "eager" and r.error is None]
    predicted = any(r.cudagraph_skips is None for r in compiled)
    count_labels = [name + (" (pred)" if predicted and name.startswith("CUDA") else "") for name, _ in COUNTS]
    count_series = [{"label": f"{r.variant} {r.mode}", "color": _color(r),
                     "values": [_count(r, key) for _, key in COUNTS]} for r in compiled]
    base = {r.mode: r for r in rows if r.variant == BASELINE}
    base_eager = base.get("eager")
    bars = []
    for r in rows:
        if r.latency_ms_median is None:
            continue
        label = [f"{r.latency_ms_median:.1f} ms"]
        if r is base_eager:
            label.append("the reference")
        elif base_eager is not None and base_eager.latency_ms_median:
            label.append(f"{base_eager.latency_ms_median / r.latency_ms_median:.2f}x vs orig eager")
        same = base.get(r.mode)
        if r.mode != "eager" and r.variant != BASELINE and same is not None and same.latency_ms_median:
            label.append(f"{same.latency_ms_median / r.latency_ms_median:.2f}x vs orig compiled")
        if r.mode != "eager" and r.variant != BASELINE and r.speedup_vs_eager:
            label.append(f"{r.speedup_vs_eager:.2f}x vs its eager")
        bars.append({"name": f"{r.variant}\n{r.mode}", "color": _color(r), "p50": r.latency_ms_median,
                     "p90": r.latency_ms_p90 or r.latency_ms_median, "label": "\n".join(label)})
    workload = meta.get("workload") or meta.get("model", "")
    threads = f", {meta['threads']} thread{'s' if meta['threads'] != 1 else ''}" if meta.get("threads") else ""
    title = f"{workload} on {meta.get('device', '?')} (torch {meta.get('torch', '?')}{threads})"
    return {"title": title, "subtitle": meta.get("about", ""), "count_labels": count_labels,
            "count_series": count_series, "bars": bars,
            "latency_title": "latency of one run: p50 (whisker p90)",
            "latency_note": timing_note(rows, bool(meta.get("lockstep")))}


def draw_chart(path: Path, rows: list[ModeResult], meta: dict) -> bool:
    """Write the chart; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    data = chart_data(rows, meta)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6.2), gridspec_kw={"width_ratios": [1.25, 1]})
    _draw_counts(ax1, data)
    _draw_latency(ax2, data)
    fig.suptitle(data["title"], fontsize=13, fontweight="bold")
    if data["subtitle"]:
        fig.text(0.5, 0.905, textwrap.fill(data["subtitle"], 150), ha="center", va="top", fontsize=8.5,
                 color="#444444")
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _draw_counts(ax, data: dict) -> None:
    series, labels = data["count_series"], data["count_labels"]
    n = max(1, len(series))
    width = 0.8 / n
    for i, s in enumerate(series):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(labels))]
        ax.bar(xs, s["values"], width, color=s["color"], label=s["label"])
        for x, v in zip(xs, s["values"]):
            ax.annotate(str(v), (x, v), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
    ax.set_xticks(range(len(labels)), [textwrap.fill(label, 12) for label in labels], fontsize=8.5)
    ax.set_ylabel("count over the whole workload (fewer is better)")
    ax.set_title("what dynamo did, before and after the fix")
    ax.margins(y=0.12)
    if series:
        ax.legend(fontsize=8.5)


def _draw_latency(ax, data: dict) -> None:
    bars = data["bars"]
    xs = list(range(len(bars)))
    p50 = [b["p50"] for b in bars]
    whisker = [max(0.0, b["p90"] - b["p50"]) for b in bars]
    ax.bar(xs, p50, yerr=[[0] * len(bars), whisker], color=[b["color"] for b in bars], capsize=4)
    top = max((b["p90"] for b in bars), default=1.0)
    for x, b in zip(xs, bars):
        ax.text(x, b["p50"] / 2, b["label"], ha="center", va="center", fontsize=7.5, color="black",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85, "linewidth": 0})
    ax.set_xticks(xs, [b["name"] for b in bars], fontsize=8.5)
    ax.set_ylim(0, top * 1.1)
    ax.set_ylabel("ms (lower is better)")
    ax.set_title(data["latency_title"])
    if data.get("latency_note"):
        ax.set_xlabel(textwrap.fill(data["latency_note"].replace("`", ""), 95), fontsize=7.5, color="#b2182b")
