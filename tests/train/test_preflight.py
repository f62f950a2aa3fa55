"""`cnndsl check` checks the train section too (issue 7, item 2): the config, every --set train.*,
and the data against the network as far as the dataset's name tells — without importing torch,
with the diagnostics `cnndsl train` gives (one code path)."""

import subprocess
import sys
from pathlib import Path

import pytest

from cnndsl.errors import CnnError

ROOT = Path(__file__).resolve().parents[2]

NET = """network Net(num_classes = 10) {
    input 1x28x28
    conv1: conv(8, k=3, p=1)
    relu
    global_avgpool
    flatten
    fc: linear(num_classes)
}
"""


def spec_file(tmp_path: Path, train: str, net: str = NET, name: str = "t.cnn") -> str:
    path = tmp_path / name
    path.write_text(net + "train {\n" + "".join(f"    {line}\n" for line in train.strip().splitlines()) + "}\n")
    return str(path)


# the reproducers: check said `ok` for each of them
@pytest.mark.parametrize("line, message, hint", [
    ('batch_size: "sixty-four"', 'train.batch_size must be a whole number, got "sixty-four"', None),
    ("lr: 0.01", "unknown key 'lr' in train", "it is an argument of optimizer: optimizer: sgd(lr = 0.01)"),
    ("optimizer: adam(lr = 1e-3, momentum = 0.9)", "unknown key 'momentum' in train.optimizer",
     ("adam has no 'momentum' (sgd and rmsprop have it); adam's momentum is its first beta: "
      "adam(betas = [0.9, 0.999])")),
])
def test_check_refuses_a_bad_train_section_with_file_line_col(cli, tmp_path, line, message, hint):
    path = spec_file(tmp_path, "data: mnist5k\n" + line)
    rc, out, err = cli("check", path)
    assert rc == 2 and not out
    assert f"{path}:11:" in err and message in err and "^" in err  # the line of the train section, a caret
    if hint:
        assert hint in err.split("hint:")[1]
    assert "did you mean 'lr'" not in err and "did you mean 'momentum'" not in err


def test_misspelt_dataset_is_refused_by_check(cli, tmp_path):
    rc, _, err = cli("check", spec_file(tmp_path, "data: mnist5K"))
    assert rc == 2 and "train.data: unknown kind 'mnist5K'" in err and "did you mean 'mnist5k'" in err


def test_set_train_values_are_checked(cli, tmp_path):
    path = spec_file(tmp_path, "data: mnist5k")
    rc, _, err = cli("check", path, "--set", "train.epochs=abc")
    assert rc == 2
    assert 'train.epochs must be a number, got "abc" (from --set train.epochs=abc)' in err


def test_set_a_field_of_a_defaulted_optimizer(cli, tmp_path):
    """The README's own example on a spec that leaves the optimizer at its default."""
    path = spec_file(tmp_path, "data: mnist5k")
    rc, out, err = cli("check", path, "--set", "train.optimizer.lr=0.05")
    assert rc == 0, err
    assert "sgd(lr=0.05)" in out
    from cnndsl.train import config as C
    cfg = C.validate(C.apply_overrides({"data": "mnist5k"}, {"optimizer.lr": "0.05"}))
    assert (cfg.optimizer.type, cfg.optimizer.lr, cfg.optimizer.momentum) == ("sgd", 0.05, 0.9)


def test_set_train_values_are_written_as_in_a_train_section():
    from cnndsl.train import config as C
    raw = C.apply_overrides({"data": "mnist5k"}, {
        "optimizer": "adam(lr = 1e-3, betas = [0.8, 0.99])", "augment": "[hflip, random_crop(padding = 2)]",
        "runs_dir": "/tmp/my runs", "device": "cuda:0", "ema": "none"})
    cfg = C.validate(raw)
    assert cfg.optimizer.type == "adam" and cfg.optimizer.betas == (0.8, 0.99)
    assert [a.type for a in cfg.augment] == ["hflip", "random_crop"] and cfg.augment[1].padding == 2
    assert cfg.runs_dir == "/tmp/my runs" and cfg.device == "cuda:0" and cfg.ema is None


@pytest.mark.parametrize("data, input_, fragment, hint", [
    ("cifar10", "1x28x28", "cifar10 images have 3 channels, but the network's input 1×28×28 has 1 channel",
     "add `grayscale` to augment"),
    ("mnist5k", "3x28x28", "mnist5k images have 1 channel, but the network's input 3×28×28 has 3 channels",
     "add `rgb` to augment"),
    ("mnist5k", "1x32x32", "mnist5k images are 1×28×28, but the network's input is 1×32×32",
     "add resize(32) to augment — it applies to training, validation, eval and predict images alike"),
])
def test_data_against_the_network_input(cli, tmp_path, data, input_, fragment, hint):
    path = spec_file(tmp_path, f"data: {data}", NET.replace("1x28x28", input_))
    rc, _, err = cli("check", path)
    assert rc == 2 and fragment in err and hint in err
    assert f"{path}:10:11" in err  # at the data value
    assert "resize" not in err or "images are" in err  # a channel problem is not told to resize


def test_augment_that_adapts_the_data_passes(cli, tmp_path):
    net = NET.replace("1x28x28", "3x32x32")
    rc, out, err = cli("check", spec_file(tmp_path, "data: mnist5k\naugment: [resize(32), rgb]", net))
    assert rc == 0, err
    assert "train: mnist5k 1×28×28, 10 classes" in out


def test_class_count_hint_names_the_parameter_only_when_it_exists(cli, tmp_path):
    rc, _, err = cli("check", spec_file(tmp_path, "data: mnist5k"), "--set", "num_classes=5")
    assert rc == 2
    assert "mnist5k has 10 classes but the network's output 'fc' gives 5 scores" in err
    assert "--set num_classes=10" in err
    fixed = NET.replace("Net(num_classes = 10)", "Net").replace("linear(num_classes)", "linear(5)")
    path = spec_file(tmp_path, "data: mnist5k", fixed, "fixed.cnn")
    rc, _, err = cli("check", path)
    assert rc == 2 and "--set" not in err
    assert f"{path}:7:9" in err and "make 'fc' (linear(5)) produce 10 outputs" in err


def test_more_scores_than_classes_is_a_warning(cli, tmp_path):
    rc, _, err = cli("check", spec_file(tmp_path, "data: mnist5k"), "--set", "num_classes=1000")
    assert rc == 0 and "warning: the network's output 'fc' gives 1000 scores but mnist5k has 10 classes" in err


def test_per_pixel_targets_need_a_map(cli, tmp_path):
    rc, _, err = cli("check", spec_file(tmp_path, "data: synthetic(task = segmentation)"))
    assert rc == 2 and "per-pixel targets" in err and "but the network's output is 10" in err


def test_batch_larger_than_the_training_set(cli, tmp_path):
    rc, _, err = cli("check", spec_file(tmp_path, "data: digits\nbatch_size: 4096"))
    assert rc == 2 and "batch_size 4096 is larger than the training set" in err and "drop_last: false" in err


def test_fp16_on_the_cpu_warns_and_suggests_bf16(cli, tmp_path):
    rc, _, err = cli("check", spec_file(tmp_path, "data: mnist5k\nprecision: fp16\ndevice: cpu"))
    assert rc == 0
    assert "warning: precision fp16 on the CPU (device: cpu) is tens of times slower than fp32" in err
    assert "use precision: bf16" in err


def test_train_gives_the_same_diagnostic_as_check(cli, tmp_path):
    """One code path: the runner refuses the spec before reading any data, with check's words."""
    import cnndsl
    from cnndsl.train.run import run_train
    path = spec_file(tmp_path, "data: mnist5k\noptimizer: adam(lr = 1e-3, momentum = 0.9)")
    _, _, err = cli("check", path)
    with pytest.raises(CnnError) as info:
        run_train(cnndsl.load(path), run_dir=str(tmp_path / "run"))
    assert info.value.render() == err.strip()
    assert not (tmp_path / "run").exists()


NO_TORCH = """
import sys
from cnndsl.cli import main
codes = [main(argv) for argv in {argvs!r}]
assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))
print(codes)
"""


def test_check_summary_and_a_refused_train_do_not_import_torch(tmp_path):
    bad = spec_file(tmp_path, "data: cifar10")  # an error found from the dataset's name alone
    argvs = [["check", "specs/mnist5k.cnn"], ["compile", "specs/mnist5k.cnn", "--summary"],
             ["check", "specs/airbench94.cnn", "--set", "train.optimizer.lr=0.05"], ["check", bad],
             ["check", "specs/mnist5k.cnn", "--set", "train.epochs=abc"],
             ["train", bad], ["train", "specs/mnist5k.cnn", "--set", "train.epochs=abc"]]  # refused before torch
    r = subprocess.run([sys.executable, "-c", NO_TORCH.format(argvs=argvs)], capture_output=True, text=True,
                       timeout=60, cwd=ROOT, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[0, 0, 0, 2, 2, 2, 2]"


def test_fp16_on_the_cpu_warns_at_train_start_too(tmp_path, capsys):
    """The runner warns from the device it resolved, before reading data (here: a folder that is
    missing, so the test does not pay for fp16 steps on the CPU)."""
    import cnndsl
    from cnndsl.train.run import run_train
    path = spec_file(tmp_path, f'data: imagefolder("{tmp_path}/missing", channels = 1)\nprecision: fp16\ndevice: cpu')
    with pytest.raises(CnnError, match="does not exist"):
        run_train(cnndsl.load(path), run_dir=str(tmp_path / "run"), progress=False)
    err = capsys.readouterr().err
    assert err.count("precision fp16 on the CPU (device: cpu)") == 1
    assert f"{path}:11:" in err  # at the precision line


def test_the_editor_shows_what_check_says(tmp_path):
    """The language server's diagnostics include the train section's, as typed (never a crash)."""
    from cnndsl.lsp.document import analyse
    path = spec_file(tmp_path, "data: cifar10")
    found = analyse(Path(path).read_text(), path).diagnostics
    assert any("cifar10 images have 3 channels" in d.message for d in found)
    text = (ROOT / "specs" / "mnist5k.cnn").read_text()
    for cut in range(text.index("train"), len(text) + 1, 5):
        result = analyse(text[:cut], str(ROOT / "specs" / "mnist5k.cnn"))
        assert not any(d.message.startswith("cnndsl internal error") for d in result.diagnostics), cut
