"""``cnndsl import MODULE:FACTORY(ARGS)``: a model from a Python factory → a cnndsl spec.

The factory is named on the command line — the user's explicit choice, like ``python -c``: its
module is imported and the factory called, which runs that package's code. Arguments are Python
literals read with :func:`ast.literal_eval` (numbers, strings, booleans, None, lists, tuples,
dicts), never evaluated. Nothing in a spec ever leads here: specs name backbones from a fixed
catalogue (:mod:`cnndsl.backbone`), this importer only runs for the command line.

The model is built on the meta device when the factory allows (no memory, no initialisation),
traced by the same translator that gives backbones their static analysis
(:func:`cnndsl.translate.fx.translate`, the whole model: no cut), and written as a spec by
:mod:`cnndsl.translate.to_spec`. :func:`round_trip` proves an import: the spec compiled by cnndsl
loads the model's state_dict strictly and gives the same outputs.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from typing import Any

from ..errors import CnnError, did_you_mean, error
from ..ir import Spec
from .flow import ImportBlocked

DEFAULT_INPUT = (3, 224, 224)


@dataclass(frozen=True)
class Factory:
    """``package.module:factory(args)`` as written: where the factory lives and its arguments."""

    module: str
    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.module}:{self.name}" + (f"({', '.join(parts)})" if parts else "")


_HINT = "write MODULE:FACTORY or MODULE:FACTORY(ARGS), e.g. torchvision.models:resnet18(num_classes=10)"


def parse_factory(text: str) -> Factory:
    """Read ``torchvision:resnet18(num_classes=10)``; arguments must be Python literals."""
    module, sep, call = text.strip().partition(":")
    if not sep or not module or not call:
        raise error(f"MODEL: expected MODULE:FACTORY, got {text!r}", None, _HINT)
    if not all(p.isidentifier() for p in module.split(".")):
        raise error(f"MODEL: {module!r} is not a module name", None, _HINT)
    try:
        tree = ast.parse(call.strip(), mode="eval").body
    except SyntaxError as exc:
        raise error(f"MODEL: cannot read {call!r}: {exc.msg}", None, _HINT) from None
    node = tree.func if isinstance(tree, ast.Call) else tree
    name = _dotted(node)
    if name is None:
        raise error(f"MODEL: {call!r} does not name a factory", None, _HINT)
    if not isinstance(tree, ast.Call):
        return Factory(module, name)
    try:
        args = tuple(ast.literal_eval(a) for a in tree.args)
        kwargs = tuple((k.arg, ast.literal_eval(k.value)) for k in tree.keywords if k.arg is not None)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise error(f"MODEL: the arguments of {call!r} must be literals (numbers, strings, True/False/None, "
                    "lists, tuples, dicts)", None, "arguments are read as data, never evaluated") from None
    if any(k.arg is None for k in tree.keywords) or any(isinstance(a, ast.Starred) for a in tree.args):
        raise error(f"MODEL: {call!r} unpacks arguments (* or **)", None, "write each argument out")
    return Factory(module, name, args, kwargs)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def find_factory(f: Factory) -> Any:
    """The callable ``f`` names (``torchvision:X`` also looks in ``torchvision.models``)."""
    try:
        mod = importlib.import_module(f.module)
    except ImportError as exc:
        raise error(f"MODEL: cannot import module '{f.module}': {exc}", None,
                    "the module must be installed in the Python cnndsl runs with") from None
    places = [mod]
    if f.module == "torchvision":
        places.append(importlib.import_module("torchvision.models"))
    for place in places:
        obj: Any = place
        for part in f.name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None and callable(obj):
            return obj
    choices = [n for p in places for n in dir(p) if not n.startswith("_")]
    raise error(f"MODEL: module '{f.module}' has no factory '{f.name}'", None,
                did_you_mean(f.name, choices) or f"see dir({f.module}) for what it defines")


def make_model(f: Factory, device: str = "meta") -> Any:
    """Call the factory (on ``device`` when it allows; else on the CPU); an nn.Module or an error."""
    import torch
    from torch import nn

    factory = find_factory(f)
    try:
        with torch.device(device):
            model = factory(*f.args, **dict(f.kwargs))
    except CnnError:
        raise
    except Exception as exc:   # the factory is the user's code: any failure is a user error
        if device != "cpu":
            return make_model(f, "cpu")
        raise error(f"MODEL: {f} failed: {type(exc).__name__}: {exc}", None,
                    "check the factory's arguments") from None
    if not isinstance(model, nn.Module):
        raise error(f"MODEL: {f} returned a {type(model).__name__}, not a torch.nn.Module", None, _HINT)
    return model.eval()


def import_spec(f: Factory, input_shape: tuple[int, ...] = DEFAULT_INPUT, model: Any = None) -> Spec:
    """The spec of the model ``f`` makes, traced at ``input_shape`` (C×H×W)."""
    from .fx import node_names, translate
    from .to_spec import translation_to_spec

    model = make_model(f) if model is None else model
    try:
        names = node_names(model)
        t = translate(model, tuple(input_shape), [names[-1]], source=f.module, name=f.name)
    except CnnError:
        raise
    except Exception as exc:
        raise error(f"MODEL: torch.fx cannot trace {f}: {type(exc).__name__}: {_first_line(exc)}", None,
                    "the model's forward must be traceable by torch.fx (no data-dependent control flow)") from None
    if t.dropped:
        raise error(f"MODEL: {f}: its forward (eval mode) does not use {len(t.dropped)} state_dict entries "
                    f"({', '.join(t.dropped[:3])}{', ...' if len(t.dropped) > 3 else ''})", None,
                    "a spec holds only what the forward uses, so the state_dict would not load: make the model "
                    "without the parts it does not run (GoogLeNet, Inception v3: aux_logits=False)")
    try:
        return translation_to_spec(t, network_name(f))
    except ImportBlocked as exc:
        raise error(f"MODEL: {f} cannot be written as a spec: node '{exc.node}': {exc.reason}", None,
                    exc.hint) from None


def network_name(f: Factory) -> str:
    """The factory's name, or the model a generic factory is asked for (``create_model('resnet18')``)."""
    if f.args and isinstance(f.args[0], str) and f.args[0].isidentifier():
        return f.args[0]
    return f.name.rsplit(".", 1)[-1]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def round_trip(spec_text: str, model: Any, input_shape: tuple[int, ...], fmt: str = "cnn",
               seed: int = 0) -> dict[str, Any]:
    """Compile ``spec_text``, load ``model``'s state_dict strictly, compare eval outputs on two random
    inputs. The compiled network is made on the meta device and filled by the load (no second
    initialisation). Returns ``{"layout": bool, "outputs": bool, "max_diff": float}``; raises what
    the load raises."""
    import torch

    from ..api import build, parse

    torch.manual_seed(seed)
    with torch.device("meta"):
        built = build(parse(spec_text, format=fmt))
    built = built.to_empty(device="cpu").eval()
    sd = model.state_dict()
    mine = built.state_dict()
    layout = [(k, tuple(v.shape)) for k, v in sd.items()] == [(k, tuple(v.shape)) for k, v in mine.items()]
    built.load_state_dict(sd, strict=True)
    x = torch.randn(2, *input_shape)
    with torch.no_grad():
        want, got = model.eval()(x), built(x)
    diff = float((want - got).abs().max())
    ok = torch.allclose(want, got, rtol=1e-4, atol=1e-5)
    return {"layout": layout, "outputs": bool(ok), "max_diff": diff}
