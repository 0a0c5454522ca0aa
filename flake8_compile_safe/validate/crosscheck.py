"""Dynamo's events against the linter's findings, line by line. No torch here.

For each compiled mode of a run (:class:`~flake8_compile_safe.validate.records.RunResult`):

* every event under the analysed tree gets ``flagged``: the TCS codes the linter reports within
  :data:`~flake8_compile_safe.validate.records.FLAG_WINDOW` lines of it in the same file (``[]``:
  none; ``None``: the linter did not run, or the line lies outside the tree or is unknown);
* ``break_recall`` / ``recompile_recall``: distinct graph-break/frame-skip lines (recompile lines)
  under the tree, and how many of them are flagged; lines outside it are counted in ``outside``;
  the unflagged recompile lines are counted by guard kind (:func:`.guards.guard_kind`: shape,
  value, type, other), so the report can say what they are;
* ``unconfirmed_findings``: findings on lines the eager workload executed where dynamo reported
  no event within the window, and no recompile guard or re-record input names the state the
  finding says is written (see :func:`names_state`), and no event names the finding's line among
  its other lines (a re-record's varying number reaching it, a break's call site: see
  :func:`on_event_lines`), and no guard that failed at a recompile (not only the one dynamo
  names) names that state or points at its line (:func:`on_failing_guard`). Each is either a
  hazard that only shows on a GPU (a CUDA-graph skip the CPU run cannot see) or a false alarm:
  this cross-check cannot tell which.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from .aliases import closure_aliases
from .guards import guard_kind
from .split_check import check_splits
from .records import BREAK_KINDS, FLAG_WINDOW, RECOMPILE_KINDS, Event, ModeResult, Recall, RunResult, \
    UnconfirmedFinding


def lint_tree(path: str):
    """(findings under ``path``, their split-frame predictions, None), or (None, None, why the linter
    could not run). A fresh analysis: the fixer may have rewritten this tree since the last one."""
    try:
        from ..analysis import split_frames, unique_sorted

        findings, splits = split_frames(path)
        return unique_sorted(findings), splits, None
    except Exception as exc:  # noqa: BLE001 - validation goes on without the static column
        return None, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def findings_by_file(findings, root: str) -> dict[str, list]:
    """{path relative to root: findings}, for the findings under root."""
    base = Path(root).resolve()
    out: dict[str, list] = {}
    for finding in findings:
        rel = _relative(finding.path, base)
        if rel is not None:
            out.setdefault(rel, []).append(finding)
    return out


def splits_by_file(splits: dict, root: str) -> dict[str, tuple]:
    """The split-frame predictions (:func:`lint_tree`) with each frame's path relative to root (frames
    outside it left out)."""
    base = Path(root).resolve()
    out = {}
    for function, frames in splits.items():
        inside = [(rel, frame) for frame in frames if (rel := _relative(frame.path, base)) is not None]
        out[function] = tuple(replace(frame, path=rel) for rel, frame in inside)
    return out


def _relative(path: str, base: Path) -> str | None:
    full = Path(path).resolve()
    return str(full.relative_to(base)) if base in full.parents else None


def _inside(event: Event) -> bool:
    return bool(event.file and event.line and not os.path.isabs(event.file))


def _near(items, line: int) -> list:
    return [f for f in items if abs(f.line - line) <= FLAG_WINDOW]


def _recall(events: list[Event], kinds: tuple[str, ...]) -> Recall:
    recall = Recall()
    for event in events:
        if event.kind not in kinds:
            continue
        if event.flagged is None:
            recall.outside += 1
        else:
            recall.total += 1
            recall.flagged += bool(event.flagged)
            if not event.flagged and event.kind in RECOMPILE_KINDS:
                kind = guard_kind(event.reason)
                recall.unflagged[kind] = recall.unflagged.get(kind, 0) + 1
                recall.examples.setdefault(kind, event.reason[:60])
    return recall


def crosscheck_mode(row: ModeResult, by_file: dict[str, list] | None, executed: dict[str, list[int]],
                    spans: dict[str, list[list[int]]] | None = None, aliases: dict | None = None) -> None:
    for event in row.events:
        if by_file is None or not _inside(event):
            event.flagged = None
        else:
            event.flagged = sorted({f.code for f in _near(by_file.get(event.file, []), event.line)})
    # Events are one per (kind, file, line): a line is counted once per kind family.
    row.break_recall = _recall(_distinct_lines(row.events, BREAK_KINDS), BREAK_KINDS)
    row.recompile_recall = _recall(_distinct_lines(row.events, RECOMPILE_KINDS), RECOMPILE_KINDS)
    if by_file is None:
        row.unconfirmed_findings, row.executed_findings = [], 0
    else:
        row.unconfirmed_findings, row.executed_findings = _unconfirmed(row.events, by_file, executed, spans,
                                                                       aliases)


def _distinct_lines(events: list[Event], kinds: tuple[str, ...]) -> list[Event]:
    """One event per source line among ``kinds`` (a line that is both a break and a skip counts once)."""
    seen: dict[tuple, Event] = {}
    for event in events:
        if event.kind in kinds:
            key = (event.file, event.line) if event.line else (event.file, None, event.reason)
            seen.setdefault(key, event)
    return list(seen.values())


# Findings whose consequence is a recompile or a CUDA-graph re-record on the state they name
# (TCS004: a branch on mutable Python state, when the finding names the one state it reads).
STATE_CODES = {"TCS004", "TCS010", "TCS011"}
# Findings that say a Python number reaches the line (a slice bound, a branch, a per-step int).
NUMBER_CODES = {"TCS003", "TCS004", "TCS007"}
STATE_EVENT_KINDS = ("recompile", "predicted_cudagraph_rerecord")


def names_state(finding, events: list[Event], aliases: frozenset[str] = frozenset()) -> bool:
    """Whether a recompile guard or a re-recorded input names the attribute ``finding`` writes.

    A state write is seen by dynamo where the state is read, not where it is written: the guard
    ``past_key_values.layers[0].is_initialized == False`` or the re-recorded SymInt
    ``L['cache'].layers[0].keys.size()[2]`` confirms a TCS010/TCS011 finding on
    ``DynamicLayer.is_initialized`` / ``DynamicLayer.keys`` whatever line dynamo anchors it at.
    A closure variable's or a global's name is local to its function: it counts only through
    ``aliases``, the names its object is bound to where the compiled code receives it
    (:mod:`.aliases`: the hook's dict ``cache`` is the decoder's argument ``kv_cache``).
    """
    label = (getattr(finding, "data", None) or {}).get("state", "")
    if finding.code not in STATE_CODES:
        return False
    names = set(aliases)
    if " " not in label and "." in label:
        names.add(label.rsplit(".", 1)[1])
    if not names:
        return False
    alternatives = "|".join(re.escape(name) for name in sorted(names))
    pattern = re.compile(rf"(\.(?:{alternatives})\b(?!\()|\['(?:{alternatives})'\])")
    return any(e.kind in STATE_EVENT_KINDS and any(pattern.search(text) for text in _guard_texts(e))
               for e in events)


def _guard_texts(event: Event) -> list[str]:
    """The reason dynamo logged, and every other guard that failed at the same recompile."""
    return [t for t in (event.reason, *(g[0] for g in event.guards or ())) if t]


def on_failing_guard(finding, rel: str, events: list[Event]) -> bool:
    """Whether a guard that failed at a recompile points within the window of the finding's lines.

    Dynamo's log names one failing guard per cache entry, usually a tensor size guard; the state
    guard that failed on the same call (``if not self.is_initialized`` at this line) is in
    ``Event.guards`` (:mod:`.guard_walk`). It confirms the finding as the event's own line would.
    The event's line, and so the recall's flagged recompile lines, stays dynamo's first failure:
    the recompile is one event at the line dynamo names; the other guards are evidence for
    findings, not more recompile lines (counting them would add lines dynamo never reported).
    """
    end = max(finding.line, getattr(finding, "end_line", finding.line) or finding.line)
    lo, hi = finding.line - FLAG_WINDOW, end + FLAG_WINDOW
    return any(f == rel and n and lo <= n <= hi
               for e in events if e.kind in RECOMPILE_KINDS for _, f, n in e.guards or ())


# Which findings an event's other lines (``Event.lines``) confirm, by event kind.
CONFIRMED_ON_LINES = {"predicted_cudagraph_rerecord": NUMBER_CODES,
                      "graph_break": {"TCS002"}, "frame_skip": {"TCS002"}}


def on_event_lines(finding, rel: str, events: list[Event]) -> bool:
    """Whether an event names the finding's line among its other lines.

    Dynamo anchors a re-record at the first use of the varying number (``n = int(t)``), not where
    the number is used as a slice bound or a branch a few lines later (``x[:, n:]``): the backend
    records every line the number reaches through number arithmetic. It anchors a graph break at
    the ``.item()`` inside a helper, not at the call that reached it (``n = cache.seq_len()``, a
    TCS002 on the caller's line): the break's user traceback names that call.
    """
    end = max(finding.line, getattr(finding, "end_line", finding.line) or finding.line)
    span = range(finding.line, end + 1)
    return any(e.lines and finding.code in CONFIRMED_ON_LINES.get(e.kind, ())
               and any(f == rel and n in span for f, n in e.lines) for e in events)


def ran_within(finding, spans: list[list[int]] | None) -> bool:
    """Whether an instruction inside the finding's own source span ran (True when there is no span
    to compare: no instruction positions for its file, or a finding without an end position)."""
    start = (finding.line, getattr(finding, "col", 0) or 0)
    end = (getattr(finding, "end_line", 0) or 0, getattr(finding, "end_col", 0) or 0)
    if not spans or end <= start:
        return True
    return any((line, col) >= start and (end_line, end_col) <= end for line, end_line, col, end_col in spans)


def _unconfirmed(events: list[Event], by_file: dict[str, list], executed: dict[str, list[int]],
                 spans: dict[str, list[list[int]]] | None = None, aliases: dict | None = None):
    """(findings whose code ran with no event near them, how many findings' code ran).

    A finding's code ran when its lines did and, where the instruction spans are known, an
    instruction inside its own span did (:mod:`.coverage`: a line alone can read as run when only
    another part of its statement did)."""
    event_lines: dict[str, list[int]] = {}
    for event in events:
        if _inside(event):
            event_lines.setdefault(event.file, []).append(event.line)
    out, on_executed = [], 0
    for rel, findings in sorted(by_file.items()):
        ran = set(executed.get(rel, ()))
        if not ran:
            continue
        near_events = event_lines.get(rel, [])
        for f in sorted(findings, key=lambda f: (f.line, f.code)):
            end = max(f.line, getattr(f, "end_line", f.line) or f.line)
            if not ran.intersection(range(f.line, end + 1)) or not ran_within(f, (spans or {}).get(rel)):
                continue
            on_executed += 1
            if (any(abs(line - f.line) <= FLAG_WINDOW for line in near_events)
                    or names_state(f, events, (aliases or {}).get(id(f), frozenset()))
                    or on_event_lines(f, rel, events) or on_failing_guard(f, rel, events)):
                continue
            out.append(UnconfirmedFinding(f.code, rel, f.line, getattr(f, "summary", "")))
    return out, on_executed


def crosscheck(run: RunResult, findings, splits: dict | None = None) -> None:
    """Fill ``flagged``, the recalls and ``unconfirmed_findings`` of every compiled mode of ``run``;
    with the linter's ``splits`` (:func:`lint_tree`), the split-frame columns too (:mod:`.split_check`)."""
    by_file = None if findings is None else findings_by_file(findings, run.path)
    aliases = closure_aliases(findings, run.path) if findings else {}
    frames = splits_by_file(splits, run.path) if findings and splits else None
    for row in run.results:
        if row.mode != "eager":
            crosscheck_mode(row, by_file, run.executed, run.executed_spans, aliases)
            if frames:
                check_splits(row, by_file, frames, run.executed)
