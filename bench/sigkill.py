"""SIGKILL survival: kill `cnndsl train` at random moments, then check that the run directory's
last.pt always loads and that `--resume` finishes the run with weights bitwise equal to a run that
was never interrupted.

A small network trains on synthetic data with a checkpoint after every step (so kills land inside
checkpoint writes too), deterministically on the CPU. One uninterrupted reference run gives the
expected final weights and its duration; each trial starts the same command, sends SIGKILL after a
random delay within that duration, then inspects and resumes the run.

    python bench/sigkill.py [--trials 20] [--seed 0] [--epochs 3]

Prints one line per trial and the totals: survivals k/N (last.pt loaded and resumed to completion),
bitwise-equal results, and trials killed before the first checkpoint existed (the resume must then
say "no checkpoint yet").
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC = """network Small {
    input 3x16x16
    conv(16, k=3, p=1, bias=false)  batchnorm  relu  maxpool(2)
    conv(32, k=3, p=1, bias=false)  batchnorm  relu  global_avgpool
    flatten  dropout(0.2)  linear(10)
}

train {
    data: synthetic(num_train = 256, num_val = 64)
    epochs: %d
    batch_size: 32
    optimizer: sgd(lr = 0.05, momentum = 0.9)
    augment: [random_crop(padding = 2), hflip]
    checkpoint_every: 1
    deterministic: true
    device: cpu
}
"""


def _cmd(spec: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cnndsl", "train", str(spec), "--quiet", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _weights(run: Path) -> dict:
    from cnndsl.train import checkpoint as ckpt

    return ckpt.load(run / "last.pt")["model"]


def trial(spec: Path, run: Path, delay: float, during_startup: bool, reference: dict) -> tuple[str, str]:
    """Kill a run ``delay`` s after its start (``during_startup``) or after its first checkpoint
    appeared (start-up times vary too much under load to aim at training by the clock alone);
    then load and resume it. Returns (outcome, detail)."""
    import torch
    from cnndsl.errors import CnnError
    from cnndsl.train import checkpoint as ckpt

    proc = subprocess.Popen(_cmd(spec, "--run-dir", str(run)), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    while not during_startup and proc.poll() is None and not (run / "last.pt").exists():
        time.sleep(0.01)
    time.sleep(delay)
    if proc.poll() is not None:
        return "finished", "the run ended before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    temps = sorted(p.name for p in run.glob(".*.tmp")) if run.exists() else []
    try:
        state = ckpt.load(run / "last.pt")
        where = f"step {state['global_step']}" + (f", temp files left by the kill: {temps}" if temps else "")
    except CnnError as exc:
        resumed = subprocess.run(_cmd(spec, "--resume", str(run)), env=_env(), capture_output=True, text=True)
        ok = resumed.returncode == 2 and ("no checkpoint yet" in resumed.stderr or "checkpoint does not exist" in resumed.stderr)
        return ("before-first-checkpoint" if ok else "FAILED",
                exc.diagnostics[0].message + ("" if ok else f"; resume said: {resumed.stderr[-300:]}"))
    resumed = subprocess.run(_cmd(spec, "--resume", str(run)), env=_env(), capture_output=True, text=True)
    if resumed.returncode != 0:
        return "FAILED", f"killed at {where}; resume exit {resumed.returncode}: {resumed.stderr[-300:]}"
    if any(p.name.endswith(".tmp") for p in run.iterdir()):
        return "FAILED", f"killed at {where}; temp files remain after the resume"
    final = _weights(run)
    same = all(torch.equal(final[k], reference[k]) for k in reference)
    return ("resumed, bitwise equal" if same else "resumed, DIFFERENT"), f"killed at {where}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = tmp / "small.cnn"
        spec.write_text(SPEC % args.epochs)
        t0, first = time.perf_counter(), None
        ref = subprocess.Popen(_cmd(spec, "--run-dir", str(tmp / "reference")), env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while ref.poll() is None:  # when the first checkpoint appears: start-up is over
            if first is None and (tmp / "reference" / "last.pt").exists():
                first = time.perf_counter() - t0
            time.sleep(0.05)
        duration = time.perf_counter() - t0
        if ref.returncode != 0:
            print(ref.stderr.read())
            return 1
        reference = _weights(tmp / "reference")
        first = first or duration / 2
        training = duration - first
        print(f"reference run: {duration:.1f} s, first checkpoint after {first:.1f} s; killing {args.trials} runs at "
              f"random moments: most within the {training:.1f} s of training after the first checkpoint, "
              f"some during start-up")
        outcomes: dict[str, int] = {}
        for i in range(args.trials):
            startup = rng.random() < 0.15
            delay = rng.uniform(0.3, first) if startup else rng.uniform(0.0, 0.9 * training)
            for attempt in range(4):  # a run that ended before its kill is no trial: kill it sooner
                outcome, detail = trial(spec, tmp / f"run{i}_{attempt}", delay, startup, reference)
                if outcome != "finished":
                    break
                delay /= 2
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            when = "after start" if startup else "after the first checkpoint"
            print(f"  trial {i + 1:2d}: SIGKILL {delay:5.2f} s {when}: {outcome} ({detail})", flush=True)
    resumed = sum(v for k, v in outcomes.items() if k.startswith("resumed"))
    equal = outcomes.get("resumed, bitwise equal", 0)
    early = outcomes.get("before-first-checkpoint", 0)
    survived = resumed + early  # an early kill survives if the resume says plainly there is nothing yet
    print(f"SIGKILL survivals: {survived}/{args.trials} (last.pt loaded and resumed: {resumed}; killed before "
          f"the first checkpoint and told so: {early}); bitwise equal to the uninterrupted run: {equal}/{resumed}; "
          f"failures: {outcomes.get('FAILED', 0) + outcomes.get('resumed, DIFFERENT', 0)}")
    return 0 if survived == args.trials and equal == resumed else 1


if __name__ == "__main__":
    sys.exit(main())
