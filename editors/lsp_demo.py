"""Talk to ``cnndsl lsp`` as an editor does and print what it answers: the inlay hints of a spec,
and the hover of one line. Usage:  python editors/lsp_demo.py specs/resnet18.cnn 12
(line numbers from 1; default: every hint, and the hover of the first layer with a hint)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lsprotocol import types as T
from pygls.lsp.client import LanguageClient


async def main(path: Path, hover_line: int | None) -> None:
    client = LanguageClient("cnndsl-demo", "0")
    diagnostics: list[T.Diagnostic] = []

    @client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params: T.PublishDiagnosticsParams) -> None:
        diagnostics[:] = params.diagnostics

    await client.start_io(sys.executable, "-m", "cnndsl", "lsp")
    await client.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities()))
    client.initialized(T.InitializedParams())
    text, uri = path.read_text(encoding="utf-8"), path.resolve().as_uri()
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "cnn", 1, text)))
    lines = text.splitlines()
    hints = await client.text_document_inlay_hint_async(T.InlayHintParams(
        T.TextDocumentIdentifier(uri), T.Range(T.Position(0, 0), T.Position(len(lines), 0))))
    print(f"diagnostics: {len(diagnostics)}" + "".join(f"\n  {d.range.start.line + 1}:{d.range.start.character + 1}: "
                                                     f"{d.message.splitlines()[0]}" for d in diagnostics))
    print("inlay hints:")
    for h in hints:
        print(f"  {lines[h.position.line][:h.position.character]}  {h.label}")
    line = hover_line - 1 if hover_line else hints[0].position.line
    column = len(lines[line]) - len(lines[line].lstrip()) + 1
    hover = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(line, column)))
    print(f"\nhover on line {line + 1} ({lines[line].strip()}):")
    print("  " + (hover.contents.value.replace("\n", "\n  ") if hover else "(nothing)"))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None))
