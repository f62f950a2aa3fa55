"""Import every torchvision classification model and check the round trip; write a Markdown table.

    python bench/import_zoo.py                     # all models → bench/import_zoo.json + table on stdout
    python bench/import_zoo.py --only resnet18,vgg11 --timeout 300
    python bench/import_zoo.py --one resnet18      # one model, JSON on stdout

For each model of ``torchvision.models.list_models(module=torchvision.models)``: ``cnndsl import``
(on the meta device, traced at a small input where the model allows), then the round trip with
random weights — the spec
compiled by cnndsl loads the model's state_dict strictly (same keys and shapes) and gives the same
eval outputs (``torch.allclose``, rtol 1e-4, atol 1e-5) on a batch of two random images. Each model
runs under a time limit, in one of ``--workers`` niced processes; the table names what blocks the
others.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"inception_v3": 96}          # smallest inputs some models accept
# the auxiliary classifiers run only in training: their weights are not in an eval-mode trace, so
# the state_dict would not load — these models are imported for inference, without them
ARGS = {"googlenet": "aux_logits=False", "inception_v3": "aux_logits=False"}
FIXED = ("vit_", "swin_", "maxvit_")  # models built for one input size
DEFAULT_SIZE = 64


def size_for(name: str) -> int:
    if name.startswith(FIXED):
        return 224
    return SIZES.get(name, DEFAULT_SIZE)


def run_one(name: str) -> dict:
    from cnndsl.errors import CnnError
    from cnndsl.syntax.format import format_cnn
    from cnndsl.translate.importer import import_spec, make_model, parse_factory, round_trip

    size = size_for(name)
    shape = (3, size, size)
    call = f"{name}({ARGS[name]})" if name in ARGS else name
    f = parse_factory(f"torchvision.models:{call}")
    t0 = time.process_time()
    meta = make_model(f, "meta")
    try:
        spec = import_spec(f, shape, model=meta)
    except CnnError as exc:
        reason = _reason(exc.diagnostics[0].message, str(f))
        return {"model": call, "status": "blocked", "reason": _every_blocker(reason, meta, shape)}
    text = format_cnn(spec)
    out = {"model": call, "input": f"3x{size}x{size}", "lines": text.count("\n"), "blocks": len(spec.blocks),
           "import_cpu_s": round(time.process_time() - t0, 1)}
    try:
        res = round_trip(text, random_model(meta, f), shape)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return {**out, "status": "fails", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    out.update(res)
    out["status"] = "ok" if res["layout"] and res["outputs"] else "mismatch"
    return out


def _reason(message: str, factory: str) -> str:
    """The error without the ``MODEL: torchvision.models:x`` the table's row already says."""
    text = message.removeprefix("MODEL: ")
    for lead in (f"{factory}: ", f"{factory} cannot be written as a spec: "):
        text = text.removeprefix(lead)
    return text


def _every_blocker(reason: str, meta, shape: tuple[int, ...]) -> str:
    """The reason with every cause of opaque nodes (the command's message shows six at most)."""
    from cnndsl.translate.flow import opaque_summary
    from cnndsl.translate.fx import node_names, translate

    try:
        records = translate(meta, shape, [node_names(meta)[-1]]).records
    except Exception:  # noqa: BLE001 - untraceable: the reason says so already
        return reason
    if not any(r.opaque for r in records):
        return reason
    full = opaque_summary(records, limit=None)
    head, sep, _ = reason.partition("no cnndsl op for ")
    return head + full if sep else f"{reason}; {full}"


def random_model(meta, f):
    """The model with random weights, made quickly: the meta model's storage on the CPU, filled
    with values of a sensible scale (torchvision's own initialisers are slow for the big models —
    scipy's truncated normal for GoogLeNet/Inception). A model with non-persistent buffers (set at
    construction, not in the state_dict) is constructed on the CPU instead."""
    import torch

    from cnndsl.translate.importer import make_model

    if meta.parameters().__next__().device.type != "meta" or any(
            m._non_persistent_buffers_set for m in meta.modules()):
        return make_model(f, "cpu")
    torch.manual_seed(0)
    model = meta.to_empty(device="cpu")
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                t.zero_()
            elif name.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif t.dim() >= 2:
                t.normal_(0, (t[0].numel()) ** -0.5)
            elif name.endswith("weight"):
                t.uniform_(0.5, 1.5)
            else:
                t.normal_(0, 0.1)
    return model.eval()


def run_many(names: list[str], timeout: float) -> None:
    """Models one after another in this process (torch imported once), each under an alarm;
    one JSON line per model on stdout."""
    import gc
    import signal

    def expired(signum, frame):
        raise TimeoutError

    signal.signal(signal.SIGALRM, expired)
    for name in names:
        t0 = time.time()
        signal.alarm(int(timeout))
        try:
            res = run_one(name)
        except TimeoutError:
            res = {"model": name, "status": "timeout", "reason": f"over {timeout:.0f} s"}
        except Exception as exc:  # noqa: BLE001 - reported in the table
            res = {"model": name, "status": "fails", "reason": f"{type(exc).__name__}: {str(exc)[:200]}"}
        finally:
            signal.alarm(0)
        res["wall_s"] = round(time.time() - t0, 1)
        print(json.dumps(res), flush=True)
        gc.collect()


def drive(names: list[str], timeout: float, workers: int, jobs_out: Path) -> list[dict]:
    """``workers`` processes (niced), each running every ``workers``-th model in order."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for w in range(workers):
        chunk = names[w::workers]
        log = open(jobs_out.with_suffix(f".{w}.jsonl"), "w")
        procs.append((subprocess.Popen(["nice", "-n", "1", sys.executable, __file__, "--many", ",".join(chunk),
                                        "--timeout", str(timeout)], env=env, stdout=log), log))
    for proc, log in procs:
        proc.wait()
        log.close()
    found = {}
    for w in range(workers):
        for line in jobs_out.with_suffix(f".{w}.jsonl").read_text().splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                found[r["model"].split("(")[0]] = r
    results = [found.get(n, {"model": n, "status": "fails", "reason": "no result (the worker died)"})
               for n in names]
    jobs_out.write_text(json.dumps(results, indent=1))
    return results


def table(results: list[dict]) -> str:
    ok = sum(r["status"] == "ok" for r in results)
    rows = [f"{ok} of {len(results)} models round-trip.", "",
            "| model | input | round trip | spec lines | blocks | max diff | what blocks it |",
            "|---|---|---|---:|---:|---:|---|"]
    for r in results:
        verdict = {"ok": "✅ layout + outputs", "mismatch": "❌ outputs differ"}.get(r["status"], r["status"])
        diff = f"{r['max_diff']:.1e}" if "max_diff" in r else ""
        reason = r.get("reason", "").replace("|", "\\|")
        rows.append(f"| {r['model']} | {r.get('input', '')} | {verdict} | {r.get('lines', '')} | "
                    f"{r.get('blocks', '')} | {diff} | {reason} |")
    return "\n".join(rows) + "\n"


def causes(results: list[dict]) -> str:
    """What blocks the models that do not round-trip, grouped (roughly: a reason that quotes a
    shape mismatch splits into several lines) — the raw material of the docs' summary."""
    by_cause: dict[str, list[str]] = {}
    for r in results:
        if r["status"] == "ok":
            continue
        reason = r.get("reason", r["status"])
        name = r["model"].split("(")[0]
        if "no cnndsl op for " in reason:
            ops = reason.split("no cnndsl op for ", 1)[1].split(", and ")[0].split(", ")
            for op in ops:
                by_cause.setdefault(f"no op for `{op.split(' (×')[0]}`", []).append(name)
            continue
        if "is not a spec name" in reason:
            key = "module names that are not identifiers (`block1-0`): quoted names (branch `constructs`)"
        elif "reads" in reason and "values" in reason:
            key = "a module reads several values (a block or group reads one)"
        elif "does not use" in reason:
            key = "the eval-mode forward leaves state_dict entries unused"
        else:
            key = reason
        by_cause.setdefault(key, []).append(name)
    lines = [f"- {cause}: {', '.join(dict.fromkeys(models))}"
             for cause, models in sorted(by_cause.items(), key=lambda kv: -len(set(kv[1])))]
    return "\n".join(lines) + "\n"


def write_docs(results: list[dict], path: Path) -> None:
    """Replace the table in docs/import.md (the causes below it are written by hand from
    :func:`causes`)."""
    text = path.read_text()
    start, end = "<!-- zoo table: generated by bench/import_zoo.py -->\n", "<!-- end of zoo table -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + start + table(results) + end + tail)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", metavar="MODEL", help="import one model and print its result as JSON")
    ap.add_argument("--many", metavar="A,B", help="import these models in this process (JSON lines)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--only", metavar="A,B", help="a comma-separated subset of the models")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per model (default 600)")
    ap.add_argument("--json", default=str(ROOT / "bench" / "import_zoo.json"), help="where results go")
    ap.add_argument("--docs", metavar="MD", help="with --from-json: write the table into this Markdown file")
    ap.add_argument("--from-json", metavar="JSON", help="make the table from earlier results, run nothing")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return 0
    if args.many:
        run_many(args.many.split(","), args.timeout)
        return 0
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        if args.docs:
            write_docs(results, Path(args.docs))
        sys.stdout.write(table(results) + "\n" + causes(results))
        return 0
    import torchvision

    names = args.only.split(",") if args.only else torchvision.models.list_models(module=torchvision.models)
    results = drive(names, args.timeout, args.workers, Path(args.json))
    sys.stdout.write(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
