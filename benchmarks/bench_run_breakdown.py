"""Where a training run's time goes: kernel start + papermill, imports, model building, fit, rest.

Reads finished training runs from one or more run stores (no run is executed here; run
``run_all.py`` first, e.g. once with ``--executor local-fresh`` and once with the default
warm kernels, into two CIELIB_ROOTs) and averages per run:

  kernel+papermill  the run's wall seconds (DONE) minus the summed cell durations:
                    notebook conversion, kernel start, papermill's bookkeeping
  import            the cell that imports cielib/TensorFlow (the first cell after the parameters)
  build             the model cell (building, pruning wrappers, compile) minus ``fit``
  fit               ``train_seconds`` of metrics.json (the epochs' summed wall seconds)
  rest              every other cell (data, predictions, saving, figures)

Usage:
    python benchmarks/bench_run_breakdown.py LABEL=RUNS_DIR [LABEL=RUNS_DIR ...] [--wall LABEL=SECONDS]

``--wall`` adds the cold invocation's wall time, giving its ratio to the training floor
(summed fit seconds / jobs). Writes benchmarks/results/run_breakdown.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _common import machine_info, write_result

PARTS = ("kernel+papermill", "import", "build", "fit", "rest", "total")


def breakdown(run_dir: Path) -> dict[str, float]:
    """One training run's seconds per part (see the module docstring)."""
    nb = json.loads((run_dir / "executed.ipynb").read_text())
    total = float(json.loads((run_dir / "DONE").read_text())["seconds"])
    fit = float(json.loads((run_dir / "metrics.json").read_text())["train_seconds"])
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    durations = [float(c["metadata"].get("papermill", {}).get("duration") or 0.0) for c in code]
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in code]
    tags = [c["metadata"].get("tags", []) for c in code]
    first = max(i for i, t in enumerate(tags) if "parameters" in t or "injected-parameters" in t) + 1
    model = next(i for i, s in enumerate(sources) if "train.fit(" in s)
    out = {"kernel+papermill": total - sum(durations), "import": durations[first],
           "build": durations[model] - fit, "fit": fit,
           "rest": sum(durations) - durations[first] - durations[model], "total": total}
    return out


def summarise(runs_dir: Path) -> dict[str, object]:
    rows = {p.parent.name: breakdown(p.parent)
            for p in sorted((runs_dir / "train").glob("*/DONE"))}
    mean = {k: statistics.fmean(r[k] for r in rows.values()) for k in PARTS} if rows else {}
    per_stage: dict[str, float] = {}  # every run of the store, summed by stage
    for done in sorted(runs_dir.glob("*/*/DONE")):
        stage = done.parent.parent.name
        per_stage[stage] = per_stage.get(stage, 0.0) + float(json.loads(done.read_text())["seconds"])
    return {"runs_dir": str(runs_dir), "n_runs": len(rows), "mean_seconds": mean,
            "sum_fit_seconds": sum(r["fit"] for r in rows.values()),
            "summed_run_seconds_by_stage": per_stage, "per_run": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("stores", nargs="+", metavar="LABEL=RUNS_DIR")
    ap.add_argument("--wall", nargs="*", default=[], metavar="LABEL=SECONDS")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    walls = {k: float(v) for k, v in (w.split("=", 1) for w in args.wall)}
    result: dict[str, object] = {"what": __doc__.split("\n")[0], "note": args.note, "stores": {}}
    for item in args.stores:
        label, path = item.split("=", 1)
        s = summarise(Path(path))
        if label in walls:
            floor = s["sum_fit_seconds"] / args.jobs
            s.update(wall_seconds=walls[label], floor_seconds=floor,
                     wall_over_floor=walls[label] / floor if floor else None)
        result["stores"][label] = s
    labels = list(result["stores"])
    if len(labels) == 2:
        a, b = (result["stores"][x]["mean_seconds"] for x in labels)
        result[f"ratio {labels[1]}/{labels[0]}"] = {k: (b[k] / a[k] if a.get(k) else None) for k in PARTS}
    result["machine"] = machine_info(packages=("papermill", "ipykernel", "tensorflow"))
    write_result("run_breakdown", result)
    print(json.dumps({k: v for k, v in result.items() if k != "stores"}, indent=2))
    for label, s in result["stores"].items():
        print(label, {k: round(v, 2) for k, v in s["mean_seconds"].items()},
              {k: s[k] for k in ("wall_seconds", "floor_seconds", "wall_over_floor") if k in s})


if __name__ == "__main__":
    main()
