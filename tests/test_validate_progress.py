"""Progress while a worker compiles: phase, step, graphs, elapsed, from the worker file to the CLI. No torch."""

from __future__ import annotations

import io
import json
import sys
import textwrap

from flake8_compile_safe.validate.progress import ProgressPrinter, ProgressWriter, describe, run_with_progress


def test_writer_lines_and_their_description(tmp_path):
    path = tmp_path / "p.jsonl"
    w = ProgressWriter(str(path))
    w.phase("build")
    w.phase("compile", "default")
    w.graph_compiled(1)
    w.graph_compiled(14)
    w.phase("timed", "default", 3, 5)
    w.close()
    states = [json.loads(line) for line in path.read_text().splitlines()]
    assert [s["phase"] for s in states] == ["build", "compile", "compile", "compile", "timed"]
    assert describe({**states[2], "t": 23.4}) == "compiling (default): first run, 1 graph so far, 23 s"
    assert describe({**states[3], "t": 40}) == "compiling (default): first run, 14 graphs so far, 40 s"
    assert describe(states[4]).startswith("timed run 3 of 5 (default")


def _line(phase, t, **kw):
    return json.dumps({"phase": phase, "mode": kw.get("mode"), "step": kw.get("step"), "of": kw.get("of"),
                       "graphs": kw.get("graphs", 0), "t": t})


def test_printer_in_a_log_prints_phases_and_heartbeats():
    out = io.StringIO()
    p = ProgressPrinter("[v] original: ", out, tty=False, heartbeat_s=15)
    p.feed([_line("eager", 1, step=1, of=2), _line("eager", 2, step=2, of=2)], now=0)
    p.feed([_line("compile", 3, mode="default")], now=3)
    p.feed([_line("compile", 5, mode="default", graphs=2)], now=5)  # same phase, too soon: quiet
    p.feed([_line("compile", 20, mode="default", graphs=9)], now=20)  # heartbeat
    p.feed([_line("timed", 30, mode="default", step=1, of=5), "{half a li"], now=30)
    p.finish()
    lines = out.getvalue().splitlines()
    assert lines == ["[v] original: eager run 1 of 2, 1 s",
                     "[v] original: compiling (default): first run, 0 graphs so far, 3 s",
                     "[v] original: compiling (default): first run, 9 graphs so far, 20 s",
                     "[v] original: timed run 1 of 5 (default, each next to an eager run), 30 s"]


def test_printer_on_a_terminal_rewrites_one_line():
    out = io.StringIO()
    p = ProgressPrinter("[v] fixed: ", out, tty=True)
    p.feed([_line("compile", 3, mode="default", graphs=12)])
    p.feed([_line("warmup", 9, mode="default", step=2, of=2, graphs=2)])
    p.finish()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "compiling (default): first run, 12 graphs so far, 3 s" in text
    assert "warm-up run 2 of 2 (default, 2 graphs), 9 s" in text


def test_run_with_progress_streams_a_worker(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent("""
        import sys, time
        from flake8_compile_safe.validate.progress import ProgressWriter
        w = ProgressWriter(sys.argv[1])
        w.phase("build"); time.sleep(0.6)
        w.phase("compile", "default"); w.graph_compiled(3); time.sleep(0.6)
        w.phase("done")
        print("worker log line")
    """))
    out = io.StringIO()
    printer = ProgressPrinter("[v] original: ", out, tty=False)
    progress = tmp_path / "p.jsonl"
    code = run_with_progress([sys.executable, str(worker), str(progress)], tmp_path / "log", progress, printer,
                             env=None, timeout=60)
    assert code == 0
    text = out.getvalue()
    assert "building the model" in text and "compiling (default): first run" in text and "done" in text
    assert (tmp_path / "log").read_text().strip() == "worker log line"
