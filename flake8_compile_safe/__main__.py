"""``python -m flake8_compile_safe``: the linter (``flake8 --select=TCS``), and the other tools by name.

    python -m flake8_compile_safe [FLAKE8 OPTIONS] [PATH ...]   # flake8 --select=TCS (default PATH: .)
    python -m flake8_compile_safe fix ARGS ...                  # compile-safe-fix ARGS
    python -m flake8_compile_safe validate ARGS ...             # compile-safe-validate ARGS
    python -m flake8_compile_safe demo ARGS ...                 # the demo (README command 1)
    python -m flake8_compile_safe --version | --help

Nothing here imports torch: each tool is imported only when asked for.
"""

from __future__ import annotations

import sys

from . import __version__

PROG = "python -m flake8_compile_safe"
HELP = f"""\
usage: {PROG} [FLAKE8 OPTIONS] [PATH ...]
       {PROG} fix|validate|demo [ARGS ...]
       {PROG} --version | --help

Static checks and an autofixer that keep PyTorch code fast under torch.compile.

  (no command)  lint: flake8 --select=TCS [FLAKE8 OPTIONS] [PATH ...] (default PATH: .);
                --select given: yours is used instead; flake8 --help lists the options
  fix           compile-safe-fix: rewrite what the TCS rules find (fix --help)
  validate      compile-safe-validate: compile a model before and after (needs the [validate] extra)
  demo          lint, fix and validate the bundled default model (README command 1)

exit codes: those of the tool run (lint: 0 no findings, 1 findings, like flake8).
Docs: README.md, docs/rules/TCSnnn.md, docs/fixer.md, docs/validation.md"""


def _versions() -> str:
    from importlib import metadata

    parts = []
    for dist in ("flake8", "libcst", "torch"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist} not installed")
    return f"flake8-compile-safe {__version__} ({', '.join(parts)}; Python {sys.version.split()[0]})"


def lint(argv: list[str]) -> int:
    from flake8.main.cli import main as flake8_main

    chosen = any(a == "--select" or a.startswith("--select=") for a in argv)
    return int(flake8_main(([] if chosen else ["--select=TCS"]) + argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(HELP)
        return 0
    if argv[:1] in (["-V"], ["--version"]):
        print(_versions())
        return 0
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "fix":
        from .fixers.cli import main as fix_main

        return int(fix_main(rest) or 0)
    if command == "validate":
        from .validate.cli import main as validate_main

        return int(validate_main(rest) or 0)
    if command == "demo":
        from .demo import main as demo_main

        return int(demo_main(rest) or 0)
    return lint(argv)


if __name__ == "__main__":
    sys.exit(main())
