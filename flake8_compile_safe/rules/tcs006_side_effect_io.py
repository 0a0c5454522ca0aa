"""TCS006: print / logging / warnings on a compiled path."""

from __future__ import annotations

import ast

from ..project import dotted
from .base import Example, Hit, Rule, source_of

LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
LOGGER_NAMES = {"log", "logger", "_logger", "LOGGER", "_log"}


class SideEffectIO(Rule):
    code = "TCS006"
    name = "print-or-log"
    consequence = "a graph break"
    why = "dynamo cannot trace I/O: each call is a graph break"
    fix = "remove it from the compiled path or guard it with `if not torch.compiler.is_compiling():`"
    what_it_does = ("Flags `print`, `logging` calls (module functions and loggers) and `warnings.warn` on a "
                    "compiled path.")
    why_bad = ("Printing, logging and warnings are side effects dynamo does not put in a graph: it breaks "
               "the graph around each call (and, for f-strings of tensors, reads values to the host).")
    use_instead_note = "Guard diagnostics with `torch.compiler.is_compiling()` or move them out of `forward`."
    fix_safety = "Not rewritten: removing output is the author's call."
    INVALID = (
        Example('''\
import logging
import warnings

import torch

log = logging.getLogger(__name__)


class Model(torch.nn.Module):
    def forward(self, x):
        print("step")  # TCS006
        log.info("shape %s", x.shape)  # TCS006
        warnings.warn("slow path")  # TCS006
        return x
'''),
    )
    VALID = (
        Example('''\
import logging

import torch

log = logging.getLogger(__name__)


class Model(torch.nn.Module):
    def forward(self, x):
        if not torch.compiler.is_compiling():
            log.info("eager step")
        return x


log.info("module import is not compiled")
'''),
    )

    def check(self, stmt, ctx):
        for node in ctx.nodes(ast.Call):
            if not isinstance(node, ast.Call):
                continue
            name = dotted(node.func)
            if not name:
                continue
            resolved = ctx.resolve(name)
            head = name.split(".")[0]
            is_io = (
                (name == "print" and resolved == "print")
                or resolved == "warnings.warn"
                or (resolved.startswith("logging.") and resolved.split(".")[-1] in LOG_METHODS)
                or (isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS
                    and (head in ctx.module.loggers or (head in LOGGER_NAMES and not ctx.is_local(head))))
            )
            if is_io:
                yield Hit(node, f"`{source_of(node, 40)}` on a compiled path", data={"kind": "io"})
