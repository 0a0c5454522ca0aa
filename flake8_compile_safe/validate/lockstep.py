"""Variants timed in lockstep: cross-variant speedups measured under the same machine load.

``compile-safe-validate`` runs each variant (the original tree, the fixed copy) in its own worker
process. Timed one after the other, "fixed compiled vs original eager" divides medians taken
minutes apart, and on a shared machine the load moves in between (2.31x to 3.96x by CPU time
for the same code, three runs). Here the workers of one validation run are alive at once and
share a directory:

* building, the eager warm-up and each mode's compile and warm-up run under one exclusive
  ``fcntl.flock`` (:meth:`Lockstep.exclusive`): never two at once, in whatever order they come;
* before a mode's timed runs each worker waits for the others (:meth:`Lockstep.arrive`);
* timed iteration ``i`` (an eager run and a compiled run) is taken under the lock, round robin in
  the order of ``variants`` (:meth:`Lockstep.turn`): original 1, fixed 1, original 2, fixed 2...
  So every variant's samples alternate with the others' and never overlap them.

A lock holder that dies releases its flock (the kernel closes its descriptor). A worker marks
itself gone when it exits (``VARIANT.gone``, and its pid is checked too): the others then carry on
alone. A partner that never arrives (never started, or stuck) ends the wait after ``timeout``
seconds with :class:`LockstepError`, one line. No torch here.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = "lockstep.lock"
POLL_S = 0.02


class LockstepError(Exception):
    """A partner worker never arrived within the timeout: one line for the user."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


class Lockstep:
    """One worker's side. ``variants``: every worker's name in turn order; ``me`` among them."""

    def __init__(self, directory: str | Path, me: str, variants: list[str], timeout: float,
                 on_wait=None, poll_s: float = POLL_S, core: int | None = None):
        if me not in variants:
            raise ValueError(f"{me!r} is not one of the lockstep variants {variants}")
        self.dir = Path(directory)
        self.me, self.variants, self.timeout = me, list(variants), float(timeout)
        self.partners = [v for v in self.variants if v != me]
        self.on_wait = on_wait  # called with a description once per wait that blocks
        self.poll_s = poll_s
        # Single-threaded runs: every variant's timed turns on this one CPU core, so that a core
        # busier with other jobs (the scheduler keeps a process where it last ran) slows neither alone.
        self.core = core
        self._affinity: set[int] | None = None
        self._held = False

    # -- files --------------------------------------------------------------------------------
    def _path(self, variant: str, what: str) -> Path:
        return self.dir / f"lockstep.{variant}.{what}"

    def _mark(self, what: str, text: str = "") -> None:
        tmp = self._path(self.me, what + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self._path(self.me, what))  # atomic: a reader sees all or nothing

    def _read(self, variant: str, what: str) -> str | None:
        try:
            return self._path(variant, what).read_text()
        except FileNotFoundError:
            return None

    def start(self) -> None:
        """Announce this worker (its pid) and clear what an earlier run in this directory left."""
        for stale in self.dir.glob(f"lockstep.{self.me}.*"):
            stale.unlink(missing_ok=True)
        self._mark("pid", str(os.getpid()))

    def finish(self) -> None:
        """This worker takes no more turns and arrives nowhere: the others go on without it."""
        self._mark("gone")

    def gone(self, variant: str) -> bool:
        if self._read(variant, "gone") is not None:
            return True
        pid = self._read(variant, "pid")
        return bool(pid) and not _alive(int(pid))

    # -- waiting ------------------------------------------------------------------------------
    def _wait(self, ready, what: str, started: float | None = None, tell: bool = True) -> None:
        """Poll ``ready()`` until true; ``LockstepError`` after ``timeout`` seconds."""
        started = time.monotonic() if started is None else started
        told = not tell
        while not ready():
            if time.monotonic() - started > self.timeout:
                raise LockstepError(f"lockstep: {self.me} waited {self.timeout:.0f} s for {what}")
            if not told and self.on_wait is not None:
                self.on_wait(what)
                told = True
            time.sleep(self.poll_s)

    @contextmanager
    def exclusive(self, what: str = "the lock", tell: bool = True):
        """Hold the shared lock (no other variant runs anything timed or compiles meanwhile)."""
        if self._held:  # re-entrant within this worker
            yield
            return
        fd = os.open(self.dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            def take() -> bool:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                return True

            self._wait(take, what, tell=tell)
            self._held = True
            try:
                yield
            finally:
                self._held = False
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def arrive(self, stage: str, what: str | None = None) -> None:
        """Barrier: return once every partner has arrived at ``stage`` (``what``: its words), left it,
        or is gone."""
        self._mark(stage)
        waiting = lambda: [p for p in self.partners  # noqa: E731
                           if self._read(p, stage) is None and self._read(p, stage + ".left") is None
                           and not self.gone(p)]
        never_started = lambda: [p for p in waiting() if self._read(p, "pid") is None]  # noqa: E731
        try:
            self._wait(lambda: not waiting(), f"the {' and '.join(self.partners)} worker to reach {what or stage}")
        except LockstepError:
            missing = never_started()
            if missing:
                raise LockstepError(f"lockstep: {self.me} waited {self.timeout:.0f} s for the "
                                    f"{' and '.join(missing)} worker, which never started") from None
            raise

    def leave(self, stage: str) -> None:
        """This worker is done with ``stage`` (its timed runs, or it failed before them)."""
        self._unpin()
        self._mark(stage + ".left")

    def _pin(self) -> None:
        if self.core is None or self._affinity is not None or not hasattr(os, "sched_setaffinity"):
            return
        self._affinity = os.sched_getaffinity(0)
        if self.core in self._affinity:
            os.sched_setaffinity(0, {self.core})

    def _unpin(self) -> None:
        if self._affinity is not None:
            os.sched_setaffinity(0, self._affinity)
            self._affinity = None

    def _count(self, variant: str, stage: str) -> int:
        return int(self._read(variant, stage + ".count") or 0)

    def _my_turn(self, stage: str, i: int) -> bool:
        mine = self.variants.index(self.me)
        for p in self.partners:
            if self._read(p, stage + ".left") is not None or self.gone(p):
                continue  # takes no more turns
            need = i + 1 if self.variants.index(p) < mine else i
            if self._count(p, stage) < need:
                return False
        return True

    @contextmanager
    def turn(self, stage: str, i: int):
        """Timed iteration ``i`` (0-based) of ``stage``, under the lock, after every earlier
        variant's iteration ``i`` and every later variant's iteration ``i - 1``."""
        started = time.monotonic()
        while True:
            # not told as progress: a wait per turn is the point, one line each would be noise
            with self.exclusive(f"the lock ({stage} run {i + 1})", tell=False):
                if self._my_turn(stage, i):
                    self._pin()
                    yield
                    self._mark(stage + ".count", str(i + 1))
                    return
            self._wait(lambda: self._my_turn(stage, i),
                       f"the {' and '.join(self.partners)} worker's {stage} run {i + 1}", started, tell=False)


class Solo:
    """No partners: the same interface, nothing waits (one variant, or ``compile-safe-fix --verify``)."""

    partners: list[str] = []

    def start(self) -> None:
        pass

    def finish(self) -> None:
        pass

    @contextmanager
    def exclusive(self, what: str = "", tell: bool = True):
        yield

    def arrive(self, stage: str, what: str | None = None) -> None:
        pass

    def leave(self, stage: str) -> None:
        pass

    @contextmanager
    def turn(self, stage: str, i: int):
        yield
