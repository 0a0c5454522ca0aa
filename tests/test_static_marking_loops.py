"""Tensors marked static in a loop over the containers that hold them are static (TCS001 stays quiet)."""

from __future__ import annotations

from helpers import codes_at, write_project

CACHE = """
import torch


class Cache:
    def __init__(self, layers):
        self.keys = [torch.zeros(8, 4) for _ in range(layers)]
        self.values = [torch.zeros(8, 4) for _ in range(layers)]
        self.other = [torch.zeros(8, 4) for _ in range(layers)]
{marking}

class Model(torch.nn.Module):
    def forward(self, x, pos, cache: Cache):
        cache.keys[0].index_copy_(0, pos, x)
        cache.values[0].index_copy_(0, pos, x)
        cache.other[0].index_copy_(0, pos, x)
        return x
"""


def _flagged(tmp_path, marking: str) -> set[str]:
    """The containers whose in-place write TCS001 reports."""
    text = CACHE.format(marking=marking)
    root = write_project(tmp_path, {"m.py": text})
    lines = text.splitlines()
    return {lines[line - 1].split(".")[1].split("[")[0] for _, line, code in codes_at(root) if code == "TCS001"}


def test_loop_over_starred_lists_marks_their_elements(tmp_path):
    marking = ("        for buffer in (*self.keys, *self.values):\n"
               "            torch._dynamo.mark_static_address(buffer)\n")
    assert _flagged(tmp_path, marking) == {"other"}  # never marked


def test_loop_over_one_list_and_over_a_local_stored_afterwards(tmp_path):
    marking = ("        for t in self.keys:\n"
               "            torch._dynamo.mark_static_address(t)\n"
               "        bufs = [torch.zeros(8, 4) for _ in range(layers)]\n"
               "        for t in bufs:\n"
               "            torch._dynamo.mark_static_address(t)\n"
               "        self.values = bufs\n")
    assert _flagged(tmp_path, marking) == {"other"}


def test_a_mark_after_the_loop_marks_only_that_tensor(tmp_path):
    marking = ("        for t in self.keys:\n"
               "            t.zero_()\n"
               "        torch._dynamo.mark_static_address(t)\n")
    assert _flagged(tmp_path, marking) == {"keys", "values", "other"}
