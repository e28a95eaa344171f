"""Helpers over run tables for the analysis notebooks: settings, histories, predictions.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from cielib import runs
from cielib.quantize import TECHNIQUES


def histories(train_runs: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch histories of training runs (rows of :func:`cielib.runs.table`), stacked,
    with run_id, seed and sparsity."""
    frames = []
    for r in train_runs.itertuples():
        h = pd.read_csv(Path(r.path) / "history.csv")
        h.insert(0, "run_id", r.run_id)
        h["seed"] = r.seed
        h["sparsity"] = r.sparsity
        frames.append(h)
    if not frames:
        raise ValueError("no runs given")
    return pd.concat(frames, ignore_index=True)


def with_settings(table: pd.DataFrame) -> pd.DataFrame:
    """A run table with a ``setting`` column (dense, sparsity 0.5, float16, ...)."""
    return table.assign(setting=[setting_name(r) for r in table.to_dict("records")])


def stand_in_note(stand_in_for: str) -> str:
    """The sentence every analysis adds when its task stands in for one of the paper's."""
    if not stand_in_for:
        return ""
    return (f" This task is a **stand-in** for the paper's *{stand_in_for}* task: compare "
            "trends with the paper, not numbers.")


def setting_name(params: dict) -> str:
    """How a run's compression setting is named in tables: dense, sparsity 0.5, float16."""
    technique = params.get("technique")
    if not isinstance(technique, str):  # absent, None, or NaN from a DataFrame row
        technique = ""
    sparsity = float(params.get("sparsity") or 0.0)
    if technique:
        return str(technique) if sparsity == 0 else f"sparsity {sparsity:g} + {technique}"
    return "dense" if sparsity == 0 else f"sparsity {sparsity:g}"


_TECHNIQUE_ORDER = TECHNIQUES  # float32 reference first, then by strength


def setting_order(name: str) -> tuple:
    """Sort key putting settings in the paper's table order: dense, sparsities, techniques."""
    if name == "dense":
        return (0, 0.0, -1)
    sparsity, _, technique = name.partition(" + ") if name.startswith("sparsity") else ("", "", name)
    s = float(sparsity.split(" ")[1]) if sparsity else 0.0
    t = _TECHNIQUE_ORDER.index(technique) if technique in _TECHNIQUE_ORDER else -1
    return (1 if t < 0 else 2, s, t)


def predictions_by_setting(table: pd.DataFrame) -> tuple[np.ndarray, dict[str, dict[int, np.ndarray]]]:
    """Test-set labels and ``{setting: {seed: y_pred}}`` for the runs of a run table.

    Every run must have predicted the same test set (same labels in the same order);
    otherwise comparing them image by image would be meaningless, so it is an error.
    """
    y_true = None
    out: dict[str, dict[int, np.ndarray]] = {}
    for r in table.to_dict("records"):
        pred = runs.load_predictions(Path(r["path"]))
        if y_true is None:
            y_true = pred["y_true"]
        elif not np.array_equal(y_true, pred["y_true"]):
            raise ValueError(f"run {r['run_id']} predicted a different test set")
        out.setdefault(setting_name(r), {})[int(r["seed"])] = pred["y_pred"]
    if y_true is None:
        raise ValueError("no runs given")
    return y_true, out


def stack_seeds(by_seed: dict[int, np.ndarray], seeds: Iterable[int]) -> np.ndarray:
    """Predictions of the given seeds as a (n_seeds, n_images) array, in that order."""
    return np.stack([by_seed[s] for s in seeds])
