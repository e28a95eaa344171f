"""run_all.py on the quick profile: cold with --jobs 1 and --jobs 2, then warm.

Measured side by side in one run, each cold run in its own empty project root:
  cold_jobs1   every run executed, one worker
  cold_jobs2   every run executed, two workers (one TensorFlow thread each)
  warm         run_all.py again on the jobs-2 store: everything cached, report rebuilt
and the orchestration overhead at --jobs 1 = total wall time / summed notebook compute
time (papermill's own duration of every executed notebook), i.e. what planning, kernel
start-up, the store's bookkeeping and the report cost on top of the notebooks.

Writes benchmarks/results/runner.json. Takes about 20 minutes on a 2-core machine.
Usage: python benchmarks/bench_runner.py [--profile quick] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from _common import machine_info, run_all, write_result


def notebook_seconds(root: Path) -> tuple[float, int]:
    total, n = 0.0, 0
    for nb in (root / "runs").glob("*/*/executed.ipynb"):
        total += json.loads(nb.read_text())["metadata"]["papermill"]["duration"]
        n += 1
    return total, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--keep", help="keep the project roots under this directory")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-runner-"))
    out: dict = {"profile": args.profile, "cpu_count": os.cpu_count()}
    for jobs in (1, 2):
        root = base / f"jobs{jobs}"
        root.mkdir(parents=True, exist_ok=True)
        load0 = os.getloadavg()[0]
        wall, _ = run_all(root, "--profile", args.profile, "--jobs", str(jobs))
        compute, n = notebook_seconds(root)
        out[f"cold_jobs{jobs}"] = {"wall_s": wall, "notebook_compute_s": compute, "runs": n,
                                   "overhead_ratio": wall / compute, "loadavg_before": load0}
        print(json.dumps({f"cold_jobs{jobs}": out[f"cold_jobs{jobs}"]}), flush=True)
    wall, stdout = run_all(base / "jobs2", "--profile", args.profile)
    out["warm"] = {"wall_s": wall, "all_cached": "every run was already done" in stdout
                   or "cached" in stdout}
    out["speedup_jobs2_vs_jobs1"] = out["cold_jobs1"]["wall_s"] / out["cold_jobs2"]["wall_s"]
    out["targets"] = {"warm_rerun_s": 20, "overhead_ratio_jobs1": 1.25, "cold_quick_s": 600}
    out["machine"] = machine_info()
    write_result("runner", out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
