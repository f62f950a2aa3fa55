"""Using cnndsl from Python: load a spec, inspect it statically, build and run the module.

    python examples/embed.py
"""

from __future__ import annotations

from pathlib import Path

import cnndsl

SPECS = Path(__file__).resolve().parent.parent / "specs"

# 1. A spec from a file (.cnn or .yaml) — or from text, here a small network written inline.
spec = cnndsl.load(SPECS / "resnet18.cnn")
tiny = cnndsl.load("""
network Tiny(width = 16, num_classes = 4) {
    input 3x32x32
    stem: conv(width, k=3, p=1) batchnorm relu
    residual { conv(width, k=3, p=1) batchnorm relu conv(width, k=3, p=1) batchnorm }
    relu
    head: { global_avgpool flatten linear(num_classes) }
}
""")

# 2. Static analysis: no torch involved. Parameters can be overridden like `--set` on the CLI.
info = cnndsl.analyze(spec, num_classes=10)
print(f"{info.name}: {info.params:,} parameters, {info.macs / 1e9:.2f} GMACs, "
      f"receptive field {info.final_rf.text()} px, output {info.output_shapes[0]}")
layer = info.layer("layer3.0.conv1")
print(f"layer3.0.conv1 -> {layer.shape}, {layer.cost.params:,} params, RF {layer.rf.text()}")

# 3. Errors are values you can inspect: every diagnostic has a source span and a hint.
try:
    cnndsl.analyze(tiny, widht=8)
except cnndsl.CnnError as err:
    print("refused:", err.diagnostics[0].message, "|", err.diagnostics[0].hint)

# 4. Build a plain torch.nn.Module and run it.
import torch  # noqa: E402  (imported late on purpose: analysis above never needs torch)

model = cnndsl.build(tiny, width=8)
logits = model(torch.randn(2, 3, 32, 32))
print("Tiny output:", tuple(logits.shape), "| modules:", [name for name, _ in model.named_children()])
