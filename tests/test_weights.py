"""Starting from weights, offline: torchvision's named weights through its own hub cache (a state
dict saved from a randomly initialised model stands in for the download), local files in every
format, strict matching with a table, partial loading when asked, the spec's ``init`` entry and
``cnndsl train --init-from`` — and every bad file a clear diagnostic that loads nothing unsafely."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import cnndsl  # noqa: E402
from cnndsl.weights.init import init_from_flag, weights_log  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
R18_FILE = "resnet18-f37072fd.pth"    # the file name in torchvision's URL of IMAGENET1K_V1


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory):
    """A TORCH_HOME whose hub cache holds resnet18's IMAGENET1K_V1 file: random weights, saved where
    torchvision expects the download."""
    home = tmp_path_factory.mktemp("torch-home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(3)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, home / "hub" / "checkpoints" / R18_FILE)
    return home, state


@pytest.fixture
def offline_hub(torch_home, monkeypatch):
    home, state = torch_home
    monkeypatch.setenv("TORCH_HOME", str(home))
    return state


def _spec(tmp_path: Path, body: str, name: str = "net.cnn") -> Path:
    path = tmp_path / name
    head = "global_avgpool  flatten  head: linear(5)" if "squeezenet" in body else "head: linear(5)"
    path.write_text(f"network N {{\n    input 3x64x64\n    {body}\n    {head}\n}}\n", encoding="utf-8")
    return path


def _at(path: Path, needle: str) -> str:
    """``file:line:col`` of the first ``needle`` in a spec (1-based, as diagnostics print it)."""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return f"{path}:{n}:{line.index(needle) + 1}"
    raise AssertionError(needle)


# ----------------------------------------------------------------------------- torchvision's weights


def test_named_weights_load_through_torchvisions_hub_cache(tmp_path, offline_hub):
    model = cnndsl.build(_spec(tmp_path, "b: backbone resnet18(weights = IMAGENET1K_V1)"))
    own = model.b.state_dict()
    assert all(torch.equal(own[k], v) for k, v in offline_hub.items() if not k.startswith("fc."))
    assert weights_log(model) == ["backbone 'b': loaded 120 of 120 tensors from torchvision resnet18.IMAGENET1K_V1 "
                                  "(strict); 2 tensors of layers the cut leaves out not used"]
    default = cnndsl.build(_spec(tmp_path, "b: backbone resnet18(weights = DEFAULT)"))   # DEFAULT = IMAGENET1K_V1
    assert torch.equal(default.b.conv1.weight, offline_hub["conv1.weight"])


def test_missing_named_weights_offline_say_what_to_download_and_where(tmp_path, monkeypatch, cli):
    empty = tmp_path / "empty-home"
    monkeypatch.setenv("TORCH_HOME", str(empty))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")     # nothing listens there: the network fails at once
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(urllib.request, "_opener", None)   # urllib reads the proxy variables afresh
    spec = _spec(tmp_path, "b: backbone resnet18(weights = IMAGENET1K_V1)")
    rc, _, err = cli("compile", str(spec))
    assert rc == 2 and "Traceback" not in err
    assert err.startswith(f"{_at(spec, 'IMAGENET1K_V1')}: error: torchvision weights resnet18.IMAGENET1K_V1 are not "
                          "in the local cache")
    assert R18_FILE in err and "https://download.pytorch.org/models/resnet18-f37072fd.pth" in err
    assert f"put it in {empty / 'hub' / 'checkpoints'}{os.sep}" in err
    assert not list(empty.rglob("*.pth*"))                   # no partial download left behind
    monkeypatch.setenv("CNNDSL_OFFLINE", "1")                # and with downloads forbidden outright
    rc, _, err = cli("compile", str(spec))
    assert rc == 2 and "CNNDSL_OFFLINE=1 forbids downloading" in err


def test_eval_predict_and_resume_build_without_the_starting_weights(tmp_path, monkeypatch):
    """A checkpoint replaces them: offline, their absence must not stop an evaluation."""
    from cnndsl.weights.init import without_initial_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("CNNDSL_OFFLINE", "1")
    spec = _spec(tmp_path, "b: backbone resnet18(weights = IMAGENET1K_V1)")
    with pytest.raises(cnndsl.CnnError, match="not in the local cache"):
        cnndsl.build(spec)
    with without_initial_weights():
        model = cnndsl.build(spec)
    assert weights_log(model) == []


# ----------------------------------------------------------------------------- files


@pytest.fixture(scope="module")
def squeeze_state():
    torch.manual_seed(4)
    return torchvision.models.squeezenet1_1().state_dict()


def _built(spec: Path):
    model = cnndsl.build(spec)
    return model, model.b.state_dict()


def test_state_dict_safetensors_checkpoint_and_run_directory_load_by_name(tmp_path, squeeze_state):
    from safetensors.torch import save_file

    torch.save(squeeze_state, tmp_path / "sq.pth")
    save_file({k: v.contiguous() for k, v in squeeze_state.items()}, str(tmp_path / "sq.safetensors"))
    run = tmp_path / "runs" / "sq" / "20250101-000000"
    run.mkdir(parents=True)
    torch.save({"model": squeeze_state, "epoch": 3}, run / "best.pt")     # a cnndsl checkpoint
    for weights in ("sq.pth", "sq.safetensors", "runs/sq/20250101-000000", "runs/sq/20250101-000000/best.pt"):
        model, own = _built(_spec(tmp_path, f'b: backbone squeezenet1_1(weights = "{weights}")'))
        assert all(torch.equal(own[k], squeeze_state[k]) for k in own), weights
        assert weights_log(model)[0].startswith("backbone 'b': loaded 50 of 50 tensors"), weights


def test_a_checkpoint_of_a_network_that_held_the_backbone_loads_under_its_name(tmp_path, squeeze_state):
    held = {f"features_net.{k}": v for k, v in squeeze_state.items()} | {"head.weight": torch.zeros(5, 512)}
    torch.save({"model": held}, tmp_path / "transfer.pt")
    model, own = _built(_spec(tmp_path, 'b: backbone squeezenet1_1(weights = "transfer.pt")'))
    assert torch.equal(own["features.0.weight"], squeeze_state["features.0.weight"])
    assert "the file's keys under 'features_net.'" in weights_log(model)[0]


def test_weights_of_another_architecture_get_a_mismatch_table(tmp_path, cli):
    torch.save(torchvision.models.squeezenet1_0().state_dict(), tmp_path / "sq10.pth")
    spec = _spec(tmp_path, 'b: backbone squeezenet1_1(weights = "sq10.pth")')
    rc, _, err = cli("compile", str(spec))
    assert rc == 2 and "Traceback" not in err
    assert err.startswith(f"{_at(spec, chr(34) + 'sq10')}: error: weights sq10.pth do not match backbone 'b' (squeezenet1_1): ")
    table = [line.split() for line in err.splitlines()]
    assert ["note:", "missing", "(in", "the", "model,", "not", "in", "the", "file):"] in table
    assert ["features.6.squeeze.weight", "32×128×1×1"] in table                       # missing, with its shape
    assert ["features.5.squeeze.weight", "32×128×1×1"] in table                       # unexpected
    assert ["features.0.weight", "file", "96×3×7×7,", "model", "64×3×3×3"] in table    # mis-shaped
    assert "strict = false loads the matching keys" in err
    # strict = false: what matches is loaded, the rest is reported
    model, _ = _built(_spec(tmp_path, 'b: backbone squeezenet1_1(weights = "sq10.pth", strict = false)'))
    line = weights_log(model)[0]
    assert line.startswith("backbone 'b': loaded ") and "(partial)" in line and "of another shape unused" in line


def test_corrupt_truncated_empty_and_missing_files(tmp_path, cli, squeeze_state):
    torch.save(squeeze_state, tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "corrupt.pth").write_bytes(os.urandom(4096))
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    cases = {"truncated.pth": "cannot be read", "corrupt.pth": "cannot be read", "empty.pth": "is empty (0 bytes)",
             "corrupt.safetensors": "cannot be read", "nothere.pth": "does not exist"}
    for name, message in cases.items():
        spec = _spec(tmp_path, f'b: backbone squeezenet1_1(weights = "{name}")', "case.cnn")
        rc, _, err = cli("compile", str(spec))
        assert rc == 2 and "Traceback" not in err, name
        assert err.startswith(f"{_at(spec, chr(34) + name)}: error: ") and message in err.splitlines()[0], (name, err)


class _Payload:
    """Pickles to a call of os.system: loading it unsafely would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_code_is_refused_and_its_code_never_runs(tmp_path, cli):
    marker = tmp_path / "pwned"
    torch.save({"conv1.weight": torch.zeros(1), "evil": _Payload(marker)}, tmp_path / "evil.pth")
    spec = _spec(tmp_path, 'b: backbone squeezenet1_1(weights = "evil.pth")')
    rc, _, err = cli("compile", str(spec))
    assert rc == 2 and "Traceback" not in err
    assert "holds Python objects, not only tensors" in err and "no code in it ran" in err
    assert not marker.exists()


# ----------------------------------------------------------------------------- a whole network: init, --init-from


def test_resnet18_spec_loads_torchvisions_weights_by_name(offline_hub):
    """specs/resnet18.cnn uses torchvision's names, so its weights load as they are."""
    model = cnndsl.build(SPECS / "resnet18.cnn").eval()
    init_from_flag(model, "torchvision:resnet18.IMAGENET1K_V1")
    ref = torchvision.models.resnet18().eval()
    ref.load_state_dict(offline_hub)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))
    assert weights_log(model) == ["--init-from: loaded 122 of 122 tensors from torchvision resnet18.IMAGENET1K_V1 (strict)"]


def test_spec_init_entry(tmp_path, offline_hub, cli):
    text = (SPECS / "resnet18.cnn").read_text().replace('import "lib/', f'import "{SPECS}/lib/')
    spec = tmp_path / "r18.cnn"
    spec.write_text(text.replace("fc: linear(num_classes)", 'fc: linear(num_classes)\n    init "torchvision:resnet18"'))
    rc, out, _ = cli("compile", str(spec), "--summary")
    assert rc == 0 and "init: weights torchvision resnet18.IMAGENET1K_V1 (strict, loaded when built)" in out
    model = cnndsl.build(spec)
    assert torch.equal(model.layer4[1].conv2.weight, offline_hub["layer4.1.conv2.weight"])
    rc, _, err = cli("compile", str(spec), "--set", "num_classes=10")      # another head: strict refuses
    assert rc == 2 and "note: mis-shaped:" in err and "fc.weight  file 1000×512, model 10×512" in err.replace("   ", "  ")
    partial = tmp_path / "partial.cnn"
    partial.write_text(spec.read_text().replace('init "torchvision:resnet18"',
                                                'init "torchvision:resnet18" (strict = false)'))
    model = cnndsl.build(partial, num_classes=10)
    assert torch.equal(model.conv1.weight, offline_hub["conv1.weight"])
    assert "loaded 120 of 122 tensors" in weights_log(model)[0] and "(partial)" in weights_log(model)[0]
    spec.write_text(spec.read_text().replace('"torchvision:resnet18"', '"torchvision:resnet18.IMAGENET1K_V9"'))
    rc, _, err = cli("check", str(spec))                                   # checked statically
    assert rc == 2 and err.startswith(f"{_at(spec, 'init ')}: error: unknown weights 'IMAGENET1K_V9' for resnet18")


TINY = """
network Tiny {
    input 3x8x8
    conv: conv(4, k=3, p=1)  relu  global_avgpool  flatten
    fc: linear(2)
}
train {
    data: synthetic(num_train = 16, num_val = 8, shape = [3, 8, 8], num_classes = 2)
    epochs: 1
    batch_size: 8
}
"""


def test_train_init_from_loads_by_name_and_names_the_flag_when_it_cannot(tmp_path, cli, offline_hub):
    spec = tmp_path / "tiny.cnn"
    spec.write_text(TINY)
    source = cnndsl.build(spec)
    torch.nn.init.constant_(source.fc.bias, 0.25)
    torch.save(source.state_dict(), tmp_path / "tiny.pth")
    runs = tmp_path / "runs"
    rc, _, err = cli("train", str(spec), "--init-from", str(tmp_path / "tiny.pth"), "--runs-dir", str(runs),
                       "--quiet", "--device", "cpu")
    assert rc == 0, err
    assert f"weights: --init-from: loaded 4 of 4 tensors from {tmp_path / 'tiny.pth'} (strict)" in err
    # torchvision's resnet18 into a network with other names: nothing matches — refused, nothing written
    before = sorted(p for p in tmp_path.rglob("*"))
    rc, _, err = cli("train", str(spec), "--init-from", "torchvision:resnet18.IMAGENET1K_V1", "--runs-dir", str(runs))
    assert rc == 2 and "Traceback" not in err
    assert err.startswith("cnndsl: error: no tensor of weights --init-from torchvision resnet18.IMAGENET1K_V1 "
                          "matches the network by name")
    assert "note: missing" in err and "note: unexpected" in err
    rc, _, err = cli("train", str(spec), "--init-from", "nothere.pth", "--runs-dir", str(runs))
    assert rc == 2 and err.startswith("cnndsl: error: --init-from nothere.pth: weights file nothere.pth does not exist")
    rc, _, err = cli("train", str(spec), "--init-from", "torchvision:resnet81", "--runs-dir", str(runs))
    assert rc == 2 and "--init-from torchvision:resnet81.DEFAULT: unknown torchvision model 'resnet81'" in err
    assert sorted(p for p in tmp_path.rglob("*")) == before
