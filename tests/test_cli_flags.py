"""Bad command-line values are diagnostics naming the flag, exit 2, before any work (issue 6, item 15)."""

from __future__ import annotations

import pytest

from cnndsl.cli import main

SPEC = "network N {\n  input 3x8x8\n  conv(4, k=3, p=1)  relu  global_avgpool  flatten  linear(2)\n}\n"


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "n.cnn"
    p.write_text(SPEC)
    return str(p)


def run(capsys, *argv: str) -> tuple[int, str]:
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse's own errors: usage, message, exit 2
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out + err


@pytest.mark.parametrize("argv, flag", [
    (["check", "{spec}", "--max-params", "nan"], "--max-params"),
    (["check", "{spec}", "--max-params", "inf"], "--max-params"),
    (["check", "{spec}", "--max-params", "1e400"], "--max-params"),
    (["check", "{spec}", "--max-layers", "-3"], "--max-layers"),
    (["train", "{spec}", "--epochs", "inf"], "--epochs"),
    (["train", "{spec}", "--epochs", "nan"], "--epochs"),
    (["train", "{spec}", "--batch-size", "0"], "--batch-size"),
    (["predict", "{spec}", "--checkpoint", "x.pt", "--top-k", "-1", "a.png"], "--top-k"),
])
def test_non_finite_and_negative_numbers_name_their_flag(capsys, spec, argv, flag):
    rc, text = run(capsys, *[a.format(spec=spec) for a in argv])
    assert rc == 2 and f"argument {flag}" in text and "Traceback" not in text


@pytest.mark.parametrize("command", [["compile", "--emit", "python"], ["fmt"]])
def test_output_into_a_missing_directory_or_onto_a_directory(capsys, spec, tmp_path, command):
    rc, text = run(capsys, command[0], spec, *command[1:], "-o", str(tmp_path / "missing" / "out.txt"))
    assert rc == 2 and "-o" in text and "does not exist" in text
    rc, text = run(capsys, command[0], spec, *command[1:], "-o", str(tmp_path))
    assert rc == 2 and "-o" in text and "is a directory" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.cnn"]  # nothing written, no temp file


def test_run_dir_that_is_a_file_or_under_proc(capsys, spec, tmp_path):
    rc, text = run(capsys, "train", spec, "--run-dir", spec)
    assert rc == 2 and "--run-dir" in text and "not a directory" in text
    rc, text = run(capsys, "train", spec, "--run-dir", "/proc/cnndsl-run")
    assert rc == 2 and "--run-dir" in text and "/proc" in text


def test_set_train_values_that_are_not_finite(capsys, spec):
    with_train = spec.replace(".cnn", "_t.cnn")
    open(with_train, "w").write(SPEC + "train {\n  data: synthetic\n  device: cpu\n}\n")
    rc, text = run(capsys, "train", with_train, "--set", "train.epochs=inf")
    assert rc == 2 and "train.epochs" in text and "finite" in text
    rc, text = run(capsys, "train", with_train, "--device", "meta")
    assert rc == 2 and "'meta' is not a device" in text


def test_train_refuses_bad_train_values_before_importing_torch(tmp_path):
    """A typo in --set train.* is refused at once: no torch import, no allocation (item 16)."""
    import subprocess
    import sys
    from pathlib import Path

    spec = tmp_path / "t.cnn"
    spec.write_text(SPEC + "train {\n  data: synthetic\n  device: cpu\n}\n")
    code = ("import sys; from cnndsl.cli import main; "
            f"rc = main(['train', {str(spec)!r}, '--set', 'train.data.num_train=1000000000000']); "
            "print(rc, 'torch' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    assert p.stdout.split() == ["2", "False"], p.stdout + p.stderr
    assert "num_train" in p.stderr


def test_predict_refuses_a_fifo_or_device_before_loading_anything(capsys, spec, tmp_path):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for image in (str(fifo), "/dev/zero"):
        rc, text = run(capsys, "predict", spec, "--checkpoint", str(tmp_path / "none.pt"), image)
        assert rc == 2 and "not a regular file" in text and image in text
