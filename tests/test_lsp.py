"""The language server end to end, driven by a real LSP client (pytest-lsp) over stdio: open a
document, receive the diagnostics ``cnndsl check`` gives, edit it, hover, inlay hints, completion,
go to definition — for .cnn and YAML, with an imported block file that is open and unsaved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as T  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

LIB = """\
# blocks for the test network
block Pair(out, stride = 1) {
    a: conv(out, k=3, s=stride, p=1)
    relu
}
"""

NET = """\
import "lib.cnn"

network Tiny(num_classes = 10) {
    input 3x32x32
    stem: conv(16, k=3, p=1)   relu   maxpool(2)
    body: Pair(32, stride=2) x2 as i
    flatten
    fc: linear(num_classes)
    output fc, body
}
"""

YAML = """\
network:
  name: TinyYaml
  input: 3x4x4
  layers:
    - {name: c1, conv: [8, {k: 3, p: 1}]}
    - relu
    - {name: pool, maxpool: 2}
"""


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "cnndsl", "lsp"],
    server_env={**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}))
async def client(lsp_client: LanguageClient, tmp_path_factory):
    await lsp_client.initialize_session(T.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=tmp_path_factory.getbasetemp().as_uri()))
    yield
    await lsp_client.shutdown_session()


async def _open(client: LanguageClient, path: Path, text: str, language: str = "cnn") -> str:
    uri = path.as_uri()
    client.text_document_did_open(T.DidOpenTextDocumentParams(
        T.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))
    await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


async def _change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(uri=uri, version=version),
        [T.TextDocumentContentChangeWholeDocument(text=text)]))
    await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)


def _errors(client: LanguageClient, uri: str) -> list[T.Diagnostic]:
    return [d for d in client.diagnostics[uri] if d.severity == T.DiagnosticSeverity.Error]


def _check_message(path: Path) -> tuple[int, int, str]:
    """What ``cnndsl check`` says about a file: (line, col, message) of its first diagnostic."""
    import cnndsl

    try:
        cnndsl.analyze(cnndsl.load(path))
    except cnndsl.CnnError as exc:
        d = exc.diagnostics[0]
        return d.span.line, d.span.col, d.message
    raise AssertionError(f"{path} checks")


@pytest.mark.asyncio
async def test_cnn_document_session(client: LanguageClient, tmp_path: Path):
    (tmp_path / "lib.cnn").write_text(LIB)
    net = tmp_path / "net.cnn"
    net.write_text(NET)
    uri = await _open(client, net, NET)
    # check's warning about a block's layer in lib.cnn (the output 'body' sees a 16×16 patch): shown at
    # the import, pointing into lib.cnn
    (warn,) = client.diagnostics[uri]
    assert warn.severity == T.DiagnosticSeverity.Warning and warn.range.start.line == 0
    assert warn.message.startswith("in lib.cnn:4:5: output 'body.1.1' (relu) never sees the whole 32×32 input")
    assert warn.related_information[0].location.uri == (tmp_path / "lib.cnn").as_uri()

    # an edit that breaks the spec: the diagnostic of `cnndsl check`, at its position
    broken = NET.replace("relu   maxpool(2)", "relu   maxpoool(2)")
    await _change(client, uri, broken, 2)
    (tmp_path / "broken.cnn").write_text(broken)
    line, col, message = _check_message(tmp_path / "broken.cnn")
    (diag,) = _errors(client, uri)
    assert diag.message.startswith(message) and "hint: did you mean 'maxpool'" in diag.message
    assert diag.severity == T.DiagnosticSeverity.Error
    assert (diag.range.start.line, diag.range.start.character) == (line - 1, col - 1)
    assert diag.range.end.character - diag.range.start.character == len("maxpoool")

    # fixed again: no diagnostics; hover a layer, then the repeat of the imported block
    await _change(client, uri, NET, 3)
    assert _errors(client, uri) == []
    hover = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(4, 6)))
    assert "**stem**" in hover.contents.value and "3×32×32 → **16×32×32**" in hover.contents.value
    assert "params 448" in hover.contents.value and "receptive field 3" in hover.contents.value
    hover = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(5, 12)))
    assert "2 × Pair" in hover.contents.value and "16×16×16 → **32×4×4**" in hover.contents.value

    # inlay hints: the output shape at the end of every layer line
    hints = await client.text_document_inlay_hint_async(T.InlayHintParams(
        T.TextDocumentIdentifier(uri), T.Range(T.Position(0, 0), T.Position(9, 0))))
    shown = {h.position.line: h.label for h in hints}
    assert shown == {4: "→ 16×16×16", 5: "→ 32×4×4", 6: "→ 512", 7: "→ 10"}
    assert hints[0].position.character == len(NET.splitlines()[4])

    # completion: op arguments inside conv( ... ), ops and blocks elsewhere
    typing = NET.replace("    flatten\n", "    extra: conv(8, \n    flatten\n")
    await _change(client, uri, typing, 4)
    items = await client.text_document_completion_async(T.CompletionParams(
        T.TextDocumentIdentifier(uri), T.Position(6, 20)))
    labels = {i.label for i in items.items}
    assert {"kernel", "k", "stride", "padding", "bias"} <= labels and "out" not in labels and "conv" not in labels
    items = await client.text_document_completion_async(T.CompletionParams(
        T.TextDocumentIdentifier(uri), T.Position(7, 4)))
    kinds = {i.label: i.kind for i in items.items}
    assert kinds["conv"] == T.CompletionItemKind.Function and kinds["Pair"] == T.CompletionItemKind.Class
    await _change(client, uri, NET, 5)

    # go to definition: the block in the imported file, and the import itself
    (loc,) = await client.text_document_definition_async(T.DefinitionParams(
        T.TextDocumentIdentifier(uri), T.Position(5, 12)))
    assert loc.uri == (tmp_path / "lib.cnn").as_uri() and loc.range.start.line == 1
    (loc,) = await client.text_document_definition_async(T.DefinitionParams(
        T.TextDocumentIdentifier(uri), T.Position(0, 10)))
    assert loc.uri == (tmp_path / "lib.cnn").as_uri()

    # the imported file open with unsaved edits: the network is analysed with them
    lib_uri = await _open(client, tmp_path / "lib.cnn", LIB.replace("a: conv(out,", "a: conv(out * 2,"))
    assert not client.diagnostics[lib_uri]  # a block library is not an error
    await _change(client, uri, NET, 6)
    hints = await client.text_document_inlay_hint_async(T.InlayHintParams(
        T.TextDocumentIdentifier(uri), T.Range(T.Position(5, 0), T.Position(5, 80))))
    assert [h.label for h in hints] == ["→ 64×4×4"]


@pytest.mark.asyncio
async def test_yaml_document_session(client: LanguageClient, tmp_path: Path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(YAML)
    uri = await _open(client, spec, YAML, "yaml")
    assert not client.diagnostics[uri]
    hover = await client.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(4, 20)))
    assert "**c1**" in hover.contents.value and "**8×4×4**" in hover.contents.value
    hints = await client.text_document_inlay_hint_async(T.InlayHintParams(
        T.TextDocumentIdentifier(uri), T.Range(T.Position(0, 0), T.Position(7, 0))))
    assert [h.label for h in hints] == ["→ 8×4×4", "→ 8×4×4", "→ 8×2×2"]

    broken = YAML.replace("k: 3, p: 1", "k: 3, p: 1, strid: 2")
    await _change(client, uri, broken, 2)
    (tmp_path / "broken.yaml").write_text(broken)
    line, col, message = _check_message(tmp_path / "broken.yaml")
    (diag,) = client.diagnostics[uri]
    assert diag.message.startswith(message) and (diag.range.start.line, diag.range.start.character) == (line - 1, col - 1)

    typing = YAML.replace("{k: 3, p: 1}", "{k: 3, ")
    await _change(client, uri, typing, 3)
    col = typing.splitlines()[4].index("{k: 3, ") + len("{k: 3, ")
    items = await client.text_document_completion_async(T.CompletionParams(
        T.TextDocumentIdentifier(uri), T.Position(4, col)))
    labels = {i.label for i in items.items}
    assert {"stride", "padding", "dilation"} <= labels and "kernel" not in labels


def test_server_analysis_imports_no_torch():
    """Analysing documents (diagnostics, hover, hints) never imports torch."""
    code = ("import sys; from pathlib import Path; import cnndsl.lsp.server; "
            "from cnndsl.lsp.document import analyse; from cnndsl.lsp import features as F; "
            "p = Path('specs/resnet18.cnn').resolve(); r = analyse(p.read_text(), str(p)); "
            "assert r.analysis is not None and F.inlay_hints(r) and F.hover(r, (10, 6)); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["simple_cnn.cnn", "unet.yaml"])
def test_every_prefix_of_a_spec_is_answered(name):
    """As a spec is typed, every intermediate text gets diagnostics and answers, never a crash."""
    from cnndsl.lsp import features as F
    from cnndsl.lsp.document import analyse

    path = ROOT / "specs" / name
    text = path.read_text(encoding="utf-8")
    for cut in range(0, len(text) + 1, 7):
        typed = text[:cut]
        result = analyse(typed, str(path))
        assert not any(d.message.startswith("cnndsl internal error") for d in result.diagnostics), cut
        lines = typed.splitlines() or [""]
        pos = (len(lines) - 1, len(lines[-1]))
        F.hover(result, pos), F.inlay_hints(result), F.completions(result, pos), F.definition(result, pos)
    assert analyse(text, str(path)).analysis is not None
