"""eval (accuracy, per-class, confusion) and predict (top-k) from a trained checkpoint."""

import numpy as np
import pytest

from cnndsl.errors import CnnError
from cnndsl.train.run import run_eval, run_predict, run_train
from helpers import synthetic_train, tiny_spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    spec = tiny_spec(synthetic_train(epochs=4))
    res = run_train(spec, run_dir=str(d), progress=False)
    return spec, d, res


def test_eval_matches_training_validation(trained):
    spec, d, res = trained
    ev = run_eval(spec, d / "last.pt")
    assert ev["acc"] == pytest.approx(res.history[-1]["val_acc"])
    assert ev["loss"] == pytest.approx(res.history[-1]["val_loss"], rel=1e-5)
    conf = np.array(ev["confusion"])
    assert conf.shape == (4, 4) and conf.sum() == ev["n"] == 32
    assert len(ev["per_class_acc"]) == 4
    assert 0.0 <= run_eval(spec, d / "last.pt", tta="flip")["acc"] <= 1.0


def test_eval_on_a_missing_split_is_a_user_error(trained):
    spec, d, _ = trained
    with pytest.raises(CnnError, match="no test split"):
        run_eval(spec, d, split="test")


def test_predict_topk(trained, tmp_path):
    from PIL import Image
    spec, d, _ = trained
    paths = []
    for i in range(2):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    out = run_predict(spec, d / "best.pt", paths, top_k=3)
    assert [r["image"] for r in out] == paths
    for r in out:
        probs = [t["prob"] for t in r["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
        assert all(t["class"] in {"0", "1", "2", "3"} for t in r["top"])


def test_checkpoint_for_a_different_network_is_refused(trained):
    spec, d, _ = trained
    with pytest.raises(CnnError, match="does not match the model"):
        run_eval(spec, d / "last.pt", params={"width": 4})
