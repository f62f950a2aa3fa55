"""Mutation fuzzer: what `cnndsl check` accepts must build, run forward and backward; what it refuses
must be a CnnError — never another exception, a hang or a crash (issue 6, "keep them closed").

Each input (bench/fuzz_inputs.py: shipped specs, YAML twins, generated networks, 1–3 mutations) is
written to a file and goes through the API: ``load`` → ``analyze`` → ``--emit python`` (the source
must compile) → ``fmt`` in both syntaxes (the output must parse back) → when small enough, ``build``
and a forward + backward pass in train mode on a batch of 2 with finite outputs and gradients,
comparing every module's static shape with torch's. Every ``--cli-every``-th input also runs
``cnndsl check``/``compile --summary``/``fmt`` in-process (exit 0 or 2, never 1), and the first
``--subprocesses`` inputs run ``python -m cnndsl check`` for real.

Inputs run in worker processes (``--jobs``; 0 = in this process) so that a hang (``--timeout``) or
a crash is counted, not fatal. Outcomes:

    trained      accepted; built, forward + backward on a batch of 2, shapes equal
    analysed     accepted; larger than the run budget, analysed only
    refused      a CnnError (also: how many lack a file:line:col, the slowest refusal)
    other        any other exception — a bug                      ┐
    hang         over the per-input timeout — a bug               │ the four zeros
    crash        the worker died (segfault, abort) — a bug        │ (+ crash)
    torch_failed accepted, but build / forward / backward failed  │
    mismatch     a static shape differs from torch's              ┘

    python bench/fuzz.py --n 10000 --seed 0 [--jobs 2] [--timeout 10] [--save bench/fuzz-failures]
    python bench/fuzz.py --show 1234 --seed 0      # print input 1234 of that run

The exit status is 1 when any bug category is non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_inputs import Input, make_input, seed_texts  # noqa: E402

BUGS = ("other", "hang", "crash", "torch_failed", "mismatch")
ORDER = ("trained", "analysed", "refused") + BUGS
LABELS = {"trained": "accepted; built, forward + backward (batch 2)", "analysed": "accepted; analysed only (over the run budget)",
          "refused": "refused with a CnnError", "other": "other exception (bug)", "hang": "hang (over the timeout)",
          "crash": "crash (the worker died)", "torch_failed": "check accepted, torch failed",
          "mismatch": "shape mismatch (static vs torch)"}
RUN_BUDGET = (1_500_000, 20_000_000)  # (activation elements per sample, parameters) above which an
#                                       accepted spec is analysed only


@dataclass
class Outcome:
    index: int
    kind: str
    seconds: float
    detail: str = ""
    unlocated: bool = False    # a refusal without file:line:col


@dataclass
class Report:
    n: int
    seed: int
    counts: Counter = field(default_factory=Counter)
    failures: list[Outcome] = field(default_factory=list)
    unlocated: int = 0
    unlocated_messages: Counter = field(default_factory=Counter)
    slowest_refusal: tuple[float, int] = (0.0, -1)
    slowest: tuple[float, int] = (0.0, -1)
    cli_runs: int = 0
    subprocess_runs: int = 0
    seconds: float = 0.0

    def add(self, o: Outcome) -> None:
        self.counts[o.kind] += 1
        if o.kind in BUGS:
            self.failures.append(o)
        if o.kind == "refused":
            self.unlocated += o.unlocated
            if o.unlocated:
                self.unlocated_messages[o.detail] += 1
            self.slowest_refusal = max(self.slowest_refusal, (o.seconds, o.index))
        self.slowest = max(self.slowest, (o.seconds, o.index))

    @property
    def bugs(self) -> int:
        return sum(self.counts[k] for k in BUGS)

    def table(self) -> str:
        lines = [f"cnndsl fuzz: {self.n:,} inputs, seed {self.seed}, {self.seconds:.0f} s",
                 f"{'outcome':48s} {'count':>7s} {'share':>7s}"]
        for k in ORDER:
            lines.append(f"{LABELS[k]:48s} {self.counts[k]:7,d} {self.counts[k] / max(self.n, 1):7.1%}")
        lines += [f"{'  refusals without file:line:col':48s} {self.unlocated:7,d}",
                  f"{'CLI runs: in-process / real subprocesses':48s} {self.cli_runs:,} / {self.subprocess_runs:,}",
                  f"{'slowest refusal':48s} {self.slowest_refusal[0]:6.2f}s (input {self.slowest_refusal[1]})",
                  f"{'slowest input':48s} {self.slowest[0]:6.2f}s (input {self.slowest[1]})"]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- one input, in process


class _Timeout(BaseException):
    pass


def _located(exc) -> bool:
    return all(d.span is not None for d in exc.diagnostics)


def _api(path: Path, inp: Input, budget: tuple[int, int]) -> Outcome:
    import cnndsl
    from cnndsl import CnnError

    t0 = time.perf_counter()
    try:
        spec = cnndsl.load(path)
        a = cnndsl.analyze(spec)
    except CnnError as exc:
        exc.render()
        unlocated = not _located(exc)
        return Outcome(inp.index, "refused", time.perf_counter() - t0, exc.diagnostics[0].message[:70] if unlocated
                       else "", unlocated=unlocated)
    seconds = time.perf_counter() - t0
    _emit_and_format(spec, a)
    size = max(a.activations, math.prod(a.input_shape) + sum(math.prod(i.shape) for i in a.layers))
    if size > budget[0] or a.params > budget[1]:   # a.activations counts inside torchvision backbones
        return Outcome(inp.index, "analysed", seconds)
    return _train_step(a, inp.index, seconds)


def _emit_and_format(spec, a) -> None:
    """--emit python compiles; fmt's output in either syntax parses back (a ValueError is fmt's
    documented refusal: "cannot write this spec as ...")."""
    import cnndsl
    from cnndsl import CnnError
    from cnndsl.emit.python import python_source
    from cnndsl.syntax.format import format_cnn, format_yaml

    try:
        source = python_source(a)
    except CnnError:  # a documented refusal (a backbone that is another cnndsl spec, a plugin op)
        source = ""
    compile(source, "<emitted>", "exec")
    for fmt, writer in (("cnn", format_cnn), ("yaml", format_yaml)):
        try:
            text = writer(spec)
        except ValueError:
            continue
        cnndsl.parse(text, format=fmt, filename=f"<fmt {fmt}>")


def forward_backward(a) -> tuple[tuple, dict[str, tuple[int, ...]], bool]:
    """Build an analysed network, run a random batch of 2 forward (recording each registered layer's
    output shape) and backward: the outputs, the shapes seen, and whether the outputs and every
    gradient are finite. The ground truth the fuzzer and the extreme-spec property compare with."""
    import cnndsl
    import torch

    torch.manual_seed(0)
    model = cnndsl.build(a).train()
    seen: dict[str, tuple[int, ...]] = {}
    for info in a.layers:
        if info.node.registered:
            model.get_submodule(info.name).register_forward_hook(
                lambda m, i, o, name=info.name: seen.__setitem__(name, tuple(o.shape[1:])))
    x = torch.randn(2, *a.input_shape, requires_grad=True)
    out = model(x)
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    sum(o.float().square().mean() for o in outs).backward()
    finite = all(bool(torch.isfinite(o).all()) for o in outs) and all(
        bool(torch.isfinite(p.grad).all()) for p in [x, *model.parameters()] if p.grad is not None)
    return outs, seen, finite


def _train_step(a, index: int, seconds: float) -> Outcome:
    import cnndsl

    t0 = time.perf_counter()
    try:
        outs, seen, finite = forward_backward(a)
    except cnndsl.CnnError as exc:  # a diagnostic at build time (weights not in the cache, offline)
        return Outcome(index, "refused", seconds + time.perf_counter() - t0, exc.diagnostics[0].message[:70])
    except Exception as exc:  # noqa: BLE001 - the point: check accepted it, torch refused it
        return Outcome(index, "torch_failed", seconds + time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"[:500])
    wrong = [f"{i.name}: static {tuple(i.shape)}, torch {seen.get(i.name)}" for i in a.layers
             if i.node.registered and seen.get(i.name) != tuple(i.shape)]
    wrong += [f"output {k}: static {s}, torch {tuple(o.shape[1:])}" for k, (s, o) in
              enumerate(zip(a.output_shapes, outs)) if tuple(s) != tuple(o.shape[1:])]
    if wrong:
        return Outcome(index, "mismatch", seconds, "; ".join(wrong)[:500])
    if not finite:
        return Outcome(index, "torch_failed", seconds, "non-finite output or gradient")
    return Outcome(index, "trained", seconds + time.perf_counter() - t0)


def _cli(path: Path) -> str | None:
    """``check``, ``compile --summary``, ``fmt`` in-process: exit 0 or 2; anything else is a bug."""
    from cnndsl.cli import main

    for argv in (["check", str(path)], ["compile", str(path), "--summary"], ["fmt", str(path)]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exc:
                rc = exc.code
        if rc not in (0, 2):
            return f"cnndsl {' '.join(argv[:1])}: exit {rc}: {err.getvalue()[-400:]}"
    return None


def _subprocess(path: Path, timeout: float) -> str | None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        p = subprocess.run([sys.executable, "-m", "cnndsl", "check", str(path)], capture_output=True, text=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return f"python -m cnndsl check: over {timeout} s"
    if p.returncode not in (0, 2) or "Traceback" in p.stderr:
        return f"python -m cnndsl check: exit {p.returncode}: {p.stderr[-400:]}"
    return None


def run_one(inp: Input, workdir: Path, cli: bool, real: bool, timeout: float,
            budget: tuple[int, int] = RUN_BUDGET) -> Outcome:
    """One input through the API (and the CLI when asked); only bugs escape as non-refusal kinds."""
    path = workdir / f"fuzz_{inp.index}{inp.suffix}"
    path.write_text(inp.text, encoding="utf-8", errors="surrogatepass")
    t0 = time.perf_counter()
    try:
        outcome = _api(path, inp, budget)
        problem = (_cli(path) if cli else None) or (_subprocess(path, max(timeout, 30)) if real else None)
        if problem:
            outcome = Outcome(inp.index, "other", time.perf_counter() - t0, problem)
    except _Timeout:
        outcome = Outcome(inp.index, "hang", time.perf_counter() - t0, f"over {timeout} s")
    except Exception as exc:  # noqa: BLE001 - a bug in cnndsl
        outcome = Outcome(inp.index, "other", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"[:500])
    finally:
        path.unlink(missing_ok=True)
    return outcome


# ----------------------------------------------------------------------------- workers


def _prepare(workdir: Path) -> None:
    """Imports in shipped specs (``import "lib/..."``) resolve inside the work directory."""
    lib = workdir / "lib"
    if not lib.exists():
        lib.mkdir(parents=True)
        for f in (ROOT / "specs" / "lib").iterdir():
            (lib / f.name).write_bytes(f.read_bytes())


def _alarm(timeout: float):
    def handler(*_):
        raise _Timeout()
    signal.signal(signal.SIGALRM, handler)
    return lambda: signal.setitimer(signal.ITIMER_REAL, timeout)


def _worker(conn, seed: int, workdir: str, timeout: float, budget: tuple[int, int]) -> None:
    import torch

    torch.set_num_threads(1)
    seeds = seed_texts()
    import cnndsl.cli  # noqa: F401  (imported before the clock starts)
    arm = _alarm(timeout * 2 + 60)  # a backstop inside the worker; the parent enforces the timeout
    conn.send("ready")
    while True:
        job = conn.recv()
        if job is None:
            return
        index, cli, real = job
        arm()
        try:
            out = run_one(make_input(seed, index, seeds), Path(workdir), cli, real, timeout, budget)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        conn.send(out)


class _Pool:
    """Worker processes with a per-input timeout; a dead or stuck worker is replaced."""

    def __init__(self, jobs: int, seed: int, workdir: Path, timeout: float, budget: tuple[int, int]):
        self.ctx, self.seed, self.workdir, self.timeout = mp.get_context("spawn"), seed, workdir, timeout
        self.budget = budget
        self.workers = [self._start() for _ in range(jobs)]

    def _start(self):
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.seed, str(self.workdir), self.timeout, self.budget),
                                daemon=True)
        proc.start()
        if not parent.poll(300) or parent.recv() != "ready":
            raise RuntimeError("a fuzz worker did not start")
        return [proc, parent, None, 0.0]  # process, pipe, running job, started at

    def run(self, jobs: list[tuple[int, bool, bool]], report: Report, progress) -> None:
        pending = list(reversed(jobs))
        while pending or any(w[2] is not None for w in self.workers):
            for i, w in enumerate(self.workers):
                proc, conn, job, started = w
                if job is None and pending:
                    job = pending.pop()
                    conn.send(job)
                    w[2], w[3] = job, time.perf_counter()
                    continue
                if job is None:
                    continue
                if conn.poll(0.005):
                    try:
                        out = conn.recv()
                    except EOFError:
                        out = Outcome(job[0], "crash", time.perf_counter() - started, f"exit code {proc.exitcode}")
                        self.workers[i] = self._start()
                    else:
                        w[2] = None
                    report.add(out)
                    progress(report)
                elif not proc.is_alive() or time.perf_counter() - started > self.timeout + 60 * job[2]:
                    kind = "hang" if proc.is_alive() else "crash"
                    proc.kill()
                    proc.join()
                    report.add(Outcome(job[0], kind, time.perf_counter() - started,
                                       f"over {self.timeout} s" if kind == "hang" else f"exit code {proc.exitcode}"))
                    progress(report)
                    self.workers[i] = self._start()

    def close(self) -> None:
        for proc, conn, _, _ in self.workers:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(None)
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


def run(n: int = 300, seed: int = 0, *, jobs: int = 1, timeout: float = 10.0, cli_every: int = 10,
        subprocesses: int = 2, workdir: Path | None = None, quiet: bool = True,
        budget: tuple[int, int] = RUN_BUDGET) -> Report:
    """Fuzz ``n`` inputs of run ``seed``; ``jobs=0`` runs them in this process (no crash isolation)."""
    report = Report(n, seed)
    plan = [(i, cli_every > 0 and i % cli_every == 0, i < subprocesses) for i in range(n)]
    t0 = time.perf_counter()

    def progress(r: Report) -> None:
        done = sum(r.counts.values())
        if not quiet and (done % 500 == 0 or done == n):
            print(f"  {done:,}/{n:,} inputs, {time.perf_counter() - t0:.0f} s, bugs so far {r.bugs}",
                  file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        _prepare(work)
        if jobs <= 0:
            seeds, arm = seed_texts(), _alarm(timeout)
            for index, cli, real in plan:
                arm()
                try:
                    report.add(run_one(make_input(seed, index, seeds), work, cli, real, timeout, budget))
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                progress(report)
        else:
            pool = _Pool(jobs, seed, work, timeout, budget)
            try:
                pool.run(plan, report, progress)
            finally:
                pool.close()
    report.cli_runs = sum(1 for _, cli, _ in plan if cli)
    report.subprocess_runs = sum(1 for _, _, real in plan if real)
    report.seconds = time.perf_counter() - t0
    return report


def save_failures(report: Report, seed: int, out: Path) -> None:
    seeds = seed_texts()
    out.mkdir(parents=True, exist_ok=True)
    for o in report.failures:
        inp = make_input(seed, o.index, seeds)
        (out / f"{o.kind}_{o.index}{inp.suffix}").write_text(inp.text, encoding="utf-8", errors="surrogatepass")
        (out / f"{o.kind}_{o.index}.txt").write_text(f"{o.kind}: {o.detail}\norigin: {inp.origin}\n"
                                                      f"edits: {inp.edits}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="number of inputs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (0: in this process)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per input before it counts as a hang")
    ap.add_argument("--cli-every", type=int, default=10, help="run the in-process CLI on every N-th input")
    ap.add_argument("--subprocesses", type=int, default=20, help="run `python -m cnndsl check` for the first N")
    ap.add_argument("--save", type=Path, help="write failing inputs and their errors to this directory")
    ap.add_argument("--show", type=int, help="print input SHOW of the run and exit")
    args = ap.parse_args(argv)
    if args.show is not None:
        inp = make_input(args.seed, args.show, seed_texts())
        print(f"# input {inp.index}: {inp.origin}, {inp.fmt}, edits {inp.edits}\n{inp.text}")
        return 0
    report = run(args.n, args.seed, jobs=args.jobs, timeout=args.timeout, cli_every=args.cli_every,
                 subprocesses=args.subprocesses, quiet=False)
    print(report.table())
    for msg, count in report.unlocated_messages.most_common(8):
        print(f"  unlocated refusal x{count}: {msg}")
    for o in report.failures[:20]:
        print(f"  input {o.index}: {o.kind}: {o.detail[:300]}")
    if args.save and report.failures:
        save_failures(report, args.seed, args.save)
        print(f"failing inputs written to {args.save}")
    return 1 if report.bugs else 0


if __name__ == "__main__":
    sys.exit(main())
