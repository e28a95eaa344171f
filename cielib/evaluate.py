"""Classification metrics: label arrays in, numbers and DataFrames out.

These back the paper's headline tables (top-1 and micro precision/recall/F1,
Tables 1, 3, 6, 8), its class balance (Figure 17), normalized confusion matrices
(Figures 18, 23) and per-class classification reports (Figures 19, 24).

Everything is computed from one confusion-count matrix built with
``np.bincount``, so a 10,000-image, 100-class evaluation is a few milliseconds
and this module needs neither scikit-learn nor TensorFlow. The values equal
scikit-learn's with ``labels=range(n_classes)`` and ``zero_division=0`` (the
test suite checks this).

Conventions shared by every function:

* Labels are 1-D integer arrays of class ids ``0 .. n_classes - 1``.
* ``n_classes`` defaults to ``len(class_names)`` if names are given, otherwise
  to one more than the largest label seen. Pass it explicitly whenever a class
  might be absent from both ``y_true`` and ``y_pred`` (it then still gets a row).
* Zero division: a metric whose denominator is 0 is 0 — a class never
  predicted has precision 0, a class never present has recall 0 — matching
  scikit-learn's ``zero_division=0``. Macro averages include such classes.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "AVERAGE_ROWS",
    "REPORT_COLUMNS",
    "class_balance",
    "classification_report",
    "confusion_counts",
    "confusion_matrix",
    "per_class_change",
    "summary_metrics",
    "top_k_accuracy",
]

#: Rows appended after the per-class rows of :func:`classification_report`.
AVERAGE_ROWS = ("micro avg", "macro avg", "weighted avg")
#: Columns of :func:`classification_report`.
REPORT_COLUMNS = ("precision", "recall", "f1", "support")

#: Largest allowed ``|row sum - 1|`` of a probability matrix. Loose enough for
#: float16 softmax outputs over 100 classes, tight enough to reject logits.
PROB_SUM_ATOL = 1e-2

_METRICS = ("precision", "recall", "f1")


# --------------------------------------------------------------------------- validation


def _labels(y: Any, name: str) -> np.ndarray:
    """``y`` as a 1-D int64 array of non-negative labels, or a ValueError naming it."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one image")
    if arr.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must hold integer class ids, got dtype {arr.dtype} "
            "(for one-hot labels or probabilities take argmax(axis=1) first)"
        )
    arr = arr.astype(np.int64, copy=False)
    low = int(arr.min())
    if low < 0:
        raise ValueError(f"{name} holds a negative label ({low}); labels must be 0..n_classes-1")
    return arr


def _n_classes(n_classes: int | None, class_names: Sequence[Any] | None, *arrays: np.ndarray) -> int:
    """Resolve ``n_classes`` from the argument, the names or the labels, and check labels fit."""
    if class_names is not None:
        names = list(class_names)
        if n_classes is None:
            n_classes = len(names)
        elif len(names) != n_classes:
            raise ValueError(f"class_names has {len(names)} names but n_classes={n_classes}")
        if len(set(names)) != len(names):
            raise ValueError(f"class_names has duplicates: {names}")
    seen = max(int(a.max()) for a in arrays) + 1
    if n_classes is None:
        return seen
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if seen > n_classes:
        raise ValueError(f"label {seen - 1} is out of range for n_classes={n_classes}")
    return int(n_classes)


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _labels(y_true, "y_true")
    p = _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    return t, p


def _probs(probs: Any, n_images: int, n_classes: int | None) -> np.ndarray:
    """``probs`` as an (n_images, n_classes) float64 array of probability rows."""
    arr = np.asarray(probs)
    if arr.ndim != 2:
        raise ValueError(f"probs must be 2-D (n_images, n_classes), got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"probs must be numeric, got dtype {arr.dtype}")
    if arr.shape[0] != n_images:
        raise ValueError(f"probs has {arr.shape[0]} rows but y_true has {n_images} labels")
    if n_classes is not None and arr.shape[1] != n_classes:
        raise ValueError(f"probs has {arr.shape[1]} columns but n_classes={n_classes}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError("probs holds NaN or infinite values")
    if arr.min() < 0:
        raise ValueError(f"probs holds a negative value ({arr.min():.4g}); pass softmax outputs, not logits")
    sums = arr.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > PROB_SUM_ATOL:
        raise ValueError(
            f"probs rows must sum to 1 (softmax outputs); row {worst} sums to {sums[worst]:.4g}"
        )
    return arr


def _index(n_classes: int, class_names: Sequence[Any] | None) -> pd.Index:
    values = list(class_names) if class_names is not None else list(range(n_classes))
    return pd.Index(values, name="class")


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


# --------------------------------------------------------------------------- counts


def confusion_counts(y_true: Any, y_pred: Any, *, n_classes: int | None = None) -> np.ndarray:
    """Confusion counts, rows true class and columns predicted class.

    Every other metric here derives from this one matrix, so it is built once in
    O(n) with ``np.bincount`` rather than per class.

    Args:
        y_true: True class ids, 1-D integers.
        y_pred: Predicted class ids, same length.
        n_classes: Number of classes; defaults to one more than the largest label.

    Returns:
        An ``(n_classes, n_classes)`` int64 array; ``[i, j]`` counts images of
        class ``i`` predicted as ``j``.

    Raises:
        ValueError: On non-integer, non-1-D, empty, mismatched or out-of-range labels.
    """
    t, p = _pair(y_true, y_pred)
    k = _n_classes(n_classes, None, t, p)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support from confusion counts."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    # F1 from counts (2TP / (2TP + FP + FN)): equal to the harmonic mean, and 0
    # rather than NaN when precision and recall are both 0.
    f1 = _safe_div(2 * tp, support + predicted)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def _averages(cm: np.ndarray, per: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    n = int(cm.sum())
    tp = float(np.trace(cm))
    # Single-label multiclass: every image is one prediction, so micro precision,
    # recall and F1 all equal accuracy. Computed from counts anyway for clarity.
    micro_p = tp / n
    micro_r = tp / n
    micro_f = _safe_div(2 * micro_p * micro_r, micro_p + micro_r).item()
    weights = per["support"] / n
    out = {
        "micro avg": {"precision": micro_p, "recall": micro_r, "f1": micro_f},
        "macro avg": {m: float(per[m].mean()) for m in _METRICS},
        "weighted avg": {m: float(np.dot(per[m], weights)) for m in _METRICS},
    }
    for row in out.values():
        row["support"] = n
    return out


# --------------------------------------------------------------------------- public metrics


def top_k_accuracy(y_true: Any, probs: Any, *, k: int = 5) -> float:
    """Share of images whose true class is among the ``k`` most probable.

    Ties are broken deterministically by ranking classes by descending
    probability, then ascending class id — the same order as ``np.argmax``, so
    ``k=1`` equals the accuracy of ``probs.argmax(axis=1)``. This matches
    ``sklearn.metrics.top_k_accuracy_score`` whenever the true class is not tied
    at the k-th place; on such ties scikit-learn prefers the *higher* class id.

    Args:
        y_true: True class ids, 1-D integers.
        probs: ``(n_images, n_classes)`` softmax outputs; rows must sum to 1
            within ``PROB_SUM_ATOL`` (so logits are rejected, not silently ranked).
        k: How many top classes count as a hit; ``1 <= k <= n_classes``.

    Returns:
        The accuracy in ``[0, 1]``.

    Raises:
        ValueError: On bad labels, a bad ``probs`` matrix or an out-of-range ``k``.
    """
    t = _labels(y_true, "y_true")
    p = _probs(probs, t.size, None)
    n_classes = p.shape[1]
    if int(t.max()) >= n_classes:
        raise ValueError(f"label {int(t.max())} is out of range for probs with {n_classes} columns")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_classes:
        raise ValueError(f"k must be an integer in 1..{n_classes} (n_classes), got {k!r}")
    p_true = p[np.arange(t.size), t][:, None]
    ids = np.arange(n_classes)[None, :]
    # Rank of the true class (0-based) = classes strictly more probable plus
    # equally probable classes with a lower id.
    rank = (p > p_true).sum(axis=1) + ((p == p_true) & (ids < t[:, None])).sum(axis=1)
    return float(np.mean(rank < k))


def summary_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    probs: Any | None = None,
    n_classes: int | None = None,
) -> dict[str, float | int]:
    """Headline metrics of one evaluated model (the paper's Tables 1, 3, 6, 8).

    The paper reports micro averages (robust to class imbalance); macro and
    weighted averages are included so balanced and imbalanced views can be
    compared.

    Args:
        y_true: True class ids, 1-D integers.
        y_pred: Predicted class ids, same length (e.g. ``probs.argmax(axis=1)``).
        probs: Optional ``(n_images, n_classes)`` softmax outputs for top-5.
        n_classes: Number of classes; defaults to ``probs.shape[1]`` when
            ``probs`` is given, else one more than the largest label.

    Returns:
        A dict with ``top1``, ``top5``, ``micro_precision``, ``micro_recall``,
        ``micro_f1``, ``macro_precision``, ``macro_recall``, ``macro_f1``,
        ``weighted_f1`` (floats in ``[0, 1]``) and ``n_images`` (int).
        ``top5`` is NaN without ``probs`` or when ``n_classes <= 5`` (top-5 of
        five or fewer classes is trivially 1). Precision of a never-predicted
        class is 0.

    Raises:
        ValueError: On bad labels or probabilities (see :func:`confusion_counts`,
            :func:`top_k_accuracy`).
    """
    t, p = _pair(y_true, y_pred)
    prob_arr = None
    if probs is not None:
        prob_arr = _probs(probs, t.size, n_classes)
        n_classes = prob_arr.shape[1]
    k = _n_classes(n_classes, None, t, p)
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    per = _per_class(cm)
    avg = _averages(cm, per)
    top5 = float("nan")
    if prob_arr is not None and k > 5:
        top5 = top_k_accuracy(t, prob_arr, k=5)
    return {
        "top1": float(np.trace(cm) / t.size),
        "top5": top5,
        "micro_precision": avg["micro avg"]["precision"],
        "micro_recall": avg["micro avg"]["recall"],
        "micro_f1": avg["micro avg"]["f1"],
        "macro_precision": avg["macro avg"]["precision"],
        "macro_recall": avg["macro avg"]["recall"],
        "macro_f1": avg["macro avg"]["f1"],
        "weighted_f1": avg["weighted avg"]["f1"],
        "n_images": int(t.size),
    }


def classification_report(
    y_true: Any,
    y_pred: Any,
    *,
    class_names: Sequence[Any] | None = None,
    n_classes: int | None = None,
) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support, plus averages (Figures 19, 24).

    Values equal scikit-learn's ``classification_report(output_dict=True,
    zero_division=0, labels=range(n_classes))``; its ``accuracy`` entry appears
    here as the ``micro avg`` row (precision = recall = F1 = accuracy).

    Args:
        y_true: True class ids, 1-D integers.
        y_pred: Predicted class ids, same length.
        class_names: Optional names for class ids ``0..n_classes-1``, used as the index.
        n_classes: Number of classes (see the module docstring).

    Returns:
        A DataFrame indexed by class (names, else ids) then ``"micro avg"``,
        ``"macro avg"``, ``"weighted avg"``; columns ``precision``, ``recall``,
        ``f1`` (float) and ``support`` (int; the total for average rows).

    Raises:
        ValueError: On bad labels or ``class_names`` of the wrong length.
    """
    t, p = _pair(y_true, y_pred)
    k = _n_classes(n_classes, class_names, t, p)
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    per = _per_class(cm)
    body = pd.DataFrame(per, index=_index(k, class_names), columns=list(REPORT_COLUMNS))
    tail = pd.DataFrame.from_dict(_averages(cm, per), orient="index")[list(REPORT_COLUMNS)]
    out = pd.concat([body, tail])
    out.index.name = "class"
    return out.astype({"support": np.int64})


def confusion_matrix(
    y_true: Any,
    y_pred: Any,
    *,
    class_names: Sequence[Any] | None = None,
    n_classes: int | None = None,
    normalize: str | None = None,
) -> pd.DataFrame:
    """Labelled confusion matrix (the paper's normalized matrices, Figures 18, 23).

    Args:
        y_true: True class ids, 1-D integers.
        y_pred: Predicted class ids, same length.
        class_names: Optional names for the index and columns.
        n_classes: Number of classes (see the module docstring).
        normalize: ``None`` for counts; ``"true"`` to divide each row by its
            support, so the diagonal is per-class recall (the paper's choice);
            ``"pred"`` (columns) and ``"all"`` are also accepted as in
            scikit-learn. A row or column with nothing to divide by stays 0.

    Returns:
        A DataFrame, index named ``"true"``, columns named ``"predicted"``;
        int64 counts, or floats when normalized.

    Raises:
        ValueError: On bad labels or an unknown ``normalize``.
    """
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}")
    t, p = _pair(y_true, y_pred)
    k = _n_classes(n_classes, class_names, t, p)
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    values: np.ndarray = cm
    if normalize == "true":
        values = _safe_div(cm, cm.sum(axis=1, keepdims=True))
    elif normalize == "pred":
        values = _safe_div(cm, cm.sum(axis=0, keepdims=True))
    elif normalize == "all":
        values = cm / cm.sum()
    labels = _index(k, class_names)
    return pd.DataFrame(
        values,
        index=labels.rename("true"),
        columns=labels.rename("predicted"),
    )


def class_balance(
    y_true: Any,
    *,
    class_names: Sequence[Any] | None = None,
    n_classes: int | None = None,
) -> pd.DataFrame:
    """Images per class in a split (the paper's Figure 17).

    Shown because micro, macro and weighted averages coincide only when classes
    are balanced.

    Args:
        y_true: Class ids, 1-D integers.
        class_names: Optional names for the ``class`` column.
        n_classes: Number of classes; classes without images get a 0 row.

    Returns:
        A DataFrame with one row per class id in order and columns ``class``
        (name, else id), ``count`` (int) and ``share`` (count / total).

    Raises:
        ValueError: On bad labels or ``class_names`` of the wrong length.
    """
    t = _labels(y_true, "y_true")
    k = _n_classes(n_classes, class_names, t)
    counts = np.bincount(t, minlength=k)
    return pd.DataFrame(
        {
            "class": list(_index(k, class_names)),
            "count": counts.astype(np.int64),
            "share": counts / t.size,
        }
    )


def per_class_change(report_base: pd.DataFrame, report_comp: pd.DataFrame) -> pd.DataFrame:
    """Per-class metrics before and after compression, most harmed class first.

    With 100 classes a full report is unreadable; sorting by the change in
    recall (per-class accuracy) puts the classes compression hurts most on top.

    Args:
        report_base: :func:`classification_report` of the baseline model.
        report_comp: :func:`classification_report` of the compressed model on
            the same test set. Average rows in either are ignored.

    Returns:
        A DataFrame indexed by class with ``support`` and, for each of
        precision, recall and f1, columns ``<metric>_before``,
        ``<metric>_after`` and ``<metric>_delta`` (after - before); sorted by
        ``recall_delta`` ascending, ties kept in class order.

    Raises:
        ValueError: If a report lacks a column, or the two disagree on classes
            or support (i.e. were not computed on the same test set).
    """
    base = _class_rows(report_base, "report_base")
    comp = _class_rows(report_comp, "report_comp")
    if list(base.index) != list(comp.index):
        only_b = [c for c in base.index if c not in set(comp.index)]
        only_c = [c for c in comp.index if c not in set(base.index)]
        if only_b or only_c:
            raise ValueError(
                f"reports cover different classes: only in base {only_b[:5]}, only in comp {only_c[:5]}"
            )
        comp = comp.loc[base.index]
    diff = base.index[base["support"].to_numpy() != comp["support"].to_numpy()]
    if len(diff):
        c = diff[0]
        raise ValueError(
            f"support differs for class {c!r} ({base.at[c, 'support']} vs {comp.at[c, 'support']}); "
            "reports must come from the same test set"
        )
    out = pd.DataFrame({"support": base["support"].astype(np.int64)}, index=base.index)
    for m in _METRICS:
        out[f"{m}_before"] = base[m].astype(float)
        out[f"{m}_after"] = comp[m].astype(float)
        out[f"{m}_delta"] = out[f"{m}_after"] - out[f"{m}_before"]
    out.index.name = "class"
    return out.sort_values("recall_delta", kind="mergesort")


def _class_rows(report: pd.DataFrame, name: str) -> pd.DataFrame:
    if not isinstance(report, pd.DataFrame):
        raise ValueError(f"{name} must be a DataFrame from classification_report, got {type(report).__name__}")
    report = report.rename(columns={"f1-score": "f1"})
    missing = [c for c in REPORT_COLUMNS if c not in report.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}")
    rows = report.loc[[i for i in report.index if i not in AVERAGE_ROWS and i != "accuracy"]]
    if rows.empty:
        raise ValueError(f"{name} has no per-class rows")
    return rows
