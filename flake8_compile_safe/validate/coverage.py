"""Which lines of the analysed tree a workload executes (``sys.settrace``, files under one root only).

Used on one eager run: the cross-check lists TCS findings on executed code where dynamo said
nothing. Frames of files outside the root get no tracing (the global trace function returns None
for them), so torch's own Python code costs one call event per frame, not one per line.

Lines are not enough: a multi-line statement reports its first line whenever it runs, so in
``m = (mask[..., a:b] \n if torch.is_tensor(mask) \n else None)`` the slice's line reads as
executed with the test false. Frames under the root are also traced per instruction, and the
source span of every instruction that ran is kept (``spans``): a finding ran if an instruction
inside its own span did.
"""

from __future__ import annotations

import os
import sys
import threading


class LineCoverage:
    def __init__(self, root: str):
        self.root = os.path.join(os.path.abspath(root), "")
        self.lines: dict[str, set[int]] = {}
        # (line, end line, column, end column) of each instruction that ran, per file
        self.spans: dict[str, set[tuple[int, int, int, int]]] = {}
        self._under: dict[str, bool] = {}
        self._positions: dict = {}  # code object -> its instructions' positions, by instruction index
        self._previous = None

    def _trace_call(self, frame, event, arg):
        filename = frame.f_code.co_filename
        under = self._under.get(filename)
        if under is None:
            under = self._under[filename] = os.path.abspath(filename).startswith(self.root)
        if not under:
            return None
        path = os.path.abspath(filename)
        lines = self.lines.setdefault(path, set())
        lines.add(frame.f_lineno)
        spans = self.spans.setdefault(path, set())
        code = frame.f_code
        positions = self._positions.get(code)
        if positions is None:
            positions = self._positions[code] = list(code.co_positions())
        frame.f_trace_opcodes = True

        def trace(frame, event, arg):
            if event == "opcode":
                index = frame.f_lasti // 2  # one position per 2-byte code unit
                if index < len(positions):
                    spans.add(positions[index])
            elif event == "line":
                lines.add(frame.f_lineno)
            return trace

        return trace

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

    def relative_spans(self) -> dict[str, list[list[int]]]:
        """{path relative to the root: sorted [line, end line, column, end column] of the instructions
        that ran} (instructions without a full position left out)."""
        return {os.path.relpath(path, self.root): sorted(list(s) for s in spans if None not in s)
                for path, spans in sorted(self.spans.items())}
