"""The persistent cache: a warm run reports exactly what a cold run reports, whatever happened since."""

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flake8_compile_safe.analysis import _build_report
from flake8_compile_safe.cache import MAGIC, VERSION_LINE, CacheStore
from flake8_compile_safe.incremental import STATS_FILE, IncrementalRun

MODEL = '''\
import torch
from pkg.helper import step


class Model(torch.nn.Module):
    def forward(self, t):
        n = step(t)
        return t * n
'''
HELPER = '''\
from pkg.deep import scale


def step(t):
    return scale(t)
'''
DEEP_SAFE = '''\
def scale(t):
    return t * 2


def unused(t):
    return t
'''
# The hazard sits in a function reached only through another file (model -> helper -> deep),
# and its value flows back into the caller's file (a TCS002 in helper and in model).
DEEP_HAZARD = DEEP_SAFE.replace("return t * 2", "return int(t.sum().item())")
OTHER = '''\
import torch


class Other(torch.nn.Module):
    def forward(self, x):
        return x + 1
'''


def make_project(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "model.py").write_text(MODEL)
    (root / "pkg" / "helper.py").write_text(HELPER)
    (root / "pkg" / "deep.py").write_text(DEEP_SAFE)
    for i in range(3):
        (root / "pkg" / f"other{i}.py").write_text(OTHER.replace("Other", f"Other{i}"))
    return root


def cold(root: Path):
    return _build_report(str(root.resolve()), (), None, None).findings


def warm(root: Path, cache: Path):
    run = IncrementalRun(root.resolve(), (), CacheStore(cache))
    return run.execute().findings, run.stats


def codes(findings):
    return sorted((Path(f.path).name, f.line, f.code) for f in findings)


def files_outside(root: Path, cache: Path):
    return sorted((str(p.relative_to(root)), p.read_bytes()) for p in root.rglob("*")
                  if p.is_file() and cache not in p.parents and "__pycache__" not in p.parts)


def test_edit_reached_through_another_file_both_ways(tmp_path):
    root = make_project(tmp_path / "proj")
    cache = root / ".compile_safe_cache"
    first, stats = warm(root, cache)
    assert stats.mode == "cold" and first == cold(root) and first == []

    before = files_outside(root, cache)
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    found, stats = warm(root, cache)
    assert stats.mode == "incremental", stats
    assert found == cold(root)  # the same findings, chains and roots as a cold run
    assert ("deep.py", 2, "TCS002") in codes(found) and ("model.py", 7, "TCS002") in codes(found)
    # only the edited file was parsed (and whatever its callers' re-analysis had to read)
    assert stats.parsed < stats.files and stats.replayed > 0, stats

    (root / "pkg" / "deep.py").write_text(DEEP_SAFE)
    found, stats = warm(root, cache)
    assert stats.mode == "incremental" and found == cold(root) == []
    after = files_outside(root, cache)
    assert [name for name, _ in after] == [name for name, _ in before]  # nothing written beside the cache

    found, stats = warm(root, cache)
    assert stats.mode == "unchanged" and stats.parsed == 0 and found == []


def test_a_body_edit_that_keeps_the_return_value_reanalyses_only_that_function(tmp_path):
    """Early cutoff: the callers depend on what the callee returns, not on its file."""
    root = make_project(tmp_path / "proj")
    cache = root / ".compile_safe_cache"
    _, first = warm(root, cache)
    (root / "pkg" / "deep.py").write_text(DEEP_SAFE.replace("return t * 2", "u = t + 1\n    return u * 2"))
    found, stats = warm(root, cache)
    assert found == cold(root) == []
    assert stats.mode == "incremental" and stats.analysed == 1, stats  # scale() only
    assert stats.replayed == first.analysed - 1, stats


def test_a_callee_that_starts_returning_a_host_number_is_seen_by_its_callers(tmp_path):
    """A def with no ``return <value>`` has an empty summary without being walked; the summary still
    depends on that def's file, so the callers see the change both ways."""
    root = make_project(tmp_path / "proj")
    cache = root / ".compile_safe_cache"
    silent = DEEP_SAFE.replace("return t * 2", "u = t * 2")
    (root / "pkg" / "deep.py").write_text(silent)
    assert warm(root, cache)[0] == cold(root) == []
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    found, stats = warm(root, cache)
    assert stats.mode == "incremental" and found == cold(root)
    assert {("deep.py", 2, "TCS002"), ("helper.py", 5, "TCS002"), ("model.py", 7, "TCS002")} <= set(codes(found))
    (root / "pkg" / "deep.py").write_text(silent)
    assert warm(root, cache)[0] == cold(root) == []


def test_edit_that_changes_an_attribute_fact_still_matches_cold(tmp_path):
    root = make_project(tmp_path / "proj")
    cache = root / ".compile_safe_cache"
    warm(root, cache)
    (root / "pkg" / "other0.py").write_text(OTHER.replace("Other", "Other0").replace(
        "return x + 1", "self.calls = self.calls + 1\n        return x + self.calls"))
    found, stats = warm(root, cache)
    assert found == cold(root) and found, stats


def test_rename_and_delete_drop_out(tmp_path):
    root = make_project(tmp_path / "proj")
    cache = root / ".compile_safe_cache"
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    found, _ = warm(root, cache)
    assert any(Path(f.path).name == "deep.py" for f in found)

    (root / "pkg" / "deep.py").rename(root / "pkg" / "deeper.py")
    (root / "pkg" / "helper.py").write_text(HELPER.replace("pkg.deep", "pkg.deeper"))
    found, stats = warm(root, cache)
    assert found == cold(root)
    assert {Path(f.path).name for f in found} == {"deeper.py", "helper.py", "model.py"}

    (root / "pkg" / "deeper.py").unlink()
    found, stats = warm(root, cache)
    assert found == cold(root) == []


def test_corrupt_truncated_and_foreign_entries_are_rebuilt_with_a_warning(tmp_path, capsys):
    root = make_project(tmp_path / "proj")
    cache = root / ".compile_safe_cache"
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    expected = cold(root)
    warm(root, cache)
    entries = sorted((cache / "modules").iterdir())
    entries[0].write_bytes(entries[0].read_bytes()[:40])  # truncated
    entries[1].write_bytes(b"garbage")
    foreign = entries[2].read_bytes().replace(b"format=", b"format=9", 1)
    entries[2].write_bytes(foreign)
    (root / "pkg" / "helper.py").write_text(HELPER + "\n")  # force reading the module entries
    capsys.readouterr()
    found, stats = warm(root, cache)
    err = capsys.readouterr().err
    assert found == expected
    assert stats.entries_ignored == 3
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 3 and all("ignored, rebuilt" in line for line in warnings), err
    # rebuilt: the next run reads every entry without complaint
    (cache / [p for p in os.listdir(cache) if p.startswith("project-")][0]).write_bytes(MAGIC + b"1\n")
    found, stats = warm(root, cache)
    assert found == expected and stats.entries_ignored == 1  # the broken project entry only
    found, stats = warm(root, cache)
    assert found == expected and stats.entries_ignored == 0 and stats.mode == "unchanged"


class _RunsCode:
    """What a crafted entry would hold: a global that runs a command when loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_entry_never_runs_code(tmp_path, capsys):
    root = make_project(tmp_path / "proj")
    cache = root / ".compile_safe_cache"
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    expected = cold(root)
    warm(root, cache)
    marker = tmp_path / "ran"
    header = MAGIC + VERSION_LINE
    for entry in (cache / "modules").iterdir():
        entry.write_bytes(header + pickle.dumps(_RunsCode(marker)))
    (root / "pkg" / "helper.py").write_text(HELPER + "\n")  # force reading the module entries
    capsys.readouterr()
    found, stats = warm(root, cache)
    err = capsys.readouterr().err
    assert not marker.exists()
    assert found == expected and stats.entries_ignored > 0
    assert all("ignored, rebuilt" in line for line in err.splitlines() if "warning" in line), err


def flake8(root: Path, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "flake8", "--select=TCS", *args, "pkg"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_two_processes_racing_on_one_cache(tmp_path):
    root = make_project(tmp_path / "proj")
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    expected = flake8(root, "--compile-safe-no-cache").communicate()[0]
    assert "TCS002" in expected and not (root / ".compile_safe_cache").exists()
    for round_ in range(3):
        runs = [flake8(root) for _ in range(3)]
        outputs = [run.communicate() for run in runs]
        for out, err in outputs:
            assert out == expected and "warning" not in err, err
        (root / "pkg" / "helper.py").write_text(HELPER + "\n" * (round_ + 1))
    stats = json.loads((root / ".compile_safe_cache" / STATS_FILE).read_text())
    assert stats["entries_ignored"] == 0
    assert not [p for p in (root / ".compile_safe_cache").rglob("*.tmp")]


def test_unwritable_cache_still_lints_with_one_warning(tmp_path):
    root = make_project(tmp_path / "proj")
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    expected = flake8(root, "--compile-safe-no-cache").communicate()[0]
    (root / ".compile_safe_cache").write_text("a file where the cache directory would go")
    out, err = flake8(root).communicate()
    assert out == expected
    assert len([line for line in err.splitlines() if "warning" in line]) == 1 and "without it" in err, err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes through read-only modes")
def test_read_only_tree(tmp_path):
    root = make_project(tmp_path / "proj")
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    expected = flake8(root, "--compile-safe-no-cache").communicate()[0]
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        out, err = flake8(root).communicate()
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert out == expected and "without it" in err
    assert not (root / ".compile_safe_cache").exists()


def test_cache_dir_option_and_env_switch(tmp_path):
    root = make_project(tmp_path / "proj")
    elsewhere = tmp_path / "elsewhere"
    flake8(root, f"--compile-safe-cache-dir={elsewhere}").communicate()
    assert (elsewhere / STATS_FILE).is_file() and not (root / ".compile_safe_cache").exists()
    flake8(root, env={**os.environ, "COMPILE_SAFE_NO_CACHE": "1"}).communicate()
    assert not (root / ".compile_safe_cache").exists()


def test_read_only_cache_dir_reads_but_never_writes(tmp_path, monkeypatch, capsys):
    """The read-only case as root sees it too: the directory reports itself unwritable."""
    root = make_project(tmp_path / "proj")
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    cache = root / ".compile_safe_cache"
    expected, _ = warm(root, cache)
    before = sorted((p, p.stat().st_mtime_ns) for p in cache.rglob("*"))
    (root / "pkg" / "helper.py").write_text(HELPER + "\n")
    monkeypatch.setattr("flake8_compile_safe.cache.os.access", lambda *args: False)
    capsys.readouterr()
    found, stats = warm(root, cache)
    assert found == expected == cold(root) and stats.entries_written == 0
    assert "read-only" in capsys.readouterr().err
    assert sorted((p, p.stat().st_mtime_ns) for p in cache.rglob("*")) == before


def test_jobs_workers_report_what_a_cold_run_reports(tmp_path):
    root = make_project(tmp_path / "proj")
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    expected = flake8(root, "--compile-safe-no-cache", "--jobs=2").communicate()[0]
    assert expected.count("TCS002") == 3
    for _ in range(2):  # cold, then warm
        assert flake8(root, "--jobs=2").communicate()[0] == expected
    (root / "pkg" / "deep.py").write_text(DEEP_SAFE)
    assert flake8(root, "--jobs=2").communicate()[0] == flake8(root, "--compile-safe-no-cache").communicate()[0]


def test_cache_key_changes_with_the_linter_code_not_with_the_validation_code(tmp_path):
    """An edited rule under the same version (an editable install) must not replay old findings."""
    import shutil

    import flake8_compile_safe
    from flake8_compile_safe.cache import _linter_fingerprint

    copy = tmp_path / "pkg"
    shutil.copytree(Path(flake8_compile_safe.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = _linter_fingerprint(copy)
    assert f"code={before}".encode() in VERSION_LINE
    (copy / "validate" / "cli.py").write_text("# validation only\n")
    assert _linter_fingerprint(copy) == before
    rule = copy / "rules" / "tcs002_host_sync.py"
    rule.write_text(rule.read_text() + "\n# edited\n")
    assert _linter_fingerprint(copy) != before


def test_a_warm_run_parses_only_the_edited_file_when_nothing_else_needs_reading(tmp_path):
    """Whole-walk checks (TCS014) read the defs of functions near a break only: a warm run after a
    body edit must not parse every reached function's file."""
    root = make_project(tmp_path / "proj")
    cache = root / ".compile_safe_cache"
    warm(root, cache)
    (root / "pkg" / "deep.py").write_text(DEEP_SAFE.replace("return t * 2", "u = t + 1\n    return u * 2"))
    found, stats = warm(root, cache)
    assert found == cold(root) == []
    assert stats.mode == "incremental" and stats.parsed == 1, stats  # deep.py, nothing else


def test_functions_with_a_break_in_unchanged_files_are_not_parsed_again(tmp_path):
    """TCS014 asks every function with a break whether a comprehension sits in its try/loop: the
    answer comes from the cached summary (FunctionInfo.derived), not from a parse."""
    root = make_project(tmp_path / "proj")
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)  # breaks in deep, helper and model
    cache = root / ".compile_safe_cache"
    warm(root, cache)
    other = root / "pkg" / "other0.py"
    other.write_text(other.read_text().replace("return x + 1", "y = x + 1\n        return y"))
    found, stats = warm(root, cache)
    assert found == cold(root) and ("deep.py", 2, "TCS002") in codes(found)
    assert stats.mode == "incremental" and stats.parsed == 1, stats  # other0.py only


SKIPPED_FRAMES = {
    "pkg/deco.py": '''\
import functools


class Registry(dict):
    def get(self, model) -> dict:
        return super().get(type(model).__name__) or {}


REGISTRY = Registry()


def capture(func):
    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        keys = {k: getattr(self, k, False) for k in REGISTRY.get(self)}
        try:
            return func(self, *args, **kwargs)
        finally:
            keys.clear()

    return wrapper
''',
    "pkg/skip.py": '''\
import torch
from torch import nn

from pkg.deco import capture


class Sampler(nn.Module):
    def forward(self, x, steps: int):
        for _ in range(steps):
            n = int(x.sum().item())
            x = x[:n]
        return [torch.relu(t) for t in list(x)]


class Router(nn.Module):
    @capture
    def forward(self, ids):
        def count(v):
            for _ in range(2):
                v = v[: int(v.sum().item())]
            return [torch.relu(t) for t in list(v)]

        return count(ids)
''',
}


def test_whole_walk_facts_of_unchanged_files_come_from_the_cache(tmp_path):
    """TCS014 reads, for every function with a break, its comprehensions and loop/try regions; for
    every decorated function reaching one, its decorators' wrappers; nested defs included. A warm
    run after an unrelated edit takes all of it from the summaries: only the edited file is parsed."""
    root = make_project(tmp_path / "proj")
    for name, text in SKIPPED_FRAMES.items():
        (root / name).write_text(text)
    cache = root / ".compile_safe_cache"
    first, stats = warm(root, cache)
    assert stats.mode == "cold" and first == cold(root)
    assert [(n, line) for n, line, code in codes(first) if code == "TCS014"] == [
        ("deco.py", 15), ("skip.py", 12), ("skip.py", 21)]
    other = root / "pkg" / "other0.py"
    other.write_text(other.read_text().replace("return x + 1", "y = x + 1\n        return y"))
    found, stats = warm(root, cache)
    assert found == cold(root) == first
    assert stats.mode == "incremental" and stats.parsed == 1, stats  # other0.py only


def test_findings_are_handed_over_before_the_cache_is_written(tmp_path):
    """The forked analysis gives flake8 its findings first and writes the cache while flake8's
    workers run; the cache is complete once the child is joined, and serves the next run."""
    from flake8_compile_safe.analysis import clear_cache, report_for_root, wait_for_cache_writes

    root = make_project(tmp_path / "proj")
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    cache = root / ".compile_safe_cache"
    seen = []

    def deliver(report):
        seen.append((list(report.findings), run.stats.entries_written))

    run = IncrementalRun(root.resolve(), (), CacheStore(cache), deliver=deliver)
    findings = run.execute().findings
    assert seen == [(findings, 0)] and findings == cold(root) != []  # delivered before any entry was written
    assert run.stats.entries_written > 0

    for edit in (DEEP_SAFE, DEEP_HAZARD):  # incremental runs deliver too
        (root / "pkg" / "deep.py").write_text(edit)
        seen.clear()
        run = IncrementalRun(root.resolve(), (), CacheStore(cache), deliver=deliver)
        findings = run.execute().findings
        assert run.stats.mode == "incremental" and seen == [(findings, 0)] and findings == cold(root)

    shutil.rmtree(cache)
    clear_cache()
    try:
        forked = report_for_root(root, in_child=True, cache_dir=cache).findings
        # A flake8 worker forked now inherits the pending child: waiting there must not join it.
        import multiprocessing

        worker = multiprocessing.get_context("fork").Process(target=wait_for_cache_writes)
        worker.start()
        worker.join()
        assert worker.exitcode == 0
        wait_for_cache_writes()
        assert forked == cold(root)
        stats = json.loads((cache / STATS_FILE).read_text())
        assert stats["mode"] == "cold" and stats["entries_written"] > stats["files"]  # every entry, then the project
        found, stats = warm(root, cache)
        assert stats.mode == "unchanged" and found == forked
    finally:
        clear_cache()


def test_the_compile_mention_filter_gives_the_regex_answers():
    from flake8_compile_safe.project import COMPILE_MENTION, mentions_compile

    texts = ["import torch\nfrom torch import compile", "x = torch.compile(m)", "re.compile('a')\nimport os",
             "import os, compile_x", "compile", "import a\ncompile", "from x import (a,\n compile)",
             "import x; y = compile", "y = 1\nfrom torch import compile as c\n", "", "torch.compiled"]
    for text in texts:
        assert mentions_compile(text) == bool(COMPILE_MENTION.search(text)), text
    assert mentions_compile("x = torch.compile(m)") and not mentions_compile("re.compile('a')\nimport os")
