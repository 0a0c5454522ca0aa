"""The compiled-root options the linter takes, read for the fixer the way flake8 reads them.

``--compile-safe-root DIR`` and ``--compile-safe-roots a,b`` on the command line win; otherwise the
``[flake8]`` section of the config file flake8 itself would use (``setup.cfg``, ``tox.ini`` or
``.flake8``, found by flake8's own search from the current directory). So the fixer sees the findings
``flake8 --select=TCS`` reports.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RootsConfig:
    root: str | None = None  # project root for cross-file analysis (default: found per path)
    roots: tuple[str, ...] = ()  # extra compiled roots (qualified names or suffixes)
    source: str = "defaults"  # where they came from, for -v


def _option(section, name: str) -> str | None:
    for key in (name, name.replace("-", "_")):
        if key in section:
            return section[key]
    return None


def flake8_config() -> tuple[dict, str | None]:
    """The ``[flake8]`` section flake8 would read here, and its file (``{}``, None when there is none)."""
    try:
        from flake8.options.config import _find_config_file
    except ImportError:  # flake8 moved its internals: fall back to no config
        return {}, None
    import configparser
    import os

    path = _find_config_file(os.path.abspath("."))
    if path is None:
        return {}, None
    cfg = configparser.RawConfigParser()
    cfg.read(path, encoding="UTF-8")
    return (dict(cfg["flake8"]) if cfg.has_section("flake8") else {}), path


def resolve_roots(cli_root: str | None, cli_roots: str | None) -> RootsConfig:
    section, path = flake8_config()
    root = cli_root if cli_root is not None else _option(section, "compile-safe-root")
    raw = cli_roots if cli_roots is not None else _option(section, "compile-safe-roots")
    roots = tuple(r.strip() for r in (raw or "").replace("\n", ",").split(",") if r.strip())
    source = "command line" if cli_root is not None or cli_roots is not None else (path or "defaults")
    return RootsConfig(root or None, roots, source)
