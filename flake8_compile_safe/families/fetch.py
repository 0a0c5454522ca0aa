"""Fetch a real package's source (a wheel from the package registry) into a local cache.

No third-party source is committed to this repository: tests, benchmarks, the fixer's
end-to-end checks and the validation suite fetch it with :func:`fetch_package_source`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path


def cache_dir() -> Path:
    """``$COMPILE_SAFE_CACHE`` or ``~/.cache/flake8-compile-safe``."""
    env = os.environ.get("COMPILE_SAFE_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "flake8-compile-safe"


def fetch_package_source(dist: str, version: str, package: str, sentinel: str,
                         cache: Path | None = None) -> Path:
    """Return ``<cache>/<dist>-<version>/`` holding the ``package/`` folder of that wheel.

    Downloads the wheel once (``pip download --no-deps``; a source archive where the registry has
    no wheel, e.g. ``openai-whisper``) and unpacks only ``package/``. The
    unpack goes to a temporary directory renamed into place, so an interrupted run never leaves
    a half-written tree behind. ``sentinel`` (a path inside the tree) marks a complete one.
    """
    cache = Path(cache) if cache is not None else cache_dir()
    target = cache / f"{dist}-{version}"
    if (target / sentinel).is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        wheel_dir = Path(tmp) / "wheel"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--disable-pip-version-check", "-d", str(wheel_dir), f"{dist}=={version}"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        archives = list(wheel_dir.glob("*.whl")) or list(wheel_dir.glob("*.tar.gz"))
        if result.returncode != 0 or not archives:
            raise RuntimeError(f"could not download {dist}=={version}: {result.stderr.strip()[-500:]}")
        unpacked = Path(tmp) / "unpacked"
        if archives[0].name.endswith(".whl"):
            with zipfile.ZipFile(archives[0]) as wheel:
                wheel.extractall(unpacked, [m for m in wheel.namelist() if m.startswith(f"{package}/")])
        else:
            _extract_sdist_package(archives[0], package, unpacked)
        if not (unpacked / sentinel).is_file():
            raise RuntimeError(f"{archives[0].name} holds no {sentinel}")
        try:
            os.replace(unpacked, target)
        except OSError:
            # Another process won the race; its tree is complete by construction.
            if not (target / sentinel).is_file():
                raise
    return target


def _extract_sdist_package(archive: Path, package: str, dest: Path) -> None:
    """Unpack ``<top>/<package>/`` (or ``<top>/src/<package>/``) of a source archive into ``dest``."""
    with tarfile.open(archive) as sdist:
        members = [(m, m.name.split("/")) for m in sdist.getmembers() if m.isfile()]
        members = [(m, parts) for m, parts in members if ".." not in parts]
        chosen: list = []
        for prefix in ([package], ["src", package]):  # <top>/<package>/..., <top>/src/<package>/...
            depth = 1 + len(prefix)
            chosen = [(m, parts[depth - 1:]) for m, parts in members
                      if len(parts) > depth and parts[1:depth] == prefix]
            if chosen:
                break
        for member, relative in chosen:
            target = dest.joinpath(*relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            with sdist.extractfile(member) as src, open(target, "wb") as out:
                out.write(src.read())
