"""TCS011 beyond its docs examples: a cache regrown through locals, as dynamo sees it.

The usual KV-cache form builds the concatenation in a local and stores it afterwards
(``k = torch.cat([self.cache_k, k], 1); self.cache_k = k``; audiocraft's streaming attention:
``pk = state['past_keys']; nk = torch.cat([pk, k]); state['past_keys'] = nk[:, offset:]``).
"""

import logging

import pytest

from flake8_compile_safe.rules.tcs011_state_created import StateCreated
from helpers import findings, write_project


def regrown(root):
    return sorted((f.line, f.data.get("state")) for f in findings(root)
                  if f.code == "TCS011" and f.data.get("kind") == "regrow")


def test_a_local_that_is_reassigned_after_the_concatenation_still_counts_only_if_it_holds_it(tmp_path):
    code = '''\
import torch


class Attention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cache_k = torch.zeros(1, 0, 4)
        self.scale = torch.ones(4)

    def forward(self, k):
        if self.cache_k.shape[1] > 0:
            k = torch.cat([self.cache_k, k], dim=1)
        self.cache_k = k
        s = torch.cat([k, k], dim=1)
        self.scale = s[:, 0]  # an item of a concatenation of other things: not a regrowth
        return k
'''
    write_project(tmp_path, {"m.py": code})
    assert regrown(tmp_path) == [(13, "Attention.cache_k")]


def test_findings_through_a_local_carry_no_rewrite(tmp_path):
    """The fixer rewrites the `torch.cat` it sees in the statement; through a local it reports, never guesses."""
    write_project(tmp_path, {"m.py": StateCreated.INVALID[-1].code})
    found = [f for f in findings(tmp_path) if f.code == "TCS011"]
    assert len(found) == 2 and all("fix" not in f.data for f in found)


@pytest.mark.torch
def test_dynamo_recompiles_on_the_cache_regrown_through_a_local():
    torch = pytest.importorskip("torch")
    import torch._dynamo as dynamo
    from torch._dynamo.utils import counters

    from flake8_compile_safe.validate.dynamo_log import EventLog

    namespace = {}
    exec(compile(StateCreated.INVALID[-1].code, "example", "exec"), namespace)
    dynamo.reset()
    counters.clear()
    log = EventLog().install(torch)
    try:
        compiled = torch.compile(namespace["StreamingAttention"](), backend="eager")
        for _ in range(8):
            compiled(torch.ones(1, 1, 4))
    finally:
        log.remove()
        torch._logging.set_logs()
        logging.getLogger("torch").setLevel(logging.WARNING)
    reasons = "\n".join(text for name, _, text in log.records if "recompiles" in name)
    assert counters["stats"]["unique_graphs"] >= 3
    assert "self.state['past']' size mismatch" in reasons and "self.cache_k" in reasons
    dynamo.reset()


def test_dropping_a_constant_count_is_not_a_window_that_grows(tmp_path):
    """transformers' RecurrentGemma: `conv_state = torch.cat((state, x), -1); state = conv_state[:, :, 1:]`."""
    code = '''\
import torch


class Conv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.state = torch.zeros(1, 4, 3)
        self.past = torch.zeros(1, 4, 0)

    def forward(self, x):
        conv_state = torch.cat((self.state, x), -1)
        self.state = conv_state[:, :, 1:]  # one dropped for the one added: the same size
        full = torch.cat((self.past, x), -1)
        self.past = full[:, :, -8:]  # the last 8: grows until it holds 8
        return conv_state.sum(-1)
'''
    write_project(tmp_path, {"m.py": code})
    assert regrown(tmp_path) == [(14, "Conv.past")]
