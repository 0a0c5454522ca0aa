"""Stop-gap probe: dynamo's verdict on one ``MODULE:FACTORY`` workload, event by event.

    python benchmarks/dynamo_probe.py MODULE:FACTORY SOURCE_DIR [--runs 2] [--backend eager]
        [--json OUT.json] [--lint]

``FACTORY()`` returns ``(model, run)`` (the ``compile-safe-validate --model`` contract);
``SOURCE_DIR`` (the fetched model package, e.g. ``Family.source()``) goes first on
``sys.path``. The probe runs ``run(model)`` once eagerly, then ``run(torch.compile(model))``
``--runs`` times, and prints every graph break, frame skip and recompile dynamo reported, with
``file:line`` relative to SOURCE_DIR and dynamo's reason, from ``counters`` and the
``graph_breaks`` / ``recompiles`` log artifacts (captured through a logging handler, as the
validation harness does). ``--lint`` also runs ``flake8 --select=TCS`` on the tree and marks
each event line with the TCS codes found within 2 lines of it. Kept small on purpose:
``compile-safe-validate --model`` is the full tool.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import logging
import os
import re
import subprocess
import sys
import warnings

from flake8_compile_safe.validate.dynamo_log import LOC_RE, RECOMPILE_RE, STACK_RE

_FLAKE8 = re.compile(r"^(?P<file>.+?):(?P<line>\d+):\d+: (?P<code>TCS\d+)")
_SKIP_PREFIXES = ("Encountered graph break", "Failed to handle graph break", "Graph Break Reason")


class Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[tuple[str, str]] = []

    def emit(self, record):
        try:
            self.records.append((record.name, record.getMessage()))
        except Exception:  # a record that cannot format itself is not an event
            pass


def _reason(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(_SKIP_PREFIXES):
            return line[:160]
    return ""


def _under(path: str, root: str) -> str | None:
    path = os.path.abspath(path)
    return os.path.relpath(path, root) if path.startswith(root + os.sep) else None


def _innermost_in_tree(text: str, root: str):
    found = None
    for m in STACK_RE.finditer(text):
        rel = _under(m.group("file"), root)
        if rel is not None:
            found = (rel, int(m.group("line")))
    return found


def parse(records, root: str) -> list[dict]:
    """One event per log record: kind, file (relative to root, or absolute outside it), line, reason."""
    events = []
    for name, msg in records:
        if "graph_breaks" in name:
            m = LOC_RE.search(msg)
            skip = "Skipping the function and falling back to eager" in msg or "frame skipped" in msg
            file, line = (m.group("file"), int(m.group("line"))) if m else (None, None)
            body = msg.split("Graph Break Reason:", 1)[-1]
            events.append({"kind": "frame_skip" if skip else "graph_break",
                           "file": (_under(file, root) or file) if file else None, "line": line,
                           "reason": _reason(body)})
        elif "recompiles" in name and "Recompiling function" in msg:
            m = RECOMPILE_RE.search(msg)
            failures = [s.strip()[2:] for s in msg.splitlines()
                        if s.strip().startswith("- ") and not s.strip().startswith("-   ")]
            reason = re.sub(r"^\d+/\d+: ", "", failures[0]) if failures else ""
            loc = _innermost_in_tree(msg, root)
            if loc is None and m:
                loc = (_under(m.group("file"), root) or m.group("file"), int(m.group("line")))
            events.append({"kind": "recompile", "function": m.group("func") if m else None,
                           "file": loc[0] if loc else None, "line": loc[1] if loc else None,
                           "reason": re.sub(r"\s+#.*$", "", reason)[:160]})
    return events


def lint(root: str, package_dirs: list[str]) -> str:
    """``flake8 --select=TCS --compile-safe-root ROOT DIRS`` output."""
    cmd = [sys.executable, "-m", "flake8", "--select=TCS", "--compile-safe-root", root,
           *[os.path.join(root, d) for d in package_dirs]]
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def parse_findings(text: str, root: str) -> dict[str, list[tuple[int, str]]]:
    """flake8 output lines -> {file relative to root: [(line, code)]}."""
    findings: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    for line in text.splitlines():
        m = _FLAKE8.match(line)
        if m:
            rel = _under(m.group("file"), root) or m.group("file")
            findings[rel].append((int(m.group("line")), m.group("code")))
    return findings


class ProbeError(Exception):
    """The workload cannot be probed: reported as one line, exit status 2."""


def _describe(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


def _load(spec: str):
    module_name, _, func_name = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), func_name)
    except Exception as exc:  # ImportError, AttributeError, or whatever the module raises
        raise ProbeError(f"cannot load {spec}: {_describe(exc)}") from exc
    try:
        built = factory()
    except Exception as exc:
        raise ProbeError(f"{spec}() raised {_describe(exc)}") from exc
    if not (isinstance(built, tuple) and len(built) == 2 and callable(built[1])):
        raise ProbeError(f"{spec}() must return (model, run), got {type(built).__name__}")
    return built


def probe(spec: str, root: str, runs: int, backend: str) -> dict:
    warnings.filterwarnings("ignore")
    sys.path.insert(0, root)
    model, run = _load(spec)
    import torch
    from torch._dynamo.utils import counters

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    try:
        run(model)  # eager first: the workload must work without dynamo
    except Exception as exc:
        raise ProbeError(f"run(model) failed eagerly: {_describe(exc)}") from exc

    torch._dynamo.reset()
    counters.clear()
    handler = Records()
    torch._logging.set_logs(graph_breaks=True, recompiles=True)
    loggers = [logging.getLogger(n) for n in ("torch._dynamo", "torch")]
    for logger in loggers:
        logger.addHandler(handler)
        for h in logger.handlers:  # set_logs prints to stderr too: keep it quiet
            if h is not handler and isinstance(h, logging.StreamHandler):
                h.setLevel(logging.ERROR)
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(len(gm.graph.nodes))
        if backend == "eager":
            return gm.forward
        from torch._inductor.compile_fx import compile_fx
        return compile_fx(gm, example_inputs)

    try:
        compiled = torch.compile(model, backend=counting_backend)
        for _ in range(runs):
            run(compiled)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        torch._logging.set_logs()
    return {
        "model": spec, "source": root, "torch": torch.__version__, "runs": runs, "backend": backend,
        "graphs": len(graphs),
        "graph_breaks": int(sum(counters["graph_break"].values())),
        "frame_skips": int(sum(counters["unimplemented"].values())),
        "break_reasons": dict(counters["graph_break"]),
        "skip_reasons": dict(counters["unimplemented"]),
        "events": parse(handler.records, root),
    }


def summarize(result: dict, findings: dict | None) -> list[dict]:
    """Events grouped by (kind, file, line) with counts, each marked with nearby TCS codes."""
    grouped: dict[tuple, dict] = {}
    for ev in result["events"]:
        key = ("recompile" if ev["kind"] == "recompile" else "break/skip", ev["kind"], ev["file"], ev["line"])
        row = grouped.setdefault(key, {**ev, "count": 0})
        row["count"] += 1
    rows = sorted(grouped.values(), key=lambda r: (r["kind"], str(r["file"]), r["line"] or 0))
    for row in rows:
        row["in_tree"] = bool(row["file"]) and not os.path.isabs(row["file"]) and not row["file"].startswith("<")
        if findings is not None:
            near = [c for ln, c in findings.get(row["file"], []) if row["line"] and abs(ln - row["line"]) <= 2]
            row["flagged"] = sorted(set(near))
    return rows


def recall(rows: list[dict]) -> dict:
    """Per class (break/skip, recompile): distinct event lines in the tree, how many are flagged.

    A graph break and a frame skip on one line are one line; lines outside the tree (another
    package, dynamo's own helpers, generated code) are counted apart: no lint of the tree can
    flag them.
    """
    out = {}
    for kind in ("break/skip", "recompile"):
        lines: dict[tuple, bool] = {}
        for r in rows:
            if (r["kind"] == "recompile") == (kind == "recompile"):
                key = (r["file"], r["line"], r["in_tree"])
                lines[key] = lines.get(key, False) or bool(r["flagged"])
        inside = [flagged for (_, _, in_tree), flagged in lines.items() if in_tree]
        out[kind] = {"flagged": sum(inside), "lines_in_tree": len(inside),
                     "lines_outside_tree": len(lines) - len(inside)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec", help="MODULE:FACTORY; FACTORY() returns (model, run)")
    ap.add_argument("source", help="directory holding the model package (first on sys.path)")
    ap.add_argument("--runs", type=int, default=2, help="compiled runs (recompiles show on the 2nd)")
    ap.add_argument("--backend", choices=("eager", "inductor"), default="eager",
                    help="eager: dynamo only, fast; inductor: full compile")
    ap.add_argument("--lint", nargs="*", metavar="PKG_DIR",
                    help="also lint these package dirs under SOURCE (default: every top-level package)")
    ap.add_argument("--findings", metavar="FILE",
                    help="read flake8 --select=TCS output from FILE instead of running it (--lint)")
    ap.add_argument("--json", help="write the full result here")
    args = ap.parse_args(argv)
    root = os.path.abspath(args.source)
    if ":" not in args.spec:
        ap.error(f"{args.spec!r}: expected MODULE:FACTORY")
    if not os.path.isdir(root):
        ap.error(f"{args.source}: not a directory")
    try:
        result = probe(args.spec, root, args.runs, args.backend)
    except ProbeError as exc:
        print(f"dynamo_probe: error: {exc}", file=sys.stderr)
        return 2
    findings = None
    if args.findings:
        with open(args.findings) as fh:
            findings = parse_findings(fh.read(), root)
    elif args.lint is not None:
        dirs = args.lint or sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "__init__.py")))
        findings = parse_findings(lint(root, dirs), root)
    if findings is not None:
        result["tcs_findings"] = sum(len(v) for v in findings.values())
    rows = summarize(result, findings)
    result["lines"] = rows
    print(f"{args.spec}: graphs={result['graphs']} graph_breaks={result['graph_breaks']} "
          f"frame_skips={result['frame_skips']} recompiles="
          f"{sum(1 for e in result['events'] if e['kind'] == 'recompile')}")
    for row in rows:
        flag = "" if findings is None else f"  flagged={','.join(row['flagged']) or '-'}"
        print(f"  {row['kind']:<11} x{row['count']:<3} {row['file']}:{row['line']}{flag}  {row['reason']}")
    if findings is not None:
        result["recall"] = recall(rows)
        for kind, r in result["recall"].items():
            print(f"  {kind} lines flagged: {r['flagged']}/{r['lines_in_tree']} in the tree"
                  f" (+{r['lines_outside_tree']} lines outside it)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
