"""What kind of guard made dynamo recompile, from the guard text it logs. No torch here.

Used to explain the recompile lines the linter does not flag: most are guards no TCS rule claims
to predict (a new input shape, an argument that changes type), and the report says how many of
each there are instead of a bare "3/14 flagged".
"""

from __future__ import annotations

import re

SHAPE, TYPE, VALUE, OTHER = "shape", "type", "value", "other"
KINDS = (SHAPE, VALUE, TYPE, OTHER)

# (singular, plural, what it is), as the report prints them after a count.
DESCRIPTIONS = {
    SHAPE: ("tensor-shape guard", "tensor-shape guards",
            "an input with a new size, e.g. prefill then decode; no TCS rule claims these"),
    VALUE: ("value guard", "value guards", "on a Python number or flag passed in or read, e.g. {example}"),
    TYPE: ("type guard", "type guards",
           "an argument that is None in one call and a tensor in another; no TCS rule claims these"),
    OTHER: ("other guard", "other guards", "see the reason on each event"),
}
SHORT = {SHAPE: "shape guard", VALUE: "value guard", TYPE: "type guard", OTHER: "other guard"}

_SHAPE_RE = re.compile(r"size mismatch|stride mismatch|storage_offset|\.size\(\)|\.stride\(\)|dimensionality|"
                       r"rank mismatch|\bdim\b.*mismatch")
_TYPE_RE = re.compile(r"expected type of|type mismatch|___check_type_id|\bis None\b|\bis not None\b|isinstance")
_VALUE_RE = re.compile(r"(==|!=|<=|>=|<|>)\s*(-?\d|True|False|'|\")")


def guard_kind(reason: str) -> str:
    """``shape``, ``type``, ``value`` or ``other`` for one guard failure text."""
    if _SHAPE_RE.search(reason):
        return SHAPE
    if _TYPE_RE.search(reason):
        return TYPE
    if _VALUE_RE.search(reason):
        return VALUE
    return OTHER


def describe_unflagged(counts: dict[str, int], examples: dict[str, str] | None = None) -> str:
    """``6 tensor-shape guards (...), 4 value guards ...`` in the order of :data:`KINDS`."""
    examples = examples or {}
    parts = []
    for kind in KINDS:
        n = counts.get(kind, 0)
        if n:
            singular, plural, what = DESCRIPTIONS[kind]
            what = what.format(example=f"`{examples[kind]}`" if kind in examples else "`n == 4`")
            parts.append(f"{n} {singular if n == 1 else plural} ({what})")
    return ", ".join(parts)
