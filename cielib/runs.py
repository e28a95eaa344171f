"""The content-addressed run store: ``runs/<stage>/<run_id>/``.

A run's identity is a hash of what determines its result: the stage, its canonical
parameters, the ids of the runs it reads, the source of its notebook and the cielib
version. Never a timestamp: the same inputs always map to the same directory, so a
finished run is found again and reused, and any change makes a new one.

A run is written into a temporary sibling directory, renamed into place, and only then
marked with ``DONE``; a directory without ``DONE`` is never read as a result.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

DONE = "DONE"
PARAMS = "params.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.npz"
EXECUTED = "executed.ipynb"
INDEX = "index.csv"
# Columns every index row has (in this order); metrics add more after them.
INDEX_COLUMNS = (
    "run_id", "stage", "task", "model", "dataset", "sparsity", "technique", "seed",
    "top1", "path",
)
_TMP_PREFIX = ".tmp-"


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


def run_id(
    stage: str,
    params: dict[str, Any],
    *,
    upstream: Iterable[str] = (),
    notebook_hash: str = "",
    version: str = "",
) -> str:
    """The 12-hex-digit id of a run (sha256 of everything that determines it)."""
    payload = canonical_json(
        {
            "stage": stage,
            "params": params,
            "upstream": sorted(upstream),
            "notebook": notebook_hash,
            "version": version,
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes (notebook sources, data archives)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class RunSpec:
    """One planned execution of a notebook: stage, parameters and upstream runs.

    ``params`` are the identity parameters (they go into the run id and
    ``params.json``); ``runtime`` are passed to the notebook too but do not change
    the result (output directory, thread count, data location).
    """

    stage: str
    notebook: str
    params: dict[str, Any]
    upstream: tuple[str, ...] = ()
    notebook_hash: str = ""
    version: str = ""
    runtime: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return run_id(
            self.stage,
            self.params,
            upstream=self.upstream,
            notebook_hash=self.notebook_hash,
            version=self.version,
        )

    def identity(self) -> dict[str, Any]:
        """What went into the id, saved beside the run so a rerun can say why."""
        return {
            "stage": self.stage,
            "notebook": self.notebook,
            "params": _normalise(self.params),
            "upstream": sorted(self.upstream),
            "notebook_hash": self.notebook_hash,
            "version": self.version,
        }

    def label(self) -> str:
        """Short human description: stage and key parameters."""
        p = self.params
        bits = [self.stage, str(p.get("task", ""))]
        if "sparsity" in p:
            bits.append(f"sparsity={p['sparsity']:g}")
        if "technique" in p:
            bits.append(str(p["technique"]))
        if "seed" in p:
            bits.append(f"seed={p['seed']}")
        return " ".join(b for b in bits if b)


def run_path(runs_dir: Path, stage: str, rid: str) -> Path:
    return Path(runs_dir) / stage / rid


def is_done(path: Path) -> bool:
    """A run counts only once its ``DONE`` marker exists."""
    return (Path(path) / DONE).is_file()


def make_tmp_dir(runs_dir: Path, stage: str, rid: str) -> Path:
    """A fresh private directory for a run in progress (same filesystem as the target)."""
    parent = Path(runs_dir) / stage
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f"{_TMP_PREFIX}{rid}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def commit(tmp: Path, final: Path, *, summary: dict[str, Any] | None = None) -> Path:
    """Move a finished run into place atomically, then write ``DONE`` last.

    An unfinished directory left at ``final`` (renamed but never marked) is replaced.
    """
    final = Path(final)
    if final.exists():
        if is_done(final):
            raise FileExistsError(f"run {final} is already done; refusing to overwrite")
        shutil.rmtree(final)
    os.replace(tmp, final)
    (final / DONE).write_text(json.dumps(summary or {}, indent=1))
    return final


def discard(path: Path) -> None:
    """Remove a run directory (used by --force and --clean)."""
    shutil.rmtree(path, ignore_errors=True)


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
    np.savez_compressed(
        path,
        y_true=y_true.astype(np.int64),
        y_pred=y_pred.astype(np.int64),
        probs=probs.astype(np.float32),
    )


def load_predictions(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(Path(run_dir) / PREDICTIONS) as npz:
        return {k: npz[k] for k in npz.files}


def done_runs(runs_dir: Path) -> list[Path]:
    """Every finished run directory in the store."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return sorted(
        p.parent
        for p in runs_dir.glob(f"*/*/{DONE}")
        if not p.parent.name.startswith(_TMP_PREFIX)
    )


def index_row(run_dir: Path, *, root: Path | None = None) -> dict[str, Any]:
    """One row of ``index.csv``: identity columns then scalar headline metrics."""
    run_dir = Path(run_dir)
    ident = read_json(run_dir / PARAMS)
    params = ident.get("params", {})
    metrics = read_json(run_dir / METRICS) if (run_dir / METRICS).is_file() else {}
    row: dict[str, Any] = {
        "run_id": run_dir.name,
        "stage": ident.get("stage", run_dir.parent.name),
        "task": params.get("task"),
        "model": params.get("model"),
        "dataset": params.get("dataset"),
        "sparsity": params.get("sparsity"),
        "technique": params.get("technique"),
        "seed": params.get("seed"),
        "top1": metrics.get("top1"),
        "path": str(run_dir.relative_to(root) if root else run_dir),
    }
    for key, value in metrics.items():
        if key not in row and (value is None or isinstance(value, (int, float, str, bool))):
            row[key] = value
    return row


def write_index(runs_dir: Path) -> pd.DataFrame:
    """Rebuild ``runs/index.csv`` from the finished runs (the one table of results)."""
    runs_dir = Path(runs_dir)
    rows = [index_row(p, root=runs_dir.parent) for p in done_runs(runs_dir)]
    df = pd.DataFrame(rows, columns=None if rows else list(INDEX_COLUMNS))
    if rows:
        extra = [c for c in df.columns if c not in INDEX_COLUMNS]
        df = df[list(INDEX_COLUMNS) + sorted(extra)]
        df["seed"] = df["seed"].astype("Int64")  # analysis runs have none; keep ints ints
        df = df.sort_values(["stage", "task", "sparsity", "technique", "seed"], na_position="first")
    runs_dir.mkdir(parents=True, exist_ok=True)
    tmp = runs_dir / (INDEX + ".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, runs_dir / INDEX)
    return df


def load_index(runs_dir: Path) -> pd.DataFrame:
    """``runs/index.csv`` as a DataFrame (empty with the core columns if absent)."""
    path = Path(runs_dir) / INDEX
    if not path.is_file():
        return pd.DataFrame(columns=list(INDEX_COLUMNS))
    return pd.read_csv(path)
