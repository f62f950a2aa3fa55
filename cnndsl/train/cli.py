"""argparse registration of ``train``, ``eval`` and ``predict`` (imports no torch).

The main CLI (:mod:`cnndsl.cli`) calls :func:`register` with the common flags (the positional
``spec``, ``--set``, ``--debug``) as ``parents`` and fills ``args.params`` / ``args.train_overrides``.
"""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from ..cli import number_type  # cnndsl.cli imports this module while it builds its parser


def _train(args: Any) -> int:
    from .commands import train_cmd
    return train_cmd(args)


def _eval(args: Any) -> int:
    from .commands import eval_cmd
    return eval_cmd(args)


def _predict(args: Any) -> int:
    from .commands import predict_cmd
    return predict_cmd(args)


RUN_DIR_NOTE = ("SPEC may be a run directory (or a checkpoint in one): the spec, --set values and train config "
                "the run recorded are reused; flags given here override them.")


def _shared(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--data-root", dest="data_root", help="directory holding dataset files")
    p.add_argument("--batch-size", dest="batch_size", type=number_type(int, 1), help="override train.batch_size")


def register(subparsers: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add the ``train``, ``eval`` and ``predict`` subcommands; each sets ``func(args) -> int``."""
    t = subparsers.add_parser("train", parents=list(parents), help="train the network with the spec's train section",
                              description="Train the network a spec describes, with its train section.")
    _shared(t)
    t.add_argument("--epochs", type=number_type(float, 0, inclusive=False), help="override train.epochs")
    t.add_argument("--seed", type=int, help="override train.seed")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (or from a checkpoint file)")
    t.add_argument("--force", action="store_true", help="resume even if the spec changed")
    t.add_argument("--init-from", dest="init_from", metavar="PATH|torchvision:MODEL.WEIGHTS",
                   help="start from these weights, matched by name (a file, a run directory, or named torchvision weights)")
    t.add_argument("--init-partial", dest="init_partial", action="store_true",
                   help="with --init-from: load the keys that match and report the others")
    t.add_argument("--run-dir", dest="run_dir", help="write the run here instead of runs/<spec>/<time>/")
    t.add_argument("--runs-dir", dest="runs_dir", help="override train.runs_dir")
    t.add_argument("--quiet", action="store_true", help="plain log lines instead of a progress bar")
    t.add_argument("--detect-anomaly", dest="detect_anomaly", action="store_true",
                   help="torch.autograd.detect_anomaly (slow; finds the op that produced a NaN)")
    t.set_defaults(func=_train)

    e = subparsers.add_parser("eval", parents=list(parents), help="evaluate a checkpoint",
                              description="Accuracy, per-class accuracy and confusion matrix of a checkpoint. "
                                          + RUN_DIR_NOTE)
    _shared(e)
    e.add_argument("--checkpoint", help="checkpoint file or run directory (default: SPEC when it is one)")
    e.add_argument("--split", choices=["val", "test"], default="val")
    e.add_argument("--tta", choices=["none", "flip", "flip_translate"], help="test-time augmentation")
    e.add_argument("--ema", action="store_true", help="evaluate the EMA weights stored in the checkpoint")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--confusion-image", dest="confusion_image", metavar="FILE",
                   help="also draw the confusion matrix to FILE (.png, .svg, .pdf; needs matplotlib)")
    e.set_defaults(func=_eval)

    p = subparsers.add_parser("predict", parents=list(parents), help="classify image files",
                              description="Top-k classes with probabilities for each image. " + RUN_DIR_NOTE)
    p.add_argument("--device", help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help="checkpoint file or run directory (default: SPEC when it is one)")
    p.add_argument("--top-k", dest="top_k", type=number_type(int, 1), default=5, help="classes shown per image")
    p.add_argument("--ema", action="store_true", help="use the EMA weights stored in the checkpoint")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("images", nargs="+", help="image files")
    p.set_defaults(func=_predict)
