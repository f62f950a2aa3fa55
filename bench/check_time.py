"""Wall time of ``cnndsl check SPEC`` from a cold process, beside ``python -c "import torch"``.

Each figure is the median of N fresh subprocesses (the OS file cache is warm after the first run;
"cold" means a new interpreter, nothing imported). Two environments are measured:

* ``as-is``   — the caller's environment. If it sets PYTHONDONTWRITEBYTECODE=1 (this sandbox does),
  cnndsl's own modules have no cached bytecode and are compiled from source on every run.
* ``pyc``     — PYTHONDONTWRITEBYTECODE removed and PYTHONPYCACHEPREFIX pointed at a temporary
  folder (warmed by one run), i.e. what an installed package sees. The repository is not touched.

Then it profiles one ``check`` run: ``python -X importtime`` (the top imports by self and
cumulative time) and the phases after import (parse with grammar construction, analyze, report).
Target: check <= 0.3 s.

    python bench/check_time.py [--runs 11] [--spec specs/resnet18.cnn] [--no-profile] [--top 15]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
import cnndsl.cli
t1 = time.perf_counter()
from cnndsl.api import analyze, load
from cnndsl.analysis.report import human
t2 = time.perf_counter()
spec = load(sys.argv[1])
t3 = time.perf_counter()
a = analyze(spec)
t4 = time.perf_counter()
line = f"{a.name}, {len(a.layers)} layers, {a.params:,} params, {human(a.macs)} MACs"
t5 = time.perf_counter()
spec = load(sys.argv[1]); a = analyze(spec)        # second time: grammar/schemas already built
t6 = time.perf_counter()
print(json.dumps({"import cnndsl.cli": t1 - t0, "import api+report": t2 - t1,
                  "load (parse + imports, 1st)": t3 - t2, "analyze (1st)": t4 - t3,
                  "report line": t5 - t4, "load+analyze (2nd, warm)": t6 - t5,
                  "torch imported": "torch" in sys.modules, "pydantic imported": "pydantic" in sys.modules,
                  "yaml imported": "yaml" in sys.modules}))
"""


def median_time(cmd: list[str], env: dict, runs: int) -> tuple[float, float]:
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ts.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.decode()}")
    return statistics.median(ts), min(ts)


def importtime(env: dict, spec: str, top: int) -> None:
    r = subprocess.run([PY, "-X", "importtime", "-m", "cnndsl", "check", "-q", spec], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    rows = []
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2, m.group(4)))
    total = sum(r[0] for r in rows)
    print(f"\n  -X importtime: {len(rows)} modules, {total / 1e3:.0f} ms of imports in all")
    print(f"  top {top} by self time (µs):")
    for s, c, _, name in sorted(rows, reverse=True)[:top]:
        print(f"    {s:8d} self {c:8d} cumulative  {name}")
    roots: dict[str, int] = {}
    for s, _, _, name in rows:
        roots[name.split(".")[0]] = roots.get(name.split(".")[0], 0) + s
    print("  self time by top-level package (ms):")
    for name, s in sorted(roots.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {s / 1e3:8.1f}  {name}")
    cn = [(c, name) for s, c, _, name in rows if name.startswith("cnndsl")]
    print("  cnndsl modules by cumulative time (ms):")
    for c, name in sorted(cn, reverse=True)[:top]:
        print(f"    {c / 1e3:8.1f}  {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--spec", default="specs/resnet18.cnn")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()

    as_is = dict(os.environ)
    cache = tempfile.mkdtemp(prefix="cnndsl_pyc_")
    pyc = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    pyc["PYTHONPYCACHEPREFIX"] = cache
    check = [PY, "-m", "cnndsl", "check", args.spec]
    subprocess.run(check, env=pyc, cwd=ROOT, capture_output=True)            # fill the bytecode cache
    subprocess.run([PY, "-c", "import torch"], env=pyc, cwd=ROOT, capture_output=True)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; median (min) of {args.runs} cold processes")
    print(f"PYTHONDONTWRITEBYTECODE in the caller's environment: {os.environ.get('PYTHONDONTWRITEBYTECODE')!r}")
    results = {}
    for label, env in (("as-is", as_is), ("pyc", pyc)):
        base = median_time([PY, "-c", "pass"], env, args.runs)
        torch_t = median_time([PY, "-c", "import torch"], env, args.runs)
        chk = median_time(check, env, args.runs)
        results[label] = (base, torch_t, chk)
        print(f"\n[{label}]")
        label_w = max(28, len(f"cnndsl check {args.spec}") + 2)
        print(f"  {'python -c pass':{label_w}s}{base[0]:.3f} s  ({base[1]:.3f})")
        print(f"  {'python -c ' + repr('import torch'):{label_w}s}{torch_t[0]:.3f} s  ({torch_t[1]:.3f})")
        print(f"  {'cnndsl check ' + args.spec:{label_w}s}{chk[0]:.3f} s  ({chk[1]:.3f})   "
              f"ratio to import torch {chk[0] / torch_t[0]:.2f}   target <= 0.300 s: "
              f"{'PASS' if chk[0] <= 0.3 else 'FAIL'}")

    if args.no_profile:
        return
    for label, env in (("as-is", as_is), ("pyc", pyc)):
        print(f"\nprofile [{label}]")
        r = subprocess.run([PY, "-c", PHASES, args.spec], env=env, cwd=ROOT, capture_output=True, text=True)
        if r.returncode:
            print(r.stderr)
            continue
        for k, v in json.loads(r.stdout).items():
            print(f"  {k:30s} {v * 1e3:8.1f} ms" if isinstance(v, float) else f"  {k:30s} {v}")
        importtime(env, args.spec, args.top)


if __name__ == "__main__":
    main()
