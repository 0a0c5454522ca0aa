"""What the walk found, handed to the rules that look at the whole of it (:meth:`.Rule.check_reached`)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from ..findings import Finding


@dataclass
class ReachedFacts:
    """What the walk found, for the rules that look at the whole of it."""

    index: object  # ProjectIndex
    findings: list[Finding]
    calls: dict[str, set[str]] = field(default_factory=dict)  # function -> project functions it calls
    reached: list = field(default_factory=list)  # callgraph.Reached, in walk order
    # (path, line, function, error) of each function a whole-walk check gave up on: reported as TCS902
    gave_up: list[tuple[str, int, str, str]] = field(default_factory=list)
    # function -> its calls with where they are, one packed entry per context (:func:`pack_sites`);
    # filled only without a memo: with one, ``recorded_calls(context)`` reads them from its records
    call_sites: dict[str, list] = field(default_factory=dict)
    recorded_calls: object = None
    _contexts: dict | None = field(default=None, init=False, repr=False)

    def sites(self, function: str) -> dict[tuple[int, int], set[str]]:
        """(line, column) of each call in ``function`` -> the project functions it runs (any context)."""
        out: dict[tuple[int, int], set[str]] = {}
        for calls in self._calls(function):
            for callee, line, col in calls:
                out.setdefault((line, col), set()).add(callee)
        return out

    def _calls(self, function: str):
        if self.recorded_calls is None:
            for names, packed in self.call_sites.get(function, ()):
                numbers = array("I")
                numbers.frombytes(packed)
                yield [(names[numbers[i]], numbers[i + 1], numbers[i + 2]) for i in range(0, len(numbers), 3)]
            return
        for ctx in self.contexts(function):
            yield self.recorded_calls(ctx)

    def contexts(self, function: str) -> list:
        """The contexts the walk reached ``function`` in (an index over ``reached``, built once)."""
        if self._contexts is None:
            self._contexts = {}
            for item in self.reached:
                self._contexts.setdefault(item.ctx.func.qualname, []).append(item.ctx)
        return self._contexts.get(function, [])

    def function(self, qualname: str):
        """The reached function of that name (its FunctionInfo), or None."""
        found = self.contexts(qualname)
        return found[0].func if found else None


def pack_sites(calls) -> tuple[tuple[str, ...], bytes]:
    """``(callee, line, column)`` triples as (callee names, their index, line and column as 32-bit ints):
    a whole-walk rule asks a few functions' call sites; the walk reaches tens of thousands."""
    names = tuple(dict.fromkeys(callee for callee, _, _ in calls))
    index = {name: i for i, name in enumerate(names)}
    return names, array("I", [n for callee, line, col in calls for n in (index[callee], line, col)]).tobytes()
