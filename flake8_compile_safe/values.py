"""What a value is, as far as the rules care: the one home for value kinds.

Two views of the same vocabulary:

* at index time (:class:`StaticKinds`), what an annotation or an assigned expression says an
  attribute holds: a tensor, a buffer, a parameter, a submodule, a list, a dict, an int, a
  project class, the classes in a container, a callable;
* during the walk of a compiled function (:class:`Val`), what an expression evaluates to, with
  two flow-only kinds: ``HOST`` (a Python number read out of a tensor) and ``INTSTATE`` (an int
  attribute the code mutates).

Unknown stays unknown: ``Val()`` (``NOTHING``) is what the analysis says when the code does not
prove anything, and no rule fires on it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .project import ModuleInfo, ProjectIndex

# Kinds of state an attribute can hold (index time).
TENSOR, BUFFER, PARAMETER, MODULE, LIST, DICT, INT, NONE = (
    "tensor", "buffer", "parameter", "module", "list", "dict", "int", "none")
TENSOR_KINDS = {TENSOR, BUFFER, PARAMETER}
# Flow-only kinds.
HOST = "host"  # a Python number read out of a tensor (.item(), int(t)): data-dependent
INTSTATE = "intstate"  # a Python int attribute that the code mutates: one graph per value
TENSOR_VALUE = TENSOR
DATA_DEPENDENT = (TENSOR_VALUE, HOST, INTSTATE)
# Later in the order wins a join.
PRIORITY = {None: 0, NONE: 0, INT: 0, MODULE: 0, BUFFER: 4, PARAMETER: 4, LIST: 1, DICT: 1, INTSTATE: 2, HOST: 3,
            TENSOR_VALUE: 4}

TENSOR_ANNOTATIONS = {"torch.Tensor", "torch.FloatTensor", "torch.LongTensor", "torch.BoolTensor",
                      "torch.IntTensor", "torch.HalfTensor", "torch.nn.Parameter", "torch.nn.parameter.Parameter",
                      "torch.nn.parameter.Buffer", "torch.nn.Buffer"}
BOOL_ANNOTATIONS = {"torch.BoolTensor"}
JAXTYPING_PREFIX = "jaxtyping."
JAXTYPING_HEADS = {"Float", "Int", "Bool", "Num", "Shaped", "Integer", "Real", "Inexact", "UInt", "Key"}
LIST_HEADS = {"List", "list", "Sequence", "MutableSequence", "Deque", "deque", "Iterable", "Tuple", "tuple"}
DICT_HEADS = {"Dict", "dict", "Mapping", "MutableMapping", "DefaultDict", "OrderedDict"}
INIT_METHODS = {"__init__", "__post_init__", "__new__", "__setstate__"}
# Containers of submodules: their elements are what the constructor was given.
MODULE_CONTAINERS = {"torch.nn.ModuleList", "torch.nn.ModuleDict", "torch.nn.Sequential",
                     "torch.nn.modules.container.ModuleList", "torch.nn.modules.container.ModuleDict",
                     "torch.nn.modules.container.Sequential"}
PARTIAL = {"functools.partial"}
# Calls that return a TorchScript module: it runs in the TorchScript runtime, not in Python.
TORCH_SCRIPTED = {"torch.jit.script", "torch.jit.trace", "torch.jit.freeze", "torch.jit.load",
                  "torch.jit.trace_module"}

# torch calls that return Python values (or objects), not tensors.
TORCH_NON_TENSOR = {
    "torch.is_tensor", "torch.is_floating_point", "torch.is_complex", "torch.numel", "torch.device", "torch.Size",
    "torch.get_default_dtype", "torch.is_grad_enabled", "torch.is_inference_mode_enabled", "torch.finfo",
    "torch.iinfo", "torch.no_grad", "torch.enable_grad", "torch.inference_mode", "torch.autocast",
    "torch.set_grad_enabled", "torch.compile", "torch.manual_seed", "torch.seed", "torch.initial_seed",
    "torch.get_num_threads", "torch.set_num_threads", "torch.are_deterministic_algorithms_enabled",
    "torch.use_deterministic_algorithms", "torch.get_device", "torch.typename", "torch.result_type",
    "torch.promote_types", "torch.can_cast", "torch.is_autocast_enabled", "torch.get_autocast_dtype",
    "torch.get_autocast_gpu_dtype", "torch.is_nonzero", "torch.sym_int", "torch.sym_float", "torch.sym_max",
    "torch.sym_min", "torch.sym_not", "torch.Generator", "torch.Stream", "torch.Event", "torch.dtype",
    "torch.broadcast_shapes", "torch.get_float32_matmul_precision", "torch.set_float32_matmul_precision",
}
# Namespaces of torch whose functions answer questions about the host, the build or the runtime
# (``torch.cuda.get_device_capability()``, ``torch.distributed.get_rank()``), never tensors.
TORCH_HOST_NAMESPACES = (
    "torch.cuda.", "torch.backends.", "torch.distributed.", "torch.version", "torch.jit.", "torch.onnx.",
    "torch.utils.", "torch._C.", "torch.compiler.", "torch._dynamo.", "torch.fx.", "torch.hub.", "torch.testing.",
    "torch.overrides.", "torch.multiprocessing.", "torch.profiler.", "torch.autograd.profiler.", "torch.mps.",
    "torch.xpu.", "torch.cpu.", "torch.accelerator.", "torch.library.", "torch.export.", "torch._guards.",
    "torch._logging.", "torch._inductor.", "torch._utils.", "torch.types.", "torch.serialization.",
    "torch.random.", "torch.distributions.", "torch.optim.", "torch.amp.", "torch.quantization.", "torch.ao.",
)
# Namespaces whose lower-case functions return tensors.
TORCH_TENSOR_NAMESPACES = ("torch.nn.functional.", "torch.linalg.", "torch.fft.", "torch.special.", "torch.sparse.",
                           "torch.nested.", "torch.masked.", "torch.signal.", "torch.ops.")
# Tools that constrain values for dynamo: never hazards themselves.
TORCH_CHECKS = ("torch._check", "torch._assert", "torch._constrain_as_size", "torch._check_is_size",
                "torch._assert_async", "torch._assert_scalar")
HOST_PREFIXES = ("is_", "get_", "set_", "use_", "has_", "are_")


def torch_call_is_tensor(resolved: str) -> bool:
    """Whether calling the torch function ``resolved`` returns a tensor, as far as the name tells.

    Top-level lower-case functions (``torch.cat``) and those of the tensor namespaces
    (``torch.nn.functional.softmax``) do; host questions (``torch.cuda.get_device_capability``),
    classes, checks and ``is_*`` / ``get_*`` predicates do not. Anything else is unknown: False.
    """
    if resolved in TORCH_NON_TENSOR or resolved.startswith(TORCH_HOST_NAMESPACES) or resolved.startswith(
            TORCH_CHECKS):
        return False
    short = resolved.rsplit(".", 1)[-1]
    if not short[:1].islower() or short.startswith(HOST_PREFIXES):
        return False
    if resolved.startswith(TORCH_TENSOR_NAMESPACES):
        return True
    return resolved.count(".") == 1 or resolved.startswith("torch.Tensor.")


@dataclass(frozen=True)
class Val:
    """What an expression evaluates to during the walk of one function.

    ``cls`` (and ``alts``, for a union) name project classes; ``hier`` says the class is a static
    type (an annotation), so any project subclass may stand in for it at run time; ``elems``
    is what an element of a container is; ``fresh`` marks an object this compiled call created
    itself; ``boolean`` a tensor of booleans (a mask); ``func`` a callable value
    (function qualname, class of its bound ``self`` or "", number of positional arguments bound,
    keyword names bound).
    """

    value: str | None = None  # tensor / host / intstate / list / dict / None
    cls: str | None = None
    origin: tuple[str, str] | None = None  # (class qualname, attribute) when it is object state
    items: tuple["Val", ...] | None = None  # per-element values of a tuple
    alts: tuple[str, ...] = ()
    hier: bool = False
    elems: "Val | None" = None
    fresh: bool = False
    boolean: bool = False
    func: tuple | None = None

    def __init__(self, value=None, cls=None, origin=None, items=None, alts=(), hier=False, elems=None,
                 fresh=False, boolean=False, func=None):
        # The generated __init__ of a frozen dataclass sets each field through object.__setattr__;
        # filling the instance dict at once halves the cost (the walk builds about a million).
        self.__dict__.update(value=value, cls=cls, origin=origin, items=items, alts=alts, hier=hier, elems=elems,
                             fresh=fresh, boolean=boolean, func=func)

    @property
    def is_data_dependent(self) -> bool:
        return self.value in DATA_DEPENDENT

    @property
    def classes(self) -> tuple[str, ...]:
        return ((self.cls,) if self.cls else ()) + self.alts

    def __reduce__(self):
        # Unpickled from the cache, the empty value must be NOTHING itself: `join` tests identity.
        if self == NOTHING:
            return (_nothing, ())
        return (Val, (self.value, self.cls, self.origin, self.items, self.alts, self.hier, self.elems,
                      self.fresh, self.boolean, self.func))

    def key(self):
        return (self.value, self.cls, self.alts, self.hier, self.func, self.boolean, self.fresh,
                self.elems.key() if self.elems is not None else None,
                tuple(i.key() for i in self.items) if self.items else None)


NOTHING = Val()


def _nothing() -> Val:
    return NOTHING


MAX_UNION = 8


def join(a: Val | None, b: Val | None) -> Val:
    """What a value is when it may be either: the stronger kind, every class either may be."""
    if a is None or a is NOTHING:
        return b or NOTHING
    if b is None or b is NOTHING or a is b:
        return a
    if a.items is not None and b.items is not None and len(a.items) == len(b.items):
        items = tuple(join(x, y) for x, y in zip(a.items, b.items))
    else:
        items = a.items or b.items
    value = a.value if PRIORITY.get(a.value, 0) >= PRIORITY.get(b.value, 0) else b.value
    classes = list(dict.fromkeys((*a.classes, *b.classes)))[:MAX_UNION]
    elems = join(a.elems, b.elems) if (a.elems or b.elems) else None
    boolean = a.boolean and b.boolean if value == TENSOR_VALUE else False
    return Val(value, classes[0] if classes else None, a.origin or b.origin, items, tuple(classes[1:]),
               a.hier or b.hier, elems, a.fresh and b.fresh, boolean, a.func or b.func)


def value_only(val: Val) -> Val:
    return Val(val.value) if val.value else NOTHING


def class_val(qualnames, hier: bool) -> Val:
    names = list(dict.fromkeys(qualnames))[:MAX_UNION]
    if not names:
        return NOTHING
    return Val(cls=names[0], alts=tuple(names[1:]), hier=hier)


@dataclass(frozen=True, slots=True)
class StaticKind:
    """What an annotation or an assigned expression says an attribute holds (index time).

    Slotted, and one object per distinct value when read from the cache (``__reduce__``): a
    warm run holds tens of thousands of them, most alike.
    """

    kind: str | None = None  # TENSOR, BUFFER, PARAMETER, MODULE, LIST, DICT, INT, NONE or None
    classes: tuple[str, ...] = ()  # project classes (qualnames)
    hier: bool = False  # from an annotation: subclasses may stand in
    elems: tuple[str, ...] = ()  # classes of a container's elements
    elems_hier: bool = False
    func: str | None = None  # a project function (qualname) or "self.method"
    boolean: bool = False
    constant: object = None  # the literal, for `x = True` style flags
    is_constant: bool = False
    typevar: str | None = None  # an annotation naming a TypeVar (qualified): bound per subclass
    external: str | None = None  # the library constructor it was built with (``torch.nn.LSTM``)
    # (key, StaticKind) of an ``nn.ModuleDict`` built from a literal: ``self.transformer.h`` is the
    # ModuleList stored under "h" (nanoGPT's ``nn.ModuleDict(dict(wte=..., h=nn.ModuleList([...])))``)
    fields: tuple = ()

    @property
    def type_name(self) -> str | None:
        return self.classes[0] if self.classes else None

    def __reduce__(self):
        return (_static_kind, tuple(getattr(self, name) for name in self.__slots__))


_SHARED_KINDS: dict = {}


def _static_kind(*fields) -> StaticKind:
    constant = fields[7]
    # By type too: 1 == True, and a flag must come back as the literal it was.
    key = (*fields[:7], type(constant), repr(constant), *fields[8:])
    try:
        found = _SHARED_KINDS.get(key)
    except TypeError:  # unhashable: keep its own object
        return StaticKind(*fields)
    if found is None:
        found = _SHARED_KINDS[key] = StaticKind(*fields)
    return found


UNKNOWN = StaticKind()


def _literal_items(node: ast.expr) -> list[tuple[str, ast.expr]]:
    """(key, value) of ``dict(a=x, b=y)`` or ``{"a": x, "b": y}``; [] for anything else."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args \
            and all(k.arg for k in node.keywords):
        return [(k.arg, k.value) for k in node.keywords]
    if isinstance(node, ast.Dict) and node.keys and all(
            isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys):
        return [(k.value, v) for k, v in zip(node.keys, node.values)]
    return []


def _unwrap_string(ann: ast.expr) -> ast.expr | None:
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        try:
            return ast.parse(ann.value, mode="eval").body
        except SyntaxError:
            return None
    return ann


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    if type(node) is ast.Name:  # the common case, without the list and the join
        return node.id
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class StaticKinds:
    """Index-time kinds of annotations and assigned expressions, for one project index."""

    def __init__(self, index: "ProjectIndex"):
        self.index = index

    # -- annotations ---------------------------------------------------------------------------
    def annotation(self, module: "ModuleInfo", ann: ast.expr | None) -> StaticKind:
        """What an annotation denotes; unwraps strings, Optional, Union, ``X | None``."""
        ann = _unwrap_string(ann) if ann is not None else None
        if ann is None:
            return UNKNOWN
        if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
            return self._union(module, [ann.left, ann.right])
        if isinstance(ann, ast.Subscript):
            head = module.resolve(dotted(ann.value) or "")
            short = head.split(".")[-1]
            if head.startswith(JAXTYPING_PREFIX) or (short in JAXTYPING_HEADS
                                                     and "jaxtyping" in module.imports.get(short, "")):
                return StaticKind(TENSOR, boolean=short == "Bool")
            inner = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
            if not inner:  # `Tuple[()]`, the empty tuple (torch's own source has it)
                return StaticKind(LIST) if short in {"Tuple", "tuple"} else UNKNOWN
            if short in {"Optional", "Union"}:
                return self._union(module, inner)
            if short in {"Annotated", "Final", "ClassVar"}:
                return self.annotation(module, inner[0])
            if short in LIST_HEADS or short in DICT_HEADS:
                element = inner[-1] if short in DICT_HEADS else inner[0]
                elems = self.annotation(module, element) if not (short in {"Tuple", "tuple"} and len(inner) > 2) \
                    else UNKNOWN
                return StaticKind(DICT if short in DICT_HEADS else LIST, elems=elems.classes,
                                  elems_hier=bool(elems.classes))
            if short == "type":
                return UNKNOWN
            return self.annotation(module, ann.value)
        name = dotted(ann)
        if not name:
            return UNKNOWN if not (isinstance(ann, ast.Constant) and ann.value is None) else StaticKind(NONE)
        resolved = module.resolve(name)
        if name in module.typevars:
            bound = self.index.lookup_class(module.resolve(module.typevars[name])) if module.typevars[name] else None
            return StaticKind(classes=(bound.qualname,) if bound else (), hier=True,
                              typevar=f"{module.name}.{name}")
        if resolved in TENSOR_ANNOTATIONS or resolved == "Tensor":
            return StaticKind(TENSOR, boolean=resolved in BOOL_ANNOTATIONS)
        if resolved == "int":
            return StaticKind(INT)
        if resolved == "list":
            return StaticKind(LIST)
        if resolved == "dict":
            return StaticKind(DICT)
        klass = self.index.lookup_class(resolved)
        if klass:
            return StaticKind(MODULE if self.index.is_nn_module(klass) else None, (klass.qualname,), hier=True)
        return UNKNOWN

    def _union(self, module, parts) -> StaticKind:
        kinds = [self.annotation(module, p) for p in parts]
        kinds = [k for k in kinds if k != UNKNOWN and k.kind != NONE]
        if not kinds:
            return UNKNOWN
        classes = tuple(dict.fromkeys(c for k in kinds for c in k.classes))
        first = kinds[0]
        return StaticKind(first.kind, classes, True, first.elems, first.elems_hier, boolean=first.boolean,
                          typevar=first.typevar)

    # -- assigned expressions ------------------------------------------------------------------
    def assigned(self, module: "ModuleInfo", value: ast.expr, param_annotations: dict,
                 self_name: str | None = "self") -> StaticKind:
        """What ``value`` is when assigned to an attribute (``self.x = value``)."""
        if isinstance(value, ast.Constant):
            if value.value is None:
                return StaticKind(NONE, constant=None, is_constant=True)
            if type(value.value) is int:
                return StaticKind(INT, constant=value.value, is_constant=True)
            return StaticKind(constant=value.value, is_constant=True)
        if isinstance(value, (ast.List, ast.ListComp, ast.Tuple)):
            elts = [value.elt] if isinstance(value, ast.ListComp) else value.elts
            return StaticKind(LIST, elems=self._constructed(module, elts))
        if isinstance(value, (ast.Dict, ast.DictComp)):
            elts = [value.value] if isinstance(value, ast.DictComp) else [v for v in value.values if v is not None]
            return StaticKind(DICT, elems=self._constructed(module, elts))
        if isinstance(value, ast.Name):
            if value.id in param_annotations:
                return self.annotation(module, param_annotations[value.id])
            found = self.index.lookup(module.resolve(value.id))
            if found is not None and not hasattr(found, "methods"):
                return StaticKind(func=found.qualname)
            return UNKNOWN
        if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == self_name:
            return StaticKind(func=f"self.{value.attr}")  # a bound method, if the class has one
        if isinstance(value, ast.IfExp):
            a = self.assigned(module, value.body, param_annotations, self_name)
            b = self.assigned(module, value.orelse, param_annotations, self_name)
            return a if a.kind not in (None, NONE) or a.classes or a.func else b
        if isinstance(value, ast.BoolOp):
            for part in value.values:
                found = self.assigned(module, part, param_annotations, self_name)
                if found.kind not in (None, NONE) or found.classes:
                    return found
            return UNKNOWN
        if isinstance(value, ast.Call):
            return self._call(module, value, param_annotations, self_name)
        return UNKNOWN

    def _call(self, module, value: ast.Call, param_annotations, self_name) -> StaticKind:
        callee = dotted(value.func)
        if not callee:
            return UNKNOWN
        resolved = module.resolve(callee)
        if resolved in {"torch.nn.Parameter", "torch.nn.parameter.Parameter"}:
            return StaticKind(PARAMETER)
        if resolved in {"torch.nn.Buffer", "torch.nn.parameter.Buffer"}:
            return StaticKind(BUFFER)
        if resolved in PARTIAL and value.args:
            target = self.assigned(module, value.args[0], param_annotations, self_name)
            return StaticKind(func=target.func) if target.func else UNKNOWN
        if resolved in MODULE_CONTAINERS:
            elts, fields = [], ()
            if resolved.endswith("ModuleDict") and len(value.args) == 1:
                keyed = _literal_items(value.args[0])
                fields = tuple((key, self.assigned(module, item, param_annotations, self_name)) for key, item in keyed)
                elts.extend(item for _, item in keyed)
            for arg in value.args if not fields else ():
                if isinstance(arg, (ast.List, ast.Tuple)):
                    elts.extend(arg.elts)
                elif isinstance(arg, (ast.ListComp, ast.GeneratorExp)):
                    elts.append(arg.elt)
                elif isinstance(arg, (ast.Dict, ast.DictComp)):
                    elts.extend([arg.value] if isinstance(arg, ast.DictComp) else [v for v in arg.values if v])
                elif isinstance(arg, ast.Starred) and isinstance(arg.value, (ast.List, ast.ListComp)):
                    inner = arg.value
                    elts.extend([inner.elt] if isinstance(inner, ast.ListComp) else inner.elts)
                else:
                    elts.append(arg)
            return StaticKind(MODULE if resolved.endswith("Sequential") else
                              (DICT if resolved.endswith("ModuleDict") else LIST),
                              elems=self._constructed(module, elts), fields=fields)
        if resolved in {"list", "collections.deque"}:
            return StaticKind(LIST)
        if resolved in {"dict", "collections.defaultdict", "collections.OrderedDict"}:
            return StaticKind(DICT)
        if resolved.startswith("torch.nn.") and resolved.split(".")[-1][:1].isupper():
            return StaticKind(MODULE, external=resolved)
        if resolved in TORCH_SCRIPTED:
            return StaticKind(MODULE, external=resolved)
        if resolved.startswith("torch.") and torch_call_is_tensor(resolved):
            return StaticKind(TENSOR)
        klass = self.index.lookup_class(resolved)
        if klass:
            return StaticKind(MODULE if self.index.is_nn_module(klass) else None, (klass.qualname,))
        casts = {"clone", "to", "detach", "contiguous", "float", "half", "bfloat16"}
        if isinstance(value.func, ast.Attribute) and value.func.attr in casts:
            inner = self.assigned(module, value.func.value, param_annotations, self_name)
            if inner.kind in TENSOR_KINDS:
                return StaticKind(TENSOR)
        return UNKNOWN

    def _constructed(self, module, elts) -> tuple[str, ...]:
        """Project classes constructed by the expressions ``elts`` (``Block(cfg)``, ``cls(i)``)."""
        out = []
        for elt in elts:
            while isinstance(elt, ast.IfExp):
                out.extend(self._constructed(module, [elt.orelse]))
                elt = elt.body
            if isinstance(elt, ast.Call):
                callee = dotted(elt.func)
                klass = self.index.lookup_class(module.resolve(callee)) if callee else None
                if klass is not None:
                    out.append(klass.qualname)
        return tuple(dict.fromkeys(out))
