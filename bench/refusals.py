"""How fast, and in how much memory, hostile inputs are refused (issue 6's promise: whatever `cnndsl`
refuses is refused with file:line:col, exit 2, in under a second and under 100 MB).

Each case runs `cnndsl.cli.main(argv)` in a fresh process: the figure is the time of that call
(start-up and imports excluded; they are printed once as the baseline) and the process's peak RSS
(imports included). Cases that must load torch (checkpoints) say so; their RSS is torch's.

    python bench/refusals.py [--only WORD] [--timeout 60]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HARNESS = r"""
import json, sys, time, io, contextlib
def hwm():  # this process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
t0 = time.perf_counter()
from cnndsl.cli import main
imported = time.perf_counter() - t0
err = io.StringIO()
t1 = time.perf_counter()
with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
        rc = main(sys.argv[1:])
    except SystemExit as exc:
        rc = exc.code
seconds = time.perf_counter() - t1
print(json.dumps({"rc": rc, "seconds": seconds, "imports": imported, "torch": "torch" in sys.modules,
                  "rss_mb": hwm(),
                  "message": (err.getvalue().strip().splitlines() or [""])[0][:110]}))
"""

NET = "network N {{\n  input {shape}\n  {body}\n}}\n"
TRAIN = "\ntrain {\n  data: synthetic(num_train = 64, num_val = 16)\n  epochs: 1\n  device: cpu\n}\n"


def cases(tmp: Path) -> list[tuple[str, str, list[str]]]:
    """(issue item, what, argv) — files are made in ``tmp``."""
    def spec(name: str, text: str) -> str:
        (tmp / name).write_text(text)
        return str(tmp / name)

    def raw(name: str, data: bytes) -> str:
        (tmp / name).write_bytes(data)
        return str(tmp / name)

    train = spec("t.cnn", NET.format(shape="3x16x16", body="conv(8, k=3, p=1) relu global_avgpool flatten linear(4)") + TRAIN)
    fifo = tmp / "fifo.png"
    os.mkfifo(fifo)
    laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] + [
        f"{q}: &{q} [" + ",".join(["*" + p] * 9) + "]" for p, q in zip("abcdefgh", "bcdefghi")]
    import torch  # hostile checkpoints, written once here

    torch.save({"w": torch.zeros(2)}, tmp / "bare.pt")
    torch.save({"model": {"w": torch.zeros(2)}}, tmp / "model_only.pt")
    (tmp / "run").mkdir()
    (tmp / "run" / "data.json").write_text("{}")
    return [
        ("9", "conv stride 100000 on a 32×32 map", ["check", spec("s9.cnn", NET.format(
            shape="3x32x32", body="conv(8, k=1)\n  conv(16, k=3, s=100000, p=1)"))]),
        ("10", "reflect padding 2 on a 2×2 map", ["check", spec("s10.cnn", NET.format(
            shape="3x2x2", body="conv(4, k=3, p=2, padding_mode=reflect)"))]),
        ("12", "celu(1e-300)", ["check", spec("s12.cnn", NET.format(shape="3x8x8", body="conv(4, k=1) celu(1e-300)"))]),
        ("12", "mul(.inf) from YAML", ["check", spec("s12.yaml", "network:\n  input: 3x8x8\n  layers:\n    - mul: .inf\n")]),
        ("15", "--max-params 1e400", ["check", train, "--max-params", "1e400"]),
        ("15", "--epochs inf", ["train", train, "--epochs", "inf"]),
        ("15", "-o into a missing directory", ["compile", train, "--emit", "python", "-o", str(tmp / "no" / "x.py")]),
        ("15", "--run-dir under /proc", ["train", train, "--run-dir", "/proc/cnndsl"]),
        ("16", "--set train.data.num_train=1e12", ["train", train, "--set", "train.data.num_train=1000000000000"]),
        ("16", "--set train.num_workers=100000", ["train", train, "--set", "train.num_workers=100000"]),
        ("21", "predict on a FIFO", ["predict", train, "--checkpoint", str(tmp / "bare.pt"), str(fifo)]),
        ("21", "predict on /dev/zero", ["predict", train, "--checkpoint", str(tmp / "bare.pt"), "/dev/zero"]),
        ("5", "--resume RUN/data.json (torch)", ["train", train, "--resume", str(tmp / "run" / "data.json")]),
        ("18", "--resume --force a bare state_dict (torch)", ["train", train, "--resume", str(tmp / "bare.pt"), "--force"]),
        ("18", "--resume --force {model} only (torch)", ["train", train, "--resume", str(tmp / "model_only.pt"), "--force"]),
        ("23", "--resume a run without a checkpoint (torch)", ["train", train, "--resume", str(tmp / "run")]),
        ("earlier", "YAML billion laughs (379 bytes)", ["check", spec("laughs.yaml", "\n".join(laughs) +
                                                                     "\nnetwork:\n  input: 3x8x8\n  layers: *i\n")]),
        ("earlier", "YAML flow nesting 100,000 deep", ["check", spec("deep.yaml", "network:\n  input: 3x8x8\n  layers: "
                                                                    + "[" * 100_000 + "]" * 100_000 + "\n")]),
        ("earlier", ".cnn nesting 10,000 deep", ["check", spec("deep.cnn", NET.format(
            shape="3x8x8", body="{ " * 10_000 + "relu" + " }" * 10_000))]),
        # the front end's bombs (issue 6 items 2, 3, 13, 19, 20), measured here for the record
        ("2", "round(1, -100000000) in a when", ["check", spec("b2.cnn", NET.format(
            shape="3x8x8", body="relu when round(1, -100000000) == 0"))]),
        ("3", "check /dev/zero", ["check", "/dev/zero"]),
        ("13", "a 5,000-digit channel count", ["check", spec("b13.cnn", NET.format(shape="3x8x8", body=f"conv({'9' * 5000}, k=1)"))]),
        ("19", "200,000 × relu", ["check", spec("b19.cnn", NET.format(shape="3x8x8", body="relu " * 200_000))]),
        ("19", "a 100,000-term 1+1+…", ["check", spec("b19b.cnn", NET.format(
            shape="3x8x8", body="conv(" + "+".join(["1"] * 100_000) + ", k=1)"))]),
        ("20", "30,000 block definitions", ["check", spec("b20.cnn", "".join(f"block B{i} {{ relu }}\n" for i in range(30_000))
                                                     + NET.format(shape="3x8x8", body="relu"))]),
    ]


def measure(argv: list[str], timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def cap() -> None:  # `check` never needs torch: 2 GiB of address space is plenty, and a bomb stays a bomb
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    try:
        p = subprocess.run([sys.executable, "-c", HARNESS, *argv], capture_output=True, text=True, timeout=timeout,
                           env=env, preexec_fn=cap if argv[0] == "check" else None)
    except subprocess.TimeoutExpired:
        return {"rc": "timeout", "seconds": timeout, "rss_mb": float("nan"), "message": f"over {timeout} s"}
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"rc": p.returncode, "seconds": float("nan"), "rss_mb": float("nan"), "message": p.stderr[-110:]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="run the cases whose item or text contains this")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        todo = [c for c in cases(Path(tmp)) if not args.only or args.only in c[0] or args.only in c[1]]
        print(f"{'item':8s} {'input':46s} {'exit':>5s} {'time':>8s} {'peak RSS':>9s}  first line of the message")
        for item, what, argv_ in todo:
            r = measure(argv_, args.timeout)
            print(f"{item:8s} {what:46s} {r['rc']!s:>5s} {r['seconds']:7.3f}s {r['rss_mb']:7.0f}MB  {r['message']}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
