"""TCS016 beyond its docs examples: real streaming code, the flow through names and calls, the cache, dynamo.

EnCodec's streaming LM (``encodec/model.py``, ``LMModel.forward(indices, states=None, offset=0)``)
hands ``states`` to ``StreamingTransformerEncoder.forward``, which returns each layer's state grown
by ``torch.cat``; ``compress`` feeds them back. Dynamo recompiles the frame on ``tensor 'states[0]'
size mismatch``, reported at ``LMModel.forward``'s ``def`` (docs/recall.md).
"""

import logging
from pathlib import Path

import pytest

from flake8_compile_safe.analysis import _build_report
from flake8_compile_safe.cache import CacheStore
from flake8_compile_safe.incremental import IncrementalRun
from flake8_compile_safe.rules.tcs016_grown_state_parameter import GrownStateParameter
from helpers import family_findings, findings, write_project


def flagged(root: Path) -> list[tuple[str, int, str]]:
    return sorted((Path(f.path).name, f.line, f.data["parameter"]) for f in findings(root) if f.code == "TCS016")


def test_encodec_state_list_is_flagged_at_the_compiled_def():
    tree, found = family_findings("encodec", "TCS016")
    assert [(Path(f.path).relative_to(tree).as_posix(), f.line, f.data["parameter"]) for f in found] == [
        ("encodec/model.py", 46, "states")]
    assert found[0].data["grown_in"].endswith("StreamingTransformerEncoder.forward")


def test_bark_past_kv_is_flagged_at_the_outermost_gpt():
    """Suno's Bark: GPT-2-style `past_kv` tuples, blocks in `nn.ModuleDict(dict(h=nn.ModuleList(...)))`."""
    tree, found = family_findings("bark", "TCS016")
    assert [(Path(f.path).relative_to(tree).as_posix(), f.line, f.function.rsplit(".", 2)[-2]) for f in found] == [
        ("bark/model.py", 168, "GPT")]  # GPT.forward, not Block.forward: the ModuleDict entry is followed
    assert found[0].data["grown_in"].endswith("CausalSelfAttention.forward")


# The rule's own Attention/Block example, with the model that stacks the blocks on top.
GPT2_STYLE = GrownStateParameter.INVALID[1].code.replace("  # TCS016", "").replace(
    "import torch\n", "import torch\nfrom torch import nn\n", 1) + '''

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.h = nn.ModuleList([Block() for _ in range(2)])

    def forward(self, x, past_key_values=None):
        if past_key_values is None:
            past_key_values = tuple([None] * len(self.h))
        presents = ()
        for block, layer_past in zip(self.h, past_key_values):
            x, present = block(x, layer_past)
            presents = presents + (present,)
        return x, presents
'''
MODEL_DEF = GPT2_STYLE.splitlines().index("    def forward(self, x, past_key_values=None):") + 1


def test_followed_through_loops_containers_and_two_calls(tmp_path):
    write_project(tmp_path, {"gpt.py": GPT2_STYLE})
    assert flagged(tmp_path) == [("gpt.py", MODEL_DEF, "past_key_values")]  # only the outermost compiled frame


def test_a_name_rebound_after_the_concatenation_is_no_longer_the_state(tmp_path):
    code = '''\
import torch
from torch import nn


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x, prepend=None, cache=None):
        if prepend is not None:
            x = torch.cat((prepend, x), dim=1)  # under an `if`: adds to what x holds
        x = self.proj(x)  # replaces it: x is the projection now, not the grown argument
        return x, cache
'''
    write_project(tmp_path, {"m.py": code})
    assert flagged(tmp_path) == []
    write_project(tmp_path, {"m.py": code.replace("        x = self.proj(x)  #", "        y = self.proj(x)  #")})
    assert flagged(tmp_path) == [("m.py", 10, "prepend")]


def test_a_warm_run_follows_an_edited_callee_both_ways(tmp_path):
    root = write_project(tmp_path / "proj", {
        "pkg/__init__.py": "",
        "pkg/layers.py": GPT2_STYLE.split("class Block")[0],
        "pkg/model.py": "import torch\nfrom torch import nn\n\nfrom pkg.layers import Attention\n\n\nclass Block"
                        + GPT2_STYLE.split("class Block")[1].split("class Model")[0],
    })
    cache = root / ".compile_safe_cache"

    def warm():
        run = IncrementalRun(root.resolve(), (), CacheStore(cache))
        return run.execute().findings, run.stats

    def cold():
        return _build_report(str(root.resolve()), (), None, None).findings

    found, stats = warm()
    assert stats.mode == "cold" and [(Path(f.path).name, f.code) for f in found if f.code == "TCS016"] == [
        ("model.py", "TCS016")]
    layers = root / "pkg" / "layers.py"
    grown = layers.read_text()
    layers.write_text(grown.replace("key = torch.cat((past_key, key), dim=-2)", "key = past_key + key")
                      .replace("value = torch.cat((past_value, value), dim=-2)", "value = past_value + value"))
    found, stats = warm()
    assert stats.mode == "incremental", stats
    assert found == cold() and not [f for f in found if f.code == "TCS016"]
    layers.write_text(grown)
    found, stats = warm()
    assert found == cold() and [f.code for f in found].count("TCS016") == 1


@pytest.mark.torch
def test_dynamo_recompiles_on_the_grown_state_and_not_on_the_fixed_one():
    """INVALID: the fed-back state grows, and dynamo recompiles on its size; VALID: fixed size, no such recompile."""
    torch = pytest.importorskip("torch")
    import torch._dynamo as dynamo
    from torch._dynamo.utils import counters

    from flake8_compile_safe.validate.dynamo_log import EventLog

    def modules(code):
        namespace = {}
        exec(compile(code, "example", "exec"), namespace)
        return [v for v in namespace.values()
                if isinstance(v, type) and issubclass(v, torch.nn.Module) and v is not torch.nn.Module]

    def run(module, steps=8):
        """(graphs, recompile messages) over ``steps`` calls that feed the returned state back."""
        dynamo.reset()
        counters.clear()
        log = EventLog().install(torch)
        try:
            compiled = torch.compile(module, backend="eager")
            carried = None
            for _ in range(steps):
                out = compiled(torch.ones(1, 1, 8), *carried) if carried else compiled(torch.ones(1, 1, 8))
                carried = out[1:]
        finally:
            log.remove()
            torch._logging.set_logs()
            logging.getLogger("torch").setLevel(logging.WARNING)
        messages = [text for name, _, text in log.records if "recompiles" in name]
        return counters["stats"]["unique_graphs"], messages

    for example in GrownStateParameter.INVALID:
        for cls in modules(example.code):
            graphs, messages = run(cls())
            assert graphs >= 3, (cls.__name__, graphs)
            assert any("size mismatch" in m for m in messages), (cls.__name__, messages)
    ring, = modules(GrownStateParameter.VALID[0].code)
    graphs, messages = run(ring())
    assert graphs == 2, messages  # state None on the first call, then one graph for every step
    assert not any("size mismatch" in m for m in messages), messages
    dynamo.reset()


def test_dict_and_output_object_returns_count_as_elements(tmp_path):
    code = '''\
import torch
from torch import nn


class Step(nn.Module):
    def forward(self, x, cache=None):
        if cache is not None:
            x = torch.cat([cache, x], dim=1)
        return {"out": x.sum(1), "cache": x}


class Out:
    def __init__(self, logits, cache):
        self.logits, self.cache = logits, cache


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.step = Step()

    def forward(self, x, cache=None):
        new = self.step(x, cache)["cache"]
        return Out(logits=x * 2, cache=new)
'''
    write_project(tmp_path, {"m.py": code})
    assert flagged(tmp_path) == [("m.py", 22, "cache")]


def test_a_field_of_another_name_is_an_output_not_the_state(tmp_path):
    """transformers' MusicGen Melody shape: `input_features` concatenated into `encoder_hidden_states`."""
    code = '''\
import torch
from torch import nn


class Out:
    def __init__(self, logits, encoder_hidden_states):
        self.logits, self.encoder_hidden_states = logits, encoder_hidden_states


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 4)

    def forward(self, x, input_features=None):
        encoder_hidden_states = self.encoder(x)
        if input_features is not None:
            encoder_hidden_states = torch.cat([input_features, encoder_hidden_states], dim=1)
        return Out(logits=x * 2, encoder_hidden_states=encoder_hidden_states)
'''
    write_project(tmp_path, {"m.py": code})
    assert flagged(tmp_path) == []
    renamed = code.replace("encoder_hidden_states=encoder_hidden_states)", "input_features=encoder_hidden_states)")
    renamed = renamed.replace("self.encoder_hidden_states = logits, encoder_hidden_states",
                              "self.input_features = logits, input_features")
    renamed = renamed.replace("def __init__(self, logits, encoder_hidden_states)",
                              "def __init__(self, logits, input_features)")
    write_project(tmp_path, {"m.py": renamed})
    assert flagged(tmp_path) == [("m.py", 15, "input_features")]
