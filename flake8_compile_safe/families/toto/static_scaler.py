"""Static decode, part 2: the scalers read the whole history every step; they gain ``stream``.

``stream(stats, data, padding_mask, weights, prefix_length=None, start=False)`` is ``__call__`` for
``data`` that continues a series, reading and updating running statistics ``stats`` (a
``(4, batch, variates, 1)`` tensor kept in the cache) in place (docs/toto-static-decode.md,
section 2). Recognised shapes, per class with ``__call__(data, padding_mask, weights, prefix_length)``:

* causal: ``__call__`` calls a module-level function whose parameters are the causal-statistics
  ones below and which accumulates with ``torch.cumsum``: ``stream`` is ``__call__`` with that call
  replaced by the generated ``stream_<function>`` (prepend the running sums to each cumsum, so the
  sums are the same sequence of additions as over the whole series);
* prefix-global: statistics over the first ``prefix_length`` points only, returning
  ``(data - loc) / scale, loc, scale``: ``stream`` stores loc/scale at the start, applies them later.

Any other scaler-like class makes :func:`streamable` say why, and the recipe keeps the
``tensor-index`` form (no static decode).
"""

from __future__ import annotations

import libcst as cst

from ...fixers.cstutil import code, dotted, find_method, stmt, stmts

CAUSAL_PARAMS = ("data", "weights", "padding_mask", "dim", "minimum_scale", "use_bessel_correction",
                 "stabilize_with_global", "scale_factor_exponent", "prefix_length")
CALL_PARAMS = ("self", "data", "padding_mask", "weights", "prefix_length")

_STREAM_CAUSAL = '''\
def stream_{name}(
    stats: torch.Tensor,
    data: torch.Tensor,
    weights: torch.Tensor,
    padding_mask: torch.Tensor,
    dim: int,
    minimum_scale: float,
    use_bessel_correction: bool = True,
    stabilize_with_global: bool = False,
    scale_factor_exponent: float = 10.0,
    prefix_length: int | None = None,
    start: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """{name} for ``data`` that continues a series, from running statistics, not the earlier points.

    ``stats`` (4, batch, variate, 1) holds, for the points seen so far, the sum of weights, the sum
    of weighted values, Welford's m_2 and the global scale; it is updated in place. ``start=True``
    begins a series: the sums start from zero and the global scale comes from the first
    ``prefix_length`` points, which must all be in this first call.
    """
    assert dim == -1, "stream_{name} only supports dim=-1 (last dimension)"
    if start and stabilize_with_global and (prefix_length is None or prefix_length > data.shape[-1]):
        raise ValueError("stream_{name}: the global statistics need prefix_length <= the first call's length")

    with torch.no_grad():
        weights = weights * padding_mask
        high_precision_data = data.to(stats.dtype)
        high_precision_weights = weights.to(stats.dtype)
        previous = torch.zeros_like(stats) if start else stats
        sum_weights, sum_values, previous_m_2, global_scale = previous.unbind(0)

        prev_deterministic = torch.are_deterministic_algorithms_enabled()
        if prev_deterministic and data.device.type == "cuda":
            torch.use_deterministic_algorithms(False)
        try:
            weighted_data = high_precision_weights * high_precision_data
            # Prepending the running sums keeps each cumulative sum the same sequence of additions
            # as over the whole series; element 0 stands for the last point seen before.
            cum_weights = torch.cumsum(torch.cat([sum_weights, high_precision_weights], dim=-1), dim=-1)
            cum_values = torch.cumsum(torch.cat([sum_values, weighted_data], dim=-1), dim=-1)
            denominator = cum_weights.clamp_min(1.0)
            means = cum_values / denominator
            causal_means, shifted_means = means[..., 1:], means[..., :-1]
            denominator = denominator[..., 1:]

            increment = (high_precision_data - shifted_means) * (high_precision_data - causal_means)
            increment = increment * high_precision_weights
            m_2 = torch.cumsum(torch.cat([previous_m_2, increment], dim=-1), dim=-1)[..., 1:]

            if use_bessel_correction:
                causal_variance = m_2 / torch.clamp(denominator - 1.0, min=1.0)
            else:
                causal_variance = m_2 / denominator
            causal_scale = torch.sqrt(causal_variance + minimum_scale)

            if stabilize_with_global:
                if start:
                    prefix_mask = torch.zeros_like(weights)
                    prefix_mask[..., :prefix_length] = 1.0
                    weighted_prefix = weighted_data * prefix_mask
                    prefix_weights = weights * prefix_mask
                    prefix_padding_mask = padding_mask * prefix_mask
                    global_denominator = (prefix_weights * prefix_padding_mask).sum(-1, keepdim=True).clamp_min(1.0)
                    global_means = torch.nan_to_num(weighted_prefix.sum(-1, keepdim=True) / global_denominator)
                    global_variance = (
                        ((high_precision_data - global_means) * prefix_weights * prefix_padding_mask) ** 2
                    ).sum(-1, keepdim=True) / global_denominator
                    global_scale = torch.sqrt(global_variance + minimum_scale)

                expanded_global_scale = global_scale.expand_as(causal_scale)
                min_allowed_scale = expanded_global_scale * 10.0 ** (-scale_factor_exponent)
                max_allowed_scale = expanded_global_scale * 10.0**scale_factor_exponent
                causal_scale = torch.clamp(
                    causal_scale,
                    min=torch.max(torch.tensor(minimum_scale, device=causal_scale.device), min_allowed_scale),
                    max=max_allowed_scale,
                )

            stats.copy_(torch.stack([cum_weights[..., -1:], cum_values[..., -1:], m_2[..., -1:], global_scale]))
        finally:
            if prev_deterministic and data.device.type == "cuda":
                torch.use_deterministic_algorithms(True)

        return causal_means.to(data.dtype), causal_scale.to(data.dtype)
'''

_STREAM_GLOBAL = '''\
def stream(
    self,
    stats: torch.Tensor,
    data: torch.Tensor,
    padding_mask: torch.Tensor,
    weights: torch.Tensor,
    prefix_length: int | None = None,
    start: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``__call__`` for ``data`` that continues a series, without the earlier points.

    The statistics come from the first ``prefix_length`` points only, so they are fixed once the
    series starts (``start=True``): they are kept in ``stats`` (updated in place).
    """
    if start:
        if prefix_length is None or prefix_length > data.shape[-1] or self.dim != -1 or not self.keepdim:
            raise ValueError("{cls}.stream needs prefix_length <= the first call's length, dim=-1, keepdim")
        scaled, loc, scale = self(data, padding_mask, weights, prefix_length)
        stats[0].copy_(loc)
        stats[1].copy_(scale)
        return scaled, loc, scale
    loc, scale = stats[0].to(data.dtype), stats[1].to(data.dtype)
    return (data - loc) / scale, loc, scale
'''

_STREAM_SIGNATURE = ("def stream(self, stats: torch.Tensor, data: torch.Tensor, padding_mask: torch.Tensor, "
                     "weights: torch.Tensor, prefix_length: int | None = None, start: bool = False):\n"
                     '    """``__call__`` for ``data`` that continues a series, from running statistics in '
                     '``stats``."""\n'
                     "    pass\n")


def _params(fn: cst.FunctionDef) -> tuple[str, ...]:
    return tuple(p.name.value for p in fn.params.params)


def causal_functions(module: cst.Module) -> list[str]:
    """Module-level causal-statistics functions (the parameters above, cumsum accumulation)."""
    return [st.name.value for st in module.body if isinstance(st, cst.FunctionDef)
            and _params(st) == CAUSAL_PARAMS and "torch.cumsum" in code(st) and "prefix_mask" in code(st)]


def _calls(node, names: set[str]) -> list[cst.Call]:
    out = []

    class V(cst.CSTVisitor):
        def visit_Call(self, n):
            if dotted(n.func) in names:
                out.append(n)

    node.visit(V())
    return out


def scaler_classes(module: cst.Module) -> list[cst.ClassDef]:
    """Classes whose ``__call__`` takes ``(data, padding_mask, weights, prefix_length)``."""
    return [st for st in module.body if isinstance(st, cst.ClassDef) and find_method(st, "__call__") is not None
            and _params(find_method(st, "__call__")) == CALL_PARAMS]


def _kind(cls: cst.ClassDef, functions: set[str]) -> str | None:
    call = find_method(cls, "__call__")
    if len(_calls(call, functions)) == 1:
        return "causal"
    text = code(call)
    if not _calls(call, functions) and "prefix_mask" in text and "return (data - loc) / scale, loc, scale" in text:
        return "global"
    return None


def streamable(module: cst.Module) -> str:
    """'' if every scaler class of ``module`` can stream, else why not."""
    functions = set(causal_functions(module))
    for cls in scaler_classes(module):
        if _kind(cls, functions) is None:
            return f"scaler {cls.name.value} reads the history in a way the recipe cannot stream"
    return ""


class _SwapCall(cst.CSTTransformer):
    def __init__(self, functions: set[str]):
        self.functions = functions

    def leave_Call(self, original, updated):
        name = dotted(updated.func)
        if name not in self.functions:
            return updated
        comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        args = [a.with_changes(comma=comma) for a in updated.args]
        return updated.with_changes(func=cst.Name(f"stream_{name}"),
                                    args=[cst.Arg(cst.Name("stats"), comma=comma), *args, cst.Arg(cst.Name("start"))])


def _stream_method(cls: cst.ClassDef, kind: str, functions: set[str]) -> cst.FunctionDef:
    if kind == "global":
        fn = cst.parse_module(_STREAM_GLOBAL.format(cls=cls.name.value)).body[0]
    else:
        call = find_method(cls, "__call__")
        sig = cst.ensure_type(stmt(_STREAM_SIGNATURE), cst.FunctionDef)
        doc = sig.body.body[0]
        body = call.visit(_SwapCall(functions)).body
        inner = list(body.body)
        if inner and code(inner[0]).lstrip().startswith(('"""', "'''", '"', "'")):
            inner = inner[1:]
        fn = sig.with_changes(body=body.with_changes(body=(doc, *inner)), returns=call.returns)
    return cst.ensure_type(fn, cst.FunctionDef).with_changes(leading_lines=[cst.EmptyLine(indent=False)])


def rewrite_scalers(module: cst.Module) -> cst.Module:
    """Add ``stream_<fn>`` after each causal-statistics function and ``stream`` to each scaler class."""
    functions = set(causal_functions(module))
    body = []
    classes = {cls.name.value for cls in scaler_classes(module)}
    for st in module.body:
        if isinstance(st, cst.ClassDef) and st.name.value in classes:
            kind = _kind(st, functions)
            members = list(st.body.body)
            if kind and not find_method(st, "stream"):
                members.append(_stream_method(st, kind, functions))
            st = st.with_changes(body=st.body.with_changes(body=tuple(members)))
        body.append(st)
        if isinstance(st, cst.FunctionDef) and st.name.value in functions:
            new = stmts(_STREAM_CAUSAL.format(name=st.name.value))[0]
            body.append(new.with_changes(leading_lines=[cst.EmptyLine(indent=False), cst.EmptyLine(indent=False)]))
    return module.with_changes(body=tuple(body))
