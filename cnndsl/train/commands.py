"""``cnndsl train | eval | predict``: library functions (``run_train`` ...) and argparse handlers."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

from cnndsl.errors import error
from cnndsl.files import check_output_dir, file_span, writing
from . import config as C


def collect_overrides(args: Any) -> dict[str, Any]:
    """Train overrides: ``--set train.*`` (``args.train_overrides``, filled by cnndsl.cli) and the
    shortcut flags."""
    out: dict[str, Any] = dict(getattr(args, "train_overrides", None) or {})
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("device", "device"),
                      ("seed", "seed"), ("runs_dir", "runs_dir")):
        v = getattr(args, flag, None)
        if v is not None:
            out[key] = v
    return out


def network_params(args: Any) -> dict[str, Any]:
    """Network parameters from ``--set`` (``args.params``, filled by cnndsl.cli)."""
    return dict(getattr(args, "params", None) or {})


def config_of(spec: Any, overrides: dict[str, Any] | None = None) -> C.TrainConfig:
    return C.validate(C.apply_overrides(getattr(spec, "train", None), overrides or {}), spec, overrides)


def _analysis(spec: Any, params: dict[str, Any], limits: Any = None) -> Any:
    """The compiler's analysis of the network (None for hand-built test specs, which are not Specs)."""
    import cnndsl
    from cnndsl.ir import Spec

    return cnndsl.analyze(spec, limits=limits, **params) if isinstance(spec, Spec) else None


def _net_shapes(analysis: Any) -> tuple[tuple[int, ...] | None, int | None]:
    """(input C,H,W, classes = width of the first output) when the network was analysed."""
    if analysis is None:
        return None, None
    return tuple(analysis.input_shape), analysis.output_shapes[0][0]


def _report(warnings: list[Any], seen: set[str] | None = None) -> None:
    """Print warnings (rank 0 only), each once."""
    from cnndsl.errors import use_color

    if os.environ.get("RANK", "0") != "0":
        return
    for w in warnings:
        if seen is not None and w.message in seen:
            continue
        if seen is not None:
            seen.add(w.message)
        print(w.render(color=use_color(sys.stderr)), file=sys.stderr)


def seed_all(seed: int) -> None:
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def new_run_dir(runs_dir: str, spec: Any) -> Path:
    stem = Path(spec.path).stem if getattr(spec, "path", None) else "spec"
    base = Path(runs_dir) / stem / time.strftime("%Y%m%d-%H%M%S")
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{base.name}-{i}"), i + 1
    return path


def run_train(spec: Any, *, params: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None,
              build: Callable[..., Any] | None = None, data_root: str | None = None, run_dir: str | None = None,
              resume: str | None = None, force: bool = False, quiet: bool = False, progress: bool = True,
              detect_anomaly: bool = False, stop_after_steps: int | None = None, limits: Any = None,
              init_from: str | None = None, init_partial: bool = False):
    """Train the network a spec describes; returns :class:`cnndsl.train.loop.Result`.
    ``limits``: :class:`cnndsl.Limits` for the expansion (``--max-params``, ``--max-layers``);
    ``init_from``: weights to start from, by name (``--init-from``, see :mod:`cnndsl.weights.init`)."""
    from cnndsl.canonical import spec_hash
    from .datasets import info_of_loaded
    from .preflight import check_fit, precision_warning, preflight
    from .rundir import write_run_json

    params = params or {}
    # the run directory, the train section and the network are checked before torch is imported
    if run_dir and not resume:
        rdir = check_output_dir(run_dir, "--run-dir")
    analysis = _analysis(spec, params, limits)
    pf = preflight(spec, analysis, overrides, guess_device=False)  # the checks `cnndsl check` makes
    cfg, seen = pf.config, set()
    _report(pf.warnings, seen)
    if not (run_dir or resume):
        rdir = check_output_dir(new_run_dir(cfg.runs_dir, spec), "train.runs_dir")
    import torch
    from . import distributed as D, loop
    from .data import load as load_data

    device = loop.resolve_device(cfg.device)
    _report([w for w in [precision_warning(spec, cfg, device.type, overrides)] if w], seen)
    dist = D.init(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    resume_state = None
    if resume:  # checked before anything is written: a bad --resume must not touch the disk
        from .resume import open_resume
        rdir, _, resume_state = open_resume(resume, spec_hash(spec), force)
    rdir = Path(D.broadcast_object(str(rdir), dist))
    seed_all(cfg.seed)
    from cnndsl.weights.init import init_from_flag, report_weights, without_initial_weights
    if build is None:
        import cnndsl
        with without_initial_weights() if resume else contextlib.nullcontext():  # the checkpoint has them
            model = cnndsl.build(analysis)  # the analysis already holds the expanded network
    else:
        model = build(spec, **params)
    if init_from and not resume:   # --init-from: weights by name (cnndsl.weights.init)
        init_from_flag(model, init_from, init_partial)
    report_weights(model, not dist.main)   # even with --quiet: what the run starts from
    shape, classes = _net_shapes(analysis)
    if shape is None:
        shape = getattr(model, "cnndsl_input_shape", None)
    data = load_data(cfg.data, data_root=data_root, shape=shape, num_classes=classes)
    _report(check_fit(spec, cfg, analysis, info_of_loaded(data), overrides, shape), seen)  # the data as read
    if dist.main:
        with writing(rdir):
            rdir.mkdir(parents=True, exist_ok=True)
            src = getattr(spec, "path", None)
            if src and Path(src).exists() and not resume:
                shutil.copyfile(src, rdir / ("spec" + Path(src).suffix))
            (rdir / "data.json").write_text(json.dumps({"name": data.name, "classes": data.classes,
                                                        "mean": data.mean, "std": data.std,
                                                        "shape": list(data.shape), "params": params}) + "\n")
    digest = spec_hash(spec)
    if dist.main:
        with writing(rdir):
            write_run_json(rdir, spec, params, overrides, digest)
    opts = loop.RunOptions(run_dir=rdir, spec_hash=digest, resume=resume, resume_state=resume_state,
                           force=force, quiet=quiet,
                           progress=progress, detect_anomaly=detect_anomaly, stop_after_steps=stop_after_steps)
    try:
        result = loop.fit(model, cfg, data, opts, device=device, dist=dist)
        D.barrier(dist)  # every rank done (rank 0 may still be writing) before the group is torn down
        return result
    finally:
        D.shutdown(dist)


# ----------------------------------------------------------------------------- CLI handlers

def _load_spec(args: Any) -> Any:
    import cnndsl
    return cnndsl.load(args.spec)


def _recorded(args: Any, command: str) -> Any:
    """The spec, checkpoint and recorded values for eval/predict (``args.checkpoint`` is filled in)."""
    from .rundir import resolve

    rec = resolve(args, command)
    args.checkpoint = rec.checkpoint
    return rec


def _eval_config(spec: Any, args: Any, state: dict[str, Any], recorded: Any = None) -> C.TrainConfig:
    """The train config a checkpoint was trained with (config.json, else the checkpoint's own),
    with the command line's overrides; the spec's train section when neither recorded one."""
    from .rundir import recorded_config

    train = getattr(recorded, "train", None)
    if train is None and isinstance(state.get("config"), str):
        try:
            train = json.loads(state["config"])
        except ValueError:
            train = None
    if isinstance(train, dict):
        return recorded_config(train, collect_overrides(args))
    return config_of(spec, collect_overrides(args))


def train_cmd(args: Any) -> int:
    rc = _train_cmd(args)  # refuses a bad spec before torch is imported
    from .distributed import leave

    return leave(rc)


def _train_cmd(args: Any) -> int:
    spec = _load_spec(args)
    res = run_train(spec, params=network_params(args), overrides=collect_overrides(args),
                    data_root=args.data_root, run_dir=args.run_dir, resume=args.resume, force=args.force,
                    quiet=args.quiet, detect_anomaly=args.detect_anomaly, limits=getattr(args, "limits", None),
                    init_from=getattr(args, "init_from", None), init_partial=getattr(args, "init_partial", False))
    main = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 reports
    if main:
        from cnndsl.inspect.curves import write_run_curves
        write_run_curves(res.run_dir)  # curves.png, when matplotlib is installed
    if res.status == "interrupted":
        if main:
            print(f"interrupted; resume with: cnndsl train {args.spec} --resume {res.run_dir}", file=sys.stderr)
        return 130
    if not main:
        return 0
    acc = f"{res.val_acc:.2%}" if res.val_acc is not None else "n/a"
    print(f"done: {res.epochs} epochs, {res.steps} steps in {res.seconds:.1f}s, val acc {acc}, "
          f"{res.images_per_s:,.0f} img/s; run dir {res.run_dir}")
    return 0


def _model_and_state(spec: Any, args: Any, build: Callable[..., Any] | None = None, recorded: Any = None):
    from . import checkpoint as ckpt

    params = recorded.params if recorded is not None else network_params(args)
    if build is None:
        import cnndsl
        build = cnndsl.build
    from cnndsl.weights.init import without_initial_weights

    with without_initial_weights():   # a backbone's or init's weights: the checkpoint replaces them
        model = build(spec, **params)
    path = ckpt.resolve(args.checkpoint)
    state = ckpt.load(path)
    weights = ckpt.model_state(state, path)
    if getattr(args, "ema", False) and state.get("ema"):
        weights = {**weights, **state["ema"]}
    bad = ckpt.non_finite(weights)
    if bad:
        raise error(f"this checkpoint holds non-finite weights ({bad} has NaN or Inf values)", file_span(path),
                    "the run diverged before this checkpoint was written: use an earlier one (best.pt) or "
                    "train again with a lower learning rate")
    ckpt.load_weights(model, weights, path)
    return model, state, params


def run_eval(spec: Any, args: Any, build: Callable[..., Any] | None = None,
             recorded: Any = None) -> dict[str, Any]:
    """Evaluate a checkpoint on the validation or test split (``recorded``: what its run recorded,
    from :func:`cnndsl.train.rundir.resolve`)."""
    from . import loop
    from .augment import norm_stats
    from .data import load as load_data
    from .evaluate import evaluate
    from .loader import make_loader

    model, state, params = _model_and_state(spec, args, build, recorded)
    cfg = _eval_config(spec, args, state, recorded)
    device = loop.resolve_device(cfg.device)
    shape, classes = _net_shapes(_analysis(spec, params))
    data = load_data(cfg.data, data_root=args.data_root, shape=shape or getattr(model, "cnndsl_input_shape", None),
                     num_classes=classes)
    split = data.test if args.split == "test" else data.val
    if split is None or len(split) == 0:
        raise error(f"dataset '{data.name}' has no {args.split} split", hint="use --split val")
    mean, std = norm_stats(cfg.augment, data.mean, data.std)
    model.to(device)
    ld = make_loader(split, cfg.augment, mean, std, kind="auto", batch_size=cfg.eval_batch_size or 2 * cfg.batch_size,
                     train=False, drop_last=False, seed=cfg.seed, device=device)
    ev = evaluate(model, ld, cfg.loss, data.num_classes, tta=args.tta or cfg.tta)
    ev["classes"] = data.classes
    ev["split"] = args.split
    return ev


def eval_cmd(args: Any) -> int:
    image = getattr(args, "confusion_image", None)
    if image:
        from cnndsl.inspect import viz
        viz.require_matplotlib("eval --confusion-image")
        viz.check_output(image, "--confusion-image")
    rec = _recorded(args, "eval")
    ev = run_eval(rec.spec, args, recorded=rec)
    if image:
        from cnndsl.inspect.curves import write_confusion
        print(f"wrote {write_confusion(ev, image)}", file=sys.stderr)
    if args.json:
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


def run_predict(spec: Any, args: Any, build: Callable[..., Any] | None = None,
                recorded: Any = None) -> list[dict[str, Any]]:
    """Top-k classes with probabilities for each image file."""
    _check_images(args.images)
    import torch
    from .data import read_image

    model, state, params = _model_and_state(spec, args, build, recorded)
    meta_path = Path(args.checkpoint)
    meta_file = (meta_path if meta_path.is_dir() else meta_path.parent) / "data.json"
    cfg = _eval_config(spec, args, state, recorded)
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
    else:
        from .data import load as load_data
        shape, classes = _net_shapes(_analysis(spec, params))
        d = load_data(cfg.data, data_root=getattr(args, "data_root", None), shape=shape, num_classes=classes)
        meta = {"classes": d.classes, "mean": d.mean, "std": d.std, "shape": list(d.shape)}
    from .augment import eval_images
    c, h, w = meta["shape"]
    model.eval()
    results = []
    with torch.inference_mode():
        for path in args.images:  # read as the dataset's images, then what validation does to them
            x = eval_images(read_image(path, (h, w), c).unsqueeze(0), cfg.augment, meta["mean"], meta["std"])
            out = model(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            prob = out.float().softmax(1)[0]
            k = min(args.top_k, prob.numel())
            top = prob.topk(k)
            results.append({"image": path, "top": [{"class": meta["classes"][i], "prob": float(p)}
                                                   for p, i in zip(top.values.tolist(), top.indices.tolist())]})
    return results


def _check_images(paths: list[str]) -> None:
    """Before anything heavy (the checkpoint, torch): a FIFO, a device or a missing image is refused now."""
    for path in paths:
        if not os.path.isfile(path):
            raise error("this image is not a regular file (a FIFO, a device or a directory?)" if os.path.exists(path)
                        else "no such image file",
                        file_span(path), "pass image files (PNG, JPEG, ...)")


def predict_cmd(args: Any) -> int:
    _check_images(args.images)
    rec = _recorded(args, "predict")
    res = run_predict(rec.spec, args, recorded=rec)
    if args.json:
        print(json.dumps(res))
        return 0
    for r in res:
        print(r["image"] + ": " + ", ".join(f"{t['class']} ({t['prob']:.1%})" for t in r["top"]))
    return 0
