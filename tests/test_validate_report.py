"""What compile-safe-validate shows a reader: report.md rendered by a Markdown parser, the column
legend, speedups against the original, recall lines that say what the unflagged events are, the
chart's content. No torch, no model run."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from flake8_compile_safe.validate.chart import chart_data, draw_chart
from flake8_compile_safe.validate.crosscheck import crosscheck
from flake8_compile_safe.validate.guards import guard_kind
from flake8_compile_safe.validate.records import Event, ModeResult, RunResult
from flake8_compile_safe.validate.report import checklist, format_events, write_report
from flake8_compile_safe.validate.table import format_legend, format_table, legend_lines, timing_note

META = {"model": "pkg.f:tiny", "workload": "fam:tiny", "path": "/src", "device": "cpu", "torch": "2.13.0+cpu",
        "threads": 1, "warmup": 2, "runs": 5, "workload_args": {}, "command": "compile-safe-validate --quick",
        "about": "Fam 'tiny' with RANDOM weights (no checkpoint): prefill then 12 decode steps",
        "metric_legend": {"mae": "forecast MAE; the weights are random: not the model's accuracy"},
        "fixer": {"strategy": "tensor-index", "changed": 2, "fixes": 2, "seconds": 1.2, "dest": "/w/fixed"}}


def _row(variant, mode, p50, **kw):
    compiled = mode != "eager"
    base = dict(unique_graphs=32 if variant == "original" else 2, graph_breaks=23 if variant == "original" else 0,
                recompiles=22 if variant == "original" else 1, max_abs_diff=9.5e-7 if compiled else 0.0,
                latency_ms_median=p50, latency_ms_p90=p50 * 1.1, compile_s=70.0 if compiled else 0.0,
                peak_mem_mb=600.0, speedup_vs_eager=kw.pop("vs_eager", 1.0),
                predicted_cudagraph_rerecords=10 if compiled else 0,
                extra={"mae": 1.57, **({"mae_diff": 0.0} if compiled else {})})
    base.update(kw)
    return ModeResult(variant, mode, **base)


def _rows():
    return [_row("original", "eager", 100.0), _row("original", "default", 80.0, vs_eager=1.25),
            _row("fixed", "eager", 120.0), _row("fixed", "default", 40.0, vs_eager=3.0)]


def _tables(markdown: str):
    """[(header cells, [row cells, ...]), ...] of every table the parser finds."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    tables, current, cells, in_head = [], None, None, False
    for tok in tokens:
        if tok.type == "table_open":
            current = ([], [])
        elif tok.type == "thead_open":
            in_head = True
        elif tok.type == "thead_close":
            in_head = False
        elif tok.type == "tr_open":
            cells = []
        elif tok.type == "inline" and current is not None and cells is not None:
            cells.append(tok.content)
        elif tok.type == "tr_close":
            (current[0].extend(cells) if in_head else current[1].append(cells))
            cells = None
        elif tok.type == "table_close":
            tables.append(current)
            current = None
    return tables


def test_report_md_renders_the_results_table(tmp_path):
    rows = _rows()
    rows[3].extra["p|q"] = 0.5  # a metric name with a pipe must stay one cell
    write_report(tmp_path, rows, checklist(rows, "fixed", 1.0, 1e-3), META)
    md = (tmp_path / "report.md").read_text()
    tables = _tables(md)
    assert len(tables) == 1, "the Results table is not parsed as a table"
    header, body = tables[0]
    assert header[:6] == ["variant", "mode", "graphs", "breaks", "skips", "recomp"]
    assert {"max diff", "vs orig eager", "vs orig comp", "mae", "mae_diff", "p|q"} <= set(header)
    assert len(body) == 4 and all(len(r) == len(header) for r in body)
    fixed = dict(zip(header, body[3]))
    assert fixed["variant"] == "fixed" and fixed["graphs"] == "2" and fixed["cg skip"] == "0 (pred)"
    assert fixed["vs orig eager"] == "2.50x" and fixed["vs orig comp"] == "2.00x" and fixed["p|q"] == "0.5"
    # every column has a legend entry, and the workload says the weights are random
    for name in header:
        assert f"**{name.replace('|', chr(92) + '|')}**:" in md, name
    assert "RANDOM weights" in md and "not the model's accuracy" in md


def test_table_and_legend_agree():
    rows = _rows()
    table = format_table(rows)
    headers = [h for h, _ in legend_lines(rows)]
    for h in headers:
        assert h in table.splitlines()[0]
    legend = format_legend(rows)
    assert len(legend.splitlines()) == len(headers)
    assert "(pred)" in dict(legend_lines(rows))["cg skip"]
    assert "ORIGINAL" in dict(legend_lines(rows))["vs orig comp"]


def test_speedups_against_the_original():
    rows = _rows()
    lines = format_table(rows).splitlines()
    header = lines[0].split("  ")
    assert "vs orig eager" in lines[0] and "vs orig comp" in lines[0]
    fixed_default = lines[5]
    assert "2.50x" in fixed_default and "2.00x" in fixed_default and "3.00x" in fixed_default
    assert "0.83x" in lines[4]  # fixed eager against the original eager: slower, and it says so
    single = [r for r in rows if r.variant == "original"]
    assert "vs orig" not in format_table(single).splitlines()[0], header


@pytest.mark.parametrize("reason, kind", [
    ("tensor 'inputs' size mismatch at index 2. expected 64, actual 80", "shape"),
    ("tensor 'x' stride mismatch at index 0. expected 4, actual 1", "shape"),
    ("layer_idx == 1", "value"),
    ("seq_len == 4", "value"),
    ("expected type of 'attention_mask' to be a tensor type, ' but found <class 'NoneType'>", "type"),
    ("___check_obj_id(L['self'].cache, 1403)", "other"),
])
def test_guard_kind(reason, kind):
    assert guard_kind(reason) == kind


def test_recall_lines_say_what_the_unflagged_recompiles_are(tmp_path):
    a = str(tmp_path / "pkg" / "a.py")

    class F:
        def __init__(self, code, line):
            self.code, self.path, self.line, self.end_line, self.summary = code, a, line, line, "s"

    events = [Event("graph_break", "pkg/a.py", 10, "item"),
              Event("recompile", "pkg/a.py", 11, "layer_idx == 1"),  # flagged by the TCS002 at 10
              Event("recompile", "pkg/a.py", 30, "tensor 'x' size mismatch at index 2. expected 64, actual 80"),
              Event("recompile", "pkg/a.py", 40, "tensor 'y' size mismatch at index 2. expected 4, actual 1"),
              Event("recompile", "pkg/a.py", 50, "seq_len == 4"),
              Event("recompile", "pkg/a.py", 60, "expected type of 'mask' to be a tensor type, ' but found None")]
    results = [ModeResult("original", "eager"), ModeResult("original", "default", events=events)]
    run = RunResult("original", "m:f", str(tmp_path), results=results, executed={"pkg/a.py": [10, 11]})
    crosscheck(run, [F("TCS002", 10)])
    row = run.results[1]
    assert row.recompile_recall.unflagged == {"shape": 2, "value": 1, "type": 1}
    text = format_events(run.results)
    assert "recompiles 1/5 lines flagged (20%)" in text
    assert ("the 4 recompile lines without a finding: 2 tensor-shape guards (an input with a new size" in text)
    assert "1 value guard (on a Python number or flag passed in or read, e.g. `seq_len == 4`)" in text
    assert "1 type guard (an argument that is None" in text
    assert "[not flagged: shape guard]" in text and "[not flagged: type guard]" in text
    assert row.to_json()["static_recall"]["recompile"]["unflagged"] == {"shape": 2, "value": 1, "type": 1}
    assert ModeResult.from_json(row.to_json()).recompile_recall == row.recompile_recall


def test_chart_data_plots_what_the_user_came_for():
    data = chart_data(_rows(), META)
    assert data["title"] == "fam:tiny on cpu (torch 2.13.0+cpu, 1 thread)"
    assert "RANDOM weights" in data["subtitle"]
    assert data["count_labels"][:4] == ["graphs", "graph breaks", "frame skips", "recompiles"]
    assert data["count_labels"][4] == "CUDA-graph skips (pred)"
    series = {s["label"]: s["values"] for s in data["count_series"]}
    assert series["original default"][:4] == [32, 23, 0, 22] and series["fixed default"][:4] == [2, 0, 0, 1]
    labels = {b["name"]: b["label"] for b in data["bars"]}
    assert labels["original\neager"] == "100.0 ms\nthe reference"
    assert labels["fixed\ndefault"] == "40.0 ms\n2.50x vs orig eager\n2.00x vs orig compiled\n3.00x vs its eager"
    assert data["latency_note"] is None  # eager runs 100 vs 120 ms: within the spread
    assert "vs orig compiled" not in labels["original\ndefault"]


def test_chart_png_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    assert draw_chart(tmp_path / "c.png", _rows(), META)
    data = (tmp_path / "c.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_eager_runs_that_disagree_get_a_note_everywhere(tmp_path):
    # measured on a shared machine: the same eager path 49 ms in one worker, 142 ms in the next
    rows = [_row("original", "eager", 49.0), _row("original", "default", 58.6, vs_eager=0.84),
            _row("fixed", "eager", 141.6), _row("fixed", "default", 56.3, vs_eager=2.51)]
    note = timing_note(rows)
    assert note and "differ 2.9x (141.6 vs 49.0 ms p50)" in note and "trust `vs eager`" in note
    assert timing_note(_rows()) is None and timing_note(rows[:2]) is None
    # timed in lockstep the load was shared: a spread is the fix's doing, not the machine's
    shared = timing_note(rows, lockstep=True)
    assert "differ 2.9x" in shared and "timed in lockstep" in shared and "trust" not in shared
    write_report(tmp_path, rows, checklist(rows, "fixed", 1.0, 1e-3), META)
    assert note in (tmp_path / "report.md").read_text()
    assert len(_tables((tmp_path / "report.md").read_text())) == 1
    assert chart_data(rows, META)["latency_note"] == note
