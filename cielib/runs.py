"""Run identity and reading the run store (``runs/<stage>/<run_id>/``).

A run's identity is a hash of what determines its result: the stage, its canonical
parameters (thread counts included), the ids of the runs it reads, the source of its
notebook and the cielib version. Never a timestamp: the same inputs always map to the
same directory, so a finished run is found again and reused, and any change makes a new
one. How runs are written, claimed and checked is :mod:`cielib.store`.

:func:`table` is the one reader of finished runs: one row per run with its key
(task, sparsity, seed, technique), its path and its scalar metrics; notebooks look runs
up in it by key with :func:`lookup`, never by position. ``runs/index.csv`` is the same
table written to disk.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from cielib.compression import Setting

DONE = "DONE"
PARAMS = "params.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.npz"
#: A training run's trained model (stripped of pruning wrappers, no optimizer state).
MODEL = "model.keras"
#: A quantize run's flatbuffer, one per technique folder.
TFLITE_MODEL = "model.tflite"
EXECUTED = "executed.ipynb"
INDEX = "index.csv"
PARTS = "parts.json"
#: The parameters that name a run within its stage (and find it in the store).
KEY_FIELDS = ("task", "sparsity", "seed", "technique")
# Columns every table row has (in this order); metrics add more after them.
INDEX_COLUMNS = ("run_id", "stage", "task", "model", "dataset", "sparsity", "technique", "seed",
                 "top1", "path")
TMP_PREFIX = ".tmp-"


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and normalised floats, so equal params hash equally."""
    return json.dumps(_normalise(obj), sort_keys=True, separators=(",", ":"))


def _normalise(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _normalise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_normalise(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def run_id(stage: str, params: dict[str, Any], *, upstream: Iterable[str] = (),
           notebook_hash: str = "", version: str = "") -> str:
    """The 12-hex-digit id of a run (sha256 of everything that determines it)."""
    payload = canonical_json({"stage": stage, "params": params, "upstream": sorted(upstream),
                              "notebook": notebook_hash, "version": version})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunSpec:
    """One planned execution of a notebook, complete: executing it needs nothing else.

    ``params`` are the identity parameters (they go into the run id and ``params.json``);
    ``runtime`` are notebook parameters that do not change the result (where the data
    and the store are, the paths of upstream runs, whose ids are in ``upstream``).
    ``force`` reruns a finished run (its replacement is committed only on success);
    ``resources`` are what a cluster executor must reserve (e.g. ``{"GPU": 1}``).
    """

    stage: str
    notebook: str
    params: dict[str, Any]
    upstream: tuple[str, ...] = ()
    notebook_hash: str = ""
    version: str = ""
    runtime: dict[str, Any] = field(default_factory=dict)
    force: bool = False
    resources: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return run_id(self.stage, self.params, upstream=self.upstream,
                      notebook_hash=self.notebook_hash, version=self.version)

    @property
    def key(self) -> dict[str, Any]:
        """The fields that name this run within its stage (task, sparsity, seed, technique)."""
        return {k: self.params[k] for k in KEY_FIELDS if k in self.params}

    def path(self, runs_dir: str | Path) -> Path:
        """Where this run lives in the store: ``<runs_dir>/<stage>/<run_id>``."""
        return run_path(runs_dir, self.stage, self.run_id)

    def identity(self) -> dict[str, Any]:
        """What went into the id, saved beside the run so a rerun can say why."""
        return {"stage": self.stage, "notebook": self.notebook, "params": _normalise(self.params),
                "upstream": sorted(self.upstream), "notebook_hash": self.notebook_hash,
                "version": self.version}

    def notebook_parameters(self, run_dir: str | Path) -> dict[str, Any]:
        """Everything papermill injects: identity params, runtime options, output dir."""
        return {**self.params, **self.runtime, "run_dir": str(run_dir)}

    def label(self) -> str:
        """Short human description: stage, task, compression setting and seed."""
        p = self.params
        bits = [self.stage, str(p.get("task", ""))]
        if "sparsity" in p or "technique" in p:
            bits.append(Setting.from_params(p).label)
        if "seed" in p:
            bits.append(f"seed={p['seed']}")
        return " ".join(b for b in bits if b)


def run_path(runs_dir: str | Path, stage: str, rid: str) -> Path:
    """The directory of run ``rid`` of ``stage`` (see :meth:`RunSpec.path`)."""
    return Path(runs_dir) / stage / rid


def write_json(path: Path, obj: Any) -> None:
    Path(path).write_text(json.dumps(_normalise(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def save_predictions(path: Path, *, y_true: np.ndarray, y_pred: np.ndarray, probs: np.ndarray) -> None:
    """Save a test-set prediction file in the one schema every analysis reads."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    probs = np.asarray(probs)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-D shapes")
    if probs.ndim != 2 or probs.shape[0] != y_true.shape[0]:
        raise ValueError(f"probs must be (n_images, n_classes), got {probs.shape}")
    np.savez_compressed(path, y_true=y_true.astype(np.int64), y_pred=y_pred.astype(np.int64),
                        probs=probs.astype(np.float32))


def load_predictions(run_dir: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(run_dir) / PREDICTIONS) as npz:
        return {k: npz[k] for k in npz.files}


def done_runs(runs_dir: str | Path) -> list[Path]:
    """Every run directory in the store that has a ``DONE`` marker."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return sorted(p.parent for p in runs_dir.glob(f"*/*/{DONE}")
                  if not p.parent.name.startswith((TMP_PREFIX, ".", "failed-")))


def find(runs_dir: str | Path, rid: str) -> Path:
    """The directory of a finished run, whatever its stage (run ids are unique)."""
    found = [p.parent for p in Path(runs_dir).glob(f"*/{rid}/{DONE}")]
    if not found:
        raise FileNotFoundError(f"run {rid} is not done (looked in {runs_dir}/*/{rid})")
    return found[0]


def write_parts(run_dir: str | Path, *, key: str, values: Iterable[Any]) -> None:
    """Declare that a run holds several results, one folder each (``<run>/<value>/``).

    A quantize run converts one trained model with every technique: each technique's
    predictions and metrics live in their own folder, and :func:`table` gives each its
    own row, with ``key`` (e.g. ``technique``) set and ``path`` pointing at the folder.
    """
    write_json(Path(run_dir) / PARTS, {"key": key, "values": list(values)})


def rows(run_dir: str | Path, *, root: Path | None = None) -> list[dict[str, Any]]:
    """A run's table rows: one, or one per part (see :func:`write_parts`).

    Each row holds the key columns, the path, then every scalar parameter and metric.
    """
    run_dir = Path(run_dir)
    ident = read_json(run_dir / PARAMS)
    params = ident.get("params", {})
    parts = read_json(run_dir / PARTS) if (run_dir / PARTS).is_file() else None
    places = ([(run_dir / str(v), {**params, parts["key"]: v}) for v in parts["values"]]
              if parts else [(run_dir, params)])
    # a run with parts may also record metrics of the whole run (e.g. its peak memory)
    shared = read_json(run_dir / METRICS) if parts and (run_dir / METRICS).is_file() else {}
    out = []
    for where, p in places:
        metrics = {**shared, **(read_json(where / METRICS) if (where / METRICS).is_file() else {})}
        r: dict[str, Any] = {
            "run_id": run_dir.name,
            "stage": ident.get("stage", run_dir.parent.name),
            **{k: p.get(k) for k in ("task", "model", "dataset", "sparsity", "technique", "seed")},
            "top1": metrics.get("top1"),
            "path": str(where.relative_to(root) if root else where),
        }
        for source in (metrics, p):
            for k, v in source.items():
                if k not in r and (v is None or isinstance(v, (int, float, str, bool))):
                    r[k] = v
        out.append(r)
    return out


def table(runs_dir: str | Path, run_ids: Iterable[str] | None = None, *,
          root: Path | None = None) -> pd.DataFrame:
    """The finished runs as one DataFrame (all of them, or the given ids in that order).

    One row per run, or per part of a run that has several (a quantize run: one row per
    technique). A run id that is not done is an error: an analysis never reads partial
    inputs.
    """
    dirs = done_runs(runs_dir) if run_ids is None else [find(runs_dir, r) for r in run_ids]
    records = [r for d in dirs for r in rows(d, root=root)]
    df = pd.DataFrame(records, columns=None if records else list(INDEX_COLUMNS))
    if records:
        extra = [c for c in df.columns if c not in INDEX_COLUMNS]
        df = df[list(INDEX_COLUMNS) + sorted(extra)]
        df["seed"] = df["seed"].astype("Int64")  # analysis runs have none; keep ints ints
    return df


def lookup(df: pd.DataFrame, **key: Any) -> pd.Series:
    """The one row of a run table whose columns equal ``key`` (e.g. stage, sparsity, seed).

    ``technique=None`` matches runs without a technique (Keras models).
    """
    mask = pd.Series(True, index=df.index)
    for k, v in key.items():
        mask &= df[k].isna() if v is None else (df[k] == v)
    hits = df[mask]
    if len(hits) != 1:
        raise LookupError(f"{len(hits)} runs match {key} (expected exactly one)")
    return hits.iloc[0]


def load_index(runs_dir: str | Path) -> pd.DataFrame:
    """``runs/index.csv`` as a DataFrame (empty with the core columns if absent)."""
    path = Path(runs_dir) / INDEX
    if not path.is_file():
        return pd.DataFrame(columns=list(INDEX_COLUMNS))
    return pd.read_csv(path)
