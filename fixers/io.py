"""File I/O for the fixer: decode like Python, keep encoding, BOM and line endings, write atomically.

Nothing here imports torch.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flake8_compile_safe.source import SourceError, read_decoded

BACKUP_SUFFIX = ".backup"


class FixIOError(Exception):
    """A file the fixer cannot handle: ``str()`` is one line naming the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass
class SourceFile:
    path: str
    raw: bytes  # the bytes on disk
    text: str  # decoded, BOM removed; line endings untouched (libcst keeps them)
    encoding: str  # codec the file was decoded with
    bom: bool

    def encode(self, text: str) -> bytes:
        data = text.encode(self.encoding)
        return (b"\xef\xbb\xbf" + data) if self.bom else data


def read_source(path: str | Path) -> SourceFile:
    """Read a file the way Python does (BOM, PEP 263 cookie, else UTF-8): the linter's decoding."""
    try:
        raw, encoding, text = read_decoded(path)
    except SourceError as exc:
        raise FixIOError(path, exc.problem) from None
    bom = encoding == "utf-8-sig"
    return SourceFile(str(path), raw, text, "utf-8" if bom else encoding, bom)


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and ``os.replace`` it into place.

    The file keeps its permission bits. A crash leaves either the old or the new file, never half.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def backup_path(path: str | Path) -> Path:
    return Path(str(path) + BACKUP_SUFFIX)


def write_backup(path: str | Path, original: bytes) -> Path:
    """Keep ``FILE.backup`` with the original bytes.

    An existing backup is never overwritten silently: if it holds other bytes, raise.
    (Same bytes: nothing to do, e.g. a re-run after --revert.)
    """
    bpath = backup_path(path)
    if bpath.exists():
        if bpath.read_bytes() == original:
            return bpath
        raise FixIOError(path, f"backup {bpath} already exists with other content; "
                               "move it away or --revert first")
    atomic_write(bpath, original)
    return bpath


def revert(path: str | Path) -> bool:
    """Restore ``path`` byte-for-byte from ``path.backup`` and remove the backup.

    ``path`` may be the file or its backup. Returns False when there is no backup.
    """
    path = Path(path)
    if str(path).endswith(BACKUP_SUFFIX):
        path = Path(str(path)[: -len(BACKUP_SUFFIX)])
    bpath = backup_path(path)
    if not bpath.is_file():
        return False
    atomic_write(path, bpath.read_bytes())
    os.unlink(bpath)
    return True
