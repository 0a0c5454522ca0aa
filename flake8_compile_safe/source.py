"""Stage 1, parse: read a Python file and turn it into an ``ast`` tree, or say in one line why not."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path


class SourceError(Exception):
    """A file that cannot be analysed: the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def read_text(path: str | Path) -> str:
    """Decode a file the way Python does (PEP 263 cookie, else UTF-8)."""
    return read_decoded(path)[2]


def read_decoded(path: str | Path) -> tuple[bytes, str, str]:
    """(bytes on disk, codec, text) decoded as Python does; a BOM gives codec ``utf-8-sig``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SourceError(path, "no such file") from None
    except IsADirectoryError:
        raise SourceError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data, encoding, data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(path, f"not valid {exc.encoding}: byte {data[exc.start]:#04x} at line {line}") from None
    except (SyntaxError, LookupError) as exc:  # bad bytes in the first two lines, or an unknown codec
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            line = data[: bad.start].count(b"\n") + 1
            raise SourceError(path, f"not valid utf-8: byte {data[bad.start]:#04x} at line {line}") from None
        raise SourceError(path, f"bad encoding declaration: {exc}") from None


class ParseCounter:
    """How many files this process has parsed (the incremental run reports it)."""

    count = 0


def parse_source(text: str, path: str | Path) -> ast.Module:
    ParseCounter.count += 1
    try:
        return ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise SourceError(path, f"syntax error at line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:  # e.g. source with NUL bytes
        raise SourceError(path, f"cannot parse: {exc}") from None
    except (RecursionError, MemoryError):
        raise SourceError(path, "cannot parse: nested too deeply") from None


def parse_file(path: str | Path) -> ast.Module:
    return parse_source(read_text(path), path)
