"""eval (accuracy, per-class, confusion) and predict (top-k) from a trained checkpoint."""

from argparse import Namespace

import numpy as np
import pytest

from cnndsl.errors import CnnError
from cnndsl.train.commands import run_eval, run_predict, run_train
from helpers import FakeSpec, build_tiny, synthetic_train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    spec = FakeSpec(synthetic_train(epochs=4))
    res = run_train(spec, build=build_tiny, run_dir=str(d), progress=False)
    return spec, d, res


def test_eval_matches_training_validation(trained):
    spec, d, res = trained
    args = Namespace(checkpoint=str(d / "last.pt"), split="val", tta=None, ema=False, data_root=None, set=[])
    ev = run_eval(spec, args, build=build_tiny)
    assert ev["acc"] == pytest.approx(res.history[-1]["val_acc"])
    assert ev["loss"] == pytest.approx(res.history[-1]["val_loss"], rel=1e-5)
    conf = np.array(ev["confusion"])
    assert conf.shape == (4, 4) and conf.sum() == ev["n"] == 32
    assert len(ev["per_class_acc"]) == 4
    args.tta = "flip"
    assert 0.0 <= run_eval(spec, args, build=build_tiny)["acc"] <= 1.0


def test_eval_on_a_missing_split_is_a_user_error(trained):
    spec, d, _ = trained
    args = Namespace(checkpoint=str(d), split="test", tta=None, ema=False, data_root=None, set=[])
    with pytest.raises(CnnError, match="no test split"):
        run_eval(spec, args, build=build_tiny)


def test_predict_topk(trained, tmp_path):
    from PIL import Image
    spec, d, _ = trained
    paths = []
    for i in range(2):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    args = Namespace(checkpoint=str(d / "best.pt"), images=paths, top_k=3, ema=False, set=[])
    out = run_predict(spec, args, build=build_tiny)
    assert [r["image"] for r in out] == paths
    for r in out:
        probs = [t["prob"] for t in r["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
        assert all(t["class"] in {"0", "1", "2", "3"} for t in r["top"])


def test_checkpoint_for_a_different_network_is_refused(trained):
    spec, d, _ = trained
    args = Namespace(checkpoint=str(d / "last.pt"), split="val", tta=None, ema=False, data_root=None, set=[])
    with pytest.raises(CnnError, match="does not match the model"):
        run_eval(spec, args, build=lambda s, **k: build_tiny(s, width=4))
