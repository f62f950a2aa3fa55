"""Editor files: the YAML JSON Schema (valid for every shipped spec and doc example, failing on
broken ones, in sync with the op registry and the train models) and the TextMate grammar of .cnn
(regexes that compile, the right scope for sample tokens of shipped specs, every op listed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from cnndsl.ops import REGISTRY
from cnndsl.schema import json_schema

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
EDITORS = ROOT / "editors"
SPECS = ROOT / "specs"
YAML_SPECS = sorted(SPECS.glob("*.yaml")) + sorted((SPECS / "lib").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    schema = json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _doc_yaml_examples() -> list[tuple[int, str]]:
    lines = (ROOT / "docs" / "language.md").read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```yaml":
            j = lines.index("```", i + 1)
            out.append((i + 1, "\n".join(lines[i + 1:j])))
            i = j
        i += 1
    return out


@pytest.mark.parametrize("path", YAML_SPECS, ids=lambda p: p.name)
def test_shipped_yaml_specs_validate(validator, path):
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def test_language_doc_yaml_examples_validate(validator):
    examples = _doc_yaml_examples()
    assert len(examples) >= 10
    for line, text in examples:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(text))]
        assert errors == [], f"docs/language.md:{line}"


def _resnet() -> dict:
    return yaml.safe_load((SPECS / "resnet18.yaml").read_text())


def _edit(where: str, value) -> dict:
    doc = _resnet()
    if where == "top":
        doc.update(value)
    elif where == "train":
        doc["train"] = value
    else:
        doc["network"]["layers"][int(where)] = value
    return doc


@pytest.mark.parametrize("case, where, value, path", [
    ("unknown top-level key", "top", {"netwrok": {}}, []),
    ("unknown op", "0", {"name": "conv1", "convv": [64, {"k": 7}]}, ["network", "layers", 0]),
    ("unknown bare op", "1", "batchnorn", ["network", "layers", 1]),
    ("unknown op argument", "0", {"conv": [64, {"k": 7, "strid": 2}]}, ["network", "layers", 0, "conv"]),
    ("wrong type", "0", {"conv": [64, {"k": 7, "bias": 3}]}, ["network", "layers", 0, "conv"]),
    ("wrong repeat type", "4", {"name": "layer1", "BasicBlock": 64, "repeat": [2]}, ["network", "layers", 4]),
    ("two ops in one item", "1", {"batchnorm": None, "relu": None}, ["network", "layers", 1]),
    ("unknown train key", "train", {"data": "mnist5k", "epoch": 3}, ["train"]),
    ("unknown dataset", "train", {"data": "mnist5kk"}, ["train", "data"]),
])
def test_broken_specs_fail(validator, case, where, value, path):
    errors = list(validator.iter_errors(_edit(where, value)))
    assert errors, case
    best = jsonschema.exceptions.best_match(errors)
    assert list(best.absolute_path)[:len(path)] == path, (case, best.message)


def test_schema_accepts_expressions_shorthands_and_block_calls(validator):
    doc = {"network": {"input": [3, "size", "size"], "params": {"size": 32, "w": 8},
                       "layers": [{"conv": ["w * 2", "k", {"s": "stride", "bias": "not b"}]},
                                  {"Stage": [1, {"a": 2}], "name": "s", "repeat": "n", "as": "i"},
                                  {"name": "r", "residual": ["relu"], "shortcut": {"when": "x", "layers": ["relu"]}},
                                  {"parallel": [["relu"], None], "merge": "add"}, {"from": "s"}, {"concat": ["s", "r"]}]},
           "train": {"data": "mnist5k", "optimizer": {"type": "sgd", "lr": 0.1}, "schedule": "cosine",
                     "augment": "hflip", "ema": {"type": "ema", "args": [0.99]}}}
    assert [e.message for e in validator.iter_errors(doc)] == []


def test_schema_is_in_sync_with_the_registry_and_the_shipped_file():
    schema = json_schema()
    defs = schema["definitions"]
    item_props = defs["item"]["anyOf"][1]["properties"]
    for name, cls in REGISTRY.items():
        if name in ("add", "concat", "multiply"):
            assert name in item_props  # the merge items
            continue
        args = defs[f"op.{name}"]["anyOf"]
        kwargs = next(a for a in args if a.get("type") == "object")["properties"]
        assert set(cls.model_fields) | set(cls.aliases) == set(kwargs), name
        assert item_props[name] == {"$ref": f"#/definitions/op.{name}"}
    from cnndsl.train.config import TrainConfig

    assert set(defs["train"]["properties"]) == set(TrainConfig.model_fields)
    shipped = json.loads((EDITORS / "cnndsl.schema.json").read_text(encoding="utf-8"))
    assert shipped == json.loads(json.dumps(schema)), "editors/cnndsl.schema.json is stale: run python editors/update.py"


def test_schema_cli_writes_the_file(tmp_path, cli):
    out = tmp_path / "cnndsl.schema.json"
    rc, stdout, err = cli("schema", "-o", str(out))
    assert rc == 0 and f"wrote {out}" in err
    assert json.loads(out.read_text()) == json.loads(json.dumps(json_schema()))
    rc, stdout, err = cli("schema", "-o", str(tmp_path / "missing" / "x.json"))
    assert rc == 2 and "-o/--output: cannot write" in err


# ----------------------------------------------------------------------------- TextMate grammar

GRAMMAR = json.loads((EDITORS / "vscode" / "syntaxes" / "cnn.tmLanguage.json").read_text(encoding="utf-8"))


def _rules() -> list[tuple[re.Pattern, str, dict]]:
    """The top-level match rules in order, compiled with Python's re (the subset shared with Oniguruma)."""
    out = []
    for ref in GRAMMAR["patterns"]:
        rule = GRAMMAR["repository"][ref["include"][1:]]
        out.append((re.compile(rule["match"]), rule.get("name", ""), rule.get("captures", {})))
    return out


def _tokens(line: str) -> list[tuple[str, str]]:
    """Scan a line as a TextMate engine does with plain match rules: at each point the rule whose
    match starts first wins (ties: the earlier rule); captures give their groups their scopes."""
    rules, pos, out = _rules(), 0, []
    while pos < len(line):
        best = None
        for rx, name, caps in rules:
            m = rx.search(line, pos)
            if m and m.end() > m.start() and (best is None or m.start() < best[0].start()):
                best = (m, name, caps)
        if best is None:
            break
        m, name, caps = best
        if caps:
            out += [(m.group(int(g)), c["name"]) for g, c in caps.items() if m.group(int(g))]
        else:
            out.append((m.group(), name))
        pos = m.end()
    return out


def test_grammar_regexes_compile():
    for rule in GRAMMAR["repository"].values():
        re.compile(rule["match"])
    assert GRAMMAR["scopeName"] == "source.cnn"


@pytest.mark.parametrize("spec, line, expected", [
    ("resnet18.cnn", 'import "lib/resnet_blocks.cnn"',
     [("import", "keyword.control.cnn"), ('"lib/resnet_blocks.cnn"', "string.quoted.double.cnn")]),
    ("resnet18.cnn", "network ResNet18(num_classes = 1000, size = 224) {",
     [("network", "storage.type.cnn"), ("ResNet18", "entity.name.type.cnn"), ("num_classes", "variable.parameter.cnn"),
      ("1000", "constant.numeric.cnn"), ("size", "variable.parameter.cnn")]),
    ("resnet18.cnn", "    input(3, size, size)", [("input", "keyword.control.cnn"), ("3", "constant.numeric.cnn")]),
    ("resnet18.cnn", "    conv1: conv(64, k=7, s=2, p=3, bias=false)",
     [("conv1", "entity.name.tag.cnn"), ("conv", "support.function.cnn"), ("64", "constant.numeric.cnn"),
      ("k", "variable.parameter.cnn"), ("false", "constant.language.cnn")]),
    ("resnet18.cnn", "    layer2: BasicBlock(128, stride=2 if i == 0 else 1) x2 as i     # 128×28×28",
     [("BasicBlock", "entity.name.type.cnn"), ("if", "keyword.control.cnn"), ("==", "keyword.operator.cnn"),
      ("x2", "keyword.operator.repeat.cnn"), ("as", "keyword.control.cnn"),
      ("# 128×28×28", "comment.line.number-sign.cnn")]),
    ("simple_cnn.cnn", "    fc1: linear(256)  relu  dropout(0.5)",
     [("linear", "support.function.cnn"), ("relu", "support.function.cnn"), ("0.5", "constant.numeric.cnn")]),
    ("airbench94.cnn", "    mul(1 / 9)                                      # logit scaling", [("mul", "support.function.cnn"), ("/", "keyword.operator.cnn")]),
    ("unet.cnn", "", []),
])
def test_grammar_scopes_tokens_of_shipped_specs(spec, line, expected):
    text = (SPECS / spec).read_text(encoding="utf-8")
    if not line:  # any spec: comments are comments, and every op name used is an op
        for src in text.splitlines():
            toks = _tokens(src)
            if src.strip().startswith("#"):
                assert toks == [(src.strip(), "comment.line.number-sign.cnn")]
        return
    assert line in text.splitlines()
    toks = _tokens(line)
    for tok in expected:
        assert tok in toks, (tok, toks)


def test_grammar_lists_every_op():
    import importlib.util

    spec = importlib.util.spec_from_file_location("editors_update", EDITORS / "update.py")
    update = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update)
    assert GRAMMAR["repository"]["ops"]["match"] == update.ops_pattern(), "run python editors/update.py"
    ops = re.compile(GRAMMAR["repository"]["ops"]["match"])
    for name in REGISTRY:
        if name not in ("add", "concat", "multiply"):
            assert ops.fullmatch(name), name


def test_vscode_extension_manifest():
    manifest = json.loads((EDITORS / "vscode" / "package.json").read_text(encoding="utf-8"))
    (lang,) = manifest["contributes"]["languages"]
    assert lang["extensions"] == [".cnn"] and (EDITORS / "vscode" / lang["configuration"]).is_file()
    (grammar,) = manifest["contributes"]["grammars"]
    assert grammar["language"] == lang["id"] and grammar["scopeName"] == GRAMMAR["scopeName"]
    assert (EDITORS / "vscode" / grammar["path"]).resolve() == (EDITORS / "vscode" / "syntaxes" / "cnn.tmLanguage.json")
    assert (EDITORS / "vscode" / manifest["main"]).is_file()
    json.loads((EDITORS / "vscode" / "language-configuration.json").read_text(encoding="utf-8"))
