"""Reading finished runs back from the store for the analysis notebooks.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from cielib import runs


def find_runs(runs_dir: str | Path, stage: str, run_ids: Iterable[str]) -> list[Path]:
    """The directories of the given finished runs; a missing or unfinished one is an error."""
    out = []
    for rid in run_ids:
        path = runs.run_path(Path(runs_dir), stage, rid)
        if not runs.is_done(path):
            raise FileNotFoundError(f"run {rid} ({stage}) is not done: {path}")
        out.append(path)
    return out


def run_table(run_dirs: Iterable[Path]) -> pd.DataFrame:
    """One row per run: its parameters and its scalar metrics."""
    rows = []
    for d in run_dirs:
        ident = runs.read_json(Path(d) / runs.PARAMS)
        metrics = runs.read_json(Path(d) / runs.METRICS)
        row = {"run_id": Path(d).name, **ident["params"]}
        row.update({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))})
        rows.append(row)
    return pd.DataFrame(rows)


def histories(run_dirs: Iterable[Path]) -> pd.DataFrame:
    """Per-epoch histories of training runs, stacked, with run_id, seed and sparsity."""
    frames = []
    for d in run_dirs:
        params = runs.read_json(Path(d) / runs.PARAMS)["params"]
        h = pd.read_csv(Path(d) / "history.csv")
        h.insert(0, "run_id", Path(d).name)
        h["seed"] = params.get("seed")
        h["sparsity"] = params.get("sparsity")
        frames.append(h)
    if not frames:
        raise ValueError("no runs given")
    return pd.concat(frames, ignore_index=True)
