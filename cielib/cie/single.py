"""The paper's single-model schema (Section IX.vii): one dense and one compressed model.

:func:`single_model_cie` runs its seven steps on predictions,
:func:`single_model_cie_from_recalls` on printed per-class recalls, and
:func:`single_model_table` on every (setting, seed) of a grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

import numpy as np
import pandas as pd

from cielib.cie._checks import (
    as_labels,
    check_boundary,
    check_n_classes,
    check_y_true,
    class_counts,
    recall_matrix,
    resolve_n_classes,
)


# --------------------------------------------------------------------------------------
# Single-model schema (the paper's seven steps)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SingleModelCIE:
    """Result of :func:`single_model_cie` / :func:`single_model_cie_from_recalls`.

    Attributes:
        impacted_classes: sorted class ids that crossed the boundary (either way).
        impacted_images: sum over classes of |deviation after - deviation before|
            times the class's number of test images (a count of images, fractional).
        boundary: population std (ddof=0) of the uncompressed class accuracies (the
            paper's step 2; the boundary of the "before" set). Also ``boundary_before``.
        boundary_after: population std (ddof=0) of the COMPRESSED class accuracies
            (the paper quotes both, e.g. 7.79 and 7.49 points for VGG-19 at 0.7
            sparsity); the boundary of the "after" set only when ``boundary_mode`` is
            ``"own"``.
        boundary_mode: ``"uncompressed"`` (the paper's step 2) or ``"own"``.
        top1_before: overall accuracy of the uncompressed model.
        top1_after: overall accuracy of the compressed model.
        table: one row per class id (see :func:`single_model_cie`).
    """

    impacted_classes: list[int]
    impacted_images: float
    boundary: float
    boundary_after: float
    boundary_mode: str
    top1_before: float
    top1_after: float
    _columns: dict = field(repr=False)

    @property
    def boundary_before(self) -> float:
        """Same as ``boundary``: the uncompressed model's std of class accuracies."""
        return self.boundary

    @cached_property
    def table(self) -> pd.DataFrame:
        """Per class (see :func:`single_model_cie`); built on first use, since building a
        DataFrame costs far more than the schema (the null runs it on every pair)."""
        cols = self._columns
        table = pd.DataFrame(cols, index=pd.RangeIndex(len(cols["n_images"]), name="class"))
        table.attrs["boundary_mode"] = self.boundary_mode
        return table


def single_core(recall: np.ndarray, top1: np.ndarray, n_c: np.ndarray, mode: str) -> SingleModelCIE:
    """Steps 2-7 on class accuracies ``recall`` (2, k) and top-1 ``top1`` (2,)."""
    has = n_c > 0
    std_before = float(np.std(recall[0, has], ddof=0))
    std_after = float(np.std(recall[1, has], ddof=0))
    b_after = std_before if mode == "uncompressed" else std_after
    dev = recall - top1[:, None]
    with np.errstate(invalid="ignore"):
        outside_before = np.abs(dev[0]) > std_before  # NaN compares False
        outside_after = np.abs(dev[1]) > b_after
    impacted = (outside_before ^ outside_after) & has
    impacted_images = float(np.sum(np.abs(dev[1, has] - dev[0, has]) * n_c[has]))
    columns = {
        "n_images": n_c.astype(np.int64),
        "accuracy_before": recall[0],
        "accuracy_after": recall[1],
        "deviation_before": dev[0],
        "deviation_after": dev[1],
        "outside_before": outside_before,
        "outside_after": outside_after,
        "impacted": impacted,
    }
    return SingleModelCIE(
        impacted_classes=[int(c) for c in np.flatnonzero(impacted)],
        impacted_images=impacted_images,
        boundary=std_before,
        boundary_after=std_after,
        boundary_mode=mode,
        top1_before=float(top1[0]),
        top1_after=float(top1[1]),
        _columns=columns,
    )


def single_model_cie(
    y_true, y_pred_base, y_pred_comp, *, n_classes=None, boundary="uncompressed"
) -> SingleModelCIE:
    """The paper's single-model CIE detection schema (Section IX.vii).

    Why: Hooker et al.'s schema needs populations of trained models; the paper
    proposes a one-model proxy. Steps, with class accuracy = the class's recall and
    top-1 = accuracy over all test images:

    1. class accuracies and top-1 of the uncompressed model;
    2. boundary = population std (ddof=0) of those class accuracies;
    3. x = classes whose |class accuracy - top-1| (the *deviation*) > boundary;
    5. y = the same after compression, against the SAME (uncompressed) boundary;
    6. impacted classes = x symmetric-difference y (left or entered the tails);
    7. impacted images = sum_c |deviation_after - deviation_before| * n_images_c.

    Step 5 says "the same process is applied again", which can also be read as
    recomputing the boundary from the compressed model; ``boundary="own"`` does that
    (x against the dense model's std, y against the compressed model's std). The
    default follows step 2 as written. Both stds are returned either way
    (``boundary`` and ``boundary_after``) -- the paper quotes both for 0.7 sparsity.
    The std is ddof=0: the paper's quoted 7.79 (points) is reachable as the ddof=0 std
    of its Figure 19 recalls within their rounding, not as the ddof=1 std
    (``tests/test_paper_per_class.py``).

    The paper says "above the standard deviation boundary"; here the flags are named
    ``outside_before`` / ``outside_after``: |deviation| > boundary, i.e. outside the
    band of half-width ``boundary`` around top-1.

    A class with no test images has undefined recall: it is left out of the
    boundary, its row has ``n_images`` 0 and NaN accuracies/deviations, and it is
    never impacted (nor counted in impacted images).

    Args:
        y_true: 1-D integer labels of the test images.
        y_pred_base: 1-D integer predictions of the uncompressed model.
        y_pred_comp: 1-D integer predictions of the compressed model.
        n_classes: number of classes; defaults to max label + 1 over all three.
        boundary: ``"uncompressed"`` (default, the paper's step 2) or ``"own"``.

    Returns:
        SingleModelCIE; ``table`` is indexed by class id with columns ``n_images``,
        ``accuracy_before``, ``accuracy_after``, ``deviation_before``,
        ``deviation_after``, ``outside_before``, ``outside_after``, ``impacted``
        (``table.attrs["boundary_mode"]`` names the boundary).
    """
    mode = check_boundary(boundary)
    y = check_y_true(y_true)
    n = y.size
    preds = {}
    for name, v in (("y_pred_base", y_pred_base), ("y_pred_comp", y_pred_comp)):
        a = as_labels(v, name, 1)
        if a.size != n:
            raise ValueError(f"{name} has {a.size} labels, but y_true has {n}")
        preds[name] = a
    k = resolve_n_classes({"y_true": y, **preds}, check_n_classes(n_classes))
    both = np.stack([preds["y_pred_base"], preds["y_pred_comp"]])
    recall, top1 = recall_matrix(y, both, k)
    return single_core(recall, top1, class_counts(y, k), mode)


def _check_fraction_vector(values, name: str, *, nan_ok: bool) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array (one value per class); got shape {a.shape}")
    bad = (np.isnan(a) & (not nan_ok)) | (a < 0) | (a > 1)
    if np.any(bad):
        raise ValueError(f"{name} must lie in [0, 1] (fractions, not percent); got {float(a[bad][0])!r}")
    return a


def single_model_cie_from_recalls(
    recall_before,
    recall_after,
    *,
    n_images,
    top1_before=None,
    top1_after=None,
    boundary="uncompressed",
) -> SingleModelCIE:
    """The paper's single-model schema on per-class recalls instead of predictions.

    Why: the paper prints per-class recalls (its classification reports) and top-1,
    not predictions; this runs exactly the steps of :func:`single_model_cie` on them,
    so the paper's Table 4 can be checked against its own figures.

    Args:
        recall_before: per-class recall (fractions in [0, 1]) of the uncompressed model.
        recall_after: per-class recall of the compressed model, same classes.
        n_images: per-class number of test images (the weights of step 7).
        top1_before: top-1 of the uncompressed model; default: the image-weighted
            mean recall (which is top-1 exactly when the recalls are exact).
        top1_after: top-1 of the compressed model; same default.
        boundary: ``"uncompressed"`` (the paper's step 2) or ``"own"``.

    Rounding: printed recalls are within +-0.005 of the exact ones, so each recall's
    rounding moves its class's step-7 term by up to +-0.005 x the class size (about
    +-5 images for a class of 1,000), and a class's term depends on two recalls. When
    two models' exact recalls are nearly equal (a quantized model and its dense
    model), the printed values cannot tell a handful of impacted images from several
    dozen; a class within the rounding of the boundary can fall on either side. See
    ``cielib/data_files/paper_per_class.md``.

    Returns:
        SingleModelCIE, as :func:`single_model_cie`. A class with 0 images must have
        NaN recall and is never impacted.
    """
    mode = check_boundary(boundary)
    rb = _check_fraction_vector(recall_before, "recall_before", nan_ok=True)
    ra = _check_fraction_vector(recall_after, "recall_after", nan_ok=True)
    n_c = np.asarray(n_images)
    if n_c.dtype.kind not in "iu" or n_c.shape != rb.shape or np.any(n_c < 0):
        raise ValueError(
            f"n_images must be non-negative integers, one per class ({rb.size}); got "
            f"dtype {n_c.dtype}, shape {n_c.shape}"
        )
    if ra.shape != rb.shape:
        raise ValueError(f"recall_after has {ra.size} classes, but recall_before has {rb.size}")
    has = n_c > 0
    if not has.any():
        raise ValueError("n_images is all zero; need at least one class with test images")
    for name, r in (("recall_before", rb), ("recall_after", ra)):
        if np.isnan(r[has]).any():
            raise ValueError(f"{name} is NaN for class {int(np.flatnonzero(has & np.isnan(r))[0])}, "
                             "which has test images; every class with images needs a recall")
    recall = np.stack([rb, ra])
    top1 = []
    for name, given, r in (("top1_before", top1_before, rb), ("top1_after", top1_after, ra)):
        if given is None:
            top1.append(float(np.sum(r[has] * n_c[has]) / np.sum(n_c[has])))
        else:
            top1.append(float(_check_fraction_vector([given], name, nan_ok=False)[0]))
    return single_core(recall, np.array(top1), n_c.astype(np.int64), mode)


SINGLE_TABLE_COLUMNS = [
    "setting", "seed", "boundary_mode", "impacted_classes", "classes", "impacted_images",
    "boundary_before", "boundary_after", "top1_before", "top1_after",
]


def single_row(res: SingleModelCIE) -> dict:
    return {
        "boundary_mode": res.boundary_mode,
        "impacted_classes": len(res.impacted_classes),
        "classes": " ".join(map(str, res.impacted_classes)),
        "impacted_images": res.impacted_images,
        "boundary_before": res.boundary,
        "boundary_after": res.boundary_after,
        "top1_before": res.top1_before,
        "top1_after": res.top1_after,
    }


def single_model_table(
    y_true,
    base: Mapping[int, np.ndarray],
    settings: Mapping[str, Mapping[int, np.ndarray]],
    *,
    n_classes=None,
    boundary="uncompressed",
) -> pd.DataFrame:
    """The paper's schema for every (setting, seed): what a one-model user would see.

    Each compressed model is compared with the dense model of the same seed (the
    paper's Tables 4 and 9 are this table for its one seed).

    Args:
        y_true: 1-D integer labels (n_images,).
        base: {seed: dense predictions (n_images,)}.
        settings: {setting name: {seed: compressed predictions (n_images,)}}; seeds
            without a dense model are skipped.
        n_classes: number of classes (default: max label + 1 over all arrays).
        boundary: ``"uncompressed"`` (the paper's step 2) or ``"own"``.

    Returns:
        One row per (setting, seed): ``setting``, ``seed``, ``boundary_mode``,
        ``impacted_classes`` (count), ``classes`` (the ids, as text),
        ``impacted_images``, ``boundary_before`` (std of the dense model's class
        accuracies), ``boundary_after`` (std of the compressed model's),
        ``top1_before``, ``top1_after``.
    """
    check_boundary(boundary)
    y = check_y_true(y_true)
    rows = []
    for name, by_seed in settings.items():
        for seed, pred in sorted(by_seed.items()):
            if seed not in base:
                continue
            res = single_model_cie(y, base[seed], pred, n_classes=n_classes, boundary=boundary)
            rows.append({"setting": name, "seed": int(seed), **single_row(res)})
    return pd.DataFrame(rows, columns=SINGLE_TABLE_COLUMNS)
