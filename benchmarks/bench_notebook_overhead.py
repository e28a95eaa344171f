"""Per-notebook overhead: what every papermill run pays before it computes anything.

Measures, side by side in one run, the wall time of executing (with the same code path
run_all.py uses: Jupytext source -> papermill) three tiny notebooks:
  empty      a single no-op cell (kernel start + papermill bookkeeping),
  tf_import  `import cielib.keras; cielib.keras.keras` (adds the TensorFlow import),
  train_nb   the training notebook on scikit-learn digits for 1 epoch (adds data,
             model build, one short fit, predictions and saving).
Writes benchmarks/results/notebook_overhead.json. Usage: python benchmarks/bench_notebook_overhead.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine_info, write_result

from cielib import notebook_source

CELLS = {
    "empty": "pass",
    "tf_import": "import cielib.keras\ncielib.keras.keras",
}


def _write_nb(directory: Path, name: str, code: str) -> Path:
    path = directory / f"{name}.py"
    path.write_text(f'# %% tags=["parameters"]\nrun_dir = "."\n\n# %%\n{code}\n')
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    results: dict[str, list[float]] = {k: [] for k in (*CELLS, "train_nb")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sources = {k: _write_nb(tmp, k, v) for k, v in CELLS.items()}
        sources["train_nb"] = notebook_source.notebook_path("train")
        for i in range(args.repeats):  # interleaved, so drift hits every variant alike
            for name, src in sources.items():
                out = tmp / f"{name}-{i}"
                out.mkdir()
                params = {"run_dir": str(out)}
                if name == "train_nb":
                    params.update(epochs=1, dataset="digits")
                start = time.perf_counter()
                notebook_source.execute(src, output=out / "executed.ipynb", parameters=params, cwd=out)
                results[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in results.items()}
    report = {
        "what": "wall seconds to execute a notebook via papermill (median of repeats)",
        "median_seconds": med,
        "kernel_start_seconds": med["empty"],
        "tensorflow_import_seconds": med["tf_import"] - med["empty"],
        "train_notebook_digits_1_epoch_seconds": med["train_nb"],
        "runs": results,
        "machine": machine_info(packages=("papermill", "ipykernel", "tensorflow")),
    }
    write_result("notebook_overhead", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
