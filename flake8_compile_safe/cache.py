"""The persistent cache on disk: one file per module, one per project and option set.

Every file starts with a header naming the format; a file that is unreadable, truncated or
written by another version is ignored (one warning line) and rewritten by this run. Writes go
to a temporary file in the same directory, then ``os.replace``: a reader (another flake8 run,
an editor's) sees the old file or the new one, never half of one. Nothing is written outside
the cache directory, and a directory that cannot be written turns the cache off with a warning.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import io
import os
import pickle
import sys
import tempfile
from pathlib import Path, PosixPath, PurePosixPath, PureWindowsPath, WindowsPath

from . import __version__

# Bump when what a summary or a record holds changes (a new fact the rules read): every entry
# written by another format is then ignored and rebuilt.
# 14: a record's calls carry their call sites (line, column); nested defs keep their signature;
# 13: the interface digest compares parameters as source;
# 12: TCS014 keeps its comprehensions and wrappers as derived facts (no parse on a warm run);
# 11: FunctionInfo.derived facts; 10: records and summaries packed one by one (bytes), StaticKind slotted
CACHE_FORMAT = 14
CACHE_DIR_NAME = ".compile_safe_cache"
DISABLE_ENV = "COMPILE_SAFE_NO_CACHE"
MAGIC = b"flake8-compile-safe cache\n"

# Modules an entry never names (the linter's records hold none of their classes): importing them
# would run a CLI, pull in torch or the fixer. Not run by the plugin either: not in its fingerprint.
_NOT_LINTER = {"__main__", "demo", "docs", "families", "fixers", "validate"}


def _linter_fingerprint(root: Path = Path(__file__).resolve().parent) -> str:
    """Hash of the linter's own source: an edited rule (an editable install, a patched release
    with the same version) must not replay findings its old code made."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/", 1)[0].removesuffix(".py") in _NOT_LINTER:
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


# ASTs are pickled (class-body constants): they belong to one Python minor version.
VERSION_LINE = (f"{__version__} format={CACHE_FORMAT} code={_linter_fingerprint()} "
                f"python={sys.version_info[0]}.{sys.version_info[1]}\n").encode()

_warned: set[str] = set()
_UMASK = os.umask(0)
os.umask(_UMASK)


_PATH_CLASSES = {cls.__name__: cls for cls in (Path, PosixPath, WindowsPath, PurePosixPath, PureWindowsPath)}
_OWN_FACTORIES = {("flake8_compile_safe.values", "_nothing"), ("flake8_compile_safe.values", "_static_kind")}


class _EntryUnpickler(pickle.Unpickler):
    """Loads only what the plugin writes: its own classes, ``ast`` nodes and paths.

    The cache lives in the project tree, so a crafted entry (committed by mistake or on purpose)
    must not run code: any other global (``os.system``, ``builtins.eval``, a function reached
    through a module attribute) is refused and the entry is treated as corrupt.
    """

    def find_class(self, module: str, name: str):
        if "." not in name:
            if module == "ast":
                obj = getattr(ast, name, None)
                if isinstance(obj, type) and issubclass(obj, ast.AST):
                    return obj
            elif module == "pathlib" and name in _PATH_CLASSES:
                return _PATH_CLASSES[name]
            elif module.startswith("flake8_compile_safe.") and module.split(".")[1] not in _NOT_LINTER:
                obj = getattr(importlib.import_module(module), name, None)
                if (isinstance(obj, type) and obj.__module__ == module) or (module, name) in _OWN_FACTORIES:
                    return obj
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def load_entry(data: bytes):
    return _EntryUnpickler(io.BytesIO(data)).load()


def warn(message: str) -> None:
    """One line on stderr, once per process and message."""
    if message not in _warned:
        _warned.add(message)
        print(f"flake8-compile-safe: warning: {message}", file=sys.stderr)


def cache_disabled_by_env() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def digest(*parts) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


class CacheStore:
    """Reads and writes the entries under one cache directory."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.writable = self.readable = True
        self.ignored = 0  # entries found unreadable or foreign this run
        self.written = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.writable = False
            self.readable = self.directory.is_dir()
            warn(f"cannot write the cache in {self.directory} ({exc.strerror or exc}); running without it")
        else:
            if not os.access(self.directory, os.W_OK):
                self.writable = False  # a read-only tree: read what is there, write nothing
                warn(f"cannot write the cache in {self.directory} (read-only); running without it")

    def module_name(self, relpath: str) -> str:
        return f"modules/{content_hash(relpath.encode())}.pickle"

    def project_name(self, options: tuple) -> str:
        return f"project-{digest(*options)[:16]}.pickle"

    def read(self, name: str):
        if not self.readable:
            return None
        path = self.directory / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._ignore(path, f"cannot read: {exc.strerror or exc}")
            return None
        if not data.startswith(MAGIC):
            self._ignore(path, "not a cache file of this plugin")
            return None
        header_end = data.find(b"\n", len(MAGIC))
        if header_end < 0:
            self._ignore(path, "truncated")
            return None
        if data[len(MAGIC):header_end + 1] != VERSION_LINE:
            self.ignored += 1  # after an upgrade every entry is foreign: one line for them all
            warn(f"cache entries in {self.directory} were written by another version; ignored, rebuilt")
            return None
        try:
            return load_entry(data[header_end + 1:])
        except Exception as exc:  # noqa: BLE001 - truncated or corrupt: any unpickling error
            self._ignore(path, f"corrupt ({type(exc).__name__})")
            return None

    def _ignore(self, path: Path, problem: str) -> None:
        self.ignored += 1
        warn(f"{path}: cache entry {problem}; ignored, rebuilt")

    def write(self, name: str, payload) -> bool:
        """Atomically replace the entry ``name``; False (and the cache off, with a warning) on failure."""
        if not self.writable:
            return False
        path = self.directory / name
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            data = MAGIC + VERSION_LINE + pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; the cache is the project's
            os.replace(tmp, path)
            tmp = None
            self.written += 1
            return True
        except OSError as exc:
            self.writable = False
            warn(f"cannot write the cache in {self.directory} ({exc.strerror or exc}); running without it")
            return False
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def write_text(self, name: str, text: str) -> None:
        """A small human-readable file (the last run's statistics), written atomically too."""
        if not self.writable:
            return
        path = self.directory / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except OSError:
            pass
