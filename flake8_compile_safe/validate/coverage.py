"""Which lines of the analysed tree a workload executes (``sys.settrace``, files under one root only).

Used on one eager run: the cross-check lists TCS findings on executed lines where dynamo said
nothing. Frames of files outside the root get no line tracing (the global trace function returns
None for them), so torch's own Python code costs one call event per frame, not one per line.
"""

from __future__ import annotations

import os
import sys
import threading


class LineCoverage:
    def __init__(self, root: str):
        self.root = os.path.join(os.path.abspath(root), "")
        self.lines: dict[str, set[int]] = {}
        self._under: dict[str, bool] = {}
        self._previous = None

    def _trace_call(self, frame, event, arg):
        filename = frame.f_code.co_filename
        under = self._under.get(filename)
        if under is None:
            under = self._under[filename] = os.path.abspath(filename).startswith(self.root)
        if not under:
            return None
        lines = self.lines.setdefault(os.path.abspath(filename), set())
        lines.add(frame.f_lineno)

        def trace_line(frame, event, arg):
            if event == "line":
                lines.add(frame.f_lineno)
            return trace_line

        return trace_line

    def __enter__(self) -> "LineCoverage":
        self._previous = sys.gettrace()
        sys.settrace(self._trace_call)
        threading.settrace(self._trace_call)
        return self

    def __exit__(self, *exc) -> None:
        sys.settrace(self._previous)
        threading.settrace(self._previous)

    def relative(self) -> dict[str, list[int]]:
        """{path relative to the root: sorted executed lines}."""
        return {os.path.relpath(path, self.root): sorted(lines) for path, lines in sorted(self.lines.items())}
