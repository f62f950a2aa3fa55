"""The training loop: :func:`fit`, from a validated config, a model and data to a run.

Per step there is no host synchronisation on accelerators: loss sums, correct counts, the first
non-finite step and the last finite loss accumulate on the device (:class:`S.Meters`) and are read
every ``log_every`` steps (every step on the CPU, where reading is free) and before every
checkpoint, so no checkpoint is ever written after a non-finite loss.
"""

from __future__ import annotations

import math
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from cnndsl import globs
from cnndsl.emit.frozen import hold_frozen_norms
from cnndsl.errors import error
from cnndsl.files import writing
from . import checkpoint as ckpt, config as C, distributed as D, resume as R, state as S
from .data import Data
from .evaluate import compute_loss, evaluate, init_whitening
from .loader import make_loader
from .metrics import Progress, RunLogger
from .augment import eval_images, mix_batch, mix_seed, norm_stats
from .stopping import Stop, Stopper


@dataclass
class RunOptions:
    """Command-line level options of a run."""

    run_dir: Path  # where metrics and checkpoints go
    spec_hash: str = ""
    resume: str | None = None  # run directory or checkpoint to continue from
    resume_state: dict[str, Any] | None = None  # its state, already checked (run_train loads it first)
    force: bool = False  # resume even if the spec hash differs
    quiet: bool = False
    progress: bool = True
    detect_anomaly: bool = False
    stop_after_steps: int | None = None  # testing aid: stop (as if interrupted) after N steps
    on_epoch: Callable[[dict[str, Any]], Any] | None = None  # called with each epoch's record; False stops
    started: float | None = None  # time.perf_counter() when the run started (max_time counts from it)


@dataclass
class Result:
    """What :func:`cnndsl.train` returns: the trained model, its history and where the run was written."""

    run_dir: Path  # config.json, metrics.jsonl/csv, last.pt, best.pt, summary.json
    status: str  # completed | stopped (max_time; resumable) | interrupted | failed
    epochs: int  # epochs completed
    steps: int  # optimizer steps taken
    seconds: float  # wall-clock time of the loop (this invocation)
    images_per_s: float  # training throughput over every process
    val_acc: float | None  # the last validation's accuracy
    best_val_acc: float | None  # the best validation accuracy (the weights of best.pt)
    ended_by: str = "completed"  # completed | target_acc | early_stop | on_epoch | max_time | interrupted | failed
    reason: str = ""  # one line, as in summary.json
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per epoch (metrics.jsonl)
    model: nn.Module | None = None  # the trained (unwrapped) model, on the device it trained on


def resolve_device(name: str) -> torch.device:
    """``auto``: cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise error(f"unknown device '{name}'", hint="use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise error("device 'cuda' requested but CUDA is not available", hint="use --device cpu or auto")
    return dev


class _Interrupt:
    """SIGINT sets a flag; the loop saves a resumable checkpoint and stops at the next step."""

    def __init__(self) -> None:
        self.flag, self.prev = False, None

    def __enter__(self) -> "_Interrupt":
        try:
            self.prev = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not in the main thread
            self.prev = None
        return self

    def _handle(self, *_: Any) -> None:
        if self.flag:  # second Ctrl-C: give up immediately
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *a: Any) -> None:
        if self.prev is not None:
            signal.signal(signal.SIGINT, self.prev)


def ended_by(exc: BaseException) -> dict[str, Any]:
    """Why a run stopped on an exception, for summary.json: a one-line ``reason`` and the ``error``
    (its type and full text: the rendered diagnostic for user errors, the message for bugs)."""
    from cnndsl.errors import CnnError

    if isinstance(exc, KeyboardInterrupt):
        return {"reason": "interrupted (KeyboardInterrupt: a second Ctrl-C)",
                "error": {"type": "KeyboardInterrupt", "message": ""}}
    if isinstance(exc, CnnError):
        first = exc.diagnostics[0].message if exc.diagnostics else str(exc)
        return {"reason": first, "error": {"type": "CnnError", "message": exc.render()}}
    text = str(exc)
    return {"reason": f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__,
            "error": {"type": type(exc).__name__, "message": text}}


def _freeze(model: nn.Module, cfg: C.TrainConfig, epoch: int) -> None:
    """Timed freezing: ``freeze_after`` rules whose epoch has come stop their parameters' training."""
    for rule in cfg.freeze_after:
        if epoch >= rule.epochs:
            pats = globs.as_list(rule.match)
            for n, p in model.named_parameters():
                if globs.match_any(n, pats):
                    p.requires_grad_(False)


def _end_of_epoch(parts: S.Parts, meters: S.Meters, pos: S.Position, cfg: C.TrainConfig, data: Data,
                  val_loader: Any, dist: D.Dist, *, seen: int, seconds: float, last: bool) -> dict[str, Any]:
    """The epoch's record: train loss and accuracy over every process, lr, speed, and validation
    (with the EMA weights when there are some) when it is due."""
    train_loss, train_acc = meters.totals(dist)
    record: dict[str, Any] = {
        "epoch": pos.epoch + 1, "step": pos.step, "train_loss": train_loss, "train_acc": train_acc,
        "lr": parts.opt.param_groups[0]["lr"], "images_per_s": seen * dist.world / max(seconds, 1e-9),
        "seconds": seconds}
    if val_loader is not None and ((pos.epoch + 1) % cfg.val_every == 0 or last):
        ema, model = parts.ema, parts.model
        saved = ema.swap(model) if ema is not None and cfg.ema.type == "ema" else None
        ev = evaluate(model, val_loader, cfg.loss, data.num_classes, tta=cfg.tta, autocast=parts.autocast,
                      reduce=lambda t: D.all_reduce_sum(t, dist))
        if saved is not None:
            ema.restore(model, saved)
        record.update(val_loss=ev["loss"], val_acc=ev["acc"])
        if not math.isfinite(ev["loss"]):
            raise error(f"validation loss is {ev['loss']} after epoch {pos.epoch + 1}; stopping",
                        hint="the weights diverged; lower the learning rate")
    return record


def _epoch_line(record: dict[str, Any], num_epochs: int) -> str:
    msg = (f"epoch {record['epoch']}/{num_epochs}: train loss {record['train_loss']:.4f} "
           f"acc {record['train_acc']:.2%}")
    if "val_acc" in record:
        msg += f", val loss {record['val_loss']:.4f} acc {record['val_acc']:.2%}"
    return msg + f", {record['images_per_s']:,.0f} img/s, {record['seconds']:.1f}s"


# ----------------------------------------------------------------------------------------- fit

def fit(model: nn.Module, cfg: C.TrainConfig, data: Data, opts: RunOptions, *,
        device: torch.device | None = None, dist: D.Dist | None = None) -> Result:
    """Train ``model`` (already built and seeded) on ``data`` as ``cfg`` says; write the run dir."""
    dist = dist or D.Dist()
    device = device or resolve_device(cfg.device)
    main = dist.main
    run_dir = Path(opts.run_dir)
    if main:
        with writing(run_dir, "create the run directory"):
            run_dir.mkdir(parents=True, exist_ok=True)
        ckpt.clean_stale_temps(run_dir)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark and not cfg.deterministic
        torch.set_float32_matmul_precision("high")
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    mean, std = norm_stats(cfg.augment, data.mean, data.std)

    # data
    loader_kw = dict(device=device, num_workers=cfg.num_workers, channels_last=cfg.channels_last,
                     rank=dist.rank, world=dist.world, seed=cfg.seed)
    train_loader = make_loader(data.train, cfg.augment, mean, std, kind=cfg.loader, batch_size=cfg.batch_size,
                               train=True, drop_last=cfg.drop_last, **loader_kw)
    val_loader = make_loader(data.val, cfg.augment, mean, std, kind="auto",
                             batch_size=cfg.eval_batch_size or 2 * cfg.batch_size, train=False,
                             drop_last=False, **loader_kw) if len(data.val) else None
    spe = len(train_loader)
    if spe == 0:
        raise error(f"batch_size {cfg.batch_size} is larger than the training set ({len(data.train)} images "
                    f"per process) with drop_last", hint="lower batch_size or set drop_last: false")
    total_steps = math.ceil(cfg.epochs * spe)
    num_epochs = math.ceil(total_steps / spe)

    resume_state, resume_path = opts.resume_state, Path(opts.resume or run_dir)
    if resume_state is None and opts.resume:
        _, resume_path, resume_state = R.open_resume(opts.resume, opts.spec_hash, opts.force)
    if resume_state is None and data.train.images is not None:
        init_whitening(model, eval_images(data.train.images[:5000], cfg.augment, mean, std))
    parts = S.build_parts(model, cfg, device, dist, total_steps, spe)
    meters = S.Meters(device)
    pos = S.resume(resume_state, resume_path, parts, meters) if resume_state is not None else S.Position()
    if resume_state is not None and parts.stages.applied and (dist.enabled or cfg.compile):
        parts.train_model = S.wrap(model, cfg, dist, device)   # the replayed stages changed what trains
    stopper = Stopper(cfg, opts.on_epoch, opts.started)
    stopper.load(pos.stopping)

    logger = RunLogger(run_dir, enabled=main)
    progress = Progress(quiet=opts.quiet, enabled=main and opts.progress)
    if main:
        logger.write_json("config.json", {"train": cfg.model_dump(mode="json"), "device": str(device),
                                          "world_size": dist.world, "steps_per_epoch": spe,
                                          "total_steps": total_steps, "spec_hash": opts.spec_hash})
    sync_every = 1 if device.type == "cpu" else cfg.log_every
    time_every = cfg.log_every if dist.enabled else 1  # processes agree on running out of time at a sync
    stop: Stop | None = None
    train_time, train_images = 0.0, 0
    t_run = time.perf_counter()

    def save(name: str) -> None:
        meters.check_finite(pos.epoch)
        if not main:
            return
        pos.stopping = stopper.state()
        st = S.checkpoint_state(parts, pos, meters, cfg, opts)
        bad = ckpt.non_finite({"model": st["model"]})
        if bad:
            raise error(f"non-finite value in {bad} at step {pos.step} (epoch {pos.epoch + 1}); "
                        "checkpoint not written")
        ckpt.save_atomic(st, run_dir / name)

    failure: dict[str, Any] | None = None
    anomaly = torch.autograd.detect_anomaly() if opts.detect_anomaly else nullcontext()
    p = parts
    try:
        if resume_state is None:
            save("last.pt")  # a run killed before its first epoch ends can still be resumed
        with _Interrupt() as interrupt, anomaly:
            while pos.epoch < num_epochs and pos.step < total_steps:
                _freeze(model, cfg, pos.epoch)
                for line in p.stages.advance(pos.epoch, pos.step):
                    progress.line(line)
                    if dist.enabled or cfg.compile:   # DDP registers the trainable parameters
                        p.train_model = S.wrap(model, cfg, dist, device)
                model.train()
                hold_frozen_norms(model)  # any module: frozen norm layers keep their statistics
                n_batches = min(spe, total_steps - pos.epoch * spe)
                progress.start_epoch(pos.epoch, num_epochs, n_batches, pos.batch)
                t0, seen = time.perf_counter(), 0
                for b, (x, y) in enumerate(train_loader.epoch(pos.epoch, pos.batch), pos.batch):
                    if b >= n_batches:
                        break
                    target = y
                    if cfg.mixup or cfg.cutmix:
                        x, target = mix_batch(x, y, data.num_classes, cfg.mixup, cfg.cutmix,
                                              mix_seed(cfg.seed, pos.step, 0x313))
                    with p.autocast() if p.autocast else nullcontext():
                        out = p.train_model(x)
                    loss = compute_loss(out, target, cfg.loss)
                    p.opt.zero_grad(set_to_none=True)
                    p.scaler.scale(loss).backward()
                    if cfg.grad_clip:
                        p.scaler.unscale_(p.opt)
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    p.scaler.step(p.opt)
                    p.scaler.update()
                    p.sched.step()
                    pos.step += 1
                    if p.ema is not None:
                        p.ema.update(model, pos.step)
                    meters.add(loss, out, y, pos.step, cfg.loss.reduction)
                    seen += y.shape[0]
                    if pos.step % sync_every == 0:
                        meters.check_finite(pos.epoch)
                    last_batch = b + 1 == n_batches
                    if main and (pos.step % cfg.log_every == 0 or last_batch):
                        progress.update(b + 1, *meters.running(), seen / max(time.perf_counter() - t0, 1e-9))
                    pos.batch = b + 1
                    if cfg.checkpoint_every and pos.step % cfg.checkpoint_every == 0 and not last_batch:
                        save("last.pt")
                    if last_batch:
                        continue
                    if interrupt.flag or (opts.stop_after_steps and pos.step >= opts.stop_after_steps):
                        stop = Stop("interrupted", f"interrupted at step {pos.step}; resumable from last.pt")
                    elif stopper.max_time and pos.step % time_every == 0 and \
                            D.broadcast_object(stopper.out_of_time(), dist):
                        stop = stopper.time_stop(pos.step, pos.epoch, False)
                    if stop is not None:
                        save("last.pt")
                        break
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                dt = time.perf_counter() - t0
                meters.check_finite(pos.epoch)
                if stop is not None:
                    break
                train_time += dt
                train_images += seen * dist.world
                if p.ema is not None and cfg.ema.type == "lookahead" and pos.step >= total_steps:
                    p.ema.update(model, pos.step, final=True)
                record = _end_of_epoch(p, meters, pos, cfg, data, val_loader, dist, seen=seen, seconds=dt,
                                       last=pos.epoch + 1 == num_epochs)
                pos.history.append(record)
                logger.log_epoch(record)
                progress.line(_epoch_line(record, num_epochs))
                meters.reset()
                pos.epoch, pos.batch = pos.epoch + 1, 0
                is_best = "val_acc" in record and (pos.best is None or record["val_acc"] > pos.best)
                if is_best:
                    pos.best = record["val_acc"]
                if interrupt.flag:
                    stop = Stop("interrupted", f"interrupted after epoch {pos.epoch}; resumable from last.pt")
                else:  # every process takes the main one's decision (on_epoch runs everywhere)
                    stop = D.broadcast_object(stopper.after_epoch(record), dist)
                save("last.pt")
                if is_best:
                    save("best.pt")
                if stop is not None:
                    break
    except BaseException as exc:
        failure = ended_by(exc)
        stop = Stop("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", failure["reason"])
        raise
    finally:
        progress.close()
        seconds = time.perf_counter() - t_run
        last = pos.history[-1] if pos.history else {}
        stop = stop or Stop("completed", f"finished {pos.epoch} epoch(s), {pos.step} steps")
        result = Result(run_dir, stop.status, pos.epoch, pos.step, seconds, train_images / max(train_time, 1e-9),
                        last.get("val_acc"), pos.best, stop.ended_by, stop.reason, pos.history, model)
        if main:
            logger.write_json("summary.json", {
                "status": stop.status, "ended_by": stop.ended_by, "reason": stop.reason,
                **({"error": failure["error"]} if failure else {}), "epochs_completed": pos.epoch, "steps": pos.step,
                "total_steps": total_steps, "seconds": seconds, "train_seconds": train_time,
                "images_per_s": result.images_per_s, "val_acc": result.val_acc, "best_val_acc": pos.best,
                "final": last, "device": str(device), "world_size": dist.world,
                "torch_version": str(torch.__version__), "spec_hash": opts.spec_hash})
            logger.close()
    return result
