#!/usr/bin/env python
"""CIE for anyone's models, worked end to end without TensorFlow (under a minute, offline).

Trains small scikit-learn MLPs on scikit-learn's digits over several seeds, compresses
them two ways, writes the predictions directory ``run_all.py --predictions`` reads, and
runs it:

- ``dense/``: 8 MLPs, seeds 0-7 (the uncompressed population);
- ``pruned-0.6/``: 4 further MLPs trained with their own seeds (1000-1003), then 60% of
  each weight matrix's smallest-magnitude weights set to zero: independent models;
- ``int8/``: every dense MLP with its weights rounded to 8 bits (symmetric, one scale
  per matrix): derived from the dense model of its seed, so declared paired.

    python examples/sklearn_digits.py                 # writes examples/out/sklearn-digits, runs it
    python examples/sklearn_digits.py --dry-run       # extra arguments go to run_all.py

The report lands in report/predictions-sklearn-digits/ (beside the profile's report).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "sklearn-digits"
DENSE_SEEDS = range(8)
PRUNED_SEEDS = range(1000, 1004)  # disjoint from the dense seeds: independent models
SPARSITY = 0.6
BITS = 8


def train(seed: int, x, y) -> MLPClassifier:
    """One small MLP; the seed sets its initial weights and the order of its batches."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(hidden_layer_sizes=(32,), max_iter=100, random_state=seed).fit(x, y)


def prune(model: MLPClassifier, sparsity: float) -> MLPClassifier:
    """Magnitude pruning: zero the smallest ``sparsity`` share of each weight matrix."""
    for w in model.coefs_:
        w[np.abs(w) < np.quantile(np.abs(w), sparsity)] = 0.0
    return model


def round_weights(model: MLPClassifier, bits: int) -> MLPClassifier:
    """Weight rounding: each matrix onto 2**(bits-1)-1 symmetric levels (like int8)."""
    for w in model.coefs_:
        scale = np.abs(w).max() / (2 ** (bits - 1) - 1)
        w[...] = np.round(w / scale) * scale
    return model


def save(path: Path, model: MLPClassifier, x, y) -> None:
    """The three lines any framework needs: predictions, labels, probabilities."""
    probs = model.predict_proba(x)
    np.savez(path, y_pred=probs.argmax(axis=1), y_true=y, probs=probs)


def write_directory(out: Path) -> Path:
    """Train, compress and save every model into ``out`` (replaced if present)."""
    digits = load_digits()
    x = digits.data / 16.0
    x_train, x_test, y_train, y_test, _, img_test = train_test_split(
        x, digits.target, digits.images, test_size=0.5, stratify=digits.target, random_state=0)
    shutil.rmtree(out, ignore_errors=True)
    for name in ("dense", f"pruned-{SPARSITY:g}", "int8"):
        (out / name).mkdir(parents=True)
    for seed in DENSE_SEEDS:
        model = train(seed, x_train, y_train)
        save(out / "dense" / f"{seed}.npz", model, x_test, y_test)
        save(out / "int8" / f"{seed}.npz", round_weights(model, BITS), x_test, y_test)
    for seed in PRUNED_SEEDS:
        save(out / f"pruned-{SPARSITY:g}" / f"{seed}.npz", prune(train(seed, x_train, y_train), SPARSITY),
             x_test, y_test)
    (out / "classes.txt").write_text("".join(f"digit {c}\n" for c in digits.target_names))
    np.save(out / "images.npy", img_test[..., None] / 16.0)  # (n, 8, 8, 1) for the gallery
    (out / "design.toml").write_text('baseline = "dense"\npaired = ["int8"]  # derived from dense/<seed>.npz\n')
    return out


def main(argv: list[str]) -> int:
    start = time.perf_counter()
    out = write_directory(OUT)
    print(f"wrote {out} in {time.perf_counter() - start:.1f}s")
    code = subprocess.call([sys.executable, str(HERE.parent / "run_all.py"), "--predictions", str(out), *argv])
    print(f"example: {time.perf_counter() - start:.1f}s in all, exit {code}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
