"""The linter on the real Toto source (toto-ts==0.2.0, downloaded into a cache at test time).

Expected lines are found by their text in the downloaded source, never by hard-coded numbers,
and checked against what flake8 prints. tests/test_toto_dynamo_grounding.py checks the same
findings against what dynamo itself reports when it compiles the model.
"""

import ast
import re
from pathlib import Path

import pytest

from flake8_compile_safe.families.toto import fetch_toto
from helpers import run_flake8


@pytest.fixture(scope="module")
def toto_root():
    try:
        return fetch_toto()
    except RuntimeError as exc:  # no registry reachable
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def lint(toto_root):
    result = run_flake8("--select=TCS", "--compile-safe-explain", f"--compile-safe-root={toto_root}",
                        str(toto_root / "toto"))
    assert "Traceback" not in result.stderr, result.stderr
    found = {}
    for line in result.stdout.splitlines():
        m = re.match(r"(.+?):(\d+):\d+: (TCS\d+) (.*)$", line)
        assert m, line
        rel = Path(m.group(1)).relative_to(toto_root).as_posix()
        found.setdefault((rel, int(m.group(2))), {})[m.group(3)] = m.group(4)
    return found


def method_lines(toto_root, rel, cls, method):
    tree = ast.parse((toto_root / rel).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    return range(item.lineno, item.end_lineno + 1)
    raise AssertionError(f"{cls}.{method} not in {rel}")


def lines_matching(toto_root, rel, pattern, within=None):
    lines = (toto_root / rel).read_text().splitlines()
    hits = [n for n, text in enumerate(lines, 1) if re.search(pattern, text) and (within is None or n in within)]
    assert hits, f"{pattern!r} not found in {rel}"
    return hits


UTIL = "toto/model/util.py"


def test_write_head_and_buffer_writes_in_append(toto_root, lint):
    append = method_lines(toto_root, UTIL, "KVCache", "append")
    head = lines_matching(toto_root, UTIL, r"self\._current_idx\[cache_idx\] = end_idx", append)
    writes = lines_matching(toto_root, UTIL, r"self\._(keys|values)\[cache_idx, .*start_idx:end_idx", append)
    assert len(writes) == 4
    for n in head + writes:
        assert "TCS001" in lint.get((UTIL, n), {}), n
    assert "KVCache._current_idx" in lint[(UTIL, head[0])]["TCS001"]
    assert "reached from TimeWiseMultiheadAttention.forward -> positional_embedding -> KVCache.append" \
        in lint[(UTIL, head[0])]["TCS001"]
    for n in writes:  # the tensor-bounded slices
        assert "tensor slice bound" in lint[(UTIL, n)]["TCS003"]


def test_every_item_in_kvcache_methods_reached_from_attention(toto_root, lint):
    for method in ("__getitem__", "current_len", "seq_len", "append"):
        for n in lines_matching(toto_root, UTIL, r"\.item\(\)", method_lines(toto_root, UTIL, "KVCache", method)):
            assert "TCS002" in lint.get((UTIL, n), {}), (method, n)


def test_tensor_bounded_reads_in_getitem(toto_root, lint):
    getitem = method_lines(toto_root, UTIL, "KVCache", "__getitem__")
    for n in lines_matching(toto_root, UTIL, r":end_idx", getitem):
        assert "TCS003" in lint.get((UTIL, n), {}), n


def test_length_reads_in_backbone_and_transformer(toto_root, lint):
    for rel, pattern in (("toto/model/backbone.py", r"kv_cache\.current_len\(0\)"),
                         ("toto/model/transformer.py", r"kv_cache\.current_len\(0\)"),
                         ("toto/model/transformer.py", r"kv_cache\.seq_len\(1\)"),
                         ("toto/model/attention.py", r"kv_cache\.seq_len\(layer_idx\)")):
        for n in lines_matching(toto_root, rel, pattern):
            assert "TCS002" in lint.get((rel, n), {}), (rel, n)
    backbone = "toto/model/backbone.py"
    for n in lines_matching(toto_root, backbone, r"\[:, :, prefix_len:\]"):
        assert "TCS003" in lint.get((backbone, n), {}), n


def test_allocation_and_reset_are_not_flagged(toto_root, lint):
    for method in ("__post_init__", "reset"):
        span = method_lines(toto_root, UTIL, "KVCache", method)
        assert not [n for (rel, n) in lint if rel == UTIL and n in span], method


def test_only_model_code_reached_by_compiled_paths(toto_root, lint):
    # Training, evaluation, data and test code are not reached from a compiled forward.
    assert {rel for rel, _ in lint} <= {"toto/model/util.py", "toto/model/attention.py",
                                        "toto/model/backbone.py", "toto/model/transformer.py",
                                        "toto/model/embedding.py"}


def _lint_lines(root):
    result = run_flake8("--select=TCS", f"--compile-safe-root={root}", str(root / "toto"))
    assert "Traceback" not in result.stderr, result.stderr
    found = set()
    for line in result.stdout.splitlines():
        m = re.match(r"(.+?):(\d+):(\d+): (TCS\d+)", line)
        found.add((Path(m.group(1)).relative_to(root).as_posix(), int(m.group(2)), m.group(4)))
    return found


def test_namespace_package_copy_gives_the_same_findings(toto_root, tmp_path):
    # PEP 420: the same tree with every __init__.py deleted imports the same way from its root.
    import shutil

    copy = tmp_path / "toto_ns"
    shutil.copytree(toto_root, copy)
    removed = [p.unlink() or p for p in copy.rglob("__init__.py")]
    assert removed
    package = _lint_lines(toto_root)
    assert len(package) >= 30 and {code for *_, code in package} >= {"TCS001", "TCS002", "TCS003", "TCS004"}
    assert _lint_lines(copy) == package
