"""Reading finished runs back from the store for the analysis notebooks.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from cielib import runs
from cielib.quantize import TECHNIQUES


def find_runs(runs_dir: str | Path, run_ids: Iterable[str], *, stage: str | None = None) -> list[Path]:
    """The directories of the given finished runs, in the given order.

    Run ids are unique across stages, so each is looked up in every stage; with
    ``stage`` only the runs of that stage are returned (the others are skipped). A run
    that is missing or unfinished is an error: an analysis never reads partial inputs.
    """
    out = []
    for rid in run_ids:
        found = [p.parent for p in Path(runs_dir).glob(f"*/{rid}/{runs.DONE}")]
        if not found:
            raise FileNotFoundError(f"run {rid} is not done (looked in {runs_dir}/*/{rid})")
        if stage is None or found[0].parent.name == stage:
            out.append(found[0])
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
