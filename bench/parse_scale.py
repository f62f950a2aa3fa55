"""Parse + analyze time of a 2,000-layer spec (textually unrolled, so the parser sees every item).

Three generated specs, each with --layers layer items on a small input (8×16×16):

* ``chain``    — ``conv(8, k=3, p=same, bias=false) batchnorm relu`` repeated, unnamed
* ``named``    — the same with every layer named (``c17: conv(...)``), one line per layer
* ``residual`` — BasicBlock-like residual groups written out inline (conv bn relu conv bn + add, relu)

and, for comparison, the same chain written with a repeat (``{...} xN``: the parser sees 3 items).
Figures: median of --reps runs of parse (``cnndsl.parse``), analyze (``cnndsl.analyze``), and the
sum (target < 1 s). The first parse in the process (grammar construction) is reported separately.

    python bench/parse_scale.py [--layers 2000] [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cnndsl  # noqa: E402
from cnndsl.expand import Limits  # noqa: E402

HEAD = "network Big {\n    input 8x16x16\n"


def chain(n: int) -> str:
    trio = "    conv(8, k=3, p=same, bias=false) batchnorm relu\n"
    body = trio * (n // 3) + "    relu\n" * (n % 3)
    return HEAD + body + "}\n"


def named(n: int) -> str:
    lines = []
    for i in range(n):
        kind = ("conv(8, k=3, p=same, bias=false)", "batchnorm", "relu")[i % 3]
        lines.append(f"    l{i}: {kind}\n")
    return HEAD + "".join(lines) + "}\n"


def residual(n: int) -> str:
    block = ("    residual {\n        conv(8, k=3, p=1, bias=false) batchnorm relu\n"
             "        conv(8, k=3, p=1, bias=false) batchnorm\n    }\n    relu\n")   # 7 layers (incl. add)
    return HEAD + block * (n // 7) + "    relu\n" * (n % 7) + "}\n"


def repeated(n: int) -> str:
    return HEAD + f"    {{ conv(8, k=3, p=same, bias=false) batchnorm relu }} x{n // 3}\n" + "    relu\n" * (n % 3) + "}\n"


def timed(f, reps: int) -> tuple[float, object]:
    ts, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    limits = Limits(max_layers=max(10_000, 2 * args.layers))

    t = time.perf_counter()
    cnndsl.parse("network N { input 3x8x8 relu }")
    print(f"first parse in the process (grammar construction / lark cache): {(time.perf_counter() - t) * 1e3:.1f} ms")
    print(f"{'spec':10s} {'bytes':>8s} {'layers':>7s} {'parse':>9s} {'analyze':>9s} {'total':>9s}")
    worst = 0.0
    for name, gen in (("chain", chain), ("named", named), ("residual", residual), ("repeat", repeated)):
        text = gen(args.layers)
        tp, spec = timed(lambda: cnndsl.parse(text), args.reps)
        ta, a = timed(lambda: cnndsl.analyze(spec, limits=limits), args.reps)
        total = tp + ta
        if name != "repeat":
            worst = max(worst, total)
        print(f"{name:10s} {len(text):8d} {len(a.layers):7d} {tp * 1e3:7.1f}ms {ta * 1e3:7.1f}ms {total * 1e3:7.1f}ms")
    print(f"worst parse+analyze of the unrolled specs: {worst:.3f} s (target < 1 s: {'PASS' if worst < 1 else 'FAIL'})")


if __name__ == "__main__":
    main()
