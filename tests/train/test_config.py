"""The train section: calls, bare names, positional args, errors with spans, overrides."""

import pytest

import cnndsl
from cnndsl.errors import CnnError
from cnndsl.train import config as C
from helpers import spec_text


def test_calls_bare_names_and_positional_args():
    cfg = C.validate({
        "data": {"type": "mnist5k", "val_fraction": 0.1},
        "epochs": 3,
        "optimizer": {"type": "sgd", "args": [0.2], "momentum": 0.9, "nesterov": True},
        "schedule": "cosine",
        "augment": [{"type": "random_crop", "args": [28], "padding": 2}, "hflip", {"type": "cutout", "args": [4]}],
        "param_groups": [{"match": "*.bias", "lr_scale": 64}],
        "ema": "ema",
    })
    assert isinstance(cfg.data, C.Mnist5kData) and cfg.data.val_fraction == 0.1
    assert isinstance(cfg.optimizer, C.SGD) and cfg.optimizer.lr == 0.2 and cfg.optimizer.nesterov
    assert isinstance(cfg.schedule, C.Cosine)
    assert [type(a) for a in cfg.augment] == [C.RandomCrop, C.HFlip, C.Cutout]
    assert cfg.augment[0].size == 28 and cfg.augment[2].size == 4
    assert cfg.ema.type == "ema"


def test_yaml_twin_equals_cnn_form():
    a = C.validate({"data": "digits", "optimizer": {"type": "adamw", "lr": 1e-3}, "label_smoothing": 0.1})
    b = C.validate({"data": {"type": "digits"}, "optimizer": {"type": "adamw", "args": [1e-3]},
                    "loss": {"type": "cross_entropy", "label_smoothing": 0.1}})
    assert a.loss == b.loss and a.data == b.data and a.optimizer == b.optimizer


@pytest.mark.parametrize("raw, fragment, line", [
    ({"data": "digits", "epochz": 3}, "epochz", "epochz: 3"),
    ({"data": "digits", "optimizer": {"type": "sgd", "lr": 0.1, "momentun": 0.9}}, "momentun", "momentun"),
    ({"data": "digits", "optimizer": {"type": "sgdd", "lr": 0.1}}, "sgdd", "sgdd"),
    ({"data": "digits", "batch_size": 0}, "batch_size", "batch_size: 0"),
    ({"data": "imagenet"}, "imagenet", "data: imagenet"),
    ({"data": "digits", "augment": [{"type": "cutout", "args": [1, 2]}]}, "positional", "cutout(1, 2)"),
])
def test_errors_name_the_key_and_point_into_the_spec(raw, fragment, line):
    spec = cnndsl.parse(spec_text(raw), filename="fake.cnn")
    with pytest.raises(CnnError) as ei:
        C.validate(spec.train, spec)
    text = ei.value.render()
    assert fragment in text
    span = ei.value.span
    assert span is not None and span.file == "fake.cnn"
    assert line in spec_text(raw).splitlines()[span.line - 1]  # the line that holds the bad value


def test_missing_train_section():
    with pytest.raises(CnnError, match="no train section"):
        C.validate(None)


def test_overrides_parse_values_and_expand_bare_calls():
    raw = {"data": "digits", "optimizer": "sgd", "epochs": 5}
    out = C.apply_overrides(raw, {"optimizer.lr": "0.01", "epochs": "2", "channels_last": "true",
                                  "device": "cpu"})
    assert out["optimizer"] == {"type": "sgd", "lr": 0.01}
    assert out["epochs"] == 2 and out["channels_last"] is True and out["device"] == "cpu"
    assert raw["optimizer"] == "sgd"  # the original is untouched
    cfg = C.validate(out)
    assert cfg.optimizer.lr == 0.01


def test_cli_flags_become_overrides():
    from argparse import Namespace
    from cnndsl.cli import prepare
    from cnndsl.train.cli import collect_overrides, network_params
    args = Namespace(set=["train.optimizer.lr=0.5", "width=32"], epochs=3.0, batch_size=None, device="cpu",
                     seed=None, runs_dir=None)
    prepare(args)
    assert collect_overrides(args) == {"optimizer.lr": "0.5", "epochs": 3.0, "device": "cpu"}
    assert network_params(args) == {"width": 32}


@pytest.mark.parametrize("raw, message, hint", [
    ({"data": "synthetic", "epocs": 3}, "unknown key 'epocs' in train", "did you mean 'epochs'"),
    ({"data": "synthetic", "optimizer": {"type": "sgd", "lr": 0.1, "momentm": 0.9}},
     "unknown key 'momentm' in train.optimizer", "did you mean 'momentum'"),
    ({"data": "synthetic", "optimizer": "sgdd"}, "unknown kind 'sgdd'", "did you mean 'sgd'"),
    ({"data": "cifar11"}, "unknown kind 'cifar11'", "did you mean 'cifar10'"),
])
def test_unknown_keys_and_kinds_get_did_you_mean(raw, message, hint):
    with pytest.raises(CnnError) as info:
        C.validate(raw, _spec(raw))
    d = info.value.diagnostics[0]
    assert message in d.message and hint in (d.hint or "")


def test_errors_from_overrides_say_so():
    raw = {"data": "synthetic", "optimizer": {"type": "sgd", "lr": 0.1}}
    over = {"optimizer.lr": "-1"}
    with pytest.raises(CnnError, match=r"\(from --set train.optimizer.lr=-1\)"):
        C.validate(C.apply_overrides(raw, over), _spec(raw), over)


def _spec(raw):
    return cnndsl.parse(spec_text(raw), filename="fake.cnn")
