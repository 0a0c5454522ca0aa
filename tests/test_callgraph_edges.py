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


def test_empty_tuple_annotation_is_indexed(tmp_path):
    """`Tuple[()]` (torch's own source annotates attributes with it) is the empty tuple, not a crash."""
    assert _cache_project(tmp_path, '''
        import torch
        from typing import Tuple
        from pkg.cache import Cache

        class M(torch.nn.Module):
            def forward(self, x, cache: Cache):
                self.shape: Tuple[()] = ()
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
    found = codes_at(tmp_path, allow_gaps=True)
    assert ("m.py", 10, "TCS002") in found
    assert ("m.py", 5, "TCS902") in found  # the function given up on is reported, not dropped


def test_a_bug_in_a_rule_is_reported_not_silent(tmp_path, monkeypatch):
    from flake8_compile_safe.rules.tcs002_host_sync import HostSync

    def broken(self, stmt, ctx):
        raise KeyError("a bug in a rule")
        yield

    monkeypatch.setattr(HostSync, "check", broken)
    write_project(tmp_path, {"m.py": """
        import torch

        class M(torch.nn.Module):
            def forward(self, t):
                return t * 2
    """})
    gaps = [f for f in findings(tmp_path, allow_gaps=True) if f.code == "TCS902"]
    assert [(f.line, "M.forward (KeyError)" in f.summary) for f in gaps] == [(5, True)]


# -- where files sit: namespace packages, src layouts, scripts folders ---------------------------

def test_edge_namespace_package_absolute_and_relative_imports(tmp_path):
    # PEP 420: no __init__.py anywhere; Python resolves both forms from the project root.
    write_project(tmp_path, {
        "pkg/ops.py": HAZARD_HELPER,
        "pkg/more.py": "def read2(t):\n    return t.item()\n",
        "pkg/sub/model.py": '''
            import torch
            from pkg.ops import read
            from ..more import read2

            class M(torch.nn.Module):
                def forward(self, t):
                    return read(t) + read2(t)
        '''})
    found = codes_at(tmp_path)
    assert ("ops.py", 3, "TCS002") in found and ("more.py", 2, "TCS002") in found


def test_edge_src_layout(tmp_path):
    write_project(tmp_path, {
        "src/pkg/__init__.py": "",
        "src/pkg/ops.py": HAZARD_HELPER,
        "src/pkg/model.py": '''
            import torch
            from pkg.ops import read

            class M(torch.nn.Module):
                def forward(self, t):
                    return read(t)
        '''})
    assert ("ops.py", 3, "TCS002") in codes_at(tmp_path)


def test_edge_scripts_folder_imports_its_sibling(tmp_path):
    # `python scripts/run.py` puts scripts/ on sys.path: `import helpers` is scripts/helpers.py.
    write_project(tmp_path, {
        "scripts/helpers.py": HAZARD_HELPER,
        "scripts/run.py": '''
            import torch
            import helpers

            class M(torch.nn.Module):
                def forward(self, t):
                    return helpers.read(t)
        '''})
    assert ("helpers.py", 3, "TCS002") in codes_at(tmp_path)


def test_project_root_without_markers_is_found_from_the_imports(tmp_path):
    from flake8_compile_safe.imports import find_project_root

    (tmp_path / "repo" / "pkg" / "model").mkdir(parents=True)
    (tmp_path / "repo" / "pkg" / "model" / "a.py").write_text("from pkg.model.b import x\n")
    (tmp_path / "repo" / "pkg" / "model" / "b.py").write_text("from ..model import a\nx = 1\n")
    assert find_project_root(tmp_path / "repo" / "pkg" / "model" / "a.py") == tmp_path / "repo"
    assert find_project_root(tmp_path / "repo" / "pkg" / "model" / "b.py") == tmp_path / "repo"


def test_edge_module_level_class_alias(tmp_path):
    write_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/util.py": CACHE,
        "pkg/model.py": '''
            import torch
            from pkg import util

            DecodeCache = util.Cache

            class M(torch.nn.Module):
                def forward(self, x, cache: DecodeCache):
                    return cache.length()
        '''})
    assert ("util.py", 9, "TCS002") in codes_at(tmp_path)


# -- calls through a base class or a container ---------------------------------------------------

LAYERS = '''
import abc
import torch


class CacheLayer(abc.ABC):
    @abc.abstractmethod
    def update(self, k):
        ...


class DynamicLayer(CacheLayer):
    def __init__(self):
        self.n = torch.zeros(1)

    def update(self, k):
        return self.n.item()


class StaticLayer(CacheLayer):
    def __init__(self):
        self.m = torch.zeros(1)

    def update(self, k):
        return self.m.item()


class Unrelated:
    def update(self, k):
        return k.item()
'''


def _layer_lines(tmp_path, model_src):
    write_project(tmp_path, {"layers.py": LAYERS, "model.py": model_src})
    return {line for name, line, code in codes_at(tmp_path) if name == "layers.py" and code == "TCS002"}


def test_edge_base_class_annotation_reaches_every_override(tmp_path):
    assert _layer_lines(tmp_path, '''
        import torch
        from layers import CacheLayer

        class M(torch.nn.Module):
            def forward(self, k, layer: CacheLayer):
                return layer.update(k)
    ''') == {17, 25}


def test_edge_list_annotation_loop_and_index(tmp_path):
    assert _layer_lines(tmp_path, '''
        import torch
        from layers import CacheLayer

        class Cache:
            def __init__(self, layers: list[CacheLayer]):
                self.layers = layers

            def update(self, k, idx):
                return self.layers[idx].update(k)

        class M(torch.nn.Module):
            def forward(self, k, cache: Cache):
                return cache.update(k, 0)
    ''') == {17, 25}


def test_edge_list_comprehension_of_constructors_and_for_loop(tmp_path):
    # An exact class (a constructor call) does not fan out to overrides in subclasses.
    assert _layer_lines(tmp_path, '''
        import torch
        from layers import DynamicLayer

        class Cache:
            def __init__(self, n):
                self.layers = [DynamicLayer() for _ in range(n)]

            def update(self, k):
                for layer in self.layers:
                    k = layer.update(k)
                return k

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.cache = Cache(2)

            def forward(self, k):
                return self.cache.update(k)
    ''') == {17}


def test_edge_module_list_and_module_dict(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch
        from torch import nn

        class Block(nn.Module):
            def forward(self, t):
                return t.item()

        class Expert(nn.Module):
            def forward(self, t):
                return t.item()

        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.ModuleList([Block() for _ in range(2)])
                self.experts = nn.ModuleDict({"a": Expert()})

            def forward(self, t):
                for i, block in enumerate(self.blocks):
                    t = block(t)
                return self.experts["a"](t)
    '''})
    found = {line for _, line, code in codes_at(tmp_path) if code == "TCS002"}
    assert {7, 11} <= found


def test_edge_module_dict_entries_read_as_attributes(tmp_path):
    """nanoGPT's layout: ``nn.ModuleDict(dict(wte=..., h=nn.ModuleList([...])))`` read as ``self.transformer.h``."""
    write_project(tmp_path, {"m.py": '''
        import torch
        from torch import nn

        class Block(nn.Module):
            def forward(self, t):
                return t

            def peek(self, t):
                return t.item()

        class Head(nn.Module):
            def forward(self, t):
                return t

            def probe(self, t):
                return t.item()

        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.transformer = nn.ModuleDict(dict(wte=nn.Embedding(4, 4),
                                                      h=nn.ModuleList([Block() for _ in range(2)])))
                self.heads = nn.ModuleDict({"lm": Head()})

            def forward(self, t, past=None):
                for i, (block, p) in enumerate(zip(self.transformer.h, past)):
                    t = block.peek(t)
                return self.heads.lm.probe(t)
    '''})
    assert {"peek", "probe"} <= flagged_functions(tmp_path)


def test_edge_callables_stored_in_attributes_partial_and_getattr(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import functools
        import torch

        def a(t):
            return t.item()

        def b(scale, t):
            return t.item()

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fa = a
                self.fb = functools.partial(b, 2.0)

            def c(self, t):
                return t.item()

            def unused(self, t):
                return t.item()

            def forward(self, t):
                fc = self.c
                return self.fa(t) + self.fb(t) + fc(t) + getattr(self, "c")(t)
    '''})
    found = {line for _, line, code in codes_at(tmp_path) if code == "TCS002"}
    assert {6, 9, 18} <= found and 21 not in found


def test_edge_nested_function_called_where_defined(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        class M(torch.nn.Module):
            def forward(self, t):
                def inner(u):
                    return u.item()

                return inner(t)
    '''})
    assert ("m.py", 7, "TCS002") in codes_at(tmp_path)


def test_root_forward_hooks_and_pre_hooks(tmp_path):
    write_project(tmp_path, {"m.py": '''
        import torch

        def pre(module, args):
            print(args[0].item())

        def never_registered(module, args, out):
            return out.item()

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(4, 4)

                def post(module, args, out):
                    return out * out.sum().item()

                self.lin.register_forward_hook(post)
                self.lin.register_forward_pre_hook(pre)

            def forward(self, x):
                return self.lin(x)
    '''})
    found = {line for _, line, code in codes_at(tmp_path) if code == "TCS002"}
    assert {5, 16} <= found and 8 not in found


def test_root_through_a_base_class_outside_the_project(tmp_path):
    # `extlib` stands in for an installed package (transformers, lightning): found on sys.path,
    # read from source, never imported.
    site = tmp_path / "site"
    (site / "extlib").mkdir(parents=True)
    (site / "extlib" / "__init__.py").write_text("from .base import Pretrained\n")
    (site / "extlib" / "base.py").write_text(
        "from torch import nn\n\n\nclass Mixin:\n    pass\n\n\nclass Pretrained(nn.Module, Mixin):\n    pass\n")
    project = tmp_path / "proj"
    write_project(project, {"m.py": '''
        import torch
        from extlib import Pretrained, Mixin

        class Model(Pretrained):
            def forward(self, t):
                return t.item()

        class NotAModule(Mixin):
            def forward(self, t):
                return t.item()
    '''})
    from flake8_compile_safe.external import ExternalClasses

    external = ExternalClasses([str(site)])
    assert external.is_nn_module("extlib.Pretrained") and not external.is_nn_module("extlib.Mixin")
    import sys

    sys.path.insert(0, str(site))
    try:
        ExternalClasses._answers.clear()
        assert {line for _, line, _ in codes_at(project)} == {7}
    finally:
        sys.path.remove(str(site))
        ExternalClasses._answers.clear()


def test_root_through_a_well_known_base_when_it_is_not_installed(tmp_path):
    write_project(tmp_path, {"m.py": '''
        from lightning.pytorch import LightningModule
        from transformers import PreTrainedModel

        class Lit(LightningModule):
            def forward(self, t):
                return t.item()

        class HF(PreTrainedModel):
            def forward(self, t):
                return t.item()
    '''})
    assert {line for _, line, _ in codes_at(tmp_path)} == {7, 11}


def test_receiver_reached_through_a_module_makes_the_callees_self_static(tmp_path):
    """A plain object's method called through a module's attributes writes static tensors (dynamo
    marks tensors whose source starts at an nn.Module static); the same method called on an object
    passed in to the compiled call writes a mutated input that is not static: still flagged."""
    write_project(tmp_path, {"m.py": '''
        import torch

        class Ring:
            def __init__(self):
                self.keys = torch.zeros(8, 4)

            def put(self, k):
                self.step(k)

            def step(self, k):
                self.keys[0] = k

        class Holder:
            def __init__(self):
                self.ring = Ring()

        class Held(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.holder = Holder()
                self.rings = [Ring()]

            def forward(self, x):
                self.holder.ring.put(x)
                self.rings[0].put(x)
                return x

        class Passed(torch.nn.Module):
            def forward(self, x, ring: Ring):
                ring.put(x)
                return x
    '''})
    flagged = [f for f in findings(tmp_path) if f.code == "TCS001"]
    assert [(f.line, f.root) for f in flagged] == [(12, "Passed.forward")]


def test_an_argument_rebound_in_a_branch_may_still_be_the_callers_object(tmp_path):
    """transformers' decoders: `if use_cache and past_key_values is None: past_key_values = Cache()`.

    After the branch the argument is the caller's cache or a new one: a write into it is a write into
    an input (flagged). A local bound in each branch of an if/else is what that branch made.
    """
    write_project(tmp_path, {"m.py": '''
        import torch
        from torch import nn

        class Cache:
            def __init__(self):
                self.is_updated = {}

        class Out:
            def __init__(self, acts):
                self.acts = acts

        def mark(cache: Cache, idx: int):
            cache.is_updated[idx] = True

        def collect(out: Out, x):
            out.acts[0] = x

        class Decoder(nn.Module):
            def forward(self, x, past_key_values=None, use_cache=True, backbone=None):
                if use_cache and past_key_values is None:
                    past_key_values = Cache()
                mark(past_key_values, 0)
                if backbone is not None:
                    out = backbone(x)
                else:
                    out = Out([x])
                    collect(out, x)
                return x
    '''})
    found = {(f.line, f.function.rsplit(".", 1)[-1]) for f in findings(tmp_path) if f.code == "TCS010"}
    assert found == {(14, "mark")}
