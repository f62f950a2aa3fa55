"""Subprocess trainer for kill/resume and DDP tests: python driver.py RUN_DIR [--resume] [--kill-at N]."""

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import FakeSpec, Tiny, synthetic_train  # noqa: E402

from cnndsl.train.commands import run_train  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--kill-at", type=int, default=0, help="SIGKILL self at this forward call")
    ap.add_argument("--interrupt-at", type=int, default=0, help="SIGINT self at this forward call")
    ap.add_argument("--loader", default="dataloader")
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--checkpoint-every", type=int, default=3)
    args = ap.parse_args()
    calls = {"n": 0}

    def build(spec, **kw):
        model = Tiny()
        orig = model.forward

        def forward(x):
            if model.training:
                calls["n"] += 1
                if calls["n"] == args.kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                if calls["n"] == args.interrupt_at:
                    os.kill(os.getpid(), signal.SIGINT)
            return orig(x)
        model.forward = forward
        return model

    train = synthetic_train(epochs=args.epochs, deterministic=True, checkpoint_every=args.checkpoint_every,
                            loader=args.loader, augment=["hflip", {"type": "random_crop", "padding": 1},
                                                         {"type": "cutout", "size": 2}],
                            schedule={"type": "onecycle", "pct_start": 0.3})
    spec = FakeSpec(train)
    res = run_train(spec, build=build, run_dir=args.run_dir, resume=args.run_dir if args.resume else None,
                    quiet=True, progress=False)
    dump = os.environ.get("DDP_DUMP")
    if dump:
        import torch
        torch.save({k: v.detach().clone() for k, v in res.model.state_dict().items()},
                   f"{dump}{os.environ.get('RANK', '0')}.pt")
    print("STATUS", res.status, res.steps)
    return 130 if res.status == "interrupted" else 0


if __name__ == "__main__":
    from cnndsl.train.distributed import leave

    sys.exit(leave(main()))
