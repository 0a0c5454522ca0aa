"""A report built in a forked child: the parent gets the findings as soon as they are known.

The child hands over the findings first (:class:`Delivery`), then goes on writing the persistent
cache while the parent lints. The parent never holds the project's ASTs, so flake8's ``--jobs``
workers, forked from it, start from a small heap, and nobody pays for freeing millions of nodes.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os


class Delivery:
    """Sends a report's findings to the parent once; ``done`` tells the build they are out."""

    def __init__(self, send):
        self.send = send
        self.done = False

    def __call__(self, report) -> None:
        if not self.done:
            self.send.send(("ok", (report.findings, report.indexed_paths, report.errors)))
            self.done = True


def _child_main(send, build) -> None:
    deliver = Delivery(send)
    try:
        report = build(deliver)  # None: the findings went out, then writing the cache failed
        if report is not None:
            deliver(report)
    except BaseException as exc:  # the parent falls back to building it itself
        if not deliver.done:
            send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()
        os._exit(0)  # no teardown: the process ends, its heap with it


class PendingBuild:
    """``build(deliver)`` running in a forked child; ``result()`` waits for its findings.

    Only the process that started it reads it: a forked flake8 worker inherits the object, not
    the child.
    """

    def __init__(self, build):
        context = multiprocessing.get_context("fork")
        self.owner = os.getpid()
        self._receive, send = context.Pipe(duplex=False)
        self._child = context.Process(target=_child_main, args=(send, build))
        self._child.start()
        send.close()
        self._payload = None
        _UNREAD.append(self)

    def mine(self) -> bool:
        return self.owner == os.getpid()

    def result(self) -> tuple:
        """(findings, indexed paths, errors); RuntimeError if the child failed."""
        if self._payload is not None:
            return self._payload
        _UNREAD.remove(self)
        try:
            status, payload = self._receive.recv()
        except EOFError:
            status, payload = "error", "analysis process died"
        self._receive.close()
        if status != "ok":
            self._child.join()
            raise RuntimeError(payload)
        _WRITING.append((os.getpid(), self._child))  # it writes the cache while this process lints
        self._payload = payload
        return payload

    def abandon(self) -> None:
        """Stop a child nobody will read (its findings would block on a full pipe at exit)."""
        if self in _UNREAD:
            _UNREAD.remove(self)
        self._receive.close()
        self._child.terminate()
        self._child.join()


# Children that handed over their findings and may still be writing the cache: joined before the
# next analysis in this process, and by multiprocessing when the process exits (so a run's cache
# is complete once its flake8 process has ended).
_WRITING: list = []
_UNREAD: list[PendingBuild] = []  # started, not yet read: stopped at exit (cache writes are atomic)


def wait_for_cache_writes() -> None:
    while _WRITING:
        parent, child = _WRITING.pop()
        if parent == os.getpid():  # a forked flake8 worker inherits the list, not the child
            child.join()


@atexit.register
def _abandon_unread() -> None:
    for pending in list(_UNREAD):
        if pending.mine():
            pending.abandon()
