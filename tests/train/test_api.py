"""Training from Python (issue 12): cnndsl.train / evaluate / predict, typed, with CnnError on bad
input, and the command line as a thin layer over them."""

import inspect
import json
import sys

import numpy as np
import pytest
import torch

import cnndsl
from cnndsl.errors import CnnError
from cnndsl.train import api
from cnndsl.train.api import Evaluation, Prediction, train_overrides
from helpers import synthetic_train, tiny_spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    path = d / "tiny.cnn"
    tiny_spec(synthetic_train(epochs=1), path=path)
    res = cnndsl.train(str(path), epochs=3, params={"width": 6}, optimizer={"lr": 0.1}, run_dir=d / "run",
                       progress=False)
    return path, res


def test_train_returns_the_model_history_and_run_directory(trained):
    path, res = trained
    assert isinstance(res.model, torch.nn.Module) and res.model.get_submodule("conv").out_channels == 6
    assert [r["epoch"] for r in res.history] == [1, 2, 3] and res.epochs == 3 and res.status == "completed"
    assert res.val_acc == res.history[-1]["val_acc"] and res.best_val_acc == max(r["val_acc"] for r in res.history)
    assert (res.run_dir / "last.pt").exists() and (res.run_dir / "spec.cnn").read_text() == path.read_text()
    config = json.loads((res.run_dir / "config.json").read_text())["train"]
    assert config["epochs"] == 3
    assert config["optimizer"]["lr"] == 0.1 and config["optimizer"]["momentum"] == 0.9  # merged, not replaced
    assert json.loads((res.run_dir / "run.json").read_text())["params"] == {"width": 6}


def test_evaluate_and_predict_a_result(trained, tmp_path):
    from PIL import Image

    _, res = trained
    ev = cnndsl.evaluate(res)  # the run recorded its spec and width=6
    assert isinstance(ev, Evaluation) and ev.split == "val" and ev.n == 32
    assert ev.acc == pytest.approx(res.history[-1]["val_acc"]) and len(ev.confusion) == 4
    assert cnndsl.evaluate(res.run_dir / "best.pt").acc == pytest.approx(res.best_val_acc)
    img = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(img)
    (pred,) = cnndsl.predict(res, img, top_k=2)
    assert isinstance(pred, Prediction) and pred.image == str(img) and len(pred.top) == 2
    assert pred.label == pred.top[0][0] and pred.top[0][1] >= pred.top[1][1]
    assert pred.as_dict()["top"][0] == {"class": pred.top[0][0], "prob": pred.top[0][1]}


def test_overrides_merge_partial_values_and_replace_typed_ones():
    assert train_overrides({"epochs": 3, "optimizer": {"lr": 0.05}, "data": {"val_fraction": 0.1}}) == {
        "epochs": 3, "optimizer.lr": 0.05, "data.val_fraction": 0.1}
    assert train_overrides({"optimizer": {"type": "adam", "lr": 1e-3}, "ema": None, "early_stop": {}}) == {
        "optimizer": {"type": "adam", "lr": 1e-3}, "ema": None, "early_stop": {}}
    assert train_overrides({"optimizer.lr": 0.2}) == {"optimizer.lr": 0.2}


@pytest.mark.parametrize("call, message", [
    (lambda p: cnndsl.train(42), "spec must be a path"),
    (lambda p: cnndsl.train(p, epochz=3), "unknown key 'epochz' in train"),
    (lambda p: cnndsl.train(p, epochs="many"), "train.epochs must be a number"),
    (lambda p: cnndsl.train(p, optimizer={"lr": -1}), "train.optimizer.lr"),
    (lambda p: cnndsl.train(p, params={"widht": 4}), "widht"),
    (lambda p: cnndsl.train(p, on_epoch="print"), "on_epoch must be a function"),
    (lambda p: cnndsl.train(p.parent / "missing.cnn"), "missing.cnn"),
    (lambda p: cnndsl.evaluate(p.parent / "no-run"), "no such file"),
    (lambda p: cnndsl.evaluate(p.parent / "run", split="train"), "split must be 'val' or 'test'"),
    (lambda p: cnndsl.predict(p.parent / "run", [], top_k=0), "top_k"),
    (lambda p: cnndsl.evaluate(3.5), "expected a run directory"),
])
def test_bad_input_is_a_cnn_error(trained, call, message):
    path, _ = trained
    with pytest.raises(CnnError, match=message):
        call(path)


def test_errors_name_the_keyword_argument_not_a_flag_the_user_never_typed(trained):
    path, _ = trained
    with pytest.raises(CnnError) as info:
        cnndsl.train(path, epochz=3)
    assert "(from the keyword argument epochz=3)" in str(info.value) and "--set" not in str(info.value)
    with pytest.raises(CnnError) as info:
        cnndsl.train(path, optimizer={"lr": 0})
    assert "train.optimizer.lr must be > 0, got 0 (from the keyword argument optimizer.lr=0)" in str(info.value)


def test_the_command_line_still_names_its_flag(trained, capsys):
    from cnndsl.cli import main

    path, _ = trained
    assert main(["check", str(path), "--set", "train.epochz=3"]) == 2
    assert "(from --set train.epochz=3)" in capsys.readouterr().err


def test_the_package_is_callable_and_its_modules_still_import():
    import cnndsl.train.config as C  # the callable module is still a package

    assert callable(cnndsl.train) and cnndsl.train.loop.Result is cnndsl.train.Result
    assert C.TrainConfig is cnndsl.train.config.TrainConfig
    assert list(inspect.signature(cnndsl.train).parameters)[:2] == ["spec", "params"]
    assert cnndsl.evaluate is api.evaluate and cnndsl.predict is api.predict


def test_import_cnndsl_does_not_import_the_runner():
    import subprocess

    code = "import sys, cnndsl; print('cnndsl.train' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_cli_is_a_thin_layer_over_the_api(cli, monkeypatch, tmp_path):
    """Every flag reaches cnndsl.train as the keyword the API documents."""
    calls = []

    def fake_train(spec, **kw):
        calls.append((spec, kw))
        raise SystemExit(0)
    monkeypatch.setattr(api, "train", fake_train)
    with pytest.raises(SystemExit):
        cli("train", "net.cnn", "--epochs", "2", "--batch-size", "32", "--device", "cpu", "--seed", "3",
            "--max-time", "1h", "--target-acc", "0.97", "--set", "width=16", "--set", "train.optimizer.lr=0.5",
            "--run-dir", str(tmp_path), "--quiet", "--init-from", "w.pt", "--init-partial", "--detect-anomaly")
    (spec, kw), = calls
    assert spec == "net.cnn" and kw["params"] == {"width": 16} and kw["run_dir"] == str(tmp_path) and kw["quiet"]
    assert kw["init_from"] == "w.pt" and kw["init_partial"] and kw["detect_anomaly"]
    assert {k: kw[k] for k in ("epochs", "batch_size", "device", "seed", "max_time", "target_acc",
                               "optimizer.lr")} == {"epochs": 2.0, "batch_size": 32, "device": "cpu", "seed": 3,
                                                    "max_time": 3600.0, "target_acc": 0.97, "optimizer.lr": "0.5"}


def test_evaluate_uses_the_weights_validation_used(tmp_path):
    """With ``ema: ema(...)`` in the train section, validation during training uses the EMA's weights;
    evaluate() does too by default, so it reproduces the reported val_acc; ema=False takes the model's."""
    spec = tiny_spec(synthetic_train(epochs=2, ema={"type": "ema", "decay": 0.9}))
    res = cnndsl.train(spec, run_dir=tmp_path / "run", progress=False)
    default, raw = cnndsl.evaluate(res), cnndsl.evaluate(res, ema=False)
    assert default.acc == pytest.approx(res.val_acc) and default.loss == pytest.approx(res.history[-1]["val_loss"])
    assert cnndsl.evaluate(res, ema=True).loss == pytest.approx(default.loss)
    assert raw.loss != pytest.approx(default.loss)  # the model's own weights differ from their average
