"""Start-up time of the command line, from cold processes, as ratios to a bare interpreter measured
in the same run.

Targets (issue 7): ``cnndsl check specs/resnet18.cnn`` ≤ 2 × ``python -c "import pydantic, lark"``
and ``cnndsl --version`` ≤ 2 × ``python -c pass``. Each figure is the median of N fresh processes;
the commands are interleaved (one of each per round), so load drifts on a shared machine hit all
alike. ``cnndsl ARGS`` is run exactly as the installed console script does
(``from cnndsl.cli import main; sys.exit(main())``). Two environments:

* ``pyc``   — PYTHONDONTWRITEBYTECODE removed and PYTHONPYCACHEPREFIX pointed at a temporary folder
  (warmed by one run), i.e. what an installed package sees. The repository is not touched. Primary.
* ``as-is`` — the caller's environment. If it sets PYTHONDONTWRITEBYTECODE=1 (this sandbox does),
  cnndsl's own modules are compiled from source on every run.

Then it profiles one ``check`` run: ``python -X importtime`` (the top imports by self and
cumulative time) and the phases after import (parse with grammar loading, analyze, report).

    python bench/check_time.py [--runs 9] [--spec specs/resnet18.cnn] [--no-profile] [--top 15]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
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
from cnndsl.syntax.grammar import parser
parser()
t3 = time.perf_counter()
spec = load(sys.argv[1])
t4 = time.perf_counter()
a = analyze(spec)
t5 = time.perf_counter()
line = f"{a.name}, {len(a.layers)} layers, {a.params:,} params, {human(a.macs)} MACs"
t6 = time.perf_counter()
spec = load(sys.argv[1]); a = analyze(spec)        # second time: grammar/schemas already built
t7 = time.perf_counter()
print(json.dumps({"import cnndsl.cli": t1 - t0, "import api+report": t2 - t1, "grammar (LALR table)": t3 - t2,
                  "load (parse, 1st)": t4 - t3, "analyze (op validators, 1st)": t5 - t4,
                  "report line": t6 - t5, "load+analyze (2nd, warm)": t7 - t6,
                  "torch imported": "torch" in sys.modules, "pydantic imported": "pydantic" in sys.modules,
                  "pydantic_core imported": "pydantic_core" in sys.modules,
                  "lark imported": "lark" in sys.modules, "yaml imported": "yaml" in sys.modules}))
"""


CLI = "import sys; from cnndsl.cli import main; sys.exit(main())"   # what the console script runs

# Not cnndsl: the least a check that validates with pydantic models and parses with lark pays — one
# validated model (pydantic then imports its model machinery and scans for plugins) and the cached
# LALR tables. cnndsl's check builds no pydantic model (plain IR records; op arguments validated by
# pydantic-core directly, cnndsl.ops.args), which is how it gets below this row.
FLOOR = """
from typing import Annotated
from pydantic import BaseModel, Field
from cnndsl.syntax.grammar import parser
class M(BaseModel):
    x: Annotated[int, Field(ge=1)]
M(x=1)
parser()
"""


def interleaved(cmds: dict[str, list[str]], env: dict, runs: int) -> dict[str, tuple[float, float, float]]:
    """Median and minimum wall time, and median CPU time (user + system: less sensitive to other
    jobs on the machine), of each command over ``runs`` rounds, one of each per round."""
    times: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(runs):
        for label, cmd in cmds.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            r = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            times[label].append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[label].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if r.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.decode()}")
    return {k: (statistics.median(v), min(v), statistics.median(cpu[k])) for k, v in times.items()}


def importtime(env: dict, spec: str, top: int) -> None:
    r = subprocess.run([PY, "-X", "importtime", "-c", CLI, "check", "-q", spec], env=env, cwd=ROOT,
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
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--spec", default="specs/resnet18.cnn")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()

    as_is = dict(os.environ)
    as_is["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), as_is.get("PYTHONPATH")]))
    pyc = {k: v for k, v in as_is.items() if k != "PYTHONDONTWRITEBYTECODE"}
    pyc["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="cnndsl_pyc_")
    cmds = {"python -c pass": [PY, "-c", "pass"],
            "python -c 'import pydantic, lark'": [PY, "-c", "import pydantic, lark"],
            "cnndsl --version": [PY, "-c", CLI, "--version"],
            "cnndsl --help": [PY, "-c", CLI, "--help"],
            "floor: one pydantic model + LALR tables": [PY, "-c", FLOOR],
            f"cnndsl check {args.spec}": [PY, "-c", CLI, "check", args.spec]}
    for cmd in cmds.values():                                               # fill the bytecode cache
        subprocess.run(cmd, env=pyc, cwd=ROOT, capture_output=True)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; median (min) of {args.runs} cold processes, "
          "interleaved")
    print(f"PYTHONDONTWRITEBYTECODE in the caller's environment: {os.environ.get('PYTHONDONTWRITEBYTECODE')!r}")
    for label, env in (("pyc", pyc), ("as-is", as_is)):
        res = interleaved(cmds, env, args.runs)
        print(f"\n[{label}]")
        width = max(map(len, cmds)) + 2
        print(f"  {'':{width}s}wall median (min)   CPU median")
        for name, (med, low, cpu) in res.items():
            print(f"  {name:{width}s}{med:.3f} s  ({low:.3f})    {cpu:.3f} s")
        base, libs = res["python -c pass"][0], res["python -c 'import pydantic, lark'"][0]
        floor = res["floor: one pydantic model + LALR tables"]
        libs_cpu = res["python -c 'import pydantic, lark'"][2]
        print(f"  (floor / import pydantic, lark: {floor[0] / libs:.2f} (CPU {floor[2] / libs_cpu:.2f}) — what a check "
              "that validated with pydantic models would pay before reading a spec; cnndsl's builds none)")
        for name, ref_name, ref in (("cnndsl --version", "python -c pass", base),
                                    ("cnndsl --help", "python -c pass", base),
                                    (f"cnndsl check {args.spec}", "import pydantic, lark", libs)):
            ratio = res[name][0] / ref
            ref_cpu = res["python -c pass" if ref is base else "python -c 'import pydantic, lark'"][2]
            print(f"  {name} / {ref_name}: {ratio:.2f} (CPU {res[name][2] / ref_cpu:.2f})   target <= 2.00: "
                  f"{'PASS' if ratio <= 2 else 'FAIL'}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs: well above that count the figures are noisy)")

    if args.no_profile:
        return
    for label, env in (("pyc", pyc),):
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
