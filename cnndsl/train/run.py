"""The training runner as a library: :func:`run_train`, :func:`run_eval`, :func:`run_predict`.

Typed on :class:`cnndsl.ir.Spec`; the public face is :mod:`cnndsl.train.api` (``cnndsl.train``,
``cnndsl.evaluate``, ``cnndsl.predict``) and the command line (:mod:`cnndsl.train.cli`) goes through it.
torch is imported only after the spec, its train section and the network have been checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnndsl.errors import Diagnostic, error
from cnndsl.files import check_output_dir, file_span, writing
from cnndsl.ir import Spec

from . import config as C

if TYPE_CHECKING:
    from cnndsl.analysis import Analysis
    from cnndsl.expand import Limits

    from .loop import Result


def config_of(spec: Spec, overrides: dict[str, Any] | None = None) -> C.TrainConfig:
    """The spec's train section, validated, with ``overrides`` (dotted keys) applied."""
    return C.validate(C.apply_overrides(spec.train, overrides or {}), spec, overrides)


def _net_shapes(analysis: Analysis) -> tuple[tuple[int, ...], int]:
    """(input C,H,W, classes = width of the first output)."""
    return tuple(analysis.input_shape), analysis.output_shapes[0][0]


def _report(warnings: list[Diagnostic], seen: set[str] | None = None) -> None:
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


def new_run_dir(runs_dir: str, spec: Spec) -> Path:
    """``<runs_dir>/<spec stem>/<time>`` (``-1``, ``-2`` ... when taken)."""
    stem = Path(spec.path).stem if spec.path else "spec"
    base = Path(runs_dir) / stem / time.strftime("%Y%m%d-%H%M%S")
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{base.name}-{i}"), i + 1
    return path


def run_train(spec: Spec, *, params: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None,
              data_root: str | None = None, run_dir: str | os.PathLike | None = None,
              resume: str | os.PathLike | None = None, force: bool = False, quiet: bool = False,
              progress: bool = True, detect_anomaly: bool = False,
              on_epoch: Callable[[dict[str, Any]], Any] | None = None, limits: Limits | None = None,
              init_from: str | os.PathLike | None = None, init_partial: bool = False,
              stop_after_steps: int | None = None) -> Result:
    """Train the network ``spec`` describes with its train section and ``overrides``.

    ``params``: network parameters; ``limits``: :class:`cnndsl.Limits` for the expansion
    (``--max-params``, ``--max-layers``); ``on_epoch``: see :func:`cnndsl.train`; ``init_from``:
    weights to start from, by name (``--init-from``, see :mod:`cnndsl.weights.init`; ignored on
    resume, whose checkpoint holds the weights); ``stop_after_steps``: a testing aid (stop as if
    interrupted)."""
    import cnndsl
    from cnndsl.canonical import spec_hash

    from .datasets import info_of_loaded
    from .preflight import check_fit, precision_warning, preflight
    from .rundir import write_run_json

    started = time.perf_counter()
    params = dict(params or {})
    # the run directory, the train section and the network are checked before torch is imported
    if run_dir and not resume:
        rdir = check_output_dir(run_dir, "--run-dir")
    analysis = cnndsl.analyze(spec, limits=limits, **params)
    pf = preflight(spec, analysis, overrides, guess_device=False)  # the checks `cnndsl check` makes
    cfg, seen = pf.config, set()
    _report(pf.warnings, seen)
    if not (run_dir or resume):
        rdir = check_output_dir(new_run_dir(cfg.runs_dir, spec), "train.runs_dir")
    import torch

    from . import distributed as D
    from . import loop
    from .data import load as load_data

    device = loop.resolve_device(cfg.device)
    _report([w for w in [precision_warning(spec, cfg, device.type, overrides)] if w], seen)
    dist = D.init(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    resume_state, digest = None, spec_hash(spec)
    if resume:  # checked before anything is written: a bad --resume must not touch the disk
        from .resume import open_resume

        rdir, _, resume_state = open_resume(resume, digest, force)
    rdir = Path(D.broadcast_object(str(rdir), dist))
    seed_all(cfg.seed)
    from cnndsl.weights.init import init_from_flag, report_weights, without_initial_weights

    with without_initial_weights() if resume else contextlib.nullcontext():  # the checkpoint has them
        model = cnndsl.build(analysis)  # the analysis already holds the expanded network
    if init_from and not resume:   # --init-from: weights by name (cnndsl.weights.init)
        init_from_flag(model, str(init_from), init_partial)
    report_weights(model, not dist.main)   # even with --quiet: what the run starts from
    shape, classes = _net_shapes(analysis)
    data = load_data(cfg.data, data_root=data_root, shape=shape, num_classes=classes)
    _report(check_fit(spec, cfg, analysis, info_of_loaded(data), overrides), seen)  # the data as read
    if dist.main:
        with writing(rdir):
            rdir.mkdir(parents=True, exist_ok=True)
            if spec.path and Path(spec.path).exists() and not resume:
                shutil.copyfile(spec.path, rdir / ("spec" + Path(spec.path).suffix))
            elif not resume:  # spec text (cnndsl.parse): its canonical form, so eval/predict can rebuild it
                from cnndsl.syntax.format import format_cnn

                (rdir / "spec.cnn").write_text(format_cnn(spec))
            (rdir / "data.json").write_text(json.dumps({"name": data.name, "classes": data.classes,
                                                        "mean": data.mean, "std": data.std,
                                                        "shape": list(data.shape), "params": params}) + "\n")
            write_run_json(rdir, spec, params, overrides, digest)
    opts = loop.RunOptions(run_dir=rdir, spec_hash=digest, resume=str(resume) if resume else None,
                           resume_state=resume_state, force=force,
                           quiet=quiet, progress=progress, detect_anomaly=detect_anomaly,
                           stop_after_steps=stop_after_steps, on_epoch=on_epoch, started=started)
    try:
        result = loop.fit(model, cfg, data, opts, device=device, dist=dist)
        D.barrier(dist)  # every rank done (rank 0 may still be writing) before the group is torn down
        return result
    finally:
        D.shutdown(dist)


# ----------------------------------------------------------------------------- eval and predict

def check_images(paths: Sequence[str | os.PathLike]) -> None:
    """Before anything heavy (the checkpoint, torch): a FIFO, a device or a missing image is refused now."""
    for path in paths:
        if not os.path.isfile(path):
            raise error("this image is not a regular file (a FIFO, a device or a directory?)" if os.path.exists(path)
                        else "no such image file", file_span(str(path)), "pass image files (PNG, JPEG, ...)")


def _eval_config(spec: Spec, state: dict[str, Any], recorded_train: dict[str, Any] | None,
                 overrides: dict[str, Any]) -> C.TrainConfig:
    """The train config a checkpoint was trained with (config.json, else the checkpoint's own),
    with ``overrides``; the spec's train section when neither recorded one."""
    from .rundir import recorded_config

    train = recorded_train
    if train is None and isinstance(state.get("config"), str):
        try:
            train = json.loads(state["config"])
        except ValueError:
            train = None
    if isinstance(train, dict):
        return recorded_config(train, overrides)
    return config_of(spec, overrides)


def _model_and_state(spec: Spec, checkpoint: str | os.PathLike, params: dict[str, Any], ema: bool | None,
                     recorded_train: dict[str, Any] | None, overrides: dict[str, Any] | None):
    """(model with the checkpoint's weights, the network's analysis, the train config). ``ema=None``: the
    weights validation used — the EMA's when the run kept one (``ema: ema(...)``) and the checkpoint holds it."""
    import cnndsl
    from cnndsl.weights.init import without_initial_weights

    from . import checkpoint as ckpt

    analysis = cnndsl.analyze(spec, **params)
    with without_initial_weights():   # a backbone's or init's weights: the checkpoint replaces them
        model = cnndsl.build(analysis)
    path = ckpt.resolve(checkpoint)
    state = ckpt.load(path)
    cfg = _eval_config(spec, state, recorded_train, overrides or {})
    if ema is None:
        ema = cfg.ema is not None and cfg.ema.type == "ema"
    weights = ckpt.model_state(state, path)
    if ema and state.get("ema"):
        weights = {**weights, **state["ema"]}
    bad = ckpt.non_finite(weights)
    if bad:
        raise error(f"this checkpoint holds non-finite weights ({bad} has NaN or Inf values)", file_span(path),
                    "the run diverged before this checkpoint was written: use an earlier one (best.pt) or "
                    "train again with a lower learning rate")
    ckpt.load_weights(model, weights, path)
    return model, analysis, cfg


def run_eval(spec: Spec, checkpoint: str | os.PathLike, *, params: dict[str, Any] | None = None,
             overrides: dict[str, Any] | None = None, split: str = "val", tta: str | None = None,
             ema: bool | None = None, data_root: str | None = None,
             recorded_train: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate a checkpoint on the validation or test split: loss, accuracy, per-class accuracy,
    confusion matrix. ``recorded_train``: the train config its run recorded (config.json);
    ``ema``: True/False for the EMA's or the model's weights, None for those validation used."""
    from . import loop
    from .augment import norm_stats
    from .data import load as load_data
    from .evaluate import evaluate
    from .loader import make_loader

    params = dict(params or {})
    model, analysis, cfg = _model_and_state(spec, checkpoint, params, ema, recorded_train, overrides)
    device = loop.resolve_device(cfg.device)
    shape, classes = _net_shapes(analysis)
    data = load_data(cfg.data, data_root=data_root, shape=shape, num_classes=classes)
    part = data.test if split == "test" else data.val
    if part is None or len(part) == 0:
        raise error(f"dataset '{data.name}' has no {split} split", hint="use --split val")
    mean, std = norm_stats(cfg.augment, data.mean, data.std)
    model.to(device)
    ld = make_loader(part, cfg.augment, mean, std, kind="auto", batch_size=cfg.eval_batch_size or 2 * cfg.batch_size,
                     train=False, drop_last=False, seed=cfg.seed, device=device)
    ev = evaluate(model, ld, cfg.loss, data.num_classes, tta=tta or cfg.tta)
    ev["classes"] = data.classes
    ev["split"] = split
    return ev


def run_predict(spec: Spec, checkpoint: str | os.PathLike, images: Sequence[str | os.PathLike], *,
                params: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None, top_k: int = 5,
                ema: bool | None = None, data_root: str | None = None,
                recorded_train: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Top-k classes with probabilities for each image file."""
    check_images(images)
    import torch

    from .data import read_image

    params = dict(params or {})
    model, analysis, cfg = _model_and_state(spec, checkpoint, params, ema, recorded_train, overrides)
    meta_path = Path(checkpoint)
    meta_file = (meta_path if meta_path.is_dir() else meta_path.parent) / "data.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
    else:
        from .data import load as load_data
        shape, classes = _net_shapes(analysis)
        d = load_data(cfg.data, data_root=data_root, shape=shape, num_classes=classes)
        meta = {"classes": d.classes, "mean": d.mean, "std": d.std, "shape": list(d.shape)}
    from .augment import eval_images
    c, h, w = meta["shape"]
    model.eval()
    results = []
    with torch.inference_mode():
        for path in images:  # read as the dataset's images, then what validation does to them
            x = eval_images(read_image(str(path), (h, w), c).unsqueeze(0), cfg.augment, meta["mean"], meta["std"])
            out = model(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            prob = out.float().softmax(1)[0]
            k = min(top_k, prob.numel())
            top = prob.topk(k)
            results.append({"image": str(path), "top": [{"class": meta["classes"][i], "prob": float(p)}
                                                        for p, i in zip(top.values.tolist(), top.indices.tolist())]})
    return results
