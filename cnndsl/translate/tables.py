"""How torch modules, functions and tensor methods map to cnndsl ops: three tables.

Each entry turns what torch.fx recorded into ``(op name, arguments)`` — the arguments named as the
cnndsl op names them — or ``None`` when this particular call has no cnndsl equivalent (the node
then stays opaque). The translator checks every result against the traced shapes and the module's
parameters, so an entry only has to be right about the arguments it reads.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.fx import Node
from torchvision.models.convnext import LayerNorm2d
from torchvision.ops import Permute, StochasticDepth

Step = tuple[str, dict[str, Any]]
# one op, or a chain of ops the node stands for (``x.mean([2, 3])``: global_avgpool, then flatten)
Translated = Step | list[Step] | None


def pair(v: Any) -> Any:
    """A kernel/stride/... as one number when both axes agree, else [h, w]."""
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return int(v[0])
        if len(v) != 2:
            raise ValueError(v)
        return int(v[0]) if v[0] == v[1] else [int(v[0]), int(v[1])]
    return int(v)


def _is_tensor(v: Any) -> bool:
    return isinstance(v, Node)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ----------------------------------------------------------------------------- modules


def _conv(m: nn.Conv2d) -> Translated:
    padding = m.padding if isinstance(m.padding, str) else pair(m.padding)
    return "conv", {"out": m.out_channels, "kernel": pair(m.kernel_size), "stride": pair(m.stride),
                    "padding": padding, "dilation": pair(m.dilation), "groups": m.groups,
                    "bias": m.bias is not None, "padding_mode": m.padding_mode}


def _conv_transpose(m: nn.ConvTranspose2d) -> Translated:
    if isinstance(m.padding, str):
        return None
    return "conv_transpose", {"out": m.out_channels, "kernel": pair(m.kernel_size), "stride": pair(m.stride),
                              "padding": pair(m.padding), "output_padding": pair(m.output_padding),
                              "dilation": pair(m.dilation), "groups": m.groups, "bias": m.bias is not None}


def _batchnorm(m: nn.modules.batchnorm._BatchNorm) -> Translated:
    return "batchnorm", {"eps": float(m.eps), "momentum": m.momentum, "affine": m.affine,
                         "track_running_stats": m.track_running_stats}


def _groupnorm(m: nn.GroupNorm) -> Translated:
    return "groupnorm", {"groups": m.num_groups, "eps": float(m.eps), "affine": m.affine}


def _layernorm(m: nn.LayerNorm) -> Translated:
    return "layernorm", {"dims": len(m.normalized_shape), "eps": float(m.eps), "affine": m.elementwise_affine}


def _instancenorm(m: nn.InstanceNorm2d) -> Translated:
    if m.track_running_stats:
        return None
    return "instancenorm", {"eps": float(m.eps), "affine": m.affine}


def _maxpool(m: nn.MaxPool2d) -> Translated:
    if m.return_indices:
        return None
    return "maxpool", {"kernel": pair(m.kernel_size), "stride": pair(m.stride), "padding": pair(m.padding),
                       "dilation": pair(m.dilation), "ceil_mode": m.ceil_mode}


def _avgpool(m: nn.AvgPool2d) -> Translated:
    if m.divisor_override is not None:
        return None
    return "avgpool", {"kernel": pair(m.kernel_size), "stride": pair(m.stride), "padding": pair(m.padding),
                       "ceil_mode": m.ceil_mode, "count_include_pad": m.count_include_pad}


def _adaptive(kind: str) -> Callable[[Any], Translated]:
    def tr(m: Any) -> Translated:
        return _adaptive_size(kind, m.output_size)
    return tr


def _adaptive_size(kind: str, size: Any) -> Translated:
    sizes = size if isinstance(size, (tuple, list)) else (size, size)
    if len(sizes) != 2 or any(s is None for s in sizes):
        return None
    if tuple(sizes) == (1, 1):
        return f"global_{kind}pool", {}
    return f"adaptive_{kind}pool", {"size": pair(sizes)}


def _layernorm2d(m: LayerNorm2d) -> Translated:
    if len(m.normalized_shape) != 1:
        return None
    return "layernorm2d", {"eps": float(m.eps), "affine": m.elementwise_affine}


def _linear(m: nn.Linear) -> Translated:
    return "linear", {"out": m.out_features, "bias": m.bias is not None}


def _flatten(m: nn.Flatten) -> Translated:
    return ("flatten", {}) if (m.start_dim, m.end_dim) == (1, -1) else None


def _upsample(m: nn.Upsample) -> Translated:
    return _interpolate(m.size, m.scale_factor, m.mode, m.align_corners)


def _interpolate(size: Any, scale: Any, mode: str, align_corners: Any) -> Translated:
    if mode not in ("nearest", "bilinear", "bicubic"):
        return None
    args: dict[str, Any] = {"mode": mode}
    if align_corners is not None and mode != "nearest":
        args["align_corners"] = bool(align_corners)
    if size is not None:
        args["size"] = pair(size)
    elif scale is not None:
        scales = scale if isinstance(scale, (tuple, list)) else (scale, scale)
        if any(float(s) != int(s) for s in scales):
            return None
        args["scale"] = pair([int(s) for s in scales])
    else:
        return None
    return "upsample", args


def _act(op: str, **fields: str) -> Callable[[Any], Translated]:
    """An activation module: ``fields`` maps op argument → module attribute."""
    def tr(m: Any) -> Translated:
        return op, {k: getattr(m, attr) for k, attr in fields.items()}
    return tr


def _softplus(m: nn.Softplus) -> Translated:
    return ("softplus", {}) if (m.beta, m.threshold) == (1, 20) else None


def _prelu(m: nn.PReLU) -> Translated:
    return "prelu", {"per_channel": m.num_parameters > 1}


def _softmax(op: str) -> Callable[[Any], Translated]:
    def tr(m: Any) -> Translated:
        return None if m.dim is None else (op, {"dim": m.dim})
    return tr


MODULES: dict[type, Callable[[Any], Translated]] = {
    nn.Conv2d: _conv, nn.ConvTranspose2d: _conv_transpose,
    nn.BatchNorm2d: _batchnorm, nn.BatchNorm1d: _batchnorm, nn.GroupNorm: _groupnorm,
    nn.LayerNorm: _layernorm, LayerNorm2d: _layernorm2d, nn.InstanceNorm2d: _instancenorm,
    nn.MaxPool2d: _maxpool, nn.AvgPool2d: _avgpool,
    nn.AdaptiveAvgPool2d: _adaptive("avg"), nn.AdaptiveMaxPool2d: _adaptive("max"),
    nn.Linear: _linear, nn.Flatten: _flatten, nn.Upsample: _upsample,
    nn.Dropout: _act("dropout", p="p"), nn.Dropout2d: _act("dropout2d", p="p"),
    nn.ReLU: _act("relu"), nn.ReLU6: _act("relu6"), nn.SiLU: _act("silu"), nn.Sigmoid: _act("sigmoid"),
    nn.Tanh: _act("tanh"), nn.Hardswish: _act("hardswish"), nn.Hardsigmoid: _act("hardsigmoid"),
    nn.Mish: _act("mish"), nn.Identity: _act("identity"), nn.GELU: _act("gelu", approximate="approximate"),
    nn.LeakyReLU: _act("leaky_relu", slope="negative_slope"), nn.ELU: _act("elu", alpha="alpha"),
    nn.CELU: _act("celu", alpha="alpha"), nn.Softplus: _softplus, nn.PReLU: _prelu,
    nn.Softmax: _softmax("softmax"), nn.LogSoftmax: _softmax("log_softmax"),
    StochasticDepth: _act("stochastic_depth", p="p", mode="mode"), Permute: _act("permute", dims="dims"),
    nn.ChannelShuffle: _act("channel_shuffle", groups="groups"),
}


# ----------------------------------------------------------------------------- functions and methods


def _bind(args: tuple, kwargs: dict, names: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any] | None:
    """Positional and keyword arguments by parameter name (None when they do not fit)."""
    if len(args) > len(names):
        return None
    bound = dict(defaults)
    bound.update(zip(names, args))
    for k, v in kwargs.items():
        if k not in names:
            return None
        bound[k] = v
    return bound if all(n in bound for n in names) else None


def _parameter(v: Any) -> bool:
    """A parameter read outside a module call (``self.layer_scale``: a get_attr node)."""
    return _is_tensor(v) and v.op == "get_attr"


def _layer_scale(param: Node) -> Translated:
    """ConvNeXt's ``self.layer_scale * x``: ``layer_scale``, its initial value read when the
    parameter holds one value everywhere (not on the meta device: the op's default then)."""
    owner = param.graph.owning_module
    value = owner.get_parameter(param.target) if owner is not None else None
    if value is None or value.is_meta or value.numel() == 0 or not bool((value == value.flatten()[0]).all()):
        return "layer_scale", {}
    return "layer_scale", {"init": float(value.detach().flatten()[0])}


def _merge(op: str, scale_op: str | None) -> Callable[[tuple, dict], Translated]:
    """``a + b`` / ``a * b`` of two tensors; ``a * 0.5`` → ``mul(0.5)``; ``parameter * x`` →
    ``layer_scale`` (the translator checks the parameter's shape)."""
    def tr(args: tuple, kwargs: dict) -> Translated:
        if kwargs or len(args) != 2:
            return None
        a, b = args
        if scale_op and _is_tensor(a) and _is_tensor(b) and _parameter(a) != _parameter(b):
            return _layer_scale(a if _parameter(a) else b)
        if _is_tensor(a) and _is_tensor(b):
            return op, {}
        if scale_op and _number(b) and _is_tensor(a) or scale_op and _number(a) and _is_tensor(b):
            return scale_op, {"factor": float(b if _number(b) else a)}
        return None
    return tr


def _cat(args: tuple, kwargs: dict) -> Translated:
    b = _bind(args, kwargs, ("tensors", "dim"), {"dim": 0})
    if b is None or b["dim"] not in (1, -3) or not all(_is_tensor(t) for t in b["tensors"]):
        return None
    return ("concat", {}) if len(b["tensors"]) > 1 else ("identity", {})   # DenseNet's cat([x])


def _flatten_fn(default_start: int) -> Callable[[tuple, dict], Translated]:
    def tr(args: tuple, kwargs: dict) -> Translated:
        b = _bind(args, kwargs, ("input", "start_dim", "end_dim"), {"start_dim": default_start, "end_dim": -1})
        return ("flatten", {}) if b is not None and (b["start_dim"], b["end_dim"]) == (1, -1) else None
    return tr


def _unary(op: str, extra: tuple[str, ...] = (), defaults: dict[str, Any] | None = None,
           fields: dict[str, str] | None = None) -> Callable[[tuple, dict], Translated]:
    """An elementwise function ``f(x, *extra)``; ``fields`` maps op argument → function argument."""
    def tr(args: tuple, kwargs: dict) -> Translated:
        b = _bind(args, kwargs, ("input", *extra), {"inplace": False, **(defaults or {})})
        if b is None:
            return None
        return op, {k: b[a] for k, a in (fields or {}).items()}
    return tr


def _adaptive_fn(kind: str) -> Callable[[tuple, dict], Translated]:
    def tr(args: tuple, kwargs: dict) -> Translated:
        b = _bind(args, kwargs, ("input", "output_size", "return_indices"), {"return_indices": False})
        return None if b is None or b["return_indices"] else _adaptive_size(kind, b["output_size"])
    return tr


def _max_pool_fn(args: tuple, kwargs: dict) -> Translated:
    b = _bind(args, kwargs, ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
              {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False})
    if b is None or b["return_indices"]:
        return None
    stride = b["stride"] if b["stride"] not in (None, [], ()) else b["kernel_size"]
    return "maxpool", {"kernel": pair(b["kernel_size"]), "stride": pair(stride), "padding": pair(b["padding"]),
                       "dilation": pair(b["dilation"]), "ceil_mode": bool(b["ceil_mode"])}


def _avg_pool_fn(args: tuple, kwargs: dict) -> Translated:
    b = _bind(args, kwargs, ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                             "divisor_override"),
              {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None})
    if b is None or b["divisor_override"] is not None:
        return None
    stride = b["stride"] if b["stride"] not in (None, [], ()) else b["kernel_size"]
    return "avgpool", {"kernel": pair(b["kernel_size"]), "stride": pair(stride), "padding": pair(b["padding"]),
                       "ceil_mode": bool(b["ceil_mode"]), "count_include_pad": bool(b["count_include_pad"])}


def _dropout_fn(op: str) -> Callable[[tuple, dict], Translated]:
    def tr(args: tuple, kwargs: dict) -> Translated:
        b = _bind(args, kwargs, ("input", "p", "training", "inplace"), {"p": 0.5, "training": True, "inplace": False})
        return None if b is None else (op, {"p": float(b["p"])})
    return tr


def _interpolate_fn(args: tuple, kwargs: dict) -> Translated:
    b = _bind(args, kwargs, ("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor",
                             "antialias"),
              {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None,
               "recompute_scale_factor": None, "antialias": False})
    if b is None or b["antialias"]:
        return None
    return _interpolate(b["size"], b["scale_factor"], b["mode"], b["align_corners"])


def _mean(args: tuple, kwargs: dict) -> Translated:
    """The mean over H and W: ``global_avgpool``, then ``flatten`` unless ``keepdim`` (MNASNet's and
    ShuffleNetV2's ``x.mean([2, 3])``)."""
    b = _bind(args, kwargs, ("input", "dim", "keepdim", "dtype"), {"keepdim": False, "dtype": None})
    if b is None or b["dtype"] is not None:
        return None
    dims = b["dim"] if isinstance(b["dim"], (list, tuple)) else (b["dim"],)
    if sorted(dims) not in ([2, 3], [-2, -1]):
        return None
    return ("global_avgpool", {}) if b["keepdim"] else [("global_avgpool", {}), ("flatten", {})]


def _permute(args: tuple, kwargs: dict) -> Translated:
    """``torch.permute(x, [0, 2, 3, 1])``, ``x.permute(0, 2, 3, 1)``."""
    if len(args) > 2 or (len(args) == 2 and not isinstance(args[1], (list, tuple))):
        dims, rest = args[1:], kwargs
    else:
        b = _bind(args, kwargs, ("input", "dims"), {})
        if b is None:
            return None
        dims, rest = b["dims"], {}
    if rest or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        return None
    rank = len(dims)
    return "permute", {"dims": [d % rank for d in dims]}


def _channel_shuffle(args: tuple, kwargs: dict) -> Translated:
    b = _bind(args, kwargs, ("input", "groups"), {})
    return None if b is None or not isinstance(b["groups"], int) else ("channel_shuffle", {"groups": b["groups"]})


# functions and methods whose value is several tensors that getitem reads: a channel split is not
# a node of its own (its parts are narrow nodes of its input)
PARTS = frozenset({"Tensor.chunk", "Tensor.split", "torch.chunk", "torch.split", "torch.functional.split"})


def _getitem(args: tuple, kwargs: dict) -> Translated:
    """A part of ``x.chunk(2, dim=1)`` / ``x.split(...)``: ``narrow(start, length)`` of ``x``. The
    parts' traced shapes say where each starts; they must differ from ``x`` in the channels only."""
    if kwargs or len(args) != 2 or not _is_tensor(args[0]) or not isinstance(args[1], int):
        return None
    parts_node, i = args
    if node_target(parts_node) not in PARTS:
        return None
    parts = parts_node.meta.get("tensor_meta")
    source = next((a for a in parts_node.args if _is_tensor(a)), None)
    whole = source.meta.get("tensor_meta") if source is not None else None
    if not isinstance(parts, (list, tuple)) or whole is None or not hasattr(whole, "shape") or \
            not -len(parts) <= i < len(parts):
        return None
    shapes = [tuple(p.shape) for p in parts]
    full = tuple(whole.shape)
    if len(full) < 2 or any(len(s) != len(full) or s[:1] + s[2:] != full[:1] + full[2:] for s in shapes) \
            or sum(s[1] for s in shapes) != full[1]:
        return None
    i %= len(parts)
    return "narrow", {"start": sum(s[1] for s in shapes[:i]), "length": shapes[i][1]}


def _identity(args: tuple, kwargs: dict) -> Translated:
    return ("identity", {}) if len(args) == 1 and not kwargs else None


FUNCTIONS: dict[Any, Callable[[tuple, dict], Translated]] = {
    operator.add: _merge("add", None), operator.iadd: _merge("add", None), torch.add: _merge("add", None),
    operator.mul: _merge("multiply", "mul"), operator.imul: _merge("multiply", "mul"),
    torch.mul: _merge("multiply", "mul"),
    torch.cat: _cat, torch.concat: _cat, torch.flatten: _flatten_fn(0),
    torch.relu: _unary("relu"), F.relu: _unary("relu", ("inplace",)), F.relu6: _unary("relu6", ("inplace",)),
    F.silu: _unary("silu", ("inplace",)), F.hardswish: _unary("hardswish", ("inplace",)),
    F.hardsigmoid: _unary("hardsigmoid", ("inplace",)), F.mish: _unary("mish", ("inplace",)),
    torch.sigmoid: _unary("sigmoid"), F.sigmoid: _unary("sigmoid"), torch.tanh: _unary("tanh"),
    F.gelu: _unary("gelu", ("approximate",), {"approximate": "none"}, {"approximate": "approximate"}),
    F.leaky_relu: _unary("leaky_relu", ("negative_slope", "inplace"), {"negative_slope": 0.01},
                         {"slope": "negative_slope"}),
    F.adaptive_avg_pool2d: _adaptive_fn("avg"), F.adaptive_max_pool2d: _adaptive_fn("max"),
    F.max_pool2d: _max_pool_fn, F.avg_pool2d: _avg_pool_fn,
    F.dropout: _dropout_fn("dropout"), F.dropout2d: _dropout_fn("dropout2d"),
    F.interpolate: _interpolate_fn, torch.mean: _mean, torch.permute: _permute,
    torch.channel_shuffle: _channel_shuffle, operator.getitem: _getitem,
}

METHODS: dict[str, Callable[[tuple, dict], Translated]] = {
    "relu": _unary("relu"), "relu_": _unary("relu"), "sigmoid": _unary("sigmoid"), "tanh": _unary("tanh"),
    "flatten": _flatten_fn(0), "mean": _mean, "add": _merge("add", None), "add_": _merge("add", None),
    "mul": _merge("multiply", "mul"), "mul_": _merge("multiply", "mul"), "contiguous": _identity,
    "permute": _permute,
}


def node_target(node: Node) -> str:
    """What a node calls, as records name it: ``Tensor.chunk``, ``torch.flatten``, a module's path."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    return function_name(node.target) if node.op == "call_function" else str(node.target)


def function_name(target: Any) -> str:
    """``torch.flatten``, ``operator.add``, ``torch.nn.functional.relu`` — for display and records."""
    module = getattr(target, "__module__", None) or "torch"
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
    if module in ("_operator",):
        module = "operator"
    if name.startswith("_VariableFunctionsClass.") or module.startswith("torch._C"):
        module, name = "torch", name.rsplit(".", 1)[-1]
    return f"{module}.{name}"
