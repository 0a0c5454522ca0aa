"""``compile-safe-validate``: prove accuracy and speed of Toto before and after the fix.

Runs the real Toto source (``toto-ts``) and the output of ``compile-safe-fix`` on a fresh copy
of it, each in its own subprocess (:mod:`flake8_compile_safe.validate.harness`), eager and
compiled, then prints a table, checks the checklist and optionally writes JSON and a report.

Exit status: 0 checklist passed; 1 checklist failed; 2 bad input or a run that failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .harness import CONFIGS, MODES, HarnessError, read_csv_series

PROG = "compile-safe-validate"
REPO_ROOT = Path(__file__).resolve().parents[2]
FINDING_RE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>TCS\d+) (?P<msg>.*)$")

MAE_DIFF_MAX = 1e-3


class CliError(Exception):
    """Reported as ``compile-safe-validate: error: <message>`` and exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        print(f"{PROG}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", help="directory holding the original toto/ package "
                    "(default: toto-ts==0.2.0 fetched into the cache)")
    ap.add_argument("--fixed", help="directory holding an already-fixed toto/ package "
                    "(default: run compile-safe-fix on a fresh copy of --source)")
    ap.add_argument("--strategy", default="tensor-index", help="compile-safe-fix strategy")
    ap.add_argument("--no-fix", action="store_true", help="validate the original only")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--checkpoint", help="local checkpoint directory (model.safetensors + config.json)")
    ap.add_argument("--csv", help="CSV file with a numeric column (default: seeded series)")
    ap.add_argument("--mode", action="append", help="torch.compile mode: default, reduce-overhead, "
                    "max-autotune (repeatable; default: default)")
    ap.add_argument("--backend", choices=("inductor", "analysis"), default="inductor",
                    help="inductor (timed for real) or analysis (dynamo + AOT metadata only)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--steps", type=int, default=12, help="decode steps with the KV cache")
    ap.add_argument("--context", type=int, default=0, help="context length (default: 4 patches)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up decodes (the first compiles)")
    ap.add_argument("--runs", type=int, default=5, help="timed decodes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads per run (0: torch default)")
    ap.add_argument("--min-speedup", type=float, default=1.0,
                    help="checklist: compiled fixed variant must be this much faster than eager")
    ap.add_argument("--json", dest="json_path", help="write one object per variant and mode here")
    ap.add_argument("--report", help="write report.md and chart.png into this directory")
    ap.add_argument("--workdir", help="keep the fixed copy and raw results here (default: temp dir)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per harness run")
    ap.add_argument("--no-lint", action="store_true", help="skip the flake8 static-recall column")
    ap.add_argument("--quick", action="store_true",
                    help="fix a fresh copy, validate --config tiny on CPU, write a report (< 5 min)")
    return ap


# ---------------------------------------------------------------------------------------------
# input checks


def _patch_size(args) -> int:
    if args.checkpoint:
        cfg = Path(args.checkpoint) / "config.json"
        try:
            data = json.loads(cfg.read_text()) if cfg.is_file() else {}
        except (OSError, ValueError) as exc:
            raise CliError(f"{cfg}: unreadable config.json ({exc})") from None
        return int(data.get("stride", data.get("patch_size", 64)))
    return int(CONFIGS[args.config]["stride"])


def check_inputs(args) -> None:
    for mode in args.mode:
        if mode not in MODES:
            raise CliError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
    for name in ("steps", "warmup", "runs"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name} must be >= 1")
    if args.checkpoint:
        ck = Path(args.checkpoint)
        if not ck.is_dir():
            raise CliError(f"{args.checkpoint}: checkpoint directory not found")
        if not (ck / "model.safetensors").is_file():
            raise CliError(f"{args.checkpoint}: checkpoint directory has no model.safetensors")
    patch = _patch_size(args)
    context = args.context or max(4 * patch, 64)
    context = -(-context // patch) * patch
    if args.csv:
        try:
            read_csv_series(args.csv, context + args.steps * patch)
        except HarnessError as exc:
            raise CliError(str(exc)) from None
    for flag in ("source", "fixed"):
        d = getattr(args, flag)
        if d and not (Path(d) / "toto" / "__init__.py").is_file():
            raise CliError(f"{d}: --{flag} has no toto/ package")


# ---------------------------------------------------------------------------------------------
# running the fixer, the linter and the harness


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def run_fixer(tree: Path, strategy: str) -> dict:
    cmd = [sys.executable, "-m", "fixers.cli", "--strategy", strategy, str(tree / "toto")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
        raise CliError(f"compile-safe-fix --strategy {strategy} failed on {tree / 'toto'}: {last}")
    return {"command": " ".join(["compile-safe-fix"] + cmd[3:]), "seconds": round(elapsed, 2),
            "returncode": proc.returncode,
            "stdout_tail": proc.stdout[-2000:]}


def lint_findings(tree: Path, extra_args: list[str] | None = None) -> list[dict] | None:
    """``flake8 --select=TCS`` findings under tree/toto/model, or None if the linter can't run."""
    cmd = [sys.executable, "-m", "flake8", "--select=TCS", "--compile-safe-root", str(tree),
           str(tree / "toto" / "model")] + list(extra_args or [])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return None
    findings = []
    for line in proc.stdout.splitlines():
        m = FINDING_RE.match(line.strip())
        if m:
            findings.append({"path": os.path.realpath(m.group("path")), "line": int(m.group("line")),
                             "code": m.group("code"), "message": m.group("msg")})
    if not findings and proc.returncode not in (0, 1):
        return None  # flake8 itself failed (e.g. the plugin is not installed)
    return findings


def annotate_recall(events: list[dict], findings: list[dict] | None) -> None:
    index: dict[tuple[str, int], list[str]] = {}
    for f in findings or []:
        index.setdefault((f["path"], f["line"]), []).append(f["code"])
    for ev in events:
        if findings is None or not ev.get("file") or not ev.get("line"):
            ev["flagged"] = None
            ev["tcs_codes"] = []
            continue
        codes = index.get((os.path.realpath(ev["file"]), int(ev["line"])), [])
        ev["flagged"] = bool(codes)
        ev["tcs_codes"] = sorted(set(codes))


def run_harness(tree: Path, args, out_json: Path, log_path: Path) -> dict:
    cmd = [sys.executable, "-m", "flake8_compile_safe.validate.harness", "--source", str(tree),
           "--config", args.config, "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--runs", str(args.runs), "--seed", str(args.seed), "--device", args.device,
           "--backend", args.backend, "--threads", str(args.threads), "--json", str(out_json)]
    for mode in args.mode:
        cmd += ["--mode", mode]
    if args.context:
        cmd += ["--context", str(args.context)]
    if args.checkpoint:
        cmd += ["--checkpoint", str(Path(args.checkpoint).resolve())]
    if args.csv:
        cmd += ["--csv", str(Path(args.csv).resolve())]
    try:
        with open(log_path, "w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(),
                                  timeout=args.timeout)
    except subprocess.TimeoutExpired:
        raise CliError(f"harness on {tree} timed out after {args.timeout}s (log: {log_path})") from None
    if proc.returncode != 0 or not out_json.is_file():
        lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
        err = [ln for ln in lines if ln.startswith("harness: error:")]
        last = err[-1].split("harness: error:", 1)[1].strip() if err else (lines[-1] if lines else "no output")
        raise CliError(f"harness on {tree} failed: {last} (log: {log_path})")
    return json.loads(out_json.read_text())


# ---------------------------------------------------------------------------------------------
# checklist, table, outputs


def rows_of(results: dict[str, dict]) -> list[dict]:
    rows = []
    for variant, res in results.items():
        for row in res["rows"]:
            r = {"variant": variant, **row}
            r["events"] = [e for e in res["events"] if e.get("mode") == row["mode"]]
            r["device"] = res["device"]
            r["config"] = res["config"]
            r["source"] = res["source"]
            r["steps"] = res["steps"]
            rows.append(r)
    return rows


def checklist(rows: list[dict], target: str, min_speedup: float) -> list[dict]:
    items = []
    for r in rows:
        if r["variant"] != target or r["mode"] == "eager":
            continue
        skips = r["cudagraph_skips"] if r.get("cudagraph_skips") is not None else r["predicted_cudagraph_skips"]
        what = "CUDA-graph skips" if r.get("cudagraph_skips") is not None else "predicted CUDA-graph skips"
        sp = r.get("speedup_vs_eager") or 0.0
        items += [
            {"variant": target, "mode": r["mode"], "check": f"MAE difference < {MAE_DIFF_MAX:g}",
             "value": r["mae_diff"], "ok": r["mae_diff"] < MAE_DIFF_MAX},
            {"variant": target, "mode": r["mode"], "check": f"no {what}", "value": skips, "ok": skips == 0},
            {"variant": target, "mode": r["mode"], "check": "no recompiles after warm-up",
             "value": r["recompiles_after_warmup"], "ok": r["recompiles_after_warmup"] == 0},
            {"variant": target, "mode": r["mode"], "check": f"speedup over eager >= {min_speedup:g}",
             "value": round(sp, 3), "ok": sp >= min_speedup},
        ]
    return items


COLUMNS = [("variant", "variant", "{}"), ("mode", "mode", "{}"), ("graphs", "unique_graphs", "{}"),
           ("breaks", "graph_breaks", "{}"), ("skips", "frame_skips", "{}"),
           ("recomp", "recompiles", "{}"), ("cg skip", "_cg", "{}"),
           ("max|diff|", "max_abs_diff", "{:.2e}"), ("MAE", "mae", "{:.4f}"), ("dMAE", "mae_diff", "{:.1e}"),
           ("p50 ms", "latency_ms_median", "{:.1f}"), ("p90 ms", "latency_ms_p90", "{:.1f}"),
           ("compile s", "compile_s", "{:.1f}"), ("mem MB", "peak_mem_mb", "{:.0f}"),
           ("speedup", "speedup_vs_eager", "{:.2f}x")]


def _cell(row, key, fmt):
    if key == "_cg":
        if row["mode"] == "eager":
            return "-"
        v = row.get("cudagraph_skips")
        return str(v) if v is not None else f"{row['predicted_cudagraph_skips']} (pred)"
    v = row.get(key)
    if v is None:
        return "-"
    try:
        return fmt.format(v)
    except (ValueError, TypeError):
        return str(v)


def format_table(rows: list[dict]) -> str:
    cells = [[h for h, _, _ in COLUMNS]] + [[_cell(r, k, f) for _, k, f in COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_events(rows: list[dict], limit: int = 60) -> str:
    out = []
    for r in rows:
        if r["mode"] == "eager" or not r["events"]:
            continue
        agg: dict[tuple, dict] = {}
        for e in r["events"]:
            key = (e["kind"], e.get("file"), e.get("line"), e.get("reason", "")[:90])
            a = agg.setdefault(key, {**e, "count": 0})
            a["count"] += 1
        out.append(f"{r['variant']} / {r['mode']}: {len(r['events'])} events")
        for i, ((kind, f, line, reason), e) in enumerate(agg.items()):
            if i >= limit:
                out.append(f"  ... {len(agg) - limit} more (see --json)")
                break
            where = f"{_short(f, r['source'])}:{line}" if f else "?"
            flag = {True: "TCS:" + ",".join(e.get("tcs_codes") or []), False: "not flagged",
                    None: "lint n/a"}[e.get("flagged")]
            out.append(f"  {kind:<24} {where:<32} x{e['count']:<3} [{flag}] {reason}")
    return "\n".join(out)


def _short(path, source):
    try:
        return os.path.relpath(path, source) if path and source and path.startswith(source) else path
    except ValueError:
        return path


def recall_summary(rows: list[dict]) -> dict:
    summ = {}
    for r in rows:
        if r["mode"] == "eager":
            continue
        locs = {(e["file"], e["line"]): e.get("flagged") for e in r["events"] if e.get("file") and e.get("line")}
        known = [v for v in locs.values() if v is not None]
        summ[f"{r['variant']}/{r['mode']}"] = {
            "locations": len(locs), "flagged": sum(1 for v in known if v),
            "recall": (sum(1 for v in known if v) / len(known)) if known else None}
    return summ


def write_report(report_dir: Path, rows, checks, meta) -> list[str]:
    report_dir.mkdir(parents=True, exist_ok=True)
    written = []
    chart = report_dir / "chart.png"
    chart_ok = False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        labels = [f"{r['variant']}\n{r['mode']}" for r in rows]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(rows) * 2), 4.2))
        med = [r["latency_ms_median"] for r in rows]
        p90 = [max(0.0, r["latency_ms_p90"] - r["latency_ms_median"]) for r in rows]
        colors = ["#999999" if r["mode"] == "eager" else ("#2b8cbe" if r["variant"] != "original" else "#e34a33")
                  for r in rows]
        ax1.bar(range(len(rows)), med, yerr=[[0] * len(rows), p90], color=colors, capsize=4)
        ax1.set_xticks(range(len(rows)), labels, fontsize=8)
        ax1.set_ylabel(f"decode latency, ms ({meta['steps']} steps; bar p50, whisker p90)")
        ax1.set_title("Latency per variant")
        ax2.bar(range(len(rows)), [r["mae"] for r in rows], color=colors)
        ax2.set_xticks(range(len(rows)), labels, fontsize=8)
        ax2.set_ylabel("forecast MAE vs held-out truth")
        ax2.set_title("Accuracy per variant")
        for i, r in enumerate(rows):
            ax2.annotate(f"{r['mae_diff']:.1e}", (i, r["mae"]), ha="center", va="bottom", fontsize=7)
        fig.tight_layout()
        fig.savefig(chart, dpi=110)
        plt.close(fig)
        chart_ok = True
        written.append(str(chart))
    except ImportError:
        pass
    md = ["# compile-safe-validate report", "",
          f"- device: {meta['device']}, torch {meta['torch']}, config: {meta['config']}, "
          f"{meta['steps']} decode steps, warm-up {meta['warmup']}, timed runs {meta['runs']}",
          f"- data: {meta['data']}", f"- command: `{meta['command']}`", ""]
    if meta.get("fixer"):
        md += [f"- fixer: `{meta['fixer']['command']}` ({meta['fixer']['seconds']} s)", ""]
    md += ["## Results", "", "| " + " | ".join(h for h, _, _ in COLUMNS) + " |",
           "|" + "---|" * len(COLUMNS)]
    for r in rows:
        md.append("| " + " | ".join(_cell(r, k, f) for _, k, f in COLUMNS) + " |")
    md += ["", "## Checklist", ""]
    for c in checks:
        md.append(f"- [{'x' if c['ok'] else ' '}] {c['variant']} / {c['mode']}: {c['check']} (value: {c['value']})")
    if not checks:
        md.append("- (no compiled rows to check)")
    md += ["", "## Dynamo events and static recall", "", "```", format_events(rows, limit=200) or "(none)", "```", ""]
    md += ["Static recall (event locations flagged by `flake8 --select=TCS`):", ""]
    for k, v in recall_summary(rows).items():
        rec = "n/a" if v["recall"] is None else f"{v['recall']:.0%}"
        md.append(f"- {k}: {v['flagged']}/{v['locations']} locations flagged (recall {rec})")
    if chart_ok:
        md += ["", "![latency and accuracy](chart.png)"]
    else:
        md += ["", "(chart not written: matplotlib is not installed; `pip install flake8-compile-safe[validate]`)"]
    (report_dir / "report.md").write_text("\n".join(md) + "\n")
    written.insert(0, str(report_dir / "report.md"))
    return written


# ---------------------------------------------------------------------------------------------


def _main(args) -> int:
    if args.quick:
        args.config = "tiny" if not args.checkpoint else args.config
        if args.device == "auto":
            args.device = "cpu"
        if not args.threads:
            args.threads = 1  # steadier timings on small shared CI runners
    args.mode = args.mode or ["default"]
    check_inputs(args)
    t_start = time.perf_counter()
    work = (Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="compile-safe-validate-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.source:
        original = Path(args.source).resolve()
    else:
        from ..families.toto import fetch_toto

        try:
            original = fetch_toto()
        except RuntimeError as exc:
            raise CliError(str(exc)) from None
    variants: dict[str, Path] = {"original": original}
    fixer_info = None
    if args.fixed:
        variants["fixed"] = Path(args.fixed).resolve()
    elif not args.no_fix:
        fixed = work / "fixed"
        if fixed.exists():
            shutil.rmtree(fixed)
        shutil.copytree(original, fixed, ignore=shutil.ignore_patterns("__pycache__"))
        fixer_info = run_fixer(fixed, args.strategy)
        variants["fixed"] = fixed
    results = {}
    for name, tree in variants.items():
        print(f"[{PROG}] running {name}: {tree}", file=sys.stderr, flush=True)
        results[name] = run_harness(tree, args, work / f"{name}.json", work / f"{name}.log")
        findings = None if args.no_lint else lint_findings(tree)
        annotate_recall(results[name]["events"], findings)
        results[name]["lint_findings"] = findings
    rows = rows_of(results)
    target = "fixed" if "fixed" in results else "original"
    checks = checklist(rows, target, args.min_speedup)
    print(format_table(rows))
    ev = format_events(rows)
    if ev:
        print()
        print(ev)
    print()
    for c in checks:
        print(f"[{'PASS' if c['ok'] else 'FAIL'}] {c['variant']}/{c['mode']}: {c['check']} (value: {c['value']})")
    passed = all(c["ok"] for c in checks)
    total_s = time.perf_counter() - t_start
    print(f"checklist: {'PASSED' if passed else 'FAILED'} ({total_s:.0f} s)")
    meta = {k: results[target][k] for k in ("device", "torch", "config", "steps", "warmup", "runs", "data")}
    meta["command"] = " ".join([PROG] + (args._argv or []))
    meta["fixer"] = fixer_info
    if args.json_path:
        out = []
        for r in rows:
            mine = [c for c in checks if c["variant"] == r["variant"] and c["mode"] == r["mode"]]
            out.append({**r, "checklist": mine,
                        "passed": passed, "torch": results[r["variant"]]["torch"],
                        "lint_available": results[r["variant"]]["lint_findings"] is not None,
                        "total_s": round(total_s, 1), "fixer": fixer_info if r["variant"] == "fixed" else None})
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(out, indent=1, default=str))
    report_dir = args.report or (str(work / "report") if args.quick else None)
    if report_dir:
        written = write_report(Path(report_dir), rows, checks, meta)
        print("report: " + ", ".join(written))
    return 0 if passed else 1


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args._argv = argv
    try:
        return _main(args)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
