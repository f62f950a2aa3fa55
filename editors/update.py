"""Regenerate the editor files that follow the compiler: the YAML JSON Schema and the op names of
the TextMate grammar. Run after adding an op:  python editors/update.py   (tests/test_editors.py
fails until the shipped files match)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

GRAMMAR = HERE / "vscode" / "syntaxes" / "cnn.tmLanguage.json"
SCHEMA = HERE / "cnndsl.schema.json"


def ops_pattern() -> str:
    from cnndsl.ops import REGISTRY

    names = sorted((n for n in REGISTRY if n not in ("add", "concat", "multiply")), key=lambda n: (-len(n), n))
    return r"\b(" + "|".join(map(re.escape, names)) + r")\b"


def grammar_text() -> str:
    grammar = json.loads(GRAMMAR.read_text(encoding="utf-8"))
    grammar["repository"]["ops"]["match"] = ops_pattern()
    return json.dumps(grammar, indent=2, ensure_ascii=False) + "\n"


def schema_text() -> str:
    from cnndsl.schema import write_schema

    return write_schema(None)


def main() -> None:
    GRAMMAR.write_text(grammar_text(), encoding="utf-8")
    SCHEMA.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {GRAMMAR.relative_to(HERE.parent)} and {SCHEMA.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
