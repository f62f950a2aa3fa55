"""Schedules, parameter groups, EMA, batch augmentation, whitening init, evaluation, CLI registration."""

import subprocess
import sys

import pytest
import torch
from torch import nn

from cnndsl.train import augment as A, config as C, optim as O
from cnndsl.train.evaluate import evaluate, init_whitening
from helpers import tiny_model


def _cfg(**kw):
    return C.TrainConfig.model_validate({"data": "digits", **kw})


def _factor(schedule, total=100, spe=10):
    cfg = _cfg(schedule=schedule).schedule
    return O.lr_factor(cfg, total, spe)


def test_schedules_per_iteration():
    f = _factor({"type": "onecycle", "pct_start": 0.25, "div_factor": 10, "final_div_factor": 100,
                 "anneal": "linear"})
    assert f(0) == pytest.approx(0.1) and f(25) == pytest.approx(1.0) and f(100) == pytest.approx(1e-3)
    f = _factor({"type": "piecewise", "points": [[0, 0.2], [0.23, 1.0], [1.0, 0.07]]})
    assert f(0) == pytest.approx(0.2) and f(23) == pytest.approx(1.0) and f(100) == pytest.approx(0.07)
    f = _factor({"type": "step", "step_size": 3, "gamma": 0.5})
    assert f(29) == 1.0 and f(30) == 0.5 and f(60) == 0.25
    f = _factor({"type": "step", "milestones": [2, 5]})
    assert f(19) == 1.0 and f(20) == pytest.approx(0.1) and f(50) == pytest.approx(0.01)
    f = _factor({"type": "cosine", "final_scale": 0.1})
    assert f(0) == 1.0 and f(50) == pytest.approx(0.55) and f(100) == pytest.approx(0.1)
    f = _factor({"type": "constant", "warmup": 2})  # 2 epochs = 20 steps
    assert f(0) == pytest.approx(1 / 20) and f(19) == 1.0 and f(50) == 1.0


def test_scheduler_steps_lr_each_iteration():
    m = nn.Linear(2, 2)
    cfg = _cfg(optimizer={"type": "sgd", "lr": 1.0}, schedule={"type": "piecewise", "points": [[0, 0], [1, 1]]})
    opt = O.build_optimizer(m, cfg)
    s = O.build_scheduler(opt, cfg, 10, 5)
    lrs = []
    for _ in range(5):
        opt.step(), s.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_param_groups_by_glob_and_no_decay_on_norm_and_bias():
    m = tiny_model()
    m.conv.weight.requires_grad_(False)  # frozen parameters are left out
    cfg = _cfg(optimizer={"type": "sgd", "lr": 0.1, "weight_decay": 1e-3, "decay_norm_and_bias": False},
               param_groups=[{"match": "bn.*", "lr_scale": 64}, {"match": "fc", "lr": 0.5, "weight_decay": 0.2}])
    groups = {tuple(g["names"]): (g["lr"], g["weight_decay"]) for g in O.param_groups(m, cfg)}
    assert groups[("conv.bias",)] == (0.1, 0.0)
    assert groups[("bn.weight", "bn.bias")] == (pytest.approx(6.4), 0.0)
    assert groups[("fc.weight", "fc.bias")] == (0.5, 0.2)  # matched by module name
    assert all("conv.weight" not in k for k in groups)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_optimizers(name):
    opt = O.build_optimizer(tiny_model(), _cfg(optimizer={"type": name, "lr": 0.01}))
    assert type(opt).__name__.lower() == name


def test_lookahead_ema_copies_back_and_final_step():
    m = nn.Linear(2, 1, bias=False)
    ema = O.EMA(m, C.EMAConfig(type="lookahead", decay=0.5, every=2), total_steps=10)
    start = m.weight.detach().clone()
    with torch.no_grad():
        m.weight.add_(1.0)
    ema.update(m, 1)  # not a multiple of `every`: nothing happens
    assert torch.equal(m.weight, start + 1)
    ema.update(m, 2)  # shadow = lerp(start, start+1, 1 - 0.25) and copied back
    assert torch.allclose(m.weight, start + 0.75)
    with torch.no_grad():
        m.weight.add_(1.0)
    ema.update(m, 3, final=True)  # decay 1.0: the model becomes the average
    assert torch.allclose(m.weight, start + 0.75)


def test_ema_shadow_and_swap():
    m = nn.Linear(2, 1)
    ema = O.EMA(m, C.EMAConfig(type="ema", decay=0.9), total_steps=10)
    w0 = m.weight.detach().clone()
    with torch.no_grad():
        m.weight.add_(1.0)
    ema.update(m, 100)  # warm-up has ended at step 100: decay 0.9
    saved = ema.swap(m)
    assert torch.allclose(m.weight, w0 + 0.1)
    ema.restore(m, saved)
    assert torch.allclose(m.weight, w0 + 1.0)


def test_batch_crop_matches_manual_crop():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6)
    g = torch.Generator().manual_seed(0)
    out = A.batch_crop(x, 1, g)
    g = torch.Generator().manual_seed(0)
    dy, dx = torch.randint(0, 3, (2,), generator=g), torch.randint(0, 3, (2,), generator=g)
    for i in range(2):
        assert torch.equal(out[i], x[i, :, dy[i]:dy[i] + 4, dx[i]:dx[i] + 4])


def test_alternating_flip_and_cutout_on_device_batches():
    items = C.TrainConfig.model_validate({"data": "digits", "augment": ["alt_flip", {"type": "cutout",
                                                                                     "size": 2}]}).augment
    aug = A.BatchAugment(items, seed=0)
    x = torch.randn(8, 1, 4, 4)
    idx = torch.arange(8)
    base = aug.base_flip(8, x.device)
    e0, e1 = aug(x, idx, 0, 0, base), aug(x, idx, 1, 0, base)
    for i in range(8):  # each image is seen in both orientations on consecutive epochs
        flipped0 = bool(base[i])
        want0, want1 = (x[i].flip(-1), x[i]) if flipped0 else (x[i], x[i].flip(-1))
        nz0, nz1 = e0[i] != 0, e1[i] != 0
        assert torch.equal(e0[i][nz0], want0[nz0]) and torch.equal(e1[i][nz1], want1[nz1])
        assert (e0[i] == 0).sum() >= 1  # cutout zeroed something
    assert torch.equal(aug(x, idx, 3, 2, base), aug(x, idx, 3, 2, base))  # seeded by (epoch, batch)


def test_unsupported_device_augmentation_is_a_user_error():
    from cnndsl.errors import CnnError
    items = C.TrainConfig.model_validate({"data": "digits", "augment": ["color_jitter"]}).augment
    with pytest.raises(CnnError, match="color_jitter"):
        A.BatchAugment(items, seed=0)


def test_sample_pipeline_is_seeded_per_sample_and_leaves_global_rng_alone():
    items = C.TrainConfig.model_validate({"data": "digits", "augment": [
        {"type": "random_crop", "padding": 2}, "hflip", {"type": "random_erasing", "p": 1.0}]}).augment
    pipe = A.SamplePipeline(items, [0.5], [0.25], train=True)
    img = torch.randint(0, 255, (1, 8, 8), dtype=torch.uint8)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a, b = pipe(img, 123, 0), pipe(img, 123, 0)
    assert torch.equal(a, b) and a.dtype == torch.float32
    assert torch.equal(torch.get_rng_state(), state)


def test_mixup_targets_are_soft_and_sum_to_one():
    x, y = torch.randn(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    for mix, cut in ((0.4, 0.0), (0.0, 1.0)):
        xm, t = A.mix_batch(x, y, 3, mix, cut, seed=5)
        assert xm.shape == x.shape and t.shape == (6, 3) and torch.allclose(t.sum(1), torch.ones(6))


def test_whitening_init_decorrelates_patches():
    torch.manual_seed(0)
    base = torch.randn(200, 3, 9, 9)
    imgs = base + 0.8 * base.roll(1, dims=1)  # correlated channels
    conv = nn.Conv2d(3, 24, 2, bias=False)
    conv.cnndsl_init = "whiten"
    model = nn.Sequential(conv)
    assert init_whitening(model, imgs) == ["0"]
    with torch.no_grad():
        out = conv(imgs)[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)
    cov = out.T @ out / out.shape[0]
    assert torch.allclose(cov, torch.eye(12), atol=0.05)
    assert torch.allclose(conv.weight[12:], -conv.weight[:12])


def test_evaluate_confusion_and_per_class():
    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x.flatten(1)[:, :3] + self.p

    class L:
        def epoch(self, e, start=0):
            x = torch.tensor([[5., 0, 0], [0, 5., 0], [0, 5., 0], [0, 0, 5.]]).view(4, 3, 1, 1)
            yield x, torch.tensor([0, 1, 2, 2])
    ev = evaluate(Fixed(), L(), C.LossConfig(type="cross_entropy"), 3)
    assert ev["acc"] == 0.75 and ev["per_class_acc"] == [1.0, 1.0, 0.5]
    assert ev["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_register_adds_subcommands_without_importing_torch():
    code = ("import argparse, sys; from cnndsl.train.cli import register; p = argparse.ArgumentParser(); "
            "register(p.add_subparsers(dest='cmd')); "
            "a = p.parse_args(['train', '--epochs', '2', '--device', 'cpu', '--resume', 'r']); "
            "assert callable(a.func) and a.epochs == 2.0 and a.resume == 'r'; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
