"""The training loop: one function, :func:`fit`, from a validated config, a model and data to a run.

Per step there is no host synchronisation on accelerators: loss sums, correct counts, the first
non-finite step and the last finite loss accumulate on the device and are read every ``log_every``
steps (every step on the CPU, where reading is free) and before every checkpoint, so no checkpoint
is ever written after a non-finite loss.
"""

from __future__ import annotations

import json
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
from cnndsl.files import file_span, writing
from . import checkpoint as ckpt, config as C, distributed as D, optim as O, resume as R
from .stages import Stages, groups_mismatch
from .data import Data
from .evaluate import compute_loss, evaluate, init_whitening, outputs
from .loader import make_loader
from .metrics import Progress, RunLogger
from .augment import eval_images, mix_batch, mix_seed, norm_stats


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


@dataclass
class Result:
    run_dir: Path
    status: str
    epochs: int
    steps: int
    seconds: float
    images_per_s: float
    val_acc: float | None
    best_val_acc: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    model: nn.Module | None = None  # the trained (unwrapped) model


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


def autocast_factory(device: torch.device, precision: str) -> Callable[[], Any] | None:
    if precision == "fp32":
        return None
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


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

    def wrapped() -> nn.Module:  # again after a stage changes what trains (DDP registers trainable parameters)
        out = D.wrap(model, dist, device)
        if cfg.compile:
            out = torch.compile(out, mode=None if cfg.compile is True or cfg.compile == "default" else cfg.compile)
        return out
    opt = O.build_optimizer(model, cfg)
    sched = O.build_scheduler(opt, cfg, total_steps, spe)
    stages = Stages(model, cfg, opt, sched)
    model.bn_policy = cfg.bn
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16" and device.type == "cuda")
    ema = O.EMA(model, cfg.ema, total_steps) if cfg.ema else None
    autocast = autocast_factory(device, cfg.precision)

    # state
    epoch, start_batch, step, best = 0, 0, 0, None
    acc_loss = torch.zeros((), device=device, dtype=torch.float64)
    acc_correct = torch.zeros((), device=device, dtype=torch.int64)
    acc_count = torch.zeros((), device=device, dtype=torch.int64)
    history: list[dict[str, Any]] = []
    if resume_state is not None:
        stages.replay(int(resume_state.get("stage", 0)), int(resume_state["global_step"]))
        why = groups_mismatch(opt, resume_state["optimizer"])
        if why:
            raise error(f"cannot resume {opts.resume}: the optimizer state does not fit this run: {why} "
                        "(the spec's freezing or param_groups changed)", file_span(resume_path),
                        hint="--resume continues the same run; to start a new run from these weights "
                             f"(a new stage, a changed spec) use --init-from {opts.resume}")
        pos = R.restore(resume_state, resume_path, model=model, opt=opt, sched=sched, scaler=scaler, ema=ema,
                        accum=(acc_loss, acc_correct, acc_count))
        epoch, start_batch, step, best, history = pos.epoch, pos.batch, pos.step, pos.best, pos.history

    train_model = wrapped()
    bad_step = torch.full((), -1, device=device, dtype=torch.int64)
    last_finite = torch.full((), float("nan"), device=device, dtype=torch.float64)
    logger = RunLogger(run_dir, enabled=main)
    progress = Progress(quiet=opts.quiet, enabled=main and opts.progress)
    if main:
        logger.write_json("config.json", {"train": cfg.model_dump(mode="json"), "device": str(device),
                                          "world_size": dist.world, "steps_per_epoch": spe,
                                          "total_steps": total_steps, "spec_hash": opts.spec_hash})
    sync_every = 1 if device.type == "cpu" else cfg.log_every
    status = "completed"
    train_time, train_images = 0.0, 0
    t_run = time.perf_counter()

    def check_finite(cur_epoch: int) -> None:
        bs = int(bad_step)
        if bs >= 0:
            lf = float(last_finite)
            raise error(f"non-finite loss at step {bs + 1} (epoch {cur_epoch + 1}); last finite loss "
                        f"{'none' if math.isnan(lf) else f'{lf:.6g}'}; stopped without writing a checkpoint "
                        "after that step", hint="lower the learning rate, set grad_clip, or rerun with "
                                                 "--detect-anomaly to find the operation")

    def state(ep: int, batch_idx: int) -> dict[str, Any]:
        return {"format_version": ckpt.FORMAT_VERSION, "cnndsl_version": ckpt.cnndsl_version(),
                "torch_version": str(torch.__version__), "spec_hash": opts.spec_hash,
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "ema": ema.state_dict() if ema else {}, "rng": ckpt.rng_state(),
                "epoch": ep, "global_step": step, "batch_idx": batch_idx,
                "sampler": {"epoch": ep, "seed": cfg.seed, "position": batch_idx * cfg.batch_size},
                "accum": {"loss": acc_loss.clone(), "correct": acc_correct.clone(), "count": acc_count.clone()},
                "best": best, "config": json.dumps(cfg.model_dump(mode="json")),
                "history": json.dumps(history), "stage": stages.applied}

    def save(name: str, ep: int, batch_idx: int) -> None:
        check_finite(ep)
        if not main:
            return
        st = state(ep, batch_idx)
        bad = ckpt.non_finite({"model": st["model"]})
        if bad:
            raise error(f"non-finite value in {bad} at step {step} (epoch {ep + 1}); checkpoint not written")
        ckpt.save_atomic(st, run_dir / name)

    reason: dict[str, Any] | None = None
    anomaly = torch.autograd.detect_anomaly() if opts.detect_anomaly else nullcontext()
    try:
        if resume_state is None:
            save("last.pt", 0, 0)  # a run killed before its first epoch ends can still be resumed
        with _Interrupt() as interrupt, anomaly:
            while epoch < num_epochs and step < total_steps:
                for rule in cfg.freeze_after:
                    for n, p in model.named_parameters():
                        if epoch >= rule.epochs and globs.match_any(n, globs.as_list(rule.match)):
                            p.requires_grad_(False)
                for line in stages.advance(epoch, step):
                    progress.line(line)
                    train_model = wrapped() if dist.enabled or cfg.compile else train_model
                model.train()
                hold_frozen_norms(model)  # any module: frozen norm layers keep their statistics
                n_batches = min(spe, total_steps - epoch * spe)
                progress.start_epoch(epoch, num_epochs, n_batches, start_batch)
                t0, seen = time.perf_counter(), 0
                stopped = False
                for b, (x, y) in enumerate(train_loader.epoch(epoch, start_batch), start_batch):
                    if b >= n_batches:
                        break
                    target = y
                    if cfg.mixup or cfg.cutmix:
                        x, target = mix_batch(x, y, data.num_classes, cfg.mixup, cfg.cutmix,
                                              mix_seed(cfg.seed, step, 0x313))
                    with autocast() if autocast else nullcontext():
                        out = train_model(x)
                    loss = compute_loss(out, target, cfg.loss)
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if cfg.grad_clip:
                        scaler.unscale_(opt)
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    scaler.step(opt)
                    scaler.update()
                    sched.step()
                    step += 1
                    if ema is not None:
                        ema.update(model, step)
                    # device-side bookkeeping
                    ld = loss.detach().double()
                    fin = torch.isfinite(ld)
                    bad_step.copy_(torch.where(~fin & (bad_step < 0), step - 1, bad_step))
                    last_finite.copy_(torch.where(fin & (bad_step < 0), ld, last_finite))
                    first = outputs(out)[0].detach()
                    acc_loss.add_(ld if cfg.loss.reduction == "sum" else ld * y.shape[0])
                    acc_correct.add_((first.argmax(1) == y).sum())
                    acc_count.add_(y.numel())
                    seen += y.shape[0]
                    if step % sync_every == 0:
                        check_finite(epoch)
                    if main and (step % cfg.log_every == 0 or b + 1 == n_batches):
                        cnt = max(int(acc_count), 1)
                        ips = seen / max(time.perf_counter() - t0, 1e-9)
                        progress.update(b + 1, float(acc_loss) / cnt, int(acc_correct) / cnt, ips)
                    last_batch = b + 1 == n_batches
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and not last_batch:
                        save("last.pt", epoch, b + 1)
                    if (interrupt.flag or (opts.stop_after_steps and step >= opts.stop_after_steps)) \
                            and not last_batch:
                        save("last.pt", epoch, b + 1)
                        status, stopped = "interrupted", True
                        break
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                dt = time.perf_counter() - t0
                check_finite(epoch)
                if stopped:
                    break
                train_time += dt
                train_images += seen * dist.world
                if ema is not None and cfg.ema.type == "lookahead" and step >= total_steps:
                    ema.update(model, step, final=True)
                tot = D.all_reduce_sum(torch.stack([acc_loss, acc_correct.double(), acc_count.double()]), dist)
                record: dict[str, Any] = {
                    "epoch": epoch + 1, "step": step, "train_loss": float(tot[0] / tot[2].clamp_min(1)),
                    "train_acc": float(tot[1] / tot[2].clamp_min(1)), "lr": opt.param_groups[0]["lr"],
                    "images_per_s": seen * dist.world / max(dt, 1e-9), "seconds": dt}
                if val_loader is not None and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == num_epochs):
                    saved = ema.swap(model) if ema is not None and cfg.ema.type == "ema" else None
                    ev = evaluate(model, val_loader, cfg.loss, data.num_classes, tta=cfg.tta, autocast=autocast,
                                  reduce=lambda t: D.all_reduce_sum(t, dist))
                    if saved is not None:
                        ema.restore(model, saved)
                    record.update(val_loss=ev["loss"], val_acc=ev["acc"])
                    if not math.isfinite(ev["loss"]):
                        raise error(f"validation loss is {ev['loss']} after epoch {epoch + 1}; stopping",
                                    hint="the weights diverged; lower the learning rate")
                history.append(record)
                logger.log_epoch(record)
                msg = (f"epoch {epoch + 1}/{num_epochs}: train loss {record['train_loss']:.4f} "
                       f"acc {record['train_acc']:.2%}")
                if "val_acc" in record:
                    msg += f", val loss {record['val_loss']:.4f} acc {record['val_acc']:.2%}"
                progress.line(msg + f", {record['images_per_s']:,.0f} img/s, {dt:.1f}s")
                acc_loss.zero_(), acc_correct.zero_(), acc_count.zero_()
                epoch, start_batch = epoch + 1, 0
                is_best = "val_acc" in record and (best is None or record["val_acc"] > best)
                if is_best:
                    best = record["val_acc"]
                save("last.pt", epoch, 0)
                if is_best:
                    save("best.pt", epoch, 0)
                if interrupt.flag:
                    status = "interrupted"
                    break
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        reason = ended_by(exc)
        raise
    finally:
        progress.close()
        seconds = time.perf_counter() - t_run
        last = history[-1] if history else {}
        result = Result(run_dir, status, epoch, step, seconds, train_images / max(train_time, 1e-9),
                        last.get("val_acc"), best, history, model)
        if main:
            if reason is None:
                reason = {"completed": {"reason": f"finished {epoch} epoch(s), {step} steps"},
                          "interrupted": {"reason": f"interrupted at step {step}; resumable from last.pt"}}.get(status)
            logger.write_json("summary.json", {
                "status": status, **(reason or {}), "epochs_completed": epoch, "steps": step, "total_steps": total_steps,
                "seconds": seconds, "train_seconds": train_time, "images_per_s": result.images_per_s,
                "val_acc": result.val_acc, "best_val_acc": best, "final": last, "device": str(device),
                "world_size": dist.world, "torch_version": str(torch.__version__), "spec_hash": opts.spec_hash})
            logger.close()
    return result
