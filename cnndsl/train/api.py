"""Training from Python: ``cnndsl.train``, ``cnndsl.evaluate``, ``cnndsl.predict`` (docs/api.md).

    import cnndsl
    res = cnndsl.train("specs/mnist5k.cnn", epochs=3, params={"width": 16}, target_acc=0.98)
    res.model, res.history, res.run_dir, res.ended_by
    ev = cnndsl.evaluate(res)                       # the run's last.pt on its validation split
    top = cnndsl.predict(res, ["digit.png"])        # [Prediction(image, top=[(class, prob), ...])]

The command line (``cnndsl train | eval | predict``) calls these very functions. torch is imported
only after the spec and its train section have been checked; every user error is a
:class:`cnndsl.CnnError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Union

from cnndsl.errors import error

if TYPE_CHECKING:  # pydantic and torch stay unimported until a function is called
    from cnndsl.expand import Limits
    from cnndsl.ir import Spec

    from .loop import Result

SpecLike = Union["Spec", str, os.PathLike]
RunLike = Union["Result", str, os.PathLike]  # a Result, a run directory or a checkpoint file


@dataclass
class Evaluation:
    """What :func:`evaluate` measured (``cnndsl eval --json`` prints :meth:`as_dict`)."""

    split: str  # val | test
    acc: float
    loss: float  # mean cross-entropy
    n: int  # images
    classes: list[str]
    per_class_acc: list[float]
    confusion: list[list[int]] | None  # rows: true class, columns: predicted

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prediction:
    """The most likely classes of one image (``cnndsl predict --json`` prints :meth:`as_dict`)."""

    image: str
    top: list[tuple[str, float]]  # (class, probability), most likely first

    @property
    def label(self) -> str:
        return self.top[0][0]

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "top": [{"class": c, "prob": p} for c, p in self.top]}


class KeywordOverrides(dict):
    """Train overrides given as keyword arguments (``cnndsl.train(spec, epochs=3)``): diagnostics
    name the keyword, not a ``--set`` flag the user never typed."""

    def origin(self, key: str, value: Any) -> str:
        return f"the keyword argument {key}={value!r}"


def train_overrides(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Keyword arguments of :func:`train` as dotted train keys. A mapping without ``type`` sets the
    keys it names and keeps the rest (``optimizer={"lr": 0.05}`` is ``optimizer.lr``); one with
    ``type`` replaces the value (``optimizer={"type": "adam", "lr": 1e-3}``); ``None`` removes an
    optional value (``ema=None``). Dotted keys may be given as they are (``**{"optimizer.lr": 0.05}``)."""
    out = KeywordOverrides()
    for key, value in values.items():
        if isinstance(value, Mapping) and value and "type" not in value:
            out.update(train_overrides(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def train(spec: SpecLike, *, params: Mapping[str, Any] | None = None, run_dir: str | os.PathLike | None = None,
          resume: str | os.PathLike | None = None, force: bool = False, data_root: str | None = None,
          on_epoch: Callable[[dict[str, Any]], Any] | None = None, progress: bool = True, quiet: bool = False,
          limits: Limits | None = None, init_from: str | os.PathLike | None = None, init_partial: bool = False,
          detect_anomaly: bool = False, **train: Any) -> Result:
    """Train the network a spec describes, as its ``train`` section says; return the run.

    ``spec``: a path (``.cnn``/``.yaml``), spec text or a :class:`cnndsl.ir.Spec`.
    ``params``: network parameters (``--set width=16``). Every other keyword is a train key that
    overrides the spec's (``epochs=3``, ``batch_size=128``, ``device="cpu"``, ``target_acc=0.98``,
    ``max_time="10m"``, ``early_stop={"patience": 2}``, ``optimizer={"lr": 0.05}``; see
    :func:`train_overrides`). ``run_dir``: where the run is written (default
    ``<runs_dir>/<spec>/<time>``); ``resume``: a run directory or checkpoint to continue (``force``:
    even if the spec changed). ``init_from``: weights to start from, matched by name (a file, a run
    directory or ``"torchvision:MODEL.WEIGHTS"``; ``init_partial``: load the keys that match and
    report the others), as ``--init-from``. ``on_epoch(record)`` is called after every epoch with its record
    (epoch, step, train_loss, train_acc, val_loss, val_acc, lr, images_per_s, seconds); returning
    ``False`` ends the run (``ended_by == "on_epoch"``), an exception fails it. ``progress=False``
    prints nothing; ``quiet`` prints plain lines instead of a progress bar. ``detect_anomaly``: run
    under :func:`torch.autograd.detect_anomaly` (slow; names the op that produced a NaN).

    Returns :class:`cnndsl.train.loop.Result`: ``model``, ``history``, ``run_dir``, ``status``,
    ``ended_by``, ``reason``, ``val_acc``, ``best_val_acc``. A run ended by Ctrl-C returns with
    ``status == "interrupted"``; errors raise :class:`cnndsl.CnnError`.
    """
    from cnndsl.api import _spec

    from .run import run_train

    if on_epoch is not None and not callable(on_epoch):
        raise error(f"on_epoch must be a function of the epoch's record, not {type(on_epoch).__name__}")
    return run_train(_spec(spec), params=dict(params or {}), overrides=train_overrides(train), data_root=data_root,
                     run_dir=run_dir, resume=resume, force=force, quiet=quiet, progress=progress, on_epoch=on_epoch,
                     limits=limits, init_from=init_from, init_partial=init_partial,
                     detect_anomaly=detect_anomaly)


def _recorded(run: RunLike, spec: SpecLike | None, params: Mapping[str, Any] | None, command: str):
    """What ``run`` recorded (its spec, parameters, train config), with ``spec``/``params`` on top."""
    from .rundir import resolve

    checkpoint = getattr(run, "run_dir", run)  # a Result: its run directory
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise error(f"{command}: expected a run directory, a checkpoint file or a Result, not "
                    f"{type(run).__name__}")
    target = spec if spec is not None else checkpoint
    return resolve(target, checkpoint if spec is not None else None, dict(params or {}), command)


def evaluate(run: RunLike, *, spec: SpecLike | None = None, split: Literal["val", "test"] = "val",
             tta: Literal["none", "flip", "flip_translate"] | None = None, ema: bool | None = None,
             params: Mapping[str, Any] | None = None, data_root: str | None = None, **train: Any) -> Evaluation:
    """Evaluate a trained run (a :class:`Result`, a run directory — its ``last.pt`` — or a
    checkpoint file) on its dataset's validation or test split.

    The spec, network parameters and train config are the ones the run recorded; ``spec``,
    ``params`` and train keywords (``device="cpu"``, ``eval_batch_size=512``) override them.
    ``tta``: test-time augmentation. ``ema``: ``True`` for the EMA weights stored in the checkpoint,
    ``False`` for the model's own; ``None`` (default) for the weights validation used during
    training — the EMA's when the train section keeps one (``ema: ema(...)``)."""
    from .run import run_eval

    if split not in ("val", "test"):
        raise error(f"split must be 'val' or 'test', not {split!r}")
    rec = _recorded(run, spec, params, "eval")
    ev = run_eval(rec.spec, rec.checkpoint, params=rec.params, overrides=train_overrides(train), split=split,
                  tta=tta, ema=ema, data_root=data_root, recorded_train=rec.train)
    return Evaluation(**{k: ev[k] for k in Evaluation.__dataclass_fields__})


def predict(run: RunLike, images: Sequence[str | os.PathLike] | str | os.PathLike, *, top_k: int = 5,
            spec: SpecLike | None = None, ema: bool | None = None, params: Mapping[str, Any] | None = None,
            data_root: str | None = None, **train: Any) -> list[Prediction]:
    """The ``top_k`` most likely classes of each image file, read and normalised as the run's
    validation images were. ``run`` and ``ema`` as in :func:`evaluate`."""
    from .run import check_images, run_predict

    paths = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise error(f"top_k must be a whole number ≥ 1, not {top_k!r}")
    check_images(paths)  # before the run directory is read
    rec = _recorded(run, spec, params, "predict")
    out = run_predict(rec.spec, rec.checkpoint, paths, params=rec.params, overrides=train_overrides(train),
                      top_k=top_k, ema=ema, data_root=data_root, recorded_train=rec.train)
    return [Prediction(r["image"], [(t["class"], t["prob"]) for t in r["top"]]) for r in out]
