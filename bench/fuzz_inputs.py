"""Inputs of bench/fuzz.py: seeds and mutations, reproducible from (seed, index) alone.

Seeds are the shipped specs (``specs/*.cnn``), their YAML twins, the block libraries, copies of them
on smaller inputs (so that most accepted mutants can be trained in milliseconds), and networks
generated from a table of layers. A mutant applies 1–3 edits: token-level (delete, duplicate, swap,
insert a token), extreme numbers, name edits (reserved module attributes, dots, empty, odd text),
dropped / duplicated / swapped lines, truncation, and — for YAML — edits of the document tree
(delete or rename a key, duplicate an item, wrap a value in a list or a mapping, nest it deeper).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

NUMBERS = ["0", "-1", "1", "2", "3", "5", "7", "64", "1000", "100000", "2147483648", "9223372036854775808",
           "1000000000000000000", "1e18", "10**19", "2**62", "1e-300", "1e300", "1e999", "0.5", "-0.0", "1.5",
           "4.9e-324", "99999999999999999999999999", "-1e300", "0.0001", "255", "65537", "9**9**9",
           "round(1, -1000)", "1" * 60]
RESERVED = ["forward", "training", "parameters", "state_dict", "to", "eval", "__init__", "_modules", "spec_name",
            "input_shape", "__getitem__", "cuda", "type", "add_module", "a.b", "in", "x1", "None", "self"]
KEYWORDS = ["network", "block", "import", "train", "input", "output", "freeze", "unfreeze", "from", "residual",
            "shortcut", "when", "as", "concat", "add", "multiply", "in", "if", "else", "and", "or", "not", "true",
            "false", "same", "valid", "reflect", "circular", "replicate", "bilinear", "nearest", "bicubic"]
OPS = ["conv", "dwconv", "conv_transpose", "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool",
       "global_avgpool", "global_maxpool", "batchnorm", "groupnorm", "layernorm", "instancenorm", "relu", "relu6",
       "leaky_relu", "elu", "celu", "prelu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "mish", "softplus",
       "softmax", "log_softmax", "identity", "linear", "dropout", "dropout2d", "mul", "flatten", "upsample"]
PUNCT = ["{", "}", "(", ")", "[", "]", ",", ":", "=", ".", "|", "+", "-", "*", "/", "//", "%", "**", "==", "x", "\n",
         "#", '"', "'", "\t", "\x00", "é", "\u202e", "\\"]
YAML_NAMES = ["", "a.b", "a b", "x\n", "forward", "__init__", "\x00", "é", "X\nimport os\n#", "a" * 300, "0", "-"]

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|[A-Za-z_]\w*|\*\*|//|==|!=|<=|>=|\s+|\S')


@dataclass
class Input:
    """One fuzz input: spec text, its syntax, where it came from and what was done to it."""

    index: int
    text: str
    fmt: str                       # "cnn" or "yaml"
    origin: str
    edits: list[str] = field(default_factory=list)

    @property
    def suffix(self) -> str:
        return ".cnn" if self.fmt == "cnn" else ".yaml"


# ----------------------------------------------------------------------------- seeds


def _shrunk(text: str, fmt: str, size: int) -> str | None:
    """The spec on a size×size input (an `input` line, or a `size` parameter's default: every shipped
    network has one)."""
    cnn = (r"(input\s+\d+x)\d+x\d+", lambda m: f"{m.group(1)}{size}x{size}")
    yml = (r"(input:\s*\[?\s*\d+\s*[x,]\s*)\d+(\s*[x,]\s*)\d+", lambda m: f"{m.group(1)}{size}{m.group(2)}{size}")
    res = (r"(\b(?:size|resolution)\s*[=:]\s*)\d+", lambda m: f"{m.group(1)}{size}")
    new = text
    for pat, sub in (cnn if fmt == "cnn" else yml, res):
        new = re.sub(pat, sub, new)
    return new if new != text else None


def seed_texts() -> list[tuple[str, str, str]]:
    """(name, text, fmt) of every shipped spec and library, plus copies on 32×32 and 64×64 inputs."""
    out = []
    for path in sorted(SPECS.glob("*.cnn")) + sorted(SPECS.glob("*.yaml")) + sorted((SPECS / "lib").glob("*")):
        fmt = "cnn" if path.suffix == ".cnn" else "yaml"
        text = path.read_text()
        name = str(path.relative_to(SPECS))
        out.append((name, text, fmt))
        for size in (16, 32, 64):
            small = _shrunk(text, fmt, size)
            if small is not None and "lib/" not in name:
                out.append((f"{name}@{size}", small, fmt))
    return out


def generated(rng: random.Random) -> str:
    """A random chain of layers (often valid, sometimes extreme) on a small input."""
    c, h, w = rng.choice([1, 3, 4]), rng.choice([1, 2, 5, 8, 16, 32]), rng.choice([1, 3, 8, 16, 32])
    num = lambda: rng.choice(["1", "2", "3"] * 4 + NUMBERS[:12])  # noqa: E731
    layers = {
        "conv": lambda: f"conv({rng.randint(1, 16)}, k={num()}, s={num()}, p={rng.choice(['same', 'valid', num()])}"
                        f", d={num()}, padding_mode={rng.choice(['zeros', 'reflect', 'replicate', 'circular'])})",
        "dwconv": lambda: f"dwconv({num()}, s={num()}, p={num()}, m={rng.randint(1, 3)})",
        "conv_transpose": lambda: f"conv_transpose({rng.randint(1, 8)}, k={num()}, s={num()}, p={num()})",
        "pool": lambda: f"{rng.choice(['maxpool', 'avgpool'])}({num()}, s={num()}, p={num()}, "
                        f"ceil_mode={rng.choice(['true', 'false'])})",
        "norm": lambda: rng.choice(["batchnorm", "groupnorm(1)", "layernorm", "instancenorm", f"batchnorm(eps={num()})"]),
        "act": lambda: rng.choice(OPS[13:27] + [f"leaky_relu({rng.choice(NUMBERS)})", f"mul({rng.choice(NUMBERS)})",
                                                f"celu({rng.choice(NUMBERS)})", f"dropout({rng.choice(['0.1', '1', '0'])})"]),
        "resample": lambda: rng.choice([f"upsample({num()}, mode={rng.choice(['nearest', 'bilinear', 'bicubic'])})",
                                        f"adaptive_avgpool({num()})", "global_avgpool"]),
        "residual": lambda: f"residual {{ conv({c}, k=3, p=1) batchnorm relu }}",
        "concat": lambda: f"concat {{ conv(2, k=1) | maxpool(3, s=1, p=1) | }}",
    }
    body = [layers[rng.choice(list(layers))]() for _ in range(rng.randint(1, 6))]
    if rng.random() < 0.5:
        body.append(f"flatten linear({rng.randint(1, 10)})")
    return f"network G {{\n  input {c}x{h}x{w}\n  " + "\n  ".join(body) + "\n}\n"


# ----------------------------------------------------------------------------- text mutations


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _words(tokens: list[str]) -> list[int]:
    return [i for i, t in enumerate(tokens) if t.strip()]


def mutate_tokens(text: str, rng: random.Random) -> tuple[str, str]:
    toks = _tokens(text)
    idx = _words(toks)
    if not idx:
        return text + rng.choice(PUNCT), "append"
    i = rng.choice(idx)
    kind = rng.choice(["delete", "duplicate", "swap", "insert", "number", "name", "keyword", "op"])
    if kind == "delete":
        toks[i] = ""
    elif kind == "duplicate":
        toks[i] = toks[i] + " " + toks[i]
    elif kind == "swap":
        j = rng.choice(idx)
        toks[i], toks[j] = toks[j], toks[i]
    elif kind == "insert":
        toks[i] = rng.choice(PUNCT + KEYWORDS + OPS) + " " + toks[i]
    elif kind == "number":
        nums = [k for k in idx if toks[k][0].isdigit()] or idx
        i = rng.choice(nums)
        toks[i] = rng.choice(NUMBERS)
    elif kind == "name":
        names = [k for k in idx if toks[k][0].isalpha() or toks[k][0] == "_"] or idx
        i = rng.choice(names)
        toks[i] = rng.choice(RESERVED + [toks[rng.choice(idx)]])
    elif kind == "keyword":
        toks[i] = rng.choice(KEYWORDS)
    else:
        toks[i] = rng.choice(OPS)
    return "".join(toks), f"{kind} token {i}"


def mutate_lines(text: str, rng: random.Random) -> tuple[str, str]:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    kind = rng.choice(["drop", "duplicate", "swap", "truncate", "indent", "label"])
    if kind == "drop":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "swap":
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "truncate":
        return text[: rng.randrange(len(text) + 1)], "truncate"
    elif kind == "indent":
        lines[i] = rng.choice(["", " ", "   ", "\t"]) + lines[i].lstrip()
    else:  # give the line a (possibly reserved) layer name
        stripped = lines[i].lstrip()
        lines[i] = lines[i][: len(lines[i]) - len(stripped)] + f"{rng.choice(RESERVED + ['a', 'b1'])}: " + stripped
    return "\n".join(lines), f"{kind} line {i}"


# ----------------------------------------------------------------------------- YAML tree mutations


def _nodes(doc, path=()):
    yield path, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _nodes(v, path + (i,))


def _set(doc, path, value):
    if not path:
        return value
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


def mutate_yaml_tree(text: str, rng: random.Random) -> tuple[str, str]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return mutate_tokens(text, rng)
    nodes = list(_nodes(doc))
    path, node = rng.choice(nodes)
    kind = rng.choice(["delete", "duplicate", "to_list", "to_dict", "number", "name", "none", "nest", "rename"])
    parent = _nodes_parent(doc, path)
    if kind == "delete" and path and isinstance(parent, (dict, list)):
        del parent[path[-1]]
    elif kind == "duplicate" and path and isinstance(parent, list):
        parent.insert(path[-1], node)
    elif kind == "to_list":
        doc = _set(doc, path, [node])
    elif kind == "to_dict":
        doc = _set(doc, path, {rng.choice(OPS + ["name", "layers", "group", "repeat"]): node})
    elif kind == "number":
        value = rng.choice(NUMBERS)
        doc = _set(doc, path, yaml.safe_load(value) if re.fullmatch(r"[-\d.e]+", value) else value)
    elif kind == "name":
        doc = _set(doc, path, rng.choice(YAML_NAMES + RESERVED))
    elif kind == "none":
        doc = _set(doc, path, None)
    elif kind == "nest":
        doc = _set(doc, path, {"group": [node]} if rng.random() < 0.5 else [[node]])
    elif kind == "rename" and path and isinstance(parent, dict):
        parent[rng.choice(YAML_NAMES + RESERVED + OPS)] = parent.pop(path[-1])
    try:
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), f"yaml {kind} at {'.'.join(map(str, path))}"
    except yaml.YAMLError:
        return text, "yaml (unchanged)"


def _nodes_parent(doc, path):
    node = doc
    for k in path[:-1]:
        node = node[k]
    return node if path else None


# ----------------------------------------------------------------------------- one input


def make_input(seed: int, index: int, seeds: list[tuple[str, str, str]]) -> Input:
    """Input ``index`` of the run ``seed``: the same on every machine and in any order."""
    rng = random.Random(seed * 1_000_003 + index)
    small = [s for s in seeds if "@" in s[0]]
    pick = rng.random()
    if pick < 0.25:
        origin, text, fmt = "generated", generated(rng), "cnn"
    elif pick < 0.75 and small:   # most mutants start from small inputs, so that accepted ones can train
        origin, text, fmt = rng.choice(small)
    else:
        origin, text, fmt = rng.choice(seeds)
    inp = Input(index, text, fmt, origin)
    if rng.random() < 0.08:  # a few unmutated seeds: the baseline must always pass
        return inp
    for _ in range(rng.choice([1, 1, 2, 3])):
        if fmt == "yaml" and rng.random() < 0.5:
            inp.text, what = mutate_yaml_tree(inp.text, rng)
        elif rng.random() < 0.7:
            inp.text, what = mutate_tokens(inp.text, rng)
        else:
            inp.text, what = mutate_lines(inp.text, rng)
        inp.edits.append(what)
    return inp
