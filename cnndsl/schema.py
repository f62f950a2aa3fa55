"""The JSON Schema of the YAML syntax, for editors (completion, validation, hover).

Generated from the same sources the compiler uses, so it follows them: each op's arguments from the
op's pydantic schema in the REGISTRY (with its short aliases, and expressions allowed wherever a
value goes), the ``train`` section from :mod:`cnndsl.train.config`'s models, and the structure —
top-level keys, blocks, network, items with their meta keys, compound items — from the pydantic
models below, which describe the shapes :mod:`cnndsl.syntax.yaml_load` reads by hand.

The schema is JSON Schema draft-07, the newest draft the YAML language server fully supports.
It is a little looser than ``cnndsl check`` where JSON Schema cannot see far enough: block calls are
keys that start with a capital letter (blocks are defined in this or an imported file), and any
string is accepted where an expression may stand. ``cnndsl check`` (and ``cnndsl lsp``) report the rest.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

DRAFT = "http://json-schema.org/draft-07/schema#"
BLOCK_NAME = r"^[A-Z][A-Za-z0-9_]*$"
IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
MODULE_NAME = r"^(?:[A-Za-z0-9_-]|\{[^{}]*\})+$"   # a quoted name ("block1-0") or a computed one
META = ("name", "repeat", "as", "when")
COMPOUND = ("group", "residual", "parallel", "from", "concat", "add", "multiply", "chunk", "split")
EXPR = {"type": "string", "description": "an expression over parameters, e.g. \"2 * width\" or \"in.channels\""}

# ----------------------------------------------------------------------------- the YAML structure

Scalar = Union[int, float, bool, str, None]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BlockYaml(_Strict):
    """A block definition: its parameters (null: required) and its layers."""

    params: Optional[dict[str, Any]] = Field(None, description="name: default (null: the caller must pass it)")
    layers: Optional[list[Any]] = Field(None, description="the block's items")


class NetworkYaml(_Strict):
    """The network: input shape, parameters, layers, outputs, frozen parameters."""

    name: Optional[str] = Field(None, description="the network's name (default: Network)")
    params: Optional[dict[str, Any]] = Field(None, description="name: default; override with --set name=value")
    extends: Optional[Union[str, dict[str, Any]]] = Field(
        None, description="an imported network whose layers come first: ResNet18, or {ResNet18: {num_classes: 10}}")
    input: Optional[Union[str, int, list[Union[int, str]]]] = Field(
        None, description="input shape: 3x32x32, or [3, size, size] with expressions (inherited with extends)")
    layers: Optional[list[Any]] = Field(None, description="the network's items, in order")
    outputs: Optional[list[Union[str, int]]] = Field(None, description="named outputs (default: the last item)")
    freeze: Optional[list[str]] = Field(None, description="globs of parameter names to freeze")
    unfreeze: Optional[list[str]] = Field(None, description="globs of parameter names to unfreeze again")
    init: Optional[Union[str, "InitYaml"]] = Field(
        None, description="weights the network starts from, by name: a file, a run directory or torchvision:MODEL.WEIGHTS")


class InitYaml(_Strict):
    """``init: {source: ..., strict: false}``."""

    source: str = Field(description="a file, a run directory or torchvision:MODEL[.WEIGHTS]")
    strict: Optional[bool] = Field(None, description="false: load the keys that match by name, report the rest")


class BackboneYaml(_Strict):
    """A backbone with options (see docs/language.md §20)."""

    model: str = Field(description="a torchvision model (resnet18), timm.NAME, or a cnndsl spec's path")
    weights: Optional[str] = Field(None, description="DEFAULT, a weights name (IMAGENET1K_V1), a file or a run directory")
    until: Optional[str] = Field(None, description="cut after this node (default: drop the final classifier)")
    taps: Optional[list[str]] = Field(None, description="return these nodes (multi-scale heads)")
    strict: Optional[bool] = Field(None, description="false: load the weights that match by name")
    args: Optional[dict[str, Scalar]] = Field(None, description="the model's constructor arguments / the spec's parameters")


class SpecYaml(_Strict):
    """A cnndsl spec in YAML (the twin of a .cnn file)."""

    imports: Optional[list[str]] = Field(None, description="files whose blocks this spec uses (relative paths)")
    blocks: Optional[dict[str, BlockYaml]] = Field(None, description="block definitions, by name")
    network: Optional[NetworkYaml] = None
    train: Optional[dict[str, Any]] = Field(None, description="the train section (see docs/training.md)")


# ----------------------------------------------------------------------------- generation


def json_schema() -> dict[str, Any]:
    """The complete schema (a fresh dict)."""
    from .ops import REGISTRY

    defs: dict[str, Any] = {}
    top = _draft7(SpecYaml.model_json_schema(ref_template="#/definitions/{model}"), defs)
    for sub in (top, defs["NetworkYaml"], defs["BlockYaml"]):
        _not_null(sub["properties"])
    ops = {name: cls for name, cls in sorted(REGISTRY.items()) if name not in COMPOUND}
    for name, cls in ops.items():
        defs[f"op.{name}"] = _op_args(cls, defs)
    defs["item"] = _item(ops)
    defs["items"] = {"type": "array", "items": {"$ref": "#/definitions/item"}}
    defs["BlockYaml"]["properties"]["layers"] = {"$ref": "#/definitions/items", "description": "the block's items"}
    defs["BlockYaml"]["properties"]["params"] = _params_schema()
    net = defs["NetworkYaml"]["properties"]
    net["layers"] = {"$ref": "#/definitions/items", "description": "the network's items, in order"}
    net["params"] = _params_schema()
    net["input"]["anyOf"][0]["pattern"] = r"^\d+(x\d+)*$"
    top["properties"]["blocks"]["propertyNames"] = {"pattern": IDENT}
    top["properties"]["train"] = {"$ref": "#/definitions/train"}
    defs["train"] = _train_schema(defs)
    top.update({"$schema": DRAFT, "title": "cnndsl spec (YAML)", "definitions": defs})
    return top


def write_schema(path: str | None) -> str:
    text = json.dumps(json_schema(), indent=1, sort_keys=True) + "\n"
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return text


def _not_null(props: dict[str, Any]) -> None:
    """Optional keys may be left out, but not written as null (the loader refuses that)."""
    for key, sub in props.items():
        alts = [a for a in sub.get("anyOf", []) if a != {"type": "null"}]
        if len(alts) == 1:
            props[key] = {**{k: v for k, v in sub.items() if k not in ("anyOf", "default")}, **alts[0]}
        elif len(alts) < len(sub.get("anyOf", [])):
            props[key] = {**{k: v for k, v in sub.items() if k != "default"}, "anyOf": alts}


def _draft7(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """pydantic's 2020-12 output → draft-07: ``$defs`` → ``definitions``, ``prefixItems`` → ``items``."""
    schema = copy.deepcopy(schema)
    for name, sub in schema.pop("$defs", {}).items():
        defs[name] = _convert(sub)
    return _convert(schema)


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("title", "discriminator"):
            continue
        if key == "$ref" and isinstance(value, str):
            value = value.replace("#/$defs/", "#/definitions/")
        out[key] = _convert(value)
    if "prefixItems" in out:
        out["items"] = out.pop("prefixItems")
        out["additionalItems"] = False
    return out


def _with_exprs(node: Any) -> Any:
    """Let every value in an argument schema also be an expression string."""
    if isinstance(node, dict):
        if "anyOf" in node:
            alts = [_with_exprs(a) for a in node["anyOf"]]
            flat = [x for a in alts for x in (a["anyOf"] if set(a) == {"anyOf"} else [a]) if x is not EXPR]
            return {**{k: v for k, v in node.items() if k != "anyOf"}, "anyOf": flat + [EXPR]}
        if node.get("type") in ("integer", "number", "boolean", "string", "null"):
            return {"anyOf": [node, EXPR]}
        if node.get("type") == "array":
            out = dict(node)
            if isinstance(node.get("items"), list):
                out["items"] = [_with_exprs(x) for x in node["items"]]
            return {"anyOf": [out, EXPR]}
    return node


def _op_args(cls: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """What may follow an op's key: null, a value (the first positional argument), a list of
    positional arguments ending in an optional mapping of keywords, or a mapping of keywords."""
    raw = _draft7(cls.schema().model_json_schema(ref_template="#/definitions/{model}"), defs)
    props = {}
    for field, sub in raw.get("properties", {}).items():
        value = _with_exprs(sub)
        if "default" in sub:
            value["default"] = sub["default"]
        props[field] = value
    for alias, target in cls.aliases.items():
        if target in props:
            props[alias] = {**props[target], "description": f"short for {target}"}
    kwargs = {"type": "object", "properties": props, "additionalProperties": False}
    positional = [props[p] for p in cls.positional if p in props]
    alts: list[dict[str, Any]] = [{"type": "null"}, kwargs]
    if positional:
        alts.append({"type": "array", "items": [{"anyOf": [p, kwargs]} for p in positional],
                     "additionalItems": kwargs, "maxItems": len(positional) + 1})
        alts.append(positional[0])
    required = [f for f in raw.get("required", []) if f not in cls.positional[:1]]
    if required:  # required arguments that cannot be the single value: null is not enough
        alts = [a for a in alts if a.get("type") != "null"]
    return {"description": f"{cls.name}: {cls.summary}", "anyOf": alts}


def _backbone_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    out = _draft7(BackboneYaml.model_json_schema(ref_template="#/definitions/{model}"), defs)
    _not_null(out["properties"])
    return out


def _params_schema() -> dict[str, Any]:
    return {"type": "object", "propertyNames": {"pattern": IDENT},
            "additionalProperties": {"type": ["integer", "number", "boolean", "string", "array", "null"]},
            "description": "name: default value (null: must be given)"}


def _item(ops: dict[str, Any]) -> dict[str, Any]:
    """One item of a layer list: a bare op/block name, or a mapping with exactly one head key
    (an op, a block call or a compound) plus the meta keys name/repeat/as/when."""
    items = {"$ref": "#/definitions/items"}
    refs = {"type": ["string", "integer"]}
    props: dict[str, Any] = {
        "name": {"type": "string", "pattern": MODULE_NAME,
                 "description": "the layer's name (module attribute, state_dict prefix; see the name rule); "
                                "'-' allowed (block1-0), {expr} parts computed (denselayer{i + 1})"},
        "names": {"type": "array", "minItems": 2, "items": {"type": "string", "pattern": MODULE_NAME},
                  "description": "the names of the parts of a chunk or split, in order"},
        "chunk": {"anyOf": [{"type": "integer", "minimum": 2}, EXPR],
                  "description": "cut the channels into N equal parts, named by 'names'"},
        "split": {"type": "array", "items": {"anyOf": [{"type": "integer", "minimum": 1}, EXPR]},
                  "description": "cut the channels into parts of these sizes, named by 'names'"},
        "repeat": {"anyOf": [{"type": "integer", "minimum": 1}, EXPR], "description": "repeat the item N times"},
        "as": {"type": "string", "pattern": IDENT, "description": "the repeat index's name (0, 1, ...)"},
        "when": {"anyOf": [{"type": "boolean"}, EXPR], "description": "keep the item only if this holds"},
        "group": {**items, "description": "a sequence; named, a submodule (a stage)"},
        "residual": {**items, "description": "out = main(x) + shortcut(x)"},
        "shortcut": {"type": "object", "additionalProperties": False, "description": "the residual's projection",
                     "properties": {"name": {"type": "string"}, "when": {"anyOf": [{"type": "boolean"}, EXPR]},
                                    "layers": items}},
        "parallel": {"type": "array", "items": {"anyOf": [items, {"type": "null"}]},
                     "description": "branches from one input, merged with 'merge'"},
        "merge": {"enum": ["concat", "add", "multiply"], "description": "how parallel branches are joined"},
        "from": {**refs, "description": "continue from a named earlier output"},
        **{m: {"anyOf": [refs, {"type": "array", "items": refs}],
               "description": f"{m} the current output with named earlier outputs"}
           for m in ("concat", "add", "multiply")},
        "backbone": {"anyOf": [{"type": "string"}, _backbone_schema()],
                     "description": "an existing model: torchvision (resnet18), timm.NAME or a cnndsl spec"},
    }
    for name in ops:
        props[name] = {"$ref": f"#/definitions/op.{name}"}
    heads = [k for k in props if k not in META and k not in ("shortcut", "merge", "names")]
    block_call = {"description": "a block call: the block's arguments",
                  "anyOf": [{"type": ["null", "integer", "number", "boolean", "string"]},
                            {"type": "array"}, {"type": "object"}]}
    only_meta = {"propertyNames": {"enum": [*META, "shortcut", "merge", "names"]}}
    mapping = {
        "type": "object", "properties": props, "patternProperties": {BLOCK_NAME: block_call},
        "additionalProperties": False,
        # exactly one known head, or none and then a block-call key (not only meta keys)
        "oneOf": [{"required": [h]} for h in heads]
                 + [{"not": {"anyOf": [{"required": [h]} for h in heads] + [only_meta]}}],
        "dependencies": {"shortcut": ["residual"], "merge": ["parallel"], "parallel": ["merge"], "as": ["repeat"],
                         "names": {"anyOf": [{"required": ["chunk"]}, {"required": ["split"]}]},
                         "chunk": ["names"], "split": ["names"],
                         "from": {"maxProperties": 1}},
    }
    bare = {"type": "string", "anyOf": [
        {"enum": [n for n, cls in ops.items() if not any(f.is_required() for f in cls.model_fields.values())]},
        {"pattern": BLOCK_NAME}], "description": "an op or block without arguments"}
    return {"anyOf": [bare, mapping]}


def _train_schema(defs: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig's schema, plus the shorthands the train section accepts: a bare name for a
    value with a ``type`` (``optimizer: sgd``), ``args`` for positional arguments, and a single
    augmentation where a list is expected."""
    from .train import config as C

    train = _draft7(C.TrainConfig.model_json_schema(ref_template="#/definitions/{model}"), defs)
    for name, model in vars(C).items():
        if isinstance(model, type) and issubclass(model, C.Call) and name in defs:
            if getattr(model, "_positional", ()):  # ClassVar tuple, not a pydantic private attribute
                defs[name]["properties"]["args"] = {"type": "array", "description": "positional arguments: "
                                                    + ", ".join(model._positional)}
    _allow_bare_names(train)
    for d in defs.values():
        _allow_bare_names(d)
    aug = train["properties"]["augment"]
    train["properties"]["augment"] = {"anyOf": [aug, aug["items"]], "default": []}
    return train


def _allow_bare_names(node: Any) -> None:
    """A union of models tagged by ``type`` also accepts the tag alone, as a string."""
    if isinstance(node, list):
        for x in node:
            _allow_bare_names(x)
        return
    if not isinstance(node, dict):
        return
    for key, value in list(node.items()):
        _allow_bare_names(value)
        if isinstance(value, dict) and key != "definitions":
            tags = _tags(value)
            if tags:
                node[key] = {"anyOf": [{"enum": tags}, value]}


def _tags(node: dict[str, Any]) -> list[str]:
    """The ``type`` tags of a oneOf of tagged models (or one tagged model), else []."""
    from .train import config as C

    alts = node.get("oneOf") or ([node] if "$ref" in node else [])
    tags: list[str] = []
    for alt in alts:
        ref = alt.get("$ref", "")
        model = getattr(C, ref.rsplit("/", 1)[-1], None) if ref else None
        if not (isinstance(model, type) and issubclass(model, C.Call)):
            return []
        field = model.model_fields.get("type")
        if field is None:
            return []
        tags += list(getattr(field.annotation, "__args__", ()))
    return tags
