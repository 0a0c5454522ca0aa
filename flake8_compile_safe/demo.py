"""The main job on the bundled default: the real Toto (toto-ts==0.2.0 from the package registry).

1. lint it: `flake8 --select=TCS` on the untouched source (what a compiled path reaches, and why);
2. fix a fresh copy with `compile-safe-fix` and validate both with `compile-safe-validate --quick`
   (needs the [validate] extra: torch and Toto's runtime deps); a report lands in ./compile-safe-report.

    python -m flake8_compile_safe.demo [--lint-only] [--report DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys

from .families.toto import TOTO_VERSION, fetch_toto


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flake8_compile_safe.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--lint-only", action="store_true", help="only lint Toto; no fix, no validation")
    ap.add_argument("--report", default="compile-safe-report", help="report directory (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        toto = fetch_toto()
    except RuntimeError as exc:
        print(f"compile-safe-demo: {exc}", file=sys.stderr)
        return 2
    print(f"== 1. flake8 --select=TCS on toto-ts=={TOTO_VERSION} ({toto})", flush=True)
    lint = subprocess.run([sys.executable, "-m", "flake8", "--select=TCS", f"--compile-safe-root={toto}",
                           "toto"], cwd=toto, capture_output=True, text=True)
    sys.stdout.write(lint.stdout)
    sys.stderr.write(lint.stderr)
    print(f"-- {len(lint.stdout.splitlines())} findings", flush=True)
    if args.lint_only:
        return 0
    if importlib.util.find_spec("torch") is None:
        print("== 2. skipped: validation needs torch (pip install 'flake8-compile-safe[validate]')")
        return 0
    print("== 2. compile-safe-fix a fresh copy, then compile-safe-validate --quick (original vs fixed)", flush=True)
    from .validate.cli import main as validate

    return validate(["--quick", "--report", args.report])


if __name__ == "__main__":
    raise SystemExit(main())
