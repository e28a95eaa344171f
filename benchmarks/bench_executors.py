"""run_all.py cold under the local executor and under Dask, side by side in one run.

Each executor gets its own empty project root (``CIELIB_ROOT``) and the same profile and
``--jobs``; they run one after the other (never together: two would share the cores).
Records each one's wall time (report included), the ratio ``dask_vs_local`` (> 1: Dask
slower), and whether every training run's test predictions are bit-identical between
the two stores (matched by task, sparsity and seed, as ``scripts/compare_stores.py``
does; the run ids are the same too).

Writes benchmarks/results/executors.json. The quick profile takes about 20 minutes per
executor on this project's 2-core machine.
Usage: python benchmarks/bench_executors.py [--profile quick] [--keep DIR] [--order local,dask]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from _common import machine_info, run_all, write_result

from cielib import runs


def same_predictions(a: Path, b: Path) -> dict[str, int]:
    """Training runs compared bit for bit between two stores, keyed by (task, sparsity, seed)."""
    tables = [runs.table(d) for d in (a, b)]
    keyed = [{(r.task, float(r.sparsity), int(r.seed)): (r.run_id, r.path)
              for r in t[t["stage"] == "train"].itertuples()} for t in tables]
    out = {"compared": 0, "differ": 0, "missing": 0, "same_run_id": 0}
    for key in set(keyed[0]) | set(keyed[1]):
        if key not in keyed[0] or key not in keyed[1]:
            out["missing"] += 1
            continue
        (id_a, pa), (id_b, pb) = keyed[0][key], keyed[1][key]
        pred_a, pred_b = runs.load_predictions(pa), runs.load_predictions(pb)
        out["compared"] += 1
        out["same_run_id"] += id_a == id_b
        out["differ"] += any(not np.array_equal(pred_a[k], pred_b[k]) for k in ("y_true", "y_pred", "probs"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--order", default="dask,local", help="which executor runs first")
    ap.add_argument("--keep", help="keep the project roots under this directory")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-executors-"))
    out: dict = {"profile": args.profile, "jobs": args.jobs, "order": args.order}
    for kind in args.order.split(","):
        root = base / kind
        root.mkdir(parents=True, exist_ok=True)
        load0 = os.getloadavg()[0]
        wall, _ = run_all(root, "--profile", args.profile, "--jobs", str(args.jobs), "--executor", kind)
        out[kind] = {"wall_s": wall, "runs": len(runs.table(root / "runs")), "loadavg_before": load0,
                     "loadavg_after": os.getloadavg()[0]}
        print(json.dumps({kind: out[kind]}), flush=True)
    out["dask_vs_local"] = out["dask"]["wall_s"] / out["local"]["wall_s"]
    out["predictions"] = same_predictions(base / "local" / "runs", base / "dask" / "runs")
    out["machine"] = machine_info(packages=("dask", "distributed", "papermill"))
    write_result("executors", out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
