"""Every guard that fails at a recompile, not only the first one dynamo names.

Dynamo's recompile message names one failure per cache entry: ``check_verbose`` stops at the
first failing leaf guard, which is often a tensor size guard (prefill -> decode). A state guard
that fails on the same call (``L['cache'].layers[0].is_initialized == False``, a dict that gained
a key) is never named, so the cross-check cannot see it. :class:`FailingGuards` wraps dynamo's
``get_and_maybe_log_recompilation_reasons`` and, after dynamo has logged its reasons, evaluates
every guard of each failed cache entry the way dynamo evaluates the failing one
(``get_guard_fail_reason_helper``: the guard's code in the manager's global scope, with
``{"L": f_locals, "G": globals}`` plus the closure variables). The failing ones go into the event
log as one record right after dynamo's recompile record (``dynamo_log.GUARDS_RECORD``); the
parser attaches them to that recompile event.

This is measurement only: any error of the walk is swallowed and counted in ``stats``.
"""

from __future__ import annotations

import json
import os
import re

from .dynamo_log import GUARDS_RECORD

MAX_GUARDS = 200  # per recompile: enough for any state guard, bounded JSON on huge models
# `code  # source line  # short/path.py:12 in fn`: the guard's innermost user frame (dynamo's comment)
# (``# (_refs/__init__.py:4439 in fn)`` for a guard made inside torch: the parenthesis is not the path's)
_WHERE_RE = re.compile(r"#\s(?:.*[\s(])?(?P<file>[^\s(]+\.py):(?P<line>\d+) in [^\s)]+\)?(?: \(HINT:.*\))?\s*$")
_TYPE_SUFFIX_RE = re.compile(r",\s*type=<[^>]*>")  # ID_MATCH / TYPE_MATCH parts end with one: not Python


class FailingGuards:
    """Install on a dynamo run; each recompile gets a record of its failing guards in ``log``."""

    def __init__(self, log, roots: list[str]):
        self.log = log
        self.roots = [os.path.abspath(r) for r in roots]
        self.stats = {"recompiles": 0, "failing": 0, "unevaluated": 0, "errors": 0}
        self._code: dict[str, object] = {}  # guard code -> compiled expression, None if not Python
        self._module = self._original = None

    def install(self) -> "FailingGuards":
        try:
            from torch._dynamo import convert_frame  # it imported the function by name: patch it there

            original = convert_frame.get_and_maybe_log_recompilation_reasons
        except Exception:  # noqa: BLE001 - another torch: measure without the walk
            self.stats["errors"] += 1
            return self
        self._module, self._original = convert_frame, original

        def reasons_and_every_failure(cache_entries, frame, *args, **kwargs):
            reasons = original(cache_entries, frame, *args, **kwargs)
            if not kwargs.get("skip_logging", args[1] if len(args) > 1 else False):
                self.record(cache_entries, frame)
            return reasons

        convert_frame.get_and_maybe_log_recompilation_reasons = reasons_and_every_failure
        return self

    def remove(self) -> None:
        if self._module is not None:
            self._module.get_and_maybe_log_recompilation_reasons = self._original
            self._module = None

    def record(self, cache_entries, frame) -> None:
        """Append the failing guards of every entry, if dynamo's record for this recompile is the last one."""
        try:
            records = self.log.records
            if not records or "__recompiles" not in records[-1][0]:
                return  # dynamo logged nothing: nothing to attach the guards to
            found: list = []
            for entry in cache_entries:  # entries often share a guard: keep each once
                for guard in self.entry_failures(entry, frame.f_locals):
                    if guard not in found:
                        found.append(guard)
            self.stats["recompiles"] += 1
            self.stats["failing"] += len(found)
            records.append((GUARDS_RECORD, "DEBUG", json.dumps(found[:MAX_GUARDS])))
        except Exception:  # noqa: BLE001 - the walk must never break the measured run
            self.stats["errors"] += 1

    def entry_failures(self, entry, f_locals) -> list:
        """[guard text, file, line] of each guard of one cache entry that is False for ``f_locals``."""
        manager = entry.guard_manager
        root = getattr(manager, "root", None)
        if root is None or manager.global_scope is None:
            return []  # an invalidated entry (DeletedGuardManagerWrapper): no guards left
        scope = {"L": f_locals, "G": manager.global_scope["G"], **(manager.closure_vars or {})}
        global_scope = dict(manager.global_scope)
        return [self.describe(part) for part in guard_parts(root) if self.fails(part, global_scope, scope)]

    def fails(self, part: str, global_scope: dict, scope: dict) -> bool:
        code = self._compiled(part)
        if code is None:
            return False
        try:
            result = eval(code, global_scope, scope)  # noqa: S307 - dynamo's own guard code, as dynamo evals it
        except Exception:  # noqa: BLE001 - a guard whose value cannot be read here is left out
            self.stats["unevaluated"] += 1
            return False
        return isinstance(result, bool) and not result

    def _compiled(self, part: str):
        if part not in self._code:
            self._code[part] = None
            for text in (part, _TYPE_SUFFIX_RE.sub("", part, count=1)):
                try:
                    self._code[part] = compile(text, "<guard>", "eval")
                    break
                except SyntaxError:
                    continue
        if self._code[part] is None:
            self.stats["unevaluated"] += 1
        return self._code[part]

    def describe(self, part: str) -> list:
        return describe_guard(part, self.roots)


def guard_parts(root):
    """The verbose code part of every leaf guard in the tree under ``root``, epilogue guards last."""
    stack = [root]
    while stack:
        manager = stack.pop()
        for guard in manager.get_leaf_guards():
            yield from guard.verbose_code_parts()
        stack.extend(reversed(manager.get_child_managers()))
    for guard in root.get_epilogue_lambda_guards():
        yield from guard.verbose_code_parts()


def describe_guard(part: str, roots: list[str]) -> list:
    """[guard code, file, line] from a verbose code part; file absolute where it resolves under a root."""
    text = re.sub(r"\s+#.*$", "", part, flags=re.S).strip()[:200]
    m = _WHERE_RE.search(part)
    if not m:
        return [text, None, None]
    return [text, resolve_short_path(m.group("file"), roots), int(m.group("line"))]


def resolve_short_path(short: str, roots: list[str]) -> str:
    """The file a guard comment names, made absolute under one of ``roots`` when it exists there.

    Dynamo shortens the path relative to the common prefix with torch's own directory
    (``torch.utils._traceback.shorten_filename``), and cuts one character too many when that
    prefix is ``/`` (``/root/x.py`` -> ``oot/x.py``): match the root's tail against the path's head.
    """
    if os.path.isabs(short):
        return short
    for root in roots:
        whole = os.path.join(root, short)
        if os.path.isfile(whole):
            return whole
        for k in [i for i, c in enumerate(short) if c == "/"]:
            if root.endswith(short[:k]) and os.path.isfile(root + short[k:]):
                return root + short[k:]
    return short
