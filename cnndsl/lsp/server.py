"""``cnndsl lsp``: a language server (pygls) for ``.cnn`` files and cnndsl YAML specs.

Diagnostics as you type (the messages of ``cnndsl check``, errors and warnings, at their spans),
hover with a layer's output shape, parameters and receptive field, inlay hints with the output shape
at the end of each layer line, completion of ops, op arguments and block names, and go-to-definition
for blocks (also in imported files), imports and layer names. Buffers are analysed from the
editor's text; imports are read from other open buffers first, then from disk. No torch.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from .. import __version__
from ..errors import Diagnostic, Span
from ..syntax.source import read_file
from . import features as F
from .document import Result, analyse, same_file, word_at

SEVERITY = {"error": T.DiagnosticSeverity.Error, "warning": T.DiagnosticSeverity.Warning,
            "note": T.DiagnosticSeverity.Information}
KINDS = {"op": T.CompletionItemKind.Function, "block": T.CompletionItemKind.Class,
         "argument": T.CompletionItemKind.Property, "keyword": T.CompletionItemKind.Keyword}


class CnnLanguageServer(LanguageServer):
    """Keeps each open buffer's latest analysis, and the blocks of its last successful parse (a
    buffer being typed in is often unparseable; completion still knows its blocks)."""

    def __init__(self) -> None:
        super().__init__("cnndsl", __version__)
        self.results: dict[str, Result] = {}
        self.blocks: dict[str, dict] = {}

    def path_of(self, uri: str) -> str:
        return to_fs_path(uri) or uri

    def read(self, path: Path) -> str:
        """A file's text: the open buffer's when there is one (unsaved edits), else the disk's."""
        uri = from_fs_path(str(path.resolve()))
        doc = self.workspace.text_documents.get(uri) if uri else None
        return doc.source if doc is not None else read_file(path)

    def result(self, uri: str) -> Result:
        doc = self.workspace.get_text_document(uri)
        cached = self.results.get(uri)
        if cached is None or cached.text != doc.source:
            cached = analyse(doc.source, self.path_of(uri), self.read)
            self.results[uri] = cached
            if cached.spec is not None:
                self.blocks[uri] = cached.blocks()
        return cached


server = CnnLanguageServer()


def _position(doc, line: int, col: int) -> T.Position:
    return doc.position_to_client_units(ServerTextPosition(max(line, 0), max(col, 0)))


def _range(doc, span: Span | None, text: str) -> T.Range:
    """A span (1-based, end exclusive) → an LSP range; without an end, the word at the start."""
    lines = text.splitlines() or [""]
    if span is None:
        start, end = ServerTextPosition(0, 0), ServerTextPosition(0, len(lines[0]))
    else:
        line = min(max(span.line - 1, 0), len(lines) - 1)
        start = ServerTextPosition(line, min(max(span.col - 1, 0), len(lines[line])))
        if span.end_line is not None and span.end_col is not None and (span.end_line, span.end_col) > (span.line, span.col):
            end_line = min(span.end_line - 1, len(lines) - 1)
            end = ServerTextPosition(end_line, min(span.end_col - 1, len(lines[end_line])))
        else:
            word = word_at(text, (start.line, start.character))
            width = word[2] - start.character if word and word[1] == start.character else 1
            end = ServerTextPosition(start.line, min(start.character + width, len(lines[line])))
    return doc.range_to_client_units(ServerTextRange(start, end))


def _location(span: Span) -> T.Location:
    start = T.Position(span.line - 1, span.col - 1)
    return T.Location(uri=from_fs_path(str(Path(span.file).resolve())) or span.file, range=T.Range(start, start))


def to_lsp(doc, d: Diagnostic, result: Result) -> T.Diagnostic:
    """A cnndsl diagnostic → an LSP one. A span in another file (an imported block) is shown at
    that file's import, with the real place as related information."""
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    related = [T.DiagnosticRelatedInformation(_location(s), text) for s, text in d.notes if s is not None]
    message += "".join(f"\nnote: {text}" for s, text in d.notes if s is None)
    span = d.span
    if span is not None and not same_file(span, result.path):
        related.insert(0, T.DiagnosticRelatedInformation(_location(span), f"{span}: {d.message}"))
        message = f"in {Path(span.file).name}:{span.line}:{span.col}: {message}"
        span = _import_span(result, span.file)
    return T.Diagnostic(range=_range(doc, span, result.text), message=message, severity=SEVERITY[d.severity],
                        source="cnndsl", related_information=related or None)


def _import_span(result: Result, file: str) -> Span | None:
    """The import statement that brings ``file`` in (or the first import)."""
    imports = list(result.spec.imports) if result.spec is not None else []
    for imp in imports:
        if Path(file).name == Path(imp.path).name:
            return imp.span
    if imports:
        return imports[0].span
    for i, line in enumerate(result.text.splitlines()):
        if "import" in line:
            return Span(result.path, i + 1, line.find("import") + 1, i + 1, len(line.rstrip()) + 1)
    return None


def publish(ls: CnnLanguageServer, uri: str) -> None:
    doc = ls.workspace.get_text_document(uri)
    result = ls.result(uri)
    diags = [to_lsp(doc, d, result) for d in result.diagnostics]
    ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, version=doc.version, diagnostics=diags))


def refresh(ls: CnnLanguageServer, changed: str) -> None:
    """Re-analyse ``changed`` and every open buffer that imports something (it may import
    ``changed``, whose unsaved text it reads)."""
    ls.results.pop(changed, None)
    if changed in ls.workspace.text_documents:
        publish(ls, changed)
    for uri, result in list(ls.results.items()):
        imports = result.spec is None or bool(result.spec.imports)  # a broken buffer may import too
        if uri != changed and imports and uri in ls.workspace.text_documents:
            ls.results.pop(uri)
            publish(ls, uri)


@server.feature(T.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: CnnLanguageServer, params: T.DidOpenTextDocumentParams) -> None:
    refresh(ls, params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: CnnLanguageServer, params: T.DidChangeTextDocumentParams) -> None:
    refresh(ls, params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: CnnLanguageServer, params: T.DidSaveTextDocumentParams) -> None:
    refresh(ls, params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: CnnLanguageServer, params: T.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.blocks.pop(uri, None)
    ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
    refresh(ls, uri)  # importers now read the file from disk


def _pos(ls: CnnLanguageServer, uri: str, position: T.Position) -> tuple[int, int]:
    p = ls.workspace.get_text_document(uri).position_from_client_units(position)
    return p.line, p.character


@server.feature(T.TEXT_DOCUMENT_HOVER)
def hover(ls: CnnLanguageServer, params: T.HoverParams) -> T.Hover | None:
    uri = params.text_document.uri
    found = F.hover(ls.result(uri), _pos(ls, uri, params.position))
    if found is None:
        return None
    text, entry = found
    doc = ls.workspace.get_text_document(uri)
    rng = None
    if entry is not None:
        rng = doc.range_to_client_units(ServerTextRange(ServerTextPosition(entry.line, entry.col),
                                                        ServerTextPosition(entry.line, entry.end_col)))
    return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=text), range=rng)


@server.feature(T.TEXT_DOCUMENT_INLAY_HINT)
def inlay_hints(ls: CnnLanguageServer, params: T.InlayHintParams) -> list[T.InlayHint]:
    uri = params.text_document.uri
    doc = ls.workspace.get_text_document(uri)
    hints = F.inlay_hints(ls.result(uri), params.range.start.line, params.range.end.line)
    return [T.InlayHint(position=_position(doc, h.line, h.col), label=h.label, padding_left=True,
                        tooltip=h.tooltip) for h in hints]


@server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=["(", ",", " ", ":"]))
def completion(ls: CnnLanguageServer, params: T.CompletionParams) -> T.CompletionList:
    uri = params.text_document.uri
    result = ls.result(uri)
    blocks = result.blocks() if result.spec is not None else ls.blocks.get(uri, {})
    items = F.completions(result, _pos(ls, uri, params.position), blocks)
    return T.CompletionList(is_incomplete=False, items=[
        T.CompletionItem(label=c.label, kind=KINDS[c.kind], detail=c.detail, insert_text=c.insert) for c in items])


@server.feature(T.TEXT_DOCUMENT_DEFINITION)
def definition(ls: CnnLanguageServer, params: T.DefinitionParams) -> list[T.Location]:
    uri = params.text_document.uri
    result = ls.result(uri)
    blocks = result.blocks() if result.spec is not None else ls.blocks.get(uri, {})
    out = []
    for loc in F.definition(result, _pos(ls, uri, params.position), blocks):
        target = from_fs_path(str(Path(loc.path).resolve())) or loc.path
        rng = T.Range(T.Position(loc.line, loc.col), T.Position(loc.line, loc.end_col))
        out.append(T.Location(uri=target, range=rng))
    return out


def main() -> None:
    server.start_io()
