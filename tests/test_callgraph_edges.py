"""One test per way a compiled path reaches code: roots, edges and the places that are not compiled.

Each project puts a hazard (`.item()`, TCS002) in a function that only the edge under test
reaches, so the finding appears if and only if that edge is followed.
"""

from helpers import codes_at, findings, write_project

HAZARD_HELPER = '''
def read(t):
    return t.item()
'''


def flagged_functions(root, extra=()):
    return {f.function.rsplit(".", 1)[-1] for f in findings(root, extra) if f.code == "TCS002"
            and ".item()" in f.summary}


# -- roots ---------------------------------------------------------------------------------------

def test_root_forward_of_indirect_module_subclass_with_aliases(tmp_path):
    write_project(tmp_path, {"m.py": '''
        from torch import nn
        from torch.nn import Module as Base
        import torch.nn as tnn

        class A(nn.Module):
            pass

        class B(A):  # indirect subclass
            def forward(self, t):
                return t.item()

        class C(Base):
            def forward(self, t):
                return t.item()

        class D(tnn.Module):
            def forward(self, t):
                return t.item()

        class NotAModule:
            def forward(self, t):
                return t.item()
    '''})
    lines = {line for _, line, code in codes_at(tmp_path) if code == "TCS002"}
    assert lines == {11, 15, 19}


def test_root_torch_compile_decorator_bare_and_called(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        @torch.compile
        def a(t):
            return t.item()

        @torch.compile(mode="reduce-overhead")
        def b(t):
            return t.item()

        def c(t):
            return t.item()
    '''})
    assert {line for _, line, _ in codes_at(tmp_path)} == {6, 10}


def test_root_torch_compile_call_targets(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        def step(t):
            return t.item()

        step = torch.compile(step)

        class Net:
            def forward(self, t):
                return t.item()

            def other(self, t):
                return t.item()

        class Runner:
            def __init__(self):
                self.model = Net()
                self.model.forward = torch.compile(self.model.forward)
    '''})
    assert {line for _, line, _ in codes_at(tmp_path)} == {5, 11}


def test_root_compile_of_a_local_model_instance(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        class Net:
            def forward(self, t):
                return t.item()

        def main():
            model = Net()
            fast = torch.compile(model)
            return fast
    '''})
    assert {line for _, line, _ in codes_at(tmp_path)} == {6}


def test_root_from_option(tmp_path):
    write_project(tmp_path, {"pkg/__init__.py": "", "pkg/m.py": '''
        def decode(t):
            return t.item()
    '''})
    assert codes_at(tmp_path) == set()
    assert {line for _, line, _ in codes_at(tmp_path, ("pkg.m.decode",))} == {3}
    assert {line for _, line, _ in codes_at(tmp_path, ("decode",))} == {3}


# -- edges ---------------------------------------------------------------------------------------

def test_edge_self_method(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        class M(torch.nn.Module):
            def forward(self, t):
                return self.helper(t)

            def helper(self, t):
                return t.item()

            def unused(self, t):
                return t.item()
    '''})
    assert flagged_functions(tmp_path) == {"helper"}


def test_edge_module_function_same_file(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        def read(t):
            return t.item()

        def unused(t):
            return t.item()

        class M(torch.nn.Module):
            def forward(self, t):
                return read(t)
    '''})
    assert flagged_functions(tmp_path) == {"read"}


def test_edge_absolute_import_across_files(tmp_path):
    write_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": HAZARD_HELPER,
        "pkg/model.py": '''
            import torch
            from pkg.ops import read
            import pkg.ops as ops

            class M(torch.nn.Module):
                def forward(self, t):
                    return read(t) + ops.read(t)
        '''})
    assert ("ops.py", 3, "TCS002") in codes_at(tmp_path)


def test_edge_relative_import_across_files(tmp_path):
    write_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "",
        "pkg/ops.py": HAZARD_HELPER,
        "pkg/sub/model.py": '''
            import torch
            from ..ops import read

            class M(torch.nn.Module):
                def forward(self, t):
                    return read(t)
        '''})
    assert ("ops.py", 3, "TCS002") in codes_at(tmp_path)


CACHE = '''
import torch

class Cache:
    def __init__(self):
        self.n = torch.zeros(1)

    def length(self):
        return self.n.item()

    def unused(self):
        return self.n.item()
'''


def _cache_project(tmp_path, model_src):
    write_project(tmp_path, {"pkg/__init__.py": "", "pkg/cache.py": CACHE, "pkg/model.py": model_src})
    return {line for name, line, code in codes_at(tmp_path) if name == "cache.py" and code == "TCS002"}


def test_edge_string_annotation_with_type_checking_import(tmp_path):
    assert _cache_project(tmp_path, '''
        from typing import TYPE_CHECKING, Optional
        import torch
        if TYPE_CHECKING:
            from .cache import Cache

        class M(torch.nn.Module):
            def forward(self, x, cache: Optional["Cache"] = None):
                return cache.length()
    ''') == {9}


def test_edge_pipe_none_annotation(tmp_path):
    assert _cache_project(tmp_path, '''
        import torch
        from pkg.cache import Cache

        class M(torch.nn.Module):
            def forward(self, x, cache: Cache | None = None):
                return cache.length()
    ''') == {9}


def test_edge_unannotated_parameter_is_not_followed(tmp_path):
    assert _cache_project(tmp_path, '''
        import torch

        class M(torch.nn.Module):
            def forward(self, x, cache=None):
                return cache.length()
    ''') == set()


def test_edge_constructor_call_gives_the_type(tmp_path):
    assert _cache_project(tmp_path, '''
        import torch
        from pkg.cache import Cache

        class M(torch.nn.Module):
            def forward(self, x):
                cache = Cache()
                return cache.length()
    ''') == {9}


def test_edge_type_flows_through_call_arguments(tmp_path):
    # forward(cache: Cache) -> self.attend(x, cache) -> use(cache) -> cache.length(), across files
    assert _cache_project(tmp_path, '''
        import torch
        from pkg.cache import Cache

        def use(c):
            return c.length()

        class M(torch.nn.Module):
            def forward(self, x, cache: Cache):
                return self.attend(x, cache)

            def attend(self, x, kv):
                return use(kv)
    ''') == {9}


def test_edge_subscript_calls_getitem(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        class Cache:
            def __init__(self):
                self.n = torch.zeros(1)

            def __getitem__(self, i):
                return self.n.item()

        class M(torch.nn.Module):
            def forward(self, x, cache: Cache):
                return cache[0]
    '''})
    assert {line for _, line, _ in codes_at(tmp_path)} == {9}


def test_edge_submodule_call_reaches_its_forward_through_init_assignment(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        class Helper:  # not an nn.Module, so only the edge reaches its __call__
            def __call__(self, t):
                return t.item()

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.sub = Helper()

            def forward(self, t):
                return self.sub(t)
    '''})
    # line 14: the call returns a host number (TCS002 at the call site too)
    assert {line for _, line, _ in codes_at(tmp_path)} == {6, 14}


def test_edge_attribute_type_from_annotated_init_parameter(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch
        from typing import Optional

        class Rope:
            def rotate(self, t):
                return t.item()

        class M(torch.nn.Module):
            def __init__(self, rope: Optional[Rope]):
                super().__init__()
                self.rope = rope

            def forward(self, t):
                return self.rope.rotate(t)
    '''})
    assert {line for _, line, _ in codes_at(tmp_path)} == {7, 15}


def test_edge_super_call(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        class Base(torch.nn.Module):
            def prepare(self, t):
                return t.item()

        class Child(Base):
            def prepare(self, t):
                return super().prepare(t)

            def forward(self, t):
                return self.prepare(t)
    '''})
    assert {line for _, line, _ in codes_at(tmp_path)} == {6, 10, 13}


# -- not compiled --------------------------------------------------------------------------------

def test_disabled_functions_are_not_followed(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        @torch.compiler.disable
        def a(t):
            return t.item()

        @torch._dynamo.disable
        def b(t):
            return t.item()

        class M(torch.nn.Module):
            def forward(self, t):
                return a(t) + b(t)

            @torch.compiler.disable
            def eager_only(self, t):
                return t.item()
    '''})
    assert codes_at(tmp_path) == set()


def test_is_compiling_guards_are_not_compiled(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        class M(torch.nn.Module):
            def forward(self, t):
                if not torch.compiler.is_compiling():
                    print(t.item())
                if torch._dynamo.is_compiling():
                    pass
                else:
                    print(t.item())
                if torch.compiler.is_compiling():
                    print("compiling")  # this branch is the compiled one
                return t
    '''})
    assert codes_at(tmp_path) == {("m.py", 13, "TCS006")}


def test_init_is_not_compiled_unless_a_compiled_path_constructs(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch
        from dataclasses import dataclass

        @dataclass
        class Cache:
            n: int

            def __post_init__(self):
                self.size = torch.ones(1).item()

        class Other:
            def __init__(self):
                self.size = torch.ones(1).item()

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = torch.ones(1).item()

            def forward(self, t):
                c = Cache(3)
                return t * c.n
    '''})
    assert {line for _, line, _ in codes_at(tmp_path)} == {10}


def test_branches_decided_by_class_constants(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        class Base(torch.nn.Module):
            axis = None

            def forward(self, t):
                if self.axis == "time":
                    return t.item()
                return t

        class Time(Base):
            axis = "time"

        class Space(Base):
            axis = "space"
    '''})
    found = findings(tmp_path)
    assert [(f.line, f.root) for f in found] == [(9, "Time.forward")]


def test_a_pathological_function_does_not_stop_the_analysis(tmp_path):
    deep = " + ".join(["t"] * 900)  # parses, but nests deeper than the analysis can recurse
    write_project(tmp_path, {"m.py": f'''
        import torch

        class Deep(torch.nn.Module):
            def forward(self, t):
                return {deep}

        class Fine(torch.nn.Module):
            def forward(self, t):
                return t.item()
    '''})
    assert ("m.py", 10, "TCS002") in codes_at(tmp_path)
