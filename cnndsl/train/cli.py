"""``cnndsl train | eval | predict``: argparse registration (imports no torch) and the handlers,
thin layers over :func:`cnndsl.train`, :func:`cnndsl.evaluate` and :func:`cnndsl.predict`.

The main CLI (:mod:`cnndsl.cli`) calls :func:`register` with the common flags (the positional
``spec``, ``--set``, ``--debug``) as ``parents`` and fills ``args.params`` / ``args.train_overrides``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

from ..cli import number_type  # cnndsl.cli imports this module while it builds its parser

RUN_DIR_NOTE = ("SPEC may be a run directory (or a checkpoint in one): the spec, --set values and train config "
                "the run recorded are reused; flags given here override them.")
# shortcut flags → train keys
SHORTCUTS = (("epochs", "epochs"), ("batch_size", "batch_size"), ("device", "device"), ("seed", "seed"),
             ("runs_dir", "runs_dir"), ("max_time", "max_time"), ("target_acc", "target_acc"))


def collect_overrides(args: Any) -> dict[str, Any]:
    """Train overrides: ``--set train.*`` (``args.train_overrides``, filled by cnndsl.cli) and the
    shortcut flags."""
    out: dict[str, Any] = dict(getattr(args, "train_overrides", None) or {})
    for flag, key in SHORTCUTS:
        v = getattr(args, flag, None)
        if v is not None:
            out[key] = v
    return out


def network_params(args: Any) -> dict[str, Any]:
    """Network parameters from ``--set`` (``args.params``, filled by cnndsl.cli)."""
    return dict(getattr(args, "params", None) or {})


def _main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 reports


def train_cmd(args: Any) -> int:
    from .api import train

    res = train(args.spec, params=network_params(args), data_root=args.data_root, run_dir=args.run_dir,
                resume=args.resume, force=args.force, quiet=args.quiet, limits=getattr(args, "limits", None),
                init_from=args.init_from, init_partial=args.init_partial, detect_anomaly=args.detect_anomaly,
                **collect_overrides(args))  # refuses a bad spec before torch is imported
    from .distributed import leave

    return leave(_report_run(res, args))


def _report_run(res: Any, args: Any) -> int:
    if _main_process():
        from cnndsl.inspect.curves import write_run_curves
        write_run_curves(res.run_dir)  # curves.png, when matplotlib is installed
    resume = f"cnndsl train {args.spec} --resume {res.run_dir}"
    if res.status == "interrupted":
        if _main_process():
            print(f"interrupted; resume with: {resume}", file=sys.stderr)
        return 130
    if not _main_process():
        return 0
    acc = f"{res.val_acc:.2%}" if res.val_acc is not None else "n/a"
    ended = "" if res.ended_by == "completed" else f" ({res.ended_by}: {res.reason})"
    print(f"done: {res.epochs} epochs, {res.steps} steps in {res.seconds:.1f}s, val acc {acc}, "
          f"{res.images_per_s:,.0f} img/s; run dir {res.run_dir}{ended}")
    if res.status == "stopped":
        print(f"continue with: {resume}", file=sys.stderr)
    return 0


def _run_and_spec(args: Any) -> tuple[Any, Any]:
    """(run, spec) for :func:`cnndsl.evaluate` / :func:`cnndsl.predict`: SPEC with ``--checkpoint``,
    else SPEC is the run directory or checkpoint."""
    return (args.checkpoint, args.spec) if getattr(args, "checkpoint", None) else (args.spec, None)


def eval_cmd(args: Any) -> int:
    image = getattr(args, "confusion_image", None)
    if image:
        from cnndsl.inspect import viz
        viz.require_matplotlib("eval --confusion-image")
        viz.check_output(image, "--confusion-image")
    from .api import evaluate

    run, spec = _run_and_spec(args)
    ev = evaluate(run, spec=spec, split=args.split, tta=args.tta, ema=args.ema, params=network_params(args),
                  data_root=args.data_root, **collect_overrides(args)).as_dict()
    if image:
        from cnndsl.inspect.curves import write_confusion
        print(f"wrote {write_confusion(ev, image)}", file=sys.stderr)
    if args.json:
        import json
        print(json.dumps(ev))
        return 0
    print(f"{ev['split']}: accuracy {ev['acc']:.2%} ({ev['n']} images), loss {ev['loss']:.4f}")
    width = max(len(c) for c in ev["classes"])
    print("per-class accuracy:")
    for c, a in zip(ev["classes"], ev["per_class_acc"]):
        print(f"  {c:>{width}}  {a:.2%}")
    if ev["confusion"] is None:
        print(f"(no confusion matrix for {len(ev['classes']):,} classes)")
        return 0
    print("confusion matrix (rows: true, columns: predicted):")
    cell = max(5, max((len(str(c)) for c in ev["classes"]), default=1) + 1)
    print(f"  {'':>{width}} " + " ".join(f"{str(c)[:cell]:>{cell}}" for c in ev["classes"]))
    for c, row in zip(ev["classes"], ev["confusion"]):
        print(f"  {c:>{width}} " + " ".join(f"{v:{cell}d}" for v in row))
    return 0


def predict_cmd(args: Any) -> int:
    from .api import predict

    run, spec = _run_and_spec(args)
    res = predict(run, args.images, spec=spec, top_k=args.top_k, ema=args.ema, params=network_params(args),
                  data_root=getattr(args, "data_root", None), **collect_overrides(args))
    if args.json:
        import json
        print(json.dumps([r.as_dict() for r in res]))
        return 0
    for r in res:
        print(r.image + ": " + ", ".join(f"{c} ({p:.1%})" for c, p in r.top))
    return 0


# ----------------------------------------------------------------------------- registration

def _duration(text: str) -> float:
    """``--max-time``: seconds, or 90s, 15m, 1h30m, 01:30:00."""
    from .stopping import parse_duration

    try:
        value = float(parse_duration(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' must be a positive time")
    return value


def _fraction(text: str) -> float:
    """``--target-acc``: an accuracy in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not an accuracy in (0, 1] (write 0.98 for 98 %)")
    return value


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
    t.add_argument("--max-time", dest="max_time", type=_duration, metavar="TIME",
                   help="stop cleanly (resumable) after this much wall-clock time: seconds, 90s, 15m, 1h30m "
                        "(train.max_time)")
    t.add_argument("--target-acc", dest="target_acc", type=_fraction, metavar="ACC",
                   help="stop when the validation accuracy reaches ACC, e.g. 0.98 (train.target_acc)")
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
    t.set_defaults(func=train_cmd)

    e = subparsers.add_parser("eval", parents=list(parents), help="evaluate a checkpoint",
                              description="Accuracy, per-class accuracy and confusion matrix of a checkpoint. "
                                          + RUN_DIR_NOTE)
    _shared(e)
    e.add_argument("--checkpoint", help="checkpoint file or run directory (default: SPEC when it is one)")
    e.add_argument("--split", choices=["val", "test"], default="val")
    e.add_argument("--tta", choices=["none", "flip", "flip_translate"], help="test-time augmentation")
    e.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="evaluate the EMA weights stored in the checkpoint (--no-ema: the model's own); default: "
                        "the weights validation used, the EMA's when the train section keeps one")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--confusion-image", dest="confusion_image", metavar="FILE",
                   help="also draw the confusion matrix to FILE (.png, .svg, .pdf; needs matplotlib)")
    e.set_defaults(func=eval_cmd)

    p = subparsers.add_parser("predict", parents=list(parents), help="classify image files",
                              description="Top-k classes with probabilities for each image. " + RUN_DIR_NOTE)
    p.add_argument("--device", help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help="checkpoint file or run directory (default: SPEC when it is one)")
    p.add_argument("--top-k", dest="top_k", type=number_type(int, 1), default=5, help="classes shown per image")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="use the EMA weights stored in the checkpoint (--no-ema: the model's own); default: as eval")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("images", nargs="+", help="image files")
    p.set_defaults(func=predict_cmd)
