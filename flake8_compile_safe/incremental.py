"""A run that reuses the last one: findings as a cold run gives them, at the cost of what changed.

Per file the cache (:mod:`.cache`) keeps the module's summary (its index entry without ASTs),
its two digests (:mod:`.summaries`), and one record per function the roots reached in it: the
rule hits, the calls followed, and the files (with their content hashes) whose ASTs that
function's analysis read, callee summaries included. Per project and option set it keeps every
file's content hash, the roots with the files they were read from, and the findings.

A run hashes every file (skipping the read when size, mtime and inode are those of the last run
and the file is older than that run), then takes the first case that applies:

1. no file changed: the stored findings;
2. a file was added, removed or renamed, no usable cache, many files changed, or a changed
   file's interface changed: a cold run (parse and analyse everything), which refills the cache;
3. otherwise the index is assembled from the summaries, only changed files are parsed, the
   attribute pass is redone for them and for the files whose pass read them, and the walk from
   the roots replays every function whose recorded reads are all unchanged (and the facts of
   the whole index are the same), analysing the others: their ASTs are parsed on demand.

The walk itself always runs in full, in the same order as a cold run, so chains, widening and
which chain reports a line come out the same.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .analysis import Report, analyze_index
from .cache import CacheStore, content_hash, digest
from .model import recording
from .project import ProjectIndex, iter_python_files, mentions_compile, mentions_hooks
from .roots import Root, find_roots
from .source import ParseCounter, SourceError, parse_source, read_text
from .replay import ReachMemo, packed, unpack
from .summaries import facts_digest, function_spec, interface_digest, resolve_spec

LOG = logging.getLogger("flake8.compile_safe")
RACY_NS = 2_000_000_000  # a file this close to the last run's start is hashed again (racy stat)
STATS_FILE = "last_run.json"
ENTRY_KEYS = {"path", "hash", "module", "error", "interface", "facts", "facts_world", "records", "summaries"}
PROJECT_KEYS = {"root", "started_ns", "stats", "hashes", "findings", "indexed_paths", "errors", "roots",
                "roots_read", "facts_world"}


@dataclass
class RunStats:
    mode: str = ""  # unchanged | incremental | cold
    reason: str = ""
    files: int = 0
    hashed: int = 0  # files read to hash them (the others matched the last run's stat)
    changed: int = 0
    parsed: int = 0
    attribute_passes: int = 0
    analysed: int = 0  # reached functions analysed
    replayed: int = 0  # reached functions replayed from their record
    entries_written: int = 0
    entries_ignored: int = 0


class IncrementalRun:
    def __init__(self, root: Path, extra_roots: tuple[str, ...], store: CacheStore, trees=None, deliver=None):
        self.root = root
        # Called with the findings as soon as they are known, before the cache is written: a
        # forked analysis hands them to flake8 at once and writes its entries meanwhile.
        self.deliver = deliver
        self.extra_roots = tuple(extra_roots)
        self.store = store
        self.trees = trees or {}
        self.stats = RunStats()
        self.started_ns = time.time_ns()
        self.parses_before = ParseCounter.count
        self.project_entry = store.project_name((str(root), self.extra_roots))

    # -- the run ------------------------------------------------------------------------------
    def execute(self) -> Report:
        # Millions of objects (summaries, records, ASTs) and no cycles worth collecting: the
        # cyclic GC would rescan them all, again and again (as in ProjectIndex.build).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._execute()
        finally:
            if enabled:
                gc.enable()

    def _execute(self) -> Report:
        self.files = [str(p) for p in iter_python_files(self.root)]
        self.stats.files = len(self.files)
        self.prior = self._read_prior()
        self.stat_of, self.hashes = self._hash_files()
        if self.prior is not None and self.prior["hashes"] == self.hashes:
            report = self._unchanged()
        else:
            report = self._incremental() or self._cold()
        self._finish_stats()
        return report

    def _read_prior(self):
        prior = self.store.read(self.project_entry)
        if not isinstance(prior, dict) or prior.get("root") != str(self.root) or not PROJECT_KEYS <= prior.keys():
            return None
        return prior

    def _hash_files(self):
        prior_stats = self.prior["stats"] if self.prior else {}
        prior_hashes = self.prior["hashes"] if self.prior else {}
        limit = self.prior["started_ns"] - RACY_NS if self.prior else 0
        stat_of, hashes = {}, {}
        for path in self.files:
            try:
                st = os.stat(path)
            except OSError as exc:
                hashes[path] = f"unreadable: {exc.strerror}"
                continue
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            stat_of[path] = key
            if prior_stats.get(path) == key and st.st_mtime_ns < limit and path in prior_hashes:
                hashes[path] = prior_hashes[path]
                continue
            self.stats.hashed += 1
            try:
                with open(path, "rb") as handle:
                    hashes[path] = content_hash(handle.read())
            except OSError as exc:
                hashes[path] = f"unreadable: {exc.strerror}"
        return stat_of, hashes

    def _unchanged(self) -> Report:
        self.stats.mode, self.stats.reason = "unchanged", "no file changed"
        prior = self.prior
        if prior["stats"] != self.stat_of:  # touched but not changed: keep the stat shortcut working
            self._write_project(prior["findings"], prior["indexed_paths"], prior["errors"], prior["roots"],
                                prior["roots_read"], prior["facts_world"])
        report = Report(None, [], [], indexed_paths=set(prior["indexed_paths"]), errors=dict(prior["errors"]))
        report.set_findings(prior["findings"])
        return report

    def _incremental(self) -> Report | None:
        """Case 3 of the module docstring, or None when only a cold run can be exact."""
        stats = self.stats
        if self.prior is None:
            stats.reason = "no cache"
            return None
        if set(self.prior["hashes"]) != set(self.hashes):
            stats.reason = "files added, removed or renamed"
            return None
        entries = {path: self._read_entry(path) for path in self.files}
        changed = [p for p in self.files if entries[p] is None or entries[p]["hash"] != self.hashes[p]]
        stats.changed = len(changed)
        if len(changed) > max(64, len(self.files) // 4):
            stats.reason = f"{len(changed)} files changed"
            return None
        if any(entries[p] is None for p in changed):
            stats.reason = "cache entries missing"
            return None
        index, fresh = self._assemble(entries, set(changed))
        if index is None:
            return None
        digests = self._redo_attributes(index, entries, fresh, set(changed))
        if digests is None:
            return None
        interfaces, facts = digests
        facts_world = digest(sorted(facts.items()))
        records, summaries = {}, {}
        for path in self.files:
            entry = entries[path]
            if entry is not None and entry.get("facts_world") == facts_world:
                records.update(entry["records"])
                summaries.update(entry["summaries"])
        stats.mode = "incremental"
        stats.reason = f"{len(changed)} file(s) changed" + ("" if records else "; the facts changed")
        roots, roots_read = self._roots(index, facts_world)
        memo = ReachMemo(index, records, self.hashes, stats, summaries)
        report = analyze_index(index, self.extra_roots, memo=memo, roots=roots)
        self._deliver(report)
        for path in self.files:  # summaries not needed this run stay while what they read is unchanged
            entry = entries[path]
            if entry is not None and entry.get("facts_world") == facts_world and path not in changed:
                kept = memo.kept_summaries.setdefault(path, {})
                for key, stored in entry["summaries"].items():
                    if key not in kept and all(self.hashes.get(p) == sha for p, sha in unpack(stored)[1]):
                        kept[key] = stored
        rewrite = set(changed) | set(fresh) | {
            p for p in self.files if entries[p] is not None and not entries[p].get("error")
            and (entries[p]["records"] != packed(memo.kept.get(p, {})) or entries[p]["facts"] != facts.get(p)
                 or entries[p]["facts_world"] != facts_world
                 or len(entries[p]["summaries"]) != len(memo.kept_summaries.get(p, {})))}
        for path in self.files:
            if path in rewrite:
                module = index.by_path.get(path)
                self._write_entry(path, module, interfaces.get(path), facts.get(path), facts_world, memo,
                                  None if module else index.errors.get(path))
        return self._save(report, roots, roots_read, facts_world)

    def _assemble(self, entries, changed: set[str]):
        """The index from the summaries of unchanged files and fresh parses of changed ones."""
        index = ProjectIndex(self.root)
        fresh = {}
        for path in self.files:
            entry = entries[path]
            if path not in changed:
                if entry.get("error"):
                    index.errors[path] = entry["error"]
                else:
                    index.register(entry["module"])
                continue
            try:
                text = read_text(path)
                tree = self.trees[path] if path in self.trees else parse_source(text, path)
            except SourceError:
                self.stats.reason = "a changed file can no longer be parsed"
                return None, None
            if entry.get("error"):
                self.stats.reason = "a file that could not be parsed now can"
                return None, None
            module = index.add_module(Path(path), tree)
            if module.name != entry["module"].name:
                self.stats.reason = "module names moved"
                return None, None
            module.mentions_compile = mentions_compile(text)
            module.mentions_hooks = mentions_hooks(text)
            fresh[path] = module
        resolver = index.resolver()
        for module in fresh.values():
            index.index_names(module, resolver)
        for path, module in fresh.items():
            if interface_digest(module) != entries[path]["interface"]:
                self.stats.reason = f"the interface of {os.path.relpath(path, self.root)} changed"
                return None, None
        return index, fresh

    def _redo_attributes(self, index: ProjectIndex, entries, fresh, changed: set[str]):
        """Redo the attribute pass where it may differ; (interface digests, facts digests) of all."""
        redo = [p for p, m in index.by_path.items() if p in fresh or (m.fact_deps & changed)]
        redo_set = set(redo)
        index.globally_static_attrs = set().union(
            *(m.static_marks for p, m in index.by_path.items() if p not in redo_set))
        interfaces, facts = {}, {}
        for path, module in index.by_path.items():
            interfaces[path] = entries[path]["interface"]
            if path not in redo_set:
                facts[path] = entries[path]["facts"]
        for path in redo:
            module = index.by_path[path]
            if path not in fresh:
                for klass in module.classes.values():
                    klass.reset_attributes()
                module.global_kinds = {}
            index.index_attributes(module)
            self.stats.attribute_passes += 1
            facts[path] = facts_digest(module, interfaces[path])
        return interfaces, facts

    def _roots(self, index: ProjectIndex, facts_world: str):
        prior = self.prior
        if prior is not None and prior["facts_world"] == facts_world and all(
                self.hashes.get(path) == sha for path, sha in prior["roots_read"]):
            roots = []
            for spec, self_cls, why in prior["roots"]:
                func = resolve_spec(index, spec)
                klass = index.lookup_class(self_cls) if self_cls else None
                if func is None or (self_cls and klass is None):
                    break
                roots.append(Root(func, klass, why))
            else:
                return roots, prior["roots_read"]
        with recording() as read:
            roots = find_roots(index, self.extra_roots)
        return roots, tuple(sorted((p, self.hashes[p]) for p in read if p in self.hashes))

    def _cold(self) -> Report:
        self.stats.mode = "cold"
        index = ProjectIndex.build(self.root, self.trees)
        with recording() as read:
            roots = find_roots(index, self.extra_roots)
        roots_read = tuple(sorted((p, self.hashes[p]) for p in read if p in self.hashes))
        memo = ReachMemo(index, {}, self.hashes, self.stats)
        report = analyze_index(index, self.extra_roots, memo=memo, roots=roots)
        self._deliver(report)
        interfaces, facts = {}, {}  # only the cache needs them: after the findings are out
        for path, module in index.by_path.items():
            interfaces[path] = interface_digest(module)
            facts[path] = facts_digest(module, interfaces[path])
        facts_world = digest(sorted(facts.items()))
        for path in self.files:
            module = index.by_path.get(path)
            self._write_entry(path, module, interfaces.get(path), facts.get(path), facts_world, memo,
                              None if module else index.errors.get(path, "not indexed"))
        result = self._save(report, roots, roots_read, facts_world)
        index.release()
        return result

    def _deliver(self, report: Report) -> None:
        if self.deliver is not None:
            self.deliver(report.slim())

    # -- writing ------------------------------------------------------------------------------
    def _entry_name(self, path: str) -> str:
        return self.store.module_name(os.path.relpath(path, self.root))

    def _read_entry(self, path: str):
        entry = self.store.read(self._entry_name(path))
        if not isinstance(entry, dict) or entry.get("path") != path or not ENTRY_KEYS <= entry.keys():
            return None
        return entry

    def _write_entry(self, path, module, interface, facts, facts_world, memo: ReachMemo, error) -> None:
        if path not in self.hashes:
            return
        payload = {"path": path, "hash": self.hashes[path], "module": module, "error": error,
                   "interface": interface, "facts": facts, "facts_world": facts_world,
                   "records": packed(memo.kept.get(path, {})),
                   "summaries": packed(memo.kept_summaries.get(path, {}))}
        if self.store.write(self._entry_name(path), payload):
            self.stats.entries_written += 1

    def _save(self, report: Report, roots, roots_read, facts_world) -> Report:
        root_specs = [(function_spec(r.func), r.self_cls.qualname if r.self_cls is not None else "", r.why)
                      for r in roots]
        slim = report.slim()
        self._write_project(slim.findings, sorted(slim.indexed_paths), slim.errors, root_specs, roots_read,
                            facts_world)
        return slim

    def _write_project(self, findings, indexed_paths, errors, roots, roots_read, facts_world) -> None:
        if self.store.write(self.project_entry, {
                "root": str(self.root), "started_ns": self.started_ns, "stats": self.stat_of,
                "hashes": self.hashes, "findings": list(findings), "indexed_paths": list(indexed_paths),
                "errors": dict(errors), "roots": roots, "roots_read": roots_read, "facts_world": facts_world}):
            self.stats.entries_written += 1

    def _finish_stats(self) -> None:
        self.stats.parsed = ParseCounter.count - self.parses_before
        self.stats.entries_ignored = self.store.ignored
        figures = asdict(self.stats)
        LOG.debug("compile-safe cache: %s", json.dumps(figures))
        self.store.write_text(STATS_FILE, json.dumps(figures, indent=1) + "\n")


def cached_report(root: str | Path, extra_roots: tuple[str, ...], cache_dir: str | Path | None,
                  trees=None, deliver=None) -> Report:
    """The project's findings, through the persistent cache in ``cache_dir`` (default: at the root).

    ``deliver(report)``, if given, receives the findings as soon as they are known, before the
    cache entries are written (a run served whole from the cache never calls it)."""
    root = Path(root).resolve()
    directory = Path(cache_dir) if cache_dir else root / ".compile_safe_cache"
    if not directory.is_absolute():
        directory = root / directory
    return IncrementalRun(root, extra_roots, CacheStore(directory), trees, deliver).execute()
