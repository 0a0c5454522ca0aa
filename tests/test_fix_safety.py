"""Never change behaviour silently: the fixer rewrites only what the analysis proves.

* the BigBird pattern (a NumPy array written at slice bounds from ``int(np.sum(...))``, the value a
  call that draws random numbers) is left alone, with or without --unsafe-fixes;
* a receiver or value the analysis only believes is a tensor is rewritten only with --unsafe-fixes,
  and a value that calls anything is evaluated exactly once (hoisted into a local);
* --strategy graph-break never decorates a compiled root (an nn.Module.forward), only helpers;
* ``import torch as th`` is honoured.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flake8_compile_safe.analysis import clear_cache
from flake8_compile_safe.fixers.api import fix_paths


def _project(tmp_path: Path, source: str) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'sample'\n")
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(source))
    clear_cache()
    return path


def _fix(path: Path, **kwargs):
    clear_cache()
    return fix_paths([str(path)], **kwargs)


BIGBIRD = """\
    import numpy as np
    import torch


    class BlockSparseAttention(torch.nn.Module):
        def _get_single_block_row_attention(self, block_id, to_start_block_id, num_rand_blocks):
            perm = np.random.permutation(np.arange(to_start_block_id, 16))
            return perm[:num_rand_blocks]

        def _bigbird_block_rand_mask(self, num_heads, num_blocks, plan_num_rand_blocks):
            rand_attn = [np.zeros((num_blocks, sum(plan_num_rand_blocks)), dtype=np.int32) for _ in range(num_heads)]
            for plan_idx in range(len(plan_num_rand_blocks)):
                rnd_r_cnt = int(np.sum(plan_num_rand_blocks[:plan_idx]))
                curr_r_cnt = int(np.sum(plan_num_rand_blocks[: plan_idx + 1]))
                for blk_rw_idx in range(num_blocks):
                    for h in range(num_heads):
                        rand_attn[h][blk_rw_idx, rnd_r_cnt:curr_r_cnt] = self._get_single_block_row_attention(
                            block_id=blk_rw_idx,
                            to_start_block_id=plan_idx,
                            num_rand_blocks=curr_r_cnt - rnd_r_cnt,
                        )
            return rand_attn

        def forward(self, x):
            rand_attn = self._bigbird_block_rand_mask(2, 4, [2, 1])
            return x + torch.tensor(np.stack(rand_attn), dtype=x.dtype).sum()
"""


@pytest.mark.parametrize("unsafe", [False, True])
def test_bigbird_numpy_target_is_left_alone(tmp_path, unsafe):
    path = _project(tmp_path, BIGBIRD)
    original = path.read_text()
    report = _fix(path, unsafe_fixes=unsafe)
    text = path.read_text()
    assert text.count("self._get_single_block_row_attention(") == original.count(
        "self._get_single_block_row_attention(")  # never duplicated
    assert "index_copy_" not in text and text == original
    unfixed = [u for u in report.unfixed if u.code == "TCS003"]
    assert unfixed, "the finding must be listed with why"
    assert all("may not be a torch tensor" in u.reason or "not known" in u.reason or "host" in u.reason
               for u in unfixed), [u.reason for u in unfixed]


SIDE_EFFECT = """\
    import torch


    class Cache:
        def __init__(self):
            self.buf = torch.zeros(16, 4)
            self.pos = torch.zeros((), dtype=torch.long)
            self.draws = []

        def draw(self, rows, n: int):
            self.draws.append(torch.rand(()))  # a side effect, and randomness
            return rows.expand(n, 4) * self.draws[-1]

        def write(self, rows, n: int):
            start = self.pos
            self.buf[start:start + n] = self.draw(rows, n)
            self.pos += n


    class Model(torch.nn.Module):
        def forward(self, x, cache: Cache):
            cache.write(x, x.shape[0])
            return x
"""


def test_unproven_value_needs_unsafe_fixes_and_a_call_runs_once(tmp_path):
    path = _project(tmp_path, SIDE_EFFECT)
    report = _fix(path)
    assert "self.buf[start:start + n] = self.draw(rows, n)" in path.read_text()  # not applied by default
    reasons = [u.reason for u in report.unfixed if u.code == "TCS003"]
    assert reasons and "unsafe fix not applied (index-copy)" in reasons[0], reasons
    report = _fix(path, unsafe_fixes=True)
    text = path.read_text()
    assert any(a.fix == "index-copy" and a.why_unsafe for a in report.applied)
    assert text.count("self.draw(rows, n)") == 1  # hoisted, never duplicated
    torch = pytest.importorskip("torch")
    results = []
    for source in (textwrap.dedent(SIDE_EFFECT), text):
        ns: dict = {}
        exec(compile(source, "model", "exec"), ns)
        torch.manual_seed(0)
        cache = ns["Cache"]()
        for n in (3, 1, 2):
            cache.write(torch.ones(1, 4), n)
        results.append((cache.buf.clone(), [float(d) for d in cache.draws], int(cache.pos)))
    assert torch.equal(results[0][0], results[1][0]) and results[0][1:] == results[1][1:]


UNPROVEN_RECEIVER = """\
    import torch


    def make_buffer():
        return torch.zeros(16, 4)


    class Cache:
        def __init__(self, buffer):
            self.buf = buffer
            self.pos = torch.zeros((), dtype=torch.long)

        def write(self, k: torch.Tensor):
            start = self.pos
            self.buf[start:start + k.shape[0]] = k
            self.pos += k.shape[0]


    class Model(torch.nn.Module):
        def forward(self, x, cache: Cache):
            cache.write(x)
            return x
"""


def test_receiver_of_unproven_type_is_not_rewritten_by_default(tmp_path):
    path = _project(tmp_path, UNPROVEN_RECEIVER)
    report = _fix(path)
    assert "self.buf[start:start + k.shape[0]] = k" in path.read_text()
    reason = next(u.reason for u in report.unfixed if u.code == "TCS003")
    assert "Cache.buf" in reason and "tensor" in reason


ROOTS = """\
    import torch


    class Cache:
        def __init__(self):
            self.keys = torch.zeros(16, 4)
            self.head = torch.zeros((), dtype=torch.long)

        def append(self, k):
            start = int(self.head.item())
            self.keys[start:start + k.shape[0]] = k
            self.head += k.shape[0]
            return self.keys


    class Block(torch.nn.Module):
        def forward(self, x, cache: Cache):
            n = int(x.sum().item())
            return cache.append(x) * n


    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()

        def forward(self, x, cache: Cache):
            cache.head += 0
            return self.block(x, cache)
"""


@pytest.mark.parametrize("use_analysis", [True, False])
def test_graph_break_strategy_never_decorates_a_root_forward(tmp_path, use_analysis):
    path = _project(tmp_path, ROOTS)
    report = _fix(path, strategy="graph-break", use_analysis=use_analysis)
    text = path.read_text()
    lines = text.splitlines()
    decorated = [lines[i + 1].strip() for i, line in enumerate(lines) if "compiler.disable" in line]
    if not use_analysis:
        assert decorated == []  # no findings, no rule fix
        return
    # Cache.append and Block.forward (a submodule's forward, called by the compiled model) run eagerly;
    # Model.forward, the compiled entry point that nothing calls, is never disabled.
    assert decorated == ["def append(self, k):", "def forward(self, x, cache: Cache):"]
    assert "@torch.compiler.disable\n    def forward(self, x, cache: Cache):\n        cache.head" not in text
    roots_left = [u for u in report.unfixed if "compiled root" in u.reason]
    assert {u.line for u in roots_left} == {28}  # Model.forward's +=


def test_import_torch_as_alias_is_used(tmp_path):
    path = _project(tmp_path, """\
        import torch as th


        class Scratch:
            def __init__(self):
                self.acc = th.zeros(4)

            def update(self, x: th.Tensor):
                self.acc.add_(x)


        class Model(th.nn.Module):
            def forward(self, x, scratch: Scratch):
                scratch.update(x)
                return x
    """)
    _fix(path)
    text = path.read_text()
    assert "th._dynamo.mark_static_address(self.acc)" in text and "if not th.compiler.is_compiling():" in text
    assert "import torch\n" not in text


def test_counter_set_before_module_init_is_left(tmp_path):
    """A buffer cannot be registered before nn.Module.__init__: the counter stays a Python int."""
    path = _project(tmp_path, """\
        import torch


        class Decoder(torch.nn.Module):
            def __init__(self):
                self.pos = 0
                super().__init__()
                self.register_buffer("cache", torch.zeros(16, 4))

            def forward(self, x):
                self.cache[self.pos] = x
                self.pos += 1
                return self.cache
    """)
    report = _fix(path)
    text = path.read_text()
    assert "self.pos = 0" in text and 'register_buffer("pos"' not in text and "self.pos.add_" not in text
    assert any("before super().__init__()" in u.reason for u in report.unfixed)


LAYER_STACK = """\
    import torch


    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.proj(x)


    class Stack(torch.nn.Module):
        def __init__(self, n: int):
            super().__init__()
            self.layers = torch.nn.ModuleList()
            for _ in range(n):
                self.layers.append(Layer())
            self.steps = 0

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            self.steps += 1
            return x

        def run_all(self, x):
            self.steps += 1
            return self._apply_layers(x)

        def _apply_layers(self, x):
            return self.layers[0](x)


    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stack = Stack(2)

        def forward(self, x):
            return self.stack(x) + self.stack.run_all(x)
"""


def test_graph_break_strategy_never_disables_a_function_that_runs_layers(tmp_path):
    """Layers called from a loop over an nn.ModuleList, by index, or through a self method are model code:
    disabling the function would run them eagerly (moshi's StreamingTransformer.forward)."""
    path = _project(tmp_path, LAYER_STACK)
    report = _fix(path, strategy="graph-break")
    assert "compiler.disable" not in path.read_text()
    left = {u.line: u.reason for u in report.unfixed}
    assert "Stack.forward runs nn.Modules" in left[24]
    assert "Stack.run_all runs nn.Modules" in left[28]


def test_graph_break_strategy_never_decorates_torch_itself():
    """torch's own modules run while `import torch` is under way: the decorator would be a circular
    import (the robustness benchmark over torch's source), so the finding is left with why."""
    from types import SimpleNamespace

    from flake8_compile_safe.findings import Finding
    from flake8_compile_safe.fixers.rules.base import NotFixed
    from flake8_compile_safe.fixers.rules.eager import EagerHelperFix

    ctx = SimpleNamespace(holds=lambda path: True, function_at=lambda line: None)
    finding = Finding("TCS002", "torch/nn/utils/helper.py", 3, 0, 3, 9, "x", "y", "z",
                      function="torch.nn.utils.helper.read", def_line=2)
    with pytest.raises(NotFixed, match="part of torch itself"):
        EagerHelperFix().propose(finding, ctx, "graph-break")
    elsewhere = Finding("TCS002", "pkg/helper.py", 3, 0, 3, 9, "x", "y", "z", function="pkg.helper.read", def_line=2)
    with pytest.raises(NotFixed, match="enclosing function was not found"):
        EagerHelperFix().propose(elsewhere, ctx, "graph-break")
