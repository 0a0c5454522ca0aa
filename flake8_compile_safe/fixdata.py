"""What a finding tells the fixer: each fixable rule's fix specs and the typed data its fix needs.

A rule declares its fixes (``Rule.fixes``: :class:`FixSpec`, with a safety class in the style of
ruff) and attaches one payload record per finding (``Finding.data["fix"]``). The payloads are
facts only the analysis knows (is this receiver a torch tensor? is this index a Python int? is
the slice length ``v.shape[d]``?), each as a :class:`Proof` that says why. The fixer
(``flake8_compile_safe.fixers``) turns them into rewrites; the rule docs' "Fix safety" sections are
rendered from the same specs. Nothing here imports libcst or torch; records are plain frozen
dataclasses (they travel between processes with the findings).
"""

from __future__ import annotations

from dataclasses import dataclass

SAFE = "safe"  # keeps behaviour: applied by default
UNSAFE = "unsafe"  # may change behaviour: only with --unsafe-fixes (shown in --diff with why)

TENSOR_INDEX = "tensor-index"
GRAPH_BREAK = "graph-break"


@dataclass(frozen=True)
class FixSpec:
    """One automatic fix of a rule, as the docs and the fixer's summary describe it."""

    name: str  # "index-copy"
    strategy: str  # TENSOR_INDEX, GRAPH_BREAK, or "any"
    rewrite: str  # what it does (markdown, one or two sentences)
    safe_when: str  # when it is applied by default ("" : always unsafe)
    unsafe_when: str = ""  # when it needs --unsafe-fixes, and why ("" : never unsafe)

    def render(self) -> str:
        strategy = "both strategies" if self.strategy == "any" else f"`--strategy {self.strategy}`"
        text = f"- **{self.name}** ({strategy}): {self.rewrite}"
        if not self.safe_when:
            return text + f" Always unsafe (only with `--unsafe-fixes`): {self.unsafe_when}"
        text += f" Safe (applied by default) when {self.safe_when}"
        if self.unsafe_when:
            text += f" Otherwise unsafe (only with `--unsafe-fixes`): {self.unsafe_when}"
        return text


# ---------------------------------------------------------------------------------------------
# Payload records


@dataclass(frozen=True)
class Proof:
    """A fact the fix relies on: ``ok`` when the analysis proves it; ``why`` says how, or what is missing.

    ``inferred``: the analysis believes it from a heuristic (a tensor-only method name, say), which
    is not proof: the fix is then unsafe at best.
    """

    ok: bool
    why: str
    inferred: bool = False

    def __bool__(self) -> bool:
        return self.ok


def proven(why: str) -> Proof:
    return Proof(True, why)


def unproven(why: str, inferred: bool = False) -> Proof:
    return Proof(False, why, inferred)


@dataclass(frozen=True)
class OwnerClass:
    """The project class that holds a piece of state (where a fix edits its initialiser)."""

    path: str
    qualname: str
    name: str
    line: int  # the ``class`` line
    is_module: bool  # an nn.Module (buffers move with .to(); register_buffer exists)


@dataclass(frozen=True)
class SliceAccess:
    """TCS003: ``buf[lead..., lo:hi, ...]`` (read or written) with a data-dependent bound."""

    store: bool  # ``buf[...] = value`` (the whole statement), else a read
    receiver: Proof  # ``buf`` is a torch tensor
    lead_ints: Proof  # the scalar indices before the slice are Python ints (``buf[i]`` is a view)
    dim: int  # the slice's dimension in ``buf[lead...]``
    length: str  # source of n where ``hi`` is ``lo + n`` (proven); "" when not proven
    length_why: str
    value_tensor: Proof  # the assigned value is a torch tensor (stores)
    bound_kind: str  # "tensor", "host" (read from a tensor) or "intstate"
    host_var: str = ""  # a bound that is a local read from a tensor: its name (see HostValue)


@dataclass(frozen=True)
class HostValue:
    """TCS002: ``name = int(t.item())`` (or ``t.item()``, ``int(t)``) read from a tensor on the host."""

    var: str  # the local the value is bound to ("" when it is not ``name = <read>``)
    tensor: str  # source of ``t``
    receiver: Proof  # ``t`` is a torch tensor
    scalar_int: Proof  # ``t`` holds one integer (integer dtype, one element)
    uses: tuple[int, ...]  # lines that read ``var`` in the function
    index_only: Proof  # every read of ``var`` is a bound or index of a tensor subscript


@dataclass(frozen=True)
class StateWrite:
    """TCS001: an in-place write into a tensor held by a plain object, not marked static."""

    owner: OwnerClass | None
    attr: str
    tensor: Proof  # the attribute always holds a torch tensor
    allocator: str  # method that allocates it with a torch call ("" : none found)
    alloc_line: int
    augmented: str = ""  # "+=" etc. when the write is ``obj.attr op= value`` (a tensor in place)
    # A dataclass field declared a tensor and set by the caller: marked in ``__post_init__`` (added when
    # the class has none and no base defines one).
    dataclass_field: bool = False
    base_post_init: bool = False


@dataclass(frozen=True)
class IntCounter:
    """A Python-int attribute advanced on the compiled path and used as an index."""

    owner: OwnerClass
    attr: str
    init_method: str  # where it is first set to an int literal
    init_line: int
    init_value: str  # the literal
    uses: Proof  # every use is an index, a ``+=``/``-=`` by an int, or a reset to a literal
    device_attr: str = ""  # a tensor attribute set before it in the initialiser: the counter's device
    class_lines: tuple[int, ...] = ()  # ``class`` lines of the classes (in the owner's file) that use it


@dataclass(frozen=True)
class GrowingCat:
    """``self.x = torch.cat([self.x, v], dim)``: a cache that grows by reallocation every step."""

    owner: OwnerClass
    attr: str
    dim: int
    appended: str  # source of v
    max_len: str  # an expression for the maximum length, valid in the initialiser ("" : unknown)
    max_len_why: str
    init_method: str
    init_line: int
    allocated_in_init: bool = False  # the initialiser assigns it a tensor unconditionally: allocate there


@dataclass(frozen=True)
class GraphBreakCall:
    """TCS005: ``torch._dynamo.graph_break()`` statement before a mutation."""

    mutation_line: int


# ---------------------------------------------------------------------------------------------
# The fixes, one spec each: the rules list theirs (``Rule.fixes``), the docs render them, and the
# fixer's modules (``flake8_compile_safe.fixers.rules``) name the one they implement.

EAGER_HELPER = FixSpec(
    "eager-helper", GRAPH_BREAK,
    "The smallest function holding the finding that is not a compiled root gets `@torch.compiler.disable`: "
    "it runs eagerly between compiled graphs, so they mutate no state and read no tensor data on the host.",
    "the function is a helper: not the compiled entry point (an `nn.Module.forward` or `torch.compile` target "
    "that no compiled code calls) and calling no `nn.Module`. Values are unchanged, speed is not. A finding in "
    "model code (the entry point, or a function that runs submodules) is left unfixed: disabling it would run "
    "the model eagerly; move the statement into a helper.")
STATIC_MARKING = FixSpec(
    "static-marking", TENSOR_INDEX,
    "At the end of the initialiser that allocates it, `torch._dynamo.mark_static_address(self.x)` (only when not "
    "compiling) for each tensor the compiled path writes in place; `obj.x += v` on such a tensor becomes "
    "`obj.x.add_(v)` (the same in-place write, without rebinding the attribute).",
    "the attribute is only ever assigned torch tensors (an allocation, a `torch.Tensor` annotation) and an "
    "initialiser allocates it: marking changes nothing eagerly.")
TENSOR_COUNTER = FixSpec(
    "tensor-counter", TENSOR_INDEX,
    "A Python-int attribute advanced on the compiled path and used as a tensor index becomes a 0-d `long` tensor "
    "(a non-persistent buffer on an `nn.Module`, a static tensor elsewhere): `+= n` becomes `add_(n)`, `= 0` "
    "becomes `fill_(0)`, `buf[self.pos] = v` becomes `buf[self.pos.view(1)] = v` (a one-element index: a 0-d "
    "tensor index is specialised per value).",
    "every use of the attribute, in its class, bases and subclasses, is an int-literal assignment, a `+=`/`-=` "
    "or the index of a tensor write, and nothing reads it through another object.",
    "a use is a tensor read (`buf[self.pos]` becomes a copy, not a view) or a slice bound (rewritten with "
    "`index_copy_`, see TCS003).")
PREALLOCATED_CACHE = FixSpec(
    "preallocated-cache", TENSOR_INDEX,
    "`self.x = torch.cat([self.x, v], dim)` becomes a buffer of the maximum length (from the initialiser's "
    "`max_len`-style argument or `config.max_position_embeddings`-style field), allocated from the first `v` "
    "and written with `copy_` at a write head; `self.x` stays the written prefix (a view).",
    "",
    "writing past the maximum length raises instead of growing; `self.x` becomes a view into a reused buffer "
    "(a reference kept across a reset sees later writes); dtype and device come from the first write. Without "
    "a maximum length the finding is left with its suggestion.")
KEEP_TENSOR = FixSpec(
    "keep-tensor", TENSOR_INDEX,
    "`i = int(t.item())` (or `t.item()`, `int(t)`) used only to index tensors becomes `i = t.clone()`, and "
    "every use becomes a tensor-position form (`index_copy_` writes, `index_select` reads): no host read.",
    "`t` is a proven tensor with an integer dtype, `i` is bound once, and every use indexes a proven tensor "
    "through one of those rewrites (TCS003) that is itself applied.",
    "one of the uses is an unsafe rewrite (then this one is too).")
INDEX_COPY = FixSpec(
    "index-copy", TENSOR_INDEX,
    "`buf[i, :, s:e] = v` with tensor bounds becomes `buf[i].index_copy_(1, s + torch.arange(n, "
    "device=buf.device), v.to(buf[i]))` where `e` is `s + n` (`index_fill_` for a number); a value that calls "
    "anything is hoisted into a local first, so it runs exactly once.",
    "`buf` and the value are proven torch tensors (or the value is a number), the indices before the slice are "
    "Python ints (`buf[i]` is then a view), and `e` is provably `s + n`: the same values (an out-of-bounds "
    "write raises where a slice would clamp).",
    "`buf` or the value is only inferred to be a tensor by the analysis' heuristics. Not applied at all when "
    "`buf` may be something else (a NumPy array, a list), a leading index may be a tensor (the write would go "
    "to a copy) or the slice length is not known on the host.")
INDEX_SELECT = FixSpec(
    "index-select", TENSOR_INDEX,
    "A read `buf[s:s + n]` with a tensor `s` becomes `buf.index_select(d, s + torch.arange(n, device=...))`, "
    "a read `buf[i]` with a tensor `i` becomes `buf.index_select(0, i.view(1)).squeeze(0)`.",
    "the read is an operand of an expression (not stored, not returned), so nothing writes through it.",
    "the result is stored or returned: it is now a copy, not a view, and a write through it no longer reaches "
    "`buf`.")
DISABLE_WRITER = FixSpec(
    "disable-writer", "any",
    "The bare `torch._dynamo.graph_break()` is removed (its comments are kept on the next line) and the function "
    "gets `@torch.compiler.disable`, which does isolate the mutation.",
    "the function is not a compiled root. A root is left unfixed: disabling it would run the whole model "
    "eagerly.")
