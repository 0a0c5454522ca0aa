"""TCS014 beyond its docs examples: the shapes met on real code, each with its negative twin.

The shape transformers' ``capture_outputs`` has (``utils/output_capturing.py``: a decorator in
another module, the comprehension iterating what a module-level registry's ``get`` returns,
annotated ``-> dict``) is the one dynamo reported as "Missing tp_iternext" on JetMoE and Mixtral.
"""

from helpers import codes_at, write_project

CAPTURING = '''\
import functools


class Registry(dict):
    def get(self, model) -> dict:
        return super().get(type(model).__name__) or {}


class Opaque(dict):
    def get(self, model):
        return super().get(type(model).__name__) or ()


REGISTRY = Registry()
OPAQUE = Opaque()


def capture(func=None, *, tie=True):
    def wrapped_fn(func):
        @functools.wraps(func)
        def wrapper(self, *args, **kwargs):
            flags = REGISTRY.get(self)
            keys = {f"output_{k}": getattr(self, k, False) for k in flags}
            unknown = OPAQUE.get(self)
            other = {k: getattr(self, k, False) for k in unknown}
            try:
                out = func(self, *args, **kwargs)
            finally:
                keys.clear()
            return out, other

        return wrapper

    return wrapped_fn(func) if func is not None else wrapped_fn
'''

MODEL = '''\
import torch
from torch import nn

from pkg.capturing import capture


class Router(nn.Module):
    @capture
    def forward(self, ids):
        return ids.sort().values.split(torch.bincount(ids, minlength=4).tolist())


class Clean(nn.Module):
    @capture
    def forward(self, x):
        return x * 2


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.router = Router()
        self.clean = Clean()

    def forward(self, ids):
        return self.router(ids), self.clean(ids)
'''


def test_decorator_in_another_module_with_an_annotated_registry(tmp_path):
    write_project(tmp_path, {"pkg/__init__.py": "", "pkg/capturing.py": CAPTURING, "pkg/model.py": MODEL})
    got = {(name, line) for name, line, code in codes_at(tmp_path) if code == "TCS014"}
    # line 23 iterates REGISTRY.get(...) (annotated -> dict); line 25 iterates OPAQUE.get(...) (no
    # annotation: it may be a tuple, which dynamo takes): not flagged.
    assert got == {("capturing.py", 23)}


def test_no_break_below_the_decorated_function_no_finding(tmp_path):
    model = MODEL.replace("return ids.sort().values.split(torch.bincount(ids, minlength=4).tolist())",
                          "return ids.sort().values")
    write_project(tmp_path, {"pkg/__init__.py": "", "pkg/capturing.py": CAPTURING, "pkg/model.py": model})
    assert not {f for f in codes_at(tmp_path) if f[2] == "TCS014"}


def test_break_outside_the_try_block_or_loop_does_not_skip_the_frame(tmp_path):
    write_project(tmp_path, {"m.py": '''\
import torch
from torch import nn


class Sampler(nn.Module):
    def forward(self, x):
        n = int(x.sum().item())  # a break dynamo resumes after: the frame is split, not skipped
        return [torch.relu(t) for t in list(x[:n])]
'''})
    assert not {f for f in codes_at(tmp_path) if f[2] == "TCS014"}


def test_a_bug_in_the_whole_walk_check_is_reported_never_silent(tmp_path, monkeypatch):
    from flake8_compile_safe.rules import tcs014_comprehension_in_skipped_frame as rule_module

    def broken(body):
        raise TypeError("boom")

    monkeypatch.setattr(rule_module, "_comprehensions", broken)
    write_project(tmp_path, {"pkg/__init__.py": "", "pkg/capturing.py": CAPTURING, "pkg/model.py": MODEL})
    from helpers import findings

    gaps = [f for f in findings(tmp_path, allow_gaps=True) if f.code == "TCS902"]
    assert gaps and "TCS014 TypeError" in gaps[0].summary + str(gaps[0].data)


TWO_ROUTERS = MODEL.replace('''class Clean(nn.Module):
    @capture
    def forward(self, x):
        return x * 2''', '''class Clean(nn.Module):
    @capture
    def forward(self, x):
        return x.sort().values.split(torch.bincount(x, minlength=4).tolist())


@capture
def helper(self, x):  # not a module method: the wrapper's first parameter is no module here
    return x.sort().values.split(torch.bincount(x, minlength=4).tolist())''').replace(
    "return self.router(ids), self.clean(ids)", "return helper(None, ids), self.router(ids), self.clean(ids)")


def test_a_decorators_wrappers_are_read_once_per_kind_of_function(tmp_path, monkeypatch):
    # transformers decorates hundreds of forwards with one decorator: its wrappers are searched once
    # for module methods and once for plain functions, and every decorated function still gets them.
    from flake8_compile_safe.rules import tcs014_comprehension_in_skipped_frame as rule_module

    calls = []
    original = rule_module.wrapper_comprehensions

    def counted(decorator, on_module, index):
        calls.append((decorator.qualname, on_module))
        return original(decorator, on_module, index)

    monkeypatch.setattr(rule_module, "wrapper_comprehensions", counted)
    write_project(tmp_path, {"pkg/__init__.py": "", "pkg/capturing.py": CAPTURING, "pkg/model.py": TWO_ROUTERS})
    from helpers import findings

    found = [f for f in findings(tmp_path) if f.code == "TCS014"]
    assert [(f.line, f.function) for f in found] == [(23, "pkg.capturing.capture.wrapper")]
    assert found[0].chain[-2:] in (("Router.forward", "wrapper"), ("Clean.forward", "wrapper"))
    # One search per (decorator, module method or not): the plain function's answer (its `self` is
    # no module) differs, so it must not be served to the methods, nor theirs to it.
    assert sorted(calls) == [("pkg.capturing.capture", False), ("pkg.capturing.capture", True)]
