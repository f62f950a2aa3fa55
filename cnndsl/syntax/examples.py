"""Malformed snippets labelled with the friendly hint they deserve.

Lark's ``UnexpectedInput.match_examples`` re-parses these and picks the label whose parser state
matches the user's error. The same snippets are golden tests (tests/test_diagnostics.py).
"""

# refs by position: the message says so too (cnndsl.syntax.diagnose)
POSITION_HINT = ("name the item you mean (skip: conv(64, k=3)) and refer to that name (concat(skip)); "
                 "positions only reach inside a named scope (layer1.0)")

SYNTAX_EXAMPLES: dict[str, list[str]] = {
    POSITION_HINT: [
        "network N { input 3x8x8 relu concat(1) }",
        "network N { input 3x8x8 relu concat(a, 1) }",
        "network N { input 3x8x8 relu from 0 }",
        "network N { input 3x8x8 relu output 1 }",
        "network N { input 3x8x8 relu output a, 1 }",
    ],
    "a name holding '-' is written quoted: \"block1-0\": conv(64, k=3)": [
        "network N { input 3x8x8 block1-0: conv(8) }",
        "network N { input 3x8x8 g: { block1-0: conv(8) } }",
    ],
    "separate arguments with ',', e.g. conv(64, k=3, p=1)": [
        "network N { input 3x8x8 conv(8 k=3) }",
        "network N { input 3x8x8 conv(8, k=3 p=1) }",
    ],
    "name a layer with ':', e.g. conv1: conv(64, k=3)": [
        "network N { input 3x8x8 c1 = conv(8) }",
    ],
    "write the input shape without spaces, e.g. input 3x32x32": [
        "network N { input 3 x 32 x 32 }",
    ],
    "a network needs a name and a body: network Name(param = default) { input 3x32x32 ... }": [
        "network { input 3x8x8 }",
        "network N input 3x8x8",
    ],
    "give an argument a value, e.g. k=3": [
        "network N { input 3x8x8 conv(8, k=) }",
    ],
    "keyword arguments use '=', e.g. conv(64, k=3)": [
        "network N { input 3x8x8 conv(8, k: 3) }",
    ],
    "a repeat count follows 'x' directly: conv(8) x3, or x(n) for an expression": [
        "network N { input 3x8x8 conv(8) x 3 }",
    ],
    "blocks are declared as: block Name(param, param = default) { ... }": [
        "block { conv(8) }",
        "block B conv(8)",
    ],
}
