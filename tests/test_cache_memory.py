"""What a warm run holds of the cache: records and summaries pickled until replayed, class facts
pickled until read, StaticKinds shared per value; the findings stay those of a cold run."""

import os
import pickle
from pathlib import Path

import pytest

from flake8_compile_safe.analysis import _build_report
from flake8_compile_safe.cache import MAGIC, CacheStore, load_entry
from flake8_compile_safe.incremental import IncrementalRun
from flake8_compile_safe.model import CLASS_FACTS
from flake8_compile_safe.project import ProjectIndex
from flake8_compile_safe.values import StaticKind
from test_incremental_cache import DEEP_HAZARD, DEEP_SAFE, cold, make_project, warm

FACTS = '''\
import torch


class Flags(torch.nn.Module):
    LIMIT = 4

    def __init__(self):
        super().__init__()
        self.on = True
        self.count = 1
        self.buf = torch.zeros(3)

    def forward(self, x):
        self.count = self.count + 1
        return x + self.buf
'''


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _entries(cache: Path):
    for path in sorted((cache / "modules").glob("*.pickle")):
        data = path.read_bytes()
        yield load_entry(data[data.index(b"\n", len(MAGIC)) + 1:])


def test_records_and_summaries_are_stored_packed_and_replayed_from_bytes(tmp_path):
    root = make_project(tmp_path / "proj")
    cache = root / ".compile_safe_cache"
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    warm(root, cache)
    entries = list(_entries(cache))
    records = [r for e in entries for r in e["records"].values()]
    summaries = [s for e in entries for s in e["summaries"].values()]
    assert records and summaries
    assert all(isinstance(r, bytes) for r in records + summaries)
    assert all(len(load_entry(r)) == 6 for r in records)  # reads, uses, hits, calls, skipped, successors

    (root / "pkg" / "deep.py").write_text(DEEP_SAFE)
    found, stats = warm(root, cache)
    assert stats.mode == "incremental" and stats.replayed > 0 and found == cold(root)
    stored = [r for e in _entries(cache) for r in [*e["records"].values(), *e["summaries"].values()]]
    assert stored and all(isinstance(r, bytes) for r in stored)


def test_a_packed_record_that_names_a_foreign_global_is_refused_and_the_run_stays_exact(tmp_path, capsys):
    root = make_project(tmp_path / "proj")
    cache = root / ".compile_safe_cache"
    (root / "pkg" / "deep.py").write_text(DEEP_HAZARD)
    warm(root, cache)
    store = CacheStore(cache)
    evil = pickle.dumps(_Evil(), protocol=pickle.HIGHEST_PROTOCOL)
    for path in (cache / "modules").glob("*.pickle"):
        data = path.read_bytes()
        entry = load_entry(data[data.index(b"\n", len(MAGIC)) + 1:])
        if entry["records"]:
            entry["records"] = {key: evil for key in entry["records"]}
            name = f"modules/{path.name}"
            assert store.write(name, entry)
    (root / "pkg" / "deep.py").write_text(DEEP_SAFE)
    with pytest.raises(pickle.UnpicklingError, match="refused global .*system"):
        IncrementalRun(root.resolve(), (), CacheStore(cache)).execute()
    # what the plugin calls: one warning, then the findings of a run without the cache
    assert _build_report(str(root.resolve()), (), None, str(cache)).findings == cold(root)
    assert "the cache failed" in capsys.readouterr().err


def test_restored_class_facts_stay_packed_until_read(tmp_path):
    (tmp_path / "flags.py").write_text(FACTS)
    index = ProjectIndex.build(tmp_path)
    klass = next(index.classes())
    assert klass.attrs and klass.constants_assigned and klass.class_constants
    restored = load_entry(pickle.dumps(klass.module, protocol=pickle.HIGHEST_PROTOCOL)).classes["Flags"]
    assert isinstance(restored.__dict__.get("_facts"), bytes)
    assert not set(CLASS_FACTS) & restored.__dict__.keys()
    again = load_entry(pickle.dumps(restored.module, protocol=pickle.HIGHEST_PROTOCOL)).classes["Flags"]
    for name in CLASS_FACTS:  # read once: every fact comes back as it was, the bytes go
        if name == "class_constants":
            assert restored.class_constants.keys() == klass.class_constants.keys()
        else:
            assert getattr(restored, name) == getattr(klass, name), name
    assert "_facts" not in restored.__dict__
    assert again.attrs == klass.attrs  # pickled again unread: the stored bytes pass through

    fresh = load_entry(pickle.dumps(klass.module, protocol=pickle.HIGHEST_PROTOCOL)).classes["Flags"]
    fresh.reset_attributes()  # a re-indexed class: what the pass finds now wins over the stored bytes
    assert fresh.attrs == {} and "_facts" not in fresh.__dict__


def test_static_kinds_are_shared_per_value_and_type():
    kinds = [StaticKind("tensor", ("a.B",)), StaticKind("tensor", ("a.B",)), StaticKind(constant=True),
             StaticKind(constant=1), StaticKind(constant=[1])]
    loaded = load_entry(pickle.dumps(kinds, protocol=pickle.HIGHEST_PROTOCOL))
    assert loaded == kinds
    assert loaded[0] is loaded[1]
    assert loaded[2].constant is True and loaded[3].constant == 1 and loaded[3].constant is not True
    assert not hasattr(loaded[0], "__dict__")
