"""How much the TCS plugin adds to flake8 on a large real tree (the ``transformers`` package).

Downloads the ``transformers`` wheel from the package registry once (``pip download --no-deps``
into ``$COMPILE_SAFE_CACHE`` or ``~/.cache/flake8-compile-safe``), unpacks only ``transformers/``
into ``<cache>/transformers-<version>/`` (temporary directory renamed into place, so an interrupted
run never leaves half a tree), then lints the same tree with the same interpreter twice, each run in
its own subprocess:

* ``plain``:  flake8 with this plugin dropped from plugin discovery (default checks: E, F, W, C90);
* ``plugin``: the same flake8 with the plugin loaded, ``--extend-select=TCS``, and
  ``--compile-safe-root=<tree root>`` (the plugin indexes the whole tree once per process, so with
  ``--jobs N`` each of the N workers builds its own index).

Both run with ``--isolated`` (no config file is read), ``--exit-zero``, and their report written to
a temporary file. Printed per variant: wall time of the subprocess (interpreter start included;
median over ``--repeat`` runs), CPU time (user + sys of the process and its workers), peak RSS (the
largest single process: the flake8 process's own ``VmHWM`` on Linux, and ``ru_maxrss`` over its
reaped workers and analysis child, not their sum), files checked, findings and TCS findings; then the wall-time ratio plugin/plain, the
plugin overhead in percent, and whether it meets the target "the plugin adds at most 50% to plain
flake8's wall time". ``--json PATH`` also saves all figures.

    python benchmarks/lint_speed.py                      # the whole tree (~2,860 files; slow)
    python benchmarks/lint_speed.py --subset 40          # 40 model folders + top-level modules
    python benchmarks/lint_speed.py --subset 5 --jobs 1 --repeat 3 --json /tmp/lint_speed.json

Then the pre-commit scenario (``--no-pre-commit`` skips it; ``--no-full`` skips the comparison
above): a copy of the tree in a git checkout (``--workdir``), and the hook's command
``flake8 --select=TCS transformers/models/llama/modeling_llama.py`` run as pre-commit runs it: a
first (cold) run that fills the persistent cache, a warm run, plain flake8 on the same file, a
run after adding a hazard to ``LlamaRMSNorm.forward`` (which other models import), a cold run
without the cache on the edited tree whose findings must be the same (``--no-verify`` skips
it), and a run after undoing the edit. Printed: wall, CPU and peak RSS of each run with what the
cache did (mode, files parsed, functions analysed and replayed, from the cache's
``last_run.json``), the targets (warm <= 2 s and 300 MB, after the edit <= 5 s, <= 100 KB of
memory per indexed file), and the cache's size on disk per file.

``--subset N`` lints (and lets the plugin index) only a copy of the tree holding the top-level
modules (``transformers/*.py``), ``transformers/models/__init__.py`` and the first N model folders
of ``transformers/models`` in sorted order; the other sub-packages (``utils``, ``generation``,
``integrations``, ...) are left out. Default: the whole tree. ``--jobs`` defaults to flake8's own
default (``auto``: one worker per CPU). Not a test: it asserts nothing about speed, and exits non-zero
only when a run fails or the plugin was not (or wrongly) loaded.

Timings are wall-clock on whatever else the machine is doing: on shared cores use ``--repeat`` and
compare CPU times as well.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flake8_compile_safe.families.fetch import cache_dir, fetch_package_source

TRANSFORMERS_VERSION = "5.23.0"
PLUGIN_PACKAGE = "flake8-compile-safe"
TARGET_RATIO = 1.5  # the plugin adds at most 50% to plain flake8's wall time
VARIANTS = ("plain", "plugin")
CHILD_FLAG = "--_child"
SENTINEL = Path("transformers") / "modeling_utils.py"
FINDING_RE = re.compile(r":\d+:\d+: ([A-Z]+\d+) ")


# --------------------------------------------------------------------------- the child process


def _maxrss_mb(usage: resource.struct_rusage) -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    return usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _own_peak_mb(usage: resource.struct_rusage) -> float:
    """This process's peak RSS. On Linux ``ru_maxrss`` keeps the high-water mark of the process
    that forked and exec'd us (the benchmark, holding the full tree's results): read this
    process's own memory map's mark (``VmHWM``) instead."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _maxrss_mb(usage)


def child_main(variant: str, flake8_argv: list[str]) -> int:
    """Run flake8 in this process (``flake8.main.cli.main``'s three lines, inlined so the files
    checked and the loaded plugins can be read back), then print the figures as JSON on the last
    line of stderr."""
    import multiprocessing

    # flake8 hands its plugins to pool workers by fork; under spawn/forkserver the workers would
    # rediscover plugins unpatched and the plain variant would silently run the plugin.
    if "fork" in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method("fork", force=True)

    from flake8.main import application
    from flake8.plugins import finder

    if variant == "plain":
        find_plugins = finder.find_plugins

        def without_us(cfg, opts):
            return [p for p in find_plugins(cfg, opts) if p.package != PLUGIN_PACKAGE]

        finder.find_plugins = without_us

    t0 = time.perf_counter()
    app = application.Application()
    app.run(flake8_argv)
    code = app.exit_code()
    flake8_s = time.perf_counter() - t0
    # The plugin's forked analysis hands over its findings, then writes the cache while flake8
    # runs on; flake8 joins it at exit. Join it here so its CPU time and memory are counted.
    analysis = sys.modules.get("flake8_compile_safe.analysis")
    if analysis is not None:
        analysis.wait_for_cache_writes()

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    manager = app.file_checker_manager
    figures = {
        "variant": variant,
        "exit_code": code,
        "catastrophic_failure": bool(app.catastrophic_failure),
        "flake8_s": flake8_s,
        "cpu_s": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
        "peak_rss_mb": max(_own_peak_mb(own), _maxrss_mb(kids)),
        "peak_rss_main_mb": _own_peak_mb(own),
        "peak_rss_workers_mb": _maxrss_mb(kids),
        "files": len(manager.filenames) if manager is not None else None,
        "jobs": manager.jobs if manager is not None else None,
        "plugins": sorted({lp.plugin.package for lp in app.plugins.all_plugins()}) if app.plugins else [],
        "total_results": app.total_result_count,
        "reported_results": app.result_count,
    }
    sys.stdout.flush()
    print(json.dumps(figures), file=sys.stderr, flush=True)
    return code


# --------------------------------------------------------------------------- the tree


def fetch_transformers(version: str = TRANSFORMERS_VERSION, cache: Path | None = None) -> Path:
    """``<cache>/transformers-<version>/`` holding ``transformers/`` (downloaded once)."""
    target = (Path(cache) if cache is not None else cache_dir()) / f"transformers-{version}"
    if not (target / SENTINEL).is_file():
        print(f"downloading transformers=={version} into {target.parent} ...", file=sys.stderr, flush=True)
    return fetch_package_source("transformers", version, "transformers", SENTINEL.as_posix(), cache)


def model_folders(tree: Path) -> list[Path]:
    models = tree / "transformers" / "models"
    return sorted((d for d in models.iterdir()
                   if d.is_dir() and not d.name.startswith((".", "_")) and any(d.rglob("*.py"))),
                  key=lambda d: d.name)


def subset_files(tree: Path, n: int) -> list[Path]:
    """Top-level modules, ``models/__init__.py`` and the first ``n`` model folders (relative paths)."""
    pkg = tree / "transformers"
    files = sorted(pkg.glob("*.py"))
    if (pkg / "models" / "__init__.py").is_file():
        files.append(pkg / "models" / "__init__.py")
    for folder in model_folders(tree)[:n]:
        files.extend(sorted(folder.rglob("*.py")))
    return [f.relative_to(tree) for f in files]


def make_subset(tree: Path, n: int, workdir: Path) -> Path:
    """A tree holding only :func:`subset_files` (hard links where possible, else copies).

    Copies, not symlinks: the plugin resolves paths, and a symlink would resolve back into the
    full tree, outside ``--compile-safe-root``.
    """
    root = workdir / f"transformers-subset{n}"
    for rel in subset_files(tree, n):
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(tree / rel, dest)
        except OSError:
            shutil.copy2(tree / rel, dest)
    return root


def warm_page_cache(root: Path) -> int:
    """Read every file once so the first timed run does not pay for cold disk reads."""
    count = 0
    for path in (root / "transformers").rglob("*.py"):
        path.read_bytes()
        count += 1
    return count


# --------------------------------------------------------------------------- the parent


def flake8_argv(variant: str, root: Path, output: Path, jobs: str | None, cache: Path | None = None) -> list[str]:
    argv = ["--isolated", "--exit-zero", "--format=default", f"--output-file={output}"]
    if jobs is not None:
        argv.append(f"--jobs={jobs}")
    if variant == "plugin":
        argv += ["--extend-select=TCS", f"--compile-safe-root={root}"]
        # A fresh cache directory per run: every full-tree run is a cold one.
        argv.append(f"--compile-safe-cache-dir={cache}" if cache is not None else "--compile-safe-no-cache")
    return [*argv, str(root / "transformers")]


def run_variant(variant: str, root: Path, jobs: str | None, scratch: Path, index: int) -> dict:
    output = scratch / f"{variant}-{index}.txt"
    return run_flake8(variant, flake8_argv(variant, root, output, jobs, scratch / f"tcs-cache-{index}"),
                      root, output)


def run_flake8(variant: str, argv: list[str], cwd: Path, output: Path, keep_output: bool = False) -> dict:
    """One flake8 run in a child process: its figures, and its findings (``lines``) if kept."""
    cmd = [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, variant, *argv]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    try:
        figures = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"{variant}: flake8 child exited {proc.returncode} without figures:\n"
                           + "\n".join(lines[-30:])) from None
    if proc.returncode != 0 or figures["catastrophic_failure"]:
        raise RuntimeError(f"{variant}: flake8 failed (exit {proc.returncode}):\n" + "\n".join(lines[-30:]))
    loaded = PLUGIN_PACKAGE in figures["plugins"]
    if loaded != (variant == "plugin"):
        raise RuntimeError(f"{variant}: {PLUGIN_PACKAGE} {'was' if loaded else 'was not'} loaded "
                           f"(plugins: {', '.join(figures['plugins'])})")
    lines = output.read_text(errors="replace").splitlines()
    codes = [m.group(1) for m in map(FINDING_RE.search, lines) if m]
    output.unlink()
    figures.update(wall_s=wall, findings=len(codes), tcs_findings=sum(c.startswith("TCS") for c in codes),
                   tcs_codes=sorted({c for c in codes if c.startswith("TCS")}))
    if keep_output:
        figures["lines"] = lines
    return figures


# --------------------------------------------------------------------------- the pre-commit scenario

HOOK_FILE = Path("transformers") / "models" / "llama" / "modeling_llama.py"
# LlamaRMSNorm.forward: many models import LlamaRMSNorm (or inherit from it) from this file.
EDIT_AFTER = "        input_dtype = hidden_states.dtype\n"
EDIT_LINE = "        peak = float(hidden_states.abs().max().item())\n"
TARGET_WARM_S, TARGET_WARM_MB, TARGET_EDIT_S, TARGET_KB_PER_FILE = 2.0, 300.0, 5.0, 100.0


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _cache_stats(copy: Path) -> dict:
    stats = copy / ".compile_safe_cache" / "last_run.json"
    return json.loads(stats.read_text()) if stats.is_file() else {}


def precommit_scenario(tree: Path, workdir: Path, verify: bool) -> dict:
    """What a pre-commit hook costs: ``flake8 --select=TCS <the changed file>`` in a git checkout.

    A copy of the tree in ``workdir`` (a git repository, so that it is the project root);
    then, each in its own process: the first (cold) run, a warm run on the same file, plain
    flake8 on that file, a run after editing a function other files call into, and (with
    ``verify``) a cold run without the cache on the edited tree whose findings must be the same.
    """
    copy = workdir / "precommit"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(tree / "transformers", copy / "transformers")
    subprocess.run(["git", "init", "-q", str(copy)], check=True)
    files = sum(1 for _ in (copy / "transformers").rglob("*.py"))
    out = copy.parent / "precommit-out.txt"
    hook = ["--select=TCS", "--exit-zero", "--format=default", f"--output-file={out}", str(HOOK_FILE)]

    def run(label: str, variant: str, argv: list[str]) -> dict:
        print(f"pre-commit scenario: {label} ...", file=sys.stderr, flush=True)
        figures = run_flake8(variant, argv, copy, out, keep_output=True)
        uses_cache = variant == "plugin" and "--compile-safe-no-cache" not in argv
        figures["cache"] = _cache_stats(copy) if uses_cache else {}
        return figures

    runs = {"first": run("first run (cold, fills the cache)", "plugin", hook)}
    runs["warm"] = run("warm run, nothing changed", "plugin", hook)
    runs["plain"] = run("plain flake8 on the file", "plain",
                        ["--exit-zero", "--format=default", f"--output-file={out}", str(HOOK_FILE)])
    source = (copy / HOOK_FILE).read_text()
    if EDIT_AFTER not in source:
        raise RuntimeError(f"{HOOK_FILE}: the line to edit after is gone")
    (copy / HOOK_FILE).write_text(source.replace(EDIT_AFTER, EDIT_AFTER + EDIT_LINE, 1))
    edited_line = source[:source.index(EDIT_AFTER)].count("\n") + 2
    runs["edit"] = run("warm run after the edit", "plugin", hook)
    if not any(f":{edited_line}:" in line and "TCS002" in line for line in runs["edit"]["lines"]):
        raise RuntimeError(f"the edit at {HOOK_FILE}:{edited_line} was not reported:\n"
                           + "\n".join(runs["edit"]["lines"]))
    if verify:
        runs["edit_cold"] = run("cold run without the cache on the edited tree", "plugin",
                                ["--compile-safe-no-cache", *hook])
    (copy / HOOK_FILE).write_text(source)
    runs["revert"] = run("warm run after undoing the edit", "plugin", hook)
    cache_bytes = _tree_bytes(copy / ".compile_safe_cache")
    result = {"files": files, "cache_bytes": cache_bytes, "cache_kb_per_file": cache_bytes / files / 1024,
              "edited": f"{HOOK_FILE}:{edited_line}", "runs": runs}
    if verify:
        result["edit_equals_cold"] = runs["edit"]["lines"] == runs["edit_cold"]["lines"]
    result["warm_rss_kb_per_file"] = runs["edit"]["peak_rss_mb"] * 1024 / files
    shutil.rmtree(copy)
    return result


def print_precommit(result: dict) -> None:
    runs = result["runs"]
    print()
    print(f"pre-commit scenario: flake8 --select=TCS {HOOK_FILE} in a git checkout of the tree "
          f"({result['files']} files); edit: {result['edited']}")
    print(f"{'run':<34} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} {'TCS':>4}  "
          "cache (mode, parsed, analysed, replayed)")
    labels = {"first": "first run (cold)", "warm": "warm, nothing changed", "plain": "plain flake8, same file",
              "edit": "warm, after the edit", "edit_cold": "cold, no cache, edited tree",
              "revert": "warm, after undoing the edit"}
    for key, label in labels.items():
        if key not in runs:
            continue
        r, c = runs[key], runs[key]["cache"]
        cache = f"{c.get('mode')}, {c.get('parsed')}, {c.get('analysed')}, {c.get('replayed')}" if c else "-"
        print(f"{label:<34} {r['wall_s']:>7.2f} {r['cpu_s']:>7.2f} {r['peak_rss_mb']:>8.1f} "
              f"{r['tcs_findings']:>4}  {cache}")
    warm, edit, plain = runs["warm"], runs["edit"], runs["plain"]
    met = warm["wall_s"] <= TARGET_WARM_S and warm["peak_rss_mb"] <= TARGET_WARM_MB
    print(f"warm one file: {warm['wall_s']:.2f} s wall, {warm['cpu_s']:.2f} s cpu, {warm['peak_rss_mb']:.0f} MB "
          f"(plain flake8: {plain['wall_s']:.2f} s, {plain['peak_rss_mb']:.0f} MB); target <= {TARGET_WARM_S:.0f} s "
          f"and <= {TARGET_WARM_MB:.0f} MB: {'MET' if met else 'NOT MET'}")
    print(f"after the edit: {edit['wall_s']:.2f} s wall, {edit['cpu_s']:.2f} s cpu; target <= {TARGET_EDIT_S:.0f} s: "
          f"{'MET' if edit['wall_s'] <= TARGET_EDIT_S else 'NOT MET'}")
    if "edit_equals_cold" in result:
        print(f"findings after the edit equal a cold run's: {'yes' if result['edit_equals_cold'] else 'NO'}")
    print(f"cache on disk: {result['cache_bytes'] / 1e6:.1f} MB, {result['cache_kb_per_file']:.1f} KB per file; "
          f"peak RSS of the run after the edit: {result['warm_rss_kb_per_file']:.1f} KB per file "
          f"(target <= {TARGET_KB_PER_FILE:.0f} KB: "
          f"{'MET' if result['warm_rss_kb_per_file'] <= TARGET_KB_PER_FILE else 'NOT MET'})")


def summarize(runs: list[dict]) -> dict:
    last = runs[-1]
    walls = [r["wall_s"] for r in runs]
    return {
        "wall_s": statistics.median(walls),
        "wall_s_min": min(walls),
        "wall_s_all": walls,
        "cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "flake8_s": statistics.median(r["flake8_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "peak_rss_main_mb": max(r["peak_rss_main_mb"] for r in runs),
        "peak_rss_workers_mb": max(r["peak_rss_workers_mb"] for r in runs),
        "files": last["files"],
        "jobs": last["jobs"],
        "findings": last["findings"],
        "tcs_findings": last["tcs_findings"],
        "tcs_codes": last["tcs_codes"],
        "plugins": last["plugins"],
    }


def print_table(meta: dict, results: dict, verdict: dict) -> None:
    print(f"tree: {meta['tree']}  ({meta['scope']}; {meta['files']} files; "
          f"jobs={meta['jobs']}; repeat={meta['repeat']})")
    print(f"{'variant':<8} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'files':>6} {'findings':>9} {'TCS':>6}")
    for name in VARIANTS:
        r = results[name]
        print(f"{name:<8} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} {r['peak_rss_mb']:>8.1f} {r['files']:>6} "
              f"{r['findings']:>9} {r['tcs_findings']:>6}")
    print(f"ratio plugin/plain (wall): {verdict['ratio']:.2f}x   (cpu: {verdict['cpu_ratio']:.2f}x)")
    print(f"plugin overhead: {verdict['overhead_pct']:+.0f}% of plain flake8's wall time")
    print(f"target (plugin adds at most {TARGET_RATIO - 1:.0%}): "
          f"{'MET' if verdict['meets_target'] else 'NOT MET'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subset", type=int, default=None, metavar="N",
                    help="lint only the top-level modules and the first N model folders "
                         "(default: the whole transformers tree)")
    ap.add_argument("--jobs", default=None,
                    help="flake8 --jobs for both variants (default: flake8's default, auto)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per variant, interleaved (default 1)")
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="also save the figures here")
    ap.add_argument("--transformers-version", default=TRANSFORMERS_VERSION,
                    help=f"transformers release to lint (default {TRANSFORMERS_VERSION})")
    ap.add_argument("--cache", type=Path, default=None,
                    help="cache directory (default: $COMPILE_SAFE_CACHE or ~/.cache/flake8-compile-safe)")
    ap.add_argument("--no-full", action="store_true", help="skip the full-tree plain/plugin comparison")
    ap.add_argument("--no-pre-commit", action="store_true", help="skip the pre-commit scenario")
    ap.add_argument("--no-verify", action="store_true",
                    help="pre-commit scenario: skip the cold run that checks the edited tree's findings")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where the pre-commit scenario copies the tree (default: a temporary directory)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.subset is not None and args.subset < 0:
        ap.error("--subset must be >= 0")

    tree = fetch_transformers(args.transformers_version, args.cache)
    cache = Path(args.cache) if args.cache is not None else cache_dir()
    with tempfile.TemporaryDirectory(dir=cache, prefix="lint-speed-") as tmp:
        scratch = Path(tmp)
        if args.subset is None:
            root, scope = tree, "whole tree"
        else:
            root = make_subset(tree, args.subset, scratch)
            folders = model_folders(tree)
            scope = f"subset: top-level modules + {min(args.subset, len(folders))}/{len(folders)} model folders"
        files = warm_page_cache(root)

        runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
        for i in range(0 if args.no_full else args.repeat):
            for name in VARIANTS:
                print(f"run {i + 1}/{args.repeat}: {name} ...", file=sys.stderr, flush=True)
                runs[name].append(run_variant(name, root, args.jobs, scratch, i))
        precommit = None
        if not args.no_pre_commit:
            workdir = args.workdir or scratch
            workdir.mkdir(parents=True, exist_ok=True)
            precommit = precommit_scenario(root, workdir, verify=not args.no_verify)

    if args.no_full:
        if precommit is not None:
            print_precommit(precommit)
            if args.json is not None:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps({"pre_commit": precommit}, indent=2) + "\n")
        return 0
    results = {name: summarize(r) for name, r in runs.items()}
    if results["plain"]["files"] != results["plugin"]["files"]:
        print(f"warning: the variants checked different file counts "
              f"({results['plain']['files']} vs {results['plugin']['files']})", file=sys.stderr)
    ratio = results["plugin"]["wall_s"] / results["plain"]["wall_s"]
    verdict = {
        "ratio": ratio,
        "cpu_ratio": results["plugin"]["cpu_s"] / results["plain"]["cpu_s"],
        "overhead_pct": (ratio - 1) * 100,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }
    from importlib.metadata import version as dist_version

    meta = {
        "tree": str(tree),
        "transformers_version": args.transformers_version,
        "scope": scope,
        "subset": args.subset,
        "files": files,
        "jobs": results["plain"]["jobs"] if args.jobs is None else args.jobs,
        "jobs_option": args.jobs or "auto (flake8 default)",
        "repeat": args.repeat,
        "python": sys.version.split()[0],
        "flake8": dist_version("flake8"),
        "flake8_compile_safe": dist_version(PLUGIN_PACKAGE),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    print_table(meta, results, verdict)
    if precommit is not None:
        print_precommit(precommit)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "results": results, "verdict": verdict,
                                         "runs": runs, "pre_commit": precommit}, indent=2) + "\n")
        print(f"figures saved to {args.json}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == CHILD_FLAG:
        sys.exit(child_main(sys.argv[2], sys.argv[3:]))
    try:
        sys.exit(main())
    except RuntimeError as exc:
        print(f"lint_speed: {exc}", file=sys.stderr)
        sys.exit(1)
