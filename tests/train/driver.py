"""Subprocess trainer for kill/resume and DDP tests: python driver.py RUN_DIR [--resume] [--kill-at N]."""

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import synthetic_train, tiny_spec  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.train.run import run_train  # noqa: E402


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
    signals = {args.kill_at: signal.SIGKILL, args.interrupt_at: signal.SIGINT}
    signals.pop(0, None)
    real_build = cnndsl.build

    def build(*a, **kw):  # the model signals itself at its n-th training forward
        model = real_build(*a, **kw)
        calls = {"n": 0}

        def hook(module, inputs):
            if module.training:
                calls["n"] += 1
                if calls["n"] in signals:
                    os.kill(os.getpid(), signals[calls["n"]])
        model.register_forward_pre_hook(hook)
        return model
    cnndsl.build = build

    train = synthetic_train(epochs=args.epochs, deterministic=True, checkpoint_every=args.checkpoint_every,
                            loader=args.loader, augment=["hflip", {"type": "random_crop", "padding": 1},
                                                         {"type": "cutout", "size": 2}],
                            schedule={"type": "onecycle", "pct_start": 0.3})
    res = run_train(tiny_spec(train), run_dir=args.run_dir, resume=args.run_dir if args.resume else None,
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
