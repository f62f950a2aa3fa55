"""Time to construct ResNet-18 with cnndsl vs ``torchvision.models.resnet18()``, in one process.

Measured, interleaved, median of --reps repetitions (after one warm-up of each):

* ``build``                 — ``cnndsl.build(analysis)``, the spec already loaded and analysed
* ``build(spec)``           — ``cnndsl.build(spec)``: analyze + build, spec already loaded
* ``load+analyze+build``    — from the file (imports resolved, grammar already constructed)
* ``torchvision``           — ``torchvision.models.resnet18()``

Most of either side is weight initialisation over 11.7 M parameters, done differently: torchvision runs PyTorch's default init and then kaiming_normal_ again on every
conv, while specs/resnet18.cnn keeps the default (``init=kaiming`` would match). The meta-device rows
(``with torch.device("meta")``) build the structure without storage, which isolates the
compiler's own overhead (module creation, plans). Target: build / torchvision <= 1.1.

    python bench/build_time.py [--reps 15] [--threads 2] [--spec specs/resnet18.cnn]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torchvision  # noqa: E402

import cnndsl  # noqa: E402


def _meta(f):
    """Construct on the meta device: module structure only, no storage, init is (almost) free."""
    with torch.device("meta"):
        return f()


def _load() -> str:
    import os
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    load0 = _load()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--spec", default=str(ROOT / "specs/resnet18.cnn"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    spec = cnndsl.load(args.spec)
    analysis = cnndsl.analyze(spec)
    cases = {
        "build(analysis)": lambda: cnndsl.build(analysis),
        "build(spec)": lambda: cnndsl.build(spec),
        "load+analyze+build": lambda: cnndsl.build(cnndsl.load(args.spec)),
        "analyze only": lambda: cnndsl.analyze(spec),
        "torchvision resnet18()": lambda: torchvision.models.resnet18(),
        "meta: build(analysis)": lambda: _meta(lambda: cnndsl.build(analysis)),
        "meta: torchvision": lambda: _meta(lambda: torchvision.models.resnet18()),
    }
    # sanity: same parameter count
    n_ours = sum(p.numel() for p in cases["build(analysis)"]().parameters())
    n_tv = sum(p.numel() for p in torchvision.models.resnet18().parameters())
    assert n_ours == n_tv, (n_ours, n_tv)
    for f in cases.values():  # warm-up
        f()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.reps):
        for k, f in cases.items():
            t = time.perf_counter()
            m = f()
            times[k].append(time.perf_counter() - t)
            del m
    med = {k: statistics.median(v) for k, v in times.items()}
    tv = med["torchvision resnet18()"]
    print(f"load average before/after: {load0} / {_load()} (2 cores: above ~2 the figures are noisy)")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {args.threads} threads, "
          f"median of {args.reps} (interleaved)")
    for k, v in med.items():
        print(f"  {k:24s} {v * 1e3:8.1f} ms   ratio to torchvision {v / tv:5.2f}   "
              f"(min {min(times[k]) * 1e3:.1f} ms)")
    rm = med["meta: build(analysis)"] / med["meta: torchvision"]
    print(f"structure-only (meta device) ratio {rm:.3f}")
    r = med["build(analysis)"] / tv
    print(f"build ratio {r:.3f} (target <= 1.1: {'PASS' if r <= 1.1 else 'FAIL'}); "
          f"build(spec) ratio {med['build(spec)'] / tv:.3f}; "
          f"load+analyze+build ratio {med['load+analyze+build'] / tv:.3f}")


if __name__ == "__main__":
    main()
