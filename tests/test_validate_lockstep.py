"""Lockstep between variants' workers (flake8_compile_safe/validate/lockstep.py), with small fake workers."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from flake8_compile_safe.validate.lockstep import Lockstep, LockstepError
from flake8_compile_safe.validate.progress import ProgressPrinter, WorkerFailed, run_all_with_progress

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A fake worker: "compiles" under the lock (slower for the first variant), waits for its partner,
# then takes N timed turns, writing "start"/"end" lines to a shared trace around each.
FAKE_WORKER = textwrap.dedent("""
    import sys, time
    from flake8_compile_safe.validate.lockstep import Lockstep
    workdir, me, variants, runs, compile_s = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4]), \\
        float(sys.argv[5])
    step = Lockstep(workdir, me, variants, timeout=30)
    step.start()
    trace = open(workdir + "/trace", "a", buffering=1)
    try:
        with step.exclusive():
            trace.write(f"compile {me}\\n"); time.sleep(compile_s); trace.write(f"compiled {me}\\n")
        step.arrive("timed-default")
        for i in range(runs):
            with step.turn("timed-default", i):
                trace.write(f"start {me} {i}\\n"); time.sleep(0.03); trace.write(f"end {me} {i}\\n")
        step.leave("timed-default")
    finally:
        step.finish()
""")


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)}


def _spawn(tmp_path, me, variants, runs, compile_s):
    worker = tmp_path / "fake_worker.py"
    worker.write_text(FAKE_WORKER)
    return subprocess.Popen([sys.executable, str(worker), str(tmp_path), me, ",".join(variants), str(runs),
                             str(compile_s)], env=_env(), stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("variants", [["original", "fixed"], ["original", "fixed", "other"]])
def test_timed_turns_alternate_and_never_overlap(tmp_path, variants):
    # the last variant starts first and compiles fast: it must still wait for the first's turn
    procs = [_spawn(tmp_path, v, variants, 4, 0.3 if v == variants[0] else 0.0) for v in reversed(variants)]
    for proc in procs:
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    lines = [line.split() for line in (tmp_path / "trace").read_text().splitlines()]
    trace = [tuple(line) for line in lines if line[0] in ("start", "end")]
    compiles = [line for line in lines if line[0] in ("compile", "compiled")]
    # compiles one at a time: each "compile X" directly followed by "compiled X"
    assert all(a[0] == "compile" and b == ["compiled", a[1]] for a, b in zip(compiles[::2], compiles[1::2]))
    # timed turns: start/end pairs back to back, round robin in the variants' order
    expected = [(kind, v, str(i)) for i in range(4) for v in variants for kind in ("start", "end")]
    assert trace == expected


def test_a_lock_holder_that_dies_releases_the_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from flake8_compile_safe.validate.lockstep import Lockstep
        step = Lockstep({str(tmp_path)!r}, "original", ["original", "fixed"], timeout=30)
        step.start()
        with step.exclusive():
            open({str(tmp_path / "held")!r}, "w").close()
            time.sleep(60)
    """)], env=_env())
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "held").exists():
            assert time.monotonic() < deadline and holder.poll() is None
            time.sleep(0.05)
        waits = []
        step = Lockstep(tmp_path, "fixed", ["original", "fixed"], timeout=0.3, on_wait=waits.append)
        with pytest.raises(LockstepError, match="fixed waited 0 s for the lock"):
            with step.exclusive():
                pass
        assert waits == ["the lock"]  # told once, as progress
        holder.send_signal(signal.SIGKILL)  # no cleanup at all: the kernel drops its flock
        holder.wait()
        step.timeout = 10
        with step.exclusive():
            pass
        assert step.gone("original")  # its pid is dead, though it never marked itself gone
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_partner_that_never_starts_times_out_with_one_line(tmp_path):
    step = Lockstep(tmp_path, "fixed", ["original", "fixed"], timeout=0.3)
    step.start()
    with pytest.raises(LockstepError) as info:
        step.arrive("timed-default")
    message = str(info.value)
    assert message == "lockstep: fixed waited 0 s for the original worker, which never started"
    assert "\n" not in message


def test_a_partner_that_is_gone_or_failed_its_mode_is_not_waited_for(tmp_path):
    first = Lockstep(tmp_path, "original", ["original", "fixed"], timeout=5)
    second = Lockstep(tmp_path, "fixed", ["original", "fixed"], timeout=5)
    first.start()
    second.start()
    # the original's compile failed: it leaves the stage without arriving; the fixed runs alone
    first.leave("timed-default")
    second.arrive("timed-default")
    for i in range(3):
        with second.turn("timed-default", i):
            pass
    # the fixed worker exited: the original neither waits at a barrier nor for a turn
    second.finish()
    first.arrive("timed-reduce-overhead")
    with first.turn("timed-reduce-overhead", 0):
        pass


def test_a_start_clears_what_an_earlier_run_left(tmp_path):
    old = Lockstep(tmp_path, "original", ["original", "fixed"], timeout=5)
    old.start()
    old.leave("timed-default")
    old.finish()
    new = Lockstep(tmp_path, "original", ["original", "fixed"], timeout=5)
    new.start()
    assert not new.gone("original")
    assert not (tmp_path / "lockstep.original.timed-default.left").exists()


def test_unknown_variant_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not one of the lockstep variants"):
        Lockstep(tmp_path, "third", ["original", "fixed"], timeout=1)


def test_run_all_stops_the_partner_of_a_failed_worker(tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    failer = [sys.executable, "-c", "import sys, time; time.sleep(0.3); sys.exit(2)"]
    out = io.StringIO()
    jobs = [(cmd, tmp_path / f"{n}.log", tmp_path / f"{n}.progress", ProgressPrinter(f"[v] {n}: ", out, tty=True))
            for n, cmd in (("original", sleeper), ("fixed", failer))]
    started = time.monotonic()
    with pytest.raises(WorkerFailed) as info:
        run_all_with_progress(jobs, _env(), timeout=60)
    assert (info.value.index, info.value.code) == (1, 2)
    assert time.monotonic() - started < 30  # the sleeper was killed, not waited for
    assert "\r" not in out.getvalue()  # two workers: line by line, never two lines rewritten in place


def test_run_all_prints_both_workers_progress_and_times_out(tmp_path):
    worker = tmp_path / "w.py"
    worker.write_text(textwrap.dedent("""
        import sys, time
        from flake8_compile_safe.validate.progress import ProgressWriter
        w = ProgressWriter(sys.argv[1])
        w.phase("wait", note="the lock to compile (default)"); time.sleep(float(sys.argv[2]))
        w.phase("done")
    """))
    out = io.StringIO()
    jobs = [([sys.executable, str(worker), str(tmp_path / f"{n}.progress"), "0.3"], tmp_path / f"{n}.log",
             tmp_path / f"{n}.progress", ProgressPrinter(f"[v] {n}: ", out, tty=False)) for n in ("original", "fixed")]
    assert run_all_with_progress(jobs, _env(), timeout=60) == [0, 0]
    text = out.getvalue()
    for n in ("original", "fixed"):
        assert f"[v] {n}: waiting for the lock to compile (default)" in text and f"[v] {n}: done" in text
    jobs = [([sys.executable, str(worker), str(tmp_path / f"{n}.progress"), "60"], tmp_path / f"{n}.log",
             tmp_path / f"{n}.progress", ProgressPrinter(f"[v] {n}: ", out, tty=False)) for n in ("original", "fixed")]
    with pytest.raises(subprocess.TimeoutExpired):
        run_all_with_progress(jobs, _env(), timeout=1)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this platform")
def test_timed_turns_run_on_the_shared_core_and_leave_restores_the_affinity(tmp_path):
    allowed = os.sched_getaffinity(0)
    core = max(allowed)
    step = Lockstep(tmp_path, "original", ["original"], timeout=5, core=core)
    step.start()
    try:
        for i in range(2):
            with step.turn("timed-default", i):
                assert os.sched_getaffinity(0) == {core}
        step.leave("timed-default")
        assert os.sched_getaffinity(0) == allowed
    finally:
        os.sched_setaffinity(0, allowed)
