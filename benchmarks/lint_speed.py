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
largest single process: max of ``ru_maxrss`` over the flake8 process and its reaped workers, not
their sum), files checked, findings and TCS findings; then the wall-time ratio plugin/plain, the
plugin overhead in percent, and whether it meets the target "the plugin adds at most 50% to plain
flake8's wall time". ``--json PATH`` also saves all figures.

    python benchmarks/lint_speed.py                      # the whole tree (~2,860 files; slow)
    python benchmarks/lint_speed.py --subset 40          # 40 model folders + top-level modules
    python benchmarks/lint_speed.py --subset 5 --jobs 1 --repeat 3 --json /tmp/lint_speed.json

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

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    manager = app.file_checker_manager
    figures = {
        "variant": variant,
        "exit_code": code,
        "catastrophic_failure": bool(app.catastrophic_failure),
        "flake8_s": flake8_s,
        "cpu_s": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
        "peak_rss_mb": max(_maxrss_mb(own), _maxrss_mb(kids)),
        "peak_rss_main_mb": _maxrss_mb(own),
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


def flake8_argv(variant: str, root: Path, output: Path, jobs: str | None) -> list[str]:
    argv = ["--isolated", "--exit-zero", "--format=default", f"--output-file={output}"]
    if jobs is not None:
        argv.append(f"--jobs={jobs}")
    if variant == "plugin":
        argv += ["--extend-select=TCS", f"--compile-safe-root={root}"]
    return [*argv, str(root / "transformers")]


def run_variant(variant: str, root: Path, jobs: str | None, scratch: Path, index: int) -> dict:
    output = scratch / f"{variant}-{index}.txt"
    cmd = [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, variant,
           *flake8_argv(variant, root, output, jobs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
    codes = [m.group(1) for m in map(FINDING_RE.search, output.read_text(errors="replace").splitlines()) if m]
    output.unlink()
    figures.update(wall_s=wall, findings=len(codes), tcs_findings=sum(c.startswith("TCS") for c in codes),
                   tcs_codes=sorted({c for c in codes if c.startswith("TCS")}))
    return figures


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
        for i in range(args.repeat):
            for name in VARIANTS:
                print(f"run {i + 1}/{args.repeat}: {name} ...", file=sys.stderr, flush=True)
                runs[name].append(run_variant(name, root, args.jobs, scratch, i))

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
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "results": results, "verdict": verdict,
                                         "runs": runs}, indent=2) + "\n")
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
