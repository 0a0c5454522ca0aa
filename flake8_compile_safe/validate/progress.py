"""Progress of a worker run (phase, step, graphs compiled, elapsed), from the worker to the CLI.

A variant's first compiled run can take a minute on a small CPU (inductor compiles every graph
with a C++ compiler). The worker appends one JSON line per change to a progress file
(:class:`ProgressWriter`); the CLI polls it while the worker runs and prints the state
(:class:`ProgressPrinter`): on a terminal one line rewritten in place, elsewhere (a log, CI) one
line per phase plus a heartbeat every :data:`HEARTBEAT_S` seconds. No torch here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HEARTBEAT_S = 15.0
POLL_S = 0.5

PHASES = {
    "build": "building the model",
    "eager": "eager run {step} of {of}",
    "compile": "compiling ({mode}): first run, {graphs} so far",
    "warmup": "warm-up run {step} of {of} ({mode}, {graphs})",
    "timed": "timed run {step} of {of} ({mode}, each next to an eager run)",
    "wait": "waiting for {note}",
    "done": "done",
}


class ProgressWriter:
    """Worker side: ``phase(...)`` and ``graph_compiled(n)`` append JSON lines to ``path`` (or do nothing)."""

    def __init__(self, path: str | None):
        self._file = open(path, "a", buffering=1) if path else None
        self._start = time.monotonic()
        self.state: dict = {"phase": "build", "mode": None, "step": None, "of": None, "graphs": 0, "note": None}

    def _write(self) -> None:
        if self._file is not None:
            self._file.write(json.dumps({**self.state, "t": round(time.monotonic() - self._start, 1)}) + "\n")

    def phase(self, phase: str, mode: str | None = None, step: int | None = None, of: int | None = None,
              note: str | None = None) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        if phase == "wait":  # keeps the mode and step it waits in
            mode, step, of = self.state["mode"], self.state["step"], self.state["of"]
        self.state.update(phase=phase, mode=mode, step=step, of=of, note=note)
        if phase == "compile":
            self.state["graphs"] = 0
        self._write()

    def graph_compiled(self, count: int) -> None:
        self.state["graphs"] = count
        self._write()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _graphs(n: int) -> str:
    return f"{n} graph" + ("" if n == 1 else "s")


def describe(state: dict) -> str:
    """``compiling (default): first run, 14 graphs so far, 23 s``."""
    text = PHASES.get(state.get("phase"), str(state.get("phase"))).format(
        mode=state.get("mode") or "-", step=state.get("step") or "?", of=state.get("of") or "?",
        graphs=_graphs(state.get("graphs") or 0), note=state.get("note") or "another worker")
    return f"{text}, {state.get('t', 0):.0f} s"


class ProgressPrinter:
    """CLI side: prints a worker's progress lines as they arrive."""

    def __init__(self, prefix: str, stream=None, tty: bool | None = None, heartbeat_s: float = HEARTBEAT_S):
        self.prefix = prefix
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.heartbeat_s = heartbeat_s
        self.state: dict | None = None
        self._printed_phase: tuple | None = None
        self._printed_at = 0.0
        self._printed_state: dict | None = None
        self._width = 0

    def feed(self, lines: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for line in lines:
            try:
                self.state = json.loads(line)
            except ValueError:
                continue  # a line being written: the next poll has it whole
            if not self.tty:
                self._maybe_print_line(now)
        if self.tty and self.state is not None:
            self._rewrite()

    def _maybe_print_line(self, now: float) -> None:
        state = self.state
        key = (state.get("phase"), state.get("mode"))
        if key != self._printed_phase or (now - self._printed_at >= self.heartbeat_s and state != self._printed_state):
            self.stream.write(f"{self.prefix}{describe(state)}\n")
            self.stream.flush()
            self._printed_phase, self._printed_at, self._printed_state = key, now, state

    def _rewrite(self) -> None:
        text = f"{self.prefix}{describe(self.state)}"
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def finish(self) -> None:
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def run_with_progress(cmd: list[str], log_path: Path, progress_path: Path, printer: ProgressPrinter,
                      env: dict, timeout: float) -> int:
    """Run the worker with stdout/stderr to ``log_path``, printing its progress; its exit status.

    Raises ``subprocess.TimeoutExpired`` (after killing it) when it runs past ``timeout`` seconds.
    """
    progress_path.write_text("")
    started = time.monotonic()
    with open(log_path, "w") as log, open(progress_path) as progress:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        buffer = ""
        try:
            while True:
                try:
                    code = proc.wait(timeout=POLL_S)
                except subprocess.TimeoutExpired:
                    code = None
                buffer += progress.read()
                *lines, buffer = buffer.split("\n")
                printer.feed(lines)
                if code is not None:
                    return code
                if time.monotonic() - started > timeout:
                    proc.kill()
                    proc.wait()
                    raise subprocess.TimeoutExpired(cmd, timeout)
        except BaseException:
            if proc.poll() is None:  # interrupted: do not leave the worker running
                proc.kill()
                proc.wait()
            raise
        finally:
            printer.finish()


class WorkerFailed(Exception):
    """A worker of :func:`run_all_with_progress` exited non-zero; the others were stopped."""

    def __init__(self, index: int, code: int):
        super().__init__(f"worker {index} exited {code}")
        self.index, self.code = index, code


def run_all_with_progress(jobs: list[tuple[list[str], Path, Path, ProgressPrinter]], env: dict,
                          timeout: float) -> list[int]:
    """Run the workers ``(cmd, log_path, progress_path, printer)`` at once, printing their progress.

    For workers that wait on each other (:mod:`.lockstep`): the first to exit non-zero stops the
    others (``WorkerFailed`` names it), so none waits forever for a partner that is gone.
    Raises ``subprocess.TimeoutExpired`` (after killing them all) past ``timeout`` seconds.
    With several jobs every printer prints line by line (two lines rewritten in place would clash).
    """
    started = time.monotonic()
    procs, streams = [], []
    try:
        for cmd, log_path, progress_path, printer in jobs:
            if len(jobs) > 1:
                printer.tty = False
            progress_path.write_text("")
            log = open(log_path, "w")
            streams.append((log, open(progress_path), [""]))
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
        while True:
            time.sleep(POLL_S)
            codes = [proc.poll() for proc in procs]
            for (_, progress, buffer), (_, _, _, printer) in zip(streams, jobs):
                buffer[0] += progress.read()
                *lines, buffer[0] = buffer[0].split("\n")
                printer.feed(lines)
            failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                raise WorkerFailed(failed[0], codes[failed[0]])
            if all(code is not None for code in codes):
                return codes
            if time.monotonic() - started > timeout:
                raise subprocess.TimeoutExpired([job[0] for job in jobs], timeout)
    finally:
        for proc in procs:
            if proc.poll() is None:  # failed, timed out or interrupted: leave nothing running
                proc.kill()
                proc.wait()
        for log, progress, _ in streams:
            log.close()
            progress.close()
        for *_, printer in jobs:
            printer.finish()
