"""Input checks shared by both CIE schemas, the option names they accept, and the
per-class counting every schema starts from.

Every public function validates here, before any work, so that a bad argument names
itself and what is allowed in the same words whichever schema received it.
"""

from __future__ import annotations

import numbers

import numpy as np

from cielib import checks


CORRECTIONS = (None, "fdr_bh")
#: ``population``: each population's class recalls minus ONE constant, the population's
#: mean top-1 (Hooker et al.'s released code); ``model``: each model's own top-1.
NORMALIZATIONS = ("population", "model")
#: ``uncompressed``: the paper's step 2 (the dense model's std is the boundary before and
#: after); ``own``: each model is judged against its own std.
BOUNDARIES = ("uncompressed", "own")


def as_labels(values, name: str, ndim: int) -> np.ndarray:
    return checks.as_labels(values, name, ndim=ndim)


check_n_classes = checks.check_n_classes
resolve_n_classes = checks.resolve_n_classes


def check_alpha(alpha) -> float:
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, numbers.Real)
        or not np.isfinite(alpha)
        or not 0.0 < alpha < 1.0
    ):
        raise ValueError(f"alpha must be a number in the open interval (0, 1); got {alpha!r}")
    return float(alpha)


def check_correction(correction) -> str | None:
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be None or 'fdr_bh'; got {correction!r}")
    return correction


def check_y_true(y_true) -> np.ndarray:
    y = as_labels(y_true, "y_true", 1)
    if y.size == 0:
        raise ValueError("y_true is empty; need at least one test image")
    return y


def check_population(preds, name: str, n_images: int) -> np.ndarray:
    p = as_labels(preds, name, 2)
    if p.shape[1] != n_images:
        raise ValueError(
            f"{name} has {p.shape[1]} images (columns), but y_true has {n_images}; "
            "each row must hold one model's predictions for every test image"
        )
    if p.shape[0] < 2:
        raise ValueError(
            f"{name} has {p.shape[0]} model(s) (rows); Welch's t-test needs at least 2 "
            "independently trained models per population"
        )
    return p


def check_normalize(normalize) -> str:
    if not isinstance(normalize, str) or normalize not in NORMALIZATIONS:
        raise ValueError(
            f"normalize must be one of {', '.join(map(repr, NORMALIZATIONS))}; got {normalize!r}"
        )
    return normalize


def check_boundary(boundary) -> str:
    if not isinstance(boundary, str) or boundary not in BOUNDARIES:
        raise ValueError(
            f"boundary must be one of {', '.join(map(repr, BOUNDARIES))}; got {boundary!r}"
        )
    return boundary


def correction_name(correction: str | None) -> str:
    return "none" if correction is None else correction


def class_counts(y: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y, minlength=k)


def recall_matrix(y: np.ndarray, preds: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-model per-class recall (n_models, k) and per-model top-1 (n_models,).

    One bincount over ``model * k + label`` of the correct predictions. Classes with
    no test images get NaN recall (undefined, not zero).
    """
    m = preds.shape[0]
    correct = preds == y[None, :]
    flat = (np.arange(m, dtype=np.int64)[:, None] * k + y[None, :])[correct]
    hits = np.bincount(flat, minlength=m * k).reshape(m, k)
    n_c = class_counts(y, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(n_c > 0, hits / n_c, np.nan)
    top1 = correct.mean(axis=1)
    return recall, top1


def nanmean(values) -> float:
    """Mean ignoring NaN; NaN (without a warning) when every value is NaN."""
    a = np.asarray(values, dtype=float)
    return float(np.nanmean(a)) if np.any(~np.isnan(a)) else float("nan")
