"""The linter's split-frame predictions against dynamo's frames and recompiles. No torch here.

:mod:`flake8_compile_safe.splits` predicts, for each function holding a break finding, the frames
that break splits off. A prediction is used only for the breaks dynamo reported in this run (a
graph break or frame skip within the window of the finding): a break the workload never reached
splits nothing. Then

* an unflagged recompile line gets ``Event.split`` (the predicted frame's kind) and counts in
  ``Recall.split`` when the line, or the frame dynamo says it recompiled (``Event.frame``: a guard
  read inside a frame is anchored at the read), is within the window of a predicted frame:
  reported beside the flagged lines, never as flagged;
* every predicted frame whose code ran is checked against the frames dynamo started tracing
  (``ModeResult.frames``): ``ModeResult.split_frames`` holds [file, line, kind, traced], the
  precision of the prediction itself (a frame dynamo compiled on its own, or not).
"""

from __future__ import annotations

from ..splits import is_break
from .records import BREAK_KINDS, FLAG_WINDOW, RECOMPILE_KINDS, ModeResult


def check_splits(row: ModeResult, by_file_findings: dict[str, list], splits: dict,
                 executed: dict[str, list[int]]) -> None:
    """``by_file_findings`` and ``splits`` with paths relative to the tree (the cross-check's
    ``findings_by_file`` and ``splits_by_file``)."""
    frames = active_frames(row, by_file_findings, splits)
    by_file: dict[str, list] = {}
    for (rel, line), frame in frames.items():
        by_file.setdefault(rel, []).append((line, frame.kind))
    counted: set[tuple] = set()
    for event in row.events:
        if event.kind not in RECOMPILE_KINDS or event.flagged != [] or not event.line:
            continue
        # the line the event is anchored at (a def, or a guarded read inside the frame), and the frame
        # dynamo says it recompiled
        spots = [(event.file, event.line), *([tuple(event.frame[1:])] if event.frame else [])]
        near = sorted((abs(line - at), kind) for file, at in spots for line, kind in by_file.get(file, ())
                      if abs(line - at) <= FLAG_WINDOW)
        if near:
            event.split = near[0][1]
            counted.add((event.file, event.line))
    row.recompile_recall.split = len(counted)
    traced: dict[str, list[int]] = {}
    for file, line, _name, _times in row.frames:
        traced.setdefault(file, []).append(line)
    row.split_frames = []
    for (rel, line), frame in sorted(frames.items()):
        ran = set(executed.get(rel, ()))
        body = range(line, line + 1) if frame.kind == "resume" else range(line + 1, frame.end_line + 1)
        if ran.intersection(body):
            hit = any(abs(t - line) <= FLAG_WINDOW for t in traced.get(rel, ()))
            row.split_frames.append([rel, line, frame.kind, hit])


def active_frames(row: ModeResult, by_file_findings: dict[str, list], splits: dict) -> dict[tuple[str, int], object]:
    """{(file, line): predicted frame} for the break findings dynamo confirmed here (relative paths)."""
    breaks: dict[str, list[int]] = {}
    for event in row.events:
        if event.kind in BREAK_KINDS and event.flagged:
            breaks.setdefault(event.file, []).append(event.line)
    active = {finding.function for rel, findings in by_file_findings.items() for finding in findings
              if is_break(finding) and any(abs(line - finding.line) <= FLAG_WINDOW for line in breaks.get(rel, ()))}
    out: dict[tuple[str, int], object] = {}
    for function in sorted(active):
        for frame in splits.get(function, ()):
            out.setdefault((frame.path, frame.line), frame)
    return out
