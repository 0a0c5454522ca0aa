"""Dynamo's own verdict, from its logs: graph breaks, frame skips, recompiles with their source lines.

:class:`EventLog` collects the records of dynamo's ``graph_breaks`` and ``recompiles`` log
artifacts (and inductor's CUDA-graph skip messages); :func:`parse_events` turns them into
:class:`~flake8_compile_safe.validate.records.Event` records with absolute file paths. Parsing
needs no torch (the unit tests feed it recorded messages).

Where a recompile points: dynamo lists the guard failures of every cache entry of the frame,
newest entry first, each with the user stack that read the guarded value. The event takes the
first failure's innermost stack frame under the analysed tree (``anchor="guarded_read"``); when
that failure has none (a tensor size or type guard on an argument), the recompiled function's
``def`` line (``anchor="function_def"``). Every other guard that failed on that call
(:mod:`.guard_walk`, a ``GUARDS_RECORD`` right after dynamo's record) goes on the event's ``guards``.
"""

from __future__ import annotations

import json
import logging
import os
import re

from .records import Event

# Shared with benchmarks/dynamo_probe.py: where dynamo names a user source line in its log text.
LOC_RE = re.compile(r"in user code at (?P<file>.+?):(?P<line>\d+)")
RECOMPILE_RE = re.compile(r"Recompiling function (?P<func>\S+) in (?P<file>.+?):(?P<line>\d+)")
STACK_RE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')
_FAILURE_RE = re.compile(r"^\s*- (?P<guard>\d+/\d+): (?P<text>.*)$")
_LOGGERS = ("torch._dynamo", "torch._inductor", "torch")
# Logger name of the record :class:`.guard_walk.FailingGuards` appends after a recompile record:
# a JSON list of [guard text, file, line].
GUARDS_RECORD = "compile_safe.failing_guards"


# Dynamo's INFO record at the start of each frame it traces ("Step 1: torchdynamo start tracing
# forward /path/model.py:36"; a resume frame is "torch_dynamo_resume_in_forward_at_9 ...:9").
FRAME_RE = re.compile(r"torchdynamo start tracing (?P<name>\S+) (?P<file>.+?):(?P<line>\d+)\s*$")
_FRAME_LOGGER = "torch._dynamo.symbolic_convert"


class EventLog(logging.Handler):
    """Collects dynamo's graph-break, recompile and cudagraph log records as (logger, level, text),
    and the INFO record of each frame dynamo starts tracing (only that logger is raised to INFO)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[tuple[str, str, str]] = []
        self._frame_level: int | None = None

    def emit(self, record):  # pragma: no cover - exercised through the worker subprocess
        try:
            self.records.append((record.name, record.levelname, record.getMessage()))
        except Exception:  # noqa: BLE001 - a message that cannot be formatted is not worth a crash
            pass

    def install(self, torch) -> "EventLog":
        torch._logging.set_logs(graph_breaks=True, recompiles=True)
        for name in _LOGGERS:
            logging.getLogger(name).addHandler(self)
        # set_logs installs stderr handlers for these artifacts; keep stderr readable.
        for name in ("torch", "torch._dynamo"):
            for handler in logging.getLogger(name).handlers:
                if handler is not self and isinstance(handler, logging.StreamHandler):
                    handler.setLevel(logging.ERROR)
        frames = logging.getLogger(_FRAME_LOGGER)
        self._frame_level = frames.level
        frames.setLevel(logging.INFO)
        return self

    def remove(self) -> None:
        for name in _LOGGERS:
            logging.getLogger(name).removeHandler(self)
        if self._frame_level is not None:
            logging.getLogger(_FRAME_LOGGER).setLevel(self._frame_level)
            self._frame_level = None


def _first_line(text: str, skip: tuple[str, ...] = ()) -> str:
    for line in text.splitlines():
        s = line.strip()
        if s and not any(s.startswith(p) for p in skip):
            return s[:200]
    return ""


def root_prefixes(roots: list[str]) -> list[str]:
    """Each root as an absolute path prefix ending in a separator (what :func:`_under` compares with)."""
    return [os.path.join(os.path.abspath(r), "") for r in roots]


def _under(path: str, roots: list[str]) -> bool:
    full = os.path.abspath(path)
    return any(full.startswith(r) for r in roots)


def _last_stack_loc(text: str, roots: list[str]):
    """Last ``File "...", line N`` of the text that lies under one of ``roots``."""
    found = None
    for m in STACK_RE.finditer(text):
        if _under(m.group("file"), roots):
            found = (m.group("file"), int(m.group("line")))
    return found


def _first_failure(msg: str) -> tuple[str | None, str, str]:
    """(guard id, guard text, the text of that failure's block) of the first failure listed."""
    lines = msg.splitlines()
    for i, line in enumerate(lines):
        m = _FAILURE_RE.match(line)
        if m and not m.group("text").startswith("User stack"):
            block = [line]
            for nxt in lines[i + 1:]:
                if _FAILURE_RE.match(nxt):
                    break
                block.append(nxt)
            guard_text = re.sub(r"\s+#.*$", "", m.group("text")).strip()
            return m.group("guard"), guard_text, "\n".join(block)
    return None, "", ""


def _graph_break(msg: str, roots: list[str] = ()) -> Event:
    m = LOC_RE.search(msg)
    skip = "Skipping the function and falling back to eager" in msg or "frame skipped" in msg
    reason = _first_line(msg.split("Graph Break Reason:", 1)[-1],
                         ("Encountered graph break", "Failed to handle graph break"))
    return Event(kind="frame_skip" if skip else "graph_break", file=m.group("file") if m else None,
                 line=int(m.group("line")) if m else None, reason=reason, anchor="dynamo" if m else None,
                 lines=_call_sites(msg, roots, m))


def _call_sites(msg: str, roots: list[str], at) -> list | None:
    """[file, line] of the frames under ``roots`` in the break's user traceback, the break's own
    line left out: the calls through which the code that broke was reached."""
    traceback = msg.split("User code traceback:", 1)
    if len(traceback) < 2 or not roots:
        return None
    own = (at.group("file"), int(at.group("line"))) if at else None
    sites = [[m.group("file"), int(m.group("line"))] for m in STACK_RE.finditer(traceback[1])
             if _under(m.group("file"), roots) and (m.group("file"), int(m.group("line"))) != own]
    return sites or None


def _recompile(msg: str, roots: list[str]) -> Event:
    m = RECOMPILE_RE.search(msg)
    guard, guard_text, block = _first_failure(msg)
    loc = _last_stack_loc(block, roots)
    func = m.group("func") if m else "?"
    reason = guard_text or f"recompiled {func}"
    frame = [func, m.group("file"), int(m.group("line"))] if m else None
    if loc:
        return Event("recompile", loc[0], loc[1], reason[:200], anchor="guarded_read", frame=frame)
    if m:
        return Event("recompile", m.group("file"), int(m.group("line")), reason[:200], anchor="function_def",
                     frame=frame)
    return Event("recompile", None, None, reason[:200])


def _failing_guards(msg: str) -> list | None:
    try:
        return [[str(text), file, int(line) if line else None] for text, file, line in json.loads(msg)] or None
    except (ValueError, TypeError):
        return None


def parse_frames(records, roots: list[str]) -> list[list]:
    """[file, line, name, times] of each frame under ``roots`` dynamo started tracing (a resume frame's
    line is where it resumes), in the order first seen; ``times`` counts every start (recompiles too)."""
    roots = root_prefixes(roots)
    seen: dict[tuple, list] = {}
    for name, level, msg in records:
        if name != _FRAME_LOGGER or "start tracing" not in msg:
            continue
        m = FRAME_RE.search(msg)
        if m and _under(m.group("file"), roots):
            key = (os.path.abspath(m.group("file")), int(m.group("line")), m.group("name"))
            seen.setdefault(key, [*key, 0])[3] += 1
    return list(seen.values())


def parse_events(records, roots: list[str]) -> tuple[list[Event], int]:
    """Dynamo's log records -> (events, one per occurrence; recompile-limit hits)."""
    roots = root_prefixes(roots)
    events: list[Event] = []
    limit_hits = 0
    recompile = None  # the recompile event made from the record just before, if any
    for name, level, msg in records:
        if name == GUARDS_RECORD:
            if recompile is not None:
                recompile.guards = _failing_guards(msg)
            recompile = None
            continue
        recompile = None
        if "__graph_breaks" in name:
            events.append(_graph_break(msg, roots))
        elif "__recompiles" in name and "Recompiling function" in msg:
            recompile = _recompile(msg, roots)
            events.append(recompile)
        elif ("recompile_limit" in msg or "cache_size_limit" in msg) and level in ("WARNING", "INFO"):
            limit_hits += 1
        elif "skipping cudagraphs" in msg.lower():
            events.append(Event("cudagraph_skip", None, None, _first_line(msg)))
    return events, limit_hits


def compile_error_event(exc: BaseException | None, roots: list[str]) -> Event | None:
    """The line dynamo was tracing when it raised (``compile_error``), or None for any other failure.

    Dynamo puts the user stack it was tracing on the exception it raises (``real_stack``), also when
    the error comes from an op it ran on fake tensors (an unbacked int used as an index); the
    workload wraps that exception (``raise ... from``), so the chain of causes is searched.
    """
    roots = root_prefixes(roots)
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        stack = getattr(exc, "real_stack", None)
        if stack:
            inside = [[frame.filename, frame.lineno] for frame in stack if _under(frame.filename, roots)]
            if not inside:
                return None
            reason = f"{type(exc).__name__}: {_first_line(str(exc))}"
            return Event("compile_error", inside[-1][0], inside[-1][1], reason[:200], anchor="raised",
                         lines=inside[:-1] or None)
        exc = exc.__cause__ or exc.__context__
    return None
