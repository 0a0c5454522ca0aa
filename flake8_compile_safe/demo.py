"""The main job on the bundled default family (the real Toto, toto-ts==0.2.0 from the package registry).

1. lint it: `flake8 --select=TCS` on the untouched source (what a compiled path reaches, and why);
2. fix a copy with compile-safe-fix: its summary and diffstat; the copy is kept in REPORT/fixed;
3. lint the fixed copy: each finding that stays, with why it stays;
4. compile both with `compile-safe-validate --quick` (needs the [validate] extra: torch and the
   model's runtime deps): table, events, checklist, REPORT/report.md and REPORT/chart.png.

    python -m flake8_compile_safe.demo [--lint-only] [--no-validate] [--report DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .families import DEFAULT_FAMILY, Family, KeptFinding, get_family

PROG = "python -m flake8_compile_safe.demo"
_FLAKE8_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<code>[A-Z]+\d+) (?P<text>.*)$")


def lint(root: Path, package: str) -> tuple[list[dict], str]:
    """``flake8 --select=TCS PACKAGE`` run in ``root`` as a user would: (findings, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "flake8", "--select=TCS", f"--compile-safe-root={root}", package],
                          cwd=root, capture_output=True, text=True)
    found = []
    for line in proc.stdout.splitlines():
        m = _FLAKE8_LINE.match(line)
        if m:
            found.append({**m.groupdict(), "line": int(m["line"]), "col": int(m["col"]), "raw": line})
    return found, proc.stderr


def explain_kept(findings: list[dict], root: Path, kept: tuple[KeptFinding, ...]) -> list[tuple[dict, str | None]]:
    """Each finding of the fixed tree with the family's reason for keeping it (None: no reason given)."""
    out = []
    for f in findings:
        try:
            line_text = (root / f["file"]).read_text(encoding="utf-8").splitlines()[f["line"] - 1]
        except (OSError, IndexError, UnicodeDecodeError):
            line_text = ""
        why = next((k.why for k in kept if k.matches(f["file"], f["code"], line_text)), None)
        out.append((f, why))
    return out


def _by_code(findings: list[dict]) -> str:
    counts = Counter(f["code"] for f in findings)
    return ", ".join(f"{n} {code}" for code, n in sorted(counts.items()))


def _step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def step_lint_original(family: Family, source: Path) -> list[dict]:
    _step(f"1/4 lint the original: flake8 --select=TCS {family.package}  "
          f"({family.dist}=={family.version} from the package registry, in {source})")
    found, err = lint(source, family.package)
    for f in found:
        print(f["raw"])
    sys.stderr.write(err)
    print(f"-- {len(found)} findings ({_by_code(found)}). Each line: file:line:col: CODE what it is: what "
          "torch.compile does with it [the compiled root that reaches it]. The rule pages (docs/rules/) say why "
          "and how to fix; `flake8 --select=TCS --compile-safe-explain` adds the call chain and the fix to "
          "each line.", flush=True)
    return found


def step_fix(family: Family, source: Path, dest: Path):
    from .validate.fixcopy import fix_copy

    _step(f"2/4 fix a copy: compile-safe-fix --strategy tensor-index {dest}")
    fixed = fix_copy(source, dest, "tensor-index")
    print(fixed.summary())
    for line in fixed.diffstat():
        print(line)
    for change in fixed.changes:
        for note in change.notes:
            print(f"  fix: {note}")
    for error in fixed.errors:
        print(f"  skipped: {error}")
    for why in fixed.declined:
        print(f"  not rewritten: {why}")
    print(f"-- the fixed copy is kept in {dest} (every change: diff -ru {source / family.package} "
          f"{dest / family.package}); the next run replaces it", flush=True)
    return fixed


def step_lint_fixed(family: Family, dest: Path, before: int) -> list[tuple[dict, str | None]]:
    found, err = lint(dest, family.package)
    sys.stderr.write(err)
    _step(f"3/4 lint the fixed copy: {len(found)} findings remain ({before} before)"
          + (", each left on purpose:" if found else ""))
    explained = explain_kept(found, dest, family.kept_after_fix)
    reasons: dict[str | None, list[dict]] = {}
    for f, why in explained:
        reasons.setdefault(why, []).append(f)
    for why, group in reasons.items():
        for f in group:
            print(f"  {f['raw']}")
        print(f"    why it stays: {why or 'no reason recorded for this finding (a new one: look at it)'}")
    return explained


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("--lint-only", action="store_true", help="only lint the original; no fix, no validation")
    ap.add_argument("--no-validate", action="store_true", help="lint, fix and lint the fix; do not compile")
    ap.add_argument("--report", default="compile-safe-report",
                    help="where the fixed copy, the work files and the report go (default: %(default)s)")
    args = ap.parse_args(argv)
    family = get_family(DEFAULT_FAMILY)
    try:
        source = family.source()
    except RuntimeError as exc:
        print(f"compile-safe-demo: {exc}", file=sys.stderr)
        return 2
    found = step_lint_original(family, source)
    if args.lint_only:
        return 0
    report = Path(args.report).resolve()
    dest = report / "fixed"
    from .validate.fixcopy import CopyError

    try:
        step_fix(family, source, dest)
    except CopyError as exc:
        print(f"compile-safe-demo: {exc}", file=sys.stderr)
        return 2
    step_lint_fixed(family, dest, len(found))
    if args.no_validate:
        return 0
    if importlib.util.find_spec("torch") is None:
        _step("4/4 skipped: compiling needs torch (pip install 'flake8-compile-safe[validate]')")
        return 0
    command = ["--quick", "--fixed", str(dest), "--workdir", str(report / "work"), "--report", str(report)]
    _step("4/4 compile the original and the fixed copy, eager and compiled: compile-safe-validate "
          + " ".join(command))
    from .validate.cli import main as validate

    return validate(command)


if __name__ == "__main__":
    raise SystemExit(main())
