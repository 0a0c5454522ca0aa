"""TCS016: a compiled function returns a state argument grown by ``torch.cat``: a new input size every call.

Not a statement check: the growth is often in a callee (``out, states = self.encoder(x, states)``),
so this rule runs once after the walk (:meth:`check_reached`) and follows the value through the
calls the walk resolved (``ReachedFacts.call_sites``). What each def does with its parameters is a
derived fact (plain data, kept in the cached summary): a warm run parses nothing for it.
"""

from __future__ import annotations

from typing import Iterable

from ..findings import Finding
from .base import Example, Rule
from .state_growth import FACT, WHOLE, GrownFacts, Through, grown_facts, optional_parameters


SLIDING_WINDOW_NOTE = ("A state trimmed by a slice before the join is a sliding window: its size is not proven "
                       "to grow (mambapy's MambaBlock.step has this shape; dynamo sees one size at every step).")


class GrownStateParameter(Rule):
    code = "TCS016"
    name = "grown-state-parameter"
    consequence = "a recompile per new size, then a CUDA-graph re-record per size"
    why = ("the caller feeds the returned state back, one step longer each call: dynamo guards on the sizes of the "
           "compiled frame's tensor inputs, recompiles when they change, then makes them SymInts, and CUDA graph "
           "trees record one graph per distinct size")
    fix = ("keep the state in a preallocated buffer of the maximum length and write each step into it at a tensor "
           "position (`index_copy_`), with a mask or a length tensor for the filled part")
    what_it_does = (
        "Flags the `def` of a compiled function (an `nn.Module.forward` or a `torch.compile`d function that no "
        "other compiled code calls) that takes a state argument defaulting to `None` and returns it, as one "
        "element of a returned tuple, grown by `torch.cat` / `torch.concat` with something new: directly "
        "(`return out, torch.cat([past, new], 1)`), through the names, loops and containers it passes through "
        "(`for s, layer in zip(states, self.layers)`, `new_states.append(torch.cat([s, x], 1))`, "
        "`presents = presents + (present,)`, `x, caches[i] = layer(x, caches[i])`), or through the project "
        "functions it calls with it (`out, states = self.encoder(x, states)`, followed as far as the calls go, as "
        "the walk resolved them). A state trimmed by a slice before the join (`torch.cat([window[:, 1:], new])`, "
        "a sliding window) is not counted as grown. "
        "A returned dict or output object counts when the key or field has the parameter's own name "
        "(`return Output(logits=y, cache=new)` for `cache`). That is a streaming or KV-cache state the caller "
        "passes back in on the next call, each time longer.")
    why_bad = (
        "Measured on torch 2.13: the second call, with the state one step longer, recompiles the frame "
        "(`tensor 'states[0]' size mismatch at index 1`, reported at the compiled function's `def`); automatic "
        "dynamic shapes then make the sizes SymInt graph inputs. Under `mode=\"reduce-overhead\"` CUDA graph "
        "trees record one graph per distinct tuple of SymInt inputs, so a state that grows every step re-records "
        "every step (trimming it to a window, `new[:, -ctx:]`, only stops that once the window is full). EnCodec's "
        "streaming LM (`LMModel.forward` -> `StreamingTransformerEncoder.forward`, `torch.cat([layer_state, "
        "new_layer_state], dim=1)`) and GPT-2-style `layer_past` tuples are this shape.")
    use_instead_note = ("Preallocate the state at its maximum length and write each step into it at a tensor "
                        "position; pass the filled length as a tensor (or a mask), not as the state's size.")
    fix_safety = "Not rewritten: the callers that create and feed back the state change with it."
    INVALID = (
        Example('''\
import torch


class StreamingEncoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(2)])

    def forward(self, x, states=None):
        if states is None:
            states = [x[:, :0] for _ in self.layers]
        new_states = []
        for state, layer in zip(states, self.layers):
            x = layer(x)
            new_states.append(torch.cat([state, x], dim=1))
        return x, new_states


class LM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = StreamingEncoder()

    def forward(self, x, states=None):  # TCS016
        out, states = self.encoder(x, states)
        return out.softmax(-1), states
'''),
        Example('''\
import torch


class Attention(torch.nn.Module):
    def forward(self, x, layer_past=None):
        key = value = x
        if layer_past is not None:
            past_key, past_value = layer_past
            key = torch.cat((past_key, key), dim=-2)
            value = torch.cat((past_value, value), dim=-2)
        present = (key, value)
        return x + key.sum(-2, keepdim=True) + value.mean(-2, keepdim=True), present


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = Attention()

    def forward(self, x, layer_past=None):  # TCS016
        out, present = self.attn(x, layer_past=layer_past)
        return out, present
'''),
        Example('''\
import torch
from torch import nn


class Layer(nn.Module):
    def forward(self, x, cache=None):
        if cache is not None:
            cache = torch.cat([cache, x], dim=1)
        else:
            cache = x
        return x * 2, cache


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([Layer(), Layer()])

    def forward(self, x, caches=None):  # TCS016
        if caches is None:
            caches = [None] * len(self.layers)
        for i, layer in enumerate(self.layers):
            x, caches[i] = layer(x, caches[i])  # each layer's grown cache stored back into the list
        return x, caches
'''),
    )
    VALID = (
        Example('''\
import torch


class RingCache(torch.nn.Module):
    def forward(self, x, cache=None, pos=None):
        if cache is None:
            cache = x.new_zeros(x.shape[0], 16, x.shape[-1])
            pos = torch.zeros((), dtype=torch.long)
        cache = cache.index_copy(1, pos.view(1) % 16, x)  # same size every call
        return x + cache.mean(1, keepdim=True), cache, pos + 1
''', note="A fixed-size state written at a tensor position: one graph for every call."),
        Example('''\
import torch


class Concat(torch.nn.Module):
    def forward(self, x, skip=None):
        if skip is not None:
            x = torch.cat([x, skip], dim=1)  # returned alone: a result, not a state handed back
        return x


class Decoder(torch.nn.Module):
    def forward(self, x, skip):
        y = torch.cat([x, skip], dim=1)  # `skip` is required: an input, not a state
        return y, x
''', note="A concatenation returned alone, or of a required argument, is a result, not a state."),
        Example('''\
import torch


class Attention(torch.nn.Module):
    def forward(self, q, k, attn_mask=None):
        scores = q @ k.transpose(-1, -2)
        if attn_mask is not None:
            attn_mask = torch.cat([attn_mask, attn_mask.new_zeros(attn_mask.size(0), 1)], dim=1)
            scores += attn_mask  # arithmetic with the grown mask: the scores are no state handed back
        return scores, k
''', note="Adding a grown tensor to another is arithmetic; only joining tuples or lists carries the state."),
        Example('''\
import torch


class ConvStep(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(8, 8, 4, groups=8)

    def forward(self, x, window=None):
        if window is None:
            window = x.new_zeros(x.shape[0], 8, 3)
        y = self.conv(torch.cat([window, x.unsqueeze(2)], dim=2))[:, :, -1]
        window = torch.cat([window[:, :, 1:], x.unsqueeze(2)], dim=2)  # drops one, adds one
        return y, window
''', note=SLIDING_WINDOW_NOTE),
    )

    def check(self, stmt, ctx):
        return ()

    def check_reached(self, facts) -> Iterable[Finding]:
        called = set().union(*facts.calls.values()) if facts.calls else set()
        finder = _Grown(facts)
        seen: set[str] = set()
        for item in facts.reached:
            func = item.ctx.func
            if len(item.chain) != 1 or func.qualname in called or func.qualname in seen:
                continue  # only the outermost compiled frames: their arguments are what dynamo guards
            seen.add(func.qualname)
            try:
                source = func.args_source()  # the signature the summary keeps: no def read on a warm run
                if source is None or "None" not in source or not optional_parameters(func.transient_args()):
                    continue
                own = finder.facts_of(func)
                if own is None or not own.optional:
                    continue
                grown = finder.grows(func.qualname)
            except (RecursionError, ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
                facts.gave_up.append((str(func.module.path), func.lineno, func.display,
                                      f"{self.code} {type(exc).__name__}: {str(exc)[:100]}"))
                continue
            for param in own.optional:
                where = next((how for (element, p), how in grown.items()
                              if p == param and _handed_back(element, param)), None)
                if where is not None:
                    grower = finder.display(where[1])
                    yield self._finding(item, param, where, grower)

    def _finding(self, item, param: str, where: tuple[str, str], grower: str) -> Finding:
        func = item.ctx.func
        shown, grower_name = where
        place = "" if grower_name == func.qualname else f" in {grower}"
        return Finding(self.code, str(func.module.path), func.lineno, func.col, func.lineno, func.col,
                       summary=f"`{param}` comes back grown by torch.cat{place}", why=self.why, fix=self.fix,
                       root=item.root.display, chain=item.chain, function=func.qualname, def_line=func.lineno,
                       consequence=self.consequence,
                       data={"kind": "grown-state", "parameter": param, "grown_by": shown, "grown_in": grower_name})


class _Grown:
    """Which parameters a function returns grown, following the calls the walk resolved (memoised)."""

    def __init__(self, facts):
        self.facts = facts
        self._memo: dict[str, dict] = {}

    def display(self, qualname: str) -> str:
        func = self.facts.function(qualname)
        return func.display if func is not None else qualname

    @staticmethod
    def facts_of(func) -> GrownFacts | None:
        return func.derived(FACT, grown_facts)

    def grows(self, qualname: str) -> dict[tuple[int, str], tuple[str, str]]:
        """{(return element, parameter): (torch.cat source, function that grows it)}."""
        if qualname in self._memo:
            return self._memo[qualname]
        self._memo[qualname] = {}  # a recursive call grows nothing more
        func = self.facts.function(qualname)
        facts = self.facts_of(func) if func is not None else None
        found: dict[tuple[int, str], tuple[str, str]] = {}
        if facts is not None:
            for element, param, shown in facts.direct:
                found.setdefault((element, param), (shown, qualname))
            sites = self.facts.sites(qualname) if facts.through else {}
            for element, through in facts.through:
                for callee in sorted(sites.get((through.line, through.col), ())):
                    how = self._through(callee, through)
                    if how is not None:
                        found.setdefault((element, through.param), how)
        self._memo[qualname] = found
        return found

    def _through(self, callee: str, through: Through) -> tuple[str, str] | None:
        func = self.facts.function(callee)
        facts = self.facts_of(func) if func is not None else None
        if facts is None:
            return None
        param = _parameter_for(facts, through.argument)
        if param is None:
            return None
        for (element, grown_param), how in self.grows(callee).items():
            if grown_param == param and element == through.element:
                return how
        return None


def _handed_back(element: int | str, param: str) -> bool:
    """The returned element is what the caller passes back as ``param``: an element of a returned
    tuple (callers unpack it by position), or a field or key of that very name (``cache=new`` for
    ``cache``). A field of another name (``encoder_hidden_states=torch.cat([features, h])`` for
    ``input_features``) is an output, not the state fed back."""
    return isinstance(element, int) and element != WHOLE or element == param


def _parameter_for(facts: GrownFacts, argument: int | str) -> str | None:
    if isinstance(argument, str):
        return argument if argument in facts.positional or argument in facts.optional else None
    index = argument + (1 if facts.bound_method else 0)
    return facts.positional[index] if index < len(facts.positional) else None
