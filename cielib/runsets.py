"""Helpers over run tables for the analysis notebooks: settings, histories, predictions.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from cielib import runs
from cielib.compression import Setting, SettingLabel


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
    """A run table with a ``setting`` column (dense, sparsity 0.5, float16, ...) and its
    comparison ``design`` (:func:`design_of`); an analysis run (no sparsity) has none."""
    rows = table.to_dict("records")
    names = [setting_name(r) if pd.notna(r.get("sparsity")) else None for r in rows]
    return table.assign(setting=names, design=[design_of(r) for r in rows])


def design_of(params: dict) -> str:
    """How a run compares with the dense models: ``"dense"`` (it is one), ``"paired"``
    (derived from the dense model of its seed: quantized, or pruned by fine-tuning that
    model) or ``"independent"`` (trained from scratch with its own seed)."""
    technique = params.get("technique")
    if isinstance(technique, str) and technique:
        return "paired"
    if float(params.get("sparsity") or 0.0) == 0:
        return "dense"
    return "paired" if params.get("prune_from") == "baseline" else "independent"


def pair_with_dense(base: dict[int, np.ndarray], settings: dict[str, dict[int, np.ndarray]],
                    designs: dict[str, str]) -> tuple[dict[str, dict[int, np.ndarray]], pd.DataFrame]:
    """Each setting's models keyed by the dense seed each one is compared with.

    A paired setting's model is compared with the dense model it was derived from (the
    same seed); an independent setting's i-th seed (sorted) with the i-th dense seed, a
    different model trained independently. Models without a dense partner are left out.

    Returns:
        ``{setting: {dense seed: predictions}}`` and a table of the pairs (setting,
        design, dense_seed, compressed_seed).
    """
    dense_seeds = sorted(base)
    out: dict[str, dict[int, np.ndarray]] = {}
    rows = []
    for name, by_seed in settings.items():
        design = designs[name]
        if design == "paired":
            pairs = [(s, s) for s in sorted(by_seed) if s in base]
        elif design == "independent":
            pairs = list(zip(dense_seeds, sorted(by_seed)))
        else:
            raise ValueError(f"setting {name!r} has design {design!r}; allowed: paired, independent")
        out[name] = {d: by_seed[c] for d, c in pairs}
        rows += [{"setting": name, "design": design, "dense_seed": d, "compressed_seed": c} for d, c in pairs]
    return out, pd.DataFrame(rows, columns=["setting", "design", "dense_seed", "compressed_seed"])


def first_seed_per_setting(table: pd.DataFrame, by: str = "sparsity") -> pd.DataFrame:
    """One row per ``by`` value: its smallest seed (each setting's seeds differ when
    compressed models are trained independently of the dense ones)."""
    return table.sort_values("seed").groupby(by, sort=True).head(1).sort_values(by)


def stand_in_note(stand_in_for: str) -> str:
    """The sentence every analysis adds when its task stands in for one of the paper's."""
    if not stand_in_for:
        return ""
    return (f" This task is a **stand-in** for the paper's *{stand_in_for}* task: compare "
            "trends with the paper, not numbers.")


def setting_name(params: dict) -> SettingLabel:
    """How a run's compression setting is named in tables: dense, sparsity 0.5, float16
    (:attr:`cielib.compression.Setting.label` of its parameters or table row)."""
    return Setting.from_params(params).label


def setting_order(name: SettingLabel | Setting | str) -> tuple:
    """Sort key putting settings in the paper's table order: dense, sparsities, techniques.

    Takes a :class:`~cielib.compression.Setting` or a name made by :func:`setting_name`
    (the keys of :func:`predictions_by_setting`), which remembers its setting: names are
    never parsed back. Any other name (a setting a user named, e.g. a sub-directory of a
    predictions directory) sorts after every known setting, by name.
    """
    if isinstance(name, Setting):
        return name.sort_key
    if isinstance(name, SettingLabel):
        return name.setting.sort_key
    if isinstance(name, str):
        return (3, 0.0, 0, name)
    raise TypeError(f"setting_order needs a Setting or a setting's name, got {type(name).__name__} {name!r}")


def predictions_by_setting(table: pd.DataFrame) -> tuple[np.ndarray, dict[str, dict[int, np.ndarray]]]:
    """Test-set labels and ``{setting: {seed: y_pred}}`` for the runs of a run table.

    The settings come in table order (:func:`setting_order`). Every run must have
    predicted the same test set (same labels in the same order); otherwise comparing
    them image by image would be meaningless, so it is an error.
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
    return y_true, dict(sorted(out.items(), key=lambda kv: setting_order(kv[0])))


def stack_seeds(by_seed: dict[int, np.ndarray], seeds: Iterable[int]) -> np.ndarray:
    """Predictions of the given seeds as a (n_seeds, n_images) array, in that order."""
    return np.stack([by_seed[s] for s in seeds])


def latest_inputs(runs_dir: str | Path, *, stages: Iterable[str], task: str | None = None
                  ) -> tuple[list[str], str | None]:
    """What an analysis notebook opened by hand reads: the newest finished run of every
    (task, sparsity, seed) of the given stages, for one task.

    ``task`` None takes the first task found in the store. Raises FileNotFoundError,
    saying what to run, when the store holds no such run.
    """
    df = runs.table(runs_dir)
    df = df[df["stage"].isin(list(stages))]
    if task is not None:
        df = df[df["task"] == task]
    if df.empty:
        raise FileNotFoundError(f"no finished {'/'.join(stages)} run{f' of task {task!r}' if task else ''} "
                                f"in {runs_dir}: run `python run_all.py` first")
    if task is None and df["task"].notna().any():
        task = sorted(df["task"].dropna().unique())[0]
        df = df[df["task"] == task]
    df = df.assign(done_at=[(runs.run_path(runs_dir, s, r) / runs.DONE).stat().st_mtime
                            for s, r in zip(df["stage"], df["run_id"])])
    keys = [k for k in ("stage", "task", "sparsity", "seed") if k in df]
    newest = (df.sort_values("done_at").drop_duplicates(["run_id"])
              .groupby(keys, dropna=False).tail(1))
    return list(dict.fromkeys(newest.sort_values(keys)["run_id"])), task


def latest_tasks(runs_dir: str | Path) -> list[dict]:
    """The tasks of the store as the discussion notebook takes them (from the newest
    ``results`` run of each task): name, label, paper task, stand-in."""
    df = runs.table(runs_dir)
    df = df[df["stage"] == "results"]
    if df.empty:
        raise FileNotFoundError(f"no finished results run in {runs_dir}: run `python run_all.py` first")
    out = []
    for task, rows in df.groupby("task", sort=True):
        r = rows.iloc[-1]
        out.append({"name": task, "label": r.get("task_label") or task,
                    "paper_task": r.get("paper_task") or "", "stand_in_for": r.get("stand_in_for") or ""})
    return out
