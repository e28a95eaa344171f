"""Reading finished runs back from the store for the analysis notebooks.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
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


def setting_name(params: dict) -> str:
    """How a run's compression setting is named in tables: dense, sparsity 0.5, float16."""
    technique = params.get("technique")
    if technique:
        return str(technique)
    sparsity = float(params.get("sparsity") or 0.0)
    return "dense" if sparsity == 0 else f"sparsity {sparsity:g}"


def predictions_by_setting(run_dirs: Iterable[Path]) -> tuple[np.ndarray, dict[str, dict[int, np.ndarray]]]:
    """Test-set labels and ``{setting: {seed: y_pred}}`` for a set of runs.

    Every run must have predicted the same test set (same labels in the same order);
    otherwise comparing them image by image would be meaningless, so it is an error.
    """
    y_true = None
    out: dict[str, dict[int, np.ndarray]] = {}
    for d in run_dirs:
        params = runs.read_json(Path(d) / runs.PARAMS)["params"]
        pred = runs.load_predictions(Path(d))
        if y_true is None:
            y_true = pred["y_true"]
        elif not np.array_equal(y_true, pred["y_true"]):
            raise ValueError(f"run {Path(d).name} predicted a different test set")
        out.setdefault(setting_name(params), {})[int(params["seed"])] = pred["y_pred"]
    if y_true is None:
        raise ValueError("no runs given")
    return y_true, out


def stack_seeds(by_seed: dict[int, np.ndarray], seeds: Iterable[int]) -> np.ndarray:
    """Predictions of the given seeds as a (n_seeds, n_images) array, in that order."""
    return np.stack([by_seed[s] for s in seeds])
