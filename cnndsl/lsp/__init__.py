"""The cnndsl language server (``cnndsl lsp``): document analysis (document.py), answers
(features.py) and the pygls wiring (server.py). Needs the ``lsp`` extra (pygls, lsprotocol)."""
