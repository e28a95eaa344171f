"""Classification metrics: label arrays in, numbers and DataFrames out.

These back the paper's headline tables (top-1 and micro precision/recall/F1,
Tables 1, 3, 6, 8), its class balance (Figure 17), normalized confusion matrices
(Figures 18, 23) and per-class classification reports (Figures 19, 24).

The metrics are scikit-learn's (``precision_recall_fscore_support``,
``confusion_matrix``), called with ``labels=range(n_classes)`` and
``zero_division=0``; this module fixes those conventions once, checks its input at
the boundary and returns labelled DataFrames. Top-k accuracy is the one metric
computed here (see :func:`top_k_accuracy` for why).

Conventions shared by every function:

* Labels are 1-D integer arrays of class ids ``0 .. n_classes - 1``.
* ``n_classes`` defaults to ``len(class_names)`` if names are given, otherwise
  to one more than the largest label seen. Pass it explicitly whenever a class
  might be absent from both ``y_true`` and ``y_pred`` (it then still gets a row).
* Zero division: a metric whose denominator is 0 is 0 — a class never
  predicted has precision 0, a class never present has recall 0 — as
  scikit-learn's ``zero_division=0``. Macro averages include such classes.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from cielib.checks import as_labels, check_choice, check_n_classes, is_int, resolve_n_classes

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
#: Allowed values of ``confusion_matrix(normalize=...)``, as in scikit-learn.
NORMALIZE = (None, "true", "pred", "all")

#: Largest allowed ``|row sum - 1|`` of a probability matrix. Loose enough for
#: float16 softmax outputs over 100 classes, tight enough to reject logits.
PROB_SUM_ATOL = 1e-2

_METRICS = ("precision", "recall", "f1")


# --------------------------------------------------------------------------- validation


def _labels(y: Any, name: str) -> np.ndarray:
    """``y`` as a non-empty 1-D int64 array of class ids, or a ValueError naming it."""
    arr = as_labels(y, name)
    if arr.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one image")
    return arr


def _n_classes(n_classes: int | None, class_names: Sequence[Any] | None,
               arrays: dict[str, np.ndarray]) -> int:
    """Resolve ``n_classes`` from the argument, the names or the labels, and check labels fit."""
    n_classes = check_n_classes(n_classes)
    if class_names is not None:
        names = list(class_names)
        if n_classes is None:
            n_classes = len(names)
        elif len(names) != n_classes:
            raise ValueError(f"class_names has {len(names)} names but n_classes={n_classes}")
        if len(set(names)) != len(names):
            raise ValueError(f"class_names has duplicates: {names}")
    return resolve_n_classes(arrays, n_classes)


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


def _scores(t: np.ndarray, p: np.ndarray, k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-class rows (ids ``0..k-1``) and the micro/macro/weighted average rows.

    The per-class scores are scikit-learn's ``precision_recall_fscore_support`` over
    all ``k`` classes. The averages are taken from them as scikit-learn's
    ``classification_report`` takes them (plain and support-weighted means, the same
    numpy calls), so the two agree exactly, but with one scikit-learn call instead of
    four: ``classification_report`` re-validates the labels for every average, which
    made it several times slower than the rest of an evaluation. In a single-label
    multiclass problem every image is one prediction, so micro precision, recall and
    F1 all equal accuracy, whatever the class balance; scikit-learn's report shows
    them as ``accuracy``, this one as the ``micro avg`` row.
    """
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        t, p, labels=np.arange(k), average=None, zero_division=0
    )
    per = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1,
                        "support": support.astype(np.int64)})
    accuracy = float(np.mean(t == p))
    n = int(t.size)
    averages = pd.DataFrame.from_dict(
        {
            "micro avg": [accuracy, accuracy, accuracy, n],
            "macro avg": [float(np.average(m)) for m in (precision, recall, f1)] + [n],
            "weighted avg": [float(np.average(m, weights=support)) for m in (precision, recall, f1)]
            + [n],
        },
        orient="index",
        columns=list(REPORT_COLUMNS),
    )
    return per, averages.astype({"support": np.int64})


# --------------------------------------------------------------------------- public metrics


def confusion_counts(y_true: Any, y_pred: Any, *, n_classes: int | None = None) -> np.ndarray:
    """Confusion counts, rows true class and columns predicted class.

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
    k = _n_classes(n_classes, None, {"y_true": t, "y_pred": p})
    return skm.confusion_matrix(t, p, labels=np.arange(k)).astype(np.int64, copy=False)


def top_k_accuracy(y_true: Any, probs: Any, *, k: int = 5) -> float:
    """Share of images whose true class is among the ``k`` most probable.

    Ties are broken deterministically by ranking classes by descending
    probability, then ascending class id — the same order as ``np.argmax``, so
    ``k=1`` equals the accuracy of ``probs.argmax(axis=1)``. This matches
    ``sklearn.metrics.top_k_accuracy_score`` whenever the true class is not tied
    at the k-th place; on such ties scikit-learn prefers the *higher* class id.

    Computed here rather than with ``sklearn.metrics.top_k_accuracy_score``
    because of ties: scikit-learn ranks tied classes by *descending* class id, so its
    top-1 disagrees with ``argmax`` (and with the predictions every other metric
    uses) whenever the true class ties for first place. Tied probabilities are
    common in full-integer models, whose int8 outputs come in steps of 1/256; on
    the quick profile's ``full_int8`` runs scikit-learn's top-1 and top-5 differ
    from these, and its top-1 differs from the argmax accuracy.


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
    if not is_int(k) or not 1 <= k <= n_classes:
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

    The paper reports micro averages. For single-label multiclass classification,
    micro precision, recall and F1 all equal top-1 accuracy on every test set,
    balanced or not, so they add no information; and like accuracy they are
    dominated by the large classes, so they hide what happens to small ones. Macro
    (every class counts equally) and weighted (classes count by support) averages
    are included to show that.

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
        prob_arr = _probs(probs, t.size, check_n_classes(n_classes))
        n_classes = prob_arr.shape[1]
    k = _n_classes(n_classes, None, {"y_true": t, "y_pred": p})
    _, avg = _scores(t, p, k)
    top5 = float("nan")
    if prob_arr is not None and k > 5:
        top5 = top_k_accuracy(t, prob_arr, k=5)
    return {
        "top1": float(avg.at["micro avg", "recall"]),
        "top5": top5,
        "micro_precision": float(avg.at["micro avg", "precision"]),
        "micro_recall": float(avg.at["micro avg", "recall"]),
        "micro_f1": float(avg.at["micro avg", "f1"]),
        "macro_precision": float(avg.at["macro avg", "precision"]),
        "macro_recall": float(avg.at["macro avg", "recall"]),
        "macro_f1": float(avg.at["macro avg", "f1"]),
        "weighted_f1": float(avg.at["weighted avg", "f1"]),
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

    The values of scikit-learn's ``classification_report(output_dict=True,
    zero_division=0, labels=range(n_classes))``, as a DataFrame; its ``accuracy``
    entry appears here as the ``micro avg`` row (precision = recall = F1 = accuracy).

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
    k = _n_classes(n_classes, class_names, {"y_true": t, "y_pred": p})
    per, avg = _scores(t, p, k)
    per.index = _index(k, class_names)
    out = pd.concat([per, avg])
    out.index.name = "class"
    return out


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
    check_choice(normalize, NORMALIZE, what="normalize")
    t, p = _pair(y_true, y_pred)
    k = _n_classes(n_classes, class_names, {"y_true": t, "y_pred": p})
    values = skm.confusion_matrix(t, p, labels=np.arange(k), normalize=normalize)
    if normalize is None:
        values = values.astype(np.int64, copy=False)
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
    k = _n_classes(n_classes, class_names, {"y_true": t})
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
